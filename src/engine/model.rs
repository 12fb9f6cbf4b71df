//! A TorchScript model on a device, ready for inference: eval mode, InferenceMode, a fixed thread
//! count, and by default frozen and optimised for inference (in the libtorch engine, `torch`).

use super::postprocess::OutputError;
use super::torch::{torch, Module, Tensor, TorchError, Unavailable};
use std::path::Path;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when a GPU is visible, else CPU.
    Auto,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ModelError {
    #[error("{path}: cannot load TorchScript model: {detail}")]
    Load { path: String, detail: TorchError },
    #[error("CUDA was requested but is not available (no GPU is visible, or this libtorch was built without CUDA)")]
    NoCuda,
    #[error("forward failed: {0}")]
    Forward(TorchError),
    /// A forward pass (or a lane's loading) panicked: what panicked.
    #[error("forward failed: {0}")]
    Panicked(&'static str),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

pub(crate) struct Model {
    module: Module,
    on_cuda: bool,
    /// Why `optimize` was asked for but not done (the plain module runs instead).
    optimize_error: Option<String>,
}

impl Model {
    /// Loads a TorchScript file. With `optimize`, the module is frozen and optimised for inference
    /// (batch-norm folded into convolutions, oneDNN prepacked weights): several times faster on
    /// CPU, with results within a few 1e-6 of the plain module (see BENCHMARKS.md).
    /// `name` is how messages name the model (an archive member is loaded from a temporary file).
    pub(crate) fn load(
        path: &Path,
        name: &str,
        device: DeviceChoice,
        optimize: bool,
    ) -> Result<Model, ModelError> {
        let torch = torch()?;
        let cuda = match device {
            DeviceChoice::Cpu => None,
            DeviceChoice::Cuda if torch.cuda_available() => Some(0),
            DeviceChoice::Cuda => return Err(ModelError::NoCuda),
            DeviceChoice::Auto => torch.cuda_available().then_some(0),
        };
        let (module, optimize_error) =
            torch
                .load(path, cuda, optimize)
                .map_err(|detail| ModelError::Load {
                    path: name.to_owned(),
                    detail,
                })?;
        Ok(Model {
            module,
            on_cuda: cuda.is_some(),
            optimize_error,
        })
    }

    /// Whether the model runs on a CUDA device.
    pub(crate) fn on_cuda(&self) -> bool {
        self.on_cuda
    }

    pub(crate) fn optimize_error(&self) -> Option<&str> {
        self.optimize_error.as_deref()
    }

    /// The gradient of output column `target`, summed over the batch, with respect to the batch
    /// (`[N, C, H, W]`); the model must have been loaded without `optimize`.
    pub(crate) fn gradient(
        &self,
        batch: &[f32],
        shape: [usize; 4],
        target: usize,
    ) -> Result<Vec<f32>, ModelError> {
        on_one_thread()?;
        self.module
            .gradient(batch, &shape, target)
            .and_then(|t| t.to_vec())
            .map_err(ModelError::Forward)
    }

    /// Runs one batch `[N, C, H, W]` of `f32` (CHW per image, concatenated); the output is float32
    /// on the CPU.
    pub(crate) fn forward(&self, batch: &[f32], shape: [usize; 4]) -> Result<Tensor, ModelError> {
        on_one_thread()?;
        self.module
            .forward(batch, &shape)
            .map_err(ModelError::Forward)
    }
}

thread_local! {
    static ONE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes libtorch run this thread's forward passes on this thread alone (its intra-op thread
/// count is per thread in OpenMP): the first call on each thread sets it, the rest cost a check.
fn on_one_thread() -> Result<(), Unavailable> {
    if !ONE_THREAD.get() {
        torch()?.set_threads(1);
        ONE_THREAD.set(true);
    }
    Ok(())
}

/// Physical cores available to this process (PyTorch's default), bounded by the CPU quota.
pub(crate) fn physical_cores() -> usize {
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
