//! The model versions a server answers for: their names and versions as TorchServe registers them,
//! their settings (TorchServe's per-model batchSize, maxBatchDelay, responseTimeout, workers), what
//! clients need to know about their inputs and outputs, and each version's queue and workers.

use super::batcher::BatchTimes;
use super::batcher::Queue;
use super::batcher::Runner;
use super::log_files::LogFile;
use super::metrics::Metrics;
use super::workers::{Loader, WorkerEvents, Workers};
use crate::engine::handler_config::HandlerConfig;
use crate::engine::model_format::ModelFormat;
use crate::engine::model_source::{ModelIdentity, ModelSource};
use crate::engine::preprocess::Preprocessor;
use crate::engine::{Engine, EngineOptions};
use crate::mar::manifest::ManifestError;
use crate::records::OutputKind;
use crate::records::Schema;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A model as named on the command line: `[NAME=]PATH`.
#[derive(Debug, Clone)]
pub(crate) struct ModelSpec {
    pub(crate) name: Option<String>,
    pub(crate) path: PathBuf,
}

impl std::str::FromStr for ModelSpec {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, ManifestError> {
        match s.split_once('=') {
            Some((name, path)) if !name.is_empty() && !name.contains('/') => {
                crate::mar::manifest::validate_model_name(name)?;
                Ok(ModelSpec {
                    name: Some(name.into()),
                    path: path.into(),
                })
            }
            _ => Ok(ModelSpec {
                name: None,
                path: s.into(),
            }),
        }
    }
}

/// A version's settings, TorchServe's model configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) batch_size: usize,
    pub(crate) max_batch_delay: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) job_queue_size: usize,
}

/// What a registration asks for, beyond the archive itself.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    /// The archive (or TorchScript file) to load.
    pub(crate) path: PathBuf,
    /// The name to register under (else the manifest's).
    pub(crate) name: Option<String>,
    /// TorchServe's modelUrl: the URL or store file name it was registered from.
    pub(crate) url: String,
    /// A handler configuration that overrides the archive's.
    pub(crate) config: Option<PathBuf>,
    pub(crate) settings: Settings,
    pub(crate) loaded_at_startup: bool,
    /// Downloaded into the store for this registration: removed with the model.
    pub(crate) downloaded: bool,
}

pub(crate) struct ServedModel {
    pub(crate) name: String,
    pub(crate) version: String,
    /// The file or URL it came from, as TorchServe's modelUrl.
    pub(crate) url: String,
    /// The archive file, where the model came from one.
    pub(crate) path: PathBuf,
    pub(crate) runtime: String,
    /// What the model file holds (explanations need TorchScript's gradients).
    pub(crate) format: ModelFormat,
    pub(crate) preprocessor: Preprocessor,
    /// The handler configuration and class labels its engines run with: what a slide analysis
    /// through its queue needs beside the queue.
    pub(crate) config: HandlerConfig,
    pub(crate) labels: Vec<String>,
    /// The model file's and configuration's sha256 (a slide record's provenance).
    pub(crate) identity: ModelIdentity,
    pub(crate) schema: Schema,
    pub(crate) input_shape: [usize; 3],
    /// The model's output for one image (without the batch dimension).
    pub(crate) output_shape: Vec<usize>,
    pub(crate) settings: Settings,
    /// "cpu" or "gpu": where its engines run.
    pub(crate) device: &'static str,
    pub(crate) loaded_at_startup: bool,
    pub(crate) downloaded: bool,
    pub(crate) queue: Arc<Queue>,
    pub(crate) workers: Arc<Workers>,
}

impl ServedModel {
    pub(crate) fn kind(&self) -> OutputKind {
        self.schema.kind
    }

    /// TorchServe's answer to a prediction for a version with no worker.
    pub(crate) fn no_worker(&self, versioned: bool) -> String {
        no_worker_message(&self.name, versioned.then_some(self.version.as_str()))
    }
}

/// TorchServe's words exactly, its stray quote after a version included.
pub(crate) fn no_worker_message(name: &str, version: Option<&str>) -> String {
    let version = version.map_or_else(String::new, |v| format!(" Version {v}\""));
    format!(
        "Model \"{name}\"{version} has no worker to serve inference request. Please use scale \
         workers API to add workers. If this is a sequence inference, please check if it is \
         closed, or expired; or exceeds maxSequenceJobQueueSize"
    )
}

