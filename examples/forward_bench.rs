//! The forward-only limit for `cargo xtask bench`: the TorchScript model on pre-made tensors, at a
//! fixed batch size, with the same model code and thread settings as `scancer predict`.
//!
//! usage: forward_bench MODEL BATCH_SIZE IMAGES [optimized|plain]   (prints images/s as JSON)

use scancer::engine::model::{set_threads, DeviceChoice, Model};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 4,
        "usage: forward_bench MODEL BATCH_SIZE IMAGES [optimized|plain]"
    );
    let batch: usize = args[2].parse()?;
    let images: usize = args[3].parse()?;
    let optimize = args.get(4).is_none_or(|m| m == "optimized");
    set_threads(None)?;
    let model = Model::load(args[1].as_ref(), &args[1], DeviceChoice::Cpu, optimize)?;
    let shape = [batch, 3, 96, 96];
    // Pre-made inputs in [-1, 1], like normalised patches.
    let input: Vec<f32> = (0..batch * 3 * 96 * 96)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let passes = images.div_ceil(batch);
    {
        for _ in 0..3 {
            let _ = model.forward(&input, shape)?;
        }
        let start = Instant::now();
        for _ in 0..passes {
            // Reading the output back is part of every real forward.
            let out = model.forward(&input, shape)?;
            out.to_vec().map_err(anyhow::Error::msg)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let rate = (passes * batch) as f64 / seconds;
        println!(
            r#"{{"batch_size": {batch}, "optimize": {optimize}, "images": {}, "seconds": {seconds:.4}, "images_per_s": {rate:.1}}}"#,
            passes * batch
        );
        Ok(())
    }
}
