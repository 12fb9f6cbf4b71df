//! The command line, defined once: every clap type is here, and `--help`, the man pages in `man/` and
//! the shell completions in `completions/` are all generated from them. `resolve` turns parsed
//! arguments into the plain configuration of `config` (defaults, environment and profiles applied
//! once); `values` gives plain enums their names on the command line.

mod config;
pub(crate) mod environment;
mod resolve;
mod serve;
mod ts_config;
mod values;

pub(crate) use config::{HeatmapFormat, PredictConfig, RemoteConfig};
pub(crate) use resolve::{client, predict, Api};
pub(crate) use serve::serve;

use crate::engine::decode::DEFAULT_MAX_PIXELS;
use crate::engine::model::DeviceChoice;
use crate::exit::{self, Table};
use crate::inputs::Shard;
use crate::records::Format;
use crate::serve::auth::OpenEndpoint;
use crate::serve::models::ModelSpec;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;
use values::{positive_magnification, positive_mpp};

macro_rules! predict_examples {
    () => {
        "Examples:
  scancer predict --model pcam-classification.pt patch.png
  scancer predict -m pcam-classification.pt -c pcam.toml scans/ --format jsonl > results.jsonl
  scancer predict -m pcam.pt scans/ --shard \"$SLURM_ARRAY_TASK_ID/8\" -f csv -o part.csv
  scancer predict --remote https://api.scancer.org --user ana -m pcam-classification scans/"
    };
}

macro_rules! serve_examples {
    () => {
        "Examples:
  scancer serve pcam-classification.mar
  curl -T patch.png http://127.0.0.1:8080/predictions/pcam-classification
  curl -F data=@patch.png 'http://127.0.0.1:8080/predictions/pcam-classification?details=true'
  scancer serve pcam=pcam-classification.pt tissue.mar --port 9000 --auth-file users.txt
  scancer serve --model-store model_store --models all --enable-model-api
  curl -X POST 'http://127.0.0.1:8081/models?url=pcam.mar&initial_workers=1'
  scancer serve --start --model-store=/mnt/models/model-store --ts-config=/mnt/models/config/config.properties
  scancer serve pcam-classification.mar --slides ~/slides
  curl -T scan.svs http://127.0.0.1:8080/slides/
  curl -X POST http://127.0.0.1:8080/slides/ID/analyses -d '{\"model\": \"pcam-classification\"}'
  curl http://127.0.0.1:8080/analyses/ANALYSIS"
    };
}

macro_rules! store_examples {
    () => {
        "Examples:
  scancer store list
  scancer store --url https://model-store.scancer.org --user ana describe pcam-classification --all
  scancer store register https://example.org/models/pcam-classification.mar --initial-workers 1 --wait
  scancer store scale pcam-classification --min-workers 2 --max-workers 2 --wait
  scancer store set-default pcam-classification 1.1
  scancer store unregister pcam-classification --version 1.0"
    };
}

