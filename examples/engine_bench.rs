//! The forward-only limit of scancer's engine for a model in any format (TorchScript, AOTInductor
//! `.pt2`, ONNX): pre-made inputs through the engine's instances side by side, post-processing
//! included, no decoding (prints images/s as JSON; see BENCHMARKS.md, issue 26).
//!
//! usage: engine_bench MODEL BATCH_SIZE IMAGES INSTANCES [ROUNDS]
//!        (SCANCER_TORCH names the libtorch engine; run it with OMP_NUM_THREADS=1 and
//!        AOTI_RUNTIME_CHECK_INPUTS=1, as scancer sets them)

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        anyhow::bail!("usage: engine_bench MODEL BATCH_SIZE IMAGES INSTANCES [ROUNDS]");
    }
    let (batch, images, lanes): (usize, usize, usize) =
        (args[2].parse()?, args[3].parse()?, args[4].parse()?);
    let rounds = args.get(5).map_or(Ok(3), |r| r.parse())?;
    let rate = scancer::bench::forward_rate(args[1].as_ref(), None, batch, images, lanes, rounds)?;
    println!(
        r#"{{"model": {:?}, "batch_size": {batch}, "images": {images}, "instances": {lanes}, "images_per_s": {rate:.1}}}"#,
        args[1]
    );
    Ok(())
}
