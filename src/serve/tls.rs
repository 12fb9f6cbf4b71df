//! TLS as TorchServe configures it: an `https://` address puts that listener on TLS, and
//! `enable_grpc_ssl=true` the gRPC port, with the certificate of `keystore` (PKCS#12, its first key
//! entry, `keystore_pass`) or of `certificate_file` + `private_key_file` (PEM). rustls, with ring:
//! TLS 1.2 and 1.3 (TorchServe: 1.2 only). A certificate replaced on disk is served from the next
//! handshake on, without a restart; one that cannot be read then is said once and the previous
//! one kept.

use anyhow::{bail, Context, Result};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the certificate and its key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertificateSource {
    /// PEM files: the certificate chain, and its key (PKCS#8, PKCS#1 or SEC1).
    Pem { certificate: PathBuf, key: PathBuf },
    /// A PKCS#12 keystore: its first private key entry.
    Pkcs12 { path: PathBuf, password: String },
}

impl CertificateSource {
    fn files(&self) -> Vec<&PathBuf> {
        match self {
            CertificateSource::Pem { certificate, key } => vec![certificate, key],
            CertificateSource::Pkcs12 { path, .. } => vec![path],
        }
    }

    /// The certificate and key, checked to belong together.
    fn load(&self) -> Result<CertifiedKey> {
        let (chain, key) = match self {
            CertificateSource::Pem { certificate, key } => {
                let chain = CertificateDer::pem_file_iter(certificate)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        anyhow::anyhow!("certificate_file {}: {e}", certificate.display())
                    })?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| anyhow::anyhow!("private_key_file {}: {e}", key.display()))?;
                (chain, key)
            }
            CertificateSource::Pkcs12 { path, password } => {
                let data = std::fs::read(path)
                    .with_context(|| format!("keystore {}: cannot read it", path.display()))?;
                let store = p12_keystore::KeyStore::from_pkcs12(&data, password).map_err(|e| {
                    anyhow::anyhow!(
                        "keystore {}: not a PKCS#12 keystore this keystore_pass opens ({e})",
                        path.display()
                    )
                })?;
                let (_, entry) = store.private_key_chain().with_context(|| {
                    format!("keystore {}: no private key entry", path.display())
                })?;
                let chain = entry
                    .chain()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect();
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.key().to_vec()));
                (chain, key)
            }
        };
        if chain.is_empty() {
            bail!("{}: no certificate", self.files()[0].display());
        }
        let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
            anyhow::anyhow!(
                "{}: the key cannot sign: {e}",
                self.files()
                    .last()
                    .map_or(String::new(), |p| p.display().to_string())
            )
        })?;
        let certified = CertifiedKey::new(chain, signer);
        certified.keys_match().map_err(|e| {
            anyhow::anyhow!(
                "{}: the key does not belong to the certificate ({e})",
                self.files()[0].display()
            )
        })?;
        Ok(certified)
    }

    fn stamps(&self) -> Vec<Option<SystemTime>> {
        self.files()
            .iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// A TLS acceptor for one kind of listener: HTTP (ALPN h2 and http/1.1) or gRPC (h2).
pub(crate) fn acceptor(
    source: &CertificateSource,
    alpn: &[&[u8]],
) -> Result<tokio_rustls::TlsAcceptor> {
    let resolver = Arc::new(Reloading::new(source.clone())?);
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS: no protocol version")?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The handshake, within `timeout` (a client that never finishes it holds nothing for long).
pub(crate) async fn handshake<S>(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: S,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        _ => None,
    }
}

/// The certificate, read again when its files change (looked at once a second at most).
#[derive(Debug)]
struct Reloading {
    source: CertificateSource,
    current: RwLock<(Vec<Option<SystemTime>>, Arc<CertifiedKey>)>,
    /// When the files were last looked at, in seconds since the epoch.
    looked: AtomicU64,
}

impl Reloading {
    fn new(source: CertificateSource) -> Result<Reloading> {
        let stamps = source.stamps();
        let key = Arc::new(source.load()?);
        Ok(Reloading {
            source,
            current: RwLock::new((stamps, key)),
            looked: AtomicU64::new(now()),
        })
    }

    fn refresh(&self) {
        let now = now();
        if self.looked.swap(now, Ordering::Relaxed) == now {
            return;
        }
        let stamps = self.source.stamps();
        let changed = self
            .current
            .read()
            .map(|current| current.0 != stamps)
            .unwrap_or(false);
        if !changed {
            return;
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        match self.source.load() {
            Ok(key) => {
                *current = (stamps, Arc::new(key));
                crate::messages::note!(
                    "TLS: certificate reloaded from {}",
                    self.source.files()[0].display()
                );
            }
            Err(e) => {
                // Said once per change; the previous certificate goes on.
                current.0 = stamps;
                crate::messages::warning!("TLS: {e:#}; the previous certificate is still served");
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        self.current
            .read()
            .ok()
            .map(|current| Arc::clone(&current.1))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_mismatched_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let source = CertificateSource::Pem {
            certificate: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let e = source.load().unwrap_err().to_string();
        assert!(
            e.starts_with("certificate_file ") && e.contains("cert.pem"),
            "{e}"
        );
        std::fs::write(dir.path().join("store.p12"), b"not pkcs12").unwrap();
        let source = CertificateSource::Pkcs12 {
            path: dir.path().join("store.p12"),
            password: "changeit".into(),
        };
        let e = source.load().unwrap_err().to_string();
        assert!(e.contains("not a PKCS#12 keystore"), "{e}");
    }
}
