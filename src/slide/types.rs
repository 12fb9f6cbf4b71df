//! The words a slide run is said in: its options, the window grid's tiles, everything predicted
//! for a slide (`SlideResult`, built once scanning and region finding are done) and the summary a
//! record carries. Every other part of `slide` reads these; none of them calls back up.

use super::provenance::{self, Provenance};
use super::regions::{self, Region};
use super::resolution::{LevelChoice, Plan};
use crate::engine::preprocess::Prepared;
use crate::records::summary::{ClassSummary, Hotspot, RegionSummary};
use crate::records::{OutputKind, Summary};
use image::RgbImage;

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
    pub(crate) hotspot_input: Option<Prepared>,
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
