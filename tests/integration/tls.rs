//! TLS as TorchServe configures it, with real clients: curl, Prometheus scraping https with a CA
//! file, tritonclient over HTTPS and gRPC, grpcio with TLS credentials; a PKCS#12 keystore; a
//! certificate replaced without a restart; and the configuration errors.

use crate::util::server::Server;
use crate::util::{root, scancer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A CA and a server certificate it signed for 127.0.0.1 (RSA, PKCS#1 key, as TorchServe's docs
/// make them), with OpenSSL's command line; and the same as a PKCS#12 keystore.
struct Certificates {
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
    keystore: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certificates(dir: &Path, name: &str) -> Certificates {
    let file = |suffix: &str| format!("{name}-{suffix}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &file("ca.key"),
            "-out",
            &file("ca.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
        ],
    );
    openssl(
        dir,
        &[
            "genrsa",
            "-traditional",
            "-out",
            &file("server.key"),
            "2048",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &file("server.key"),
            "-subj",
            "/CN=127.0.0.1",
            "-out",
            &file("server.csr"),
        ],
    );
    std::fs::write(
        dir.join(file("ext.cnf")),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &file("server.csr"),
            "-CA",
            &file("ca.pem"),
            "-CAkey",
            &file("ca.key"),
            "-CAcreateserial",
            "-out",
            &file("server.pem"),
            "-days",
            "2",
            "-extfile",
            &file("ext.cnf"),
        ],
    );
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            &file("server.key"),
            "-in",
            &file("server.pem"),
            "-certfile",
            &file("ca.pem"),
            "-out",
            &file("server.p12"),
            "-passout",
            "pass:changeit",
        ],
    );
    Certificates {
        ca: dir.join(file("ca.pem")),
        certificate: dir.join(file("server.pem")),
        key: dir.join(file("server.key")),
        keystore: dir.join(file("server.p12")),
    }
}

/// A model store with pcam.mar, and a config.properties of `lines` with every API on https.
fn store_with_config(dir: &Path, lines: &str) {
    let store = dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    scancer()
        .args(["archive", "--model-name", "pcam", "--version", "1.0"])
        .args(["--serialized-file", "examples/pcam-classification.pt"])
        .args(["--config", "examples/pcam-classification.toml", "-f"])
        .arg("--export-path")
        .arg(&store)
        .assert()
        .success();
    std::fs::write(
        dir.join("config.properties"),
        format!(
            "inference_address=https://127.0.0.1:0\nmanagement_address=https://127.0.0.1:0\n\
             metrics_address=https://127.0.0.1:0\ngrpc_inference_port=0\ngrpc_management_port=0\n\
             model_store={}\nload_models=pcam=pcam.mar\ndisable_token_authorization=true\n{lines}",
            store.display()
        ),
    )
    .unwrap();
}

fn start(dir: &Path) -> Server {
    Server::start_exactly(
        dir,
        &["serve", "--ts-config", "config.properties", "--ncs"],
        &[],
    )
}

/// `curl ARGS URL`: its exit code and output.
fn curl(args: &[&str], url: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn trusted(ca: &Path) -> Vec<String> {
    vec!["--cacert".into(), ca.display().to_string()]
}

#[test]
fn every_api_over_tls_with_real_clients() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(dir.path(), "one");
    store_with_config(
        dir.path(),
        &format!(
            "certificate_file={}\nprivate_key_file={}\nenable_grpc_ssl=true\n",
            certs.certificate.display(),
            certs.key.display()
        ),
    );
    let server = start(dir.path());
    assert!(
        server.log().contains("listening on https://127.0.0.1:"),
        "{}",
        server.log()
    );
    let ca = trusted(&certs.ca);
    let ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    let url = |port: u16, path: &str| format!("https://127.0.0.1:{port}{path}");
    // HTTP/1.1 and HTTP/2 (ALPN), each API on its listener.
    for http in ["--http1.1", "--http2"] {
        let args = [
            ca.as_slice(),
            &[http, "-T", "examples/patches/patch-00.png"],
        ]
        .concat();
        let (code, body) = curl(&args, &url(server.port, "/predictions/pcam"));
        assert_eq!((code, body.as_str()), (0, "1"), "{http}");
    }
    let (code, models) = curl(&ca, &url(server.management_port, "/models"));
    assert!(code == 0 && models.contains("\"pcam\""), "{models}");
    let (code, metrics) = curl(&ca, &url(server.metrics_port, "/metrics"));
    assert!(
        code == 0 && metrics.contains("ts_inference_requests_total"),
        "{metrics}"
    );
    // Not trusted without the CA (curl's 60), and plain HTTP gets no answer.
    let (code, _) = curl(&[], &url(server.port, "/ping"));
    assert_eq!(code, 60);
    let (code, _) = curl(&[], &format!("http://127.0.0.1:{}/ping", server.port));
    assert_ne!(code, 0);
    prometheus_scrapes_over_tls(dir.path(), server.metrics_port, &certs.ca);
    clients_over_tls(&server, &certs.ca);
    server.kill();
}

