//! Scanning a slide: the window grid read band by band, each window judged by the tissue test, and
//! the tissue windows run through the engine in batches. Reading, decoding, the tissue test and
//! preprocessing run on the calling thread while the engine's lanes run the forward passes, so that
//! a slide goes at the speed of the slower of the two instead of their sum.

use super::classes::{self, Windows};
use super::error::SlideError;
use super::model::SlideModel;
use super::regions::Grid;
use super::resolution::Plan;
use super::rows::{self, Rows};
use super::tissue;
use super::types::{SlideOptions, SlideResult, Tile};
use super::usage::{self, UsageError};
use crate::engine::preprocess::{convert, Prepared};
use crate::engine::EngineError;
use crate::records::{OutputKind, Prediction};
use image::{DynamicImage, RgbImage};

/// The most windows of one slide (a 200,000 x 100,000 scan at stride 48 has 8.7 million).
pub(crate) const MAX_WINDOWS: usize = 1 << 24;

/// The most bytes of segmentation masks a slide may hold (its windows' masks, stitched on output).
pub(crate) const MAX_MASK_BYTES: usize = 2 << 30;

/// Window origins along one side: from 0 every `stride`, until a window reaches the far edge.
pub(crate) fn origins(length: usize, window: usize, stride: usize) -> Vec<usize> {
    let count = if length <= window {
        1
    } else {
        (length - window).div_ceil(stride) + 1
    };
    (0..count).map(|k| k * stride).collect()
}

/// What reading hands over.
enum Read {
    /// The next windows of the grid, in raster order.
    Tiles(Vec<Tile>),
    /// Tissue windows ready for the model: (tile index, input).
    Batch(Vec<(usize, Prepared)>),
}

/// What the reader leaves at the end.
type Thumbnail = Option<(RgbImage, usize)>;

