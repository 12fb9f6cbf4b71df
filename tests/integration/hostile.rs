//! The hostile-input corpus: named cases across commands, each with its exact exit code, a clear
//! message, nothing on stdout a script could take for a result, and no panic.

use crate::util::server::{read_reply, Server};
use crate::util::{assert_fatal, root, run, scancer, PCAM};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// (file name, bytes or a fixture to copy, the error it must get; None: a result).
fn image_cases() -> Vec<(&'static [u8], Source, Option<&'static str>)> {
    use Source::*;
    vec![
        (b"truncated.png", Fixture("testdata/images/truncated.png"), Some("cannot decode PNG: unexpected end of file")),
        (b"truncated.jpg", Fixture("testdata/images/truncated.jpg"), Some("cannot decode JPEG: the file is truncated")),
        (b"corrupt.jpg", Fixture("testdata/images/corrupt.jpg"), Some("cannot decode JPEG")),
        (b"truncated.tif", Head("testdata/images/patch.tif", 3000), Some("cannot decode TIFF")),
        (b"garbage.tif", Bytes(b"II*\0garbage"), Some("cannot decode TIFF")),
        (b"truncated.webp", Head("testdata/images/patch.webp", 200), Some("cannot decode WEBP")),
        (b"truncated.gif", TruncatedGif, Some("cannot decode GIF")),
        (b"empty.png", Bytes(b""), Some("empty file")),
        (b"zero.jpg", Bytes(b""), Some("empty file")),
        (b"text.jpg", Bytes(b"hello\n"), Some("not a supported image (PNG, JPEG, TIFF, BMP, WebP or GIF)")),
        (b"not-an-image.png", Fixture("testdata/images/not-an-image.png"), Some("not a supported image")),
        (b"bomb-100000x100000.png", Fixture("testdata/images/bomb-100000x100000.png"), Some("image is 100000x100000 = 10000000000 pixels, over the limit of 178956970 (--max-image-pixels)")),
        (b"bomb.bmp", BmpBomb, Some("Image too large")),
        (b"one-pixel.png", OnePixel, Some("image is 1x1 but the model takes 96x96")),
        (b"patch-rgb16.png", Fixture("testdata/images/patch-rgb16.png"), None),
        (b"patch-palette.png", Fixture("testdata/images/patch-palette.png"), None),
        (b"patch-cmyk.jpg", Fixture("testdata/images/patch-cmyk.jpg"), None),
        (b"patch-gray-alpha.png", Fixture("testdata/images/patch-gray-alpha.png"), None),
        (b"patch.tif", Fixture("testdata/images/patch.tif"), None),
        (b"patch.webp", Fixture("testdata/images/patch.webp"), None),
        (b"patch.bmp", Fixture("testdata/images/patch.bmp"), None),
        (b"caf\xe9.png", Fixture("examples/patches/patch-00.png"), None),
        (b"loop-a", Link("loop-b"), Some("Too many levels of symbolic links")),
        (b"loop-b", Link("loop-a"), Some("Too many levels of symbolic links")),
        (b"dangling.png", Link("nowhere.png"), Some("No such file or directory")),
    ]
}

