//! The routing table: every endpoint of every API the server answers, read once from a request's
//! method and path on the listener it reached. The connection reads a request's `Route` from its
//! head, before its body: the credentials asked for (`App::unauthorized`), the model queue it is on
//! its way to (`App::arrival_for`) and the handler that answers it (`App::handle`) all come from it.

use super::analyses::{self, AnalysisCall};
use super::errors::{self, kserve_method_not_allowed, kserve_not_found, Exception};
use super::slides::{self, SlideCall};
use super::state::{App, Roles};
use super::{
    explanations, kserve, kserve_v1, management, metrics_api, token_api, torchserve, viewer,
};
use crate::serve::auth;
use crate::serve::batcher::Arrival;
use crate::serve::http::{Request, Response};
use crate::serve::tokens::{self, KeyKind};
use hyper::Method;
use std::sync::Arc;

/// A request's place in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route<'a> {
    /// What answers it.
    pub(crate) endpoint: Endpoint<'a>,
    /// The credentials it needs: those of the API its path belongs to on the listener, whether or
    /// not an endpoint answers there.
    pub(crate) access: Access,
}

/// A model as a path names it: by name, and by version if given (else its default version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModelRef<'a> {
    pub(crate) name: &'a str,
    pub(crate) version: Option<&'a str>,
}

