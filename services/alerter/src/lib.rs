//! The alerter: rules over FLEET_EVENTS (and, for custom rules, FLEET_METRICS); each alert
//! change goes to `<prefix>.alerts.<severity>.<rule>` (stream FLEET_ALERTS) exactly once;
//! the open alerts and the silences are kept under `alerts.firing` and `alerts.silences` in
//! the state bucket. The state machine, the rules and their settings: `schemas/alerts.md`.
//!
//! Alerts are folded from events by event time and carry ids derived from the rule, the
//! target and the start, and a revision per change, so a replay after a crash republishes
//! the same messages, which JetStream drops as duplicates.

mod engine;
mod rules;
pub mod sinks;

use anyhow::Context as _;
use futures::StreamExt;
use rules::{Compiled, CustomRule, MetricsKind, RuleState, Rules};
use serde::{Deserialize, Serialize};
use shared::alert::{Alert, FiringAlerts, Silences};
use shared::feed::EventFeed;
use shared::nats::{Stream, state_keys};
use shared::service::{Context, Service};
use shared::{Envelope, codec, nats, now_ms};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The state bucket is rewritten at most this often, however fast alerts change.
const STATE_EVERY: Duration = Duration::from_millis(200);
/// The open alerts must fit one message (nats-server's default max payload is 1 MiB).
const MAX_STATE_BYTES: usize = 900 * 1024;

/// `[alerter]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlerterConfig {
    /// The guide's `enable_alerts`; `--no-alerts` sets it false: nothing is evaluated or
    /// published. Default true.
    pub enable_alerts: bool,
    pub rules: Rules,
    /// `[[alerter.custom]]`: rules over the processor's metrics.
    pub custom: Vec<CustomRule>,
    /// A posted custom alert resolves this long after it was last posted, s. Default 86400.
    pub custom_alert_ttl_secs: u64,
    /// Alert changes older than this (replayed history) update the state but are not
    /// published, s. Default 600.
    pub max_alert_age_secs: u64,
    /// How often the state is snapshotted, s. Default 10.
    pub snapshot_every_secs: u64,
    /// `[alerter.alertmanager]`: off unless `url` is set.
    pub alertmanager: sinks::AlertmanagerConfig,
    /// `[[alerter.webhooks]]`
    pub webhooks: Vec<sinks::WebhookConfig>,
}

impl Default for AlerterConfig {
    fn default() -> Self {
        Self {
            enable_alerts: true,
            rules: Rules::default(),
            custom: Vec::new(),
            custom_alert_ttl_secs: 86_400,
            max_alert_age_secs: 600,
            snapshot_every_secs: 10,
            alertmanager: Default::default(),
            webhooks: Vec::new(),
        }
    }
}

pub struct Alerter {
    context: Context,
    config: AlerterConfig,
    compiled: Compiled,
    feed: EventFeed,
    state: RuleState,
    bucket: async_nats::jetstream::kv::Store,
}

impl Service for Alerter {
    const NAME: &'static str = "alerter";
    type Config = AlerterConfig;

    async fn connect(context: Context, config: AlerterConfig) -> anyhow::Result<Self> {
        sinks::check(&config.alertmanager, &config.webhooks)?;
        let compiled =
            Compiled::new(config.rules.clone(), &config.custom, &context.fleet, config.custom_alert_ttl_secs)?;
        Stream::Alerts.apply(&context.jetstream, &context.subjects, &context.nats).await?;
        Stream::DeadLetter.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
        let bucket = nats::state_bucket(&context.jetstream, &context.subjects, &context.nats).await?;
        let (feed, state) = EventFeed::open(&context, Self::NAME).await?;
        Ok(Self { context, config, compiled, feed, state, bucket })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Taken apart: the feed is not `Sync`, so nothing may borrow `self` whole across an await.
        let Self { context, config, compiled, mut feed, mut state, bucket } = self;
        if !config.enable_alerts {
            info!("alerts are disabled (enable_alerts = false): nothing is evaluated");
            shutdown.cancelled().await;
            return Ok(());
        }
        let published = context.counters.counter("alerter_alerts_published_total");
        // Each sink in its own task: one that is down never holds up the rules.
        let sinks = tokio::spawn(sinks::run(
            context.clone(),
            config.alertmanager.clone(),
            config.webhooks.clone(),
            shutdown.clone(),
        ));
        let mut metrics = match compiled.custom.is_empty() {
            true => None,
            false => Some(metrics_feed(&context, state.metrics_seq + 1).await?),
        };
        let mut snapshot = tokio::time::interval(Duration::from_secs(config.snapshot_every_secs.max(1)));
        snapshot.tick().await;
        let mut state_tick = tokio::time::interval(STATE_EVERY);
        let mut dirty = true;
        let mut changes: Vec<Alert> = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = snapshot.tick() => feed.checkpoint(&state).await,
                _ = state_tick.tick(), if dirty || state.book.dirty => {
                    context.counters.set_gauge("alerter_alerts_open", &[], state.book.open_count() as f64);
                    match write_state(&bucket, &mut state).await {
                        Ok(()) => (dirty, state.book.dirty) = (false, false),
                        Err(err) => warn!(error = format!("{err:#}"), "open alerts not updated; retrying"),
                    }
                }
                Some(message) = next_metrics(&mut metrics) => {
                    let (seq, kind, payload) = message;
                    state.apply_metrics(&compiled, seq, kind, &payload, &mut changes);
                }
                next = feed.next() => {
                    let Some((_, envelope)) = next else { break };
                    state.apply(&compiled, envelope.time, &envelope.payload, &mut changes);
                }
            }
            if changes.is_empty() {
                continue;
            }
            dirty = true;
            let fresh_after = now_ms() - config.max_alert_age_secs as i64 * 1000;
            let fresh: Vec<Alert> = changes.drain(..).filter(|alert| change_time(alert) >= fresh_after).collect();
            // An alert is never dropped: the feed waits until every change is stored.
            if !shared::service::retry_until_done("publishing alerts", &shutdown, || publish(&context, &fresh)).await {
                // No final snapshot: the restart replays these events and publishes them.
                return Ok(());
            }
            published.add(fresh.len() as u64);
        }
        feed.save_final(&state).await;
        shutdown.cancel();
        let _ = sinks.await;
        Ok(())
    }
}

