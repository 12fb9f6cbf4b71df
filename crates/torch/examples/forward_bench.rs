//! The forward-only limit for `cargo xtask bench`: the TorchScript model on pre-made tensors, at a
//! fixed batch size, through the engine's own C ABI (the calls `scancer predict` makes, with one
//! intra-op thread per core), reading every output back as scancer does.
//!
//! usage: forward_bench MODEL BATCH_SIZE IMAGES [optimized|plain]   (prints images/s as JSON)

use scancer_torch_abi::Api;
use std::ffi::CString;
use std::time::Instant;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: forward_bench MODEL BATCH_SIZE IMAGES [optimized|plain]".into());
    }
    let batch: usize = args[2].parse().map_err(|e| format!("BATCH_SIZE: {e}"))?;
    let images: usize = args[3].parse().map_err(|e| format!("IMAGES: {e}"))?;
    let optimize = args.get(4).is_none_or(|m| m == "optimized");
    // SAFETY: the engine's entry returns its static table.
    let api: &Api = unsafe { &*scancer_torch::scancer_torch_api() };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let path = CString::new(args[1].as_str()).map_err(|e| e.to_string())?;
    let (mut error, mut optimize_error) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: plain calls into the engine with valid strings and out-pointers.
    let model = unsafe {
        (api.set_threads)(cores as i32);
        (api.set_profiling_mode)(i32::from(!optimize));
        (api.model_load)(
            path.as_ptr(),
            -1,
            i32::from(optimize),
            &mut error,
            &mut optimize_error,
        )
    };
    if model.is_null() {
        return Err(format!("{}: cannot load the model", args[1]));
    }
    let dims = [batch as i64, 3, 96, 96];
    // Pre-made inputs in [-1, 1], like normalised patches.
    let input: Vec<f32> = (0..batch * 3 * 96 * 96)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let mut output = Vec::new();
    let mut forward = || -> Result<(), String> {
        // SAFETY: `input` holds the product of `dims` values; every tensor is freed once.
        unsafe {
            let out = (api.model_forward)(model, input.as_ptr(), dims.as_ptr(), 4, &mut error);
            if out.is_null() {
                return Err("forward failed".into());
            }
            let mut shape = [0i64; 8];
            let n = (api.tensor_dims)(out, shape.as_mut_ptr(), 8);
            let len = shape[..n].iter().product::<i64>() as usize;
            output.resize(len, 0.0);
            let failed = (api.tensor_read)(out, output.as_mut_ptr(), len, &mut error);
            (api.tensor_free)(out);
            if failed != 0 {
                return Err("reading the output failed".into());
            }
        }
        Ok(())
    };
    for _ in 0..3 {
        forward()?;
    }
    let passes = images.div_ceil(batch);
    let start = Instant::now();
    for _ in 0..passes {
        forward()?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let rate = (passes * batch) as f64 / seconds;
    println!(
        r#"{{"batch_size": {batch}, "optimize": {optimize}, "images": {}, "seconds": {seconds:.4}, "images_per_s": {rate:.1}}}"#,
        passes * batch
    );
    // SAFETY: the model came from model_load.
    unsafe { (api.model_free)(model) };
    Ok(())
}
