//! `scancer predict`: inference over files, directories and standard input, locally or with a
//! remote inference API (`--remote`); both write the same records.

use super::{stderr_is_terminal, use_color, SOME_FAILED, SUCCESS};
use crate::cli::{ColorChoice, PredictArgs};
use crate::engine::Engine;
use crate::handler_config::HandlerConfig;
use crate::handler_config::OutputKind;
use crate::inputs::{discover, io_message, read_item, Input, Item, Source};
use crate::model_source::ModelSource;
use crate::output::{self, Answer, Format, Schema, TableStyle};
use crate::pipeline::{self, Outcome, PipelineOptions};
use crate::postprocess::Postprocessor;
use crate::postprocess::{Prediction, SegmentationPrediction};
use crate::preprocess::Preprocessor;
use crate::remote::predict::{
    guess_schema, outcome as remote_outcome, run as predict_remote, RemoteModel, MAX_UPLOAD,
};
use crate::remote::{load_profile, Client, Credentials};
use crate::slide::heatmap::HeatmapOptions;
use crate::slide::tiles::TileWriter;
use crate::slide::{Slide, SlideOptions, Summary};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where predictions come from: calls `emit` once per input, in input order.
type Producer<'a> = Box<dyn FnOnce(&mut Emit) -> Result<io::Result<()>> + 'a>;

/// Takes one input's outcome, and its slide summary when it was tiled.
type Emit<'e> = dyn FnMut(usize, Outcome, Option<Summary>) -> io::Result<()> + 'e;

pub fn run(args: PredictArgs, color: ColorChoice) -> Result<ExitCode> {
    let started = Instant::now();
    let discovered = discover(&args.inputs);
    let found_any = !discovered.items.is_empty();
    let items: Arc<[Item]> = match args.shard {
        Some(shard) => shard.select(discovered.items),
        None => discovered.items,
    }
    .into();
    if !args.quiet && discovered.skipped > 0 {
        eprintln!(
            "scancer: skipped {} file(s) in directories that are not images",
            discovered.skipped
        );
    }
    let code = if args.remote.is_some() {
        remote(&args, color, &items, started)?
    } else {
        local(&args, color, &items, started)?
    };
    if !found_any {
        eprintln!("scancer: no images found in the given paths");
        return Ok(ExitCode::from(SOME_FAILED));
    }
    Ok(code)
}

fn local(
    args: &PredictArgs,
    color: ColorChoice,
    items: &Arc<[Item]>,
    started: Instant,
) -> Result<ExitCode> {
    let source = ModelSource::open(&args.model, args.config.as_deref())?;
    if args.tile || source.config.input.patch {
        let engine = Engine::load(&source, &args.engine.options())?;
        let schema = engine.schema();
        return slides(args, color, items, started, engine, schema);
    }
    let preprocessor = Preprocessor::new(&source.config, args.engine.max_image_pixels);
    let pipeline_options = PipelineOptions {
        batch_size: args.engine.batch_size as usize,
        decode_threads: args
            .decode_threads
            .map_or_else(default_decode_threads, |n| n as usize),
    };
    // Decoding starts now and overlaps loading the model.
    let decoding = pipeline::start(Arc::new(preprocessor), Arc::clone(items), pipeline_options);
    let engine = Engine::load(&source, &args.engine.options())?;
    let schema = engine.schema();
    let produce: Producer =
        Box::new(move |emit| Ok(decoding.finish(&engine, |i, o| emit(i, o, None))));
    write_results(args, color, items, schema, started, produce, false)
}

