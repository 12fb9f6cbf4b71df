//! What the application holds: the registered models, the configuration every API reads, and how
//! a listener's roles and the service envelope are told apart.

use super::errors;
use crate::engine::EngineOptions;
use crate::serve::auth::Auth;
use crate::serve::http::Response;
use crate::serve::metrics::Metrics;
use crate::serve::model_store::ModelStore;
use crate::serve::models::{ServedModel, Settings};
use crate::serve::registry::{Missing, MissingKind, Registry};
use crate::serve::slides::{Analyses, Library};
use crate::serve::snapshot::{Kind, Restored, Snapshots};
use crate::serve::tokens::Tokens;
use crate::serve::unrestored::Unrestored;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct App {
    pub(crate) registry: Registry,
    /// Versions a snapshot names that could not be restored at start: reported, and kept in
    /// every snapshot.
    pub(crate) unrestored: Unrestored,
    /// How long a request may wait for room in a full queue before its 503.
    pub(crate) queue_wait: Duration,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) auth: Auth,
    /// What a registration gets when it asks for nothing else, and what models load with.
    pub(crate) defaults: Defaults,
    /// The model store and the management API's writes, where the server has one.
    pub(crate) store: Option<Arc<ModelStore>>,
    /// Register and unregister are allowed (TorchServe's enable_model_api).
    pub(crate) model_api: bool,
    /// One management change at a time, so that checks and changes cannot interleave.
    pub(crate) changes: tokio::sync::Mutex<()>,
    /// The server is stopping: a closed queue means that, not an unregistered model.
    pub(crate) stopping: AtomicBool,
    /// Config snapshots, written after every change (None with --ncs).
    pub(crate) snapshots: Option<Snapshots>,
    /// Changes are recorded in snapshots (from the end of start-up on).
    pub(crate) recording: AtomicBool,
    /// TorchServe's token authorization, when on.
    pub(crate) keys: Option<Tokens>,
    pub(crate) envelope: Envelope,
    /// The slide folder (--slides), where the server has one, and its analyses.
    pub(crate) slides: Option<Arc<Library>>,
    pub(crate) analyses: Option<Arc<Analyses>>,
}

/// How `/predictions` bodies are read and answered (TorchServe's service_envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Envelope {
    /// The body is the image (TorchServe's default).
    #[default]
    Body,
    /// `json` and `kserve`: KServe V1's `{"instances": [...]}`, answered `{"predictions": [...]}`.
    Instances,
    /// `kservev2`: V2 requests with TorchServe's input names, answered as its envelope does.
    KServeV2,
}

/// A service_envelope that is none of TorchServe's.
#[derive(Debug, thiserror::Error)]
#[error("service_envelope={0}: expected body, json, kserve or kservev2")]
pub(crate) struct UnknownEnvelope(String);

impl std::str::FromStr for Envelope {
    type Err = UnknownEnvelope;

    fn from_str(s: &str) -> Result<Envelope, UnknownEnvelope> {
        match s.trim() {
            "" | "body" => Ok(Envelope::Body),
            "json" | "kserve" => Ok(Envelope::Instances),
            "kservev2" => Ok(Envelope::KServeV2),
            other => Err(UnknownEnvelope(other.to_string())),
        }
    }
}

/// The defaults of models registered without settings of their own.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub(crate) engine: EngineOptions,
    pub(crate) settings: Settings,
    /// Workers of a model registered through the API without initial_workers (TorchServe's
    /// default_workers_per_model; 0 unless configured).
    pub(crate) workers: usize,
}

/// Which APIs a listener answers: TorchServe's inference, management and metrics ports, or all of
/// them on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Roles {
    pub(crate) inference: bool,
    pub(crate) management: bool,
    pub(crate) metrics: bool,
}

impl Roles {
    pub(crate) const ALL: Roles = Roles {
        inference: true,
        management: true,
        metrics: true,
    };

    /// `inference, management` as start-up messages name them.
    pub(crate) fn names(self) -> String {
        let mut names = Vec::new();
        for (on, name) in [
            (self.inference, "inference"),
            (self.management, "management"),
            (self.metrics, "metrics"),
        ] {
            if on {
                names.push(name);
            }
        }
        names.join(", ")
    }
}

impl App {
    /// The model a request names: by name, and version if given (else the default version).
    pub(crate) fn find(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedModel>, Response> {
        self.lookup(name, version)
            .map_err(|missing| errors::missing(&missing))
    }

    /// `find`, with the miss as TorchServe names it (and why, for a version a restore left out).
    pub(crate) fn lookup(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedModel>, Missing> {
        let not_served = |left_out: crate::serve::unrestored::UnrestoredVersion, kind| Missing {
            kind,
            message: left_out.message(),
        };
        // The name's default version was left out: its requests are not answered by another.
        if let Some(left_out) = version
            .is_none()
            .then(|| self.unrestored.default_of(name))
            .flatten()
        {
            return Err(not_served(left_out, MissingKind::Model));
        }
        self.registry.lookup(name, version).map_err(|missing| {
            match self.unrestored.find(name, version) {
                Some(left_out) if version.is_some() || !self.registry.contains_name(name) => {
                    not_served(left_out, missing.kind)
                }
                _ => missing,
            }
        })
    }

    /// `/ping`: Healthy while the server answers (TorchServe 0.12 says so with models at 0
    /// workers, or with workers still starting), unless a version the snapshot names could not be
    /// restored (scancer's addition: TorchServe would not have started).
    pub(crate) fn healthy(&self) -> bool {
        self.unrestored.is_empty()
    }

    /// After every change to the registered models: the snapshot that restores them, on disk
    /// before the change is confirmed.
    pub(crate) fn changed(&self) -> Result<(), NotSaved> {
        self.record(&self.registry, &self.unrestored.restored())
    }

    /// The snapshot of `registry` and `unrestored` (as a change would leave them), on disk before
    /// the change is made or confirmed. Nothing is recorded during start-up, or with --ncs.
    pub(crate) fn record(
        &self,
        registry: &Registry,
        unrestored: &[Restored],
    ) -> Result<(), NotSaved> {
        match &self.snapshots {
            Some(snapshots) if self.recording.load(Ordering::SeqCst) => snapshots
                .write(Kind::Snapshot, registry, unrestored)
                .map(drop)
                .map_err(|e| NotSaved(format!("{e:#}"))),
            _ => Ok(()),
        }
    }

    /// A snapshot at start or stop: a failure is said, nothing waits for it.
    pub(crate) fn record_or_warn(&self, kind: Kind) {
        if let Some(snapshots) = &self.snapshots {
            snapshots.write_or_warn(kind, &self.registry, &self.unrestored.restored());
        }
    }
}

/// A management change whose snapshot could not be written: refused, so that a restart never
/// loses (or brings back) what a client was told.
#[derive(Debug, thiserror::Error)]
#[error("the change was not made, because it could not be saved: {0}")]
pub(crate) struct NotSaved(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_as_torchserve_names_them() {
        assert_eq!("".parse::<Envelope>().unwrap(), Envelope::Body);
        assert_eq!(" kserve ".parse::<Envelope>().unwrap(), Envelope::Instances);
        assert_eq!("kservev2".parse::<Envelope>().unwrap(), Envelope::KServeV2);
        assert_eq!(
            "xml".parse::<Envelope>().unwrap_err().to_string(),
            "service_envelope=xml: expected body, json, kserve or kservev2"
        );
    }
}
