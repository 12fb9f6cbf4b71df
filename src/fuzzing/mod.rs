//! The fuzz targets' entry points (`fuzz/`, through the `fuzzing` feature), shared with the unit tests
//! that replay every input they found (`regressions`), so that a regression input drives exactly the
//! code it broke.
//!
//! Each entry point takes arbitrary bytes and must return without panicking, hanging or allocating
//! without bound; where a result can be checked, it is (with `assert!`, which the fuzzer reports).

#[cfg(test)]
mod regressions;

use crate::engine::decode::DEFAULT_MAX_PIXELS;
use crate::engine::handler_config::HandlerConfig;
use crate::engine::model_source::ModelSource;
use crate::engine::postprocess::{segmentation, Postprocessor};
use crate::engine::preprocess::Prepared;
use crate::engine::preprocess::Preprocessor;
use crate::mar::manifest::Manifest;
use crate::mar::read::{Archive, Limits};
use crate::records::Outcome;
use crate::records::OutputKind;
use crate::records::{self, Format, Schema, TableStyle};
use crate::records::{Prediction, RawPrediction};
use crate::remote::{predict as remote_predict, Answer, Credentials, Exchange, TransportError};
use crate::serve::app::{App, Defaults, Roles};
use crate::serve::auth::{Auth, OpenEndpoint};
use crate::serve::batcher::Queue;
use crate::serve::batcher::{ModelFailure, Runner};
use crate::serve::exchange::Exchanges;
use crate::serve::http;
use crate::serve::metrics::Metrics;
use crate::serve::models::{no_worker_message, ServedModel, Settings};
use crate::serve::registry::Registry;
use crate::serve::workers::{Loader, Workers};
use crate::store::{Register, Store};
use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The configurations the image and HTTP targets use: every resize policy, colour and output kind.
const CONFIGS: [&str; 4] = [
    // pcam-classification: 96x96 RGB patches, refused at any other size.
    r#"
[input]
height = 96
width = 96
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]
resize = "reject"
[output]
kind = "binary"
labels = ["normal", "metastatic"]
"#,
    r#"
[input]
height = 64
width = 64
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
resize = "shorter-side-crop"
resize_shorter_side = 72
[output]
kind = "multiclass"
labels = ["adipose", "stroma", "tumour", "lymphocytes"]
top_k = 3
"#,
    r#"
[input]
height = 32
width = 32
color = "grayscale"
mean = [0.5]
std = [0.25]
resize = "stretch"
[output]
kind = "raw"
"#,
    r#"
[input]
height = 16
width = 16
color = "grayscale"
resize = "stretch"
[output]
kind = "segmentation"
labels = ["background", "tissue", "tumour"]
"#,
];

fn config(k: usize) -> HandlerConfig {
    HandlerConfig::from_toml(CONFIGS[k % CONFIGS.len()]).expect("the fuzz configurations are valid")
}

/// Where the archive target writes its one file (removed after each input): tmpfs where there is
/// one.
fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    base.join(format!("scancer-fuzz-{}-{thread}.mar", std::process::id()))
}

/// The .mar / .tar.gz reader and the manifest parser: the bytes as an archive file, opened the way
/// `predict` and `serve` open a model (manifest, handler configuration, model extracted), and every
/// member read back within its limit.
pub fn archive(data: &[u8]) {
    let _ = Manifest::parse(data);
    let path = scratch();
    std::fs::write(&path, data).expect("the scratch file is writable");
    // Small limits, so that a bomb is refused in the fuzzer's memory and time.
    let limits = Limits {
        max_total_bytes: 32 << 20,
        max_ratio: 200,
    };
    if let Ok(archive) = Archive::open(&path, limits) {
        for name in archive.files.keys() {
            let _ = archive.copy_to(name, &mut io::sink(), 16 << 20);
        }
        let _ = ModelSource::open(&path, None);
    }
    let _ = std::fs::remove_file(&path);
}

