//! Lesions: positive windows merged into connected regions, 8-neighbourhood on the window grid (after
//! the map's smoothing, when asked), each measured in level-0 pixels and, where the slide's resolution
//! is known, in millimetres: its outline (the union of the cells its windows paint on the heatmap),
//! area, largest diameter, and its peak window. These are measurements for a pathologist to check,
//! not a diagnosis.

use super::resolution::Plan;
use geo::{ConvexHull, MultiPolygon, Polygon, Rect};

/// One connected region of positive windows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Region {
    /// Indices of its windows in the slide's tiles (raster order).
    pub(crate) windows: Vec<usize>,
    /// The union of its windows' cells, in level-0 pixels.
    pub(crate) outline: MultiPolygon<f64>,
    /// Bounding box in level-0 pixels: x, y, width, height.
    pub(crate) bounds: [u64; 4],
    /// Area in level-0 pixels squared.
    pub(crate) area: f64,
    /// The largest distance between two points of the region, in level-0 pixels.
    pub(crate) diameter: f64,
    /// The highest probability of its windows (the model's, before smoothing), and that window.
    pub(crate) peak: f32,
    pub(crate) peak_window: usize,
    /// The peak window's centre in level-0 pixels.
    pub(crate) peak_at: (u64, u64),
}

impl Region {
    /// Area in mm^2 with `mpp` microns per level-0 pixel.
    pub(crate) fn area_mm2(&self, mpp: Option<f64>) -> Option<f64> {
        mpp.map(|m| self.area * m * m / 1e6)
    }

    /// Largest diameter in mm.
    pub(crate) fn diameter_mm(&self, mpp: Option<f64>) -> Option<f64> {
        mpp.map(|m| self.diameter * m / 1e3)
    }
}

/// The window grid a slide was analysed on, and where its cells lie at level 0.
pub(crate) struct Grid<'a> {
    pub(crate) across: usize,
    pub(crate) down: usize,
    pub(crate) stride: usize,
    /// The analysed image's size.
    pub(crate) size: (usize, usize),
    pub(crate) window: (usize, usize),
    pub(crate) plan: &'a Plan,
}

impl Grid<'_> {
    /// The cell window `k` of an axis paints (as the heatmap fills it: where windows overlap, the
    /// later one), from its origin to the next window's, the last one to the slide's edge; in
    /// level-0 pixels.
    fn cell(
        &self,
        k: usize,
        count: usize,
        length: usize,
        to0: impl Fn(usize) -> u64,
    ) -> (f64, f64) {
        let start = k * self.stride;
        let end = if k + 1 == count {
            length
        } else {
            (k + 1) * self.stride
        };
        (to0(start) as f64, to0(end) as f64)
    }

    /// Window `k`'s cell as a rectangle, in level-0 pixels.
    pub(crate) fn cell_rect(&self, k: usize) -> Rect<f64> {
        let (i, j) = (k % self.across, k / self.across);
        let (x0, x1) = self.cell(i, self.across, self.size.0, |x| self.plan.x0(x));
        let (y0, y1) = self.cell(j, self.down, self.size.1, |y| self.plan.y0(y));
        Rect::new((x0, y0), (x1, y1))
    }

    /// Window `k` itself (its full extent, padding beyond the slide's edge cut off), in level-0
    /// pixels: x, y, width, height.
    pub(crate) fn window_bounds(&self, k: usize) -> [u64; 4] {
        let (i, j) = (k % self.across, k / self.across);
        let (x, y) = (i * self.stride, j * self.stride);
        let (x1, y1) = (
            (x + self.window.0).min(self.size.0),
            (y + self.window.1).min(self.size.1),
        );
        let (a, b) = (self.plan.x0(x), self.plan.y0(y));
        [a, b, self.plan.x0(x1) - a, self.plan.y0(y1) - b]
    }

    /// Window `k`'s centre in level-0 pixels.
    pub(crate) fn centre(&self, k: usize) -> (u64, u64) {
        let [x, y, w, h] = self.window_bounds(k);
        (x + w / 2, y + h / 2)
    }
}

/// Connected components of `positive` cells, 8-neighbourhood, each in raster order, the components
/// in the order of their first cell.
pub(crate) fn components(across: usize, down: usize, positive: &[bool]) -> Vec<Vec<usize>> {
    let mut label = vec![usize::MAX; positive.len()];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..positive.len() {
        if !positive[start] || label[start] != usize::MAX {
            continue;
        }
        let id = found.len();
        let mut cells = Vec::new();
        label[start] = id;
        stack.push(start);
        while let Some(k) = stack.pop() {
            cells.push(k);
            let (i, j) = ((k % across) as isize, (k / across) as isize);
            for dj in -1..=1isize {
                for di in -1..=1isize {
                    let (ni, nj) = (i + di, j + dj);
                    if ni < 0 || nj < 0 || ni >= across as isize || nj >= down as isize {
                        continue;
                    }
                    let n = nj as usize * across + ni as usize;
                    if positive[n] && label[n] == usize::MAX {
                        label[n] = id;
                        stack.push(n);
                    }
                }
            }
        }
        cells.sort_unstable();
        found.push(cells);
    }
    found
}

