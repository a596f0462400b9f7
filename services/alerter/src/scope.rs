//! Which rules one alerter runs, over which part of the fleet (schemas/alerts.md,
//! "Partitions").
//!
//! - Not partitioned, it runs every rule over the whole fleet.
//! - Partition `i` of `n` runs the rules about one worker or one task ([`PER_TARGET`]) for
//!   the workers and tasks it owns, by the processor's rule (`shared::fleet::Partition`).
//!   Each time its watermark passes a second it publishes what it saw of the fleet-wide
//!   rules' inputs (`RuleInputs`).
//! - The fleet tier runs the fleet-wide rules: those over tasks and anomalies on the merge
//!   of the partitions' inputs, those over the pipeline on its own events (reports, clock
//!   ticks, alert control), and the custom rules.

use crate::rules::config::names::{TASK_STALLED, WORKER_FAILURE_TREND, WORKER_LOST, WORKER_OVERLOADED};
use serde::{Deserialize, Serialize};
use shared::fleet::Partition;
use shared::subjects::Subjects;

/// The rules whose every alert is about one worker or one task.
pub const PER_TARGET: [&str; 4] = [WORKER_OVERLOADED, WORKER_LOST, WORKER_FAILURE_TREND, TASK_STALLED];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Whole,
    Part(Partition),
    Tier {
        partitions: u32,
    },
}

impl Scope {
    /// From `alerter.partitions` and `alerter.partition`.
    pub fn new(partitions: u32, partition: Option<u32>) -> anyhow::Result<Self> {
        let part = |index| Partition::new(index, partitions).map_err(|err| anyhow::anyhow!("alerter: {err}"));
        Ok(match (partitions, partition) {
            (1, None) => Self::Whole,
            (1, Some(_)) => anyhow::bail!("alerter.partition is set but alerter.partitions is 1: set both, or neither"),
            (_, Some(index)) => Self::Part(part(index)?),
            (_, None) => {
                part(0)?;
                Self::Tier { partitions }
            }
        })
    }

    /// Its consumer and snapshot name: `alerter`, `alerter-1-of-4`, `alerter-tier-of-4`.
    pub fn name(&self) -> String {
        match self {
            Self::Whole => "alerter".into(),
            Self::Part(partition) => partition.name("alerter"),
            Self::Tier { partitions } => format!("alerter-tier-of-{partitions}"),
        }
    }

    pub fn runs(&self, rule: &str) -> bool {
        match self {
            Self::Whole => true,
            Self::Part(_) => PER_TARGET.contains(&rule),
            Self::Tier { .. } => !PER_TARGET.contains(&rule),
        }
    }

    /// Whether its rules cover the worker or task with this id.
    pub fn owns(&self, id: &str) -> bool {
        match self {
            Self::Part(partition) => partition.owns(id),
            _ => true,
        }
    }

    /// Which events, by subject, it folds. Every role reads the clock ticks (its watermark
    /// must move when its workers fall silent) and the alert control events (silences and
    /// marks apply to every alert).
    pub fn keep(&self, subjects: &Subjects) -> Box<dyn Fn(&str) -> bool + Send + Sync> {
        let (clock, control) = (subjects.clock_event(), subjects.alert_control_event());
        let fleet =
            [".events.heartbeat.", ".events.worker.", ".events.task."].map(|kind| subjects.prefix().to_owned() + kind);
        match *self {
            Self::Whole => Box::new(|_| true),
            Self::Part(partition) => {
                let subjects = subjects.clone();
                Box::new(move |subject| subject == clock || subject == control || partition.wants(&subjects, subject))
            }
            Self::Tier { .. } => Box::new(move |subject| !fleet.iter().any(|kind| subject.starts_with(kind.as_str()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roles_split_the_rules_and_the_events() {
        let subjects = Subjects::new("fleet").expect("a prefix");
        let (part, tier) = (Scope::new(2, Some(1)).expect("a part"), Scope::new(2, None).expect("the tier"));
        for rule in crate::rules::config::names::BUILT_IN {
            assert!(part.runs(rule) != tier.runs(rule), "{rule} runs in exactly one role");
            assert!(Scope::Whole.runs(rule));
        }
        let other = Partition::new(0, 2).expect("a partition");
        let worker = (0..).map(|n| format!("w-{n}")).find(|id| other.owns(id)).expect("a worker of partition 0");
        let (part_keeps, tier_keeps) = (part.keep(&subjects), tier.keep(&subjects));
        for subject in [subjects.clock_event(), subjects.alert_control_event()] {
            assert!(part_keeps(&subject) && tier_keeps(&subject), "{subject}");
        }
        assert!(!part_keeps(&subjects.heartbeat_event(&worker)), "another partition's heartbeat");
        assert!(!tier_keeps(&subjects.heartbeat_event(&worker)) && !tier_keeps(&subjects.task_event("t-1", None)));
        assert!(tier_keeps(&subjects.service_event("archiver")) && tier_keeps(&subjects.system_event("coordinator")));
        assert_eq!((part.name(), tier.name()), ("alerter-1-of-2".to_owned(), "alerter-tier-of-2".to_owned()));
        assert!(Scope::new(3, None).is_err() && Scope::new(2, Some(2)).is_err() && Scope::new(1, Some(0)).is_err());
    }
}
