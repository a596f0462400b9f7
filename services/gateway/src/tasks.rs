//! Tasks: `GET /api/tasks` lists the live ones (queued, assigned, running, retrying), which
//! the processor answers page by page (`processor.tasks`), or the finished ones (completed,
//! failed), which the archiver answers (`tasks.list`), in one row shape; `GET
//! /api/tasks/{id}` is one task: its state now, its runs and its whole life.

use crate::api::{ErrorBody, error};
use crate::history::{Refused, ask, refused};
use crate::live::Live;
use crate::workers::{names, query};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use shared::event::{HardwareKind, ModelFamily};
use shared::paging::Order;
use shared::query::{LiveStatus, LiveTask, TaskAnswer, TaskGroup, TaskGroupBy, TaskQuery, TaskSort};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long the gateway waits for the processor.
const WAIT: Duration = Duration::from_secs(5);

pub fn routes() -> OpenApiRouter<Live> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(one))
}

/// A task's status as the API names it: the live ones, then the finished ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Assigned,
    Running,
    /// Failed, and waiting to be retried.
    Retrying,
    Completed,
    Failed,
}

impl TaskStatus {
    const ALL: [TaskStatus; 6] =
        [Self::Queued, Self::Assigned, Self::Running, Self::Retrying, Self::Completed, Self::Failed];

    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    fn live(self) -> Option<LiveStatus> {
        match self {
            Self::Queued => Some(LiveStatus::Queued),
            Self::Assigned => Some(LiveStatus::Assigned),
            Self::Running => Some(LiveStatus::Running),
            Self::Retrying => Some(LiveStatus::Failed),
            Self::Completed | Self::Failed => None,
        }
    }

    fn of_live(status: LiveStatus) -> Self {
        match status {
            LiveStatus::Queued => Self::Queued,
            LiveStatus::Assigned => Self::Assigned,
            LiveStatus::Running => Self::Running,
            LiveStatus::Failed => Self::Retrying,
        }
    }
}

/// One task, live or finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskRow {
    pub task_id: String,
    pub status: TaskStatus,
    pub model: String,
    pub family: Option<ModelFamily>,
    pub priority: u8,
    pub worker_id: Option<String>,
    pub hardware: Option<HardwareKind>,
    /// Live: first queued, last (re)queued and started, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// Finished: when, and how long it waited, ran and took in all, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tasks it waits for, and (live) those of them not finished yet.
    pub depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<String>,
    /// Retries so far.
    pub attempts: u32,
}

impl From<LiveTask> for TaskRow {
    fn from(task: LiveTask) -> Self {
        Self {
            task_id: task.task_id,
            status: TaskStatus::of_live(task.status),
            model: task.model,
            family: task.family,
            priority: task.priority,
            worker_id: task.worker_id,
            hardware: task.hardware,
            created_at: Some(task.created_at),
            queued_at: Some(task.queued_at),
            started_at: task.started_at,
            finished_at: None,
            queue_ms: None,
            processing_ms: None,
            total_ms: None,
            error: None,
            depends_on: task.depends_on,
            waiting_on: task.waiting_on,
            attempts: task.attempts,
        }
    }
}

/// A row of the archive's `tasks.list`.
#[derive(Debug, Deserialize)]
struct FinishedRow {
    finished_at: i64,
    task_id: String,
    model: String,
    family: Option<ModelFamily>,
    hardware: Option<HardwareKind>,
    worker_id: Option<String>,
    priority: Option<u8>,
    succeeded: bool,
    queue_ms: Option<f64>,
    processing_ms: Option<f64>,
    total_ms: Option<f64>,
    error: Option<String>,
    depends_on: Option<Vec<String>>,
    attempts: Option<u32>,
}

