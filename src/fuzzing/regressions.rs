//! Replays, on the stable toolchain, every input the fuzz targets were seeded with (`fuzz/seeds/`)
//! and every crash they found (`testdata/fuzz/<target>/`, minimised), through the same entry points
//! the fuzzer calls (`scancer::fuzzing`): a fixed bug stays fixed without nightly or libFuzzer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failed = Vec::new();
    let mut count = 0;
    for folder in [root.join("fuzz/seeds"), root.join("testdata/fuzz")] {
        let Ok(dir) = std::fs::read_dir(folder.join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(count > 0, "no inputs for the {target} target");
    assert!(
        failed.is_empty(),
        "{target}: these inputs panic: {failed:#?}"
    );
}

#[test]
fn archive_inputs() {
    replay("archive", super::archive);
}

#[test]
fn handler_config_inputs() {
    replay("handler_config", super::handler_config);
}

#[test]
fn image_inputs() {
    replay("image", super::image);
}

#[test]
fn slide_inputs() {
    replay("slide", super::slide);
}

#[test]
fn serve_http_inputs() {
    replay("serve_http", super::serve_http);
}

/// The seeds reach what they were written for: every request of a valid seed is answered 200 (the
/// 100 Continue of the chunked seed aside), so the target fuzzes the models' answers, not only errors.
#[test]
fn serve_http_seeds_are_answered() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/serve_http");
    for entry in std::fs::read_dir(seeds).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let requests = std::fs::read(&path).unwrap();
        let answers = super::serve_http_answers(&requests);
        let text = String::from_utf8_lossy(&answers);
        let statuses: Vec<&str> = text
            // Status lines, HTTP/1.1 or (for an HTTP/1.0 request) HTTP/1.0.
            .match_indices("HTTP/1.")
            .map(|(k, _)| &text[k + 9..k + 12])
            .filter(|s| *s != "100")
            .collect();
        let sent = requests.windows(8).filter(|w| w == b" HTTP/1.").count();
        let want = if name == "unauthorized" { "401" } else { "200" };
        assert_eq!(statuses.len(), sent, "{name}: {text}");
        assert!(
            statuses.iter().all(|s| *s == want),
            "{name}: {statuses:?}\n{text}"
        );
    }
}

#[test]
fn store_answers_inputs() {
    replay("store_answers", super::store_answers);
}
