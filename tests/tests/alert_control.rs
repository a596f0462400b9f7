//! What people and programs do to alerts becomes events: the gateway's alert API asks the
//! collector on `fleet.control.alerts`, which alone stores these events; public ingest
//! refuses them. Health reports and the coordinator's reachability become events too.

use async_nats::jetstream;
use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, wait_for, wait_for_counter};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::alert::{ControlReply, Severity};
use shared::event::{ComponentHealth, Event};
use shared::{Envelope, codec, now_ms};

/// Every event stored now on `subject` (a filter on FLEET_EVENTS), in order.
async fn stored(client: &async_nats::Client, subject: &str) -> Vec<Envelope<Event>> {
    let js = jetstream::new(client.clone());
    let Ok(stream) = js.get_stream("FLEET_EVENTS").await else { return Vec::new() };
    let config = jetstream::consumer::pull::OrderedConfig { filter_subject: subject.into(), ..Default::default() };
    let consumer = stream.create_consumer(config).await.expect("an ordered consumer");
    if consumer.cached_info().num_pending == 0 {
        return Vec::new();
    }
    let mut messages = consumer.messages().await.expect("messages");
    let mut events = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.expect("a message");
        events.push(codec::decode_envelope::<Event>(&message.payload).expect("an event"));
        if message.info().expect("jetstream info").pending == 0 {
            break;
        }
    }
    events
}

/// The stored event with envelope id `id`, once it is there.
async fn stored_event(client: &async_nats::Client, subject: &str, id: &str) -> Envelope<Event> {
    wait_for(&format!("event {id} in FLEET_EVENTS"), || async {
        stored(client, subject).await.into_iter().find(|envelope| envelope.id == id)
    })
    .await
}

/// The reasons of the dead letters stored now.
async fn dead_letter_reasons(client: &async_nats::Client) -> Vec<String> {
    let js = jetstream::new(client.clone());
    let Ok(mut stream) = js.get_stream("FLEET_DEADLETTER").await else { return Vec::new() };
    let last = stream.info().await.map_or(0, |info| info.state.last_sequence);
    let mut reasons = Vec::new();
    for sequence in 1..=last {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            reasons.extend(message.headers.get("Fleetwatch-Reason").map(|value| value.to_string()));
        }
    }
    reasons
}

struct Gateway {
    http: reqwest::Client,
    base: String,
}

impl Gateway {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

fn start_pair(nats: &NatsServer) -> (ServiceProcess, ServiceProcess, Gateway) {
    let port = free_port();
    let collector = ServiceProcess::start("collector", nats, &["--demo-workers", "0", "--http-port", "0"]);
    let gateway = ServiceProcess::start("gateway", nats, &["--port", &port.to_string()]);
    (collector, gateway, Gateway { http: reqwest::Client::new(), base: format!("http://127.0.0.1:{port}") })
}

#[tokio::test]
async fn a_custom_alert_posted_to_the_gateway_is_stored_as_an_event() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let (_collector, _gateway, gateway) = start_pair(&nats);
    let before = now_ms();
    let raised = json!({"level": "warning", "title": "Custom Alert", "message": "This is a custom alert message",
                        "source": "custom_script", "metrics": {"value": 42}});
    // 503 until both are up and the collector listens on the control subject.
    let answer = wait_for("the gateway to store a custom alert", || async {
        let sent = gateway.http.post(format!("{}/api/alerts", gateway.base)).json(&raised).send().await.ok()?;
        (sent.status() == 202).then_some(sent)
    })
    .await;
    let id = answer.json::<Value>().await.expect("json")["id"].as_str().expect("the event id").to_owned();

    let envelope = stored_event(&client, "fleet.events.control.alerts", &id).await;
    assert_eq!(envelope.source, "gateway");
    assert!(envelope.time >= before && envelope.time <= now_ms(), "stamped with the collector's clock");
    let Event::AlertRaised { source, level, title, message, metrics } = envelope.payload else {
        panic!("an alert_raised event: {:?}", envelope.payload)
    };
    assert_eq!((source.as_str(), level, title.as_str()), ("custom_script", Severity::Warning, "Custom Alert"));
    assert_eq!((message.as_str(), metrics.get("value")), ("This is a custom alert message", Some(&42.0)));

    let silence = json!({"matchers": [{"name": "rule", "value": "worker_overloaded"},
                                      {"name": "hardware", "op": "=~", "value": "cuda|rocm"}],
                         "duration_secs": 3600, "by": "ana", "comment": "maintenance"});
    let (code, created) = gateway.post("/api/silences", silence).await;
    assert_eq!(code, 201, "{created}");
    let event_id = created["id"].as_str().expect("the event id");
    let Event::SilenceCreated { silence_id, starts_at, ends_at, matchers, by, .. } =
        stored_event(&client, "fleet.events.control.alerts", event_id).await.payload
    else {
        panic!("a silence_created event")
    };
    assert_eq!(Some(silence_id.as_str()), created["silence_id"].as_str());
    assert_eq!((ends_at - starts_at, matchers.len(), by.as_str()), (3_600_000, 2, "ana"));

