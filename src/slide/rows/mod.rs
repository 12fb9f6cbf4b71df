//! Reading a slide as bands of RGB rows, top to bottom, without holding the whole image where the
//! format allows: PNG row by row, TIFF (striped or tiled, BigTIFF included) chunk row by chunk row.
//! Other formats are decoded whole (the caller is told, so that it can say so); pyramids (SVS, NDPI,
//! MRXS, a level of a pyramidal TIFF) are read through OpenSlide (`openslide`, the `openslide` feature). Every size a file
//! declares (image, strip, tile, band) is checked against the limits here before anything is
//! allocated for it.
//! Every conversion to RGB is `preprocess::convert`'s, so a tile's pixels are those of the same tile
//! saved as its own file.

#[cfg(feature = "openslide")]
mod openslide;
mod reader;
mod region;
mod resampled;

use crate::engine::handler_config::Color;
use crate::engine::preprocess::convert;
#[cfg(not(feature = "openslide"))]
use crate::slide::resolution::Target;
use crate::slide::resolution::{self, LevelChoice, Plan, Pyramid};
use image::{DynamicImage, ImageBuffer};
#[cfg(feature = "openslide")]
pub(crate) use openslide::use_library as use_openslide;
use reader::{check_band, copy_rows};
pub(crate) use reader::{check_size, ReadError, Rows, MAX_BAND_BYTES, MAX_CHUNK_BYTES, MAX_SIDE};
pub(crate) use region::Regions;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

/// How a slide is read.
pub(crate) enum Reading {
    Streamed(Box<dyn Rows + Send>),
    /// The format cannot be read in strips: the whole image was decoded (its format named).
    Whole(Box<dyn Rows + Send>, &'static str),
}

/// A slide opened at the level its plan chose.
pub(crate) struct Opened {
    pub(crate) rows: Box<dyn Rows + Send>,
    /// The format could not be read in strips: the whole image was decoded (its format named).
    pub(crate) whole: Option<&'static str>,
    pub(crate) plan: Plan,
}

/// Opens a slide at the level `choice` asks for, resampled the rest of the way.
pub(crate) fn open(
    path: &Path,
    max_pixels: u64,
    choice: &LevelChoice,
) -> Result<Opened, ReadError> {
    let vendor = crate::inputs::vendor_format(path);
    #[cfg(feature = "openslide")]
    {
        let tiff_or_vendor = vendor.is_some()
            || path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tif") || e.eq_ignore_ascii_case("tiff"));
        if let Some(detected) = tiff_or_vendor.then(|| openslide::vendor(path)).flatten() {
            let mut slide = openslide::OpenSlideRows::open(path, 0)?;
            let plan = resolution::plan(&slide.pyramid()?, choice)?;
            // A one-level generic TIFF is read by scancer's own reader, which is faster.
            if detected != "generic-tiff" || plan.level > 0 {
                slide.set_level(plan.level)?;
                return Ok(finish(Box::new(slide), None, plan));
            }
        } else if vendor.is_some() {
            return Err(openslide::refused(path));
        }
    }
    #[cfg(not(feature = "openslide"))]
    {
        if let Some(kind) = vendor {
            return Err(ReadError::VendorNeedsOpenSlide { kind });
        }
        if let Some(Target::Level(level @ 1..)) = choice.target {
            return Err(ReadError::LevelNeedsOpenSlide { level });
        }
    }
    let file = File::open(path).map_err(ReadError::Io)?;
    match sniff(BufReader::new(file), max_pixels) {
        #[cfg(feature = "openslide")]
        Err(ReadError::JpegTiff) => {
            let mut slide = openslide::OpenSlideRows::open(path, 0)?;
            let plan = resolution::plan(&slide.pyramid()?, choice)?;
            slide.set_level(plan.level)?;
            Ok(finish(Box::new(slide), None, plan))
        }
        #[cfg(not(feature = "openslide"))]
        Err(ReadError::JpegTiff) => Err(ReadError::JpegTiffNeedsOpenSlide),
        Err(e) => Err(e),
        Ok(reading) => flat(reading, choice),
    }
}

/// A slide from standard input, already in memory.
pub(crate) fn from_bytes<B: AsRef<[u8]> + Send + 'static>(
    bytes: B,
    max_pixels: u64,
    choice: &LevelChoice,
) -> Result<Opened, ReadError> {
    flat(sniff(std::io::Cursor::new(bytes), max_pixels)?, choice)
}

