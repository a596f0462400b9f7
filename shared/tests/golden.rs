//! The golden payloads in `schemas/golden/`: each `NAME.msgpack` is wire bytes written by
//! an earlier build, and `NAME.json` the same message for people. Both must still decode
//! to the same value, so a change that breaks old messages fails here.
//!
//! `FLEETWATCH_BLESS=1 cargo test -p shared --test golden` writes files that are missing
//! (never overwrites one: an existing golden file is a promise).

use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::alert::{
    Alert, AlertState, Change, FiringAlerts, Mark, MatchOp, Matcher, RuleInputs, Severity, Silence, Silences, Totals,
};
use shared::event::{Capabilities, ComponentHealth, Event, HardwareKind, ModelFamily, ReportedStatus};
use shared::health::{Gauge, HealthReport};
use shared::metrics::{
    ActionStats, Compatibility, ComponentState, ErrorCount, FaultCounts, FaultTolerance, FinishedTask, GroupStats,
    PairRate, Rate, Summary, SystemMetrics, TaskCounts, TaskMetrics, Truncated, Utilisation, WorkerCounts,
    WorkerMetrics, WorkerMetricsBatch, WorkerStatus,
};
use shared::{Envelope, codec};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;

const TIME: i64 = 1_764_000_000_000;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/golden")
}

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(name: &str, example: T) {
    let dir = golden_dir();
    let packed = dir.join(format!("{name}.msgpack"));
    let json = dir.join(format!("{name}.json"));
    if std::env::var_os("FLEETWATCH_BLESS").is_some() && !packed.exists() {
        std::fs::write(&packed, codec::encode(&example).expect("encodes")).expect("write golden msgpack");
        std::fs::write(&json, serde_json::to_string_pretty(&example).expect("json") + "\n").expect("write golden json");
    }
    let bytes = std::fs::read(&packed).unwrap_or_else(|err| panic!("{}: {err} (bless new examples)", packed.display()));
    let from_wire: T = codec::decode(&bytes).unwrap_or_else(|err| panic!("{name}.msgpack no longer decodes: {err}"));
    let text = std::fs::read_to_string(&json).expect("golden json");
    let from_json: T = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{name}.json no longer decodes: {err}"));
    assert_eq!(from_wire, from_json, "{name}: wire and JSON disagree");
    assert_eq!(from_wire, example, "{name}: the example in this test changed; add a new golden file instead");
}

/// An envelope as schema 1 wrote it (the golden files from before schema 2).
fn envelope<T>(id: &str, source: &str, payload: T) -> Envelope<T> {
    Envelope { schema: 1, ..Envelope::with_id(id.into(), TIME, source, payload) }
}

fn envelope_v2<T>(id: &str, source: &str, payload: T) -> Envelope<T> {
    Envelope { schema: 2, ..Envelope::with_id(id.into(), TIME, source, payload) }
}

