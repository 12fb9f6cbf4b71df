//! Compiles serve's gRPC services (proto/) into Rust with protox, a protobuf compiler in Rust, so
//! that building needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
