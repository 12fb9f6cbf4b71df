//! Tissue or background, as Scancer's slide notebook decides it: the HSV saturation of every 16th
//! pixel in both directions (a 1/16 downsample), averaged over a window; a window is tissue when the
//! mean is above a threshold (0.075 by default). White glass and padding have saturation 0.

/// The sampling step of the downsample.
pub const STEP: usize = 16;

/// HSV saturation of one RGB pixel, in [0, 1]: (max - min) / max, 0 for black.
pub fn saturation(r: u8, g: u8, b: u8) -> f32 {
    let max = r.max(g).max(b);
    if max == 0 {
        return 0.0;
    }
    let min = r.min(g).min(b);
    f32::from(max - min) / f32::from(max)
}

/// Mean saturation of the samples (multiples of STEP in slide coordinates) inside the window at
/// (`x`, `y`) of size `ww` x `wh`. `band` holds the slide's rows `y..y + wh` (rows below the slide
/// already white); columns right of the slide count as white. A window too small to hold a sample
/// uses its centre pixel.
pub fn mean_saturation(band: &[u8], width: usize, x: usize, y: usize, ww: usize, wh: usize) -> f32 {
    let pixel = |sx: usize, sy: usize| -> f32 {
        if sx >= width {
            return 0.0;
        }
        let at = ((sy - y) * width + sx) * 3;
        saturation(band[at], band[at + 1], band[at + 2])
    };
    let first = |start: usize| start.div_ceil(STEP) * STEP;
    let (mut sum, mut count) = (0.0f64, 0usize);
    let mut sy = first(y);
    while sy < y + wh {
        let mut sx = first(x);
        while sx < x + ww {
            sum += f64::from(pixel(sx, sy));
            count += 1;
            sx += STEP;
        }
        sy += STEP;
    }
    if count == 0 {
        return pixel(x + ww / 2, y + wh / 2);
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
        assert_eq!(mean_saturation(&band, width, 0, 0, 32, 32), 0.25);
        // Beyond the right edge counts as white: the window [16, 48) has samples at 16 and 32.
        assert_eq!(mean_saturation(&band, width, 16, 0, 32, 32), 0.25);
    }
}