/// The handler configuration parser; a configuration it accepts must build both processors.
pub fn handler_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = HandlerConfig::from_toml(text) {
        let pre = Preprocessor::new(&config, DEFAULT_MAX_PIXELS);
        let [c, h, w] = pre.input_shape();
        assert_eq!(c, config.input.color.channels());
        assert!(h > 0 && w > 0);
        let post = Postprocessor::new(&config);
        let _ = post.label(usize::MAX);
        let _ = (
            config.threshold(),
            config.top_k(),
            config.mean(),
            config.std(),
        );
        let _ = config.resize_shorter_side();
    }
}

/// Image decoding and preprocessing under the default decoder limits; the first byte picks the
/// configuration. A prepared image must have the model's shape and only finite values.
pub fn image(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let pre = Preprocessor::new(&config(pick as usize), DEFAULT_MAX_PIXELS);
    if let Ok(prepared) = pre.prepare(bytes) {
        let [c, h, w] = pre.input_shape();
        assert_eq!(prepared.data.len(), c * h * w);
        assert!(prepared.data.iter().all(|v| v.is_finite()));
    }
}

/// A slide's bytes through the readers `predict --tile` streams (PNG rows, TIFF strips and tiles,
/// BigTIFF), every band of 96 rows read top to bottom, as the window grid reads them; the tissue
/// test runs on every window. Declared sizes are refused before allocation; slides over 4
/// megapixels are opened but not read through, so that a run stays fast.
/// A DICOM instance's header: read or refused, never a panic, a hang or an allocation past 1 KiB a
/// value.
pub fn dicom(data: &[u8]) {
    let path = std::path::Path::new("fuzz.dcm");
    if let Ok(instance) = crate::dicom::read_header(io::Cursor::new(data), data.len() as u64, path)
    {
        assert!(instance.series.len() <= 1024);
    }
}

pub fn slide(data: &[u8]) {
    let Ok(opened) = crate::slide::rows::from_bytes(
        data.to_vec(),
        DEFAULT_MAX_PIXELS,
        &crate::slide::resolution::LevelChoice::default(),
    ) else {
        return;
    };
    let mut rows = opened.rows;
    let (width, height) = rows.size();
    assert!(width > 0 && height > 0 && width <= crate::slide::rows::MAX_SIDE);
    if width.saturating_mul(height) > 1 << 22 {
        return;
    }
    const BAND: usize = 96;
    let mut band = vec![0u8; width * BAND * 3];
    let mut y = 0;
    while y < height {
        if rows.read(y, BAND, &mut band).is_err() {
            return;
        }
        for x in (0..width).step_by(BAND) {
            let s = crate::slide::tissue::mean_saturation(&band, width, height, x, y, BAND, BAND);
            assert!((0.0..=1.0).contains(&s), "saturation {s}");
        }
        y += BAND;
    }
}