impl From<FinishedRow> for TaskRow {
    fn from(row: FinishedRow) -> Self {
        Self {
            task_id: row.task_id,
            status: if row.succeeded { TaskStatus::Completed } else { TaskStatus::Failed },
            model: row.model,
            family: row.family,
            priority: row.priority.unwrap_or_default(),
            worker_id: row.worker_id,
            hardware: row.hardware,
            created_at: None,
            queued_at: None,
            started_at: None,
            finished_at: Some(row.finished_at),
            queue_ms: row.queue_ms,
            processing_ms: row.processing_ms,
            total_ms: row.total_ms,
            error: row.error,
            depends_on: row.depends_on.unwrap_or_default(),
            waiting_on: Vec::new(),
            attempts: row.attempts.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskListQuery {
    /// Comma list, all live (`queued`, `assigned`, `running`, `retrying`; the default) or all
    /// finished (`completed`, `failed`).
    status: Option<String>,
    worker_id: Option<String>,
    model: Option<String>,
    #[param(inline)]
    family: Option<ModelFamily>,
    #[param(inline)]
    hardware: Option<HardwareKind>,
    /// The task id contains this text.
    search: Option<String>,
    /// Live tasks that wait for this task.
    depends_on: Option<String>,
    /// Live tasks that wait for a task not finished yet.
    blocked: Option<bool>,
    /// Live: first queued at or after; finished: finished at or after (RFC 3339 or ms).
    start_time: Option<String>,
    /// Before this (RFC 3339 or ms).
    end_time: Option<String>,
    /// Live: `created_at` (default), `queued_at`, `started_at`, `priority`, `model`,
    /// `worker_id`, `status`, `task_id`. Finished: `finished_at` (default), `processing_ms`,
    /// `queue_ms`, `total_ms`, `priority`, `model`, `worker_id`, `task_id`.
    sort: Option<String>,
    /// `asc` or `desc` (default: `asc` live, `desc` finished).
    #[param(inline)]
    order: Option<Order>,
    /// 1 to 1000, default 100.
    limit: Option<usize>,
    cursor: Option<String>,
    /// Live only: count by `worker_id`, `model`, `family`, `hardware`, `status` or
    /// `placement` (`<family>/<hardware>`) instead of listing.
    #[param(inline)]
    group_by: Option<TaskGroupBy>,
    /// `json` (default) or `csv` (finished tasks: every one the filters select).
    format: Option<String>,
}

/// A page of tasks, or with `group_by` the groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// `live` (the processor) or `archive`.
    pub source: &'static str,
    pub items: Vec<TaskRow>,
    pub total: u64,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<TaskGroup>>,
}

fn time_param(field: &str, text: Option<&str>) -> Result<Option<i64>, Refused> {
    match text {
        None => Ok(None),
        Some(text) => shared::time::parse_time(text).map(Some).ok_or_else(|| {
            refused(StatusCode::BAD_REQUEST, &format!("{field}={text:?} is not a time (RFC 3339 or ms)"))
        }),
    }
}

fn check_id(field: &'static str, value: &Option<String>) -> Result<(), Refused> {
    match value {
        Some(value) => shared::subjects::check_token(field, value)
            .map_err(|err| refused(StatusCode::BAD_REQUEST, &err.to_string())),
        None => Ok(()),
    }
}

/// Tasks
///
/// Live tasks from the processor (queued, assigned, running, retrying) or finished ones from
/// the archive (completed, failed), filtered by worker, model, family, hardware, id text and
/// time, sorted and paged; live ones can be counted by a grouping instead.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(TaskListQuery),
    responses((status = 200, body = TaskList), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list(State(live): State<Live>, asked: Result<Query<TaskListQuery>, QueryRejection>) -> Response {
    match answer_list(&live, asked).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn answer_list(live: &Live, asked: Result<Query<TaskListQuery>, QueryRejection>) -> Result<Response, Refused> {
    let asked = query(asked)?;
    let statuses = names("status", asked.status.as_deref(), &TaskStatus::ALL, TaskStatus::as_str)?;
    for (field, value) in
        [("worker_id", &asked.worker_id), ("search", &asked.search), ("depends_on", &asked.depends_on)]
    {
        check_id(field, value)?;
    }
    let (start, end) =
        (time_param("start_time", asked.start_time.as_deref())?, time_param("end_time", asked.end_time.as_deref())?);
    let finished = statuses.iter().any(|status| status.live().is_none());
    if finished && statuses.iter().any(|status| status.live().is_some()) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "status: ask for live tasks (queued, assigned, running, retrying) or finished ones (completed, failed), not both",
        ));
    }
    if !finished {
        let sort = match asked.sort.as_deref() {
            None => TaskSort::default(),
            Some(text) => serde_json::from_value(json!(text)).map_err(|_| {
                refused(StatusCode::BAD_REQUEST, &format!("sort={text:?}: use created_at, queued_at, started_at, priority, model, worker_id, status or task_id"))
            })?,
        };
        if asked.format.as_deref().is_some_and(|format| format != "json") {
            return Err(refused(StatusCode::BAD_REQUEST, "format: live tasks come as json; csv is for finished ones"));
        }
        let task_query = TaskQuery {
            status: statuses.iter().filter_map(|status| status.live()).collect(),
            worker_id: asked.worker_id,
            model: asked.model,
            family: asked.family,
            hardware: asked.hardware,
            search: asked.search,
            depends_on: asked.depends_on,
            blocked: asked.blocked.unwrap_or_default(),
            start_time: start,
            end_time: end,
            sort,
            order: asked.order.unwrap_or_default(),
            limit: asked.limit,
            cursor: asked.cursor,
            group_by: asked.group_by,
            ..TaskQuery::default()
        };
        let answer = ask_processor(live, &task_query).await?;
        return Ok(axum::Json(TaskList {
            source: "live",
            items: answer.page.items.into_iter().map(TaskRow::from).collect(),
            total: answer.page.total,
            truncated: answer.page.truncated,
            next_cursor: answer.page.next_cursor,
            groups: answer.groups,
        })
        .into_response());
    }
    if asked.group_by.is_some() || asked.depends_on.is_some() || asked.blocked.is_some() {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "group_by, depends_on and blocked are for live tasks; use /api/metrics/tasks/stats for finished ones",
        ));
    }
    let mut params = Map::new();
    if let [status] = statuses.as_slice() {
        params.insert("status".into(), json!(status.as_str()));
    }
    for (key, value) in [
        ("worker_id", asked.worker_id.map(Value::from)),
        ("model", asked.model.map(Value::from)),
        ("family", asked.family.map(|family| json!(family.as_str()))),
        ("hardware", asked.hardware.map(|kind| json!(kind.as_str()))),
        ("search", asked.search.map(Value::from)),
        ("start_time", start.map(Value::from)),
        ("end_time", end.map(Value::from)),
        ("sort", asked.sort.map(Value::from)),
        ("order", asked.order.map(|order| json!(order))),
        ("limit", asked.limit.map(Value::from)),
        ("cursor", asked.cursor.map(Value::from)),
    ] {
        if let Some(value) = value {
            params.insert(key.into(), value);
        }
    }
    match asked.format.as_deref() {
        None | Some("json") => {}
        Some("csv") => return Ok(crate::history::export(live, "tasks.list", params, "csv").await),
        Some(other) => return Err(refused(StatusCode::BAD_REQUEST, &format!("format={other:?}: use json or csv"))),
    }
    let answer = ask(live, "tasks.list", &params).await?;
    let items: Vec<FinishedRow> = serde_json::from_value(answer["items"].clone())
        .map_err(|err| refused(StatusCode::BAD_GATEWAY, &format!("the archive's tasks do not read: {err}")))?;
    Ok(axum::Json(TaskList {
        source: "archive",
        items: items.into_iter().map(TaskRow::from).collect(),
        total: answer["total"].as_u64().unwrap_or_default(),
        truncated: answer["truncated"].as_bool().unwrap_or_default(),
        next_cursor: answer["next_cursor"].as_str().map(str::to_owned),
        groups: None,
    })
    .into_response())
}

