//! TorchServe's start-up configuration for `scancer serve`: `config.properties` found as TorchServe
//! finds it (TS_CONFIG_FILE, else --ts-config, else the newest config snapshot unless --ncs, else
//! ./config.properties), `$$VAR$$` substitutions, and with enable_envvars_config the TS_* variables
//! over the file. Every key is honoured, or reported once as having no effect here.

use crate::properties;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What scancer does with a key of TorchServe's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handling {
    Honoured,
    /// Read, with no effect in scancer (why).
    Ignored(&'static str),
}

use Handling::{Honoured, Ignored};

const NO_JVM: &str = "scancer has no JVM, Netty or Python workers";

/// TorchServe 0.12's keys (ConfigManager) and what scancer does with each.
const KEYS: &[(&str, Handling)] = &[
    ("inference_address", Honoured),
    ("management_address", Honoured),
    ("metrics_address", Honoured),
    ("grpc_inference_address", Honoured),
    ("grpc_inference_port", Honoured),
    ("grpc_management_address", Honoured),
    ("grpc_management_port", Honoured),
    ("enable_grpc_ssl", Honoured),
    ("model_store", Honoured),
    ("load_models", Honoured),
    ("models", Honoured),
    ("model_snapshot", Honoured),
    ("default_workers_per_model", Honoured),
    ("job_queue_size", Honoured),
    ("max_request_size", Honoured),
    ("max_response_size", Ignored("answers are not size-limited")),
    ("default_response_timeout", Honoured),
    ("service_envelope", Honoured),
    ("allowed_urls", Honoured),
    ("use_env_allowed_urls", Honoured),
    ("disable_token_authorization", Honoured),
    ("enable_model_api", Honoured),
    ("token_expiration_min", Honoured),
    ("enable_envvars_config", Honoured),
    // /metrics is always Prometheus text; `prometheus` also leaves ts_metrics.log and
    // model_metrics.log without lines, as TorchServe leaves them.
    ("metrics_mode", Honoured),
    (
        "metrics_format",
        Ignored("/metrics is always Prometheus text"),
    ),
    ("metrics_config", Ignored("scancer's metrics are built in")),
    ("disable_system_metrics", Honoured),
    ("metric_time_interval", Honoured),
    (
        "system_metrics_cmd",
        Ignored("scancer samples the system itself (CPU, memory, the disk of /)"),
    ),
    ("enable_metrics_api", Ignored("/metrics is always served")),
    ("number_of_netty_threads", Ignored(NO_JVM)),
    ("netty_client_threads", Ignored(NO_JVM)),
    ("vmargs", Ignored(NO_JVM)),
    ("async_logging", Ignored(NO_JVM)),
    ("max_workers", Ignored("workers are set per model")),
    ("number_of_gpu", Ignored("scancer uses --device")),
    (
        "install_py_dep_per_model",
        Ignored("scancer runs no Python"),
    ),
    ("use_native_io", Ignored(NO_JVM)),
    ("io_ratio", Ignored(NO_JVM)),
    (
        "default_service_handler",
        Ignored("scancer runs no Python handlers"),
    ),
    ("model_server_home", Ignored("scancer runs no Python")),
    ("python", Ignored("scancer runs no Python")),
    (
        "blacklist_env_vars",
        Ignored("scancer runs no Python workers"),
    ),
    (
        "preload_model",
        Ignored("scancer's workers load their own model"),
    ),
    ("decode_input_request", Ignored("inputs are always decoded")),
    ("cpu_launcher_enable", Ignored(NO_JVM)),
    ("cpu_launcher_args", Ignored(NO_JVM)),
    (
        "initial_worker_port",
        Ignored("workers are threads, not processes"),
    ),
    (
        "initial_distribution_port",
        Ignored("workers are threads, not processes"),
    ),
    ("workflow_store", Ignored("scancer has no workflows")),
    ("cors_allowed_origin", Honoured),
    ("cors_allowed_methods", Honoured),
    ("cors_allowed_headers", Honoured),
    ("keystore", Honoured),
    ("keystore_pass", Honoured),
    ("keystore_type", Honoured),
    ("certificate_file", Honoured),
    ("private_key_file", Honoured),
    ("workflow_model_store", Ignored("scancer has no workflows")),
    (
        "ts_header_key_sequence_id",
        Ignored("scancer serves no stateful models"),
    ),
    (
        "ts_header_key_sequence_start",
        Ignored("scancer serves no stateful models"),
    ),
    (
        "ts_header_key_sequence_end",
        Ignored("scancer serves no stateful models"),
    ),
    (
        "disable_ts_logging",
        Ignored("scancer logs to standard error"),
    ),
    (
        "limit_max_image_pixels",
        Ignored("scancer always bounds an image's pixels (--max-image-pixels)"),
    ),
    (
        "default_startup_timeout",
        Ignored("a model's workers get 120 s to start, TorchServe's default"),
    ),
    (
        "ipex_enable",
        Ignored("scancer runs libtorch without the Intel Extension for PyTorch"),
    ),
    (
        "ipex_gpu_enable",
        Ignored("scancer runs libtorch without the Intel Extension for PyTorch"),
    ),
    (
        "ts_open_inference_protocol",
        Ignored("KServe's V1 and V2 protocols are always served, over HTTP and gRPC"),
    ),
    (
        "model_metrics_auto_detect",
        Ignored("scancer's model metrics are built in"),
    ),
    ("cpp_log_config", Ignored("scancer has no C++ backend")),
    (
        "unregister_model_timeout",
        Ignored("an unregistered version answers what it has queued, then its workers stop"),
    ),
    ("prefer_direct_buffer", Ignored(NO_JVM)),
    (
        "tsConfigFile",
        Ignored("written in snapshots by TorchServe; the file read is the one scancer uses"),
    ),
    (
        "version",
        Ignored("the version of the TorchServe that wrote the file"),
    ),
];

