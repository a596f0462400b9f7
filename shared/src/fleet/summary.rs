//! What a fleet state says about the fleet as a whole, in a form that merges: counts add up,
//! percentiles travel as [`Sketch`]es. A partition publishes its summary every tick; the
//! fleet tier merges them and derives the fleet's system and task metrics from the merge,
//! exactly as a single processor derives them from its own summary. Counts are exact; each
//! percentile is within `sketch::RELATIVE_ERROR` of the nearest-rank value over the merged
//! windows (each partition's last samples).

use super::sketch::Sketch;
use super::state::{ActionCount, Faults, FleetState, Group, Limits, Pair, TaskStatus};
use crate::metrics::{ComponentState, FinishedTask, TaskCounts, WorkerCounts, WorkerStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Adds each named field of `$from` to the same field of `$into`.
macro_rules! add {
    ($into:expr, $from:expr; $($field:ident),+) => {
        $($into.$field += $from.$field;)+
    };
}

/// Final failures listed in the task metrics.
pub const RECENT_FAILURES: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetSummary {
    pub time: i64,
    /// The partitions it covers.
    pub partitions: Vec<u32>,
    /// The newest FLEET_EVENTS sequence folded.
    pub events_seq: u64,
    pub workers: WorkerCounts,
    pub load: LoadSums,
    pub tasks: TaskCounts,
    /// Completions in the last 60 s.
    pub completions_per_min: u64,
    pub queue_ms: Sketch,
    pub processing_ms: Sketch,
    pub best_fit: Share,
    /// Per `family:<f>`, `model:<m>`, `hardware:<h>`.
    pub groups: BTreeMap<String, GroupSummary>,
    pub pairs: BTreeMap<String, Pair>,
    pub faults: Faults,
    pub components: BTreeMap<String, ComponentState>,
    /// The newest final failures, newest first, and how many the states list in all.
    pub recent_failures: Vec<FinishedTask>,
    pub failures_listed: u64,
    /// Tasks finished since the previous summary (at most `max_tasks_tracked` each), and
    /// how many finished.
    pub finished: Vec<FinishedTask>,
    pub finished_total: u64,
}

/// Sums over connected workers, for the mean utilisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadSums {
    pub cpu: f64,
    pub memory: f64,
    pub gpu: f64,
    pub gpu_workers: u64,
    pub network: f64,
    pub network_workers: u64,
}

/// `yes` of `of`: a share that merges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub yes: u64,
    pub of: u64,
}

