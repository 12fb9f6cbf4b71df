//! `scancer predict --model X.mar`: TorchServe archives written by torch-model-archiver 0.12 (the
//! fixtures in testdata/mar) and by scancer's own writer, and hostile archives.

mod common;

use common::*;
use scancer::mar::entries::Entries;
use scancer::mar::manifest::{Manifest, ModelSection, ARCHIVER_VERSION};
use scancer::mar::write::{write_zip, Compression};
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

fn manifest(name: &str, handler: &str) -> Manifest {
    Manifest {
        created_on: "27/11/2026 00:00:00".into(),
        runtime: "python".into(),
        model: ModelSection {
            model_name: name.into(),
            serialized_file: Some("pcam-classification.pt".into()),
            handler: handler.into(),
            model_file: None,
            model_version: "1.0".into(),
            requirements_file: None,
            config_file: None,
        },
        archiver_version: ARCHIVER_VERSION.into(),
    }
}

/// An archive of the example pcam model, optionally with its configuration under the name scancer
/// reads from archives.
fn pcam_archive(dir: &Path, with_config: bool) -> PathBuf {
    let mut entries = Entries::default();
    entries.add_file(&root().join(PCAM)).unwrap();
    let mut list = entries.into_vec();
    if with_config {
        list.push(scancer::mar::entries::Entry {
            name: scancer::model_source::ARCHIVED_CONFIG.into(),
            source: root().join("examples/pcam-classification.toml"),
        });
    }
    let target = dir.join(if with_config {
        "pcam.mar"
    } else {
        "pcam-custom.mar"
    });
    let handler = if with_config {
        "image_classifier"
    } else {
        "pcam_handler.py"
    };
    write_zip(
        &list,
        &manifest("pcam", handler),
        &target,
        Compression::Auto,
        zip::DateTime::default(),
        false,
    )
    .unwrap();
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
