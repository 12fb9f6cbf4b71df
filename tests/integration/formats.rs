//! Models from torch.export: AOTInductor packages (`.pt2`) and ONNX models work everywhere a
//! TorchScript file does (archives, a model store, TorchServe's and KServe's APIs), answer as
//! `predict` does, and refuse explanations with why.

use crate::util::server::Server;
use crate::util::{predict, root, run, scancer, PCAM};
use serde_json::{json, Value};

const PATCH: &str = "examples/patches/patch-02.png";

fn exported(format: &str) -> String {
    PCAM.replace(".pt", &format!(".{format}"))
}

/// `scancer archive` of the pcam model in `format` into `store`, as `pcam-FORMAT.mar`.
fn archive(format: &str, store: &std::path::Path) {
    let out = run(scancer().args([
        "archive",
        "--model-name",
        &format!("pcam-{format}"),
        "--version",
        "1.0",
        "--serialized-file",
        &exported(format),
        "--config",
        "examples/pcam-classification.toml",
        "--export-path",
        store.to_str().unwrap(),
    ]));
    assert_eq!(out.code, 0, "{format}: {}", out.stderr);
}

#[test]
fn archives_of_every_format_serve_from_a_model_store_on_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let formats = ["pt", "onnx", "pt2"];
    for format in formats {
        archive(format, &store);
    }
    let server = Server::start_in(
        dir.path(),
        &[
            "--model-store",
            "store",
            "--disable-token-auth",
            "--models",
            "pcam-pt.mar",
            "pcam-onnx.mar",
            "pcam-pt2.mar",
        ],
        &[],
    );
    let image = std::fs::read(root().join(PATCH)).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
    let mut answers: Vec<Value> = Vec::new();
    for format in formats {
        let name = format!("pcam-{format}");
        let want = predict(&exported(format), &[PATCH]).record(PATCH);
        // TorchServe's /predictions (details: the probabilities).
        let reply = server.put(&format!("/predictions/{name}?details=true"), &image);
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        assert_eq!(
            reply.json()["probabilities"],
            want["probabilities"],
            "{name}"
        );
        // KServe V1 and V2.
        let v1 = json!({"instances": [{"data": b64}]}).to_string();
        let reply = server.request(
            "POST",
            &format!("/v1/models/{name}:predict"),
            &[("content-type", "application/json")],
            v1.as_bytes(),
        );
        assert_eq!(reply.status, 200, "{name} v1: {}", reply.text());
        let v2 = json!({"inputs": [{"name": "input__0", "shape": [1], "datatype": "BYTES",
                                    "data": [b64]}]})
        .to_string();
        let reply = server.request(
            "POST",
            &format!("/v2/models/{name}/infer"),
            &[("content-type", "application/json")],
            v2.as_bytes(),
        );
        assert_eq!(reply.status, 200, "{name} v2: {}", reply.text());
        let outputs = reply.json()["outputs"].clone();
        let probabilities = outputs
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "probabilities")
            .unwrap()["data"]
            .clone();
        let p = probabilities[1].as_f64().unwrap();
        let want_p = want["probabilities"]["metastatic"].as_f64().unwrap();
        assert!((p - want_p).abs() < 1e-6, "{name} v2: {p} vs {want_p}");
        answers.push(want["probabilities"].clone());
        // V2 metadata and Triton's configuration name the engine.
        let platform = server.get(&format!("/v2/models/{name}")).json()["platform"].clone();
        let config = server.get(&format!("/v2/models/{name}/config")).json();
        let (want_platform, want_backend) = match format {
            "pt" => ("pytorch_torchscript", "pytorch"),
            "pt2" => ("pytorch_aotinductor", "pytorch"),
            _ => ("onnxruntime_onnx", "onnxruntime"),
        };
        assert_eq!(platform, want_platform, "{name}");
        assert_eq!(config["backend"], want_backend, "{name}");
        // Explanations: TorchScript gives them; the others say why not.
        let reply = server.put(&format!("/explanations/{name}"), &image);
        if format == "pt" {
            assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        } else {
            assert_eq!(reply.status, 400, "{name}: {}", reply.text());
            assert!(
                reply
                    .text()
                    .contains("explanations need gradients, which only TorchScript models give"),
                "{name}: {}",
                reply.text()
            );
        }
    }
    // The three formats agree within the parity bound.
    for other in &answers[1..] {
        let (a, b) = (
            answers[0]["metastatic"].as_f64().unwrap(),
            other["metastatic"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // `archive inspect --verify` loads each and runs it (the package at a batch it takes).
    for format in formats {
        let mar = store.join(format!("pcam-{format}.mar"));
        let out = run(scancer().args(["archive", "inspect", "--verify", mar.to_str().unwrap()]));
        assert_eq!(out.code, 0, "{format}: {}", out.stderr);
        assert!(out.stdout.contains("verified: loaded in"), "{}", out.stdout);
    }
    // The management API describes each with its worker.
    for format in formats {
        let reply = server.request_to(
            server.management_port,
            "GET",
            &format!("/models/pcam-{format}"),
            &[],
            b"",
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()[0]["workers"][0]["status"], "READY");
    }
    assert!(!server.log().contains("panicked"));
}

/// `predict` with `model` (the pcam configuration) on one patch: refused with exit 2 and one line,
/// which is returned.
fn refused(model: &std::path::Path) -> String {
    let out = run(scancer()
        .args(["predict", "-m", model.to_str().unwrap()])
        .args(["-c", "examples/pcam-classification.toml", PATCH]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    out.stderr
}

#[test]
fn explanations_and_uncompiled_programs_are_refused_with_why() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["onnx", "pt2"] {
        let out = run(scancer().args([
            "predict",
            "-m",
            &exported(format),
            "--explain",
            dir.path().to_str().unwrap(),
            PATCH,
        ]));
        assert_eq!(out.code, 2, "{format}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("--explain needs gradients, which only TorchScript models give"),
            "{}",
            out.stderr
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    // A torch.export program saved as it is (not compiled by AOTInductor).
    let program = dir.path().join("program.pt2");
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&program).unwrap());
        for name in ["program/archive_format", "program/models/model.json"] {
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(b"pt2").unwrap();
        }
        zip.finish().unwrap();
    }
    let stderr = refused(&program);
    assert!(
        stderr.contains("runs only once compiled") && stderr.contains("aoti_compile_and_package"),
        "{stderr}"
    );
    // Not an ONNX model, though named one.
    let fake = dir.path().join("fake.onnx");
    std::fs::write(&fake, b"patient notes, not a model").unwrap();
    let stderr = refused(&fake);
    assert!(
        stderr.contains("fake.onnx: cannot load ONNX model"),
        "{stderr}"
    );
}

/// A model exported with its batch dimension fixed runs at that batch size, and says so plainly
/// at any other.
#[test]
fn a_fixed_batch_dimension_is_said_plainly() {
    let fixed = "testdata/models/fixed-batch-4.onnx";
    let image = "testdata/images/patch-gray.png";
    let out = run(scancer().args(["predict", "-m", fixed, "-q", image]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("takes batches of exactly 4 image(s)")
            && out.stderr.contains("scancer runs batches of 16")
            && out.stderr.contains("--batch-size 4"),
        "{}",
        out.stderr
    );
    // At its batch size it answers as the same network with a dynamic batch does.
    let dir = tempfile::tempdir().unwrap();
    let masks = dir.path().to_str().unwrap();
    let at_four = predict(fixed, &["-b", "4", "--mask-dir", masks, image]).record(image);
    let dynamic = predict(
        "testdata/models/tissue-segmentation.onnx",
        &["--mask-dir", masks, image],
    )
    .record(image);
    assert_eq!(at_four["class_fractions"], dynamic["class_fractions"]);
    // An AOTInductor package compiled from an example batch of 16 takes 16 and more.
    let out = run(scancer().args(["predict", "-m", &exported("pt2"), "-b", "4", PATCH]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let ours: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("scancer"))
        .collect();
    assert_eq!(ours.len(), 1, "{}", out.stderr);
    assert!(
        ours[0].contains("takes batches of at least 16 images")
            && ours[0].contains("--batch-size 16 or more"),
        "{}",
        out.stderr
    );
}

/// A package whose kernels need an instruction set this CPU lacks is refused before it runs (it
/// would stop the process with SIGILL): the example package, its metadata claiming AVX-512 or AMX.
#[test]
fn a_package_for_another_cpu_is_refused_before_it_runs() {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let lacks = |flag: &str| !flags.split_whitespace().any(|f| f == flag);
    let isa = match () {
        _ if lacks("avx512f") => "AVX512",
        _ if lacks("amx_tile") => "AMX",
        _ => "AVX2",
    };
    let dir = tempfile::tempdir().unwrap();
    let claimed = dir.path().join("pcam-classification.pt2");
    let mut source =
        zip::ZipArchive::new(std::fs::File::open(root().join(exported("pt2"))).unwrap()).unwrap();
    let mut copy = zip::ZipWriter::new(std::fs::File::create(&claimed).unwrap());
    for k in 0..source.len() {
        let mut entry = source.by_index(k).unwrap();
        let name = entry.name().to_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if name.ends_with("_metadata.json") {
            bytes = String::from_utf8(bytes)
                .unwrap()
                .replace("\"AVX2\"", &format!("\"{isa}\""))
                .into_bytes();
        }
        copy.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut copy, &bytes).unwrap();
    }
    copy.finish().unwrap();
    let out = run(scancer().args([
        "predict",
        "-m",
        claimed.to_str().unwrap(),
        "-c",
        "examples/pcam-classification.toml",
        "-q",
        PATCH,
    ]));
    if isa == "AVX2" {
        // A CPU with every instruction set scancer knows runs it.
        assert_eq!(out.code, 0, "{}", out.stderr);
        return;
    }
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "kernels were compiled for {isa}, and this CPU lacks it"
        )),
        "{}",
        out.stderr
    );
}

