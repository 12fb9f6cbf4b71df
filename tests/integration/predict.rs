//! `scancer predict` as users and scripts meet it: inputs, formats, errors and exit codes.

use crate::util::*;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[test]
fn every_input_gets_exactly_one_record_in_order() {
    let run = predict(
        PCAM,
        &[
            "testdata/images",
            "examples/patches/patch-03.png",
            "missing.png",
        ],
    );
    assert_eq!(run.code, 1, "some inputs failed: {}", run.stderr);
    let paths: Vec<String> = run
        .records()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = std::fs::read_dir(root().join("testdata/images"))
        .unwrap()
        .map(|e| {
            format!(
                "testdata/images/{}",
                e.unwrap().file_name().to_str().unwrap()
            )
        })
        .collect();
    expected.sort();
    expected.push("examples/patches/patch-03.png".into());
    expected.push("missing.png".into());
    assert_eq!(paths, expected);

    let errors: HashMap<&str, &str> = [
        ("testdata/images/empty.png", "empty file"),
        ("testdata/images/truncated.png", "cannot decode PNG"),
        ("testdata/images/not-an-image.png", "not a supported image"),
        ("testdata/images/corrupt.jpg", "cannot decode JPEG"),
        (
            "testdata/images/truncated.jpg",
            "cannot decode JPEG: the file is truncated",
        ),
        (
            "testdata/images/bomb-100000x100000.png",
            "over the limit of 178956970",
        ),
        (
            "testdata/images/tall-130x160.png",
            "image is 130x160 but the model takes 96x96",
        ),
        (
            "testdata/images/wide-203x80.png",
            "image is 203x80 but the model takes 96x96",
        ),
        (
            "testdata/images/small-50x50.png",
            "image is 50x50 but the model takes 96x96",
        ),
        ("missing.png", "No such file or directory"),
    ]
    .into();
    for record in run.records() {
        let path = record["path"].as_str().unwrap();
        match errors.get(path) {
            Some(needle) => {
                let error = record["error"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{path} should fail"));
                assert!(
                    error.contains(needle),
                    "{path}: {error:?} should contain {needle:?}"
                );
                assert!(record["label"].is_null() && record["score"].is_null());
            }
            None => assert!(record["error"].is_null(), "{path}: {}", record["error"]),
        }
    }
    assert!(
        run.stderr.is_empty(),
        "--quiet: nothing on stderr, got {:?}",
        run.stderr
    );
    let loud =
        crate::util::run(scancer().args(["predict", "-m", PCAM, "-f", "jsonl", "testdata/images"]));
    assert_eq!(loud.code, 1);
    assert!(
        loud.stderr.contains("failed"),
        "a summary says inputs failed: {}",
        loud.stderr
    );
}

#[test]
fn all_good_exits_zero_and_table_is_the_default() {
    let out = run(scancer().args([
        "predict",
        "-m",
        PCAM,
        "examples/patches/patch-00.png",
        "examples/patches/patch-06.png",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PATH", "LABEL", "SCORE"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["examples/patches/patch-00.png", "metastatic", "0.8155"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["examples/patches/patch-06.png", "normal", "0.9276"]
    );
    assert!(
        !out.stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr off a terminal when all is well: {:?}",
        out.stderr
    );
}

#[test]
fn unlabelled_binary_answers_like_torchserve() {
    let path = "examples/patches/patch-00.png";
    let r = predict(PCAM, &["-c", "testdata/configs/pcam-unlabelled.toml", path]).record(path);
    assert_eq!(r["label"], "1");
    assert_eq!(r["class"], 1);
    assert!(r["probabilities"]["1"].is_number() && r["probabilities"]["0"].is_number());
}

#[test]
fn json_csv_and_atomic_output_files() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "json", "-o"])
        .arg(&json)
        .arg("examples/patches"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 12);

    let csv = dir.path().join("r.csv");
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "csv", "-o"])
        .arg(&csv)
        .args(["examples/patches", "testdata/images/empty.png"]));
    assert_eq!(out.code, 1);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "path,label,class,score,p:normal,p:metastatic,error"
    );
    assert!(lines
        .next()
        .unwrap()
        .starts_with("examples/patches/patch-00.png,metastatic,1,0.81553"));
    assert_eq!(
        text.lines().last().unwrap(),
        "testdata/images/empty.png,,,,,,empty file"
    );
    assert_eq!(text.lines().count(), 14);

    // A fatal error leaves no partial file behind, and does not touch an existing one.
    std::fs::write(&json, b"previous").unwrap();
    let out = run(scancer()
        .args([
            "predict",
            "-m",
            "testdata/models/not-torchscript.pt",
            "-c",
            "examples/pcam-classification.toml",
            "-o",
        ])
        .arg(&json)
        .arg("examples/patches"));
    assert_eq!(out.code, 2);
    assert_eq!(std::fs::read(&json).unwrap(), b"previous");
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".scancer")
        })
        .count();
    assert_eq!(leftovers, 0, "no temporary files left");
}

