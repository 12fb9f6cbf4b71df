//! A small, strict HTTP/1.1 server side: one request at a time per connection, with limits and
//! deadlines on everything a client controls.
//!
//! Why not tiny_http 0.12: it accepts on its own thread and stops accepting for good on the first
//! accept() error (EMFILE under load is enough), gives no access to the sockets to set timeouts, reads
//! every connection on a thread from an unbounded pool, and drains unread bodies through a buffer sized
//! from the declared Content-Length. Each of those lets one client stall or stop the server, so the
//! server owns its sockets here and parses requests with httparse.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The largest request head (request line and headers) accepted.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest body accepted (TorchServe's max_request_size).
    pub(crate) max_body: usize,
    /// How long a client may take to send one request once it has started, and to read the answer.
    pub(crate) client_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub(crate) keep_alive: Duration,
}

#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path without the query string.
    pub(crate) path: String,
    pub(crate) query: String,
    /// Header names in lower case, in the order sent.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// `HTTP/1.0`, or `Connection: close` was sent.
    pub(crate) close: bool,
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

/// Hears a request's method, target and Authorization header before its body; an answer refuses it.
pub(crate) type OnHead<'a> = dyn FnMut(&str, &str, Option<&str>) -> Option<Response> + 'a;

/// Why no request could be read; the server answers the ones with a status, then closes.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection or stayed idle: close quietly.
    Closed,
    /// The client was too slow (408).
    Timeout,
    /// Not HTTP, or HTTP the server refuses (400); the message says what.
    Malformed(String),
    /// The head is larger than MAX_HEAD (431).
    HeadTooLarge,
    /// The body is larger than the limit (413); the size if it was declared.
    BodyTooLarge(Option<u64>),
    /// Transfer-Encoding other than chunked (501).
    Unsupported(String),
    /// Reading failed; nothing can be answered.
    Io,
    /// Answered from the head alone (an unauthenticated request); its body was not read, so the
    /// connection closes after the answer.
    Refused(Box<Response>),
}

/// What a connection reads from and writes to: a TCP socket, or bytes in memory (fuzzing).
pub(crate) trait Transport: Read + Write {
    /// Bounds the next reads; a read that waits longer fails with `WouldBlock` or `TimedOut`.
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()>;
    /// Readies a fresh connection: answers go out at once, and a write waits `write_timeout` at most.
    fn configure(&mut self, write_timeout: Duration) -> io::Result<()>;
    /// Whether unread bytes are waiting (without waiting for any).
    fn bytes_waiting(&mut self) -> bool;
    /// The client's address, for the access log.
    fn peer(&self) -> String;
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        TcpStream::set_read_timeout(self, Some(timeout))
    }

    fn configure(&mut self, write_timeout: Duration) -> io::Result<()> {
        self.set_nodelay(true)?;
        TcpStream::set_write_timeout(self, Some(write_timeout))
    }

    fn bytes_waiting(&mut self) -> bool {
        if self.set_nonblocking(true).is_err() {
            return false;
        }
        let waiting = matches!(self.peek(&mut [0u8; 1]), Ok(n) if n > 0);
        let _ = self.set_nonblocking(false);
        waiting
    }

    fn peer(&self) -> String {
        self.peer_addr()
            .map_or_else(|_| "-".into(), |a| a.ip().to_string())
    }
}

/// A client connection: the socket plus bytes read past the previous request (pipelining).
pub(crate) struct Connection<S: Transport = TcpStream> {
    stream: S,
    buffer: Vec<u8>,
    limits: Limits,
}

/// What a stream read did before its deadline.
enum Filled {
    Bytes,
    Eof,
}

