//! What `scancer serve` runs with, as the command line resolves it: built, typed values only
//! (parsed addresses, compiled URL patterns, checked folders). The work of starting (reading the
//! archives, restoring a snapshot, writing the first one) is `startup`'s.

use super::app::{Defaults, Envelope, Roles};
use super::auth::Auth;
use super::http::Limits;
use super::model_store::{AllowedUrls, DownloadLimits};
use super::snapshot::Restored;
use super::tls::CertificateSource;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) struct ServeOptions {
    /// The model files to register at start (without a model store), and their workers.
    pub(crate) files: Vec<ModelFile>,
    pub(crate) workers: usize,
    /// Where to listen, and what each address answers (one address may answer several APIs).
    pub(crate) listeners: Vec<Listener>,
    /// The gRPC port's address, if it is on.
    pub(crate) grpc_address: Option<SocketAddr>,
    /// The gRPC management port's address (with a model store), if it is on.
    pub(crate) grpc_management_address: Option<SocketAddr>,
    /// The certificate of the TLS listeners (https:// addresses, gRPC with enable_grpc_ssl).
    pub(crate) tls: Option<CertificateSource>,
    /// The gRPC port is on TLS (enable_grpc_ssl).
    pub(crate) grpc_tls: bool,
    pub(crate) defaults: Defaults,
    /// How long a request may wait for room in a full queue before its 503.
    pub(crate) queue_wait: Duration,
    pub(crate) limits: Limits,
    pub(crate) max_connections: usize,
    pub(crate) auth: Auth,
    /// TorchServe's model store, where the server has one (--model-store, --ts-config).
    pub(crate) store: Option<StoreOptions>,
    pub(crate) quiet: bool,
    /// The slide folder the viewer's API serves (--slides).
    pub(crate) slides: Option<SlideFolder>,
    /// The `hostname` label of every metric.
    pub(crate) hostname: String,
    /// TorchServe's CORS headers (cors_allowed_origin, _methods, _headers), sent on every HTTP
    /// answer, errors included, as TorchServe sends them.
    pub(crate) cors: Vec<(&'static str, String)>,
    /// How often the system metrics are sampled (None: disable_system_metrics).
    pub(crate) system_metrics: Option<Duration>,
    /// TorchServe's log files (with a model store, or LOG_LOCATION set).
    pub(crate) log_files: Option<LogFiles>,
}

/// `--slides DIR` and its upload limit.
pub(crate) struct SlideFolder {
    pub(crate) dir: PathBuf,
    pub(crate) max_upload: u64,
}

/// Where TorchServe's log files go.
pub(crate) struct LogFiles {
    /// access_log, ts_log, model_log (LOG_LOCATION, else ./logs).
    pub(crate) logs: PathBuf,
    /// ts_metrics, model_metrics (METRICS_LOCATION, else ./logs).
    pub(crate) metrics: PathBuf,
    /// Metric lines in those two (metrics_mode=log, TorchServe's default; not with prometheus).
    pub(crate) metric_lines: bool,
}

/// A model store and what the TorchServe configuration around it says.
pub(crate) struct StoreOptions {
    /// The folder archives are registered from (checked to exist).
    pub(crate) dir: PathBuf,
    /// The URLs a registration may download (allowed_urls), and how much and how long.
    pub(crate) allowed_urls: AllowedUrls,
    pub(crate) download_limits: DownloadLimits,
    /// Register and unregister are allowed (enable_model_api).
    pub(crate) model_api: bool,
    /// TorchServe's service_envelope.
    pub(crate) envelope: Envelope,
    /// TorchServe's token authorization (None when disabled).
    pub(crate) keys: Option<KeyOptions>,
    /// Config snapshots (None with --ncs).
    pub(crate) snapshots: Option<SnapshotOptions>,
    /// The addresses of the three TorchServe APIs, as configured (a snapshot records them).
    pub(crate) addresses: ApiAddresses,
    /// The models to register at start.
    pub(crate) models: StoreModels,
}

/// One HTTP listener: where, which APIs it answers, and whether on TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listener {
    pub(crate) at: SocketAddr,
    pub(crate) roles: Roles,
    pub(crate) tls: bool,
}

