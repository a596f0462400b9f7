//! The archiver: the only process that opens the DuckDB file. It appends events, alerts
//! and metrics as Arrow record batches, exactly once: each batch commits together with the
//! stream sequence it reaches, messages at or below that sequence are skipped on
//! redelivery, and JetStream is acked only after the commit.
//!
//! One archiver is active at a time (`lease`); others wait and take over when it dies. The
//! active one reports how far it is behind each stream (`archiver_lag_messages`,
//! `archiver_lag_seconds`) in its health report.

mod decode;
mod lease;
mod rows;
mod schema;
mod store;

use async_nats::jetstream::consumer;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shared::nats::{Stream, state_keys};
use shared::now_ms;
use shared::service::{Context, Service};
use std::path::PathBuf;
use std::time::Duration;
pub use store::Store;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[archiver]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiverConfig {
    /// The DuckDB file. Default `var/fleetwatch.duckdb`.
    pub db_path: PathBuf,
    /// Most messages written in one transaction. Default 5000.
    pub batch_max: usize,
    /// Raw rows older than this are deleted, days. Default 7.
    pub retention_days: u32,
    /// How long the active archiver may stay silent before another takes over, s. Default 10.
    pub lease_ttl_secs: u64,
}

impl Default for ArchiverConfig {
    fn default() -> Self {
        Self { db_path: PathBuf::from("var/fleetwatch.duckdb"), batch_max: 5000, retention_days: 7, lease_ttl_secs: 10 }
    }
}

/// The durable consumer on each stream: one archiver reads it at a time (the lease), since
/// with `AckPolicy::All` one reader's ack would cover another's uncommitted messages.
const CONSUMER: &str = "archiver";

/// One stream the archiver moves into the file.
#[derive(Clone)]
struct Source {
    which: Stream,
    name: String,
    stream: async_nats::jetstream::stream::Stream,
    consumer: consumer::PullConsumer,
}

pub struct Archiver {
    context: Context,
    config: ArchiverConfig,
    bucket: async_nats::jetstream::kv::Store,
    sources: Vec<Source>,
}

impl Service for Archiver {
    const NAME: &'static str = "archiver";
    type Config = ArchiverConfig;

    async fn connect(context: Context, config: ArchiverConfig) -> anyhow::Result<Self> {
        let mut sources = Vec::new();
        for which in [Stream::Events, Stream::Alerts, Stream::Metrics] {
            let stream = which.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
            // No subject filter, though heartbeats are skipped (`decode`): filtering on the
            // server over several subjects cost nats-server 6 µs a message (archive-bench),
            // more than sending the heartbeats along. An empty list also clears a filter an
            // older archiver set.
            let consumer = stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: consumer::AckPolicy::All,
                    ack_wait: Duration::from_secs(60),
                    max_ack_pending: 100_000,
                    ..Default::default()
                })
                .await?;
            let name = which.config(&context.subjects, &context.nats).name;
            sources.push(Source { which, name, stream, consumer });
        }
        let bucket = shared::nats::state_bucket(&context.jetstream, &context.subjects).await?;
        Ok(Self { context, config, bucket, sources })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let ttl = Duration::from_secs(self.config.lease_ttl_secs.max(1));
        let holder = format!("{}:{}", shared::telemetry::instance(), self.config.db_path.display());
        self.context.counters.set_gauge("archiver_active", &[], 0.0);
        loop {
            let acquired =
                lease::Lease::acquire(self.bucket.clone(), state_keys::ARCHIVER_LEASE, holder.clone(), ttl, &shutdown)
                    .await?;
            let Some(mut lease) = acquired else { return Ok(()) };
            let active = shutdown.child_token();
            let keeper = {
                let lost = active.clone();
                let stop = active.clone();
                async move {
                    lease.keep(&lost, &stop).await;
                    lease
                }
            };
            let (lease, outcome) = tokio::join!(keeper, async {
                let outcome = self.archive_while(&active).await;
                active.cancel();
                outcome
            });
            self.context.counters.set_gauge("archiver_active", &[], 0.0);
            if shutdown.is_cancelled() || outcome.is_err() {
                lease.release().await;
                return outcome;
            }
            info!("no longer the active archiver; waiting to take over again");
        }
    }
}

impl Archiver {
    /// Opens the file and archives every stream until `active` is cancelled (shutdown, or
    /// the lease lost).
    async fn archive_while(&self, active: &CancellationToken) -> anyhow::Result<()> {
        // A predecessor that stalled rather than died may still hold the file's lock.
        let mut store = None;
        let opened = shared::service::retry_until_done("opening the archive", active, || {
            let opened = Store::open(&self.config.db_path).map(|opened| store = Some(opened));
            std::future::ready(opened)
        })
        .await;
        let Some(store) = store.filter(|_| opened) else { return Ok(()) };
        info!(path = %self.config.db_path.display(), "archive open; archiving");
        self.context.counters.set_gauge("archiver_active", &[], 1.0);
        let mut tasks = tokio::task::JoinSet::new();
        for source in &self.sources {
            tasks.spawn(archive(
                source.clone(),
                store.clone(),
                self.context.clone(),
                self.config.batch_max,
                active.clone(),
            ));
        }
        tasks.spawn(retention(store.clone(), self.config.retention_days, active.clone()));
        tasks.spawn(report_lag(self.sources.clone(), self.context.counters.clone(), active.clone()));
        let outcome = shared::service::join_all(tasks, active).await;
        store.close().await?;
        outcome
    }
}

