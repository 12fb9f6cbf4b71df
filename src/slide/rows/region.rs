//! A slide read by region at any of its levels, as a viewer draws it: pyramids through OpenSlide,
//! and single-level images (PNG, flat TIFF, JPEG...) decoded once and halved into a pyramid in
//! memory, so that no region costs more than about twice its pixels on a side.

use super::reader::{ReadError, MAX_BAND_BYTES};
use super::{sniff, Reading};
use crate::slide::resolution::Level;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// What a slide says about itself.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlideInfo {
    /// Microns per pixel across and down, where declared.
    pub(crate) mpp: Option<(f64, f64)>,
    /// The scanner's objective power, where declared.
    pub(crate) objective: Option<f64>,
    /// OpenSlide's vendor ("aperio", "dicom"...) or the image format ("png").
    pub(crate) vendor: String,
}

/// An opened slide, read by region; shared by the threads that draw its tiles.
pub(crate) struct Regions {
    levels: Vec<Level>,
    background: [u8; 3],
    info: SlideInfo,
    source: Source,
}

enum Source {
    #[cfg(feature = "openslide")]
    OpenSlide(super::openslide::OpenSlideRows),
    /// Each level's RGB pixels.
    Memory(Vec<Vec<u8>>),
}

impl Regions {
    /// Opens `path` (for a DICOM series, its largest VOLUME instance). Pyramids go to OpenSlide; a
    /// single-level image is decoded whole, up to `max_pixels` and 1 GiB of RGB.
    pub(crate) fn open(path: &Path, max_pixels: u64) -> Result<Regions, ReadError> {
        match opening(path, max_pixels)? {
            #[cfg(feature = "openslide")]
            Opening::Slide(vendor) => open_slide(path, vendor),
            Opening::Flat(rows, format) => in_memory(rows, format),
        }
    }

    /// A slide's levels and what it says of itself, without decoding a single-level image where
    /// its format has a header (PNG, TIFF).
    pub(crate) fn describe(
        path: &Path,
        max_pixels: u64,
    ) -> Result<(Vec<Level>, SlideInfo), ReadError> {
        match opening(path, max_pixels)? {
            #[cfg(feature = "openslide")]
            Opening::Slide(vendor) => {
                let slide = open_slide(path, vendor)?;
                Ok((slide.levels, slide.info))
            }
            Opening::Flat(rows, format) => {
                let (width, height) = rows.size();
                Ok((
                    memory_levels(width, height),
                    flat_info(rows.as_ref(), format),
                ))
            }
        }
    }

    /// Bytes it holds in memory (an OpenSlide handle counts a MiB for its caches).
    pub(crate) fn weight(&self) -> usize {
        match &self.source {
            #[cfg(feature = "openslide")]
            Source::OpenSlide(_) => 1 << 20,
            Source::Memory(levels) => levels.iter().map(Vec::len).sum(),
        }
    }

    /// The slide's levels, level 0 (full size) first.
    pub(crate) fn levels(&self) -> &[Level] {
        &self.levels
    }

    pub(crate) fn info(&self) -> &SlideInfo {
        &self.info
    }

    /// The `size` region of `level` whose top-left corner is `level0` in level-0 pixels, as RGB;
    /// what lies outside the slide is its background.
    pub(crate) fn read(
        &self,
        level: usize,
        level0: (i64, i64),
        size: (usize, usize),
    ) -> Result<Vec<u8>, ReadError> {
        match &self.source {
            #[cfg(feature = "openslide")]
            Source::OpenSlide(slide) => slide.read_region(level, level0, size, self.background),
            Source::Memory(levels) => {
                let l = &self.levels[level];
                let x = (level0.0 as f64 / l.downsample).floor() as i64;
                let y = (level0.1 as f64 / l.downsample).floor() as i64;
                Ok(crop(
                    &levels[level],
                    (l.width, l.height),
                    (x, y),
                    size,
                    self.background,
                ))
            }
        }
    }
}

