//! libtorch, opened at run time: finds the engine library (`libscancer_torch.so`, built from
//! crates/torch beside the scancer binary), checks its ABI, and wraps its C functions in safe types.
//! Only commands that run a TorchScript model or an AOTInductor package come here, so every other
//! command (and every ONNX model) runs without libtorch.

use super::library::{beside_executable, Unavailable};
use super::model_format::ModelFormat;
use scancer_torch_abi::{
    format, op, Api, Entry, Message, ABI_VERSION, AS_COMPILED, ENTRY, LIBRARY,
};
use std::ffi::{c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable that names the engine library explicitly.
pub(crate) const ENGINE_VAR: &str = "SCANCER_TORCH";

/// A call into the engine failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum TorchError {
    /// libtorch's own message (its first meaningful line).
    #[error("{0}")]
    Libtorch(String),
    #[error("path contains a NUL byte")]
    NulInPath,
    #[error("{values} values do not make a {dims:?} tensor")]
    Shape { values: usize, dims: Vec<usize> },
}

pub(crate) struct Torch {
    api: &'static Api,
}

/// The engine library the user named (SCANCER_TORCH), as cli/ read it at start.
static NAMED: OnceLock<PathBuf> = OnceLock::new();

/// Looks for the engine at `path` alone (SCANCER_TORCH); set once, before any model is loaded.
pub(crate) fn use_library(path: PathBuf) {
    let _ = NAMED.set(path);
}

/// The engine, opened once per process (and never closed: libtorch cannot be unloaded).
pub(crate) fn torch() -> Result<&'static Torch, Unavailable> {
    static TORCH: OnceLock<Result<Torch, Unavailable>> = OnceLock::new();
    TORCH.get_or_init(open).as_ref().map_err(Clone::clone)
}

/// Where the engine is looked for: `$SCANCER_TORCH` alone when set; else beside the executable
/// (see `beside_executable`).
fn candidates() -> Vec<PathBuf> {
    match NAMED.get() {
        Some(named) => vec![named.clone()],
        None => beside_executable(LIBRARY, None),
    }
}

fn open() -> Result<Torch, Unavailable> {
    let candidates = candidates();
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        let mut looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        if NAMED.get().is_some() {
            looked[0] = format!("{ENGINE_VAR}={}", looked[0]);
        }
        return Err(Unavailable(format!(
            "this command runs a model, and the model engine {LIBRARY} is not installed (looked for {}); \
             `cargo build --release` at the workspace root builds it beside scancer, or set {ENGINE_VAR} to its path",
            looked.join(", ")
        )));
    };
    let fail = |what: String| {
        Unavailable(format!(
            "cannot open the model engine {}: {what}",
            path.display()
        ))
    };
    // SAFETY: the engine's initialisers are libtorch's; it is opened once and never closed.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| {
        let looked = match runpath(path) {
            Some(dirs) => format!("in {dirs} (its rpath) and LD_LIBRARY_PATH"),
            None => "through LD_LIBRARY_PATH".into(),
        };
        fail(format!(
            "{e}; the engine looks for the libtorch it was built against {looked}"
        ))
    })?;
    // SAFETY: ENTRY has the signature `Entry` in every engine built from crates/torch.
    let entry = unsafe { library.get::<Entry>(ENTRY) }
        .map_err(|e| fail(format!("not a scancer engine ({e})")))?;
    // SAFETY: the entry returns a pointer to a static table that lives as long as the library,
    // which is never unloaded (leaked below).
    let api: &'static Api = unsafe { &*entry() };
    if api.abi_version != ABI_VERSION {
        return Err(fail(format!(
            "it speaks engine ABI {}, this scancer speaks {ABI_VERSION}: rebuild both from the same sources",
            api.abi_version
        )));
    }
    std::mem::forget(library);
    Ok(Torch { api })
}

