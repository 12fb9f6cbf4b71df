//! The forward-only limit for `cargo xtask bench`: the TorchScript model (or an AOTInductor
//! package, `.pt2`) on pre-made tensors, at a
//! fixed batch size, through the engine's own C ABI (the calls `scancer predict` makes), reading
//! every output back as scancer does. By default it runs the way scancer does: one model instance
//! per core, side by side, each on one intra-op thread; WORKERS and THREADS measure the other
//! execution models (one instance on every core's thread is `1 CORES`).
//!
//! usage: forward_bench MODEL BATCH_SIZE IMAGES [optimized|plain] [WORKERS [THREADS]]
//!        (prints images/s as JSON)
//!        forward_bench --parity MODEL BATCH_SIZE [THREADS]
//!        (prints, for every batch size up to BATCH_SIZE, whether each image's output is
//!        bit-identical to the same image's at BATCH_SIZE, in another row)

use scancer_torch_abi::Api;
use std::ffi::{c_void, CString};
use std::time::Instant;

struct Loaded(*mut c_void);
// SAFETY: each worker uses its own model instance, from its own thread only.
unsafe impl Send for Loaded {}
unsafe impl Sync for Loaded {}

fn api() -> &'static Api {
    // SAFETY: the engine's entry returns its static table.
    unsafe { &*scancer_torch::scancer_torch_api() }
}

fn load(path: &str, optimize: bool) -> Result<Loaded, String> {
    let api = api();
    let c_path = CString::new(path).map_err(|e| e.to_string())?;
    // An AOTInductor package by its name, as scancer's model files are told apart.
    let format = if path.ends_with(".pt2") {
        scancer_torch_abi::format::AOTI_PACKAGE
    } else {
        scancer_torch_abi::format::TORCHSCRIPT
    };
    let (mut error, mut optimize_error) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: plain calls into the engine with valid strings and out-pointers.
    let model = unsafe {
        (api.set_profiling_mode)(i32::from(!optimize));
        (api.model_load)(
            c_path.as_ptr(),
            format,
            -1,
            i32::from(optimize),
            &mut error,
            &mut optimize_error,
        )
    };
    if model.is_null() {
        return Err(format!("{path}: cannot load the model"));
    }
    Ok(Loaded(model))
}

/// Pre-made inputs in [-1, 1], like normalised patches; `seed` makes each image different.
fn inputs(images: usize, seed: usize) -> Vec<f32> {
    (0..images * 3 * 96 * 96)
        .map(|i| (((i + seed) * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// One forward pass of `batch` images, its output read back.
fn forward(model: &Loaded, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
    let api = api();
    let dims = [batch as i64, 3, 96, 96];
    let mut error = std::ptr::null_mut();
    // SAFETY: `input` holds the product of `dims` values; every tensor is freed once.
    unsafe {
        let out = (api.model_forward)(model.0, input.as_ptr(), dims.as_ptr(), 4, &mut error);
        if out.is_null() {
            return Err("forward failed".into());
        }
        let mut shape = [0i64; 8];
        let n = (api.tensor_dims)(out, shape.as_mut_ptr(), 8);
        let len = shape[..n].iter().product::<i64>() as usize;
        let mut output = vec![0f32; len];
        let failed = (api.tensor_read)(out, output.as_mut_ptr(), len, &mut error);
        (api.tensor_free)(out);
        if failed != 0 {
            return Err("reading the output failed".into());
        }
        Ok(output)
    }
}

fn parity(path: &str, batch: usize, threads: i32) -> Result<(), String> {
    // SAFETY: a plain call into the engine.
    unsafe { (api().set_threads)(threads) };
    let model = load(path, true)?;
    let all = inputs(batch, 17);
    let size = 3 * 96 * 96;
    let reference = forward(&model, &all, batch)?;
    let per = reference.len() / batch;
    let mut report = Vec::new();
    for shape in 1..=batch {
        // The last `shape` images of the reference batch, at rows 0.. of this one.
        let from = batch - shape;
        let out = forward(&model, &all[from * size..], shape)?;
        let same = (0..shape).all(|r| {
            out[r * per..(r + 1) * per]
                .iter()
                .zip(&reference[(from + r) * per..(from + r + 1) * per])
                .all(|(a, b)| a.to_bits() == b.to_bits())
        });
        report.push(format!(r#""{shape}": {same}"#));
    }
    println!(
        r#"{{"threads": {threads}, "reference_batch": {batch}, "bit_identical": {{{}}}}}"#,
        report.join(", ")
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--parity") {
        let path = args.get(2).ok_or("--parity MODEL BATCH_SIZE [THREADS]")?;
        let batch = args
            .get(3)
            .map_or(Ok(16), |b| b.parse())
            .map_err(|e| format!("{e}"))?;
        let threads = args
            .get(4)
            .map_or(Ok(1), |t| t.parse())
            .map_err(|e| format!("{e}"))?;
        return parity(path, batch, threads);
    }
    if args.len() < 4 {
        return Err(
            "usage: forward_bench MODEL BATCH_SIZE IMAGES [optimized|plain] [WORKERS [THREADS]]"
                .into(),
        );
    }
    let batch: usize = args[2].parse().map_err(|e| format!("BATCH_SIZE: {e}"))?;
    let images: usize = args[3].parse().map_err(|e| format!("IMAGES: {e}"))?;
    let optimize = args.get(4).is_none_or(|m| m == "optimized");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers: usize = args
        .get(5)
        .map_or(Ok(cores), |w| w.parse())
        .map_err(|e| format!("WORKERS: {e}"))?;
    let threads: i32 = args
        .get(6)
        .map_or(Ok(1), |t| t.parse())
        .map_err(|e| format!("THREADS: {e}"))?;
    // SAFETY: a plain call into the engine.
    unsafe { (api().set_threads)(threads) };
    let models = (0..workers.max(1))
        .map(|_| load(&args[1], optimize))
        .collect::<Result<Vec<_>, _>>()?;
    let passes = images.div_ceil(batch).div_ceil(models.len());
    let input = inputs(batch, 0);
    let barrier = std::sync::Barrier::new(models.len() + 1);
    let seconds = std::thread::scope(|scope| {
        let runs: Vec<_> = models
            .iter()
            .map(|model| {
                let (input, barrier) = (&input, &barrier);
                scope.spawn(move || -> Result<(), String> {
                    for _ in 0..3 {
                        forward(model, input, batch)?;
                    }
                    barrier.wait();
                    for _ in 0..passes {
                        forward(model, input, batch)?;
                    }
                    Ok(())
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for run in runs {
            run.join().map_err(|_| "a worker panicked".to_string())??;
        }
        Ok::<_, String>(start.elapsed().as_secs_f64())
    })?;
    let done = passes * batch * models.len();
    let rate = done as f64 / seconds;
    println!(
        r#"{{"batch_size": {batch}, "optimize": {optimize}, "workers": {}, "threads": {threads}, "images": {done}, "seconds": {seconds:.4}, "images_per_s": {rate:.1}}}"#,
        models.len()
    );
    for model in models {
        // SAFETY: the model came from model_load.
        unsafe { (api().model_free)(model.0) };
    }
    Ok(())
}
