//! Rules about one worker: overloaded, lost, and failing more and more often.

use super::config::names::{WORKER_FAILURE_TREND, WORKER_LOST, WORKER_OVERLOADED};
use super::{Alarms, Finished};
use crate::engine::Details;
use serde::{Deserialize, Serialize};
use shared::event::{Event, HardwareKind, ReportedStatus};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// EWMA weights of the failure trend: recent (about the last 10 tasks) and long-run (about
/// the last 100). At 10,000 demo workers a weight of 0.3 fired on any two failures in a row.
const SHORT_ALPHA: f64 = 0.1;
const LONG_ALPHA: f64 = 0.01;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workers {
    workers: BTreeMap<String, Worker>,
    /// (last heartbeat + lost_after, worker): when each worker counts as lost.
    deadlines: BTreeSet<(i64, String)>,
    /// In a partition: the hardware of the workers other partitions watch, which its own
    /// tasks may run on (their lifecycle events reach every partition).
    #[serde(default)]
    foreign: HashMap<String, HardwareKind>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Worker {
    hardware: Option<HardwareKind>,
    last_seen: i64,
    /// Failure rate EWMAs and the finished tasks they have seen.
    recent_failures: f64,
    usual_failures: f64,
    finished: u32,
    /// The last known load figures: a heartbeat may leave any out, and then it keeps its
    /// last value, as in the fleet state.
    #[serde(default)]
    load: Load,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Load {
    cpu_pct: Option<f32>,
    memory_pct: Option<f32>,
    gpu_pct: Option<f32>,
    queued_tasks: Option<u32>,
}

impl Workers {
    pub fn hardware(&self, worker_id: &str) -> Option<HardwareKind> {
        match self.workers.get(worker_id) {
            Some(worker) => worker.hardware,
            None => self.foreign.get(worker_id).copied(),
        }
    }

    /// Another partition's worker: only its hardware is kept.
    pub fn foreign(&mut self, event: &Event) {
        match event {
            Event::WorkerRegistered { worker_id, capabilities } => {
                self.foreign.insert(worker_id.clone(), capabilities.hardware);
            }
            Event::WorkerDeregistered { worker_id, .. } => {
                self.foreign.remove(worker_id);
            }
            _ => {}
        }
    }

    pub fn apply(&mut self, alarms: &mut Alarms, time: i64, event: &Event) {
        match event {
            Event::WorkerRegistered { worker_id, capabilities } => {
                self.seen(alarms, worker_id, time).hardware = Some(capabilities.hardware);
            }
            Event::Heartbeat { worker_id, cpu_pct, memory_pct, gpu_pct, queued_tasks, .. } => {
                let worker = self.seen(alarms, worker_id, time);
                let known = worker.load;
                worker.load = Load {
                    cpu_pct: cpu_pct.or(known.cpu_pct),
                    memory_pct: memory_pct.or(known.memory_pct),
                    gpu_pct: gpu_pct.or(known.gpu_pct),
                    queued_tasks: queued_tasks.or(known.queued_tasks),
                };
                let (hardware, load) = (worker.hardware, worker.load);
                if load == Load::default() {
                    return; // Liveness only, and no figure known yet to judge the load by.
                }
                let Load { cpu_pct, memory_pct, gpu_pct, queued_tasks } = &load;
                let rule = &alarms.compiled.rules.worker_overloaded;
                let over = |value: Option<f32>, threshold: f32| value.filter(|value| *value >= threshold);
                let mut reasons = Vec::new();
                if let Some(cpu) = over(*cpu_pct, rule.cpu_pct) {
                    reasons.push(format!("{cpu:.0}% CPU"));
                }
                if let Some(gpu) = over(*gpu_pct, rule.gpu_pct) {
                    reasons.push(format!("{gpu:.0}% GPU"));
                }
                if let Some(memory) = over(*memory_pct, rule.memory_pct) {
                    reasons.push(format!("{memory:.0}% memory"));
                }
                if let Some(queued) = queued_tasks.filter(|queued| *queued >= rule.pending_tasks) {
                    reasons.push(format!("{queued} pending tasks"));
                }
                let cpu = cpu_pct.unwrap_or_default();
                let (value, threshold) = (f64::from(cpu), f64::from(rule.cpu_pct));
                if reasons.is_empty() {
                    let queued = queued_tasks.unwrap_or_default();
                    alarms.clear(WORKER_OVERLOADED, worker_id, time, value, || {
                        format!("worker {worker_id} is no longer overloaded ({cpu:.0}% CPU, {queued} pending tasks)")
                    });
                } else {
                    alarms.raise(WORKER_OVERLOADED, worker_id, time, value, threshold, || {
                        worker_details(
                            format!("Worker {worker_id} is overloaded ({})", reasons.join(", ")),
                            worker_id,
                            hardware,
                        )
                    });
                }
            }
            Event::WorkerStatusChanged { worker_id, status: ReportedStatus::Offline, reason } => {
                let hardware = self.hardware(worker_id);
                alarms.raise(WORKER_LOST, worker_id, time, 0.0, 0.0, || {
                    worker_details(format!("Worker {worker_id} is offline: {reason}"), worker_id, hardware)
                });
            }
            Event::WorkerStatusChanged { worker_id, .. } => {
                self.seen(alarms, worker_id, time);
            }
            Event::WorkerDeregistered { worker_id, reason } => {
                if let Some(worker) = self.workers.remove(worker_id) {
                    self.deadlines.remove(&(worker.last_seen + alarms.compiled.lost_after_ms, worker_id.clone()));
                }
                for rule in [WORKER_OVERLOADED, WORKER_LOST, WORKER_FAILURE_TREND] {
                    alarms.clear(rule, worker_id, time, 0.0, || format!("worker {worker_id} left: {reason}"));
                }
            }
            _ => {}
        }
    }

    /// A heartbeat or registration: the worker is alive at `time`.
    fn seen(&mut self, alarms: &mut Alarms, worker_id: &str, time: i64) -> &mut Worker {
        let lost_after = alarms.compiled.lost_after_ms;
        if !self.workers.contains_key(worker_id) {
            self.workers.insert(worker_id.to_owned(), Worker { last_seen: time, ..Worker::default() });
            self.deadlines.insert((time + lost_after, worker_id.to_owned()));
        }
        let worker = self.workers.get_mut(worker_id).expect("inserted above");
        if time > worker.last_seen {
            self.deadlines.remove(&(worker.last_seen + lost_after, worker_id.to_owned()));
            worker.last_seen = time;
            self.deadlines.insert((time + lost_after, worker_id.to_owned()));
        }
        if alarms.book.is_open(WORKER_LOST, worker_id) {
            alarms.clear(WORKER_LOST, worker_id, time, 0.0, || format!("worker {worker_id} is back"));
        }
        worker
    }

    /// Workers whose last heartbeat is `lost_after` behind the watermark are lost; those
    /// silent for `retire_after` are forgotten (their alert resolves: the processor retires
    /// them too, and a retired worker is no longer part of the fleet).
    /// Returns the workers retired.
    pub fn advance(&mut self, alarms: &mut Alarms, watermark: i64) -> Vec<String> {
        let mut retired = Vec::new();
        let lost_after = alarms.compiled.lost_after_ms;
        while let Some((due, worker_id)) = self.deadlines.first().cloned() {
            if due > watermark {
                break;
            }
            self.deadlines.pop_first();
            let Some(worker) = self.workers.get(&worker_id) else { continue };
            let silent_ms = watermark - worker.last_seen;
            if silent_ms >= alarms.compiled.retire_after_ms {
                self.workers.remove(&worker_id);
                alarms.clear(WORKER_LOST, &worker_id, watermark, silent_ms as f64 / 1000.0, || {
                    format!("worker {worker_id} retired after {}s without a heartbeat", silent_ms / 1000)
                });
                retired.push(worker_id);
                continue;
            }
            let hardware = worker.hardware;
            alarms.raise(WORKER_LOST, &worker_id, due, silent_ms as f64 / 1000.0, lost_after as f64 / 1000.0, || {
                worker_details(
                    format!("Worker {worker_id} lost: no heartbeat for {}s", silent_ms / 1000),
                    &worker_id,
                    hardware,
                )
            });
            self.deadlines.insert((worker.last_seen + alarms.compiled.retire_after_ms, worker_id));
        }
        retired
    }

    /// Predictive: the recent failure rate rising past the long-run one is a leading sign
    /// that the worker is going bad.
    pub fn finished(&mut self, alarms: &mut Alarms, time: i64, task: &Finished) {
        let Some(worker_id) = &task.worker_id else { return };
        let Some(worker) = self.workers.get_mut(worker_id) else { return };
        let failed = if task.succeeded { 0.0 } else { 1.0 };
        worker.recent_failures += SHORT_ALPHA * (failed - worker.recent_failures);
        worker.usual_failures += LONG_ALPHA * (failed - worker.usual_failures);
        worker.finished = worker.finished.saturating_add(1);
        let rule = &alarms.compiled.rules.worker_failure_trend;
        let (recent, usual) = (worker.recent_failures, worker.usual_failures);
        let holds = worker.finished >= rule.min_tasks && recent >= rule.min_rate && recent - usual >= rule.rise;
        let hardware = worker.hardware;
        let threshold = usual + rule.rise;
        alarms.set(
            holds,
            WORKER_FAILURE_TREND,
            worker_id,
            time,
            recent,
            threshold,
            || {
                let mut details = worker_details(
                    format!(
                        "Worker {worker_id} is failing more often: {:.0}% of recent tasks against {:.0}% usually",
                        recent * 100.0,
                        usual * 100.0
                    ),
                    worker_id,
                    hardware,
                );
                details.metrics =
                    [("recent_failure_rate".to_owned(), recent), ("usual_failure_rate".to_owned(), usual)].into();
                details
            },
            || format!("worker {worker_id} fails at its usual rate again ({:.0}%)", recent * 100.0),
        );
    }
}

fn worker_details(summary: String, worker_id: &str, hardware: Option<HardwareKind>) -> Details {
    let details = Details::new(summary).label("worker_id", worker_id);
    match hardware {
        Some(hardware) => details.label("hardware", hardware.as_str()),
        None => details,
    }
}
