//! A model version's workers: model instances, each on its own thread with its own engine, taking
//! batches from the version's one queue, so that more workers run more forward passes at once.
//! Scaling starts workers up to the minimum and retires the newest ones over the maximum (each after
//! the batch it is running), as TorchServe does. A version left with no worker answers its queued
//! jobs with TorchServe's "no worker" error rather than leaving them to time out.

use super::batcher::{self, BatchTimes, Queue, Runner};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Worker ids, as TorchServe numbers them (from its first worker port, 9000), across all models.
static NEXT_ID: AtomicU32 = AtomicU32::new(9000);

/// What a version's workers report (to the metrics): each batch they run, and how long each took
/// to load its model.
pub(crate) trait WorkerEvents: Send + Sync {
    fn batch(&self, times: &BatchTimes);
    fn loaded(&self, worker: u32, took: Duration);
    /// The worker could not load its model.
    fn failed(&self, worker: u32, why: &str);
    /// The worker stopped (retired, or its version unregistered).
    fn stopped(&self, worker: u32);
}

/// Loads a new worker's runner (on the worker's thread).
pub(crate) type Loader = Arc<dyn Fn() -> anyhow::Result<Box<dyn Runner>> + Send + Sync>;

pub(crate) struct Workers {
    pool: Mutex<Pool>,
    /// Told whenever a worker becomes ready, fails to start or stops.
    changed: Notify,
    /// Told (with the pool locked) whenever a worker stops.
    stopped: Condvar,
    load: Loader,
    queue: Arc<Queue>,
    delay: Duration,
    events: Arc<dyn WorkerEvents>,
    /// How long the engine given to the first worker took to load.
    first_load: Duration,
    /// How messages name the version: `pcam 1.0`.
    label: String,
    /// Said to a job when no worker is left to run it.
    no_worker: String,
}

struct Pool {
    min: usize,
    max: usize,
    live: Vec<Worker>,
    /// Workers that could not load the model since the last scale.
    failed: usize,
}

struct Worker {
    id: u32,
    /// ISO 8601, UTC, as TorchServe's startTime.
    started: String,
    ready: bool,
    stop: Arc<AtomicBool>,
}

/// One worker as `GET /models/{name}` shows it.
#[derive(Debug, Clone)]
pub(crate) struct WorkerStatus {
    pub(crate) id: u32,
    pub(crate) started: String,
    pub(crate) ready: bool,
}

impl Workers {
    pub(crate) fn new(
        load: Loader,
        queue: Arc<Queue>,
        delay: Duration,
        events: Arc<dyn WorkerEvents>,
        first_load: Duration,
        label: String,
        no_worker: String,
    ) -> Workers {
        Workers {
            pool: Mutex::new(Pool {
                min: 0,
                max: 0,
                live: Vec::new(),
                failed: 0,
            }),
            changed: Notify::new(),
            stopped: Condvar::new(),
            load,
            queue,
            delay,
            events,
            first_load,
            label,
            no_worker,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        // Every change to the pool is a single push, remove or assignment: a panic cannot leave it
        // half-changed.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the version's minimum and maximum workers: starts workers up to `min`, retires the
    /// newest over `max`. `first` is an engine already loaded (at registration), given to the first
    /// worker started; otherwise each new worker loads its own.
    pub(crate) fn scale(
        self: &Arc<Self>,
        min: usize,
        max: usize,
        mut first: Option<Box<dyn Runner>>,
    ) {
        let mut pool = self.lock();
        pool.min = min;
        pool.max = max.max(min);
        pool.failed = 0;
        while pool.live.len() > pool.max {
            if let Some(worker) = pool.live.pop() {
                worker.stop.store(true, Ordering::SeqCst);
            }
        }
        while pool.live.len() < pool.min {
            let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
            let stop = Arc::new(AtomicBool::new(false));
            pool.live.push(Worker {
                id,
                started: now(),
                ready: false,
                stop: Arc::clone(&stop),
            });
            let workers = Arc::clone(self);
            let engine = first.take();
            let spawned = std::thread::Builder::new()
                .name(format!("scancer-w{id}"))
                .spawn(move || workers.run(id, &stop, engine));
            if let Err(e) = spawned {
                crate::messages::note!("{}: cannot start worker {id}: {e}", self.label);
                pool.live.retain(|w| w.id != id);
                pool.failed += 1;
                break;
            }
        }
        let none_left = pool.live.is_empty();
        // Decided with the pool locked, so that a worker stopping meanwhile cannot undo it.
        self.queue.set_served(!none_left, &self.no_worker);
        drop(pool);
        // Retired workers waiting for a job look at their stop flags.
        self.queue.wake();
        self.changed.notify_waiters();
    }

    fn run(self: Arc<Self>, id: u32, stop: &AtomicBool, engine: Option<Box<dyn Runner>>) {
        let loading = Instant::now();
        let engine = match engine {
            Some(engine) => Ok((engine, self.first_load)),
            None => (self.load)().map(|engine| (engine, loading.elapsed())),
        };
        match engine {
            Ok((engine, took)) => {
                if let Some(w) = self.lock().live.iter_mut().find(|w| w.id == id) {
                    w.ready = true;
                }
                self.changed.notify_waiters();
                self.events.loaded(id, took);
                let events = Arc::clone(&self.events);
                batcher::serve(&*engine, &self.queue, self.delay, stop, |times| {
                    events.batch(times)
                });
            }
            Err(e) => {
                crate::messages::note!("{}: worker {id} cannot load the model: {e:#}", self.label);
                self.events.failed(id, &format!("{e:#}"));
                self.lock().failed += 1;
            }
        }
        self.events.stopped(id);
        let mut pool = self.lock();
        pool.live.retain(|w| w.id != id);
        if pool.live.is_empty() {
            self.queue.set_served(false, &self.no_worker);
        }
        self.stopped.notify_all();
        drop(pool);
        self.changed.notify_waiters();
    }

    /// Workers started or starting (TorchServe counts both as the model's workers).
    pub(crate) fn count(&self) -> usize {
        self.lock().live.len()
    }

    /// The minimum and maximum set by the last scale.
    pub(crate) fn limits(&self) -> (usize, usize) {
        let pool = self.lock();
        (pool.min, pool.max)
    }

    pub(crate) fn status(&self) -> Vec<WorkerStatus> {
        self.lock()
            .live
            .iter()
            .map(|w| WorkerStatus {
                id: w.id,
                started: w.started.clone(),
                ready: w.ready,
            })
            .collect()
    }

    /// Waits up to `timeout` for every worker of the last scale to be ready. Ok(true): all are;
    /// Ok(false): still starting at the deadline; Err(n): n workers could not load the model.
    pub(crate) async fn settled(&self, timeout: Duration) -> Result<bool, usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let pool = self.lock();
                if pool.failed > 0 {
                    return Err(pool.failed);
                }
                if pool.live.len() >= pool.min
                    && pool.live.len() <= pool.max
                    && pool.live.iter().all(|w| w.ready)
                {
                    return Ok(true);
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ok(false);
            }
        }
    }

    /// Waits (blocking) up to `timeout` for every worker to have stopped.
    pub(crate) fn wait_stopped(&self, timeout: Duration) -> bool {
        let pool = self.lock();
        let (pool, _) = self
            .stopped
            .wait_timeout_while(pool, timeout, |pool| !pool.live.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        pool.live.is_empty()
    }
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
