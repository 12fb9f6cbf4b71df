//! A model on a device, ready for inference, in the engine its file needs: TorchScript and
//! AOTInductor packages in libtorch (`torch`; a TorchScript module in eval mode, InferenceMode, by
//! default frozen and optimised for inference), ONNX in ONNX Runtime (`onnx`). Every instance runs
//! its forward passes on one thread.

use super::library::Unavailable;
use super::model_format::{missing_cpu_flag, package_isa, unpack_package, ModelFormat};
use super::onnx::{self, OnnxLoadError};
use super::output::{Output, RuntimeError};
use super::postprocess::OutputError;
use super::torch::{torch, Module, TorchError};
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
    #[error("{path}: cannot load {noun}: {detail}", noun = .format.noun())]
    Load {
        path: String,
        format: ModelFormat,
        detail: RuntimeError,
    },
    #[error("{0}: a torch.export program (.pt2) runs only once compiled: package it with torch._inductor.aoti_compile_and_package (an AOTInductor .pt2), or export it to ONNX")]
    NotCompiled(String),
    /// Explanations asked of a model whose engine gives no gradients.
    #[error("explanations need gradients, which only TorchScript models give (this is {})", .0.noun_with_article())]
    NoGradients(ModelFormat),
    /// An AOTInductor package compiled for an instruction set this CPU lacks.
    #[error("{path}: this AOTInductor package's kernels were compiled for {isa}, and this CPU lacks it (no {flag}): compile it on (or for) a CPU this one can run, e.g. with torch._inductor.config.cpp.march = \"x86-64-v3\" and cpp.simdlen = 256 for any AVX2 CPU")]
    Isa {
        path: String,
        isa: String,
        flag: &'static str,
    },
    #[error("CUDA was requested but is not available (no GPU is visible, or this libtorch was built without CUDA)")]
    NoCuda,
    #[error("forward failed: {0}")]
    Forward(RuntimeError),
    /// A forward pass (or a lane's loading) panicked: what panicked.
    #[error("forward failed: {0}")]
    Panicked(&'static str),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error("{path}: {detail}")]
    Onnx { path: String, detail: OnnxLoadError },
}

/// The engine a model runs in.
enum Runtime {
    Torch(Module),
    Onnx(onnx::Session),
}

pub(crate) struct Model {
    runtime: Runtime,
    on_cuda: bool,
    /// Why `optimize` was asked for but not done (the plain module runs instead).
    optimize_error: Option<String>,
}

impl Model {
    /// Loads a model file of `format`. With `optimize`, a TorchScript module is frozen and
    /// optimised for inference (batch-norm folded into convolutions, oneDNN prepacked weights):
    /// several times faster on CPU, with results within a few 1e-6 of the plain module (see
    /// BENCHMARKS.md); AOTInductor packages and ONNX models come optimised.
    /// `name` is how messages name the model (an archive member is loaded from a temporary file).
    pub(crate) fn load(
        path: &Path,
        name: &str,
        format: ModelFormat,
        device: DeviceChoice,
        optimize: bool,
    ) -> Result<Model, ModelError> {
        match format {
            ModelFormat::Onnx => {
                let cuda = match device {
                    DeviceChoice::Cpu => Some(false),
                    DeviceChoice::Cuda => Some(true),
                    DeviceChoice::Auto => None,
                };
                let session = onnx::Session::load(path, cuda).map_err(|detail| match detail {
                    OnnxLoadError::Unavailable(u) => ModelError::Unavailable(u),
                    OnnxLoadError::Load(detail) => ModelError::Load {
                        path: name.to_owned(),
                        format,
                        detail: detail.into(),
                    },
                    detail => ModelError::Onnx {
                        path: name.to_owned(),
                        detail,
                    },
                })?;
                Ok(Model {
                    on_cuda: session.on_cuda(),
                    runtime: Runtime::Onnx(session),
                    optimize_error: None,
                })
            }
            ModelFormat::ExportedProgram => Err(ModelError::NotCompiled(name.to_owned())),
            ModelFormat::TorchScript | ModelFormat::AotInductor => {
                load_in_libtorch(path, name, format, device, optimize)
            }
        }
    }