#[test]
fn shards_concatenate_to_the_whole_run() {
    // Every format: shard 0 writes the header, the first and last shards JSON's brackets.
    for format in ["csv", "jsonl", "json", "table"] {
        let part = |extra: &[&str]| {
            run(scancer()
                .args(["predict", "-m", PCAM, "-q", "-f", format])
                .args(extra)
                .args(["examples/patches", "testdata/images"]))
        };
        let whole = part(&[]);
        for n in [2, 3, 40] {
            let joined: String = (0..n)
                .map(|k| part(&["--shard", &format!("{k}/{n}")]).stdout)
                .collect();
            assert_eq!(joined, whole.stdout, "{format}, {n} shards");
        }
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(&whole.stdout).unwrap();
            assert!(v.as_array().unwrap().len() > 30);
        }
    }
    let bad = run(scancer().args(["predict", "-m", PCAM, "--shard", "3/3", "examples/patches"]));
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("K must be below N"), "{}", bad.stderr);
}

#[test]
fn standard_input() {
    let bytes = std::fs::read(root().join("examples/patches/patch-02.png")).unwrap();
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "jsonl", "-"])
        .write_stdin(bytes));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let from_file = predict(PCAM, &["examples/patches/patch-02.png"]).records();
    let r = out.record("-");
    assert_eq!(r["probabilities"], from_file[0]["probabilities"]);
    let twice = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "jsonl", "-", "-"])
        .write_stdin(Vec::new()));
    assert_eq!(twice.code, 1);
    assert_eq!(twice.records().len(), 2, "both dashes answered");
}

#[test]
fn directory_walk_reports_loops_dangling_links_and_odd_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_to(d, "examples/patches/patch-00.png", "a.png");
    copy_to(d, "examples/patches/patch-01.png", "no-extension");
    std::fs::write(d.join("notes.txt"), b"not an image").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink(d, d.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink(d.join("gone.png"), d.join("dangling.png")).unwrap();
    let odd = d.join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"));
    std::fs::copy(root().join("examples/patches/patch-02.png"), &odd).unwrap();

    let out = run(scancer()
        .args(["predict", "-m"])
        .arg(root().join(PCAM))
        .args(["-f", "jsonl"])
        .arg(d)
        .current_dir(d));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let records = out.records();
    let names: Vec<String> = records
        .iter()
        .map(|r| {
            Path::new(r["path"].as_str().unwrap())
                .strip_prefix(d)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "a.png",
            "caf\u{fffd}.png",
            "dangling.png",
            "no-extension",
            "sub/loop"
        ]
    );
    assert!(records[0]["error"].is_null());
    assert!(
        records[1]["error"].is_null(),
        "a non-UTF-8 name is still predicted"
    );
    assert!(
        records[2]["error"]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "{}",
        records[2]
    );
    assert!(records[3]["error"].is_null(), "found by content");
    assert!(
        records[4]["error"]
            .as_str()
            .unwrap()
            .contains("symbolic link loop"),
        "{}",
        records[4]
    );
    assert!(out.stderr.contains("skipped 1 file"), "{}", out.stderr);
}

#[test]
fn empty_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "json"])
        .arg(dir.path()));
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "[]\n");
    assert!(out.stderr.contains("no images found"), "{}", out.stderr);
}

