//! scancer's libtorch engine, built as `libscancer_torch.so` and opened by scancer at run time only
//! when a command runs a model (the ABI: crates/torch-abi). Everything that touches libtorch is here:
//! loading and running TorchScript modules and AOTInductor packages (through the C++ shim,
//! csrc/model.cpp, for `optimize_for_inference`, InferenceMode and `AOTIModelPackageLoader`, which
//! tch does not expose) and the few tensor
//! operations that post-processing must run in libtorch for bit-parity with PyTorch.
//!
//! Every entry point catches panics and turns them, like libtorch's errors, into messages.

use scancer_torch_abi::{op, Api, Message, ABI_VERSION};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use tch::{Device, Kind, Tensor};

extern "C" {
    fn scancer_model_load(
        path: *const c_char,
        format: c_int,
        device: c_int,
        optimize: c_int,
        error: *mut *mut c_char,
        optimize_error: *mut *mut c_char,
    ) -> *mut c_void;
    fn scancer_model_forward(
        model: *mut c_void,
        input: *const c_void,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn scancer_model_gradient(
        model: *mut c_void,
        input: *const c_void,
        target: std::ffi::c_long,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn scancer_model_device(model: *mut c_void) -> c_int;
    fn scancer_model_free(model: *mut c_void);
    fn scancer_free_error(error: *mut c_char);
}

static API: Api = Api {
    abi_version: ABI_VERSION,
    cuda_available,
    set_threads,
    set_profiling_mode,
    model_load,
    model_forward,
    model_gradient,
    model_device,
    model_free,
    tensor_dims,
    tensor_apply,
    tensor_read,
    tensor_free,
    message_free,
};

/// The engine's one exported symbol (`scancer_torch_abi::ENTRY`).
#[no_mangle]
pub extern "C" fn scancer_torch_api() -> *const Api {
    static TUNED: std::sync::Once = std::sync::Once::new();
    TUNED.call_once(keep_activation_memory);
    &API
}

extern "C" {
    /// glibc's allocator settings (every libtorch wheel is built for glibc).
    fn mallopt(param: c_int, value: c_int) -> c_int;
}

/// libtorch allocates every activation afresh on each forward (c10's CPU allocator keeps no
/// cache). With glibc's defaults, the heap of a model thread's arena can be deleted when a batch
/// frees its activations and mapped anew for the next, so each forward faults all its activation
/// pages in again: `serve` ran 2.5x slower that way (BENCHMARKS.md, issue 13). Keeping blocks of
/// up to 32 MiB (a batch's activations) on the heap, and the heaps themselves, makes the fast case
/// the rule; the cost is up to 128 MiB of freed memory kept for reuse instead of handed back.
fn keep_activation_memory() {
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_TOP_PAD: c_int = -2;
    const M_MMAP_THRESHOLD: c_int = -3;
    // SAFETY: mallopt only changes thresholds; it is called once, before any model is loaded.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 128 << 20);
        mallopt(M_TOP_PAD, 64 << 20);
    }
}

/// A message for the caller, who frees it with `message_free`.
fn message(text: &str) -> Message {
    CString::new(text.replace('\0', " "))
        .expect("NUL bytes were replaced")
        .into_raw()
}

/// Runs `f`, turning an error or a panic into `*error` and `failed`.
fn guarded<T>(error: *mut Message, failed: T, f: impl FnOnce() -> Result<T, String>) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(format!("libtorch engine panicked: {what}"))
    });
    match outcome {
        Ok(value) => value,
        Err(text) => {
            if !error.is_null() {
                // SAFETY: the caller passes a valid out-pointer (or null, checked above).
                unsafe { *error = message(&text) };
            }
            failed
        }
    }
}

fn torch_error(e: tch::TchError) -> String {
    e.to_string()
}

/// Takes ownership of a message allocated by the shim (strdup) and re-allocates it as ours.
fn shim_message(ptr: *mut c_char) -> Message {
    if ptr.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the shim returns NUL-terminated strings from strdup, freed here exactly once.
    let text = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    unsafe { scancer_free_error(ptr) };
    message(&text)
}