#[test]
fn events_decode() {
    let examples = [
        Event::WorkerRegistered {
            worker_id: "cuda-007".into(),
            capabilities: Capabilities {
                hardware: HardwareKind::Cuda,
                cpu_cores: 32,
                memory_gb: 128.0,
                gpu_model: Some("A100".into()),
                gpu_memory_gb: Some(80.0),
                slots: 4,
                tags: vec!["cuda".into(), "vision".into()],
            },
        },
        Event::Heartbeat {
            worker_id: "cuda-007".into(),
            cpu_pct: Some(63.5),
            memory_pct: Some(48.0),
            gpu_pct: Some(82.0),
            gpu_memory_pct: Some(61.0),
            network_pct: Some(9.5),
            running_tasks: Some(3),
            queued_tasks: Some(1),
        },
        Event::WorkerStatusChanged {
            worker_id: "cuda-007".into(),
            status: ReportedStatus::Draining,
            reason: "maintenance".into(),
        },
        Event::WorkerDeregistered { worker_id: "cuda-007".into(), reason: "scaled in".into() },
        Event::TaskQueued {
            task_id: "t-42".into(),
            model: "vit-large".into(),
            family: ModelFamily::Vision,
            priority: 7,
            depends_on: vec![],
        },
        Event::TaskAssigned { task_id: "t-42".into(), worker_id: "cuda-007".into(), best_fit: Some(true) },
        Event::TaskStarted { task_id: "t-42".into(), worker_id: "cuda-007".into() },
        Event::TaskCompleted { task_id: "t-42".into(), worker_id: "cuda-007".into() },
        Event::TaskFailed {
            task_id: "t-42".into(),
            worker_id: Some("cuda-007".into()),
            error: "CUDA out of memory".into(),
        },
        Event::TaskRetried { task_id: "t-42".into(), attempt: 1 },
        Event::TaskCancelled { task_id: "t-42".into(), reason: "superseded".into() },
        Event::ComponentStatus {
            component: "load_balancer".into(),
            health: ComponentHealth::Degraded,
            message: "queue above 500".into(),
        },
        Event::RecoveryAction {
            component: "coordinator".into(),
            action: "reassign_tasks".into(),
            target: Some("cpu-003".into()),
            succeeded: true,
        },
    ];
    for event in examples {
        let name = format!("event-{}", event.kind());
        check(&name, envelope("0193a8f0-0000-7000-8000-000000000001", "collector", event));
    }
    let schema_2 = [
        Event::ServiceReport {
            service: "archiver".into(),
            instance: "node-1-4343".into(),
            started_at: TIME - 60_000,
            dead_letters: 2,
            lag_seconds: Some(0.4),
        },
        Event::AlertRaised {
            source: "nightly-bench".into(),
            level: Severity::Warning,
            title: "Custom Alert".into(),
            message: "This is a custom alert message".into(),
            metrics: [("value".to_owned(), 42.0)].into(),
        },
        Event::AlertAcknowledged {
            alert_id: format!("worker_overloaded-cpu-003-{TIME}"),
            by: "ana".into(),
            comment: "looking".into(),
        },
        Event::AlertResolved {
            alert_id: format!("worker_overloaded-cpu-003-{TIME}"),
            by: "ana".into(),
            comment: "restarted the job".into(),
        },
        Event::SilenceCreated {
            silence_id: "0193a8f0-0000-7000-8000-00000000000a".into(),
            matchers: vec![
                Matcher { name: "rule".into(), op: MatchOp::Equal, value: "worker_overloaded".into() },
                Matcher { name: "hardware".into(), op: MatchOp::Regex, value: "cuda|rocm".into() },
            ],
            starts_at: TIME,
            ends_at: TIME + 3_600_000,
            by: "ana".into(),
            comment: "GPU maintenance".into(),
        },
        Event::SilenceDeleted { silence_id: "0193a8f0-0000-7000-8000-00000000000a".into(), by: "ana".into() },
        Event::Clock {},
    ];
    for event in schema_2 {
        let name = format!("event-{}", event.kind());
        check(&name, envelope_v2("0193a8f0-0000-7000-8000-000000000002", "collector", event));
    }
    let dependent = Event::TaskQueued {
        task_id: "t-43".into(),
        model: "clip-b32".into(),
        family: ModelFamily::Multimodal,
        priority: 5,
        depends_on: vec!["t-41".into(), "t-42".into()],
    };
    check("event-task_queued-depends_on", envelope_v2("0193a8f0-0000-7000-8000-000000000013", "collector", dependent));
}

