//! The KServe V2 / Open Inference Protocol over REST, so scancer runs as a custom runtime behind
//! KServe or answers any V2 client.
//!
//! Inputs: one tensor named `input__0`, either `FP32` of shape `[N, C, H, W]` (already
//! preprocessed, as the model takes it) or `BYTES` of shape `[N]` whose elements are base64-encoded
//! image files (decoded and preprocessed exactly as `/predictions` does); another name or datatype
//! is a 400, as in Triton. Outputs are the postprocessed answers: `probabilities` (FP32
//! `[N, classes]`) and `class` (INT64 `[N]`) for classifiers, `mask` (UINT8 `[N, H, W]`) for
//! segmentation, `output` (FP32, the model's shape) for raw models. Every answer under `/v2`, errors
//! included, is V2-shaped (`{"error": ...}`). Triton's model configuration (`.../config`) and
//! repository index (`POST /v2/repository/index`) and statistics (`GET .../stats`) are answered
//! too, for tritonclient.

mod outputs;
mod tensors;

use super::errors::{kserve_error, Failure};
use super::state::{App, Envelope};
use crate::serve::batcher::{Answered, Arrival};
use crate::serve::http::{Request, Response};
use crate::serve::models::ServedModel;
use hyper::StatusCode;
use outputs::{envelope_answer, output_names, values};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use tensors::{envelope_images, split_body, tensors};

pub(crate) use outputs::{output_bytes, outputs, requested};
pub(crate) use tensors::{input, BadTensor, Data, Input, Tensor, INPUT};

fn ok(value: Value) -> Response {
    Response::json(StatusCode::OK, format!("{value}\n"))
}

/// `GET /v2`: the server's metadata.
pub(super) fn server() -> Response {
    ok(json!({
        "name": "scancer",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": []
    }))
}

/// `GET /v2/health/live`
pub(super) fn live() -> Response {
    ok(json!({"live": true}))
}

/// `GET /v2/health/ready`
pub(super) fn ready() -> Response {
    ok(json!({"ready": true}))
}

/// `GET /v2/models/{name}[/versions/{version}]/ready`
pub(super) fn model_ready(name: &str) -> Response {
    ok(json!({"name": name, "ready": true}))
}