impl Share {
    fn of<'a>(values: impl Iterator<Item = &'a bool>) -> Self {
        values.fold(Self::default(), |share, value| Self { yes: share.yes + u64::from(*value), of: share.of + 1 })
    }

    /// The share; 1 before any.
    pub fn ratio(&self) -> f64 {
        if self.of == 0 { 1.0 } else { self.yes as f64 / self.of as f64 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub completed: u64,
    pub failed: u64,
    pub completions_per_min: u64,
    pub durations: Sketch,
    pub family: Option<crate::event::ModelFamily>,
    pub queue_ms: Sketch,
    pub best_fit: Share,
    /// Live tasks: queued or assigned, and running.
    pub queued: u64,
    pub running: u64,
}

impl GroupSummary {
    fn of(group: &Group, now: i64) -> Self {
        Self {
            completed: group.completed,
            failed: group.failed,
            completions_per_min: group.completions.recent(now),
            durations: Sketch::of(group.durations.iter().copied()),
            family: group.family,
            queue_ms: Sketch::of(group.queue_ms.iter().copied()),
            best_fit: Share::of(group.best_fit.iter()),
            queued: 0,
            running: 0,
        }
    }

    fn merge(&mut self, other: &GroupSummary) {
        add!(self, other; completed, failed, completions_per_min, queued, running);
        add!(self.best_fit, other.best_fit; yes, of);
        self.durations.merge(&other.durations);
        self.family = self.family.or(other.family);
        self.queue_ms.merge(&other.queue_ms);
    }
}

impl FleetState {
    /// The summary at `now`, carrying `finished` (the tasks finished since the last one).
    pub fn summary(&self, now: i64, events_seq: u64, limits: &Limits, mut finished: Vec<FinishedTask>) -> FleetSummary {
        let finished_total = finished.len() as u64;
        finished.truncate(limits.max_tasks_tracked);
        let mut workers = WorkerCounts::default();
        let mut load = LoadSums::default();
        for worker in self.workers.values() {
            workers.total += 1;
            match worker.status(now, limits) {
                WorkerStatus::Idle => workers.idle += 1,
                WorkerStatus::Busy => workers.busy += 1,
                WorkerStatus::Overloaded => workers.overloaded += 1,
                WorkerStatus::Disconnected => {
                    workers.disconnected += 1;
                    continue;
                }
            }
            load.cpu += f64::from(worker.cpu_pct);
            load.memory += f64::from(worker.memory_pct);
            // Over the workers whose figure is known.
            if let Some(network_pct) = worker.network_pct {
                load.network += f64::from(network_pct);
                load.network_workers += 1;
            }
            if let Some(gpu_pct) = worker.gpu_pct {
                load.gpu += f64::from(gpu_pct);
                load.gpu_workers += 1;
            }
        }
        workers.active = workers.busy + workers.overloaded;
        let mut tasks = TaskCounts {
            completed: self.totals.completed,
            failed: self.totals.failed,
            cancelled: self.totals.cancelled,
            retried: self.totals.retried,
            ..TaskCounts::default()
        };
        let mut groups: BTreeMap<String, GroupSummary> =
            self.groups.iter().map(|(key, group)| (key.clone(), GroupSummary::of(group, now))).collect();
        for task in self.tasks.values() {
            match task.status {
                TaskStatus::Queued => tasks.queued += 1,
                TaskStatus::Assigned => tasks.assigned += 1,
                TaskStatus::Running => tasks.running += 1,
                TaskStatus::Failed => continue,
            }
            for key in super::state::group_keys(task) {
                let group = groups.entry(key).or_default();
                match task.status {
                    TaskStatus::Running => group.running += 1,
                    _ => group.queued += 1,
                }
            }
        }
        FleetSummary {
            time: now,
            partitions: vec![self.partition.index],
            events_seq,
            workers,
            load,
            tasks,
            completions_per_min: self.recent.completions.recent(now),
            queue_ms: Sketch::of(self.recent.queue_ms.iter().copied()),
            processing_ms: Sketch::of(self.recent.processing_ms.iter().copied()),
            best_fit: Share::of(self.recent.best_fit.iter()),
            groups,
            pairs: self.pairs.clone(),
            faults: self.faults.clone(),
            components: self.components.clone(),
            recent_failures: self.failed_tasks.iter().rev().take(RECENT_FAILURES).cloned().collect(),
            failures_listed: self.failed_tasks.len() as u64,
            finished,
            finished_total,
        }
    }
}

impl FleetSummary {
    /// Adds another partition's summary in.
    pub fn merge(&mut self, other: FleetSummary) {
        self.time = self.time.max(other.time);
        self.partitions.extend(other.partitions);
        self.partitions.sort_unstable();
        self.events_seq = self.events_seq.max(other.events_seq);
        add!(self.workers, other.workers; total, active, idle, busy, overloaded, disconnected);
        add!(self.load, other.load; cpu, memory, gpu, gpu_workers, network, network_workers);
        add!(self.tasks, other.tasks; queued, assigned, running, completed, failed, cancelled, retried);
        add!(self, other; completions_per_min, failures_listed, finished_total);
        add!(self.best_fit, other.best_fit; yes, of);
        self.queue_ms.merge(&other.queue_ms);
        self.processing_ms.merge(&other.processing_ms);
        for (key, group) in &other.groups {
            self.groups.entry(key.clone()).or_default().merge(group);
        }
        for (key, pair) in other.pairs {
            let mine = self.pairs.entry(key).or_default();
            add!(mine, pair; completed, failed, duration_ms_total);
        }
        merge_faults(&mut self.faults, other.faults);
        for (name, component) in other.components {
            match self.components.get(&name) {
                Some(known) if known.reported_at >= component.reported_at => {}
                _ => {
                    self.components.insert(name, component);
                }
            }
        }
        self.recent_failures.extend(other.recent_failures);
        self.recent_failures.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then_with(|| a.task_id.cmp(&b.task_id)));
        self.recent_failures.truncate(RECENT_FAILURES);
        self.finished.extend(other.finished);
    }
}

fn merge_faults(faults: &mut Faults, other: Faults) {
    add!(faults, other; recovery_actions, recovery_actions_succeeded, outages, recoveries, downtime_ms_total);
    add!(faults, other; retries_recovered, retries_failed_again);
    for (action, count) in other.actions {
        let mine: &mut ActionCount = faults.actions.entry(action).or_default();
        add!(mine, count; taken, succeeded);
    }
    for (error, count) in other.errors {
        *faults.errors.entry(error).or_default() += count;
    }
}

