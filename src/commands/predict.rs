//! `scancer predict`: inference over files, directories and standard input, locally or with a
//! remote inference API (`--remote`); both write the same records. Settles, before any work, where
//! this run's records sit in the whole output (`--shard`, `--resume`) and where each heatmap goes.

use super::stderr_is_terminal;
use crate::attribution_png::explained;
use crate::cli::{HeatmapFormat, PredictConfig, RemoteConfig};
use crate::destination::{watch_interrupts, Destination};
use crate::engine::handler_config::HandlerConfig;
use crate::engine::model_source::{ModelIdentity, ModelSource};
use crate::engine::preprocess::Preprocessor;
use crate::engine::Engine;
use crate::exit::Exit;
use crate::inputs::{discover, display, widest, Item};
use crate::mask_png::MaskWriter;
use crate::pipeline;
use crate::records::{self, Answer, Outcome, OutputKind, Piece, Schema, Summary, TableStyle};
use crate::remote::predict::{run as predict_remote, RemoteModel};
use crate::resume::{Outputs, Resumed};
use crate::slide::exports::Format as Export;
use crate::slide::outputs;
use crate::slide::tiles::{self, TileWriter};
use crate::slide::{Files, Slides};
use anyhow::{bail, Context, Result};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Where predictions come from: calls `emit` once per input, in input order.
type Producer<'a> = Box<dyn FnOnce(&mut Emit) -> Result<io::Result<()>> + 'a>;

/// Takes one input's outcome, and its slide summary when it was tiled.
type Emit<'e> = dyn FnMut(usize, Outcome, Option<Summary>) -> io::Result<()> + 'e;

pub(crate) fn run(config: PredictConfig) -> Result<Exit> {
    let started = Instant::now();
    let discovered = discover(&config.inputs);
    let found_any = !discovered.items.is_empty();
    if !config.quiet && discovered.skipped > 0 {
        crate::messages::note!(
            "skipped {} file(s) in directories that are not images",
            discovered.skipped
        );
    }
    let all = discovered.items;
    // Heatmap names come from every input, so that shards of one job array agree on them.
    let tiff = config.slides.heatmap_format == HeatmapFormat::Tiff;
    let heatmaps = outputs::heatmaps(config.slides.heatmap.as_deref(), tiff, &all)?;
    let exports = outputs::exports(&config.slides.exports, &all)?;
    let explanations = outputs::explanations(config.explain.as_deref(), &all)?;
    let range = config.shard.map_or(0..all.len(), |s| s.range(all.len()));
    let mut piece = config.shard.map_or(Piece::WHOLE, |s| s.piece(all.len()));
    // Whether this run's `--tiles` starts with the header: a resumed run keeps what it wrote.
    let tiles_header = piece.opens;
    let shard = &all[range.clone()];
    let resumed = resumed(&config, shard, piece.opens)?;
    if let Some(r) = &resumed {
        piece = r.rest_of(piece);
        if !config.quiet {
            r.note(shard.len());
        }
    }
    let skip = resumed.as_ref().map_or(0, |r| r.recorded.records);
    // The table's path column fits every input, so that shards' tables line up when joined.
    let path_width = widest(&all);
    let items: Arc<[Item]> = shard[skip..].to_vec().into();
    // What is left to do: the shard's inputs after those already recorded.
    let left = range.start + skip..range.end;
    let run = Run {
        config: &config,
        started,
        piece,
        tiles_header,
        resumed,
        heatmaps: heatmaps[left.clone()].to_vec(),
        exports: exports[left.clone()].to_vec(),
        explanations: explanations[left].to_vec(),
        path_width,
    };
    let code = if let Some(remote) = &config.remote {
        self::remote(&run, remote, &items)?
    } else {
        local(&run, &items)?
    };
    if !found_any {
        crate::messages::note!("no images found in the given paths");
        return Ok(Exit::SomeFailed);
    }
    Ok(code)
}

/// One `predict` run's settings, resolved before any work.
struct Run<'a> {
    config: &'a PredictConfig,
    started: Instant,
    /// Where this run's records sit in the whole output (shards, resumed runs).
    piece: Piece,
    /// Whether `--tiles` (CSV) starts with its header: the shard that opens the whole output.
    tiles_header: bool,
    /// What an interrupted run already wrote.
    resumed: Option<Resumed>,
    /// Each remaining input's heatmap file.
    heatmaps: Vec<Option<PathBuf>>,
    /// Each remaining input's export files.
    exports: Vec<Vec<(Export, PathBuf)>>,
    /// Each remaining input's explanation PNG.
    explanations: Vec<Option<PathBuf>>,
    /// The longest input path of the whole run.
    path_width: usize,
}

