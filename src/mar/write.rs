//! Writing `.mar` archives (the zip formats `default` and `zip-store`): a flat zip with the files
//! first and `MAR-INF/MANIFEST.json` last, no folder entries, as torch-model-archiver 0.12 writes.
//!
//! Each file is streamed from its source into the archive once, so memory stays constant whatever
//! the model's size, and nothing is staged in a temporary folder. The archive is written to a
//! temporary file beside the target and renamed into place when complete.

use super::entries::Entry;
use super::manifest::Manifest;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

pub(crate) const MANIFEST_PATH: &str = "MAR-INF/MANIFEST.json";

/// Bytes read per step while streaming a file into the archive.
const CHUNK: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// Deflate, except files that are zips already (a TorchScript `.pt` is one, of mostly
    /// incompressible tensors): those are stored. TorchServe reads both.
    Auto,
    /// Store everything (`--archive-format zip-store`).
    Store,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("{0} already exists: pass -f/--force to overwrite it")]
    Exists(String),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: cannot write the archive: {source}")]
    Zip {
        path: String,
        source: zip::result::ZipError,
    },
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `entries` and `manifest` as a zip archive at `target`. `modified` is every entry's
/// timestamp (fixed for reproducible archives).
pub(crate) fn write_zip(
    entries: &[Entry],
    manifest: &Manifest,
    target: &Path,
    compression: Compression,
    modified: DateTime,
    force: bool,
) -> Result<(), WriteError> {
    let temp = temp_beside(target, force)?;
    let zip_error = |source| WriteError::Zip {
        path: target.display().to_string(),
        source,
    };
    let mut zip = ZipWriter::new(BufWriter::with_capacity(CHUNK, temp.as_file()));
    let base = SimpleFileOptions::default()
        .last_modified_time(modified)
        .unix_permissions(0o644);
    let mut buffer = vec![0u8; CHUNK];
    for entry in entries {
        let mut source = BufReader::with_capacity(
            CHUNK,
            File::open(&entry.source).map_err(io_error(&entry.source))?,
        );
        let size = source
            .get_ref()
            .metadata()
            .map_err(io_error(&entry.source))?
            .len();
        let method = match compression {
            Compression::Store => CompressionMethod::Stored,
            Compression::Auto if is_zip(&mut source).map_err(io_error(&entry.source))? => {
                CompressionMethod::Stored
            }
            Compression::Auto => CompressionMethod::Deflated,
        };
        let options = base
            .compression_method(method)
            .large_file(size >= u32::MAX as u64);
        zip.start_file(entry.name.as_str(), options)
            .map_err(zip_error)?;
        loop {
            let n = source.read(&mut buffer).map_err(io_error(&entry.source))?;
            if n == 0 {
                break;
            }
            zip.write_all(&buffer[..n]).map_err(io_error(target))?;
        }
    }
    let manifest_method = match compression {
        Compression::Store => CompressionMethod::Stored,
        Compression::Auto => CompressionMethod::Deflated,
    };
    zip.start_file(MANIFEST_PATH, base.compression_method(manifest_method))
        .map_err(zip_error)?;
    zip.write_all(manifest.to_json().as_bytes())
        .map_err(io_error(target))?;
    let mut out = zip.finish().map_err(zip_error)?;
    out.flush().map_err(io_error(target))?;
    drop(out);
    persist(temp, target, force)
}

