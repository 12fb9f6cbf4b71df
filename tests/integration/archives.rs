//! `scancer predict --model X.mar`: TorchServe archives written by torch-model-archiver 0.12 (the
//! fixtures in testdata/mar) and by scancer's own writer, and hostile archives.

use crate::util::*;
use std::path::{Path, PathBuf};

/// TorchServe's built-in image_classifier, reimplemented: parity with PyTorch running
/// Resize(256) + CenterCrop(224) + ImageNet normalisation, in all three archive layouts.
#[test]
fn torch_model_archiver_image_classifier_archives_match_pytorch() {
    let reference = reference();
    let cases = reference["image_classifier"].as_object().unwrap();
    let paths: Vec<&str> = cases.keys().map(String::as_str).collect();
    let labels = ["adipose", "stroma", "tumour", "lymphocytes"];
    for archive in [
        "testdata/mar/tissue.mar",
        "testdata/mar/tissue-tgz.tar.gz",
        "testdata/mar/tissue-dir",
    ] {
        let run = predict(archive, &paths);
        assert_eq!(run.code, 0, "{archive}: {}", run.stderr);
        for (path, want) in cases {
            let got = run.record(path);
            let probabilities = got["probabilities"].as_object().unwrap();
            assert_eq!(probabilities.len(), 4, "top 5 of 4 classes");
            for (k, label) in labels.iter().enumerate() {
                let p = f(&probabilities[*label]);
                let w = f(&want["probabilities"][k]);
                assert!(
                    (p - w).abs() <= 1e-5,
                    "{archive} {path} {label}: scancer {p}, PyTorch {w}"
                );
            }
        }
    }
}

/// An archive of the example pcam model as TorchServe 0.12 lays one out (the model at the root,
/// `MAR-INF/MANIFEST.json`), optionally with its configuration under the name scancer reads from
/// archives, written here with the zip crate rather than by scancer itself.
fn pcam_archive(dir: &Path, with_config: bool) -> PathBuf {
    let (target, handler) = if with_config {
        (dir.join("pcam.mar"), "image_classifier")
    } else {
        (dir.join("pcam-custom.mar"), "pcam_handler.py")
    };
    let manifest = serde_json::json!({
        "createdOn": "27/11/2026 00:00:00",
        "runtime": "python",
        "model": {
            "modelName": "pcam",
            "serializedFile": "pcam-classification.pt",
            "handler": handler,
            "modelVersion": "1.0"
        },
        "archiverVersion": "0.12.0"
    });
    let mut files = vec![
        (
            "pcam-classification.pt",
            std::fs::read(root().join(PCAM)).unwrap(),
        ),
        ("MAR-INF/MANIFEST.json", manifest.to_string().into_bytes()),
    ];
    if with_config {
        files.push((
            "scancer-handler.toml",
            std::fs::read(root().join("examples/pcam-classification.toml")).unwrap(),
        ));
    }
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&target).unwrap());
    for (name, bytes) in files {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file(name, options).unwrap();
        std::io::Write::write_all(&mut zip, &bytes).unwrap();
    }
    zip.finish().unwrap();
    target
}

/// `scancer predict -q -f csv -m MODEL EXTRA... examples/patches`.
fn csv(model: &Path, extra: &[&str]) -> Run {
    run(scancer()
        .args(["predict", "-q", "-f", "csv", "-m"])
        .arg(model)
        .args(extra)
        .arg("examples/patches"))
}

#[test]
fn archive_then_predict_equals_the_bare_model() {
    let dir = tempfile::tempdir().unwrap();
    let bare = csv(Path::new(PCAM), &[]);
    assert_eq!(bare.code, 0, "{}", bare.stderr);
    assert_eq!(bare.stdout.lines().count(), 13);
    let from_archive = csv(&pcam_archive(dir.path(), true), &[]);
    assert_eq!(from_archive.code, 0, "{}", from_archive.stderr);
    assert_eq!(from_archive.stdout, bare.stdout);
}

