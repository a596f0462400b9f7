//! Every subject, stream and bucket name, built from one configurable prefix.
//!
//! Nothing else in the code base spells a subject: a service asks [`Subjects`].

use thiserror::Error;

/// The default subject prefix.
pub const DEFAULT_PREFIX: &str = "fleet";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SubjectError {
    #[error("the subject prefix must not be empty")]
    EmptyPrefix,
    #[error("{what} {value:?} is not a valid subject token: use letters, digits, '-' and '_'")]
    InvalidToken { what: &'static str, value: String },
}

/// Subject, stream and bucket names under one prefix (`fleet` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// A prefix is one or more dot-separated tokens (`fleet`, `acme.fleet`).
    pub fn new(prefix: &str) -> Result<Self, SubjectError> {
        if prefix.is_empty() {
            return Err(SubjectError::EmptyPrefix);
        }
        for token in prefix.split('.') {
            check_token("prefix token", token)?;
        }
        Ok(Self { prefix: prefix.to_owned() })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    // ---- ingest (untrusted input, core NATS) ----
    pub fn ingest_all(&self) -> String {
        format!("{}.ingest.>", self.prefix)
    }
    /// Where agents publish: `<prefix>.ingest.<anything>`; the collector reads the kind
    /// from the payload, never from the subject.
    pub fn ingest(&self, tail: &str) -> String {
        format!("{}.ingest.{tail}", self.prefix)
    }

    // ---- events (FLEET_EVENTS, written only by the collector) ----
    pub fn events_all(&self) -> String {
        format!("{}.events.>", self.prefix)
    }
    /// A worker's lifecycle events: `<prefix>.events.worker.<shard>.<worker_id>`.
    pub fn worker_event(&self, worker_id: &str) -> String {
        format!("{}.events.worker.{:02}.{worker_id}", self.prefix, shard_of(worker_id))
    }
    /// A worker's heartbeats, apart from its lifecycle, so that a reader that wants only the
    /// lifecycle (`nats sub 'fleet.events.worker.>'`) is not flooded.
    pub fn heartbeat_event(&self, worker_id: &str) -> String {
        format!("{}.events.heartbeat.{:02}.{worker_id}", self.prefix, shard_of(worker_id))
    }
    /// Task events: `<prefix>.events.task.<task shard>`, and `.<worker shard>` after it when
    /// the event names a worker (so the worker's partition reads it too). Not one subject
    /// per task: the server indexes every distinct subject in memory for as long as the
    /// stream keeps it, and tasks are unbounded in number.
    pub fn task_event(&self, task_id: &str, worker_id: Option<&str>) -> String {
        match worker_id {
            Some(worker_id) => {
                format!("{}.events.task.{:02}.{:02}", self.prefix, shard_of(task_id), shard_of(worker_id))
            }
            None => format!("{}.events.task.{:02}", self.prefix, shard_of(task_id)),
        }
    }
    /// Health reports the collector forwards: `<prefix>.events.service.<service>`.
    pub fn service_event(&self, service: &str) -> String {
        format!("{}.events.service.{service}", self.prefix)
    }
    /// The collector's clock ticks: `<prefix>.events.clock`.
    pub fn clock_event(&self) -> String {
        format!("{}.events.clock", self.prefix)
    }
    /// Acknowledgements, manual resolutions, silences and custom alerts:
    /// `<prefix>.events.control.alerts`.
    pub fn alert_control_event(&self) -> String {
        format!("{}.events.control.alerts", self.prefix)
    }
    /// Where the gateway asks the collector to store an alert control event (request/reply):
    /// `<prefix>.control.alerts`. Only the gateway publishes here.
    pub fn alert_control(&self) -> String {
        format!("{}.control.alerts", self.prefix)
    }
    pub fn system_event(&self, component: &str) -> String {
        format!("{}.events.system.{component}", self.prefix)
    }

    // ---- metrics (processor) ----
    pub fn metrics_system(&self) -> String {
        format!("{}.metrics.system", self.prefix)
    }
    /// Every tick: the workers whose metrics changed (core NATS, not stored).
    pub fn metrics_worker_changes(&self) -> String {
        format!("{}.metrics.workers.changes", self.prefix)
    }
    /// Every `sample_secs`: part `part` of a sample of every live worker of a partition
    /// (0 when the fleet is not partitioned), stored.
    pub fn metrics_worker_sample(&self, partition: u32, part: u32) -> String {
        format!("{}.metrics.workers.sample.{partition}.{part}", self.prefix)
    }
    /// Every tick: one fleet partition's mergeable summary (core NATS), for the fleet tier.
    pub fn metrics_partition(&self, partition: u32) -> String {
        format!("{}.metrics.partition.{partition}", self.prefix)
    }
    pub fn metrics_partitions(&self) -> String {
        format!("{}.metrics.partition.*", self.prefix)
    }
    /// Each second of event time: one alerter partition's inputs to the fleet-wide rules
    /// (`RuleInputs`), stored, for the alerter's fleet tier.
    pub fn metrics_alert_inputs(&self, partition: u32) -> String {
        format!("{}.metrics.alerts.partition.{partition}", self.prefix)
    }
    pub fn metrics_alert_inputs_all(&self) -> String {
        format!("{}.metrics.alerts.partition.*", self.prefix)
    }
    pub fn metrics_worker_samples(&self) -> String {
        format!("{}.metrics.workers.sample.>", self.prefix)
    }
    /// Changes and samples: what a live reader of per-worker metrics follows.
    pub fn metrics_workers_all(&self) -> String {
        format!("{}.metrics.workers.>", self.prefix)
    }
    pub fn metrics_tasks(&self) -> String {
        format!("{}.metrics.tasks", self.prefix)
    }

    // ---- alerts (alerter) ----
    pub fn alerts_all(&self) -> String {
        format!("{}.alerts.>", self.prefix)
    }
    pub fn alert(&self, severity: &str, rule: &str) -> String {
        format!("{}.alerts.{severity}.{rule}", self.prefix)
    }

    // ---- dead letters, health, queries ----
    pub fn deadletter_all(&self) -> String {
        format!("{}.deadletter.>", self.prefix)
    }
    pub fn deadletter(&self, service: &str) -> String {
        format!("{}.deadletter.{service}", self.prefix)
    }
    pub fn health_all(&self) -> String {
        format!("{}.health.>", self.prefix)
    }
    pub fn health(&self, service: &str) -> String {
        format!("{}.health.{service}", self.prefix)
    }
    pub fn query(&self, name: &str) -> String {
        format!("{}.query.{name}", self.prefix)
    }

    // ---- JetStream names: the prefix upper-cased, dots to underscores ----
    fn upper(&self) -> String {
        self.prefix.replace('.', "_").to_uppercase()
    }
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.upper())
    }
    pub fn alerts_stream(&self) -> String {
        format!("{}_ALERTS", self.upper())
    }
    pub fn metrics_stream(&self) -> String {
        format!("{}_METRICS", self.upper())
    }
    pub fn deadletter_stream(&self) -> String {
        format!("{}_DEADLETTER", self.upper())
    }
    /// Key-value bucket with the current derived state (`system`, `alerts.firing`, ...).
    pub fn state_bucket(&self) -> String {
        format!("{}_STATE", self.upper())
    }
    /// Object store holding each stateful service's snapshot.
    pub fn snapshot_bucket(&self) -> String {
        format!("{}_SNAPSHOTS", self.upper())
    }
}

