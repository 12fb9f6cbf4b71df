//! What a slide's windows say, by model kind: regions of the positive class (binary) or of each
//! class (multiclass: the windows a class wins, after smoothing each class's map over tissue when
//! asked), per-class summaries, and for segmentation models the windows' masks stitched into one
//! class mask of the slide with each class's share of the analysed tissue.

use super::error::WriteError;
use super::provenance::Provenance;
use super::pyramid_tiff::{self, Layout, Pixels, Raster};
use super::regions::{self, Grid, Region};
use super::types::{region_summary, SlideResult, Tile};
use crate::records::summary::ClassSummary;
use crate::records::OutputKind;
use std::path::Path;

/// The value of mask pixels no window analysed (glass, or beyond the slide).
pub(crate) const NOT_ANALYSED: u8 = 255;

/// A scanned slide's windows, as regions are found on them.
pub(crate) struct Windows<'a> {
    pub(crate) kind: OutputKind,
    pub(crate) grid: Grid<'a>,
    pub(crate) tiles: &'a [Tile],
    /// Per window and class, the model's probability (NaN: not run).
    pub(crate) scores: &'a [f32],
    pub(crate) classes: usize,
    pub(crate) threshold: f32,
    pub(crate) focus: Option<usize>,
}

/// What is found on a slide's windows (`SlideResult`'s fields of the same names); all empty for
/// segmentation.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) cells: Vec<Vec<f32>>,
    pub(crate) regions: Vec<Region>,
    pub(crate) class_regions: Vec<Vec<Region>>,
}

/// Each class's map (its probability per window, NaN where not tissue), smoothed over tissue with
/// `smooth` (analysed pixels), for the classes that get one: binary's positive class, every class
/// of a multiclass model (`--class` only that one for the regions); none for segmentation.
pub(crate) fn find_regions(result: &Windows, smooth: f32) -> Found {
    let (nx, ny) = (result.grid.across, result.grid.down);
    let classes = result.classes;
    if result.kind == OutputKind::Segmentation || result.scores.is_empty() {
        return Found::default();
    }
    let mapped: Vec<usize> = match result.kind {
        OutputKind::Binary => vec![1],
        _ => (0..classes).collect(),
    };
    let mut cells = vec![Vec::new(); classes];
    for &c in &mapped {
        let mut map: Vec<f32> = result
            .tiles
            .iter()
            .enumerate()
            .map(|(k, t)| {
                if t.tissue {
                    result.scores[k * classes + c]
                } else {
                    f32::NAN
                }
            })
            .collect();
        let stride = result.grid.stride as f32;
        super::heatmap::smooth_tissue(&mut map, nx, ny, smooth / stride);
        cells[c] = map;
    }
    let raw = |c: usize| -> Vec<Option<f32>> {
        result
            .tiles
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let p = result.scores[k * classes + c];
                (t.tissue && !p.is_nan()).then_some(p)
            })
            .collect()
    };
    let grid = &result.grid;
    let mut class_regions = vec![Vec::new(); classes];
    match result.kind {
        OutputKind::Binary => {
            let positive: Vec<bool> = cells[1].iter().map(|&p| p > result.threshold).collect();
            class_regions[1] = regions::regions(grid, &positive, &raw(1));
        }
        _ => {
            // A window is its class's when that class's (smoothed) probability is the highest.
            let winner: Vec<Option<usize>> = (0..result.tiles.len())
                .map(|k| {
                    (0..classes).filter(|&c| !cells[c][k].is_nan()).fold(
                        None,
                        |best: Option<usize>, c| match best {
                            Some(b) if cells[b][k] >= cells[c][k] => best,
                            _ => Some(c),
                        },
                    )
                })
                .collect();
            for (c, found) in class_regions.iter_mut().enumerate() {
                if result.focus.is_some_and(|f| f != c) {
                    continue;
                }
                let positive: Vec<bool> = winner.iter().map(|w| *w == Some(c)).collect();
                *found = regions::regions(grid, &positive, &raw(c));
            }
        }
    }
    Found {
        regions: result
            .focus
            .map_or_else(Vec::new, |f| class_regions[f].clone()),
        class_regions,
        cells,
    }
}

/// How many regions each class summary lists.
const CLASS_TOP_REGIONS: usize = 3;

