//! Whole slides: tiling, tissue detection, per-window probabilities equal to single patches, the
//! streaming readers agreeing with each other, and the heatmap.

use crate::util::{predict, root, run, scancer, Run, PCAM};

/// The heatmap's colour table, compiled from its own source (src/slide/plasma.rs, checked against
/// matplotlib by its unit test), to find where each colour must be.
#[path = "../../src/slide/plasma.rs"]
#[allow(dead_code)]
pub(crate) mod plasma;
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

/// The rows of a --tiles CSV without the path column, the eight columns every model's rows have
/// (x, y, width, height, tissue, saturation, probability, label; the per-class `prob_` columns
/// left out). The path may hold commas: the columns are counted from the right.
fn tile_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let columns = text.lines().next().unwrap().split(',').count();
    text.lines()
        .skip(1)
        .map(|l| {
            let after_path = l.rsplitn(columns, ',').collect::<Vec<_>>();
            after_path
                .into_iter()
                .rev()
                .skip(1)
                .take(8)
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
    // Tissue as generated: two windows of the first region, four touched by the second (the faint
    // corner stays background). The bottom-right corner window is 16 x 12 real pixels and 80 x 84 of
    // padding: judged on its real pixels, it is tissue.
    let tissue: Vec<(usize, usize)> = rows
        .iter()
        .zip(&origins)
        .filter(|(r, _)| r[4] == "true")
        .map(|(_, o)| *o)
        .collect();
    assert_eq!(
        tissue,
        [
            (96, 96),
            (192, 96),
            (288, 192),
            (384, 192),
            (288, 288),
            (384, 288)
        ]
    );
    assert_eq!(record["slide"]["tissue_tiles"], 6);
    assert_eq!(record["slide"]["tissue_fraction"], 0.3);
    // Background windows are not run: no probability, no label (not "probability 0").
    for r in rows.iter().filter(|r| r[4] == "false") {
        assert_eq!(r[6], "");
        assert_eq!(r[7], "");
    }
    // Every window with --all-tiles: glass is still not tissue, and the summary counts tissue only.
    let all_tiles = dir.path().join("all.csv");
    let all = slide(&[
        "-f",
        "jsonl",
        "--all-tiles",
        "--tiles",
        all_tiles.to_str().unwrap(),
        SLIDES[0],
    ]);
    let all_record: Value = serde_json::from_str(all.stdout.trim()).unwrap();
    assert_eq!(all_record["slide"], record["slide"]);
    assert_eq!(all_record["probabilities"], record["probabilities"]);
    let all_rows = tile_rows(&all_tiles);
    for (a, r) in all_rows.iter().zip(&rows) {
        assert_eq!(a[4], r[4], "the tissue flag is the tissue test's");
        assert!(!a[6].is_empty(), "every window ran");
        if r[4] == "true" {
            assert_eq!(a[6], r[6]);
        }
    }
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
    assert_eq!(checked, 6);
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
    // 400 x 300 at 4 slide pixels per heatmap pixel: a 100 x 75 map, and the legend below it (at
    // least 240 wide).
    assert_eq!(image.dimensions(), (240, 75 + 56));
    // Glass is grey, not plasma(0), the colour of a confidently benign window; a tissue window's
    // pixels are plasma(its probability).
    assert_eq!(image.get_pixel(5, 5).0, [128, 128, 128]);
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
    assert_eq!(image.get_pixel(x / 4 + 12, y / 4 + 12).0, plasma::colour(p));

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
    assert_eq!(blended.dimensions(), (240, 75 + 56));
    assert_ne!(blended, image);

    // Several slides: one record each, heatmaps mirroring the slides' paths in the folder.
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
    let mut names: Vec<String> = std::fs::read_dir(maps.join("testdata/slides"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "tissue-bigtiff.tif.heatmap.png",
            "tissue-strips.tif.heatmap.png",
            "tissue-tiled.tif.heatmap.png",
            "tissue.jpg.heatmap.png",
            "tissue.png.heatmap.png",
        ]
    );
    for record in out.records() {
        let file = record["slide"]["heatmap"].as_str().unwrap();
        let shown = record["path"].as_str().unwrap();
        assert!(file.ends_with(&format!("{shown}.heatmap.png")), "{file}");
    }
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
fn a_real_tissue_section() {
    // scikit-image's ihc.png, fetched by `cargo xtask setup` (see .cargo/config.toml).
    let Some(ihc) = crate::util::fetched("SCANCER_IHC", "a_real_tissue_section") else {
        return;
    };
    let ihc = ihc.to_str().unwrap();
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
        ihc,
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
        .filter_map(|t| t["probability"].as_f64())
        .fold(0.0, f64::max);
    assert_eq!(record["slide"]["max_probability"].as_f64().unwrap(), max);
    let heatmap = image::open(&map).unwrap();
    assert_eq!((heatmap.width(), heatmap.height()), (512, 512 + 56));
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
    if crate::util::fetched("SCANCER_OPENSLIDE", "pyramids_through_openslide").is_none() {
        return;
    }
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
    // Level 1: half the size, read in windows of 192 level-0 pixels; sizes stay level 0's.
    let level1 = dir.path().join("level1.csv");
    let out = slide(&[
        "-f",
        "jsonl",
        "--level",
        "1",
        "--tiles",
        level1.to_str().unwrap(),
        PYRAMID,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        (
            record["slide"]["width"].as_u64(),
            record["slide"]["height"].as_u64(),
            record["slide"]["level"].as_u64(),
            record["slide"]["downsample"].as_u64(),
        ),
        (Some(400), Some(300), Some(1), Some(2))
    );
    assert_eq!(record["slide"]["tiles"], 6);
    let origins: Vec<(String, String, String)> = tile_rows(&level1)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(origins[1], ("192".into(), "0".into(), "192".into()));
    assert_eq!(origins[3], ("0".into(), "192".into(), "192".into()));
    // Edge windows clipped to the slide at level 1 too (level-0 pixels).
    for row in tile_rows(&level1) {
        let [x, y, w, h] = [0, 1, 2, 3].map(|k| row[k].parse::<u64>().unwrap());
        assert!(x + w <= 400 && y + h <= 300, "{row:?}");
    }
    // JPEG tiles: lossy, but the same tissue.
    let out = slide(&["-f", "jsonl", JPEG_TIFF]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(record["slide"]["tissue_tiles"], 6);
    let out = slide(&["-f", "jsonl", "--level", "5", PYRAMID]);
    assert!(
        out.stdout
            .contains("--level 5: the slide has levels 0 to 1"),
        "{}",
        out.stdout
    );
}

/// A PNG slide: white, with `paint` colouring some pixels.
fn png_slide(path: &std::path::Path, w: u32, h: u32, paint: impl Fn(u32, u32) -> Option<[u8; 3]>) {
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb(paint(x, y).unwrap_or([255, 255, 255]))
    });
    image.save(path).unwrap();
}

#[test]
fn a_slide_without_tissue_has_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.png");
    png_slide(&blank, 500, 400, |_, _| None);
    // Under-stained: saturation 0.03, below the tissue threshold everywhere.
    let faint = dir.path().join("faint.png");
    png_slide(&faint, 500, 400, |_, _| Some([250, 245, 243]));
    let (blank, faint) = (blank.to_str().unwrap(), faint.to_str().unwrap());
    let out = slide(&["-f", "jsonl", blank, SLIDES[0], faint]);
    assert_eq!(out.code, 1, "a slide without tissue counts as failed");
    for path in [blank, faint] {
        let record = out.record(path);
        assert!(
            record["label"].is_null() && record["score"].is_null(),
            "{record}"
        );
        assert!(record["probabilities"].is_null());
        let error = record["error"].as_str().unwrap();
        assert!(
            error.starts_with("no tissue found: 30 windows, all below the tissue threshold 0.075"),
            "{error}"
        );
        assert_eq!(record["slide"]["tissue_tiles"], 0);
        assert_eq!(record["slide"]["tissue_fraction"], 0.0);
        assert!(record["slide"]["max_probability"].is_null());
        assert!(record["slide"]["positive_fraction"].is_null());
    }
    let alone = slide(&["-f", "jsonl", SLIDES[0]]);
    assert_eq!(out.record(SLIDES[0]), alone.records()[0]);
    // The table never shows a label for it.
    let table = slide(&[blank]);
    assert_eq!(table.code, 1);
    let row = table.stdout.lines().nth(1).unwrap();
    assert!(
        row.contains("error") && row.contains("no tissue found"),
        "{row}"
    );
    assert!(!row.contains("normal"), "{row}");
}

#[test]
fn implausibly_little_tissue_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let source = image::open(root().join(SLIDES[0])).unwrap().to_rgb8();
    let sparse = dir.path().join("sparse.png");
    // 2016 x 2016 of glass (441 windows) with one window of tissue.
    png_slide(&sparse, 2016, 2016, |x, y| {
        (x < 96 && y < 96).then(|| source.get_pixel(96 + x, 96 + y).0)
    });
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "--tile", "-f", "jsonl"])
        .arg(&sparse));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(record["slide"]["tissue_tiles"], 1);
    let warning = record["slide"]["warning"].as_str().unwrap();
    assert!(
        warning.starts_with("only 0.23% of the windows are tissue (1 of 441)"),
        "{warning}"
    );
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains(warning),
        "{}",
        out.stderr
    );
    // A normal slide has none.
    let normal = slide(&["-f", "jsonl", SLIDES[0]]);
    assert!(normal.records()[0]["slide"]["warning"].is_null());
}

