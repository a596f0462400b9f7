//! `GET /api/topology`: the fleet's structure, for a map that stays readable at any size:
//! workers grouped by hardware kind, then by the tags that set them apart within their
//! kind (each group with its counts by status, slots and load), the task families and
//! where they run, and how capabilities are spread. `GET /api/topology/workers?group=<id>`
//! opens one group, a page of its workers at a time.

use crate::api::{ErrorBody, error};
use crate::live::Live;
use crate::tasks::ask_processor;
use crate::workers::query;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::metrics::{WorkerMetrics, WorkerStatus};
use shared::paging::{self, Order, SortValue};
use shared::query::{LiveStatus, TaskGroupBy, TaskQuery};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Groups shown per hardware kind; smaller ones are folded into one `(other)` group.
const GROUPS_PER_KIND: usize = 12;
const OTHER: &str = "(other)";
const NO_OTHER_TAGS: &str = "-";

pub fn routes() -> OpenApiRouter<Live> {
    OpenApiRouter::new().routes(routes!(topology)).routes(routes!(group_workers))
}

/// Workers by status, with their task slots and load.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct Load {
    pub workers: u64,
    pub idle: u64,
    pub busy: u64,
    pub overloaded: u64,
    pub disconnected: u64,
    /// Slots of the connected workers, tasks running and waiting on them.
    pub slots: u64,
    pub running: u64,
    pub queued: u64,
    /// Mean CPU over the connected workers, percent.
    pub cpu_pct: f64,
}

impl Load {
    fn add(&mut self, worker: &WorkerMetrics) {
        self.workers += 1;
        match worker.status {
            WorkerStatus::Idle => self.idle += 1,
            WorkerStatus::Busy => self.busy += 1,
            WorkerStatus::Overloaded => self.overloaded += 1,
            WorkerStatus::Disconnected => {
                self.disconnected += 1;
                return;
            }
        }
        let connected = (self.workers - self.disconnected) as f64;
        self.cpu_pct += (worker.cpu_pct - self.cpu_pct) / connected;
        self.slots += worker.capabilities.as_ref().map_or(0, |capabilities| u64::from(capabilities.slots));
        self.running += worker.active_tasks;
        self.queued += worker.queued_tasks;
    }
}

/// Workers of one kind that share the tags that set them apart.
#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    /// `<hardware>/<tags joined by +>` (`-`: no tags but the kind's own; `(other)`: the
    /// smaller groups folded together). Pass to `/api/topology/workers`.
    pub id: String,
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub load: Load,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Kind {
    pub hardware: String,
    /// Tags every worker of the kind has.
    pub common_tags: Vec<String>,
    #[serde(flatten)]
    pub load: Load,
    /// Largest first.
    pub groups: Vec<Group>,
}

/// A task family and how its tasks stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct Family {
    pub family: String,
    pub queued: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub throughput_per_min: f64,
}

/// Where a family runs: runs so far and the compatibility score, and tasks running now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Placement {
    pub family: String,
    pub hardware: String,
    pub runs: u64,
    pub score: Option<f64>,
    pub running: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub workers: u64,
}

/// How the fleet's capabilities are spread.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Capabilities {
    pub cpu_cores: Vec<ValueCount>,
    pub memory_gb: Vec<ValueCount>,
    pub slots: Vec<ValueCount>,
    pub gpu_models: Vec<ValueCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Topology {
    /// The tick the worker figures are as of, ms.
    pub time: i64,
    #[serde(flatten)]
    pub load: Load,
    pub kinds: Vec<Kind>,
    pub families: Vec<Family>,
    pub placements: Vec<Placement>,
    pub capabilities: Capabilities,
    /// Set when the processor could not be asked for the tasks running now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_unavailable: Option<String>,
}

fn hardware(worker: &WorkerMetrics) -> &str {
    worker.capabilities.as_ref().map_or("unknown", |capabilities| capabilities.hardware.as_str())
}

