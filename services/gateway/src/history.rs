//! The history endpoints: each a query the archiver answers over NATS
//! (`<prefix>.query.archive.<name>`), with the seeds' parameters (`start_time`, `end_time`
//! as RFC 3339 or ms, `interval`, `metrics` as a comma list) and `?format=csv|parquet`,
//! streamed. Bad parameters answer 400 with the reason, unknown ids 404, an archiver that
//! does not answer 503, all as JSON.

use crate::api::error;
use crate::live::Live;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long the gateway waits for the archiver: past its own query deadline.
const WAIT: Duration = Duration::from_secs(15);

/// The query parameters of every history endpoint, as given.
type RawParams = BTreeMap<String, String>;

/// A request refused, answered as [`error`] (small, so results carrying it stay small).
pub(crate) struct Refused(StatusCode, String);

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
            "worker_id" | "task_id" | "type" | "state" | "severity" | "rule" | "by" | "cursor" | "resolution" => {
                json!(value)
            }
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
    let answer: Value = serde_json::from_slice(&reply.payload)
        .map_err(|err| refused(StatusCode::BAD_GATEWAY, &format!("the archiver's answer is not JSON: {err}")))?;
    if let Some(reason) = answer.get("error").and_then(Value::as_str) {
        let status = answer.get("status").and_then(Value::as_u64).unwrap_or(500);
        let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(refused(status, reason));
    }
    Ok(answer)
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
async fn export(live: &Live, name: &str, params: Map<String, Value>, format: &str) -> Response {
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

/// `GET /api/metrics/system/history`
pub async fn system(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    answer(&live, "system.history", &raw, &[], as_is).await
}

/// `GET /api/metrics/workers/{worker_id}/history`
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

/// `GET /api/metrics/tasks/{task_id}`: the task's whole life from the archive.
pub async fn task(State(live): State<Live>, Path(task_id): Path<String>, Query(raw): Query<RawParams>) -> Response {
    if let Err(err) = shared::subjects::check_token("task_id", &task_id) {
        return error(StatusCode::BAD_REQUEST, &err.to_string());
    }
    answer(&live, "task", &raw, &[("task_id", &task_id)], as_is).await
}

/// `GET /api/metrics/tasks/stats`
pub async fn task_stats(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    answer(&live, "tasks.stats", &raw, &[], as_is).await
}

/// `GET /api/alerts`: the alert history (every change), filtered and paged, with the open
/// alerts beside it. The open alerts are live: while the archive cannot answer they are
/// still served, with `history_unavailable` saying why the history is missing.
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

/// `GET /api/events`
pub async fn events(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    answer(&live, "events", &raw, &[], as_is).await
}

/// `GET /api/fleet?at=<time>`: the fleet as it was at that instant.
pub async fn fleet(State(live): State<Live>, Query(raw): Query<RawParams>) -> Response {
    if !raw.contains_key("at") {
        return error(StatusCode::BAD_REQUEST, "at=<time> is needed (RFC 3339 or ms since the epoch)");
    }
    answer(&live, "fleet.at", &raw, &[], as_is).await
}
