//! Arguments -> plain configuration, once. Every setting that can come from several places is read
//! here, in one order: the flag, else its environment variable, else the profile of the
//! configuration file, else the default.

use super::config::{HeatmapFormat, PredictConfig, RemoteConfig, SlideConfig};
use super::environment::variable;
use super::{ColorChoice, EngineArgs, PredictArgs, RemoteArgs};
use crate::engine::EngineOptions;
use crate::pipeline::PipelineOptions;
use crate::records::Format;
use crate::remote::{load_profile, prompt_password, read_token, Client, Credentials, Profile};
use crate::slide::exports::Format as Export;
use crate::slide::heatmap::HeatmapOptions;
use crate::slide::resolution::{LevelChoice, Target};
use crate::slide::SlideOptions;
use anyhow::{bail, Result};
use std::io::IsTerminal;
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
    if args.overlay {
        match &args.heatmap {
            None => bail!("--overlay draws the heatmap over the slide: it needs --heatmap PATH"),
            Some(path)
                if args.heatmap_format == HeatmapFormat::Tiff
                    || crate::slide::heatmap::is_tiff(path) =>
            {
                bail!(
                    "--overlay draws a PNG heatmap over the slide, and a TIFF heatmap ({}) is the map \
                     alone, at the slide's size, for a viewer to overlay: drop --overlay, or write a PNG",
                    path.display()
                )
            }
            Some(_) => {}
        }
    }
    let heatmap_side = args.heatmap_size as usize;
    let slides = SlideConfig {
        tile: args.tile,
        options: SlideOptions {
            stride: args.stride,
            tissue_threshold: args.tissue_threshold,
            all_tiles: args.all_tiles,
            // A slide picture is kept for an overlay heatmap and for WSInfer's mask picture.
            thumbnail_side: match (args.heatmap.is_some() && args.overlay, &args.wsinfer_out) {
                // The overlay's own size (the mask picture is shrunk to 1,024 where larger).
                (true, _) => heatmap_side,
                (false, Some(_)) => crate::slide::exports::WSINFER_MASK_SIDE,
                (false, None) => 0,
            },
            choice: LevelChoice {
                target: Target::from_flags(args.level, args.mpp, args.magnification),
                // The model's are the engine's, known once it is loaded.
                model_mpp: None,
                slide_mpp: args.slide_mpp,
                override_mpp: args.override_slide_mpp,
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
            (Export::WsinferCsv, args.wsinfer_out.clone()),
            (Export::WsinferGeoJson, args.wsinfer_out.clone()),
            (Export::WsinferPatches, args.wsinfer_out.clone()),
            (Export::WsinferMask, args.wsinfer_out.clone()),
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

/// The engine's settings, as `predict` and `serve` give them.
pub(super) fn engine(args: &EngineArgs) -> EngineOptions {
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

/// The configuration file of profiles: `scancer/config.toml` under XDG_CONFIG_HOME, else under
/// `~/.config`.
fn config_file() -> Option<PathBuf> {
    if let Some(dir) = variable("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join("scancer/config.toml"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/scancer/config.toml"))
}

/// The first of a flag, its environment variable and the profile's value that is given (an empty
/// value counts as not given).
fn layered(flag: Option<String>, env: &str, profile: Option<String>) -> Option<String> {
    let given = |v: &String| !v.is_empty();
    flag.filter(given)
        .or_else(|| variable(env))
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
    let named = args.profile.clone().or_else(|| variable("SCANCER_PROFILE"));
    let profile = load_profile(named, config_file())?;
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
