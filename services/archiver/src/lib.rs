//! The archiver: the only process that opens the DuckDB file. It appends events, alerts
//! and system metrics as Arrow record batches, exactly once: each batch commits together
//! with the stream sequence it reaches, messages at or below that sequence are skipped
//! on redelivery, and JetStream is acked only after the commit.

mod rows;
mod store;

use async_nats::jetstream::consumer;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shared::alert::Alert;
use shared::event::Event;
use shared::metrics::{SystemMetrics, TaskMetrics, WorkerMetrics};
use shared::nats::Stream;
use shared::service::{Context, Service};
use shared::{Envelope, codec, now_ms};
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
}

impl Default for ArchiverConfig {
    fn default() -> Self {
        Self { db_path: PathBuf::from("var/fleetwatch.duckdb"), batch_max: 5000, retention_days: 7 }
    }
}

/// Durable consumer name, shared by every archiver instance (they split the work).
const CONSUMER: &str = "archiver";

pub struct Archiver {
    context: Context,
    config: ArchiverConfig,
    store: Store,
    streams: Vec<(Stream, consumer::PullConsumer)>,
}

impl Service for Archiver {
    const NAME: &'static str = "archiver";
    type Config = ArchiverConfig;

    async fn connect(context: Context, config: ArchiverConfig) -> anyhow::Result<Self> {
        let store = Store::open(&config.db_path)?;
        let mut streams = Vec::new();
        for which in [Stream::Events, Stream::Alerts, Stream::Metrics] {
            let stream = which.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
            let consumer = stream
                .get_or_create_consumer(
                    CONSUMER,
                    consumer::pull::Config {
                        durable_name: Some(CONSUMER.into()),
                        ack_policy: consumer::AckPolicy::All,
                        ack_wait: Duration::from_secs(60),
                        max_ack_pending: 100_000,
                        ..Default::default()
                    },
                )
                .await?;
            streams.push((which, consumer));
        }
        info!(path = %config.db_path.display(), "archive open");
        Ok(Self { context, config, store, streams })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for (which, consumer) in self.streams {
            let name = which.config(&self.context.subjects, &self.context.nats).name;
            tasks.spawn(archive(
                name,
                which,
                consumer,
                self.store.clone(),
                self.context.clone(),
                self.config.batch_max,
                shutdown.clone(),
            ));
        }
        tasks.spawn(retention(self.store.clone(), self.config.retention_days, shutdown.clone()));
        let outcome = shared::service::join_all(tasks, &shutdown).await;
        self.store.close().await?;
        outcome
    }
}

/// Moves one stream into the archive, batch by batch, until shutdown.
async fn archive(
    stream_name: String,
    which: Stream,
    consumer: consumer::PullConsumer,
    store: Store,
    context: Context,
    batch_max: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let archived = context.counters.counter("archiver_messages_archived_total");
    let skipped = context.counters.counter("archiver_messages_skipped_total");
    let mut offset = store.offset(&stream_name).await?;
    let mut messages = consumer.messages().await?.ready_chunks(batch_max);
    loop {
        let chunk = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            chunk = messages.next() => match chunk {
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
            let batches = to_batches(which, &fresh, &skipped)?;
            // While DuckDB refuses the batch (a full disk, say) nothing is acked, so nothing is lost.
            let what = format!("archiving {stream_name} up to {seq}");
            let committed = shared::service::retry_until_done(&what, &shutdown, || {
                store.append(&stream_name, seq, batches.clone())
            })
            .await;
            if !committed {
                return Ok(());
            }
            archived.add(fresh.len() as u64);
            offset = seq;
        }
        // AckPolicy::All: the last ack covers the chunk, and only after the commit. A lost
        // ack means a redelivery, which the offset check above skips.
        if let Err(err) = last.ack().await {
            warn!(stream = %stream_name, error = %err, "ack not sent; the chunk will be redelivered and skipped");
        }
    }
}

