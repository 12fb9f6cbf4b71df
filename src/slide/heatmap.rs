//! The tumour map a person looks at: each window's probability painted over the pixels it covers
//! (where windows overlap, the later one, as the notebook fills them), optionally smoothed with a
//! Gaussian, coloured with matplotlib's `plasma`, optionally blended over the slide. Drawn at a
//! reduced scale so that any slide gives an image that opens anywhere.

use super::{plasma, SlideResult};
use image::RgbImage;

#[derive(Debug, Clone, Copy)]
pub struct HeatmapOptions {
    /// Largest side of the heatmap in pixels.
    pub max_side: usize,
    /// Gaussian sigma in slide pixels (0: no smoothing).
    pub smooth: f32,
    /// Blend over the slide (half and half) instead of the map alone.
    pub overlay: bool,
}

/// Slide pixels per heatmap pixel.
pub fn scale(result: &SlideResult, max_side: usize) -> usize {
    result
        .width
        .max(result.height)
        .div_ceil(max_side.max(1))
        .max(1)
}

/// The probability map at heatmap scale, row-major, `(width, height, values)`.
pub fn probability_map(result: &SlideResult, scale: usize) -> (usize, usize, Vec<f32>) {
    let (w, h) = (result.width.div_ceil(scale), result.height.div_ceil(scale));
    let (nx, ny) = result.grid;
    let mut map = vec![0f32; w * h];
    for j in 0..h {
        // The slide point at the centre of this heatmap pixel; the last window over it wins.
        let cy = j * scale + scale / 2;
        let ky = (cy / result.stride).min(ny - 1);
        for i in 0..w {
            let cx = i * scale + scale / 2;
            let kx = (cx / result.stride).min(nx - 1);
            map[j * w + i] = result.tiles[ky * nx + kx].probability;
        }
    }
    (w, h, map)
}

/// A Gaussian filter like scipy.ndimage.gaussian_filter (reflect at the edges, radius 4 sigma).
pub fn gaussian(map: &mut [f32], w: usize, h: usize, sigma: f32) {
    if sigma <= 0.0 || w == 0 || h == 0 {
        return;
    }
    let radius = (4.0 * sigma + 0.5) as isize;
    let mut kernel: Vec<f64> = (-radius..=radius)
        .map(|k| (-0.5 * (k as f64 / f64::from(sigma)).powi(2)).exp())
        .collect();
    let total: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let reflect = |i: isize, n: usize| -> usize {
        let n = n as isize;
        let mut i = i;
        // scipy's "reflect": (d c b a | a b c d | d c b a), repeated.
        loop {
            if i < 0 {
                i = -i - 1;
            } else if i >= n {
                i = 2 * n - i - 1;
            } else {
                return i as usize;
            }
        }
    };
    // Rows, then columns: the filter is separable.
    let mut line = Vec::new();
    let filter = |line: &[f32], n: usize, at: usize| -> f32 {
        kernel
            .iter()
            .enumerate()
            .map(|(k, c)| c * f64::from(line[reflect(at as isize + k as isize - radius, n)]))
            .sum::<f64>() as f32
    };
    for y in 0..h {
        line.clear();
        line.extend_from_slice(&map[y * w..(y + 1) * w]);
        for x in 0..w {
            map[y * w + x] = filter(&line, w, x);
        }
    }
    for x in 0..w {
        line.clear();
        line.extend((0..h).map(|y| map[y * w + x]));
        for y in 0..h {
            map[y * w + x] = filter(&line, h, y);
        }
    }
}

pub fn render(result: &SlideResult, options: &HeatmapOptions) -> RgbImage {
    let scale = match (&result.thumbnail, options.overlay) {
        (Some((_, s)), true) => *s,
        _ => scale(result, options.max_side),
    };
    let (w, h, mut map) = probability_map(result, scale);
    gaussian(&mut map, w, h, options.smooth / scale as f32);
    let mut image = RgbImage::new(w as u32, h as u32);
    for (k, pixel) in image.pixels_mut().enumerate() {
        let c = plasma::colour(map[k]);
        pixel.0 = match (&result.thumbnail, options.overlay) {
            (Some((thumb, _)), true) => {
                let s = thumb.get_pixel((k % w) as u32, (k / w) as u32).0;
                // Half and half, rounded.
                [0, 1, 2].map(|i| (u16::from(c[i]) + u16::from(s[i])).div_ceil(2) as u8)
            }
            _ => c,
        };
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_keeps_mass_and_constants() {
        let mut flat = vec![0.5f32; 20 * 10];
        gaussian(&mut flat, 20, 10, 2.0);
        assert!(flat.iter().all(|v| (v - 0.5).abs() < 1e-6));
        let mut spike = vec![0f32; 41 * 41];
        spike[20 * 41 + 20] = 1.0;
        gaussian(&mut spike, 41, 41, 3.0);
        let total: f32 = spike.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        assert!(spike[20 * 41 + 20] > spike[20 * 41 + 23]);
        assert_eq!(spike[20 * 41 + 17], spike[20 * 41 + 23]);
    }
}
