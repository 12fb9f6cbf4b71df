//! Reading model archives in the three layouts TorchServe 0.12 accepts: a `.mar` zip, a `.tar.gz`
//! whose members sit under one top folder (stripped, as TorchServe does), and an unpacked folder
//! (`no-archive`). Archives come from contributors, so nothing is trusted: names that escape the
//! archive, links, duplicate names, sizes beyond the limits and manifests that name missing files
//! are refused before anything is used, and nothing is extracted to disk but the model, into a
//! temporary file that is removed after loading.

use super::manifest::{Manifest, ManifestError};
use super::write::MANIFEST_PATH;
use flate2::read::GzDecoder;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// Limits against decompression bombs: the total unpacked size, and (for zips, whose headers
/// declare it) the expansion ratio of any one entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_total_bytes: u64,
    pub(crate) max_ratio: u64,
}

/// Entries smaller than this are not held to the expansion ratio.
const RATIO_CHECK_FROM: u64 = 16 << 20;

impl Default for Limits {
    fn default() -> Self {
        // A large model is a few GiB of nearly incompressible tensors; text compresses ~10x.
        Limits {
            max_total_bytes: 64 << 30,
            max_ratio: 200,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: not a model archive: {detail}")]
    NotArchive { path: String, detail: String },
    #[error("{path}: unsafe entry {name:?}: {why}")]
    Unsafe {
        path: String,
        name: String,
        why: &'static str,
    },
    #[error("{path}: entry {name:?} appears more than once")]
    Duplicate { path: String, name: String },
    #[error("{path}: {detail} (limit against decompression bombs)")]
    TooLarge { path: String, detail: String },
    #[error("{path}: no MAR-INF/MANIFEST.json")]
    NoManifest { path: String },
    /// The manifest's error is this one's message, not a cause below it (it would be said twice).
    #[error("{path}: {error}")]
    Manifest { path: String, error: ManifestError },
    #[error("{path}: the manifest names {name:?} ({field}), which the archive does not contain")]
    MissingFile {
        path: String,
        name: String,
        field: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Zip,
    Tgz,
    Folder,
}

/// An opened, checked archive: its manifest and the names and sizes of its files.
#[derive(Debug)]
pub(crate) struct Archive {
    path: PathBuf,
    layout: Layout,
    pub(crate) manifest: Manifest,
    /// Name -> unpacked size.
    pub(crate) files: BTreeMap<String, u64>,
    limits: Limits,
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// A member name as TorchServe would place it, or why it is refused.
fn safe_name(name: &str) -> Result<String, &'static str> {
    if name.contains('\0') {
        return Err("contains a NUL byte");
    }
    let path = Path::new(name);
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_str().ok_or("is not UTF-8")?),
            Component::CurDir => {}
            Component::ParentDir => return Err("leads out of the archive (..)"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    if parts.is_empty() {
        return Err("is empty");
    }
    Ok(parts.join("/"))
}

impl Archive {
    pub(crate) fn open(path: &Path, limits: Limits) -> Result<Archive, ArchiveError> {
        let meta = std::fs::symlink_metadata(path).map_err(|source| ArchiveError::Io {
            path: shown(path),
            source,
        })?;
        let (layout, files) = if meta.is_dir() {
            (Layout::Folder, list_folder(path)?)
        } else {
            let mut magic = [0u8; 4];
            let mut f = File::open(path).map_err(|source| ArchiveError::Io {
                path: shown(path),
                source,
            })?;
            let n = f.read(&mut magic).map_err(|source| ArchiveError::Io {
                path: shown(path),
                source,
            })?;
            match &magic[..n] {
                [b'P', b'K', 3, 4] | [b'P', b'K', 5, 6] => (Layout::Zip, list_zip(path, limits)?),
                [0x1f, 0x8b, ..] => (Layout::Tgz, list_tgz(path, limits)?),
                _ => {
                    return Err(ArchiveError::NotArchive {
                        path: shown(path),
                        detail: "neither a zip (.mar), a gzip (.tar.gz) nor a folder".into(),
                    })
                }
            }
        };
        let total: u64 = files.values().sum();
        if total > limits.max_total_bytes {
            return Err(ArchiveError::TooLarge {
                path: shown(path),
                detail: format!("{total} bytes unpacked, over {}", limits.max_total_bytes),
            });
        }
        let mut archive = Archive {
            path: path.to_path_buf(),
            layout,
            manifest: placeholder_manifest(),
            files,
            limits,
        };
        if !archive.files.contains_key(MANIFEST_PATH) {
            return Err(ArchiveError::NoManifest { path: shown(path) });
        }
        let bytes = archive.read(MANIFEST_PATH, 1 << 20)?;
        archive.manifest = Manifest::parse(&bytes).map_err(|error| ArchiveError::Manifest {
            path: shown(path),
            error,
        })?;
        let model = &archive.manifest.model;
        let named = [
            ("serializedFile", model.serialized_file.as_deref()),
            ("modelFile", model.model_file.as_deref()),
            ("requirementsFile", model.requirements_file.as_deref()),
            ("configFile", model.config_file.as_deref()),
        ];
        for (field, name) in named {
            if let Some(name) = name {
                if !archive.files.contains_key(name) {
                    return Err(ArchiveError::MissingFile {
                        path: shown(path),
                        name: name.into(),
                        field,
                    });
                }
            }
        }
        Ok(archive)
    }

    #[cfg(test)]
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads one member whole, refusing more than `max_bytes` (whatever its header says).
    pub(crate) fn read(&self, name: &str, max_bytes: u64) -> Result<Vec<u8>, ArchiveError> {
        let mut out = Vec::new();
        self.copy_to(name, &mut out, max_bytes)?;
        Ok(out)
    }

    /// Streams one member into `sink`, refusing more than `max_bytes`.
    pub(crate) fn copy_to(
        &self,
        name: &str,
        sink: &mut dyn io::Write,
        max_bytes: u64,
    ) -> Result<u64, ArchiveError> {
        let path = &self.path;
        let io_err = |source| ArchiveError::Io {
            path: shown(path),
            source,
        };
        let limit = max_bytes.min(self.limits.max_total_bytes);
        let copied = match self.layout {
            Layout::Folder => {
                let file = File::open(path.join(name)).map_err(io_err)?;
                io::copy(&mut file.take(limit + 1), sink).map_err(io_err)?
            }
            Layout::Zip => {
                let file = File::open(path).map_err(io_err)?;
                let mut zip =
                    zip::ZipArchive::new(BufReader::new(file)).map_err(|e| not_archive(path, e))?;
                let entry = zip.by_name(name).map_err(|e| not_archive(path, e))?;
                // Bound to a name so the entry (which borrows `zip`) is dropped before `zip`.
                #[allow(clippy::let_and_return)]
                let copied = io::copy(&mut entry.take(limit + 1), sink).map_err(io_err)?;
                copied
            }
            Layout::Tgz => {
                let file = File::open(path).map_err(io_err)?;
                let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
                let mut found = None;
                for entry in tar.entries().map_err(io_err)? {
                    let mut entry = entry.map_err(io_err)?;
                    let raw = entry.path().map_err(io_err)?.to_string_lossy().into_owned();
                    if strip_first(&raw).is_some_and(|n| n == name) {
                        found = Some(
                            io::copy(&mut (&mut entry).take(limit + 1), sink).map_err(io_err)?,
                        );
                        break;
                    }
                }
                found.ok_or_else(|| ArchiveError::MissingFile {
                    path: shown(path),
                    name: name.into(),
                    field: "member",
                })?
            }
        };
        if copied > limit {
            return Err(ArchiveError::TooLarge {
                path: shown(path),
                detail: format!("{name} unpacks to more than {limit} bytes"),
            });
        }
        Ok(copied)
    }

    /// Unpacks one member into a file without a name (removed by the system when closed, or when
    /// the process dies).
    pub(crate) fn extract_anonymous(&self, name: &str) -> Result<std::fs::File, ArchiveError> {
        let mut file = tempfile::tempfile().map_err(|source| ArchiveError::Io {
            path: "temporary file".into(),
            source,
        })?;
        self.copy_to(name, &mut file, u64::MAX)?;
        Ok(file)
    }

    /// Unpacks one member into a temporary file (removed when dropped), for loaders that need a path.
    #[cfg(any(test, not(target_os = "linux")))]
    pub(crate) fn extract_temp(&self, name: &str) -> Result<tempfile::NamedTempFile, ArchiveError> {
        let suffix = Path::new(name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let mut temp = tempfile::Builder::new()
            .prefix(".scancer-model-")
            .suffix(&suffix)
            .tempfile()
            .map_err(|source| ArchiveError::Io {
                path: "temporary file".into(),
                source,
            })?;
        self.copy_to(name, temp.as_file_mut(), u64::MAX)?;
        Ok(temp)
    }
}

fn placeholder_manifest() -> Manifest {
    Manifest::parse(br#"{"createdOn": "", "runtime": "python", "archiverVersion": "", "model": {"modelName": "x", "handler": ""}}"#)
        .expect("a valid placeholder")
}

fn not_archive(path: &Path, e: zip::result::ZipError) -> ArchiveError {
    ArchiveError::NotArchive {
        path: shown(path),
        detail: e.to_string(),
    }
}

/// The first name that the zip's central directory lists twice. The zip crate keeps one entry per
/// name, so duplicates (which TorchServe's unzip would resolve its own way) are found here.
fn duplicate_name(path: &Path) -> io::Result<Option<String>> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let tail_len = len.min(65_535 + 22);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let Some(eocd) = tail.windows(4).rposition(|w| w == b"PK\x05\x06") else {
        return Ok(None);
    };
    let field = |at: usize| {
        tail.get(eocd + at..eocd + at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
    };
    let (Some(size), Some(offset)) = (field(12), field(16)) else {
        return Ok(None);
    };
    if size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF || offset + size > len {
        return Ok(None); // zip64: left to the zip crate's own checks
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut cd = vec![0u8; size as usize];
    file.read_exact(&mut cd)?;
    let mut seen = std::collections::HashSet::new();
    let mut at = 0;
    while at + 46 <= cd.len() && &cd[at..at + 4] == b"PK\x01\x02" {
        let le = |i: usize| u16::from_le_bytes([cd[at + i], cd[at + i + 1]]) as usize;
        let (name_len, extra, comment) = (le(28), le(30), le(32));
        let Some(name) = cd.get(at + 46..at + 46 + name_len) else {
            break;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        if !seen.insert(name.clone()) {
            return Ok(Some(name));
        }
        at += 46 + name_len + extra + comment;
    }
    Ok(None)
}

fn list_zip(path: &Path, limits: Limits) -> Result<BTreeMap<String, u64>, ArchiveError> {
    if let Some(name) = duplicate_name(path).map_err(|source| ArchiveError::Io {
        path: shown(path),
        source,
    })? {
        return Err(ArchiveError::Duplicate {
            path: shown(path),
            name,
        });
    }
    let file = File::open(path).map_err(|source| ArchiveError::Io {
        path: shown(path),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| match e {
        zip::result::ZipError::InvalidArchive(ref m) if m.starts_with("Duplicate filename: ") => {
            ArchiveError::Duplicate {
                path: shown(path),
                name: m.trim_start_matches("Duplicate filename: ").to_owned(),
            }
        }
        e => not_archive(path, e),
    })?;
    let mut files = BTreeMap::new();
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| not_archive(path, e))?;
        let raw = entry.name().to_owned();
        if entry.is_dir() {
            continue;
        }
        let unsafe_entry = |why| ArchiveError::Unsafe {
            path: shown(path),
            name: raw.clone(),
            why,
        };
        let name = safe_name(&raw).map_err(unsafe_entry)?;
        if entry.is_symlink() {
            return Err(unsafe_entry("is a symbolic link"));
        }
        let (size, packed) = (entry.size(), entry.compressed_size().max(1));
        // Small files may compress well legitimately (a label list, zeroed buffers); bombs are large.
        if size > RATIO_CHECK_FROM && size / packed > limits.max_ratio {
            return Err(ArchiveError::TooLarge {
                path: shown(path),
                detail: format!(
                    "{raw} expands {}x ({packed} -> {size} bytes), over {}x",
                    size / packed,
                    limits.max_ratio
                ),
            });
        }
        if files.insert(name.clone(), size).is_some() {
            return Err(ArchiveError::Duplicate {
                path: shown(path),
                name,
            });
        }
    }
    Ok(files)
}

/// TorchServe strips the first path component of every tar member.
fn strip_first(raw: &str) -> Option<String> {
    let mut parts = raw.trim_start_matches("./").splitn(2, '/');
    parts.next()?;
    parts
        .next()
        .filter(|rest| !rest.is_empty())
        .map(str::to_owned)
}

fn list_tgz(path: &Path, limits: Limits) -> Result<BTreeMap<String, u64>, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: shown(path),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for entry in tar.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let raw = entry.path().map_err(io_err)?.to_string_lossy().into_owned();
        let unsafe_entry = |why| ArchiveError::Unsafe {
            path: shown(path),
            name: raw.clone(),
            why,
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(unsafe_entry("is a link"));
        }
        if !kind.is_file() {
            return Err(unsafe_entry("is not a regular file"));
        }
        safe_name(&raw).map_err(unsafe_entry)?;
        let Some(name) = strip_first(&raw) else {
            continue;
        };
        // Count what the stream really holds, not what the header claims.
        let size = io::copy(
            &mut (&mut entry).take(limits.max_total_bytes.saturating_sub(total) + 1),
            &mut io::sink(),
        )
        .map_err(io_err)?;
        total += size;
        if total > limits.max_total_bytes {
            return Err(ArchiveError::TooLarge {
                path: shown(path),
                detail: format!("over {} bytes unpacked", limits.max_total_bytes),
            });
        }
        if files.insert(name.clone(), size).is_some() {
            return Err(ArchiveError::Duplicate {
                path: shown(path),
                name,
            });
        }
    }
    Ok(files)
}

fn list_folder(root: &Path) -> Result<BTreeMap<String, u64>, ArchiveError> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| ArchiveError::Io {
            path: shown(root),
            source: e.into(),
        })?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .expect("inside the walk")
            .to_string_lossy()
            .into_owned();
        if entry.path_is_symlink() {
            return Err(ArchiveError::Unsafe {
                path: shown(root),
                name: rel,
                why: "is a symbolic link",
            });
        }
        if entry.file_type().is_file() {
            let size = entry
                .metadata()
                .map_err(|e| ArchiveError::Io {
                    path: shown(root),
                    source: e.into(),
                })?
                .len();
            files.insert(rel.replace(std::path::MAIN_SEPARATOR, "/"), size);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/mar")
            .join(name)
    }

    #[test]
    fn reads_the_three_torch_model_archiver_layouts() {
        for (name, layout) in [
            ("tissue.mar", Layout::Zip),
            ("tissue-tgz.tar.gz", Layout::Tgz),
            ("tissue-dir", Layout::Folder),
        ] {
            let a = Archive::open(&fixture(name), Limits::default()).unwrap();
            assert_eq!(a.layout(), layout);
            assert_eq!(a.manifest.model.handler, "image_classifier");
            assert_eq!(
                a.files.keys().collect::<Vec<_>>(),
                [MANIFEST_PATH, "index_to_name.json", "tissue.pt"],
                "{name}"
            );
            let labels = a.read("index_to_name.json", 1 << 20).unwrap();
            assert!(String::from_utf8(labels).unwrap().contains("lymphocytes"));
            let model = a.extract_temp("tissue.pt").unwrap();
            let original = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/models/tissue-multiclass.pt"),
            )
            .unwrap();
            assert_eq!(std::fs::read(model.path()).unwrap(), original, "{name}");
        }
        let full = Archive::open(&fixture("tissue-full.mar"), Limits::default()).unwrap();
        assert!(full.files.contains_key("sub/notes.md"));
    }

    fn zip_with(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut zip = zip::ZipWriter::new(file.reopen().unwrap());
        for (name, data) in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        file
    }

    const MANIFEST: &[u8] = br#"{"createdOn": "01/01/2026 00:00:00", "runtime": "python", "archiverVersion": "0.12.0",
        "model": {"modelName": "m", "serializedFile": "m.pt", "handler": "image_classifier", "modelVersion": "1.0"}}"#;

