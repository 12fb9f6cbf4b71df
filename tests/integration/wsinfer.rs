//! WSInfer's model folders (`config.json` + `torchscript_model.pt`, its zoo's layout) run as they
//! are: the configuration becomes the handler configuration, its spacing the analysis resolution.

use crate::util::{assert_fatal, predict, run, scancer, PCAM};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The pcam test model as a WSInfer model: one class (a sigmoid), 96-pixel patches at `spacing`.
fn pcam_folder(dir: &Path, spacing: f64, transform: Value) -> PathBuf {
    let folder = dir.join("pcam-wsinfer");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(PCAM, folder.join("torchscript_model.pt")).unwrap();
    let config = json!({
        "spec_version": "1.0",
        "architecture": "cnn",
        "num_classes": 1,
        "class_names": ["metastatic"],
        "patch_size_pixels": 96,
        "spacing_um_px": spacing,
        "transform": transform,
    });
    std::fs::write(folder.join("config.json"), config.to_string()).unwrap();
    folder
}

fn normalised() -> Value {
    json!([{"name": "ToTensor"}, {"name": "Normalize", "arguments": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}])
}

#[test]
fn a_wsinfer_folder_answers_as_the_same_model_configured_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let folder = pcam_folder(dir.path(), 0.5, normalised());
    let ours = predict(PCAM, &["examples/patches"]);
    let theirs = predict(folder.to_str().unwrap(), &["examples/patches"]);
    assert_eq!(theirs.code, 0, "{}", theirs.stderr);
    let (ours, theirs) = (ours.records(), theirs.records());
    assert_eq!(ours.len(), 12);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a["path"], b["path"]);
        assert_eq!(
            a["probabilities"]["metastatic"], b["probabilities"]["metastatic"],
            "{b}"
        );
        assert!(b["probabilities"]["not metastatic"].is_number(), "{b}");
    }
}

#[test]
fn a_wsinfer_folders_spacing_is_the_slides_analysis_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let folder = pcam_folder(dir.path(), 0.5, normalised());
    // A 1,000 x 800 tissue-like slide at 0.25 um/px (4,000,000 pixels per metre).
    let mut slide = image::RgbImage::new(1000, 800);
    for (x, y, p) in slide.enumerate_pixels_mut() {
        *p = image::Rgb([
            200 - (x % 97) as u8,
            90 + (y % 61) as u8,
            160 + ((x * y) % 71) as u8,
        ]);
    }
    let path = dir.path().join("slide.png");
    crate::slide_regions::png_with_resolution(&path, &slide, 4_000_000, 4_000_000);
    let tiles = |model: &str, extra: &[&str], name: &str| {
        let file = dir.path().join(name);
        let out = run(scancer()
            .args(["predict", "-m", model, "--tile", "-q", "-f", "jsonl"])
            .args(extra)
            .args(["--tiles", file.to_str().unwrap(), path.to_str().unwrap()]));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let rows: Vec<(Value, Value, Value)> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| {
                let r: Value = serde_json::from_str(l).unwrap();
                (
                    r["x"].clone(),
                    r["width"].clone(),
                    r["prob_metastatic"].clone(),
                )
            })
            .collect();
        (record, rows)
    };
    let (theirs, their_rows) = tiles(folder.to_str().unwrap(), &[], "wsinfer.jsonl");
    let (ours, our_rows) = tiles(PCAM, &["--mpp", "0.5"], "pcam.jsonl");
    assert_eq!(
        theirs["slide"]["provenance"]["analysed_mpp"], 0.5,
        "{theirs}"
    );
    // 96 pixels at 0.5 um/px are 192 slide pixels: 6 x 5 windows (edges clipped).
    assert_eq!(theirs["slide"]["tiles"], 30, "{theirs}");
    assert_eq!(their_rows, our_rows);
    assert_eq!(
        theirs["probabilities"]["metastatic"],
        ours["probabilities"]["metastatic"]
    );
}

#[test]
fn a_wsinfer_folder_that_is_not_whole_is_one_fatal_line() {
    let dir = tempfile::tempdir().unwrap();
    let folder = pcam_folder(
        dir.path(),
        0.5,
        json!([{"name": "CenterCrop", "arguments": {"size": 90}}, {"name": "ToTensor"}]),
    );
    let out = run(scancer().args([
        "predict",
        "-m",
        folder.to_str().unwrap(),
        "examples/patches",
    ]));
    assert_fatal(
        &out,
        "config.json: WSInfer configuration: transform \"CenterCrop\" is not in WSInfer's spec 1.0",
    );
    std::fs::remove_file(folder.join("torchscript_model.pt")).unwrap();
    let out = run(scancer().args([
        "predict",
        "-m",
        folder.to_str().unwrap(),
        "examples/patches",
    ]));
    assert_fatal(&out, "pcam-wsinfer: a WSInfer model folder holds torchscript_model.pt beside config.json; this one has no .pt file");
}
