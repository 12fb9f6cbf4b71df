//! A slide run's settings checked against the model and against each other before any slide is
//! read: what is wrong here is the command's, not one slide's.

pub(crate) use super::error::UsageError;
use super::exports::Format;
use super::types::SlideOptions;
use crate::engine::handler_config::HandlerConfig;
use crate::records::OutputKind;
use std::path::PathBuf;

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
fn check_outputs(
    kind: OutputKind,
    focus: Option<usize>,
    asked: &Asked,
    lesions: bool,
) -> Result<(), UsageError> {
    if kind == OutputKind::Segmentation && asked.heatmap {
        return Err(UsageError::SegmentationHeatmap);
    }
    if lesions && focus.is_none() {
        return Err(UsageError::LesionsNeedClass);
    }
    if asked.explain && focus.is_none() {
        return Err(UsageError::ExplainNeedsClass);
    }
    Ok(())
}

/// The per-slide files a run asks for besides the exports.
pub(crate) struct Asked {
    pub(crate) heatmap: bool,
    pub(crate) explain: bool,
}

/// A slide run's settings and outputs against the model, before any slide is read or any output
/// touched: the heatmap and explanations `asked` for, and `exports`.
pub(crate) fn check_run(
    engine_config: &HandlerConfig,
    options: &SlideOptions,
    asked: &Asked,
    exports: &[(Format, PathBuf)],
) -> Result<(), UsageError> {
    let (_, focus) = check(engine_config, options.stride, options.class.as_deref())?;
    let lesions = exports.iter().any(|(f, _)| *f == Format::LesionsCsv);
    let kind = engine_config.output.kind;
    if exports.iter().any(|(f, _)| f.wsinfer_folder().is_some())
        && !matches!(kind, OutputKind::Binary | OutputKind::Multiclass)
    {
        return Err(UsageError::WsinferNeedsClasses(kind));
    }
    check_outputs(kind, focus, asked, lesions)
}
