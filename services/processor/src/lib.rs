//! The processor: the fleet's state, folded from FLEET_EVENTS, and the metrics derived
//! from it, published every tick on `<prefix>.metrics.system` and kept in the state bucket.

mod state;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use shared::feed::EventFeed;
use shared::nats::{Stream, state_keys};
use shared::service::{Context, Service};
use shared::{Envelope, codec, nats, now_ms};
pub use state::{FleetState, Thresholds};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `[processor]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// How often metrics are published, ms; at least 100. Default 1000.
    pub tick_ms: u64,
    /// A worker with no heartbeat for this long counts as disconnected, s. Default 15.
    pub lost_after_secs: u64,
    /// CPU at or above this makes a worker overloaded, percent. Default 90.
    pub overload_cpu_pct: f32,
    /// How often the state is snapshotted, s. Default 10.
    pub snapshot_every_secs: u64,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self { tick_ms: 1000, lost_after_secs: 15, overload_cpu_pct: 90.0, snapshot_every_secs: 10 }
    }
}

pub struct Processor {
    context: Context,
    config: ProcessorConfig,
    feed: EventFeed,
    state: FleetState,
    bucket: async_nats::jetstream::kv::Store,
}

impl Service for Processor {
    const NAME: &'static str = "processor";
    type Config = ProcessorConfig;

    async fn connect(context: Context, config: ProcessorConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(config.tick_ms >= 100, "processor.tick_ms must be at least 100, got {}", config.tick_ms);
        Stream::Metrics.apply(&context.jetstream, &context.subjects, &context.nats).await?;
        Stream::DeadLetter.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
        let bucket = nats::state_bucket(&context.jetstream, &context.subjects).await?;
        let (feed, state) = EventFeed::open(&context, Self::NAME).await?;
        Ok(Self { context, config, feed, state, bucket })
    }

    async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let thresholds = Thresholds {
            lost_after_ms: self.config.lost_after_secs as i64 * 1000,
            overload_cpu_pct: self.config.overload_cpu_pct,
        };
        let applied = self.context.counters.counter("processor_events_applied_total");
        let ticks = self.context.counters.counter("processor_ticks_total");
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut snapshot = tokio::time::interval(Duration::from_secs(self.config.snapshot_every_secs.max(1)));
        snapshot.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    self.publish_metrics(&thresholds).await?;
                    ticks.inc();
                }
                _ = snapshot.tick() => self.feed.save(&self.state).await?,
                next = self.feed.next() => {
                    let Some(next) = next else { break };
                    let (_, envelope) = next?;
                    self.state.apply(envelope.time, &envelope.payload);
                    applied.inc();
                }
            }
        }
        self.feed.save(&self.state).await
    }
}

impl Processor {
    async fn publish_metrics(&mut self, thresholds: &Thresholds) -> anyhow::Result<()> {
        let now = now_ms();
        self.state.expire(now);
        let metrics = self.state.system_metrics(now, self.feed.last_seq, thresholds);
        let envelope = Envelope::new(now, "processor", metrics);
        let payload = codec::encode(&envelope)?;
        nats::publish_bytes(
            &self.context.jetstream,
            self.context.subjects.metrics_system(),
            &envelope.id,
            payload.clone(),
        )
        .await?
        .await
        .context("storing system metrics")?;
        self.bucket.put(state_keys::SYSTEM, payload).await.context("updating the state bucket")?;
        Ok(())
    }
}