/// A single-level image, planned on its own resolution.
fn flat(reading: Reading, choice: &LevelChoice) -> Result<Opened, ReadError> {
    let (rows, whole) = match reading {
        Reading::Streamed(rows) => (rows, None),
        Reading::Whole(rows, format) => (rows, Some(format)),
    };
    let (width, height) = rows.size();
    let pyramid = Pyramid {
        axes: rows.axes(),
        ..Pyramid::flat(width, height, rows.resolution())
    };
    let plan = resolution::plan(&pyramid, choice)?;
    Ok(finish(rows, whole, plan))
}

/// The rows of the plan's level, resampled where it says.
fn finish(rows: Box<dyn Rows + Send>, whole: Option<&'static str>, plan: Plan) -> Opened {
    let rows: Box<dyn Rows + Send> = match plan.resample {
        Some(size) => Box::new(resampled::Resampled::new(rows, size)),
        None => rows,
    };
    Opened { rows, whole, plan }
}

/// A slide's rows from any reader, by its first bytes: PNG and TIFF streamed, others whole.
pub(crate) fn sniff<R: BufRead + Seek + Send + 'static>(
    mut reader: R,
    max_pixels: u64,
) -> Result<Reading, ReadError> {
    let magic = reader.fill_buf().map_err(ReadError::Io)?;
    let magic = &magic[..magic.len().min(8)];
    if magic.is_empty() {
        return Err(ReadError::Empty);
    }
    if magic.starts_with(b"\x89PNG") {
        return Ok(Reading::Streamed(Box::new(PngRows::new(reader)?)));
    }
    if magic.starts_with(b"II*\0")
        || magic.starts_with(b"MM\0*")
        || magic.starts_with(b"II+\0")
        || magic.starts_with(b"MM\0+")
    {
        return Ok(Reading::Streamed(Box::new(TiffRows::new(reader)?)));
    }
    let reader = image::ImageReader::new(reader)
        .with_guessed_format()
        .map_err(ReadError::Guess)?;
    let format = reader.format().map_or("this format", format_name);
    whole(reader.into_inner(), max_pixels, format)
}

/// Decodes the whole image (with the decoder's pixel limit) and serves its rows from memory.
fn whole<R: std::io::BufRead + Seek>(
    reader: R,
    max_pixels: u64,
    format: &'static str,
) -> Result<Reading, ReadError> {
    let image = crate::engine::decode::decode(reader, max_pixels)?;
    let pixels = convert(image, Color::Rgb);
    Ok(Reading::Whole(
        Box::new(Whole {
            width: pixels.width,
            height: pixels.height,
            data: pixels.data,
        }),
        format,
    ))
}

fn format_name(format: image::ImageFormat) -> &'static str {
    match format {
        image::ImageFormat::Jpeg => "JPEG",
        image::ImageFormat::WebP => "WebP",
        image::ImageFormat::Bmp => "BMP",
        image::ImageFormat::Gif => "GIF",
        _ => "this format",
    }
}

struct Whole {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Rows for Whole {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn read(&mut self, y: usize, rows: usize, out: &mut [u8]) -> Result<(), ReadError> {
        copy_rows(&self.data, 0, self.width, y, rows, out);
        Ok(())
    }
}

/// Converts `rows` decoded rows of any PNG/TIFF sample layout to RGB8, as `preprocess::convert`.
fn to_rgb(
    width: usize,
    rows: usize,
    channels: usize,
    sixteen: bool,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, ReadError> {
    let (w, h) = (width as u32, rows as u32);
    let bad = || ReadError::RowsSize;
    let image = if sixteen {
        let samples: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .collect();
        match channels {
            1 => DynamicImage::ImageLuma16(ImageBuffer::from_raw(w, h, samples).ok_or_else(bad)?),
            2 => DynamicImage::ImageLumaA16(ImageBuffer::from_raw(w, h, samples).ok_or_else(bad)?),
            3 => DynamicImage::ImageRgb16(ImageBuffer::from_raw(w, h, samples).ok_or_else(bad)?),
            _ => DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, samples).ok_or_else(bad)?),
        }
    } else {
        match channels {
            1 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, bytes).ok_or_else(bad)?),
            2 => DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, bytes).ok_or_else(bad)?),
            3 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, bytes).ok_or_else(bad)?),
            _ => DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, bytes).ok_or_else(bad)?),
        }
    };
    Ok(convert(image, Color::Rgb).data)
}

