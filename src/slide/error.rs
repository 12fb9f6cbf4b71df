//! Why one input of a slide run has no result: reading it, the run's settings, the model, or an
//! output file. Each becomes that input's error record, with the message it displays.

use super::rows::{ReadError, MAX_BAND_BYTES};
use crate::records::OutputKind;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SlideError {
    /// The input could not be listed, as the inputs layer says.
    #[error("{0}")]
    Input(String),
    /// Standard input could not be read.
    #[error(transparent)]
    Stdin(#[from] crate::inputs::ReadError),
    /// A decoder panicked on this input.
    #[error(transparent)]
    Crashed(#[from] crate::pipeline::DecoderCrashed),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// More windows than `limit`, scan's most.
    #[error("the slide's {width}x{height} pixels make {windows} windows at stride {stride}; scancer predicts up to {limit} windows a slide (use a larger --stride, --level or --mpp)")]
    TooManyWindows {
        width: usize,
        height: usize,
        windows: usize,
        stride: usize,
        limit: usize,
    },
    #[error("a band of {width}x{rows} pixels is over {} MiB", MAX_BAND_BYTES >> 20)]
    Band { width: usize, rows: usize },
    /// Masks over `limit` bytes, scan's most.
    #[error("the slide's segmentation masks need over {} MiB: analyse it at a coarser resolution (--mpp, --level) or a larger --stride", limit >> 20)]
    MasksTooLarge { limit: usize },
    #[error("a raw model's output has no classes to map")]
    RawOutput,
    /// Whoever asked for the slide stopped waiting for it (a cancelled analysis).
    #[error("cancelled")]
    Cancelled,
    /// A window's (or a patch's) forward pass.
    #[error(transparent)]
    Model(#[from] crate::engine::EngineError),
    /// Explaining the hotspot window.
    #[error(transparent)]
    Explain(#[from] crate::attribution_png::ExplainError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// An output file of a slide (heatmap, mask, export) that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the {what} {}: {}", .path.display(), crate::inputs::io_message(.error))]
pub(crate) struct WriteError {
    /// What the file is ("heatmap", "mask", an export's key).
    pub(crate) what: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) error: io::Error,
}

/// A slide run's settings that do not suit the model, or each other.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum UsageError {
    #[error("slides need a model with classes (kind = \"binary\", \"multiclass\" or \"segmentation\"); a raw model's output has nothing to map")]
    RawModel,
    #[error("--stride {stride} must be between 1 and the window size ({window})")]
    Stride { stride: usize, window: usize },
    /// `--class NAME` names none of `labels` (joined for the message).
    #[error("--class {name:?} is not one of the model's classes ({labels})")]
    UnknownClass { name: String, labels: String },
    #[error("--class picks one class of a multiclass model; this model's kind is \"{kind}\"")]
    ClassNeedsMulticlass { kind: OutputKind },
    /// A class index past the model's classes (known once the model is loaded).
    #[error("--class {class}: the model has {classes} classes")]
    ClassIndex { class: usize, classes: usize },
    #[error("a segmentation model's slides get a class mask (written to --mask-dir), not a probability heatmap: leave out --heatmap")]
    SegmentationHeatmap,
    #[error("--lesions lists the regions of one class: name it with --class (a multiclass model), or use a binary model")]
    LesionsNeedClass,
    #[error("--explain explains a slide's hotspot towards one class: name it with --class (a multiclass model)")]
    ExplainNeedsClass,
    #[error("--wsinfer-out writes class probabilities (WSInfer's patch classifiers): a {0} model has none")]
    WsinferNeedsClasses(OutputKind),
}
