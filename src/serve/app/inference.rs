//! The path every protocol's predictions share: room reserved in the model's queue (before
//! decoding), images decoded and preprocessed, jobs batched by the model's workers, answers waited
//! for, and the request counted once.

use super::errors::Failure;
use super::state::App;
use crate::engine::preprocess::Prepared;
use crate::serve::batcher::{Answered, Arrival, Job, Refused, Reservation};
use crate::serve::metrics::Observation;
use crate::serve::models::ServedModel;
use crate::serve::registry::Missing;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Images up to this size are decoded on the I/O worker that read them (see `prepare`).
const INLINE_DECODE_BYTES: usize = 256 << 10;

impl App {
    /// One image through the path every protocol shares: admitted (before decoding), decoded and
    /// preprocessed, batched, answered.
    pub(crate) async fn predict_image(
        self: &Arc<App>,
        model: &Arc<ServedModel>,
        image: Bytes,
        arrival: Arrival,
        versioned: bool,
    ) -> Result<Answered, Failure> {
        let reservation = self.admit(model, 1, versioned).await?;
        let prepared = self.prepare(model, vec![image], false).await?;
        let mut answers = self.infer(model, prepared, reservation, arrival).await?;
        Ok(answers.remove(0))
    }

    /// Counts a prediction request of `model` once, however many images it carried.
    pub(crate) fn observe(
        &self,
        m: &ServedModel,
        requested: Option<&str>,
        started: Instant,
        answered: &Result<Vec<Answered>, Failure>,
    ) {
        match answered {
            Ok(answers) => self.metrics.predicted(&Observation {
                model: &m.name,
                version: &m.version,
                requested,
                images: answers.len(),
                latency: started.elapsed(),
                queued: answers.iter().map(|a| a.queued).max().unwrap_or_default(),
            }),
            Err(failure) => {
                self.metrics
                    .rejected(&m.name, &m.version, requested, failure.rejection())
            }
        }
    }

    /// Room in `model`'s queue for `n` images, waiting up to the queue wait for it.
    pub(crate) async fn admit(
        &self,
        model: &ServedModel,
        n: usize,
        versioned: bool,
    ) -> Result<Reservation, Failure> {
        if model.workers.count() == 0 {
            return Err(Failure::NoWorker(model.no_worker(versioned)));
        }
        let queue = &model.queue;
        if n > queue.capacity() {
            return Err(Failure::BadInput(format!(
                "{n} inputs are more than the queue holds ({}, job_queue_size)",
                queue.capacity()
            )));
        }
        queue
            .admit(n, self.queue_wait)
            .await
            .map_err(|refused| self.refused(model, refused))
    }

    /// Why a queue took no job: the server is stopping, or the version was unregistered.
    fn refused(&self, model: &ServedModel, refused: Refused) -> Failure {
        match refused {
            Refused::Full => Failure::QueueFull,
            Refused::NoWorker => Failure::NoWorker(model.no_worker(false)),
            Refused::Closed if self.stopping.load(Ordering::SeqCst) => Failure::ShuttingDown,
            Refused::Closed => Failure::Unregistered(
                self.registry
                    .lookup(&model.name, Some(&model.version))
                    .err()
                    .unwrap_or_else(|| Missing::model(&model.name)),
            ),
        }
    }

    /// Decodes and preprocesses images for `model` on the decoding pool, in order; `numbered`
    /// errors say which image of the request failed.
    pub(crate) async fn prepare(
        self: &Arc<App>,
        model: &Arc<ServedModel>,
        images: Vec<Bytes>,
        numbered: bool,
    ) -> Result<Vec<Prepared>, Failure> {
        let small = images.iter().map(Bytes::len).sum::<usize>() <= INLINE_DECODE_BYTES;
        let decode = move |m: &ServedModel| {
            images
                .iter()
                .enumerate()
                .map(|(i, image)| {
                    m.preprocessor.prepare(image).map_err(|e| {
                        Failure::BadInput(if numbered {
                            format!("image {i}: {e}")
                        } else {
                            e.to_string()
                        })
                    })
                })
                .collect::<Result<Vec<_>, Failure>>()
        };
        // A lone small patch is decoded where it is: the hand-off to the pool and back costs two
        // thread wake-ups, a tenth of a one-client round trip, and no other request waits for the
        // I/O thread meanwhile.
        if small {
            decode(model)
        } else {
            let m = Arc::clone(model);
            self.off_thread(move || decode(&m)).await?
        }
    }

    /// Runs CPU work (decoding, parsing a large body) on the bounded pool beside the I/O thread.
    pub(crate) async fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Failure> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Failure::Internal(format!("decoding failed: {e}")))
    }

    /// Queues preprocessed images for `model` in the room reserved for them and waits for their
    /// answers, in order. `arrival` marks the request as on its way to the queue until its jobs are in
    /// it.
    pub(crate) async fn infer(
        &self,
        model: &ServedModel,
        inputs: Vec<Prepared>,
        reservation: Reservation,
        arrival: Arrival,
    ) -> Result<Vec<Answered>, Failure> {
        self.run_jobs(model, inputs, None, reservation, arrival)
            .await
    }

    /// `infer`, each input also explained towards output column `explain` when given.
    pub(crate) async fn run_jobs(
        &self,
        model: &ServedModel,
        inputs: Vec<Prepared>,
        explain: Option<usize>,
        reservation: Reservation,
        arrival: Arrival,
    ) -> Result<Vec<Answered>, Failure> {
        let mut replies = Vec::with_capacity(inputs.len());
        let mut jobs = Vec::with_capacity(inputs.len());
        let enqueued = Instant::now();
        for input in inputs {
            let (reply, answer) = oneshot::channel();
            jobs.push(Job {
                explain,
                input,
                enqueued,
                reply,
            });
            replies.push(answer);
        }
        if let Err(refused) = reservation.push(jobs) {
            return Err(self.refused(model, refused));
        }
        drop(arrival);
        let timeout = model.settings.response_timeout;
        let mut answers = Vec::with_capacity(replies.len());
        for reply in replies {
            match tokio::time::timeout(timeout, reply).await {
                Ok(Ok(answered)) => answers.push(answered?),
                Ok(Err(_)) => {
                    return Err(Failure::Internal("the worker dropped the request".into()))
                }
                Err(_) => {
                    return Err(Failure::Internal(format!(
                        "no answer from the model within {} s (responseTimeout)",
                        timeout.as_secs()
                    )))
                }
            }
        }
        Ok(answers)
    }
}
