//! Alerts and silences over HTTP: what people and programs do to alerts becomes an event.
//!
//! - `POST /api/alerts` `{level, title, message?, source?, metrics?}`: a custom alert (the
//!   monitoring guide's `_add_alert`), `alert_raised`; 202 `{"id"}`.
//! - `GET /api/alerts/{alert_id}`: the open alert, else its latest revision in the archive.
//! - `POST /api/alerts/{alert_id}/ack` and `/resolve` `{by, comment?}`: only for an open
//!   alert (404 otherwise); 202 `{"id", "alert_id"}`.
//! - `GET /api/silences`; `POST /api/silences` `{matchers: [{name, op?, value}], starts_at?,
//!   ends_at? | duration_secs?, by, comment?}` (times as ms or RFC 3339; start defaults to
//!   now), 201 `{"silence_id", "id"}`; `DELETE /api/silences/{silence_id}?by=<who>` (or a
//!   JSON body `{by}`), 202 `{"id"}`.
//!
//! The gateway never writes the event stream itself: it asks the collector on
//! `<prefix>.control.alerts`, which stores the event and answers with its id. The gateway
//! checks each event first, so a person's typo is a 400 here and not a dead letter there.
//! With users or tokens configured, `by` is who signed in (or the token's name), whatever
//! the body says; with none, it is whoever the caller says it is, and must be given.

use crate::api::ErrorBody;
use crate::auth::{Principal, Via};
use crate::history::{Refused, ask, refused};
use crate::live::Live;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use shared::alert::{Alert, Silence};
use shared::alert::{ControlReply, Matcher, Severity};
use shared::event::Event;
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long the gateway waits for the collector to store an event.
const WAIT: Duration = Duration::from_secs(5);
/// Pages of the archive's alert changes read to find a closed alert, 1000 changes each.
const ARCHIVE_PAGES: usize = 10;

/// What every handler here answers: a response, or a refusal as `{"error": reason}`.
type Answer = Result<Response, Refused>;

/// The routes above, merged into [`crate::api::api`] (`GET /api/alerts`, the history, is in
/// `history`).
pub fn routes() -> OpenApiRouter<Live> {
    OpenApiRouter::new()
        .routes(routes!(raise))
        .routes(routes!(one))
        .routes(routes!(acknowledge))
        .routes(routes!(resolve))
        .routes(routes!(silences, create_silence))
        .routes(routes!(delete_silence))
}

/// What a stored change is answered with: the event's id (and the alert's or silence's).
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
struct Stored {
    id: String,
    alert_id: Option<String>,
    silence_id: Option<String>,
}

/// A JSON body, or the reason it is not one: 415 without the JSON content type (which keeps
/// other sites' forms from posting here), else 400.
fn body<T>(parsed: Result<Json<T>, JsonRejection>) -> Result<T, Refused> {
    parsed.map(|Json(value)| value).map_err(rejected)
}

fn rejected(rejection: JsonRejection) -> Refused {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON with Content-Type: application/json")
        }
        too_large if too_large.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            refused(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than the 64 KiB a write may carry")
        }
        other => refused(StatusCode::BAD_REQUEST, &other.body_text()),
    }
}

