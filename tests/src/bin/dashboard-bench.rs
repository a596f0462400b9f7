//! `just bench`: the dashboard at 10,000 workers (`--workers`). nats-server and the five
//! services run as `just up` runs them (`FLEETWATCH_BIN_DIR`, the dev build by default in
//! the justfile); after a warm-up (`--warmup` s, default 60) it measures:
//!
//! - the overview and workers pages in headless Chromium, from navigation to data shown
//!   (`services/gateway/ui/bench/pages.mjs`, median of 5: cold in a fresh context, reloaded
//!   in the same tab, and in-app from the navigation bar; goal under 500 ms);
//! - WebSocket fan-out for `--seconds` (default 60): 100 clients on the `system` topic,
//!   100 on `worker:<id>` topics (100 different workers) and one client on every topic
//!   that never reads: each frame's delay from the processor's tick (its `time`) to its
//!   arrival, p50 and p99 per group (goal: p99 under 100 ms);
//! - every list and view the API has: its size and the median time of 5 requests; the
//!   largest named.

use fleetwatch_tests::{NatsServer, SERVICES, ServiceProcess, free_port, wait_for};
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 100;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Delays of the frames one client received: tick time to arrival, ms.
async fn client(url: String, until: Instant) -> Vec<f64> {
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.expect("a WebSocket");
    let mut delays = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(until.into(), socket.next()).await {
        let Message::Text(text) = message else { continue };
        let arrived = shared::now_ms();
        let frame: serde_json::Value = serde_json::from_str(&text).expect("json");
        // The first frame of each topic is the value held at connection time, not a tick.
        if let Some(time) = frame["data"]["time"].as_i64() {
            delays.push((arrived - time) as f64);
        }
    }
    // Skip what a client got at once on connecting: what it held, whatever its age.
    delays.drain(..delays.len().min(2));
    delays
}

fn summary(name: &str, delays: &mut [f64]) {
    delays.sort_by(f64::total_cmp);
    println!(
        "| {name} | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
        delays.len(),
        percentile(delays, 0.5),
        percentile(delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() {
    let (mut workers, mut warmup, mut seconds) = (10_000usize, 60u64, 60u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|value| value.parse::<u64>().ok());
        match arg.as_str() {
            "--workers" => workers = value.expect("--workers N") as usize,
            "--warmup" => warmup = value.expect("--warmup SECONDS"),
            "--seconds" => seconds = value.expect("--seconds N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let nats = NatsServer::start();
    let db = nats.dir.path().join("fleetwatch.duckdb");
    let port = free_port();
    let processes: Vec<ServiceProcess> = SERVICES
        .iter()
        .map(|name| {
            let args: Vec<String> = match *name {
                "collector" => vec!["--demo-workers".into(), workers.to_string(), "--http-port".into(), "0".into()],
                "archiver" => vec!["--db-path".into(), db.display().to_string()],
                "gateway" => vec!["--port".into(), port.to_string()],
                _ => Vec::new(),
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ServiceProcess::start(name, &nats, &args)
        })
        .collect();
    let base = format!("http://127.0.0.1:{port}");
    let listed = format!("{base}/api/workers?limit=1");
    wait_for(&format!("{workers} workers listed"), || async {
        let list = fleetwatch_tests::get_json(&listed).await?;
        (list["total"].as_u64() == Some(workers as u64)).then_some(())
    })
    .await;
    eprintln!("dashboard-bench: {workers} workers listed; warming up {warmup} s");
    tokio::time::sleep(Duration::from_secs(warmup)).await;

    println!("dashboard-bench: {workers} demo workers, services as `just up` runs them");
    println!();
    println!("Pages in headless Chromium, navigation to data shown, median of 5 and the runs (goal under 500 ms):");
    let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/gateway/ui");
    let pages = tokio::process::Command::new("node")
        .arg("bench/pages.mjs")
        .args(["--url", &base])
        .current_dir(&ui)
        .output()
        .await
        .expect("node runs the page bench");
    assert!(pages.status.success(), "the page bench failed: {}", String::from_utf8_lossy(&pages.stderr));
    println!("| page | cold (fresh context) | reload (same tab) | in-app (navigation bar) |");
    println!("|---|---:|---:|---:|");
    for line in String::from_utf8_lossy(&pages.stdout).lines() {
        let page: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if let Some(baseline) = page.get("baseline") {
            println!(
                "| baseline: `/api/status` (JSON, no dashboard code) | {} ms {} | | |",
                baseline["median_ms"], baseline["runs_ms"]
            );
            continue;
        }
        let way = |name: &str| format!("{} ms {}", page[name]["median_ms"], page[name]["runs_ms"]);
        println!(
            "| {} | {} | {} | {} |",
            page["page"].as_str().unwrap_or("?"),
            way("cold"),
            way("reload"),
            way("in_app")
        );
    }

    let ids: Vec<String> = {
        let list = fleetwatch_tests::get_json(&format!("{base}/api/workers?limit={CLIENTS}&sort=worker_id"))
            .await
            .expect("workers");
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|worker| worker["worker_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let ws = format!("ws://127.0.0.1:{port}/ws/metrics");
    let until = Instant::now() + Duration::from_secs(seconds);
    // The client that never reads: it subscribes to everything and then sits.
    let (stalled, _) =
        tokio_tungstenite::connect_async(format!("{ws}?topics=system,tasks,alerts,workers")).await.expect("connect");
    let system: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(client(format!("{ws}?topics=system"), until))).collect();
    let worker: Vec<_> = ids.iter().map(|id| tokio::spawn(client(format!("{ws}?topics=worker:{id}"), until))).collect();
    let mut system_delays = Vec::new();
    for handle in system {
        system_delays.extend(handle.await.expect("a client"));
    }
    let mut worker_delays = Vec::new();
    for handle in worker {
        worker_delays.extend(handle.await.expect("a client"));
    }
    drop(stalled);
    println!();
    println!(
        "WebSocket, {seconds} s beside one client that never reads: delay from the processor's tick to the frame (goal: p99 under 100 ms):"
    );
    println!("| clients | frames | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    summary(&format!("{CLIENTS} on `system`"), &mut system_delays);
    summary(&format!("{} on `worker:<id>`", ids.len()), &mut worker_delays);

    println!();
    println!("API answers at {workers} workers (median of 5):");
    println!("| request | bytes | time |");
    println!("|---|---:|---:|");
    let http = reqwest::Client::new();
    let mut largest = (String::new(), 0usize);
    for path in [
        "/api/status",
        "/api/metrics",
        "/api/metrics/tasks",
        "/api/workers?limit=1000",
        "/api/workers?format=csv",
        "/api/tasks?limit=1000",
        "/api/tasks?status=completed&limit=1000",
        "/api/topology",
        "/api/performance",
        "/api/fault-tolerance",
        "/api/alerts",
        "/api/metrics/system/history",
        "/api/openapi.json",
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let body = http.get(format!("{base}{path}")).send().await.expect("answer").bytes().await.expect("body");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            bytes = body.len();
        }
        times.sort_by(f64::total_cmp);
        println!("| `{path}` | {bytes} | {:.0} ms |", percentile(&times, 0.5));
        if bytes > largest.1 {
            largest = (path.to_owned(), bytes);
        }
    }
    println!("  largest: `{}`, {:.1} MB", largest.0, largest.1 as f64 / 1e6);
    drop(processes);
}
