//! Every model kind on slides: a multiclass model gives a map and regions per class (or for the class
//! named with --class), a segmentation model a stitched pyramidal class mask with each class's share.
//! The slides are composed of patches whose predictions alone are known, so every window, count,
//! mean and mask pixel is checked exactly against plain `predict`.

use crate::util::{root, run, scancer, Run, MULTICLASS, PCAM, SEGMENTATION};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `side` x `side` crops of the example patches, as files.
fn crops(dir: &Path, side: u32, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|k| {
            let patch = image::open(root().join(format!("examples/patches/patch-{k:02}.png")))
                .unwrap()
                .to_rgb8();
            let crop = image::imageops::crop_imm(&patch, 8, 8, side, side).to_image();
            let path = dir.join(format!("crop-{k}.png"));
            crop.save(&path).unwrap();
            path
        })
        .collect()
}

/// A white slide of `across` x `down` windows of `side` with the crops at the given windows.
fn compose(path: &Path, side: u32, across: u32, down: u32, placed: &[((u32, u32), &Path)]) {
    let mut slide = image::RgbImage::from_pixel(across * side, down * side, image::Rgb([255; 3]));
    for &((i, j), crop) in placed {
        let crop = image::open(crop).unwrap().to_rgb8();
        image::imageops::replace(&mut slide, &crop, i64::from(i * side), i64::from(j * side));
    }
    slide.save(path).unwrap();
}

