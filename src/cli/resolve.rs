//! Arguments -> plain configuration, once. Every setting that can come from several places is read
//! here, in one order: the flag, else its environment variable, else the profile of the
//! configuration file, else the default.

use super::config::{PredictConfig, RemoteConfig, SlideConfig};
use super::ts_config::{self, TsConfig};
use super::{ColorChoice, EngineArgs, PredictArgs, RemoteArgs, ServeArgs};
use crate::engine::model::DeviceChoice;
use crate::engine::EngineOptions;
use crate::pipeline::PipelineOptions;
use crate::records::Format;
use crate::remote::{load_profile, prompt_password, read_token, Client, Credentials, Profile};
use crate::serve::auth::{Auth, OpenEndpoint};
use crate::serve::http::Limits;
use crate::serve::model_store::{DownloadLimits, ModelStore};
use crate::serve::models::{self, Registration, Settings};
use crate::serve::snapshot;
use crate::serve::{Defaults, Envelope, Roles, ServeOptions, Startup};
use crate::slide::exports::Format as Export;
use crate::slide::heatmap::HeatmapOptions;
use crate::slide::resolution::{LevelChoice, Target};
use crate::slide::SlideOptions;
use anyhow::{bail, Context, Result};
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// `scancer predict`'s arguments, resolved. With `--remote`, the client is made here (the
/// profile read, a password asked for), before any input is read.
pub(crate) fn predict(args: PredictArgs, color: ColorChoice) -> Result<PredictConfig> {
    let remote = match &args.remote {
        None => None,
        Some(url) => Some(RemoteConfig {
            client: client(&args.remote_args, Some(url.clone()), Api::Inference)?,
            retries: args.retries,
            jobs: args.jobs as usize,
        }),
    };
    let mut engine = engine(&args.engine);
    engine.explain = args.explain.is_some();
    if engine.explain && remote.is_some() {
        bail!("--explain runs the model's gradients here: it cannot be used with --remote");
    }
    let pipeline = PipelineOptions {
        batch_size: engine.batch_size,
        decode_threads: args
            .decode_threads
            .map_or_else(default_decode_threads, |n| n as usize),
    };
    let mask_dir = args.mask_dir.clone().unwrap_or_else(|| match &args.output {
        Some(out) => {
            let stem = out
                .file_stem()
                .map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned());
            out.with_file_name(format!("{stem}-masks"))
        }
        None => PathBuf::from("scancer-masks"),
    });
    let heatmap_side = args.heatmap_size as usize;
    let slides = SlideConfig {
        tile: args.tile,
        options: SlideOptions {
            stride: args.stride,
            tissue_threshold: args.tissue_threshold,
            all_tiles: args.all_tiles,
            thumbnail_side: if args.heatmap.is_some() && args.overlay {
                heatmap_side
            } else {
                0
            },
            choice: LevelChoice {
                target: match (args.level, args.mpp, args.magnification) {
                    (Some(level), _, _) => Some(Target::Level(level)),
                    (_, Some(mpp), _) => Some(Target::Mpp(mpp)),
                    (_, _, Some(x)) => Some(Target::Magnification(x)),
                    _ => None,
                },
                // The model's are the engine's, known once it is loaded.
                model_mpp: None,
                slide_mpp: args.slide_mpp,
                patch: (0, 0),
            },
            smooth: args.smooth,
            class: args.class,
        },
        tiles: args.tiles,
        heatmap_format: args.heatmap_format,
        exports: [
            (Export::GeoJson, args.geojson),
            (Export::AsapXml, args.asap_xml),
            (Export::LesionsCsv, args.lesions),
        ]
        .into_iter()
        .filter_map(|(format, path)| path.map(|p| (format, p)))
        .collect(),
        heatmap: args.heatmap,
        heatmap_options: HeatmapOptions {
            max_side: heatmap_side,
            smooth: args.smooth,
            overlay: args.overlay,
        },
    };
    Ok(PredictConfig {
        color: args.format == Format::Table
            && args.output.is_none()
            && use_color(color, std::io::stdout().is_terminal()),
        inputs: args.inputs,
        model: args.model,
        config: args.config,
        format: args.format,
        output: args.output,
        resume: args.resume,
        engine,
        pipeline,
        shard: args.shard,
        mask_dir,
        explain: args.explain,
        quiet: args.quiet,
        slides,
        remote,
    })
}

