//! `scancer predict --remote`: each image PUT to `URL/predictions/NAME` (as the documented curl does),
//! with bounded concurrency, retries with backoff for 503 and connection failures, and the answers
//! turned into the same records as local predictions.
//!
//! Against `scancer serve` the request asks for `?details=true` and gets the very record local predict
//! writes. TorchServe ignores that parameter and answers its handler's body (`0`/`1`, `{label: p}`,
//! rows...): those become records with what the body holds (no score for a bare class).

use super::{Answer, Client, Exchange, TransportError};
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
pub(crate) const MAX_UPLOAD: u64 = 400 << 20;

pub(crate) struct RemoteModel {
    pub(crate) client: Client,
    pub(crate) name: String,
    pub(crate) retries: u32,
}

/// An answer that makes every other request pointless (wrong model, credentials): the run stops.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Fatal(pub String);

impl RemoteModel {
    fn path(&self) -> String {
        format!("/predictions/{}?details=true", super::encode(&self.name))
    }

    /// What scancer serve says of the model (kind and labels), if it is a scancer serve.
    pub(crate) fn metadata_schema(&self) -> Option<Schema> {
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

    /// Sends one image, retrying transient failures; the outcome for the image, or a reason to stop.
    pub(crate) fn predict(&self, bytes: &[u8]) -> Result<Answer, Result<String, Fatal>> {
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
            let tried = if attempt > 0 {
                format!(" (after {} tries)", attempt + 1)
            } else {
                String::new()
            };
            return match result {
                Ok(answer) if answer.status == 200 => Ok(answer),
                Ok(answer) => Err(self.refusal(&answer, &tried)),
                Err(e @ TransportError::Connect { .. }) => Err(Err(Fatal(format!("{e}{tried}")))),
                Err(e) => Err(Ok(format!("{e}{tried}"))),
            };
        }
    }

    /// An error answer: for this image (bad image, too large, busy), or fatal for the run.
    fn refusal(&self, answer: &Answer, tried: &str) -> Result<String, Fatal> {
        let kind = answer.error_type().unwrap_or_default();
        let line = format!(
            "HTTP {}{}{}: {}{tried}",
            answer.status,
            if kind.is_empty() { "" } else { " " },
            kind,
            answer.message()
        );
        let fatal = |hint: &str| {
            Err(Fatal(format!(
                "{}{}: {line} ({hint})",
                self.client.base,
                self.path()
            )))
        };
        match (answer.status, kind.as_str()) {
            (404, _) => fatal(
                "check --model, and --remote: the inference API, e.g. https://api.scancer.org",
            ),
            (401, _) => fatal("the server asks for HTTP Basic auth: --user NAME"),
            (400, "InvalidKeyException") => fatal(
                "the server wants its inference token: --token, --token-file or SCANCER_TOKEN",
            ),
            (405, _) => fatal("is --remote the inference API (port 8080), not the management API?"),
            _ => Ok(line),
        }
    }
}

/// The record of a successful answer.
pub(crate) fn outcome(answer: &Answer, schema: &Schema) -> Outcome {
    match answer.json() {
        Some(value) => match prediction(&value, schema) {
            Ok(p) => Outcome::Predicted(p),
            Err(why) => Outcome::Failed(why),
        },
        None => Outcome::Failed(format!(
            "the server's answer is not one scancer understands: {}",
            answer.message()
        )),
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
) -> Result<(Vec<f32>, Vec<usize>), String> {
    let n = schema.classes.len().max(2);
    let mut probabilities = vec![f32::NAN; n];
    let mut ranked = Vec::new();
    for (name, p) in map {
        let k = index(schema, name)
            .ok_or_else(|| format!("the server answered an unknown class {name:?}"))?;
        probabilities[k] = p.as_f64().unwrap_or(f64::NAN) as f32;
        ranked.push(k);
    }
    Ok((probabilities, ranked))
}

fn prediction(value: &Value, schema: &Schema) -> Result<Prediction, String> {
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
                    .ok_or("the answer has no probabilities")?,
            )?;
            let class = value["class"]
                .as_u64()
                .ok_or("the answer's class is not a number")?;
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
                .ok_or("the answer has no class_fractions")?
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
                .ok_or("the answer's output is not a list")?
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                .collect();
            Ok(Prediction::Raw(RawPrediction { shape, values }))
        }
        // TorchServe's handler bodies.
        (OutputKind::Binary | OutputKind::Multiclass, Value::Number(n)) => {
            let classes = schema.classes.len().max(2);
            let class = known_class(
                n.as_u64().ok_or("the answer is not a class index")?,
                classes,
            )?;
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
            let class = *ranked.first().ok_or("the answer has no classes")?;
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
        _ => Err(format!(
            "the server's answer does not fit a {} model: {}",
            schema.kind,
            value.to_string().chars().take(120).collect::<String>()
        )),
    }
}

/// A class index the answer gave, if the model has that class.
fn known_class(class: u64, classes: usize) -> Result<usize, String> {
    usize::try_from(class)
        .ok()
        .filter(|&k| k < classes)
        .ok_or_else(|| {
            format!("the server answered class {class}, but the model has {classes} classes")
        })
}

fn flatten(value: &Value, out: &mut Vec<f32>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        v => out.push(v.as_f64().unwrap_or(f64::NAN) as f32),
    }
}

/// A mask given as rows of class indices.
fn rows(value: &Value) -> Result<SegmentationPrediction, String> {
    let rows = value.as_array().ok_or("the mask is not a list of rows")?;
    let width = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    let mut mask = Vec::with_capacity(width * rows.len());
    for row in rows {
        let row = row
            .as_array()
            .filter(|r| r.len() == width)
            .ok_or("the mask rows differ in length")?;
        for v in row {
            mask.push(
                v.as_u64()
                    .filter(|&c| c < 256)
                    .ok_or("a mask value is not a class index")? as u8,
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

/// Predicts `items[from..]` with `jobs` requests in flight and calls `emit` in input order. Results
/// wait in a window of at most `4 * jobs` for the slowest request ahead of them.
pub(crate) fn run<E>(
    model: &RemoteModel,
    schema: &Schema,
    items: &[Item],
    from: usize,
    jobs: usize,
    mut emit: E,
) -> Result<std::io::Result<()>, Fatal>
where
    E: FnMut(usize, Outcome) -> std::io::Result<()>,
{
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
                let result = match read_item(&items[i], MAX_UPLOAD) {
                    Err(why) => Ok(Outcome::Failed(why)),
                    Ok(bytes) => match model.predict(&bytes) {
                        Ok(answer) => Ok(outcome(&answer, schema)),
                        Err(Ok(why)) => Ok(Outcome::Failed(why)),
                        Err(Err(fatal)) => Err(fatal),
                    },
                };
                if tx.send((i, result)).is_err() {
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