/// The model a V2 path names, or V2's 404.
pub(super) fn model(
    app: &App,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<ServedModel>, Response> {
    app.find(name, version).map_err(|_| {
        let shown = version.map_or_else(
            || format!("model {name:?}"),
            |v| format!("model {name:?} version {v:?}"),
        );
        kserve_error(
            StatusCode::NOT_FOUND,
            &format!("{shown} is not served here"),
        )
    })
}

/// Triton's model configuration (`GET .../config`, tritonclient's `get_model_config`): what the
/// model takes and answers, and how requests are batched.
pub(super) fn config(m: &ServedModel) -> Response {
    let [c, h, w] = m.input_shape;
    let output: Vec<Value> = outputs(m)
        .into_iter()
        .map(|(name, datatype, shape)| {
            let data_type = format!("TYPE_{datatype}");
            match &shape[1..] {
                // One value per image ([N]): Triton's way is dims [1] reshaped to a scalar.
                [] => json!({"name": name, "data_type": data_type, "dims": [1], "reshape": {"shape": []}}),
                dims => json!({"name": name, "data_type": data_type, "dims": dims}),
            }
        })
        .collect();
    ok(json!({
        "name": m.name,
        "platform": m.format.triton().0,
        "backend": m.format.triton().1,
        "version_policy": {"specific": {"versions": [m.version]}},
        "max_batch_size": m.settings.batch_size,
        "input": [{"name": INPUT, "data_type": "TYPE_FP32", "format": "FORMAT_NCHW", "dims": [c, h, w]}],
        "output": output,
        "dynamic_batching": {
            "max_queue_delay_microseconds": m.settings.max_batch_delay.as_micros() as u64,
        },
        "parameters": {"labels": {"string_value": m.schema.classes.join(",")}},
    }))
}

/// Triton's repository index (`POST /v2/repository/index`): every model version registered, READY
/// while it has a ready worker (a model is loaded and checked before it is registered).
pub(super) fn repository_index(app: &App) -> Response {
    let models: Vec<Value> = app
        .registry
        .all()
        .iter()
        .map(|m| {
            let ready = m.workers.status().iter().any(|w| w.ready);
            if ready {
                json!({"name": m.name, "version": m.version, "state": "READY"})
            } else {
                json!({"name": m.name, "version": m.version, "state": "UNAVAILABLE",
                       "reason": "no worker: scale the model's workers up"})
            }
        })
        .collect();
    ok(Value::Array(models))
}

/// The versions registered of a model's name.
pub(crate) fn versions(app: &App, m: &ServedModel) -> Vec<String> {
    app.registry
        .versions(&m.name)
        .iter()
        .map(|o| o.version.clone())
        .collect()
}

/// The statistics extension (`GET .../stats`, tritonclient's `get_inference_statistics`), from the
/// counts `/metrics` shows: answered requests and their total and queue time, refused requests as
/// failures, images as inferences. Batches are not counted per model, so `execution_count` is the
/// number of answered requests, and the compute phases are not split out.
pub(super) fn statistics(app: &App, models: &[Arc<ServedModel>]) -> Response {
    let pair = |count: u64, ns: u64| json!({"count": count, "ns": ns});
    let stats: Vec<Value> = models
        .iter()
        .map(|m| {
            let s = app.metrics.statistics(&m.name, &m.version);
            json!({
                "name": m.name,
                "version": m.version,
                "last_inference": s.last_ms,
                "inference_count": s.images,
                "execution_count": s.requests,
                "inference_stats": {
                    "success": pair(s.requests, s.latency_ns),
                    "fail": pair(s.failed, 0),
                    "queue": pair(s.requests, s.queue_ns),
                    "compute_input": pair(0, 0),
                    "compute_infer": pair(0, 0),
                    "compute_output": pair(0, 0),
                    "cache_hit": pair(0, 0),
                    "cache_miss": pair(0, 0),
                },
                "batch_stats": [],
            })
        })
        .collect();
    ok(json!({ "model_stats": stats }))
}

pub(super) fn metadata(app: &App, m: &ServedModel) -> Response {
    let [c, h, w] = m.input_shape;
    let versions = versions(app, m);
    let outputs: Vec<Value> = outputs(m)
        .into_iter()
        .map(|(name, datatype, shape)| json!({"name": name, "datatype": datatype, "shape": shape}))
        .collect();
    ok(json!({
        "name": m.name,
        "versions": versions,
        "platform": m.format.platform(),
        "inputs": [
            {"name": INPUT, "datatype": "FP32", "shape": [-1, c, h, w]},
        ],
        "outputs": outputs,
        "parameters": {"labels": m.schema.classes, "kind": m.kind().to_string()}
    }))
}

/// Runs a checked input through the path every protocol shares: room reserved for all its images
/// (before decoding), images decoded and preprocessed, batched, answered in order.
pub(crate) async fn run(
    app: &Arc<App>,
    m: &Arc<ServedModel>,
    input: Input,
    arrival: Arrival,
) -> Result<Vec<Answered>, Failure> {
    let reservation = app.admit(m, input.len(), false).await?;
    let inputs = match input {
        Input::Tensors(tensors) => tensors,
        Input::Images(images) => app.prepare(m, images, true).await?,
    };
    app.infer(m, inputs, reservation, arrival).await
}

/// `POST .../infer`: one input tensor (or TorchServe's kservev2 envelope), answered with the
/// outputs asked for, as JSON or binary data.
pub(super) async fn infer(
    app: &Arc<App>,
    m: &Arc<ServedModel>,
    named_version: Option<&str>,
    request: &Request,
    arrival: Option<Arrival>,
) -> Response {
    let started = Instant::now();
    let arrival = arrival.unwrap_or_else(|| m.queue.arrival());
    let mut asked = Value::Null;
    let mut enveloped = None;
    let answered = async {
        let (header, binary) = split_body(request).map_err(bad_input)?;
        let shape = m.input_shape;
        let envelope = app.envelope == Envelope::KServeV2;
        // A V2 body may be megabytes of JSON numbers: parsed beside the I/O thread.
        let (body, input) = app
            .off_thread(move || {
                let body = serde_json::from_slice::<Value>(&header)?;
                // TorchServe's kservev2 envelope: its inputs carry their own names.
                if envelope && body["inputs"][0]["name"] != INPUT {
                    let images = envelope_images(&body)?;
                    return Ok::<_, BadTensor>((body, Input::Images(images)));
                }
                let input = tensors(shape, &body, &binary)?;
                Ok((body, input))
            })
            .await?
            .map_err(bad_input)?;
        if envelope && body["inputs"][0]["name"] != INPUT {
            enveloped = body["inputs"][0]["name"].as_str().map(str::to_string);
            asked = body;
            return run(app, m, input, arrival).await;
        }
        // An unknown output is refused before any work is done for the request.
        requested(m, &output_names(&body)).map_err(bad_input)?;
        asked = body;
        run(app, m, input, arrival).await
    }
    .await;
    // One request, one latency, however many images it carried.
    app.observe(m, named_version, started, &answered);
    let answers = match answered {
        Ok(answers) => answers,
        // TorchServe's envelope answers errors as TorchServe does.
        Err(failure) if enveloped.is_some() => {
            return failure.torchserve(&format!("POST {}", request.path), m)
        }
        Err(failure) => return failure.kserve(),
    };
    match enveloped {
        Some(input) => envelope_answer(m, &asked, &input, &answers),
        None => answer(m, &asked, &answers),
    }
}

fn bad_input(why: impl std::fmt::Display) -> Failure {
    Failure::BadInput(why.to_string())
}

/// The outputs a V2 request asked for: JSON data, or binary data after the JSON header for those
/// asked so.
fn answer(m: &ServedModel, body: &Value, answers: &[Answered]) -> Response {
    let n = answers.len();
    let chosen = match requested(m, &output_names(body)) {
        Ok(chosen) => chosen,
        Err(why) => return kserve_error(StatusCode::BAD_REQUEST, &why.to_string()),
    };
    // Binary outputs: all of them with the request's binary_data_output, else those asked so.
    let all_binary = body["parameters"]["binary_data_output"].as_bool() == Some(true);
    let binary_wanted = |name: &str| {
        all_binary
            || body["outputs"].as_array().is_some_and(|o| {
                o.iter().any(|x| {
                    x["name"] == name && x["parameters"]["binary_data"].as_bool() == Some(true)
                })
            })
    };
    let mut results = Vec::new();
    let mut binary = Vec::new();
    for (name, datatype, mut shape) in chosen {
        shape[0] = n as i64;
        if binary_wanted(name) {
            let bytes = output_bytes(name, answers);
            results.push(json!({"name": name, "datatype": datatype, "shape": shape,
                                "parameters": {"binary_data_size": bytes.len()}}));
            binary.extend(bytes);
        } else {
            let data: Vec<Value> = answers
                .iter()
                .flat_map(|a| values(name, &a.prediction))
                .collect();
            results.push(json!({"name": name, "datatype": datatype, "shape": shape, "data": data}));
        }
    }
    let mut response = json!({
        "model_name": m.name,
        "model_version": m.version,
        "outputs": results,
    });
    if let Some(id) = body.get("id") {
        response["id"] = id.clone();
    }
    if binary.is_empty() {
        return ok(response);
    }
    let mut bytes = response.to_string().into_bytes();
    let header = bytes.len();
    bytes.extend(binary);
    Response::new(StatusCode::OK, "application/octet-stream", bytes)
        .with_header("inference-header-content-length", header.to_string())
}
