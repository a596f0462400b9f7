//! Alerts to an Alertmanager through its v2 API (`POST /api/v2/alerts`), as Prometheus
//! sends them: each change at once, and every firing alert again each `resend_secs`, each
//! saying it ends after four of those, so Alertmanager resolves what stops being re-sent.

use super::outbox::{self, Outcome};
use super::{AlertmanagerConfig, http};
use anyhow::Context as _;
use serde::Serialize;
use shared::alert::{Alert, AlertState, FiringAlerts};
use shared::nats::state_keys;
use shared::service::Context;
use shared::{codec, now_ms};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

const CONSUMER: &str = "alerter-sink-alertmanager";
/// Changes arriving this close together go in one request.
const GATHER: Duration = Duration::from_millis(100);
const MAX_BATCH: usize = 1000;
/// How long an alert ended here (resolved or silenced) is kept from the resends.
const ENDED_MEMORY: Duration = Duration::from_secs(30 * 60);

/// One alert as Alertmanager's v2 API takes it.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// `alert` for Alertmanager at `now`. Firing, it ends at `now + 4 resend` unless re-sent;
/// resolved, at its resolution; silenced here, now (people must not be told, and
/// Alertmanager knows nothing of fleetwatch's silences).
pub(crate) fn postable(alert: &Alert, config: &AlertmanagerConfig, now: i64) -> PostableAlert {
    let mut labels: BTreeMap<String, String> =
        alert.labels.iter().map(|(name, value)| (label_name(name), value.clone())).collect();
    labels.insert("alertname".into(), alert.rule.clone());
    // Without them every alert of a rule would be one alert to Alertmanager.
    labels.entry("severity".into()).or_insert_with(|| alert.severity.as_str().into());
    labels.entry("target".into()).or_insert_with(|| alert.target.clone());
    labels.retain(|_, value| !value.is_empty());

    let mut annotations = BTreeMap::from([
        ("summary".to_owned(), alert.summary.clone()),
        ("description".to_owned(), format!("{} (value {}, threshold {})", alert.summary, alert.value, alert.threshold)),
        ("value".to_owned(), alert.value.to_string()),
        ("threshold".to_owned(), alert.threshold.to_string()),
        ("alert_id".to_owned(), alert.alert_id.clone()),
    ]);
    if let Some(mark) = &alert.acknowledged {
        annotations.insert("acknowledged_by".into(), mark.by.clone());
    }
    if let Some(mark) = &alert.resolved_by {
        annotations.insert("resolved_by".into(), mark.by.clone());
    }

    let starts_at = alert.fired_at.unwrap_or(alert.started_at);
    let ends_at = match alert.state {
        AlertState::Resolved => alert.resolved_at.unwrap_or(now),
        _ if !alert.silenced_by.is_empty() => now,
        _ => now + 4 * config.resend_secs as i64 * 1000,
    };
    let base = config.generator_base_url.trim_end_matches('/');
    PostableAlert {
        labels,
        annotations,
        starts_at: rfc3339(starts_at),
        // Alertmanager refuses an end before the start.
        ends_at: rfc3339(ends_at.max(starts_at)),
        generator_url: format!("{base}/alerts/{}", path_segment(&alert.alert_id)),
    }
}

