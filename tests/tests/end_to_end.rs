//! What a user sees, end to end: real nats-server, the services as processes, a real
//! DuckDB file, HTTP and WebSocket clients.

use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, get_json, wait_for, wait_for_counter};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::alert::{Alert, AlertState};
use shared::{Envelope, codec, now_ms};

/// Sends ingest events as a NATS request and returns the collector's answer, once the
/// collector is listening ("no responders" until then).
async fn ingest(client: &async_nats::Client, events: Value) -> Value {
    let payload = bytes::Bytes::from(serde_json::to_vec(&events).expect("json"));
    let reply = wait_for("the collector to answer an ingest request", || async {
        client.request("fleet.ingest.test", payload.clone()).await.ok()
    })
    .await;
    serde_json::from_slice(&reply.payload).expect("json answer")
}

fn heartbeat(worker_id: &str, time: i64, cpu_pct: f64) -> Value {
    json!({"type": "heartbeat", "worker_id": worker_id, "time": time, "cpu_pct": cpu_pct,
           "memory_pct": 40, "network_pct": 5, "running_tasks": 1, "queued_tasks": 0})
}

#[tokio::test]
async fn demo_workers_appear_in_the_status() {
    let nats = NatsServer::start();
    let port = free_port();
    let _collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "24", "--demo-tick-ms", "200", "--http-port", "0"],
    );
    let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "200"]);
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port.to_string()]);
    let url = format!("http://127.0.0.1:{port}/api/status");
    let status = wait_for("24 demo workers with running tasks in /api/status", || async {
        let status = get_json(&url).await?;
        (status["workers"]["total"] == 24 && status["tasks"]["running"].as_u64()? > 0).then_some(status)
    })
    .await;
    let workers = &status["workers"];
    let parts = ["idle", "busy", "overloaded", "disconnected"].map(|key| workers[key].as_u64().expect("count"));
    assert_eq!(parts.iter().sum::<u64>(), 24, "every worker has one status: {workers}");
    assert_eq!(workers["active"].as_u64(), Some(parts[1] + parts[2]));
    assert!(status["alerts"]["firing"].is_u64());
    assert_eq!(status["status"], "healthy");

    let api = format!("http://127.0.0.1:{port}/api/metrics");
    let worker =
        wait_for("cpu-000's metrics over REST", || async { get_json(&format!("{api}/workers/cpu-000")).await }).await;
    assert_eq!(worker["worker_id"], "cpu-000");
    assert!(worker["health_score"].is_f64() && worker["capabilities"]["hardware"] == "cpu", "{worker}");
    let listed = get_json(&format!("{api}/workers?limit=5")).await.expect("worker list");
    assert_eq!((listed["items"].as_array().map(Vec::len), listed["total"].as_u64()), (Some(5), Some(24)));
    assert_eq!(listed["truncated"], true);
    let tasks = wait_for("task metrics over REST", || async { get_json(&format!("{api}/tasks")).await }).await;
    assert!(tasks["by_family"].is_array() && tasks["fault_tolerance"].is_object(), "{tasks}");
    for (path, code) in [("workers/no-such-worker", 404), ("workers/bad%20id", 400), ("workers?limit=0", 400)] {
        let response = reqwest::get(format!("{api}/{path}")).await.expect("answer");
        assert_eq!(response.status(), code, "{path}");
        let body: Value = response.json().await.expect("json error");
        assert!(body["error"].is_string(), "{path}: {body}");
    }

    let page = reqwest::get(format!("http://127.0.0.1:{port}/")).await.expect("page").text().await.expect("text");
    assert!(page.contains("/assets/app.js"), "the dashboard's shell loads its script: {page}");
    let missing = reqwest::get(format!("http://127.0.0.1:{port}/api/nope")).await.expect("answer");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn an_overloaded_worker_raises_an_alert_and_then_its_resolution() {
    let nats = NatsServer::start();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _alerter = ServiceProcess::start("alerter", &nats, &["--overload-cpu-pct", "90", "--overload-for-secs", "3"]);
    let client = nats.client().await;
    let mut alerts = client.subscribe("fleet.alerts.>").await.expect("subscribe");
    // Wait until the alerter's consumer exists, so it sees what we send.
    let js = async_nats::jetstream::new(client.clone());
    wait_for("the alerter to be up", || async {
        let mut stream = js.get_stream("FLEET_ALERTS").await.ok()?;
        stream.info().await.ok().map(|_| ())
    })
    .await;

    let start = now_ms() - 10_000;
    let hot: Vec<Value> = (0..5).map(|second| heartbeat("gpu-hot-1", start + second * 1000, 97.0)).collect();
    assert_eq!(ingest(&client, json!(hot)).await["accepted"], 5);
    let fired = next_alert(&mut alerts).await;
    assert_eq!(
        (fired.rule.as_str(), fired.state, fired.target.as_str()),
        ("worker_overloaded", AlertState::Firing, "gpu-hot-1")
    );
    assert_eq!(fired.started_at, start);

    assert_eq!(ingest(&client, heartbeat("gpu-hot-1", start + 6000, 20.0)).await["accepted"], 1);
    let resolved = next_alert(&mut alerts).await;
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.alert_id, fired.alert_id);
    assert_eq!(resolved.resolved_at, Some(start + 6000));
}

