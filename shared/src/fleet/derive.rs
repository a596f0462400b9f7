//! The metrics derived from the fleet's state at a tick: what `fleet.metrics.system`,
//! `fleet.metrics.worker.<id>` and `fleet.metrics.tasks` carry. Formulas: docs/METRICS.md.

use super::state::{FleetState, Limits, Pair, WorkerState};
use super::summary::FleetSummary;
use crate::event::{HardwareKind, ModelFamily};
use crate::metrics::{
    ActionStats, Compatibility, ErrorCount, FaultCounts, FaultTolerance, FinishedTask, GroupStats, PairRate, Rate,
    SystemMetrics, TaskMetrics, Truncated, Utilisation, WorkerMetrics, WorkerStatus,
};
use std::collections::BTreeMap;

/// Error texts listed in the failure patterns.
const TOP_ERRORS: usize = 20;

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
    /// The fleet's metrics at `now` from this state alone (a single processor, a history
    /// replay); a partitioned fleet derives them from its merged [`FleetSummary`].
    pub fn system_metrics(&self, now: i64, events_seq: u64, limits: &Limits) -> SystemMetrics {
        self.summary(now, events_seq, limits, Vec::new()).system_metrics()
    }

    pub fn task_metrics(&self, now: i64, finished_since_tick: Vec<FinishedTask>, limits: &Limits) -> TaskMetrics {
        self.summary(now, 0, limits, finished_since_tick).task_metrics(limits.max_tasks_tracked)
    }
}

impl FleetSummary {
    pub fn system_metrics(&self) -> SystemMetrics {
        let connected = (self.workers.total - self.workers.disconnected).max(1) as f64;
        let load = &self.load;
        SystemMetrics {
            time: self.time,
            workers: self.workers.clone(),
            tasks: self.tasks.clone(),
            throughput_per_min: self.completions_per_min as f64,
            queue_time_ms: self.queue_ms.summary(),
            processing_time_ms: self.processing_ms.summary(),
            scheduling_efficiency: self.best_fit.ratio(),
            utilisation: Utilisation {
                cpu: load.cpu / connected,
                gpu: if load.gpu_workers == 0 { 0.0 } else { load.gpu / load.gpu_workers as f64 },
                memory: load.memory / connected,
                network: load.network / load.network_workers.max(1) as f64,
            },
            events_seq: self.events_seq,
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

    /// The task metrics, listing at most `max_finished` of the tasks finished since the last.
    pub fn task_metrics(&self, max_finished: usize) -> TaskMetrics {
        let (mut by_family, mut by_model, mut by_hardware) = (Vec::new(), Vec::new(), Vec::new());
        for (key, group) in &self.groups {
            let (kind, name) = key.split_once(':').unwrap_or(("model", key));
            let finished = group.completed + group.failed;
            let stats = GroupStats {
                key: name.to_owned(),
                queued: group.queued,
                running: group.running,
                completed: group.completed,
                failed: group.failed,
                throughput_per_min: group.completions_per_min as f64,
                success_rate: if finished == 0 { 1.0 } else { group.completed as f64 / finished as f64 },
                duration_ms: group.durations.summary(),
                family: group.family,
                queue_time_ms: group.queue_ms.summary(),
                best_fit_ratio: group.best_fit.ratio(),
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
        let listed = self.recent_failures.len();
        TaskMetrics {
            time: self.time,
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
            finished: {
                let items: Vec<FinishedTask> = self.finished.iter().take(max_finished).cloned().collect();
                let total = self.finished_total.max(items.len() as u64);
                Truncated { truncated: total > items.len() as u64, items, total }
            },
            recent_failures: Truncated {
                items: self.recent_failures.clone(),
                total: self.failures_listed.max(listed as u64),
                truncated: self.failures_listed > listed as u64,
            },
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
