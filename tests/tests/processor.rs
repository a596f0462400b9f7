//! The processor seen from outside: its metrics on the bus, in the state bucket and in the
//! archive, and its state surviving a crash.

use fleetwatch_tests::{NatsServer, ServiceProcess, wait_for};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::{codec, now_ms};
use std::collections::BTreeSet;

async fn ingest(client: &async_nats::Client, events: &[Value]) {
    ingest_under(client, "fleet", events).await;
}

async fn ingest_under(client: &async_nats::Client, prefix: &str, events: &[Value]) {
    let payload = bytes::Bytes::from(serde_json::to_vec(events).expect("json"));
    let reply = wait_for("the collector to answer", || async {
        client.request(format!("{prefix}.ingest.test"), payload.clone()).await.ok()
    })
    .await;
    let answer: Value = serde_json::from_slice(&reply.payload).expect("json");
    assert_eq!(answer["accepted"], events.len(), "{answer}");
}

/// A fleet's worth of events with fixed times: registrations, heartbeats, tasks that
/// complete, fail, are retried and cancelled, an outage and a recovery.
fn scripted_events(base: i64) -> Vec<Value> {
    let mut events = Vec::new();
    let workers = ["cpu-1", "cuda-1", "cuda-2", "tpu-1"];
    for (index, worker) in workers.iter().enumerate() {
        let hardware = worker.split('-').next().expect("kind");
        events.push(json!({"type": "worker_registered", "worker_id": worker, "time": base,
            "capabilities": {"hardware": hardware, "cpu_cores": 16, "memory_gb": 64, "slots": 2 + index, "tags": [hardware]}}));
    }
    let models =
        [("bert-base", "text"), ("vit-large", "vision"), ("whisper-small", "audio"), ("clip-b32", "multimodal")];
    for step in 0..60i64 {
        let time = base + 100 + step * 200;
        let worker = workers[step as usize % workers.len()];
        events.push(json!({"type": "heartbeat", "worker_id": worker, "time": time, "cpu_pct": (step * 7 % 100) as f64,
            "memory_pct": 40, "network_pct": 3, "running_tasks": step % 3, "queued_tasks": 0}));
        let task = format!("t{step}");
        let (model, family) = models[step as usize % models.len()];
        events.push(json!({"type": "task_queued", "task_id": task, "model": model, "family": family, "priority": step % 10, "time": time}));
        events.push(json!({"type": "task_assigned", "task_id": task, "worker_id": worker, "best_fit": step % 3 != 0, "time": time + 10}));
        events.push(json!({"type": "task_started", "task_id": task, "worker_id": worker, "time": time + 20 + step}));
        match step % 7 {
            0 => {
                events.push(json!({"type": "task_failed", "task_id": task, "worker_id": worker, "error": "oom", "time": time + 150}));
                events.push(json!({"type": "task_retried", "task_id": task, "attempt": 1, "time": time + 151}));
            }
            1 => events
                .push(json!({"type": "task_cancelled", "task_id": task, "reason": "superseded", "time": time + 90})),
            _ => events.push(
                json!({"type": "task_completed", "task_id": task, "worker_id": worker, "time": time + 100 + step * 3}),
            ),
        }
        if step == 30 {
            events.push(json!({"type": "worker_status_changed", "worker_id": "tpu-1", "status": "offline", "reason": "lost", "time": time}));
            events.push(json!({"type": "recovery_action", "component": "coordinator", "action": "reassign_tasks", "target": "tpu-1", "succeeded": true, "time": time}));
        }
    }
    events.push(json!({"type": "worker_registered", "worker_id": "tpu-1", "time": base + 13_000,
        "capabilities": {"hardware": "tpu", "cpu_cores": 16, "memory_gb": 64, "slots": 4, "tags": []}}));
    events
}

/// The processor's state and the sequence it reflects, once it has caught up with the stream.
async fn caught_up_state(client: &async_nats::Client) -> Value {
    let js = async_nats::jetstream::new(client.clone());
    wait_for("the processor to fold every event", || async {
        let last = js.get_stream("FLEET_EVENTS").await.ok()?.info().await.ok()?.state.last_sequence;
        let reply = client.request("fleet.query.processor.state", bytes::Bytes::new()).await.ok()?;
        let (seq, state): (u64, Value) = codec::decode(&reply.payload).ok()?;
        (seq == last).then_some(state)
    })
    .await
}

async fn snapshot_seq(client: &async_nats::Client) -> Option<u64> {
    let js = async_nats::jetstream::new(client.clone());
    let store = js.get_object_store("FLEET_SNAPSHOTS").await.ok()?;
    let mut object = store.get("processor").await.ok()?;
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes).await.ok()?;
    let snapshot: shared::snapshot::Snapshot<Value> = codec::decode(&bytes).ok()?;
    Some(snapshot.seq)
}

