//! scancer against PyTorch: the reference outputs in testdata/reference.json were computed by
//! examples/export_test_models.py with Pillow, torchvision transforms and the same TorchScript files.

use crate::util::*;

/// For inputs that need no resizing: the bound; observed differences are about 2e-6, from
/// libtorch choosing other convolution kernels for other batch sizes.
const EXACT: f64 = 1e-5;
/// Where Pillow-compatible resizing is involved. scancer's resampler is a port of Pillow's, so the
/// pixels are identical and the same bound holds; kept separate so a change to resizing shows here.
const RESIZED: f64 = 1e-5;

#[test]
fn pcam_matches_pytorch_on_every_lossless_format() {
    pcam_parity(&[]);
}

/// The graph as saved, without scancer's inference optimisations, as TorchServe runs it.
#[test]
fn pcam_matches_pytorch_unoptimised() {
    pcam_parity(&["--no-optimize"]);
}

fn pcam_parity(flags: &[&str]) {
    let reference = reference();
    let cases = reference["pcam"].as_object().unwrap();
    let paths: Vec<&str> = cases.keys().map(String::as_str).collect();
    let run = predict(PCAM, &[flags, paths.as_slice()].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.records().len(), paths.len());
    for (path, want) in cases {
        let got = run.record(path);
        let p = f(&got["probabilities"]["metastatic"]);
        let want_p = f(&want["probability"]);
        let tolerance = EXACT;
        assert!(
            (p - want_p).abs() <= tolerance,
            "{path}: scancer {p}, PyTorch {want_p}"
        );
        assert_eq!(
            got["label"],
            if want_p > 0.5 { "metastatic" } else { "normal" },
            "{path}"
        );
        assert!(
            (f(&got["probabilities"]["normal"]) - (1.0 - want_p)).abs() <= tolerance,
            "{path}"
        );
        let score = if want_p > 0.5 { want_p } else { 1.0 - want_p };
        assert!((f(&got["score"]) - score).abs() <= tolerance, "{path}");
    }
}

#[test]
fn multiclass_with_resize_and_crop_matches_pytorch() {
    let reference = reference();
    let cases = reference["multiclass"].as_object().unwrap();
    let paths: Vec<&str> = cases.keys().map(String::as_str).collect();
    let run = predict(MULTICLASS, &paths);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let labels = ["adipose", "stroma", "tumour", "lymphocytes"];
    for (path, want) in cases {
        let got = run.record(path);
        let want: Vec<f64> = want["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(f)
            .collect();
        let probabilities = got["probabilities"].as_object().unwrap();
        assert_eq!(probabilities.len(), 3, "top_k = 3");
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|&a, &b| want[b].total_cmp(&want[a]));
        let got_order: Vec<&str> = probabilities.keys().map(String::as_str).collect();
        assert_eq!(
            got_order,
            order[..3].iter().map(|&k| labels[k]).collect::<Vec<_>>(),
            "{path}: ranking"
        );
        for (label, p) in probabilities {
            let k = labels.iter().position(|l| l == label).unwrap();
            assert!(
                (f(p) - want[k]).abs() <= RESIZED,
                "{path} {label}: scancer {p}, PyTorch {}",
                want[k]
            );
        }
        assert_eq!(got["label"], labels[order[0]]);
        assert_eq!(got["class"], order[0]);
    }
}

