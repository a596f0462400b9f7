//! The archive read back: history over REST, exports stock DuckDB opens, the fleet at a
//! past instant, retention, and bad requests.

use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, get_json, ingest, wait_for};
use serde_json::{Value, json};
use shared::now_ms;
use std::collections::BTreeMap;

/// The whole system on one nats-server, quick ticks, samples every second and archive
/// snapshots every two.
struct System {
    processes: Vec<ServiceProcess>,
    api: String,
}

impl System {
    fn start(nats: &NatsServer, port: u16, workers: usize) -> Self {
        let db = nats.dir.path().join("archive.duckdb");
        let db = db.to_str().expect("utf-8 path").to_owned();
        let workers = workers.to_string();
        let processes = vec![
            ServiceProcess::start(
                "collector",
                nats,
                &["--demo-workers", &workers, "--demo-tick-ms", "200", "--http-port", "0"],
            ),
            ServiceProcess::start("processor", nats, &["--tick-ms", "200", "--sample-secs", "1"]),
            ServiceProcess::start(
                "archiver",
                nats,
                &[
                    "--db-path",
                    &db,
                    "--snapshot-every-secs",
                    "2",
                    "--maintain-every-secs",
                    "1",
                    "--lease-ttl-secs",
                    "2",
                ],
            ),
            ServiceProcess::start("gateway", nats, &["--port", &port.to_string()]),
        ];
        Self { processes, api: format!("http://127.0.0.1:{port}/api") }
    }

    /// Stops every service cleanly (SIGTERM), as an upgrade or a reboot would.
    fn stop(mut self) {
        for process in &mut self.processes {
            assert!(process.stop(), "{} stops cleanly:\n{}", process.name, process.log_text());
        }
    }
}

/// What the live API shows for one tick: the status and every worker's status.
async fn live_view(api: &str) -> (i64, Value, BTreeMap<String, String>) {
    wait_for("the status and the worker list at the same tick", || async {
        let status = get_json(&format!("{api}/status")).await?;
        let workers = get_json(&format!("{api}/metrics/workers?limit=1000")).await?;
        let tick = status["updated_at"].as_i64()?;
        let busy = status["tasks"]["running"].as_u64()? > 0 && status["tasks"]["completed"].as_u64()? > 0;
        if workers["as_of"].as_i64()? != tick || !busy {
            return None;
        }
        let statuses = workers["items"]
            .as_array()?
            .iter()
            .map(|worker| (worker["worker_id"].as_str().unwrap_or_default().to_owned(), worker["status"].to_string()))
            .collect();
        Some((tick, status, statuses))
    })
    .await
}

#[tokio::test]
async fn history_and_the_fleet_at_an_instant_survive_a_restart_of_every_service() {
    let nats = NatsServer::start();
    let port = free_port();
    let system = System::start(&nats, port, 12);
    let api = system.api.clone();
    let (tick, status, statuses) = live_view(&api).await;
    // The archive has folded past that tick before anything stops.
    let folded_past = || async {
        let answer = get_json(&format!("{api}/fleet?at={}", tick + 5_000)).await?;
        (answer["tick"].as_i64()? > tick).then_some(())
    };
    wait_for("the archive past the recorded tick", folded_past).await;
    let range = format!("start_time={}&end_time={}&metrics=workers_total,tasks_completed", tick - 60_000, tick);
    let before = get_json(&format!("{api}/metrics/system/history?{range}")).await.expect("system history");
    assert!(!before["time"].as_array().expect("times").is_empty(), "{before}");
    system.stop();

    let system = System::start(&nats, port, 12);
    let fleet = wait_for("the fleet at the recorded tick, after the restart", || async {
        get_json(&format!("{api}/fleet?at={tick}&limit=1000")).await
    })
    .await;
    assert_eq!(fleet["tick"], tick, "the same tick is replayed");
    assert_eq!(fleet["system"]["workers"], status["workers"], "worker counts by status");
    for key in ["queued", "assigned", "running", "completed", "failed", "cancelled", "retried"] {
        assert_eq!(fleet["system"]["tasks"][key], status["tasks"][key], "tasks {key}");
    }
    let replayed: BTreeMap<String, String> = fleet["workers"]["items"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|worker| (worker["worker_id"].as_str().unwrap_or_default().to_owned(), worker["status"].to_string()))
        .collect();
    assert_eq!(replayed, statuses, "every worker's status");
    let after = get_json(&format!("{api}/metrics/system/history?{range}")).await.expect("system history");
    assert_eq!(after, before, "history reads the same after the restart");

    let url =
        format!("{api}/metrics/workers/cpu-000/history?start_time={}&metrics=cpu_pct,tasks_per_hour", tick - 60_000);
    let worker = wait_for("a worker's samples in its history", || async {
        let worker = get_json(&url).await?;
        worker["metrics"]["cpu_pct"]["mean"].as_array().is_some_and(|values| !values.is_empty()).then_some(worker)
    })
    .await;
    assert_eq!(worker["resolution"], "raw");
    let stats =
        reqwest::get(format!("{api}/metrics/tasks/stats?start_time={}&by=model", tick - 60_000)).await.expect("stats");
    assert_eq!(stats.status(), 200, "{}", stats.text().await.unwrap_or_default());
    let stats: Value = stats.json().await.expect("json");
    assert!(stats["items"].as_array().is_some_and(|groups| !groups.is_empty()), "{stats}");
    system.stop();

    // Every example of schemas/archive.md runs in stock DuckDB on this archive.
    let doc = include_str!("../../schemas/archive.md");
    let examples: Vec<&str> = doc.split("```sql\n").skip(1).filter_map(|block| block.split("```").next()).collect();
    let rows = stock_duckdb_rows(&nats.dir.path().join("archive.duckdb"), &examples);
    let with_rows = |needle: &str| examples.iter().zip(&rows).any(|(sql, rows)| sql.contains(needle) && *rows > 0);
    for table in
        ["FROM system_metrics", "FROM worker_metrics", "FROM worker_samples", "FROM tasks", "FROM schema_version"]
    {
        assert!(with_rows(table), "an example reading {table} finds rows: {rows:?}");
    }
}

