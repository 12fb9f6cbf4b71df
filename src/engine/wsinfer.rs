//! WSInfer's model folders, as its model zoo and QuPath's WSInfer extension lay them out: a
//! `config.json` (spec 1.0) beside a TorchScript file (`torchscript_model.pt`), read as scancer's
//! handler configuration.
//!
//! WSInfer reads a level-0 square of `patch_size_pixels * spacing_um_px` microns, resizes it to its
//! `Resize` size (else keeps it) and runs the model: softmax over its classes, or the sigmoid of
//! one logit. scancer analyses the slide at the resolution that puts the same square into the
//! model's input (`spacing * patch / size` microns per pixel), then cuts windows of the input's
//! size: the same field of view, resampled once.

use super::handler_config::{Color, HandlerConfig, InputConfig, OutputConfig, ResizePolicy};
use crate::records::OutputKind;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The configuration's name in a WSInfer model folder.
pub(crate) const CONFIG: &str = "config.json";
/// The model's name in WSInfer's zoo; QuPath's extension takes any one `.pt` file.
const MODEL: &str = "torchscript_model.pt";

#[derive(Debug, Deserialize)]
struct Config {
    spec_version: String,
    #[allow(dead_code)]
    architecture: String,
    num_classes: usize,
    class_names: Vec<String>,
    patch_size_pixels: u32,
    spacing_um_px: f64,
    transform: Vec<Transform>,
}

#[derive(Debug, Deserialize)]
struct Transform {
    name: String,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
}

/// Whether `path` is a WSInfer model folder.
pub(crate) fn is_model_folder(path: &Path) -> bool {
    path.is_dir() && path.join(CONFIG).is_file()
}

/// The folder's TorchScript file: `torchscript_model.pt`, else its one `.pt` file.
pub(crate) fn model_file(folder: &Path) -> Result<PathBuf, String> {
    let named = folder.join(MODEL);
    if named.is_file() {
        return Ok(named);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| crate::messages::io_message(&e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pt") && p.is_file())
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "a WSInfer model folder holds {MODEL} beside {CONFIG}; this one has no .pt file"
        )),
        n => Err(format!(
            "a WSInfer model folder holds one model; this one has {n} .pt files and no {MODEL}"
        )),
    }
}

