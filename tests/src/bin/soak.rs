//! `just soak`: a long run of the whole system as `just up` runs it (dev build, every service
//! under deploy/supervise.sh) that kills each service with SIGKILL in turn and restarts
//! nats-server along the way, then checks the archive against the stream.
//!
//! Phase 1: `--workers1` (1,000) demo workers for `--minutes1` (30). Between 10 % and 50 % of
//! it each service is killed in turn, at 55 % nats-server is killed and started again.
//! Phase 2: the collector is restarted with `--workers2` (10,000) for `--minutes2` (20).
//! Then the collector stops, the archiver catches up, and the report gives:
//! - events JetStream acknowledged (stored in FLEET_EVENTS), and of those the ones the
//!   archive must hold (all but heartbeats, which it thins, and clock ticks);
//! - archived, lost (acknowledged, never archived) and duplicated (archived twice): goal 0, 0;
//! - each process's resident memory over the last eight minutes of each phase (goal: within
//!   10 %), with each half's peak; memory is read every 2 s and a line of it goes to stderr
//!   each minute. Eight minutes are two of the demo's four-minute burst cycles, so a window's
//!   ends read the same point of the cycle wherever a collector restart moved it. A window
//!   opens no earlier than 65 % of phase 1 (after the last kill) and 60 % of phase 2 (once
//!   what the services keep by design has filled at the bigger fleet: the alerter remembers
//!   failed tasks for ten minutes); by default at 22 and 12 minutes. The archiver is also shown
//!   without DuckDB's buffer pool, a cache bounded by its memory_limit that keeps what the
//!   archiver wrote until it is full (at 1,000 workers that takes over an hour);
//! - whether the dashboard answered throughout.

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use fleetwatch_tests::{NatsServer, SERVICES, ServiceProcess, free_port, kill_pid, procfs};
use futures::StreamExt;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// What the archive keeps a row of, every one: all events but heartbeats and clock ticks.
const ARCHIVED_SUBJECTS: [&str; 5] = [
    "fleet.events.worker.",
    "fleet.events.task.",
    "fleet.events.system.",
    "fleet.events.service.",
    "fleet.events.control.",
];

/// An envelope's id, the rest of it left undecoded.
#[derive(serde::Deserialize)]
struct EnvelopeId {
    id: String,
}

struct Args {
    workers1: usize,
    minutes1: f64,
    workers2: usize,
    minutes2: f64,
}

fn parse() -> Args {
    let mut parsed = Args { workers1: 1000, minutes1: 30.0, workers2: 10_000, minutes2: 20.0 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value: f64 =
            args.next().and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("{arg} needs a number"));
        match arg.as_str() {
            "--workers1" => parsed.workers1 = value as usize,
            "--minutes1" => parsed.minutes1 = value,
            "--workers2" => parsed.workers2 = value as usize,
            "--minutes2" => parsed.minutes2 = value,
            other => panic!("unknown argument {other}: --workers1 N --minutes1 M --workers2 N --minutes2 M"),
        }
    }
    parsed
}

fn collector(nats: &NatsServer, workers: usize) -> ServiceProcess {
    ServiceProcess::start_supervised("collector", nats, &["--demo-workers", &workers.to_string(), "--http-port", "0"])
}

/// The demo's burst cycle, min: one minute of doubled arrivals in every four.
const BURST_CYCLE_MIN: f64 = 4.0;

/// Where a phase's memory window opens, as a fraction of the phase: two whole burst cycles
/// before its end, and no earlier than `earliest`.
fn window_opens(minutes: f64, earliest: f64) -> f64 {
    (1.0 - 2.0 * BURST_CYCLE_MIN / minutes).max(earliest)
}

/// Resident memory of nats-server and each service now, MiB.
fn memory(nats: &NatsServer, services: &[ServiceProcess]) -> Vec<f64> {
    std::iter::once(nats.pid())
        .chain(services.iter().map(|service| service.service_pid().unwrap_or(0)))
        .map(|pid| if pid == 0 { 0.0 } else { procfs::rss_mib(pid) })
        .collect()
}

