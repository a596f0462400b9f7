//! Workers, live: `GET /api/workers` (the monitoring guide's; `/api/metrics/workers` is the
//! same list by the load balancer design's name) filtered, sorted and paged from the
//! picture the gateway holds, or as CSV; `GET /api/metrics/workers/{id}` one worker.

use crate::api::{ErrorBody, error};
use crate::csv::{Cell, Csv};
use crate::history::{Refused, refused};
use crate::live::Live;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::event::HardwareKind;
use shared::metrics::{WorkerMetrics, WorkerStatus};
use shared::paging::{self, Order, SortValue};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<Live> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(list_metrics)).routes(routes!(one))
}

/// A query string that does not parse: a JSON 400 with axum's reason.
pub(crate) fn query<T>(parsed: Result<Query<T>, QueryRejection>) -> Result<T, Refused> {
    parsed.map(|Query(query)| query).map_err(|rejection| refused(StatusCode::BAD_REQUEST, &rejection.body_text()))
}

/// A comma list of names, each one of `allowed` (as their wire names).
pub(crate) fn names<T: Copy>(
    field: &str,
    text: Option<&str>,
    allowed: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<Vec<T>, Refused> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            allowed.iter().copied().find(|value| name(*value) == part).ok_or_else(|| {
                let valid: Vec<&str> = allowed.iter().map(|value| name(*value)).collect();
                refused(StatusCode::BAD_REQUEST, &format!("{field}={part:?}: use one of {}", valid.join(", ")))
            })
        })
        .collect()
}

const STATUSES: [WorkerStatus; 4] =
    [WorkerStatus::Idle, WorkerStatus::Busy, WorkerStatus::Overloaded, WorkerStatus::Disconnected];

/// What the worker list can be sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerSort {
    #[default]
    WorkerId,
    Status,
    Hardware,
    CpuPct,
    GpuPct,
    MemoryPct,
    NetworkPct,
    ActiveTasks,
    QueuedTasks,
    Completed,
    Failed,
    SuccessRate,
    HealthScore,
    TasksPerHour,
    MeanTaskMs,
    UptimeSecs,
    LastSeen,
    /// Those that need a look first: disconnected, overloaded, busy, idle; hotter first.
    Attention,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkerQuery {
    /// Comma list of `idle`, `busy`, `overloaded`, `disconnected`.
    status: Option<String>,
    /// Comma list of hardware kinds (`cpu`, `cuda`, `rocm`, `tpu`, `webgpu`, `webnn`, `npu`, `other`).
    hardware: Option<String>,
    /// Comma list of tags the worker has, all of them.
    tag: Option<String>,
    /// The worker id contains this text.
    search: Option<String>,
    #[param(inline)]
    sort: Option<WorkerSort>,
    /// `asc` (default; `desc` for `attention`) or `desc`.
    #[param(inline)]
    order: Option<Order>,
    /// 1 to 1000, default 100.
    limit: Option<usize>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// `json` (default) or `csv`: every worker the filters select, not one page.
    format: Option<String>,
}

/// Counts per hardware kind, over the whole fleet.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct HardwareCount {
    pub hardware: String,
    pub total: u64,
    pub idle: u64,
    pub busy: u64,
    pub overloaded: u64,
    pub disconnected: u64,
    /// Task slots of its connected workers, and tasks running and waiting on them.
    pub slots: u64,
    pub running: u64,
    pub queued: u64,
}

/// The whole fleet at a glance, whatever the filters: what the filter menus offer.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct FleetSummary {
    pub total: u64,
    pub idle: u64,
    pub busy: u64,
    pub overloaded: u64,
    pub disconnected: u64,
    pub by_hardware: Vec<HardwareCount>,
    /// Each tag and how many workers have it.
    pub tags: BTreeMap<String, u64>,
}

