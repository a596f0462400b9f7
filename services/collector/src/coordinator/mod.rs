//! Coordinator poll: `--coordinator URL` reads the distributed testing framework's
//! coordinator (the seeds' origin) every `poll_ms` and turns what changed into events.
//!
//! Its API (JSON; lists wrapped in an object; extra fields ignored):
//! - `GET /status`: whether it answers, its version and uptime.
//! - `GET /api/workers` -> `{"workers": [{"worker_id", "hostname", "status", "last_heartbeat",
//!   "capabilities_summary": {..}}]}` ([`wire::Worker`]).
//! - `GET /api/tasks?status=S&limit=N` -> `{"tasks": [{"task_id", "type", "status", "created",
//!   "started", "ended", "worker_id", "priority"}]}`, asked per status with a `limit` doubled
//!   while the list comes back full, since it has no offset: every task is seen.
//! - `GET /api/tasks/{id}` for a new task's `config.model` and a failed one's `error`.
//!
//! `X-API-Key` or `Authorization: Bearer` is sent when configured. Times are its local time
//! without offset, `utc_offset` ahead of UTC. An odd item (missing field, unknown status,
//! bad time, invalid id) is dead-lettered once with its reason and counted; the poll goes
//! on. Whether it answers is a `component_status` event for `coordinator` on every poll.

mod diff;
mod families;
mod wire;

use crate::publisher::{Outgoing, Publisher};
use diff::Seen;
use futures::StreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::event::{ComponentHealth, Event};
use shared::ingest::validate;
use shared::service::Context;
use shared::telemetry::Counter;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use wire::{Clock, Task, TaskDetail, TaskList, TaskStatus, Worker, WorkerList};

/// `[collector.coordinator]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinatorConfig {
    /// Base URL of the coordinator (`http://coordinator:8080`); none turns polling off.
    pub url: Option<String>,
    /// How often to poll, ms. Default 2000.
    pub poll_ms: u64,
    /// Request timeout, ms. Default 5000.
    pub timeout_ms: u64,
    /// Sent as `X-API-Key` (`FLEETWATCH_COLLECTOR__COORDINATOR__API_KEY`).
    pub api_key: Option<String>,
    /// Sent as `Authorization: Bearer` (`FLEETWATCH_COLLECTOR__COORDINATOR__TOKEN`).
    pub token: Option<String>,
    /// How far the coordinator's local time is ahead of UTC: `+01:00`, `-05:00`. Default `UTC`.
    pub utc_offset: String,
    /// The first `limit` asked per task status. Default 1000.
    pub page_size: usize,
    /// Task details fetched at once. Default 8.
    pub detail_requests: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            url: None,
            poll_ms: 2000,
            timeout_ms: 5000,
            api_key: None,
            token: None,
            utc_offset: "UTC".into(),
            page_size: 1000,
            detail_requests: 8,
        }
    }
}

/// Secrets stay out of logs.
impl std::fmt::Debug for CoordinatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "<hidden>");
        f.debug_struct("CoordinatorConfig")
            .field("url", &self.url)
            .field("poll_ms", &self.poll_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("api_key", &hidden(&self.api_key))
            .field("token", &hidden(&self.token))
            .field("utc_offset", &self.utc_offset)
            .field("page_size", &self.page_size)
            .field("detail_requests", &self.detail_requests)
            .finish()
    }
}

/// One list item that was not taken, with where it came from.
struct Odd {
    path: &'static str,
    item: String,
    reason: String,
}

/// The coordinator's answers to one poll.
struct Answers {
    status: wire::Status,
    workers: Vec<Box<serde_json::value::RawValue>>,
    tasks: Vec<Box<serde_json::value::RawValue>>,
}

struct Poller {
    client: reqwest::Client,
    base: String,
    config: CoordinatorConfig,
    clock: Clock,
    /// The `limit` that last sufficed, per status.
    limits: BTreeMap<TaskStatus, usize>,
}

