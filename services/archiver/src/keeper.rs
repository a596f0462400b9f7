//! The events stream into the archive. Lifecycle events are kept whole; heartbeats are
//! thinned to those that can change a status (`shared::fleet::Thinner`). Every event is also
//! folded into the fleet's state, with the very fold the processor uses: its finished tasks
//! become rows of `tasks` (all of them, not the processor's capped lists), and every
//! `snapshot_every` of event time a snapshot of it goes into `fleet_snapshots`, from which
//! the archive replays the fleet as it was at any instant (`history`).

use crate::rows;
use arrow::record_batch::RecordBatch;
use shared::Envelope;
use shared::event::Event;
use shared::fleet::{FleetState, Limits, Thinner};
use shared::metrics::FinishedTask;

/// How far ahead of this machine's clock an event's time may move the archive's clock.
const CLOCK_SKEW_MS: i64 = 60_000;

/// Finished tasks a snapshot lists: the archive keeps every one in `tasks` already.
pub const TASKS_LISTED: usize = 50;

pub struct Keeper {
    thinner: Thinner,
    fleet: FleetState,
    limits: Limits,
    /// The last sequence folded into `fleet`.
    folded: u64,
    /// The newest event time seen: the stream's clock.
    watermark: i64,
    snapshot_every_ms: i64,
    last_snapshot: i64,
    /// Heartbeats seen and kept, for the health report.
    pub heartbeats: (u64, u64),
}

/// What one chunk of the stream becomes.
pub struct Shaped {
    pub batches: Vec<(&'static str, RecordBatch)>,
    /// When the chunk's tasks finished, for the late-row check of `tasks`.
    pub finished_at: Vec<i64>,
}

impl Keeper {
    /// A keeper that carries on from `fleet`, folded up to sequence `folded`.
    pub fn new(limits: Limits, snapshot_every_ms: i64, fleet: FleetState, folded: u64) -> Self {
        Self {
            thinner: Thinner::new(limits.clone()),
            fleet,
            limits,
            folded,
            watermark: 0,
            snapshot_every_ms,
            last_snapshot: 0,
            heartbeats: (0, 0),
        }
    }

    /// Shapes one chunk of the stream (events in stream order, up to `last_seq`).
    pub fn shape(&mut self, events: Vec<(u64, Envelope<Event>)>, last_seq: u64) -> anyhow::Result<Shaped> {
        let mut kept = Vec::with_capacity(events.len());
        let mut finished: Vec<FinishedTask> = Vec::new();
        // One envelope from a clock far ahead must not retire the fleet or stop snapshots.
        let latest = shared::now_ms() + CLOCK_SKEW_MS;
        for (seq, envelope) in events {
            // Folded already: the state was rebuilt from the archive up to here.
            if seq <= self.folded {
                continue;
            }
            self.watermark = self.watermark.max(envelope.time.min(latest));
            // Clock ticks only move time on; the archive has no use for a row per tick.
            if matches!(envelope.payload, Event::Clock {}) {
                continue;
            }
            finished.extend(self.fleet.apply(envelope.time, &envelope.payload));
            let heartbeat = matches!(envelope.payload, Event::Heartbeat { .. });
            let out = self.thinner.offer(seq, envelope);
            if heartbeat {
                self.heartbeats.0 += 1;
                self.heartbeats.1 += out.len() as u64;
            }
            kept.extend(out);
        }
        let due = self.thinner.due(self.watermark);
        self.heartbeats.1 += due.len() as u64;
        kept.extend(due);
        kept.sort_by_key(|(seq, _)| *seq);
        self.fleet.expire(self.watermark, &self.limits);
        self.folded = self.folded.max(last_seq);
        let mut batches = vec![("events", rows::events_batch(&kept)?), ("tasks", rows::tasks_batch(&finished)?)];
        if self.watermark - self.last_snapshot >= self.snapshot_every_ms {
            self.last_snapshot = self.watermark;
            let state = rows::encode_snapshot(&self.fleet)?;
            batches.push(("fleet_snapshots", rows::snapshot_batch(self.watermark, self.folded, &state)?));
        }
        Ok(Shaped { batches, finished_at: finished.iter().map(|task| task.finished_at).collect() })
    }

    /// The heartbeats still held back, to keep at shutdown.
    pub fn drain(&mut self) -> anyhow::Result<Vec<(&'static str, RecordBatch)>> {
        let kept = self.thinner.drain();
        self.heartbeats.1 += kept.len() as u64;
        Ok(vec![("events", rows::events_batch(&kept)?)])
    }
}

/// The fleet as the archive holds it at sequence `up_to`: the newest snapshot at or below
/// it, then the archived events after it, folded.
pub fn rebuild(connection: &duckdb::Connection, up_to: u64, limits: &Limits) -> anyhow::Result<(FleetState, u64)> {
    let (from, mut fleet) = match rows::snapshot_at_most(connection, up_to)? {
        Some((seq, state)) => (seq, rows::decode_snapshot(&state)?),
        None => (0, FleetState::new(limits.max_tasks_tracked)),
    };
    let mut watermark = 0;
    for (_, time, event) in rows::events_between(connection, from, up_to)? {
        watermark = watermark.max(time);
        fleet.apply(time, &event);
    }
    if watermark > 0 {
        fleet.expire(watermark, limits);
    }
    Ok((fleet, up_to))
}
