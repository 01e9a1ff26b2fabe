//! The team's pit wall in the browser: serves the built Yew dashboard (`Config::dashboard_dir`,
//! default `dashboard-yew/dist`, built by `tools/build-dashboard.sh`) at `/`. Files are served
//! as they are (`X.gz` beside `X` is sent instead to browsers that take gzip; everything else is
//! compressed on the fly by the app's `Compress`), and any other extension-less GET outside the
//! API's prefixes answers `index.html`, so that the app's own routes (`/teams/{id}/drivers/{id}`)
//! can be deep-linked and reloaded. Without a built dashboard, `/` says how to build one.
//! Reads no env vars (the directory comes from the config: `PITBOX_DASHBOARD_DIR`).

use std::path::{Path, PathBuf};

use actix_files::{NamedFile, PathBufWrap};
use actix_web::http::header::{self, ContentEncoding, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::config::Config;
use crate::error::ApiError;

/// First path segments that belong to the server, never to the app: unknown paths there keep the
/// JSON `{code, message}` 404 instead of turning into the app's page.
const RESERVED: &[&str] = &["api", "admin", "ws", "healthz", "readyz", "metrics"];

/// The default service: the dashboard's files, its client-side routes, or the JSON 404.
pub async fn serve(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if !(req.method() == Method::GET || req.method() == Method::HEAD) || is_reserved(req.path()) {
        return crate::routes::not_found(req).await;
    }
    let Some(config) = req.app_data::<web::Data<Config>>() else {
        return crate::routes::not_found(req).await;
    };
    let dir = config.dashboard_dir.clone();
    // Decodes percent-escapes and drops `..` at the root, so no request can leave `dir`.
    let Ok(rel) = PathBufWrap::parse_req_path(&req, false) else {
        return crate::routes::not_found(req).await;
    };
    let rel: &Path = rel.as_ref();
    let index = dir.join("index.html");
    if !index.is_file() {
        if is_client_route(rel) {
            return Ok(not_built(&dir));
        }
        return crate::routes::not_found(req).await;
    }
    let path = if is_client_route(rel) { index } else { dir.join(rel) };
    if !path.is_file() {
        return crate::routes::not_found(req).await;
    }
    let mut res = match precompressed(&req, &path).await {
        Some(file) => {
            let mut res = file.into_response(&req);
            res.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
            res
        }
        None => NamedFile::open_async(&path).await.map_err(ApiError::internal)?.into_response(&req),
    };
    // wasm-bindgen's file names carry no content hash, so a browser must ask again each time
    // (cheap: ETag/Last-Modified make it a 304) or it would pair a new index.html with old code.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

/// Whether `path` belongs to the server (API, admin, socket, health), never to the app.
pub(crate) fn is_reserved(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    RESERVED.contains(&first)
}

/// The app's own pages: the root, and paths whose last segment has no file extension.
fn is_client_route(rel: &Path) -> bool {
    rel.as_os_str().is_empty() || rel.extension().is_none()
}

/// `X.gz` for a browser that accepts gzip, served as `X` with `Content-Encoding: gzip` (which
/// also keeps `Compress` from compressing it again). Not for range requests: their byte offsets
/// would be offsets into the compressed file.
async fn precompressed(req: &HttpRequest, path: &Path) -> Option<NamedFile> {
    if req.headers().contains_key(header::RANGE) || !accepts_gzip(req) {
        return None;
    }
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    if !gz.is_file() {
        return None;
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let file = NamedFile::open_async(&gz).await.ok()?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut disposition = file.content_disposition().clone();
    disposition.parameters = vec![header::DispositionParam::Filename(name)];
    Some(
        file.set_content_type(actix_files::file_extension_to_mime(ext))
            .set_content_disposition(disposition)
            .set_content_encoding(ContentEncoding::Gzip),
    )
}

/// Whether `Accept-Encoding` lists `gzip` (or `*`) with a non-zero quality.
fn accepts_gzip(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let zero_q =
            parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero_q
    })
}

/// The page `/` answers while there is no `index.html` to serve.
fn not_built(dir: &Path) -> HttpResponse {
    let dir = html_escape(&dir.display().to_string());
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>PitBox: dashboard not built</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:4rem auto;padding:0 1rem;\
         background:#111;color:#eee}}code{{background:#222;padding:.1rem .3rem}}</style></head>\n\
         <body><h1>The dashboard is not built</h1>\n\
         <p>PitBox serves the team dashboard from <code>{dir}</code>, which has no <code>index.html</code>.</p>\n\
         <p>Build it from the repository root with <code>bash tools/build-dashboard.sh</code> \
         (or point <code>PITBOX_DASHBOARD_DIR</code> at a built one), then reload this page.</p>\n\
         <p>The API is up meanwhile: <a href=\"/api/openapi.json\">/api/openapi.json</a>, \
         <a href=\"/readyz\">/readyz</a>.</p></body></html>\n"
    );
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefixes_are_whole_segments() {
        assert!(is_reserved("/api/nope"));
        assert!(is_reserved("/api"));
        assert!(is_reserved("/admin/actors"));
        assert!(is_reserved("/metrics"));
        assert!(!is_reserved("/"));
        assert!(!is_reserved("/apis"));
        assert!(!is_reserved("/teams/t1/drivers/d1"));
    }

    #[test]
    fn client_routes_have_no_extension() {
        assert!(is_client_route(Path::new("")));
        assert!(is_client_route(Path::new("teams/t1/drivers/d1")));
        assert!(!is_client_route(Path::new("app_bg.wasm")));
        assert!(!is_client_route(Path::new("index.html")));
    }

    #[test]
    fn gzip_acceptance() {
        let req = |v: &str| {
            actix_web::test::TestRequest::default().insert_header(("accept-encoding", v)).to_http_request()
        };
        assert!(accepts_gzip(&req("gzip, deflate, br")));
        assert!(accepts_gzip(&req("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&req("*")));
        assert!(!accepts_gzip(&req("gzip;q=0")));
        assert!(!accepts_gzip(&req("br, identity")));
        assert!(!accepts_gzip(&actix_web::test::TestRequest::default().to_http_request()));
    }
}