/// How a slide is opened: through OpenSlide (its vendor), or its rows (its format).
enum Opening {
    #[cfg(feature = "openslide")]
    Slide(String),
    Flat(Box<dyn super::Rows + Send>, String),
}

fn opening(path: &Path, max_pixels: u64) -> Result<Opening, ReadError> {
    #[cfg(feature = "openslide")]
    if let Some(vendor) = super::openslide::vendor(path) {
        if vendor != "generic-tiff" || !flat_tiff(path) {
            return Ok(Opening::Slide(vendor));
        }
    }
    #[cfg(not(feature = "openslide"))]
    if let Some(kind) = crate::inputs::vendor_format(path) {
        return Err(ReadError::VendorNeedsOpenSlide { kind });
    }
    let file = File::open(path).map_err(ReadError::Io)?;
    match sniff(BufReader::new(file), max_pixels) {
        Ok(Reading::Streamed(rows)) => Ok(Opening::Flat(rows, format_of(path))),
        Ok(Reading::Whole(rows, format)) => Ok(Opening::Flat(rows, format.to_ascii_lowercase())),
        #[cfg(feature = "openslide")]
        Err(ReadError::JpegTiff) => Ok(Opening::Slide("generic-tiff".into())),
        #[cfg(not(feature = "openslide"))]
        Err(ReadError::JpegTiff) => Err(ReadError::JpegTiffNeedsOpenSlide),
        Err(e) => Err(e),
    }
}

/// A TIFF whose first image is its only one, or a striped one, is read by scancer's own reader.
#[cfg(feature = "openslide")]
fn flat_tiff(path: &Path) -> bool {
    super::openslide::OpenSlideRows::open(path, 0)
        .and_then(|s| s.levels())
        .is_ok_and(|levels| levels.len() == 1)
}

