//! `just bench`: events per second through the pipeline, on a real nats-server.
//!
//! Each round sends a fresh batch of heartbeats to `fleet.ingest` (requests of 1000 events,
//! 8 in flight) and measures: how fast the collector validates and stores them
//! (answered requests), and how soon the processor has folded the last one (its published
//! `events_seq` reaches the stream's last sequence, ticking every 100 ms). Prints the
//! median of the rounds.

use fleetwatch_tests::{NatsServer, ServiceProcess};
use futures::StreamExt;
use serde_json::json;
use shared::metrics::SystemMetrics;
use shared::{Envelope, codec, now_ms};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const EVENTS_PER_ROUND: usize = 100_000;
const PER_REQUEST: usize = 1000;
const IN_FLIGHT: usize = 8;

#[tokio::main]
async fn main() {
    let nats = NatsServer::start();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "100"]);
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let mut metrics = client.subscribe("fleet.metrics.system").await.expect("subscribe");

    let mut ingest_rates = Vec::new();
    let mut pipeline_rates = Vec::new();
    for round in 0..ROUNDS {
        let requests: Vec<bytes::Bytes> = (0..EVENTS_PER_ROUND / PER_REQUEST)
            .map(|request| {
                let time = now_ms();
                let events: Vec<_> = (0..PER_REQUEST)
                    .map(|n| {
                        json!({"id": format!("r{round}-{request}-{n}"), "type": "heartbeat", "worker_id": format!("w-{}", n % 1000),
                               "time": time, "cpu_pct": (n % 100) as f64, "memory_pct": 40, "network_pct": 3,
                               "running_tasks": 1, "queued_tasks": 0})
                    })
                    .collect();
                serde_json::to_vec(&events).expect("json").into()
            })
            .collect();
        let started = Instant::now();
        let answers: Vec<_> = futures::stream::iter(requests)
            .map(|payload| {
                let client = client.clone();
                async move { client.request("fleet.ingest.bench", payload).await }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let ingest_secs = started.elapsed().as_secs_f64();
        for answer in answers {
            let answer: serde_json::Value = serde_json::from_slice(&answer.expect("answered").payload).expect("json");
            assert_eq!(answer["accepted"], PER_REQUEST, "every event accepted: {answer}");
        }
        let last_seq =
            js.get_stream("FLEET_EVENTS").await.expect("stream").info().await.expect("info").state.last_sequence;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let message =
                tokio::time::timeout(Duration::from_secs(10), metrics.next()).await.expect("metrics").expect("open");
            let envelope: Envelope<SystemMetrics> = codec::decode_envelope(&message.payload).expect("metrics decode");
            if envelope.payload.events_seq >= last_seq {
                break;
            }
            assert!(Instant::now() < deadline, "processor did not catch up");
        }
        let pipeline_secs = started.elapsed().as_secs_f64();
        ingest_rates.push(EVENTS_PER_ROUND as f64 / ingest_secs);
        pipeline_rates.push(EVENTS_PER_ROUND as f64 / pipeline_secs);
        eprintln!(
            "round {round}: ingest {:.0} events/s, through the processor {:.0} events/s",
            ingest_rates[round], pipeline_rates[round]
        );
    }
    println!(
        "pipeline-bench: {ROUNDS} rounds of {EVENTS_PER_ROUND} heartbeats via fleet.ingest (requests of {PER_REQUEST}, {IN_FLIGHT} in flight)"
    );
    println!("  collector, validated and stored in FLEET_EVENTS: median {:.0} events/s", median(&mut ingest_rates));
    println!("  through the processor (folded, seen in metrics): median {:.0} events/s", median(&mut pipeline_rates));
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
