//! The archive's schema and the migrations that bring an older file up to it, applied by
//! the archiver when it opens the file (each in one transaction). `schemas/archive.md`
//! documents the tables for the people and programs that query them.

use anyhow::Context as _;
use duckdb::Connection;

/// The version this build writes, kept in `schema_version`.
pub const VERSION: i32 = 4;

/// The metrics of a worker sample, as columns of `worker_samples` and names in
/// `worker_metrics` (`WorkerMetrics::flatten`).
pub const WORKER_METRICS: [&str; 13] = [
    "cpu_pct",
    "gpu_pct",
    "memory_pct",
    "network_pct",
    "active_tasks",
    "queued_tasks",
    "completed",
    "failed",
    "mean_task_ms",
    "tasks_per_hour",
    "success_rate",
    "health_score",
    "uptime_secs",
];

/// The tables and views of the current version (a new file gets these directly).
const CREATE: &str = "
CREATE TABLE events (
    seq UBIGINT NOT NULL, id VARCHAR NOT NULL, time TIMESTAMP NOT NULL, source VARCHAR NOT NULL,
    type VARCHAR NOT NULL, worker_id VARCHAR, task_id VARCHAR, detail JSON);
CREATE TABLE alerts (
    seq UBIGINT NOT NULL, id VARCHAR NOT NULL, time TIMESTAMP NOT NULL, alert_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL, severity VARCHAR NOT NULL, state VARCHAR NOT NULL, target VARCHAR NOT NULL,
    summary VARCHAR NOT NULL, value DOUBLE, threshold DOUBLE);
CREATE TABLE system_metrics (timestamp TIMESTAMP NOT NULL, metric_name VARCHAR NOT NULL, metric_value DOUBLE);
CREATE TABLE stream_offsets (stream VARCHAR PRIMARY KEY, seq UBIGINT NOT NULL);
";

/// What version 3 added, also run on a new file after [`CREATE`].
const VERSION_3: &str = "
ALTER TABLE alerts ADD COLUMN alert JSON;
CREATE TABLE worker_samples (
    timestamp TIMESTAMP NOT NULL, worker_id VARCHAR NOT NULL, status VARCHAR,
    cpu_pct DOUBLE, gpu_pct DOUBLE, memory_pct DOUBLE, network_pct DOUBLE, active_tasks DOUBLE,
    queued_tasks DOUBLE, completed DOUBLE, failed DOUBLE, mean_task_ms DOUBLE, tasks_per_hour DOUBLE,
    success_rate DOUBLE, health_score DOUBLE, uptime_secs DOUBLE);
CREATE VIEW worker_metrics AS
    SELECT timestamp, worker_id, metric_name, metric_value FROM (
        UNPIVOT worker_samples ON cpu_pct, gpu_pct, memory_pct, network_pct, active_tasks, queued_tasks,
            completed, failed, mean_task_ms, tasks_per_hour, success_rate, health_score, uptime_secs
        INTO NAME metric_name VALUE metric_value);
CREATE TABLE tasks (
    finished_at TIMESTAMP NOT NULL, task_id VARCHAR NOT NULL, model VARCHAR NOT NULL, family VARCHAR,
    hardware VARCHAR, worker_id VARCHAR, priority UTINYINT, succeeded BOOLEAN NOT NULL,
    queue_ms DOUBLE, processing_ms DOUBLE, total_ms DOUBLE, error VARCHAR);
CREATE VIEW task_metrics AS
    SELECT finished_at AS timestamp, task_id, metric_name, metric_value FROM (
        UNPIVOT (SELECT finished_at, task_id, queue_ms, processing_ms, total_ms, succeeded::DOUBLE AS succeeded FROM tasks)
        ON queue_ms, processing_ms, total_ms, succeeded INTO NAME metric_name VALUE metric_value);
CREATE TABLE fleet_snapshots (time TIMESTAMP NOT NULL, seq UBIGINT NOT NULL, state BLOB NOT NULL);
CREATE TABLE system_rollups (
    resolution VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, metric_name VARCHAR NOT NULL,
    min DOUBLE, mean DOUBLE, max DOUBLE, last DOUBLE, count UBIGINT NOT NULL);
CREATE TABLE worker_rollups (
    resolution VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, worker_id VARCHAR NOT NULL, metric_name VARCHAR NOT NULL,
    min DOUBLE, mean DOUBLE, max DOUBLE, last DOUBLE, count UBIGINT NOT NULL);