/// A page of workers.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerList<'a> {
    #[schema(value_type = Vec<WorkerMetrics>)]
    pub items: Vec<&'a WorkerMetrics>,
    /// Workers the filters select.
    pub total: u64,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The processor's tick the figures are as of, ms.
    pub as_of: i64,
    pub summary: &'a FleetSummary,
}

fn hardware_name(worker: &WorkerMetrics) -> &'static str {
    worker.capabilities.as_ref().map_or("unknown", |capabilities| capabilities.hardware.as_str())
}

pub(crate) fn summary<'a>(workers: impl Iterator<Item = &'a WorkerMetrics>) -> FleetSummary {
    let mut summary = FleetSummary::default();
    let mut by_hardware: BTreeMap<&str, HardwareCount> = BTreeMap::new();
    let mut tags: BTreeMap<&str, u64> = BTreeMap::new();
    for worker in workers {
        let kind = by_hardware
            .entry(hardware_name(worker))
            .or_insert_with(|| HardwareCount { hardware: hardware_name(worker).into(), ..HardwareCount::default() });
        let (fleet, group) = match worker.status {
            WorkerStatus::Idle => (&mut summary.idle, &mut kind.idle),
            WorkerStatus::Busy => (&mut summary.busy, &mut kind.busy),
            WorkerStatus::Overloaded => (&mut summary.overloaded, &mut kind.overloaded),
            WorkerStatus::Disconnected => (&mut summary.disconnected, &mut kind.disconnected),
        };
        *fleet += 1;
        *group += 1;
        summary.total += 1;
        kind.total += 1;
        if worker.status != WorkerStatus::Disconnected {
            kind.slots += worker.capabilities.as_ref().map_or(0, |capabilities| u64::from(capabilities.slots));
            kind.running += worker.active_tasks;
            kind.queued += worker.queued_tasks;
        }
        for tag in worker.capabilities.iter().flat_map(|capabilities| &capabilities.tags) {
            *tags.entry(tag).or_default() += 1;
        }
    }
    summary.by_hardware = by_hardware.into_values().collect();
    summary.tags = tags.into_iter().map(|(tag, count)| (tag.to_owned(), count)).collect();
    summary
}

fn attention(worker: &WorkerMetrics) -> f64 {
    let weight = match worker.status {
        WorkerStatus::Disconnected => 3.0,
        WorkerStatus::Overloaded => 2.0,
        WorkerStatus::Busy => 1.0,
        WorkerStatus::Idle => 0.0,
    };
    weight * 1000.0 + worker.cpu_pct
}

fn sort_value(sort: WorkerSort, worker: &WorkerMetrics) -> SortValue {
    let number = SortValue::Number;
    match sort {
        // Rows tie on the id already: no text to copy per worker.
        WorkerSort::WorkerId => number(0.0),
        WorkerSort::Status => worker.status.as_str().into(),
        WorkerSort::Hardware => hardware_name(worker).into(),
        WorkerSort::CpuPct => number(worker.cpu_pct),
        WorkerSort::GpuPct => number(worker.gpu_pct.unwrap_or(-1.0)),
        WorkerSort::MemoryPct => number(worker.memory_pct),
        WorkerSort::NetworkPct => number(worker.network_pct.unwrap_or(-1.0)),
        WorkerSort::ActiveTasks => number(worker.active_tasks as f64),
        WorkerSort::QueuedTasks => number(worker.queued_tasks as f64),
        WorkerSort::Completed => number(worker.completed as f64),
        WorkerSort::Failed => number(worker.failed as f64),
        WorkerSort::SuccessRate => number(worker.success_rate),
        WorkerSort::HealthScore => number(worker.health_score),
        WorkerSort::TasksPerHour => number(worker.tasks_per_hour),
        WorkerSort::MeanTaskMs => number(worker.mean_task_ms),
        WorkerSort::UptimeSecs => number(worker.uptime_secs),
        WorkerSort::LastSeen => number(worker.last_seen as f64),
        WorkerSort::Attention => number(attention(worker)),
    }
}

