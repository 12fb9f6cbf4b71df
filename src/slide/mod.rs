//! Whole slides: an image larger than a patch model's input is cut into windows of the input size
//! (stride configurable, right and bottom edges padded with white), at the pyramid level and
//! resolution asked for (`resolution`), background windows are skipped by the notebook's saturation
//! test, and the tissue windows go through the same engine as single patches, in batches (`scan`).
//! The slide is read in bands of rows (`rows`), so memory follows the slide's width, not its area,
//! and every size it declares is checked before allocation. A slide's result counts tissue windows
//! only: one without tissue has no result (an error record that says why), and one with implausibly
//! little gets a warning. Binary, multiclass and segmentation models all run on slides (`classes`);
//! results are in level-0 pixels, with their provenance, in records and in the exports viewers read.

mod classes;
pub(crate) mod exports;
pub(crate) mod heatmap;
mod heatmap_tiff;
pub(crate) mod plasma;
pub(crate) mod provenance;
mod pyramid_tiff;
pub(crate) mod regions;
pub(crate) mod resolution;
pub(crate) mod rows;
pub(crate) mod scan;
pub(crate) mod tiles;
pub(crate) mod tissue;

use crate::engine::preprocess::convert;
use crate::engine::Engine;
use crate::inputs::{read_stdin, Item, Source};
use crate::records::summary::{ClassSummary, Hotspot, RegionSummary};
use crate::records::OutputKind;
use crate::records::{Outcome, Summary};
use crate::records::{Prediction, SegmentationPrediction};
use image::{DynamicImage, RgbImage};
use provenance::Provenance;
use regions::Region;
use resolution::{LevelChoice, Plan};
use std::path::{Path, PathBuf};

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
    /// `--class`: the class of a multiclass model whose map and regions are the slide's result.
    pub(crate) class: Option<String>,
}

/// How many regions a record lists (the exports hold every one).
pub(crate) const TOP_REGIONS: usize = 10;

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
    /// Whether the window went through the model (tissue, or every window with --all-tiles).
    pub(crate) runs: bool,
    /// The probability of the slide's class (binary: the positive class; multiclass: --class, else
    /// the window's own class; segmentation: the share of the window's most frequent class); none
    /// for windows that were not run.
    pub(crate) probability: Option<f32>,
    /// The window's class (binary: above the threshold or not).
    pub(crate) class: Option<usize>,
}

