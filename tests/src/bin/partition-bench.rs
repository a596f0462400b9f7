//! `just bench` (partition-bench): how fast the fleet's events are folded by one processor,
//! and by 2 and 4 partitions, on a real nats-server; then the same for the alerter.
//!
//! The collector stores a fixed workload in FLEET_EVENTS and stops: 10,000 workers
//! registering, then rounds in which every worker sends a heartbeat and a quarter of them
//! run a task through queued, assigned, started and completed. A last registration (a
//! lifecycle event, which every partition reads) marks the end. Then, for each count, fresh
//! processors fold the whole stream from the start; the run ends when each has published
//! (every 100 ms) a sequence at or past the marker. Printed per count: wall time, events
//! folded per second (the stream's events over the wall time), each process's CPU seconds
//! (and their mean per stream event: every partition reads every event, folding only its
//! own), nats-server's CPU seconds, and each process's peak memory.
//!
//! The alerters' run ends when every partition has fired for the marker workers it owns
//! (one per shard class of 4, each with a heartbeat hotter than any in the workload, past a
//! threshold set just under it); the fleet tier runs beside the partitions and its CPU is
//! counted with theirs.

use fleetwatch_tests::procfs::{cpu_seconds, rss_mib};
use fleetwatch_tests::{NatsServer, ServiceProcess};
use futures::StreamExt;
use serde_json::json;
use shared::alert::Alert;
use shared::fleet::FleetSummary;
use shared::metrics::SystemMetrics;
use shared::subjects::shard_of;
use shared::{Envelope, Subjects, codec, now_ms};
use std::time::{Duration, Instant};

const WORKERS: usize = 10_000;
const ROUNDS: usize = 30;
const PER_REQUEST: usize = 1000;
const IN_FLIGHT: usize = 8;

fn workload() -> Vec<serde_json::Value> {
    let time = now_ms() - 60_000;
    let kinds = ["cpu", "cuda", "rocm", "tpu"];
    let models = [("bert-base", "text"), ("vit-large", "vision"), ("whisper-small", "audio")];
    let mut events: Vec<serde_json::Value> = (0..WORKERS)
        .map(|w| {
            json!({"type": "worker_registered", "worker_id": format!("w-{w:05}"), "time": time,
                   "capabilities": {"hardware": kinds[w % 4], "cpu_cores": 16, "memory_gb": 64, "slots": 2, "tags": []}})
        })
        .collect();
    for round in 0..ROUNDS {
        let at = time + round as i64 * 1000;
        for w in 0..WORKERS {
            let worker = format!("w-{w:05}");
            events.push(
                json!({"type": "heartbeat", "worker_id": worker, "time": at, "cpu_pct": ((w + round) % 100) as f64,
                               "memory_pct": 40, "network_pct": 3, "running_tasks": 1, "queued_tasks": 0}),
            );
            if w % 4 == round % 4 {
                let task = format!("t-{round}-{w}");
                let (model, family) = models[w % 3];
                events.push(json!({"type": "task_queued", "task_id": task, "model": model, "family": family, "priority": w % 10, "time": at}));
                events.push(json!({"type": "task_assigned", "task_id": task, "worker_id": worker, "best_fit": w % 5 != 0, "time": at + 10}));
                events.push(json!({"type": "task_started", "task_id": task, "worker_id": worker, "time": at + 20}));
                events.push(json!({"type": "task_completed", "task_id": task, "worker_id": worker, "time": at + 500 + (w % 400) as i64}));
            }
        }
    }
    events
}

