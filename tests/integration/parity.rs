//! scancer against PyTorch: the reference outputs in testdata/reference.json were computed by
//! examples/export_test_models.py with Pillow, torchvision transforms and the same TorchScript files,
//! from which the script also exported each model as an AOTInductor package (`.pt2`, run in
//! libtorch) and to ONNX (`.onnx`, run in ONNX Runtime): every format meets the same bounds.

use crate::util::*;
use serde_json::Value;

/// For inputs that need no resizing: the bound; observed differences are about 2e-6, from
/// libtorch choosing other convolution kernels for other batch sizes.
const EXACT: f64 = 1e-5;
/// Where Pillow-compatible resizing is involved. scancer's resampler is a port of Pillow's, so the
/// pixels are identical and the same bound holds; kept separate so a change to resizing shows here.
const RESIZED: f64 = 1e-5;

/// The other formats of a TorchScript test model (`.pt`), exported from the same network.
const FORMATS: [&str; 2] = ["onnx", "pt2"];

/// `model` (a `.pt` path) in another format.
fn exported(model: &str, format: &str) -> String {
    format!("{}.{format}", model.strip_suffix(".pt").unwrap())
}

#[test]
fn pcam_matches_pytorch_on_every_lossless_format() {
    pcam_parity(PCAM, &[]);
}

/// The graph as saved, without scancer's inference optimisations, as TorchServe runs it.
#[test]
fn pcam_matches_pytorch_unoptimised() {
    pcam_parity(PCAM, &["--no-optimize"]);
}

/// AOTInductor packages and ONNX models: every fixture of every test model within the bounds.
#[test]
fn every_format_matches_pytorch_on_every_fixture() {
    for format in FORMATS {
        pcam_parity(&exported(PCAM, format), &[]);
        multiclass_parity(&exported(MULTICLASS, format));
        segmentation_parity(&exported(SEGMENTATION, format));
    }
}

fn pcam_parity(model: &str, flags: &[&str]) {
    let reference = reference();
    let cases = reference["pcam"].as_object().unwrap();
    let paths: Vec<&str> = cases.keys().map(String::as_str).collect();
    let run = predict(model, &[flags, paths.as_slice()].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.records().len(), paths.len());
    for (path, want) in cases {
        let got = run.record(path);
        let p = f(&got["probabilities"]["metastatic"]);
        let want_p = f(&want["probability"]);
        let tolerance = EXACT;
        assert!(
            (p - want_p).abs() <= tolerance,
            "{model} {path}: scancer {p}, PyTorch {want_p}"
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
    multiclass_parity(MULTICLASS);
}

fn multiclass_parity(model: &str) {
    let reference = reference();
    let cases = reference["multiclass"].as_object().unwrap();
    let paths: Vec<&str> = cases.keys().map(String::as_str).collect();
    let run = predict(model, &paths);
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
                "{model} {path} {label}: scancer {p}, PyTorch {}",
                want[k]
            );
        }
        assert_eq!(got["label"], labels[order[0]]);
        assert_eq!(got["class"], order[0]);
    }
}

#[test]
fn segmentation_masks_match_pytorch() {
    segmentation_parity(SEGMENTATION);
}

fn segmentation_parity(model: &str) {
    let reference = reference();
    let cases = reference["segmentation"].as_object().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<&str> = cases.keys().map(String::as_str).collect();
    let mask_dir = dir.path().to_str().unwrap();
    let run = predict(
        model,
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
        assert_eq!(mask.as_raw(), &want_mask, "{model} {path}: mask");
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
    // patch-rgb16.png stores every sample of patch-rgb.png as v * 257; in every format.
    let formats = FORMATS.map(|format| exported(PCAM, format));
    for model in std::iter::once(PCAM).chain(formats.iter().map(String::as_str)) {
        let run = predict(
            model,
            &[
                "testdata/images/patch-rgb.png",
                "testdata/images/patch-rgb16.png",
            ],
        );
        let r = run.records();
        assert_eq!(r[0]["probabilities"], r[1]["probabilities"], "{model}");
    }
}

/// The instruction sets libtorch can be capped to on this CPU, the machine's own first: oneDNN's
/// (`ONEDNN_MAX_CPU_ISA`, the convolutions) with ATen's (`ATEN_CPU_CAPABILITY`, the element-wise
/// kernels such as the sigmoid). A machine with AVX-512 or AMX checks AVX2's answers here too.
fn instruction_sets() -> Vec<Vec<(&'static str, &'static str)>> {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags") || l.starts_with("Features"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let has = |flag: &str| flags.contains(&flag);
    let mut caps = vec![vec![]];
    if has("avx512f") {
        caps.push(vec![
            ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE"),
            ("ATEN_CPU_CAPABILITY", "avx512"),
        ]);
    }
    if has("avx2") {
        caps.push(vec![
            ("ONEDNN_MAX_CPU_ISA", "AVX2"),
            ("ATEN_CPU_CAPABILITY", "avx2"),
        ]);
    }
    if has("avx") {
        caps.push(vec![
            ("ONEDNN_MAX_CPU_ISA", "AVX"),
            ("ATEN_CPU_CAPABILITY", "default"),
        ]);
    }
    caps
}

/// The inputs' probabilities from `predict ARGS...` under `env`, in input order (null for the
/// inputs that fail, which make the exit status 1).
fn probabilities(model: &str, env: &[(&str, &str)], args: &[&str]) -> Vec<(String, Value)> {
    let run = run(scancer()
        .args(["predict", "-m", model, "-f", "jsonl", "-q"])
        .args(args)
        .envs(env.iter().copied()));
    assert!(run.code <= 1, "{}", run.stderr);
    run.records()
        .into_iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["probabilities"].clone(),
            )
        })
        .collect()
}

