//! Sets an rpath to the libtorch that torch-sys linked, so `scancer` runs without LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Some(dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        // Resolve `.libtorch` (a link into the user cache) so the binary keeps working from anywhere.
        println!("cargo:rerun-if-changed={}", std::path::Path::new(&dir).display());
        let dir = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.into());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
