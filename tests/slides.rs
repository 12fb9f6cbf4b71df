//! Whole slides: tiling, tissue detection, per-window probabilities equal to single patches, the
//! streaming readers agreeing with each other, and the heatmap.

mod common;

use common::{predict, root, run, scancer, Run, PCAM};
use serde_json::Value;

const SLIDES: [&str; 4] = [
    "testdata/slides/tissue.png",
    "testdata/slides/tissue-tiled.tif",
    "testdata/slides/tissue-strips.tif",
    "testdata/slides/tissue-bigtiff.tif",
];

fn slide(args: &[&str]) -> Run {
    run(scancer()
        .args(["predict", "-m", PCAM, "--tile", "-q"])
        .args(args))
}

/// The rows of a --tiles CSV without the path column.
fn tile_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let after_path = l.rsplitn(9, ',').collect::<Vec<_>>();
            after_path
                .into_iter()
                .rev()
                .skip(1)
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn grid_padding_and_tissue_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let tiles = dir.path().join("tiles.csv");
    let out = slide(&["-f", "jsonl", "--tiles", tiles.to_str().unwrap(), SLIDES[0]]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    // 400 x 300 in 96-pixel windows: 5 across (the last padded with white), 4 down.
    assert_eq!(record["slide"]["tiles"], 20);
    assert_eq!(record["slide"]["width"], 400);
    let rows = tile_rows(&tiles);
    assert_eq!(rows.len(), 20);
    let origins: Vec<(usize, usize)> = rows
        .iter()
        .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
        .collect();
    assert_eq!(
        origins[..6],
        [(0, 0), (96, 0), (192, 0), (288, 0), (384, 0), (0, 96)]
    );
    // Tissue as generated: two windows of the first region, three touched by the second (the faint
    // corner stays background, and one window sees too little of the second region).
    let tissue: Vec<(usize, usize)> = rows
        .iter()
        .zip(&origins)
        .filter(|(r, _)| r[4] == "true")
        .map(|(_, o)| *o)
        .collect();
    assert_eq!(
        tissue,
        [(96, 96), (192, 96), (288, 192), (384, 192), (288, 288)]
    );
    assert_eq!(record["slide"]["tissue_tiles"], 5);
    // Background windows are not run.
    for r in rows.iter().filter(|r| r[4] == "false") {
        assert_eq!(r[6], "0");
        assert_eq!(r[7], "");
    }
    // Every window, with --all-tiles.
    let all = slide(&["-f", "jsonl", "--all-tiles", SLIDES[0]]);
    let record: Value = serde_json::from_str(all.stdout.trim()).unwrap();
    assert_eq!(record["slide"]["tissue_tiles"], 20);
}