/// Bytes in memory as a client connection: reads take the input, then end; writes collect the
/// answers.
struct Replay {
    input: Vec<u8>,
    at: usize,
    output: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl tokio::io::AsyncRead for Replay {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let n = buf.remaining().min(self.input.len() - self.at);
        buf.put_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Replay {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The token and `name:password` the HTTP target's server accepts.
pub(crate) const FUZZ_TOKEN: &str = "fuzz-token";
pub(crate) const FUZZ_BASIC: &str = "pathologist:slides";

/// A server with a model of every output kind (pcam, binary, in versions 1.0 and 2.0; tissue,
/// multiclass; mask, segmentation; raw) and authentication. Its model thread needs no model: it makes
/// each output tensor from the prepared input (so answers vary with the image) and runs it through
/// the real postprocessing.
fn exchanges() -> Arc<Exchanges> {
    static EXCHANGES: OnceLock<Arc<Exchanges>> = OnceLock::new();
    let limits = http::Limits {
        max_body: 64 << 10,
        client_timeout: Duration::from_secs(5),
        head_timeout: Duration::from_secs(5),
        keep_alive: Duration::from_secs(5),
        max_buffered: 1 << 20,
    };
    let made = EXCHANGES
        .get_or_init(|| Arc::new(Exchanges::new(app(), limits, true, Roles::ALL, Vec::new())));
    Arc::clone(made)
}

fn app() -> Arc<App> {
    let specs = [
        ("pcam", "1.0", 0),
        ("pcam", "2.0", 0),
        ("tissue", "1.0", 1),
        ("raw", "1.0", 2),
        ("mask", "1.0", 3),
    ];
    let settings = Settings {
        batch_size: 8,
        max_batch_delay: Duration::ZERO,
        response_timeout: Duration::from_secs(5),
        job_queue_size: 8,
    };
    let app = Arc::new(App {
        registry: Registry::default(),
        unrestored: Default::default(),
        queue_wait: Duration::from_millis(100),
        metrics: Arc::new(Metrics::new("fuzz".into(), None)),
        auth: Auth::new(&[FUZZ_BASIC], &[FUZZ_TOKEN], vec![OpenEndpoint::Health]),
        defaults: Defaults {
            engine: crate::engine::EngineOptions {
                device: crate::engine::model::DeviceChoice::Cpu,
                threads: Some(1),
                max_pixels: DEFAULT_MAX_PIXELS,
                batch_size: 8,
                optimize: false,
                explain: false,
                smaller_shapes: true,
            },
            settings,
            workers: 1,
        },
        store: None,
        model_api: false,
        changes: tokio::sync::Mutex::new(()),
        stopping: std::sync::atomic::AtomicBool::new(false),
        snapshots: None,
        recording: std::sync::atomic::AtomicBool::new(false),
        keys: None,
        envelope: Default::default(),
        slides: None,
        analyses: None,
    });
    for (name, version, k) in specs {
        let config = config(k);
        let pre = Preprocessor::new(&config, DEFAULT_MAX_PIXELS);
        let [_, h, w] = pre.input_shape();
        let kind = config.output.kind;
        let classes = config.output.labels.clone().unwrap_or_default();
        let output_shape = match kind {
            OutputKind::Binary | OutputKind::Raw => vec![1],
            OutputKind::Multiclass => vec![4],
            OutputKind::Segmentation => vec![3, h, w],
        };
        let queue = Arc::new(Queue::new(settings.job_queue_size));
        let fake_config = config.clone();
        let load: Loader = Arc::new(move || {
            Ok(Box::new(FakeModel {
                post: Postprocessor::new(&fake_config),
                kind,
                h,
                w,
            }) as Box<dyn Runner>)
        });
        let model = Arc::new(ServedModel {
            name: name.into(),
            version: version.into(),
            url: format!("{name}.mar"),
            path: PathBuf::from(format!("{name}.mar")),
            runtime: "python".into(),
            format: crate::engine::model_format::ModelFormat::TorchScript,
            input_shape: pre.input_shape(),
            preprocessor: pre,
            labels: classes.clone(),
            identity: crate::engine::model_source::ModelIdentity {
                model_sha256: "fuzz".into(),
                config_sha256: "fuzz".into(),
            },
            config: config.clone(),
            schema: Schema { kind, classes },
            output_shape,
            settings,
            device: "cpu",
            loaded_at_startup: true,
            downloaded: false,
            workers: Arc::new(Workers::new(
                load,
                Arc::clone(&queue),
                Duration::ZERO,
                Arc::new(Unheard),
                Duration::ZERO,
                format!("{name} {version}"),
                no_worker_message(name, None),
            )),
            queue,
        });
        if app.registry.insert(Arc::clone(&model)).is_ok() {
            model.workers.scale(1, 1, None);
        }
    }
    app
}

/// A model made of the real postprocessing (see `fake_prediction`).
struct FakeModel {
    post: Postprocessor,
    kind: OutputKind,
    h: usize,
    w: usize,
}

impl Runner for FakeModel {
    fn shapes(&self) -> &[usize] {
        &[4, 8]
    }

    /// A fake attribution: the input itself.
    fn explain(&self, image: &Prepared, _target: usize) -> Result<Vec<f32>, ModelFailure> {
        Ok(image.data.clone())
    }

    fn infer_each(&self, images: &[&Prepared]) -> Vec<Result<Prediction, ModelFailure>> {
        images
            .iter()
            .map(|image| {
                Ok(fake_prediction(
                    &self.post,
                    self.kind,
                    &image.data,
                    self.h,
                    self.w,
                ))
            })
            .collect()
    }
}

/// A prediction for one image, made from its prepared input by the real postprocessing's
/// interpretation of probabilities (the activations, which run in libtorch, are computed here, so
/// that fuzzing needs no libtorch).
fn fake_prediction(
    post: &Postprocessor,
    kind: OutputKind,
    input: &[f32],
    h: usize,
    w: usize,
) -> Prediction {
    let at = |k: usize| input.get(k * input.len() / 4).copied().unwrap_or(0.0);
    let mean = input.iter().sum::<f32>() / input.len().max(1) as f32;
    match kind {
        OutputKind::Binary => Prediction::Class(post.binary(1.0 / (1.0 + (-mean).exp()))),
        OutputKind::Raw => Prediction::Raw(RawPrediction {
            shape: vec![1],
            values: vec![mean],
        }),
        OutputKind::Multiclass => {
            let logits = [at(0), at(1), at(2), at(3)];
            let top = logits.iter().copied().fold(f32::MIN, f32::max);
            let exp: Vec<f32> = logits.iter().map(|l| (l - top).exp()).collect();
            let sum: f32 = exp.iter().sum();
            Prediction::Class(post.multiclass(&exp.iter().map(|e| e / sum).collect::<Vec<_>>()))
        }
        OutputKind::Segmentation => {
            // Three class scores per pixel of the (grayscale) input: x, -x, x^2 - 1.
            let mask: Vec<f32> = input[..h * w]
                .iter()
                .map(|&x| {
                    let scores = [x, -x, x * x - 1.0];
                    let best = (0..3).fold(0, |b, k| if scores[k] > scores[b] { k } else { b });
                    best as f32
                })
                .collect();
            Prediction::Segmentation(segmentation(&mask, 3, w, h))
        }
    }
}

/// `serve`'s HTTP handling: the bytes as everything a client sends on one connection, answered by
/// the server's own connection loop. Whatever came in, the server must answer with HTTP or close, and
/// never with a 500 (the models here cannot fail).
pub fn serve_http(data: &[u8]) {
    serve_http_answers(data);
}

/// What `serve_http` answered, for the regression test to check that the seeds reach the models.
pub(crate) fn serve_http_answers(data: &[u8]) -> Vec<u8> {
    let output = Arc::new(std::sync::Mutex::new(Vec::new()));
    let replay = Replay {
        input: data.to_vec(),
        at: 0,
        output: Arc::clone(&output),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let (_running, stop) = tokio::sync::watch::channel(false);
    runtime.block_on(crate::serve::serve_http(
        replay,
        "fuzz".into(),
        exchanges(),
        stop,
    ));
    let out = std::mem::take(&mut *output.lock().unwrap_or_else(|e| e.into_inner()));
    if !out.is_empty() && !data.starts_with(b"PRI * HTTP/2.0") {
        // hyper answers in the request's version: HTTP/1.0 gets HTTP/1.0.
        assert!(
            out.starts_with(b"HTTP/1.1 ") || out.starts_with(b"HTTP/1.0 "),
            "not an HTTP answer"
        );
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response.parse(&out);
        assert!(
            matches!(parsed, Ok(httparse::Status::Complete(_))),
            "a malformed answer head"
        );
        assert_ne!(
            response.code,
            Some(500),
            "a 500 from a model that cannot fail"
        );
    }
    out
}

/// Answers a store fuzz input scripts: each piece is one HTTP answer (first byte: the status, the
/// rest: the body); when they run out, the server is gone.
struct Script<'a> {
    answers: Vec<&'a [u8]>,
    next: Cell<usize>,
    credentials: Credentials,
}

impl Exchange for Script<'_> {
    fn base(&self) -> &str {
        "http://127.0.0.1:8081"
    }

    fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn send(
        &self,
        _method: &str,
        path: &str,
        _body: Option<(&[u8], &str)>,
    ) -> Result<Answer, TransportError> {
        const STATUSES: [u16; 12] = [200, 200, 200, 200, 201, 202, 400, 401, 404, 405, 500, 503];
        let k = self.next.get();
        self.next.set(k + 1);
        match self.answers.get(k) {
            Some(piece) => {
                let (status, body) = match piece.split_first() {
                    Some((&s, body)) => (STATUSES[s as usize % STATUSES.len()], body.to_vec()),
                    None => (200, Vec::new()),
                };
                Ok(Answer { status, body })
            }
            None => Err(TransportError::Connect {
                url: format!("{}{path}", self.base()),
                why: "the script ended".into(),
            }),
        }
    }
}

/// The parsing of TorchServe's answers in `store` (paging, descriptions, workers, registrations and
/// every error shape) and in `predict --remote` (schemas and predictions guessed from answers). Pieces
/// of the input are separated by 0xFF, which UTF-8 text never contains.
pub fn store_answers(data: &[u8]) {
    let answers: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let schema = |kind, classes: &[&str]| Schema {
        kind,
        classes: classes.iter().map(|c| c.to_string()).collect(),
    };
    // What the server's metadata may have said, whatever the answer is.
    let schemas = [
        schema(OutputKind::Binary, &["normal", "metastatic"]),
        schema(OutputKind::Multiclass, &["adipose", "stroma", "tumour"]),
        schema(OutputKind::Segmentation, &["background", "tumour"]),
        schema(OutputKind::Raw, &[]),
    ];
    for piece in &answers {
        let answer = Answer {
            status: 200,
            body: piece.to_vec(),
        };
        let guessed = remote_predict::guess_schema(&answer);
        // The piece's length picks one of the fixed schemas, so the fuzzer can steer it.
        for schema in [&guessed, &schemas[piece.len() % schemas.len()]] {
            let outcome = remote_predict::outcome(&answer, schema);
            write_all_formats(schema, &outcome);
        }
        let _ = (answer.message(), answer.error_type());
    }
    let store = Store::new(Script {
        answers,
        next: Cell::new(0),
        credentials: Credentials::default(),
    });
    let _ = store.list();
    if let Ok(described) = store.describe("pcam", None) {
        let _ = crate::commands::store::descriptions(&described);
    }
    let _ = store.workers("pcam", Some("1.0"));
    if let Ok(registered) = store.register(&Register {
        url: "pcam.mar".into(),
        ..Register::default()
    }) {
        let _ = crate::commands::store::registered_identity(&registered);
    }
    let _ = store.scale("pcam", None, Some(1), Some(2), false);
    let _ = store.set_default("pcam", "1.0");
    let _ = store.unregister("pcam", Some("1.0"));
}

/// Writes one result in each output format, as `predict` does with a remote answer.
fn write_all_formats(schema: &Schema, outcome: &Outcome) {
    // Jsonl is Json's code without the array brackets: left out for speed.
    for format in [Format::Table, Format::Json, Format::Csv] {
        let mut writer = records::writer(
            format,
            schema.clone(),
            Box::new(io::sink()),
            TableStyle::default(),
            false,
            records::Piece::WHOLE,
        );
        let answer = records::Answer {
            path: "patch.png",
            outcome,
            mask_file: None,
            slide: None,
        };
        writer.write(&answer).expect("a sink takes everything");
        writer.finish().expect("a sink takes everything");
    }
}

/// Worker events nobody listens to.
struct Unheard;

impl crate::serve::workers::WorkerEvents for Unheard {
    fn batch(&self, _: &crate::serve::batcher::BatchTimes) {}
    fn loaded(&self, _: u32, _: Duration) {}
    fn failed(&self, _: u32, _: &str) {}
    fn stopped(&self, _: u32) {}
}
