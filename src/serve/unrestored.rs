//! Versions a config snapshot names that could not be restored at start (the archive is gone from
//! the model store, or is no longer a model). The server starts without them and serves everything
//! else, and reports them: the log, `/ping` (Unhealthy), the model list, describe, and the 404 of a
//! request for one. Every snapshot keeps naming them, because their registration was confirmed:
//! putting the archive back and restarting serves them again. Registering one again or
//! unregistering it ends the report.

use super::snapshot::Restored;
use std::sync::Mutex;

/// One version that was not restored, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnrestoredVersion {
    pub(crate) version: Restored,
    pub(crate) reason: String,
}

impl UnrestoredVersion {
    /// What a request for it is told.
    pub(crate) fn message(&self) -> String {
        format!(
            "Model {} version {} is not served: {} (put the archive back and restart, register it again, or unregister it)",
            self.version.name, self.version.version, self.reason
        )
    }
}

#[derive(Default)]
pub(crate) struct Unrestored(Mutex<Vec<UnrestoredVersion>>);

impl Unrestored {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<UnrestoredVersion>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(&self, version: Restored, reason: String) {
        self.lock().push(UnrestoredVersion { version, reason });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every one, by name then in the snapshot's order.
    pub(crate) fn all(&self) -> Vec<UnrestoredVersion> {
        let mut all = self.lock().clone();
        all.sort_by(|a, b| a.version.name.cmp(&b.version.name));
        all
    }

    /// What snapshots record of them.
    pub(crate) fn restored(&self) -> Vec<Restored> {
        self.lock().iter().map(|u| u.version.clone()).collect()
    }

    /// The versions of `name`.
    pub(crate) fn versions(&self, name: &str) -> Vec<UnrestoredVersion> {
        self.lock()
            .iter()
            .filter(|u| u.version.name == name)
            .cloned()
            .collect()
    }

    /// The version a request names, else the name's default one (else its first).
    pub(crate) fn find(&self, name: &str, version: Option<&str>) -> Option<UnrestoredVersion> {
        let versions = self.versions(name);
        match version {
            Some(v) => versions.into_iter().find(|u| u.version.version == v),
            None => versions
                .iter()
                .find(|u| u.version.default)
                .or(versions.first())
                .cloned(),
        }
    }

    /// The version of `name` that was its default: requests for the name are told it is not
    /// served (rather than answered by another version) until the default is set anew.
    pub(crate) fn default_of(&self, name: &str) -> Option<UnrestoredVersion> {
        self.lock()
            .iter()
            .find(|u| u.version.name == name && u.version.default)
            .cloned()
    }

    /// The snapshot's record once another version of `name` is made its default.
    pub(crate) fn without_default(&self, name: &str) -> Vec<Restored> {
        let mut all = self.restored();
        for r in all.iter_mut().filter(|r| r.name == name) {
            r.default = false;
        }
        all
    }

    /// Another version of `name` is its default now.
    pub(crate) fn clear_default(&self, name: &str) {
        for u in self.lock().iter_mut().filter(|u| u.version.name == name) {
            u.version.default = false;
        }
    }

    /// The snapshot's record without `version` of `name` (what a change that removes it saves).
    pub(crate) fn without(&self, name: &str, version: &str) -> Vec<Restored> {
        self.lock()
            .iter()
            .filter(|u| !(u.version.name == name && u.version.version == version))
            .map(|u| u.version.clone())
            .collect()
    }

    /// Registered again, or unregistered: no longer reported.
    pub(crate) fn forget(&self, name: &str, version: &str) {
        self.lock()
            .retain(|u| !(u.version.name == name && u.version.version == version));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(name: &str, version: &str, default: bool) -> Restored {
        Restored {
            name: name.into(),
            version: version.into(),
            default,
            mar_name: format!("{name}-{version}.mar"),
            min_workers: 1,
            max_workers: 1,
            batch_size: None,
            max_batch_delay_ms: None,
            response_timeout_s: None,
            model_url: None,
        }
    }

    #[test]
    fn versions_are_found_by_name_and_default_and_forgotten() {
        let unrestored = Unrestored::default();
        assert!(unrestored.is_empty());
        unrestored.add(version("pcam", "1.0", false), "gone".into());
        unrestored.add(version("pcam", "2.0", true), "gone".into());
        unrestored.add(version("aaa", "1.0", true), "gone".into());
        assert_eq!(unrestored.all()[0].version.name, "aaa");
        assert_eq!(
            unrestored.find("pcam", None).unwrap().version.version,
            "2.0"
        );
        assert_eq!(
            unrestored
                .find("pcam", Some("1.0"))
                .unwrap()
                .version
                .version,
            "1.0"
        );
        assert!(unrestored.find("pcam", Some("3.0")).is_none());
        assert_eq!(unrestored.without("pcam", "2.0").len(), 2);
        assert_eq!(
            unrestored.default_of("pcam").unwrap().version.version,
            "2.0"
        );
        assert!(unrestored
            .without_default("pcam")
            .iter()
            .all(|r| !r.default || r.name == "aaa"));
        unrestored.forget("pcam", "2.0");
        assert!(unrestored.default_of("pcam").is_none());
        assert_eq!(
            unrestored.find("pcam", None).unwrap().version.version,
            "1.0"
        );
        assert!(unrestored
            .find("pcam", None)
            .unwrap()
            .message()
            .starts_with("Model pcam version 1.0 is not served: gone"));
    }
}
