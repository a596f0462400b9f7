//! `just bench`: the archive's read side on a week of a 1,000-worker fleet, and how fast the
//! archive grows.
//!
//! 1. A real segment: nats-server, the collector's demo fleet (`--workers`, default 1,000),
//!    processor, archiver and gateway for `--minutes` (default 3). Each table's rows and
//!    size (copied alone into a fresh DuckDB file) over the time it covers give the growth
//!    per day.
//! 2. The week around it, through the real schema with DuckDB SQL: the segment moves to
//!    3 days ago (its events renumbered after the filled ones, so the archive stays
//!    consistent), and the week is filled as the archiver would have left it: raw system
//!    metrics and worker samples for the last 24 hours, minute and hour roll-ups for 7 days,
//!    a lifecycle event per worker every `--event-every-secs` (10), a finished task per
//!    worker a minute, a fleet snapshot every 2 minutes.
//! 3. The archiver and gateway again; over HTTP, the median of 5 of: one worker's 7-day
//!    trend, the system's 7-day trend, the fleet as it was 3 days ago, and a 24-hour CSV
//!    export (every system metric, every second).
//!
//! `history-bench [--workers N] [--minutes N] [--event-every-secs N] [--growth-only 1]`

use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, get_json, wait_for};
use std::path::Path;
use std::time::{Duration, Instant};

const DAY_MS: i64 = 86_400_000;

#[tokio::main]
async fn main() {
    let (mut workers, mut minutes, mut event_every, mut growth_only) = (1000i64, 3u64, 10i64, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|value| value.parse::<i64>().ok());
        match arg.as_str() {
            "--workers" => workers = value.expect("--workers N"),
            "--minutes" => minutes = value.expect("--minutes N") as u64,
            "--event-every-secs" => event_every = value.expect("--event-every-secs N"),
            "--growth-only" => growth_only = value.expect("--growth-only 1") != 0,
            other => panic!("unknown argument {other}"),
        }
    }
    let nats = NatsServer::start();
    let db = nats.dir.path().join("fleetwatch.duckdb");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}/api");

    eprintln!("history-bench: a real segment of {workers} demo workers for {minutes} minutes");
    let recorded = real_segment(&nats, &db, port, workers, minutes).await;
    growth(&db, nats.dir.path(), workers);
    if growth_only {
        return;
    }

    let started = Instant::now();
    let connection = duckdb::Connection::open(&db).expect("open the archive");
    let now = shared::now_ms();
    let target = now - 3 * DAY_MS;
    fill(&connection, recorded, target, now, event_every);
    connection.execute_batch("CHECKPOINT").expect("checkpoint");
    drop(connection);
    let size = std::fs::metadata(&db).map(|meta| meta.len()).unwrap_or(0);
    eprintln!("filled a week in {:.0} s: {:.2} GB", started.elapsed().as_secs_f64(), size as f64 / 1e9);

    let db_arg = db.to_str().expect("utf-8 path");
    let _archiver = ServiceProcess::start("archiver", &nats, &["--db-path", db_arg]);
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port.to_string()]);
    let at = format!("{api}/fleet?at={target}");
    let fleet = wait_for("the archiver answering", || async { get_json(&at).await }).await;
    assert_eq!(fleet["system"]["workers"]["total"].as_i64(), Some(workers), "the fleet 3 days ago: {fleet}");
    let worker = fleet["workers"]["items"][0]["worker_id"].as_str().expect("a worker").to_owned();

    let week = format!("start_time={}&end_time={now}", now - 7 * DAY_MS);
    let timed = [
        ("one worker's 7-day trend", format!("{api}/metrics/workers/{worker}/history?{week}"), 200.0),
        ("the system's 7-day trend", format!("{api}/metrics/system/history?{week}"), 100.0),
        ("the fleet 3 days ago", at, 1000.0),
        (
            "24-hour CSV export, every system metric each second",
            format!(
                "{api}/metrics/system/history?start_time={}&end_time={now}&resolution=raw&interval=1s&format=csv",
                now - DAY_MS
            ),
            f64::INFINITY,
        ),
    ];
    println!(
        "history-bench: {workers} workers, a week in the archive ({:.2} GB), medians of 5 over HTTP",
        size as f64 / 1e9
    );
    for (what, url, goal_ms) in timed {
        let mut times = Vec::new();
        let mut shape = String::new();
        for _ in 0..5 {
            let started = Instant::now();
            let response = reqwest::get(&url).await.expect("answer");
            assert!(response.status().is_success(), "{what}: {}", response.status());
            let body = response.bytes().await.expect("body");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            shape = describe(&body);
        }
        times.sort_by(f64::total_cmp);
        let goal = if goal_ms.is_finite() { format!(" (goal under {goal_ms:.0} ms)") } else { String::new() };
        println!("  {what}: {:.0} ms{goal}; {shape}", times[2]);
    }
}

