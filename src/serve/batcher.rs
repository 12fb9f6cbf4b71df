//! A model version's bounded request queue and dynamic batching, with TorchServe's `batch_size` and
//! `max_batch_delay` semantics: each of the version's workers waits for a first job, then collects up
//! to `batch_size - 1` more jobs within `max_batch_delay`, and runs them as one forward pass. It stops
//! waiting early once the batch fills the shape that the requests already arriving would make
//! (`Queue::next_batch`), and when no other request could join it (none is being decoded, and none
//! is being read while the queue has room): a lone client never pays the delay, and neither does a
//! full queue.
//!
//! Admission comes before decoding: a request first reserves room for its images (`admit`), waiting
//! a bounded time when the queue is full, so that a refused request costs no decoding and closed-loop
//! clients under overload wait for room instead of spinning on 503s.

use crate::engine::preprocess::Prepared;
use crate::engine::Engine;
use crate::records::Prediction;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// One request's image, waiting for the model.
pub(crate) struct Job {
    pub(crate) input: Prepared,
    /// `/explanations`: also the attribution towards this output column.
    pub(crate) explain: Option<usize>,
    pub(crate) enqueued: Instant,
    pub(crate) reply: oneshot::Sender<Result<Answered, JobError>>,
}

/// Why a job got no prediction.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JobError {
    /// The forward pass failed.
    Model(String),
    /// No worker is left to run it (the version was scaled to 0).
    NoWorker(String),
}

/// A prediction and where its time went.
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) prediction: Prediction,
    /// An explanation's Integrated Gradients attribution (the input's shape).
    pub(crate) attribution: Option<Vec<f32>>,
    /// From entering the queue to the start of its forward pass.
    pub(crate) queued: Duration,
}

pub(crate) struct Queue {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
    /// Requests being read or decoded that will soon be queued.
    arriving: AtomicUsize,
    /// Jobs in a worker's forward pass: their clients are likely to send again soon.
    running: AtomicUsize,
    /// Told whenever room may have freed (a batch taken, a reservation given back).
    room: Notify,
}

struct State {
    jobs: VecDeque<Job>,
    /// Room held by admitted requests still decoding.
    reserved: usize,
    closed: bool,
    /// No worker will take a job (the version is scaled to 0): jobs are refused, not left waiting.
    unserved: bool,
}

/// Room in the queue for one request's images, held from admission until its jobs are queued.
pub(crate) struct Reservation {
    queue: Arc<Queue>,
    n: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.n > 0 {
            self.queue.lock().reserved -= self.n;
            self.queue.room.notify_waiters();
            self.queue.changed.notify_all();
        }
    }
}

impl Reservation {
    /// Queues the request's jobs in the room reserved for them.
    pub(crate) fn push(mut self, jobs: Vec<Job>) -> Result<(), Refused> {
        let queue = Arc::clone(&self.queue);
        let mut state = queue.lock();
        state.reserved -= std::mem::take(&mut self.n);
        if state.closed || state.unserved {
            let refused = if state.closed {
                Refused::Closed
            } else {
                Refused::NoWorker
            };
            drop(state);
            queue.room.notify_waiters();
            return Err(refused);
        }
        state.jobs.extend(jobs);
        drop(state);
        queue.changed.notify_all();
        Ok(())
    }
}

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
    /// The version has no worker.
    NoWorker,
}

/// Counts a request as arriving until it is queued or dropped.
pub(crate) struct Arrival(Arc<Queue>);

