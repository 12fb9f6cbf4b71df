//! The models a server answers for: their names and versions as TorchServe would register them, and
//! what clients need to know about their inputs and outputs.

use crate::engine::model_source::ModelSource;
use crate::engine::preprocess::Preprocessor;
use crate::engine::{Engine, EngineOptions};
use crate::records::OutputKind;
use crate::records::Schema;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A model as named on the command line: `[NAME=]PATH`.
#[derive(Debug, Clone)]
pub(crate) struct ModelSpec {
    pub(crate) name: Option<String>,
    pub(crate) path: PathBuf,
}

impl std::str::FromStr for ModelSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((name, path)) if !name.is_empty() && !name.contains('/') => {
                crate::mar::manifest::validate_model_name(name).map_err(|e| e.to_string())?;
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

pub(crate) struct ServedModel {
    pub(crate) name: String,
    pub(crate) version: String,
    /// The file it came from, as TorchServe's modelUrl.
    pub(crate) url: String,
    pub(crate) runtime: String,
    pub(crate) preprocessor: Preprocessor,
    pub(crate) schema: Schema,
    pub(crate) input_shape: [usize; 3],
    /// The model's output for one image (without the batch dimension).
    pub(crate) output_shape: Vec<usize>,
    /// When it was loaded (ISO 8601, UTC), as TorchServe's worker startTime.
    pub(crate) loaded_at: String,
}

impl ServedModel {
    pub(crate) fn kind(&self) -> OutputKind {
        self.schema.kind
    }
}

/// A model whose files are open, not yet loaded.
pub(crate) struct Opened {
    pub(crate) source: ModelSource,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) url: String,
    pub(crate) runtime: String,
}

/// Opens every model's files (on the calling thread, so that a bad path fails before anything
/// starts); names and versions come from the archive manifests, else the file name and "1.0".
pub(crate) fn open(specs: &[ModelSpec]) -> Result<Vec<Opened>> {
    let mut opened = Vec::new();
    for spec in specs {
        let source = ModelSource::open(&spec.path, None)?;
        let (name, version, runtime) = match &source.manifest {
            Some(m) => (
                m.model.model_name.clone(),
                m.model.model_version.clone(),
                m.runtime.clone(),
            ),
            None => (stem(&spec.path), "1.0".to_string(), "python".to_string()),
        };
        let name = spec.name.clone().unwrap_or(name);
        let url = spec.path.file_name().map_or_else(
            || spec.path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        if opened
            .iter()
            .any(|o: &Opened| o.name == name && o.version == version)
        {
            bail!(
                "{}: model {name} version {version} is given twice",
                spec.path.display()
            );
        }
        opened.push(Opened {
            source,
            name,
            version,
            url,
            runtime,
        });
    }
    Ok(opened)
}

fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split('.').next().unwrap_or(&name).to_string()
}

/// Loads the engines (on the model thread) and describes each model.
pub(crate) fn load(
    opened: &[Opened],
    options: &EngineOptions,
) -> Result<(Vec<Engine>, Vec<ServedModel>)> {
    let mut engines = Vec::new();
    let mut served = Vec::new();
    let loaded_at = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    for Opened {
        source,
        name,
        version,
        url,
        runtime,
    } in opened
    {
        let engine = Engine::load(source, options)?;
        let (_, out_shape, _) = engine
            .probe()
            .with_context(|| format!("{}: cannot run the model", source.name))?;
        served.push(ServedModel {
            name: name.clone(),
            version: version.clone(),
            url: url.clone(),
            runtime: runtime.clone(),
            preprocessor: Preprocessor::new(&source.config, options.max_pixels),
            schema: engine.schema(),
            input_shape: engine.preprocessor().input_shape(),
            output_shape: out_shape[1..].to_vec(),
            loaded_at: loaded_at.clone(),
        });
        engines.push(engine);
    }
    Ok((engines, served))
}
