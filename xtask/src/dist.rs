//! Release artefacts: `cargo xtask dist` lays out an installed scancer and packs it twice, as a
//! tarball for any prefix (`/usr/local`, `/opt/scancer`) and as a Debian package (`/usr`). Both are
//! relocatable: scancer finds its engines in `../lib/scancer` (the libtorch engine, which finds
//! libtorch's libraries beside itself through `$ORIGIN`, and ONNX Runtime's library), so neither
//! needs LD_LIBRARY_PATH or the build user's cache.

use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit's binary path as deploy/scancer.service writes it (the tarball's `/usr/local` prefix).
const UNIT_BINARY: &str = "/usr/local/bin/scancer";

/// The packed artefacts of one build.
pub struct Artefacts {
    pub tarball: PathBuf,
    /// None where `dpkg-deb` is missing (a machine that is not Debian's).
    pub deb: Option<PathBuf>,
}

/// Packs the scancer and engine built in `built` (target/release or target/debug) into `out`.
pub fn pack(root: &Path, built: &Path, out: &Path) -> Result<Artefacts> {
    let version = version(root)?;
    let name = format!("scancer-{version}-{}-linux", std::env::consts::ARCH);
    let staging = out.join("staging");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    // The tarball: one folder that unpacks onto a prefix (`--strip-components=1 -C /usr/local`).
    let tree = staging.join(&name);
    lay_out(root, built, &tree, UNIT_BINARY)?;
    let tarball = out.join(format!("{name}.tar.gz"));
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-czf",
        ])
        .arg(&tarball)
        .arg("-C")
        .arg(&staging)
        .arg(&name))?;
    let deb = if which("dpkg-deb") {
        let tree = staging.join("deb");
        let usr = tree.join("usr");
        lay_out(root, built, &usr, "/usr/bin/scancer")?;
        let depends = depends(&[
            &usr.join("bin/scancer"),
            &usr.join("lib/scancer/libscancer_torch.so"),
            &usr.join("lib/scancer/libonnxruntime.so.1"),
        ])?;
        control(&tree, &version, size_bytes(&usr)?.div_ceil(1024), &depends)?;
        let deb = out.join(format!("scancer_{version}_{}.deb", deb_arch()));
        run(Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&tree)
            .arg(&deb))?;
        Some(deb)
    } else {
        None
    };
    fs::remove_dir_all(&staging)?;
    Ok(Artefacts { tarball, deb })
}

/// The installed layout under `prefix`: the binary, the engine with libtorch's libraries, the
/// systemd unit and its user, man pages, completions and the documents.
fn lay_out(root: &Path, built: &Path, prefix: &Path, binary: &str) -> Result<()> {
    let engine = prefix.join("lib/scancer");
    install(&built.join("scancer"), &prefix.join("bin/scancer"), 0o755)?;
    install(
        &built.join("libscancer_torch.so"),
        &engine.join("libscancer_torch.so"),
        0o755,
    )?;
    // Every library of the unpacked libtorch (they find each other through their own `$ORIGIN`).
    let libtorch = fs::canonicalize(root.join(".libtorch/lib"))
        .context("no .libtorch/lib: run `cargo xtask setup` first")?;
    // The engine must find them beside itself, never at the build machine's path.
    let engine_bytes = fs::read(engine.join("libscancer_torch.so"))?;
    let build_path = libtorch.display().to_string();
    if engine_bytes
        .windows(build_path.len())
        .any(|w| w == build_path.as_bytes())
    {
        bail!(
            "the engine's library path names this machine's libtorch ({build_path}): build it in the workspace's target/ with its .libtorch (no CARGO_TARGET_DIR or LIBTORCH elsewhere)"
        );
    }
    for entry in fs::read_dir(&libtorch)? {
        let path = entry?.path();
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        if file.contains(".so") {
            install(&path, &engine.join(&*file), 0o755)?;
        }
    }
    // ONNX Runtime, for `.onnx` models (scancer opens it at run time, only for them).
    let onnxruntime = root
        .join(crate::tools::ONNXRUNTIME_LINK)
        .join("libonnxruntime.so.1");
    if !onnxruntime.is_file() {
        bail!(
            "no {}: run `cargo xtask setup` first",
            onnxruntime.display()
        );
    }
    install(&onnxruntime, &engine.join("libonnxruntime.so.1"), 0o755)?;
    let unit = fs::read_to_string(root.join("deploy/scancer.service"))?;
    if !unit.contains(UNIT_BINARY) {
        bail!("deploy/scancer.service no longer runs {UNIT_BINARY}");
    }
    write(
        &prefix.join("lib/systemd/system/scancer.service"),
        &unit.replace(UNIT_BINARY, binary),
    )?;
    // systemd-sysusers reads it (the Debian package's postinst makes the user with adduser).
    write(
        &prefix.join("lib/sysusers.d/scancer.conf"),
        "u scancer - \"Scancer model server\" /var/lib/scancer\n",
    )?;
    for entry in fs::read_dir(root.join("man"))? {
        let path = entry?.path();
        install(
            &path,
            &prefix
                .join("share/man/man1")
                .join(path.file_name().unwrap()),
            0o644,
        )?;
    }
    for (from, to) in [
        ("scancer.bash", "share/bash-completion/completions/scancer"),
        ("_scancer", "share/zsh/vendor-completions/_scancer"),
        (
            "scancer.fish",
            "share/fish/vendor_completions.d/scancer.fish",
        ),
    ] {
        install(
            &root.join("completions").join(from),
            &prefix.join(to),
            0o644,
        )?;
    }
    for doc in ["README.md", "CHANGELOG.md", "RELIABILITY.md", "SECURITY.md"] {
        install(
            &root.join(doc),
            &prefix.join("share/doc/scancer").join(doc),
            0o644,
        )?;
    }
    Ok(())
}

