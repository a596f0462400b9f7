//! Every built-in rule fires and resolves from events sent through the collector; people's
//! actions reach alerts through the gateway; a crash of the alerter loses and duplicates
//! nothing on NATS.

use fleetwatch_tests::{DEADLINE, NatsServer, ServiceProcess, free_port, get_json, ingest, wait_for};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::alert::{Alert, AlertState, Change};
use shared::health::{Gauge, HealthReport};
use shared::{Envelope, codec, now_ms};
use std::collections::BTreeMap;

/// Alert changes seen on `fleet.alerts.>`; each expectation takes the first match not yet
/// taken, so unrelated alerts in between do not matter.
struct Alerts {
    subscription: async_nats::Subscriber,
    seen: Vec<(Alert, bool)>,
}

impl Alerts {
    async fn follow(client: &async_nats::Client) -> Self {
        Self { subscription: client.subscribe("fleet.alerts.>").await.expect("subscribe"), seen: Vec::new() }
    }

    async fn expect(&mut self, what: &str, matches: impl Fn(&Alert) -> bool) -> Alert {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some((alert, taken)) = self.seen.iter_mut().find(|(alert, taken)| !*taken && matches(alert)) {
                *taken = true;
                return alert.clone();
            }
            let message = tokio::time::timeout_at(deadline, self.subscription.next())
                .await
                .unwrap_or_else(|_| panic!("no alert {what} within {DEADLINE:?}; saw {:#?}", self.summaries()))
                .expect("subscription open");
            let envelope: Envelope<Alert> = codec::decode_envelope(&message.payload).expect("alert decodes");
            self.seen.push((envelope.payload, false));
        }
    }

    async fn firing(&mut self, rule: &str, target: &str) -> Alert {
        self.expect(&format!("{rule} firing for {target}"), |a| {
            a.rule == rule && a.target == target && a.change == Some(Change::Fired)
        })
        .await
    }

    async fn resolved(&mut self, fired: &Alert) -> Alert {
        let id = fired.alert_id.clone();
        self.expect(&format!("{id} resolved"), |a| a.alert_id == id && a.state == AlertState::Resolved).await
    }

    fn summaries(&self) -> Vec<String> {
        self.seen.iter().map(|(a, _)| format!("{} {} {:?}: {}", a.rule, a.target, a.change, a.summary)).collect()
    }
}

/// The alerter with rules that resolve as soon as their condition clears and short windows,
/// so each scenario takes seconds.
const QUICK_RULES: &str = r#"
[fleet]
lost_after_secs = 3
[alerter.rules.worker_overloaded]
for_secs = 0
keep_firing_secs = 0
[alerter.rules.worker_lost]
keep_firing_secs = 0
[alerter.rules.worker_failure_trend]
keep_firing_secs = 0
[alerter.rules.task_stalled]
keep_firing_secs = 0
default_secs = 2
min_secs = 1
[alerter.rules.queue_time_high]
for_secs = 0
keep_firing_secs = 0
window_secs = 2
[alerter.rules.queue_too_long]
for_secs = 0
keep_firing_secs = 0
tasks = 5
[alerter.rules.failure_burst]
keep_firing_secs = 0
[alerter.rules.low_success_rate]
keep_firing_secs = 0
min_tasks = 5
window_secs = 5
[alerter.rules.low_scheduling_efficiency]
for_secs = 0
keep_firing_secs = 0
min_assignments = 5
window_secs = 5
[alerter.rules.coordinator_unreachable]
keep_firing_secs = 0
[alerter.rules.archive_lag]
for_secs = 0
keep_firing_secs = 0
[alerter.rules.dead_letters_rising]
keep_firing_secs = 0
window_secs = 2
[alerter.rules.service_silent]
keep_firing_secs = 0
silent_secs = 3
[alerter.rules.anomaly]
for_secs = 0
keep_firing_secs = 0
bucket_secs = 1
warmup_buckets = 5
min_change = 1.5
"#;

fn config(nats: &NatsServer, extra: &str) -> String {
    let path = nats.dir.path().join(format!("alerter-{}.toml", now_ms()));
    std::fs::write(&path, format!("{QUICK_RULES}\n{extra}")).expect("write config");
    path.to_str().expect("utf-8").to_owned()
}

