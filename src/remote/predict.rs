//! `scancer predict --remote`: each image PUT to `URL/predictions/NAME` (as the documented curl does),
//! with bounded concurrency, retries with backoff for 503 and connection failures, and the answers
//! turned into the same records as local predictions.
//!
//! Against `scancer serve` the request asks for `?details=true` and gets the very record local predict
//! writes. TorchServe ignores that parameter and answers its handler's body (`0`/`1`, `{label: p}`,
//! rows...): those become records with what the body holds (no score for a bare class).

use super::{Answer, Client, Exchange, TransportError};
use crate::engine::handler_config::HandlerConfig;
use crate::engine::postprocess::Postprocessor;
use crate::inputs::{read_item, Item};
use crate::records::Outcome;
use crate::records::OutputKind;
use crate::records::Schema;
use crate::records::{ClassPrediction, Prediction, RawPrediction, SegmentationPrediction};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Scancer's public API takes bodies up to 400 MB (nginx client_max_body_size 400M).
const MAX_UPLOAD: u64 = 400 << 20;

pub(crate) struct RemoteModel {
    pub(crate) client: Client,
    pub(crate) name: String,
    pub(crate) retries: u32,
}

/// How many tries a request took, as messages end: nothing for one, ` (after N tries)` for more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tries(u32);

impl std::fmt::Display for Tries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > 1 {
            write!(f, " (after {} tries)", self.0)?;
        }
        Ok(())
    }
}

/// An HTTP error answer, as one line: `HTTP 413 PayloadTooLarge: ... (after 2 tries)`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("HTTP {status}{space}{kind}: {message}{tries}", space = if .kind.is_empty() { "" } else { " " })]
pub(crate) struct Refusal {
    status: u16,
    /// TorchServe's exception name, if the body has one.
    kind: String,
    message: String,
    tries: Tries,
}

/// An answer that makes every other request pointless (no server, wrong model, credentials): the
/// run stops.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fatal {
    #[error("{error}{tries}")]
    Unreachable { error: TransportError, tries: Tries },
    /// The request's URL, the answer, and what to check.
    #[error("{url}: {refusal} ({hint})")]
    Refused {
        url: String,
        refusal: Refusal,
        hint: &'static str,
    },
}

/// Why one image got no answer: a failure of this image (the run goes on), or a fatal one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PredictError {
    /// The server refused this image (bad image, too large, busy).
    #[error(transparent)]
    Refused(Refusal),
    /// No answer came for this image (timeout, broken connection).
    #[error("{error}{tries}")]
    NoAnswer { error: TransportError, tries: Tries },
    #[error(transparent)]
    Fatal(#[from] Fatal),
}

/// Why a server's answer makes no prediction: that image's error record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum AnswerError {
    #[error("the server's answer is not one scancer understands: {0}")]
    NotJson(String),
    /// The kind of the model, and the start of the answer.
    #[error("the server's answer does not fit a {0} model: {1}")]
    DoesNotFit(OutputKind, String),
    #[error("the server answered an unknown class {0:?}")]
    UnknownLabel(String),
    #[error("the server answered class {class}, but the model has {classes} classes")]
    UnknownClass { class: u64, classes: usize },
    /// The field (`probabilities`, `class_fractions`, `classes`).
    #[error("the answer has no {0}")]
    Missing(&'static str),
    #[error("the answer's class is not a number")]
    ClassNotANumber,
    #[error("the answer is not a class index")]
    NotAClassIndex,
    #[error("the answer's output is not a list")]
    OutputNotAList,
    #[error("the mask is not a list of rows")]
    MaskNotRows,
    #[error("the mask rows differ in length")]
    MaskRowsDiffer,
    #[error("a mask value is not a class index")]
    MaskValueNotAClass,
}

/// The start of a remote run: the schema of its records, and the first input's outcome.
pub(crate) struct Start {
    pub(crate) schema: Schema,
    pub(crate) first: Option<Outcome>,
}

impl RemoteModel {
    fn path(&self) -> String {
        format!("/predictions/{}?details=true", super::encode(&self.name))
    }

    /// The labels and kind of the records, when known before any answer: those of the handler
    /// configuration given, else what scancer serve says of the model.
    pub(crate) fn known_schema(&self, config: Option<&HandlerConfig>) -> Option<Schema> {
        match config {
            Some(config) => Some(configured_schema(config)),
            None => self.metadata_schema(),
        }
    }

