//! The install test (`cargo xtask test` runs it after the suite): pack the debug build as
//! `cargo xtask dist` packs a release, unpack the tarball onto a fresh prefix and the Debian package
//! into a fresh root, and use them as an operator would, as an unprivileged user (`nobody`, who
//! cannot read the build user's home and its libtorch cache) with a clean environment:
//! `predict` from both artefacts, then `serve` with the packaged unit's command line (register a
//! model, predict, stop with SIGTERM, start again from the snapshot, predict again).

use crate::dist;
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub fn run(root: &Path) -> Result<()> {
    let user = match unprivileged()? {
        Some(user) => user,
        None => {
            println!("SKIPPED install check: only root can run it as another user (nobody)");
            if std::env::var_os("SCANCER_NO_SKIP").is_some() {
                bail!("SCANCER_NO_SKIP is set and the install check was skipped");
            }
            return Ok(());
        }
    };
    let work = Scratch::new()?;
    eprintln!(
        "install check: packing target/debug in {}",
        work.0.display()
    );
    let artefacts = dist::pack(root, &root.join("target/debug"), &work.join("dist"))?;
    let data = work.join("data");
    for (from, to) in [
        ("examples/pcam-classification.pt", "pcam.pt"),
        ("examples/pcam-classification.pt2", "pcam.pt2"),
        ("examples/pcam-classification.onnx", "pcam.onnx"),
        ("examples/pcam-classification.toml", "pcam.toml"),
        ("examples/patches/patch-00.png", "patch-00.png"),
        ("examples/patches/patch-01.png", "patch-01.png"),
    ] {
        copy_readable(&root.join(from), &data.join(to))?;
    }
    // What the build tree answers, for the model in each format: every installed copy must
    // answer the same.
    let expected = MODELS
        .iter()
        .map(|model| {
            output(Command::new(root.join("target/debug/scancer")).args(predict_args(&data, model)))
        })
        .collect::<Result<Vec<_>>>()?;

    let prefix = work.join("prefix");
    make_dir(&prefix)?;
    dist::run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&artefacts.tarball)
            .args(["--strip-components=1", "-C"])
            .arg(&prefix),
    )?;
    agrees(
        &user,
        &prefix.join("bin/scancer"),
        &data,
        &expected,
        "the tarball",
    )?;

    if let Some(deb) = &artefacts.deb {
        let tree = work.join("deb");
        make_dir(&tree)?;
        dist::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree))?;
        let field = output(
            Command::new("dpkg-deb")
                .arg("--field")
                .arg(deb)
                .arg("Package"),
        )?;
        ensure!(field.trim() == "scancer", "the package is named {field:?}");
        // Its dependencies are met here (the machine that built it), without installing it.
        dist::run(Command::new("dpkg").args(["--dry-run", "-i"]).arg(deb))?;
        agrees(
            &user,
            &tree.join("usr/bin/scancer"),
            &data,
            &expected,
            "the Debian package",
        )?;
    }

    let unit = Unit::read(
        &prefix.join("lib/systemd/system/scancer.service"),
        &prefix,
        &work.join("state"),
    )?;
    serve_as_the_unit(&unit, &user, &prefix, &data, &expected[0])?;
    viewer_as_installed(&user, &prefix, &data, &work.join("slides"))
}

/// `serve --slides` as installed, as the unprivileged user: the viewer's page and its embedded
/// OpenSeadragon, the folder's slides and a tile, and an analysis run to its end.
fn viewer_as_installed(user: &User, prefix: &Path, data: &Path, slides: &Path) -> Result<()> {
    make_dir(slides)?;
    copy_readable(&data.join("patch-00.png"), &slides.join("patch.png"))?;
    user.own(slides)?;
    user.own(&slides.join("patch.png"))?;
    let unit = Unit {
        command: vec![
            prefix.join("bin/scancer").display().to_string(),
            "serve".into(),
            data.join("pcam.pt").display().to_string(),
            "--slides".into(),
            slides.display().to_string(),
        ],
        directory: slides.to_path_buf(),
        environment: Vec::new(),
        store: false,
    };
    let server = Server::start(&unit, user, prefix)?;
    let page = server.get(server.inference, "/viewer/")?;
    ensure!(page.0 == 200, "/viewer/ answered {page:?}");
    let script = server.get(server.inference, "/viewer/openseadragon.min.js")?;
    ensure!(
        script.0 == 200 && script.1.len() > 300_000,
        "the installed viewer has no OpenSeadragon: {}",
        script.0
    );
    let listed: serde_json::Value =
        serde_json::from_str(&server.get(server.inference, "/slides")?.1)?;
    let id = listed[0]["id"]
        .as_str()
        .context("no slide listed")?
        .to_string();
    let tile = server.get(server.inference, &format!("/slides/{id}_files/7/0_0.jpeg"))?;
    ensure!(tile.0 == 200, "a tile answered {}", tile.0);
    let started = server.post(
        server.inference,
        &format!("/slides/{id}/analyses"),
        br#"{"model": "pcam"}"#,
    )?;
    ensure!(started.0 == 202, "the analysis answered {started:?}");
    let analysis: serde_json::Value = serde_json::from_str(&started.1)?;
    let path = format!("/analyses/{}", analysis["id"].as_str().unwrap_or(""));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state: serde_json::Value =
            serde_json::from_str(&server.get(server.inference, &path)?.1)?;
        match state["status"].as_str() {
            Some("done") => break,
            Some("queued" | "running") if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            _ => bail!("the analysis ended as {state}"),
        }
    }
    server.stop()?;
    eprintln!(
        "install check: serve --slides drew a tile and ran an analysis as {}",
        user.name
    );
    Ok(())
}

