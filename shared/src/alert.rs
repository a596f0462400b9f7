//! Alerts, as the alerter publishes them on `<prefix>.alerts.<severity>.<rule>`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
    Acknowledged,
    Silenced,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Acknowledged => "acknowledged",
            Self::Silenced => "silenced",
        }
    }
}

/// One change of an alert's state. The same `alert_id` runs from firing to resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable for one occurrence: rule, target and the time it started.
    pub alert_id: String,
    /// Rule name, a subject token (`worker_overloaded`).
    pub rule: String,
    pub severity: Severity,
    pub state: AlertState,
    /// What it is about: a worker id, a task id, or `fleet`.
    pub target: String,
    /// One line for a person.
    pub summary: String,
    /// The observed value that crossed (or fell back under) the threshold.
    pub value: f64,
    pub threshold: f64,
    /// Event time the condition began, ms since the epoch.
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
}

/// The alerts firing now, kept under `alerts.firing` in the state bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FiringAlerts {
    pub time: i64,
    pub alerts: Vec<Alert>,
}
