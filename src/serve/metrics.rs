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

/// Counters for one model version: the version that answered, whether the request named it or not
/// (TorchServe splits one model into a "default" and a versioned series; dashboards then add them up).
#[derive(Debug, Clone)]
struct Series {
    model: String,
    version: String,
    /// Requests answered.
    requests: u64,
    /// Images (tensors) in those requests: a V2 request may carry many.
    images: u64,
    latency_us: f64,
    queue_us: f64,
    buckets: [u64; BUCKETS.len()],
    latency_sum: f64,
    /// Requests refused, by reason.
    rejected: [u64; Rejection::ALL.len()],
    /// When the last answered request was answered, in milliseconds since the Unix epoch.
    last_ms: u64,
}

/// One (model, version)'s counts, as the KServe V2 statistics extension reports them.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Statistics {
    pub(crate) requests: u64,
    pub(crate) images: u64,
    pub(crate) latency_ns: u64,
    pub(crate) queue_ns: u64,
    pub(crate) failed: u64,
    pub(crate) last_ms: u64,
}

/// Why a request routed to a model got no prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// 400: its image or tensor could not be used.
    BadInput,
    /// 503: the queue was full.
    QueueFull,
    /// 503: the server is stopping.
    ShuttingDown,
    /// 503: the version has no worker.
    NoWorker,
    /// 500: the model failed.
    Internal,
}

impl Rejection {
    const ALL: [Rejection; 5] = [
        Rejection::BadInput,
        Rejection::QueueFull,
        Rejection::ShuttingDown,
        Rejection::NoWorker,
        Rejection::Internal,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::BadInput => "bad_input",
            Rejection::QueueFull => "queue_full",
            Rejection::ShuttingDown => "shutting_down",
            Rejection::NoWorker => "no_worker",
            Rejection::Internal => "internal",
        }
    }
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

/// What one answered request adds to the metrics.
pub(crate) struct Observation<'a> {
    pub(crate) model: &'a str,
    /// The version that answered.
    pub(crate) version: &'a str,
    /// Images (tensors) answered.
    pub(crate) images: usize,
    /// From the request being read to its answer being ready.
    pub(crate) latency: Duration,
    /// The longest any of its images waited for the model.
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
    pub(crate) fn response(&self, status: hyper::StatusCode) {
        let class = match status.as_u16() {
            200..=399 => 0,
            400..=499 => 1,
            _ => 2,
        };
        self.lock().status[class] += 1;
    }

    /// An answered request: counted once, with its latency once, whatever the number of its images.
    pub(crate) fn predicted(&self, o: &Observation) {
        let mut state = self.lock();
        let s = series(&mut state, o.model, o.version);
        let seconds = o.latency.as_secs_f64();
        s.requests += 1;
        s.images += o.images as u64;
        s.latency_us += seconds * 1e6;
        s.queue_us += o.queued.as_secs_f64() * 1e6;
        s.latency_sum += seconds;
        if let Some(k) = BUCKETS.iter().position(|&b| seconds <= b) {
            s.buckets[k] += 1;
        }
        s.last_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
    }

    /// What (model, version) has answered and refused so far.
    pub(crate) fn statistics(&self, model: &str, version: &str) -> Statistics {
        let state = self.lock();
        let Some(s) = state
            .series
            .iter()
            .find(|s| s.model == model && s.version == version)
        else {
            return Statistics::default();
        };
        Statistics {
            requests: s.requests,
            images: s.images,
            latency_ns: (s.latency_us * 1e3) as u64,
            queue_ns: (s.queue_us * 1e3) as u64,
            failed: s.rejected.iter().sum(),
            last_ms: s.last_ms,
        }
    }

    /// A request routed to a model that got no prediction: counted apart from the answered ones.
    pub(crate) fn rejected(&self, model: &str, version: &str, why: Rejection) {
        let mut state = self.lock();
        let k = Rejection::ALL.iter().position(|&r| r == why).unwrap_or(0);
        series(&mut state, model, version).rejected[k] += 1;
    }

    pub(crate) fn batch(&self, size: usize) {
        let mut state = self.lock();
        state.batches += 1;
        state.batched += size as u64;
    }

    /// The exposition text. `pending` gives the queued requests of each model name, `arriving` the
    /// prediction requests being received or decoded. `names`, when not empty, keeps only those
    /// families (TorchServe's `?name[]=...`).
    pub(crate) fn render(
        &self,
        pending: &[(String, usize)],
        arriving: usize,
        names: &[&str],
    ) -> String {
        let state = self.lock();
        let host = escape(&self.hostname);
        let mut out = Exposition {
            wanted: names,
            text: String::new(),
        };
        torchserve_families(&state, &host, &mut out);
        scancer_families(&state, &host, pending, arriving, &mut out);
        out.text
    }
}