#[cfg(feature = "openslide")]
fn open_slide(path: &Path, vendor: String) -> Result<Regions, ReadError> {
    let slide = super::openslide::OpenSlideRows::open(path, 0)?;
    let pyramid = slide.pyramid()?;
    let number = |name: &std::ffi::CStr| {
        slide
            .property(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let mpp = match (number(c"openslide.mpp-x"), number(c"openslide.mpp-y")) {
        (Some(x), Some(y)) => Some((x, y)),
        (Some(x), None) => Some((x, x)),
        _ => None,
    };
    let background = slide
        .property(c"openslide.background-color")
        .and_then(|hex| parse_hex_colour(&hex))
        .unwrap_or([255; 3]);
    Ok(Regions {
        levels: pyramid.levels,
        background,
        info: SlideInfo {
            mpp,
            objective: pyramid.objective,
            vendor,
        },
        source: Source::OpenSlide(slide),
    })
}

/// `ffffff` as RGB.
#[cfg(feature = "openslide")]
fn parse_hex_colour(hex: &str) -> Option<[u8; 3]> {
    let hex = hex.trim();
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let byte = |k: usize| u8::from_str_radix(&hex[k..k + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

fn format_of(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .map(|e| if e == "tif" { "tiff".into() } else { e })
        .unwrap_or_else(|| "image".into())
}

/// Halving stops at a level that fits one Deep Zoom tile.
const SMALLEST_LEVEL: usize = 254;

/// The levels of a single-level image's pyramid in memory: halved until one fits a tile.
fn memory_levels(width: usize, height: usize) -> Vec<Level> {
    let mut levels = vec![Level {
        width,
        height,
        downsample: 1.0,
    }];
    while let Some(last) = levels
        .last()
        .filter(|l| l.width.max(l.height) > SMALLEST_LEVEL)
    {
        levels.push(Level {
            width: last.width.div_ceil(2),
            height: last.height.div_ceil(2),
            downsample: last.downsample * 2.0,
        });
    }
    levels
}

fn flat_info(rows: &(dyn super::Rows + Send), vendor: String) -> SlideInfo {
    let mpp = rows.resolution().map(|(m, _)| m);
    SlideInfo {
        mpp: rows.axes().or(mpp.map(|m| (m, m))),
        objective: None,
        vendor,
    }
}

/// Decodes every row and halves the image into its pyramid.
fn in_memory(mut rows: Box<dyn super::Rows + Send>, vendor: String) -> Result<Regions, ReadError> {
    let (width, height) = rows.size();
    let bytes = width.saturating_mul(height).saturating_mul(3);
    if bytes > MAX_BAND_BYTES {
        return Err(ReadError::Band {
            what: "a single-level image viewed whole",
            width,
            rows: height,
        });
    }
    let mut full = vec![0u8; bytes];
    const BAND: usize = 256;
    for y in (0..height).step_by(BAND) {
        let n = BAND.min(height - y);
        rows.read(y, n, &mut full[y * width * 3..(y + n) * width * 3])?;
    }
    let levels = memory_levels(width, height);
    let mut pixels = vec![full];
    for k in 1..levels.len() {
        let above = &levels[k - 1];
        let (half, _) = halve(&pixels[k - 1], (above.width, above.height));
        pixels.push(half);
    }
    Ok(Regions {
        levels,
        background: [255; 3],
        info: flat_info(rows.as_ref(), vendor),
        source: Source::Memory(pixels),
    })
}

/// The image at half its size (rounded up), each pixel the mean of the 2x2 it covers.
fn halve(rgb: &[u8], (width, height): (usize, usize)) -> (Vec<u8>, (usize, usize)) {
    let (w, h) = (width.div_ceil(2), height.div_ceil(2));
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        let (y0, y1) = (2 * y, (2 * y + 1).min(height - 1));
        for x in 0..w {
            let (x0, x1) = (2 * x, (2 * x + 1).min(width - 1));
            for c in 0..3 {
                let at = |xx: usize, yy: usize| rgb[(yy * width + xx) * 3 + c] as u32;
                let sum = at(x0, y0) + at(x1, y0) + at(x0, y1) + at(x1, y1);
                out[(y * w + x) * 3 + c] = ((sum + 2) / 4) as u8;
            }
        }
    }
    (out, (w, h))
}

/// The `size` region of an image at `at`, the background outside it.
fn crop(
    rgb: &[u8],
    (width, height): (usize, usize),
    (x, y): (i64, i64),
    (w, h): (usize, usize),
    background: [u8; 3],
) -> Vec<u8> {
    let mut out: Vec<u8> = background.iter().copied().cycle().take(w * h * 3).collect();
    let x_from = x.max(0);
    let x_to = (x + w as i64).min(width as i64);
    if x_from >= x_to {
        return out;
    }
    for row in 0..h {
        let yy = y + row as i64;
        if yy < 0 || yy >= height as i64 {
            continue;
        }
        let src = (yy as usize * width + x_from as usize) * 3;
        let dst = (row * w + (x_from - x) as usize) * 3;
        let n = (x_to - x_from) as usize * 3;
        out[dst..dst + n].copy_from_slice(&rgb[src..src + n]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_and_keeps_odd_edges() {
        // 3x1: (0, 100 | 200) -> 2x1: (50, 200)
        let rgb = [0, 0, 0, 100, 100, 100, 200, 200, 200];
        let (half, size) = halve(&rgb, (3, 1));
        assert_eq!(size, (2, 1));
        assert_eq!(half, [50, 50, 50, 200, 200, 200]);
    }

    #[test]
    fn a_crop_outside_the_image_is_background() {
        let rgb: Vec<u8> = (0..2 * 2 * 3).map(|v| v as u8).collect();
        let out = crop(&rgb, (2, 2), (1, -1), (2, 2), [9, 9, 9]);
        // Row 0 above the image; row 1: pixel (1, 0), then background.
        assert_eq!(out, [9, 9, 9, 9, 9, 9, 3, 4, 5, 9, 9, 9]);
        assert!(crop(&rgb, (2, 2), (5, 0), (1, 1), [7; 3]) == [7, 7, 7]);
    }

    #[test]
    #[cfg(feature = "openslide")]
    fn background_colours_in_hex() {
        assert_eq!(parse_hex_colour("FF8000"), Some([255, 128, 0]));
        assert_eq!(parse_hex_colour("fff"), None);
    }
}
