//! One client connection's I/O: the deadlines a client is held to between requests (an idle
//! keep-alive connection, then its next request head from the head's first byte), a deadline on
//! every write, and the connection's part in a graceful stop.
//!
//! hyper's own header timeout starts as soon as a connection waits for a head, so it cannot tell an
//! idle keep-alive connection (which may wait a minute) from a stalled head (a slowloris, which should
//! be dropped in seconds). The connection watches its own bytes instead: `Guarded` wraps the socket,
//! and `Tracker` tells it when requests are in flight.

use super::http::Limits;
use bytes::Bytes;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The HTTP/2 connection preface's first line: a client speaking HTTP/2 without upgrade (h2c).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// How long an idle connection stays open once the server stops, for a request already sent. The
/// socket's readiness reaches the runtime a little after its bytes reach the kernel (and, over a
/// network, the bytes a little after the client sent them): closing at the first empty read could
/// drop a request that was on its way.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// What a connection's requests and its socket share.
#[derive(Default)]
pub(crate) struct Tracker {
    in_flight: AtomicUsize,
    stopping: AtomicBool,
    state: Mutex<State>,
    /// When the server stopped.
    stopped_at: std::sync::OnceLock<Instant>,
}

#[derive(Default)]
struct State {
    /// When the connection last became idle (None: never, it is new).
    idle_since: Option<Instant>,
    /// When the first byte of the request head now arriving came.
    head_started: Option<Instant>,
    /// The task waiting to read, woken when the server stops.
    reader: Option<Waker>,
    /// The client opened with the HTTP/2 preface.
    h2: bool,
    /// Any byte has come.
    spoken: bool,
}

/// Where a connection is between its requests.
enum Phase {
    /// A request is being answered: its body has its own deadline.
    Busy,
    /// Waiting for a request.
    Idle(Option<Instant>),
    /// A request head is arriving.
    Head(Instant),
}

/// A request in flight on the connection, from its head to its answer.
pub(crate) struct InFlight(Arc<Tracker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            state.idle_since = Some(Instant::now());
        }
    }
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request's head has been read; it is in flight until the guard drops.
    pub(crate) fn begin(self: &Arc<Tracker>) -> InFlight {
        let mut state = self.lock();
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        state.head_started = None;
        InFlight(Arc::clone(self))
    }

    /// The server is stopping: the connection closes once it is idle with no request on its way.
    pub(crate) fn stop(&self) {
        self.stopped_at.get_or_init(Instant::now);
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(reader) = self.lock().reader.take() {
            reader.wake();
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn is_h2(&self) -> bool {
        self.lock().h2
    }

    fn received(&self, bytes: &[u8]) {
        let mut state = self.lock();
        if !state.spoken {
            state.spoken = true;
            state.h2 = bytes.starts_with(H2_PREFACE);
        }
        // HTTP/2 frames (pings, settings) come and go between requests; only HTTP/1 has a head to
        // wait for.
        if !state.h2 && state.head_started.is_none() && self.in_flight.load(Ordering::SeqCst) == 0 {
            state.head_started = Some(Instant::now());
        }
    }

    fn phase(&self, reader: &Waker) -> Phase {
        let mut state = self.lock();
        if !state.reader.as_ref().is_some_and(|w| w.will_wake(reader)) {
            state.reader = Some(reader.clone());
        }
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            Phase::Busy
        } else if let Some(started) = state.head_started {
            Phase::Head(started)
        } else {
            Phase::Idle(state.idle_since)
        }
    }
}

/// A socket held to the connection's deadlines.
pub(crate) struct Guarded<S> {
    inner: S,
    tracker: Arc<Tracker>,
    limits: Limits,
    opened: Instant,
    /// Sent to a client whose head stalls, before the connection closes (an HTTP/1 408).
    stalled: Bytes,
    read_deadline: Pin<Box<Sleep>>,
    write_deadline: Pin<Box<Sleep>>,
    write_waiting: bool,
}

impl<S> Guarded<S> {
    pub(crate) fn new(
        inner: S,
        tracker: Arc<Tracker>,
        limits: Limits,
        stalled: Bytes,
    ) -> Guarded<S> {
        let far = tokio::time::Instant::now() + limits.keep_alive;
        Guarded {
            inner,
            tracker,
            limits,
            opened: Instant::now(),
            stalled,
            read_deadline: Box::pin(tokio::time::sleep_until(far)),
            write_deadline: Box::pin(tokio::time::sleep_until(far)),
            write_waiting: false,
        }
    }
}

/// Whether `deadline` has passed, arming `sleep` to wake the task when it does.
fn expired(sleep: &mut Pin<Box<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    let deadline = tokio::time::Instant::from_std(deadline);
    if sleep.deadline() != deadline {
        sleep.as_mut().reset(deadline);
    }
    sleep.as_mut().poll(cx).is_ready()
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.tracker.received(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.tracker.phase(cx.waker()) {
                Phase::Busy => Poll::Pending,
                // Nothing on its way for the grace period: a stopping server closes the
                // connection (an end of input to hyper, which then finishes quietly).
                Phase::Idle(_) if this.tracker.stopping() => {
                    let stopped = *this.tracker.stopped_at.get_or_init(Instant::now);
                    if expired(&mut this.read_deadline, stopped + STOP_GRACE, cx) {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Pending
                    }
                }
                Phase::Idle(since) => {
                    let deadline = since.unwrap_or(this.opened) + this.limits.keep_alive;
                    if expired(&mut this.read_deadline, deadline, cx) {
                        Poll::Ready(Err(timed_out("the connection stayed idle")))
                    } else {
                        Poll::Pending
                    }
                }
                Phase::Head(started) => {
                    if expired(
                        &mut this.read_deadline,
                        started + this.limits.head_timeout,
                        cx,
                    ) {
                        // Best effort: the socket is quiet and its buffer empty, so this goes out
                        // at once or not at all.
                        let _ = Pin::new(&mut this.inner).poll_write(cx, &this.stalled);
                        Poll::Ready(Err(timed_out("the request head stalled")))
                    } else {
                        Poll::Pending
                    }
                }
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> Guarded<S> {
    /// A write that the client does not take within the client timeout fails.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => {
                if !self.write_waiting {
                    self.write_waiting = true;
                    let deadline = tokio::time::Instant::now() + self.limits.client_timeout;
                    self.write_deadline.as_mut().reset(deadline);
                }
                if self.write_deadline.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(timed_out("the client does not read its answer")))
                } else {
                    Poll::Pending
                }
            }
            ready => {
                self.write_waiting = false;
                ready
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
