//! Where a model and its handler configuration come from: a model file (TorchScript, AOTInductor
//! `.pt2` or ONNX) with its TOML beside it (or `--config`), or a TorchServe archive (`.mar`, `.tar.gz` or an unpacked folder) that carries a
//! scancer configuration or names TorchServe's built-in `image_classifier` handler.

use crate::engine::handler_config::{
    Color, HandlerConfig, InputConfig, OutputConfig, OutputKind, ResizePolicy,
};
use crate::engine::model_format::ModelFormat;
use crate::engine::wsinfer;
use crate::mar::manifest::Manifest;
use crate::mar::read::{Archive, ArchiveError, Limits};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The name of scancer's handler configuration inside an archive.
pub(crate) const ARCHIVED_CONFIG: &str = "scancer-handler.toml";

/// A model file ready to load, and its configuration.
pub(crate) struct ModelSource {
    /// The file to load (inside a temporary file for archives).
    pub(crate) path: PathBuf,
    /// How to name the model in messages.
    pub(crate) name: String,
    /// What the model file holds, which decides the engine that runs it.
    pub(crate) format: ModelFormat,
    pub(crate) config: HandlerConfig,
    /// The archive's manifest (None for a bare TorchScript file).
    pub(crate) manifest: Option<Manifest>,
    /// sha256 of the handler configuration as read.
    config_sha256: String,
    /// Keeps an unpacked archive member alive until the model is loaded.
    _unpacked: Option<Unpacked>,
}

impl ModelSource {
    pub(crate) fn open(model: &Path, explicit_config: Option<&Path>) -> Result<ModelSource> {
        ModelSource::open_in_store(model, explicit_config, None)
    }

    /// `open`, for an archive in a model store: `store_config` is the handler configuration the
    /// store keeps beside it (`NAME.toml`), used when the archive carries none of its own.
    pub(crate) fn open_in_store(
        model: &Path,
        explicit_config: Option<&Path>,
        store_config: Option<&Path>,
    ) -> Result<ModelSource> {
        if is_archive(model) {
            return from_archive(model, explicit_config, store_config);
        }
        if wsinfer::is_model_folder(model) {
            return from_wsinfer(model, explicit_config);
        }
        let config_path = match explicit_config {
            Some(path) => path.to_path_buf(),
            None => beside(model)?,
        };
        let (config, config_sha256) = read_config(&config_path)?;
        Ok(ModelSource {
            format: ModelFormat::of(model, &model.to_string_lossy()),
            path: model.to_path_buf(),
            name: model.display().to_string(),
            config,
            manifest: None,
            config_sha256,
            _unpacked: None,
        })
    }

    /// The model file's and the configuration's sha256 (reads the whole model file).
    pub(crate) fn identity(&self) -> std::io::Result<ModelIdentity> {
        let mut hasher = Sha256::new();
        std::io::copy(&mut std::fs::File::open(&self.path)?, &mut hasher)?;
        Ok(ModelIdentity {
            model_sha256: hex(&hasher.finalize()),
            config_sha256: self.config_sha256.clone(),
        })
    }
}

/// What identifies a model's results: its TorchScript file and handler configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelIdentity {
    /// sha256 of the TorchScript file (the member inside an archive).
    pub(crate) model_sha256: String,
    /// sha256 of the handler configuration's TOML as read (of its JSON form where the configuration
    /// is derived, as for TorchServe's built-in `image_classifier`).
    pub(crate) config_sha256: String,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A handler configuration file, and the sha256 of its bytes.