/// Checks `--output`, `--tiles` and `--resume` together; reads what an earlier run left.
fn resumed(config: &PredictConfig, items: &[Item], opens: bool) -> Result<Option<Resumed>> {
    let rows = config.slides.tiles.as_deref();
    let tiles = rows.zip(rows.map(tiles::is_csv).transpose()?);
    let outputs = Outputs {
        records: config.output.as_deref(),
        tiles,
    };
    let paths: Vec<&str> = items.iter().map(display).collect();
    Ok(Resumed::load(
        outputs,
        config.format,
        config.resume,
        &paths,
        opens,
    )?)
}

fn local(run: &Run, items: &Arc<[Item]>) -> Result<Exit> {
    let config = run.config;
    let source = ModelSource::open(&config.model, config.config.as_deref())?;
    if config.explain.is_some() {
        crate::attribution_png::check_kind(source.config.output.kind)?;
        if !source.format.has_gradients() {
            bail!(
                "{}: --explain needs gradients, which only TorchScript models give (this is {}); explain with the model's TorchScript export",
                source.name,
                source.format.noun_with_article()
            );
        }
    }
    // What explanations and slide provenance name the model by.
    let identity = || {
        let identity = source.identity();
        identity.with_context(|| format!("{}: cannot read", source.name))
    };
    if config.slides.tile || source.config.input.patch {
        let slides_asked = &config.slides;
        let asked = crate::slide::Asked {
            heatmap: slides_asked.heatmap.is_some(),
            explain: config.explain.is_some(),
        };
        let (options, exports) = (&slides_asked.options, &slides_asked.exports);
        crate::slide::check_run(&source.config, options, &asked, exports)?;
        let engine = Engine::load(&source, &config.engine)?;
        let schema = engine.schema();
        let wsinfer_config = engine_config_json(config, &source);
        let exit = slides(run, items, engine, identity()?, schema)?;
        let wsinfer_out = exports.iter().find(|(f, _)| f.wsinfer_folder().is_some());
        if let Some((_, dir)) = wsinfer_out {
            crate::slide::exports::write_run_metadata(dir, &config.model, wsinfer_config)
                .with_context(|| {
                    format!("{}: cannot write WSInfer's run metadata", dir.display())
                })?;
        }
        return Ok(exit);
    }
    let preprocessor = Preprocessor::new(&source.config, config.engine.max_pixels);
    // Decoding starts now and overlaps loading the model.
    let decoding = pipeline::start(Arc::new(preprocessor), Arc::clone(items), config.pipeline);
    let engine = Engine::load(&source, &config.engine.for_images(items.len()))?;
    let schema = engine.schema();
    let identity = config.explain.as_ref().map(|_| identity()).transpose()?;
    let explanations = &run.explanations;
    let produce: Producer = Box::new(move |emit| {
        Ok(decoding.finish(&engine, |i, outcome, input| {
            let outcome = match (&explanations[i], input, &identity) {
                (Some(path), Some(input), Some(identity)) => {
                    explained(&engine, identity, path, outcome, input)
                }
                _ => outcome,
            };
            emit(i, outcome, None)
        }))
    });
    write_results(run, items, schema, produce, false)
}

/// The model's configuration as WSInfer's run metadata holds it: a WSInfer folder's own
/// `config.json` (unless --config replaced it), else the handler configuration.
fn engine_config_json(config: &PredictConfig, source: &ModelSource) -> serde_json::Value {
    let model = &config.model;
    Some(model.join(crate::engine::wsinfer::CONFIG))
        .filter(|_| config.config.is_none() && crate::engine::wsinfer::is_model_folder(model))
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| serde_json::to_value(&source.config).unwrap_or_default())
}

fn remote(run: &Run, remote: &RemoteConfig, items: &Arc<[Item]>) -> Result<Exit> {
    let config = run.config;
    let model = RemoteModel {
        client: remote.client.clone(),
        name: config.model.to_string_lossy().into_owned(),
        retries: remote.retries,
    };
    let configured = config.config.as_deref().map(HandlerConfig::from_path);
    let known = model.known_schema(configured.transpose()?.as_ref());
    let start = model.start(known, items.first())?;
    let (jobs, schema) = (remote.jobs, start.schema.clone());
    let produce: Producer = Box::new(move |emit| {
        let emit = |i, outcome| emit(i, outcome, None);
        Ok(predict_remote(&model, start, items, jobs, emit)?)
    });
    write_results(run, items, schema, produce, false)
}