/// Asks the dashboard every 2 s and reads every process's memory with each ask, so a window's
/// readings show whether memory settles (a plateau, or bursts that come back down) or climbs.
struct Watch {
    http: reqwest::Client,
    status_url: String,
    metrics_url: String,
    asked: u64,
    failed: u64,
    started: Instant,
    /// Every reading: when, each process's RSS, and last what DuckDB holds of the archiver's.
    samples: Vec<(Instant, Vec<f64>)>,
}

impl Watch {
    /// `started`: the soak's start, which its minute lines count from.
    fn new(port: u16, started: Instant) -> Watch {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
        let (status_url, metrics_url) =
            (format!("http://127.0.0.1:{port}/api/status"), format!("http://127.0.0.1:{port}/metrics"));
        Watch { http, status_url, metrics_url, asked: 0, failed: 0, started, samples: Vec::new() }
    }

    /// The archiver's `archiver_duckdb_memory_bytes` as the gateway serves it, MiB (its
    /// last reading while the gateway does not answer): DuckDB's part of the archiver's
    /// memory, bounded by its memory_limit.
    async fn duckdb_mib(&self) -> f64 {
        let text = match self.http.get(&self.metrics_url).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let value = text
            .lines()
            .find(|line| line.starts_with("fleetwatch_archiver_duckdb_memory_bytes{"))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
        value
            .map(|bytes| bytes / 1_048_576.0)
            .unwrap_or_else(|| self.samples.last().and_then(|(_, reading)| reading.last().copied()).unwrap_or(0.0))
    }

