//! Alerts, as the alerter publishes them on `<prefix>.alerts.<severity>.<rule>`, and the
//! silences people set on them. The state machine and every rule: `schemas/alerts.md`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Self::Info, Self::Warning, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Where an alert is in its life. Acknowledged and silenced are marks on an alert
/// ([`Alert::acknowledged`], [`Alert::silenced_by`]), not states: they never hide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds but not yet for the rule's `for` duration. Listed, not published.
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// What a published revision changed, so a sink knows whether to notify people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Pending to firing (or firing from the start).
    Fired,
    Resolved,
    Acknowledged,
    /// A silence now matches it.
    Silenced,
    /// No silence matches it any more, and it still fires.
    Unsilenced,
    /// Its value or summary moved (a custom alert raised again).
    Updated,
}

/// Who did something to an alert, when (event time, ms), and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mark {
    pub by: String,
    pub at: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

/// One alert at one revision. The same `alert_id` runs from pending to resolved; each
/// published change has the next `revision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// Stable for one occurrence: `<rule>-<target>-<started_at>`.
    pub alert_id: String,
    /// `<rule>/<target>`: at most one open alert per fingerprint.
    #[serde(default)]
    pub fingerprint: String,
    /// Rule name, a subject token (`worker_overloaded`).
    pub rule: String,
    pub severity: Severity,
    pub state: AlertState,
    /// What it is about: a worker or task id, `model:<m>`, `hardware:<h>`, `service:<s>`,
    /// `component:<c>`, `fleet`, or a custom alert's source.
    pub target: String,
    /// `rule`, `severity`, `target` and the rule's own (`worker_id`, `model`, ...), plus the
    /// labels configured on the rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// One line for a person.
    pub summary: String,
    /// The observed value that crossed (or fell back under) the threshold.
    pub value: f64,
    pub threshold: f64,
    /// Related figures (a custom alert's `metrics`, an anomaly's band).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// Event time the condition began, ms since the epoch.
    pub started_at: i64,
    /// Event time it went from pending to firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    /// Set when a person resolved it by hand (else the condition cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<Mark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Mark>,
    /// The silences that match it now: its notifications to people are held back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silenced_by: Vec<String>,
    /// 1 for its first published change, then one more per change.
    #[serde(default)]
    pub revision: u32,
    /// What this revision changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

impl Alert {
    /// The envelope id of this revision: a replay republishes the same id, which JetStream
    /// drops as a duplicate.
    pub fn message_id(&self) -> String {
        format!("{}-{}", self.alert_id, self.revision)
    }

    pub fn is_open(&self) -> bool {
        self.state != AlertState::Resolved
    }
}

/// The open alerts (pending and firing), kept under `alerts.firing` in the state bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FiringAlerts {
    pub time: i64,
    pub alerts: Vec<Alert>,
}

/// What one alerter partition saw, over a stretch of event time, of the inputs of the
/// fleet-wide rules: published on `<prefix>.metrics.alerts.partition.<i>` each time its
/// watermark passes a second, and merged by the alerter's fleet tier (schemas/alerts.md,
/// "Partitions"). Every figure but `waiting` counts what happened since the last one, so
/// the partitions' figures add up to what one alerter of the whole fleet counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleInputs {
    pub partition: u32,
    pub partitions: u32,
    /// The last second of event time covered (ms since the epoch / 1000).
    pub second: i64,
    /// Tasks of the partition waiting to start, at the end of it.
    pub waiting: u64,
    /// Per model: the tasks that started, and their queue times, ms.
    pub queue_ms: BTreeMap<String, Totals>,
    /// Per `model:<m>` and `hardware:<h>`: the tasks that finished, and how many succeeded.
    pub outcomes: BTreeMap<String, Totals>,
    /// Assignments that said whether they went to a best-fitted worker, and how many did.
    pub fits: Totals,
    /// Tasks that completed.
    pub completed: u64,
    /// Tasks that completed with a known run time, and their run times, ms.
    pub latency_ms: Totals,
}

/// A count and the sum of the values counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub n: u64,
    pub sum: f64,
}

impl Totals {
    pub fn add(&mut self, value: f64) {
        self.n += 1;
        self.sum += value;
    }

    pub fn merge(&mut self, other: &Totals) {
        self.n += other.n;
        self.sum += other.sum;
    }
}

impl RuleInputs {
    /// Adds another stretch's counts in (the waiting level is the caller's to sum).
    pub fn merge(&mut self, other: &RuleInputs) {
        let merge_map = |into: &mut BTreeMap<String, Totals>, from: &BTreeMap<String, Totals>| {
            for (key, totals) in from {
                into.entry(key.clone()).or_default().merge(totals);
            }
        };
        merge_map(&mut self.queue_ms, &other.queue_ms);
        merge_map(&mut self.outcomes, &other.outcomes);
        self.fits.merge(&other.fits);
        self.completed += other.completed;
        self.latency_ms.merge(&other.latency_ms);
    }
}

/// How a matcher compares a label, as Alertmanager's: equal, not equal, regex (anchored),
/// not regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MatchOp {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "=~")]
    Regex,
    #[serde(rename = "!~")]
    NotRegex,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Matcher {
    pub name: String,
    #[serde(default = "equal")]
    pub op: MatchOp,
    pub value: String,
}

fn equal() -> MatchOp {
    MatchOp::Equal
}

/// A silence: alerts whose labels match every matcher between `starts_at` and `ends_at`
/// (event time) keep their state but send no notification to people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Silence {
    pub silence_id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Set when deleted before its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Mark>,
}

impl Silence {
    pub fn active_at(&self, time: i64) -> bool {
        self.deleted.is_none() && self.starts_at <= time && time < self.ends_at
    }
}

/// The silences not yet over, kept under `alerts.silences` in the state bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Silences {
    pub time: i64,
    pub silences: Vec<Silence>,
}

/// What the collector answers on `<prefix>.control.alerts`: the stored event's id, or why
/// the request was refused (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlReply {
    Stored { id: String },
    Refused { reason: String },
}
