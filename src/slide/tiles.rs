//! `--tiles FILE`: one row per window of every slide, as CSV or JSON Lines.

use super::SlideResult;
use crate::output::number;
use std::io::{self, Write};

pub struct TileWriter {
    out: Box<dyn Write>,
    jsonl: bool,
    started: bool,
}

impl TileWriter {
    /// JSON Lines for `.jsonl`/`.json` files, CSV otherwise.
    pub fn create(path: &std::path::Path) -> io::Result<TileWriter> {
        let jsonl = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("json"));
        Ok(TileWriter {
            out: Box::new(io::BufWriter::new(std::fs::File::create(path)?)),
            jsonl,
            started: false,
        })
    }

    pub fn write(
        &mut self,
        slide: &str,
        result: &SlideResult,
        labels: [&str; 2],
    ) -> io::Result<()> {
        if !self.jsonl && !self.started {
            writeln!(
                self.out,
                "path,x,y,width,height,tissue,saturation,probability,label"
            )?;
        }
        self.started = true;
        for t in &result.tiles {
            let label = if t.tissue {
                labels[usize::from(t.probability > result.threshold)]
            } else {
                ""
            };
            if self.jsonl {
                let row = serde_json::json!({
                    "path": slide, "x": t.x, "y": t.y, "width": t.width, "height": t.height,
                    "tissue": t.tissue, "saturation": number(t.saturation),
                    "probability": number(t.probability),
                    "label": if t.tissue { serde_json::Value::from(label) } else { serde_json::Value::Null },
                });
                writeln!(self.out, "{row}")?;
            } else {
                let quoted = format!("\"{}\"", slide.replace('"', "\"\""));
                writeln!(
                    self.out,
                    "{quoted},{},{},{},{},{},{},{},{label}",
                    t.x, t.y, t.width, t.height, t.tissue, t.saturation, t.probability
                )?;
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> io::Result<()> {
        if !self.jsonl && !self.started {
            writeln!(
                self.out,
                "path,x,y,width,height,tissue,saturation,probability,label"
            )?;
        }
        self.out.flush()
    }
}