    let (code, listed) = gateway.send(reqwest::Method::GET, "/api/silences", None).await;
    assert_eq!((code, listed["silences"].is_array()), (200, true), "{listed}");
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_reason_and_unknown_alerts_are_404() {
    let nats = NatsServer::start();
    let (_collector, _gateway, gateway) = start_pair(&nats);
    wait_for("the gateway", || async { reqwest::get(format!("{}/healthz", gateway.base)).await.ok() }).await;
    let silence = |matcher: Value, window: Value| {
        let mut body = json!({"matchers": [matcher], "by": "ana"});
        body.as_object_mut().expect("object").extend(window.as_object().expect("object").clone());
        body
    };
    let rule = json!({"name": "rule", "value": "worker_overloaded"});
    let refused = [
        ("/api/alerts", json!({"level": "warning", "message": "no title", "source": "x"}), "title"),
        ("/api/alerts", json!({"level": "urgent", "title": "t", "source": "x"}), "urgent"),
        ("/api/alerts", json!({"level": "info", "title": "t", "source": "not a token"}), "source"),
        ("/api/silences", silence(rule.clone(), json!({"starts_at": 2_000_000, "ends_at": 1_000_000})), "ends_at"),
        (
            "/api/silences",
            silence(json!({"name": "model", "op": "=~", "value": "bert("}), json!({"duration_secs": 60})),
            "regex",
        ),
        ("/api/silences", silence(rule, json!({"ends_at": "2099-01-01T00:00:00Z"})).tap_remove("by"), "by"),
    ];
    for (path, body, needle) in refused {
        let (code, answer) = gateway.post(path, body.clone()).await;
        assert_eq!(code, 400, "{path} {body}: {answer}");
        let reason = answer["error"].as_str().unwrap_or_else(|| panic!("a JSON reason: {answer}"));
        assert!(reason.contains(needle), "{path} {body}: {reason}");
    }
    for action in ["ack", "resolve"] {
        let (code, answer) =
            gateway.post(&format!("/api/alerts/worker_overloaded-w1-5/{action}"), json!({"by": "ana"})).await;
        assert_eq!(code, 404, "{action}: {answer}");
        assert!(answer["error"].is_string());
    }
    let (code, answer) = gateway.send(reqwest::Method::DELETE, "/api/silences/no-such-silence?by=ana", None).await;
    assert_eq!(code, 404, "{answer}");
}

/// `Value::remove` that hands the value back, for building test bodies in one expression.
trait TapRemove {
    fn tap_remove(self, key: &str) -> Self;
}

impl TapRemove for Value {
    fn tap_remove(mut self, key: &str) -> Self {
        self.as_object_mut().map(|object| object.remove(key));
        self
    }
}

#[tokio::test]
async fn the_control_subject_takes_only_valid_alert_control_events() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let ask = |event: Value| {
        let client = client.clone();
        async move {
            let payload = bytes::Bytes::from(serde_json::to_vec(&event).expect("json"));
            let reply = wait_for("the collector to answer on fleet.control.alerts", || async {
                client.request("fleet.control.alerts", payload.clone()).await.ok()
            })
            .await;
            serde_json::from_slice::<ControlReply>(&reply.payload).expect("a control reply")
        }
    };
    let ack = json!({"type": "alert_acknowledged", "alert_id": "worker_overloaded-w1-5", "by": "ana"});
    let ControlReply::Stored { id } = ask(ack).await else { panic!("a valid acknowledgement is stored") };
    let stored = stored_event(&client, "fleet.events.control.alerts", &id).await;
    assert!(matches!(stored.payload, Event::AlertAcknowledged { ref by, .. } if by == "ana"));

    let heartbeat = json!({"type": "heartbeat", "worker_id": "cpu-1", "cpu_pct": 5, "memory_pct": 5,
                           "network_pct": 0, "running_tasks": 0, "queued_tasks": 0});
    let refused = [(heartbeat, "heartbeat"), (json!({"type": "alert_resolved", "alert_id": "a", "by": ""}), "by")];
    for (event, needle) in refused {
        let ControlReply::Refused { reason } = ask(event.clone()).await else { panic!("{event} is refused") };
        assert!(reason.contains(needle), "{reason}");
    }
    wait_for_counter(&client, "collector", "collector_control_deadletters_total", 2).await;
    let reasons = wait_for("two dead letters", || async {
        let reasons = dead_letter_reasons(&client).await;
        (reasons.len() >= 2).then_some(reasons)
    })
    .await;
    assert!(reasons[0].contains("heartbeat is not an alert control event"), "{reasons:?}");
}

