//! The fleet's state, folded from FLEET_EVENTS alone, and the metrics derived from it.
//!
//! `apply` is the only way the state changes, so replaying the same events from the same
//! snapshot always gives the same state.

use serde::{Deserialize, Serialize};
use shared::event::{Capabilities, Event, ModelFamily, ReportedStatus};
use shared::metrics::{Summary, SystemMetrics, TaskCounts, Utilisation, WorkerCounts};
use std::collections::{BTreeMap, VecDeque};

/// Samples kept for the latency percentiles and the scheduling efficiency.
const WINDOW: usize = 1000;
/// Throughput counts completions over this much event time, ms.
const THROUGHPUT_WINDOW_MS: i64 = 60_000;
/// A failed task not retried within this long is dropped from the live set, ms.
const FAILED_KEPT_MS: i64 = 10 * 60_000;

/// Thresholds that turn raw figures into a worker status.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// No heartbeat for this long: disconnected, ms.
    pub lost_after_ms: i64,
    /// CPU at or above this: overloaded, percent.
    pub overload_cpu_pct: f32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetState {
    pub workers: BTreeMap<String, WorkerState>,
    /// Tasks not yet finished (queued, assigned, running), and failed ones awaiting a retry.
    pub tasks: BTreeMap<String, TaskState>,
    pub totals: Totals,
    pub recent: Recent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerState {
    pub capabilities: Option<Capabilities>,
    pub reported: ReportedStatus,
    pub last_seen: i64,
    pub cpu_pct: f32,
    pub memory_pct: f32,
    pub gpu_pct: Option<f32>,
    pub network_pct: f32,
    pub running_tasks: u32,
    pub queued_tasks: u32,
    pub completed: u64,
    pub failed: u64,
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
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub worker_id: Option<String>,
    pub changed_at: i64,
}

/// Totals since the stream began: counts never come from a truncated list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub retried: u64,
}

/// Bounded windows of recent samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    pub completions: VecDeque<i64>,
    pub queue_ms: VecDeque<f64>,
    pub processing_ms: VecDeque<f64>,
    pub best_fit: VecDeque<bool>,
}

fn push_bounded<T>(window: &mut VecDeque<T>, value: T) {
    if window.len() == WINDOW {
        window.pop_front();
    }
    window.push_back(value);
}

impl WorkerState {
    fn new(time: i64) -> Self {
        Self {
            capabilities: None,
            reported: ReportedStatus::Online,
            last_seen: time,
            cpu_pct: 0.0,
            memory_pct: 0.0,
            gpu_pct: None,
            network_pct: 0.0,
            running_tasks: 0,
            queued_tasks: 0,
            completed: 0,
            failed: 0,
        }
    }

