//! DICOM whole-slide images as inputs: which files are DICOM, what each instance says of itself
//! (its series, its number, its kind of image) and whether its pixel data is whole, and the
//! instances of one series gathered into one slide. OpenSlide reads the pixels (it opens a series
//! by any of its files and finds the others in the same folder); this module only decides what is
//! one slide and refuses a series that is not whole, which OpenSlide would open quietly with what
//! is left.
//!
//! The header is read element by element (DICOM PS3.5 section 7) up to the pixel data, whose items
//! are then stepped over by their lengths: a few hundred bytes read per instance. dicom-rs
//! (`dicom-object`) would parse it too, but pulls in the unmaintained `encoding` crate
//! (RUSTSEC-2021-0153) for text this module never decodes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// VL Whole Slide Microscopy Image Storage.
const WSI_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.77.1.6";
const IMPLICIT_LITTLE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BIG: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// Nested sequences deeper than this are not a header anyone wrote.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tag(u16, u16);

/// Whether `path` is a DICOM file: named `.dcm`, or with `DICM` after the 128-byte preamble.
pub(crate) fn is_dicom(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("dcm"))
    {
        return true;
    }
    let mut head = [0u8; 132];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head[128..] == b"DICM")
}

/// What one instance says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    pub(crate) path: PathBuf,
    pub(crate) sop_class: String,
    pub(crate) series: String,
    pub(crate) number: Option<i64>,
    /// `ImageType`'s values (`ORIGINAL\PRIMARY\VOLUME\NONE`).
    pub(crate) image_type: Vec<String>,
    /// `TotalPixelMatrixColumns` x `TotalPixelMatrixRows`.
    pub(crate) size: Option<(u32, u32)>,
}

impl Instance {
    fn is_volume(&self) -> bool {
        self.image_type.get(2).is_some_and(|t| t == "VOLUME")
    }
}

/// Why an instance could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum InstanceError {
    #[error("{0}")]
    Io(String),
    #[error("not a DICOM file (no DICM after the 128-byte preamble)")]
    NotDicom,
    #[error("the DICOM file is truncated ({0})")]
    Truncated(&'static str),
    #[error("the DICOM header is damaged ({0})")]
    Damaged(&'static str),
    #[error("transfer syntax {0} is not read (big-endian or deflated DICOM)")]
    TransferSyntax(String),
}

impl From<std::io::Error> for InstanceError {
    fn from(e: std::io::Error) -> InstanceError {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                InstanceError::Truncated("it ends inside its header")
            }
            _ => InstanceError::Io(crate::messages::io_message(&e)),
        }
    }
}

/// Reads an instance's header, and checks that its pixel data is all there.
pub(crate) fn read_instance(path: &Path) -> Result<Instance, InstanceError> {
    let file = File::open(path)?;
    let length = file.metadata()?.len();
    read_header(file, length, path)
}

/// An instance's header from `file` (`length` bytes long), which `path` names.
pub(crate) fn read_header<R: Read + Seek>(
    file: R,
    length: u64,
    path: &Path,
) -> Result<Instance, InstanceError> {
    // A small buffer: the pixel data's frames are stepped over by seeking, and each step past the
    // buffer refills it (a slide's level 0 has up to some 100,000 frames).
    let mut file = BufReader::with_capacity(256, file);
    let mut head = [0u8; 132];
    file.read_exact(&mut head).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => InstanceError::NotDicom,
        _ => InstanceError::from(e),
    })?;
    if &head[128..] != b"DICM" {
        return Err(InstanceError::NotDicom);
    }
    let mut reader = Elements {
        file,
        length,
        implicit: false,
    };
    let mut values = BTreeMap::new();
    // The file meta group is always explicit little-endian.
    let syntax = loop {
        let start = reader.position()?;
        let (tag, len) = reader.head()?;
        if tag.0 != 0x0002 {
            reader.file.seek(SeekFrom::Start(start))?;
            break values.remove(&Tag(0x0002, 0x0010)).unwrap_or_default();
        }
        reader.value(tag, len, &mut values, 0)?;
    };
    let syntax = text(&syntax);
    match syntax.as_str() {
        EXPLICIT_BIG | DEFLATED => return Err(InstanceError::TransferSyntax(syntax)),
        IMPLICIT_LITTLE => reader.implicit = true,
        _ => {}
    }
    loop {
        if reader.position()? == length {
            break;
        }
        let (tag, len) = reader.head()?;
        if tag == PIXEL_DATA {
            reader.pixel_data(len)?;
            break;
        }
        reader.value(tag, len, &mut values, 0)?;
    }
    let get = |group, element| values.get(&Tag(group, element)).map(|v| text(v));
    let number = |v: Option<String>| v.and_then(|s| s.trim().parse::<i64>().ok());
    let long = |group, element| {
        values
            .get(&Tag(group, element))
            .filter(|v| v.len() == 4)
            .map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
    };
    Ok(Instance {
        path: path.to_path_buf(),
        sop_class: get(0x0008, 0x0016).unwrap_or_default(),
        series: get(0x0020, 0x000E).unwrap_or_default(),
        number: number(get(0x0020, 0x0013)),
        image_type: get(0x0008, 0x0008)
            .map(|t| t.split('\\').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default(),
        size: long(0x0048, 0x0006).zip(long(0x0048, 0x0007)),
    })
}