/// `scancer serve`'s arguments, resolved (the credential files read, the models at start found).
/// With --model-store or --ts-config, TorchServe's configuration (config.properties, its TS_*
/// variables, a config snapshot) is read under the command line, as TorchServe layers them.
pub(crate) fn serve(args: ServeArgs) -> Result<ServeOptions> {
    let store_mode = args.model_store.is_some() || args.ts_config.is_some();
    let open = if args.open.is_empty() && !store_mode {
        vec![OpenEndpoint::Health]
    } else {
        args.open.clone()
    };
    let auth = Auth::load(args.auth_file.as_deref(), args.token_file.as_deref(), open)?;
    // Every worker also holds its model as saved, for /explanations (gradients).
    let engine = EngineOptions {
        explain: true,
        // Requests land in batches of every size.
        smaller_shapes: true,
        ..engine(&args.engine)
    };
    let config = if store_mode {
        let config = TsConfig::find(args.ts_config.as_deref(), args.ncs, &snapshot::folder())?;
        config.check()?;
        Some(config)
    } else {
        None
    };
    let number = |key: &str, flag: Option<u64>| -> Result<Option<u64>> {
        match &config {
            Some(c) => c.layered_number(key, flag),
            None => Ok(flag),
        }
    };
    let settings = Settings {
        batch_size: engine.batch_size,
        max_batch_delay: Duration::from_millis(args.max_batch_delay),
        response_timeout: Duration::from_secs(
            number("default_response_timeout", None)?
                .filter(|&s| s > 0)
                .unwrap_or(120),
        ),
        job_queue_size: number("job_queue_size", args.job_queue_size.map(u64::from))?
            .filter(|&n| n > 0)
            .unwrap_or(100) as usize,
    };
    let configured_workers =
        number("default_workers_per_model", args.workers.map(u64::from))?.filter(|&n| n > 0);
    let workers = configured_workers.map_or_else(|| default_workers(&engine), |n| n as usize);
    let max_request_size = number("max_request_size", args.max_request_size.map(|n| n as u64))?
        .unwrap_or(6_553_500) as usize;
    let host = args.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let grpc_port = args.grpc_port;
    let mut options = ServeOptions {
        startup: Vec::new(),
        defaults_to_set: Vec::new(),
        listeners: Vec::new(),
        grpc_address: None,
        defaults: Defaults {
            engine,
            settings,
            // Through the API, TorchServe starts default_workers_per_model (0 unless configured).
            workers: configured_workers.unwrap_or(0) as usize,
        },
        queue_wait: Duration::from_millis(args.queue_wait),
        limits: Limits {
            max_body: max_request_size,
            client_timeout: Duration::from_secs(args.client_timeout),
            head_timeout: Duration::from_secs(args.head_timeout),
            keep_alive: Duration::from_secs(args.keep_alive_timeout),
            max_buffered: args.max_body_memory,
        },
        max_connections: args.max_connections as usize,
        auth,
        model_store: None,
        model_api: args.enable_model_api,
        snapshots: None,
        keys: None,
        envelope: Envelope::Body,
        quiet: args.quiet,
    };
    let Some(config) = config else {
        if args.enable_model_api {
            bail!("--enable-model-api needs --model-store: the folder registered archives live in");
        }
        if !args.models.is_empty() {
            bail!("--models names archives in the model store: give --model-store");
        }
        for spec in &args.files {
            let url = spec.path.file_name().map_or_else(
                || spec.path.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
            options.startup.push(Startup {
                registration: startup_registration(
                    spec.path.clone(),
                    spec.name.clone(),
                    url,
                    settings,
                ),
                min: workers,
                max: workers,
            });
        }
        options.listeners = vec![(SocketAddr::new(host, args.port.unwrap_or(8080)), Roles::ALL)];
        options.grpc_address =
            (!args.no_grpc).then(|| SocketAddr::new(host, grpc_port.unwrap_or(7070)));
        return Ok(options);
    };
    let shown = config.shown();
    if let Some(spec) = args.files.first() {
        bail!(
            "{}: with a model store, models come from the store: copy it there and give --models FILE",
            spec.path.display()
        );
    }
    let dir = config
        .layered(
            "model_store",
            args.model_store.as_ref().map(|d| d.display().to_string()),
        )
        .map(PathBuf::from)
        .with_context(|| format!("{shown}: no model_store: give --model-store DIR"))?;
    if !dir.is_dir() {
        bail!("model store {}: no such folder", dir.display());
    }
    let store = ModelStore::new(dir.clone());
    options.model_api = args.enable_model_api || config.flag("enable_model_api");
    options.envelope = config
        .get("service_envelope")
        .unwrap_or("")
        .parse()
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    // The addresses: a TS_* variable, else the command line, else the file, else TorchServe's.
    let address = |key: &str, port: Option<u16>, default: u16| -> Result<SocketAddr> {
        let flag = (args.host.is_some() || port.is_some())
            .then(|| format!("http://{}:{}", host_text(host), port.unwrap_or(default)));
        match config.layered(key, flag) {
            Some(value) => ts_config::address(key, &value, &shown),
            None => Ok(SocketAddr::new(host, default)),
        }
    };
    let inference = address("inference_address", args.port, 8080)?;
    let management = address("management_address", args.management_port, 8081)?;
    let metrics = address("metrics_address", args.metrics_port, 8082)?;
    options.listeners = separate_listeners(&[
        (
            inference,
            Roles {
                inference: true,
                ..Roles::default()
            },
        ),
        (
            management,
            Roles {
                management: true,
                ..Roles::default()
            },
        ),
        (
            metrics,
            Roles {
                metrics: true,
                ..Roles::default()
            },
        ),
    ]);
    if !args.no_grpc {
        let grpc_host = match config.get("grpc_inference_address") {
            Some(h) if args.host.is_none() => h.parse().with_context(|| {
                format!("{shown}: grpc_inference_address={h} is not an IP address")
            })?,
            _ => host,
        };
        let port = config
            .layered_number("grpc_inference_port", grpc_port)?
            .unwrap_or(7070);
        options.grpc_address = Some(SocketAddr::new(grpc_host, port));
    }
    // The models at start: a snapshot's, else load_models (--models) with the `models` settings.
    let restored = match config.get("model_snapshot") {
        Some(json) => Some(snapshot::restored(json, &shown, "model_snapshot")?),
        None => None,
    };
    match restored {
        Some(restored) => {
            let count = restored.len();
            for r in restored {
                let path = store.file(&r.mar_name).map_err(|_| {
                    anyhow::anyhow!(
                        "{shown}: the archive {} of model {} version {} is not in the model store {}",
                        r.mar_name,
                        r.name,
                        r.version,
                        dir.display()
                    )
                })?;
                let settings = with_overrides(settings, &r);
                let mut registration =
                    startup_registration(path, Some(r.name.clone()), r.mar_name.clone(), settings);
                registration.loaded_at_startup = false;
                if r.default {
                    options
                        .defaults_to_set
                        .push((r.name.clone(), r.version.clone()));
                }
                options.startup.push(Startup {
                    registration,
                    min: r.min_workers,
                    max: r.max_workers,
                });
            }
            let what = if config.from_snapshot {
                "the config snapshot"
            } else {
                "model_snapshot in"
            };
            crate::messages::note!("restoring {count} model version(s) of {what} {shown}");
            if !args.models.is_empty() {
                crate::messages::note!(
                    "--models is ignored when models are restored (TorchServe's rule)"
                );
            }
        }
        None => {
            let entries: Vec<String> = if args.models.is_empty() {
                config
                    .get("load_models")
                    .map(|l| l.split(',').map(str::to_string).collect())
                    .unwrap_or_default()
            } else {
                args.models.clone()
            };
            let overrides = match config.get("models") {
                Some(json) => snapshot::restored(json, &shown, "models")?,
                None => Vec::new(),
            };
            for entry in entries.iter().filter(|e| !e.is_empty()) {
                for (name, file) in store_models(&store, entry)? {
                    let path = store.file(&file).map_err(|e| {
                        anyhow::anyhow!("--models {entry}: {} in {}", e.message, dir.display())
                    })?;
                    let (manifest_name, version) = models::identity(&path)?;
                    let name = name.unwrap_or(manifest_name);
                    let chosen = overrides
                        .iter()
                        .find(|o| o.name == name && o.version == version);
                    let (settings, min, max) = match chosen {
                        Some(o) => (with_overrides(settings, o), o.min_workers, o.max_workers),
                        None => (settings, workers, workers),
                    };
                    options.startup.push(Startup {
                        registration: startup_registration(path, Some(name), file, settings),
                        min,
                        max,
                    });
                }
            }
        }
    }
    let mut properties = config.pairs();
    let mut set = |key: &str, value: String| match properties.iter_mut().find(|(k, _)| k == key) {
        Some(pair) => pair.1 = value,
        None => properties.push((key.to_string(), value)),
    };
    let url = |a: SocketAddr| format!("http://{}:{}", host_text(a.ip()), a.port());
    set("inference_address", url(inference));
    set("management_address", url(management));
    set("metrics_address", url(metrics));
    if let Some(grpc) = options.grpc_address {
        set("grpc_inference_port", grpc.port().to_string());
    }
    // What the command line set is recorded too, so that a restart from the snapshot keeps it.
    let allowed_urls = config
        .layered("allowed_urls", args.allowed_urls.clone())
        .unwrap_or_default();
    if !allowed_urls.is_empty() {
        set("allowed_urls", allowed_urls.clone());
    }
    set("job_queue_size", settings.job_queue_size.to_string());
    set("max_request_size", max_request_size.to_string());
    if let Some(n) = configured_workers {
        set("default_workers_per_model", n.to_string());
    }
    // Absolute, so that a snapshot restores from wherever the next start runs.
    let absolute = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
    set("model_store", absolute.display().to_string());
    if options.model_api {
        set("enable_model_api", "true".into());
    }
    if args.disable_token_auth || config.flag("disable_token_authorization") {
        set("disable_token_authorization", "true".into());
    } else {
        let minutes = config
            .layered_number::<f64>("token_expiration_min", None)?
            .filter(|m| *m > 0.0)
            .unwrap_or(60.0);
        options.keys = Some((
            PathBuf::from("key_file.json"),
            Duration::from_secs_f64(minutes * 60.0),
        ));
    }
    if !args.ncs {
        options.snapshots = Some((snapshot::folder(), properties));
    }

    options.model_store = Some((
        dir,
        allowed_urls,
        DownloadLimits {
            max_bytes: args.max_download_size,
            timeout: Duration::from_secs(args.download_timeout),
        },
    ));
    Ok(options)
}

fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// A model registered at start from a file.
fn startup_registration(
    path: PathBuf,
    name: Option<String>,
    url: String,
    settings: Settings,
) -> Registration {
    Registration {
        path,
        name,
        url,
        config: None,
        settings,
        loaded_at_startup: true,
        downloaded: false,
    }
}

/// The settings a snapshot or the `models` key gives a version, over the defaults.
fn with_overrides(mut settings: Settings, r: &snapshot::Restored) -> Settings {
    if let Some(n) = r.batch_size {
        settings.batch_size = n;
    }
    if let Some(ms) = r.max_batch_delay_ms {
        settings.max_batch_delay = Duration::from_millis(ms);
    }
    if let Some(s) = r.response_timeout_s {
        settings.response_timeout = Duration::from_secs(s);
    }
    settings
}

/// `--models` entries as TorchServe's load_models reads them: `all` (every archive in the store),
/// `FILE` or `NAME=FILE`, each a file in the store.
fn store_models(store: &ModelStore, entry: &str) -> Result<Vec<(Option<String>, String)>> {
    if entry == "all" {
        let all = store.all().map_err(|e| {
            anyhow::anyhow!("--models all: cannot list {}: {e}", store.dir.display())
        })?;
        return Ok(all.into_iter().map(|file| (None, file)).collect());
    }
    if entry.contains("://") {
        bail!(
            "--models {entry}: archives at start come from the model store; register URLs once the \
             server runs (POST /models?url=..., with allowed_urls)"
        );
    }
    Ok(vec![match entry.split_once('=') {
        Some((name, file)) => {
            crate::mar::manifest::validate_model_name(name)
                .map_err(|e| anyhow::anyhow!("--models {entry}: {e}"))?;
            (Some(name.to_string()), file.to_string())
        }
        None => (None, entry.to_string()),
    }])
}

/// One listener per address: APIs given the same address (and port) share it, as TorchServe does
/// when two of its addresses are equal. Port 0 always gets its own listener.
pub(crate) fn separate_listeners(wanted: &[(SocketAddr, Roles)]) -> Vec<(SocketAddr, Roles)> {
    let mut listeners: Vec<(SocketAddr, Roles)> = Vec::new();
    for &(at, roles) in wanted {
        match listeners
            .iter_mut()
            .find(|(a, _)| *a == at && at.port() != 0)
        {
            Some((_, shared)) => {
                shared.inference |= roles.inference;
                shared.management |= roles.management;
                shared.metrics |= roles.metrics;
            }
            None => listeners.push((at, roles)),
        }
    }
    listeners
}

/// Workers a model starts with when none are configured. A worker runs its forward passes on one
/// thread: one per physical core (TorchServe's default_workers_per_model 0 means one per CPU) or
/// --threads; one on CUDA.
fn default_workers(engine: &EngineOptions) -> usize {
    match engine.device {
        DeviceChoice::Cuda => 1,
        DeviceChoice::Cpu | DeviceChoice::Auto => engine
            .threads
            .unwrap_or_else(crate::engine::model::physical_cores),
    }
}

/// The engine's settings, as `predict` and `serve` give them.
fn engine(args: &EngineArgs) -> EngineOptions {
    EngineOptions {
        device: args.device,
        threads: args.threads.map(|n| n as usize),
        max_pixels: args.max_image_pixels,
        batch_size: args.batch_size as usize,
        optimize: !args.no_optimize,
        explain: false,
        smaller_shapes: false,
    }
}

/// Decode threads by default: the model takes most of the CPU, and decoding small patches is cheap
/// next to a forward pass.
fn default_decode_threads() -> usize {
    (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
}

/// Colour for a stream: `auto` colours a terminal unless NO_COLOR is set to anything non-empty.
fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// The first of a flag, its environment variable and the profile's value that is given (an empty
/// value counts as not given).
fn layered(flag: Option<String>, env: &str, profile: Option<String>) -> Option<String> {
    let given = |v: &String| !v.is_empty();
    flag.filter(given)
        .or_else(|| std::env::var(env).ok().filter(given))
        .or(profile.filter(given))
}

/// Which of TorchServe's APIs a remote command talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// The management API (`scancer store`).
    Management,
    /// The inference API (`scancer predict --remote`).
    Inference,
}

impl Api {
    fn url_env(self) -> &'static str {
        match self {
            Api::Management => "SCANCER_STORE_URL",
            Api::Inference => "SCANCER_API_URL",
        }
    }

    fn profile_url(self, profile: &Profile) -> Option<String> {
        match self {
            Api::Management => profile.store_url.clone(),
            Api::Inference => profile.api_url.clone(),
        }
    }

    /// The entry of TorchServe's key_file.json that holds this API's token.
    fn key(self) -> &'static str {
        match self {
            Api::Management => "management",
            Api::Inference => "inference",
        }
    }
}

