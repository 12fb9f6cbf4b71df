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

use super::{App, Envelope, Failure};
use crate::engine::preprocess::Prepared;
use crate::records::number;
use crate::records::OutputKind;
use crate::records::Prediction;
use crate::serve::batcher::{Answered, Arrival};
use crate::serve::http::{Request, Response};
use crate::serve::models::ServedModel;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// The name of the one input tensor, as the model's metadata gives it.
pub(crate) const INPUT: &str = "input__0";

/// An error as V2 clients read it: `{"error": message}`.
pub(crate) fn error(status: u16, message: &str) -> Response {
    Response::json(status, format!("{}\n", json!({ "error": message })))
}

fn ok(value: Value) -> Response {
    Response::json(200, format!("{value}\n"))
}

/// `segments` follow `/v2`.
pub(crate) async fn handle(
    app: &Arc<App>,
    request: &Request,
    segments: &[&str],
    arrival: Option<Arrival>,
) -> Response {
    let get = request.method == "GET";
    let post = request.method == "POST";
    let (model, rest): (Option<(&str, Option<&str>)>, &[&str]) = match segments {
        // Every model's statistics, not a model named "stats".
        ["models", "stats"] => (None, segments),
        ["models", name, "versions", version, rest @ ..] => (Some((name, Some(version))), rest),
        ["models", name, rest @ ..] => (Some((name, None)), rest),
        _ => (None, segments),
    };
    match (model, rest) {
        (None, ["repository", "index"]) if post => repository_index(app),
        (None, ["models", "stats"]) if get => statistics(app, &app.registry.all()),
        (None, []) if get => ok(json!({
            "name": "scancer",
            "version": env!("CARGO_PKG_VERSION"),
            "extensions": []
        })),
        (None, ["health", "live"]) if get => ok(json!({"live": true})),
        (None, ["health", "ready"]) if get => ok(json!({"ready": true})),
        (Some((name, version)), tail) => {
            let m = match app.find(name, version) {
                Ok(m) => m,
                Err(_) => {
                    let shown = version.map_or_else(
                        || format!("model {name:?}"),
                        |v| format!("model {name:?} version {v:?}"),
                    );
                    return error(404, &format!("{shown} is not served here"));
                }
            };
            match tail {
                [] if get => metadata(app, &m),
                ["config"] if get => config(&m),
                ["ready"] if get => ok(json!({"name": name, "ready": true})),
                // Every version of the name unless one is named.
                ["stats"] if get => match version {
                    Some(_) => statistics(app, std::slice::from_ref(&m)),
                    None => statistics(app, &app.registry.versions(&m.name)),
                },
                ["infer"] if post => infer(app, &m, request, arrival).await,
                [] | ["ready"] | ["infer"] | ["config"] | ["stats"] => method_not_allowed(request),
                _ => not_found(request),
            }
        }
        (
            None,
            [] | ["health", "live" | "ready"] | ["repository", "index"] | ["models", "stats"],
        ) => method_not_allowed(request),
        _ => not_found(request),
    }
}

fn method_not_allowed(request: &Request) -> Response {
    error(
        405,
        &format!("{} is not allowed on {}", request.method, request.path),
    )
}

fn not_found(request: &Request) -> Response {
    error(
        404,
        &format!("{} is not a KServe V2 endpoint", request.path),
    )
}

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

