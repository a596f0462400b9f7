//! `just bench`: how soon an alert reaches `fleet.alerts.>` after the event that completes
//! its condition, per rule, with a 10,000-worker demo fleet running (goal: p99 under 100 ms
//! for every rule). nats-server and the five services run as `deploy/up.sh` runs them, with
//! the default rule settings (the release build unless `FLEETWATCH_BIN_DIR` says otherwise).
//!
//! - Event rules (`worker_overloaded`, `failure_burst`, `queue_time_high`,
//!   `coordinator_unreachable`, a custom alert POSTed to the gateway): from just before the
//!   completing event is POSTed to the first `fired` revision, split into POST to stored (the
//!   202) and POST to the event on `fleet.events.>`. The two rules with a hold time
//!   (`for_secs`) get a completing event dated that hold time and 5 s back, so the alert is
//!   due as the event is read and what is measured is the pipeline, not the hold. (Setting
//!   `for_secs = 0` instead applies to the whole demo fleet and multiplies its alerts.)
//!   Rounds of every rule interleave, each after a random pause, so they land at every
//!   phase of the demo fleet's one-second tick (10,000 heartbeats at once).
//! - Absence rules (`worker_lost`, `task_stalled`): due when the event-time watermark passes
//!   the last event's time plus the limit; the delay is from that time. Their events are
//!   dated so they come due 5 s after they are sent, behind the watermark, so no round
//!   moves the watermark for another.
//!
//! A warm-up of at least `--warmup-secs` (60) probes the alerter every 2 s until it answers
//! promptly; if it never does, or alerts stop coming during the rounds, the bench says so
//! and fails. `--rounds N` (or `FLEETWATCH_ALERT_BENCH_ROUNDS`, default 40), `--workers N`
//! (10,000). Results also go to `<target dir>/alert-bench.json`, logs beside them.

use fleetwatch_tests::{NatsServer, SERVICES, ServiceProcess, free_port, procfs, wait_for};
use futures::StreamExt;
use serde_json::{Value, json};
use shared::event::Event;
use shared::{Subjects, codec, now_ms};
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

const EVENT_RULES: [&str; 5] =
    ["worker_overloaded", "failure_burst", "queue_time_high", "coordinator_unreachable", "custom"];
const ABSENCE_RULES: [&str; 2] = ["worker_lost", "task_stalled"];
/// The defaults the bench leaves alone (services/alerter/src/rules/config.rs, `[fleet]`).
const OVERLOAD_FOR_MS: i64 = 30_000;
const QUEUE_TIME_FOR_MS: i64 = 60_000;
const LOST_AFTER_MS: i64 = 15_000;
const STALL_DEFAULT_MS: i64 = 3_600_000;
/// The watermark trails the wall clock by about a demo tick (1 s): an event this far back
/// neither moves it nor waits for it.
const BEHIND_MS: i64 = 5_000;
/// The alerter counts as caught up once a probe alert comes this soon after its event.
const CAUGHT_UP_MS: f64 = 500.0;
/// How long one alert may take before it counts as missed.
const ALERT_WAIT: Duration = Duration::from_secs(30);

/// One round: what to send first, then the completing event (or, for an absence rule, the
/// event time the alert is due), and the alert's target.
struct Plan {
    target: String,
    setup: Vec<Value>,
    last: Option<Value>,
    due: i64,
}

