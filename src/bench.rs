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
