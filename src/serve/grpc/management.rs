//! TorchServe's gRPC management API (its port 7071): each call is made the REST request it stands
//! for and answered by the same routing table and handlers, so the rules, the credentials (the
//! management key, Basic credentials) and the answers are the REST API's. The answer's body is
//! `msg`; an error gets the gRPC code TorchServe gives its HTTP status, and its message.

use super::proto::management::management_ap_is_service_server::ManagementApIsService;
use super::proto::management::{
    DescribeModelRequest, ListModelsRequest, ManagementResponse, RegisterModelRequest,
    ScaleWorkerRequest, SetDefaultRequest, UnregisterModelRequest,
};
use crate::serve::app::{App, Roles, Route};
use crate::serve::http;
use hyper::Method;
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

pub(crate) struct Management(pub(crate) Arc<App>);

type Answer = Result<Response<ManagementResponse>, Status>;

impl Management {
    /// `method /models/segments...?query` through the REST API, with the call's credentials.
    async fn rest<T>(
        &self,
        call: &Request<T>,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Answer {
        if let Some(bad) = segments.iter().find(|s| s.contains('/')) {
            return Err(Status::invalid_argument(format!(
                "{bad:?} is not a model name or version"
            )));
        }
        let mut path = String::from("/models");
        for segment in segments {
            path.push('/');
            path.push_str(segment);
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let headers = call
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(|v| vec![("authorization".to_string(), v.to_string())])
            .unwrap_or_default();
        let roles = Roles {
            management: true,
            ..Roles::default()
        };
        let route = Route::parse(&method, &path, roles);
        let request = http::Request {
            method: method.clone(),
            path: path.clone(),
            query,
            headers,
            body: bytes::Bytes::new(),
        };
        grpc_answer(self.0.handle(request, &route, None).await)
    }
}

/// The REST answer as gRPC, as TorchServe 0.12 gives it: a success's `msg` is the body (list,
/// describe), or just the status text of a `{"status": ...}` body (register, scale, set-default,
/// unregister); an error is TorchServe's code for its status (a refused key or credentials, and
/// the model API being off, are PERMISSION_DENIED), with the REST message.
fn grpc_answer(answer: http::Response) -> Answer {
    let body = String::from_utf8_lossy(&answer.body).trim_end().to_string();
    if answer.status.is_success() {
        let status = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| match v.as_object() {
                Some(o) if o.len() == 1 => o.get("status")?.as_str().map(str::to_string),
                _ => None,
            });
        return Ok(Response::new(ManagementResponse {
            msg: status.unwrap_or(body),
        }));
    }
    let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    let kind = parsed
        .as_ref()
        .and_then(|v| v["type"].as_str())
        .unwrap_or_default();
    let message = parsed
        .as_ref()
        .and_then(|v| v["message"].as_str())
        .map_or_else(|| body.clone(), str::to_string);
    let status = answer.status.as_u16();
    let code = match status {
        400 if kind == "InvalidKeyException" => Code::PermissionDenied,
        400 => Code::InvalidArgument,
        401 | 403 | 405 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::Aborted,
        413 | 429 => Code::ResourceExhausted,
        416 => Code::OutOfRange,
        499 => Code::Cancelled,
        501 => Code::Unimplemented,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ if (400..500).contains(&status) => Code::FailedPrecondition,
        _ => Code::Internal,
    };
    Err(Status::new(code, message))
}

/// A number the call gave: proto3's 0 is "not given" (TorchServe's gRPC takes its default then).
fn given(value: i32) -> Option<String> {
    (value != 0).then(|| value.to_string())
}

/// A text the call gave ("" is not given).
fn text(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

fn query<'a>(pairs: &[(&'a str, Option<String>)]) -> Vec<(&'a str, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (*k, v)))
        .collect()
}

/// `[name]` or `[name, version]`.
fn model<'a>(name: &'a str, version: &'a str) -> Vec<&'a str> {
    if version.is_empty() {
        vec![name]
    } else {
        vec![name, version]
    }
}

