//! The HTTP surface: the dashboard page, the REST API, the WebSocket and `/metrics`.

use crate::live::{Live, Snapshot, Update};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use shared::alert::Severity;
use shared::now_ms;
use tokio::sync::broadcast::error::RecvError;

/// Metrics older than this make the status `stale`, ms.
const STALE_AFTER_MS: i64 = 10_000;

pub fn router(live: Live) -> Router {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/metrics/system", get(system_metrics))
        .route("/api/metrics/tasks", get(task_metrics))
        .route("/api/metrics/workers", get(worker_metrics_list))
        .route("/api/metrics/workers/{worker_id}", get(worker_metrics))
        .route("/api/metrics/system/history", get(crate::history::system))
        .route("/api/metrics/workers/{worker_id}/history", get(crate::history::worker))
        .route("/api/metrics/tasks/stats", get(crate::history::task_stats))
        .route("/api/metrics/tasks/{task_id}", get(crate::history::task))
        .route("/api/alerts", get(crate::history::alerts))
        .route("/api/events", get(crate::history::events))
        .route("/api/fleet", get(crate::history::fleet))
        .route("/api/services", get(services))
        .route("/ws/metrics", get(websocket))
        .route("/metrics", get(crate::prometheus::metrics))
        .route("/healthz", get(|| async { "ok" }))
        .merge(crate::alerts::routes())
        .merge(crate::assets::routes())
        .fallback(not_found)
        .with_state(live)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "no such endpoint" }))).into_response()
}

/// `GET /api/status`: the seed's summary, from live data.
pub fn status_json(snapshot: &Snapshot, now: i64) -> Value {
    let firing = &snapshot.firing.alerts;
    let count = |severity: Severity| firing.iter().filter(|alert| alert.severity == severity).count();
    let Some(system) = &snapshot.system else {
        return json!({
            "status": "waiting",
            "message": "no metrics yet: is the processor running?",
            "workers": { "active": 0, "idle": 0, "busy": 0, "overloaded": 0, "disconnected": 0, "total": 0 },
            "tasks": { "queued": 0, "assigned": 0, "running": 0, "completed": 0, "failed": 0 },
            "alerts": { "firing": firing.len(), "critical": count(Severity::Critical), "warning": count(Severity::Warning) },
        });
    };
    let health = if now - system.time > STALE_AFTER_MS {
        "stale"
    } else if count(Severity::Critical) > 0 || system.workers.disconnected * 4 > system.workers.total {
        "critical"
    } else if !firing.is_empty() {
        "degraded"
    } else {
        "healthy"
    };
    json!({
        "status": health,
        "updated_at": system.time,
        "workers": system.workers,
        "tasks": system.tasks,
        "alerts": { "firing": firing.len(), "critical": count(Severity::Critical), "warning": count(Severity::Warning) },
        "throughput_per_min": system.throughput_per_min,
        "queue_time_ms": system.queue_time_ms,
        "processing_time_ms": system.processing_time_ms,
        "scheduling_efficiency": system.scheduling_efficiency,
        "utilisation": system.utilisation,
        "archive": archive_json(snapshot, now),
    })
}

/// Health reports older than this belong to an instance that is gone, ms.
const REPORT_STALE_AFTER_MS: i64 = 10_000;

/// Which archiver is active and how far it is behind each stream, from health reports.
fn archive_json(snapshot: &Snapshot, now: i64) -> Value {
    let live = snapshot
        .services
        .values()
        .filter(|report| report.service == "archiver" && now - report.time <= REPORT_STALE_AFTER_MS);
    fn gauge<'a>(
        report: &'a shared::health::HealthReport,
        name: &str,
        stream: Option<&str>,
    ) -> Option<&'a shared::health::Gauge> {
        report.gauges.iter().find(|gauge| {
            gauge.name == name
                && stream.is_none_or(|stream| gauge.labels.get("stream").map(String::as_str) == Some(stream))
        })
    }
    let (active, standby): (Vec<_>, Vec<_>) =
        live.partition(|report| gauge(report, "archiver_active", None).is_some_and(|gauge| gauge.value > 0.0));
    let Some(report) = active.first() else {
        return json!({ "active": null, "standby": standby.len(), "streams": [] });
    };
    let streams: Vec<Value> = report
        .gauges
        .iter()
        .filter(|gauge| gauge.name == "archiver_lag_messages")
        .filter_map(|messages| {
            let stream = messages.labels.get("stream")?;
            let seconds = gauge(report, "archiver_lag_seconds", Some(stream)).map_or(0.0, |gauge| gauge.value);
            Some(json!({ "stream": stream, "lag_messages": messages.value, "lag_seconds": seconds }))
        })
        .collect();
    json!({ "active": report.instance, "standby": standby.len(), "streams": streams })
}

