//! What the benchmark tools time apart from the model (the `bench` feature): the part of `predict`
//! that runs before it, so that a benchmark can state the forward+decode limit of a run
//! (`examples/decode_bench.rs`, BENCHMARKS.md).

use crate::engine::handler_config::HandlerConfig;
use crate::engine::preprocess::Preprocessor;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Decodes and preprocesses every image as `predict` does (the handler configuration at `config`),
/// on this one thread, `rounds` times: images per second of the fastest round.
pub fn decode_rate(config: &Path, images: &[PathBuf], rounds: usize) -> anyhow::Result<f64> {
    let config = HandlerConfig::from_path(config)?;
    let pre = Preprocessor::new(&config, crate::engine::decode::DEFAULT_MAX_PIXELS);
    let mut best = f64::INFINITY;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        for path in images {
            let file = std::fs::File::open(path)?;
            let prepared = pre
                .prepare_from(BufReader::new(file))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            std::hint::black_box(prepared);
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(images.len() as f64 / best)
}

/// The model's forward passes and post-processing as `predict` runs them, without decoding: the
/// model at `model` (any format; its handler configuration beside it or at `config`) loaded as
/// `lanes` instances with batches of `batch`, each instance on its own thread running its share
/// of `images` pre-made inputs, `rounds` times: images per second of the fastest round.
pub fn forward_rate(
    model: &Path,
    config: Option<&Path>,
    batch: usize,
    images: usize,
    lanes: usize,
    rounds: usize,
) -> anyhow::Result<f64> {
    use crate::engine::model::DeviceChoice;
    use crate::engine::{Engine, EngineOptions};
    // As scancer's start does (the benchmark sets OMP_NUM_THREADS and AOTI_RUNTIME_CHECK_INPUTS).
    if let Some(engine) = std::env::var_os(crate::engine::ENGINE_VAR) {
        crate::engine::use_library(engine.into());
    }
    let source = crate::engine::model_source::ModelSource::open(model, config)?;
    let options = EngineOptions {
        device: DeviceChoice::Cpu,
        threads: Some(lanes.max(1)),
        max_pixels: crate::engine::decode::DEFAULT_MAX_PIXELS,
        batch_size: batch.max(1),
        optimize: true,
        explain: false,
        smaller_shapes: false,
    };
    let engine = Engine::load(&source, &options)?;
    let [c, h, w] = engine.preprocessor().input_shape();
    // Inputs in [-1, 1], like normalised patches, each image different.
    let inputs: Vec<crate::engine::preprocess::Prepared> = (0..images)
        .map(|k| crate::engine::preprocess::Prepared {
            data: (0..c * h * w)
                .map(|i| (((i + k * 7) * 7919) % 2001) as f32 / 1000.0 - 1.0)
                .collect(),
        })
        .collect();
    let refs: Vec<&crate::engine::preprocess::Prepared> = inputs.iter().collect();
    let share = images.div_ceil(engine.lanes());
    let mut best = f64::INFINITY;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for (lane, part) in refs.chunks(share.max(1)).enumerate() {
                let engine = &engine;
                scope.spawn(move || {
                    for answer in engine.infer_each(lane, part) {
                        std::hint::black_box(answer.map_err(|e| e.to_string()))
                            .expect("the benchmark's inputs are answered");
                    }
                });
            }
        });
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(images as f64 / best)
}
