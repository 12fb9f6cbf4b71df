//! Deep Zoom's geometry, as openslide-python's `DeepZoomGenerator` lays it out (tile size 254,
//! overlap 1, no bounds limit): level 0 is 1x1 and the last is the slide, each side halved (rounded
//! up) between them; a tile overlaps its neighbours by one pixel on inner edges only; each level is
//! read from the slide level whose downsample is the largest not above the level's, so a tile never
//! reads more than about twice its pixels on a side.

use crate::slide::resolution::Level;

pub(crate) const TILE_SIZE: usize = 254;
pub(crate) const OVERLAP: usize = 1;

/// A slide's Deep Zoom pyramid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeepZoom {
    /// Each Deep Zoom level's size, 1x1 first.
    sizes: Vec<(usize, usize)>,
    /// The slide's levels (level 0 first).
    slide_levels: Vec<Level>,
}

/// What a tile reads and how large it is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TileRead {
    /// The slide level to read.
    pub(crate) slide_level: usize,
    /// The region's top-left corner in level-0 pixels.
    pub(crate) level0: (i64, i64),
    /// The region's size in pixels of the slide level.
    pub(crate) size: (usize, usize),
    /// The tile's size (the region is scaled to it).
    pub(crate) tile: (usize, usize),
}

/// A tile outside the pyramid.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("no tile {col}_{row} at level {level} (the pyramid has levels 0 to {last}{tiles})")]
pub(crate) struct NoSuchTile {
    pub(crate) level: usize,
    pub(crate) col: usize,
    pub(crate) row: usize,
    pub(crate) last: usize,
    /// ", and that level has NxM tiles" where the level exists.
    tiles: String,
}

impl DeepZoom {
    /// The pyramid of a slide with these levels (level 0, the full size, first).
    pub(crate) fn new(slide_levels: Vec<Level>) -> DeepZoom {
        let full = slide_levels
            .first()
            .map_or((1, 1), |l| (l.width.max(1), l.height.max(1)));
        let mut sizes = vec![full];
        let mut size = full;
        while size.0 > 1 || size.1 > 1 {
            size = (size.0.div_ceil(2).max(1), size.1.div_ceil(2).max(1));
            sizes.push(size);
        }
        sizes.reverse();
        DeepZoom {
            sizes,
            slide_levels,
        }
    }

    pub(crate) fn level_count(&self) -> usize {
        self.sizes.len()
    }

    /// The size of Deep Zoom level `level`.
    pub(crate) fn level_size(&self, level: usize) -> Option<(usize, usize)> {
        self.sizes.get(level).copied()
    }

    /// Columns and rows of tiles at `level`.
    pub(crate) fn level_tiles(&self, level: usize) -> Option<(usize, usize)> {
        self.level_size(level)
            .map(|(w, h)| (w.div_ceil(TILE_SIZE), h.div_ceil(TILE_SIZE)))
    }

    /// Level-0 pixels per pixel of Deep Zoom level `level`.
    fn downsample(&self, level: usize) -> f64 {
        2f64.powi((self.sizes.len() - level - 1) as i32)
    }

    /// OpenSlide's `get_best_level_for_downsample`: the last level whose downsample is not above
    /// `downsample`.
    pub(crate) fn best_level(&self, downsample: f64) -> usize {
        let levels = &self.slide_levels;
        if levels.is_empty() || downsample < levels[0].downsample {
            return 0;
        }
        (1..levels.len())
            .find(|&i| downsample < levels[i].downsample)
            .map_or(levels.len().saturating_sub(1), |i| i - 1)
    }

    /// What tile `col`, `row` of `level` reads.
    pub(crate) fn tile(
        &self,
        level: usize,
        col: usize,
        row: usize,
    ) -> Result<TileRead, NoSuchTile> {
        let missing = |tiles: Option<(usize, usize)>| NoSuchTile {
            level,
            col,
            row,
            last: self.sizes.len() - 1,
            tiles: tiles.map_or(String::new(), |(c, r)| {
                format!(", and level {level} has {c}x{r} tiles")
            }),
        };
        let (cols, rows) = self.level_tiles(level).ok_or_else(|| missing(None))?;
        if col >= cols || row >= rows {
            return Err(missing(Some((cols, rows))));
        }
        let slide_level = self.best_level(self.downsample(level));
        let l = &self.slide_levels[slide_level];
        // Deep Zoom pixels per pixel of the slide level read.
        let l_per_z = self.downsample(level) / l.downsample;
        let (zw, zh) = self.sizes[level];
        let axis = |t: usize, count: usize, z_lim: usize, l_lim: usize| {
            let tl = if t != 0 { OVERLAP } else { 0 };
            let br = if t + 1 != count { OVERLAP } else { 0 };
            let z_size = TILE_SIZE.min(z_lim - TILE_SIZE * t) + tl + br;
            let l_location = l_per_z * (TILE_SIZE * t - tl) as f64;
            let level0 = (l.downsample * l_location) as i64;
            let l_size = ((l_per_z * z_size as f64).ceil())
                .min(l_lim as f64 - l_location.ceil())
                .max(1.0) as usize;
            (level0, l_size, z_size)
        };
        let (x0, lw, tw) = axis(col, cols, zw, l.width);
        let (y0, lh, th) = axis(row, rows, zh, l.height);
        Ok(TileRead {
            slide_level,
            level0: (x0, y0),
            size: (lw, lh),
            tile: (tw, th),
        })
    }