/// The library search path (DT_RUNPATH, else DT_RPATH) of a 64-bit little-endian ELF file, read
/// from its section headers, to say where a missing libtorch was looked for.
fn runpath(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let mut read_at = |offset: u64, len: usize| -> Option<Vec<u8>> {
        let mut buf = vec![0; len];
        file.seek(SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut buf).ok()?;
        Some(buf)
    };
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let header = read_at(0, 64)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let (sections, entry, count) = (
        u64_at(&header, 0x28),
        usize::from(u16::from_le_bytes([header[0x3a], header[0x3b]])),
        usize::from(u16::from_le_bytes([header[0x3c], header[0x3d]])),
    );
    if entry < 64 || count > 4096 {
        return None;
    }
    let table = read_at(sections, entry * count)?;
    let section = |k: usize| &table[k * entry..k * entry + 64];
    // SHT_DYNAMIC; its sh_link names the string table.
    let dynamic = (0..count).map(section).find(|s| u32_at(s, 4) == 6)?;
    let strings = section(
        usize::try_from(u32_at(dynamic, 0x28))
            .ok()
            .filter(|&k| k < count)?,
    );
    let (offset, size) = (u64_at(dynamic, 0x18), u64_at(dynamic, 0x20));
    let entries = read_at(offset, usize::try_from(size).ok().filter(|&s| s < 1 << 20)?)?;
    let (mut runpath, mut rpath) = (None, None);
    for e in entries.chunks_exact(16) {
        match u64_at(e, 0) {
            29 => runpath = Some(u64_at(e, 8)),
            15 => rpath = Some(u64_at(e, 8)),
            _ => {}
        }
    }
    let start = runpath.or(rpath)?;
    let left = u64_at(strings, 0x20).checked_sub(start)?;
    let text = read_at(
        u64_at(strings, 0x18).checked_add(start)?,
        usize::try_from(left.min(4096)).ok()?,
    )?;
    let end = text.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&text[..end]).into_owned())
}

/// Takes ownership of an engine message; its first meaningful line (libtorch appends a C++
/// backtrace).
fn take_message(api: &Api, message: Message) -> Option<String> {
    if message.is_null() {
        return None;
    }
    // SAFETY: the engine returns NUL-terminated strings, freed here exactly once.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    unsafe { (api.message_free)(message) };
    Some(first_line(&text))
}

fn error_of(api: &Api, message: Message) -> TorchError {
    TorchError::Libtorch(
        take_message(api, message).unwrap_or_else(|| "unknown libtorch error".into()),
    )
}

fn first_line(text: &str) -> String {
    let text = text.strip_prefix("Internal torch error: ").unwrap_or(text);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("Exception raised from"))
        .unwrap_or("unknown libtorch error")
        .to_owned()
}

fn dims_i64(dims: &[usize]) -> Vec<i64> {
    dims.iter().map(|&d| d as i64).collect()
}

impl Torch {
    pub(crate) fn cuda_available(&self) -> bool {
        // SAFETY: a plain call into the engine.
        unsafe { (self.api.cuda_available)() != 0 }
    }

    pub(crate) fn set_threads(&self, threads: usize) {
        let threads = c_int::try_from(threads.max(1)).unwrap_or(c_int::MAX);
        // SAFETY: a plain call into the engine.
        unsafe { (self.api.set_threads)(threads) }
    }

    pub(crate) fn set_profiling_mode(&self, on: bool) {
        // SAFETY: a plain call into the engine.
        unsafe { (self.api.set_profiling_mode)(c_int::from(on)) }
    }

