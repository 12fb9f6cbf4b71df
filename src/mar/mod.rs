//! TorchServe model archives (`.mar`), as torch-model-archiver 0.12 writes them and TorchServe 0.12
//! reads them. Work in progress for `scancer archive` (issue #3): the manifest is here; writing and
//! reading archives follow.

pub mod entries;
pub mod manifest;
pub mod read;
pub mod write;
