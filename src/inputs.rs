//! Command-line paths -> the ordered list of inputs to predict: files as given, directories walked
//! recursively in sorted order (image files only), `-` for standard input. Anything that cannot be
//! listed becomes an input with its error, so every path the user gave is answered exactly once.

use crate::records::Piece;
use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use walkdir::WalkDir;

/// Extensions taken from directories without looking inside the file.
const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "jpe", "jfif", "tif", "tiff", "bmp", "webp", "gif",
];

/// Formats only OpenSlide reads, by extension.
const VENDOR_EXTENSIONS: [&str; 8] = ["svs", "ndpi", "mrxs", "vms", "vmu", "scn", "bif", "svslide"];

/// The vendor format of a slide only OpenSlide reads (`SVS`, `NDPI`..., `DICOM`), by extension, or
/// for a file without an image's extension, by DICOM's first bytes.
pub(crate) fn vendor_format(path: &Path) -> Option<String> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if VENDOR_EXTENSIONS.contains(&extension.as_str()) {
        return Some(extension.to_uppercase());
    }
    is_dicom(path).then(|| "DICOM".to_owned())
}

/// A DICOM file (see `dicom::is_dicom`); a file named as an image is taken at its word, unread.
fn is_dicom(path: &Path) -> bool {
    let image = path
        .extension()
        .and_then(OsStr::to_str)
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    !image && crate::dicom::is_dicom(path)
}

/// How to get OpenSlide in this build.
#[cfg(feature = "openslide")]
pub(crate) const OPENSLIDE_NOTE: &str = "this build has it; install libopenslide0";
#[cfg(not(feature = "openslide"))]
pub(crate) const OPENSLIDE_NOTE: &str =
    "build scancer with `cargo build --release --features openslide` and install libopenslide0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    File(PathBuf),
    /// A DICOM whole-slide image: the instances of one series, in one folder.
    Dicom(Box<crate::dicom::Series>),
    Stdin,
}

/// One input as shown in results (`display`) and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Input {
    pub(crate) display: String,
    pub(crate) source: Source,
}

/// An input that could not even be listed or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unlisted {
    pub(crate) display: String,
    pub(crate) message: String,
}

pub(crate) type Item = Result<Input, Unlisted>;

#[derive(Debug, Default)]
pub(crate) struct Discovered {
    pub(crate) items: Vec<Item>,
    /// Files inside directories that are not images (not predicted, not reported one by one).
    pub(crate) skipped: usize,
}

pub(crate) fn discover(paths: &[PathBuf]) -> Discovered {
    let mut found = Discovered::default();
    let mut stdin_taken = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_taken {
                found.items.push(Err(Unlisted {
                    display: "-".into(),
                    message: "standard input was already given once".into(),
                }));
            } else {
                stdin_taken = true;
                found.items.push(Ok(Input {
                    display: "-".into(),
                    source: Source::Stdin,
                }));
            }
            continue;
        }
        match std::fs::metadata(path) {
            Err(e) => found.items.push(Err(Unlisted {
                display: show(path),
                message: io_message(&e),
            })),
            Ok(meta) if meta.is_dir() => walk(path, &mut found, None),
            Ok(_) if is_dicom(path) => found.items.push(dicom_file(path)),
            // Named explicitly: always an input, whatever its extension.
            Ok(_) => found.items.push(Ok(file(path))),
        }
    }
    found
}

/// A DICOM file named on the command line: the slide its series makes in its folder.
fn dicom_file(path: &Path) -> Item {
    let display = show(path);
    let series = crate::dicom::series_of(path).map_err(|message| Unlisted {
        display: display.clone(),
        message,
    })?;
    if let Some(message) = series.incomplete() {
        return Err(Unlisted { display, message });
    }
    Ok(Input {
        display,
        source: Source::Dicom(Box::new(series)),
    })
}

/// A folder's DICOM files, found while walking: one input per series, at the place of the folder's
/// first DICOM file.
struct DicomFolder {
    at: usize,
    files: Vec<PathBuf>,
}

/// The inputs in a folder served to others (`serve --slides`): as `discover` finds them, but no
/// link is followed out of `dir` (which must be canonical) and its top-level `skip` folder is not
/// walked.
pub(crate) fn discover_within(dir: &Path, skip: &str) -> Discovered {
    let mut found = Discovered::default();
    let confine = Confine { root: dir, skip };
    walk(dir, &mut found, Some(&confine));
    found
}

/// Where a walk may go.
struct Confine<'a> {
    root: &'a Path,
    /// A top-level folder not walked.
    skip: &'a str,
}

impl Confine<'_> {
    fn keeps(&self, entry: &walkdir::DirEntry) -> bool {
        if entry.depth() == 1 && entry.file_name() == self.skip {
            return false;
        }
        !entry.path_is_symlink()
            || entry
                .path()
                .canonicalize()
                .is_ok_and(|resolved| resolved.starts_with(self.root))
    }
}

