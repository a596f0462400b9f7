//! The fleet as it was at a past instant: the newest archived snapshot before it, then the
//! archived events after it folded with the processor's own fold, with the clock moved on at
//! each of the processor's ticks in between, as it moved for the processor. Statuses and
//! counts are those the processor published at that tick; windowed figures agree as far as
//! thinned heartbeats allow (docs: `schemas/archive.md`).

use crate::rows;
use serde::Serialize;
use shared::alert::Alert;
use shared::fleet::{FleetState, Limits};
use shared::metrics::{SystemMetrics, WorkerMetrics};

/// The answer to `fleet.at`.
#[derive(Debug, Serialize)]
pub struct FleetAt {
    /// The instant asked for, and the processor's tick at or before it that is replayed.
    pub at: i64,
    pub tick: i64,
    /// The last event sequence folded.
    pub events_seq: u64,
    pub system: SystemMetrics,
    pub workers: Page<WorkerMetrics>,
    pub alerts_firing: Vec<Alert>,
}

/// Part of a list: `next_cursor` asks for the rest.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `None` when the archive holds nothing at or before `at`.
pub fn fleet_at(
    connection: &duckdb::Connection,
    at: i64,
    limits: &Limits,
    limit: usize,
    after_worker: Option<&str>,
) -> anyhow::Result<Option<FleetAt>> {
    let ticks = ticks(connection, "timestamp <= make_timestamp(?::BIGINT * 1000) ORDER BY timestamp DESC LIMIT 1", at)?;
    let (tick, up_to) = match ticks.first() {
        Some(tick) => *tick,
        // No processor ran: fold everything that happened by then.
        None => {
            let seq: Option<u64> = connection.query_row(
                "SELECT max(seq) FROM events WHERE time <= make_timestamp(?::BIGINT * 1000)",
                [at],
                |row| row.get(0),
            )?;
            match seq {
                Some(seq) => (at, seq),
                None => return Ok(None),
            }
        }
    };
    let (from, mut fleet) = match rows::snapshot_at_most(connection, up_to)? {
        Some((seq, state)) => (seq, rows::decode_snapshot(&state)?),
        None => (0, FleetState::new(limits.max_tasks_tracked)),
    };
    // The processor's ticks after the snapshot: at each, the clock moved (workers retire,
    // windows slide) before the events after it were folded.
    let between = ticks_after(connection, from, up_to)?;
    let mut next_tick = between.iter().peekable();
    for (seq, time, event) in rows::events_between(connection, from, up_to)? {
        while let Some((tick_time, _)) = next_tick.next_if(|(_, tick_seq)| *tick_seq < seq) {
            fleet.expire(*tick_time, limits);
        }
        fleet.apply(time, &event);
    }
    fleet.expire(tick, limits);
    let system = fleet.system_metrics(tick, up_to, limits);
    let all: Vec<&String> =
        fleet.workers.keys().filter(|worker_id| after_worker.is_none_or(|after| worker_id.as_str() > after)).collect();
    let items: Vec<WorkerMetrics> =
        all.iter().take(limit).map(|worker_id| fleet.workers[*worker_id].metrics(worker_id, tick, limits)).collect();
    let truncated = all.len() > limit;
    let workers = Page {
        next_cursor: truncated.then(|| items.last().map(|worker| worker.worker_id.clone())).flatten(),
        items,
        total: fleet.workers.len() as u64,
        truncated,
    };
    Ok(Some(FleetAt { at, tick, events_seq: up_to, system, workers, alerts_firing: firing_at(connection, at)? }))
}

/// `(tick time, events_seq)` of the processor's ticks matching `condition` (one `?`: ms).
fn ticks(connection: &duckdb::Connection, condition: &str, value: i64) -> anyhow::Result<Vec<(i64, u64)>> {
    let sql = format!(
        "SELECT epoch_ms(timestamp), metric_value::UBIGINT FROM system_metrics WHERE metric_name = 'events_seq' AND {condition}"
    );
    let mut statement = connection.prepare(&sql)?;
    let rows = statement.query_map([value], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The ticks whose events sequence lies in `(from, up_to]`, in order.
fn ticks_after(connection: &duckdb::Connection, from: u64, up_to: u64) -> anyhow::Result<Vec<(i64, u64)>> {
    let mut statement = connection.prepare(
        "SELECT epoch_ms(timestamp), metric_value::UBIGINT FROM system_metrics
         WHERE metric_name = 'events_seq' AND metric_value > ? AND metric_value <= ? ORDER BY timestamp",
    )?;
    let rows = statement.query_map([from as f64, up_to as f64], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The alerts firing at `at`: each alert's last change by then, where that is `firing`.
pub fn firing_at(connection: &duckdb::Connection, at: i64) -> anyhow::Result<Vec<Alert>> {
    let mut statement = connection.prepare(
        "SELECT alert::VARCHAR FROM alerts WHERE time <= make_timestamp(?::BIGINT * 1000) AND alert IS NOT NULL
         QUALIFY row_number() OVER (PARTITION BY alert_id ORDER BY seq DESC) = 1",
    )?;
    let rows = statement.query_map([at], |row| row.get::<_, String>(0))?;
    let mut firing = Vec::new();
    for row in rows {
        let alert: Alert = serde_json::from_str(&row?)?;
        if alert.state == shared::alert::AlertState::Firing {
            firing.push(alert);
        }
    }
    Ok(firing)
}
