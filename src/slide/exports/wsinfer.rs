//! WSInfer's results (`--wsinfer-out DIR`), so that QuPath scripts and analyses built on WSInfer's
//! outputs read scancer's: `model-outputs-csv/<slide>.csv` (`minx,miny,width,height,prob_<class>...`,
//! one row per tissue window) and `model-outputs-geojson/<slide>.geojson` (one locked `tile` per
//! tissue window, its class probabilities as measurements), in level-0 pixels, as WSInfer 0.6 writes
//! them. A binary model's one column is its positive class's (WSInfer's one-logit models); a
//! multiclass model has one a class.

use super::export::Export;
use crate::records::OutputKind;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::io::{self, Write};

/// The folders of WSInfer's results, by export.
pub(crate) const CSV_FOLDER: &str = "model-outputs-csv";
pub(crate) const GEOJSON_FOLDER: &str = "model-outputs-geojson";
pub(crate) const PATCHES_FOLDER: &str = "patches";
pub(crate) const MASKS_FOLDER: &str = "masks";
/// The largest side of `masks/<slide>.jpg`, as WSInfer's.
pub(crate) const MASK_SIDE: usize = 1024;
/// The tissue outline's colour in the mask picture.
const OUTLINE: image::Rgb<u8> = image::Rgb([0, 200, 0]);

/// The classes WSInfer's results have columns for: (class index, column name).
fn columns(export: &Export) -> Vec<(usize, String)> {
    let labels = &export.result.labels;
    match export.result.kind {
        OutputKind::Binary if labels.len() == 2 => vec![(1, format!("prob_{}", labels[1]))],
        _ => labels
            .iter()
            .enumerate()
            .map(|(c, label)| (c, format!("prob_{label}")))
            .collect(),
    }
}

/// Every tissue window that went through the model: its bounds and its columns' probabilities.
fn windows<'a>(
    export: &'a Export,
    columns: &'a [(usize, String)],
) -> impl Iterator<Item = ([u64; 4], Vec<f32>)> + 'a {
    let result = export.result;
    let grid = export.grid();
    let classes = result.labels.len();
    result
        .tiles
        .iter()
        .enumerate()
        .filter_map(move |(k, tile)| {
            if !(tile.tissue && tile.runs) {
                return None;
            }
            let probabilities: Option<Vec<f32>> = columns
                .iter()
                .map(|(c, _)| {
                    result
                        .scores
                        .get(k * classes + c)
                        .copied()
                        .filter(|p| p.is_finite())
                })
                .collect();
            Some((grid.window_bounds(k), probabilities?))
        })
}

pub(crate) fn write_csv(export: &Export, out: &mut dyn Write) -> io::Result<()> {
    let columns = columns(export);
    let names: Vec<String> = columns.iter().map(|(_, n)| csv_field(n)).collect();
    writeln!(out, "minx,miny,width,height,{}", names.join(","))?;
    for ([x, y, w, h], probabilities) in windows(export, &columns) {
        write!(out, "{x},{y},{w},{h}")?;
        for p in probabilities {
            write!(out, ",{p}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A column name as a CSV field, quoted where a label holds a comma, a quote or a line break.
fn csv_field(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_owned()
    }
}

pub(crate) fn write_geojson(export: &Export, out: &mut dyn Write) -> io::Result<()> {
    let columns = columns(export);
    out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
    let mut first = true;
    for ([x, y, w, h], probabilities) in windows(export, &columns) {
        let (x1, y1) = (x + w, y + h);
        let measurements: Map<String, Value> = columns
            .iter()
            .zip(&probabilities)
            .map(|((_, name), p)| (name.clone(), crate::records::number(*p)))
            .collect();
        let feature = json!({
            "type": "Feature",
            "id": tile_id(export.slide, x, y),
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x1, y], [x1, y1], [x, y1], [x, y], [x1, y]]],
            },
            "properties": {
                "isLocked": true,
                "measurements": measurements,
                "objectType": "tile",
            },
        });
        out.write_all(if first { b"\n" } else { b",\n" })?;
        first = false;
        serde_json::to_writer(&mut *out, &feature)?;
    }
    out.write_all(b"\n]}\n")
}

