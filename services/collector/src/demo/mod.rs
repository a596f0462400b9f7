//! The demo fleet: simulated workers, a load balancer and a coordinator that behave like a
//! real benchmark fleet, deterministic for a seed.
//!
//! Each `step` advances the fleet to a time and returns the events that happened: tasks
//! arrive (with bursts that build queues), the load balancer places them by priority and
//! fit, they run for a time that depends on model and hardware, some fail (more on
//! hardware that suits them badly) and are retried, workers run hot, drop out and return.
//! Some tasks depend on others: they wait until those finish, and are cancelled when one
//! fails for good.

mod catalog;
mod rng;

use catalog::{MODELS, Model, capabilities_of, fragility, hardware_of, mean_run_ms, speed};
use rng::Rng;
use serde::{Deserialize, Serialize};
use shared::event::{ComponentHealth, Event, HardwareKind, ModelFamily, ReportedStatus};
use std::collections::{BTreeSet, VecDeque};

/// `[collector.demo]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Run the demo fleet. Default true.
    pub enabled: bool,
    /// How many workers, 1 to 100,000. Default 24.
    pub workers: usize,
    /// Seed: the same seed and clock give the same fleet. Default 42.
    pub seed: u64,
    /// How often the fleet moves and every worker sends a heartbeat, ms. Default 1000.
    pub tick_ms: u64,
    /// Arriving work as a share of what the fleet can run, outside bursts (bursts double
    /// it for one minute in four, so queues build and drain). Default 0.7.
    pub target_load: f64,
    /// Chance per worker per second that it drops out. Default 0.0003.
    pub disconnect_rate: f64,
    /// Chance per worker per second that it runs hot for a while. Default 0.0015.
    pub overload_rate: f64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            workers: 24,
            seed: 42,
            tick_ms: 1000,
            target_load: 0.7,
            disconnect_rate: 0.0003,
            overload_rate: 0.0015,
        }
    }
}

/// Arrivals double for one minute in this many.
const BURST_EVERY_MINUTES: i64 = 4;
/// Retries after a failure before a task is given up.
const MAX_RETRIES: u32 = 2;
/// How long a task waits for a best-fit worker before the balancer takes any that can run it, ms.
const PATIENCE_MS: i64 = 15_000;
/// Share of new tasks that depend on one or two tasks queued shortly before them.
const DEPENDENT_SHARE: f64 = 0.08;
/// How many of the latest tasks a new one may depend on.
const RECENT_TASKS: usize = 32;
/// Chance that restarting a lost worker works (it is back in 20 to 40 s, else 60 to 90 s).
const RESTART_WORKS: f64 = 0.7;

struct Worker {
    id: String,
    hardware: HardwareKind,
    slots: usize,
    /// Assigned tasks; the first `slots` run, the rest wait on the worker.
    tasks: Vec<Run>,
    base_cpu: f64,
    offline_until: Option<i64>,
    hot_until: Option<i64>,
}

struct Run {
    task: Task,
    started_at: Option<i64>,
    ends_after_ms: i64,
    fails: bool,
}

struct Task {
    id: String,
    model: &'static Model,
    priority: u8,
    attempt: u32,
    queued_at: i64,
    depends_on: Vec<String>,
}

pub struct Fleet {
    config: DemoConfig,
    rng: Rng,
    workers: Vec<Worker>,
    queue: Vec<Task>,
    /// Tasks queued, waiting or running, by id: what a dependent task waits for. (A B-tree:
    /// its memory follows the tasks, where a hash table would keep a burst's size.)
    unfinished: BTreeSet<String>,
    /// The latest tasks queued, for new tasks to depend on.
    recent: VecDeque<String>,
    run_id: String,
    next_task: u64,
    last_step: i64,
    /// When the fleet was made: bursts keep time from here.
    began: i64,
    started: bool,
}

impl Fleet {
    /// `now` is the start time; task ids carry it so that a restarted demo never reuses one.
    pub fn new(config: DemoConfig, now: i64) -> Self {
        let mut rng = Rng::new(config.seed);
        let width = config.workers.to_string().len().max(3);
        let workers = (0..config.workers)
            .map(|index| {
                let hardware = hardware_of(index);
                Worker {
                    id: format!("{}-{index:0width$}", hardware.as_str()),
                    hardware,
                    slots: capabilities_of(index, hardware).slots as usize,
                    tasks: Vec::new(),
                    base_cpu: rng.range(4.0, 14.0),
                    offline_until: None,
                    hot_until: None,
                }
            })
            .collect();
        Self {
            config,
            rng,
            workers,
            queue: Vec::new(),
            unfinished: BTreeSet::new(),
            recent: VecDeque::with_capacity(RECENT_TASKS),
            run_id: format!("{:x}", now / 1000),
            next_task: 0,
            last_step: now,
            began: now,
            started: false,
        }
    }