#[tokio::test]
async fn public_ingest_refuses_alert_control_events() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let port = free_port();
    let _collector =
        ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", &port.to_string()]);
    let ack = json!({"type": "alert_acknowledged", "alert_id": "worker_overloaded-w1-5", "by": "mallory"});

    let answer = fleetwatch_tests::ingest(&client, &ack).await;
    assert_eq!(answer["accepted"], 0, "{answer}");
    let reason = answer["rejected"][0]["reason"].as_str().expect("a reason").to_owned();
    assert!(reason.contains("alert_acknowledged"), "{reason}");
    let reasons = wait_for("the dead letter", || async {
        let reasons = dead_letter_reasons(&client).await;
        (!reasons.is_empty()).then_some(reasons)
    })
    .await;
    assert!(reasons[0].contains("alert_acknowledged"), "{reasons:?}");

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/ingest");
    let refused = wait_for("http ingest", || async { http.post(&url).json(&ack).send().await.ok() }).await;
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.expect("json");
    assert!(body["rejected"][0]["reason"].as_str().is_some_and(|reason| reason.contains("alert_acknowledged")));
    assert!(stored(&client, "fleet.events.control.alerts").await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn health_reports_become_service_report_events() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut reports = client.subscribe("fleet.events.service.>").await.expect("subscribe");
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let mut next = async || -> (String, Envelope<Event>) {
        let message = tokio::time::timeout(fleetwatch_tests::DEADLINE, reports.next())
            .await
            .expect("a service report in time")
            .expect("subscription open");
        (message.subject.to_string(), codec::decode_envelope(&message.payload).expect("an event"))
    };
    // The collector forwards its own report.
    let (subject, own) = next().await;
    assert_eq!(subject, "fleet.events.service.collector");
    assert!(matches!(own.payload, Event::ServiceReport { ref service, .. } if service == "collector"));

    let report = |service: &str, time: i64| shared::health::HealthReport {
        service: service.into(),
        instance: "archive-host.example-7".into(),
        version: "0.1.0".into(),
        started_at: 1_000,
        time,
        restarts: None,
        counters: [("archiver_messages_skipped_total".to_owned(), 3), ("archiver_commits_total".to_owned(), 50)].into(),
        gauges: [2.5, 9.0]
            .map(|value| shared::health::Gauge {
                name: "archiver_lag_seconds".into(),
                labels: Default::default(),
                value,
            })
            .into(),
    };
    let publish = |report: shared::health::HealthReport| {
        let client = client.clone();
        async move {
            let subject = format!("fleet.health.{}", report.service.replace(' ', "_"));
            client.publish(subject, codec::encode(&report).expect("encodes")).await.expect("publish");
            client.flush().await.expect("flush");
        }
    };
    publish(report("bad service", now_ms())).await;
    wait_for_counter(&client, "collector", "collector_reports_invalid_total", 1).await;
    // A clock a day behind does not set the event's time: the collector's clock does.
    let before = now_ms();
    publish(report("archiver", before - 86_400_000)).await;
    let (subject, forwarded) = loop {
        let (subject, envelope) = next().await;
        if subject != "fleet.events.service.collector" {
            break (subject, envelope);
        }
    };
    assert_eq!(subject, "fleet.events.service.archiver");
    assert!(forwarded.time >= before, "stamped when it arrived, not with the report's time");
    assert_eq!(
        forwarded.payload,
        Event::ServiceReport {
            service: "archiver".into(),
            instance: "archive-host.example-7".into(),
            started_at: 1_000,
            dead_letters: 3,
            lag_seconds: Some(9.0),
        }
    );
}

#[tokio::test]
async fn an_unreachable_coordinator_is_reported_down_on_every_poll_then_healthy() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut statuses = client.subscribe("fleet.events.system.coordinator").await.expect("subscribe");
    // A port nothing listens on, until the coordinator below takes it.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "0", "--http-port", "0", "--coordinator", &url, "--coordinator-poll-ms", "100"],
    );
    let mut next = async || -> Event {
        let message = tokio::time::timeout(fleetwatch_tests::DEADLINE, statuses.next())
            .await
            .expect("a coordinator status in time")
            .expect("subscription open");
        codec::decode_envelope::<Event>(&message.payload).expect("an event").payload
    };
    // Each failed poll says so: its time is the last poll that /api/status shows.
    for _ in 0..3 {
        let Event::ComponentStatus { component, health, message } = next().await else { panic!("a component status") };
        assert_eq!((component.as_str(), health), ("coordinator", ComponentHealth::Down));
        assert!(message.contains("does not answer"), "{message}");
    }

    let empty = |list: &'static str| move || async move { axum::Json(json!({ list: [] })) };
    let app = axum::Router::new()
        .route("/status", axum::routing::get(|| async { axum::Json(json!({"version": "1.2.0", "uptime": 5})) }))
        .route("/api/workers", axum::routing::get(empty("workers")))
        .route("/api/tasks", axum::routing::get(empty("tasks")));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the coordinator's port");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let healthy = loop {
        let Event::ComponentStatus { health, message, .. } = next().await else { panic!("a component status") };
        if health != ComponentHealth::Down {
            break (health, message);
        }
    };
    assert_eq!(healthy.0, ComponentHealth::Healthy, "after down comes healthy");
    assert!(healthy.1.contains("version 1.2.0"), "{}", healthy.1);
}
