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
    replay("archive", scancer::fuzzing::archive);
}

#[test]
fn handler_config_inputs() {
    replay("handler_config", scancer::fuzzing::handler_config);
}

#[test]
fn image_inputs() {
    replay("image", scancer::fuzzing::image);
}

#[test]
fn serve_http_inputs() {
    replay("serve_http", scancer::fuzzing::serve_http);
}

#[test]
fn store_answers_inputs() {
    replay("store_answers", scancer::fuzzing::store_answers);
}