/// Unregistered workers run the tasks: no hardware, so only the model's figures move.
fn plan(rule: &str, tag: &str) -> Plan {
    let now = now_ms();
    let id = |i: usize| format!("{tag}-{i}");
    let queued = |i, time: i64| json!({"type": "task_queued", "task_id": id(i), "model": tag, "family": "text", "priority": 5, "time": time});
    let started = |i, time: i64| json!({"type": "task_started", "task_id": id(i), "worker_id": tag, "time": time});
    let failed = |i| json!({"type": "task_failed", "task_id": id(i), "worker_id": tag, "error": "bench", "time": now});
    let heartbeat = |cpu: f64, time: i64| {
        json!({"type": "heartbeat", "worker_id": tag, "cpu_pct": cpu, "memory_pct": 40.0, "network_pct": 1.0,
               "running_tasks": 0, "queued_tasks": 0, "time": time})
    };
    let registered = |time: i64| {
        json!({"type": "worker_registered", "worker_id": tag, "time": time, "capabilities":
               {"hardware": "cpu", "cpu_cores": 8, "memory_gb": 32.0, "slots": 1, "tags": []}})
    };
    let (target, setup, last) = match rule {
        "worker_overloaded" => (tag.into(), vec![registered(now)], heartbeat(99.0, now - OVERLOAD_FOR_MS - BEHIND_MS)),
        "failure_burst" => {
            (format!("model:{tag}"), (0..5).map(|i| queued(i, now)).chain((0..4).map(failed)).collect(), failed(4))
        }
        "queue_time_high" => {
            let start = now - QUEUE_TIME_FOR_MS - BEHIND_MS;
            let setup = (0..5).map(|i| queued(i, start - 60_000)).chain((0..4).map(|i| started(i, start)));
            (format!("model:{tag}"), setup.collect(), started(4, start))
        }
        "coordinator_unreachable" => (
            format!("component:{tag}"),
            Vec::new(),
            json!({"type": "component_status", "component": tag, "health": "down", "message": "alert-bench"}),
        ),
        "custom" => (
            format!("alert-bench/{tag}"),
            Vec::new(),
            json!({"level": "warning", "title": tag, "message": "alert-bench", "source": "alert-bench", "metrics": {}}),
        ),
        "worker_lost" => {
            let time = now + BEHIND_MS - LOST_AFTER_MS;
            let setup = vec![registered(time), heartbeat(10.0, time)];
            return Plan { target: tag.into(), setup, last: None, due: time + LOST_AFTER_MS };
        }
        _ => {
            let time = now + BEHIND_MS - STALL_DEFAULT_MS;
            let setup = vec![queued(0, time), started(0, time)];
            return Plan { target: format!("{tag}-0"), setup, last: None, due: time + STALL_DEFAULT_MS };
        }
    };
    Plan { target, setup, last: Some(last), due: 0 }
}

/// Wall clock, ms: the one clock of this machine, which stamps events and receipts alike.
fn wall_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64() * 1000.0
}

type Seen = (HashMap<(String, String, String), f64>, BTreeMap<String, u64>);

struct Bench {
    http: reqwest::Client,
    client: async_nats::Client,
    /// The first receipt of each (rule, target, change) on `fleet.alerts.>`, and counts by rule.
    seen: Mutex<Seen>,
    changed: tokio::sync::watch::Sender<u64>,
    ingest: String,
    gateway: String,
}

#[derive(Default, serde::Serialize)]
struct Sample {
    /// Wall ms the delay runs from.
    at: f64,
    total: f64,
    stored: Option<f64>,
    bus: Option<f64>,
}

impl Bench {
    /// Records every alert change as it arrives (before decoding: the receipt, not our work).
    async fn watch_alerts(&self) {
        let mut feed = self.client.subscribe("fleet.alerts.>").await.expect("subscribe to alerts");
        while let Some(message) = feed.next().await {
            let at = wall_ms();
            let Ok(envelope) = codec::decode_envelope::<shared::alert::Alert>(&message.payload) else { continue };
            let shared::alert::Alert { rule, target, change, .. } = envelope.payload;
            let change = serde_json::to_value(change).ok().and_then(|v| v.as_str().map(str::to_owned));
            let mut seen = self.seen.lock().expect("lock");
            *seen.1.entry(rule.clone()).or_default() += 1;
            seen.0.entry((rule, target, change.unwrap_or_default())).or_insert(at);
            drop(seen);
            self.changed.send_modify(|count| *count += 1);
        }
    }

