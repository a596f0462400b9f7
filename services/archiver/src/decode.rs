//! Messages of each stream into the archive's record batches, by subject.
//!
//! Events are archived whole, except heartbeats: they are samples, and the per-worker
//! samples the processor takes every `sample_secs` (with what it derives beside the
//! heartbeat's figures) are what the archive keeps of them.

use crate::rows;
use arrow::record_batch::RecordBatch;
use shared::alert::Alert;
use shared::event::Event;
use shared::metrics::{SystemMetrics, TaskMetrics, WorkerMetrics, WorkerMetricsBatch};
use shared::nats::Stream;
use shared::{Envelope, codec};
use tracing::warn;

/// One message as read: its stream sequence, subject and bytes.
pub type Message = (u64, String, bytes::Bytes);

/// What decoding skipped: undecodable messages and heartbeats.
pub struct Skipped {
    pub undecodable: shared::telemetry::Counter,
    pub heartbeats: shared::telemetry::Counter,
}

pub fn to_batches(
    which: Stream,
    messages: &[Message],
    skipped: &Skipped,
) -> anyhow::Result<Vec<(&'static str, RecordBatch)>> {
    Ok(match which {
        Stream::Events => {
            let mut events = decoded::<Event>(messages, skipped);
            let before = events.len();
            // Heartbeats still reach here from before they had subjects of their own.
            events.retain(|(_, _, envelope)| !matches!(envelope.payload, Event::Heartbeat { .. }));
            skipped.heartbeats.add((before - events.len()) as u64);
            vec![("events", rows::events_batch(&events)?)]
        }
        Stream::Alerts => {
            let alerts: Vec<(u64, Envelope<Alert>)> =
                decoded::<Alert>(messages, skipped).into_iter().map(|(seq, _, envelope)| (seq, envelope)).collect();
            vec![("alerts", rows::alerts_batch(&alerts)?)]
        }
        Stream::Metrics => metrics_batches(messages, skipped)?,
        Stream::DeadLetter => Vec::new(),
    })
}

fn decoded<T: serde::de::DeserializeOwned>(messages: &[Message], skipped: &Skipped) -> Vec<(u64, String, Envelope<T>)> {
    let mut rows = Vec::with_capacity(messages.len());
    for (seq, subject, payload) in messages {
        match codec::decode_envelope::<T>(payload) {
            Ok(envelope) => rows.push((*seq, subject.clone(), envelope)),
            Err(err) => {
                // Already dead-lettered by whoever read it first; the archive skips it.
                skipped.undecodable.inc();
                warn!(seq, subject = %subject, error = %err, "undecodable message not archived");
            }
        }
    }
    rows
}

/// The metrics stream into the seed's three long tables, by subject: system metrics every
/// tick, per-worker samples, and each finished task's timings.
fn metrics_batches(messages: &[Message], skipped: &Skipped) -> anyhow::Result<Vec<(&'static str, RecordBatch)>> {
    let mut system = Vec::new();
    let mut workers: Vec<(i64, String, &'static str, f64)> = Vec::new();
    let mut tasks: Vec<(i64, String, &'static str, f64)> = Vec::new();
    let mut worker_rows = |time: i64, metrics: &WorkerMetrics| {
        let rows = metrics.flatten().into_iter().map(|(name, value)| (time, metrics.worker_id.clone(), name, value));
        workers.extend(rows);
    };
    for (seq, subject, payload) in messages {
        let kind = subject.split(".metrics.").nth(1).unwrap_or_default();
        let decoded = if kind.starts_with("workers.sample.") {
            codec::decode_envelope::<WorkerMetricsBatch>(payload).map(|envelope| {
                for metrics in &envelope.payload.workers {
                    worker_rows(envelope.payload.time, metrics);
                }
            })
        } else if kind.starts_with("worker.") {
            // One worker a message, as processors before schema 2 published them.
            codec::decode_envelope::<WorkerMetrics>(payload)
                .map(|envelope| worker_rows(envelope.time, &envelope.payload))
        } else if kind == "tasks" {
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
        } else {
            codec::decode_envelope::<SystemMetrics>(payload).map(|envelope| {
                system.extend(envelope.payload.flatten().into_iter().map(|(name, value)| (envelope.time, name, value)));
            })
        };
        if let Err(err) = decoded {
            skipped.undecodable.inc();
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
