//! What the server answers: TorchServe 0.12's inference endpoints (`/ping`, `/predictions`), its
//! read-only management views (`/models`), its Prometheus `/metrics`, and the KServe V2 protocol
//! (in `kserve`), with TorchServe's status codes and error bodies.

mod explanations;
pub(crate) mod kserve;
mod kserve_v1;
pub(crate) mod management;

use super::answer;
use super::auth::{Auth, Endpoint};
use super::batcher::{Answered, Arrival, Job, JobError, Refused, Reservation};
use super::http::{Request, Response};
use super::metrics::{Metrics, Observation, Rejection};
use super::model_store::ModelStore;
use super::models::{ServedModel, Settings};
use super::registry::{Missing, Registry};
use super::snapshot::{Kind, Snapshots};
use super::tokens::{self, KeyKind, Tokens};
use super::{multipart, pyjson};
use crate::engine::preprocess::Prepared;
use crate::engine::EngineOptions;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Images up to this size are decoded on the I/O worker that read them (see `prepare`).
const INLINE_DECODE_BYTES: usize = 256 << 10;

pub(crate) struct App {
    pub(crate) registry: Registry,
    /// How long a request may wait for room in a full queue before its 503.
    pub(crate) queue_wait: Duration,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) auth: Auth,
    /// What a registration gets when it asks for nothing else, and what models load with.
    pub(crate) defaults: Defaults,
    /// The model store and the management API's writes, where the server has one.
    pub(crate) store: Option<Arc<ModelStore>>,
    /// Register and unregister are allowed (TorchServe's enable_model_api).
    pub(crate) model_api: bool,
    /// One management change at a time, so that checks and changes cannot interleave.
    pub(crate) changes: tokio::sync::Mutex<()>,
    /// The server is stopping: a closed queue means that, not an unregistered model.
    pub(crate) stopping: AtomicBool,
    /// Config snapshots, written after every change (None with --ncs).
    pub(crate) snapshots: Option<Snapshots>,
    /// Changes are recorded in snapshots (from the end of start-up on).
    pub(crate) recording: AtomicBool,
    /// TorchServe's token authorization, when on.
    pub(crate) keys: Option<Tokens>,
    pub(crate) envelope: Envelope,
}

/// How `/predictions` bodies are read and answered (TorchServe's service_envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Envelope {
    /// The body is the image (TorchServe's default).
    #[default]
    Body,
    /// `json` and `kserve`: KServe V1's `{"instances": [...]}`, answered `{"predictions": [...]}`.
    Instances,
    /// `kservev2`: V2 requests with TorchServe's input names, answered as its envelope does.
    KServeV2,
}

impl std::str::FromStr for Envelope {
    type Err = String;

    fn from_str(s: &str) -> Result<Envelope, String> {
        match s.trim() {
            "" | "body" => Ok(Envelope::Body),
            "json" | "kserve" => Ok(Envelope::Instances),
            "kservev2" => Ok(Envelope::KServeV2),
            other => Err(format!(
                "service_envelope={other}: expected body, json, kserve or kservev2"
            )),
        }
    }
}

/// The defaults of models registered without settings of their own.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub(crate) engine: EngineOptions,
    pub(crate) settings: Settings,
    /// Workers of a model registered through the API without initial_workers (TorchServe's
    /// default_workers_per_model; 0 unless configured).
    pub(crate) workers: usize,
}

/// Which APIs a listener answers: TorchServe's inference, management and metrics ports, or all of
/// them on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Roles {
    pub(crate) inference: bool,
    pub(crate) management: bool,
    pub(crate) metrics: bool,
}

impl Roles {
    pub(crate) const ALL: Roles = Roles {
        inference: true,
        management: true,
        metrics: true,
    };

    /// `inference, management` as start-up messages name them.
    pub(crate) fn names(self) -> String {
        let mut names = Vec::new();
        for (on, name) in [
            (self.inference, "inference"),
            (self.management, "management"),
            (self.metrics, "metrics"),
        ] {
            if on {
                names.push(name);
            }
        }
        names.join(", ")
    }
}

