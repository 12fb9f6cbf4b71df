//! Result records, below every command: what one input's result is (`Outcome`, `Prediction`, a
//! slide's `Summary`), what a run's records hold (`Schema`), and the formats they are written in, one
//! file each: a table for people (`table`), JSON and JSON Lines (`json`) and CSV (`csv`) for scripts.
//! Every format writes and flushes records as they come, one per input, in input order, and writes a
//! `Piece` of the whole output: shards and resumed runs concatenate to one run's bytes.

mod csv;
mod json;
mod prediction;
pub(crate) mod summary;
mod table;

pub(crate) use self::csv::csv_header;
pub(crate) use json::{number, record, slide_record};
pub(crate) use prediction::{
    ClassPrediction, OutputKind, Prediction, RawPrediction, SegmentationPrediction,
};
use std::io::{self, Write};
pub(crate) use summary::Summary;
pub(crate) use table::TableStyle;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Aligned columns for reading on a terminal.
    Table,
    /// One JSON array of records.
    Json,
    /// One JSON record per line.
    Jsonl,
    /// A header, then one row per record.
    Csv,
}

/// What the writers know about the model's answers before the first record.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub(crate) kind: OutputKind,
    /// The label of every class, in class order (empty for raw outputs).
    pub(crate) classes: Vec<String>,
}

impl Schema {
    /// The label of class `class`, or its index where there are no labels (as TorchServe prints it).
    pub(crate) fn label(&self, class: usize) -> String {
        self.classes
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string())
    }
}

/// One input's result, ready to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer<'a> {
    pub(crate) path: &'a str,
    pub(crate) outcome: &'a Outcome,
    /// Where a segmentation mask was written.
    pub(crate) mask_file: Option<&'a str>,
    /// For a whole slide: its summary (the prediction is its most suspicious window's).
    pub(crate) slide: Option<&'a Summary>,
}

/// The result for one input: a prediction, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Predicted(Prediction),
    Failed(String),
}

pub(crate) trait RecordWriter {
    fn write(&mut self, answer: &Answer) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
}

/// Where a run's records sit in the whole output. A shard of a job array, or a run resumed after an
/// interruption, writes a piece; the pieces concatenated equal one whole run's output, in every
/// format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Records of the whole output before this piece's first one.
    pub(crate) before: usize,
    /// Whether this piece writes the header (CSV, table).
    pub(crate) opens: bool,
    /// Whether it ends the output (JSON's closing bracket).
    pub(crate) closes: bool,
}

impl Piece {
    pub(crate) const WHOLE: Piece = Piece {
        before: 0,
        opens: true,
        closes: true,
    };
}

/// `slides`: records carry a slide summary (null for inputs that were not tiled). Every record is
/// flushed as it is written, so that a killed run keeps what finished.
pub(crate) fn writer<'w>(
    format: Format,
    schema: Schema,
    out: Box<dyn Write + 'w>,
    style: TableStyle,
    slides: bool,
    piece: Piece,
) -> Box<dyn RecordWriter + 'w> {
    match format {
        Format::Table => Box::new(table::Table {
            schema,
            out,
            style,
            started: !piece.opens,
        }),
        Format::Json | Format::Jsonl => Box::new(json::Json {
            schema,
            out,
            count: piece.before,
            array: format == Format::Json,
            closes: piece.closes,
            slides,
        }),
        Format::Csv => Box::new(csv::Csv {
            out: ::csv::Writer::from_writer(out),
            schema,
            started: !piece.opens,
            slides,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn binary_schema() -> Schema {
        Schema {
            kind: OutputKind::Binary,
            classes: vec!["normal".into(), "metastatic".into()],
        }
    }

    fn positive() -> Outcome {
        Outcome::Predicted(Prediction::Class(ClassPrediction {
            class: 1,
            label: "metastatic".into(),
            score: 0.75,
            probabilities: vec![0.25, 0.75],
            ranked: vec![1, 0],
        }))
    }

    fn render(format: Format, answers: &[(&str, Outcome)]) -> String {
        let mut buf = Vec::new();
        {
            let mut w = writer(
                format,
                binary_schema(),
                Box::new(&mut buf),
                TableStyle {
                    color: false,
                    path_width: 5,
                },
                false,
                Piece::WHOLE,
            );
            for (path, outcome) in answers {
                w.write(&Answer {
                    path,
                    outcome,
                    mask_file: None,
                    slide: None,
                })
                .unwrap();
            }
            w.finish().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn jsonl_records_have_a_fixed_schema() {
        let text = render(
            Format::Jsonl,
            &[
                ("a.png", positive()),
                ("b.png", Outcome::Failed("empty file".into())),
            ],
        );
        assert_eq!(
            text,
            "{\"path\":\"a.png\",\"label\":\"metastatic\",\"class\":1,\"score\":0.75,\"probabilities\":{\"normal\":0.25,\"metastatic\":0.75},\"error\":null}\n\
             {\"path\":\"b.png\",\"label\":null,\"class\":null,\"score\":null,\"probabilities\":null,\"error\":\"empty file\"}\n"
        );
    }

    #[test]
    fn json_is_one_array() {
        let text = render(
            Format::Json,
            &[("a.png", positive()), ("b.png", positive())],
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(render(Format::Json, &[]), "[]\n");
    }

    #[test]
    fn csv_quotes_and_keeps_columns() {
        let text = render(
            Format::Csv,
            &[
                ("a,b.png", positive()),
                ("c.png", Outcome::Failed("bad \"x\"".into())),
            ],
        );
        assert_eq!(
            text,
            "path,label,class,score,p:normal,p:metastatic,error\n\"a,b.png\",metastatic,1,0.75,0.25,0.75,\n\
             c.png,,,,,,\"bad \"\"x\"\"\"\n"
        );
    }

    #[test]
    fn table_aligns_columns() {
        let text = render(
            Format::Table,
            &[
                ("a.png", positive()),
                ("b.png", Outcome::Failed("empty file".into())),
            ],
        );
        assert_eq!(
            text,
            "PATH   LABEL       SCORE\na.png  metastatic  0.7500\nb.png  error       empty file\n"
        );
    }

    #[test]
    fn shortest_float_form() {
        assert_eq!(number(0.721_743_2).to_string(), "0.7217432");
        assert_eq!(number(f32::NAN), Value::Null);
    }
}