fn registered(worker_id: &str, hardware: &str) -> Value {
    json!({"type": "worker_registered", "worker_id": worker_id,
           "capabilities": {"hardware": hardware, "cpu_cores": 8, "memory_gb": 32, "slots": 2}})
}

fn heartbeat(worker_id: &str, cpu_pct: f64) -> Value {
    json!({"type": "heartbeat", "worker_id": worker_id, "cpu_pct": cpu_pct, "memory_pct": 40,
           "network_pct": 5, "running_tasks": 1, "queued_tasks": 0})
}

/// A task's events from queued to `end` (`completed`, `failed` or none), at `time`.
fn task(task_id: &str, model: &str, worker_id: &str, time: i64, end: Option<&str>) -> Vec<Value> {
    let mut events = vec![
        json!({"type": "task_queued", "task_id": task_id, "model": model, "family": "text", "priority": 5, "time": time}),
        json!({"type": "task_started", "task_id": task_id, "worker_id": worker_id, "time": time}),
    ];
    match end {
        Some("failed") => events.push(
            json!({"type": "task_failed", "task_id": task_id, "worker_id": worker_id, "error": "oom", "time": time + 100}),
        ),
        Some(kind) => events.push(json!({"type": format!("task_{kind}"), "task_id": task_id, "worker_id": worker_id, "time": time + 100})),
        None => {}
    }
    events
}

async fn send(client: &async_nats::Client, events: Vec<Value>) {
    let count = events.len();
    let answer = ingest(client, &json!(events)).await;
    assert_eq!(answer["accepted"], count, "{answer}");
}

/// A health report as a service would publish it; the collector forwards it as a
/// `service_report` event.
async fn report(client: &async_nats::Client, service: &str, dead_letters: u64, lag_seconds: Option<f64>) {
    let report = HealthReport {
        service: service.into(),
        instance: format!("{service}-1"),
        version: "test".into(),
        started_at: 1,
        time: now_ms(),
        restarts: None,
        counters: [(format!("{service}_deadletters_total"), dead_letters)].into(),
        gauges: lag_seconds
            .map(|value| Gauge { name: "archiver_lag_seconds".into(), labels: BTreeMap::new(), value })
            .into_iter()
            .collect(),
    };
    let payload = codec::encode(&report).expect("encodes");
    client.publish(format!("fleet.health.{service}"), payload).await.expect("publish");
    client.flush().await.expect("flush");
}

/// Ana acknowledges the alert through the gateway, which accepts it.
async fn acknowledge(api: &str, alert_id: &str) {
    let body = json!({"by": "ana", "comment": "looking"});
    let ack = reqwest::Client::new().post(format!("{api}/alerts/{alert_id}/ack")).json(&body).send().await;
    assert_eq!(ack.expect("answer").status(), 202);
}

