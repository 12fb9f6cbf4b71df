//! `serve --slides DIR`: the slide API a viewer draws from. Deep Zoom documents and tiles are
//! checked against openslide-python's `DeepZoomGenerator` on the same real slides (tests/clients/
//! deepzoom_reference.py); paths and uploads that would reach outside the folder are refused.

use crate::util::server::Server;
use crate::util::{fetched, MULTICLASS};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A server of the multiclass model with `--slides dir`.
fn serve(dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec![MULTICLASS, "--slides", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// `GET /slides`, by name.
fn listing(server: &Server) -> Vec<Value> {
    let reply = server.get("/slides");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json().as_array().unwrap().clone()
}

fn id_of(listing: &[Value], name: &str) -> String {
    listing
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {listing:?}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The mean RGB of each quarter of a tile, as the reference script computes them.
fn quarters(image: &image::RgbImage) -> Vec<[f64; 3]> {
    let (w, h) = image.dimensions();
    let mut out = Vec::new();
    for (y0, y1) in [(0, h / 2), (h / 2, h)] {
        for (x0, x1) in [(0, w / 2), (w / 2, w)] {
            let mut sum = [0f64; 3];
            let mut n = 0f64;
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = image.get_pixel(x, y);
                    for c in 0..3 {
                        sum[c] += f64::from(p[c]);
                    }
                    n += 1.0;
                }
            }
            out.push(sum.map(|s| s / n));
        }
    }
    out
}

/// The reference of `slides` (every level; tiles drawn for the last two levels).
fn deepzoom_reference(python: &Path, slides: &[&Path]) -> Value {
    crate::util::client_json(
        std::process::Command::new(python)
            .arg("tests/clients/deepzoom_reference.py")
            .args(["--sample", "0", "1", "--"])
            .args(slides),
    )
}

/// Every level, tile count and tile size of the slide's Deep Zoom pyramid is openslide-python's,
/// and the sampled tiles show the same tissue (each quarter's mean colour within JPEG's error).
fn assert_deep_zoom_as_openslide_python(server: &Server, id: &str, reference: &Value) {
    let dzi = server.get(&format!("/slides/{id}.dzi"));
    assert_eq!(dzi.status, 200, "{}", dzi.text());
    assert_eq!(dzi.header("content-type"), Some("application/xml"));
    let size = |xml: &str, attribute: &str| -> u64 {
        let at = xml.find(&format!("{attribute}=\"")).unwrap() + attribute.len() + 2;
        xml[at..at + xml[at..].find('"').unwrap()].parse().unwrap()
    };
    let theirs = reference["dzi"].as_str().unwrap();
    for attribute in ["TileSize", "Overlap", "Width", "Height"] {
        assert_eq!(
            size(&dzi.text(), attribute),
            size(theirs, attribute),
            "{attribute}"
        );
    }
    assert!(dzi.text().contains("Format=\"jpeg\""));
    assert!(dzi
        .text()
        .contains("xmlns=\"http://schemas.microsoft.com/deepzoom/2008\""));
    let properties = server.get(&format!("/slides/{id}/properties")).json();
    let levels = reference["levels"].as_array().unwrap();
    assert_eq!(properties["deepzoom_levels"], levels.len());
    // The last tile of every level, and one past it.
    for (level, expected) in levels.iter().enumerate() {
        let (cols, rows) = (
            expected["tiles"][0].as_u64().unwrap(),
            expected["tiles"][1].as_u64().unwrap(),
        );
        let last = server.get(&format!(
            "/slides/{id}_files/{level}/{}_{}.jpeg",
            cols - 1,
            rows - 1
        ));
        assert_eq!(last.status, 200, "level {level}: {}", last.text());
        let image = image::load_from_memory(&last.body).unwrap();
        let want = &expected["tile_sizes"][rows as usize - 1][cols as usize - 1];
        assert_eq!(
            [u64::from(image.width()), u64::from(image.height())],
            [want[0].as_u64().unwrap(), want[1].as_u64().unwrap()],
            "level {level}"
        );
        let past = server.get(&format!("/slides/{id}_files/{level}/{cols}_0.jpeg"));
        assert_eq!(past.status, 404, "level {level}");
    }
    let past = server.get(&format!("/slides/{id}_files/{}/0_0.jpeg", levels.len()));
    assert_eq!(past.status, 404);
    let mut worst = 0f64;
    for sample in reference["samples"].as_array().unwrap() {
        let (level, col, row) = (
            sample["level"].as_u64().unwrap(),
            sample["col"].as_u64().unwrap(),
            sample["row"].as_u64().unwrap(),
        );
        let reply = server.get(&format!("/slides/{id}_files/{level}/{col}_{row}.jpeg"));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("image/jpeg"));
        let tile = image::load_from_memory(&reply.body).unwrap().to_rgb8();
        let want = &levels[level as usize]["tile_sizes"][row as usize][col as usize];
        assert_eq!(
            [u64::from(tile.width()), u64::from(tile.height())],
            [want[0].as_u64().unwrap(), want[1].as_u64().unwrap()],
            "tile {level}/{col}_{row}"
        );
        for (ours, theirs) in quarters(&tile)
            .iter()
            .zip(sample["quarters"].as_array().unwrap())
        {
            for c in 0..3 {
                let d = (ours[c] - theirs[c].as_f64().unwrap()).abs();
                worst = worst.max(d);
                assert!(
                    d < 3.0,
                    "tile {level}/{col}_{row}: quarter mean {ours:?}, openslide-python {theirs}"
                );
            }
        }
    }
    eprintln!("{id}: worst quarter-mean difference {worst:.2}");
}

