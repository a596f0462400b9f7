//! Alerts people define: rules written in the config over any numeric field of the
//! processor's metrics (`[[alerter.custom]]`), and alerts programs post through the
//! gateway (`POST /api/alerts`, the guide's `_add_alert`).

use super::config::names::{BUILT_IN, CUSTOM};
use super::{Alarms, MetricsKind};
use crate::engine::{Details, Settings};
use anyhow::{Context as _, bail, ensure};
use serde::{Deserialize, Serialize};
use shared::alert::Severity;
use shared::event::Event;
use shared::metrics::{SystemMetrics, WorkerMetrics, WorkerMetricsBatch, WorkerStatus};
use shared::{Envelope, codec};
use std::collections::{BTreeMap, BTreeSet};

/// `[[alerter.custom]]`: `field` of the `scope`'s metrics compared with `threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// The rule's name: a subject token, not a built-in rule's.
    pub name: String,
    pub scope: MetricsKind,
    /// A dotted path into the metrics as JSON: `cpu_pct`, `workers.disconnected`,
    /// `queue_time.p95_ms` (fields: schemas/metrics.md).
    pub field: String,
    pub op: Op,
    pub threshold: f64,
    #[serde(default)]
    pub for_secs: u64,
    #[serde(default)]
    pub keep_firing_secs: u64,
    #[serde(default = "warning")]
    pub severity: Severity,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The summary; `{target}`, `{field}`, `{value}` and `{threshold}` are filled in.
    #[serde(default = "default_message")]
    pub message: String,
}

fn warning() -> Severity {
    Severity::Warning
}

fn default_message() -> String {
    "{field} of {target} is {value} (threshold {threshold})".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "==")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
}

impl Op {
    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::AtLeast => value >= threshold,
            Self::Below => value < threshold,
            Self::AtMost => value <= threshold,
            Self::Equal => value == threshold,
            Self::NotEqual => value != threshold,
        }
    }
}

/// A custom rule that passed [`check`].
pub struct Checked {
    rule: CustomRule,
    path: Vec<String>,
    settings: Settings,
}

/// Checks every custom rule at start: a clear error names the rule and what is wrong.
pub fn check(rules: &[CustomRule]) -> anyhow::Result<Vec<Checked>> {
    let mut names = BTreeSet::new();
    let examples = [
        (MetricsKind::System, serde_json::to_value(SystemMetrics::default())?),
        (MetricsKind::Worker, serde_json::to_value(example_worker())?),
    ];
    let mut checked = Vec::new();
    for rule in rules {
        let what = format!("[[alerter.custom]] {:?}", rule.name);
        shared::subjects::check_token("name", &rule.name).with_context(|| what.clone())?;
        ensure!(!BUILT_IN.contains(&rule.name.as_str()), "{what}: the name of a built-in rule");
        ensure!(names.insert(rule.name.clone()), "{what}: a second rule with this name");
        ensure!(rule.threshold.is_finite(), "{what}: threshold is not a number");
        let path: Vec<String> = rule.field.split('.').map(str::to_owned).collect();
        let example = &examples.iter().find(|(scope, _)| *scope == rule.scope).expect("every scope").1;
        match lookup(example, &path) {
            Some(serde_json::Value::Number(_) | serde_json::Value::Null) => {}
            Some(other) => bail!("{what}: field {:?} is not a number but {other}", rule.field),
            None => bail!("{what}: no field {:?} in the {:?} metrics (see schemas/metrics.md)", rule.field, rule.scope),
        }
        let settings = Settings {
            severity: rule.severity,
            for_ms: rule.for_secs as i64 * 1000,
            keep_firing_ms: rule.keep_firing_secs as i64 * 1000,
            labels: rule.labels.clone(),
        };
        checked.push(Checked { rule: rule.clone(), path, settings });
    }
    Ok(checked)
}

fn lookup<'a>(value: &'a serde_json::Value, path: &[String]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