/// Runs the whole system for `minutes`; returns the instant, a little before the end, that
/// the bench later asks the past about.
async fn real_segment(nats: &NatsServer, db: &Path, port: u16, workers: i64, minutes: u64) -> i64 {
    let db = db.to_str().expect("utf-8 path");
    let workers_arg = workers.to_string();
    let mut processes = vec![
        ServiceProcess::start("collector", nats, &["--demo-workers", &workers_arg, "--http-port", "0"]),
        ServiceProcess::start("processor", nats, &[]),
        ServiceProcess::start("alerter", nats, &[]),
        // Snapshots and roll-ups within the segment, so they are measured too.
        ServiceProcess::start("archiver", nats, &["--db-path", db, "--snapshot-every-secs", "60"]),
        ServiceProcess::start("gateway", nats, &["--port", &port.to_string()]),
    ];
    let status = format!("http://127.0.0.1:{port}/api/status");
    wait_for("every demo worker in /api/status", || async {
        let status = get_json(&status).await?;
        (status["workers"]["total"].as_i64()? >= workers).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
    let recorded = shared::now_ms() - 20_000;
    for process in &mut processes {
        assert!(process.stop(), "{} stops cleanly:\n{}", process.name, process.log_text());
    }
    recorded
}

/// Each table's rows and size per day of what it covers, measured on the real segment.
fn growth(db: &Path, dir: &Path, workers: i64) {
    let connection = duckdb::Connection::open(db).expect("open the archive");
    let tables = [
        ("events", "time", ""),
        ("alerts", "time", ""),
        ("system_metrics", "timestamp", ""),
        ("worker_samples", "timestamp", ""),
        ("tasks", "finished_at", ""),
        ("fleet_snapshots", "time", ""),
        ("system_rollups", "bucket", "WHERE resolution = 'minute'"),
        ("worker_rollups", "bucket", "WHERE resolution = 'minute'"),
        ("task_rollups", "bucket", "WHERE resolution = 'minute'"),
    ];
    println!("archive growth at {workers} demo workers (per table: rows and bytes per day of time covered)");
    let empty = {
        let blank = dir.join("size-empty.duckdb");
        duckdb::Connection::open(&blank).expect("blank").execute_batch("CREATE TABLE t (x INT)").expect("blank");
        std::fs::metadata(&blank).map(|meta| meta.len() as f64).unwrap_or(0.0)
    };
    let mut total = 0.0;
    for (table, column, filter) in tables {
        // Roll-up buckets are stamped with their start: the span covers the last one too.
        let step = if column == "bucket" { 60.0 } else { 0.0 };
        let (rows, span): (i64, Option<f64>) = connection
            .query_row(
                &format!("SELECT count(*), epoch(max({column})) - epoch(min({column})) + {step} FROM {table} {filter}"),
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("rows and span");
        let Some(span) = span.filter(|span| *span > 0.0 && rows > 0) else {
            println!("  {table:>16}: {rows} rows, too few to tell");
            continue;
        };
        // A few thousand rows would be mostly empty blocks: the table is copied as many times
        // over as makes a million rows, copy after copy, and measured per row.
        let copies = if table == "fleet_snapshots" { 1 } else { (1_000_000 / rows).max(1) };
        let copy = dir.join(format!("size-{table}.duckdb"));
        let path = copy.to_str().expect("utf-8 path");
        connection
            .execute_batch(&format!(
                "ATTACH '{path}' AS size;
                 CREATE TABLE size.t AS SELECT t.* FROM range({copies}) r(copy), (SELECT * FROM {table} {filter}) t ORDER BY copy;
                 DETACH size;"
            ))
            .expect("copy a table alone");
        let bytes = std::fs::metadata(&copy).map(|meta| meta.len() as f64).unwrap_or(0.0);
        let mut bytes_per_row = (bytes - empty).max(0.0) / (rows * copies) as f64;
        if table == "fleet_snapshots" {
            // A few blobs fill less than DuckDB's smallest file: count their bytes instead.
            bytes_per_row = connection
                .query_row("SELECT avg(octet_length(state)) FROM fleet_snapshots", [], |row| row.get(0))
                .expect("snapshot size");
        }
        // Snapshots come every `snapshot_every_secs` (120 by default; 60 in the segment).
        let rows_per_day = if table == "fleet_snapshots" { 720.0 } else { rows as f64 * 86_400.0 / span };
        let bytes_per_day = bytes_per_row * rows_per_day;
        total += bytes_per_day;
        println!(
            "  {table:>16}: {rows_per_day:>12.0} rows/day {:>9.1} MB/day ({bytes_per_row:.1} B a row, over {span:.0} s)",
            bytes_per_day / 1e6
        );
    }
    println!("  {:>16}: {:>32.1} MB/day", "all", total / 1e6);
}

/// Moves the real segment to `target` and fills the week around it (see the module docs).
fn fill(connection: &duckdb::Connection, recorded: i64, target: i64, now: i64, event_every: i64) {
    let shift_us = (recorded - target) * 1000;
    let week_start_us = (now - 7 * DAY_MS) * 1000 + 600_000_000;
    let now_us = now * 1000;
    let minute_done = now_us - now_us.rem_euclid(60_000_000);
    let hour_done = now_us - now_us.rem_euclid(3_600_000_000);
    let raw_from = now_us - DAY_MS * 1000;
    let workers: i64 = connection
        .query_row("SELECT count(DISTINCT worker_id) FROM worker_samples", [], |row| row.get(0))
        .expect("the segment's workers");
    let fill_events = (now_us - week_start_us) / 1_000_000 / event_every * workers;
    let sql = format!(
        "
        CREATE TEMP TABLE fleet AS SELECT worker_id, row_number() OVER (ORDER BY worker_id) - 1 AS n FROM (SELECT DISTINCT worker_id FROM worker_samples);
        -- events_seq says how far the processor had folded: not a figure to make up.
        CREATE TEMP TABLE system_names AS SELECT DISTINCT metric_name FROM system_metrics WHERE metric_name <> 'events_seq';
        CREATE TEMP TABLE worker_names AS SELECT unnest(['cpu_pct', 'gpu_pct', 'memory_pct', 'network_pct', 'active_tasks',
            'queued_tasks', 'completed', 'failed', 'mean_task_ms', 'tasks_per_hour', 'success_rate', 'health_score', 'uptime_secs']) AS metric_name;
        CREATE TEMP TABLE models AS SELECT DISTINCT family, model, hardware FROM tasks;
        CREATE TEMP TABLE snapshot AS SELECT state FROM fleet_snapshots ORDER BY seq DESC LIMIT 1;

        -- The real segment, 3 days back, its sequences after the filled events.
        UPDATE events SET seq = seq + {fill_events}, time = time - to_microseconds({shift_us});
        UPDATE fleet_snapshots SET seq = seq + {fill_events}, time = time - to_microseconds({shift_us});
        UPDATE stream_offsets SET seq = seq + {fill_events} WHERE stream = 'FLEET_EVENTS';
        UPDATE alerts SET time = time - to_microseconds({shift_us});
        UPDATE tasks SET finished_at = finished_at - to_microseconds({shift_us});
        -- Raw rows 3 days old are past their 24 hours; roll-ups are refilled for the week.
        DELETE FROM system_metrics; DELETE FROM worker_samples;
        DELETE FROM system_rollups; DELETE FROM worker_rollups; DELETE FROM task_rollups;

        INSERT INTO events SELECT i + 1, 'fill-' || i, make_timestamp({week_start_us} + (i // {workers}) * {event_every} * 1000000),
            'bench', ['task_queued', 'task_assigned', 'task_started', 'task_completed'][i % 4 + 1],
            worker_id, 'fill-task-' || (i // 4), NULL
            FROM range({fill_events}) r(i) JOIN fleet ON fleet.n = i % {workers};
        INSERT INTO tasks SELECT make_timestamp({week_start_us} + m * 60000000), 'fill-task-' || m || '-' || f.n, d.model, d.family,
            d.hardware, f.worker_id, 1, random() > 0.05, random() * 5000, 1000 + random() * 60000, 0, NULL
            FROM range(({now_us} - {week_start_us}) // 60000000) r(m), fleet f,
            (SELECT *, row_number() OVER () - 1 AS k, count(*) OVER () AS models FROM models) d WHERE d.k = f.n % d.models;
        UPDATE tasks SET total_ms = queue_ms + processing_ms WHERE total_ms = 0;
        INSERT INTO fleet_snapshots SELECT make_timestamp({week_start_us} + s * 120000000),
            (s * 120 // {event_every}) * {workers}, (SELECT state FROM snapshot)
            FROM range(({now_us} - {week_start_us}) // 120000000) r(s)
            WHERE {week_start_us} + s * 120000000 < {now_us} - {shift_us};

        INSERT INTO system_metrics SELECT make_timestamp({raw_from} + s * 1000000), metric_name, random() * 100
            FROM range(86400) r(s), system_names;
        INSERT INTO worker_samples SELECT make_timestamp({raw_from} + s * 10000000), worker_id, 'busy',
            random() * 100, random() * 100, random() * 100, random() * 10, 1, 0, s, 0, 30000, 120, 0.98, 95, s * 10
            FROM range(8640) r(s), fleet;
        INSERT INTO system_rollups SELECT 'minute', make_timestamp({week_start_us} - {week_start_us} % 60000000 + m * 60000000),
            metric_name, 10, 50, 90, 50, 60
            FROM range(({minute_done} - {week_start_us}) // 60000000) r(m), system_names;
        INSERT INTO worker_rollups SELECT 'minute', make_timestamp({week_start_us} - {week_start_us} % 60000000 + m * 60000000),
            worker_id, metric_name, 10, 50, 90, 50, 6
            FROM range(({minute_done} - {week_start_us}) // 60000000) r(m), fleet, worker_names;
        INSERT INTO system_rollups SELECT 'hour', make_timestamp({week_start_us} - {week_start_us} % 3600000000 + h * 3600000000),
            metric_name, 10, 50, 90, 50, 3600
            FROM range(({hour_done} - {week_start_us}) // 3600000000) r(h), system_names;
        INSERT INTO worker_rollups SELECT 'hour', make_timestamp({week_start_us} - {week_start_us} % 3600000000 + h * 3600000000),
            worker_id, metric_name, 10, 50, 90, 50, 360
            FROM range(({hour_done} - {week_start_us}) // 3600000000) r(h), fleet, worker_names;
        INSERT INTO task_rollups SELECT 'minute', time_bucket(INTERVAL 1 minute, finished_at), family, model, hardware,
            count(*) FILTER (succeeded), count(*) FILTER (NOT succeeded), sum(queue_ms), max(queue_ms),
            sum(processing_ms) FILTER (succeeded), max(processing_ms) FILTER (succeeded), sum(total_ms)
            FROM tasks WHERE finished_at < make_timestamp({minute_done}) GROUP BY ALL;
        DELETE FROM rollup_progress;
        INSERT INTO rollup_progress VALUES
            ('system_metrics.minute', make_timestamp({minute_done})), ('system_metrics.hour', make_timestamp({hour_done})),
            ('worker_samples.minute', make_timestamp({minute_done})), ('worker_samples.hour', make_timestamp({hour_done})),
            ('tasks.minute', make_timestamp({minute_done})), ('tasks.hour', make_timestamp({hour_done}));
        "
    );
    connection.execute_batch(&sql).expect("fill the week");
}

/// A body in a few words: its size and, for JSON, how many points or workers.
fn describe(body: &[u8]) -> String {
    let size = format!("{:.1} kB", body.len() as f64 / 1e3);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) if json["time"].is_array() => {
            format!(
                "{size}, {} points at {} resolution",
                json["time"].as_array().map_or(0, Vec::len),
                json["resolution"]
            )
        }
        Ok(json) if json["workers"].is_object() => format!("{size}, {} workers", json["workers"]["total"]),
        _ => format!("{size}, {} lines", body.iter().filter(|byte| **byte == b'\n').count()),
    }
}
