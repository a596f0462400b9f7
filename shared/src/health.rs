//! Service health reports: every service publishes its counters on
//! `<prefix>.health.<service>` every few seconds; the gateway serves them at `/metrics`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthReport {
    pub service: String,
    /// Distinguishes several instances of one service.
    pub instance: String,
    pub version: String,
    pub started_at: i64,
    pub time: i64,
    /// Times its supervisor has started it again after it died (`FLEETWATCH_RESTARTS`, set
    /// by `just up`'s deploy/supervise.sh); absent when nothing supervises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// Monotonic counters named `<service>_<thing>_<unit>_total`.
    pub counters: BTreeMap<String, u64>,
    /// Values that go up and down (`archiver_lag_seconds`), each with its labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gauges: Vec<Gauge>,
}

/// A value now, such as how far the archiver is behind one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gauge {
    /// `<service>_<thing>_<unit>`, without the `fleetwatch_` prefix `/metrics` adds.
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// What a reported counter or gauge means, for `/metrics` and for people.
pub struct Description {
    /// The name in health reports.
    pub name: &'static str,
    pub help: &'static str,
    /// The exported value is the reported one times this (to base units: seconds, bytes).
    pub scale: f64,
    /// The exported name, without the `fleetwatch_` prefix, where it differs from `name`.
    pub exported: Option<&'static str>,
}

const fn described(name: &'static str, help: &'static str) -> Description {
    Description { name, help, scale: 1.0, exported: None }
}

/// Every counter and gauge a service reports. A name missing here is still exported, with
/// a generic help text; `cargo test -p fleetwatch-tests` checks none is missing.
pub const DESCRIPTIONS: &[Description] = &[
    described("collector_events_published_total", "Events the collector stored in the events stream."),
    described("collector_ingest_messages_total", "Messages received on the NATS ingest subjects."),
    described("collector_deadletters_total", "Ingest events refused and dead-lettered."),
    described("collector_http_refused_total", "HTTP ingest requests refused with a 4xx."),
    described("collector_coordinator_poll_failures_total", "Coordinator polls that failed."),
    described(
        "collector_coordinator_deadletters_total",
        "Coordinator list items that were not valid, dead-lettered once each.",
    ),
    described("collector_control_requests_total", "Alert control requests received from the gateway."),
    described("collector_control_deadletters_total", "Alert control requests refused and dead-lettered."),
    described(
        "collector_reports_invalid_total",
        "Health reports not forwarded as service_report events (undecodable, or an invalid service or instance).",
    ),
    described("processor_events_applied_total", "Events folded into the fleet state."),
    described("processor_events_undecodable_total", "Events the processor could not decode (dead-lettered)."),
    described("processor_ticks_total", "Metrics ticks published."),
    described("processor_partition_summaries_total", "Partition summaries the fleet tier merged."),
    described(
        "processor_partition_summaries_rejected_total",
        "Partition summaries the fleet tier ignored: undecodable, or of no partition of its count.",
    ),
    Description {
        name: "processor_tick_micros_total",
        help: "Time spent computing and publishing metrics ticks.",
        scale: 1e-6,
        exported: Some("processor_tick_seconds_total"),
    },
    described("processor_tick_failures_total", "Metrics ticks that could not be published."),
    described("processor_workers_retired_total", "Workers retired after a long silence."),
    described("alerter_alerts_published_total", "Alert state changes published."),
    described("alerter_alerts_open", "Alerts open now, pending and firing (a partition's or the fleet tier's own)."),
    described(
        "alerter_tasks_tracked",
        "Tasks the alerter remembers: waiting, running, or failed and awaiting a retry.",
    ),
    described(
        "alerter_rule_inputs_refused_total",
        "Alerter partitions' rule inputs the fleet tier did not merge: late, undecodable, or of another partition count.",
    ),
    described("alerter_events_undecodable_total", "Events the alerter could not decode (dead-lettered)."),
    described("alerter_notifications_sent_total", "Webhook notifications delivered (each one group of alerts)."),
    described("alerter_notification_failures_total", "Webhook delivery attempts that failed (each retry counts)."),
    described("alerter_notifications_deadlettered_total", "Webhook notifications given up on and dead-lettered."),
    described("alerter_alertmanager_alerts_sent_total", "Alert changes posted to Alertmanager."),
    described("alerter_alertmanager_resends_total", "Firing alerts re-sent to Alertmanager so they do not expire."),
    described("alerter_alertmanager_failures_total", "Alertmanager posts that failed (each retry and resend counts)."),
    described(
        "alerter_alertmanager_deadlettered_total",
        "Batches of alert changes Alertmanager never took, dead-lettered.",
    ),
    described("archiver_messages_archived_total", "Messages committed to the archive."),
    described("archiver_commits_total", "Transactions committed to the archive, each a batch of messages."),
    described(
        "archiver_delivery_gaps_total",
        "Deliveries that skipped messages (lost in flight as a server failed over); each is read again.",
    ),
    described("archiver_messages_skipped_total", "Messages not archived because they did not decode."),
    described("archiver_heartbeats_seen_total", "Heartbeats read from the events stream."),
    described("archiver_heartbeats_kept_total", "Heartbeats archived: those that can change a worker's status."),
    described(
        "archiver_late_rows_total",
        "Rows that came after their minute was rolled up (kept raw, not in the roll-up).",
    ),
    described("archiver_rows_pruned_total", "Rows deleted by retention."),
    described("archiver_queries_total", "History queries answered."),
    described("archiver_queries_refused_total", "History queries refused (bad request, unknown id, deadline)."),
    described("archiver_active", "1 while this archiver holds the lease and archives, else 0."),
    described("archiver_lag_messages", "Messages in the stream not yet archived."),
    described(
        "archiver_duckdb_memory_bytes",
        "Memory DuckDB holds (bounded by its memory_limit), measured each roll-up.",
    ),
    described("archiver_lag_seconds", "Age of the oldest message not yet archived (0 when caught up)."),
];

pub fn describe(name: &str) -> Option<&'static Description> {
    DESCRIPTIONS.iter().find(|description| description.name == name)
}
