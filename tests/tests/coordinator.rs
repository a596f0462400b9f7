//! The collector against a coordinator that answers as the seeds' distributed testing
//! framework does: its exact shapes, its API key or bearer token, its `limit` without
//! offset, its local times, its outages; and that framework's worker messages on the ingest.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fleetwatch_tests::{NatsServer, ServiceProcess, wait_for, wait_for_counter};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::event::{ComponentHealth, Event, HardwareKind, ModelFamily};
use shared::{Envelope, codec};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

const KEY: &str = "k-secret";
const TOKEN: &str = "jwt.header.sig";

/// What the coordinator knows; the test changes it between polls.
#[derive(Default)]
struct Known {
    workers: Vec<Value>,
    /// Each task as `GET /api/tasks/{id}` gives it (the list leaves out the detail fields).
    tasks: Vec<Value>,
    down: bool,
    /// The largest `limit` asked.
    largest_limit: usize,
}

type Coordinator = Arc<Mutex<Known>>;

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// Its checks, in its order: down, then the key or token. `Some`: the refusal.
fn check(known: &Known, headers: &HeaderMap) -> Option<Response> {
    if known.down {
        return Some(refuse(StatusCode::SERVICE_UNAVAILABLE, "coordinator is restarting"));
    }
    let key = headers.get("x-api-key").and_then(|value| value.to_str().ok());
    let bearer = headers.get("authorization").and_then(|value| value.to_str().ok());
    (key != Some(KEY) && bearer != Some(&format!("Bearer {TOKEN}")))
        .then(|| refuse(StatusCode::UNAUTHORIZED, "invalid API key"))
}

fn listed(task: &Value) -> Value {
    let mut item = task.clone();
    for detail in ["config", "requirements", "result", "error"] {
        item.as_object_mut().expect("object").remove(detail);
    }
    item
}