#[test]
fn edge_windows_are_judged_on_their_real_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let edge = dir.path().join("edge.png");
    // 200 x 96: glass, then 8 columns of tissue (saturation 0.3) at the right edge. The third
    // window is 8 real columns and 88 of padding.
    png_slide(&edge, 200, 96, |x, _| (x >= 192).then_some([200, 140, 170]));
    let tiles = dir.path().join("edge.csv");
    let out = slide(&[
        "-f",
        "jsonl",
        "--tiles",
        tiles.to_str().unwrap(),
        edge.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let rows = tile_rows(&tiles);
    let flags: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(flags, ["false", "false", "true"]);
    assert_eq!(rows[2][5], "0.3");
}

/// The text chunks of a PNG.
pub(crate) fn png_texts(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let reader = decoder.read_info().unwrap();
    reader
        .info()
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect()
}

#[test]
fn heatmaps_grey_glass_carry_a_colour_bar_and_their_scale() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("map.png");
    let out = slide(&[
        "-f",
        "jsonl",
        "--heatmap",
        map.to_str().unwrap(),
        "--heatmap-size",
        "100",
        SLIDES[0],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record = &out.records()[0];
    assert_eq!(record["slide"]["heatmap_downsample"], 4);
    let texts = png_texts(&map);
    assert_eq!(texts["scancer:slide-size"], "400x300");
    assert_eq!(texts["scancer:downsample"], "4");
    assert_eq!(texts["scancer:map-size"], "100x75");
    // Provenance: the model file's sha256, the grid, the level analysed.
    assert_eq!(texts["scancer:model_sha256"].len(), 64);
    assert_eq!(
        record["slide"]["provenance"]["model_sha256"],
        texts["scancer:model_sha256"].as_str()
    );
    assert_eq!(
        (
            texts["scancer:stride"].as_str(),
            texts["scancer:level"].as_str()
        ),
        ("96", "0")
    );
    assert!(texts["Software"].starts_with("scancer "));
    assert!(texts["Description"].contains("grey: not tissue"));
    let image = image::open(&map).unwrap().to_rgb8();
    // The colour bar below the map and its title: plasma(0) at its left end, plasma(1) at its right end, then
    // the grey swatch.
    let bar_y = 75 + 20 + 6;
    assert_eq!(image.get_pixel(8, bar_y).0, plasma::colour(0.0));
    let row: Vec<[u8; 3]> = (0..image.width())
        .map(|x| image.get_pixel(x, bar_y).0)
        .collect();
    let last_bar = row
        .iter()
        .rposition(|c| *c == plasma::colour(1.0))
        .expect("plasma(1) on the bar");
    assert!(
        row[last_bar..].contains(&[128, 128, 128]),
        "a grey swatch right of the bar"
    );
    // No pixel of the map is plasma(0): glass is grey, and the model's probabilities are not 0.
    for y in 0..75 {
        for x in 0..100 {
            assert_ne!(image.get_pixel(x, y).0, plasma::colour(0.0));
        }
    }

    // --overlay tints tissue only: glass keeps the slide's own pixels.
    let overlay = dir.path().join("overlay.png");
    let out = slide(&[
        "--heatmap",
        overlay.to_str().unwrap(),
        "--heatmap-size",
        "100",
        "--overlay",
        SLIDES[0],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tinted = image::open(&overlay).unwrap().to_rgb8();
    let source = image::open(root().join(SLIDES[0])).unwrap().to_rgb8();
    // (5, 5) is glass (window 0,0); (30, 30) lies in the tissue window at (96, 96).
    assert_eq!(tinted.get_pixel(5, 5), source.get_pixel(22, 22));
    assert_ne!(tinted.get_pixel(30, 30), source.get_pixel(122, 122));
}

#[test]
fn heatmap_names_never_collide_across_a_job_array() {
    let dir = tempfile::tempdir().unwrap();
    for case in ["caseA", "caseC"] {
        std::fs::create_dir_all(dir.path().join("coll").join(case)).unwrap();
        std::fs::copy(
            root().join(SLIDES[0]),
            dir.path().join("coll").join(case).join("slide.png"),
        )
        .unwrap();
    }
    let model = root().join(PCAM);
    let shard = |k: &str| {
        run(scancer()
            .current_dir(dir.path())
            .args(["predict", "--tile", "-q", "-f", "jsonl", "-m"])
            .arg(&model)
            .args(["--heatmap", "maps", "--shard", k, "coll"]))
    };
    let (a, c) = (shard("0/2"), shard("1/2"));
    assert_eq!((a.code, c.code), (0, 0), "{} {}", a.stderr, c.stderr);
    let (a, c) = (&a.records()[0], &c.records()[0]);
    assert_eq!(a["path"], "coll/caseA/slide.png");
    assert_eq!(
        a["slide"]["heatmap"],
        "maps/coll/caseA/slide.png.heatmap.png"
    );
    assert_eq!(
        c["slide"]["heatmap"],
        "maps/coll/caseC/slide.png.heatmap.png"
    );
    for record in [a, c] {
        assert!(dir
            .path()
            .join(record["slide"]["heatmap"].as_str().unwrap())
            .is_file());
    }
    // A folder for a single input.
    std::fs::create_dir(dir.path().join("one")).unwrap();
    let out = run(scancer()
        .current_dir(dir.path())
        .args(["predict", "--tile", "-q", "-m"])
        .arg(&model)
        .args(["--heatmap", "one/", "coll/caseA/slide.png"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(dir
        .path()
        .join("one/coll/caseA/slide.png.heatmap.png")
        .is_file());
    // One file for several inputs is a usage error, before any work.
    let out = run(scancer()
        .current_dir(dir.path())
        .args(["predict", "--tile", "-q", "-m"])
        .arg(&model)
        .args(["--heatmap", "out.png", "coll"]));
    crate::util::assert_fatal(
        &out,
        "--heatmap out.png names one file, but there are 2 inputs",
    );
    assert!(!dir.path().join("out.png").exists());
}

#[test]
fn slide_usage_errors_exit_two_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    std::fs::write(&output, "previous").unwrap();
    let o = output.to_str().unwrap();
    let cases: [(&str, Vec<&str>, &str); 19] = [
        (
            PCAM,
            vec!["--stride", "0"],
            "--stride 0 must be between 1 and the window size (96)",
        ),
        (
            PCAM,
            vec!["--stride", "97"],
            "--stride 97 must be between 1 and the window size (96)",
        ),
        (
            crate::util::MULTICLASS,
            vec!["--config", "testdata/configs/multiclass-raw.toml"],
            "a raw model's output has nothing to map",
        ),
        (
            crate::util::MULTICLASS,
            vec!["--class", "nope"],
            "--class \"nope\" is not one of the model's classes (adipose, stroma, tumour, lymphocytes)",
        ),
        (
            PCAM,
            vec!["--class", "metastatic"],
            "--class picks one class of a multiclass model",
        ),
        (
            crate::util::SEGMENTATION,
            vec!["--heatmap", "maps/"],
            "a segmentation model's slides get a class mask",
        ),
        (
            crate::util::MULTICLASS,
            vec!["--lesions", "lesions/"],
            "--lesions lists the regions of one class",
        ),
        (PCAM, vec!["--mpp", "0"], "microns per pixel between 0.01 and 50"),
        (
            PCAM,
            vec!["--level", "1", "--mpp", "0.5"],
            "cannot be used with",
        ),
        (
            PCAM,
            vec!["--geojson", "one.geojson"],
            "--geojson one.geojson names one file, but there are 2 inputs",
        ),
        (PCAM, vec!["--tiles", "tiles.json"], "name the file .jsonl"),
        (
            crate::util::MULTICLASS,
            vec!["--explain", "explanations/"],
            "--explain explains a slide's hotspot towards one class: name it with --class",
        ),
        (
            PCAM,
            vec!["--heatmap", "o.jpg"],
            "--heatmap o.jpg: not a file name it writes (.png, .tif, .tiff) nor a folder",
        ),
        (
            PCAM,
            vec!["--geojson", "regions.txt"],
            "name the file .geojson, or end a folder's path with /",
        ),
        (PCAM, vec!["--overlay"], "--overlay draws the heatmap over the slide: it needs --heatmap"),
        (
            PCAM,
            vec!["--overlay", "--heatmap", "maps/", "--heatmap-format", "tiff"],
            "a TIFF heatmap (maps/) is the map alone",
        ),
        (PCAM, vec!["--heatmap-size", "0"], "0 is not in 16..=16384"),
        (
            PCAM,
            vec!["--heatmap-size", "30000"],
            "30000 is not in 16..=16384",
        ),
        (
            PCAM,
            vec!["--resume", "-f", "table"],
            "--resume needs --format json, jsonl or csv",
        ),
    ];
    for (model, extra, needle) in cases {
        let out = run(scancer()
            .args(["predict", "--tile", "-m", model, "-o", o])
            .args(&extra)
            .args([SLIDES[0], SLIDES[1]]));
        assert_eq!(out.code, 2, "{extra:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        assert!(out.stderr.contains(needle), "{extra:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
        assert_eq!(
            std::fs::read_to_string(&output).unwrap(),
            "previous",
            "{extra:?}"
        );
        assert!(!dir.path().join("out.jsonl.partial").exists());
    }
}

/// Runs `scancer predict` on five slides in `cwd`, killing it with `signal` once `partial` holds a
/// finished record (None: runs to the end). Returns the exit code and standard error.
fn interrupted(cwd: &std::path::Path, args: &[&str], signal: Option<&str>) -> (i32, String) {
    use std::process::Stdio;
    let bin = env!("CARGO_BIN_EXE_scancer");
    let mut child = std::process::Command::new(bin)
        .current_dir(cwd)
        .arg("predict")
        .arg("-m")
        .arg(root().join(PCAM))
        .args([
            "--tile",
            "--stride",
            "16",
            "--tiles",
            "tiles.csv",
            "--heatmap",
            "maps/",
        ])
        .args(args)
        .arg("slides")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(signal) = signal {
        let partial = cwd.join(format!("{}.partial", args[args.len() - 1]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&partial).unwrap_or_default();
            // One finished record: a line (JSON Lines, CSV after its header), or in a JSON array the
            // separator that follows a record.
            if text.matches('\n').count() >= 2 || text.contains("},\n") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no record within 120 s"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "finished before the first record was seen"
            );
            std::thread::yield_now();
        }
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let code = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap());
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every file under `dir`, relative, with its bytes.
fn files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn resume_after_sigkill_or_sigterm_equals_an_uninterrupted_run() {
    let make = || {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("slides")).unwrap();
        for k in 0..5 {
            std::fs::copy(
                root().join(SLIDES[k % 4]),
                dir.path().join("slides").join(format!(
                    "s{k}-{}",
                    SLIDES[k % 4].rsplit('/').next().unwrap()
                )),
            )
            .unwrap();
        }
        // One slide that fails: its error record is kept and counted on resume.
        std::fs::write(dir.path().join("slides/s5-empty.png"), b"").unwrap();
        dir
    };
    for (format, file, signal, code) in [
        ("jsonl", "out.jsonl", "-KILL", 137),
        ("csv", "out.csv", "-TERM", 143),
        ("json", "out.json", "-INT", 130),
    ] {
        let whole = make();
        let args = ["-f", format, "-o", file];
        let (c, stderr) = interrupted(whole.path(), &args, None);
        assert_eq!(c, 1, "{stderr}");
        let cut = make();
        let (c, stderr) = interrupted(cut.path(), &args, Some(signal));
        assert_eq!(c, code, "{format}: {stderr}");
        if signal != "-KILL" {
            assert!(
                stderr.contains(&format!("interrupted: the finished records are in {file}.partial; run the same command with --resume")),
                "{stderr}"
            );
        }
        assert!(cut.path().join(format!("{file}.partial")).exists());
        assert!(
            !cut.path().join(file).exists(),
            "no output before it is complete"
        );
        // Without --resume the records are not thrown away.
        let (c, stderr) = interrupted(cut.path(), &args, None);
        assert_eq!(c, 2);
        assert!(
            stderr.contains("holds the records of an interrupted run: add --resume"),
            "{stderr}"
        );
        let resume = ["-f", format, "--resume", "-o", file];
        let (c, stderr) = interrupted(cut.path(), &resume, None);
        assert_eq!(
            c, 1,
            "{format}: the resumed run counts the failed slide: {stderr}"
        );
        let resumed: usize = stderr
            .split("resuming: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("says what it resumes: {stderr}"));
        assert!((1..6).contains(&resumed), "{resumed}");
        let (a, b) = (files(whole.path()), files(cut.path()));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{format}: {stderr}"
        );
        for (name, bytes) in &a {
            assert!(bytes == &b[name], "{format}: {name} differs after --resume");
        }
        // Resuming a finished output changes nothing.
        let (c, _) = interrupted(cut.path(), &resume, None);
        assert_eq!(c, 1);
        assert_eq!(files(cut.path()), a);
    }
}

/// `--tiles` under `--shard` follows the records' rule: only the shard that opens the whole output
/// writes the CSV header, so the shards' files concatenate to the unsharded file (JSON Lines too).
#[test]
fn sharded_tiles_concatenate_to_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    for (k, slide) in SLIDES.iter().take(2).enumerate() {
        std::fs::copy(
            root().join(slide),
            dir.path().join(format!("slide-{k}.png")),
        )
        .unwrap();
    }
    let model = root().join(PCAM);
    for ext in ["csv", "jsonl"] {
        let tiles = |name: &str, shard: Option<&str>| {
            let mut cmd = scancer();
            cmd.current_dir(dir.path())
                .args(["predict", "--tile", "-q", "-f", "jsonl", "-m"])
                .arg(&model)
                .args(["--tiles", &format!("{name}.{ext}")]);
            if let Some(shard) = shard {
                cmd.args(["--shard", shard]);
            }
            let out = run(cmd.args(["slide-0.png", "slide-1.png"]));
            assert_eq!(out.code, 0, "{}", out.stderr);
            std::fs::read_to_string(dir.path().join(format!("{name}.{ext}"))).unwrap()
        };
        let whole = tiles("whole", None);
        let joined = tiles("part-0", Some("0/2")) + &tiles("part-1", Some("1/2"));
        assert_eq!(joined, whole, "{ext}");
        if ext == "csv" {
            assert_eq!(whole.matches("path,x,y").count(), 1);
        }
    }
}

/// A slide OpenSlide refuses says why, as other formats do: unreadable (no permission), empty, a
/// TIFF cut short, or no slide format at all; one error record each, and the other slides answer.
#[cfg(feature = "openslide")]
#[test]
fn refused_slides_say_why() {
    if crate::util::fetched("SCANCER_OPENSLIDE", "refused_slides_say_why").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    std::fs::write(at("empty.svs"), b"").unwrap();
    std::fs::write(at("cut.svs"), b"II*\0\x08\0\0\0").unwrap();
    std::fs::write(at("notes.svs"), b"patient notes\n").unwrap();
    std::fs::copy(root().join(PYRAMID), at("locked.svs")).unwrap();
    std::fs::set_permissions(
        at("locked.svs"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    std::fs::copy(root().join(PYRAMID), at("good.svs")).unwrap();
    // As a user the file modes bind: root runs it without CAP_DAC_OVERRIDE, which reads any file.
    let root_user = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    let mut cmd = if root_user {
        let mut setpriv = assert_cmd::Command::new("setpriv");
        setpriv
            .args(["--bounding-set=-dac_override,-dac_read_search", "--"])
            .arg(assert_cmd::cargo::cargo_bin("scancer"));
        setpriv
    } else {
        assert_cmd::Command::new(assert_cmd::cargo::cargo_bin("scancer"))
    };
    cmd.current_dir(dir.path())
        .args(["predict", "--tile", "-q", "-f", "jsonl", "-m"])
        .arg(root().join(PCAM))
        .args([
            "cut.svs",
            "empty.svs",
            "good.svs",
            "locked.svs",
            "notes.svs",
        ]);
    let out = run(&mut cmd);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let error = |name: &str| out.record(name)["error"].as_str().unwrap_or("").to_owned();
    assert_eq!(error("empty.svs"), "empty file");
    assert_eq!(
        error("cut.svs"),
        "OpenSlide cannot read this TIFF (8 bytes): it is truncated or damaged"
    );
    assert!(error("notes.svs").contains("its first bytes are no slide format's"));
    assert_eq!(error("locked.svs"), "Permission denied");
    assert!(out.record("good.svs")["error"].is_null());
}

/// Windows at the slide's right and bottom edges are clipped to the slide in `--tiles` as in the
/// hotspot and the exports: one rule for a window's bounds everywhere.
#[test]
fn edge_windows_are_clipped_to_the_slide_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (tiles, geojson) = (dir.path().join("t.csv"), dir.path().join("s.geojson"));
    // 400 x 300: the last column of 96-pixel windows starts at 384, the last row at 288.
    let out = slide(&[
        "--all-tiles",
        "-f",
        "jsonl",
        "--tiles",
        tiles.to_str().unwrap(),
        "--geojson",
        geojson.to_str().unwrap(),
        SLIDES[0],
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = tile_rows(&tiles);
    let bounds: Vec<[u64; 4]> = rows
        .iter()
        .map(|r| [0, 1, 2, 3].map(|k| r[k].parse().unwrap()))
        .collect();
    assert!(
        bounds
            .iter()
            .all(|[x, y, w, h]| x + w <= 400 && y + h <= 300),
        "{bounds:?}"
    );
    assert!(bounds.contains(&[384, 288, 16, 12]), "{bounds:?}");
    // The same bounds as the GeoJSON's detections of those windows.
    let collection: Value =
        serde_json::from_str(&std::fs::read_to_string(&geojson).unwrap()).unwrap();
    for feature in collection["features"].as_array().unwrap() {
        if feature["properties"]["objectType"] != "detection" {
            continue;
        }
        let ring = feature["geometry"]["coordinates"][0].as_array().unwrap();
        let xs: Vec<u64> = ring.iter().map(|p| p[0].as_u64().unwrap()).collect();
        let ys: Vec<u64> = ring.iter().map(|p| p[1].as_u64().unwrap()).collect();
        let (x, y) = (*xs.iter().min().unwrap(), *ys.iter().min().unwrap());
        let (w, h) = (xs.iter().max().unwrap() - x, ys.iter().max().unwrap() - y);
        assert!(
            bounds.contains(&[x, y, w, h]),
            "{:?} not a --tiles row",
            [x, y, w, h]
        );
    }
}

/// The legend: a title naming the class mapped; a grey "no tissue" swatch only where glass is
/// drawn grey (an overlay shows the slide itself there); and larger with a larger map, so that it
/// stays readable once the map is scaled down to a screen.
#[test]
fn the_legend_has_a_title_and_scales_with_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let grey = |image: &image::RgbImage, from_row: u32| {
        image
            .enumerate_pixels()
            .filter(|(_, y, p)| *y >= from_row && p.0 == [128, 128, 128])
            .count()
    };
    for (overlay, swatch) in [(false, true), (true, false)] {
        let map = dir.path().join(format!("map-{overlay}.png"));
        let mut args = vec!["--heatmap", map.to_str().unwrap(), "--heatmap-size", "100"];
        if overlay {
            args.push("--overlay");
        }
        args.push(SLIDES[0]);
        assert_eq!(slide(&args).code, 0);
        let image = image::open(&map).unwrap().to_rgb8();
        // The legend band starts below the 75-row map.
        assert_eq!(grey(&image, 75) > 0, swatch, "overlay {overlay}");
        // The title: dark pixels in the band's first rows.
        let title = image
            .enumerate_pixels()
            .filter(|(_, y, p)| (79..89).contains(y) && p.0 == [0, 0, 0])
            .count();
        assert!(title > 50, "overlay {overlay}: {title}");
    }
    // A 1,200-pixel-wide map: the legend twice as large.
    let wide = dir.path().join("wide.png");
    let mut slide_image = image::RgbImage::from_pixel(1200, 300, image::Rgb([255; 3]));
    let tissue = image::open(root().join(SLIDES[0])).unwrap().to_rgb8();
    image::imageops::replace(&mut slide_image, &tissue, 0, 0);
    slide_image.save(&wide).unwrap();
    let map = dir.path().join("wide-map.png");
    let out = slide(&["--heatmap", map.to_str().unwrap(), wide.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        image::open(&map).unwrap().to_rgb8().dimensions(),
        (1200, 300 + 2 * 56)
    );
}
