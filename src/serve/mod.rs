//! `scancer serve`: the Scancer inference API in one process, compatible with TorchServe clients.
//!
//! Threads: one accept loop; one thread per connection (capped), which reads the request with limits
//! and deadlines and decodes and preprocesses its image; and ONE model thread that owns the models and
//! runs dynamically batched forward passes (`batcher`). A slow or idle client only ever holds its own
//! connection thread.

pub(crate) mod answer;
pub(crate) mod app;
pub(crate) mod auth;
pub(crate) mod batcher;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod models;
pub(crate) mod multipart;
pub(crate) mod pyjson;

use crate::engine::{Engine, EngineOptions};
use anyhow::{anyhow, Context, Result};
use app::{error, App};
use http::{Connection, Limits, ReadError};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct ServeOptions {
    pub(crate) models: Vec<models::ModelSpec>,
    pub(crate) address: SocketAddr,
    pub(crate) engine: EngineOptions,
    pub(crate) max_batch_delay: Duration,
    pub(crate) job_queue_size: usize,
    pub(crate) limits: Limits,
    pub(crate) max_connections: usize,
    pub(crate) auth: auth::Auth,
    pub(crate) quiet: bool,
}

/// State the accept loop, the connections and the signal handler share.
struct Shared {
    stopping: AtomicBool,
    connections: Mutex<usize>,
    idle: Condvar,
    quiet: bool,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Counts a connection until its thread ends.
struct ConnectionSlot(Arc<Shared>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut n = self.0.connections.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.0.idle.notify_all();
    }
}

/// Serves until SIGINT or SIGTERM, then stops accepting, answers every request already received, and
/// returns.
pub(crate) fn run(options: ServeOptions) -> Result<()> {
    let listener = TcpListener::bind(options.address)
        .with_context(|| format!("cannot listen on {}", options.address))?;
    let address = listener.local_addr()?;
    let opened = models::open(&options.models)?;

    let queue = Arc::new(batcher::Queue::new(options.job_queue_size));
    let metrics = Arc::new(metrics::Metrics::new(metrics::hostname()));
    // The models live on their own thread: it loads them, reports, then serves batches.
    let (loaded_tx, loaded_rx) = std::sync::mpsc::channel();
    let engine_options = options.engine.clone();
    let delay = options.max_batch_delay;
    let (model_queue, model_metrics) = (Arc::clone(&queue), Arc::clone(&metrics));
    let model_thread = std::thread::Builder::new()
        .name("scancer-model".into())
        .spawn(move || match models::load(&opened, &engine_options) {
            Ok((engines, served)) => {
                // The device the models really run on: `--device auto` on a CPU-only host is cpu.
                let gpu = engines.iter().any(Engine::on_cuda);
                let _ = loaded_tx.send(Ok((served, gpu)));
                batcher::serve(&engines, &model_queue, delay, |n| model_metrics.batch(n));
            }
            Err(e) => {
                let _ = loaded_tx.send(Err(e));
            }
        })?;
    let (served, gpu) = loaded_rx
        .recv()
        .map_err(|_| anyhow!("the model thread stopped while loading"))??;
    let device = if gpu { "gpu" } else { "cpu" };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let app = Arc::new(App {
        models: served,
        decoders: app::Slots::new(cores),
        queue,
        metrics,
        auth: options.auth,
        batch_size: options.engine.batch_size,
        max_batch_delay: options.max_batch_delay,
        device: device.into(),
    });

    let shared = Arc::new(Shared {
        stopping: AtomicBool::new(false),
        connections: Mutex::new(0),
        idle: Condvar::new(),
        quiet: options.quiet,
    });
    watch_signals(Arc::clone(&shared), address)?;
    announce(&app, address, &options.engine);

    accept_loop(
        &listener,
        &app,
        &shared,
        options.limits,
        options.max_connections,
    );
    drop(listener);

    // Finish what was received: connections close once their current request is answered.
    let mut n = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
    while *n > 0 {
        n = shared.idle.wait(n).unwrap_or_else(|e| e.into_inner());
    }
    drop(n);
    app.queue.close();
    model_thread
        .join()
        .map_err(|_| anyhow!("the model thread panicked"))?;
    crate::messages::note!("stopped");
    Ok(())
}

fn announce(app: &App, address: SocketAddr, engine: &EngineOptions) {
    for m in &app.models {
        let [c, h, w] = m.input_shape;
        let labels = if m.schema.classes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", m.schema.classes.join(", "))
        };
        crate::messages::note!(
            "model {} version {} ({}): input {c}x{h}x{w}, output {}{labels}",
            m.name,
            m.version,
            m.url,
            m.kind()
        );
    }
    crate::messages::note!(
        "batches of up to {} within {} ms, queue of {}",
        engine.batch_size,
        app.max_batch_delay.as_millis(),
        app.queue.capacity()
    );
    if !address.ip().is_loopback() && !app.auth.enabled() {
        crate::messages::note!(
            "WARNING: listening on {address} WITHOUT AUTHENTICATION: anyone who can reach \
             this machine can use the models; pass --auth-file or --token-file"
        );
    }
    let host = match address {
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
        SocketAddr::V4(a) => a.ip().to_string(),
    };
    crate::messages::note!("listening on http://{host}:{}", address.port());
    if let Some(m) = app.models.first() {
        crate::messages::note!(
            "try: curl -T patch.png http://{host}:{}/predictions/{}",
            address.port(),
            m.name
        );
    }
}

