//! TorchServe model archives (`.mar`, `.tar.gz` and unpacked folders), as torch-model-archiver 0.12
//! writes them and TorchServe 0.12 reads them: the manifest, which files an archive holds, writing
//! and (untrusting) reading. `scancer_handler.py` is the TorchServe handler that archives built from
//! a scancer configuration carry.

pub(crate) mod entries;
pub(crate) mod manifest;
pub(crate) mod read;
pub(crate) mod write;
