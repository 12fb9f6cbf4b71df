//! TorchServe's token API, on the management listener: `/token?type=management|inference` with the
//! API key makes a new key of that type.

use super::errors::{error, not_found, Exception};
use super::state::App;
use crate::serve::http::{Request, Response};
use crate::serve::tokens::{self, KeyKind};
use hyper::StatusCode;

/// A new key of the type asked for, or TorchServe's refusal; a 404 without token authorization.
pub(super) fn token(app: &App, request: &Request) -> Response {
    let Some(keys) = &app.keys else {
        return not_found();
    };
    let kind = match request.query_param("type") {
        Some("management") => Some(KeyKind::Management),
        Some("inference") => Some(KeyKind::Inference),
        _ => None,
    };
    match kind {
        Some(kind) if keys.allows(KeyKind::Api, request.header("authorization")) => {
            match keys.regenerate(kind) {
                Ok(()) => Response::json(StatusCode::OK, "\n"),
                Err(e) => error(Exception::InternalServer, &format!("{e:#}")),
            }
        }
        _ => error(Exception::InvalidKey, tokens::REFUSED_TOKEN),
    }
}
