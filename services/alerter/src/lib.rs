//! The alerter: rules over FLEET_EVENTS, alerts on `<prefix>.alerts.<severity>.<rule>`
//! (stream FLEET_ALERTS) and the firing set under `alerts.firing` in the state bucket.
//!
//! Alerts are folded from events by event time and carry ids derived from the rule, the
//! target and the start, so a replay after a crash republishes the same messages, which
//! JetStream drops as duplicates.

mod rules;

use anyhow::Context as _;
use rules::{RuleState, Rules};
use serde::{Deserialize, Serialize};
use shared::alert::{Alert, FiringAlerts};
use shared::feed::EventFeed;
use shared::nats::{Stream, state_keys};
use shared::service::{Context, Service};
use shared::{Envelope, codec, nats, now_ms};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[alerter]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlerterConfig {
    pub rules: Rules,
    /// Alert changes older than this (replayed history) update the state but are not
    /// published, s. Default 600.
    pub max_alert_age_secs: u64,
    /// How often the state is snapshotted, s. Default 10.
    pub snapshot_every_secs: u64,
}

impl Default for AlerterConfig {
    fn default() -> Self {
        Self { rules: Rules::default(), max_alert_age_secs: 600, snapshot_every_secs: 10 }
    }
}

pub struct Alerter {
    context: Context,
    config: AlerterConfig,
    feed: EventFeed,
    state: RuleState,
    bucket: async_nats::jetstream::kv::Store,
}

impl Service for Alerter {
    const NAME: &'static str = "alerter";
    type Config = AlerterConfig;

    async fn connect(context: Context, config: AlerterConfig) -> anyhow::Result<Self> {
        Stream::Alerts.apply(&context.jetstream, &context.subjects, &context.nats).await?;
        Stream::DeadLetter.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
        let bucket = nats::state_bucket(&context.jetstream, &context.subjects).await?;
        let (feed, state) = EventFeed::open(&context, Self::NAME).await?;
        Ok(Self { context, config, feed, state, bucket })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Taken apart: the feed is not `Sync`, so nothing may borrow `self` whole across an await.
        let Self { context, config, mut feed, mut state, bucket } = self;
        let published = context.counters.counter("alerter_alerts_published_total");
        let mut snapshot = tokio::time::interval(Duration::from_secs(config.snapshot_every_secs.max(1)));
        snapshot.tick().await;
        publish_firing(&bucket, &state).await?;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = snapshot.tick() => feed.checkpoint(&state).await,
                next = feed.next() => {
                    let Some((_, envelope)) = next else { break };
                    let changes = state.apply(&config.rules.worker_overloaded, envelope.time, &envelope.payload);
                    if changes.is_empty() {
                        continue;
                    }
                    let fresh_after = now_ms() - config.max_alert_age_secs as i64 * 1000;
                    for alert in changes.iter().filter(|_| envelope.time >= fresh_after) {
                        // An alert is never dropped: the feed waits until it is stored.
                        let what = format!("publishing alert {}", alert.alert_id);
                        if !shared::service::retry_until_done(&what, &shutdown, || publish(&context, alert)).await {
                            // No final snapshot: the restart replays this event and publishes it.
                            return Ok(());
                        }
                        published.inc();
                    }
                    if let Err(err) = publish_firing(&bucket, &state).await {
                        warn!(error = format!("{err:#}"), "firing alerts not updated; the next change retries");
                    }
                }
            }
        }
        feed.save(&state).await
    }
}

async fn publish(context: &Context, alert: &Alert) -> anyhow::Result<()> {
    let id = alert.message_id();
    let time = alert.resolved_at.unwrap_or_else(now_ms);
    let envelope = Envelope::with_id(id, time, "alerter", alert);
    let subject = context.subjects.alert(alert.severity.as_str(), &alert.rule);
    info!(alert = %alert.alert_id, state = ?alert.state, target = %alert.target, "alert");
    nats::publish_durable(&context.jetstream, subject, &envelope.id, &envelope).await
}

async fn publish_firing(bucket: &async_nats::jetstream::kv::Store, state: &RuleState) -> anyhow::Result<()> {
    let firing = FiringAlerts { time: now_ms(), alerts: state.firing.values().cloned().collect() };
    bucket.put(state_keys::ALERTS_FIRING, codec::encode(&firing)?).await.context("updating the firing alerts")?;
    Ok(())
}