impl Poller {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.client.get(format!("{}{path}", self.base)).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            // Its errors are `{"error": "..."}`.
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|value| value.get("error")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            anyhow::bail!("GET {path}: {status}: {error}");
        }
        serde_json::from_slice(&body).map_err(|err| anyhow::anyhow!("GET {path}: not the expected JSON: {err}"))
    }

    /// Every task of one status: the list is asked again with twice the limit while it
    /// comes back full.
    async fn tasks(&mut self, status: TaskStatus) -> anyhow::Result<Vec<Box<serde_json::value::RawValue>>> {
        let mut limit = self.limits.get(&status).copied().unwrap_or(self.config.page_size.max(1));
        loop {
            let list: TaskList = self.get(&format!("/api/tasks?status={}&limit={limit}", status.as_str())).await?;
            if list.tasks.len() < limit {
                self.limits.insert(status, limit);
                return Ok(list.tasks);
            }
            limit *= 2;
        }
    }

    async fn answers(&mut self) -> anyhow::Result<Answers> {
        let status = self.get("/status").await?;
        let workers: WorkerList = self.get("/api/workers").await?;
        let mut tasks = Vec::new();
        for task_status in TaskStatus::ALL {
            tasks.extend(self.tasks(task_status).await?);
        }
        Ok(Answers { status, workers: workers.workers, tasks })
    }

    /// Details of the tasks that need one; a task whose detail cannot be had now is left
    /// for the next poll.
    async fn details(&self, ids: Vec<String>) -> HashMap<String, TaskDetail> {
        futures::stream::iter(ids)
            .map(|id| async move {
                // Ids are free text on the coordinator's side.
                let path = format!("/api/tasks/{}", utf8_percent_encode(&id, NON_ALPHANUMERIC));
                match self.get::<TaskDetail>(&path).await {
                    Ok(detail) => Some((id, detail)),
                    Err(err) => {
                        warn!(error = format!("{err:#}"), "task detail not read; tried again on the next poll");
                        None
                    }
                }
            })
            .buffer_unordered(self.config.detail_requests.max(1))
            .filter_map(|found| async move { found })
            .collect()
            .await
    }
}

/// The events of one change, if every one is valid; else why not.
fn checked(events: &[Envelope<Event>]) -> Result<(), String> {
    events.iter().try_for_each(|envelope| {
        validate(&envelope.payload).map_err(|err| format!("{} would be invalid: {err}", envelope.payload.kind()))
    })
}

/// Turns one poll's answers into events, remembering what they change in `seen`.
async fn fold(
    seen: &mut Seen,
    poller: &Poller,
    answers: Answers,
    now: i64,
    odd: &mut Vec<Odd>,
) -> Vec<Envelope<Event>> {
    let clock = poller.clock;
    let mut workers = Vec::new();
    for raw in answers.workers {
        match serde_json::from_str::<Worker>(raw.get()) {
            Ok(worker) => workers.push((raw, worker)),
            Err(err) => {
                odd.push(Odd { path: "/api/workers", item: raw.get().into(), reason: format!("a worker: {err}") })
            }
        }
    }
    // By id, a later list's answer winning: a task that moved on between two requests
    // counts in its later status.
    let mut tasks: BTreeMap<String, (Box<serde_json::value::RawValue>, Task)> = BTreeMap::new();
    for raw in answers.tasks {
        match serde_json::from_str::<Task>(raw.get()) {
            Ok(task) => {
                tasks.insert(task.task_id.clone(), (raw, task));
            }
            Err(err) => odd.push(Odd { path: "/api/tasks", item: raw.get().into(), reason: format!("a task: {err}") }),
        }
    }
    let mut running: HashMap<&str, u32> = HashMap::new();
    for (_, task) in tasks.values().filter(|(_, task)| task.status == TaskStatus::Running) {
        if let Some(worker_id) = &task.worker_id {
            *running.entry(worker_id.as_str()).or_default() += 1;
        }
    }

    let mut events = vec![reachable(&answers.status, workers.len(), tasks.len(), now)];
    let mut listed = BTreeSet::new();
    for (raw, worker) in &workers {
        let count = running.get(worker.worker_id.as_str()).copied().unwrap_or(0);
        let change = seen.worker(worker, count, clock, now).and_then(|change| checked(&change.events).map(|()| change));
        match change {
            Ok(change) => {
                listed.insert(worker.worker_id.clone());
                events.extend(change.events);
                seen.workers.insert(worker.worker_id.clone(), change.entry);
            }
            Err(reason) => odd.push(Odd { path: "/api/workers", item: raw.get().into(), reason }),
        }
    }
    events.extend(seen.gone(&listed, now));

    let wanted: Vec<String> =
        tasks.values().filter(|(_, task)| seen.needs_detail(task)).map(|(_, task)| task.task_id.clone()).collect();
    let mut details = poller.details(wanted).await;
    for (id, (raw, task)) in &tasks {
        let detail = details.remove(id);
        if detail.is_none() && !seen.tasks.contains_key(id) {
            continue; // Its model is not known yet: the next poll asks again.
        }
        let change =
            seen.task(task, detail.as_ref(), clock, now).and_then(|change| checked(&change.events).map(|()| change));
        match change {
            Ok(change) => {
                events.extend(change.events);
                seen.tasks.insert(id.clone(), change.entry);
            }
            Err(reason) => odd.push(Odd { path: "/api/tasks", item: raw.get().into(), reason }),
        }
    }
    seen.tasks.retain(|id, _| tasks.contains_key(id));
    events
}

