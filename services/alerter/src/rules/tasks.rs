//! Rules about tasks: stalled, queued too long (per model), too many waiting, failure
//! bursts and low success rates (per hardware kind and per model), and scheduling that
//! misses the best-fitted workers.

use super::config::names::{
    FAILURE_BURST, LOW_SCHEDULING_EFFICIENCY, LOW_SUCCESS_RATE, QUEUE_TIME_HIGH, QUEUE_TOO_LONG, TASK_STALLED,
};
use super::window::Window;
use super::{Alarms, Finished, Fold};
use crate::engine::Details;
use serde::{Deserialize, Serialize};
use shared::alert::RuleInputs;
use shared::event::{Event, HardwareKind};
use std::collections::{BTreeMap, BTreeSet};

/// Weight of each completed run in a model's usual duration on a hardware kind.
const DURATION_ALPHA: f64 = 0.2;
/// A failed task not retried within this long is forgotten, ms.
const RETRY_WAIT_MS: i64 = 10 * 60_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tasks {
    /// A B-tree, not a hash table: its memory follows the tasks it holds. A hash table keeps
    /// its largest size, and the churn of tasks through it (removals leave tombstones) made
    /// it double at a moment set by timing, not by how many tasks it held (`just up 1000`).
    tasks: BTreeMap<String, Task>,
    /// Tasks queued or assigned, not started.
    waiting: u64,
    /// (when it counts as stalled, task).
    stalls: BTreeSet<(i64, String)>,
    /// Usual duration per `<model>/<hardware>`.
    usual: BTreeMap<String, Usual>,
    /// Per model: queue times (ms) of recent starts.
    queue_times: BTreeMap<String, Window>,
    /// Per `hardware:<h>` and `model:<m>`: recent failure times, and recent outcomes.
    failures: BTreeMap<String, Window>,
    outcomes: BTreeMap<String, Window>,
    /// Recent assignments: 1 when it went to a best-fitted worker.
    fits: Window,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Task {
    model: String,
    queued_at: i64,
    started_at: Option<i64>,
    worker_id: Option<String>,
    hardware: Option<HardwareKind>,
    waiting: bool,
    /// Set once it failed: forgotten if not retried in time.
    failed_at: Option<i64>,
    /// When this run counts as stalled (an earlier run's deadline is stale).
    stall_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Usual {
    mean_ms: f64,
    runs: u32,
}

impl Tasks {
    pub fn apply(
        &mut self,
        alarms: &mut Alarms,
        time: i64,
        event: &Event,
        hardware: Option<HardwareKind>,
    ) -> Option<Fold> {
        match event {
            Event::TaskQueued { task_id, model, .. } => {
                let task = Task {
                    model: model.clone(),
                    queued_at: time,
                    started_at: None,
                    worker_id: None,
                    hardware: None,
                    waiting: true,
                    failed_at: None,
                    stall_at: None,
                };
                if let Some(old) = self.tasks.insert(task_id.clone(), task) {
                    self.waiting -= u64::from(old.waiting); // queued twice: counted once
                }
                self.waiting += 1;
                self.check_queue(alarms, time);
            }
            Event::TaskAssigned { task_id, worker_id, best_fit } => {
                if let Some(task) = self.tasks.get_mut(task_id) {
                    task.worker_id = Some(worker_id.clone());
                }
                if let Some(best_fit) = *best_fit {
                    self.fits.push(time, f64::from(u8::from(best_fit)));
                    self.check_fits(alarms, time);
                }
            }
            Event::TaskStarted { task_id, worker_id } => {
                let model = self.tasks.get(task_id)?.model.clone();
                let limit_ms = self.stall_limit_ms(alarms, &model, hardware);
                let task = self.tasks.get_mut(task_id)?;
                task.worker_id = Some(worker_id.clone());
                task.hardware = hardware;
                task.started_at = Some(time);
                task.stall_at = Some(time + limit_ms);
                let queue_ms = (time - task.queued_at).max(0) as f64;
                self.stalls.insert((time + limit_ms, task_id.clone()));
                self.unwait(task_id);
                self.queue_times.entry(model.clone()).or_default().push(time, queue_ms);
                self.check_queue_time(alarms, time, &model);
                self.check_queue(alarms, time);
                return Some(Fold::Started { model, queue_ms });
            }
            Event::TaskCompleted { task_id, .. } => {
                return self.finish(alarms, time, task_id, true).map(Fold::Finished);
            }
            Event::TaskFailed { task_id, .. } => return self.finish(alarms, time, task_id, false).map(Fold::Finished),
            Event::TaskRetried { task_id, .. } => {
                let task = self.tasks.get_mut(task_id)?;
                task.queued_at = time;
                task.started_at = None;
                task.failed_at = None;
                if !task.waiting {
                    task.waiting = true;
                    self.waiting += 1;
                }
                self.check_queue(alarms, time);
            }
            Event::TaskCancelled { task_id, reason } => {
                self.unwait(task_id);
                self.unstall(task_id);
                self.tasks.remove(task_id);
                alarms.clear(TASK_STALLED, task_id, time, 0.0, || format!("task {task_id} cancelled: {reason}"));
                self.check_queue(alarms, time);
            }
            _ => {}
        }
        None
    }

    /// A retired worker's tasks will never finish: they are forgotten, not stalled (after a
    /// restart of a whole fleet, the old run's tasks would otherwise all alert).
    pub fn forget_worker(&mut self, alarms: &mut Alarms, worker_id: &str, time: i64) {
        let orphans: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, task)| task.worker_id.as_deref() == Some(worker_id) && task.started_at.is_some())
            .map(|(task_id, _)| task_id.clone())
            .collect();
        for task_id in orphans {
            self.unstall(&task_id);
            self.tasks.remove(&task_id);
            alarms
                .clear(TASK_STALLED, &task_id, time, 0.0, || format!("task {task_id}: its worker {worker_id} retired"));
        }
    }

    /// A run that ended drops its deadline now, not when it comes due (an hour of finished
    /// tasks' deadlines was most of the snapshot at 10,000 workers).
    fn unstall(&mut self, task_id: &str) {
        if let Some(stall_at) = self.tasks.get_mut(task_id).and_then(|task| task.stall_at.take()) {
            self.stalls.remove(&(stall_at, task_id.to_owned()));
        }
    }

    fn unwait(&mut self, task_id: &str) {
        if let Some(task) = self.tasks.get_mut(task_id).filter(|task| task.waiting) {
            task.waiting = false;
            self.waiting -= 1;
        }
    }

    fn finish(&mut self, alarms: &mut Alarms, time: i64, task_id: &str, succeeded: bool) -> Option<Finished> {
        self.unwait(task_id);
        self.unstall(task_id);
        let task = self.tasks.get_mut(task_id)?;
        let duration_ms = task.started_at.map(|started| (time - started).max(0) as f64);
        let finished = Finished {
            model: task.model.clone(),
            hardware: task.hardware,
            worker_id: task.worker_id.clone(),
            succeeded,
            duration_ms,
        };
        if succeeded {
            self.tasks.remove(task_id);
        } else {
            task.failed_at = Some(time);
            task.started_at = None;
        }
        let outcome = if succeeded { "completed" } else { "failed" };
        alarms.clear(TASK_STALLED, task_id, time, duration_ms.unwrap_or(0.0) / 1000.0, || {
            format!("task {task_id} {outcome}")
        });
        if let (true, Some(hardware), Some(duration_ms)) = (succeeded, finished.hardware, duration_ms) {
            let usual = self.usual.entry(format!("{}/{}", finished.model, hardware.as_str())).or_default();
            usual.mean_ms = match usual.runs {
                0 => duration_ms,
                _ => usual.mean_ms + DURATION_ALPHA * (duration_ms - usual.mean_ms),
            };
            usual.runs = usual.runs.saturating_add(1);
        }
        for key in group_keys(&finished) {
            if !succeeded {
                self.failures.entry(key.clone()).or_default().push(time, 1.0);
                self.check_burst(alarms, time, &key);
            }
            self.outcomes.entry(key.clone()).or_default().push(time, f64::from(u8::from(succeeded)));
            self.check_success(alarms, time, &key);
        }
        self.check_queue(alarms, time);
        Some(finished)
    }

    fn stall_limit_ms(&self, alarms: &Alarms, model: &str, hardware: Option<HardwareKind>) -> i64 {
        let rule = &alarms.compiled.rules.task_stalled;
        let usual = hardware.and_then(|hardware| self.usual.get(&format!("{model}/{}", hardware.as_str())));
        match usual {
            Some(usual) if usual.runs >= rule.min_runs => {
                (rule.factor * usual.mean_ms).max(rule.min_secs as f64 * 1000.0) as i64
            }
            _ => rule.default_secs as i64 * 1000,
        }
    }

    /// Tasks running past their limit are stalled; failed tasks never retried are dropped.
    pub fn advance(&mut self, alarms: &mut Alarms, watermark: i64) {
        while let Some((due, task_id)) = self.stalls.first().cloned() {
            if due > watermark {
                break;
            }
            self.stalls.pop_first();
            let Some(task) = self.tasks.get(&task_id) else { continue };
            let (Some(started), Some(stall_at)) = (task.started_at, task.stall_at) else { continue };
            if stall_at != due {
                continue; // an earlier run's deadline
            }
            let limit_ms = due - started;
            let running_s = (watermark - started) as f64 / 1000.0;
            let (model, worker_id, hardware) = (task.model.clone(), task.worker_id.clone(), task.hardware);
            alarms.raise(TASK_STALLED, &task_id, due, running_s, limit_ms as f64 / 1000.0, || {
                let mut details = Details::new(format!(
                    "Task {task_id} ({model}) has run {running_s:.0}s, past its {}s limit",
                    limit_ms / 1000
                ))
                .label("task_id", task_id.as_str())
                .label("model", model.as_str());
                if let Some(worker_id) = worker_id {
                    details = details.label("worker_id", worker_id);
                }
                if let Some(hardware) = hardware {
                    details = details.label("hardware", hardware.as_str());
                }
                details
            });
        }
    }

    /// The fleet tier: one second's inputs merged from every partition, and the tasks
    /// waiting fleet-wide, go into the windows, and every condition over them is judged.
    pub fn merged(&mut self, alarms: &mut Alarms, time: i64, inputs: &RuleInputs, waiting: u64) {
        for (model, queued) in &inputs.queue_ms {
            self.queue_times.entry(model.clone()).or_default().add(time, queued.n, queued.sum);
        }
        for (key, outcomes) in &inputs.outcomes {
            let failed = outcomes.n.saturating_sub(outcomes.sum.round() as u64);
            if failed > 0 {
                self.failures.entry(key.clone()).or_default().add(time, failed, failed as f64);
            }
            self.outcomes.entry(key.clone()).or_default().add(time, outcomes.n, outcomes.sum);
        }
        self.fits.add(time, inputs.fits.n, inputs.fits.sum);
        self.waiting = waiting;
        self.check_queue(alarms, time);
        self.every_second(alarms, time);
    }

    pub fn waiting(&self) -> u64 {
        self.waiting
    }

    pub fn tracked(&self) -> usize {
        self.tasks.len()
    }

    /// Windows age out by the watermark, so conditions over them are checked again.
    pub fn every_second(&mut self, alarms: &mut Alarms, watermark: i64) {
        self.tasks.retain(|_, task| task.failed_at.is_none_or(|failed| watermark - failed < RETRY_WAIT_MS));
        let models: Vec<String> = self.queue_times.keys().cloned().collect();
        for model in models {
            self.check_queue_time(alarms, watermark, &model);
        }
        let keys: Vec<String> = self.failures.keys().chain(self.outcomes.keys()).cloned().collect();
        for key in keys {
            self.check_burst(alarms, watermark, &key);
            self.check_success(alarms, watermark, &key);
        }
        self.check_fits(alarms, watermark);
    }

    fn check_queue(&mut self, alarms: &mut Alarms, time: i64) {
        let threshold = alarms.compiled.rules.queue_too_long.tasks;
        let waiting = self.waiting;
        alarms.set(
            waiting >= threshold,
            QUEUE_TOO_LONG,
            "fleet",
            time,
            waiting as f64,
            threshold as f64,
            || Details::new(format!("{waiting} tasks are waiting to start (limit {threshold})")),
            || format!("{waiting} tasks waiting"),
        );
    }

    fn check_queue_time(&mut self, alarms: &mut Alarms, time: i64, model: &str) {
        let rule = &alarms.compiled.rules.queue_time_high;
        let (threshold, min_tasks) = (rule.mean_secs, rule.min_tasks);
        let Some(window) = self.queue_times.get_mut(model) else { return };
        window.age(time - rule.window_secs as i64 * 1000);
        let (n, mean_s) = (window.len(), window.mean() / 1000.0);
        if window.is_empty() {
            self.queue_times.remove(model);
        }
        let target = format!("model:{model}");
        alarms.set(
            n >= u64::from(min_tasks) && mean_s >= threshold,
            QUEUE_TIME_HIGH,
            &target,
            time,
            mean_s,
            threshold,
            || {
                Details::new(format!("Model \"{model}\" has high queue time ({mean_s:.0}s avg over {n} tasks)"))
                    .label("model", model)
            },
            || format!("model \"{model}\" queue time back to {mean_s:.0}s avg"),
        );
    }

    fn check_burst(&mut self, alarms: &mut Alarms, time: i64, key: &str) {
        let rule = &alarms.compiled.rules.failure_burst;
        let (threshold, window_secs) = (rule.failures, rule.window_secs);
        let Some(failures) = self.failures.get_mut(key) else { return };
        failures.age(time - window_secs as i64 * 1000);
        let count = failures.len();
        if count == 0 {
            self.failures.remove(key);
        }
        alarms.set(
            count >= u64::from(threshold),
            FAILURE_BURST,
            key,
            time,
            count as f64,
            f64::from(threshold),
            || group_details(format!("{count} tasks failed on {key} within {window_secs}s"), key),
            || format!("failures on {key} back to {count} within {window_secs}s"),
        );
    }

    fn check_success(&mut self, alarms: &mut Alarms, time: i64, key: &str) {
        let rule = &alarms.compiled.rules.low_success_rate;
        let (min_rate, min_tasks) = (rule.min_rate, rule.min_tasks);
        let Some(outcomes) = self.outcomes.get_mut(key) else { return };
        outcomes.age(time - rule.window_secs as i64 * 1000);
        let (rate, n) = (outcomes.mean(), outcomes.len());
        if n == 0 {
            self.outcomes.remove(key);
        }
        alarms.set(
            n >= u64::from(min_tasks) && rate < min_rate,
            LOW_SUCCESS_RATE,
            key,
            time,
            rate,
            min_rate,
            || group_details(format!("Only {:.0}% of the last {n} tasks on {key} succeeded", rate * 100.0), key),
            || format!("{key} succeeds {:.0}% of the time again", rate * 100.0),
        );
    }

    fn check_fits(&mut self, alarms: &mut Alarms, time: i64) {
        let rule = &alarms.compiled.rules.low_scheduling_efficiency;
        let (min_ratio, min_assignments) = (rule.min_ratio, rule.min_assignments);
        self.fits.age(time - rule.window_secs as i64 * 1000);
        let (ratio, n) = (self.fits.mean(), self.fits.len());
        alarms.set(
            n >= u64::from(min_assignments) && ratio < min_ratio,
            LOW_SCHEDULING_EFFICIENCY,
            "fleet",
            time,
            ratio,
            min_ratio,
            || {
                Details::new(format!(
                    "Only {:.0}% of the last {n} assignments went to a best-fitted worker",
                    ratio * 100.0
                ))
            },
            || format!("{:.0}% of assignments go to best-fitted workers", ratio * 100.0),
        );
    }
}

pub fn group_keys(task: &Finished) -> Vec<String> {
    let mut keys = vec![format!("model:{}", task.model)];
    if let Some(hardware) = task.hardware {
        keys.push(format!("hardware:{}", hardware.as_str()));
    }
    keys
}

fn group_details(summary: String, key: &str) -> Details {
    let details = Details::new(summary);
    match key.split_once(':') {
        Some(("model", model)) => details.label("model", model),
        Some(("hardware", hardware)) => details.label("hardware", hardware),
        _ => details,
    }
}