    pub fn status(&self, now: i64, thresholds: &Thresholds) -> WorkerStatus {
        if self.reported == ReportedStatus::Offline || now - self.last_seen > thresholds.lost_after_ms {
            return WorkerStatus::Disconnected;
        }
        let slots = self.capabilities.as_ref().map_or(u32::MAX, |capabilities| capabilities.slots);
        if self.cpu_pct >= thresholds.overload_cpu_pct || self.queued_tasks > slots {
            WorkerStatus::Overloaded
        } else if self.running_tasks > 0 {
            WorkerStatus::Busy
        } else {
            WorkerStatus::Idle
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Idle,
    Busy,
    Overloaded,
    Disconnected,
}

impl FleetState {
    /// Folds one event in, at its event time.
    pub fn apply(&mut self, time: i64, event: &Event) {
        match event {
            Event::WorkerRegistered { worker_id, capabilities } => {
                let worker = self.worker(worker_id, time);
                worker.capabilities = Some(capabilities.clone());
                worker.reported = ReportedStatus::Online;
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
                let worker = self.worker(worker_id, time);
                if time >= worker.last_seen {
                    worker.last_seen = time;
                    worker.cpu_pct = *cpu_pct;
                    worker.memory_pct = *memory_pct;
                    worker.gpu_pct = *gpu_pct;
                    worker.network_pct = *network_pct;
                    worker.running_tasks = *running_tasks;
                    worker.queued_tasks = *queued_tasks;
                    if worker.reported == ReportedStatus::Offline {
                        worker.reported = ReportedStatus::Online;
                    }
                }
            }
            Event::WorkerStatusChanged { worker_id, status, .. } => self.worker(worker_id, time).reported = *status,
            Event::WorkerDeregistered { worker_id, .. } => {
                self.workers.remove(worker_id);
            }
            Event::TaskQueued { task_id, model, family, priority } => {
                self.tasks.insert(
                    task_id.clone(),
                    TaskState {
                        model: model.clone(),
                        family: Some(*family),
                        priority: *priority,
                        status: TaskStatus::Queued,
                        queued_at: time,
                        started_at: None,
                        worker_id: None,
                        changed_at: time,
                    },
                );
            }
            Event::TaskAssigned { task_id, worker_id, best_fit } => {
                push_bounded(&mut self.recent.best_fit, *best_fit);
                let task = self.task(task_id, time);
                task.status = TaskStatus::Assigned;
                task.worker_id = Some(worker_id.clone());
            }
            Event::TaskStarted { task_id, worker_id } => {
                let task = self.task(task_id, time);
                task.status = TaskStatus::Running;
                task.worker_id = Some(worker_id.clone());
                task.started_at = Some(time);
                let waited = (time - task.queued_at).max(0) as f64;
                push_bounded(&mut self.recent.queue_ms, waited);
            }
            Event::TaskCompleted { task_id, worker_id } => {
                if let Some(task) = self.tasks.remove(task_id) {
                    if let Some(started_at) = task.started_at {
                        push_bounded(&mut self.recent.processing_ms, (time - started_at).max(0) as f64);
                    }
                }
                self.totals.completed += 1;
                push_bounded(&mut self.recent.completions, time);
                if let Some(worker) = self.workers.get_mut(worker_id) {
                    worker.completed += 1;
                }
            }
            Event::TaskFailed { task_id, worker_id, .. } => {
                self.totals.failed += 1;
                let task = self.task(task_id, time);
                task.status = TaskStatus::Failed;
                if let Some(worker) = worker_id.as_ref().and_then(|id| self.workers.get_mut(id)) {
                    worker.failed += 1;
                }
            }
            Event::TaskRetried { task_id, .. } => {
                self.totals.retried += 1;
                let task = self.task(task_id, time);
                task.status = TaskStatus::Queued;
                task.queued_at = time;
                task.started_at = None;
                task.worker_id = None;
            }
            Event::TaskCancelled { task_id, .. } => {
                self.totals.cancelled += 1;
                self.tasks.remove(task_id);
            }
            Event::ComponentStatus { .. } | Event::RecoveryAction { .. } => {}
        }
    }

    fn worker(&mut self, worker_id: &str, time: i64) -> &mut WorkerState {
        self.workers.entry(worker_id.to_owned()).or_insert_with(|| WorkerState::new(time))
    }

    /// The task, or a placeholder when its `task_queued` is older than the stream.
    fn task(&mut self, task_id: &str, time: i64) -> &mut TaskState {
        let task = self.tasks.entry(task_id.to_owned()).or_insert_with(|| TaskState {
            model: "unknown".into(),
            family: None,
            priority: 0,
            status: TaskStatus::Queued,
            queued_at: time,
            started_at: None,
            worker_id: None,
            changed_at: time,
        });
        task.changed_at = time;
        task
    }

    /// Drops what has aged out of the windows and the live set.
    pub fn expire(&mut self, now: i64) {
        while self.recent.completions.front().is_some_and(|time| now - time > THROUGHPUT_WINDOW_MS) {
            self.recent.completions.pop_front();
        }
        self.tasks.retain(|_, task| task.status != TaskStatus::Failed || now - task.changed_at <= FAILED_KEPT_MS);
    }

    pub fn system_metrics(&self, now: i64, events_seq: u64, thresholds: &Thresholds) -> SystemMetrics {
        let mut workers = WorkerCounts::default();
        let (mut cpu, mut memory, mut network, mut gpu, mut gpu_workers) = (0.0, 0.0, 0.0, 0.0, 0u64);
        for worker in self.workers.values() {
            workers.total += 1;
            match worker.status(now, thresholds) {
                WorkerStatus::Idle => workers.idle += 1,
                WorkerStatus::Busy => workers.busy += 1,
                WorkerStatus::Overloaded => workers.overloaded += 1,
                WorkerStatus::Disconnected => {
                    workers.disconnected += 1;
                    continue;
                }
            }
            cpu += f64::from(worker.cpu_pct);
            memory += f64::from(worker.memory_pct);
            network += f64::from(worker.network_pct);
            if let Some(gpu_pct) = worker.gpu_pct {
                gpu += f64::from(gpu_pct);
                gpu_workers += 1;
            }
        }
        workers.active = workers.busy + workers.overloaded;
        let connected = (workers.total - workers.disconnected).max(1) as f64;

        let mut tasks = TaskCounts {
            completed: self.totals.completed,
            failed: self.totals.failed,
            cancelled: self.totals.cancelled,
            retried: self.totals.retried,
            ..TaskCounts::default()
        };
        for task in self.tasks.values() {
            match task.status {
                TaskStatus::Queued => tasks.queued += 1,
                TaskStatus::Assigned => tasks.assigned += 1,
                TaskStatus::Running => tasks.running += 1,
                TaskStatus::Failed => {}
            }
        }
        let window_start = now - THROUGHPUT_WINDOW_MS;
        let best_fit = self.recent.best_fit.iter().filter(|fit| **fit).count();
        SystemMetrics {
            time: now,
            workers,
            tasks,
            throughput_per_min: self.recent.completions.iter().filter(|time| **time > window_start).count() as f64,
            queue_time_ms: Summary::of(self.recent.queue_ms.iter().copied()),
            processing_time_ms: Summary::of(self.recent.processing_ms.iter().copied()),
            scheduling_efficiency: match self.recent.best_fit.len() {
                0 => 1.0,
                assignments => best_fit as f64 / assignments as f64,
            },
            utilisation: Utilisation {
                cpu: cpu / connected,
                gpu: if gpu_workers == 0 { 0.0 } else { gpu / gpu_workers as f64 },
                memory: memory / connected,
                network: network / connected,
            },
            events_seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::event::HardwareKind;

    const THRESHOLDS: Thresholds = Thresholds { lost_after_ms: 15_000, overload_cpu_pct: 90.0 };

    fn heartbeat(worker_id: &str, cpu_pct: f32, running_tasks: u32) -> Event {
        Event::Heartbeat {
            worker_id: worker_id.into(),
            cpu_pct,
            memory_pct: 30.0,
            gpu_pct: None,
            gpu_memory_pct: None,
            network_pct: 5.0,
            running_tasks,
            queued_tasks: 0,
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
                },
            ),
            (
                1_000,
                Event::TaskQueued {
                    task_id: task("t2"),
                    model: "vit-large".into(),
                    family: ModelFamily::Vision,
                    priority: 5,
                },
            ),
            (
                1_000,
                Event::TaskQueued {
                    task_id: task("t3"),
                    model: "detr".into(),
                    family: ModelFamily::Vision,
                    priority: 5,
                },
            ),
            (2_000, Event::TaskAssigned { task_id: task("t1"), worker_id: "a".into(), best_fit: true }),
            (3_000, Event::TaskStarted { task_id: task("t1"), worker_id: "a".into() }),
            (3_000, Event::TaskAssigned { task_id: task("t2"), worker_id: "b".into(), best_fit: false }),
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
        let metrics = state.system_metrics(10_000, 15, &THRESHOLDS);
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

        let later = state.system_metrics(20_000, 15, &THRESHOLDS);
        assert_eq!(later.workers.disconnected, 3, "no heartbeat for over 15 s");
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
        let bytes = shared::codec::encode(&first).expect("encodes");
        let mut restored: FleetState = shared::codec::decode(&bytes).expect("decodes");
        for (time, event) in &events[7..] {
            restored.apply(*time, event);
        }
        assert_eq!(restored, whole);
    }
}