fn read_config(path: &Path) -> Result<(HandlerConfig, String)> {
    let text = HandlerConfig::read_text(path)?;
    let config = HandlerConfig::from_toml(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((config, sha256_hex(text.as_bytes())))
}

/// A WSInfer model folder: its TorchScript file, run as its `config.json` says (or as `--config`
/// says).
fn from_wsinfer(folder: &Path, explicit_config: Option<&Path>) -> Result<ModelSource> {
    let shown = folder.display().to_string();
    let model = wsinfer::model_file(folder).map_err(|e| anyhow!("{shown}: {e}"))?;
    let (config, config_sha256) = match explicit_config {
        Some(explicit) => read_config(explicit)?,
        None => {
            let path = folder.join(wsinfer::CONFIG);
            let text = HandlerConfig::read_text(&path)?;
            let config = wsinfer::handler_config(&text)
                .map_err(|e| anyhow!("{}: WSInfer configuration: {e}", path.display()))?;
            (config, sha256_hex(text.as_bytes()))
        }
    };
    let file = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(ModelSource {
        format: ModelFormat::of(&model, &file),
        path: model,
        name: format!("{shown} ({file})"),
        config,
        manifest: None,
        config_sha256,
        _unpacked: None,
    })
}

/// An archive's model, unpacked for libtorch, which loads from a path.
enum Unpacked {
    /// A file without a name (Linux: O_TMPFILE), loaded through /proc/self/fd: nothing is left
    /// behind even when the process is killed while loading.
    #[cfg(target_os = "linux")]
    Anonymous(#[allow(dead_code)] std::fs::File),
    /// A named temporary file, removed when dropped.
    #[cfg(not(target_os = "linux"))]
    Named(#[allow(dead_code)] tempfile::NamedTempFile),
}

#[cfg(target_os = "linux")]
fn unpack(archive: &Archive, member: &str) -> Result<(PathBuf, Unpacked), ArchiveError> {
    use std::os::fd::AsRawFd;
    let file = archive.extract_anonymous(member)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    Ok((path, Unpacked::Anonymous(file)))
}

#[cfg(not(target_os = "linux"))]
fn unpack(archive: &Archive, member: &str) -> Result<(PathBuf, Unpacked), ArchiveError> {
    let temp = archive.extract_temp(member)?;
    Ok((temp.path().to_path_buf(), Unpacked::Named(temp)))
}

/// `.mar`, `.tar.gz`/`.tgz`, or a folder with `MAR-INF/MANIFEST.json`.
fn is_archive(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.ends_with(".mar")
        || name.ends_with(".tar.gz")
        || name.ends_with(".tgz")
        || path.join("MAR-INF/MANIFEST.json").is_file()
}

/// Whether a file starts as a zip file does (TorchScript files are zip files).
fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| magic == *b"PK\x03\x04")
}

/// The model's path with `.toml`.
fn beside(model: &Path) -> Result<PathBuf> {
    let beside = model.with_extension("toml");
    if beside.is_file() {
        return Ok(beside);
    }
    if !model.exists() {
        bail!("{}: no such model file", model.display());
    }
    if model.is_file()
        && !is_zip(model)
        && ModelFormat::of(model, &model.to_string_lossy()) != ModelFormat::Onnx
    {
        bail!(
            "{}: not a model: neither a model archive (.mar, .tar.gz, a folder with \
             MAR-INF/MANIFEST.json) nor a model file (TorchScript or .pt2, zip files; ONNX)",
            model.display()
        );
    }
    bail!(
        "{}: no handler configuration: pass --config FILE (or put one at {})",
        model.display(),
        beside.display()
    )
}

fn from_archive(
    path: &Path,
    explicit_config: Option<&Path>,
    store_config: Option<&Path>,
) -> Result<ModelSource> {
    let archive = Archive::open(path, Limits::default())?;
    let shown = path.display().to_string();
    let model = &archive.manifest.model;
    if let Some(model_file) = &model.model_file {
        bail!("{shown}: the archive holds an eager-mode model (modelFile {model_file}) that needs Python; scancer runs TorchScript, AOTInductor (.pt2) and ONNX models");
    }
    let serialized = model
        .serialized_file
        .clone()
        .ok_or_else(|| anyhow!("{shown}: the manifest names no serializedFile (the model file)"))?;
    let (config, config_sha256) = if let Some(explicit) = explicit_config {
        read_config(explicit)?
    } else if archive.files.contains_key(ARCHIVED_CONFIG) {
        let text = archive.read(ARCHIVED_CONFIG, 1 << 20)?;
        let text = String::from_utf8(text)
            .map_err(|_| anyhow!("{shown}: {ARCHIVED_CONFIG} is not UTF-8"))?;
        let config = HandlerConfig::from_toml(&text)
            .map_err(|e| anyhow!("{shown}: {ARCHIVED_CONFIG}: {e}"))?;
        (config, sha256_hex(text.as_bytes()))
    } else if model.handler == "image_classifier" {
        let config = image_classifier(&archive)?;
        let canonical = serde_json::to_string(&config).map_err(|e| anyhow!("{shown}: {e}"))?;
        (config, sha256_hex(canonical.as_bytes()))
    } else if let Some(beside) = store_config.filter(|p| p.is_file()) {
        read_config(beside)?
    } else if let Some(beside) = store_config {
        bail!(
            "{shown}: handler {:?} is custom Python code and the archive carries no {ARCHIVED_CONFIG}: put a handler configuration at {} to say how to run it",
            model.handler,
            beside.display()
        );
    } else {
        bail!(
            "{shown}: handler {:?} is custom Python code and the archive carries no {ARCHIVED_CONFIG}: pass --config FILE to say how to run it",
            model.handler
        );
    };
    let (path, unpacked) = unpack(&archive, &serialized)
        .with_context(|| format!("{shown}: cannot unpack {serialized}"))?;
    Ok(ModelSource {
        format: ModelFormat::of(&path, &serialized),
        path,
        name: format!("{shown} ({serialized})"),
        config,
        manifest: Some(archive.manifest.clone()),
        config_sha256,
        _unpacked: Some(unpacked),
    })
}

/// TorchServe's built-in `image_classifier`: Resize(256), CenterCrop(224), ImageNet normalisation,
/// softmax top-5, labels from `index_to_name.json` at the archive root (a name, or a list whose last
/// element is the name). Unlike the Python handler, images are converted to RGB first, so RGBA or
/// grayscale files do not crash the model.
fn image_classifier(archive: &Archive) -> Result<HandlerConfig> {
    let shown = archive.path().display().to_string();
    let labels = if archive.files.contains_key("index_to_name.json") {
        let bytes = archive.read("index_to_name.json", 16 << 20)?;
        Some(index_to_name(&bytes).map_err(|e| anyhow!("{shown}: index_to_name.json: {e}"))?)
    } else {
        None
    };
    Ok(HandlerConfig {
        input: InputConfig {
            height: 224,
            width: 224,
            color: Color::Rgb,
            mean: Some(vec![0.485, 0.456, 0.406]),
            std: Some(vec![0.229, 0.224, 0.225]),
            resize: ResizePolicy::ShorterSideCrop,
            resize_shorter_side: Some(256),
            patch: false,
            mpp: None,
        },
        output: OutputConfig {
            kind: OutputKind::Multiclass,
            threshold: None,
            labels,
            top_k: Some(5),
        },
    })
}

/// Why an archive's `index_to_name.json` gives no labels.
#[derive(Debug, thiserror::Error)]
enum IndexToNameError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("key {0:?} is not a class index")]
    NotAnIndex(String),
    #[error("class {0}: the list's last element is not a name")]
    ListWithoutName(usize),
    #[error("class {0}: not a name or a list of names")]
    NotAName(usize),
    #[error("class {index} is beyond the {count} classes listed")]
    Beyond { index: usize, count: usize },
    #[error("class {0} is missing")]
    Missing(usize),
}