    pub fn worker_ids(&self) -> impl Iterator<Item = &str> {
        self.workers.iter().map(|worker| worker.id.as_str())
    }

    /// Moves the fleet to `now` and returns what happened, in order, with event times.
    pub fn step(&mut self, now: i64) -> Vec<(i64, Event)> {
        let mut events = Vec::new();
        if !self.started {
            self.started = true;
            self.start(now, &mut events);
        }
        let elapsed_s = ((now - self.last_step).max(0) as f64 / 1000.0).min(10.0);
        self.last_step = now;
        self.arrivals(now, elapsed_s, &mut events);
        self.disruptions(now, elapsed_s, &mut events);
        self.progress(now, &mut events);
        self.balance(now, &mut events);
        self.heartbeats(now, &mut events);
        events
    }

    fn start(&mut self, now: i64, events: &mut Vec<(i64, Event)>) {
        for component in ["coordinator", "load_balancer"] {
            events.push((
                now,
                Event::ComponentStatus {
                    component: component.into(),
                    health: ComponentHealth::Healthy,
                    message: "demo fleet started".into(),
                },
            ));
        }
        for (index, worker) in self.workers.iter().enumerate() {
            events.push((
                now,
                Event::WorkerRegistered {
                    worker_id: worker.id.clone(),
                    capabilities: capabilities_of(index, worker.hardware),
                },
            ));
        }
    }

    /// New tasks: `target_load` of what the online workers can finish per second (each
    /// slot finishes one run of its hardware's mean length at a time), doubled for one
    /// minute in every four (the fleet's second minute, then every fourth), so queues build
    /// and drain, the first time soon after a demo starts. The period is a whole number of
    /// minutes that divides eight: readings at minute 2 and minute 10 of a run see the same
    /// point of the cycle, so a difference between them is growth, not the burst.
    fn arrivals(&mut self, now: i64, elapsed_s: f64, events: &mut Vec<(i64, Event)>) {
        let capacity_per_s: f64 = self
            .workers
            .iter()
            .filter(|worker| worker.offline_until.is_none())
            .map(|worker| worker.slots as f64 * 1000.0 / mean_run_ms(worker.hardware))
            .sum();
        let burst = if ((now - self.began) / 60_000) % BURST_EVERY_MINUTES == 1 { 2.0 } else { 1.0 };
        let lambda = capacity_per_s * self.config.target_load * elapsed_s * burst;
        let total_weight: u32 = MODELS.iter().map(|model| model.weight).sum();
        for _ in 0..self.rng.poisson(lambda) {
            let mut pick = self.rng.below(total_weight as usize) as u32;
            let model = MODELS
                .iter()
                .find(|model| {
                    let hit = pick < model.weight;
                    pick = pick.saturating_sub(model.weight);
                    hit
                })
                .unwrap_or(&MODELS[0]);
            let priority = (self.rng.normal() * 1.8 + 5.0).round().clamp(0.0, 9.0) as u8;
            self.next_task += 1;
            let mut depends_on = Vec::new();
            if !self.recent.is_empty() && self.rng.chance(DEPENDENT_SHARE) {
                for _ in 0..1 + self.rng.below(2) {
                    let dependency = &self.recent[self.rng.below(self.recent.len())];
                    if !depends_on.contains(dependency) {
                        depends_on.push(dependency.clone());
                    }
                }
            }
            let task = Task {
                id: format!("t-{}-{}", self.run_id, self.next_task),
                model,
                priority,
                attempt: 0,
                queued_at: now,
                depends_on: depends_on.clone(),
            };
            events.push((
                now,
                Event::TaskQueued {
                    task_id: task.id.clone(),
                    model: model.name.into(),
                    family: model.family,
                    priority,
                    depends_on,
                },
            ));
            if self.recent.len() == RECENT_TASKS {
                self.recent.pop_front();
            }
            self.recent.push_back(task.id.clone());
            self.unfinished.insert(task.id.clone());
            self.queue.push(task);
        }
    }

