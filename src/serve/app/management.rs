//! TorchServe 0.12's management API: list and describe, register (from the model store), scale,
//! set-default and unregister, with its parameters, status codes and bodies. Register and
//! unregister answer 405 unless the model API is enabled, as in TorchServe.

use super::errors::{self, error, pretty, Exception};
use super::state::App;
use crate::serve::http::{Request, Response};
use crate::serve::model_store::Source;
use crate::serve::models::{self, Registration, ServedModel};
use crate::serve::registry::RemoveError;
use crate::serve::unrestored::UnrestoredVersion;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long a synchronous register or scale waits for its workers (TorchServe's startupTimeout).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

fn status(message: String) -> Response {
    pretty(&json!({ "status": message }))
}

fn bad_request(message: &str) -> Response {
    error(Exception::BadRequest, message)
}

/// A request's parameters: its query, or its JSON body when it is sent as JSON (TorchServe reads
/// one or the other, never both).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn of(request: &Request) -> Result<Params, Response> {
        let json = request
            .header("content-type")
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Ok(Params(
                form_urlencoded::parse(request.query.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            ));
        }
        let body: serde_json::Map<String, Value> = serde_json::from_slice(&request.body)
            .map_err(|e| bad_request(&format!("Invalid JSON body: {e}")))?;
        Ok(Params(
            body.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect(),
        ))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer parameter; absent (or empty) gives None.
    fn int(&self, name: &str) -> Result<Option<i64>, Response> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad_request(&format!("Invalid {name}: {v:?} is not an integer"))),
        }
    }

    /// An integer setting as TorchServe reads it: one that is not a number counts as not given.
    fn setting(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.trim().parse().ok())
    }

    /// A boolean parameter, as Java's Boolean.parseBoolean reads it ("true" in any case).
    fn flag(&self, name: &str, default: bool) -> bool {
        self.get(name)
            .map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
    }
}