#[tokio::test]
async fn a_task_life_events_exports_and_bad_requests() {
    let nats = NatsServer::start();
    let port = free_port();
    let system = System::start(&nats, port, 0);
    let client = nats.client().await;
    let base = now_ms() - 30_000;
    let hostile = "<img src=x onerror=alert(1)>";
    let events = json!([
        {"type": "worker_registered", "worker_id": "gpu-1", "time": base,
         "capabilities": {"hardware": "cuda", "cpu_cores": 8, "memory_gb": 32, "slots": 2, "tags": []}},
        {"type": "task_queued", "task_id": "t-life", "model": "vit-large", "family": "vision", "priority": 7, "time": base + 100},
        {"type": "task_assigned", "task_id": "t-life", "worker_id": "gpu-1", "best_fit": true, "time": base + 200},
        {"type": "task_started", "task_id": "t-life", "worker_id": "gpu-1", "time": base + 300},
        {"type": "task_failed", "task_id": "t-life", "worker_id": "gpu-1", "error": hostile, "time": base + 900},
        {"type": "task_retried", "task_id": "t-life", "attempt": 1, "time": base + 950},
        {"type": "task_started", "task_id": "t-life", "worker_id": "gpu-1", "time": base + 1000},
        {"type": "task_completed", "task_id": "t-life", "worker_id": "gpu-1", "time": base + 3000},
    ]);
    assert_eq!(ingest(&client, &events).await["accepted"], 8);
    let api = system.api.clone();
    let life = wait_for("the task's whole life", || async {
        let life = get_json(&format!("{api}/metrics/tasks/t-life")).await?;
        (life["events"].as_array()?.len() == 7).then_some(life)
    })
    .await;
    let kinds: Vec<&str> =
        life["events"].as_array().expect("events").iter().filter_map(|event| event["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "task_queued",
            "task_assigned",
            "task_started",
            "task_failed",
            "task_retried",
            "task_started",
            "task_completed"
        ]
    );
    let error = life["events"][3]["detail"]["error"].as_str().expect("the detail as JSON");
    assert!(error.contains("onerror"), "the error is kept as it came: {error}");

    let page = get_json(&format!("{api}/events?worker_id=gpu-1&limit=2")).await.expect("events");
    assert_eq!((page["items"].as_array().map(Vec::len), page["truncated"].as_bool()), (Some(2), Some(true)));
    let rest = get_json(&format!(
        "{api}/events?worker_id=gpu-1&limit=100&cursor={}",
        page["next_cursor"].as_str().expect("cursor")
    ))
    .await
    .expect("the next page");
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(page["total"].as_u64().expect("total") as usize - 2));

    // An export is every row the filters select, not one page of them.
    for format in ["csv", "parquet"] {
        let response =
            reqwest::get(format!("{api}/events?task_id=t-life&limit=2&format={format}")).await.expect("export");
        assert_eq!(response.status(), 200, "{format}");
        let bytes = response.bytes().await.expect("body");
        let file = nats.dir.path().join(format!("export.{format}"));
        std::fs::write(&file, &bytes).expect("write the export");
        let reader = if format == "csv" { "read_csv" } else { "read_parquet" };
        let count =
            stock_duckdb(&format!("SELECT count(*) FROM {reader}('{}') WHERE task_id = 't-life'", file.display()));
        assert_eq!(count.trim(), "7", "{format}: stock DuckDB reads the export");
    }

    for (path, code) in [
        ("metrics/system/history?start_time=yesterday", 400),
        ("metrics/system/history?interval=0", 400),
        ("metrics/system/history?start_time=2000&end_time=1000", 400),
        ("metrics/system/history?nonsense=1", 400),
        ("events?limit=5000", 400),
        ("events?type=no_such_event", 400),
        ("alerts?severity=catastrophic", 400),
        ("metrics/tasks/no-such-task", 404),
        ("metrics/tasks/bad%20id", 400),
        ("metrics/workers/no-such-worker/history", 404),
        ("fleet", 400),
        ("events?format=xml", 400),
    ] {
        let response = reqwest::get(format!("{api}/{path}")).await.expect("answer");
        assert_eq!(response.status(), code, "{path}");
        let body: Value = response.json().await.expect("a JSON error");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let mut processes = system.processes;
    let archiver = processes.iter_mut().find(|process| process.name == "archiver").expect("archiver");
    assert!(archiver.stop());
    let response = reqwest::get(format!("{api}/events")).await.expect("answer");
    assert_eq!(response.status(), 503, "no archiver answers");
}

