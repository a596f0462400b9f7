//! Alert rules, folded over events by event time, so a replay raises the same alerts.

use serde::{Deserialize, Serialize};
use shared::alert::{Alert, AlertState, Severity};
use shared::event::Event;
use std::collections::BTreeMap;

/// `[alerter.worker_overloaded]`: a worker whose CPU stays high.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverloadRule {
    /// CPU at or above this is hot, percent. Default 90.
    pub cpu_pct: f32,
    /// Hot for this long (by event time) fires the alert, s. Default 30.
    pub for_secs: u64,
}

impl Default for OverloadRule {
    fn default() -> Self {
        Self { cpu_pct: 90.0, for_secs: 30 }
    }
}

/// `[alerter.rules]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    pub worker_overloaded: OverloadRule,
}

pub const WORKER_OVERLOADED: &str = "worker_overloaded";

/// Per worker: since when it has been hot, and the alert firing for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub hot_since: BTreeMap<String, i64>,
    pub firing: BTreeMap<String, Alert>,
}

impl RuleState {
    /// Folds one event in; returns the alert changes it causes.
    pub fn apply(&mut self, rule: &OverloadRule, time: i64, event: &Event) -> Vec<Alert> {
        match event {
            Event::Heartbeat { worker_id, cpu_pct, .. } if *cpu_pct >= rule.cpu_pct => {
                let since = *self.hot_since.entry(worker_id.clone()).or_insert(time);
                let long_enough = time - since >= rule.for_secs as i64 * 1000;
                if !long_enough || self.firing.contains_key(worker_id) {
                    return Vec::new();
                }
                let alert = Alert {
                    alert_id: format!("{WORKER_OVERLOADED}-{worker_id}-{since}"),
                    rule: WORKER_OVERLOADED.into(),
                    severity: Severity::Warning,
                    state: AlertState::Firing,
                    target: worker_id.clone(),
                    summary: format!(
                        "worker {worker_id} is overloaded: CPU {cpu_pct:.0}% for {}s",
                        (time - since) / 1000
                    ),
                    value: f64::from(*cpu_pct),
                    threshold: f64::from(rule.cpu_pct),
                    started_at: since,
                    fingerprint: format!("{WORKER_OVERLOADED}/{worker_id}"),
                    labels: Default::default(),
                    metrics: Default::default(),
                    fired_at: Some(time),
                    resolved_at: None,
                    resolved_by: None,
                    acknowledged: None,
                    silenced_by: Vec::new(),
                    revision: 1,
                    change: Some(shared::alert::Change::Fired),
                };
                self.firing.insert(worker_id.clone(), alert.clone());
                vec![alert]
            }
            Event::Heartbeat { worker_id, cpu_pct, .. } => {
                self.hot_since.remove(worker_id);
                self.resolve(worker_id, time, f64::from(*cpu_pct), "CPU back to")
            }
            Event::WorkerDeregistered { worker_id, .. } => {
                self.hot_since.remove(worker_id);
                self.resolve(worker_id, time, 0.0, "worker left at")
            }
            _ => Vec::new(),
        }
    }

    fn resolve(&mut self, worker_id: &str, time: i64, value: f64, why: &str) -> Vec<Alert> {
        let Some(mut alert) = self.firing.remove(worker_id) else { return Vec::new() };
        alert.state = AlertState::Resolved;
        alert.resolved_at = Some(time);
        alert.revision += 1;
        alert.change = Some(shared::alert::Change::Resolved);
        alert.value = value;
        alert.summary = format!("worker {worker_id} no longer overloaded: {why} {value:.0}%");
        vec![alert]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(cpu_pct: f32) -> Event {
        Event::Heartbeat {
            worker_id: "cpu-001".into(),
            cpu_pct,
            memory_pct: 10.0,
            gpu_pct: None,
            gpu_memory_pct: None,
            network_pct: 1.0,
            running_tasks: 0,
            queued_tasks: 0,
        }
    }

    #[test]
    fn fires_after_the_duration_and_resolves_when_it_drops() {
        let rule = OverloadRule { cpu_pct: 90.0, for_secs: 30 };
        let mut state = RuleState::default();
        assert!(state.apply(&rule, 0, &heartbeat(95.0)).is_empty());
        assert!(state.apply(&rule, 29_000, &heartbeat(96.0)).is_empty());
        let fired = state.apply(&rule, 30_000, &heartbeat(97.0));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].state, AlertState::Firing);
        assert!(state.apply(&rule, 31_000, &heartbeat(97.0)).is_empty(), "fires once");
        let resolved = state.apply(&rule, 32_000, &heartbeat(40.0));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert_eq!(resolved[0].alert_id, fired[0].alert_id);
    }

    #[test]
    fn a_dip_restarts_the_clock() {
        let rule = OverloadRule { cpu_pct: 90.0, for_secs: 30 };
        let mut state = RuleState::default();
        state.apply(&rule, 0, &heartbeat(95.0));
        state.apply(&rule, 20_000, &heartbeat(50.0));
        assert!(state.apply(&rule, 40_000, &heartbeat(95.0)).is_empty());
        assert_eq!(state.apply(&rule, 70_000, &heartbeat(95.0)).len(), 1);
    }
}
