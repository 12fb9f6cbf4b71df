//! The model store: the folder a server registers archives from (TorchServe's `--model-store`),
//! what a registration's `url` names in it, and which archives `--models all` loads.

use std::path::{Component, Path, PathBuf};

pub(crate) struct ModelStore {
    pub(crate) dir: PathBuf,
}

/// Why a registration's `url` names no archive, with TorchServe's status and exception type.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unresolved {
    pub(crate) status: u16,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl ModelStore {
    pub(crate) fn new(dir: PathBuf) -> ModelStore {
        ModelStore { dir }
    }

    /// The archive a registration's `url` names in the store: a file or folder name relative to
    /// it, never outside it.
    pub(crate) fn file(&self, url: &str) -> Result<PathBuf, Unresolved> {
        if url.contains("..") {
            return Err(Unresolved {
                status: 404,
                kind: "ModelNotFoundException",
                message: format!("Relative path is not allowed in url: {url}"),
            });
        }
        let relative = Path::new(url);
        let inside = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let path = self.dir.join(relative);
        if url.is_empty() || !inside || !path.exists() {
            return Err(Unresolved {
                status: 404,
                kind: "ModelNotFoundException",
                message: format!("Model not found at: {url}"),
            });
        }
        Ok(path)
    }

    /// The archives in the store, by name, as TorchServe's `load_models=all` takes them: every
    /// folder, `.mar`, `.model` and `.tar.gz` file.
    pub(crate) fn all(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Downloads in progress and hidden files are not archives.
            if name.starts_with('.') {
                continue;
            }
            let archive = entry.file_type()?.is_dir()
                || [".mar", ".model", ".tar.gz"]
                    .iter()
                    .any(|ext| name.ends_with(ext));
            if archive {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_inside_the_store_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pcam.mar"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join(".pcam.mar.part"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("unpacked")).unwrap();
        let store = ModelStore::new(dir.path().to_path_buf());
        assert_eq!(store.file("pcam.mar").unwrap(), dir.path().join("pcam.mar"));
        for outside in [
            "missing.mar",
            "/etc/passwd",
            "../pcam.mar",
            "unpacked/../../x",
            "",
        ] {
            let err = store.file(outside).unwrap_err();
            assert_eq!(err.status, 404, "{outside}");
            assert_eq!(err.message, format!("Model not found at: {outside}"));
        }
        assert_eq!(store.all().unwrap(), ["pcam.mar", "unpacked"]);
    }
}
