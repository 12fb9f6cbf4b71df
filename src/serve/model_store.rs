//! The model store: the folder a server registers archives from (TorchServe's `--model-store`),
//! what a registration's `url` names in it, which archives `--models all` loads, and archives
//! downloaded into it.
//!
//! A registration may fetch an http(s) or file URL only when it matches `allowed_urls`. Unlike
//! TorchServe, whose default allows every URL (the server-side request forgery of ShellTorch,
//! CVE-2023-43654), nothing is allowed until `allowed_urls` says so. A download is bounded in size
//! and time, follows no redirect (which could lead past `allowed_urls`), goes to a file without a
//! name in the store (O_TMPFILE; elsewhere a hidden temporary file, removed at the next start),
//! reaches the disk, and only then takes its name, never replacing a file: a crash at any point
//! leaves no part of an archive under an archive's name.

use regex::Regex;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Temporary names of downloads in progress.
const PARTIAL: &str = ".scancer-download-";

pub(crate) struct ModelStore {
    pub(crate) dir: PathBuf,
    allowed: Vec<Regex>,
    limits: DownloadLimits,
}

/// How much and how long a download may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DownloadLimits {
    pub(crate) max_bytes: u64,
    pub(crate) timeout: Duration,
}

/// What a registration's `url` names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// An archive in the store.
    File(PathBuf),
    /// A URL `allowed_urls` lets the server fetch, and the store file it would become.
    Download { url: String, file: String },
}

/// Why a registration's `url` names no archive, in TorchServe's words.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unresolved {
    pub(crate) kind: Unresolvable,
    pub(crate) message: String,
}

/// TorchServe's `allowed_urls`: comma-separated regular expressions, each matching a whole URL, in
/// any case; compiled once, when the configuration is read.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedUrls {
    /// As configured (a snapshot records it).
    pub(crate) text: String,
    patterns: Vec<Regex>,
}

impl std::str::FromStr for AllowedUrls {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<AllowedUrls> {
        let mut patterns = Vec::new();
        for pattern in text.split(',').filter(|p| !p.trim().is_empty()) {
            let regex = regex::RegexBuilder::new(&format!("^(?:{})$", pattern.trim()))
                .case_insensitive(true)
                .build()
                .map_err(|e| {
                    anyhow::anyhow!("allowed_urls: {pattern:?} is not a regular expression: {e}")
                })?;
            patterns.push(regex);
        }
        Ok(AllowedUrls {
            text: text.to_string(),
            patterns,
        })
    }
}

/// The three refusals TorchServe tells apart (each its own exception).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unresolvable {
    /// Not in the store, not allowed, or leading outside the store.
    NotFound,
    /// A URL that could not be downloaded (or names no file).
    Download,
    /// The archive a download would become is already there.
    Exists,
}

impl Unresolved {
    fn not_found(message: String) -> Unresolved {
        Unresolved {
            kind: Unresolvable::NotFound,
            message,
        }
    }

    fn download(url: &str) -> Unresolved {
        Unresolved {
            kind: Unresolvable::Download,
            message: format!("Failed to download archive from: {url}"),
        }
    }
}

