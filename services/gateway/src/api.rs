//! The HTTP surface: the dashboard page, the REST API, the WebSocket and `/metrics`.

use crate::live::{Live, Snapshot, Update};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use serde_json::{Value, json};
use shared::alert::{AlertState, Severity};
use shared::metrics::{TaskMetrics, WorkerMetrics};
use shared::nats::state_keys;
use shared::now_ms;
use std::fmt::Write as _;
use tokio::sync::broadcast::error::RecvError;

/// Metrics older than this make the status `stale`, ms.
const STALE_AFTER_MS: i64 = 10_000;

pub fn router(live: Live) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/api/status", get(status))
        .route("/api/metrics/system", get(system_metrics))
        .route("/api/metrics/tasks", get(task_metrics))
        .route("/api/metrics/workers", get(worker_metrics_list))
        .route("/api/metrics/workers/{worker_id}", get(worker_metrics))
        .route("/api/alerts", get(alerts))
        .route("/api/services", get(services))
        .route("/ws/metrics", get(websocket))
        .route("/metrics", get(prometheus))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .with_state(live)
}

async fn overview() -> Html<&'static str> {
    Html(include_str!("assets/overview.html"))
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
    })
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

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// The latest value of a state-bucket key, as JSON (the envelope's payload).
async fn bucket_json<T: serde::de::DeserializeOwned + serde::Serialize>(
    live: &Live,
    key: &str,
) -> Result<Value, Response> {
    let Some(bucket) = &live.bucket else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the state bucket is not open"));
    };
    let bytes = bucket
        .get(key)
        .await
        .map_err(|err| error(StatusCode::SERVICE_UNAVAILABLE, &format!("reading the state bucket: {err}")))?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, &format!("no metrics under {key:?} (yet)")))?;
    let envelope = shared::codec::decode_envelope::<T>(&bytes)
        .map_err(|err| error(StatusCode::INTERNAL_SERVER_ERROR, &format!("undecodable {key}: {err}")))?;
    Ok(json!(envelope.payload))
}

/// `GET /api/metrics/tasks`: throughput, success and latency by family, model and hardware,
/// compatibility and fault tolerance.
async fn task_metrics(State(live): State<Live>) -> Response {
    match bucket_json::<TaskMetrics>(&live, state_keys::TASKS).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(response) => response,
    }
}

/// `GET /api/metrics/workers/{worker_id}`: one worker's latest metrics.
async fn worker_metrics(State(live): State<Live>, Path(worker_id): Path<String>) -> Response {
    if let Err(err) = shared::subjects::check_token("worker_id", &worker_id) {
        return error(StatusCode::BAD_REQUEST, &err.to_string());
    }
    match bucket_json::<WorkerMetrics>(&live, &state_keys::worker(&worker_id)).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(response) => response,
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    /// How many workers to return, 1 to 1000. Default 100.
    limit: Option<usize>,
}

/// `GET /api/metrics/workers?limit=N`: workers' latest metrics, in id order, with the total
/// and whether the list was cut.
async fn worker_metrics_list(State(live): State<Live>, Query(query): Query<ListQuery>) -> Response {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 1000");
    }
    let Some(bucket) = &live.bucket else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the state bucket is not open");
    };
    let keys = match bucket.keys().await {
        Ok(keys) => keys,
        Err(err) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("listing the state bucket: {err}")),
    };
    let mut workers: Vec<String> =
        futures::StreamExt::filter_map(keys, |key| async move { key.ok().filter(|key| key.starts_with("worker.")) })
            .collect::<Vec<_>>()
            .await;
    workers.sort();
    let total = workers.len();
    let mut items = Vec::with_capacity(limit.min(total));
    for key in workers.iter().take(limit) {
        // A worker retired between the listing and the read is simply left out.
        if let Ok(value) = bucket_json::<WorkerMetrics>(&live, key).await {
            items.push(value);
        }
    }
    axum::Json(json!({ "items": items, "total": total, "truncated": total > limit })).into_response()
}

async fn alerts(State(live): State<Live>) -> axum::Json<Value> {
    let snapshot = live.read();
    axum::Json(json!({ "firing": snapshot.firing.alerts, "recent": snapshot.recent_alerts }))
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

/// `GET /metrics`: Prometheus text format, the fleet's figures and every service's counters.
async fn prometheus(State(live): State<Live>) -> Response {
    let snapshot = live.read();
    let mut out = String::new();
    if let Some(system) = &snapshot.system {
        let workers = &system.workers;
        let _ = writeln!(out, "# HELP fleetwatch_workers Workers by status.\n# TYPE fleetwatch_workers gauge");
        for (status, value) in [
            ("idle", workers.idle),
            ("busy", workers.busy),
            ("overloaded", workers.overloaded),
            ("disconnected", workers.disconnected),
        ] {
            let _ = writeln!(out, "fleetwatch_workers{{status=\"{status}\"}} {value}");
        }
        let tasks = &system.tasks;
        let _ = writeln!(
            out,
            "# HELP fleetwatch_tasks Tasks now queued, assigned or running.\n# TYPE fleetwatch_tasks gauge"
        );
        for (status, value) in [("queued", tasks.queued), ("assigned", tasks.assigned), ("running", tasks.running)] {
            let _ = writeln!(out, "fleetwatch_tasks{{status=\"{status}\"}} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP fleetwatch_tasks_finished_total Tasks finished, by outcome.\n# TYPE fleetwatch_tasks_finished_total counter"
        );
        for (outcome, value) in
            [("completed", tasks.completed), ("failed", tasks.failed), ("cancelled", tasks.cancelled)]
        {
            let _ = writeln!(out, "fleetwatch_tasks_finished_total{{outcome=\"{outcome}\"}} {value}");
        }
        let _ = writeln!(
            out,
            "# TYPE fleetwatch_throughput_per_minute gauge\nfleetwatch_throughput_per_minute {}",
            system.throughput_per_min
        );
        let _ = writeln!(
            out,
            "# TYPE fleetwatch_queue_time_p95_seconds gauge\nfleetwatch_queue_time_p95_seconds {}",
            system.queue_time_ms.p95 / 1000.0
        );
        let _ = writeln!(
            out,
            "# TYPE fleetwatch_scheduling_efficiency gauge\nfleetwatch_scheduling_efficiency {}",
            system.scheduling_efficiency
        );
    }
    let firing = snapshot.firing.alerts.iter().filter(|alert| alert.state == AlertState::Firing).count();
    let _ = writeln!(out, "# TYPE fleetwatch_alerts_firing gauge\nfleetwatch_alerts_firing {firing}");
    let mut typed = std::collections::BTreeSet::new();
    for report in snapshot.services.values() {
        for (name, value) in &report.counters {
            if typed.insert(name.clone()) {
                let _ = writeln!(out, "# TYPE {name} counter");
            }
            let _ = writeln!(out, "{name}{{instance=\"{}\"}} {value}", report.instance);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
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
