//! Compiles serve's gRPC services (proto/) into Rust with protox, a protobuf compiler in Rust, so
//! that building needs no system protoc; and embeds the viewer's OpenSeadragon (from npm, fetched
//! by `cargo xtask setup` into the folder SCANCER_OPENSEADRAGON names), so that the page needs no
//! CDN. A build without it serves a page that says how to get it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    embed_openseadragon()?;
    let protos = [
        "proto/kserve_v2.proto",
        "proto/torchserve_inference.proto",
        "proto/torchserve_management.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-changed=proto/google/rpc/status.proto");
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_transport(false)
        // Tensors and images as `bytes::Bytes`: slices of the message, not copies.
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}

fn embed_openseadragon() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rustc-check-cfg=cfg(viewer_assets)");
    println!("cargo:rerun-if-env-changed=SCANCER_OPENSEADRAGON");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let Some(dir) = std::env::var_os("SCANCER_OPENSEADRAGON").map(std::path::PathBuf::from) else {
        return Ok(());
    };
    let files = ["openseadragon.min.js", "LICENSE.txt"];
    for file in files {
        println!("cargo:rerun-if-changed={}", dir.join(file).display());
    }
    if files.iter().all(|f| dir.join(f).is_file()) {
        for file in files {
            std::fs::copy(dir.join(file), out.join(file))?;
        }
        println!("cargo:rustc-cfg=viewer_assets");
    } else {
        println!(
            "cargo:warning=OpenSeadragon is not in {} (run `cargo xtask setup`): serve --slides will have no viewer page",
            dir.display()
        );
    }
    Ok(())
}