/// A WSInfer `config.json`'s text as a handler configuration.
pub(crate) fn handler_config(text: &str) -> Result<HandlerConfig, String> {
    let config: Config = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if config.spec_version != "1.0" {
        return Err(format!(
            "spec_version {:?}: scancer reads WSInfer's spec 1.0",
            config.spec_version
        ));
    }
    let n = config.class_names.len();
    if n == 0 || n != config.num_classes {
        return Err(format!(
            "num_classes is {} but class_names names {n}",
            config.num_classes
        ));
    }
    let mut unique = config.class_names.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != n {
        return Err("class_names repeats a name".into());
    }
    if config.patch_size_pixels == 0 || config.patch_size_pixels > 16_384 {
        return Err(format!(
            "patch_size_pixels {} is not a patch size",
            config.patch_size_pixels
        ));
    }
    if !(config.spacing_um_px.is_finite() && config.spacing_um_px > 0.0) {
        return Err(format!(
            "spacing_um_px {} is not a resolution",
            config.spacing_um_px
        ));
    }
    let steps = Steps::read(&config.transform)?;
    let size = steps.size.unwrap_or(config.patch_size_pixels);
    let field_um = config.spacing_um_px * f64::from(config.patch_size_pixels);
    let labels = if n == 1 {
        vec![
            format!("not {}", config.class_names[0]),
            config.class_names[0].clone(),
        ]
    } else {
        config.class_names.clone()
    };
    let config = HandlerConfig {
        input: InputConfig {
            height: size,
            width: size,
            color: Color::Rgb,
            mean: steps.mean,
            std: steps.std,
            // Resize(size) of a square: what torchvision does, and what scancer's resize does
            // to a file of another size.
            resize: ResizePolicy::ShorterSideCrop,
            resize_shorter_side: Some(size),
            patch: true,
            mpp: Some(field_um / f64::from(size)),
        },
        output: OutputConfig {
            kind: if n == 1 {
                OutputKind::Binary
            } else {
                OutputKind::Multiclass
            },
            threshold: None,
            labels: Some(labels),
            top_k: None,
        },
    };
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// What the `transform` list does: its size, then its normalisation.
#[derive(Default)]
struct Steps {
    size: Option<u32>,
    mean: Option<Vec<f32>>,
    std: Option<Vec<f32>>,
}

impl Steps {
    fn read(transforms: &[Transform]) -> Result<Steps, String> {
        let mut steps = Steps::default();
        let mut tensor = false;
        for t in transforms {
            match t.name.as_str() {
                "Resize" if !tensor && steps.size.is_none() => steps.size = Some(resize_size(&t.arguments)?),
                "ToTensor" if !tensor => tensor = true,
                "Normalize" if tensor && steps.mean.is_none() => {
                    steps.mean = Some(channels(&t.arguments, "mean")?);
                    steps.std = Some(channels(&t.arguments, "std")?);
                }
                "Resize" | "ToTensor" | "Normalize" => {
                    return Err(format!(
                        "transform: {} out of place (scancer reads Resize, ToTensor, Normalize, in that order)",
                        t.name
                    ))
                }
                other => {
                    return Err(format!(
                        "transform {other:?} is not in WSInfer's spec 1.0 (Resize, ToTensor, Normalize)"
                    ))
                }
            }
        }
        if !tensor {
            return Err("transform has no ToTensor (the model takes values from 0 to 1)".into());
        }
        Ok(steps)
    }
}

/// `Resize`'s `size`: a number, or a square `[h, w]`.
fn resize_size(arguments: &serde_json::Map<String, Value>) -> Result<u32, String> {
    let side = |v: &Value| {
        v.as_u64()
            .filter(|&s| (1..=16_384).contains(&s))
            .map(|s| s as u32)
    };
    match arguments.get("size") {
        Some(Value::Array(hw)) if hw.len() == 2 => match (side(&hw[0]), side(&hw[1])) {
            (Some(h), Some(w)) if h == w => Ok(h),
            _ => Err(format!("Resize size {hw:?}: scancer takes a square size")),
        },
        Some(v) => side(v).ok_or_else(|| format!("Resize size {v} is not a size")),
        None => Err("Resize has no size".into()),
    }
}

/// `Normalize`'s `mean` or `std`: three numbers.
fn channels(arguments: &serde_json::Map<String, Value>, key: &str) -> Result<Vec<f32>, String> {
    arguments
        .get(key)
        .and_then(Value::as_array)
        .filter(|v| v.len() == 3)
        .and_then(|v| v.iter().map(|x| x.as_f64().map(|x| x as f32)).collect())
        .ok_or_else(|| format!("Normalize {key} is not three numbers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(classes: &str, transform: &str) -> String {
        format!(
            r#"{{"spec_version": "1.0", "architecture": "resnet34", "num_classes": {n},
            "class_names": {classes}, "patch_size_pixels": 350, "spacing_um_px": 0.25,
            "transform": {transform}}}"#,
            n = classes.matches('"').count() / 2
        )
    }

    const ZOO: &str = r#"[{"name": "Resize", "arguments": {"size": 224}}, {"name": "ToTensor"},
        {"name": "Normalize", "arguments": {"mean": [0.7238, 0.5716, 0.6779], "std": [0.112, 0.1459, 0.1089]}}]"#;

    #[test]
    fn the_zoos_breast_tumour_model() {
        let c = handler_config(&config(r#"["notumor", "tumor"]"#, ZOO)).unwrap();
        assert_eq!((c.input.height, c.input.width), (224, 224));
        assert_eq!(c.input.mpp, Some(0.25 * 350.0 / 224.0));
        assert_eq!(c.input.mean, Some(vec![0.7238, 0.5716, 0.6779]));
        assert!(c.input.patch);
        assert_eq!(c.output.kind, OutputKind::Multiclass);
        assert_eq!(c.output.labels.unwrap(), ["notumor", "tumor"]);
    }

    #[test]
    fn one_class_is_a_sigmoid() {
        let c = handler_config(&config(r#"["tumor"]"#, r#"[{"name": "ToTensor"}]"#)).unwrap();
        assert_eq!(c.output.kind, OutputKind::Binary);
        assert_eq!(c.output.labels.unwrap(), ["not tumor", "tumor"]);
        assert_eq!((c.input.height, c.input.mpp), (350, Some(0.25)));
        assert_eq!(c.input.mean, None);
    }

    #[test]
    fn what_the_spec_does_not_allow_is_said() {
        let cases = [
            (config(r#"["a", "a"]"#, ZOO), "repeats"),
            (
                config(
                    r#"["a"]"#,
                    r#"[{"name": "CenterCrop"}, {"name": "ToTensor"}]"#,
                ),
                "\"CenterCrop\" is not in WSInfer's spec",
            ),
            (
                config(
                    r#"["a"]"#,
                    r#"[{"name": "Normalize", "arguments": {}}, {"name": "ToTensor"}]"#,
                ),
                "Normalize out of place",
            ),
            (
                config(
                    r#"["a"]"#,
                    r#"[{"name": "Resize", "arguments": {"size": [224, 200]}}, {"name": "ToTensor"}]"#,
                ),
                "square",
            ),
            (config(r#"["a"]"#, "[]"), "no ToTensor"),
            (
                config(r#"["a"]"#, ZOO).replace("\"1.0\"", "\"2.0\""),
                "spec 1.0",
            ),
            (
                config(r#"["a"]"#, ZOO).replace("\"num_classes\": 1", "\"num_classes\": 2"),
                "num_classes is 2",
            ),
        ];
        for (text, want) in cases {
            let e = handler_config(&text).unwrap_err();
            assert!(e.contains(want), "{e} (wanted {want})");
        }
    }
}
