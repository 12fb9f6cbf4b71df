//! The server's view of one HTTP exchange, whatever the protocol carried it (HTTP/1.1 or HTTP/2):
//! the request as the application reads it (head fields resolved, body complete) and the answer it
//! gives, plus the limits a client is held to.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use std::time::Duration;

/// The largest request head (request line and headers) accepted; a larger one is answered 431.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// The most headers a request may have.
pub(crate) const MAX_HEADERS: usize = 64;

/// hyper's connection settings for every listener (HTTP/1.1 and HTTP/2; gRPC takes the HTTP/2
/// half): the head and header caps above, 256 streams a connection.
pub(crate) fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The head deadline is the connection's own (`conn::Guarded`), apart from its idle time.
        .header_read_timeout(None)
        // A client that half-closes after its request still gets the answer.
        .half_close(true)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD as u32)
        .max_concurrent_streams(256);
    builder
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest body accepted (TorchServe's max_request_size).
    pub(crate) max_body: usize,
    /// How long a client may take to send one body once its head has come, and to read the answer.
    pub(crate) client_timeout: Duration,
    /// How long a client may take to send a request head once its first byte has come.
    pub(crate) head_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub(crate) keep_alive: Duration,
    /// Body bytes buffered at once over all requests; a body waits for room (back-pressure).
    pub(crate) max_buffered: usize,
}

#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: Method,
    /// The path without the query string.
    pub(crate) path: String,
    pub(crate) query: String,
    /// Header names in lower case, in the order sent.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a query parameter (`limit` in `?limit=10`), if present (`""` for `?details`).
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == name).then_some(v)
            })
            .next()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

pub(crate) const JSON: &str = "application/json";

impl Response {
    pub(crate) fn new(
        status: StatusCode,
        content_type: &'static str,
        body: impl Into<Vec<u8>>,
    ) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(crate) fn json(status: StatusCode, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, JSON, body)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    /// The whole answer as HTTP/1.1 bytes, closing the connection: for the two answers written
    /// around hyper, to a connection over the limit and to a stalled request head.
    pub(crate) fn to_http1_closing(&self, reason: &str) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
            self.status.as_u16(),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}
