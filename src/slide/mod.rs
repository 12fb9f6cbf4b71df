//! Whole slides: an image larger than a patch model's input is cut into windows of the input size
//! (stride configurable, right and bottom edges padded with white), background windows are skipped by
//! the notebook's saturation test, and the tissue windows go through the same engine as single
//! patches, in batches. The slide is read in bands of rows (`rows`), so memory follows the slide's
//! width, not its area, and every size it declares is checked before allocation. A slide's result
//! counts tissue windows only: one without tissue has no result (an error record that says why), and
//! one with implausibly little gets a warning.

pub(crate) mod exports;
pub(crate) mod heatmap;
mod heatmap_tiff;
pub(crate) mod plasma;
pub(crate) mod provenance;
mod pyramid_tiff;
pub(crate) mod regions;
pub(crate) mod resolution;
pub(crate) mod rows;
pub(crate) mod tiles;
pub(crate) mod tissue;

use crate::engine::preprocess::{convert, Prepared};
use crate::engine::Engine;
use crate::inputs::{read_stdin, Item, Source};
use crate::records::summary::{Hotspot, RegionSummary};
use crate::records::OutputKind;
use crate::records::Prediction;
use crate::records::{Outcome, Summary};
use image::{DynamicImage, RgbImage};
use provenance::Provenance;
use regions::Region;
use resolution::{LevelChoice, Plan};
use rows::Rows;

#[derive(Debug, Clone)]
pub(crate) struct SlideOptions {
    /// Pixels between window origins [default: the window size].
    pub(crate) stride: Option<usize>,
    /// Mean saturation above which a window is tissue.
    pub(crate) tissue_threshold: f64,
    /// Run every window, background included (tissue is still only what the test says).
    pub(crate) all_tiles: bool,
    /// Largest side of the thumbnail kept for heatmap overlays (0: none).
    pub(crate) thumbnail_side: usize,
    /// Which level is read, and the resolution wanted.
    pub(crate) choice: LevelChoice,
    /// Gaussian sigma (analysed pixels) of the map regions are found on (0: the windows as run).
    pub(crate) smooth: f32,
}

/// How many regions a record lists (the exports hold every one).
pub(crate) const TOP_REGIONS: usize = 10;

/// The most windows of one slide (a 200,000 x 100,000 scan at stride 48 has 8.7 million).
pub(crate) const MAX_WINDOWS: usize = 1 << 24;

/// Below this fraction of tissue windows a slide's result gets a warning: a blank, faded or
/// wrong-level scan, or a threshold that does not suit the stain.
pub(crate) const LOW_TISSUE: f32 = 0.01;

/// One window of the grid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tile {
    pub(crate) x: usize,
    pub(crate) y: usize,
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// Mean saturation of the 1/16 samples of the slide's own pixels in the window.
    pub(crate) saturation: f32,
    /// What the tissue test says (also with --all-tiles).
    pub(crate) tissue: bool,
    /// The model's probability of the positive class; none for windows that were not run.
    pub(crate) probability: Option<f32>,
}

/// Everything predicted for a slide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlideResult {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) stride: usize,
    pub(crate) window: (usize, usize),
    /// Windows across and down.
    pub(crate) grid: (usize, usize),
    /// In raster order.
    pub(crate) tiles: Vec<Tile>,
    pub(crate) threshold: f32,
    pub(crate) tissue_threshold: f64,
    /// A downscaled copy of the slide for overlays, and its scale (slide pixels per pixel).
    pub(crate) thumbnail: Option<(RgbImage, usize)>,
    /// The level read and the way back to level-0 pixels.
    pub(crate) plan: Plan,
    /// Each window's probability as regions are found on it (smoothed over tissue with
    /// `--smooth`), NaN where it is not tissue; raster order.
    pub(crate) cells: Vec<f32>,
    /// Positive regions, most suspicious first.
    pub(crate) regions: Vec<Region>,
}

