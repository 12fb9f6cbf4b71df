//! Whole slides: an image larger than a patch model's input is cut into windows of the input size
//! (stride configurable, right and bottom edges padded with white), at the pyramid level and
//! resolution asked for (`resolution`), background windows are skipped by the notebook's saturation
//! test, and the tissue windows go through the same engine as single patches, in batches (`scan`).
//! The slide is read in bands of rows (`rows`), so memory follows the slide's width, not its area,
//! and every size it declares is checked before allocation. A slide's result counts tissue windows
//! only: one without tissue has no result (an error record that says why), and one with implausibly
//! little gets a warning. Binary, multiclass and segmentation models all run on slides (`classes`);
//! results are in level-0 pixels, with their provenance, in records and in the exports viewers read.
//!
//! `predict` runs one input through the rest; `types` holds the words all of them share, `usage`
//! the checks of a run's settings, `outputs` where each slide's files go, `error` why an input
//! failed.

mod class_colours;
mod classes;
mod error;
pub(crate) mod exports;
pub(crate) mod heatmap;
mod heatmap_tiff;
pub(crate) mod model;
pub(crate) mod outputs;
pub(crate) mod plasma;
mod predict;
mod provenance;
mod pyramid_tiff;
mod regions;
pub(crate) mod resolution;
pub(crate) mod rows;
mod scan;
pub(crate) mod tiles;
pub(crate) mod tissue;
mod types;
mod usage;

pub(crate) use predict::{Files, Slides};
pub(crate) use types::SlideOptions;
pub(crate) use usage::{check_run, Asked};
