//! Derived metrics, published by the processor every tick and kept in the state bucket.
//!
//! Every formula is written down in `docs/METRICS.md`; keep the two in step.

use serde::{Deserialize, Serialize};

/// Workers by derived status. `idle + busy + overloaded + disconnected == total`;
/// `active == busy + overloaded` (connected and running work).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Utilisation {
    pub cpu: f64,
    pub gpu: f64,
    pub memory: f64,
    pub network: f64,
}

/// Recovery as counts since the stream began (the archive keeps them per tick, so their
/// trend can be read back).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaultCounts {
    pub recovery_actions: u64,
    pub recovery_actions_succeeded: u64,
    /// Workers that went offline, and of those, came back.
    pub outages: u64,
    pub recoveries: u64,
    /// Mean time from a worker going offline to its return, over recoveries, ms.
    pub mean_time_to_recovery_ms: f64,
}

/// A component's health (the coordinator, the load balancer), from its `component_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentState {
    pub health: crate::event::ComponentHealth,
    pub message: String,
    /// Since when it has been in this health, ms.
    pub since: i64,
    /// Its last report, ms.
    pub reported_at: i64,
}

/// The fleet as a whole, once per tick on `<prefix>.metrics.system`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[serde(default)]
    pub faults: FaultCounts,
    /// Components by name, as they last reported.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub components: std::collections::BTreeMap<String, ComponentState>,
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
            ("faults_recovery_actions", self.faults.recovery_actions as f64),
            ("faults_recovery_actions_succeeded", self.faults.recovery_actions_succeeded as f64),
            ("faults_outages", self.faults.outages as f64),
            ("faults_recoveries", self.faults.recoveries as f64),
            ("faults_mean_time_to_recovery_ms", self.faults.mean_time_to_recovery_ms),
            // Which events the tick's figures reflect: the archive replays up to it.
            ("events_seq", self.events_seq as f64),
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

/// A worker's derived status; exactly one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Idle,
    Busy,
    Overloaded,
    Disconnected,
}

impl WorkerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Overloaded => "overloaded",
            Self::Disconnected => "disconnected",
        }
    }
}

/// One worker, once per tick on `<prefix>.metrics.worker.<id>` and under `worker.<id>`
/// in the state bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerMetrics {
    pub time: i64,
    pub worker_id: String,
    pub status: WorkerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<crate::event::Capabilities>,
    pub cpu_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_pct: Option<f64>,
    pub memory_pct: f64,
    /// Unknown for a worker whose source does not report it (a coordinator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_pct: Option<f64>,
    /// Tasks running on it now (its last heartbeat).
    pub active_tasks: u64,
    /// Tasks waiting on it now (its last heartbeat).
    pub queued_tasks: u64,
    pub completed: u64,
    pub failed: u64,
    pub mean_task_ms: f64,
    /// Completions in the last hour.
    pub tasks_per_hour: f64,
    /// completed / (completed + failed); 1 before any.
    pub success_rate: f64,
    /// 0..=100, see docs/METRICS.md.
    pub health_score: f64,
    /// Since it last (re)joined, s; 0 while disconnected.
    pub uptime_secs: f64,
    /// When it was last heard from, ms.
    pub last_seen: i64,
}

impl WorkerMetrics {
    /// The long-table form for the archive's `worker_metrics`.
    pub fn flatten(&self) -> Vec<(&'static str, f64)> {
        let mut rows = vec![
            ("cpu_pct", self.cpu_pct),
            ("memory_pct", self.memory_pct),
            ("active_tasks", self.active_tasks as f64),
            ("queued_tasks", self.queued_tasks as f64),
            ("completed", self.completed as f64),
            ("failed", self.failed as f64),
            ("mean_task_ms", self.mean_task_ms),
            ("tasks_per_hour", self.tasks_per_hour),
            ("success_rate", self.success_rate),
            ("health_score", self.health_score),
            ("uptime_secs", self.uptime_secs),
        ];
        let known = [("gpu_pct", self.gpu_pct), ("network_pct", self.network_pct)];
        rows.extend(known.into_iter().filter_map(|(name, value)| Some((name, value?))));
        rows
    }
}

/// Figures for one group of tasks: a model family, a model or a hardware kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupStats {
    pub key: String,
    pub queued: u64,
    pub running: u64,
    /// Totals since the stream began.
    pub completed: u64,
    pub failed: u64,
    /// Completions in the last 60 s.
    pub throughput_per_min: f64,
    /// completed / (completed + failed); 1 before any.
    pub success_rate: f64,
    /// Processing time over the group's last completions.
    pub duration_ms: Summary,
    /// A model's family (model groups only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<crate::event::ModelFamily>,
    /// Queue time over the group's last starts.
    #[serde(default)]
    pub queue_time_ms: Summary,
    /// Share (0..=1) of the group's last assignments that went to a best-fit worker.
    #[serde(default = "one")]
    pub best_fit_ratio: f64,
}