impl SlideResult {
    /// The window grid, mapped to level 0.
    pub(crate) fn grid(&self) -> regions::Grid<'_> {
        regions::Grid {
            across: self.grid.0,
            down: self.grid.1,
            stride: self.stride,
            size: (self.width, self.height),
            window: self.window,
            plan: &self.plan,
        }
    }

    /// The most suspicious tissue window (the first of equals, in raster order).
    pub(crate) fn hotspot(&self) -> Option<Hotspot> {
        let (k, p) = self
            .tiles
            .iter()
            .enumerate()
            .filter(|(_, t)| t.tissue)
            .filter_map(|(k, t)| t.probability.map(|p| (k, p)))
            .fold(None, |best: Option<(usize, f32)>, (k, p)| match best {
                Some((_, b)) if b >= p => best,
                _ => Some((k, p)),
            })?;
        Some(Hotspot {
            bounds: self.grid().window_bounds(k),
            probability: p,
        })
    }

    /// The probabilities of tissue windows: the only ones a slide's result is made of.
    fn tissue_probabilities(&self) -> impl Iterator<Item = f32> + '_ {
        self.tiles
            .iter()
            .filter(|t| t.tissue)
            .filter_map(|t| t.probability)
    }

    pub(crate) fn tissue_tiles(&self) -> usize {
        self.tiles.iter().filter(|t| t.tissue).count()
    }

    pub(crate) fn positive_tiles(&self) -> usize {
        self.tissue_probabilities()
            .filter(|&p| p > self.threshold)
            .count()
    }

    /// The most suspicious tissue window's probability (none without tissue).
    pub(crate) fn max_probability(&self) -> Option<f32> {
        self.tissue_probabilities().reduce(f32::max)
    }

    /// Mean over tissue windows (none without tissue).
    pub(crate) fn mean_probability(&self) -> Option<f32> {
        let (sum, n) = self
            .tissue_probabilities()
            .fold((0.0f64, 0usize), |(s, n), p| (s + f64::from(p), n + 1));
        (n > 0).then(|| (sum / n as f64) as f32)
    }

    /// Positive windows over tissue windows (none without tissue).
    pub(crate) fn positive_fraction(&self) -> Option<f32> {
        let tissue = self.tissue_tiles();
        (tissue > 0).then(|| self.positive_tiles() as f32 / tissue as f32)
    }

    /// Tissue windows over all windows.
    pub(crate) fn tissue_fraction(&self) -> f32 {
        self.tissue_tiles() as f32 / self.tiles.len().max(1) as f32
    }

    /// Why this slide's result cannot be trusted as a negative, if it cannot: no tissue at all.
    pub(crate) fn no_tissue(&self) -> Option<String> {
        (self.tissue_tiles() == 0).then(|| {
            let most = self.tiles.iter().map(|t| t.saturation).fold(0.0, f32::max);
            format!(
                "no tissue found: {} windows, all below the tissue threshold {} (highest mean saturation {most:.4}); a blank, faded or wrong-level scan has no result (check the slide, --level or --tissue-threshold)",
                self.tiles.len(),
                self.tissue_threshold,
            )
        })
    }

    /// A warning for implausibly little tissue.
    pub(crate) fn warning(&self) -> Option<String> {
        let fraction = self.tissue_fraction();
        (self.tissue_tiles() > 0 && fraction < LOW_TISSUE).then(|| {
            format!(
                "only {:.2}% of the windows are tissue ({} of {}): check that the scan is not blank, faded or at the wrong level",
                fraction * 100.0,
                self.tissue_tiles(),
                self.tiles.len()
            )
        })
    }
}

impl Summary {
    pub(crate) fn new(
        result: &SlideResult,
        provenance: &Provenance,
        heatmap: Option<(String, f64)>,
        exports: Vec<(&'static str, String)>,
    ) -> Summary {
        let (heatmap, heatmap_downsample) = heatmap.unzip();
        let mpp = result.plan.mpp.map(|(m, _)| provenance::rounded(m));
        let top_regions = result
            .regions
            .iter()
            .take(TOP_REGIONS)
            .map(|r| RegionSummary {
                bounds: r.bounds,
                windows: r.windows.len(),
                area_mm2: r.area_mm2(mpp),
                diameter_mm: r.diameter_mm(mpp),
                peak_probability: r.peak,
                peak: r.peak_at,
            })
            .collect();
        Summary {
            width: result.plan.level0.0,
            height: result.plan.level0.1,
            level: result.plan.level,
            downsample: provenance::rounded(result.plan.downsample()),
            mpp,
            tiles: result.tiles.len(),
            tissue_tiles: result.tissue_tiles(),
            tissue_fraction: result.tissue_fraction(),
            positive_tiles: result.positive_tiles(),
            max_probability: result.max_probability(),
            mean_probability: result.mean_probability(),
            positive_fraction: result.positive_fraction(),
            hotspot: result.hotspot(),
            regions: result.regions.len(),
            top_regions,
            heatmap,
            heatmap_downsample,
            exports,
            provenance: provenance.to_json(),
            warning: result.warning(),
        }
    }
}

/// Predicting one input of a run in slide mode.
pub(crate) struct Slide<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) options: &'a SlideOptions,
    /// The model's and configuration's sha256.
    pub(crate) identity: &'a crate::engine::model_source::ModelIdentity,
    /// Where to write the heatmap, and how.
    pub(crate) heatmap: Option<(&'a std::path::Path, &'a heatmap::HeatmapOptions)>,
    /// The other files to write for this slide.
    pub(crate) exports: Vec<(exports::Format, std::path::PathBuf)>,
    pub(crate) max_pixels: u64,
    pub(crate) quiet: bool,
}

