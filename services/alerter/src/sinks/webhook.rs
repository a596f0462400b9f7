//! Webhooks for people: alerts of one rule, severity and change that arrive together become
//! one signed JSON notification.

use super::outbox::{self, Outcome};
use super::{WebhookConfig, http};
use async_nats::jetstream::Message;
use serde::Serialize;
use shared::alert::{Alert, AlertState, Change, Severity};
use shared::service::Context;
use shared::telemetry::Counter;
use shared::{Envelope, now_ms};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// The most messages one group gathers.
const MAX_BATCH: usize = 5000;
/// Alerts named in a notification's one-line text.
const WORST: usize = 5;

/// What a notification tells people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Firing,
    Resolved,
}

/// Whether a revision is worth telling people, and as what. Fired, Unsilenced (it fires
/// again for people) and Resolved are; acknowledgements, silences and updated values are not,
/// and nothing a silence matches is.
pub(crate) fn status(alert: &Alert) -> Option<Status> {
    if !alert.silenced_by.is_empty() {
        return None;
    }
    match (alert.change, alert.state) {
        (Some(Change::Fired | Change::Unsilenced), AlertState::Firing) => Some(Status::Firing),
        (Some(Change::Resolved), AlertState::Resolved) => Some(Status::Resolved),
        // Written before alerts said what changed: the state says it.
        (None, AlertState::Firing) => Some(Status::Firing),
        (None, AlertState::Resolved) => Some(Status::Resolved),
        _ => None,
    }
}

/// The JSON body of one notification.
#[derive(Debug, Serialize)]
pub(crate) struct Notification<'a> {
    pub webhook: &'a str,
    /// Also sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    pub status: Status,
    pub rule: &'a str,
    pub severity: Severity,
    /// How many alerts this is about, listed or not.
    pub count: usize,
    /// One line for a person.
    pub text: String,
    /// The highest values first, at most five.
    pub worst: Vec<Worst<'a>>,
    /// The alerts, highest value first, at most `max_alerts`.
    pub alerts: Vec<&'a Alert>,
    /// True when `alerts` lists fewer than `count`.
    pub truncated: bool,
    /// When it was sent, ms since the epoch.
    pub time: i64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Worst<'a> {
    pub alert_id: &'a str,
    pub target: &'a str,
    pub value: f64,
    pub threshold: f64,
}

/// One notification for a group: `envelopes` share rule, severity and status.
pub(crate) fn notification<'a>(
    webhook: &'a str,
    status: Status,
    envelopes: &[&'a Envelope<Alert>],
    max_alerts: usize,
) -> Option<Notification<'a>> {
    let mut alerts: Vec<&Alert> = envelopes.iter().map(|envelope| &envelope.payload).collect();
    alerts.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.target.cmp(&b.target)));
    let first = *alerts.first()?;
    let count = alerts.len();
    let worst: Vec<Worst> = alerts
        .iter()
        .take(WORST)
        .map(|alert| Worst {
            alert_id: &alert.alert_id,
            target: &alert.target,
            value: alert.value,
            threshold: alert.threshold,
        })
        .collect();
    let text = if count == 1 {
        first.summary.clone()
    } else {
        let named: Vec<String> =
            worst.iter().map(|worst| format!("{} ({})", worst.target, figure(worst.value))).collect();
        let which = if status == Status::Firing { "worst" } else { "highest" };
        let status = if status == Status::Firing { "firing" } else { "resolved" };
        format!("{count} alerts {} {status} ({}); {which}: {}", first.rule, first.severity.as_str(), named.join(", "))
    };
    let mut ids: Vec<&str> = envelopes.iter().map(|envelope| envelope.id.as_str()).collect();
    ids.sort_unstable();
    alerts.truncate(max_alerts);
    Some(Notification {
        webhook,
        idempotency_key: idempotency_key(webhook, &ids),
        status,
        rule: &first.rule,
        severity: first.severity,
        count,
        text,
        worst,
        truncated: alerts.len() < count,
        alerts,
        time: now_ms(),
    })
}

