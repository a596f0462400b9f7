//! The fleet's state, folded from FLEET_EVENTS alone (the metrics derived from it are in
//! `derive`).
//!
//! `apply` is the only way events change the state, so replaying the same events from the
//! same snapshot always gives the same state. `expire` ages things out by the clock; what
//! ages out leaves its counts behind in aggregates.

use super::partition::Partition;
use super::window::{HourCounts, Last, MinuteCounts, minute_counts_or_times};
use crate::event::{Capabilities, Event, HardwareKind, ModelFamily, ReportedStatus};
use crate::metrics::{ComponentState, FinishedTask, WorkerStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Samples kept for the fleet's latency percentiles and scheduling efficiency.
const WINDOW: usize = 1000;
/// Samples kept per task group (family, model, hardware).
const GROUP_WINDOW: usize = 200;
/// Finished tasks listed for an hour, failed ones for a day (both at most `max_tasks_tracked`).
const COMPLETED_KEPT_MS: i64 = 3600 * 1000;
const FAILED_KEPT_MS: i64 = 24 * 3600 * 1000;
/// A failed task not retried within this long leaves the live set, ms.
const RETRY_WAIT_MS: i64 = 10 * 60_000;
/// Distinct error texts counted for the failure patterns; later ones count as one more.
const ERRORS_KEPT: usize = 64;
/// What an error text longer than this is cut to, in characters.
const ERROR_CHARS: usize = 200;
/// The key the errors past [`ERRORS_KEPT`] count under.
pub const OTHER_ERRORS: &str = "(other errors)";

/// Settings that turn raw figures into statuses and bound memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// No heartbeat for this long: disconnected, ms.
    pub lost_after_ms: i64,
    /// No heartbeat for this long: retired, its series dropped, ms.
    pub retire_after_ms: i64,
    /// CPU at or above this: overloaded, percent.
    pub overload_cpu_pct: f32,
    /// Finished tasks listed (completed and failed, each).
    pub max_tasks_tracked: usize,
}

impl Limits {
    pub fn new(fleet: &crate::config::FleetConfig, max_tasks_tracked: usize) -> Self {
        Self {
            lost_after_ms: fleet.lost_after_secs as i64 * 1000,
            retire_after_ms: fleet.retire_after_secs as i64 * 1000,
            overload_cpu_pct: fleet.overload_cpu_pct,
            max_tasks_tracked,
        }
    }
}

/// 1: the first layout kept (December 2026).
impl crate::snapshot::Layout for FleetState {
    const LAYOUT: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetState {
    pub workers: BTreeMap<String, WorkerState>,
    /// Tasks not finished (queued, assigned, running) and failed ones awaiting a retry.
    pub tasks: BTreeMap<String, TaskState>,
    pub totals: Totals,
    pub recent: Recent,
    /// Per `family:<f>`, `model:<m>`, `hardware:<h>`.
    pub groups: BTreeMap<String, Group>,
    /// Per `<hardware>/<family>`: finished runs and their durations.
    pub pairs: BTreeMap<String, Pair>,
    pub faults: Faults,
    pub completed_tasks: Last<FinishedTask>,
    pub failed_tasks: Last<FinishedTask>,
    /// The coordinator's and load balancer's health, as they last reported it.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentState>,
    /// The part of the fleet folded here (all of it unless partitioned).
    #[serde(default)]
    pub partition: Partition,
    /// Other partitions' workers: their hardware, for the tasks of ours they run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub directory: BTreeMap<String, HardwareKind>,
    /// Other partitions' tasks running on our workers: when each started.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub foreign_runs: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerState {
    pub capabilities: Option<Capabilities>,
    pub reported: ReportedStatus,
    pub last_seen: i64,
    /// When it last (re)joined.
    pub connected_since: i64,
    /// Set while a coordinator reports it offline.
    pub down_since: Option<i64>,
    pub cpu_pct: f32,
    pub memory_pct: f32,
    pub gpu_pct: Option<f32>,
    /// Unknown until a heartbeat gives it (a coordinator does not).
    pub network_pct: Option<f32>,
    pub running_tasks: u32,
    pub queued_tasks: u32,
    pub completed: u64,
    pub failed: u64,
    pub duration_ms_total: f64,
    pub completions: HourCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    Queued,
    Assigned,
    Running,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub model: String,
    pub family: Option<ModelFamily>,
    pub priority: u8,
    pub status: TaskStatus,
    /// When first queued (for the total time) and when last (re)queued (for queue time).
    pub created_at: i64,
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub worker_id: Option<String>,
    pub hardware: Option<HardwareKind>,
    pub changed_at: i64,
    /// Tasks it waits for, as it was queued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Retries so far (0 for a task on its first run).
    #[serde(default)]
    pub attempts: u32,
}

/// Totals since the stream began: counts never come from a truncated list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub retried: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    #[serde(deserialize_with = "minute_counts_or_times")]
    pub completions: MinuteCounts,
    pub queue_ms: Last<f64>,
    pub processing_ms: Last<f64>,
    pub best_fit: Last<bool>,
}