/// Checks the event, has the collector store it and returns the stored event's id.
async fn store(live: &Live, event: Event) -> Result<String, Refused> {
    if let Err(invalid) = shared::ingest::validate(&event) {
        return Err(refused(StatusCode::BAD_REQUEST, &invalid.to_string()));
    }
    let unavailable = |reason: &str| refused(StatusCode::SERVICE_UNAVAILABLE, reason);
    let Some(nats) = &live.nats else { return Err(unavailable("not connected to NATS")) };
    let payload = serde_json::to_vec(&event).map_err(|err| unavailable(&format!("encoding the event: {err}")))?;
    let subject = nats.subjects.alert_control();
    let reply = match tokio::time::timeout(WAIT, nats.client.request(subject.clone(), payload.into())).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) if err.kind() == async_nats::client::RequestErrorKind::NoResponders => {
            return Err(unavailable(&format!("no collector answers on {subject}: is the collector running?")));
        }
        Ok(Err(err)) => return Err(unavailable(&format!("asking the collector: {err}"))),
        Err(_) => return Err(unavailable("the collector did not answer in time; the event may still be stored")),
    };
    match serde_json::from_slice::<ControlReply>(&reply.payload) {
        Ok(ControlReply::Stored { id }) => Ok(id),
        Ok(ControlReply::Refused { reason }) => Err(refused(StatusCode::BAD_REQUEST, &reason)),
        // `{"error": ...}`: the collector could not store it; a retry may.
        Err(_) => {
            let answer: Option<Value> = serde_json::from_slice(&reply.payload).ok();
            match answer.as_ref().and_then(|answer| answer.get("error")).and_then(Value::as_str) {
                Some(reason) => Err(unavailable(&format!("the collector did not store it: {reason}"))),
                None => Err(refused(StatusCode::BAD_GATEWAY, "the collector's answer is not a control reply")),
            }
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Raise {
    level: Severity,
    title: String,
    #[serde(default)]
    message: String,
    /// Who raises it, a subject token. Default `api`.
    #[serde(default = "api")]
    source: String,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
}

fn api() -> String {
    "api".into()
}

/// Raise an alert
///
/// A program's own alert (the monitoring guide's `_add_alert`): stored as an event, it
/// fires at once and stays until resolved by hand.
#[utoipa::path(post, path = "/api/alerts", tag = "alerts", request_body = Raise,
    responses((status = 202, body = Stored), (status = 400, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn raise(State(live): State<Live>, raised: Result<Json<Raise>, JsonRejection>) -> Answer {
    let raise = body(raised)?;
    let event = Event::AlertRaised {
        source: raise.source,
        level: raise.level,
        title: raise.title,
        message: raise.message,
        metrics: raise.metrics,
    };
    let id = store(&live, event).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}

/// Who a change is recorded as: the caller the guard identified, else the `by` they gave.
fn who(caller: Option<&Principal>, given: Option<String>) -> Result<String, Refused> {
    match (caller, given) {
        (Some(principal), _) if principal.via != Via::Open => Ok(principal.name.clone()),
        (_, Some(by)) if !by.trim().is_empty() => Ok(by),
        _ => Err(refused(StatusCode::BAD_REQUEST, "say who does it: \"by\"")),
    }
}

/// `{by?, comment?}`: who did it (needed when nobody signs in) and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Mark {
    by: Option<String>,
    #[serde(default)]
    comment: String,
}

/// Acknowledges or resolves an open alert.
async fn mark(
    live: Live,
    caller: Option<Extension<Principal>>,
    alert_id: String,
    marked: Result<Json<Mark>, JsonRejection>,
    resolve: bool,
) -> Answer {
    let Mark { by, comment } = body(marked)?;
    let by = who(caller.as_deref(), by)?;
    let open = live.read().firing.alerts.iter().any(|alert| alert.alert_id == alert_id);
    if !open {
        return Err(refused(StatusCode::NOT_FOUND, &format!("no open alert {alert_id:?}: it is resolved, or unknown")));
    }
    let event = match resolve {
        true => Event::AlertResolved { alert_id: alert_id.clone(), by, comment },
        false => Event::AlertAcknowledged { alert_id: alert_id.clone(), by, comment },
    };
    let id = store(&live, event).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "alert_id": alert_id }))).into_response())
}

