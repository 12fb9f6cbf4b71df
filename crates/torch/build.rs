//! Compiles the TorchScript shim (csrc/model.cpp) against the libtorch that torch-sys linked, and sets
//! the engine's library path: `$ORIGIN` first (an installed layout or release archive keeps libtorch's
//! libraries beside the engine), then the build tree's libtorch, so the engine opens without
//! LD_LIBRARY_PATH wherever it is.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-changed=csrc/model.cpp");
    let lib = PathBuf::from(
        std::env::var_os("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports its libtorch"),
    );
    println!("cargo:rerun-if-changed={}", lib.display());
    // Resolve `.libtorch` (a link into the user cache) so the binary keeps working from anywhere.
    let lib = std::fs::canonicalize(&lib).unwrap_or(lib);
    let root = lib.parent().unwrap_or(Path::new("/"));
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .define(
            "_GLIBCXX_USE_CXX11_ABI",
            std::env::var("LIBTORCH_CXX11_ABI")
                .unwrap_or_else(|_| "1".into())
                .as_str(),
        )
        .define("GLOG_USE_GLOG_EXPORT", None)
        .file("csrc/model.cpp")
        .compile("scancer_model");
    // `$ORIGIN` reaches the linker as written (no shell between), and ld.so expands it. In the
    // workspace's own target folder the build tree's libtorch is found relatively too
    // (target/{profile}/ and target/{profile}/deps/ to .libtorch/lib), so the engine names no path
    // of the build machine; elsewhere (another CARGO_TARGET_DIR or LIBTORCH) it names the libtorch
    // it was built against, after `$ORIGIN`.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let in_tree = std::fs::canonicalize(workspace.join("target"))
        .is_ok_and(|target| out_dir.starts_with(target));
    let tree_libtorch = std::fs::canonicalize(workspace.join(".libtorch/lib")).ok();
    let mut runpath = vec![
        "$ORIGIN".to_string(),
        "$ORIGIN/../../.libtorch/lib".to_string(),
        "$ORIGIN/../../../.libtorch/lib".to_string(),
    ];
    if !in_tree || tree_libtorch.as_deref() != Some(lib.as_path()) {
        runpath.push(lib.display().to_string());
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", runpath.join(":"));
    // An AOTInductor package's compiled model names libtorch.so, which nothing of the engine
    // references by symbol: kept loaded, the model's dependency is met by it wherever the package
    // is unpacked (its library has no search path of its own).
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch,--as-needed");
    // A CUDA libtorch registers its CUDA backend from libtorch_cuda.so, which nothing references by
    // symbol: without --no-as-needed the linker drops it and CUDA is never available.
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
