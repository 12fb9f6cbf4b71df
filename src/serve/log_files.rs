//! TorchServe's log files, beside standard error: `access_log.log`, `ts_log.log` and `model_log.log`
//! in LOG_LOCATION, `ts_metrics.log` and `model_metrics.log` in METRICS_LOCATION (both `./logs` by
//! default), in its log4j2 layouts. Lines go through a bounded channel to one writer thread, so a
//! request never waits for the disk; the writer flushes whenever it has nothing left to write. A file
//! rolls at 100 MB or when the day changes into `<name>.<dd-MMM>.log.gz`, and the newest 5 rolled
//! files of each are kept, as TorchServe's DefaultRolloverStrategy keeps them.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A file rolls once it reaches this size.
const ROLL_BYTES: u64 = 100 << 20;
/// Rolled files kept per log.
const KEEP: usize = 5;
/// Lines waiting for the writer; beyond, lines are counted and dropped, never waited for.
const WAITING: usize = 1 << 16;

/// The five files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFile {
    Access,
    Ts,
    Model,
    TsMetrics,
    ModelMetrics,
}

impl LogFile {
    const ALL: [LogFile; 5] = [
        LogFile::Access,
        LogFile::Ts,
        LogFile::Model,
        LogFile::TsMetrics,
        LogFile::ModelMetrics,
    ];

    fn stem(self) -> &'static str {
        match self {
            LogFile::Access => "access_log",
            LogFile::Ts => "ts_log",
            LogFile::Model => "model_log",
            LogFile::TsMetrics => "ts_metrics",
            LogFile::ModelMetrics => "model_metrics",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&f| f == self).unwrap_or(0)
    }
}

enum Message {
    /// Lines (one or more, newline-separated) and when they were logged; dated by the writer.
    Line(LogFile, SystemTime, String),
    /// Write everything received so far, then say so.
    Flush(SyncSender<()>),
}

/// Where lines are sent; cheap to clone.
#[derive(Clone)]
pub(crate) struct LogSink {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
    /// ts_metrics.log and model_metrics.log get lines (TorchServe's metrics_mode=log, its
    /// default); with metrics_mode=prometheus they stay empty, as TorchServe leaves them.
    metric_lines: bool,
}

impl LogSink {
    /// Opens (appends to) the five files and starts their writer.
    pub(crate) fn start(
        logs: &Path,
        metrics: &Path,
        metric_lines: bool,
    ) -> std::io::Result<LogSink> {
        let mut files = Vec::new();
        for file in LogFile::ALL {
            let dir = match file {
                LogFile::TsMetrics | LogFile::ModelMetrics => metrics,
                _ => logs,
            };
            files.push(Rolling::open(dir, file.stem(), ROLL_BYTES)?);
        }
        let (tx, rx) = sync_channel(WAITING);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        std::thread::Builder::new()
            .name("scancer-logs".into())
            .spawn(move || write_until_closed(rx, files, &counted))?;
        Ok(LogSink {
            tx,
            dropped,
            metric_lines,
        })
    }

    /// Whether `file` takes lines (the metric files do not with metrics_mode=prometheus): a
    /// caller can skip making them.
    pub(crate) fn takes(&self, file: LogFile) -> bool {
        self.metric_lines || !matches!(file, LogFile::TsMetrics | LogFile::ModelMetrics)
    }

    /// One line (or several, newline-separated), each written after log4j's ISO 8601 date of now
    /// (`2024-05-30T21:46:03,625 `). The caller only sends it: the writer dates and writes it.
    pub(crate) fn line(&self, file: LogFile, text: impl Into<String>) {
        if !self.takes(file) {
            return;
        }
        match self
            .tx
            .try_send(Message::Line(file, SystemTime::now(), text.into()))
        {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits (up to 10 s) until every line sent so far is written and flushed.
    pub(crate) fn flush(&self) {
        let (ack, done) = sync_channel(1);
        if self.tx.send(Message::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(10));
        }
    }
}

fn write_until_closed(rx: Receiver<Message>, mut files: Vec<Rolling>, dropped: &AtomicU64) {
    let mut warned = false;
    let mut clock = Clock::default();
    loop {
        // Flushed whenever nothing is waiting: a quiet server's files are always complete.
        let message = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                flush_all(&mut files);
                match rx.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let line = format!("{lost} log line(s) dropped: the log writer fell behind\n");
            let _ = files[LogFile::Ts.index()].write(line.as_bytes());
        }
        match message {
            Message::Line(file, at, text) => {
                let mut dated = String::with_capacity(text.len() + 32);
                for line in text.lines() {
                    clock.date(at, &mut dated);
                    dated.push_str(line);
                    dated.push('\n');
                }
                if let Err(e) = files[file.index()].write(dated.as_bytes()) {
                    if !warned {
                        // Said once: the server goes on, its log files do not.
                        warned = true;
                        let _ = writeln!(
                            std::io::stderr(),
                            "scancer: warning: cannot write the log file {}: {e}",
                            files[file.index()].path.display()
                        );
                    }
                }
            }
            Message::Flush(ack) => {
                flush_all(&mut files);
                let _ = ack.send(());
            }
        }
    }
    flush_all(&mut files);
}

/// log4j's `%d{ISO8601}` in local time, the seconds' part made once a second.
#[derive(Default)]
struct Clock {
    second: Option<u64>,
    prefix: String,
}

impl Clock {
    /// Appends `2024-05-30T21:46:03,625 ` for `at` to `out`.
    fn date(&mut self, at: SystemTime, out: &mut String) {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.second != Some(since.as_secs()) {
            self.second = Some(since.as_secs());
            self.prefix = chrono::DateTime::<chrono::Local>::from(at)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string();
        }
        use std::fmt::Write as _;
        out.push_str(&self.prefix);
        let _ = write!(out, ",{:03} ", since.subsec_millis());
    }
}

