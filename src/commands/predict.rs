//! `scancer predict`: inference over files, directories and standard input, locally or with a
//! remote inference API (`--remote`); both write the same records. Settles, before any work, where
//! this run's records sit in the whole output (`--shard`, `--resume`) and where each heatmap goes.

use super::stderr_is_terminal;
use crate::cli::{HeatmapFormat, PredictConfig, RemoteConfig};
use crate::engine::handler_config::HandlerConfig;
use crate::engine::model_source::{ModelIdentity, ModelSource};
use crate::engine::preprocess::Preprocessor;
use crate::engine::Engine;
use crate::exit::Exit;
use crate::inputs::{discover, io_message, Item, Source};
use crate::output_file::{partial_of, write_file, OutputFile, Target};
use crate::pipeline;
use crate::records::Outcome;
use crate::records::OutputKind;
use crate::records::Summary;
use crate::records::{self, Answer, Format, Piece, Schema, TableStyle};
use crate::records::{Prediction, SegmentationPrediction};
use crate::remote::predict::{run as predict_remote, RemoteModel};
use crate::resume::{self, Recorded};
use crate::slide::exports::Format as Export;
use crate::slide::tiles::{self, TileWriter};
use crate::slide::Slide;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
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
    let heatmaps = heatmap_targets(&config, &all)?;
    let exports = export_targets(&config, &all)?;
    let explanations = match &config.explain {
        Some(dir) => per_slide("--explain", &dir.join(""), &all, &[], ".explain.png")?,
        None => vec![None; all.len()],
    };
    let range = config.shard.map_or(0..all.len(), |s| s.range(all.len()));
    let mut piece = Piece {
        before: range.start,
        opens: config.shard.is_none_or(|s| s.index == 0),
        closes: config.shard.is_none_or(|s| s.index + 1 == s.count),
    };
    let shard: Vec<Item> = all[range.clone()].to_vec();
    let heatmaps: Vec<Option<PathBuf>> = heatmaps.map_or_else(
        || vec![None; shard.len()],
        |names| names[range.clone()].to_vec(),
    );
    let exports = exports[range.clone()].to_vec();
    let explanations = explanations[range].to_vec();
    let resumed = Resumed::load(&config, &shard, piece.opens)?;
    if let Some(r) = &resumed {
        piece.before += r.recorded.records;
        piece.opens &= !r.recorded.opened;
        if !config.quiet && r.recorded.records > 0 {
            crate::messages::note!(
                "resuming: {} of {} input(s) already recorded in {}",
                r.recorded.records,
                shard.len(),
                r.from.display()
            );
        }
    }
    let skip = resumed.as_ref().map_or(0, |r| r.recorded.records);
    // The table's path column fits every input, so that shards' tables line up when joined.
    let path_width = all
        .iter()
        .map(|i| display(i).chars().count())
        .max()
        .unwrap_or(0);
    let items: Arc<[Item]> = shard[skip..].to_vec().into();
    let run = Run {
        config: &config,
        started,
        piece,
        resumed,
        heatmaps: heatmaps[skip..].to_vec(),
        exports: exports[skip..].to_vec(),
        explanations: explanations[skip..].to_vec(),
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

/// `--resume`: the records an earlier run of the same command left in the output.
struct Resumed {
    /// The file they were read from (the `.partial`, or a finished output).
    from: PathBuf,
    bytes: Vec<u8>,
    recorded: Recorded,
    /// The `--tiles` bytes of the finished slides.
    tiles: Vec<u8>,
}

impl Resumed {
    /// Checks `--output`, `--tiles` and `--resume` together; reads what an earlier run left.
    fn load(config: &PredictConfig, items: &[Item], opens: bool) -> Result<Option<Resumed>> {
        if let Some(path) = &config.slides.tiles {
            tiles::is_csv(path).map_err(anyhow::Error::msg)?;
        }
        let outputs = [config.output.as_deref(), config.slides.tiles.as_deref()];
        if !config.resume {
            // Never start over on top of an interrupted run's records.
            for path in outputs.into_iter().flatten() {
                if let Some(partial) = Target::of(path).ok().and_then(|t| t.partial()) {
                    if partial.exists() {
                        anyhow::bail!(
                            "{} holds the records of an interrupted run: add --resume to go on from them, or delete it to start again",
                            partial.display()
                        );
                    }
                }
            }
            return Ok(None);
        }
        let Some(output) = &config.output else {
            anyhow::bail!("--resume needs --output FILE (the file an interrupted run was writing)");
        };
        if config.format == Format::Table {
            anyhow::bail!(
                "--resume needs --format json, jsonl or csv (a table cannot be read back)"
            );
        }
        let (from, bytes) = left_behind(output)?;
        let paths: Vec<&str> = items.iter().map(display).collect();
        let csv_header = config.format == Format::Csv && opens;
        let recorded = resume::recorded(config.format, &bytes, &paths, csv_header)
            .map_err(|why| anyhow::anyhow!("--resume: {}: {why}", from.display()))?;
        let tiles = match &config.slides.tiles {
            Some(path) => {
                let csv = tiles::is_csv(path).map_err(anyhow::Error::msg)?;
                let (_, bytes) = left_behind(path)?;
                let done: HashSet<&str> = paths[..recorded.records].iter().copied().collect();
                let keep = resume::tiles_kept(&bytes, csv, &done);
                bytes[..keep].to_vec()
            }
            None => Vec::new(),
        };
        Ok(Some(Resumed {
            from,
            bytes,
            recorded,
            tiles,
        }))
    }
}

/// What an interrupted run left for `path`: its `.partial`, else a finished file, else nothing.
fn left_behind(path: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let target = Target::of(path).with_context(|| format!("{}", path.display()))?;
    let Target::Regular { path: file, .. } = target else {
        anyhow::bail!(
            "--resume: {} is not a regular file, so nothing can be resumed from it",
            path.display()
        );
    };
    let partial = partial_of(&file);
    let from = if partial.exists() { partial } else { file };
    match std::fs::read(&from) {
        Ok(bytes) => Ok((from, bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((from, Vec::new())),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", from.display())),
    }
}

/// Each input's heatmap file: `--heatmap FILE.png` (or `.tif`) for a single input, else
/// `DIR/<the input's path>.heatmap.png` (`.heatmap.tif` with `--heatmap-format tiff`).
fn heatmap_targets(config: &PredictConfig, all: &[Item]) -> Result<Option<Vec<Option<PathBuf>>>> {
    config
        .slides
        .heatmap
        .as_deref()
        .map(|path| {
            let suffix = match config.slides.heatmap_format {
                HeatmapFormat::Png => ".heatmap.png",
                HeatmapFormat::Tiff => ".heatmap.tif",
            };
            per_slide("--heatmap", path, all, &["png", "tif", "tiff"], suffix)
        })
        .transpose()
}

/// Each input's files of every export format asked for.
fn export_targets(config: &PredictConfig, all: &[Item]) -> Result<Vec<Vec<(Export, PathBuf)>>> {
    let mut targets = vec![Vec::new(); all.len()];
    for (format, path) in &config.slides.exports {
        let (flag, extensions, suffix): (&str, &[&str], &str) = match format {
            Export::GeoJson => ("--geojson", &["geojson", "json"], ".geojson"),
            Export::AsapXml => ("--asap-xml", &["xml"], ".xml"),
            Export::LesionsCsv => ("--lesions", &["csv"], ".lesions.csv"),
        };
        let names = per_slide(flag, path, all, extensions, suffix)?;
        for (target, name) in targets.iter_mut().zip(names) {
            target.extend(name.map(|n| (*format, n)));
        }
    }
    Ok(targets)
}

/// One file per input for a per-slide output: `path` itself for a single input when it has one of
/// `extensions`, else `path/<the input's path><suffix>`, mirroring the path as given so that no
/// two inputs of a job array, whichever shard runs them, share a name.
fn per_slide(
    flag: &str,
    path: &Path,
    all: &[Item],
    extensions: &[&str],
    suffix: &str,
) -> Result<Vec<Option<PathBuf>>> {
    let folder = path.is_dir()
        || path.as_os_str().to_string_lossy().ends_with('/')
        || !path.extension().is_some_and(|e| {
            extensions
                .iter()
                .any(|x| e.eq_ignore_ascii_case(std::ffi::OsStr::new(x)))
        });
    if !folder {
        if all.len() > 1 {
            anyhow::bail!(
                "{flag} {} names one file, but there are {} inputs: give a folder ({flag} out/) for one file per slide",
                path.display(),
                all.len()
            );
        }
        return Ok(vec![Some(path.to_path_buf()); all.len()]);
    }
    let mut seen: std::collections::HashMap<PathBuf, &str> = std::collections::HashMap::new();
    let mut names = Vec::with_capacity(all.len());
    for item in all {
        let name = match item {
            Ok(input) => {
                let mut rel = match &input.source {
                    Source::File(path) => mirrored(path),
                    Source::Stdin => PathBuf::from("stdin"),
                }
                .into_os_string();
                rel.push(suffix);
                let name = path.join(rel);
                if let Some(other) = seen.insert(name.clone(), &input.display) {
                    anyhow::bail!(
                        "{flag}: the files of {other} and {} would both be {}: give each slide once, by paths that differ",
                        input.display,
                        name.display()
                    );
                }
                Some(name)
            }
            Err(_) => None,
        };
        names.push(name);
    }
    Ok(names)
}

/// A path as given, made relative: `/data/a/x.svs` -> `data/a/x.svs`, `../x.svs` -> `__/x.svs`.
fn mirrored(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(name) => rel.push(name),
            Component::ParentDir => rel.push("__"),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
    rel
}

fn local(run: &Run, items: &Arc<[Item]>) -> Result<Exit> {
    let config = run.config;
    let source = ModelSource::open(&config.model, config.config.as_deref())?;
    if config.explain.is_some()
        && matches!(
            source.config.output.kind,
            OutputKind::Segmentation | OutputKind::Raw
        )
    {
        anyhow::bail!(
            "--explain attributes a class's output: this model's kind is \"{}\" (explanations need a binary or multiclass model)",
            source.config.output.kind
        );
    }
    if config.slides.tile || source.config.input.patch {
        // Usage errors, before any slide is read or any output touched.
        let options = &config.slides.options;
        let (_, focus) =
            crate::slide::check(&source.config, options.stride, options.class.as_deref())
                .map_err(anyhow::Error::msg)?;
        crate::slide::check_outputs(
            source.config.output.kind,
            focus,
            config.slides.heatmap.is_some(),
            config
                .slides
                .exports
                .iter()
                .any(|(f, _)| *f == Export::LesionsCsv),
        )
        .map_err(anyhow::Error::msg)?;
        let engine = Engine::load(&source, &config.engine)?;
        let identity = source
            .identity()
            .with_context(|| format!("{}: cannot read", source.name))?;
        let schema = engine.schema();
        return slides(run, items, engine, identity, schema);
    }
    let preprocessor = Preprocessor::new(&source.config, config.engine.max_pixels);
    // Decoding starts now and overlaps loading the model.
    let decoding = pipeline::start(Arc::new(preprocessor), Arc::clone(items), config.pipeline);
    let engine = Engine::load(&source, &config.engine.for_images(items.len()))?;
    let schema = engine.schema();
    let identity = match &config.explain {
        Some(_) => Some(
            source
                .identity()
                .with_context(|| format!("{}: cannot read", source.name))?,
        ),
        None => None,
    };
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

/// `outcome` with its input explained to `path` (Integrated Gradients of the predicted class's
/// output), or the input's error when that fails.
fn explained(
    engine: &Engine,
    identity: &ModelIdentity,
    path: &Path,
    outcome: Outcome,
    input: &crate::engine::preprocess::Prepared,
) -> Outcome {
    let Outcome::Predicted(Prediction::Class(prediction)) = &outcome else {
        return outcome;
    };
    match crate::attribution_png::explain_to(engine, identity, path, input, prediction.class) {
        Ok(()) => outcome,
        Err(e) => Outcome::Failed(e.to_string()),
    }
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
    let heatmap = &config.heatmap_options;
    let input = &engine.config().input;
    let mut options = config.options.clone();
    options.choice.model_mpp = input.mpp;
    options.choice.patch = (input.width as usize, input.height as usize);
    let options = &options;
    let tiles = match &config.tiles {
        Some(path) => {
            let kept = run.resumed.as_ref().map_or(&[][..], |r| &r.tiles[..]);
            Some(
                TileWriter::create(path, kept)
                    .with_context(|| format!("{}: cannot create", path.display()))?,
            )
        }
        None => None,
    };
    let (quiet, max_pixels) = (run.config.quiet, run.config.engine.max_pixels);
    let (heatmaps, exports, identity) = (&run.heatmaps, &run.exports, &identity);
    // A segmentation model's stitched masks: MASK_DIR/<the input's path>.mask.tif.
    let masks = (engine.config().output.kind == OutputKind::Segmentation)
        .then(|| {
            let dir = run.config.mask_dir.join("");
            per_slide("--mask-dir", &dir, items, &[], ".mask.tif")
        })
        .transpose()?;
    let produce: Producer = Box::new(move |emit| {
        let mut tiles = tiles;
        for (i, item) in items.iter().enumerate() {
            let slide = Slide {
                engine: &engine,
                options,
                identity,
                heatmap: heatmaps[i].as_deref().map(|t| (t, heatmap)),
                mask: masks.as_ref().and_then(|m| m[i].clone()),
                explain: run.explanations[i].clone(),
                exports: exports[i].clone(),
                max_pixels,
                quiet,
            };
            let predicted = slide.predict(item);
            if let (Some(writer), Some(result)) = (&mut tiles, &predicted.result) {
                if let Err(e) = writer.write(display(item), result) {
                    return Ok(Err(e));
                }
            }
            if let Err(e) = emit(i, predicted.outcome, predicted.summary) {
                return Ok(Err(e));
            }
        }
        Ok(match tiles {
            Some(writer) => writer.finish(),
            None => Ok(()),
        })
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
    let config = run.config;
    let quiet = config.quiet;
    let kept: &[u8] = match &run.resumed {
        Some(r) => {
            if r.recorded.opened && config.format == Format::Csv {
                let header = records::csv_header(&schema, slides);
                if !r.bytes.starts_with(&header) {
                    anyhow::bail!(
                        "--resume: {}: its CSV header is not the one this command writes: it was written by another command or model",
                        r.from.display()
                    );
                }
            }
            &r.bytes[..r.recorded.keep]
        }
        None => &[],
    };
    let mut destination = Destination::open(config.output.as_deref(), kept)?;
    let interrupt = destination.partial().and_then(watch_interrupts);
    let style = TableStyle {
        color: config.color,
        path_width: run.path_width,
    };
    let mut masks = MaskWriter::new(
        config.mask_dir.clone(),
        schema.kind == OutputKind::Segmentation,
    );
    // Slides show a bar of their own windows instead.
    let progress = progress_bar(items.len(), quiet || slides);
    let mut failed = run.resumed.as_ref().map_or(0, |r| r.recorded.failed);
    let mut written = 0usize;
    let result = {
        let mut writer = records::writer(
            config.format,
            schema,
            destination.writer(),
            style,
            slides,
            run.piece,
        );
        let mut emit = |i: usize, outcome: Outcome, slide: Option<Summary>| {
            let path = display(&items[i]);
            // A slide's stitched mask was written with it; a patch's is written here.
            let stitched = slide
                .as_ref()
                .and_then(|s| s.exports.iter().find(|(k, _)| *k == "mask"))
                .map(|(_, p)| p.clone());
            let (outcome, mask_file) = match stitched {
                Some(p) => (outcome, Some(p)),
                None => masks.write(&items[i], outcome),
            };
            if matches!(outcome, Outcome::Failed(_)) {
                failed += 1;
            }
            progress.inc(1);
            let answer = Answer {
                path,
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
    let written_out = match result {
        Ok(written_out) => written_out,
        Err(fatal) => return Err(destination.abandon(fatal, written)),
    };
    match written_out {
        Ok(()) => destination.commit()?,
        // The reader went away (`| head`): stop quietly, as other Unix tools do.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Exit::Success),
        Err(e) => {
            let e = anyhow::Error::from(e)
                .context(format!("cannot write results to {}", destination.name()));
            return Err(destination.abandon(e, written));
        }
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

/// On SIGINT or SIGTERM while an output is being written: says where the finished records are and
/// how to go on, then dies of the signal as it would have (a shell reports 130 or 143). Exiting
/// normally from this thread would run libtorch's static destructors under the model thread.
fn watch_interrupts(partial: PathBuf) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).ok()?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("scancer-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                crate::messages::note!(
"interrupted: the finished records are in {}; run the same command with --resume to go on",
                    partial.display()
                );
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::abort();
            }
        })
        .ok()?;
    Some(handle)
}

fn display(item: &Item) -> &str {
    match item {
        Ok(input) => &input.display,
        Err(unlisted) => &unlisted.display,
    }
}

fn progress_bar(len: usize, quiet: bool) -> ProgressBar {
    if quiet || len <= 1 || !stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} images [{wide_bar}] {rate} ETA {eta}")
            .expect("valid template")
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} images/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
    );
    bar
}

/// Standard output, or `--output` written through its `.partial` (see `output_file`).
enum Destination {
    Stdout,
    File { file: OutputFile, path: PathBuf },
}

impl Destination {
    /// Opens `--output`, starting with the bytes `kept` of an interrupted run.
    fn open(path: Option<&Path>, kept: &[u8]) -> Result<Destination> {
        let Some(path) = path else {
            return Ok(Destination::Stdout);
        };
        let mut file = OutputFile::create(path)
            .with_context(|| format!("{}: cannot create the output file", path.display()))?;
        file.write_all(kept)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(Destination::File {
            file,
            path: path.to_path_buf(),
        })
    }

    fn partial(&self) -> Option<PathBuf> {
        match self {
            Destination::File { file, .. } => file.target().partial(),
            Destination::Stdout => None,
        }
    }

    fn writer(&mut self) -> Box<dyn Write + '_> {
        match self {
            // Records are flushed one by one: a killed run keeps every finished one.
            Destination::Stdout => Box::new(io::BufWriter::new(io::stdout().lock())),
            Destination::File { file, .. } => Box::new(io::BufWriter::new(file)),
        }
    }

    fn name(&self) -> String {
        match self {
            Destination::Stdout => "standard output".into(),
            Destination::File { path, .. } => path.display().to_string(),
        }
    }

    /// A run that stops on a fatal error: a `.partial` without records goes (the output is left as
    /// it was); one with records stays, for --resume, and the error says so.
    fn abandon(self, error: anyhow::Error, written: usize) -> anyhow::Error {
        let Some(partial) = self.partial() else {
            return error;
        };
        let kept = std::fs::metadata(&partial).map_or(0, |m| m.len());
        if written == 0 && kept == 0 {
            let _ = std::fs::remove_file(&partial);
            return error;
        }
        error.context(format!(
            "the finished records are in {}: fix the problem and run the same command with --resume",
            partial.display()
        ))
    }

    fn commit(self) -> Result<()> {
        if let Destination::File { file, path } = self {
            file.commit()
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        Ok(())
    }
}

/// Writes segmentation masks as 8-bit PNGs of class indices, one uniquely named file per input.
struct MaskWriter {
    dir: PathBuf,
    enabled: bool,
    used: HashSet<String>,
}

impl MaskWriter {
    fn new(dir: PathBuf, enabled: bool) -> Self {
        MaskWriter {
            dir,
            enabled,
            used: HashSet::new(),
        }
    }

    fn write(&mut self, item: &Item, outcome: Outcome) -> (Outcome, Option<String>) {
        let Outcome::Predicted(Prediction::Segmentation(seg)) = &outcome else {
            return (outcome, None);
        };
        if !self.enabled {
            return (outcome, None);
        }
        let name = self.unique_name(item);
        let path = self.dir.join(name);
        match save_mask(&path, seg) {
            Ok(()) => (outcome, Some(path.to_string_lossy().into_owned())),
            Err(e) => (
                Outcome::Failed(format!("cannot write mask {}: {e}", path.display())),
                None,
            ),
        }
    }

    fn unique_name(&mut self, item: &Item) -> String {
        let stem = match item {
            Ok(input) => match &input.source {
                Source::File(p) => p
                    .file_stem()
                    .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned()),
                Source::Stdin => "stdin".into(),
            },
            Err(_) => "image".into(),
        };
        let mut name = format!("{stem}.mask.png");
        let mut n = 1;
        while !self.used.insert(name.clone()) {
            n += 1;
            name = format!("{stem}-{n}.mask.png");
        }
        name
    }
}

fn save_mask(path: &Path, seg: &SegmentationPrediction) -> Result<(), String> {
    let image = image::GrayImage::from_raw(seg.width as u32, seg.height as u32, seg.mask.clone())
        .ok_or("mask size does not match its pixels")?;
    let mut png = Vec::new();
    image
        .write_to(&mut io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    write_file(path, &png).map_err(|e| io_message(&e))
}