/// Why a download stopped.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Http(Box<ureq::Error>),
    #[error("{0} bytes is over the limit of {1} bytes")]
    Declared(u64, u64),
    #[error("over the limit of {0} bytes")]
    OverLimit(u64),
    #[error("not done within {0} s")]
    TimedOut(u64),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ModelStore {
    /// A store with no URL allowed.
    #[cfg(test)]
    pub(crate) fn new(dir: PathBuf) -> ModelStore {
        ModelStore {
            dir,
            allowed: Vec::new(),
            limits: DownloadLimits {
                max_bytes: 0,
                timeout: Duration::ZERO,
            },
        }
    }

    /// A store that downloads the URLs `allowed` lets through, and removes the temporary files of
    /// downloads a crash interrupted.
    pub(crate) fn with_downloads(
        dir: PathBuf,
        allowed: &AllowedUrls,
        limits: DownloadLimits,
    ) -> ModelStore {
        let allowed = allowed.patterns.clone();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        ModelStore {
            dir,
            allowed,
            limits,
        }
    }

    /// What a registration's `url` names, with TorchServe's checks in its order: no `..`, then
    /// `allowed_urls`, then a file of the store.
    pub(crate) fn resolve(&self, url: &str) -> Result<Source, Unresolved> {
        if url.contains("..") {
            return Err(Unresolved::not_found(format!(
                "Relative path is not allowed in url: {url}"
            )));
        }
        if self.allowed.iter().any(|r| r.is_match(url)) {
            let path = url
                .split_once("://")
                .map_or(url, |(_, rest)| rest)
                .split(['?', '#'])
                .next()
                .unwrap_or("");
            let file = path.rsplit('/').next().unwrap_or("").to_string();
            if file.is_empty() || file.contains('\\') || file.starts_with('.') {
                return Err(Unresolved::download(url));
            }
            return Ok(Source::Download {
                url: url.to_string(),
                file,
            });
        }
        if url.contains("://") {
            let hint = if self.allowed.is_empty() {
                " (scancer allows only the model store until allowed_urls lists URLs: --allowed-urls, or allowed_urls in config.properties)"
            } else {
                ""
            };
            return Err(Unresolved::not_found(format!(
                "Given URL {url} does not match any allowed URL(s){hint}"
            )));
        }
        self.file(url).map(Source::File)
    }

    /// Downloads an allowed URL into the store as `file` (blocking). The archive appears whole or
    /// not at all; an existing file is never replaced.
    pub(crate) fn download(&self, url: &str, file: &str) -> Result<PathBuf, Unresolved> {
        let target = self.dir.join(file);
        let exists = || Unresolved {
            kind: Unresolvable::Exists,
            message: format!("Model file already exists {file}"),
        };
        if target.exists() {
            return Err(exists());
        }
        let failed = |why: &dyn std::fmt::Display| {
            crate::messages::note!("cannot download {url}: {why}");
            Unresolved::download(url)
        };
        // A file without a name (Linux: O_TMPFILE) until it is whole: a crash leaves nothing.
        let mut anonymous = tempfile::tempfile_in(&self.dir)
            .map_err(|e| failed(&format!("cannot write in {}: {e}", self.dir.display())))?;
        self.fetch(url, &mut anonymous).map_err(|e| failed(&e))?;
        anonymous.sync_all().map_err(|e| failed(&e))?;
        match publish(&mut anonymous, &self.dir, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(e) => return Err(failed(&e)),
        }
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(target)
    }

    /// The URL's bytes into `out`, within the size and time limits.
    fn fetch(&self, url: &str, out: &mut std::fs::File) -> Result<(), FetchError> {
        let limit = self.limits.max_bytes;
        let deadline = std::time::Instant::now() + self.limits.timeout;
        let mut body: Box<dyn Read> = if let Some(path) = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("file://"))
            .map(|_| &url[7..])
        {
            Box::new(
                std::fs::File::open(path).map_err(|source| FetchError::Open {
                    path: path.to_string(),
                    source,
                })?,
            )
        } else {
            let agent = ureq::AgentBuilder::new()
                .timeout(self.limits.timeout)
                .redirects(0)
                .user_agent(concat!("scancer/", env!("CARGO_PKG_VERSION")))
                .build();
            let response = agent
                .get(url)
                .call()
                .map_err(|e| FetchError::Http(Box::new(e)))?;
            if let Some(n) = response
                .header("content-length")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|&n| n > limit)
            {
                return Err(FetchError::Declared(n, limit));
            }
            Box::new(response.into_reader())
        };
        let mut buffer = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            if std::time::Instant::now() > deadline {
                return Err(FetchError::TimedOut(self.limits.timeout.as_secs()));
            }
            let n = body.read(&mut buffer)?;
            if n == 0 {
                return Ok(());
            }
            total += n as u64;
            if total > limit {
                return Err(FetchError::OverLimit(limit));
            }
            out.write_all(&buffer[..n])?;
        }
    }

    /// The archive a registration's `url` names in the store: a file or folder name relative to
    /// it, never outside it.
    pub(crate) fn file(&self, url: &str) -> Result<PathBuf, Unresolved> {
        if url.contains("..") {
            return Err(Unresolved::not_found(format!(
                "Relative path is not allowed in url: {url}"
            )));
        }
        let relative = Path::new(url);
        let inside = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let path = self.dir.join(relative);
        if url.is_empty() || !inside || !path.exists() {
            return Err(Unresolved::not_found(format!("Model not found at: {url}")));
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

/// Gives a whole, flushed file its name in the store, only if the name is free. A nameless file is
/// linked in directly; where the file system made a named one (then unlinked), its bytes go to a
/// hidden named copy that is linked instead.
fn publish(file: &mut std::fs::File, dir: &Path, target: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    match link_anonymous(file, target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        done => return done,
    }
    use std::io::Seek;
    file.rewind()?;
    let mut named = tempfile::Builder::new().prefix(PARTIAL).tempfile_in(dir)?;
    std::io::copy(file, named.as_file_mut())?;
    named.as_file().sync_all()?;
    // A hard link takes the name only if it is free; the temporary name then goes.
    std::fs::hard_link(named.path(), target)
}

/// Links an O_TMPFILE file to `target` through /proc (no privilege needed, unlike AT_EMPTY_PATH).
#[cfg(target_os = "linux")]
fn link_anonymous(file: &std::fs::File, target: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = std::ffi::CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: both paths are NUL-terminated C strings that outlive the call.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
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
        for outside in ["missing.mar", "/etc/passwd", ""] {
            let err = store.file(outside).unwrap_err();
            assert_eq!(err.kind, Unresolvable::NotFound, "{outside}");
            assert_eq!(err.message, format!("Model not found at: {outside}"));
        }
        for relative in ["../pcam.mar", "unpacked/../../x"] {
            let err = store.file(relative).unwrap_err();
            assert_eq!(
                err.message,
                format!("Relative path is not allowed in url: {relative}")
            );
        }
        assert_eq!(store.all().unwrap(), ["pcam.mar", "unpacked"]);
    }

    #[test]
    fn urls_only_as_allowed_urls_says() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pcam.mar"), b"archive").unwrap();
        std::fs::write(dir.path().join(".scancer-download-x"), b"half").unwrap();
        let limits = DownloadLimits {
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(5),
        };
        let closed = ModelStore::new(dir.path().to_path_buf());
        let refused = closed.resolve("https://example.org/x.mar").unwrap_err();
        assert!(refused.message.starts_with("Given URL https://example.org/x.mar does not match any allowed URL(s) (scancer allows"), "{}", refused.message);
        let open = ModelStore::with_downloads(
            dir.path().to_path_buf(),
            &"file://.*,HTTPS://example\\.org/.*".parse().unwrap(),
            limits,
        );
        assert!(
            !dir.path().join(".scancer-download-x").exists(),
            "left by a crash, removed"
        );
        assert_eq!(
            open.resolve("https://EXAMPLE.org/models/x.mar?sig=1")
                .unwrap(),
            Source::Download {
                url: "https://EXAMPLE.org/models/x.mar?sig=1".into(),
                file: "x.mar".into()
            }
        );
        let other = open.resolve("https://evil.example/x.mar").unwrap_err();
        assert_eq!(
            other.message,
            "Given URL https://evil.example/x.mar does not match any allowed URL(s)"
        );
        assert_eq!(
            open.resolve("pcam.mar").unwrap(),
            Source::File(dir.path().join("pcam.mar"))
        );
        // A file URL is copied in, never over a file already there.
        let elsewhere = tempfile::tempdir().unwrap();
        let source = elsewhere.path().join("other.mar");
        std::fs::write(&source, b"other archive").unwrap();
        let url = format!("file://{}", source.display());
        let Source::Download { file, .. } = open.resolve(&url).unwrap() else {
            panic!()
        };
        let copied = open.download(&url, &file).unwrap();
        assert_eq!(std::fs::read(&copied).unwrap(), b"other archive");
        let again = open.download(&url, &file).unwrap_err();
        assert_eq!(
            (again.kind, again.message.as_str()),
            (Unresolvable::Exists, "Model file already exists other.mar")
        );
        let in_store = format!("file://{}", dir.path().join("pcam.mar").display());
        assert_eq!(
            open.download(&in_store, "pcam.mar").unwrap_err().kind,
            Unresolvable::Exists
        );
        assert_eq!(
            std::fs::read(dir.path().join("pcam.mar")).unwrap(),
            b"archive"
        );
        // Over the size limit: nothing is left.
        let small = ModelStore::with_downloads(
            dir.path().to_path_buf(),
            &"file://.*".parse().unwrap(),
            DownloadLimits {
                max_bytes: 4,
                ..limits
            },
        );
        std::fs::remove_file(&copied).unwrap();
        let big = small.download(&url, "other.mar").unwrap_err();
        assert_eq!(big.kind, Unresolvable::Download);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["pcam.mar"]);
    }
}
