//! Each built-in rule fires and resolves from events alone; a replay from a snapshot gives
//! the same alerts.

use super::*;
use shared::alert::AlertState;
use shared::event::{Capabilities, ComponentHealth, HardwareKind, ModelFamily};

struct Run {
    compiled: Compiled,
    state: RuleState,
    out: Vec<Alert>,
}

impl Run {
    fn new(rules: Rules) -> Self {
        let fleet = shared::config::FleetConfig::default();
        Self {
            compiled: Compiled::new(rules, &[], &fleet, 3600, Scope::Whole).expect("valid"),
            state: RuleState::default(),
            out: Vec::new(),
        }
    }

    fn at(&mut self, time: i64, event: Event) -> &mut Self {
        self.state.apply(&self.compiled, time, &event, &mut self.out);
        self
    }

    fn last(&self, rule: &str) -> Option<&Alert> {
        self.out.iter().rev().find(|alert| alert.rule == rule)
    }

    fn state_of(&self, rule: &str) -> Option<AlertState> {
        self.last(rule).map(|alert| alert.state)
    }
}

/// Defaults, but alerts resolve as soon as their condition clears, and a few rules fire
/// without waiting.
fn quick() -> Rules {
    let mut rules = Rules::default();
    rules.worker_overloaded.keep_firing_secs = 0;
    rules.worker_lost.keep_firing_secs = 0;
    rules.task_stalled.keep_firing_secs = 0;
    rules.queue_time_high.keep_firing_secs = 0;
    rules.queue_too_long.keep_firing_secs = 0;
    rules.failure_burst.keep_firing_secs = 0;
    rules.service_silent.keep_firing_secs = 0;
    rules.queue_time_high.for_secs = 0;
    rules.queue_too_long.for_secs = 0;
    rules.queue_too_long.tasks = 3;
    rules.low_scheduling_efficiency.for_secs = 0;
    rules.archive_lag.for_secs = 0;
    rules
}

pub(super) fn registered(worker_id: &str) -> Event {
    Event::WorkerRegistered {
        worker_id: worker_id.into(),
        capabilities: Capabilities {
            hardware: HardwareKind::Cuda,
            cpu_cores: 8,
            memory_gb: 32.0,
            gpu_model: None,
            gpu_memory_gb: None,
            slots: 2,
            tags: Vec::new(),
        },
    }
}

pub(super) fn heartbeat(worker_id: &str, cpu_pct: f32, queued_tasks: u32) -> Event {
    Event::Heartbeat {
        worker_id: worker_id.into(),
        cpu_pct: Some(cpu_pct),
        memory_pct: Some(20.0),
        gpu_pct: None,
        gpu_memory_pct: None,
        network_pct: Some(1.0),
        running_tasks: Some(0),
        queued_tasks: Some(queued_tasks),
    }
}

pub(super) fn queued(task_id: &str, model: &str) -> Event {
    Event::TaskQueued {
        task_id: task_id.into(),
        model: model.into(),
        family: ModelFamily::Text,
        priority: 5,
        depends_on: vec![],
    }
}

pub(super) fn started(task_id: &str, worker_id: &str) -> Event {
    Event::TaskStarted { task_id: task_id.into(), worker_id: worker_id.into() }
}

pub(super) fn failed(task_id: &str, worker_id: &str) -> Event {
    Event::TaskFailed { task_id: task_id.into(), worker_id: Some(worker_id.into()), error: "oom".into() }
}

pub(super) fn completed(task_id: &str, worker_id: &str) -> Event {
    Event::TaskCompleted { task_id: task_id.into(), worker_id: worker_id.into() }
}