    /// What scancer serve says of the model (kind and labels), if it is a scancer serve.
    fn metadata_schema(&self) -> Option<Schema> {
        let answer = self
            .client
            .send(
                "GET",
                &format!("/v2/models/{}", super::encode(&self.name)),
                None,
            )
            .ok()?;
        let meta = answer.json().filter(|_| answer.status == 200)?;
        let kind: OutputKind = serde_json::from_value(meta["parameters"]["kind"].clone()).ok()?;
        let classes = meta["parameters"]["labels"]
            .as_array()?
            .iter()
            .map(|l| l.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        Some(Schema { kind, classes })
    }

    /// Sends the first input alone, so that a wrong URL, model or credentials stops the run before
    /// any record. The records' schema is `known`, else what the first answer implies.
    pub(crate) fn start(
        &self,
        known: Option<Schema>,
        first: Option<&Item>,
    ) -> Result<Start, Fatal> {
        let answered = match first {
            None => None,
            Some(item) => Some(match read_item(item, MAX_UPLOAD) {
                Err(why) => Err(why.to_string()),
                Ok(bytes) => match self.predict(&bytes) {
                    Ok(answer) => Ok(answer),
                    Err(PredictError::Fatal(fatal)) => return Err(fatal),
                    Err(why) => Err(why.to_string()),
                },
            }),
        };
        let schema = known
            .unwrap_or_else(|| implied_schema(answered.as_ref().and_then(|a| a.as_ref().ok())));
        let first = answered.map(|answered| match answered {
            Ok(answer) => outcome(&answer, &schema),
            Err(why) => Outcome::Failed(why),
        });
        Ok(Start { schema, first })
    }

    /// One input's outcome, or a reason to stop the run.
    fn answer(&self, item: &Item, schema: &Schema) -> Result<Outcome, Fatal> {
        let bytes = match read_item(item, MAX_UPLOAD) {
            Ok(bytes) => bytes,
            Err(why) => return Ok(Outcome::Failed(why.to_string())),
        };
        match self.predict(&bytes) {
            Ok(answer) => Ok(outcome(&answer, schema)),
            Err(PredictError::Fatal(fatal)) => Err(fatal),
            Err(why) => Ok(Outcome::Failed(why.to_string())),
        }
    }

    /// Sends one image, retrying transient failures; the server's answer, or why there is none.
    fn predict(&self, bytes: &[u8]) -> Result<Answer, PredictError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            let result = self.client.send(
                "PUT",
                &self.path(),
                Some((bytes, "application/octet-stream")),
            );
            let transient = match &result {
                Ok(answer) => answer.status == 503,
                Err(e) => e.is_transient(),
            };
            if transient && attempt < self.retries {
                attempt += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
                continue;
            }
            let tries = Tries(attempt + 1);
            return match result {
                Ok(answer) if answer.status == 200 => Ok(answer),
                Ok(answer) => Err(self.refusal(&answer, tries)),
                Err(error @ TransportError::Connect { .. }) => {
                    Err(Fatal::Unreachable { error, tries }.into())
                }
                Err(error) => Err(PredictError::NoAnswer { error, tries }),
            };
        }
    }

    /// An error answer: for this image (bad image, too large, busy), or fatal for the run.
    fn refusal(&self, answer: &Answer, tries: Tries) -> PredictError {
        let refusal = Refusal {
            status: answer.status,
            kind: answer.error_type().unwrap_or_default(),
            message: answer.message(),
            tries,
        };
        let hint = match (refusal.status, refusal.kind.as_str()) {
            (404, _) => {
                "check --model, and --remote: the inference API, e.g. https://api.scancer.org"
            }
            (401, _) => "the server asks for HTTP Basic auth: --user NAME",
            (400, "InvalidKeyException") => {
                "the server wants its inference token: --token, --token-file or SCANCER_TOKEN"
            }
            (405, _) => "is --remote the inference API (port 8080), not the management API?",
            _ => return PredictError::Refused(refusal),
        };
        Fatal::Refused {
            url: format!("{}{}", self.client.base, self.path()),
            refusal,
            hint,
        }
        .into()
    }
}