fn tags(worker: &WorkerMetrics) -> BTreeSet<&str> {
    worker.capabilities.iter().flat_map(|capabilities| capabilities.tags.iter().map(String::as_str)).collect()
}

/// Each worker's group id, and every kind's common tags.
struct Grouping<'a> {
    group_of: BTreeMap<&'a str, String>,
    common: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

fn grouping<'a>(workers: &'a BTreeMap<String, WorkerMetrics>) -> Grouping<'a> {
    let mut common: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for worker in workers.values() {
        let own = tags(worker);
        common.entry(hardware(worker)).and_modify(|shared| shared.retain(|tag| own.contains(tag))).or_insert(own);
    }
    let key = |worker: &WorkerMetrics| {
        let own: Vec<&str> = tags(worker).difference(&common[hardware(worker)]).copied().collect();
        let key = if own.is_empty() { NO_OTHER_TAGS.to_owned() } else { own.join("+") };
        format!("{}/{key}", hardware(worker))
    };
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for worker in workers.values() {
        *sizes.entry(key(worker)).or_default() += 1;
    }
    // The largest groups of each kind keep their own; the rest fold into `(other)`.
    let mut by_kind: BTreeMap<&str, Vec<(&String, u64)>> = BTreeMap::new();
    for (id, size) in &sizes {
        by_kind.entry(id.split('/').next().unwrap_or_default()).or_default().push((id, *size));
    }
    let mut kept = BTreeSet::new();
    for groups in by_kind.values_mut() {
        groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        kept.extend(groups.iter().take(GROUPS_PER_KIND).map(|(id, _)| (*id).clone()));
    }
    let group_of = workers
        .values()
        .map(|worker| {
            let id = key(worker);
            let id = if kept.contains(&id) { id } else { format!("{}/{OTHER}", hardware(worker)) };
            (worker.worker_id.as_str(), id)
        })
        .collect();
    Grouping { group_of, common }
}

fn counted(values: impl Iterator<Item = String>) -> Vec<ValueCount> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    counts.into_iter().map(|(value, workers)| ValueCount { value, workers }).collect()
}