/// The model's own configuration with resize = "reject": a window-sized file is then predicted
/// exactly as a window of a slide (no Resize(72) and crop).
fn as_is(dir: &Path, model: &str, config: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join(model).with_extension("toml")).unwrap();
    let text = text
        .lines()
        .filter(|l| !l.starts_with("resize"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("[output]", "resize = \"reject\"\n\n[output]")
        // Every class reported, so that means can be taken over all of them.
        .replace("top_k = 3", "top_k = 4");
    let path = dir.join(config);
    std::fs::write(&path, text).unwrap();
    path
}

fn predict(args: &[&str]) -> Run {
    run(scancer().args(["predict", "-q", "-f", "jsonl"]).args(args))
}

/// 8-connected components of the cells of one class, as sorted lists of (i, j).
fn components(cells: &BTreeMap<(u32, u32), String>, class: &str) -> Vec<Vec<(u32, u32)>> {
    let mut left: Vec<(u32, u32)> = cells
        .iter()
        .filter(|(_, c)| c.as_str() == class)
        .map(|(k, _)| *k)
        .collect();
    let mut found = Vec::new();
    while let Some(start) = left.pop() {
        let mut region = vec![start];
        let mut k = 0;
        while k < region.len() {
            let (i, j) = region[k];
            let (near, far): (Vec<_>, Vec<_>) = left
                .iter()
                .partition(|(a, b)| a.abs_diff(i) <= 1 && b.abs_diff(j) <= 1);
            region.extend(near);
            left = far;
            k += 1;
        }
        region.sort();
        found.push(region);
    }
    found.sort();
    found
}

#[test]
fn multiclass_slides_map_every_class_or_the_one_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = as_is(dir.path(), MULTICLASS, "multiclass.toml");
    let config = config.to_str().unwrap();
    let crops = crops(dir.path(), 64, 8);
    let names: Vec<&str> = crops.iter().map(|c| c.to_str().unwrap()).collect();
    let alone = predict(&[&["-m", MULTICLASS, "--config", config], &names[..]].concat());
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    let alone: Vec<Value> = alone.records();
    // Eight crops in two groups and two singles on a 7 x 4 grid.
    let at = [
        (0, 0),
        (1, 0),
        (1, 1),
        (4, 0),
        (4, 1),
        (5, 1),
        (2, 3),
        (6, 3),
    ];
    let slide = dir.path().join("multiclass.png");
    let placed: Vec<((u32, u32), &Path)> = at
        .iter()
        .zip(&crops)
        .map(|(a, c)| (*a, c.as_path()))
        .collect();
    compose(&slide, 64, 7, 4, &placed);
    let cells: BTreeMap<(u32, u32), String> = at
        .iter()
        .zip(&alone)
        .map(|(a, r)| (*a, r["label"].as_str().unwrap().to_string()))
        .collect();

    let tiles = dir.path().join("tiles.jsonl");
    let maps = dir.path().join("map.png");
    let out = predict(&[
        "-m",
        MULTICLASS,
        "--config",
        config,
        "--tile",
        "--tiles",
        tiles.to_str().unwrap(),
        "--heatmap",
        maps.to_str().unwrap(),
        slide.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let s = &record["slide"];
    assert_eq!(s["tissue_tiles"], 8);
    // Every window as predicted alone: label and probabilities.
    let mut checked = 0;
    for line in std::fs::read_to_string(&tiles).unwrap().lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        let (i, j) = (t["x"].as_u64().unwrap() / 64, t["y"].as_u64().unwrap() / 64);
        if let Some(k) = at.iter().position(|a| *a == (i as u32, j as u32)) {
            assert_eq!(t["label"], alone[k]["label"], "window {i},{j}");
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
    // The slide's answer is the mean over its tissue windows, ranked like any multiclass answer.
    let labels = ["adipose", "stroma", "tumour", "lymphocytes"];
    let mean: Vec<f64> = labels
        .iter()
        .map(|l| {
            alone
                .iter()
                .map(|r| r["probabilities"][l].as_f64().unwrap_or(0.0))
                .sum::<f64>()
                / 8.0
        })
        .collect();
    let classes = s["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 4);
    for (c, summary) in classes.iter().enumerate() {
        let label = labels[c];
        assert_eq!(summary["label"], label);
        let won = cells.values().filter(|l| *l == label).count();
        assert_eq!(summary["windows"], won, "{label}");
        assert_eq!(summary["fraction"].as_f64().unwrap(), won as f64 / 8.0);
        let expected = components(&cells, label);
        assert_eq!(summary["regions"], expected.len(), "{label}: {expected:?}");
        let biggest = expected.iter().map(Vec::len).max().unwrap_or(0);
        let listed_biggest = summary["top_regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["windows"].as_u64().unwrap() as usize)
            .max()
            .unwrap_or(0);
        assert_eq!(listed_biggest, biggest, "{label}");
        if alone.iter().all(|r| r["probabilities"][label].is_number()) {
            let got = summary["mean_probability"].as_f64().unwrap();
            assert!(
                (got - mean[c]).abs() < 1e-6,
                "{label}: {got} vs {}",
                mean[c]
            );
        }
        // One heatmap per class beside the name given.
        let map = dir.path().join(format!("map.{label}.png"));
        assert!(map.is_file(), "{}", map.display());
        assert_eq!(summary["heatmap"], map.to_str().unwrap());
    }
    assert_eq!(s["heatmap"], Value::Null);
    assert_eq!(s["hotspot"], Value::Null);

    // --class: that class's most probable window is the slide's answer, its regions the record's.
    let class = alone[0]["label"].as_str().unwrap();
    let c = labels.iter().position(|l| *l == class).unwrap();
    let out = predict(&[
        "-m",
        MULTICLASS,
        "--config",
        config,
        "--tile",
        "--class",
        class,
        slide.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let focused: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let best = alone
        .iter()
        .max_by(|a, b| {
            let p = |r: &Value| r["probabilities"][class].as_f64().unwrap_or(-1.0);
            p(a).total_cmp(&p(b))
        })
        .unwrap();
    assert_eq!(focused["probabilities"], best["probabilities"]);
    assert_eq!(focused["label"], best["label"]);
    let expected = components(&cells, class);
    assert_eq!(focused["slide"]["regions"], expected.len());
    assert_eq!(focused["slide"]["classes"][c]["regions"], expected.len());
    // Classes other than the one named are summarised, their regions not looked for.
    let other = (c + 1) % 4;
    assert_eq!(focused["slide"]["classes"][other]["regions"], Value::Null);
    assert!(focused["slide"]["hotspot"].is_object());
}

#[test]
fn segmentation_slides_stitch_one_class_mask() {
    let dir = tempfile::tempdir().unwrap();
    let config = as_is(dir.path(), SEGMENTATION, "segmentation.toml");
    let config = config.to_str().unwrap();
    let crops = crops(dir.path(), 32, 4);
    let names: Vec<&str> = crops.iter().map(|c| c.to_str().unwrap()).collect();
    let masks = dir.path().join("alone");
    let alone = predict(
        &[
            &[
                "-m",
                SEGMENTATION,
                "--config",
                config,
                "--mask-dir",
                masks.to_str().unwrap(),
            ],
            &names[..],
        ]
        .concat(),
    );
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    let alone = alone.records();
    let at = [(0u32, 0u32), (1, 0), (3, 1), (4, 2)];
    let slide = dir.path().join("segmentation.png");
    let placed: Vec<((u32, u32), &Path)> = at
        .iter()
        .zip(&crops)
        .map(|(a, c)| (*a, c.as_path()))
        .collect();
    compose(&slide, 32, 5, 3, &placed);
    let mask_dir = dir.path().join("masks");
    let out = predict(&[
        "-m",
        SEGMENTATION,
        "--config",
        config,
        "--tile",
        "--slide-mpp",
        "0.5",
        "--mask-dir",
        mask_dir.to_str().unwrap(),
        slide.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let stitched = record["mask"].as_str().unwrap().to_string();
    assert!(
        stitched.ends_with("segmentation.png.mask.tif"),
        "{stitched}"
    );
    assert_eq!(record["slide"]["exports"]["mask"], stitched.as_str());
    // Each class's share of the analysed pixels: the patches' own fractions, averaged.
    let labels = ["background", "tissue", "tumour"];
    let classes = record["slide"]["classes"].as_array().unwrap();
    for (c, label) in labels.iter().enumerate() {
        let expected: f64 = alone
            .iter()
            .map(|r| r["class_fractions"][label].as_f64().unwrap())
            .sum::<f64>()
            / 4.0;
        let got = classes[c]["fraction"].as_f64().unwrap();
        assert!(
            (got - expected).abs() < 1e-6,
            "{label}: {got} vs {expected}"
        );
        assert_eq!(record["class_fractions"][label], classes[c]["fraction"]);
        // 32 x 32 pixels a window at 0.5 um: 256 um^2 each.
        let area = classes[c]["area_mm2"].as_f64().unwrap();
        assert!(
            (area - expected * 4.0 * 1024.0 * 0.25 / 1e6).abs() < 1e-9,
            "{label}"
        );
    }
    let Some(python) = crate::util::fetched("SCANCER_CLIENTS_PYTHON", "segmentation_slides") else {
        return;
    };
    // The stitched mask, read by tifffile: each window's pixels are its patch's mask, glass 255.
    let seen = crate::slide_regions::read_pyramid(python, Path::new(&stitched), &["all"]);
    let level0 = seen["tifffile"]["level0"].as_array().unwrap();
    assert_eq!(level0.len(), 96);
    assert_eq!(seen["dimensions"][0], json!([160, 96]));
    for (k, &(i, j)) in at.iter().enumerate() {
        let patch_mask = image::open(alone[k]["mask"].as_str().unwrap())
            .unwrap()
            .to_luma8();
        for y in 0..32 {
            for x in 0..32 {
                let got = level0[(j * 32 + y) as usize][(i * 32 + x) as usize]
                    .as_u64()
                    .unwrap();
                assert_eq!(
                    got,
                    u64::from(patch_mask.get_pixel(x, y).0[0]),
                    "window {i},{j} pixel {x},{y}"
                );
            }
        }
    }
    assert_eq!(level0[0][159], 255, "glass is not analysed");
    let description = seen["description"].as_str().unwrap();
    assert!(
        description.contains("0=background, 1=tissue, 2=tumour; 255=not analysed"),
        "{description}"
    );
}

/// The table's slide column: a binary model's windows are counted positive; a model of classes'
/// windows each have a class, so none is called positive (it read as a negative slide).
#[test]
fn the_table_counts_positive_windows_of_binary_models_only() {
    let table = |model: &str| {
        let out = run(scancer().args([
            "predict",
            "--tile",
            "-q",
            "-m",
            model,
            "testdata/slides/tissue.png",
        ]));
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    assert!(table(PCAM).contains("tissue windows positive,"));
    for model in [MULTICLASS, SEGMENTATION] {
        let text = table(model);
        assert!(!text.contains("positive"), "{model}: {text}");
        assert!(text.contains(" tissue windows, "), "{model}: {text}");
    }
}