fn flush_all(files: &mut [Rolling]) {
    for file in files {
        let _ = file.out.flush();
    }
}

/// One log file and its rolled copies.
struct Rolling {
    dir: PathBuf,
    stem: &'static str,
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    day: String,
    limit: u64,
}

impl Rolling {
    fn open(dir: &Path, stem: &'static str, limit: u64) -> std::io::Result<Rolling> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{stem}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let meta = file.metadata()?;
        let day = meta
            .modified()
            .map(|t| day_of(chrono::DateTime::<chrono::Local>::from(t)))
            .unwrap_or_else(|_| today());
        Ok(Rolling {
            dir: dir.to_path_buf(),
            stem,
            path,
            out: BufWriter::new(file),
            size: meta.len(),
            day,
            limit,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let day = today();
        if self.size > 0 && (self.size + bytes.len() as u64 > self.limit || day != self.day) {
            self.roll()?;
        }
        self.day = day;
        self.out.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// `ts_log.log` -> `ts_log.03-Dec.log.gz` (`ts_log.03-Dec.2.log.gz` for a day's second), then
    /// a fresh `ts_log.log`; only the newest KEEP rolled files stay.
    fn roll(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let rolled = (1..)
            .map(|n| {
                let suffix = if n == 1 {
                    String::new()
                } else {
                    format!(".{n}")
                };
                self.dir
                    .join(format!("{}.{}{suffix}.log.gz", self.stem, self.day))
            })
            .find(|p| !p.exists())
            .unwrap_or_default();
        let mut gz = flate2::write::GzEncoder::new(
            BufWriter::new(File::create(&rolled)?),
            flate2::Compression::fast(),
        );
        std::io::copy(&mut File::open(&self.path)?, &mut gz)?;
        gz.finish()?.flush()?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.out = BufWriter::new(file);
        self.size = 0;
        self.prune();
        Ok(())
    }

    fn prune(&self) {
        let prefix = format!("{}.", self.stem);
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut rolled: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&prefix) && name.ends_with(".log.gz")
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        rolled.sort();
        let excess = rolled.len().saturating_sub(KEEP);
        for (_, old) in &rolled[..excess] {
            let _ = std::fs::remove_file(old);
        }
    }
}

fn today() -> String {
    day_of(chrono::Local::now())
}

/// log4j's `%d{dd-MMM}`: `03-Dec`.
fn day_of(t: chrono::DateTime<chrono::Local>) -> String {
    t.format("%d-%b").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_rolls_into_gzip_and_five_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Rolling::open(dir.path(), "ts_log", 1000).unwrap();
        let line = [b'x'; 99];
        for _ in 0..80 {
            log.write(&line).unwrap();
            log.write(b"\n").unwrap();
        }
        log.out.flush().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let rolled: Vec<&String> = names.iter().filter(|n| n.ends_with(".log.gz")).collect();
        assert_eq!(rolled.len(), KEEP, "{names:?}");
        assert!(names.contains(&"ts_log.log".to_string()));
        // The live file is under the limit; a rolled one holds whole lines.
        assert!(
            std::fs::metadata(dir.path().join("ts_log.log"))
                .unwrap()
                .len()
                <= 1000
        );
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(File::open(dir.path().join(rolled[0])).unwrap()),
            &mut text,
        )
        .unwrap();
        assert!(
            text.len() <= 1000 && text.ends_with('\n') && text.len().is_multiple_of(100),
            "{}",
            text.len()
        );
    }

    #[test]
    fn lines_reach_their_files_with_log4j_dates() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("metrics");
        let sink = LogSink::start(dir.path(), &metrics, true).unwrap();
        sink.line(
            LogFile::Access,
            "- /127.0.0.1:5000 \"GET /ping HTTP/1.1\" 200 0",
        );
        sink.line(
            LogFile::TsMetrics,
            "- Requests2XX.Count:1.0|#Level:Host|#hostname:h,timestamp:1",
        );
        sink.flush();
        let access = std::fs::read_to_string(dir.path().join("access_log.log")).unwrap();
        let (date, rest) = access.split_once(' ').unwrap();
        // 2024-05-30T21:46:03,625
        assert_eq!(date.len(), 23, "{access}");
        assert_eq!(&date[19..20], ",");
        assert_eq!(rest, "- /127.0.0.1:5000 \"GET /ping HTTP/1.1\" 200 0\n");
        let metric = std::fs::read_to_string(metrics.join("ts_metrics.log")).unwrap();
        assert!(metric.ends_with(" - Requests2XX.Count:1.0|#Level:Host|#hostname:h,timestamp:1\n"));
        // metrics_mode=prometheus: the metric files exist, without lines (as TorchServe's).
        let quiet = tempfile::tempdir().unwrap();
        let sink = LogSink::start(quiet.path(), quiet.path(), false).unwrap();
        sink.line(
            LogFile::TsMetrics,
            "- Requests2XX.Count:1.0|#Level:Host|#hostname:h,timestamp:1",
        );
        sink.line(
            LogFile::Access,
            "- /127.0.0.1:5000 \"GET /ping HTTP/1.1\" 200 0",
        );
        sink.flush();
        assert_eq!(
            std::fs::read_to_string(quiet.path().join("ts_metrics.log")).unwrap(),
            ""
        );
        assert!(
            !std::fs::read_to_string(quiet.path().join("access_log.log"))
                .unwrap()
                .is_empty()
        );
        for stem in ["ts_log", "model_log", "model_metrics"] {
            assert!(
                metrics.join(format!("{stem}.log")).exists()
                    || dir.path().join(format!("{stem}.log")).exists()
            );
        }
    }
}
