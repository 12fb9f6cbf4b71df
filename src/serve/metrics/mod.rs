//! Prometheus metrics (text format 0.0.4) with TorchServe 0.12's names and labels, so dashboards and
//! alerts written for TorchServe scrape scancer unchanged, plus a latency histogram and batching
//! counters that TorchServe lacks. `gauges` renders TorchServe's gauges (times, workers, system),
//! `system` samples the machine.

mod gauges;
mod system;

use super::batcher::BatchTimes;
use super::log_files::{LogFile, LogSink};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use system::Sampler;

/// The dimensions of a host-level metric line.
const HOST: &str = "Level:Host";

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Reads one counter of a series.
type SeriesValue = fn(&Series) -> f64;

/// Counters for one model version and label: the version that answered (for KServe's statistics),
/// and the `model_version` label, which is the version the request named, or "default" (TorchServe
/// splits one model into a "default" and a versioned series; dashboards then add them up).
#[derive(Debug, Clone)]
struct Series {
    model: String,
    version: String,
    label: String,
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
    gauges: gauges::Gauges,
}

pub(crate) struct Metrics {
    hostname: String,
    state: Mutex<State>,
    /// TorchServe's metric log files (ts_metrics.log, model_metrics.log), and the other log files
    /// for those who report through the metrics (the workers' model_log.log).
    log: Option<LogSink>,
}

/// What one answered request adds to the metrics.
pub(crate) struct Observation<'a> {
    pub(crate) model: &'a str,
    /// The version that answered.
    pub(crate) version: &'a str,
    /// The version the request named (None: the default version).
    pub(crate) requested: Option<&'a str>,
    /// Images (tensors) answered.
    pub(crate) images: usize,
    /// From the request being read to its answer being ready.
    pub(crate) latency: Duration,
    /// The longest any of its images waited for the model.
    pub(crate) queued: Duration,
}

impl Metrics {
    pub(crate) fn new(hostname: String, log: Option<LogSink>) -> Metrics {
        Metrics {
            hostname,
            state: Mutex::new(State::default()),
            log,
        }
    }

    /// The log files, where the server writes them.
    pub(crate) fn log(&self) -> Option<&LogSink> {
        self.log.as_ref()
    }

    /// Where metric lines go, when `file` takes them (not with metrics_mode=prometheus).
    fn metric_log(&self, file: LogFile) -> Option<&LogSink> {
        self.log.as_ref().filter(|log| log.takes(file))
    }

    /// One line of TorchServe's metric log format:
    /// `Requests2XX.Count:1.0|#Level:Host|#hostname:h,timestamp:1717105307`.
    fn metric_line(&self, name: &str, unit: &str, value: f64, dimensions: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!(
            "- {name}.{unit}:{value:?}|#{dimensions}|#hostname:{},timestamp:{now}",
            self.hostname
        )
    }