/// `GET /models?limit=&next_page_token=`, TorchServe's paging included.
pub(super) fn list(app: &App, request: &Request) -> Response {
    let params = match Params::of(request) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let (limit, token) = match (params.int("limit"), params.int("next_page_token")) {
        (Ok(l), Ok(t)) => (l.unwrap_or(100), t.unwrap_or(0)),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let limit = if (0..=100).contains(&limit) {
        limit
    } else {
        100
    } as usize;
    let token = token.max(0) as usize;
    // Each name once, with its default version's URL; a name with no served version by the
    // archive its snapshot names.
    let mut names: Vec<(String, String)> = app
        .registry
        .defaults()
        .iter()
        .map(|m| (m.name.clone(), m.url.clone()))
        .collect();
    for left_out in app.unrestored.all() {
        let name = &left_out.version.name;
        if app.registry.default_version(name).is_none() && !names.iter().any(|(n, _)| n == name) {
            names.push((name.clone(), left_out.version.mar_name.clone()));
        }
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let mut last = token + limit;
    let mut body = serde_json::Map::new();
    if last > names.len() {
        last = names.len();
    } else {
        body.insert("nextPageToken".into(), json!(last.to_string()));
    }
    let page: Vec<Value> = names[token.min(last)..last]
        .iter()
        .map(|(name, url)| json!({"modelName": name, "modelUrl": url}))
        .collect();
    body.insert("models".into(), Value::Array(page));
    pretty(&Value::Object(body))
}

/// `GET /models/{name}[/{version}|/all]`: always an array, in TorchServe's shape.
pub(super) fn describe(app: &App, name: &str, version: Option<&str>) -> Response {
    // Versions a restore left out are described too, with no workers and the reason.
    let (chosen, left_out): (Vec<Arc<ServedModel>>, Vec<UnrestoredVersion>) = match version {
        Some("all") => (app.registry.versions(name), app.unrestored.versions(name)),
        _ => match app.lookup(name, version) {
            Ok(m) => (vec![m], Vec::new()),
            Err(missing) => match app.unrestored.find(name, version) {
                Some(left_out) => (Vec::new(), vec![left_out]),
                None => return errors::missing(&missing),
            },
        },
    };
    if chosen.is_empty() && left_out.is_empty() {
        return error(
            Exception::ModelNotFound,
            &format!("Model not found: {name}"),
        );
    }
    let pid = std::process::id();
    let memory = resident_bytes();
    let described: Vec<Value> = chosen
        .iter()
        .map(|m| {
            let pending = m.queue.pending();
            let (min, max) = m.workers.limits();
            let workers: Vec<Value> = m
                .workers
                .status()
                .iter()
                .map(|w| {
                    json!({
                        "id": w.id.to_string(),
                        "startTime": w.started,
                        // TorchServe's two states: a worker still loading its model is UNLOADING.
                        "status": if w.ready { "READY" } else { "UNLOADING" },
                        "memoryUsage": memory,
                        "pid": if w.ready { i64::from(pid) } else { -1 },
                        "gpu": m.device != "cpu",
                        "gpuUsage": "N/A"
                    })
                })
                .collect();
            json!({
                "modelName": m.name,
                "modelVersion": m.version,
                "modelUrl": m.url,
                "runtime": m.runtime,
                "minWorkers": min,
                "maxWorkers": max,
                "batchSize": m.settings.batch_size,
                "maxBatchDelay": m.settings.max_batch_delay.as_millis() as u64,
                "responseTimeout": m.settings.response_timeout.as_secs(),
                "startupTimeout": STARTUP_TIMEOUT.as_secs(),
                "maxRetryTimeoutInSec": 300,
                "clientTimeoutInMills": 0,
                "parallelType": "",
                "parallelLevel": 0,
                "deviceType": m.device,
                "continuousBatching": false,
                "useJobTicket": false,
                "useVenv": false,
                "stateful": false,
                "sequenceMaxIdleMSec": 0,
                "sequenceTimeoutMSec": 0,
                "maxNumSequence": 0,
                "maxSequenceJobQueueSize": 0,
                "loadedAtStartup": m.loaded_at_startup,
                "workers": workers,
                "jobQueueStatus": {
                    // Room held by requests still decoding is not free.
                    "remainingCapacity": m
                        .queue
                        .capacity()
                        .saturating_sub(pending + m.queue.reserved()),
                    "pendingRequests": pending
                }
            })
        })
        .chain(left_out.iter().map(|u| unrestored(app, u)))
        .collect();
    pretty(&Value::Array(described))
}

/// A version a restore left out, as describe shows it: its snapshot's settings, no workers, and
/// why it is not served.
fn unrestored(app: &App, left_out: &UnrestoredVersion) -> Value {
    let r = &left_out.version;
    let settings = &app.defaults.settings;
    json!({
        "modelName": r.name,
        "modelVersion": r.version,
        "modelUrl": r.mar_name,
        "runtime": "python",
        "minWorkers": r.min_workers,
        "maxWorkers": r.max_workers,
        "batchSize": r.batch_size.unwrap_or(settings.batch_size),
        "maxBatchDelay": r.max_batch_delay_ms.unwrap_or(settings.max_batch_delay.as_millis() as u64),
        "responseTimeout": r.response_timeout_s.unwrap_or(settings.response_timeout.as_secs()),
        "startupTimeout": STARTUP_TIMEOUT.as_secs(),
        "loadedAtStartup": false,
        "workers": [],
        "notServed": left_out.message(),
    })
}

/// A positive setting, or the default: TorchServe ignores values of 0 and below.
fn positive(value: Option<i64>) -> Option<u64> {
    value.filter(|&v| v > 0).map(|v| v as u64)
}

/// `POST /models?url=...`: registers an archive from the model store.
pub(super) async fn register(app: &Arc<App>, request: &Request) -> Response {
    let params = match Params::of(request) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(url) = params.get("url").filter(|u| !u.is_empty()) else {
        return bad_request("Parameter url is required.");
    };
    let Some(store) = &app.store else {
        return error(
            Exception::ModelNotFound,
            &format!("Model not found at: {url}"),
        );
    };
    // As TorchServe reads them: a setting that is not a number is not given.
    let [batch_size, max_batch_delay, initial_workers, response_timeout] = [
        "batch_size",
        "max_batch_delay",
        "initial_workers",
        "response_timeout",
    ]
    .map(|name| params.setting(name));
    if let Some(runtime) = params.get("runtime").filter(|r| !r.is_empty()) {
        // TorchServe's RuntimeType names; scancer runs the TorchScript model whatever it says.
        if !["python", "python3", "LSP"].contains(&runtime) {
            return bad_request(&format!("Invalid RuntimeType value: {runtime}"));
        }
    }
    if let Some(name) = params.get("model_name").filter(|n| !n.is_empty()) {
        if let Err(e) = crate::mar::manifest::validate_model_name(name) {
            return bad_request(&e.to_string());
        }
    }
    let (path, downloaded) = match store.resolve(url) {
        Ok(Source::File(path)) => (path, false),
        Ok(Source::Download { url, file }) => {
            let store = Arc::clone(store);
            match tokio::task::spawn_blocking(move || store.download(&url, &file)).await {
                Ok(Ok(path)) => (path, true),
                Ok(Err(why)) => return error((&why).into(), &why.message),
                Err(e) => {
                    return error(
                        Exception::InternalServer,
                        &format!("the download failed: {e}"),
                    )
                }
            }
        }
        Err(why) => return error((&why).into(), &why.message),
    };
    let defaults = &app.defaults;
    let mut settings = defaults.settings;
    if let Some(n) = positive(batch_size) {
        settings.batch_size = n as usize;
    }
    if let Some(ms) = positive(max_batch_delay) {
        settings.max_batch_delay = Duration::from_millis(ms);
    }
    if let Some(s) = positive(response_timeout) {
        settings.response_timeout = Duration::from_secs(s);
    }
    let workers = initial_workers.map_or(defaults.workers, |n| n.max(0) as usize);
    let synchronous = params.flag("synchronous", true);
    let registration = Registration {
        path,
        name: params
            .get("model_name")
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        url: url.to_string(),
        config: None,
        settings,
        loaded_at_startup: false,
        downloaded,
    };
    let path = registration.path.clone();
    let _change = app.changes.lock().await;
    let model = match load(app, registration, workers, workers).await {
        Ok(model) => model,
        Err(refusal) => {
            if downloaded {
                // Not registered: the archive fetched for it goes too.
                let _ = std::fs::remove_file(&path);
            }
            return refusal.response();
        }
    };
    let (name, version) = (model.name.clone(), model.version.clone());
    if workers == 0 {
        return status(format!(
            "Model \"{name}\" Version: {version} registered with 0 initial workers. Use scale workers API to add workers for the model."
        ));
    }
    if !synchronous {
        return Response::json(StatusCode::ACCEPTED, processing());
    }
    match model.workers.settled(STARTUP_TIMEOUT).await {
        Ok(true) => status(format!(
            "Model \"{name}\" Version: {version} registered with {workers} initial workers"
        )),
        Ok(false) => Response::json(StatusCode::PARTIAL_CONTENT, processing()),
        Err(failed) => {
            // TorchServe unregisters a model whose workers cannot start.
            let _ = app.registry.remove(&name, Some(&version));
            model.queue.close();
            model.workers.scale(0, 0, None);
            if let Err(e) = app.changed() {
                crate::messages::warning!("{name} {version}: {e}");
            }
            error(
                Exception::InternalServer,
                &format!("Failed to start workers for model {name} version: {version} ({failed} could not load the model)"),
            )
        }
    }
}

fn processing() -> String {
    format!(
        "{}\n",
        crate::serve::pyjson::dumps(&json!({"status": "Processing worker updates..."}))
    )
}

/// Why a registration was refused: TorchServe's exception and message.
pub(crate) struct Refusal {
    pub(crate) exception: Exception,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn response(&self) -> Response {
        error(self.exception, &self.message)
    }
}

/// Loads a registration's model beside the I/O threads, registers it, and starts `min` workers
/// of it (at most `max`); or says why not.
pub(crate) async fn load(
    app: &Arc<App>,
    registration: Registration,
    min: usize,
    max: usize,
) -> Result<Arc<ServedModel>, Refusal> {
    let options = app.defaults.engine.clone();
    let metrics = Arc::clone(&app.metrics);
    let loaded =
        tokio::task::spawn_blocking(move || models::load(&registration, &options, metrics)).await;
    let (model, engine) = match loaded {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(e)) => {
            return Err(Refusal {
                exception: Exception::InvalidModel,
                message: format!("{e:#}"),
            })
        }
        Err(e) => {
            return Err(Refusal {
                exception: Exception::InternalServer,
                message: format!("loading the model failed: {e}"),
            })
        }
    };
    let model = Arc::new(model);
    if let Err(conflict) = app.registry.insert(Arc::clone(&model)) {
        return Err(Refusal {
            exception: Exception::ConflictStatus,
            message: conflict.0,
        });
    }
    // A version a restore left out as its name's default is the default again.
    let previous_default = app.registry.default_version(&model.name);
    let restores_default = app
        .unrestored
        .default_of(&model.name)
        .is_some_and(|u| u.version.version == model.version);
    if restores_default {
        let _ = app.registry.set_default(&model.name, &model.version);
    }
    // The engine loaded to check the model is the first worker's (or dropped for none).
    model.workers.scale(min, max, Some(engine));
    if let Err(e) = app.changed() {
        if let Some(previous) = previous_default.filter(|_| restores_default) {
            let _ = app.registry.set_default(&model.name, &previous);
        }
        let _ = app.registry.remove(&model.name, Some(&model.version));
        retire(&model);
        model.workers.scale(0, 0, None);
        return Err(Refusal {
            exception: Exception::InternalServer,
            message: e.to_string(),
        });
    }
    // Registered again: a version a restore left out is served now.
    app.unrestored.forget(&model.name, &model.version);
    Ok(model)
}

/// `PUT /models/{name}[/{version}]?min_worker=&max_worker=&synchronous=`.
pub(super) async fn scale(
    app: &Arc<App>,
    request: &Request,
    name: &str,
    version: Option<&str>,
) -> Response {
    let params = match Params::of(request) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let (min, max) = (params.setting("min_worker"), params.setting("max_worker"));
    let version = version.or(params.get("model_version").filter(|v| !v.is_empty()));
    let model = match app.find(name, version) {
        Ok(m) => m,
        Err(response) => return response,
    };
    let min = min.unwrap_or(1);
    let max = max.unwrap_or(min);
    if min < 0 || max < 0 {
        return bad_request("min_worker and max_worker cannot be negative.");
    }
    if max < min {
        return bad_request("max_worker cannot be less than min_worker.");
    }
    let (min, max) = (min as usize, max as usize);
    let synchronous = params.flag("synchronous", false);
    {
        let _change = app.changes.lock().await;
        // Unregistered meanwhile: nothing to scale.
        if !app.registry.contains(&model.name, &model.version) {
            return error(
                Exception::ModelNotFound,
                &format!("Model not found: {name}"),
            );
        }
        let (was_min, was_max) = model.workers.limits();
        model.workers.scale(min, max, None);
        if let Err(e) = app.changed() {
            model.workers.scale(was_min, was_max, None);
            return error(Exception::InternalServer, &e.to_string());
        }
    }
    if !synchronous {
        return Response::json(StatusCode::ACCEPTED, processing());
    }
    match model.workers.settled(STARTUP_TIMEOUT).await {
        Ok(true) => status(match version {
            Some(v) => format!("Workers scaled to {min} for model: {name}, version: {v}"),
            None => format!("Workers scaled to {min} for model: {name}"),
        }),
        Ok(false) => Response::json(StatusCode::PARTIAL_CONTENT, processing()),
        Err(failed) => error(
            Exception::InternalServer,
            &format!("Failed to start workers for model {name}: {failed} could not load the model"),
        ),
    }
}

/// `PUT /models/{name}/{version}/set-default`.
pub(super) async fn set_default(app: &Arc<App>, name: &str, version: &str) -> Response {
    let _change = app.changes.lock().await;
    let preview = app.registry.preview();
    if let Err(missing) = preview.set_default(name, version) {
        return match app.unrestored.find(name, Some(version)) {
            Some(left_out) => error(Exception::ModelNotFound, &left_out.message()),
            None => errors::missing(&missing),
        };
    }
    if let Err(e) = app.record(&preview, &app.unrestored.without_default(name)) {
        return error(Exception::InternalServer, &e.to_string());
    }
    match app.registry.set_default(name, version) {
        Ok(()) => {
            app.unrestored.clear_default(name);
            status(format!(
                "Default version successfully updated for model \"{name}\" to \"{version}\""
            ))
        }
        Err(missing) => errors::missing(&missing),
    }
}

/// `DELETE /models/{name}[/{version}]`: the version (the default one if none is named) stops taking
/// requests; those already queued are answered, then its workers stop.
pub(super) async fn unregister(app: &Arc<App>, name: &str, version: Option<&str>) -> Response {
    let _change = app.changes.lock().await;
    if let Some(left_out) = unrestored_target(app, name, version) {
        if left_out.version.default && app.registry.contains_name(name) {
            return error(
                Exception::InvalidModelVersion,
                &format!("Cannot remove default version for model {name}"),
            );
        }
        return forget(app, &left_out);
    }
    // The snapshot without the version is on disk before it goes, and before its archive does.
    let preview = app.registry.preview();
    let removed = match preview.remove(name, version) {
        Ok(model) => model,
        Err(RemoveError::Missing(missing)) => return errors::missing(&missing),
        Err(RemoveError::Default(message)) => {
            return error(Exception::InvalidModelVersion, &message)
        }
    };
    if let Err(e) = app.record(&preview, &app.unrestored.restored()) {
        return error(Exception::InternalServer, &e.to_string());
    }
    // Changes are made one at a time (`changes`): the registry is still the one previewed.
    let model = app
        .registry
        .remove(name, Some(&removed.version))
        .unwrap_or(removed);
    retire(&model);
    if model.downloaded {
        // TorchServe deletes the archives it downloaded.
        if let Err(e) = std::fs::remove_file(&model.path) {
            crate::messages::note!("cannot remove {}: {e}", model.path.display());
        }
    }
    status(format!("Model \"{name}\" unregistered"))
}

/// The version an unregister names, when a restore left it out: the one named, else the name's
/// default (or any, for a name with no served version).
fn unrestored_target(app: &App, name: &str, version: Option<&str>) -> Option<UnrestoredVersion> {
    match version {
        Some(v) if !app.registry.contains(name, v) => app.unrestored.find(name, Some(v)),
        Some(_) => None,
        None if app.registry.contains_name(name) => app.unrestored.default_of(name),
        None => app.unrestored.find(name, None),
    }
}

/// Unregisters a version a restore left out: no longer in the snapshots, nothing to stop or delete.
fn forget(app: &App, left_out: &UnrestoredVersion) -> Response {
    let (name, version) = (&left_out.version.name, &left_out.version.version);
    if let Err(e) = app.record(&app.registry, &app.unrestored.without(name, version)) {
        return error(Exception::InternalServer, &e.to_string());
    }
    app.unrestored.forget(name, version);
    status(format!("Model \"{name}\" unregistered"))
}

/// Stops a removed version: its queue takes no new job, its workers answer the queued ones and stop.
pub(crate) fn retire(model: &ServedModel) {
    model.queue.close();
}

/// This process's resident memory in bytes (0 where /proc is missing).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}
