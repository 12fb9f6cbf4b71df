//! Bilinear resampling that matches Pillow's `Image.resize(size, BILINEAR)` bit for bit on 8-bit images.
//!
//! torchvision's `Resize` on a PIL image (what TorchServe handlers and Scancer's training code use) calls
//! Pillow, so a model's accuracy was measured on Pillow's pixels. Pillow resamples in two separable
//! passes (horizontal, then vertical), each with an antialiasing triangle filter whose support grows
//! with the downscale factor, fixed-point coefficients of 22 bits, and rounding to 8 bits between the
//! passes. This is a port of `libImaging/Resample.c` (`precompute_coeffs`, `normalize_coeffs_8bpc`,
//! `ImagingResample{Horizontal,Vertical}_8bpc`) for a box covering the whole image.

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: first input index, count, and fixed-point weights (`ksize` slots each).
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle filter's support is 1.0
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // Pillow truncates with a C cast after adding 0.5; the values are >= -0.5 here.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = triangle((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(xmax) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = w * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    Coefficients {
        bounds,
        ksize,
        weights,
    }
}

#[inline]
fn clip8(acc: i64) -> u8 {
    if acc >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if acc <= 0 {
        0
    } else {
        (acc >> PRECISION_BITS) as u8
    }
}

/// Resizes an interleaved 8-bit image of `channels` channels from `w` x `h` to `out_w` x `out_h`.
pub(crate) fn resize_bilinear(
    src: &[u8],
    w: usize,
    h: usize,
    channels: usize,
    out_w: usize,
    out_h: usize,
) -> Vec<u8> {
    assert_eq!(
        src.len(),
        w * h * channels,
        "image buffer does not match its size"
    );
    assert!(w > 0 && h > 0 && out_w > 0 && out_h > 0, "empty image");
    if (w, h) == (out_w, out_h) {
        return src.to_vec();
    }
    let horiz = Axis::new(w, out_w);
    let vert = Axis::new(h, out_h);
    // Horizontal pass, over the rows the vertical pass will read only (as Pillow does).
    let (rows, row_first) = if w != out_w {
        let (first, last) = vert.inputs(0..out_h);
        let mut tmp = vec![0u8; (last - first) * out_w * channels];
        for (ty, y) in (first..last).enumerate() {
            horiz.horizontal(
                &src[y * w * channels..(y + 1) * w * channels],
                channels,
                &mut tmp[ty * out_w * channels..(ty + 1) * out_w * channels],
            );
        }
        (tmp, first)
    } else {
        (src.to_vec(), 0)
    };
    if h == out_h {
        return rows;
    }
    let stride = out_w * channels;
    let mut out = vec![0u8; out_h * stride];
    for yy in 0..out_h {
        vert.vertical(
            yy,
            &rows,
            row_first,
            stride,
            &mut out[yy * stride..(yy + 1) * stride],
        );
    }
    out
}

/// One axis of a resize: Pillow's coefficients from `in_size` to `out_size` pixels, for passes
/// over part of an image at a time (a slide's bands of rows).
pub(crate) struct Axis(Coefficients);

impl Axis {
    pub(crate) fn new(in_size: usize, out_size: usize) -> Axis {
        Axis(coefficients(in_size, out_size))
    }

    /// The input pixels `first..last` that the outputs `outputs` read.
    pub(crate) fn inputs(&self, outputs: std::ops::Range<usize>) -> (usize, usize) {
        let first = self.0.bounds[outputs.start].0;
        let (lb, lc) = self.0.bounds[outputs.end - 1];
        (first, lb + lc)
    }

    /// The horizontal pass over one row.
    pub(crate) fn horizontal(&self, row: &[u8], channels: usize, out: &mut [u8]) {
        let c = &self.0;
        let round = 1i64 << (PRECISION_BITS - 1);
        for (xx, &(xmin, xcount)) in c.bounds.iter().enumerate() {
            let k = &c.weights[xx * c.ksize..xx * c.ksize + xcount];
            for ch in 0..channels {
                let mut acc = round;
                for (x, &kw) in k.iter().enumerate() {
                    acc += row[(xmin + x) * channels + ch] as i64 * kw as i64;
                }
                out[xx * channels + ch] = clip8(acc);
            }
        }
    }

    /// The vertical pass for output row `yy`, from `rows` (of `stride` bytes) that start at input
    /// row `first`.
    pub(crate) fn vertical(
        &self,
        yy: usize,
        rows: &[u8],
        first: usize,
        stride: usize,
        out: &mut [u8],
    ) {
        let c = &self.0;
        let round = 1i64 << (PRECISION_BITS - 1);
        let (ymin, ycount) = c.bounds[yy];
        let ymin = ymin - first;
        let k = &c.weights[yy * c.ksize..yy * c.ksize + ycount];
        for (i, o) in out.iter_mut().enumerate().take(stride) {
            let mut acc = round;
            for (y, &kw) in k.iter().enumerate() {
                acc += rows[(ymin + y) * stride + i] as i64 * kw as i64;
            }
            *o = clip8(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity() {
        let src: Vec<u8> = (0..48).collect();
        assert_eq!(resize_bilinear(&src, 4, 4, 3, 4, 4), src);
    }

    #[test]
    fn constant_images_stay_constant() {
        let src = vec![200u8; 37 * 23 * 3];
        for (ow, oh) in [(10, 7), (64, 64), (37, 5), (1, 1), (100, 50)] {
            assert!(
                resize_bilinear(&src, 37, 23, 3, ow, oh)
                    .iter()
                    .all(|&v| v == 200),
                "{ow}x{oh}"
            );
        }
    }

    #[test]
    fn halving_matches_pillow() {
        // Pillow 12: Image.frombytes("L", (4, 1), bytes([0, 100, 200, 255])).resize((2, 1), BILINEAR)
        // gives [71, 209]: support 2, the triangle clipped at the image edges and renormalised.
        let out = resize_bilinear(&[0, 100, 200, 255], 4, 1, 1, 2, 1);
        assert_eq!(out, vec![71, 209]);
    }
}
