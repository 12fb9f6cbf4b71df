//! scancer: run, package, manage and serve Scancer's breast-cancer detection models.
//!
//! The library is the binary's body. Its public surface is only what the binary, the help
//! generator and the fuzz targets need: `main`, the command line (`Cli`, from which the man pages
//! and completions are generated), with the `fuzzing` feature, the fuzz targets' entry points, and
//! with the `bench` feature, what the benchmark tools time apart from the model.
//!
//! Layers, bottom to top (README.md, "Developing", has the map): `records` and the small shared
//! modules; `engine` (only model commands load it, and it opens libtorch at run time); `pipeline`,
//! `slide`, `serve`, `remote` and `store`; `cli` and `commands` on top.

mod attribution_png;
#[cfg(feature = "bench")]
pub mod bench;
mod cli;
mod commands;
mod destination;
mod dicom;
mod engine;
mod exit;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod inputs;
mod mar;
mod mask_png;
mod messages;
mod output_file;
mod pipeline;
mod png_text;
mod progress;
mod properties;
mod records;
mod remote;
mod resume;
mod serve;
mod slide;
mod store;
mod uuid;

pub use cli::Cli;
pub use commands::main;
