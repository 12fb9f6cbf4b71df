//! Jobs run on every lane of an engine side by side, their results handed back in the order the
//! jobs came: how predict and slides keep every core busy with whole forward passes while their
//! records stay in input order. Memory stays bounded: a job waits to be queued while every lane is
//! busy and one job per lane is already waiting.

use super::Engine;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

/// The caller's side of a run: submit jobs, take results in order.
pub(crate) struct Ordered<J, R> {
    jobs: Option<SyncSender<(usize, J)>>,
    results: Receiver<(usize, std::thread::Result<R>)>,
    submitted: usize,
    returned: usize,
    /// Results that came before an earlier job's.
    early: BTreeMap<usize, R>,
}

impl<J, R> Ordered<J, R> {
    /// Queues a job, waiting while every lane is busy and the queue is full.
    pub(crate) fn submit(&mut self, job: J) {
        let jobs = self.jobs.as_ref().expect("open until the run ends");
        // The lanes stop only once this side is dropped, so the send cannot fail.
        jobs.send((self.submitted, job))
            .expect("the lanes outlive the run");
        self.submitted += 1;
    }

    /// The next result in order if it is ready, without waiting.
    pub(crate) fn ready(&mut self) -> Option<R> {
        self.next(false)
    }

    /// The next result in order, waiting for it; None once every job's result was returned.
    pub(crate) fn wait(&mut self) -> Option<R> {
        self.next(true)
    }

    fn next(&mut self, block: bool) -> Option<R> {
        loop {
            if self.returned == self.submitted {
                return None;
            }
            if let Some(result) = self.early.remove(&self.returned) {
                self.returned += 1;
                return Some(result);
            }
            let (k, result) = if block {
                self.results.recv().ok()?
            } else {
                self.results.try_recv().ok()?
            };
            // A job that panicked panics here, on the caller's thread, as it would have inline.
            self.early
                .insert(k, result.unwrap_or_else(|panic| resume_unwind(panic)));
        }
    }
}

impl Engine {
    /// Runs `drive` on this thread while every lane runs the jobs it submits (see `run_ordered`).
    pub(crate) fn run_ordered<J: Send, R: Send, T>(
        &self,
        work: impl Fn(usize, J) -> R + Sync,
        drive: impl FnOnce(&mut Ordered<J, R>) -> T,
    ) -> T {
        run_ordered(self.lanes(), work, drive)
    }
}

/// Runs `drive` on this thread while `lanes` threads run the jobs it submits: `work(lane, job)` on
/// the lane's own thread. Results come back through `Ordered` in submission order. Jobs still
/// queued when `drive` returns are run and dropped.
pub(crate) fn run_ordered<J: Send, R: Send, T>(
    lanes: usize,
    work: impl Fn(usize, J) -> R + Sync,
    drive: impl FnOnce(&mut Ordered<J, R>) -> T,
) -> T {
    let lanes = lanes.max(1);
    let (jobs, queued) = sync_channel::<(usize, J)>(lanes);
    let queued = Mutex::new(queued);
    std::thread::scope(|scope| {
        let (done, results) = channel();
        for lane in 0..lanes {
            let (queued, done, work) = (&queued, done.clone(), &work);
            std::thread::Builder::new()
                .name(format!("scancer-lane-{lane}"))
                .spawn_scoped(scope, move || loop {
                    // One lane waits on the queue at a time; the others wait for the lock.
                    let next = queued.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((k, job)) = next else { return };
                    let result = catch_unwind(AssertUnwindSafe(|| work(lane, job)));
                    if done.send((k, result)).is_err() {
                        return;
                    }
                })
                .expect("cannot start a model lane");
        }
        drop(done);
        let mut ordered = Ordered {
            jobs: Some(jobs),
            results,
            submitted: 0,
            returned: 0,
            early: BTreeMap::new(),
        };
        let out = drive(&mut ordered);
        // Closing the queue ends the lanes once they have run what is queued.
        ordered.jobs = None;
        out
    })
}