#[derive(Debug, Parser)]
#[command(
    name = "scancer",
    version,
    about = "Run, package, manage and serve Scancer's breast-cancer detection models",
    long_about = "Run, package, manage and serve Scancer's breast-cancer detection models.\n\n\
        Models are PyTorch networks exported with torch.export (AOTInductor .pt2 packages, run in \
        libtorch, or ONNX, run in ONNX Runtime) or to TorchScript (.pt, the legacy format), each \
        with a small TOML handler configuration that describes its preprocessing and output, the \
        same models that Scancer's TorchServe deployment serves.",
    after_long_help = format!("{}\n\n{}", exit::table(Table::Models), environment::HELP),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// When to colour the output: auto colours terminals unless NO_COLOR is set
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, value_name = "WHEN")]
    pub(crate) color: ColorChoice,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a model on image files, directories of images, or standard input: locally, on whole
    /// slides (--tile), or with a remote inference API (--remote)
    #[command(
        long_about = "Run a model on image files, directories of images, or standard input: locally, \
            on whole slides (--tile), or with a remote inference API (--remote).\n\n\
            Directories are searched recursively for images (PNG, JPEG, TIFF, BMP, WebP, GIF: by \
            extension, or by content for files without one) in sorted order. Every input gets exactly \
            one record, with its result or its error, in input order; a bad input never stops the run.",
        after_help = predict_examples!(),
        after_long_help = format!("{}\n\n{}", predict_examples!(), exit::table(Table::Models))
    )]
    Predict(Box<PredictArgs>),
    /// Package a model and its handler configuration as a TorchServe .mar archive, or inspect one
    Archive(ArchiveArgs),
    /// Manage models on a TorchServe management API (Scancer's model store)
    #[command(
        long_about = "Manage models on a TorchServe management API, such as Scancer's model store: \
            list, describe, register, scale, set-default and unregister, with TorchServe's parameters. \
            The server is --url, else SCANCER_STORE_URL, else the profile's store_url, else \
            http://127.0.0.1:8081. Credentials: --user (HTTP Basic, as Scancer's nginx asks), --token or \
            --token-file (TorchServe's key_file.json: its management key), their environment variables, \
            or the profile.",
        after_help = store_examples!(),
        after_long_help = format!("{}\n\n{}", store_examples!(), exit::table(Table::Store))
    )]
    Store(StoreArgs),
    /// Serve models: TorchServe's inference and management APIs, KServe V1 and V2, Prometheus metrics
    #[command(
        long_about = "Serve models in one process: TorchServe 0.12's inference API (/ping, \
            /predictions/{model}[/{version}]) and management API (/models: list, describe, register, \
            scale, set-default, unregister) with the same bodies and status codes, Prometheus /metrics \
            with TorchServe's names, KServe V1 and V2 (/v1, /v2, and gRPC). With --model-store, it \
            starts as `torchserve --start` does: its config.properties, inference, management and \
            metrics on their own ports, token authorization, config snapshots that bring the \
            registered models back at the next start. Each model version has its own queue and \
            workers (threads with their own engine, one per physical core by default) that batch \
            requests dynamically. With --slides DIR, a viewer page at / and its API: the slides \
            (GET /slides, uploads with PUT /slides/NAME, Deep Zoom at /slides/ID.dzi and \
            /slides/ID_files/LEVEL/COL_ROW.jpeg, /slides/ID/thumbnail.jpeg, /slides/ID/properties) \
            and analyses (POST /slides/ID/analyses: predict --tile through the served model; GET \
            and DELETE /analyses/ID; its heatmap.png, geojson, asap.xml, lesions.csv, tiles.csv, \
            regions and overlay.dzi). SIGINT or \
            SIGTERM stops accepting, answers the requests already received, and exits 0.",
        after_help = serve_examples!(),
        after_long_help = serve_examples!()
    )]
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]
    #[arg(long, value_name = "URL", global = true)]
    pub(crate) url: Option<String>,

    #[command(flatten)]
    pub(crate) remote: RemoteArgs,

    /// Print the server's JSON instead of a table (list: every page merged)
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// List the registered models (following every page)
    List,
    /// Describe a model: its versions, workers and queue
    #[command(disable_version_flag = true)]
    Describe {
        /// Model name
        name: String,
        /// One version [default: the default version]
        #[arg(long, conflicts_with = "all")]
        version: Option<String>,
        /// Every version
        #[arg(long)]
        all: bool,
    },
    /// Register an archive: an http(s) URL the server downloads, or a file in its model store
    Register(RegisterArgs),
    /// Set a model's number of workers
    #[command(disable_version_flag = true)]
    Scale(ScaleArgs),
    /// Make a version the one that /predictions/{model} answers with
    #[command(disable_version_flag = true)]
    SetDefault {
        /// Model name
        name: String,
        /// The version to make the default
        version: String,
    },
    /// Unregister a model version (the default one unless --version)
    #[command(disable_version_flag = true)]
    Unregister {
        /// Model name
        name: String,
        /// The version to remove
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Wait until the wanted number of workers is READY
    #[arg(long)]
    pub(crate) wait: bool,

    /// Seconds to wait with --wait
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub(crate) wait_timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// The archive: https://.../pcam-classification.mar, or a .mar file name in the server's store
    #[arg(value_name = "URL")]
    pub(crate) archive: String,
    /// Name to register the model under [default: the archive's]
    #[arg(long)]
    pub(crate) model_name: Option<String>,
    /// Handler to use instead of the archive's
    #[arg(long)]
    pub(crate) handler: Option<String>,
    /// Runtime to use instead of the archive's
    #[arg(long)]
    pub(crate) runtime: Option<String>,
    /// Requests per batch
    #[arg(long, value_name = "N")]
    pub(crate) batch_size: Option<u32>,
    /// Milliseconds to wait to fill a batch
    #[arg(long, value_name = "MS")]
    pub(crate) max_batch_delay: Option<u32>,
    /// Workers to start [TorchServe's default: its default_workers_per_model]
    #[arg(long, value_name = "N")]
    pub(crate) initial_workers: Option<u32>,
    /// Let the server answer only once the workers have started
    #[arg(long)]
    pub(crate) synchronous: bool,
    /// Seconds TorchServe waits for one inference
    #[arg(long, value_name = "SECS")]
    pub(crate) response_timeout: Option<u32>,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    /// Model name
    pub(crate) name: String,
    /// The version to scale [default: the default version]
    #[arg(long)]
    pub(crate) version: Option<String>,
    /// Fewest workers
    #[arg(long, value_name = "N")]
    pub(crate) min_workers: Option<u32>,
    /// Most workers
    #[arg(long, value_name = "N")]
    pub(crate) max_workers: Option<u32>,
    /// Let the server answer only once the workers have changed
    #[arg(long)]
    pub(crate) synchronous: bool,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PredictArgs {
    /// Image files, directories to search, or - for one image on standard input
    #[arg(required = true, value_name = "PATH")]
    pub(crate) inputs: Vec<PathBuf>,

    /// Model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt); or a TorchServe
    /// archive of one (.mar, .tar.gz, or an unpacked folder); or a WSInfer model folder
    /// (config.json and torchscript_model.pt); with --remote, the model's name on the server
    #[arg(short, long, value_name = "FILE")]
    pub(crate) model: PathBuf,

    /// Handler configuration (TOML) [default: the model's path with the extension .toml; for an
    /// archive, the configuration it carries or the one of its built-in image_classifier handler]
    #[arg(short, long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,

    /// Write the results to FILE instead of standard output: through FILE.partial, record by
    /// record, renamed to FILE when complete (devices and FIFOs are written in place)
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Go on from an interrupted run of the same command: the inputs already recorded in
    /// --output's FILE.partial (or FILE) are skipped and the rest appended, so the output equals one
    /// uninterrupted run (formats json, jsonl, csv)
    #[arg(long)]
    pub(crate) resume: bool,

    #[command(flatten)]
    pub(crate) engine: EngineArgs,

    /// Threads that decode and preprocess images [default: half the cores, at least 1]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256), value_name = "N")]
    pub(crate) decode_threads: Option<u32>,

    /// Predict only the K-th of N equal contiguous slices of the inputs (K from 0), for job arrays;
    /// the outputs of shards 0 to N-1 concatenated equal one unsharded run in every format (only
    /// shard 0 writes the CSV or table header; JSON's brackets come from the first and last)
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<Shard>,

    /// Where segmentation masks are written [default: <output stem>-masks next to --output, else
    /// ./scancer-masks]
    #[arg(long, value_name = "DIR")]
    pub(crate) mask_dir: Option<PathBuf>,

    /// Write an Integrated Gradients attribution of each image as a PNG (the input, and the
    /// attribution over it): DIR/<the input's path>.explain.png; on slides, of the hotspot window.
    /// About 50 ms a 96x96 patch on 2 cores (the model's gradients, 15 steps)
    #[arg(long, value_name = "DIR")]
    pub(crate) explain: Option<PathBuf>,

    /// No progress bar and no summary on standard error
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Cut images larger than the model's input into windows (whole slides), as a handler
    /// configuration with `patch = true` does; each slide gets one record (its most suspicious
    /// window, plus a summary)
    #[arg(help_heading = "Whole slides", long)]
    pub(crate) tile: bool,

    /// Pixels between windows of a slide [default: the window size]
    #[arg(help_heading = "Whole slides", long, value_name = "PIXELS")]
    pub(crate) stride: Option<usize>,

    /// Mean saturation (HSV, of a 1/16 downsample) above which a window is tissue and runs
    #[arg(
        help_heading = "Whole slides",
        long,
        default_value_t = 0.075,
        value_name = "S"
    )]
    pub(crate) tissue_threshold: f64,

    /// Run every window of a slide, background included (the result still counts only tissue)
    #[arg(help_heading = "Whole slides", long)]
    pub(crate) all_tiles: bool,

    /// Pyramid level of slides in pyramidal formats, read as it is (0: full resolution; 2: 4x
    /// smaller, e.g. 10x of a 40x scan); level 1 and up need the `openslide` feature [default: the
    /// level that gives the handler configuration's `mpp`, else 0]
    #[arg(
        help_heading = "Whole slides",
        long,
        value_name = "N",
        conflicts_with_all = ["mpp", "magnification"]
    )]
    pub(crate) level: Option<u32>,

    /// Analyse slides at this resolution, in microns per pixel: the coarsest pyramid level not
    /// coarser is read and the rest resampled as preprocessing resamples (PCam: 0.972, 10x). Needs
    /// the slide's resolution (its mpp property, TIFF or PNG resolution, or --slide-mpp)
    #[arg(help_heading = "Whole slides", long, value_name = "UM", value_parser = positive_mpp, conflicts_with = "magnification")]
    pub(crate) mpp: Option<f64>,

    /// Analyse slides at this objective magnification (10: 10x), relative to the scan's objective
    /// power, or at 10/X microns per pixel where the slide declares none
    #[arg(help_heading = "Whole slides", long, value_name = "X", value_parser = positive_magnification)]
    pub(crate) magnification: Option<f64>,

    /// The slides' level-0 resolution in microns per pixel, for files that declare none (or an
    /// implausible one); a resolution a slide declares is kept (see --override-slide-mpp)
    #[arg(help_heading = "Whole slides", long, value_name = "UM", value_parser = positive_mpp)]
    pub(crate) slide_mpp: Option<f64>,

    /// Use --slide-mpp for every slide, also those that declare a resolution (each one said in a
    /// warning): for slides whose declared resolution is wrong
    #[arg(help_heading = "Whole slides", long, requires = "slide_mpp")]
    pub(crate) override_slide_mpp: bool,

    /// Write one row per window of every slide (path, x, y, width, height, tissue, saturation,
    /// probability, label, then prob_<label> for every class of a binary or multiclass model;
    /// windows that were not run have no probability): JSON Lines for a .jsonl file, else CSV
    #[arg(help_heading = "Whole slides", long, value_name = "FILE")]
    pub(crate) tiles: Option<PathBuf>,

    /// Write each slide's heatmap: a PNG to look at (tissue in matplotlib's plasma colours,
    /// not-tissue grey, a colour bar), or a pyramidal TIFF at the slide's level-0 size that
    /// OpenSlide opens and viewers overlay (not-tissue transparent). FILE.png or FILE.tif for one
    /// input, else DIR/<the input's path>.heatmap.png (or .tif, see --heatmap-format)
    #[arg(help_heading = "Whole slides", long, value_name = "PATH")]
    pub(crate) heatmap: Option<PathBuf>,

    /// What --heatmap DIR writes for each slide
    #[arg(
        help_heading = "Whole slides",
        long,
        value_name = "FORMAT",
        default_value = "png"
    )]
    pub(crate) heatmap_format: HeatmapFormat,

    /// Largest side of a heatmap in pixels (16 to 16384)
    #[arg(
        help_heading = "Whole slides",
        long,
        default_value_t = 2048,
        value_parser = clap::value_parser!(u32).range(16..=16384),
        value_name = "PIXELS"
    )]
    pub(crate) heatmap_size: u32,

    /// Gaussian smoothing of the heatmap and the regions over tissue, sigma in analysed pixels (the
    /// slide as read at the model's resolution, not level 0)
    #[arg(
        help_heading = "Whole slides",
        long,
        default_value_t = 0.0,
        value_name = "SIGMA"
    )]
    pub(crate) smooth: f32,

    /// Blend the heatmap over a downscaled copy of the slide
    #[arg(help_heading = "Whole slides", long)]
    pub(crate) overlay: bool,

    /// The class of a multiclass model whose map, regions and most suspicious window are each
    /// slide's result (its label, or its index) [default: every class, one map each]
    #[arg(help_heading = "Whole slides", long, value_name = "LABEL")]
    pub(crate) class: Option<String>,

    /// Write each slide's windows and positive regions as QuPath GeoJSON (File > Import objects),
    /// in level-0 pixels: FILE.geojson for one input, else DIR/<the input's path>.geojson
    #[arg(help_heading = "Whole slides", long, value_name = "PATH")]
    pub(crate) geojson: Option<PathBuf>,

    /// Write each slide's positive regions as ASAP XML annotations (the Camelyon16 ground truth's
    /// format): FILE.xml for one input, else DIR/<the input's path>.xml
    #[arg(help_heading = "Whole slides", long, value_name = "PATH")]
    pub(crate) asap_xml: Option<PathBuf>,

    /// Write each slide's regions as Camelyon16 lesion lines (Confidence,X,Y: peak probability and
    /// its level-0 location; no header): FILE.csv for one input, else DIR/<the input's
    /// path>.lesions.csv
    #[arg(help_heading = "Whole slides", long, value_name = "PATH")]
    pub(crate) lesions: Option<PathBuf>,

    /// Write WSInfer's results folder in DIR, for QuPath scripts and analyses built on WSInfer's
    /// outputs: model-outputs-csv/<slide>.csv (minx,miny,width,height,prob_<class>... per tissue
    /// window, level-0 pixels), model-outputs-geojson/<slide>.geojson (a locked tile per tissue
    /// window), patches/<slide>.h5 (the windows' coordinates), masks/<slide>.jpg (the slide with its
    /// tissue outlined) and run_metadata_<time>.json; <slide> is the slide's file name without its
    /// extension
    #[arg(help_heading = "Whole slides", long, value_name = "DIR")]
    pub(crate) wsinfer_out: Option<PathBuf>,

    /// Predict with a remote inference API (TorchServe or scancer serve): each image is PUT to
    /// URL/predictions/MODEL, where --model is the model's name [default URL: SCANCER_API_URL, else
    /// the profile's api_url]. --config gives the labels where the server does not
    #[arg(help_heading = "Remote", long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub(crate) remote: Option<String>,

    /// Requests in flight with --remote
    #[arg(help_heading = "Remote", short, long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256), value_name = "N")]
    pub(crate) jobs: u32,

    /// With --remote, tries again this many times (waiting 0.2 s, then twice as long each time) when
    /// the server answers 503 or cannot be reached
    #[arg(help_heading = "Remote", long, default_value_t = 3, value_name = "N")]
    pub(crate) retries: u32,

    #[command(flatten, next_help_heading = "Remote")]
    pub(crate) remote_args: RemoteArgs,
}

