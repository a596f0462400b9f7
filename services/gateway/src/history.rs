//! The history endpoints: each a query the archiver answers over NATS
//! (`<prefix>.query.archive.<name>`), with the seeds' parameters (`start_time`, `end_time`
//! as RFC 3339 or ms, `interval`, `metrics` as a comma list) and `?format=csv|parquet`,
//! streamed. Bad parameters answer 400 with the reason, unknown ids 404, an archiver that
//! does not answer 503, all as JSON.

use crate::api::{ErrorBody, error};
use crate::live::Live;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Live> {
    OpenApiRouter::new()
        .routes(routes!(system))
        .routes(routes!(worker))
        .routes(routes!(task))
        .routes(routes!(task_stats))
        .routes(routes!(task_distribution))
        .routes(routes!(alerts))
        .routes(routes!(alert_stats))
        .routes(routes!(events))
        .routes(routes!(fleet))
}

/// How long the gateway waits for the archiver: past its own query deadline.
const WAIT: Duration = Duration::from_secs(15);

/// The query parameters of every history endpoint, as given.
type RawParams = BTreeMap<String, String>;

/// A request refused, answered as [`error`] (small, so results carrying it stay small).
pub(crate) struct Refused(pub StatusCode, pub String);

/// How the archiver and the processor refuse a query: `{"error", "status"}`.
#[derive(Deserialize)]
pub(crate) struct ArchiveRefusal {
    error: String,
    status: Option<u16>,
}