#[tokio::test]
async fn the_state_after_a_crash_and_restart_equals_a_run_without_one() {
    // Recent enough that nothing ages out while both runs last.
    let events = scripted_events(now_ms() - 20_000);
    let (first, rest) = events.split_at(120);
    let (second, third) = rest.split_at(rest.len() / 2);

    let uninterrupted = {
        let nats = NatsServer::start();
        let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
        let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "100"]);
        let client = nats.client().await;
        ingest(&client, &events).await;
        caught_up_state(&client).await
    };

    let nats = NatsServer::start();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let mut processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "100", "--snapshot-every-secs", "1"]);
    let client = nats.client().await;
    ingest(&client, first).await;
    caught_up_state(&client).await;
    wait_for("a snapshot of the first part", || async { snapshot_seq(&client).await.filter(|seq| *seq > 0) }).await;
    ingest(&client, second).await;
    caught_up_state(&client).await;
    processor.kill();
    ingest(&client, third).await;
    let restarted_process =
        ServiceProcess::start("processor", &nats, &["--tick-ms", "100", "--snapshot-every-secs", "1"]);
    let restarted = caught_up_state(&client).await;
    // It resumed from a snapshot, not from the beginning.
    let log = restarted_process.log_text();
    let resumed_from: u64 = log
        .split("from_seq=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no replay line in the log:\n{log}"));
    assert!(resumed_from > 1, "replayed from {resumed_from}");

    assert_eq!(restarted, uninterrupted, "same events, same state, crash or not");
    assert_eq!(restarted["totals"]["completed"], 42);
    assert_eq!(restarted["faults"]["recoveries"], 1);
}

#[tokio::test]
async fn every_metric_is_on_the_bus_in_the_bucket_and_in_the_archive() {
    let nats = NatsServer::start();
    let db = nats.dir.path().join("metrics.duckdb");
    let _collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "6", "--demo-tick-ms", "200", "--http-port", "0"],
    );
    let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "200", "--sample-secs", "1"]);
    let mut archiver = ServiceProcess::start("archiver", &nats, &["--db-path", db.to_str().expect("utf-8")]);
    let client = nats.client().await;
    let mut metrics = client.subscribe("fleet.metrics.>").await.expect("subscribe");

    let mut subjects = BTreeSet::new();
    let mut workers = shared::metrics::WorkerPicture::default();
    let mut sampled = 0;
    let mut finished_tasks = 0;
    let seen = async {
        while let Some(message) = metrics.next().await {
            subjects.insert(message.subject.to_string());
            if message.subject.starts_with("fleet.metrics.workers.") {
                let envelope: shared::Envelope<shared::metrics::WorkerMetricsBatch> =
                    codec::decode_envelope(&message.payload).expect("worker metrics");
                if envelope.payload.complete {
                    sampled = sampled.max(envelope.payload.workers.len());
                }
                workers.apply(envelope.payload);
            }
            if message.subject.as_str() == "fleet.metrics.tasks" {
                let envelope: shared::Envelope<shared::metrics::TaskMetrics> =
                    codec::decode_envelope(&message.payload).expect("task metrics");
                finished_tasks += envelope.payload.finished.total;
                let families: Vec<&str> = envelope.payload.by_family.iter().map(|group| group.key.as_str()).collect();
                let changes = subjects.contains("fleet.metrics.workers.changes");
                let all = workers.workers.len() == 6 && sampled == 6;
                if finished_tasks > 0 && changes && all && !families.is_empty() {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(fleetwatch_tests::DEADLINE, seen)
        .await
        .expect("metrics for the system, tasks and each worker");
    assert!(subjects.contains("fleet.metrics.system"));
    assert!(subjects.contains("fleet.metrics.workers.sample.0.0"), "the first tick is a sample: {subjects:?}");

    let js = async_nats::jetstream::new(client.clone());
    let bucket = js.get_key_value("FLEET_STATE").await.expect("state bucket");
    for key in ["system", "tasks"] {
        let value = bucket.get(key).await.expect("kv get").unwrap_or_else(|| panic!("{key} is in the bucket"));
        assert!(!value.is_empty());
    }
    let worker = &workers.workers["cpu-000"];
    assert!((0.0..=100.0).contains(&worker.health_score));
    assert!(worker.capabilities.is_some());

    // Let the archiver catch up with the metrics and the events (finished tasks come from
    // those) seen, then read the archive.
    fleetwatch_tests::wait_for_archived(&client, "FLEET_METRICS").await;
    fleetwatch_tests::wait_for_archived(&client, "FLEET_EVENTS").await;
    assert!(archiver.stop());
    let connection = duckdb::Connection::open(&db).expect("open");
    for table in ["system_metrics", "worker_metrics", "task_metrics"] {
        let rows: i64 =
            connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0)).expect("count");
        assert!(rows > 0, "{table} has rows");
    }
    let workers: i64 = connection
        .query_row(
            "SELECT count(DISTINCT worker_id) FROM worker_metrics WHERE metric_name = 'health_score'",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(workers, 6);
}

#[tokio::test]
async fn an_undecodable_event_is_dead_lettered_and_the_processor_carries_on() {
    let nats = NatsServer::start();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "100"]);
    let client = nats.client().await;
    let base = now_ms() - 5_000;
    ingest(&client, &scripted_events(base)[..4]).await;
    // A producer that bypasses the collector and writes garbage straight into the stream.
    let js = async_nats::jetstream::new(client.clone());
    let garbage = js
        .publish("fleet.events.worker.cpu-1", bytes::Bytes::from_static(b"\x93not an envelope"))
        .await
        .expect("publish")
        .await
        .expect("stored");
    ingest(
        &client,
        &[json!({"type": "worker_deregistered", "worker_id": "cpu-1", "reason": "scaled in", "time": base + 100})],
    )
    .await;

    let state = caught_up_state(&client).await;
    assert!(state["workers"].get("cpu-1").is_none(), "the event after the garbage was applied");
    assert_eq!(state["workers"].as_object().map(|workers| workers.len()), Some(3));
    let dead = js.get_stream("FLEET_DEADLETTER").await.expect("dead letters");
    let letter = wait_for("the dead letter", || async {
        dead.get_last_raw_message_by_subject("fleet.deadletter.processor").await.ok()
    })
    .await;
    assert_eq!(letter.payload.as_ref(), b"\x93not an envelope", "the original bytes are kept");
    let reason = letter.headers.get("Fleetwatch-Reason").map(|value| value.to_string()).unwrap_or_default();
    assert!(reason.contains(&format!("seq {}:", garbage.sequence)) && reason.contains("malformed"), "{reason}");
}