#[test]
fn overloaded_fires_after_for_with_the_seeds_summary_and_resolves() {
    let mut run = Run::new(quick());
    run.at(0, registered("w3")).at(1_000, heartbeat("w3", 95.0, 5));
    run.at(30_000, heartbeat("w3", 96.0, 5));
    assert_eq!(run.out.len(), 0, "pending until 30 s after the first hot heartbeat");
    run.at(31_000, heartbeat("w3", 95.0, 5));
    let fired = run.last("worker_overloaded").expect("fired");
    assert_eq!(fired.summary, "Worker w3 is overloaded (95% CPU, 5 pending tasks)");
    assert_eq!((fired.labels["hardware"].as_str(), fired.fired_at), ("cuda", Some(31_000)));
    run.at(32_000, heartbeat("w3", 40.0, 0));
    assert_eq!(run.state_of("worker_overloaded"), Some(AlertState::Resolved));
}

#[test]
fn a_heartbeat_that_leaves_figures_out_judges_the_load_by_their_last_values() {
    let mut run = Run::new(quick());
    run.at(0, registered("w3")).at(1_000, heartbeat("w3", 95.0, 0));
    let liveness = |worker_id: &str| Event::Heartbeat {
        worker_id: worker_id.into(),
        cpu_pct: None,
        memory_pct: Some(20.0),
        gpu_pct: None,
        gpu_memory_pct: None,
        network_pct: None,
        running_tasks: Some(1),
        queued_tasks: None,
    };
    run.at(31_000, liveness("w3"));
    let fired = run.last("worker_overloaded").expect("still hot: its CPU was last 95%");
    assert_eq!(fired.summary, "Worker w3 is overloaded (95% CPU)");
    run.at(32_000, heartbeat("w3", 40.0, 0));
    assert_eq!(run.state_of("worker_overloaded"), Some(AlertState::Resolved));
}

#[test]
fn lost_fires_from_the_watermark_and_resolves_on_a_heartbeat() {
    let mut run = Run::new(quick());
    run.at(0, registered("w1")).at(0, registered("w2"));
    run.at(14_000, heartbeat("w2", 10.0, 0));
    assert!(run.last("worker_lost").is_none());
    run.at(15_000, heartbeat("w2", 10.0, 0));
    let lost = run.last("worker_lost").expect("w1 lost once the watermark passes 15 s");
    assert_eq!((lost.target.as_str(), lost.started_at), ("w1", 15_000));
    run.at(16_000, heartbeat("w1", 10.0, 0));
    assert_eq!(run.state_of("worker_lost"), Some(AlertState::Resolved));
}

#[test]
fn a_clock_running_ahead_cannot_make_the_fleet_look_lost() {
    let mut run = Run::new(quick());
    let report = || Event::ServiceReport {
        service: "collector".into(),
        instance: "a".into(),
        started_at: 0,
        dead_letters: 0,
        lag_seconds: None,
    };
    run.at(1_000, report()).at(1_000, registered("w1")).at(1_000, registered("w2"));
    run.at(600_000, heartbeat("w2", 10.0, 0)); // ten minutes ahead
    assert_eq!(run.state.clock.watermark, 1_000 + CLOCK_SLACK_MS);
    assert!(run.last("worker_lost").is_none());
}

#[test]
fn stalled_uses_the_models_usual_duration_on_that_hardware() {
    let mut rules = quick();
    rules.task_stalled.min_secs = 1;
    let mut run = Run::new(rules);
    run.at(0, registered("w1"));
    for i in 0..5 {
        let (id, t) = (format!("t{i}"), i * 20_000);
        run.at(t, queued(&id, "bert")).at(t, started(&id, "w1")).at(t + 10_000, completed(&id, "w1"));
        run.at(t + 10_000, heartbeat("w1", 10.0, 0));
    }
    run.at(100_000, queued("slow", "bert")).at(100_000, started("slow", "w1"));
    run.at(129_000, heartbeat("w1", 10.0, 0));
    assert!(run.last("task_stalled").is_none(), "3 x 10 s not yet passed");
    run.at(130_000, heartbeat("w1", 10.0, 0));
    assert_eq!(run.last("task_stalled").map(|a| (a.target.as_str(), a.threshold)), Some(("slow", 30.0)));
    run.at(131_000, completed("slow", "w1"));
    assert_eq!(run.state_of("task_stalled"), Some(AlertState::Resolved));
}