    fn log_metric(&self, file: LogFile, name: &str, unit: &str, value: f64, dimensions: &str) {
        if let Some(log) = self.metric_log(file) {
            log.line(file, self.metric_line(name, unit, value, dimensions));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a response by status class, as TorchServe's Requests2XX/4XX/5XX do (anything neither
    /// 2xx nor 4xx is a 5XX).
    pub(crate) fn response(&self, status: hyper::StatusCode) {
        let class = match status.as_u16() {
            200..=299 => 0,
            400..=499 => 1,
            _ => 2,
        };
        let name = ["Requests2XX", "Requests4XX", "Requests5XX"][class];
        self.log_metric(LogFile::TsMetrics, name, "Count", 1.0, HOST);
        self.lock().status[class] += 1;
    }

    /// An answered request: counted once, with its latency once, whatever the number of its images.
    pub(crate) fn predicted(&self, o: &Observation) {
        let queue_ms = o.queued.as_secs_f64() * 1e3;
        // One message for the request's four lines.
        if let Some(log) = self.metric_log(LogFile::TsMetrics) {
            let model = format!(
                "model_name:{},model_version:{}",
                o.model,
                o.requested.unwrap_or("default")
            );
            let lines = [
                self.metric_line("ts_inference_requests_total", "Count", 1.0, &model),
                self.metric_line(
                    "ts_inference_latency_microseconds",
                    "Microseconds",
                    o.latency.as_secs_f64() * 1e6,
                    &model,
                ),
                self.metric_line(
                    "ts_queue_latency_microseconds",
                    "Microseconds",
                    o.queued.as_secs_f64() * 1e6,
                    &model,
                ),
                self.metric_line("QueueTime", "Milliseconds", queue_ms, HOST),
            ];
            log.line(LogFile::TsMetrics, lines.join("\n"));
        }
        let mut state = self.lock();
        state.gauges.queue_ms = Some(queue_ms);
        let s = series(&mut state, o.model, o.version, o.requested);
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
        let mut statistics = Statistics::default();
        for s in state
            .series
            .iter()
            .filter(|s| s.model == model && s.version == version)
        {
            statistics.requests += s.requests;
            statistics.images += s.images;
            statistics.latency_ns += (s.latency_us * 1e3) as u64;
            statistics.queue_ns += (s.queue_us * 1e3) as u64;
            statistics.failed += s.rejected.iter().sum::<u64>();
            statistics.last_ms = statistics.last_ms.max(s.last_ms);
        }
        statistics
    }

    /// A request routed to a model that got no prediction: counted apart from the answered ones.
    pub(crate) fn rejected(
        &self,
        model: &str,
        version: &str,
        requested: Option<&str>,
        why: Rejection,
    ) {
        let mut state = self.lock();
        let k = Rejection::ALL.iter().position(|&r| r == why).unwrap_or(0);
        series(&mut state, model, version, requested).rejected[k] += 1;
    }

    /// A forward pass of `model`'s: counted, and its times kept as TorchServe's gauges.
    pub(crate) fn batch(&self, model: &str, times: &BatchTimes) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let thread = ms(times.worker.saturating_sub(times.handler));
        self.log_metric(
            LogFile::TsMetrics,
            "WorkerThreadTime",
            "Milliseconds",
            thread,
            HOST,
        );
        let dimensions = format!("ModelName:{model},Level:Model");
        for (name, value) in [
            ("HandlerTime", times.handler),
            ("PredictionTime", times.worker),
        ] {
            self.log_metric(LogFile::ModelMetrics, name, "ms", ms(value), &dimensions);
        }
        let mut state = self.lock();
        state.batches += 1;
        state.batched += times.size as u64;
        state.gauges.batch(model, times);
    }

    /// A worker (TorchServe's name for it) loaded its model in `took`.
    pub(crate) fn worker_loaded(&self, worker: String, took: Duration) {
        let ms = took.as_secs_f64() * 1e3;
        let dimensions = format!("WorkerName:{worker},Level:Host");
        self.log_metric(
            LogFile::TsMetrics,
            "WorkerLoadTime",
            "Milliseconds",
            ms,
            &dimensions,
        );
        self.lock().gauges.worker_loaded(worker, took);
    }

    /// Samples the machine now and every `interval` after (TorchServe's system metrics), on a
    /// thread of its own for the life of the process.
    pub(crate) fn watch_system(self: &Arc<Self>, interval: Duration) {
        let metrics = Arc::clone(self);
        let watching = std::thread::Builder::new()
            .name("scancer-system".into())
            .spawn(move || {
                let mut sampler = Sampler::default();
                loop {
                    if let Some(sample) = sampler.sample() {
                        for (name, unit, value) in gauges::system_values(&sample) {
                            metrics.log_metric(LogFile::TsMetrics, name, unit, value, HOST);
                        }
                        metrics.lock().gauges.system = Some(sample);
                    }
                    std::thread::sleep(interval);
                }
            });
        if let Err(e) = watching {
            crate::messages::warning!("no system metrics: cannot start their thread: {e}");
        }
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
        let series = by_label(&state.series);
        torchserve_families(&state, &series, &host, &mut out);
        state.gauges.render(&host, &mut out);
        scancer_families(&state, &series, &host, pending, arriving, &mut out);
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
        escape(&s.label)
    )
}

/// The series as Prometheus shows them: one per model and label, whichever versions answered (a
/// "default" series spans a change of the default version).
fn by_label(all: &[Series]) -> Vec<Series> {
    let mut merged: Vec<Series> = Vec::new();
    for s in all {
        match merged
            .iter_mut()
            .find(|m| m.model == s.model && m.label == s.label)
        {
            Some(m) => {
                m.requests += s.requests;
                m.images += s.images;
                m.latency_us += s.latency_us;
                m.queue_us += s.queue_us;
                m.latency_sum += s.latency_sum;
                for (a, b) in m.buckets.iter_mut().zip(s.buckets) {
                    *a += b;
                }
                for (a, b) in m.rejected.iter_mut().zip(s.rejected) {
                    *a += b;
                }
                m.last_ms = m.last_ms.max(s.last_ms);
            }
            None => merged.push(s.clone()),
        }
    }
    merged
}

/// TorchServe's own families: its per-model counters and its requests by status class.
fn torchserve_families(state: &State, series: &[Series], host: &str, out: &mut Exposition) {
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
        for s in series {
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
    series: &[Series],
    host: &str,
    pending: &[(String, usize)],
    arriving: usize,
    out: &mut Exposition,
) {
    let name = "scancer_inference_latency_seconds";
    let mut body = String::new();
    for s in series {
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
    for s in series {
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
    for s in series {
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

fn series<'a>(
    state: &'a mut State,
    model: &str,
    version: &str,
    requested: Option<&str>,
) -> &'a mut Series {
    let label = requested.unwrap_or("default");
    let at = match state
        .series
        .iter()
        .position(|s| s.model == model && s.version == version && s.label == label)
    {
        Some(at) => at,
        None => {
            state.series.push(Series {
                model: model.to_string(),
                version: version.to_string(),
                label: label.to_string(),
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
        let m = Metrics::new("vm".into(), None);
        // Two requests to version 1.0 naming it, one naming none ("default").
        for requested in [Some("1.0"), Some("1.0"), None] {
            m.predicted(&Observation {
                model: "pcam",
                version: "1.0",
                requested,
                images: 1,
                latency: Duration::from_millis(3),
                queued: Duration::from_micros(250),
            });
        }
        // A V2 request of four images is one request, one latency.
        m.predicted(&Observation {
            model: "pcam",
            version: "1.0",
            requested: Some("1.0"),
            images: 4,
            latency: Duration::from_millis(10),
            queued: Duration::from_micros(500),
        });
        m.rejected("pcam", "1.0", Some("1.0"), Rejection::QueueFull);
        m.response(hyper::StatusCode::OK);
        m.response(hyper::StatusCode::NOT_FOUND);
        // A redirect is no success: TorchServe counts it with the 5XX.
        m.response(hyper::StatusCode::MOVED_PERMANENTLY);
        let text = m.render(&[("pcam".into(), 0)], 0, &[]);
        let labels = "model_name=\"pcam\",model_version=\"1.0\",hostname=\"vm\",";
        let default = "model_name=\"pcam\",model_version=\"default\",hostname=\"vm\",";
        assert!(
            text.contains(&format!("ts_inference_requests_total{{{labels}}} 3.0\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("ts_inference_requests_total{{{default}}} 1.0\n")),
            "{text}"
        );
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
        assert!(text.contains("Requests2XX{Level=\"Host\",Hostname=\"vm\",} 1.0\n"));
        assert!(text.contains("Requests4XX{Level=\"Host\",Hostname=\"vm\",} 1.0\n"));
        assert!(text.contains("Requests5XX{Level=\"Host\",Hostname=\"vm\",} 1.0\n"));
        assert!(text.contains(&format!(
            "scancer_inference_latency_seconds_bucket{{{labels}le=\"0.0025\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "scancer_inference_latency_seconds_bucket{{{labels}le=\"0.005\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "scancer_inference_latency_seconds_count{{{labels}}} 3\n"
        )));
        // KServe's statistics count what the version answered, under any label.
        assert_eq!(m.statistics("pcam", "1.0").requests, 4);
        assert_eq!(m.statistics("pcam", "1.0").failed, 1);
        // The last request's queue time.
        assert!(
            text.contains("QueueTime{Level=\"Host\",Hostname=\"vm\",} 0.5\n"),
            "{text}"
        );
    }

    #[test]
    fn gauges_as_torchserve_names_them() {
        let m = Metrics::new("vm".into(), None);
        let text = m.render(&[], 0, &[]);
        // Every family is there before any sample.
        for name in [
            "WorkerLoadTime",
            "HandlerTime",
            "CPUUtilization",
            "DiskAvailable",
        ] {
            assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{text}");
        }
        m.batch(
            "pcam",
            &BatchTimes {
                size: 4,
                handler: Duration::from_millis(30),
                worker: Duration::from_millis(32),
            },
        );
        m.worker_loaded("W-9000-pcam_1.0".into(), Duration::from_millis(412));
        let text = m.render(&[], 0, &[]);
        for line in [
            "HandlerTime{ModelName=\"pcam\",Level=\"Model\",Hostname=\"vm\",} 30.0",
            "PredictionTime{ModelName=\"pcam\",Level=\"Model\",Hostname=\"vm\",} 32.0",
            "WorkerThreadTime{Level=\"Host\",Hostname=\"vm\",} 2.0",
            "WorkerLoadTime{WorkerName=\"W-9000-pcam_1.0\",Level=\"Host\",Hostname=\"vm\",} 412.0",
            "# HELP HandlerTime Torchserve prometheus gauge metric with unit: ms",
            "# HELP QueueTime Torchserve prometheus gauge metric with unit: Milliseconds",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn name_filters_keep_only_the_families_asked_for() {
        let m = Metrics::new("vm".into(), None);
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