enum Source {
    Fixture(&'static str),
    /// The first bytes of a fixture.
    Head(&'static str, usize),
    Bytes(&'static [u8]),
    Link(&'static str),
    /// A BMP header declaring 100,000 x 100,000 pixels.
    BmpBomb,
    /// The first 300 bytes of a GIF of a patch.
    TruncatedGif,
    OnePixel,
}

fn make(dir: &Path, name: &[u8], source: &Source) {
    let path = dir.join(std::ffi::OsStr::from_bytes(name));
    match source {
        Source::Fixture(f) => {
            std::fs::copy(root().join(f), &path).unwrap();
        }
        Source::Head(f, n) => {
            let bytes = std::fs::read(root().join(f)).unwrap();
            std::fs::write(&path, &bytes[..(*n).min(bytes.len())]).unwrap();
        }
        Source::Bytes(b) => std::fs::write(&path, b).unwrap(),
        Source::Link(to) => std::os::unix::fs::symlink(to, &path).unwrap(),
        Source::BmpBomb => {
            let mut header = b"BM".to_vec();
            for v in [54u32, 0, 54, 40] {
                header.extend_from_slice(&v.to_le_bytes());
            }
            header.extend_from_slice(&100_000i32.to_le_bytes());
            header.extend_from_slice(&100_000i32.to_le_bytes());
            header.extend_from_slice(&1u16.to_le_bytes());
            header.extend_from_slice(&24u16.to_le_bytes());
            header.extend_from_slice(&[0u8; 24]);
            std::fs::write(&path, header).unwrap();
        }
        Source::TruncatedGif => {
            let patch = image::open(root().join("examples/patches/patch-00.png")).unwrap();
            let mut gif = std::io::Cursor::new(Vec::new());
            patch.write_to(&mut gif, image::ImageFormat::Gif).unwrap();
            std::fs::write(&path, &gif.get_ref()[..300]).unwrap();
        }
        Source::OnePixel => image::RgbImage::from_pixel(1, 1, image::Rgb([200, 100, 150]))
            .save_with_format(&path, image::ImageFormat::Png)
            .unwrap(),
    }
}

#[test]
fn a_directory_of_hostile_files_gets_one_record_each() {
    let dir = tempfile::tempdir().unwrap();
    let cases = image_cases();
    for (name, source, _) in &cases {
        make(dir.path(), name, source);
    }
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "-f", "jsonl", "-q"])
        .arg(dir.path()));
    assert_eq!(out.code, 1, "some inputs failed: {}", out.stderr);
    assert!(!out.stderr.contains("panicked") && !out.stdout.contains("panicked"));
    let records: HashMap<String, serde_json::Value> = out
        .records()
        .into_iter()
        .map(|r| (r["path"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(
        records.len(),
        cases.len(),
        "every path exactly once: {}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), cases.len());
    for (name, source, error) in &cases {
        let shown = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(name))
            .to_string_lossy()
            .into_owned();
        let record = &records[&shown];
        match error {
            Some(needle) => {
                assert!(
                    record["class"].is_null() && record["score"].is_null(),
                    "{shown}: no result"
                );
                let message = record["error"].as_str().unwrap_or_default();
                assert!(
                    message.contains(needle),
                    "{shown}: {message:?} lacks {needle:?}"
                );
            }
            None => {
                assert!(record["error"].is_null(), "{shown}: {}", record["error"]);
                // The same answer as the file alone.
                if let Source::Fixture(f) = source {
                    let alone = crate::util::predict(PCAM, &[f]);
                    assert_eq!(
                        alone.records()[0]["probabilities"],
                        record["probabilities"],
                        "{shown}"
                    );
                }
            }
        }
    }
}

#[test]
fn unusable_models_configurations_and_archives_are_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let syntax = write("syntax.toml", "[input\nheight = 96\n");
    let unknown = write(
        "unknown.toml",
        "[input]\nheight = 96\nwidth = 96\nsharpen = true\n[output]\nkind = \"binary\"\n",
    );
    let wrong_type = write(
        "type.toml",
        "[input]\nheight = \"96\"\nwidth = 96\n[output]\nkind = \"binary\"\n",
    );
    let wrong_kind = write(
        "kind.toml",
        "[input]\nheight = 96\nwidth = 96\n[output]\nkind = \"tumour\"\n",
    );
    let zero = write(
        "zero.toml",
        "[input]\nheight = 0\nwidth = 96\n[output]\nkind = \"binary\"\n",
    );
    let misfit = write(
        "misfit.toml",
        "[input]\nheight = 96\nwidth = 96\n[output]\nkind = \"multiclass\"\n",
    );
    let text_mar = write("text.mar", "just text");
    let empty_zip = dir.path().join("empty.mar");
    zip::ZipWriter::new(std::fs::File::create(&empty_zip).unwrap())
        .finish()
        .unwrap();
    let slip = dir.path().join("slip.mar");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&slip).unwrap());
    zip.start_file("../../outside.pt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"x").unwrap();
    zip.finish().unwrap();
    let duplicate = dir.path().join("duplicate.mar");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&duplicate).unwrap());
    zip.start_file(
        "MAR-INF/MANIFEST.json",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"{}").unwrap();
    // The zip crate refuses to write a duplicate name, so the second copy is patched in below.
    zip.start_file(
        "MAR-INF/MANIFEST.jsoN",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"{}").unwrap();
    zip.finish().unwrap();
    let mut bytes = std::fs::read(&duplicate).unwrap();
    for k in 0..bytes.len() - 21 {
        if &bytes[k..k + 21] == b"MAR-INF/MANIFEST.jsoN" {
            bytes[k + 20] = b'n';
        }
    }
    std::fs::write(&duplicate, bytes).unwrap();
    let bomb = dir.path().join("bomb.mar");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&bomb).unwrap());
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("MAR-INF/MANIFEST.json", deflated).unwrap();
    zip.write_all(br#"{"createdOn":"01/01/2026 00:00:00","runtime":"python","model":{"modelName":"bomb","serializedFile":"model.pt","handler":"image_classifier","modelVersion":"1.0"},"archiverVersion":"0.12.0"}"#).unwrap();
    zip.start_file("model.pt", deflated).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        zip.write_all(&zeros).unwrap();
    }
    zip.finish().unwrap();

    let m = |model: &str, config: Option<&str>| {
        let mut args = vec![
            "predict".to_string(),
            "-m".into(),
            model.into(),
            "examples/patches/patch-00.png".into(),
        ];
        if let Some(c) = config {
            args.extend(["-c".into(), c.into()]);
        }
        args
    };
    let slip = slip.to_str().unwrap().to_string();
    let duplicate = duplicate.to_str().unwrap().to_string();
    let bomb = bomb.to_str().unwrap().to_string();
    let empty_zip = empty_zip.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("malformed TOML", m(PCAM, Some(&syntax)), "syntax.toml"),
        (
            "unknown configuration key",
            m(PCAM, Some(&unknown)),
            "sharpen",
        ),
        (
            "wrong configuration type",
            m(PCAM, Some(&wrong_type)),
            "type.toml",
        ),
        ("unknown output kind", m(PCAM, Some(&wrong_kind)), "tumour"),
        ("zero input size", m(PCAM, Some(&zero)), "zero.toml"),
        (
            "output shape does not fit",
            m(PCAM, Some(&misfit)),
            "does not fit",
        ),
        (
            "not TorchScript",
            m(
                "testdata/models/not-torchscript.pt",
                Some("examples/pcam-classification.toml"),
            ),
            "not-torchscript.pt",
        ),
        (
            "missing model",
            m("missing.pt", Some("examples/pcam-classification.toml")),
            "missing.pt",
        ),
        (
            "missing configuration",
            m(PCAM, Some("missing.toml")),
            "missing.toml",
        ),
        ("text named .mar", m(&text_mar, None), "not a model archive"),
        ("zip without a manifest", m(&empty_zip, None), "MANIFEST"),
        ("zip slip", m(&slip, None), "leads out of the archive"),
        ("duplicate entries", m(&duplicate, None), "duplicate"),
        ("zip bomb", m(&bomb, None), "bomb.mar"),
        (
            "shard out of range",
            vec![
                "predict".into(),
                "-m".into(),
                PCAM.into(),
                "--shard".into(),
                "3/2".into(),
                "examples/patches".into(),
            ],
            "shard",
        ),
    ];
    for (name, args, needle) in cases {
        let out = run(scancer().args(&args));
        assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
        if name == "shard out of range" {
            // A usage error from the argument parser: exit 2, nothing on stdout.
            assert_eq!(out.code, 2, "{name}");
            assert!(
                out.stdout.is_empty() && out.stderr.contains(needle),
                "{name}: {}",
                out.stderr
            );
            continue;
        }
        assert_fatal(&out, needle);
    }
}

