//! Coordinator poll: `--coordinator URL` reads a distributed-testing coordinator's REST API
//! every `poll_ms` and turns what changed into events.
//!
//! Expected API (JSON; times are ms since the epoch or RFC 3339 strings; `?` optional):
//! - `GET <url>/api/workers` -> `{"workers": [{"worker_id", "status": "active"|"idle"|"busy"|
//!   "online"|"draining"|"offline", "hardware"?, "capabilities"?: {..}, "cpu_pct"?,
//!   "memory_pct"?, "gpu_pct"?, "running_tasks"?, "queued_tasks"?}]}`
//! - `GET <url>/api/tasks` -> `{"tasks": [{"task_id", "model", "family"?, "priority"?,
//!   "status": "pending"|"queued"|"assigned"|"running"|"completed"|"failed"|"cancelled",
//!   "worker_id"?, "created_at"?, "started_at"?, "completed_at"?, "error"?}]}`
//!
//! A worker that appears registers, one whose status changes reports it, one that goes away
//! deregisters; utilisation figures become a heartbeat. A task moves along its lifecycle
//! (queued, assigned, started, completed or failed; back to queued is a retry). Ids are
//! derived from the coordinator's ids, so a re-poll within JetStream's 2-minute duplicate
//! window stores nothing twice.
//!
//! Whether the coordinator answers is itself an event: `component_status` for component
//! `coordinator`, `down` (with the error) on the first failed poll and whenever it stops
//! answering, `healthy` on the first poll that succeeds and whenever it answers again. Only
//! changes are published, not every poll.

use crate::publisher::{Outgoing, Publisher};
use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::event::{Capabilities, ComponentHealth, Event, HardwareKind, ModelFamily, ReportedStatus};
use shared::ingest::validate;
use shared::service::Context;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[collector.coordinator]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinatorConfig {
    /// Base URL of the coordinator (`http://coordinator:8080`); none turns polling off.
    pub url: Option<String>,
    /// How often to poll, ms. Default 2000.
    pub poll_ms: u64,
    /// Request timeout, ms. Default 5000.
    pub timeout_ms: u64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self { url: None, poll_ms: 2000, timeout_ms: 5000 }
    }
}

#[derive(Debug, Deserialize)]
struct Workers {
    workers: Vec<RemoteWorker>,
}

#[derive(Debug, Deserialize)]
struct RemoteWorker {
    worker_id: String,
    status: String,
    hardware: Option<HardwareKind>,
    capabilities: Option<Capabilities>,
    cpu_pct: Option<f32>,
    memory_pct: Option<f32>,
    gpu_pct: Option<f32>,
    network_pct: Option<f32>,
    running_tasks: Option<u32>,
    queued_tasks: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Tasks {
    tasks: Vec<RemoteTask>,
}

#[derive(Debug, Deserialize)]
struct RemoteTask {
    task_id: String,
    model: String,
    family: Option<ModelFamily>,
    priority: Option<u8>,
    status: String,
    worker_id: Option<String>,
    created_at: Option<Time>,
    started_at: Option<Time>,
    completed_at: Option<Time>,
    error: Option<String>,
}

/// A time as the coordinator gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Time {
    Millis(i64),
    Text(String),
}

impl Time {
    fn millis(&self) -> Option<i64> {
        match self {
            Self::Millis(ms) => Some(*ms),
            Self::Text(text) => shared::time::parse_rfc3339(text),
        }
    }
}

/// Where a task stands on its lifecycle, in order.
fn stage(status: &str) -> Option<u8> {
    Some(match status {
        "pending" | "queued" => 0,
        "assigned" => 1,
        "running" => 2,
        "completed" | "failed" | "cancelled" => 3,
        _ => return None,
    })
}

fn reported(status: &str) -> ReportedStatus {
    match status {
        "offline" | "disconnected" | "lost" => ReportedStatus::Offline,
        "draining" | "maintenance" => ReportedStatus::Draining,
        _ => ReportedStatus::Online,
    }
}

/// What the last poll saw, to diff the next one against.
#[derive(Default)]
pub struct Seen {
    workers: BTreeMap<String, ReportedStatus>,
    /// Task status and how many times it went back to the queue.
    tasks: BTreeMap<String, (String, u32)>,
}

