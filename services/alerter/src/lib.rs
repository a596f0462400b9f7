//! The alerter: rules over FLEET_EVENTS (and, for custom rules, FLEET_METRICS); each alert
//! change goes to `<prefix>.alerts.<severity>.<rule>` (stream FLEET_ALERTS) exactly once;
//! the open alerts and the silences are kept under `alerts.firing` and `alerts.silences` in
//! the state bucket. The state machine, the rules and their settings: `schemas/alerts.md`.
//!
//! Alerts are folded from events by event time and carry ids derived from the rule, the
//! target and the start, and a revision per change, so a replay after a crash republishes
//! the same messages, which JetStream drops as duplicates.

mod engine;
mod open;
mod rules;
mod scope;
pub mod sinks;

use anyhow::Context as _;
use futures::StreamExt;
use rules::merge::Refused;
use rules::{Compiled, CustomRule, MetricsKind, RuleState, Rules};
use scope::Scope;
use serde::{Deserialize, Serialize};
use shared::alert::{Alert, RuleInputs};
use shared::feed::EventFeed;
use shared::nats::Stream;
use shared::service::{Context, Service};
use shared::{Envelope, codec, nats, now_ms};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The state bucket is rewritten at most this often, however fast alerts change.
const STATE_EVERY: Duration = Duration::from_millis(200);

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
    /// Alerters the fleet's rules are split over: 1, or a divisor of 64 (2, 4, ...), as
    /// the processor's. Default 1.
    pub partitions: u32,
    /// With `partitions` over 1: the partition whose workers and tasks this one watches,
    /// from 0. Unset: this one is the fleet tier, which runs the fleet-wide rules over the
    /// partitions' merged inputs (run exactly one).
    pub partition: Option<u32>,
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
            partitions: 1,
            partition: None,
        }
    }
}

pub struct Alerter {
    context: Context,
    config: AlerterConfig,
    scope: Scope,
    compiled: Compiled,
    feed: EventFeed,
    state: RuleState,
    bucket: async_nats::jetstream::kv::Store,
}

impl Service for Alerter {
    const NAME: &'static str = "alerter";
    type Config = AlerterConfig;

    fn check(config: &AlerterConfig) -> anyhow::Result<()> {
        Scope::new(config.partitions, config.partition).map(|_| ())
    }

    async fn connect(context: Context, config: AlerterConfig) -> anyhow::Result<Self> {
        sinks::check(&config.alertmanager, &config.webhooks)?;
        let scope = Scope::new(config.partitions, config.partition)?;
        let compiled =
            Compiled::new(config.rules.clone(), &config.custom, &context.fleet, config.custom_alert_ttl_secs, scope)?;
        Stream::Alerts.apply(&context.jetstream, &context.subjects, &context.nats).await?;
        Stream::DeadLetter.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
        if scope != Scope::Whole {
            // Where the partitions' inputs go; its owner, the processor, adds the subject.
            let metrics = Stream::Metrics.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
            let inputs = context.subjects.metrics_alert_inputs_all();
            anyhow::ensure!(
                metrics.cached_info().config.subjects.contains(&inputs),
                "FLEET_METRICS does not take {inputs}: start a processor of this version first (it owns the stream)"
            );
        }
        let bucket = nats::state_bucket(&context.jetstream, &context.subjects, &context.nats).await?;
        let name = scope.name();
        let (feed, mut state): (EventFeed, RuleState) =
            EventFeed::open_part(&context, &name, scope.keep(&context.subjects)).await?;
        if feed.last_seq == 0 {
            state = RuleState::new(scope);
        }
        anyhow::ensure!(
            state.scope == scope,
            "the snapshot {name} was kept by another role ({:?}): remove it to rebuild (README, Partitions)",
            state.scope
        );
        Ok(Self { context, config, scope, compiled, feed, state, bucket })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Taken apart: the feed is not `Sync`, so nothing may borrow `self` whole across an await.
        let Self { context, config, scope, compiled, mut feed, mut state, bucket } = self;
        if !config.enable_alerts {
            info!("alerts are disabled (enable_alerts = false): nothing is evaluated");
            shutdown.cancelled().await;
            return Ok(());
        }
        let published = context.counters.counter("alerter_alerts_published_total");
        // Each sink in its own task: one that is down never holds up the rules. The sinks
        // read every alerter's alerts from FLEET_ALERTS, so partitions run none.
        let sinks = match scope {
            Scope::Part(_) => None,
            _ => Some(tokio::spawn(sinks::run(
                context.clone(),
                config.alertmanager.clone(),
                config.webhooks.clone(),
                shutdown.clone(),
            ))),
        };
        let mut metrics = match compiled.custom.is_empty() {
            true => None,
            false => {
                let filters = vec![context.subjects.metrics_system(), context.subjects.metrics_worker_samples()];
                Some(metrics_feed(&context, state.metrics_seq, false, filters).await?)
            }
        };
        // The tier: a fresh one reads every stored input, so none published before it
        // started is missed.
        let mut inputs_feed = match scope {
            Scope::Tier { .. } => {
                let filters = vec![context.subjects.metrics_alert_inputs_all()];
                Some(metrics_feed(&context, state.inputs_seq, true, filters).await?)
            }
            _ => None,
        };
        let mut open = open::OpenAlerts::new(bucket, scope).await?;
        let name = scope.name();
        let mut inputs: Vec<RuleInputs> = Vec::new();
        let mut snapshot = tokio::time::interval(Duration::from_secs(config.snapshot_every_secs.max(1)));
        snapshot.tick().await;
        let mut state_tick = tokio::time::interval(STATE_EVERY);
        let mut dirty = true;
        let mut changes: Vec<Alert> = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = snapshot.tick() => {
                    context.counters.set_gauge("alerter_tasks_tracked", &[], state.tasks_tracked() as f64);
                    feed.checkpoint(&state).await
                }
                // Before the state is written: the tier lists its partitions' alerts from the first write.
                Some(entry) = open.next_partition() => open.partition_changed(entry),
                _ = state_tick.tick(), if dirty || state.book.dirty || open.others_changed => {
                    context.counters.set_gauge("alerter_alerts_open", &[], state.book.open_count() as f64);
                    match open.write(&mut state).await {
                        Ok(()) => (dirty, state.book.dirty) = (false, false),
                        Err(err) => warn!(error = format!("{err:#}"), "open alerts not updated; retrying"),
                    }
                }
                Some(message) = next_metrics(&mut metrics) => {
                    let (seq, kind, payload) = message;
                    state.apply_metrics(&compiled, seq, kind, &payload, &mut changes);
                }
                Some((seq, _, payload)) = next_metrics(&mut inputs_feed) => {
                    let refused = match codec::decode_envelope::<RuleInputs>(&payload) {
                        Ok(envelope) => state.apply_inputs(&compiled, seq, &envelope.payload, &mut changes).err(),
                        Err(err) => {
                            warn!(seq, error = %err, "undecodable rule inputs skipped");
                            Some(Refused::Undecodable)
                        }
                    };
                    if let Some(why) = refused {
                        refused_inputs(&context, seq, why);
                    }
                }
                next = feed.next() => {
                    let Some((_, envelope)) = next else { break };
                    state.apply(&compiled, envelope.time, &envelope.payload, &mut changes);
                    inputs.extend(state.take_ready());
                }
            }
            if changes.is_empty() && inputs.is_empty() {
                continue;
            }
            dirty |= !changes.is_empty();
            let fresh_after = now_ms() - config.max_alert_age_secs as i64 * 1000;
            let fresh: Vec<Alert> = changes.drain(..).filter(|alert| change_time(alert) >= fresh_after).collect();
            // Nothing is dropped: the feed waits until every change and input is stored.
            let stored = || publish(&context, &name, &fresh, &inputs);
            if !shared::service::retry_until_done("publishing alerts", &shutdown, stored).await {
                // No final snapshot: the restart replays these events and publishes them.
                return Ok(());
            }
            published.add(fresh.len() as u64);
            inputs.clear();
        }
        feed.save_final(&state).await;
        shutdown.cancel();
        if let Some(sinks) = sinks {
            let _ = sinks.await;
        }
        Ok(())
    }
}

