//! The services and messages tonic generates from `proto/` (see build.rs): KServe V2's and
//! TorchServe's. Modules nest as the packages do, so that one package's messages reach another's
//! (TorchServe's PredictionResponse carries a google.rpc.Status).
#![allow(clippy::all, clippy::pedantic, unreachable_pub)]

pub(crate) mod inference {
    tonic::include_proto!("inference");
}
pub(crate) mod org {
    pub(crate) mod pytorch {
        pub(crate) mod serve {
            pub(crate) mod grpc {
                pub(crate) mod inference {
                    tonic::include_proto!("org.pytorch.serve.grpc.inference");
                }
                pub(crate) mod management {
                    tonic::include_proto!("org.pytorch.serve.grpc.management");
                }
            }
        }
    }
}
pub(crate) mod google {
    pub(crate) mod rpc {
        tonic::include_proto!("google.rpc");
    }
}
pub(crate) use org::pytorch::serve::grpc::inference as torchserve;
pub(crate) use org::pytorch::serve::grpc::management;