/// Triton's model configuration (`GET .../config`, tritonclient's `get_model_config`): what the
/// model takes and answers, and how requests are batched.
fn config(m: &ServedModel) -> Response {
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
        "platform": "pytorch_libtorch",
        "backend": "pytorch",
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
fn repository_index(app: &App) -> Response {
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

/// The platform V2 metadata names.
pub(crate) const PLATFORM: &str = "pytorch_torchscript";

/// The statistics extension (`GET .../stats`, tritonclient's `get_inference_statistics`), from the
/// counts `/metrics` shows: answered requests and their total and queue time, refused requests as
/// failures, images as inferences. Batches are not counted per model, so `execution_count` is the
/// number of answered requests, and the compute phases are not split out.
fn statistics(app: &App, models: &[Arc<ServedModel>]) -> Response {
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

fn metadata(app: &App, m: &ServedModel) -> Response {
    let [c, h, w] = m.input_shape;
    let versions = versions(app, m);
    let outputs: Vec<Value> = outputs(m)
        .into_iter()
        .map(|(name, datatype, shape)| json!({"name": name, "datatype": datatype, "shape": shape}))
        .collect();
    ok(json!({
        "name": m.name,
        "versions": versions,
        "platform": PLATFORM,
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

/// A failure as V2 answers it: the HTTP status and the message.
pub(crate) fn failure_status(failure: Failure) -> (u16, String) {
    match failure {
        Failure::BadInput(why) => (400, why),
        Failure::Internal(why) => (500, why),
        Failure::QueueFull => (503, "too many pending requests; retry later".into()),
        Failure::ShuttingDown => (503, "the server is shutting down".into()),
        Failure::NoWorker(why) => (503, why),
        Failure::Unregistered(missing) => (404, missing.message),
    }
}

/// The request's one input tensor, read and checked but not yet decoded.
pub(crate) enum Input {
    /// FP32 tensors, one per image, as the model takes them.
    Tensors(Vec<Prepared>),
    /// Image files to decode and preprocess.
    Images(Vec<Bytes>),
}

impl Input {
    pub(crate) fn len(&self) -> usize {
        match self {
            Input::Tensors(t) => t.len(),
            Input::Images(i) => i.len(),
        }
    }
}

async fn infer(
    app: &Arc<App>,
    m: &Arc<ServedModel>,
    request: &Request,
    arrival: Option<Arrival>,
) -> Response {
    let started = Instant::now();
    let arrival = arrival.unwrap_or_else(|| m.queue.arrival());
    let mut asked = Value::Null;
    let mut enveloped = None;
    let answered = async {
        let (header, binary) = split_body(request).map_err(Failure::BadInput)?;
        let shape = m.input_shape;
        let envelope = app.envelope == Envelope::KServeV2;
        // A V2 body may be megabytes of JSON numbers: parsed beside the I/O thread.
        let (body, input) = app
            .off_thread(move || {
                let body = serde_json::from_slice::<Value>(&header)
                    .map_err(|e| format!("the request's JSON is not valid: {e}"))?;
                // TorchServe's kservev2 envelope: its inputs carry their own names.
                if envelope && body["inputs"][0]["name"] != INPUT {
                    let images = envelope_images(&body)?;
                    return Ok::<_, String>((body, Input::Images(images)));
                }
                let input = tensors(shape, &body, &binary)?;
                Ok::<_, String>((body, input))
            })
            .await?
            .map_err(Failure::BadInput)?;
        if envelope && body["inputs"][0]["name"] != INPUT {
            enveloped = body["inputs"][0]["name"].as_str().map(str::to_string);
            asked = body;
            return run(app, m, input, arrival).await;
        }
        // An unknown output is refused before any work is done for the request.
        requested(m, &output_names(&body)).map_err(Failure::BadInput)?;
        asked = body;
        run(app, m, input, arrival).await
    }
    .await;
    // One request, one latency, however many images it carried.
    app.observe(m, started, &answered);
    let (answers, body) = match answered {
        Ok(answers) => (answers, asked),
        Err(failure) if enveloped.is_some() => {
            return app.failure(&format!("POST {}", request.path), m, failure)
        }
        Err(failure) => {
            let (status, message) = failure_status(failure);
            return error(status, &message);
        }
    };
    if let Some(input) = enveloped {
        return envelope_answer(m, &body, &input, &answers);
    }
    let n = answers.len();
    let chosen = match requested(m, &output_names(&body)) {
        Ok(chosen) => chosen,
        Err(why) => return error(400, &why),
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
            let bytes = output_bytes(name, &answers);
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
    Response::new(200, "application/octet-stream", bytes)
        .with_header("inference-header-content-length", header.to_string())
}

/// The images of a request in TorchServe's kservev2 envelope: its first input's BYTES, base64.
fn envelope_images(body: &Value) -> Result<Vec<Bytes>, String> {
    let input = &body["inputs"][0];
    let data = input["data"]
        .as_array()
        .ok_or("the input has no \"data\" array")?;
    data.iter()
        .enumerate()
        .map(|(i, v)| {
            let text = v.as_str().ok_or(format!(
                "element {i}: expected a base64 image (BYTES), as TorchServe's handler reads it"
            ))?;
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(Bytes::from)
                .map_err(|e| format!("element {i}: not base64: {e}"))
        })
        .collect()
}

/// TorchServe's kservev2 envelope's answer: one output named as the input, holding the handler's
/// answers flattened, with the datatype NumPy would give them.
fn envelope_answer(m: &ServedModel, body: &Value, input: &str, answers: &[Answered]) -> Response {
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
        .unwrap_or_else(|| Value::String(request_id()));
    let response = json!({
        "id": id,
        "model_name": m.name,
        "model_version": m.version,
        "outputs": [{"name": input, "datatype": datatype, "data": data, "shape": [data.len()]}],
    });
    Response::new(
        200,
        crate::serve::http::JSON,
        crate::serve::pyjson::dumps(&response),
    )
}

/// A random UUID (version 4), as TorchServe gives a request without an id.
fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub(crate) fn values(output: &str, prediction: &Prediction) -> Vec<Value> {
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

/// One input tensor as a request carries it, over REST (JSON, binary data) or gRPC.
pub(crate) struct Tensor {
    pub(crate) name: String,
    pub(crate) datatype: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Data,
}

/// A tensor's values.
pub(crate) enum Data {
    /// Little-endian bytes (the binary data extension, gRPC's raw_input_contents).
    Raw(Bytes),
    /// FP32 values, row-major.
    Fp32(Vec<f32>),
    /// BYTES elements (image files).
    Elements(Vec<Bytes>),
}

/// The one input of a model taking `[C, H, W]` images, checked: its name, datatype and shape, as
/// tensors for the model or images to decode.
pub(crate) fn input(input_shape: [usize; 3], tensor: Tensor) -> Result<Input, String> {
    let shape = tensor.shape;
    match tensor.name.as_str() {
        INPUT => {}
        "" => {
            return Err(format!(
                "the input has no \"name\" (the model's is {INPUT:?})"
            ))
        }
        other => {
            return Err(format!(
                "the model has no input {other:?}: its input is {INPUT:?}"
            ))
        }
    }
    let [c, h, w] = input_shape;
    match (tensor.datatype.as_str(), tensor.data) {
        ("FP32", data) => {
            if shape.len() != 4 || shape[1..] != [c, h, w] {
                return Err(format!(
                    "input shape {shape:?} does not match the model's [N, {c}, {h}, {w}]"
                ));
            }
            let numbers = match data {
                Data::Raw(bytes) => fp32_binary(&bytes)?,
                Data::Fp32(numbers) => numbers,
                Data::Elements(_) => return Err("FP32 data must be numbers".into()),
            };
            if numbers.iter().any(|x| !x.is_finite()) {
                return Err("the input data must be finite numbers".into());
            }
            let size = c * h * w;
            if numbers.len() != shape[0] * size {
                return Err(format!(
                    "the input has {} values but its shape {shape:?} needs {}",
                    numbers.len(),
                    shape[0] * size
                ));
            }
            Ok(Input::Tensors(
                numbers
                    .chunks_exact(size.max(1))
                    .map(|chunk| Prepared {
                        data: chunk.to_vec(),
                    })
                    .collect(),
            ))
        }
        ("BYTES", data) => {
            let images = match data {
                Data::Raw(bytes) => bytes_binary(&bytes)?
                    .into_iter()
                    .map(|element| bytes.slice_ref(element))
                    .collect(),
                Data::Elements(images) => images,
                Data::Fp32(_) => return Err("BYTES data must be base64 strings".into()),
            };
            if shape.len() != 1 || shape[0] != images.len() {
                return Err(format!(
                    "a BYTES input must have shape [N] with N images, got {shape:?} for {} values",
                    images.len()
                ));
            }
            Ok(Input::Images(images))
        }
        (other, _) => Err(format!(
            "datatype {other:?} does not match the model's input {INPUT:?}: send FP32 tensors [N, {c}, {h}, {w}], or BYTES (base64 image files) [N]"
        )),
    }
}

/// The REST request's one input tensor. `binary` is what follows the JSON header with the binary
/// tensor data extension.
fn tensors(input_shape: [usize; 3], body: &Value, binary: &Bytes) -> Result<Input, String> {
    let inputs = body["inputs"]
        .as_array()
        .ok_or("the request has no \"inputs\" array")?;
    let [json] = inputs.as_slice() else {
        return Err(format!(
            "expected exactly one input tensor, got {}",
            inputs.len()
        ));
    };
    let shape: Vec<usize> = json["shape"]
        .as_array()
        .ok_or("the input has no \"shape\"")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or("the input shape must be non-negative integers")?;
    let datatype = json["datatype"].as_str().unwrap_or("");
    let name = json["name"].as_str().unwrap_or("");
    let data = match json["parameters"]["binary_data_size"].as_u64() {
        Some(size) if size as usize == binary.len() => Data::Raw(binary.clone()),
        Some(size) => {
            return Err(format!(
                "the input's binary_data_size is {size} but {} bytes follow the JSON header",
                binary.len()
            ))
        }
        None if !binary.is_empty() => {
            return Err(
                "binary data follows the JSON header, but the input has no binary_data_size".into(),
            )
        }
        // The name is checked before the values are read.
        None if name != INPUT || (datatype != "FP32" && datatype != "BYTES") => {
            Data::Fp32(Vec::new())
        }
        None => {
            let mut flat = Vec::new();
            flatten(&json["data"], &mut flat)?;
            if datatype == "FP32" {
                Data::Fp32(
                    flat.iter()
                        .map(|v| v.as_f64().map(|x| x as f32))
                        .collect::<Option<Vec<f32>>>()
                        .ok_or("the input data must be finite numbers")?,
                )
            } else {
                Data::Elements(
                    flat.iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let text = v.as_str().ok_or("BYTES data must be base64 strings")?;
                            base64::engine::general_purpose::STANDARD
                                .decode(text.trim())
                                .map(Bytes::from)
                                .map_err(|e| format!("image {i}: not base64: {e}"))
                        })
                        .collect::<Result<_, String>>()?,
                )
            }
        }
    };
    input(
        input_shape,
        Tensor {
            name: name.to_string(),
            datatype: datatype.to_string(),
            shape,
            data,
        },
    )
}

/// Row-major values of nested or flat `data`.
fn flatten<'a>(data: &'a Value, out: &mut Vec<&'a Value>) -> Result<(), String> {
    match data {
        Value::Array(items) => {
            for item in items {
                flatten(item, out)?;
            }
            Ok(())
        }
        Value::Null => Err("the input has no \"data\"".into()),
        v => {
            out.push(v);
            Ok(())
        }
    }
}

/// An FP32 tensor sent as binary data (the binary tensor data extension): little-endian values.
fn fp32_binary(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{} bytes of FP32 data is not a whole number of values",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// A BYTES tensor sent as binary data: each element after its 4-byte little-endian length.
fn bytes_binary(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut elements = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or("BYTES data ends inside an element's length")?;
        let len = u32::from_le_bytes(*len) as usize;
        let element = tail.get(..len).ok_or("BYTES data ends inside an element")?;
        elements.push(element);
        rest = &tail[len..];
    }
    Ok(elements)
}

/// The JSON header and the binary data after it: the binary tensor data extension sends the header's
/// length in `Inference-Header-Content-Length`; without it, the whole body is JSON.
fn split_body(request: &Request) -> Result<(Bytes, Bytes), String> {
    match request.header("inference-header-content-length") {
        None => Ok((request.body.clone(), Bytes::new())),
        Some(text) => {
            let len: usize = text
                .trim()
                .parse()
                .map_err(|_| format!("Inference-Header-Content-Length {text:?} is not a length"))?;
            if len > request.body.len() {
                return Err(format!(
                    "Inference-Header-Content-Length {len} is longer than the body ({} bytes)",
                    request.body.len()
                ));
            }
            Ok((request.body.slice(..len), request.body.slice(len..)))
        }
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
fn output_names(body: &Value) -> Vec<&str> {
    body["outputs"]
        .as_array()
        .map(|o| o.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default()
}

/// The outputs a request asks for (all of them when it names none), or which one it named that
/// the model does not have.
pub(crate) fn requested(m: &ServedModel, wanted: &[&str]) -> Result<Vec<OutputSpec>, String> {
    let all = outputs(m);
    if let Some(unknown) = wanted.iter().find(|w| !all.iter().any(|o| o.0 == **w)) {
        return Err(format!("unknown output {unknown:?}"));
    }
    Ok(all
        .into_iter()
        .filter(|o| wanted.is_empty() || wanted.contains(&o.0))
        .collect())
}