struct PngRows<R: BufRead + Seek> {
    reader: png::Reader<R>,
    width: usize,
    height: usize,
    channels: usize,
    sixteen: bool,
    /// Decoded RGB rows `band_y..`.
    band: Vec<u8>,
    band_y: usize,
    /// Rows decoded so far.
    next: usize,
    resolution: Option<resolution::Declared>,
}

impl<R: BufRead + Seek> PngRows<R> {
    fn new(reader: R) -> Result<Self, ReadError> {
        let mut decoder = png::Decoder::new(reader);
        // Palettes and low bit depths become 8-bit samples; tRNS becomes alpha (dropped later).
        decoder.set_transformations(png::Transformations::EXPAND);
        decoder.set_ignore_text_chunk(true);
        let reader = decoder.read_info().map_err(ReadError::PngHeader)?;
        let info = reader.info();
        if info.interlaced {
            return Err(ReadError::InterlacedPng);
        }
        let (color, depth) = reader.output_color_type();
        let channels = match color {
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Indexed => return Err(ReadError::PngPalette),
        };
        let (width, height) = (info.width as usize, info.height as usize);
        check_size(width, height)?;
        let axes = info
            .pixel_dims
            .filter(|d| d.unit == png::Unit::Meter)
            .and_then(|d| Some((resolution::from_png(d.xppu)?, resolution::from_png(d.yppu)?)));
        Ok(PngRows {
            resolution: axes.map(resolution::across_and_down),
            width,
            height,
            channels,
            sixteen: depth == png::BitDepth::Sixteen,
            reader,
            band: Vec::new(),
            band_y: 0,
            next: 0,
        })
    }
}

impl<R: BufRead + Seek> Rows for PngRows<R> {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn resolution(&self) -> Option<(f64, &'static str)> {
        self.resolution.map(|d| d.mpp)
    }

    fn axes(&self) -> Option<(f64, f64)> {
        self.resolution.and_then(|d| d.axes)
    }

    fn read(&mut self, y: usize, rows: usize, out: &mut [u8]) -> Result<(), ReadError> {
        let stride = self.width * 3;
        // Forget rows above the band asked for.
        if y > self.band_y {
            let drop = (y - self.band_y).min(self.band.len() / stride.max(1));
            self.band.drain(..drop * stride);
            self.band_y += drop;
        }
        let want = (y + rows).min(self.height);
        let mut raw = Vec::new();
        let mut decoded = 0;
        while self.next < want {
            let row = self
                .reader
                .next_row()
                .map_err(|error| ReadError::PngRow {
                    row: self.next,
                    error,
                })?
                .ok_or(ReadError::PngEnds {
                    row: self.next,
                    height: self.height,
                })?;
            raw.extend_from_slice(row.data());
            self.next += 1;
            decoded += 1;
        }
        if decoded > 0 {
            if self.sixteen {
                // PNG stores 16-bit samples big-endian; `to_rgb` takes them in the machine's order
                // (as TIFF's decoder gives them).
                for sample in raw.chunks_exact_mut(2) {
                    let value = u16::from_be_bytes([sample[0], sample[1]]);
                    sample.copy_from_slice(&value.to_ne_bytes());
                }
            }
            let rgb = to_rgb(self.width, decoded, self.channels, self.sixteen, raw)?;
            self.band.extend_from_slice(&rgb);
        }
        copy_rows(&self.band, self.band_y, self.width, y, rows, out);
        Ok(())
    }
}

