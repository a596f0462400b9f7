//! The HTTP surface: one router for the REST API (every `/api` route registered through
//! `routes!`, so it is in the OpenAPI document), the dashboard's pages and assets, the
//! WebSocket and `/metrics`. This file holds the router and the summary endpoints.

use crate::auth::Auth;
use crate::live::{Live, Snapshot};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;
use shared::alert::Severity;
use shared::health::HealthReport;
use shared::metrics::{ComponentState, Summary, SystemMetrics, TaskCounts, TaskMetrics, Utilisation, WorkerCounts};
use shared::now_ms;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Metrics older than this make the status `stale`, ms.
const STALE_AFTER_MS: i64 = 10_000;
/// Health reports older than this belong to an instance that is gone, ms.
pub(crate) const REPORT_STALE_AFTER_MS: i64 = 10_000;

/// The REST API as an OpenAPI router: what `/api/openapi.json` describes.
pub fn api() -> OpenApiRouter<Live> {
    OpenApiRouter::with_openapi(crate::openapi::document())
        .routes(routes!(status))
        .routes(routes!(metrics))
        .routes(routes!(system_metrics))
        .routes(routes!(task_metrics))
        .routes(routes!(services))
        .routes(routes!(dashboard_settings))
        .merge(crate::workers::routes())
        .merge(crate::tasks::routes())
        .merge(crate::history::routes())
        .merge(crate::alerts::routes())
        .merge(crate::topology::routes())
        .merge(crate::performance::routes())
        .merge(crate::faults::routes())
        .merge(crate::session::routes())
}

/// Largest body a write may carry: an alert or a silence is a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route, behind the guard (`guard.rs`) that decides who may use it.
pub fn router(live: Live, auth: Arc<Auth>) -> Router {
    let (api, document) = api().split_for_parts();
    let document = crate::openapi::Served::new(document);
    api.route("/api/openapi.json", get(move || std::future::ready(document.response())))
        .route("/ws/metrics", get(crate::ws::websocket))
        .route("/metrics", get(crate::prometheus::metrics))
        .route("/healthz", get(|| async { "ok" }))
        .merge(crate::assets::routes())
        .fallback(not_found)
        .with_state(live)
        .layer(axum::middleware::from_fn_with_state(auth.clone(), crate::guard::guard))
        .layer(axum::Extension(auth))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Every refusal: `{"error": reason}` with the status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Why, for a person.
    pub error: String,
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(ErrorBody { error: message.to_owned() })).into_response()
}

/// Alerts open now by severity.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertCounts {
    pub firing: usize,
    pub critical: usize,
    pub warning: usize,
}

/// The active archiver and how far behind each stream it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveStatus {
    /// The active archiver's instance, or null when none reports.
    pub active: Option<String>,
    /// Archivers waiting to take over.
    pub standby: usize,
    pub streams: Vec<StreamLag>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamLag {
    pub stream: String,
    pub lag_messages: f64,
    pub lag_seconds: f64,
}

/// `GET /api/status`: the seed's summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `waiting` (no metrics yet), `stale` (over 10 s old), `critical`, `degraded` or `healthy`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
    /// The processor's tick the figures are from, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    pub workers: WorkerCounts,
    pub tasks: TaskCounts,
    pub alerts: AlertCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_per_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_time_ms: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_time_ms: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling_efficiency: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilisation: Option<Utilisation>,
    /// The coordinator's and load balancer's health, as they last reported it.
    pub components: BTreeMap<String, ComponentState>,
    pub archive: ArchiveStatus,
}

