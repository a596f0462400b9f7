//! The dashboard's front end, built from `ui/` by build.rs and embedded in the binary:
//! `/assets/*` (scripts, styles, source maps) and the HTML shell at the path of every page,
//! which the page's own script then fills in (client-side routing). The shell carries the
//! dashboard's settings in `<meta name="fleetwatch-config">`. The pages read only the public
//! REST API and the WebSocket.

use crate::live::Live;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file of `ui/dist`.
pub(crate) struct Asset {
    /// Relative to `ui/dist`, `/`-separated.
    pub path: &'static str,
    pub content_type: &'static str,
    /// A hash of `body`, quoted, for `ETag` and `If-None-Match`.
    pub etag: &'static str,
    pub body: &'static [u8],
    /// The same body gzip-compressed, for clients that accept it.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// The dashboard's pages; each serves the same shell. Keep in step with `ui/src/nav.js`.
pub const PAGES: &[&str] = &[
    "/",
    "/system",
    "/workers",
    "/workers/{worker_id}",
    "/tasks",
    "/tasks/{task_id}",
    "/task-types",
    "/task-types/{family}",
    "/performance",
    "/alerts",
    "/topology",
    "/fault-tolerance",
    "/login",
];

/// Who may run scripts and be fetched from the dashboard: only the gateway itself. Fleet
/// data is always set as text, and this keeps an injected tag inert all the same.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `/assets/{*path}` and the page shells, to merge into the gateway's router.
pub fn routes() -> Router<Live> {
    PAGES.iter().fold(Router::new().route("/assets/{*path}", get(asset)), |router, page| router.route(page, get(shell)))
}

fn find(path: &str) -> Option<&'static Asset> {
    FILES.iter().find(|asset| asset.path == path)
}

/// Where the shell's settings go.
const SETTINGS_PLACEHOLDER: &str = "<meta name=\"fleetwatch-config\" content=\"{}\">";

/// For work on the front end: `FLEETWATCH_UI_DIR=<a built dist>` serves the dashboard from
/// there, read at each request, so a rebuilt bundle shows on reload without a cargo build.
fn dev_file(path: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("FLEETWATCH_UI_DIR")?;
    if path.split('/').any(|part| part.is_empty() || part == ".." || part == ".") {
        return None;
    }
    std::fs::read(std::path::Path::new(&dir).join(path)).ok()
}

/// `index.html` with the settings in place, and the theme they name on `<html>`.
fn rendered_shell(settings: &crate::Settings) -> Option<String> {
    let index = match dev_file("index.html") {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => String::from_utf8_lossy(find("index.html")?.body).into_owned(),
    };
    let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
    let attribute = json.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let theme = match settings.theme {
        crate::Theme::Dark => "dark",
        crate::Theme::Light => "light",
    };
    Some(
        index
            .replace(SETTINGS_PLACEHOLDER, &format!("<meta name=\"fleetwatch-config\" content=\"{attribute}\">"))
            .replace("data-theme=\"dark\"", &format!("data-theme=\"{theme}\"")),
    )
}

async fn shell(State(live): State<Live>) -> Response {
    match rendered_shell(&live.settings) {
        Some(html) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
            ],
            html,
        )
            .into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "the dashboard was not embedded").into_response(),
    }
}

/// Writes the dashboard (the shell with `settings`, and `assets/`) under `dir`: the guide's
/// `--output-dir`, for serving it from another web server.
pub fn write_to(dir: &std::path::Path, settings: &crate::Settings) -> std::io::Result<()> {
    let assets = dir.join("assets");
    std::fs::create_dir_all(&assets)?;
    let shell = rendered_shell(settings).ok_or_else(|| std::io::Error::other("the dashboard was not embedded"))?;
    std::fs::write(dir.join("index.html"), shell)?;
    for asset in FILES.iter().filter(|asset| asset.path != "index.html") {
        let path = assets.join(asset.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, asset.body)?;
    }
    Ok(())
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if let Some(body) = dev_file(&path) {
        let content_type = crate::content_type::content_type(&path);
        return ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], body).into_response();
    }
    match find(&path) {
        // A chunk's name carries a hash of its content, so a browser may keep it for good;
        // other names are stable (app.js): browsers revalidate each load with the ETag and
        // get a 304 while the binary is the same.
        Some(asset) if asset.path.starts_with("chunks/") => {
            respond(asset, &headers, "public, max-age=31536000, immutable")
        }
        Some(asset) if asset.path != "index.html" => respond(asset, &headers, "no-cache"),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// The asset (gzip when accepted), or 304 when the client holds this version.
fn respond(asset: &'static Asset, request: &HeaderMap, cache_control: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if asset.gzip.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let held = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag || tag.trim() == "*"));
    if held {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    let accepts_gzip = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|encodings| encodings.split(',').any(|encoding| encoding.trim().starts_with("gzip")));
    match asset.gzip {
        Some(gzip) if accepts_gzip => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (headers, gzip).into_response()
        }
        _ => (headers, asset.body).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(header::HeaderName, &str)]) -> Response {
        let app = routes().with_state(Live::offline());
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        app.oneshot(request.body(Body::empty()).expect("request")).await.expect("response")
    }

    #[tokio::test]
    async fn every_page_path_serves_the_shell() {
        for page in
            ["/", "/system", "/workers", "/workers/cuda-0001", "/tasks/t-1", "/task-types/vision", "/fault-tolerance"]
        {
            let response = get(page, &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{page}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert!(response.headers().contains_key(header::CONTENT_SECURITY_POLICY));
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
            let html = String::from_utf8_lossy(&body);
            assert!(html.contains("/assets/app.js"), "{page} links the script");
            assert!(
                html.contains("content=\"{&quot;theme&quot;:&quot;dark&quot;,&quot;auto_refresh&quot;:2,"),
                "{page} carries the settings: {html}"
            );
        }
    }

    #[tokio::test]
    async fn assets_have_types_validators_and_gzip() {
        let plain = get("/assets/app.js", &[]).await;
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(plain.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(plain.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let etag = plain.headers()[header::ETAG].to_str().expect("ascii").to_owned();

        let css = get("/assets/app.css", &[(header::ACCEPT_ENCODING, "gzip, br")]).await;
        assert_eq!(css.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(css.headers()[header::CONTENT_ENCODING], "gzip");

        let again = get("/assets/app.js", &[(header::IF_NONE_MATCH, &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

        assert_eq!(get("/assets/nope.js", &[]).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/assets/../Cargo.toml", &[]).await.status(), StatusCode::NOT_FOUND);
        assert!(get("/assets/uplot.css", &[]).await.status().is_success(), "uPlot's stylesheet is served");
    }

    #[tokio::test]
    async fn the_shell_names_each_page_chunk_and_chunks_are_kept_for_good() {
        let body = axum::body::to_bytes(get("/", &[]).await.into_body(), 1 << 20).await.expect("body");
        let html = String::from_utf8_lossy(&body);
        let meta = html.split("<meta name=\"fleetwatch-chunks\" content=\"").nth(1).expect("the chunks meta");
        let json = meta.split('"').next().expect("its content").replace("&quot;", "\"");
        let chunks: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(&json).expect("JSON");
        assert!(chunks.contains_key("overview") && chunks.contains_key("topology"), "{chunks:?}");
        let overview = &chunks["overview"][0];
        let path = overview.strip_prefix("/assets/").expect("an asset");
        assert!(path.starts_with("chunks/overview-"), "{overview}");
        let response = get(overview, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    }
}
