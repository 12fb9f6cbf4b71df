//! Slide uploads (`PUT /slides/{name}`): the body is streamed to a part file in the folder's
//! `.scancer/uploads`, bounded in size and in the time between chunks, synced, checked to open as
//! a slide, then linked into the folder under its sanitised name, never over a file already there.
//! A failed or abandoned upload leaves nothing behind.

use super::{Library, Listed};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The folder of part files, inside the state folder.
pub(crate) const PARTS: &str = "uploads";

/// Single-file formats an upload may be (DICOM series and MRXS are several files).
const EXTENSIONS: &[&str] = &[
    "svs", "tif", "tiff", "ndpi", "scn", "bif", "svslide", "png", "jpg", "jpeg", "bmp", "webp",
];

/// The longest name kept, in bytes.
const MAX_NAME: usize = 200;

#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("{0}")]
    Name(String),
    #[error("{0} is already in the slide folder; uploads never replace a file")]
    Exists(String),
    #[error("the upload is over the limit of {max} bytes (--max-slide-upload)")]
    TooLarge { max: u64 },
    #[error("no part of the upload arrived for {0} s")]
    Timeout(u64),
    #[error("the upload was cut short: {0}")]
    Body(String),
    #[error("{name} is not a slide scancer can read: {why}")]
    NotASlide { name: String, why: String },
    #[error("the disk is full: {0}")]
    Full(String),
    #[error("cannot write the upload: {0}")]
    Write(String),
    #[error("the upload was stored but the folder could not be listed: {0}")]
    Listing(String),
}

/// The file name an upload is stored under: percent-decoded, one path component, characters
/// other than letters, digits and `._-+()` replaced by `_`, no leading dot or dash, and the
/// extension of a single-file slide format.
pub(crate) fn sanitise(raw: &str) -> Result<String, UploadError> {
    let refused = |why: &str| UploadError::Name(format!("upload name {raw:?}: {why}"));
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| refused("not UTF-8"))?;
    if decoded.contains(['/', '\\', '\0']) {
        return Err(refused("a file name, not a path"));
    }
    let cleaned: String = decoded
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = cleaned.trim_start_matches(['.', '-']).to_string();
    if name.len() > MAX_NAME {
        return Err(refused(&format!("longer than {MAX_NAME} characters")));
    }
    let extension = Path::new(&name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension {
        Some(e) if EXTENSIONS.contains(&e.as_str()) && name.len() > e.len() + 1 => Ok(name),
        _ => Err(refused(&format!(
            "expected a slide file name ending in .{}",
            EXTENSIONS.join(", .")
        ))),
    }
}

/// Removes a part file unless the upload was linked into the folder.
struct Part {
    path: PathBuf,
}

impl Drop for Part {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Stores an upload named `raw_name` from `chunks` (each within `idle` of the last), and lists
/// it. `declared` is the body's length where the client gave it.
pub(crate) async fn store<S>(
    library: &std::sync::Arc<Library>,
    raw_name: &str,
    declared: Option<u64>,
    idle: Duration,
    mut chunks: S,
) -> Result<Listed, UploadError>
where
    S: Stream<Item = Result<Bytes, String>> + Unpin,
{
    let name = sanitise(raw_name)?;
    let max = library.max_upload;
    if declared.is_some_and(|n| n > max) {
        return Err(UploadError::TooLarge { max });
    }
    let destination = library.dir().join(&name);
    if destination.symlink_metadata().is_ok() {
        return Err(UploadError::Exists(name));
    }
    let part = Part {
        path: library
            .dir()
            .join(super::STATE_DIR)
            .join(PARTS)
            .join(format!("{}.part", crate::serve::ids::uuid4())),
    };
    let mut file = tokio::fs::File::create(&part.path)
        .await
        .map_err(write_error)?;
    let mut written = 0u64;
    loop {
        let chunk = match tokio::time::timeout(idle, chunks.next()).await {
            Err(_) => return Err(UploadError::Timeout(idle.as_secs())),
            Ok(None) => break,
            Ok(Some(Err(why))) => return Err(UploadError::Body(why)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        written += chunk.len() as u64;
        if written > max {
            return Err(UploadError::TooLarge { max });
        }
        file.write_all(&chunk).await.map_err(write_error)?;
    }
    file.sync_all().await.map_err(write_error)?;
    drop(file);
    let checked = {
        let (library, path) = (std::sync::Arc::clone(library), part.path.clone());
        tokio::task::spawn_blocking(move || super::describe(&path, library.max_pixels)).await
    };
    if let Err(why) = checked
        .map_err(|e| e.to_string())
        .and_then(|d| d.map_err(|e| e.to_string()))
    {
        return Err(UploadError::NotASlide { name, why });
    }
    // A hard link never replaces a file that appeared meanwhile; the part goes when dropped.
    match std::fs::hard_link(&part.path, &destination) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(UploadError::Exists(name))
        }
        Err(e) => return Err(write_error(e)),
    }
    drop(part);
    if let Ok(dir) = std::fs::File::open(library.dir()) {
        let _ = dir.sync_all();
    }
    let scanned = {
        let library = std::sync::Arc::clone(library);
        tokio::task::spawn_blocking(move || library.scan()).await
    };
    let listed = scanned
        .map_err(|e| e.to_string())
        .and_then(|listed| listed.map_err(|e| e.to_string()))
        .map_err(UploadError::Listing)?;
    listed
        .into_iter()
        .find(|l| l.name == name)
        .ok_or_else(|| UploadError::Listing(format!("{name} is not among the slides")))
}

fn write_error(e: io::Error) -> UploadError {
    if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded {
        UploadError::Full(crate::messages::io_message(&e))
    } else {
        UploadError::Write(crate::messages::io_message(&e))
    }
}

/// Part files a stopped server left behind.
pub(crate) fn clear_parts(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_safe_component_with_a_slide_extension() {
        assert_eq!(sanitise("CMU-1.svs").unwrap(), "CMU-1.svs");
        assert_eq!(
            sanitise("my%20scan%20(2).tiff").unwrap(),
            "my_scan_(2).tiff"
        );
        assert_eq!(sanitise("..hidden.svs").unwrap(), "hidden.svs");
        assert_eq!(sanitise("-rf.png").unwrap(), "rf.png");
        assert_eq!(sanitise("%C3%A9t%C3%A9.ndpi").unwrap(), "_t_.ndpi");
        for hostile in [
            "..%2F..%2Fetc%2Fpasswd.svs",
            "a%5Cb.svs",
            "a%00.svs",
            "%FF.svs",
            "notes.txt",
            ".svs",
            "svs",
            "..",
        ] {
            assert!(sanitise(hostile).is_err(), "{hostile}");
        }
        assert!(sanitise(&format!("{}.svs", "a".repeat(200))).is_err());
    }
}