/// A value's text, without DICOM's padding (a trailing space or NUL).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\0', ' '])
        .to_owned()
}

/// The values kept: small ones of the tags this module reads.
fn wanted(tag: Tag) -> bool {
    matches!(
        tag,
        Tag(0x0002, 0x0010)
            | Tag(0x0008, 0x0008)
            | Tag(0x0008, 0x0016)
            | Tag(0x0020, 0x000E)
            | Tag(0x0020, 0x0013)
            | Tag(0x0048, 0x0006)
            | Tag(0x0048, 0x0007)
    )
}

struct Elements<R> {
    file: BufReader<R>,
    length: u64,
    implicit: bool,
}

impl<R: Read + Seek> Elements<R> {
    fn position(&mut self) -> std::io::Result<u64> {
        self.file.stream_position()
    }

    fn u16(&mut self) -> std::io::Result<u16> {
        let mut b = [0u8; 2];
        self.file.read_exact(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn u32(&mut self) -> std::io::Result<u32> {
        let mut b = [0u8; 4];
        self.file.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// An element's tag and value length.
    fn head(&mut self) -> Result<(Tag, u32), InstanceError> {
        let tag = Tag(self.u16()?, self.u16()?);
        if tag.0 == 0xFFFE || self.implicit && tag.0 != 0x0002 {
            return Ok((tag, self.u32()?));
        }
        let mut vr = [0u8; 2];
        self.file.read_exact(&mut vr)?;
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return Err(InstanceError::Damaged(
                "an element has no value representation",
            ));
        }
        let long = matches!(
            &vr,
            b"OB"
                | b"OD"
                | b"OF"
                | b"OL"
                | b"OV"
                | b"OW"
                | b"SQ"
                | b"SV"
                | b"UC"
                | b"UN"
                | b"UR"
                | b"UT"
                | b"UV"
        );
        let len = if long {
            self.u16()?;
            self.u32()?
        } else {
            u32::from(self.u16()?)
        };
        Ok((tag, len))
    }

    /// Steps over `len` bytes, which must lie inside the file.
    fn skip(&mut self, len: u32, what: &'static str) -> Result<(), InstanceError> {
        let end = self.position()? + u64::from(len);
        if end > self.length {
            return Err(InstanceError::Truncated(what));
        }
        self.file.seek_relative(i64::from(len))?;
        Ok(())
    }

    /// An element's value: kept if wanted, stepped over otherwise (a sequence item by item).
    fn value(
        &mut self,
        tag: Tag,
        len: u32,
        values: &mut BTreeMap<Tag, Vec<u8>>,
        depth: usize,
    ) -> Result<(), InstanceError> {
        if len == UNDEFINED {
            return self.sequence(depth + 1);
        }
        if depth == 0 && wanted(tag) && len <= 1024 {
            let mut value = vec![0u8; len as usize];
            self.file.read_exact(&mut value)?;
            values.insert(tag, value);
            return Ok(());
        }
        self.skip(len, "a value runs past its end")
    }

    /// A sequence of undefined length: items up to its end marker.
    fn sequence(&mut self, depth: usize) -> Result<(), InstanceError> {
        if depth > MAX_DEPTH {
            return Err(InstanceError::Damaged("sequences nest too deep"));
        }
        let mut unused = BTreeMap::new();
        loop {
            let (tag, len) = self.head()?;
            match tag {
                SEQUENCE_END => return Ok(()),
                ITEM if len == UNDEFINED => loop {
                    let (tag, len) = self.head()?;
                    if tag == ITEM_END {
                        break;
                    }
                    self.value(tag, len, &mut unused, depth)?;
                },
                ITEM => self.skip(len, "a sequence item runs past its end")?,
                _ => {
                    return Err(InstanceError::Damaged(
                        "a sequence holds something else than items",
                    ))
                }
            }
        }
    }

    /// Pixel data: all there, whether native (one value) or encapsulated (frames as items).
    fn pixel_data(&mut self, len: u32) -> Result<(), InstanceError> {
        const CUT: &str = "its pixel data ends early";
        if len != UNDEFINED {
            return self.skip(len, CUT);
        }
        loop {
            let (tag, len) = self.head().map_err(|e| match e {
                InstanceError::Truncated(_) => InstanceError::Truncated(CUT),
                other => other,
            })?;
            match tag {
                SEQUENCE_END => return Ok(()),
                ITEM if len != UNDEFINED => self.skip(len, CUT)?,
                _ => {
                    return Err(InstanceError::Damaged(
                        "its pixel data holds something else than frames",
                    ))
                }
            }
        }
    }
}

/// The instances of one series found in one folder: one slide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Series {
    pub(crate) folder: PathBuf,
    pub(crate) uid: String,
    pub(crate) instances: Vec<Instance>,
}

impl Series {
    /// The file OpenSlide is given: the largest volume image (OpenSlide finds the rest).
    pub(crate) fn opened_by(&self) -> &Path {
        self.instances
            .iter()
            .filter(|i| i.is_volume())
            .max_by_key(|i| i.size.map_or(0, |(w, h)| u64::from(w) * u64::from(h)))
            .unwrap_or(&self.instances[0])
            .path
            .as_path()
    }

