//! Debian command-line tools the tests and benchmarks run: `promtool` (Prometheus' metrics checker,
//! for the `serve` metrics test) and `hey` (an HTTP load generator, for the serve benchmark).
//! Each is taken from PATH when there, else unpacked from its Debian package (`apt-get download`,
//! which needs no root, then `dpkg-deb -x`) into the user cache, and linked as `.tools/<name>` in the
//! workspace, where `.cargo/config.toml` points the tests.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tool {
    pub name: &'static str,
    pub package: &'static str,
    /// The binary inside the package.
    pub path_in_package: &'static str,
}

pub const PROMTOOL: Tool = Tool {
    name: "promtool",
    package: "prometheus",
    path_in_package: "usr/bin/promtool",
};

pub const HEY: Tool = Tool {
    name: "hey",
    package: "hey",
    path_in_package: "usr/bin/hey",
};

/// Makes sure `<root>/.tools/<name>` runs the tool; returns its path.
pub fn ensure(root: &Path, tool: &Tool) -> Result<PathBuf> {
    let link = root.join(".tools").join(tool.name);
    let target = match which(tool.name) {
        Some(found) => found,
        None => {
            let cached = crate::libtorch::cache_dir()?
                .join("tools")
                .join(tool.package)
                .join(tool.name);
            if !cached.is_file() {
                unpack(tool, &cached)?;
            }
            cached
        }
    };
    if fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
        fs::create_dir_all(root.join(".tools"))?;
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("cannot link {} -> {}", link.display(), target.display()))?;
    }
    Ok(link)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn unpack(tool: &Tool, destination: &Path) -> Result<()> {
    let parent = destination.parent().context("tool path has no parent")?;
    fs::create_dir_all(parent)?;
    let work = parent.join(format!("download.{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = fetch(tool, &work, destination);
    let _ = fs::remove_dir_all(&work);
    result
}

fn fetch(tool: &Tool, work: &Path, destination: &Path) -> Result<()> {
    let parent = destination.parent().context("tool path has no parent")?;
    eprintln!(
        "xtask: fetching {} from the Debian package {}",
        tool.name, tool.package
    );
    let download = |dir: &Path| {
        Command::new("apt-get")
            .args(["download", "-q", tool.package])
            .current_dir(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !download(work) {
        // A fresh container has no package lists yet.
        let updated = Command::new("apt-get")
            .args(["update", "-q"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !updated || !download(work) {
            bail!(
                "cannot fetch the Debian package {} (apt-get download); install {} and put it on PATH",
                tool.package,
                tool.name
            );
        }
    }
    let deb = fs::read_dir(work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download left no .deb")?;
    let unpacked = work.join("x");
    let ok = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!("cannot unpack {}", deb.display());
    }
    let staged = parent.join(format!("{}.{}.partial", tool.name, std::process::id()));
    fs::copy(unpacked.join(tool.path_in_package), &staged)
        .with_context(|| format!("{} holds no {}", deb.display(), tool.path_in_package))?;
    fs::rename(&staged, destination)?;
    Ok(())
}

/// scikit-image's `ihc.png` (an immunohistochemistry section), the real tissue image of the slide
/// tests: taken from the pinned scikit-image wheel on PyPI (checked by sha256), cached, and linked
/// as `.tools/ihc.png`.
pub fn ensure_ihc(root: &Path) -> Result<PathBuf> {
    const WHEEL: &str =
        "scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
    const SHA256: &str = "24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641";
    let cached = crate::libtorch::cache_dir()?.join("data/ihc.png");
    if !cached.is_file() {
        let dir = cached.parent().context("cache path has no parent")?;
        fs::create_dir_all(dir)?;
        let work = dir.join(format!("download.{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work)?;
        eprintln!("xtask: fetching ihc.png from the scikit-image 0.25.2 wheel (PyPI)");
        let (_, mut pip) = crate::libtorch::pip_download(&work);
        let ok = pip
            .args(["--platform", "manylinux2014_x86_64", "scikit-image==0.25.2"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let wheel = work.join(WHEEL);
        if !ok || !wheel.is_file() {
            let _ = fs::remove_dir_all(&work);
            bail!("cannot download {WHEEL} with pip");
        }
        let digest = crate::libtorch::sha256(&wheel)?;
        if digest != SHA256 {
            let _ = fs::remove_dir_all(&work);
            bail!("{WHEEL}: sha256 {digest} does not match the pinned {SHA256}");
        }
        let mut archive = zip::ZipArchive::new(fs::File::open(&wheel)?)?;
        let mut member = archive.by_name("skimage/data/ihc.png")?;
        let staged = dir.join(format!("ihc.png.{}.partial", std::process::id()));
        std::io::copy(&mut member, &mut fs::File::create(&staged)?)?;
        fs::rename(&staged, &cached)?;
        let _ = fs::remove_dir_all(&work);
    }
    let link = root.join(".tools/ihc.png");
    if fs::read_link(&link).ok().as_deref() != Some(cached.as_path()) {
        fs::create_dir_all(root.join(".tools"))?;
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&cached, &link)?;
    }
    Ok(link)
}