impl<S: Transport> Connection<S> {
    pub(crate) fn new(mut stream: S, limits: Limits) -> io::Result<Connection<S>> {
        stream.configure(limits.client_timeout)?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(4096),
            limits,
        })
    }

    pub(crate) fn peer(&self) -> String {
        self.stream.peer()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Waits for the next request on an idle connection. `stop` is asked every slice of the wait; when
    /// it says yes and no byte of a request has come, the connection closes (graceful shutdown).
    /// `on_head` hears the method, the target and the Authorization header as soon as the head is
    /// read, before the body; an answer from it refuses the request there (`ReadError::Refused`),
    /// with no `100 Continue` and no byte of the body read.
    pub(crate) fn next_request(
        &mut self,
        stop: &dyn Fn() -> bool,
        on_head: &mut OnHead,
    ) -> Result<Request, ReadError> {
        let idle_until = Instant::now() + self.limits.keep_alive;
        while self.buffer.is_empty() {
            // Bytes already on their way are a request the server has accepted: it is answered.
            if stop() && !self.stream.bytes_waiting() {
                return Err(ReadError::Closed);
            }
            let slice = Instant::now() + Duration::from_millis(100);
            match self.fill(slice.min(idle_until)) {
                Ok(Filled::Bytes) => {}
                Ok(Filled::Eof) => return Err(ReadError::Closed),
                Err(ReadError::Timeout) if Instant::now() < idle_until => {}
                Err(ReadError::Timeout) => return Err(ReadError::Closed),
                Err(e) => return Err(e),
            }
        }
        // The whole request must come within the client timeout from its first byte.
        let deadline = Instant::now() + self.limits.client_timeout;
        let head = self.read_head(deadline)?;
        if let Some(refused) = on_head(&head.method, &head.target, head.header("authorization")) {
            return Err(ReadError::Refused(Box::new(refused)));
        }
        self.read_body(head, deadline)
    }

    /// Reads more bytes into the buffer, waiting until `deadline` at most.
    fn fill(&mut self, deadline: Instant) -> Result<Filled, ReadError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout);
        }
        self.stream
            .set_read_timeout(left)
            .map_err(|_| ReadError::Io)?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            return match self.stream.read(&mut chunk) {
                Ok(0) => Ok(Filled::Eof),
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    Ok(Filled::Bytes)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Err(ReadError::Timeout)
                }
                Err(_) => Err(ReadError::Io),
            };
        }
    }

    /// Fills until at least `n` bytes are buffered.
    fn fill_to(&mut self, n: usize, deadline: Instant) -> Result<(), ReadError> {
        while self.buffer.len() < n {
            if let Filled::Eof = self.fill(deadline)? {
                return Err(ReadError::Malformed(
                    "the connection closed in the middle of the request".into(),
                ));
            }
        }
        Ok(())
    }

    fn read_head(&mut self, deadline: Instant) -> Result<Head, ReadError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(&self.buffer) {
                Ok(httparse::Status::Complete(length)) if length > MAX_HEAD => {
                    return Err(ReadError::HeadTooLarge)
                }
                Ok(httparse::Status::Complete(length)) => {
                    let head = Head::from(&parsed)?;
                    self.buffer.drain(..length);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) if self.buffer.len() > MAX_HEAD => {
                    return Err(ReadError::HeadTooLarge)
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Err(ReadError::HeadTooLarge),
                Err(e) => return Err(ReadError::Malformed(format!("bad request: {e}"))),
            }
            if let Filled::Eof = self.fill(deadline)? {
                return Err(if self.buffer.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Malformed("the connection closed in the middle of the head".into())
                });
            }
        }
    }

    fn read_body(&mut self, head: Head, deadline: Instant) -> Result<Request, ReadError> {
        let max = self.limits.max_body;
        let chunked = match head.header("transfer-encoding") {
            None => false,
            Some(te) if te.eq_ignore_ascii_case("chunked") => true,
            Some(te) => {
                return Err(ReadError::Unsupported(format!(
                    "Transfer-Encoding {te:?} is not supported"
                )))
            }
        };
        let lengths: Vec<&str> = head
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v.trim())
            .collect();
        if chunked && !lengths.is_empty() {
            // Both framings at once is how requests are smuggled past proxies.
            return Err(ReadError::Malformed(
                "both Content-Length and Transfer-Encoding were sent".into(),
            ));
        }
        let length = match lengths.as_slice() {
            [] => 0,
            [first, rest @ ..] if rest.iter().all(|l| l == first) => {
                first.parse::<u64>().map_err(|_| {
                    ReadError::Malformed(format!("Content-Length {first:?} is not a number"))
                })?
            }
            _ => {
                return Err(ReadError::Malformed(
                    "conflicting Content-Length headers".into(),
                ))
            }
        };
        if length > max as u64 {
            return Err(ReadError::BodyTooLarge(Some(length)));
        }
        if head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && (chunked || length > 0)
        {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ReadError::Io)?;
        }
        let body = if chunked {
            self.read_chunked(deadline)?
        } else {
            // The buffer grows with the bytes that arrive, never from the declared length alone.
            let length = length as usize;
            self.fill_to(length, deadline)?;
            self.buffer.drain(..length).collect()
        };
        Ok(head.into_request(body))
    }

    fn read_chunked(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(deadline)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| ReadError::Malformed(format!("bad chunk size {size:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line(deadline)?.is_empty() {}
                return Ok(body);
            }
            // Subtracted, not added: a chunk size near usize::MAX must not overflow.
            if size > self.limits.max_body - body.len() {
                return Err(ReadError::BodyTooLarge(None));
            }
            self.fill_to(size + 2, deadline)?;
            body.extend_from_slice(&self.buffer[..size]);
            if &self.buffer[size..size + 2] != b"\r\n" {
                return Err(ReadError::Malformed(
                    "a chunk does not end with CRLF".into(),
                ));
            }
            self.buffer.drain(..size + 2);
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String, ReadError> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 2);
                return Ok(line);
            }
            if self.buffer.len() > 4096 {
                return Err(ReadError::Malformed("a chunk line is too long".into()));
            }
            if let Filled::Eof = self.fill(deadline)? {
                return Err(ReadError::Malformed(
                    "the connection closed in the middle of the body".into(),
                ));
            }
        }
    }

    /// Writes a whole response (without its body for HEAD, whose head still gives the length); a
    /// client that does not read it within the client timeout is dropped.
    pub(crate) fn send(
        &mut self,
        response: &Response,
        close: bool,
        with_body: bool,
    ) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-length: {}\r\n",
            response.status,
            reason(response.status),
            response.body.len()
        );
        if !response.content_type.is_empty() {
            head.push_str(&format!("content-type: {}\r\n", response.content_type));
        }
        for (name, value) in &response.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if with_body {
            bytes.extend_from_slice(&response.body);
        }
        self.stream.write_all(&bytes)?;
        self.stream.flush()
    }
}

struct Head {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
}

impl Head {
    fn from(parsed: &httparse::Request) -> Result<Head, ReadError> {
        let headers = parsed
            .headers
            .iter()
            .map(|h| {
                let value = std::str::from_utf8(h.value)
                    .map_err(|_| ReadError::Malformed(format!("header {} is not UTF-8", h.name)))?;
                Ok((h.name.to_ascii_lowercase(), value.trim().to_string()))
            })
            .collect::<Result<_, ReadError>>()?;
        Ok(Head {
            method: parsed.method.unwrap_or_default().to_string(),
            target: parsed.path.unwrap_or_default().to_string(),
            http10: parsed.version == Some(0),
            headers,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn into_request(self, body: Vec<u8>) -> Request {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        let close = match connection.as_deref() {
            Some(c) if c.contains("close") => true,
            Some(c) if c.contains("keep-alive") => false,
            _ => self.http10,
        };
        let (path, query) = match self.target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (self.target, String::new()),
        };
        Request {
            method: self.method,
            path,
            query,
            headers: self.headers,
            body,
            close,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

pub(crate) const JSON: &str = "application/json";

impl Response {
    pub(crate) fn new(
        status: u16,
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

    pub(crate) fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, JSON, body)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
