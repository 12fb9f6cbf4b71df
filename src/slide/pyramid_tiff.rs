//! Pyramidal tiled BigTIFF, as OpenSlide, QuPath (Bio-Formats) and tifffile read whole-slide images:
//! level 0 at the slide's level-0 size, each further level half the last (NewSubfileType 1) until
//! one tile holds it, Deflate-compressed tiles, the resolution in pixels per centimetre, and a
//! description. The `tiff` crate writes strips only, and OpenSlide opens tiled pyramids only, so
//! this writer is scancer's own; it is checked against OpenSlide and tifffile.
//!
//! What is drawn comes from a `Raster` (a heatmap, a class mask) that is constant over bands of
//! rows and runs of columns, so tiles are filled a row at a time, rows repeated where a band
//! continues, and identical tiles (glass, the inside of a window) are compressed and stored once:
//! their entries point at the same bytes, which TIFF allows.

use super::error::WriteError;
use flate2::write::ZlibEncoder;
use std::collections::HashMap;
use std::io::{self, Seek, SeekFrom, Write};

/// What a pyramid shows, in level-0 pixels.
pub(crate) trait Raster {
    /// Level-0 width and height.
    fn size(&self) -> (u64, u64);
    /// Which band of rows level-0 row `y` is in: rows of one band are identical.
    fn band(&self, y: u64) -> u64;
    /// Fills `out` with the pixels at level-0 (x0 + k * step, y), k = 0.. (`out.len() / samples`);
    /// pixels beyond the right edge repeat the last column.
    fn row(&self, y: u64, x0: u64, step: u64, out: &mut [u8]);
}

/// How the pixels are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pixels {
    /// Plasma colours with transparency: RGB and unassociated alpha.
    Rgba,
    /// Class indices, one byte a pixel.
    Gray,
}

impl Pixels {
    fn samples(self) -> usize {
        match self {
            Pixels::Rgba => 4,
            Pixels::Gray => 1,
        }
    }
}

/// A pyramid's settings.
pub(crate) struct Layout {
    pub(crate) pixels: Pixels,
    /// Tile side (a multiple of 16).
    pub(crate) tile: u32,
    /// Microns per level-0 pixel, if known.
    pub(crate) mpp: Option<f64>,
    pub(crate) description: String,
}

/// TIFF field types.
const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;
const LONG8: u16 = 16;