#[tokio::test]
async fn each_built_in_rule_fires_and_resolves_from_events_through_the_collector() {
    let nats = NatsServer::start();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _alerter = ServiceProcess::start("alerter", &nats, &["--config", &config(&nats, "")]);
    let client = nats.client().await;
    let mut alerts = Alerts::follow(&client).await;
    send(&client, vec![registered("hot-1", "cuda"), heartbeat("hot-1", 99.0)]).await;
    let fired = alerts.firing("worker_overloaded", "hot-1").await;
    assert!(fired.summary.starts_with("Worker hot-1 is overloaded (99% CPU"), "{}", fired.summary);
    assert_eq!((fired.labels["hardware"].as_str(), fired.revision), ("cuda", 1));
    send(&client, vec![heartbeat("hot-1", 20.0)]).await;
    alerts.resolved(&fired).await;

    // Absence: the watermark moves on with the collector's own service reports.
    send(&client, vec![registered("gone-1", "cpu")]).await;
    let lost = alerts.firing("worker_lost", "gone-1").await;
    send(&client, vec![heartbeat("gone-1", 10.0)]).await;
    alerts.resolved(&lost).await;

    send(&client, [vec![registered("st-1", "cpu")], task("stuck-1", "slow-model", "st-1", now_ms(), None)].concat())
        .await;
    let stalled = alerts.firing("task_stalled", "stuck-1").await;
    send(&client, vec![json!({"type": "task_completed", "task_id": "stuck-1", "worker_id": "st-1"})]).await;
    alerts.resolved(&stalled).await;

    let queued: Vec<Value> = (0..5)
        .map(|i| json!({"type": "task_queued", "task_id": format!("long-{i}"), "model": "m", "family": "text", "priority": 1}))
        .collect();
    send(&client, queued).await;
    let long = alerts.firing("queue_too_long", "fleet").await;
    let cancelled: Vec<Value> =
        (0..5).map(|i| json!({"type": "task_cancelled", "task_id": format!("long-{i}"), "reason": "test"})).collect();
    send(&client, cancelled).await;
    alerts.resolved(&long).await;

    // Five tasks that waited a minute; the window (2 s here) then ages them out.
    let mut waited = Vec::new();
    for i in 0..5 {
        let id = format!("qt-{i}");
        waited.push(json!({"type": "task_queued", "task_id": id, "model": "bert-large", "family": "text", "priority": 5, "time": now_ms() - 60_000}));
        waited.push(json!({"type": "task_started", "task_id": id, "worker_id": "st-1"}));
    }
    send(&client, waited).await;
    let slow = alerts.firing("queue_time_high", "model:bert-large").await;
    assert!(slow.summary.starts_with("Model \"bert-large\" has high queue time (60s avg"), "{}", slow.summary);
    alerts.resolved(&slow).await;

    // Five failures a minute ago on CUDA: a burst and a low success rate, which age out.
    let past = now_ms() - 58_000;
    let failures: Vec<Value> =
        (0..5).flat_map(|i| task(&format!("fb-{i}"), "fb-model", "hot-1", past + i, Some("failed"))).collect();
    send(&client, failures).await;
    let burst = alerts.firing("failure_burst", "hardware:cuda").await;
    let rate = alerts.firing("low_success_rate", "model:fb-model").await;
    alerts.resolved(&burst).await;
    alerts.resolved(&rate).await;

    // Twenty successes, then a run of failures: the trend predicts trouble before the
    // worker fails everything; a success brings the recent rate back under the limit.
    let t = now_ms() - 10_000;
    let mut history: Vec<Value> = vec![registered("tr-1", "rocm")];
    history
        .extend((0..20).flat_map(|i| task(&format!("tr-ok-{i}"), "tr-model", "tr-1", t + i * 200, Some("completed"))));
    history.extend(
        (0..7).flat_map(|i| task(&format!("tr-bad-{i}"), "tr-model", "tr-1", t + 5000 + i * 200, Some("failed"))),
    );
    send(&client, history).await;
    let trend = alerts.firing("worker_failure_trend", "tr-1").await;
    send(&client, task("tr-ok-20", "tr-model", "tr-1", t + 7000, Some("completed"))).await;
    alerts.resolved(&trend).await;

    let misfits: Vec<Value> = (0..5)
        .flat_map(|i| {
            let id = format!("fit-{i}");
            vec![
                json!({"type": "task_queued", "task_id": id, "model": "fit", "family": "text", "priority": 5}),
                json!({"type": "task_assigned", "task_id": id, "worker_id": "st-1", "best_fit": false}),
            ]
        })
        .collect();
    send(&client, misfits).await;
    let fits = alerts.firing("low_scheduling_efficiency", "fleet").await;
    alerts.resolved(&fits).await;

    let component = |health: &str| json!({"type": "component_status", "component": "coordinator", "health": health, "message": "poll"});
    send(&client, vec![component("down")]).await;
    let down = alerts.firing("coordinator_unreachable", "component:coordinator").await;
    send(&client, vec![component("healthy")]).await;
    alerts.resolved(&down).await;

    report(&client, "archiver", 0, Some(120.0)).await;
    let lag = alerts.firing("archive_lag", "service:archiver").await;
    report(&client, "archiver", 0, Some(0.0)).await;
    alerts.resolved(&lag).await;

    report(&client, "ghost", 0, None).await;
    report(&client, "ghost", 25, None).await;
    let dead = alerts.firing("dead_letters_rising", "service:ghost").await;
    alerts.resolved(&dead).await;
    let silent = alerts.firing("service_silent", "service:ghost").await;
    report(&client, "ghost", 25, None).await;
    alerts.resolved(&silent).await;
}

