//! Response bodies for a prediction: the bytes TorchServe 0.12 would send for the same archive (what
//! existing clients parse), or, on request, the same JSON record as `scancer predict -f json`.

use super::pyjson;
use crate::records::Outcome;
use crate::records::OutputKind;
use crate::records::Prediction;
use crate::records::{self, Answer, Schema};
use serde_json::{json, Map, Value};

/// TorchServe's body: what scancer's generated handler (or the built-in image_classifier) returns for
/// one request, written as TorchServe writes it (`json.dumps(answer, indent=2)`, no newline).
/// binary -> `0` or `1`; multiclass -> `{label: probability}` for the top k; segmentation -> the class
/// mask as rows; raw -> the output tensor as nested lists.
pub(crate) fn torchserve(schema: &Schema, prediction: &Prediction) -> Vec<u8> {
    pyjson::dumps(&torchserve_value(schema, prediction)).into_bytes()
}

/// The value of `torchserve`'s body: what the handler returns for one image.
pub(crate) fn torchserve_value(schema: &Schema, prediction: &Prediction) -> Value {
    match prediction {
        Prediction::Class(c) if schema.kind == OutputKind::Binary => json!(c.class),
        Prediction::Class(c) => {
            let map: Map<String, Value> = c
                .ranked
                .iter()
                .map(|&k| (schema.label(k), exact(c.probabilities[k])))
                .collect();
            Value::Object(map)
        }
        Prediction::Segmentation(s) => Value::Array(
            s.mask
                .chunks(s.width.max(1))
                .map(|row| row.iter().map(|&c| json!(c)).collect())
                .collect(),
        ),
        Prediction::Raw(r) => nest(&r.shape, &r.values),
    }
}

/// The record `scancer predict -f json` writes for the image, without its path and error; a
/// segmentation mask comes inline as rows of class indices.
pub(crate) fn detailed(schema: &Schema, prediction: &Prediction) -> Vec<u8> {
    let outcome = Outcome::Predicted(prediction.clone());
    let mut record = records::record(
        schema,
        &Answer {
            path: "",
            outcome: &outcome,
            mask_file: None,
            slide: None,
        },
    );
    if let Value::Object(map) = &mut record {
        map.shift_remove("path");
        map.shift_remove("error");
        if let Prediction::Segmentation(s) = prediction {
            map.insert(
                "mask".into(),
                Value::Array(
                    s.mask
                        .chunks(s.width.max(1))
                        .map(|row| row.iter().map(|&c| json!(c)).collect())
                        .collect(),
                ),
            );
        }
    }
    let mut body = record.to_string().into_bytes();
    body.push(b'\n');
    body
}

/// The float32 value exactly, as PyTorch's `tolist()` hands it to Python.
fn exact(x: f32) -> Value {
    serde_json::Number::from_f64(f64::from(x))
        .map_or_else(|| Value::String(x.to_string()), Value::Number)
}

/// Values of `shape` as nested lists, like `tensor.tolist()`.
fn nest(shape: &[usize], values: &[f32]) -> Value {
    match shape.split_first() {
        None => values.first().map_or(Value::Null, |&v| exact(v)),
        Some((&n, rest)) => {
            let per: usize = rest.iter().product();
            Value::Array(
                (0..n)
                    .map(|k| nest(rest, &values[k * per..(k + 1) * per]))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ClassPrediction, RawPrediction};

    #[test]
    fn torchserve_bodies() {
        let schema = Schema {
            kind: OutputKind::Binary,
            classes: vec!["normal".into(), "metastasis".into()],
        };
        let class = Prediction::Class(ClassPrediction {
            class: 1,
            label: "metastasis".into(),
            score: 0.75,
            probabilities: vec![0.25, 0.75],
            ranked: vec![1, 0],
        });
        assert_eq!(torchserve(&schema, &class), b"1");
        let multi = Schema {
            kind: OutputKind::Multiclass,
            ..schema
        };
        assert_eq!(
            String::from_utf8(torchserve(&multi, &class)).unwrap(),
            "{\n  \"metastasis\": 0.75,\n  \"normal\": 0.25\n}"
        );
        let raw = Prediction::Raw(RawPrediction {
            shape: vec![2, 1],
            values: vec![0.1, -2.0],
        });
        assert_eq!(
            String::from_utf8(torchserve(&multi, &raw)).unwrap(),
            "[\n  [\n    0.10000000149011612\n  ],\n  [\n    -2.0\n  ]\n]"
        );
    }
}