/// One CPU execution model for every command: an image's answer is bit-identical whatever the
/// thread count, its neighbours, the load and the path (a directory scan, alone, serve under eight
/// clients, a slide window), under the machine's own instruction set and every cap below it; and
/// the instruction sets agree within the parity bound (other kernels: up to 3.6e-6 was measured on
/// 2,000 patches of the full-width model, BENCHMARKS.md).
#[test]
fn every_path_answers_alike_under_every_instruction_set() {
    answers_alike(PCAM, instruction_sets());
}

/// The same rules in every engine: an AOTInductor package under every cap too (its convolutions
/// are libtorch's oneDNN calls; its own kernels are compiled for AVX2), ONNX Runtime on the CPU's
/// own instruction set (its kernels pick theirs at run time and take no cap).
#[test]
fn every_path_answers_alike_in_every_engine() {
    answers_alike(&exported(PCAM, "pt2"), instruction_sets());
    answers_alike(&exported(PCAM, "onnx"), vec![vec![]]);
}

fn answers_alike(model: &str, instruction_sets: Vec<Vec<(&'static str, &'static str)>>) {
    let dir = "examples/patches";
    let probabilities = |env: &[(&str, &str)], args: &[&str]| probabilities(model, env, args);
    let mut reference: Option<Vec<(String, Value)>> = None;
    for env in instruction_sets {
        let scan = probabilities(&env, &["--threads", "1", dir]);
        assert_eq!(scan.len(), 12);
        for threads in ["2", "3"] {
            assert_eq!(
                probabilities(&env, &["--threads", threads, dir]),
                scan,
                "{env:?}: a scan with {threads} threads"
            );
        }
        // Alone, with 1, 2 and 3 threads in turn.
        for (k, (path, want)) in scan.iter().enumerate() {
            let threads = ["1", "2", "3"][k % 3];
            let alone = probabilities(&env, &["--threads", threads, path]);
            assert_eq!(
                &alone[0].1, want,
                "{env:?}: {path} alone, {threads} threads"
            );
        }
        // Mixed with failures and other images, in another order.
        let mixed = probabilities(
            &env,
            &[
                "testdata/images/empty.png",
                "examples/patches/patch-07.png",
                "testdata/images",
                "examples/patches/patch-00.png",
            ],
        );
        let find = |path: &str| &mixed.iter().find(|(p, _)| p == path).unwrap().1;
        assert_eq!(find("examples/patches/patch-07.png"), &scan[7].1, "{env:?}");
        assert_eq!(find("examples/patches/patch-00.png"), &scan[0].1, "{env:?}");
        served_alike(model, &env, &scan);
        slide_windows_alike(model, &env, &scan);
        match &reference {
            None => reference = Some(scan),
            Some(machine) => {
                for ((path, a), (_, b)) in machine.iter().zip(&scan) {
                    let (a, b) = (f(&a["metastatic"]), f(&b["metastatic"]));
                    assert!(
                        (a - b).abs() <= EXACT,
                        "{path}: {a} on this CPU's own instruction set, {b} under {env:?}"
                    );
                }
            }
        }
    }
}

/// serve with three workers answers every patch as predict does, alone and under eight clients.
fn served_alike(model: &str, env: &[(&str, &str)], scan: &[(String, Value)]) {
    let server = std::sync::Arc::new(crate::util::server::Server::start_with(
        &[&format!("pcam={model}"), "-q", "--threads", "3"],
        env,
    ));
    let url = "/predictions/pcam?details=true";
    for (path, want) in scan {
        let body = std::fs::read(root().join(path)).unwrap();
        assert_eq!(
            &server.put(url, &body).json()["probabilities"],
            want,
            "{env:?}: {path} served alone"
        );
    }
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (server, scan) = (std::sync::Arc::clone(&server), scan.to_vec());
            std::thread::spawn(move || {
                for k in 0..scan.len() * 2 {
                    let (path, want) = &scan[(k + c) % scan.len()];
                    let body = std::fs::read(root().join(path)).unwrap();
                    let answer = server.put(url, &body).json();
                    assert_eq!(&answer["probabilities"], want, "{path} served under load");
                }
            })
        })
        .collect();
    for client in clients {
        client
            .join()
            .unwrap_or_else(|_| panic!("{env:?}: a client's answer differed"));
    }
}

/// Four patches as the windows of one 192 x 192 slide: each window answers as its patch alone.
fn slide_windows_alike(model: &str, env: &[(&str, &str)], scan: &[(String, Value)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut slide = image::RgbImage::new(192, 192);
    for (k, (path, _)) in scan.iter().take(4).enumerate() {
        let patch = image::open(root().join(path)).unwrap().to_rgb8();
        image::imageops::replace(&mut slide, &patch, (k as i64 % 2) * 96, (k as i64 / 2) * 96);
    }
    let file = dir.path().join("mosaic.png");
    slide.save(&file).unwrap();
    let tiles = dir.path().join("tiles.jsonl");
    let out = run(scancer()
        .args([
            "predict",
            "-m",
            model,
            "--tile",
            "--all-tiles",
            "-q",
            "--threads",
            "3",
        ])
        .args(["--tiles", tiles.to_str().unwrap(), file.to_str().unwrap()])
        .envs(env.iter().copied()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let windows: Vec<Value> = std::fs::read_to_string(&tiles)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(windows.len(), 4);
    for (k, (path, want)) in scan.iter().take(4).enumerate() {
        let w = windows
            .iter()
            .find(|w| w["x"] == (k % 2) * 96 && w["y"] == (k / 2) * 96)
            .unwrap();
        assert_eq!(
            w["probability"], want["metastatic"],
            "{env:?}: {path} as a slide window"
        );
    }
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
