//! Prometheus metrics (text format 0.0.4) with TorchServe 0.12's names and labels, so dashboards and
//! alerts written for TorchServe scrape scancer unchanged, plus a latency histogram and batching
//! counters that TorchServe lacks.

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Reads one counter of a series.
type SeriesValue = fn(&Series) -> f64;

/// Counters for one model version as requests name it (`version` "default" when none was named).
#[derive(Debug, Clone)]
struct Series {
    model: String,
    version: String,
    requests: u64,
    latency_us: f64,
    queue_us: f64,
    buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
}

#[derive(Debug, Default)]
struct State {
    series: Vec<Series>,
    status: [u64; 3],
    batches: u64,
    batched: u64,
}

#[derive(Debug)]
pub(crate) struct Metrics {
    hostname: String,
    state: Mutex<State>,
}

/// What one answered prediction adds to the metrics.
pub(crate) struct Observation<'a> {
    pub(crate) model: &'a str,
    /// The version the request named, or None.
    pub(crate) version: Option<&'a str>,
    /// From the request being read to its answer being ready.
    pub(crate) latency: Duration,
    pub(crate) queued: Duration,
}

impl Metrics {
    pub(crate) fn new(hostname: String) -> Metrics {
        Metrics {
            hostname,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a response by status class, as TorchServe's Requests2XX/4XX/5XX do.
    pub(crate) fn response(&self, status: u16) {
        let class = match status {
            200..=399 => 0,
            400..=499 => 1,
            _ => 2,
        };
        self.lock().status[class] += 1;
    }

    /// Counts a request routed to a model (answered or not), as ts_inference_requests_total does.
    pub(crate) fn request(&self, model: &str, version: Option<&str>) {
        let mut state = self.lock();
        series(&mut state, model, version).requests += 1;
    }

    pub(crate) fn predicted(&self, o: &Observation) {
        let mut state = self.lock();
        let s = series(&mut state, o.model, o.version);
        let seconds = o.latency.as_secs_f64();
        s.latency_us += seconds * 1e6;
        s.queue_us += o.queued.as_secs_f64() * 1e6;
        s.latency_count += 1;
        s.latency_sum += seconds;
        if let Some(k) = BUCKETS.iter().position(|&b| seconds <= b) {
            s.buckets[k] += 1;
        }
    }

    pub(crate) fn batch(&self, size: usize) {
        let mut state = self.lock();
        state.batches += 1;
        state.batched += size as u64;
    }

    /// The exposition text. `pending` gives the queued requests of each model name, `arriving` the
    /// prediction requests being received or decoded.
    pub(crate) fn render(&self, pending: &[(String, usize)], arriving: usize) -> String {
        let state = self.lock();
        let host = escape(&self.hostname);
        let mut out = String::new();
        let model_labels = |s: &Series| {
            format!(
                "model_name=\"{}\",model_version=\"{}\",hostname=\"{host}\",",
                escape(&s.model),
                escape(&s.version)
            )
        };
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let counters: [(&str, &str, SeriesValue); 3] = [
            ("ts_inference_requests_total", "Count", |s| {
                s.requests as f64
            }),
            ("ts_inference_latency_microseconds", "Microseconds", |s| {
                s.latency_us
            }),
            ("ts_queue_latency_microseconds", "Microseconds", |s| {
                s.queue_us
            }),
        ];
        for (name, unit, value) in counters {
            family(
                &mut out,
                name,
                "counter",
                &format!("Torchserve prometheus counter metric with unit: {unit}"),
            );
            for s in &state.series {
                let _ = writeln!(out, "{name}{{{}}} {:?}", model_labels(s), value(s));
            }
        }
        for (k, name) in ["Requests2XX", "Requests4XX", "Requests5XX"]
            .iter()
            .enumerate()
        {
            family(
                &mut out,
                name,
                "counter",
                "Torchserve prometheus counter metric with unit: Count",
            );
            let _ = writeln!(
                out,
                "{name}{{Level=\"Host\",Hostname=\"{host}\",}} {:?}",
                state.status[k] as f64
            );
        }
        let name = "scancer_inference_latency_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "Time from a request being read to its answer being ready.",
        );
        for s in &state.series {
            let labels = model_labels(s);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(s.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels}le=\"{bound:?}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}le=\"+Inf\"}} {}",
                s.latency_count
            );
            let _ = writeln!(out, "{name}_sum{{{labels}}} {:?}", s.latency_sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.latency_count);
        }
        family(
            &mut out,
            "scancer_batches_total",
            "counter",
            "Forward passes run.",
        );
        let _ = writeln!(out, "scancer_batches_total {}", state.batches);
        family(
            &mut out,
            "scancer_batched_requests_total",
            "counter",
            "Requests answered by those forward passes.",
        );
        let _ = writeln!(out, "scancer_batched_requests_total {}", state.batched);
        family(
            &mut out,
            "scancer_queue_pending_requests",
            "gauge",
            "Requests waiting for the model.",
        );
        for (model, n) in pending {
            let _ = writeln!(
                out,
                "scancer_queue_pending_requests{{model_name=\"{}\"}} {n}",
                escape(model)
            );
        }
        family(
            &mut out,
            "scancer_arriving_requests",
            "gauge",
            "Prediction requests being received or decoded.",
        );
        let _ = writeln!(out, "scancer_arriving_requests {arriving}");
        out
    }
}

fn series<'a>(state: &'a mut State, model: &str, version: Option<&str>) -> &'a mut Series {
    let version = version.unwrap_or("default");
    let at = match state
        .series
        .iter()
        .position(|s| s.model == model && s.version == version)
    {
        Some(at) => at,
        None => {
            state.series.push(Series {
                model: model.to_string(),
                version: version.to_string(),
                requests: 0,
                latency_us: 0.0,
                queue_us: 0.0,
                buckets: [0; BUCKETS.len()],
                latency_count: 0,
                latency_sum: 0.0,
            });
            state.series.len() - 1
        }
    };
    &mut state.series[at]
}

/// A label value with Prometheus escapes.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The host name for the `hostname` labels, as TorchServe reports it.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchserve_names_and_labels() {
        let m = Metrics::new("vm".into());
        m.request("pcam", None);
        m.request("pcam", Some("1.0"));
        m.predicted(&Observation {
            model: "pcam",
            version: None,
            latency: Duration::from_millis(3),
            queued: Duration::from_micros(250),
        });
        m.response(200);
        m.response(404);
        let text = m.render(&[("pcam".into(), 0)], 0);
        assert!(text.contains("ts_inference_requests_total{model_name=\"pcam\",model_version=\"default\",hostname=\"vm\",} 1.0\n"));
        assert!(text.contains("ts_inference_requests_total{model_name=\"pcam\",model_version=\"1.0\",hostname=\"vm\",} 1.0\n"));
        assert!(text.contains("ts_inference_latency_microseconds{model_name=\"pcam\",model_version=\"default\",hostname=\"vm\",} 3000.0\n"));
        assert!(text.contains("ts_queue_latency_microseconds{model_name=\"pcam\",model_version=\"default\",hostname=\"vm\",} 250.0\n"));
        assert!(text.contains("Requests4XX{Level=\"Host\",Hostname=\"vm\",} 1.0\n"));
        assert!(text.contains("scancer_inference_latency_seconds_bucket{model_name=\"pcam\",model_version=\"default\",hostname=\"vm\",le=\"0.0025\"} 0\n"));
        assert!(text.contains("scancer_inference_latency_seconds_bucket{model_name=\"pcam\",model_version=\"default\",hostname=\"vm\",le=\"0.005\"} 1\n"));
    }
}
