//! What a slide's windows run through: a loaded engine's lanes (`predict --tile`), or a served
//! model's workers through its queue (`serve --slides` analyses). Both answer with the same
//! preprocessing, forward pass and post-processing, so a slide's result cannot differ between them.

use crate::engine::handler_config::HandlerConfig;
use crate::engine::postprocess::Postprocessor;
use crate::engine::preprocess::{Prepared, Preprocessor};
use crate::engine::{Engine, EngineError};
use crate::records::Prediction;

pub(crate) trait SlideModel: Sync {
    fn config(&self) -> &HandlerConfig;
    fn preprocessor(&self) -> &Preprocessor;
    fn postprocessor(&self) -> &Postprocessor;
    fn class_labels(&self) -> Vec<String>;
    /// Windows sent together.
    fn batch_size(&self) -> usize;
    /// Batches run side by side.
    fn lanes(&self) -> usize;
    /// One answer per image, in order, run on lane `lane`.
    fn infer_each(&self, lane: usize, images: &[&Prepared])
        -> Vec<Result<Prediction, EngineError>>;
    /// The engine itself, where explanations can be computed (not through a queue).
    fn engine(&self) -> Option<&Engine>;
}

impl SlideModel for Engine {
    fn config(&self) -> &HandlerConfig {
        Engine::config(self)
    }

    fn preprocessor(&self) -> &Preprocessor {
        Engine::preprocessor(self)
    }

    fn postprocessor(&self) -> &Postprocessor {
        Engine::postprocessor(self)
    }

    fn class_labels(&self) -> Vec<String> {
        Engine::class_labels(self)
    }

    fn batch_size(&self) -> usize {
        Engine::batch_size(self)
    }

    fn lanes(&self) -> usize {
        Engine::lanes(self)
    }

    fn infer_each(
        &self,
        lane: usize,
        images: &[&Prepared],
    ) -> Vec<Result<Prediction, EngineError>> {
        Engine::infer_each(self, lane, images)
    }

    fn engine(&self) -> Option<&Engine> {
        Some(self)
    }
}
