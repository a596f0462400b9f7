//! One tick's metrics onto the bus: system and task metrics every tick (stream FLEET_METRICS,
//! and the state bucket when they change), per-worker metrics as batches of what changed
//! (core NATS) and, every `sample_secs`, a sample of every worker (FLEET_METRICS). The
//! batches' rules are on [`WorkerMetricsBatch`].

use crate::ProcessorConfig;
use anyhow::Context as _;
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use shared::fleet::{FleetState, FleetSummary, Limits};
use shared::metrics::{WorkerMetrics, WorkerMetricsBatch};
use shared::nats::state_keys;
use shared::service::Context;
use shared::{Envelope, codec, nats};
use std::collections::HashMap;

/// Workers per batch message to begin with; halved while a message is over [`MAX_BYTES`].
const WORKERS_PER_PART: usize = 512;
/// A batch message stays well under the server's 1 MiB default `max_payload`.
const MAX_BYTES: usize = 256 * 1024;

pub struct Publisher {
    context: Context,
    bucket: async_nats::jetstream::kv::Store,
    worker_metrics: bool,
    sample_ms: i64,
    /// What readers were last told of each worker: a change batch carries only what differs.
    told: HashMap<String, WorkerMetrics>,
    /// The tick of the previous per-worker batch.
    previous: i64,
    /// What the state bucket holds under `system` and `tasks`, to write only on change.
    stored_system: Option<shared::metrics::SystemMetrics>,
    stored_tasks: Option<shared::metrics::TaskMetrics>,
}

impl Publisher {
    pub fn new(context: &Context, bucket: async_nats::jetstream::kv::Store, config: &ProcessorConfig) -> Self {
        Self {
            context: context.clone(),
            bucket,
            worker_metrics: config.worker_metrics,
            sample_ms: config.sample_secs.max(1) as i64 * 1000,
            told: HashMap::new(),
            previous: 0,
            stored_system: None,
            stored_tasks: None,
        }
    }

    /// One tick: the fleet's metrics from `fleet` (a processor that folds the whole fleet,
    /// or the fleet tier), and the per-worker metrics of `workers`' state (a processor that
    /// folds, the whole fleet or a partition), with the workers retired this tick.
    pub async fn tick(
        &mut self,
        fleet: Option<&FleetSummary>,
        workers: Option<(&FleetState, &[String])>,
        now: i64,
        limits: &Limits,
    ) -> anyhow::Result<()> {
        if let (Some((state, retired)), true) = (workers, self.worker_metrics) {
            // Out first: readers of these (one worker's page) wait for nothing but the tick.
            self.workers(state, now, retired, limits).await?;
        }
        let Some(fleet) = fleet else { return Ok(()) };
        let subjects = self.context.subjects.clone();
        let system = fleet.system_metrics();
        let system_stored = self.send(subjects.metrics_system(), now, &system).await?;
        let tasks = fleet.task_metrics(limits.max_tasks_tracked);
        let tasks_stored = self.send(subjects.metrics_tasks(), now, &tasks).await?;
        system_stored.await.context("storing system metrics")?;
        tasks_stored.await.context("storing task metrics")?;
        let unchanged = |stored: &shared::metrics::SystemMetrics| {
            shared::metrics::SystemMetrics { time: system.time, events_seq: system.events_seq, ..stored.clone() }
                == system
        };
        if !self.stored_system.as_ref().is_some_and(unchanged) {
            self.put(state_keys::SYSTEM, now, &system).await?;
            self.stored_system = Some(system);
        }
        let unchanged = |stored: &shared::metrics::TaskMetrics| {
            shared::metrics::TaskMetrics { time: tasks.time, ..stored.clone() } == tasks
        };
        if !self.stored_tasks.as_ref().is_some_and(unchanged) {
            self.put(state_keys::TASKS, now, &tasks).await?;
            self.stored_tasks = Some(tasks);
        }
        Ok(())
    }