#[cfg(test)]
mod tests {
    use super::super::partition::Partition;
    use super::*;
    use crate::Subjects;
    use crate::event::{Capabilities, ComponentHealth, Event, HardwareKind, ModelFamily, ReportedStatus};

    const LIMITS: Limits =
        Limits { lost_after_ms: 15_000, retire_after_ms: 600_000, overload_cpu_pct: 90.0, max_tasks_tracked: 1000 };

    /// A deterministic fleet: 40 workers of four kinds, 150 tasks through every path
    /// (completed, failed, retried, cancelled, still queued or running), outages, component
    /// reports and recovery actions, over ten minutes.
    fn events() -> Vec<(i64, Event)> {
        let mut events = Vec::new();
        let mut x: u64 = 7;
        let mut next = |n: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let kinds = [HardwareKind::Cpu, HardwareKind::Cuda, HardwareKind::Rocm, HardwareKind::Tpu];
        let models = [
            ("bert-base", ModelFamily::Text),
            ("vit-large", ModelFamily::Vision),
            ("whisper-small", ModelFamily::Audio),
        ];
        let start = 1_800_000_000_000;
        for w in 0..40u64 {
            let capabilities = Capabilities {
                hardware: kinds[w as usize % 4],
                cpu_cores: 8,
                memory_gb: 32.0,
                gpu_model: None,
                gpu_memory_gb: None,
                slots: 2,
                tags: Vec::new(),
            };
            events.push((start + w as i64, Event::WorkerRegistered { worker_id: format!("w-{w}"), capabilities }));
        }
        for t in 0..150u64 {
            let time = start + 1_000 + t as i64 * 3_000;
            let (task_id, worker_id) = (format!("t-{t}"), format!("w-{}", next(40)));
            let (model, family) = models[next(3) as usize];
            events.push((
                time,
                Event::TaskQueued {
                    task_id: task_id.clone(),
                    model: model.into(),
                    family,
                    priority: next(10) as u8,
                    depends_on: Vec::new(),
                },
            ));
            if t % 17 == 0 {
                continue; // still queued
            }
            if t % 23 == 0 {
                events.push((time + 500, Event::TaskCancelled { task_id, reason: "user".into() }));
                continue;
            }
            let best_fit = Some(next(4) != 0);
            events.push((
                time + 200 + next(3_000) as i64,
                Event::TaskAssigned { task_id: task_id.clone(), worker_id: worker_id.clone(), best_fit },
            ));
            events.push((
                time + 4_000 + next(5_000) as i64,
                Event::TaskStarted { task_id: task_id.clone(), worker_id: worker_id.clone() },
            ));
            let end = time + 10_000 + next(60_000) as i64;
            match t % 7 {
                0 => {} // still running
                1 => events.push((
                    end,
                    Event::TaskFailed { task_id, worker_id: Some(worker_id), error: format!("oom {}", next(3)) },
                )),
                2 => {
                    events.push((
                        end,
                        Event::TaskFailed {
                            task_id: task_id.clone(),
                            worker_id: Some(worker_id.clone()),
                            error: "timeout".into(),
                        },
                    ));
                    events.push((end + 100, Event::TaskRetried { task_id: task_id.clone(), attempt: 1 }));
                    events.push((
                        end + 900,
                        Event::TaskAssigned { task_id: task_id.clone(), worker_id: worker_id.clone(), best_fit: None },
                    ));
                    events.push((
                        end + 1_000,
                        Event::TaskStarted { task_id: task_id.clone(), worker_id: worker_id.clone() },
                    ));
                    events.push((end + 9_000, Event::TaskCompleted { task_id, worker_id }));
                }
                _ => events.push((end, Event::TaskCompleted { task_id, worker_id })),
            }
        }
        for second in 0..600 {
            for w in (0..40u64).filter(|w| (second + w) % 5 == 0) {
                let silent = w % 13 == 0 && second > 300;
                if !silent {
                    let heartbeat = Event::Heartbeat {
                        worker_id: format!("w-{w}"),
                        cpu_pct: Some(next(100) as f32),
                        memory_pct: Some(next(100) as f32),
                        gpu_pct: (w % 4 != 0).then(|| next(100) as f32),
                        gpu_memory_pct: None,
                        network_pct: (w % 3 == 0).then(|| next(50) as f32),
                        running_tasks: Some(next(3) as u32),
                        queued_tasks: Some(next(4) as u32),
                    };
                    events.push((start + second as i64 * 1_000, heartbeat));
                }
            }
        }
        for (time, w) in [(200_000, 3), (250_000, 11), (260_000, 3)] {
            let status = if w == 3 && time == 260_000 { ReportedStatus::Online } else { ReportedStatus::Offline };
            events.push((
                start + time,
                Event::WorkerStatusChanged { worker_id: format!("w-{w}"), status, reason: String::new() },
            ));
        }
        events.push((
            start + 9_000,
            Event::ComponentStatus {
                component: "coordinator".into(),
                health: ComponentHealth::Degraded,
                message: "slow".into(),
            },
        ));
        events.push((
            start + 90_000,
            Event::RecoveryAction {
                component: "coordinator".into(),
                action: "reassign".into(),
                target: None,
                succeeded: true,
            },
        ));
        events.push((start + 95_000, Event::WorkerDeregistered { worker_id: "w-39".into(), reason: "gone".into() }));
        events.sort_by_key(|(time, _)| *time);
        events
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn partitions_merged_equal_one_processor_over_the_same_events() {
        let subjects = Subjects::default();
        let events = events();
        let now = events.last().map_or(0, |(time, _)| *time) + 1_000;
        let mut whole = FleetState::new(100);
        let mut finished = Vec::new();
        for (time, event) in &events {
            finished.extend(whole.apply(*time, event));
        }
        let single = whole.summary(now, 1, &LIMITS, finished);
        for count in [2, 4] {
            let mut parts: Vec<(Partition, FleetState, Vec<FinishedTask>)> = (0..count)
                .map(|index| {
                    let partition = Partition::new(index, count).expect("a partition");
                    (partition, FleetState::partitioned(100, partition), Vec::new())
                })
                .collect();
            for (time, event) in &events {
                let subject = event.subject(&subjects);
                for (partition, state, finished) in &mut parts {
                    if partition.wants(&subjects, &subject) {
                        finished.extend(state.apply(*time, event));
                    }
                }
            }
            let mut merged = FleetSummary::default();
            for (_, state, finished) in &parts {
                merged.merge(state.summary(now, 1, &LIMITS, finished.clone()));
            }
            assert_eq!(merged.partitions, (0..count).collect::<Vec<_>>());
            // Sums of floats differ only by the order they were added in.
            let (m, s) = (merged.system_metrics(), single.system_metrics());
            for (a, b) in [
                (m.utilisation.cpu, s.utilisation.cpu),
                (m.utilisation.gpu, s.utilisation.gpu),
                (m.utilisation.memory, s.utilisation.memory),
                (m.utilisation.network, s.utilisation.network),
                (m.queue_time_ms.mean, s.queue_time_ms.mean),
                (m.processing_time_ms.mean, s.processing_time_ms.mean),
            ] {
                assert!(close(a, b), "{a} against {b} with {count} partitions");
            }
            let exact = |mut metrics: crate::metrics::SystemMetrics| {
                metrics.utilisation = Default::default();
                (metrics.queue_time_ms.mean, metrics.processing_time_ms.mean) = (0.0, 0.0);
                metrics
            };
            assert_eq!(exact(m), exact(s), "{count} partitions");
            assert!(single.tasks.completed > 80 && single.workers.disconnected > 0 && single.tasks.queued > 0);
            let round = |mut metrics: crate::metrics::TaskMetrics| {
                for group in metrics.by_family.iter_mut().chain(&mut metrics.by_model).chain(&mut metrics.by_hardware) {
                    (group.duration_ms.mean, group.queue_time_ms.mean) =
                        ((group.duration_ms.mean * 1e6).round(), (group.queue_time_ms.mean * 1e6).round());
                }
                metrics.finished.items.sort_by(|a, b| a.task_id.cmp(&b.task_id));
                metrics
            };
            assert_eq!(round(merged.task_metrics(1000)), round(single.task_metrics(1000)), "{count} partitions");
            for (worker_id, worker) in &whole.workers {
                let owner = parts.iter().find(|(partition, ..)| partition.owns(worker_id)).expect("an owner");
                let theirs = owner.1.workers.get(worker_id).expect("the owner folds it");
                assert_eq!(
                    theirs.metrics(worker_id, now, &LIMITS),
                    worker.metrics(worker_id, now, &LIMITS),
                    "{worker_id}"
                );
            }
            let listed: usize = parts.iter().map(|(_, state, ..)| state.workers.len()).sum();
            assert_eq!(listed, whole.workers.len(), "each worker in one partition");
        }
    }
}
