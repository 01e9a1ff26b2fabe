//! TLS for the node's connections to the runtime (`https://` for login and REST, `wss://` for the
//! uplink socket): rustls 0.23 with the *ring* provider (it cross-builds for Windows without cmake
//! or nasm), the operating system's trusted roots (the Windows certificate store, or the system
//! bundle on Linux and macOS; Mozilla's roots compiled in when the system offers none), plus an
//! optional extra CA file for a team that runs its own certificate authority.
//!
//! Also the certificate check of `pitbox-driver doctor` ([`check`]) and plain words for a refused
//! certificate ([`explain`], [`describe`]): expired, issued for another name, or signed by an
//! authority this PC does not trust.
//!
//! Reads no env vars itself: the CA file comes from `--ca-file` / `PITBOX_CA_FILE` (read by clap in
//! [`crate::cli`]) or from the login ([`crate::credentials::Credentials::ca_file`]).

use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A certificate that expires within this many days gets a warning from `doctor`.
pub const RENEW_WARNING_DAYS: i64 = 14;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Setup(#[from] rustls::Error),
}

/// The node's TLS settings, built once per command: the trusted roots and the client
/// configuration made from them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeTls {
    roots: Arc<RootCertStore>,
    config: Arc<ClientConfig>,
    /// The extra CA file, if one is trusted.
    pub ca_file: Option<PathBuf>,
    /// Where the roots came from, for `doctor`: `system` or `bundled` (Mozilla's).
    pub roots_source: &'static str,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes *ring* the process-wide rustls provider. Our own configurations name their provider, so
/// this is for code that builds one from the process default (awc's default connector with a
/// roots feature panics without one). Idempotent: a provider already installed stays.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl NodeTls {
    /// The system's roots plus the certificates in `ca_file` (PEM, one or more).
    pub fn new(ca_file: Option<&Path>) -> Result<NodeTls, TlsError> {
        install_provider();
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "reading the system's certificate store");
        }
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        let roots_source = if added == 0 {
            // A minimal system (a container, a fresh Linux without ca-certificates): the public
            // web's roots are still what a cloud runtime's certificate chains to.
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            "bundled"
        } else {
            "system"
        };
        if let Some(path) = ca_file {
            let err = |reason: String| TlsError::CaFile { path: path.display().to_string(), reason };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?;
            if certs.is_empty() {
                return Err(err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| err(format!("not a usable CA certificate: {e}")))?;
            }
        }
        let roots = Arc::new(roots);
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(Arc::clone(&roots))
            .with_no_client_auth();
        // HTTP/1.1 only: the uplink is a WebSocket, which needs HTTP/1.1's upgrade.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(NodeTls { roots, config: Arc::new(config), ca_file: ca_file.map(Path::to_path_buf), roots_source })
    }

    /// The rustls client configuration (for awc's connector).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    fn verifier(&self) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
        WebPkiServerVerifier::builder_with_provider(Arc::clone(&self.roots), provider())
            .build()
            .map_err(|e| TlsError::Setup(rustls::Error::General(e.to_string())))
    }
}

/// Plain words for a failed TLS handshake with `host`, naming what the driver (or the server's
/// operator) can do about it.
pub fn describe(e: &rustls::Error, host: &str) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::ExpiredContext { time, not_after } => format!(
                "the server's certificate for {host} expired on {} ({} ago): the server's operator must renew it",
                date(*not_after),
                span(time.as_secs().saturating_sub(not_after.as_secs()))
            ),
            CertificateError::Expired => {
                format!("the server's certificate for {host} has expired: the server's operator must renew it")
            }
            CertificateError::NotValidYetContext { not_before, .. } => format!(
                "the server's certificate for {host} is not valid before {}: check this PC's clock",
                date(*not_before)
            ),
            CertificateError::NotValidYet => {
                format!("the server's certificate for {host} is not valid yet: check this PC's clock")
            }
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the server's certificate is for {}, not {host}: check the server address (or the server's certificate)",
                if presented.is_empty() {
                    "no name at all".to_owned()
                } else {
                    presented.iter().map(|n| plain_name(n)).collect::<Vec<_>>().join(", ")
                }
            ),
            CertificateError::NotValidForName => format!(
                "the server's certificate is not valid for {host}: check the server address (or the server's certificate)"
            ),
            CertificateError::UnknownIssuer => format!(
                "the server's certificate for {host} is not signed by an authority this PC trusts: if your \
                 team runs its own CA, pass its certificate with --ca-file (or PITBOX_CA_FILE)"
            ),
            other => format!("the server's certificate for {host} was refused: {other}"),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "TLS handshake with {host} failed ({e}): is the server serving HTTPS on that port?"
        ),
        other => format!("TLS handshake with {host} failed: {other}"),
    }
}

