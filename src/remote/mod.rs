//! Talking to a remote TorchServe (or `scancer serve`): where it is, the credentials to send, and one
//! clear line for every way a request can fail, with the fix where it is known. Shared by
//! `scancer store` (the management API) and `scancer predict --remote` (the inference API).

pub(crate) mod predict;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One profile of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// The management API (`scancer store`).
    pub(crate) store_url: Option<String>,
    /// The inference API (`scancer predict --remote`).
    pub(crate) api_url: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// The profile used when none is named.
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The profile named (on the command line or in SCANCER_PROFILE), else the default one of the
/// configuration file at `config` (if there is one), else an empty profile.
pub(crate) fn load_profile(named: Option<String>, config: Option<PathBuf>) -> Result<Profile> {
    let Some(path) = config.as_ref().filter(|p| p.is_file()) else {
        if let Some(named) = named {
            bail!(
                "profile {named:?}: there is no configuration file ({})",
                config.map_or("no home directory".into(), |p| p.display().to_string())
            );
        }
        return Ok(Profile::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ConfigFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
    let Some(chosen) = named.or(file.default_profile.clone()) else {
        return Ok(Profile::default());
    };
    file.profiles.get(&chosen).cloned().with_context(|| {
        format!(
            "{}: no profile {chosen:?} (profiles: {})",
            path.display(),
            file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

/// The credentials sent with every request. Debug never shows them.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    basic: Option<(String, String)>,
    token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("basic", &self.basic.as_ref().map(|(user, _)| user))
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl Credentials {
    /// HTTP Basic credentials and a Bearer token (see `authorization` for which is sent).
    pub(crate) fn new(basic: Option<(String, String)>, token: Option<String>) -> Credentials {
        Credentials { basic, token }
    }

    /// The Authorization header, if any. With both, the token goes to TorchServe and Basic
    /// credentials are dropped: one request carries one Authorization header.
    pub(crate) fn authorization(&self) -> Option<String> {
        if let Some(token) = &self.token {
            return Some(format!("Bearer {token}"));
        }
        self.basic.as_ref().map(|(user, password)| {
            let pair = format!("{user}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        })
    }

    pub(crate) fn has_basic(&self) -> bool {
        self.basic.is_some()
    }

    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

pub(crate) fn prompt_password(user: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("--user {user}: no password (give NAME:PASSWORD, or set SCANCER_PASSWORD, or run on a terminal to be asked)");
    }
    rpassword::prompt_password(format!("password for {user}: "))
        .context("cannot read the password from the terminal")
}

/// A token file: TorchServe's key_file.json (the `key` entry) or the token alone.
pub(crate) fn read_token(path: &Path, key: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        return json[key]["key"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{}: no {key:?} key in this key file", path.display()));
    }
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        bail!("{}: expected one token", path.display());
    }
    Ok(token.to_string())
}

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// TorchServe's error message, or a short excerpt of whatever the body is.
    pub(crate) fn message(&self) -> String {
        if let Some(message) = self
            .json()
            .and_then(|j| j["message"].as_str().map(str::to_string))
        {
            return message;
        }
        let text = self.text();
        let text = text.trim();
        if text.is_empty() {
            return String::new();
        }
        // An HTML error page (nginx): its title says it all.
        if let Some(start) = text.find("<title>") {
            if let Some(end) = text[start..].find("</title>") {
                return text[start + 7..start + end].trim().to_string();
            }
        }
        let mut short: String = text.chars().take(200).collect();
        if short.len() < text.len() {
            short.push_str("...");
        }
        short.replace('\n', " ")
    }

    pub(crate) fn error_type(&self) -> Option<String> {
        self.json()
            .and_then(|j| j["type"].as_str().map(str::to_string))
    }
}

/// Why a request got no answer at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("cannot connect to {url}: {why}")]
    Connect { url: String, why: String },
    #[error("{url}: no answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{url}: {why}")]
    Other { url: String, why: String },
}

impl TransportError {
    /// Worth another try: the server may be starting or overloaded.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. } | TransportError::Timeout { .. }
        )
    }
}

/// Where requests go: a server over HTTP (`Client`), or scripted answers in memory (the store fuzz
/// target, which must reach every parsing path without a network).
pub(crate) trait Exchange {
    /// The server's base URL, as shown in messages.
    fn base(&self) -> &str;
    fn credentials(&self) -> &Credentials;
    /// Sends one request to `base + path`; any HTTP status is an Answer.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Answer, TransportError>;
}

/// A server base URL plus credentials.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) base: String,
    agent: ureq::Agent,
    credentials: Credentials,
    timeout: Duration,
}

impl Client {
    pub(crate) fn new(base: &str, credentials: Credentials, timeout: Duration) -> Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("{base}: not an http:// or https:// URL");
        }
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            // Concurrent requests (predict --jobs) each keep their connection alive.
            .max_idle_connections_per_host(64)
            .redirects(0)
            .user_agent(concat!("scancer/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            base,
            agent,
            credentials,
            timeout,
        })
    }
}

impl Exchange for Client {
    fn base(&self) -> &str {
        &self.base
    }

    fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Answer, TransportError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.request(method, &url);
        if let Some(authorization) = self.credentials.authorization() {
            request = request.set("Authorization", &authorization);
        }
        let result = match body {
            Some((bytes, content_type)) => {
                request.set("Content-Type", content_type).send_bytes(bytes)
            }
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(t)) => return Err(transport(&url, &t, self.timeout)),
        };
        let status = response.status();
        let mut body = Vec::new();
        response
            .into_reader()
            .take(64 << 20)
            .read_to_end(&mut body)
            .map_err(|e| TransportError::Other {
                url: url.clone(),
                why: format!("the answer broke off: {e}"),
            })?;
        Ok(Answer { status, body })
    }
}

fn transport(url: &str, t: &ureq::Transport, timeout: Duration) -> TransportError {
    let text = t.to_string();
    let io_kind = std::error::Error::source(t)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    if matches!(
        io_kind,
        Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
    ) || text.contains("timed out")
    {
        return TransportError::Timeout {
            url: url.to_string(),
            seconds: timeout.as_secs(),
        };
    }
    match t.kind() {
        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns => TransportError::Connect {
            url: url.to_string(),
            why: std::error::Error::source(t)
                .map(|s| match s.downcast_ref::<std::io::Error>() {
                    Some(io) => crate::inputs::io_message(io).to_lowercase(),
                    None => s.to_string(),
                })
                .or_else(|| t.message().map(str::to_string))
                .unwrap_or(text),
        },
        _ => TransportError::Other {
            url: url.to_string(),
            why: text,
        },
    }
}

/// Percent-encodes a query parameter value.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