    /// A partition's summary for the fleet tier (core NATS: the next tick sends another).
    pub async fn summary(&self, partition: u32, now: i64, summary: &FleetSummary) -> anyhow::Result<()> {
        let payload = codec::encode(&Envelope::new(now, "processor", summary))?;
        let subject = self.context.subjects.metrics_partition(partition);
        self.context.client.publish(subject, payload).await.context("publishing the partition summary")?;
        Ok(())
    }

    async fn workers(
        &mut self,
        state: &FleetState,
        now: i64,
        retired: &[String],
        limits: &Limits,
    ) -> anyhow::Result<()> {
        // Samples fall on wall-clock multiples of the interval, so restarts keep the grid.
        let sample = self.previous == 0 || now.div_euclid(self.sample_ms) != self.previous.div_euclid(self.sample_ms);
        let mut batch_workers = Vec::new();
        for (worker_id, worker) in &state.workers {
            let metrics = worker.metrics(worker_id, now, limits);
            let changed = self.told.get(worker_id).is_none_or(|told| told.differs_from(&metrics));
            if sample || changed {
                batch_workers.push(metrics);
            }
        }
        for worker_id in retired {
            self.told.remove(worker_id);
        }
        let partition = state.partition.index;
        let parts = encode_parts(partition, now, self.previous, sample, &batch_workers, retired)?;
        if sample {
            // Stored, acknowledged and with derived ids: a resend is a duplicate.
            let mut acks = Vec::with_capacity(parts.len());
            for (part, (id, payload)) in parts.into_iter().enumerate() {
                let subject = self.context.subjects.metrics_worker_sample(partition, part as u32);
                acks.push(nats::publish_bytes(&self.context.jetstream, subject, &id, payload).await?);
            }
            for ack in acks {
                ack.await.context("storing a worker sample")?;
            }
        } else {
            for (_, payload) in parts {
                self.context.client.publish(self.context.subjects.metrics_worker_changes(), payload).await?;
            }
        }
        for metrics in batch_workers {
            self.told.insert(metrics.worker_id.clone(), metrics);
        }
        self.previous = now;
        Ok(())
    }

    /// Publishes to the metrics stream; the future resolves once the server stored it.
    async fn send<T: Serialize>(
        &self,
        subject: String,
        now: i64,
        value: &T,
    ) -> anyhow::Result<async_nats::jetstream::context::PublishAckFuture> {
        let envelope = Envelope::new(now, "processor", value);
        let payload = codec::encode(&envelope)?;
        nats::publish_bytes(&self.context.jetstream, subject, &envelope.id, payload).await
    }

    async fn put<T: Serialize>(&self, key: &str, now: i64, value: &T) -> anyhow::Result<()> {
        let payload = codec::encode(&Envelope::new(now, "processor", value))?;
        self.bucket.put(key, payload).await.context("updating the state bucket")?;
        Ok(())
    }
}

/// The tick's batch as envelopes of at most [`MAX_BYTES`] each, with their ids:
/// `workers-<time>-<part>`, or `workers-<partition>-<time>-<part>` for a partition's.
fn encode_parts(
    partition: u32,
    time: i64,
    previous: i64,
    complete: bool,
    workers: &[WorkerMetrics],
    retired: &[String],
) -> anyhow::Result<Vec<(String, Bytes)>> {
    let mut per_part = WORKERS_PER_PART;
    loop {
        let chunks: Vec<&[WorkerMetrics]> =
            if workers.is_empty() { vec![&[]] } else { workers.chunks(per_part).collect() };
        let parts = chunks.len() as u32;
        let mut encoded = Vec::with_capacity(chunks.len());
        for (part, chunk) in chunks.into_iter().enumerate() {
            let batch = WorkerMetricsBatch {
                time,
                previous,
                complete,
                part: part as u32,
                parts,
                workers: chunk.to_vec(),
                retired: if part == 0 { retired.to_vec() } else { Vec::new() },
                partition,
            };
            let id = match partition {
                0 => format!("workers-{time}-{part}"),
                _ => format!("workers-{partition}-{time}-{part}"),
            };
            let payload = codec::encode(&Envelope::with_id(id.clone(), time, "processor", &batch))?;
            encoded.push((id, payload));
        }
        if per_part == 1 || encoded.iter().all(|(_, payload)| payload.len() <= MAX_BYTES) {
            return Ok(encoded);
        }
        per_part /= 2;
    }
}

