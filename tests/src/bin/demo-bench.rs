//! `just bench`: the whole system under a big demo fleet, built as `just up` builds it (the
//! dev profile: `FLEETWATCH_BIN_DIR` points at it). nats-server and the five services run
//! as `deploy/up.sh` runs them, for `--minutes` (default 10) at `--workers` (default 10,000).
//!
//! Reports, from minute 2 to the end: each process's CPU, all of them together as a share
//! of the machine, the demo fleet's own thread apart (simulating the fleet is not the
//! product's work); the archive's lag at the end (from the archiver's health report); each
//! process's resident memory at minute 2 and at the end; and how fast the archived streams
//! fill, so how long the archiver may be down before anything is dropped.

use fleetwatch_tests::{NatsServer, SERVICES, ServiceProcess, free_port, health_reports, procfs};
use std::time::{Duration, Instant};

struct Reading {
    at: Instant,
    cpu: Vec<f64>,
    rss: Vec<f64>,
    demo_cpu: f64,
    stream_bytes: Vec<u64>,
    /// What DuckDB holds inside the archiver, MiB.
    duckdb_mib: f64,
}

/// A gauge summed over the reports.
fn gauge(reports: &std::collections::BTreeMap<String, shared::health::HealthReport>, name: &str) -> Vec<f64> {
    let gauges = reports.values().flat_map(|report| &report.gauges);
    gauges.filter(|gauge| gauge.name == name).map(|gauge| gauge.value).collect()
}

#[tokio::main]
async fn main() {
    let (mut workers, mut minutes) = (10_000usize, 10u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|value| value.parse::<u64>().ok());
        match arg.as_str() {
            "--workers" => workers = value.expect("--workers N") as usize,
            "--minutes" => minutes = value.expect("--minutes N"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(minutes > 2, "the window runs from minute 2");
    let nats = NatsServer::start();
    let db = nats.dir.path().join("fleetwatch.duckdb");
    let port = free_port().to_string();
    let processes: Vec<ServiceProcess> = SERVICES
        .iter()
        .map(|name| {
            let args: Vec<String> = match *name {
                "collector" => vec!["--demo-workers".into(), workers.to_string(), "--http-port".into(), "0".into()],
                "archiver" => vec!["--db-path".into(), db.display().to_string()],
                "gateway" => vec!["--port".into(), port.clone()],
                _ => Vec::new(),
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ServiceProcess::start(name, &nats, &args)
        })
        .collect();
    let mut pids = vec![nats.pid()];
    pids.extend(processes.iter().map(|process| process.pid().expect("running")));
    let names: Vec<&str> = std::iter::once("nats-server").chain(SERVICES).collect();
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let started = Instant::now();

    let read = async || {
        let mut stream_bytes = Vec::new();
        for name in ARCHIVED {
            let info = js.get_stream(name).await.expect("stream").info().await.expect("info").state.bytes;
            stream_bytes.push(info);
        }
        let archiver = health_reports(&client, "archiver", 1).await;
        let duckdb_mib = gauge(&archiver, "archiver_duckdb_memory_bytes").into_iter().sum::<f64>() / 1048576.0;
        Reading {
            duckdb_mib,
            at: Instant::now(),
            cpu: pids.iter().map(|pid| procfs::cpu_seconds(*pid)).collect(),
            rss: pids.iter().map(|pid| procfs::rss_mib(*pid)).collect(),
            demo_cpu: procfs::thread_cpu_seconds(pids[1], DEMO_THREAD),
            stream_bytes,
        }
    };
    eprintln!("demo-bench: {workers} workers for {minutes} minutes; first reading at minute 2");
    tokio::time::sleep_until((started + Duration::from_secs(120)).into()).await;
    let first = read().await;
    tokio::time::sleep_until((started + Duration::from_secs(minutes * 60)).into()).await;
    let last = read().await;
    let report = health_reports(&client, "archiver", 1).await;
    let lag_seconds = gauge(&report, "archiver_lag_seconds").into_iter().fold(0.0, f64::max);
    let lag_messages = gauge(&report, "archiver_lag_messages").into_iter().sum::<f64>();

    let seconds = last.at.duration_since(first.at).as_secs_f64();
    let machine = procfs::cores() * 100.0;
    println!("demo-bench: {workers} demo workers, dev build as `just up` runs it, minute 2 to minute {minutes}");
    println!("| process | CPU (% of one core) | RSS at minute 2 | RSS at minute {minutes} | change |");
    println!("|---|---:|---:|---:|---:|");
    let mut total = 0.0;
    for (index, name) in names.iter().enumerate() {
        let cpu = 100.0 * (last.cpu[index] - first.cpu[index]) / seconds;
        total += cpu;
        let (before, after) = (first.rss[index], last.rss[index]);
        println!(
            "| {name} | {cpu:.1}% | {before:.0} MiB | {after:.0} MiB | {:+.1}% |",
            100.0 * (after - before) / before.max(1.0)
        );
    }
    let demo = 100.0 * (last.demo_cpu - first.demo_cpu) / seconds;
    println!(
        "  all processes: {total:.1}% of one core = {:.1}% of this {}-core machine (goal: at most 75%)",
        100.0 * total / machine,
        procfs::cores()
    );
    println!(
        "  of which the demo fleet's own thread: {demo:.1}% of one core; without it {:.1}% of the machine",
        100.0 * (total - demo) / machine
    );
    println!(
        "  of the archiver's, DuckDB's own memory (its memory_limit bounds it): {:.0} MiB at minute 2, {:.0} MiB at the end",
        first.duckdb_mib, last.duckdb_mib
    );
    println!("  archive lag at the end: {lag_seconds:.1} s, {lag_messages:.0} messages (goal: under 5 s)");
    let memory_ok = first.rss.iter().zip(&last.rss).all(|(before, after)| (after - before).abs() <= 0.1 * before);
    println!(
        "  every process's memory within 10% from minute 2 to {minutes}: {}",
        if memory_ok { "yes" } else { "no" }
    );
    for (index, name) in ARCHIVED.iter().enumerate() {
        let rate = (last.stream_bytes[index] - first.stream_bytes[index]) as f64 / seconds;
        let config = js.get_stream(name).await.expect("stream").info().await.expect("info").config.clone();
        let hours = (config.max_bytes as f64 / rate).min(config.max_age.as_secs_f64()) / 3600.0;
        println!(
            "  {name} fills at {:.2} MB/s: the archiver may be down {hours:.1} h before it drops anything",
            rate / 1e6
        );
    }
    drop(processes);
}

/// The collector's demo fleet thread (`fleetwatch_collector::DEMO_THREAD`).
const DEMO_THREAD: &str = "demo-fleet";

/// The streams the archiver reads that fill with the fleet's size.
const ARCHIVED: [&str; 2] = ["FLEET_EVENTS", "FLEET_METRICS"];
