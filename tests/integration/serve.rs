//! `scancer serve` over real HTTP on loopback: answers equal `scancer predict`, TorchServe's bodies
//! and codes, KServe V2, metrics checked by promtool, auth, batching, HTTP/2 and pipelining, hostile
//! and stalled clients, overload, graceful stop.

use crate::util::server::{multipart, read_reply, send, Server};
use crate::util::{predict, root, MULTICLASS, PCAM, SEGMENTATION};
use base64::Engine as _;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn patches() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("examples/patches"))
        .unwrap()
        .map(|e| {
            format!(
                "examples/patches/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    names.sort();
    names
}

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}

/// The value of the first sample whose line starts with `prefix`.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The predict record without the keys a served answer does not have.
fn without_path(mut record: Value) -> Value {
    let map = record.as_object_mut().unwrap();
    map.shift_remove("path");
    map.shift_remove("error");
    record
}

#[test]
fn predictions_equal_predict_raw_and_multipart() {
    let server = Server::start(&[PCAM, MULTICLASS, "-q"]);
    let images = patches();
    let expected = predict(PCAM, &images.iter().map(String::as_str).collect::<Vec<_>>());
    for image in &images {
        let record = expected.record(image);
        let data = bytes(image);
        let raw = server.put("/predictions/pcam-classification", &data);
        assert_eq!(raw.status, 200, "{}", raw.text());
        assert_eq!(raw.text(), record["class"].to_string(), "{image}");
        // TorchServe sends a handler's answer without a Content-Type; scancer says it is JSON.
        assert_eq!(raw.header("content-type"), Some("application/json"));

        let (content_type, form) = multipart("data", &data);
        let posted = server.request(
            "POST",
            "/predictions/pcam-classification/1.0",
            &[("content-type", &content_type)],
            &form,
        );
        assert_eq!(posted.text(), raw.text());

        let detailed = server.put("/predictions/pcam-classification?details=true", &data);
        assert_eq!(detailed.header("content-type"), Some("application/json"));
        assert_eq!(detailed.json(), without_path(record), "{image}");
    }

    // Multiclass: TorchServe's {label: probability} body, top k in order, float32 values exactly.
    let tissue = [
        "testdata/images/tall-130x160.png",
        "testdata/images/patch.jpg",
    ];
    let expected = predict(MULTICLASS, &tissue);
    for image in tissue {
        let reply = server.put("/predictions/tissue-multiclass", &bytes(image));
        let text = reply.text();
        assert!(
            text.starts_with("{\n  \"") && text.ends_with("\n}"),
            "{text}"
        );
        let body = reply.json();
        let want = &expected.record(image)["probabilities"];
        let got: Vec<(&String, f32)> = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k, v.as_f64().unwrap() as f32))
            .collect();
        let wanted: Vec<(&String, f32)> = want
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k, v.as_f64().unwrap() as f32))
            .collect();
        assert_eq!(got, wanted, "{image}");
    }
}

#[test]
fn segmentation_answers_masks_as_rows() {
    let server = Server::start(&[SEGMENTATION, "-q"]);
    let image = "testdata/images/patch.jpg";
    let expected = predict(SEGMENTATION, &[image]);
    let body = server
        .put("/predictions/tissue-segmentation", &bytes(image))
        .json();
    let rows = body.as_array().unwrap();
    let detailed = server
        .put("/predictions/tissue-segmentation?details=1", &bytes(image))
        .json();
    assert_eq!(detailed["mask"], body);
    assert_eq!(
        detailed["class_fractions"],
        expected.record(image)["class_fractions"]
    );
    // Fractions follow from the mask.
    let total = rows
        .iter()
        .map(|r| r.as_array().unwrap().len())
        .sum::<usize>() as f64;
    let zeros = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .filter(|v| **v == 0)
        .count() as f64;
    let first = detailed["class_fractions"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_f64()
        .unwrap();
    assert!((first - zeros / total).abs() < 1e-6);
}

#[test]
fn torchserve_status_codes_and_bodies() {
    let server = Server::start(&[PCAM, "-q", "--max-request-size", "100000"]);
    let patch = bytes("examples/patches/patch-00.png");

    // HEAD: the head of GET's answer, no body.
    let mut stream = server.connect();
    send(&mut stream, "HEAD", "/ping", &[], b"", true);
    let mut head = String::new();
    stream.read_to_string(&mut head).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n")
            && head.contains("content-length: 26\r\n")
            && head.ends_with("\r\n\r\n"),
        "{head:?}"
    );
    let ping = server.get("/ping");
    assert_eq!(
        (ping.status, ping.text().as_str()),
        (200, "{\n  \"status\": \"Healthy\"\n}\n")
    );

    let unknown = server.put("/predictions/nope", &patch);
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.header("connection"), Some("close"));
    assert_eq!(
        unknown.text(),
        "{\n  \"code\": 404,\n  \"type\": \"ModelNotFoundException\",\n  \"message\": \"Model not found: nope\"\n}\n"
    );
    let version = server.put("/predictions/pcam-classification/9.9", &patch);
    assert_eq!(version.status, 404);
    assert_eq!(
        version.json()["message"],
        "Model version: 9.9 does not exist for model: pcam-classification"
    );
    assert_eq!(version.json()["type"], "ModelVersionNotFoundException");
    let path = server.get("/nowhere");
    assert_eq!(path.status, 404);
    assert_eq!(
        path.text(),
        "{\n  \"code\": 404,\n  \"type\": \"ResourceNotFoundException\",\n  \"message\": \"Requested resource is not found, please refer to API document.\"\n}\n"
    );

    for (method, path) in [
        ("GET", "/predictions/pcam-classification"),
        ("DELETE", "/models/pcam-classification"),
        ("POST", "/models?url=http://evil/x.mar"),
        ("POST", "/metrics"),
        ("GET", "/"),
    ] {
        let reply = server.request(method, path, &[], b"");
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.json()["type"], "MethodNotAllowedException");
    }

    let bomb = bytes("testdata/images/bomb-100000x100000.png");
    let truncated = bytes("testdata/images/truncated.jpg");
    let small = bytes("testdata/images/small-50x50.png");
    for (body, needle) in [
        (
            &b"not an image"[..],
            "PUT /predictions/pcam-classification: ",
        ),
        (&b""[..], "empty body"),
        (&bomb[..], "pixels"),
        (&truncated[..], "PUT /predictions/pcam-classification: "),
        (&small[..], "50x50"),
    ] {
        let reply = server.put("/predictions/pcam-classification", body);
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert!(
            reply.json()["message"].as_str().unwrap().contains(needle),
            "{}",
            reply.text()
        );
    }
    let (content_type, form) = multipart("image", &patch);
    let reply = server.request(
        "POST",
        "/predictions/pcam-classification",
        &[("content-type", &content_type)],
        &form,
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply.text().contains("no field named data or body"),
        "{}",
        reply.text()
    );

    // Over --max-request-size: refused from the declared length, before any body byte is read (a
    // length near 2^62 is what makes tiny_http 0.12 abort, see bench/tiny_http_evidence).
    for length in ["7000000", "4611686018427387904"] {
        let mut stream = server.connect();
        send(
            &mut stream,
            "PUT",
            "/predictions/pcam-classification",
            &[("content-length", length)],
            b"0123456789",
            false,
        );
        let reply = read_reply(&mut stream).unwrap();
        assert_eq!(reply.status, 413);
        let message = reply.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(&format!("{length} bytes")), "{message}");
    }
    // ... and a chunked body that grows over it.
    let mut stream = server.connect();
    send(
        &mut stream,
        "PUT",
        "/predictions/pcam-classification",
        &[("transfer-encoding", "chunked")],
        b"",
        false,
    );
    let chunk = vec![b'x'; 60_000];
    for _ in 0..2 {
        let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = stream.write_all(&chunk);
        let _ = stream.write_all(b"\r\n");
    }
    assert_eq!(read_reply(&mut stream).unwrap().status, 413);

    // Not HTTP, and a head over the limit.
    let mut stream = server.connect();
    stream.write_all(b"\x16\x03\x01 hello\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut stream).unwrap().status, 400);
    let mut stream = server.connect();
    let huge = "x".repeat(20_000);
    send(&mut stream, "GET", "/ping", &[("x-big", &huge)], b"", true);
    assert_eq!(read_reply(&mut stream).unwrap().status, 431);
}