#[tokio::test]
async fn anomalies_custom_rules_and_posted_alerts() {
    let nats = NatsServer::start();
    let custom = r#"
[[alerter.custom]]
name = "fleet_large"
scope = "system"
field = "workers.total"
op = ">="
threshold = 3
message = "{value} workers (limit {threshold})"
"#;
    let port = free_port().to_string();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "200"]);
    let _alerter = ServiceProcess::start("alerter", &nats, &["--config", &config(&nats, custom)]);
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port]);
    let client = nats.client().await;
    let mut alerts = Alerts::follow(&client).await;

    send(&client, vec![registered("a-1", "cpu"), registered("a-2", "cpu"), registered("a-3", "cpu")]).await;
    let large = alerts.firing("fleet_large", "fleet").await;
    assert_eq!(large.summary, "3.00 workers (limit 3)");

    // A steady 5 tasks a second, then a burst of 60: throughput leaves its band.
    let mut n = 0;
    let mut batch = |count: usize| {
        let events: Vec<Value> = (0..count)
            .flat_map(|_| {
                n += 1;
                task(&format!("an-{n}"), "steady", "a-1", now_ms(), Some("completed"))
            })
            .collect();
        events
    };
    let mut pace = tokio::time::interval(std::time::Duration::from_secs(1));
    for _ in 0..8 {
        pace.tick().await;
        send(&client, batch(5)).await;
    }
    pace.tick().await;
    send(&client, batch(60)).await;
    let anomaly = alerts.firing("throughput_anomaly", "fleet").await;
    assert!(anomaly.value >= 30.0 && anomaly.summary.contains("above its usual"), "{anomaly:?}");

    // A program posts an alert through the gateway; a person resolves it there.
    let api = format!("http://127.0.0.1:{port}/api/alerts");
    let http = reqwest::Client::new();
    let posted = json!({"level": "critical", "title": "Nightly run failed", "message": "3 models regressed",
                        "source": "nightly-bench", "metrics": {"value": 3}});
    wait_for("the gateway to take a posted alert", || async {
        http.post(&api).json(&posted).send().await.ok().filter(|r| r.status() == 202)
    })
    .await;
    let custom = alerts.firing("custom", "nightly-bench/Nightly run failed").await;
    assert_eq!((custom.severity.as_str(), custom.value), ("critical", 3.0));
    // As a person would: resolve it once the dashboard lists it (the open alerts are
    // rewritten within 200 ms of a change).
    wait_for("the posted alert in /api/alerts", || async {
        let body = get_json(&api).await?;
        body["firing"].as_array()?.iter().any(|a| a["alert_id"] == custom.alert_id.as_str()).then_some(())
    })
    .await;
    let resolved = http
        .post(format!("{api}/{}/resolve", custom.alert_id))
        .json(&json!({"by": "ana", "comment": "rerun passed"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(resolved.status(), 202, "{}", resolved.text().await.unwrap_or_default());
    let closed = alerts.resolved(&custom).await;
    assert_eq!(closed.resolved_by.as_ref().map(|m| (m.by.as_str(), m.comment.as_str())), Some(("ana", "rerun passed")));
}

#[tokio::test]
async fn acknowledgements_and_silences_through_the_gateway() {
    let nats = NatsServer::start();
    let port = free_port().to_string();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _alerter = ServiceProcess::start("alerter", &nats, &["--config", &config(&nats, "")]);
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port]);
    let client = nats.client().await;
    let mut alerts = Alerts::follow(&client).await;
    let api = format!("http://127.0.0.1:{port}/api");
    let http = reqwest::Client::new();

    send(&client, vec![registered("ack-1", "cuda"), heartbeat("ack-1", 99.0)]).await;
    let fired = alerts.firing("worker_overloaded", "ack-1").await;
    let open = wait_for("the open alert in /api/alerts", || async {
        let body = get_json(&format!("{api}/alerts")).await?;
        body["firing"].as_array()?.iter().any(|a| a["alert_id"] == fired.alert_id.as_str()).then_some(body)
    })
    .await;
    assert!(open["firing"].is_array());
    acknowledge(&api, &fired.alert_id).await;
    let acked = alerts.expect("the acknowledgement", |a| a.change == Some(Change::Acknowledged)).await;
    assert_eq!(
        (acked.alert_id.as_str(), acked.revision, acked.state),
        (fired.alert_id.as_str(), 2, AlertState::Firing)
    );
    let by = wait_for("the author in /api/alerts", || async {
        let body = get_json(&format!("{api}/alerts")).await?;
        let alert = body["firing"].as_array()?.iter().find(|a| a["alert_id"] == fired.alert_id.as_str())?.clone();
        alert["acknowledged"]["by"].as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(by, "ana");

    // A silence on CUDA workers: the next such alert fires and is listed, marked silenced.
    let silence = json!({"matchers": [{"name": "hardware", "op": "=", "value": "cuda"}], "duration_secs": 3600,
                         "by": "ana", "comment": "maintenance"});
    let created = http.post(format!("{api}/silences")).json(&silence).send().await.expect("answer");
    assert_eq!(created.status(), 201);
    let silence_id = created.json::<Value>().await.expect("json")["silence_id"].as_str().expect("id").to_owned();
    let silenced = alerts.expect("the open alert marked silenced", |a| a.change == Some(Change::Silenced)).await;
    assert_eq!(silenced.silenced_by, vec![silence_id.clone()]);
    send(&client, vec![registered("ack-2", "cuda"), heartbeat("ack-2", 99.0)]).await;
    let quiet = alerts.firing("worker_overloaded", "ack-2").await;
    assert_eq!(quiet.silenced_by, vec![silence_id.clone()], "fires, and says it is silenced");
    let listed = wait_for("the silence in /api/silences", || async {
        let body = get_json(&format!("{api}/silences")).await?;
        (body["silences"].as_array()?.len() == 1).then_some(body)
    })
    .await;
    assert_eq!(listed["silences"][0]["created_by"], "ana");
    let deleted = http.delete(format!("{api}/silences/{silence_id}?by=ana")).send().await.expect("answer");
    assert_eq!(deleted.status(), 202);
    let back = alerts.expect("ack-2 unsilenced", |a| a.target == "ack-2" && a.change == Some(Change::Unsilenced)).await;
    assert!(back.silenced_by.is_empty());
}

/// The alerter killed while alerts fire and change: on restart it replays from its last
/// snapshot; every change reaches FLEET_ALERTS exactly once.
#[tokio::test]
async fn a_killed_alerter_loses_and_duplicates_no_alert() {
    let nats = NatsServer::start();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let settings = config(&nats, "[alerter]\nsnapshot_every_secs = 1\n");
    let mut alerter = ServiceProcess::start("alerter", &nats, &["--config", &settings]);
    let client = nats.client().await;
    let mut alerts = Alerts::follow(&client).await;
    let hot: Vec<Value> =
        (0..20).flat_map(|i| vec![registered(&format!("k-{i}"), "cpu"), heartbeat(&format!("k-{i}"), 99.0)]).collect();
    send(&client, hot).await;
    for i in 0..20 {
        alerts.firing("worker_overloaded", &format!("k-{i}")).await;
    }
    alerter.kill();
    // While it is down: half cool down, twenty more overheat.
    let mut changes: Vec<Value> = (0..10).map(|i| heartbeat(&format!("k-{i}"), 10.0)).collect();
    changes
        .extend((20..40).flat_map(|i| vec![registered(&format!("k-{i}"), "cpu"), heartbeat(&format!("k-{i}"), 99.0)]));
    send(&client, changes).await;
    let _alerter = ServiceProcess::start("alerter", &nats, &["--config", &settings]);
    for i in 20..40 {
        alerts.firing("worker_overloaded", &format!("k-{i}")).await;
    }
    for i in 0..10 {
        alerts.expect("a resolution", |a| a.target == format!("k-{i}") && a.state == AlertState::Resolved).await;
    }
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream("FLEET_ALERTS").await.expect("stream");
    let stored = stream.info().await.expect("info").state.messages;
    let mut ids = std::collections::BTreeSet::new();
    let mut overloaded = BTreeMap::<Change, usize>::new();
    for seq in 1..=stored {
        let message = stream.get_raw_message(seq).await.expect("message");
        let envelope: Envelope<Alert> = codec::decode_envelope(&message.payload).expect("alert");
        assert!(ids.insert(envelope.id.clone()), "{} stored twice", envelope.id);
        if envelope.payload.rule == "worker_overloaded" {
            *overloaded.entry(envelope.payload.change.expect("a change")).or_default() += 1;
        }
    }
    let expected = BTreeMap::from([(Change::Fired, 40), (Change::Resolved, 10)]);
    assert_eq!(overloaded, expected, "every firing and resolution once");
}

/// Two alerter partitions and their fleet tier: each partition's workers alert; a queue
/// that neither partition alone finds too long does, from their merged inputs; the gateway
/// lists every open alert; an acknowledgement reaches the partition holding the alert.
#[tokio::test]
async fn partitioned_alerters_and_their_fleet_tier() {
    let nats = NatsServer::start();
    let port = free_port().to_string();
    let settings = config(&nats, "");
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let role = |partition: Option<&str>| {
        let mut args = vec!["--config", settings.as_str(), "--partitions", "2"];
        args.extend(partition.map(|index| ["--partition", index]).into_iter().flatten());
        ServiceProcess::start("alerter", &nats, &args)
    };
    let _alerters = [role(Some("0")), role(Some("1")), role(None)];
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port]);
    let client = nats.client().await;
    let mut alerts = Alerts::follow(&client).await;
    let owned_by = |prefix: &str, index: u32, n: usize| -> Vec<String> {
        let partition = shared::fleet::Partition::new(index, 2).expect("a partition");
        (0..).map(|k| format!("{prefix}-{k}")).filter(|id| partition.owns(id)).take(n).collect()
    };
    let hot = [owned_by("hot", 0, 1).remove(0), owned_by("hot", 1, 1).remove(0)];
    send(&client, hot.iter().flat_map(|id| [registered(id, "cuda"), heartbeat(id, 99.0)]).collect()).await;
    let fired = [alerts.firing("worker_overloaded", &hot[0]).await, alerts.firing("worker_overloaded", &hot[1]).await];

    // Five tasks waiting (the limit here): three in one partition, two in the other.
    let waiting = [owned_by("wait", 0, 3), owned_by("wait", 1, 2)].concat();
    let queued = waiting
        .iter()
        .map(|id| json!({"type": "task_queued", "task_id": id, "model": "m", "family": "text", "priority": 1}))
        .collect();
    send(&client, queued).await;
    let long = alerts.firing("queue_too_long", "fleet").await;
    assert_eq!(long.value, 5.0, "{}", long.summary);

    let api = format!("http://127.0.0.1:{port}/api");
    let expected: Vec<&str> = fired.iter().chain([&long]).map(|alert| alert.alert_id.as_str()).collect();
    wait_for("every partition's open alerts and the tier's in /api/alerts", || async {
        let body = get_json(&format!("{api}/alerts")).await?;
        let listed: Vec<&str> = body["firing"].as_array()?.iter().filter_map(|a| a["alert_id"].as_str()).collect();
        expected.iter().all(|id| listed.contains(id)).then_some(())
    })
    .await;
    acknowledge(&api, &fired[1].alert_id).await;
    let acked = alerts.expect("the acknowledgement", |a| a.change == Some(Change::Acknowledged)).await;
    assert_eq!((acked.alert_id.as_str(), acked.revision), (fired[1].alert_id.as_str(), 2));

    let cancelled =
        waiting.iter().map(|id| json!({"type": "task_cancelled", "task_id": id, "reason": "test"})).collect();
    send(&client, cancelled).await;
    alerts.resolved(&long).await;
    send(&client, hot.iter().map(|id| heartbeat(id, 10.0)).collect()).await;
    for alert in &fired {
        alerts.resolved(alert).await;
    }
}
