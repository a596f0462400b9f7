//! `just bench`: how close the pipeline into the archive comes to raw JetStream, on the same
//! nats-server in the same run.
//!
//! - Raw: N envelopes published to a stream like FLEET_EVENTS (acks pipelined), then read
//!   back by a durable pull consumer (acking each batch), one after the other.
//! - Pipeline: N task events sent to the collector's NATS ingest (requests of 1000, 8 in
//!   flight), stored in FLEET_EVENTS and committed to DuckDB by the archiver; done when the
//!   archiver's consumer has acknowledged the last one (it acks only after the commit).
//!
//! Each is run `ROUNDS` times; the medians and their ratio are printed.
//!
//! `archive-bench [--events N] [--rounds N]`

use async_nats::jetstream::{self, consumer, stream};
use fleetwatch_tests::{NatsServer, ServiceProcess, procfs};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::event::Event;
use shared::{Envelope, codec, now_ms};
use std::time::{Duration, Instant};

const PER_REQUEST: usize = 1000;
const IN_FLIGHT: usize = 8;
const PUBLISH_WINDOW: usize = 4096;

#[tokio::main]
async fn main() {
    let (mut events, mut rounds) = (200_000usize, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|value| value.parse().ok());
        match arg.as_str() {
            "--events" => events = value.expect("--events N"),
            "--rounds" => rounds = value.expect("--rounds N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let nats = NatsServer::start();
    let db = nats.dir.path().join("bench.duckdb");
    let collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let archiver = ServiceProcess::start("archiver", &nats, &["--db-path", db.to_str().expect("utf-8")]);
    let client = nats.client().await;
    let js = jetstream::new(client.clone());

    let pids = [nats.pid(), collector.pid().expect("running"), archiver.pid().expect("running"), std::process::id()];
    let cpu = || pids.map(procfs::cpu_seconds);
    let (mut raw, mut pipeline) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let before = cpu();
        let raw_rate = raw_in_then_out(&js, round, events).await;
        let between = cpu();
        let pipeline_rate = archived(&client, &js, round, events).await;
        let after = cpu();
        let spent = |from: [f64; 4], to: [f64; 4]| -> String {
            let names = ["nats-server", "collector", "archiver", "bench"];
            let parts: Vec<String> =
                names.iter().zip(from.iter().zip(to)).map(|(name, (a, b))| format!("{name} {:.2}", b - a)).collect();
            parts.join(", ")
        };
        eprintln!("round {round}: raw JetStream in-then-out {raw_rate:.0}/s, archived {pipeline_rate:.0} events/s");
        eprintln!("  CPU seconds, raw: {}; pipeline: {}", spent(before, between), spent(between, after));
        raw.push(raw_rate);
        pipeline.push(pipeline_rate);
    }
    let (raw, pipeline) = (median(&mut raw), median(&mut pipeline));
    println!("archive-bench: {rounds} rounds of {events} task events, one nats-server, medians");
    println!("  raw JetStream, published then consumed:        {raw:.0} msg/s");
    println!("  pipeline, collector to DuckDB (archiver incl.): {pipeline:.0} events/s");
    println!("  archived as a share of raw in-then-out:         {:.0}% (goal: at least 50%)", 100.0 * pipeline / raw);
}

/// Encoded envelopes of task events, as the collector would store them.
fn envelopes(round: usize, count: usize) -> Vec<(String, bytes::Bytes)> {
    let subjects = shared::Subjects::default();
    (0..count)
        .map(|n| {
            let event =
                Event::TaskStarted { task_id: format!("raw-{round}-{n}"), worker_id: format!("w-{}", n % 1000) };
            let subject = event.subject(&subjects).replacen("fleet.", "raw.", 1);
            let payload = codec::encode(&Envelope::new(now_ms(), "bench", event)).expect("encodes");
            (subject, payload)
        })
        .collect()
}

async fn raw_in_then_out(js: &jetstream::Context, round: usize, count: usize) -> f64 {
    let name = format!("RAW_{round}");
    let reference = shared::nats::Stream::Events.config(&shared::Subjects::default(), &Default::default());
    let raw = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec!["raw.>".into()],
            max_bytes: -1,
            max_age: Duration::ZERO,
            ..reference
        })
        .await
        .expect("raw stream");
    let messages = envelopes(round, count);
    let started = Instant::now();
    let mut acks = Vec::with_capacity(PUBLISH_WINDOW);
    for (subject, payload) in messages {
        acks.push(js.publish(subject, payload).await.expect("publish"));
        if acks.len() == PUBLISH_WINDOW {
            futures::future::try_join_all(std::mem::take(&mut acks).into_iter().map(|ack| ack.into_future()))
                .await
                .expect("stored");
        }
    }
    futures::future::try_join_all(acks.into_iter().map(|ack| ack.into_future())).await.expect("stored");
    let consumer = raw
        .create_consumer(consumer::pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: consumer::AckPolicy::All,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages =
        consumer.stream().max_messages_per_batch(5000).messages().await.expect("messages").ready_chunks(5000);
    let mut received = 0;
    while received < count {
        let chunk = messages.next().await.expect("open");
        received += chunk.len();
        if let Some(Ok(last)) = chunk.last() {
            last.ack().await.expect("ack");
        }
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    js.delete_stream(&name).await.expect("delete the raw stream");
    rate
}

async fn archived(client: &async_nats::Client, js: &jetstream::Context, round: usize, count: usize) -> f64 {
    let base = now_ms() - 60_000;
    let requests: Vec<bytes::Bytes> = (0..count.div_ceil(PER_REQUEST))
        .map(|request| {
            let events: Vec<Value> = (0..PER_REQUEST.min(count - request * PER_REQUEST))
                .map(|n| {
                    json!({"type": "task_started", "task_id": format!("p-{round}-{request}-{n}"),
                           "worker_id": format!("w-{}", n % 1000), "time": base + n as i64})
                })
                .collect();
            serde_json::to_vec(&events).expect("json").into()
        })
        .collect();
    // The collector answers once it is up; the first round waits for it.
    fleetwatch_tests::ingest(client, &json!([])).await;
    let started = Instant::now();
    let answers: Vec<_> = futures::stream::iter(requests)
        .map(|payload| async move { client.request("fleet.ingest.bench", payload).await })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for answer in answers {
        let answer: Value = serde_json::from_slice(&answer.expect("answered").payload).expect("json");
        assert_eq!(answer["rejected"], json!([]), "{answer}");
    }
    let last = js.get_stream("FLEET_EVENTS").await.expect("stream").info().await.expect("info").state.last_sequence;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut consumer: consumer::PullConsumer =
            js.get_consumer_from_stream("archiver", "FLEET_EVENTS").await.expect("the archiver's consumer");
        if consumer.info().await.expect("info").ack_floor.stream_sequence >= last {
            break;
        }
        assert!(Instant::now() < deadline, "the archiver did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