/// Prometheus scrapes the metrics listener over https with the CA file.
fn prometheus_scrapes_over_tls(dir: &Path, port: u16, ca: &Path) {
    let Some(prometheus) = crate::util::fetched("SCANCER_PROMETHEUS", "prometheus over TLS") else {
        return;
    };
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: scancer\n    scheme: https\n    tls_config:\n      ca_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            ca.display()
        ),
    )
    .unwrap();
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web_port = web.local_addr().unwrap().port();
    drop(web);
    let mut child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let query =
        format!("http://127.0.0.1:{web_port}/api/v1/query?query=ts_inference_requests_total");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let found = loop {
        let (code, body) = curl(&[], &query);
        if code == 0 {
            if let Ok(answer) = serde_json::from_str::<Value>(&body) {
                let result = &answer["data"]["result"];
                if result.as_array().is_some_and(|r| !r.is_empty()) {
                    break Some(result.clone());
                }
            }
        }
        last = body;
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    let result =
        found.unwrap_or_else(|| panic!("Prometheus never scraped scancer over TLS: {last}"));
    assert_eq!(result[0]["metric"]["model_name"], "pcam", "{result}");
    assert_eq!(result[0]["metric"]["job"], "scancer", "{result}");
}

/// tritonclient (HTTPS, gRPC with TLS) and grpcio stubs with TLS credentials.
fn clients_over_tls(server: &Server, ca: &Path) {
    let Some(python) = crate::util::fetched("SCANCER_CLIENTS_PYTHON", "clients over TLS") else {
        return;
    };
    let got = crate::util::client_json(
        Command::new(python)
            .current_dir(root())
            .arg(root().join("tests/clients/tls_clients.py"))
            .args([server.port.to_string(), server.grpc_port().to_string()])
            .arg(ca)
            .arg(root().join("proto"))
            .arg(root().join("examples/patches/patch-00.png")),
    );
    let record = crate::util::predict(
        "examples/pcam-classification.pt",
        &["examples/patches/patch-00.png"],
    )
    .records()[0]
        .clone();
    let want = record["probabilities"]["metastatic"].as_f64().unwrap();
    for protocol in ["http", "grpc"] {
        assert_eq!(got[protocol]["ready"], true, "{got}");
        let p = got[protocol]["probabilities"][0][1].as_f64().unwrap();
        assert!((p - want).abs() < 1e-6, "{protocol}: {p} vs {want}");
    }
    assert_eq!(got["torchserve"]["ping"], "{\n  \"status\": \"Healthy\"\n}");
    assert_eq!(got["torchserve"]["prediction"], "1");
    assert_eq!(got["torchserve"]["untrusted"], "UNAVAILABLE", "{got}");
}

#[test]
fn a_keystore_and_a_certificate_replaced_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let one = certificates(dir.path(), "one");
    let two = certificates(dir.path(), "two");
    // PKCS#12, TorchServe's default keystore_type and keystore_pass.
    store_with_config(
        dir.path(),
        &format!("keystore={}\n", one.keystore.display()),
    );
    let server = start(dir.path());
    let ca_one = trusted(&one.ca);
    let ca_one: Vec<&str> = ca_one.iter().map(String::as_str).collect();
    let (code, body) = curl(&ca_one, &format!("https://127.0.0.1:{}/ping", server.port));
    assert_eq!(code, 0, "{body}");
    server.kill();

    // PEM files, then replaced on disk by a certificate of another CA: served from then on.
    let (certificate, key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(&one.certificate, &certificate).unwrap();
    std::fs::copy(&one.key, &key).unwrap();
    store_with_config(
        dir.path(),
        &format!(
            "certificate_file={}\nprivate_key_file={}\n",
            certificate.display(),
            key.display()
        ),
    );
    let server = start(dir.path());
    let ping = format!("https://127.0.0.1:{}/ping", server.port);
    assert_eq!(curl(&ca_one, &ping).0, 0);
    std::fs::copy(&two.key, &key).unwrap();
    std::fs::copy(&two.certificate, &certificate).unwrap();
    let ca_two = trusted(&two.ca);
    let ca_two: Vec<&str> = ca_two.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while curl(&ca_two, &ping).0 != 0 {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(curl(&ca_one, &ping).0, 60, "the old CA is no longer enough");
    // A broken replacement is said, and the served certificate stays.
    std::fs::write(&certificate, "not a certificate\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .log()
        .contains("the previous certificate is still served")
    {
        assert!(Instant::now() < deadline, "{}", server.log());
        let _ = curl(&ca_two, &ping);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(curl(&ca_two, &ping).0, 0);
    server.kill();
}

#[test]
fn tls_configuration_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let one = certificates(dir.path(), "one");
    let two = certificates(dir.path(), "two");
    for (lines, needle) in [
        (
            String::new(),
            "an https:// address or enable_grpc_ssl needs a certificate",
        ),
        (
            format!("keystore={}\nkeystore_pass=wrong\n", one.keystore.display()),
            "not a PKCS#12 keystore this keystore_pass opens",
        ),
        (
            format!("keystore={}\nkeystore_type=JKS\n", one.keystore.display()),
            "only PKCS12 keystores are read",
        ),
        (
            format!(
                "certificate_file={}\nprivate_key_file={}\n",
                one.certificate.display(),
                two.key.display()
            ),
            "the key does not belong to the certificate",
        ),
        (
            format!("certificate_file={}\n", one.certificate.display()),
            "certificate_file needs private_key_file",
        ),
    ] {
        store_with_config(dir.path(), &lines);
        let out = scancer()
            .current_dir(dir.path())
            .args(["serve", "--ts-config", "config.properties", "--ncs"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{lines}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("scancer: error: ") && last.contains(needle),
            "{lines}: {stderr}"
        );
    }
}