#[test]
fn queue_rules_fire_per_model_and_fleet_wide() {
    let mut run = Run::new(quick());
    run.at(0, registered("w1"));
    for i in 0..5 {
        run.at(0, queued(&format!("q{i}"), "bert-large"));
    }
    assert_eq!(run.state_of("queue_too_long"), Some(AlertState::Firing));
    for i in 0..5 {
        run.at(45_000, started(&format!("q{i}"), "w1"));
    }
    assert_eq!(run.state_of("queue_too_long"), Some(AlertState::Resolved));
    let slow = run.last("queue_time_high").expect("fired");
    assert_eq!(slow.summary, "Model \"bert-large\" has high queue time (45s avg over 5 tasks)");
    // The window ages out by the watermark: 5 min later nothing is left to average.
    run.at(346_000, heartbeat("w1", 10.0, 0));
    assert_eq!(run.state_of("queue_time_high"), Some(AlertState::Resolved));
}

#[test]
fn failure_bursts_and_success_rates_per_hardware_and_model() {
    let mut rules = quick();
    rules.low_success_rate.min_tasks = 5;
    let mut run = Run::new(rules);
    run.at(0, registered("w1"));
    for i in 0..5 {
        let id = format!("f{i}");
        run.at(i * 1000, queued(&id, "whisper")).at(i * 1000, started(&id, "w1")).at(i * 1000 + 500, failed(&id, "w1"));
    }
    let targets: Vec<&str> = run.out.iter().filter(|a| a.rule == "failure_burst").map(|a| a.target.as_str()).collect();
    assert_eq!(targets, ["model:whisper", "hardware:cuda"]);
    assert!(run.out.iter().any(|a| a.rule == "low_success_rate" && a.target == "hardware:cuda"));
    run.at(70_000, heartbeat("w1", 10.0, 0));
    assert!(
        run.out
            .iter()
            .filter(|a| a.rule == "failure_burst")
            .all(|a| a.revision == 1 || a.state == AlertState::Resolved)
    );
    assert_eq!(run.out.iter().filter(|a| a.rule == "failure_burst" && a.state == AlertState::Resolved).count(), 2);
}

#[test]
fn the_failure_trend_predicts_a_worker_going_bad() {
    let mut run = Run::new(quick());
    run.at(0, registered("w1"));
    for i in 0..30 {
        let id = format!("t{i}");
        let time = i * 1000;
        run.at(time, queued(&id, "bert")).at(time, started(&id, "w1"));
        run.at(time + 500, if i < 22 { completed(&id, "w1") } else { failed(&id, "w1") });
        run.at(time + 500, heartbeat("w1", 10.0, 0));
    }
    let trend = run.last("worker_failure_trend").expect("fires within a few failures");
    assert_eq!((trend.state, trend.target.as_str()), (AlertState::Firing, "w1"));
}

#[test]
fn pipeline_rules_read_service_reports_and_component_status() {
    let mut run = Run::new(quick());
    let report = |service: &str, dead_letters, lag: Option<f64>| Event::ServiceReport {
        service: service.into(),
        instance: "i1".into(),
        started_at: 0,
        dead_letters,
        lag_seconds: lag,
    };
    run.at(0, report("archiver", 0, Some(120.0)));
    assert_eq!(run.state_of("archive_lag"), Some(AlertState::Firing));
    run.at(2_000, report("collector", 0, None)).at(4_000, report("collector", 12, None));
    assert_eq!(run.state_of("dead_letters_rising"), Some(AlertState::Firing));
    run.at(16_000, report("collector", 12, None));
    assert_eq!(run.last("service_silent").map(|a| a.target.as_str()), Some("service:archiver"));
    run.at(17_000, report("archiver", 0, Some(0.5)));
    assert_eq!(run.state_of("service_silent"), Some(AlertState::Resolved));
    let down = Event::ComponentStatus {
        component: "coordinator".into(),
        health: ComponentHealth::Down,
        message: "connection refused".into(),
    };
    run.at(18_000, down);
    assert_eq!(run.state_of("coordinator_unreachable"), Some(AlertState::Firing));
}

