//! The engine: the one inference path (decode + preprocess + model + postprocess, configured by the
//! handler configuration), shared by every command that answers for an image, so a result can never
//! differ between them. Only model commands load it: the engine a model file needs (libtorch for
//! TorchScript and AOTInductor, `torch`; ONNX Runtime for ONNX, `onnx`) is opened at run time, the
//! first time such a model is loaded.

pub(crate) mod decode;
pub(crate) mod explain;
pub(crate) mod handler_config;
mod library;
pub(crate) mod model;
pub(crate) mod model_format;
pub(crate) mod model_source;
mod onnx;
mod output;
pub(crate) mod postprocess;
pub(crate) mod preprocess;
pub(crate) mod resample;
mod tensor;
mod torch;
pub(crate) mod wsinfer;

pub(crate) use onnx::{use_library as use_onnxruntime, RUNTIME_VAR as ONNXRUNTIME_VAR};
pub(crate) use torch::{use_library, ENGINE_VAR};

pub(crate) mod ordered;

use crate::records::Prediction;
use handler_config::HandlerConfig;
use model::{physical_cores, DeviceChoice, Model, ModelError};
use model_format::ModelFormat;
use model_source::ModelSource;
use postprocess::Postprocessor;
use preprocess::{Prepared, Preprocessor};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub(crate) struct EngineOptions {
    pub(crate) device: DeviceChoice,
    /// Model instances side by side (lanes), each running whole forward passes on one CPU thread;
    /// `None` = one per physical core (one on CUDA).
    pub(crate) threads: Option<usize>,
    pub(crate) max_pixels: u64,
    /// The most images per forward pass, and the batch shape every image's answer is defined by:
    /// a batch runs at the smallest of `Engine::shapes` that holds it, and its output is padded to
    /// this many rows before post-processing, so one patch predicted alone answers exactly as in a
    /// directory scan, in `serve` under any load, or in a slide.
    pub(crate) batch_size: usize,
    /// Freeze and optimise the TorchScript graph for inference (see `Model::load`).
    pub(crate) optimize: bool,
    /// Also load the module as saved, for explanations (gradients need its autograd graph).
    pub(crate) explain: bool,
    /// Check the smaller batch shapes at load (`Engine::shapes`): worth it where batches are
    /// often partial (serve); a directory or a slide pads only its last batch, which costs less
    /// than the check.
    pub(crate) smaller_shapes: bool,
}

impl EngineOptions {
    /// These options for a run over `images` images: on the CPU, no more instances than there are
    /// batches, so that one image loads one.
    pub(crate) fn for_images(&self, images: usize) -> EngineOptions {
        let batches = images.div_ceil(self.batch_size.max(1)).max(1);
        let threads = match self.device {
            DeviceChoice::Cpu => Some(self.threads.unwrap_or_else(physical_cores).min(batches)),
            DeviceChoice::Cuda | DeviceChoice::Auto => self.threads,
        };
        EngineOptions {
            threads,
            ..self.clone()
        }
    }
}

/// Why the engine did not load, or gave no answer or explanation for an image.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The probe images at the full batch shape failed: the configuration does not fit the model.
    #[error(
        "{name}: the model does not fit its handler configuration: on a {shape:?} input, {error}"
    )]
    Mismatch {
        name: String,
        shape: [usize; 4],
        error: Box<ModelError>,
    },
    /// The model was exported or compiled for batch sizes without the one scancer runs.
    #[error("{name}: the model takes batches of {takes}, and scancer runs batches of {asked}: run with {flag} (serve: --batch-size or batchSize), or export it {how}", flag = .takes.flag(), how = .takes.remedy())]
    BatchSize {
        name: String,
        takes: BatchSizes,
        asked: usize,
    },
    #[error("this engine was loaded without explanations")]
    NoExplanations,
    /// A served model's worker did not answer a window (scaled to 0, unregistered, stopping).
    #[error("{0}")]
    Served(String),
    /// Explanations need gradients, which this model's engine does not give.
    #[error("{name}: explanations need gradients, which only TorchScript models give (this is {})", .format.noun_with_article())]
    NoGradients { name: String, format: ModelFormat },
}

