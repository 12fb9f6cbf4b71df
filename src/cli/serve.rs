//! `scancer serve`'s arguments -> `ServeOptions`, once: the credential files read, addresses
//! parsed, URL patterns compiled, folders checked. With --model-store or --ts-config, TorchServe's
//! configuration (config.properties, its TS_* variables, a config snapshot) is read under the
//! command line, as TorchServe layers them. Reading the archives and restoring the models is the
//! server's start-up (`serve::startup`).

use super::environment::variable;
use super::resolve::engine;
use super::ts_config::{self, TsConfig};
use super::ServeArgs;
use crate::engine::model::DeviceChoice;
use crate::engine::EngineOptions;
use crate::serve::auth::{Auth, Credentials, OpenEndpoint};
use crate::serve::http::Limits;
use crate::serve::model_store::DownloadLimits;
use crate::serve::models::Settings;
use crate::serve::snapshot;
use crate::serve::{
    ApiAddress, ApiAddresses, Defaults, Envelope, KeyOptions, Listener, LogFiles, ModelFile, Roles,
    ServeOptions, SlideFolder, SnapshotOptions, StoreArchives, StoreEntry, StoreModels,
    StoreOptions,
};
use anyhow::{bail, Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `scancer serve`'s arguments, resolved.
pub(crate) fn serve(args: ServeArgs) -> Result<ServeOptions> {
    let store_mode = args.model_store.is_some() || args.ts_config.is_some();
    let auth = auth(&args, store_mode)?;
    // Every worker also holds its model as saved, for /explanations (gradients).
    let engine = EngineOptions {
        explain: true,
        // Requests land in batches of every size.
        smaller_shapes: true,
        ..engine(&args.engine)
    };
    let config = if store_mode {
        let config = TsConfig::find(args.ts_config.as_deref(), args.ncs, &snapshots_folder())?;
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
    let mut options = ServeOptions {
        files: Vec::new(),
        workers,
        listeners: Vec::new(),
        grpc_address: None,
        grpc_management_address: None,
        tls: None,
        grpc_tls: false,
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
        store: None,
        quiet: args.quiet,
        slides: args.slides.clone().map(|dir| SlideFolder {
            dir,
            max_upload: args.max_slide_upload,
        }),
        hostname: crate::serve::metrics::hostname(variable("HOSTNAME")),
        cors: match &config {
            Some(config) => cors(config)?,
            None => Vec::new(),
        },
        // TorchServe writes them always; a plain `serve MODEL` only where LOG_LOCATION asks.
        log_files: (store_mode || variable("LOG_LOCATION").is_some()).then(|| LogFiles {
            logs: PathBuf::from(variable("LOG_LOCATION").unwrap_or_else(|| "logs".into())),
            metrics: PathBuf::from(variable("METRICS_LOCATION").unwrap_or_else(|| "logs".into())),
            metric_lines: !config.as_ref().is_some_and(|c| {
                c.get("metrics_mode")
                    .is_some_and(|m| m.eq_ignore_ascii_case("prometheus"))
            }),
        }),
        system_metrics: match &config {
            Some(config) if config.flag("disable_system_metrics") => None,
            _ => Some(Duration::from_secs(
                number("metric_time_interval", None)?
                    .filter(|&s| s > 0)
                    .unwrap_or(60),
            )),
        },
    };
    match config {
        None => without_store(&args, host, &mut options)?,
        Some(config) => {
            options.store = Some(with_store(&args, host, &config, &mut options, workers)?);
        }
    }
    Ok(options)
}

/// The credentials: --auth-file and --token-file, and SCANCER_AUTH and SCANCER_TOKEN beside them.
fn auth(args: &ServeArgs, store_mode: bool) -> Result<Auth> {
    let open = if args.open.is_empty() && !store_mode {
        vec![OpenEndpoint::Health]
    } else {
        args.open.clone()
    };
    let extra = Credentials {
        basic: variable("SCANCER_AUTH"),
        token: variable("SCANCER_TOKEN"),
    };
    if extra.basic.as_ref().is_some_and(|pair| !pair.contains(':')) {
        bail!("SCANCER_AUTH: expected name:password");
    }
    Auth::load(
        args.auth_file.as_deref(),
        args.token_file.as_deref(),
        open,
        extra,
    )
}

/// The folder TorchServe keeps its snapshots in: `config` under LOG_LOCATION, else under `logs`.
fn snapshots_folder() -> PathBuf {
    let logs = variable("LOG_LOCATION").unwrap_or_else(|| "logs".into());
    snapshot::folder(Path::new(&logs))
}

/// `scancer serve MODEL...`: the files given, all APIs on one port, gRPC beside it.
fn without_store(args: &ServeArgs, host: IpAddr, options: &mut ServeOptions) -> Result<()> {
    if args.grpc_management_port.is_some() {
        bail!("--grpc-management-port needs --model-store: TorchServe's gRPC management API manages a model store");
    }
    if args.enable_model_api {
        bail!("--enable-model-api needs --model-store: the folder registered archives live in");
    }
    if !args.models.is_empty() {
        bail!("--models names archives in the model store: give --model-store");
    }
    options.files = args
        .files
        .iter()
        .map(|spec| ModelFile {
            path: spec.path.clone(),
            name: spec.name.clone(),
        })
        .collect();
    options.listeners = vec![Listener {
        at: SocketAddr::new(host, args.port.unwrap_or(8080)),
        roles: Roles::ALL,
        tls: false,
    }];
    options.grpc_address =
        (!args.no_grpc).then(|| SocketAddr::new(host, args.grpc_port.unwrap_or(7070)));
    Ok(())
}

/// A gRPC port's address: `grpc_{api}_address` (unless --host) and `grpc_{api}_port` (a TS_*
/// variable, else the flag, else the file), else TorchServe's default port.
fn grpc_address(
    args: &ServeArgs,
    host: IpAddr,
    config: &TsConfig,
    api: &str,
    flag: Option<u16>,
    default: u16,
) -> Result<SocketAddr> {
    let key = format!("grpc_{api}_address");
    let host = match config.get(&key) {
        Some(h) if args.host.is_none() => h
            .parse()
            .with_context(|| format!("{}: {key}={h} is not an IP address", config.shown()))?,
        _ => host,
    };
    let port = config
        .layered_number(&format!("grpc_{api}_port"), flag)?
        .unwrap_or(default);
    Ok(SocketAddr::new(host, port))
}

/// The CORS headers the configuration sets: each non-empty key's value, copied as it is.
fn cors(config: &TsConfig) -> Result<Vec<(&'static str, String)>> {
    let mut headers = Vec::new();
    for (key, header) in [
        ("cors_allowed_origin", "Access-Control-Allow-Origin"),
        ("cors_allowed_methods", "Access-Control-Allow-Methods"),
        ("cors_allowed_headers", "Access-Control-Allow-Headers"),
    ] {
        if let Some(value) = config.get(key) {
            if hyper::header::HeaderValue::from_str(value).is_err() {
                bail!(
                    "{}: {key}={value:?} cannot be sent as an HTTP header value",
                    config.shown()
                );
            }
            headers.push((header, value.to_string()));
        }
    }
    Ok(headers)
}

/// A server with TorchServe's model store: its three APIs on their addresses, the models of its
/// configuration, its tokens and snapshots.
fn with_store(
    args: &ServeArgs,
    host: IpAddr,
    config: &TsConfig,
    options: &mut ServeOptions,
    workers: usize,
) -> Result<StoreOptions> {
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
    let model_api = args.enable_model_api || config.flag("enable_model_api");
    let envelope: Envelope = config
        .get("service_envelope")
        .unwrap_or("")
        .parse()
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let addresses = api_addresses(args, host, config)?;
    options.listeners = addresses
        .listeners()
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    options.tls = ts_config::certificate(config)?;
    options.grpc_tls = config.flag("enable_grpc_ssl");
    let wants_tls = options.grpc_tls || options.listeners.iter().any(|l| l.tls);
    if wants_tls && options.tls.is_none() {
        bail!(
            "{shown}: an https:// address or enable_grpc_ssl needs a certificate: keystore (PKCS#12), or certificate_file and private_key_file (PEM)"
        );
    }
    if !args.no_grpc {
        options.grpc_address = Some(grpc_address(
            args,
            host,
            config,
            "inference",
            args.grpc_port,
            7070,
        )?);
        options.grpc_management_address = Some(grpc_address(
            args,
            host,
            config,
            "management",
            args.grpc_management_port,
            7071,
        )?);
    }
    let models = store_models(args, config, workers)?;
    let allowed_urls = config
        .layered("allowed_urls", args.allowed_urls.clone())
        .unwrap_or_default()
        .parse()?;
    let keys = if args.disable_token_auth || config.flag("disable_token_authorization") {
        None
    } else {
        let minutes = config
            .layered_number::<f64>("token_expiration_min", None)?
            .filter(|m| *m > 0.0)
            .unwrap_or(60.0);
        Some(KeyOptions {
            path: PathBuf::from("key_file.json"),
            lifetime: Duration::from_secs_f64(minutes * 60.0),
        })
    };
    Ok(StoreOptions {
        dir,
        allowed_urls,
        download_limits: DownloadLimits {
            max_bytes: args.max_download_size,
            timeout: Duration::from_secs(args.download_timeout),
        },
        model_api,
        envelope,
        keys,
        snapshots: (!args.ncs).then(|| SnapshotOptions {
            dir: snapshots_folder(),
            configured: config.pairs(),
        }),
        addresses,
        models,
    })
}

/// The three APIs' addresses: a TS_* variable, else the command line, else the file, else
/// TorchServe's.
fn api_addresses(args: &ServeArgs, host: IpAddr, config: &TsConfig) -> Result<ApiAddresses> {
    let shown = config.shown();
    let address = |key: &str, port: Option<u16>, default: u16| -> Result<ApiAddress> {
        // A flag moves the API, and keeps the file's scheme (an https:// API stays on TLS).
        let scheme = match config.get(key).map(|v| ts_config::address(key, v, &shown)) {
            Some(Ok((_, true))) => "https",
            _ => "http",
        };
        let flag = (args.host.is_some() || port.is_some()).then(|| {
            format!(
                "{scheme}://{}:{}",
                crate::serve::host_text(host),
                port.unwrap_or(default)
            )
        });
        let (at, tls) = match config.layered(key, flag) {
            Some(value) => ts_config::address(key, &value, &shown)?,
            None => (SocketAddr::new(host, default), false),
        };
        Ok(ApiAddress { at, tls })
    };
    Ok(ApiAddresses {
        inference: address("inference_address", args.port, 8080)?,
        management: address("management_address", args.management_port, 8081)?,
        metrics: address("metrics_address", args.metrics_port, 8082)?,
    })
}

/// The models at start: a snapshot's, else load_models (--models) with the `models` settings.
fn store_models(args: &ServeArgs, config: &TsConfig, workers: usize) -> Result<StoreModels> {
    let shown = config.shown();
    if let Some(json) = config.get("model_snapshot") {
        return Ok(StoreModels::Restore {
            versions: snapshot::restored(json, &shown, "model_snapshot")?,
            shown,
            from_snapshot: config.from_snapshot,
            models_ignored: !args.models.is_empty(),
        });
    }
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
    Ok(StoreModels::Load {
        entries: entries
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| store_entry(e))
            .collect::<Result<_>>()?,
        overrides,
        workers,
    })
}

/// A `--models` entry as TorchServe's load_models reads it: `all` (every archive in the store),
/// `FILE` or `NAME=FILE`, each a file in the store.
fn store_entry(entry: &str) -> Result<StoreEntry> {
    let archives = if entry == "all" {
        StoreArchives::All
    } else if entry.contains("://") {
        bail!(
            "--models {entry}: archives at start come from the model store; register URLs once the \
             server runs (POST /models?url=..., with allowed_urls)"
        );
    } else {
        match entry.split_once('=') {
            Some((name, file)) => {
                crate::mar::manifest::validate_model_name(name)
                    .map_err(|e| anyhow::anyhow!("--models {entry}: {e}"))?;
                StoreArchives::File {
                    name: Some(name.to_string()),
                    file: file.to_string(),
                }
            }
            None => StoreArchives::File {
                name: None,
                file: entry.to_string(),
            },
        }
    };
    Ok(StoreEntry {
        shown: entry.to_string(),
        archives,
    })
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
