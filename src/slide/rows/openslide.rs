//! Pyramidal slide formats (SVS, NDPI, MRXS, pyramidal TIFF...) through OpenSlide, the field's
//! standard reader, loaded at run time (the `openslide` cargo feature): from SCANCER_OPENSLIDE, else
//! the system's libopenslide.so.1 or .so.0 (Debian: libopenslide0 / libopenslide-dev). Bands are read
//! with `openslide_read_region` at the chosen level and composited over white, as slides are.

use super::reader::{check_size, ReadError, Rows};
use crate::slide::resolution::{Level, Pyramid, ResolutionError};
use libloading::{Library, Symbol};
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;

type Open = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type Close = unsafe extern "C" fn(*mut c_void);
type GetError = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type LevelCount = unsafe extern "C" fn(*mut c_void) -> i32;
type LevelDimensions = unsafe extern "C" fn(*mut c_void, i32, *mut i64, *mut i64);
type LevelDownsample = unsafe extern "C" fn(*mut c_void, i32) -> f64;
type ReadRegion = unsafe extern "C" fn(*mut c_void, *mut u32, i64, i64, i32, i64, i64);
type DetectVendor = unsafe extern "C" fn(*const c_char) -> *const c_char;
type PropertyValue = unsafe extern "C" fn(*mut c_void, *const c_char) -> *const c_char;

/// The OpenSlide library the user named (SCANCER_OPENSLIDE), as cli/ read it at start.
static NAMED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Tries `name` before the system's OpenSlide; set once, before any slide is read.
pub(crate) fn use_library(name: String) {
    let _ = NAMED.set(name);
}

fn library() -> Result<Library, ReadError> {
    let mut tried = Vec::new();
    let candidates: Vec<String> = NAMED
        .get()
        .cloned()
        .into_iter()
        .chain([
            "libopenslide.so.1".to_string(),
            "libopenslide.so.0".to_string(),
        ])
        .collect();
    for name in &candidates {
        // SAFETY: loading OpenSlide runs its library constructors, which have no preconditions.
        match unsafe { Library::new(name) } {
            Ok(lib) => return Ok(lib),
            Err(e) => tried.push(format!("{name}: {e}")),
        }
    }
    Err(ReadError::OpenSlideLibrary {
        tried: tried.join("; "),
    })
}

/// The vendor OpenSlide recognises in a file ("aperio", "hamamatsu", "generic-tiff"...), if any.
pub(crate) fn vendor(path: &Path) -> Option<String> {
    let lib = library().ok()?;
    let name = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: the symbol has this signature in every OpenSlide since 3.4; the string it returns is
    // static.
    unsafe {
        let detect: Symbol<DetectVendor> = lib.get(b"openslide_detect_vendor\0").ok()?;
        let vendor = detect(name.as_ptr());
        (!vendor.is_null()).then(|| CStr::from_ptr(vendor).to_string_lossy().into_owned())
    }
}

pub(crate) struct OpenSlideRows {
    lib: Library,
    handle: *mut c_void,
    level: i32,
    downsample: f64,
    width: usize,
    height: usize,
    argb: Vec<u32>,
}

// SAFETY: OpenSlide's handles may be used from any thread (its documentation: "OpenSlide is
// thread-safe"); the rows are read by one thread at a time, the slide reader's.
unsafe impl Send for OpenSlideRows {}
// SAFETY: the methods taking `&self` only call OpenSlide's functions on the handle, which may be
// called from several threads at once (a viewer reads tiles side by side); `&mut self` ones are
// the row reader's own.
unsafe impl Sync for OpenSlideRows {}

