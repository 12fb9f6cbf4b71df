//! `--heatmap FILE.tif`: the tumour map as a pyramidal tiled TIFF at the slide's level-0 size, so that
//! OpenSlide opens it with the slide's own geometry (its levels halving like a scanner's) and a
//! viewer (QuPath, ASAP) overlays it pixel for pixel. Each window's cell (as regions and the PNG
//! heatmap paint it) is its probability in matplotlib's `plasma`, opaque; glass and every window that
//! is not tissue is transparent. With `--smooth`, the probabilities are those regions are found on
//! (smoothed over tissue on the window grid). Resolution and provenance ride in the TIFF's tags.

use super::error::WriteError;
use super::plasma;
use super::provenance::Provenance;
use super::pyramid_tiff::{self, Layout, Pixels, Raster};
use super::types::SlideResult;
use std::path::Path;

/// A slide's cells, coloured, with their level-0 edges.
struct Cells {
    size: (u64, u64),
    /// Level-0 coordinates where each column and row of cells starts.
    x_edges: Vec<u64>,
    y_edges: Vec<u64>,
    across: usize,
    colours: Vec<[u8; 4]>,
}

/// The cell index along one axis holding level-0 coordinate `v`.
fn cell(edges: &[u64], v: u64) -> usize {
    edges.partition_point(|&e| e <= v).saturating_sub(1)
}

impl Raster for Cells {
    fn size(&self) -> (u64, u64) {
        self.size
    }

    fn band(&self, y: u64) -> u64 {
        cell(&self.y_edges, y) as u64
    }

    fn row(&self, y: u64, x0: u64, step: u64, out: &mut [u8]) {
        let j = cell(&self.y_edges, y);
        let last = self.size.0 - 1;
        let mut i = cell(&self.x_edges, x0.min(last));
        for (k, pixel) in out.chunks_exact_mut(4).enumerate() {
            let x = (x0 + k as u64 * step).min(last);
            while i + 1 < self.across && self.x_edges[i + 1] <= x {
                i += 1;
            }
            pixel.copy_from_slice(&self.colours[j * self.across + i]);
        }
    }
}

/// Writes the heatmap of `result` (its window probabilities, as smoothed for regions: `map`).
pub(crate) fn write(
    result: &SlideResult,
    map: &[f32],
    provenance: &Provenance,
    label: &str,
    path: &Path,
) -> Result<(), WriteError> {
    let (nx, ny) = result.grid;
    let plan = &result.plan;
    let (w0, h0) = plan.level0;
    let cells = Cells {
        size: (w0 as u64, h0 as u64),
        x_edges: (0..nx).map(|k| plan.x0(k * result.stride)).collect(),
        y_edges: (0..ny).map(|k| plan.y0(k * result.stride)).collect(),
        across: nx,
        colours: map
            .iter()
            .map(|&p| {
                if p.is_nan() {
                    [0, 0, 0, 0]
                } else {
                    let [r, g, b] = plasma::colour(p);
                    [r, g, b, 255]
                }
            })
            .collect(),
    };
    let layout = Layout {
        pixels: Pixels::Rgba,
        tile: pyramid_tiff::tile_for(result.stride as f64 * plan.scale.0),
        mpp: plan.mpp.map(|(m, _)| m),
        description: format!(
            "scancer heatmap: probability of {label} per tissue window (matplotlib plasma, 0 to 1; transparent: not tissue), level-0 pixels; {}",
            provenance.one_line()
        ),
    };
    pyramid_tiff::write_file(path, &cells, &layout, "heatmap")
}