/// Every field a worker's metrics can carry, for checking paths.
fn example_worker() -> WorkerMetrics {
    WorkerMetrics {
        time: 0,
        worker_id: String::new(),
        status: WorkerStatus::Idle,
        capabilities: None,
        cpu_pct: 0.0,
        gpu_pct: Some(0.0),
        memory_pct: 0.0,
        network_pct: Some(0.0),
        active_tasks: 0,
        queued_tasks: 0,
        completed: 0,
        failed: 0,
        mean_task_ms: 0.0,
        tasks_per_hour: 0.0,
        success_rate: 0.0,
        health_score: 0.0,
        uptime_secs: 0.0,
        last_seen: 0,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    /// Posted alerts by target (`<source>/<title>`): when each lapses.
    posted: BTreeMap<String, i64>,
    lapses: BTreeSet<(i64, String)>,
}

impl Custom {
    /// A program's alert: fires at once with its level; posting it again while it fires
    /// updates it; it lapses `custom_alert_ttl_secs` after the last post unless resolved first.
    pub fn raised(&mut self, alarms: &mut Alarms, time: i64, event: &Event) {
        let Event::AlertRaised { source, level, title, message, metrics } = event else { return };
        let target = format!("{source}/{title}");
        let summary = if message.is_empty() { title.clone() } else { format!("{title}: {message}") };
        let value = metrics.get("value").copied().unwrap_or(0.0);
        let lapse = time + alarms.compiled.custom_alert_ttl_ms;
        if let Some(old) = self.posted.insert(target.clone(), lapse) {
            self.lapses.remove(&(old, target.clone()));
        }
        self.lapses.insert((lapse, target.clone()));
        if alarms.book.is_open(CUSTOM, &target) {
            alarms.book.update(CUSTOM, &target, summary, value, alarms.out);
            return;
        }
        let settings = Settings { severity: *level, for_ms: 0, keep_firing_ms: 0, labels: BTreeMap::new() };
        alarms.book.raise(
            &settings,
            CUSTOM,
            &target,
            time,
            value,
            0.0,
            || {
                let mut details = Details::new(summary).label("source", source.as_str()).label("title", title.as_str());
                details.metrics = metrics.clone();
                details
            },
            alarms.out,
        );
    }

    pub fn advance(&mut self, alarms: &mut Alarms, watermark: i64) {
        while let Some((due, target)) = self.lapses.first().cloned() {
            if due > watermark {
                break;
            }
            self.lapses.pop_first();
            self.posted.remove(&target);
            alarms.clear(CUSTOM, &target, due, 0.0, || format!("{target} lapsed: not posted again"));
        }
    }

    /// Evaluates the custom rules of `kind` over one metrics message.
    pub fn metrics(&mut self, alarms: &mut Alarms, kind: MetricsKind, payload: &[u8]) {
        let compiled = alarms.compiled;
        if !compiled.custom.iter().any(|checked| checked.rule.scope == kind) {
            return;
        }
        let figures: Vec<(String, i64, serde_json::Value)> = match kind {
            MetricsKind::System => match codec::decode_envelope::<SystemMetrics>(payload) {
                Ok(Envelope { time, payload, .. }) => {
                    serde_json::to_value(payload).map(|json| vec![("fleet".to_owned(), time, json)]).unwrap_or_default()
                }
                Err(_) => return,
            },
            MetricsKind::Worker => match codec::decode_envelope::<WorkerMetricsBatch>(payload) {
                Ok(Envelope { time, payload: batch, .. }) => {
                    for worker_id in &batch.retired {
                        for checked in compiled.custom.iter().filter(|checked| checked.rule.scope == kind) {
                            alarms.clear(&checked.rule.name, worker_id, time, 0.0, || {
                                format!("worker {worker_id} retired")
                            });
                        }
                    }
                    batch
                        .workers
                        .into_iter()
                        .filter_map(|worker| Some((worker.worker_id.clone(), time, serde_json::to_value(worker).ok()?)))
                        .collect()
                }
                Err(_) => return,
            },
        };
        for (target, time, json) in &figures {
            for checked in compiled.custom.iter().filter(|checked| checked.rule.scope == kind) {
                let Some(value) = lookup(json, &checked.path).and_then(serde_json::Value::as_f64) else { continue };
                let rule = &checked.rule;
                let summary = || {
                    rule.message
                        .replace("{target}", target)
                        .replace("{field}", &rule.field)
                        .replace("{value}", &format!("{value:.2}"))
                        .replace("{threshold}", &format!("{}", rule.threshold))
                };
                if rule.op.holds(value, rule.threshold) {
                    let details = || {
                        let details = Details::new(summary()).label("field", rule.field.as_str());
                        if kind == MetricsKind::Worker { details.label("worker_id", target.as_str()) } else { details }
                    };
                    alarms.book.raise(
                        &checked.settings,
                        &rule.name,
                        target,
                        *time,
                        value,
                        rule.threshold,
                        details,
                        alarms.out,
                    );
                } else {
                    alarms.clear(&rule.name, target, *time, value, summary);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, scope: MetricsKind, field: &str) -> CustomRule {
        CustomRule {
            name: name.into(),
            scope,
            field: field.into(),
            op: Op::Above,
            threshold: 1.0,
            for_secs: 0,
            keep_firing_secs: 0,
            severity: Severity::Warning,
            labels: BTreeMap::new(),
            message: default_message(),
        }
    }

    #[test]
    fn rules_are_checked_at_start_with_the_reason() {
        let good = [rule("busy", MetricsKind::System, "workers.busy"), rule("gpu_hot", MetricsKind::Worker, "gpu_pct")];
        assert_eq!(check(&good).expect("valid").len(), 2);
        let refused = |rules: &[CustomRule]| format!("{:#}", check(rules).err().expect("refused"));
        assert!(refused(&[rule("x", MetricsKind::System, "workers.nope")]).contains("no field \"workers.nope\""));
        assert!(refused(&[rule("x", MetricsKind::Worker, "status")]).contains("not a number"));
        assert!(refused(&[rule("worker_lost", MetricsKind::System, "workers.busy")]).contains("built-in"));
        assert!(refused(&[good[0].clone(), good[0].clone()]).contains("second rule"));
        assert!(refused(&[rule("a.b", MetricsKind::System, "workers.busy")]).contains("\"a.b\""));
    }

    #[test]
    fn the_toml_form_reads_as_documented() {
        let text = r#"
            name = "fleet_mostly_disconnected"
            scope = "system"
            field = "workers.disconnected"
            op = ">="
            threshold = 10
            labels = { team = "infra" }
        "#;
        use figment::{Figment, providers::Format, providers::Toml};
        let parse =
            |text: &str| Figment::from(Toml::string(text)).extract::<CustomRule>().map_err(|err| err.to_string());
        let rule = parse(text).expect("parses");
        assert_eq!((rule.op, rule.severity, rule.for_secs), (Op::AtLeast, Severity::Warning, 0));
        assert!(parse(&format!("{text}\nthreshhold = 3")).is_err(), "typos are refused");
    }
}