/// SIGINT or SIGTERM starts a graceful stop; a second one exits at once.
fn watch_signals(shared: Arc<Shared>, address: SocketAddr) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("scancer-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if shared.stopping.swap(true, Ordering::SeqCst) {
                    crate::messages::note!("second signal: exiting now");
                    std::process::exit(128 + signal);
                }
                crate::messages::note!(
                    "stopping: answering the requests already received (signal again to exit now)"
                );
                // Wake the accept loop with a connection of our own.
                let wake = match address {
                    SocketAddr::V4(a) if a.ip().is_unspecified() => {
                        SocketAddr::from(([127, 0, 0, 1], a.port()))
                    }
                    SocketAddr::V6(a) if a.ip().is_unspecified() => {
                        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
                    }
                    a => a,
                };
                let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
            }
        })?;
    Ok(())
}

fn accept_loop(
    listener: &TcpListener,
    app: &Arc<App>,
    shared: &Arc<Shared>,
    limits: Limits,
    max_connections: usize,
) {
    let mut last_error: Option<(ErrorKind, Instant)> = None;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                if shared.stopping() {
                    return;
                }
                // Out of descriptors or memory, or an aborted handshake: none of them is a reason to
                // stop serving. Log each kind at most once a second, and back off briefly.
                let now = Instant::now();
                if last_error
                    .is_none_or(|(kind, at)| kind != e.kind() || now - at > Duration::from_secs(1))
                {
                    crate::messages::note!("cannot accept a connection: {e}");
                    last_error = Some((e.kind(), now));
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if shared.stopping() {
            return;
        }
        {
            let mut n = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
            if *n >= max_connections {
                drop(n);
                refuse(stream, max_connections, limits);
                continue;
            }
            *n += 1;
        }
        let slot = ConnectionSlot(Arc::clone(shared));
        let app = Arc::clone(app);
        let spawned = std::thread::Builder::new()
            .name("scancer-conn".into())
            .spawn(move || {
                let shared = Arc::clone(&slot.0);
                serve_connection(stream, &app, &shared, limits);
                drop(slot);
            });
        if let Err(e) = spawned {
            crate::messages::note!("cannot start a connection thread: {e}");
        }
    }
}

/// The answer to a request that could not be read.
fn refusal(e: ReadError, limits: &Limits) -> http::Response {
    let max = limits.max_body;
    let (status, kind, message) = match e {
        ReadError::Timeout => (
            408,
            "RequestTimeoutException",
            format!(
                "the request did not arrive within {} s",
                limits.client_timeout.as_secs()
            ),
        ),
        ReadError::HeadTooLarge => (
            431,
            "BadRequestException",
            format!(
                "the request head is over {} bytes or 64 headers",
                http::MAX_HEAD
            ),
        ),
        ReadError::BodyTooLarge(Some(n)) => (
            413,
            "RequestEntityTooLargeException",
            format!("the body of {n} bytes is over the limit of {max} bytes (--max-request-size)"),
        ),
        ReadError::BodyTooLarge(None) => (
            413,
            "RequestEntityTooLargeException",
            format!("the body is over the limit of {max} bytes (--max-request-size)"),
        ),
        ReadError::Unsupported(why) => (501, "BadRequestException", why),
        ReadError::Malformed(why) => (400, "BadRequestException", why),
        ReadError::Closed | ReadError::Io => {
            (400, "BadRequestException", "the connection failed".into())
        }
        ReadError::Refused(response) => return *response,
    };
    error(status, kind, &message)
}

/// Over the connection limit: a 503 that cannot block, then close.
fn refuse(stream: TcpStream, max: usize, limits: Limits) {
    let response = error(
        503,
        "ServiceUnavailableException",
        &format!("The server has {max} open connections, its limit; retry later"),
    );
    // A fresh socket's send buffer takes the answer at once; the short timeout is for the
    // impossible case, so that the accept loop never waits on a client.
    let limits = Limits {
        client_timeout: Duration::from_millis(100),
        ..limits
    };
    if let Ok(mut connection) = Connection::new(stream, limits) {
        let _ = connection.send(&response, true, true);
    }
}

fn serve_connection(stream: TcpStream, app: &App, shared: &Shared, limits: Limits) {
    if let Ok(connection) = Connection::new(stream, limits) {
        converse(connection, app, &|| shared.stopping(), shared.quiet);
    }
}

/// Answers a connection's requests in turn until it closes, `stopping` says so, or an answer says to
/// close. Public so that the HTTP fuzz target drives exactly this loop over bytes in memory.
pub(crate) fn converse<S: http::Transport>(
    mut connection: Connection<S>,
    app: &App,
    stopping: &dyn Fn() -> bool,
    quiet: bool,
) {
    let limits = connection.limits();
    let peer = connection.peer();
    loop {
        let mut arrival = None;
        let mut head_line = String::from("-");
        let request = connection.next_request(stopping, &mut |method, target, authorization| {
            head_line = format!("{method} {}", target.split('?').next().unwrap_or(""));
            let refused = app.unauthorized(target, authorization);
            if refused.is_none() {
                arrival = app.arrival_for(method, target);
            }
            refused
        });
        let started = Instant::now();
        let (response, line, close, with_body) = match request {
            Ok(request) => {
                let response = app.handle(&request, arrival.take());
                let line = format!("{} {}", request.method, request.path);
                let close = request.close || response.status >= 400 || stopping();
                (response, line, close, request.method != "HEAD")
            }
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(ReadError::Refused(response)) => (*response, head_line, true, true),
            Err(e) => (refusal(e, &limits), "-".to_string(), true, true),
        };
        app.metrics.response(response.status);
        let sent = connection.send(&response, close, with_body);
        if !quiet {
            crate::messages::note!(
                "{peer} \"{line}\" {} {} B {:.1} ms{}",
                response.status,
                response.body.len(),
                started.elapsed().as_secs_f64() * 1e3,
                if sent.is_err() { " (client gone)" } else { "" }
            );
        }
        if close || sent.is_err() {
            return;
        }
    }
}
