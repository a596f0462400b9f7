//! Derived metrics, published by the processor every tick and kept in the state bucket.
//!
//! Every formula is written down in `docs/METRICS.md`; keep the two in step.

use serde::{Deserialize, Serialize};

/// Workers by derived status. `idle + busy + overloaded + disconnected == total`;
/// `active == busy + overloaded` (connected and running work).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerCounts {
    pub total: u64,
    pub active: u64,
    pub idle: u64,
    pub busy: u64,
    pub overloaded: u64,
    pub disconnected: u64,
}

/// Tasks by status. `queued`, `assigned`, `running` are current; `completed`, `failed`,
/// `cancelled`, `retried` are totals since the stream began (never from a truncated list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskCounts {
    pub queued: u64,
    pub assigned: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub retried: u64,
}

/// A distribution summary over a recent window, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples in the window the figures come from.
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Summary {
    /// Nearest-rank percentiles over `samples` (any order).
    pub fn of(samples: impl IntoIterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = samples.into_iter().collect();
        if sorted.is_empty() {
            return Self::default();
        }
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index]
        };
        Self {
            count: sorted.len() as u64,
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
        }
    }
}

/// Mean utilisation over connected workers, percent. `gpu` averages GPU workers only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Utilisation {
    pub cpu: f64,
    pub gpu: f64,
    pub memory: f64,
    pub network: f64,
}

/// The fleet as a whole, once per tick on `<prefix>.metrics.system`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemMetrics {
    /// Event time of the tick, ms since the epoch.
    pub time: i64,
    pub workers: WorkerCounts,
    pub tasks: TaskCounts,
    /// Tasks completed in the last 60 s of event time.
    pub throughput_per_min: f64,
    /// Queued to started, over the last completed tasks.
    pub queue_time_ms: Summary,
    /// Started to completed.
    pub processing_time_ms: Summary,
    /// Share (0..=1) of assignments that went to a best-fit worker.
    pub scheduling_efficiency: f64,
    pub utilisation: Utilisation,
    /// The FLEET_EVENTS sequence this state reflects.
    pub events_seq: u64,
}

impl SystemMetrics {
    /// The long-table form (`metric_name`, `metric_value`) the archive stores.
    pub fn flatten(&self) -> Vec<(&'static str, f64)> {
        let workers = &self.workers;
        let tasks = &self.tasks;
        let utilisation = &self.utilisation;
        vec![
            ("workers_total", workers.total as f64),
            ("workers_active", workers.active as f64),
            ("workers_idle", workers.idle as f64),
            ("workers_busy", workers.busy as f64),
            ("workers_overloaded", workers.overloaded as f64),
            ("workers_disconnected", workers.disconnected as f64),
            ("tasks_queued", tasks.queued as f64),
            ("tasks_assigned", tasks.assigned as f64),
            ("tasks_running", tasks.running as f64),
            ("tasks_completed", tasks.completed as f64),
            ("tasks_failed", tasks.failed as f64),
            ("tasks_cancelled", tasks.cancelled as f64),
            ("tasks_retried", tasks.retried as f64),
            ("throughput_per_min", self.throughput_per_min),
            ("queue_time_ms_mean", self.queue_time_ms.mean),
            ("queue_time_ms_p50", self.queue_time_ms.p50),
            ("queue_time_ms_p95", self.queue_time_ms.p95),
            ("queue_time_ms_p99", self.queue_time_ms.p99),
            ("processing_time_ms_mean", self.processing_time_ms.mean),
            ("processing_time_ms_p50", self.processing_time_ms.p50),
            ("processing_time_ms_p95", self.processing_time_ms.p95),
            ("processing_time_ms_p99", self.processing_time_ms.p99),
            ("scheduling_efficiency", self.scheduling_efficiency),
            ("utilisation_cpu", utilisation.cpu),
            ("utilisation_gpu", utilisation.gpu),
            ("utilisation_memory", utilisation.memory),
            ("utilisation_network", utilisation.network),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let summary = Summary::of(samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, 50.0);
        assert_eq!(summary.p95, 95.0);
        assert_eq!(summary.p99, 99.0);
        assert_eq!(summary.mean, 50.5);
        assert_eq!(Summary::of([]), Summary::default());
        assert_eq!(Summary::of([7.0]).p99, 7.0);
    }
}
