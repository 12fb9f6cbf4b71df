//! TorchServe's config snapshots, so that a restart brings back every registered model: after start,
//! after every register, scale, set-default and unregister, and at stop, the server writes
//! `{LOG_LOCATION:-logs}/config/yyyyMMddHHmmssSSS-{startup|snapshot|shutdown}.cfg`, a properties file
//! of its configuration plus `model_snapshot` (each model's versions, default, archive and settings),
//! in TorchServe's layout and format, so that either server can start from the other's snapshots.
//!
//! Each file is written beside its final name, flushed to disk and renamed, so a crash at any point
//! leaves the previous snapshots and at most a hidden temporary file, which is never read (and is
//! removed at the next start). The newest 50 snapshots are kept.

use super::models::ServedModel;
use super::registry::Registry;
use crate::properties;
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Snapshots kept; older ones are removed.
const KEEP: usize = 50;

/// Why a snapshot is written, as its name says.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Startup,
    Snapshot,
    Shutdown,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Startup => "startup",
            Kind::Snapshot => "snapshot",
            Kind::Shutdown => "shutdown",
        }
    }
}

/// `20261202035621231-shutdown.cfg`: 17 digits of time, a kind, `.cfg`.
pub(crate) fn is_snapshot_name(name: &str) -> bool {
    let Some((stamp, kind)) = name.split_once('-') else {
        return false;
    };
    stamp.len() == 17
        && stamp.bytes().all(|b| b.is_ascii_digit())
        && matches!(kind, "startup.cfg" | "snapshot.cfg" | "shutdown.cfg")
}

/// The folder TorchServe keeps its snapshots in, under its log folder (LOG_LOCATION, else `logs`).
pub(crate) fn folder(logs: &Path) -> PathBuf {
    logs.join("config")
}

pub(crate) struct Snapshots {
    dir: PathBuf,
    /// The configuration as the server runs with it, written into every snapshot.
    properties: Vec<(String, String)>,
    /// The last name written: names must sort in the order written, whatever the clock does.
    last: Mutex<String>,
}

impl Snapshots {
    /// Snapshots into `dir`, which is made if missing; temporary files a crash left are removed.
    pub(crate) fn new(dir: PathBuf, properties: Vec<(String, String)>) -> Result<Snapshots> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot make the snapshot folder {}", dir.display()))?;
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".scancer-") && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Snapshots {
            dir,
            properties,
            last: Mutex::new(String::new()),
        })
    }

    /// Writes a snapshot of the registered models; says why not on standard error (at start and
    /// stop, where nothing waits for it).
    pub(crate) fn write_or_warn(&self, kind: Kind, registry: &Registry, unrestored: &[Restored]) {
        if let Err(e) = self.write(kind, registry, unrestored) {
            crate::messages::warning!("{e:#}");
        }
    }

    /// Writes a snapshot of `registry`, and of the versions a restore left out (`unrestored`), on
    /// disk (file and folder synced) when this returns.
    pub(crate) fn write(
        &self,
        kind: Kind,
        registry: &Registry,
        unrestored: &[Restored],
    ) -> Result<PathBuf> {
        self.try_write(kind, registry, unrestored)
            .with_context(|| format!("cannot write a config snapshot in {}", self.dir.display()))
    }

    fn try_write(
        &self,
        kind: Kind,
        registry: &Registry,
        unrestored: &[Restored],
    ) -> Result<PathBuf> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = chrono::Utc::now();
        let mut stamp = now.format("%Y%m%d%H%M%S%3f").to_string();
        if stamp <= *last {
            // The clock went back, or two changes came within a millisecond.
            let previous: u64 = last.parse().unwrap_or(0);
            stamp = format!("{:017}", previous + 1);
        }
        let name = format!("{stamp}-{}.cfg", kind.name());
        let mut text = String::from("#Saving snapshot\n");
        text.push_str(&now.format("#%a %b %d %H:%M:%S UTC %Y\n").to_string());
        for (key, value) in &self.properties {
            text.push_str(&format!(
                "{}={}\n",
                properties::escape(key, true),
                properties::escape(value, false)
            ));
        }
        let models = model_snapshot(&name, now.timestamp_millis(), registry, unrestored);
        text.push_str(&format!(
            "model_snapshot={}\n",
            properties::escape(&crate::serve::pyjson::dumps(&models), false)
        ));
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!(".scancer-{name}.tmp"));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            // The rename itself reaches the disk with the folder.
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        *last = stamp;
        self.prune();
        Ok(path)
    }

    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_snapshot_name(n))
            .collect();
        names.sort();
        let excess = names.len().saturating_sub(KEEP);
        for old in &names[..excess] {
            let _ = std::fs::remove_file(self.dir.join(old));
        }
    }
}

/// The `model_snapshot` JSON: TorchServe's fields, in its order. Unrestored versions are recorded
/// as they were read, unless registered again meanwhile; one that was its name's default stays
/// the default (the served versions are then not).
fn model_snapshot(name: &str, created: i64, registry: &Registry, unrestored: &[Restored]) -> Value {
    let all = registry.all();
    let mut models = Map::new();
    let mut count = all.len();
    let mut add = |model: &str, version: &str, record: Value| {
        if let Value::Object(versions) = models
            .entry(model.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            versions.insert(version.to_string(), record);
        }
    };
    let unrestored: Vec<&Restored> = unrestored
        .iter()
        .filter(|r| !registry.contains(&r.name, &r.version))
        .collect();
    for m in &all {
        let default = registry.default_version(&m.name).as_deref() == Some(m.version.as_str())
            && !unrestored.iter().any(|r| r.name == m.name && r.default);
        add(&m.name, &m.version, version(m, default));
    }
    for r in &unrestored {
        add(&r.name, &r.version, as_read(r, r.default));
        count += 1;
    }
    json!({
        "name": name,
        "modelCount": count,
        "created": created,
        "models": models,
    })
}