fn reachable(status: &wire::Status, workers: usize, tasks: usize, now: i64) -> Envelope<Event> {
    let text = |value: &Option<serde_json::Value>| match value {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => "unknown".into(),
    };
    let message = format!(
        "the coordinator answers: {workers} workers, {tasks} tasks listed; version {}, up {}",
        text(&status.version),
        text(&status.uptime)
    );
    component_status(ComponentHealth::Healthy, message, now)
}

/// The coordinator's health as of this poll: one per poll, so its id is the poll's time.
fn component_status(health: ComponentHealth, message: String, now: i64) -> Envelope<Event> {
    let event = Event::ComponentStatus { component: "coordinator".into(), health, message };
    Envelope::with_id(format!("coord-status-{now}"), now, "coordinator", event)
}

pub async fn run(
    config: CoordinatorConfig,
    url: String,
    context: Context,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let failures = context.counters.counter("collector_coordinator_poll_failures_total");
    let dead = context.counters.counter("collector_coordinator_deadletters_total");
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = &config.api_key {
        headers.insert("X-API-Key", key.parse()?);
    }
    if let Some(token) = &config.token {
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.timeout_ms))
        .default_headers(headers)
        .build()?;
    let mut poller = Poller {
        client,
        base: url.trim_end_matches('/').to_owned(),
        clock: Clock::parse(&config.utc_offset)?,
        config: config.clone(),
        limits: BTreeMap::new(),
    };
    let mut seen = Seen::default();
    // Odd items already dead-lettered: a list repeats them on every poll.
    let mut dead_lettered: HashSet<String> = HashSet::new();
    let mut interval = tokio::time::interval(Duration::from_millis(config.poll_ms.max(100)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    info!(url = %poller.base, "polling the coordinator");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            _ = interval.tick() => {}
        }
        let answers = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            answers = poller.answers() => answers,
        };
        let now = shared::now_ms();
        let events = match answers {
            Ok(answers) => {
                let mut odd = Vec::new();
                let events = fold(&mut seen, &poller, answers, now, &mut odd).await;
                for item in odd.into_iter().filter(|odd| dead_lettered.insert(odd.item.clone())) {
                    dead_letter(&context, &dead, &item).await;
                }
                events
            }
            Err(err) => {
                // The coordinator may be restarting: the next poll tries again.
                failures.inc();
                let error = format!("{err:#}");
                warn!(url = %poller.base, error = %error, "coordinator poll failed");
                vec![component_status(ComponentHealth::Down, format!("the coordinator does not answer: {error}"), now)]
            }
        };
        if let Err(err) = publisher.publish(events.into_iter().map(Outgoing::given).collect()).await {
            warn!(error = format!("{err:#}"), "coordinator events not stored; the next poll resends them");
            seen = Seen::default();
        }
    }
}

async fn dead_letter(context: &Context, counter: &Counter, odd: &Odd) {
    counter.inc();
    warn!(reason = %odd.reason, path = odd.path, "odd coordinator item dead-lettered");
    let subject = format!("coordinator GET {}", odd.path);
    crate::ingest::dead_letter(context, &odd.reason, &subject, odd.item.clone().into()).await;
}