/// Prometheus label names are `[a-zA-Z_][a-zA-Z0-9_]*`.
fn label_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// ms since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn rfc3339(ms: i64) -> String {
    let (days, of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil from days (Howard Hinnant's algorithm), the inverse of shared::time's.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute) = (of_day / 3_600_000, of_day / 60_000 % 60);
    let (second, milli) = (of_day / 1000 % 60, of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// Alerts this sink ended in Alertmanager (resolved or silenced), by id, with the revision:
/// a resend reading a slightly older `alerts.firing` must not bring them back.
#[derive(Clone, Default)]
struct Ended(Arc<Mutex<HashMap<String, (u32, Instant)>>>);

impl Ended {
    fn note(&self, alert: &Alert) {
        let mut ended = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if alert.state == AlertState::Resolved || !alert.silenced_by.is_empty() {
            ended.insert(alert.alert_id.clone(), (alert.revision, Instant::now()));
        } else if ended.get(&alert.alert_id).is_some_and(|(revision, _)| *revision < alert.revision) {
            ended.remove(&alert.alert_id);
        }
        ended.retain(|_, (_, at)| at.elapsed() < ENDED_MEMORY);
    }

    fn covers(&self, alert: &Alert) -> bool {
        let ended = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        ended.get(&alert.alert_id).is_some_and(|(revision, _)| *revision >= alert.revision)
    }
}

/// Follows FLEET_ALERTS and re-sends the firing alerts until `shutdown`.
pub(crate) async fn run(
    context: Context,
    config: AlertmanagerConfig,
    url: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let retry = config.retry();
    let consumer = outbox::open(&context, CONSUMER, retry.ack_wait, MAX_BATCH).await?;
    let bucket = shared::nats::state_bucket(&context.jetstream, &context.subjects, &context.nats).await?;
    let client = http::client(retry.timeout)?;
    let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
    let sink = Sink { context, config, endpoint, client, ended: Ended::default() };
    info!(url = %url, consumer = CONSUMER, "alertmanager sink started");
    tokio::try_join!(sink.follow(consumer, &shutdown), sink.resend(bucket, &shutdown))?;
    Ok(())
}

struct Sink {
    context: Context,
    config: AlertmanagerConfig,
    endpoint: String,
    client: reqwest::Client,
    ended: Ended,
}

impl Sink {
    /// Posts each change as it comes: at least once, else dead-lettered.
    async fn follow(
        &self,
        consumer: async_nats::jetstream::consumer::PullConsumer,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let retry = self.config.retry();
        let counters = &self.context.counters;
        let (sent, failures) = (
            counters.counter("alerter_alertmanager_alerts_sent_total"),
            counters.counter("alerter_alertmanager_failures_total"),
        );
        let dead = counters.counter("alerter_alertmanager_deadlettered_total");
        while let Some(messages) = outbox::next_batch(&consumer, GATHER, MAX_BATCH, shutdown).await? {
            let alerts: Vec<Alert> = messages
                .iter()
                .filter_map(outbox::decode)
                .map(|envelope| envelope.payload)
                .filter(|alert| alert.state != AlertState::Pending)
                .collect();
            if !alerts.is_empty() {
                let now = now_ms();
                let body: Vec<PostableAlert> = alerts.iter().map(|alert| postable(alert, &self.config, now)).collect();
                let body = bytes::Bytes::from(serde_json::to_vec(&body)?);
                let post = || http::send(self.request(body.clone()));
                let outcome = outbox::keep_alive(&messages, retry.ack_wait, async {
                    match outbox::deliver("alertmanager", &retry, &failures, shutdown, post).await {
                        Outcome::GaveUp(reason) => {
                            let subject = messages[0].subject.as_str();
                            if outbox::dead_letter(&self.context, &reason, subject, body.clone(), shutdown).await {
                                dead.inc();
                                Outcome::GaveUp(reason)
                            } else {
                                Outcome::Stopped
                            }
                        }
                        other => other,
                    }
                })
                .await;
                match outcome {
                    Outcome::Stopped => return Ok(()),
                    Outcome::Delivered => sent.add(alerts.len() as u64),
                    Outcome::GaveUp(_) => {}
                }
                for alert in &alerts {
                    self.ended.note(alert);
                }
            }
            outbox::ack_all(&messages.iter().collect::<Vec<_>>()).await;
        }
        Ok(())
    }

    /// Every `resend_secs` (and at once), posts the alerts firing now and not silenced, from
    /// `alerts.firing`. One try each time: the next resend is the retry.
    async fn resend(
        &self,
        bucket: async_nats::jetstream::kv::Store,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let counters = &self.context.counters;
        let (resent, failures) = (
            counters.counter("alerter_alertmanager_resends_total"),
            counters.counter("alerter_alertmanager_failures_total"),
        );
        let mut every = tokio::time::interval(Duration::from_secs(self.config.resend_secs));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = every.tick() => {}
            }
            let firing = match firing(&bucket).await {
                Ok(firing) => firing,
                Err(err) => {
                    warn!(error = format!("{err:#}"), "reading the firing alerts failed; the next resend tries again");
                    continue;
                }
            };
            let now = now_ms();
            let body: Vec<PostableAlert> = firing
                .alerts
                .iter()
                .filter(|alert| alert.state == AlertState::Firing && alert.silenced_by.is_empty())
                .filter(|alert| !self.ended.covers(alert))
                .map(|alert| postable(alert, &self.config, now))
                .collect();
            for chunk in body.chunks(MAX_BATCH) {
                let body = bytes::Bytes::from(serde_json::to_vec(chunk)?);
                match http::send(self.request(body)).await {
                    Ok(()) => resent.add(chunk.len() as u64),
                    Err(http::Failure::Transient(reason) | http::Failure::Permanent(reason)) => {
                        failures.inc();
                        warn!(error = %reason, "re-sending the firing alerts to alertmanager failed");
                        break;
                    }
                }
            }
        }
    }

    fn request(&self, body: bytes::Bytes) -> reqwest::RequestBuilder {
        self.client.post(&self.endpoint).header(reqwest::header::CONTENT_TYPE, "application/json").body(body)
    }
}

