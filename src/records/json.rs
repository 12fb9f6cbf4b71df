//! JSON and JSON Lines: one object per record, with the same keys in every record of a run.

use super::{Answer, Outcome, OutputKind, Prediction, RecordWriter, Schema};
use serde_json::{json, Map, Value};
use std::io::{self, Write};

/// f32 values are written with their shortest exact decimal form (0.72174323, not 0.7217432260513306).
pub(crate) fn number(x: f32) -> Value {
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
pub(crate) fn record(schema: &Schema, answer: &Answer) -> Value {
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

/// The JSON record of one answer of a slide run: its `slide` summary (null for an input that was
/// not tiled) before its error.
pub(crate) fn slide_record(schema: &Schema, answer: &Answer) -> Value {
    let mut value = record(schema, answer);
    if let Value::Object(map) = &mut value {
        let error = map.shift_remove("error").unwrap_or(Value::Null);
        let slide = answer.slide.map_or(Value::Null, |s| s.to_json());
        map.insert("slide".into(), slide);
        map.insert("error".into(), error);
    }
    value
}

pub(super) struct Json<'w> {
    pub(super) schema: Schema,
    pub(super) out: Box<dyn Write + 'w>,
    /// Records of the whole output written so far (earlier pieces included).
    pub(super) count: usize,
    pub(super) array: bool,
    pub(super) closes: bool,
    pub(super) slides: bool,
}

impl RecordWriter for Json<'_> {
    fn write(&mut self, answer: &Answer) -> io::Result<()> {
        let value = if self.slides {
            slide_record(&self.schema, answer)
        } else {
            record(&self.schema, answer)
        };
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