/// The families rendered so far, and which ones are wanted.
struct Exposition<'a> {
    wanted: &'a [&'a str],
    text: String,
}

impl Exposition<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str, body: String) {
        if self.wanted.is_empty() || self.wanted.contains(&name) {
            let _ = write!(
                self.text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{body}"
            );
        }
    }
}

/// A series' labels, as TorchServe writes them (with a trailing comma).
fn model_labels(s: &Series, host: &str) -> String {
    format!(
        "model_name=\"{}\",model_version=\"{}\",hostname=\"{host}\",",
        escape(&s.model),
        escape(&s.version)
    )
}

/// TorchServe's own families: its per-model counters and its requests by status class.
fn torchserve_families(state: &State, host: &str, out: &mut Exposition) {
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
        let mut body = String::new();
        for s in &state.series {
            let _ = writeln!(body, "{name}{{{}}} {:?}", model_labels(s, host), value(s));
        }
        out.family(
            name,
            "counter",
            &format!("Torchserve prometheus counter metric with unit: {unit}"),
            body,
        );
    }
    for (k, name) in ["Requests2XX", "Requests4XX", "Requests5XX"]
        .into_iter()
        .enumerate()
    {
        let body = format!(
            "{name}{{Level=\"Host\",Hostname=\"{host}\",}} {:?}\n",
            state.status[k] as f64
        );
        out.family(
            name,
            "counter",
            "Torchserve prometheus counter metric with unit: Count",
            body,
        );
    }
}

/// scancer's families: the latency histogram, images, refusals, batching and queues.
fn scancer_families(
    state: &State,
    host: &str,
    pending: &[(String, usize)],
    arriving: usize,
    out: &mut Exposition,
) {
    let name = "scancer_inference_latency_seconds";
    let mut body = String::new();
    for s in &state.series {
        let labels = model_labels(s, host);
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(s.buckets) {
            cumulative += count;
            let _ = writeln!(
                body,
                "{name}_bucket{{{labels}le=\"{bound:?}\"}} {cumulative}"
            );
        }
        let _ = writeln!(body, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", s.requests);
        let _ = writeln!(body, "{name}_sum{{{labels}}} {:?}", s.latency_sum);
        let _ = writeln!(body, "{name}_count{{{labels}}} {}", s.requests);
    }
    out.family(
        name,
        "histogram",
        "Time from a request being read to its answer being ready, per answered request.",
        body,
    );
    let mut body = String::new();
    for s in &state.series {
        let _ = writeln!(
            body,
            "scancer_inference_images_total{{{}}} {}",
            model_labels(s, host),
            s.images
        );
    }
    out.family(
        "scancer_inference_images_total",
        "counter",
        "Images (tensors) answered; a KServe V2 request may carry many.",
        body,
    );
    let mut body = String::new();
    for s in &state.series {
        for (k, why) in Rejection::ALL.iter().enumerate() {
            let _ = writeln!(
                body,
                "scancer_rejected_requests_total{{{}reason=\"{}\"}} {}",
                model_labels(s, host),
                why.label(),
                s.rejected[k]
            );
        }
    }
    out.family(
            "scancer_rejected_requests_total",
            "counter",
            "Requests routed to a model that got no prediction, by reason (not in ts_inference_requests_total).",
            body,
        );
    out.family(
        "scancer_batches_total",
        "counter",
        "Forward passes run.",
        format!("scancer_batches_total {}\n", state.batches),
    );
    out.family(
        "scancer_batched_requests_total",
        "counter",
        "Requests answered by those forward passes.",
        format!("scancer_batched_requests_total {}\n", state.batched),
    );
    let mut body = String::new();
    for (model, n) in pending {
        let _ = writeln!(
            body,
            "scancer_queue_pending_requests{{model_name=\"{}\"}} {n}",
            escape(model)
        );
    }
    out.family(
        "scancer_queue_pending_requests",
        "gauge",
        "Requests waiting for the model.",
        body,
    );
    out.family(
        "scancer_arriving_requests",
        "gauge",
        "Prediction requests being received or decoded.",
        format!("scancer_arriving_requests {arriving}\n"),
    );
}

fn series<'a>(state: &'a mut State, model: &str, version: &str) -> &'a mut Series {
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
                images: 0,
                latency_us: 0.0,
                queue_us: 0.0,
                buckets: [0; BUCKETS.len()],
                latency_sum: 0.0,
                rejected: [0; Rejection::ALL.len()],
                last_ms: 0,
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

