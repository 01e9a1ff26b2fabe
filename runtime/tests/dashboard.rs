//! The dashboard at `/`: index.html (not cached), static files (WASM gzip-compressed for browsers
//! that take it, or its precompressed `.gz`), deep links into the app, JSON 404s kept for the API,
//! no way out of the directory, and a "not built" page when there is nothing to serve.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::Path;

use actix_web::http::StatusCode;
use common::*;

const INDEX: &str = "<!doctype html><html><body><script type=\"module\">import init from './app.js'; init();</script></body></html>";
const JS: &str = "export default async function init() { /* the app */ }\n";

/// A WASM-looking payload that compresses well (like real WASM), with every byte value in it.
fn wasm_bytes() -> Vec<u8> {
    let mut b = b"\0asm\x01\0\0\0".to_vec();
    for i in 0..64 * 1024u32 {
        b.push((i % 251) as u8);
    }
    b
}

fn dist() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), INDEX).unwrap();
    std::fs::write(dir.path().join("app.js"), JS).unwrap();
    std::fs::write(dir.path().join("app_bg.wasm"), wasm_bytes()).unwrap();
    dir
}

struct Raw {
    status: StatusCode,
    headers: actix_web::http::header::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A GET whose body is returned exactly as sent (no automatic decompression).
async fn get(srv: &TestServer, path: &str, accept_encoding: Option<&str>) -> Raw {
    let mut req = srv.client.get(format!("{}{}", srv.base, path)).no_decompress();
    req = req.insert_header(("Accept-Encoding", accept_encoding.unwrap_or("identity")));
    let mut res = req.send().await.unwrap();
    let body = res.body().limit(16 * 1024 * 1024).await.unwrap().to_vec();
    Raw { status: res.status(), headers: res.headers().clone(), body }
}

async fn start_with(dir: &Path) -> TestServer {
    let dir = dir.to_owned();
    TestServer::start(Backend::Sqlite, move |c| c.dashboard_dir = dir).await.unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[actix_rt::test]
async fn serves_the_app_its_files_and_its_deep_links() {
    let dir = dist();
    let srv = start_with(dir.path()).await;

    let r = get(&srv, "/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), INDEX);
    assert!(r.header("content-type").starts_with("text/html"), "{}", r.header("content-type"));
    assert_eq!(r.header("cache-control"), "no-cache");

    // Compressed for a browser that takes gzip, and the same bytes once decompressed.
    let r = get(&srv, "/app_bg.wasm", Some("gzip")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/wasm");
    assert_eq!(r.header("content-encoding"), "gzip");
    assert!(r.body.len() < wasm_bytes().len() / 4, "compressed to {} bytes", r.body.len());
    assert_eq!(gunzip(&r.body), wasm_bytes());
    // As they are for one that does not.
    let r = get(&srv, "/app_bg.wasm", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("content-encoding").is_none_or(|v| v == "identity"));
    assert_eq!(r.body, wasm_bytes());

    let r = get(&srv, "/app.js", Some("gzip")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/javascript"), "{}", r.header("content-type"));
    assert_eq!(gunzip(&r.body), JS.as_bytes());

    // The app's own routes load the app, which then routes itself.
    for path in ["/teams/t1/drivers/d1", "/teams", "/login"] {
        let r = get(&srv, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.text(), INDEX, "{path}");
        assert_eq!(r.header("cache-control"), "no-cache", "{path}");
    }

    // The API's answers are unchanged.
    let r = srv.send("GET", "/api/does-not-exist", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "not_found", "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().starts_with("no route"), "{}", r.body);
    for path in ["/api", "/admin/nope", "/metrics/nope", "/healthz/x"] {
        let r = srv.send("GET", path, None, None).await;
        assert!(r.body["code"].is_string(), "{path}: {}", r.body);
    }
    assert_eq!(srv.send("GET", "/readyz", None, None).await.status, StatusCode::OK);
    let r = srv.send("POST", "/teams/t1", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["code"].is_string());

    // A missing file is a 404, not the app.
    let r = get(&srv, "/nope.js", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.text().contains("<html"));

    // Metrics count the dashboard under one route label, and unknown API paths apart from it.
    let metrics = get(&srv, "/metrics", None).await.text();
    assert!(metrics.contains("route=\"dashboard\""), "{metrics}");
    assert!(metrics.contains("route=\"unmatched\""), "{metrics}");
    srv.stop().await;
}

#[actix_rt::test]
async fn nothing_outside_the_directory_is_served() {
    // The dist dir sits next to a secret, as dashboard-yew/dist sits next to Cargo.toml.
    let root = tempfile::tempdir().unwrap();
    let dist_dir = root.path().join("dist");
    std::fs::create_dir(&dist_dir).unwrap();
    std::fs::write(dist_dir.join("index.html"), INDEX).unwrap();
    std::fs::write(root.path().join("secret.toml"), "password = \"hunter2\"").unwrap();
    let srv = start_with(&dist_dir).await;
    for path in [
        "/../secret.toml",
        "/%2e%2e/secret.toml",
        "/%2E%2E/secret.toml",
        "/a/../../secret.toml",
        "/..%2fsecret.toml",
        "/%2e%2e%2fsecret.toml",
        "/.%2e/secret.toml",
        "/..%5csecret.toml",
        "/.hidden",
    ] {
        // Sent byte for byte: the client must not tidy the path up first.
        let r = get(&srv, path, None).await;
        assert!(!r.text().contains("hunter2"), "{path} leaked the file");
        assert_ne!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
    }
    srv.stop().await;
}

#[actix_rt::test]
async fn precompressed_files_are_sent_as_they_are() {
    let dir = dist();
    // A `.gz` that is distinguishable from what on-the-fly compression would make.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &wasm_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    std::fs::write(dir.path().join("app_bg.wasm.gz"), &gz).unwrap();
    let srv = start_with(dir.path()).await;

    let r = get(&srv, "/app_bg.wasm", Some("gzip, deflate, br")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/wasm");
    assert_eq!(r.header("content-encoding"), "gzip");
    assert_eq!(r.body, gz, "the precompressed file, not compressed again");
    assert!(r.header("vary").to_ascii_lowercase().contains("accept-encoding"));
    assert!(!r.header("content-disposition").contains(".gz"), "{}", r.header("content-disposition"));

    let r = get(&srv, "/app_bg.wasm", None).await;
    assert_eq!(r.body, wasm_bytes(), "the plain file for a browser without gzip");
    srv.stop().await;
}

#[actix_rt::test]
async fn without_a_build_the_root_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    for missing in [dir.path().join("no-such-dist"), dir.path().to_owned()] {
        let srv = start_with(&missing).await;
        for path in ["/", "/teams/t1"] {
            let r = get(&srv, path, None).await;
            assert!(r.status == StatusCode::OK || r.status == StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert!(r.header("content-type").starts_with("text/html"));
            assert!(r.text().contains("not built"), "{}", r.text());
            assert!(r.text().contains("bash tools/build-dashboard.sh"), "{}", r.text());
        }
        assert_eq!(get(&srv, "/app.js", None).await.status, StatusCode::NOT_FOUND);
        let r = srv.send("GET", "/api/does-not-exist", None, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body["code"], "not_found");
        assert_eq!(srv.send("GET", "/readyz", None, None).await.status, StatusCode::OK);
        srv.stop().await;
    }
}