    /// Why the series is not a whole slide: no volume image, or instance numbers with a gap.
    pub(crate) fn incomplete(&self) -> Option<String> {
        if !self.instances.iter().any(Instance::is_volume) {
            let kinds: Vec<&str> = self
                .instances
                .iter()
                .filter_map(|i| i.image_type.get(2).map(String::as_str))
                .collect();
            return Some(format!(
                "the DICOM series holds no VOLUME image (only {}): the slide's own instances are missing",
                if kinds.is_empty() { "unnamed images".to_owned() } else { kinds.join(", ") }
            ));
        }
        let mut numbers: Vec<i64> = self.instances.iter().filter_map(|i| i.number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let missing: Vec<String> = numbers
            .windows(2)
            .flat_map(|w| (w[0] + 1..w[1]).map(|n| n.to_string()))
            .collect();
        if missing.is_empty() {
            return None;
        }
        Some(format!(
            "the DICOM series is missing instance number {} (found {} instances numbered {} to {})",
            missing.join(", "),
            numbers.len(),
            numbers[0],
            numbers[numbers.len() - 1],
        ))
    }
}

/// What a folder's DICOM files are: whole-slide series, files that are not whole-slide images,
/// and files that could not be read.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    pub(crate) series: Vec<Series>,
    pub(crate) other: Vec<(PathBuf, String)>,
    pub(crate) unreadable: Vec<(PathBuf, InstanceError)>,
}

/// Gathers DICOM files of one folder into series (in the order of their first file).
pub(crate) fn gather(folder: &Path, files: &[PathBuf]) -> Gathered {
    let mut gathered = Gathered::default();
    for path in files {
        match read_instance(path) {
            Err(e) => gathered.unreadable.push((path.clone(), e)),
            Ok(i) if i.sop_class != WSI_SOP_CLASS => {
                let class = i.sop_class.clone();
                gathered.other.push((path.clone(), class));
            }
            Ok(instance) => match gathered
                .series
                .iter_mut()
                .find(|s| s.uid == instance.series)
            {
                Some(series) => series.instances.push(instance),
                None => gathered.series.push(Series {
                    folder: folder.to_path_buf(),
                    uid: instance.series.clone(),
                    instances: vec![instance],
                }),
            },
        }
    }
    gathered
}

/// The series that `path` belongs to, gathered from its folder's DICOM files.
pub(crate) fn series_of(path: &Path) -> Result<Series, String> {
    let instance = read_instance(path).map_err(|e| e.to_string())?;
    if instance.sop_class != WSI_SOP_CLASS {
        return Err(not_a_slide(&instance.sop_class));
    }
    let folder = path.parent().unwrap_or(Path::new("."));
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| {
            format!(
                "cannot list its folder: {}",
                crate::messages::io_message(&e)
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_dicom(p))
        .collect();
    files.sort();
    let gathered = gather(folder, &files);
    let series = gathered
        .series
        .into_iter()
        .find(|s| s.uid == instance.series)
        .ok_or_else(|| "its series was not found in its folder".to_owned())?;
    // A damaged instance beside it may be one of its own: say so rather than read around it.
    if let Some((file, e)) = gathered.unreadable.first() {
        return Err(format!("{}: {e}", file.display()));
    }
    Ok(series)
}

/// The message for a DICOM file that is another kind of image.
pub(crate) fn not_a_slide(sop_class: &str) -> String {
    format!("a DICOM file, but not a whole-slide image (SOP class {sop_class}, not VL Whole Slide Microscopy {WSI_SOP_CLASS})")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explicit little-endian element.
    fn element(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(group.to_le_bytes());
        out.extend(element.to_le_bytes());
        out.extend(vr);
        if matches!(vr, b"OB" | b"SQ" | b"UN") {
            out.extend([0, 0]);
            out.extend((value.len() as u32).to_le_bytes());
        } else {
            out.extend((value.len() as u16).to_le_bytes());
        }
        out.extend(value);
        out
    }

    fn instance(number: &str, kind: &str, frames: &[&[u8]], cut: usize) -> Vec<u8> {
        let mut out = vec![0u8; 128];
        out.extend(b"DICM");
        out.extend(element(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.4.50\0"));
        out.extend(element(
            0x0008,
            0x0008,
            b"CS",
            format!("ORIGINAL\\PRIMARY\\{kind}\\NONE").as_bytes(),
        ));
        out.extend(element(
            0x0008,
            0x0016,
            b"UI",
            b"1.2.840.10008.5.1.4.1.1.77.1.6\0",
        ));
        // A sequence of undefined length with one item of undefined length.
        out.extend([
            0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        out.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        out.extend(element(0x0008, 0x1150, b"UI", b"1.2\0"));
        out.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        out.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        out.extend(element(0x0020, 0x000E, b"UI", b"1.2.3\0"));
        out.extend(element(0x0020, 0x0013, b"IS", number.as_bytes()));
        out.extend(element(0x0048, 0x0006, b"UL", &2220u32.to_le_bytes()));
        out.extend(element(0x0048, 0x0007, b"UL", &2967u32.to_le_bytes()));
        out.extend([
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        out.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        for frame in frames {
            out.extend([0xFE, 0xFF, 0x00, 0xE0]);
            out.extend((frame.len() as u32).to_le_bytes());
            out.extend(*frame);
        }
        out.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        out.truncate(out.len() - cut);
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn an_instance_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a.dcm",
            &instance("2 ", "VOLUME", &[b"ab", b"cdef"], 0),
        );
        let read = read_instance(&path).unwrap();
        assert_eq!(read.series, "1.2.3");
        assert_eq!(read.number, Some(2));
        assert_eq!(read.image_type, ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]);
        assert_eq!(read.size, Some((2220, 2967)));
        assert!(is_dicom(&path));
        let plain = write(dir.path(), "no-extension", &instance("2", "VOLUME", &[], 0));
        assert!(is_dicom(&plain));
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let whole = instance("1", "VOLUME", &[b"abcdef", b"ghij"], 0);
        for cut in [3, 8, 12] {
            let path = write(dir.path(), "cut.dcm", &whole[..whole.len() - cut]);
            assert_eq!(
                read_instance(&path),
                Err(InstanceError::Truncated("its pixel data ends early")),
                "cut {cut}"
            );
        }
        let path = write(dir.path(), "head.dcm", &whole[..200]);
        assert!(matches!(
            read_instance(&path),
            Err(InstanceError::Truncated(_))
        ));
        let path = write(dir.path(), "png.dcm", b"\x89PNG\r\n\x1a\n");
        assert_eq!(read_instance(&path), Err(InstanceError::NotDicom));
    }

    #[test]
    fn a_series_with_a_gap_or_without_a_volume_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = [("0", "VOLUME"), ("1", "VOLUME"), ("3", "LABEL")]
            .iter()
            .map(|(n, kind)| {
                write(
                    dir.path(),
                    &format!("{n}.dcm"),
                    &instance(n, kind, &[b"x"], 0),
                )
            })
            .collect();
        let gathered = gather(dir.path(), &files);
        assert_eq!(gathered.series.len(), 1);
        let why = gathered.series[0].incomplete().unwrap();
        assert!(why.contains("missing instance number 2"), "{why}");
        let labels = gather(dir.path(), &files[2..]);
        let why = labels.series[0].incomplete().unwrap();
        assert!(why.contains("no VOLUME image (only LABEL)"), "{why}");
        let whole = gather(dir.path(), &files[..2]);
        assert_eq!(whole.series[0].incomplete(), None);
    }
}