    fn error(entries: &[(&str, &[u8])]) -> String {
        let file = zip_with(entries);
        Archive::open(file.path(), Limits::default())
            .unwrap_err()
            .to_string()
    }

    /// TorchServe serves an archive whose manifest has no createdOn; a manifest that is wrong is
    /// said once, even with its causes (`{:#}`).
    #[test]
    fn manifests_without_created_on_open_and_bad_ones_are_said_once() {
        let bare = br#"{"runtime": "python", "archiverVersion": "0.12.0",
        "model": {"modelName": "m", "serializedFile": "m.pt", "handler": "image_classifier"}}"#;
        let file = zip_with(&[("m.pt", b"x"), (MANIFEST_PATH, bare)]);
        let archive = Archive::open(file.path(), Limits::default()).unwrap();
        assert_eq!(archive.manifest.created_on, "");
        assert_eq!(archive.manifest.model.model_version, "1.0");
        let bad = zip_with(&[("m.pt", b"x"), (MANIFEST_PATH, br#"{"runtime": 1}"#)]);
        let err = anyhow::Error::from(Archive::open(bad.path(), Limits::default()).unwrap_err());
        let shown = format!("{err:#}");
        assert_eq!(shown.matches("not a valid manifest").count(), 1, "{shown}");
    }

    #[test]
    fn hostile_zips_are_refused_with_the_reason() {
        let ok: &[(&str, &[u8])] = &[("m.pt", b"x"), (MANIFEST_PATH, MANIFEST)];
        let file = zip_with(ok);
        Archive::open(file.path(), Limits::default()).unwrap();
        assert!(error(&[("../evil.pt", b"x"), (MANIFEST_PATH, MANIFEST)])
            .contains("leads out of the archive"));
        assert!(
            error(&[("/etc/passwd", b"x"), (MANIFEST_PATH, MANIFEST)]).contains("absolute path")
        );
        // The zip writer refuses duplicate names, so rename one in place (same length).
        let twice = zip_with(&[("m.pt", b"x"), ("m.px", b"y"), (MANIFEST_PATH, MANIFEST)]);
        let mut bytes = std::fs::read(twice.path()).unwrap();
        for i in 0..bytes.len() - 3 {
            if &bytes[i..i + 4] == b"m.px" {
                bytes[i + 3] = b't';
            }
        }
        std::fs::write(twice.path(), &bytes).unwrap();
        let err = Archive::open(twice.path(), Limits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"m.pt\" appears more than once"), "{err}");
        assert!(error(&[("m.pt", b"x")]).contains("no MAR-INF/MANIFEST.json"));
        assert!(error(&[("m.pt", b"x"), (MANIFEST_PATH, b"{not json")])
            .contains("not a valid manifest"));
        assert!(error(&[("other.pt", b"x"), (MANIFEST_PATH, MANIFEST)])
            .contains("names \"m.pt\" (serializedFile)"));
        let zeros = vec![0u8; 20 << 20];
        assert!(
            error(&[("m.pt", &zeros), (MANIFEST_PATH, MANIFEST)]).contains("decompression bombs")
        );
        let not_zip = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_zip.path(), b"hello").unwrap();
        assert!(Archive::open(not_zip.path(), Limits::default())
            .unwrap_err()
            .to_string()
            .contains("not a model archive"));
    }