/// Asks the processor for live tasks.
pub(crate) async fn ask_processor(live: &Live, task_query: &TaskQuery) -> Result<TaskAnswer, Refused> {
    let Some(nats) = &live.nats else {
        return Err(refused(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS"));
    };
    let subject = nats.subjects.query("processor.tasks");
    let body = serde_json::to_vec(task_query).unwrap_or_default();
    let reply = match tokio::time::timeout(WAIT, nats.client.request(subject, body.into())).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) => {
            return Err(refused(StatusCode::SERVICE_UNAVAILABLE, &format!("the processor does not answer: {err}")));
        }
        Err(_) => return Err(refused(StatusCode::SERVICE_UNAVAILABLE, "the processor did not answer in time")),
    };
    if let Ok(refusal) = serde_json::from_slice::<crate::history::ArchiveRefusal>(&reply.payload) {
        return Err(refusal.into());
    }
    serde_json::from_slice(&reply.payload)
        .map_err(|err| refused(StatusCode::BAD_GATEWAY, &format!("the processor's answer does not read: {err}")))
}

/// One task: where it stands, its runs and its life.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDetail {
    pub task_id: String,
    /// Its status now: live, else its last run's end.
    pub status: TaskStatus,
    /// Where it stands now, if it is live.
    pub live: Option<TaskRow>,
    /// Each time it finished (a failure that was retried, then the last end), oldest first.
    pub runs: Vec<TaskRow>,
    /// Its events from the archive, oldest first (empty when task detail is not kept).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// Tasks it waits for, and live tasks that wait for it.
    pub depends_on: Vec<String>,
    pub dependents: Vec<String>,
    /// Set when the archive could not be asked: what is shown is the live part alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_unavailable: Option<String>,
}

