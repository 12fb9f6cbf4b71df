//! Slides the way pathologists review them: positive regions (8-connected windows) with exact areas,
//! diameters, peaks and level-0 coordinates; the QuPath GeoJSON, ASAP XML and Camelyon16 lesion CSV
//! exports read back by independent readers (shapely, an XML parser); provenance; the level chosen
//! from the slide's resolution (`--mpp`, `--magnification`, `--slide-mpp`, TIFF and OpenSlide
//! resolutions) with every coordinate in level-0 pixels.

use crate::util::{root, run, scancer, Run, PCAM};
use serde_json::{json, Value};
use std::path::Path;

/// A patch the model calls metastatic (0.992) and one it calls normal (0.030), both tissue.
const POSITIVE: &str = "examples/patches/patch-02.png";
const NEGATIVE: &str = "examples/patches/patch-09.png";

/// A white slide of `across` x `down` 96-pixel windows with patches at the given windows.
fn composed(path: &Path, across: u32, down: u32, placed: &[((u32, u32), &str)]) {
    let mut slide = image::RgbImage::from_pixel(across * 96, down * 96, image::Rgb([255; 3]));
    for &((i, j), patch) in placed {
        let patch = image::open(root().join(patch)).unwrap().to_rgb8();
        image::imageops::replace(&mut slide, &patch, i64::from(i * 96), i64::from(j * 96));
    }
    slide.save(path).unwrap();
}

/// `image` saved as a PNG at `path` declaring `xppu` x `yppu` pixels per metre (pHYs).
pub(crate) fn png_with_resolution(path: &Path, image: &image::RgbImage, xppu: u32, yppu: u32) {
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, image.width(), image.height());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_pixel_dims(Some(png::PixelDimensions {
            xppu,
            yppu,
            unit: png::Unit::Meter,
        }));
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(image.as_raw()).unwrap();
    }
    std::fs::write(path, png_bytes).unwrap();
}

/// Four regions: a ring of eight around a negative window, an L of three, a diagonal pair (one
/// region by the 8-neighbourhood), a single window; and two negative tissue windows.
fn four_regions(path: &Path) {
    let mut placed = Vec::new();
    for j in 1..=3 {
        for i in 1..=3 {
            placed.push(((i, j), if (i, j) == (2, 2) { NEGATIVE } else { POSITIVE }));
        }
    }
    placed.extend([
        ((6, 1), POSITIVE),
        ((7, 1), POSITIVE),
        ((6, 2), POSITIVE),
        ((9, 1), POSITIVE),
        ((10, 2), POSITIVE),
        ((1, 6), POSITIVE),
        ((8, 5), NEGATIVE),
        ((9, 5), NEGATIVE),
    ]);
    composed(path, 12, 8, &placed);
}

fn slide(args: &[&str]) -> Run {
    run(scancer()
        .args(["predict", "-m", PCAM, "--tile", "-q", "-f", "jsonl"])
        .args(args))
}

