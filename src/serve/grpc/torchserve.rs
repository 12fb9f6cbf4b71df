//! TorchServe's gRPC inference API: `Ping`, and `Predictions` (and its one-answer stream, and
//! `StreamPredictions2`'s stream of them) with the image in `input["data"]` or `input["body"]`,
//! answered with the bytes `/predictions` answers.

use super::credentials::authorize;
use super::proto::google::rpc::Status as RpcStatus;
use super::proto::torchserve::inference_ap_is_service_server::InferenceApIsService;
use super::proto::torchserve::{PredictionResponse, PredictionsRequest, TorchServeHealthResponse};
use crate::serve::answer;
use crate::serve::app::{App, Failure};
use crate::serve::auth::Endpoint;
use crate::serve::pyjson;
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

pub(crate) struct TorchServe(pub(crate) Arc<App>);

impl TorchServe {
    async fn predict(
        &self,
        request: Request<PredictionsRequest>,
    ) -> Result<PredictionResponse, Status> {
        authorize(&self.0, &request, Endpoint::Api)?;
        predict(&self.0, request.into_inner()).await
    }
}

/// One prediction, its credentials already checked.
async fn predict(app: &Arc<App>, asked: PredictionsRequest) -> Result<PredictionResponse, Status> {
    let started = Instant::now();
    let name = asked.model_name.as_str();
    let version = (!asked.model_version.is_empty()).then_some(asked.model_version.as_str());
    let m = app
        .lookup(name, version)
        .map_err(|missing| Status::not_found(missing.message))?;
    let arrival = m.queue.arrival();
    let answered = match asked.input.get("data").or_else(|| asked.input.get("body")) {
        Some(image) if !image.is_empty() => app
            .predict_image(&m, image.clone(), arrival, version.is_some())
            .await
            .map(|answered| vec![answered]),
        Some(_) => Err(Failure::BadInput(
            "the request has no image (empty input)".into(),
        )),
        None => {
            let mut keys: Vec<&String> = asked.input.keys().collect();
            keys.sort();
            Err(Failure::BadInput(format!(
                "the request's input has no key data or body (keys: {keys:?})"
            )))
        }
    };
    app.observe(&m, version, started, &answered);
    match answered {
        Ok(answers) => Ok(PredictionResponse {
            prediction: answer::torchserve(&m.schema, &answers[0].prediction).into(),
            sequence_id: asked.sequence_id,
            status: None,
        }),
        Err(failure) => Err(failure.torchserve_grpc(&format!("Predictions {name}"), &m)),
    }
}

#[tonic::async_trait]
impl InferenceApIsService for TorchServe {
    async fn ping(
        &self,
        request: Request<()>,
    ) -> Result<Response<TorchServeHealthResponse>, Status> {
        authorize(&self.0, &request, Endpoint::Health)?;
        Ok(Response::new(TorchServeHealthResponse {
            health: pyjson::dumps(&serde_json::json!({
                "status": if self.0.healthy() { "Healthy" } else { "Unhealthy" }
            })),
        }))
    }

    async fn predictions(
        &self,
        request: Request<PredictionsRequest>,
    ) -> Result<Response<PredictionResponse>, Status> {
        self.predict(request).await.map(Response::new)
    }

    type StreamPredictionsStream = tokio_stream::Once<Result<PredictionResponse, Status>>;

    async fn stream_predictions(
        &self,
        request: Request<PredictionsRequest>,
    ) -> Result<Response<Self::StreamPredictionsStream>, Status> {
        let answer = self.predict(request).await;
        Ok(Response::new(tokio_stream::once(answer)))
    }

    type StreamPredictions2Stream =
        Pin<Box<dyn Stream<Item = Result<PredictionResponse, Status>> + Send>>;

    /// Each request answered in turn, on the stream: a failed one with its status (and the stream
    /// goes on), each with its sequence_id, or `ts-seq-<uuid>` when it has none (as TorchServe).
    async fn stream_predictions2(
        &self,
        request: Request<tonic::Streaming<PredictionsRequest>>,
    ) -> Result<Response<Self::StreamPredictions2Stream>, Status> {
        authorize(&self.0, &request, Endpoint::Api)?;
        let app = Arc::clone(&self.0);
        let answers = request.into_inner().then(move |asked| {
            let app = Arc::clone(&app);
            async move {
                let mut asked = asked?;
                if asked.sequence_id.is_empty() {
                    asked.sequence_id = format!("ts-seq-{}", crate::serve::ids::uuid4());
                }
                let sequence_id = asked.sequence_id.clone();
                Ok(predict(&app, asked)
                    .await
                    .unwrap_or_else(|status| PredictionResponse {
                        prediction: Default::default(),
                        sequence_id,
                        status: Some(RpcStatus {
                            code: status.code() as i32,
                            message: status.message().to_string(),
                            details: Vec::new(),
                        }),
                    }))
            }
        });
        Ok(Response::new(Box::pin(answers)))
    }
}
