//! The processor: the fleet's state, folded from FLEET_EVENTS, and the metrics derived
//! from it. Every tick it publishes `<prefix>.metrics.system` and `<prefix>.metrics.tasks`
//! (the latest of each also under `system` and `tasks` in the state bucket, written when
//! they change) and the per-worker metrics in batches (`publish`). It answers
//! `<prefix>.query.processor.tasks` with the live tasks, paged (`tasks`), and
//! `<prefix>.query.processor.state` with its whole state (MessagePack), for tests and
//! debugging.
//!
//! With `partitions` over 1 it runs in one of two roles. A partition (`partition = i`) folds
//! only its part of the fleet (`shared::fleet::Partition`), publishes its workers' metrics
//! and, every tick, its mergeable summary on `<prefix>.metrics.partition.<i>`, and answers
//! `processor.part.<i>.tasks` and `.state`. The fleet tier (`partition` unset) merges the
//! summaries into the fleet's system and task metrics and answers `processor.tasks` by
//! asking every partition (`tier`).

mod publish;
mod tasks;
mod tier;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shared::feed::EventFeed;
pub use shared::fleet::{FleetState, Limits, Partition};
use shared::metrics::FinishedTask;
use shared::nats::Stream;
use shared::service::{Context, Service};
use shared::{codec, nats, now_ms};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[processor]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// How often metrics are published, ms; at least 100. Default 1000.
    pub tick_ms: u64,
    /// Finished tasks listed, completed and failed each (older ones live on in the
    /// aggregates). Default 500.
    pub max_tasks_tracked: usize,
    /// How often the state is snapshotted, s. Default 10.
    pub snapshot_every_secs: u64,
    /// Publish per-worker metrics: changes every tick, samples every `sample_secs`.
    /// Default true.
    pub worker_metrics: bool,
    /// How often every worker's metrics are sampled into FLEET_METRICS (the archive's raw
    /// resolution, and where a reader starting up finds the whole fleet), s. Default 10.
    pub sample_secs: u64,
    /// Processors the fleet is split over: 1, or a divisor of 64 (2, 4, 8, ...). Default 1.
    pub partitions: u32,
    /// With `partitions` over 1: the partition this one folds, from 0. Unset: this one is
    /// the fleet tier, which merges the partitions' summaries (run exactly one).
    pub partition: Option<u32>,
}

/// What one processor does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// Folds a part of the fleet (all of it when not partitioned).
    Fold(Partition),
    /// Merges the partitions' summaries.
    Tier,
}

impl ProcessorConfig {
    fn role(&self) -> anyhow::Result<Role> {
        let partition = |index| Partition::new(index, self.partitions).map_err(anyhow::Error::msg);
        Ok(match (self.partitions, self.partition) {
            (1, None) => Role::Fold(Partition::WHOLE),
            (_, Some(index)) => Role::Fold(partition(index)?),
            (_, None) => {
                partition(0)?;
                Role::Tier
            }
        })
    }
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            tick_ms: 1000,
            max_tasks_tracked: 500,
            snapshot_every_secs: 10,
            worker_metrics: true,
            sample_secs: 10,
            partitions: 1,
            partition: None,
        }
    }
}

pub struct Processor {
    context: Context,
    config: ProcessorConfig,
    /// The feed and the state it folds into; none for the fleet tier.
    folding: Option<(EventFeed, FleetState)>,
    bucket: async_nats::jetstream::kv::Store,
    queries: async_nats::Subscriber,
}

impl Service for Processor {
    const NAME: &'static str = "processor";
    type Config = ProcessorConfig;

    fn check(config: &ProcessorConfig) -> anyhow::Result<()> {
        anyhow::ensure!(config.tick_ms >= 100, "processor.tick_ms must be at least 100, got {}", config.tick_ms);
        config.role().map(|_| ())
    }

    async fn connect(context: Context, config: ProcessorConfig) -> anyhow::Result<Self> {
        Stream::Metrics.apply(&context.jetstream, &context.subjects, &context.nats).await?;
        Stream::DeadLetter.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
        let bucket = nats::state_bucket(&context.jetstream, &context.subjects, &context.nats).await?;
        publish::purge_legacy_worker_keys(&bucket).await?;
        let (folding, queries) = match config.role()? {
            Role::Fold(partition) => {
                let name = partition.name(Self::NAME);
                let subjects = context.subjects.clone();
                let keep = Box::new(move |subject: &str| partition.wants(&subjects, subject));
                let (feed, mut state): (EventFeed, FleetState) = EventFeed::open_part(&context, &name, keep).await?;
                if feed.last_seq == 0 {
                    state = FleetState::partitioned(config.max_tasks_tracked, partition);
                }
                anyhow::ensure!(
                    state.partition == partition,
                    "the snapshot {name} holds partition {} of {}: remove it to rebuild (README, Partitions)",
                    state.partition.index,
                    state.partition.count
                );
                // A snapshot keeps the bound it was saved with; the setting applies after a restart.
                state.set_max_tasks_tracked(config.max_tasks_tracked);
                let queries = match partition.is_whole() {
                    true => context.subjects.query("processor.*"),
                    false => context.subjects.query(&format!("processor.part.{}.*", partition.index)),
                };
                (Some((feed, state)), queries)
            }
            Role::Tier => (None, context.subjects.query("processor.*")),
        };
        let queries = context.client.subscribe(queries).await?;
        Ok(Self { context, config, folding, bucket, queries })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { context, config, folding, bucket, queries } = self;
        match folding {
            Some((feed, state)) => fold(context, config, feed, state, bucket, queries, shutdown).await,
            None => tier::run(context, config, bucket, queries, shutdown).await,
        }
    }
}