/// Channels and whether samples are 16-bit, for the sample layouts slides use.
fn layout<R: Read + Seek>(
    decoder: &mut tiff::decoder::Decoder<R>,
) -> Result<(usize, bool), ReadError> {
    let colour = decoder.colortype().map_err(ReadError::Tiff)?;
    use tiff::ColorType as C;
    Ok(match colour {
        C::Gray(8) => (1, false),
        C::Gray(16) => (1, true),
        C::GrayA(8) => (2, false),
        C::GrayA(16) => (2, true),
        C::RGB(8) => (3, false),
        C::RGB(16) => (3, true),
        C::RGBA(8) => (4, false),
        C::RGBA(16) => (4, true),
        other => return Err(ReadError::TiffColour(other)),
    })
}

/// XResolution and YResolution (Y as X where absent) in ResolutionUnit (inches when absent, as
/// TIFF says): the mean of the two axes, and their microns apart where they differ.
fn tiff_resolution<R: Read + Seek>(
    decoder: &mut tiff::decoder::Decoder<R>,
) -> Option<resolution::Declared> {
    use tiff::decoder::ifd::Value;
    let mut read = |tag| match decoder.find_tag(tag).ok()?? {
        Value::Rational(n, d) if d > 0 => Some(f64::from(n) / f64::from(d)),
        Value::Float(v) => Some(f64::from(v)),
        Value::Double(v) => Some(v),
        _ => None,
    };
    let x = read(tiff::tags::Tag::XResolution)?;
    let y = read(tiff::tags::Tag::YResolution).unwrap_or(x);
    let unit = match decoder.find_tag(tiff::tags::Tag::ResolutionUnit) {
        Ok(Some(v)) => v.into_u16().ok()?,
        _ => 2,
    };
    Some(resolution::across_and_down((
        resolution::from_tiff(x, unit)?,
        resolution::from_tiff(y, unit)?,
    )))
}

struct TiffRows<R: Read + Seek> {
    decoder: tiff::decoder::Decoder<R>,
    width: usize,
    height: usize,
    chunk_width: usize,
    chunk_height: usize,
    chunks_across: usize,
    /// The decoded chunk row `cached_row` (full width), as RGB.
    cached: Vec<u8>,
    cached_row: Option<usize>,
    resolution: Option<resolution::Declared>,
}

impl<R: Read + Seek> TiffRows<R> {
    fn new(file: R) -> Result<Self, ReadError> {
        let mut limits = tiff::decoder::Limits::default();
        limits.decoding_buffer_size = MAX_CHUNK_BYTES;
        limits.intermediate_buffer_size = MAX_CHUNK_BYTES;
        // Offsets and byte counts of every strip or tile: 8 bytes each in a BigTIFF.
        limits.ifd_value_size = 64 << 20;
        let mut decoder = tiff::decoder::Decoder::new(file)
            .map_err(ReadError::TiffHeader)?
            .with_limits(limits);
        let (w, h) = decoder.dimensions().map_err(ReadError::TiffHeader)?;
        let (cw, ch) = decoder.chunk_dimensions();
        let tiled = matches!(decoder.get_chunk_type(), tiff::decoder::ChunkType::Tile);
        let (width, height) = (w as usize, h as usize);
        check_size(width, height)?;
        // Compression 7 is JPEG (6 the old-style JPEG): the tiff crate hands back YCbCr samples
        // without converting them, so those files are OpenSlide's.
        if matches!(
            decoder.get_tag_u32(tiff::tags::Tag::Compression),
            Ok(6) | Ok(7)
        ) {
            return Err(ReadError::JpegTiff);
        }
        let (cw, ch) = (cw as usize, (ch as usize).max(1));
        let (channels, sixteen) = layout(&mut decoder)?;
        let per_pixel = channels * if sixteen { 2 } else { 1 };
        if cw.saturating_mul(ch).saturating_mul(per_pixel) > MAX_CHUNK_BYTES {
            return Err(ReadError::TiffChunkSize {
                width: cw,
                height: ch,
                kind: if tiled { "tile" } else { "strip" },
            });
        }
        if tiled && (cw == 0 || cw > MAX_SIDE || ch > MAX_SIDE) {
            return Err(ReadError::TiffTileSize {
                width: cw,
                height: ch,
            });
        }
        check_band(width, ch.min(height), "a row of TIFF chunks")?;
        let chunk_width = if tiled { cw } else { width };
        let resolution = tiff_resolution(&mut decoder);
        Ok(TiffRows {
            resolution,
            chunks_across: if tiled {
                width.div_ceil(chunk_width.max(1))
            } else {
                1
            },
            decoder,
            width,
            height,
            chunk_width,
            chunk_height: ch,
            cached: Vec::new(),
            cached_row: None,
        })
    }

