//! TorchServe's metrics API, on the metrics listener: `GET /metrics`, Prometheus's text format.

use super::state::App;
use crate::serve::http::{Request, Response};
use hyper::StatusCode;

/// The metrics, all of them or the families `?name[]=` asks for.
pub(super) fn metrics(app: &App, request: &Request) -> Response {
    Response::new(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        app.metrics.render(
            &pending_by_name(app),
            app.registry.all().iter().map(|m| m.queue.arriving()).sum(),
            &metric_names(request),
        ),
    )
}

/// The metric families `/metrics?name[]=a&name[]=b` asks for (TorchServe's filter; `name[]` may
/// come URL-encoded as `name%5B%5D`). Empty: all of them.
fn metric_names(request: &Request) -> Vec<&str> {
    request
        .query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "name[]" || k.eq_ignore_ascii_case("name%5B%5D"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Queued requests of each model name, over its versions.
fn pending_by_name(app: &App) -> Vec<(String, usize)> {
    let mut pending: Vec<(String, usize)> = Vec::new();
    for m in app.registry.all() {
        let n = m.queue.pending();
        match pending.iter_mut().find(|(name, _)| *name == m.name) {
            Some(entry) => entry.1 += n,
            None => pending.push((m.name.clone(), n)),
        }
    }
    pending
}
