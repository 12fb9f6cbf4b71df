//! The tumour map a person looks at: each tissue window's probability painted over the pixels it
//! covers (where windows overlap, the later one, as the notebook fills them), optionally smoothed
//! with a Gaussian over tissue only, coloured with matplotlib's `plasma`. Glass and every other
//! window that is not tissue is neutral grey, never a colour of the scale, so that "no tissue" cannot
//! be read as "confidently benign"; `--overlay` tints the tissue and leaves the rest of the slide as
//! it is. Below the map: a colour bar with the probability scale, the threshold and the grey "no
//! tissue" swatch. The PNG's text chunks record the slide's size and the downsample factor. Drawn
//! at a reduced scale so that any slide gives an image that opens anywhere.

use super::plasma;
use super::provenance::Provenance;
use super::types::SlideResult;
use image::RgbImage;

#[derive(Debug, Clone, Copy)]
pub(crate) struct HeatmapOptions {
    /// Largest side of the map in pixels.
    pub(crate) max_side: usize,
    /// Gaussian sigma in analysed pixels, the slide as read at the model's resolution (0: no
    /// smoothing).
    pub(crate) smooth: f32,
    /// Blend over the slide (half and half, tissue only) instead of the map alone.
    pub(crate) overlay: bool,
}

/// The colour of what was not analysed as tissue.
pub(crate) const NO_TISSUE: [u8; 3] = [128, 128, 128];
/// The legend's height and the smallest width that holds it, at scale 1 (a map wider than
/// `LEGEND_SCALE_STEP` pixels gets a legend as many times larger, readable once the map is scaled
/// down to a screen).
const LEGEND_HEIGHT: usize = 56;
const LEGEND_WIDTH: usize = 240;
const LEGEND_SCALE_STEP: usize = 500;

/// How many times the legend is drawn larger for a map `width` pixels wide.
fn legend_scale(width: usize) -> usize {
    (width / LEGEND_SCALE_STEP).max(1)
}

/// Whether a heatmap file is the pyramidal TIFF (`.tif`, `.tiff`) rather than the PNG.
pub(crate) fn is_tiff(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tif") || e.eq_ignore_ascii_case("tiff"))
}

/// A class's own heatmap beside the one named: `map.png` -> `map.<label>.png`, the label made safe
/// for a file name.
pub(crate) fn class_path(path: &std::path::Path, label: &str) -> std::path::PathBuf {
    let safe: String = label
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let extension = path.extension().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}.{safe}.{extension}"))
}

/// Slide pixels per heatmap pixel.
pub(crate) fn scale(result: &SlideResult, max_side: usize) -> usize {
    result
        .width
        .max(result.height)
        .div_ceil(max_side.max(1))
        .max(1)
}

/// Class `class`'s probability map at heatmap scale, row-major, `(width, height, values)`: NaN
/// where the window is not tissue.
pub(crate) fn probability_map(
    result: &SlideResult,
    scale: usize,
    class: usize,
) -> (usize, usize, Vec<f32>) {
    let (w, h) = (result.width.div_ceil(scale), result.height.div_ceil(scale));
    let (nx, ny) = result.grid;
    let mut map = vec![f32::NAN; w * h];
    for j in 0..h {
        // The slide point at the centre of this heatmap pixel; the last window over it wins.
        let cy = j * scale + scale / 2;
        let ky = (cy / result.stride).min(ny - 1);
        for i in 0..w {
            let cx = i * scale + scale / 2;
            let kx = (cx / result.stride).min(nx - 1);
            if let Some(p) = result.score(ky * nx + kx, class) {
                map[j * w + i] = p;
            }
        }
    }
    (w, h, map)
}

