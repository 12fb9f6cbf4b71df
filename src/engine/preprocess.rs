//! Image bytes -> the model's input: decode (`decode`, with limits), convert the colour, resize by the configured
//! policy, then `ToTensor()` + `Normalize(mean, std)` into a CHW `f32` buffer.
//!
//! Every step reproduces what a TorchServe handler does with Pillow and torchvision, so scancer's
//! inputs equal PyTorch's bit for bit: Pillow's colour conversions, Pillow's bilinear resampling
//! (`resample`), torchvision's output-size and center-crop arithmetic, and float32 normalisation in
//! the same order of operations.

use super::decode::{decode, InputError};
use crate::engine::handler_config::{Color, HandlerConfig, ResizePolicy};
use crate::engine::resample::resize_bilinear;
use image::DynamicImage;
use std::io::{BufRead, Cursor, Seek};

/// One preprocessed image: `channels * height * width` floats in CHW order.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) data: Vec<f32>,
}

/// An 8-bit interleaved image with the model's channel count (3 = RGB, 1 = L).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pixels {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) channels: usize,
    pub(crate) data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct Preprocessor {
    color: Color,
    height: usize,
    width: usize,
    resize: ResizePolicy,
    shorter_side: usize,
    mean: Vec<f32>,
    std: Vec<f32>,
    max_pixels: u64,
}

impl Preprocessor {
    /// The model's colour mode.
    pub(crate) fn color(&self) -> Color {
        self.color
    }

    pub(crate) fn new(config: &HandlerConfig, max_pixels: u64) -> Self {
        Preprocessor {
            color: config.input.color,
            height: config.input.height as usize,
            width: config.input.width as usize,
            resize: config.input.resize,
            shorter_side: config.resize_shorter_side() as usize,
            mean: config.mean(),
            std: config.std(),
            max_pixels,
        }
    }

    /// Model input shape without the batch dimension: [channels, height, width].
    pub(crate) fn input_shape(&self) -> [usize; 3] {
        [self.color.channels(), self.height, self.width]
    }

    pub(crate) fn prepare(&self, bytes: &[u8]) -> Result<Prepared, InputError> {
        self.prepare_from(Cursor::new(bytes))
    }

    /// Like `prepare`, reading the encoded image from a file or stream without loading it whole.
    pub(crate) fn prepare_from<R: BufRead + Seek>(
        &self,
        reader: R,
    ) -> Result<Prepared, InputError> {
        let image = decode(reader, self.max_pixels)?;
        let pixels = self.fit(convert(image, self.color))?;
        Ok(self.normalize(&pixels))
    }

    /// Applies the resize policy: the result is exactly the model's height x width.
    pub(crate) fn fit(&self, pixels: Pixels) -> Result<Pixels, InputError> {
        let (w, h) = (pixels.width, pixels.height);
        if (w, h) == (self.width, self.height) {
            return Ok(pixels);
        }
        match self.resize {
            ResizePolicy::Reject => Err(InputError::WrongSize {
                width: w as u32,
                height: h as u32,
                want_width: self.width as u32,
                want_height: self.height as u32,
            }),
            ResizePolicy::Stretch => Ok(resize(&pixels, self.width, self.height)),
            ResizePolicy::ShorterSideCrop => {
                let (rw, rh) = shorter_side_size(w, h, self.shorter_side);
                Ok(center_crop(
                    &resize(&pixels, rw, rh),
                    self.width,
                    self.height,
                ))
            }
        }
    }

    /// `ToTensor()` then `Normalize(mean, std)`, in float32 and in torchvision's order of operations.
    pub(crate) fn normalize(&self, pixels: &Pixels) -> Prepared {
        let plane = pixels.width * pixels.height;
        let mut data = vec![0f32; plane * pixels.channels];
        for c in 0..pixels.channels {
            let (mean, std) = (self.mean[c], self.std[c]);
            let out = &mut data[c * plane..(c + 1) * plane];
            for (o, px) in out
                .iter_mut()
                .zip(pixels.data.iter().skip(c).step_by(pixels.channels))
            {
                *o = (*px as f32 / 255.0 - mean) / std;
            }
        }
        Prepared { data }
    }
}

/// Converts to 8-bit RGB or L the way Pillow's `convert("RGB")` / `convert("L")` does, except that
/// 16-bit samples are scaled to 8 bits (Pillow clips them, turning most 16-bit images white).
pub(crate) fn convert(image: DynamicImage, color: Color) -> Pixels {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let data = match (color, &image) {
        (Color::Grayscale, DynamicImage::ImageLuma8(_)) => image.into_luma8().into_raw(),
        (Color::Grayscale, DynamicImage::ImageLumaA8(img)) => {
            img.as_raw().iter().step_by(2).copied().collect()
        }
        (Color::Grayscale, DynamicImage::ImageLuma16(img)) => {
            img.as_raw().iter().map(|&v| scale16(v)).collect()
        }
        (Color::Grayscale, DynamicImage::ImageLumaA16(img)) => img
            .as_raw()
            .iter()
            .step_by(2)
            .map(|&v| scale16(v))
            .collect(),
        (Color::Grayscale, _) => rgb8(image)
            .chunks_exact(3)
            .map(|p| pillow_luma(p[0], p[1], p[2]))
            .collect(),
        (Color::Rgb, _) => rgb8(image),
    };
    Pixels {
        width,
        height,
        channels: color.channels(),
        data,
    }
}