/// The example model in each format: TorchScript, AOTInductor (both in libtorch), ONNX.
const MODELS: [&str; 3] = ["pcam.pt", "pcam.pt2", "pcam.onnx"];

/// An installed scancer, run as `user`, predicts what the build tree does, in every format.
fn agrees(
    user: &User,
    scancer: &Path,
    data: &Path,
    expected: &[String],
    artefact: &str,
) -> Result<()> {
    for (model, expected) in MODELS.iter().zip(expected) {
        let predicted = output(user.command(scancer).args(predict_args(data, model)))?;
        ensure!(
            &predicted == expected,
            "{artefact}'s scancer predicts with {model}\n{predicted}\nthe build tree's\n{expected}"
        );
    }
    eprintln!(
        "install check: predict from {artefact} as {} agrees ({})",
        user.name,
        MODELS.join(", ")
    );
    Ok(())
}

/// `scancer predict` with `model` on the two patches, one JSON line each.
fn predict_args(data: &Path, model: &str) -> Vec<PathBuf> {
    ["predict", "-f", "jsonl", "--model"]
        .into_iter()
        .map(PathBuf::from)
        .chain([
            data.join(model),
            data.join("patch-00.png"),
            data.join("patch-01.png"),
        ])
        .collect()
}

/// The unit's start: register the model, predict, stop, start again from the snapshot, predict.
fn serve_as_the_unit(
    unit: &Unit,
    user: &User,
    prefix: &Path,
    data: &Path,
    expected: &str,
) -> Result<()> {
    for dir in [
        &unit.directory,
        &unit.directory.join("model_store"),
        &unit.directory.join("logs"),
    ] {
        make_dir(dir)?;
        user.own(dir)?;
    }
    let store = unit.directory.join("model_store");
    let archived = user
        .command(&prefix.join("bin/scancer"))
        .args(["archive", "--model-name", "pcam", "--version", "1.0"])
        .arg("--serialized-file")
        .arg(data.join("pcam.pt"))
        .arg("--config")
        .arg(data.join("pcam.toml"))
        .arg("--export-path")
        .arg(&store)
        .status()?;
    ensure!(
        archived.success(),
        "scancer archive failed as {}",
        user.name
    );
    // Scancer's API answers the class (0 or 1), as its TorchServe did.
    let first: serde_json::Value = serde_json::from_str(expected.lines().next().unwrap_or(""))?;
    let wanted = first["class"]
        .as_u64()
        .context("no class in predict's record")?;

    let server = Server::start(unit, user, prefix)?;
    let registered = server.post(
        server.management,
        "/models?url=pcam.mar&initial_workers=1&synchronous=true",
        &[],
    )?;
    ensure!(registered.0 == 200, "register answered {registered:?}");
    server.predicts(wanted, data)?;
    server.stop()?;
    eprintln!(
        "install check: serve with the unit's command line registered, predicted and stopped"
    );

    // A restart comes back with the model from its snapshot, still as the unprivileged user.
    let server = Server::start(unit, user, prefix)?;
    let models = server.get(server.management, "/models")?;
    ensure!(
        models.1.contains("\"pcam\""),
        "after a restart /models is {models:?}"
    );
    server.predicts(wanted, data)?;
    server.stop()?;
    eprintln!("install check: the restarted server came back with the model and predicted");
    Ok(())
}

/// What the packaged unit runs, with its paths moved to the fresh prefix and state folder.
struct Unit {
    command: Vec<String>,
    directory: PathBuf,
    environment: Vec<(String, String)>,
    /// TorchServe's layout (a model store): every API on its own port.
    store: bool,
}

impl Unit {
    fn read(path: &Path, prefix: &Path, state: &Path) -> Result<Unit> {
        let text =
            fs::read_to_string(path).with_context(|| format!("no unit at {}", path.display()))?;
        let moved = |value: &str| {
            value
                .replace("/usr/local", &prefix.display().to_string())
                .replace("/var/lib/scancer", &state.display().to_string())
        };
        let key = |name: &str| {
            text.lines()
                .filter_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(moved)
                .collect::<Vec<_>>()
        };
        let command: Vec<String> = key("ExecStart")
            .first()
            .context("the unit has no ExecStart")?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let directory = key("WorkingDirectory")
            .first()
            .context("the unit has no WorkingDirectory")?
            .into();
        let environment = key("Environment")
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Unit {
            command,
            directory,
            environment,
            store: true,
        })
    }
}