async fn firing(bucket: &async_nats::jetstream::kv::Store) -> anyhow::Result<FiringAlerts> {
    let entry = bucket.get(state_keys::ALERTS_FIRING).await.context("reading alerts.firing")?;
    match entry {
        Some(bytes) => codec::decode(&bytes).context("decoding alerts.firing"),
        None => Ok(FiringAlerts::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::alert::{Change, Mark, Severity};

    fn alert() -> Alert {
        Alert {
            alert_id: "worker_overloaded-cpu-003-1000".into(),
            fingerprint: "worker_overloaded/cpu-003".into(),
            rule: "worker_overloaded".into(),
            severity: Severity::Warning,
            state: AlertState::Firing,
            target: "cpu-003".into(),
            labels: BTreeMap::from([("worker_id".into(), "cpu-003".into()), ("team.name".into(), "infra".into())]),
            summary: "worker cpu-003 is overloaded".into(),
            value: 99.0,
            threshold: 90.0,
            metrics: Default::default(),
            started_at: 1_000,
            fired_at: Some(2_000),
            resolved_at: None,
            resolved_by: None,
            acknowledged: None,
            silenced_by: Vec::new(),
            revision: 1,
            change: Some(Change::Fired),
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        for ms in [0, 1_742_041_845_500, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(shared::time::parse_rfc3339(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(1_742_041_845_500), "2025-03-15T12:30:45.500Z");
    }

    #[test]
    fn firing_resolved_and_silenced_alerts_for_alertmanager() {
        let config = AlertmanagerConfig {
            resend_secs: 60,
            generator_base_url: "http://dash:8082/".into(),
            ..Default::default()
        };
        let firing = postable(&alert(), &config, 10_000);
        assert_eq!(firing.labels["alertname"], "worker_overloaded");
        assert_eq!((firing.labels["target"].as_str(), firing.labels["severity"].as_str()), ("cpu-003", "warning"));
        assert_eq!(firing.labels["team_name"], "infra");
        assert_eq!(firing.starts_at, rfc3339(2_000));
        assert_eq!(firing.ends_at, rfc3339(10_000 + 240_000));
        assert_eq!(firing.generator_url, "http://dash:8082/alerts/worker_overloaded-cpu-003-1000");
        assert_eq!(firing.annotations["alert_id"], "worker_overloaded-cpu-003-1000");

        let mut acked = alert();
        acked.acknowledged = Some(Mark { by: "ana".into(), at: 3_000, comment: String::new() });
        assert_eq!(postable(&acked, &config, 10_000).annotations["acknowledged_by"], "ana");

        let mut resolved = alert();
        (resolved.state, resolved.resolved_at) = (AlertState::Resolved, Some(5_000));
        assert_eq!(postable(&resolved, &config, 10_000).ends_at, rfc3339(5_000));

        let mut silenced = alert();
        silenced.silenced_by = vec!["s-1".into()];
        assert_eq!(postable(&silenced, &config, 10_000).ends_at, rfc3339(10_000));
    }

    #[test]
    fn an_ended_alert_is_not_brought_back_by_an_older_resend() {
        let ended = Ended::default();
        let firing = alert();
        let mut silenced = alert();
        (silenced.silenced_by, silenced.revision) = (vec!["s-1".into()], 2);
        ended.note(&silenced);
        assert!(ended.covers(&firing), "the firing revision read before the silence is not re-sent");
        let mut unsilenced = alert();
        unsilenced.revision = 3;
        ended.note(&unsilenced);
        assert!(!ended.covers(&unsilenced), "fires again once the silence is gone");
        let mut resolved = alert();
        (resolved.state, resolved.revision) = (AlertState::Resolved, 4);
        ended.note(&resolved);
        assert!(ended.covers(&unsilenced));
    }
}