    /// Whether the model runs on a CUDA device.
    pub(crate) fn on_cuda(&self) -> bool {
        self.on_cuda
    }

    /// The batch size the model takes, where its batch dimension was fixed at export (as far as
    /// the file says: an AOTInductor package says it only when run at another).
    pub(crate) fn fixed_batch(&self) -> Option<usize> {
        match &self.runtime {
            Runtime::Onnx(session) => session.fixed_batch(),
            Runtime::Torch(_) => None,
        }
    }

    pub(crate) fn optimize_error(&self) -> Option<&str> {
        self.optimize_error.as_deref()
    }

    /// The gradient of output column `target`, summed over the batch, with respect to the batch
    /// (`[N, C, H, W]`); the model must be TorchScript, loaded without `optimize`.
    pub(crate) fn gradient(
        &self,
        batch: &[f32],
        shape: [usize; 4],
        target: usize,
    ) -> Result<Vec<f32>, ModelError> {
        let Runtime::Torch(module) = &self.runtime else {
            return Err(ModelError::NoGradients(ModelFormat::Onnx));
        };
        on_one_thread()?;
        module
            .gradient(batch, &shape, target)
            .and_then(|t| t.to_vec())
            .map_err(|e| ModelError::Forward(e.into()))
    }

    /// Runs one batch `[N, C, H, W]` of `f32` (CHW per image, concatenated); the output is float32
    /// on the CPU.
    pub(crate) fn forward(
        &mut self,
        batch: &[f32],
        shape: [usize; 4],
    ) -> Result<Output, ModelError> {
        match &mut self.runtime {
            Runtime::Torch(module) => {
                on_one_thread()?;
                module
                    .forward(batch, &shape)
                    .map(Output::Torch)
                    .map_err(|e| ModelError::Forward(e.into()))
            }
            Runtime::Onnx(session) => session
                .forward(batch, &shape)
                .map(Output::Host)
                .map_err(|e| ModelError::Forward(e.into())),
        }
    }
}

/// A TorchScript file or an AOTInductor package, loaded in the libtorch engine.
fn load_in_libtorch(
    path: &Path,
    name: &str,
    format: ModelFormat,
    device: DeviceChoice,
    optimize: bool,
) -> Result<Model, ModelError> {
    let failed = |detail: RuntimeError| ModelError::Load {
        path: name.to_owned(),
        format,
        detail,
    };
    let mut unpacked = None;
    if format == ModelFormat::AotInductor {
        // Kernels for a missing instruction set would stop the process (SIGILL).
        if let Some(isa) = package_isa(path) {
            if let Some(flag) = missing_cpu_flag(&isa) {
                return Err(ModelError::Isa {
                    path: name.to_owned(),
                    isa,
                    flag,
                });
            }
        }
        if path.is_file() {
            let dir = unpack_package(path).map_err(|e| {
                failed(TorchError::Libtorch(format!("cannot unpack it: {e}")).into())
            })?;
            unpacked = Some(dir);
        }
    }
    let torch = torch()?;
    let cuda = match device {
        DeviceChoice::Cpu => Some(None),
        DeviceChoice::Cuda if torch.cuda_available() => Some(Some(0)),
        DeviceChoice::Cuda => return Err(ModelError::NoCuda),
        // A package runs where it was compiled for.
        DeviceChoice::Auto if format == ModelFormat::AotInductor => None,
        DeviceChoice::Auto => Some(torch.cuda_available().then_some(0)),
    };
    let optimize = optimize && format == ModelFormat::TorchScript;
    let load_path = unpacked.as_ref().map_or(path, |dir| dir.path());
    let (module, optimize_error) = torch
        .load(load_path, format, cuda, optimize)
        .map_err(|detail| failed(detail.into()))?;
    // Loaded, the package needs none of its unpacked files: `unpacked` goes here.
    drop(unpacked);
    Ok(Model {
        on_cuda: module.on_cuda(),
        runtime: Runtime::Torch(module),
        optimize_error,
    })
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