/// TorchServe's error body: pretty JSON with a trailing newline.
pub(crate) fn error(status: u16, kind: &str, message: &str) -> Response {
    let body = json!({"code": status, "type": kind, "message": message});
    Response::json(status, format!("{}\n", pyjson::dumps(&body)))
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

pub(crate) fn not_found() -> Response {
    error(
        404,
        "ResourceNotFoundException",
        "Requested resource is not found, please refer to API document.",
    )
}

pub(crate) fn method_not_allowed() -> Response {
    error(
        405,
        "MethodNotAllowedException",
        "Requested method is not allowed, please refer to API document.",
    )
}

pub(crate) fn pretty(value: &Value) -> Response {
    Response::json(200, format!("{}\n", pyjson::dumps(value)))
}

/// A prediction failed for a reason the client can act on, or did not get an answer.
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
}

impl App {
    /// The answer refusing a request before the application reads it: V2-shaped under `/v2`,
    /// TorchServe's shape elsewhere.
    pub(crate) fn refusal(&self, path: &str, status: u16, kind: &str, message: &str) -> Response {
        if path == "/v2" || path.starts_with("/v2/") {
            kserve::error(status, message)
        } else {
            error(status, kind, message)
        }
    }

    /// A request to a prediction endpoint counts as arriving at its model's queue from its head on,
    /// so that a batch waits (up to the batch delay) for a body still coming over the network.
    pub(crate) fn arrival_for(&self, method: &str, target: &str) -> Option<Arrival> {
        let path = target.split('?').next().unwrap_or("");
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (name, version) = match (method, segments.as_slice()) {
            ("PUT" | "POST", ["predictions" | "explanations", name]) => (*name, None),
            ("PUT" | "POST", ["predictions" | "explanations", name, version]) => {
                (*name, Some(*version))
            }
            ("POST", ["v2", "models", name, "infer"]) => (*name, None),
            ("POST", ["v2", "models", name, "versions", version, "infer"]) => {
                (*name, Some(*version))
            }
            ("POST", ["v1", "models", target]) => (target.split(':').next().unwrap_or(""), None),
            _ => return None,
        };
        let model = self.registry.lookup(name, version).ok()?;
        Some(model.queue.arrival())
    }

    /// The refusal of a request without valid credentials, from its target and Authorization header
    /// alone: the connection answers it before reading (or asking for, `100 Continue`) the body.
    /// With TorchServe's tokens on, a request needs the key of its API (or the Basic credentials
    /// or tokens given): TorchServe's 400 InvalidKeyException; otherwise a 401.
    pub(crate) fn unauthorized(
        &self,
        roles: Roles,
        target: &str,
        authorization: Option<&str>,
    ) -> Option<Response> {
        let path = target.split('?').next().unwrap_or("");
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (endpoint, api) = match segments.as_slice() {
            ["ping"] | ["v2", "health", ..] => (Endpoint::Health, Some(KeyKind::Inference)),
            ["metrics"] if roles.metrics => (Endpoint::Metrics, None),
            // The token API checks its own key (the API key).
            ["token"] if roles.management && self.keys.is_some() => return None,
            ["models", ..] if roles.management => (Endpoint::Api, Some(KeyKind::Management)),
            ["predictions", ..] | ["explanations", ..] | ["v1", ..] | ["v2", ..]
                if roles.inference =>
            {
                (Endpoint::Api, Some(KeyKind::Inference))
            }
            ["v1", ..] if roles.management => (Endpoint::Api, Some(KeyKind::Management)),
            // Nothing is answered there but 404 or 405.
            _ if self.keys.is_some() => return None,
            _ => (Endpoint::Api, None),
        };
        if self.auth.is_open(endpoint) || self.auth.accepts(authorization) {
            return None;
        }
        if let (Some(keys), Some(kind)) = (&self.keys, api) {
            if keys.allows(kind, authorization) {
                return None;
            }
            return Some(self.refusal(path, 400, "InvalidKeyException", tokens::REFUSED));
        }
        if !self.auth.enabled() {
            return None;
        }
        const WHY: &str =
            "Authentication required: send valid credentials in the Authorization header.";
        // V2 clients (tritonclient) read errors as {"error": ...}; TorchServe's own shape elsewhere.
        let mut response = self.refusal(path, 401, "AuthenticationException", WHY);
        for scheme in self.auth.schemes() {
            response = response.with_header("www-authenticate", scheme.to_string());
        }
        Some(response)
    }

