//! What every reader of a slide's rows shares: the `Rows` it serves, why it can fail, and the
//! limits every size a file declares is checked against before anything is allocated for it.

use crate::engine::decode::InputError;
use crate::slide::resolution::ResolutionError;
use std::io;

/// Rows of a slide as 8-bit RGB.
pub(crate) trait Rows {
    /// Width and height in pixels.
    fn size(&self) -> (usize, usize);
    /// Fills `out` (width * rows * 3 bytes) with rows `y..y + rows`; rows below the image are white.
    /// Calls come with `y` never decreasing.
    fn read(&mut self, y: usize, rows: usize, out: &mut [u8]) -> Result<(), ReadError>;
    /// Microns per pixel as the file declares them, and where.
    fn resolution(&self) -> Option<(f64, &'static str)> {
        None
    }

    /// Microns per pixel across and down, where the file declares them apart and they differ.
    fn axes(&self) -> Option<(f64, f64)> {
        None
    }
}

/// Why a slide's pixels cannot be read: its file, its format, or a size it declares.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{}", crate::inputs::io_message(.0))]
    Io(io::Error),
    /// The reader could not even look at the format.
    #[error("{0}")]
    Guess(io::Error),
    #[error("empty file")]
    Empty,
    /// A format decoded whole, by the decoder single patches go through.
    #[error(transparent)]
    Decode(#[from] InputError),
    #[error(transparent)]
    Resolution(#[from] ResolutionError),
    #[error("the slide declares {width}x{height} pixels: no pixels")]
    NoPixels { width: usize, height: usize },
    #[error("the slide declares {width}x{height} pixels; scancer reads slides up to {MAX_SIDE} pixels a side")]
    TooLarge { width: usize, height: usize },
    #[error("{what} of {width}x{rows} pixels would take {} MiB; scancer holds at most {} MiB of rows at once", width.saturating_mul(*rows).saturating_mul(3) >> 20, MAX_BAND_BYTES >> 20)]
    Band {
        what: &'static str,
        width: usize,
        rows: usize,
    },
    #[error("the decoded rows do not match the image size")]
    RowsSize,
    #[error("cannot read PNG: {0}")]
    PngHeader(png::DecodingError),
    #[error("interlaced PNG cannot be read in strips; save the slide without interlacing")]
    InterlacedPng,
    #[error("PNG palette not expanded")]
    PngPalette,
    #[error("cannot read PNG row {row}: {error}")]
    PngRow {
        row: usize,
        error: png::DecodingError,
    },
    #[error("the PNG ends at row {row} of {height}")]
    PngEnds { row: usize, height: usize },
    #[error("cannot read TIFF: {0}")]
    TiffHeader(tiff::TiffError),
    #[error("{0}")]
    Tiff(tiff::TiffError),
    /// JPEG-compressed tiles, which OpenSlide reads.
    #[error("{JPEG_TIFF}")]
    JpegTiff,
    #[error("TIFF colour type {0:?} is not supported")]
    TiffColour(tiff::ColorType),
    #[error("the TIFF declares {width}x{height}-pixel {kind}s; scancer reads {kind}s of up to {} MiB decoded", MAX_CHUNK_BYTES >> 20)]
    TiffChunkSize {
        width: usize,
        height: usize,
        kind: &'static str,
    },
    #[error("the TIFF declares {width}x{height}-pixel tiles")]
    TiffTileSize { width: usize, height: usize },
    #[error("cannot read TIFF chunk {index}: {error}")]
    TiffChunk { index: u32, error: tiff::TiffError },
    #[error("TIFF sample format is not 8 or 16-bit unsigned")]
    TiffSamples,
    #[error("TIFF chunk {index} holds fewer pixels than its size says")]
    TiffShortChunk { index: u32 },
    #[cfg(not(feature = "openslide"))]
    #[error(
        "{kind} slides are read through OpenSlide, which this build leaves out: {}",
        crate::inputs::OPENSLIDE_NOTE
    )]
    VendorNeedsOpenSlide { kind: String },
    #[cfg(not(feature = "openslide"))]
    #[error("--level {level} reads a pyramid through OpenSlide, which this build leaves out: build scancer with `cargo build --release --features openslide`")]
    LevelNeedsOpenSlide { level: u32 },
    #[cfg(not(feature = "openslide"))]
    #[error(
        "{JPEG_TIFF} is read through OpenSlide, which this build leaves out: {}",
        crate::inputs::OPENSLIDE_NOTE
    )]
    JpegTiffNeedsOpenSlide,
    #[cfg(feature = "openslide")]
    #[error("cannot load OpenSlide (install Debian's libopenslide0, or set SCANCER_OPENSLIDE to a libopenslide.so): {tried}")]
    OpenSlideLibrary { tried: String },
    #[cfg(feature = "openslide")]
    #[error("{0}")]
    OpenSlideSymbol(libloading::Error),
    #[cfg(feature = "openslide")]
    #[error("the path holds a NUL byte")]
    NulInPath,
    #[cfg(feature = "openslide")]
    #[error("OpenSlide does not recognise this file: its first bytes are no slide format's")]
    NotOpenSlide,
    /// A TIFF that OpenSlide cannot even identify: cut short or damaged.
    #[cfg(feature = "openslide")]
    #[error("OpenSlide cannot read this TIFF ({bytes} bytes): it is truncated or damaged")]
    DamagedTiff { bytes: u64 },
    #[cfg(feature = "openslide")]
    #[error("OpenSlide finds no levels in this slide")]
    NoLevels,
    /// OpenSlide's own message.
    #[cfg(feature = "openslide")]
    #[error("OpenSlide: {0}")]
    OpenSlide(String),
}

const JPEG_TIFF: &str = "JPEG-compressed TIFF";

/// The longest side of a slide that scancer reads (the largest scanners' slides are ~200,000).
pub(crate) const MAX_SIDE: usize = 1 << 20;
/// The most bytes one decoded TIFF strip or tile may take.
pub(crate) const MAX_CHUNK_BYTES: usize = 512 << 20;
/// The most bytes of one band of full-width rows held at once.
pub(crate) const MAX_BAND_BYTES: usize = 1 << 30;

/// Refuses a declared size before anything is allocated for it.
pub(crate) fn check_size(width: usize, height: usize) -> Result<(), ReadError> {
    if width == 0 || height == 0 {
        return Err(ReadError::NoPixels { width, height });
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ReadError::TooLarge { width, height });
    }
    Ok(())
}

pub(super) fn check_band(width: usize, rows: usize, what: &'static str) -> Result<(), ReadError> {
    let bytes = width.saturating_mul(rows).saturating_mul(3);
    if bytes > MAX_BAND_BYTES {
        return Err(ReadError::Band { what, width, rows });
    }
    Ok(())
}

/// White rows below the image, and a copy of the rows that exist.
pub(super) fn copy_rows(
    band: &[u8],
    band_y: usize,
    width: usize,
    y: usize,
    rows: usize,
    out: &mut [u8],
) {
    let stride = width * 3;
    out.fill(255);
    let band_rows = band.len() / stride.max(1);
    for r in 0..rows {
        let source = y + r;
        if source >= band_y && source < band_y + band_rows {
            let from = (source - band_y) * stride;
            out[r * stride..(r + 1) * stride].copy_from_slice(&band[from..from + stride]);
        }
    }
}