/// Every endpoint, by API, with the listeners that answer it. A path under an API with a method
/// the endpoint does not take is that API's 405; a path nothing answers is its 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint<'a> {
    // TorchServe's inference API (inference listeners).
    /// `/ping`, whatever the method (as in TorchServe).
    Ping,
    /// `PUT|POST /predictions/{model}[/{version}]`
    Predict(ModelRef<'a>),
    /// `PUT|POST /explanations/{model}[/{version}]`
    Explain(ModelRef<'a>),

    // TorchServe's management API (management listeners).
    /// `GET /models?limit=&next_page_token=`
    ListModels,
    /// `POST /models?url=` (a 405 unless the model API is enabled)
    Register,
    /// `GET /models/{model}[/{version}|/all]`
    Describe(ModelRef<'a>),
    /// `PUT /models/{model}[/{version}]?min_worker=&max_worker=`
    Scale(ModelRef<'a>),
    /// `PUT /models/{model}/{version}/set-default`
    SetDefault {
        name: &'a str,
        version: &'a str,
    },
    /// `DELETE /models/{model}[/{version}]` (a 405 unless the model API is enabled)
    Unregister(ModelRef<'a>),
    /// `/token?type=management|inference`, whatever the method (TorchServe's token API, a 404
    /// without token authorization).
    Token,

    // TorchServe's metrics API (metrics listeners).
    /// `GET /metrics?name[]=`
    Metrics,

    // KServe V1 (inference listeners, and management listeners that do not infer).
    /// `GET /v1/models/{model}`
    V1Ready(&'a str),
    /// `POST /v1/models/{model}:predict`
    V1Predict(&'a str),
    /// `POST /v1/models/{model}:explain`
    V1Explain(&'a str),

    // KServe V2 and Triton's extensions (inference listeners); their errors are V2-shaped.
    /// `GET /v2`
    V2Server,
    /// `GET /v2/health/live`
    V2Live,
    /// `GET /v2/health/ready`
    V2Ready,
    /// `POST /v2/repository/index` (Triton)
    V2RepositoryIndex,
    /// `GET /v2/models/stats`: every model's statistics (Triton), not a model named "stats".
    V2Statistics,
    /// `/v2/models/{model}[/versions/{version}]...`: the model is looked up first, so a model
    /// that is not served is a 404 whatever follows.
    V2Model(ModelRef<'a>, ModelCall),

    // The slide and analyses APIs (inference listeners, with --slides).
    Slide(SlideCall<'a>),
    Analysis(AnalysisCall<'a>),
    /// `GET /`: the viewer, where it is on (TorchServe's 405 otherwise).
    ViewerRoot,
    /// `GET /viewer/{asset}`
    ViewerAsset(&'a str),

    /// TorchServe's 404.
    NotFound,
    /// TorchServe's 405.
    MethodNotAllowed,
    /// KServe V2's 404.
    V2NotFound,
    /// KServe V2's 405.
    V2MethodNotAllowed,
}

/// What follows `/v2/models/{model}[/versions/{version}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelCall {
    /// `GET` (nothing follows)
    Metadata,
    /// `GET .../config` (Triton)
    Config,
    /// `GET .../ready`
    Ready,
    /// `GET .../stats` (Triton): every version of the name unless one is named.
    Statistics,
    /// `POST .../infer`
    Infer,
    MethodNotAllowed,
    NotFound,
}

/// The credentials a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `/ping` and `/v2/health/...`, on any listener: open with `--open health`; the inference key
    /// with token authorization.
    Health,
    /// `/metrics` on a metrics listener: open with `--open metrics`; never a key.
    Metrics,
    /// The management API (and KServe V1 where only it is answered): the management key.
    Management,
    /// The inference APIs: the inference key.
    Inference,
    /// The viewer's page and assets: Basic credentials where they are on; with tokens alone, open
    /// (the page holds no data; what it asks the API for needs the key).
    Page,
    /// Nothing but 404s, 405s and the token API (which checks its own key): no key, and Basic or
    /// Bearer credentials only without token authorization.
    Unrouted,
}

impl<'a> Route<'a> {
    /// The route of `method` `path` (without its query) on a listener answering `roles`.
    pub(crate) fn parse(method: &Method, path: &'a str, roles: Roles) -> Route<'a> {
        let segments: Vec<&'a str> = path.trim_start_matches('/').split('/').collect();
        Route {
            endpoint: endpoint(method, &segments, roles),
            access: access(&segments, roles),
        }
    }

    /// The name a slide upload is stored under, as the path gives it: its body is streamed to
    /// disk, not read into memory.
    pub(crate) fn upload(&self) -> Option<&'a str> {
        match self.endpoint {
            Endpoint::Slide(SlideCall::Upload(name)) => Some(name),
            _ => None,
        }
    }

    /// The model whose queue the request is on its way to, for the prediction endpoints.
    pub(crate) fn arriving(&self) -> Option<ModelRef<'a>> {
        match self.endpoint {
            Endpoint::Predict(model)
            | Endpoint::Explain(model)
            | Endpoint::V2Model(model, ModelCall::Infer) => Some(model),
            Endpoint::V1Predict(name) | Endpoint::V1Explain(name) => Some(ModelRef {
                name,
                version: None,
            }),
            _ => None,
        }
    }
}

fn endpoint<'a>(method: &Method, segments: &[&'a str], roles: Roles) -> Endpoint<'a> {
    match segments {
        ["ping"] if roles.inference => Endpoint::Ping,
        [api @ ("predictions" | "explanations"), name, version @ ..]
            if roles.inference && !name.is_empty() && version.len() <= 1 =>
        {
            if *method != Method::PUT && *method != Method::POST {
                return Endpoint::MethodNotAllowed;
            }
            let model = ModelRef {
                name,
                version: version.first().copied(),
            };
            if *api == "predictions" {
                Endpoint::Predict(model)
            } else {
                Endpoint::Explain(model)
            }
        }
        ["v1", rest @ ..] if roles.inference || roles.management => {
            kserve_v1_endpoint(method, rest)
        }
        ["v2", rest @ ..] if roles.inference => kserve_v2_endpoint(method, rest),
        ["models", rest @ ..] if roles.management => management_endpoint(method, rest),
        ["slides", rest @ ..] if roles.inference => slides_endpoint(method, rest),
        ["analyses", rest @ ..] if roles.inference => analyses_endpoint(method, rest),
        ["token"] if roles.management => Endpoint::Token,
        ["metrics"] if roles.metrics && *method == Method::GET => Endpoint::Metrics,
        ["metrics"] if roles.metrics => Endpoint::MethodNotAllowed,
        [""] if roles.inference && *method == Method::GET => Endpoint::ViewerRoot,
        ["viewer"] if roles.inference && *method == Method::GET => Endpoint::ViewerRoot,
        ["viewer", asset] if roles.inference && *method == Method::GET => {
            Endpoint::ViewerAsset(asset)
        }
        [""] => Endpoint::MethodNotAllowed,
        _ => Endpoint::NotFound,
    }
}

/// `segments` follow `/models`.
fn management_endpoint<'a>(method: &Method, segments: &[&'a str]) -> Endpoint<'a> {
    let model = |name: &'a str, version: Option<&'a str>| ModelRef { name, version };
    match (method, segments) {
        (&Method::GET, []) => Endpoint::ListModels,
        (&Method::POST, []) => Endpoint::Register,
        (&Method::GET, [name]) => Endpoint::Describe(model(name, None)),
        (&Method::GET, [name, version]) => Endpoint::Describe(model(name, Some(version))),
        (&Method::PUT, [name]) => Endpoint::Scale(model(name, None)),
        (&Method::PUT, [name, version]) => Endpoint::Scale(model(name, Some(version))),
        (&Method::PUT, [name, version, "set-default"]) => Endpoint::SetDefault { name, version },
        (&Method::DELETE, [name]) => Endpoint::Unregister(model(name, None)),
        (&Method::DELETE, [name, version]) => Endpoint::Unregister(model(name, Some(version))),
        _ => Endpoint::MethodNotAllowed,
    }
}

/// `segments` follow `/slides`.
fn slides_endpoint<'a>(method: &Method, segments: &[&'a str]) -> Endpoint<'a> {
    let get = *method == Method::GET || *method == Method::HEAD;
    let endpoint = match segments {
        [] | [""] if get => Endpoint::Slide(SlideCall::List),
        [name] if *method == Method::PUT && !name.is_empty() => {
            Endpoint::Slide(SlideCall::Upload(name))
        }
        [dzi] if dzi.ends_with(".dzi") && get => {
            Endpoint::Slide(SlideCall::Dzi(&dzi[..dzi.len() - 4]))
        }
        [files, level, tile] if files.ends_with("_files") && get => {
            let id = &files[..files.len() - 6];
            match (level.parse(), tile_address(tile, ".jpeg")) {
                (Ok(level), Some((col, row))) => Endpoint::Slide(SlideCall::Tile {
                    id,
                    level,
                    col,
                    row,
                }),
                _ => Endpoint::NotFound,
            }
        }
        [id, "thumbnail.jpeg"] if get => Endpoint::Slide(SlideCall::Thumbnail(id)),
        [id, "properties"] if get => Endpoint::Slide(SlideCall::Properties(id)),
        [id, "analyses"] if get => Endpoint::Analysis(AnalysisCall::OfSlide(id)),
        [id, "analyses"] if *method == Method::POST => Endpoint::Analysis(AnalysisCall::Start(id)),
        [] | [""] | [_] | [_, "thumbnail.jpeg" | "properties" | "analyses"] => {
            Endpoint::MethodNotAllowed
        }
        _ => Endpoint::NotFound,
    };
    endpoint
}