    /// Decodes chunk row `r` (all chunks across) into `cached` as RGB rows.
    fn load(&mut self, r: usize) -> Result<(), ReadError> {
        let (channels, sixteen) = layout(&mut self.decoder)?;
        let rows = self.chunk_height.min(self.height - r * self.chunk_height);
        let mut band = vec![255u8; self.width * rows * 3];
        for c in 0..self.chunks_across {
            let index = (r * self.chunks_across + c) as u32;
            let data = self
                .decoder
                .read_chunk(index)
                .map_err(|error| ReadError::TiffChunk { index, error })?;
            let (dw, dh) = self.decoder.chunk_data_dimensions(index);
            let (dw, dh) = (dw as usize, dh as usize);
            let bytes = match data {
                tiff::decoder::DecodingResult::U8(v) => v,
                tiff::decoder::DecodingResult::U16(v) => {
                    v.iter().flat_map(|s| s.to_ne_bytes()).collect()
                }
                _ => return Err(ReadError::TiffSamples),
            };
            // Edge tiles come either cut to the image or padded to the full tile size.
            let per = channels * if sixteen { 2 } else { 1 };
            let stored_width = if bytes.len() == dw * dh * per {
                dw
            } else {
                self.chunk_width
            };
            let stored_rows = bytes.len() / (stored_width * per).max(1);
            if stored_width < dw || stored_rows < dh.min(rows) {
                return Err(ReadError::TiffShortChunk { index });
            }
            let rgb = to_rgb(stored_width, stored_rows, channels, sixteen, bytes)?;
            let x0 = c * self.chunk_width;
            for row in 0..dh.min(rows) {
                let from = row * stored_width * 3;
                let to = (row * self.width + x0) * 3;
                band[to..to + dw * 3].copy_from_slice(&rgb[from..from + dw * 3]);
            }
        }
        self.cached = band;
        self.cached_row = Some(r);
        Ok(())
    }
}

impl<R: Read + Seek> Rows for TiffRows<R> {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn resolution(&self) -> Option<(f64, &'static str)> {
        self.resolution.map(|d| d.mpp)
    }

    fn axes(&self) -> Option<(f64, f64)> {
        self.resolution.and_then(|d| d.axes)
    }

    fn read(&mut self, y: usize, rows: usize, out: &mut [u8]) -> Result<(), ReadError> {
        let stride = self.width * 3;
        out.fill(255);
        for r in 0..rows {
            let source = y + r;
            if source >= self.height {
                break;
            }
            let chunk_row = source / self.chunk_height;
            if self.cached_row != Some(chunk_row) {
                self.load(chunk_row)?;
            }
            let from = (source - chunk_row * self.chunk_height) * stride;
            out[r * stride..(r + 1) * stride].copy_from_slice(&self.cached[from..from + stride]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit PNG's rows are the 8-bit RGB the image decoder makes of the same file, with
    /// samples whose two bytes differ (v * 257 would read the same in either byte order).
    #[test]
    fn sixteen_bit_png_rows_are_what_the_image_decoder_reads() {
        let (width, height) = (3u32, 2u32);
        let samples: Vec<u16> = (0..(width * height * 3) as u16)
            .map(|i| 0x1000u16.wrapping_mul(i + 1).wrapping_add(0x0F3 * i))
            .collect();
        let mut file = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut file, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Sixteen);
            let mut writer = encoder.write_header().unwrap();
            let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_be_bytes()).collect();
            writer.write_image_data(&bytes).unwrap();
        }
        let mut rows = PngRows::new(std::io::Cursor::new(file.clone())).unwrap();
        let mut read = vec![0u8; (width * height * 3) as usize];
        rows.read(0, height as usize, &mut read).unwrap();
        let decoded = image::load_from_memory(&file).unwrap();
        assert_eq!(read, convert(decoded, Color::Rgb).data);
    }
}