/// Counts and warns of a partition's inputs the tier did not merge, but for the seconds a
/// restarted partition publishes again, which are expected.
fn refused_inputs(context: &Context, seq: u64, why: Refused) {
    if why != Refused::Duplicate {
        context.counters.counter("alerter_rule_inputs_refused_total").inc();
        warn!(seq, reason = ?why, "a partition's rule inputs were not merged (schemas/alerts.md, Partitions)");
    }
}

/// The event time of the change an alert revision records.
pub(crate) fn change_time(alert: &Alert) -> i64 {
    alert
        .resolved_at
        .or(alert.fired_at)
        .unwrap_or(alert.started_at)
        .max(alert.acknowledged.as_ref().map_or(0, |m| m.at))
}

/// Publishes every change and a partition's rule inputs, all in flight at once, then waits
/// for every ack.
async fn publish(context: &Context, name: &str, alerts: &[Alert], inputs: &[RuleInputs]) -> anyhow::Result<()> {
    let mut acks = Vec::with_capacity(alerts.len() + inputs.len());
    for second in inputs {
        // Its id names the partition and second: a replay after a restart is a duplicate.
        let envelope = Envelope::with_id(format!("{name}-{}", second.second), second.second * 1000, "alerter", second);
        let subject = context.subjects.metrics_alert_inputs(second.partition);
        acks.push(nats::publish_pipelined(&context.jetstream, subject, &envelope.id, &envelope).await?);
    }
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

type MetricsFeed = async_nats::jetstream::consumer::pull::Ordered;

/// FLEET_METRICS on `filter_subjects` after `seq`: the system metrics and worker samples
/// for the custom rules, the partitions' rule inputs for the fleet tier. With no `seq`
/// yet, from now on, or from the first stored message when `from_first`.
async fn metrics_feed(
    context: &Context,
    seq: u64,
    from_first: bool,
    filter_subjects: Vec<String>,
) -> anyhow::Result<MetricsFeed> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    let stream = Stream::Metrics.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
    let deliver_policy = match (seq, from_first) {
        (0, true) => DeliverPolicy::All,
        (0, false) => DeliverPolicy::New,
        (seq, _) => DeliverPolicy::ByStartSequence { start_sequence: seq + 1 },
    };
    let consumer = stream
        .create_consumer(OrderedConfig { deliver_policy, filter_subjects, ..Default::default() })
        .await
        .context("reading FLEET_METRICS")?;
    consumer.messages().await.context("reading FLEET_METRICS")
}

/// The next metrics message, with the kind a custom rule reads; pending forever when there
/// is no feed.
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
