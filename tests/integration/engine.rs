//! The libtorch engine is opened only by commands that run a model: every other command works with
//! no engine at all, and a missing engine is one clear error naming where scancer looked. ONNX
//! models run in ONNX Runtime alone: scancer with only libonnxruntime beside it runs them.

use crate::util::server::Server;
use crate::util::{root, run, scancer, PCAM};

/// A path where no engine is: `SCANCER_TORCH` makes scancer look there alone.
const NOWHERE: &str = "/nonexistent/libscancer_torch.so";

#[test]
fn commands_that_run_no_model_need_no_engine() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--version"],
        vec!["--help"],
        vec!["predict", "--help"],
        vec![
            "archive",
            "--model-name",
            "pcam",
            "--version",
            "1.0",
            "--serialized-file",
            PCAM,
            "--config",
            "examples/pcam-classification.toml",
            "--export-path",
            dir.path().to_str().unwrap(),
        ],
        vec![
            "archive",
            "inspect",
            dir.path().join("pcam.mar").to_str().unwrap(),
        ],
    ] {
        let out = run(scancer().env("SCANCER_TORCH", NOWHERE).args(&args));
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("engine"), "{args:?}: {}", out.stderr);
    }

    // predict --remote and store against a server that has the engine.
    let server = Server::start(&[PCAM, "-q"]);
    let url = format!("http://127.0.0.1:{}", server.port);
    let out = run(scancer().env("SCANCER_TORCH", NOWHERE).args([
        "predict",
        "--remote",
        &url,
        "-m",
        "pcam-classification",
        "-f",
        "jsonl",
        "examples/patches/patch-00.png",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.records().len(), 1);
    assert!(out.records()[0]["error"].is_null());
}

#[test]
fn a_missing_engine_is_one_error_naming_where_scancer_looked() {
    for args in [
        vec!["predict", "-m", PCAM, "examples/patches/patch-00.png"],
        vec!["serve", "--port", "0", "--grpc-port", "0", PCAM],
    ] {
        let out = run(scancer().env("SCANCER_TORCH", NOWHERE).args(&args));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
        let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
        assert!(
            lines[0].contains(&format!("SCANCER_TORCH={NOWHERE}"))
                && lines[0].contains("libscancer_torch.so is not installed"),
            "{args:?}: {}",
            lines[0]
        );
    }
}

/// scancer copied alone into a folder with ONNX Runtime's library beside it, as a minimal container
/// would hold it: no libtorch engine is reachable there.
fn onnx_only_install() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("scancer");
    std::fs::copy(assert_cmd::cargo::cargo_bin("scancer"), &binary).unwrap();
    let runtime = root().join(".onnxruntime/libonnxruntime.so.1");
    assert!(
        runtime.is_file(),
        "{} is missing: run `cargo xtask setup`",
        runtime.display()
    );
    std::fs::copy(&runtime, dir.path().join("libonnxruntime.so.1")).unwrap();
    (dir, binary)
}

#[test]
fn onnx_models_run_without_libtorch() {
    let (_dir, binary) = onnx_only_install();
    let onnx = "examples/pcam-classification.onnx";
    let alone = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::new(&binary);
        cmd.current_dir(root())
            .env_remove("SCANCER_TORCH")
            .env_remove("SCANCER_ONNXRUNTIME")
            .env_remove("LD_LIBRARY_PATH")
            .args(args);
        run(&mut cmd)
    };
    let args = [
        "predict",
        "-m",
        onnx,
        "-f",
        "jsonl",
        "-q",
        "examples/patches",
    ];
    let out = alone(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.records().len(), 12);
    // The same answers as the build tree's scancer gives.
    assert_eq!(out.stdout, run(scancer().args(args)).stdout);
    // A TorchScript model there is one error: its engine is not installed.
    let out = alone(&["predict", "-m", PCAM, "examples/patches/patch-00.png"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("libscancer_torch.so is not installed"),
        "{}",
        out.stderr
    );

    // serve maps ONNX Runtime and never libtorch.
    let server = Server::start_binary(&binary, &[&format!("pcam={onnx}"), "-q"], &[]);
    let patch = std::fs::read(root().join("examples/patches/patch-00.png")).unwrap();
    let reply = server.put("/predictions/pcam", &patch);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let libraries = server.mapped_libraries();
    assert!(
        libraries
            .iter()
            .any(|l| l.ends_with("/libonnxruntime.so.1")),
        "{libraries:?}"
    );
    assert!(
        !libraries
            .iter()
            .any(|l| l.contains("libtorch") || l.contains("libc10")),
        "{libraries:?}"
    );
}

#[test]
fn a_missing_onnx_runtime_is_one_error_naming_where_scancer_looked() {
    let nowhere = "/nonexistent/libonnxruntime.so.1";
    let out = run(scancer().env("SCANCER_ONNXRUNTIME", nowhere).args([
        "predict",
        "-m",
        "examples/pcam-classification.onnx",
        "examples/patches/patch-00.png",
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("SCANCER_ONNXRUNTIME={nowhere}"))
            && out
                .stderr
                .contains("ONNX Runtime (libonnxruntime.so.1) is not installed"),
        "{}",
        out.stderr
    );
}
