//! `scancer serve`: the Scancer inference API in one process, compatible with TorchServe clients.
//!
//! Threads: a tokio runtime of one I/O worker per core, on which every connection is a task
//! (HTTP/1.1 and HTTP/2 through hyper: an idle or slow client costs a few kilobytes, not a thread),
//! and whose workers decode small patches themselves; a bounded pool that decodes large images and
//! parses large bodies; and each model version's workers (`workers`), threads that own an engine
//! each and run dynamically batched forward passes from the version's queue (`batcher`).
//!
//! Listeners: TorchServe's inference, management and metrics APIs on their own addresses, or
//! several on one (all three on one port for `scancer serve MODEL`), and the gRPC port.

pub(crate) mod answer;
pub(crate) mod app;
pub(crate) mod auth;
pub(crate) mod batcher;
pub(crate) mod conn;
pub(crate) mod exchange;
pub(crate) mod grpc;
pub(crate) mod http;
pub(crate) mod ids;
pub(crate) mod log_files;
pub(crate) mod metrics;
pub(crate) mod model_store;
pub(crate) mod models;
pub(crate) mod multipart;
mod options;
pub(crate) mod pyjson;
pub(crate) mod registry;
pub(crate) mod slides;
pub(crate) mod snapshot;
mod startup;
pub(crate) mod tls;
pub(crate) mod tokens;
pub(crate) mod unrestored;
pub(crate) mod workers;

use anyhow::{anyhow, bail, Context, Result};
use app::{error, App, Exception};
pub(crate) use app::{Defaults, Envelope, Roles};
use exchange::Exchanges;
pub(crate) use options::host_text;
pub(crate) use options::{
    ApiAddress, ApiAddresses, KeyOptions, Listener, LogFiles, ModelFile, ServeOptions, SlideFolder,
    SnapshotOptions, StoreArchives, StoreEntry, StoreModels, StoreOptions,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
pub(crate) use tls::CertificateSource;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Notify};

/// Open connections, and a wake-up when the last one closes.
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    closed: Notify,
}

/// Counts a connection until its task ends.
struct ConnectionSlot(Arc<Connections>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.closed.notify_waiters();
        }
    }
}

/// Serves until SIGINT or SIGTERM, then stops accepting, answers every request already received, and
/// returns.
pub(crate) fn run(mut options: ServeOptions) -> Result<()> {
    let store = options.store.as_ref().map(|s| {
        Arc::new(model_store::ModelStore::with_downloads(
            s.dir.clone(),
            &s.allowed_urls,
            s.download_limits,
        ))
    });
    let plan = startup::plan(&options, options.store.as_ref().zip(store.as_deref()))?;
    let bound = Bound::new(&options)?;
    let auth = std::mem::take(&mut options.auth);
    let logs = match &options.log_files {
        Some(files) => Some(start_log_files(files)?),
        None => None,
    };
    let app = Arc::new(app_of(&options, auth, store, logs)?);
    if let Some(interval) = options.system_metrics {
        app.metrics.watch_system(interval);
    }
    // One I/O worker per core: a worker decodes a small patch itself (no hand-off, see
    // `App::prepare`), so up to `cores` decode at once; large images and bodies go to a bounded pool
    // beside them. Either way many clients sending images cannot multiply decoded-pixel memory or
    // starve the model workers of cores.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("scancer-io")
        .enable_all()
        .max_blocking_threads(cores)
        .build()
        .context("cannot start the server's I/O runtime")?;
    runtime.block_on(register(&app, plan))?;
    if let Some(analyses) = &app.analyses {
        let _within = runtime.enter();
        let served: Arc<dyn slides::analyses::ServedModels> = Arc::clone(&app) as _;
        let resumed = analyses.resume(&served)?;
        if resumed > 0 {
            crate::messages::note!("{resumed} slide analyses resumed");
        }
    }
    app.recording.store(true, Ordering::SeqCst);
    app.record_or_warn(snapshot::Kind::Startup);
    let (stop_tx, stop_rx) = watch::channel(false);
    watch_signals(stop_tx)?;
    announce(&app, &bound.listeners()?, &bound.grpc_ports()?);
    runtime.block_on(serve_until_stopped(&app, bound, &options, stop_rx))?;
    drop(runtime);
    shut_down(&app);
    Ok(())
}

