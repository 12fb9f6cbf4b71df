//! Which files go into an archive, under which names: torch-model-archiver 0.12's rules
//! (`copy_artifacts` and `archive_dir` in model_packaging_utils.py), decided before anything is read
//! so that writing can stream each file once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Handlers TorchServe ships; an archive names them and carries no file for them.
pub(crate) const BUILT_IN_HANDLERS: &[&str] = &[
    "base_handler",
    "text_classifier",
    "image_classifier",
    "object_detector",
    "image_segmenter",
    "dali_image_classifier",
    "vllm_handler",
    "trt_llm_handler",
];

/// Folders torch-model-archiver leaves out wherever they appear (hidden ones too).
const UNWANTED_DIRS: &[&str] = &["__MACOSX", "__pycache__"];

/// A file to archive: its name inside the archive (`/`-separated, relative) and where it is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) source: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum EntryError {
    #[error("{0}: no such file")]
    Missing(String),
    #[error("{0}: not a file or folder")]
    Invalid(String),
    #[error("{0}: the file name is not valid UTF-8, which archives cannot name portably")]
    NotUtf8(String),
    #[error("extra files: folder {name}/ comes from both {first} and {second} (torch-model-archiver refuses this too)")]
    FolderClash {
        name: String,
        first: String,
        second: String,
    },
    #[error("{0}: cannot read the folder: {1}")]
    Unreadable(String, String),
}

/// The archive's files, by name; a later file of the same name replaces an earlier one, as
/// torch-model-archiver's copies into one folder do.
#[derive(Debug, Default)]
pub(crate) struct Entries {
    files: BTreeMap<String, (usize, PathBuf)>,
    /// Top-level folders added from extra-file folders, with the folder they came from.
    folders: BTreeMap<String, String>,
    next: usize,
}

impl Entries {
    /// A named file (serialized file, model file, handler, requirements, config): stored under its
    /// base name.
    pub(crate) fn add_file(&mut self, path: &Path) -> Result<(), EntryError> {
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(if path.exists() {
                EntryError::Invalid(shown)
            } else {
                EntryError::Missing(shown)
            });
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or(EntryError::NotUtf8(shown))?;
        self.insert(name.to_owned(), path);
        Ok(())
    }

    /// The handler: built-in names add nothing; a module name without `.py` means `name.py` (and
    /// `module:function` means `module.py`).
    pub(crate) fn add_handler(&mut self, handler: &str) -> Result<(), EntryError> {
        if BUILT_IN_HANDLERS.contains(&handler) {
            return Ok(());
        }
        let file = if handler.contains(".py") {
            handler.to_owned()
        } else {
            format!("{}.py", handler.split(':').next().unwrap_or(handler))
        };
        self.add_file(Path::new(&file))
    }

    /// `--extra-files`: a comma-separated list of files, folders and glob patterns. A folder's
    /// contents go to the archive root (its own name is dropped); its sub-folders keep their trees.
    pub(crate) fn add_extra_files(&mut self, list: &str) -> Result<(), EntryError> {
        for item in list.split(',').filter(|s| !s.trim().is_empty()) {
            let pattern = item.trim();
            let wildcard = pattern.contains('*')
                || pattern.contains('?')
                || (pattern.contains('[') && pattern.contains(']'));
            if !wildcard && !Path::new(pattern).exists() {
                return Err(EntryError::Missing(pattern.to_owned()));
            }
            let matches: Vec<PathBuf> = if wildcard {
                glob::glob(pattern)
                    .map_err(|e| EntryError::Invalid(format!("{pattern}: {e}")))?
                    .filter_map(Result::ok)
                    .collect()
            } else {
                vec![PathBuf::from(pattern)]
            };
            for path in matches {
                if path.is_file() {
                    self.add_file(&path)?;
                } else if path.is_dir() {
                    self.add_folder_contents(&path)?;
                } else {
                    return Err(EntryError::Invalid(path.display().to_string()));
                }
            }
        }
        Ok(())
    }

    fn add_folder_contents(&mut self, dir: &Path) -> Result<(), EntryError> {
        for child in sorted_children(dir)? {
            let name = utf8_name(&child)?;
            if child.is_file() {
                self.insert(name, &child);
            } else if child.is_dir() && !unwanted(&child) {
                if let Some(first) = self.folders.insert(name.clone(), dir.display().to_string()) {
                    return Err(EntryError::FolderClash {
                        name,
                        first,
                        second: dir.display().to_string(),
                    });
                }
                self.add_tree(&child, &name)?;
            }
        }
        Ok(())
    }