struct Model {
    shim: *mut c_void,
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: shim came from scancer_model_load and is freed once.
        unsafe { scancer_model_free(self.shim) }
    }
}

unsafe extern "C" fn cuda_available() -> c_int {
    catch_unwind(|| c_int::from(tch::Cuda::is_available())).unwrap_or(0)
}

unsafe extern "C" fn set_threads(threads: c_int) {
    let _ = catch_unwind(|| tch::set_num_threads(threads.max(1)));
}

unsafe extern "C" fn set_profiling_mode(on: c_int) {
    let _ = catch_unwind(|| tch::jit::set_profiling_mode(on != 0));
}

unsafe extern "C" fn model_load(
    path: *const c_char,
    format: c_int,
    device: c_int,
    optimize: c_int,
    error: *mut Message,
    optimize_error: *mut Message,
) -> *mut c_void {
    // SAFETY: the caller passes valid out-pointers.
    unsafe {
        *error = std::ptr::null_mut();
        *optimize_error = std::ptr::null_mut();
    }
    guarded(error, std::ptr::null_mut(), || {
        let (mut shim_error, mut shim_optimize_error) =
            (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: a valid C string and out-pointers; the shim catches every C++ exception.
        let shim = unsafe {
            scancer_model_load(
                path,
                format,
                device,
                optimize,
                &mut shim_error,
                &mut shim_optimize_error,
            )
        };
        // SAFETY: as above.
        unsafe { *optimize_error = shim_message(shim_optimize_error) };
        if shim.is_null() {
            let text = shim_message(shim_error);
            if text.is_null() {
                return Err("unknown libtorch error".into());
            }
            // SAFETY: as above; the message is handed over as it is.
            unsafe { *error = text };
            return Ok(std::ptr::null_mut());
        }
        Ok(Box::into_raw(Box::new(Model { shim })).cast())
    })
}

unsafe extern "C" fn model_forward(
    model: *mut c_void,
    data: *const f32,
    dims: *const i64,
    ndim: usize,
    error: *mut Message,
) -> *mut c_void {
    // SAFETY: the caller's pointers, as model_forward's contract says.
    unsafe {
        through_shim(model, data, dims, ndim, error, |shim, input, e| {
            scancer_model_forward(shim, input, e)
        })
    }
}

unsafe extern "C" fn model_gradient(
    model: *mut c_void,
    data: *const f32,
    dims: *const i64,
    ndim: usize,
    target: i64,
    error: *mut Message,
) -> *mut c_void {
    // SAFETY: the caller's pointers, as model_gradient's contract says.
    unsafe {
        through_shim(model, data, dims, ndim, error, |shim, input, e| {
            scancer_model_gradient(shim, input, target as std::ffi::c_long, e)
        })
    }
}

/// Makes the input tensor from the caller's buffer, calls the shim with it, and hands back the
/// tensor the shim returns (or its error).
unsafe fn through_shim(
    model: *mut c_void,
    data: *const f32,
    dims: *const i64,
    ndim: usize,
    error: *mut Message,
    call: impl FnOnce(*mut c_void, *const c_void, *mut *mut c_char) -> *mut c_void,
) -> *mut c_void {
    guarded(error, std::ptr::null_mut(), || {
        // SAFETY: the caller passes `ndim` dimensions and their product of values.
        let dims = unsafe { std::slice::from_raw_parts(dims, ndim) };
        let len = dims.iter().map(|&d| d.max(0) as usize).product();
        let data = unsafe { std::slice::from_raw_parts(data, len) };
        let input = Tensor::f_from_slice(data)
            .and_then(|t| t.f_view(dims))
            .map_err(torch_error)?;
        let model = unsafe { &*model.cast::<Model>() };
        let mut shim_error = std::ptr::null_mut();
        // `input` outlives the call; the shim returns a new at::Tensor* (tch's own
        // representation, owned by the Tensor made from it) or null with an error message.
        let out = call(model.shim, input.as_ptr() as *const c_void, &mut shim_error);
        if out.is_null() {
            let text = shim_message(shim_error);
            // SAFETY: the caller passes a valid out-pointer.
            unsafe { *error = text };
            return Ok(std::ptr::null_mut());
        }
        let output = unsafe { Tensor::from_ptr(out as *mut _) };
        Ok(Box::into_raw(Box::new(output)).cast())
    })
}

unsafe extern "C" fn model_device(model: *mut c_void) -> c_int {
    // SAFETY: `model` came from model_load; the shim only reads its device.
    let model = unsafe { &*model.cast::<Model>() };
    unsafe { scancer_model_device(model.shim) }
}

unsafe extern "C" fn model_free(model: *mut c_void) {
    if !model.is_null() {
        // SAFETY: `model` came from model_load and is freed once.
        drop(unsafe { Box::from_raw(model.cast::<Model>()) });
    }
}

unsafe extern "C" fn tensor_dims(tensor: *const c_void, dims: *mut i64, capacity: usize) -> usize {
    // SAFETY: `tensor` came from this engine; `dims` holds `capacity` values.
    let tensor = unsafe { &*tensor.cast::<Tensor>() };
    let size = catch_unwind(AssertUnwindSafe(|| tensor.size())).unwrap_or_default();
    for (k, &d) in size.iter().take(capacity).enumerate() {
        unsafe { *dims.add(k) = d };
    }
    size.len()
}

unsafe extern "C" fn tensor_apply(
    tensor: *const c_void,
    operation: c_int,
    arg: f32,
    error: *mut Message,
) -> *mut c_void {
    guarded(error, std::ptr::null_mut(), || {
        // SAFETY: `tensor` came from this engine.
        let t = unsafe { &*tensor.cast::<Tensor>() };
        let _no_grad = tch::no_grad_guard();
        let result = match operation {
            op::SIGMOID => t.f_sigmoid(),
            op::SOFTMAX => t.f_softmax(1, Kind::Float),
            op::ARGMAX => t.f_argmax(1, false),
            op::SIGMOID_ABOVE => t.f_sigmoid().and_then(|p| p.f_gt(f64::from(arg))),
            op::PAD_ROWS => pad_rows(t, arg as i64),
            other => return Err(format!("unknown tensor operation {other}")),
        }
        .map_err(torch_error)?;
        Ok(Box::into_raw(Box::new(result)).cast())
    })
}

/// `t` with zero rows appended along dimension 0 up to `rows`.
fn pad_rows(t: &Tensor, rows: i64) -> Result<Tensor, tch::TchError> {
    let mut size = t.size();
    let have = size.first().copied().unwrap_or(0);
    if have >= rows {
        return Ok(t.shallow_clone());
    }
    size[0] = rows - have;
    let zeros = t.f_new_zeros(size.as_slice(), (t.kind(), t.device()))?;
    Tensor::f_cat(&[t, &zeros], 0)
}

unsafe extern "C" fn tensor_read(
    tensor: *const c_void,
    out: *mut f32,
    len: usize,
    error: *mut Message,
) -> c_int {
    guarded(error, 1, || {
        // SAFETY: `tensor` came from this engine.
        let t = unsafe { &*tensor.cast::<Tensor>() };
        let host = t
            .f_to_device(Device::Cpu)
            .and_then(|t| t.f_to_kind(Kind::Float))
            .and_then(|t| t.f_contiguous())
            .map_err(torch_error)?;
        let numel = host.numel();
        if numel != len {
            return Err(format!("a tensor of {numel} values read into {len}"));
        }
        // SAFETY: `out` holds `len` values, the caller's buffer.
        let out = unsafe { std::slice::from_raw_parts_mut(out, len) };
        host.f_copy_data(out, len).map_err(torch_error)?;
        Ok(0)
    })
}

unsafe extern "C" fn tensor_free(tensor: *mut c_void) {
    if !tensor.is_null() {
        // SAFETY: `tensor` came from this engine and is freed once.
        drop(unsafe { Box::from_raw(tensor.cast::<Tensor>()) });
    }
}

unsafe extern "C" fn message_free(message: Message) {
    if !message.is_null() {
        // SAFETY: every message comes from CString::into_raw above and is freed once.
        drop(unsafe { CString::from_raw(message) });
    }
}