/// TorchServe's log files, with every message of the server in ts_log.log.
fn start_log_files(files: &options::LogFiles) -> Result<log_files::LogSink> {
    let sink = log_files::LogSink::start(&files.logs, &files.metrics, files.metric_lines)
        .with_context(|| {
            format!(
                "cannot open the log files in {} and {}",
                files.logs.display(),
                files.metrics.display()
            )
        })?;
    let ts_log = sink.clone();
    crate::messages::also_to(Box::new(move |level, text| {
        let level = match level {
            crate::messages::Level::Note => "INFO ",
            crate::messages::Level::Warning => "WARN ",
            crate::messages::Level::Error => "ERROR",
        };
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("main");
        ts_log.line(
            log_files::LogFile::Ts,
            format!("[{level}] {thread} scancer - {text}"),
        );
    }));
    Ok(sink)
}

/// The listening sockets, bound before any model loads so that a taken port (or a certificate
/// that cannot be read) is said at once; each with its TLS acceptor when on TLS.
struct Bound {
    http: Vec<(std::net::TcpListener, Listener, Option<TlsAcceptor>)>,
    /// The gRPC inference port, then the management port.
    grpc: Vec<(std::net::TcpListener, GrpcPort, Option<TlsAcceptor>)>,
}

/// Which of TorchServe's two gRPC ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrpcPort {
    Inference,
    Management,
}

type TlsAcceptor = tokio_rustls::TlsAcceptor;

impl Bound {
    fn new(options: &ServeOptions) -> Result<Bound> {
        let acceptor = |on: bool, alpn: &[&[u8]]| -> Result<Option<TlsAcceptor>> {
            match (&options.tls, on) {
                (Some(source), true) => Ok(Some(tls::acceptor(source, alpn)?)),
                _ => Ok(None),
            }
        };
        let mut http = Vec::new();
        for listener in &options.listeners {
            let at = listener.at;
            let socket = std::net::TcpListener::bind(at)
                .with_context(|| format!("cannot listen on {at} ({})", listener.roles.names()))?;
            socket.set_nonblocking(true)?;
            let tls = acceptor(listener.tls, &[b"h2", b"http/1.1"])?;
            http.push((socket, *listener, tls));
        }
        let mut grpc = Vec::new();
        for (at, port, flag) in [
            (options.grpc_address, GrpcPort::Inference, "--grpc-port"),
            (
                options.grpc_management_address,
                GrpcPort::Management,
                "--grpc-management-port",
            ),
        ] {
            if let Some(at) = at {
                let socket = std::net::TcpListener::bind(at)
                    .with_context(|| format!("cannot listen on {at} (gRPC, {flag})"))?;
                socket.set_nonblocking(true)?;
                grpc.push((socket, port, acceptor(options.grpc_tls, &[b"h2"])?));
            }
        }
        Ok(Bound { http, grpc })
    }

    /// The listeners as bound (port 0 resolved).
    fn listeners(&self) -> std::io::Result<Vec<Listener>> {
        self.http
            .iter()
            .map(|(socket, listener, _)| {
                Ok(Listener {
                    at: socket.local_addr()?,
                    ..*listener
                })
            })
            .collect()
    }

    /// The gRPC ports as bound: address, which, on TLS.
    fn grpc_ports(&self) -> std::io::Result<Vec<(SocketAddr, GrpcPort, bool)>> {
        self.grpc
            .iter()
            .map(|(socket, port, tls)| Ok((socket.local_addr()?, *port, tls.is_some())))
            .collect()
    }
}

