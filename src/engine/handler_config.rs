//! The handler configuration: a small TOML file that says how images become the model's input tensor
//! and how its output becomes an answer. It plays the role of a TorchServe handler, declaratively, so
//! `predict`, `serve` and `.mar` archives all share one definition.
//!
//! ```toml
//! [input]
//! height = 96
//! width = 96
//! color = "rgb"                 # "rgb" | "grayscale"
//! mean = [0.5, 0.5, 0.5]        # ToTensor() then Normalize(mean, std)
//! std = [0.5, 0.5, 0.5]
//! resize = "reject"             # "reject" | "stretch" | "shorter-side-crop"
//! # resize_shorter_side = 256   # with "shorter-side-crop": Resize(256) then CenterCrop(height, width)
//!
//! [output]
//! kind = "binary"               # "binary" | "multiclass" | "segmentation" | "raw"
//! threshold = 0.5               # binary (and one-channel segmentation)
//! labels = ["normal", "metastatic"]
//! # top_k = 5                   # multiclass
//! ```

pub(crate) use crate::records::OutputKind;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The largest side scancer accepts for a model input; larger configs are typos, not models.
const MAX_INPUT_SIDE: u32 = 16_384;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandlerConfig {
    pub(crate) input: InputConfig,
    pub(crate) output: OutputConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputConfig {
    pub(crate) height: u32,
    pub(crate) width: u32,
    #[serde(default)]
    pub(crate) color: Color,
    /// Per-channel mean and std of `Normalize`; default: no normalisation (0 and 1).
    pub(crate) mean: Option<Vec<f32>>,
    pub(crate) std: Option<Vec<f32>>,
    #[serde(default)]
    pub(crate) resize: ResizePolicy,
    /// With `resize = "shorter-side-crop"`: the shorter side after resizing (torchvision's
    /// `Resize(n)`); default: the larger of height and width.
    pub(crate) resize_shorter_side: Option<u32>,
    /// A patch model: `scancer predict` cuts images larger than the input into windows (a whole
    /// slide) instead of refusing or resizing them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) patch: bool,
    /// The resolution the model was trained at, in microns per pixel (PCam: 0.972, 10x): slides
    /// are read at the pyramid level that gives it unless `--level`, `--mpp` or `--magnification`
    /// says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mpp: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Color {
    #[default]
    Rgb,
    Grayscale,
}

impl Color {
    pub(crate) fn channels(self) -> usize {
        match self {
            Color::Rgb => 3,
            Color::Grayscale => 1,
        }
    }
}

/// What to do with an image whose size differs from the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ResizePolicy {
    /// An error record for that image.
    #[default]
    Reject,
    /// Bilinear resize to exactly height x width (aspect ratio not kept).
    Stretch,
    /// torchvision `Resize(shorter_side)` then `CenterCrop((height, width))`.
    ShorterSideCrop,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputConfig {
    pub(crate) kind: OutputKind,
    /// Probability above which a binary output is class 1.
    pub(crate) threshold: Option<f32>,
    pub(crate) labels: Option<Vec<String>>,
    /// Multiclass: how many classes to report, most probable first (TorchServe reports 5).
    pub(crate) top_k: Option<usize>,
}

/// A configuration that could not be read or does not make sense; the message is one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConfigError(String);

impl HandlerConfig {
    pub(crate) fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let text = Self::read_text(path)?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// A configuration file's text.
    pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "{}: cannot read handler configuration: {e}",
                path.display()
            ))
        })
    }

    pub(crate) fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: HandlerConfig =
            toml::from_str(text).map_err(|e| ConfigError(toml_error(text, &e)))?;
        config.validate()?;
        Ok(config)
    }

    pub(crate) fn threshold(&self) -> f32 {
        self.output.threshold.unwrap_or(0.5)
    }

    pub(crate) fn top_k(&self) -> usize {
        self.output.top_k.unwrap_or(5)
    }

    pub(crate) fn mean(&self) -> Vec<f32> {
        self.input
            .mean
            .clone()
            .unwrap_or_else(|| vec![0.0; self.input.color.channels()])
    }

    pub(crate) fn std(&self) -> Vec<f32> {
        self.input
            .std
            .clone()
            .unwrap_or_else(|| vec![1.0; self.input.color.channels()])
    }

    pub(crate) fn resize_shorter_side(&self) -> u32 {
        self.input
            .resize_shorter_side
            .unwrap_or(self.input.height.max(self.input.width))
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        let input = &self.input;
        for (name, side) in [("input.height", input.height), ("input.width", input.width)] {
            if side == 0 || side > MAX_INPUT_SIDE {
                return bad(format!(
                    "{name} = {side} is out of range (1 to {MAX_INPUT_SIDE})"
                ));
            }
        }
        let channels = input.color.channels();
        for (name, values) in [("input.mean", &input.mean), ("input.std", &input.std)] {
            if let Some(values) = values {
                if values.len() != channels {
                    return bad(format!(
                        "{name} has {} values but color = \"{}\" has {channels} channel(s)",
                        values.len(),
                        if channels == 3 { "rgb" } else { "grayscale" }
                    ));
                }
                if values.iter().any(|v| !v.is_finite()) {
                    return bad(format!("{name} must hold finite numbers"));
                }
            }
        }
        if let Some(mpp) = input.mpp {
            if !(0.01..=50.0).contains(&mpp) {
                return bad(format!(
                    "input.mpp = {mpp} is out of range (0.01 to 50 microns per pixel)"
                ));
            }
        }
        if input.std.iter().flatten().any(|&s| s <= 0.0) {
            return bad("input.std values must be greater than 0".into());
        }
        match (input.resize, input.resize_shorter_side) {
            (ResizePolicy::ShorterSideCrop, Some(0)) => {
                return bad("input.resize_shorter_side must be at least 1".into())
            }
            (ResizePolicy::ShorterSideCrop, Some(n)) if n > MAX_INPUT_SIDE => {
                return bad(format!(
                    "input.resize_shorter_side = {n} is out of range (1 to {MAX_INPUT_SIDE})"
                ))
            }
            (ResizePolicy::Reject | ResizePolicy::Stretch, Some(_)) => {
                return bad(
                    "input.resize_shorter_side only applies with resize = \"shorter-side-crop\""
                        .into(),
                )
            }
            _ => {}
        }
        let out = &self.output;
        if let Some(t) = out.threshold {
            if !(t > 0.0 && t < 1.0) {
                return bad(format!(
                    "output.threshold = {t} must be between 0 and 1 (exclusive)"
                ));
            }
            if !matches!(out.kind, OutputKind::Binary | OutputKind::Segmentation) {
                return bad(format!(
                    "output.threshold does not apply to kind = \"{}\"",
                    out.kind
                ));
            }
        }
        if let Some(k) = out.top_k {
            if out.kind != OutputKind::Multiclass {
                return bad(format!(
                    "output.top_k does not apply to kind = \"{}\"",
                    out.kind
                ));
            }
            if k == 0 {
                return bad("output.top_k must be at least 1".into());
            }
        }
        if let Some(labels) = &out.labels {
            match out.kind {
                OutputKind::Binary if labels.len() != 2 => {
                    return bad(format!(
                        "kind = \"binary\" needs exactly 2 labels, got {}",
                        labels.len()
                    ))
                }
                OutputKind::Multiclass | OutputKind::Segmentation if labels.len() < 2 => {
                    return bad(format!(
                        "kind = \"{}\" needs at least 2 labels, got {}",
                        out.kind,
                        labels.len()
                    ))
                }
                OutputKind::Raw => {
                    return bad("output.labels do not apply to kind = \"raw\"".into())
                }
                _ => {}
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
                return bad(format!("output.labels names \"{dup}\" twice"));
            }
        }
        Ok(())
    }
}

