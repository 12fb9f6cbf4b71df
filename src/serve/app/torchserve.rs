//! TorchServe's inference API: `/ping` and `/predictions/{model}[/{version}]`, the image in the body
//! or a form field, or KServe V1's instances under the `json` and `kserve` service envelopes.

use super::errors::{pretty, Failure};
use super::kserve_v1;
use super::state::{App, Envelope};
use crate::serve::answer;
use crate::serve::batcher::Arrival;
use crate::serve::http::{Request, Response};
use crate::serve::multipart;
use hyper::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// TorchServe's health (`App::healthy`): 200 Healthy, else 500 Unhealthy.
pub(super) fn ping(app: &App) -> Response {
    if app.healthy() {
        pretty(&json!({"status": "Healthy"}))
    } else {
        let mut response = pretty(&json!({"status": "Unhealthy"}));
        response.status = StatusCode::INTERNAL_SERVER_ERROR;
        response
    }
}

pub(super) async fn predict(
    app: &Arc<App>,
    request: &Request,
    name: &str,
    version: Option<&str>,
    arrival: Option<Arrival>,
) -> Response {
    let started = Instant::now();
    let model = match app.find(name, version) {
        Ok(m) => m,
        Err(response) => return response,
    };
    let shown = format!("{} {}", request.method, request.path);
    // Under the json and kserve envelopes a JSON object is the envelope (no image starts with
    // `{`); anything else is the image itself.
    if app.envelope == Envelope::Instances && kserve_v1::is_json_object(&request.body) {
        return match kserve_v1::instances(&request.body) {
            Ok(images) => {
                kserve_v1::predict_instances(app, &model, version, request, images, arrival).await
            }
            Err(why) => Failure::BadInput(why.to_string()).torchserve(&shown, &model),
        };
    }
    let arrival = arrival.unwrap_or_else(|| model.queue.arrival());
    let answered = match multipart::image(request).await {
        Ok(image) => app
            .predict_image(&model, image, arrival, version.is_some())
            .await
            .map(|answered| vec![answered]),
        Err(why) => Err(Failure::BadInput(why.to_string())),
    };
    app.observe(&model, version, started, &answered);
    let answered = match answered {
        Ok(mut answers) => answers.remove(0),
        Err(failure) => return failure.torchserve(&shown, &model),
    };
    let details = request
        .query_param("details")
        .is_some_and(|v| v != "false" && v != "0");
    if details {
        Response::json(
            StatusCode::OK,
            answer::detailed(&model.schema, &answered.prediction),
        )
    } else {
        // TorchServe sends a handler's answer without a Content-Type; it is always JSON, and
        // clients (and proxies that sniff) do better when told so.
        Response::json(
            StatusCode::OK,
            answer::torchserve(&model.schema, &answered.prediction),
        )
    }
}
