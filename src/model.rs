//! A TorchScript model on a device, ready for inference: eval mode, InferenceMode, a fixed thread
//! count, and by default frozen and optimised for inference (csrc/model.cpp).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when a GPU is visible, else CPU.
    Auto,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot load TorchScript model: {detail}")]
    Load { path: String, detail: String },
    #[error("CUDA was requested but is not available (no GPU is visible, or this libtorch was built without CUDA)")]
    NoCuda,
    #[error("forward failed: {0}")]
    Forward(String),
    #[error("{0}")]
    OutputShape(String),
}

extern "C" {
    fn scancer_model_load(
        path: *const c_char,
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
    fn scancer_model_free(model: *mut c_void);
    fn scancer_free_error(error: *mut c_char);
}

/// Takes ownership of a message allocated by the shim.
fn take_message(ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the shim returns NUL-terminated strings from strdup, freed here exactly once.
    let text = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    unsafe { scancer_free_error(ptr) };
    Some(first_line(&text))
}

pub struct Model {
    handle: *mut c_void,
    device: Device,
    /// Why `optimize` was asked for but not done (the plain module runs instead).
    optimize_error: Option<String>,
}

// SAFETY: the shim's module is only used through &self/&mut self here; libtorch modules may be used
// from any thread (not concurrently, which `Model` is not `Sync` for).
unsafe impl Send for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: handle came from scancer_model_load and is freed once.
        unsafe { scancer_model_free(self.handle) }
    }
}

impl Model {
    /// Loads a TorchScript file. With `optimize`, the module is frozen and optimised for inference
    /// (batch-norm folded into convolutions, oneDNN prepacked weights): several times faster on
    /// CPU, with results within a few 1e-6 of the plain module (see BENCHMARKS.md).
    /// `name` is how messages name the model (an archive member is loaded from a temporary file).
    pub fn load(
        path: &Path,
        name: &str,
        device: DeviceChoice,
        optimize: bool,
    ) -> Result<Model, ModelError> {
        let device = match device {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
            DeviceChoice::Cuda => return Err(ModelError::NoCuda),
            DeviceChoice::Auto => Device::cuda_if_available(),
        };
        let load_error = |detail: String| ModelError::Load {
            path: name.to_owned(),
            detail,
        };
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| load_error("path contains a NUL byte".into()))?;
        let index = match device {
            Device::Cuda(i) => i as c_int,
            _ => -1,
        };
        let (mut error, mut optimize_error) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: valid C string and out-pointers; the shim catches every C++ exception.
        let handle = unsafe {
            scancer_model_load(
                c_path.as_ptr(),
                index,
                optimize as c_int,
                &mut error,
                &mut optimize_error,
            )
        };
        let optimize_error = take_message(optimize_error);
        if handle.is_null() {
            return Err(load_error(
                take_message(error).unwrap_or_else(|| "unknown libtorch error".into()),
            ));
        }
        Ok(Model {
            handle,
            device,
            optimize_error,
        })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn optimize_error(&self) -> Option<&str> {
        self.optimize_error.as_deref()
    }

    /// Runs one batch `[N, C, H, W]` of `f32` (CHW per image, concatenated); the output is float32
    /// on the CPU.
    pub fn forward(&self, batch: &[f32], shape: [usize; 4]) -> Result<Tensor, ModelError> {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let input = Tensor::f_from_slice(batch)
            .and_then(|t| t.f_view(dims.as_slice()))
            .map_err(forward_error)?;
        let mut error = std::ptr::null_mut();
        // SAFETY: `input` outlives the call; the shim returns a new at::Tensor* (tch's own
        // representation, freed by Tensor's Drop) or null with an error message.
        let out = unsafe {
            scancer_model_forward(self.handle, input.as_ptr() as *const c_void, &mut error)
        };
        if out.is_null() {
            return Err(ModelError::Forward(
                take_message(error).unwrap_or_else(|| "unknown libtorch error".into()),
            ));
        }
        Ok(unsafe { Tensor::from_ptr(out as *mut _) })
    }
}

pub fn forward_error(e: tch::TchError) -> ModelError {
    ModelError::Forward(torch_message(&e))
}

/// Copies a tensor to host memory as contiguous `f32`.
pub fn to_host_f32(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    let t = t
        .f_to_device(Device::Cpu)
        .and_then(|t| t.f_to_kind(Kind::Float))
        .and_then(|t| t.f_contiguous())
        .map_err(forward_error)?;
    Vec::<f32>::try_from(t.flatten(0, -1)).map_err(forward_error)
}

/// libtorch errors carry a C++ backtrace after the message; keep the first meaningful line.
pub fn torch_message(e: &tch::TchError) -> String {
    first_line(&e.to_string())
}

fn first_line(text: &str) -> String {
    let text = text.strip_prefix("Internal torch error: ").unwrap_or(text);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("Exception raised from"))
        .unwrap_or("unknown libtorch error")
        .to_owned()
}

/// Sets libtorch's intra-op thread count; `None` keeps one thread per physical core.
pub fn set_threads(threads: Option<usize>) {
    let n = threads.unwrap_or_else(physical_cores).max(1);
    tch::set_num_threads(n as i32);
}

/// Physical cores available to this process (PyTorch's default), bounded by the CPU quota.
pub fn physical_cores() -> usize {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let physical = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .map(|info| {
            let mut cores = std::collections::HashSet::new();
            let (mut phys, mut core) = (None, None);
            for line in info.lines() {
                let value = line.split(':').nth(1).map(str::trim);
                if line.starts_with("physical id") {
                    phys = value.map(str::to_owned);
                } else if line.starts_with("core id") {
                    core = value.map(str::to_owned);
                } else if line.trim().is_empty() {
                    if let (Some(p), Some(c)) = (phys.take(), core.take()) {
                        cores.insert((p, c));
                    }
                }
            }
            cores.len()
        })
        .filter(|&n| n > 0)
        .unwrap_or(available);
    physical.min(available).max(1)
}