async fn next_alert(subscriber: &mut async_nats::Subscriber) -> Alert {
    let message = tokio::time::timeout(fleetwatch_tests::DEADLINE, subscriber.next())
        .await
        .expect("an alert within the deadline")
        .expect("subscription open");
    let subject = message.subject.to_string();
    let envelope: Envelope<Alert> = codec::decode_envelope(&message.payload).expect("alert decodes");
    assert_eq!(subject, format!("fleet.alerts.{}.{}", envelope.payload.severity.as_str(), envelope.payload.rule));
    envelope.payload
}

#[tokio::test]
async fn events_are_archived_to_duckdb_exactly_once_across_a_crash() {
    let nats = NatsServer::start();
    let db = nats.dir.path().join("archive.duckdb");
    let db_arg = db.to_str().expect("utf-8 path");
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let mut archiver = ServiceProcess::start("archiver", &nats, &["--db-path", db_arg, "--lease-ttl-secs", "2"]);
    let client = nats.client().await;
    let base = now_ms() - 60_000;
    let events = |from: usize, to: usize| -> Value {
        json!((from..to)
            .map(|n| json!({"id": format!("e{n}"), "type": "task_started", "task_id": format!("t{n}"), "worker_id": "cpu-001", "time": base + n as i64}))
            .collect::<Vec<_>>())
    };
    for chunk in 0..5 {
        assert_eq!(ingest(&client, events(chunk * 100, chunk * 100 + 100)).await["accepted"], 100);
    }
    // A resend with the same ids is dropped by JetStream.
    assert_eq!(ingest(&client, events(0, 100)).await["accepted"], 100);
    wait_for_counter(&client, "archiver", "archiver_messages_archived_total", 500).await;

    archiver.kill();
    let mut archiver = ServiceProcess::start("archiver", &nats, &["--db-path", db_arg, "--lease-ttl-secs", "2"]);
    assert_eq!(ingest(&client, events(500, 600)).await["accepted"], 100);
    // Every message up to now, not a count: service reports are archived beside the events.
    fleetwatch_tests::wait_for_archived(&client, "FLEET_EVENTS").await;
    assert!(archiver.stop(), "archiver stops cleanly:\n{}", archiver.log_text());

    let connection = duckdb::Connection::open(&db).expect("open the archive");
    let (rows, ids, first, seqs): (i64, i64, String, String) = connection
        .query_row(
            "SELECT count(*), count(DISTINCT id), min(task_id), count(DISTINCT seq)::VARCHAR FROM events
             WHERE type <> 'service_report'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .expect("query");
    assert_eq!((rows, ids), (600, 600), "every event once");
    assert_eq!(first, "t0");
    assert_eq!(seqs, "600", "each its own stream message");
    let (task, detail): (String, Option<String>) = connection
        .query_row("SELECT task_id, detail::VARCHAR FROM events WHERE id = 'e42'", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("e42 is archived");
    assert_eq!((task.as_str(), detail), ("t42", None), "a task start is all ids");
}

#[tokio::test]
async fn a_websocket_client_receives_live_updates() {
    let nats = NatsServer::start();
    let port = free_port();
    let _collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "8", "--demo-tick-ms", "200", "--http-port", "0"],
    );
    let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "200"]);
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port.to_string()]);
    let url = format!("ws://127.0.0.1:{port}/ws/metrics");
    let mut socket = wait_for("the gateway's WebSocket", || async {
        tokio_tungstenite::connect_async(&url).await.ok().map(|(socket, _)| socket)
    })
    .await;
    let mut times = Vec::new();
    while times.len() < 3 {
        let message = tokio::time::timeout(fleetwatch_tests::DEADLINE, socket.next())
            .await
            .expect("an update within the deadline")
            .expect("socket open")
            .expect("a message");
        let Ok(text) = message.into_text() else { continue };
        let update: Value = serde_json::from_str(&text).expect("json update");
        if update["type"] == "system" && update["data"]["workers"]["total"] == 8 {
            times.push(update["data"]["time"].as_i64().expect("time"));
        }
    }
    assert!(times.windows(2).all(|pair| pair[1] > pair[0]), "each update is newer: {times:?}");
}

