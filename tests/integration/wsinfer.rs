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

/// A 1,000 x 800 tissue-like slide at 0.25 um/px.
fn synthetic_slide(dir: &Path) -> PathBuf {
    let mut slide = image::RgbImage::new(1000, 800);
    for (x, y, p) in slide.enumerate_pixels_mut() {
        let glass = x > 700 && y > 500;
        *p = if glass {
            image::Rgb([245, 245, 245])
        } else {
            image::Rgb([
                200 - (x % 97) as u8,
                90 + (y % 61) as u8,
                160 + ((x * y) % 71) as u8,
            ])
        };
    }
    let path = dir.join("case-7.slide.png");
    crate::slide_regions::png_with_resolution(&path, &slide, 4_000_000, 4_000_000);
    path
}

#[test]
fn wsinfer_out_writes_wsinfers_results_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = pcam_folder(dir.path(), 0.5, normalised());
    let slide = synthetic_slide(dir.path());
    let out_dir = dir.path().join("results");
    let tiles = dir.path().join("tiles.jsonl");
    let out = run(scancer()
        .args(["predict", "-m", folder.to_str().unwrap(), "-q"])
        .args(["--tiles", tiles.to_str().unwrap()])
        .args([
            "--wsinfer-out",
            out_dir.to_str().unwrap(),
            slide.to_str().unwrap(),
        ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The tissue windows that ran, from --tiles: WSInfer's rows.
    let want: Vec<Value> = std::fs::read_to_string(&tiles)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["tissue"] == true && r["prob_metastatic"].is_number())
        .map(|r| {
            json!([
                r["x"],
                r["y"],
                r["width"],
                r["height"],
                r["prob_metastatic"]
            ])
        })
        .collect();
    assert!(want.len() > 10 && want.len() < 30, "{}", want.len());
    // Read back as WSInfer's users read it: csv, json and shapely in Python.
    let Some(python) = crate::util::fetched("SCANCER_CLIENTS_PYTHON", "wsinfer_out") else {
        return;
    };
    let script = r#"
import csv, glob, json, sys, uuid
from shapely.geometry import shape
out = sys.argv[1]
rows = list(csv.DictReader(open(out + "/model-outputs-csv/case-7.slide.csv")))
collection = json.load(open(out + "/model-outputs-geojson/case-7.slide.geojson"))
features = collection["features"]
assert len(features) == len(rows), (len(features), len(rows))
for row, f in zip(rows, features):
    g = shape(f["geometry"])
    minx, miny, maxx, maxy = g.bounds
    assert (minx, miny, maxx - minx, maxy - miny) == tuple(float(row[k]) for k in ("minx", "miny", "width", "height")), (g.bounds, row)
    assert g.area == float(row["width"]) * float(row["height"])
    assert f["properties"]["objectType"] == "tile" and f["properties"]["isLocked"] is True
    assert abs(f["properties"]["measurements"]["prob_metastatic"] - float(row["prob_metastatic"])) < 1e-7
    uuid.UUID(f["id"])
import h5py
with h5py.File(out + "/patches/case-7.slide.h5", "r") as h5:
    coords = h5["coords"]
    assert coords.shape == (len(rows), 2), coords.shape
    assert [list(c) for c in coords[:]] == [[int(r["minx"]), int(r["miny"])] for r in rows]
    assert coords.attrs["patch_size"] == 192 and coords.attrs["patch_level"] == 0
    assert abs(coords.attrs["patch_spacing_um_px"] - 0.5) < 1e-9
from PIL import Image
mask = Image.open(out + "/masks/case-7.slide.jpg")
assert mask.format == "JPEG" and mask.size == (1000 // 2, 800 // 2), (mask.format, mask.size)
green = sum(1 for p in mask.convert("RGB").getdata() if p[1] > 150 and p[0] < 90 and p[2] < 90)
assert green > 100, green
metadata = [json.load(open(p)) for p in glob.glob(out + "/run_metadata_*.json")]
print(json.dumps({"header": list(rows[0].keys()), "rows": [[int(r["minx"]), int(r["miny"]), int(r["width"]), int(r["height"]), float(r["prob_metastatic"])] for r in rows], "metadata": metadata}))
"#;
    let read = crate::util::client_json(
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(&out_dir),
    );
    assert_eq!(
        read["header"],
        json!(["minx", "miny", "width", "height", "prob_metastatic"])
    );
    let rows = read["rows"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for (got, want) in rows.iter().zip(&want) {
        assert_eq!(
            got.as_array().unwrap()[..4],
            want.as_array().unwrap()[..4],
            "{got} {want}"
        );
        assert!((got[4].as_f64().unwrap() - want[4].as_f64().unwrap()).abs() < 1e-7);
    }
    let metadata = read["metadata"].as_array().unwrap();
    assert_eq!(metadata.len(), 1, "{read}");
    assert_eq!(
        metadata[0]["model"]["config"]["class_names"],
        json!(["metastatic"])
    );
    assert_eq!(metadata[0]["model"]["path"], folder.to_str().unwrap());
}

#[test]
fn wsinfer_out_has_a_column_per_class_and_needs_classes() {
    let dir = tempfile::tempdir().unwrap();
    let slide = synthetic_slide(dir.path());
    let out_dir = dir.path().join("results");
    let out = run(scancer()
        .args(["predict", "-m", crate::util::MULTICLASS, "--tile", "-q"])
        .args([
            "--wsinfer-out",
            out_dir.to_str().unwrap(),
            slide.to_str().unwrap(),
        ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let csv = std::fs::read_to_string(out_dir.join("model-outputs-csv/case-7.slide.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header[..4], ["minx", "miny", "width", "height"]);
    assert!(
        header.len() >= 6 && header[4..].iter().all(|h| h.starts_with("prob_")),
        "{header:?}"
    );
    let out = run(scancer()
        .args(["predict", "-m", crate::util::SEGMENTATION, "--tile"])
        .args([
            "--wsinfer-out",
            out_dir.to_str().unwrap(),
            slide.to_str().unwrap(),
        ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--wsinfer-out writes class probabilities"),
        "{}",
        out.stderr
    );
    // `--wsinfer-out DIR` over `slides` with the pcam model: a usage error whose message has `needle`.
    let refused = |dir: &Path, slides: &[&Path], needle: &str| {
        let out = run(scancer()
            .args(["predict", "-m", PCAM, "--tile", "--wsinfer-out"])
            .arg(dir)
            .args(slides));
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(needle), "{}", out.stderr);
    };
    // Two slides of one name in two folders would write one file: said before any work.
    let other = dir.path().join("b");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(&slide, other.join("case-7.slide.png")).unwrap();
    refused(
        &out_dir,
        &[&slide, &other.join("case-7.slide.png")],
        "would both be",
    );
    // A file where the results folder should be: a usage error, the file left as it was.
    let file = dir.path().join("results.csv");
    std::fs::write(&file, "kept").unwrap();
    refused(&file, &[&slide], "a file, not a folder");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept");
}
