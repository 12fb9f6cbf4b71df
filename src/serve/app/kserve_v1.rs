//! KServe's V1 protocol, and TorchServe's `kserve` and `json` envelopes, which give `/predictions`
//! the same bodies: `{"instances": [{"data": "<base64 image>"}, ...]}` (an instance may also be
//! `{"body": ...}`, `{"b64": ...}` or the base64 string itself; the whole may sit under `data` or
//! `body`), answered `{"predictions": [...]}`, each prediction what TorchServe's handler answers for
//! the image. Also `GET /v1/models/{name}` (readiness) and `:explain` (each instance's Integrated
//! Gradients, `explanations`).

use super::errors::{pretty, Exception};
use super::explanations;
use super::state::App;
use crate::serve::answer;
use crate::serve::batcher::Arrival;
use crate::serve::http::{Request, Response};
use crate::serve::models::ServedModel;
use crate::serve::pyjson;
use base64::Engine as _;
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// `GET /v1/models/{name}`: whether a worker is ready.
pub(super) fn ready(app: &App, name: &str) -> Response {
    match app.find(name, None) {
        Ok(m) => {
            let ready = m.workers.status().iter().any(|w| w.ready);
            pretty(&json!({"name": m.name, "ready": ready}))
        }
        Err(response) => response,
    }
}

/// `POST /v1/models/{name}:predict`.
pub(super) async fn predict(
    app: &Arc<App>,
    request: &Request,
    name: &str,
    arrival: Option<Arrival>,
) -> Response {
    match app.find(name, None) {
        Ok(m) => match instances(&request.body) {
            Ok(images) => predict_instances(app, &m, None, request, images, arrival).await,
            Err(why) => bad_request(request, &why),
        },
        Err(response) => response,
    }
}

/// `POST /v1/models/{name}:explain`.
pub(super) async fn explain(
    app: &Arc<App>,
    request: &Request,
    name: &str,
    arrival: Option<Arrival>,
) -> Response {
    match app.find(name, None) {
        Ok(m) => match instances(&request.body) {
            Ok(images) => {
                explanations::explain_instances(app, &m, None, request, images, arrival).await
            }
            Err(why) => bad_request(request, &why),
        },
        Err(response) => response,
    }
}

fn bad_request(request: &Request, why: &BadInstances) -> Response {
    super::errors::error(
        Exception::BadRequest,
        &format!("{} {}: {why}", request.method, request.path),
    )
}

/// Whether a body is a JSON object: the envelope of the `kserve` and `json` service envelopes.
pub(super) fn is_json_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// What is wrong with a V1 body.
#[derive(Debug, thiserror::Error)]
pub(super) enum BadInstances {
    #[error("the request's JSON is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the request has no \"instances\" array")]
    NoInstances,
    #[error("\"instances\" is empty")]
    Empty,
    #[error("instance {0}: expected {{\"data\": \"<base64 image>\"}}")]
    NotAnImage(usize),
    #[error("instance {0}: not base64: {1}")]
    NotBase64(usize, base64::DecodeError),
}

/// The images of a V1 body, in order.
pub(super) fn instances(body: &[u8]) -> Result<Vec<Bytes>, BadInstances> {
    let value: Value = serde_json::from_slice(body)?;
    let outer = if value.get("instances").is_some() {
        &value
    } else {
        value
            .get("data")
            .or_else(|| value.get("body"))
            .unwrap_or(&value)
    };
    let instances = outer["instances"]
        .as_array()
        .ok_or(BadInstances::NoInstances)?;
    if instances.is_empty() {
        return Err(BadInstances::Empty);
    }
    instances
        .iter()
        .enumerate()
        .map(|(i, instance)| {
            let text = match instance {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => ["data", "body", "b64"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str)),
                _ => None,
            }
            .ok_or(BadInstances::NotAnImage(i))?;
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(Bytes::from)
                .map_err(|e| BadInstances::NotBase64(i, e))
        })
        .collect()
}

/// Predicts every instance in one request (queued together) and answers `{"predictions": [...]}`
/// as TorchServe's envelope writes it.
pub(super) async fn predict_instances(
    app: &Arc<App>,
    m: &Arc<ServedModel>,
    requested: Option<&str>,
    request: &Request,
    images: Vec<Bytes>,
    arrival: Option<Arrival>,
) -> Response {
    let started = Instant::now();
    let arrival = arrival.unwrap_or_else(|| m.queue.arrival());
    let answered = async {
        let reservation = app.admit(m, images.len(), false).await?;
        let prepared = app.prepare(m, images, true).await?;
        app.infer(m, prepared, reservation, arrival).await
    }
    .await;
    app.observe(m, requested, started, &answered);
    match answered {
        Ok(answers) => {
            let predictions: Vec<Value> = answers
                .iter()
                .map(|a| answer::torchserve_value(&m.schema, &a.prediction))
                .collect();
            Response::json(
                StatusCode::OK,
                pyjson::dumps(&json!({ "predictions": predictions })),
            )
        }
        Err(failure) => failure.torchserve(&format!("{} {}", request.method, request.path), m),
    }
}
