//! The collector's sources seen from outside: what a coordinator's REST API says becomes
//! events on the bus.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use fleetwatch_tests::{NatsServer, ServiceProcess, wait_for_counter};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::event::Event;
use shared::{Envelope, codec};
use std::sync::{Arc, Mutex};

/// A coordinator whose answers the test changes: (workers, tasks, healthy).
type Coordinator = Arc<Mutex<(Value, Value, bool)>>;

async fn serve_coordinator(state: Coordinator) -> String {
    let answer = |pick: fn(&(Value, Value, bool)) -> Value| {
        move |State(state): State<Coordinator>| async move {
            let state = state.lock().expect("lock").clone();
            if !state.2 {
                return Err(StatusCode::INTERNAL_SERVER_ERROR);
            }
            Ok(Json(pick(&state)))
        }
    };
    let app = axum::Router::new()
        .route("/api/workers", get(answer(|state| json!({ "workers": state.0 }))))
        .route("/api/tasks", get(answer(|state| json!({ "tasks": state.1 }))))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The next events other than heartbeats, service reports and the coordinator's own status
/// (tests/tests/alert_control.rs has those), until `count` have come.
async fn next_events(subscriber: &mut async_nats::Subscriber, count: usize) -> Vec<(i64, Event)> {
    let mut events = Vec::new();
    let collect = async {
        while events.len() < count {
            let message = subscriber.next().await.expect("subscription open");
            let envelope: Envelope<Event> = codec::decode_envelope(&message.payload).expect("event decodes");
            let skipped = matches!(
                envelope.payload,
                Event::Heartbeat { .. } | Event::ServiceReport { .. } | Event::ComponentStatus { .. } | Event::Clock {}
            );
            if !skipped {
                events.push((envelope.time, envelope.payload));
            }
        }
    };
    tokio::time::timeout(fleetwatch_tests::DEADLINE, collect).await.expect("events from the coordinator in time");
    events
}

#[tokio::test]
async fn a_polled_coordinator_becomes_events() {
    let worker =
        json!({"worker_id": "cuda-1", "status": "idle", "hardware": "cuda", "cpu_pct": 12.5, "memory_pct": 30});
    let task = |status: &str| {
        json!({"task_id": "t1", "model": "vit-large", "family": "vision", "priority": 7, "status": status,
               "worker_id": "cuda-1", "created_at": "2026-11-24T10:00:00Z", "started_at": 1_795_514_460_000i64})
    };
    let coordinator: Coordinator = Arc::new(Mutex::new((json!([worker.clone()]), json!([task("queued")]), true)));
    let url = serve_coordinator(coordinator.clone()).await;

    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut events = client.subscribe("fleet.events.>").await.expect("subscribe");
    let collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "0", "--http-port", "0", "--coordinator", &url, "--coordinator-poll-ms", "100"],
    );

    let first = next_events(&mut events, 2).await;
    assert!(
        matches!(&first[0].1, Event::WorkerRegistered { worker_id, capabilities } if worker_id == "cuda-1" && capabilities.hardware == shared::event::HardwareKind::Cuda)
    );
    assert!(matches!(&first[1].1, Event::TaskQueued { task_id, priority: 7, .. } if task_id == "t1"));
    assert_eq!(first[1].0, 1_795_514_400_000, "created_at, parsed from RFC 3339");

    coordinator.lock().expect("lock").1 = json!([task("running")]);
    let running = next_events(&mut events, 2).await;
    assert_eq!(running.iter().map(|(_, event)| event.kind()).collect::<Vec<_>>(), ["task_assigned", "task_started"]);
    assert_eq!(running[1].0, 1_795_514_460_000);

    // A coordinator that errors for a while loses nothing once it answers again.
    coordinator.lock().expect("lock").2 = false;
    wait_for_counter(&client, "collector", "collector_coordinator_poll_failures_total", 1).await;
    *coordinator.lock().expect("lock") = (json!([]), json!([task("completed")]), true);
    let finished = next_events(&mut events, 2).await;
    let kinds: Vec<&str> = finished.iter().map(|(_, event)| event.kind()).collect();
    assert_eq!(kinds, ["worker_deregistered", "task_completed"]);
    drop(collector);
}

#[tokio::test]
async fn the_host_agent_reports_this_machine_as_a_worker() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut events = client.subscribe("fleet.events.*.*.this-host").await.expect("subscribe");
    let mut collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "0", "--http-port", "0", "--host-agent", "--host-worker-id", "this-host"],
    );
    let mut next = async || -> Event {
        let message =
            tokio::time::timeout(fleetwatch_tests::DEADLINE, events.next()).await.expect("in time").expect("open");
        codec::decode_envelope::<Event>(&message.payload).expect("decodes").payload
    };
    let Event::WorkerRegistered { capabilities, .. } = next().await else { panic!("registers first") };
    assert!(capabilities.cpu_cores >= 1 && capabilities.memory_gb > 0.5, "{capabilities:?}");
    assert_eq!(capabilities.gpu_model.is_some(), capabilities.hardware == shared::event::HardwareKind::Cuda);
    for _ in 0..2 {
        let Event::Heartbeat { cpu_pct, memory_pct, gpu_pct, .. } = next().await else { panic!("then heartbeats") };
        assert!((0.0..=100.0).contains(&cpu_pct));
        assert!(memory_pct > 0.0 && memory_pct <= 100.0, "a running machine uses memory: {memory_pct}");
        assert_eq!(gpu_pct.is_some(), capabilities.gpu_model.is_some());
    }
    assert!(collector.stop());
    let last = loop {
        let event = next().await;
        if !matches!(event, Event::Heartbeat { .. }) {
            break event;
        }
    };
    assert!(
        matches!(last, Event::WorkerStatusChanged { status: shared::event::ReportedStatus::Offline, .. }),
        "{last:?}"
    );
}