/// A single-level image (the kidney biopsy's plain TIFF, which OpenSlide does not open) is viewed
/// from a pyramid made in memory, laid out as openslide-python lays out the same image.
#[test]
fn a_flat_tiff_is_laid_out_as_openslide_python_lays_it_out() {
    let (Some(python), Some(kidney)) = (
        fetched("SCANCER_CLIENTS_PYTHON", "a_flat_tiff_is_laid_out"),
        fetched("SCANCER_KIDNEY_SLIDE", "a_flat_tiff_is_laid_out"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("kidney.tif");
    std::fs::copy(&kidney, &copy).unwrap();
    let reference = deepzoom_reference(&python, &[&copy]);
    let server = serve(dir.path(), &[]);
    let listed = listing(&server);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["width"], 1493);
    assert_eq!(listed[0]["height"], 901);
    let id = id_of(&listed, "kidney.tif");
    assert_deep_zoom_as_openslide_python(&server, &id, &reference[copy.to_str().unwrap()]);
    let thumbnail = server.get(&format!("/slides/{id}/thumbnail.jpeg?size=300"));
    assert_eq!(thumbnail.status, 200);
    let image = image::load_from_memory(&thumbnail.body).unwrap();
    assert_eq!((image.width(), image.height()), (300, 181));
}

#[cfg(feature = "openslide")]
#[test]
fn real_slides_are_laid_out_as_openslide_python_lays_them_out() {
    let (Some(python), Some(cmu), Some(tcga), Some(_)) = (
        fetched("SCANCER_CLIENTS_PYTHON", "real_slides_are_laid_out"),
        fetched("SCANCER_CMU_SLIDE", "real_slides_are_laid_out"),
        fetched("SCANCER_TCGA_SLIDE", "real_slides_are_laid_out"),
        fetched("SCANCER_OPENSLIDE", "real_slides_are_laid_out"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tcga")).unwrap();
    let (cmu_copy, tcga_copy) = (
        dir.path().join("CMU-1-Small-Region.svs"),
        dir.path().join("tcga/frozen.svs"),
    );
    std::fs::copy(&cmu, &cmu_copy).unwrap();
    std::fs::copy(&tcga, &tcga_copy).unwrap();
    let reference = deepzoom_reference(&python, &[&cmu_copy, &tcga_copy]);
    let server = serve(dir.path(), &[]);
    let listed = listing(&server);
    let names: Vec<&str> = listed.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["CMU-1-Small-Region.svs", "tcga/frozen.svs"]);
    let cmu_id = id_of(&listed, "CMU-1-Small-Region.svs");
    let cmu_listed = &listed[0];
    assert_eq!(cmu_listed["vendor"], "aperio");
    assert_eq!(cmu_listed["mpp"], 0.499);
    assert_eq!(cmu_listed["levels"], 1);
    // The TCGA section has two levels: Deep Zoom's lower levels are read from the second.
    let tcga_id = id_of(&listed, "tcga/frozen.svs");
    assert_eq!(listed[1]["levels"], 2);
    assert_eq!(listed[1]["mpp"], Value::Null);
    for (id, path) in [(&cmu_id, &cmu_copy), (&tcga_id, &tcga_copy)] {
        assert_deep_zoom_as_openslide_python(&server, id, &reference[path.to_str().unwrap()]);
    }
    let properties = server.get(&format!("/slides/{cmu_id}/properties")).json();
    assert_eq!(properties["objective"], 20.0);
    assert_eq!(properties["vendor"], "aperio");
    assert_eq!(properties["width"], 2220);
    let tcga_properties = server.get(&format!("/slides/{tcga_id}/properties")).json();
    assert_eq!(tcga_properties["levels"][1]["width"], 2221);
}

/// Paths that lead out of the folder, and uploads that would write outside it, replace a file,
/// exceed the limit or are not slides, are refused; a refused or abandoned upload leaves nothing.
#[test]
fn hostile_paths_and_uploads_are_refused_and_leave_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("slides");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let png = std::fs::read("testdata/slides/tissue.png").unwrap();
    std::fs::write(dir.join("tissue.png"), &png).unwrap();
    std::fs::write(outside.join("secret.png"), &png).unwrap();
    // A link to a folder outside, and one to a file outside: neither is listed.
    std::os::unix::fs::symlink(&outside, dir.join("linked-folder")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.png"), dir.join("linked.png")).unwrap();
    let server = serve(&dir, &["--max-slide-upload", "100000"]);
    let listed = listing(&server);
    let names: Vec<&str> = listed.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["tissue.png"]);
    for path in [
        "/slides/..%2F..%2Fetc%2Fpasswd.dzi",
        "/slides/../outside/secret.png.dzi",
        "/slides/%2e%2e/properties",
        "/slides/linked.png/properties",
    ] {
        let reply = server.get(path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
    }
    let outside_before = std::fs::read_dir(&outside).unwrap().count();
    for (name, status, says) in [
        ("..%2Foutside%2Fx.png", 400, "a file name, not a path"),
        ("notes.txt", 400, "expected a slide file name"),
        ("tissue.png", 409, "already in the slide folder"),
        ("fake.svs", 422, "is not a slide scancer can read"),
    ] {
        let body: &[u8] = if name == "fake.svs" {
            b"not a slide"
        } else {
            &png
        };
        let reply = server.put(&format!("/slides/{name}"), body);
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        assert!(reply.text().contains(says), "{name}: {}", reply.text());
    }
    let big = vec![0u8; 100_001];
    let reply = server.put("/slides/big.png", &big);
    assert_eq!(reply.status, 413, "{}", reply.text());
    // A client that stops mid-upload: the part file goes with the connection.
    {
        use std::io::Write;
        let mut stream = server.connect();
        write!(
            stream,
            "PUT /slides/cut.png HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
        )
        .unwrap();
        stream.write_all(&png[..1000]).unwrap();
    }
    let parts = dir.join(".scancer/uploads");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(&parts).unwrap().count() > 0 {
        assert!(std::time::Instant::now() < deadline, "a part file stayed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The one good upload, under its sanitised name.
    let reply = server.put("/slides/My%20scan%20%231.png", &png);
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["name"], "My_scan__1.png");
    assert_eq!(std::fs::read(dir.join("My_scan__1.png")).unwrap(), png);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), outside_before);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            ".scancer",
            "My_scan__1.png",
            "linked-folder",
            "linked.png",
            "tissue.png"
        ]
    );
}