/// A TorchServe configuration, values resolved.
pub(crate) struct TsConfig {
    /// The file it came from, if any.
    pub(crate) path: Option<PathBuf>,
    /// It is a config snapshot (its model_snapshot restores the registered models).
    pub(crate) from_snapshot: bool,
    values: Vec<(String, String)>,
    /// Keys whose value came from a TS_* variable (which wins over the command line too).
    from_env: Vec<String>,
}

impl TsConfig {
    /// Finds and reads the configuration as TorchServe does. `snapshots` is the snapshot folder.
    pub(crate) fn find(explicit: Option<&Path>, ncs: bool, snapshots: &Path) -> Result<TsConfig> {
        let from_env = std::env::var_os("TS_CONFIG_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let (path, from_snapshot) = match from_env.or_else(|| explicit.map(Path::to_path_buf)) {
            Some(path) => (Some(path), false),
            None => match newest_snapshot(snapshots, ncs)? {
                Some(snapshot) => (Some(snapshot), true),
                None => {
                    let local = PathBuf::from("config.properties");
                    (local.is_file().then_some(local), false)
                }
            },
        };
        let text = match &path {
            Some(path) => read(path)?,
            None => String::new(),
        };
        let mut values = properties::parse(&text);
        for (_, value) in values.iter_mut() {
            *value = substitute(value);
        }
        let mut config = TsConfig {
            path,
            from_snapshot,
            values,
            from_env: Vec::new(),
        };
        config.read_environment();
        Ok(config)
    }

    /// With enable_envvars_config (in the file, or TS_ENABLE_ENVVARS_CONFIG), each key's TS_<KEY>
    /// variable overrides the file; `models` has no variable, and TS_ALLOWED_URLS counts only with
    /// use_env_allowed_urls.
    fn read_environment(&mut self) {
        if let Ok(v) = std::env::var("TS_ENABLE_ENVVARS_CONFIG") {
            self.set("enable_envvars_config", v);
        }
        if !self.flag("enable_envvars_config") {
            return;
        }
        for (key, _) in KEYS {
            if *key == "models" || *key == "model_snapshot" {
                continue;
            }
            if *key == "allowed_urls" && !self.flag("use_env_allowed_urls") {
                continue;
            }
            let variable = match *key {
                "token_expiration_min" => "TS_TOKEN_EXPIRATION_TIME_MIN".to_string(),
                key => format!("TS_{}", key.trim_start_matches("ts_").to_uppercase()),
            };
            if let Ok(v) = std::env::var(variable) {
                self.set(key, v);
                self.from_env.push(key.to_string());
            }
        }
    }

