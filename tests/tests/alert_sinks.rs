//! The alerter's sinks against real peers: Debian's Alertmanager, and a webhook receiver
//! that checks each notification's signature and answers as told (200, or 500 for a while).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, get_json, ingest, wait_for, wait_for_counter};
use serde_json::{Value, json};
use shared::now_ms;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

const SECRET: &str = "test-secret";

fn heartbeat(worker_id: &str, cpu_pct: f64) -> Value {
    json!({"type": "heartbeat", "worker_id": worker_id, "time": now_ms(), "cpu_pct": cpu_pct,
           "memory_pct": 40, "network_pct": 5, "running_tasks": 1, "queued_tasks": 0})
}

/// Heartbeats for `workers` in one ingest request: at or above 90 % each fires
/// `worker_overloaded` at once (`for_secs = 0`), below resolves it (`keep_firing_secs = 0`).
async fn heartbeats(client: &async_nats::Client, workers: &[String], cpu_pct: f64) {
    let events: Vec<Value> = workers.iter().map(|worker| heartbeat(worker, cpu_pct)).collect();
    assert_eq!(ingest(client, &json!(events)).await["accepted"], workers.len());
}

fn workers(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n:03}")).collect()
}

/// Starts the alerter with its rule firing at once and `sinks` (TOML) added to its config.
fn start_alerter(nats: &NatsServer, sinks: &str) -> ServiceProcess {
    let path = config_file(nats, sinks);
    ServiceProcess::start("alerter", nats, &["--config", path.to_str().expect("utf-8 path")])
}

fn config_file(nats: &NatsServer, sinks: &str) -> PathBuf {
    let path = nats.dir.path().join("fleetwatch-alerter.toml");
    std::fs::write(&path, format!("[alerter.rules.worker_overloaded]\nfor_secs = 0\nkeep_firing_secs = 0\n\n{sinks}"))
        .expect("config file");
    path
}

fn webhook_config(url: &str, extra: &str) -> String {
    format!(
        "[[alerter.webhooks]]\nname = \"ops\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nretry_base_ms = 50\nretry_max_ms = 200\n{extra}\n"
    )
}

/// Waits until the sink's durable consumer exists: from then on it sees every new alert.
async fn wait_for_sink(client: &async_nats::Client, consumer: &str) {
    let js = async_nats::jetstream::new(client.clone());
    wait_for(&format!("the alerter's consumer {consumer}"), || async {
        let stream = js.get_stream("FLEET_ALERTS").await.ok()?;
        stream.consumer_info(consumer).await.ok().map(|_| ())
    })
    .await;
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    signed: bool,
    body: Value,
    status: u16,
}

