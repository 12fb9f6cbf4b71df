//! scancer: run, package, manage and serve Scancer's breast-cancer detection models.
//!
//! The engine (`engine`: `model` + `preprocess` + `postprocess`, configured by `handler_config`) is
//! shared by every command; `commands` holds the thin command-line front ends.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod fuzzing;
pub mod handler_config;
pub mod inputs;
pub mod jpeg;
pub mod mar;
pub mod model;
pub mod model_source;
pub mod output;
pub mod output_file;
pub mod pipeline;
pub mod postprocess;
pub mod preprocess;
pub mod remote;
pub mod resample;
pub mod resume;
pub mod serve;
pub mod slide;
pub mod store;