/// `segments` follow `/analyses`.
fn analyses_endpoint<'a>(method: &Method, segments: &[&'a str]) -> Endpoint<'a> {
    let get = *method == Method::GET || *method == Method::HEAD;
    match segments {
        [id] if get => Endpoint::Analysis(AnalysisCall::Get(id)),
        [id] if *method == Method::DELETE => Endpoint::Analysis(AnalysisCall::Cancel(id)),
        [id, "overlay_files", level, tile] if get => {
            match (level.parse(), tile_address(tile, ".png")) {
                (Ok(level), Some((col, row))) => Endpoint::Analysis(AnalysisCall::OverlayTile {
                    id,
                    level,
                    col,
                    row,
                }),
                _ => Endpoint::NotFound,
            }
        }
        [id, result] if get => Endpoint::Analysis(AnalysisCall::Result(id, result)),
        [_] | [_, _] => Endpoint::MethodNotAllowed,
        _ => Endpoint::NotFound,
    }
}

/// `{col}_{row}{suffix}`.
fn tile_address(tile: &str, suffix: &str) -> Option<(usize, usize)> {
    let (col, row) = tile.strip_suffix(suffix)?.split_once('_')?;
    Some((col.parse().ok()?, row.parse().ok()?))
}

/// `segments` follow `/v1`.
fn kserve_v1_endpoint<'a>(method: &Method, segments: &[&'a str]) -> Endpoint<'a> {
    let ["models", target] = segments else {
        return Endpoint::NotFound;
    };
    let (name, verb) = target.split_once(':').unwrap_or((target, ""));
    match (method, verb) {
        (&Method::GET, "") => Endpoint::V1Ready(name),
        (&Method::POST, "predict") => Endpoint::V1Predict(name),
        (&Method::POST, "explain") => Endpoint::V1Explain(name),
        (_, "" | "predict" | "explain") => Endpoint::MethodNotAllowed,
        _ => Endpoint::NotFound,
    }
}

