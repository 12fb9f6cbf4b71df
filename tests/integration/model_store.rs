//! `scancer serve` as Scancer's model store: TorchServe's start-up interface and three listeners,
//! the management API's writes answered as a real TorchServe 0.12 answers them (the recordings in
//! testdata/torchserve/store, made by examples/record_torchserve_store.py), the README's workflow
//! through curl and `scancer store`, TorchServe's tokens, config snapshots across SIGKILL, changes
//! under load, and KServe's layout and command line.

use crate::util::files::FileServer;
use crate::util::root;
use crate::util::server::{connect, read_reply, send, Reply, Server};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A work folder with a model store holding pcam.mar (1.0), pcam-2.0.mar (2.0) and broken.mar (not
/// an archive), as the recordings had, and `www/files/pcamurl.mar` for a file server.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(dir.path().join("www/files")).unwrap();
        for (version, file) in [("1.0", "pcam.mar"), ("2.0", "pcam-2.0.mar")] {
            let out = dir.path().join(format!("v{version}"));
            std::fs::create_dir_all(&out).unwrap();
            crate::util::scancer()
                .args(["archive", "--model-name", "pcam", "--version", version])
                .args(["--serialized-file", "examples/pcam-classification.pt"])
                .args(["--config", "examples/pcam-classification.toml", "-f"])
                .arg("--export-path")
                .arg(&out)
                .assert()
                .success();
            std::fs::rename(out.join("pcam.mar"), store.join(file)).unwrap();
        }
        std::fs::copy(
            store.join("pcam.mar"),
            dir.path().join("www/files/pcamurl.mar"),
        )
        .unwrap();
        std::fs::write(store.join("broken.mar"), "this is not a zip archive\n").unwrap();
        Work { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn store(&self) -> PathBuf {
        self.path().join("store")
    }

    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.store())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A key of the key_file.json the server wrote.
    fn key(&self, kind: &str) -> String {
        let text = std::fs::read_to_string(self.path().join("key_file.json")).unwrap();
        let keys: Value = serde_json::from_str(&text).unwrap();
        keys[kind]["key"].as_str().unwrap().to_string()
    }
}