/// `{"0": "cat", "1": ["n01", "dog"]}` -> `["cat", "dog"]`; every index from 0 must be present.
fn index_to_name(bytes: &[u8]) -> Result<Vec<String>, IndexToNameError> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)?;
    let mut labels = vec![None; map.len()];
    for (key, value) in &map {
        let index: usize = key
            .parse()
            .map_err(|_| IndexToNameError::NotAnIndex(key.clone()))?;
        let name = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => match items.last() {
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => return Err(IndexToNameError::ListWithoutName(index)),
            },
            _ => return Err(IndexToNameError::NotAName(index)),
        };
        *labels.get_mut(index).ok_or(IndexToNameError::Beyond {
            index,
            count: map.len(),
        })? = Some(name);
    }
    labels
        .into_iter()
        .enumerate()
        .map(|(i, l)| l.ok_or(IndexToNameError::Missing(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_beside_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.pt");
        // A file that is not even a zip file is no model, whatever configuration it gets.
        std::fs::write(&model, b"x").unwrap();
        let err = beside(&model).unwrap_err().to_string();
        assert!(err.contains("m.pt: not a model: neither"), "{err}");
        std::fs::write(&model, b"PK\x03\x04 a TorchScript file").unwrap();
        let err = beside(&model).unwrap_err().to_string();
        assert!(
            err.contains("no handler configuration") && err.contains("m.toml"),
            "{err}"
        );
        std::fs::write(dir.path().join("m.toml"), b"").unwrap();
        assert_eq!(beside(&model).unwrap(), dir.path().join("m.toml"));
        assert!(beside(&dir.path().join("gone.pt"))
            .unwrap_err()
            .to_string()
            .contains("no such model file"));
    }

    #[test]
    fn index_to_name_forms() {
        assert_eq!(
            index_to_name(br#"{"1": ["n1", "dog"], "0": "cat"}"#).unwrap(),
            ["cat", "dog"]
        );
        let message = |bytes: &[u8]| index_to_name(bytes).unwrap_err().to_string();
        assert_eq!(
            message(br#"{"0": "cat", "2": "dog"}"#),
            "class 2 is beyond the 2 classes listed"
        );
        assert_eq!(
            message(br#"{"x": "cat"}"#),
            "key \"x\" is not a class index"
        );
        assert_eq!(
            message(br#"{"0": 3}"#),
            "class 0: not a name or a list of names"
        );
        assert_eq!(
            message(br#"{"0": ["n0", 1]}"#),
            "class 0: the list's last element is not a name"
        );
        // "00" is class 0 again, so class 1 has no name.
        assert_eq!(
            message(br#"{"0": "cat", "00": "dog"}"#),
            "class 1 is missing"
        );
        assert!(matches!(
            index_to_name(b"{"),
            Err(IndexToNameError::Json(_))
        ));
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/mar")
            .join(name)
    }

    #[test]
    fn archives_name_their_configuration() {
        let source = ModelSource::open(&fixture("tissue.mar"), None).unwrap();
        assert_eq!(source.config.input.resize_shorter_side, Some(256));
        assert_eq!(
            source.config.output.labels.as_deref().unwrap(),
            ["adipose", "stroma", "tumour", "lymphocytes"]
        );
        assert!(source.path.is_file(), "unpacked while the source lives");
        let temp = source.path.clone();
        let inode = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
        };
        let unpacked = inode(&temp);
        drop(source);
        // The unpacked file is nameless (/proc/self/fd/N); once closed, N may be another test's
        // file, but never this one.
        assert_ne!(inode(&temp), unpacked, "and gone afterwards");

        let err = ModelSource::open(&fixture("tissue-full.mar"), None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("eager-mode model (modelFile model.py)"),
            "{err}"
        );
    }
}