fn walk(dir: &Path, found: &mut Discovered, confine: Option<&Confine>) {
    let mut dicom: Vec<(PathBuf, DicomFolder)> = Vec::new();
    walk_entries(dir, found, &mut dicom, confine);
    // Later places first, so that earlier ones stay where they are.
    for (folder, files) in dicom.into_iter().rev() {
        let (items, skipped) = dicom_folder(&folder, &files.files);
        found.skipped += skipped;
        found.items.splice(files.at..files.at, items);
    }
}

/// The inputs a folder's DICOM files make: a series each (named by the folder when it is the only
/// one), an error for each file that cannot be read; DICOM files of other kinds (CT, MR...) are
/// skipped as other files that are not images are.
fn dicom_folder(folder: &Path, files: &[PathBuf]) -> (Vec<Item>, usize) {
    let mut gathered = crate::dicom::gather(folder, files);
    let alone = gathered.series.len() == 1;
    // A damaged file beside the folder's one series is most likely one of its instances: the
    // series' error, not a slide read around it and an error of its own.
    let damaged = if alone && !gathered.unreadable.is_empty() {
        let (path, error) = gathered.unreadable.remove(0);
        let more = std::mem::take(&mut gathered.unreadable).len();
        let name = path
            .file_name()
            .map_or_else(|| show(&path), |n| show(Path::new(n)));
        Some(match more {
            0 => format!("its instance {name} cannot be read: {error}"),
            n => format!("its instance {name} cannot be read: {error} (and {n} more)"),
        })
    } else {
        None
    };
    let mut items: Vec<(PathBuf, Item)> = Vec::new();
    for series in gathered.series {
        let first = series.instances[0].path.clone();
        let display = if alone {
            show(folder)
        } else {
            show(series.opened_by())
        };
        let item = match damaged.clone().or_else(|| series.incomplete()) {
            Some(message) => Err(Unlisted { display, message }),
            None => Ok(Input {
                display,
                source: Source::Dicom(Box::new(series)),
            }),
        };
        items.push((first, item));
    }
    for (path, error) in gathered.unreadable {
        let item = Err(Unlisted {
            display: show(&path),
            message: error.to_string(),
        });
        items.push((path, item));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    (
        items.into_iter().map(|(_, item)| item).collect(),
        gathered.other.len(),
    )
}

fn walk_entries(
    dir: &Path,
    found: &mut Discovered,
    dicom: &mut Vec<(PathBuf, DicomFolder)>,
    confine: Option<&Confine>,
) {
    let entries = WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| confine.is_none_or(|c| c.keeps(entry)));
    for entry in entries {
        match entry {
            Ok(entry) if entry.file_type().is_dir() => {}
            // macOS resource forks (`._scan.png` beside `scan.png` on shared drives) are not images.
            Ok(entry) if entry.file_name().to_string_lossy().starts_with("._") => {
                found.skipped += 1
            }
            Ok(entry) if is_dicom(entry.path()) => {
                let folder = entry.path().parent().unwrap_or(dir).to_path_buf();
                match dicom.iter_mut().find(|(f, _)| *f == folder) {
                    Some((_, files)) => files.files.push(entry.path().to_path_buf()),
                    None => dicom.push((
                        folder,
                        DicomFolder {
                            at: found.items.len(),
                            files: vec![entry.path().to_path_buf()],
                        },
                    )),
                }
            }
            Ok(entry) => match looks_like_image(entry.path()) {
                Ok(true) => found.items.push(Ok(file(entry.path()))),
                Ok(false) => found.skipped += 1,
                Err(e) => found.items.push(Err(Unlisted {
                    display: show(entry.path()),
                    message: io_message(&e),
                })),
            },
            Err(err) => {
                let display = show(err.path().unwrap_or(dir));
                let message = match (err.loop_ancestor(), err.io_error()) {
                    (Some(ancestor), _) => {
                        format!("symbolic link loop (leads back to {})", ancestor.display())
                    }
                    (None, Some(io)) => io_message(io),
                    (None, None) => err.to_string(),
                };
                found.items.push(Err(Unlisted { display, message }));
            }
        }
    }
}

fn file(path: &Path) -> Input {
    Input {
        display: show(path),
        source: Source::File(path.to_path_buf()),
    }
}

/// Paths are shown as text; bytes that are not UTF-8 appear as U+FFFD.
fn show(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Images by extension, else by their first bytes (so `scan-0001` without extension is found too).
fn looks_like_image(path: &Path) -> std::io::Result<bool> {
    let ext = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    if ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
        return Ok(true);
    }
    let mut head = [0u8; 32];
    let mut file = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(image::guess_format(&head[..n]).is_ok())
}

/// Why an input's bytes could not be read: that input's error record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// It could not even be listed or opened: the listing's message.
    #[error("{0}")]
    Unlisted(String),
    #[error("cannot read standard input: {}", io_message(.0))]
    Stdin(std::io::Error),
    #[error("standard input is larger than {0} bytes")]
    StdinTooLarge(u64),
    #[error("{}", io_message(.0))]
    File(std::io::Error),
    #[error("larger than {0} bytes")]
    FileTooLarge(u64),
    #[error("a DICOM series is several files, not one to send; run the model here with --tile")]
    Series,
}

