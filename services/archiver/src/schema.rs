//! The archive's schema and the migrations that bring an older file up to it, applied by
//! the archiver when it opens the file (each in one transaction). `schemas/archive.md`
//! documents the tables for the people and programs that query them.

use anyhow::Context as _;
use duckdb::Connection;

/// The version this build writes, kept in `schema_version`.
pub const VERSION: i32 = 2;

/// The tables of a new file, at [`VERSION`]. The three long metric tables are the seed's;
/// `stream_offsets` holds how far each stream is archived.
const CREATE: &str = "
CREATE TABLE events (
    seq UBIGINT NOT NULL, id VARCHAR NOT NULL, time TIMESTAMP NOT NULL, source VARCHAR NOT NULL,
    type VARCHAR NOT NULL, worker_id VARCHAR, task_id VARCHAR, detail JSON);
CREATE TABLE alerts (
    seq UBIGINT NOT NULL, id VARCHAR NOT NULL, time TIMESTAMP NOT NULL, alert_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL, severity VARCHAR NOT NULL, state VARCHAR NOT NULL, target VARCHAR NOT NULL,
    summary VARCHAR NOT NULL, value DOUBLE, threshold DOUBLE);
CREATE TABLE system_metrics (timestamp TIMESTAMP NOT NULL, metric_name VARCHAR NOT NULL, metric_value DOUBLE);
CREATE TABLE worker_metrics (timestamp TIMESTAMP NOT NULL, worker_id VARCHAR NOT NULL, metric_name VARCHAR NOT NULL, metric_value DOUBLE);
CREATE TABLE task_metrics (timestamp TIMESTAMP NOT NULL, task_id VARCHAR NOT NULL, metric_name VARCHAR NOT NULL, metric_value DOUBLE);
CREATE TABLE stream_offsets (stream VARCHAR PRIMARY KEY, seq UBIGINT NOT NULL);
";

/// `(version, sql)`: the SQL takes a file at `version - 1` to `version`.
const MIGRATIONS: &[(i32, &str)] = &[(
    2,
    // Events lose `subject` (it follows from the type and ids) and `payload` becomes
    // `detail`: only the fields beside `type`, `worker_id` and `task_id`, NULL when none.
    "CREATE TABLE events_v2 AS SELECT seq, id, time, source, type, worker_id, task_id,
         nullif(json_merge_patch(payload::JSON, '{\"type\": null, \"worker_id\": null, \"task_id\": null}'), '{}'::JSON) AS detail
     FROM events;
     DROP TABLE events;
     ALTER TABLE events_v2 RENAME TO events;",
)];

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
        set_version(&transaction, VERSION)?;
        transaction.commit()?;
        return Ok(0);
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql).with_context(|| format!("migrating the archive to schema version {version}"))?;
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
             '{\"type\":\"task_failed\",\"task_id\":\"t1\",\"worker_id\":\"w1\",\"error\":\"oom\"}');";

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