/// The filters of a worker query, checked.
pub(crate) struct WorkerFilter {
    statuses: Vec<WorkerStatus>,
    hardware: Vec<HardwareKind>,
    tags: Vec<String>,
    search: Option<String>,
}

impl WorkerFilter {
    fn of(query: &WorkerQuery) -> Result<Self, Refused> {
        let statuses = names("status", query.status.as_deref(), &STATUSES, WorkerStatus::as_str)?;
        let hardware = names("hardware", query.hardware.as_deref(), &HardwareKind::ALL, HardwareKind::as_str)?;
        let tags = query.tag.iter().flat_map(|tags| tags.split(',')).map(str::trim).filter(|tag| !tag.is_empty());
        Ok(Self { statuses, hardware, tags: tags.map(str::to_owned).collect(), search: query.search.clone() })
    }

    pub(crate) fn admits(&self, worker: &WorkerMetrics) -> bool {
        let capabilities = worker.capabilities.as_ref();
        (self.statuses.is_empty() || self.statuses.contains(&worker.status))
            && (self.hardware.is_empty()
                || capabilities.is_some_and(|capabilities| self.hardware.contains(&capabilities.hardware)))
            && self.tags.iter().all(|tag| capabilities.is_some_and(|capabilities| capabilities.tags.contains(tag)))
            && self.search.as_deref().is_none_or(|text| worker.worker_id.contains(text))
    }
}

/// Workers
///
/// Every worker's latest figures, filtered by status, hardware, tags and id, sorted by any
/// figure, paged; with `summary`, the whole fleet's counts by status, hardware and tag.
/// `format=csv` answers every selected worker as CSV.
#[utoipa::path(get, path = "/api/workers", tag = "workers", params(WorkerQuery),
    responses((status = 200, body = WorkerList), (status = 400, body = ErrorBody)))]
async fn list(State(live): State<Live>, asked: Result<Query<WorkerQuery>, QueryRejection>) -> Response {
    answer(&live, asked)
}

/// Metrics for all workers
///
/// The same list as `/api/workers`, by the load balancer design's name.
#[utoipa::path(get, path = "/api/metrics/workers", tag = "workers", params(WorkerQuery),
    responses((status = 200, body = WorkerList), (status = 400, body = ErrorBody)))]
async fn list_metrics(State(live): State<Live>, asked: Result<Query<WorkerQuery>, QueryRejection>) -> Response {
    answer(&live, asked)
}

