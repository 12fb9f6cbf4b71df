//! The bounded request queue and dynamic batching, with TorchServe's `batch_size` and
//! `max_batch_delay` semantics: the model thread waits for a first job, then collects up to
//! `batch_size - 1` more jobs for the same model within `max_batch_delay`, and runs them as one
//! forward pass. It stops waiting early when no other request is being read or decoded, because none
//! could join the batch: a lone client never pays the delay.

use crate::engine::preprocess::Prepared;
use crate::engine::Engine;
use crate::records::Prediction;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request's image, waiting for the model.
pub(crate) struct Job {
    /// Index of the model in the server's model list.
    pub(crate) model: usize,
    pub(crate) input: Prepared,
    pub(crate) enqueued: Instant,
    pub(crate) reply: SyncSender<Result<Answered, String>>,
}

/// A prediction and where its time went.
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) prediction: Prediction,
    /// From entering the queue to the start of its forward pass.
    pub(crate) queued: Duration,
}

pub(crate) struct Queue {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
    /// Requests being read or decoded that will soon be queued.
    arriving: AtomicUsize,
}

struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
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
                closed: false,
            }),
            changed: Condvar::new(),
            capacity: capacity.max(1),
            arriving: AtomicUsize::new(0),
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
    pub(crate) fn push(&self, job: Job) -> Result<(), Refused> {
        self.push_all(vec![job])
    }

    /// Queues all the jobs of one request, or none of them: a request is answered whole or refused.
    pub(crate) fn push_all(&self, jobs: Vec<Job>) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.jobs.len() + jobs.len() > self.capacity {
            return Err(Refused::Full);
        }
        state.jobs.extend(jobs);
        drop(state);
        self.changed.notify_all();
        Ok(())
    }

    /// Jobs waiting for `model`.
    pub(crate) fn pending(&self, model: usize) -> usize {
        self.lock().jobs.iter().filter(|j| j.model == model).count()
    }

    /// Requests being received or decoded for the model.
    pub(crate) fn arriving(&self) -> usize {
        self.arriving.load(Ordering::SeqCst)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Refuses new jobs; the ones queued are still served.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// The next batch: jobs for one model, oldest first; None once closed and empty.
    pub(crate) fn next_batch(&self, batch_size: usize, max_delay: Duration) -> Option<Vec<Job>> {
        let mut state = self.lock();
        while state.jobs.is_empty() {
            if state.closed {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        let model = state.jobs[0].model;
        let deadline = Instant::now() + max_delay;
        loop {
            let ready = state.jobs.iter().filter(|j| j.model == model).count();
            let now = Instant::now();
            if ready >= batch_size
                || now >= deadline
                || state.closed
                || self.arriving.load(Ordering::SeqCst) == 0
            {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let mut batch = Vec::with_capacity(batch_size);
        let mut kept = VecDeque::with_capacity(state.jobs.len());
        for job in state.jobs.drain(..) {
            if job.model == model && batch.len() < batch_size {
                batch.push(job);
            } else {
                kept.push_back(job);
            }
        }
        state.jobs = kept;
        Some(batch)
    }
}

/// Serves batches until the queue is closed and empty. Runs on the one thread that owns the models.
/// `on_batch` hears the size of every batch run.
pub(crate) fn serve(
    engines: &[Engine],
    queue: &Queue,
    max_delay: Duration,
    on_batch: impl Fn(usize),
) {
    let batch_size = engines.iter().map(Engine::batch_size).min().unwrap_or(1);
    while let Some(batch) = queue.next_batch(batch_size, max_delay) {
        let engine = &engines[batch[0].model];
        let started = Instant::now();
        let inputs: Vec<&Prepared> = batch.iter().map(|j| &j.input).collect();
        let answers = engine.infer_each(&inputs);
        let n = batch.len();
        on_batch(n);
        for (job, answer) in batch.into_iter().zip(answers) {
            // The client may have gone; its answer is dropped.
            let _ = job.reply.send(
                answer
                    .map(|prediction| Answered {
                        prediction,
                        queued: started - job.enqueued,
                    })
                    .map_err(|e| format!("the model failed: {e}")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn job(model: usize) -> Job {
        let (reply, _) = sync_channel(1);
        Job {
            model,
            input: Prepared { data: vec![] },
            enqueued: Instant::now(),
            reply,
        }
    }

    #[test]
    fn bounded_and_batched_per_model_in_order() {
        let queue = Queue::new(4);
        for m in [0, 1, 0, 0] {
            queue.push(job(m)).unwrap();
        }
        assert_eq!(queue.push(job(0)), Err(Refused::Full));
        assert_eq!(queue.pending(0), 3);
        // Nothing is arriving, so no waiting for the delay.
        let started = Instant::now();
        let batch = queue.next_batch(2, Duration::from_secs(10)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(batch.iter().map(|j| j.model).collect::<Vec<_>>(), [0, 0]);
        let batch = queue.next_batch(2, Duration::ZERO).unwrap();
        assert_eq!(batch.iter().map(|j| j.model).collect::<Vec<_>>(), [1]);
        queue.close();
        assert_eq!(queue.push(job(0)), Err(Refused::Closed));
        assert_eq!(queue.next_batch(2, Duration::ZERO).unwrap().len(), 1);
        assert!(queue.next_batch(2, Duration::ZERO).is_none());
    }

    #[test]
    fn waits_for_arriving_requests_up_to_the_delay() {
        let queue = Arc::new(Queue::new(8));
        queue.push(job(0)).unwrap();
        let _arriving = queue.arrival();
        let started = Instant::now();
        let batch = queue.next_batch(4, Duration::from_millis(50)).unwrap();
        assert_eq!(batch.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
