//! Optional authentication: HTTP Basic credentials (as Scancer's public API takes them) and
//! TorchServe-style Bearer tokens. Secrets come from files or the environment, never from the command
//! line (where `ps` shows them), are compared in constant time, and are never logged.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use std::path::Path;

/// Endpoint groups that can be opened to clients without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenEndpoint {
    /// `/ping` and the KServe `/v2/health/*` probes
    Health,
    /// `/metrics`
    Metrics,
    /// Nothing
    None,
}

/// Credentials given beside the files (SCANCER_AUTH's `name:password`, SCANCER_TOKEN).
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    pub(crate) basic: Option<String>,
    pub(crate) token: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Auth {
    /// `name:password` pairs, as sent in a Basic header once decoded.
    basic: Vec<Vec<u8>>,
    tokens: Vec<Vec<u8>>,
    open: Vec<OpenEndpoint>,
}

/// Where an authenticated request may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Health,
    Metrics,
    /// Predictions, model descriptions, inference.
    Api,
}

impl Auth {
    /// Credentials given directly: `name:password` pairs and Bearer tokens.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn new(basic: &[&str], tokens: &[&str], open: Vec<OpenEndpoint>) -> Auth {
        Auth {
            basic: basic.iter().map(|b| b.as_bytes().to_vec()).collect(),
            tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
            open,
        }
    }

    /// Reads credentials: `auth_file` holds `name:password` lines, `token_file` holds Bearer tokens
    /// (one per line, or TorchServe's key_file.json, whose inference key is used); `extra` adds one
    /// of each.
    pub(crate) fn load(
        auth_file: Option<&Path>,
        token_file: Option<&Path>,
        open: Vec<OpenEndpoint>,
        extra: Credentials,
    ) -> Result<Auth> {
        let mut auth = Auth {
            open,
            ..Auth::default()
        };
        if let Some(path) = auth_file {
            for (n, line) in secret_lines(path)? {
                if !line.contains(':') || line.starts_with(':') {
                    bail!(
                        "{}:{n}: expected name:password (the line is not shown)",
                        path.display()
                    );
                }
                auth.basic.push(line.into_bytes());
            }
        }
        if let Some(path) = token_file {
            let text = read_secret(path)?;
            if let Ok(keys) = serde_json::from_str::<serde_json::Value>(&text) {
                let key = keys["inference"]["key"].as_str().with_context(|| {
                    format!(
                        "{}: a JSON token file needs TorchServe's {{\"inference\": {{\"key\": ...}}}}",
                        path.display()
                    )
                })?;
                auth.tokens.push(key.as_bytes().to_vec());
            } else {
                for (_, line) in secret_lines(path)? {
                    auth.tokens.push(line.into_bytes());
                }
            }
        }
        if let Some(pair) = extra.basic {
            auth.basic.push(pair.into_bytes());
        }
        if let Some(token) = extra.token {
            auth.tokens.push(token.into_bytes());
        }
        Ok(auth)
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.basic.is_empty() || !self.tokens.is_empty()
    }

    pub(crate) fn schemes(&self) -> Vec<&'static str> {
        let mut schemes = Vec::new();
        if !self.basic.is_empty() {
            schemes.push("Basic realm=\"scancer\"");
        }
        if !self.tokens.is_empty() {
            schemes.push("Bearer realm=\"scancer\"");
        }
        schemes
    }

    /// Whether `endpoint` needs no credentials (`--open`).
    pub(crate) fn is_open(&self, endpoint: Endpoint) -> bool {
        match endpoint {
            Endpoint::Health => self.open.contains(&OpenEndpoint::Health),
            Endpoint::Metrics => self.open.contains(&OpenEndpoint::Metrics),
            Endpoint::Api => false,
        }
    }

    /// Whether a request with this Authorization header may reach `endpoint`.
    #[cfg(test)]
    fn allows(&self, endpoint: Endpoint, authorization: Option<&str>) -> bool {
        !self.enabled() || self.is_open(endpoint) || self.accepts(authorization)
    }

    /// Whether the header carries one of the Basic credentials or Bearer tokens given.
    pub(crate) fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some((scheme, credentials)) = authorization.and_then(|a| a.trim().split_once(' '))
        else {
            return false;
        };
        let credentials = credentials.trim().as_bytes();
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(pair) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
                return false;
            };
            any_equal(&self.basic, &pair)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            any_equal(&self.tokens, credentials)
        } else {
            false
        }
    }
}

/// Compares against every secret without stopping early, so the time taken says nothing about which
/// secret, or how much of one, matched.
fn any_equal(secrets: &[Vec<u8>], given: &[u8]) -> bool {
    secrets.iter().fold(false, |found, secret| {
        found | constant_time_eq(secret, given)
    })
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for k in 0..a.len().max(b.len()) {
        let x = a.get(k).copied().unwrap_or(0);
        let y = b.get(k).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

fn read_secret(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read credentials from {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                crate::messages::warning!(
                    "{} is readable by other users; `chmod 600` it",
                    path.display()
                );
            }
        }
    }
    Ok(text)
}

/// Non-empty lines that are not `#` comments, with their line numbers.
fn secret_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let lines: Vec<(usize, String)> = read_secret(path)?
        .lines()
        .enumerate()
        .map(|(k, l)| (k + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if lines.is_empty() {
        bail!("{}: no credentials in the file", path.display());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer() {
        let auth = Auth {
            basic: vec![b"ana:s3cret".to_vec()],
            tokens: vec![b"tok".to_vec()],
            open: vec![OpenEndpoint::Health],
        };
        let basic = |pair: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        assert!(auth.allows(Endpoint::Api, Some(&basic("ana:s3cret"))));
        assert!(!auth.allows(Endpoint::Api, Some(&basic("ana:s3cre"))));
        assert!(!auth.allows(Endpoint::Api, Some(&basic("ana:s3crett"))));
        assert!(auth.allows(Endpoint::Api, Some("Bearer tok")));
        assert!(auth.allows(Endpoint::Api, Some("bearer  tok ")));
        assert!(!auth.allows(Endpoint::Api, Some("Bearer to")));
        assert!(!auth.allows(Endpoint::Api, Some("Basic !!!")));
        assert!(!auth.allows(Endpoint::Api, None));
        assert!(auth.allows(Endpoint::Health, None));
        assert!(!auth.allows(Endpoint::Metrics, None));
        assert!(Auth::default().allows(Endpoint::Api, None));
    }
}