    /// Loads a TorchScript file or an AOTInductor package onto the CPU or a CUDA device (`None`
    /// for a package: where it was compiled for; see `Api::model_load`). Returns the module, and
    /// why optimisation was skipped if it was.
    pub(crate) fn load(
        &'static self,
        path: &Path,
        model_format: ModelFormat,
        device: Option<Option<usize>>,
        optimize: bool,
    ) -> Result<(Module, Option<String>), TorchError> {
        let c_path =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| TorchError::NulInPath)?;
        let kind = match model_format {
            ModelFormat::AotInductor => format::AOTI_PACKAGE,
            _ => format::TORCHSCRIPT,
        };
        let device = match device {
            None => AS_COMPILED,
            Some(cuda) => cuda.map_or(-1, |i| c_int::try_from(i).unwrap_or(c_int::MAX)),
        };
        let (mut error, mut optimize_error) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: a valid C string and out-pointers.
        let handle = unsafe {
            (self.api.model_load)(
                c_path.as_ptr(),
                kind,
                device,
                c_int::from(optimize),
                &mut error,
                &mut optimize_error,
            )
        };
        let optimize_error = take_message(self.api, optimize_error);
        if handle.is_null() {
            return Err(error_of(self.api, error));
        }
        Ok((
            Module {
                handle,
                api: self.api,
            },
            optimize_error,
        ))
    }
}

/// A loaded TorchScript module or AOTInductor package.
pub(crate) struct Module {
    handle: *mut c_void,
    api: &'static Api,
}

// SAFETY: a libtorch module may be used from any thread; `Module` is not `Sync`, so never from two
// at once.
unsafe impl Send for Module {}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: the handle came from model_load and is freed once.
        unsafe { (self.api.model_free)(self.handle) }
    }
}

impl Module {
    /// Whether the model runs on a CUDA device.
    pub(crate) fn on_cuda(&self) -> bool {
        // SAFETY: a model of this engine.
        unsafe { (self.api.model_device)(self.handle) >= 0 }
    }

    /// Runs the module on `data`, a contiguous `f32` tensor of shape `dims`.
    pub(crate) fn forward(&self, data: &[f32], dims: &[usize]) -> Result<Tensor, TorchError> {
        // SAFETY: the arguments are model_forward's, as `call` passes them.
        self.call(data, dims, |api, handle, data, dims, ndim, error| unsafe {
            (api.model_forward)(handle, data, dims, ndim, error)
        })
    }

    /// The gradient of the batch's summed output column `target` with respect to `data` (shape
    /// `dims`), through this module, which must have been loaded without optimisation.
    pub(crate) fn gradient(
        &self,
        data: &[f32],
        dims: &[usize],
        target: usize,
    ) -> Result<Tensor, TorchError> {
        // SAFETY: the arguments are model_gradient's, as `call` passes them.
        self.call(data, dims, |api, handle, data, dims, ndim, error| unsafe {
            (api.model_gradient)(handle, data, dims, ndim, target as i64, error)
        })
    }

    /// Checks `data` against `dims` and calls the engine with this module, the input and an error
    /// out-pointer; the tensor it returns.
    fn call(
        &self,
        data: &[f32],
        dims: &[usize],
        engine: impl FnOnce(
            &'static Api,
            *mut c_void,
            *const f32,
            *const i64,
            usize,
            *mut Message,
        ) -> *mut c_void,
    ) -> Result<Tensor, TorchError> {
        if dims.iter().product::<usize>() != data.len() {
            return Err(TorchError::Shape {
                values: data.len(),
                dims: dims.to_vec(),
            });
        }
        let dims = dims_i64(dims);
        let mut error = std::ptr::null_mut();
        // `data` holds the product of `dims` values; both outlive the call.
        let handle = engine(
            self.api,
            self.handle,
            data.as_ptr(),
            dims.as_ptr(),
            dims.len(),
            &mut error,
        );
        Tensor::made(self.api, handle, error)
    }
}

/// An operation that post-processing runs in libtorch, for bit-parity with PyTorch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Sigmoid,
    /// Softmax over the class dimension (1), in float32.
    Softmax,
    /// Argmax over the class dimension (1).
    Argmax,
    /// `sigmoid(x) > threshold`, as 0/1.
    SigmoidAbove(f32),
    /// Zero rows appended along dimension 0 up to this many (exact up to 2^24 rows).
    PadRows(usize),
}

/// A tensor owned by the engine.
pub(crate) struct Tensor {
    handle: *mut c_void,
    api: &'static Api,
}