/// One input's answer in slide mode.
pub(crate) struct Predicted {
    pub(crate) outcome: Outcome,
    /// For a slide (also one without tissue): its summary.
    pub(crate) summary: Option<Summary>,
    pub(crate) result: Option<SlideResult>,
}

impl Slide<'_> {
    /// One input: a slide when larger than the window (its most suspicious window's prediction and
    /// a summary, or an error record with the summary when it holds no tissue), else a single patch
    /// exactly as plain predict answers it. A decoder that panics costs this input only.
    pub(crate) fn predict(&self, item: &Item) -> Predicted {
        match crate::pipeline::decoding(|| self.try_predict(item)) {
            Ok(done) => done,
            Err(why) => Predicted {
                outcome: Outcome::Failed(why),
                summary: None,
                result: None,
            },
        }
    }

    fn try_predict(&self, item: &Item) -> Result<Predicted, String> {
        let input = item.as_ref().map_err(|u| u.message.clone())?;
        let choice = &self.options.choice;
        let opened = match &input.source {
            Source::File(path) => rows::open(path, self.max_pixels, choice)?,
            Source::Stdin => rows::from_bytes(read_stdin(1 << 30)?, self.max_pixels, choice)?,
        };
        let pre = self.engine.preprocessor();
        let [_, wh, ww] = pre.input_shape();
        let rows::Opened {
            mut rows,
            whole,
            plan,
        } = opened;
        let (width, height) = rows.size();
        if plan.level0.0 <= ww && plan.level0.1 <= wh {
            // A patch: plain predict's path, resize policy included.
            let mut band = vec![0u8; width * height * 3];
            rows.read(0, height, &mut band)?;
            let image = RgbImage::from_raw(width as u32, height as u32, band)
                .ok_or("the image has no pixels")?;
            let pixels = convert(
                DynamicImage::ImageRgb8(image),
                self.engine.config().input.color,
            );
            let prepared = pre.normalize(&pre.fit(pixels).map_err(|e| e.to_string())?);
            let answer = self.engine.infer_each(&[&prepared]).remove(0)?;
            return Ok(Predicted {
                outcome: Outcome::Predicted(answer),
                summary: None,
                result: None,
            });
        }
        if !self.quiet {
            if let Some(format) = whole {
                crate::messages::note!(
"note: {}: {format} cannot be read in strips; the whole {width}x{height} image was decoded",
                    input.display
                );
            }
            if let Some(note) = &plan.note {
                crate::messages::note!("note: {}: {note}", input.display);
            }
        }
        let bar = progress(&input.display, self.quiet);
        let result = predict(
            self.engine,
            rows.as_mut(),
            plan,
            self.options,
            &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        );
        bar.finish_and_clear();
        let result = result?;
        let provenance = Provenance::new(
            self.identity,
            &result.plan,
            provenance::Settings {
                window: result.window,
                stride: result.stride,
                threshold: result.threshold,
                tissue_threshold: self.options.tissue_threshold,
                smooth: self.options.smooth,
            },
        );
        if let Some(why) = result.no_tissue() {
            return Ok(Predicted {
                outcome: Outcome::Failed(why),
                summary: Some(Summary::new(&result, &provenance, None, Vec::new())),
                result: Some(result),
            });
        }
        if let (Some(warning), false) = (result.warning(), self.quiet) {
            crate::messages::warning!("{}: {warning}", input.display);
        }
        let heatmap = match self.heatmap {
            Some((path, _)) if heatmap::is_tiff(path) => {
                let label = self.engine.postprocessor().label(1);
                heatmap_tiff::write(&result, &result.cells, &provenance, &label, path)?;
                Some((path.display().to_string(), 1.0))
            }
            Some((path, options)) => {
                let (png, downsample) = heatmap::png(&result, options, &provenance);
                crate::output_file::write_file(path, &png).map_err(|e| {
                    format!(
                        "cannot write the heatmap {}: {}",
                        path.display(),
                        crate::inputs::io_message(&e)
                    )
                })?;
                Some((path.display().to_string(), downsample))
            }
            None => None,
        };
        let post = self.engine.postprocessor();
        let export = exports::Export {
            result: &result,
            provenance: &provenance,
            slide: &input.display,
            positive_label: post.label(1),
            negative_label: post.label(0),
        };
        let mut written = Vec::new();
        for (format, path) in &self.exports {
            format.write(&export, path)?;
            written.push((format.key(), path.display().to_string()));
        }
        let most = post.binary(result.max_probability().unwrap_or(0.0));
        Ok(Predicted {
            outcome: Outcome::Predicted(Prediction::Class(most)),
            summary: Some(Summary::new(&result, &provenance, heatmap, written)),
            result: Some(result),
        })
    }
}

