//! The metrics derived from the fleet's state at a tick: what `fleet.metrics.system`,
//! `fleet.metrics.worker.<id>` and `fleet.metrics.tasks` carry. Formulas: docs/METRICS.md.

use super::state::{FleetState, Limits, Pair, TaskStatus, WorkerState};
use crate::event::{HardwareKind, ModelFamily};
use crate::metrics::{
    ActionStats, Compatibility, ErrorCount, FaultCounts, FaultTolerance, FinishedTask, GroupStats, PairRate, Rate,
    Summary, SystemMetrics, TaskCounts, TaskMetrics, Truncated, Utilisation, WorkerCounts, WorkerMetrics, WorkerStatus,
};
use std::collections::BTreeMap;

/// Error texts listed in the failure patterns.
const TOP_ERRORS: usize = 20;

/// Share of `true` in `values`; 1 before any.
fn share_of_true<'a>(values: impl ExactSizeIterator<Item = &'a bool>) -> f64 {
    match values.len() {
        0 => 1.0,
        count => values.filter(|value| **value).count() as f64 / count as f64,
    }
}

impl WorkerState {
    pub fn metrics(&self, worker_id: &str, now: i64, limits: &Limits) -> WorkerMetrics {
        let status = self.status(now, limits);
        let finished = self.completed + self.failed;
        let success_rate = if finished == 0 { 1.0 } else { self.completed as f64 / finished as f64 };
        // Health: success rate, scaled down by CPU past 80% (to half at 100%); 0 when gone.
        let headroom = 1.0 - (f64::from(self.cpu_pct) - 80.0).clamp(0.0, 20.0) / 40.0;
        let health_score = match status {
            WorkerStatus::Disconnected => 0.0,
            _ => 100.0 * success_rate * headroom,
        };
        WorkerMetrics {
            time: now,
            worker_id: worker_id.to_owned(),
            status,
            capabilities: self.capabilities.clone(),
            cpu_pct: f64::from(self.cpu_pct),
            gpu_pct: self.gpu_pct.map(f64::from),
            memory_pct: f64::from(self.memory_pct),
            network_pct: self.network_pct.map(f64::from),
            active_tasks: u64::from(self.running_tasks),
            queued_tasks: u64::from(self.queued_tasks),
            completed: self.completed,
            failed: self.failed,
            mean_task_ms: if self.completed == 0 { 0.0 } else { self.duration_ms_total / self.completed as f64 },
            tasks_per_hour: self.completions.recent(now) as f64,
            success_rate,
            health_score,
            uptime_secs: match status {
                WorkerStatus::Disconnected => 0.0,
                _ => (now - self.connected_since).max(0) as f64 / 1000.0,
            },
            last_seen: self.last_seen,
        }
    }
}

impl FleetState {
    pub fn system_metrics(&self, now: i64, events_seq: u64, limits: &Limits) -> SystemMetrics {
        let mut workers = WorkerCounts::default();
        let (mut cpu, mut memory, mut gpu, mut gpu_workers) = (0.0, 0.0, 0.0, 0u64);
        let (mut network, mut network_workers) = (0.0, 0u64);
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
            cpu += f64::from(worker.cpu_pct);
            memory += f64::from(worker.memory_pct);
            // Over the workers whose network use is known, as for GPUs.
            if let Some(network_pct) = worker.network_pct {
                network += f64::from(network_pct);
                network_workers += 1;
            }
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
        SystemMetrics {
            time: now,
            workers,
            tasks,
            throughput_per_min: self.recent.completions.recent(now) as f64,
            queue_time_ms: Summary::of(self.recent.queue_ms.iter().copied()),
            processing_time_ms: Summary::of(self.recent.processing_ms.iter().copied()),
            scheduling_efficiency: share_of_true(self.recent.best_fit.iter()),
            utilisation: Utilisation {
                cpu: cpu / connected,
                gpu: if gpu_workers == 0 { 0.0 } else { gpu / gpu_workers as f64 },
                memory: memory / connected,
                network: network / network_workers.max(1) as f64,
            },
            events_seq,
            faults: self.fault_counts(),
            components: self.components.clone(),
        }
    }

    fn fault_counts(&self) -> FaultCounts {
        let faults = &self.faults;
        FaultCounts {
            recovery_actions: faults.recovery_actions,
            recovery_actions_succeeded: faults.recovery_actions_succeeded,
            outages: faults.outages,
            recoveries: faults.recoveries,
            mean_time_to_recovery_ms: match faults.recoveries {
                0 => 0.0,
                recoveries => faults.downtime_ms_total / recoveries as f64,
            },
        }
    }