#[test]
fn custom_python_handlers_need_a_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let archived = pcam_archive(dir.path(), false);
    let out = run(scancer()
        .args(["predict", "-m"])
        .arg(&archived)
        .arg("examples/patches"));
    assert_fatal(&out, "handler \"pcam_handler.py\" is custom Python code and the archive carries no scancer-handler.toml: pass --config FILE");
    let with = csv(&archived, &["-c", "examples/pcam-classification.toml"]);
    assert_eq!(with.code, 0, "{}", with.stderr);
    assert_eq!(with.stdout, csv(Path::new(PCAM), &[]).stdout);
}

#[test]
fn eager_mode_and_hostile_archives_are_fatal() {
    let out = run(scancer().args([
        "predict",
        "-m",
        "testdata/mar/tissue-full.mar",
        "examples/patches",
    ]));
    assert_fatal(
        &out,
        "eager-mode model (modelFile model.py) that needs Python",
    );

    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil.mar");
    let file = std::fs::File::create(&evil).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("../../outside.pt", options).unwrap();
    std::io::Write::write_all(&mut zip, b"x").unwrap();
    zip.finish().unwrap();
    let out = run(scancer()
        .args(["predict", "-m"])
        .arg(&evil)
        .arg("examples/patches"));
    assert_fatal(
        &out,
        "unsafe entry \"../../outside.pt\": leads out of the archive (..)",
    );
    assert!(!dir.path().parent().unwrap().join("outside.pt").exists());

    let not_mar = dir.path().join("notes.mar");
    std::fs::write(&not_mar, b"just text").unwrap();
    assert_fatal(
        &run(scancer()
            .args(["predict", "-m"])
            .arg(&not_mar)
            .arg("examples/patches")),
        "not a model archive",
    );
}

/// `scancer archive ARGS... --export-path DIR`.
fn archive(dir: &Path, args: &[&str]) -> Run {
    run(scancer()
        .arg("archive")
        .args(args)
        .arg("--export-path")
        .arg(dir))
}

const PCAM_ARGS: &[&str] = &[
    "--model-name",
    "pcam-classification",
    "--version",
    "1.0",
    "--serialized-file",
    PCAM,
    "--config",
    "examples/pcam-classification.toml",
];

#[test]
fn archive_command_round_trips_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let bare = csv(Path::new(PCAM), &[]);
    for (format, file) in [
        ("default", "pcam-classification.mar"),
        ("zip-store", "pcam-classification.mar"),
        ("tgz", "pcam-classification.tar.gz"),
        ("no-archive", "pcam-classification"),
    ] {
        let out = archive(
            dir.path(),
            &[PCAM_ARGS, &["--archive-format", format, "--force"]].concat(),
        );
        assert_eq!(out.code, 0, "{format}: {}", out.stderr);
        let target = dir.path().join(file);
        assert_eq!(out.stdout.trim(), target.display().to_string());
        let predicted = csv(&target, &[]);
        assert_eq!(predicted.code, 0, "{format}: {}", predicted.stderr);
        assert_eq!(predicted.stdout, bare.stdout, "{format}");
        if format == "zip-store" {
            let mut zip = zip::ZipArchive::new(std::fs::File::open(&target).unwrap()).unwrap();
            for i in 0..zip.len() {
                assert_eq!(
                    zip.by_index(i).unwrap().compression(),
                    zip::CompressionMethod::Stored
                );
            }
        }
    }
    let tgz = std::process::Command::new("tar")
        .arg("tzf")
        .arg(dir.path().join("pcam-classification.tar.gz"))
        .output()
        .unwrap();
    let listing = String::from_utf8(tgz.stdout).unwrap();
    assert!(
        listing
            .lines()
            .all(|l| l.starts_with("pcam-classification/")),
        "{listing}"
    );
    assert_eq!(
        listing.lines().last().unwrap(),
        "pcam-classification/MAR-INF/MANIFEST.json"
    );
    assert!(dir
        .path()
        .join("pcam-classification/MAR-INF/MANIFEST.json")
        .is_file());
}

