//! Starting a server: the models it starts with become registrations (a snapshot's versions
//! restored, load_models' archives read from the model store), and the configuration every config
//! snapshot records is completed with the server's own settings.

use super::model_store::ModelStore;
use super::models::{self, Registration, Settings};
use super::options::{ServeOptions, StoreArchives, StoreEntry, StoreModels, StoreOptions};
use super::snapshot::Restored;
use anyhow::{anyhow, Result};
use std::path::PathBuf;
use std::time::Duration;

/// A model to register at start, and its workers.
pub(super) struct Startup {
    pub(super) registration: Registration,
    pub(super) min: usize,
    pub(super) max: usize,
    /// The snapshot's record, for a restored version: one that cannot load is left out (and
    /// reported) rather than stopping the start.
    pub(super) restored: Option<Restored>,
}

/// What a server registers at start, in order, the default versions to set afterwards, and the
/// snapshot's versions whose archive is gone.
pub(super) struct Plan {
    pub(super) models: Vec<Startup>,
    pub(super) defaults_to_set: Vec<(String, String)>,
    pub(super) unrestored: Vec<(Restored, String)>,
}

/// The registrations of the models a server starts with: the command line's files, or a
/// snapshot's versions or load_models' entries, read from the model store `store`.
pub(super) fn plan(
    options: &ServeOptions,
    store: Option<(&StoreOptions, &ModelStore)>,
) -> Result<Plan> {
    let settings = options.defaults.settings;
    let mut plan = Plan {
        models: Vec::new(),
        defaults_to_set: Vec::new(),
        unrestored: Vec::new(),
    };
    for file in &options.files {
        let url = file.path.file_name().map_or_else(
            || file.path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        plan.models.push(Startup {
            registration: registration(file.path.clone(), file.name.clone(), url, settings),
            min: options.workers,
            max: options.workers,
            restored: None,
        });
    }
    let Some((options, store)) = store else {
        return Ok(plan);
    };
    match &options.models {
        StoreModels::Restore {
            shown,
            from_snapshot,
            versions,
            models_ignored,
        } => {
            for r in versions {
                restore(&mut plan, store, r, settings);
            }
            let what = if *from_snapshot {
                "the config snapshot"
            } else {
                "model_snapshot in"
            };
            crate::messages::note!(
                "restoring {} model version(s) of {what} {shown}",
                versions.len()
            );
            if *models_ignored {
                crate::messages::note!(
                    "--models is ignored when models are restored (TorchServe's rule)"
                );
            }
        }
        StoreModels::Load {
            entries,
            overrides,
            workers,
        } => {
            for entry in entries {
                load(&mut plan, store, entry, overrides, settings, *workers)?;
            }
        }
    }
    Ok(plan)
}

/// One version of a snapshot, from its archive in the store (or left out, when it is gone).
fn restore(plan: &mut Plan, store: &ModelStore, r: &Restored, settings: Settings) {
    let Ok(path) = store.file(&r.mar_name) else {
        let reason = format!(
            "its archive {} is not in the model store {}",
            r.mar_name,
            store.dir.display()
        );
        plan.unrestored.push((r.clone(), reason));
        return;
    };
    let settings = with_overrides(settings, r);
    let url = r.model_url.clone().unwrap_or_else(|| r.mar_name.clone());
    let mut registration = registration(path, Some(r.name.clone()), url, settings);
    registration.loaded_at_startup = false;
    // Downloaded: its unregistration deletes the archive, as before the restart.
    registration.downloaded = r.model_url.is_some();
    if r.default {
        plan.defaults_to_set
            .push((r.name.clone(), r.version.clone()));
    }
    plan.models.push(Startup {
        registration,
        min: r.min_workers,
        max: r.max_workers,
        restored: Some(r.clone()),
    });
}

/// The archives of one load_models entry, each with the `models` key's settings for its version
/// where it has some.
fn load(
    plan: &mut Plan,
    store: &ModelStore,
    entry: &StoreEntry,
    overrides: &[Restored],
    settings: Settings,
    workers: usize,
) -> Result<()> {
    let shown = &entry.shown;
    let files = match &entry.archives {
        StoreArchives::All => store
            .all()
            .map_err(|e| anyhow!("--models all: cannot list {}: {e}", store.dir.display()))?
            .into_iter()
            .map(|file| (None, file))
            .collect(),
        StoreArchives::File { name, file } => vec![(name.clone(), file.clone())],
    };
    for (name, file) in files {
        let path = store
            .file(&file)
            .map_err(|e| anyhow!("--models {shown}: {} in {}", e.message, store.dir.display()))?;
        let (manifest_name, version) = models::identity(&path)?;
        let name = name.unwrap_or(manifest_name);
        let chosen = overrides
            .iter()
            .find(|o| o.name == name && o.version == version);
        let (settings, min, max) = match chosen {
            Some(o) => (with_overrides(settings, o), o.min_workers, o.max_workers),
            None => (settings, workers, workers),
        };
        plan.models.push(Startup {
            registration: registration(path, Some(name), file, settings),
            min,
            max,
            restored: None,
        });
    }
    Ok(())
}

/// A model registered at start from a file.
fn registration(
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
fn with_overrides(mut settings: Settings, r: &Restored) -> Settings {
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

/// The configuration every config snapshot records: what was read, with the server's own settings
/// over it, so that a restart from the snapshot keeps what the command line set.
pub(super) fn snapshot_properties(
    configured: &[(String, String)],
    options: &ServeOptions,
    store: &StoreOptions,
) -> Vec<(String, String)> {
    let mut properties = configured.to_vec();
    let mut set = |key: &str, value: String| match properties.iter_mut().find(|(k, _)| k == key) {
        Some(pair) => pair.1 = value,
        None => properties.push((key.to_string(), value)),
    };
    set("inference_address", store.addresses.inference.url());
    set("management_address", store.addresses.management.url());
    set("metrics_address", store.addresses.metrics.url());
    if let Some(grpc) = options.grpc_address {
        set("grpc_inference_port", grpc.port().to_string());
    }
    if !store.allowed_urls.text.is_empty() {
        set("allowed_urls", store.allowed_urls.text.clone());
    }
    set(
        "job_queue_size",
        options.defaults.settings.job_queue_size.to_string(),
    );
    set("max_request_size", options.limits.max_body.to_string());
    // Through the API a model starts default_workers_per_model workers: 0 unless configured.
    if options.defaults.workers > 0 {
        set(
            "default_workers_per_model",
            options.defaults.workers.to_string(),
        );
    }
    // Absolute, so that a snapshot restores from wherever the next start runs.
    let absolute = std::fs::canonicalize(&store.dir).unwrap_or_else(|_| store.dir.clone());
    set("model_store", absolute.display().to_string());
    if store.model_api {
        set("enable_model_api", "true".into());
    }
    if store.keys.is_none() {
        set("disable_token_authorization", "true".into());
    }
    properties
}