/// The Debian package's control file and maintainer scripts.
fn control(tree: &Path, version: &str, installed_kib: u64, depends: &str) -> Result<()> {
    let debian = tree.join("DEBIAN");
    write(
        &debian.join("control"),
        &format!(
            "Package: scancer\n\
             Version: {version}\n\
             Architecture: {}\n\
             Maintainer: Scancer <dev@scancer.org>\n\
             Installed-Size: {installed_kib}\n\
             Depends: {depends}\n\
             Section: science\n\
             Priority: optional\n\
             Homepage: https://scancer.org\n\
             Description: breast-cancer detection models: predict, archive, store and serve\n \
             One binary that runs Scancer's PyTorch models over image files, folders and whole\n \
             slides, packages them as TorchServe archives, manages a TorchServe model store and\n \
             serves TorchServe's and KServe's APIs. Includes the CPU libtorch (TorchScript, AOTInductor)\n \
             and ONNX Runtime (ONNX) it runs models with.\n",
            deb_arch()
        ),
    )?;
    // The unit runs as `scancer` in /var/lib/scancer; the models there are the operator's, so
    // neither removing nor purging the package deletes them.
    script(
        &debian.join("postinst"),
        "if [ \"$1\" = configure ]; then\n\
         \x20   if ! getent passwd scancer >/dev/null; then\n\
         \x20       adduser --system --group --home /var/lib/scancer --no-create-home \\\n\
         \x20           --gecos \"Scancer model server\" scancer\n\
         \x20   fi\n\
         \x20   for dir in /var/lib/scancer /var/lib/scancer/model_store /var/lib/scancer/logs; do\n\
         \x20       [ -d \"$dir\" ] || install -d -o scancer -g scancer -m 0750 \"$dir\"\n\
         \x20   done\n\
         \x20   if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n\
         fi\n",
    )?;
    script(
        &debian.join("prerm"),
        "if [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then\n\
         \x20   systemctl stop scancer.service || true\n\
         fi\n",
    )?;
    script(
        &debian.join("postrm"),
        "if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n",
    )
}

fn script(path: &Path, body: &str) -> Result<()> {
    write(path, &format!("#!/bin/sh\nset -e\n{body}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The package's dependencies: the glibc and libstdc++ that scancer and its engine were linked
/// against (the newest symbol versions they use; libtorch's own need less).
fn depends(files: &[&Path]) -> Result<String> {
    let mut glibc = 0;
    let mut glibcxx = 0;
    for file in files {
        let bytes = fs::read(file)?;
        glibc = glibc.max(newest(&bytes, b"GLIBC_2."));
        glibcxx = glibcxx.max(newest(&bytes, b"GLIBCXX_3.4."));
    }
    // GLIBCXX_3.4.N first appeared in GCC's libstdc++ of this major version (GCC's ABI table).
    let gcc = match glibcxx {
        0..=21 => None,
        22..=24 => Some(7),
        25 => Some(8),
        26 => Some(9),
        27 | 28 => Some(10),
        29 => Some(11),
        30 => Some(12),
        31 => Some(13),
        _ => Some(14),
    };
    let libstdcxx = gcc.map_or("libstdc++6".to_string(), |v| format!("libstdc++6 (>= {v})"));
    Ok(format!(
        "libc6 (>= 2.{glibc}), {libstdcxx}, libgcc-s1, adduser"
    ))
}

/// The largest N of `prefix`N (a symbol version such as GLIBC_2.35) in an ELF file's bytes.
fn newest(bytes: &[u8], prefix: &[u8]) -> u32 {
    bytes
        .windows(prefix.len())
        .enumerate()
        .filter(|(_, w)| *w == prefix)
        .filter_map(|(at, _)| {
            let digits: Vec<u8> = bytes[at + prefix.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            std::str::from_utf8(&digits).ok()?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// The workspace's version (scancer's `[package] version`).
pub fn version(root: &Path) -> Result<String> {
    let manifest = fs::read_to_string(root.join("Cargo.toml"))?;
    let package = manifest
        .split("\n[")
        .find(|section| section.starts_with("[package]") || section.starts_with("package]"))
        .context("Cargo.toml has no [package]")?;
    package
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_owned)
        .context("Cargo.toml's [package] has no version")
}

fn deb_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Copies a file (following links: `.libtorch` links into the user cache) with the given mode.
fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        make_dirs(dir)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        make_dirs(dir)?;
    }
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Folders 0755 whatever the umask, as a package's folders are.
fn make_dirs(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for dir in missing.iter().rev() {
        fs::create_dir(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn size_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            size_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

pub fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_versions_are_read_as_numbers() {
        let bytes = b"\0GLIBC_2.17\0GLIBC_2.35\0GLIBC_2.4\0GLIBCXX_3.4.29\0";
        assert_eq!(newest(bytes, b"GLIBC_2."), 35);
        assert_eq!(newest(bytes, b"GLIBCXX_3.4."), 29);
        assert_eq!(newest(b"nothing", b"GLIBC_2."), 0);
    }

    #[test]
    fn the_version_is_scancers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let version = version(root).unwrap();
        assert!(version.split('.').count() == 3, "{version}");
    }
}