/// A webhook receiver on a free port: checks the signature with [`SECRET`], records each
/// `worker_overloaded` notification (the rule the tests drive; others are answered 200 and
/// left out), and answers those 500 while `failures` lasts, then 200.
#[derive(Clone)]
struct Receiver {
    url: String,
    failures: Arc<AtomicU32>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(failures: u32) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let receiver = Self {
            url: format!("http://127.0.0.1:{port}/hooks/fleet"),
            failures: Arc::new(AtomicU32::new(failures)),
            received: Arc::default(),
        };
        let app = axum::Router::new().route("/hooks/fleet", axum::routing::post(receive)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn all(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    fn delivered(&self) -> Vec<Received> {
        self.all().into_iter().filter(|received| received.status == 200).collect()
    }

    async fn wait_delivered(&self, count: usize) -> Vec<Received> {
        wait_for(&format!("{count} notification(s) delivered"), || async {
            let delivered = self.delivered();
            (delivered.len() >= count).then_some(delivered)
        })
        .await
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: bytes::Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let expected: String = ring::hmac::sign(&key, &body).as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if body["rule"] != "worker_overloaded" {
        return StatusCode::OK;
    }
    let failing =
        receiver.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok();
    let status = if failing { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    receiver.received.lock().expect("lock").push(Received {
        key: header("idempotency-key"),
        signed: header("x-fleetwatch-signature") == format!("sha256={expected}"),
        body,
        status: status.as_u16(),
    });
    status
}

#[tokio::test]
async fn alerts_firing_together_are_one_signed_notification_and_so_is_their_resolution() {
    let nats = NatsServer::start();
    let receiver = Receiver::start(0).await;
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _alerter = start_alerter(&nats, &webhook_config(&receiver.url, ""));
    let client = nats.client().await;
    wait_for_sink(&client, "alerter-sink-webhook-ops").await;

    let hot = workers("cpu", 20);
    heartbeats(&client, &hot, 97.0).await;
    let firing = receiver.wait_delivered(1).await.remove(0);
    heartbeats(&client, &hot, 20.0).await;
    let delivered = receiver.wait_delivered(2).await;
    assert_eq!(delivered.len(), 2, "one notification each for the firing and the resolution: {delivered:#?}");
    let resolved = &delivered[1];

    for (received, status) in [(&firing, "firing"), (resolved, "resolved")] {
        let body = &received.body;
        assert!(received.signed, "X-Fleetwatch-Signature is the body's HMAC-SHA256: {received:?}");
        assert_eq!(body["idempotency_key"], received.key.as_str());
        assert_eq!((body["status"].as_str(), body["count"].as_u64()), (Some(status), Some(20)), "{body}");
        assert_eq!((body["rule"].as_str(), body["severity"].as_str()), (Some("worker_overloaded"), Some("warning")));
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(20));
        assert_eq!(body["worst"].as_array().map(Vec::len), Some(5));
        assert_eq!(body["truncated"], false);
        let text = body["text"].as_str().expect("text");
        assert!(text.starts_with(&format!("20 alerts worker_overloaded {status} (warning)")), "{text}");
    }
    assert_eq!(firing.body["alerts"][0]["state"], "firing");
    assert_eq!(resolved.body["alerts"][0]["state"], "resolved");
    assert_ne!(firing.key, resolved.key);
    assert!(receiver.all().iter().all(|received| received.status == 200));
    wait_for_counter(&client, "alerter", "alerter_notifications_sent_total", 2).await;
}

#[tokio::test]
async fn a_failing_webhook_is_retried_until_it_recovers() {
    let nats = NatsServer::start();
    let receiver = Receiver::start(3).await;
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _alerter = start_alerter(&nats, &webhook_config(&receiver.url, "group_wait_ms = 200"));
    let client = nats.client().await;
    wait_for_sink(&client, "alerter-sink-webhook-ops").await;

    heartbeats(&client, &workers("gpu", 1), 99.0).await;
    let delivered = receiver.wait_delivered(1).await;
    let all = receiver.all();
    assert_eq!(all.iter().map(|received| received.status).collect::<Vec<_>>(), [500, 500, 500, 200]);
    assert!(all.iter().all(|received| received.signed && received.key == delivered[0].key), "{all:#?}");
    let body = &delivered[0].body;
    assert_eq!(body["text"], body["alerts"][0]["summary"], "one alert: its summary is the text");
    assert!(body["text"].as_str().is_some_and(|text| text.contains("gpu-000")), "{body}");
    wait_for_counter(&client, "alerter", "alerter_notification_failures_total", 3).await;
}

#[tokio::test]
async fn a_notification_is_dead_lettered_after_its_last_attempt() {
    let nats = NatsServer::start();
    let receiver = Receiver::start(u32::MAX).await;
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _alerter = start_alerter(&nats, &webhook_config(&receiver.url, "group_wait_ms = 200\nmax_attempts = 3"));
    let client = nats.client().await;
    wait_for_sink(&client, "alerter-sink-webhook-ops").await;

    heartbeats(&client, &workers("tpu", 2), 95.0).await;
    let js = async_nats::jetstream::new(client.clone());
    let letter = wait_for("a dead letter from the alerter", || async {
        let stream = js.get_stream("FLEET_DEADLETTER").await.ok()?;
        stream.get_last_raw_message_by_subject("fleet.deadletter.alerter").await.ok()
    })
    .await;
    let reason = letter.headers.get("Fleetwatch-Reason").map(|value| value.to_string()).unwrap_or_default();
    assert!(reason.contains("webhook ops") && reason.contains("3 attempts") && reason.contains("500"), "{reason}");
    let body: Value = serde_json::from_slice(&letter.payload).expect("the notification, as JSON");
    assert_eq!((body["count"].as_u64(), body["status"].as_str()), (Some(2), Some("firing")), "{body}");
    assert_eq!(receiver.all().len(), 3, "three attempts, then no more");
    wait_for_counter(&client, "alerter", "alerter_notifications_deadlettered_total", 1).await;
    // Dead-lettered is done with: nothing waits for redelivery.
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        js.get_consumer_from_stream("alerter-sink-webhook-ops", "FLEET_ALERTS").await.expect("consumer");
    let info = consumer.info().await.expect("consumer info");
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0), "{info:?}");
}

#[tokio::test]
async fn a_notification_pending_when_the_alerter_is_killed_is_delivered_after_its_restart() {
    let nats = NatsServer::start();
    let receiver = Receiver::start(u32::MAX).await;
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let sinks = webhook_config(&receiver.url, "group_wait_ms = 200\nmax_attempts = 1000\nack_wait_secs = 2");
    let mut alerter = start_alerter(&nats, &sinks);
    let client = nats.client().await;
    let mut alerts = client.subscribe("fleet.alerts.*.worker_overloaded").await.expect("subscribe");
    wait_for_sink(&client, "alerter-sink-webhook-ops").await;

    heartbeats(&client, &workers("rocm", 1), 98.0).await;
    // The webhook being down holds up neither the rules nor the alert on NATS.
    tokio::time::timeout(fleetwatch_tests::DEADLINE, futures::StreamExt::next(&mut alerts))
        .await
        .expect("the alert is published while the webhook fails");
    wait_for("two failed attempts", || async { (receiver.all().len() >= 2).then_some(()) }).await;
    alerter.kill();
    receiver.failures.store(0, Ordering::SeqCst);
    let tried_before = receiver.all().len();

    let _alerter = start_alerter(&nats, &sinks);
    let delivered = receiver.wait_delivered(1).await;
    let all = receiver.all();
    assert!(all.len() > tried_before, "delivered by the restarted alerter");
    assert_eq!(delivered[0].key, all[0].key, "the same notification, by its idempotency key");
    assert_eq!(delivered[0].body["count"], 1);
}

#[tokio::test]
async fn a_new_webhook_starts_with_the_alerts_after_it() {
    let nats = NatsServer::start();
    let receiver = Receiver::start(0).await;
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let client = nats.client().await;
    let mut alerts = client.subscribe("fleet.alerts.*.worker_overloaded").await.expect("subscribe");
    let mut alerter = start_alerter(&nats, "");
    heartbeats(&client, &workers("old", 1), 99.0).await;
    tokio::time::timeout(fleetwatch_tests::DEADLINE, futures::StreamExt::next(&mut alerts))
        .await
        .expect("an alert before the webhook exists");
    assert!(alerter.stop(), "alerter stops cleanly:\n{}", alerter.log_text());

    let _alerter = start_alerter(&nats, &webhook_config(&receiver.url, "group_wait_ms = 200"));
    wait_for_sink(&client, "alerter-sink-webhook-ops").await;
    heartbeats(&client, &workers("new", 1), 99.0).await;
    let delivered = receiver.wait_delivered(1).await;
    let body = &delivered[0].body;
    assert_eq!((body["count"].as_u64(), body["alerts"][0]["target"].as_str()), (Some(1), Some("new-000")), "{body}");
    assert_eq!(receiver.all().len(), 1);
}

#[tokio::test]
async fn silenced_and_acknowledged_revisions_reach_nobody_and_an_unsilenced_alert_does() {
    let nats = NatsServer::start();
    let receiver = Receiver::start(0).await;
    let port = free_port();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _alerter = start_alerter(&nats, &webhook_config(&receiver.url, "group_wait_ms = 200"));
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port.to_string()]);
    let client = nats.client().await;
    wait_for_sink(&client, "alerter-sink-webhook-ops").await;
    let (api, http) = (format!("http://127.0.0.1:{port}/api"), reqwest::Client::new());

    let silence = json!({"matchers": [{"name": "hardware", "op": "=", "value": "cuda"}], "duration_secs": 3600,
                         "by": "ana", "comment": "maintenance"});
    let created = wait_for("the gateway to store a silence", || async {
        let response = http.post(format!("{api}/silences")).json(&silence).send().await.ok()?;
        (response.status() == 201).then_some(response)
    })
    .await;
    let silence_id = created.json::<Value>().await.expect("json")["silence_id"].as_str().expect("id").to_owned();
    wait_for("the alerter to hold the silence", || async {
        let body = get_json(&format!("{api}/silences")).await?;
        (body["silences"].as_array()?.len() == 1).then_some(())
    })
    .await;

    let registered = |worker: &str, hardware: &str| {
        json!({"type": "worker_registered", "worker_id": worker,
               "capabilities": {"hardware": hardware, "cpu_cores": 8, "memory_gb": 32, "slots": 2}})
    };
    let events = json!([
        registered("quiet-1", "cuda"),
        heartbeat("quiet-1", 99.0),
        registered("loud-1", "cpu"),
        heartbeat("loud-1", 99.0)
    ]);
    assert_eq!(ingest(&client, &events).await["accepted"], 4);
    let first = receiver.wait_delivered(1).await.remove(0).body;
    assert_eq!((first["count"].as_u64(), first["alerts"][0]["target"].as_str()), (Some(1), Some("loud-1")), "{first}");

    // An acknowledgement tells nobody; the silence's end brings quiet-1 to people as firing.
    let alert_id = first["alerts"][0]["alert_id"].as_str().expect("alert_id");
    let ack = http.post(format!("{api}/alerts/{alert_id}/ack")).json(&json!({"by": "ana"})).send().await;
    assert_eq!(ack.expect("answer").status(), 202);
    let deleted = http.delete(format!("{api}/silences/{silence_id}?by=ana")).send().await.expect("answer");
    assert_eq!(deleted.status(), 202);
    let second = receiver.wait_delivered(2).await.remove(1).body;
    let alert = &second["alerts"][0];
    assert_eq!((second["status"].as_str(), second["count"].as_u64()), (Some("firing"), Some(1)), "{second}");
    assert_eq!((alert["target"].as_str(), alert["change"].as_str()), (Some("quiet-1"), Some("unsilenced")));
    assert_eq!(receiver.all().len(), 2, "nothing for the silenced firing nor the acknowledgement");
}