    #[test]
    fn the_total_size_is_capped_in_every_layout() {
        let tiny = Limits {
            max_total_bytes: 1000,
            max_ratio: 200,
        };
        for name in ["tissue.mar", "tissue-tgz.tar.gz", "tissue-dir"] {
            let err = Archive::open(&fixture(name), tiny).unwrap_err().to_string();
            assert!(err.contains("decompression bombs"), "{name}: {err}");
        }
    }

    #[test]
    fn links_are_refused_in_zips_and_folders() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut zip = zip::ZipWriter::new(file.reopen().unwrap());
        zip.add_symlink("m.pt", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        zip.start_file(MANIFEST_PATH, SimpleFileOptions::default())
            .unwrap();
        zip.write_all(MANIFEST).unwrap();
        zip.finish().unwrap();
        let err = Archive::open(file.path(), Limits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"m.pt\": is a symbolic link"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("MAR-INF")).unwrap();
        std::fs::write(dir.path().join(MANIFEST_PATH), MANIFEST).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("m.pt")).unwrap();
        let err = Archive::open(dir.path(), Limits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"m.pt\": is a symbolic link"), "{err}");
    }

    #[test]
    fn hostile_tars_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, link: bool| {
            let path = dir
                .path()
                .join(format!("{}.tar.gz", name.replace('/', "_")));
            let gz = flate2::write::GzEncoder::new(
                File::create(&path).unwrap(),
                flate2::Compression::fast(),
            );
            let mut tar = tar::Builder::new(gz);
            let mut header = tar::Header::new_gnu();
            header.set_size(if link { 0 } else { 1 });
            header.set_entry_type(if link {
                tar::EntryType::Symlink
            } else {
                tar::EntryType::Regular
            });
            if link {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            tar.append_data(&mut header, "m/x", if link { &b""[..] } else { &b"x"[..] })
                .unwrap();
            // A name the tar crate's path setter refuses, written raw into the header.
            if name.contains("..") {
                let mut h = tar::Header::new_old();
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_size(1);
                h.set_cksum();
                tar.append(&h, &b"x"[..]).unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap();
            path
        };
        let err = |p: PathBuf| {
            Archive::open(&p, Limits::default())
                .unwrap_err()
                .to_string()
        };
        assert!(err(make("link", true)).contains("is a link"));
        assert!(err(make("m/../../evil", false)).contains("leads out of the archive"));
    }
}
