//! A slide run, input by input: each opened at the level its plan chose, answered as a single
//! patch when it is no larger than the model's input, else scanned window by window, its regions
//! found, its files written (heatmaps, mask, explanation, exports, `--tiles` rows) and its
//! record's prediction and summary made.

use super::classes;
use super::error::{SlideError, WriteError};
use super::exports;
use super::heatmap;
use super::heatmap_tiff;
use super::model::SlideModel;
use super::provenance::{self, Provenance};
use super::rows::{self, ReadError};
use super::scan;
use super::tiles::TileWriter;
use super::types::{SlideOptions, SlideResult};
use crate::engine::model_source::ModelIdentity;
use crate::engine::preprocess::Prepared;
use crate::inputs::{read_stdin, Item, Source};
use crate::records::summary::ClassSummary;
use crate::records::{Outcome, OutputKind, Prediction, SegmentationPrediction, Summary};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Standard input is read whole; this bounds it.
const MAX_STDIN_BYTES: u64 = 1 << 30;

/// A slide run: the model and the settings every input shares.
pub(crate) struct Slides<'a> {
    pub(crate) engine: &'a dyn SlideModel,
    /// The model's and configuration's sha256.
    pub(crate) identity: &'a ModelIdentity,
    /// As the command line gives them (the model's resolution and input size are added here).
    pub(crate) options: &'a SlideOptions,
    pub(crate) heatmap: &'a heatmap::HeatmapOptions,
    pub(crate) max_pixels: u64,
    pub(crate) quiet: bool,
    /// Hears each slide's progress (windows done, windows in all); false stops the slide, which
    /// ends as cancelled.
    pub(crate) report: &'a (dyn Fn(usize, usize) -> bool + Sync),
}

/// Every input's files, in input order, as `outputs` names them.
pub(crate) struct Files<'a> {
    pub(crate) heatmaps: &'a [Option<PathBuf>],
    pub(crate) exports: &'a [Vec<(exports::Format, PathBuf)>],
    pub(crate) explanations: &'a [Option<PathBuf>],
    /// A segmentation model's stitched masks (none for other models).
    pub(crate) masks: &'a Option<Vec<Option<PathBuf>>>,
}

/// Takes one input's index, outcome and slide summary (none for a patch).
pub(crate) type Emit<'e> = dyn FnMut(usize, Outcome, Option<Summary>) -> io::Result<()> + 'e;

impl Slides<'_> {
    /// Predicts every input in order, each one's `--tiles` rows written before `emit` hears its
    /// record; then finishes the tiles file.
    pub(crate) fn predict_each(
        &self,
        items: &[Item],
        files: &Files,
        mut tiles: Option<TileWriter>,
        emit: &mut Emit,
    ) -> io::Result<()> {
        let input = &self.engine.config().input;
        let mut options = self.options.clone();
        options.choice.model_mpp = input.mpp;
        options.choice.patch = (input.width as usize, input.height as usize);
        for (i, item) in items.iter().enumerate() {
            let slide = Slide {
                engine: self.engine,
                options: &options,
                identity: self.identity,
                heatmap: files.heatmaps[i].as_deref().map(|t| (t, self.heatmap)),
                mask: files.masks.as_ref().and_then(|m| m[i].clone()),
                explain: files.explanations[i].clone(),
                exports: files.exports[i].clone(),
                max_pixels: self.max_pixels,
                quiet: self.quiet,
                report: self.report,
            };
            let predicted = slide.predict(item);
            if let (Some(writer), Some(result)) = (&mut tiles, &predicted.result) {
                let display = match item {
                    Ok(input) => &input.display,
                    Err(unlisted) => &unlisted.display,
                };
                writer.write(display, result)?;
            }
            emit(i, predicted.outcome, predicted.summary)?;
        }
        match tiles {
            Some(writer) => writer.finish(),
            None => Ok(()),
        }
    }
}

/// Predicting one input of a run in slide mode.
struct Slide<'a> {
    engine: &'a dyn SlideModel,
    options: &'a SlideOptions,
    identity: &'a ModelIdentity,
    /// Where to write the heatmap, and how.
    heatmap: Option<(&'a Path, &'a heatmap::HeatmapOptions)>,
    /// Where a segmentation model's stitched mask goes.
    mask: Option<PathBuf>,
    /// Where the hotspot window's explanation goes.
    explain: Option<PathBuf>,
    /// The other files to write for this slide.
    exports: Vec<(exports::Format, PathBuf)>,
    max_pixels: u64,
    quiet: bool,
    report: &'a (dyn Fn(usize, usize) -> bool + Sync),
}

/// The record's heatmap (path, level-0 pixels per heatmap pixel), and each class's own.
type Heatmaps = (Option<(String, f64)>, Vec<Option<String>>);

/// One input's answer in slide mode.
struct Predicted {
    outcome: Outcome,
    /// For a slide (also one without tissue): its summary.
    summary: Option<Summary>,
    result: Option<SlideResult>,
}

