//! The error answers: TorchServe's exceptions (one name, one HTTP status, one gRPC code each) and
//! their body, KServe V2's `{"error": ...}`, the refusals of requests no endpoint answers, and a
//! failed prediction mapped once to each protocol.

use crate::serve::batcher::JobError;
use crate::serve::http::Response;
use crate::serve::metrics::Rejection;
use crate::serve::model_store::{Unresolvable, Unresolved};
use crate::serve::models::ServedModel;
use crate::serve::pyjson;
use crate::serve::registry::{Missing, MissingKind};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// The exceptions TorchServe names in its error bodies (`"type"`), each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exception {
    BadRequest,
    /// A token authorization key is missing, wrong or expired.
    InvalidKey,
    DownloadArchive,
    InvalidModel,
    Authentication,
    /// The default version of a name that has others cannot be removed.
    InvalidModelVersion,
    ModelNotFound,
    ModelVersionNotFound,
    ResourceNotFound,
    MethodNotAllowed,
    RequestTimeout,
    ConflictStatus,
    RequestEntityTooLarge,
    /// A slide that cannot be read or drawn (scancer's slide API).
    Unprocessable,
    /// The disk is full (scancer's slide API).
    InsufficientStorage,
    InternalServer,
    ServiceUnavailable,
}

impl Exception {
    /// The name TorchServe's bodies give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Exception::BadRequest => "BadRequestException",
            Exception::InvalidKey => "InvalidKeyException",
            Exception::DownloadArchive => "DownloadArchiveException",
            Exception::InvalidModel => "InvalidModelException",
            Exception::Authentication => "AuthenticationException",
            Exception::InvalidModelVersion => "InvalidModelVersionException",
            Exception::ModelNotFound => "ModelNotFoundException",
            Exception::ModelVersionNotFound => "ModelVersionNotFoundException",
            Exception::ResourceNotFound => "ResourceNotFoundException",
            Exception::MethodNotAllowed => "MethodNotAllowedException",
            Exception::RequestTimeout => "RequestTimeoutException",
            Exception::ConflictStatus => "ConflictStatusException",
            Exception::RequestEntityTooLarge => "RequestEntityTooLargeException",
            Exception::Unprocessable => "UnprocessableEntityException",
            Exception::InsufficientStorage => "InsufficientStorageException",
            Exception::InternalServer => "InternalServerException",
            Exception::ServiceUnavailable => "ServiceUnavailableException",
        }
    }

    pub(crate) fn status(self) -> StatusCode {
        match self {
            Exception::BadRequest
            | Exception::InvalidKey
            | Exception::DownloadArchive
            | Exception::InvalidModel => StatusCode::BAD_REQUEST,
            Exception::Authentication => StatusCode::UNAUTHORIZED,
            Exception::InvalidModelVersion => StatusCode::FORBIDDEN,
            Exception::ModelNotFound
            | Exception::ModelVersionNotFound
            | Exception::ResourceNotFound => StatusCode::NOT_FOUND,
            Exception::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Exception::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Exception::ConflictStatus => StatusCode::CONFLICT,
            Exception::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Exception::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Exception::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Exception::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
            Exception::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC code of the same failure.
    pub(crate) fn grpc_code(self) -> tonic::Code {
        match self {
            Exception::BadRequest
            | Exception::InvalidKey
            | Exception::DownloadArchive
            | Exception::InvalidModel
            | Exception::RequestEntityTooLarge
            | Exception::Unprocessable => tonic::Code::InvalidArgument,
            Exception::Authentication => tonic::Code::Unauthenticated,
            Exception::ModelNotFound
            | Exception::ModelVersionNotFound
            | Exception::ResourceNotFound => tonic::Code::NotFound,
            Exception::ServiceUnavailable => tonic::Code::Unavailable,
            Exception::InsufficientStorage => tonic::Code::ResourceExhausted,
            Exception::InvalidModelVersion
            | Exception::MethodNotAllowed
            | Exception::RequestTimeout
            | Exception::ConflictStatus
            | Exception::InternalServer => tonic::Code::Internal,
        }
    }
}

impl From<&Missing> for Exception {
    fn from(missing: &Missing) -> Exception {
        match missing.kind {
            MissingKind::Model => Exception::ModelNotFound,
            MissingKind::Version => Exception::ModelVersionNotFound,
        }
    }
}

impl From<&Unresolved> for Exception {
    fn from(unresolved: &Unresolved) -> Exception {
        match unresolved.kind {
            Unresolvable::NotFound => Exception::ModelNotFound,
            Unresolvable::Download => Exception::DownloadArchive,
            Unresolvable::Exists => Exception::InternalServer,
        }
    }
}

/// TorchServe's JSON bodies (statuses and errors): pretty, with a trailing newline.
pub(crate) fn pretty(value: &Value) -> Response {
    Response::json(StatusCode::OK, format!("{}\n", pyjson::dumps(value)))
}

/// TorchServe's error body.
pub(crate) fn error(exception: Exception, message: &str) -> Response {
    let status = exception.status();
    let body = json!({"code": status.as_u16(), "type": exception.name(), "message": message});
    Response::json(status, format!("{}\n", pyjson::dumps(&body)))
}

/// A registry miss as TorchServe answers it.
pub(crate) fn missing(missing: &Missing) -> Response {
    error(missing.into(), &missing.message)
}

/// An error as KServe V2 clients read it: `{"error": message}`.
pub(crate) fn kserve_error(status: StatusCode, message: &str) -> Response {
    Response::json(status, format!("{}\n", json!({ "error": message })))
}

/// TorchServe's answer where no endpoint is.
pub(crate) fn not_found() -> Response {
    error(
        Exception::ResourceNotFound,
        "Requested resource is not found, please refer to API document.",
    )
}

/// TorchServe's answer to a method its endpoint does not take.
pub(crate) fn method_not_allowed() -> Response {
    error(
        Exception::MethodNotAllowed,
        "Requested method is not allowed, please refer to API document.",
    )
}

/// KServe V2's answer where no endpoint is.
pub(crate) fn kserve_not_found(path: &str) -> Response {
    kserve_error(
        StatusCode::NOT_FOUND,
        &format!("{path} is not a KServe V2 endpoint"),
    )
}

/// KServe V2's answer to a method its endpoint does not take.
pub(crate) fn kserve_method_not_allowed(method: &Method, path: &str) -> Response {
    kserve_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("{method} is not allowed on {path}"),
    )
}