#[test]
fn regions_are_measured_exactly_and_exported_for_qupath_asap_and_camelyon() {
    let dir = tempfile::tempdir().unwrap();
    let slide_path = dir.path().join("regions.png");
    four_regions(&slide_path);
    let (geojson, xml, lesions, heatmap) = (
        dir.path().join("regions.geojson"),
        dir.path().join("regions.xml"),
        dir.path().join("regions.csv"),
        dir.path().join("regions.tif"),
    );
    let out = slide(&[
        "--slide-mpp",
        "0.5",
        "--heatmap",
        heatmap.to_str().unwrap(),
        "--geojson",
        geojson.to_str().unwrap(),
        "--asap-xml",
        xml.to_str().unwrap(),
        "--lesions",
        lesions.to_str().unwrap(),
        slide_path.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let s = &record["slide"];
    assert_eq!(
        (s["tissue_tiles"].as_u64(), s["positive_tiles"].as_u64()),
        (Some(17), Some(14))
    );
    assert_eq!(s["regions"], 4);
    let peak = s["max_probability"].as_f64().unwrap();
    assert!(peak > 0.99, "{peak}");
    // Most suspicious first; equal peaks by area. Bounding boxes, areas and diameters exact.
    let expected = [
        ([96, 96, 288, 288], 8, 0.018432, 0.204, (144, 144)),
        ([576, 96, 192, 192], 3, 0.006912, 0.136, (624, 144)),
        ([864, 96, 192, 192], 2, 0.004608, 0.136, (912, 144)),
        ([96, 576, 96, 96], 1, 0.002304, 0.068, (144, 624)),
    ];
    let regions = s["top_regions"].as_array().unwrap();
    assert_eq!(regions.len(), 4);
    for (r, (bounds, windows, area, diameter, (px, py))) in regions.iter().zip(expected) {
        let [x, y, w, h] = bounds;
        assert_eq!(
            r,
            &json!({
                "x": x, "y": y, "width": w, "height": h, "windows": windows,
                "area_mm2": area, "diameter_mm": diameter,
                "peak_probability": s["max_probability"], "peak_x": px, "peak_y": py,
            })
        );
    }
    assert_eq!(
        s["hotspot"],
        json!({"x": 96, "y": 96, "width": 96, "height": 96, "probability": s["max_probability"]})
    );
    // Provenance: the model file's and configuration's sha256, the grid and the resolution.
    let sha = |p: &str| {
        let out = std::process::Command::new("sha256sum")
            .arg(root().join(p))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    };
    let provenance = &s["provenance"];
    assert_eq!(provenance["model_sha256"], sha(PCAM).as_str());
    assert_eq!(
        provenance["config_sha256"],
        sha("examples/pcam-classification.toml").as_str()
    );
    assert_eq!(
        (
            &provenance["stride"],
            &provenance["level"],
            &provenance["mpp"],
            &provenance["mpp_source"]
        ),
        (&json!(96), &json!(0), &json!(0.5), &json!("--slide-mpp"))
    );
    assert_eq!(provenance["scancer"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        s["exports"],
        json!({
            "geojson": geojson.to_str().unwrap(),
            "asap_xml": xml.to_str().unwrap(),
            "lesions": lesions.to_str().unwrap(),
        })
    );
    // Camelyon16's submission lines: confidence, then the peak's level-0 x and y.
    let lines: Vec<String> = std::fs::read_to_string(&lesions)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let confidence: f32 = lines[0].split(',').next().unwrap().parse().unwrap();
    assert_eq!(confidence, peak as f32);
    let located: Vec<&str> = lines.iter().map(|l| l.split_once(',').unwrap().1).collect();
    assert_eq!(located, ["144,144", "624,144", "912,144", "144,624"]);
    // The XML names its provenance in a comment, and the GeoJSON as a foreign member.
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(
        text.contains(&format!("model_sha256 {}", sha(PCAM))),
        "{text}"
    );

    let Some(python) = crate::util::fetched("SCANCER_CLIENTS_PYTHON", "slide_exports_readers")
    else {
        return;
    };
    let got = crate::util::client_json(
        std::process::Command::new(&python)
            .arg(root().join("tests/clients/slide_exports.py"))
            .args([&geojson, &xml]),
    );
    let g = &got["geojson"];
    assert_eq!(g["invalid"], json!([]), "shapely: every geometry valid");
    assert_eq!(g["detections"], 17);
    assert_eq!(g["classes"], json!({"metastatic": 18, "normal": 3}));
    let annotations = g["annotations"].as_array().unwrap();
    let shapes: Vec<(&str, f64, u64)> = annotations
        .iter()
        .map(|a| {
            (
                a["type"].as_str().unwrap(),
                a["area"].as_f64().unwrap(),
                a["holes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shapes,
        [
            ("Polygon", 8.0 * 9216.0, 1),
            ("Polygon", 3.0 * 9216.0, 0),
            ("MultiPolygon", 2.0 * 9216.0, 0),
            ("Polygon", 9216.0, 0),
        ]
    );
    assert_eq!(annotations[0]["bounds"], json!([96.0, 96.0, 384.0, 384.0]));
    assert_eq!(g["provenance"], *provenance);
    let a = &got["asap"];
    assert_eq!(a["groups"], json!(["Tumor", "_2"]));
    assert_eq!(a["regions"], 4);
    for (name, difference) in a["difference"].as_object().unwrap() {
        assert_eq!(
            difference,
            &json!(0.0),
            "{name}: ASAP and GeoJSON outlines differ"
        );
    }

    // The pyramidal heatmap: OpenSlide opens it at the slide's level-0 size, its levels halving,
    // at the slide's resolution; a positive window is plasma(its probability), glass transparent.
    assert_eq!(s["heatmap"], heatmap.to_str().unwrap());
    assert_eq!(s["heatmap_downsample"], 1);
    let tiff = read_pyramid(python, &heatmap, &["150,150", "10,10", "250,250"]);
    assert_eq!(tiff["vendor"], "generic-tiff");
    assert_eq!(
        tiff["dimensions"],
        json!([[1152, 768], [576, 384], [288, 192], [144, 96], [72, 48]])
    );
    assert_eq!(tiff["downsamples"], json!([1.0, 2.0, 4.0, 8.0, 16.0]));
    assert_eq!(tiff["mpp"], json!(["0.5", "0.5"]));
    let colour = plasma_of(peak as f32);
    assert_eq!(
        tiff["rgba"][0],
        json!([colour[0], colour[1], colour[2], 255])
    );
    assert_eq!(tiff["rgba"][1], json!([0, 0, 0, 0]));
    // The ring's negative centre is tissue, and not transparent.
    assert_eq!(tiff["rgba"][2][3], 255);
    assert_eq!(tiff["tifffile"]["tiles"][0], json!([96, 96]));
    assert_eq!(
        tiff["tifffile"]["samples"][0],
        json!([colour[0], colour[1], colour[2], 255])
    );
    let description = tiff["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("model_sha256 {}", sha(PCAM))),
        "{description}"
    );
}

/// What OpenSlide and tifffile see in a pyramidal TIFF, at level-0 points "x,y".
pub(crate) fn read_pyramid(python: std::path::PathBuf, path: &Path, points: &[&str]) -> Value {
    let out = std::process::Command::new(python)
        .arg(root().join("tests/clients/pyramid_tiff.py"))
        .arg(path)
        .args(points)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The heatmap's colour table (src/slide/plasma.rs, checked against matplotlib by its unit test).
fn plasma_of(p: f32) -> [u8; 3] {
    crate::slides::plasma::colour(p)
}

#[test]
fn smoothing_merges_regions_before_they_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let slide_path = dir.path().join("regions.png");
    four_regions(&slide_path);
    let plain = slide(&[slide_path.to_str().unwrap()]);
    let smoothed = slide(&["--smooth", "300", slide_path.to_str().unwrap()]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let (p, s): (Value, Value) = (
        serde_json::from_str(plain.stdout.trim()).unwrap(),
        serde_json::from_str(smoothed.stdout.trim()).unwrap(),
    );
    // Without a resolution there are no millimetres, only pixels.
    assert_eq!(p["slide"]["top_regions"][0]["area_mm2"], Value::Null);
    assert_eq!(p["slide"]["mpp"], Value::Null);
    // A wide Gaussian over tissue spreads the positives into the ring's negative centre: the ring
    // becomes a solid region of nine windows.
    assert_eq!(s["slide"]["top_regions"][0]["windows"], 9, "{}", s["slide"]);
    assert_eq!(s["slide"]["provenance"]["smooth"], 300);
}

/// The same slide read at half resolution and analysed at 2x downsample: regions in level-0
/// pixels, where a PNG declares 0.25 um per pixel (pHYs) and --mpp 0.5 asks for twice that.
#[test]
fn mpp_resamples_and_coordinates_stay_in_level0_pixels() {
    let dir = tempfile::tempdir().unwrap();
    // Uniform blocks the model calls metastatic (0.857) and normal (0.007), 192 pixels a side: at
    // half resolution each is one 96-pixel window of that colour (its edge blended with the glass
    // around it by the resampling, which these colours' predictions survive).
    let (positive, negative) = ([200u8, 200, 0], [0u8, 255, 20]);
    let blocks = [
        ((1, 1), positive),
        ((2, 1), positive),
        ((4, 3), positive),
        ((1, 3), negative),
    ];
    let (w, h) = (6 * 192, 5 * 192);
    let slide = image::RgbImage::from_fn(w, h, |x, y| {
        blocks
            .iter()
            .find(|((i, j), _)| x / 192 == *i && y / 192 == *j)
            .map_or(image::Rgb([255; 3]), |(_, c)| image::Rgb(*c))
    });
    let path = dir.path().join("blocks.png");
    png_with_resolution(&path, &slide, 4_000_000, 4_000_000);
    let tiles = dir.path().join("tiles.csv");
    let out = slide_run(&[
        "--mpp",
        "0.5",
        "--tiles",
        tiles.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let s = &record["slide"];
    assert_eq!(
        (
            &s["width"],
            &s["height"],
            &s["level"],
            &s["downsample"],
            &s["mpp"]
        ),
        (
            &json!(1152),
            &json!(960),
            &json!(0),
            &json!(2),
            &json!(0.25)
        )
    );
    assert_eq!(s["provenance"]["mpp_source"], "PNG pHYs");
    assert_eq!(s["provenance"]["analysed_mpp"], 0.5);
    assert_eq!(s["tiles"], 30, "6 x 5 windows of 96 at half resolution");
    assert_eq!(s["regions"], 2);
    let first = s["top_regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["windows"] == 2)
        .unwrap();
    assert_eq!(
        (
            &first["x"],
            &first["y"],
            &first["width"],
            &first["height"],
            &first["windows"]
        ),
        (
            &json!(192),
            &json!(192),
            &json!(384),
            &json!(192),
            &json!(2)
        )
    );
    // 2 blocks of 192^2 level-0 pixels at 0.25 um: 0.0046 mm^2.
    assert_eq!(first["area_mm2"], 0.004608);
    // The --tiles rows are level-0 windows of 192.
    let text = std::fs::read_to_string(&tiles).unwrap();
    let row = text.lines().nth(8).unwrap();
    assert!(
        row.contains(",192,192,192,192,true,") && row.contains(",metastatic,"),
        "{row}"
    );
    // Every class's probability after the label (WSInfer's prob_<class> columns).
    assert!(
        text.starts_with("path,x,y,width,height,tissue,saturation,probability,label,prob_normal,prob_metastatic\n"),
        "{text}"
    );

    // A target with no resolution to reach it from is refused, naming the way out.
    let bare = dir.path().join("bare.png");
    slide.save(&bare).unwrap();
    let out = slide_run(&["--mpp", "0.5", bare.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("--mpp 0.5 was asked for, but the slide declares no resolution")
            && out.stdout.contains("--slide-mpp"),
        "{}",
        out.stdout
    );
    // --magnification 20 on a 0.25 um (40x) scan: 0.5 um, the same analysis.
    let by_x = slide_run(&[
        "--magnification",
        "20",
        "--slide-mpp",
        "0.25",
        bare.to_str().unwrap(),
    ]);
    let by_x: Value = serde_json::from_str(by_x.stdout.trim()).unwrap();
    assert_eq!(by_x["slide"]["top_regions"], s["top_regions"]);
    // Finer than the scan is refused, not enlarged; nonsense is a usage error.
    let out = slide_run(&["--mpp", "0.1", path.to_str().unwrap()]);
    assert!(
        out.stdout.contains("finer than the slide's level 0"),
        "{}",
        out.stdout
    );
    let out = slide_run(&["--mpp", "0", path.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

fn slide_run(args: &[&str]) -> Run {
    run(scancer()
        .args(["predict", "-m", PCAM, "--tile", "-f", "jsonl"])
        .args(args))
}

/// A pyramidal tiled TIFF written by tifffile (level 0 at 0.25 um per pixel, level 1 half that):
/// OpenSlide reads it, `--mpp 0.5` picks level 1 from the resolution OpenSlide reports, and the
/// regions found at level 1 lie where level 0's are, in level-0 pixels.
#[cfg(feature = "openslide")]
#[test]
fn regions_at_level_one_lie_where_level_zeros_do() {
    if crate::util::fetched("SCANCER_OPENSLIDE", "regions_at_level_one").is_none() {
        return;
    }
    let Some(python) = crate::util::fetched("SCANCER_CLIENTS_PYTHON", "regions_at_level_one")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pyramid = dir.path().join("pyramid.tif");
    // Blocks of 192 level-0 pixels: at level 1 each is exactly one window of one colour.
    let script = r#"
import sys, numpy as np, tifffile
yellow, green = (200, 200, 0), (0, 255, 20)
level0 = np.full((5 * 192, 8 * 192, 3), 255, np.uint8)
for (i, j), colour in {(1, 1): yellow, (2, 1): yellow, (2, 2): yellow, (5, 3): yellow, (6, 1): green}.items():
    level0[j * 192:(j + 1) * 192, i * 192:(i + 1) * 192] = colour
with tifffile.TiffWriter(sys.argv[1]) as tif:
    for n, level in enumerate((level0, level0[::2, ::2])):
        # A reduced-resolution image (NewSubfileType 1): what OpenSlide takes as a level.
        tif.write(level, tile=(256, 256), photometric="rgb", compression="zlib",
                  subfiletype=1 if n else 0, resolution=(40000 / 2**n, 40000 / 2**n),
                  resolutionunit="CENTIMETER")
"#;
    let made = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&pyramid)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let record = |args: &[&str]| -> Value {
        let out = slide(&[args, &[pyramid.to_str().unwrap()]].concat());
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        serde_json::from_str(out.stdout.trim()).unwrap()
    };
    let (at0, at1, by_mpp) = (
        record(&["--level", "0"]),
        record(&["--level", "1"]),
        record(&["--mpp", "0.5"]),
    );
    let region_bounds = |r: &Value| -> Vec<Vec<u64>> {
        let mut b: Vec<Vec<u64>> = r["slide"]["top_regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                ["x", "y", "width", "height"]
                    .map(|k| t[k].as_u64().unwrap())
                    .to_vec()
            })
            .collect();
        b.sort();
        b
    };
    assert_eq!(
        region_bounds(&at0),
        [vec![192, 192, 384, 384], vec![960, 576, 192, 192]]
    );
    assert_eq!(region_bounds(&at1), region_bounds(&at0));
    assert_eq!(at0["slide"]["tiles"], 160);
    assert_eq!(at1["slide"]["tiles"], 40);
    for r in [&at0, &at1, &by_mpp] {
        assert_eq!(
            (r["slide"]["width"].as_u64(), r["slide"]["height"].as_u64()),
            (Some(1536), Some(960))
        );
        assert_eq!(r["slide"]["mpp"], 0.25, "{}", r["slide"]);
    }
    // --mpp 0.5 is level 1 as it is: the same analysis as --level 1.
    assert_eq!(
        (&by_mpp["slide"]["level"], &by_mpp["slide"]["downsample"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(by_mpp["slide"]["top_regions"], at1["slide"]["top_regions"]);
    assert_eq!(
        at1["slide"]["provenance"]["mpp_source"],
        "openslide.mpp-x/y"
    );
    // The L of three blocks: 3 x 192^2 level-0 pixels at 0.25 um.
    let l = at1["slide"]["top_regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["windows"] == 3)
        .unwrap()
        .clone();
    assert_eq!(l["area_mm2"], 3.0 * 192.0 * 192.0 * 0.0625 / 1e6);
}

/// One, two or three model instances give the same records and windows, byte for byte: the
/// batches go to the instances side by side and their answers come back in order.
#[test]
fn the_model_instances_change_nothing_but_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let slide_path = dir.path().join("regions.png");
    four_regions(&slide_path);
    let mut seen = Vec::new();
    for threads in ["1", "2", "3"] {
        let tiles = dir.path().join(format!("{threads}.csv"));
        let out = run(scancer()
            .args([
                "predict",
                "-m",
                PCAM,
                "--tile",
                "-q",
                "-f",
                "jsonl",
                "-b",
                "4",
                "--threads",
                threads,
                "--tiles",
            ])
            .arg(&tiles)
            .arg(&slide_path));
        assert_eq!(out.code, 0, "{threads} threads: {}", out.stderr);
        seen.push((out.stdout, std::fs::read_to_string(&tiles).unwrap()));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    assert!(seen[0].1.lines().count() == 97, "a header and 96 windows");
}

/// Every GeoJSON measurement is a number, for every kind of model: QuPath reads each as a double
/// (`MeasurementList.putAll`), and a null fails its import. A segmentation window measures the
/// share of its most frequent class; a multiclass window every class's probability.
#[test]
fn geojson_measurements_are_numbers_for_every_model_kind() {
    let dir = tempfile::tempdir().unwrap();
    for (model, measurement) in [
        (PCAM, "probability"),
        ("testdata/models/tissue-multiclass.pt", "probability stroma"),
        ("testdata/models/tissue-segmentation.pt", "fraction"),
    ] {
        let geojson = dir.path().join("slide.geojson");
        let out = run(scancer()
            .args(["predict", "--tile", "-q", "-f", "jsonl", "-m", model])
            .args(["--geojson", geojson.to_str().unwrap()])
            .arg("testdata/slides/tissue.png"));
        assert_eq!(out.code, 0, "{model}: {}", out.stderr);
        let collection: Value =
            serde_json::from_str(&std::fs::read_to_string(&geojson).unwrap()).unwrap();
        let features = collection["features"].as_array().unwrap();
        let detections: Vec<&Value> = features
            .iter()
            .filter(|f| f["properties"]["objectType"] == "detection")
            .collect();
        assert!(!detections.is_empty(), "{model}");
        for feature in features {
            for (name, value) in feature["properties"]["measurements"].as_object().unwrap() {
                assert!(value.is_number(), "{model}: {name} = {value}");
            }
        }
        assert!(
            detections
                .iter()
                .all(|d| d["properties"]["measurements"][measurement].is_number()),
            "{model}: {}",
            detections[0]
        );
    }
}

/// One colour per class, the same in QuPath's GeoJSON and ASAP's groups: stroma, tumour and
/// lymphocytes no longer look alike in a viewer.
#[test]
fn every_class_has_its_own_colour_in_every_export() {
    let dir = tempfile::tempdir().unwrap();
    let (geojson, asap) = (dir.path().join("s.geojson"), dir.path().join("s.xml"));
    let out = run(scancer()
        .args(["predict", "--tile", "-q", "-f", "jsonl", "-m"])
        .arg("testdata/models/tissue-multiclass.pt")
        .args(["--geojson", geojson.to_str().unwrap()])
        .args(["--asap-xml", asap.to_str().unwrap()])
        .arg("testdata/slides/tissue.png"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let collection: Value =
        serde_json::from_str(&std::fs::read_to_string(&geojson).unwrap()).unwrap();
    let mut colours = std::collections::BTreeMap::new();
    for feature in collection["features"].as_array().unwrap() {
        let class = &feature["properties"]["classification"];
        let (name, colour) = (class["name"].as_str().unwrap(), class["color"].clone());
        assert_eq!(
            colours.entry(name.to_owned()).or_insert(colour.clone()),
            &colour,
            "{name}: one colour"
        );
    }
    assert!(colours.len() >= 2, "{colours:?}");
    let distinct: std::collections::BTreeSet<String> =
        colours.values().map(Value::to_string).collect();
    assert_eq!(distinct.len(), colours.len(), "{colours:?}");
    // ASAP: each class's group in its GeoJSON colour, as #RRGGBB.
    let xml = std::fs::read_to_string(&asap).unwrap();
    for (name, colour) in &colours {
        let rgb: Vec<u64> = colour
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let hex = format!("#{:02X}{:02X}{:02X}", rgb[0], rgb[1], rgb[2]);
        let group = format!("<Group Name=\"{name}\" PartOfGroup=\"None\" Color=\"{hex}\"");
        if xml.contains(&format!("PartOfGroup=\"{name}\"")) {
            assert!(xml.contains(&group), "{group} in {xml}");
        }
    }
}

/// `--slide-mpp` is a fallback: a slide that declares its resolution keeps it (0.25 um per pixel
/// here, analysed at 0.5 from level 0 halved). `--override-slide-mpp` replaces it, and says so.
#[test]
fn slide_mpp_is_a_fallback_and_overriding_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("declared.png");
    let slide = image::RgbImage::from_pixel(384, 384, image::Rgb([200, 120, 170]));
    png_with_resolution(&path, &slide, 4_000_000, 4_000_000);
    let analysed = |extra: &[&str]| {
        let mut args = vec!["--mpp", "0.5"];
        args.extend_from_slice(extra);
        args.push(path.to_str().unwrap());
        let out = slide_run(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let provenance = &record["slide"]["provenance"];
        (
            record["slide"]["downsample"].as_f64().unwrap(),
            provenance["mpp_source"].as_str().unwrap().to_owned(),
            out.stderr,
        )
    };
    let (downsample, source, stderr) = analysed(&["--slide-mpp", "0.125"]);
    assert_eq!((downsample, source.as_str()), (2.0, "PNG pHYs"));
    assert!(!stderr.contains("warning"), "{stderr}");
    let (downsample, source, stderr) = analysed(&["--slide-mpp", "0.125", "--override-slide-mpp"]);
    assert_eq!((downsample, source.as_str()), (4.0, "--override-slide-mpp"));
    assert!(
        stderr.contains("the slide declares 0.25 um per pixel (PNG pHYs); --override-slide-mpp analyses it as 0.125"),
        "{stderr}"
    );
    // The override alone is a usage error.
    let out = slide_run(&["--override-slide-mpp", path.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// One rule for a resolution whose axes differ, whatever the reader: their mean, and a warning.
#[test]
fn pixels_that_are_not_square_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oblong.png");
    let slide = image::RgbImage::from_pixel(384, 384, image::Rgb([200, 120, 170]));
    // 0.25 um across, 0.3125 um down.
    png_with_resolution(&path, &slide, 4_000_000, 3_200_000);
    let out = slide_run(&[path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "the slide's pixels are not square (0.25 um across, 0.3125 um down): analysed as square pixels of their mean, 0.28125 um"
        ),
        "{}",
        out.stderr
    );
    let record: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(record["slide"]["mpp"], json!(0.28125));
}