/// WSInfer's `patches/<slide>.h5`: dataset `/coords` (one `minx, miny` row per tissue window, as
/// the CSV's) with attributes `patch_size` (the window's side in level-0 pixels), `patch_level`
/// (0: coordinates are level-0 pixels) and `patch_spacing_um_px` (the analysed resolution, where
/// the slide has one).
pub(crate) fn write_patches(export: &Export, out: &mut dyn Write) -> io::Result<()> {
    let columns = columns(export);
    let coords: Vec<i64> = windows(export, &columns)
        .flat_map(|([x, y, ..], _)| [x as i64, y as i64])
        .collect();
    let provenance = export.provenance;
    let side = provenance.window.0.max(provenance.window.1) as f64 * provenance.downsample;
    let mut file = hdf5_pure::FileBuilder::new();
    let dataset = file
        .create_dataset("coords")
        .with_i64_data(&coords)
        .with_shape(&[coords.len() as u64 / 2, 2])
        .set_attr("patch_size", hdf5_pure::AttrValue::I64(side.round() as i64))
        .set_attr("patch_level", hdf5_pure::AttrValue::I64(0));
    if let Some(mpp) = provenance.analysed_mpp() {
        dataset.set_attr("patch_spacing_um_px", hdf5_pure::AttrValue::F64(mpp));
    }
    let bytes = file.finish().map_err(|e| io::Error::other(e.to_string()))?;
    out.write_all(&bytes)
}

/// WSInfer's `masks/<slide>.jpg`: the slide at most 1,024 pixels a side, the outline of its tissue
/// windows drawn over it in green (WSInfer draws its tissue mask's contours).
pub(crate) fn write_mask(export: &Export, out: &mut dyn Write) -> io::Result<()> {
    let Some((thumbnail, scale)) = &export.result.thumbnail else {
        return Err(io::Error::other("the slide's thumbnail was not kept"));
    };
    let (w, h) = thumbnail.dimensions();
    // Tissue cells, at the thumbnail's scale (level-0 pixels / downsample / scale).
    let per_pixel = export.provenance.downsample * *scale as f64;
    let mut tissue = vec![false; (w * h) as usize];
    let grid = export.grid();
    for (k, tile) in export.result.tiles.iter().enumerate() {
        if !tile.tissue {
            continue;
        }
        let cell = grid.cell_rect(k);
        let x0 = (cell.min().x / per_pixel).floor() as u32;
        let y0 = (cell.min().y / per_pixel).floor() as u32;
        let x1 = ((cell.max().x / per_pixel).ceil() as u32).min(w);
        let y1 = ((cell.max().y / per_pixel).ceil() as u32).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                tissue[(y * w + x) as usize] = true;
            }
        }
    }
    let inside = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < w as i64
            && y < h as i64
            && tissue[(y as u32 * w + x as u32) as usize]
    };
    let mut picture = thumbnail.clone();
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let edge = inside(x, y)
                && [(1, 0), (-1, 0), (0, 1), (0, -1)]
                    .iter()
                    .any(|(dx, dy)| !inside(x + dx, y + dy));
            if edge {
                picture.put_pixel(x as u32, y as u32, OUTLINE);
            }
        }
    }
    if w.max(h) as usize > MASK_SIDE {
        let shrink = MASK_SIDE as f64 / w.max(h) as f64;
        let (nw, nh) = (
            ((w as f64 * shrink).round() as u32).max(1),
            ((h as f64 * shrink).round() as u32).max(1),
        );
        picture = image::imageops::resize(&picture, nw, nh, image::imageops::FilterType::Triangle);
    }
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut *out, 90);
    encoder.encode_image(&picture).map_err(io::Error::other)
}

/// WSInfer's `run_metadata_<local time>.json` in `dir`: the model (its path and configuration),
/// the program and its arguments, and when the run ended. Returns its path.
pub(crate) fn write_run_metadata(
    dir: &std::path::Path,
    model: &std::path::Path,
    config: Value,
) -> io::Result<std::path::PathBuf> {
    let now = chrono::Local::now();
    let path = dir.join(format!("run_metadata_{}.json", now.format("%Y%m%dT%H%M%S")));
    let metadata = json!({
        "model": {
            "config": config,
            "huggingface_location": null,
            "path": model.to_string_lossy(),
        },
        "runtime": {
            "versions": {"scancer": env!("CARGO_PKG_VERSION")},
            "args": std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        },
        "timestamp": now.to_rfc3339(),
    });
    crate::output_file::write_file_with(&path, |out| {
        serde_json::to_writer_pretty(&mut *out, &metadata)?;
        out.write_all(b"\n")
    })?;
    Ok(path)
}

/// A tile's UUID: WSInfer draws a random one; this one is derived from the slide and the tile's
/// corner (a version-8 UUID of their SHA-256), so that a run repeated, resumed or sharded writes
/// the same file.
fn tile_id(slide: &str, x: u64, y: u64) -> String {
    let digest = Sha256::digest(format!("{slide}\0{x}\0{y}").as_bytes());
    crate::uuid::with_version(digest[..16].try_into().expect("16 of 32 bytes"), 8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tile_ids_are_uuids_that_differ_by_tile() {
        let a = super::tile_id("s.svs", 0, 96);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, super::tile_id("s.svs", 96, 0));
        assert_eq!(a, super::tile_id("s.svs", 0, 96));
    }
}
