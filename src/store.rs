//! A client for TorchServe's management API (Scancer's model store): every endpoint, pagination
//! followed, and each refusal turned into one line with the fix where it is known.

use crate::remote::{encode, Answer, Client, Exchange, TransportError};
use serde_json::Value;
use std::path::Path;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// No answer (connection, timeout): the message names the URL.
    #[error("{0}{hint}", hint = connect_hint(.0))]
    Transport(#[from] TransportError),
    /// The server answered with an error.
    #[error("{0}")]
    Refused(String),
}

fn connect_hint(e: &TransportError) -> &'static str {
    match e {
        TransportError::Connect { .. } => {
            " (is TorchServe's management API running there? Set --url, SCANCER_STORE_URL or a profile's store_url)"
        }
        _ => "",
    }
}

/// `POST /models` parameters (TorchServe's names).
#[derive(Debug, Clone, Default)]
pub(crate) struct Register {
    pub(crate) url: String,
    pub(crate) model_name: Option<String>,
    pub(crate) handler: Option<String>,
    pub(crate) runtime: Option<String>,
    pub(crate) batch_size: Option<u32>,
    pub(crate) max_batch_delay: Option<u32>,
    pub(crate) initial_workers: Option<u32>,
    pub(crate) synchronous: bool,
    pub(crate) response_timeout: Option<u32>,
}

pub(crate) struct Store<E: Exchange = Client> {
    client: E,
}

impl<E: Exchange> Store<E> {
    pub(crate) fn new(client: E) -> Store<E> {
        Store { client }
    }

    pub(crate) fn url(&self) -> &str {
        self.client.base()
    }

    fn call(&self, method: &str, path: &str) -> Result<Answer, StoreError> {
        let answer = self.client.send(method, path, None)?;
        if (200..300).contains(&answer.status) {
            Ok(answer)
        } else {
            Err(StoreError::Refused(self.refusal(method, path, &answer)))
        }
    }

    fn json(&self, method: &str, path: &str) -> Result<Value, StoreError> {
        let answer = self.call(method, path)?;
        answer.json().ok_or_else(|| {
            StoreError::Refused(format!(
                "{method} {}{path}: the answer is not JSON: {}",
                self.client.base(),
                answer.message()
            ))
        })
    }

    /// One line for an error answer: the request, the status, TorchServe's type and message, and
    /// what to do about it where that is known.
    fn refusal(&self, method: &str, path: &str, answer: &Answer) -> String {
        let kind = answer.error_type();
        let mut line = format!(
            "{method} {}{path}: HTTP {}",
            self.client.base(),
            answer.status
        );
        if let Some(kind) = &kind {
            line.push_str(&format!(" {kind}"));
        }
        let message = answer.message();
        if !message.is_empty() {
            line.push_str(&format!(": {message}"));
        }
        let credentials = self.client.credentials();
        let hint = match (answer.status, kind.as_deref()) {
            (405, _) if (method == "POST" && path.starts_with("/models?")) || method == "DELETE" => {
                Some("the server runs without --enable-model-api (TorchServe 0.11.1 and later turn register and unregister off by default)".to_string())
            }
            (400, Some("InvalidKeyException")) => Some(if credentials.has_token() {
                "the token is wrong or expired (TorchServe's keys expire after 60 minutes unless configured otherwise): take the management key from the server's current key_file.json".into()
            } else {
                "the server wants a token: pass --token, --token-file (TorchServe's key_file.json) or SCANCER_TOKEN".into()
            }),
            (401, _) => Some(if credentials.has_basic() {
                "wrong name or password for HTTP Basic auth (--user)".into()
            } else {
                "the server asks for HTTP Basic auth: pass --user NAME (the password is asked for), or set SCANCER_USER".into()
            }),
            _ => None,
        };
        if let Some(hint) = hint {
            line.push_str(&format!(" ({hint})"));
        }
        line
    }