    fn set(&mut self, key: &str, value: String) {
        match self.values.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value,
            None => self.values.push((key.to_string(), value)),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A setting as TorchServe layers it: a TS_* variable, else the command line's `flag`, else the
    /// file.
    pub(crate) fn layered(&self, key: &str, flag: Option<String>) -> Option<String> {
        if self.from_env.iter().any(|k| k == key) {
            return self.get(key).map(str::to_string);
        }
        flag.or_else(|| self.get(key).map(str::to_string))
    }

    /// `layered` for a number.
    pub(crate) fn layered_number<T: std::str::FromStr + ToString>(
        &self,
        key: &str,
        flag: Option<T>,
    ) -> Result<Option<T>> {
        match self.layered(key, flag.map(|f| f.to_string())) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{}: {key}={v} is not a number", self.shown())),
        }
    }

    /// A boolean key, as Java's Boolean.parseBoolean reads it.
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub(crate) fn shown(&self) -> String {
        self.path.as_ref().map_or_else(
            || "the TorchServe configuration".into(),
            |p| p.display().to_string(),
        )
    }

    /// Every key as the server runs with it, for the snapshots (model_snapshot apart).
    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .filter(|(k, _)| k != "model_snapshot")
            .cloned()
            .collect()
    }

    /// Stops at a key whose effect scancer cannot give, and notes once the keys it reads without
    /// effect and the keys it does not know.
    pub(crate) fn check(&self) -> Result<()> {
        let (ignored, unknown) = self.classify();
        if !ignored.is_empty() {
            crate::messages::note!(
                "{}: no effect in scancer: {}",
                self.shown(),
                ignored.join("; ")
            );
        }
        if !unknown.is_empty() {
            crate::messages::warning!(
                "{}: unknown key(s), ignored: {}",
                self.shown(),
                unknown.join(", ")
            );
        }
        Ok(())
    }

    /// The keys with no effect here (with why), and the keys TorchServe does not have.
    fn classify(&self) -> (Vec<String>, Vec<&str>) {
        let mut ignored = Vec::new();
        let mut unknown = Vec::new();
        for (key, _) in &self.values {
            match KEYS.iter().find(|(k, _)| k == key).map(|(_, h)| *h) {
                Some(Honoured) => {}
                Some(Ignored(why)) => ignored.push(format!("{key} ({why})")),
                None => unknown.push(key.as_str()),
            }
        }
        (ignored, unknown)
    }
}

fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Java reads properties as ISO-8859-1; UTF-8 files (paths with accents) are read as UTF-8.
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    })
}

