//! TorchServe's `/explanations/{model}[/{version}]`: the image (a body, or the form field `data` or
//! `body`) through the model's path, explained as TorchServe's vision handlers do with Captum
//! (`IntegratedGradients(model).attribute(input, target=target, n_steps=15)`, a zero baseline),
//! towards output column `target` (the query parameter or form field `target`; 0, as TorchServe's
//! default, when absent). The answer is the attribution tensor of the model input, `[C][H][W]`
//! nested lists, as TorchServe's Python worker writes a handler's list (`json.dumps(indent=2)`).
//! KServe V1's `:explain` explains each instance so, answered `{"explanations": [...]}`.

use super::{image_bytes, pyjson, App, Failure};
use crate::records::OutputKind;
use crate::serve::batcher::Answered;
use crate::serve::http::{Request, Response};
use crate::serve::models::ServedModel;
use crate::serve::multipart;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// The output column asked for: `?target=`, or a form field `target`.
async fn target(request: &Request) -> Result<usize, String> {
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
            .map_err(|_| format!("target {t:?} is not a class index")),
    }
}

pub(super) async fn explain(
    app: &Arc<App>,
    request: &Request,
    name: &str,
    version: Option<&str>,
) -> Response {
    let started = Instant::now();
    let model = match app.find(name, version) {
        Ok(m) => m,
        Err(response) => return response,
    };
    let shown = format!("{} {}", request.method, request.path);
    let arrival = model.queue.arrival();
    let columns = match explainable(&model) {
        Ok(c) => c,
        Err(why) => return app.failure(&shown, &model, Failure::BadInput(why)),
    };
    let answered = async {
        let target = target(request).await.map_err(Failure::BadInput)?;
        if target >= columns {
            return Err(Failure::BadInput(format!(
                "target {target} is not an output of the model (0 to {})",
                columns - 1
            )));
        }
        let image = image_bytes(request).await.map_err(Failure::BadInput)?;
        let reservation = app.admit(&model, 1, version.is_some()).await?;
        let prepared = app.prepare(&model, vec![image], false).await?;
        app.run_jobs(&model, prepared, Some(target), reservation, arrival)
            .await
    }
    .await;
    app.observe(&model, started, &answered);
    match answered {
        Ok(answers) => Response::new(
            200,
            crate::serve::http::JSON,
            pyjson::dumps(&nested(&model, &answers[0])),
        ),
        Err(failure) => app.failure(&shown, &model, failure),
    }
}

/// KServe V1's `:explain` under TorchServe's envelope: every instance explained towards output 0,
/// answered `{"explanations": [...]}`.
pub(super) async fn explain_instances(
    app: &Arc<App>,
    model: &Arc<ServedModel>,
    request: &Request,
    images: Vec<bytes::Bytes>,
) -> Response {
    let started = Instant::now();
    let shown = format!("{} {}", request.method, request.path);
    if let Err(why) = explainable(model) {
        return app.failure(&shown, model, Failure::BadInput(why));
    }
    let arrival = model.queue.arrival();
    let answered = async {
        let reservation = app.admit(model, images.len(), false).await?;
        let prepared = app.prepare(model, images, true).await?;
        app.run_jobs(model, prepared, Some(0), reservation, arrival)
            .await
    }
    .await;
    app.observe(model, started, &answered);
    match answered {
        Ok(answers) => {
            let all: Vec<Value> = answers.iter().map(|a| nested(model, a)).collect();
            Response::new(
                200,
                crate::serve::http::JSON,
                pyjson::dumps(&serde_json::json!({ "explanations": all })),
            )
        }
        Err(failure) => app.failure(&shown, model, failure),
    }
}

/// The output columns an explanation's target may name: a binary model's one logit, a multiclass
/// model's classes.
fn explainable(model: &ServedModel) -> Result<usize, String> {
    match model.schema.kind {
        OutputKind::Binary => Ok(1),
        OutputKind::Multiclass => Ok(model.schema.classes.len()),
        kind => Err(format!(
            "explanations attribute a class's output; this model's kind is \"{kind}\""
        )),
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