pub fn status_of(snapshot: &Snapshot, now: i64) -> Status {
    let firing = &snapshot.firing.alerts;
    let count = |severity: Severity| firing.iter().filter(|alert| alert.severity == severity).count();
    let alerts =
        AlertCounts { firing: firing.len(), critical: count(Severity::Critical), warning: count(Severity::Warning) };
    let archive = archive_status(snapshot, now);
    let Some(system) = &snapshot.system else {
        return Status {
            status: "waiting",
            message: Some("no metrics yet: is the processor running?"),
            updated_at: None,
            workers: WorkerCounts::default(),
            tasks: TaskCounts::default(),
            alerts,
            throughput_per_min: None,
            queue_time_ms: None,
            processing_time_ms: None,
            scheduling_efficiency: None,
            utilisation: None,
            components: BTreeMap::new(),
            archive,
        };
    };
    let health = if now - system.time > STALE_AFTER_MS {
        "stale"
    } else if alerts.critical > 0 || system.workers.disconnected * 4 > system.workers.total {
        "critical"
    } else if !firing.is_empty() {
        "degraded"
    } else {
        "healthy"
    };
    Status {
        status: health,
        message: None,
        updated_at: Some(system.time),
        workers: system.workers.clone(),
        tasks: system.tasks.clone(),
        alerts,
        throughput_per_min: Some(system.throughput_per_min),
        queue_time_ms: Some(system.queue_time_ms.clone()),
        processing_time_ms: Some(system.processing_time_ms.clone()),
        scheduling_efficiency: Some(system.scheduling_efficiency),
        utilisation: Some(system.utilisation.clone()),
        components: system.components.clone(),
        archive,
    }
}

/// Which archiver is active and how far it is behind each stream, from health reports.
fn archive_status(snapshot: &Snapshot, now: i64) -> ArchiveStatus {
    let live = snapshot
        .services
        .values()
        .filter(|report| report.service == "archiver" && now - report.time <= REPORT_STALE_AFTER_MS);
    fn gauge<'a>(report: &'a HealthReport, name: &str, stream: Option<&str>) -> Option<&'a shared::health::Gauge> {
        report.gauges.iter().find(|gauge| {
            gauge.name == name
                && stream.is_none_or(|stream| gauge.labels.get("stream").map(String::as_str) == Some(stream))
        })
    }
    let (active, standby): (Vec<_>, Vec<_>) =
        live.partition(|report| gauge(report, "archiver_active", None).is_some_and(|gauge| gauge.value > 0.0));
    let Some(report) = active.first() else {
        return ArchiveStatus { active: None, standby: standby.len(), streams: Vec::new() };
    };
    let streams = report
        .gauges
        .iter()
        .filter(|gauge| gauge.name == "archiver_lag_messages")
        .filter_map(|messages| {
            let stream = messages.labels.get("stream")?;
            let seconds = gauge(report, "archiver_lag_seconds", Some(stream)).map_or(0.0, |gauge| gauge.value);
            Some(StreamLag { stream: stream.clone(), lag_messages: messages.value, lag_seconds: seconds })
        })
        .collect();
    ArchiveStatus { active: Some(report.instance.clone()), standby: standby.len(), streams }
}

/// Overall system status
///
/// Workers and tasks by status, alerts open, performance, the components' health and the
/// archive's lag: the monitoring guide's `/api/status`.
#[utoipa::path(get, path = "/api/status", tag = "fleet", responses((status = 200, body = Status)))]
async fn status(State(live): State<Live>) -> axum::Json<Status> {
    axum::Json(status_of(&live.read(), now_ms()))
}

/// The system and task metrics of the latest tick.
#[derive(Debug, Serialize, ToSchema)]
pub struct Metrics {
    pub system: SystemMetrics,
    pub tasks: Option<TaskMetrics>,
}

/// System metrics
///
/// The latest tick's system metrics and task metrics together (the monitoring guide's
/// `/api/metrics`); 503 before the processor's first tick.
#[utoipa::path(get, path = "/api/metrics", tag = "fleet",
    responses((status = 200, body = Metrics), (status = 503, body = ErrorBody)))]
async fn metrics(State(live): State<Live>) -> Response {
    let snapshot = live.read();
    match &snapshot.system {
        Some(system) => axum::Json(json!({ "system": system, "tasks": snapshot.tasks })).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "no metrics yet: is the processor running?"),
    }
}

