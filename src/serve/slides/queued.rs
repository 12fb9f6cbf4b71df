//! A served model as an analysis runs a slide's windows through it: each batch is queued among the
//! model's interactive requests and run by its workers, at most `share` batches at once. An
//! analysis thus holds at most `share x batch_size` places of the queue, and a prediction that
//! arrives meanwhile waits for at most that many windows ahead of it, however large the slide.

use crate::engine::handler_config::HandlerConfig;
use crate::engine::postprocess::Postprocessor;
use crate::engine::preprocess::{Prepared, Preprocessor};
use crate::engine::{Engine, EngineError};
use crate::records::Prediction;
use crate::serve::batcher::{Job, JobError, Refused};
use crate::serve::models::ServedModel;
use crate::slide::model::SlideModel;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one wait for room in a full queue lasts before the analysis looks at its cancel flag.
const ROOM_WAIT: Duration = Duration::from_millis(200);

pub(crate) struct Queued {
    pub(crate) model: Arc<ServedModel>,
    /// The model's configuration with the analysis' threshold.
    pub(crate) config: HandlerConfig,
    pub(crate) postprocessor: Postprocessor,
    /// Batches in the queue at once.
    pub(crate) share: usize,
    /// The server's runtime, which the workers' answers come through.
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) cancelled: Arc<AtomicBool>,
}

impl Queued {
    /// The batches an analysis may have in the queue at once: half the model's workers (at least
    /// one), so that the others stay free for interactive requests.
    pub(crate) fn share_of(model: &ServedModel) -> usize {
        (model.workers.count() / 2).max(1)
    }

    /// Why the model's queue took no window.
    fn refused(&self, refused: Refused) -> String {
        match refused {
            Refused::NoWorker => self.model.no_worker(false),
            Refused::Full | Refused::Closed => format!(
                "model {} {} is no longer served",
                self.model.name, self.model.version
            ),
        }
    }

    fn run(&self, images: &[&Prepared]) -> Result<Vec<Prediction>, String> {
        let queue = &self.model.queue;
        let reservation = loop {
            if self.cancelled.load(Ordering::SeqCst) {
                return Err("cancelled".into());
            }
            match self.runtime.block_on(queue.admit(images.len(), ROOM_WAIT)) {
                Ok(reservation) => break reservation,
                Err(Refused::Full) => continue,
                Err(refused) => return Err(self.refused(refused)),
            }
        };
        let enqueued = Instant::now();
        let (jobs, replies): (Vec<Job>, Vec<_>) = images
            .iter()
            .map(|input| {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let job = Job {
                    input: (*input).clone(),
                    explain: None,
                    enqueued,
                    reply,
                };
                (job, answer)
            })
            .unzip();
        reservation
            .push(jobs)
            .map_err(|refused| self.refused(refused))?;
        let mut predictions = Vec::with_capacity(replies.len());
        for reply in replies {
            match self.runtime.block_on(reply) {
                Ok(Ok(answered)) => predictions.push(answered.prediction),
                Ok(Err(JobError::Model(why) | JobError::NoWorker(why))) => return Err(why),
                Err(_) => return Err("the worker dropped the window".into()),
            }
        }
        Ok(predictions)
    }
}

impl SlideModel for Queued {
    fn config(&self) -> &HandlerConfig {
        &self.config
    }

    fn preprocessor(&self) -> &Preprocessor {
        &self.model.preprocessor
    }

    fn postprocessor(&self) -> &Postprocessor {
        &self.postprocessor
    }

    fn class_labels(&self) -> Vec<String> {
        self.model.labels.clone()
    }

    fn batch_size(&self) -> usize {
        self.model.settings.batch_size.max(1)
    }

    fn lanes(&self) -> usize {
        self.share
    }

    fn infer_each(
        &self,
        _lane: usize,
        images: &[&Prepared],
    ) -> Vec<Result<Prediction, EngineError>> {
        match self.run(images) {
            Ok(predictions) => predictions.into_iter().map(Ok).collect(),
            Err(why) => images
                .iter()
                .map(|_| Err(EngineError::Served(why.clone())))
                .collect(),
        }
    }

    fn engine(&self) -> Option<&Engine> {
        None
    }
}