/// `segments` follow `/v2`.
fn kserve_v2_endpoint<'a>(method: &Method, segments: &[&'a str]) -> Endpoint<'a> {
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let (model, rest) = match segments {
        ["models", "stats"] => (None, segments),
        ["models", name, "versions", version, rest @ ..] => (
            Some(ModelRef {
                name,
                version: Some(version),
            }),
            rest,
        ),
        ["models", name, rest @ ..] => (
            Some(ModelRef {
                name,
                version: None,
            }),
            rest,
        ),
        _ => (None, segments),
    };
    if let Some(model) = model {
        let call = match rest {
            [] if get => ModelCall::Metadata,
            ["config"] if get => ModelCall::Config,
            ["ready"] if get => ModelCall::Ready,
            ["stats"] if get => ModelCall::Statistics,
            ["infer"] if post => ModelCall::Infer,
            [] | ["ready"] | ["infer"] | ["config"] | ["stats"] => ModelCall::MethodNotAllowed,
            _ => ModelCall::NotFound,
        };
        return Endpoint::V2Model(model, call);
    }
    match rest {
        [] if get => Endpoint::V2Server,
        ["health", "live"] if get => Endpoint::V2Live,
        ["health", "ready"] if get => Endpoint::V2Ready,
        ["repository", "index"] if post => Endpoint::V2RepositoryIndex,
        ["models", "stats"] if get => Endpoint::V2Statistics,
        [] | ["health", "live" | "ready"] | ["repository", "index"] | ["models", "stats"] => {
            Endpoint::V2MethodNotAllowed
        }
        _ => Endpoint::V2NotFound,
    }
}

fn access(segments: &[&str], roles: Roles) -> Access {
    match segments {
        ["ping"] | ["v2", "health", ..] => Access::Health,
        [""] | ["viewer", ..] if roles.inference => Access::Page,
        ["metrics"] if roles.metrics => Access::Metrics,
        ["models", ..] if roles.management => Access::Management,
        ["predictions" | "explanations" | "v1" | "v2" | "slides" | "analyses", ..]
            if roles.inference =>
        {
            Access::Inference
        }
        ["v1", ..] if roles.management => Access::Management,
        _ => Access::Unrouted,
    }
}

impl App {
    /// A request to a prediction endpoint counts as arriving at its model's queue from its head on,
    /// so that a batch waits (up to the batch delay) for a body still coming over the network.
    pub(crate) fn arrival_for(&self, route: &Route<'_>) -> Option<Arrival> {
        let model = route.arriving()?;
        let served = self.registry.lookup(model.name, model.version).ok()?;
        Some(served.queue.arrival())
    }

    /// The refusal of a request without valid credentials, from its route and Authorization header
    /// alone: the connection answers it before reading (or asking for, `100 Continue`) the body.
    /// With TorchServe's tokens on, a request needs the key of its API (or the Basic credentials
    /// or tokens given): TorchServe's 400 InvalidKeyException; otherwise a 401.
    pub(crate) fn unauthorized(
        &self,
        access: Access,
        path: &str,
        authorization: Option<&str>,
    ) -> Option<Response> {
        let (endpoint, api) = match access {
            Access::Health => (auth::Endpoint::Health, Some(KeyKind::Inference)),
            Access::Metrics => (auth::Endpoint::Metrics, None),
            Access::Management => (auth::Endpoint::Api, Some(KeyKind::Management)),
            Access::Inference => (auth::Endpoint::Api, Some(KeyKind::Inference)),
            Access::Unrouted if self.keys.is_some() => return None,
            Access::Page => (auth::Endpoint::Api, None),
            Access::Unrouted => (auth::Endpoint::Api, None),
        };
        if self.auth.is_open(endpoint) || self.auth.accepts(authorization) {
            return None;
        }
        if let (Some(keys), Some(kind)) = (&self.keys, api) {
            if keys.allows(kind, authorization) {
                return None;
            }
            // A wrong key is TorchServe's 400; without one, a server that also takes credentials
            // asks for them (401 and WWW-Authenticate, so that a browser prompts).
            let bearer = authorization.is_some_and(|a| {
                a.trim_start()
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
            });
            if bearer || !self.auth.enabled() {
                return Some(errors::refusal(
                    path,
                    Exception::InvalidKey,
                    tokens::REFUSED,
                ));
            }
        }
        if !self.auth.enabled() {
            return None;
        }
        const WHY: &str =
            "Authentication required: send valid credentials in the Authorization header.";
        let mut response = errors::refusal(path, Exception::Authentication, WHY);
        for scheme in self.auth.schemes() {
            response = response.with_header("www-authenticate", scheme.to_string());
        }
        Some(response)
    }

