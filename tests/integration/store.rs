//! `scancer store` against an in-process server that answers with a real TorchServe 0.12's recorded
//! bodies and codes.

use crate::util::fake_torchserve::{fixtures, FakeTorchServe};
use crate::util::{run, scancer, Run};
use serde_json::Value;

fn store(server: &FakeTorchServe, args: &[&str]) -> Run {
    store_env(server, args, &[])
}

fn store_env(server: &FakeTorchServe, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = scancer();
    cmd.args(["store", "--url", &server.url])
        .args(args)
        .env_remove("SCANCER_TOKEN")
        .env_remove("SCANCER_USER")
        .env_remove("SCANCER_PASSWORD")
        .env_remove("SCANCER_PROFILE")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        // `store` never opens the model engine: every store test runs without one.
        .env("SCANCER_TORCH", "/nonexistent/libscancer_torch.so");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// The server refused: exit 1 and one line that says `needle`.
fn refused(out: &Run, needle: &str) {
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains(needle), "{}", out.stderr);
}

fn body(name: &str) -> Value {
    serde_json::from_str(fixtures()[name]["body"].as_str().unwrap()).unwrap()
}

#[test]
fn list_follows_every_page() {
    let server = FakeTorchServe::start(
        &[
            ("GET", "/models?limit=100", &["list-page-1"]),
            (
                "GET",
                "/models?limit=100&next_page_token=1",
                &["list-page-2"],
            ),
            (
                "GET",
                "/models?limit=100&next_page_token=2",
                &["list-empty"],
            ),
        ],
        None,
    );
    let out = store(&server, &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "MODEL   URL\npcam    pcam.mar\ntissue  tissue.mar\n"
    );
    let out = store(&server, &["list", "--json"]);
    let merged: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut want = body("list-page-1")["models"].as_array().unwrap().clone();
    want.extend(body("list-page-2")["models"].as_array().unwrap().clone());
    assert_eq!(merged["models"], Value::Array(want));
}

