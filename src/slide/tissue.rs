//! Tissue or background, as Scancer's slide notebook decides it: the HSV saturation of every 16th
//! pixel in both directions (a 1/16 downsample), averaged over a window; a window is tissue when the
//! mean is above a threshold (0.075 by default). White glass has saturation 0; padding beyond the
//! slide's edge is not sampled.

/// The sampling step of the downsample.
pub(crate) const STEP: usize = 16;

/// HSV saturation of one RGB pixel, in [0, 1]: (max - min) / max, 0 for black.
pub(crate) fn saturation(r: u8, g: u8, b: u8) -> f32 {
    let max = r.max(g).max(b);
    if max == 0 {
        return 0.0;
    }
    let min = r.min(g).min(b);
    f32::from(max - min) / f32::from(max)
}

/// Mean saturation of the samples (multiples of STEP in slide coordinates) inside the window at
/// (`x`, `y`) of size `ww` x `wh`. `band` holds the slide's rows `y..y + wh` of a `width` x `height`
/// slide. Only the slide's own pixels count: an edge window mostly made of white padding is judged
/// by the tissue it really holds. A window too small to hold a sample uses the centre of its real
/// part.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mean_saturation(
    band: &[u8],
    width: usize,
    height: usize,
    x: usize,
    y: usize,
    ww: usize,
    wh: usize,
) -> f32 {
    let pixel = |sx: usize, sy: usize| -> f32 {
        let at = ((sy - y) * width + sx) * 3;
        saturation(band[at], band[at + 1], band[at + 2])
    };
    let (x_end, y_end) = ((x + ww).min(width), (y + wh).min(height));
    let first = |start: usize| start.div_ceil(STEP) * STEP;
    let (mut sum, mut count) = (0.0f64, 0usize);
    let mut sy = first(y);
    while sy < y_end {
        let mut sx = first(x);
        while sx < x_end {
            sum += f64::from(pixel(sx, sy));
            count += 1;
            sx += STEP;
        }
        sy += STEP;
    }
    if count == 0 {
        return pixel((x + x_end) / 2, (y + y_end) / 2);
    }
    (sum / count as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_as_hsv() {
        assert_eq!(saturation(255, 255, 255), 0.0);
        assert_eq!(saturation(0, 0, 0), 0.0);
        assert_eq!(saturation(255, 0, 0), 1.0);
        assert_eq!(saturation(200, 100, 150), 0.5);
    }

    #[test]
    fn samples_every_sixteenth_pixel_inside_the_window() {
        // A 32-wide band of 32 rows: white, with one saturated sample at (16, 16).
        let width = 32;
        let mut band = vec![255u8; width * 32 * 3];
        let at = (16 * width + 16) * 3;
        band[at..at + 3].copy_from_slice(&[255, 0, 0]);
        // Samples (0,0), (16,0), (0,16), (16,16): one of four is saturated.
        assert_eq!(mean_saturation(&band, width, 32, 0, 0, 32, 32), 0.25);
        // Padding beyond the right edge does not count: the window [16, 48) has its one real
        // column of samples at 16, and one of its two samples is saturated.
        assert_eq!(mean_saturation(&band, width, 32, 16, 0, 32, 32), 0.5);
    }
}