impl Seen {
    /// The events that turn the last poll into this one, each with a derived id.
    fn diff(&mut self, workers: Vec<RemoteWorker>, tasks: Vec<RemoteTask>, now: i64) -> Vec<Envelope<Event>> {
        let mut events = Vec::new();
        let mut push =
            |id: String, time: i64, event: Event| events.push(Envelope::with_id(id, time, "coordinator", event));
        let mut present = BTreeMap::new();
        for worker in workers {
            let status = reported(&worker.status);
            let id = worker.worker_id.clone();
            match self.workers.get(&id) {
                None => {
                    let capabilities = worker.capabilities.clone().unwrap_or(Capabilities {
                        hardware: worker.hardware.unwrap_or(HardwareKind::Other),
                        cpu_cores: 0,
                        memory_gb: 0.0,
                        gpu_model: None,
                        gpu_memory_gb: None,
                        slots: 1,
                        tags: Vec::new(),
                    });
                    push(
                        format!("coord-{id}-registered-{now}"),
                        now,
                        Event::WorkerRegistered { worker_id: id.clone(), capabilities },
                    );
                }
                Some(previous) if *previous != status => push(
                    format!("coord-{id}-status-{now}"),
                    now,
                    Event::WorkerStatusChanged {
                        worker_id: id.clone(),
                        status,
                        reason: format!("coordinator reports {}", worker.status),
                    },
                ),
                Some(_) => {}
            }
            if let (Some(cpu_pct), Some(memory_pct)) = (worker.cpu_pct, worker.memory_pct) {
                push(
                    format!("coord-{id}-heartbeat-{now}"),
                    now,
                    Event::Heartbeat {
                        worker_id: id.clone(),
                        cpu_pct,
                        memory_pct,
                        gpu_pct: worker.gpu_pct,
                        gpu_memory_pct: None,
                        network_pct: worker.network_pct.unwrap_or(0.0),
                        running_tasks: worker.running_tasks.unwrap_or(0),
                        queued_tasks: worker.queued_tasks.unwrap_or(0),
                    },
                );
            }
            present.insert(id, status);
        }
        for gone in self.workers.keys().filter(|id| !present.contains_key(*id)) {
            push(
                format!("coord-{gone}-deregistered-{now}"),
                now,
                Event::WorkerDeregistered {
                    worker_id: gone.clone(),
                    reason: "no longer listed by the coordinator".into(),
                },
            );
        }
        self.workers = present;

        let mut listed = BTreeMap::new();
        for task in tasks {
            let Some(target) = stage(&task.status) else { continue };
            let id = task.task_id.clone();
            let (previous_status, mut retries) = self.tasks.get(&id).cloned().unwrap_or_default();
            let mut from = match self.tasks.contains_key(&id) {
                true => stage(&previous_status),
                false => None,
            };
            if previous_status == task.status {
                listed.insert(id, (task.status, retries));
                continue;
            }
            if from == Some(3) && previous_status == "failed" && target < 3 {
                retries += 1;
                push(
                    format!("coord-{id}-retried-{retries}"),
                    now,
                    Event::TaskRetried { task_id: id.clone(), attempt: retries },
                );
                from = Some(0);
            }
            let created = task.created_at.as_ref().and_then(Time::millis).unwrap_or(now);
            let started = task.started_at.as_ref().and_then(Time::millis).unwrap_or(now);
            let finished = task.completed_at.as_ref().and_then(Time::millis).unwrap_or(now);
            let worker = task.worker_id.clone();
            let key = |what: &str| format!("coord-{id}-{what}-{retries}");
            if from.is_none() {
                push(
                    key("queued"),
                    created,
                    Event::TaskQueued {
                        task_id: id.clone(),
                        model: task.model.clone(),
                        family: task.family.unwrap_or(ModelFamily::Text),
                        priority: task.priority.unwrap_or(5).min(9),
                        depends_on: vec![],
                    },
                );
            }
            let reached = from.unwrap_or(0);
            if let Some(worker_id) = worker.clone() {
                if reached < 1 && target >= 1 && task.status != "cancelled" {
                    push(
                        key("assigned"),
                        started.min(finished),
                        Event::TaskAssigned { task_id: id.clone(), worker_id: worker_id.clone(), best_fit: true },
                    );
                }
                if reached < 2 && target >= 2 && task.status != "cancelled" {
                    push(key("started"), started, Event::TaskStarted { task_id: id.clone(), worker_id });
                }
            }
            match task.status.as_str() {
                "completed" => push(
                    key("completed"),
                    finished,
                    Event::TaskCompleted { task_id: id.clone(), worker_id: worker.unwrap_or_default() },
                ),
                "failed" => push(
                    key("failed"),
                    finished,
                    Event::TaskFailed {
                        task_id: id.clone(),
                        worker_id: worker,
                        error: task.error.unwrap_or_else(|| "failed".into()),
                    },
                ),
                "cancelled" => push(
                    key("cancelled"),
                    finished,
                    Event::TaskCancelled { task_id: id.clone(), reason: "cancelled by the coordinator".into() },
                ),
                _ => {}
            }
            listed.insert(id, (task.status, retries));
        }
        self.tasks = listed;
        events
    }
}

