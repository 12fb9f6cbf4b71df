//! `--tiles FILE`: one row per window of every slide, in level-0 pixels, as CSV or JSON Lines,
//! written through a `.partial` file like `--output`; a binary or multiclass model's rows also
//! carry every class's probability (`prob_<label>`, WSInfer's column names).

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

pub(crate) struct TileWriter {
    out: Rows,
    /// The labels of the classes whose probabilities each row carries (none for segmentation).
    classes: Vec<String>,
}

enum Rows {
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
    pub(crate) fn create(
        path: &Path,
        kept: &[u8],
        opens: bool,
        classes: Vec<String>,
    ) -> io::Result<TileWriter> {
        let csv = is_csv(path).map_err(io::Error::other)?;
        let mut out = OutputFile::create(path)?;
        out.write_all(kept)?;
        if !csv {
            let out = Rows::Jsonl(io::BufWriter::new(out));
            return Ok(TileWriter { out, classes });
        }
        let mut csv = csv::Writer::from_writer(out);
        if kept.is_empty() && opens {
            let columns = HEADER
                .iter()
                .map(|c| c.to_string())
                .chain(classes.iter().map(|label| format!("prob_{label}")));
            csv.write_record(columns).map_err(io::Error::other)?;
        }
        let out = Rows::Csv(Box::new(csv));
        Ok(TileWriter { out, classes })
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
            // Each class's probability where the window was run (NaN: not run).
            let scores: Vec<Option<f32>> = (0..self.classes.len())
                .map(|c| {
                    result
                        .scores
                        .get(k * self.classes.len() + c)
                        .copied()
                        .filter(|p| p.is_finite())
                })
                .collect();
            match &mut self.out {
                Rows::Jsonl(out) => {
                    let mut row = serde_json::json!({
                        "path": slide, "x": x, "y": y, "width": width, "height": height,
                        "tissue": t.tissue, "saturation": number(t.saturation),
                        "probability": t.probability.map_or(serde_json::Value::Null, number),
                        "label": label,
                    });
                    for (class, p) in self.classes.iter().zip(&scores) {
                        row[format!("prob_{class}")] = p.map_or(serde_json::Value::Null, number);
                    }
                    writeln!(out, "{row}")?;
                }
                Rows::Csv(out) => {
                    let fixed = [
                        slide.to_string(),
                        x.to_string(),
                        y.to_string(),
                        width.to_string(),
                        height.to_string(),
                        t.tissue.to_string(),
                        t.saturation.to_string(),
                        t.probability.map_or_else(String::new, |p| p.to_string()),
                        label.unwrap_or_default().to_string(),
                    ];
                    let per_class = scores
                        .iter()
                        .map(|p| p.map_or_else(String::new, |p| p.to_string()));
                    out.write_record(fixed.into_iter().chain(per_class))
                        .map_err(io::Error::other)?;
                }
            }
        }
        // A slide's rows reach the file before its record: --resume finds them.
        match &mut self.out {
            Rows::Jsonl(out) => out.flush(),
            Rows::Csv(out) => out.flush(),
        }
    }

    /// Makes the file appear complete.
    pub(crate) fn finish(self) -> io::Result<()> {
        let file = match self.out {
            Rows::Jsonl(out) => out.into_inner().map_err(|e| e.into_error())?,
            Rows::Csv(out) => out
                .into_inner()
                .map_err(|e| io::Error::other(e.to_string()))?,
        };
        file.commit()
    }
}