/// One task
///
/// Its state now (from the processor, while it is live), each run that finished and every
/// event of its life (from the archive), what it waits for and what waits for it.
#[utoipa::path(get, path = "/api/tasks/{task_id}", tag = "tasks",
    params(("task_id" = String, Path, description = "The task's id")),
    responses((status = 200, body = TaskDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn one(State(live): State<Live>, Path(task_id): Path<String>) -> Response {
    if let Err(err) = shared::subjects::check_token("task_id", &task_id) {
        return error(StatusCode::BAD_REQUEST, &err.to_string());
    }
    let now = TaskQuery { task_id: Some(task_id.clone()), ..TaskQuery::default() };
    let dependents = TaskQuery { depends_on: Some(task_id.clone()), limit: Some(1000), ..TaskQuery::default() };
    let runs = json!({ "task_id": task_id, "sort": "finished_at", "order": "asc", "limit": 1000 });
    let events = json!({ "task_id": task_id });
    let (now, dependents, runs, events) = tokio::join!(
        ask_processor(&live, &now),
        ask_processor(&live, &dependents),
        ask(&live, "tasks.list", runs.as_object().expect("an object")),
        ask(&live, "task", events.as_object().expect("an object")),
    );
    let current = now.ok().and_then(|answer| answer.page.items.into_iter().next()).map(TaskRow::from);
    let mut history_unavailable = None;
    let runs: Vec<TaskRow> = match runs {
        Ok(answer) => serde_json::from_value::<Vec<FinishedRow>>(answer["items"].clone())
            .map(|rows| rows.into_iter().map(TaskRow::from).collect())
            .unwrap_or_default(),
        Err(Refused(_, reason)) => {
            history_unavailable = Some(reason);
            Vec::new()
        }
    };
    let events: Vec<Value> = match events {
        Ok(answer) => answer["events"].as_array().cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let Some(status) = current.as_ref().map(|task| task.status).or_else(|| runs.last().map(|run| run.status)) else {
        let reason = match history_unavailable {
            Some(reason) => format!("no live task {task_id:?}, and the archive cannot be asked: {reason}"),
            None => format!("no task {task_id:?}: not live, not in the archive"),
        };
        return error(StatusCode::NOT_FOUND, &reason);
    };
    let depends_on = current.as_ref().or(runs.last()).map(|task| task.depends_on.clone()).unwrap_or_default();
    let dependents =
        dependents.map(|answer| answer.page.items.into_iter().map(|task| task.task_id).collect()).unwrap_or_default();
    axum::Json(TaskDetail { task_id, status, live: current, runs, events, depends_on, dependents, history_unavailable })
        .into_response()
}