/// The schema of records a handler configuration declares (without the model: a multiclass
/// model's classes are its labels, if it lists them).
fn configured_schema(config: &HandlerConfig) -> Schema {
    let post = Postprocessor::new(config);
    let classes = match config.output.kind {
        OutputKind::Binary => vec![post.label(0), post.label(1)],
        _ => config.output.labels.clone().unwrap_or_default(),
    };
    Schema {
        kind: config.output.kind,
        classes,
    }
}

/// The schema of a run that nothing declared: what the first answer implies, else binary.
fn implied_schema(first: Option<&Answer>) -> Schema {
    match first {
        Some(answer) => guess_schema(answer),
        None => Schema {
            kind: OutputKind::Binary,
            classes: vec!["0".into(), "1".into()],
        },
    }
}

/// The record of a successful answer.
pub(crate) fn outcome(answer: &Answer, schema: &Schema) -> Outcome {
    match answer.json() {
        Some(value) => match prediction(&value, schema) {
            Ok(p) => Outcome::Predicted(p),
            Err(why) => Outcome::Failed(why.to_string()),
        },
        None => Outcome::Failed(AnswerError::NotJson(answer.message()).to_string()),
    }
}

/// The schema a TorchServe body implies, when the server does not say.
pub(crate) fn guess_schema(answer: &Answer) -> Schema {
    match answer.json() {
        Some(Value::Object(map)) if map.contains_key("class_fractions") => Schema {
            kind: OutputKind::Segmentation,
            classes: map["class_fractions"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        },
        Some(Value::Object(map)) if map.contains_key("probabilities") => Schema {
            kind: OutputKind::Multiclass,
            classes: map["probabilities"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        },
        Some(Value::Object(map)) if map.contains_key("output") => Schema {
            kind: OutputKind::Raw,
            classes: vec![],
        },
        Some(Value::Object(map)) => Schema {
            kind: OutputKind::Multiclass,
            classes: map.keys().cloned().collect(),
        },
        Some(Value::Number(_)) => Schema {
            kind: OutputKind::Binary,
            classes: vec!["0".into(), "1".into()],
        },
        _ => Schema {
            kind: OutputKind::Raw,
            classes: vec![],
        },
    }
}

fn index(schema: &Schema, label: &str) -> Option<usize> {
    schema.classes.iter().position(|c| c == label).or_else(|| {
        label
            .parse::<usize>()
            .ok()
            .filter(|&k| k < schema.classes.len().max(2))
    })
}

/// `{label: p}` -> probabilities in class order (NaN where not given) and the classes in the given
/// order.
fn probabilities(
    schema: &Schema,
    map: &serde_json::Map<String, Value>,
) -> Result<(Vec<f32>, Vec<usize>), AnswerError> {
    let n = schema.classes.len().max(2);
    let mut probabilities = vec![f32::NAN; n];
    let mut ranked = Vec::new();
    for (name, p) in map {
        let k = index(schema, name).ok_or_else(|| AnswerError::UnknownLabel(name.clone()))?;
        probabilities[k] = p.as_f64().unwrap_or(f64::NAN) as f32;
        ranked.push(k);
    }
    Ok((probabilities, ranked))
}

fn prediction(value: &Value, schema: &Schema) -> Result<Prediction, AnswerError> {
    // Fields are read through `value[..]`, which gives Null for a missing one: a server's answer
    // decides which fields exist, and a missing one must be an error, not a panic.
    match (schema.kind, value) {
        // scancer serve's detailed records.
        (OutputKind::Binary | OutputKind::Multiclass, Value::Object(map))
            if map.contains_key("class") =>
        {
            let (probabilities, ranked) = probabilities(
                schema,
                value["probabilities"]
                    .as_object()
                    .ok_or(AnswerError::Missing("probabilities"))?,
            )?;
            let class = value["class"]
                .as_u64()
                .ok_or(AnswerError::ClassNotANumber)?;
            let class = known_class(class, probabilities.len())?;
            Ok(Prediction::Class(ClassPrediction {
                class,
                label: value["label"]
                    .as_str()
                    .map_or_else(|| schema.label(class), str::to_string),
                score: value["score"].as_f64().unwrap_or(f64::NAN) as f32,
                probabilities,
                ranked,
            }))
        }
        (OutputKind::Segmentation, Value::Object(_)) => {
            let mask = rows(&value["mask"])?;
            let fractions = value["class_fractions"]
                .as_object()
                .ok_or(AnswerError::Missing("class_fractions"))?
                .values()
                .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                .collect();
            Ok(Prediction::Segmentation(SegmentationPrediction {
                fractions,
                ..mask
            }))
        }
        (OutputKind::Raw, Value::Object(map)) if map.contains_key("output") => {
            let shape = value["shape"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|d| d.as_u64().map(|d| d as usize))
                        .collect()
                })
                .unwrap_or_default();
            let values = value["output"]
                .as_array()
                .ok_or(AnswerError::OutputNotAList)?
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                .collect();
            Ok(Prediction::Raw(RawPrediction { shape, values }))
        }
        // TorchServe's handler bodies.
        (OutputKind::Binary | OutputKind::Multiclass, Value::Number(n)) => {
            let classes = schema.classes.len().max(2);
            let class = known_class(n.as_u64().ok_or(AnswerError::NotAClassIndex)?, classes)?;
            let mut ranked = vec![class];
            ranked.extend((0..classes).filter(|&k| k != class));
            Ok(Prediction::Class(ClassPrediction {
                class,
                label: schema.label(class),
                score: f32::NAN,
                probabilities: vec![f32::NAN; classes],
                ranked,
            }))
        }
        (OutputKind::Binary | OutputKind::Multiclass, Value::Object(map)) => {
            let (probabilities, ranked) = probabilities(schema, map)?;
            let class = *ranked.first().ok_or(AnswerError::Missing("classes"))?;
            Ok(Prediction::Class(ClassPrediction {
                class,
                label: schema.label(class),
                score: probabilities[class],
                probabilities,
                ranked,
            }))
        }
        (OutputKind::Segmentation, Value::Array(_)) => {
            let mut mask = rows(value)?;
            let classes = schema.classes.len().max(2);
            let mut counts = vec![0usize; classes];
            for &c in &mask.mask {
                if let Some(n) = counts.get_mut(c as usize) {
                    *n += 1;
                }
            }
            let total = mask.mask.len().max(1) as f32;
            mask.fractions = counts.iter().map(|&c| c as f32 / total).collect();
            Ok(Prediction::Segmentation(mask))
        }
        (OutputKind::Raw, _) => {
            let mut shape = Vec::new();
            let mut node = value;
            while let Value::Array(items) = node {
                shape.push(items.len());
                match items.first() {
                    Some(first) => node = first,
                    None => break,
                }
            }
            let mut values = Vec::new();
            flatten(value, &mut values);
            Ok(Prediction::Raw(RawPrediction { shape, values }))
        }
        _ => Err(AnswerError::DoesNotFit(
            schema.kind,
            value.to_string().chars().take(120).collect(),
        )),
    }
}

