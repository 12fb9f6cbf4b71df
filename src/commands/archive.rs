//! `scancer archive`: write TorchServe model archives, and `scancer archive inspect`.

use crate::cli::{ArchiveArgs, ArchiveCommand, InspectArgs};
use crate::engine::decode::DEFAULT_MAX_PIXELS;
use crate::engine::handler_config::HandlerConfig;
use crate::engine::model::DeviceChoice;
use crate::engine::model_format::ModelFormat;
use crate::engine::model_source::{ModelSource, ARCHIVED_CONFIG};
use crate::engine::{Engine, EngineError, EngineOptions};
use crate::exit::Exit;
use crate::mar::entries::Entries;
use crate::mar::manifest::{validate_model_name, Manifest, ModelSection, ARCHIVER_VERSION};
use crate::mar::read::{Archive, Limits};
use crate::mar::write::{self, Compression};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;

/// The handler written into archives built from a scancer configuration.
const GENERATED_HANDLER: &str = "scancer_handler.py";
const GENERATED_HANDLER_SOURCE: &str = include_str!("../mar/scancer_handler.py");
/// The configuration as JSON, for the generated handler (Python before 3.11 reads no TOML).
const ARCHIVED_CONFIG_JSON: &str = "scancer-handler.json";

pub(crate) fn run(args: ArchiveArgs) -> Result<Exit> {
    match args.command {
        Some(ArchiveCommand::Inspect(inspect_args)) => inspect(&inspect_args),
        None => create(args),
    }
}

