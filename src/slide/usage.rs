//! A slide run's settings checked against the model and against each other before any slide is
//! read: what is wrong here is the command's, not one slide's.

use crate::engine::handler_config::HandlerConfig;
use crate::records::OutputKind;

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
}

/// Checks a slide run's settings against the model before any slide is read: these are usage
/// errors, not one slide's. The stride, and the focus class (binary: the positive class;
/// multiclass: `--class`).
pub(crate) fn check(
    engine_config: &HandlerConfig,
    stride: Option<usize>,
    class: Option<&str>,
) -> Result<(usize, Option<usize>), UsageError> {
    let kind = engine_config.output.kind;
    if kind == OutputKind::Raw {
        return Err(UsageError::RawModel);
    }
    let (ww, wh) = (
        engine_config.input.width as usize,
        engine_config.input.height as usize,
    );
    let window = ww.min(wh);
    let stride = stride.unwrap_or(window);
    if stride == 0 || stride > window {
        return Err(UsageError::Stride { stride, window });
    }
    let labels = engine_config.output.labels.clone().unwrap_or_default();
    let focus = match (kind, class) {
        (OutputKind::Multiclass, Some(name)) => Some(
            labels
                .iter()
                .position(|l| l == name)
                .or_else(|| {
                    // A class index, where the configuration names no classes.
                    name.parse::<usize>()
                        .ok()
                        .filter(|&i| labels.is_empty() || i < labels.len())
                })
                .ok_or_else(|| UsageError::UnknownClass {
                    name: name.to_string(),
                    labels: labels.join(", "),
                })?,
        ),
        (OutputKind::Multiclass | OutputKind::Segmentation, None) => None,
        (_, Some(_)) => return Err(UsageError::ClassNeedsMulticlass { kind }),
        _ => Some(1),
    };
    Ok((stride, focus))
}

/// Usage errors of the outputs asked for, before any slide is read.
pub(crate) fn check_outputs(
    kind: OutputKind,
    focus: Option<usize>,
    heatmap: bool,
    lesions: bool,
) -> Result<(), UsageError> {
    if kind == OutputKind::Segmentation && heatmap {
        return Err(UsageError::SegmentationHeatmap);
    }
    if lesions && focus.is_none() {
        return Err(UsageError::LesionsNeedClass);
    }
    Ok(())
}