fn fixtures() -> Vec<Value> {
    let text =
        std::fs::read_to_string(root().join("testdata/torchserve/store/fixtures.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fixture(name: &str) -> Value {
    fixtures()
        .into_iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

fn patch() -> Vec<u8> {
    std::fs::read(root().join("examples/patches/patch-00.png")).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Which of the server's ports a fixture's request went to.
fn port_of(server: &Server, fixture: &Value) -> u16 {
    match fixture["port"].as_str() {
        Some("inference") => server.port,
        Some("metrics") => server.metrics_port,
        _ => server.management_port,
    }
}

/// `describe` answers compared as TorchServe's: every field and worker field present, the same
/// values but for what is the process's own (ids, pids, times, memory), and, where `delay` is
/// false, maxBatchDelay apart (TorchServe's JSON registrations record -10000 there).
fn same_description(ours: &Value, theirs: &Value, delay: bool, name: &str) {
    let (ours, theirs) = (ours.as_array().unwrap(), theirs.as_array().unwrap());
    assert_eq!(ours.len(), theirs.len(), "{name}: {ours:?}");
    for (o, t) in ours.iter().zip(theirs) {
        let (o, t) = (o.as_object().unwrap(), t.as_object().unwrap());
        let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(o),
            keys(t),
            "{name}: the same fields in the same order"
        );
        for (key, value) in t {
            match key.as_str() {
                "workers" => {
                    let (ow, tw) = (o[key].as_array().unwrap(), value.as_array().unwrap());
                    assert_eq!(ow.len(), tw.len(), "{name}: workers {ow:?}");
                    for (a, b) in ow.iter().zip(tw) {
                        assert_eq!(
                            keys(a.as_object().unwrap()),
                            keys(b.as_object().unwrap()),
                            "{name}: worker fields"
                        );
                        assert_eq!(a["gpu"], b["gpu"], "{name}");
                        assert_eq!(a["gpuUsage"], b["gpuUsage"], "{name}");
                    }
                }
                "maxBatchDelay" if !delay => {}
                _ => assert_eq!(&o[key], value, "{name}: {key}"),
            }
        }
    }
}

/// A server on the work folder's store with the model API on, no TorchServe keys, and downloads
/// allowed from `files`.
fn open_store(work: &Work, files: &FileServer, extra: &[&str]) -> Server {
    let mut args = store_args(files);
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_in(work.path(), &args, &[])
}

fn store_args(files: &FileServer) -> Vec<String> {
    [
        "--model-store",
        "store",
        "--enable-model-api",
        "--disable-token-auth",
        "--allowed-urls",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!("{}/.*", files.url)])
    .collect()
}

/// Polls `GET /models/{name}` until every worker is READY.
fn wait_ready(server: &Server, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = server.request_to(
            server.management_port,
            "GET",
            &format!("/models/{name}"),
            &[],
            b"",
        );
        let ready = reply.status == 200
            && reply.json()[0]["workers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|w| w["status"] == "READY");
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became ready: {}",
            reply.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where scancer answers differently from TorchServe 0.12 on purpose (README, "Differences from
/// TorchServe"), and why.
const DIFFERENT: &[(&str, &str)] = &[
    ("url-register-no-extension", "an archive that cannot be read is refused (400) and its download removed; TorchServe answers 500 and leaves the file"),
    ("scale-negative", "negative workers are a 400; TorchServe fails with a 500 IndexOutOfBoundsException"),
    ("metrics-port-metrics", "scancer's /metrics is Prometheus text; TorchServe's log mode sends an empty body"),
    ("no-envelope-v1-predict", "KServe V1 works without an envelope; TorchServe's handler fails (503)"),
    ("no-envelope-v1-ready-inference", "readiness is answered on the inference port too"),
    ("no-envelope-v2-infer", "V2 is native: an input scancer does not have is a V2 400; TorchServe's handler fails (503)"),
    ("register-json-bad", "the message names the JSON error in serde's words, not Gson's"),
    ("register-broken", "the message says what is wrong with the file (the status and type are TorchServe's)"),
    ("register-broken-named", "a file that is not an archive is never registered; TorchServe registers it with 0 workers"),
    ("describe-broken-named", "(not registered)"),
    ("register-name-slash", "model names follow torch-model-archiver's rule; TorchServe registers a name it can never address"),
    ("register-name-space", "(as above)"),
    ("list-odd-names", "(as above)"),
    ("describe-name-space", "(as above)"),
    ("describe-name-slash", "(as above)"),
    ("unregister-name-slash", "(as above)"),
    ("unregister-name-space", "(as above)"),
    ("list-end-of-main", "(as above)"),
];

/// The request body a fixture's request carried (the recordings keep only its headers).
fn body_of(name: &str, image: &[u8]) -> Vec<u8> {
    let body = match name {
        "register-json" => {
            json!({"url": "pcam.mar", "model_name": "jsonreg", "initial_workers": 1, "synchronous": true})
        }
        "register-json-minimal" => json!({"url": "pcam.mar", "model_name": "jsonmin"}),
        "register-json-and-query" => json!({"url": "pcam.mar", "model_name": "bodyname"}),
        "register-json-bad" => return b"{not json".to_vec(),
        _ => return image.to_vec(),
    };
    body.to_string().into_bytes()
}

#[test]
fn the_management_api_answers_as_torchserve_does() {
    let work = Work::new();
    let files = FileServer::serve(work.path().join("www"));
    // TorchServe's defaults for what scancer sets otherwise: batches of 1 within 100 ms.
    let server = open_store(
        &work,
        &files,
        &["--batch-size", "1", "--max-batch-delay", "100"],
    );
    let image = patch();
    let all = fixtures();
    let end = all
        .iter()
        .position(|f| f["name"] == "list-end-of-main")
        .unwrap();
    let mut compared = 0;
    for f in &all[..=end] {
        let name = f["name"].as_str().unwrap();
        let path = f["path"]
            .as_str()
            .unwrap()
            .replace("<URL>", &files.url)
            .replace("<WORK>", &work.path().display().to_string());
        let method = f["method"].as_str().unwrap();
        let headers: Vec<(String, String)> = f["request_headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let expected = f["body"]
            .as_str()
            .unwrap()
            .replace("<URL>", &files.url)
            .replace("<WORK>", &work.path().display().to_string());
        let is_describe = expected.starts_with("[\n  {\n    \"modelName\"");
        if is_describe && expected.contains("\"READY\"") && !expected.contains("\"UNLOADING\"") {
            let model = path
                .trim_start_matches("/models/")
                .split('/')
                .next()
                .unwrap();
            wait_ready(&server, model);
        }
        let body = if method == "GET" || method == "DELETE" {
            Vec::new()
        } else {
            body_of(name, &image)
        };
        let reply = server.request_to(port_of(&server, f), method, &path, &headers, &body);
        if let Some((_, why)) = DIFFERENT.iter().find(|(n, _)| *n == name) {
            // Still an answer of TorchServe's kind, just not its bytes.
            assert!(reply.status >= 200, "{name} ({why})");
            if name == "register-broken" {
                assert_eq!(
                    (reply.status, reply.json()["type"].as_str()),
                    (400, Some("InvalidModelException"))
                );
            }
            continue;
        }
        assert_eq!(
            reply.status,
            f["status"].as_u64().unwrap() as u16,
            "{name}: {}",
            reply.text()
        );
        if let Some(kind) = f["headers"]["content-type"].as_str() {
            assert_eq!(reply.header("content-type"), Some(kind), "{name}");
        }
        if is_describe {
            let delay = !name.starts_with("describe-json");
            let theirs: Value = serde_json::from_str(&expected).unwrap();
            same_description(&reply.json(), &theirs, delay, name);
        } else {
            assert_eq!(reply.text(), expected, "{name}");
        }
        if let Some(listing) = f["store"].as_array() {
            // TorchServe left `pcamurl` behind (url-register-no-extension); scancer does not.
            let theirs: Vec<&str> = listing
                .iter()
                .filter_map(Value::as_str)
                .filter(|n| *n != "pcamurl")
                .collect();
            assert_eq!(work.listing(), theirs, "{name}: the model store afterwards");
        }
        compared += 1;
    }
    assert!(compared >= 65, "only {compared} fixtures compared");
}

#[test]
fn tokens_work_as_torchserves() {
    let work = Work::new();
    let server = Server::start_in(
        work.path(),
        &["--model-store", "store", "--models", "pcam=pcam.mar"],
        &[],
    );
    let keys = std::fs::read_to_string(work.path().join("key_file.json")).unwrap();
    let shape: Value = serde_json::from_str(&keys).unwrap();
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("testdata/torchserve/store/key_file.json")).unwrap(),
    )
    .unwrap();
    let fields = |v: &Value| -> Vec<(String, Vec<String>)> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, inner)| {
                (
                    k.clone(),
                    inner.as_object().unwrap().keys().cloned().collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        fields(&shape),
        fields(&recorded),
        "key_file.json has TorchServe's shape"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(work.path().join("key_file.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let bearer = |kind: &str| format!("Bearer {}", work.key(kind));
    let (inference, management) = (server.port, server.management_port);
    let image = patch();
    let expect = |reply: Reply, name: &str| {
        let f = fixture(name);
        assert_eq!(
            reply.status,
            f["status"].as_u64().unwrap() as u16,
            "{name}: {}",
            reply.text()
        );
        assert_eq!(reply.text(), f["body"].as_str().unwrap(), "{name}");
    };
    let old_fixtures: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(root().join("testdata/torchserve/fixtures.json")).unwrap(),
    )
    .unwrap();
    let missing = old_fixtures
        .iter()
        .find(|f| f["name"] == "token-missing")
        .unwrap();
    let reply = server.request_to(management, "GET", "/models", &[], b"");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (400, missing["body"].as_str().unwrap())
    );
    expect(
        server.request_to(inference, "GET", "/ping", &[], b""),
        "token-ping-no-token",
    );
    expect(
        server.request_to(
            inference,
            "GET",
            "/ping",
            &[("authorization", &bearer("inference"))],
            b"",
        ),
        "token-ping-inference-key",
    );
    expect(
        server.request_to(
            management,
            "GET",
            "/models",
            &[("authorization", &bearer("inference"))],
            b"",
        ),
        "token-management-with-inference-key",
    );
    expect(
        server.request_to(
            inference,
            "PUT",
            "/predictions/pcam",
            &[("authorization", &bearer("management"))],
            &image,
        ),
        "token-inference-with-management-key",
    );
    expect(
        server.request_to(
            inference,
            "PUT",
            "/predictions/pcam",
            &[("authorization", &bearer("API"))],
            &image,
        ),
        "token-inference-with-api-key",
    );
    let lowercase = format!("bearer {}", work.key("management"));
    expect(
        server.request_to(
            management,
            "GET",
            "/models",
            &[("authorization", &lowercase)],
            b"",
        ),
        "token-bearer-lowercase",
    );
    expect(
        server.request_to(
            inference,
            "GET",
            "/token?type=inference",
            &[("authorization", &bearer("API"))],
            b"",
        ),
        "token-on-inference-port",
    );
    for (name, query, key) in [
        ("token-wrong-api-key", "?type=management", "Bearer wrong"),
        ("token-no-type", "", &*bearer("API")),
        ("token-bogus-type", "?type=bogus", &*bearer("API")),
        ("token-uppercase-type", "?type=MANAGEMENT", &*bearer("API")),
        (
            "token-with-management-key",
            "?type=management",
            &*bearer("management"),
        ),
    ] {
        expect(
            server.request_to(
                management,
                "GET",
                &format!("/token{query}"),
                &[("authorization", key)],
                b"",
            ),
            name,
        );
    }
    // A new management key: the old one stops working at once, the new one works.
    let old = bearer("management");
    expect(
        server.request_to(
            management,
            "GET",
            "/token?type=management",
            &[("authorization", &bearer("API"))],
            b"",
        ),
        "token-regen-management",
    );
    expect(
        server.request_to(
            management,
            "GET",
            "/models",
            &[("authorization", &old)],
            b"",
        ),
        "token-old-management-key",
    );
    let list = server.request_to(
        management,
        "GET",
        "/models",
        &[("authorization", &bearer("management"))],
        b"",
    );
    assert_eq!(list.status, 200);
    // The same for inference, through POST as TorchServe allows.
    let old = bearer("inference");
    expect(
        server.request_to(
            management,
            "POST",
            "/token?type=inference",
            &[("authorization", &bearer("API"))],
            b"",
        ),
        "token-regen-post",
    );
    expect(
        server.request_to(
            inference,
            "PUT",
            "/predictions/pcam",
            &[("authorization", &old)],
            &image,
        ),
        "token-old-inference-key",
    );
    let reply = server.request_to(
        inference,
        "PUT",
        "/predictions/pcam",
        &[("authorization", &bearer("inference"))],
        &image,
    );
    assert_eq!((reply.status, reply.text().as_str()), (200, "1"));
    // The metrics port needs no key, as in TorchServe.
    assert_eq!(
        server
            .request_to(server.metrics_port, "GET", "/metrics", &[], b"")
            .status,
        200
    );

    // `scancer store` and `scancer predict --remote` with TorchServe's key file.
    let key_file = work.path().join("key_file.json");
    let key_file = key_file.to_str().unwrap();
    let management = format!("http://127.0.0.1:{management}");
    let listed = scancer_ok(&[
        "store",
        "--url",
        &management,
        "list",
        "--token-file",
        key_file,
    ]);
    assert!(listed.contains("pcam"), "{listed}");
    let inference = format!("http://127.0.0.1:{inference}");
    let predicted = scancer_ok(&[
        "predict",
        "--remote",
        &inference,
        "--model",
        "pcam",
        "-f",
        "csv",
        "--token-file",
        key_file,
        "examples/patches/patch-00.png",
    ]);
    assert!(predicted.contains("patch-00.png"), "{predicted}");
}

/// `scancer ARGS...` from the repository root, which must succeed: its standard output.
fn scancer_ok(args: &[&str]) -> String {
    let out = crate::util::run(crate::util::scancer().args(args));
    assert_eq!(out.code, 0, "scancer {args:?}: {}", out.stderr);
    out.stdout
}

/// curl as a user types it.
fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .arg("-sS")
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_readme_workflow_through_curl_and_scancer_store() {
    let work = Work::new();
    let files = FileServer::serve(work.path().join("www"));
    let server = open_store(&work, &files, &[]);
    let m = server.management_port;
    let status = |text: &str| {
        serde_json::from_str::<Value>(text).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The Scancer API README's commands, on loopback ports.
    assert_eq!(
        curl(&["-X", "GET", &format!("http://localhost:{m}/models")]),
        "{\n  \"models\": []\n}\n"
    );
    let url = format!("{}/files/pcamurl.mar", files.url);
    assert_eq!(
        status(&curl(&["-X", "POST", &format!("http://localhost:{m}/models?url={url}")])),
        "Model \"pcam\" Version: 1.0 registered with 0 initial workers. Use scale workers API to add workers for the model."
    );
    assert!(
        work.listing().contains(&"pcamurl.mar".to_string()),
        "downloaded into the store"
    );
    let described: Value =
        serde_json::from_str(&curl(&[&format!("http://127.0.0.1:{m}/models/pcam")])).unwrap();
    assert_eq!(described[0]["modelUrl"], url.as_str());
    assert_eq!(
        status(&curl(&[
            "-X",
            "PUT",
            &format!("http://127.0.0.1:{m}/models/pcam?min_worker=2&synchronous=true")
        ])),
        "Workers scaled to 2 for model: pcam"
    );
    let described: Value =
        serde_json::from_str(&curl(&[&format!("http://127.0.0.1:{m}/models/pcam")])).unwrap();
    assert_eq!(described[0]["workers"].as_array().unwrap().len(), 2);
    let image = root().join("examples/patches/patch-00.png");
    let answer = curl(&[
        &format!("http://127.0.0.1:{}/predictions/pcam", server.port),
        "-T",
        image.to_str().unwrap(),
    ]);
    assert_eq!(answer, "1");
    let metrics = curl(&[&format!("http://127.0.0.1:{}/metrics", server.metrics_port)]);
    assert!(
        metrics
            .contains("ts_inference_requests_total{model_name=\"pcam\",model_version=\"default\""),
        "{metrics}"
    );
    // Version 2.0 from the store, made the default, then version 1.0 removed: its archive goes.
    status(&curl(&[
        "-X",
        "POST",
        &format!("http://127.0.0.1:{m}/models?url=pcam-2.0.mar&initial_workers=1"),
    ]));
    assert_eq!(
        status(&curl(&[
            "-X",
            "PUT",
            &format!("http://127.0.0.1:{m}/models/pcam/2.0/set-default")
        ])),
        "Default version successfully updated for model \"pcam\" to \"2.0\""
    );
    assert_eq!(
        status(&curl(&[
            "-X",
            "DELETE",
            &format!("http://127.0.0.1:{m}/models/pcam/1.0")
        ])),
        "Model \"pcam\" unregistered"
    );
    assert!(
        !work.listing().contains(&"pcamurl.mar".to_string()),
        "a downloaded archive goes with its model"
    );
    assert_eq!(
        status(&curl(&[
            "-X",
            "DELETE",
            &format!("http://127.0.0.1:{m}/models/pcam")
        ])),
        "Model \"pcam\" unregistered"
    );
    assert_eq!(
        work.listing(),
        ["broken.mar", "pcam-2.0.mar", "pcam.mar"],
        "archives of the store itself stay"
    );

    // The same life cycle through `scancer store`.
    let url = format!("http://127.0.0.1:{m}");
    let store = |args: &[&str]| scancer_ok(&[&["store", "--url", url.as_str()], args].concat());
    store(&["register", "pcam.mar", "--initial-workers", "1", "--wait"]);
    // A new version of a registered model, asynchronously (the answer names no model): --wait
    // finds the version by its URL among every version, and waits for its workers.
    store(&[
        "register",
        "pcam-2.0.mar",
        "--initial-workers",
        "2",
        "--wait",
    ]);
    let version: Value =
        serde_json::from_str(&store(&["describe", "pcam", "--version", "2.0", "--json"])).unwrap();
    let workers = version[0]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{version}");
    assert!(workers.iter().all(|w| w["status"] == "READY"), "{version}");
    store(&[
        "scale",
        "pcam",
        "--min-workers",
        "2",
        "--max-workers",
        "2",
        "--wait",
    ]);
    let described = store(&["describe", "pcam", "--json"]);
    let described: Value = serde_json::from_str(&described).unwrap();
    assert_eq!(described[0]["minWorkers"], 2);
    store(&["set-default", "pcam", "2.0"]);
    store(&["unregister", "pcam", "--version", "1.0"]);
    let listed = store(&["list", "--json"]);
    assert!(listed.contains("pcam-2.0.mar"), "{listed}");
    let (code, log) = server.stop();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_restart_restores_every_model_and_a_killed_download_leaves_a_clean_store() {
    let work = Work::new();
    let files = FileServer::serve(work.path().join("www"));
    let server = open_store(&work, &files, &[]);
    let call = |server: &Server, method: &str, path: &str| {
        let reply = server.request_to(server.management_port, method, path, &[], b"");
        assert!(reply.status < 300, "{method} {path}: {}", reply.text());
        reply
    };
    call(&server, "POST", "/models?url=pcam.mar&initial_workers=1");
    call(
        &server,
        "POST",
        "/models?url=pcam-2.0.mar&initial_workers=1",
    );
    call(
        &server,
        "PUT",
        "/models/pcam/1.0?min_worker=2&max_worker=3&synchronous=true",
    );
    call(&server, "PUT", "/models/pcam/2.0/set-default");
    call(&server, "POST", "/models?url=pcam.mar&model_name=tuned&batch_size=4&max_batch_delay=50&response_timeout=30&initial_workers=1");
    let before = call(&server, "GET", "/models").text();
    let describe = |server: &Server, name: &str| -> Vec<Value> {
        let reply = call(server, "GET", &format!("/models/{name}/all"));
        reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| json!([version_settings(v), v["workers"].as_array().unwrap().len()]))
            .collect()
    };
    let pcam = describe(&server, "pcam");
    let tuned = describe(&server, "tuned");
    let image = patch();
    let answer = server
        .request_to(server.port, "PUT", "/predictions/pcam", &[], &image)
        .text();
    server.kill();

    // Only --model-store, as Scancer's systemd unit starts it.
    let server = Server::start_in(
        work.path(),
        &["--model-store", "store", "--disable-token-auth"],
        &[],
    );
    assert_eq!(call(&server, "GET", "/models").text(), before);
    wait_ready(&server, "pcam/1.0");
    assert_eq!(describe(&server, "pcam"), pcam);
    assert_eq!(describe(&server, "tuned"), tuned);
    let described = call(&server, "GET", "/models/pcam");
    assert_eq!(
        described.json()[0]["modelVersion"],
        "2.0",
        "the default version is kept"
    );
    assert_eq!(
        server
            .request_to(server.port, "PUT", "/predictions/pcam", &[], &image)
            .text(),
        answer
    );
    // The model API switch came back with the snapshot, as in TorchServe.
    call(&server, "DELETE", "/models/tuned");

    // A registration whose download is cut by SIGKILL leaves no part of an archive.
    let listing = work.listing();
    files.stall.store(true, Ordering::SeqCst);
    let management = server.management_port;
    let url = format!("{}/files/pcamurl.mar", files.url);
    let pending = std::thread::spawn(move || {
        let mut stream = connect(management);
        send(
            &mut stream,
            "POST",
            &format!("/models?url={url}"),
            &[],
            b"",
            true,
        );
        read_reply(&mut stream).is_err()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !files.stalled.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the download never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill();
    assert!(
        pending.join().unwrap(),
        "the killed server answered nothing"
    );
    assert_eq!(work.listing(), listing, "no partial archive in the store");
    // ... and every snapshot can be read: the next start restores the models.
    files.stall.store(false, Ordering::SeqCst);
    let server = Server::start_in(
        work.path(),
        &["--model-store", "store", "--disable-token-auth"],
        &[],
    );
    assert_eq!(describe(&server, "pcam"), pcam);
    assert_eq!(
        server
            .request_to(server.port, "PUT", "/predictions/pcam", &[], &image)
            .text(),
        answer
    );
    let snapshots = std::fs::read_dir(work.path().join("logs/config"))
        .unwrap()
        .count();
    assert!(snapshots >= 5, "{snapshots} snapshots");
    drop(server);

    // --ncs: none read (nothing restored) and none written.
    let before = std::fs::read_dir(work.path().join("logs/config"))
        .unwrap()
        .count();
    let server = Server::start_in(
        work.path(),
        &[
            "--model-store",
            "store",
            "--disable-token-auth",
            "--ncs",
            "--enable-model-api",
        ],
        &[],
    );
    assert_eq!(
        call(&server, "GET", "/models").text(),
        "{\n  \"models\": []\n}\n"
    );
    call(&server, "POST", "/models?url=pcam.mar");
    drop(server);
    assert_eq!(
        std::fs::read_dir(work.path().join("logs/config"))
            .unwrap()
            .count(),
        before
    );
}

#[test]
fn versions_scale_and_swap_under_load_without_a_lost_request() {
    let work = Work::new();
    let server = Arc::new(Server::start_in(
        work.path(),
        &[
            "--model-store",
            "store",
            "--enable-model-api",
            "--disable-token-auth",
            "--models",
            "pcam.mar",
            "--queue-wait",
            "2000",
        ],
        &[],
    ));
    let image = Arc::new(patch());
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::<(String, u16, String)>::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for k in 0..6 {
        let (server, image, stop, outcomes, answered) = (
            Arc::clone(&server),
            Arc::clone(&image),
            Arc::clone(&stop),
            Arc::clone(&outcomes),
            Arc::clone(&answered),
        );
        // Four clients on the default version, two on 1.0 by name.
        let path = if k < 4 {
            "/predictions/pcam"
        } else {
            "/predictions/pcam/1.0"
        };
        clients.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let mut stream = connect(server.port);
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                send(&mut stream, "PUT", path, &[], &image, true);
                let reply = read_reply(&mut stream);
                let mut outcomes = outcomes.lock().unwrap();
                match reply {
                    Ok(r) => outcomes.push((path.into(), r.status, r.text())),
                    Err(e) => outcomes.push((path.into(), 0, e.to_string())),
                }
                answered.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let call = |method: &str, path: &str| {
        let reply = server.request_to(server.management_port, method, path, &[], b"");
        assert!(reply.status < 300, "{method} {path}: {}", reply.text());
    };
    let settle = |n: usize| {
        let target = answered.load(Ordering::SeqCst) + n;
        let deadline = Instant::now() + Duration::from_secs(60);
        while answered.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < deadline,
                "the clients stopped being answered"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    settle(20);
    call("PUT", "/models/pcam?min_worker=3&synchronous=true");
    settle(20);
    call(
        "PUT",
        "/models/pcam?min_worker=1&max_worker=1&synchronous=true",
    );
    settle(20);
    call(
        "POST",
        "/models?url=pcam-2.0.mar&initial_workers=2&synchronous=true",
    );
    settle(20);
    call("PUT", "/models/pcam/2.0/set-default");
    settle(20);
    // 1.0 goes while two clients still ask for it by name: queued requests are answered, later ones
    // get TorchServe's 404.
    call("DELETE", "/models/pcam/1.0");
    settle(20);
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let outcomes = outcomes.lock().unwrap();
    assert!(outcomes.len() >= 120, "{} requests", outcomes.len());
    for (path, status, body) in outcomes.iter() {
        match (path.as_str(), status) {
            (_, 200) => assert_eq!(body, "1"),
            ("/predictions/pcam/1.0", 404) => assert!(
                body.contains("Model version: 1.0 does not exist for model: pcam"),
                "{body}"
            ),
            _ => panic!("{path}: {status} {body}"),
        }
    }
    let default_ok = outcomes
        .iter()
        .filter(|(p, s, _)| p == "/predictions/pcam" && *s == 200)
        .count();
    let default_all = outcomes
        .iter()
        .filter(|(p, _, _)| p == "/predictions/pcam")
        .count();
    assert_eq!(
        default_ok, default_all,
        "every request to the default version answered"
    );
}

#[test]
fn kserve_layout_and_command_line_work_unchanged() {
    let work = Work::new();
    let models = work.path().join("mnt/models");
    std::fs::create_dir_all(models.join("config")).unwrap();
    std::fs::create_dir_all(models.join("model-store")).unwrap();
    std::fs::copy(
        work.store().join("pcam.mar"),
        models.join("model-store/pcam.mar"),
    )
    .unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (api, metrics, grpc, management) = (free(), free(), free(), free());
    // KServe's sample config (docs/samples/v1beta1/torchserve/v1/config.properties), on loopback,
    // with the gRPC management port moved off 7071 (which a pod has to itself, a test machine not).
    let config = format!(
        "inference_address=http://127.0.0.1:{api}\nmanagement_address=http://127.0.0.1:{api}\n\
         metrics_address=http://127.0.0.1:{metrics}\ngrpc_inference_port={grpc}\n\
         grpc_management_port={management}\nenable_metrics_api=true\n\
         metrics_format=prometheus\nnumber_of_netty_threads=4\njob_queue_size=10\nenable_envvars_config=true\n\
         install_py_dep_per_model=true\nmodel_store={store}\n\
         model_snapshot={{\"name\":\"startup.cfg\",\"modelCount\":1,\"models\":{{\"pcam\":{{\"1.0\":{{\"defaultVersion\":true,\"marName\":\"pcam.mar\",\"minWorkers\":1,\"maxWorkers\":5,\"batchSize\":1,\"maxBatchDelay\":5000,\"responseTimeout\":120}}}}}}}}\n",
        store = models.join("model-store").display()
    );
    std::fs::write(models.join("config/config.properties"), config).unwrap();
    let store_arg = format!("--model-store={}", models.join("model-store").display());
    let config_arg = format!(
        "--ts-config={}",
        models.join("config/config.properties").display()
    );
    // kserve-torchserve's arguments, after `scancer serve` (and no TorchServe key: KServe's probes
    // and clients carry none).
    let args = [
        "serve",
        "--start",
        &store_arg,
        &config_arg,
        "--disable-token-auth",
    ];
    let server = Server::start_exactly(work.path(), &args, &[("TS_SERVICE_ENVELOPE", "kserve")]);
    assert_eq!(
        (server.port, server.management_port, server.metrics_port),
        (api, api, metrics)
    );
    let image = patch();
    let two = json!({"instances": [{"data": b64(&image)}, {"data": b64(&image)}]}).to_string();
    let one = json!({"instances": [{"data": b64(&image)}]}).to_string();
    // KServe V1, and the kserve envelope on /predictions, answered as TorchServe's.
    for (method, path, body, recorded) in [
        (
            "POST",
            "/v1/models/pcam:predict",
            &two,
            "kserve-v1-predict-two",
        ),
        (
            "GET",
            "/v1/models/pcam",
            &String::new(),
            "kserve-v1-ready-management",
        ),
        ("POST", "/predictions/pcam", &one, "kserve-predictions-json"),
        (
            "POST",
            "/v1/models/nope:predict",
            &one,
            "kserve-v1-predict-unknown",
        ),
    ] {
        let json = [("content-type", "application/json")];
        let reply = server.request_to(api, method, path, &json, body.as_bytes());
        let expected = fixture(recorded)["body"].as_str().unwrap().to_string();
        assert_eq!(reply.text(), expected, "{recorded}");
    }
    // KServe V2 (native) on the same port; the model and its settings from model_snapshot.
    let v2 = json!({"inputs": [{"name": "input__0", "shape": [1], "datatype": "BYTES", "data": [b64(&image)]}]});
    let reply = server.request_to(
        api,
        "POST",
        "/v2/models/pcam/infer",
        &[],
        v2.to_string().as_bytes(),
    );
    assert_eq!(
        reply.json()["outputs"][1]["data"],
        json!([1]),
        "{}",
        reply.text()
    );
    let described = server
        .request_to(api, "GET", "/models/pcam", &[], b"")
        .json();
    assert_eq!(
        (
            described[0]["minWorkers"].as_u64(),
            described[0]["maxWorkers"].as_u64()
        ),
        (Some(1), Some(5))
    );
    assert_eq!(described[0]["maxBatchDelay"], 5000);
    assert_eq!(
        described[0]["jobQueueStatus"]["remainingCapacity"], 10,
        "job_queue_size"
    );
    let log = server.log();
    assert!(
        log.contains("no effect in scancer: ")
            && log.contains("number_of_netty_threads (scancer has no JVM"),
        "{log}"
    );
    drop(server);

    // protocol v2: the kservev2 envelope, answered as TorchServe's.
    let server = Server::start_exactly(work.path(), &args, &[("TS_SERVICE_ENVELOPE", "kservev2")]);
    let v2 = json!({"id": "req-1", "inputs": [{"name": "input-0", "shape": [1], "datatype": "BYTES", "data": [b64(&image)]}]});
    let reply = server.request_to(
        api,
        "POST",
        "/v2/models/pcam/infer",
        &[],
        v2.to_string().as_bytes(),
    );
    assert_eq!(
        reply.text(),
        fixture("kservev2-infer-with-id")["body"].as_str().unwrap()
    );
}

#[test]
fn configuration_errors_are_one_line_and_exit_2() {
    let work = Work::new();
    for (args, config, needle) in [
        (
            vec!["--model-store", "nowhere"],
            None,
            "model store nowhere: no such folder",
        ),
        (
            vec!["--ts-config", "config.properties"],
            Some("inference_address=http://127.0.0.1:8080\n"),
            "no model_store: give --model-store DIR",
        ),
        (
            vec!["--model-store", "store", "--ts-config", "config.properties"],
            Some("inference_address=https://127.0.0.1:8443\n"),
            "an https:// address or enable_grpc_ssl needs a certificate",
        ),
        (
            vec!["--model-store", "store", "--ts-config", "config.properties"],
            Some("inference_address=https://127.0.0.1:0\nkeystore=x.jks\nkeystore_type=JKS\n"),
            "only PKCS12 keystores are read",
        ),
        (
            vec!["--model-store", "store", "--ts-config", "config.properties"],
            Some("service_envelope=xml\n"),
            "expected body, json, kserve or kservev2",
        ),
        (
            vec!["--model-store", "store", "--models", "missing.mar"],
            None,
            "Model not found at: missing.mar",
        ),
        (
            // Compiled when the command line is read: refused before any port or model.
            vec!["--model-store", "store", "--allowed-urls", "file://(.*"],
            None,
            "allowed_urls: \"file://(.*\" is not a regular expression",
        ),
        (
            vec!["--enable-model-api", "examples/pcam-classification.pt"],
            None,
            "--enable-model-api needs --model-store",
        ),
    ] {
        // Without --ts-config, ./config.properties is read (TorchServe's rule).
        match config {
            Some(text) => std::fs::write(work.path().join("config.properties"), text).unwrap(),
            None => {
                let _ = std::fs::remove_file(work.path().join("config.properties"));
            }
        }
        // Ports on the command line would win over the file's addresses.
        let ports: &[&str] = match config {
            Some(_) => &[],
            None => &[
                "--port",
                "0",
                "--management-port",
                "0",
                "--metrics-port",
                "0",
                "--grpc-port",
                "0",
            ],
        };
        let out = assert_cmd::Command::cargo_bin("scancer")
            .unwrap()
            .current_dir(if args.iter().any(|a| a.starts_with("examples/")) {
                root()
            } else {
                work.path().to_path_buf()
            })
            .env("LOG_LOCATION", work.path().join("logs"))
            .arg("serve")
            .args(&args)
            .args(ports)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

/// A torch-model-archiver archive with a custom Python handler: the model and the handler file,
/// no scancer configuration.
fn custom_handler_archive(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("pcam-classification.pt", options).unwrap();
    std::io::Write::write_all(
        &mut zip,
        &std::fs::read(root().join(crate::util::PCAM)).unwrap(),
    )
    .unwrap();
    zip.start_file("pcam_classifier_handler.py", options)
        .unwrap();
    std::io::Write::write_all(
        &mut zip,
        b"from ts.torch_handler.base_handler import BaseHandler\n",
    )
    .unwrap();
    zip.start_file("MAR-INF/MANIFEST.json", options).unwrap();
    let manifest = json!({
        "createdOn": "02/12/2026 05:00:00",
        "runtime": "python",
        "model": {
            "modelName": "custom",
            "serializedFile": "pcam-classification.pt",
            "handler": "pcam_classifier_handler.py",
            "modelVersion": "1.0"
        },
        "archiverVersion": "0.12.0"
    });
    std::io::Write::write_all(&mut zip, manifest.to_string().as_bytes()).unwrap();
    zip.finish().unwrap();
}

#[test]
fn a_custom_handler_archive_takes_its_configuration_from_the_store() {
    let work = Work::new();
    custom_handler_archive(&work.store().join("custom.mar"));
    let server = start_store(&work);
    let register = "/models?url=custom.mar&initial_workers=1";
    let refused = server.request_to(server.management_port, "POST", register, &[], b"");
    assert_eq!(refused.status, 400, "{}", refused.text());
    let message = refused.json()["message"].as_str().unwrap().to_string();
    let beside = work.store().join("custom.toml");
    assert!(
        message.contains("custom Python code") && message.contains("at store/custom.toml"),
        "the error says where the configuration goes: {message}"
    );
    std::fs::copy(root().join("examples/pcam-classification.toml"), &beside).unwrap();
    let registered = server.request_to(server.management_port, "POST", register, &[], b"");
    assert_eq!(registered.status, 200, "{}", registered.text());
    let answer = server.request_to(server.port, "PUT", "/predictions/custom", &[], &patch());
    assert_eq!((answer.status, answer.text().as_str()), (200, "1"));
}

#[test]
fn basic_credentials_guard_every_listener() {
    let work = Work::new();
    let users = work.path().join("users.txt");
    std::fs::write(&users, "ana:s3cret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();
    let users = users.display().to_string();
    let basic = format!("Basic {}", b64(b"ana:s3cret"));
    // With TorchServe's keys on too: valid Basic credentials need no key (nginx's users).
    for tokens in [false, true] {
        // --ncs: a snapshot of the first run would bring its disable_token_authorization back.
        let mut args = vec![
            "--model-store",
            "store",
            "--ncs",
            "--models",
            "pcam.mar",
            "--auth-file",
            &users,
        ];
        if !tokens {
            args.push("--disable-token-auth");
        }
        let server = Server::start_in(work.path(), &args, &[]);
        for (port, method, path, body) in [
            (server.port, "PUT", "/predictions/pcam", patch()),
            (server.port, "GET", "/ping", Vec::new()),
            (server.management_port, "GET", "/models", Vec::new()),
            (server.metrics_port, "GET", "/metrics", Vec::new()),
        ] {
            // No credentials, or a wrong password: 401 with a Basic challenge (a browser asks
            // for them), keys on or not; a wrong TorchServe key: its 400.
            let wrong = format!("Basic {}", b64(b"ana:wrong"));
            for header in [None, Some(wrong.as_str())] {
                let headers: Vec<(&str, &str)> =
                    header.map(|h| ("authorization", h)).into_iter().collect();
                let refused = server.request_to(port, method, path, &headers, &body);
                assert_eq!(
                    refused.status,
                    401,
                    "{path} (tokens {tokens}, {header:?}): {}\n{}",
                    refused.text(),
                    server.log()
                );
                assert!(
                    refused
                        .header("www-authenticate")
                        .is_some_and(|h| h.starts_with("Basic")),
                    "{path}: {:?}",
                    refused.headers
                );
            }
            if tokens && port != server.metrics_port {
                let bad_key = [("authorization", "Bearer not-a-key")];
                let refused = server.request_to(port, method, path, &bad_key, &body);
                assert_eq!(refused.status, 400, "{path}: {}", refused.text());
                assert_eq!(refused.json()["type"], "InvalidKeyException");
            }
            let allowed =
                server.request_to(port, method, path, &[("authorization", &basic)], &body);
            assert_eq!(
                allowed.status,
                200,
                "{path} (tokens {tokens}): {}",
                allowed.text()
            );
        }
    }
}

/// What stops snapshots under a running server, made and undone by the test.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// A file where the snapshot folder was.
    FileInPlace,
    /// LOG_LOCATION on a 64 KiB tmpfs, filled up (ENOSPC).
    FullDisk,
    /// The snapshot folder made read-only (the server runs without CAP_DAC_OVERRIDE).
    ReadOnlyFolder,
}

impl Fault {
    /// The error the refusal must name.
    fn errno(self) -> &'static str {
        match self {
            Fault::FileInPlace => "Not a directory",
            Fault::FullDisk => "No space left on device",
            Fault::ReadOnlyFolder => "Permission denied",
        }
    }

    /// Before the server starts: the full disk's tmpfs (unmounted when the guard drops); None if
    /// it cannot be mounted here.
    fn prepare(self, work: &Work) -> Option<Option<crate::util::files::Tmpfs>> {
        match self {
            Fault::FullDisk => {
                crate::util::files::Tmpfs::mount(&work.path().join("logs"), "full disk").map(Some)
            }
            _ => Some(None),
        }
    }

    fn start(self, work: &Work, files: &FileServer) -> Server {
        match self {
            // Root writes anywhere: drop that, so that the folder's mode counts.
            Fault::ReadOnlyFolder => {
                let args = store_args(files);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Server::start_in_as_plain_user(work.path(), &args)
            }
            _ => open_store(work, files, &[]),
        }
    }

    fn cause(self, work: &Work) {
        let folder = work.path().join("logs/config");
        match self {
            Fault::FileInPlace => {
                std::fs::rename(&folder, folder.with_extension("kept")).unwrap();
                std::fs::write(&folder, "not a folder\n").unwrap();
            }
            Fault::FullDisk => {
                use std::io::Write;
                let mut filler = std::fs::File::create(work.path().join("logs/filler")).unwrap();
                while filler.write_all(&[0; 1024]).is_ok() {}
            }
            Fault::ReadOnlyFolder => set_mode(&folder, 0o555),
        }
    }

    fn repair(self, work: &Work) {
        let folder = work.path().join("logs/config");
        match self {
            Fault::FileInPlace => {
                std::fs::remove_file(&folder).unwrap();
                std::fs::rename(folder.with_extension("kept"), &folder).unwrap();
            }
            Fault::FullDisk => std::fs::remove_file(work.path().join("logs/filler")).unwrap(),
            Fault::ReadOnlyFolder => set_mode(&folder, 0o755),
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every management change refused while `fault` stops snapshots: a 500 that names the error, and
/// nothing changed (versions, workers, default, answers, the store's files: the case was
/// a downloaded archive deleted by an unregister whose snapshot failed). Once repaired, a change is
/// confirmed, and a restart after SIGKILL brings back exactly what was confirmed.
fn refused_while(fault: Fault) {
    let work = Work::new();
    let Some(_tmpfs) = fault.prepare(&work) else {
        return;
    };
    let files = FileServer::serve(work.path().join("www"));
    let server = fault.start(&work, &files);
    let call = |method: &str, path: &str| managed(&server, method, path);
    let url = format!("{}/files/pcamurl.mar", files.url);
    for path in [
        "/models?url=pcam.mar&initial_workers=1&synchronous=true".to_string(),
        "/models?url=pcam-2.0.mar&initial_workers=1&synchronous=true".to_string(),
        format!("/models?url={url}&model_name=pcamurl&initial_workers=1&synchronous=true"),
    ] {
        let reply = call("POST", &path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    let described =
        |version: &str| call("GET", &format!("/models/pcam/{version}")).json()[0].clone();
    let before = (described("1.0"), described("2.0"));
    let listing = work.listing();

    fault.cause(&work);
    let refused = |method: &str, path: &str| {
        let reply = call(method, path);
        assert_eq!(
            reply.status,
            500,
            "{fault:?}: {method} {path}: {}",
            reply.text()
        );
        let body = reply.json();
        assert_eq!(body["type"], "InternalServerException", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("could not be saved") && message.contains(fault.errno()),
            "{fault:?}: {method} {path}: {message}"
        );
    };
    refused(
        "PUT",
        "/models/pcam/1.0?min_worker=2&max_worker=2&synchronous=true",
    );
    refused("PUT", "/models/pcam/2.0/set-default");
    refused("DELETE", "/models/pcam/2.0");
    refused("DELETE", "/models/pcamurl");
    let www = work.path().join("www/files");
    std::fs::copy(www.join("pcamurl.mar"), www.join("pcamother.mar")).unwrap();
    refused(
        "POST",
        &format!(
            "/models?url={}/files/pcamother.mar&model_name=pcamother&initial_workers=1&synchronous=true",
            files.url
        ),
    );
    assert_eq!(described("1.0")["minWorkers"], before.0["minWorkers"]);
    assert_eq!(call("GET", "/models/pcam").json()[0]["modelVersion"], "1.0");
    assert_eq!(call("GET", "/models/pcamother").status, 404);
    for path in ["/predictions/pcam/2.0", "/predictions/pcamurl"] {
        let answer = server.request_to(server.port, "PUT", path, &[], &patch());
        assert_eq!(answer.status, 200, "{fault:?}: {path}: {}", answer.text());
    }
    assert_eq!(work.listing(), listing, "{fault:?}");

    fault.repair(&work);
    let reply = call("PUT", "/models/pcam/2.0/set-default");
    assert_eq!(reply.status, 200, "{}", reply.text());
    server.kill();
    let server = start_store(&work);
    let call = |method: &str, path: &str| managed(&server, method, path);
    assert_eq!(call("GET", "/models/pcam").json()[0]["modelVersion"], "2.0");
    for (version, was) in [("1.0", &before.0), ("2.0", &before.1)] {
        let now = call("GET", &format!("/models/pcam/{version}")).json()[0].clone();
        assert_eq!(now["minWorkers"], was["minWorkers"], "{version}");
    }
    assert_eq!(call("GET", "/models/pcamurl").status, 200);
    assert_eq!(call("GET", "/models/pcamother").status, 404);
    assert_eq!(server.get("/ping").status, 200);
    server.kill();
}

#[test]
fn a_change_that_cannot_be_saved_is_refused_and_changes_nothing() {
    refused_while(Fault::FileInPlace);
}

#[test]
fn a_change_on_a_full_disk_is_refused_and_changes_nothing() {
    refused_while(Fault::FullDisk);
}

#[test]
fn a_change_in_a_read_only_folder_is_refused_and_changes_nothing() {
    refused_while(Fault::ReadOnlyFolder);
}

/// The management port's answer to `method path`.
fn managed(server: &Server, method: &str, path: &str) -> Reply {
    server.request_to(server.management_port, method, path, &[], b"")
}

/// A server on the work folder's store, with the model API on and no TorchServe keys.
fn start_store(work: &Work) -> Server {
    Server::start_in(
        work.path(),
        &[
            "--model-store",
            "store",
            "--enable-model-api",
            "--disable-token-auth",
        ],
        &[],
    )
}

/// Killed (no shutdown snapshot), then started again.
fn restart(work: &Work, server: Server) -> Server {
    server.kill();
    start_store(work)
}

#[test]
fn a_snapshot_naming_a_missing_archive_serves_the_rest_and_reports_it() {
    let work = Work::new();
    let files = FileServer::serve(work.path().join("www"));
    let server = open_store(&work, &files, &[]);
    for path in [
        "/models?url=pcam.mar&initial_workers=1&synchronous=true",
        "/models?url=pcam-2.0.mar&initial_workers=1&synchronous=true",
    ] {
        assert_eq!(managed(&server, "POST", path).status, 200, "{path}");
    }
    // pcam 1.0 is the default; its archive goes while the server is down.
    let archive = work.store().join("pcam.mar");
    let kept = work.path().join("pcam.mar.kept");
    std::fs::rename(&archive, &kept).unwrap();
    let server = restart(&work, server);
    let ping = server.get("/ping");
    assert_eq!(
        (ping.status, ping.json()),
        (500, json!({"status": "Unhealthy"}))
    );
    assert!(
        server.log().contains(
            "warning: model pcam version 1.0 is not served: its archive pcam.mar is not in the model store"
        ),
        "{}",
        server.log()
    );
    // Version 2.0 answers; the default and 1.0 say why they do not.
    let answer = server.request_to(server.port, "PUT", "/predictions/pcam/2.0", &[], &patch());
    assert_eq!(answer.status, 200, "{}", answer.text());
    for path in ["/predictions/pcam", "/predictions/pcam/1.0"] {
        let refused = server.request_to(server.port, "PUT", path, &[], &patch());
        assert_eq!(refused.status, 404, "{path}");
        assert!(
            refused.json()["message"]
                .as_str()
                .unwrap()
                .starts_with("Model pcam version 1.0 is not served: its archive pcam.mar"),
            "{path}: {}",
            refused.text()
        );
    }
    let listed = managed(&server, "GET", "/models").json();
    assert_eq!(listed["models"][0]["modelName"], "pcam", "{listed}");
    let all = managed(&server, "GET", "/models/pcam/all").json();
    let left_out = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["modelVersion"] == "1.0")
        .unwrap();
    assert_eq!(left_out["workers"], json!([]), "{all}");
    assert_eq!(left_out["minWorkers"], 1, "{all}");
    assert!(
        left_out["notServed"].as_str().unwrap().contains("pcam.mar"),
        "{all}"
    );
    assert_eq!(
        managed(
            &server,
            "PUT",
            "/models/pcam/1.0?min_worker=2&synchronous=true"
        )
        .status,
        404
    );
    // The default cannot be unregistered while 2.0 is served (TorchServe's rule).
    assert_eq!(managed(&server, "DELETE", "/models/pcam/1.0").status, 403);

    // Every start keeps it in the snapshot: a second restart still knows it, and once the archive
    // is back, a restart serves it again as the default.
    let server = restart(&work, server);
    assert_eq!(server.get("/ping").status, 500);
    std::fs::rename(&kept, &archive).unwrap();
    let server = restart(&work, server);
    assert_eq!(server.get("/ping").status, 200, "{}", server.log());
    assert_eq!(
        managed(&server, "GET", "/models/pcam").json()[0]["modelVersion"],
        "1.0"
    );

    // Gone again: registering the archive again (once back) serves it at once, as the default.
    std::fs::rename(&archive, &kept).unwrap();
    let server = restart(&work, server);
    assert_eq!(server.get("/ping").status, 500);
    std::fs::rename(&kept, &archive).unwrap();
    let reply = managed(
        &server,
        "POST",
        "/models?url=pcam.mar&initial_workers=1&synchronous=true",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(server.get("/ping").status, 200);
    assert_eq!(
        managed(&server, "GET", "/models/pcam").json()[0]["modelVersion"],
        "1.0"
    );

    // Gone for good: 2.0 made the default, then 1.0 unregistered; the next start is healthy and
    // knows nothing of 1.0.
    std::fs::remove_file(&archive).unwrap();
    let server = restart(&work, server);
    assert_eq!(
        managed(&server, "PUT", "/models/pcam/2.0/set-default").status,
        200
    );
    assert_eq!(
        managed(&server, "GET", "/models/pcam").json()[0]["modelVersion"],
        "2.0"
    );
    let reply = managed(&server, "DELETE", "/models/pcam/1.0");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(server.get("/ping").status, 200);
    let server = restart(&work, server);
    assert_eq!(server.get("/ping").status, 200);
    assert_eq!(managed(&server, "GET", "/models/pcam/1.0").status, 404);
    assert_eq!(
        managed(&server, "GET", "/models/pcam").json()[0]["modelVersion"],
        "2.0"
    );
    server.kill();
}

/// A described version's archive, workers and settings.
fn version_settings(v: &Value) -> Value {
    json!([
        v["modelVersion"],
        v["modelUrl"],
        v["minWorkers"],
        v["maxWorkers"],
        v["batchSize"],
        v["maxBatchDelay"],
        v["responseTimeout"]
    ])
}

/// What a restart must bring back: the model list, and each model's default and versions with
/// their archive, workers and settings.
fn confirmed_state(server: &Server) -> Value {
    let listed = managed(server, "GET", "/models").json();
    let mut state = vec![listed.clone()];
    for model in listed["models"].as_array().unwrap() {
        let name = model["modelName"].as_str().unwrap();
        let default =
            managed(server, "GET", &format!("/models/{name}")).json()[0]["modelVersion"].clone();
        let versions: Vec<Value> = managed(server, "GET", &format!("/models/{name}/all"))
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(version_settings)
            .collect();
        state.push(json!({"name": name, "default": default, "versions": versions}));
    }
    Value::Array(state)
}

#[test]
fn kill_9_after_every_confirmed_change_restarts_to_it() {
    let work = Work::new();
    let files = FileServer::serve(work.path().join("www"));
    let url = format!("{}/files/pcamurl.mar", files.url);
    let steps = [
        ("POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true".to_string()),
        ("POST", "/models?url=pcam-2.0.mar&initial_workers=1&synchronous=true".to_string()),
        ("PUT", "/models/pcam/1.0?min_worker=2&max_worker=3&synchronous=true".to_string()),
        ("PUT", "/models/pcam/2.0/set-default".to_string()),
        (
            "POST",
            format!("/models?url={url}&model_name=pcamurl&batch_size=4&max_batch_delay=50&initial_workers=1&synchronous=true"),
        ),
        ("DELETE", "/models/pcam/1.0".to_string()),
        ("DELETE", "/models/pcamurl".to_string()),
    ];
    let mut server = open_store(&work, &files, &[]);
    for (method, path) in &steps {
        let reply = managed(&server, method, path);
        assert_eq!(reply.status, 200, "{method} {path}: {}", reply.text());
        let confirmed = confirmed_state(&server);
        let listing = work.listing();
        server.kill();
        server = open_store(&work, &files, &[]);
        assert_eq!(confirmed_state(&server), confirmed, "after {method} {path}");
        assert_eq!(work.listing(), listing, "after {method} {path}");
        assert_eq!(server.get("/ping").status, 200);
        let answer = server.request_to(server.port, "PUT", "/predictions/pcam", &[], &patch());
        assert_eq!(
            answer.status,
            200,
            "after {method} {path}: {}",
            answer.text()
        );
    }
    // The downloaded archive went with its unregistration, and stayed gone.
    assert!(!work.listing().contains(&"pcamurl.mar".to_string()));
    server.kill();
}

#[test]
fn cors_headers_are_on_every_answer_as_torchserve_sends_them() {
    let work = Work::new();
    std::fs::write(
        work.path().join("config.properties"),
        "cors_allowed_origin=https://scancer.org\n\
         cors_allowed_methods=GET, POST, PUT, OPTIONS\n\
         cors_allowed_headers=X-Custom-Header, Authorization\n",
    )
    .unwrap();
    let server = Server::start_in(
        work.path(),
        &[
            "--model-store",
            "store",
            "--ts-config",
            "config.properties",
            "--disable-token-auth",
            "--models",
            "pcam.mar",
        ],
        &[],
    );
    let cors = |reply: &Reply| {
        [
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
        ]
        .map(|h| reply.header(h).unwrap_or_default().to_string())
    };
    let wanted = [
        "https://scancer.org",
        "GET, POST, PUT, OPTIONS",
        "X-Custom-Header, Authorization",
    ];
    // Answers and errors, on the three ports (TorchServe copies them onto every answer).
    for (port, method, path, status) in [
        (server.port, "GET", "/ping", 200),
        (server.port, "PUT", "/predictions/pcam", 200),
        (server.port, "PUT", "/predictions/nothere", 404),
        (server.port, "GET", "/nowhere", 404),
        (server.management_port, "GET", "/models", 200),
        (server.management_port, "DELETE", "/models/nothere", 405),
        (server.metrics_port, "GET", "/metrics", 200),
    ] {
        let body = if method == "PUT" { patch() } else { Vec::new() };
        let reply = server.request_to(port, method, path, &[], &body);
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        assert_eq!(cors(&reply), wanted, "{method} {path}");
    }
    // Without the keys, none.
    std::fs::remove_file(work.path().join("config.properties")).unwrap();
    let plain = Server::start_in(
        work.path(),
        &["--model-store", "store", "--ncs", "--disable-token-auth"],
        &[],
    );
    let reply = plain.get("/ping");
    assert_eq!(reply.header("access-control-allow-origin"), None);
    plain.kill();
    server.kill();
}

#[test]
fn torchserve_log_files_are_written_in_log_location() {
    let work = Work::new();
    let server = Server::start_in(
        work.path(),
        &[
            "--model-store",
            "store",
            "--disable-token-auth",
            "--models",
            "pcam=pcam.mar",
        ],
        &[],
    );
    let answer = server.request_to(server.port, "PUT", "/predictions/pcam", &[], &patch());
    assert_eq!(answer.status, 200);
    assert_eq!(server.get("/nowhere").status, 404);
    let (code, _) = server.stop();
    assert_eq!(code, 0);
    let logs = work.path().join("logs");
    let read = |name: &str| {
        std::fs::read_to_string(logs.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let expect = |name: &str, needles: &[&str]| {
        let text = read(name);
        for needle in needles {
            assert!(text.contains(needle), "{name} lacks {needle:?}:\n{text}");
        }
        // Every line starts with log4j's ISO 8601 date: 2024-05-30T21:46:03,625.
        for line in text.lines() {
            let date = line.split(' ').next().unwrap();
            assert!(
                date.len() == 23 && &date[10..11] == "T" && &date[19..20] == ",",
                "{name}: {line}"
            );
        }
    };
    expect(
        "access_log.log",
        &[
            " - /127.0.0.1:",
            "\"PUT /predictions/pcam HTTP/1.1\" 200 ",
            "\"GET /nowhere HTTP/1.1\" 404 ",
        ],
    );
    expect(
        "ts_log.log",
        &[
            "[INFO ] ",
            " scancer - listening on http://127.0.0.1:",
            "scancer - stopped",
        ],
    );
    expect(
        "model_log.log",
        &[
            "[INFO ] W-",
            "-pcam_1.0 MODEL_LOG - model pcam 1.0 loaded in ",
        ],
    );
    expect(
        "ts_metrics.log",
        &[
            " - Requests2XX.Count:1.0|#Level:Host|#hostname:",
            " - Requests4XX.Count:1.0|#Level:Host|#hostname:",
            " - ts_inference_requests_total.Count:1.0|#model_name:pcam,model_version:default|#hostname:",
            " - QueueTime.Milliseconds:",
            " - WorkerLoadTime.Milliseconds:",
            " - CPUUtilization.Percent:",
            " - DiskAvailable.Gigabytes:",
            ",timestamp:",
        ],
    );
    expect(
        "model_metrics.log",
        &[
            " - HandlerTime.ms:",
            "|#ModelName:pcam,Level:Model|#hostname:",
        ],
    );
}

/// TorchServe's gRPC management API through grpcio stubs generated from proto/: the same workflow,
/// rules, keys and bodies as REST; and StreamPredictions2.
#[test]
fn the_grpc_management_api_answers_as_rest_does() {
    let Some(python) = crate::util::fetched("SCANCER_CLIENTS_PYTHON", "grpc management API") else {
        return;
    };
    let work = Work::new();
    let server = Server::start_in(
        work.path(),
        &[
            "--model-store",
            "store",
            "--enable-model-api",
            "--models",
            "pcam.mar",
        ],
        &[],
    );
    let management_port = server.grpc_management_port();
    let got = crate::util::client_json(
        std::process::Command::new(python)
            .arg(root().join("tests/clients/management_clients.py"))
            .args([
                server.grpc_port().to_string(),
                management_port.to_string(),
                work.key("management"),
                work.key("inference"),
            ])
            .arg(root().join("proto"))
            .arg(root().join("examples/patches/patch-00.png")),
    );
    let rest = |path: &str| {
        let key = format!("Bearer {}", work.key("management"));
        server
            .request_to(
                server.management_port,
                "GET",
                path,
                &[("authorization", &key)],
                b"",
            )
            .text()
            .trim_end()
            .to_string()
    };
    // As TorchServe 0.12's gRPC gives them: a status answer's text, a listing's JSON.
    assert_eq!(
        got["register"],
        "Model \"pcam\" Version: 2.0 registered with 1 initial workers"
    );
    assert_eq!(
        got["scale"],
        "Workers scaled to 2 for model: pcam, version: 2.0"
    );
    assert!(got["set_default"]
        .as_str()
        .unwrap()
        .contains("Default version successfully updated"));
    // The bodies are REST's, byte for byte.
    assert_eq!(got["list"], rest("/models?limit=0").as_str());
    assert_eq!(got["list_paged"], rest("/models?limit=1").as_str());
    let described: Value = serde_json::from_str(got["describe"].as_str().unwrap()).unwrap();
    assert_eq!(described[0]["modelVersion"], "2.0");
    assert_eq!(described[0]["workers"].as_array().unwrap().len(), 2);
    assert_eq!(got["unregister"], "Model \"pcam\" unregistered");
    assert_eq!(
        managed(&server, "GET", "/models/pcam/1.0").status,
        400,
        "a key is needed"
    );
    let errors = &got["errors"];
    assert_eq!(errors["unknown"][0], "NOT_FOUND", "{errors}");
    assert_eq!(errors["unknown"][1], "Model not found: nope");
    // TorchServe's code for a missing or wrong key.
    assert_eq!(errors["no_key"][0], "PERMISSION_DENIED", "{errors}");
    assert_eq!(errors["inference_key"][0], "PERMISSION_DENIED", "{errors}");
    assert_eq!(errors["bad_workers"][0], "INVALID_ARGUMENT", "{errors}");
    assert_eq!(errors["not_an_archive"][0], "INVALID_ARGUMENT", "{errors}");
    assert_eq!(errors["slash"][0], "INVALID_ARGUMENT", "{errors}");

    let stream = got["stream2"].as_array().unwrap();
    assert_eq!(stream.len(), 3, "{stream:?}");
    assert_eq!(stream[0]["prediction"], "1");
    assert_eq!(stream[0]["sequence_id"], "seq-1");
    assert!(stream[0]["status"].is_null());
    // NOT_FOUND (5), answered in the stream, with a sequence id made for it.
    assert_eq!(stream[1]["status"][0], 5, "{stream:?}");
    assert!(stream[1]["sequence_id"]
        .as_str()
        .unwrap()
        .starts_with("ts-seq-"));
    assert_eq!(stream[2]["prediction"], "1");
    server.kill();
}