fn answer(live: &Live, asked: Result<Query<WorkerQuery>, QueryRejection>) -> Response {
    let query = match query(asked) {
        Ok(query) => query,
        Err(refusal) => return refusal.into_response(),
    };
    let filter = match WorkerFilter::of(&query) {
        Ok(filter) => filter,
        Err(refusal) => return refusal.into_response(),
    };
    let sort = query.sort.unwrap_or_default();
    let order = query.order.unwrap_or(if sort == WorkerSort::Attention { Order::Desc } else { Order::Asc });
    let snapshot = live.read();
    let workers = snapshot.workers.workers.values();
    let rows: Vec<(SortValue, &str, &WorkerMetrics)> = workers
        .clone()
        .filter(|worker| filter.admits(worker))
        .map(|worker| (sort_value(sort, worker), worker.worker_id.as_str(), worker))
        .collect();
    match query.format.as_deref() {
        None | Some("json") => {}
        Some("csv") => {
            let rows = match paging::page(rows, order, None, usize::MAX) {
                Ok(page) => page.items,
                Err(err) => return error(StatusCode::BAD_REQUEST, &err.to_string()),
            };
            return csv(&rows).response("workers");
        }
        Some(other) => return error(StatusCode::BAD_REQUEST, &format!("format={other:?}: use json or csv")),
    }
    let limit = match paging::limit(query.limit) {
        Ok(limit) => limit,
        Err(err) => return error(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let page = match paging::page(rows, order, query.cursor.as_deref(), limit) {
        Ok(page) => page,
        Err(err) => return error(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    axum::Json(WorkerList {
        items: page.items,
        total: page.total,
        truncated: page.truncated,
        next_cursor: page.next_cursor,
        as_of: snapshot.workers.time,
        summary: &snapshot.summary,
    })
    .into_response()
}

const CSV_COLUMNS: [&str; 22] = [
    "worker_id",
    "status",
    "hardware",
    "gpu_model",
    "cpu_cores",
    "memory_gb",
    "slots",
    "tags",
    "cpu_pct",
    "gpu_pct",
    "memory_pct",
    "network_pct",
    "active_tasks",
    "queued_tasks",
    "completed",
    "failed",
    "success_rate",
    "mean_task_ms",
    "tasks_per_hour",
    "health_score",
    "uptime_secs",
    "last_seen",
];

fn csv(workers: &[&WorkerMetrics]) -> Csv {
    let mut csv = Csv::new(&CSV_COLUMNS);
    for worker in workers {
        let capabilities = worker.capabilities.as_ref();
        let tags = capabilities.map(|capabilities| capabilities.tags.join(" ")).unwrap_or_default();
        let number = |value: Option<f64>| value.map_or(Cell::Missing, Cell::Number);
        csv.row([
            Cell::Text(&worker.worker_id),
            Cell::Text(worker.status.as_str()),
            Cell::Text(hardware_name(worker)),
            capabilities.and_then(|capabilities| capabilities.gpu_model.as_deref()).map_or(Cell::Missing, Cell::Text),
            number(capabilities.map(|capabilities| f64::from(capabilities.cpu_cores))),
            number(capabilities.map(|capabilities| f64::from(capabilities.memory_gb))),
            number(capabilities.map(|capabilities| f64::from(capabilities.slots))),
            Cell::Text(&tags),
            Cell::Number(worker.cpu_pct),
            number(worker.gpu_pct),
            Cell::Number(worker.memory_pct),
            number(worker.network_pct),
            Cell::Number(worker.active_tasks as f64),
            Cell::Number(worker.queued_tasks as f64),
            Cell::Number(worker.completed as f64),
            Cell::Number(worker.failed as f64),
            Cell::Number(worker.success_rate),
            Cell::Number(worker.mean_task_ms),
            Cell::Number(worker.tasks_per_hour),
            Cell::Number(worker.health_score),
            Cell::Number(worker.uptime_secs),
            Cell::Number(worker.last_seen as f64),
        ]);
    }
    csv
}

/// Metrics for one worker
#[utoipa::path(get, path = "/api/metrics/workers/{worker_id}", tag = "workers",
    params(("worker_id" = String, Path, description = "The worker's id")),
    responses((status = 200, body = WorkerMetrics), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn one(State(live): State<Live>, Path(worker_id): Path<String>) -> Response {
    if let Err(err) = shared::subjects::check_token("worker_id", &worker_id) {
        return error(StatusCode::BAD_REQUEST, &err.to_string());
    }
    match live.read().workers.workers.get(&worker_id) {
        Some(worker) => axum::Json(worker).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("no worker {worker_id:?} (yet)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::get;
    use shared::event::Capabilities;
    use shared::metrics::WorkerMetricsBatch;

    fn worker(id: &str, hardware: HardwareKind, status: WorkerStatus, cpu_pct: f64, tags: &[&str]) -> WorkerMetrics {
        WorkerMetrics {
            time: 1,
            worker_id: id.into(),
            status,
            capabilities: Some(Capabilities {
                hardware,
                cpu_cores: 8,
                memory_gb: 32.0,
                gpu_model: None,
                gpu_memory_gb: None,
                slots: 2,
                tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            }),
            cpu_pct,
            gpu_pct: None,
            memory_pct: 10.0,
            network_pct: Some(1.0),
            active_tasks: 1,
            queued_tasks: 0,
            completed: 3,
            failed: 0,
            mean_task_ms: 100.0,
            tasks_per_hour: 3.0,
            success_rate: 1.0,
            health_score: 100.0,
            uptime_secs: 5.0,
            last_seen: 1,
        }
    }

    fn fleet() -> Live {
        let live = Live::offline();
        let workers = vec![
            worker("cpu-1", HardwareKind::Cpu, WorkerStatus::Idle, 10.0, &["pool-a"]),
            worker("cpu-2", HardwareKind::Cpu, WorkerStatus::Overloaded, 97.0, &["pool-b"]),
            worker("gpu-1", HardwareKind::Cuda, WorkerStatus::Busy, 60.0, &["pool-a", "fp16"]),
            worker("=gpu-2", HardwareKind::Cuda, WorkerStatus::Disconnected, 0.0, &[]),
        ];
        let batch = WorkerMetricsBatch { time: 5, complete: true, parts: 1, workers, ..Default::default() };
        live.snapshot.write().expect("lock").apply_workers(batch);
        live
    }

    fn ids(body: &serde_json::Value) -> Vec<&str> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|worker| worker["worker_id"].as_str().expect("id"))
            .collect()
    }

    #[tokio::test]
    async fn filters_sort_and_pages() {
        let live = fleet();
        let (code, body) = get(&live, "/api/workers?hardware=cpu,cuda&tag=pool-a&sort=cpu_pct&order=desc").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(ids(&body), ["gpu-1", "cpu-1"]);
        assert_eq!(body["summary"]["total"], 4, "the summary is the whole fleet");
        assert_eq!(body["summary"]["tags"]["pool-a"], 2);
        let (_, body) = get(&live, "/api/workers?sort=attention&limit=2").await;
        assert_eq!(
            (ids(&body), body["total"].as_u64(), body["truncated"].as_bool()),
            (vec!["=gpu-2", "cpu-2"], Some(4), Some(true))
        );
        let cursor = body["next_cursor"].as_str().expect("a cursor").to_owned();
        let (_, body) =
            get(&live, &format!("/api/metrics/workers?sort=attention&limit=2&cursor={}", urlencode(&cursor))).await;
        assert_eq!(ids(&body), ["gpu-1", "cpu-1"]);
        let cuda = &body["summary"]["by_hardware"].as_array().expect("kinds")[1];
        assert_eq!(
            (cuda["total"].as_u64(), cuda["slots"].as_u64(), cuda["running"].as_u64()),
            (Some(2), Some(2), Some(1))
        );
    }

    #[tokio::test]
    async fn bad_parameters_are_refused_with_the_reason() {
        let live = fleet();
        for (path, needle) in [
            ("/api/workers?status=sleepy", "status=\"sleepy\""),
            ("/api/workers?limit=0", "limit 0"),
            ("/api/workers?limit=x", "limit"),
            ("/api/workers?sort=height", "height"),
            ("/api/workers?cursor=zz", "cursor"),
            ("/api/workers?colour=red", "colour"),
            ("/api/workers?format=xml", "format"),
            ("/api/metrics/workers/a.b", "worker_id"),
        ] {
            let (code, body) = get(&live, path).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(body["error"].as_str().is_some_and(|reason| reason.contains(needle)), "{path}: {body}");
        }
        assert_eq!(get(&live, "/api/metrics/workers/cpu-9").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn csv_holds_every_selected_worker_and_disarms_formulas() {
        let (code, body) = get(&fleet(), "/api/workers?status=disconnected,idle&format=csv&limit=1").await;
        assert_eq!(code, StatusCode::OK);
        let text = body.as_str().expect("text");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "a header and both workers, whatever the limit: {text}");
        assert!(lines[1].starts_with("\"'=gpu-2\",disconnected,cuda"), "{text}");
    }

    fn urlencode(text: &str) -> String {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (byte as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }
}