/// Keys that name a moment (or a span up to now) rather than a state of the fleet.
const MOMENTS: [&str; 6] = ["time", "events_seq", "finished", "updated_at", "uptime_secs", "age_ms"];

/// A value with every float rounded to 1e-6 (sums taken in another order differ below
/// that), and the keys that name a moment rather than the fleet left out.
fn comparable(value: Value) -> Value {
    match value {
        Value::Number(number) if number.is_f64() => {
            json!((number.as_f64().unwrap_or_default() * 1e6).round() / 1e6)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(comparable).collect()),
        Value::Object(fields) => fields
            .into_iter()
            .filter(|(key, _)| !MOMENTS.contains(&key.as_str()))
            .map(|(key, value)| (key, comparable(value)))
            .collect(),
        other => other,
    }
}

/// The fleet's system and task metrics as the state bucket under `prefix` holds them.
async fn fleet_metrics(js: &async_nats::jetstream::Context, prefix: &str) -> Option<Value> {
    let bucket = js.get_key_value(format!("{}_STATE", prefix.to_uppercase())).await.ok()?;
    let system: shared::Envelope<shared::metrics::SystemMetrics> =
        codec::decode_envelope(&bucket.get("system").await.ok()??).ok()?;
    let tasks: shared::Envelope<shared::metrics::TaskMetrics> =
        codec::decode_envelope(&bucket.get("tasks").await.ok()??).ok()?;
    let metrics = json!({"system": system.payload, "tasks": tasks.payload});
    Some(comparable(metrics))
}

async fn state_of(client: &async_nats::Client, subject: String) -> Value {
    let reply = wait_for("a state", || async { client.request(subject.clone(), bytes::Bytes::new()).await.ok() }).await;
    let (_, state): (u64, Value) = codec::decode(&reply.payload).expect("a state");
    state
}