/// The event time of the change an alert revision records.
fn change_time(alert: &Alert) -> i64 {
    alert
        .resolved_at
        .or(alert.fired_at)
        .unwrap_or(alert.started_at)
        .max(alert.acknowledged.as_ref().map_or(0, |m| m.at))
}

/// Publishes every change, all in flight at once, then waits for every ack.
async fn publish(context: &Context, alerts: &[Alert]) -> anyhow::Result<()> {
    let mut acks = Vec::with_capacity(alerts.len());
    for alert in alerts {
        let envelope = Envelope::with_id(alert.message_id(), change_time(alert), "alerter", alert);
        let subject = context.subjects.alert(alert.severity.as_str(), &alert.rule);
        info!(alert = %alert.alert_id, state = alert.state.as_str(), change = ?alert.change, target = %alert.target, "alert");
        acks.push(nats::publish_pipelined(&context.jetstream, subject, &envelope.id, &envelope).await?);
    }
    for ack in acks {
        ack.await.context("jetstream did not store the alert")?;
    }
    Ok(())
}

async fn write_state(bucket: &async_nats::jetstream::kv::Store, state: &mut RuleState) -> anyhow::Result<()> {
    let time = now_ms();
    let mut firing = FiringAlerts { time, alerts: state.book.open_alerts() };
    let mut encoded = codec::encode(&firing)?;
    if encoded.len() > MAX_STATE_BYTES {
        // Too many to list (a whole rack overloaded): the firing ones, most severe first,
        // as many as fit; each is still on FLEET_ALERTS and in the archive.
        firing.alerts.retain(|alert| alert.state == shared::alert::AlertState::Firing);
        firing.alerts.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.value.total_cmp(&a.value)));
        let keep = firing.alerts.len() * MAX_STATE_BYTES / encoded.len().max(1);
        firing.alerts.truncate(keep.saturating_sub(keep / 10));
        warn!(listed = firing.alerts.len(), "too many open alerts for one state message; listing the worst");
        encoded = codec::encode(&firing)?;
    }
    bucket.put(state_keys::ALERTS_FIRING, encoded).await.context("updating the open alerts")?;
    let silences = Silences { time, silences: state.book.silences(state.clock.watermark) };
    bucket.put(state_keys::ALERTS_SILENCES, codec::encode(&silences)?).await.context("updating the silences")?;
    Ok(())
}

type MetricsFeed = async_nats::jetstream::consumer::pull::Ordered;

/// The system metrics and worker samples in FLEET_METRICS from `start_seq`, for the
/// custom rules.
async fn metrics_feed(context: &Context, start_seq: u64) -> anyhow::Result<MetricsFeed> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    let stream = Stream::Metrics.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
    let deliver_policy = match start_seq {
        0 | 1 => DeliverPolicy::New,
        _ => DeliverPolicy::ByStartSequence { start_sequence: start_seq },
    };
    let filter_subjects = vec![context.subjects.metrics_system(), context.subjects.metrics_worker_samples()];
    let consumer = stream
        .create_consumer(OrderedConfig { deliver_policy, filter_subjects, ..Default::default() })
        .await
        .context("reading FLEET_METRICS for the custom rules")?;
    consumer.messages().await.context("reading FLEET_METRICS")
}

/// The next metrics message; pending forever when there are no custom rules.
async fn next_metrics(feed: &mut Option<MetricsFeed>) -> Option<(u64, MetricsKind, bytes::Bytes)> {
    let Some(messages) = feed else { return std::future::pending().await };
    loop {
        let message = match messages.next().await? {
            Ok(message) => message,
            Err(err) => {
                warn!(error = %err, "reading FLEET_METRICS");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(info) = message.info() else { continue };
        let seq = info.stream_sequence;
        let kind = if message.subject.ends_with(".system") { MetricsKind::System } else { MetricsKind::Worker };
        return Some((seq, kind, message.payload.clone()));
    }
}