/// The rustls error inside an awc request error, in plain words; `None` when the failure was not
/// TLS. (awc's errors do not chain their causes, so the variants are matched.)
pub fn explain_request(err: &awc::error::SendRequestError, host: &str) -> Option<String> {
    use awc::error::{ConnectError, SendRequestError};
    match err {
        SendRequestError::Connect(ConnectError::Io(io)) | SendRequestError::Send(io) => explain_io(io, host),
        _ => None,
    }
}

/// [`explain_request`] for a WebSocket connect.
pub fn explain_ws(err: &awc::error::WsClientError, host: &str) -> Option<String> {
    match err {
        awc::error::WsClientError::SendRequest(e) => explain_request(e, host),
        _ => None,
    }
}

fn explain_io(io: &std::io::Error, host: &str) -> Option<String> {
    io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).map(|r| describe(r, host))
}

/// webpki shows a certificate's names in their Debug form (`DnsName("a.example")`,
/// `IpAddress(10.0.0.1)`): the name alone.
fn plain_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| name.strip_prefix("IpAddress(").and_then(|n| n.strip_suffix(')')))
        .unwrap_or(name)
}

fn date(t: UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{} (Unix time)", t.as_secs()))
}

fn span(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// What [`check`] found about a certificate that passed.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// The name it was checked against.
    pub host: String,
    pub not_after: Option<chrono::DateTime<chrono::Utc>>,
}

impl CertInfo {
    pub fn days_left(&self) -> Option<i64> {
        self.not_after.map(|t| (t - chrono::Utc::now()).num_days())
    }
}

/// The host and port of an `https://host[:port]` server address.
pub fn host_port(server: &str) -> Option<(String, u16)> {
    let uri: awc::http::Uri = server.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
    Some((host, port))
}

/// Connects to `server` (`https://…`), makes a full TLS handshake with the node's own trust
/// settings, and reports the certificate: valid (with its expiry) or refused, in plain words
/// (expired, wrong name, unknown authority, not TLS at all). Blocking: call it off the async
/// thread.
pub fn check(server: &str, tls: &NodeTls, timeout: Duration) -> Result<CertInfo, String> {
    let (host, port) = host_port(server).ok_or_else(|| format!("{server:?} is not a server address"))?;
    let name = ServerName::try_from(host.clone()).map_err(|e| format!("{host:?}: {e}"))?;
    let inner = tls.verifier().map_err(|e| e.to_string())?;
    let capture = Arc::new(Capture { inner: inner.clone(), chain: Mutex::new(None) });
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every address of the name in turn (`localhost` may be ::1 first, with the server on 127.0.0.1).
    let addrs: Vec<_> =
        (host.as_str(), port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    let mut last = format!("cannot resolve {host}");
    let mut sock = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                sock = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {host}:{port}: {e}"),
        }
    }
    let mut sock = sock.ok_or(last)?;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name.clone()).map_err(|e| describe(&e, &host))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            return Err(match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(r) => describe(r, &host),
                None => format!("TLS handshake with {host}:{port} failed: {e}"),
            });
        }
    }
    // Say goodbye politely; the answer does not matter.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    let _ = sock.flush();
    let not_after = capture
        .chain
        .lock()
        .ok()
        .and_then(|mut c| c.take())
        .and_then(|(ee, intermediates)| expiry(&inner, &ee, &intermediates, &name));
    Ok(CertInfo { host, not_after })
}

/// The certificate's `notAfter`, found without an X.509 parser: verified at a time far in the
/// future, the end-entity certificate is the first one checked and the verifier reports its expiry.
fn expiry(
    verifier: &WebPkiServerVerifier,
    ee: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    name: &ServerName<'static>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let far = UnixTime::since_unix_epoch(Duration::from_secs(UnixTime::now().as_secs() + 200 * 365 * 86_400));
    match verifier.verify_server_cert(ee, intermediates, name, &[], far) {
        Err(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { not_after, .. })) => {
            i64::try_from(not_after.as_secs()).ok().and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        }
        _ => None,
    }
}

/// The real verifier, keeping the chain it was shown.
#[derive(Debug)]
struct Capture {
    inner: Arc<WebPkiServerVerifier>,
    chain: Mutex<Option<(CertificateDer<'static>, Vec<CertificateDer<'static>>)>>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            *chain = Some((
                end_entity.clone().into_owned(),
                intermediates.iter().map(|c| c.clone().into_owned()).collect(),
            ));
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_server_addresses() {
        assert_eq!(host_port("https://pitbox.example.com"), Some(("pitbox.example.com".into(), 443)));
        assert_eq!(host_port("https://localhost:8443/"), Some(("localhost".into(), 8443)));
        assert_eq!(host_port("https://[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(host_port("http://h"), Some(("h".into(), 80)));
    }

    #[test]
    fn names_in_plain_words() {
        assert_eq!(plain_name("DnsName(\"pitbox.example.net\")"), "pitbox.example.net");
        assert_eq!(plain_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = NodeTls::new(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = NodeTls::new(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn system_roots_load() {
        let tls = NodeTls::new(None).unwrap();
        assert!(!tls.roots.is_empty());
    }
}