    /// Workers that drop out (their tasks fail and are retried) or come back, and workers
    /// that run hot for a while.
    fn disruptions(&mut self, now: i64, elapsed_s: f64, events: &mut Vec<(i64, Event)>) {
        for index in 0..self.workers.len() {
            let worker = &mut self.workers[index];
            if let Some(until) = worker.offline_until {
                if now >= until {
                    worker.offline_until = None;
                    events.push((
                        now,
                        Event::WorkerRegistered {
                            worker_id: worker.id.clone(),
                            capabilities: capabilities_of(index, worker.hardware),
                        },
                    ));
                    events.push((
                        now,
                        Event::RecoveryAction {
                            component: "coordinator".into(),
                            action: "worker_rejoined".into(),
                            target: Some(worker.id.clone()),
                            succeeded: true,
                        },
                    ));
                }
                continue;
            }
            if worker.hot_until.is_some_and(|until| now >= until) {
                worker.hot_until = None;
            }
            if worker.hot_until.is_none() && self.rng.chance(self.config.overload_rate * elapsed_s) {
                worker.hot_until = Some(now + self.rng.range(45_000.0, 120_000.0) as i64);
            }
            if self.rng.chance(self.config.disconnect_rate * elapsed_s) {
                let restarted = self.rng.chance(RESTART_WORKS);
                let away_ms = match restarted {
                    true => self.rng.range(20_000.0, 40_000.0),
                    false => self.rng.range(60_000.0, 90_000.0),
                };
                let worker = &mut self.workers[index];
                worker.offline_until = Some(now + away_ms as i64);
                let lost: Vec<Run> = worker.tasks.drain(..).collect();
                let worker_id = worker.id.clone();
                events.push((
                    now,
                    Event::WorkerStatusChanged {
                        worker_id: worker_id.clone(),
                        status: ReportedStatus::Offline,
                        reason: "heartbeat lost".into(),
                    },
                ));
                for run in lost {
                    self.fail(now, run.task, Some(worker_id.clone()), "worker lost", events);
                }
                events.push((
                    now,
                    Event::RecoveryAction {
                        component: "coordinator".into(),
                        action: "reassign_tasks".into(),
                        target: Some(worker_id.clone()),
                        succeeded: true,
                    },
                ));
                events.push((
                    now,
                    Event::RecoveryAction {
                        component: "coordinator".into(),
                        action: "restart_worker".into(),
                        target: Some(worker_id),
                        succeeded: restarted,
                    },
                ));
            }
        }
    }

    /// Runs end; waiting tasks on a worker start when a slot frees.
    fn progress(&mut self, now: i64, events: &mut Vec<(i64, Event)>) {
        let mut failed = Vec::new();
        for worker in &mut self.workers {
            if worker.offline_until.is_some() {
                continue;
            }
            let mut index = 0;
            while index < worker.tasks.len() {
                let run = &worker.tasks[index];
                let done = run.started_at.is_some_and(|started| now - started >= run.ends_after_ms);
                if !done {
                    index += 1;
                    continue;
                }
                let run = worker.tasks.remove(index);
                if run.fails {
                    failed.push((run.task, worker.id.clone()));
                } else {
                    self.unfinished.remove(&run.task.id);
                    events.push((now, Event::TaskCompleted { task_id: run.task.id, worker_id: worker.id.clone() }));
                }
            }
            for run in worker.tasks.iter_mut().take(worker.slots) {
                if run.started_at.is_none() {
                    run.started_at = Some(now);
                    events
                        .push((now, Event::TaskStarted { task_id: run.task.id.clone(), worker_id: worker.id.clone() }));
                }
            }
        }
        for (task, worker_id) in failed {
            let error = format!("{} benchmark crashed", task.model.name);
            self.fail(now, task, Some(worker_id), &error, events);
        }
    }

    fn fail(
        &mut self,
        now: i64,
        mut task: Task,
        worker_id: Option<String>,
        error: &str,
        events: &mut Vec<(i64, Event)>,
    ) {
        events.push((now, Event::TaskFailed { task_id: task.id.clone(), worker_id, error: error.into() }));
        if task.attempt < MAX_RETRIES {
            task.attempt += 1;
            events.push((now, Event::TaskRetried { task_id: task.id.clone(), attempt: task.attempt }));
            self.queue.push(task);
        } else {
            self.given_up(now, task.id, events);
        }
    }

    /// A task that will not finish: the queued tasks that depend on it (and on those) are
    /// cancelled.
    fn given_up(&mut self, now: i64, task_id: String, events: &mut Vec<(i64, Event)>) {
        let mut gone = vec![task_id];
        while let Some(task_id) = gone.pop() {
            self.unfinished.remove(&task_id);
            let (dependents, others): (Vec<Task>, Vec<Task>) =
                std::mem::take(&mut self.queue).into_iter().partition(|task| task.depends_on.contains(&task_id));
            self.queue = others;
            for dependent in dependents {
                let reason = format!("dependency {task_id} failed");
                events.push((now, Event::TaskCancelled { task_id: dependent.id.clone(), reason }));
                gone.push(dependent.id);
            }
        }
    }

