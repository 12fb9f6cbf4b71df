//! One request and its answer over hyper (HTTP/1.1 or HTTP/2): the head checked first (credentials,
//! declared size), the body read within its deadline and the server-wide budget of buffered body
//! bytes, then the application's answer, counted and logged.

use super::app::{error, refusal, slide_library, slide_uploaded, App, Exception, Roles, Route};
use super::conn::Tracker;
use super::http::{Limits, Request, Response};
use super::log_files::LogFile;
use super::slides::upload::store;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What every connection's requests share.
pub(crate) struct Exchanges {
    pub(crate) app: Arc<App>,
    /// What the listener answers.
    pub(crate) roles: Roles,
    pub(crate) limits: Limits,
    /// Body bytes buffered over all requests, one permit a byte.
    buffered: Arc<Semaphore>,
    pub(crate) quiet: bool,
    /// Headers every answer carries (TorchServe's CORS settings).
    pub(crate) always: Vec<(&'static str, String)>,
    /// The whole HTTP/1.1 answer to a client whose request head stalls.
    pub(crate) stalled: Bytes,
}

impl Exchanges {
    pub(crate) fn new(
        app: Arc<App>,
        limits: Limits,
        quiet: bool,
        roles: Roles,
        always: Vec<(&'static str, String)>,
    ) -> Exchanges {
        // Room for at least one body of the largest size, or that body could never be read.
        let budget = limits
            .max_buffered
            .max(limits.max_body)
            .min(Semaphore::MAX_PERMITS);
        let timeout = error(
            Exception::RequestTimeout,
            &format!(
                "the request head did not arrive within {} s",
                limits.head_timeout.as_secs_f64()
            ),
        );
        let mut timeout = timeout;
        timeout.headers.extend(always.iter().cloned());
        let stalled = timeout.to_http1_closing("Request Timeout");
        Exchanges {
            app,
            roles,
            limits,
            buffered: Arc::new(Semaphore::new(budget)),
            quiet,
            always,
            stalled: Bytes::from(stalled),
        }
    }
}

pub(crate) type Answer = hyper::Response<Full<Bytes>>;

/// Answers one request. Never fails: every problem is an HTTP answer.
pub(crate) async fn answer(
    exchanges: Arc<Exchanges>,
    tracker: Arc<Tracker>,
    peer: Arc<str>,
    request: hyper::Request<Incoming>,
) -> Result<Answer, Infallible> {
    let _in_flight = tracker.begin();
    let started = Instant::now();
    let (head, body) = request.into_parts();
    let line = format!("{} {}", head.method, head.uri.path());
    let version = head.version;
    let app = &exchanges.app;
    let route = Route::parse(&head.method, head.uri.path(), exchanges.roles);
    let (mut response, close) = match route.upload() {
        Some(name) => upload(&exchanges, &head, &route, body, name).await,
        None => match receive(&exchanges, &head, &route, body).await {
            Ok((request, arrival, _buffered)) => {
                (app.handle(request, &route, arrival).await, false)
            }
            Err(refused) => refused,
        },
    };
    response.headers.extend(exchanges.always.iter().cloned());
    app.metrics.response(response.status);
    let took = started.elapsed();
    if let Some(log) = app.metrics.log() {
        // TorchServe's access_log.log: `- /127.0.0.1:53514 "POST /predictions/m HTTP/1.1" 200 118`.
        log.line(
            LogFile::Access,
            format!(
                "- /{peer} \"{line} {version:?}\" {} {}",
                response.status.as_u16(),
                took.as_millis()
            ),
        );
    }
    if !exchanges.quiet {
        let ip = peer.rsplit_once(':').map_or(&*peer, |(ip, _)| ip);
        crate::messages::note!(
            "{} \"{line}\" {} {} B {:.1} ms",
            ip.trim_start_matches('[').trim_end_matches(']'),
            response.status.as_u16(),
            response.body.len(),
            took.as_secs_f64() * 1e3,
        );
    }
    Ok(into_hyper(response, close || tracker.stopping()))
}

/// A request's head and body as the application reads them, with the arrival that holds a batch
/// open for it and the budget its body holds; or the answer that refuses it, and whether the
/// connection must close after (its body was not read).
async fn receive(
    exchanges: &Exchanges,
    head: &hyper::http::request::Parts,
    route: &Route<'_>,
    body: Incoming,
) -> Result<
    (
        Request,
        Option<super::batcher::Arrival>,
        Option<OwnedSemaphorePermit>,
    ),
    (Response, bool),
> {
    let app = &exchanges.app;
    let limits = exchanges.limits;
    let path = head.uri.path();
    // A body left unread makes the connection unusable for another request.
    let unread = !body.is_end_stream();
    let refuse = |exception, message: String| (refusal(path, exception, &message), unread);
    let mut headers = Vec::with_capacity(head.headers.len());
    for (name, value) in &head.headers {
        let Ok(value) = value.to_str() else {
            return Err(refuse(
                Exception::BadRequest,
                format!("header {name} is not UTF-8"),
            ));
        };
        headers.push((name.as_str().to_string(), value.trim().to_string()));
    }
    let authorization = headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.as_str());
    // No `100 Continue` and no byte of the body for a client without credentials: hyper asks for the
    // body only once it is polled.
    if let Some(refused) = app.unauthorized(route.access, path, authorization) {
        return Err((refused, unread));
    }
    let arrival = app.arrival_for(route);
    let max = limits.max_body;
    let declared = body.size_hint().exact();
    if let Some(n) = declared.filter(|&n| n > max as u64) {
        return Err(refuse(
            Exception::RequestEntityTooLarge,
            format!("the body of {n} bytes is over the limit of {max} bytes (--max-request-size)"),
        ));
    }
    let read = read_body(body, declared, max, &exchanges.buffered);
    let (bytes, buffered) = match tokio::time::timeout(limits.client_timeout, read).await {
        Ok(Ok(read)) => read,
        Ok(Err(BodyError::TooLarge)) => {
            return Err((
                refusal(
                    path,
                    Exception::RequestEntityTooLarge,
                    &format!("the body is over the limit of {max} bytes (--max-request-size)"),
                ),
                true,
            ))
        }
        Ok(Err(BodyError::Malformed(why))) => {
            return Err((refusal(path, Exception::BadRequest, &why), true))
        }
        Err(_) => {
            return Err((
                refusal(
                    path,
                    Exception::RequestTimeout,
                    &format!(
                        "the request did not arrive within {} s",
                        limits.client_timeout.as_secs()
                    ),
                ),
                true,
            ))
        }
    };
    let request = Request {
        method: head.method.clone(),
        path: path.to_string(),
        query: head.uri.query().unwrap_or("").to_string(),
        headers,
        body: bytes,
    };
    Ok((request, arrival, buffered))
}

/// A slide upload: its body streamed into the slide folder (other bodies are read into memory),
/// each chunk within the client timeout of the last. The answer, and whether the connection must
/// close (a refused body is left unread).
async fn upload(
    exchanges: &Exchanges,
    head: &hyper::http::request::Parts,
    route: &Route<'_>,
    body: Incoming,
    name: &str,
) -> (Response, bool) {
    let app = &exchanges.app;
    let path = head.uri.path();
    let unread = !body.is_end_stream();
    let authorization = head
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if let Some(refused) = app.unauthorized(route.access, path, authorization) {
        return (refused, unread);
    }
    let Some(library) = slide_library(app) else {
        return (super::app::not_found(), unread);
    };
    let declared = body.size_hint().exact();
    let chunks = http_body_util::BodyStream::new(body).filter_map(|frame| async move {
        match frame {
            Ok(frame) => frame.into_data().ok().map(Ok),
            Err(e) => Some(Err(e.to_string())),
        }
    });
    let idle = exchanges.limits.client_timeout;
    let stored = store(&library, name, declared, idle, Box::pin(chunks)).await;
    let close = stored.is_err();
    (slide_uploaded(stored), close)
}

enum BodyError {
    TooLarge,
    Malformed(String),
}

/// Reads a whole body of at most `max` bytes. The budget is taken before the bytes are: all at once
/// for a declared length (so that two half-read bodies cannot wait on each other), frame by frame
/// for a chunked one. While it waits for budget the body is not read, so the client is slowed by
/// TCP, not refused.
async fn read_body(
    mut body: Incoming,
    declared: Option<u64>,
    max: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyError> {
    let mut held: Option<OwnedSemaphorePermit> = None;
    let declared = declared.map(|n| n as usize);
    if let Some(n) = declared {
        take(budget, n, &mut held).await;
    }
    let mut bytes = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| BodyError::Malformed(format!("the body is malformed: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.len() > max - bytes.len() {
            return Err(BodyError::TooLarge);
        }
        if declared.is_none() {
            take(budget, data.len(), &mut held).await;
        }
        bytes.extend_from_slice(&data);
    }
    Ok((bytes.freeze(), held))
}

/// Adds `n` bytes of budget to what a body holds, waiting for them.
async fn take(budget: &Arc<Semaphore>, n: usize, held: &mut Option<OwnedSemaphorePermit>) {
    if n == 0 {
        return;
    }
    // The semaphore is never closed, and `n` is at most a body, which fits the budget.
    let n = n.min(u32::MAX as usize) as u32;
    if let Ok(permit) = Arc::clone(budget).acquire_many_owned(n).await {
        match held {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
    }
}

fn into_hyper(response: Response, close: bool) -> Answer {
    let mut answer = hyper::Response::builder().status(response.status);
    if !response.content_type.is_empty() {
        answer = answer.header(CONTENT_TYPE, response.content_type);
    }
    for (name, value) in &response.headers {
        answer = answer.header(*name, value.as_str());
    }
    if close {
        answer = answer.header(CONNECTION, "close");
    }
    answer
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| {
            let mut broken = hyper::Response::new(Full::new(Bytes::from_static(
                b"{\"code\": 500, \"type\": \"InternalServerException\", \"message\": \"the answer could not be written\"}\n",
            )));
            *broken.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            broken
        })
}
