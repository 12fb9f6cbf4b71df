//! `scancer predict`: local inference over files, directories and standard input.

use super::{stderr_is_terminal, use_color, SOME_FAILED, SUCCESS};
use crate::cli::{ColorChoice, PredictArgs};
use crate::engine::Engine;
use crate::handler_config::OutputKind;
use crate::inputs::{discover, io_message, Item, Source};
use crate::model_source::ModelSource;
use crate::output::{self, Answer, Format, Schema, TableStyle};
use crate::pipeline::{self, Outcome, PipelineOptions};
use crate::postprocess::{Prediction, SegmentationPrediction};
use crate::preprocess::Preprocessor;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

pub fn run(args: PredictArgs, color: ColorChoice) -> Result<ExitCode> {
    let started = Instant::now();
    let source = ModelSource::open(&args.model, args.config.as_deref())?;
    let preprocessor = Preprocessor::new(&source.config, args.engine.max_image_pixels);

    let discovered = discover(&args.inputs);
    let found_any = !discovered.items.is_empty();
    let items: Arc<[Item]> = match args.shard {
        Some(shard) => shard.select(discovered.items),
        None => discovered.items,
    }
    .into();
    let quiet = args.quiet;
    if !quiet && discovered.skipped > 0 {
        eprintln!(
            "scancer: skipped {} file(s) in directories that are not images",
            discovered.skipped
        );
    }
    let pipeline_options = PipelineOptions {
        batch_size: args.engine.batch_size as usize,
        decode_threads: args
            .decode_threads
            .map_or_else(default_decode_threads, |n| n as usize),
    };
    // Decoding starts now and overlaps loading the model.
    let decoding = pipeline::start(Arc::new(preprocessor), Arc::clone(&items), pipeline_options);
    let engine = Engine::load(&source, &args.engine.options())?;

    let schema = Schema {
        kind: engine.config().output.kind,
        classes: engine.class_labels(),
    };
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
    let mut masks = MaskWriter::new(mask_dir(&args), schema.kind == OutputKind::Segmentation);
    let progress = progress_bar(items.len(), quiet);
    let mut failed = 0usize;
    let result = {
        let mut writer = output::writer(args.format, schema, destination.writer(), style);
        decoding
            .finish(&engine, |i, outcome| {
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
                };
                progress.suspend(|| writer.write(&answer))
            })
            .and_then(|()| writer.finish())
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
    if !found_any {
        eprintln!("scancer: no images found in the given paths");
        return Ok(ExitCode::from(SOME_FAILED));
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