    /// When the alert of `rule` on `target` first fired, waiting up to `within` for it.
    async fn fired(&self, rule: &str, target: &str, within: Duration) -> Option<f64> {
        let mut changed = self.changed.subscribe(); // before the look: no receipt slips between
        let key = (rule.to_owned(), target.to_owned(), "fired".to_owned());
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = self.seen.lock().expect("lock").0.get(&key) {
                return Some(*at);
            }
            timeout_at(deadline, changed.changed()).await.ok()?.ok()?;
        }
    }

    /// POSTs JSON; the wall time of the 202.
    async fn post(&self, url: &str, body: &Value) -> f64 {
        let response = self.http.post(url).json(body).send().await.unwrap_or_else(|err| panic!("POST {url}: {err}"));
        let at = wall_ms();
        let status = response.status().as_u16();
        assert_eq!(status, 202, "POST {url}: {}", response.text().await.unwrap_or_default());
        at
    }

    /// Watches the subject `event` is stored under; resolves to when it went by.
    async fn on_bus(&self, event: Event) -> tokio::task::JoinHandle<Option<f64>> {
        let subject = event.subject(&Subjects::new("fleet").expect("prefix"));
        let mut messages = self.client.subscribe(subject).await.expect("subscribe to the event's subject");
        // A round trip on this connection: the server has read the subscription before the
        // POST (a flush only sends it, and a busy server may store the event first).
        self.client.request("$JS.API.INFO", bytes::Bytes::new()).await.expect("round trip");
        let found = async move {
            while let Some(message) = messages.next().await {
                let at = wall_ms();
                if codec::decode_envelope::<Event>(&message.payload).is_ok_and(|stored| stored.payload == event) {
                    return Some(at);
                }
            }
            None
        };
        tokio::spawn(async move { timeout(ALERT_WAIT, found).await.ok().flatten() })
    }

    /// One round of an event rule; `None` when no alert came within `within`.
    async fn round(&self, rule: &'static str, tag: &str, within: Duration) -> Option<Sample> {
        let Plan { target, setup, last, .. } = plan(rule, tag);
        let last = last.expect("an event rule");
        if !setup.is_empty() {
            self.post(&self.ingest, &Value::Array(setup)).await;
        }
        let mut stored_as = last.clone(); // the event as the collector stores it
        let object = stored_as.as_object_mut().expect("object");
        if rule == "custom" {
            object.insert("type".into(), json!("alert_raised"));
        } else {
            object.remove("time");
        }
        let bus = self.on_bus(serde_json::from_value(stored_as).expect("a valid event")).await;
        let sent = wall_ms();
        let stored = match rule {
            "custom" => self.post(&format!("{}/api/alerts", self.gateway), &last).await,
            _ => self.post(&self.ingest, &last).await,
        };
        let fired = self.fired(rule, &target, within).await?;
        // The event went by before its alert: a watch that has not seen it by now never will.
        let bus = timeout(Duration::from_secs(1), bus).await.ok().and_then(Result::ok).flatten();
        Some(Sample { at: sent, total: fired - sent, stored: Some(stored - sent), bus: bus.map(|at| at - sent) })
    }
}

/// Nearest-rank percentiles (p50, p99) and the max.
fn spread(values: impl Iterator<Item = f64>) -> Option<(f64, f64, f64)> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    (!values.is_empty()).then(|| (rank(0.5), rank(0.99), values[values.len() - 1]))
}

/// Where the machine's time went since `before`: each process's CPU (% of one core), the
/// load, and the signs of overload in the logs; the logs are kept beside the results.
fn machine(processes: &[ServiceProcess], pids: &[u32], before: &[f64], seconds: f64) -> Value {
    let names = std::iter::once("nats-server").chain(SERVICES);
    let cpu: BTreeMap<&str, f64> = names
        .zip(pids.iter().zip(before))
        .map(|(name, (pid, before))| (name, 100.0 * (procfs::cpu_seconds(*pid) - before) / seconds))
        .collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let (cores, share) = (procfs::cores(), cpu.values().sum::<f64>() / procfs::cores());
    println!("  machine: {cores} cores, load {load:?}; these processes {share:.0}% of it over {seconds:.0} s");
    println!("  CPU, % of one core: {cpu:.0?}");
    let count = |index: usize, text: &str| processes[index].log_text().matches(text).count();
    let (dropped, failed) = (count(0, "demo tick dropped"), count(2, "open alerts not updated"));
    println!("  collector: {dropped} demo ticks dropped; alerter: {failed} failed writes of the open alerts");
    let logs = results_path("alert-bench-logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    for process in processes {
        let _ = std::fs::copy(&process.log, logs.join(format!("{}.log", process.name)));
    }
    println!("  logs: {}", logs.display());
    json!({"cores": cores, "load": load, "cpu_pct_of_core": cpu, "machine_pct": share, "demo_ticks_dropped": dropped,
           "failed_state_writes": failed})
}