impl OpenSlideRows {
    pub(crate) fn open(path: &Path, level: u32) -> Result<OpenSlideRows, ReadError> {
        let lib = library()?;
        let name =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| ReadError::NulInPath)?;
        // SAFETY: the signatures are OpenSlide's public API; the handle is checked before use and
        // closed in Drop.
        unsafe {
            let open: Symbol<Open> = lib
                .get(b"openslide_open\0")
                .map_err(ReadError::OpenSlideSymbol)?;
            let handle = open(name.as_ptr());
            if handle.is_null() {
                return Err(refused(path));
            }
            let mut rows = OpenSlideRows {
                lib,
                handle,
                level: 0,
                downsample: 1.0,
                width: 0,
                height: 0,
                argb: Vec::new(),
            };
            rows.check()?;
            rows.set_level(level)?;
            Ok(rows)
        }
    }

    /// Reads `level` from now on.
    pub(crate) fn set_level(&mut self, level: u32) -> Result<(), ReadError> {
        let levels = self.levels()?;
        let l = levels
            .get(level as usize)
            .ok_or(ResolutionError::NoSuchLevel {
                level,
                last: levels.len() - 1,
            })?;
        self.level = level as i32;
        self.downsample = l.downsample;
        (self.width, self.height) = (l.width, l.height);
        check_size(self.width, self.height)
    }

    /// Every level's size and downsample.
    pub(crate) fn levels(&self) -> Result<Vec<Level>, ReadError> {
        // SAFETY: OpenSlide's public API on a valid handle; out-parameters are plain integers.
        let levels = unsafe {
            let count: Symbol<LevelCount> = self
                .lib
                .get(b"openslide_get_level_count\0")
                .map_err(ReadError::OpenSlideSymbol)?;
            let dimensions: Symbol<LevelDimensions> = self
                .lib
                .get(b"openslide_get_level_dimensions\0")
                .map_err(ReadError::OpenSlideSymbol)?;
            let downsample: Symbol<LevelDownsample> = self
                .lib
                .get(b"openslide_get_level_downsample\0")
                .map_err(ReadError::OpenSlideSymbol)?;
            (0..count(self.handle).max(0))
                .map(|k| {
                    let (mut w, mut h) = (0i64, 0i64);
                    dimensions(self.handle, k, &mut w, &mut h);
                    Level {
                        width: w.max(0) as usize,
                        height: h.max(0) as usize,
                        downsample: downsample(self.handle, k),
                    }
                })
                .collect::<Vec<_>>()
        };
        self.check()?;
        if levels.is_empty() {
            return Err(ReadError::NoLevels);
        }
        Ok(levels)
    }

    /// A property of the slide ("openslide.mpp-x"...), if set.
    pub(crate) fn property(&self, name: &CStr) -> Option<String> {
        // SAFETY: a valid handle and a NUL-terminated name; the value lives as long as the handle.
        unsafe {
            let get: Symbol<PropertyValue> =
                self.lib.get(b"openslide_get_property_value\0").ok()?;
            let value = get(self.handle, name.as_ptr());
            (!value.is_null()).then(|| CStr::from_ptr(value).to_string_lossy().into_owned())
        }
    }

    /// The levels, and the resolution and objective power the slide declares.
    pub(crate) fn pyramid(&self) -> Result<Pyramid, ReadError> {
        let number = |name: &CStr| {
            self.property(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        let (mpp, axes) = match (number(c"openslide.mpp-x"), number(c"openslide.mpp-y")) {
            (Some(x), Some(y)) => {
                let declared = crate::slide::resolution::across_and_down((
                    (x, "openslide.mpp-x/y"),
                    (y, "openslide.mpp-x/y"),
                ));
                (Some(declared.mpp), declared.axes)
            }
            (Some(x), None) => (Some((x, "openslide.mpp-x")), None),
            _ => (None, None),
        };
        Ok(Pyramid {
            levels: self.levels()?,
            mpp,
            axes,
            objective: number(c"openslide.objective-power"),
        })
    }

    /// OpenSlide's sticky error, if any.
    fn check(&self) -> Result<(), ReadError> {
        // SAFETY: a valid handle; the returned string lives as long as the handle.
        unsafe {
            let get: Symbol<GetError> = self
                .lib
                .get(b"openslide_get_error\0")
                .map_err(ReadError::OpenSlideSymbol)?;
            let error = get(self.handle);
            if error.is_null() {
                Ok(())
            } else {
                Err(ReadError::OpenSlide(
                    CStr::from_ptr(error).to_string_lossy().into_owned(),
                ))
            }
        }
    }
}

impl OpenSlideRows {
    /// The `width` x `height` region of `level` whose top-left corner is (`x0`, `y0`) in level-0
    /// pixels, as RGB over `background` (OpenSlide's `openslide.background-color`, else white).
    pub(crate) fn read_region(
        &self,
        level: usize,
        (x0, y0): (i64, i64),
        (width, height): (usize, usize),
        background: [u8; 3],
    ) -> Result<Vec<u8>, ReadError> {
        check_size(width, height)?;
        let mut argb = vec![0u32; width * height];
        // SAFETY: the buffer holds width * height pixels, as the call writes.
        unsafe {
            let read: Symbol<ReadRegion> = self
                .lib
                .get(b"openslide_read_region\0")
                .map_err(ReadError::OpenSlideSymbol)?;
            read(
                self.handle,
                argb.as_mut_ptr(),
                x0,
                y0,
                level as i32,
                width as i64,
                height as i64,
            );
        }
        self.check()?;
        let mut rgb = vec![0u8; width * height * 3];
        for (&pixel, out) in argb.iter().zip(rgb.chunks_exact_mut(3)) {
            let [a, r, g, b] = pixel.to_be_bytes();
            if a == 255 {
                out.copy_from_slice(&[r, g, b]);
                continue;
            }
            // Premultiplied ARGB over the background.
            let blank = u16::from(255 - a);
            for (o, (c, bg)) in out.iter_mut().zip([r, g, b].into_iter().zip(background)) {
                *o = (u16::from(c) + blank * u16::from(bg) / 255).min(255) as u8;
            }
        }
        Ok(rgb)
    }
}

impl Rows for OpenSlideRows {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn read(&mut self, y: usize, rows: usize, out: &mut [u8]) -> Result<(), ReadError> {
        out.fill(255);
        let rows_inside = rows.min(self.height.saturating_sub(y));
        if rows_inside == 0 {
            return Ok(());
        }
        self.argb.resize(self.width * rows_inside, 0);
        // SAFETY: the buffer holds width * rows_inside pixels, as the call writes.
        unsafe {
            let read: Symbol<ReadRegion> = self
                .lib
                .get(b"openslide_read_region\0")
                .map_err(ReadError::OpenSlideSymbol)?;
            // Coordinates are in level 0 pixels.
            let y0 = (y as f64 * self.downsample).round() as i64;
            read(
                self.handle,
                self.argb.as_mut_ptr(),
                0,
                y0,
                self.level,
                self.width as i64,
                rows_inside as i64,
            );
        }
        self.check()?;
        for (pixel, rgb) in self.argb.iter().zip(out.chunks_exact_mut(3)) {
            // Premultiplied ARGB over white.
            let a = (pixel >> 24) as u8;
            let blank = 255 - a;
            rgb[0] = ((pixel >> 16) as u8).saturating_add(blank);
            rgb[1] = ((pixel >> 8) as u8).saturating_add(blank);
            rgb[2] = (*pixel as u8).saturating_add(blank);
        }
        Ok(())
    }
}

impl Drop for OpenSlideRows {
    fn drop(&mut self) {
        // SAFETY: the handle came from openslide_open and is closed once.
        unsafe {
            if let Ok(close) = self.lib.get::<Close>(b"openslide_close\0") {
                close(self.handle);
            }
        }
    }
}

/// Why OpenSlide refused `path`, as far as the file itself says: unreadable (permissions), empty,
/// a TIFF it cannot identify (cut short or damaged), or no slide format at all.
pub(crate) fn refused(path: &Path) -> ReadError {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => return ReadError::Io(e),
    };
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut magic = [0u8; 4];
    let read = file.read(&mut magic).unwrap_or(0);
    match &magic[..read] {
        [] => ReadError::Empty,
        b"II*\0" | b"MM\0*" | b"II+\0" | b"MM\0+" => ReadError::DamagedTiff { bytes },
        _ => ReadError::NotOpenSlide,
    }
}