/// Writes a `tgz` archive: `<name>/<member>` for every file, then `<name>/MAR-INF/MANIFEST.json`.
pub(crate) fn write_tgz(
    entries: &[Entry],
    manifest: &Manifest,
    target: &Path,
    modified_unix: u64,
    force: bool,
) -> Result<(), WriteError> {
    let temp = temp_beside(target, force)?;
    let prefix = &manifest.model.model_name;
    let gz = flate2::write::GzEncoder::new(
        BufWriter::with_capacity(CHUNK, temp.as_file()),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    let header = |size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(modified_unix);
        h.set_entry_type(tar::EntryType::Regular);
        h
    };
    for entry in entries {
        let file = File::open(&entry.source).map_err(io_error(&entry.source))?;
        let size = file.metadata().map_err(io_error(&entry.source))?.len();
        let mut h = header(size);
        tar.append_data(
            &mut h,
            format!("{prefix}/{}", entry.name),
            BufReader::with_capacity(CHUNK, file),
        )
        .map_err(io_error(&entry.source))?;
    }
    let json = manifest.to_json();
    let mut h = header(json.len() as u64);
    tar.append_data(&mut h, format!("{prefix}/{MANIFEST_PATH}"), json.as_bytes())
        .map_err(io_error(target))?;
    let gz = tar.into_inner().map_err(io_error(target))?;
    let mut out = gz.finish().map_err(io_error(target))?;
    out.flush().map_err(io_error(target))?;
    drop(out);
    persist(temp, target, force)
}

/// Writes the `no-archive` layout: the folder `target` with the files and `MAR-INF/MANIFEST.json`.
pub(crate) fn write_folder(
    entries: &[Entry],
    manifest: &Manifest,
    target: &Path,
    force: bool,
) -> Result<(), WriteError> {
    if !force && target.exists() {
        return Err(WriteError::Exists(target.display().to_string()));
    }
    let dir = parent_dir(target);
    let staging = tempfile::Builder::new()
        .prefix(".scancer-archive-")
        .tempdir_in(dir)
        .map_err(io_error(dir))?;
    for entry in entries {
        let to = staging.path().join(&entry.name);
        std::fs::create_dir_all(to.parent().expect("inside staging")).map_err(io_error(&to))?;
        std::fs::copy(&entry.source, &to).map_err(io_error(&entry.source))?;
    }
    let manifest_path = staging.path().join(MANIFEST_PATH);
    std::fs::create_dir_all(manifest_path.parent().expect("MAR-INF"))
        .map_err(io_error(&manifest_path))?;
    std::fs::write(&manifest_path, manifest.to_json()).map_err(io_error(&manifest_path))?;
    if force && target.exists() {
        std::fs::remove_dir_all(target).map_err(io_error(target))?;
    }
    std::fs::rename(staging.keep(), target).map_err(io_error(target))
}

/// A temporary file beside `target` (so the final rename stays on one file system), after checking
/// that an existing target may be replaced.
fn temp_beside(target: &Path, force: bool) -> Result<tempfile::NamedTempFile, WriteError> {
    if !force && target.exists() {
        return Err(WriteError::Exists(target.display().to_string()));
    }
    let dir = parent_dir(target);
    // As any file a command writes: 0666 less the umask (tempfile's own default is 0600, which
    // an archive copied to the model store's service user could not be read with).
    tempfile::Builder::new()
        .prefix(".scancer-archive-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io_error(dir))
}

fn parent_dir(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn persist(temp: tempfile::NamedTempFile, target: &Path, force: bool) -> Result<(), WriteError> {
    temp.as_file().sync_all().map_err(io_error(target))?;
    let persisted = if force {
        temp.persist(target).map(drop)
    } else {
        temp.persist_noclobber(target).map(drop)
    };
    persisted.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            WriteError::Exists(target.display().to_string())
        } else {
            WriteError::Io {
                path: target.display().to_string(),
                source: e.error,
            }
        }
    })
}

/// Whether a file starts like a zip (local file header), leaving the reader at the start.
fn is_zip<R: Read + Seek>(reader: &mut R) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match reader.read(&mut magic[n..])? {
            0 => break,
            k => n += k,
        }
    }
    reader.rewind()?;
    Ok(n == 4 && magic == *b"PK\x03\x04")
}

/// `createdOn` and the entries' timestamp for now, in local time, as torch-model-archiver writes them.
pub(crate) fn now() -> (String, DateTime) {
    stamps(chrono::Local::now())
}