/// The application the listeners answer, with the model store's state (snapshots, token keys)
/// made ready.
fn app_of(
    options: &ServeOptions,
    auth: auth::Auth,
    store: Option<Arc<model_store::ModelStore>>,
    logs: Option<log_files::LogSink>,
) -> Result<App> {
    let configured = options.store.as_ref();
    let snapshots = match configured.and_then(|s| s.snapshots.as_ref().map(|o| (s, o))) {
        Some((s, o)) => Some(snapshot::Snapshots::new(
            o.dir.clone(),
            startup::snapshot_properties(&o.configured, options, s),
        )?),
        None => None,
    };
    let keys = match configured.and_then(|s| s.keys.as_ref()) {
        Some(k) => Some(tokens::Tokens::generate(k.path.clone(), k.lifetime)?),
        None => None,
    };
    let slides = match &options.slides {
        Some(folder) => Some(Arc::new(slides::Library::open(
            &folder.dir,
            options.defaults.engine.max_pixels,
            folder.max_upload,
        )?)),
        None => None,
    };
    Ok(App {
        registry: registry::Registry::default(),
        unrestored: unrestored::Unrestored::default(),
        queue_wait: options.queue_wait,
        metrics: Arc::new(metrics::Metrics::new(options.hostname.clone(), logs)),
        auth,
        defaults: options.defaults.clone(),
        store,
        model_api: configured.is_some_and(|s| s.model_api),
        changes: tokio::sync::Mutex::new(()),
        stopping: AtomicBool::new(false),
        snapshots,
        // Start-up registrations are recorded once, all together.
        recording: AtomicBool::new(false),
        envelope: configured.map_or(Envelope::Body, |s| s.envelope),
        keys,
        analyses: slides
            .as_ref()
            .map(|library| Arc::new(slides::Analyses::new(Arc::clone(library)))),
        slides,
    })
}

/// Registers the models a server starts with, each once its workers are up, then sets the
/// default versions a snapshot names. A snapshot's version that cannot be restored is left out
/// and reported; any other model that cannot load stops the start.
async fn register(app: &Arc<App>, plan: startup::Plan) -> Result<()> {
    for (version, reason) in plan.unrestored {
        left_out(app, version, reason);
    }
    for startup::Startup {
        registration,
        min,
        max,
        restored,
    } in plan.models
    {
        let shown = registration.path.display().to_string();
        let model = match app::management::load(app, registration, min, max).await {
            Ok(model) => model,
            Err(refused) => match restored {
                Some(version) => {
                    left_out(app, version, format!("{shown}: {}", refused.message));
                    continue;
                }
                None => bail!("{shown}: {}", refused.message),
            },
        };
        if model.workers.settled(Duration::from_secs(120)).await != Ok(true) {
            bail!("{shown}: the workers of model {} did not start", model.name);
        }
    }
    for (name, version) in &plan.defaults_to_set {
        // A default version that was left out: the name keeps its first restored version.
        if app.registry.contains(name, version) {
            app.registry
                .set_default(name, version)
                .map_err(|missing| anyhow!("{}", missing.message))?;
        }
    }
    Ok(())
}

/// A snapshot's version that is not served: said now, and reported until it is dealt with.
fn left_out(app: &App, version: snapshot::Restored, reason: String) {
    crate::messages::warning!(
        "model {} version {} is not served: {reason}; serving the other models (put the archive back and restart, register it again, or unregister it)",
        version.name,
        version.version
    );
    app.unrestored.add(version, reason);
}

/// Accepts connections on every listener until a stop signal, then waits until every connection
/// has answered what it received.
async fn serve_until_stopped(
    app: &Arc<App>,
    bound: Bound,
    options: &ServeOptions,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let connections = Arc::new(Connections::default());
    let max = options.max_connections;
    let mut served = Vec::new();
    let handshake_timeout = options.limits.head_timeout;
    for (socket, listener, tls) in bound.http {
        let exchanges = Arc::new(Exchanges::new(
            Arc::clone(app),
            options.limits,
            options.quiet,
            listener.roles,
            options.cors.clone(),
        ));
        served.push(accepting(
            socket,
            &connections,
            max,
            stop.clone(),
            move |stream, peer, stop| {
                let (exchanges, tls) = (Arc::clone(&exchanges), tls.clone());
                async move {
                    match tls {
                        None => serve_http(stream, peer, exchanges, stop).await,
                        Some(tls) => {
                            if let Some(stream) =
                                tls::handshake(&tls, stream, handshake_timeout).await
                            {
                                serve_http(stream, peer, exchanges, stop).await;
                            }
                        }
                    }
                }
            },
        )?);
    }
    for (socket, port, tls) in bound.grpc {
        let router = match port {
            GrpcPort::Inference => grpc::Router::inference(Arc::clone(app), options.limits),
            GrpcPort::Management => grpc::Router::management(Arc::clone(app), options.limits),
        };
        served.push(accepting(
            socket,
            &connections,
            max,
            stop.clone(),
            move |stream, _, stop| {
                let (router, tls) = (router.clone(), tls.clone());
                async move {
                    match tls {
                        None => grpc::serve(stream, router, stop).await,
                        Some(tls) => {
                            if let Some(stream) =
                                tls::handshake(&tls, stream, handshake_timeout).await
                            {
                                grpc::serve(stream, router, stop).await;
                            }
                        }
                    }
                }
            },
        )?);
    }
    for task in served {
        task.await?;
    }
    // Finish what was received: connections close once their requests are answered.
    loop {
        let closed = connections.closed.notified();
        if connections.open.load(Ordering::SeqCst) == 0 {
            break;
        }
        closed.await;
    }
    Ok(())
}

