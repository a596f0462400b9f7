//! Service health reports: every service publishes its counters on
//! `<prefix>.health.<service>` every few seconds; the gateway serves them at `/metrics`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub service: String,
    /// Distinguishes several instances of one service.
    pub instance: String,
    pub version: String,
    pub started_at: i64,
    pub time: i64,
    /// Monotonic counters named `<service>_<thing>_<unit>_total`.
    pub counters: BTreeMap<String, u64>,
}
