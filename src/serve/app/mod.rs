//! What the server answers: TorchServe 0.12's inference endpoints (`/ping`, `/predictions`), its
//! read-only management views (`/models`), its Prometheus `/metrics`, and the KServe V2 protocol
//! (in `kserve`), with TorchServe's status codes and error bodies.

mod kserve;

use super::answer;
use super::auth::{Auth, Endpoint};
use super::batcher::{Answered, Arrival, Job, Queue, Refused};
use super::http::{Request, Response};
use super::metrics::{Metrics, Observation, Rejection};
use super::models::ServedModel;
use super::{multipart, pyjson};
use crate::engine::preprocess::Prepared;
use serde_json::{json, Value};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a request waits for the model before the server gives up on it (TorchServe's
/// responseTimeout).
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) struct App {
    pub(crate) models: Vec<ServedModel>,
    /// Images decoded at once: a few at a time, so that many clients sending large images cannot
    /// multiply decoded-pixel memory or starve the model thread of cores.
    pub(crate) decoders: Slots,
    pub(crate) queue: Arc<Queue>,
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
        let mut response = if segments.first() == Some(&"v2") {
            kserve::error(401, WHY)
        } else {
            error(401, "AuthenticationException", WHY)
        };
        for scheme in self.auth.schemes() {
            response = response.with_header("www-authenticate", scheme.to_string());
        }
        Some(response)
    }

    pub(crate) fn handle(&self, request: &Request, arrival: Option<Arrival>) -> Response {
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
            ["v2", ..] => kserve::handle(self, request, &segments[1..], arrival),
            [""] => method_not_allowed(),
            _ => not_found(),
        }
    }

    /// The model a request names: by name, and version if given (else the first one registered).
    pub(crate) fn find(&self, name: &str, version: Option<&str>) -> Result<usize, Response> {
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
            error(
                404,
                "ModelVersionNotFoundException",
                &format!(
                    "Model version: {} does not exist for model: {name}",
                    version.unwrap_or_default()
                ),
            )
        } else {
            error(
                404,
                "ModelNotFoundException",
                &format!("Model not found: {name}"),
            )
        })
    }

    fn predict(
        &self,
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
        let served_version = self.models[model].version.as_str();
        let shown = format!("{} {}", request.method, request.path);
        let arrival = arrival.unwrap_or_else(|| self.queue.arrival());
        let prepared = image_bytes(request).and_then(|image| {
            let _decoding = self.decoders.acquire();
            self.models[model]
                .preprocessor
                .prepare(image)
                .map_err(|e| e.to_string())
        });
        let answered = match prepared
            .map_err(Failure::BadInput)
            .and_then(|prepared| self.infer(model, vec![prepared], arrival))
        {
            Ok(mut answers) => answers.remove(0),
            Err(failure) => {
                self.metrics
                    .rejected(name, served_version, failure.rejection());
                return self.failure(&shown, name, failure);
            }
        };
        self.metrics.predicted(&Observation {
            model: name,
            version: served_version,
            images: 1,
            latency: started.elapsed(),
            queued: answered.queued,
        });
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

    pub(crate) fn failure(&self, shown: &str, name: &str, failure: Failure) -> Response {
        match failure {
            Failure::BadInput(why) => error(400, "BadRequestException", &format!("{shown}: {why}")),
            Failure::QueueFull => error(
                503,
                "ServiceUnavailableException",
                &format!(
                    "Model \"{name}\" has too many pending requests ({} queued); retry later",
                    self.queue.capacity()
                ),
            ),
            Failure::ShuttingDown => error(
                503,
                "ServiceUnavailableException",
                "The server is shutting down",
            ),
            Failure::Internal(why) => {
                error(500, "InternalServerException", &format!("{shown}: {why}"))
            }
        }
    }

    /// Queues preprocessed images for `model` and waits for their answers, in order.
    /// `arrival` marks the request as on its way to the queue until its jobs are in it.
    pub(crate) fn infer(
        &self,
        model: usize,
        inputs: Vec<Prepared>,
        arrival: Arrival,
    ) -> Result<Vec<Answered>, Failure> {
        if inputs.len() > self.queue.capacity() {
            return Err(Failure::BadInput(format!(
                "{} inputs are more than the queue holds ({}, --job-queue-size)",
                inputs.len(),
                self.queue.capacity()
            )));
        }
        let mut replies = Vec::with_capacity(inputs.len());
        let mut jobs = Vec::with_capacity(inputs.len());
        let enqueued = Instant::now();
        for input in inputs {
            let (reply, answer) = sync_channel(1);
            jobs.push(Job {
                model,
                input,
                enqueued,
                reply,
            });
            replies.push(answer);
        }
        match self.queue.push_all(jobs) {
            Ok(()) => {}
            Err(Refused::Full) => return Err(Failure::QueueFull),
            Err(Refused::Closed) => return Err(Failure::ShuttingDown),
        }
        drop(arrival);
        let mut answers = Vec::with_capacity(replies.len());
        for reply in replies {
            match reply.recv_timeout(RESPONSE_TIMEOUT) {
                Ok(Ok(answered)) => {
                    answers.push(answered);
                }
                Ok(Err(why)) => return Err(Failure::Internal(why)),
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
                        "remainingCapacity": self.queue.capacity().saturating_sub(pending),
                        "pendingRequests": pending
                    }
                })
            })
            .collect();
        pretty(&Value::Array(described))
    }
}

/// A counting semaphore.
pub(crate) struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

pub(crate) struct Slot<'a>(&'a Slots);

impl Slots {
    pub(crate) fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// The image of a prediction request: a multipart field `data` (or `body`), as TorchServe handlers
/// read `row.get("data") or row.get("body")`, else the raw body.
fn image_bytes(request: &Request) -> Result<&[u8], String> {
    let content_type = request.header("content-type").unwrap_or("");
    let bytes = match multipart::boundary(content_type) {
        Some(boundary) => {
            let parts = multipart::parse(&request.body, &boundary)
                .map_err(|e| format!("bad multipart form: {e}"))?;
            let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
            parts
                .iter()
                .find(|p| p.name == "data")
                .or_else(|| parts.iter().find(|p| p.name == "body"))
                .map(|p| p.data)
                .ok_or_else(|| {
                    format!("the form has no field named data or body (fields: {names:?})")
                })?
        }
        None => &request.body,
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