/// Ids and what the catalogue learnt stay across a restart; a changed file is read anew.
#[test]
fn the_catalogue_is_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let slide: PathBuf = dir.path().join("a.png");
    std::fs::copy("testdata/slides/tissue.png", &slide).unwrap();
    let server = serve(dir.path(), &[]);
    let first = listing(&server);
    let tile = server.get(&format!(
        "/slides/{}_files/9/0_0.jpeg",
        id_of(&first, "a.png")
    ));
    assert_eq!(tile.status, 200);
    drop(server);
    assert!(dir.path().join(".scancer/catalogue.sqlite3").exists());
    // The slide is replaced by a larger image under the same name.
    std::fs::copy("testdata/slides/tissue-tiled.tif", dir.path().join("b.tif")).unwrap();
    let bigger = image::RgbImage::from_pixel(600, 500, image::Rgb([200, 100, 150]));
    bigger.save(&slide).unwrap();
    let server = serve(dir.path(), &[]);
    let second = listing(&server);
    assert_eq!(id_of(&second, "a.png"), id_of(&first, "a.png"));
    let a = second.iter().find(|s| s["name"] == "a.png").unwrap();
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(600), Some(500))
    );
    let tile = server.get(&format!(
        "/slides/{}_files/10/0_0.jpeg",
        id_of(&second, "a.png")
    ));
    let image = image::load_from_memory(&tile.body).unwrap().to_rgb8();
    let p = image.get_pixel(10, 10);
    assert!(p[0].abs_diff(200) < 6 && p[1].abs_diff(100) < 6, "{p:?}");
    assert_eq!(server.get("/slides/0123456789abcdef.dzi").status, 404);
}