/// `createdOn` (`%d/%m/%Y %H:%M:%S`) and the zip timestamp of one instant.
pub(crate) fn stamps<Tz: chrono::TimeZone>(t: chrono::DateTime<Tz>) -> (String, DateTime) {
    use chrono::{Datelike, Timelike};
    let created = super::manifest::created_on(
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    );
    let dos = DateTime::from_date_and_time(
        t.year().clamp(1980, 2107) as u16,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .unwrap_or_default();
    (created, dos)
}

#[cfg(test)]
mod tests {
    use super::super::entries::Entries;
    use super::super::manifest::{ModelSection, ARCHIVER_VERSION};
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            created_on: "01/01/1980 00:00:00".into(),
            runtime: "python".into(),
            model: ModelSection {
                model_name: "pcam-classification".into(),
                serialized_file: Some("pcam-classification.pt".into()),
                handler: "image_classifier".into(),
                model_file: None,
                model_version: "1.0".into(),
                requirements_file: None,
                config_file: None,
            },
            archiver_version: ARCHIVER_VERSION.into(),
        }
    }

    fn entries() -> Vec<Entry> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut e = Entries::default();
        e.add_file(&root.join("examples/pcam-classification.pt"))
            .unwrap();
        e.add_file(&root.join("examples/pcam-classification.toml"))
            .unwrap();
        e.into_vec()
    }

    #[test]
    fn flat_layout_manifest_last_and_stored_models() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("pcam-classification.mar");
        write_zip(
            &entries(),
            &manifest(),
            &target,
            Compression::Auto,
            DateTime::default(),
            false,
        )
        .unwrap();
        let mut zip = zip::ZipArchive::new(File::open(&target).unwrap()).unwrap();
        let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
        assert_eq!(zip.len(), 3, "no folder entries: {names:?}");
        let by_index: Vec<(String, CompressionMethod)> = (0..zip.len())
            .map(|i| {
                let f = zip.by_index(i).unwrap();
                (f.name().to_owned(), f.compression())
            })
            .collect();
        assert_eq!(
            by_index,
            [
                (
                    "pcam-classification.pt".to_owned(),
                    CompressionMethod::Stored
                ),
                (
                    "pcam-classification.toml".to_owned(),
                    CompressionMethod::Deflated
                ),
                (MANIFEST_PATH.to_owned(), CompressionMethod::Deflated),
            ]
        );
        let mut model = Vec::new();
        zip.by_name("pcam-classification.pt")
            .unwrap()
            .read_to_end(&mut model)
            .unwrap();
        assert_eq!(
            model,
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pcam-classification.pt")
            )
            .unwrap()
        );
        let mut text = String::new();
        zip.by_name(MANIFEST_PATH)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, manifest().to_json());
    }

    #[test]
    fn fixed_timestamps_make_identical_archives_and_existing_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.mar"), dir.path().join("b.mar"));
        write_zip(
            &entries(),
            &manifest(),
            &a,
            Compression::Store,
            DateTime::default(),
            false,
        )
        .unwrap();
        write_zip(
            &entries(),
            &manifest(),
            &b,
            Compression::Store,
            DateTime::default(),
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        let err = write_zip(
            &entries(),
            &manifest(),
            &a,
            Compression::Auto,
            DateTime::default(),
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("already exists: pass -f/--force"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "untouched"
        );
        write_zip(
            &entries(),
            &manifest(),
            &a,
            Compression::Auto,
            DateTime::default(),
            true,
        )
        .unwrap();
        assert_ne!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "overwritten with --force"
        );
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary files left");
    }

    #[test]
    fn a_missing_source_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.mar");
        let bad = vec![Entry {
            name: "gone.pt".into(),
            source: dir.path().join("gone.pt"),
        }];
        let err = write_zip(
            &bad,
            &manifest(),
            &target,
            Compression::Auto,
            DateTime::default(),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("gone.pt"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
