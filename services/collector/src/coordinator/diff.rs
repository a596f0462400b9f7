//! What the last poll saw, and the events that turn it into this one.
//!
//! A worker that appears registers, one whose status changes reports it, one that goes away
//! deregisters. While the coordinator hears from a worker (`last_heartbeat` moves) it sends
//! a heartbeat with the one figure the lists give: its running tasks. A task walks its
//! lifecycle (queued, assigned and started, then completed, failed or cancelled); back to
//! the queue (failed then pending again, or running then pending or migrating) is a retry.
//! Event ids come from the coordinator's ids, so a resend within JetStream's duplicate
//! window stores nothing twice. Times later than now are taken as now: a coordinator's
//! clock ahead of ours must not keep a worker alive in the future.

use super::families::family_of;
use super::wire::{Clock, Task, TaskDetail, TaskStatus, Worker};
use shared::Envelope;
use shared::event::{Event, ReportedStatus};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub struct SeenWorker {
    status: ReportedStatus,
    last_heartbeat: Option<i64>,
    running: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeenTask {
    status: TaskStatus,
    /// Times it went back to the queue.
    retries: u32,
}

/// The events for one item and what to remember of it once they are stored.
pub struct Change<T> {
    pub events: Vec<Envelope<Event>>,
    pub entry: T,
}

#[derive(Default)]
pub struct Seen {
    pub workers: BTreeMap<String, SeenWorker>,
    pub tasks: BTreeMap<String, SeenTask>,
}

fn event(id: String, time: i64, payload: Event) -> Envelope<Event> {
    Envelope::with_id(id, time, "coordinator", payload)
}

/// A time the coordinator gave, or its reason for being refused.
fn time_of(clock: Clock, field: &str, text: &Option<String>, now: i64) -> Result<Option<i64>, String> {
    match text {
        None => Ok(None),
        Some(text) => match clock.millis(text) {
            Some(millis) => Ok(Some(millis.min(now))),
            None => Err(format!("{field} {text:?} is not an ISO 8601 time")),
        },
    }
}

impl Seen {
    /// Whether a task's detail must be fetched: for its model when it is new, for its
    /// error when it has just failed.
    pub fn needs_detail(&self, task: &Task) -> bool {
        match self.tasks.get(&task.task_id) {
            None => true,
            Some(seen) => task.status == TaskStatus::Failed && seen.status != TaskStatus::Failed,
        }
    }

    pub fn worker(&self, worker: &Worker, running: u32, clock: Clock, now: i64) -> Result<Change<SeenWorker>, String> {
        let id = &worker.worker_id;
        let status = worker.status.reported();
        let last_heartbeat = time_of(clock, "last_heartbeat", &worker.last_heartbeat, now)?;
        let entry = SeenWorker { status, last_heartbeat, running };
        let mut events = Vec::new();
        let previous = self.workers.get(id);
        if previous.is_none() {
            let registered = Event::WorkerRegistered { worker_id: id.clone(), capabilities: worker.capabilities() };
            events.push(event(format!("coord-{id}-registered-{now}"), now, registered));
        }
        // A registration means online: any other status follows it.
        if previous.map(|seen| seen.status).unwrap_or(ReportedStatus::Online) != status {
            let reason = format!("the coordinator reports it {}", worker.status.as_str());
            let change = Event::WorkerStatusChanged { worker_id: id.clone(), status, reason };
            events.push(event(format!("coord-{id}-status-{now}"), now, change));
        }
        let heard = previous.is_none_or(|seen| seen.last_heartbeat != last_heartbeat || seen.running != running);
        if heard && status != ReportedStatus::Offline {
            let time = last_heartbeat.unwrap_or(now);
            let heartbeat = Event::Heartbeat {
                worker_id: id.clone(),
                cpu_pct: None,
                memory_pct: None,
                gpu_pct: None,
                gpu_memory_pct: None,
                network_pct: None,
                running_tasks: Some(running),
                queued_tasks: None,
            };
            events.push(event(format!("coord-{id}-heartbeat-{time}-{running}"), time, heartbeat));
        }
        Ok(Change { events, entry })
    }

    /// Workers no longer listed deregister.
    pub fn gone(&mut self, listed: &BTreeSet<String>, now: i64) -> Vec<Envelope<Event>> {
        let gone: Vec<String> = self.workers.keys().filter(|id| !listed.contains(*id)).cloned().collect();
        gone.into_iter()
            .map(|id| {
                self.workers.remove(&id);
                let reason = "no longer listed by the coordinator".into();
                event(
                    format!("coord-{id}-deregistered-{now}"),
                    now,
                    Event::WorkerDeregistered { worker_id: id, reason },
                )
            })
            .collect()
    }

    pub fn task(
        &self,
        task: &Task,
        detail: Option<&TaskDetail>,
        clock: Clock,
        now: i64,
    ) -> Result<Change<SeenTask>, String> {
        let id = &task.task_id;
        let target = task.status;
        let previous = self.tasks.get(id);
        let mut retries = previous.map_or(0, |seen| seen.retries);
        let mut events = Vec::new();
        let mut from = previous.map(|seen| seen.status.stage());
        if let Some(seen) = previous {
            let requeued = (seen.status == TaskStatus::Failed && target.stage() < 3)
                || (seen.status.stage() == 2 && target.stage() == 0);
            if seen.status == target || (seen.status.stage() == 3 && !requeued) {
                // Nothing new, or a finished task relabelled: nothing to replay.
                return Ok(Change { events, entry: SeenTask { status: target, retries } });
            }
            if requeued {
                retries += 1;
                let retried = Event::TaskRetried { task_id: id.clone(), attempt: retries };
                events.push(event(format!("coord-{id}-retried-{retries}"), now, retried));
                from = Some(0);
            }
        }
        let created = time_of(clock, "created", &task.created, now)?.unwrap_or(now);
        let started = time_of(clock, "started", &task.started, now)?.unwrap_or(now);
        let ended = time_of(clock, "ended", &task.ended, now)?.unwrap_or(now);
        let key = |what: &str| format!("coord-{id}-{what}-{retries}");
        if from.is_none() {
            let model = detail
                .and_then(|detail| detail.config.as_ref())
                .and_then(|config| config.model.clone())
                .or_else(|| task.kind.clone())
                .ok_or("neither config.model nor type names its model")?;
            let queued = Event::TaskQueued {
                task_id: id.clone(),
                family: family_of(&model),
                model,
                priority: task.priority.map_or(5, |priority| priority.clamp(0.0, 9.0) as u8),
                depends_on: vec![],
            };
            events.push(event(key("queued"), created, queued));
        }
        let reached = from.unwrap_or(0);
        let worker = task.worker_id.clone();
        if let Some(worker_id) = worker.clone()
            && reached < 2
            && target.stage() >= 2
            && target != TaskStatus::Cancelled
        {
            let assigned = Event::TaskAssigned { task_id: id.clone(), worker_id: worker_id.clone(), best_fit: None };
            events.push(event(key("assigned"), started.min(ended), assigned));
            events.push(event(
                key("started"),
                started.min(ended),
                Event::TaskStarted { task_id: id.clone(), worker_id },
            ));
        }
        match target {
            TaskStatus::Completed => {
                let worker_id = worker.ok_or("a completed task without worker_id")?;
                events.push(event(key("completed"), ended, Event::TaskCompleted { task_id: id.clone(), worker_id }));
            }
            TaskStatus::Failed => {
                let error = detail.and_then(TaskDetail::error_text).unwrap_or_else(|| "failed".into());
                let failed = Event::TaskFailed { task_id: id.clone(), worker_id: worker, error };
                events.push(event(key("failed"), ended, failed));
            }
            TaskStatus::Cancelled => {
                let reason = "cancelled by the coordinator".into();
                events.push(event(key("cancelled"), ended, Event::TaskCancelled { task_id: id.clone(), reason }));
            }
            TaskStatus::Pending | TaskStatus::Running | TaskStatus::Migrating => {}
        }
        Ok(Change { events, entry: SeenTask { status: target, retries } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: &str) -> Task {
        serde_json::from_value(serde_json::json!({
            "task_id": "t1", "type": "benchmark", "status": status, "created": "2026-11-25T11:00:00",
            "started": null, "ended": null, "worker_id": "w1", "priority": 7,
        }))
        .expect("a task")
    }

    fn kinds(change: &Change<SeenTask>) -> Vec<&'static str> {
        change.events.iter().map(|envelope| envelope.payload.kind()).collect()
    }

    #[test]
    fn a_task_walks_its_lifecycle_and_migrating_or_a_retry_queues_it_again() {
        let utc = Clock::parse("UTC").expect("utc");
        let now = 1_900_000_000_000;
        let mut seen = Seen::default();
        let mut step = |status: &str| {
            let change = seen.task(&task(status), None, utc, now).expect("valid");
            seen.tasks.insert("t1".into(), change.entry.clone());
            kinds(&change)
        };
        assert_eq!(step("pending"), ["task_queued"]);
        assert!(step("pending").is_empty(), "nothing changed");
        assert_eq!(step("running"), ["task_assigned", "task_started"]);
        assert_eq!(step("migrating"), ["task_retried"]);
        assert_eq!(step("running"), ["task_assigned", "task_started"]);
        assert_eq!(step("failed"), ["task_failed"]);
        assert_eq!(step("pending"), ["task_retried"]);
        assert_eq!(step("running"), ["task_assigned", "task_started"]);
        assert_eq!(step("completed"), ["task_completed"]);
        assert!(step("cancelled").is_empty(), "a finished task relabelled is not replayed");
    }

    #[test]
    fn a_new_task_is_named_by_its_model_and_an_odd_time_is_refused() {
        let utc = Clock::parse("UTC").expect("utc");
        let detail: TaskDetail =
            serde_json::from_str(r#"{"config": {"model": "openai/whisper-tiny"}, "error": null}"#).expect("detail");
        let change = Seen::default().task(&task("pending"), Some(&detail), utc, 1_900_000_000_000).expect("valid");
        let Event::TaskQueued { model, family, priority, .. } = &change.events[0].payload else { panic!() };
        assert_eq!((model.as_str(), family.as_str(), *priority), ("openai/whisper-tiny", "audio", 7));
        assert_eq!(change.events[0].time, utc.millis("2026-11-25T11:00:00").expect("time"));
        let mut odd = task("pending");
        odd.created = Some("last tuesday".into());
        let refused = Seen::default().task(&odd, None, utc, 0).err().expect("refused");
        assert!(refused.contains("created"), "{refused}");
    }
}
