//! TorchServe's token authorization: at start the server writes `key_file.json` (mode 600) with a
//! management key, an inference key (each expiring after token_expiration_min) and an API key; the
//! management API takes `Authorization: Bearer <management key>`, the inference API and gRPC the
//! inference key, and `/token?type=management|inference` with the API key makes a new key of that
//! type. Keys are 128 random bits (TorchServe's are 48), compared in constant time.

use anyhow::{Context, Result};
use base64::Engine as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Which key a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Management,
    Inference,
    /// The key of `/token`.
    Api,
}

struct Key {
    key: String,
    expires: Option<chrono::DateTime<chrono::Utc>>,
}

struct Keys {
    management: Key,
    inference: Key,
    api: Key,
}

pub(crate) struct Tokens {
    path: PathBuf,
    lifetime: Duration,
    keys: Mutex<Keys>,
}

/// TorchServe's answer to a request without the right key.
pub(crate) const REFUSED: &str =
    "Token Authorization failed. Token either incorrect, expired, or not provided correctly";
/// ... and to a `/token` request without the API key (TorchServe says Authentication there).
pub(crate) const REFUSED_TOKEN: &str =
    "Token Authentication failed. Token either incorrect, expired, or not provided correctly";

impl Tokens {
    /// New keys, written to `path` (replacing a previous server's file, as TorchServe does).
    pub(crate) fn generate(path: PathBuf, lifetime: Duration) -> Result<Tokens> {
        let expires = || Some(chrono::Utc::now() + lifetime);
        let tokens = Tokens {
            path,
            lifetime,
            keys: Mutex::new(Keys {
                management: Key {
                    key: random_key()?,
                    expires: expires(),
                },
                inference: Key {
                    key: random_key()?,
                    expires: expires(),
                },
                api: Key {
                    key: random_key()?,
                    expires: None,
                },
            }),
        };
        tokens.save(&tokens.lock())?;
        Ok(tokens)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Whether `authorization` is `Bearer <key>` with the current, unexpired key of `kind`
    /// (TorchServe's exact, case-sensitive form).
    pub(crate) fn allows(&self, kind: KeyKind, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
            return false;
        };
        let keys = self.lock();
        let key = match kind {
            KeyKind::Management => &keys.management,
            KeyKind::Inference => &keys.inference,
            KeyKind::Api => &keys.api,
        };
        let current = key.expires.is_none_or(|at| chrono::Utc::now() < at);
        super::auth::constant_time_eq(key.key.as_bytes(), given.trim().as_bytes()) && current
    }

    /// A new key of `kind` (management or inference), written to the key file.
    pub(crate) fn regenerate(&self, kind: KeyKind) -> Result<()> {
        let mut keys = self.lock();
        let fresh = Key {
            key: random_key()?,
            expires: Some(chrono::Utc::now() + self.lifetime),
        };
        match kind {
            KeyKind::Management => keys.management = fresh,
            KeyKind::Inference => keys.inference = fresh,
            KeyKind::Api => return Ok(()),
        }
        self.save(&keys)
    }

    /// The key file, as TorchServe writes it (pretty JSON, no final newline), readable by its owner
    /// only from its first byte on, replaced in one rename.
    fn save(&self, keys: &Keys) -> Result<()> {
        let when = |k: &Key| {
            k.expires
                .map(|at| at.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
                .unwrap_or_default()
        };
        let body = serde_json::json!({
            "management": {"key": keys.management.key, "expiration time": when(&keys.management)},
            "inference": {"key": keys.inference.key, "expiration time": when(&keys.inference)},
            "API": {"key": keys.api.key},
        });
        let text = super::pyjson::dumps(&body);
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let mut temp = tempfile::Builder::new()
            .prefix(".key_file")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write the key file in {}", dir.display()))?;
        temp.write_all(text.as_bytes())?;
        temp.as_file().sync_all()?;
        // tempfile makes its files 600.
        temp.persist(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

/// 16 random bytes, URL-safe base64 without padding (22 characters).
fn random_key() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_checked_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key_file.json");
        let tokens = Tokens::generate(path.clone(), Duration::from_secs(3600)).unwrap();
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let management = file["management"]["key"].as_str().unwrap().to_string();
        let inference = file["inference"]["key"].as_str().unwrap().to_string();
        let api = file["API"]["key"].as_str().unwrap().to_string();
        assert_eq!(management.len(), 22);
        assert!(file["management"]["expiration time"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let bearer = |k: &str| format!("Bearer {k}");
        assert!(tokens.allows(KeyKind::Management, Some(&bearer(&management))));
        assert!(!tokens.allows(KeyKind::Inference, Some(&bearer(&management))));
        assert!(!tokens.allows(KeyKind::Management, Some(&format!("bearer {management}"))));
        assert!(tokens.allows(KeyKind::Api, Some(&bearer(&api))));
        assert!(!tokens.allows(KeyKind::Inference, None));
        tokens.regenerate(KeyKind::Inference).unwrap();
        assert!(!tokens.allows(KeyKind::Inference, Some(&bearer(&inference))));
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let fresh = file["inference"]["key"].as_str().unwrap();
        assert!(tokens.allows(KeyKind::Inference, Some(&bearer(fresh))));
        assert_eq!(file["management"]["key"], management.as_str());
        // Expired keys are refused.
        let expired = Tokens::generate(path, Duration::ZERO).unwrap();
        let file: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("key_file.json")).unwrap(),
        )
        .unwrap();
        let key = file["management"]["key"].as_str().unwrap();
        assert!(!expired.allows(KeyKind::Management, Some(&bearer(key))));
    }
}