/// An AOTInductor package is unpacked only while it loads: a server killed while serving one
/// leaves nothing in the temporary folder.
#[test]
fn a_killed_server_leaves_no_unpacked_package() {
    let tmp = tempfile::tempdir().unwrap();
    let served = format!("pcam={}", exported("pt2"));
    let server = Server::start_with(
        &[&served, "-q"],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    let image = std::fs::read(root().join(PATCH)).unwrap();
    assert_eq!(server.put("/predictions/pcam", &image).status, 200);
    server.kill();
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Lanes load side by side while the first checks its batch shapes: libtorch's package loader
/// corrupted the heap about once in fifteen runs of eight lanes (a double free or a segmentation
/// fault) until scancer loaded one package at a time. Twenty-five runs catch it nearly always.
#[test]
fn many_lanes_load_a_package_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let mosaic = dir.path().join("mosaic.png");
    let mut slide = image::RgbImage::new(192, 192);
    for k in 0..4u32 {
        let patch = image::open(root().join(format!("examples/patches/patch-0{k}.png")))
            .unwrap()
            .to_rgb8();
        image::imageops::replace(&mut slide, &patch, (k as i64 % 2) * 96, (k as i64 / 2) * 96);
    }
    slide.save(&mosaic).unwrap();
    let tiles = dir.path().join("tiles.jsonl");
    for attempt in 0..25 {
        let out = run(scancer()
            .args([
                "predict",
                "-m",
                &exported("pt2"),
                "--tile",
                "--all-tiles",
                "-q",
            ])
            .args(["--threads", "8", "--tiles", tiles.to_str().unwrap()])
            .arg(&mosaic));
        assert_eq!(out.code, 0, "run {attempt}: {}", out.stderr);
    }
}
