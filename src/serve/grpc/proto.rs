//! The services and messages tonic generates from `proto/` (see build.rs): KServe V2's and
//! TorchServe's.
#![allow(clippy::all, clippy::pedantic, unreachable_pub)]

pub(crate) mod inference {
    tonic::include_proto!("inference");
}
pub(crate) mod torchserve {
    tonic::include_proto!("org.pytorch.serve.grpc.inference");
}