/// How the model runs: shared by every command that runs one, so their results agree.
#[derive(Debug, Args)]
pub(crate) struct EngineArgs {
    /// Images per forward pass (serve: the most requests batched together). Every answer is the one
    /// this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load
    /// to answer bit for bit the same, so on one machine a result is identical whatever the image's
    /// neighbours, the load and the threads; another CPU's instruction set (AVX-512, AVX2, AVX)
    /// agrees within 1e-5, and so does another batch size
    #[arg(short, long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096), value_name = "N")]
    pub(crate) batch_size: u32,

    /// Model instances running side by side, each running whole forward passes on one thread
    /// (serve: workers per model) [default: one per physical core; one on CUDA]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024), value_name = "N")]
    pub(crate) threads: Option<u32>,

    /// Where the model runs
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub(crate) device: DeviceChoice,

    /// Run a TorchScript graph as saved, as TorchServe does, instead of frozen and optimised for
    /// inference (several times faster on CPU; results agree within a few 1e-6; .pt2 and ONNX
    /// models come optimised)
    #[arg(long)]
    pub(crate) no_optimize: bool,

    /// Refuse images with more pixels than this (decompression-bomb guard)
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS, value_name = "N")]
    pub(crate) max_image_pixels: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Models to serve: TorchServe archives (.mar, .tar.gz, folders) or model files (.pt2, .onnx,
    /// TorchScript .pt) with their .toml beside them; NAME=MODEL serves one under another name. Without --model-store, one port
    /// answers every API
    #[arg(value_name = "[NAME=]MODEL", required_unless_present_any = ["model_store", "ts_config"])]
    pub(crate) files: Vec<ModelSpec>,

    /// TorchServe's model store: the folder archives are registered from. Turns on TorchServe's
    /// layout: inference, management and metrics APIs on their own ports
    #[arg(long, value_name = "DIR")]
    pub(crate) model_store: Option<PathBuf>,

    /// Archives in the model store to register at start: `all`, FILE.mar or NAME=FILE.mar
    /// (TorchServe's load_models; ignored when a config snapshot is restored)
    #[arg(long, num_args = 1.., value_name = "all|[NAME=]FILE")]
    pub(crate) models: Vec<String>,

    /// TorchServe's config.properties (also: TS_CONFIG_FILE). Without it, the newest config
    /// snapshot is restored, else ./config.properties is read
    #[arg(long, value_name = "FILE")]
    pub(crate) ts_config: Option<PathBuf>,

    /// Neither write nor restore config snapshots (TorchServe's --no-config-snapshots)
    #[arg(long, alias = "no-config-snapshots")]
    pub(crate) ncs: bool,

    /// Accepted for TorchServe's command lines (KServe's runtime passes it): serve always starts
    #[arg(long)]
    pub(crate) start: bool,

    /// Accepted for TorchServe's command lines: serve always runs in the foreground
    #[arg(long)]
    pub(crate) foreground: bool,

    /// Allow registering and unregistering models through the management API (TorchServe's
    /// enable_model_api)
    #[arg(long)]
    pub(crate) enable_model_api: bool,

    /// URLs the management API may register archives from: comma-separated regular expressions,
    /// each matching a whole URL (TorchServe's allowed_urls). Unlike TorchServe, none by default:
    /// only the model store
    #[arg(long, value_name = "REGEXES")]
    pub(crate) allowed_urls: Option<String>,

    /// Largest archive a registration downloads, in bytes
    #[arg(long, default_value_t = 4 << 30, value_name = "BYTES")]
    pub(crate) max_download_size: u64,

    /// Seconds a registration's download may take
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..), value_name = "SECS")]
    pub(crate) download_timeout: u64,

    /// No TorchServe token authorization with --model-store (its key_file.json; TorchServe's
    /// disable_token_authorization)
    #[arg(long, visible_alias = "dt")]
    pub(crate) disable_token_auth: bool,

    /// Workers each model starts with: model instances running batches side by side, each on one
    /// thread (TorchServe's default_workers_per_model) [default: --threads, else one per physical
    /// core; one on CUDA]
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=64), value_name = "N")]
    pub(crate) workers: Option<u32>,

    /// Address to listen on; anything but loopback should come with --auth-file or --token-file
    /// [default: 127.0.0.1]
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) host: Option<IpAddr>,

    /// Port of the inference API, or of every API without --model-store (0: any free port,
    /// printed at start-up) [default: 8080]
    #[arg(short, long)]
    pub(crate) port: Option<u16>,

    /// Port of the management API, with --model-store (0: any free port) [default: 8081]
    #[arg(long, value_name = "PORT")]
    pub(crate) management_port: Option<u16>,

    /// Port of the metrics API, with --model-store (0: any free port) [default: 8082]
    #[arg(long, value_name = "PORT")]
    pub(crate) metrics_port: Option<u16>,

    /// gRPC port: KServe V2's and TorchServe's gRPC inference services (0: any free port, printed
    /// at start-up) [default: 7070]
    #[arg(long, value_name = "PORT")]
    pub(crate) grpc_port: Option<u16>,

    /// gRPC management port, with --model-store: TorchServe's gRPC management API (0: any free
    /// port) [default: 7071]
    #[arg(long, value_name = "PORT")]
    pub(crate) grpc_management_port: Option<u16>,

    /// No gRPC ports
    #[arg(long, conflicts_with_all = ["grpc_port", "grpc_management_port"])]
    pub(crate) no_grpc: bool,

    #[command(flatten)]
    pub(crate) engine: EngineArgs,

    /// Milliseconds to wait for more requests to fill a batch once one is queued (stops early when
    /// no other request is on its way)
    #[arg(long, default_value_t = 5, value_name = "MS")]
    pub(crate) max_batch_delay: u64,

    /// Images that may wait for each model version; a request finding no room waits up to
    /// --queue-wait, then gets 503 [default: 100]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub(crate) job_queue_size: Option<u32>,

    /// Milliseconds a request may wait for room in a full queue before its 503 (0: TorchServe's
    /// immediate 503)
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub(crate) queue_wait: u64,

    /// Largest request body in bytes; larger ones are answered 413 (TorchServe's max_request_size)
    /// [default: 6553500]
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_request_size: Option<usize>,

    /// Seconds a client may take to send a request once started, or to read its answer (408 after)
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), value_name = "SECS")]
    pub(crate) client_timeout: u64,

    /// Seconds a client may take to send a request head once its first byte has come (408 after)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), value_name = "SECS")]
    pub(crate) head_timeout: u64,

    /// Seconds an idle keep-alive connection stays open
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..), value_name = "SECS")]
    pub(crate) keep_alive_timeout: u64,

    /// Open connections at most; more are answered 503 and closed
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub(crate) max_connections: u32,

    /// Request body bytes held in memory at once, over all requests; further bodies wait for room
    #[arg(long, default_value_t = 256 << 20, value_name = "BYTES")]
    pub(crate) max_body_memory: usize,

    /// HTTP Basic credentials, one name:password per line (also: SCANCER_AUTH=name:password)
    #[arg(long, value_name = "FILE")]
    pub(crate) auth_file: Option<PathBuf>,

    /// Bearer tokens, one per line, or TorchServe's key_file.json (also: SCANCER_TOKEN)
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,

    /// Endpoints that need no credentials when authentication is on [default: health; none with
    /// --model-store, where TorchServe's /ping needs the inference key]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub(crate) open: Vec<OpenEndpoint>,

    /// Serve the whole-slide images under DIR on the inference port: the slide API (/slides: Deep
    /// Zoom tiles, thumbnails, properties, uploads); its catalogue is kept in DIR/.scancer
    #[arg(long, value_name = "DIR")]
    pub(crate) slides: Option<PathBuf>,

    /// Largest slide upload (PUT /slides/NAME) in bytes
    #[arg(long, default_value_t = 8 << 30, value_name = "BYTES", requires = "slides")]
    pub(crate) max_slide_upload: u64,

    /// No access log on standard error
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    disable_version_flag = true,
    long_about = "Package a model (.pt2, .onnx or TorchScript) as a TorchServe model archive (.mar) that TorchServe 0.12 \
        serves unchanged and `scancer predict --model` reads. The flags are torch-model-archiver's; \
        with --config (a scancer handler configuration) and no --handler, the archive carries a \
        generated Python handler that applies that configuration in TorchServe exactly as scancer \
        does.",
    after_help = "Examples:\n  scancer archive --model-name pcam-classification --version 1.0 \\\n      \
        --serialized-file pcam-classification.pt --config pcam.toml\n  \
        scancer archive inspect pcam-classification.mar --verify"
)]
pub(crate) struct ArchiveArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ArchiveCommand>,

    /// Model name (^[A-Za-z0-9][A-Za-z0-9_\-.]*$); the archive is <export path>/<name>.mar
    #[arg(long, required = true)]
    pub(crate) model_name: Option<String>,

    /// Model version
    #[arg(short = 'v', long, required = true)]
    pub(crate) version: Option<String>,

    /// The model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt)
    #[arg(long, value_name = "FILE")]
    pub(crate) serialized_file: Option<PathBuf>,

    /// TorchServe handler: a built-in name (image_classifier, ...) or a Python file [default with
    /// --config: a generated handler that applies the configuration]
    #[arg(long)]
    pub(crate) handler: Option<String>,

    /// scancer handler configuration (TOML), carried in the archive as scancer-handler.toml
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Python model file (eager-mode models; scancer itself runs exported models only)
    #[arg(long, value_name = "FILE")]
    pub(crate) model_file: Option<PathBuf>,

    /// Comma-separated files, folders (their contents go to the archive root) and glob patterns
    #[arg(long, value_name = "LIST")]
    pub(crate) extra_files: Option<String>,

    /// Runtime named in the manifest
    #[arg(long, default_value = "python", value_parser = ["python", "python3", "LSP"])]
    pub(crate) runtime: String,

    /// Folder to write the archive into
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub(crate) export_path: PathBuf,

    /// default: a deflated .mar (models stored); zip-store: nothing compressed; tgz: <name>.tar.gz;
    /// no-archive: a folder <name>/
    #[arg(long, default_value = "default", value_parser = ["default", "zip-store", "tgz", "no-archive"])]
    pub(crate) archive_format: String,

    /// Overwrite an existing archive
    #[arg(short, long)]
    pub(crate) force: bool,

    /// Python requirements file for TorchServe
    #[arg(short = 'r', long, value_name = "FILE")]
    pub(crate) requirements_file: Option<PathBuf>,

    /// TorchServe model configuration (YAML: minWorkers, batchSize, ...)
    #[arg(short = 'c', long, value_name = "FILE")]
    pub(crate) config_file: Option<PathBuf>,

    /// Fixed timestamps (SOURCE_DATE_EPOCH, else 1980-01-01) so that the same inputs give the same
    /// bytes, for CI artefacts
    #[arg(long)]
    pub(crate) reproducible: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ArchiveCommand {
    /// Print an archive's manifest, files and handler configuration
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The archive (.mar, .tar.gz or folder)
    #[arg(value_name = "ARCHIVE")]
    pub(crate) archive: PathBuf,

    /// Also load the model and run one forward pass on an input of the configured shape
    #[arg(long)]
    pub(crate) verify: bool,
}

/// Where a remote server is and how to authenticate, as the command line gives them.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct RemoteArgs {
    /// A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else
    /// ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]
    #[arg(long, value_name = "NAME", global = true)]
    pub(crate) profile: Option<String>,

    /// HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD
    /// [env: SCANCER_USER, SCANCER_PASSWORD]
    #[arg(short = 'u', long, value_name = "NAME[:PASSWORD]", global = true)]
    pub(crate) user: Option<String>,

    /// Bearer token [env: SCANCER_TOKEN]
    #[arg(
        long,
        value_name = "TOKEN",
        global = true,
        conflicts_with = "token_file"
    )]
    pub(crate) token: Option<String>,

    /// A file with the Bearer token, or TorchServe's key_file.json
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) token_file: Option<PathBuf>,

    /// Seconds to wait for each answer
    #[arg(long, default_value_t = 60, value_name = "SECS", global = true)]
    pub(crate) timeout: u64,
}