/// Everything predicted for a slide.
#[derive(Debug, Clone)]
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
    pub(crate) kind: OutputKind,
    pub(crate) labels: Vec<String>,
    /// The class the record, hotspot and regions are about: binary's positive class, multiclass's
    /// `--class`; none for a multiclass model without one, and for segmentation.
    pub(crate) focus: Option<usize>,
    /// Per window and class, the model's probability (NaN: not run); binary and multiclass.
    pub(crate) scores: Vec<f32>,
    /// Per window, its class mask at the model's output size (segmentation), and that size.
    pub(crate) masks: Vec<Option<Box<[u8]>>>,
    pub(crate) mask_size: (usize, usize),
    /// Per class, each window's probability as regions are found on it (smoothed over tissue with
    /// `--smooth`), NaN where it is not tissue; raster order. Empty for classes without a map.
    pub(crate) cells: Vec<Vec<f32>>,
    /// The focus class's regions, most suspicious first.
    pub(crate) regions: Vec<Region>,
    /// Each class's regions (multiclass; binary: the positive class's).
    pub(crate) class_regions: Vec<Vec<Region>>,
    /// The hotspot window's model input, kept for `--explain`.
    pub(crate) hotspot_input: Option<crate::engine::preprocess::Prepared>,
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

    /// The most suspicious tissue window for the focus class (the first of equals, in raster
    /// order).
    pub(crate) fn hotspot(&self) -> Option<Hotspot> {
        self.focus?;
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

    /// The focus class's probabilities of tissue windows: the only ones a slide's result is made
    /// of (none without a focus class).
    fn tissue_probabilities(&self) -> impl Iterator<Item = f32> + '_ {
        self.tiles
            .iter()
            .filter(|t| t.tissue && self.focus.is_some())
            .filter_map(|t| t.probability)
    }

    /// Window `k`'s probability of class `c` where it is tissue and ran.
    pub(crate) fn score(&self, k: usize, c: usize) -> Option<f32> {
        let p = *self.scores.get(k * self.labels.len() + c)?;
        (self.tiles[k].tissue && !p.is_nan()).then_some(p)
    }

    pub(crate) fn tissue_tiles(&self) -> usize {
        self.tiles.iter().filter(|t| t.tissue).count()
    }

    /// Tissue windows of the focus class.
    pub(crate) fn positive_tiles(&self) -> usize {
        self.tiles
            .iter()
            .filter(|t| t.tissue && self.focus.is_some() && t.class == self.focus)
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

/// A region as a record lists it.
pub(crate) fn region_summary(r: &Region, mpp: Option<f64>) -> RegionSummary {
    RegionSummary {
        bounds: r.bounds,
        windows: r.windows.len(),
        area_mm2: r.area_mm2(mpp),
        diameter_mm: r.diameter_mm(mpp),
        peak_probability: r.peak,
        peak: r.peak_at,
    }
}

impl Summary {
    pub(crate) fn new(
        result: &SlideResult,
        provenance: &Provenance,
        heatmap: Option<(String, f64)>,
        classes: Vec<ClassSummary>,
        exports: Vec<(&'static str, String)>,
    ) -> Summary {
        let (heatmap, heatmap_downsample) = heatmap.unzip();
        let mpp = result.plan.mpp.map(|(m, _)| provenance::rounded(m));
        let top_regions = result
            .regions
            .iter()
            .take(TOP_REGIONS)
            .map(|r| region_summary(r, mpp))
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
            classes,
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
    pub(crate) heatmap: Option<(&'a Path, &'a heatmap::HeatmapOptions)>,
    /// Where a segmentation model's stitched mask goes.
    pub(crate) mask: Option<PathBuf>,
    /// Where the hotspot window's explanation goes.
    pub(crate) explain: Option<PathBuf>,
    /// The other files to write for this slide.
    pub(crate) exports: Vec<(exports::Format, PathBuf)>,
    pub(crate) max_pixels: u64,
    pub(crate) quiet: bool,
}

/// The record's heatmap (path, level-0 pixels per heatmap pixel), and each class's own.
type Heatmaps = (Option<(String, f64)>, Vec<Option<String>>);

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
            let answer = self.engine.infer_each(0, &[&prepared]).remove(0)?;
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
        let result = scan::predict(
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
        let mpp = result.plan.mpp.map(|(m, _)| provenance::rounded(m));
        if let Some(why) = result.no_tissue() {
            let classes = classes::summaries(&result, mpp, &[]);
            return Ok(Predicted {
                outcome: Outcome::Failed(why),
                summary: Some(Summary::new(
                    &result,
                    &provenance,
                    None,
                    classes,
                    Vec::new(),
                )),
                result: Some(result),
            });
        }
        if let (Some(warning), false) = (result.warning(), self.quiet) {
            crate::messages::warning!("{}: {warning}", input.display);
        }
        let (heatmap, class_heatmaps) = self.heatmaps(&result, &provenance)?;
        let mut written = Vec::new();
        if let Some(path) = &self.mask {
            classes::write_mask(&result, &provenance, path)?;
            written.push(("mask", path.display().to_string()));
        }
        if let (Some(path), Some(input), Some(focus)) =
            (&self.explain, &result.hotspot_input, result.focus)
        {
            crate::attribution_png::explain_to(self.engine, self.identity, path, input, focus)?;
            written.push(("explanation", path.display().to_string()));
        }
        let export = exports::Export {
            result: &result,
            provenance: &provenance,
            slide: &input.display,
        };
        for (format, path) in &self.exports {
            format.write(&export, path)?;
            written.push((format.key(), path.display().to_string()));
        }
        let classes = classes::summaries(&result, mpp, &class_heatmaps);
        let outcome = Outcome::Predicted(self.slide_prediction(&result, &classes));
        Ok(Predicted {
            outcome,
            summary: Some(Summary::new(
                &result,
                &provenance,
                heatmap,
                classes,
                written,
            )),
            result: Some(result),
        })
    }

    /// The slide's own answer: its most suspicious window's for the focus class (binary, or
    /// multiclass with --class), the mean over tissue windows for a multiclass model without one,
    /// each class's share of the analysed tissue for segmentation.
    fn slide_prediction(&self, result: &SlideResult, classes: &[ClassSummary]) -> Prediction {
        let post = self.engine.postprocessor();
        let n = result.labels.len();
        match (result.kind, result.focus) {
            (OutputKind::Segmentation, _) => Prediction::Segmentation(SegmentationPrediction {
                width: result.plan.level0.0,
                height: result.plan.level0.1,
                mask: Vec::new(),
                fractions: classes.iter().map(|c| c.fraction.unwrap_or(0.0)).collect(),
            }),
            (OutputKind::Binary, _) => {
                Prediction::Class(post.binary(result.max_probability().unwrap_or(0.0)))
            }
            (_, Some(f)) => {
                let k = (0..result.tiles.len())
                    .filter_map(|k| result.score(k, f).map(|p| (k, p)))
                    .fold(None, |best: Option<(usize, f32)>, (k, p)| match best {
                        Some((_, b)) if b >= p => best,
                        _ => Some((k, p)),
                    })
                    .map_or(0, |(k, _)| k);
                Prediction::Class(post.multiclass(&result.scores[k * n..(k + 1) * n]))
            }
            (_, None) => {
                let mut mean = vec![0.0f64; n];
                let mut count = 0usize;
                for k in 0..result.tiles.len() {
                    if (0..n).all(|c| result.score(k, c).is_some()) {
                        for (c, m) in mean.iter_mut().enumerate() {
                            *m += f64::from(result.scores[k * n + c]);
                        }
                        count += 1;
                    }
                }
                let mean: Vec<f32> = mean
                    .iter()
                    .map(|m| (m / count.max(1) as f64) as f32)
                    .collect();
                Prediction::Class(post.multiclass(&mean))
            }
        }
    }

    /// Writes the heatmap (the focus class's), or one per class for a multiclass model without a
    /// focus class (`map.png` -> `map.<label>.png`); the record's heatmap and each class's.
    fn heatmaps(&self, result: &SlideResult, provenance: &Provenance) -> Result<Heatmaps, String> {
        let Some((path, options)) = self.heatmap else {
            return Ok((None, Vec::new()));
        };
        let write = |class: usize, path: &Path| -> Result<f64, String> {
            if heatmap::is_tiff(path) {
                let label = &result.labels[class];
                heatmap_tiff::write(result, &result.cells[class], provenance, label, path)?;
                return Ok(1.0);
            }
            let (png, downsample) = heatmap::png(result, options, provenance, class);
            crate::output_file::write_file(path, &png).map_err(|e| {
                format!(
                    "cannot write the heatmap {}: {}",
                    path.display(),
                    crate::inputs::io_message(&e)
                )
            })?;
            Ok(downsample)
        };
        match result.focus {
            Some(f) => {
                let downsample = write(f, path)?;
                Ok((Some((path.display().to_string(), downsample)), Vec::new()))
            }
            None => {
                let mut each = Vec::new();
                for (c, label) in result.labels.iter().enumerate() {
                    let named = heatmap::class_path(path, label);
                    write(c, &named)?;
                    each.push(Some(named.display().to_string()));
                }
                Ok((None, each))
            }
        }
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

/// Checks a slide run's settings against the model before any slide is read: these are usage
/// errors, not one slide's. The stride, and the focus class (binary: the positive class;
/// multiclass: `--class`).
pub(crate) fn check(
    engine_config: &crate::engine::handler_config::HandlerConfig,
    stride: Option<usize>,
    class: Option<&str>,
) -> Result<(usize, Option<usize>), String> {
    let kind = engine_config.output.kind;
    if kind == OutputKind::Raw {
        return Err(
            "slides need a model with classes (kind = \"binary\", \"multiclass\" or \"segmentation\"); a raw model's output has nothing to map".into(),
        );
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
    let labels = engine_config.output.labels.clone().unwrap_or_default();
    let focus = match (kind, class) {
        (OutputKind::Multiclass, Some(name)) => Some(
            labels
                .iter()
                .position(|l| l == name)
                .or_else(|| {
                    // A class index, where the configuration names no classes.
                    name.parse::<usize>()
                        .ok()
                        .filter(|&i| labels.is_empty() || i < labels.len())
                })
                .ok_or_else(|| {
                    format!(
                        "--class {name:?} is not one of the model's classes ({})",
                        labels.join(", ")
                    )
                })?,
        ),
        (OutputKind::Multiclass | OutputKind::Segmentation, None) => None,
        (_, Some(_)) => {
            return Err(format!(
                "--class picks one class of a multiclass model; this model's kind is \"{kind}\""
            ))
        }
        _ => Some(1),
    };
    Ok((stride, focus))
}

/// Usage errors of the outputs asked for, before any slide is read.
pub(crate) fn check_outputs(
    kind: OutputKind,
    focus: Option<usize>,
    heatmap: bool,
    lesions: bool,
) -> Result<(), String> {
    if kind == OutputKind::Segmentation && heatmap {
        return Err("a segmentation model's slides get a class mask (written to --mask-dir), not a probability heatmap: leave out --heatmap".into());
    }
    if lesions && focus.is_none() {
        return Err(
            "--lesions lists the regions of one class: name it with --class (a multiclass model), or use a binary model".into(),
        );
    }
    Ok(())
}