/// The regions of a slide: `positive` and `probability` per window (raster order). Sorted by peak
/// probability, then area, most suspicious first.
pub(crate) fn regions(grid: &Grid, positive: &[bool], probability: &[Option<f32>]) -> Vec<Region> {
    let mut regions: Vec<Region> = components(grid.across, grid.down, positive)
        .into_iter()
        .map(|windows| measure(grid, windows, probability))
        .collect();
    regions.sort_by(|a, b| {
        b.peak
            .total_cmp(&a.peak)
            .then(b.area.total_cmp(&a.area))
            .then(a.windows[0].cmp(&b.windows[0]))
    });
    regions
}

fn measure(grid: &Grid, windows: Vec<usize>, probability: &[Option<f32>]) -> Region {
    // Runs of cells along each row of the grid, as rectangles, united.
    let mut rects: Vec<Polygon<f64>> = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    let flush = |run: Option<(usize, usize)>, rects: &mut Vec<Polygon<f64>>| {
        if let Some((first, last)) = run {
            let (a, b) = (grid.cell_rect(first), grid.cell_rect(last));
            rects.push(Rect::new(a.min(), b.max()).to_polygon());
        }
    };
    for &k in &windows {
        run = match run {
            Some((first, last)) if k == last + 1 && k % grid.across != 0 => Some((first, k)),
            other => {
                flush(other, &mut rects);
                Some((k, k))
            }
        };
    }
    flush(run, &mut rects);
    let outline = geo::unary_union(&rects);
    let area = geo::Area::unsigned_area(&outline);
    let hull = outline.convex_hull();
    let points: Vec<_> = hull.exterior().points().collect();
    let mut diameter = 0.0f64;
    for (n, a) in points.iter().enumerate() {
        for b in &points[n + 1..] {
            diameter = diameter.max((a.x() - b.x()).hypot(a.y() - b.y()));
        }
    }
    let bounds = geo::BoundingRect::bounding_rect(&outline).map_or([0; 4], |r| {
        let (min, max) = (r.min(), r.max());
        [
            min.x as u64,
            min.y as u64,
            (max.x - min.x) as u64,
            (max.y - min.y) as u64,
        ]
    });
    let (peak_window, peak) = windows
        .iter()
        .map(|&k| (k, probability[k].unwrap_or(f32::NAN)))
        .fold((windows[0], f32::NEG_INFINITY), |best, (k, p)| {
            if p > best.1 {
                (k, p)
            } else {
                best
            }
        });
    Region {
        peak_at: grid.centre(peak_window),
        windows,
        outline,
        bounds,
        area,
        diameter,
        peak,
        peak_window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slide::resolution::{plan, LevelChoice, Pyramid};

    #[test]
    fn diagonal_neighbours_join_and_gaps_split() {
        // 5 x 3:
        // x . . x x
        // . x . . .
        // . . . . x
        let p = [
            true, false, false, true, true, false, true, false, false, false, false, false, false,
            false, true,
        ];
        assert_eq!(components(5, 3, &p), [vec![0, 6], vec![3, 4], vec![14]]);
    }

    #[test]
    fn outlines_areas_and_diameters_in_level0_pixels() {
        // A 400 x 300 slide at stride 96: cells of 96, the last column 16 wide, the last row 12.
        let pyramid = Pyramid::flat(400, 300, Some((0.5, "test")));
        let plan = plan(&pyramid, &LevelChoice::default()).unwrap();
        let grid = Grid {
            across: 5,
            down: 4,
            stride: 96,
            size: (400, 300),
            window: (96, 96),
            plan: &plan,
        };
        // An L of three windows at (1,1), (2,1), (1,2), and the bottom-right corner window alone.
        let mut positive = vec![false; 20];
        let mut probability = vec![None; 20];
        for (k, p) in [(6, 0.7), (7, 0.9), (11, 0.6), (19, 0.95)] {
            positive[k] = true;
            probability[k] = Some(p);
        }
        let found = regions(&grid, &positive, &probability);
        assert_eq!(found.len(), 2);
        let corner = &found[0];
        assert_eq!(corner.windows, [19]);
        assert_eq!(corner.bounds, [384, 288, 16, 12]);
        assert_eq!(corner.area, 16.0 * 12.0);
        let l = &found[1];
        assert_eq!(l.windows, [6, 7, 11]);
        assert_eq!(l.area, 3.0 * 96.0 * 96.0);
        assert_eq!(l.bounds, [96, 96, 192, 192]);
        assert_eq!((l.peak, l.peak_window, l.peak_at), (0.9, 7, (240, 144)));
        // From (288, 96) to (96, 288).
        assert!((l.diameter - 192.0f64.hypot(192.0)).abs() < 1e-9);
        assert_eq!(l.area_mm2(Some(0.5)), Some(3.0 * 96.0 * 96.0 * 0.25 / 1e6));
        assert_eq!(l.outline.0.len(), 1);
        assert_eq!(l.outline.0[0].exterior().0.len(), 7, "an L has six corners");
    }
}