#[test]
fn a_windows_probability_equals_predict_on_that_window_alone() {
    let dir = tempfile::tempdir().unwrap();
    let tiles = dir.path().join("tiles.jsonl");
    let out = slide(&["--tiles", tiles.to_str().unwrap(), SLIDES[0]]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let slide_image = image::open(root().join(SLIDES[0])).unwrap().to_rgb8();
    let mut checked = 0;
    for line in std::fs::read_to_string(&tiles).unwrap().lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        if t["tissue"] != true {
            continue;
        }
        let (x, y) = (
            t["x"].as_u64().unwrap() as u32,
            t["y"].as_u64().unwrap() as u32,
        );
        // The window as its own file, padded with white where it leaves the slide.
        let mut window = image::RgbImage::from_pixel(96, 96, image::Rgb([255, 255, 255]));
        for j in 0..96 {
            for i in 0..96 {
                if x + i < slide_image.width() && y + j < slide_image.height() {
                    window.put_pixel(i, j, *slide_image.get_pixel(x + i, y + j));
                }
            }
        }
        let file = dir.path().join(format!("window-{x}-{y}.png"));
        window.save(&file).unwrap();
        let alone = predict(PCAM, &[file.to_str().unwrap()]);
        let record = &alone.records()[0];
        assert_eq!(
            record["probabilities"]["metastatic"], t["probability"],
            "window {x},{y}"
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn streamed_png_tiled_striped_and_bigtiff_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for (k, path) in SLIDES.iter().enumerate() {
        let tiles = dir.path().join(format!("{k}.csv"));
        let out = slide(&["--stride", "48", "--tiles", tiles.to_str().unwrap(), path]);
        assert_eq!(out.code, 0, "{path}: {}", out.stderr);
        seen.push(tile_rows(&tiles));
    }
    // Stride 48 < window 96: 8 across (0 to 336), 6 down (0 to 240).
    assert_eq!(seen[0].len(), 8 * 6);
    for rows in &seen[1..] {
        assert_eq!(rows, &seen[0]);
    }
    // A JPEG cannot be streamed: decoded whole, and said so.
    let jpeg = run(scancer().args([
        "predict",
        "-m",
        PCAM,
        "--tile",
        "testdata/slides/tissue.jpg",
    ]));
    assert_eq!(jpeg.code, 0);
    assert!(
        jpeg.stderr.contains("JPEG cannot be read in strips"),
        "{}",
        jpeg.stderr
    );
    let bad = slide(&["--stride", "200", SLIDES[0]]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stdout
            .contains("--stride 200 must be between 1 and the window size (96)"),
        "{}",
        bad.stdout
    );
}

#[test]
fn heatmaps_in_plasma_colours_and_directories_of_slides() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("map.png");
    let tiles = dir.path().join("tiles.jsonl");
    let out = slide(&[
        "--heatmap",
        map.to_str().unwrap(),
        "--heatmap-size",
        "100",
        "--tiles",
        tiles.to_str().unwrap(),
        SLIDES[0],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let image = image::open(&map).unwrap().to_rgb8();
    // 400 x 300 at 4 slide pixels per heatmap pixel.
    assert_eq!(image.dimensions(), (100, 75));
    // Background is plasma(0); a tissue window's pixels are plasma(its probability).
    assert_eq!(image.get_pixel(5, 5).0, [12, 7, 134]);
    let first_tissue: Value = std::fs::read_to_string(&tiles)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|t| t["tissue"] == true)
        .unwrap();
    let p = first_tissue["probability"].as_f64().unwrap() as f32;
    let (x, y) = (
        first_tissue["x"].as_u64().unwrap() as u32,
        first_tissue["y"].as_u64().unwrap() as u32,
    );
    assert_eq!(
        image.get_pixel(x / 4 + 12, y / 4 + 12).0,
        scancer::slide::plasma::colour(p)
    );

    // Smoothed and overlaid: same size, different pixels, still a PNG.
    let smooth = dir.path().join("smooth.png");
    let out = slide(&[
        "--heatmap",
        smooth.to_str().unwrap(),
        "--heatmap-size",
        "100",
        "--smooth",
        "40",
        "--overlay",
        SLIDES[0],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let blended = image::open(&smooth).unwrap().to_rgb8();
    assert_eq!(blended.dimensions(), (100, 75));
    assert_ne!(blended, image);

    // Several slides: one record each, heatmaps named after the slides in the folder.
    let maps = dir.path().join("maps");
    let out = slide(&[
        "-f",
        "jsonl",
        "--heatmap",
        maps.to_str().unwrap(),
        "testdata/slides",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 5);
    let mut names: Vec<String> = std::fs::read_dir(&maps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "tissue-2-heatmap.png",
            "tissue-bigtiff-heatmap.png",
            "tissue-heatmap.png",
            "tissue-strips-heatmap.png",
            "tissue-tiled-heatmap.png"
        ]
    );
}

#[test]
fn patches_in_slide_mode_answer_as_plain_predict() {
    let plain = predict(
        PCAM,
        &[
            "examples/patches/patch-00.png",
            "testdata/images/small-50x50.png",
        ],
    );
    let tiled = slide(&[
        "-f",
        "jsonl",
        "examples/patches/patch-00.png",
        "testdata/images/small-50x50.png",
    ]);
    assert_eq!(tiled.code, 1);
    for (p, t) in plain.records().iter().zip(tiled.records()) {
        let mut t = t.clone();
        assert_eq!(t["slide"], Value::Null);
        t.as_object_mut().unwrap().shift_remove("slide");
        assert_eq!(p["probabilities"], t["probabilities"]);
        assert_eq!(p["error"].is_null(), t["error"].is_null());
    }
}

#[test]
fn plasma_is_matplotlibs() {
    let text = std::fs::read_to_string(root().join("testdata/plasma-matplotlib.json")).unwrap();
    let table: Value = serde_json::from_str(&text).unwrap();
    let values = table["values"].as_array().unwrap();
    let rgb = table["rgb"].as_array().unwrap();
    assert!(values.len() > 100);
    for (x, want) in values.iter().zip(rgb) {
        let want: Vec<u8> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(
            scancer::slide::plasma::colour(x.as_f64().unwrap() as f32).to_vec(),
            want,
            "{x}"
        );
    }
}

#[test]
fn a_real_tissue_section() {
    // scikit-image's ihc.png, fetched by `cargo xtask setup` (see .cargo/config.toml).
    let ihc = std::env::var("SCANCER_IHC").expect(
        "SCANCER_IHC is set by .cargo/config.toml; run `cargo xtask setup` to fetch ihc.png",
    );
    assert!(
        std::path::Path::new(&ihc).is_file(),
        "{ihc} is missing: run `cargo xtask setup`"
    );
    let dir = tempfile::tempdir().unwrap();
    let tiles = dir.path().join("tiles.jsonl");
    let map = dir.path().join("ihc-heatmap.png");
    let out = slide(&[
        "-f",
        "jsonl",
        "--tiles",
        tiles.to_str().unwrap(),
        "--heatmap",
        map.to_str().unwrap(),
        "--overlay",
        &ihc,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    // 512 x 512: 6 x 6 windows; the section is stained tissue nearly everywhere, with some glass.
    assert_eq!(record["slide"]["tiles"], 36);
    let tissue = record["slide"]["tissue_tiles"].as_u64().unwrap();
    assert!((18..36).contains(&tissue), "{tissue} tissue windows");
    // The most suspicious window is the record's prediction.
    let rows: Vec<Value> = std::fs::read_to_string(&tiles)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let max = rows
        .iter()
        .map(|t| t["probability"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(record["slide"]["max_probability"].as_f64().unwrap(), max);
    let heatmap = image::open(&map).unwrap();
    assert_eq!((heatmap.width(), heatmap.height()), (512, 512));
}

/// A generic tiled-TIFF pyramid (levels 400x300 and 200x150, from tissue.png) named .svs, so that it
/// takes the path an Aperio SVS takes.
const PYRAMID: &str = "testdata/pyramid/tissue.svs";

/// tissue.png as a JPEG-compressed tiled TIFF (RGB), which only OpenSlide decodes here.
const JPEG_TIFF: &str = "testdata/pyramid/tissue-jpeg.tif";

#[cfg(not(feature = "openslide"))]
#[test]
fn pyramidal_formats_name_the_openslide_feature() {
    let out = slide(&[PYRAMID]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("SVS slides are read through OpenSlide, which this build leaves out: build scancer with `cargo build --release --features openslide`"), "{}", out.stdout);
    let out = slide(&["--level", "1", SLIDES[0]]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("--level 1 reads a pyramid through OpenSlide"),
        "{}",
        out.stdout
    );
    let out = slide(&[JPEG_TIFF]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "JPEG-compressed TIFF is read through OpenSlide, which this build leaves out"
        ),
        "{}",
        out.stdout
    );
}

#[cfg(feature = "openslide")]
#[test]
fn pyramids_through_openslide() {
    let lib = std::env::var("SCANCER_OPENSLIDE").unwrap_or_default();
    assert!(
        std::path::Path::new(&lib).is_file(),
        "SCANCER_OPENSLIDE={lib:?}: run `cargo xtask setup`"
    );
    let dir = tempfile::tempdir().unwrap();
    // Level 0 through OpenSlide: the windows of the PNG the pyramid was made from.
    let (from_png, from_openslide) = (dir.path().join("png.csv"), dir.path().join("svs.csv"));
    assert_eq!(
        slide(&["--tiles", from_png.to_str().unwrap(), SLIDES[0]]).code,
        0
    );
    let out = slide(&["--tiles", from_openslide.to_str().unwrap(), PYRAMID]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(tile_rows(&from_openslide), tile_rows(&from_png));
    // Level 1: half the size.
    let out = slide(&["-f", "jsonl", "--level", "1", PYRAMID]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        (
            record["slide"]["width"].as_u64(),
            record["slide"]["height"].as_u64()
        ),
        (Some(200), Some(150))
    );
    assert_eq!(record["slide"]["tiles"], 6);
    // JPEG tiles: lossy, but the same tissue.
    let out = slide(&["-f", "jsonl", JPEG_TIFF]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(record["slide"]["tissue_tiles"], 5);
    let out = slide(&["-f", "jsonl", "--level", "5", PYRAMID]);
    assert!(
        out.stdout
            .contains("--level 5: the slide has levels 0 to 1"),
        "{}",
        out.stdout
    );
}
