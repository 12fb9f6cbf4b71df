//! The README's Slurm job array on a real single-node Slurm (Debian's `slurm-wlm` and `munge`, which
//! `.ci/run` installs; the test starts the daemons itself, as root, in a temporary folder): an
//! `sbatch --array` over a folder of slides whose one-minute time limit kills a task mid-run, the
//! task requeued (`--requeue`) and resumed (`--resume`), and the shards' outputs concatenated equal
//! one unsharded run byte for byte.

use crate::util::{root, skip, PCAM};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// munged, slurmctld and slurmd for one test, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    daemons: Vec<Child>,
}

fn installed(program: &str) -> bool {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .any(|dir| Path::new(dir).join(program).is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start(test: &str) -> Option<Cluster> {
        let missing: Vec<&str> = ["munged", "slurmctld", "slurmd", "sbatch", "scontrol"]
            .into_iter()
            .filter(|p| !installed(p))
            .collect();
        if !missing.is_empty() {
            skip(
                test,
                &format!(
                    "{} not installed (Debian slurm-wlm and munge; .ci/run installs them)",
                    missing.join(", ")
                ),
            );
            return None;
        }
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        if String::from_utf8_lossy(&uid).trim() != "0" {
            skip(test, "the Slurm daemons run as root here");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut daemons = Vec::new();
        // munged (its key is the package's); one already running is shared.
        let running = Command::new("munge")
            .arg("-n")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !running {
            std::fs::create_dir_all("/run/munge").unwrap();
            let chown = Command::new("chown")
                .args(["munge:munge", "/run/munge"])
                .status()
                .unwrap();
            assert!(chown.success());
            let munged = Command::new("runuser")
                .args(["-u", "munge", "--", "/usr/sbin/munged", "--foreground"])
                .spawn()
                .unwrap();
            daemons.push(munged);
            let deadline = Instant::now() + Duration::from_secs(20);
            while !Command::new("munge")
                .arg("-n")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                assert!(Instant::now() < deadline, "munged did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let host =
            String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap();
        let host = host.trim();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = dir.path().display();
        for sub in ["state", "spool", "log"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let conf = dir.path().join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=scancer\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\nSlurmdUser=root\n\
                 AuthType=auth/munge\nCredType=cred/munge\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
                 SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
                 SlurmctldPort={}\nSlurmdPort={}\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
                 SchedulerType=sched/backfill\nSelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n\
                 ReturnToService=2\nMpiDefault=none\nJobCompType=jobcomp/none\n\
                 AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\n\
                 SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\nKillWait=10\nMinJobAge=600\n\
                 NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
                 PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
                free_port(),
                free_port(),
            ),
        )
        .unwrap();
        for daemon in [
            &["/usr/sbin/slurmctld", "-D", "-i"][..],
            &["/usr/sbin/slurmd", "-D"][..],
        ] {
            let child = Command::new(daemon[0])
                .args(&daemon[1..])
                .env("SLURM_CONF", &conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            daemons.push(child);
        }
        let cluster = Cluster { dir, conf, daemons };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cluster.slurm("sinfo", &["-h", "-o", "%T"]).contains("idle") {
            assert!(
                Instant::now() < deadline,
                "the Slurm node did not come up: {}",
                cluster.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Some(cluster)
    }

    /// A Slurm command's standard output.
    fn slurm(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A job's state (`RUNNING`, `TIMEOUT`...).
    fn state(&self, job: &str) -> String {
        let shown = self.slurm("scontrol", &["show", "job", job]);
        shown
            .split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("GONE")
            .to_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/slurmctld.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("scancel")
            .arg("--full")
            .arg("-u")
            .arg("root")
            .env("SLURM_CONF", &self.conf)
            .status();
        for daemon in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill").arg(daemon.id().to_string()).status();
            let _ = daemon.wait();
        }
    }
}

#[test]
fn a_job_array_killed_at_its_time_limit_requeued_and_resumed_equals_one_run() {
    let Some(cluster) = Cluster::start("a_job_array_killed_at_its_time_limit") else {
        return;
    };
    let work = cluster.dir.path();
    // Twelve slides (one PNG under twelve names) and, in the second shard's middle, a FIFO that
    // blocks the task reading it until the time limit kills that task: a kill mid-run on any
    // machine, however fast.
    let slides = work.join("slides");
    std::fs::create_dir(&slides).unwrap();
    let mut mosaic = image::RgbImage::new(480, 384);
    for (k, p) in std::fs::read_dir(root().join("examples/patches"))
        .unwrap()
        .enumerate()
        .take(20)
    {
        let tile = image::open(p.unwrap().path()).unwrap().to_rgb8();
        image::imageops::replace(&mut mosaic, &tile, (k as i64 % 5) * 96, (k as i64 / 5) * 96);
    }
    let slide = work.join("slide.png");
    mosaic.save(&slide).unwrap();
    for k in 0..12 {
        std::os::unix::fs::symlink(&slide, slides.join(format!("s{k:02}.png"))).unwrap();
    }
    let fifo = slides.join("s09b.png");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let scancer_bin = PathBuf::from(env!("CARGO_BIN_EXE_scancer"));
    let command = |extra: &str| {
        format!(
            "{} predict -m {} --tile --all-tiles -q -f jsonl --tiles {}/tiles-$T.jsonl --heatmap {}/maps/ {} {extra}",
            scancer_bin.display(),
            root().join(PCAM).display(),
            work.display(),
            work.display(),
            slides.display(),
        )
    };
    // The README's job, plus the FIFO's writer once the task is requeued.
    let script = work.join("job.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n#SBATCH --array=0-1 --time=1 --requeue --open-mode=append --output={}/log/task-%a.out\n\
             T=$SLURM_ARRAY_TASK_ID\n\
             if [ \"${{SLURM_RESTART_COUNT:-0}}\" -ge 1 ]; then cat {} > {} & fi\n\
             exec {} \n",
            work.display(),
            slide.display(),
            fifo.display(),
            command("--shard \"$T/2\" -o \"$PWD/part-$T.jsonl\" --resume"),
        ),
    )
    .unwrap();
    let submitted = Command::new("sbatch")
        .args(["--parsable", "--chdir"])
        .arg(work)
        .arg(&script)
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    assert!(
        submitted.status.success(),
        "{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    let job = String::from_utf8(submitted.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let tasks = [format!("{job}_0"), format!("{job}_1")];
    // Task 1 holds the FIFO: its time limit kills it; then it is requeued to start at once.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut timed_out = false;
    loop {
        let states: Vec<String> = tasks.iter().map(|t| cluster.state(t)).collect();
        if states.iter().all(|s| s == "COMPLETED") {
            break;
        }
        assert!(
            !states.iter().any(|s| s == "FAILED" || s == "CANCELLED"),
            "{states:?}: {}",
            std::fs::read_to_string(work.join("log/task-1.out")).unwrap_or_default()
        );
        if states[1] == "TIMEOUT" {
            timed_out = true;
            cluster.slurm("scontrol", &["requeue", &tasks[1]]);
            cluster.slurm(
                "scontrol",
                &["update", &format!("jobid={}", tasks[1]), "StartTime=now"],
            );
        }
        assert!(Instant::now() < deadline, "{states:?}: {}", cluster.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(timed_out, "task 1 was never killed at its time limit");
    let out = std::fs::read_to_string(work.join("log/task-1.out")).unwrap();
    assert!(out.contains("DUE TO TIME LIMIT"), "{out}");
    // What the shards wrote; then one unsharded run (the same heatmap folder, which records name),
    // the FIFO fed by a writer.
    let read = |p: &str| std::fs::read(work.join(p)).unwrap();
    let joined = [read("part-0.jsonl"), read("part-1.jsonl")].concat();
    let tiles = [read("tiles-0.jsonl"), read("tiles-1.jsonl")].concat();
    let map = |k: usize| {
        let slide = slides.join(format!("s{k:02}.png"));
        format!(
            "maps/{}.heatmap.png",
            slide.display().to_string().trim_start_matches('/')
        )
    };
    let maps: Vec<Vec<u8>> = (0..12).map(|k| read(&map(k))).collect();
    std::fs::remove_dir_all(work.join("maps")).unwrap();
    let feeder = {
        let (slide, fifo) = (slide.clone(), fifo.clone());
        std::thread::spawn(move || std::fs::write(&fifo, std::fs::read(&slide).unwrap()).unwrap())
    };
    let whole = work.join("whole");
    std::fs::create_dir(&whole).unwrap();
    let alone = Command::new("sh")
        .arg("-c")
        .arg(command("-o whole/all.jsonl").replace("tiles-$T", "whole/tiles"))
        .current_dir(work)
        .output()
        .unwrap();
    feeder.join().unwrap();
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let joined = String::from_utf8(joined).unwrap();
    let whole = String::from_utf8(read("whole/all.jsonl")).unwrap();
    assert_eq!(joined.lines().count(), 13);
    for (k, (a, b)) in joined.lines().zip(whole.lines()).enumerate() {
        assert_eq!(a, b, "record {k}");
    }
    assert!(joined == whole, "the shards' records differ from one run's");
    assert!(
        tiles == read("whole/tiles.jsonl"),
        "the shards' --tiles differ from one run's"
    );
    for (k, bytes) in maps.iter().enumerate() {
        assert!(*bytes == read(&map(k)), "heatmap {k} differs");
    }
}