/// Removes the per-worker keys an older processor kept in the state bucket.
pub async fn purge_legacy_worker_keys(bucket: &async_nats::jetstream::kv::Store) -> anyhow::Result<()> {
    let keys: Vec<String> = bucket
        .keys()
        .await
        .context("listing the state bucket")?
        .filter_map(|key| async move { key.ok().filter(|key| key.starts_with(state_keys::LEGACY_WORKER_PREFIX)) })
        .collect()
        .await;
    for key in &keys {
        bucket.purge(key).await.with_context(|| format!("removing {key} from the state bucket"))?;
    }
    if !keys.is_empty() {
        tracing::info!(keys = keys.len(), "removed per-worker keys left by an older processor");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::metrics::{WorkerPicture, WorkerStatus};

    fn worker(id: usize, cpu_pct: f64) -> WorkerMetrics {
        WorkerMetrics {
            time: 0,
            worker_id: format!("w-{id:05}"),
            status: WorkerStatus::Busy,
            capabilities: None,
            cpu_pct,
            gpu_pct: None,
            memory_pct: 10.0,
            network_pct: Some(1.0),
            active_tasks: 1,
            queued_tasks: 0,
            completed: 3,
            failed: 0,
            mean_task_ms: 100.0,
            tasks_per_hour: 3.0,
            success_rate: 1.0,
            health_score: 100.0,
            uptime_secs: 5.0,
            last_seen: 0,
        }
    }

    fn decode(parts: &[(String, Bytes)]) -> Vec<WorkerMetricsBatch> {
        parts.iter().map(|(_, payload)| codec::decode_envelope(payload).expect("decodes").payload).collect()
    }

    #[test]
    fn a_large_fleet_is_split_under_the_size_bound_and_reassembles() {
        let workers: Vec<WorkerMetrics> = (0..10_000).map(|id| worker(id, 50.0)).collect();
        let parts = encode_parts(0, 10_000, 9_000, true, &workers, &[]).expect("encodes");
        assert!(parts.len() >= 10_000 / WORKERS_PER_PART, "{} parts", parts.len());
        assert!(parts.iter().all(|(_, payload)| payload.len() <= MAX_BYTES));
        let mut picture = WorkerPicture::default();
        picture.apply(WorkerMetricsBatch { time: 1, workers: vec![worker(99_999, 1.0)], ..Default::default() });
        for batch in decode(&parts) {
            picture.apply(batch);
        }
        assert_eq!(picture.workers.len(), 10_000, "a complete sample drops workers it does not carry");
        assert!(!picture.workers.contains_key("w-99999"));
    }

    #[test]
    fn changes_carry_only_what_changed_and_retirements() {
        let mut picture = WorkerPicture::default();
        let all: Vec<WorkerMetrics> = (0..3).map(|id| worker(id, 50.0)).collect();
        for batch in decode(&encode_parts(0, 1_000, 0, true, &all, &[]).expect("encodes")) {
            picture.apply(batch);
        }
        let moved = worker(1, 90.0);
        assert!(moved.differs_from(&all[1]));
        assert!(!WorkerMetrics { time: 5, uptime_secs: 9.0, ..all[1].clone() }.differs_from(&all[1]));
        for batch in decode(&encode_parts(0, 2_000, 1_000, false, &[moved], &["w-00002".into()]).expect("encodes")) {
            picture.apply(batch);
        }
        assert_eq!(picture.workers.len(), 2);
        assert_eq!(picture.workers["w-00001"].cpu_pct, 90.0);
        assert_eq!(picture.workers["w-00000"].cpu_pct, 50.0, "absent: unchanged");
    }
}