/// An image's attribution (`[C, H, W]`) and its output's change from the baseline.
pub(crate) struct Explanation {
    pub(crate) attribution: Vec<f32>,
    pub(crate) delta: f32,
}

/// A model ready to answer: its instances (lanes), its handler configuration, and the batch shapes
/// it may run at.
///
/// The CPU execution model: every forward pass runs on one intra-op thread, and more cores run more
/// instances side by side (like TorchServe's worker processes), never one forward pass across
/// threads. No pass waits at an OpenMP barrier, and an image's arithmetic cannot depend on the
/// thread count (BENCHMARKS.md, issue 23: it costs under 5 % of forward throughput on pcam).
pub(crate) struct Engine {
    /// The model's instances; each is used by one thread at a time (`run_ordered` gives each its
    /// own thread; serve's workers each own an engine of one lane).
    lanes: Vec<Mutex<Model>>,
    /// The module as saved (not frozen), for gradients: `explain` only.
    explainer: Option<Mutex<Model>>,
    /// The model's name and format (explanations need a format with gradients).
    name: String,
    format: ModelFormat,
    pre: Preprocessor,
    post: Postprocessor,
    config: HandlerConfig,
    classes: usize,
    batch_size: usize,
    /// The batch shapes a batch may run at, smallest first, ending with `batch_size`: the smaller
    /// ones were checked at load to answer every probe image bit for bit as `batch_size` does.
    shapes: Vec<usize>,
}

impl Engine {
    /// Loads the model's lanes and checks it against the configuration on probe images at the full
    /// batch shape, so that a mismatch is one clear error before any image is read (and the first
    /// real batch does not pay libtorch's warm-up); then keeps the smaller batch shapes that answer
    /// the probe bit for bit as the full one.
    pub(crate) fn load(
        source: &ModelSource,
        options: &EngineOptions,
    ) -> Result<Engine, EngineError> {
        let config = source.config.clone();
        if options.optimize && source.format == ModelFormat::TorchScript {
            // The frozen graph is already optimised; the profiling executor would only spend its
            // first calls (about 50 ms) profiling it again.
            torch::torch()
                .map_err(ModelError::from)?
                .set_profiling_mode(false);
        }
        let load = |optimize| {
            Model::load(
                &source.path,
                &source.name,
                source.format,
                options.device,
                optimize,
            )
        };
        let first = load(options.optimize)?;
        if let Some(why) = first.optimize_error() {
            crate::messages::warning!(
                "{}: cannot optimise the model for inference ({why}); running it as it is",
                source.name
            );
        }
        let batch_size = options.batch_size.max(1);
        if let Some(fixed) = first.fixed_batch().filter(|&f| f != batch_size) {
            return Err(EngineError::BatchSize {
                name: source.name.clone(),
                takes: BatchSizes::Exactly(fixed),
                asked: batch_size,
            });
        }
        let lanes = options
            .threads
            .unwrap_or_else(|| if first.on_cuda() { 1 } else { physical_cores() })
            .max(1);
        // Only a TorchScript module gives gradients; other formats answer explanations with why not.
        let explainer = (options.explain && source.format.has_gradients())
            .then(|| load(false))
            .transpose()?;
        let mut engine = Engine {
            lanes: vec![Mutex::new(first)],
            explainer: explainer.map(Mutex::new),
            name: source.name.clone(),
            format: source.format,
            pre: Preprocessor::new(&config, options.max_pixels),
            post: Postprocessor::new(&config),
            config,
            classes: 0,
            batch_size,
            shapes: vec![batch_size],
        };
        let [c, h, w] = engine.pre.input_shape();
        let full = [engine.batch_size, c, h, w];
        // The other lanes load and warm up while the first is checked.
        let others = std::thread::scope(|scope| {
            let loading: Vec<_> = (1..lanes)
                .map(|_| {
                    scope.spawn(|| -> Result<Model, ModelError> {
                        let mut model = load(options.optimize)?;
                        model.forward(&vec![0.0; full.iter().product()], full)?;
                        Ok(model)
                    })
                })
                .collect();
            let checked = engine.check_shapes(&source.name, options.smaller_shapes);
            let others = loading
                .into_iter()
                .map(|l| {
                    l.join()
                        .unwrap_or(Err(ModelError::Panicked("loading panicked")))
                })
                .collect::<Result<Vec<_>, _>>();
            checked.and(others.map_err(EngineError::from))
        })?;
        engine.lanes.extend(others.into_iter().map(Mutex::new));
        Ok(engine)
    }