CREATE TABLE task_rollups (
    resolution VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, family VARCHAR, model VARCHAR NOT NULL, hardware VARCHAR,
    completed UBIGINT NOT NULL, failed UBIGINT NOT NULL, queue_ms_sum DOUBLE, queue_ms_max DOUBLE,
    processing_ms_sum DOUBLE, processing_ms_max DOUBLE, total_ms_sum DOUBLE);
CREATE TABLE rollup_progress (name VARCHAR PRIMARY KEY, done_until TIMESTAMP NOT NULL);
";

/// `(version, sql)`: the SQL takes a file at `version - 1` to `version`.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        2,
        // Events lose `subject` (it follows from the type and ids) and `payload` becomes
        // `detail`: only the fields beside `type`, `worker_id` and `task_id`, NULL when none.
        "CREATE TABLE events_v2 AS SELECT seq, id, time, source, type, worker_id, task_id,
             nullif(json_merge_patch(payload::JSON, '{\"type\": null, \"worker_id\": null, \"task_id\": null}'), '{}'::JSON) AS detail
         FROM events;
         DROP TABLE events;
         ALTER TABLE events_v2 RENAME TO events;",
    ),
    (
        3,
        // Per-worker samples and finished tasks become wide tables (a row a sample, a row a
        // task) and the seed's long tables views over them; roll-ups and fleet snapshots
        // arrive. The long rows of version 2 are pivoted across.
        "ALTER TABLE worker_metrics RENAME TO worker_metrics_v2;
         ALTER TABLE task_metrics RENAME TO task_metrics_v2;
         __VERSION_3__
         INSERT INTO worker_samples
             SELECT timestamp, worker_id, NULL,
                 max(metric_value) FILTER (metric_name = 'cpu_pct'), max(metric_value) FILTER (metric_name = 'gpu_pct'),
                 max(metric_value) FILTER (metric_name = 'memory_pct'), max(metric_value) FILTER (metric_name = 'network_pct'),
                 max(metric_value) FILTER (metric_name = 'active_tasks'), max(metric_value) FILTER (metric_name = 'queued_tasks'),
                 max(metric_value) FILTER (metric_name = 'completed'), max(metric_value) FILTER (metric_name = 'failed'),
                 max(metric_value) FILTER (metric_name = 'mean_task_ms'), max(metric_value) FILTER (metric_name = 'tasks_per_hour'),
                 max(metric_value) FILTER (metric_name = 'success_rate'), max(metric_value) FILTER (metric_name = 'health_score'),
                 max(metric_value) FILTER (metric_name = 'uptime_secs')
             FROM worker_metrics_v2 GROUP BY timestamp, worker_id;
         INSERT INTO tasks
             SELECT timestamp, task_id, 'unknown', NULL, NULL, NULL, NULL,
                 coalesce(max(metric_value) FILTER (metric_name = 'succeeded'), 0) = 1,
                 max(metric_value) FILTER (metric_name = 'queue_ms'), max(metric_value) FILTER (metric_name = 'processing_ms'),
                 max(metric_value) FILTER (metric_name = 'total_ms'), NULL
             FROM task_metrics_v2 GROUP BY timestamp, task_id;
         DROP TABLE worker_metrics_v2;
         DROP TABLE task_metrics_v2;",
    ),
    (
        4,
        // Finished tasks say what they waited for (task ids, comma-separated) and how often
        // they were retried.
        "ALTER TABLE tasks ADD COLUMN depends_on VARCHAR;
         ALTER TABLE tasks ADD COLUMN attempts UTINYINT;",
    ),
];

/// Creates the tables of a new file or migrates an older one; returns the version found.
pub fn migrate(connection: &mut Connection) -> anyhow::Result<i32> {
    let found = version(connection)?;
    anyhow::ensure!(
        found <= VERSION,
        "the archive is at schema version {found}, newer than the {VERSION} this archiver writes: run a newer archiver"
    );
    if found == 0 {
        let transaction = connection.transaction()?;
        transaction.execute_batch(CREATE).context("creating the archive schema")?;
        transaction.execute_batch(VERSION_3).context("creating the archive schema")?;
        for (_, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > 3) {
            transaction.execute_batch(sql).context("creating the archive schema")?;
        }
        set_version(&transaction, VERSION)?;
        transaction.commit()?;
        return Ok(0);
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        let transaction = connection.transaction()?;
        let sql = sql.replace("__VERSION_3__", VERSION_3);
        transaction
            .execute_batch(&sql)
            .with_context(|| format!("migrating the archive to schema version {version}"))?;
        set_version(&transaction, *version)?;
        transaction.commit()?;
        tracing::info!(version, "archive migrated");
    }
    Ok(found)
}

