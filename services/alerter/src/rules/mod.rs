//! The rules, folded over events by event time. Each area keeps what its rules need (not
//! the processor's whole fleet state) and tells the [`Book`] when a condition holds or
//! clears; the book runs the lifecycle. Rules that fire on absence (a worker lost, a service
//! silent, a task stalled) and windows that age out run off the watermark.

mod anomaly;
pub mod config;
mod custom;
pub mod merge;
mod pipeline;
mod tasks;
mod window;
mod workers;

use crate::engine::{Book, Details, Settings};
use crate::scope::Scope;
pub use config::Rules;
use config::names;
pub use custom::CustomRule;
use merge::Refused;
use serde::{Deserialize, Serialize};
use shared::alert::{Alert, Mark, RuleInputs, Totals};
use shared::event::Event;
use std::collections::BTreeMap;

/// How far an event may move the watermark past the collector's own clock (the time of
/// its latest service report), ms: an agent whose clock runs ahead cannot make every
/// other worker look lost.
const CLOCK_SLACK_MS: i64 = 5_000;

/// The configuration, compiled once at start.
pub struct Compiled {
    pub rules: Rules,
    pub settings: BTreeMap<&'static str, Settings>,
    pub custom: Vec<custom::Checked>,
    pub lost_after_ms: i64,
    pub retire_after_ms: i64,
    pub custom_alert_ttl_ms: i64,
}

impl Compiled {
    pub fn new(
        rules: Rules,
        custom: &[CustomRule],
        fleet: &shared::config::FleetConfig,
        custom_alert_ttl_secs: u64,
        scope: Scope,
    ) -> anyhow::Result<Self> {
        let mut settings = rules.settings();
        settings.retain(|rule, _| scope.runs(rule));
        let custom = custom::check(custom)?;
        Ok(Self {
            settings,
            rules,
            custom: if scope.runs(names::CUSTOM) { custom } else { Vec::new() },
            lost_after_ms: fleet.lost_after_secs as i64 * 1000,
            retire_after_ms: fleet.retire_after_secs as i64 * 1000,
            custom_alert_ttl_ms: custom_alert_ttl_secs as i64 * 1000,
        })
    }
}

/// Event time as far as the alerter trusts it: the largest event time seen, held to at most
/// [`CLOCK_SLACK_MS`] past the collector's clock once that is known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clock {
    pub watermark: i64,
    trusted: i64,
}

impl Clock {
    fn observe(&mut self, time: i64, trusted: bool) {
        if trusted {
            self.trusted = self.trusted.max(time);
        }
        let bound = if self.trusted == 0 || trusted { time } else { time.min(self.trusted + CLOCK_SLACK_MS) };
        self.watermark = self.watermark.max(bound);
    }
}

/// 1: the first layout kept (December 2026). The fields partitions added (`scope`, `inputs`,
/// `merger`, the foreign workers' hardware) default to the whole fleet's, which is all a
/// snapshot without them can be, and a partition's snapshot has a name of its own.
impl shared::snapshot::Layout for RuleState {
    const LAYOUT: u32 = 1;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub clock: Clock,
    pub book: Book,
    workers: workers::Workers,
    tasks: tasks::Tasks,
    pipeline: pipeline::Pipeline,
    anomaly: anomaly::Anomalies,
    custom: custom::Custom,
    /// The watermark's last whole second: windows are pruned once a second.
    second: i64,
    /// Where the custom metric rules are in FLEET_METRICS.
    pub metrics_seq: u64,
    /// The fleet tier: where it is in the partitions' inputs in FLEET_METRICS.
    #[serde(default)]
    pub inputs_seq: u64,
    /// The rules it runs, over which part of the fleet.
    #[serde(default)]
    pub scope: Scope,
    /// A partition: the fleet-wide rules' inputs seen since its watermark last passed a
    /// second.
    #[serde(default)]
    inputs: Option<RuleInputs>,
    /// A partition: the inputs of the seconds passed, to publish.
    #[serde(skip)]
    ready: Vec<RuleInputs>,
    /// The fleet tier: the partitions' inputs, merged.
    #[serde(default)]
    merger: Option<merge::Merger>,
}

/// What rule code needs to raise and clear alerts.
pub struct Alarms<'a> {
    pub compiled: &'a Compiled,
    pub book: &'a mut Book,
    pub out: &'a mut Vec<Alert>,
}

impl Alarms<'_> {
    #[allow(clippy::too_many_arguments)]
    pub fn raise(
        &mut self,
        rule: &str,
        target: &str,
        time: i64,
        value: f64,
        threshold: f64,
        details: impl FnOnce() -> Details,
    ) {
        if let Some(settings) = self.compiled.settings.get(rule) {
            self.book.raise(settings, rule, target, time, value, threshold, details, self.out);
        }
    }

    pub fn clear(&mut self, rule: &str, target: &str, time: i64, value: f64, summary: impl FnOnce() -> String) {
        self.book.clear(rule, target, time, value, summary, self.out);
    }

    /// Raises or clears by `holds`.
    #[allow(clippy::too_many_arguments)]
    pub fn set(
        &mut self,
        holds: bool,
        rule: &str,
        target: &str,
        time: i64,
        value: f64,
        threshold: f64,
        details: impl FnOnce() -> Details,
        cleared: impl FnOnce() -> String,
    ) {
        if holds {
            self.raise(rule, target, time, value, threshold, details);
        } else {
            self.clear(rule, target, time, value, cleared);
        }
    }
}

