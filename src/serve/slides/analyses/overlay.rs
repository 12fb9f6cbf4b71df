//! An analysis drawn over its slide: Deep Zoom tiles (PNG with transparency) laid out as the
//! slide's own, each window that ran painted in the heatmap's colours (matplotlib's plasma) at its
//! exact level-0 bounds, from the analysis' `tiles.csv`; glass, and windows under an optional
//! threshold, stay transparent. The viewer sets the opacity.

use super::super::cache::Weighed;
use super::super::deepzoom::{DeepZoom, NoSuchTile};
use crate::slide::resolution::Level;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Windows of the analyses drawn recently, by analysis id.
const CACHED_WINDOWS: usize = 64 << 20;

pub(crate) struct OverlayCache {
    windows: Mutex<Weighed<String, Arc<Windows>>>,
}

impl Default for OverlayCache {
    fn default() -> OverlayCache {
        OverlayCache {
            windows: Mutex::new(Weighed::new(CACHED_WINDOWS)),
        }
    }
}

/// One window that ran: level-0 bounds and the probability the map shows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    x: u64,
    y: u64,
    width: u64,
    height: u64,
    probability: f32,
}

pub(crate) struct Windows {
    windows: Vec<Window>,
    zoom: DeepZoom,
}

impl OverlayCache {
    /// The windows of an analysis of a `width` x `height` slide, read from its tiles.csv once.
    pub(crate) fn windows(
        &self,
        id: &str,
        tiles_csv: &Path,
        (width, height): (usize, usize),
    ) -> Result<Arc<Windows>, String> {
        let mut cache = self.windows.lock().expect("overlay cache lock");
        if let Some(windows) = cache.get(&id.to_string()) {
            return Ok(windows);
        }
        let windows = Arc::new(Windows {
            windows: read_windows(tiles_csv)?,
            zoom: DeepZoom::new(vec![Level {
                width,
                height,
                downsample: 1.0,
            }]),
        });
        let weight = windows.windows.len() * std::mem::size_of::<Window>();
        cache.put(id.to_string(), Arc::clone(&windows), weight);
        Ok(windows)
    }
}

/// The windows that ran, from `tiles.csv` (`x,y,width,height,...,probability,...`).
fn read_windows(path: &Path) -> Result<Vec<Window>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("tiles.csv: {e}"))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("tiles.csv: {e}"))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("tiles.csv has no {name} column"))
    };
    let (x, y, w, h, p) = (
        column("x")?,
        column("y")?,
        column("width")?,
        column("height")?,
        column("probability")?,
    );
    let mut windows = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| format!("tiles.csv: {e}"))?;
        let Ok(probability) = row[p].parse::<f32>() else {
            continue;
        };
        let number = |k: usize| row[k].parse::<u64>().map_err(|e| format!("tiles.csv: {e}"));
        windows.push(Window {
            x: number(x)?,
            y: number(y)?,
            width: number(w)?,
            height: number(h)?,
            probability,
        });
    }
    Ok(windows)
}

impl Windows {
    pub(crate) fn dzi(&self) -> String {
        self.zoom.dzi().replace("Format=\"jpeg\"", "Format=\"png\"")
    }

    /// Tile `col`, `row` of `level` as PNG: windows at or above `threshold` in plasma colours.
    pub(crate) fn tile(
        &self,
        level: usize,
        col: usize,
        row: usize,
        threshold: f32,
    ) -> Result<Vec<u8>, NoSuchTile> {
        let read = self.zoom.tile(level, col, row)?;
        let (tw, th) = read.tile;
        // Level-0 pixels per tile pixel, across and down.
        let sx = read.size.0 as f64 / tw as f64;
        let sy = read.size.1 as f64 / th as f64;
        let (x0, y0) = (read.level0.0 as f64, read.level0.1 as f64);
        let (x1, y1) = (x0 + read.size.0 as f64, y0 + read.size.1 as f64);
        let mut rgba = vec![0u8; tw * th * 4];
        // In file order, so that where windows overlap the later one is drawn, as in the heatmap.
        for w in &self.windows {
            let (wx0, wy0) = (w.x as f64, w.y as f64);
            let (wx1, wy1) = (wx0 + w.width as f64, wy0 + w.height as f64);
            if w.probability < threshold || wx1 <= x0 || wx0 >= x1 || wy1 <= y0 || wy0 >= y1 {
                continue;
            }
            // The tile pixels whose centres lie in the window.
            let first = |a: f64, origin: f64, scale: f64| {
                ((a - origin) / scale - 0.5).ceil().max(0.0) as usize
            };
            let (px0, px1) = (first(wx0, x0, sx), first(wx1, x0, sx).min(tw));
            let (py0, py1) = (first(wy0, y0, sy), first(wy1, y0, sy).min(th));
            let [r, g, b] = crate::slide::plasma::colour(w.probability);
            for py in py0..py1 {
                for px in px0..px1 {
                    let at = (py * tw + px) * 4;
                    rgba[at..at + 4].copy_from_slice(&[r, g, b, 255]);
                }
            }
        }
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, tw as u32, th as u32);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().expect("PNG into memory");
        writer.write_image_data(&rgba).expect("PNG into memory");
        writer.finish().expect("PNG into memory");
        Ok(png)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_painted_at_their_bounds_and_glass_is_clear() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("tiles.csv");
        std::fs::write(
            &csv,
            "path,x,y,width,height,tissue,saturation,probability,label\n\
             s,0,0,100,100,true,0.2,0.9,tumor\n\
             s,100,0,100,100,false,0.01,,\n\
             s,0,100,100,100,true,0.2,0.1,normal\n",
        )
        .unwrap();
        let cache = OverlayCache::default();
        let windows = cache.windows("a", &csv, (200, 200)).unwrap();
        assert_eq!(windows.windows.len(), 2);
        assert!(windows.dzi().contains("Format=\"png\""));
        // Level 8 is the full 200x200 slide, one tile.
        let png = windows.tile(8, 0, 0, 0.0).unwrap();
        let image = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(image.dimensions(), (200, 200));
        let [r, g, b] = crate::slide::plasma::colour(0.9);
        assert_eq!(image.get_pixel(50, 50).0, [r, g, b, 255]);
        assert_eq!(image.get_pixel(150, 50).0[3], 0);
        assert_eq!(image.get_pixel(50, 150).0[3], 255);
        // Under the threshold: clear.
        let png = windows.tile(8, 0, 0, 0.5).unwrap();
        let image = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(image.get_pixel(50, 150).0[3], 0);
        assert_eq!(image.get_pixel(99, 99).0[3], 255);
        assert_eq!(image.get_pixel(100, 99).0[3], 0);
    }
}