/// Current system metrics
#[utoipa::path(get, path = "/api/metrics/system", tag = "fleet",
    responses((status = 200, body = SystemMetrics), (status = 503, body = ErrorBody)))]
async fn system_metrics(State(live): State<Live>) -> Response {
    match &live.read().system {
        Some(system) => axum::Json(system).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "no metrics yet: is the processor running?"),
    }
}

/// Metrics for all tasks
///
/// Throughput, success, latency and scheduling by family, model and hardware;
/// compatibility; fault tolerance; the tick's finished tasks and the latest failures.
#[utoipa::path(get, path = "/api/metrics/tasks", tag = "tasks",
    responses((status = 200, body = TaskMetrics), (status = 503, body = ErrorBody)))]
async fn task_metrics(State(live): State<Live>) -> Response {
    match &live.read().tasks {
        Some(tasks) => axum::Json(tasks).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "no task metrics yet: is the processor running?"),
    }
}

/// A service instance's latest health report, and whether it is still current.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceHealth {
    #[serde(flatten)]
    pub report: HealthReport,
    /// Reported within the last 10 s.
    pub up: bool,
    /// How long ago its last report came, ms.
    pub age_ms: i64,
}

/// Services and their health
///
/// Every service instance's latest health report (counters and gauges), newest service
/// first within each name.
#[utoipa::path(get, path = "/api/services", tag = "system", responses((status = 200, body = Vec<ServiceHealth>)))]
async fn services(State(live): State<Live>) -> axum::Json<Vec<ServiceHealth>> {
    let now = now_ms();
    let health = live
        .read()
        .services
        .values()
        .map(|report| ServiceHealth {
            report: report.clone(),
            up: now - report.time <= REPORT_STALE_AFTER_MS,
            age_ms: (now - report.time).max(0),
        })
        .collect();
    axum::Json(health)
}

/// The dashboard's settings
///
/// What the configuration says of the dashboard: the starting theme, how often pages
/// refresh, whether the WebSocket is on, its pace, and how many workers a page draws.
#[utoipa::path(get, path = "/api/settings", tag = "system", responses((status = 200, body = crate::Settings)))]
async fn dashboard_settings(State(live): State<Live>) -> axum::Json<crate::Settings> {
    axum::Json((*live.settings).clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use tower::ServiceExt;

    /// The router as `just up` serves it: no users, so nobody is asked.
    pub(crate) fn open_router(live: &Live) -> axum::Router {
        let auth = crate::auth::Auth::new(&crate::auth::AuthConfig::default()).expect("the default is valid");
        router(live.clone(), std::sync::Arc::new(auth))
    }

    pub(crate) async fn get(live: &Live, path: &str) -> (StatusCode, Value) {
        let response = open_router(live)
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
        )
    }

    #[tokio::test]
    async fn status_waits_for_data_then_shows_it() {
        let live = Live::offline();
        let (code, body) = get(&live, "/api/status").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["status"], "waiting");
        assert_eq!(body["workers"]["total"], 0);

        live.snapshot.write().expect("lock").system = Some(SystemMetrics {
            time: now_ms(),
            workers: WorkerCounts { total: 5, active: 3, idle: 1, busy: 3, overloaded: 0, disconnected: 1 },
            ..SystemMetrics::default()
        });
        let (_, body) = get(&live, "/api/status").await;
        assert_eq!(body["status"], "healthy");
        assert_eq!((body["workers"]["active"].as_u64(), body["workers"]["disconnected"].as_u64()), (Some(3), Some(1)));
        assert_eq!(body["alerts"]["firing"], 0);
    }

    #[tokio::test]
    async fn unknown_paths_get_a_json_404() {
        let (code, body) = get(&Live::offline(), "/api/nope").await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert!(body["error"].is_string());
    }
}