/// Whole slides: every input is cut into windows when larger than the model's input.
fn slides(
    run: &Run,
    items: &Arc<[Item]>,
    engine: Engine,
    identity: ModelIdentity,
    schema: Schema,
) -> Result<Exit> {
    let config = &run.config.slides;
    let kept = run.resumed.as_ref().map_or(&[][..], |r| &r.tiles[..]);
    // Every class's probability per window, where the model gives one per class.
    let classes = match engine.config().output.kind {
        OutputKind::Binary | OutputKind::Multiclass => engine.class_labels(),
        OutputKind::Segmentation | OutputKind::Raw => Vec::new(),
    };
    let tiles = config.tiles.as_deref().map(|path| {
        TileWriter::create(path, kept, run.tiles_header, classes)
            .with_context(|| format!("{}: cannot create", path.display()))
    });
    let tiles = tiles.transpose()?;
    let masks = outputs::masks(&run.config.mask_dir, items, engine.config().output.kind)?;
    let produce: Producer = Box::new(move |emit| {
        let slides = Slides {
            engine: &engine,
            identity: &identity,
            options: &config.options,
            heatmap: &config.heatmap_options,
            max_pixels: run.config.engine.max_pixels,
            quiet: run.config.quiet,
            report: &|_, _| true,
        };
        let files = Files {
            heatmaps: &run.heatmaps,
            exports: &run.exports,
            explanations: &run.explanations,
            masks: &masks,
        };
        Ok(slides.predict_each(items, &files, tiles, emit))
    });
    write_results(run, items, schema, produce, true)
}

/// Writes every record as it is produced, then the summary; the exit status. `slides`: records
/// carry slide summaries.
fn write_results(
    run: &Run,
    items: &Arc<[Item]>,
    schema: Schema,
    produce: Producer,
    slides: bool,
) -> Result<Exit> {
    let (config, quiet) = (run.config, run.config.quiet);
    let kept = match &run.resumed {
        Some(r) => r.kept(config.format, || records::csv_header(&schema, slides))?,
        None => &[],
    };
    let mut destination = Destination::open(config.output.as_deref(), kept)?;
    let interrupt = destination.partial().and_then(watch_interrupts);
    let style = TableStyle {
        color: config.color,
        path_width: run.path_width,
    };
    let segmentation = schema.kind == OutputKind::Segmentation;
    let mut masks = MaskWriter::new(config.mask_dir.clone(), segmentation);
    // Slides show a bar of their own windows instead.
    let progress = crate::progress::images(items.len(), quiet || slides);
    let mut failed = run.resumed.as_ref().map_or(0, |r| r.recorded.failed);
    let mut written = 0usize;
    let result = {
        let output = destination.writer();
        let mut writer = records::writer(config.format, schema, output, style, slides, run.piece);
        let mut emit = |i: usize, outcome: Outcome, slide: Option<Summary>| {
            let (outcome, mask_file) = masks.record(&items[i], outcome, slide.as_ref());
            failed += usize::from(matches!(outcome, Outcome::Failed(_)));
            progress.inc(1);
            let answer = Answer {
                path: display(&items[i]),
                outcome: &outcome,
                mask_file: mask_file.as_deref(),
                slide: slide.as_ref(),
            };
            written += 1;
            progress.suspend(|| writer.write(&answer))
        };
        produce(&mut emit).map(|written| written.and_then(|()| writer.finish()))
    };
    progress.finish_and_clear();
    if let Some(handle) = interrupt {
        handle.close();
    }
    // A fatal error keeps the finished records for --resume.
    let abandon =
        |destination: Destination, error: anyhow::Error| match destination.abandon(written) {
            Some(kept) => error.context(kept),
            None => error,
        };
    match result {
        Ok(Ok(())) => destination.commit()?,
        // The reader went away (`| head`): stop quietly, as other Unix tools do.
        Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Exit::Success),
        Ok(Err(e)) => {
            let context = format!("cannot write results to {}", destination.name());
            return Err(abandon(
                destination,
                anyhow::Error::from(e).context(context),
            ));
        }
        Err(fatal) => return Err(abandon(destination, fatal)),
    }
    let total = items.len() + run.resumed.as_ref().map_or(0, |r| r.recorded.records);
    if !quiet && (failed > 0 || stderr_is_terminal()) {
        let seconds = run.started.elapsed().as_secs_f64();
        crate::messages::note!(
            "{total} input(s): {} predicted, {failed} failed in {seconds:.2} s",
            total - failed
        );
    }
    Ok(if failed > 0 {
        Exit::SomeFailed
    } else {
        Exit::Success
    })
}