/// toml's own message spans several lines with a source excerpt; keep one line with the position.
fn toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("invalid handler configuration at line {line}, column {column}: {message}")
        }
        None => format!("invalid handler configuration: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCAM: &str = r#"
        [input]
        height = 96
        width = 96
        mean = [0.5, 0.5, 0.5]
        std = [0.5, 0.5, 0.5]
        [output]
        kind = "binary"
        labels = ["normal", "metastatic"]
    "#;

    #[test]
    fn parses_pcam_with_defaults() {
        let c = HandlerConfig::from_toml(PCAM).unwrap();
        assert_eq!((c.input.height, c.input.width), (96, 96));
        assert_eq!(c.input.color, Color::Rgb);
        assert_eq!(c.input.resize, ResizePolicy::Reject);
        assert_eq!(c.threshold(), 0.5);
        assert_eq!(
            crate::engine::postprocess::Postprocessor::new(&c).label(1),
            "metastatic"
        );
    }

    #[test]
    fn unlabelled_classes_print_as_indices() {
        let c =
            HandlerConfig::from_toml(&PCAM.replace("labels = [\"normal\", \"metastatic\"]", ""))
                .unwrap();
        let post = crate::engine::postprocess::Postprocessor::new(&c);
        assert_eq!(post.label(0), "0");
        assert_eq!(post.label(1), "1");
    }

    fn err(text: &str) -> String {
        HandlerConfig::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_errors_with_a_position() {
        let e = err(&PCAM.replace("height = 96", "height = 96\nheigth = 96"));
        assert!(e.contains("unknown field `heigth`"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn wrong_shapes_and_values_are_errors() {
        assert!(err(&PCAM.replace("mean = [0.5, 0.5, 0.5]", "mean = [0.5]"))
            .contains("input.mean has 1 values"));
        assert!(
            err(&PCAM.replace("std = [0.5, 0.5, 0.5]", "std = [0.5, 0, 0.5]"))
                .contains("greater than 0")
        );
        assert!(err(&PCAM.replace("height = 96", "height = 0")).contains("out of range"));
        assert!(
            err(&PCAM.replace("\"binary\"", "\"binary\"\nthreshold = 1.5"))
                .contains("between 0 and 1")
        );
        assert!(err(&PCAM.replace("\"normal\", ", "")).contains("exactly 2 labels"));
        assert!(err(&PCAM.replace("\"binary\"", "\"binary\"\ntop_k = 3"))
            .contains("top_k does not apply"));
        assert!(
            err(&PCAM.replace("\"binary\"", "\"softmax\"")).contains("unknown variant `softmax`")
        );
        assert!(
            err(&PCAM.replace("width = 96", "width = 96\nresize_shorter_side = 100"))
                .contains("only applies with resize = \"shorter-side-crop\"")
        );
        assert!(err("[input\nheight=1").contains("line 1"));
        assert!(err(&PCAM.replace("\"normal\"", "\"metastatic\"")).contains("twice"));
    }
}