pub async fn run(
    config: CoordinatorConfig,
    url: String,
    context: Context,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let failures = context.counters.counter("collector_coordinator_poll_failures_total");
    let invalid = context.counters.counter("collector_coordinator_invalid_total");
    let client = reqwest::Client::builder().timeout(Duration::from_millis(config.timeout_ms)).build()?;
    let base = url.trim_end_matches('/').to_owned();
    let mut seen = Seen::default();
    let mut reachability = Reachability::default();
    let mut interval = tokio::time::interval(Duration::from_millis(config.poll_ms.max(100)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    info!(url = %base, "polling the coordinator");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            _ = interval.tick() => {}
        }
        let polled = async {
            let workers: Workers =
                client.get(format!("{base}/api/workers")).send().await?.error_for_status()?.json().await?;
            let tasks: Tasks = client.get(format!("{base}/api/tasks")).send().await?.error_for_status()?.json().await?;
            Ok::<_, reqwest::Error>((workers.workers, tasks.tasks))
        };
        let (workers, tasks) = match polled.await {
            Ok(lists) => lists,
            Err(err) => {
                // The coordinator may be restarting: the next poll tries again.
                failures.inc();
                let error = with_causes(&err);
                warn!(url = %base, error = %error, "coordinator poll failed");
                reachability.failed(&error, &publisher).await;
                continue;
            }
        };
        let now = shared::now_ms();
        let news = reachability.answered(now);
        let announced = news.is_some();
        let mut events: Vec<Envelope<Event>> = news.into_iter().collect();
        events.extend(seen.diff(workers, tasks, now));
        events.retain(|envelope| match validate(&envelope.payload) {
            Ok(()) => true,
            Err(err) => {
                invalid.inc();
                warn!(error = %err, event = envelope.payload.kind(), "coordinator sent an invalid item, skipped");
                false
            }
        });
        if let Err(err) = publisher.publish(events.into_iter().map(Outgoing::given).collect()).await {
            warn!(error = format!("{err:#}"), "coordinator events not stored; the next poll resends them");
            seen = Seen::default();
            if announced {
                reachability.forget();
            }
        }
    }
}

/// Whether the coordinator answered the last poll, as last published (`None`: not yet).
#[derive(Default)]
struct Reachability {
    answering: Option<bool>,
}

impl Reachability {
    /// A poll succeeded: the `healthy` event to publish with its events, if that is news.
    fn answered(&mut self, now: i64) -> Option<Envelope<Event>> {
        if self.answering == Some(true) {
            return None;
        }
        self.answering = Some(true);
        let event = component_status(ComponentHealth::Healthy, "the coordinator answers".into());
        Some(Envelope::with_id(format!("coord-status-healthy-{now}"), now, "coordinator", event))
    }

    /// A poll failed: publishes `down` if that is news. Kept as news when it cannot be
    /// stored, so the next failed poll tries again.
    async fn failed(&mut self, error: &str, publisher: &Publisher) {
        if self.answering == Some(false) {
            return;
        }
        let now = shared::now_ms();
        let event = component_status(ComponentHealth::Down, format!("the coordinator does not answer: {error}"));
        let envelope = Envelope::with_id(format!("coord-status-down-{now}"), now, "coordinator", event);
        match publisher.publish(vec![Outgoing::given(envelope)]).await {
            Ok(()) => self.answering = Some(false),
            Err(err) => warn!(error = format!("{err:#}"), "coordinator status not stored; retried on the next poll"),
        }
    }

    /// The `healthy` event was not stored: say it again after the next poll.
    fn forget(&mut self) {
        self.answering = None;
    }
}

/// An error and its causes on one line: reqwest's own text names the URL, not why it failed.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

fn component_status(health: ComponentHealth, message: String) -> Event {
    Event::ComponentStatus { component: "coordinator".into(), health, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: &str) -> RemoteTask {
        RemoteTask {
            task_id: "t1".into(),
            model: "vit-large".into(),
            family: Some(ModelFamily::Vision),
            priority: Some(7),
            status: status.into(),
            worker_id: Some("w1".into()),
            created_at: Some(Time::Millis(1_000)),
            started_at: None,
            completed_at: None,
            error: None,
        }
    }

    #[test]
    fn healthy_is_published_once_per_return() {
        let mut reachability = Reachability::default();
        let first = reachability.answered(1).expect("the first success is news");
        assert!(matches!(first.payload, Event::ComponentStatus { health: ComponentHealth::Healthy, .. }));
        assert!(reachability.answered(2).is_none(), "still answering is no news");
        reachability.answering = Some(false);
        assert!(reachability.answered(3).is_some(), "answering again is news");
        reachability.forget();
        assert!(reachability.answered(4).is_some(), "a healthy not stored is said again");
    }

    #[test]
    fn a_task_walks_its_lifecycle_and_a_retry_starts_it_again() {
        let mut seen = Seen::default();
        let kinds = |events: Vec<Envelope<Event>>| events.into_iter().map(|e| e.payload.kind()).collect::<Vec<_>>();
        assert_eq!(kinds(seen.diff(vec![], vec![task("queued")], 5)), ["task_queued"]);
        assert!(seen.diff(vec![], vec![task("queued")], 6).is_empty(), "nothing changed");
        assert_eq!(kinds(seen.diff(vec![], vec![task("running")], 7)), ["task_assigned", "task_started"]);
        assert_eq!(kinds(seen.diff(vec![], vec![task("failed")], 8)), ["task_failed"]);
        assert_eq!(
            kinds(seen.diff(vec![], vec![task("running")], 9)),
            ["task_retried", "task_assigned", "task_started"]
        );
        assert_eq!(kinds(seen.diff(vec![], vec![task("completed")], 10)), ["task_completed"]);
    }
}
