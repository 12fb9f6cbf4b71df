//! `scancer serve`: the Scancer inference API in one process, compatible with TorchServe clients.
//!
//! Threads: a tokio runtime of one I/O worker per core, on which every connection is a task
//! (HTTP/1.1 and HTTP/2 through hyper: an idle or slow client costs a few kilobytes, not a thread),
//! and whose workers decode small patches themselves; a bounded pool that decodes large images and
//! parses large bodies; and ONE model thread that owns the models and runs dynamically batched
//! forward passes (`batcher`).

pub(crate) mod answer;
pub(crate) mod app;
pub(crate) mod auth;
pub(crate) mod batcher;
pub(crate) mod conn;
pub(crate) mod exchange;
pub(crate) mod grpc;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod models;
pub(crate) mod multipart;
pub(crate) mod pyjson;

use crate::engine::{Engine, EngineOptions};
use anyhow::{anyhow, Context, Result};
use app::{error, App};
use exchange::Exchanges;
use http::Limits;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Notify};

pub(crate) struct ServeOptions {
    pub(crate) models: Vec<models::ModelSpec>,
    pub(crate) address: SocketAddr,
    /// The gRPC port's address, if it is on.
    pub(crate) grpc_address: Option<SocketAddr>,
    pub(crate) engine: EngineOptions,
    pub(crate) max_batch_delay: Duration,
    pub(crate) job_queue_size: usize,
    /// How long a request may wait for room in a full queue before its 503.
    pub(crate) queue_wait: Duration,
    pub(crate) limits: Limits,
    pub(crate) max_connections: usize,
    pub(crate) auth: auth::Auth,
    pub(crate) quiet: bool,
}

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
pub(crate) fn run(options: ServeOptions) -> Result<()> {
    let listener = std::net::TcpListener::bind(options.address)
        .with_context(|| format!("cannot listen on {}", options.address))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let grpc_listener = match options.grpc_address {
        Some(at) => {
            let listener = std::net::TcpListener::bind(at)
                .with_context(|| format!("cannot listen on {at} (gRPC, --grpc-port)"))?;
            listener.set_nonblocking(true)?;
            Some(listener)
        }
        None => None,
    };
    let grpc_address = grpc_listener
        .as_ref()
        .map(std::net::TcpListener::local_addr)
        .transpose()?;
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
    let app = Arc::new(App {
        models: served,
        queue,
        queue_wait: options.queue_wait,
        metrics,
        auth: options.auth,
        batch_size: options.engine.batch_size,
        max_batch_delay: options.max_batch_delay,
        device: device.into(),
    });

    // One I/O worker per core: a worker decodes a small patch itself (no hand-off, see
    // `App::prepare`), so up to `cores` decode at once; large images and bodies go to a bounded pool
    // beside them. Either way many clients sending images cannot multiply decoded-pixel memory or
    // starve the model thread of cores.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("scancer-io")
        .enable_all()
        .max_blocking_threads(cores)
        .build()
        .context("cannot start the server's I/O runtime")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    watch_signals(stop_tx)?;
    announce(&app, address, grpc_address, &options.engine);
    let exchanges = Arc::new(Exchanges::new(
        Arc::clone(&app),
        options.limits,
        options.quiet,
    ));
    runtime.block_on(async {
        let connections = Arc::new(Connections::default());
        let max = options.max_connections;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let http = accept_loop(&listener, &connections, max, stop_rx.clone(), {
            let exchanges = Arc::clone(&exchanges);
            move |stream, peer, stop| serve_http(stream, peer, Arc::clone(&exchanges), stop)
        });
        let grpc = async {
            if let Some(listener) = grpc_listener {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let router = grpc::Router::new(Arc::clone(&app), options.limits);
                accept_loop(
                    &listener,
                    &connections,
                    max,
                    stop_rx.clone(),
                    move |stream, _, stop| grpc::serve(stream, router.clone(), stop),
                )
                .await;
            }
            anyhow::Ok(())
        };
        let ((), grpc) = tokio::join!(http, grpc);
        grpc?;
        // Finish what was received: connections close once their requests are answered.
        loop {
            let closed = connections.closed.notified();
            if connections.open.load(Ordering::SeqCst) == 0 {
                break;
            }
            closed.await;
        }
        anyhow::Ok(())
    })?;
    drop(runtime);
    app.queue.close();
    model_thread
        .join()
        .map_err(|_| anyhow!("the model thread panicked"))?;
    crate::messages::note!("stopped");
    Ok(())
}

fn announce(app: &App, address: SocketAddr, grpc: Option<SocketAddr>, engine: &EngineOptions) {
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
    if let Some(grpc) = grpc {
        crate::messages::note!(
            "gRPC on {host}:{} (inference.GRPCInferenceService, \
             org.pytorch.serve.grpc.inference.InferenceAPIsService)",
            grpc.port()
        );
    }
    if let Some(m) = app.models.first() {
        crate::messages::note!(
            "try: curl -T patch.png http://{host}:{}/predictions/{}",
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
        let served = serve(stream, peer.ip().to_string().into(), stop.clone());
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
        503,
        "ServiceUnavailableException",
        &format!("The server has {max} open connections, its limit; retry later"),
    );
    let bytes = response.to_http1_closing("Service Unavailable");
    let _ = tokio::time::timeout(Duration::from_millis(100), async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
}
