//! `cargo xtask audit`: the supply-chain checks CI runs.
//! - cargo-audit (pinned; installed with `cargo install` when missing, then kept in the user's cargo
//!   bin folder for later runs) against the offline RustSec advisory database in
//!   `../shared/advisory-db` (or `$SCANCER_ADVISORY_DB`), for the workspace's and the fuzz crate's
//!   lock files. `.cargo/audit.toml` makes any warning fatal and justifies each ignored advisory.
//! - The declared `rust-version` is true: no locked dependency needs a newer Rust than scancer says
//!   it builds with.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

const CARGO_AUDIT_VERSION: &str = "0.22.2";

pub fn run(root: &Path) -> Result<()> {
    advisories(root)?;
    rust_version(root)
}

fn advisories(root: &Path) -> Result<()> {
    let db = std::env::var_os("SCANCER_ADVISORY_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/advisory-db"));
    if !db.join("crates").is_dir() {
        bail!(
            "no advisory database at {} (set SCANCER_ADVISORY_DB to a copy of RustSec's advisory-db)",
            db.display()
        );
    }
    let installed = Command::new(crate::cargo_bin())
        .args(["audit", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("xtask: installing cargo-audit {CARGO_AUDIT_VERSION} (once per machine)");
        crate::cargo(&[
            "install",
            "cargo-audit",
            "--locked",
            "--version",
            CARGO_AUDIT_VERSION,
        ])?;
    }
    for lock in ["Cargo.lock", "fuzz/Cargo.lock"] {
        // Yanked crates are looked up in the crates.io index, which CI may not reach: the lock
        // files pin versions, and the advisory database is the check.
        crate::cargo(&[
            "audit",
            "--db",
            db.to_str().context("advisory database path is not UTF-8")?,
            "--no-fetch",
            "--no-yanked",
            "--file",
            lock,
        ])?;
    }
    Ok(())
}

fn rust_version(root: &Path) -> Result<()> {
    let out = Command::new(crate::cargo_bin())
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages = metadata["packages"].as_array().context("no packages")?;
    let declared = packages
        .iter()
        .find(|p| p["name"] == "scancer")
        .and_then(|p| p["rust_version"].as_str())
        .context("scancer declares no rust-version")?;
    let used: std::collections::HashSet<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .context("no resolve graph")?
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let mut newer: Vec<String> = packages
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| used.contains(id)))
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            let (name, at) = (p["name"].as_str()?, p["version"].as_str()?);
            (version(needs) > version(declared)).then(|| format!("{name} {at} needs Rust {needs}"))
        })
        .collect();
    newer.sort();
    if !newer.is_empty() {
        bail!(
            "Cargo.toml declares rust-version {declared}, but {}: raise rust-version, or pin older versions",
            newer.join(", ")
        );
    }
    eprintln!("xtask: rust-version {declared} holds for every locked dependency");
    Ok(())
}

fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}
