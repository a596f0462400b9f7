//! Messages of each stream into the archive's record batches.
//!
//! Events go through the [`Keeper`] (heartbeats thinned, tasks and snapshots from the fold).
//! Metrics: system metrics every tick into `system_metrics`, per-worker samples into
//! `worker_samples` (the per-tick task metrics are not archived: `tasks` comes from the fold,
//! every task, where the processor's lists are capped). Alerts: every state change.

use crate::keeper::Keeper;
use crate::rollup::Progress;
use crate::rows;
use arrow::record_batch::RecordBatch;
use shared::alert::Alert;
use shared::event::Event;
use shared::metrics::{SystemMetrics, WorkerMetrics, WorkerMetricsBatch};
use shared::telemetry::Counter;
use shared::{Envelope, codec};
use tracing::warn;

/// One message as read: its stream sequence, subject and bytes.
pub type Message = (u64, String, bytes::Bytes);

/// What the archiver counts as it shapes.
#[derive(Clone)]
pub struct Counts {
    pub undecodable: Counter,
    /// Rows for a time whose roll-up was already made (kept raw, missing from the roll-up).
    pub late: Counter,
    pub heartbeats_seen: Counter,
    pub heartbeats_kept: Counter,
}

/// How one stream becomes rows.
pub enum Shaper {
    Events(Box<Keeper>),
    Alerts,
    Metrics,
}

impl Shaper {
    pub fn shape(
        &mut self,
        messages: &[Message],
        last_seq: u64,
        counts: &Counts,
        progress: &Progress,
    ) -> anyhow::Result<Vec<(&'static str, RecordBatch)>> {
        match self {
            Self::Events(keeper) => {
                let events =
                    decoded::<Event>(messages, counts).into_iter().map(|(seq, _, envelope)| (seq, envelope)).collect();
                let before = keeper.heartbeats;
                let shaped = keeper.shape(events, last_seq)?;
                counts.heartbeats_seen.add(keeper.heartbeats.0 - before.0);
                counts.heartbeats_kept.add(keeper.heartbeats.1 - before.1);
                counts.late.add(progress.late("tasks", &shaped.finished_at));
                Ok(shaped.batches)
            }
            Self::Alerts => {
                let alerts: Vec<(u64, Envelope<Alert>)> =
                    decoded::<Alert>(messages, counts).into_iter().map(|(seq, _, envelope)| (seq, envelope)).collect();
                Ok(vec![("alerts", rows::alerts_batch(&alerts)?)])
            }
            Self::Metrics => metrics_batches(messages, counts, progress),
        }
    }
}

fn decoded<T: serde::de::DeserializeOwned>(messages: &[Message], counts: &Counts) -> Vec<(u64, String, Envelope<T>)> {
    let mut rows = Vec::with_capacity(messages.len());
    for (seq, subject, payload) in messages {
        match codec::decode_envelope::<T>(payload) {
            Ok(envelope) => rows.push((*seq, subject.clone(), envelope)),
            Err(err) => {
                // Already dead-lettered by whoever read it first; the archive skips it.
                counts.undecodable.inc();
                warn!(seq, subject = %subject, error = %err, "undecodable message not archived");
            }
        }
    }
    rows
}

/// The metrics stream by subject: system metrics and per-worker samples.
fn metrics_batches(
    messages: &[Message],
    counts: &Counts,
    progress: &Progress,
) -> anyhow::Result<Vec<(&'static str, RecordBatch)>> {
    let mut system: Vec<(i64, &'static str, f64)> = Vec::new();
    let mut samples: Vec<(i64, WorkerMetrics)> = Vec::new();
    for (seq, subject, payload) in messages {
        let kind = subject.split(".metrics.").nth(1).unwrap_or_default();
        let decoded = if kind.starts_with("workers.sample.") {
            codec::decode_envelope::<WorkerMetricsBatch>(payload).map(|envelope| {
                let time = envelope.payload.time;
                samples.extend(envelope.payload.workers.into_iter().map(|metrics| (time, metrics)));
            })
        } else if kind.starts_with("worker.") {
            // One worker a message, as processors before schema 2 published them.
            codec::decode_envelope::<WorkerMetrics>(payload)
                .map(|envelope| samples.push((envelope.time, envelope.payload)))
        } else if kind == "tasks" || kind.starts_with("alerts.") {
            continue; // the task metrics and the alerter partitions' rule inputs are not archived
        } else {
            codec::decode_envelope::<SystemMetrics>(payload).map(|envelope| {
                system.extend(envelope.payload.flatten().into_iter().map(|(name, value)| (envelope.time, name, value)));
            })
        };
        if let Err(err) = decoded {
            counts.undecodable.inc();
            warn!(seq, subject = %subject, error = %err, "undecodable metrics not archived");
        }
    }
    let system_times: Vec<i64> = system.iter().map(|(time, _, _)| *time).collect();
    let sample_times: Vec<i64> = samples.iter().map(|(time, _)| *time).collect();
    counts.late.add(progress.late("system_metrics", &system_times) + progress.late("worker_samples", &sample_times));
    let samples: Vec<(i64, &WorkerMetrics)> = samples.iter().map(|(time, metrics)| (*time, metrics)).collect();
    Ok(vec![
        ("system_metrics", rows::system_metrics_batch(&system)?),
        ("worker_samples", rows::worker_samples_batch(&samples)?),
    ])
}
