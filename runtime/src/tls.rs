//! TLS terminated by the runtime itself (rustls 0.23 on *ring*): the certificate chain and key are
//! PEM files named in the config (`PITBOX_TLS_CERT`, `PITBOX_TLS_KEY`), and a renewed pair is
//! picked up without a restart — on SIGHUP, and by looking at the files every
//! `PITBOX_TLS_WATCH_SECS` seconds (0: SIGHUP only) — by the [`CertResolver`], which hands every
//! new handshake the current certificate from behind an `Arc` it swaps. Connections already open
//! keep the certificate they started with; the listening socket is never closed. A pair that does
//! not load (half-written, key not matching the certificate) is logged and the old one stays.
//! Settings are read through [`crate::config`]; this module reads no env var itself.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where the certificate and key are, and how often to look for a new pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate first, then its intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `None`: reload on SIGHUP only.
    pub watch: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("TLS certificate file {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("TLS key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Setup(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The bytes of both files, to tell whether they changed.
type Source = (Vec<u8>, Vec<u8>);

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// Parses a certificate chain and key and checks that they belong together.
fn parse(files: &TlsFiles, (cert, key): &Source) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert { path: files.cert.clone(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: files.cert.clone(),
            reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| TlsError::Key { path: files.key.clone(), reason: e.to_string() })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: format!("{e} (is it the key of {}?)", files.cert.display()),
    })
}

struct Loaded {
    key: Arc<CertifiedKey>,
    source: Source,
}

/// Gives each handshake the current certificate; [`CertResolver::reload`] swaps it.
pub struct CertResolver {
    files: TlsFiles,
    current: RwLock<Loaded>,
    /// The last reload error, so that the file watch logs a lasting problem once, not every look.
    last_error: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver").field("files", &self.files).finish_non_exhaustive()
    }
}

impl CertResolver {
    /// Loads the pair; an error here stops the start-up (there is nothing to serve with).
    pub fn new(files: TlsFiles) -> Result<Arc<CertResolver>, TlsError> {
        let source = (read(&files.cert)?, read(&files.key)?);
        let key = Arc::new(parse(&files, &source)?);
        Ok(Arc::new(CertResolver {
            files,
            current: RwLock::new(Loaded { key, source }),
            last_error: std::sync::Mutex::new(None),
        }))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again; when they changed and load, new handshakes get the new pair.
    /// `Ok(true)`: swapped; `Ok(false)`: unchanged; an error leaves the current pair in place.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let source = (read(&self.files.cert)?, read(&self.files.key)?);
        if self.current.read().map(|c| c.source == source).unwrap_or(false) {
            return Ok(false);
        }
        let key = Arc::new(parse(&self.files, &source)?);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Loaded { key, source };
        Ok(true)
    }

    /// The certificate handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()).key)
    }

    /// [`Self::reload`], with the outcome logged.
    fn reload_logged(&self, why: &str) {
        let outcome = self.reload();
        let error = outcome.as_ref().err().map(ToString::to_string);
        let repeated = {
            let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
            let repeated = error.is_some() && *last == error;
            *last = error;
            repeated
        };
        match outcome {
            Ok(true) => {
                tracing::info!(cert = %self.files.cert.display(), trigger = why, "TLS certificate reloaded")
            }
            Ok(false) => {
                if why == "SIGHUP" {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate unchanged");
                }
            }
            // A signal is a request: always answer it. The watch says a lasting problem once.
            Err(e) if !repeated || why == "SIGHUP" => {
                tracing::error!(error = %e, trigger = why, "TLS certificate not reloaded; keeping the current one")
            }
            Err(_) => {}
        }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls server configuration around `resolver`: TLS 1.2 and 1.3, no client certificates.
/// (actix-web adds the `http/1.1` ALPN protocol.)
pub fn server_config(resolver: Arc<CertResolver>) -> Result<rustls::ServerConfig, TlsError> {
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver))
}

/// Reloads on SIGHUP (Unix) and, when set, whenever the files change. Runs on the current actix
/// system for as long as the server holds the resolver (the tasks keep only a weak reference).
pub fn watch(resolver: &Arc<CertResolver>) {
    #[cfg(unix)]
    {
        let weak = Arc::downgrade(resolver);
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hup) => {
                actix_web::rt::spawn(async move {
                    while hup.recv().await.is_some() {
                        let Some(resolver) = weak.upgrade() else { return };
                        resolver.reload_logged("SIGHUP");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS reloads by file watch only"),
        }
    }
    if let Some(every) = resolver.files.watch {
        let weak = Arc::downgrade(resolver);
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(resolver) = weak.upgrade() else { return };
                // Two small files, but off the async thread all the same: a network mount may be slow.
                let _ =
                    actix_web::rt::task::spawn_blocking(move || resolver.reload_logged("file change")).await;
            }
        });
    }
}