    pub fn task_metrics(&self, now: i64, finished_since_tick: Vec<FinishedTask>, limits: &Limits) -> TaskMetrics {
        // Live counts per (kind, name) group, from the live set (never truncated); no text is
        // copied per task (this runs over every live task each tick).
        let mut live: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for task in self.tasks.values() {
            let keys = [
                Some(("model", task.model.as_str())),
                task.family.map(|family| ("family", family.as_str())),
                task.hardware.map(|hardware| ("hardware", hardware.as_str())),
            ];
            for key in keys.into_iter().flatten() {
                let entry = live.entry(key).or_default();
                match task.status {
                    TaskStatus::Queued | TaskStatus::Assigned => entry.0 += 1,
                    TaskStatus::Running => entry.1 += 1,
                    TaskStatus::Failed => {}
                }
            }
        }
        let mut keys: Vec<(&str, &str)> = self
            .groups
            .keys()
            .map(|key| key.split_once(':').unwrap_or(("model", key)))
            .chain(live.keys().copied())
            .collect();
        keys.sort();
        keys.dedup();
        let empty = super::state::Group::default();
        let (mut by_family, mut by_model, mut by_hardware) = (Vec::new(), Vec::new(), Vec::new());
        for (kind, name) in keys {
            let group = self.groups.get(&format!("{kind}:{name}")).unwrap_or(&empty);
            let (queued, running) = live.get(&(kind, name)).copied().unwrap_or_default();
            let finished = group.completed + group.failed;
            let stats = GroupStats {
                key: name.to_owned(),
                queued,
                running,
                completed: group.completed,
                failed: group.failed,
                throughput_per_min: group.completions.recent(now) as f64,
                success_rate: if finished == 0 { 1.0 } else { group.completed as f64 / finished as f64 },
                duration_ms: Summary::of(group.durations.iter().copied()),
                family: group.family,
                queue_time_ms: Summary::of(group.queue_ms.iter().copied()),
                best_fit_ratio: share_of_true(group.best_fit.iter()),
            };
            match kind {
                "family" => by_family.push(stats),
                "hardware" => by_hardware.push(stats),
                _ => by_model.push(stats),
            }
        }
        let rates = |stats: &[GroupStats]| -> Vec<Rate> {
            stats
                .iter()
                .filter(|group| group.completed + group.failed > 0)
                .map(|group| Rate {
                    key: group.key.clone(),
                    rate: group.failed as f64 / (group.completed + group.failed) as f64,
                    failed: group.failed,
                    runs: group.completed + group.failed,
                })
                .collect()
        };
        let faults = &self.faults;
        let counts = self.fault_counts();
        let mut top_errors: Vec<ErrorCount> =
            faults.errors.iter().map(|(error, count)| ErrorCount { error: error.clone(), count: *count }).collect();
        top_errors.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.error.cmp(&b.error)));
        top_errors.truncate(TOP_ERRORS);
        TaskMetrics {
            time: now,
            compatibility: self.compatibility(),
            fault_tolerance: FaultTolerance {
                failure_rate_by_hardware: rates(&by_hardware),
                failure_rate_by_model: rates(&by_model),
                failure_rate_by_pair: self.pair_rates(),
                recovery_by_action: faults
                    .actions
                    .iter()
                    .map(|(action, count)| ActionStats {
                        action: action.clone(),
                        taken: count.taken,
                        succeeded: count.succeeded,
                        success_rate: count.succeeded as f64 / count.taken.max(1) as f64,
                    })
                    .collect(),
                retries_recovered: faults.retries_recovered,
                retries_failed_again: faults.retries_failed_again,
                top_errors,
                recovery_actions: counts.recovery_actions,
                recovery_actions_succeeded: counts.recovery_actions_succeeded,
                outages: counts.outages,
                recoveries: counts.recoveries,
                mean_time_to_recovery_ms: counts.mean_time_to_recovery_ms,
            },
            by_family,
            by_model,
            by_hardware,
            finished: Truncated::of(finished_since_tick.into_iter(), limits.max_tasks_tracked),
            recent_failures: Truncated::of(self.failed_tasks.iter().rev().cloned(), 50),
        }
    }

    /// Failure rate per hardware kind and family, for the pairs that ran.
    fn pair_rates(&self) -> Vec<PairRate> {
        self.pairs
            .iter()
            .filter_map(|(key, pair)| {
                let (hardware, family) = key.split_once('/')?;
                let runs = pair.completed + pair.failed;
                if runs == 0 {
                    return None;
                }
                Some(PairRate {
                    hardware: parse_hardware(hardware)?,
                    family: parse_family(family)?,
                    rate: pair.failed as f64 / runs as f64,
                    failed: pair.failed,
                    runs,
                })
            })
            .collect()
    }

    /// Per hardware kind and family: success rate times relative speed (see METRICS.md).
    fn compatibility(&self) -> Vec<Compatibility> {
        let mean = |pair: &Pair| (pair.completed > 0).then(|| pair.duration_ms_total / pair.completed as f64);
        let mut best_by_family: BTreeMap<&str, f64> = BTreeMap::new();
        for (key, pair) in &self.pairs {
            let Some((_, family)) = key.split_once('/') else { continue };
            if let Some(mean) = mean(pair).filter(|mean| *mean > 0.0) {
                let best = best_by_family.entry(family).or_insert(mean);
                *best = best.min(mean);
            }
        }
        let mut scores = Vec::new();
        for (key, pair) in &self.pairs {
            let Some((hardware, family)) = key.split_once('/') else { continue };
            let (Some(hardware), Some(family)) = (parse_hardware(hardware), parse_family(family)) else { continue };
            let runs = pair.completed + pair.failed;
            let success = if runs == 0 { 0.0 } else { pair.completed as f64 / runs as f64 };
            let speed = match (mean(pair), best_by_family.get(family.as_str())) {
                (Some(mean), Some(best)) if mean > 0.0 => (best / mean).min(1.0),
                _ => 1.0,
            };
            scores.push(Compatibility { hardware, family, score: 100.0 * success * speed, runs });
        }
        scores
    }
}

fn parse_hardware(name: &str) -> Option<HardwareKind> {
    HardwareKind::ALL.into_iter().find(|kind| kind.as_str() == name)
}

fn parse_family(name: &str) -> Option<ModelFamily> {
    ModelFamily::ALL.into_iter().find(|family| family.as_str() == name)
}
