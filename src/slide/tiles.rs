//! `--tiles FILE`: one row per window of every slide, as CSV or JSON Lines.

use super::SlideResult;
use crate::output::number;
use std::io::{self, Write};

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

pub enum TileWriter {
    Csv(Box<csv::Writer<io::BufWriter<std::fs::File>>>),
    Jsonl(io::BufWriter<std::fs::File>),
}

impl TileWriter {
    /// JSON Lines for `.jsonl`/`.json` files, CSV (header first) otherwise.
    pub fn create(path: &std::path::Path) -> io::Result<TileWriter> {
        let out = io::BufWriter::new(std::fs::File::create(path)?);
        let jsonl = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("json"));
        if jsonl {
            return Ok(TileWriter::Jsonl(out));
        }
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(HEADER).map_err(io::Error::other)?;
        Ok(TileWriter::Csv(Box::new(csv)))
    }

    pub fn write(
        &mut self,
        slide: &str,
        result: &SlideResult,
        labels: [&str; 2],
    ) -> io::Result<()> {
        for t in &result.tiles {
            // Background windows were not run: no label.
            let label = t
                .tissue
                .then(|| labels[usize::from(t.probability > result.threshold)]);
            match self {
                TileWriter::Jsonl(out) => {
                    let row = serde_json::json!({
                        "path": slide, "x": t.x, "y": t.y, "width": t.width, "height": t.height,
                        "tissue": t.tissue, "saturation": number(t.saturation),
                        "probability": number(t.probability), "label": label,
                    });
                    writeln!(out, "{row}")?;
                }
                TileWriter::Csv(out) => out
                    .write_record([
                        slide.to_string(),
                        t.x.to_string(),
                        t.y.to_string(),
                        t.width.to_string(),
                        t.height.to_string(),
                        t.tissue.to_string(),
                        t.saturation.to_string(),
                        t.probability.to_string(),
                        label.unwrap_or_default().to_string(),
                    ])
                    .map_err(io::Error::other)?,
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> io::Result<()> {
        match self {
            TileWriter::Jsonl(out) => out.flush(),
            TileWriter::Csv(out) => out.flush(),
        }
    }
}
