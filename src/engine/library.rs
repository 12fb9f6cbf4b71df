//! Where scancer finds the native libraries its engines open at run time (libtorch's engine,
//! ONNX Runtime): only commands that run a model open one, and only the one its model needs.

use std::path::{Path, PathBuf};

/// An engine's library could not be opened; the message says where it looked and what failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unavailable(pub(crate) String);

/// The places a library named `file` is looked for, in order: beside the executable (`cargo
/// build`'s target folder, a release archive), in `deps/` (where `cargo test` leaves its
/// binaries), in `../lib/scancer/` (an installed prefix) and, for a build tree's binaries, in the
/// workspace folder `tree` (`.onnxruntime`, which `cargo xtask setup` links), seen from
/// `target/PROFILE/` and `target/PROFILE/deps/`.
pub(crate) fn beside_executable(file: &str, tree: Option<&str>) -> Vec<PathBuf> {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    let prefix = dir.parent().map_or_else(|| dir.clone(), Path::to_path_buf);
    let mut places = vec![
        dir.join(file),
        dir.join("deps").join(file),
        prefix.join("lib/scancer").join(file),
    ];
    if let Some(tree) = tree {
        places.push(dir.join("../..").join(tree).join(file));
        places.push(dir.join("../../..").join(tree).join(file));
    }
    places
}