async fn status(State(live): State<Live>) -> axum::Json<Value> {
    axum::Json(status_json(&live.read(), now_ms()))
}

async fn system_metrics(State(live): State<Live>) -> Response {
    match &live.read().system {
        Some(system) => axum::Json(system).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "error": "no metrics yet" }))).into_response(),
    }
}

/// Every refusal: `{"error": reason}` with the status.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// `GET /api/metrics/tasks`: throughput, success and latency by family, model and hardware,
/// compatibility and fault tolerance.
async fn task_metrics(State(live): State<Live>) -> Response {
    match &live.read().tasks {
        Some(tasks) => axum::Json(tasks).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "no task metrics yet: is the processor running?"),
    }
}

/// `GET /api/metrics/workers/{worker_id}`: one worker's latest metrics.
async fn worker_metrics(State(live): State<Live>, Path(worker_id): Path<String>) -> Response {
    if let Err(err) = shared::subjects::check_token("worker_id", &worker_id) {
        return error(StatusCode::BAD_REQUEST, &err.to_string());
    }
    match live.read().workers.workers.get(&worker_id) {
        Some(worker) => axum::Json(worker).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("no worker {worker_id:?} (yet)")),
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    /// How many workers to return, 1 to 1000. Default 100.
    limit: Option<usize>,
}

/// `GET /api/metrics/workers?limit=N`: workers' latest metrics, in id order, with the total,
/// whether the list was cut, and the tick they are as of.
async fn worker_metrics_list(State(live): State<Live>, Query(query): Query<ListQuery>) -> Response {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 1000");
    }
    let snapshot = live.read();
    let workers = &snapshot.workers.workers;
    let items: Vec<_> = workers.values().take(limit).collect();
    let (total, truncated, as_of) = (workers.len(), workers.len() > limit, snapshot.workers.time);
    axum::Json(json!({ "items": items, "total": total, "truncated": truncated, "as_of": as_of })).into_response()
}

async fn services(State(live): State<Live>) -> axum::Json<Value> {
    axum::Json(json!(snapshot_services(&live.read())))
}

fn snapshot_services(snapshot: &Snapshot) -> Vec<&shared::health::HealthReport> {
    snapshot.services.values().collect()
}

/// `GET /ws/metrics`: the current state at once, then every change as it happens.
async fn websocket(State(live): State<Live>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(socket, live))
}

async fn session(mut socket: WebSocket, live: Live) {
    let mut updates = live.updates.subscribe();
    let initial: Vec<String> = {
        let snapshot = live.read();
        let mut initial = Vec::new();
        if let Some(system) = &snapshot.system {
            initial.extend(serde_json::to_string(&Update::System(system)).ok());
        }
        initial.extend(serde_json::to_string(&Update::AlertsFiring(&snapshot.firing)).ok());
        initial
    };
    for message in initial {
        if socket.send(Message::Text(message.into())).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            _ = live.closing.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            update = updates.recv() => match update {
                Ok(json) => {
                    if socket.send(Message::Text(json.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                // A slow client skips to the latest rather than being dropped.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use shared::metrics::{SystemMetrics, WorkerCounts};
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    async fn get(live: &Live, path: &str) -> (StatusCode, Value) {
        let response = router(live.clone())
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn status_waits_for_data_then_shows_it() {
        let live = Live::new(CancellationToken::new(), None);
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
        let (code, body) = get(&Live::new(CancellationToken::new(), None), "/api/nope").await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert!(body["error"].is_string());
    }
}