    /// `/token?type=management|inference` with the API key: a new key of that type (TorchServe's
    /// token API, on the management listener).
    fn token(&self, request: &Request) -> Response {
        let Some(keys) = &self.keys else {
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
                    Ok(()) => Response::json(200, "\n"),
                    Err(e) => error(500, "InternalServerException", &format!("{e:#}")),
                }
            }
            _ => error(400, "InvalidKeyException", tokens::REFUSED_TOKEN),
        }
    }

    /// Answers a request that reached a listener answering `roles`.
    pub(crate) async fn handle(
        self: &Arc<App>,
        request: Request,
        arrival: Option<Arrival>,
        roles: Roles,
    ) -> Response {
        let request = &request;
        let path = request.path.as_str();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // Connections refuse these from the head; a request handled directly is checked here.
        if let Some(response) = self.unauthorized(roles, path, request.header("authorization")) {
            return response;
        }
        let get = request.method == "GET";
        let inference = roles.inference;
        match segments.as_slice() {
            // TorchServe answers /ping whatever the method.
            ["ping"] if inference => self.ping(),
            ["predictions", name] | ["predictions", name, _] if inference && !name.is_empty() => {
                if request.method != "PUT" && request.method != "POST" {
                    return method_not_allowed();
                }
                self.predict(request, name, segments.get(2).copied(), arrival)
                    .await
            }
            ["explanations", name] | ["explanations", name, _] if inference && !name.is_empty() => {
                if request.method != "PUT" && request.method != "POST" {
                    return method_not_allowed();
                }
                explanations::explain(self, request, name, segments.get(2).copied()).await
            }
            ["v1", ..] if inference || roles.management => {
                kserve_v1::handle(self, request, &segments[1..], arrival).await
            }
            ["v2", ..] if inference => kserve::handle(self, request, &segments[1..], arrival).await,
            ["models", ..] if roles.management => {
                management::handle(self, request, &segments[1..]).await
            }
            ["token"] if roles.management => self.token(request),
            ["metrics"] if roles.metrics && get => Response::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(
                    &self.pending_by_name(),
                    self.registry.all().iter().map(|m| m.queue.arriving()).sum(),
                    &metric_names(request),
                ),
            ),
            ["metrics"] if roles.metrics => method_not_allowed(),
            [""] => method_not_allowed(),
            _ => not_found(),
        }
    }

    /// TorchServe's health: Healthy while the server answers (TorchServe 0.12 says so with models
    /// at 0 workers, or with workers still starting).
    fn ping(&self) -> Response {
        pretty(&json!({"status": "Healthy"}))
    }

    /// The model a request names: by name, and version if given (else the default version).
    pub(crate) fn find(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedModel>, Response> {
        self.lookup(name, version)
            .map_err(|missing| error(404, missing.kind, &missing.message))
    }

    /// `find`, with the miss as TorchServe names it.
    pub(crate) fn lookup(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedModel>, Missing> {
        self.registry.lookup(name, version)
    }

    /// One image through the path every protocol shares: admitted (before decoding), decoded and
    /// preprocessed, batched, answered.
    pub(crate) async fn predict_image(
        self: &Arc<App>,
        model: &Arc<ServedModel>,
        image: Bytes,
        arrival: Arrival,
        versioned: bool,
    ) -> Result<Answered, Failure> {
        let reservation = self.admit(model, 1, versioned).await?;
        let prepared = self.prepare(model, vec![image], false).await?;
        let mut answers = self.infer(model, prepared, reservation, arrival).await?;
        Ok(answers.remove(0))
    }

    /// Counts a prediction request of `model` once, however many images it carried.
    pub(crate) fn observe(
        &self,
        m: &ServedModel,
        started: Instant,
        answered: &Result<Vec<Answered>, Failure>,
    ) {
        match answered {
            Ok(answers) => self.metrics.predicted(&Observation {
                model: &m.name,
                version: &m.version,
                images: answers.len(),
                latency: started.elapsed(),
                queued: answers.iter().map(|a| a.queued).max().unwrap_or_default(),
            }),
            Err(failure) => self
                .metrics
                .rejected(&m.name, &m.version, failure.rejection()),
        }
    }

    async fn predict(
        self: &Arc<App>,
        request: &Request,
        name: &str,
        version: Option<&str>,
        arrival: Option<Arrival>,
    ) -> Response {
        let started = Instant::now();
        let model = match self.find(name, version) {
            Ok(m) => m,
            Err(response) => return response,
        };
        // Under the json and kserve envelopes a JSON object is the envelope (no image starts with
        // `{`); anything else is the image itself.
        if self.envelope == Envelope::Instances && kserve_v1::is_json_object(&request.body) {
            return match kserve_v1::instances(&request.body) {
                Ok(images) => kserve_v1::predict(self, &model, request, images, arrival).await,
                Err(why) => self.failure(
                    &format!("{} {}", request.method, request.path),
                    &model,
                    Failure::BadInput(why),
                ),
            };
        }
        let shown = format!("{} {}", request.method, request.path);
        let arrival = arrival.unwrap_or_else(|| model.queue.arrival());
        let answered = match image_bytes(request).await {
            Ok(image) => self
                .predict_image(&model, image, arrival, version.is_some())
                .await
                .map(|answered| vec![answered]),
            Err(why) => Err(Failure::BadInput(why)),
        };
        self.observe(&model, started, &answered);
        let answered = match answered {
            Ok(mut answers) => answers.remove(0),
            Err(failure) => return self.failure(&shown, &model, failure),
        };
        let details = request
            .query_param("details")
            .is_some_and(|v| v != "false" && v != "0");
        if details {
            Response::json(200, answer::detailed(&model.schema, &answered.prediction))
        } else {
            // TorchServe sends a handler's answer without a Content-Type; it is always JSON, and
            // clients (and proxies that sniff) do better when told so.
            Response::new(
                200,
                crate::serve::http::JSON,
                answer::torchserve(&model.schema, &answered.prediction),
            )
        }
    }

    /// Room in `model`'s queue for `n` images, waiting up to the queue wait for it.
    pub(crate) async fn admit(
        &self,
        model: &ServedModel,
        n: usize,
        versioned: bool,
    ) -> Result<Reservation, Failure> {
        if model.workers.count() == 0 {
            return Err(Failure::NoWorker(model.no_worker(versioned)));
        }
        let queue = &model.queue;
        if n > queue.capacity() {
            return Err(Failure::BadInput(format!(
                "{n} inputs are more than the queue holds ({}, job_queue_size)",
                queue.capacity()
            )));
        }
        queue
            .admit(n, self.queue_wait)
            .await
            .map_err(|refused| self.refused(model, refused))
    }

    /// Why a queue took no job: the server is stopping, or the version was unregistered.
    fn refused(&self, model: &ServedModel, refused: Refused) -> Failure {
        match refused {
            Refused::Full => Failure::QueueFull,
            Refused::NoWorker => Failure::NoWorker(model.no_worker(false)),
            Refused::Closed if self.stopping.load(Ordering::SeqCst) => Failure::ShuttingDown,
            Refused::Closed => Failure::Unregistered(
                self.registry
                    .lookup(&model.name, Some(&model.version))
                    .err()
                    .unwrap_or(Missing {
                        kind: "ModelNotFoundException",
                        message: format!("Model not found: {}", model.name),
                    }),
            ),
        }
    }

    /// Decodes and preprocesses images for `model` on the decoding pool, in order; `numbered`
    /// errors say which image of the request failed.
    pub(crate) async fn prepare(
        self: &Arc<App>,
        model: &Arc<ServedModel>,
        images: Vec<Bytes>,
        numbered: bool,
    ) -> Result<Vec<Prepared>, Failure> {
        let small = images.iter().map(Bytes::len).sum::<usize>() <= INLINE_DECODE_BYTES;
        let decode = move |m: &ServedModel| {
            images
                .iter()
                .enumerate()
                .map(|(i, image)| {
                    m.preprocessor.prepare(image).map_err(|e| {
                        if numbered {
                            format!("image {i}: {e}")
                        } else {
                            e.to_string()
                        }
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        };
        // A lone small patch is decoded where it is: the hand-off to the pool and back costs two
        // thread wake-ups, a tenth of a one-client round trip, and no other request waits for the
        // I/O thread meanwhile.
        let decoded = if small {
            decode(model)
        } else {
            let m = Arc::clone(model);
            self.off_thread(move || decode(&m)).await?
        };
        decoded.map_err(Failure::BadInput)
    }

    /// Runs CPU work (decoding, parsing a large body) on the bounded pool beside the I/O thread.
    pub(crate) async fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Failure> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Failure::Internal(format!("decoding failed: {e}")))
    }

    pub(crate) fn failure(&self, shown: &str, model: &ServedModel, failure: Failure) -> Response {
        let (status, kind, message) = self.explain(shown, model, failure);
        error(status, kind, &message)
    }

    /// A failure's HTTP status, TorchServe exception type and message.
    pub(crate) fn explain(
        &self,
        shown: &str,
        model: &ServedModel,
        failure: Failure,
    ) -> (u16, &'static str, String) {
        match failure {
            Failure::BadInput(why) => (400, "BadRequestException", format!("{shown}: {why}")),
            Failure::QueueFull => (
                503,
                "ServiceUnavailableException",
                format!(
                    "Model \"{}\" has too many pending requests ({} queued); retry later",
                    model.name,
                    model.queue.capacity()
                ),
            ),
            Failure::ShuttingDown => (
                503,
                "ServiceUnavailableException",
                "The server is shutting down".into(),
            ),
            Failure::NoWorker(message) => (503, "ServiceUnavailableException", message),
            Failure::Unregistered(missing) => (404, missing.kind, missing.message),
            Failure::Internal(why) => (500, "InternalServerException", format!("{shown}: {why}")),
        }
    }

    /// Queues preprocessed images for `model` in the room reserved for them and waits for their
    /// answers, in order. `arrival` marks the request as on its way to the queue until its jobs are in
    /// it.
    pub(crate) async fn infer(
        &self,
        model: &ServedModel,
        inputs: Vec<Prepared>,
        reservation: Reservation,
        arrival: Arrival,
    ) -> Result<Vec<Answered>, Failure> {
        self.run_jobs(model, inputs, None, reservation, arrival)
            .await
    }

    /// `infer`, each input also explained towards output column `explain` when given.
    pub(crate) async fn run_jobs(
        &self,
        model: &ServedModel,
        inputs: Vec<Prepared>,
        explain: Option<usize>,
        reservation: Reservation,
        arrival: Arrival,
    ) -> Result<Vec<Answered>, Failure> {
        let mut replies = Vec::with_capacity(inputs.len());
        let mut jobs = Vec::with_capacity(inputs.len());
        let enqueued = Instant::now();
        for input in inputs {
            let (reply, answer) = oneshot::channel();
            jobs.push(Job {
                explain,
                input,
                enqueued,
                reply,
            });
            replies.push(answer);
        }
        if let Err(refused) = reservation.push(jobs) {
            return Err(self.refused(model, refused));
        }
        drop(arrival);
        let timeout = model.settings.response_timeout;
        let mut answers = Vec::with_capacity(replies.len());
        for reply in replies {
            match tokio::time::timeout(timeout, reply).await {
                Ok(Ok(Ok(answered))) => answers.push(answered),
                Ok(Ok(Err(JobError::Model(why)))) => return Err(Failure::Internal(why)),
                Ok(Ok(Err(JobError::NoWorker(why)))) => return Err(Failure::NoWorker(why)),
                Ok(Err(_)) => {
                    return Err(Failure::Internal("the worker dropped the request".into()))
                }
                Err(_) => {
                    return Err(Failure::Internal(format!(
                        "no answer from the model within {} s (responseTimeout)",
                        timeout.as_secs()
                    )))
                }
            }
        }
        Ok(answers)
    }

    /// After every change to the registered models: the snapshot that restores them.
    pub(crate) fn changed(&self) {
        if let Some(snapshots) = &self.snapshots {
            if self.recording.load(Ordering::SeqCst) {
                snapshots.write(Kind::Snapshot, &self.registry);
            }
        }
    }

    /// Queued requests of each model name, over its versions.
    fn pending_by_name(&self) -> Vec<(String, usize)> {
        let mut pending: Vec<(String, usize)> = Vec::new();
        for m in self.registry.all() {
            let n = m.queue.pending();
            match pending.iter_mut().find(|(name, _)| *name == m.name) {
                Some(entry) => entry.1 += n,
                None => pending.push((m.name.clone(), n)),
            }
        }
        pending
    }
}

/// The image of a prediction request: a multipart field `data` (or `body`), as TorchServe handlers
/// read `row.get("data") or row.get("body")`, else the raw body.
async fn image_bytes(request: &Request) -> Result<Bytes, String> {
    let content_type = request.header("content-type").unwrap_or("");
    let bytes = match multipart::boundary(content_type) {
        Some(boundary) => multipart::field(request.body.clone(), &boundary, &["data", "body"])
            .await
            .map_err(|e| format!("bad multipart form: {e}"))?,
        None => request.body.clone(),
    };
    if bytes.is_empty() {
        return Err("the request has no image (empty body)".into());
    }
    Ok(bytes)
}

/// This process's resident memory in bytes (0 where /proc is missing).
pub(crate) fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}