#[test]
fn segmentation_masks_match_pytorch() {
    let reference = reference();
    let cases = reference["segmentation"].as_object().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<&str> = cases.keys().map(String::as_str).collect();
    let mask_dir = dir.path().to_str().unwrap();
    let run = predict(
        SEGMENTATION,
        &[&["--mask-dir", mask_dir][..], paths.as_slice()].concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (path, want) in cases {
        let got = run.record(path);
        let want_mask: Vec<u8> = want["mask"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let mask_file = got["mask"].as_str().unwrap();
        let mask = image::open(mask_file).unwrap().to_luma8();
        assert_eq!(mask.dimensions(), (32, 32));
        assert_eq!(mask.as_raw(), &want_mask, "{path}: mask");
        let fractions = got["class_fractions"].as_object().unwrap();
        for (k, label) in ["background", "tissue", "tumour"].iter().enumerate() {
            let expected = want_mask.iter().filter(|&&c| c as usize == k).count() as f64 / 1024.0;
            assert!(
                (f(&fractions[*label]) - expected).abs() < 1e-6,
                "{path} {label}"
            );
        }
    }
}

#[test]
fn raw_output_is_the_logits_behind_multiclass() {
    let path = "testdata/images/tall-130x160.png";
    let raw = predict(
        MULTICLASS,
        &["-c", "testdata/configs/multiclass-raw.toml", path],
    )
    .record(path);
    assert_eq!(raw["shape"], serde_json::json!([4]));
    let logits: Vec<f64> = raw["output"].as_array().unwrap().iter().map(f).collect();
    let max = logits.iter().cloned().fold(f64::MIN, f64::max);
    let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
    let want = reference()["multiclass"][path]["probabilities"].clone();
    for (k, l) in logits.iter().enumerate() {
        let p = (l - max).exp() / sum;
        assert!(
            (p - f(&want[k])).abs() < 1e-5,
            "class {k}: softmax(raw) {p} vs PyTorch {}",
            want[k]
        );
    }
}

#[test]
fn sixteen_bit_images_equal_their_eight_bit_originals() {
    // patch-rgb16.png stores every sample of patch-rgb.png as v * 257.
    let run = predict(
        PCAM,
        &[
            "testdata/images/patch-rgb.png",
            "testdata/images/patch-rgb16.png",
        ],
    );
    let r = run.records();
    assert_eq!(r[0]["probabilities"], r[1]["probabilities"]);
}

/// A patch predicted alone answers exactly as inside a directory scan: every forward pass has the
/// same shape (partial batches are padded), whatever the neighbours, the position or the threads.
#[test]
fn results_do_not_depend_on_neighbours_or_threads() {
    let dir = "examples/patches";
    let scan = predict(PCAM, &["--threads", "2", dir]).records();
    assert_eq!(scan.len(), 12);
    for (k, record) in scan.iter().enumerate() {
        let path = record["path"].as_str().unwrap();
        let threads = if k % 2 == 0 { "1" } else { "2" };
        let alone = predict(PCAM, &["--threads", threads, path]).record(path);
        assert_eq!(
            alone["probabilities"], record["probabilities"],
            "{path} alone with {threads} thread(s)"
        );
    }
    // Mixed with failures and other images, in another order.
    let mixed = predict(
        PCAM,
        &[
            "testdata/images/empty.png",
            "examples/patches/patch-07.png",
            "testdata/images",
            "examples/patches/patch-00.png",
        ],
    );
    assert_eq!(
        mixed.record("examples/patches/patch-07.png")["probabilities"],
        scan[7]["probabilities"]
    );
    assert_eq!(
        mixed.record("examples/patches/patch-00.png")["probabilities"],
        scan[0]["probabilities"]
    );
}

/// Other batch sizes run other kernels; they agree to well within the parity bound.
#[test]
fn batch_sizes_agree_closely() {
    let dir = "examples/patches";
    let base = predict(PCAM, &["-b", "16", dir]).records();
    for b in ["1", "5", "64"] {
        let other = predict(PCAM, &["-b", b, dir]).records();
        for (a, o) in base.iter().zip(&other) {
            let (pa, po) = (
                f(&a["probabilities"]["metastatic"]),
                f(&o["probabilities"]["metastatic"]),
            );
            assert!(
                (pa - po).abs() <= 5e-6,
                "{}: {pa} vs {po} at batch size {b}",
                a["path"]
            );
            assert_eq!(a["label"], o["label"]);
        }
    }
}
