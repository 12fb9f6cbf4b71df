//! The C ABI between `scancer` and its libtorch engine, `libscancer_torch.so` (crates/torch).
//!
//! scancer opens the engine at run time, only when a command runs a model, so that every other
//! command starts without libtorch's 100 MB and 0.3 s. The engine exports one function, [`ENTRY`],
//! that returns a static table of function pointers ([`Api`]); both sides compile this one
//! definition, and [`ABI_VERSION`] guards against an engine built from other sources.
//!
//! Tensors cross as opaque handles that the engine owns: made from, and read back as, a shape and a
//! buffer of `f32`. Errors are NUL-terminated messages that the caller frees with
//! `message_free`. No Rust type and no panic crosses the boundary.

use std::ffi::{c_char, c_int, c_void};

/// Bumped whenever [`Api`] or the meaning of a call changes.
pub const ABI_VERSION: u32 = 4;

/// The engine's file name, as built by cargo on Linux.
pub const LIBRARY: &str = "libscancer_torch.so";

/// The one exported symbol: `extern "C" fn() -> *const Api`.
pub const ENTRY: &[u8] = b"scancer_torch_api\0";

/// An error message allocated by the engine (null for none).
pub type Message = *mut c_char;

/// What a model file holds, for `Api::model_load`.
pub mod format {
    use std::ffi::c_int;
    /// A TorchScript module (`torch.jit.save`).
    pub const TORCHSCRIPT: c_int = 0;
    /// An AOTInductor package (`torch._inductor.aoti_compile_and_package`, `.pt2`).
    pub const AOTI_PACKAGE: c_int = 1;
}

/// `model_load`'s device for an AOTInductor package: the device it was compiled for.
pub const AS_COMPILED: c_int = -2;

/// An operation on a tensor, run by libtorch's own kernels so that probabilities are bit-identical
/// to PyTorch's.
pub mod op {
    use std::ffi::c_int;
    pub const SIGMOID: c_int = 0;
    /// Softmax over dimension 1, in float32.
    pub const SOFTMAX: c_int = 1;
    /// Argmax over dimension 1 (the dimension is dropped).
    pub const ARGMAX: c_int = 2;
    /// `sigmoid(x) > arg`, as 0/1.
    pub const SIGMOID_ABOVE: c_int = 3;
    /// The tensor with zero rows appended along dimension 0 up to `arg` rows (unchanged when it
    /// has as many already): post-processing then runs at one shape whatever the batch.
    pub const PAD_ROWS: c_int = 4;
}

/// The engine's functions. Every call catches C++ exceptions and Rust panics; a call that fails
/// returns null (or non-zero) and sets `*error`.
#[repr(C)]
pub struct Api {
    pub abi_version: u32,
    /// Whether libtorch sees a CUDA device (1) or not (0).
    pub cuda_available: unsafe extern "C" fn() -> c_int,
    /// libtorch's intra-op thread count (at least 1), for the calling thread and those started
    /// after it.
    pub set_threads: unsafe extern "C" fn(threads: c_int),
    /// TorchScript's profiling executor on (1) or off (0).
    pub set_profiling_mode: unsafe extern "C" fn(on: c_int),
    /// Loads a model file of [`format`] onto the CPU (`device` -1) or CUDA device `device`
    /// ([`AS_COMPILED`]: where an AOTInductor package was compiled for); a TorchScript module in
    /// eval mode, with `optimize` frozen and optimised for inference. `*optimize_error` is set
    /// when only the optimisation failed (the plain module is returned).
    pub model_load: unsafe extern "C" fn(
        path: *const c_char,
        format: c_int,
        device: c_int,
        optimize: c_int,
        error: *mut Message,
        optimize_error: *mut Message,
    ) -> *mut c_void,
    /// Runs the model on a contiguous `f32` input of shape `dims[..ndim]`; returns the output
    /// tensor (float32, on the CPU).
    pub model_forward: unsafe extern "C" fn(
        model: *mut c_void,
        data: *const f32,
        dims: *const i64,
        ndim: usize,
        error: *mut Message,
    ) -> *mut c_void,
    /// The gradient of the batch's summed output column `target` (a [N, K] output) with respect
    /// to the contiguous `f32` input of shape `dims[..ndim]`, through a module loaded without
    /// `optimize`; a tensor of the input's shape (float32, on the CPU).
    pub model_gradient: unsafe extern "C" fn(
        model: *mut c_void,
        data: *const f32,
        dims: *const i64,
        ndim: usize,
        target: i64,
        error: *mut Message,
    ) -> *mut c_void,
    /// The CUDA device the model runs on, or -1 for the CPU.
    pub model_device: unsafe extern "C" fn(model: *mut c_void) -> c_int,
    pub model_free: unsafe extern "C" fn(model: *mut c_void),
    /// Writes up to `capacity` dimensions into `dims`; returns the tensor's dimension count.
    pub tensor_dims:
        unsafe extern "C" fn(tensor: *const c_void, dims: *mut i64, capacity: usize) -> usize,
    /// A new tensor: one of [`op`] applied to `tensor`, with `arg` where the operation takes one.
    pub tensor_apply: unsafe extern "C" fn(
        tensor: *const c_void,
        op: c_int,
        arg: f32,
        error: *mut Message,
    ) -> *mut c_void,
    /// Copies the tensor as contiguous `f32` into `out`, which holds exactly `len` values (the
    /// tensor's element count). Returns 0, or non-zero with `*error` set.
    pub tensor_read: unsafe extern "C" fn(
        tensor: *const c_void,
        out: *mut f32,
        len: usize,
        error: *mut Message,
    ) -> c_int,
    pub tensor_free: unsafe extern "C" fn(tensor: *mut c_void),
    pub message_free: unsafe extern "C" fn(message: Message),
}

/// The signature of [`ENTRY`].
pub type Entry = unsafe extern "C" fn() -> *const Api;