#[test]
fn metrics_alerts_and_health_decode() {
    let system = SystemMetrics {
        time: TIME,
        workers: WorkerCounts { total: 24, active: 10, idle: 12, busy: 9, overloaded: 1, disconnected: 2 },
        tasks: TaskCounts {
            queued: 5,
            assigned: 3,
            running: 30,
            completed: 1200,
            failed: 31,
            cancelled: 2,
            retried: 25,
        },
        throughput_per_min: 118.0,
        queue_time_ms: Summary { count: 1000, mean: 1650.0, p50: 0.0, p95: 6000.0, p99: 9000.0 },
        processing_time_ms: Summary { count: 1000, mean: 4100.0, p50: 4000.0, p95: 9000.0, p99: 14000.0 },
        scheduling_efficiency: 0.92,
        utilisation: Utilisation { cpu: 41.0, gpu: 63.0, memory: 40.0, network: 8.0 },
        events_seq: 123_456,
        faults: FaultCounts::default(),
        components: BTreeMap::new(),
    };
    check("metrics-system", envelope("0193a8f0-0000-7000-8000-000000000002", "processor", system.clone()));
    // Recovery counts and the components' health, added later.
    let with_faults = SystemMetrics {
        faults: FaultCounts {
            recovery_actions: 14,
            recovery_actions_succeeded: 12,
            outages: 6,
            recoveries: 5,
            mean_time_to_recovery_ms: 48_000.0,
        },
        components: [(
            "coordinator".to_owned(),
            ComponentState {
                health: ComponentHealth::Degraded,
                message: "queue above 500".into(),
                since: TIME - 30_000,
                reported_at: TIME - 2_000,
            },
        )]
        .into(),
        ..system
    };
    check("metrics-system-faults", envelope("0193a8f0-0000-7000-8000-000000000012", "processor", with_faults));
    let worker = WorkerMetrics {
        time: TIME,
        worker_id: "cuda-007".into(),
        status: WorkerStatus::Busy,
        capabilities: None,
        cpu_pct: 63.5,
        gpu_pct: Some(82.0),
        memory_pct: 48.0,
        network_pct: Some(9.5),
        active_tasks: 3,
        queued_tasks: 1,
        completed: 420,
        failed: 7,
        mean_task_ms: 4100.0,
        tasks_per_hour: 310.0,
        success_rate: 0.9836,
        health_score: 98.36,
        uptime_secs: 86_400.0,
        last_seen: TIME - 400,
    };
    check("metrics-worker", envelope("0193a8f0-0000-7000-8000-000000000004", "processor", worker.clone()));
    let sample = WorkerMetricsBatch {
        time: TIME,
        previous: TIME - 1000,
        complete: true,
        part: 0,
        parts: 1,
        workers: vec![worker.clone()],
        retired: Vec::new(),
        partition: 0,
    };
    check("metrics-workers-sample", envelope(&format!("workers-{TIME}-0"), "processor", sample));
    let changes = WorkerMetricsBatch {
        time: TIME + 1000,
        previous: TIME,
        complete: false,
        part: 0,
        parts: 1,
        workers: vec![WorkerMetrics { time: TIME + 1000, cpu_pct: 91.5, last_seen: TIME + 600, ..worker }],
        retired: vec!["cpu-003".into()],
        partition: 0,
    };
    check("metrics-workers-changes", envelope(&format!("workers-{}-0", TIME + 1000), "processor", changes));
    let vision = GroupStats {
        key: "vision".into(),
        queued: 5,
        running: 12,
        completed: 45,
        failed: 2,
        throughput_per_min: 9.0,
        success_rate: 0.957,
        duration_ms: Summary { count: 45, mean: 4000.0, p50: 3800.0, p95: 7000.0, p99: 9000.0 },
        family: None,
        queue_time_ms: Summary::default(),
        best_fit_ratio: 1.0,
    };
    let failure = FinishedTask {
        task_id: "t-42".into(),
        model: "vit-large".into(),
        family: Some(ModelFamily::Vision),
        worker_id: Some("cuda-007".into()),
        hardware: None,
        priority: 0,
        succeeded: false,
        finished_at: TIME,
        queue_ms: 1200.0,
        processing_ms: 3000.0,
        total_ms: 4200.0,
        error: Some("CUDA out of memory".into()),
        depends_on: Vec::new(),
        attempts: 0,
    };
    let tasks = TaskMetrics {
        time: TIME,
        by_family: vec![vision.clone()],
        by_model: vec![GroupStats { key: "vit-large".into(), ..vision.clone() }],
        by_hardware: vec![GroupStats { key: "cuda".into(), ..vision }],
        compatibility: vec![Compatibility {
            hardware: HardwareKind::Cuda,
            family: ModelFamily::Vision,
            score: 95.0,
            runs: 47,
        }],
        fault_tolerance: FaultTolerance {
            failure_rate_by_hardware: vec![Rate { key: "cuda".into(), rate: 0.043, failed: 2, runs: 47 }],
            failure_rate_by_model: vec![Rate { key: "vit-large".into(), rate: 0.043, failed: 2, runs: 47 }],
            recovery_actions: 3,
            recovery_actions_succeeded: 3,
            outages: 2,
            recoveries: 1,
            mean_time_to_recovery_ms: 45_000.0,
            ..FaultTolerance::default()
        },
        finished: Truncated { items: vec![failure.clone()], total: 1, truncated: false },
        recent_failures: Truncated { items: vec![failure.clone()], total: 7, truncated: true },
    };
    check("metrics-tasks", envelope("0193a8f0-0000-7000-8000-000000000005", "processor", tasks.clone()));
    // Scheduling per group, failure patterns and task dependencies, added later.
    let model = GroupStats {
        key: "vit-large".into(),
        family: Some(ModelFamily::Vision),
        queue_time_ms: Summary { count: 45, mean: 1200.0, p50: 900.0, p95: 4000.0, p99: 6000.0 },
        best_fit_ratio: 0.85,
        ..tasks.by_model[0].clone()
    };
    let retried = FinishedTask { depends_on: vec!["t-41".into()], attempts: 1, ..failure };
    let patterns = TaskMetrics {
        by_model: vec![model],
        fault_tolerance: FaultTolerance {
            failure_rate_by_pair: vec![PairRate {
                hardware: HardwareKind::Cuda,
                family: ModelFamily::Vision,
                rate: 0.043,
                failed: 2,
                runs: 47,
            }],
            recovery_by_action: vec![ActionStats {
                action: "reassign_tasks".into(),
                taken: 3,
                succeeded: 2,
                success_rate: 2.0 / 3.0,
            }],
            retries_recovered: 20,
            retries_failed_again: 3,
            top_errors: vec![ErrorCount { error: "CUDA out of memory".into(), count: 2 }],
            ..tasks.fault_tolerance
        },
        finished: Truncated { items: vec![retried.clone()], total: 1, truncated: false },
        recent_failures: Truncated { items: vec![retried], total: 7, truncated: true },
        ..tasks
    };
    check("metrics-tasks-patterns", envelope("0193a8f0-0000-7000-8000-000000000015", "processor", patterns));
    let alert = Alert {
        alert_id: format!("worker_overloaded-cpu-003-{TIME}"),
        rule: "worker_overloaded".into(),
        severity: Severity::Warning,
        state: AlertState::Firing,
        target: "cpu-003".into(),
        summary: "worker cpu-003 is overloaded: CPU 97% for 30s".into(),
        value: 97.0,
        threshold: 90.0,
        started_at: TIME,
        fingerprint: String::new(),
        labels: Default::default(),
        metrics: Default::default(),
        fired_at: None,
        resolved_at: None,
        resolved_by: None,
        acknowledged: None,
        silenced_by: Vec::new(),
        revision: 0,
        change: None,
    };
    check("alert-firing", envelope(&format!("{}-firing", alert.alert_id), "alerter", alert.clone()));
    check("alerts-firing-state", FiringAlerts { time: TIME, alerts: vec![alert.clone()] });
    let acknowledged = Alert {
        fingerprint: "worker_overloaded/cpu-003".into(),
        labels: [
            ("rule", "worker_overloaded"),
            ("severity", "warning"),
            ("target", "cpu-003"),
            ("worker_id", "cpu-003"),
            ("hardware", "cpu"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .into(),
        fired_at: Some(TIME + 30_000),
        acknowledged: Some(Mark { by: "ana".into(), at: TIME + 60_000, comment: "looking".into() }),
        silenced_by: vec!["0193a8f0-0000-7000-8000-00000000000a".into()],
        revision: 2,
        change: Some(Change::Acknowledged),
        ..alert
    };
    check("alert-acknowledged", envelope_v2(&acknowledged.message_id(), "alerter", acknowledged));
    let silence = Silence {
        silence_id: "0193a8f0-0000-7000-8000-00000000000a".into(),
        matchers: vec![Matcher { name: "hardware".into(), op: MatchOp::Regex, value: "cuda|rocm".into() }],
        starts_at: TIME,
        ends_at: TIME + 3_600_000,
        created_by: "ana".into(),
        comment: "GPU maintenance".into(),
        deleted: None,
    };
    check("alerts-silences-state", Silences { time: TIME, silences: vec![silence] });
    check(
        "health-report",
        HealthReport {
            service: "collector".into(),
            instance: "node-1-4242".into(),
            version: "0.1.0".into(),
            started_at: TIME,
            time: TIME + 2000,
            restarts: None,
            counters: [("collector_events_published_total".to_owned(), 4096)].into(),
            gauges: Vec::new(),
        },
    );
    check(
        "health-report-gauges",
        HealthReport {
            service: "archiver".into(),
            instance: "node-1-4343".into(),
            version: "0.1.0".into(),
            started_at: TIME,
            time: TIME + 2000,
            restarts: None,
            counters: [("archiver_messages_archived_total".to_owned(), 81_920)].into(),
            gauges: vec![Gauge {
                name: "archiver_lag_seconds".into(),
                labels: [("stream".to_owned(), "FLEET_EVENTS".to_owned())].into(),
                value: 0.25,
            }],
        },
    );
}

/// A fleet partition's summary (`<prefix>.metrics.partition.<i>`) and its workers' sample,
/// from a few events folded into partition 1 of 2.
#[test]
fn partition_messages_decode() {
    use shared::fleet::{FleetState, Limits, Partition};
    let partition = Partition::new(1, 2).expect("a partition");
    let ours = (0..).map(|n| format!("gpu-{n:02}")).find(|id| partition.owns(id)).expect("a worker");
    let task = (0..).map(|n| format!("t-{n}")).find(|id| partition.owns(id)).expect("a task");
    let capabilities = Capabilities {
        hardware: HardwareKind::Cuda,
        cpu_cores: 16,
        memory_gb: 64.0,
        gpu_model: Some("A100".into()),
        gpu_memory_gb: Some(80.0),
        slots: 2,
        tags: Vec::new(),
    };
    let mut state = FleetState::partitioned(100, partition);
    let events = [
        Event::WorkerRegistered { worker_id: ours.clone(), capabilities },
        Event::TaskQueued {
            task_id: task.clone(),
            model: "vit-large".into(),
            family: ModelFamily::Vision,
            priority: 5,
            depends_on: Vec::new(),
        },
        Event::TaskAssigned { task_id: task.clone(), worker_id: ours.clone(), best_fit: Some(true) },
        Event::TaskStarted { task_id: task.clone(), worker_id: ours.clone() },
        Event::TaskCompleted { task_id: task, worker_id: ours.clone() },
    ];
    let mut finished = Vec::new();
    for (n, event) in events.iter().enumerate() {
        finished.extend(state.apply(TIME + n as i64 * 1500, event));
    }
    let limits =
        Limits { lost_after_ms: 15_000, retire_after_ms: 600_000, overload_cpu_pct: 90.0, max_tasks_tracked: 100 };
    let summary = state.summary(TIME + 8000, 42, &limits, finished);
    check("metrics-partition", envelope_v2("0193a8f0-0000-7000-8000-000000000031", "processor", summary));
    let worker = state.workers[&ours].metrics(&ours, TIME + 8000, &limits);
    let sample = WorkerMetricsBatch {
        time: TIME + 8000,
        complete: true,
        parts: 1,
        workers: vec![worker],
        partition: 1,
        ..Default::default()
    };
    check(
        "metrics-workers-sample-partition",
        envelope_v2(&format!("workers-1-{}-0", TIME + 8000), "processor", sample),
    );
}

#[test]
fn public_ingest_examples_are_accepted() {
    for entry in std::fs::read_dir(golden_dir()).expect("golden dir") {
        let path = entry.expect("entry").path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else { continue };
        if !name.starts_with("ingest-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let items = match value {
            serde_json::Value::Array(items) => items,
            single => vec![single],
        };
        for item in items {
            let message: shared::ingest::IngestMessage =
                serde_json::from_value(item).unwrap_or_else(|err| panic!("{name}: {err}"));
            message.into_envelope(TIME + 1000, "test").unwrap_or_else(|err| panic!("{name}: {err}"));
        }
    }
}

#[test]
fn alert_partition_inputs_decode() {
    let mut inputs = RuleInputs { partition: 1, partitions: 2, second: TIME / 1000, waiting: 7, ..Default::default() };
    inputs.queue_ms.insert("vit-large".into(), Totals { n: 2, sum: 3_400.0 });
    inputs.outcomes.insert("model:vit-large".into(), Totals { n: 3, sum: 2.0 });
    inputs.outcomes.insert("hardware:cuda".into(), Totals { n: 3, sum: 2.0 });
    inputs.fits = Totals { n: 4, sum: 3.0 };
    inputs.completed = 2;
    inputs.latency_ms = Totals { n: 2, sum: 61_000.0 };
    check("metrics-alert-inputs", envelope_v2("alerter-1-of-2-1764000000", "alerter", inputs));
}
