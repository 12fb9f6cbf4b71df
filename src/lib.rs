//! scancer: run, package, manage and serve Scancer's breast-cancer detection models.
//!
//! The engine (`engine`: `model` + `preprocess` + `postprocess`, configured by `handler_config`) is
//! shared by every command; `commands` holds the thin command-line front ends.

mod messages;

pub mod cli;
pub mod commands;
pub mod engine;
pub mod exit;
pub mod fuzzing;
pub mod inputs;
pub mod mar;
pub mod output_file;
pub mod pipeline;
pub mod records;
pub mod remote;
pub mod resume;
pub mod serve;
pub mod slide;
pub mod store;