impl Default for Recent {
    fn default() -> Self {
        Self {
            completions: MinuteCounts::default(),
            queue_ms: Last::new(WINDOW),
            processing_ms: Last::new(WINDOW),
            best_fit: Last::new(WINDOW),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub completed: u64,
    pub failed: u64,
    #[serde(deserialize_with = "minute_counts_or_times")]
    pub completions: MinuteCounts,
    pub durations: Last<f64>,
    /// A model's family (model groups only).
    #[serde(default)]
    pub family: Option<ModelFamily>,
    /// Queue times of the group's last starts, and whether its last assignments went to a
    /// best-fit worker: the group's scheduling efficiency.
    #[serde(default = "group_window")]
    pub queue_ms: Last<f64>,
    #[serde(default = "group_window")]
    pub best_fit: Last<bool>,
}

fn group_window<T: Clone>() -> Last<T> {
    Last::new(GROUP_WINDOW)
}

impl Default for Group {
    fn default() -> Self {
        Self {
            completed: 0,
            failed: 0,
            completions: MinuteCounts::default(),
            durations: group_window(),
            family: None,
            queue_ms: group_window(),
            best_fit: group_window(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub completed: u64,
    pub failed: u64,
    pub duration_ms_total: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    pub recovery_actions: u64,
    pub recovery_actions_succeeded: u64,
    pub outages: u64,
    pub recoveries: u64,
    pub downtime_ms_total: f64,
    /// Per recovery action: how often it was taken and how often it worked.
    #[serde(default)]
    pub actions: BTreeMap<String, ActionCount>,
    /// Retried tasks that then completed, and those that failed again.
    #[serde(default)]
    pub retries_recovered: u64,
    #[serde(default)]
    pub retries_failed_again: u64,
    /// Failures per error text (at most [`ERRORS_KEPT`] texts, then [`OTHER_ERRORS`]).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionCount {
    pub taken: u64,
    pub succeeded: u64,
}

impl Faults {
    fn count_error(&mut self, error: &str) {
        let error: String = error.chars().take(ERROR_CHARS).collect();
        let key = match self.errors.contains_key(&error) || self.errors.len() < ERRORS_KEPT {
            true => error,
            false => OTHER_ERRORS.to_owned(),
        };
        *self.errors.entry(key).or_default() += 1;
    }
}

impl WorkerState {
    fn new(time: i64) -> Self {
        Self {
            capabilities: None,
            reported: ReportedStatus::Online,
            last_seen: time,
            connected_since: time,
            down_since: None,
            cpu_pct: 0.0,
            memory_pct: 0.0,
            gpu_pct: None,
            network_pct: None,
            running_tasks: 0,
            queued_tasks: 0,
            completed: 0,
            failed: 0,
            duration_ms_total: 0.0,
            completions: HourCounts::default(),
        }
    }

    pub fn status(&self, now: i64, limits: &Limits) -> WorkerStatus {
        if self.reported == ReportedStatus::Offline || now - self.last_seen > limits.lost_after_ms {
            return WorkerStatus::Disconnected;
        }
        let slots = self.capabilities.as_ref().map(|capabilities| capabilities.slots);
        Load::of(self.cpu_pct, self.running_tasks, self.queued_tasks, slots, limits).status()
    }

    /// Back from an outage (a registration or heartbeat after `offline`).
    fn rejoin(&mut self, time: i64, faults: &mut Faults) {
        if let Some(down_since) = self.down_since.take() {
            faults.recoveries += 1;
            faults.downtime_ms_total += (time - down_since).max(0) as f64;
            self.connected_since = time;
        }
        self.reported = ReportedStatus::Online;
    }
}

/// What a connected worker's status rests on, from its last heartbeat: every reader that
/// decides a status (or which heartbeats may change one) asks this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub hot: bool,
    pub over_slots: bool,
    pub running: bool,
}

impl Load {
    pub fn of(cpu_pct: f32, running_tasks: u32, queued_tasks: u32, slots: Option<u32>, limits: &Limits) -> Self {
        Self {
            hot: cpu_pct >= limits.overload_cpu_pct,
            over_slots: queued_tasks > slots.unwrap_or(u32::MAX),
            running: running_tasks > 0,
        }
    }

    pub fn status(self) -> WorkerStatus {
        if self.hot || self.over_slots {
            WorkerStatus::Overloaded
        } else if self.running {
            WorkerStatus::Busy
        } else {
            WorkerStatus::Idle
        }
    }
}

pub(super) fn group_keys(task: &TaskState) -> impl Iterator<Item = String> {
    let family = task.family.map(|family| format!("family:{}", family.as_str()));
    let hardware = task.hardware.map(|hardware| format!("hardware:{}", hardware.as_str()));
    [Some(format!("model:{}", task.model)), family, hardware].into_iter().flatten()
}

impl Default for FleetState {
    fn default() -> Self {
        Self::new(500)
    }
}

impl FleetState {
    pub fn new(max_tasks_tracked: usize) -> Self {
        Self {
            workers: BTreeMap::new(),
            tasks: BTreeMap::new(),
            totals: Totals::default(),
            recent: Recent::default(),
            groups: BTreeMap::new(),
            pairs: BTreeMap::new(),
            faults: Faults::default(),
            completed_tasks: Last::new(max_tasks_tracked),
            failed_tasks: Last::new(max_tasks_tracked),
            components: BTreeMap::new(),
            partition: Partition::WHOLE,
            directory: BTreeMap::new(),
            foreign_runs: BTreeMap::new(),
        }
    }

    /// An empty state for one partition of the fleet.
    pub fn partitioned(max_tasks_tracked: usize, partition: Partition) -> Self {
        Self { partition, ..Self::new(max_tasks_tracked) }
    }

    /// Lists at most `max_tasks_tracked` finished tasks of each kind from now on (a state
    /// restored from a snapshot keeps the bound it was saved with until told).
    pub fn set_max_tasks_tracked(&mut self, max_tasks_tracked: usize) {
        self.completed_tasks.set_capacity(max_tasks_tracked);
        self.failed_tasks.set_capacity(max_tasks_tracked);
    }

    /// Folds one event in, at its event time. Returns the task it finished, if any.
    pub fn apply(&mut self, time: i64, event: &Event) -> Option<FinishedTask> {
        if !self.partition.is_whole() && self.apply_foreign(time, event) {
            return None;
        }
        match event {
            Event::WorkerRegistered { worker_id, capabilities } => {
                let worker = self.workers.entry(worker_id.clone()).or_insert_with(|| WorkerState::new(time));
                worker.capabilities = Some(capabilities.clone());
                worker.rejoin(time, &mut self.faults);
                worker.last_seen = worker.last_seen.max(time);
            }
            Event::Heartbeat {
                worker_id,
                cpu_pct,
                memory_pct,
                gpu_pct,
                network_pct,
                running_tasks,
                queued_tasks,
                ..
            } => {
                let worker = self.workers.entry(worker_id.clone()).or_insert_with(|| WorkerState::new(time));
                if time >= worker.last_seen {
                    worker.rejoin(time, &mut self.faults);
                    worker.last_seen = time;
                    // A figure the heartbeat leaves out keeps its last known value.
                    worker.cpu_pct = cpu_pct.unwrap_or(worker.cpu_pct);
                    worker.memory_pct = memory_pct.unwrap_or(worker.memory_pct);
                    worker.gpu_pct = gpu_pct.or(worker.gpu_pct);
                    worker.network_pct = network_pct.or(worker.network_pct);
                    worker.running_tasks = running_tasks.unwrap_or(worker.running_tasks);
                    worker.queued_tasks = queued_tasks.unwrap_or(worker.queued_tasks);
                }
            }
            Event::WorkerStatusChanged { worker_id, status, .. } => {
                let worker = self.workers.entry(worker_id.clone()).or_insert_with(|| WorkerState::new(time));
                match status {
                    ReportedStatus::Offline if worker.down_since.is_none() => {
                        worker.down_since = Some(time);
                        self.faults.outages += 1;
                        worker.reported = ReportedStatus::Offline;
                    }
                    ReportedStatus::Offline => {}
                    ReportedStatus::Online => worker.rejoin(time, &mut self.faults),
                    ReportedStatus::Draining => worker.reported = ReportedStatus::Draining,
                }
            }
            Event::WorkerDeregistered { worker_id, .. } => {
                self.workers.remove(worker_id);
            }
            Event::TaskQueued { task_id, model, family, priority, depends_on } => {
                let task = TaskState {
                    model: model.clone(),
                    family: Some(*family),
                    priority: *priority,
                    depends_on: depends_on.clone(),
                    ..queued(time)
                };
                self.groups.entry(format!("model:{model}")).or_default().family = Some(*family);
                self.tasks.insert(task_id.clone(), task);
            }
            Event::TaskAssigned { task_id, worker_id, best_fit } => {
                if let Some(best_fit) = *best_fit {
                    self.recent.best_fit.push(best_fit);
                }
                let hardware = self.hardware_of(worker_id);
                let task = self.task(task_id, time);
                task.status = TaskStatus::Assigned;
                task.worker_id = Some(worker_id.clone());
                task.hardware = hardware;
                let task = task.clone();
                if let Some(best_fit) = *best_fit {
                    for key in group_keys(&task) {
                        self.groups.entry(key).or_default().best_fit.push(best_fit);
                    }
                }
            }
            Event::TaskStarted { task_id, worker_id } => {
                let hardware = self.hardware_of(worker_id);
                let task = self.task(task_id, time);
                task.status = TaskStatus::Running;
                task.worker_id = Some(worker_id.clone());
                task.hardware = task.hardware.or(hardware);
                task.started_at = Some(time);
                let waited = (time - task.queued_at).max(0) as f64;
                let task = task.clone();
                self.recent.queue_ms.push(waited);
                for key in group_keys(&task) {
                    self.groups.entry(key).or_default().queue_ms.push(waited);
                }
            }
            Event::TaskCompleted { task_id, worker_id } => {
                let mut task = self.tasks.remove(task_id).unwrap_or_else(|| queued(time));
                task.worker_id = Some(worker_id.clone());
                task.hardware = task.hardware.or(self.hardware_of(worker_id));
                let processing_ms = task.started_at.map_or(0.0, |started| (time - started).max(0) as f64);
                self.totals.completed += 1;
                if task.attempts > 0 {
                    self.faults.retries_recovered += 1;
                }
                self.recent.completions.add(time);
                self.recent.processing_ms.push(processing_ms);
                if let Some(worker) = self.workers.get_mut(worker_id) {
                    worker.completed += 1;
                    worker.duration_ms_total += processing_ms;
                    worker.completions.add(time);
                }
                for key in group_keys(&task) {
                    let group = self.groups.entry(key).or_default();
                    group.completed += 1;
                    group.completions.add(time);
                    group.durations.push(processing_ms);
                }
                if let Some(pair) = pair_key(&task) {
                    let pair = self.pairs.entry(pair).or_default();
                    pair.completed += 1;
                    pair.duration_ms_total += processing_ms;
                }
                let finished = finished(task_id, &task, time, true, None);
                self.completed_tasks.push(finished.clone());
                return Some(finished);
            }
            Event::TaskFailed { task_id, worker_id, error } => {
                self.totals.failed += 1;
                self.faults.count_error(error);
                let hardware = worker_id.as_deref().and_then(|id| self.hardware_of(id));
                if let Some(worker) = worker_id.as_ref().and_then(|id| self.workers.get_mut(id)) {
                    worker.failed += 1;
                }
                let task = self.task(task_id, time);
                task.status = TaskStatus::Failed;
                task.hardware = task.hardware.or(hardware);
                if worker_id.is_some() {
                    task.worker_id = worker_id.clone();
                }
                let task = task.clone();
                if task.attempts > 0 {
                    self.faults.retries_failed_again += 1;
                }
                for key in group_keys(&task) {
                    self.groups.entry(key).or_default().failed += 1;
                }
                if let Some(pair) = pair_key(&task) {
                    self.pairs.entry(pair).or_default().failed += 1;
                }
                let finished = finished(task_id, &task, time, false, Some(error.clone()));
                self.failed_tasks.push(finished.clone());
                return Some(finished);
            }
            Event::TaskRetried { task_id, attempt } => {
                self.totals.retried += 1;
                let task = self.task(task_id, time);
                task.attempts = task.attempts.max(*attempt);
                task.status = TaskStatus::Queued;
                task.queued_at = time;
                task.started_at = None;
                task.worker_id = None;
                task.hardware = None;
            }
            Event::TaskCancelled { task_id, .. } => {
                self.totals.cancelled += 1;
                self.tasks.remove(task_id);
            }
            Event::RecoveryAction { action, succeeded, .. } => {
                self.faults.recovery_actions += 1;
                let count = self.faults.actions.entry(action.clone()).or_default();
                count.taken += 1;
                if *succeeded {
                    self.faults.recovery_actions_succeeded += 1;
                    count.succeeded += 1;
                }
            }
            Event::ComponentStatus { component, health, message } => {
                let since = match self.components.get(component) {
                    Some(known) if known.health == *health => known.since,
                    _ => time,
                };
                let state = ComponentState { health: *health, message: message.clone(), since, reported_at: time };
                self.components.insert(component.clone(), state);
            }
            // The fleet's state is workers and tasks; the pipeline's reports and alert
            // control are the alerter's.
            Event::ServiceReport { .. }
            | Event::Clock {}
            | Event::AlertRaised { .. }
            | Event::AlertAcknowledged { .. }
            | Event::AlertResolved { .. }
            | Event::SilenceCreated { .. }
            | Event::SilenceDeleted { .. } => {}
        }
        None
    }

    /// Folds what another partition owns, as far as this one needs it: a worker's hardware,
    /// and what a task of another partition did on one of ours. False for what is ours.
    fn apply_foreign(&mut self, time: i64, event: &Event) -> bool {
        if let Some(task_id) = event.task_id() {
            if self.partition.owns(task_id) {
                return false;
            }
            match event {
                Event::TaskStarted { task_id, .. } => {
                    self.foreign_runs.insert(task_id.clone(), time);
                }
                Event::TaskCompleted { task_id, worker_id } => {
                    let started = self.foreign_runs.remove(task_id);
                    if let Some(worker) = self.workers.get_mut(worker_id) {
                        worker.completed += 1;
                        worker.duration_ms_total += started.map_or(0.0, |started| (time - started).max(0) as f64);
                        worker.completions.add(time);
                    }
                }
                Event::TaskFailed { task_id, worker_id, .. } => {
                    self.foreign_runs.remove(task_id);
                    if let Some(worker) = worker_id.as_ref().and_then(|id| self.workers.get_mut(id)) {
                        worker.failed += 1;
                    }
                }
                _ => {}
            }
            return true;
        }
        match event.worker_id() {
            Some(worker_id) if !self.partition.owns(worker_id) => {
                match event {
                    Event::WorkerRegistered { worker_id, capabilities } => {
                        self.directory.insert(worker_id.clone(), capabilities.hardware);
                    }
                    Event::WorkerDeregistered { worker_id, .. } => {
                        self.directory.remove(worker_id);
                    }
                    _ => {}
                }
                true
            }
            _ => false,
        }
    }

    fn hardware_of(&self, worker_id: &str) -> Option<HardwareKind> {
        match self.workers.get(worker_id) {
            Some(worker) => worker.capabilities.as_ref().map(|capabilities| capabilities.hardware),
            None => self.directory.get(worker_id).copied(),
        }
    }

    /// The task, or a placeholder when its `task_queued` is older than the stream.
    fn task(&mut self, task_id: &str, time: i64) -> &mut TaskState {
        let task = self.tasks.entry(task_id.to_owned()).or_insert_with(|| queued(time));
        task.changed_at = time;
        task
    }

    /// Ages out by the clock: failed tasks never retried, old
    /// finished-task lists, and workers silent past `retire_after_ms`. Returns the retired.
    pub fn expire(&mut self, now: i64, limits: &Limits) -> Vec<String> {
        self.tasks.retain(|_, task| task.status != TaskStatus::Failed || now - task.changed_at <= RETRY_WAIT_MS);
        // A foreign task cancelled mid-run never says so here: its start is forgotten in a day.
        self.foreign_runs.retain(|_, started| now - *started <= FAILED_KEPT_MS);
        self.completed_tasks.drop_while(|task| now - task.finished_at > COMPLETED_KEPT_MS);
        self.failed_tasks.drop_while(|task| now - task.finished_at > FAILED_KEPT_MS);
        let retired: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, worker)| now - worker.last_seen > limits.retire_after_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &retired {
            self.workers.remove(id);
        }
        retired
    }
}

/// A task just queued at `time`; `model: unknown` stands in when its `task_queued` is
/// older than the stream.
fn queued(time: i64) -> TaskState {
    TaskState {
        model: "unknown".into(),
        family: None,
        priority: 0,
        status: TaskStatus::Queued,
        created_at: time,
        queued_at: time,
        started_at: None,
        worker_id: None,
        hardware: None,
        changed_at: time,
        depends_on: Vec::new(),
        attempts: 0,
    }
}

fn pair_key(task: &TaskState) -> Option<String> {
    Some(format!("{}/{}", task.hardware?.as_str(), task.family?.as_str()))
}

fn finished(task_id: &str, task: &TaskState, time: i64, succeeded: bool, error: Option<String>) -> FinishedTask {
    let started = task.started_at.unwrap_or(time);
    FinishedTask {
        task_id: task_id.to_owned(),
        model: task.model.clone(),
        family: task.family,
        worker_id: task.worker_id.clone(),
        hardware: task.hardware,
        priority: task.priority,
        succeeded,
        finished_at: time,
        queue_ms: (started - task.queued_at).max(0) as f64,
        processing_ms: (time - started).max(0) as f64,
        total_ms: (time - task.created_at).max(0) as f64,
        error,
        depends_on: task.depends_on.clone(),
        attempts: task.attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::HardwareKind;
    use crate::metrics::WorkerCounts;

    const LIMITS: Limits =
        Limits { lost_after_ms: 15_000, retire_after_ms: 60_000, overload_cpu_pct: 90.0, max_tasks_tracked: 10 };

    fn heartbeat(worker_id: &str, cpu_pct: f32, running_tasks: u32) -> Event {
        Event::Heartbeat {
            worker_id: worker_id.into(),
            cpu_pct: Some(cpu_pct),
            memory_pct: Some(30.0),
            gpu_pct: None,
            gpu_memory_pct: None,
            network_pct: Some(5.0),
            running_tasks: Some(running_tasks),
            queued_tasks: Some(0),
        }
    }

    fn registered(worker_id: &str) -> Event {
        Event::WorkerRegistered {
            worker_id: worker_id.into(),
            capabilities: Capabilities {
                hardware: HardwareKind::Cpu,
                cpu_cores: 8,
                memory_gb: 32.0,
                gpu_model: None,
                gpu_memory_gb: None,
                slots: 2,
                tags: vec![],
            },
        }
    }

    fn lifecycle() -> Vec<(i64, Event)> {
        let task = |id: &str| id.to_owned();
        vec![
            (0, registered("a")),
            (0, registered("b")),
            (0, registered("c")),
            (1_000, heartbeat("a", 20.0, 1)),
            (1_000, heartbeat("b", 95.0, 2)),
            (
                1_000,
                Event::TaskQueued {
                    task_id: task("t1"),
                    model: "bert-base".into(),
                    family: ModelFamily::Text,
                    priority: 5,
                    depends_on: vec![],
                },
            ),
            (
                1_000,
                Event::TaskQueued {
                    task_id: task("t2"),
                    model: "vit-large".into(),
                    family: ModelFamily::Vision,
                    priority: 5,
                    depends_on: vec![],
                },
            ),
            (
                1_000,
                Event::TaskQueued {
                    task_id: task("t3"),
                    model: "detr".into(),
                    family: ModelFamily::Vision,
                    priority: 5,
                    depends_on: vec![],
                },
            ),
            (2_000, Event::TaskAssigned { task_id: task("t1"), worker_id: "a".into(), best_fit: Some(true) }),
            (3_000, Event::TaskStarted { task_id: task("t1"), worker_id: "a".into() }),
            (3_000, Event::TaskAssigned { task_id: task("t2"), worker_id: "b".into(), best_fit: Some(false) }),
            (3_000, Event::TaskStarted { task_id: task("t2"), worker_id: "b".into() }),
            (7_000, Event::TaskCompleted { task_id: task("t1"), worker_id: "a".into() }),
            (8_000, Event::TaskFailed { task_id: task("t2"), worker_id: Some("b".into()), error: "oom".into() }),
            (8_000, Event::TaskRetried { task_id: task("t2"), attempt: 1 }),
        ]
    }

    #[test]
    fn counts_statuses_and_timings_follow_the_events() {
        let mut state = FleetState::default();
        for (time, event) in lifecycle() {
            state.apply(time, &event);
        }
        let metrics = state.system_metrics(10_000, 15, &LIMITS);
        // a: busy (one task), b: overloaded (95% CPU), c: idle (registered at 0, no
        // heartbeat yet, still within the 15 s allowance).
        assert_eq!(
            metrics.workers,
            WorkerCounts { total: 3, active: 2, idle: 1, busy: 1, overloaded: 1, disconnected: 0 }
        );
        assert_eq!((metrics.tasks.queued, metrics.tasks.running, metrics.tasks.completed), (2, 0, 1));
        assert_eq!((metrics.tasks.failed, metrics.tasks.retried), (1, 1));
        assert_eq!(metrics.queue_time_ms.count, 2);
        assert_eq!(metrics.queue_time_ms.p99, 2_000.0);
        assert_eq!(metrics.processing_time_ms.p50, 4_000.0);
        assert_eq!(metrics.scheduling_efficiency, 0.5);
        assert_eq!(metrics.throughput_per_min, 1.0);
        assert_eq!(metrics.events_seq, 15);

        let later = state.system_metrics(20_000, 15, &LIMITS);
        assert_eq!(later.workers.disconnected, 3, "no heartbeat for over 15 s");
    }

    #[test]
    fn silent_workers_go_lost_then_retired_and_finished_tasks_stay_bounded() {
        let mut state = FleetState::new(LIMITS.max_tasks_tracked);
        state.apply(0, &registered("a"));
        state.apply(0, &registered("b"));
        state.apply(50_000, &heartbeat("b", 10.0, 0));
        for n in 0..30 {
            let task_id = format!("t{n}");
            state.apply(
                1_000,
                &Event::TaskQueued {
                    task_id: task_id.clone(),
                    model: "bert-base".into(),
                    family: ModelFamily::Text,
                    priority: 1,
                    depends_on: vec![],
                },
            );
            state.apply(2_000, &Event::TaskStarted { task_id: task_id.clone(), worker_id: "b".into() });
            state.apply(3_000, &Event::TaskCompleted { task_id, worker_id: "b".into() });
        }
        assert_eq!(state.completed_tasks.len(), LIMITS.max_tasks_tracked, "the list is capped");
        let tasks = state.task_metrics(50_000, Vec::new(), &LIMITS);
        let text = tasks.by_family.iter().find(|group| group.key == "text").expect("text group");
        assert_eq!(text.completed, 30, "counts come from aggregates, not the capped list");

        // a: silent since 0. At 20 s it is lost (15 s), at 61 s retired (60 s); b lives on.
        assert_eq!(state.workers["a"].status(20_000, &LIMITS), WorkerStatus::Disconnected);
        assert!(state.expire(20_000, &LIMITS).is_empty());
        assert_eq!(state.expire(61_000, &LIMITS), vec!["a".to_owned()]);
        assert_eq!(state.workers.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(state.system_metrics(61_000, 0, &LIMITS).workers.total, 1);
    }

    #[test]
    fn a_snapshot_round_trip_then_the_tail_equals_one_uninterrupted_run() {
        let events = lifecycle();
        let mut whole = FleetState::default();
        for (time, event) in &events {
            whole.apply(*time, event);
        }
        let mut first = FleetState::default();
        for (time, event) in &events[..7] {
            first.apply(*time, event);
        }
        let bytes = crate::codec::encode(&first).expect("encodes");
        let mut restored: FleetState = crate::codec::decode(&bytes).expect("decodes");
        for (time, event) in &events[7..] {
            restored.apply(*time, event);
        }
        assert_eq!(restored, whole);
    }

    #[test]
    fn scheduling_recovery_and_failure_patterns_are_counted() {
        let mut state = FleetState::default();
        for (time, event) in lifecycle() {
            state.apply(time, &event);
        }
        // t2 was retried after failing with "oom"; it now fails again, then completes.
        state.apply(9_000, &Event::TaskStarted { task_id: "t2".into(), worker_id: "b".into() });
        state.apply(
            9_500,
            &Event::TaskFailed { task_id: "t2".into(), worker_id: Some("b".into()), error: "oom".into() },
        );
        state.apply(9_500, &Event::TaskRetried { task_id: "t2".into(), attempt: 2 });
        state.apply(9_600, &Event::TaskStarted { task_id: "t2".into(), worker_id: "a".into() });
        state.apply(9_900, &Event::TaskCompleted { task_id: "t2".into(), worker_id: "a".into() });
        for succeeded in [true, false, true] {
            let action = Event::RecoveryAction {
                component: "coordinator".into(),
                action: "reassign_tasks".into(),
                target: None,
                succeeded,
            };
            state.apply(9_900, &action);
        }
        let status = |health, message: &str| Event::ComponentStatus {
            component: "coordinator".into(),
            health,
            message: message.into(),
        };
        state.apply(1_000, &status(crate::event::ComponentHealth::Healthy, "up"));
        state.apply(5_000, &status(crate::event::ComponentHealth::Healthy, "still up"));
        state.apply(6_000, &status(crate::event::ComponentHealth::Degraded, "slow"));

        let tasks = state.task_metrics(10_000, Vec::new(), &LIMITS);
        let faults = &tasks.fault_tolerance;
        assert_eq!((faults.retries_recovered, faults.retries_failed_again), (1, 1));
        assert_eq!(faults.top_errors, vec![crate::metrics::ErrorCount { error: "oom".into(), count: 2 }]);
        let reassign = &faults.recovery_by_action[0];
        assert_eq!((reassign.action.as_str(), reassign.taken, reassign.succeeded), ("reassign_tasks", 3, 2));
        let vision = tasks.by_family.iter().find(|group| group.key == "vision").expect("vision");
        // t2 went to b (not a best fit); t3 was never assigned.
        assert_eq!(vision.best_fit_ratio, 0.0);
        assert_eq!(vision.queue_time_ms.count, 3, "t2 started three times");
        let vit = tasks.by_model.iter().find(|group| group.key == "vit-large").expect("vit-large");
        assert_eq!(vit.family, Some(ModelFamily::Vision));
        let text = tasks.by_family.iter().find(|group| group.key == "text").expect("text");
        assert_eq!((text.best_fit_ratio, text.queue_time_ms.p50), (1.0, 2_000.0));

        let system = state.system_metrics(10_000, 0, &LIMITS);
        assert_eq!((system.faults.recovery_actions, system.faults.recovery_actions_succeeded), (3, 2));
        let coordinator = &system.components["coordinator"];
        assert_eq!((coordinator.since, coordinator.reported_at, coordinator.message.as_str()), (6_000, 6_000, "slow"));
    }

    #[test]
    fn error_texts_are_bounded() {
        let mut faults = Faults::default();
        for n in 0..ERRORS_KEPT + 10 {
            faults.count_error(&format!("error {n}"));
        }
        faults.count_error(&"x".repeat(10 * ERROR_CHARS));
        assert_eq!(faults.errors.len(), ERRORS_KEPT + 1);
        assert_eq!(faults.errors[OTHER_ERRORS], 11);
        faults.count_error("error 3");
        assert_eq!(faults.errors["error 3"], 2, "a known text still counts as itself");
    }
}
