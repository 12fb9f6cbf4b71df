//! TorchServe's `/explanations/{model}[/{version}]`: the image (a body, or the form field `data` or
//! `body`) through the model's path, explained as TorchServe's vision handlers do with Captum
//! (`IntegratedGradients(model).attribute(input, target=target, n_steps=15)`, a zero baseline),
//! towards output column `target` (the query parameter or form field `target`; 0, as TorchServe's
//! default, when absent). The answer is the attribution tensor of the model input, `[C][H][W]`
//! nested lists, as TorchServe's Python worker writes a handler's list (`json.dumps(indent=2)`).
//! KServe V1's `:explain` explains each instance so, answered `{"explanations": [...]}`.

use super::errors::Failure;
use super::state::App;
use crate::engine::model_format::ModelFormat;
use crate::records::OutputKind;
use crate::serve::batcher::{Answered, Arrival};
use crate::serve::http::{Request, Response};
use crate::serve::models::ServedModel;
use crate::serve::{multipart, pyjson};
use hyper::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Why a request cannot be explained.
#[derive(Debug, thiserror::Error)]
enum Unexplainable {
    #[error("target {0:?} is not a class index")]
    NotAClassIndex(String),
    #[error("target {target} is not an output of the model (0 to {})", columns - 1)]
    NoSuchOutput { target: usize, columns: usize },
    #[error("explanations attribute a class's output; this model's kind is \"{0}\"")]
    NotAClass(OutputKind),
    #[error("explanations need gradients, which only TorchScript models give (this is {})", .0.noun_with_article())]
    NoGradients(ModelFormat),
}

impl From<Unexplainable> for Failure {
    fn from(why: Unexplainable) -> Failure {
        Failure::BadInput(why.to_string())
    }
}

/// The output column asked for: `?target=`, or a form field `target`.
async fn target(request: &Request) -> Result<usize, Unexplainable> {
    let text = match request.query_param("target") {
        Some(t) => Some(t.to_string()),
        None => match multipart::boundary(request.header("content-type").unwrap_or("")) {
            Some(boundary) => multipart::field(request.body.clone(), &boundary, &["target"])
                .await
                .ok()
                .map(|b| String::from_utf8_lossy(&b).trim().to_string()),
            None => None,
        },
    };
    match text.as_deref() {
        None | Some("") => Ok(0),
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| Unexplainable::NotAClassIndex(t.to_string())),
    }
}

pub(super) async fn explain(
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
    let arrival = arrival.unwrap_or_else(|| model.queue.arrival());
    let columns = match explainable(&model) {
        Ok(c) => c,
        Err(why) => return Failure::from(why).torchserve(&shown, &model),
    };
    let answered = async {
        let target = target(request).await?;
        if target >= columns {
            return Err(Unexplainable::NoSuchOutput { target, columns }.into());
        }
        let image = multipart::image(request)
            .await
            .map_err(|why| Failure::BadInput(why.to_string()))?;
        let reservation = app.admit(&model, 1, version.is_some()).await?;
        let prepared = app.prepare(&model, vec![image], false).await?;
        app.run_jobs(&model, prepared, Some(target), reservation, arrival)
            .await
    }
    .await;
    app.observe(&model, version, started, &answered);
    match answered {
        Ok(answers) => Response::json(StatusCode::OK, pyjson::dumps(&nested(&model, &answers[0]))),
        Err(failure) => failure.torchserve(&shown, &model),
    }
}

/// KServe V1's `:explain` under TorchServe's envelope: every instance explained towards output 0,
/// answered `{"explanations": [...]}`.
pub(super) async fn explain_instances(
    app: &Arc<App>,
    model: &Arc<ServedModel>,
    requested: Option<&str>,
    request: &Request,
    images: Vec<bytes::Bytes>,
    arrival: Option<Arrival>,
) -> Response {
    let started = Instant::now();
    let shown = format!("{} {}", request.method, request.path);
    if let Err(why) = explainable(model) {
        return Failure::from(why).torchserve(&shown, model);
    }
    let arrival = arrival.unwrap_or_else(|| model.queue.arrival());
    let answered = async {
        let reservation = app.admit(model, images.len(), false).await?;
        let prepared = app.prepare(model, images, true).await?;
        app.run_jobs(model, prepared, Some(0), reservation, arrival)
            .await
    }
    .await;
    app.observe(model, requested, started, &answered);
    match answered {
        Ok(answers) => {
            let all: Vec<Value> = answers.iter().map(|a| nested(model, a)).collect();
            Response::json(
                StatusCode::OK,
                pyjson::dumps(&serde_json::json!({ "explanations": all })),
            )
        }
        Err(failure) => failure.torchserve(&shown, model),
    }
}

/// The output columns an explanation's target may name: a binary model's one logit, a multiclass
/// model's classes.
fn explainable(model: &ServedModel) -> Result<usize, Unexplainable> {
    if !model.format.has_gradients() {
        return Err(Unexplainable::NoGradients(model.format));
    }
    match model.schema.kind {
        OutputKind::Binary => Ok(1),
        OutputKind::Multiclass => Ok(model.schema.classes.len()),
        kind => Err(Unexplainable::NotAClass(kind)),
    }
}

/// An attribution as TorchServe's handler lists it: `[C][H][W]`.
fn nested(model: &ServedModel, answered: &Answered) -> Value {
    let attribution = answered.attribution.as_deref().unwrap_or_default();
    let [c, h, w] = model.preprocessor.input_shape();
    Value::Array(
        (0..c)
            .map(|ch| {
                Value::Array(
                    (0..h)
                        .map(|y| {
                            let row = &attribution[(ch * h + y) * w..(ch * h + y + 1) * w];
                            row.iter().map(|&v| Value::from(f64::from(v))).collect()
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}