/// After the listeners stop: every queue closes, the workers answer what is queued and stop, and
/// the shutdown snapshot is written.
fn shut_down(app: &App) {
    app.stopping.store(true, Ordering::SeqCst);
    let models = app.registry.all();
    for m in &models {
        m.queue.close();
    }
    for m in &models {
        if !m.workers.wait_stopped(Duration::from_secs(30)) {
            crate::messages::note!("{} {}: workers still busy at exit", m.name, m.version);
        }
    }
    app.record_or_warn(snapshot::Kind::Shutdown);
    crate::messages::note!("stopped");
    if let Some(logs) = app.metrics.log() {
        logs.flush();
    }
}

fn announce(app: &App, listeners: &[Listener], grpc: &[(SocketAddr, GrpcPort, bool)]) {
    for m in app.registry.all() {
        let [c, h, w] = m.input_shape;
        let labels = if m.schema.classes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", m.schema.classes.join(", "))
        };
        crate::messages::note!(
            "model {} version {} ({}): input {c}x{h}x{w}, output {}{labels}, {} worker(s), batches of up to {} within {} ms, queue of {}",
            m.name,
            m.version,
            m.url,
            m.kind(),
            m.workers.count(),
            m.settings.batch_size,
            m.settings.max_batch_delay.as_millis(),
            m.queue.capacity()
        );
    }
    if let Some(store) = &app.store {
        crate::messages::note!(
            "model store {}; model API (register, unregister) {}",
            store.dir.display(),
            if app.model_api {
                "enabled"
            } else {
                "disabled (--enable-model-api)"
            }
        );
    }
    let host = |address: SocketAddr| host_text(address.ip());
    if let Some(keys) = &app.keys {
        crate::messages::note!(
            "token authorization on: keys in {} (--disable-token-auth turns it off)",
            keys.path().display()
        );
    }
    for listener in listeners {
        let (address, roles) = (listener.at, listener.roles);
        let guarded = app.auth.enabled() || (app.keys.is_some() && !roles.metrics);
        if !address.ip().is_loopback() && !guarded {
            crate::messages::note!(
                "WARNING: listening on {address} WITHOUT AUTHENTICATION: anyone who can reach \
                 this machine can use it ({}); pass --auth-file or --token-file",
                roles.names()
            );
        }
        crate::messages::note!(
            "listening on {}://{}:{} ({})",
            if listener.tls { "https" } else { "http" },
            host(address),
            address.port(),
            roles.names()
        );
    }
    for &(at, port, tls) in grpc {
        let (what, services) = match port {
            GrpcPort::Inference => (
                "gRPC",
                "inference.GRPCInferenceService, org.pytorch.serve.grpc.inference.InferenceAPIsService",
            ),
            GrpcPort::Management => (
                "gRPC management",
                "org.pytorch.serve.grpc.management.ManagementAPIsService",
            ),
        };
        crate::messages::note!(
            "{what}{} on {}:{} ({services})",
            if tls { " over TLS" } else { "" },
            host(at),
            at.port()
        );
    }
    let inference = listeners.iter().find(|l| l.roles.inference);
    if let (Some(m), Some(listener)) = (app.registry.defaults().first(), inference) {
        let address = listener.at;
        // A client reaches an unspecified address (0.0.0.0, ::) through loopback.
        let reach = match address.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), address.port())
            }
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), address.port())
            }
            _ => address,
        };
        crate::messages::note!(
            "try: curl -T patch.png {}://{}:{}/predictions/{}",
            if listener.tls { "https" } else { "http" },
            host(reach),
            address.port(),
            m.name
        );
    }
}