struct Server {
    child: Child,
    inference: u16,
    management: u16,
    prefix: PathBuf,
    log: Receiver<String>,
}

type Reply = (u16, String);

impl Server {
    /// The unit's command line, on free ports (the only arguments added), as systemd would start
    /// it: the unit's user, folder and environment, nothing inherited.
    fn start(unit: &Unit, user: &User, prefix: &Path) -> Result<Server> {
        let mut command = user.command(Path::new(&unit.command[0]));
        command
            .args(&unit.command[1..])
            .args(["--port", "0", "--grpc-port", "0"]);
        if unit.store {
            command
                .args(["--management-port", "0", "--metrics-port", "0"])
                .args(["--grpc-management-port", "0"]);
        }
        command
            .current_dir(&unit.directory)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(unit.environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context("cannot start the unit's command")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, log) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("  serve: {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut inference, mut management) = (None, None);
        while inference.is_none() || management.is_none() {
            let line = log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| {
                    let _ = child.kill();
                    anyhow::anyhow!("the unit's command did not start listening within 60 s")
                })?;
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                let port: u16 = rest.split(' ').next().unwrap_or("").parse()?;
                if rest.contains("inference") {
                    inference = Some(port);
                }
                if rest.contains("management") {
                    management = Some(port);
                }
            }
        }
        Ok(Server {
            child,
            inference: inference.unwrap_or_default(),
            management: management.unwrap_or_default(),
            prefix: prefix.to_path_buf(),
            log,
        })
    }

    fn predicts(&self, wanted: u64, data: &Path) -> Result<()> {
        let patch = fs::read(data.join("patch-00.png"))?;
        let (status, body) = self.post(self.inference, "/predictions/pcam", &patch)?;
        ensure!(status == 200, "prediction answered {status}: {body}");
        ensure!(
            body.trim() == wanted.to_string(),
            "serve answered {body}, predict class {wanted}"
        );
        self.uses_the_prefix_libtorch()
    }

    /// A model answered, so libtorch is loaded: from the prefix, not the build's cache.
    fn uses_the_prefix_libtorch(&self) -> Result<()> {
        let maps = fs::read_to_string(format!("/proc/{}/maps", self.child.id()))?;
        let engine: Vec<&str> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|p| p.contains("libtorch") || p.contains("libscancer_torch"))
            .collect();
        ensure!(
            engine.iter().any(|p| p.ends_with("libtorch_cpu.so")),
            "a model answered but libtorch is not mapped"
        );
        let outside: Vec<&&str> = engine
            .iter()
            .filter(|p| !Path::new(p).starts_with(&self.prefix))
            .collect();
        ensure!(
            outside.is_empty(),
            "the installed server mapped {outside:?}"
        );
        Ok(())
    }

    fn get(&self, port: u16, path: &str) -> Result<Reply> {
        reply(ureq::get(&format!("http://127.0.0.1:{port}{path}")).call())
    }

    fn post(&self, port: u16, path: &str, body: &[u8]) -> Result<Reply> {
        reply(ureq::post(&format!("http://127.0.0.1:{port}{path}")).send_bytes(body))
    }

    /// SIGTERM, as systemd stops the unit; the server must exit 0.
    fn stop(mut self) -> Result<()> {
        dist::run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(status.success(), "serve exited with {status} after SIGTERM");
                while self.log.try_recv().is_ok() {}
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("serve did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn reply(result: Result<ureq::Response, ureq::Error>) -> Result<Reply> {
    match result {
        Ok(response) => Ok((response.status(), response.into_string()?)),
        Err(ureq::Error::Status(status, response)) => Ok((status, response.into_string()?)),
        Err(e) => Err(e.into()),
    }
}

/// The user the artefacts run as.
struct User {
    name: String,
    ids: (u32, u32),
}

impl User {
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.uid(self.ids.0).gid(self.ids.1);
        command
    }

    fn own(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::chown(path, Some(self.ids.0), Some(self.ids.1))?;
        Ok(())
    }
}

/// `nobody` when this runs as root (as CI does); None otherwise.
fn unprivileged() -> Result<Option<User>> {
    let me = output(Command::new("id").arg("-u"))?;
    if me.trim() != "0" {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd")?;
    let fields: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .context("no user nobody in /etc/passwd")?
        .split(':')
        .collect();
    Ok(Some(User {
        name: "nobody".into(),
        ids: (fields[2].parse()?, fields[3].parse()?),
    }))
}

/// A command's stdout, which must succeed.
fn output(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed ({})", out.status);
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn copy_readable(from: &Path, to: &Path) -> Result<()> {
    make_dir(to.parent().context("a file in a folder")?)?;
    fs::copy(from, to).with_context(|| format!("cannot copy {}", from.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

fn make_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// A folder every user can enter, removed at the end (whatever the outcome).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("scancer-install-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        make_dir(&dir)?;
        Ok(Scratch(dir))
    }

    fn join(&self, path: &str) -> PathBuf {
        self.0.join(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