/// Opens and loads a model (blocking: run it beside the I/O threads): its archive read and checked,
/// one engine loaded and run once, so that a broken archive is refused before it is registered. The
/// engine is returned for the version's first worker. Its workers are not started.
pub(crate) fn load(
    registration: &Registration,
    options: &EngineOptions,
    metrics: Arc<Metrics>,
) -> Result<(ServedModel, Box<dyn Runner>)> {
    let path = &registration.path;
    let beside = store_config(path);
    let source = ModelSource::open_in_store(path, registration.config.as_deref(), Some(&beside))?;
    let (name, version, runtime) = match &source.manifest {
        Some(m) => (
            m.model.model_name.clone(),
            m.model.model_version.clone(),
            m.runtime.clone(),
        ),
        None => (stem(path), "1.0".to_string(), "python".to_string()),
    };
    let name = registration.name.clone().unwrap_or(name);
    let settings = registration.settings;
    // A worker is one model instance on one thread (TorchServe's worker process): more cores run
    // more workers.
    let options = EngineOptions {
        batch_size: settings.batch_size.max(1),
        threads: Some(1),
        ..options.clone()
    };
    let loading = std::time::Instant::now();
    let engine = Engine::load(&source, &options)?;
    let first_load = loading.elapsed();
    let (_, out_shape, _) = engine
        .probe()
        .with_context(|| format!("{}: cannot run the model", source.name))?;
    let queue = Arc::new(Queue::new(settings.job_queue_size));
    let preprocessor = Preprocessor::new(&source.config, options.max_pixels);
    let identity = source
        .identity()
        .with_context(|| format!("{}: cannot read the model file", source.name))?;
    let config = source.config.clone();
    let format = source.format;
    let source = Arc::new(source);
    let load: Loader = {
        let options = options.clone();
        Arc::new(move || Ok(Box::new(Engine::load(&source, &options)?) as Box<dyn Runner>))
    };
    let served = ServedModel {
        format,
        preprocessor,
        config,
        labels: engine.class_labels(),
        identity,
        schema: engine.schema(),
        input_shape: engine.preprocessor().input_shape(),
        output_shape: out_shape[1..].to_vec(),
        device: if engine.on_cuda() { "gpu" } else { "cpu" },
        workers: Arc::new(Workers::new(
            load,
            Arc::clone(&queue),
            settings.max_batch_delay,
            Arc::new(Reported {
                metrics,
                name: name.clone(),
                version: version.clone(),
            }),
            first_load,
            format!("{name} {version}"),
            no_worker_message(&name, None),
        )),
        queue,
        name,
        version,
        url: registration.url.clone(),
        path: path.clone(),
        runtime,
        settings,
        loaded_at_startup: registration.loaded_at_startup,
        downloaded: registration.downloaded,
    };
    Ok((served, Box::new(engine)))
}

/// A version's worker events, as its metrics.
struct Reported {
    metrics: Arc<Metrics>,
    name: String,
    version: String,
}

impl WorkerEvents for Reported {
    fn batch(&self, times: &BatchTimes) {
        self.metrics.batch(&self.name, times);
    }

    fn loaded(&self, worker: u32, took: std::time::Duration) {
        let name = self.worker(worker);
        self.model_log(
            "INFO ",
            &name,
            &format!(
                "model {} {} loaded in {} ms",
                self.name,
                self.version,
                took.as_millis()
            ),
        );
        self.metrics.worker_loaded(name, took);
    }

    fn failed(&self, worker: u32, why: &str) {
        self.model_log(
            "ERROR",
            &self.worker(worker),
            &format!("cannot load the model: {why}"),
        );
    }

    fn stopped(&self, worker: u32) {
        self.model_log("INFO ", &self.worker(worker), "worker stopped");
    }
}

impl Reported {
    /// TorchServe's worker name: `W-9000-pcam_1.0`.
    fn worker(&self, id: u32) -> String {
        format!("W-{id}-{}_{}", self.name, self.version)
    }

    /// A model_log.log line, in TorchServe's layout: `[INFO ] W-9000-pcam_1.0 MODEL_LOG - ...`.
    fn model_log(&self, level: &str, worker: &str, text: &str) {
        if let Some(log) = self.metrics.log() {
            log.line(
                LogFile::Model,
                format!("[{level}] {worker} MODEL_LOG - {text}"),
            );
        }
    }
}

/// The name and version a model file registers as, from its manifest (without loading it).
pub(crate) fn identity(path: &Path) -> Result<(String, String)> {
    let is_archive = path.is_dir()
        || path
            .extension()
            .is_some_and(|e| e != "pt" && e != "pth" && e != "torchscript");
    if !is_archive {
        return Ok((stem(path), "1.0".into()));
    }
    let archive = crate::mar::read::Archive::open(path, crate::mar::read::Limits::default())
        .with_context(|| format!("cannot read {}", path.display()))?;
    let model = &archive.manifest.model;
    Ok((model.model_name.clone(), model.model_version.clone()))
}

/// Where the model store keeps the handler configuration of an archive that carries none (a
/// torch-model-archiver archive with a custom Python handler): `NAME.toml` beside `NAME.mar`
/// (`NAME.tar.gz`, the folder `NAME`).
pub(crate) fn store_config(archive: &Path) -> PathBuf {
    let name = archive
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = [".mar", ".tar.gz", ".tgz", ".model"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name);
    archive.with_file_name(format!("{stem}.toml"))
}

/// `pcam.mar` -> `pcam`, as TorchServe names a model file without a manifest.
fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split('.').next().unwrap_or(&name).to_string()
}