/// What stock DuckDB (the Python package, as an operator would use it) prints for `sql`.
fn stock_duckdb(sql: &str) -> String {
    let output = std::process::Command::new("python3")
        .args(["-c", &format!("import duckdb; print(duckdb.sql({sql:?}).fetchall()[0][0])")])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "stock DuckDB (`pip install duckdb`) failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// How many rows each of `queries` gives in stock DuckDB, opening `db` read-only.
fn stock_duckdb_rows(db: &std::path::Path, queries: &[&str]) -> Vec<usize> {
    use std::io::Write as _;
    let script = "import duckdb, json, sys\n\
        db = duckdb.connect(sys.argv[1], read_only=True)\n\
        print(json.dumps([len(db.sql(q).fetchall()) for q in json.load(sys.stdin)]))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let queries = serde_json::to_vec(queries).expect("json");
    child.stdin.take().expect("stdin").write_all(&queries).expect("queries written");
    let output = child.wait_with_output().expect("python3 ends");
    assert!(output.status.success(), "an example query failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("row counts")
}

#[tokio::test]
async fn retention_removes_what_is_past_its_window_and_nothing_younger() {
    let nats = NatsServer::start();
    let db = nats.dir.path().join("archive.duckdb");
    let db_arg = db.to_str().expect("utf-8 path");
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let mut archiver = ServiceProcess::start(
        "archiver",
        &nats,
        &["--db-path", db_arg, "--retention-days", "1", "--maintain-every-secs", "1"],
    );
    let client = nats.client().await;
    let now = now_ms();
    let day = 86_400_000;
    let events: Vec<Value> = [("old", now - 2 * day), ("edge", now - day + 60_000), ("new", now - 1000)]
        .iter()
        .map(|(id, time)| json!({"id": id, "type": "task_started", "task_id": id, "worker_id": "w", "time": time}))
        .collect();
    assert_eq!(ingest(&client, &json!(events)).await["accepted"], 3);
    fleetwatch_tests::wait_for_archived(&client, "FLEET_EVENTS").await;
    fleetwatch_tests::wait_for_counter(&client, "archiver", "archiver_rows_pruned_total", 1).await;
    assert!(archiver.stop());
    let connection = duckdb::Connection::open(&db).expect("open the archive");
    let mut statement =
        connection.prepare("SELECT id FROM events WHERE type <> 'service_report' ORDER BY id").expect("query");
    let ids: Vec<String> =
        statement.query_map([], |row| row.get(0)).expect("rows").collect::<Result<_, _>>().expect("ids");
    assert_eq!(ids, ["edge", "new"], "a day's retention keeps the day and drops the older");
}