impl RuleState {
    /// Tasks remembered: waiting, running, or failed and awaiting a retry.
    pub fn tasks_tracked(&self) -> usize {
        self.tasks.tracked()
    }

    pub fn new(scope: Scope) -> Self {
        let (inputs, merger) = match scope {
            Scope::Whole => (None, None),
            Scope::Part(partition) => {
                let inputs =
                    RuleInputs { partition: partition.index, partitions: partition.count, ..Default::default() };
                (Some(inputs), None)
            }
            Scope::Tier { partitions } => (None, Some(merge::Merger::new(partitions))),
        };
        Self { scope, inputs, merger, ..Self::default() }
    }

    /// A partition's inputs of the seconds its watermark passed, to publish.
    pub fn take_ready(&mut self) -> Vec<RuleInputs> {
        std::mem::take(&mut self.ready)
    }

    /// Folds one event in; the alert changes it causes (directly, or by moving the
    /// watermark past deadlines) go to `out`.
    pub fn apply(&mut self, compiled: &Compiled, time: i64, event: &Event, out: &mut Vec<Alert>) {
        // The collector stamps its clock ticks, service reports and alert control itself.
        self.clock.observe(time, event.is_internal());
        self.close_second();
        let mut alarms = Alarms { compiled, book: &mut self.book, out };
        match event {
            Event::AlertAcknowledged { alert_id, by, comment } => {
                let mark = Mark { by: by.clone(), at: time, comment: comment.clone() };
                alarms.book.acknowledge(alert_id, mark, alarms.out);
            }
            Event::AlertResolved { alert_id, by, comment } => {
                let mark = Mark { by: by.clone(), at: time, comment: comment.clone() };
                alarms.book.resolve_by_hand(alert_id, mark, alarms.out);
            }
            Event::SilenceCreated { silence_id, matchers, starts_at, ends_at, by, comment } => {
                let silence = shared::alert::Silence {
                    silence_id: silence_id.clone(),
                    matchers: matchers.clone(),
                    starts_at: *starts_at,
                    ends_at: *ends_at,
                    created_by: by.clone(),
                    comment: comment.clone(),
                    deleted: None,
                };
                alarms.book.add_silence(silence, self.clock.watermark, alarms.out);
            }
            Event::SilenceDeleted { silence_id, by } => {
                let mark = Mark { by: by.clone(), at: time, comment: String::new() };
                alarms.book.delete_silence(silence_id, mark, alarms.out);
            }
            Event::AlertRaised { .. } if self.scope.runs(names::CUSTOM) => self.custom.raised(&mut alarms, time, event),
            Event::AlertRaised { .. } => {}
            Event::ServiceReport { .. } | Event::ComponentStatus { .. } => {
                self.pipeline.apply(&mut alarms, time, event)
            }
            _ => {
                let own_worker = event.worker_id().is_none_or(|worker_id| self.scope.owns(worker_id));
                let own_task = event.task_id().is_none_or(|task_id| self.scope.owns(task_id));
                match own_worker {
                    true => self.workers.apply(&mut alarms, time, event),
                    false => self.workers.foreign(event),
                }
                let hardware = event.worker_id().and_then(|worker_id| self.workers.hardware(worker_id));
                if !own_task {
                    // Another partition's task that ran on one of this partition's workers.
                    let succeeded = match event {
                        Event::TaskCompleted { .. } => true,
                        Event::TaskFailed { .. } => false,
                        _ => return self.advance(compiled, out),
                    };
                    let worker_id = event.worker_id().map(str::to_owned);
                    let finished = Finished { model: String::new(), hardware, worker_id, succeeded, duration_ms: None };
                    self.workers.finished(&mut alarms, time, &finished);
                    return self.advance(compiled, out);
                }
                if let (Some(inputs), Event::TaskAssigned { best_fit: Some(fit), .. }) = (&mut self.inputs, event) {
                    inputs.fits.add(f64::from(u8::from(*fit)));
                }
                match self.tasks.apply(&mut alarms, time, event, hardware) {
                    Some(Fold::Started { model, queue_ms }) => match &mut self.inputs {
                        Some(inputs) => inputs.queue_ms.entry(model).or_default().add(queue_ms),
                        None => self.anomaly.started(queue_ms),
                    },
                    Some(Fold::Finished(finished)) => {
                        match &mut self.inputs {
                            Some(inputs) => record_finished(inputs, &finished),
                            None => self.anomaly.finished(&finished),
                        }
                        self.workers.finished(&mut alarms, time, &finished);
                    }
                    None => {}
                }
            }
        }
        self.advance(compiled, out);
    }