/// One API's address, as TorchServe writes it (`https://127.0.0.1:8443`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiAddress {
    pub(crate) at: SocketAddr,
    pub(crate) tls: bool,
}

impl ApiAddress {
    pub(crate) fn url(self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", host_text(self.at.ip()), self.at.port())
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiAddresses {
    pub(crate) inference: ApiAddress,
    pub(crate) management: ApiAddress,
    pub(crate) metrics: ApiAddress,
}

/// Two APIs on one address, one with TLS and one without.
#[derive(Debug, thiserror::Error)]
#[error("{0} cannot be both http:// and https://: give the APIs that share it one scheme")]
pub(crate) struct MixedSchemes(SocketAddr);

impl ApiAddresses {
    /// One listener per address: APIs given the same address (and port) share it, as TorchServe
    /// does when two of its addresses are equal. Port 0 always gets its own listener.
    pub(crate) fn listeners(self) -> Result<Vec<Listener>, MixedSchemes> {
        let only = |pick: fn(&mut Roles)| {
            let mut roles = Roles::default();
            pick(&mut roles);
            roles
        };
        let wanted = [
            (self.inference, only(|r| r.inference = true)),
            (self.management, only(|r| r.management = true)),
            (self.metrics, only(|r| r.metrics = true)),
        ];
        let mut listeners: Vec<Listener> = Vec::new();
        for (address, roles) in wanted {
            let at = address.at;
            match listeners.iter_mut().find(|l| l.at == at && at.port() != 0) {
                Some(shared) if shared.tls != address.tls => return Err(MixedSchemes(at)),
                Some(shared) => {
                    shared.roles.inference |= roles.inference;
                    shared.roles.management |= roles.management;
                    shared.roles.metrics |= roles.metrics;
                }
                None => listeners.push(Listener {
                    at,
                    roles,
                    tls: address.tls,
                }),
            }
        }
        Ok(listeners)
    }
}

/// TorchServe's token authorization: the key file to write and how long its keys last.
pub(crate) struct KeyOptions {
    pub(crate) path: PathBuf,
    pub(crate) lifetime: Duration,
}

/// Where config snapshots go, and the configuration read (config.properties or a snapshot, with
/// the TS_* variables), which every snapshot records under the server's own settings.
pub(crate) struct SnapshotOptions {
    pub(crate) dir: PathBuf,
    pub(crate) configured: Vec<(String, String)>,
}

/// The models a server with a model store starts with.
pub(crate) enum StoreModels {
    /// The versions of a `model_snapshot`: `shown` names the configuration it is in, a config
    /// snapshot (`from_snapshot`) or config.properties.
    Restore {
        shown: String,
        from_snapshot: bool,
        versions: Vec<Restored>,
        /// --models was given too, and is ignored (TorchServe's rule).
        models_ignored: bool,
    },
    /// load_models (or --models) entries, with the `models` key's settings per version, and the
    /// workers of the others.
    Load {
        entries: Vec<StoreEntry>,
        overrides: Vec<Restored>,
        workers: usize,
    },
}

/// A model file on the command line: `[NAME=]PATH`.
pub(crate) struct ModelFile {
    pub(crate) path: PathBuf,
    pub(crate) name: Option<String>,
}

/// A load_models entry as TorchServe reads it (`all`, `FILE` or `NAME=FILE`); `shown` is the entry
/// as given, for errors.
pub(crate) struct StoreEntry {
    pub(crate) shown: String,
    pub(crate) archives: StoreArchives,
}

pub(crate) enum StoreArchives {
    /// Every archive in the store.
    All,
    /// One file of the store, registered under its manifest's name or the one given.
    File { name: Option<String>, file: String },
}

/// An address's host as a URL writes it (`[::1]`).
pub(crate) fn host_text(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }
}