/// Per-class summaries: multiclass (windows won, probabilities, regions) and segmentation (each
/// class's share and area of the analysed tissue pixels); none for binary, whose record is its
/// positive class's.
pub(crate) fn summaries(
    result: &SlideResult,
    mpp: Option<f64>,
    heatmaps: &[Option<String>],
) -> Vec<ClassSummary> {
    let classes = result.labels.len();
    match result.kind {
        OutputKind::Multiclass => (0..classes)
            .map(|c| {
                let tissue: Vec<(usize, f32)> = result
                    .tiles
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.tissue)
                    .filter_map(|(k, _)| {
                        let p = result.scores[k * classes + c];
                        (!p.is_nan()).then_some((k, p))
                    })
                    .collect();
                let won = tissue
                    .iter()
                    .filter(|(k, _)| result.tiles[*k].class == Some(c))
                    .count();
                let found = &result.class_regions[c];
                let region_area = |r: &Region| r.area_mm2(mpp);
                ClassSummary {
                    label: result.labels[c].clone(),
                    windows: Some(won),
                    fraction: (!tissue.is_empty()).then(|| won as f32 / tissue.len() as f32),
                    mean_probability: (!tissue.is_empty()).then(|| {
                        (tissue.iter().map(|(_, p)| f64::from(*p)).sum::<f64>()
                            / tissue.len() as f64) as f32
                    }),
                    max_probability: tissue.iter().map(|(_, p)| *p).reduce(f32::max),
                    regions: (result.focus.is_none() || result.focus == Some(c))
                        .then_some(found.len()),
                    area_mm2: mpp.map(|_| found.iter().filter_map(region_area).sum()),
                    top_regions: found
                        .iter()
                        .take(CLASS_TOP_REGIONS)
                        .map(|r| region_summary(r, mpp))
                        .collect(),
                    heatmap: heatmaps.get(c).cloned().flatten(),
                }
            })
            .collect(),
        OutputKind::Segmentation => {
            let (counts, analysed) = mask_counts(result);
            let pixel_mm2 = mpp.map(|m| {
                let side = m * result.plan.downsample();
                side * side / 1e6
            });
            (0..classes)
                .map(|c| ClassSummary {
                    label: result.labels[c].clone(),
                    windows: None,
                    fraction: (analysed > 0).then(|| (counts[c] as f64 / analysed as f64) as f32),
                    mean_probability: None,
                    max_probability: None,
                    regions: None,
                    area_mm2: pixel_mm2.map(|a| counts[c] as f64 * a),
                    top_regions: Vec::new(),
                    heatmap: None,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The stitched mask's pixels of each class, and the analysed pixels in all (inside the slide).
fn mask_counts(result: &SlideResult) -> (Vec<u64>, u64) {
    let mut counts = vec![0u64; result.labels.len()];
    let mut analysed = 0u64;
    let mask = Stitched::new(result);
    for y in 0..result.height {
        mask.row(y, |class| {
            if class != NOT_ANALYSED {
                counts[class as usize] += 1;
                analysed += 1;
            }
        });
    }
    (counts, analysed)
}

/// The windows' masks as one mask of the analysed slide: each pixel from the window whose cell it
/// is in (as the heatmap fills windows: where they overlap, the later one), scaled from the model's
/// output size to the window's; `NOT_ANALYSED` where no window ran.
pub(crate) struct Stitched<'a> {
    result: &'a SlideResult,
}

impl<'a> Stitched<'a> {
    pub(crate) fn new(result: &'a SlideResult) -> Stitched<'a> {
        Stitched { result }
    }

    /// The class at analysed pixel (x, y).
    pub(crate) fn at(&self, x: usize, y: usize) -> u8 {
        let r = self.result;
        let (nx, ny) = r.grid;
        let (i, j) = ((x / r.stride).min(nx - 1), (y / r.stride).min(ny - 1));
        let k = j * nx + i;
        let Some(mask) = r.masks[k].as_deref() else {
            return NOT_ANALYSED;
        };
        let (ow, oh) = r.mask_size;
        let (ww, wh) = r.window;
        let (dx, dy) = (x - i * r.stride, y - j * r.stride);
        mask[(dy * oh / wh).min(oh - 1) * ow + (dx * ow / ww).min(ow - 1)]
    }

    /// Calls `each` with the class of every pixel of analysed row `y`, left to right.
    fn row(&self, y: usize, mut each: impl FnMut(u8)) {
        for x in 0..self.result.width {
            each(self.at(x, y));
        }
    }
}

/// The stitched mask in level-0 pixels, for the pyramid writer: nearest analysed pixel.
struct MaskRaster<'a> {
    mask: Stitched<'a>,
    size: (u64, u64),
    scale: (f64, f64),
    analysed: (usize, usize),
}

impl MaskRaster<'_> {
    fn analysed_y(&self, y: u64) -> usize {
        ((y as f64 / self.scale.1) as usize).min(self.analysed.1 - 1)
    }
}

impl Raster for MaskRaster<'_> {
    fn size(&self) -> (u64, u64) {
        self.size
    }

    fn band(&self, y: u64) -> u64 {
        self.analysed_y(y) as u64
    }

    fn row(&self, y: u64, x0: u64, step: u64, out: &mut [u8]) {
        let ay = self.analysed_y(y);
        for (k, pixel) in out.iter_mut().enumerate() {
            let x = (x0 + k as u64 * step).min(self.size.0 - 1);
            let ax = ((x as f64 / self.scale.0) as usize).min(self.analysed.0 - 1);
            *pixel = self.mask.at(ax, ay);
        }
    }
}

/// Writes a segmentation slide's stitched class mask as a pyramidal TIFF at the slide's level-0
/// size: one byte a pixel, the class index (`NOT_ANALYSED`, 255, where no window ran).
pub(crate) fn write_mask(
    result: &SlideResult,
    provenance: &Provenance,
    path: &Path,
) -> Result<(), WriteError> {
    let plan = &result.plan;
    let raster = MaskRaster {
        mask: Stitched::new(result),
        size: (plan.level0.0 as u64, plan.level0.1 as u64),
        scale: plan.scale,
        analysed: (result.width, result.height),
    };
    let classes: Vec<String> = result
        .labels
        .iter()
        .enumerate()
        .map(|(c, l)| format!("{c}={l}"))
        .collect();
    let layout = Layout {
        pixels: Pixels::Gray,
        tile: 256,
        mpp: plan.mpp.map(|(m, _)| m),
        description: format!(
            "scancer class mask: one byte a pixel, the class index ({}; {NOT_ANALYSED}=not analysed), level-0 pixels; {}",
            classes.join(", "),
            provenance.one_line()
        ),
    };
    pyramid_tiff::write_file(path, &raster, &layout, "mask")
}
