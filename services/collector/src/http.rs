//! HTTP push: `POST /ingest` with one JSON event or an array of them. All or nothing: a
//! batch with any invalid event is refused whole (422, with each reason), so a client can
//! fix and resend it without duplicates.

use crate::ingest::parse;
use crate::publisher::Publisher;
use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::service::Context;
use shared::telemetry::Counter;
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
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { enabled: true, host: "127.0.0.1".into(), port: 8083, max_body_bytes: 1 << 20 }
    }
}

pub async fn bind(config: &HttpConfig) -> anyhow::Result<tokio::net::TcpListener> {
    let address = format!("{}:{}", config.host, config.port);
    tokio::net::TcpListener::bind(&address).await.with_context(|| format!("binding http ingest on {address}"))
}

#[derive(Clone)]
struct Ingest {
    publisher: Publisher,
    refused: Counter,
}

pub fn router(publisher: Publisher, context: &Context, max_body_bytes: usize) -> Router {
    let state = Ingest { publisher, refused: context.counters.counter("collector_http_refused_total") };
    Router::new()
        .route("/ingest", post(ingest))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(max_body_bytes))
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
    axum::serve(listener, router(publisher, &context, config.max_body_bytes))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("http ingest server")
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
