//! Developer tasks: `cargo xtask <task>`. The two README commands are `cargo xtask demo` and
//! `cargo xtask test`; both start by making sure a CPU libtorch is available (see `libtorch`).

mod audit;
mod dist;
mod install_check;
mod libtorch;
mod npm;
mod tools;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask <task> [args...]

tasks:
  setup            fetch (pip) and unpack the pinned CPU libtorch into the user cache, link .libtorch;
                   ONNX Runtime's library (the onnxruntime wheel's) likewise, link .onnxruntime;
                   link .tools/promtool and .tools/prometheus (from PATH, else the Debian package)
                   for the metrics tests
                   .tools/ihc.png (from the scikit-image wheel) for the slide tests and
                   .tools/libopenslide.so.1 (from the openslide-bin wheel) for the openslide ones
  demo             setup, build release, run `scancer predict` on the bundled example patches
  test [ARGS...]   setup, run the whole test suite (`cargo test --workspace ARGS...`), then the
                   slide tests with the openslide feature, then the install check (the debug
                   build packed as `dist` packs it, unpacked and run as nobody)
  dist             build release and pack it: target/dist/scancer-VERSION-ARCH-linux.tar.gz (unpacks
                   onto a prefix such as /usr/local) and scancer_VERSION_ARCH.deb (with dpkg-deb)
  install-check    build debug and run the install check alone
  bless            regenerate the checked-in man pages and shell completions
  audit            cargo-audit against ../shared/advisory-db (installs cargo-audit once), and check
                   that no locked dependency needs a newer Rust than the declared rust-version
  bench [ARGS...]  setup, build release, run bench/run.py ARGS... (needs a PyTorch venv, see BENCHMARKS.md)
  bench serve [ARGS...]
                   the same, then bench/serve.py ARGS... (scancer serve against TorchServe 0.12)";

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match task.as_str() {
        "setup" => {
            let dir = libtorch::ensure(&root)?;
            tools::ensure_onnxruntime(&root)?;
            npm::ensure_openseadragon(&root)?;
            tools::ensure(&root, &tools::PROMTOOL)?;
            tools::ensure(&root, &tools::PROMETHEUS)?;
            tools::ensure_ihc(&root)?;
            tools::ensure_openslide(&root)?;
            tools::ensure_real_slides(&root)?;
            tools::ensure_clients(&root)?;
            println!("{}", dir.display());
            Ok(())
        }
        "demo" => {
            libtorch::ensure(&root)?;
            tools::ensure_onnxruntime(&root)?;
            npm::ensure_openseadragon(&root)?;
            // The default members: scancer and the libtorch engine it opens.
            cargo(&["build", "--release", "--quiet"])?;
            let bin = root.join("target/release/scancer");
            status(Command::new(bin).args([
                "predict",
                "--model",
                "examples/pcam-classification.pt",
                "examples/patches",
            ]))
        }
        "test" => {
            libtorch::ensure(&root)?;
            tools::ensure_onnxruntime(&root)?;
            npm::ensure_openseadragon(&root)?;
            tools::ensure(&root, &tools::PROMTOOL)?;
            tools::ensure(&root, &tools::PROMETHEUS)?;
            tools::ensure_ihc(&root)?;
            tools::ensure_openslide(&root)?;
            tools::ensure_real_slides(&root)?;
            tools::ensure_clients(&root)?;
            let mut cmd = vec!["test", "--workspace"];
            cmd.extend(rest.iter().map(String::as_str));
            cargo(&cmd)?;
            // The slide tests again with the `openslide` feature (OpenSlide from .tools/).
            let mut cmd = vec![
                "test",
                "-p",
                "scancer",
                "--features",
                "openslide",
                "--test",
                "integration",
                "slides::",
            ];
            cmd.extend(rest.iter().map(String::as_str));
            cargo(&cmd)?;
            // The debug build packed, installed and run as an unprivileged user (`cargo test`
            // builds the engine only in deps/: the build itself makes target/debug's).
            cargo(&["build", "--quiet"])?;
            install_check::run(&root)
        }
        "install-check" => {
            libtorch::ensure(&root)?;
            tools::ensure_onnxruntime(&root)?;
            npm::ensure_openseadragon(&root)?;
            cargo(&["build", "--quiet"])?;
            install_check::run(&root)
        }
        "dist" => {
            libtorch::ensure(&root)?;
            tools::ensure_onnxruntime(&root)?;
            npm::ensure_openseadragon(&root)?;
            cargo(&["build", "--release", "--quiet"])?;
            let out = root.join("target/dist");
            let artefacts = dist::pack(&root, &root.join("target/release"), &out)?;
            for path in std::iter::once(&artefacts.tarball).chain(&artefacts.deb) {
                let mib = std::fs::metadata(path)?.len() as f64 / (1 << 20) as f64;
                println!("{} ({mib:.0} MiB)", path.display());
            }
            Ok(())
        }
        "audit" => audit::run(&root),
        "bless" => {
            libtorch::ensure(&root)?;
            status(
                Command::new(cargo_bin())
                    .args(["test", "--quiet", "--test", "integration", "assets::"])
                    .env("SCANCER_BLESS", "1"),
            )
        }
        "bench" => {
            libtorch::ensure(&root)?;
            npm::ensure_openseadragon(&root)?;
            tools::ensure(&root, &tools::HEY)?;
            // The default members: scancer and the libtorch engine it opens.
            cargo(&["build", "--release", "--quiet"])?;
            cargo(&[
                "build",
                "--release",
                "--quiet",
                "-p",
                "scancer-torch",
                "--example",
                "forward_bench",
            ])?;
            // The decode side of the forward+decode limit (scancer's `bench` feature).
            cargo(&[
                "build",
                "--release",
                "--quiet",
                "--features",
                "bench",
                "--example",
                "decode_bench",
            ])?;
            // `bench serve ...` runs the serve benchmark; anything else goes to the predict one.
            match rest.split_first() {
                Some((first, serve_args)) if first == "serve" => status(
                    Command::new("python3")
                        .arg("bench/serve.py")
                        .args(serve_args),
                ),
                _ => status(Command::new("python3").arg("bench/run.py").args(&rest)),
            }
        }
        "" | "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn cargo(args: &[&str]) -> Result<()> {
    status(Command::new(cargo_bin()).args(args))
}

fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !st.success() {
        // Pass the child's exit code through: `cargo xtask demo` exits like `scancer predict`.
        std::process::exit(st.code().unwrap_or(1));
    }
    Ok(())
}