    fn add_tree(&mut self, dir: &Path, prefix: &str) -> Result<(), EntryError> {
        for child in sorted_children(dir)? {
            let name = format!("{prefix}/{}", utf8_name(&child)?);
            if child.is_file() {
                self.insert(name, &child);
            } else if child.is_dir() && !unwanted(&child) {
                self.add_tree(&child, &name)?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, name: String, source: &Path) {
        self.next += 1;
        self.files.insert(name, (self.next, source.to_path_buf()));
    }

    /// The entries in the order they were first given (a replaced file keeps its new place).
    pub(crate) fn into_vec(self) -> Vec<Entry> {
        let mut entries: Vec<(usize, Entry)> = self
            .files
            .into_iter()
            .map(|(name, (order, source))| (order, Entry { name, source }))
            .collect();
        entries.sort_by_key(|(order, _)| *order);
        entries.into_iter().map(|(_, e)| e).collect()
    }
}

fn unwanted(dir: &Path) -> bool {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.') || UNWANTED_DIRS.contains(&name)
}

fn utf8_name(path: &Path) -> Result<String, EntryError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| EntryError::NotUtf8(path.display().to_string()))
}

/// Sorted, so that archives do not depend on the file system's listing order.
fn sorted_children(dir: &Path) -> Result<Vec<PathBuf>, EntryError> {
    let unreadable =
        |e: std::io::Error| EntryError::Unreadable(dir.display().to_string(), e.to_string());
    let mut children = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        children.push(entry.map_err(unreadable)?.path());
    }
    children.sort();
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(entries: Entries) -> Vec<String> {
        entries.into_vec().into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn torch_model_archiver_extra_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("extra/sub/deeper")).unwrap();
        std::fs::create_dir_all(d.join("extra/sub/__pycache__")).unwrap();
        std::fs::create_dir_all(d.join("extra/.git")).unwrap();
        for f in [
            "extra/labels.json",
            "extra/sub/notes.md",
            "extra/sub/deeper/x.txt",
            "extra/sub/__pycache__/m.pyc",
            "extra/.git/HEAD",
            "README.txt",
            "a.csv",
            "b.csv",
            "labels.json",
        ] {
            std::fs::write(d.join(f), f).unwrap();
        }
        let mut entries = Entries::default();
        let p = |s: &str| d.join(s).display().to_string();
        entries
            .add_extra_files(&format!(
                "{},{}, {}",
                p("extra"),
                p("*.csv"),
                p("labels.json")
            ))
            .unwrap();
        let got = entries.into_vec();
        let shown: Vec<&str> = got.iter().map(|e| e.name.as_str()).collect();
        // The folder's own name is dropped; sub-folders keep their trees; hidden folders and
        // __pycache__ are left out at any depth; the later labels.json replaces the first.
        assert_eq!(
            shown,
            [
                "sub/deeper/x.txt",
                "sub/notes.md",
                "a.csv",
                "b.csv",
                "labels.json"
            ]
        );
        assert_eq!(got.last().unwrap().source, d.join("labels.json"));
    }

    #[test]
    fn handlers_and_missing_files() {
        let mut entries = Entries::default();
        entries.add_handler("image_classifier").unwrap();
        assert!(names(entries).is_empty());
        let mut entries = Entries::default();
        assert_eq!(
            entries.add_handler("no_such_handler:handle"),
            Err(EntryError::Missing("no_such_handler.py".into()))
        );
        assert_eq!(
            entries.add_extra_files("nowhere.txt"),
            Err(EntryError::Missing("nowhere.txt".into()))
        );
        assert_eq!(entries.add_extra_files("nothing-matches-*.zzz"), Ok(()));
    }

    #[test]
    fn the_same_folder_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a/sub/x", "b/sub/y"] {
            std::fs::create_dir_all(dir.path().join(f).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        let mut entries = Entries::default();
        let list = format!(
            "{},{}",
            dir.path().join("a").display(),
            dir.path().join("b").display()
        );
        assert!(matches!(
            entries.add_extra_files(&list),
            Err(EntryError::FolderClash { .. })
        ));
    }
}
