//! KServe's V1 protocol, and TorchServe's `kserve` and `json` envelopes, which give `/predictions`
//! the same bodies: `{"instances": [{"data": "<base64 image>"}, ...]}` (an instance may also be
//! `{"body": ...}`, `{"b64": ...}` or the base64 string itself; the whole may sit under `data` or
//! `body`), answered `{"predictions": [...]}`, each prediction what TorchServe's handler answers for
//! the image. Also `GET /v1/models/{name}` (readiness) and `:explain` (each instance's Integrated
//! Gradients, `explanations`).

use super::{error, not_found, pretty, App};
use crate::serve::answer;
use crate::serve::batcher::Arrival;
use crate::serve::http::{Request, Response, JSON};
use crate::serve::models::ServedModel;
use crate::serve::pyjson;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// `segments` follow `/v1`.
pub(crate) async fn handle(
    app: &Arc<App>,
    request: &Request,
    segments: &[&str],
    arrival: Option<Arrival>,
) -> Response {
    let ["models", target] = segments else {
        return not_found();
    };
    let (name, verb) = target.split_once(':').unwrap_or((target, ""));
    match (request.method.as_str(), verb) {
        ("GET", "") => match app.find(name, None) {
            Ok(m) => {
                let ready = m.workers.status().iter().any(|w| w.ready);
                pretty(&json!({"name": m.name, "ready": ready}))
            }
            Err(response) => response,
        },
        ("POST", "predict") => match app.find(name, None) {
            Ok(m) => match instances(&request.body) {
                Ok(images) => predict(app, &m, request, images, arrival).await,
                Err(why) => bad_request(request, &why),
            },
            Err(response) => response,
        },
        ("POST", "explain") => match app.find(name, None) {
            Ok(m) => match instances(&request.body) {
                Ok(images) => {
                    super::explanations::explain_instances(app, &m, request, images).await
                }
                Err(why) => bad_request(request, &why),
            },
            Err(response) => response,
        },
        (_, "" | "predict" | "explain") => super::method_not_allowed(),
        _ => not_found(),
    }
}

fn bad_request(request: &Request, why: &str) -> Response {
    error(
        400,
        "BadRequestException",
        &format!("{} {}: {why}", request.method, request.path),
    )
}

/// Whether a body is a JSON object: the envelope of the `kserve` and `json` service envelopes.
pub(crate) fn is_json_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The images of a V1 body, in order.
pub(crate) fn instances(body: &[u8]) -> Result<Vec<Bytes>, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the request's JSON is not valid: {e}"))?;
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
        .ok_or("the request has no \"instances\" array")?;
    if instances.is_empty() {
        return Err("\"instances\" is empty".into());
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
            .ok_or(format!(
                "instance {i}: expected {{\"data\": \"<base64 image>\"}}"
            ))?;
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(Bytes::from)
                .map_err(|e| format!("instance {i}: not base64: {e}"))
        })
        .collect()
}

/// Predicts every instance in one request (queued together) and answers `{"predictions": [...]}`
/// as TorchServe's envelope writes it.
pub(crate) async fn predict(
    app: &Arc<App>,
    m: &Arc<ServedModel>,
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
    app.observe(m, started, &answered);
    match answered {
        Ok(answers) => {
            let predictions: Vec<Value> = answers
                .iter()
                .map(|a| answer::torchserve_value(&m.schema, &a.prediction))
                .collect();
            Response::new(
                200,
                JSON,
                pyjson::dumps(&json!({ "predictions": predictions })),
            )
        }
        Err(failure) => app.failure(&format!("{} {}", request.method, request.path), m, failure),
    }
}