struct Level {
    width: u64,
    height: u64,
    step: u64,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

/// The tile side for cells of `cell` level-0 pixels: the cell itself when TIFF allows it (a
/// multiple of 16, at most 1024), so that every level-0 tile is one colour, else 256.
pub(crate) fn tile_for(cell: f64) -> u32 {
    let c = cell.round();
    if (cell - c).abs() < 1e-9 && (16.0..=1024.0).contains(&c) && (c as u32).is_multiple_of(16) {
        c as u32
    } else {
        256
    }
}

/// Writes the pyramid to `path` (through its `.partial`); `what` names it in the error.
pub(crate) fn write_file(
    path: &std::path::Path,
    raster: &dyn Raster,
    layout: &Layout,
    what: &'static str,
) -> Result<(), WriteError> {
    crate::output_file::write_file_with(path, |out| write(out, raster, layout)).map_err(|error| {
        WriteError {
            what,
            path: path.to_path_buf(),
            error,
        }
    })
}

/// Writes the pyramid.
pub(crate) fn write<W: Write + Seek>(
    out: &mut W,
    raster: &dyn Raster,
    layout: &Layout,
) -> io::Result<()> {
    let (width, height) = raster.size();
    // The header, its first IFD's offset filled in at the end.
    out.write_all(b"II\x2b\x00\x08\x00\x00\x00")?;
    out.write_all(&0u64.to_le_bytes())?;
    let mut levels = levels(width, height, u64::from(layout.tile));
    let position = write_tiles(out, raster, layout, &mut levels, 16)?;
    let first_ifd = write_ifds(out, layout, &levels, position)?;
    out.seek(SeekFrom::Start(8))?;
    out.write_all(&first_ifd.to_le_bytes())?;
    out.seek(SeekFrom::End(0))?;
    Ok(())
}

/// Level 0 at full size, each further level half the last, until one tile holds it.
fn levels(width: u64, height: u64, tile: u64) -> Vec<Level> {
    let mut levels = Vec::new();
    let mut step = 1u64;
    loop {
        let (w, h) = (width.div_ceil(step), height.div_ceil(step));
        levels.push(Level {
            width: w,
            height: h,
            step,
            offsets: Vec::new(),
            counts: Vec::new(),
        });
        if w <= tile && h <= tile {
            return levels;
        }
        step *= 2;
    }
}

/// Writes every level's tiles from `position` on, each uniform tile stored once, filling in the
/// levels' offsets and byte counts; where the tiles end.
fn write_tiles<W: Write>(
    out: &mut W,
    raster: &dyn Raster,
    layout: &Layout,
    levels: &mut [Level],
    mut position: u64,
) -> io::Result<u64> {
    let tile = u64::from(layout.tile);
    let samples = layout.pixels.samples();
    let tile_bytes = (tile * tile) as usize * samples;
    let mut pixels = vec![0u8; tile_bytes];
    let mut stored: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
    let mut compressed = Vec::new();
    for level in levels {
        let (across, down) = (level.width.div_ceil(tile), level.height.div_ceil(tile));
        for ty in 0..down {
            for tx in 0..across {
                fill(
                    raster,
                    level.step,
                    tx * tile,
                    ty * tile,
                    tile,
                    samples,
                    &mut pixels,
                );
                let uniform = pixels
                    .chunks_exact(samples)
                    .all(|p| p == &pixels[..samples]);
                let key = if uniform {
                    Some(pixels[..samples].to_vec())
                } else {
                    None
                };
                if let Some(&(offset, count)) = key.as_ref().and_then(|k| stored.get(k)) {
                    level.offsets.push(offset);
                    level.counts.push(count);
                    continue;
                }
                compressed.clear();
                let mut z = ZlibEncoder::new(&mut compressed, flate2::Compression::fast());
                z.write_all(&pixels)?;
                z.finish()?;
                out.write_all(&compressed)?;
                let entry = (position, compressed.len() as u64);
                position += compressed.len() as u64;
                if let Some(k) = key {
                    stored.insert(k, entry);
                }
                level.offsets.push(entry.0);
                level.counts.push(entry.1);
            }
        }
    }
    Ok(position)
}

/// An IFD entry: tag, field type, count, and the value (or its offset) in 8 bytes.
type Entry = (u16, u16, u64, [u8; 8]);

/// Writes each level's IFD from `position` on, after the values that do not fit in an entry,
/// each linked from the one before; the first IFD's offset.
fn write_ifds<W: Write + Seek>(
    out: &mut W,
    layout: &Layout,
    levels: &[Level],
    mut position: u64,
) -> io::Result<u64> {
    let software = format!("scancer {}\0", env!("CARGO_PKG_VERSION"));
    let description = format!("{}\0", layout.description.replace('\0', " "));
    let mut first_ifd = 0u64;
    let mut previous_next: Option<u64> = None;
    for (n, level) in levels.iter().enumerate() {
        let (blob, entries) = ifd(layout, level, n, position, &software, &description);
        out.write_all(&blob)?;
        position += blob.len() as u64;
        let ifd = position;
        if let Some(link) = previous_next {
            // Patch the previous IFD's "next" pointer.
            let here = out.stream_position()?;
            out.seek(SeekFrom::Start(link))?;
            out.write_all(&ifd.to_le_bytes())?;
            out.seek(SeekFrom::Start(here))?;
        } else {
            first_ifd = ifd;
        }
        out.write_all(&(entries.len() as u64).to_le_bytes())?;
        for (tag, kind, count, value) in &entries {
            out.write_all(&tag.to_le_bytes())?;
            out.write_all(&kind.to_le_bytes())?;
            out.write_all(&count.to_le_bytes())?;
            out.write_all(value)?;
        }
        let next_at = ifd + 8 + 20 * entries.len() as u64;
        out.write_all(&0u64.to_le_bytes())?;
        previous_next = Some(next_at);
        position = next_at + 8;
    }
    Ok(first_ifd)
}

/// Level `n`'s IFD entries, and the bytes of the values that do not fit in an entry, which go at
/// `position`, before the IFD.
fn ifd(
    layout: &Layout,
    level: &Level,
    n: usize,
    position: u64,
    software: &str,
    description: &str,
) -> (Vec<u8>, Vec<Entry>) {
    let samples = layout.pixels.samples();
    let mut blob = Vec::new();
    let at = |bytes: &[u8], blob: &mut Vec<u8>| -> u64 {
        let offset = position + blob.len() as u64;
        blob.extend_from_slice(bytes);
        if blob.len() % 2 == 1 {
            blob.push(0);
        }
        offset
    };
    let le = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let offsets_at = at(&le(&level.offsets), &mut blob);
    let counts_at = at(&le(&level.counts), &mut blob);
    let software_at = at(software.as_bytes(), &mut blob);
    let description_at = (n == 0).then(|| at(description.as_bytes(), &mut blob));
    let per_cm = layout.mpp.map(|m| 10_000.0 / (m * level.step as f64));
    let rational = |v: f64| -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&((v * 1000.0).round() as u32).to_le_bytes());
        b[4..].copy_from_slice(&1000u32.to_le_bytes());
        b
    };
    let mut entries: Vec<Entry> = Vec::new();
    let inline = |values: &[u8]| -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..values.len()].copy_from_slice(values);
        b
    };
    let short = |v: u16| inline(&v.to_le_bytes());
    let long = |v: u32| inline(&v.to_le_bytes());
    let offset = |v: u64| v.to_le_bytes();
    entries.push((254, LONG, 1, long(u32::from(n > 0))));
    entries.push((256, LONG, 1, long(level.width as u32)));
    entries.push((257, LONG, 1, long(level.height as u32)));
    let bits: Vec<u8> = std::iter::repeat_n(8u16.to_le_bytes(), samples)
        .flatten()
        .collect();
    entries.push((258, SHORT, samples as u64, inline(&bits)));
    entries.push((259, SHORT, 1, short(8)));
    let photometric = match layout.pixels {
        Pixels::Rgba => 2,
        Pixels::Gray => 1,
    };
    entries.push((262, SHORT, 1, short(photometric)));
    if let Some(d) = description_at {
        entries.push((270, ASCII, description.len() as u64, offset(d)));
    }
    entries.push((277, SHORT, 1, short(samples as u16)));
    if let Some(per_cm) = per_cm {
        entries.push((282, RATIONAL, 1, rational(per_cm)));
        entries.push((283, RATIONAL, 1, rational(per_cm)));
    }
    entries.push((284, SHORT, 1, short(1)));
    if per_cm.is_some() {
        entries.push((296, SHORT, 1, short(3)));
    }
    entries.push((305, ASCII, software.len() as u64, offset(software_at)));
    entries.push((322, LONG, 1, long(layout.tile)));
    entries.push((323, LONG, 1, long(layout.tile)));
    let tiles = level.offsets.len() as u64;
    let array = |at: u64, values: &[u64]| {
        if values.len() == 1 {
            offset(values[0])
        } else {
            offset(at)
        }
    };
    entries.push((324, LONG8, tiles, array(offsets_at, &level.offsets)));
    entries.push((325, LONG8, tiles, array(counts_at, &level.counts)));
    if layout.pixels == Pixels::Rgba {
        entries.push((338, SHORT, 1, short(2)));
    }
    (blob, entries)
}

/// One tile of a level, rows filled from the raster and repeated within a band; rows below the
/// image repeat the last one.
fn fill(raster: &dyn Raster, step: u64, x: u64, y: u64, tile: u64, samples: usize, out: &mut [u8]) {
    let (_, height) = raster.size();
    let stride = tile as usize * samples;
    let mut last_band = None;
    for r in 0..tile as usize {
        let y0 = ((y + r as u64) * step).min(height - 1);
        let band = raster.band(y0);
        if r > 0 && last_band == Some(band) {
            let (done, rest) = out.split_at_mut(r * stride);
            rest[..stride].copy_from_slice(&done[(r - 1) * stride..]);
            continue;
        }
        raster.row(y0, x * step, step, &mut out[r * stride..(r + 1) * stride]);
        last_band = Some(band);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_follow_the_cells_when_tiff_allows() {
        assert_eq!(tile_for(96.0), 96);
        assert_eq!(tile_for(192.0), 192);
        assert_eq!(tile_for(100.0), 256);
        assert_eq!(tile_for(96.0 * 4.000926), 256);
        assert_eq!(tile_for(8.0), 256);
    }
}