/// The answer refusing a request before the application reads it: V2-shaped under `/v2` (V2
/// clients such as tritonclient read errors as `{"error": ...}`), TorchServe's shape elsewhere.
pub(crate) fn refusal(path: &str, exception: Exception, message: &str) -> Response {
    if path == "/v2" || path.starts_with("/v2/") {
        kserve_error(exception.status(), message)
    } else {
        error(exception, message)
    }
}

/// A prediction failed for a reason the client can act on, or did not get an answer.
#[derive(Debug)]
pub(crate) enum Failure {
    BadInput(String),
    QueueFull,
    ShuttingDown,
    /// The version has no worker (scaled to 0): TorchServe's message.
    NoWorker(String),
    /// The version was unregistered before the request reached its queue.
    Unregistered(Missing),
    Internal(String),
}

impl From<JobError> for Failure {
    fn from(e: JobError) -> Failure {
        match e {
            JobError::Model(why) => Failure::Internal(why),
            JobError::NoWorker(why) => Failure::NoWorker(why),
        }
    }
}

impl Failure {
    /// How the metrics count it.
    pub(crate) fn rejection(&self) -> Rejection {
        match self {
            Failure::BadInput(_) => Rejection::BadInput,
            Failure::QueueFull => Rejection::QueueFull,
            Failure::ShuttingDown => Rejection::ShuttingDown,
            Failure::NoWorker(_) => Rejection::NoWorker,
            Failure::Unregistered(_) => Rejection::BadInput,
            Failure::Internal(_) => Rejection::Internal,
        }
    }

    /// The exception it is, whatever the protocol: its HTTP status and gRPC code.
    pub(crate) fn exception(&self) -> Exception {
        match self {
            Failure::BadInput(_) => Exception::BadRequest,
            Failure::QueueFull | Failure::ShuttingDown | Failure::NoWorker(_) => {
                Exception::ServiceUnavailable
            }
            Failure::Unregistered(missing) => missing.into(),
            Failure::Internal(_) => Exception::InternalServer,
        }
    }

