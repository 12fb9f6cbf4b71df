//! What the server answers: TorchServe 0.12's inference endpoints (`/ping`, `/predictions`), its
//! read-only management views (`/models`), its Prometheus `/metrics`, and the KServe V2 protocol
//! (in `kserve`), with TorchServe's status codes and error bodies.

pub(crate) mod kserve;

use super::answer;
use super::auth::{Auth, Endpoint};
use super::batcher::{Answered, Arrival, Job, Queue, Refused, Reservation};
use super::http::{Request, Response};
use super::metrics::{Metrics, Observation, Rejection};
use super::models::ServedModel;
use super::{multipart, pyjson};
use crate::engine::preprocess::Prepared;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a request waits for the model before the server gives up on it (TorchServe's
/// responseTimeout).
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// Images up to this size are decoded on the I/O worker that read them (see `prepare`).
const INLINE_DECODE_BYTES: usize = 256 << 10;

pub(crate) struct App {
    pub(crate) models: Vec<ServedModel>,
    pub(crate) queue: Arc<Queue>,
    /// How long a request may wait for room in a full queue before its 503.
    pub(crate) queue_wait: Duration,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) auth: Auth,
    pub(crate) batch_size: usize,
    pub(crate) max_batch_delay: Duration,
    pub(crate) device: String,
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

fn pretty(value: &Value) -> Response {
    Response::json(200, format!("{}\n", pyjson::dumps(value)))
}

/// No model of the name (or version) asked for.
pub(crate) struct Missing {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

/// A prediction failed for a reason the client can act on, or did not get an answer.
pub(crate) enum Failure {
    BadInput(String),
    QueueFull,
    ShuttingDown,
    Internal(String),
}

impl Failure {
    /// How the metrics count it.
    pub(crate) fn rejection(&self) -> Rejection {
        match self {
            Failure::BadInput(_) => Rejection::BadInput,
            Failure::QueueFull => Rejection::QueueFull,
            Failure::ShuttingDown => Rejection::ShuttingDown,
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

    /// A request to a prediction endpoint counts as arriving from its head on, so that a batch waits
    /// (up to the batch delay) for a body still coming over the network.
    pub(crate) fn arrival_for(&self, method: &str, target: &str) -> Option<Arrival> {
        let path = target.split('?').next().unwrap_or("");
        let predicts = (path.starts_with("/predictions/") && (method == "PUT" || method == "POST"))
            || (path.starts_with("/v2/models/") && path.ends_with("/infer") && method == "POST");
        predicts.then(|| self.queue.arrival())
    }

    /// The 401 for a request without valid credentials, from its target and Authorization header
    /// alone: the connection answers it before reading (or asking for, `100 Continue`) the body.
    pub(crate) fn unauthorized(
        &self,
        target: &str,
        authorization: Option<&str>,
    ) -> Option<Response> {
        let path = target.split('?').next().unwrap_or("");
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let endpoint = match segments.as_slice() {
            ["ping"] | ["v2", "health", ..] => Endpoint::Health,
            ["metrics"] => Endpoint::Metrics,
            _ => Endpoint::Api,
        };
        if self.auth.allows(endpoint, authorization) {
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

    pub(crate) async fn handle(
        self: &Arc<App>,
        request: Request,
        arrival: Option<Arrival>,
    ) -> Response {
        let request = &request;
        let path = request.path.as_str();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // Connections refuse these from the head; a request handled directly is checked here.
        if let Some(response) = self.unauthorized(path, request.header("authorization")) {
            return response;
        }
        let get = request.method == "GET";
        match segments.as_slice() {
            // TorchServe answers /ping whatever the method.
            ["ping"] => pretty(&json!({"status": "Healthy"})),
            ["predictions", name] | ["predictions", name, _] if !name.is_empty() => {
                if request.method != "PUT" && request.method != "POST" {
                    return method_not_allowed();
                }
                self.predict(request, name, segments.get(2).copied(), arrival)
                    .await
            }
            ["models"] if get => self.list_models(request),
            ["models", name] if get => self.describe(name, None),
            ["models", name, version] if get => self.describe(name, Some(version)),
            ["models", ..] => method_not_allowed(),
            ["metrics"] if get => Response::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(
                    &self.pending_by_name(),
                    self.queue.arriving(),
                    &metric_names(request),
                ),
            ),
            ["metrics"] => method_not_allowed(),
            ["v2", ..] => kserve::handle(self, request, &segments[1..], arrival).await,
            [""] => method_not_allowed(),
            _ => not_found(),
        }
    }

    /// The model a request names: by name, and version if given (else the first one registered).
    pub(crate) fn find(&self, name: &str, version: Option<&str>) -> Result<usize, Response> {
        self.lookup(name, version)
            .map_err(|missing| error(404, missing.kind, &missing.message))
    }

    /// `find`, with the miss as TorchServe names it.
    pub(crate) fn lookup(&self, name: &str, version: Option<&str>) -> Result<usize, Missing> {
        let mut any = false;
        for (k, m) in self.models.iter().enumerate() {
            if m.name == name {
                any = true;
                if version.is_none_or(|v| v == m.version) {
                    return Ok(k);
                }
            }
        }
        Err(if any {
            Missing {
                kind: "ModelVersionNotFoundException",
                message: format!(
                    "Model version: {} does not exist for model: {name}",
                    version.unwrap_or_default()
                ),
            }
        } else {
            Missing {
                kind: "ModelNotFoundException",
                message: format!("Model not found: {name}"),
            }
        })
    }

    /// One image through the path every protocol shares: admitted (before decoding), decoded and
    /// preprocessed, batched, answered.
    pub(crate) async fn predict_image(
        self: &Arc<App>,
        model: usize,
        image: Bytes,
        arrival: Arrival,
    ) -> Result<Answered, Failure> {
        let reservation = self.admit(1).await?;
        let prepared = self.prepare(model, vec![image], false).await?;
        let mut answers = self.infer(model, prepared, reservation, arrival).await?;
        Ok(answers.remove(0))
    }

    /// Counts a prediction request of `model` once, however many images it carried.
    pub(crate) fn observe(
        &self,
        model: usize,
        started: Instant,
        answered: &Result<Vec<Answered>, Failure>,
    ) {
        let m = &self.models[model];
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
            Ok(k) => k,
            Err(response) => return response,
        };
        let shown = format!("{} {}", request.method, request.path);
        let arrival = arrival.unwrap_or_else(|| self.queue.arrival());
        let answered = match image_bytes(request).await {
            Ok(image) => self
                .predict_image(model, image, arrival)
                .await
                .map(|answered| vec![answered]),
            Err(why) => Err(Failure::BadInput(why)),
        };
        self.observe(model, started, &answered);
        let answered = match answered {
            Ok(mut answers) => answers.remove(0),
            Err(failure) => return self.failure(&shown, name, failure),
        };
        let served = &self.models[model];
        let details = request
            .query_param("details")
            .is_some_and(|v| v != "false" && v != "0");
        if details {
            Response::json(200, answer::detailed(&served.schema, &answered.prediction))
        } else {
            // TorchServe sends a handler's answer without a Content-Type; it is always JSON, and
            // clients (and proxies that sniff) do better when told so.
            Response::new(
                200,
                crate::serve::http::JSON,
                answer::torchserve(&served.schema, &answered.prediction),
            )
        }
    }

    /// Room in the queue for `n` images, waiting up to the queue wait for it.
    pub(crate) async fn admit(&self, n: usize) -> Result<Reservation, Failure> {
        if n > self.queue.capacity() {
            return Err(Failure::BadInput(format!(
                "{n} inputs are more than the queue holds ({}, --job-queue-size)",
                self.queue.capacity()
            )));
        }
        self.queue
            .admit(n, self.queue_wait)
            .await
            .map_err(|refused| match refused {
                Refused::Full => Failure::QueueFull,
                Refused::Closed => Failure::ShuttingDown,
            })
    }

    /// Decodes and preprocesses images for `model` on the decoding pool, in order; `numbered`
    /// errors say which image of the request failed.
    pub(crate) async fn prepare(
        self: &Arc<App>,
        model: usize,
        images: Vec<Bytes>,
        numbered: bool,
    ) -> Result<Vec<Prepared>, Failure> {
        let small = images.iter().map(Bytes::len).sum::<usize>() <= INLINE_DECODE_BYTES;
        let decode = move |app: &App| {
            images
                .iter()
                .enumerate()
                .map(|(i, image)| {
                    app.models[model].preprocessor.prepare(image).map_err(|e| {
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
            decode(self)
        } else {
            let app = Arc::clone(self);
            self.off_thread(move || decode(&app)).await?
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

    pub(crate) fn failure(&self, shown: &str, name: &str, failure: Failure) -> Response {
        let (status, kind, message) = self.explain(shown, name, failure);
        error(status, kind, &message)
    }

    /// A failure's HTTP status, TorchServe exception type and message.
    pub(crate) fn explain(
        &self,
        shown: &str,
        name: &str,
        failure: Failure,
    ) -> (u16, &'static str, String) {
        match failure {
            Failure::BadInput(why) => (400, "BadRequestException", format!("{shown}: {why}")),
            Failure::QueueFull => (
                503,
                "ServiceUnavailableException",
                format!(
                    "Model \"{name}\" has too many pending requests ({} queued); retry later",
                    self.queue.capacity()
                ),
            ),
            Failure::ShuttingDown => (
                503,
                "ServiceUnavailableException",
                "The server is shutting down".into(),
            ),
            Failure::Internal(why) => (500, "InternalServerException", format!("{shown}: {why}")),
        }
    }

    /// Queues preprocessed images for `model` in the room reserved for them and waits for their
    /// answers, in order. `arrival` marks the request as on its way to the queue until its jobs are in
    /// it.
    pub(crate) async fn infer(
        &self,
        model: usize,
        inputs: Vec<Prepared>,
        reservation: Reservation,
        arrival: Arrival,
    ) -> Result<Vec<Answered>, Failure> {
        let mut replies = Vec::with_capacity(inputs.len());
        let mut jobs = Vec::with_capacity(inputs.len());
        let enqueued = Instant::now();
        for input in inputs {
            let (reply, answer) = oneshot::channel();
            jobs.push(Job {
                model,
                input,
                enqueued,
                reply,
            });
            replies.push(answer);
        }
        match reservation.push(jobs) {
            Ok(()) => {}
            Err(Refused::Full) => return Err(Failure::QueueFull),
            Err(Refused::Closed) => return Err(Failure::ShuttingDown),
        }
        drop(arrival);
        let mut answers = Vec::with_capacity(replies.len());
        for reply in replies {
            match tokio::time::timeout(RESPONSE_TIMEOUT, reply).await {
                Ok(Ok(Ok(answered))) => answers.push(answered),
                Ok(Ok(Err(why))) => return Err(Failure::Internal(why)),
                Ok(Err(_)) => {
                    return Err(Failure::Internal(
                        "the model thread dropped the request".into(),
                    ))
                }
                Err(_) => {
                    return Err(Failure::Internal(format!(
                        "no answer from the model within {} s",
                        RESPONSE_TIMEOUT.as_secs()
                    )))
                }
            }
        }
        Ok(answers)
    }

    fn pending_by_name(&self) -> Vec<(String, usize)> {
        let mut pending: Vec<(String, usize)> = Vec::new();
        for (k, m) in self.models.iter().enumerate() {
            let n = self.queue.pending(k);
            match pending.iter_mut().find(|(name, _)| *name == m.name) {
                Some(entry) => entry.1 += n,
                None => pending.push((m.name.clone(), n)),
            }
        }
        pending
    }

    /// `GET /models?limit=&next_page_token=`, TorchServe's paging included.
    fn list_models(&self, request: &Request) -> Response {
        let number = |name: &str, default: i64| -> Result<i64, Response> {
            match request.query_param(name) {
                None | Some("") => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    error(
                        400,
                        "BadRequestException",
                        &format!("Invalid {name}: {v:?} is not an integer"),
                    )
                }),
            }
        };
        let (limit, token) = match (number("limit", 100), number("next_page_token", 0)) {
            (Ok(l), Ok(t)) => (l, t),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let limit = if (0..=100).contains(&limit) {
            limit
        } else {
            100
        } as usize;
        let token = token.max(0) as usize;
        let mut names: Vec<&ServedModel> = Vec::new();
        for m in &self.models {
            if !names.iter().any(|n| n.name == m.name) {
                names.push(m);
            }
        }
        names.sort_by(|a, b| a.name.cmp(&b.name));
        let mut last = token + limit;
        let mut body = serde_json::Map::new();
        if last > names.len() {
            last = names.len();
        } else {
            body.insert("nextPageToken".into(), json!(last.to_string()));
        }
        let page: Vec<Value> = names[token.min(last)..last]
            .iter()
            .map(|m| json!({"modelName": m.name, "modelUrl": m.url}))
            .collect();
        body.insert("models".into(), Value::Array(page));
        pretty(&Value::Object(body))
    }

    /// `GET /models/{name}[/{version}|/all]`: always an array, in TorchServe's shape.
    fn describe(&self, name: &str, version: Option<&str>) -> Response {
        let chosen: Vec<usize> = match version {
            Some("all") => (0..self.models.len())
                .filter(|&k| self.models[k].name == name)
                .collect(),
            _ => match self.find(name, version) {
                Ok(k) => vec![k],
                Err(response) => return response,
            },
        };
        if chosen.is_empty() {
            return error(
                404,
                "ModelNotFoundException",
                &format!("Model not found: {name}"),
            );
        }
        let pid = std::process::id();
        let memory = resident_bytes();
        let described: Vec<Value> = chosen
            .into_iter()
            .map(|k| {
                let m = &self.models[k];
                let pending = self.queue.pending(k);
                json!({
                    "modelName": m.name,
                    "modelVersion": m.version,
                    "modelUrl": m.url,
                    "runtime": m.runtime,
                    "minWorkers": 1,
                    "maxWorkers": 1,
                    "batchSize": self.batch_size,
                    "maxBatchDelay": self.max_batch_delay.as_millis() as u64,
                    "responseTimeout": RESPONSE_TIMEOUT.as_secs(),
                    "startupTimeout": 120,
                    "maxRetryTimeoutInSec": 300,
                    "clientTimeoutInMills": 0,
                    "parallelType": "",
                    "parallelLevel": 0,
                    "deviceType": self.device,
                    "continuousBatching": false,
                    "useJobTicket": false,
                    "useVenv": false,
                    "stateful": false,
                    "sequenceMaxIdleMSec": 0,
                    "sequenceTimeoutMSec": 0,
                    "maxNumSequence": 0,
                    "maxSequenceJobQueueSize": 0,
                    "loadedAtStartup": true,
                    "workers": [{
                        "id": "9000",
                        "startTime": m.loaded_at,
                        "status": "READY",
                        "memoryUsage": memory,
                        "pid": pid,
                        "gpu": self.device != "cpu",
                        "gpuUsage": "N/A"
                    }],
                    "jobQueueStatus": {
                        // Room held by requests still decoding is not free.
                        "remainingCapacity": self
                            .queue
                            .capacity()
                            .saturating_sub(pending + self.queue.reserved()),
                        "pendingRequests": pending
                    }
                })
            })
            .collect();
        pretty(&Value::Array(described))
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