#[test]
fn model_and_configuration_errors_are_fatal_one_liners() {
    let cases: &[(&[&str], &str)] = &[
        (&["-m", "testdata/models/not-torchscript.pt", "-c", "examples/pcam-classification.toml"], "not-torchscript.pt: cannot load TorchScript model"),
        (&["-m", "nowhere.pt"], "nowhere.pt: no such model file"),
        (&["-m", "testdata/models/not-torchscript.pt"], "not-torchscript.pt: not a model: neither a model archive"),
        (&["-m", "examples/patches/patch-00.png"], "patch-00.png: not a model: neither a model archive"),
        (&["-m", PCAM, "-c", "testdata/configs/malformed.toml"], "malformed.toml: invalid handler configuration at line 5"),
        (&["-m", PCAM, "-c", "missing.toml"], "missing.toml: cannot read handler configuration"),
        (&["-m", MULTICLASS, "-c", "testdata/configs/multiclass-as-binary.toml"], "model output shape [16, 4] does not fit kind = \"binary\""),
        (&["-m", PCAM, "-c", "testdata/configs/pcam-wrong-input.toml"], "pcam-classification.pt: the model does not fit its handler configuration: on a [16, 3, 64, 64] input"),
        (&["-m", PCAM, "--device", "cuda"], "CUDA was requested but is not available"),
    ];
    for (args, needle) in cases {
        let out = run(scancer().arg("predict").args(*args).arg("examples/patches"));
        assert_fatal(&out, needle);
    }
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        &["predict"][..],
        &["predict", "x.png"],
        &["predict", "-m", PCAM, "-b", "0", "x.png"],
        &["frobnicate"],
    ] {
        let out = run(scancer().args(args));
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn segmentation_mask_names_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    copy_to(&a, "testdata/images/patch-gray.png", "x.png");
    copy_to(&b, "testdata/images/patch-rgb.png", "x.png");
    let out_file = dir.path().join("out.jsonl");
    let out = run(scancer()
        .args(["predict", "-m", SEGMENTATION, "-f", "jsonl", "-o"])
        .arg(&out_file)
        .arg(&a)
        .arg(&b));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let masks = dir.path().join("out-masks");
    let mut names: Vec<String> = std::fs::read_dir(&masks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["x-2.mask.png", "x.mask.png"]);
}

#[test]
fn help_is_complete() {
    let out = run(scancer().args(["predict", "--help"]));
    assert_eq!(out.code, 0);
    for flag in [
        "--model",
        "--config",
        "--format",
        "--output",
        "--batch-size",
        "--threads",
        "--device",
        "--shard",
        "--quiet",
        "Exit status",
    ] {
        assert!(out.stdout.contains(flag), "predict --help mentions {flag}");
    }
}

#[test]
fn auto_device_falls_back_to_the_cpu_with_the_same_answers() {
    let path = "examples/patches/patch-05.png";
    let cpu = predict(PCAM, &[path]).record(path);
    let auto = predict(PCAM, &["--device", "auto", path]).record(path);
    assert_eq!(cpu["probabilities"], auto["probabilities"]);
}

#[test]
fn colour_follows_the_flag() {
    let out = run(scancer().args([
        "predict",
        "-m",
        PCAM,
        "--color",
        "always",
        "testdata/images/empty.png",
    ]));
    assert!(
        out.stdout.contains("\x1b[31merror\x1b[0m"),
        "{:?}",
        out.stdout
    );
    let out = run(scancer().args([
        "predict",
        "-m",
        PCAM,
        "--color",
        "never",
        "testdata/images/empty.png",
    ]));
    assert!(!out.stdout.contains('\x1b'));
}

#[test]
fn unwritable_output_is_a_fatal_error() {
    let out = run(scancer().args([
        "predict",
        "-m",
        PCAM,
        "-o",
        "no/such/dir/out.json",
        "examples/patches",
    ]));
    assert_fatal(&out, "no/such/dir/out.json: cannot create the output file");
}

#[test]
fn outputs_never_clobber_devices_links_or_modes() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let one = "examples/patches/patch-00.png";
    // A character device is written in place, never replaced by a regular file.
    let out = run(scancer().args(["predict", "-m", PCAM, "-f", "csv", "-o", "/dev/null", one]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(
        null.file_type().is_char_device(),
        "/dev/null is still a device"
    );
    assert!(!std::path::Path::new("/dev/null.partial").exists());
    // So is a FIFO: its reader gets the records.
    let fifo = dir.path().join("results.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "jsonl", "-o"])
        .arg(&fifo)
        .arg(one));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(reader.join().unwrap().contains("patch-00.png"));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // A symbolic link is written through, and the file it points at keeps its mode.
    let real = dir.path().join("real.jsonl");
    std::fs::write(&real, "old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink("real.jsonl", &link).unwrap();
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "jsonl", "-o"])
        .arg(&link)
        .arg(one));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains("patch-00.png"));
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // A new file honours the umask, so colleagues can read it.
    for (umask, mode) in [("022", 0o644), ("027", 0o640)] {
        let new = dir.path().join(format!("new-{umask}.jsonl"));
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask {umask} && exec \"$0\" predict -q -m {PCAM} -f jsonl -o \"$1\" {one}"
            ))
            .arg(env!("CARGO_BIN_EXE_scancer"))
            .arg(&new)
            .current_dir(crate::util::root())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::metadata(&new).unwrap().permissions().mode() & 0o777,
            mode
        );
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".partial")));
}