#[test]
fn chunked_bodies_expect_continue_and_keep_alive() {
    let server = Server::start(&[PCAM, "-q"]);
    let patch = bytes("examples/patches/patch-03.png");
    let want = server
        .put("/predictions/pcam-classification", &patch)
        .text();
    let mut stream = server.connect();
    // curl -T sends Expect: 100-continue and waits for it before the body.
    send(
        &mut stream,
        "PUT",
        "/predictions/pcam-classification",
        &[("transfer-encoding", "chunked"), ("expect", "100-continue")],
        b"",
        false,
    );
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    for piece in patch.chunks(1000) {
        stream
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .unwrap();
        stream.write_all(piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let reply = read_reply(&mut stream).unwrap();
    assert_eq!((reply.status, reply.text()), (200, want.clone()));
    // The same connection serves the next requests.
    for _ in 0..3 {
        send(
            &mut stream,
            "PUT",
            "/predictions/pcam-classification",
            &[],
            &patch,
            false,
        );
        assert_eq!(read_reply(&mut stream).unwrap().text(), want);
    }
}

#[test]
fn models_are_described_in_torchserve_shapes() {
    let server = Server::start(&[PCAM, MULTICLASS, "-q", "--batch-size", "4"]);
    let list = server.get("/models").json();
    assert_eq!(
        list,
        json!({"models": [
            {"modelName": "pcam-classification", "modelUrl": "pcam-classification.pt"},
            {"modelName": "tissue-multiclass", "modelUrl": "tissue-multiclass.pt"}
        ]})
    );
    let page = server.get("/models?limit=1").json();
    assert_eq!(page["nextPageToken"], "1");
    assert_eq!(page["models"].as_array().unwrap().len(), 1);
    let rest = server.get("/models?limit=1&next_page_token=1").json();
    assert_eq!(rest["models"][0]["modelName"], "tissue-multiclass");
    assert_eq!(server.get("/models?limit=x").status, 400);

    for path in [
        "/models/pcam-classification",
        "/models/pcam-classification/1.0",
        "/models/pcam-classification/all",
    ] {
        let described = server.get(path).json();
        let model = &described[0];
        assert_eq!(model["modelName"], "pcam-classification", "{path}");
        assert_eq!(model["modelVersion"], "1.0");
        assert_eq!(model["batchSize"], 4);
        assert_eq!(model["workers"][0]["status"], "READY");
        assert_eq!(model["jobQueueStatus"]["pendingRequests"], 0);
        assert_eq!(model["jobQueueStatus"]["remainingCapacity"], 100);
    }
    assert_eq!(server.get("/models/nope").status, 404);
    assert_eq!(server.get("/models/pcam-classification/2.0").status, 404);
}

#[test]
fn kserve_v2_protocol() {
    let server = Server::start(&[PCAM, "-q"]);
    assert_eq!(server.get("/v2/health/live").json(), json!({"live": true}));
    assert_eq!(
        server.get("/v2/health/ready").json(),
        json!({"ready": true})
    );
    assert_eq!(server.get("/v2").json()["name"], "scancer");
    let meta = server.get("/v2/models/pcam-classification").json();
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 3, 96, 96]));
    assert_eq!(meta["outputs"][0]["name"], "probabilities");
    assert_eq!(
        server
            .get("/v2/models/pcam-classification/versions/1.0/ready")
            .json()["ready"],
        true
    );
    assert_eq!(server.get("/v2/models/nope/ready").status, 404);

    let images = [
        "examples/patches/patch-01.png",
        "examples/patches/patch-02.png",
    ];
    let expected = predict(PCAM, &images);
    let encoded: Vec<String> = images
        .iter()
        .map(|i| base64::engine::general_purpose::STANDARD.encode(bytes(i)))
        .collect();
    let request = json!({"id": "r1", "inputs": [{"name": "input__0", "datatype": "BYTES", "shape": [2], "data": encoded}]});
    let reply = server.request(
        "POST",
        "/v2/models/pcam-classification/infer",
        &[("content-type", "application/json")],
        request.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["id"], "r1");
    assert_eq!(answer["outputs"][0]["shape"], json!([2, 2]));
    let probabilities = answer["outputs"][0]["data"].as_array().unwrap();
    for (k, image) in images.iter().enumerate() {
        let record = expected.record(image);
        assert_eq!(
            probabilities[2 * k + 1],
            record["probabilities"]["metastatic"]
        );
        assert_eq!(answer["outputs"][1]["data"][k], record["class"]);
    }

    // The same images as FP32 tensors, preprocessed here as the example configuration says:
    // ToTensor() then Normalize(0.5, 0.5), in CHW order, in float32 as torchvision computes it.
    let tensor: Vec<f32> = images
        .iter()
        .flat_map(|i| {
            let rgb = image::open(root().join(i)).unwrap().to_rgb8();
            (0..3)
                .flat_map(|c| {
                    rgb.pixels()
                        .map(move |p| (p.0[c] as f32 / 255.0 - 0.5) / 0.5)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let request = json!({"inputs": [{"name": "input__0", "datatype": "FP32", "shape": [2, 3, 96, 96], "data": tensor}],
                         "outputs": [{"name": "probabilities"}]});
    let fp32 = server
        .request(
            "POST",
            "/v2/models/pcam-classification/infer",
            &[],
            request.to_string().as_bytes(),
        )
        .json();
    assert_eq!(fp32["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(fp32["outputs"][0]["data"], answer["outputs"][0]["data"]);

    // The binary tensor data extension, as tritonclient sends by default: the JSON header's length
    // in Inference-Header-Content-Length, the tensor after it as little-endian FP32, and every
    // output asked back as binary.
    let header =
        json!({"inputs": [{"name": "input__0", "datatype": "FP32", "shape": [2, 3, 96, 96],
                                    "parameters": {"binary_data_size": tensor.len() * 4}}],
                        "parameters": {"binary_data_output": true}})
        .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(tensor.iter().flat_map(|v| v.to_le_bytes()));
    let reply = server.request(
        "POST",
        "/v2/models/pcam-classification/infer",
        &[("inference-header-content-length", &header.len().to_string())],
        &body,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let json_len: usize = reply
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let head: Value = serde_json::from_slice(&reply.body[..json_len]).unwrap();
    assert_eq!(head["outputs"][0]["name"], "probabilities");
    assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 16);
    assert_eq!(head["outputs"][1]["parameters"]["binary_data_size"], 16);
    assert!(head["outputs"][0].get("data").is_none());
    let data = &reply.body[json_len..];
    assert_eq!(data.len(), 32);
    let probabilities: Vec<f64> = data[..16]
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
        .collect();
    let expected: Vec<f64> = answer["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32 as f64)
        .collect();
    assert_eq!(probabilities, expected);
    let classes: Vec<i64> = data[16..]
        .chunks(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let expected: Vec<i64> = answer["outputs"][1]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(classes, expected);
    // A header length past the body, or binary data the input does not declare, is a 400.
    for (length, body) in [("99999", &body[..]), ("2", &body[..])] {
        let reply = server.request(
            "POST",
            "/v2/models/pcam-classification/infer",
            &[("inference-header-content-length", length)],
            body,
        );
        assert_eq!(reply.status, 400, "{length}");
        assert!(reply.json()["error"].is_string());
    }

    let one = vec![0.0f32; 3 * 96 * 96];
    for (bad, says) in [
        (json!({"inputs": []}), "exactly one input"),
        (
            json!({"inputs": [{"name": "input__0", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0.0]}]}),
            "does not match the model's [N, 3, 96, 96]",
        ),
        (
            json!({"inputs": [{"name": "input__0", "datatype": "BYTES", "shape": [1], "data": ["bm90IGFuIGltYWdl"]}]}),
            "image 0",
        ),
        // The right data under another datatype or another input's name is refused, as Triton does.
        (
            json!({"inputs": [{"name": "input__0", "datatype": "FP64", "shape": [1, 3, 96, 96], "data": one}]}),
            "datatype \"FP64\" does not match the model's input \"input__0\"",
        ),
        (
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3, 96, 96], "data": one}]}),
            "the model has no input \"x\": its input is \"input__0\"",
        ),
    ] {
        let reply = server.request(
            "POST",
            "/v2/models/pcam-classification/infer",
            &[],
            bad.to_string().as_bytes(),
        );
        assert_eq!(reply.status, 400, "{bad}");
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{error}");
    }

    // Triton's model configuration and repository index, as tritonclient reads them.
    let config = server.get("/v2/models/pcam-classification/config").json();
    assert_eq!(config["name"], "pcam-classification");
    assert_eq!(config["max_batch_size"], 16);
    assert_eq!(
        config["input"],
        json!([{"name": "input__0", "data_type": "TYPE_FP32", "format": "FORMAT_NCHW", "dims": [3, 96, 96]}])
    );
    assert_eq!(
        config["output"],
        json!([
            {"name": "probabilities", "data_type": "TYPE_FP32", "dims": [2]},
            {"name": "class", "data_type": "TYPE_INT64", "dims": [1], "reshape": {"shape": []}}
        ])
    );
    let index = server.request("POST", "/v2/repository/index", &[], b"{}");
    assert_eq!(index.status, 200);
    assert_eq!(
        index.json(),
        json!([{"name": "pcam-classification", "version": "1.0", "state": "READY"}])
    );

    // Every /v2 answer, errors included, is V2-shaped: {"error": ...}.
    for (method, path, status) in [
        ("GET", "/v2/models/pcam-classification/infer", 405),
        ("DELETE", "/v2/health/live", 405),
        ("GET", "/v2/nowhere", 404),
        ("GET", "/v2/models/pcam-classification/stats/x", 404),
        ("GET", "/v2/models/nope", 404),
        ("GET", "/v2/repository/index", 405),
        ("POST", "/v2/models/pcam-classification/config", 405),
    ] {
        let reply = server.request(method, path, &[], b"");
        assert_eq!(reply.status, status, "{method} {path}");
        assert!(
            reply.json()["error"].is_string(),
            "{method} {path}: {}",
            reply.text()
        );
    }
}

/// A PNG that takes seconds to decode (49 million pixels) in a test build, though it is only about
/// 150 KiB: while it decodes, it holds its room in the queue.
fn slow_png() -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(7000, 7000)
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

#[test]
fn a_full_queue_refuses_before_decoding_after_the_queue_wait() {
    let server = Server::start(&[
        PCAM,
        "-q",
        "--job-queue-size",
        "2",
        "--batch-size",
        "4",
        "--max-batch-delay",
        "20000",
        "--queue-wait",
        "300",
    ]);
    let infer = |n: usize| {
        let request = json!({"inputs": [{"name": "input__0", "datatype": "FP32", "shape": [n, 3, 96, 96],
                                          "data": vec![0.0f32; n * 3 * 96 * 96]}]});
        server.request(
            "POST",
            "/v2/models/pcam-classification/infer",
            &[],
            request.to_string().as_bytes(),
        )
    };
    // More images in one request than the queue holds can never be served.
    assert_eq!(infer(3).status, 400);
    let deadline = Instant::now() + Duration::from_secs(60);
    let poll = |what: &str, done: &dyn Fn() -> bool| {
        while !done() {
            assert!(Instant::now() < deadline, "never: {what}");
        }
    };
    let queue = || server.get("/models/pcam-classification").json()[0]["jobQueueStatus"].clone();
    let slow = slow_png();
    let patch = bytes("examples/patches/patch-00.png");
    std::thread::scope(|s| {
        // An image decoding holds its room, and the batch waits for it (up to the delay)...
        let decoding = s.spawn(|| server.put("/predictions/pcam-classification", &slow));
        poll("the large image admitted", &|| {
            queue()["remainingCapacity"] == 1
        });
        // ... so one queued image fills the queue,
        let queued = s.spawn(|| infer(1));
        poll("one image queued", &|| queue()["pendingRequests"] == 1);
        // and a request that is not even an image is refused with the full queue's 503, before
        // decoding, once it has waited --queue-wait for room; its connection stays open. A V2
        // request, sent at the same time, is refused V2's way.
        let v2 = s.spawn(|| infer(1));
        let mut stream = server.connect();
        let started = Instant::now();
        send(
            &mut stream,
            "PUT",
            "/predictions/pcam-classification",
            &[],
            b"not an image",
            false,
        );
        let reply = read_reply(&mut stream).unwrap();
        let waited = started.elapsed();
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert_eq!(reply.json()["type"], "ServiceUnavailableException");
        assert!(
            waited >= Duration::from_millis(290),
            "refused after {waited:?}"
        );
        assert_eq!(reply.header("connection"), None);
        send(&mut stream, "GET", "/ping", &[], b"", false);
        assert_eq!(read_reply(&mut stream).unwrap().status, 200);
        let v2 = v2.join().unwrap();
        assert_eq!(v2.status, 503, "{}", v2.text());
        assert!(
            v2.json()["error"].as_str().unwrap().contains("retry"),
            "{}",
            v2.text()
        );
        // Once the image is decoded (and refused: pcam takes 96x96 only), the queued one runs.
        let decoded = decoding.join().unwrap();
        assert_eq!(decoded.status, 400, "{}", decoded.text());
        assert!(decoded.text().contains("7000x7000"), "{}", decoded.text());
        assert_eq!(queued.join().unwrap().status, 200);
    });
    assert_eq!(
        server
            .put("/predictions/pcam-classification", &patch)
            .status,
        200
    );
    let metrics = server.get("/metrics").text();
    let refused = metrics
        .lines()
        .find(|l| {
            l.starts_with("scancer_rejected_requests_total{") && l.contains("reason=\"queue_full\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(refused, Some(2.0), "{metrics}");
}

#[test]
fn authentication() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.txt");
    std::fs::write(&users, "# users\nana:s3cret-pw\n").unwrap();
    let users = users.to_str().unwrap();
    let token = "T0ken-xyz-42";
    let server = Server::start_with(&[PCAM, "--auth-file", users], &[("SCANCER_TOKEN", token)]);
    let patch = bytes("examples/patches/patch-00.png");
    let path = "/predictions/pcam-classification";

    let denied = server.put(path, &patch);
    assert_eq!(denied.status, 401);
    let challenges: Vec<&str> = denied
        .headers
        .iter()
        .filter(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        challenges,
        ["Basic realm=\"scancer\"", "Bearer realm=\"scancer\""]
    );
    let basic = |pair: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    for (authorization, status) in [
        (basic("ana:s3cret-pw"), 200),
        (basic("ana:s3cret-p"), 401),
        (basic("bob:s3cret-pw"), 401),
        (format!("Bearer {token}"), 200),
        ("Bearer nope".to_string(), 401),
    ] {
        let reply = server.request("PUT", path, &[("authorization", &authorization)], &patch);
        assert_eq!(reply.status, status, "{authorization}");
    }
    assert_eq!(server.get("/ping").status, 200);
    assert_eq!(server.get("/v2/health/ready").status, 200);
    // An unauthenticated upload is refused from its head: no 100 Continue, no byte of its 50 MB
    // body read (none is sent here), and the connection closes after the 401.
    let mut stream = server.connect();
    send(
        &mut stream,
        "PUT",
        path,
        &[("content-length", "50000000"), ("expect", "100-continue")],
        b"",
        false,
    );
    let refused = read_reply(&mut stream).unwrap();
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused.headers.iter().any(|(n, _)| n == "www-authenticate"));
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // One access-log line per request: address, request line, status, bytes, time.
    assert!(
        server
            .log()
            .contains("127.0.0.1 \"PUT /predictions/pcam-classification\" 200 1 B "),
        "{}",
        server.log()
    );
    assert_eq!(server.get("/metrics").status, 401);
    // V2 paths answer in V2's shape, which tritonclient reads; the challenges are the same.
    let v2 = server.get("/v2/models/pcam-classification");
    assert_eq!(v2.status, 401);
    assert!(v2.json()["error"]
        .as_str()
        .unwrap()
        .contains("Authentication required"));
    assert!(v2.headers.iter().any(|(n, _)| n == "www-authenticate"));
    assert_eq!(server.get("/models").json()["code"], 401);
    assert_eq!(server.get("/nowhere").status, 401);
    let log = server.log();
    assert!(!log.contains("s3cret") && !log.contains(token), "{log}");

    let open = Server::start_with(
        &[PCAM, "-q", "--open", "metrics"],
        &[("SCANCER_AUTH", "ana:pw")],
    );
    assert_eq!(open.get("/metrics").status, 200);
    assert_eq!(open.get("/ping").status, 401);
}

#[test]
fn metrics_pass_promtool() {
    let Some(promtool) = crate::util::fetched("SCANCER_PROMTOOL", "metrics_pass_promtool") else {
        return;
    };
    let server = Server::start(&[PCAM, "-q"]);
    let patch = bytes("examples/patches/patch-00.png");
    for _ in 0..3 {
        assert_eq!(
            server
                .put("/predictions/pcam-classification", &patch)
                .status,
            200
        );
    }
    assert_eq!(
        server
            .put("/predictions/pcam-classification/1.0", &patch)
            .status,
        200
    );
    assert_eq!(server.put("/predictions/nope", &patch).status, 404);
    // A refused request (not an image) is counted apart from the answered ones.
    assert_eq!(
        server
            .put("/predictions/pcam-classification", b"not an image")
            .status,
        400
    );
    let metrics = server.get("/metrics");
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.text();
    let value = |prefix: &str| metric(&text, prefix);
    // As TorchServe labels them: the version a request named, else "default".
    let series = "{model_name=\"pcam-classification\",model_version=\"1.0\"";
    let default = "{model_name=\"pcam-classification\",model_version=\"default\"";
    assert_eq!(value(&format!("ts_inference_requests_total{series}")), 1.0);
    assert_eq!(value(&format!("ts_inference_requests_total{default}")), 3.0);
    assert_eq!(
        value(&format!("scancer_inference_images_total{default}")),
        3.0
    );
    assert_eq!(
        value(&format!("scancer_inference_latency_seconds_count{series}")),
        1.0
    );
    let rejected = text
        .lines()
        .find(|l| {
            l.starts_with(&format!("scancer_rejected_requests_total{default}"))
                && l.contains("reason=\"bad_input\"")
        })
        .unwrap_or_else(|| panic!("no rejected series in {text}"));
    assert!(rejected.ends_with("} 1"), "{rejected}");
    // TorchServe's gauges: the model's times, its worker's load, the machine.
    for gauge in [
        "QueueTime{Level=\"Host\",Hostname=",
        "WorkerThreadTime{Level=\"Host\",Hostname=",
        "WorkerLoadTime{WorkerName=\"W-",
        "HandlerTime{ModelName=\"pcam-classification\",Level=\"Model\",Hostname=",
        "PredictionTime{ModelName=\"pcam-classification\",Level=\"Model\",Hostname=",
        "CPUUtilization{Level=\"Host\",Hostname=",
        "MemoryUsed{Level=\"Host\",Hostname=",
        "MemoryAvailable{Level=\"Host\",Hostname=",
        "MemoryUtilization{Level=\"Host\",Hostname=",
        "DiskUsage{Level=\"Host\",Hostname=",
        "DiskAvailable{Level=\"Host\",Hostname=",
        "DiskUtilization{Level=\"Host\",Hostname=",
    ] {
        assert!(value(gauge) >= 0.0, "{gauge}");
    }
    assert!(
        value("HandlerTime{") > 0.0 && value("MemoryUsed{") > 0.0,
        "{text}"
    );
    assert_eq!(value("Requests2XX"), 4.0);
    assert_eq!(value("Requests4XX"), 2.0);

    // TorchServe's filter: only the families named.
    let filtered = server
        .get("/metrics?name[]=ts_inference_requests_total&name[]=Requests4XX")
        .text();
    let families: Vec<&str> = filtered
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();
    assert_eq!(
        families,
        ["ts_inference_requests_total counter", "Requests4XX counter"]
    );

    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 3 means lint findings only; the only ones allowed are about TorchServe's own names, which
    // scancer keeps so that existing dashboards work.
    let torchserve_names = [
        "Requests2XX",
        "Requests4XX",
        "Requests5XX",
        "ts_inference_latency_microseconds",
        "ts_queue_latency_microseconds",
        "QueueTime",
        "WorkerThreadTime",
        "WorkerLoadTime",
        "HandlerTime",
        "PredictionTime",
        "CPUUtilization",
        "MemoryUsed",
        "MemoryAvailable",
        "MemoryUtilization",
        "DiskUsage",
        "DiskAvailable",
        "DiskUtilization",
    ];
    assert!(matches!(out.status.code(), Some(0 | 3)), "{complaints}");
    for line in complaints.lines() {
        assert!(
            torchserve_names
                .iter()
                .any(|n| line.starts_with(&format!("{n} "))),
            "promtool: {line}"
        );
    }
}

#[test]
fn batched_answers_equal_unbatched() {
    let server = Server::start(&[PCAM, "-q", "--max-batch-delay", "50"]);
    let images = patches();
    let one_by_one: Vec<String> = images
        .iter()
        .map(|i| {
            server
                .put("/predictions/pcam-classification?details=true", &bytes(i))
                .text()
        })
        .collect();
    let server = std::sync::Arc::new(server);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let server = std::sync::Arc::clone(&server);
            let images = images.clone();
            std::thread::spawn(move || {
                let mut stream = server.connect();
                (0..images.len())
                    .map(|k| {
                        let k = (k + t) % images.len();
                        send(
                            &mut stream,
                            "PUT",
                            "/predictions/pcam-classification?details=true",
                            &[],
                            &bytes(&images[k]),
                            false,
                        );
                        (k, read_reply(&mut stream).unwrap().text())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        for (k, answer) in thread.join().unwrap() {
            assert_eq!(answer, one_by_one[k], "{}", images[k]);
        }
    }
    let metrics = server.get("/metrics").text();
    let count = |name: &str| metric(&metrics, name);
    let (batches, requests) = (
        count("scancer_batches_total "),
        count("scancer_batched_requests_total "),
    );
    assert_eq!(requests, (images.len() * 9) as f64);
    assert!(
        batches < requests,
        "no request was batched: {batches} batches for {requests} requests"
    );
}

#[test]
fn slow_idle_and_lying_clients_do_not_delay_others() {
    let server = Server::start(&[PCAM, "-q", "--client-timeout", "2", "--head-timeout", "2"]);
    let patch = bytes("examples/patches/patch-00.png");
    // 100 idle keep-alive connections, each after one answered request.
    let mut idle = Vec::new();
    for _ in 0..100 {
        let mut stream = server.connect();
        send(&mut stream, "GET", "/ping", &[], b"", false);
        assert_eq!(read_reply(&mut stream).unwrap().status, 200);
        idle.push(stream);
    }
    // Headers, then nothing.
    let mut slow = server.connect();
    send(
        &mut slow,
        "PUT",
        "/predictions/pcam-classification",
        &[("content-length", "20000")],
        b"",
        false,
    );
    // Half a head.
    let mut half = server.connect();
    half.write_all(b"PUT /predictions/pcam-classification HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    // A body far shorter than its Content-Length.
    let mut liar = server.connect();
    send(
        &mut liar,
        "PUT",
        "/predictions/pcam-classification",
        &[("content-length", "6000000")],
        b"0123456789",
        false,
    );

    let started = Instant::now();
    for _ in 0..5 {
        let reply = server.put("/predictions/pcam-classification", &patch);
        assert_eq!(reply.status, 200);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "5 requests took {took:?} beside stalled clients"
    );
    // The stalled clients get 408 once the client timeout passes, and are closed.
    for stream in [&mut slow, &mut half, &mut liar] {
        let reply = read_reply(stream).unwrap();
        assert_eq!(reply.status, 408);
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
    }
    drop(idle);
}

#[test]
fn graceful_shutdown_answers_every_accepted_request() {
    let server = Server::start(&[PCAM, "--max-batch-delay", "200"]);
    let patch = bytes("examples/patches/patch-00.png");
    let want = server
        .put("/predictions/pcam-classification", &patch)
        .text();
    let mut streams: Vec<_> = (0..8).map(|_| server.connect()).collect();
    // One answered request each first, so every connection has been accepted by the server.
    for stream in &mut streams {
        send(stream, "GET", "/ping", &[], b"", false);
        assert_eq!(read_reply(stream).unwrap().status, 200);
    }
    // Then the predictions, and the signal while they are read, decoded, queued or batched.
    for stream in &mut streams {
        send(
            stream,
            "PUT",
            "/predictions/pcam-classification",
            &[],
            &patch,
            false,
        );
    }
    let (code, log) = {
        let handles: Vec<_> = streams
            .into_iter()
            .map(|mut s| {
                std::thread::spawn(move || {
                    read_reply(&mut s).map(|r| {
                        (
                            r.status,
                            r.text(),
                            r.header("connection").map(str::to_string),
                        )
                    })
                })
            })
            .collect();
        let stopped = server.stop();
        for handle in handles {
            let (status, text, _) = handle
                .join()
                .unwrap()
                .expect("an answer, not a dropped connection");
            assert_eq!((status, text), (200, want.clone()));
        }
        stopped
    };
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("scancer: stopped"), "{log}");
}

#[test]
fn start_up_errors_are_one_line_and_exit_2() {
    let out = crate::util::run(crate::util::scancer().args([
        "serve",
        "--port",
        "0",
        "--grpc-port",
        "0",
        "missing.mar",
    ]));
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("missing.mar"), "{}", out.stderr);

    let server = Server::start(&[PCAM, "-q"]);
    let port = server.port.to_string();
    let out = crate::util::run(crate::util::scancer().args([
        "serve",
        "--port",
        &port,
        "--grpc-port",
        "0",
        PCAM,
    ]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
}

#[test]
fn running_out_of_file_descriptors_does_not_stop_the_server() {
    let server = Server::start_with_file_limit(&[PCAM, "-q"], 128);
    // More connections than the server has descriptors for: accept() fails with EMFILE.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.log().contains("cannot accept a connection") {
        assert!(
            Instant::now() < deadline,
            "accept never failed: {}",
            server.log()
        );
        match std::net::TcpStream::connect(("127.0.0.1", server.port)) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    assert!(
        server.log().contains("Too many open files"),
        "{}",
        server.log()
    );
    drop(held);
    // Once the clients are gone the same server answers again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut stream = server.connect();
        send(&mut stream, "GET", "/ping", &[], b"", true);
        if let Ok(reply) = read_reply(&mut stream) {
            assert_eq!(reply.status, 200);
            break;
        }
        assert!(Instant::now() < deadline, "the server stopped answering");
    }
}

#[test]
fn connections_over_the_limit_get_503_and_the_server_goes_on() {
    let server = Server::start(&[PCAM, "-q", "--max-connections", "2"]);
    let mut held: Vec<_> = (0..2).map(|_| server.connect()).collect();
    for stream in &mut held {
        send(stream, "GET", "/ping", &[], b"", false);
        assert_eq!(read_reply(stream).unwrap().status, 200);
    }
    let mut third = server.connect();
    let reply = read_reply(&mut third).unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("2 open connections, its limit"),
        "{}",
        reply.text()
    );
    // A slot frees when a client leaves.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut stream = server.connect();
        send(&mut stream, "GET", "/ping", &[], b"", true);
        if read_reply(&mut stream).is_ok_and(|r| r.status == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed");
    }
}

#[test]
fn the_device_reported_is_the_one_used() {
    // This libtorch has no CUDA: `--device auto` runs on the CPU and says so.
    for device in ["auto", "cpu"] {
        let server = Server::start(&[PCAM, "-q", "--device", device]);
        let described = server.get("/models/pcam-classification").json();
        let worker = &described[0]["workers"][0];
        assert_eq!(worker["gpu"], false, "--device {device}: {worker}");
    }
}

#[test]
fn thousands_of_stalled_heads_cost_little_and_time_out() {
    let server = Server::start(&[PCAM, "-q", "--head-timeout", "3"]);
    let patch = bytes("examples/patches/patch-00.png");
    assert_eq!(
        server
            .put("/predictions/pcam-classification", &patch)
            .status,
        200
    );
    let before = server.resident_bytes();
    // A slowloris from one machine: half a head each, then nothing.
    let mut stalled: Vec<_> = (0..2000)
        .map(|_| {
            let mut stream = server.connect();
            stream
                .write_all(b"PUT /predictions/pcam-classification HTTP/1.1\r\nhost: x\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Every stalled connection has been accepted (a ping after them on each of a few is answered
    // in order only once the server has read the stalled ones' bytes).
    let started = Instant::now();
    let reply = server.put("/predictions/pcam-classification", &patch);
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert!(
        took < Duration::from_secs(1),
        "answered in {took:?} beside 2000 stalled heads"
    );
    let grown = server.resident_bytes().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "2000 stalled connections took {grown} bytes"
    );
    // Their deadline closes them with a 408.
    for stream in stalled.iter_mut().step_by(400) {
        let reply = read_reply(stream).unwrap();
        assert_eq!(reply.status, 408, "{}", reply.text());
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
    }
}

#[test]
fn http2_and_pipelined_http1_answer_like_http1() {
    let server = Server::start(&[PCAM, "-q"]);
    let patch = root().join("examples/patches/patch-00.png");
    let want = server.put(
        "/predictions/pcam-classification",
        &bytes("examples/patches/patch-00.png"),
    );
    // HTTP/2 with prior knowledge (h2c). One request per curl: curl 7.88 fails to reuse an h2c
    // connection ("Error in the HTTP2 framing layer"); the tritonclient tests multiplex gRPC.
    let h2 = |args: &[&str], url: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "-w",
                " %{http_version} %{http_code}",
            ])
            .args(args)
            .arg(format!("http://127.0.0.1:{}{url}", server.port))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let upload = ["-T", patch.to_str().unwrap()];
    assert_eq!(
        h2(&upload, "/predictions/pcam-classification"),
        format!("{} 2 200", want.text())
    );
    let missing = h2(&[], "/v2/models/nope");
    assert!(
        missing.ends_with(" 2 404") && missing.starts_with("{\"error\""),
        "{missing}"
    );

    // HTTP/1.1 pipelining: three requests in one write, three answers in order, errors included,
    // on one connection that stays open.
    let mut stream = server.connect();
    let body = bytes("examples/patches/patch-00.png");
    let mut requests = Vec::new();
    for path in [
        "/predictions/pcam-classification",
        "/predictions/nope",
        "/predictions/pcam-classification",
    ] {
        requests.extend(
            format!(
                "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .bytes(),
        );
        requests.extend(&body);
    }
    stream.write_all(&requests).unwrap();
    let statuses: Vec<u16> = (0..3)
        .map(|_| read_reply(&mut stream).unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 404, 200]);
    send(&mut stream, "GET", "/ping", &[], b"", false);
    assert_eq!(read_reply(&mut stream).unwrap().status, 200);
}

/// tritonclient (HTTP with its binary-data defaults, and gRPC) and TorchServe's gRPC API through
/// stubs generated by grpcio-tools from proto/, against one server with a token: the answers equal
/// `scancer predict` and `/predictions`, and a call without the token is refused on every protocol.
#[test]
fn tritonclient_http_and_grpc_and_torchserve_grpc_stubs() {
    let Some(python) = crate::util::fetched("SCANCER_CLIENTS_PYTHON", "tritonclient_http_and_grpc")
    else {
        return;
    };
    // The model in every format, served under the name the clients ask for.
    for model in [
        PCAM,
        "examples/pcam-classification.onnx",
        "examples/pcam-classification.pt2",
    ] {
        clients_agree(&python, model);
    }
}

fn clients_agree(python: &std::path::Path, model: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "clients-token\n").unwrap();
    let served = format!("pcam-classification={model}");
    let server = Server::start(&[&served, "-q", "--token-file", tokens.to_str().unwrap()]);
    let patches = patches();
    let got = crate::util::client_json(
        std::process::Command::new(python)
            .current_dir(root())
            .arg(root().join("tests/clients/v2_and_torchserve_clients.py"))
            .args([server.port.to_string(), server.grpc_port().to_string()])
            .args(["clients-token", root().join("proto").to_str().unwrap()])
            .args(&patches),
    );
    let expected = predict(
        model,
        &patches.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let records: Vec<Value> = patches.iter().map(|p| expected.record(p)).collect();
    for protocol in ["http", "grpc"] {
        let v2 = &got[protocol];
        assert_eq!(
            (&v2["live"], &v2["ready"], &v2["model_ready"]),
            (&json!(true), &json!(true), &json!(true)),
            "{protocol}: {v2}"
        );
        assert_eq!(
            v2["metadata"]["inputs"][0]["name"], "input__0",
            "{protocol}"
        );
        assert_eq!(v2["metadata"]["inputs"][0]["shape"], json!([-1, 3, 96, 96]));
        for (k, record) in records.iter().enumerate() {
            assert_eq!(v2["class"][k], record["class"], "{protocol} {k}");
            let p = v2["probabilities"][k][1].as_f64().unwrap();
            let want = record["probabilities"]["metastatic"].as_f64().unwrap();
            assert!(
                (p - want).abs() < 1e-6,
                "{model} {protocol} {k}: {p} vs {want}"
            );
        }
        assert!(
            ["401", "StatusCode.UNAUTHENTICATED"]
                .contains(&v2["without_credentials"].as_str().unwrap()),
            "{protocol}: {v2}"
        );
    }
    assert_eq!(
        got["http"]["config"]["input"][0]["dims"],
        json!([3, 96, 96])
    );
    // TorchServe's gRPC API answers what /predictions answers.
    let ts = &got["torchserve"];
    assert_eq!(ts["ping"], "{\n  \"status\": \"Healthy\"\n}");
    for (k, patch) in patches.iter().enumerate() {
        let want = server
            .request(
                "PUT",
                "/predictions/pcam-classification",
                &[("authorization", "Bearer clients-token")],
                &std::fs::read(patch).unwrap(),
            )
            .text();
        assert_eq!(ts["predictions"][k], want.as_str(), "{k}");
    }
    assert_eq!(ts["stream"][0], ts["predictions"][0]);
    let errors = &ts["errors"];
    assert_eq!(errors["unauthenticated"][0], "UNAUTHENTICATED");
    assert_eq!(errors["unknown_model"][0], "NOT_FOUND");
    assert_eq!(errors["not_an_image"][0], "INVALID_ARGUMENT");
    assert!(errors["no_data"][1]
        .as_str()
        .unwrap()
        .contains("no key data or body"));
    assert_eq!(ts["kserve_live"], true);
    assert!(!server.log().contains("panicked"));
}

#[test]
fn bodies_share_a_memory_budget_and_v2_refusals_are_v2_shaped() {
    let server = Server::start(&[
        PCAM,
        "-q",
        "--max-request-size",
        "60000",
        "--max-body-memory",
        "60000",
    ]);
    let patch = bytes("examples/patches/patch-00.png");
    assert!(patch.len() < 60000);
    // One upload declares the whole budget and sends a little of it.
    let mut holder = server.connect();
    send(
        &mut holder,
        "PUT",
        "/predictions/pcam-classification",
        &[("content-length", "60000")],
        b"0123",
        false,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&server.get("/metrics").text(), "scancer_arriving_requests ") != 1.0 {
        assert!(Instant::now() < deadline, "the upload never arrived");
    }
    // Another body waits for room, unread: no answer yet...
    let mut waiting = server.connect();
    send(
        &mut waiting,
        "PUT",
        "/predictions/pcam-classification",
        &[],
        &patch,
        false,
    );
    waiting
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = waiting.read(&mut byte);
    assert!(
        early.is_err(),
        "answered while the budget was held: {early:?}"
    );
    // ... and is read and answered once the first gives up.
    drop(holder);
    waiting
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(read_reply(&mut waiting).unwrap().status, 200);

    // A V2 body over the limit: 413 from the declared length, V2-shaped, and the connection closes.
    let mut stream = server.connect();
    send(
        &mut stream,
        "POST",
        "/v2/models/pcam-classification/infer",
        &[("content-length", "70000")],
        b"",
        false,
    );
    let reply = read_reply(&mut stream).unwrap();
    assert_eq!(reply.status, 413);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("over the limit"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.header("connection"), Some("close"));
    let v2 = server
        .request("GET", "/v2/models/pcam-classification/stats", &[], b"")
        .json();
    assert_eq!(v2["model_stats"][0]["version"], "1.0", "{v2}");
    assert_eq!(
        server.request("PUT", "/v2/models/stats", &[], b"").status,
        405
    );
}
