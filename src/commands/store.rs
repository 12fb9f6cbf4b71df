//! `scancer store`: manage models on a TorchServe management API.

use super::stderr_is_terminal;
use crate::cli::{self, Api, StoreArgs, StoreCommand, WaitArgs};
use crate::exit::Exit;
use crate::store::{Register, Store, StoreError};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

pub(crate) fn run(args: StoreArgs) -> Result<Exit> {
    let store = Store::new(cli::client(
        &args.remote,
        args.url.clone(),
        Api::Management,
    )?);
    match execute(&store, &args) {
        Ok(()) => Ok(Exit::Success),
        Err(StoreError::Refused(line)) => {
            crate::messages::error!("{line}");
            Ok(Exit::SomeFailed)
        }
        Err(e @ StoreError::Transport(_)) => {
            crate::messages::error!("{e}");
            Ok(Exit::Fatal)
        }
    }
}

fn execute(store: &Store, args: &StoreArgs) -> Result<(), StoreError> {
    let json = args.json;
    match &args.command {
        StoreCommand::List => {
            let models = store.list()?;
            if json {
                print_json(&serde_json::json!({ "models": models }));
            } else {
                let rows: Vec<Vec<String>> = models
                    .iter()
                    .map(|m| vec![text(&m["modelName"]), text(&m["modelUrl"])])
                    .collect();
                out!("{}", table("", &["MODEL", "URL"], &rows));
                if models.is_empty() {
                    crate::messages::note!("no models registered at {}", store.url());
                }
            }
        }
        StoreCommand::Describe { name, version, all } => {
            let version = if *all {
                Some("all")
            } else {
                version.as_deref()
            };
            let described = store.describe(name, version)?;
            if json {
                print_json(&described);
            } else {
                out!("{}", descriptions(&described));
            }
        }
        StoreCommand::Register(r) => {
            let register = Register {
                url: r.archive.clone(),
                model_name: r.model_name.clone(),
                handler: r.handler.clone(),
                runtime: r.runtime.clone(),
                batch_size: r.batch_size,
                max_batch_delay: r.max_batch_delay,
                initial_workers: r.initial_workers,
                synchronous: r.synchronous,
                response_timeout: r.response_timeout,
            };
            let answer = store.register(&register)?;
            report(&answer, json);
            if r.wait.wait {
                let (name, version) = registered_version(store, &answer, r)?;
                wait(
                    store,
                    &name,
                    version.as_deref(),
                    r.initial_workers.unwrap_or(1) as usize,
                    &r.wait,
                )?;
            }
        }
        StoreCommand::Scale(s) => {
            if s.min_workers.is_none() && s.max_workers.is_none() {
                return Err(StoreError::Refused(
                    "scale: give --min-workers and/or --max-workers".into(),
                ));
            }
            let answer = store.scale(
                &s.name,
                s.version.as_deref(),
                s.min_workers,
                s.max_workers,
                s.synchronous,
            )?;
            report(&answer, json);
            if s.wait.wait {
                let wanted = s.min_workers.or(s.max_workers).unwrap_or(1) as usize;
                wait(store, &s.name, s.version.as_deref(), wanted, &s.wait)?;
            }
        }
        StoreCommand::SetDefault { name, version } => {
            report(&store.set_default(name, version)?, json)
        }
        StoreCommand::Unregister { name, version } => {
            report(&store.unregister(name, version.as_deref())?, json)
        }
    }
    Ok(())
}

/// `Model "pcam" Version: 1.0 registered with 1 initial workers` -> `pcam`, `1.0`.
pub(crate) fn registered_identity(answer: &Value) -> Option<(String, Option<String>)> {
    let status = answer["status"].as_str()?;
    let start = status.find("Model \"")? + 7;
    let end = status[start..].find('"')? + start;
    let version = status[end..]
        .strip_prefix("\" Version: ")
        .and_then(|rest| rest.split(' ').next())
        .map(str::to_string);
    Some((status[start..end].to_string(), version))
}