fn one() -> f64 {
    1.0
}

/// How well a hardware kind runs a model family, 0..=100 (docs/METRICS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Compatibility {
    pub hardware: crate::event::HardwareKind,
    pub family: crate::event::ModelFamily,
    pub score: f64,
    /// Finished runs the score rests on.
    pub runs: u64,
}

/// A rate per key (a hardware kind or a model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rate {
    pub key: String,
    /// failed / (completed + failed).
    pub rate: f64,
    pub failed: u64,
    pub runs: u64,
}

/// One kind of recovery action: how often it was taken and how often it worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionStats {
    pub action: String,
    pub taken: u64,
    pub succeeded: u64,
    /// succeeded / taken.
    pub success_rate: f64,
}

/// Failures with one error text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorCount {
    pub error: String,
    pub count: u64,
}

/// Failures of one model family on one hardware kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairRate {
    pub hardware: crate::event::HardwareKind,
    pub family: crate::event::ModelFamily,
    /// failed / (completed + failed).
    pub rate: f64,
    pub failed: u64,
    pub runs: u64,
}

/// Resilience: where failures happen and how fast the fleet recovers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaultTolerance {
    pub failure_rate_by_hardware: Vec<Rate>,
    pub failure_rate_by_model: Vec<Rate>,
    /// Per hardware kind and family, for the pairs that ran.
    #[serde(default)]
    pub failure_rate_by_pair: Vec<PairRate>,
    /// Each recovery action and how well it worked.
    #[serde(default)]
    pub recovery_by_action: Vec<ActionStats>,
    /// Retried tasks that then completed, and those that failed again.
    #[serde(default)]
    pub retries_recovered: u64,
    #[serde(default)]
    pub retries_failed_again: u64,
    /// The most frequent error texts, most frequent first (at most 20).
    #[serde(default)]
    pub top_errors: Vec<ErrorCount>,
    pub recovery_actions: u64,
    pub recovery_actions_succeeded: u64,
    /// Workers that went offline, and of those, came back.
    pub outages: u64,
    pub recoveries: u64,
    /// Mean time from a worker going offline to its return, over recoveries, ms.
    pub mean_time_to_recovery_ms: f64,
}

/// A list that may be cut: `total` says how many there were, `truncated` whether all are here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Truncated<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub truncated: bool,
}

impl<T> Default for Truncated<T> {
    fn default() -> Self {
        Self { items: Vec::new(), total: 0, truncated: false }
    }
}

impl<T> Truncated<T> {
    /// The first `limit` of `items`, saying how many there were.
    pub fn of(items: impl ExactSizeIterator<Item = T>, limit: usize) -> Self {
        let total = items.len();
        Self { items: items.take(limit).collect(), total: total as u64, truncated: total > limit }
    }
}

/// A task that finished (completed or, finally, failed), with its timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinishedTask {
    pub task_id: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<crate::event::ModelFamily>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// The hardware of the worker it ran on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<crate::event::HardwareKind>,
    /// 0 (lowest) to 9.
    #[serde(default)]
    pub priority: u8,
    pub succeeded: bool,
    pub finished_at: i64,
    pub queue_ms: f64,
    pub processing_ms: f64,
    pub total_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tasks it waited for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Retries before this end (0: its first run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// Tasks by type, once per tick on `<prefix>.metrics.tasks` and under `tasks` in the
/// state bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskMetrics {
    pub time: i64,
    pub by_family: Vec<GroupStats>,
    pub by_model: Vec<GroupStats>,
    pub by_hardware: Vec<GroupStats>,
    pub compatibility: Vec<Compatibility>,
    pub fault_tolerance: FaultTolerance,
    /// Tasks that finished since the previous tick (what the archive's `task_metrics` holds).
    pub finished: Truncated<FinishedTask>,
    /// The most recent final failures, newest first.
    pub recent_failures: Truncated<FinishedTask>,
}