fn progress(name: &str, quiet: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} {pos}/{len} windows [{wide_bar}] {per_sec} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

/// Window origins along one side: from 0 every `stride`, until a window reaches the far edge.
pub(crate) fn origins(length: usize, window: usize, stride: usize) -> Vec<usize> {
    let count = if length <= window {
        1
    } else {
        (length - window).div_ceil(stride) + 1
    };
    (0..count).map(|k| k * stride).collect()
}

/// Checks a slide run's settings against the model before any slide is read: these are usage
/// errors, not one slide's.
pub(crate) fn check(
    engine_config: &crate::engine::handler_config::HandlerConfig,
    stride: Option<usize>,
) -> Result<usize, String> {
    if engine_config.output.kind != OutputKind::Binary {
        return Err(format!(
            "slides need a binary patch classifier (kind = \"binary\"); this model's kind is \"{}\"",
            engine_config.output.kind
        ));
    }
    let (ww, wh) = (
        engine_config.input.width as usize,
        engine_config.input.height as usize,
    );
    let window = ww.min(wh);
    let stride = stride.unwrap_or(window);
    if stride == 0 || stride > window {
        return Err(format!(
            "--stride {stride} must be between 1 and the window size ({window})"
        ));
    }
    Ok(stride)
}

/// Predicts every window of a slide. `progress` hears (windows done, windows in all).
pub(crate) fn predict(
    engine: &Engine,
    rows: &mut dyn Rows,
    plan: Plan,
    options: &SlideOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SlideResult, String> {
    let config = engine.config();
    let stride = check(config, options.stride)?;
    let pre = engine.preprocessor();
    let [_, wh, ww] = pre.input_shape();
    let (width, height) = rows.size();
    rows::check_size(width, height)?;
    let xs = origins(width, ww, stride);
    let ys = origins(height, wh, stride);
    let total = xs.len().saturating_mul(ys.len());
    if total > MAX_WINDOWS {
        return Err(format!(
            "the slide's {width}x{height} pixels make {total} windows at stride {stride}; scancer predicts up to {MAX_WINDOWS} windows a slide (use a larger --stride or --level)"
        ));
    }
    if width.saturating_mul(wh).saturating_mul(3) > rows::MAX_BAND_BYTES {
        return Err(format!(
            "a band of {width}x{wh} pixels is over {} MiB",
            rows::MAX_BAND_BYTES >> 20
        ));
    }
    let mut thumbnail = (options.thumbnail_side > 0).then(|| {
        let scale = width.max(height).div_ceil(options.thumbnail_side).max(1);
        (
            RgbImage::from_pixel(
                width.div_ceil(scale) as u32,
                height.div_ceil(scale) as u32,
                image::Rgb([255, 255, 255]),
            ),
            scale,
        )
    });
    let mut tiles = Vec::with_capacity(total);
    let mut band = vec![0u8; width * wh * 3];
    let mut pending: Vec<(usize, Prepared)> = Vec::new();
    let mut done = 0;
    for &y in &ys {
        rows.read(y, wh, &mut band)?;
        if let Some((thumb, scale)) = &mut thumbnail {
            sample_thumbnail(thumb, *scale, &band, width, y, wh);
        }
        for &x in &xs {
            let saturation = tissue::mean_saturation(&band, width, height, x, y, ww, wh);
            let is_tissue = f64::from(saturation) > options.tissue_threshold;
            if is_tissue || options.all_tiles {
                let tile = window(&band, width, x, ww, wh);
                let pixels = convert(DynamicImage::ImageRgb8(tile), config.input.color);
                pending.push((tiles.len(), pre.normalize(&pixels)));
            } else {
                done += 1;
            }
            tiles.push(Tile {
                x,
                y,
                width: ww,
                height: wh,
                saturation,
                tissue: is_tissue,
                probability: None,
            });
            if pending.len() == engine.batch_size() {
                done += run(engine, &mut pending, &mut tiles)?;
            }
        }
        progress(done, total);
    }
    done += run(engine, &mut pending, &mut tiles)?;
    progress(done, total);
    let mut result = SlideResult {
        width,
        height,
        stride,
        window: (ww, wh),
        grid: (xs.len(), ys.len()),
        tiles,
        threshold: config.threshold(),
        tissue_threshold: options.tissue_threshold,
        thumbnail,
        plan,
        cells: Vec::new(),
        regions: Vec::new(),
    };
    find_regions(&mut result, options.smooth);
    Ok(result)
}

/// Positive regions: tissue windows above the threshold (on the map smoothed over tissue with
/// `smooth`, analysed pixels, when asked), 8-connected.
fn find_regions(result: &mut SlideResult, smooth: f32) {
    let (nx, ny) = result.grid;
    let probability: Vec<Option<f32>> = result
        .tiles
        .iter()
        .map(|t| t.probability.filter(|_| t.tissue))
        .collect();
    let mut map: Vec<f32> = probability.iter().map(|p| p.unwrap_or(f32::NAN)).collect();
    heatmap::smooth_tissue(&mut map, nx, ny, smooth / result.stride as f32);
    let positive: Vec<bool> = map.iter().map(|&p| p > result.threshold).collect();
    result.regions = regions::regions(&result.grid(), &positive, &probability);
    result.cells = map;
}

/// Runs the pending windows; returns how many.
fn run(
    engine: &Engine,
    pending: &mut Vec<(usize, Prepared)>,
    tiles: &mut [Tile],
) -> Result<usize, String> {
    if pending.is_empty() {
        return Ok(0);
    }
    let inputs: Vec<&Prepared> = pending.iter().map(|(_, p)| p).collect();
    let predictions = engine
        .infer_each(&inputs)
        .into_iter()
        .collect::<Result<Vec<_>, String>>()?;
    for ((k, _), prediction) in pending.iter().zip(predictions) {
        if let Prediction::Class(c) = prediction {
            tiles[*k].probability = Some(c.probabilities[1]);
        }
    }
    let n = pending.len();
    pending.clear();
    Ok(n)
}

/// The window at `x` of a band, white beyond the right edge.
fn window(band: &[u8], width: usize, x: usize, ww: usize, wh: usize) -> RgbImage {
    let mut tile = RgbImage::from_pixel(ww as u32, wh as u32, image::Rgb([255, 255, 255]));
    let inside = width.saturating_sub(x).min(ww);
    for row in 0..wh {
        // Rows below the slide are already white in the band.
        let from = (row * width + x) * 3;
        let to = row * ww * 3;
        tile.as_mut()[to..to + inside * 3].copy_from_slice(&band[from..from + inside * 3]);
    }
    tile
}

/// Nearest-pixel samples of the band's rows into the thumbnail.
fn sample_thumbnail(
    thumb: &mut RgbImage,
    scale: usize,
    band: &[u8],
    width: usize,
    y: usize,
    rows: usize,
) {
    for ty in 0..thumb.height() as usize {
        let sy = ty * scale + scale / 2;
        if sy < y || sy >= y + rows {
            continue;
        }
        let row = &band[(sy - y) * width * 3..];
        for tx in 0..thumb.width() as usize {
            let sx = (tx * scale + scale / 2).min(width - 1);
            thumb.put_pixel(
                tx as u32,
                ty as u32,
                image::Rgb([row[sx * 3], row[sx * 3 + 1], row[sx * 3 + 2]]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_origins_cover_the_slide() {
        assert_eq!(origins(96, 96, 96), [0]);
        assert_eq!(origins(50, 96, 96), [0]);
        assert_eq!(origins(97, 96, 96), [0, 96]);
        assert_eq!(origins(300, 96, 96), [0, 96, 192, 288]);
        assert_eq!(origins(300, 96, 48), [0, 48, 96, 144, 192, 240]);
    }
}