/// The version a registration made, to wait for: its answer says it; an asynchronous answer says
/// nothing, so the model whose default came from the URL is looked for in the listing, else the
/// version whose URL it is among every version (a new version of a model is not its default,
/// which is all the listing shows).
fn registered_version(
    store: &Store,
    answer: &Value,
    r: &crate::cli::RegisterArgs,
) -> Result<(String, Option<String>), StoreError> {
    if let Some((name, version)) = registered_identity(answer) {
        return Ok((name, version));
    }
    let listed = store.list()?;
    // A name whose default version came from the URL: its default is the version.
    if let Some(name) = listed
        .iter()
        .filter(|m| m["modelUrl"] == r.archive.as_str())
        .filter_map(|m| m["modelName"].as_str())
        .find(|name| r.model_name.as_deref().is_none_or(|wanted| wanted == *name))
    {
        return Ok((name.to_string(), None));
    }
    let names: Vec<String> = match &r.model_name {
        Some(name) => vec![name.clone()],
        None => listed
            .iter()
            .filter_map(|m| m["modelName"].as_str().map(str::to_string))
            .collect(),
    };
    for name in names {
        let Ok(Value::Array(versions)) = store.describe(&name, Some("all")) else {
            continue;
        };
        if let Some(v) = versions
            .iter()
            .rev()
            .find(|v| v["modelUrl"] == r.archive.as_str())
        {
            return Ok((name, v["modelVersion"].as_str().map(str::to_string)));
        }
    }
    Err(StoreError::Refused(format!(
        "{}: no registered version has this URL; pass --model-name to --wait",
        r.archive
    )))
}

/// Polls until `wanted` workers are READY, with a spinner on a terminal.
fn wait(
    store: &Store,
    name: &str,
    version: Option<&str>,
    wanted: usize,
    args: &WaitArgs,
) -> Result<(), StoreError> {
    let spinner = if stderr_is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    };
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
    );
    spinner.enable_steady_tick(Duration::from_millis(100));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.wait_timeout);
    loop {
        let (ready, total) = store.workers(name, version)?;
        spinner.set_message(format!(
            "{name}: {ready} of {wanted} workers READY ({total} in all)"
        ));
        if ready >= wanted {
            spinner.finish_and_clear();
            crate::messages::note!(
                "{name}: {ready} worker(s) READY after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            spinner.finish_and_clear();
            return Err(StoreError::Refused(format!(
                "{name}: {ready} of {wanted} workers READY after {} s (--wait-timeout); see the server's logs for why the others do not start",
                args.wait_timeout
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn report(answer: &Value, json: bool) {
    if json {
        print_json(answer);
    } else if let Some(status) = answer["status"].as_str() {
        outln!("{status}");
    } else {
        print_json(answer);
    }
}

fn print_json(value: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell, one line per row.
fn table(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{indent}{}\n", padded.join("  ").trim_end())
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = line(&header);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// `store describe` without `--json`: each version's settings and a table of its workers, from
/// whatever JSON the server sent (missing fields show as `-`).
pub(crate) fn descriptions(described: &Value) -> String {
    let mut out = String::new();
    let versions = described.as_array().cloned().unwrap_or_default();
    for (k, m) in versions.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{} {}",
            text(&m["modelName"]),
            text(&m["modelVersion"])
        );
        let fields = [
            ("url", text(&m["modelUrl"])),
            ("runtime", text(&m["runtime"])),
            (
                "workers",
                format!("{} to {}", text(&m["minWorkers"]), text(&m["maxWorkers"])),
            ),
            (
                "batching",
                format!(
                    "up to {} within {} ms",
                    text(&m["batchSize"]),
                    text(&m["maxBatchDelay"])
                ),
            ),
            (
                "response timeout",
                format!("{} s", text(&m["responseTimeout"])),
            ),
            (
                "queue",
                format!(
                    "{} pending, {} free",
                    text(&m["jobQueueStatus"]["pendingRequests"]),
                    text(&m["jobQueueStatus"]["remainingCapacity"])
                ),
            ),
        ];
        for (name, value) in fields {
            let _ = writeln!(out, "  {name:<17} {value}");
        }
        let rows: Vec<Vec<String>> = m["workers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|w| {
                vec![
                    text(&w["id"]),
                    text(&w["status"]),
                    text(&w["pid"]),
                    mib(&w["memoryUsage"]),
                    if w["gpu"] == true {
                        "gpu".into()
                    } else {
                        "cpu".into()
                    },
                    text(&w["startTime"]),
                ]
            })
            .collect();
        if rows.is_empty() {
            out.push_str("  no workers\n");
        } else {
            out.push_str(&table(
                "  ",
                &["WORKER", "STATUS", "PID", "MEMORY", "DEVICE", "STARTED"],
                &rows,
            ));
        }
    }
    out
}

fn mib(value: &Value) -> String {
    match value.as_f64() {
        Some(bytes) => format!("{:.0} MiB", bytes / (1 << 20) as f64),
        None => text(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_answer_names_the_model_and_version() {
        let answer = serde_json::json!({
            "status": "Model \"pcam\" Version: 2.0 registered with 1 initial workers"
        });
        assert_eq!(
            registered_identity(&answer),
            Some(("pcam".into(), Some("2.0".into())))
        );
        let processing = serde_json::json!({"status": "Processing worker updates..."});
        assert_eq!(registered_identity(&processing), None);
    }
}