#[tokio::test]
async fn bad_input_is_dead_lettered_or_refused_with_a_reason() {
    let nats = NatsServer::start();
    let port = free_port();
    let _collector =
        ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", &port.to_string()]);
    let client = nats.client().await;
    let answer =
        ingest(&client, json!([heartbeat("cpu-001", now_ms(), 50.0), heartbeat("cpu 002", now_ms(), 50.0)])).await;
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"][0]["index"], 1);
    client.publish("fleet.ingest.raw", bytes::Bytes::from_static(b"\xc1\xc1 not msgpack")).await.expect("publish");
    client.flush().await.expect("flush");

    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("FLEET_DEADLETTER").await.expect("dead-letter stream");
    let reasons =
        wait_for("two dead letters", || async {
            let first = stream.get_raw_message(1).await.ok()?;
            let second = stream.get_raw_message(2).await.ok()?;
            Some([first, second].map(|message| {
                message.headers.get("Fleetwatch-Reason").map(|value| value.to_string()).unwrap_or_default()
            }))
        })
        .await;
    assert!(reasons[0].contains("worker_id") && reasons[0].contains("cpu 002"), "{}", reasons[0]);
    assert!(reasons[1].contains("malformed"), "{}", reasons[1]);

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/ingest");
    wait_for("http ingest", || async { http.post(&url).json(&json!([])).send().await.ok() }).await;
    let post = |body: Value| http.post(&url).json(&body).send();
    let refused = post(heartbeat("cpu-001", now_ms(), 150.0)).await.expect("answer");
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.expect("json");
    assert!(body["rejected"][0]["reason"].as_str().expect("reason").contains("cpu_pct"), "{body}");
    let accepted = post(heartbeat("cpu-001", now_ms(), 50.0)).await.expect("answer");
    assert_eq!(accepted.status(), 202);
    let malformed =
        http.post(&url).header("content-type", "application/json").body("{oops").send().await.expect("answer");
    assert_eq!(malformed.status(), 400);
    let huge = http
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .expect("answer");
    assert_eq!(huge.status(), 413);
}

/// `/metrics` as Prometheus scrapes it: every family once with HELP and TYPE, one
/// `fleetwatch_` prefix, base units; `promtool check metrics` (Debian's `prometheus`) agrees.
#[tokio::test]
async fn prometheus_metrics_pass_promtool() {
    let nats = NatsServer::start();
    let port = free_port();
    let db = nats.dir.path().join("archive.duckdb");
    let _collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "6", "--demo-tick-ms", "200", "--http-port", "0"],
    );
    let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "200"]);
    let _archiver = ServiceProcess::start("archiver", &nats, &["--db-path", db.to_str().expect("utf-8")]);
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port.to_string()]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let text = wait_for("fleet figures and the archiver's lag in /metrics", || async {
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        (text.contains("fleetwatch_workers{") && text.contains("fleetwatch_archiver_lag_seconds{")).then_some(text)
    })
    .await;
    for line in text.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        assert!(line.starts_with("fleetwatch_"), "one prefix: {line}");
    }
    let status = get_json(&format!("http://127.0.0.1:{port}/api/status")).await.expect("status");
    assert!(status["archive"]["streams"].as_array().is_some_and(|streams| streams.len() == 3), "{status}");

    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {promtool}: {err}; install it with `apt-get install prometheus`"));
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("promtool");
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "promtool: {said}\n{text}");
}