impl Default for Subjects {
    fn default() -> Self {
        Self { prefix: DEFAULT_PREFIX.to_owned() }
    }
}

/// Worker and task events are spread over this many shards (the `<shard>` subject token,
/// `00` to `63`), so that processing can be partitioned by subject filters.
pub const EVENT_SHARDS: u32 = 64;

/// The shard of a worker or task id: FNV-1a of its bytes, modulo [`EVENT_SHARDS`]. Part of
/// the contract: other languages compute it the same way (schemas/README.md).
pub fn shard_of(id: &str) -> u32 {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    hash % EVENT_SHARDS
}

/// A subject token we accept from outside (worker and task ids, components, rules).
pub fn check_token(what: &'static str, value: &str) -> Result<(), SubjectError> {
    let valid = !value.is_empty()
        && value.len() <= 128
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid { Ok(()) } else { Err(SubjectError::InvalidToken { what, value: value.to_owned() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_prefix_builds_the_documented_subjects() {
        let subjects = Subjects::default();
        assert_eq!(subjects.worker_event("gpu-01"), format!("fleet.events.worker.{:02}.gpu-01", shard_of("gpu-01")));
        assert_eq!(
            subjects.heartbeat_event("gpu-01"),
            format!("fleet.events.heartbeat.{:02}.gpu-01", shard_of("gpu-01"))
        );
        assert_eq!(subjects.task_event("t-9", None), format!("fleet.events.task.{:02}", shard_of("t-9")));
        assert_eq!(
            subjects.task_event("t-9", Some("gpu-01")),
            format!("fleet.events.task.{:02}.{:02}", shard_of("t-9"), shard_of("gpu-01"))
        );
        assert_eq!(subjects.alert("warning", "worker_overloaded"), "fleet.alerts.warning.worker_overloaded");
        assert_eq!(subjects.events_stream(), "FLEET_EVENTS");
        assert_eq!(subjects.state_bucket(), "FLEET_STATE");
    }

    #[test]
    fn shards_are_fnv1a_modulo_64() {
        // Reference values other languages check against (schemas/README.md).
        assert_eq!(shard_of(""), 0x811c_9dc5 % 64);
        assert_eq!(shard_of("a"), 0xe40c_292c % 64);
        assert_eq!(shard_of("cpu-001"), shard_of("cpu-001"));
        let spread: std::collections::BTreeSet<u32> = (0..1000).map(|n| shard_of(&format!("t-{n}"))).collect();
        assert_eq!(spread.len(), 64, "a thousand ids reach every shard");
    }

    #[test]
    fn a_dotted_prefix_gives_distinct_stream_names() {
        let subjects = Subjects::new("acme.fleet").expect("valid prefix");
        assert_eq!(subjects.metrics_system(), "acme.fleet.metrics.system");
        assert_eq!(subjects.events_stream(), "ACME_FLEET_EVENTS");
    }

    #[test]
    fn wildcards_and_spaces_are_refused() {
        assert_eq!(Subjects::new(""), Err(SubjectError::EmptyPrefix));
        assert!(Subjects::new("fleet.>").is_err());
        assert!(check_token("worker id", "gpu 01").is_err());
        assert!(check_token("worker id", "gpu.01").is_err());
        assert!(check_token("worker id", "gpu-01_a").is_ok());
    }
}
