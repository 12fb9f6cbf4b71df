//! A TorchScript model on a device, ready for inference: eval mode, no autograd, a fixed thread count.

use std::path::Path;
use tch::{CModule, Device, Kind, Tensor};

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

pub struct Model {
    module: CModule,
    device: Device,
}

impl Model {
    pub fn load(path: &Path, device: DeviceChoice) -> Result<Model, ModelError> {
        let device = match device {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
            DeviceChoice::Cuda => return Err(ModelError::NoCuda),
            DeviceChoice::Auto => Device::cuda_if_available(),
        };
        let mut module = CModule::load_on_device(path, device).map_err(|e| ModelError::Load {
            path: path.display().to_string(),
            detail: torch_message(&e),
        })?;
        module.set_eval();
        Ok(Model { module, device })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Runs one batch `[N, C, H, W]` of `f32` (CHW per image, concatenated). Call it inside
    /// `tch::no_grad` (the engine does) together with whatever reads the output.
    pub fn forward(&self, batch: &[f32], shape: [usize; 4]) -> Result<Tensor, ModelError> {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let input = Tensor::f_from_slice(batch)
            .and_then(|t| t.f_view(dims.as_slice()))
            .and_then(|t| t.f_to_device(self.device))
            .map_err(forward_error)?;
        let out = self.module.forward_ts(&[input]).map_err(forward_error)?;
        out.f_to_kind(Kind::Float).map_err(forward_error)
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
    let text = e.to_string();
    let text = text.strip_prefix("Internal torch error: ").unwrap_or(&text);
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
