//! What a V2 answer holds: the outputs a model answers (their names, datatypes and shapes), their
//! values as JSON or as little-endian bytes, and TorchServe's kservev2 envelope's answer.

use super::tensors::flatten;
use crate::records::number;
use crate::records::OutputKind;
use crate::records::Prediction;
use crate::serve::batcher::Answered;
use crate::serve::http::Response;
use crate::serve::models::ServedModel;
use hyper::StatusCode;
use serde_json::{json, Value};

/// A request names an output the model does not answer.
#[derive(Debug, thiserror::Error)]
#[error("unknown output {0:?}")]
pub(crate) struct UnknownOutput(String);

/// An output tensor a model answers: its name, datatype and shape (`-1` for the batch).
pub(crate) type OutputSpec = (&'static str, &'static str, Vec<i64>);

/// The outputs a model answers, in order.
pub(crate) fn outputs(m: &ServedModel) -> Vec<OutputSpec> {
    let classes = m.schema.classes.len() as i64;
    let shape: Vec<i64> = m.output_shape.iter().map(|&d| d as i64).collect();
    match m.kind() {
        OutputKind::Binary | OutputKind::Multiclass => vec![
            ("probabilities", "FP32", vec![-1, classes]),
            ("class", "INT64", vec![-1]),
        ],
        OutputKind::Segmentation => {
            let mut dims = vec![-1];
            dims.extend_from_slice(&shape[1..]);
            vec![("mask", "UINT8", dims)]
        }
        OutputKind::Raw => {
            let mut dims = vec![-1];
            dims.extend_from_slice(&shape);
            vec![("output", "FP32", dims)]
        }
    }
}

/// TorchServe's kservev2 envelope's answer: one output named as the input, holding the handler's
/// answers flattened, with the datatype NumPy would give them.
pub(super) fn envelope_answer(
    m: &ServedModel,
    body: &Value,
    input: &str,
    answers: &[Answered],
) -> Response {
    let values: Vec<Value> = answers
        .iter()
        .map(|a| crate::serve::answer::torchserve_value(&m.schema, &a.prediction))
        .collect();
    let (datatype, data): (&str, Vec<Value>) = match m.kind() {
        OutputKind::Binary => ("INT64", values),
        OutputKind::Multiclass => ("BYTES", values),
        OutputKind::Segmentation | OutputKind::Raw => {
            let mut flat = Vec::new();
            for v in &values {
                flatten(v, &mut flat).ok();
            }
            let datatype = if m.kind() == OutputKind::Raw {
                "FP64"
            } else {
                "INT64"
            };
            (datatype, flat.into_iter().cloned().collect())
        }
    };
    let id = body
        .get("id")
        .cloned()
        .unwrap_or_else(|| Value::String(crate::serve::ids::uuid4()));
    let response = json!({
        "id": id,
        "model_name": m.name,
        "model_version": m.version,
        "outputs": [{"name": input, "datatype": datatype, "data": data, "shape": [data.len()]}],
    });
    Response::json(StatusCode::OK, crate::serve::pyjson::dumps(&response))
}

/// One output's values for one answer, as V2's JSON gives them.
pub(super) fn values(output: &str, prediction: &Prediction) -> Vec<Value> {
    match (output, prediction) {
        ("probabilities", Prediction::Class(c)) => {
            c.probabilities.iter().map(|&p| number(p)).collect()
        }
        ("class", Prediction::Class(c)) => vec![json!(c.class)],
        ("mask", Prediction::Segmentation(s)) => s.mask.iter().map(|&v| json!(v)).collect(),
        ("output", Prediction::Raw(r)) => r.values.iter().map(|&v| number(v)).collect(),
        _ => Vec::new(),
    }
}

/// One output's values over all the answers, as the binary tensor data extension (and gRPC's
/// raw_output_contents) send them: little-endian, straight from the predictions.
pub(crate) fn output_bytes(output: &str, answers: &[Answered]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for answer in answers {
        match (output, &answer.prediction) {
            ("probabilities", Prediction::Class(c)) => {
                bytes.extend(c.probabilities.iter().flat_map(|p| p.to_le_bytes()))
            }
            ("class", Prediction::Class(c)) => bytes.extend((c.class as i64).to_le_bytes()),
            ("mask", Prediction::Segmentation(s)) => bytes.extend_from_slice(&s.mask),
            ("output", Prediction::Raw(r)) => {
                bytes.extend(r.values.iter().flat_map(|v| v.to_le_bytes()))
            }
            _ => {}
        }
    }
    bytes
}

/// The output names a REST request lists.
pub(super) fn output_names(body: &Value) -> Vec<&str> {
    body["outputs"]
        .as_array()
        .map(|o| o.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default()
}

/// The outputs a request asks for (all of them when it names none), or which one it named that
/// the model does not have.
pub(crate) fn requested(
    m: &ServedModel,
    wanted: &[&str],
) -> Result<Vec<OutputSpec>, UnknownOutput> {
    let all = outputs(m);
    if let Some(unknown) = wanted.iter().find(|w| !all.iter().any(|o| o.0 == **w)) {
        return Err(UnknownOutput(unknown.to_string()));
    }
    Ok(all
        .into_iter()
        .filter(|o| wanted.is_empty() || wanted.contains(&o.0))
        .collect())
}