fn to_batches(
    which: Stream,
    messages: &[(u64, String, bytes::Bytes)],
    skipped: &shared::telemetry::Counter,
) -> anyhow::Result<Vec<(&'static str, arrow::record_batch::RecordBatch)>> {
    fn decoded<T: serde::de::DeserializeOwned>(
        messages: &[(u64, String, bytes::Bytes)],
        skipped: &shared::telemetry::Counter,
    ) -> Vec<(u64, String, Envelope<T>)> {
        let mut rows = Vec::with_capacity(messages.len());
        for (seq, subject, payload) in messages {
            match codec::decode_envelope::<T>(payload) {
                Ok(envelope) => rows.push((*seq, subject.clone(), envelope)),
                Err(err) => {
                    // Already dead-lettered by whoever read it first; the archive skips it.
                    skipped.inc();
                    warn!(seq, subject = %subject, error = %err, "undecodable message not archived");
                }
            }
        }
        rows
    }
    Ok(match which {
        Stream::Events => vec![("events", rows::events_batch(&decoded::<Event>(messages, skipped))?)],
        Stream::Alerts => {
            let alerts: Vec<(u64, Envelope<Alert>)> =
                decoded::<Alert>(messages, skipped).into_iter().map(|(seq, _, envelope)| (seq, envelope)).collect();
            vec![("alerts", rows::alerts_batch(&alerts)?)]
        }
        Stream::Metrics => metrics_batches(messages, skipped)?,
        Stream::DeadLetter => Vec::new(),
    })
}

/// The metrics stream into the seed's three long tables, by subject.
fn metrics_batches(
    messages: &[(u64, String, bytes::Bytes)],
    skipped: &shared::telemetry::Counter,
) -> anyhow::Result<Vec<(&'static str, arrow::record_batch::RecordBatch)>> {
    let mut system = Vec::new();
    let mut workers: Vec<(i64, String, &'static str, f64)> = Vec::new();
    let mut tasks: Vec<(i64, String, &'static str, f64)> = Vec::new();
    for (seq, subject, payload) in messages {
        let decoded = match subject.rsplit('.').nth(1) {
            Some("worker") => codec::decode_envelope::<WorkerMetrics>(payload).map(|envelope| {
                let metrics = envelope.payload;
                workers.extend(
                    metrics
                        .flatten()
                        .into_iter()
                        .map(|(name, value)| (envelope.time, metrics.worker_id.clone(), name, value)),
                );
            }),
            _ if subject.ends_with(".metrics.tasks") => {
                codec::decode_envelope::<TaskMetrics>(payload).map(|envelope| {
                    for task in envelope.payload.finished.items {
                        let outcome = if task.succeeded { 1.0 } else { 0.0 };
                        for (name, value) in [
                            ("queue_ms", task.queue_ms),
                            ("processing_ms", task.processing_ms),
                            ("total_ms", task.total_ms),
                            ("succeeded", outcome),
                        ] {
                            tasks.push((task.finished_at, task.task_id.clone(), name, value));
                        }
                    }
                })
            }
            _ => codec::decode_envelope::<SystemMetrics>(payload).map(|envelope| {
                system.extend(envelope.payload.flatten().into_iter().map(|(name, value)| (envelope.time, name, value)));
            }),
        };
        if let Err(err) = decoded {
            skipped.inc();
            warn!(seq, subject = %subject, error = %err, "undecodable metrics not archived");
        }
    }
    Ok(vec![
        ("system_metrics", rows::system_metrics_batch(&system)?),
        ("worker_metrics", rows::keyed_metrics_batch("worker_id", &keyed(&workers))?),
        ("task_metrics", rows::keyed_metrics_batch("task_id", &keyed(&tasks))?),
    ])
}

fn keyed<'a>(rows: &'a [(i64, String, &'static str, f64)]) -> Vec<(i64, &'a str, &'a str, f64)> {
    rows.iter().map(|(time, id, name, value)| (*time, id.as_str(), *name, *value)).collect()
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