    /// Runs the probe images at the full batch shape (the configuration check, and the classes),
    /// then, with `smaller`, at each smaller power-of-two shape down to the first the model
    /// refuses, keeping those that answer bit for bit the same.
    fn check_shapes(&mut self, name: &str, smaller: bool) -> Result<(), EngineError> {
        let [c, h, w] = self.pre.input_shape();
        let n = self.batch_size;
        let probe = probe_images(n, c * h * w);
        let images: Vec<&Prepared> = probe.iter().collect();
        let reference = self.infer_at(0, &images, n).map_err(|error| {
            let name = name.to_owned();
            match package_batch(&error) {
                Some(takes) if !takes.holds(n) => EngineError::BatchSize {
                    name,
                    takes,
                    asked: n,
                },
                _ => EngineError::Mismatch {
                    name,
                    shape: [n, c, h, w],
                    error: Box::new(error),
                },
            }
        })?;
        self.classes = match &reference[0] {
            Prediction::Class(c) => c.probabilities.len(),
            Prediction::Segmentation(s) => s.fractions.len(),
            Prediction::Raw(_) => 0,
        };
        let candidates: Vec<usize> = std::iter::successors(Some(1usize), |s| s.checked_mul(2))
            .take_while(|&s| smaller && s < n)
            .collect();
        // Largest first: a shape the model refuses (an exported model's batch range) ends the
        // search, since every smaller one is outside the range too; a shape that answers other
        // bits is only left out.
        let mut shapes = Vec::new();
        for &s in candidates.iter().rev() {
            // The last `s` probe images, at rows 0.. of the smaller batch.
            match self.infer_at(0, &images[n - s..], s) {
                Ok(answers) if same_bits(&answers, &reference[n - s..]) => shapes.push(s),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        shapes.reverse();
        shapes.push(n);
        self.shapes = shapes;
        Ok(())
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
        lock(&self.lanes[0]).on_cuda()
    }

    /// One forward pass on a zero input: the input and output shapes and the time it took.
    pub(crate) fn probe(
        &self,
    ) -> Result<(Vec<usize>, Vec<usize>, std::time::Duration), ModelError> {
        let [c, h, w] = self.pre.input_shape();
        let shape = [self.batch_size, c, h, w];
        let zeros = vec![0f32; shape.iter().product()];
        let started = std::time::Instant::now();
        let out_shape = lock(&self.lanes[0]).forward(&zeros, shape)?.dims();
        Ok((shape.to_vec(), out_shape, started.elapsed()))
    }

    pub(crate) fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The batch shapes batches run at, smallest first (see `Engine::shapes`).
    pub(crate) fn shapes(&self) -> &[usize] {
        &self.shapes
    }

    /// The model instances that run side by side.
    pub(crate) fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Integrated Gradients of one preprocessed image towards output column `target` (a binary
    /// model's one logit is column 0), with TorchServe's 15 steps: an attribution per input value,
    /// and how much the output moved from the baseline's (which the attributions add up to, within
    /// the quadrature's error).
    pub(crate) fn explain(
        &self,
        image: &Prepared,
        target: usize,
    ) -> Result<Explanation, EngineError> {
        if !self.format.has_gradients() {
            return Err(EngineError::NoGradients {
                name: self.name.clone(),
                format: self.format,
            });
        }
        let mut explainer = lock(self.explainer.as_ref().ok_or(EngineError::NoExplanations)?);
        let shape = self.pre.input_shape();
        let [c, h, w] = shape;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let attribution = explain::integrated_gradients(
                &explainer,
                &image.data,
                shape,
                target,
                explain::STEPS,
            )?;
            let mut pair = image.data.clone();
            pair.resize(2 * image.data.len(), 0.0);
            let out = explainer
                .forward(&pair, [2, c, h, w])?
                .values(None)
                .map_err(ModelError::Forward)?;
            let columns = out.len() / 2;
            let delta = out[target] - out[columns + target];
            Ok(Explanation { attribution, delta })
        }))
        .unwrap_or(Err(ModelError::Panicked("the gradient panicked")))
        .map_err(EngineError::from)
    }

