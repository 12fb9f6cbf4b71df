//! Helpers shared by the integration tests: run the real binary, parse its records, find the
//! optional tools that `cargo xtask setup` fetches.

pub mod fake_torchserve;
pub mod files;
pub mod server;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const PCAM: &str = "examples/pcam-classification.pt";
pub const MULTICLASS: &str = "testdata/models/tissue-multiclass.pt";
pub const SEGMENTATION: &str = "testdata/models/tissue-segmentation.pt";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scancer` run from the repository root, so paths in records are the relative paths we pass.
pub fn scancer() -> Command {
    let mut cmd = Command::cargo_bin("scancer").expect("binary built");
    cmd.current_dir(root()).env_remove("NO_COLOR");
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn records(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l:?}: {e}"))
            })
            .collect()
    }

    pub fn record(&self, path: &str) -> Value {
        let matching: Vec<Value> = self
            .records()
            .into_iter()
            .filter(|r| r["path"] == path)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "exactly one record for {path} in {}",
            self.stdout
        );
        matching.into_iter().next().unwrap()
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("scancer runs");
    let Some(code) = out.status.code() else {
        panic!(
            "{cmd:?} did not exit but was killed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    Run {
        code,
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

/// `scancer predict -m MODEL ARGS... -f jsonl -q`.
pub fn predict(model: &str, args: &[&str]) -> Run {
    run(scancer()
        .args(["predict", "-m", model, "-f", "jsonl", "-q"])
        .args(args))
}

pub fn reference() -> Value {
    let text = std::fs::read_to_string(root().join("testdata/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Asserts a one-line error on stderr that contains `needle`, no panic, nothing on stdout.
pub fn assert_fatal(run: &Run, needle: &str) {
    assert_eq!(run.code, 2, "exit status; stderr: {}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "nothing on stdout, got {:?}",
        run.stdout
    );
    assert_eq!(run.stderr.lines().count(), 1, "one line: {:?}", run.stderr);
    assert!(
        run.stderr.starts_with("scancer: error: "),
        "{:?}",
        run.stderr
    );
    assert!(
        run.stderr.contains(needle),
        "{:?} should contain {needle:?}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{:?}", run.stderr);
}

pub fn copy_to(dir: &Path, rel: &str, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(root().join(rel), &to).unwrap();
    to
}

/// Runs `cmd` with standard output a socket whose reader has already gone (EPIPE, as a pipe to
/// `head` that has exited): its exit code and standard error.
pub fn with_closed_stdout(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(reader);
    let out = cmd
        .stdout(std::os::fd::OwnedFd::from(writer))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An optional tool or file that `cargo xtask setup` fetches and `.cargo/config.toml` names in
/// `var`. When it is missing the test says so and is skipped (`None`), straight to the terminal, past
/// the harness's capture; where SCANCER_NO_SKIP is set (CI sets it), a missing tool fails the test
/// instead, so that CI never passes on skipped tests.
pub fn fetched(var: &str, test: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty() && p.exists());
    if path.is_none() {
        skip(
            test,
            &format!(
                "{var} does not name an existing file ({:?}); run `cargo xtask setup`",
                std::env::var_os(var).unwrap_or_default()
            ),
        );
    }
    path
}

/// A test that cannot run here says why and is skipped, straight to the terminal; where
/// SCANCER_NO_SKIP is set (CI), it fails instead.
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    if std::env::var_os("SCANCER_NO_SKIP").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: {why} (SCANCER_NO_SKIP is set: nothing may be skipped)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A third-party client script's JSON answer; it must succeed (its stderr says why not).
pub fn client_json(cmd: &mut std::process::Command) -> Value {
    let out = cmd.output().expect("the client runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client prints JSON")
}