/// Standard input's bytes, shared by the slide reader and, for a patch, the preprocessor.
#[derive(Clone)]
struct Shared(Arc<Vec<u8>>);

/// Where an input's bytes are.
enum Origin<'a> {
    File(&'a Path),
    Stdin(Shared),
}

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Slide<'_> {
    /// One input: a slide when larger than the window (its most suspicious window's prediction and
    /// a summary, or an error record with the summary when it holds no tissue), else a single patch
    /// exactly as plain predict answers it. A decoder that panics costs this input only.
    fn predict(&self, item: &Item) -> Predicted {
        match crate::pipeline::decoding(|| self.try_predict(item)) {
            Ok(done) => done,
            Err(why) => Predicted {
                outcome: Outcome::Failed(why.to_string()),
                summary: None,
                result: None,
            },
        }
    }

    fn try_predict(&self, item: &Item) -> Result<Predicted, SlideError> {
        let input = item
            .as_ref()
            .map_err(|u| SlideError::Input(u.message.clone()))?;
        let choice = &self.options.choice;
        let origin = match &input.source {
            Source::File(path) => Origin::File(path),
            Source::Dicom(series) => Origin::File(series.opened_by()),
            Source::Stdin => Origin::Stdin(Shared(Arc::new(read_stdin(MAX_STDIN_BYTES)?))),
        };
        let opened = match &origin {
            Origin::File(path) => rows::open(path, self.max_pixels, choice)?,
            Origin::Stdin(bytes) => rows::from_bytes(bytes.clone(), self.max_pixels, choice)?,
        };
        let [_, wh, ww] = self.engine.preprocessor().input_shape();
        let rows::Opened {
            mut rows,
            whole,
            plan,
        } = opened;
        if plan.level0.0 <= ww && plan.level0.1 <= wh {
            drop(rows);
            let prepared = self.patch(&origin)?;
            let answer = self.engine.infer_each(0, &[&prepared]).remove(0)?;
            return Ok(Predicted {
                outcome: Outcome::Predicted(answer),
                summary: None,
                result: None,
            });
        }
        let (width, height) = rows.size();
        if !self.quiet {
            if let Some(format) = whole {
                crate::messages::note!(
"note: {}: {format} cannot be read in strips; the whole {width}x{height} image was decoded",
                    input.display
                );
            }
            if let Some(note) = &plan.note {
                crate::messages::note!("note: {}: {note}", input.display);
            }
        }
        if let (Some((x, y)), Some((mean, _))) = (plan.anisotropic, plan.mpp) {
            crate::messages::warning!(
                "{}: the slide's pixels are not square ({x} um across, {y} um down): analysed as square pixels of their mean, {mean} um",
                input.display
            );
        }
        if let (Some((declared, source)), Some((given, _))) = (plan.overridden, plan.mpp) {
            crate::messages::warning!(
                "{}: the slide declares {declared} um per pixel ({source}); --override-slide-mpp analyses it as {given}",
                input.display
            );
        }
        let bar = progress(&input.display, self.quiet);
        let result = scan::predict(
            self.engine,
            rows.as_mut(),
            plan,
            self.options,
            &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                (self.report)(done, total)
            },
        );
        bar.finish_and_clear();
        self.finish(&input.display, result?)
    }

    /// A patch's model input, by single patches' own path (decoding, colour, resize policy).
    fn patch(&self, origin: &Origin) -> Result<Prepared, ReadError> {
        let pre = self.engine.preprocessor();
        Ok(match origin {
            Origin::File(path) => {
                let file = std::fs::File::open(path).map_err(ReadError::Io)?;
                pre.prepare_from(BufReader::new(file))?
            }
            Origin::Stdin(bytes) => pre.prepare(bytes.as_ref())?,
        })
    }

    /// A scanned slide's record: its files written, its prediction and its summary (an error
    /// record with the summary when it holds no tissue).
    fn finish(&self, display: &str, result: SlideResult) -> Result<Predicted, SlideError> {
        let provenance = Provenance::new(
            self.identity,
            &result.plan,
            provenance::Settings {
                window: result.window,
                stride: result.stride,
                threshold: result.threshold,
                tissue_threshold: self.options.tissue_threshold,
                smooth: self.options.smooth,
            },
        );
        let mpp = result.plan.mpp.map(|(m, _)| provenance::rounded(m));
        if let Some(why) = result.no_tissue() {
            let classes = classes::summaries(&result, mpp, &[]);
            return Ok(Predicted {
                outcome: Outcome::Failed(why),
                summary: Some(Summary::new(
                    &result,
                    &provenance,
                    None,
                    classes,
                    Vec::new(),
                )),
                result: Some(result),
            });
        }
        if let (Some(warning), false) = (result.warning(), self.quiet) {
            crate::messages::warning!("{display}: {warning}");
        }
        let (heatmap, class_heatmaps) = self.heatmaps(&result, &provenance)?;
        let written = self.write_files(display, &result, &provenance)?;
        let classes = classes::summaries(&result, mpp, &class_heatmaps);
        let outcome = Outcome::Predicted(self.slide_prediction(&result, &classes));
        Ok(Predicted {
            outcome,
            summary: Some(Summary::new(
                &result,
                &provenance,
                heatmap,
                classes,
                written,
            )),
            result: Some(result),
        })
    }

    /// Writes the mask, the explanation and the exports asked for; what each file is and where.
    fn write_files(
        &self,
        display: &str,
        result: &SlideResult,
        provenance: &Provenance,
    ) -> Result<Vec<(&'static str, String)>, SlideError> {
        let mut written = Vec::new();
        if let Some(path) = &self.mask {
            classes::write_mask(result, provenance, path)?;
            written.push(("mask", path.display().to_string()));
        }
        if let (Some(path), Some(input), Some(focus), Some(engine)) = (
            &self.explain,
            &result.hotspot_input,
            result.focus,
            self.engine.engine(),
        ) {
            crate::attribution_png::explain_to(engine, self.identity, path, input, focus)?;
            written.push(("explanation", path.display().to_string()));
        }
        let export = exports::Export {
            result,
            provenance,
            slide: display,
        };
        for (format, path) in &self.exports {
            format.write(&export, path)?;
            written.push((format.key(), path.display().to_string()));
        }
        Ok(written)
    }
    /// The slide's own answer: its most suspicious window's for the focus class (binary, or
    /// multiclass with --class), the mean over tissue windows for a multiclass model without one,
    /// each class's share of the analysed tissue for segmentation.
    fn slide_prediction(&self, result: &SlideResult, classes: &[ClassSummary]) -> Prediction {
        let post = self.engine.postprocessor();
        let n = result.labels.len();
        match (result.kind, result.focus) {
            (OutputKind::Segmentation, _) => Prediction::Segmentation(SegmentationPrediction {
                width: result.plan.level0.0,
                height: result.plan.level0.1,
                mask: Vec::new(),
                fractions: classes.iter().map(|c| c.fraction.unwrap_or(0.0)).collect(),
            }),
            (OutputKind::Binary, _) => {
                Prediction::Class(post.binary(result.max_probability().unwrap_or(0.0)))
            }
            (_, Some(f)) => {
                let k = (0..result.tiles.len())
                    .filter_map(|k| result.score(k, f).map(|p| (k, p)))
                    .fold(None, |best: Option<(usize, f32)>, (k, p)| match best {
                        Some((_, b)) if b >= p => best,
                        _ => Some((k, p)),
                    })
                    .map_or(0, |(k, _)| k);
                Prediction::Class(post.multiclass(&result.scores[k * n..(k + 1) * n]))
            }
            (_, None) => {
                let mut mean = vec![0.0f64; n];
                let mut count = 0usize;
                for k in 0..result.tiles.len() {
                    if (0..n).all(|c| result.score(k, c).is_some()) {
                        for (c, m) in mean.iter_mut().enumerate() {
                            *m += f64::from(result.scores[k * n + c]);
                        }
                        count += 1;
                    }
                }
                let mean: Vec<f32> = mean
                    .iter()
                    .map(|m| (m / count.max(1) as f64) as f32)
                    .collect();
                Prediction::Class(post.multiclass(&mean))
            }
        }
    }

    /// Writes the heatmap (the focus class's), or one per class for a multiclass model without a
    /// focus class (`map.png` -> `map.<label>.png`); the record's heatmap and each class's.
    fn heatmaps(
        &self,
        result: &SlideResult,
        provenance: &Provenance,
    ) -> Result<Heatmaps, WriteError> {
        let Some((path, options)) = self.heatmap else {
            return Ok((None, Vec::new()));
        };
        let write = |class: usize, path: &Path| -> Result<f64, WriteError> {
            if heatmap::is_tiff(path) {
                let label = &result.labels[class];
                heatmap_tiff::write(result, &result.cells[class], provenance, label, path)?;
                return Ok(1.0);
            }
            let (png, downsample) = heatmap::png(result, options, provenance, class);
            crate::output_file::write_file(path, &png).map_err(|error| WriteError {
                what: "heatmap",
                path: path.to_path_buf(),
                error,
            })?;
            Ok(downsample)
        };
        match result.focus {
            Some(f) => {
                let downsample = write(f, path)?;
                Ok((Some((path.display().to_string(), downsample)), Vec::new()))
            }
            None => {
                let mut each = Vec::new();
                for (c, label) in result.labels.iter().enumerate() {
                    let named = heatmap::class_path(path, label);
                    write(c, &named)?;
                    each.push(Some(named.display().to_string()));
                }
                Ok((None, each))
            }
        }
    }
}

fn progress(name: &str, quiet: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} {pos}/{len} windows [{wide_bar}] {per_sec} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}