async fn serve(coordinator: Coordinator) -> String {
    async fn status(State(c): State<Coordinator>, headers: HeaderMap) -> Response {
        let known = c.lock().expect("lock");
        if let Some(refused) = check(&known, &headers) {
            return refused;
        }
        let count = |status: &str| known.tasks.iter().filter(|task| task["status"] == status).count();
        Json(json!({
            "workers": {"total": known.workers.len(), "active": 1, "idle": 0, "offline": 0},
            "tasks": {"total": known.tasks.len(), "pending": count("pending"), "running": count("running"),
                      "completed": count("completed"), "failed": count("failed")},
            "uptime": 3600.5, "version": "0.9.1"
        }))
        .into_response()
    }
    async fn workers(State(c): State<Coordinator>, headers: HeaderMap) -> Response {
        let known = c.lock().expect("lock");
        check(&known, &headers).unwrap_or_else(|| Json(json!({ "workers": known.workers })).into_response())
    }
    async fn tasks(
        State(c): State<Coordinator>,
        headers: HeaderMap,
        Query(query): Query<HashMap<String, String>>,
    ) -> Response {
        let mut known = c.lock().expect("lock");
        if let Some(refused) = check(&known, &headers) {
            return refused;
        }
        let limit: usize = query.get("limit").and_then(|limit| limit.parse().ok()).unwrap_or(100);
        known.largest_limit = known.largest_limit.max(limit);
        let status = query.get("status");
        let items: Vec<Value> = known
            .tasks
            .iter()
            .filter(|task| status.is_none_or(|status| task["status"] == status.as_str()))
            .take(limit)
            .map(listed)
            .collect();
        Json(json!({ "tasks": items, "count": items.len() })).into_response()
    }
    async fn task(State(c): State<Coordinator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
        let known = c.lock().expect("lock");
        if let Some(refused) = check(&known, &headers) {
            return refused;
        }
        match known.tasks.iter().find(|task| task["task_id"] == id.as_str()) {
            Some(task) => Json(task.clone()).into_response(),
            None => refuse(StatusCode::NOT_FOUND, "task not found"),
        }
    }
    let app = axum::Router::new()
        .route("/status", get(status))
        .route("/api/workers", get(workers))
        .route("/api/tasks", get(tasks))
        .route("/api/tasks/{id}", get(task))
        .with_state(coordinator);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn worker(id: &str, status: &str) -> Value {
    json!({"worker_id": id, "hostname": format!("{id}.lab"), "status": status,
           "last_heartbeat": "2026-11-25T11:41:57.726330", "registered": "2026-11-25T09:00:00",
           "capabilities_summary": {"hardware": ["cpu", "cuda"], "gpu": {"name": "NVIDIA A100", "count": 2, "memory_gb": 80},
                                    "cpu": {"model": "AMD EPYC", "cores": 32, "threads": 64}, "memory_gb": 256}})
}

fn task(id: &str, status: &str, model: &str) -> Value {
    let running = status != "pending";
    json!({"task_id": id, "type": "benchmark", "status": status, "created": "2026-11-25T10:00:00",
           "started": running.then_some("2026-11-25T10:00:05.5"), "ended": (status == "completed").then_some("2026-11-25T10:00:09"),
           "worker_id": running.then_some("cuda-1"), "priority": 3, "attempts": 1,
           "config": {"model": model, "batch_size": 8}, "requirements": {"hardware": ["cuda"]}, "result": null, "error": null})
}

/// Events from the bus, decoded.
struct Bus(async_nats::Subscriber);

impl Bus {
    async fn until<T>(&mut self, what: &str, mut pick: impl FnMut(&Envelope<Event>) -> Option<T>) -> T {
        let found = async {
            loop {
                let message = self.0.next().await.expect("subscription open");
                let envelope: Envelope<Event> = codec::decode_envelope(&message.payload).expect("an event");
                if let Some(found) = pick(&envelope) {
                    return found;
                }
            }
        };
        tokio::time::timeout(fleetwatch_tests::DEADLINE, found).await.unwrap_or_else(|_| panic!("{what} in time"))
    }
}

fn utc(text: &str) -> i64 {
    shared::time::parse_rfc3339(text).expect("a time")
}

#[tokio::test]
async fn the_seeds_coordinator_is_polled_whole_through_its_key_paging_odd_items_and_an_outage() {
    let mut tasks: Vec<Value> =
        (0..130).map(|n| task(&format!("done-{n}"), "completed", "bert-base-uncased")).collect();
    tasks.push(task("t-new", "pending", "openai/whisper-tiny"));
    let mut odd = task("t odd", "pending", "bert-base-uncased");
    odd["created"] = json!("last tuesday");
    tasks.push(odd);
    let coordinator = Coordinator::new(Mutex::new(Known {
        workers: vec![worker("cuda-1", "busy"), json!({"hostname": "no-id.lab", "status": "active"})],
        tasks,
        ..Known::default()
    }));
    let url = serve(coordinator.clone()).await;
    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut bus = Bus(client.subscribe("fleet.events.>").await.expect("subscribe"));
    let _collector = ServiceProcess::start_with_env(
        "collector",
        &nats,
        &["--demo-workers", "0", "--http-port", "0", "--coordinator", &url, "--coordinator-poll-ms", "100"],
        &[
            ("FLEETWATCH_COLLECTOR__COORDINATOR__API_KEY", KEY),
            ("FLEETWATCH_COLLECTOR__COORDINATOR__PAGE_SIZE", "50"),
            ("FLEETWATCH_COLLECTOR__COORDINATOR__UTC_OFFSET", "+02:00"),
        ],
    );

    let capabilities = bus
        .until("cuda-1's registration", |envelope| match &envelope.payload {
            Event::WorkerRegistered { worker_id, capabilities } if worker_id == "cuda-1" => Some(capabilities.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (capabilities.hardware, capabilities.cpu_cores, capabilities.memory_gb),
        (HardwareKind::Cuda, 32, 256.0)
    );
    assert_eq!(capabilities.gpu_model.as_deref(), Some("NVIDIA A100"));

    // All 130 completed tasks, past a first limit of 50, each once with its model and times.
    let mut completed = BTreeSet::new();
    let mut queued: BTreeMap<String, (i64, String, ModelFamily)> = BTreeMap::new();
    bus.until("every task", |envelope| {
        match &envelope.payload {
            Event::TaskQueued { task_id, model, family, .. } => {
                queued.insert(task_id.clone(), (envelope.time, model.clone(), *family));
            }
            Event::TaskCompleted { task_id, .. } => {
                assert!(completed.insert(task_id.clone()), "{task_id} completed twice");
                assert_eq!(envelope.time, utc("2026-11-25T08:00:09Z"), "ended, in the coordinator's +02:00");
            }
            _ => {}
        }
        (completed.len() == 130 && queued.contains_key("t-new")).then_some(())
    })
    .await;
    assert!(coordinator.lock().expect("lock").largest_limit >= 200, "the limit doubled until a list came back short");
    let (created, model, family) = &queued["t-new"];
    assert_eq!(
        (*created, model.as_str(), *family),
        (utc("2026-11-25T08:00:00Z"), "openai/whisper-tiny", ModelFamily::Audio)
    );
    assert_eq!(queued["done-7"].2, ModelFamily::Text);

    // The worker without an id and the task with a time that is none: each dead-lettered once.
    wait_for_counter(&client, "collector", "collector_coordinator_deadletters_total", 2).await;
    let js = async_nats::jetstream::new(client.clone());
    let reasons = wait_for("two dead letters", || async {
        let mut stream = js.get_stream("FLEET_DEADLETTER").await.ok()?;
        (stream.info().await.ok()?.state.messages == 2).then_some(())?;
        let mut reasons = Vec::new();
        for seq in 1..=2 {
            let message = stream.get_raw_message(seq).await.ok()?;
            reasons.push(message.headers.get("Fleetwatch-Reason")?.to_string());
        }
        Some(reasons)
    })
    .await;
    assert!(reasons.iter().any(|reason| reason.contains("worker_id")), "{reasons:?}");
    assert!(reasons.iter().any(|reason| reason.contains("last tuesday")), "{reasons:?}");

    // It starts on cuda-1: the worker's heartbeat counts it, times as the coordinator gave them.
    {
        let mut known = coordinator.lock().expect("lock");
        let pending = known.tasks.iter_mut().find(|task| task["task_id"] == "t-new").expect("t-new");
        *pending = task("t-new", "running", "openai/whisper-tiny");
    }
    let (mut started, mut counted) = (None, false);
    bus.until("t-new started and cuda-1's heartbeat counting it", |envelope| {
        match &envelope.payload {
            Event::TaskStarted { task_id, worker_id } if task_id == "t-new" => {
                started = Some((envelope.time, worker_id.clone()))
            }
            Event::Heartbeat { worker_id, running_tasks: Some(1), cpu_pct: None, network_pct: None, .. }
                if worker_id == "cuda-1" =>
            {
                counted = true
            }
            _ => {}
        }
        (started.is_some() && counted).then_some(())
    })
    .await;
    assert_eq!(started, Some((utc("2026-11-25T08:00:05.5Z"), "cuda-1".into())));

    // An outage: reported down; what happens meanwhile arrives once it answers again.
    coordinator.lock().expect("lock").down = true;
    let down = bus
        .until("down", |envelope| match &envelope.payload {
            Event::ComponentStatus { health: ComponentHealth::Down, message, .. } => Some(message.clone()),
            _ => None,
        })
        .await;
    assert!(down.contains("coordinator is restarting"), "its own error: {down}");
    {
        let mut known = coordinator.lock().expect("lock");
        let running = known.tasks.iter_mut().find(|task| task["task_id"] == "t-new").expect("t-new");
        *running = task("t-new", "completed", "openai/whisper-tiny");
        known.workers[0] = worker("cuda-1", "recovery_pending");
        known.down = false;
    }
    // One poll brings them all: its health, the worker's change, the task's end.
    let (mut healthy, mut draining, mut completed) = (None, false, false);
    bus.until("healthy again, cuda-1 draining and t-new completed", |envelope| {
        match &envelope.payload {
            Event::ComponentStatus { health: ComponentHealth::Healthy, message, .. } => healthy = Some(message.clone()),
            Event::WorkerStatusChanged { worker_id, status: shared::event::ReportedStatus::Draining, .. }
                if worker_id == "cuda-1" =>
            {
                draining = true
            }
            Event::TaskCompleted { task_id, .. } if task_id == "t-new" => completed = true,
            _ => {}
        }
        (healthy.is_some() && draining && completed).then_some(())
    })
    .await;
    let healthy = healthy.expect("healthy");
    assert!(healthy.contains("version 0.9.1"), "{healthy}");
}

#[tokio::test]
async fn a_bearer_token_is_accepted_and_a_wrong_key_is_reported_with_the_coordinators_reason() {
    let coordinator =
        Coordinator::new(Mutex::new(Known { workers: vec![worker("cuda-1", "active")], ..Known::default() }));
    let url = serve(coordinator).await;
    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut bus = Bus(client.subscribe("fleet.events.>").await.expect("subscribe"));
    let args = ["--demo-workers", "0", "--http-port", "0", "--coordinator", &url, "--coordinator-poll-ms", "100"];
    let wrong = ServiceProcess::start_with_env(
        "collector",
        &nats,
        &args,
        &[("FLEETWATCH_COLLECTOR__COORDINATOR__API_KEY", "guess")],
    );
    let refused = bus
        .until("down", |envelope| match &envelope.payload {
            Event::ComponentStatus { health: ComponentHealth::Down, message, .. } => Some(message.clone()),
            _ => None,
        })
        .await;
    assert!(refused.contains("401") && refused.contains("invalid API key"), "{refused}");
    drop(wrong);
    let _right = ServiceProcess::start_with_env(
        "collector",
        &nats,
        &args,
        &[("FLEETWATCH_COLLECTOR__COORDINATOR__TOKEN", TOKEN)],
    );
    bus.until("cuda-1 through the token", |envelope| match &envelope.payload {
        Event::WorkerRegistered { worker_id, .. } if worker_id == "cuda-1" => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn the_frameworks_worker_messages_are_taken_on_both_ingests() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut bus = Bus(client.subscribe("fleet.events.>").await.expect("subscribe"));
    let port = fleetwatch_tests::free_port();
    let _collector =
        ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", &port.to_string()]);
    let heartbeat = json!({"type": "heartbeat", "worker_id": "w-direct", "hardware_metrics": {
        "cpu_percent": 41.5, "memory_percent": 63.0, "memory_used_gb": 10.1, "memory_available_gb": 5.9,
        "gpu": [{"index": 0, "memory_allocated_gb": 6.0, "memory_total_gb": 24.0, "memory_utilization_percent": 25.0}]}});
    let answer = fleetwatch_tests::ingest(&client, &heartbeat).await;
    assert_eq!(answer["accepted"], 1, "{answer}");
    let figures = bus
        .until("its heartbeat", |envelope| match &envelope.payload {
            Event::Heartbeat { worker_id, cpu_pct, memory_pct, gpu_memory_pct, .. } if worker_id == "w-direct" => {
                Some((*cpu_pct, *memory_pct, *gpu_memory_pct))
            }
            _ => None,
        })
        .await;
    assert_eq!(figures, (Some(41.5), Some(63.0), Some(25.0)));

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/ingest");
    let result = json!({"type": "task_result", "worker_id": "w-direct", "task_id": "t-9", "status": "failed",
                        "execution_time_seconds": 12.0, "error": "CUDA out of memory"});
    let posted = wait_for("http ingest", || async { http.post(&url).json(&result).send().await.ok() }).await;
    assert_eq!(posted.status(), 202);
    let (started, failed) = bus
        .until("its start and failure", {
            let mut started = None;
            move |envelope| match &envelope.payload {
                Event::TaskStarted { task_id, .. } if task_id == "t-9" => {
                    started = Some(envelope.time);
                    None
                }
                Event::TaskFailed { task_id, error, .. } if task_id == "t-9" => {
                    Some((started?, (envelope.time, error.clone())))
                }
                _ => None,
            }
        })
        .await;
    assert_eq!(failed.0 - started, 12_000, "started execution_time_seconds before the end");
    assert_eq!(failed.1, "CUDA out of memory");
    let odd = http
        .post(&url)
        .json(&json!({"type": "task_result", "worker_id": "w-direct", "task_id": "t-9", "status": "lost"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(odd.status(), 422, "an unknown result status is refused with its reason");
}