fn rgb8(image: DynamicImage) -> Vec<u8> {
    match &image {
        DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_) => image
            .to_rgb16()
            .into_raw()
            .into_iter()
            .map(scale16)
            .collect(),
        // Alpha is dropped, not composited, as Pillow's RGBA -> RGB does. No copy for RGB already.
        _ => image.into_rgb8().into_raw(),
    }
}

/// 16 -> 8 bits, rounded: v / 257 (so 8-bit values stored as v * 257 come back exactly).
fn scale16(v: u16) -> u8 {
    ((v as u32 * 255 + 32_767) / 65_535) as u8
}

/// Pillow's ITU-R 601-2 luma in 16-bit fixed point (`L24` in Convert.c).
fn pillow_luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19_595 + g as u32 * 38_470 + b as u32 * 7_471 + 0x8000) >> 16) as u8
}

fn resize(p: &Pixels, width: usize, height: usize) -> Pixels {
    let data = resize_bilinear(&p.data, p.width, p.height, p.channels, width, height);
    Pixels {
        width,
        height,
        channels: p.channels,
        data,
    }
}

/// torchvision `Resize(n)`: the shorter side becomes n, the longer `int(n * long / short)`.
pub(crate) fn shorter_side_size(w: usize, h: usize, n: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((n * long) as f64 / short as f64) as usize;
    if w <= h {
        (n, new_long)
    } else {
        (new_long, n)
    }
}

/// torchvision `CenterCrop((height, width))`: zero padding where the crop is larger, then a crop whose
/// offsets Python rounds half to even.
pub(crate) fn center_crop(p: &Pixels, width: usize, height: usize) -> Pixels {
    let (pad_left, pad_top) = (
        width.saturating_sub(p.width) / 2,
        height.saturating_sub(p.height) / 2,
    );
    let (padded_w, padded_h) = (p.width.max(width), p.height.max(height));
    let top = ((padded_h - height) as f64 / 2.0).round_ties_even() as usize;
    let left = ((padded_w - width) as f64 / 2.0).round_ties_even() as usize;
    let ch = p.channels;
    let mut data = vec![0u8; width * height * ch];
    for y in 0..height {
        // Row y of the crop is row (top + y) of the padded image, i.e. row (top + y - pad_top) of p.
        let Some(sy) = (top + y).checked_sub(pad_top).filter(|&sy| sy < p.height) else {
            continue;
        };
        for x in 0..width {
            let Some(sx) = (left + x).checked_sub(pad_left).filter(|&sx| sx < p.width) else {
                continue;
            };
            let src = (sy * p.width + sx) * ch;
            data[(y * width + x) * ch..(y * width + x + 1) * ch]
                .copy_from_slice(&p.data[src..src + ch]);
        }
    }
    Pixels {
        width,
        height,
        channels: ch,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels(w: usize, h: usize) -> Pixels {
        Pixels {
            width: w,
            height: h,
            channels: 1,
            data: (0..w * h).map(|i| i as u8).collect(),
        }
    }

    #[test]
    fn shorter_side_follows_torchvision() {
        assert_eq!(shorter_side_size(130, 160, 72), (72, 88)); // int(72 * 160 / 130) = 88
        assert_eq!(shorter_side_size(203, 80, 72), (182, 72)); // int(72 * 203 / 80) = 182
        assert_eq!(shorter_side_size(50, 50, 72), (72, 72));
    }

    #[test]
    fn center_crop_rounds_half_to_even() {
        // 5 -> 2: (5 - 2) / 2 = 1.5 rounds to 2; 7 -> 2: 2.5 rounds to 2.
        let c = center_crop(&pixels(5, 7), 2, 2);
        assert_eq!(c.data, vec![12, 13, 17, 18]);
    }

    #[test]
    fn center_crop_pads_with_zeros() {
        let c = center_crop(&pixels(2, 1), 4, 3);
        // left pad (4-2)//2 = 1, top pad (3-1)//2 = 1.
        assert_eq!(c.data, vec![0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn pillow_luma_weights() {
        assert_eq!(pillow_luma(255, 255, 255), 255);
        assert_eq!(pillow_luma(255, 0, 0), 76);
        assert_eq!(pillow_luma(0, 255, 0), 150);
        assert_eq!(pillow_luma(0, 0, 255), 29);
    }

    #[test]
    fn sixteen_bit_scaling_round_trips() {
        for v in 0..=255u8 {
            assert_eq!(scale16(v as u16 * 257), v);
        }
    }
}
