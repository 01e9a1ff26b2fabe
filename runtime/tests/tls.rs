//! TLS end to end, with certificates made in the test (rcgen): a team CA and server certificates
//! for `localhost` signed by it.
//!
//! - A real `pitbox-runtime serve` process terminating TLS and a real `pitbox-driver` process:
//!   `login --ca-file` over https, a synthetic run over wss stored exactly once, `doctor`'s certificate
//!   row, and a renewed certificate picked up on SIGHUP by new connections.
//! - In process: a certificate for another name, an expired one and one from an unknown
//!   authority refused by the node with a clear error (login and `doctor`); a certificate
//!   rewritten on disk picked up by the file watch while an open WebSocket carries on; a broken
//!   pair on disk keeps the old one.
//! - `X-Forwarded-For` decides the rate-limit key only from a trusted proxy.
//!
//! Needs the `pitbox-driver` binary (see `support/processes.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/processes.rs"]
mod processes;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, TestServer, WsClient};
use pitbox_driver::tls::NodeTls;
use pitbox_runtime::tls::{CertResolver, TlsFiles};
use processes::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;
use serde_json::json;

/// A certificate authority of the test's own.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A server certificate for `names`, valid from `from` to `to` days from now: (cert PEM, key PEM, DER).
    fn leaf(&self, names: &[&str], from: i64, to: i64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(from);
        params.not_after = now + time::Duration::days(to);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// A server certificate made by [`Ca::leaf`]: (cert PEM, key PEM, cert DER).
type Leaf = (String, String, Vec<u8>);

/// Writes a pair where the runtime reads it (through a temporary file and a rename, as a
/// certificate manager does, so the watch never sees half a file).
fn write_pair(dir: &Path, (cert, key, _): &Leaf) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    for (path, text) in [(&k, key), (&c, cert)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (c, k)
}

fn node_tls(dir: &Path, ca: &Ca) -> NodeTls {
    let path = dir.join("ca.pem");
    std::fs::write(&path, &ca.pem).unwrap();
    NodeTls::new(Some(&path)).unwrap()
}

/// The certificate a fresh TLS connection to `port` is shown (trusting `ca`).
fn presented(port: u16, ca_pem: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        let c: CertificateDer<'static> = c.unwrap();
        roots.add(c).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    conn.peer_certificates().unwrap()[0].to_vec()
}

/// Polls fresh connections until they are shown `want` (a reload is asynchronous by nature).
fn wait_presented(port: u16, ca_pem: &str, want: &[u8], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while presented(port, ca_pem) != want {
        assert!(Instant::now() < deadline, "{what}: the new certificate was never presented");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn doctor_tls_row(w: &World, extra: &[&str]) -> serde_json::Value {
    let out = w.node_cmd().args(["doctor", "--json"]).args(extra).stderr(Stdio::null()).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array().unwrap().iter().find(|r| r["componentName"] == "tls").cloned().unwrap()
}

/// The node logs in over https with the team's CA, streams a recording over wss into the
/// runtime process, and every frame is stored once; the runtime reloads its certificate on SIGHUP.
#[test]
fn a_node_streams_to_the_runtime_over_wss_sqlite() {
    node_over_wss(Backend::Sqlite);
}

#[test]
fn a_node_streams_to_the_runtime_over_wss_postgres() {
    node_over_wss(Backend::Postgres);
}

fn node_over_wss(backend: Backend) {
    let Some(w) = World::new(backend) else { return eprintln!("skipped: no PostgreSQL") };
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("PitBox test team CA");
    let first = ca.leaf(&["localhost"], -1, 30);
    let (cert, key) = write_pair(dir.path(), &first);
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();

    let log = std::fs::File::create(dir.path().join("runtime.log")).unwrap();
    let mut runtime = w
        .runtime_cmd(Some(SECRET_A))
        .env("PITBOX_TLS_CERT", &cert)
        .env("PITBOX_TLS_KEY", &key)
        // SIGHUP only: the reload below must come from the signal, not the file watch.
        .env("PITBOX_TLS_WATCH_SECS", "0")
        .env("RUST_LOG", "info")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", w.port)).is_err() {
        assert!(Instant::now() < deadline, "runtime did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = format!("https://localhost:{}", w.port);

    // Without the team's CA the login is refused, and the error says what to do.
    let out = w.node_cmd().args(["login", "--server", &server, "--username", "steady"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not signed by an authority") && err.contains("--ca-file"),
        "{err}"
    );

    let out = w
        .node_cmd()
        .args(["login", "--server", &server, "--username", "steady", "--ca-file"])
        .arg(&ca_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stderr));

    // The CA file was remembered at login: the run and doctor need no flag. The synthetic driver,
    // as fast as it goes, for a fixed number of samples; the node exits once all are stored.
    let n = 1200;
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let node = w
        .node_cmd()
        .args(["run", "--source", "synthetic", "--speed", "max", "--api", "off", "--no-voice", "--samples"])
        .arg(n.to_string())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let node_log = || std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
    wait_ok_within(node, Duration::from_secs(180), "node run over wss", node_log);
    w.assert_exactly_once(n);

    let row = doctor_tls_row(&w, &[]);
    eprintln!("doctor: {row}");
    assert_eq!(row["status"], "success", "{row}");
    assert!(row["message"].as_str().unwrap().contains("valid until"), "{row}");
    assert!((28..=30).contains(&row["details"]["daysLeft"].as_i64().unwrap()), "{row}");

    // A renewed certificate (5 days left: doctor warns) and SIGHUP: new connections get it.
    let renewed = ca.leaf(&["localhost"], -1, 5);
    write_pair(dir.path(), &renewed);
    let hup = std::process::Command::new("kill").args(["-HUP", &runtime.id().to_string()]).status().unwrap();
    assert!(hup.success());
    wait_presented(w.port, &ca.pem, &renewed.2, "SIGHUP");
    let row = doctor_tls_row(&w, &[]);
    assert_eq!(row["status"], "warning", "{row}");
    assert!(row["message"].as_str().unwrap().contains("renew"), "{row}");
    assert!(runtime.try_wait().unwrap().is_none(), "the runtime still runs after SIGHUP");
    kill(&mut runtime);
}

/// The node refuses a certificate for another name, an expired one and one from an authority
/// it does not know, at login and in `doctor`, in words a driver can act on.
#[actix_rt::test]
async fn bad_certificates_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("PitBox test team CA");
    let tls = node_tls(dir.path(), &ca);
    let cases: [(&str, Leaf, &[&str]); 2] = [
        (
            "wrong name",
            ca.leaf(&["pitbox.example.net"], -1, 30),
            &["pitbox.example.net, not localhost", "check the server address"],
        ),
        ("expired", ca.leaf(&["localhost"], -30, -2), &["expired on", "2 days ago", "renew"]),
    ];
    for (what, pair, expected) in cases {
        let sub = dir.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(&sub).unwrap();
        let (cert, key) = write_pair(&sub, &pair);
        let resolver = CertResolver::new(TlsFiles { cert, key, watch: None }).unwrap();
        let srv =
            TestServer::start_tls(Backend::Sqlite, |_| {}, resolver, pitbox_driver::uplink::client(&tls))
                .await
                .unwrap();
        srv.create_user("steady", pitbox_schema::wire::Role::Driver, &[]);
        let err = pitbox_driver::credentials::login(&srv.client, &srv.base, "steady", "steady-password")
            .await
            .unwrap_err()
            .to_string();
        eprintln!("{what}: login says: {err}");
        for e in expected {
            assert!(err.contains(e), "{what}: {err:?} should say {e:?}");
        }
        let row = pitbox_driver::doctor::tls_row(&srv.base, &tls).await;
        assert_eq!(row.status, pitbox_schema::wire::ValidationStatus::Error, "{what}: {row:?}");
        for e in expected {
            assert!(row.message.contains(e), "{what}: doctor said {:?}, should say {e:?}", row.message);
        }
        srv.stop().await;
    }

    // A good certificate, but a node that does not trust the team's CA.
    let (cert, key) = write_pair(dir.path(), &ca.leaf(&["localhost"], -1, 30));
    let resolver = CertResolver::new(TlsFiles { cert, key, watch: None }).unwrap();
    let system_only = NodeTls::new(None).unwrap();
    let srv =
        TestServer::start_tls(Backend::Sqlite, |_| {}, resolver, pitbox_driver::uplink::client(&system_only))
            .await
            .unwrap();
    let err =
        pitbox_driver::credentials::login(&srv.client, &srv.base, "x", "y").await.unwrap_err().to_string();
    assert!(err.contains("not signed by an authority this PC trusts") && err.contains("--ca-file"), "{err}");
    // With the CA it passes: a login (wrong password) gets an answer from the server.
    let err = pitbox_driver::credentials::login(&pitbox_driver::uplink::client(&tls), &srv.base, "x", "y")
        .await
        .unwrap_err();
    assert!(matches!(err, pitbox_driver::credentials::CredentialError::Refused(_)), "{err}");
    srv.stop().await;
}

/// A certificate rewritten on disk is picked up by the file watch for new connections, while a
/// WebSocket opened before carries on; a broken pair on disk keeps the current certificate.
#[actix_rt::test]
async fn a_renewed_certificate_is_picked_up_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("PitBox test team CA");
    let tls = node_tls(dir.path(), &ca);
    let first = ca.leaf(&["localhost"], -1, 30);
    let (cert, key) = write_pair(dir.path(), &first);
    let resolver = CertResolver::new(TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        watch: Some(Duration::from_millis(50)),
    })
    .unwrap();
    let srv =
        TestServer::start_tls(Backend::Sqlite, |_| {}, resolver.clone(), pitbox_driver::uplink::client(&tls))
            .await
            .unwrap();
    let port: u16 = srv.base.rsplit(':').next().unwrap().parse().unwrap();
    let team = srv.create_team("Reload");
    srv.create_user("eng", pitbox_schema::wire::Role::Engineer, &[&team]);
    let token = srv.login("eng").await;
    let mut ws = WsClient::connect(&srv).await;
    let pem = ca.pem.clone();
    let seen = actix_rt::task::spawn_blocking(move || presented(port, &pem)).await.unwrap();
    assert_eq!(seen, first.2);

    let renewed = ca.leaf(&["localhost"], -1, 60);
    write_pair(dir.path(), &renewed);
    let want = renewed.2.clone();
    let pem = ca.pem.clone();
    actix_rt::task::spawn_blocking(move || wait_presented(port, &pem, &want, "file watch")).await.unwrap();
    // The socket opened with the old certificate still works.
    let r = ws.authenticate(&token, "dashboard").await;
    assert_eq!(r["data"]["success"], true, "{r}");
    // New HTTPS requests work too.
    let r = srv.send("GET", "/healthz", None, None).await;
    assert!(r.status.is_success());
    assert_eq!(r.headers.get("strict-transport-security").unwrap(), "max-age=31536000");

    // A key that does not belong to the certificate: refused, the current pair stays.
    let other = ca.leaf(&["localhost"], -1, 90);
    std::fs::write(&cert, &other.0).unwrap();
    let e = resolver.reload().unwrap_err().to_string();
    assert!(e.contains("key.pem"), "{e}");
    assert_eq!(resolver.current().cert[0].to_vec(), renewed.2);
    srv.stop().await;
}

/// `X-Forwarded-For` names the client for the login limit only when the peer is a trusted proxy.
#[actix_rt::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    for trusted in [true, false] {
        let srv = TestServer::start(Backend::Sqlite, |c| {
            c.rate_limit_login = 2;
            if trusted {
                c.trusted_proxies = "127.0.0.1/32, 10.0.0.0/8".parse().unwrap();
            }
        })
        .await
        .unwrap();
        let attempt = |client_ip: &'static str| {
            let req = srv
                .client
                .post(format!("{}/api/auth/login", srv.base))
                .insert_header(("X-Forwarded-For", client_ip));
            async move {
                req.send_json(&json!({"username": "nobody", "password": "wrong"})).await.unwrap().status()
            }
        };
        // Two attempts from one client use up its limit.
        for _ in 0..2 {
            assert_eq!(attempt("198.51.100.1").await.as_u16(), 401);
        }
        assert_eq!(attempt("198.51.100.1").await.as_u16(), 429);
        // Another client behind the same proxy: limited on its own only when the proxy is trusted.
        let other = attempt("198.51.100.2").await.as_u16();
        if trusted {
            assert_eq!(other, 401, "a trusted proxy's clients are limited one by one");
        } else {
            assert_eq!(other, 429, "an untrusted peer's header is ignored: one limit for the peer");
        }
        srv.stop().await;
    }
}
