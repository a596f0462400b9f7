//! Roll-ups and retention, run by the active archiver every minute (`maintain_every_secs`).
//!
//! Raw rows (system metrics every tick, worker samples every 10 s, finished tasks) are
//! rolled up into one-minute buckets (min, mean, max, last, count; for tasks counts, sums
//! and maxima), and minutes into hours. A minute is rolled up once the newest row of its
//! table is `late_secs` past it: rows later than that still land in the raw table but not
//! in the roll-up, and are counted (`archiver_late_rows_total`). Retention then deletes what
//! is past each table's window.

use crate::store::Store;
use duckdb::Connection;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long each kind of row is kept (`[archiver]` settings).
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Raw metric samples (system metrics each tick, worker samples), hours.
    pub raw_hours: u32,
    /// One-minute roll-ups, days.
    pub minute_days: u32,
    /// One-hour roll-ups, days.
    pub hour_days: u32,
    /// Events, finished tasks and fleet snapshots, days.
    pub events_days: u32,
    /// Alert history, days.
    pub alert_days: u32,
    /// How late a row may come and still be rolled up, s.
    pub late_secs: u32,
    /// Keep task events for `events_days`; else only until a fleet snapshot covers them.
    pub task_detail: bool,
}

/// How far each raw table is rolled up (ms), shared with the shapers that count late rows.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<BTreeMap<&'static str, i64>>>);

impl Progress {
    /// How many of `times` fall before what `table`'s roll-up already covers.
    pub fn late(&self, table: &str, times: &[i64]) -> u64 {
        let done = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(table).copied();
        done.map_or(0, |done| times.iter().filter(|time| **time < done).count() as u64)
    }

    fn set(&self, table: &'static str, done: i64) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(table, done);
    }
}

/// A raw table and how its minutes and hours are rolled up.
struct Source {
    table: &'static str,
    column: &'static str,
    /// `INSERT ... SELECT` of one-minute buckets from the raw table, for `[?, ?)` in µs.
    minutes: &'static str,
    /// The same for hours, from the minute roll-ups.
    hours: &'static str,
}

const SOURCES: [Source; 3] = [
    Source {
        table: "system_metrics",
        column: "timestamp",
        minutes: "INSERT INTO system_rollups SELECT 'minute', time_bucket(INTERVAL 1 minute, timestamp), metric_name,
            min(metric_value), avg(metric_value), max(metric_value), arg_max(metric_value, timestamp), count(*)
            FROM system_metrics WHERE timestamp >= make_timestamp(?::BIGINT) AND timestamp < make_timestamp(?::BIGINT) GROUP BY ALL",
        hours: "INSERT INTO system_rollups SELECT 'hour', time_bucket(INTERVAL 1 hour, bucket), metric_name,
            min(min), sum(mean * count) / sum(count), max(max), arg_max(last, bucket), sum(count)
            FROM system_rollups WHERE resolution = 'minute' AND bucket >= make_timestamp(?::BIGINT) AND bucket < make_timestamp(?::BIGINT) GROUP BY ALL",
    },
    Source {
        table: "worker_samples",
        column: "timestamp",
        minutes: "INSERT INTO worker_rollups SELECT 'minute', time_bucket(INTERVAL 1 minute, timestamp), worker_id, metric_name,
            min(metric_value), avg(metric_value), max(metric_value), arg_max(metric_value, timestamp), count(*)
            FROM worker_metrics WHERE timestamp >= make_timestamp(?::BIGINT) AND timestamp < make_timestamp(?::BIGINT) GROUP BY ALL",
        hours: "INSERT INTO worker_rollups SELECT 'hour', time_bucket(INTERVAL 1 hour, bucket), worker_id, metric_name,
            min(min), sum(mean * count) / sum(count), max(max), arg_max(last, bucket), sum(count)
            FROM worker_rollups WHERE resolution = 'minute' AND bucket >= make_timestamp(?::BIGINT) AND bucket < make_timestamp(?::BIGINT) GROUP BY ALL",
    },
    Source {
        table: "tasks",
        column: "finished_at",
        minutes: "INSERT INTO task_rollups SELECT 'minute', time_bucket(INTERVAL 1 minute, finished_at), family, model, hardware,
            count(*) FILTER (succeeded), count(*) FILTER (NOT succeeded), sum(queue_ms), max(queue_ms),
            sum(processing_ms) FILTER (succeeded), max(processing_ms) FILTER (succeeded), sum(total_ms)
            FROM tasks WHERE finished_at >= make_timestamp(?::BIGINT) AND finished_at < make_timestamp(?::BIGINT) GROUP BY ALL",
        hours: "INSERT INTO task_rollups SELECT 'hour', time_bucket(INTERVAL 1 hour, bucket), family, model, hardware,
            sum(completed), sum(failed), sum(queue_ms_sum), max(queue_ms_max), sum(processing_ms_sum),
            max(processing_ms_max), sum(total_ms_sum)
            FROM task_rollups WHERE resolution = 'minute' AND bucket >= make_timestamp(?::BIGINT) AND bucket < make_timestamp(?::BIGINT) GROUP BY ALL",
    },
];

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 3_600_000_000;