/// `<target dir>/<name>`, beside the profile folder this binary runs from.
fn results_path(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("exe");
    exe.parent().and_then(|dir| dir.parent()).expect("target dir").join(name)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = ["--rounds", "--workers", "--warmup-secs"];
    assert!(args.chunks(2).all(|pair| flags.contains(&pair[0].as_str())), "flags: {flags:?}, each with a number");
    let flag = |name: &str, default: u64| match args.iter().position(|arg| arg == name) {
        Some(at) => args.get(at + 1).and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("{name} N")),
        None => default,
    };
    let env_rounds = std::env::var("FLEETWATCH_ALERT_BENCH_ROUNDS").ok().and_then(|value| value.parse().ok());
    let (rounds, workers) = (flag("--rounds", env_rounds.unwrap_or(40)), flag("--workers", 10_000));
    let warmup = flag("--warmup-secs", 60);
    let nats = NatsServer::start();
    let db = nats.dir.path().join("fleetwatch.duckdb").display().to_string();
    let (http_port, gateway_port, workers_arg) =
        (free_port().to_string(), free_port().to_string(), workers.to_string());
    let processes: Vec<ServiceProcess> = SERVICES
        .iter()
        .map(|name| {
            let args: Vec<&str> = match *name {
                "collector" => vec!["--demo-workers", &workers_arg, "--http-port", &http_port],
                "archiver" => vec!["--db-path", &db],
                "gateway" => vec!["--port", &gateway_port],
                _ => Vec::new(),
            };
            ServiceProcess::start(name, &nats, &args)
        })
        .collect();
    let pids: Vec<u32> = std::iter::once(nats.pid()).chain(processes.iter().filter_map(ServiceProcess::pid)).collect();
    let cpu = || pids.iter().map(|pid| procfs::cpu_seconds(*pid)).collect::<Vec<f64>>();
    let (start_cpu, started) = (cpu(), Instant::now());
    let bench: &'static Bench = Box::leak(Box::new(Bench {
        http: reqwest::Client::new(),
        client: nats.client().await,
        seen: Mutex::default(),
        changed: tokio::sync::watch::channel(0).0,
        ingest: format!("http://127.0.0.1:{http_port}/ingest"),
        gateway: format!("http://127.0.0.1:{gateway_port}"),
    }));
    tokio::spawn(bench.watch_alerts());
    for url in [format!("http://127.0.0.1:{http_port}/healthz"), format!("{}/healthz", bench.gateway)] {
        wait_for(&url, || async { reqwest::get(&url).await.ok().filter(|r| r.status().is_success()) }).await;
    }

    // Warm-up: 10,000 workers register and the alerter falls behind. A probe every 2 s, not
    // waiting for the last, shows its lag; it has caught up once a probe comes back promptly.
    eprintln!("alert-bench: {workers} demo workers, {rounds} rounds per rule; warming up at least {warmup} s");
    let (give_up, mut probes) = (started + Duration::from_secs(warmup + 300), tokio::task::JoinSet::new());
    let mut lag = f64::NAN;
    for probe in 0.. {
        let within = give_up.saturating_duration_since(Instant::now());
        let tag = format!("ab-probe-{probe}");
        probes.spawn(async move { bench.round("coordinator_unreachable", &tag, within).await });
        sleep(Duration::from_secs(2)).await;
        let at = started.elapsed().as_secs_f64();
        let delays: Vec<f64> =
            std::iter::from_fn(|| probes.try_join_next()).flatten().flatten().map(|s| s.total).collect();
        if let Some(last) = delays.last() {
            eprintln!("alert-bench: {at:.0} s: probe alerts after {delays:.0?} ms");
            lag = *last / 1000.0;
        }
        if at >= warmup as f64 && delays.iter().any(|delay| *delay < CAUGHT_UP_MS) {
            break;
        }
        if Instant::now() >= give_up {
            println!("alert-bench: {workers} workers: the alerter did not catch up within {at:.0} s (last probe alert");
            println!("  {lag:.1} s after its event); nothing measured");
            machine(&processes, &pids, &start_cpu, at);
            return ExitCode::FAILURE;
        }
    }
    probes.abort_all();

    let (window_cpu, window, by_rule_before) = (cpu(), Instant::now(), bench.seen.lock().expect("lock").1.clone());
    let (mut samples, mut missed) = (BTreeMap::<&str, Vec<Sample>>::new(), BTreeMap::<&str, u64>::new());
    let mut rng = (wall_ms() * 1000.0) as u64 | 1;
    'rounds: for round in 0..rounds {
        for rule in EVENT_RULES {
            rng ^= rng << 13; // xorshift
            rng ^= rng >> 7;
            rng ^= rng << 17;
            sleep(Duration::from_millis(rng % 800)).await;
            match bench.round(rule, &format!("ab-{}-{round}", rule.replace('_', "-")), ALERT_WAIT).await {
                Some(sample) => samples.entry(rule).or_default().push(sample),
                None => *missed.entry(rule).or_default() += 1,
            }
            if missed.values().sum::<u64>() >= 3 {
                println!("alert-bench: 3 alerts missed their {ALERT_WAIT:?}: the alerter fell behind; rounds stopped");
                break 'rounds;
            }
        }
    }
    // Absence rules, set up 250 ms apart so their due times fall at every phase of the tick
    // (skipped once the alerter has fallen behind: each would wait out its deadline).
    let (start, mut due) = (Instant::now(), Vec::new());
    for round in 0..rounds * u64::from(missed.is_empty()) {
        for rule in ABSENCE_RULES {
            sleep_until(start + Duration::from_millis(250 * round)).await;
            let plan = plan(rule, &format!("ab-{}-{round}", rule.replace('_', "-")));
            bench.post(&bench.ingest, &Value::Array(plan.setup)).await;
            due.push((rule, plan.target, plan.due as f64));
        }
    }
    let deadline = Instant::now() + Duration::from_millis(BEHIND_MS as u64) + ALERT_WAIT;
    for (rule, target, due) in due {
        match bench.fired(rule, &target, deadline.saturating_duration_since(Instant::now())).await {
            Some(at) => samples.entry(rule).or_default().push(Sample { at: due, total: at - due, ..Sample::default() }),
            None => *missed.entry(rule).or_default() += 1,
        }
    }

    let seconds = window.elapsed().as_secs_f64();
    let mut by_rule = bench.seen.lock().expect("lock").1.clone();
    by_rule.iter_mut().for_each(|(rule, count)| *count -= by_rule_before.get(rule).copied().unwrap_or(0));
    let alert_rate = by_rule.values().sum::<u64>() as f64 / seconds;
    let bin = fleetwatch_tests::bin_dir();
    println!("alert-bench: {workers} demo workers, binaries from {}, {rounds} rounds per rule", bin.display());
    println!("  from the completing event's POST (absence rules: its due time) to the alert on fleet.alerts.>");
    println!("| kind | rule | rounds | p50 ms | p99 ms | max ms | missed | POST to 202 p50/p99 | to bus p50/p99 |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut results = Vec::new();
    for rule in EVENT_RULES.iter().chain(&ABSENCE_RULES) {
        let (list, miss) = (samples.remove(rule).unwrap_or_default(), missed.get(rule).copied().unwrap_or(0));
        let kind = match *rule {
            "worker_lost" | "task_stalled" => "absence (watermark)",
            "custom" => "posted (gateway)",
            _ => "event threshold",
        };
        let (p50, p99, max) = spread(list.iter().map(|s| s.total)).unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        let pair = |values: Option<(f64, f64, f64)>| values.map_or("-".into(), |(a, b, _)| format!("{a:.1} / {b:.1}"));
        let (stored, bus) = (spread(list.iter().filter_map(|s| s.stored)), spread(list.iter().filter_map(|s| s.bus)));
        let (n, stored, bus) = (list.len(), pair(stored), pair(bus));
        println!("| {kind} | {rule} | {n} | {p50:.1} | {p99:.1} | {max:.1} | {miss} | {stored} | {bus} |");
        results.push(json!({"kind": kind, "rule": rule, "rounds": n, "missed": miss, "p50_ms": p50, "p99_ms": p99,
                            "max_ms": max, "samples_ms": list}));
    }
    println!("  {alert_rate:.1} alert changes/s on fleet.alerts.> meanwhile: {by_rule:?}");
    let machine = machine(&processes, &pids, &window_cpu, seconds);
    let report = json!({"workers": workers, "rounds": rounds, "bin_dir": bin, "window_secs": seconds,
        "machine": machine, "alert_changes_per_sec": alert_rate, "alerts_by_rule": by_rule, "results": results});
    let out = results_path("alert-bench.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&report).expect("json")).expect("write results");
    println!("  results: {}", out.display());
    if missed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