/// System topology
///
/// Workers grouped by hardware kind and the tags that set them apart, task families and
/// where they run, and how capabilities are spread. Readable at any fleet size: groups,
/// not workers; open a group with `/api/topology/workers`.
#[utoipa::path(get, path = "/api/topology", tag = "views", responses((status = 200, body = Topology)))]
async fn topology(State(live): State<Live>) -> Response {
    let running_now = TaskQuery {
        status: vec![LiveStatus::Running],
        group_by: Some(TaskGroupBy::Placement),
        limit: Some(paging::MAX_LIMIT),
        ..TaskQuery::default()
    };
    let running = ask_processor(&live, &running_now).await;
    let snapshot = live.read();
    let workers = &snapshot.workers.workers;
    let grouping = grouping(workers);
    let mut load = Load::default();
    let mut kinds: BTreeMap<&str, (Load, BTreeMap<&str, Load>)> = BTreeMap::new();
    for worker in workers.values() {
        load.add(worker);
        let (kind, groups) = kinds.entry(hardware(worker)).or_default();
        kind.add(worker);
        groups.entry(&grouping.group_of[worker.worker_id.as_str()]).or_default().add(worker);
    }
    let kinds = kinds
        .into_iter()
        .map(|(hardware, (load, groups))| {
            let mut groups: Vec<Group> = groups
                .into_iter()
                .map(|(id, load)| {
                    let key = id.split_once('/').map_or("", |(_, key)| key);
                    let tags = match key {
                        NO_OTHER_TAGS | OTHER => Vec::new(),
                        key => key.split('+').map(str::to_owned).collect(),
                    };
                    Group { id: id.to_owned(), tags, load }
                })
                .collect();
            groups.sort_by(|a, b| b.load.workers.cmp(&a.load.workers).then_with(|| a.id.cmp(&b.id)));
            let common_tags = grouping.common[hardware].iter().map(|tag| (*tag).to_owned()).collect();
            Kind { hardware: hardware.to_owned(), common_tags, load, groups }
        })
        .collect();
    let (running, running_unavailable) = match running {
        Ok(answer) => (answer.groups.unwrap_or_default(), None),
        Err(refusal) => (Vec::new(), Some(refusal.1)),
    };
    let tasks = snapshot.tasks.as_ref();
    let families = tasks
        .map(|tasks| {
            tasks
                .by_family
                .iter()
                .map(|group| Family {
                    family: group.key.clone(),
                    queued: group.queued,
                    running: group.running,
                    completed: group.completed,
                    failed: group.failed,
                    throughput_per_min: group.throughput_per_min,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut placements: BTreeMap<(String, String), Placement> = BTreeMap::new();
    for pair in tasks.iter().flat_map(|tasks| &tasks.compatibility) {
        let key = (pair.family.as_str().to_owned(), pair.hardware.as_str().to_owned());
        placements.insert(
            key.clone(),
            Placement { family: key.0, hardware: key.1, runs: pair.runs, score: Some(pair.score), running: 0 },
        );
    }
    for group in running {
        let Some((family, hardware)) = group.key.split_once('/') else { continue };
        let key = (family.to_owned(), hardware.to_owned());
        placements
            .entry(key.clone())
            .or_insert(Placement { family: key.0, hardware: key.1, runs: 0, score: None, running: 0 })
            .running = group.running;
    }
    let capabilities = {
        let all = || workers.values().filter_map(|worker| worker.capabilities.as_ref());
        Capabilities {
            cpu_cores: counted(all().map(|capabilities| capabilities.cpu_cores.to_string())),
            memory_gb: counted(all().map(|capabilities| capabilities.memory_gb.to_string())),
            slots: counted(all().map(|capabilities| capabilities.slots.to_string())),
            gpu_models: counted(all().filter_map(|capabilities| capabilities.gpu_model.clone())),
        }
    };
    axum::Json(Topology {
        time: snapshot.workers.time,
        load,
        kinds,
        families,
        placements: placements.into_values().collect(),
        capabilities,
        running_unavailable,
    })
    .into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GroupQuery {
    /// A group's `id` from `/api/topology`.
    group: String,
    /// 1 to 1000, default 100.
    limit: Option<usize>,
    cursor: Option<String>,
}

/// The workers of one group
///
/// A page of a topology group's workers, busiest first.
#[utoipa::path(get, path = "/api/topology/workers", tag = "views", params(GroupQuery),
    responses((status = 200, description = "`{items, total, truncated, next_cursor}`"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn group_workers(State(live): State<Live>, asked: Result<Query<GroupQuery>, QueryRejection>) -> Response {
    let asked = match query(asked) {
        Ok(asked) => asked,
        Err(refusal) => return refusal.into_response(),
    };
    let limit = match paging::limit(asked.limit) {
        Ok(limit) => limit,
        Err(err) => return error(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let snapshot = live.read();
    let grouping = grouping(&snapshot.workers.workers);
    let rows: Vec<(SortValue, &str, &WorkerMetrics)> = snapshot
        .workers
        .workers
        .values()
        .filter(|worker| grouping.group_of.get(worker.worker_id.as_str()) == Some(&asked.group))
        .map(|worker| (SortValue::Number(worker.cpu_pct), worker.worker_id.as_str(), worker))
        .collect();
    if rows.is_empty() {
        return error(StatusCode::NOT_FOUND, &format!("no topology group {:?}", asked.group));
    }
    match paging::page(rows, Order::Desc, asked.cursor.as_deref(), limit) {
        Ok(page) => axum::Json(page).into_response(),
        Err(err) => error(StatusCode::BAD_REQUEST, &err.to_string()),
    }
}
