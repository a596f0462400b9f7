//! `[alerter.rules.<rule>]`: every built-in rule has `enabled`, `severity`, `for_secs`,
//! `keep_firing_secs` and `labels`, then its own thresholds. Defaults and meanings are
//! tabled in `schemas/alerts.md`.

use crate::engine::Settings;
use serde::{Deserialize, Serialize};
use shared::alert::Severity;
use std::collections::BTreeMap;

/// A firing alert whose condition clears resolves after this much clear event time, s.
const KEEP_FIRING_SECS: u64 = 10;

macro_rules! rule {
    ($(#[$doc:meta])* $name:ident, $severity:ident, $for:expr, { $($(#[$fdoc:meta])* $field:ident: $ty:ty = $default:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            pub enabled: bool,
            pub severity: Severity,
            /// The condition holds this long (event time) before the alert fires, s.
            pub for_secs: u64,
            /// The condition is clear this long before a firing alert resolves, s.
            pub keep_firing_secs: u64,
            /// Added to every alert of the rule.
            pub labels: BTreeMap<String, String>,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    enabled: true,
                    severity: Severity::$severity,
                    for_secs: $for,
                    keep_firing_secs: KEEP_FIRING_SECS,
                    labels: BTreeMap::new(),
                    $($field: $default,)*
                }
            }
        }

        impl $name {
            pub fn settings(&self) -> Option<Settings> {
                self.enabled.then(|| Settings {
                    severity: self.severity,
                    for_ms: self.for_secs as i64 * 1000,
                    keep_firing_ms: self.keep_firing_secs as i64 * 1000,
                    labels: self.labels.clone(),
                })
            }
        }
    };
}

rule!(
    /// A worker whose CPU, GPU or memory stays high, or whose own queue stays long.
    WorkerOverloaded, Warning, 30, {
    cpu_pct: f32 = 90.0,
    gpu_pct: f32 = 95.0,
    memory_pct: f32 = 90.0,
    /// Tasks waiting on the worker itself (`queued_tasks` of its heartbeats).
    pending_tasks: u32 = 5,
});
rule!(
    /// No heartbeat for `[fleet] lost_after_secs` of event time, or a coordinator says offline.
    WorkerLost, Warning, 0, {});
rule!(
    /// Predictive: a worker's recent failure rate climbs well above its long-run rate.
    WorkerFailureTrend, Warning, 0, {
    /// Finished tasks on the worker before it is judged.
    min_tasks: u32 = 20,
    /// The recent (EWMA, alpha 0.1) failure rate at least this...
    min_rate: f64 = 0.5,
    /// ...and at least this above the long-run (EWMA, alpha 0.01) rate.
    rise: f64 = 0.3,
});
rule!(
    /// A task running far past what its model usually takes on that hardware.
    TaskStalled, Warning, 0, {
    /// Running longer than this many times the usual duration...
    factor: f64 = 3.0,
    /// ...and at least this long, s.
    min_secs: u64 = 300,
    /// Completed runs of the model on the hardware before its usual duration is trusted.
    min_runs: u32 = 5,
    /// The limit while there are fewer runs, s.
    default_secs: u64 = 3600,
});
rule!(
    /// A model whose tasks waited long before they started, on average.
    QueueTimeHigh, Warning, 60, {
    mean_secs: f64 = 30.0,
    /// Over the tasks of the model that started this recently (event time), s.
    window_secs: u64 = 300,
    min_tasks: u32 = 5,
});
rule!(
    /// Too many tasks waiting to start, fleet-wide.
    QueueTooLong, Warning, 60, {
    tasks: u64 = 100,
});
rule!(
    /// Many failures in a short time on one hardware kind or one model.
    FailureBurst, Critical, 0, {
    failures: u32 = 5,
    window_secs: u64 = 60,
});
rule!(
    /// A model or hardware kind whose tasks succeed too rarely.
    LowSuccessRate, Warning, 0, {
    min_rate: f64 = 0.8,
    min_tasks: u32 = 20,
    window_secs: u64 = 900,
});
rule!(
    /// Too few tasks go to the workers best fitted to them.
    LowSchedulingEfficiency, Info, 300, {
    min_ratio: f64 = 0.5,
    min_assignments: u32 = 20,
    window_secs: u64 = 900,
});
rule!(
    /// A component (the coordinator, a load balancer) reports itself down, or the collector
    /// cannot reach it.
    CoordinatorUnreachable, Critical, 0, {});
rule!(
    /// The archiver is far behind its streams.
    ArchiveLag, Warning, 60, {
    lag_secs: f64 = 60.0,
});
rule!(
    /// A service dead-letters or cannot decode many messages in a short time.
    DeadLettersRising, Warning, 0, {
    count: u64 = 10,
    window_secs: u64 = 60,
});
rule!(
    /// A service that reported before has not for a while (by the watermark).
    ServiceSilent, Critical, 0, {
    silent_secs: u64 = 15,
});
rule!(
    /// Throughput, queue time or latency (per bucket of event time) outside its EWMA band.
    Anomaly, Warning, 120, {
    /// The figures' resolution: one per this much event time, s.
    bucket_secs: u64 = 60,
    /// Band half-width, in standard deviations.
    sigmas: f64 = 3.0,
    /// EWMA weight of each new bucket.
    alpha: f64 = 0.1,
    /// Buckets seen before anything is judged.
    warmup_buckets: u32 = 30,
    /// A deviation also has to be at least this fraction of the mean.
    min_change: f64 = 0.2,
});

