//! The registered models: each name's versions, in registration order, and its default version
//! (the first registered, until set otherwise), with TorchServe's rules and messages for lookups,
//! conflicts and removals.

use super::models::ServedModel;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

#[derive(Default)]
pub(crate) struct Registry {
    names: RwLock<BTreeMap<String, Named>>,
}

#[derive(Clone)]
struct Named {
    versions: Vec<Arc<ServedModel>>,
    default: String,
}

/// No model of the name (or version) asked for, in TorchServe's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Missing {
    pub(crate) kind: MissingKind,
    pub(crate) message: String,
}

/// What was missing: TorchServe answers each with its own exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissingKind {
    /// No model of the name.
    Model,
    /// The name, but not the version.
    Version,
}

impl Missing {
    pub(crate) fn model(name: &str) -> Missing {
        Missing {
            kind: MissingKind::Model,
            message: format!("Model not found: {name}"),
        }
    }
}

/// Why a version could not be removed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RemoveError {
    Missing(Missing),
    /// TorchServe's 403: the default version, while the name has others.
    Default(String),
}

/// A model a registration would add is already registered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Conflict(pub(crate) String);

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Named>> {
        // Every change is one map or vector operation: a panic cannot leave the map half-changed.
        self.names.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Named>> {
        self.names.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The version a request names, else the name's default version.
    pub(crate) fn lookup(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedModel>, Missing> {
        let names = self.read();
        let named = names.get(name).ok_or_else(|| Missing::model(name))?;
        let wanted = version.unwrap_or(&named.default);
        named
            .versions
            .iter()
            .find(|m| m.version == wanted)
            .cloned()
            .ok_or_else(|| Missing {
                kind: MissingKind::Version,
                message: format!(
                    "Model version: {} does not exist for model: {name}",
                    version.unwrap_or_default()
                ),
            })
    }

    /// Every version of every model: by name, then in registration order.
    pub(crate) fn all(&self) -> Vec<Arc<ServedModel>> {
        self.read()
            .values()
            .flat_map(|n| n.versions.iter().cloned())
            .collect()
    }

    /// Each name with its default version, by name.
    pub(crate) fn defaults(&self) -> Vec<Arc<ServedModel>> {
        self.read()
            .values()
            .filter_map(|n| n.versions.iter().find(|m| m.version == n.default).cloned())
            .collect()
    }

    /// The versions of `name`, in registration order (empty if none).
    pub(crate) fn versions(&self, name: &str) -> Vec<Arc<ServedModel>> {
        self.read()
            .get(name)
            .map(|n| n.versions.clone())
            .unwrap_or_default()
    }

    pub(crate) fn default_version(&self, name: &str) -> Option<String> {
        self.read().get(name).map(|n| n.default.clone())
    }

    /// Whether `name` has a registered version.
    pub(crate) fn contains_name(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// Whether `name` `version` is registered.
    pub(crate) fn contains(&self, name: &str, version: &str) -> bool {
        self.read()
            .get(name)
            .is_some_and(|n| n.versions.iter().any(|m| m.version == version))
    }

    /// A copy to try a change on (the models are shared, not copied): the snapshot of a change is
    /// written before the change is made.
    pub(crate) fn preview(&self) -> Registry {
        Registry {
            names: RwLock::new(self.read().clone()),
        }
    }

    /// Adds a version; the first of a name becomes its default.
    pub(crate) fn insert(&self, model: Arc<ServedModel>) -> Result<(), Conflict> {
        let mut names = self.write();
        match names.get_mut(&model.name) {
            Some(named) => {
                if named.versions.iter().any(|m| m.version == model.version) {
                    return Err(Conflict(format!(
                        "Model version {} is already registered for model {}",
                        model.version, model.name
                    )));
                }
                named.versions.push(model);
            }
            None => {
                names.insert(
                    model.name.clone(),
                    Named {
                        default: model.version.clone(),
                        versions: vec![model],
                    },
                );
            }
        }
        Ok(())
    }

    /// Removes a version (the default one if none is named). TorchServe's rule: the default
    /// version goes only when it is the last.
    pub(crate) fn remove(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedModel>, RemoveError> {
        let mut names = self.write();
        let named = names
            .get_mut(name)
            .ok_or_else(|| RemoveError::Missing(Missing::model(name)))?;
        let wanted = version.unwrap_or(&named.default).to_string();
        let k = named
            .versions
            .iter()
            .position(|m| m.version == wanted)
            .ok_or_else(|| {
                RemoveError::Missing(Missing {
                    kind: MissingKind::Version,
                    message: format!("Model version: {wanted} does not exist for model: {name}"),
                })
            })?;
        if wanted == named.default && named.versions.len() > 1 {
            return Err(RemoveError::Default(format!(
                "Cannot remove default version for model {name}"
            )));
        }
        let removed = named.versions.remove(k);
        if named.versions.is_empty() {
            names.remove(name);
        }
        Ok(removed)
    }

    /// Makes `version` the default of `name`.
    pub(crate) fn set_default(&self, name: &str, version: &str) -> Result<(), Missing> {
        let mut names = self.write();
        let named = names.get_mut(name).ok_or_else(|| Missing::model(name))?;
        if !named.versions.iter().any(|m| m.version == version) {
            return Err(Missing {
                kind: MissingKind::Version,
                message: format!("Model version {version} does not exist for model {name}"),
            });
        }
        named.default = version.to_string();
        Ok(())
    }
}