    /// Answers a request on its route.
    pub(crate) async fn handle(
        self: &Arc<App>,
        request: Request,
        route: &Route<'_>,
        arrival: Option<Arrival>,
    ) -> Response {
        let request = &request;
        // Connections refuse these from the head; a request handled directly is checked here.
        if let Some(response) =
            self.unauthorized(route.access, &request.path, request.header("authorization"))
        {
            return response;
        }
        match route.endpoint {
            Endpoint::Ping => torchserve::ping(self),
            Endpoint::Predict(m) => {
                torchserve::predict(self, request, m.name, m.version, arrival).await
            }
            Endpoint::Explain(m) => {
                explanations::explain(self, request, m.name, m.version, arrival).await
            }
            Endpoint::ListModels => management::list(self, request),
            Endpoint::Register if self.model_api => management::register(self, request).await,
            Endpoint::Describe(m) => management::describe(self, m.name, m.version),
            Endpoint::Scale(m) => management::scale(self, request, m.name, m.version).await,
            Endpoint::SetDefault { name, version } => {
                management::set_default(self, name, version).await
            }
            Endpoint::Unregister(m) if self.model_api => {
                management::unregister(self, m.name, m.version).await
            }
            Endpoint::Register | Endpoint::Unregister(_) => errors::method_not_allowed(),
            Endpoint::Token => token_api::token(self, request),
            Endpoint::Metrics => metrics_api::metrics(self, request),
            Endpoint::V1Ready(name) => kserve_v1::ready(self, name),
            Endpoint::V1Predict(name) => kserve_v1::predict(self, request, name, arrival).await,
            Endpoint::V1Explain(name) => kserve_v1::explain(self, request, name, arrival).await,
            Endpoint::V2Server => kserve::server(),
            Endpoint::V2Live => kserve::live(),
            Endpoint::V2Ready => kserve::ready(),
            Endpoint::V2RepositoryIndex => kserve::repository_index(self),
            Endpoint::V2Statistics => kserve::statistics(self, &self.registry.all()),
            Endpoint::V2Model(model, call) => {
                self.kserve_model(request, model, call, arrival).await
            }
            Endpoint::Slide(call) => slides::handle(self, request, call).await,
            Endpoint::Analysis(call) => analyses::handle(self, request, call).await,
            Endpoint::ViewerRoot => viewer::root(self),
            Endpoint::ViewerAsset(asset) => viewer::asset(self, asset),
            Endpoint::NotFound => errors::not_found(),
            Endpoint::MethodNotAllowed => errors::method_not_allowed(),
            Endpoint::V2NotFound => kserve_not_found(&request.path),
            Endpoint::V2MethodNotAllowed => {
                kserve_method_not_allowed(&request.method, &request.path)
            }
        }
    }

    /// A V2 model's endpoints, once the model is found.
    async fn kserve_model(
        self: &Arc<App>,
        request: &Request,
        model: ModelRef<'_>,
        call: ModelCall,
        arrival: Option<Arrival>,
    ) -> Response {
        let m = match kserve::model(self, model.name, model.version) {
            Ok(m) => m,
            Err(response) => return response,
        };
        match call {
            ModelCall::Metadata => kserve::metadata(self, &m),
            ModelCall::Config => kserve::config(&m),
            ModelCall::Ready => kserve::model_ready(model.name),
            // Every version of the name unless one is named.
            ModelCall::Statistics if model.version.is_some() => {
                kserve::statistics(self, std::slice::from_ref(&m))
            }
            ModelCall::Statistics => kserve::statistics(self, &self.registry.versions(&m.name)),
            ModelCall::Infer => kserve::infer(self, &m, model.version, request, arrival).await,
            ModelCall::MethodNotAllowed => {
                kserve_method_not_allowed(&request.method, &request.path)
            }
            ModelCall::NotFound => kserve_not_found(&request.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, path: &str, roles: Roles) -> Route<'_> {
        Route::parse(&method, path, roles)
    }

    fn endpoint(method: Method, path: &str) -> Endpoint<'_> {
        route(method, path, Roles::ALL).endpoint
    }

