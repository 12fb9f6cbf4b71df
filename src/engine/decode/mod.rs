//! Image bytes -> pixels: every supported format (PNG, JPEG, TIFF, BMP, WebP, GIF), refused from its
//! header when it is over the pixel limit, before anything is allocated. JPEG goes through libjpeg
//! (`jpeg`), as Pillow's does, so decoded pixels equal Pillow's.

pub(crate) mod jpeg;

use image::{DynamicImage, ImageDecoder, ImageReader};
use std::io::{BufRead, Seek};

/// Pillow's decompression-bomb limit (`2 * Image.MAX_IMAGE_PIXELS`): larger images are refused.
pub(crate) const DEFAULT_MAX_PIXELS: u64 = 178_956_970;

/// Why one input could not become a model input. Each is reported for that input alone.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum InputError {
    #[error("empty file")]
    Empty,
    #[error("not a supported image (PNG, JPEG, TIFF, BMP, WebP or GIF)")]
    UnknownFormat,
    #[error("cannot decode {format}: {detail}")]
    Decode { format: String, detail: String },
    #[error("image is {width}x{height} = {pixels} pixels, over the limit of {limit} (--max-image-pixels)")]
    TooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("image is {width}x{height} but the model takes {want_width}x{want_height} (the handler configuration sets resize = \"reject\")")]
    WrongSize {
        width: u32,
        height: u32,
        want_width: u32,
        want_height: u32,
    },
    #[error("{0}")]
    Read(String),
}

/// Decodes any supported format, refusing images over `max_pixels` before allocating them.
pub(crate) fn decode<R: BufRead + Seek>(
    mut reader: R,
    max_pixels: u64,
) -> Result<DynamicImage, InputError> {
    let read_error = |e: std::io::Error| InputError::Read(e.to_string());
    let head = reader.fill_buf().map_err(read_error)?;
    if head.is_empty() {
        return Err(InputError::Empty);
    }
    if image::guess_format(head).ok() == Some(image::ImageFormat::Jpeg) {
        return jpeg::decode(reader, max_pixels);
    }
    let reader = ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|e| InputError::Read(e.to_string()))?;
    let format = reader.format().ok_or(InputError::UnknownFormat)?;
    let name = format!("{format:?}").to_uppercase();
    let fail = |e: image::ImageError| InputError::Decode {
        format: name.clone(),
        detail: one_line(&e.to_string()),
    };
    let mut reader = reader;
    let mut limits = image::Limits::default();
    // Enough for the largest allowed image at 16 bits x 4 channels, plus the decoders' own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(fail)?;
    let (width, height) = decoder.dimensions();
    check_size(&name, width, height, max_pixels)?;
    DynamicImage::from_decoder(decoder).map_err(fail)
}

/// Refuses images without pixels, or with more than `max_pixels`, from their header.
pub(crate) fn check_size(
    format: &str,
    width: u32,
    height: u32,
    max_pixels: u64,
) -> Result<(), InputError> {
    let pixels = width as u64 * height as u64;
    if pixels > max_pixels {
        return Err(InputError::TooLarge {
            width,
            height,
            pixels,
            limit: max_pixels,
        });
    }
    if pixels == 0 {
        let detail = "image has no pixels".into();
        return Err(InputError::Decode {
            format: format.into(),
            detail,
        });
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn decode_limits() {
        assert_eq!(decode(Cursor::new(b""), 10).unwrap_err(), InputError::Empty);
        assert_eq!(
            decode(Cursor::new(b"hello, not pixels"), 10).unwrap_err(),
            InputError::UnknownFormat
        );
    }
}