// SAFETY: libtorch tensors may move between threads.
unsafe impl Send for Tensor {}

impl Drop for Tensor {
    fn drop(&mut self) {
        // SAFETY: the handle came from the engine and is freed once.
        unsafe { (self.api.tensor_free)(self.handle) }
    }
}

impl Tensor {
    fn made(api: &'static Api, handle: *mut c_void, error: Message) -> Result<Tensor, TorchError> {
        if handle.is_null() {
            return Err(error_of(api, error));
        }
        Ok(Tensor { handle, api })
    }

    pub(crate) fn dims(&self) -> Vec<usize> {
        let mut dims = [0i64; 8];
        // SAFETY: `dims` holds 8 values; the engine writes at most that many.
        let n = unsafe { (self.api.tensor_dims)(self.handle, dims.as_mut_ptr(), dims.len()) };
        if n > dims.len() {
            let mut all = vec![0i64; n];
            // SAFETY: as above, with room for all `n`.
            unsafe { (self.api.tensor_dims)(self.handle, all.as_mut_ptr(), n) };
            return all.into_iter().map(|d| d.max(0) as usize).collect();
        }
        dims[..n].iter().map(|&d| d.max(0) as usize).collect()
    }

    pub(crate) fn apply(&self, operation: Op) -> Result<Tensor, TorchError> {
        let (code, arg) = match operation {
            Op::Sigmoid => (op::SIGMOID, 0.0),
            Op::Softmax => (op::SOFTMAX, 0.0),
            Op::Argmax => (op::ARGMAX, 0.0),
            Op::SigmoidAbove(threshold) => (op::SIGMOID_ABOVE, threshold),
            Op::PadRows(rows) => (op::PAD_ROWS, rows as f32),
        };
        let mut error = std::ptr::null_mut();
        // SAFETY: a tensor of this engine and a valid out-pointer.
        let handle = unsafe { (self.api.tensor_apply)(self.handle, code, arg, &mut error) };
        Tensor::made(self.api, handle, error)
    }

    /// This tensor with zero rows appended up to `rows` along dimension 0.
    pub(crate) fn pad_rows(&self, rows: usize) -> Result<Tensor, TorchError> {
        self.apply(Op::PadRows(rows))
    }

    /// The values, contiguous, as `f32` in host memory.
    pub(crate) fn to_vec(&self) -> Result<Vec<f32>, TorchError> {
        let len = self.dims().iter().product();
        let mut values = vec![0f32; len];
        let mut error = std::ptr::null_mut();
        // SAFETY: `values` holds exactly `len` values, the tensor's element count.
        let failed =
            unsafe { (self.api.tensor_read)(self.handle, values.as_mut_ptr(), len, &mut error) };
        if failed != 0 {
            return Err(error_of(self.api, error));
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_first_meaningful_line() {
        assert_eq!(
            first_line("Internal torch error: shape mismatch\nException raised from x at y\n"),
            "shape mismatch"
        );
        assert_eq!(first_line("\n\n"), "unknown libtorch error");
    }

    #[test]
    fn errors_read_as_before() {
        let shape = TorchError::Shape {
            values: 5,
            dims: vec![1, 2, 3],
        };
        assert_eq!(shape.to_string(), "5 values do not make a [1, 2, 3] tensor");
        assert_eq!(
            TorchError::NulInPath.to_string(),
            "path contains a NUL byte"
        );
        assert_eq!(TorchError::Libtorch("oom".into()).to_string(), "oom");
    }

    #[test]
    fn runpath_reads_elf_files_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("not-elf.so");
        std::fs::write(&text, b"\x7fELF but not really").unwrap();
        assert_eq!(runpath(&text), None);
        assert_eq!(runpath(&dir.path().join("missing.so")), None);
        // This test binary is ELF; whatever its search path, reading it must not fail or panic.
        let _ = runpath(&std::env::current_exe().unwrap());
    }
}