    const INFERENCE: Roles = Roles {
        inference: true,
        management: false,
        metrics: false,
    };
    const MANAGEMENT: Roles = Roles {
        inference: false,
        management: true,
        metrics: false,
    };

    #[test]
    fn torchserve_inference() {
        let pcam = ModelRef {
            name: "pcam",
            version: None,
        };
        assert_eq!(endpoint(Method::DELETE, "/ping"), Endpoint::Ping);
        assert_eq!(
            endpoint(Method::PUT, "/predictions/pcam"),
            Endpoint::Predict(pcam)
        );
        assert_eq!(
            endpoint(Method::POST, "/explanations/pcam/2.0"),
            Endpoint::Explain(ModelRef {
                name: "pcam",
                version: Some("2.0")
            })
        );
        assert_eq!(
            endpoint(Method::GET, "/predictions/pcam"),
            Endpoint::MethodNotAllowed
        );
        for missing in [
            "/predictions",
            "/predictions/",
            "/predictions/a/b/c",
            "/pings",
        ] {
            assert_eq!(
                endpoint(Method::POST, missing),
                Endpoint::NotFound,
                "{missing}"
            );
        }
        assert_eq!(endpoint(Method::GET, "/"), Endpoint::ViewerRoot);
        assert_eq!(endpoint(Method::POST, "/"), Endpoint::MethodNotAllowed);
        assert_eq!(
            endpoint(Method::GET, "/viewer/viewer.js"),
            Endpoint::ViewerAsset("viewer.js")
        );
        assert_eq!(
            route(Method::POST, "/predictions/pcam", MANAGEMENT).endpoint,
            Endpoint::NotFound
        );
        assert_eq!(
            route(Method::POST, "/predictions/pcam", Roles::ALL).arriving(),
            Some(pcam)
        );
    }

    #[test]
    fn management_and_its_neighbours() {
        assert_eq!(endpoint(Method::GET, "/models"), Endpoint::ListModels);
        assert_eq!(endpoint(Method::POST, "/models"), Endpoint::Register);
        assert_eq!(
            endpoint(Method::PUT, "/models/pcam/1.0/set-default"),
            Endpoint::SetDefault {
                name: "pcam",
                version: "1.0"
            }
        );
        // Anything else under /models is a 405, as in TorchServe.
        assert_eq!(
            endpoint(Method::POST, "/models/pcam/1.0/x/y"),
            Endpoint::MethodNotAllowed
        );
        assert_eq!(endpoint(Method::GET, "/token"), Endpoint::Token);
        assert_eq!(endpoint(Method::GET, "/metrics"), Endpoint::Metrics);
        assert_eq!(
            endpoint(Method::POST, "/metrics"),
            Endpoint::MethodNotAllowed
        );
        assert_eq!(
            route(Method::GET, "/metrics", INFERENCE).endpoint,
            Endpoint::NotFound
        );
        assert_eq!(
            route(Method::GET, "/models", INFERENCE).access,
            Access::Unrouted
        );
        assert_eq!(
            route(Method::GET, "/models", MANAGEMENT).access,
            Access::Management
        );
    }