/// The same alert revisions to the same webhook give the same key, so a receiver can drop a
/// redelivered notification.
fn idempotency_key(webhook: &str, sorted_ids: &[&str]) -> String {
    http::sha256_hex(format!("{webhook}\n{}", sorted_ids.join("\n")).as_bytes())
}

/// A value as a person reads it: whole above 10, two decimals below.
fn figure(value: f64) -> String {
    if value.abs() >= 10.0 || value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.2}") }
}

/// Delivers this webhook's notifications until `shutdown`.
pub(crate) async fn run(context: Context, config: WebhookConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let retry = config.retry();
    let consumer_name = format!("alerter-sink-webhook-{}", config.name);
    let consumer = outbox::open(&context, &consumer_name, retry.ack_wait, MAX_BATCH).await?;
    let counters = &context.counters;
    let sink = Sink {
        client: http::client(retry.timeout)?,
        retry,
        sent: counters.counter("alerter_notifications_sent_total"),
        failures: counters.counter("alerter_notification_failures_total"),
        dead: counters.counter("alerter_notifications_deadlettered_total"),
        what: format!("webhook {}", config.name),
        context,
        config,
        shutdown,
    };
    info!(webhook = %sink.config.name, url = %sink.config.url, consumer = %consumer_name, "webhook sink started");
    let wait = Duration::from_millis(sink.config.group_wait_ms);
    while let Some(messages) = outbox::next_batch(&consumer, wait, MAX_BATCH, &sink.shutdown).await? {
        if !outbox::keep_alive(&messages, sink.retry.ack_wait, sink.handle(&messages)).await? {
            break;
        }
    }
    Ok(())
}

/// The alert revisions of one notification, with their messages.
type Group<'a> = Vec<(&'a Message, &'a Envelope<Alert>)>;

struct Sink {
    context: Context,
    config: WebhookConfig,
    client: reqwest::Client,
    retry: super::Retry,
    sent: Counter,
    failures: Counter,
    dead: Counter,
    what: String,
    shutdown: CancellationToken,
}