#[test]
fn describe_versions() {
    let server = FakeTorchServe::start(
        &[
            ("GET", "/models/pcam", &["describe"]),
            ("GET", "/models/pcam/1.0", &["describe-version"]),
            ("GET", "/models/pcam/all", &["describe-all"]),
            ("GET", "/models/nope", &["describe-unknown"]),
            ("GET", "/models/pcam/9.9", &["describe-unknown-version"]),
        ],
        None,
    );
    let out = store(&server, &["describe", "pcam"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let described = body("describe");
    let pid = described[0]["workers"][0]["pid"].to_string();
    assert!(
        out.stdout
            .starts_with("pcam 1.0\n  url               pcam.mar\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  WORKER  STATUS  PID"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("  9000    READY   {pid}")),
        "{}",
        out.stdout
    );

    let out = store(&server, &["describe", "pcam", "--version", "1.0", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        body("describe-version")
    );
    let out = store(&server, &["describe", "pcam", "--all"]);
    assert_eq!(
        out.stdout.matches("\npcam ").count() + 1,
        body("describe-all").as_array().unwrap().len()
    );

    let out = store(&server, &["describe", "nope"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("scancer: error: GET {}/models/nope: HTTP 404 ModelNotFoundException: Model not found: nope\n", server.url)
    );
    let out = store(&server, &["describe", "pcam", "--version", "9.9"]);
    refused(&out, "Model version: 9.9 does not exist for model: pcam");
}

#[test]
fn register_scale_set_default_unregister_with_wait() {
    let server = FakeTorchServe::start(
        &[
            (
                "POST",
                "/models?url=pcam.mar&initial_workers=1&synchronous=true",
                &["register-sync"],
            ),
            // --wait polls the version the answer names (its description is the default's here).
            ("GET", "/models/pcam/1.0", &["describe"]),
            (
                "PUT",
                "/models/tissue?min_worker=2&max_worker=2&synchronous=false",
                &["scale-async"],
            ),
            // The scaled workers start one poll later.
            (
                "GET",
                "/models/tissue",
                &["describe-scaling", "describe-scaled-async"],
            ),
            ("PUT", "/models/pcam/2.0/set-default", &["set-default"]),
            ("DELETE", "/models/pcam/1.0", &["unregister-version"]),
            (
                "DELETE",
                "/models/pcam/2.0",
                &["unregister-default-version"],
            ),
        ],
        None,
    );
    let out = store(
        &server,
        &[
            "register",
            "pcam.mar",
            "--initial-workers",
            "1",
            "--synchronous",
            "--wait",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "Model \"pcam\" Version: 1.0 registered with 1 initial workers\n"
    );
    assert!(
        out.stderr.contains("pcam: 1 worker(s) READY"),
        "{}",
        out.stderr
    );

    let out = store(
        &server,
        &[
            "scale",
            "tissue",
            "--min-workers",
            "2",
            "--max-workers",
            "2",
            "--wait",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Processing worker updates...\n");
    assert!(
        out.stderr.contains("tissue: 2 worker(s) READY"),
        "{}",
        out.stderr
    );
    let polls = server
        .seen()
        .iter()
        .filter(|s| s.path == "/models/tissue")
        .count();
    let scaling_ready = body("describe-scaling")[0]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["status"] == "READY")
        .count();
    assert!(scaling_ready < 2 && polls >= 2, "{polls} polls");

    let out = store(&server, &["set-default", "pcam", "2.0"]);
    assert_eq!(
        out.stdout,
        "Default version successfully updated for model \"pcam\" to \"2.0\"\n"
    );
    let out = store(
        &server,
        &["unregister", "pcam", "--version", "1.0", "--json"],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        body("unregister-version")
    );
    let out = store(&server, &["unregister", "pcam", "--version", "2.0"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "HTTP 403 InvalidModelVersionException: Cannot remove default version for model pcam"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn refusals_come_with_their_fix() {
    let server = FakeTorchServe::start(
        &[
            (
                "POST",
                "/models?url=pcam.mar&initial_workers=1&synchronous=true",
                &["register-conflict"],
            ),
            (
                "POST",
                "/models?url=tissue.mar&synchronous=false",
                &["model-api-off-register"],
            ),
            ("DELETE", "/models/pcam", &["model-api-off-unregister"]),
            (
                "POST",
                "/models?url=missing.mar&synchronous=false",
                &["register-missing-file"],
            ),
            (
                "POST",
                "/models?url=Cargo.toml&synchronous=false",
                &["register-missing-file"],
            ),
            (
                "PUT",
                "/models/pcam?min_worker=3&max_worker=2&synchronous=false",
                &["scale-min-over-max"],
            ),
            ("GET", "/models?limit=100", &["token-missing"]),
        ],
        None,
    );
    let cases: [(&[&str], &str); 6] = [
        (&["register", "pcam.mar", "--initial-workers", "1", "--synchronous"], "HTTP 409 ConflictStatusException: Model version 1.0 is already registered for model pcam"),
        (&["register", "tissue.mar"], "(the server runs without --enable-model-api"),
        (&["unregister", "pcam"], "(the server runs without --enable-model-api"),
        (&["register", "missing.mar"], "HTTP 404 ModelNotFoundException: Model not found at: missing.mar"),
        (&["scale", "pcam", "--min-workers", "3", "--max-workers", "2"], "max_worker cannot be less than min_worker."),
        (&["list"], "InvalidKeyException: Token Authorization failed. Token either incorrect, expired, or not provided correctly (the server wants a token: pass --token"),
    ];
    for (args, needle) in cases {
        let out = store(&server, args);
        assert_eq!(out.code, 1, "{args:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    // A file that exists here, given by name: TorchServe looked in its own store.
    let out = store(&server, &["register", "Cargo.toml"]);
    assert!(
        out.stderr.contains("Cargo.toml is a file on this machine"),
        "{}",
        out.stderr
    );
    // A path is refused before anything is sent.
    let before = server.seen().len();
    let out = store(&server, &["register", "./models/pcam.mar"]);
    refused(&out, "a path on this machine; TorchServe needs a URL");
    assert_eq!(server.seen().len(), before);
}

#[test]
fn basic_auth_and_tokens() {
    let server = FakeTorchServe::start(
        &[("GET", "/models?limit=100", &["token-list"])],
        Some("ana:s3cret"),
    );
    let out = store(&server, &["list"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("HTTP 401: 401 Authorization Required"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pass --user NAME"), "{}", out.stderr);
    let out = store(&server, &["--user", "ana:wrong-pw", "list"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("wrong name or password"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-pw"));
    let out = store(&server, &["--user", "ana:s3cret", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "MODEL  URL\npcam   pcam.mar\n");
    // The password from the environment; no terminal to prompt on otherwise.
    let out = store_env(
        &server,
        &["--user", "ana", "list"],
        &[("SCANCER_PASSWORD", "s3cret")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = store(&server, &["--user", "ana", "list"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no password"), "{}", out.stderr);

    let tokens = FakeTorchServe::start(&[("GET", "/models?limit=100", &["token-list"])], None);
    let key_file = crate::util::root().join("testdata/torchserve/key_file.json");
    let out = store(
        &tokens,
        &["--token-file", key_file.to_str().unwrap(), "list"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = store_env(&tokens, &["list"], &[("SCANCER_TOKEN", "t0k")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let seen: Vec<Option<String>> = tokens.seen().into_iter().map(|s| s.authorization).collect();
    assert_eq!(
        seen,
        [
            Some("Bearer <redacted>".to_string()),
            Some("Bearer t0k".to_string())
        ]
    );
}

#[test]
fn profiles_and_unreachable_servers() {
    let server = FakeTorchServe::start(
        &[("GET", "/models?limit=100", &["token-list"])],
        Some("ana:pw"),
    );
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir(config.path().join("scancer")).unwrap();
    std::fs::write(
        config.path().join("scancer/config.toml"),
        format!("default_profile = \"local\"\n\n[profiles.production]\nstore_url = \"{}\"\nuser = \"ana\"\npassword = \"pw\"\n\n[profiles.local]\nstore_url = \"http://127.0.0.1:9\"\n", server.url),
    )
    .unwrap();
    let xdg = config.path().to_str().unwrap();
    let profile = |args: &[&str]| {
        run(scancer()
            .arg("store")
            .args(args)
            .env("XDG_CONFIG_HOME", xdg)
            .env_remove("SCANCER_STORE_URL")
            .env_remove("SCANCER_PROFILE"))
    };
    let out = profile(&["--profile", "production", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The default profile points at a closed port: exit 2, naming the URL and where it came from.
    let out = profile(&["list"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("cannot connect to http://127.0.0.1:9/models?limit=100"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("SCANCER_STORE_URL"), "{}", out.stderr);
    let out = profile(&["--profile", "staging", "list"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("no profile \"staging\" (profiles: local, production)"),
        "{}",
        out.stderr
    );
}

#[test]
fn wait_finds_an_asynchronously_registered_model_by_its_url() {
    // TorchServe answers an asynchronous register with 202 "Processing worker updates..." (recorded
    // for scale; the same answer), which names no model: its URL in the listing does.
    let server = FakeTorchServe::start(
        &[
            (
                "POST",
                "/models?url=tissue.mar&initial_workers=2&synchronous=false",
                &["scale-async"],
            ),
            ("GET", "/models?limit=100", &["list"]),
            (
                "GET",
                "/models/tissue",
                &["describe-scaling", "describe-scaled-async"],
            ),
        ],
        None,
    );
    let out = store(
        &server,
        &["register", "tissue.mar", "--initial-workers", "2", "--wait"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Processing worker updates...\n");
    assert!(
        out.stderr.contains("tissue: 2 worker(s) READY"),
        "{}",
        out.stderr
    );
}

#[test]
fn wrong_tokens_slow_servers_and_workers_that_never_start() {
    let server = FakeTorchServe::start(
        &[
            ("GET", "/models?limit=100", &["token-wrong"]),
            (
                "PUT",
                "/models/tissue?min_worker=2&synchronous=false",
                &["scale-async"],
            ),
            ("GET", "/models/tissue", &["describe-scaling"]),
        ],
        None,
    );
    let out = store(&server, &["--token", "tok-3f9a", "list"]);
    refused(&out, "(the token is wrong or expired");
    assert!(!out.stderr.contains("tok-3f9a"), "{}", out.stderr);
    let out = store(
        &server,
        &[
            "scale",
            "tissue",
            "--min-workers",
            "2",
            "--wait",
            "--wait-timeout",
            "1",
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("tissue: 1 of 2 workers READY after 1 s (--wait-timeout)"),
        "{}",
        out.stderr
    );

    // A server that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let out = run(scancer().args(["store", "--url", &url, "--timeout", "1", "list"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{url}/models?limit=100: no answer within 1 s")),
        "{}",
        out.stderr
    );
    drop(silent);
}

#[test]
fn a_closed_stdout_ends_store_quietly() {
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["describe", "pcam"],
    ] {
        let server = FakeTorchServe::start(
            &[
                ("GET", "/models?limit=100", &["list-page-1"]),
                (
                    "GET",
                    "/models?limit=100&next_page_token=1",
                    &["list-empty"],
                ),
                ("GET", "/models/pcam", &["describe"]),
            ],
            None,
        );
        let (code, stderr) = crate::util::with_closed_stdout(
            std::process::Command::new(env!("CARGO_BIN_EXE_scancer"))
                .args(["store", "--url", &server.url])
                .args(&args)
                .env_remove("SCANCER_TOKEN")
                .env_remove("SCANCER_USER")
                .env("XDG_CONFIG_HOME", "/nonexistent"),
        );
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("internal error"), "{args:?}: {stderr}");
    }
}
