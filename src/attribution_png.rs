//! `--explain`: an Integrated Gradients attribution as a PNG a person reads: the model's input on the
//! left (as the model saw it: after resizing, before normalisation), the same in grey on the right
//! with each pixel's attribution over it (summed over channels; red where it raised the explained
//! output, blue where it lowered it, opacity by size against the 99th percentile). Text chunks say
//! what was explained, how, and that the attributions add up (their sum against the output's
//! change from the baseline).

use crate::engine::handler_config::HandlerConfig;
use crate::engine::preprocess::Prepared;

/// What an attribution explains.
pub(crate) struct Explained<'a> {
    pub(crate) config: &'a HandlerConfig,
    pub(crate) input: &'a Prepared,
    /// `[C, H, W]`, as the input.
    pub(crate) attribution: &'a [f32],
    /// What was explained, e.g. "logit of metastatic".
    pub(crate) target: String,
    /// `key=value` lines for the text chunks (the model's sha256...).
    pub(crate) about: Vec<(String, String)>,
}

/// The model input's pixels back as 8-bit RGB: `v * std + mean`, times 255.
fn pixels(config: &HandlerConfig, input: &Prepared) -> (usize, usize, Vec<[u8; 3]>) {
    let (h, w) = (config.input.height as usize, config.input.width as usize);
    let channels = config.input.color.channels();
    let mean = config.input.mean.clone().unwrap_or(vec![0.0; channels]);
    let std = config.input.std.clone().unwrap_or(vec![1.0; channels]);
    let plane = h * w;
    let value = |c: usize, k: usize| -> u8 {
        ((input.data[c * plane + k] * std[c] + mean[c]) * 255.0)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    let rgb = (0..plane)
        .map(|k| {
            if channels == 3 {
                [value(0, k), value(1, k), value(2, k)]
            } else {
                let g = value(0, k);
                [g, g, g]
            }
        })
        .collect();
    (w, h, rgb)
}

/// The PNG bytes.
pub(crate) fn png(explained: &Explained) -> Vec<u8> {
    let (w, h, rgb) = pixels(explained.config, explained.input);
    let plane = w * h;
    let channels = explained.attribution.len() / plane.max(1);
    let per_pixel: Vec<f32> = (0..plane)
        .map(|k| {
            (0..channels)
                .map(|c| explained.attribution[c * plane + k])
                .sum()
        })
        .collect();
    let mut sizes: Vec<f32> = per_pixel.iter().map(|a| a.abs()).collect();
    sizes.sort_by(f32::total_cmp);
    let scale = sizes[(sizes.len() * 99 / 100).min(sizes.len() - 1)].max(f32::MIN_POSITIVE);
    // Small inputs are shown larger, whole pixels each, so that 96 x 96 reads on a screen.
    let zoom = 256usize.div_ceil(w.min(h)).max(1);
    let gap = 4 * zoom.min(2);
    let (out_w, out_h) = (2 * w * zoom + gap, h * zoom);
    let mut image = image::RgbImage::from_pixel(out_w as u32, out_h as u32, image::Rgb([255; 3]));
    for y in 0..h {
        for x in 0..w {
            let k = y * w + x;
            let [r, g, b] = rgb[k];
            // Grey at reduced contrast under the attribution.
            let grey =
                (0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)) * 0.5 + 96.0;
            let a = (per_pixel[k] / scale).clamp(-1.0, 1.0);
            let tint = if a >= 0.0 {
                [220.0, 30.0, 30.0]
            } else {
                [30.0, 80.0, 220.0]
            };
            let alpha = a.abs();
            let overlay = tint.map(|t| (grey * (1.0 - alpha) + t * alpha).round() as u8);
            for dy in 0..zoom {
                for dx in 0..zoom {
                    let (py, px) = ((y * zoom + dy) as u32, (x * zoom + dx) as u32);
                    image.put_pixel(px, py, image::Rgb([r, g, b]));
                    image.put_pixel(px + (w * zoom + gap) as u32, py, image::Rgb(overlay));
                }
            }
        }
    }
    let total: f64 = explained.attribution.iter().map(|&a| f64::from(a)).sum();
    let mut texts = vec![
        (
            "Description".to_string(),
            format!(
                "Integrated Gradients of the {} (15 Gauss-Legendre steps from a zero baseline in the normalised input, as TorchServe's image_classifier): left the model's input, right its attribution per pixel summed over channels, red raising the output, blue lowering it, opacity against the 99th percentile of sizes ({scale:.3e})",
                explained.target
            ),
        ),
        ("scancer:target".into(), explained.target.clone()),
        ("scancer:attribution-sum".into(), format!("{total:.6e}")),
        ("scancer:attribution-scale".into(), format!("{scale:.6e}")),
    ];
    texts.extend(
        explained
            .about
            .iter()
            .map(|(k, v)| (format!("scancer:{k}"), v.clone())),
    );
    crate::png_text::encode(&image, texts)
}