fn basename(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn create(args: ArchiveArgs) -> Result<Exit> {
    let name = args.model_name.expect("clap requires --model-name");
    let version = args.version.expect("clap requires --version");
    validate_model_name(&name)?;
    let config = args
        .config
        .as_deref()
        .map(HandlerConfig::from_path)
        .transpose()?;
    let generated = tempfile::tempdir().context("cannot create a temporary folder")?;
    let mut entries = Entries::default();
    if let Some(file) = &args.serialized_file {
        entries.add_file(file)?;
    }
    if let Some(file) = &args.model_file {
        entries.add_file(file)?;
    }
    let handler = match (&args.handler, &config) {
        (Some(handler), _) => {
            entries.add_handler(handler)?;
            handler.clone()
        }
        (None, Some(_)) => {
            let path = generated.path().join(GENERATED_HANDLER);
            std::fs::write(&path, GENERATED_HANDLER_SOURCE)?;
            entries.add_file(&path)?;
            GENERATED_HANDLER.to_owned()
        }
        (None, None) => bail!(
            "pass --handler (a TorchServe handler) or --config (a scancer handler configuration)"
        ),
    };
    for file in [&args.requirements_file, &args.config_file]
        .into_iter()
        .flatten()
    {
        entries.add_file(file)?;
    }
    if let Some(list) = &args.extra_files {
        entries.add_extra_files(list)?;
    }
    if let (Some(config), Some(path)) = (&config, &args.config) {
        let toml = generated.path().join(ARCHIVED_CONFIG);
        std::fs::copy(path, &toml).with_context(|| format!("{}: cannot read", path.display()))?;
        let json = generated.path().join(ARCHIVED_CONFIG_JSON);
        std::fs::write(&json, serde_json::to_string_pretty(config)?)?;
        entries.add_file(&toml)?;
        entries.add_file(&json)?;
    }
    let (created_on, modified, modified_unix) = timestamps(args.reproducible)?;
    let manifest = Manifest {
        created_on,
        runtime: args.runtime.clone(),
        model: ModelSection {
            model_name: name.clone(),
            serialized_file: args.serialized_file.as_deref().map(basename),
            handler: basename(Path::new(&handler)),
            model_file: args.model_file.as_deref().map(basename),
            model_version: version,
            requirements_file: args.requirements_file.as_deref().map(basename),
            config_file: args.config_file.as_deref().map(basename),
        },
        archiver_version: ARCHIVER_VERSION.into(),
    };
    let entries = entries.into_vec();
    let export = &args.export_path;
    let started = Instant::now();
    let target = match args.archive_format.as_str() {
        "tgz" => {
            let target = export.join(format!("{name}.tar.gz"));
            write::write_tgz(&entries, &manifest, &target, modified_unix, args.force)?;
            target
        }
        "no-archive" => {
            let target = export.join(&name);
            write::write_folder(&entries, &manifest, &target, args.force)?;
            target
        }
        format => {
            let target = export.join(format!("{name}.mar"));
            let compression = if format == "zip-store" {
                Compression::Store
            } else {
                Compression::Auto
            };
            write::write_zip(
                &entries,
                &manifest,
                &target,
                compression,
                modified,
                args.force,
            )?;
            target
        }
    };
    crate::messages::note!(
        "archived {} file(s) in {:.2} s",
        entries.len() + 1,
        started.elapsed().as_secs_f64()
    );
    outln!("{}", target.display());
    Ok(Exit::Success)
}

/// `createdOn`, the zip timestamp and the tar timestamp: now, or fixed for reproducible archives
/// (SOURCE_DATE_EPOCH, the reproducible-builds convention, else the zip epoch 1980-01-01, in UTC).
fn timestamps(reproducible: bool) -> Result<(String, zip::DateTime, u64)> {
    if !reproducible {
        let (created, dos) = write::now();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Ok((created, dos, unix));
    }
    let epoch: i64 = match crate::cli::environment::variable("SOURCE_DATE_EPOCH") {
        Some(v) => v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?,
        None => 315_532_800, // 1980-01-01T00:00:00Z
    };
    let t =
        chrono::DateTime::from_timestamp(epoch, 0).context("SOURCE_DATE_EPOCH is out of range")?;
    let (created, dos) = write::stamps(t);
    Ok((created, dos, epoch.max(0) as u64))
}

fn inspect(args: &InspectArgs) -> Result<Exit> {
    let archive = Archive::open(&args.archive, Limits::default())?;
    outln!("{}", archive.manifest.to_json());
    outln!();
    outln!("{:>12}  FILE", "BYTES");
    for (name, size) in &archive.files {
        outln!("{size:>12}  {name}");
    }
    outln!();
    if archive.files.contains_key(ARCHIVED_CONFIG) {
        let text = String::from_utf8_lossy(&archive.read(ARCHIVED_CONFIG, 1 << 20)?).into_owned();
        outln!(
            "handler configuration ({ARCHIVED_CONFIG}):\n{}",
            text.trim_end()
        );
    } else if archive.manifest.model.handler == "image_classifier" {
        outln!("handler configuration: TorchServe's built-in image_classifier (Resize 256, CenterCrop 224, ImageNet normalisation, top 5)");
    } else {
        outln!(
            "handler configuration: none; {:?} is custom Python code, so `scancer predict` needs --config",
            archive.manifest.model.handler
        );
    }
    if args.verify {
        let started = Instant::now();
        let source = ModelSource::open(&args.archive, None)?;
        let options = EngineOptions {
            device: DeviceChoice::Cpu,
            // One instance: the check runs one forward pass.
            threads: Some(1),
            max_pixels: DEFAULT_MAX_PIXELS,
            // An AOTInductor package compiled as the README shows takes no batch under 16.
            batch_size: if source.format == ModelFormat::AotInductor {
                16
            } else {
                1
            },
            optimize: true,
            explain: false,
            smaller_shapes: false,
        };
        // At batch 1, or at a batch size the model takes where it takes no batch of 1.
        let engine = match Engine::load(&source, &options) {
            Err(EngineError::BatchSize { takes, .. }) => Engine::load(
                &source,
                &EngineOptions {
                    batch_size: takes.fitting(),
                    ..options
                },
            )?,
            loaded => loaded?,
        };
        let loaded = started.elapsed();
        let (input, output, forward) = engine.probe()?;
        outln!(
            "\nverified: loaded in {:.0} ms; forward on {input:?} -> output {output:?} in {:.1} ms",
            loaded.as_secs_f64() * 1e3,
            forward.as_secs_f64() * 1e3
        );
    }
    Ok(Exit::Success)
}
