//! `just bench`, part two: the scale ladder. For a demo fleet of 100, 1,000 and 10,000
//! workers (1 s ticks), after a warm-up it measures over a window: the events per second
//! the collector sustains into FLEET_EVENTS, the share the processor keeps up with, the
//! processor's CPU (percent of one core) and resident memory, its mean tick time, and how
//! fast the streams the archiver reads fill: from that, how long the archiver may be down
//! before the oldest unarchived message is dropped, on the default stream limits.
//!
//! `ladder-bench [WORKERS...] [--warmup-secs N] [--window-secs N]`

use fleetwatch_tests::{NatsServer, ServiceProcess, procfs};
use futures::StreamExt;
use shared::codec;
use shared::health::HealthReport;
use std::time::{Duration, Instant};

struct Sample {
    at: Instant,
    stream_seq: u64,
    applied: u64,
    ticks: u64,
    tick_micros: u64,
    cpu_ticks: u64,
    /// Logical bytes of FLEET_EVENTS and FLEET_METRICS.
    stream_bytes: [u64; 2],
}

/// The streams the archiver reads that fill with the fleet's size (FLEET_ALERTS holds
/// alert changes only).
const ARCHIVED: [&str; 2] = ["FLEET_EVENTS", "FLEET_METRICS"];

#[tokio::main]
async fn main() {
    let mut sizes = Vec::new();
    let (mut warmup, mut window) = (20u64, 60u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--warmup-secs" => warmup = args.next().and_then(|v| v.parse().ok()).expect("--warmup-secs N"),
            "--window-secs" => window = args.next().and_then(|v| v.parse().ok()).expect("--window-secs N"),
            size => sizes.push(size.parse::<usize>().expect("a worker count")),
        }
    }
    if sizes.is_empty() {
        sizes = vec![100, 1000, 10_000];
    }
    println!("ladder-bench: demo fleet, 1 s ticks, {warmup} s warm-up, {window} s window");
    println!(
        "| workers | events/s into FLEET_EVENTS | processor keeps up | processor CPU (% of a core) | processor RSS | mean tick | FLEET_EVENTS | FLEET_METRICS | archiver may be down |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for workers in sizes {
        let row = rung(workers, warmup, window).await;
        println!("{row}");
    }
}

async fn rung(workers: usize, warmup: u64, window: u64) -> String {
    let nats = NatsServer::start();
    let _collector =
        ServiceProcess::start("collector", &nats, &["--demo-workers", &workers.to_string(), "--http-port", "0"]);
    let processor = ServiceProcess::start("processor", &nats, &[]);
    let pid = processor.pid().expect("processor running");
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());

    tokio::time::sleep(Duration::from_secs(warmup)).await;
    let sample = async || -> Sample {
        // A fresh subscription: the next report, not one queued during the window.
        let mut health = client.subscribe("fleet.health.processor").await.expect("subscribe");
        let message =
            tokio::time::timeout(Duration::from_secs(10), health.next()).await.expect("health report").expect("open");
        let report: HealthReport = codec::decode(&message.payload).expect("report");
        let counter = |name: &str| report.counters.get(name).copied().unwrap_or(0);
        let mut stream_bytes = [0; 2];
        let mut stream_seq = 0;
        for (index, name) in ARCHIVED.iter().enumerate() {
            let state = js.get_stream(name).await.expect("stream").info().await.expect("info").state.clone();
            stream_bytes[index] = state.bytes;
            if index == 0 {
                stream_seq = state.last_sequence;
            }
        }
        Sample {
            at: Instant::now(),
            stream_seq,
            applied: counter("processor_events_applied_total"),
            ticks: counter("processor_ticks_total"),
            tick_micros: counter("processor_tick_micros_total"),
            cpu_ticks: procfs::cpu_ticks(&pid.to_string()),
            stream_bytes,
        }
    };
    let start = sample().await;
    tokio::time::sleep(Duration::from_secs(window)).await;
    let end = sample().await;
    let seconds = end.at.duration_since(start.at).as_secs_f64();
    let events = (end.stream_seq - start.stream_seq) as f64 / seconds;
    let applied = (end.applied - start.applied) as f64 / seconds;
    let cpu = 100.0 * (end.cpu_ticks - start.cpu_ticks) as f64 / procfs::clock_ticks_per_second() / seconds;
    let tick_ms = (end.tick_micros - start.tick_micros) as f64 / (end.ticks - start.ticks).max(1) as f64 / 1000.0;
    // Each stream drops its oldest messages at its byte cap or its age limit, whichever
    // comes first; the archiver may be down for as long as the first stream to drop takes.
    let mut rates = Vec::new();
    let mut down_secs = f64::INFINITY;
    for (index, name) in ARCHIVED.iter().enumerate() {
        let rate = (end.stream_bytes[index] - start.stream_bytes[index]) as f64 / seconds;
        let config = js.get_stream(name).await.expect("stream").info().await.expect("info").config.clone();
        let by_bytes = if rate > 0.0 { config.max_bytes as f64 / rate } else { f64::INFINITY };
        down_secs = down_secs.min(by_bytes).min(config.max_age.as_secs_f64());
        rates.push(format!("{:.2} MB/s", rate / 1e6));
    }
    format!(
        "| {workers} | {events:.0} | {:.0}% | {cpu:.1}% | {:.0} MiB | {tick_ms:.1} ms | {} | {} | {:.1} h |",
        100.0 * applied / events.max(1.0),
        procfs::rss_mib(pid),
        rates[0],
        rates[1],
        down_secs / 3600.0
    )
}