/// Smooths the tissue values only (a normalised convolution: glass neither lowers nor spreads a
/// probability); NaN stays NaN.
pub(crate) fn smooth_tissue(map: &mut [f32], w: usize, h: usize, sigma: f32) {
    if sigma <= 0.0 {
        return;
    }
    let mut weight: Vec<f32> = map
        .iter()
        .map(|v| f32::from(u8::from(!v.is_nan())))
        .collect();
    let mut values: Vec<f32> = map
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { *v })
        .collect();
    gaussian(&mut values, w, h, sigma);
    gaussian(&mut weight, w, h, sigma);
    for k in 0..map.len() {
        if !map[k].is_nan() && weight[k] > 0.0 {
            map[k] = (values[k] / weight[k]).clamp(0.0, 1.0);
        }
    }
}

/// A Gaussian filter like scipy.ndimage.gaussian_filter (reflect at the edges, radius 4 sigma).
pub(crate) fn gaussian(map: &mut [f32], w: usize, h: usize, sigma: f32) {
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

/// The heatmap as a PNG with its legend and text chunks (the slide's level-0 size, level-0 pixels
/// per heatmap pixel, the provenance), and that downsample.
pub(crate) fn png(
    result: &SlideResult,
    options: &HeatmapOptions,
    provenance: &Provenance,
    class: usize,
) -> (Vec<u8>, f64) {
    let (image, scale, map_size) = render(result, options, class);
    let downsample = super::provenance::rounded(scale as f64 * result.plan.downsample());
    let (w0, h0) = result.plan.level0;
    let mut texts = vec![
        ("scancer:slide-size".to_string(), format!("{w0}x{h0}")),
        ("scancer:downsample".into(), downsample.to_string()),
        ("scancer:map-size".into(), format!("{}x{}", map_size.0, map_size.1)),
        ("scancer:threshold".into(), result.threshold.to_string()),
        (
            "Description".into(),
            format!(
                "Probability of {} per tissue window (matplotlib plasma, 0 to 1; threshold {}), downsample {downsample} (level-0 slide pixels per heatmap pixel); grey: not tissue, not analysed.{}",
                result.labels[class],
                result.threshold,
                if options.overlay { " Tissue tinted over the slide." } else { "" }
            ),
        ),
    ];
    texts.extend(
        provenance
            .lines()
            .into_iter()
            .filter(|(k, _)| !matches!(*k, "scancer" | "threshold"))
            .map(|(k, v)| (format!("scancer:{k}"), v)),
    );
    let bytes = crate::png_text::encode(&image, texts);
    (bytes, downsample)
}

/// The heatmap image, its downsample factor, and the size of the map at its top left (the legend
/// is below).
pub(crate) fn render(
    result: &SlideResult,
    options: &HeatmapOptions,
    class: usize,
) -> (RgbImage, usize, (usize, usize)) {
    let scale = match (&result.thumbnail, options.overlay) {
        (Some((_, s)), true) => *s,
        _ => scale(result, options.max_side),
    };
    let (w, h, mut map) = probability_map(result, scale, class);
    smooth_tissue(&mut map, w, h, options.smooth / scale as f32);
    let zoom = legend_scale(w);
    let width = w.max(LEGEND_WIDTH * zoom);
    let mut image = RgbImage::from_pixel(
        width as u32,
        (h + LEGEND_HEIGHT * zoom) as u32,
        image::Rgb([255, 255, 255]),
    );
    for (k, &p) in map.iter().enumerate() {
        let (x, y) = ((k % w) as u32, (k / w) as u32);
        let slide = match (&result.thumbnail, options.overlay) {
            (Some((thumb, _)), true) => Some(thumb.get_pixel(x, y).0),
            _ => None,
        };
        let colour = match (p.is_nan(), slide) {
            (true, Some(s)) => s,
            (true, None) => NO_TISSUE,
            // Half and half, rounded.
            (false, Some(s)) => {
                let c = plasma::colour(p);
                [0, 1, 2].map(|i| (u16::from(c[i]) + u16::from(s[i])).div_ceil(2) as u8)
            }
            (false, None) => plasma::colour(p),
        };
        image.put_pixel(x, y, image::Rgb(colour));
    }
    let legend = Legend {
        top: h,
        threshold: result.threshold,
        title: format!("probability of {}", result.labels[class]),
        // Overlaid, glass is the slide itself: no swatch for it.
        no_tissue: !options.overlay,
        zoom,
    };
    legend.draw(&mut image);
    (image, scale, (w, h))
}

/// The band below the map: a title, the colour bar (0 to 1, the threshold marked) and, where glass
/// is drawn grey, the "no tissue" swatch.
struct Legend {
    /// The band's first row.
    top: usize,
    threshold: f32,
    title: String,
    no_tissue: bool,
    /// Times larger than the base layout.
    zoom: usize,
}

impl Legend {
    fn draw(&self, image: &mut RgbImage) {
        let z = self.zoom;
        let width = image.width() as usize;
        let black = image::Rgb([0, 0, 0]);
        let fill =
            |image: &mut RgbImage, xs: std::ops::Range<usize>, ys: std::ops::Range<usize>, c| {
                for x in xs {
                    for y in ys.clone() {
                        image.put_pixel(x as u32, y as u32, image::Rgb(c));
                    }
                }
            };
        glyphs::draw(image, &self.title, 8 * z, self.top + 4 * z, black, z);
        let (bar_left, bar_top, bar_height) = (8 * z, self.top + 20 * z, 12 * z);
        let swatch_text = "no tissue";
        let swatch_room = if self.no_tissue {
            glyphs::width(swatch_text, z) + (6 + 12 + 16) * z
        } else {
            0
        };
        let bar_right = width - 8 * z - swatch_room;
        let span = (bar_right - bar_left) as f32;
        for x in bar_left..bar_right {
            let c = plasma::colour((x - bar_left) as f32 / (span - 1.0).max(1.0));
            fill(image, x..x + 1, bar_top..bar_top + bar_height, c);
        }
        // The threshold: a black tick across the bar and above it.
        let tx = bar_left + (self.threshold.clamp(0.0, 1.0) * (span - 1.0)).round() as usize;
        fill(
            image,
            tx..tx + z,
            bar_top - 4 * z..bar_top + bar_height,
            [0; 3],
        );
        let labels_top = bar_top + bar_height + 4 * z;
        for (value, text) in [(0.0, "0"), (0.5, "0.5"), (1.0, "1")] {
            let centre = bar_left + (value * (span - 1.0)) as usize;
            let text_width = glyphs::width(text, z);
            let left = centre
                .saturating_sub(text_width / 2)
                .clamp(bar_left, bar_right - text_width);
            glyphs::draw(image, text, left, labels_top, black, z);
        }
        if self.no_tissue {
            let swatch_left = bar_right + 16 * z;
            fill(
                image,
                swatch_left..swatch_left + 12 * z,
                bar_top..bar_top + bar_height,
                NO_TISSUE,
            );
            glyphs::draw(
                image,
                swatch_text,
                swatch_left + 18 * z,
                bar_top + z,
                black,
                z,
            );
        }
    }
}

/// A small pixel font (capitals, digits and a few signs; 3 to 5 columns, 5 rows), drawn at twice its
/// size times the legend's zoom, for the legend's title and labels. Letters are drawn as capitals;
/// a character it lacks is a space.
mod glyphs {
    use image::{Rgb, RgbImage};

    const SCALE: usize = 2;

    /// Columns, and the rows' bits (the leftmost column is the highest of `columns` bits).
    fn glyph(c: char) -> (usize, [u8; 5]) {
        match c.to_ascii_uppercase() {
            '0' => (3, [0b111, 0b101, 0b101, 0b101, 0b111]),
            '1' => (3, [0b010, 0b110, 0b010, 0b010, 0b111]),
            '2' => (3, [0b111, 0b001, 0b111, 0b100, 0b111]),
            '3' => (3, [0b111, 0b001, 0b111, 0b001, 0b111]),
            '4' => (3, [0b101, 0b101, 0b111, 0b001, 0b001]),
            '5' => (3, [0b111, 0b100, 0b111, 0b001, 0b111]),
            '6' => (3, [0b111, 0b100, 0b111, 0b101, 0b111]),
            '7' => (3, [0b111, 0b001, 0b010, 0b010, 0b010]),
            '8' => (3, [0b111, 0b101, 0b111, 0b101, 0b111]),
            '9' => (3, [0b111, 0b101, 0b111, 0b001, 0b111]),
            '.' => (1, [0b0, 0b0, 0b0, 0b0, 0b1]),
            '-' | '_' => (3, [0, 0, 0b111, 0, 0]),
            '(' => (2, [0b01, 0b10, 0b10, 0b10, 0b01]),
            ')' => (2, [0b10, 0b01, 0b01, 0b01, 0b10]),
            'A' => (3, [0b010, 0b101, 0b111, 0b101, 0b101]),
            'B' => (3, [0b110, 0b101, 0b110, 0b101, 0b110]),
            'C' => (3, [0b011, 0b100, 0b100, 0b100, 0b011]),
            'D' => (3, [0b110, 0b101, 0b101, 0b101, 0b110]),
            'E' => (3, [0b111, 0b100, 0b110, 0b100, 0b111]),
            'F' => (3, [0b111, 0b100, 0b110, 0b100, 0b100]),
            'G' => (4, [0b0111, 0b1000, 0b1011, 0b1001, 0b0111]),
            'H' => (3, [0b101, 0b101, 0b111, 0b101, 0b101]),
            'I' => (3, [0b111, 0b010, 0b010, 0b010, 0b111]),
            'J' => (3, [0b001, 0b001, 0b001, 0b101, 0b010]),
            'K' => (3, [0b101, 0b101, 0b110, 0b101, 0b101]),
            'L' => (3, [0b100, 0b100, 0b100, 0b100, 0b111]),
            'M' => (5, [0b10001, 0b11011, 0b10101, 0b10001, 0b10001]),
            'N' => (4, [0b1001, 0b1101, 0b1011, 0b1001, 0b1001]),
            'O' => (4, [0b0110, 0b1001, 0b1001, 0b1001, 0b0110]),
            'P' => (3, [0b110, 0b101, 0b110, 0b100, 0b100]),
            'Q' => (4, [0b0110, 0b1001, 0b1001, 0b1010, 0b0101]),
            'R' => (3, [0b110, 0b101, 0b110, 0b101, 0b101]),
            'S' => (3, [0b111, 0b100, 0b111, 0b001, 0b111]),
            'T' => (3, [0b111, 0b010, 0b010, 0b010, 0b010]),
            'U' => (3, [0b101, 0b101, 0b101, 0b101, 0b111]),
            'V' => (3, [0b101, 0b101, 0b101, 0b101, 0b010]),
            'W' => (5, [0b10001, 0b10001, 0b10101, 0b11011, 0b10001]),
            'X' => (3, [0b101, 0b101, 0b010, 0b101, 0b101]),
            'Y' => (3, [0b101, 0b101, 0b010, 0b010, 0b010]),
            'Z' => (3, [0b111, 0b001, 0b010, 0b100, 0b111]),
            _ => (2, [0; 5]),
        }
    }

    /// Pixels across `text` at `zoom`, one column of space between letters.
    pub(crate) fn width(text: &str, zoom: usize) -> usize {
        let columns: usize = text.chars().map(|c| glyph(c).0 + 1).sum();
        columns.saturating_sub(1) * SCALE * zoom
    }

    /// Draws `text` at `zoom` with its top left at (`left`, `top`); pixels past the image are left
    /// out.
    pub(crate) fn draw(
        image: &mut RgbImage,
        text: &str,
        left: usize,
        top: usize,
        colour: Rgb<u8>,
        zoom: usize,
    ) {
        let scale = SCALE * zoom;
        let mut x0 = left;
        for c in text.chars() {
            let (columns, rows) = glyph(c);
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..columns {
                    if bits & (1 << (columns - 1 - col)) == 0 {
                        continue;
                    }
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let x = x0 + col * scale + dx;
                            let y = top + row * scale + dy;
                            if x < image.width() as usize && y < image.height() as usize {
                                image.put_pixel(x as u32, y as u32, colour);
                            }
                        }
                    }
                }
            }
            x0 += (columns + 1) * scale;
        }
    }
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
