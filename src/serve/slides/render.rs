//! Drawing what a viewer asks for from an opened slide: a Deep Zoom tile (its region read from the
//! best level, scaled with Lanczos as openslide-python's generator scales it) or a thumbnail, as
//! JPEG (libjpeg-turbo's baseline settings, quality 75, as the generator's example server).

use super::deepzoom::{DeepZoom, TileRead};
use crate::slide::rows::{ReadError, Regions};
use image::RgbImage;

/// JPEG quality of tiles and thumbnails (openslide-python's deepzoom example server's).
const QUALITY: f32 = 75.0;

/// The most pixels one request reads from a slide level: a tile of a pyramid that has no level
/// near its zoom is refused rather than read whole.
pub(crate) const MAX_READ_PIXELS: usize = 4096 * 4096;

/// Why a tile or thumbnail was not drawn.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the slide has no level near this zoom: drawing it would read {width}x{height} pixels of level {level} (at most {MAX_READ_PIXELS}); save the slide as a pyramid")]
    NoLevelNear {
        level: usize,
        width: usize,
        height: usize,
    },
    #[error("cannot scale the region: {0}")]
    Scale(String),
    #[error("cannot encode JPEG: {0}")]
    Encode(std::io::Error),
}

/// Draws one tile as JPEG.
pub(crate) fn tile(slide: &Regions, read: TileRead) -> Result<Vec<u8>, RenderError> {
    let image = region(slide, read.slide_level, read.level0, read.size)?;
    jpeg(&scaled(image, read.tile)?)
}

/// The whole slide at most `side` pixels on its longer side, as JPEG.
pub(crate) fn thumbnail(slide: &Regions, side: usize) -> Result<Vec<u8>, RenderError> {
    let level0 = slide.levels()[0];
    let longer = level0.width.max(level0.height).max(1);
    let scale = (side as f64 / longer as f64).min(1.0);
    let size = (
        ((level0.width as f64 * scale).round() as usize).max(1),
        ((level0.height as f64 * scale).round() as usize).max(1),
    );
    let zoom = DeepZoom::new(slide.levels().to_vec());
    let level = zoom.best_level(1.0 / scale);
    let l = &slide.levels()[level];
    let image = region(slide, level, (0, 0), (l.width, l.height))?;
    jpeg(&scaled(image, size)?)
}

fn region(
    slide: &Regions,
    level: usize,
    level0: (i64, i64),
    (width, height): (usize, usize),
) -> Result<RgbImage, RenderError> {
    if width.saturating_mul(height) > MAX_READ_PIXELS {
        return Err(RenderError::NoLevelNear {
            level,
            width,
            height,
        });
    }
    let rgb = slide.read(level, level0, (width, height))?;
    Ok(RgbImage::from_raw(width as u32, height as u32, rgb).expect("a region of its size"))
}

/// The image scaled to `width` x `height` with Lanczos (a convolution as wide as the reduction,
/// as Pillow's).
fn scaled(image: RgbImage, (width, height): (usize, usize)) -> Result<RgbImage, RenderError> {
    use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions};
    if image.dimensions() == (width as u32, height as u32) {
        return Ok(image);
    }
    let (w, h) = image.dimensions();
    let source = Image::from_vec_u8(w, h, image.into_raw(), PixelType::U8x3)
        .map_err(|e| RenderError::Scale(e.to_string()))?;
    let mut target = Image::new(width as u32, height as u32, PixelType::U8x3);
    let lanczos = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    fast_image_resize::Resizer::new()
        .resize(&source, &mut target, &lanczos)
        .map_err(|e| RenderError::Scale(e.to_string()))?;
    Ok(RgbImage::from_raw(width as u32, height as u32, target.into_vec()).expect("its size"))
}

fn jpeg(image: &RgbImage) -> Result<Vec<u8>, RenderError> {
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_fastest_defaults();
    compress.set_quality(QUALITY);
    compress.set_size(image.width() as usize, image.height() as usize);
    let mut started = compress
        .start_compress(Vec::new())
        .map_err(RenderError::Encode)?;
    started
        .write_scanlines(image.as_raw())
        .map_err(RenderError::Encode)?;
    started.finish().map_err(RenderError::Encode)
}
