//! Explanations: TorchServe's `/explanations` in `serve` and `predict --explain`, Integrated
//! Gradients as TorchServe's vision handlers compute them with Captum, checked against Captum's own
//! attributions (testdata/explanations.json, written by examples/reference_integrated_gradients.py)
//! within 1e-4 (see `close_to_captum` for what another CPU moves), in TorchServe's answer shape
//! ([C][H][W] nested lists, `json.dumps(indent=2)`).

use crate::util::server::Server;
use crate::util::{root, run, scancer, MULTICLASS, PCAM, SEGMENTATION};
use serde_json::Value;

fn reference() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("testdata/explanations.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all["cases"].as_array().unwrap().clone()
}

/// Attributions as Captum's within 1e-4, but for a gradient that a max-pool tie sends to another
/// input of the same window: the reference was computed on one CPU, and another CPU's kernels can
/// break a tie the other way in one of the 15 steps (on an AMD EPYC, 35 of pcam's 27,648 values
/// moved between neighbouring pixels, by up to 0.013 of a largest attribution of 0.50). Those stay
/// rare and bounded, and the attributions' total (completeness: what they add up to) is unchanged.
fn close_to_captum(model: &str, values: &[f64], captum: &[f64]) {
    assert_eq!(values.len(), captum.len(), "{model}");
    let largest = captum.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
    let moved = values
        .iter()
        .zip(captum)
        .filter(|(a, b)| (*a - *b).abs() > 1e-4)
        .map(|(a, b)| (a - b).abs())
        .collect::<Vec<_>>();
    assert!(
        moved.len() * 500 <= values.len(),
        "{model}: {} of {} values differ from Captum's by over 1e-4",
        moved.len(),
        values.len()
    );
    let worst = moved.iter().fold(0.0, |m: f64, d| m.max(*d));
    assert!(
        worst <= 0.05 * largest,
        "{model}: a value differs from Captum's by {worst:e} (largest attribution {largest:e})"
    );
    let (total, reference) = (values.iter().sum::<f64>(), captum.iter().sum::<f64>());
    assert!(
        (total - reference).abs() <= 1e-4 * reference.abs().max(1.0),
        "{model}: attributions add up to {total}, Captum's to {reference}"
    );
}

/// The attribution values of an answer, flattened in C, H, W order, with its shape.
fn flattened(answer: &Value) -> (Vec<usize>, Vec<f64>) {
    let channels = answer.as_array().unwrap();
    let rows = channels[0].as_array().unwrap();
    let shape = vec![
        channels.len(),
        rows.len(),
        rows[0].as_array().unwrap().len(),
    ];
    let values = channels
        .iter()
        .flat_map(|c| c.as_array().unwrap().iter())
        .flat_map(|r| r.as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap())
        .collect();
    (shape, values)
}

#[test]
fn explanations_match_captum_in_torchserves_shape() {
    let server = Server::start(&[PCAM, MULTICLASS, SEGMENTATION, "-q"]);
    for case in reference() {
        let model = std::path::Path::new(case["model"].as_str().unwrap())
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let image = std::fs::read(root().join(case["image"].as_str().unwrap())).unwrap();
        let target = case["target"].as_u64().unwrap();
        let path = if target == 0 {
            format!("/explanations/{model}")
        } else {
            format!("/explanations/{model}?target={target}")
        };
        let reply = server.put(&path, &image);
        assert_eq!(reply.status, 200, "{model}: {}", reply.text());
        // TorchServe's worker writes the handler's list as json.dumps(indent=2).
        assert!(reply.text().starts_with("[\n  [\n    [\n      "), "{model}");
        let (shape, values) = flattened(&reply.json());
        let expected: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, expected, "{model}");
        let captum: Vec<f64> = case["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        close_to_captum(&model, &values, &captum);
        // The same through a form, the target a field, as TorchServe's clients send it.
        let boundary = "explain-boundary-3f9";
        let mut form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"p.png\"\r\n\r\n"
        )
        .into_bytes();
        form.extend_from_slice(&image);
        form.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"target\"\r\n\r\n{target}\r\n--{boundary}--\r\n"
            )
            .as_bytes(),
        );
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let reply = server.request(
            "POST",
            &format!("/explanations/{model}"),
            &[("content-type", &content_type)],
            &form,
        );
        assert_eq!(reply.status, 200, "{model} form: {}", reply.text());
        assert_eq!(
            flattened(&reply.json()).1,
            values,
            "{model}: form and body agree"
        );
    }
    // KServe V1's :explain: each instance explained towards output 0, as /explanations does.
    let patch = std::fs::read(root().join("examples/patches/patch-02.png")).unwrap();
    use base64::Engine as _;
    let body = serde_json::json!({
        "instances": [{"data": base64::engine::general_purpose::STANDARD.encode(&patch)}]
    })
    .to_string();
    let reply = server.request(
        "POST",
        "/v1/models/pcam-classification:explain",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let direct = server
        .put("/explanations/pcam-classification", &patch)
        .json();
    assert_eq!(reply.json()["explanations"][0], direct);
    // Refusals name the request and the problem.
    let image = std::fs::read(root().join("examples/patches/patch-00.png")).unwrap();
    let reply = server.put("/explanations/pcam-classification?target=3", &image);
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .text()
            .contains("target 3 is not an output of the model (0 to 0)"),
        "{}",
        reply.text()
    );
    let reply = server.put("/explanations/tissue-segmentation", &image);
    assert_eq!(reply.status, 400);
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("this model's kind is \"segmentation\""),
        "{message}"
    );
    let reply = server.put("/explanations/nope", &image);
    assert_eq!(reply.status, 404);
    let reply = server.get("/explanations/pcam-classification");
    assert_eq!(reply.status, 405);
}

