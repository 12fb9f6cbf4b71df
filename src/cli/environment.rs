//! The process's environment, read here and nowhere below cli/: the variables that choose a
//! setting (each beside its flag, in `resolve` and `serve`) and those that say where the native
//! libraries are, handed to the engine and the slide readers once at start.

use std::path::PathBuf;

/// Every variable scancer reads, for `scancer --help`.
pub(crate) const HELP: &str = "Environment:
  OMP_NUM_THREADS     OpenMP threads per team; scancer sets 1 unless given (each model instance
                      runs its forward passes on one thread; --threads sets the instances)
  SCANCER_TORCH       the libtorch engine library to load, for TorchScript and .pt2 models (else
                      beside scancer, in deps/, or in ../lib/scancer/)
  SCANCER_ONNXRUNTIME ONNX Runtime's library to load, for .onnx models (else libonnxruntime.so.1
                      beside scancer, in ../lib/scancer/, or in a build tree's .onnxruntime/)
  SCANCER_OPENSLIDE   the OpenSlide library to try first (builds with the openslide feature)
  NO_COLOR            no colour on terminals (--color auto)
  SCANCER_API_URL, SCANCER_STORE_URL, SCANCER_PROFILE, SCANCER_USER, SCANCER_PASSWORD,
  SCANCER_TOKEN       --remote's and store's URL, profile and credentials, under their flags
  XDG_CONFIG_HOME, HOME   where the profiles' config.toml is
  SCANCER_AUTH, SCANCER_TOKEN   serve: one more name:password and Bearer token
  LOG_LOCATION, TS_CONFIG_FILE, TS_*   serve: TorchServe's log folder (its log files, and config
                      snapshots in its config/), configuration file and enable_envvars_config
                      variables
  METRICS_LOCATION    serve: the folder of ts_metrics.log and model_metrics.log (else ./logs)
  HOSTNAME            serve: the metrics' hostname label where the kernel gives none
  SOURCE_DATE_EPOCH   archive --reproducible: the timestamp";

/// An environment variable's value; unset, empty or not UTF-8 counts as not given.
pub(crate) fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Prepares the process before any thread starts (changing the environment is only safe then):
/// libtorch's OpenMP runtime gets one thread per team unless the user chose a count, since every
/// forward pass runs on one intra-op thread (see `Engine`) and so no thread ever spins at a
/// barrier, whatever the machine's load (OpenMP reads it when libtorch is opened); AOTInductor
/// packages check their inputs' shapes (AOTI_RUNTIME_CHECK_INPUTS); and the
/// libraries the user named, SCANCER_TORCH (the libtorch engine), SCANCER_ONNXRUNTIME and
/// SCANCER_OPENSLIDE (with the `openslide` feature), are where the engines and the slide readers
/// look.
pub(crate) fn prepare() {
    if std::env::var_os("OMP_NUM_THREADS").is_none() {
        std::env::set_var("OMP_NUM_THREADS", "1");
    }
    // An AOTInductor package checks its inputs' shapes only when asked; unchecked, it runs a
    // batch of a size it was not compiled for, with undefined results.
    std::env::set_var("AOTI_RUNTIME_CHECK_INPUTS", "1");
    if let Some(engine) = std::env::var_os(crate::engine::ENGINE_VAR).filter(|v| !v.is_empty()) {
        crate::engine::use_library(PathBuf::from(engine));
    }
    if let Some(runtime) =
        std::env::var_os(crate::engine::ONNXRUNTIME_VAR).filter(|v| !v.is_empty())
    {
        crate::engine::use_onnxruntime(PathBuf::from(runtime));
    }
    #[cfg(feature = "openslide")]
    if let Some(openslide) = variable("SCANCER_OPENSLIDE") {
        crate::slide::rows::use_openslide(openslide);
    }
}