/// Debian's `prometheus-alertmanager`, on a free port with a null receiver; killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Alertmanager {
    async fn start(dir: &std::path::Path) -> Self {
        let binary = std::env::var("ALERTMANAGER").unwrap_or_else(|_| "prometheus-alertmanager".into());
        let config = dir.join("alertmanager.yml");
        std::fs::write(&config, "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n").expect("config");
        let port = free_port();
        let log = dir.join("alertmanager.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("alertmanager-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run {binary}: {err}; install it with `apt-get install prometheus-alertmanager`, or set ALERTMANAGER to its path")
            });
        let manager = Self { child, url: format!("http://127.0.0.1:{port}"), log };
        let ready = format!("{}/-/ready", manager.url);
        wait_for("alertmanager to be ready", || async {
            reqwest::get(&ready).await.ok()?.status().is_success().then_some(())
        })
        .await;
        manager
    }

    /// The `worker_overloaded` alerts Alertmanager holds now and not yet resolved, by their
    /// `target` label.
    async fn alerts(&self) -> Option<std::collections::BTreeMap<String, Value>> {
        let alerts = get_json(&format!("{}/api/v2/alerts", self.url)).await?;
        Some(
            alerts
                .as_array()?
                .iter()
                .filter(|alert| alert["labels"]["alertname"] == "worker_overloaded")
                .filter_map(|alert| Some((alert["labels"]["target"].as_str()?.to_owned(), alert.clone())))
                .collect(),
        )
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- alertmanager log ----\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn alertmanager_holds_the_firing_alerts_while_resent_and_resolves_them() {
    let nats = NatsServer::start();
    let manager = Alertmanager::start(nats.dir.path()).await;
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let sinks = format!(
        "[alerter.alertmanager]\nurl = \"{}\"\nresend_secs = 1\ngenerator_base_url = \"http://dash.example:8082\"\n",
        manager.url
    );
    let _alerter = start_alerter(&nats, &sinks);
    let client = nats.client().await;
    wait_for_sink(&client, "alerter-sink-alertmanager").await;

    let hot = workers("am", 3);
    heartbeats(&client, &hot, 96.0).await;
    let alerts = wait_for("three alerts in alertmanager", || async {
        let alerts = manager.alerts().await?;
        (alerts.len() == 3).then_some(alerts)
    })
    .await;
    let first = &alerts["am-000"];
    assert_eq!(first["labels"]["alertname"], "worker_overloaded");
    assert_eq!(first["labels"]["severity"], "warning");
    assert_eq!(first["status"]["state"], "active");
    let alert_id = first["annotations"]["alert_id"].as_str().expect("alert_id annotation");
    assert!(alert_id.starts_with("worker_overloaded-am-000-"), "{first}");
    assert_eq!(first["generatorURL"], format!("http://dash.example:8082/alerts/{alert_id}"));
    assert!(first["annotations"]["summary"].as_str().is_some_and(|summary| summary.contains("am-000")), "{first}");

    // Each says it ends 4 s on (4 x resend_secs): still there past that, it was re-sent.
    let ends_at = |alert: &Value| shared::time::parse_rfc3339(alert["endsAt"].as_str().unwrap_or_default());
    let first_end = ends_at(first).expect("endsAt");
    assert!(first_end > now_ms(), "a firing alert ends in the future: {first}");
    wait_for("the alerts re-sent past their first end", || async {
        let alerts = manager.alerts().await?;
        (now_ms() > first_end + 500 && alerts.len() == 3 && ends_at(&alerts["am-000"])? > first_end).then_some(())
    })
    .await;

    heartbeats(&client, &hot[..1], 30.0).await;
    let alerts = wait_for("am-000 resolved in alertmanager", || async {
        let alerts = manager.alerts().await?;
        (!alerts.contains_key("am-000")).then_some(alerts)
    })
    .await;
    assert_eq!(alerts.keys().collect::<Vec<_>>(), ["am-001", "am-002"], "the others still fire");
    // Two more resends (of the two left) do not bring it back.
    let counter = "alerter_alertmanager_resends_total";
    let reports = fleetwatch_tests::health_reports(&client, "alerter", 1).await;
    let resent = reports.values().next().and_then(|report| report.counters.get(counter).copied()).unwrap_or(0);
    wait_for_counter(&client, "alerter", counter, resent + 4).await;
    let alerts = manager.alerts().await.expect("alertmanager answers");
    assert_eq!(alerts.keys().collect::<Vec<_>>(), ["am-001", "am-002"], "am-000 stays resolved");
}