/// Predicts every window of a slide, and finds its regions.
pub(crate) fn predict(
    engine: &dyn SlideModel,
    rows: &mut (dyn Rows + Send),
    plan: Plan,
    options: &SlideOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<SlideResult, SlideError> {
    let config = engine.config();
    let (stride, focus) = usage::check(config, options.stride, options.class.as_deref())?;
    let pre = engine.preprocessor();
    let [_, wh, ww] = pre.input_shape();
    let (width, height) = rows.size();
    rows::check_size(width, height)?;
    let xs = origins(width, ww, stride);
    let ys = origins(height, wh, stride);
    let total = xs.len().saturating_mul(ys.len());
    if total > MAX_WINDOWS {
        return Err(SlideError::TooManyWindows {
            width,
            height,
            windows: total,
            stride,
            limit: MAX_WINDOWS,
        });
    }
    if width.saturating_mul(wh).saturating_mul(3) > rows::MAX_BAND_BYTES {
        return Err(SlideError::Band { width, rows: wh });
    }
    let labels = engine.class_labels();
    if let Some(f) = focus.filter(|&f| f >= labels.len()) {
        return Err(UsageError::ClassIndex {
            class: f,
            classes: labels.len(),
        }
        .into());
    }
    let kind = config.output.kind;
    let threshold = config.threshold();
    let mut outputs = Outputs::new(
        Filing {
            classes: labels.len(),
            focus,
            kind,
            threshold,
        },
        total,
    );
    let batch = engine.batch_size();
    let mut done = 0;
    let answer = |lane: usize, inputs: Vec<(usize, Prepared)>| {
        let prepared: Vec<&Prepared> = inputs.iter().map(|(_, p)| p).collect();
        let answers = engine.infer_each(lane, &prepared);
        (inputs, answers)
    };
    // Reading runs here while the lanes run the forward passes.
    let thumbnail = crate::engine::ordered::run_ordered(engine.lanes(), answer, |lanes| {
        // Takes what was read (None: the end), and files the answers ready (at the end, all).
        let mut take = |message: Option<Read>| -> Result<bool, SlideError> {
            let end = message.is_none();
            match message {
                Some(Read::Tiles(tiles)) => {
                    done += tiles.iter().filter(|t| !t.runs).count();
                    outputs.tiles.extend(tiles);
                    if !progress(done, total) {
                        return Err(SlideError::Cancelled);
                    }
                }
                Some(Read::Batch(inputs)) => lanes.submit(inputs),
                None => {}
            }
            while let Some((inputs, answers)) = if end { lanes.wait() } else { lanes.ready() } {
                done += inputs.len();
                outputs.file(inputs, answers)?;
                if !progress(done, total) {
                    return Err(SlideError::Cancelled);
                }
            }
            Ok(true)
        };
        let thumbnail = read(rows, pre, options, &xs, &ys, (ww, wh), batch, &mut |m| {
            take(Some(m))
        })?;
        take(None)?;
        Ok::<_, SlideError>(thumbnail)
    })?;
    let Outputs {
        tiles,
        scores,
        masks,
        mask_size,
        best,
        ..
    } = outputs.finish();
    if !progress(done, total) {
        return Err(SlideError::Cancelled);
    }
    let grid = (xs.len(), ys.len());
    let found = classes::find_regions(
        &Windows {
            kind,
            grid: Grid {
                across: grid.0,
                down: grid.1,
                stride,
                size: (width, height),
                window: (ww, wh),
                plan: &plan,
            },
            tiles: &tiles,
            scores: &scores,
            classes: labels.len(),
            threshold,
            focus,
        },
        options.smooth,
    );
    Ok(SlideResult {
        width,
        height,
        stride,
        window: (ww, wh),
        grid,
        tiles,
        threshold,
        tissue_threshold: options.tissue_threshold,
        thumbnail,
        plan,
        kind,
        labels,
        focus,
        scores,
        masks,
        mask_size,
        cells: found.cells,
        regions: found.regions,
        class_regions: found.class_regions,
        hotspot_input: best.map(|(_, _, input)| input),
    })
}

/// Reads the grid band by band: every window's tissue test, and the inputs of the windows that
/// run, sent in batches.
#[allow(clippy::too_many_arguments)]
fn read(
    rows: &mut (dyn Rows + Send),
    pre: &crate::engine::preprocess::Preprocessor,
    options: &SlideOptions,
    xs: &[usize],
    ys: &[usize],
    (ww, wh): (usize, usize),
    batch: usize,
    deliver: &mut dyn FnMut(Read) -> Result<bool, SlideError>,
) -> Result<Thumbnail, SlideError> {
    let (width, height) = rows.size();
    let color = pre.color();
    let mut thumbnail = (options.thumbnail_side > 0).then(|| {
        let scale = width.max(height).div_ceil(options.thumbnail_side).max(1);
        (
            RgbImage::from_pixel(
                width.div_ceil(scale) as u32,
                height.div_ceil(scale) as u32,
                image::Rgb([255, 255, 255]),
            ),
            scale,
        )
    });
    let mut band = vec![0u8; width * wh * 3];
    let mut pending: Vec<(usize, Prepared)> = Vec::with_capacity(batch);
    let mut index = 0;
    for &y in ys {
        rows.read(y, wh, &mut band)?;
        if let Some((thumb, scale)) = &mut thumbnail {
            sample_thumbnail(thumb, *scale, &band, width, y, wh);
        }
        let mut tiles = Vec::with_capacity(xs.len());
        let mut ready = Vec::new();
        for &x in xs {
            let saturation = tissue::mean_saturation(&band, width, height, x, y, ww, wh);
            let is_tissue = f64::from(saturation) > options.tissue_threshold;
            let runs = is_tissue || options.all_tiles;
            if runs {
                let tile = window(&band, width, x, ww, wh);
                let pixels = convert(DynamicImage::ImageRgb8(tile), color);
                pending.push((index, pre.normalize(&pixels)));
                if pending.len() == batch {
                    ready.push(std::mem::replace(&mut pending, Vec::with_capacity(batch)));
                }
            }
            tiles.push(Tile {
                x,
                y,
                width: ww,
                height: wh,
                saturation,
                tissue: is_tissue,
                runs,
                probability: None,
                class: None,
            });
            index += 1;
        }
        // Tiles first: a batch refers to them. A receiver that stopped ends the reading.
        if !deliver(Read::Tiles(tiles))? {
            return Ok(thumbnail);
        }
        for inputs in ready {
            if !deliver(Read::Batch(inputs))? {
                return Ok(thumbnail);
            }
        }
    }
    if !pending.is_empty() {
        deliver(Read::Batch(pending))?;
    }
    Ok(thumbnail)
}

/// How the windows' answers are filed.
#[derive(Clone, Copy)]
struct Filing {
    classes: usize,
    focus: Option<usize>,
    kind: OutputKind,
    /// Binary: the positive class's threshold.
    threshold: f32,
}

/// What the windows and their answers are gathered into before they are the result's.
struct Outputs {
    filing: Filing,
    /// Every window read so far, in raster order.
    tiles: Vec<Tile>,
    /// Per tile and class (NaN: not run).
    scores: Vec<f32>,
    masks: Vec<Option<Box<[u8]>>>,
    mask_size: (usize, usize),
    mask_bytes: usize,
    /// The focus class's most probable tissue window so far (the first of equals): its index,
    /// probability and model input, for `--explain`.
    best: Option<(usize, f32, Prepared)>,
}

impl Outputs {
    fn new(filing: Filing, windows: usize) -> Outputs {
        Outputs {
            filing,
            tiles: Vec::with_capacity(windows),
            scores: Vec::new(),
            masks: Vec::new(),
            mask_size: (0, 0),
            mask_bytes: 0,
            best: None,
        }
    }

    /// Scores and masks for every window (NaN and none for those not run).
    fn finish(mut self) -> Outputs {
        let windows = self.tiles.len();
        self.scores.resize(windows * self.filing.classes, f32::NAN);
        self.masks.resize(windows, None);
        self
    }

    /// Files each answer of a batch under its tile.
    fn file(
        &mut self,
        inputs: Vec<(usize, Prepared)>,
        answers: Vec<Result<Prediction, EngineError>>,
    ) -> Result<(), SlideError> {
        let predictions = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
        let Filing {
            classes,
            focus,
            kind,
            threshold,
        } = self.filing;
        for ((k, input), prediction) in inputs.iter().zip(predictions) {
            let k = *k;
            match prediction {
                Prediction::Class(c) => {
                    if self.scores.len() < (k + 1) * classes {
                        self.scores.resize((k + 1) * classes, f32::NAN);
                    }
                    self.scores[k * classes..(k + 1) * classes].copy_from_slice(&c.probabilities);
                    let tile = &mut self.tiles[k];
                    tile.class = Some(c.class);
                    tile.probability = Some(match focus {
                        Some(f) => c.probabilities[f],
                        None => c.score,
                    });
                    if kind == OutputKind::Binary {
                        tile.class = Some(usize::from(c.probabilities[1] > threshold));
                    }
                    if let (Some(f), true) = (focus, tile.tissue) {
                        let p = c.probabilities[f];
                        if self.best.as_ref().is_none_or(|(_, b, _)| p > *b) {
                            self.best = Some((k, p, input.clone()));
                        }
                    }
                }
                Prediction::Segmentation(s) => {
                    self.mask_bytes += s.mask.len();
                    if self.mask_bytes > MAX_MASK_BYTES {
                        return Err(SlideError::MasksTooLarge {
                            limit: MAX_MASK_BYTES,
                        });
                    }
                    self.mask_size = (s.width, s.height);
                    if self.masks.len() <= k {
                        self.masks.resize(k + 1, None);
                    }
                    // The window's class: its most frequent pixel class.
                    let class = s
                        .fractions
                        .iter()
                        .enumerate()
                        .fold((0, f32::MIN), |b, (c, &f)| if f > b.1 { (c, f) } else { b })
                        .0;
                    let tile = &mut self.tiles[k];
                    tile.class = Some(class);
                    tile.probability = Some(s.fractions[class]);
                    self.masks[k] = Some(s.mask.into_boxed_slice());
                }
                Prediction::Raw(_) => return Err(SlideError::RawOutput),
            }
        }
        Ok(())
    }
}

/// The window at `x` of a band, white beyond the right edge.
fn window(band: &[u8], width: usize, x: usize, ww: usize, wh: usize) -> RgbImage {
    let mut tile = RgbImage::from_pixel(ww as u32, wh as u32, image::Rgb([255, 255, 255]));
    let inside = width.saturating_sub(x).min(ww);
    for row in 0..wh {
        // Rows below the slide are already white in the band.
        let from = (row * width + x) * 3;
        let to = row * ww * 3;
        tile.as_mut()[to..to + inside * 3].copy_from_slice(&band[from..from + inside * 3]);
    }
    tile
}

/// Nearest-pixel samples of the band's rows into the thumbnail.
fn sample_thumbnail(
    thumb: &mut RgbImage,
    scale: usize,
    band: &[u8],
    width: usize,
    y: usize,
    rows: usize,
) {
    for ty in 0..thumb.height() as usize {
        let sy = ty * scale + scale / 2;
        if sy < y || sy >= y + rows {
            continue;
        }
        let row = &band[(sy - y) * width * 3..];
        for tx in 0..thumb.width() as usize {
            let sx = (tx * scale + scale / 2).min(width - 1);
            thumb.put_pixel(
                tx as u32,
                ty as u32,
                image::Rgb([row[sx * 3], row[sx * 3 + 1], row[sx * 3 + 2]]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_origins_cover_the_slide() {
        assert_eq!(origins(96, 96, 96), [0]);
        assert_eq!(origins(50, 96, 96), [0]);
        assert_eq!(origins(97, 96, 96), [0, 96]);
        assert_eq!(origins(300, 96, 96), [0, 96, 192, 288]);
        assert_eq!(origins(300, 96, 48), [0, 48, 96, 144, 192, 240]);
    }
}