    /// Every registered model, following `nextPageToken` through all pages.
    pub(crate) fn list(&self) -> Result<Vec<Value>, StoreError> {
        let mut models = Vec::new();
        let mut token: Option<String> = None;
        // Bounded: a server repeating its token must not loop forever.
        for _ in 0..100_000 {
            let path = match &token {
                Some(t) => format!("/models?limit=100&next_page_token={}", encode(t)),
                None => "/models?limit=100".to_string(),
            };
            let page = self.json("GET", &path)?;
            let entries = page["models"].as_array().cloned().unwrap_or_default();
            let count = entries.len();
            models.extend(entries);
            match page["nextPageToken"].as_str() {
                Some(next) if count > 0 && token.as_deref() != Some(next) => {
                    token = Some(next.to_string())
                }
                _ => return Ok(models),
            }
        }
        Ok(models)
    }

    /// `GET /models/{name}[/{version}|/all]`: an array of descriptions.
    pub(crate) fn describe(&self, name: &str, version: Option<&str>) -> Result<Value, StoreError> {
        self.json("GET", &model_path(name, version))
    }

    pub(crate) fn register(&self, r: &Register) -> Result<Value, StoreError> {
        if !r.url.contains("://") && (r.url.contains('/') || r.url.contains('\\')) {
            return Err(StoreError::Refused(format!(
                "{}: a path on this machine; TorchServe needs a URL it can download (http(s)://...) or the file name of an archive in its own model store (copy the .mar there and pass its name)",
                r.url
            )));
        }
        let mut query = vec![format!("url={}", encode(&r.url))];
        let mut add = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                query.push(format!("{key}={}", encode(&v)));
            }
        };
        add("model_name", r.model_name.clone());
        add("handler", r.handler.clone());
        add("runtime", r.runtime.clone());
        add("batch_size", r.batch_size.map(|v| v.to_string()));
        add("max_batch_delay", r.max_batch_delay.map(|v| v.to_string()));
        add("initial_workers", r.initial_workers.map(|v| v.to_string()));
        add(
            "response_timeout",
            r.response_timeout.map(|v| v.to_string()),
        );
        add("synchronous", Some(r.synchronous.to_string()));
        let path = format!("/models?{}", query.join("&"));
        self.json("POST", &path).map_err(|e| match e {
            StoreError::Refused(line)
                if line.contains("Model not found at") && Path::new(&r.url).is_file() =>
            {
                StoreError::Refused(format!(
                    "{line} ({} is a file on this machine; TorchServe looks for it in its own model store: copy it there, or give a URL)",
                    r.url
                ))
            }
            e => e,
        })
    }

    pub(crate) fn scale(
        &self,
        name: &str,
        version: Option<&str>,
        min: Option<u32>,
        max: Option<u32>,
        synchronous: bool,
    ) -> Result<Value, StoreError> {
        let mut path = model_path(name, version);
        let mut query = Vec::new();
        if let Some(min) = min {
            query.push(format!("min_worker={min}"));
        }
        if let Some(max) = max {
            query.push(format!("max_worker={max}"));
        }
        query.push(format!("synchronous={synchronous}"));
        path.push('?');
        path.push_str(&query.join("&"));
        self.json("PUT", &path)
    }

    pub(crate) fn set_default(&self, name: &str, version: &str) -> Result<Value, StoreError> {
        self.json(
            "PUT",
            &format!("{}/set-default", model_path(name, Some(version))),
        )
    }

    pub(crate) fn unregister(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Value, StoreError> {
        self.json("DELETE", &model_path(name, version))
    }

    /// READY workers and all workers of a model version (the default one without a version).
    pub(crate) fn workers(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(usize, usize), StoreError> {
        let described = self.describe(name, version)?;
        let workers = described[0]["workers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ready = workers.iter().filter(|w| w["status"] == "READY").count();
        Ok((ready, workers.len()))
    }
}

fn model_path(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("/models/{}/{}", encode(name), encode(v)),
        None => format!("/models/{}", encode(name)),
    }
}