#[test]
fn predict_explain_writes_one_overlay_per_image_and_per_slide_hotspot() {
    let dir = tempfile::tempdir().unwrap();
    let explain = dir.path().join("why");
    let patches = [
        "examples/patches/patch-02.png",
        "examples/patches/patch-09.png",
    ];
    let out = run(scancer()
        .args(["predict", "-q", "-f", "jsonl", "-m", PCAM, "--explain"])
        .arg(&explain)
        .args(patches));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let captum_sum = reference()[0]["sum"].as_f64().unwrap();
    for patch in patches {
        let png = explain.join(format!("{patch}.explain.png"));
        let image = image::open(&png).unwrap();
        // The input and its overlay side by side, each 96 x 96 shown 3x, 8 pixels apart.
        assert_eq!((image.width(), image.height()), (2 * 288 + 8, 288));
        let t = crate::slides::png_texts(&png);
        assert_eq!(t["scancer:target"], "logit of metastatic");
        assert_eq!(t["scancer:model_sha256"].len(), 64);
        if patch.ends_with("patch-02.png") {
            let sum: f64 = t["scancer:attribution-sum"].parse().unwrap();
            assert!(
                (sum - captum_sum).abs() < 1e-3,
                "{sum} vs Captum's {captum_sum}"
            );
        }
        // The left half is the input as the model saw it: the patch itself, enlarged.
        let original = image::open(root().join(patch)).unwrap().to_rgb8();
        let shown = image.to_rgb8();
        assert_eq!(shown.get_pixel(3 * 10, 3 * 20), original.get_pixel(10, 20));
    }
    // A slide: its hotspot window is explained, and the record says where.
    let slide = dir.path().join("slide.png");
    let mut canvas = image::RgbImage::from_pixel(288, 192, image::Rgb([255; 3]));
    let positive = image::open(root().join(patches[0])).unwrap().to_rgb8();
    image::imageops::replace(&mut canvas, &positive, 96, 96);
    canvas.save(&slide).unwrap();
    let out = run(scancer()
        .args([
            "predict",
            "-q",
            "-f",
            "jsonl",
            "--tile",
            "-m",
            PCAM,
            "--explain",
        ])
        .arg(&explain)
        .arg(&slide));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let written = record["slide"]["exports"]["explanation"].as_str().unwrap();
    assert!(written.ends_with("slide.png.explain.png"), "{written}");
    let sum: f64 = crate::slides::png_texts(std::path::Path::new(written))
        ["scancer:attribution-sum"]
        .parse()
        .unwrap();
    assert!(
        (sum - captum_sum).abs() < 1e-3,
        "the hotspot window is patch-02: {sum}"
    );
    // Models without a class to explain are refused before any work.
    let out = run(scancer()
        .args(["predict", "-m", SEGMENTATION, "--explain"])
        .arg(&explain)
        .arg(patches[0]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--explain attributes a class's output"),
        "{}",
        out.stderr
    );
}
