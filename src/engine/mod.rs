//! The engine: the one inference path (decode + preprocess + model + postprocess, configured by the
//! handler configuration), shared by every command that answers for an image, so a result can never
//! differ between them. Only model commands load it: libtorch itself is opened at run time, the first
//! time a model is loaded (`torch`).

pub(crate) mod decode;
pub(crate) mod explain;
pub(crate) mod handler_config;
pub(crate) mod model;
pub(crate) mod model_source;
pub(crate) mod postprocess;
pub(crate) mod preprocess;
pub(crate) mod resample;
mod torch;

pub(crate) use torch::set_cpu_policy;

use crate::records::Prediction;
use anyhow::{anyhow, Result};
use handler_config::HandlerConfig;
use model::{set_threads, DeviceChoice, Model, ModelError};
use model_source::ModelSource;
use postprocess::Postprocessor;
use preprocess::{Prepared, Preprocessor};

#[derive(Debug, Clone)]
pub(crate) struct EngineOptions {
    pub(crate) device: DeviceChoice,
    /// libtorch intra-op threads; `None` = physical cores.
    pub(crate) threads: Option<usize>,
    pub(crate) max_pixels: u64,
    /// Images per forward pass. Every forward runs at exactly this batch shape (a partial batch is
    /// padded with zeros), because libtorch picks kernels by shape: at a fixed shape an image's result
    /// is bit-identical whatever its position, its neighbours or the thread count, so one patch
    /// predicted alone answers exactly as in a directory scan, in `serve`, or in a slide.
    pub(crate) batch_size: usize,
    /// Freeze and optimise the TorchScript graph for inference (see `Model::load`).
    pub(crate) optimize: bool,
    /// Also load the module as saved, for explanations (gradients need its autograd graph).
    pub(crate) explain: bool,
}

/// An image's attribution (`[C, H, W]`) and its output's change from the baseline.
pub(crate) struct Explanation {
    pub(crate) attribution: Vec<f32>,
    pub(crate) delta: f32,
}

pub(crate) struct Engine {
    model: Model,
    /// The module as saved (not frozen), for gradients: `explain` only.
    explainer: Option<Model>,
    pre: Preprocessor,
    post: Postprocessor,
    config: HandlerConfig,
    classes: usize,
    batch_size: usize,
}

impl Engine {
    /// Loads the model and checks it against the configuration with one forward on a zero input, so
    /// that a mismatch is one clear error before any image is read (and the first real batch does not
    /// pay libtorch's warm-up).
    pub(crate) fn load(source: &ModelSource, options: &EngineOptions) -> Result<Engine> {
        let config = source.config.clone();
        set_threads(options.threads).map_err(ModelError::from)?;
        if options.optimize {
            // The frozen graph is already optimised; the profiling executor would only spend its
            // first calls (about 50 ms) profiling it again.
            torch::torch()
                .map_err(ModelError::from)?
                .set_profiling_mode(false);
        }
        let model = Model::load(&source.path, &source.name, options.device, options.optimize)?;
        if let Some(why) = model.optimize_error() {
            crate::messages::warning!(
                "{}: cannot optimise the model for inference ({why}); running it as it is",
                source.name
            );
        }
        let explainer = options
            .explain
            .then(|| Model::load(&source.path, &source.name, options.device, false))
            .transpose()?;
        let mut engine = Engine {
            model,
            explainer,
            pre: Preprocessor::new(&config, options.max_pixels),
            post: Postprocessor::new(&config),
            config,
            classes: 0,
            batch_size: options.batch_size.max(1),
        };
        let [c, h, w] = engine.pre.input_shape();
        let zeros = Prepared {
            data: vec![0.0; c * h * w],
        };
        let warm = engine.infer(&[&zeros]).map_err(|e| {
            anyhow!(
                "{}: the model does not fit its handler configuration: on a [{}, {c}, {h}, {w}] input, {e}",
                source.name,
                engine.batch_size
            )
        })?;
        engine.classes = match &warm[0] {
            Prediction::Class(c) => c.probabilities.len(),
            Prediction::Segmentation(s) => s.fractions.len(),
            Prediction::Raw(_) => 0,
        };
        Ok(engine)
    }

    /// What records of this model hold: its output kind and class labels.
    pub(crate) fn schema(&self) -> crate::records::Schema {
        crate::records::Schema {
            kind: self.config.output.kind,
            classes: self.class_labels(),
        }
    }

    /// Labels of every class the model answers with, in class order (empty for raw outputs).
    pub(crate) fn class_labels(&self) -> Vec<String> {
        (0..self.classes).map(|k| self.post.label(k)).collect()
    }

    pub(crate) fn config(&self) -> &HandlerConfig {
        &self.config
    }

    pub(crate) fn preprocessor(&self) -> &Preprocessor {
        &self.pre
    }

    pub(crate) fn postprocessor(&self) -> &Postprocessor {
        &self.post
    }

    /// Whether the model runs on a CUDA device.
    pub(crate) fn on_cuda(&self) -> bool {
        self.model.on_cuda()
    }