#[test]
fn hostile_http_requests() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "ana:pw\n").unwrap();
    let server = Server::start(&[
        PCAM,
        "-q",
        "--auth-file",
        users.to_str().unwrap(),
        "--client-timeout",
        "2",
        "--open",
        "health",
    ]);
    let ok = "authorization: Basic YW5hOnB3\r\n";
    let huge = format!(
        "GET /ping HTTP/1.1\r\nx-big: {}\r\n\r\n",
        "x".repeat(20_000)
    );
    let many = format!(
        "GET /ping HTTP/1.1\r\n{}\r\n",
        (0..70).map(|k| format!("x-{k}: y\r\n")).collect::<String>()
    );
    let broken = "--B\r\nbroken-part-x";
    let multipart = format!(
        "POST /predictions/pcam-classification HTTP/1.1\r\n{ok}content-type: multipart/form-data; boundary=B\r\ncontent-length: {}\r\n\r\n{broken}",
        broken.len()
    );
    // Requests that cannot be framed are refused by hyper's parser before the server reads them:
    // the status, an empty body and a closed connection (`framing`). Every other refusal is the
    // server's own, in TorchServe's shape.
    let framing = true;
    let cases: Vec<(&str, String, u16, bool)> = vec![
        ("wrong method", "DELETE /predictions/pcam-classification HTTP/1.1\r\n".to_string() + ok + "\r\n", 405, false),
        ("unknown path", format!("GET /admin HTTP/1.1\r\n{ok}\r\n"), 404, false),
        ("not HTTP", "\x16\x03\x01\x00\x05hello\r\n\r\n".into(), 400, framing),
        ("huge header", huge, 431, framing),
        ("too many headers", many, 431, framing),
        ("Content-Length not a number", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}content-length: ten\r\n\r\n"), 400, framing),
        ("conflicting Content-Lengths", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}content-length: 5\r\ncontent-length: 6\r\n\r\nhello"), 400, framing),
        // Chunked wins (RFC 9112 6.3), and the connection closes after: no request is smuggled.
        ("Content-Length and chunked", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"), 400, false),
        ("unsupported transfer encoding", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}transfer-encoding: gzip\r\n\r\n"), 400, framing),
        ("bad chunk size", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}transfer-encoding: chunked\r\n\r\nzz\r\n"), 400, false),
        // A chunk of 2^64 - 1 bytes is read like any other, up to the limit or the client timeout.
        ("chunk size near 2^64", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}transfer-encoding: chunked\r\n\r\n5\r\nhello\r\nffffffffffffffff\r\n"), 408, false),
        ("missing Content-Length", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}\r\n"), 400, false),
        ("body over the limit", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}content-length: 99999999999\r\n\r\n"), 413, false),
        ("lying Content-Length", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}content-length: 100\r\n\r\nshort"), 408, false),
        ("broken multipart", multipart, 400, false),
        ("no credentials", "GET /models HTTP/1.1\r\n\r\n".into(), 401, false),
        ("wrong Basic password", "GET /models HTTP/1.1\r\nauthorization: Basic YW5hOnd4\r\n\r\n".into(), 401, false),
        ("Basic not base64", "GET /models HTTP/1.1\r\nauthorization: Basic ***\r\n\r\n".into(), 401, false),
        ("wrong Bearer token", "GET /models HTTP/1.1\r\nauthorization: Bearer nope\r\n\r\n".into(), 401, false),
        ("unknown scheme", "GET /models HTTP/1.1\r\nauthorization: Digest x\r\n\r\n".into(), 401, false),
        ("not an image", format!("PUT /predictions/pcam-classification HTTP/1.1\r\n{ok}content-length: 5\r\n\r\nhello"), 400, false),
    ];
    for (name, request, status, framing) in cases {
        let mut stream = server.connect();
        stream.write_all(request.as_bytes()).unwrap();
        let reply = read_reply(&mut stream).unwrap_or_else(|e| panic!("{name}: no answer ({e})"));
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        if framing {
            assert!(reply.body.is_empty(), "{name}: {}", reply.text());
            assert_eq!(reply.header("connection"), Some("close"), "{name}");
            continue;
        }
        let body: serde_json::Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|_| panic!("{name}: {}", reply.text()));
        assert_eq!(body["code"], status, "{name}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }
    // Still serving.
    let patch = std::fs::read(root().join("examples/patches/patch-00.png")).unwrap();
    let reply = server.request(
        "PUT",
        "/predictions/pcam-classification",
        &[("authorization", "Basic YW5hOnB3")],
        &patch,
    );
    assert_eq!(reply.status, 200);
    assert!(!server.log().contains("panicked"));
}

/// A little-endian TIFF of 8-bit RGB declaring `width` x `height` pixels in tiles (or strips, when
/// `tile` is None, of `rows` rows) that hold no data.
fn tiff_header(width: u32, height: u32, tile: Option<(u32, u32)>, rows: u32) -> Vec<u8> {
    let mut entries: Vec<(u16, u16, u32, u32)> = vec![
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, 0), // BitsPerSample 8,8,8 at the data offset, patched below
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (277, 3, 1, 3),
        (284, 3, 1, 1),
    ];
    match tile {
        Some((tw, th)) => entries.extend([
            (322, 4, 1, tw),
            (323, 4, 1, th),
            (324, 4, 1, 0),
            (325, 4, 1, 16),
        ]),
        None => entries.extend([(273, 4, 1, 0), (278, 4, 1, rows), (279, 4, 1, 16)]),
    }
    entries.sort();
    let ifd_len = 2 + entries.len() * 12 + 4;
    let data = 8 + ifd_len as u32;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in entries {
        let value = if tag == 258 { data } else { value };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        if kind == 3 && count == 1 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    for _ in 0..3 {
        out.extend_from_slice(&8u16.to_le_bytes());
    }
    out.extend_from_slice(&[0u8; 16]);
    out
}

/// A PNG whose header declares `width` x `height` pixels, followed by a little of nothing.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        c.extend_from_slice(&crc.sum().to_be_bytes());
        c
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&[0u8; 4096]).unwrap();
    out.extend(chunk(b"IDAT", &z.finish().unwrap()));
    out
}

