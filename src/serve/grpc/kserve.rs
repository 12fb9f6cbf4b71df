//! KServe V2's gRPC inference service (`inference.GRPCInferenceService`, what tritonclient.grpc and
//! KServe call): health, metadata and `ModelInfer` with `raw_input_contents` or typed contents,
//! answered through the same checks and path as V2 over REST, with `raw_output_contents`.

use super::credentials::authorize;
use super::proto::inference::grpc_inference_service_server::GrpcInferenceService;
use super::proto::inference::model_infer_response::InferOutputTensor;
use super::proto::inference::model_metadata_response::TensorMetadata;
use super::proto::inference::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    ModelReadyRequest, ModelReadyResponse, ServerLiveRequest, ServerLiveResponse,
    ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};
use crate::serve::app::kserve::{self as v2, BadTensor, Data, Tensor};
use crate::serve::app::{App, Failure};
use crate::serve::auth::Endpoint;
use crate::serve::models::ServedModel;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

pub(crate) struct KServe(pub(crate) Arc<App>);

impl KServe {
    /// The model a call names (an empty version: the first one served).
    fn model(&self, name: &str, version: &str) -> Result<Arc<ServedModel>, Status> {
        let version = (!version.is_empty()).then_some(version);
        self.0.find(name, version).map_err(|_| {
            let shown = version.map_or_else(
                || format!("model {name:?}"),
                |v| format!("model {name:?} version {v:?}"),
            );
            Status::not_found(format!("{shown} is not served here"))
        })
    }
}

/// The call's one input tensor, its values from `raw_input_contents` or its typed contents.
fn tensor(asked: &mut ModelInferRequest) -> Result<Tensor, BadTensor> {
    let [input] = asked.inputs.as_mut_slice() else {
        return Err(BadTensor::InputCount(asked.inputs.len()));
    };
    let shape = input
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| BadTensor::NegativeShape)?;
    let data = match asked.raw_input_contents.as_mut_slice() {
        [raw] => Data::Raw(std::mem::take(raw)),
        [] => {
            let contents = input.contents.take().unwrap_or_default();
            if input.datatype == "BYTES" {
                Data::Elements(contents.bytes_contents)
            } else {
                Data::Fp32(contents.fp32_contents)
            }
        }
        more => return Err(BadTensor::RawContents(more.len())),
    };
    Ok(Tensor {
        name: std::mem::take(&mut input.name),
        datatype: std::mem::take(&mut input.datatype),
        shape,
        data,
    })
}

#[tonic::async_trait]
impl GrpcInferenceService for KServe {
    async fn server_live(
        &self,
        request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        authorize(&self.0, &request, Endpoint::Health)?;
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        authorize(&self.0, &request, Endpoint::Health)?;
        // The models are loaded before the server listens.
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        authorize(&self.0, &request, Endpoint::Api)?;
        let asked = request.into_inner();
        let m = self.model(&asked.name, &asked.version)?;
        let ready = m.workers.status().iter().any(|w| w.ready);
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        authorize(&self.0, &request, Endpoint::Api)?;
        Ok(Response::new(ServerMetadataResponse {
            name: "scancer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: Vec::new(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        authorize(&self.0, &request, Endpoint::Api)?;
        let asked = request.into_inner();
        let app = &self.0;
        let m = self.model(&asked.name, &asked.version)?;
        let [c, h, w] = m.input_shape;
        Ok(Response::new(ModelMetadataResponse {
            name: m.name.clone(),
            versions: v2::versions(app, &m),
            platform: m.format.platform().into(),
            inputs: vec![TensorMetadata {
                name: v2::INPUT.into(),
                datatype: "FP32".into(),
                shape: vec![-1, c as i64, h as i64, w as i64],
            }],
            outputs: v2::outputs(&m)
                .into_iter()
                .map(|(name, datatype, shape)| TensorMetadata {
                    name: name.into(),
                    datatype: datatype.into(),
                    shape,
                })
                .collect(),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let app = &self.0;
        authorize(app, &request, Endpoint::Api)?;
        let started = Instant::now();
        let mut asked = request.into_inner();
        let m = self.model(&asked.model_name, &asked.model_version)?;
        let arrival = m.queue.arrival();
        let shape = m.input_shape;
        let wanted: Vec<&str> = asked.outputs.iter().map(|o| o.name.as_str()).collect();
        // An unknown output is refused before any work is done for the call.
        let chosen = v2::requested(&m, &wanted);
        let answered = match (tensor(&mut asked), &chosen) {
            (_, Err(why)) => Err(Failure::BadInput(why.to_string())),
            (Ok(tensor), Ok(_)) => match app.off_thread(move || v2::input(shape, tensor)).await {
                Ok(Ok(input)) => v2::run(app, &m, input, arrival).await,
                Ok(Err(why)) => Err(Failure::BadInput(why.to_string())),
                Err(failure) => Err(failure),
            },
            (Err(why), Ok(_)) => Err(Failure::BadInput(why.to_string())),
        };
        let requested = (!asked.model_version.is_empty()).then_some(asked.model_version.as_str());
        app.observe(&m, requested, started, &answered);
        let answers = answered.map_err(Failure::kserve_grpc)?;
        let chosen = chosen.unwrap_or_default();
        let mut outputs = Vec::new();
        let mut raw = Vec::new();
        for (name, datatype, mut shape) in chosen {
            shape[0] = answers.len() as i64;
            raw.push(v2::output_bytes(name, &answers).into());
            outputs.push(InferOutputTensor {
                name: name.into(),
                datatype: datatype.into(),
                shape,
                ..Default::default()
            });
        }
        Ok(Response::new(ModelInferResponse {
            model_name: m.name.clone(),
            model_version: m.version.clone(),
            id: asked.id,
            outputs,
            raw_output_contents: raw,
            ..Default::default()
        }))
    }
}
