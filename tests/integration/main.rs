//! scancer's integration tests, one binary: each module drives the real `scancer` binary (and real
//! third-party tools: promtool, OpenSlide) the way users and scripts do; `util` holds what they share.

mod util;

mod archives;
mod assets;
mod engine;
mod explanations;
mod formats;
mod hostile;
mod model_store;
mod parity;
mod predict;
mod real_slides;
mod remote;
mod serve;
mod served_slides;
mod slide_kinds;
mod slide_regions;
mod slides;
mod slurm;
mod store;
mod tls;
mod wsinfer;