/// TorchServe's management API on this machine, where `scancer store` goes by default.
pub(crate) const DEFAULT_STORE_URL: &str = "http://127.0.0.1:8081";

/// A client for `api`: its URL (`url` is the command's own flag), credentials and timeout.
pub(crate) fn client(args: &RemoteArgs, url: Option<String>, api: Api) -> Result<Client> {
    let profile = load_profile(args.profile.as_deref())?;
    let url = match (layered(url, api.url_env(), api.profile_url(&profile)), api) {
        (Some(url), _) => url,
        (None, Api::Management) => DEFAULT_STORE_URL.to_owned(),
        (None, Api::Inference) => bail!(
            "--remote: no URL (give --remote URL, or set SCANCER_API_URL or a profile's api_url)"
        ),
    };
    let credentials = credentials(args, &profile, api)?;
    Client::new(&url, credentials, Duration::from_secs(args.timeout))
}

/// A Bearer token, or the file that holds it.
enum Token {
    Given(String),
    File(PathBuf),
}

fn credentials(args: &RemoteArgs, profile: &Profile, api: Api) -> Result<Credentials> {
    let basic = match layered(args.user.clone(), "SCANCER_USER", profile.user.clone()) {
        None => None,
        Some(user) => Some(match user.split_once(':') {
            Some((name, password)) => (name.to_owned(), password.to_owned()),
            None => {
                let password = layered(None, "SCANCER_PASSWORD", profile.password.clone())
                    .map_or_else(|| prompt_password(&user), Ok)?;
                (user, password)
            }
        }),
    };
    // A token and a token file are one setting: whichever the first place that gives one gives.
    let flag = args
        .token
        .clone()
        .map(Token::Given)
        .or_else(|| args.token_file.clone().map(Token::File));
    let env = std::env::var("SCANCER_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(Token::Given);
    let from_profile = profile
        .token
        .clone()
        .map(Token::Given)
        .or_else(|| profile.token_file.clone().map(Token::File));
    let token = match flag.or(env).or(from_profile) {
        None => None,
        Some(Token::Given(token)) => Some(token),
        Some(Token::File(path)) => Some(read_token(&path, api.key())?),
    };
    Ok(Credentials::new(basic, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_comes_first_then_the_environment_then_the_profile() {
        // A variable no test sets: the environment is empty here.
        let var = "SCANCER_TEST_NEVER_SET";
        assert_eq!(
            layered(Some("flag".into()), var, Some("profile".into())),
            Some("flag".into())
        );
        assert_eq!(
            layered(None, var, Some("profile".into())),
            Some("profile".into())
        );
        assert_eq!(layered(Some(String::new()), var, Some(String::new())), None);
        // PATH is set in every test environment.
        assert_eq!(
            layered(None, "PATH", Some("profile".into())),
            std::env::var("PATH").ok()
        );
    }
}
