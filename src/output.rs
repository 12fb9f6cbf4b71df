//! Result records and the formats they are written in: a table for people, JSON, JSON Lines and CSV
//! for scripts. Every format writes and flushes records as they come, one per input, in input order,
//! and writes a `Piece` of the whole output: shards and resumed runs concatenate to one run's bytes.

use crate::engine::handler_config::OutputKind;
use crate::engine::postprocess::Prediction;
use crate::pipeline::Outcome;
use serde_json::{json, Map, Value};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
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
pub struct Schema {
    pub kind: OutputKind,
    /// The label of every class, in class order (empty for raw outputs).
    pub classes: Vec<String>,
}

impl Schema {
    /// The label of class `class`, or its index where there are no labels (as TorchServe prints it).
    pub fn label(&self, class: usize) -> String {
        self.classes
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string())
    }
}

/// One input's result, ready to write.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub path: &'a str,
    pub outcome: &'a Outcome,
    /// Where a segmentation mask was written.
    pub mask_file: Option<&'a str>,
    /// For a whole slide: its summary (the prediction is its most suspicious window's).
    pub slide: Option<&'a crate::slide::Summary>,
}

pub trait RecordWriter {
    fn write(&mut self, answer: &Answer) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TableStyle {
    pub color: bool,
    /// Width of the path column (the longest path of the run).
    pub path_width: usize,
}

/// Where a run's records sit in the whole output. A shard of a job array, or a run resumed after an
/// interruption, writes a piece; the pieces concatenated equal one whole run's output, in every
/// format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Records of the whole output before this piece's first one.
    pub before: usize,
    /// Whether this piece writes the header (CSV, table).
    pub opens: bool,
    /// Whether it ends the output (JSON's closing bracket).
    pub closes: bool,
}

impl Piece {
    pub const WHOLE: Piece = Piece {
        before: 0,
        opens: true,
        closes: true,
    };
}

/// `slides`: records carry a slide summary (null for inputs that were not tiled). Every record is
/// flushed as it is written, so that a killed run keeps what finished.
pub fn writer<'w>(
    format: Format,
    schema: Schema,
    out: Box<dyn Write + 'w>,
    style: TableStyle,
    slides: bool,
    piece: Piece,
) -> Box<dyn RecordWriter + 'w> {
    match format {
        Format::Table => Box::new(Table {
            schema,
            out,
            style,
            started: !piece.opens,
        }),
        Format::Json | Format::Jsonl => Box::new(Json {
            schema,
            out,
            count: piece.before,
            array: format == Format::Json,
            closes: piece.closes,
            slides,
        }),
        Format::Csv => Box::new(Csv {
            out: csv::Writer::from_writer(out),
            schema,
            started: !piece.opens,
            slides,
        }),
    }
}

/// The CSV header a run writes (with its line end).
pub fn csv_header(schema: &Schema, slides: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut w = writer(
            Format::Csv,
            schema.clone(),
            Box::new(&mut bytes),
            TableStyle::default(),
            slides,
            Piece {
                before: 0,
                opens: true,
                closes: false,
            },
        );
        // Writing to memory cannot fail.
        let _ = w.finish();
    }
    bytes
}

/// Summary columns of slide records, in order.
const SLIDE_COLUMNS: [&str; 12] = [
    "width",
    "height",
    "tiles",
    "tissue_tiles",
    "tissue_fraction",
    "positive_tiles",
    "max_probability",
    "mean_probability",
    "positive_fraction",
    "heatmap",
    "heatmap_downsample",
    "warning",
];