#[test]
fn hostile_slides_cost_one_record_each_and_never_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = [
        "testdata/slides/tissue.png",
        "testdata/slides/tissue-tiled.tif",
    ];
    std::fs::copy(root().join(good[0]), d.join("a-good.png")).unwrap();
    std::fs::copy(root().join(good[1]), d.join("z-good.tif")).unwrap();
    let tiled = std::fs::read(root().join(good[1])).unwrap();
    let png = std::fs::read(root().join(good[0])).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("b-png-1e6x2e9.png", png_header(1_000_000, 2_000_000_000), "the slide declares 1000000x2000000000 pixels; scancer reads slides up to 1048576 pixels a side"),
        ("c-tile-100000.tif", tiff_header(100_000, 100_000, Some((100_000, 100_000)), 0), "the TIFF declares 100000x100000-pixel tiles; scancer reads tiles of up to 512 MiB decoded"),
        ("d-tile-30000.tif", tiff_header(30_000, 30_000, Some((30_000, 30_000)), 0), "the TIFF declares 30000x30000-pixel tiles"),
        ("e-one-strip.tif", tiff_header(40_000, 40_000, None, 40_000), "the TIFF declares 40000x40000-pixel strips"),
        ("f-wide.tif", tiff_header(2_000_000, 100, None, 1), "cannot read TIFF"),
        ("g-truncated.tif", tiled[..tiled.len() / 2].to_vec(), "cannot read TIFF"),
        ("h-truncated.png", png[..png.len() / 2].to_vec(), "PNG"),
        ("i-zero.tif", tiff_header(0, 0, Some((16, 16)), 0), "TIFF"),
        ("j-garbage.png", b"\x89PNG\r\n\x1a\ngarbage".to_vec(), "cannot read PNG"),
        ("k-blank.png", blank_png(), "no tissue found"),
    ];
    for (name, bytes, _) in &cases {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    let out_file = d.join("out.jsonl");
    let tiles = d.join("tiles.csv");
    let out = run(scancer()
        .args(["predict", "-m", PCAM, "--tile", "-q", "-f", "jsonl", "-o"])
        .arg(&out_file)
        .arg("--tiles")
        .arg(&tiles)
        .arg(d));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("internal error"),
        "{}",
        out.stderr
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), cases.len() + 2, "every path once: {text}");
    for (name, _, needle) in &cases {
        let shown = d.join(name).to_string_lossy().into_owned();
        let record = records
            .iter()
            .find(|r| r["path"] == shown.as_str())
            .unwrap();
        let error = record["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{name}: {error:?} lacks {needle:?}");
        assert!(record["label"].is_null(), "{name}");
    }
    // Good slides' results are those of each alone, and their windows all reach --tiles.
    for (copy, original) in [("a-good.png", good[0]), ("z-good.tif", good[1])] {
        let shown = d.join(copy).to_string_lossy().into_owned();
        let record = records
            .iter()
            .find(|r| r["path"] == shown.as_str())
            .unwrap();
        let alone = crate::util::predict(PCAM, &["--tile", original]);
        assert_eq!(
            record["probabilities"],
            alone.records()[0]["probabilities"],
            "{copy}"
        );
        let rows = std::fs::read_to_string(&tiles)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with(&shown))
            .count();
        assert_eq!(rows, 20, "{copy}");
    }
}

fn blank_png() -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(300, 300, image::Rgb([255, 255, 255]))
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}
