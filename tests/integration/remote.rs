//! `scancer predict --remote`: against `scancer serve` (the same table as local predict) and against
//! recorded TorchServe 0.12 answers (bodies, errors, retries, credentials).

use crate::util::fake_torchserve::FakeTorchServe;
use crate::util::server::Server;
use crate::util::{predict, run, scancer, Run, MULTICLASS, PCAM, SEGMENTATION};

fn remote(url: &str, args: &[&str]) -> Run {
    run(scancer()
        .args(["predict", "--remote", url, "--color", "never"])
        .args(args)
        .env_remove("SCANCER_TOKEN")
        .env_remove("SCANCER_USER")
        .env_remove("SCANCER_PASSWORD")
        .env("XDG_CONFIG_HOME", "/nonexistent"))
}

/// Images sent (the metadata GET aside).
fn puts(server: &FakeTorchServe) -> usize {
    server.seen().iter().filter(|s| s.method == "PUT").count()
}

#[test]
fn remote_and_local_runs_give_the_same_records() {
    let server = Server::start(&[PCAM, "-q"]);
    let url = format!("http://127.0.0.1:{}", server.port);
    let inputs = [
        "examples/patches",
        "testdata/images/small-50x50.png",
        "testdata/images/corrupt.jpg",
        "missing.png",
    ];
    for format in ["table", "jsonl", "csv"] {
        let local = run(scancer()
            .args(["predict", "-m", PCAM, "--color", "never", "-f", format])
            .args(inputs));
        let mut args = vec!["-m", "pcam-classification", "-f", format, "--jobs", "4"];
        args.extend(inputs);
        let remote = remote(&url, &args);
        assert_eq!(remote.code, 1, "{}", remote.stderr);
        assert_eq!(local.code, 1);
        let (local, remote) = (
            local.stdout.lines().collect::<Vec<_>>(),
            remote.stdout.lines().collect::<Vec<_>>(),
        );
        assert_eq!(local.len(), remote.len());
        for (l, r) in local.iter().zip(&remote) {
            // Failures read differently (the server words its own errors); results are equal.
            if l.contains("error")
                || l.contains("No such file")
                || l.contains("cannot")
                || l.contains("50x50")
            {
                continue;
            }
            assert_eq!(l, r, "{format}");
        }
    }
    let all = remote(
        &url,
        &[
            "-m",
            "pcam-classification",
            "-f",
            "jsonl",
            "examples/patches",
        ],
    );
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(all.stdout, predict(PCAM, &["examples/patches"]).stdout);
}