/// `--explain` for a model whose output is not a class's.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("--explain attributes a class's output: this model's kind is \"{0}\" (explanations need a binary or multiclass model)")]
pub(crate) struct NoClassOutput(crate::records::OutputKind);

/// Checks that a model of `kind` has a class's output to explain.
pub(crate) fn check_kind(kind: crate::records::OutputKind) -> Result<(), NoClassOutput> {
    use crate::records::OutputKind;
    match kind {
        OutputKind::Binary | OutputKind::Multiclass => Ok(()),
        OutputKind::Segmentation | OutputKind::Raw => Err(NoClassOutput(kind)),
    }
}

/// Why an input has no explanation: that input's error record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExplainError {
    #[error("cannot explain: {0}")]
    Explain(#[from] crate::engine::EngineError),
    #[error("cannot write the explanation {}: {}", .path.display(), crate::inputs::io_message(.error))]
    Write {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

/// Explains one model input towards `class` (a binary model: its one logit, the positive class's)
/// and writes the PNG.
pub(crate) fn explain_to(
    engine: &crate::engine::Engine,
    identity: &crate::engine::model_source::ModelIdentity,
    path: &std::path::Path,
    input: &crate::engine::preprocess::Prepared,
    class: usize,
) -> Result<(), ExplainError> {
    let binary = engine.config().output.kind == crate::records::OutputKind::Binary;
    let (column, label) = if binary {
        (0, engine.postprocessor().label(1))
    } else {
        (class, engine.postprocessor().label(class))
    };
    let explanation = engine.explain(input, column)?;
    let bytes = png(&Explained {
        config: engine.config(),
        input,
        attribution: &explanation.attribution,
        target: format!("logit of {label}"),
        about: vec![
            ("model_sha256".into(), identity.model_sha256.clone()),
            ("config_sha256".into(), identity.config_sha256.clone()),
            ("output-change".into(), format!("{:.6e}", explanation.delta)),
        ],
    });
    crate::output_file::write_file(path, &bytes).map_err(|error| ExplainError::Write {
        path: path.to_owned(),
        error,
    })
}

/// `outcome` with its input explained to `path` (Integrated Gradients of the predicted class's
/// output), or the input's error when that fails; other outcomes as they are.
pub(crate) fn explained(
    engine: &crate::engine::Engine,
    identity: &crate::engine::model_source::ModelIdentity,
    path: &std::path::Path,
    outcome: crate::records::Outcome,
    input: &crate::engine::preprocess::Prepared,
) -> crate::records::Outcome {
    use crate::records::{Outcome, Prediction};
    let Outcome::Predicted(Prediction::Class(prediction)) = &outcome else {
        return outcome;
    };
    match explain_to(engine, identity, path, input, prediction.class) {
        Ok(()) => outcome,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::OutputKind;

    #[test]
    fn only_class_outputs_are_explained() {
        assert_eq!(check_kind(OutputKind::Binary), Ok(()));
        assert_eq!(check_kind(OutputKind::Multiclass), Ok(()));
        assert_eq!(
            check_kind(OutputKind::Segmentation).unwrap_err().to_string(),
            "--explain attributes a class's output: this model's kind is \"segmentation\" (explanations need a binary or multiclass model)"
        );
        assert!(check_kind(OutputKind::Raw).is_err());
    }

    #[test]
    fn explanation_errors_say_which_step_failed() {
        let unloaded = ExplainError::from(crate::engine::EngineError::NoExplanations);
        assert_eq!(
            unloaded.to_string(),
            "cannot explain: this engine was loaded without explanations"
        );
        let write = ExplainError::Write {
            path: "out/x.png".into(),
            error: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            write.to_string(),
            "cannot write the explanation out/x.png: No such file or directory"
        );
    }
}