    #[test]
    fn kserve_v1_and_v2() {
        assert_eq!(
            endpoint(Method::GET, "/v1/models/pcam"),
            Endpoint::V1Ready("pcam")
        );
        assert_eq!(
            endpoint(Method::POST, "/v1/models/pcam:explain"),
            Endpoint::V1Explain("pcam")
        );
        assert_eq!(
            endpoint(Method::GET, "/v1/models/pcam:predict"),
            Endpoint::MethodNotAllowed
        );
        assert_eq!(
            endpoint(Method::POST, "/v1/models/pcam:train"),
            Endpoint::NotFound
        );
        assert_eq!(endpoint(Method::GET, "/v1/pcam"), Endpoint::NotFound);
        // KServe V1 where only management is answered needs the management key.
        assert_eq!(
            route(Method::GET, "/v1/models/pcam", MANAGEMENT).access,
            Access::Management
        );
        assert_eq!(
            route(Method::GET, "/v1/models/pcam", INFERENCE).access,
            Access::Inference
        );
        assert_eq!(endpoint(Method::GET, "/v2"), Endpoint::V2Server);
        assert_eq!(
            endpoint(Method::POST, "/v2/health/live"),
            Endpoint::V2MethodNotAllowed
        );
        assert_eq!(
            endpoint(Method::GET, "/v2/models/stats"),
            Endpoint::V2Statistics
        );
        assert_eq!(endpoint(Method::GET, "/v2/nothing"), Endpoint::V2NotFound);
        let versioned = ModelRef {
            name: "pcam",
            version: Some("1.0"),
        };
        assert_eq!(
            endpoint(Method::POST, "/v2/models/pcam/versions/1.0/infer"),
            Endpoint::V2Model(versioned, ModelCall::Infer)
        );
        assert_eq!(
            endpoint(Method::GET, "/v2/models/pcam/versions/1.0/infer"),
            Endpoint::V2Model(versioned, ModelCall::MethodNotAllowed)
        );
        assert_eq!(
            endpoint(Method::GET, "/v2/models/pcam/versions"),
            Endpoint::V2Model(
                ModelRef {
                    name: "pcam",
                    version: None
                },
                ModelCall::NotFound
            )
        );
        // Health needs the inference key on every listener; a V2 path without inference is TorchServe's 404.
        let health = route(Method::GET, "/v2/health/ready", MANAGEMENT);
        assert_eq!(
            (health.endpoint, health.access),
            (Endpoint::NotFound, Access::Health)
        );
    }

    #[test]
    fn slides_and_analyses() {
        assert_eq!(
            endpoint(Method::GET, "/slides"),
            Endpoint::Slide(SlideCall::List)
        );
        assert_eq!(
            endpoint(Method::PUT, "/slides/a%20b.svs"),
            Endpoint::Slide(SlideCall::Upload("a%20b.svs"))
        );
        assert_eq!(
            endpoint(Method::GET, "/slides/abc.dzi"),
            Endpoint::Slide(SlideCall::Dzi("abc"))
        );
        assert_eq!(
            endpoint(Method::GET, "/slides/abc_files/12/3_4.jpeg"),
            Endpoint::Slide(SlideCall::Tile {
                id: "abc",
                level: 12,
                col: 3,
                row: 4
            })
        );
        for missing in [
            "/slides/abc_files/x/3_4.jpeg",
            "/slides/abc_files/1/3-4.jpeg",
            "/slides/abc_files/1/3_4.png",
            "/slides/a/b/c/d/e",
        ] {
            assert_eq!(
                endpoint(Method::GET, missing),
                Endpoint::NotFound,
                "{missing}"
            );
        }
        assert_eq!(
            endpoint(Method::POST, "/slides/abc/analyses"),
            Endpoint::Analysis(AnalysisCall::Start("abc"))
        );
        assert_eq!(
            endpoint(Method::DELETE, "/slides/abc/properties"),
            Endpoint::MethodNotAllowed
        );
        assert_eq!(
            endpoint(Method::DELETE, "/analyses/x"),
            Endpoint::Analysis(AnalysisCall::Cancel("x"))
        );
        assert_eq!(
            endpoint(Method::GET, "/analyses/x/overlay_files/3/0_1.png"),
            Endpoint::Analysis(AnalysisCall::OverlayTile {
                id: "x",
                level: 3,
                col: 0,
                row: 1
            })
        );
        assert_eq!(
            endpoint(Method::GET, "/analyses/x/lesions.csv"),
            Endpoint::Analysis(AnalysisCall::Result("x", "lesions.csv"))
        );
        // The inference key, and nothing where only management is answered.
        assert_eq!(
            route(Method::GET, "/slides", INFERENCE).access,
            Access::Inference
        );
        assert_eq!(
            route(Method::GET, "/slides", MANAGEMENT).endpoint,
            Endpoint::NotFound
        );
        assert_eq!(
            route(Method::GET, "/analyses/x", MANAGEMENT).access,
            Access::Unrouted
        );
    }
}
