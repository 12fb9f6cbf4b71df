//! The libtorch engine is opened only by commands that run a model: every other command works with
//! no engine at all, and a missing engine is one clear error naming where scancer looked.

use crate::util::server::Server;
use crate::util::{run, scancer, PCAM};

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
