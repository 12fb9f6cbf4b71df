//! Arguments -> plain configuration, once. Every setting that can come from several places is read
//! here, in one order: the flag, else its environment variable, else the profile of the
//! configuration file, else the default.

use super::config::{PredictConfig, RemoteConfig, SlideConfig};
use super::{ColorChoice, EngineArgs, PredictArgs, RemoteArgs, ServeArgs};
use crate::engine::EngineOptions;
use crate::pipeline::PipelineOptions;
use crate::records::Format;
use crate::remote::{load_profile, prompt_password, read_token, Client, Credentials, Profile};
use crate::serve::auth::Auth;
use crate::serve::http::Limits;
use crate::serve::model_store::ModelStore;
use crate::serve::models::{Registration, Settings};
use crate::serve::{Defaults, Roles, ServeOptions};
use crate::slide::heatmap::HeatmapOptions;
use crate::slide::SlideOptions;
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::net::SocketAddr;
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
    let engine = engine(&args.engine);
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
        },
        level: args.level,
        tiles: args.tiles,
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
        quiet: args.quiet,
        slides,
        remote,
    })
}

/// `scancer serve`'s arguments, resolved (the credential files read, the models at start found).
pub(crate) fn serve(args: ServeArgs) -> Result<ServeOptions> {
    let auth = Auth::load(
        args.auth_file.as_deref(),
        args.token_file.as_deref(),
        args.open.clone(),
    )?;
    let engine = engine(&args.engine);
    let settings = Settings {
        batch_size: engine.batch_size,
        max_batch_delay: Duration::from_millis(args.max_batch_delay),
        response_timeout: Duration::from_secs(120),
        job_queue_size: args.job_queue_size as usize,
    };
    let workers = args.workers as usize;
    let startup_registration = |path: PathBuf, name: Option<String>, url: String| {
        (
            Registration {
                path,
                name,
                url,
                config: None,
                settings,
                loaded_at_startup: true,
                downloaded: false,
            },
            workers,
        )
    };
    let mut startup = Vec::new();
    for spec in &args.files {
        let url = spec.path.file_name().map_or_else(
            || spec.path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        startup.push(startup_registration(
            spec.path.clone(),
            spec.name.clone(),
            url,
        ));
    }
    let host = args.host;
    let listeners = match &args.model_store {
        None => {
            if args.enable_model_api {
                bail!("--enable-model-api needs --model-store: the folder registered archives live in");
            }
            vec![(SocketAddr::new(host, args.port), Roles::ALL)]
        }
        Some(dir) => {
            if !dir.is_dir() {
                bail!("--model-store {}: no such folder", dir.display());
            }
            let store = ModelStore::new(dir.clone());
            for entry in &args.models {
                for (name, file) in store_models(&store, entry)? {
                    let path = store.file(&file).map_err(|e| {
                        anyhow::anyhow!("--models {entry}: {} in {}", e.message, dir.display())
                    })?;
                    startup.push(startup_registration(path, name, file));
                }
            }
            separate_listeners(&[
                (
                    SocketAddr::new(host, args.port),
                    Roles {
                        inference: true,
                        ..Roles::default()
                    },
                ),
                (
                    SocketAddr::new(host, args.management_port),
                    Roles {
                        management: true,
                        ..Roles::default()
                    },
                ),
                (
                    SocketAddr::new(host, args.metrics_port),
                    Roles {
                        metrics: true,
                        ..Roles::default()
                    },
                ),
            ])
        }
    };
    Ok(ServeOptions {
        startup,
        listeners,
        grpc_address: (!args.no_grpc).then(|| SocketAddr::new(host, args.grpc_port)),
        defaults: Defaults {
            engine,
            settings,
            workers: 0,
        },
        queue_wait: Duration::from_millis(args.queue_wait),
        limits: Limits {
            max_body: args.max_request_size,
            client_timeout: Duration::from_secs(args.client_timeout),
            head_timeout: Duration::from_secs(args.head_timeout),
            keep_alive: Duration::from_secs(args.keep_alive_timeout),
            max_buffered: args.max_body_memory,
        },
        max_connections: args.max_connections as usize,
        auth,
        model_store: args.model_store,
        model_api: args.enable_model_api,
        quiet: args.quiet,
    })
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

/// The engine's settings, as `predict` and `serve` give them.
fn engine(args: &EngineArgs) -> EngineOptions {
    EngineOptions {
        device: args.device,
        threads: args.threads.map(|n| n as usize),
        max_pixels: args.max_image_pixels,
        batch_size: args.batch_size as usize,
        optimize: !args.no_optimize,
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
