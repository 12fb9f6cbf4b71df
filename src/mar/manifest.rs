//! `MAR-INF/MANIFEST.json`: torch-model-archiver 0.12's schema, key order and formatting
//! (`json.dumps(indent=2)`: two-space indent, ASCII only, no trailing newline), so that an archive
//! written by scancer carries the manifest torch-model-archiver would write, byte for byte.

use serde::{Deserialize, Serialize};

/// The archiver version scancer writes into manifests: the format it reproduces.
pub(crate) const ARCHIVER_VERSION: &str = "0.12.0";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    /// Local time of archiving, `%d/%m/%Y %H:%M:%S`; TorchServe serves archives without it.
    #[serde(default)]
    pub(crate) created_on: String,
    pub(crate) runtime: String,
    pub(crate) model: ModelSection,
    pub(crate) archiver_version: String,
}

/// The `model` object; optional keys appear only when set, in torch-model-archiver's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelSection {
    pub(crate) model_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) serialized_file: Option<String>,
    pub(crate) handler: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) model_file: Option<String>,
    /// TorchServe defaults a missing version to "1.0".
    #[serde(default = "default_version")]
    pub(crate) model_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) requirements_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) config_file: Option<String>,
}

fn default_version() -> String {
    "1.0".into()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ManifestError {
    #[error("MAR-INF/MANIFEST.json is not a valid manifest: {0}")]
    Malformed(String),
    #[error("model name {0:?} is not allowed: it must match ^[A-Za-z0-9][A-Za-z0-9_\\-.]*$ (as in torch-model-archiver)")]
    BadName(String),
}

impl Manifest {
    /// The manifest as torch-model-archiver 0.12 writes it.
    pub(crate) fn to_json(&self) -> String {
        let pretty = serde_json::to_string_pretty(self).expect("a manifest always serialises");
        ascii_only(&pretty)
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        validate_model_name(&manifest.model.model_name)?;
        Ok(manifest)
    }
}

/// torch-model-archiver's rule for model names: `^[A-Za-z0-9][A-Za-z0-9_\-.]*$`.
pub(crate) fn validate_model_name(name: &str) -> Result<(), ManifestError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        Ok(())
    } else {
        Err(ManifestError::BadName(name.to_owned()))
    }
}

/// Python's `ensure_ascii`: every non-ASCII character as `\uXXXX` (UTF-16, surrogate pairs beyond
/// the BMP). JSON's structure is ASCII, so only string contents change.
fn ascii_only(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `createdOn`: torch-model-archiver's `%d/%m/%Y %H:%M:%S`.
pub(crate) fn created_on(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> String {
    format!("{day:02}/{month:02}/{year:04} {hour:02}:{minute:02}:{second:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn fixture_manifest(archive: &str) -> Vec<u8> {
        let path = format!("{}/testdata/mar/{archive}", env!("CARGO_MANIFEST_DIR"));
        let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut bytes = Vec::new();
        zip.by_name("MAR-INF/MANIFEST.json")
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }

    /// Manifests written by the real torch-model-archiver 0.12 (examples/make_tma_fixtures.sh)
    /// come out of scancer's writer byte for byte.
    #[test]
    fn round_trips_torch_model_archiver_manifests() {
        for archive in ["tissue.mar", "tissue-full.mar", "tissue-store.mar"] {
            let bytes = fixture_manifest(archive);
            let manifest = Manifest::parse(&bytes).unwrap();
            assert_eq!(manifest.to_json().as_bytes(), bytes.as_slice(), "{archive}");
        }
        let dir = format!(
            "{}/testdata/mar/tissue-dir/MAR-INF/MANIFEST.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(dir).unwrap();
        assert_eq!(
            Manifest::parse(&bytes).unwrap().to_json().as_bytes(),
            bytes.as_slice()
        );
    }

    #[test]
    fn full_manifest_fields() {
        let m = Manifest::parse(&fixture_manifest("tissue-full.mar")).unwrap();
        assert_eq!(m.runtime, "python");
        assert_eq!(m.archiver_version, ARCHIVER_VERSION);
        assert_eq!(m.model.model_name, "tissue-full");
        assert_eq!(m.model.model_version, "2.1");
        assert_eq!(m.model.handler, "tissue_handler.py");
        assert_eq!(m.model.model_file.as_deref(), Some("model.py"));
        assert_eq!(
            m.model.requirements_file.as_deref(),
            Some("requirements.txt")
        );
        assert_eq!(m.model.config_file.as_deref(), Some("model-config.yaml"));
        assert_eq!(created_on(2026, 11, 7, 8, 5, 9), "07/11/2026 08:05:09");
        assert_eq!(m.created_on.len(), "27/11/2026 08:16:08".len());
    }

    #[test]
    fn non_ascii_is_escaped_like_python() {
        let mut m = Manifest::parse(&fixture_manifest("tissue.mar")).unwrap();
        m.model.handler = "café_🔬.py".into();
        assert!(
            m.to_json()
                .contains(r#""handler": "caf\u00e9_\ud83d\udd2c.py""#),
            "{}",
            m.to_json()
        );
        assert_eq!(Manifest::parse(m.to_json().as_bytes()).unwrap(), m);
    }

    #[test]
    fn model_names() {
        for ok in ["pcam-classification", "a", "A0_b-c.d", "9lives"] {
            assert_eq!(validate_model_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-x", ".x", "_x", "a b", "a/b", "../x", "é", "x:1"] {
            assert!(validate_model_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_manifests() {
        assert!(matches!(
            Manifest::parse(b"{"),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            Manifest::parse(b"{\"runtime\": \"python\"}"),
            Err(ManifestError::Malformed(_))
        ));
        let missing_version =
            br#"{"createdOn": "x", "runtime": "python", "archiverVersion": "0.12.0",
            "model": {"modelName": "m", "handler": "image_classifier"}}"#;
        assert_eq!(
            Manifest::parse(missing_version)
                .unwrap()
                .model
                .model_version,
            "1.0"
        );
        let bad_name = br#"{"createdOn": "x", "runtime": "python", "archiverVersion": "0.12.0",
            "model": {"modelName": "../evil", "handler": "image_classifier"}}"#;
        assert!(matches!(
            Manifest::parse(bad_name),
            Err(ManifestError::BadName(_))
        ));
    }
}