    /// One forward pass on a zero input: the input and output shapes and the time it took.
    pub(crate) fn probe(
        &self,
    ) -> Result<(Vec<usize>, Vec<usize>, std::time::Duration), ModelError> {
        let [c, h, w] = self.pre.input_shape();
        let shape = [self.batch_size, c, h, w];
        let zeros = vec![0f32; shape.iter().product()];
        let started = std::time::Instant::now();
        let out_shape = self.model.forward(&zeros, shape)?.dims();
        Ok((shape.to_vec(), out_shape, started.elapsed()))
    }

    pub(crate) fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Integrated Gradients of one preprocessed image towards output column `target` (a binary
    /// model's one logit is column 0), with TorchServe's 15 steps: an attribution per input value,
    /// and how much the output moved from the baseline's (which the attributions add up to, within
    /// the quadrature's error).
    pub(crate) fn explain(&self, image: &Prepared, target: usize) -> Result<Explanation, String> {
        let explainer = self
            .explainer
            .as_ref()
            .ok_or("this engine was loaded without explanations")?;
        let shape = self.pre.input_shape();
        let [c, h, w] = shape;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let attribution = explain::integrated_gradients(
                explainer,
                &image.data,
                shape,
                target,
                explain::STEPS,
            )?;
            let mut pair = image.data.clone();
            pair.resize(2 * image.data.len(), 0.0);
            let out = explainer
                .forward(&pair, [2, c, h, w])?
                .to_vec()
                .map_err(ModelError::Forward)?;
            let columns = out.len() / 2;
            let delta = out[target] - out[columns + target];
            Ok(Explanation { attribution, delta })
        }))
        .unwrap_or_else(|_| Err(ModelError::Forward("the gradient panicked".into())))
        .map_err(|e| e.to_string())
    }

    /// Runs preprocessed images through the model, `batch_size` at a time, with the one policy for
    /// a failed batch that predict, slides and serve share: a forward pass that fails (or panics) is
    /// run again image by image, so that one bad input costs only its own answer. Every forward has
    /// the same shape, so the images that pass alone get exactly the answer a normal run gives; an
    /// image that fails alone gets its error. (A slide needs every tissue window, so there an
    /// image's error is the slide's.)
    pub(crate) fn infer_each(&self, images: &[&Prepared]) -> Vec<Result<Prediction, String>> {
        answer_each(images, self.batch_size, |batch| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.infer(batch)))
                .unwrap_or_else(|_| {
                    Err(ModelError::Forward(
                        "the model panicked (a bug, please report it)".into(),
                    ))
                })
                .map_err(|e| e.to_string())
        })
    }

    /// Runs preprocessed images through the model, `batch_size` at a time: one prediction per image,
    /// in order. The first failed forward fails the call (see `infer_each` for the policy callers
    /// use).
    fn infer(&self, images: &[&Prepared]) -> Result<Vec<Prediction>, ModelError> {
        let [c, h, w] = self.pre.input_shape();
        let size = c * h * w;
        let mut predictions = Vec::with_capacity(images.len());
        let mut batch = vec![0f32; self.batch_size * size];
        for chunk in images.chunks(self.batch_size) {
            for (slot, image) in batch.chunks_exact_mut(size).zip(chunk) {
                slot.copy_from_slice(&image.data);
            }
            // Padding rows are zeros; their outputs are dropped below.
            batch[chunk.len() * size..].fill(0.0);
            // The engine runs the forward under InferenceMode: no graph is recorded.
            let output = self.model.forward(&batch, [self.batch_size, c, h, w])?;
            let mut answers = self.post.predictions(&output, self.batch_size)?;
            answers.truncate(chunk.len());
            predictions.extend(answers);
        }
        Ok(predictions)
    }
}

/// The failed-batch policy of `Engine::infer_each`, apart from the model: `run` answers a batch of
/// at most `batch` items; a batch it fails is run again item by item.
fn answer_each<I: Copy, P>(
    items: &[I],
    batch: usize,
    run: impl Fn(&[I]) -> Result<Vec<P>, String>,
) -> Vec<Result<P, String>> {
    let mut answers = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1)) {
        match run(chunk) {
            Ok(predictions) => answers.extend(predictions.into_iter().map(Ok)),
            Err(_) if chunk.len() > 1 => answers.extend(
                chunk
                    .iter()
                    .map(|&item| run(&[item]).map(|mut one| one.remove(0))),
            ),
            Err(e) => answers.push(Err(e)),
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::answer_each;

    #[test]
    fn a_failed_batch_costs_only_the_items_that_fail_alone() {
        // A "model" that fails any batch holding a negative number, and counts its calls.
        let calls = std::cell::Cell::new(0);
        let run = |batch: &[i32]| {
            calls.set(calls.get() + 1);
            match batch.iter().find(|&&x| x < 0) {
                Some(bad) => Err(format!("cannot take {bad}")),
                None => Ok(batch.iter().map(|x| x * 10).collect()),
            }
        };
        let answers = answer_each(&[1, 2, -3, 4, 5, 6], 3, run);
        assert_eq!(
            answers,
            [
                Ok(10),
                Ok(20),
                Err("cannot take -3".into()),
                Ok(40),
                Ok(50),
                Ok(60)
            ]
        );
        // The failed batch of three again alone (3), the good batch once (1), the first try (1).
        assert_eq!(calls.get(), 5);
        assert_eq!(answer_each(&[-1], 4, run), [Err("cannot take -1".into())]);
        assert!(answer_each(&[] as &[i32], 4, run).is_empty());
    }
}
