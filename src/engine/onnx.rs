//! ONNX Runtime, opened at run time (the `ort` crate with `load-dynamic`): finds
//! `libonnxruntime.so.1` (the pinned `onnxruntime` wheel's library, which `cargo xtask setup`
//! unpacks and `cargo xtask dist` installs beside the engine), and runs `.onnx` models with it.
//! Only commands that run an ONNX model come here; they never open libtorch.

use super::library::{beside_executable, Unavailable};
use super::tensor::HostTensor;
use ort::session::{builder::GraphOptimizationLevel, Session as OrtSession};
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable that names ONNX Runtime's library explicitly.
pub(crate) const RUNTIME_VAR: &str = "SCANCER_ONNXRUNTIME";

/// The library's file name (its soname).
const LIBRARY: &str = "libonnxruntime.so.1";

/// A call into ONNX Runtime failed: its message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct OnnxError(String);

impl From<ort::Error> for OnnxError {
    fn from(e: ort::Error) -> Self {
        OnnxError(e.message().trim().to_owned())
    }
}

/// The library the user named (SCANCER_ONNXRUNTIME), as cli/ read it at start.
static NAMED: OnceLock<PathBuf> = OnceLock::new();

/// Looks for ONNX Runtime at `path` alone; set once, before any model is loaded.
pub(crate) fn use_library(path: PathBuf) {
    let _ = NAMED.set(path);
}

/// ONNX Runtime's environment, made once per process (the library is never unloaded).
fn environment() -> Result<&'static ort::environment::Environment, Unavailable> {
    static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, Unavailable>> =
        OnceLock::new();
    ENVIRONMENT.get_or_init(open).as_ref().map_err(Clone::clone)
}

fn open() -> Result<ort::environment::Environment, Unavailable> {
    let candidates = match NAMED.get() {
        Some(named) => vec![named.clone()],
        None => beside_executable(LIBRARY, Some(".onnxruntime")),
    };
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        let mut looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        if NAMED.get().is_some() {
            looked[0] = format!("{RUNTIME_VAR}={}", looked[0]);
        }
        return Err(Unavailable(format!(
            "this is an ONNX model, and ONNX Runtime ({LIBRARY}) is not installed (looked for {}); \
             `cargo xtask setup` fetches it into a build tree, or set {RUNTIME_VAR} to its path",
            looked.join(", ")
        )));
    };
    let fail = |what: String| {
        Unavailable(format!(
            "cannot open ONNX Runtime {}: {what}",
            path.display()
        ))
    };
    // ONNX Runtime's own log lines would repeat what each error already says.
    let quiet: ort::logging::LoggerFunction = std::sync::Arc::new(|_, _, _, _, _| {});
    ort::init_from(path)
        .map_err(|e| fail(e.to_string()))?
        .with_name("scancer")
        .with_telemetry(false)
        .with_logger(quiet)
        .build()
        .map_err(|e| fail(e.message().to_owned()))
}

/// Whether ONNX Runtime has its CUDA execution provider (the `onnxruntime-gpu` build).
fn cuda_provider() -> bool {
    use ort::ep::ExecutionProvider;
    ort::ep::CUDA::is_available().unwrap_or(false)
}

/// An ONNX model, loaded for one thread at a time.
pub(crate) struct Session {
    session: OrtSession,
    input: String,
    /// The batch size the model was exported with, where its batch dimension is not dynamic.
    fixed_batch: Option<usize>,
    on_cuda: bool,
}

impl Session {
    /// Loads an ONNX model, on CUDA device 0 with `cuda` (`None`: where it is available), run
    /// on one intra-op thread: scancer runs more instances side by side on more cores.
    pub(crate) fn load(path: &Path, cuda: Option<bool>) -> Result<Session, OnnxLoadError> {
        let environment = environment().map_err(OnnxLoadError::Unavailable)?;
        let on_cuda = match cuda {
            Some(wanted) => wanted,
            None => cuda_provider(),
        };
        if on_cuda && !cuda_provider() {
            return Err(OnnxLoadError::NoCuda);
        }
        let build = || -> Result<OrtSession, ort::Error> {
            let mut builder = OrtSession::builder(environment)?
                .with_optimization_level(GraphOptimizationLevel::Level3)?
                .with_intra_threads(1)?
                .with_inter_threads(1)?;
            if on_cuda {
                builder = builder.with_execution_providers([ort::ep::CUDA::default()
                    .build()
                    .error_on_failure()])?;
            }
            builder.commit_from_file(path)
        };
        let session = build().map_err(|e| OnnxLoadError::Load(e.into()))?;
        let (input, fixed_batch) = match session.inputs() {
            [one] => (
                one.name().to_owned(),
                one.dtype()
                    .tensor_shape()
                    .and_then(|shape| shape.first().copied())
                    .and_then(|rows| usize::try_from(rows).ok())
                    .filter(|&rows| rows > 0),
            ),
            more => {
                return Err(OnnxLoadError::Load(OnnxError(format!(
                    "the model takes {} inputs ({}); scancer feeds one image tensor",
                    more.len(),
                    more.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
                ))))
            }
        };
        Ok(Session {
            session,
            input,
            fixed_batch,
            on_cuda,
        })
    }

    pub(crate) fn fixed_batch(&self) -> Option<usize> {
        self.fixed_batch
    }

    pub(crate) fn on_cuda(&self) -> bool {
        self.on_cuda
    }

    /// Runs the model on `data`, a contiguous `f32` tensor of shape `dims`; its first output.
    pub(crate) fn forward(
        &mut self,
        data: &[f32],
        dims: &[usize],
    ) -> Result<HostTensor, OnnxError> {
        let input = TensorRef::from_array_view((dims.to_vec(), data))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.as_str() => input])?;
        let first = &outputs[0];
        let (shape, values) = first.try_extract_tensor::<f32>().map_err(|_| {
            OnnxError(format!(
                "the model's first output is {}, not a float32 tensor",
                first.dtype()
            ))
        })?;
        Ok(HostTensor {
            dims: shape.iter().map(|&d| d.max(0) as usize).collect(),
            values: values.to_vec(),
        })
    }
}

/// Why an ONNX model did not load.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OnnxLoadError {
    #[error(transparent)]
    Unavailable(Unavailable),
    #[error("CUDA was requested, but this ONNX Runtime has no CUDA execution provider (it is the CPU build; the `onnxruntime-gpu` wheel's library has one)")]
    NoCuda,
    #[error("{0}")]
    Load(OnnxError),
}