/// Acknowledge an open alert
#[utoipa::path(post, path = "/api/alerts/{alert_id}/ack", tag = "alerts", request_body = Mark,
    params(("alert_id" = String, Path, description = "The alert occurrence")),
    responses((status = 202, body = Stored), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn acknowledge(
    State(live): State<Live>,
    caller: Option<Extension<Principal>>,
    Path(alert_id): Path<String>,
    marked: Result<Json<Mark>, JsonRejection>,
) -> Answer {
    mark(live, caller, alert_id, marked, false).await
}

/// Resolve an open alert by hand
#[utoipa::path(post, path = "/api/alerts/{alert_id}/resolve", tag = "alerts", request_body = Mark,
    params(("alert_id" = String, Path, description = "The alert occurrence")),
    responses((status = 202, body = Stored), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn resolve(
    State(live): State<Live>,
    caller: Option<Extension<Principal>>,
    Path(alert_id): Path<String>,
    marked: Result<Json<Mark>, JsonRejection>,
) -> Answer {
    mark(live, caller, alert_id, marked, true).await
}

/// One alert
///
/// The open alert as the alerter holds it now, else the latest revision the archive has.
#[utoipa::path(get, path = "/api/alerts/{alert_id}", tag = "alerts",
    params(("alert_id" = String, Path, description = "The alert occurrence")),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody)))]
async fn one(State(live): State<Live>, Path(alert_id): Path<String>) -> Answer {
    let open = live.read().firing.alerts.iter().find(|alert| alert.alert_id == alert_id).cloned();
    if let Some(alert) = open {
        return Ok(Json(alert).into_response());
    }
    match archived(&live, &alert_id).await? {
        Some(alert) => Ok(Json(alert).into_response()),
        None => Err(refused(StatusCode::NOT_FOUND, &format!("no alert {alert_id:?}: not open, not in the archive"))),
    }
}

/// The latest archived revision of `alert_id`. The archive's `alerts` query has no filter
/// by id, so this reads its changes from the alert's start (the id ends with it) and keeps
/// the last match, over at most [`ARCHIVE_PAGES`] pages.
async fn archived(live: &Live, alert_id: &str) -> Result<Option<Value>, Refused> {
    let mut params = Map::new();
    params.insert("limit".into(), json!(1000));
    if let Some(started_at) = alert_id.rsplit('-').next().and_then(|tail| tail.parse::<i64>().ok()) {
        params.insert("start_time".into(), json!(started_at));
    }
    let mut latest = None;
    for _ in 0..ARCHIVE_PAGES {
        let answer = ask(live, "alerts", &params).await?;
        let items = answer["items"].as_array().map(Vec::as_slice).unwrap_or_default();
        if let Some(found) = items.iter().rev().find(|item| item["alert_id"] == alert_id) {
            latest = Some(found.clone());
        }
        match answer["next_cursor"].as_str() {
            Some(cursor) => params.insert("cursor".into(), json!(cursor)),
            None => break,
        };
    }
    // Rows archived before the whole alert was kept have only its columns.
    Ok(latest.map(|item| match item.get("alert") {
        Some(alert) if alert.is_object() => alert.clone(),
        _ => item,
    }))
}

/// Silences
///
/// The silences not yet over, as the alerter last wrote them.
#[utoipa::path(get, path = "/api/silences", tag = "alerts", responses((status = 200, description = "`{time, silences}`", body = Vec<Silence>)))]
async fn silences(State(live): State<Live>) -> Response {
    let snapshot = live.read();
    Json(json!({ "time": snapshot.silences.time, "silences": snapshot.silences.silences })).into_response()
}

/// A time as ms since the epoch or RFC 3339.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum When {
    Millis(i64),
    Text(String),
}