    /// Runs until `at`; a line of memory goes to stderr each minute.
    async fn until(&mut self, at: Instant, nats: &NatsServer, services: &[ServiceProcess]) {
        while Instant::now() < at {
            self.asked += 1;
            let ok =
                matches!(self.http.get(&self.status_url).send().await, Ok(response) if response.status().is_success());
            self.failed += u64::from(!ok);
            let now = Instant::now();
            let mut reading = memory(nats, services);
            reading.push(self.duckdb_mib().await);
            let minute = |at: Instant| (at - self.started).as_secs() / 60;
            if self.samples.last().is_none_or(|(last, _)| minute(*last) != minute(now)) {
                let line: Vec<String> = reading.iter().map(|mib| format!("{mib:.0}")).collect();
                eprintln!(
                    "soak: {:>6.1} min: RSS MiB (nats, {}; the archiver's DuckDB): {}",
                    (now - self.started).as_secs_f64() / 60.0,
                    SERVICES.join(", "),
                    line.join(" ")
                );
            }
            self.samples.push((now, reading));
            tokio::time::sleep(Duration::from_secs(2).min(at.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// The readings taken from `from` until `to`.
    fn between(&self, from: Instant, to: Instant) -> Vec<&[f64]> {
        self.samples.iter().filter(|(at, _)| (from..to).contains(at)).map(|(_, reading)| reading.as_slice()).collect()
    }
}

/// Prints each process's memory over a window: its first and last readings, which the goal
/// compares, and the largest reading in each half, which a burst does not skew; then DuckDB's
/// part of the archiver's, and the rest of the archiver's. Returns whether every process
/// is within 10 %, and whether the archiver is outside DuckDB's pool.
fn print_memory(title: &str, window: &[&[f64]]) -> (bool, bool) {
    println!("{title}");
    println!("| process | RSS at the start | RSS at the end | change | peak, first half | peak, second half |");
    println!("|---|---:|---:|---:|---:|---:|");
    let archiver = 1 + SERVICES.iter().position(|name| *name == "archiver").expect("the archiver");
    let duckdb = SERVICES.len() + 1;
    let rows: Vec<Vec<f64>> = window
        .iter()
        .map(|reading| reading.iter().copied().chain([reading[archiver] - reading[duckdb]]).collect())
        .collect();
    let (first, last) = (&rows[0], &rows[rows.len() - 1]);
    let (early, late) = rows.split_at(rows.len() / 2);
    let peak = |half: &[Vec<f64>], index: usize| half.iter().map(|reading| reading[index]).fold(0.0, f64::max);
    let names = std::iter::once("nats-server").chain(SERVICES).chain([
        "of the archiver's, DuckDB's pool (limit 384 MB by default; read once a minute)",
        "the archiver outside DuckDB's pool",
    ]);
    let mut within = (true, true);
    for (index, name) in names.enumerate() {
        let change = 100.0 * (last[index] - first[index]) / first[index].max(1.0);
        let near = change.abs() <= 10.0;
        if index < duckdb {
            within.0 &= near;
            within.1 &= near || index == archiver;
        } else if index > duckdb {
            within.1 &= near;
        }
        println!(
            "| {name} | {:.0} MiB | {:.0} MiB | {change:+.1}% | {:.0} MiB | {:.0} MiB |",
            first[index],
            last[index],
            peak(early, index),
            peak(late, index)
        );
    }
    within
}

#[tokio::main]
async fn main() {
    let args = parse();
    let mut nats = NatsServer::start();
    let db = nats.dir.path().join("fleetwatch.duckdb");
    let port = free_port();
    let db_path = db.display().to_string();
    let port_text = port.to_string();
    let mut services: Vec<ServiceProcess> = vec![
        collector(&nats, args.workers1),
        ServiceProcess::start_supervised("processor", &nats, &[]),
        ServiceProcess::start_supervised("alerter", &nats, &[]),
        ServiceProcess::start_supervised("archiver", &nats, &["--db-path", &db_path]),
        ServiceProcess::start_supervised("gateway", &nats, &["--port", &port_text]),
    ];
    let started = Instant::now();
    let at = |fraction: f64, minutes: f64, from: Instant| from + Duration::from_secs_f64(60.0 * minutes * fraction);
    let mut watch = Watch::new(port, started);
    eprintln!(
        "soak: {} workers for {} min, then {} for {} min; store in {}",
        args.workers1,
        args.minutes1,
        args.workers2,
        args.minutes2,
        nats.dir.path().display()
    );

    // Phase 1, with the kills.
    for (turn, service) in services.iter().enumerate() {
        watch.until(at(0.1 + 0.1 * turn as f64, args.minutes1, started), &nats, &services).await;
        let pid = service.service_pid().expect("running");
        eprintln!("soak: {:>6.1} min: SIGKILL {} ({pid})", started.elapsed().as_secs_f64() / 60.0, service.name);
        kill_pid(pid);
    }
    watch.until(at(0.55, args.minutes1, started), &nats, &services).await;
    eprintln!("soak: {:>6.1} min: nats-server killed and started again", started.elapsed().as_secs_f64() / 60.0);
    nats.restart();
    watch.until(at(window_opens(args.minutes1, 0.65), args.minutes1, started), &nats, &services).await;
    let phase1_window = Instant::now();
    watch.until(at(1.0, args.minutes1, started), &nats, &services).await;

    // Phase 2: the bigger fleet.
    let first_collector_restarts = services[0].log_text().matches("supervise:").count();
    assert!(services[0].stop(), "the collector stops cleanly");
    services[0] = collector(&nats, args.workers2);
    let phase2 = Instant::now();
    watch.until(at(window_opens(args.minutes2, 0.6), args.minutes2, phase2), &nats, &services).await;
    let phase2_window = Instant::now();
    watch.until(at(1.0, args.minutes2, phase2), &nats, &services).await;
    let phase2_end = Instant::now();
    let restarts: Vec<String> = services
        .iter()
        .map(|service| service.log_text().matches("supervise:").count())
        .enumerate()
        .map(|(index, count)| {
            format!("{} {}", SERVICES[index], count + if index == 0 { first_collector_restarts } else { 0 })
        })
        .collect();

    // The end: no more events; the archiver catches up.
    assert!(services[0].stop(), "the collector stops cleanly");
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("FLEET_EVENTS").await.expect("stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            js.get_consumer_from_stream("archiver", "FLEET_EVENTS").await.expect("the archiver's consumer");
        if consumer.info().await.expect("info").ack_floor.stream_sequence >= last {
            break;
        }
        assert!(Instant::now() < deadline, "the archiver did not catch up within 20 minutes");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let caught_up = started.elapsed();
    for service in &mut services[1..] {
        assert!(service.stop(), "{} stops cleanly", service.name);
    }

    // What JetStream acknowledged that the archive must hold, by id. The whole stream is read
    // and sorted here by subject: subject filters over millions of messages cost the server
    // far more (with them, this read had covered under a quarter of a 45-minute soak's stream after 15 minutes).
    let state = stream.get_info().await.expect("info").state;
    let ordered = stream
        .create_consumer(OrderedConfig { deliver_policy: DeliverPolicy::All, ..Default::default() })
        .await
        .expect("a reader of the stream");
    let mut messages = ordered.messages().await.expect("messages");
    let mut acknowledged = HashSet::new();
    let mut read_to = 0;
    while read_to < state.last_sequence {
        let message = messages.next().await.expect("more messages").expect("a message");
        read_to = message.info().expect("a stream message").stream_sequence;
        if ARCHIVED_SUBJECTS.iter().any(|prefix| message.subject.starts_with(prefix)) {
            let envelope: EnvelopeId = shared::codec::decode(&message.payload).expect("an envelope");
            acknowledged.insert(envelope.id);
        }
    }
    let connection = duckdb::Connection::open(&db).expect("open the archive");
    let (rows, distinct): (i64, i64) = connection
        .query_row("SELECT count(*), count(DISTINCT id) FROM events", [], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("count");
    let mut statement = connection.prepare("SELECT DISTINCT id FROM events").expect("query");
    let archived: HashSet<String> =
        statement.query_map([], |row| row.get::<_, String>(0)).expect("ids").map(|id| id.expect("id")).collect();
    let lost = acknowledged.iter().filter(|id| !archived.contains(*id)).count();

    println!(
        "soak: {} workers for {} min, then {} for {} min; dev build as `just up` runs it; {}-core machine",
        args.workers1,
        args.minutes1,
        args.workers2,
        args.minutes2,
        procfs::cores()
    );
    println!("  events acknowledged by JetStream: {} (FLEET_EVENTS, every kind)", state.messages);
    println!("  of those the archive must hold (all but heartbeats and clock ticks): {}", acknowledged.len());
    println!("  archived rows: {rows} ({distinct} distinct ids; heartbeats it kept among them)");
    println!("  lost (acknowledged, not archived): {lost} (goal 0)");
    println!("  duplicated (archived more than once): {} (goal 0)", rows - distinct);
    println!("  restarts the supervisor logged: {}", restarts.join(", "));
    println!("  the dashboard answered {} of {} asks (every 2 s)", watch.asked - watch.failed, watch.asked);
    println!("  the archive caught up {:.1} min after the start", caught_up.as_secs_f64() / 60.0);
    let minutes = |from: Instant, to: Instant| (to - from).as_secs_f64() / 60.0;
    let within1 = print_memory(
        &format!("  memory, the last {:.1} min of phase 1 (after the kills):", minutes(phase1_window, phase2)),
        &watch.between(phase1_window, phase2),
    );
    let within2 = print_memory(
        &format!("  memory, the last {:.1} min of phase 2:", minutes(phase2_window, phase2_end)),
        &watch.between(phase2_window, phase2_end),
    );
    let yes = |within: bool| if within { "yes" } else { "no" };
    println!(
        "  every process within 10 %: phase 1 {}, phase 2 {}; the archiver outside DuckDB's pool: phase 1 {}, phase 2 {}",
        yes(within1.0),
        yes(within2.0),
        yes(within1.1),
        yes(within2.1)
    );
    drop(services);
}