/// f32 values are written with their shortest exact decimal form (0.72174323, not 0.7217432260513306).
pub fn number(x: f32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    format!("{x}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn labelled(schema: &Schema, values: impl IntoIterator<Item = (usize, f32)>) -> Value {
    let map: Map<String, Value> = values
        .into_iter()
        .map(|(class, v)| (schema.label(class), number(v)))
        .collect();
    Value::Object(map)
}

/// The JSON record of one answer. Keys depend on the output kind and are the same for every record of
/// a run; an error record has `null` where a prediction would be.
pub fn record(schema: &Schema, answer: &Answer) -> Value {
    let error = match answer.outcome {
        Outcome::Failed(message) => Value::String(message.clone()),
        Outcome::Predicted(_) => Value::Null,
    };
    let prediction = match answer.outcome {
        Outcome::Predicted(p) => Some(p),
        Outcome::Failed(_) => None,
    };
    let mut r = Map::new();
    r.insert("path".into(), json!(answer.path));
    match schema.kind {
        OutputKind::Binary | OutputKind::Multiclass => {
            let c = match prediction {
                Some(Prediction::Class(c)) => Some(c),
                _ => None,
            };
            r.insert("label".into(), c.map_or(Value::Null, |c| json!(c.label)));
            r.insert("class".into(), c.map_or(Value::Null, |c| json!(c.class)));
            r.insert("score".into(), c.map_or(Value::Null, |c| number(c.score)));
            let probabilities = c.map_or(Value::Null, |c| {
                if schema.kind == OutputKind::Binary {
                    labelled(schema, c.probabilities.iter().copied().enumerate())
                } else {
                    labelled(schema, c.ranked.iter().map(|&k| (k, c.probabilities[k])))
                }
            });
            r.insert("probabilities".into(), probabilities);
        }
        OutputKind::Segmentation => {
            let s = match prediction {
                Some(Prediction::Segmentation(s)) => Some(s),
                _ => None,
            };
            r.insert(
                "mask".into(),
                answer
                    .mask_file
                    .filter(|_| s.is_some())
                    .map_or(Value::Null, |m| json!(m)),
            );
            let fractions = s.map_or(Value::Null, |s| {
                labelled(schema, s.fractions.iter().copied().enumerate())
            });
            r.insert("class_fractions".into(), fractions);
        }
        OutputKind::Raw => {
            let raw = match prediction {
                Some(Prediction::Raw(raw)) => Some(raw),
                _ => None,
            };
            r.insert(
                "shape".into(),
                raw.map_or(Value::Null, |raw| json!(raw.shape)),
            );
            r.insert(
                "output".into(),
                raw.map_or(Value::Null, |raw| {
                    raw.values.iter().map(|&v| number(v)).collect()
                }),
            );
        }
    }
    r.insert("error".into(), error);
    Value::Object(r)
}

struct Json<'w> {
    schema: Schema,
    out: Box<dyn Write + 'w>,
    /// Records of the whole output written so far (earlier pieces included).
    count: usize,
    array: bool,
    closes: bool,
    slides: bool,
}

impl RecordWriter for Json<'_> {
    fn write(&mut self, answer: &Answer) -> io::Result<()> {
        let mut value = record(&self.schema, answer);
        if self.slides {
            if let Value::Object(map) = &mut value {
                let error = map.shift_remove("error").unwrap_or(Value::Null);
                let slide = answer.slide.map_or(Value::Null, |s| s.to_json());
                map.insert("slide".into(), slide);
                map.insert("error".into(), error);
            }
        }
        let line = value.to_string();
        if self.array {
            self.out
                .write_all(if self.count == 0 { b"[\n  " } else { b",\n  " })?;
            self.out.write_all(line.as_bytes())?;
        } else {
            writeln!(self.out, "{line}")?;
        }
        self.count += 1;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.array && self.closes {
            self.out
                .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }
}

struct Csv<'w> {
    out: csv::Writer<Box<dyn Write + 'w>>,
    schema: Schema,
    started: bool,
    slides: bool,
}

fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl Csv<'_> {
    fn header(&self) -> Vec<String> {
        let classes = self.schema.classes.iter();
        let mut h = vec!["path".to_owned()];
        match self.schema.kind {
            OutputKind::Binary | OutputKind::Multiclass => {
                h.extend(["label", "class", "score"].map(String::from));
                h.extend(classes.map(|c| format!("p:{c}")));
            }
            OutputKind::Segmentation => {
                h.push("mask".into());
                h.extend(classes.map(|c| format!("fraction:{c}")));
            }
            OutputKind::Raw => h.extend(["shape", "output"].map(String::from)),
        }
        if self.slides {
            h.extend(SLIDE_COLUMNS.map(String::from));
        }
        h.push("error".into());
        h
    }
}

/// One value per class column of the header: a remote server's answer may name more or fewer
/// classes than its metadata did, and a CSV row must still have the header's columns (empty where
/// the answer gave no value).
fn per_class(values: &[f32], n: usize) -> impl Iterator<Item = f32> + '_ {
    (0..n).map(|k| values.get(k).copied().unwrap_or(f32::NAN))
}

impl RecordWriter for Csv<'_> {
    fn write(&mut self, answer: &Answer) -> io::Result<()> {
        if !self.started {
            self.out.write_record(self.header()).map_err(csv_error)?;
            self.started = true;
        }
        let n = self.schema.classes.len();
        let f = |x: f32| {
            if x.is_nan() {
                String::new()
            } else {
                format!("{x}")
            }
        };
        let mut row = vec![answer.path.to_owned()];
        let (prediction, error) = match answer.outcome {
            Outcome::Predicted(p) => (Some(p), String::new()),
            Outcome::Failed(m) => (None, m.clone()),
        };
        match (self.schema.kind, prediction) {
            (OutputKind::Binary | OutputKind::Multiclass, Some(Prediction::Class(c))) => {
                row.extend([c.label.clone(), c.class.to_string(), f(c.score)]);
                row.extend(per_class(&c.probabilities, n).map(f));
            }
            (OutputKind::Binary | OutputKind::Multiclass, _) => {
                row.extend(vec![String::new(); 3 + n])
            }
            (OutputKind::Segmentation, Some(Prediction::Segmentation(s))) => {
                row.push(answer.mask_file.unwrap_or_default().to_owned());
                row.extend(per_class(&s.fractions, n).map(f));
            }
            (OutputKind::Segmentation, _) => row.extend(vec![String::new(); 1 + n]),
            (OutputKind::Raw, Some(Prediction::Raw(r))) => {
                row.push(
                    r.shape
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("x"),
                );
                row.push(r.values.iter().map(|&v| f(v)).collect::<Vec<_>>().join(" "));
            }
            (OutputKind::Raw, _) => row.extend([String::new(), String::new()]),
        }
        if self.slides {
            let g = |x: Option<f32>| x.map_or_else(String::new, f);
            match answer.slide {
                Some(s) => row.extend([
                    s.width.to_string(),
                    s.height.to_string(),
                    s.tiles.to_string(),
                    s.tissue_tiles.to_string(),
                    f(s.tissue_fraction),
                    s.positive_tiles.to_string(),
                    g(s.max_probability),
                    g(s.mean_probability),
                    g(s.positive_fraction),
                    s.heatmap.clone().unwrap_or_default(),
                    s.heatmap_downsample
                        .map_or_else(String::new, |d| d.to_string()),
                    s.warning.clone().unwrap_or_default(),
                ]),
                None => row.extend(vec![String::new(); SLIDE_COLUMNS.len()]),
            }
        }
        row.push(error);
        self.out.write_record(&row).map_err(csv_error)?;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.started {
            self.out.write_record(self.header()).map_err(csv_error)?;
        }
        self.out.flush()
    }
}

