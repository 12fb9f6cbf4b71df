//! What the model answered for one input, by output kind; the engine makes these from the model's
//! output, and a remote server's answers are read back into them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of answer a model gives (the handler configuration's `output.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OutputKind {
    /// One logit per image -> sigmoid -> threshold.
    Binary,
    /// N logits per image -> softmax -> top-k.
    Multiclass,
    /// Per-pixel logits [N, C, H, W] -> class mask.
    Segmentation,
    /// The output tensor as numbers.
    Raw,
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputKind::Binary => "binary",
            OutputKind::Multiclass => "multiclass",
            OutputKind::Segmentation => "segmentation",
            OutputKind::Raw => "raw",
        })
    }
}

/// The answer for one image.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prediction {
    Class(ClassPrediction),
    Segmentation(SegmentationPrediction),
    Raw(RawPrediction),
}

/// Binary or multiclass: the predicted class and the probabilities behind it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClassPrediction {
    pub(crate) class: usize,
    pub(crate) label: String,
    /// Probability of the predicted class.
    pub(crate) score: f32,
    /// Probability of every class, in class order.
    pub(crate) probabilities: Vec<f32>,
    /// Classes to report, most probable first: both for binary, the top k for multiclass.
    pub(crate) ranked: Vec<usize>,
}

/// A per-pixel class mask at the model's output resolution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegmentationPrediction {
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// Class index per pixel, row-major.
    pub(crate) mask: Vec<u8>,
    /// Fraction of the pixels in each class, in class order.
    pub(crate) fractions: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawPrediction {
    /// The per-image output shape (without the batch dimension).
    pub(crate) shape: Vec<usize>,
    pub(crate) values: Vec<f32>,
}