/// `$$VAR$$` replaced with the variable's value (left as it is when the variable is unset).
fn substitute(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("$$") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("$$") else { break };
        let name = &after[..end];
        out.push_str(&rest[..start]);
        match std::env::var(name) {
            Ok(v) if !name.is_empty() => out.push_str(&v),
            _ => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The newest snapshot in the folder (names sort by their time stamp), unless --ncs.
fn newest_snapshot(dir: &Path, ncs: bool) -> Result<Option<PathBuf>> {
    if ncs || !dir.is_dir() {
        return Ok(None);
    }
    let mut newest: Option<(String, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if crate::serve::snapshot::is_snapshot_name(&name)
            && newest.as_ref().is_none_or(|(n, _)| name > *n)
        {
            newest = Some((name, entry.path()));
        }
    }
    Ok(newest.map(|(_, p)| p))
}

/// An address key: `http://HOST:PORT` (TorchServe's form) as a socket address.
/// `http://HOST:PORT` or `https://HOST:PORT` (TLS): the address, and whether it is on TLS.
pub(crate) fn address(key: &str, value: &str, shown: &str) -> Result<(std::net::SocketAddr, bool)> {
    let lower = value.to_ascii_lowercase();
    let (rest, tls) = if lower.starts_with("https://") {
        (&value[8..], true)
    } else if lower.starts_with("http://") {
        (&value[7..], false)
    } else {
        bail!("{shown}: {key}={value}: expected http://HOST:PORT or https://HOST:PORT");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty() && !h.ends_with(']') || rest.starts_with('['))
        .with_context(|| format!("{shown}: {key}={value}: expected http://HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("{shown}: {key}={value}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        other => other
            .parse()
            .with_context(|| format!("{shown}: {key}={value}: {host:?} is not an IP address"))?,
    };
    Ok((std::net::SocketAddr::new(ip, port), tls))
}

/// The certificate TLS listeners serve: `keystore` (PKCS#12) first, else `certificate_file` and
/// `private_key_file` (PEM), as TorchServe chooses; None when none is configured.
pub(crate) fn certificate(config: &TsConfig) -> Result<Option<crate::serve::CertificateSource>> {
    use crate::serve::CertificateSource;
    let shown = config.shown();
    if let Some(keystore) = config.get("keystore") {
        let kind = config.get("keystore_type").unwrap_or("PKCS12");
        if !kind.eq_ignore_ascii_case("PKCS12") {
            bail!(
                "{shown}: keystore_type={kind}: only PKCS12 keystores are read; convert it with `keytool -importkeystore -srckeystore {keystore} -destkeystore {keystore}.p12 -deststoretype PKCS12`"
            );
        }
        return Ok(Some(CertificateSource::Pkcs12 {
            path: PathBuf::from(keystore),
            password: config
                .get("keystore_pass")
                .unwrap_or("changeit")
                .to_string(),
        }));
    }
    match (
        config.get("certificate_file"),
        config.get("private_key_file"),
    ) {
        (Some(certificate), Some(key)) => Ok(Some(CertificateSource::Pem {
            certificate: PathBuf::from(certificate),
            key: PathBuf::from(key),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("{shown}: certificate_file needs private_key_file"),
        (None, Some(_)) => bail!("{shown}: private_key_file needs certificate_file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchserve_0_12_keys_are_known() {
        let keys = [
            "limit_max_image_pixels",
            "default_startup_timeout",
            "ipex_enable",
            "ipex_gpu_enable",
            "metric_time_interval",
            "ts_open_inference_protocol",
            "model_metrics_auto_detect",
            "cpp_log_config",
            "unregister_model_timeout",
            "prefer_direct_buffer",
            "tsConfigFile",
            "version",
            "cors_allowed_origin",
            "disable_system_metrics",
        ];
        let config = TsConfig {
            path: None,
            from_snapshot: false,
            values: keys
                .iter()
                .map(|k| (k.to_string(), "1".to_string()))
                .chain([("no_such_key".to_string(), "1".to_string())])
                .collect(),
            from_env: Vec::new(),
        };
        let (ignored, unknown) = config.classify();
        assert_eq!(unknown, ["no_such_key"]);
        // Each one without effect says why.
        assert_eq!(ignored.len(), 11, "{ignored:?}");
        assert!(ignored.iter().all(|i| i.contains(" (")), "{ignored:?}");
    }

    #[test]
    fn addresses_as_torchserve_writes_them() {
        let at = |v: &str| {
            address("inference_address", v, "config.properties")
                .map(|(at, tls)| format!("{at}{}", if tls { " tls" } else { "" }))
        };
        assert_eq!(at("http://0.0.0.0:8085").unwrap(), "0.0.0.0:8085");
        assert_eq!(at("http://127.0.0.1:8080/").unwrap(), "127.0.0.1:8080");
        assert_eq!(at("http://localhost:9").unwrap(), "127.0.0.1:9");
        assert_eq!(at("http://[::1]:8081").unwrap(), "[::1]:8081");
        assert_eq!(at("https://0.0.0.0:8443").unwrap(), "0.0.0.0:8443 tls");
        assert_eq!(at("HTTPS://[::1]:8443").unwrap(), "[::1]:8443 tls");
        assert!(at("0.0.0.0:8080").is_err());
        assert!(at("http://0.0.0.0").is_err());
    }

    #[test]
    fn variables_replace_their_markers() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(substitute("a$$PATH$$b"), format!("a{path}b"));
        assert_eq!(
            substitute("$$SCANCER_TEST_NEVER_SET$$"),
            "$$SCANCER_TEST_NEVER_SET$$"
        );
        assert_eq!(substitute("no markers $$"), "no markers $$");
    }
}