struct Table<'w> {
    schema: Schema,
    out: Box<dyn Write + 'w>,
    style: TableStyle,
    started: bool,
}

const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

impl Table<'_> {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.style.color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    fn columns(&self) -> (&'static str, &'static str) {
        match self.schema.kind {
            OutputKind::Binary | OutputKind::Multiclass => ("LABEL", "SCORE"),
            OutputKind::Segmentation => ("MASK", "CLASS FRACTIONS"),
            OutputKind::Raw => ("SHAPE", "OUTPUT"),
        }
    }

    /// The header line, once (never in a piece that does not open the table).
    fn head(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let (a, b) = self.columns();
        let (pw, lw) = (self.style.path_width.max(4), self.label_width());
        let header = format!("{:<pw$}  {a:<lw$}  {b}", "PATH");
        writeln!(self.out, "{}", self.paint(BOLD, header.trim_end()))
    }

    fn label_width(&self) -> usize {
        match self.schema.kind {
            OutputKind::Binary | OutputKind::Multiclass => self
                .schema
                .classes
                .iter()
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                .max(5),
            _ => 12,
        }
    }
}

fn percent_list(schema: &Schema, fractions: &[f32]) -> String {
    let mut order: Vec<usize> = (0..fractions.len()).collect();
    order.sort_by(|&a, &b| fractions[b].total_cmp(&fractions[a]));
    order
        .iter()
        .map(|&k| format!("{} {:.1}%", schema.label(k), fractions[k] * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RecordWriter for Table<'_> {
    fn write(&mut self, answer: &Answer) -> io::Result<()> {
        self.head()?;
        let pw = self.style.path_width.max(4);
        let lw = self.label_width();
        let (a, b) = match answer.outcome {
            Outcome::Failed(message) => (self.paint(RED, "error"), self.paint(RED, message)),
            // A remote TorchServe answers the class alone: no score to show.
            Outcome::Predicted(Prediction::Class(c)) if c.score.is_nan() => {
                (c.label.clone(), "-".to_owned())
            }
            Outcome::Predicted(Prediction::Class(c)) => {
                (c.label.clone(), format!("{:.4}", c.score))
            }
            Outcome::Predicted(Prediction::Segmentation(s)) => (
                answer.mask_file.unwrap_or("-").to_owned(),
                percent_list(&self.schema, &s.fractions),
            ),
            Outcome::Predicted(Prediction::Raw(r)) => {
                let shown: Vec<String> =
                    r.values.iter().take(6).map(|v| format!("{v:.4}")).collect();
                let more = if r.values.len() > 6 { " ..." } else { "" };
                (
                    format!("{:?}", r.shape),
                    format!("{}{more}", shown.join(" ")),
                )
            }
        };
        let b = match (answer.slide, answer.outcome) {
            (Some(s), Outcome::Predicted(_)) => format!(
                "{b}  ({} of {} tissue windows positive, {} background; tissue {:.1}%){}",
                s.positive_tiles,
                s.tissue_tiles,
                s.tiles - s.tissue_tiles,
                s.tissue_fraction * 100.0,
                s.warning
                    .as_ref()
                    .map_or_else(String::new, |w| format!("  warning: {w}"))
            ),
            _ => b,
        };
        // Pad by visible width: colour codes do not take space on screen.
        let a_pad = lw.saturating_sub(match answer.outcome {
            Outcome::Failed(_) => 5,
            _ => a.chars().count(),
        });
        let path_pad = pw.saturating_sub(answer.path.chars().count());
        writeln!(
            self.out,
            "{}{}  {a}{}  {b}",
            answer.path,
            " ".repeat(path_pad),
            " ".repeat(a_pad)
        )?;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        // An empty first shard still heads the whole table.
        self.head()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::postprocess::ClassPrediction;

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