    /// Runs preprocessed images through lane `lane` of the model, `batch_size` at a time, with the
    /// one policy for a failed batch that predict, slides and serve share: a forward pass that
    /// fails (or panics) is run again image by image, so that one bad input costs only its own
    /// answer. Every answer is the one the full batch shape gives, so the images that pass alone
    /// get exactly the answer a normal run gives; an image that fails alone gets its error. (A
    /// slide needs every tissue window, so there an image's error is the slide's.)
    pub(crate) fn infer_each(
        &self,
        lane: usize,
        images: &[&Prepared],
    ) -> Vec<Result<Prediction, EngineError>> {
        answer_each(images, self.batch_size, |batch| {
            let shape = self
                .shapes
                .iter()
                .copied()
                .find(|&s| s >= batch.len())
                .unwrap_or(self.batch_size);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.infer_at(lane, batch, shape)
            }))
            .unwrap_or(Err(ModelError::Panicked(
                "the model panicked (a bug, please report it)",
            )))
            .map_err(EngineError::from)
        })
    }

    /// Runs up to `shape` preprocessed images as one forward pass of `shape` rows (zeros past the
    /// images) on lane `lane`; the output is padded to `batch_size` rows before post-processing,
    /// whose kernels are then the full batch's (a vectorised loop's tail is computed otherwise).
    fn infer_at(
        &self,
        lane: usize,
        images: &[&Prepared],
        shape: usize,
    ) -> Result<Vec<Prediction>, ModelError> {
        let [c, h, w] = self.pre.input_shape();
        let size = c * h * w;
        let mut batch = vec![0f32; shape * size];
        for (slot, image) in batch.chunks_exact_mut(size).zip(images) {
            slot.copy_from_slice(&image.data);
        }
        // The engine runs the forward under InferenceMode: no graph is recorded.
        let output = lock(&self.lanes[lane]).forward(&batch, [shape, c, h, w])?;
        let output = output
            .pad_rows(self.batch_size)
            .map_err(ModelError::Forward)?;
        let mut answers = self.post.predictions(&output, self.batch_size)?;
        answers.truncate(images.len());
        Ok(answers)
    }
}

/// The batch sizes an exported model takes, where they are not every size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BatchSizes {
    /// Fixed when it was exported.
    Exactly(usize),
    /// The range an AOTInductor package's compilation allows.
    AtMost(usize),
    AtLeast(usize),
}

impl BatchSizes {
    fn holds(self, n: usize) -> bool {
        match self {
            BatchSizes::Exactly(k) => n == k,
            BatchSizes::AtMost(k) => n <= k,
            BatchSizes::AtLeast(k) => n >= k,
        }
    }

    /// A batch size the model takes.
    pub(crate) fn fitting(self) -> usize {
        match self {
            BatchSizes::Exactly(k) | BatchSizes::AtMost(k) | BatchSizes::AtLeast(k) => k,
        }
    }

    fn flag(self) -> String {
        match self {
            BatchSizes::Exactly(k) => format!("--batch-size {k}"),
            BatchSizes::AtMost(k) => format!("--batch-size {k} or less"),
            BatchSizes::AtLeast(k) => format!("--batch-size {k} or more"),
        }
    }

    fn remedy(self) -> &'static str {
        match self {
            BatchSizes::Exactly(_) => "with a dynamic batch dimension",
            _ => "for this batch size",
        }
    }
}

impl std::fmt::Display for BatchSizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSizes::Exactly(k) => write!(
                f,
                "exactly {k} image(s) (its batch dimension was fixed when it was exported)"
            ),
            BatchSizes::AtMost(k) => {
                write!(f, "at most {k} images (the range its compilation allows)")
            }
            BatchSizes::AtLeast(k) => {
                write!(f, "at least {k} images (the range its compilation allows)")
            }
        }
    }
}