/// The input itself, or the message of why it could not be listed.
pub(crate) fn listed(item: &Item) -> Result<&Input, ReadError> {
    item.as_ref()
        .map_err(|u| ReadError::Unlisted(u.message.clone()))
}

/// How an input is shown in records and messages (its path as given, `-` for standard input).
pub(crate) fn display(item: &Item) -> &str {
    match item {
        Ok(input) => &input.display,
        Err(unlisted) => &unlisted.display,
    }
}

/// The most characters an input's path takes when shown.
pub(crate) fn widest(items: &[Item]) -> usize {
    items
        .iter()
        .map(|i| display(i).chars().count())
        .max()
        .unwrap_or(0)
}

/// Standard input, up to `max` bytes.
pub(crate) fn read_stdin(max: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Stdin)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::StdinTooLarge(max));
    }
    Ok(bytes)
}

/// The bytes of an input, up to `max`: its error if it could not be listed or read.
pub(crate) fn read_item(item: &Item, max: u64) -> Result<Vec<u8>, ReadError> {
    match &listed(item)?.source {
        Source::Stdin => read_stdin(max),
        Source::File(path) => read_file(path, max),
        Source::Dicom(_) => Err(ReadError::Series),
    }
}

/// A file's bytes, up to `max`.
fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::File)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::File)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::FileTooLarge(max));
    }
    Ok(bytes)
}

pub(crate) use crate::messages::io_message;

/// `--shard K/N`: the K-th (from 0) of N contiguous, near-equal slices of the inputs, so that the
/// outputs of shards 0..N concatenated equal the output of one unsharded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) count: usize,
}

impl Shard {
    /// This shard's slice of `len` inputs.
    pub(crate) fn range(&self, len: usize) -> std::ops::Range<usize> {
        len * self.index / self.count..len * (self.index + 1) / self.count
    }

    /// Where this shard's records sit in the output of all `len` inputs: the first shard writes
    /// its start (a header, an opening bracket), the last its end.
    pub(crate) fn piece(&self, len: usize) -> Piece {
        Piece {
            before: self.range(len).start,
            opens: self.index == 0,
            closes: self.index + 1 == self.count,
        }
    }

    #[cfg(test)]
    pub(crate) fn select<T>(&self, items: Vec<T>) -> Vec<T> {
        let range = self.range(items.len());
        items
            .into_iter()
            .skip(range.start)
            .take(range.len())
            .collect()
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (k, n) = s
            .split_once('/')
            .ok_or("expected K/N, e.g. 0/4 (K counts from 0)")?;
        let index: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("K = {k:?} is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("N = {n:?} is not a number"))?;
        if count == 0 {
            return Err("N must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "K must be below N (shards are numbered 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_in_order() {
        let all: Vec<usize> = (0..10).collect();
        for n in 1..=12 {
            let mut joined = Vec::new();
            for k in 0..n {
                let part = Shard { index: k, count: n }.select(all.clone());
                assert!(part.len() >= 10 / n && part.len() <= 10 / n + 1);
                joined.extend(part);
            }
            assert_eq!(joined, all, "n = {n}");
        }
    }

    #[test]
    fn read_errors_say_what_failed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        std::fs::write(&path, b"12345").unwrap();
        let item: Item = Ok(file(&path));
        assert_eq!(read_item(&item, 5).unwrap(), b"12345");
        assert_eq!(
            read_item(&item, 4).unwrap_err().to_string(),
            "larger than 4 bytes"
        );
        let missing: Item = Ok(file(&dir.path().join("gone.png")));
        assert_eq!(
            read_item(&missing, 4).unwrap_err().to_string(),
            "No such file or directory"
        );
        let unlisted: Item = Err(Unlisted {
            display: "x".into(),
            message: "permission denied".into(),
        });
        assert_eq!(display(&unlisted), "x");
        assert_eq!(widest(&[unlisted.clone(), Ok(file(Path::new("é/ab")))]), 4);
        assert_eq!(widest(&[]), 0);
        assert!(matches!(
            read_item(&unlisted, 4),
            Err(ReadError::Unlisted(m)) if m == "permission denied"
        ));
        assert_eq!(display(&item), path.to_string_lossy());
    }

    #[test]
    fn shards_write_pieces_of_one_output() {
        let piece = |index, count| Shard { index, count }.piece(10);
        assert_eq!(
            piece(0, 3),
            Piece {
                before: 0,
                opens: true,
                closes: false
            }
        );
        assert_eq!(
            (piece(1, 3).before, piece(1, 3).opens, piece(1, 3).closes),
            (3, false, false)
        );
        assert_eq!((piece(2, 3).before, piece(2, 3).closes), (6, true));
        assert_eq!(piece(0, 1), Piece::WHOLE);
    }

    #[test]
    fn shard_parsing() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert!("4/4".parse::<Shard>().unwrap_err().contains("below N"));
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert!("3".parse::<Shard>().is_err());
    }
}