impl When {
    fn millis(&self, field: &str) -> Result<i64, Refused> {
        match self {
            Self::Millis(ms) => Ok(*ms),
            Self::Text(text) => shared::time::parse_time(text).ok_or_else(|| {
                refused(StatusCode::BAD_REQUEST, &format!("{field} {text:?} is not a time (RFC 3339 or ms)"))
            }),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    matchers: Vec<Matcher>,
    starts_at: Option<When>,
    ends_at: Option<When>,
    duration_secs: Option<u64>,
    by: Option<String>,
    #[serde(default)]
    comment: String,
}

impl NewSilence {
    /// A fresh silence id and the event, its window in ms.
    fn event(self, now: i64, caller: Option<&Principal>) -> Result<(String, Event), Refused> {
        let bad = |reason: &str| refused(StatusCode::BAD_REQUEST, reason);
        let starts_at = match &self.starts_at {
            Some(when) => when.millis("starts_at")?,
            None => now,
        };
        let ends_at = match (&self.ends_at, self.duration_secs) {
            (Some(when), None) => when.millis("ends_at")?,
            (None, Some(secs)) => i64::try_from(secs)
                .ok()
                .and_then(|secs| secs.checked_mul(1000))
                .and_then(|ms| starts_at.checked_add(ms))
                .ok_or_else(|| bad("duration_secs is too large"))?,
            (Some(_), Some(_)) => return Err(bad("give ends_at or duration_secs, not both")),
            (None, None) => return Err(bad("ends_at or duration_secs is needed")),
        };
        let silence_id = uuid::Uuid::now_v7().to_string();
        let event = Event::SilenceCreated {
            silence_id: silence_id.clone(),
            matchers: self.matchers,
            starts_at,
            ends_at,
            by: who(caller, self.by)?,
            comment: self.comment,
        };
        Ok((silence_id, event))
    }
}

/// Silence alerts
///
/// Alerts whose labels match every matcher notify nobody between `starts_at` (default
/// now) and `ends_at` (or `duration_secs` after the start); they still show.
#[utoipa::path(post, path = "/api/silences", tag = "alerts", request_body = NewSilence,
    responses((status = 201, body = Stored), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_silence(
    State(live): State<Live>,
    caller: Option<Extension<Principal>>,
    created: Result<Json<NewSilence>, JsonRejection>,
) -> Answer {
    let (silence_id, event) = body(created)?.event(shared::now_ms(), caller.as_deref())?;
    let id = store(&live, event).await?;
    Ok((StatusCode::CREATED, Json(json!({ "silence_id": silence_id, "id": id }))).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Deleter {
    by: Option<String>,
}

/// End a silence
#[utoipa::path(delete, path = "/api/silences/{silence_id}", tag = "alerts",
    params(("silence_id" = String, Path, description = "The silence"), ("by" = Option<String>, Query, description = "Who ends it (or a JSON body `{by}`)")),
    responses((status = 202, body = Stored), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn delete_silence(
    State(live): State<Live>,
    caller: Option<Extension<Principal>>,
    Path(silence_id): Path<String>,
    query: Result<Query<Deleter>, QueryRejection>,
    deleter: Result<Option<Json<Deleter>>, JsonRejection>,
) -> Answer {
    let from_query = query.map_err(|rejection| refused(StatusCode::BAD_REQUEST, &rejection.body_text()))?.0.by;
    let from_body = deleter.map_err(rejected)?.and_then(|Json(deleter)| deleter.by);
    let by = who(caller.as_deref(), from_body.or(from_query))
        .map_err(|_| refused(StatusCode::BAD_REQUEST, "say who deletes it: ?by=<who> or {\"by\": ...}"))?;
    let deleted = {
        let snapshot = live.read();
        let known = snapshot.silences.silences.iter().find(|silence| silence.silence_id == silence_id);
        known.map(|silence| silence.deleted.is_some())
    };
    match deleted {
        None => return Err(refused(StatusCode::NOT_FOUND, &format!("no silence {silence_id:?}: unknown, or over"))),
        Some(true) => {
            return Err(refused(StatusCode::NOT_FOUND, &format!("silence {silence_id:?} is already deleted")));
        }
        Some(false) => {}
    }
    let id = store(&live, Event::SilenceDeleted { silence_id, by }).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use shared::alert::{Alert, AlertState, Silence};
    use tower::ServiceExt;

    async fn send(live: &Live, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, |body| Body::from(body.to_owned()))).expect("request");
        let response = crate::api::tests::open_router(live).oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    fn offline() -> Live {
        Live::offline()
    }

    fn reason(body: &Value) -> &str {
        body["error"].as_str().expect("an error reason")
    }

    #[tokio::test]
    async fn bad_bodies_are_refused_with_the_reason() {
        let live = offline();
        let (code, body) = send(&live, "POST", "/api/alerts", Some(r#"{"level":"warning","source":"x"}"#)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(reason(&body).contains("title"), "{body}");
        let (code, body) = send(&live, "POST", "/api/alerts", Some(r#"{"level":"urgent","title":"t"}"#)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(reason(&body).contains("urgent"), "{body}");
        let (code, _) = send(&live, "POST", "/api/alerts", Some("{oops")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        let (code, body) = send(&live, "POST", "/api/alerts", Some(r#"{"level":"info","title":"  "}"#)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "checked before it is sent: {body}");
        let plain = Request::post("/api/alerts").body(Body::from(r#"{"level":"info","title":"t"}"#)).expect("request");
        let response = crate::api::tests::open_router(&live).oneshot(plain).await.expect("response");
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "other sites' forms cannot post here");

        let silence = |extra: &str| format!(r#"{{"matchers":[{{"name":"rule","value":"x"}}],"by":"ana"{extra}}}"#);
        for (extra, needle) in [
            (r#","starts_at":2000,"ends_at":1000"#, "ends_at"),
            ("", "ends_at or duration_secs"),
            (r#","ends_at":"tomorrow""#, "tomorrow"),
            (r#","duration_secs":60,"ends_at":5"#, "not both"),
        ] {
            let (code, body) = send(&live, "POST", "/api/silences", Some(&silence(extra))).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{extra}: {body}");
            assert!(reason(&body).contains(needle), "{extra}: {body}");
        }
        let regex = r#"{"matchers":[{"name":"rule","op":"=~","value":"("}],"by":"ana","duration_secs":60}"#;
        let (code, body) = send(&live, "POST", "/api/silences", Some(regex)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(reason(&body).contains("regex"), "{body}");
    }

    #[tokio::test]
    async fn only_open_alerts_and_known_silences_can_be_marked() {
        let live = offline();
        let (code, body) = send(&live, "POST", "/api/alerts/nope-1/ack", Some(r#"{"by":"ana"}"#)).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
        let (code, _) = send(&live, "POST", "/api/alerts/nope-1/resolve", Some(r#"{"by":"ana"}"#)).await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        let (code, _) = send(&live, "DELETE", "/api/silences/s-1?by=ana", None).await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        let (code, body) = send(&live, "DELETE", "/api/silences/s-1", None).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "nobody deletes it: {body}");

        let alert = Alert {
            alert_id: "worker_overloaded-w1-5".into(),
            fingerprint: "worker_overloaded/w1".into(),
            rule: "worker_overloaded".into(),
            severity: Severity::Warning,
            state: AlertState::Firing,
            target: "w1".into(),
            labels: BTreeMap::new(),
            summary: "w1 is hot".into(),
            value: 97.0,
            threshold: 90.0,
            metrics: BTreeMap::new(),
            started_at: 5,
            fired_at: Some(6),
            resolved_at: None,
            resolved_by: None,
            acknowledged: None,
            silenced_by: Vec::new(),
            revision: 1,
            change: None,
        };
        let silence = Silence {
            silence_id: "s-1".into(),
            matchers: vec![],
            starts_at: 1,
            ends_at: 2,
            created_by: "ana".into(),
            comment: String::new(),
            deleted: None,
        };
        {
            let mut snapshot = live.snapshot.write().expect("lock");
            snapshot.firing.alerts.push(alert);
            snapshot.silences.silences.push(silence);
        }
        let (code, body) = send(&live, "GET", "/api/alerts/worker_overloaded-w1-5", None).await;
        assert_eq!((code, body["summary"].as_str()), (StatusCode::OK, Some("w1 is hot")));
        let (code, body) = send(&live, "GET", "/api/silences", None).await;
        assert_eq!((code, body["silences"][0]["silence_id"].as_str()), (StatusCode::OK, Some("s-1")));
        // Known now, so it goes on to the collector, which this test has not.
        let (code, body) = send(&live, "POST", "/api/alerts/worker_overloaded-w1-5/ack", Some(r#"{"by":"ana"}"#)).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let (code, _) = send(&live, "DELETE", "/api/silences/s-1", Some(r#"{"by":"ana"}"#)).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    }
}