#[tonic::async_trait]
impl ManagementApIsService for Management {
    async fn describe_model(&self, call: Request<DescribeModelRequest>) -> Answer {
        let asked = call.get_ref();
        let customized = query(&[("customized", asked.customized.then(|| "true".into()))]);
        let segments = model(&asked.model_name, &asked.model_version);
        self.rest(&call, Method::GET, &segments, &customized).await
    }

    async fn list_models(&self, call: Request<ListModelsRequest>) -> Answer {
        let asked = call.get_ref();
        // As given, 0 included: TorchServe's gRPC answers limit 0 with an empty page.
        let paging = [
            ("limit", asked.limit.to_string()),
            ("next_page_token", asked.next_page_token.to_string()),
        ];
        self.rest(&call, Method::GET, &[], &paging).await
    }

    async fn register_model(&self, call: Request<RegisterModelRequest>) -> Answer {
        let asked = call.get_ref();
        let params = query(&[
            ("url", text(&asked.url)),
            ("model_name", text(&asked.model_name)),
            ("handler", text(&asked.handler)),
            ("runtime", text(&asked.runtime)),
            ("batch_size", given(asked.batch_size)),
            ("max_batch_delay", given(asked.max_batch_delay)),
            ("initial_workers", given(asked.initial_workers)),
            ("response_timeout", given(asked.response_timeout)),
            ("synchronous", Some(asked.synchronous.to_string())),
        ]);
        self.rest(&call, Method::POST, &[], &params).await
    }

    async fn scale_worker(&self, call: Request<ScaleWorkerRequest>) -> Answer {
        let asked = call.get_ref();
        let params = query(&[
            ("min_worker", given(asked.min_worker)),
            ("max_worker", given(asked.max_worker)),
            ("synchronous", Some(asked.synchronous.to_string())),
        ]);
        let segments = model(&asked.model_name, &asked.model_version);
        self.rest(&call, Method::PUT, &segments, &params).await
    }

    async fn set_default(&self, call: Request<SetDefaultRequest>) -> Answer {
        let asked = call.get_ref();
        let segments = [
            asked.model_name.as_str(),
            asked.model_version.as_str(),
            "set-default",
        ];
        self.rest(&call, Method::PUT, &segments, &[]).await
    }

    async fn unregister_model(&self, call: Request<UnregisterModelRequest>) -> Answer {
        let asked = call.get_ref();
        let segments = model(&asked.model_name, &asked.model_version);
        self.rest(&call, Method::DELETE, &segments, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;

    fn refused(status: u16, kind: &str) -> Code {
        let body = format!("{{\"code\": {status}, \"type\": \"{kind}\", \"message\": \"why\"}}\n");
        let answer = http::Response::json(StatusCode::from_u16(status).unwrap(), body);
        let status = grpc_answer(answer).unwrap_err();
        assert_eq!(status.message(), "why");
        status.code()
    }

    #[test]
    fn statuses_map_as_torchserve_maps_them() {
        assert_eq!(refused(404, "ModelNotFoundException"), Code::NotFound);
        assert_eq!(refused(400, "BadRequestException"), Code::InvalidArgument);
        assert_eq!(refused(400, "InvalidKeyException"), Code::PermissionDenied);
        assert_eq!(
            refused(405, "MethodNotAllowedException"),
            Code::PermissionDenied
        );
        assert_eq!(refused(409, "ConflictStatusException"), Code::Aborted);
        assert_eq!(refused(500, "InternalServerException"), Code::Internal);
        let ok = grpc_answer(http::Response::json(
            StatusCode::ACCEPTED,
            "{}\n".to_string(),
        ))
        .unwrap();
        assert_eq!(ok.get_ref().msg, "{}");
        let status = "{\n  \"status\": \"Model \\\"pcam\\\" unregistered\"\n}\n";
        let ok = grpc_answer(http::Response::json(StatusCode::OK, status.to_string())).unwrap();
        assert_eq!(ok.get_ref().msg, "Model \"pcam\" unregistered");
    }
}
