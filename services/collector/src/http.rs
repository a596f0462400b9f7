//! HTTP push: `POST /ingest` with one JSON event or an array of them. All or nothing: a
//! batch with any invalid event is refused whole (422, with each reason), so a client can
//! fix and resend it without duplicates. With `token_sha256` set, a push needs
//! `Authorization: Bearer <token>` (401 otherwise); each client address has a push rate
//! (429 with `Retry-After` past it). `/healthz` is always open.

use crate::ingest::parse;
use crate::publisher::Publisher;
use anyhow::Context as _;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::access::RateLimiter;
use shared::service::Context;
use shared::telemetry::Counter;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `[collector.http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve `POST /ingest`. Default true.
    pub enabled: bool,
    /// Address to bind. Default `127.0.0.1`.
    pub host: String,
    /// Port; 0 picks a free one. Default 8083.
    pub port: u16,
    /// Largest accepted body, bytes. Default 1 MiB.
    pub max_body_bytes: usize,
    /// SHA-256 digests (`printf %s "$TOKEN" | sha256sum`) of the tokens agents push with;
    /// more than one lets a token be rotated. Default: none, so anyone who reaches the port
    /// may push, which only a loopback `host` allows.
    pub token_sha256: Vec<String>,
    /// Pushes each client address may make a minute; 0: no limit. Default 6000.
    pub rate_per_min: u32,
    /// Serve with no token on an address other hosts can reach. Default false.
    pub insecure: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "127.0.0.1".into(),
            port: 8083,
            max_body_bytes: 1 << 20,
            token_sha256: Vec::new(),
            rate_per_min: 6000,
            insecure: false,
        }
    }
}

/// Its tokens are digests, and it is open to other hosts only with a token or `insecure`.
pub fn check(config: &HttpConfig) -> anyhow::Result<()> {
    for digest in &config.token_sha256 {
        shared::access::check_digest("collector.http.token_sha256", digest)?;
    }
    shared::access::check_exposure(
        "the collector's HTTP ingest",
        &config.host,
        !config.token_sha256.is_empty(),
        config.insecure,
    )
}

pub async fn bind(config: &HttpConfig) -> anyhow::Result<tokio::net::TcpListener> {
    let address = format!("{}:{}", config.host, config.port);
    tokio::net::TcpListener::bind(&address).await.with_context(|| format!("binding http ingest on {address}"))
}

#[derive(Clone)]
struct Ingest {
    publisher: Publisher,
    refused: Counter,
    tokens: Arc<Vec<String>>,
    limiter: Arc<RateLimiter>,
}

pub fn router(publisher: Publisher, context: &Context, config: &HttpConfig) -> Router {
    let state = Ingest {
        publisher,
        refused: context.counters.counter("collector_http_refused_total"),
        tokens: Arc::new(config.token_sha256.clone()),
        limiter: Arc::new(RateLimiter::new(config.rate_per_min)),
    };
    Router::new()
        .route("/ingest", post(ingest))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    config: HttpConfig,
    context: Context,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "http ingest listening");
    let app = router(publisher, &context, &config).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await.context("http ingest server")
}

/// Before the body is read: the client's push rate (every push counts, refused or not),
/// then the token.
async fn admit(State(state): State<Ingest>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip());
    if let Err(wait) = state.limiter.check(peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))) {
        state.refused.inc();
        let mut response =
            error(StatusCode::TOO_MANY_REQUESTS, "too many pushes from this address; wait and retry", json!([]));
        if let Ok(value) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    if !state.tokens.is_empty() {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let known = shared::access::bearer(given)
            .is_some_and(|token| state.tokens.iter().any(|digest| shared::access::token_matches(token, digest)));
        if !known {
            state.refused.inc();
            let mut response = error(StatusCode::UNAUTHORIZED, "push with Authorization: Bearer <token>", json!([]));
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

async fn ingest(State(state): State<Ingest>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        state.refused.inc();
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON with Content-Type: application/json", json!([]));
    }
    if !matches!(body.iter().find(|byte| !byte.is_ascii_whitespace()), Some(b'{' | b'[')) {
        state.refused.inc();
        return error(StatusCode::BAD_REQUEST, "the body must be a JSON object or array", json!([]));
    }
    let (accepted, rejected) = parse(&body, "http");
    if !rejected.is_empty() {
        state.refused.inc();
        let status = match rejected[0].reason.starts_with("malformed JSON") {
            true => StatusCode::BAD_REQUEST,
            false => StatusCode::UNPROCESSABLE_ENTITY,
        };
        return error(status, "nothing was stored: fix the events listed and resend", json!(rejected));
    }
    let count = accepted.len();
    match state.publisher.publish(accepted).await {
        Ok(()) => (StatusCode::ACCEPTED, axum::Json(json!({ "accepted": count }))).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("not stored, retry: {err:#}"), json!([])),
    }
}

fn error(status: StatusCode, message: &str, rejected: serde_json::Value) -> Response {
    (status, axum::Json(json!({ "error": message, "rejected": rejected }))).into_response()
}
