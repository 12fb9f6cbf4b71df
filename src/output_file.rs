//! Files scancer writes for the user (`--output`, `--tiles`, heatmaps, masks), written so that nothing
//! the user already had is clobbered and nothing finished is lost:
//! - a regular file (or a new path) is written to a visible `<name>.partial` beside it and renamed
//!   over it only when complete; a killed run leaves the `.partial`, which `--resume` continues;
//! - devices and FIFOs (`-o /dev/null`, `-o >(gzip > x)`) are written straight into, never replaced;
//! - a symbolic link is followed: its target is what gets written;
//! - a file being replaced keeps its permissions; a new one gets 0666 less the umask, like any
//!   other tool's output.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The suffix of a file being written.
pub(crate) const PARTIAL: &str = ".partial";

/// Where a path's bytes really go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A device, FIFO or socket: written in place.
    Special(PathBuf),
    /// A regular file, existing (with its mode) or not.
    Regular { path: PathBuf, mode: Option<u32> },
}

impl Target {
    /// Resolves `path`, following symbolic links (a dangling one names the file to create).
    pub(crate) fn of(path: &Path) -> io::Result<Target> {
        let path = follow_links(path)?;
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )),
            Ok(meta) if meta.is_file() => Ok(Target::Regular {
                path,
                mode: Some(meta.permissions().mode() & 0o7777),
            }),
            Ok(_) => Ok(Target::Special(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Ok(Target::Regular { path, mode: None })
            }
            Err(e) => Err(e),
        }
    }

    /// The `.partial` file of a regular target.
    pub(crate) fn partial(&self) -> Option<PathBuf> {
        match self {
            Target::Regular { path, .. } => Some(partial_of(path)),
            Target::Special(_) => None,
        }
    }
}

pub(crate) fn partial_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(PARTIAL);
    PathBuf::from(name)
}

fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let to = std::fs::read_link(&path)?;
                path = match path.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// A file being written; `commit` makes it appear at its target.
#[derive(Debug)]
pub(crate) struct OutputFile {
    file: File,
    target: Target,
}

impl OutputFile {
    /// Starts writing `path` afresh (a regular target's `.partial` is truncated).
    pub(crate) fn create(path: &Path) -> io::Result<OutputFile> {
        Self::open(Target::of(path)?)
    }

    /// Starts writing `target`.
    pub(crate) fn open(target: Target) -> io::Result<OutputFile> {
        let file = match &target {
            Target::Special(path) => OpenOptions::new().write(true).open(path)?,
            Target::Regular { path, .. } => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o666)
                .open(partial_of(path))?,
        };
        Ok(OutputFile { file, target })
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Flushes to disk and, for a regular target, renames the `.partial` over it with the mode of
    /// the file it replaces.
    pub(crate) fn commit(self) -> io::Result<()> {
        self.finish(true)
    }

    /// `durable`: on disk before the rename, so that even a power cut leaves the old file or the
    /// whole new one (a run's results; heatmaps and masks, one per input, skip the fsync).
    fn finish(self, durable: bool) -> io::Result<()> {
        let Target::Regular { path, mode } = &self.target else {
            return Ok(());
        };
        if let Some(mode) = mode {
            self.file
                .set_permissions(std::fs::Permissions::from_mode(*mode))?;
        }
        if durable {
            self.file.sync_all()?;
        }
        std::fs::rename(partial_of(path), path)
    }
}

impl io::Seek for OutputFile {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        self.file.seek(to)
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes a whole file atomically (heatmaps, masks); creates its folder.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = OutputFile::create(path)?;
    out.write_all(bytes)?;
    out.finish(false)
}

/// Writes a whole file atomically from `write`, buffered (exports too large to hold); creates its
/// folder. A device or pipe cannot be written by a format that seeks (TIFF): that is an error.
pub(crate) fn write_file_with(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<OutputFile>) -> io::Result<()>,
) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = io::BufWriter::new(OutputFile::create(path)?);
    write(&mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.finish(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_written_in_place() {
        let mut out = OutputFile::create(Path::new("/dev/null")).unwrap();
        out.write_all(b"gone").unwrap();
        out.commit().unwrap();
        let meta = std::fs::metadata("/dev/null").unwrap();
        assert!(!meta.is_file());
        assert!(!Path::new("/dev/null.partial").exists());
    }

    #[test]
    fn links_are_followed_and_modes_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.csv");
        std::fs::write(&real, "old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("real.csv", &link).unwrap();
        write_file(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(!partial_of(&real).exists());
    }
}