async fn ingest(client: &async_nats::Client, events: &[serde_json::Value]) {
    let answers: Vec<_> = futures::stream::iter(events.chunks(PER_REQUEST))
        .map(|chunk| {
            let payload: bytes::Bytes = serde_json::to_vec(chunk).expect("json").into();
            let client = client.clone();
            async move { client.request("fleet.ingest.bench", payload).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for answer in answers {
        let answer: serde_json::Value = serde_json::from_slice(&answer.expect("answered").payload).expect("json");
        assert!(answer["accepted"].as_u64().is_some_and(|n| n > 0), "accepted: {answer}");
    }
}

#[tokio::main]
async fn main() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    {
        let mut collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
        let events = workload();
        fleetwatch_tests::wait_for("the collector", || async {
            client.request("fleet.ingest.bench", "[]".into()).await.ok()
        })
        .await;
        let started = Instant::now();
        ingest(&client, &events).await;
        eprintln!("stored {} events in {:.1} s", events.len(), started.elapsed().as_secs_f64());
        let marker = json!([{"type": "worker_registered", "worker_id": "marker", "time": now_ms(),
                             "capabilities": {"hardware": "cpu", "cpu_cores": 1, "memory_gb": 1, "slots": 1, "tags": []}}]);
        ingest(&client, marker.as_array().expect("array")).await;
        let hot: Vec<serde_json::Value> = markers()
            .iter()
            .flat_map(|worker| {
                [
                    json!({"type": "worker_registered", "worker_id": worker, "time": now_ms(),
                       "capabilities": {"hardware": "cpu", "cpu_cores": 1, "memory_gb": 1, "slots": 1, "tags": []}}),
                    json!({"type": "heartbeat", "worker_id": worker, "time": now_ms(), "cpu_pct": 100.0, "memory_pct": 40}),
                ]
            })
            .collect();
        ingest(&client, &hot).await;
        assert!(collector.stop());
    }
    let mut stream = js.get_stream("FLEET_EVENTS").await.expect("stream");
    let marker = stream
        .get_last_raw_message_by_subject(&Subjects::default().worker_event("marker"))
        .await
        .expect("the marker")
        .sequence;
    let total = stream.info().await.expect("info").state.messages;
    println!(
        "partition-bench: {total} events in FLEET_EVENTS ({WORKERS} workers, {ROUNDS} rounds), folded from the start"
    );
    println!(
        "| partitions | wall s | events/s folded | CPU s per process | µs per event per process | nats-server CPU s | peak MiB per process |"
    );
    println!("|---:|---:|---:|---|---:|---:|---|");
    for count in [1u32, 2, 4] {
        let mut seqs = client.subscribe("fleet.metrics.>").await.expect("subscribe");
        let server_cpu = cpu_seconds(nats.pid());
        let started = Instant::now();
        let processes: Vec<ServiceProcess> = match count {
            1 => vec![ServiceProcess::start("processor", &nats, &["--tick-ms", "100"])],
            _ => (0..count)
                .map(|index| {
                    let (count, index) = (count.to_string(), index.to_string());
                    ServiceProcess::start(
                        "processor",
                        &nats,
                        &["--tick-ms", "100", "--partitions", &count, "--partition", &index],
                    )
                })
                .collect(),
        };
        let mut done = vec![false; count as usize];
        let mut peak = vec![0f64; count as usize];
        let deadline = Instant::now() + Duration::from_secs(600);
        while done.iter().any(|done| !done) {
            assert!(Instant::now() < deadline, "{count} partitions did not fold the stream in 10 minutes");
            for (index, process) in processes.iter().enumerate() {
                peak[index] = peak[index].max(process.pid().map_or(0.0, rss_mib));
            }
            let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(1), seqs.next()).await else { continue };
            let subject = message.subject.as_str();
            let (index, seq) = if subject == "fleet.metrics.system" && count == 1 {
                let envelope: Envelope<SystemMetrics> = codec::decode_envelope(&message.payload).expect("metrics");
                (0, envelope.payload.events_seq)
            } else if let Some(index) = subject.strip_prefix("fleet.metrics.partition.") {
                let envelope: Envelope<FleetSummary> = codec::decode_envelope(&message.payload).expect("summary");
                (index.parse::<usize>().expect("index"), envelope.payload.events_seq)
            } else {
                continue;
            };
            done[index] |= seq >= marker;
        }
        let wall = started.elapsed().as_secs_f64();
        let server_cpu = cpu_seconds(nats.pid()) - server_cpu;
        let cpu: Vec<f64> = processes.iter().map(|process| process.pid().map_or(0.0, cpu_seconds)).collect();
        let per_event = cpu.iter().sum::<f64>() / cpu.len() as f64 / total as f64 * 1e6;
        let cpu: Vec<String> = cpu.iter().map(|seconds| format!("{seconds:.1}")).collect();
        let peak: Vec<String> = peak.iter().map(|mib| format!("{mib:.0}")).collect();
        let rate = total as f64 / wall;
        println!(
            "| {count} | {wall:.1} | {rate:.0} | {} | {per_event:.2} | {server_cpu:.1} | {} |",
            cpu.join(", "),
            peak.join(", ")
        );
        drop(processes);
    }
    alerters(&nats, &client, total).await;
}

/// One marker worker per shard class of 4, so each of 1, 2 or 4 alerter partitions owns one.
fn markers() -> Vec<String> {
    (0..4)
        .map(|class| (0..).map(|n| format!("hot-marker-{n}")).find(|id| shard_of(id) % 4 == class).expect("a marker"))
        .collect()
}

async fn alerters(nats: &NatsServer, client: &async_nats::Client, total: u64) {
    println!();
    println!("Alerters over the same stream (with 2 and 4 partitions, the fleet tier's CPU and memory last):");
    println!(
        "| partitions | wall s | events/s folded | CPU s per process | nats-server CPU s | peak MiB per process |"
    );
    println!("|---:|---:|---:|---|---:|---|");
    // Only the markers are hot enough, and they fire at once.
    let env = [
        ("FLEETWATCH_ALERTER__RULES__WORKER_OVERLOADED__CPU_PCT", "99.5"),
        ("FLEETWATCH_ALERTER__RULES__WORKER_OVERLOADED__FOR_SECS", "0"),
    ];
    for count in [1u32, 2, 4] {
        let mut alerts = client.subscribe("fleet.alerts.*.worker_overloaded").await.expect("subscribe");
        let server_cpu = cpu_seconds(nats.pid());
        let started = Instant::now();
        let partitions = count.to_string();
        let mut roles: Vec<Vec<&str>> = (0..count)
            .map(|index| ["--partitions", &partitions, "--partition", ["0", "1", "2", "3"][index as usize]].to_vec())
            .collect();
        match count {
            1 => roles = vec![Vec::new()],
            _ => roles.push(vec!["--partitions", &partitions]),
        }
        let processes: Vec<ServiceProcess> =
            roles.iter().map(|args| ServiceProcess::start_with_env("alerter", nats, args, &env)).collect();
        let mut waiting: Vec<String> = markers();
        let mut peak = vec![0f64; processes.len()];
        let deadline = Instant::now() + Duration::from_secs(600);
        while !waiting.is_empty() {
            assert!(Instant::now() < deadline, "{count} alerter partitions did not fold the stream in 10 minutes");
            for (index, process) in processes.iter().enumerate() {
                peak[index] = peak[index].max(process.pid().map_or(0.0, rss_mib));
            }
            let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(1), alerts.next()).await else { continue };
            let envelope: Envelope<Alert> = codec::decode_envelope(&message.payload).expect("an alert");
            waiting.retain(|marker| *marker != envelope.payload.target);
        }
        let wall = started.elapsed().as_secs_f64();
        let server_cpu = cpu_seconds(nats.pid()) - server_cpu;
        let cpu: Vec<String> =
            processes.iter().map(|process| format!("{:.1}", process.pid().map_or(0.0, cpu_seconds))).collect();
        let peak: Vec<String> = peak.iter().map(|mib| format!("{mib:.0}")).collect();
        let rate = total as f64 / wall;
        println!("| {count} | {wall:.1} | {rate:.0} | {} | {server_cpu:.1} | {} |", cpu.join(", "), peak.join(", "));
        drop(processes);
    }
}