impl Drop for Arrival {
    fn drop(&mut self) {
        self.0.arriving.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_all();
    }
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                reserved: 0,
                closed: false,
                unserved: false,
            }),
            changed: Condvar::new(),
            capacity: capacity.max(1),
            arriving: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// Reserves room for `n` images, or says why not, at once.
    pub(crate) fn try_reserve(self: &Arc<Queue>, n: usize) -> Result<Reservation, Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.jobs.len() + state.reserved + n > self.capacity {
            return Err(Refused::Full);
        }
        state.reserved += n;
        Ok(Reservation {
            queue: Arc::clone(self),
            n,
        })
    }

    /// Reserves room for `n` images, waiting up to `wait` for a full queue to make room.
    pub(crate) async fn admit(
        self: &Arc<Queue>,
        n: usize,
        wait: Duration,
    ) -> Result<Reservation, Refused> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before trying, so that room freed in between is not missed.
            let freed = self.room.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.try_reserve(n) {
                Err(Refused::Full) if tokio::time::Instant::now() < deadline => {
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        return self.try_reserve(n);
                    }
                }
                done => return done,
            }
        }
    }

    pub(crate) fn arrival(self: &Arc<Queue>) -> Arrival {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arrival(Arc::clone(self))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue inconsistent (every change is one
        // VecDeque call), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn push(self: &Arc<Queue>, job: Job) -> Result<(), Refused> {
        self.try_reserve(1)?.push(vec![job])
    }

    /// Jobs waiting for a worker.
    pub(crate) fn pending(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Room held by admitted requests still decoding.
    pub(crate) fn reserved(&self) -> usize {
        self.lock().reserved
    }

    /// Requests being received or decoded for the model version.
    pub(crate) fn arriving(&self) -> usize {
        self.arriving.load(Ordering::SeqCst)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// A worker answered `n` jobs of a batch it took. (No worker is woken: what a waiting one
    /// waits for is the requests those clients send next.)
    fn answered(&self, n: usize) {
        self.running.fetch_sub(n, Ordering::SeqCst);
    }

    /// Refuses new jobs; the ones queued are still served.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake();
    }

    /// Wakes every waiting worker and admission, to look at their stop flags or the queue again.
    pub(crate) fn wake(&self) {
        // Taken and released so that a worker between its check and its wait is not missed.
        drop(self.lock());
        self.changed.notify_all();
        self.room.notify_waiters();
    }

    /// Says whether a worker will take jobs. Without one, queued jobs are answered with `why`, and
    /// new ones refused, so that none waits for a worker that is not coming.
    pub(crate) fn set_served(&self, served: bool, why: &str) {
        let mut state = self.lock();
        state.unserved = !served;
        if served {
            return;
        }
        let jobs: Vec<Job> = state.jobs.drain(..).collect();
        drop(state);
        for job in jobs {
            let _ = job.reply.send(Err(JobError::NoWorker(why.to_string())));
        }
        self.room.notify_waiters();
    }

    /// The next batch for a worker, oldest jobs first; None once the queue is closed and empty, or
    /// once `stop` is set (the worker is retired; the jobs stay for the others). `shapes` are the
    /// batch shapes the worker runs, smallest first (a batch runs at the smallest that holds it,
    /// padded): the worker waits, up to `max_delay`, only for requests already arriving, and only
    /// until the batch fills the shape that they and the queued ones would make, so that no pass is
    /// mostly padding when requests are about to come, and a lone request never waits.
    pub(crate) fn next_batch(
        &self,
        shapes: &[usize],
        max_delay: Duration,
        stop: &AtomicBool,
    ) -> Option<Vec<Job>> {
        let largest = shapes.last().copied().unwrap_or(1).max(1);
        let mut state = self.lock();
        while state.jobs.is_empty() {
            if state.closed || stop.load(Ordering::SeqCst) {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        let deadline = Instant::now() + max_delay;
        loop {
            let ready = state.jobs.len();
            let now = Instant::now();
            // Worth waiting for: images admitted and decoding, or requests still being received
            // while the queue has room for them (one that finds it full cannot join this batch).
            let room = state.jobs.len() + state.reserved < self.capacity;
            let arriving = if room {
                self.arriving.load(Ordering::SeqCst)
            } else {
                0
            };
            let coming = state.reserved.max(arriving);
            let mut wanted = (ready + coming).min(largest);
            // Below the smallest shape a pass would be mostly padding: the clients of the passes
            // running now (closed-loop clients send again as soon as they are answered) are
            // worth the delay too.
            let running = self.running.load(Ordering::SeqCst);
            let smallest = shapes.first().copied().unwrap_or(1);
            if wanted < smallest {
                wanted = (wanted + running).min(smallest);
            }
            let shape = shapes
                .iter()
                .copied()
                .find(|&s| s >= wanted)
                .unwrap_or(largest);
            if ready >= shape || wanted <= ready || now >= deadline || state.closed {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let n = largest.min(state.jobs.len());
        let batch: Vec<Job> = state.jobs.drain(..n).collect();
        self.running.fetch_add(n, Ordering::SeqCst);
        drop(state);
        self.room.notify_waiters();
        Some(batch)
    }
}

/// Why a model gave no answer for an image, as its runner says it: serve only shows it (in a 500).
pub(crate) type ModelFailure = Box<dyn std::error::Error + Send + Sync>;

/// What a worker runs batches with: a model's engine.
pub(crate) trait Runner: Send {
    /// The batch shapes it runs, smallest first, the largest its batch size.
    fn shapes(&self) -> &[usize];
    /// One answer per image, in order (`Engine::infer_each`'s policy for a failed batch).
    fn infer_each(&self, images: &[&Prepared]) -> Vec<Result<Prediction, ModelFailure>>;
    /// Integrated Gradients of one image towards output column `target`.
    fn explain(&self, image: &Prepared, target: usize) -> Result<Vec<f32>, ModelFailure>;
}

impl Runner for Engine {
    fn shapes(&self) -> &[usize] {
        Engine::shapes(self)
    }

    fn infer_each(&self, images: &[&Prepared]) -> Vec<Result<Prediction, ModelFailure>> {
        Engine::infer_each(self, 0, images)
            .into_iter()
            .map(|answer| answer.map_err(ModelFailure::from))
            .collect()
    }

    fn explain(&self, image: &Prepared, target: usize) -> Result<Vec<f32>, ModelFailure> {
        Engine::explain(self, image, target)
            .map(|e| e.attribution)
            .map_err(ModelFailure::from)
    }
}

/// Serves batches until the queue is closed and empty, or `stop` is set. Runs on a worker thread,
/// which owns its engine. `on_batch` hears the size of every batch run.
pub(crate) fn serve(
    engine: &dyn Runner,
    queue: &Queue,
    max_delay: Duration,
    stop: &AtomicBool,
    on_batch: impl Fn(&BatchTimes),
) {
    while let Some(batch) = queue.next_batch(engine.shapes(), max_delay, stop) {
        let started = Instant::now();
        let inputs: Vec<&Prepared> = batch.iter().map(|j| &j.input).collect();
        let answers = engine.infer_each(&inputs);
        let handler = started.elapsed();
        let n = batch.len();
        for (job, answer) in batch.into_iter().zip(answers) {
            // An explanation's gradients run after its batch's forward pass.
            let attribution = match job.explain {
                Some(target) => match engine.explain(&job.input, target) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        let _ = job
                            .reply
                            .send(Err(JobError::Model(format!("cannot explain: {e}"))));
                        continue;
                    }
                },
                None => None,
            };
            // The client may have gone; its answer is dropped.
            let _ = job.reply.send(
                answer
                    .map(|prediction| Answered {
                        prediction,
                        attribution,
                        queued: started - job.enqueued,
                    })
                    .map_err(|e| JobError::Model(format!("the model failed: {e}"))),
            );
        }
        queue.answered(n);
        on_batch(&BatchTimes {
            size: n,
            handler,
            worker: started.elapsed(),
        });
    }
}

/// One batch as a worker ran it: its size, the model's part (the forward pass, with the tensors in
/// and out: TorchServe's HandlerTime) and the whole (explanations and answers included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchTimes {
    pub(crate) size: usize,
    pub(crate) handler: Duration,
    pub(crate) worker: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            explain: None,
            input: Prepared { data: vec![] },
            enqueued: Instant::now(),
            reply,
        }
    }

    #[test]
    fn bounded_and_batched_in_order() {
        let queue = Arc::new(Queue::new(4));
        let go = AtomicBool::new(false);
        for _ in 0..4 {
            queue.push(job()).unwrap();
        }
        assert_eq!(queue.push(job()), Err(Refused::Full));
        assert_eq!(queue.pending(), 4);
        // Nothing is arriving, so no waiting for the delay.
        let started = Instant::now();
        let batch = queue
            .next_batch(&[3], Duration::from_secs(10), &go)
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(batch.len(), 3);
        queue.close();
        assert_eq!(queue.push(job()), Err(Refused::Closed));
        assert_eq!(
            queue.next_batch(&[3], Duration::ZERO, &go).unwrap().len(),
            1
        );
        assert!(queue.next_batch(&[3], Duration::ZERO, &go).is_none());
    }

    #[test]
    fn a_retired_worker_leaves_the_jobs_to_the_others() {
        let queue = Arc::new(Queue::new(4));
        queue.push(job()).unwrap();
        let stop = AtomicBool::new(true);
        assert!(queue.next_batch(&[1], Duration::ZERO, &stop).is_none());
        assert_eq!(queue.pending(), 1);
        // A worker waiting on an empty queue wakes up when told to stop.
        let stop = Arc::new(AtomicBool::new(false));
        let waiting = Arc::new(Queue::new(4));
        let worker = {
            let (waiting, stop) = (Arc::clone(&waiting), Arc::clone(&stop));
            std::thread::spawn(move || waiting.next_batch(&[1], Duration::ZERO, &stop).is_none())
        };
        std::thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::SeqCst);
        waiting.wake();
        assert!(worker.join().unwrap());
        // Jobs no worker will run are answered, not left waiting.
        let (reply, answer) = oneshot::channel();
        queue
            .push(Job {
                explain: None,
                input: Prepared { data: vec![] },
                enqueued: Instant::now(),
                reply,
            })
            .unwrap();
        queue.set_served(false, "no worker");
        assert_eq!(queue.pending(), 0);
        assert_eq!(
            answer.blocking_recv().unwrap().unwrap_err(),
            JobError::NoWorker("no worker".into())
        );
        // ... and later jobs are refused until a worker comes.
        assert_eq!(queue.push(job()), Err(Refused::NoWorker));
        queue.set_served(true, "");
        assert_eq!(queue.push(job()), Ok(()));
    }

    #[test]
    fn waits_for_arriving_requests_up_to_the_delay() {
        let queue = Arc::new(Queue::new(8));
        queue.push(job()).unwrap();
        let _arriving = queue.arrival();
        let started = Instant::now();
        let batch = queue
            .next_batch(&[4], Duration::from_millis(50), &AtomicBool::new(false))
            .unwrap();
        assert_eq!(batch.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn below_the_smallest_shape_waits_for_the_clients_of_running_passes() {
        let queue = Arc::new(Queue::new(8));
        let go = AtomicBool::new(false);
        // A lone request: nothing runs, nothing arrives, so no wait.
        queue.push(job()).unwrap();
        let started = Instant::now();
        let first = queue
            .next_batch(&[4, 8], Duration::from_secs(10), &go)
            .unwrap();
        assert_eq!(first.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
        // While that one runs, a batch of one would be mostly padding: wait for the delay...
        queue.push(job()).unwrap();
        let started = Instant::now();
        let second = queue
            .next_batch(&[4, 8], Duration::from_millis(50), &go)
            .unwrap();
        assert_eq!(second.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(50));
        // ... unless the queue already fills the smallest shape.
        queue.answered(first.len());
        for _ in 0..4 {
            queue.push(job()).unwrap();
        }
        let started = Instant::now();
        let third = queue
            .next_batch(&[4, 8], Duration::from_secs(10), &go)
            .unwrap();
        assert_eq!(third.len(), 4);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn admission_waits_for_room_up_to_the_wait() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let queue = Arc::new(Queue::new(1));
        let held = queue.try_reserve(1).unwrap();
        runtime.block_on(async {
            let started = Instant::now();
            let refused = queue.admit(1, Duration::from_millis(50)).await;
            assert!(matches!(refused, Err(Refused::Full)));
            assert!(started.elapsed() >= Duration::from_millis(50));
            // Room freed during the wait lets the request in.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(held);
            });
            let started = Instant::now();
            assert!(queue.admit(1, Duration::from_secs(10)).await.is_ok());
            assert!(started.elapsed() < Duration::from_secs(5));
        });
        queue.close();
        assert!(matches!(queue.try_reserve(1), Err(Refused::Closed)));
    }
}
