//! A gRPC call's credentials, checked as HTTP checks a request's.

use crate::serve::app::App;
use crate::serve::auth::Endpoint;
use crate::serve::tokens::KeyKind;

/// The call's credentials checked as HTTP checks them, from its `authorization` metadata.
pub(super) fn authorize<T>(
    app: &App,
    request: &tonic::Request<T>,
    endpoint: Endpoint,
) -> Result<(), tonic::Status> {
    let authorization = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let open = app.auth.is_open(endpoint) && app.keys.is_none();
    let keyed = app
        .keys
        .as_ref()
        .is_some_and(|keys| keys.allows(KeyKind::Inference, authorization));
    let unguarded = !app.auth.enabled() && app.keys.is_none();
    if unguarded || open || keyed || app.auth.accepts(authorization) {
        Ok(())
    } else if app.keys.is_some() {
        // TorchServe's code for a missing or wrong key.
        Err(tonic::Status::permission_denied(
            crate::serve::tokens::REFUSED,
        ))
    } else {
        Err(tonic::Status::unauthenticated(
            "Authentication required: send valid credentials in the authorization metadata.",
        ))
    }
}