/// Rolls up and prunes every `every` (and once at start) until `active` ends.
pub async fn maintain(
    store: Store,
    progress: Progress,
    retention: Retention,
    every: std::time::Duration,
    counters: shared::telemetry::Registry,
    active: CancellationToken,
) -> anyhow::Result<()> {
    let pruned = counters.counter("archiver_rows_pruned_total");
    let mut every = tokio::time::interval(every);
    loop {
        tokio::select! {
            biased;
            _ = active.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        let (progress_now, retention_now) = (progress.clone(), retention.clone());
        let outcome = store
            .write(move |connection| {
                roll_up(connection, &progress_now, i64::from(retention_now.late_secs) * 1_000_000)?;
                let deleted = prune(connection, &retention_now, shared::now_ms() * 1000)?;
                // What DuckDB holds in memory (bounded by its memory_limit), beside the RSS.
                let memory: i64 = connection.query_row(
                    "SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory()",
                    [],
                    |row| row.get(0),
                )?;
                Ok((deleted, memory))
            })
            .await;
        match outcome {
            Ok((deleted, memory)) => {
                counters.set_gauge("archiver_duckdb_memory_bytes", &[], memory as f64);
                if deleted > 0 {
                    pruned.add(deleted as u64);
                    info!(deleted, "retention pruned old rows");
                }
            }
            // Derived rows: the next minute tries again, from where this one left off.
            Err(err) => warn!(error = format!("{err:#}"), "roll-up or retention failed"),
        }
    }
}

/// Rolls every source's complete minutes and hours up, each step committed with its progress.
pub fn roll_up(connection: &mut Connection, progress: &Progress, late_us: i64) -> anyhow::Result<()> {
    for source in &SOURCES {
        let newest: Option<i64> = connection.query_row(
            &format!("SELECT epoch_us(max({})) FROM {}", source.column, source.table),
            [],
            |row| row.get(0),
        )?;
        // A clock running ahead must not mark minutes done before they happened.
        let Some(newest) = newest.map(|newest| newest.min(shared::now_ms() * 1000)) else { continue };
        let minutes_key = format!("{}.minute", source.table);
        let oldest: i64 = connection.query_row(
            &format!("SELECT epoch_us(min({})) FROM {}", source.column, source.table),
            [],
            |row| row.get(0),
        )?;
        let minutes_from = done_until(connection, &minutes_key)?.unwrap_or(oldest.div_euclid(MINUTE_US) * MINUTE_US);
        let minutes_to = (newest - late_us).div_euclid(MINUTE_US) * MINUTE_US;
        if minutes_to > minutes_from {
            let transaction = connection.transaction()?;
            transaction.execute(source.minutes, [minutes_from, minutes_to])?;
            set_done(&transaction, &minutes_key, minutes_to)?;
            transaction.commit()?;
        }
        let minutes_done = minutes_to.max(minutes_from);
        progress.set(source.table, minutes_done / 1000);
        let hours_key = format!("{}.hour", source.table);
        let hours_from = done_until(connection, &hours_key)?.unwrap_or(oldest.div_euclid(HOUR_US) * HOUR_US);
        let hours_to = minutes_done.div_euclid(HOUR_US) * HOUR_US;
        if hours_to > hours_from {
            let transaction = connection.transaction()?;
            transaction.execute(source.hours, [hours_from, hours_to])?;
            set_done(&transaction, &hours_key, hours_to)?;
            transaction.commit()?;
        }
    }
    Ok(())
}

fn done_until(connection: &Connection, name: &str) -> anyhow::Result<Option<i64>> {
    let mut statement = connection.prepare("SELECT epoch_us(done_until) FROM rollup_progress WHERE name = ?")?;
    let mut rows = statement.query([name])?;
    Ok(match rows.next()? {
        Some(row) => Some(row.get(0)?),
        None => None,
    })
}

fn set_done(connection: &Connection, name: &str, until_us: i64) -> anyhow::Result<()> {
    connection.execute(
        "INSERT OR REPLACE INTO rollup_progress VALUES (?, make_timestamp(?::BIGINT))",
        duckdb::params![name, until_us],
    )?;
    Ok(())
}

/// Deletes what is past each table's window at `now_us`; returns how many rows.
pub fn prune(connection: &Connection, retention: &Retention, now_us: i64) -> anyhow::Result<usize> {
    const DAY_US: i64 = 24 * HOUR_US;
    let raw = now_us - i64::from(retention.raw_hours) * HOUR_US;
    let minutes = now_us - i64::from(retention.minute_days) * DAY_US;
    let hours = now_us - i64::from(retention.hour_days) * DAY_US;
    let events = now_us - i64::from(retention.events_days) * DAY_US;
    let alerts = now_us - i64::from(retention.alert_days) * DAY_US;
    let mut windows = vec![
        ("system_metrics", "timestamp", raw),
        ("worker_samples", "timestamp", raw),
        ("events", "time", events),
        ("tasks", "finished_at", events),
        ("fleet_snapshots", "time", events),
        ("alerts", "time", alerts),
    ];
    for table in ["system_rollups", "worker_rollups", "task_rollups"] {
        windows.push((table, "resolution = 'minute' AND bucket", minutes));
        windows.push((table, "resolution = 'hour' AND bucket", hours));
    }
    let mut deleted = 0;
    for (table, column, before) in windows {
        let sql = format!("DELETE FROM {table} WHERE {column} < make_timestamp(?::BIGINT)");
        deleted += connection.execute(&sql, [before])?;
    }
    if !retention.task_detail {
        // A restart folds from the newest snapshot on, so the task events before it are
        // needed by nothing but a task's own history.
        deleted += connection.execute(
            "DELETE FROM events WHERE starts_with(type, 'task_')
             AND seq <= (SELECT coalesce(max(seq), 0) FROM fleet_snapshots)",
            [],
        )?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_task_detail_task_events_go_once_a_snapshot_covers_them() {
        let mut connection = Connection::open_in_memory().expect("open");
        crate::schema::migrate(&mut connection).expect("schema");
        let now_us = 10 * HOUR_US;
        let at = |seconds: i64| format!("make_timestamp({}::BIGINT)", now_us - seconds * 1_000_000);
        connection
            .execute_batch(&format!(
                "INSERT INTO events VALUES
                 (1, 'a', {t1}, 'demo', 'task_queued', NULL, 't-1', NULL),
                 (2, 'b', {t1}, 'demo', 'worker_registered', 'w-1', NULL, NULL),
                 (3, 'c', {t1}, 'demo', 'task_started', 'w-1', 't-1', NULL),
                 (4, 'd', {t2}, 'demo', 'task_completed', 'w-1', 't-1', NULL);
                 INSERT INTO fleet_snapshots VALUES ({t1}, 3, ''::BLOB);",
                t1 = at(60),
                t2 = at(30)
            ))
            .expect("rows");
        let retention = |task_detail| Retention {
            raw_hours: 24,
            minute_days: 30,
            hour_days: 365,
            events_days: 7,
            alert_days: 7,
            late_secs: 120,
            task_detail,
        };
        assert_eq!(prune(&connection, &retention(true), now_us).expect("prunes"), 0, "detail kept");
        assert_eq!(prune(&connection, &retention(false), now_us).expect("prunes"), 2);
        let left: Vec<u64> = connection
            .prepare("SELECT seq FROM events ORDER BY seq")
            .expect("query")
            .query_map([], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("seqs");
        assert_eq!(left, vec![2, 4], "worker events stay, and task events after the snapshot");
    }
}