#[test]
fn throughput_anomaly_after_warmup() {
    let mut rules = quick();
    rules.anomaly.for_secs = 0;
    rules.anomaly.warmup_buckets = 10;
    let mut run = Run::new(rules);
    run.at(0, registered("w1"));
    let mut n = 0;
    for minute in 0..15i64 {
        let per_minute = if minute < 12 { 10 + minute % 3 } else { 40 };
        for i in 0..per_minute {
            let (id, time) = (format!("t{n}"), minute * 60_000 + i * 1000);
            n += 1;
            run.at(time, queued(&id, "bert")).at(time, started(&id, "w1")).at(time + 100, completed(&id, "w1"));
            run.at(time + 100, heartbeat("w1", 10.0, 0));
        }
    }
    run.at(15 * 60_000 + 1000, heartbeat("w1", 10.0, 0));
    let anomaly = run
        .out
        .iter()
        .find(|a| a.rule == "throughput_anomaly" && a.state == AlertState::Firing)
        .expect("fired on the jump to 40/min");
    assert!(run.out.iter().all(|a| a.rule != "throughput_anomaly" || a.started_at >= 12 * 60_000), "not before");
    assert_eq!(anomaly.value, 40.0);
    assert!(anomaly.summary.contains("above its usual"), "{}", anomaly.summary);
}

#[test]
fn a_replay_from_a_snapshot_gives_the_same_alerts() {
    let events: Vec<(i64, Event)> = (0..200i64)
        .flat_map(|i| {
            let worker = format!("w{}", i % 7);
            let task = format!("t{i}");
            let mut events = vec![
                (i * 700, registered(&worker)),
                (i * 700, heartbeat(&worker, (i * 37 % 100) as f32, (i % 9) as u32)),
            ];
            events.push((i * 700, queued(&task, if i % 2 == 0 { "bert" } else { "vit" })));
            events.push((i * 700 + 100, started(&task, &worker)));
            events.push((i * 700 + 300, if i % 5 == 0 { failed(&task, &worker) } else { completed(&task, &worker) }));
            events
        })
        .collect();
    let mut whole = Run::new(Rules::default());
    for (time, event) in &events {
        whole.at(*time, event.clone());
    }
    let mut first = Run::new(Rules::default());
    let (head, tail) = events.split_at(events.len() / 2);
    for (time, event) in head {
        first.at(*time, event.clone());
    }
    let snapshot = shared::codec::encode(&first.state).expect("encodes");
    let mut second = Run::new(Rules::default());
    second.state = shared::codec::decode(&snapshot).expect("decodes");
    second.out = first.out;
    for (time, event) in tail {
        second.at(*time, event.clone());
    }
    assert!(!whole.out.is_empty());
    assert_eq!(second.out, whole.out);
}

#[test]
fn a_retired_workers_tasks_are_forgotten_not_stalled() {
    let mut rules = quick();
    rules.task_stalled.default_secs = 700;
    let mut run = Run::new(rules);
    run.at(0, registered("w1")).at(0, registered("w2"));
    run.at(0, queued("orphan", "bert")).at(0, started("orphan", "w1"));
    // w2 keeps the watermark moving; w1 is silent past retire_after (600 s) and then the
    // task's 700 s limit.
    for second in (10..=720).step_by(10) {
        run.at(second * 1000, heartbeat("w2", 10.0, 0));
    }
    assert!(run.last("task_stalled").is_none(), "{:?}", run.out.iter().map(|a| &a.rule).collect::<Vec<_>>());
    assert_eq!(run.state_of("worker_lost"), Some(AlertState::Resolved), "lost, then retired");
}