impl Sink {
    /// Sends one notification per group in `messages`; false if shutdown came first.
    async fn handle(&self, messages: &[Message]) -> anyhow::Result<bool> {
        let decoded: Vec<(&Message, Option<Envelope<Alert>>)> =
            messages.iter().map(|message| (message, outbox::decode(message))).collect();
        let mut groups: BTreeMap<(&str, Severity, Status), Group> = BTreeMap::new();
        let mut skipped = Vec::new();
        for (message, envelope) in &decoded {
            match envelope.as_ref().and_then(|envelope| Some((envelope, status(&envelope.payload)?))) {
                Some((envelope, status)) => groups
                    .entry((&envelope.payload.rule, envelope.payload.severity, status))
                    .or_default()
                    .push((message, envelope)),
                None => skipped.push(*message),
            }
        }
        // Revisions nobody is told about are done with at once.
        outbox::ack_all(&skipped).await;
        for ((_, _, status), group) in groups {
            if !self.send(status, &group).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Delivers one group's notification, or dead-letters it; then acks its messages.
    async fn send(&self, status: Status, group: &Group<'_>) -> anyhow::Result<bool> {
        let envelopes: Vec<&Envelope<Alert>> = group.iter().map(|(_, envelope)| *envelope).collect();
        let Some(notification) = notification(&self.config.name, status, &envelopes, self.config.max_alerts) else {
            return Ok(true);
        };
        let body = bytes::Bytes::from(serde_json::to_vec(&notification)?);
        let signature = http::signature(&self.config.secret, &body);
        let request = || {
            self.client
                .post(&self.config.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Fleetwatch-Signature", &signature)
                .header("Idempotency-Key", &notification.idempotency_key)
                .body(body.clone())
        };
        match outbox::deliver(&self.what, &self.retry, &self.failures, &self.shutdown, || http::send(request())).await {
            Outcome::Delivered => {
                let (count, rule) = (notification.count, notification.rule);
                info!(webhook = %self.config.name, count, ?status, rule, "notification sent");
                self.sent.inc();
            }
            Outcome::GaveUp(reason) => {
                let subject = group[0].0.subject.as_str();
                if !outbox::dead_letter(&self.context, &reason, subject, body, &self.shutdown).await {
                    return Ok(false);
                }
                self.dead.inc();
            }
            Outcome::Stopped => return Ok(false),
        }
        let done: Vec<&Message> = group.iter().map(|(message, _)| *message).collect();
        outbox::ack_all(&done).await;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(target: &str, value: f64, change: Change) -> Envelope<Alert> {
        let state = if change == Change::Resolved { AlertState::Resolved } else { AlertState::Firing };
        let alert = Alert {
            alert_id: format!("worker_overloaded-{target}-1000"),
            fingerprint: format!("worker_overloaded/{target}"),
            rule: "worker_overloaded".into(),
            severity: Severity::Warning,
            state,
            target: target.into(),
            labels: Default::default(),
            summary: format!("worker {target} is overloaded: CPU {value:.0}%"),
            value,
            threshold: 90.0,
            metrics: Default::default(),
            started_at: 1000,
            fired_at: Some(1000),
            resolved_at: None,
            resolved_by: None,
            acknowledged: None,
            silenced_by: Vec::new(),
            revision: 1,
            change: Some(change),
        };
        Envelope::with_id(alert.message_id(), 1000, "alerter", alert)
    }

    #[test]
    fn only_fired_unsilenced_and_resolved_revisions_reach_people() {
        assert_eq!(status(&alert("a", 95.0, Change::Fired).payload), Some(Status::Firing));
        assert_eq!(status(&alert("a", 95.0, Change::Unsilenced).payload), Some(Status::Firing));
        assert_eq!(status(&alert("a", 50.0, Change::Resolved).payload), Some(Status::Resolved));
        for change in [Change::Acknowledged, Change::Silenced, Change::Updated] {
            assert_eq!(status(&alert("a", 95.0, change).payload), None, "{change:?}");
        }
        let mut silenced = alert("a", 95.0, Change::Fired);
        silenced.payload.silenced_by = vec!["s-1".into()];
        assert_eq!(status(&silenced.payload), None);
    }

    #[test]
    fn a_group_is_one_notification_worst_first() {
        let envelopes: Vec<_> = (0..8).map(|n| alert(&format!("cpu-{n:03}"), 90.0 + n as f64, Change::Fired)).collect();
        let refs: Vec<&Envelope<Alert>> = envelopes.iter().collect();
        let note = notification("ops", Status::Firing, &refs, 3).expect("a notification");
        assert_eq!((note.count, note.alerts.len(), note.truncated), (8, 3, true));
        assert_eq!(note.worst.len(), 5);
        assert_eq!(note.alerts[0].target, "cpu-007");
        assert!(
            note.text.starts_with("8 alerts worker_overloaded firing (warning); worst: cpu-007 (97), cpu-006 (96)"),
            "{}",
            note.text
        );

        let mut reversed = refs.clone();
        reversed.reverse();
        let again = notification("ops", Status::Firing, &reversed, 3).expect("a notification");
        assert_eq!(again.idempotency_key, note.idempotency_key, "the key does not depend on arrival order");
        assert_eq!(note.idempotency_key.len(), 64);
        let other = notification("pager", Status::Firing, &refs, 3).expect("a notification");
        assert_ne!(other.idempotency_key, note.idempotency_key);
        let fewer = notification("ops", Status::Firing, &refs[1..], 3).expect("a notification");
        assert_ne!(fewer.idempotency_key, note.idempotency_key);

        let one = notification("ops", Status::Firing, &refs[..1], 500).expect("a notification");
        assert_eq!((one.text.as_str(), one.truncated), ("worker cpu-000 is overloaded: CPU 90%", false));
    }
}