fn remote(
    args: &PredictArgs,
    color: ColorChoice,
    items: &Arc<[Item]>,
    started: Instant,
) -> Result<ExitCode> {
    let profile = load_profile(args.remote_args.profile.as_deref())?;
    let url = args
        .remote
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::env::var("SCANCER_API_URL")
                .ok()
                .filter(|u| !u.is_empty())
        })
        .or_else(|| profile.api_url.clone())
        .context(
            "--remote: no URL (give --remote URL, or set SCANCER_API_URL or a profile's api_url)",
        )?;
    let credentials = Credentials::resolve(&args.remote_args, &profile, "inference")?;
    let model = RemoteModel {
        client: Client::new(
            &url,
            credentials,
            Duration::from_secs(args.remote_args.timeout),
        )?,
        name: args.model.to_string_lossy().into_owned(),
        retries: args.retries,
    };
    // The labels and kind: the configuration given, else what scancer serve says, else what the
    // first answer implies.
    let known = match &args.config {
        Some(path) => {
            let config = HandlerConfig::from_path(path)?;
            let post = Postprocessor::new(&config);
            let classes = match config.output.kind {
                OutputKind::Binary => vec![post.label(0), post.label(1)],
                _ => config.output.labels.clone().unwrap_or_default(),
            };
            Some(Schema {
                kind: config.output.kind,
                classes,
            })
        }
        None => model.metadata_schema(),
    };
    // The first input goes alone: a wrong URL, model or credentials stops the run before any record.
    let mut first = None;
    let mut from = 0;
    if let Some(item) = items.first() {
        from = 1;
        first = Some(match read_item(item, MAX_UPLOAD) {
            Err(why) => (Outcome::Failed(why), None),
            Ok(bytes) => match model.predict(&bytes) {
                Ok(answer) => (Outcome::Failed(String::new()), Some(answer)),
                Err(Ok(why)) => (Outcome::Failed(why), None),
                Err(Err(fatal)) => anyhow::bail!(fatal),
            },
        });
    }
    let schema = known.unwrap_or_else(|| match &first {
        Some((_, Some(answer))) => guess_schema(answer),
        _ => Schema {
            kind: OutputKind::Binary,
            classes: vec!["0".into(), "1".into()],
        },
    });
    let first = first.map(|(failed, answer)| match answer {
        Some(answer) => remote_outcome(&answer, &schema),
        None => failed,
    });
    let jobs = args.jobs as usize;
    let schema_for_run = schema.clone();
    let produce: Producer = Box::new(move |emit| {
        if let Some(outcome) = first {
            if let Err(e) = emit(0, outcome, None) {
                return Ok(Err(e));
            }
        }
        predict_remote(&model, &schema_for_run, items, from, jobs, |i, o| {
            emit(i, o, None)
        })
        .map_err(anyhow::Error::from)
    });
    write_results(args, color, items, schema, started, produce, false)
}

/// Whole slides: every input is cut into windows when larger than the model's input.
fn slides(
    args: &PredictArgs,
    color: ColorChoice,
    items: &Arc<[Item]>,
    started: Instant,
    engine: Engine,
    schema: Schema,
) -> Result<ExitCode> {
    let options = SlideOptions {
        stride: args.stride,
        tissue_threshold: args.tissue_threshold,
        all_tiles: args.all_tiles,
        thumbnail_side: if args.heatmap.is_some() && args.overlay {
            args.heatmap_size
        } else {
            0
        },
    };
    let heatmap = HeatmapOptions {
        max_side: args.heatmap_size,
        smooth: args.smooth,
        overlay: args.overlay,
    };
    let mut tiles = match &args.tiles {
        Some(path) => Some(
            TileWriter::create(path)
                .with_context(|| format!("{}: cannot create", path.display()))?,
        ),
        None => None,
    };
    let heatmaps = args.heatmap.clone();
    let many = items.len() > 1;
    let labels = [schema.label(0), schema.label(1)];
    let (quiet, max_pixels) = (args.quiet, args.engine.max_image_pixels);
    let mut names = HashSet::new();
    let produce: Producer = Box::new(move |emit| {
        for (i, item) in items.iter().enumerate() {
            let target = heatmaps.as_ref().map(|h| {
                if many {
                    // Unique names: slide.png and slide.tif get slide-heatmap.png and
                    // slide-2-heatmap.png.
                    let stem = stem(item);
                    let mut name = format!("{stem}-heatmap.png");
                    let mut n = 1;
                    while !names.insert(name.clone()) {
                        n += 1;
                        name = format!("{stem}-{n}-heatmap.png");
                    }
                    h.join(name)
                } else {
                    h.clone()
                }
            });
            let slide = Slide {
                engine: &engine,
                options: &options,
                heatmap: target.as_deref().map(|t| (t, &heatmap)),
                max_pixels,
                level: args.level,
                quiet,
            };
            let (outcome, summary, result) = slide.predict(item);
            if let (Some(writer), Some(result)) = (&mut tiles, &result) {
                let shown = display(item);
                let labels = [labels[0].as_str(), labels[1].as_str()];
                if let Err(e) = writer.write(shown, result, labels) {
                    return Ok(Err(e));
                }
            }
            if let Err(e) = emit(i, outcome, summary) {
                return Ok(Err(e));
            }
        }
        Ok(match &mut tiles {
            Some(writer) => writer.finish(),
            None => Ok(()),
        })
    });
    write_results(args, color, items, schema, started, produce, true)
}

/// An input's file stem, for naming its heatmap.
fn stem(item: &Item) -> String {
    match item {
        Ok(Input {
            source: Source::File(p),
            ..
        }) => p
            .file_stem()
            .map_or_else(|| "slide".into(), |s| s.to_string_lossy().into_owned()),
        _ => "stdin".into(),
    }
}