/// SIGINT or SIGTERM starts a graceful stop; a second one exits at once.
fn watch_signals(stop: watch::Sender<bool>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("scancer-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if stop.send_replace(true) {
                    crate::messages::note!("second signal: exiting now");
                    std::process::exit(128 + signal);
                }
                crate::messages::note!(
                    "stopping: answering the requests already received (signal again to exit now)"
                );
            }
        })?;
    Ok(())
}

/// `accept_loop` on its own task, for a listener of the standard library.
fn accepting<F, Served>(
    listener: std::net::TcpListener,
    connections: &Arc<Connections>,
    max_connections: usize,
    stop: watch::Receiver<bool>,
    serve: F,
) -> std::io::Result<tokio::task::JoinHandle<()>>
where
    F: Fn(tokio::net::TcpStream, Arc<str>, watch::Receiver<bool>) -> Served + Send + 'static,
    Served: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let connections = Arc::clone(connections);
    Ok(tokio::spawn(async move {
        accept_loop(&listener, &connections, max_connections, stop, serve).await;
    }))
}

/// Accepts connections until `stop`, each served by `serve` on its own task; over `max_connections`
/// open (HTTP and gRPC together), a connection gets a 503 and is closed.
async fn accept_loop<F, Served>(
    listener: &tokio::net::TcpListener,
    connections: &Arc<Connections>,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(tokio::net::TcpStream, Arc<str>, watch::Receiver<bool>) -> Served,
    Served: std::future::Future<Output = ()> + Send + 'static,
{
    let mut last_error: Option<(std::io::ErrorKind, Instant)> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|&stopping| stopping) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or memory, or an aborted handshake: none of them is a reason to
                // stop serving. Log each kind at most once a second, and back off briefly.
                let now = Instant::now();
                if last_error
                    .is_none_or(|(kind, at)| kind != e.kind() || now - at > Duration::from_secs(1))
                {
                    crate::messages::note!("cannot accept a connection: {e}");
                    last_error = Some((e.kind(), now));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if connections.open.fetch_add(1, Ordering::SeqCst) >= max_connections {
            connections.open.fetch_sub(1, Ordering::SeqCst);
            tokio::spawn(refuse(stream, max_connections));
            continue;
        }
        let slot = ConnectionSlot(Arc::clone(connections));
        let served = serve(stream, peer.to_string().into(), stop.clone());
        tokio::spawn(async move {
            served.await;
            drop(slot);
        });
    }
}

/// Serves one connection until it closes: HTTP/1.1 (keep-alive, pipelining) or HTTP/2 with prior
/// knowledge, chosen by the client's first bytes. When `stop` turns true, the connection finishes
/// the requests it has received and closes.
pub(crate) async fn serve_http<S>(
    socket: S,
    peer: Arc<str>,
    exchanges: Arc<Exchanges>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use conn::{Guarded, Tracker};
    use hyper_util::rt::TokioIo;
    let tracker = Arc::new(Tracker::default());
    let limits = exchanges.limits;
    let stalled = exchanges.stalled.clone();
    let io = TokioIo::new(Guarded::new(socket, Arc::clone(&tracker), limits, stalled));
    let service = {
        let tracker = Arc::clone(&tracker);
        hyper::service::service_fn(move |request| {
            exchange::answer(
                Arc::clone(&exchanges),
                Arc::clone(&tracker),
                Arc::clone(&peer),
                request,
            )
        })
    };
    let builder = http::connection_builder();
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = *stop.borrow();
    loop {
        if stopping {
            tracker.stop();
            if tracker.is_h2() {
                // GOAWAY: the streams already open are answered, no new one is taken.
                connection.as_mut().graceful_shutdown();
            }
            let _ = connection.as_mut().await;
            return;
        }
        tokio::select! {
            _ = connection.as_mut() => return,
            changed = stop.changed() => stopping = changed.is_err() || *stop.borrow(),
        }
    }
}

/// Over the connection limit: a 503, then close; a client that does not take it at once is dropped.
async fn refuse(mut stream: tokio::net::TcpStream, max: usize) {
    let response = error(
        Exception::ServiceUnavailable,
        &format!("The server has {max} open connections, its limit; retry later"),
    );
    let bytes = response.to_http1_closing("Service Unavailable");
    let _ = tokio::time::timeout(Duration::from_millis(100), async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
}