/// A class index the answer gave, if the model has that class.
fn known_class(class: u64, classes: usize) -> Result<usize, AnswerError> {
    usize::try_from(class)
        .ok()
        .filter(|&k| k < classes)
        .ok_or(AnswerError::UnknownClass { class, classes })
}

fn flatten(value: &Value, out: &mut Vec<f32>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        v => out.push(v.as_f64().unwrap_or(f64::NAN) as f32),
    }
}

/// A mask given as rows of class indices.
fn rows(value: &Value) -> Result<SegmentationPrediction, AnswerError> {
    let rows = value.as_array().ok_or(AnswerError::MaskNotRows)?;
    let width = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    let mut mask = Vec::with_capacity(width * rows.len());
    for row in rows {
        let row = row
            .as_array()
            .filter(|r| r.len() == width)
            .ok_or(AnswerError::MaskRowsDiffer)?;
        for v in row {
            mask.push(
                v.as_u64()
                    .filter(|&c| c < 256)
                    .ok_or(AnswerError::MaskValueNotAClass)? as u8,
            );
        }
    }
    Ok(SegmentationPrediction {
        width,
        height: rows.len(),
        mask,
        fractions: Vec::new(),
    })
}

/// Emits the first input's outcome (`RemoteModel::start`), then predicts the rest with `jobs`
/// requests in flight and calls `emit` in input order. Results wait in a window of at most
/// `4 * jobs` for the slowest request ahead of them.
pub(crate) fn run<E>(
    model: &RemoteModel,
    start: Start,
    items: &[Item],
    jobs: usize,
    mut emit: E,
) -> Result<std::io::Result<()>, Fatal>
where
    E: FnMut(usize, Outcome) -> std::io::Result<()>,
{
    let Start { schema, first } = start;
    let from = usize::from(first.is_some());
    if let Some(outcome) = first {
        if let Err(e) = emit(0, outcome) {
            return Ok(Err(e));
        }
    }
    let schema = &schema;
    let jobs = jobs.max(1);
    let window = 4 * jobs;
    let next = AtomicUsize::new(from);
    let emitted = Mutex::new(from);
    let advanced = Condvar::new();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = channel::<(usize, Result<Outcome, Fatal>)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, emitted, advanced, stop) = (&next, &emitted, &advanced, &stop);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || stop.load(Ordering::SeqCst) {
                    return;
                }
                {
                    let mut done = emitted.lock().unwrap_or_else(|e| e.into_inner());
                    while i >= *done + window && !stop.load(Ordering::SeqCst) {
                        done = advanced.wait(done).unwrap_or_else(|e| e.into_inner());
                    }
                }
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if tx.send((i, model.answer(&items[i], schema))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut position = from;
        let mut written = Ok(());
        for (i, result) in rx {
            waiting.insert(i, result);
            while let Some(result) = waiting.remove(&position) {
                match result {
                    Ok(outcome) => {
                        if written.is_ok() {
                            written = emit(position, outcome);
                        }
                    }
                    Err(fatal) => {
                        stop.store(true, Ordering::SeqCst);
                        advanced.notify_all();
                        return Err(fatal);
                    }
                }
                position += 1;
                *emitted.lock().unwrap_or_else(|e| e.into_inner()) = position;
                advanced.notify_all();
                if written.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        }
        Ok(written)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::Credentials;

    fn answer(body: &str) -> Answer {
        Answer {
            status: 200,
            body: body.as_bytes().to_vec(),
        }
    }

    fn model() -> RemoteModel {
        let client = Client::new(
            "http://127.0.0.1:9/",
            Credentials::default(),
            Duration::from_secs(1),
        )
        .unwrap();
        RemoteModel {
            client,
            name: "pcam v2".into(),
            retries: 0,
        }
    }

    #[test]
    fn a_torchserve_body_implies_its_schema() {
        let guess = |body: &str| {
            let schema = guess_schema(&answer(body));
            (schema.kind, schema.classes)
        };
        assert_eq!(
            guess("1"),
            (OutputKind::Binary, vec!["0".into(), "1".into()])
        );
        assert_eq!(
            guess(r#"{"tumour": 0.7, "stroma": 0.3}"#),
            (
                OutputKind::Multiclass,
                vec!["tumour".into(), "stroma".into()]
            )
        );
        assert_eq!(
            guess(r#"{"class": 1, "probabilities": {"normal": 0.2, "metastatic": 0.8}}"#),
            (
                OutputKind::Multiclass,
                vec!["normal".into(), "metastatic".into()]
            )
        );
        assert_eq!(
            guess(r#"{"mask": [[0]], "class_fractions": {"background": 1.0}}"#),
            (OutputKind::Segmentation, vec!["background".into()])
        );
        assert_eq!(guess(r#"{"output": [1.0]}"#).0, OutputKind::Raw);
        assert_eq!(guess("[[0, 1]]").0, OutputKind::Raw);
        assert_eq!(guess("not json").0, OutputKind::Raw);
    }

    #[test]
    fn the_schema_is_the_configurations_else_the_first_answers_else_binary() {
        let binary = HandlerConfig::from_toml(
            "[input]\nheight = 8\nwidth = 8\n[output]\nkind = \"binary\"\nlabels = [\"normal\", \"tumour\"]\n",
        )
        .unwrap();
        let schema = configured_schema(&binary);
        assert_eq!(schema.kind, OutputKind::Binary);
        assert_eq!(schema.classes, ["normal", "tumour"]);
        let multiclass = HandlerConfig::from_toml(
            "[input]\nheight = 8\nwidth = 8\n[output]\nkind = \"multiclass\"\n",
        )
        .unwrap();
        assert!(configured_schema(&multiclass).classes.is_empty());
        let implied = implied_schema(Some(&answer(r#"{"a": 0.5, "b": 0.5}"#)));
        assert_eq!(implied.classes, ["a", "b"]);
        let nothing = implied_schema(None);
        assert_eq!(
            (nothing.kind, nothing.classes),
            (OutputKind::Binary, vec!["0".into(), "1".into()])
        );
        // Known before any answer: no request is sent.
        assert!(model().known_schema(Some(&binary)).is_some());
    }

    #[test]
    fn an_answer_that_is_no_prediction_is_that_inputs_error() {
        let schema = |kind| Schema {
            kind,
            classes: vec!["normal".into(), "tumour".into()],
        };
        let failed = |body: &str, kind| match outcome(&answer(body), &schema(kind)) {
            Outcome::Failed(why) => why,
            Outcome::Predicted(p) => panic!("{body}: predicted {p:?}"),
        };
        assert_eq!(
            failed("<html>", OutputKind::Binary),
            "the server's answer is not one scancer understands: <html>"
        );
        assert_eq!(
            failed("7", OutputKind::Binary),
            "the server answered class 7, but the model has 2 classes"
        );
        assert_eq!(
            failed(r#"{"other": 1.0}"#, OutputKind::Multiclass),
            "the server answered an unknown class \"other\""
        );
        assert_eq!(
            failed(r#"{"class": 1}"#, OutputKind::Binary),
            "the answer has no probabilities"
        );
        assert_eq!(
            failed(r#"[[0, 1], [0]]"#, OutputKind::Segmentation),
            "the mask rows differ in length"
        );
        assert_eq!(
            failed("\"x\"", OutputKind::Binary),
            "the server's answer does not fit a binary model: \"x\""
        );
        assert!(matches!(
            outcome(&answer("1"), &schema(OutputKind::Binary)),
            Outcome::Predicted(Prediction::Class(ClassPrediction { class: 1, .. }))
        ));
    }

    #[test]
    fn refusals_of_the_run_are_fatal_and_of_an_image_are_its_own() {
        let model = model();
        let refused = |status, body: &str, tries| {
            let answer = Answer {
                status,
                body: body.as_bytes().to_vec(),
            };
            model.refusal(&answer, Tries(tries))
        };
        let busy = refused(
            503,
            r#"{"code": 503, "type": "ServiceUnavailableException", "message": "busy"}"#,
            3,
        );
        assert!(matches!(busy, PredictError::Refused(_)));
        assert_eq!(
            busy.to_string(),
            "HTTP 503 ServiceUnavailableException: busy (after 3 tries)"
        );
        assert_eq!(refused(413, "", 1).to_string(), "HTTP 413: ");
        let missing = refused(404, r#"{"message": "Model not found"}"#, 1);
        assert!(matches!(
            missing,
            PredictError::Fatal(Fatal::Refused { .. })
        ));
        assert_eq!(
            missing.to_string(),
            "http://127.0.0.1:9/predictions/pcam%20v2?details=true: HTTP 404: Model not found (check --model, and --remote: the inference API, e.g. https://api.scancer.org)"
        );
        let token = refused(
            400,
            r#"{"type": "InvalidKeyException", "message": "no"}"#,
            1,
        );
        assert!(token.to_string().ends_with(
            "(the server wants its inference token: --token, --token-file or SCANCER_TOKEN)"
        ));
        assert!(matches!(refused(400, "{}", 1), PredictError::Refused(_)));
        assert!(matches!(refused(401, "", 1), PredictError::Fatal(_)));
        assert!(matches!(refused(405, "", 1), PredictError::Fatal(_)));
    }

    #[test]
    fn a_server_that_is_not_there_stops_the_run_at_the_first_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        std::fs::write(&path, b"x").unwrap();
        let item: Item = Ok(crate::inputs::Input {
            display: "a.png".into(),
            source: crate::inputs::Source::File(path),
        });
        let Err(fatal) = model().start(None, Some(&item)) else {
            panic!("nothing listens on port 9");
        };
        assert!(matches!(fatal, Fatal::Unreachable { .. }), "{fatal}");
        assert!(fatal
            .to_string()
            .starts_with("cannot connect to http://127.0.0.1:9/predictions/"));
        // An input that cannot be read is its own error; no request is sent.
        let unlisted: Item = Err(crate::inputs::Unlisted {
            display: "b.png".into(),
            message: "permission denied".into(),
        });
        let start = model().start(None, Some(&unlisted)).unwrap();
        assert!(matches!(start.first, Some(Outcome::Failed(m)) if m == "permission denied"));
        assert_eq!(start.schema.kind, OutputKind::Binary);
        assert!(model().start(None, None).unwrap().first.is_none());
    }
}