/// The file's version: from `schema_version`; 1 for a file from before versions were kept
/// (it has `events` but no `schema_version`); 0 for a new file.
fn version(connection: &Connection) -> anyhow::Result<i32> {
    let tables: Vec<String> = connection
        .prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if tables.iter().any(|table| table == "schema_version") {
        return Ok(connection.query_row("SELECT max(version) FROM schema_version", [], |row| row.get(0))?);
    }
    Ok(if tables.iter().any(|table| table == "events") { 1 } else { 0 })
}

fn set_version(connection: &Connection, version: i32) -> anyhow::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)",
    )?;
    connection.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [version])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema of version 1, as archivers before versioning created it.
    const VERSION_1: &str = "
        CREATE TABLE events (seq UBIGINT NOT NULL, id VARCHAR NOT NULL, time TIMESTAMP NOT NULL,
            source VARCHAR NOT NULL, type VARCHAR NOT NULL, worker_id VARCHAR, task_id VARCHAR,
            subject VARCHAR NOT NULL, payload VARCHAR NOT NULL);
        INSERT INTO events VALUES
            (1, 'a', '2026-11-25 10:00:00', 'demo', 'task_started', 'w1', 't1', 'fleet.events.task.t1',
             '{\"type\":\"task_started\",\"task_id\":\"t1\",\"worker_id\":\"w1\"}'),
            (2, 'b', '2026-11-25 10:00:01', 'demo', 'task_failed', 'w1', 't1', 'fleet.events.task.t1',
             '{\"type\":\"task_failed\",\"task_id\":\"t1\",\"worker_id\":\"w1\",\"error\":\"oom\"}');
        CREATE TABLE alerts (seq UBIGINT NOT NULL, id VARCHAR NOT NULL, time TIMESTAMP NOT NULL, alert_id VARCHAR NOT NULL,
            rule VARCHAR NOT NULL, severity VARCHAR NOT NULL, state VARCHAR NOT NULL, target VARCHAR NOT NULL,
            summary VARCHAR NOT NULL, value DOUBLE, threshold DOUBLE);
        CREATE TABLE system_metrics (timestamp TIMESTAMP NOT NULL, metric_name VARCHAR NOT NULL, metric_value DOUBLE);
        CREATE TABLE worker_metrics (timestamp TIMESTAMP NOT NULL, worker_id VARCHAR NOT NULL, metric_name VARCHAR NOT NULL, metric_value DOUBLE);
        INSERT INTO worker_metrics VALUES ('2026-11-25 10:00:00', 'w1', 'cpu_pct', 42), ('2026-11-25 10:00:00', 'w1', 'memory_pct', 7);
        CREATE TABLE task_metrics (timestamp TIMESTAMP NOT NULL, task_id VARCHAR NOT NULL, metric_name VARCHAR NOT NULL, metric_value DOUBLE);
        INSERT INTO task_metrics VALUES ('2026-11-25 10:00:02', 't1', 'processing_ms', 900), ('2026-11-25 10:00:02', 't1', 'succeeded', 1);
        CREATE TABLE stream_offsets (stream VARCHAR PRIMARY KEY, seq UBIGINT NOT NULL);";

    #[test]
    fn a_version_1_file_is_migrated_and_keeps_its_events() {
        let mut connection = Connection::open_in_memory().expect("open");
        connection.execute_batch(VERSION_1).expect("a version 1 file");
        assert_eq!(migrate(&mut connection).expect("migrates"), 1);
        let details: Vec<Option<String>> = connection
            .prepare("SELECT detail::VARCHAR FROM events ORDER BY seq")
            .expect("query")
            .query_map([], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("details");
        assert_eq!(details, vec![None, Some("{\"error\":\"oom\"}".to_owned())]);
        let cpu: f64 = connection
            .query_row(
                "SELECT metric_value FROM worker_metrics WHERE worker_id = 'w1' AND metric_name = 'cpu_pct'",
                [],
                |row| row.get(0),
            )
            .expect("the long view over the pivoted samples");
        assert_eq!(cpu, 42.0);
        let (succeeded, processing): (bool, f64) = connection
            .query_row("SELECT succeeded, processing_ms FROM tasks WHERE task_id = 't1'", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .expect("the task row");
        assert_eq!((succeeded, processing), (true, 900.0));
        assert_eq!(version(&connection).expect("version"), VERSION);
        assert_eq!(migrate(&mut connection).expect("idempotent"), VERSION, "a second start changes nothing");
    }

    #[test]
    fn a_newer_file_is_refused() {
        let mut connection = Connection::open_in_memory().expect("open");
        migrate(&mut connection).expect("creates");
        set_version(&connection, VERSION + 1).expect("bump");
        assert!(migrate(&mut connection).is_err());
    }
}