/// Writes every record as it is produced, then the summary; the exit status.
fn write_results(
    args: &PredictArgs,
    color: ColorChoice,
    items: &Arc<[Item]>,
    schema: Schema,
    started: Instant,
    produce: Producer,
    slides: bool,
) -> Result<ExitCode> {
    let quiet = args.quiet;
    let mut destination = Destination::open(args.output.as_deref())?;
    let style = TableStyle {
        color: args.format == Format::Table
            && args.output.is_none()
            && use_color(color, io::stdout().is_terminal()),
        path_width: items
            .iter()
            .map(|i| display(i).chars().count())
            .max()
            .unwrap_or(0),
    };
    let mut masks = MaskWriter::new(mask_dir(args), schema.kind == OutputKind::Segmentation);
    // Slides show a bar of their own windows instead.
    let progress = progress_bar(items.len(), quiet || slides);
    let mut failed = 0usize;
    let result = {
        let mut writer = output::writer(args.format, schema, destination.writer(), style, slides);
        let mut emit = |i: usize, outcome: Outcome, slide: Option<Summary>| {
            let path = display(&items[i]);
            let (outcome, mask_file) = masks.write(&items[i], outcome);
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
            progress.suspend(|| writer.write(&answer))
        };
        let produced = produce(&mut emit);
        match produced {
            Ok(written) => written.and_then(|()| writer.finish()),
            Err(fatal) => {
                progress.finish_and_clear();
                return Err(fatal);
            }
        }
    };
    progress.finish_and_clear();
    match result {
        Ok(()) => destination.commit()?,
        // The reader went away (`| head`): stop quietly, as other Unix tools do.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::from(SUCCESS)),
        Err(e) => return Err(e).context(format!("cannot write results to {}", destination.name())),
    }

    let total = items.len();
    if !quiet && (failed > 0 || stderr_is_terminal()) {
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "scancer: {total} input(s): {} predicted, {failed} failed in {seconds:.2} s",
            total - failed
        );
    }
    Ok(ExitCode::from(if failed > 0 {
        SOME_FAILED
    } else {
        SUCCESS
    }))
}

fn display(item: &Item) -> &str {
    match item {
        Ok(input) => &input.display,
        Err(unlisted) => &unlisted.display,
    }
}

fn default_decode_threads() -> usize {
    // The model takes most of the CPU; decoding small patches is cheap next to a forward pass.
    (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
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

fn mask_dir(args: &PredictArgs) -> PathBuf {
    if let Some(dir) = &args.mask_dir {
        return dir.clone();
    }
    match &args.output {
        Some(out) => {
            let stem = out
                .file_stem()
                .map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned());
            out.with_file_name(format!("{stem}-masks"))
        }
        None => PathBuf::from("scancer-masks"),
    }
}

/// Standard output, or a temporary file beside `--output` that replaces it only when complete.
enum Destination {
    Stdout,
    File {
        temp: tempfile::NamedTempFile,
        path: PathBuf,
    },
}

impl Destination {
    fn open(path: Option<&Path>) -> Result<Destination> {
        let Some(path) = path else {
            return Ok(Destination::Stdout);
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".scancer-")
            .tempfile_in(dir)
            .with_context(|| format!("{}: cannot create the output file", path.display()))?;
        Ok(Destination::File {
            temp,
            path: path.to_path_buf(),
        })
    }

    fn writer(&mut self) -> Box<dyn Write + '_> {
        match self {
            // A terminal gets each line as it is written (stdout is line-buffered), so that records
            // and the progress bar take turns; pipes and files get large buffered writes.
            Destination::Stdout if io::stdout().is_terminal() => Box::new(io::stdout().lock()),
            Destination::Stdout => Box::new(io::BufWriter::new(io::stdout().lock())),
            Destination::File { temp, .. } => Box::new(io::BufWriter::new(temp.as_file_mut())),
        }
    }

    fn name(&self) -> String {
        match self {
            Destination::Stdout => "standard output".into(),
            Destination::File { path, .. } => path.display().to_string(),
        }
    }

    fn commit(self) -> Result<()> {
        if let Destination::File { temp, path } = self {
            temp.as_file()
                .sync_all()
                .with_context(|| format!("{}: cannot write", path.display()))?;
            temp.persist(&path)
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
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_message(&e))?;
    }
    let image = image::GrayImage::from_raw(seg.width as u32, seg.height as u32, seg.mask.clone())
        .ok_or("mask size does not match its pixels")?;
    image
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| e.to_string())
}