/// Moves one stream into the archive, batch by batch, until `active` ends.
async fn archive(
    source: Source,
    store: Store,
    context: Context,
    batch_max: usize,
    active: CancellationToken,
) -> anyhow::Result<()> {
    let archived = context.counters.counter("archiver_messages_archived_total");
    let commits = context.counters.counter("archiver_commits_total");
    let skipped = decode::Skipped {
        undecodable: context.counters.counter("archiver_messages_skipped_total"),
        heartbeats: context.counters.counter("archiver_heartbeats_skipped_total"),
    };
    let stream_name = source.name;
    let mut offset = store.offset(&stream_name).await?;
    // Pull as many as a transaction takes, so a lagging archiver commits big batches.
    let mut messages =
        source.consumer.stream().max_messages_per_batch(batch_max).heartbeat(Duration::from_secs(5)).messages().await?;
    loop {
        let chunk = tokio::select! {
            biased;
            _ = active.cancelled() => return Ok(()),
            chunk = next_chunk(&mut messages, batch_max, LINGER) => match chunk {
                Some(chunk) => chunk,
                None => return Ok(()),
            },
        };
        let mut fresh = Vec::with_capacity(chunk.len());
        let mut last = None;
        for message in chunk {
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    // Missed heartbeats and reconnects: the consumer carries on by itself.
                    warn!(stream = %stream_name, error = %err, "pull consumer hiccup");
                    continue;
                }
            };
            let Ok(info) = message.info() else { continue };
            if info.stream_sequence > offset {
                fresh.push((info.stream_sequence, message.subject.to_string(), message.payload.clone()));
            }
            last = Some(message);
        }
        let Some(last) = last else { continue };
        if let Some(&(seq, _, _)) = fresh.last() {
            let batches = decode::to_batches(source.which, &fresh, &skipped)?;
            // While DuckDB refuses the batch (a full disk, say) nothing is acked, so nothing is lost.
            let what = format!("archiving {stream_name} up to {seq}");
            let committed =
                shared::service::retry_until_done(&what, &active, || store.append(&stream_name, seq, batches.clone()))
                    .await;
            if !committed {
                return Ok(());
            }
            archived.add(fresh.len() as u64);
            commits.inc();
            offset = seq;
        }
        // AckPolicy::All: the last ack covers the chunk, and only after the commit. A lost
        // ack means a redelivery, which the offset check above skips.
        if let Err(err) = last.ack().await {
            warn!(stream = %stream_name, error = %err, "ack not sent; the chunk will be redelivered and skipped");
        }
    }
}

/// How long a batch waits for more messages before it is committed: each commit has a
/// fixed cost, so a steady trickle is written a few times a second rather than per message.
const LINGER: Duration = Duration::from_millis(250);

/// The next batch: the first message, then what else comes within `linger`, up to `max`.
async fn next_chunk<S: futures::Stream + Unpin>(
    messages: &mut S,
    max: usize,
    linger: Duration,
) -> Option<Vec<S::Item>> {
    let mut chunk = vec![messages.next().await?];
    let deadline = tokio::time::sleep(linger);
    tokio::pin!(deadline);
    while chunk.len() < max {
        tokio::select! {
            biased;
            item = messages.next() => match item {
                Some(item) => chunk.push(item),
                None => break,
            },
            _ = &mut deadline => break,
        }
    }
    Some(chunk)
}

/// Every health interval: how many messages each stream holds that are not archived yet,
/// and how old the oldest of them is (0 when caught up).
async fn report_lag(
    sources: Vec<Source>,
    counters: shared::telemetry::Registry,
    active: CancellationToken,
) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(shared::telemetry::HEALTH_INTERVAL);
    loop {
        tokio::select! {
            biased;
            _ = active.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        for source in &sources {
            match lag(source).await {
                Ok((messages, seconds)) => {
                    let labels = [("stream", source.name.as_str())];
                    counters.set_gauge("archiver_lag_messages", &labels, messages as f64);
                    counters.set_gauge("archiver_lag_seconds", &labels, seconds);
                }
                Err(err) => warn!(stream = %source.name, error = format!("{err:#}"), "archive lag not measured"),
            }
        }
    }
}

async fn lag(source: &Source) -> anyhow::Result<(u64, f64)> {
    let mut consumer = source.consumer.clone();
    let info = consumer.info().await?;
    let messages = info.num_pending + info.num_ack_pending as u64;
    if messages == 0 {
        return Ok((0, 0.0));
    }
    // The oldest message not yet acknowledged; with a filter it may be one the archiver
    // skips, which is older still, so the figure errs on the side of more lag.
    let oldest = source.stream.get_raw_message(info.ack_floor.stream_sequence + 1).await;
    let seconds = match oldest {
        Ok(message) => {
            let time = message.time.unix_timestamp_nanos() / 1_000_000;
            ((now_ms() as i128 - time).max(0) as f64) / 1000.0
        }
        // Gone already (aged out of the stream): nothing older is waiting.
        Err(_) => 0.0,
    };
    Ok((messages, seconds))
}

/// Deletes rows past the retention once an hour (and once at start).
async fn retention(store: Store, days: u32, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        let before = now_ms() - i64::from(days) * 24 * 3600 * 1000;
        let deleted = store.prune(before).await?;
        if deleted > 0 {
            info!(deleted, days, "retention pruned old rows");
        }
    }
}