    /// Runs every deadline up to the watermark.
    fn advance(&mut self, compiled: &Compiled, out: &mut Vec<Alert>) {
        let watermark = self.clock.watermark;
        let mut alarms = Alarms { compiled, book: &mut self.book, out };
        for worker_id in self.workers.advance(&mut alarms, watermark) {
            self.tasks.forget_worker(&mut alarms, &worker_id, watermark);
        }
        self.tasks.advance(&mut alarms, watermark);
        self.pipeline.advance(&mut alarms, watermark);
        self.custom.advance(&mut alarms, watermark);
        if watermark / 1000 > self.second {
            self.second = watermark / 1000;
            self.pipeline.every_second(&mut alarms, watermark);
            // The fleet tier judges the task windows and anomalies as the merged seconds come.
            if self.merger.is_none() {
                self.tasks.every_second(&mut alarms, watermark);
                self.anomaly.every_second(&mut alarms, watermark);
            }
        }
        self.book.advance(watermark, out);
    }

    /// A partition: once the watermark has passed the second its inputs gather, before the
    /// event that moved it is folded, they are ready to publish.
    fn close_second(&mut self) {
        let Some(inputs) = &mut self.inputs else { return };
        let now = self.clock.watermark.div_euclid(1000);
        if now <= inputs.second {
            return;
        }
        let next = RuleInputs {
            partition: inputs.partition,
            partitions: inputs.partitions,
            second: now,
            ..Default::default()
        };
        let mut done = std::mem::replace(inputs, next);
        if done.second > 0 {
            done.waiting = self.tasks.waiting();
            self.ready.push(done);
        }
    }

    /// The fleet tier: a partition's rule inputs, from FLEET_METRICS at `seq`. Every second
    /// that all partitions have now reported is judged.
    pub fn apply_inputs(
        &mut self,
        compiled: &Compiled,
        seq: u64,
        inputs: &RuleInputs,
        out: &mut Vec<Alert>,
    ) -> Result<(), Refused> {
        self.inputs_seq = seq;
        let Some(merger) = &mut self.merger else { return Ok(()) };
        merger.add(inputs)?;
        self.judge(compiled, out);
        Ok(())
    }

    /// The fleet tier: judges the seconds every partition has reported (or that one far
    /// behind has left behind).
    fn judge(&mut self, compiled: &Compiled, out: &mut Vec<Alert>) {
        let Some(merger) = &mut self.merger else { return };
        let (seconds, waiting, judged) = merger.ready();
        let mut alarms = Alarms { compiled, book: &mut self.book, out };
        for (second, merged) in &seconds {
            let time = second * 1000;
            // Buckets that ended before this second close before its figures join.
            self.anomaly.every_second(&mut alarms, time);
            let queued = merged.queue_ms.values().fold(Totals::default(), |mut all, t| {
                all.merge(t);
                all
            });
            self.anomaly.merged(merged.completed, queued, merged.latency_ms);
            self.tasks.merged(&mut alarms, time, merged, waiting);
        }
        if seconds.is_empty() && judged > 0 {
            // Nothing new: the windows still age.
            self.tasks.merged(&mut alarms, judged * 1000, &RuleInputs::default(), waiting);
        }
        self.book.advance(self.clock.watermark, out);
    }

    /// A metrics message for the custom rules, from FLEET_METRICS at `seq`.
    pub fn apply_metrics(
        &mut self,
        compiled: &Compiled,
        seq: u64,
        subject_kind: MetricsKind,
        payload: &[u8],
        out: &mut Vec<Alert>,
    ) {
        self.metrics_seq = seq;
        let mut alarms = Alarms { compiled, book: &mut self.book, out };
        self.custom.metrics(&mut alarms, subject_kind, payload);
        self.book.advance(self.clock.watermark, out);
    }
}

/// A finished task in a partition's inputs: each of its groups' outcome, and whether and
/// how long it ran when it completed.
fn record_finished(inputs: &mut RuleInputs, task: &Finished) {
    for key in tasks::group_keys(task) {
        inputs.outcomes.entry(key).or_default().add(f64::from(u8::from(task.succeeded)));
    }
    if task.succeeded {
        inputs.completed += 1;
        if let Some(duration_ms) = task.duration_ms {
            inputs.latency_ms.add(duration_ms);
        }
    }
}

/// Which metrics message a custom rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsKind {
    /// `<prefix>.metrics.system`: one `SystemMetrics` a tick; target `fleet`.
    System,
    /// `<prefix>.metrics.workers.sample.<partition>.<part>`: every worker's `WorkerMetrics`, every
    /// `sample_secs`; target the worker.
    Worker,
}

/// What a task event told the rules that learn from tasks.
pub enum Fold {
    Started { model: String, queue_ms: f64 },
    Finished(Finished),
}

/// A task that finished, as the rules that learn from finished tasks see it.
pub struct Finished {
    pub model: String,
    pub hardware: Option<shared::event::HardwareKind>,
    pub worker_id: Option<String>,
    pub succeeded: bool,
    /// Time from its (last) start, ms; `None` when it never started.
    pub duration_ms: Option<f64>,
}

#[cfg(test)]
mod partition_tests;
#[cfg(test)]
mod tests;
