//! Service reports: every service's health report (`<prefix>.health.<service>`, every 2 s,
//! this collector's own included) becomes a `service_report` event, so the alert rules on
//! the pipeline's own health read events and replay exactly like every other rule.
//!
//! The event time is the collector's clock when the report arrives, not the report's own
//! `time`: the alerter's watermark trusts the collector's clock (schemas/events.md), and a
//! service with a wrong clock must not move it.

use crate::publisher::{Outgoing, Publisher};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shared::event::Event;
use shared::health::HealthReport;
use shared::service::Context;
use shared::{Envelope, codec, now_ms};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// `[collector.reports]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Forward health reports as `service_report` events. Default true.
    pub enabled: bool,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Several collectors share the reports: each is forwarded once.
const QUEUE_GROUP: &str = "fleetwatch-collector";
/// The envelope source of every service report.
const SOURCE: &str = "collector";

pub async fn subscribe(context: &Context) -> anyhow::Result<async_nats::Subscriber> {
    Ok(context.client.queue_subscribe(context.subjects.health_all(), QUEUE_GROUP.into()).await?)
}

/// Whether a counter counts messages lost to the pipeline: dead-lettered (ingest, control)
/// or undecodable (processor, alerter), or skipped by the archiver because they did not
/// decode (a coordinator's odd items are dead-lettered too:
/// `collector_coordinator_deadletters_total`).
fn is_dead_letter_counter(name: &str) -> bool {
    name.ends_with("_deadletters_total")
        || name.ends_with("_undecodable_total")
        || name == "archiver_messages_skipped_total"
}

/// The event a health report becomes.
pub fn event_of(report: &HealthReport) -> Event {
    let dead_letters = report
        .counters
        .iter()
        .filter(|(name, _)| is_dead_letter_counter(name))
        .fold(0u64, |sum, (_, value)| sum.saturating_add(*value));
    let lag_seconds = report
        .gauges
        .iter()
        .filter(|gauge| gauge.name == "archiver_lag_seconds" && gauge.value.is_finite())
        .map(|gauge| gauge.value)
        .reduce(f64::max);
    Event::ServiceReport {
        service: report.service.clone(),
        instance: report.instance.clone(),
        started_at: report.started_at,
        dead_letters,
        lag_seconds,
    }
}

pub async fn run(
    context: Context,
    mut subscriber: async_nats::Subscriber,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let invalid = context.counters.counter("collector_reports_invalid_total");
    loop {
        let message = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            message = subscriber.next() => match message {
                Some(message) => message,
                None => return Ok(()),
            },
        };
        let checked = codec::decode::<HealthReport>(&message.payload)
            .map_err(|err| err.to_string())
            .map(|report| event_of(&report))
            .and_then(|event| shared::ingest::validate(&event).map(|()| event).map_err(|err| err.to_string()));
        let event = match checked {
            Ok(event) => event,
            Err(reason) => {
                invalid.inc();
                debug!(subject = %message.subject, reason = %reason, "health report not forwarded");
                continue;
            }
        };
        let envelope = Envelope::new(now_ms(), SOURCE, event);
        // The next report (2 s later) says the same and more: a lost one is not retried.
        if let Err(err) = publisher.publish(vec![Outgoing::fresh(envelope)]).await {
            warn!(error = format!("{err:#}"), "service report not stored");
        }
    }
    let _ = subscriber.unsubscribe().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::health::Gauge;

    fn report(counters: &[(&str, u64)], gauges: &[(&str, f64)]) -> HealthReport {
        HealthReport {
            service: "archiver".into(),
            instance: "host.example-42".into(),
            version: "0.1.0".into(),
            started_at: 5,
            time: 9,
            restarts: None,
            counters: counters.iter().map(|(name, value)| ((*name).to_owned(), *value)).collect(),
            gauges: gauges
                .iter()
                .map(|(name, value)| Gauge { name: (*name).to_owned(), labels: Default::default(), value: *value })
                .collect(),
        }
    }

    #[test]
    fn dead_letters_add_up_and_lag_is_the_worst_stream() {
        let counters = [
            ("collector_deadletters_total", 2),
            ("processor_events_undecodable_total", 3),
            ("archiver_messages_skipped_total", 4),
            ("collector_coordinator_deadletters_total", 1),
            ("archiver_messages_archived_total", 1000),
        ];
        let gauges = [("archiver_lag_seconds", 1.5), ("archiver_lag_seconds", 7.0), ("archiver_lag_messages", 90.0)];
        let event = event_of(&report(&counters, &gauges));
        assert_eq!(
            event,
            Event::ServiceReport {
                service: "archiver".into(),
                instance: "host.example-42".into(),
                started_at: 5,
                dead_letters: 10,
                lag_seconds: Some(7.0),
            }
        );
        assert!(shared::ingest::validate(&event).is_ok(), "a dotted host name is a valid instance");
        let Event::ServiceReport { lag_seconds, dead_letters, .. } = event_of(&report(&[], &[])) else {
            panic!("a service report")
        };
        assert_eq!((lag_seconds, dead_letters), (None, 0));
    }
}