/// The batch sizes an AOTInductor package was compiled for, from its refusal of another
/// ("input_handles[0]: unmatched dim value at 0, expected: 4, but got: 16", or "dim value is too
/// large at 0, expected to be <= 15, but got: 16").
fn package_batch(error: &ModelError) -> Option<BatchSizes> {
    let text = error.to_string();
    let number = |rest: &str| rest.split(',').next()?.trim().parse().ok();
    if let Some(rest) = text.split("unmatched dim value at 0, expected: ").nth(1) {
        return number(rest).map(BatchSizes::Exactly);
    }
    if let Some(rest) = text.split("too small at 0, expected it to be >= ").nth(1) {
        return number(rest).map(BatchSizes::AtLeast);
    }
    let rest = text.split("too large at 0, expected to be <= ").nth(1)?;
    number(rest).map(BatchSizes::AtMost)
}

/// A lane's model, usable even if a thread panicked while holding it (a forward pass leaves no
/// state behind in the model).
fn lock(model: &Mutex<Model>) -> std::sync::MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether two lists of answers are the same bit for bit (`f32`'s `Debug` form round-trips, so two
/// values print alike only when they are equal, and `-0.0` apart from `0.0`).
fn same_bits(a: &[Prediction], b: &[Prediction]) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// `n` different images of `size` values, spread over the range normalised inputs take
/// (a fixed pseudo-random sequence, so every run checks the same).
fn probe_images(n: usize, size: usize) -> Vec<Prepared> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| Prepared {
            data: (0..size)
                .map(|_| {
                    // xorshift64*
                    state ^= state >> 12;
                    state ^= state << 25;
                    state ^= state >> 27;
                    let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
                    bits as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
                })
                .collect(),
        })
        .collect()
}

/// The failed-batch policy of `Engine::infer_each`, apart from the model: `run` answers a batch of
/// at most `batch` items; a batch it fails is run again item by item.
fn answer_each<I: Copy, P, E>(
    items: &[I],
    batch: usize,
    run: impl Fn(&[I]) -> Result<Vec<P>, E>,
) -> Vec<Result<P, E>> {
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
    use super::{answer_each, DeviceChoice, EngineOptions};

    #[test]
    fn a_cpu_run_loads_no_more_instances_than_batches() {
        let options = |device, threads| EngineOptions {
            device,
            threads,
            max_pixels: 1 << 20,
            batch_size: 4,
            optimize: true,
            explain: false,
            smaller_shapes: false,
        };
        let threads = |device, threads, images| options(device, threads).for_images(images).threads;
        assert_eq!(threads(DeviceChoice::Cpu, Some(8), 9), Some(3));
        assert_eq!(threads(DeviceChoice::Cpu, Some(2), 100), Some(2));
        assert_eq!(threads(DeviceChoice::Cpu, Some(8), 0), Some(1));
        assert_eq!(threads(DeviceChoice::Cpu, None, 1), Some(1));
        assert_eq!(threads(DeviceChoice::Cuda, None, 100), None);
        assert_eq!(threads(DeviceChoice::Auto, Some(3), 1), Some(3));
    }

    #[test]
    fn a_packages_batch_sizes_are_read_from_its_refusal() {
        use super::{package_batch, BatchSizes, ModelError};
        let refusal =
            |text: &str| ModelError::Panicked(Box::leak(text.to_owned().into_boxed_str()));
        assert_eq!(
            package_batch(&refusal(
                "input_handles[0]: unmatched dim value at 0, expected: 4, but got: 16"
            )),
            Some(BatchSizes::Exactly(4))
        );
        assert_eq!(
            package_batch(&refusal(
                "input_handles[0]: dim value is too large at 0, expected to be <= 15, but got: 16"
            )),
            Some(BatchSizes::AtMost(15))
        );
        assert_eq!(
            package_batch(&refusal(
                "input_handles[0]: unmatched dim value at 1, expected: 3"
            )),
            None
        );
    }

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