#[test]
fn archive_command_refuses_and_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let reproducible = |dir: &Path| {
        run(scancer()
            .args(["archive", "--reproducible", "--force", "--export-path"])
            .arg(dir)
            .args(PCAM_ARGS)
            .env("SOURCE_DATE_EPOCH", "1795737600"))
    };
    assert_eq!(reproducible(dir.path()).code, 0);
    let first = std::fs::read(dir.path().join("pcam-classification.mar")).unwrap();
    assert_eq!(reproducible(dir.path()).code, 0);
    assert_eq!(
        std::fs::read(dir.path().join("pcam-classification.mar")).unwrap(),
        first,
        "same inputs, same bytes"
    );
    let inspect = run(scancer()
        .args(["archive", "inspect"])
        .arg(dir.path().join("pcam-classification.mar"))
        .arg("--verify"));
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    assert!(
        inspect
            .stdout
            .contains("\"createdOn\": \"27/11/2026 00:00:00\""),
        "{}",
        inspect.stdout
    );
    for needle in [
        "scancer_handler.py",
        "scancer-handler.toml",
        "kind = \"binary\"",
        "forward on [1, 3, 96, 96] -> output [1, 1]",
    ] {
        assert!(
            inspect.stdout.contains(needle),
            "inspect shows {needle}: {}",
            inspect.stdout
        );
    }

    let again = archive(dir.path(), PCAM_ARGS);
    assert_fatal(&again, "already exists: pass -f/--force to overwrite it");
    assert_eq!(
        std::fs::read(dir.path().join("pcam-classification.mar")).unwrap(),
        first,
        "untouched"
    );
    assert_fatal(
        &archive(
            dir.path(),
            &[
                "--model-name",
                "../x",
                "-v",
                "1",
                "--handler",
                "image_classifier",
            ],
        ),
        "model name \"../x\" is not allowed",
    );
    assert_fatal(
        &archive(
            dir.path(),
            &["--model-name", "x", "-v", "1", "--serialized-file", PCAM],
        ),
        "pass --handler (a TorchServe handler) or --config",
    );
    assert_fatal(
        &archive(
            dir.path(),
            &[
                "--model-name",
                "x",
                "-v",
                "1",
                "--handler",
                "image_classifier",
                "--extra-files",
                "nowhere.json",
            ],
        ),
        "nowhere.json: no such file",
    );
}

#[test]
fn torch_model_archiver_command_lines_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("sub")).unwrap();
    std::fs::write(
        extra.join("index_to_name.json"),
        br#"{"0": "adipose", "1": "stroma", "2": "tumour", "3": "lymphocytes"}"#,
    )
    .unwrap();
    std::fs::write(extra.join("sub/notes.md"), b"notes").unwrap();
    let out = archive(
        dir.path(),
        &[
            "--model-name",
            "tissue",
            "-v",
            "1.0",
            "--serialized-file",
            MULTICLASS,
            "--handler",
            "image_classifier",
            "--extra-files",
            extra.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mar = dir.path().join("tissue.mar");
    let zip = zip::ZipArchive::new(std::fs::File::open(&mar).unwrap()).unwrap();
    let mut names: Vec<&str> = zip.file_names().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "MAR-INF/MANIFEST.json",
            "index_to_name.json",
            "sub/notes.md",
            "tissue-multiclass.pt"
        ]
    );
    let ours = csv(&mar, &[]);
    let theirs = csv(&root().join("testdata/mar/tissue.mar"), &[]);
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    assert_eq!(
        ours.stdout, theirs.stdout,
        "the same answers as torch-model-archiver's archive"
    );
}

#[test]
fn a_closed_stdout_ends_archive_quietly() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(archive(dir.path(), PCAM_ARGS).code, 0);
    let mar = dir.path().join("pcam-classification.mar");
    let (code, stderr) = with_closed_stdout(
        std::process::Command::new(env!("CARGO_BIN_EXE_scancer"))
            .current_dir(root())
            .arg("archive")
            .arg("inspect")
            .arg(&mar),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains("internal error") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn archives_are_written_with_the_umask_like_any_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (umask, mode) in [("022", 0o644), ("027", 0o640)] {
        // The umask is the shell's, as a user's or a service's would be.
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_scancer"))
            .arg("archive")
            .args(PCAM_ARGS)
            .args(["--force", "--export-path"])
            .arg(dir.path())
            .current_dir(crate::util::root())
            .status()
            .unwrap();
        assert!(status.success());
        let written = dir.path().join("pcam-classification.mar");
        let got = std::fs::metadata(&written).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "umask {umask}: {got:o}");
    }
}
