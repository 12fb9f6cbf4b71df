//! `--tiles FILE`: one row per window of every slide, in level-0 pixels, as CSV or JSON Lines,
//! written through a `.partial` file like `--output`.

use super::types::SlideResult;
use crate::output_file::OutputFile;
use crate::records::number;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const HEADER: [&str; 9] = [
    "path",
    "x",
    "y",
    "width",
    "height",
    "tissue",
    "saturation",
    "probability",
    "label",
];

pub(crate) enum TileWriter {
    Csv(Box<csv::Writer<OutputFile>>),
    Jsonl(io::BufWriter<OutputFile>),
}

/// `--tiles FILE.json`: the rows are JSON Lines, which is not one JSON document.
#[derive(Debug, thiserror::Error)]
#[error("--tiles {}: rows are written as JSON Lines, one window a line, which is not one JSON document: name the file .jsonl (or .csv for CSV)", .0.display())]
pub(crate) struct JsonTiles(PathBuf);

/// Whether `path` gets CSV (else JSON Lines); a `.json` file is refused, since rows are written as
/// they come and JSON Lines is not one JSON document.
pub(crate) fn is_csv(path: &Path) -> Result<bool, JsonTiles> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("jsonl") | Some("ndjson") => Ok(false),
        Some("json") => Err(JsonTiles(path.to_path_buf())),
        _ => Ok(true),
    }
}

impl TileWriter {
    /// Starts `path` (through its `.partial`) with the bytes `kept` from an interrupted run; a CSV
    /// file starts with its header where the run `opens` the whole output (only a job array's
    /// first shard writes it, so that the shards' files concatenate to one run's).
    pub(crate) fn create(path: &Path, kept: &[u8], opens: bool) -> io::Result<TileWriter> {
        let csv = is_csv(path).map_err(io::Error::other)?;
        let mut out = OutputFile::create(path)?;
        out.write_all(kept)?;
        if !csv {
            return Ok(TileWriter::Jsonl(io::BufWriter::new(out)));
        }
        let mut csv = csv::Writer::from_writer(out);
        if kept.is_empty() && opens {
            csv.write_record(HEADER).map_err(io::Error::other)?;
        }
        Ok(TileWriter::Csv(Box::new(csv)))
    }

    /// Every window of a slide; background windows that were not run have no probability and no
    /// label.
    pub(crate) fn write(&mut self, slide: &str, result: &SlideResult) -> io::Result<()> {
        let grid = result.grid();
        for (k, t) in result.tiles.iter().enumerate() {
            // Level-0 pixels, whatever level was analysed, clipped to the slide: the bounds the
            // hotspot, the regions and every export give the same window.
            let [x, y, width, height] = grid.window_bounds(k);
            let label = t.class.map(|c| result.labels[c].as_str());
            match self {
                TileWriter::Jsonl(out) => {
                    let row = serde_json::json!({
                        "path": slide, "x": x, "y": y, "width": width, "height": height,
                        "tissue": t.tissue, "saturation": number(t.saturation),
                        "probability": t.probability.map_or(serde_json::Value::Null, number),
                        "label": label,
                    });
                    writeln!(out, "{row}")?;
                }
                TileWriter::Csv(out) => out
                    .write_record([
                        slide.to_string(),
                        x.to_string(),
                        y.to_string(),
                        width.to_string(),
                        height.to_string(),
                        t.tissue.to_string(),
                        t.saturation.to_string(),
                        t.probability.map_or_else(String::new, |p| p.to_string()),
                        label.unwrap_or_default().to_string(),
                    ])
                    .map_err(io::Error::other)?,
            }
        }
        // A slide's rows reach the file before its record: --resume finds them.
        match self {
            TileWriter::Jsonl(out) => out.flush(),
            TileWriter::Csv(out) => out.flush(),
        }
    }

    /// Makes the file appear complete.
    pub(crate) fn finish(self) -> io::Result<()> {
        let file = match self {
            TileWriter::Jsonl(out) => out.into_inner().map_err(|e| e.into_error())?,
            TileWriter::Csv(out) => out
                .into_inner()
                .map_err(|e| io::Error::other(e.to_string()))?,
        };
        file.commit()
    }
}