/// `[alerter.rules]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    pub worker_overloaded: WorkerOverloaded,
    pub worker_lost: WorkerLost,
    pub worker_failure_trend: WorkerFailureTrend,
    pub task_stalled: TaskStalled,
    pub queue_time_high: QueueTimeHigh,
    pub queue_too_long: QueueTooLong,
    pub failure_burst: FailureBurst,
    pub low_success_rate: LowSuccessRate,
    pub low_scheduling_efficiency: LowSchedulingEfficiency,
    pub coordinator_unreachable: CoordinatorUnreachable,
    pub archive_lag: ArchiveLag,
    pub dead_letters_rising: DeadLettersRising,
    pub service_silent: ServiceSilent,
    pub anomaly: Anomaly,
}

/// The rule names, as they appear on subjects (`<prefix>.alerts.<severity>.<rule>`).
pub mod names {
    pub const WORKER_OVERLOADED: &str = "worker_overloaded";
    pub const WORKER_LOST: &str = "worker_lost";
    pub const WORKER_FAILURE_TREND: &str = "worker_failure_trend";
    pub const TASK_STALLED: &str = "task_stalled";
    pub const QUEUE_TIME_HIGH: &str = "queue_time_high";
    pub const QUEUE_TOO_LONG: &str = "queue_too_long";
    pub const FAILURE_BURST: &str = "failure_burst";
    pub const LOW_SUCCESS_RATE: &str = "low_success_rate";
    pub const LOW_SCHEDULING_EFFICIENCY: &str = "low_scheduling_efficiency";
    pub const COORDINATOR_UNREACHABLE: &str = "coordinator_unreachable";
    pub const ARCHIVE_LAG: &str = "archive_lag";
    pub const DEAD_LETTERS_RISING: &str = "dead_letters_rising";
    pub const SERVICE_SILENT: &str = "service_silent";
    pub const THROUGHPUT_ANOMALY: &str = "throughput_anomaly";
    pub const QUEUE_TIME_ANOMALY: &str = "queue_time_anomaly";
    pub const LATENCY_ANOMALY: &str = "latency_anomaly";
    /// Alerts programs post through `POST /api/alerts`.
    pub const CUSTOM: &str = "custom";

    pub const BUILT_IN: [&str; 17] = [
        WORKER_OVERLOADED,
        WORKER_LOST,
        WORKER_FAILURE_TREND,
        TASK_STALLED,
        QUEUE_TIME_HIGH,
        QUEUE_TOO_LONG,
        FAILURE_BURST,
        LOW_SUCCESS_RATE,
        LOW_SCHEDULING_EFFICIENCY,
        COORDINATOR_UNREACHABLE,
        ARCHIVE_LAG,
        DEAD_LETTERS_RISING,
        SERVICE_SILENT,
        THROUGHPUT_ANOMALY,
        QUEUE_TIME_ANOMALY,
        LATENCY_ANOMALY,
        CUSTOM,
    ];
}

impl Rules {
    /// Each enabled rule's settings by name.
    pub fn settings(&self) -> BTreeMap<&'static str, Settings> {
        use names::*;
        let anomaly = self.anomaly.settings();
        [
            (WORKER_OVERLOADED, self.worker_overloaded.settings()),
            (WORKER_LOST, self.worker_lost.settings()),
            (WORKER_FAILURE_TREND, self.worker_failure_trend.settings()),
            (TASK_STALLED, self.task_stalled.settings()),
            (QUEUE_TIME_HIGH, self.queue_time_high.settings()),
            (QUEUE_TOO_LONG, self.queue_too_long.settings()),
            (FAILURE_BURST, self.failure_burst.settings()),
            (LOW_SUCCESS_RATE, self.low_success_rate.settings()),
            (LOW_SCHEDULING_EFFICIENCY, self.low_scheduling_efficiency.settings()),
            (COORDINATOR_UNREACHABLE, self.coordinator_unreachable.settings()),
            (ARCHIVE_LAG, self.archive_lag.settings()),
            (DEAD_LETTERS_RISING, self.dead_letters_rising.settings()),
            (SERVICE_SILENT, self.service_silent.settings()),
            (THROUGHPUT_ANOMALY, anomaly.clone()),
            (QUEUE_TIME_ANOMALY, anomaly.clone()),
            (LATENCY_ANOMALY, anomaly),
        ]
        .into_iter()
        .filter_map(|(name, settings)| Some((name, settings?)))
        .collect()
    }
}