/// Per-worker metrics for one tick, in parts of at most a few hundred workers.
///
/// - On `<prefix>.metrics.workers.changes` (core NATS, every tick but sample ticks):
///   `complete = false`, the workers whose metrics changed since the previous tick
///   (any field but `time` and `uptime_secs`) and those that `retired`. A worker absent from
///   a change batch is unchanged since the last batch that carried it.
/// - On `<prefix>.metrics.workers.sample.<part>` (stream FLEET_METRICS, every
///   `processor.sample_secs`): `complete = true`, every live worker, in `parts` messages.
///   A worker absent from every part of a sample is gone.
///
/// A reader starts from the last sample (the last message of each part subject) and applies
/// the batches after it with [`WorkerPicture`]; one that misses a change batch (`previous`
/// is not the last time it applied) is right again at the next sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerMetricsBatch {
    /// The tick, ms since the epoch.
    pub time: i64,
    /// The tick of the batch before this one (0 for the processor's first).
    pub previous: i64,
    /// Whether this tick's parts together carry every live worker (a sample).
    pub complete: bool,
    /// This message's place among the tick's messages, from 0.
    pub part: u32,
    pub parts: u32,
    pub workers: Vec<WorkerMetrics>,
    /// Workers that left the live state this tick (listed in part 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
    /// The fleet partition whose workers these are (0 when the fleet is not partitioned);
    /// `complete`, `previous` and `parts` speak of that partition's workers only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub partition: u32,
}

impl WorkerMetrics {
    /// Whether a reader holding `self` must be told `other`: any field but the tick time
    /// and the uptime (which only counts on) differs.
    pub fn differs_from(&self, other: &WorkerMetrics) -> bool {
        // Field by field (no clone: this runs for every worker every tick). A field added to
        // the struct must be added here, which the destructuring enforces.
        let Self {
            time: _,
            uptime_secs: _,
            worker_id,
            status,
            capabilities,
            cpu_pct,
            gpu_pct,
            memory_pct,
            network_pct,
            active_tasks,
            queued_tasks,
            completed,
            failed,
            mean_task_ms,
            tasks_per_hour,
            success_rate,
            health_score,
            last_seen,
        } = self;
        (worker_id, status, capabilities, cpu_pct, gpu_pct, memory_pct, network_pct, active_tasks)
            != (
                &other.worker_id,
                &other.status,
                &other.capabilities,
                &other.cpu_pct,
                &other.gpu_pct,
                &other.memory_pct,
                &other.network_pct,
                &other.active_tasks,
            )
            || (queued_tasks, completed, failed, mean_task_ms, tasks_per_hour, success_rate, health_score, last_seen)
                != (
                    &other.queued_tasks,
                    &other.completed,
                    &other.failed,
                    &other.mean_task_ms,
                    &other.tasks_per_hour,
                    &other.success_rate,
                    &other.health_score,
                    &other.last_seen,
                )
    }
}

/// The latest metrics of every worker, as a reader folds [`WorkerMetricsBatch`]es (from
/// one processor, or from each partition's).
#[derive(Debug, Clone, Default)]
pub struct WorkerPicture {
    pub workers: std::collections::BTreeMap<String, WorkerMetrics>,
    /// The tick of the newest batch applied.
    pub time: i64,
    /// Per partition: the tick of its newest batch, and the sample being gathered.
    partitions: std::collections::BTreeMap<u32, PartitionPicture>,
}

#[derive(Debug, Clone, Default)]
struct PartitionPicture {
    time: i64,
    /// A sample being gathered: its tick, the parts seen and the workers it carried.
    sample: Option<(i64, std::collections::BTreeSet<u32>, std::collections::BTreeSet<String>)>,
    /// The workers its batches carried.
    workers: std::collections::BTreeSet<String>,
}

impl WorkerPicture {
    /// Folds one batch in. Batches older than the partition's newest applied are ignored,
    /// except the other parts of the same tick.
    pub fn apply(&mut self, batch: WorkerMetricsBatch) {
        let partition = self.partitions.entry(batch.partition).or_default();
        if batch.time < partition.time {
            return;
        }
        partition.time = batch.time;
        self.time = self.time.max(batch.time);
        for worker_id in &batch.retired {
            self.workers.remove(worker_id);
            partition.workers.remove(worker_id);
        }
        if batch.complete {
            let sample = match &mut partition.sample {
                Some(sample) if sample.0 == batch.time => sample,
                _ => partition.sample.insert((batch.time, Default::default(), Default::default())),
            };
            sample.1.insert(batch.part);
            sample.2.extend(batch.workers.iter().map(|worker| worker.worker_id.clone()));
            if sample.1.len() as u32 >= batch.parts {
                let (_, _, present) = partition.sample.take().unwrap_or_default();
                for gone in partition.workers.difference(&present) {
                    self.workers.remove(gone);
                }
                partition.workers = present;
            }
        }
        for worker in batch.workers {
            partition.workers.insert(worker.worker_id.clone());
            self.workers.insert(worker.worker_id.clone(), worker);
        }
    }
}