#[test]
fn torchserve_bodies_become_records() {
    let server = FakeTorchServe::start(
        &[("PUT", "/predictions/pcam?details=true", &["predict"])],
        None,
    );
    let out = remote(
        &server.url,
        &["-m", "pcam", "-f", "jsonl", "examples/patches/patch-00.png"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "{\"path\":\"examples/patches/patch-00.png\",\"label\":\"1\",\"class\":1,\"score\":null,\"probabilities\":{\"0\":null,\"1\":null},\"error\":null}\n"
    );
    // With the model's configuration, its labels.
    let out = remote(
        &server.url,
        &[
            "-m",
            "pcam",
            "-c",
            "examples/pcam-classification.toml",
            "examples/patches/patch-00.png",
        ],
    );
    assert_eq!(out.stdout, "PATH                           LABEL       SCORE\nexamples/patches/patch-00.png  metastatic  -\n");
}

#[test]
fn fatal_answers_stop_the_run_with_the_fix() {
    let server = FakeTorchServe::start(
        &[
            (
                "PUT",
                "/predictions/nope?details=true",
                &["predict-unknown"],
            ),
            (
                "PUT",
                "/predictions/pcam?details=true",
                &["token-predict-missing"],
            ),
        ],
        None,
    );
    for (model, needle) in [
        ("nope", "HTTP 404 ModelNotFoundException: Model not found: nope (check --model"),
        ("pcam", "InvalidKeyException: Token Authorization failed. Token either incorrect, expired, or not provided correctly (the server wants its inference token"),
    ] {
        let out = remote(&server.url, &["-m", model, "examples/patches"]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stdout.is_empty());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(needle), "{}", out.stderr);
    }
    // Only the first image was sent each time.
    assert_eq!(puts(&server), 2);

    let nginx = FakeTorchServe::start(
        &[("PUT", "/predictions/pcam?details=true", &["predict"])],
        Some("ana:pw"),
    );
    let out = remote(&nginx.url, &["-m", "pcam", "examples/patches"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("HTTP 401: 401 Authorization Required"),
        "{}",
        out.stderr
    );
    let out = remote(
        &nginx.url,
        &["-m", "pcam", "--user", "ana:pw", "-q", "examples/patches"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 13);
}

#[test]
fn busy_servers_are_retried() {
    let server = FakeTorchServe::start(
        &[(
            "PUT",
            "/predictions/pcam?details=true",
            &["predict-no-worker", "predict"],
        )],
        None,
    );
    let out = remote(
        &server.url,
        &[
            "-m",
            "pcam",
            "-f",
            "jsonl",
            "--retries",
            "2",
            "examples/patches/patch-00.png",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"class\":1"), "{}", out.stdout);
    assert_eq!(puts(&server), 2);

    let busy = FakeTorchServe::start(
        &[(
            "PUT",
            "/predictions/pcam?details=true",
            &["predict-no-worker"],
        )],
        None,
    );
    let out = remote(
        &busy.url,
        &[
            "-m",
            "pcam",
            "-f",
            "jsonl",
            "--retries",
            "1",
            "examples/patches/patch-00.png",
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("HTTP 503 ServiceUnavailableException: Model \\\"idle\\\" has no worker"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(after 2 tries)"), "{}", out.stdout);
}

#[test]
fn inference_tokens_are_sent() {
    let server = FakeTorchServe::start(
        &[("PUT", "/predictions/pcam?details=true", &["token-predict"])],
        None,
    );
    let key_file = crate::util::root().join("testdata/torchserve/key_file.json");
    let out = remote(
        &server.url,
        &[
            "-m",
            "pcam",
            "-q",
            "--token-file",
            key_file.to_str().unwrap(),
            "examples/patches/patch-00.png",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        server.seen()[0].authorization.as_deref(),
        Some("Bearer <redacted>")
    );
}

#[test]
fn multiclass_and_segmentation_records_and_masks_match_local_ones() {
    let server = Server::start(&[MULTICLASS, SEGMENTATION, "-q"]);
    let url = format!("http://127.0.0.1:{}", server.port);
    let images = [
        "testdata/images/patch.jpg",
        "testdata/images/tall-130x160.png",
    ];
    let local = predict(MULTICLASS, &images);
    let mut args = vec!["-m", "tissue-multiclass", "-f", "jsonl", "-q"];
    args.extend(images);
    assert_eq!(remote(&url, &args).stdout, local.stdout);

    let dir = tempfile::tempdir().unwrap();
    let (here, there) = (dir.path().join("local"), dir.path().join("remote"));
    let local = predict(
        SEGMENTATION,
        &[images[0], "--mask-dir", here.to_str().unwrap()],
    );
    let remote = remote(
        &url,
        &[
            "-m",
            "tissue-segmentation",
            "-f",
            "jsonl",
            "-q",
            "--mask-dir",
            there.to_str().unwrap(),
            images[0],
        ],
    );
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    let strip = |s: &str, dir: &std::path::Path| s.replace(dir.to_str().unwrap(), "MASKS");
    assert_eq!(strip(&remote.stdout, &there), strip(&local.stdout, &here));
    assert_eq!(
        std::fs::read(there.join("patch.mask.png")).unwrap(),
        std::fs::read(here.join("patch.mask.png")).unwrap()
    );
}