impl From<ArchiveRefusal> for Refused {
    fn from(refusal: ArchiveRefusal) -> Self {
        let status = StatusCode::from_u16(refusal.status.unwrap_or(500)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Refused(status, refusal.error)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

pub(crate) fn refused(status: StatusCode, reason: &str) -> Refused {
    Refused(status, reason.to_owned())
}

/// `interval` as `30s`, `5m`, `1h`, `1d` or ms.
fn interval_ms(text: &str) -> Option<i64> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: i64 = number.parse().ok()?;
    let scale = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(scale).filter(|ms| *ms > 0)
}

/// The archiver's parameters from the endpoint's (and `fixed` ones from the path).
fn params(raw: &RawParams, fixed: &[(&str, &str)]) -> Result<Map<String, Value>, Refused> {
    let mut params = Map::new();
    for (key, value) in raw.iter().map(|(key, value)| (key.as_str(), value.as_str())).chain(fixed.iter().copied()) {
        let bad = |what: &str| refused(StatusCode::BAD_REQUEST, &format!("{key}={value:?} is not {what}"));
        let converted = match key {
            "start_time" | "end_time" | "at" | "time" => {
                json!(shared::time::parse_time(value).ok_or_else(|| bad("a time (RFC 3339 or ms since the epoch)"))?)
            }
            "interval" => json!(interval_ms(value).ok_or_else(|| bad("an interval such as 30s, 5m, 1h or ms"))?),
            "limit" => json!(value.parse::<u64>().map_err(|_| bad("a number"))?),
            "metrics" => json!(value.split(',').map(str::trim).filter(|metric| !metric.is_empty()).collect::<Vec<_>>()),
            "format" => continue,
            "worker_id" | "task_id" | "type" | "state" | "severity" | "rule" | "by" | "cursor" | "resolution"
            | "status" | "model" | "family" | "hardware" | "search" | "sort" | "order" => json!(value),
            other => return Err(refused(StatusCode::BAD_REQUEST, &format!("unknown parameter {other:?}"))),
        };
        let key = match key {
            "interval" => "interval_ms",
            "at" => "time",
            other => other,
        };
        params.insert(key.to_owned(), converted);
    }
    Ok(params)
}

/// Asks the archiver; its refusals keep their status.
pub(crate) async fn ask(live: &Live, name: &str, params: &Map<String, Value>) -> Result<Value, Refused> {
    let Some(nats) = &live.nats else {
        return Err(refused(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS"));
    };
    let subject = nats.subjects.query(&format!("archive.{name}"));
    let body = serde_json::to_vec(params).unwrap_or_default();
    let reply = match tokio::time::timeout(WAIT, nats.client.request(subject, body.into())).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) => {
            return Err(refused(StatusCode::SERVICE_UNAVAILABLE, &format!("the archiver does not answer: {err}")));
        }
        Err(_) => return Err(refused(StatusCode::SERVICE_UNAVAILABLE, "the archiver did not answer in time")),
    };
    if let Ok(refusal) = serde_json::from_slice::<ArchiveRefusal>(&reply.payload) {
        return Err(refusal.into());
    }
    serde_json::from_slice(&reply.payload)
        .map_err(|err| refused(StatusCode::BAD_GATEWAY, &format!("the archiver's answer is not JSON: {err}")))
}

/// A query answered as JSON (after `then`), or streamed as CSV or Parquet when `format` asks.
async fn answer(
    live: &Live,
    name: &str,
    raw: &RawParams,
    fixed: &[(&str, &str)],
    then: impl FnOnce(Value) -> Result<Value, Refused>,
) -> Response {
    let params = match params(raw, fixed) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    match raw.get("format").map(String::as_str) {
        None | Some("json") => match ask(live, name, &params).await.and_then(then) {
            Ok(answer) => axum::Json(answer).into_response(),
            Err(refusal) => refusal.into_response(),
        },
        Some(format @ ("csv" | "parquet")) => export(live, name, params, format).await,
        Some(other) => error(StatusCode::BAD_REQUEST, &format!("format={other:?}: use json, csv or parquet")),
    }
}

fn as_is(answer: Value) -> Result<Value, Refused> {
    Ok(answer)
}

/// Streams an export: the archiver sends it in numbered chunks to an inbox of ours.
pub(crate) async fn export(live: &Live, name: &str, params: Map<String, Value>, format: &str) -> Response {
    let Some(nats) = live.nats.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS");
    };
    let inbox = nats.client.new_inbox();
    let mut chunks = match nats.client.subscribe(inbox.clone()).await {
        Ok(chunks) => chunks,
        Err(err) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("subscribing for the export: {err}")),
    };
    let request = json!({ "query": name, "params": params, "format": format });
    let subject = nats.subjects.query("archive.export");
    let body = serde_json::to_vec(&request).unwrap_or_default();
    if let Err(err) = nats.client.publish_with_reply(subject, inbox, body.into()).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, &format!("asking the archiver: {err}"));
    }
    // The first message says whether the export is coming: an error is answered as one.
    let first = match tokio::time::timeout(WAIT, chunks.next()).await {
        Ok(Some(first)) => first,
        _ => return error(StatusCode::SERVICE_UNAVAILABLE, "the archiver does not answer"),
    };
    let header = |message: &async_nats::Message, name: &str| {
        message.headers.as_ref().and_then(|headers| headers.get(name)).map(|value| value.to_string())
    };
    if let Some(reason) = header(&first, "Fleetwatch-Error") {
        let status = header(&first, "Fleetwatch-Status").and_then(|status| status.parse().ok()).unwrap_or(500);
        return error(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &reason);
    }
    let stream =
        futures::stream::unfold((Some(first), chunks, 0u64), move |(pending, mut chunks, expected)| async move {
            let message = match pending {
                Some(message) => message,
                None => tokio::time::timeout(WAIT, chunks.next()).await.ok().flatten()?,
            };
            let headers = message.headers.clone().unwrap_or_default();
            if headers.get("Fleetwatch-End").is_some() {
                return None;
            }
            let number = headers.get("Fleetwatch-Chunk").and_then(|value| value.to_string().parse::<u64>().ok());
            if number != Some(expected) {
                // A chunk went missing (core NATS): end the body short rather than send it wrong.
                return Some((Err(std::io::Error::other("export chunk missing")), (None, chunks, expected)));
            }
            Some((Ok::<_, std::io::Error>(message.payload), (None, chunks, expected + 1)))
        });
    let (content_type, extension) = match format {
        "csv" => ("text/csv; charset=utf-8", "csv"),
        _ => ("application/vnd.apache.parquet", "parquet"),
    };
    let disposition = format!("attachment; filename=\"{}.{extension}\"", name.replace('.', "-"));
    (
        [(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The parameters of the history endpoints, as the seeds name them.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SeriesParams {
    /// RFC 3339 or ms since the epoch; default an hour before `end_time`.
    start_time: Option<String>,
    /// RFC 3339 or ms; default now.
    end_time: Option<String>,
    /// Bucket width: `30s`, `5m`, `1h`, `1d` or ms; default about 1,000 points.
    interval: Option<String>,
    /// Comma list of metric names (default all).
    metrics: Option<String>,
    /// `raw`, `minute` or `hour` (default by the range: raw to 6 h, minutes to 3 days).
    resolution: Option<String>,
    /// `json` (default), `csv` or `parquet` (streamed, every bucket).
    format: Option<String>,
}

/// One metric's buckets: arrays beside `time`.
#[derive(Serialize, ToSchema)]
struct SeriesStats {
    min: Vec<Option<f64>>,
    mean: Vec<Option<f64>>,
    max: Vec<Option<f64>>,
    last: Vec<Option<f64>>,
}

/// A metric history.
#[derive(Serialize, ToSchema)]
struct Series {
    /// `raw`, `minute` or `hour`.
    resolution: String,
    interval_ms: i64,
    start_time: Option<i64>,
    end_time: Option<i64>,
    /// Each bucket's start, ms.
    time: Vec<i64>,
    metrics: BTreeMap<String, SeriesStats>,
}

/// A page of archived rows.
#[derive(Serialize, ToSchema)]
struct Rows {
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
    total: u64,
    truncated: bool,
    next_cursor: Option<String>,
}

/// Historical system metrics
///
/// The system's figures over a range, each bucket's min, mean, max and last.
#[utoipa::path(get, path = "/api/metrics/system/history", tag = "history", params(SeriesParams),
    responses((status = 200, body = Series), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn system(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    answer(&live, "system.history", &raw, &[], as_is).await
}

/// Historical metrics for one worker
///
/// A worker's figures over a range: CPU, GPU, memory, network, tasks per hour, success
/// rate, mean task time, health.
#[utoipa::path(get, path = "/api/metrics/workers/{worker_id}/history", tag = "history",
    params(("worker_id" = String, Path, description = "The worker's id"), SeriesParams),
    responses((status = 200, body = Series), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn worker(State(live): State<Live>, Path(worker_id): Path<String>, Query(raw): Query<RawParams>) -> Response {
    if let Err(err) = shared::subjects::check_token("worker_id", &worker_id) {
        return error(StatusCode::BAD_REQUEST, &err.to_string());
    }
    let known = live.read().workers.workers.contains_key(&worker_id);
    answer(&live, "worker.history", &raw, &[("worker_id", &worker_id)], |answer| {
        // A worker with no history in the range and unknown now is no worker at all.
        let empty = answer["time"].as_array().is_some_and(Vec::is_empty);
        match empty && !known {
            true => Err(refused(
                StatusCode::NOT_FOUND,
                &format!("no worker {worker_id:?}: not live, no history in the range"),
            )),
            false => Ok(answer),
        }
    })
    .await
}

/// Metrics for one task
///
/// The task's whole life from the archive: every event, oldest first, and each run that
/// finished. Where task detail is not kept (`archiver.enable_task_detail_tracking`), the
/// runs alone.
#[utoipa::path(get, path = "/api/metrics/tasks/{task_id}", tag = "history",
    params(("task_id" = String, Path, description = "The task's id")),
    responses((status = 200, description = "`{task_id, events, runs}`"), (status = 404, body = ErrorBody)))]
pub async fn task(State(live): State<Live>, Path(task_id): Path<String>, Query(raw): Query<RawParams>) -> Response {
    if let Err(err) = shared::subjects::check_token("task_id", &task_id) {
        return error(StatusCode::BAD_REQUEST, &err.to_string());
    }
    if !raw.is_empty() {
        return error(StatusCode::BAD_REQUEST, "this endpoint takes no parameters");
    }
    let mut runs_params = Map::new();
    runs_params.insert("task_id".into(), json!(task_id));
    runs_params.insert("sort".into(), json!("finished_at"));
    runs_params.insert("order".into(), json!("asc"));
    let mut events_params = Map::new();
    events_params.insert("task_id".into(), json!(task_id));
    let (events, runs) = tokio::join!(ask(&live, "task", &events_params), ask(&live, "tasks.list", &runs_params));
    let runs = match runs {
        Ok(answer) => answer["items"].clone(),
        Err(refusal) => return refusal.into_response(),
    };
    let events = match events {
        Ok(answer) => answer["events"].clone(),
        Err(Refused(StatusCode::NOT_FOUND, _)) => json!([]),
        Err(refusal) => return refusal.into_response(),
    };
    if events.as_array().is_none_or(Vec::is_empty) && runs.as_array().is_none_or(Vec::is_empty) {
        return error(StatusCode::NOT_FOUND, &format!("no task {task_id:?} in the archive"));
    }
    axum::Json(json!({ "task_id": task_id, "events": events, "runs": runs })).into_response()
}

/// Filters of the finished-task statistics.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct StatsParams {
    /// RFC 3339 or ms; default an hour before `end_time`.
    start_time: Option<String>,
    /// RFC 3339 or ms; default now.
    end_time: Option<String>,
    /// `family` (default), `model`, `hardware`, `worker_id` or `error`.
    by: Option<String>,
    /// `completed` or `failed`.
    status: Option<String>,
    worker_id: Option<String>,
    model: Option<String>,
    family: Option<String>,
    hardware: Option<String>,
    format: Option<String>,
}

/// Aggregated task statistics
///
/// Finished tasks over a range by family, model, hardware, worker or error: completed,
/// failed, success rate, mean queue and run time, throughput.
#[utoipa::path(get, path = "/api/metrics/tasks/stats", tag = "history", params(StatsParams),
    responses((status = 200, body = Rows), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn task_stats(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    answer(&live, "tasks.stats", &raw, &[], as_is).await
}

/// Task execution time distribution
///
/// How long completed tasks ran over a range: a count per bucket (`le_ms`, null past the
/// last bound), with the count, mean and p50, p95, p99; filtered as the statistics are.
#[utoipa::path(get, path = "/api/metrics/tasks/distribution", tag = "history", params(StatsParams),
    responses((status = 200, description = "`{buckets: [{le_ms, count}], bounds_ms, count, mean_ms, p50_ms, p95_ms, p99_ms}`"),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn task_distribution(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    answer(&live, "tasks.distribution", &raw, &[], as_is).await
}

/// Filters of the alert history.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AlertParams {
    /// `firing` or `resolved`.
    state: Option<String>,
    /// `info`, `warning` or `critical`.
    severity: Option<String>,
    rule: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    order: Option<String>,
    /// 1 to 1000, default 100.
    limit: Option<usize>,
    cursor: Option<String>,
    format: Option<String>,
}

/// Alert history
///
/// The alerts open now (pending and firing, live) and every change in the archive, filtered
/// and paged. While the archive cannot answer, the open alerts are still served, with
/// `history_unavailable` saying why the history is missing.
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(AlertParams),
    responses((status = 200, description = "`{firing, items, total, truncated, next_cursor}`"), (status = 400, body = ErrorBody)))]
pub async fn alerts(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    let firing = json!(live.read().firing.alerts);
    if raw.get("format").is_some_and(|format| format != "json") {
        return answer(&live, "alerts", &raw, &[], as_is).await;
    }
    let params = match params(&raw, &[]) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    match ask(&live, "alerts", &params).await {
        Ok(mut answer) => {
            answer["firing"] = firing;
            axum::Json(answer).into_response()
        }
        Err(Refused(StatusCode::SERVICE_UNAVAILABLE, reason)) => axum::Json(json!({
            "firing": firing, "items": [], "total": 0, "truncated": false, "history_unavailable": reason,
        }))
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Alert statistics
///
/// The alerts that fired in a range, each once: a timeline by severity and counts by rule,
/// severity and source.
#[utoipa::path(get, path = "/api/alerts/stats", tag = "alerts",
    params(("start_time" = Option<String>, Query, description = "RFC 3339 or ms; default an hour before end_time"),
        ("end_time" = Option<String>, Query, description = "RFC 3339 or ms; default now"),
        ("interval" = Option<String>, Query, description = "Bucket width: 30s, 5m, 1h or ms")),
    responses((status = 200, description = "`{interval_ms, timeline: [{time, severity, count}], by_rule, by_severity, by_source}`"),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn alert_stats(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    answer(&live, "alerts.stats", &raw, &[], as_is).await
}

/// Filters of the event history.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct EventParams {
    worker_id: Option<String>,
    task_id: Option<String>,
    /// An event type (`task_failed`, `recovery_action`, ...).
    #[param(rename = "type")]
    kind: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    /// `asc` (stream order, the default) or `desc` (newest first).
    order: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    format: Option<String>,
}

/// Event history
///
/// The archived events, filtered by worker, task, type and time, paged in stream order.
#[utoipa::path(get, path = "/api/events", tag = "history", params(EventParams),
    responses((status = 200, body = Rows), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn events(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    answer(&live, "events", &raw, &[], as_is).await
}

/// The fleet at a past instant
///
/// Workers with status and load, tasks by status and the alerts firing, rebuilt from an
/// archived snapshot and the events after it by the processor's own fold.
#[utoipa::path(get, path = "/api/fleet", tag = "history",
    params(("at" = String, Query, description = "RFC 3339 or ms"), ("limit" = Option<usize>, Query, description = "Workers listed, 1 to 1000"),
        ("cursor" = Option<String>, Query, description = "A worker id: list those after it")),
    responses((status = 200, description = "`{at, tick, events_seq, system, workers, alerts_firing}`"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn fleet(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    if !raw.contains_key("at") {
        return error(StatusCode::BAD_REQUEST, "at=<time> is needed (RFC 3339 or ms since the epoch)");
    }
    answer(&live, "fleet.at", &raw, &[], as_is).await
}