    /// The `.dzi` document, as openslide-python's `get_dzi("jpeg")` writes it.
    pub(crate) fn dzi(&self) -> String {
        let (w, h) = *self.sizes.last().expect("at least one level");
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Image TileSize=\"{TILE_SIZE}\" Overlap=\"{OVERLAP}\" Format=\"jpeg\" xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"><Size Width=\"{w}\" Height=\"{h}\" /></Image>\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(width: usize, height: usize, downsample: f64) -> Level {
        Level {
            width,
            height,
            downsample,
        }
    }

    #[test]
    fn levels_halve_rounding_up_down_to_one_pixel() {
        let dz = DeepZoom::new(vec![level(1000, 300, 1.0)]);
        // ceil(log2(1000)) + 1
        assert_eq!(dz.level_count(), 11);
        assert_eq!(dz.level_size(0), Some((1, 1)));
        assert_eq!(dz.level_size(10), Some((1000, 300)));
        assert_eq!(dz.level_size(9), Some((500, 150)));
        assert_eq!(dz.level_size(2), Some((4, 2)));
        assert_eq!(dz.level_tiles(10), Some((4, 2)));
        assert_eq!(dz.level_tiles(11), None);
        let one = DeepZoom::new(vec![level(1, 1, 1.0)]);
        assert_eq!(one.level_count(), 1);
    }

    #[test]
    fn tiles_overlap_on_inner_edges_only() {
        // The reference's example: a 1000-pixel side gives tiles of 255, 256, 256 and 239.
        let dz = DeepZoom::new(vec![level(1000, 300, 1.0)]);
        let widths: Vec<usize> = (0..4).map(|c| dz.tile(10, c, 0).unwrap().tile.0).collect();
        assert_eq!(widths, [255, 256, 256, 239]);
        let starts: Vec<i64> = (0..4)
            .map(|c| dz.tile(10, c, 0).unwrap().level0.0)
            .collect();
        assert_eq!(starts, [0, 253, 507, 761]);
        assert_eq!(dz.tile(10, 3, 1).unwrap().tile, (239, 47));
        assert_eq!(
            dz.tile(10, 4, 0).unwrap_err().to_string(),
            "no tile 4_0 at level 10 (the pyramid has levels 0 to 10, and level 10 has 4x2 tiles)"
        );
        assert_eq!(
            dz.tile(11, 0, 0).unwrap_err().to_string(),
            "no tile 0_0 at level 11 (the pyramid has levels 0 to 10)"
        );
    }

    #[test]
    fn a_level_reads_the_best_slide_level() {
        let dz = DeepZoom::new(vec![
            level(40000, 30000, 1.0),
            level(10000, 7500, 4.0),
            level(2500, 1875, 16.0),
        ]);
        assert_eq!(dz.best_level(1.0), 0);
        assert_eq!(dz.best_level(3.9), 0);
        assert_eq!(dz.best_level(4.0), 1);
        assert_eq!(dz.best_level(1024.0), 2);
        // Deep Zoom level 14 is a downsample of 4 (17 levels): slide level 1, read 1:1.
        let read = dz.tile(14, 1, 1).unwrap();
        assert_eq!(read.slide_level, 1);
        assert_eq!(read.level0, (253 * 4, 253 * 4));
        assert_eq!(read.size, (256, 256));
        // A downsample of 8 reads twice the tile from slide level 1.
        let read = dz.tile(13, 0, 0).unwrap();
        assert_eq!(
            (read.slide_level, read.size, read.tile),
            (1, (510, 510), (255, 255))
        );
        // The last tile is clipped to the slide level.
        let (cols, rows) = dz.level_tiles(13).unwrap();
        let last = dz.tile(13, cols - 1, rows - 1).unwrap();
        assert!(last.size.0 <= 10000 && last.level0.0 / 4 + last.size.0 as i64 <= 10000);
    }

    #[test]
    fn the_dzi_names_size_tile_and_overlap() {
        let dz = DeepZoom::new(vec![level(2220, 2967, 1.0)]);
        assert!(dz.dzi().contains(
            "<Image TileSize=\"254\" Overlap=\"1\" Format=\"jpeg\" xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"><Size Width=\"2220\" Height=\"2967\" /></Image>"
        ));
    }
}
