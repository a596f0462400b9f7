//! `just bench`, part two: the scale ladder. For a demo fleet of 100, 1,000 and 10,000
//! workers (1 s ticks), after a warm-up it measures over a window: the events per second
//! the collector sustains into FLEET_EVENTS, the share the processor keeps up with, the
//! processor's CPU (percent of one core) and resident memory, and its mean tick time.
//!
//! `ladder-bench [WORKERS...] [--warmup-secs N] [--window-secs N]`

use fleetwatch_tests::{NatsServer, ServiceProcess};
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
}

#[tokio::main]
async fn main() {
    let mut sizes = Vec::new();
    let (mut warmup, mut window) = (10u64, 20u64);
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
        "| workers | events/s into FLEET_EVENTS | processor keeps up | processor CPU (% of a core) | processor RSS | mean tick |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
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
        let stream_seq =
            js.get_stream("FLEET_EVENTS").await.expect("stream").info().await.expect("info").state.last_sequence;
        Sample {
            at: Instant::now(),
            stream_seq,
            applied: counter("processor_events_applied_total"),
            ticks: counter("processor_ticks_total"),
            tick_micros: counter("processor_tick_micros_total"),
            cpu_ticks: cpu_ticks(pid),
        }
    };
    let start = sample().await;
    tokio::time::sleep(Duration::from_secs(window)).await;
    let end = sample().await;
    let seconds = end.at.duration_since(start.at).as_secs_f64();
    let events = (end.stream_seq - start.stream_seq) as f64 / seconds;
    let applied = (end.applied - start.applied) as f64 / seconds;
    let cpu = 100.0 * (end.cpu_ticks - start.cpu_ticks) as f64 / clock_ticks_per_second() / seconds;
    let tick_ms = (end.tick_micros - start.tick_micros) as f64 / (end.ticks - start.ticks).max(1) as f64 / 1000.0;
    format!(
        "| {workers} | {events:.0} | {:.0}% | {cpu:.1}% | {:.0} MiB | {tick_ms:.1} ms |",
        100.0 * applied / events.max(1.0),
        rss_mib(pid)
    )
}

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn clock_ticks_per_second() -> f64 {
    let output = std::process::Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(100.0)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}