/// The folding roles: the whole fleet, or one partition of it.
async fn fold(
    context: Context,
    config: ProcessorConfig,
    mut feed: EventFeed,
    mut state: FleetState,
    bucket: async_nats::jetstream::kv::Store,
    mut queries: async_nats::Subscriber,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let limits = Limits::new(&context.fleet, config.max_tasks_tracked);
    let mut publisher = publish::Publisher::new(&context, bucket, &config);
    let applied = context.counters.counter("processor_events_applied_total");
    let ticks = context.counters.counter("processor_ticks_total");
    let tick_micros = context.counters.counter("processor_tick_micros_total");
    let retired = context.counters.counter("processor_workers_retired_total");
    let tick_failures = context.counters.counter("processor_tick_failures_total");
    let mut finished: Vec<FinishedTask> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(config.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut snapshot = tokio::time::interval(Duration::from_secs(config.snapshot_every_secs.max(1)));
    snapshot.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let started = Instant::now();
                let now = now_ms();
                let gone = state.expire(now, &limits);
                retired.add(gone.len() as u64);
                let summary = state.summary(now, feed.last_seq, &limits, std::mem::take(&mut finished));
                let published = match state.partition.is_whole() {
                    true => publisher.tick(Some(&summary), Some((&state, &gone)), now, &limits).await,
                    false => publisher.tick(None, Some((&state, &gone)), now, &limits).await
                        .and(publisher.summary(state.partition.index, now, &summary).await),
                };
                if let Err(err) = published {
                    // Metrics are derived: the next tick publishes the picture again.
                    tick_failures.inc();
                    warn!(error = format!("{err:#}"), "metrics tick not published");
                }
                ticks.inc();
                tick_micros.add(started.elapsed().as_micros() as u64);
            }
            _ = snapshot.tick() => feed.checkpoint(&state).await,
            Some(query) = queries.next() => answer_query(&context, query, feed.last_seq, &state).await,
            next = feed.next() => {
                let Some((_, envelope)) = next else { break };
                if let Some(task) = state.apply(envelope.time, &envelope.payload) {
                    finished.push(task);
                }
                applied.inc();
            }
        }
    }
    info!(seq = feed.last_seq, "saving the final snapshot");
    feed.save_final(&state).await;
    Ok(())
}

/// Answers `processor.tasks` (JSON) and `processor.state` (`[seq, state]` as MessagePack;
/// a state too large for one message gets an error text instead). A query never stops the
/// processor: a bad one is answered with its reason.
async fn answer_query(context: &Context, query: async_nats::Message, seq: u64, state: &FleetState) {
    let Some(reply) = query.reply else { return };
    let name = query.subject.as_str().rsplit('.').next().unwrap_or_default();
    let payload: bytes::Bytes = match name {
        "tasks" => {
            let answer =
                tasks::parse_query(&query.payload).and_then(|asked| tasks::answer(state, &asked, now_ms(), seq));
            let json = match answer {
                Ok(answer) => serde_json::to_vec(&answer),
                Err(reason) => serde_json::to_vec(&serde_json::json!({ "error": reason, "status": 400 })),
            };
            json.unwrap_or_default().into()
        }
        "state" => match codec::encode(&(seq, state)) {
            Ok(payload) if payload.len() as u64 <= context.client.server_info().max_payload as u64 => payload,
            Ok(payload) => format!("error: the state is {} bytes, over the server's max_payload", payload.len())
                .into_bytes()
                .into(),
            Err(err) => format!("error: {err}").into_bytes().into(),
        },
        other => serde_json::to_vec(&serde_json::json!({
            "error": format!("no query {other}: use tasks or state"),
            "status": 404,
        }))
        .unwrap_or_default()
        .into(),
    };
    if let Err(err) = context.client.publish(reply, payload).await {
        warn!(error = %err, "state query not answered");
    }
}
