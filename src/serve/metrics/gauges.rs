//! TorchServe's gauges, each the latest value seen: QueueTime and WorkerThreadTime (host),
//! WorkerLoadTime (per worker), HandlerTime and PredictionTime (per model), and the system metrics.
//! A family is printed (HELP and TYPE) even before it has a sample, as TorchServe prints it.

use super::system::Sample;
use super::{escape, Exposition};
use crate::serve::batcher::BatchTimes;
use std::fmt::Write;
use std::time::Duration;

/// Reads one value of a system sample.
type SampleValue = fn(&Sample) -> f64;

/// TorchServe's system metrics: name, unit, value.
const SYSTEM: [(&str, &str, SampleValue); 7] = [
    ("CPUUtilization", "Percent", |s| s.cpu_percent),
    ("MemoryUsed", "Megabytes", |s| s.memory_used_mb),
    ("MemoryAvailable", "Megabytes", |s| s.memory_available_mb),
    ("MemoryUtilization", "Percent", |s| s.memory_percent),
    ("DiskUsage", "Gigabytes", |s| s.disk_used_gb),
    ("DiskAvailable", "Gigabytes", |s| s.disk_available_gb),
    ("DiskUtilization", "Percent", |s| s.disk_percent),
];

/// A sample's system metrics, as the metric log writes them.
pub(super) fn system_values(sample: &Sample) -> Vec<(&'static str, &'static str, f64)> {
    SYSTEM
        .iter()
        .map(|(name, unit, value)| (*name, *unit, value(sample)))
        .collect()
}

/// Worker load times kept: one per worker ever started, so bounded.
const WORKERS_KEPT: usize = 1000;

#[derive(Debug, Default)]
pub(super) struct Gauges {
    /// The last request's wait in its model's queue.
    pub(super) queue_ms: Option<f64>,
    /// The last batch's time in its worker outside the model.
    worker_thread_ms: Option<f64>,
    /// Per worker name (`W-9000-pcam_1.0`), its model's load time.
    worker_load_ms: Vec<(String, f64)>,
    /// Per model: the last batch's time in the model, and in the worker.
    handler_ms: Vec<(String, f64)>,
    prediction_ms: Vec<(String, f64)>,
    pub(super) system: Option<Sample>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn set(values: &mut Vec<(String, f64)>, key: &str, value: f64) {
    match values.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => values.push((key.to_string(), value)),
    }
}

impl Gauges {
    pub(super) fn batch(&mut self, model: &str, times: &BatchTimes) {
        self.worker_thread_ms = Some(ms(times.worker.saturating_sub(times.handler)));
        set(&mut self.handler_ms, model, ms(times.handler));
        set(&mut self.prediction_ms, model, ms(times.worker));
    }

    pub(super) fn worker_loaded(&mut self, worker: String, took: Duration) {
        if self.worker_load_ms.len() >= WORKERS_KEPT {
            self.worker_load_ms.remove(0);
        }
        set(&mut self.worker_load_ms, &worker, ms(took));
    }

    pub(super) fn render(&self, host: &str, out: &mut Exposition) {
        let host_labels = format!("Level=\"Host\",Hostname=\"{host}\",");
        let one = |value: Option<f64>| {
            value
                .map(|v| vec![(host_labels.clone(), v)])
                .unwrap_or_default()
        };
        let per = |values: &[(String, f64)], label: &str, level: &str| -> Vec<(String, f64)> {
            values
                .iter()
                .map(|(k, v)| {
                    (
                        format!(
                            "{label}=\"{}\",Level=\"{level}\",Hostname=\"{host}\",",
                            escape(k)
                        ),
                        *v,
                    )
                })
                .collect()
        };
        gauge(out, "QueueTime", "Milliseconds", one(self.queue_ms));
        gauge(
            out,
            "WorkerThreadTime",
            "Milliseconds",
            one(self.worker_thread_ms),
        );
        gauge(
            out,
            "WorkerLoadTime",
            "Milliseconds",
            per(&self.worker_load_ms, "WorkerName", "Host"),
        );
        gauge(
            out,
            "HandlerTime",
            "ms",
            per(&self.handler_ms, "ModelName", "Model"),
        );
        gauge(
            out,
            "PredictionTime",
            "ms",
            per(&self.prediction_ms, "ModelName", "Model"),
        );
        for (name, unit, value) in SYSTEM {
            gauge(out, name, unit, one(self.system.as_ref().map(value)));
        }
    }
}

/// One gauge family, TorchServe's HELP text, its samples (labels with the trailing comma).
fn gauge(out: &mut Exposition, name: &str, unit: &str, samples: Vec<(String, f64)>) {
    let mut body = String::new();
    for (labels, value) in samples {
        let _ = writeln!(body, "{name}{{{labels}}} {value:?}");
    }
    out.family(
        name,
        "gauge",
        &format!("Torchserve prometheus gauge metric with unit: {unit}"),
        body,
    );
}