    /// The load balancer: highest priority first, then oldest; each task goes to the least
    /// loaded worker of the best-suited hardware that has room (a slot, or one waiting
    /// place per slot), or after `PATIENCE_MS` to any worker that can run it.
    fn balance(&mut self, now: i64, events: &mut Vec<(i64, Event)>) {
        if self.queue.is_empty() {
            return;
        }
        self.queue.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.queued_at.cmp(&b.queued_at)));
        // The hardware kinds online (at most eight): the best speed for a family is over these.
        let mut online: Vec<HardwareKind> =
            self.workers.iter().filter(|worker| worker.offline_until.is_none()).map(|worker| worker.hardware).collect();
        online.sort();
        online.dedup();
        let best_speed_of = |family: ModelFamily| online.iter().map(|kind| speed(*kind, family)).fold(0.0, f64::max);
        // Per hardware kind, the workers with room, least loaded last (popped first).
        let mut room: Vec<(HardwareKind, Vec<usize>)> =
            HardwareKind::ALL.iter().map(|kind| (*kind, Vec::new())).collect();
        for (index, worker) in self.workers.iter().enumerate() {
            let has_room = worker.offline_until.is_none() && worker.tasks.len() < worker.slots * 2;
            if let Some((_, list)) = room.iter_mut().find(|(kind, _)| *kind == worker.hardware).filter(|_| has_room) {
                list.push(index);
            }
        }
        for (_, list) in &mut room {
            list.sort_by_key(|index| {
                std::cmp::Reverse(self.workers[*index].tasks.len() * 100 / self.workers[*index].slots)
            });
        }
        let queue = std::mem::take(&mut self.queue);
        for task in queue {
            if task.depends_on.iter().any(|dependency| self.unfinished.contains(dependency)) {
                self.queue.push(task);
                continue;
            }
            let family = task.model.family;
            let best_speed = best_speed_of(family);
            let mut kinds: Vec<&mut (HardwareKind, Vec<usize>)> =
                room.iter_mut().filter(|(kind, list)| speed(*kind, family) > 0.0 && !list.is_empty()).collect();
            kinds.sort_by(|a, b| speed(b.0, family).total_cmp(&speed(a.0, family)));
            let patient = now - task.queued_at < PATIENCE_MS;
            let choice = kinds.into_iter().next().filter(|(kind, _)| !patient || speed(*kind, family) >= best_speed);
            let Some((kind, list)) = choice else {
                self.queue.push(task);
                continue;
            };
            let Some(&index) = list.last() else {
                self.queue.push(task);
                continue;
            };
            let hardware = *kind;
            let worker = &mut self.workers[index];
            if worker.tasks.len() + 1 >= worker.slots * 2 {
                list.pop();
            }
            let noise = (self.rng.normal() * 0.25).exp();
            let stall = if self.rng.chance(0.01) { 8.0 } else { 1.0 };
            let ends_after_ms = (task.model.base_ms / speed(hardware, family) * noise * stall) as i64;
            let fails = self.rng.chance(task.model.fail_rate * fragility(hardware, family));
            events.push((
                now,
                Event::TaskAssigned {
                    task_id: task.id.clone(),
                    worker_id: worker.id.clone(),
                    best_fit: Some(speed(hardware, family) >= best_speed),
                },
            ));
            if worker.tasks.len() < worker.slots {
                events.push((now, Event::TaskStarted { task_id: task.id.clone(), worker_id: worker.id.clone() }));
                worker.tasks.push(Run { task, started_at: Some(now), ends_after_ms, fails });
            } else {
                worker.tasks.push(Run { task, started_at: None, ends_after_ms, fails });
            }
        }
    }

    fn heartbeats(&mut self, now: i64, events: &mut Vec<(i64, Event)>) {
        for worker in &self.workers {
            if worker.offline_until.is_some() {
                continue;
            }
            let running = worker.tasks.len().min(worker.slots);
            let waiting = worker.tasks.len() - running;
            let load = running as f64 / worker.slots as f64;
            let jitter = self.rng.normal();
            let cpu = match worker.hot_until {
                Some(_) => 95.0 + jitter.abs() * 1.5,
                None => worker.base_cpu + 70.0 * load + jitter * 4.0,
            };
            let has_gpu = !matches!(worker.hardware, HardwareKind::Cpu);
            events.push((
                now,
                Event::Heartbeat {
                    worker_id: worker.id.clone(),
                    cpu_pct: Some(cpu.clamp(0.0, 100.0) as f32),
                    memory_pct: Some((18.0 + 55.0 * load + jitter * 2.0).clamp(0.0, 100.0) as f32),
                    gpu_pct: has_gpu.then(|| (88.0 * load + jitter * 3.0).clamp(0.0, 100.0) as f32),
                    gpu_memory_pct: has_gpu.then(|| (10.0 + 70.0 * load).clamp(0.0, 100.0) as f32),
                    network_pct: Some((2.0 + 12.0 * load + jitter.abs() * 2.0).clamp(0.0, 100.0) as f32),
                    running_tasks: Some(running as u32),
                    queued_tasks: Some(waiting as u32),
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, seconds: i64) -> Vec<(i64, Event)> {
        let mut fleet = Fleet::new(DemoConfig { seed, ..DemoConfig::default() }, 1_000_000);
        (0..seconds).flat_map(|second| fleet.step(1_000_000 + second * 1000)).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_fleet() {
        assert_eq!(run(7, 120), run(7, 120));
        assert_ne!(run(7, 120), run(8, 120));
    }

    #[test]
    fn every_event_is_valid_and_tasks_move_through_their_lifecycle() {
        let events = run(42, 600);
        for (_, event) in &events {
            shared::ingest::validate(event).expect("demo events are valid");
        }
        let count = |kind: &str| events.iter().filter(|(_, event)| event.kind() == kind).count();
        assert!(count("worker_registered") >= 24, "every worker registers");
        assert!(count("heartbeat") > 24 * 500, "heartbeats every second");
        assert!(count("task_queued") > 100, "tasks arrive");
        assert!(count("task_completed") > 50, "tasks complete");
        assert!(count("task_failed") > 0, "some fail");
        assert!(count("task_retried") > 0, "failures are retried");
        let hot =
            events.iter().any(|(_, event)| matches!(event, Event::Heartbeat { cpu_pct: Some(cpu), .. } if *cpu > 94.0));
        assert!(hot, "some worker runs hot within ten minutes");
    }

    #[test]
    fn dependent_tasks_start_only_after_their_dependencies_finish() {
        let events = run(42, 900);
        let mut finished = std::collections::HashSet::new();
        let mut depends: std::collections::HashMap<&str, &Vec<String>> = Default::default();
        let mut started_dependents = 0;
        for (_, event) in &events {
            match event {
                Event::TaskQueued { task_id, depends_on, .. } if !depends_on.is_empty() => {
                    depends.insert(task_id, depends_on);
                }
                Event::TaskStarted { task_id, .. } => {
                    if let Some(dependencies) = depends.get(task_id.as_str()) {
                        let open: Vec<_> = dependencies.iter().filter(|dep| !finished.contains(dep.as_str())).collect();
                        assert!(open.is_empty(), "{task_id} started before {open:?} finished");
                        started_dependents += 1;
                    }
                }
                Event::TaskCompleted { task_id, .. } => {
                    finished.insert(task_id.as_str());
                }
                Event::TaskCancelled { reason, .. } => assert!(reason.starts_with("dependency "), "{reason}"),
                _ => {}
            }
        }
        assert!(started_dependents > 10, "dependent tasks run: {started_dependents}");
        let restarts: Vec<bool> = events
            .iter()
            .filter_map(|(_, event)| match event {
                Event::RecoveryAction { action, succeeded, .. } if action == "restart_worker" => Some(*succeeded),
                _ => None,
            })
            .collect();
        assert!(restarts.contains(&true), "restarts work: {restarts:?}");
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    /// Queue length at the end of every minute, over `minutes`, for `workers`.
    fn queue_by_minute(workers: usize, minutes: i64) -> Vec<usize> {
        let start = 0;
        let mut fleet = Fleet::new(DemoConfig { workers, ..DemoConfig::default() }, start);
        let mut lengths = Vec::new();
        for second in 0..minutes * 60 {
            fleet.step(start + second * 1000);
            if second % 60 == 59 {
                lengths.push(fleet.queue.len());
            }
        }
        lengths
    }

    #[test]
    fn queues_build_in_bursts_and_drain_after() {
        let lengths = queue_by_minute(200, 10);
        // Minutes 1 and 5 (indexes 1 and 5) are bursts.
        assert!(lengths[1] > 3 * lengths[0].max(5), "the burst builds a queue: {lengths:?}");
        assert!(lengths[4] * 4 < lengths[1], "it drains within three minutes: {lengths:?}");
        assert!(lengths[5] > 3 * lengths[4].max(5), "and builds again: {lengths:?}");
    }
}