/// Every page of the live tasks, five at a time, and their count per status.
async fn live_tasks(client: &async_nats::Client, prefix: &str) -> Vec<Value> {
    let subject = format!("{prefix}.query.processor.tasks");
    let ask = |query: Value| {
        let subject = subject.clone();
        async move {
            let reply =
                client.request(subject, serde_json::to_vec(&query).expect("json").into()).await.expect("answer");
            let mut answer: Value = serde_json::from_slice(&reply.payload).expect("json");
            assert!(answer.get("error").is_none(), "{answer}");
            answer.as_object_mut().map(|fields| fields.remove("time"));
            answer.as_object_mut().map(|fields| fields.remove("events_seq"));
            answer
        }
    };
    let mut pages = vec![ask(json!({"group_by": "status"})).await];
    let mut cursor: Option<String> = None;
    loop {
        let page = ask(json!({"limit": 5, "sort": "priority", "order": "desc", "cursor": cursor})).await;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
}

/// Two partitions and their fleet tier beside one processor of the whole fleet, over the
/// same events (one server, two subject prefixes): the fleet's metrics, each worker's state
/// and the live tasks, page by page, are the same.
#[tokio::test]
async fn two_partitions_merged_equal_one_processor_over_the_same_events() {
    let nats = NatsServer::start();
    // Events half an hour old, and workers that stay connected: nothing the comparison
    // reads changes while the two sides catch up.
    let env = [("FLEETWATCH_FLEET__LOST_AFTER_SECS", "86400"), ("FLEETWATCH_FLEET__RETIRE_AFTER_SECS", "86400")];
    let start = |name: &'static str, prefix: &str, extra: &[&str]| {
        let args: Vec<&str> = ["--prefix", prefix].iter().chain(extra).copied().collect();
        ServiceProcess::start_with_env(name, &nats, &args, &env)
    };
    let collector_args = ["--demo-workers", "0", "--http-port", "0"];
    let ports = [fleetwatch_tests::free_port().to_string(), fleetwatch_tests::free_port().to_string()];
    let _services = [
        start("collector", "whole", &collector_args),
        start("collector", "parted", &collector_args),
        start("processor", "whole", &["--tick-ms", "200"]),
        start("processor", "parted", &["--tick-ms", "200", "--partitions", "2", "--partition", "0"]),
        start("processor", "parted", &["--tick-ms", "200", "--partitions", "2", "--partition", "1"]),
        start("processor", "parted", &["--tick-ms", "200", "--partitions", "2"]),
        start("gateway", "parted", &["--port", &ports[0]]),
        start("gateway", "parted", &["--port", &ports[1]]),
    ];
    let client = nats.client().await;
    let events = scripted_events(now_ms() - 30 * 60_000);
    ingest_under(&client, "whole", &events).await;
    ingest_under(&client, "parted", &events).await;

    // What each side says: the fleet's metrics, and every worker's folded state (from the
    // one processor, and from whichever partition holds it).
    let js = async_nats::jetstream::new(client.clone());
    let sides = || async {
        let whole_state = state_of(&client, "whole.query.processor.state".into()).await;
        let mut parted_workers = serde_json::Map::new();
        for index in 0..2 {
            let part = state_of(&client, format!("parted.query.processor.part.{index}.state")).await;
            let own = part["workers"].as_object().cloned().unwrap_or_default();
            assert!(own.keys().all(|id| !parted_workers.contains_key(id)), "a worker in two partitions");
            parted_workers.extend(own);
        }
        let whole = json!({"fleet": fleet_metrics(&js, "whole").await, "workers": whole_state["workers"]});
        let parted = json!({"fleet": fleet_metrics(&js, "parted").await, "workers": parted_workers});
        (whole, parted)
    };
    let deadline = std::time::Instant::now() + fleetwatch_tests::DEADLINE;
    let (whole, parted) = loop {
        let (whole, parted) = sides().await;
        let folded = whole["fleet"]["system"]["tasks"]["completed"] == 42;
        if (folded && whole == parted) || std::time::Instant::now() > deadline {
            break (whole, parted);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(parted["fleet"], whole["fleet"], "the merged partitions' fleet metrics against one processor's");
    assert_eq!(parted["workers"], whole["workers"], "each worker as its partition folds it, against one processor");
    assert_eq!(whole["fleet"]["system"]["workers"]["total"], 4);
    assert!(whole["fleet"]["system"]["queue_time_ms"]["count"].as_u64() > Some(40), "{whole}");
    assert_eq!(live_tasks(&client, "parted").await, live_tasks(&client, "whole").await);

    // Two gateways over the partitioned fleet serve the same answers.
    for path in ["/api/metrics/system", "/api/workers?limit=10", "/api/tasks?limit=100", "/api/performance"] {
        let urls = ports.each_ref().map(|port| format!("http://127.0.0.1:{port}{path}"));
        let deadline = std::time::Instant::now() + fleetwatch_tests::DEADLINE;
        let (first, second) = loop {
            let first = fleetwatch_tests::get_json(&urls[0]).await.map(comparable);
            let second = fleetwatch_tests::get_json(&urls[1]).await.map(comparable);
            if (first.is_some() && first == second) || std::time::Instant::now() > deadline {
                break (first, second);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(first, second, "{path} from two gateways");
        assert!(first.is_some_and(|answer| answer.to_string().len() > 100), "{path} says something");
    }
}