/// An unrestored version's record: the fields its snapshot gave.
fn as_read(r: &Restored, default: bool) -> Value {
    let mut record = json!({
        "defaultVersion": default,
        "marName": r.mar_name,
        "minWorkers": r.min_workers,
        "maxWorkers": r.max_workers,
    });
    if let Some(url) = &r.model_url {
        record["modelUrl"] = json!(url);
    }
    for (key, value) in [
        ("batchSize", r.batch_size.map(|n| n as u64)),
        ("maxBatchDelay", r.max_batch_delay_ms),
        ("responseTimeout", r.response_timeout_s),
    ] {
        if let Some(value) = value {
            record[key] = json!(value);
        }
    }
    record
}

fn version(m: &ServedModel, default: bool) -> Value {
    let (min, max) = m.workers.limits();
    let mut record = json!({
        "defaultVersion": default,
        "marName": mar_name(&m.path),
        "minWorkers": min,
        "maxWorkers": max,
        "batchSize": m.settings.batch_size,
        "maxBatchDelay": m.settings.max_batch_delay.as_millis() as u64,
        "responseTimeout": m.settings.response_timeout.as_secs(),
        "startupTimeout": 120,
        "runtimeType": m.runtime,
    });
    if m.downloaded {
        record["modelUrl"] = json!(m.url);
    }
    record
}

/// The archive's name in the model store.
fn mar_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One version as a snapshot records it, to register again at start.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Restored {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) default: bool,
    pub(crate) mar_name: String,
    pub(crate) min_workers: usize,
    pub(crate) max_workers: usize,
    pub(crate) batch_size: Option<usize>,
    pub(crate) max_batch_delay_ms: Option<u64>,
    pub(crate) response_timeout_s: Option<u64>,
    /// Where a downloaded archive came from (scancer's addition; TorchServe records only the
    /// archive's name, and ignores the field).
    pub(crate) model_url: Option<String>,
}

/// Reads `model_snapshot` (or the `models` key, whose versions carry the same fields): every
/// version, by name. `shown` names the file in errors.
pub(crate) fn restored(json: &str, shown: &str, key: &str) -> Result<Vec<Restored>> {
    let value: Value =
        serde_json::from_str(json).with_context(|| format!("{shown}: {key} is not valid JSON"))?;
    let models = match key {
        "model_snapshot" => &value["models"],
        _ => &value,
    };
    let models = models
        .as_object()
        .with_context(|| format!("{shown}: {key}: expected an object of models"))?;
    let mut out = Vec::new();
    for (name, versions) in models {
        let versions = versions
            .as_object()
            .with_context(|| format!("{shown}: {key}: model {name}: expected its versions"))?;
        for (version, fields) in versions {
            let positive =
                |field: &str| fields[field].as_i64().filter(|&v| v > 0).map(|v| v as u64);
            let min = fields["minWorkers"].as_i64().unwrap_or(1).max(0) as usize;
            let max = fields["maxWorkers"]
                .as_i64()
                .map_or(min, |v| v.max(0) as usize);
            out.push(Restored {
                name: name.clone(),
                version: version.clone(),
                default: fields["defaultVersion"].as_bool().unwrap_or(false),
                mar_name: fields["marName"].as_str().unwrap_or_default().to_string(),
                min_workers: min,
                max_workers: max.max(min),
                batch_size: positive("batchSize").map(|v| v as usize),
                max_batch_delay_ms: positive("maxBatchDelay"),
                response_timeout_s: positive("responseTimeout"),
                model_url: fields["modelUrl"].as_str().map(str::to_owned),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchserve_snapshots_read_back() {
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/torchserve/store/snapshots");
        let path = root.join("20261202035621231-shutdown.cfg");
        let text = std::fs::read_to_string(&path).unwrap();
        let pairs = properties::parse(&text);
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("enable_model_api"), Some("true"));
        assert!(get("inference_address")
            .unwrap()
            .starts_with("http://127.0.0.1:"));
        let models = restored(get("model_snapshot").unwrap(), "x", "model_snapshot").unwrap();
        assert_eq!(models.len(), 2);
        let v1 = models.iter().find(|m| m.version == "1.0").unwrap();
        assert_eq!((v1.default, v1.min_workers, v1.max_workers), (false, 2, 2));
        assert_eq!(v1.mar_name, "pcam.mar");
        let v2 = models.iter().find(|m| m.version == "2.0").unwrap();
        assert!(v2.default);
        assert_eq!(v2.mar_name, "pcam-2.0.mar");
        assert_eq!(v2.max_batch_delay_ms, Some(100));
        assert!(is_snapshot_name("20261202035621231-shutdown.cfg"));
        assert!(!is_snapshot_name(
            ".scancer-20261202035621231-shutdown.cfg.tmp"
        ));
        assert!(!is_snapshot_name("2026120203562123-startup.cfg"));
    }
}