/// The host name for the `hostname` labels, as TorchServe reports it: the kernel's, else
/// `from_environment` (HOSTNAME), else localhost.
pub(crate) fn hostname(from_environment: Option<String>) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or(from_environment)
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchserve_names_and_labels() {
        let m = Metrics::new("vm".into());
        // Two requests to version 1.0, one naming it and one not: one series.
        for _ in 0..2 {
            m.predicted(&Observation {
                model: "pcam",
                version: "1.0",
                images: 1,
                latency: Duration::from_millis(3),
                queued: Duration::from_micros(250),
            });
        }
        // A V2 request of four images is one request, one latency.
        m.predicted(&Observation {
            model: "pcam",
            version: "1.0",
            images: 4,
            latency: Duration::from_millis(10),
            queued: Duration::from_micros(500),
        });
        m.rejected("pcam", "1.0", Rejection::QueueFull);
        m.response(hyper::StatusCode::OK);
        m.response(hyper::StatusCode::NOT_FOUND);
        let text = m.render(&[("pcam".into(), 0)], 0, &[]);
        let labels = "model_name=\"pcam\",model_version=\"1.0\",hostname=\"vm\",";
        assert!(
            text.contains(&format!("ts_inference_requests_total{{{labels}}} 3.0\n")),
            "{text}"
        );
        assert!(!text.contains("default"), "{text}");
        assert!(text.contains(&format!(
            "ts_inference_latency_microseconds{{{labels}}} 16000.0\n"
        )));
        assert!(text.contains(&format!(
            "ts_queue_latency_microseconds{{{labels}}} 1000.0\n"
        )));
        assert!(text.contains(&format!("scancer_inference_images_total{{{labels}}} 6\n")));
        assert!(text.contains(&format!(
            "scancer_rejected_requests_total{{{labels}reason=\"queue_full\"}} 1\n"
        )));
        assert!(text.contains("Requests4XX{Level=\"Host\",Hostname=\"vm\",} 1.0\n"));
        assert!(text.contains(&format!(
            "scancer_inference_latency_seconds_bucket{{{labels}le=\"0.0025\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "scancer_inference_latency_seconds_bucket{{{labels}le=\"0.005\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "scancer_inference_latency_seconds_count{{{labels}}} 3\n"
        )));
    }

    #[test]
    fn name_filters_keep_only_the_families_asked_for() {
        let m = Metrics::new("vm".into());
        let text = m.render(
            &[],
            0,
            &["Requests2XX", "ts_queue_latency_microseconds", "nope"],
        );
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(
            families,
            [
                "ts_queue_latency_microseconds counter",
                "Requests2XX counter"
            ]
        );
    }
}