    /// TorchServe's message; `shown` names the request (`POST /predictions/pcam`).
    fn torchserve_message(self, shown: &str, model: &ServedModel) -> String {
        match self {
            Failure::BadInput(why) | Failure::Internal(why) => format!("{shown}: {why}"),
            Failure::QueueFull => format!(
                "Model \"{}\" has too many pending requests ({} queued); retry later",
                model.name,
                model.queue.capacity()
            ),
            Failure::ShuttingDown => "The server is shutting down".into(),
            Failure::NoWorker(message) => message,
            Failure::Unregistered(missing) => missing.message,
        }
    }

    /// KServe V2's message.
    fn kserve_message(self) -> String {
        match self {
            Failure::BadInput(why) | Failure::Internal(why) | Failure::NoWorker(why) => why,
            Failure::QueueFull => "too many pending requests; retry later".into(),
            Failure::ShuttingDown => "the server is shutting down".into(),
            Failure::Unregistered(missing) => missing.message,
        }
    }

    /// TorchServe's answer.
    pub(crate) fn torchserve(self, shown: &str, model: &ServedModel) -> Response {
        let exception = self.exception();
        error(exception, &self.torchserve_message(shown, model))
    }

    /// KServe V2's answer.
    pub(crate) fn kserve(self) -> Response {
        let status = self.exception().status();
        kserve_error(status, &self.kserve_message())
    }

    /// TorchServe's gRPC answer: its code, and the message its HTTP answer gives.
    pub(crate) fn torchserve_grpc(self, shown: &str, model: &ServedModel) -> tonic::Status {
        let code = self.exception().grpc_code();
        tonic::Status::new(code, self.torchserve_message(shown, model))
    }

    /// KServe V2's gRPC answer: its code, and the message its REST answer gives.
    pub(crate) fn kserve_grpc(self) -> tonic::Status {
        let code = self.exception().grpc_code();
        tonic::Status::new(code, self.kserve_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_exception_keeps_its_status_and_code() {
        let table = [
            (Exception::BadRequest, 400, tonic::Code::InvalidArgument),
            (Exception::InvalidKey, 400, tonic::Code::InvalidArgument),
            (
                Exception::DownloadArchive,
                400,
                tonic::Code::InvalidArgument,
            ),
            (Exception::InvalidModel, 400, tonic::Code::InvalidArgument),
            (Exception::Authentication, 401, tonic::Code::Unauthenticated),
            (Exception::InvalidModelVersion, 403, tonic::Code::Internal),
            (Exception::ModelNotFound, 404, tonic::Code::NotFound),
            (Exception::ModelVersionNotFound, 404, tonic::Code::NotFound),
            (Exception::ResourceNotFound, 404, tonic::Code::NotFound),
            (Exception::MethodNotAllowed, 405, tonic::Code::Internal),
            (Exception::RequestTimeout, 408, tonic::Code::Internal),
            (Exception::ConflictStatus, 409, tonic::Code::Internal),
            (
                Exception::RequestEntityTooLarge,
                413,
                tonic::Code::InvalidArgument,
            ),
            (Exception::InternalServer, 500, tonic::Code::Internal),
            (Exception::ServiceUnavailable, 503, tonic::Code::Unavailable),
        ];
        for (exception, status, code) in table {
            assert_eq!(exception.status().as_u16(), status, "{exception:?}");
            assert_eq!(exception.grpc_code(), code, "{exception:?}");
            assert!(exception.name().ends_with("Exception"));
        }
    }

    #[test]
    fn torchserve_and_kserve_error_bodies() {
        let response = error(Exception::ModelNotFound, "Model not found: x");
        assert_eq!(response.status, StatusCode::NOT_FOUND);
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            "{\n  \"code\": 404,\n  \"type\": \"ModelNotFoundException\",\n  \"message\": \"Model not found: x\"\n}\n"
        );
        let v2 = refusal("/v2/models/x/infer", Exception::Authentication, "no");
        assert_eq!(v2.status, StatusCode::UNAUTHORIZED);
        assert_eq!(String::from_utf8(v2.body).unwrap(), "{\"error\":\"no\"}\n");
    }
}
