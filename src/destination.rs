//! Where a run's records go: standard output, or `--output` written through its `.partial` (see
//! `output_file`), so that a run that stops keeps every finished record for `--resume`, and one
//! that stops before any leaves the output as it was.

use crate::output_file::OutputFile;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The output file could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DestinationError {
    #[error("{}: cannot create the output file", .path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("{}: cannot write", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// A run stopped with finished records in this `.partial`: the context of its error.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the finished records are in {}: fix the problem and run the same command with --resume", .0.display())]
pub(crate) struct Kept(pub(crate) PathBuf);

/// Standard output, or `--output` written through its `.partial`.
pub(crate) enum Destination {
    Stdout,
    File { file: OutputFile, path: PathBuf },
}

impl Destination {
    /// Opens `--output` (standard output when `None`), starting with the bytes `kept` of an
    /// interrupted run.
    pub(crate) fn open(path: Option<&Path>, kept: &[u8]) -> Result<Destination, DestinationError> {
        let Some(path) = path else {
            return Ok(Destination::Stdout);
        };
        let mut file = OutputFile::create(path).map_err(|source| DestinationError::Create {
            path: path.to_owned(),
            source,
        })?;
        file.write_all(kept)
            .map_err(|source| DestinationError::Write {
                path: path.to_owned(),
                source,
            })?;
        Ok(Destination::File {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The `.partial` being written, if any.
    pub(crate) fn partial(&self) -> Option<PathBuf> {
        match self {
            Destination::File { file, .. } => file.target().partial(),
            Destination::Stdout => None,
        }
    }

    pub(crate) fn writer(&mut self) -> Box<dyn Write + '_> {
        match self {
            // Records are flushed one by one: a killed run keeps every finished one.
            Destination::Stdout => Box::new(io::BufWriter::new(io::stdout().lock())),
            Destination::File { file, .. } => Box::new(io::BufWriter::new(file)),
        }
    }

    /// How messages name it.
    pub(crate) fn name(&self) -> String {
        match self {
            Destination::Stdout => "standard output".into(),
            Destination::File { path, .. } => path.display().to_string(),
        }
    }

    /// A run that stops on a fatal error after `written` records: a `.partial` without records
    /// goes (the output is left as it was); one with records stays, for `--resume`.
    pub(crate) fn abandon(self, written: usize) -> Option<Kept> {
        let partial = self.partial()?;
        let kept = std::fs::metadata(&partial).map_or(0, |m| m.len());
        if written == 0 && kept == 0 {
            let _ = std::fs::remove_file(&partial);
            return None;
        }
        Some(Kept(partial))
    }

    /// Puts the finished output in place.
    pub(crate) fn commit(self) -> Result<(), DestinationError> {
        if let Destination::File { file, path } = self {
            file.commit()
                .map_err(|source| DestinationError::Write { path, source })?;
        }
        Ok(())
    }
}

/// On SIGINT or SIGTERM while `partial` is being written: says where the finished records are and
/// how to go on, then dies of the signal as it would have (a shell reports 130 or 143). Exiting
/// normally from this thread would run libtorch's static destructors under the model thread.
/// Closing the handle stops the watch.
pub(crate) fn watch_interrupts(partial: PathBuf) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).ok()?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("scancer-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                crate::messages::note!(
"interrupted: the finished records are in {}; run the same command with --resume to go on",
                    partial.display()
                );
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::abort();
            }
        })
        .ok()?;
    Some(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_reach_the_output_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"old\n").unwrap();
        let mut destination = Destination::open(Some(&path), b"kept\n").unwrap();
        let partial = destination.partial().unwrap();
        assert_eq!(partial, dir.path().join("out.jsonl.partial"));
        assert_eq!(destination.name(), path.display().to_string());
        {
            let mut writer = destination.writer();
            writer.write_all(b"new\n").unwrap();
            writer.flush().unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old\n");
        destination.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept\nnew\n");
        assert!(!partial.exists());
    }

    #[test]
    fn an_abandoned_partial_stays_only_with_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let empty = Destination::open(Some(&path), b"").unwrap();
        let partial = empty.partial().unwrap();
        assert!(partial.exists());
        assert_eq!(empty.abandon(0), None);
        assert!(!partial.exists(), "nothing to resume from");
        let kept = Destination::open(Some(&path), b"path,error\n").unwrap();
        let kept = kept.abandon(0).unwrap();
        assert_eq!(
            kept.to_string(),
            format!(
                "the finished records are in {}: fix the problem and run the same command with --resume",
                partial.display()
            )
        );
        assert!(partial.exists());
        assert!(!path.exists());
    }

    #[test]
    fn standard_output_has_no_partial() {
        let stdout = Destination::open(None, b"").unwrap();
        assert_eq!(stdout.name(), "standard output");
        assert_eq!(stdout.partial(), None);
        assert_eq!(stdout.abandon(3), None);
    }

    #[test]
    fn a_missing_folder_is_named_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/out.json");
        let Err(error) = Destination::open(Some(&path), b"") else {
            panic!("created in a missing folder");
        };
        assert_eq!(
            error.to_string(),
            format!("{}: cannot create the output file", path.display())
        );
        let cause = std::error::Error::source(&error).unwrap();
        assert!(cause.downcast_ref::<io::Error>().is_some(), "{cause}");
    }
}