#[test]
fn hints_point_at_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A 2,000 x 2,000 scan region without --tile.
    let big = dir.path().join("region.png");
    image::RgbImage::from_pixel(2000, 2000, image::Rgb([200, 120, 160]))
        .save(&big)
        .unwrap();
    // Vendor slide formats, whatever their bytes.
    let svs = dir.path().join("case.svs");
    std::fs::write(&svs, b"II*\0not really").unwrap();
    let ndpi = dir.path().join("case.ndpi");
    std::fs::write(&ndpi, b"II*\0not really").unwrap();
    // macOS resource forks beside the images are skipped, not errors.
    std::fs::copy(
        crate::util::root().join("examples/patches/patch-00.png"),
        dir.path().join("patch.png"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("._patch.png"),
        b"\0\x05\x16\x07 resource fork",
    )
    .unwrap();
    let out = predict(PCAM, &[dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(out.records().len(), 4, "{}", out.stdout);
    let region = out.record(big.to_str().unwrap());
    let message = region["error"].as_str().unwrap();
    assert!(
        message.contains("image is 2000x2000 but the model takes 96x96"),
        "{message}"
    );
    assert!(message.contains("add --tile"), "{message}");
    for (path, kind) in [(&svs, "SVS"), (&ndpi, "NDPI")] {
        let message = out.record(path.to_str().unwrap())["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.starts_with(&format!(
                "{kind} is a whole-slide format: predict it with --tile, through OpenSlide"
            )),
            "{message}"
        );
        assert!(message.contains("openslide"), "{message}");
    }
    assert!(out.record(dir.path().join("patch.png").to_str().unwrap())["error"].is_null());
}

#[test]
fn a_fatal_error_keeps_finished_records_and_says_how_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("r.jsonl");
    let partial = dir.path().join("r.jsonl.partial");
    // An interrupted run's leftovers are never overwritten by a fresh run.
    std::fs::write(
        &partial,
        "{\"path\":\"examples/patches/patch-00.png\",\"error\":null}\n",
    )
    .unwrap();
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "jsonl", "-o"])
        .arg(&out_file)
        .arg("examples/patches"));
    crate::util::assert_fatal(
        &out,
        "r.jsonl.partial holds the records of an interrupted run: add --resume",
    );
    // --resume checks that they are this run's records.
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "jsonl", "--resume", "-o"])
        .arg(&out_file)
        .arg("testdata/images"));
    crate::util::assert_fatal(&out, "it was written for other inputs");
    // The same inputs: the recorded one is skipped, the rest appended; the result equals a fresh run.
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "jsonl", "--resume", "-o"])
        .arg(&out_file)
        .arg("examples/patches"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("resuming: 1 of 12 input(s) already recorded"),
        "{}",
        out.stderr
    );
    let resumed = std::fs::read_to_string(&out_file).unwrap();
    assert!(!partial.exists());
    let fresh = predict(PCAM, &["examples/patches"]);
    let (a, b): (Vec<&str>, Vec<&str>) =
        (resumed.lines().collect(), fresh.stdout.lines().collect());
    assert_eq!(a.len(), 12);
    assert_eq!(a[1..], b[1..]);
    // --resume needs a file to resume.
    let out = run(scancer().args([
        "predict",
        "-m",
        PCAM,
        "--resume",
        "-f",
        "jsonl",
        "examples/patches",
    ]));
    crate::util::assert_fatal(&out, "--resume needs --output FILE");
}

#[test]
fn a_closed_stdout_ends_predict_quietly() {
    for args in [
        vec!["predict", "-m", PCAM, "examples/patches"],
        vec!["predict", "-m", PCAM, "-f", "csv", "examples/patches"],
        vec!["--help"],
    ] {
        let (code, stderr) = crate::util::with_closed_stdout(
            std::process::Command::new(env!("CARGO_BIN_EXE_scancer"))
                .current_dir(crate::util::root())
                .args(&args),
        );
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("internal error"), "{args:?}: {stderr}");
    }
}
