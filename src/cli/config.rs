//! Plain configuration: what a command does, with every default, environment variable and profile
//! already applied (`resolve` builds these from the parsed arguments, once). Commands read these,
//! never the arguments.

use crate::engine::EngineOptions;
use crate::inputs::Shard;
use crate::pipeline::PipelineOptions;
use crate::records::Format;
use crate::remote::Client;
use crate::slide::heatmap::HeatmapOptions;
use crate::slide::SlideOptions;
use std::path::PathBuf;

/// `scancer predict`.
pub(crate) struct PredictConfig {
    pub(crate) inputs: Vec<PathBuf>,
    /// A model file or archive; with `remote`, the model's name on the server.
    pub(crate) model: PathBuf,
    /// The handler configuration given with `--config`.
    pub(crate) config: Option<PathBuf>,
    pub(crate) format: Format,
    /// `--output`; standard output when `None`.
    pub(crate) output: Option<PathBuf>,
    pub(crate) resume: bool,
    pub(crate) engine: EngineOptions,
    pub(crate) pipeline: PipelineOptions,
    pub(crate) shard: Option<Shard>,
    /// Where segmentation masks go.
    pub(crate) mask_dir: PathBuf,
    /// `--explain`: where each input's attribution PNG goes.
    pub(crate) explain: Option<PathBuf>,
    pub(crate) quiet: bool,
    /// Whether the table on standard output is coloured.
    pub(crate) color: bool,
    pub(crate) slides: SlideConfig,
    /// `--remote`: the inference API that answers instead of a local model.
    pub(crate) remote: Option<RemoteConfig>,
}

/// `predict`'s whole-slide settings.
pub(crate) struct SlideConfig {
    /// `--tile`: cut every input larger than the model's input into windows.
    pub(crate) tile: bool,
    pub(crate) options: SlideOptions,
    /// `--tiles`: every window's row.
    pub(crate) tiles: Option<PathBuf>,
    /// `--heatmap`: a file, or a folder for one map per input.
    pub(crate) heatmap: Option<PathBuf>,
    pub(crate) heatmap_options: HeatmapOptions,
    /// What a folder of heatmaps holds.
    pub(crate) heatmap_format: HeatmapFormat,
    /// `--geojson`, `--asap-xml`, `--lesions`: a file, or a folder for one file per slide.
    pub(crate) exports: Vec<(crate::slide::exports::Format, PathBuf)>,
}

/// `predict --remote`.
pub(crate) struct RemoteConfig {
    pub(crate) client: Client,
    pub(crate) retries: u32,
    /// Requests in flight at once.
    pub(crate) jobs: usize,
}

/// The heatmaps `--heatmap DIR` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeatmapFormat {
    /// A PNG to look at, with its colour bar.
    Png,
    /// A pyramidal TIFF at the slide's level-0 size, to overlay in a viewer.
    Tiff,
}
