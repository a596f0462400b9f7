//! The dashboard's API end to end: a real nats-server, the collector's demo fleet, the
//! processor, the archiver and the gateway as processes; HTTP and WebSocket clients as a
//! page or a program would use them.

use fleetwatch_tests::{DEADLINE, NatsServer, ServiceProcess, free_port, get_json, wait_for};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A running system: demo fleet of `workers` ticking every 200 ms, and the gateway's URL.
struct System {
    _nats: NatsServer,
    _services: Vec<ServiceProcess>,
    url: String,
    port: u16,
}

fn start(workers: usize, gateway_args: &[&str]) -> System {
    let nats = NatsServer::start();
    let port = free_port();
    let db = nats.dir.path().join("archive.duckdb");
    let mut args = vec!["--port".to_owned(), port.to_string()];
    args.extend(gateway_args.iter().map(|arg| (*arg).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let services = vec![
        ServiceProcess::start(
            "collector",
            &nats,
            &["--demo-workers", &workers.to_string(), "--demo-tick-ms", "200", "--http-port", "0"],
        ),
        ServiceProcess::start("processor", &nats, &["--tick-ms", "200", "--sample-secs", "1"]),
        ServiceProcess::start("archiver", &nats, &["--db-path", db.to_str().expect("utf-8 path")]),
        ServiceProcess::start("gateway", &nats, &args),
    ];
    System { _nats: nats, _services: services, url: format!("http://127.0.0.1:{port}"), port }
}

impl System {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.url)).await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn wait_for_workers(&self, workers: usize) {
        let url = format!("{}/api/workers?limit=1", self.url);
        wait_for(&format!("{workers} workers listed"), || async {
            let list = get_json(&url).await?;
            (list["total"].as_u64() == Some(workers as u64)).then_some(())
        })
        .await;
    }
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list["items"].as_array().expect("items").iter().map(|item| item[key].as_str().expect("an id").to_owned()).collect()
}

#[tokio::test]
async fn workers_are_filtered_sorted_paged_and_exported() {
    let system = start(30, &[]);
    system.wait_for_workers(30).await;
    let (_, cuda) = system.get("/api/workers?hardware=cuda&sort=cpu_pct&order=desc&limit=100").await;
    let cpus: Vec<f64> =
        cuda["items"].as_array().expect("items").iter().map(|w| w["cpu_pct"].as_f64().expect("cpu")).collect();
    assert!(!cpus.is_empty() && cpus.windows(2).all(|pair| pair[0] >= pair[1]), "sorted by CPU: {cpus:?}");
    assert!(cuda["items"].as_array().expect("items").iter().all(|w| w["capabilities"]["hardware"] == "cuda"));
    assert_eq!(cuda["summary"]["total"], 30, "the summary counts the whole fleet");

    // Pages of 7 by id: every worker once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/workers?limit=7".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={}", urlencode(cursor)));
        }
        let (status, page) = system.get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page, "worker_id"));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!((seen.len(), &seen), (30, &sorted));

    let csv = reqwest::get(format!("{}/api/workers?tag=pool-a&format=csv", system.url)).await.expect("csv");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.expect("text");
    assert!(text.starts_with("worker_id,status,hardware,"), "{text}");
    assert!(text.lines().skip(1).all(|line| line.contains("pool-a")), "{text}");
    let (status, body) = system.get("/api/workers?status=asleep").await;
    assert_eq!((status, body["error"].as_str().is_some_and(|reason| reason.contains("asleep"))), (400, true));
}

#[tokio::test]
async fn tasks_live_and_finished_and_one_task_s_whole_life() {
    let system = start(12, &[]);
    system.wait_for_workers(12).await;
    // Live tasks come from the processor, page by page.
    let (status, running) = system.get("/api/tasks?status=running,assigned&sort=priority&order=desc&limit=3").await;
    assert_eq!((status, running["source"].as_str()), (200, Some("live")), "{running}");
    let priorities: Vec<u64> =
        running["items"].as_array().expect("items").iter().map(|t| t["priority"].as_u64().expect("p")).collect();
    assert!(priorities.windows(2).all(|pair| pair[0] >= pair[1]), "{priorities:?}");
    let (_, grouped) = system.get("/api/tasks?status=running&group_by=worker_id").await;
    let groups = grouped["groups"].as_array().expect("groups");
    assert!(groups.iter().all(|group| group["running"] == group["total"]), "{grouped}");

    // Finished ones from the archive, once some have finished.
    let url = format!("{}/api/tasks?status=completed&limit=5", system.url);
    let finished = wait_for("completed tasks in the archive", || async {
        let list = get_json(&url).await?;
        (list["items"].as_array()?.len() == 5).then_some(list)
    })
    .await;
    assert_eq!(finished["source"], "archive");
    let finished_at: Vec<i64> =
        finished["items"].as_array().expect("items").iter().map(|t| t["finished_at"].as_i64().expect("time")).collect();
    assert!(finished_at.windows(2).all(|pair| pair[0] >= pair[1]), "newest first: {finished_at:?}");
    let task_id = finished["items"][0]["task_id"].as_str().expect("id").to_owned();
    let (status, task) = system.get(&format!("/api/tasks/{task_id}")).await;
    assert_eq!((status, task["status"].as_str()), (200, Some("completed")), "{task}");
    let kinds: Vec<&str> =
        task["events"].as_array().expect("events").iter().map(|e| e["type"].as_str().expect("type")).collect();
    assert_eq!(kinds.first(), Some(&"task_queued"), "its life from the start: {kinds:?}");
    assert_eq!(kinds.last(), Some(&"task_completed"), "{kinds:?}");
    assert_eq!(task["runs"].as_array().expect("runs").last().expect("a run")["status"], "completed");

    for (path, code) in [
        ("/api/tasks/no-such-task", 404),
        ("/api/tasks/a.b", 400),
        ("/api/tasks?status=running,completed", 400),
        ("/api/tasks?status=completed&group_by=model", 400),
        ("/api/tasks?sort=height", 400),
        ("/api/tasks?start_time=yesterday", 400),
    ] {
        let (status, body) = system.get(path).await;
        assert_eq!(status, code, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let (status, distribution) = system.get("/api/metrics/tasks/distribution?start_time=0").await;
    assert_eq!(status, 200, "{distribution}");
    let bucketed: u64 =
        distribution["buckets"].as_array().expect("buckets").iter().map(|b| b["count"].as_u64().expect("n")).sum();
    assert_eq!(Some(bucketed), distribution["count"].as_u64(), "every completed run is in a bucket");
}

#[tokio::test]
async fn the_views_answer_from_live_data() {
    let system = start(20, &[]);
    system.wait_for_workers(20).await;
    let (_, topology) = system.get("/api/topology").await;
    assert_eq!(topology["workers"], 20);
    let kinds = topology["kinds"].as_array().expect("kinds");
    let grouped: u64 = kinds
        .iter()
        .flat_map(|kind| kind["groups"].as_array().expect("groups"))
        .map(|g| g["workers"].as_u64().expect("n"))
        .sum();
    assert_eq!(grouped, 20, "every worker is in one group");
    let cuda = kinds.iter().find(|kind| kind["hardware"] == "cuda").expect("cuda workers");
    assert!(cuda["common_tags"].as_array().expect("tags").contains(&json!("cuda")));
    let group = cuda["groups"][0]["id"].as_str().expect("a group").to_owned();
    let (_, opened) = system.get(&format!("/api/topology/workers?group={}", urlencode(&group))).await;
    assert_eq!(opened["total"], cuda["groups"][0]["workers"], "{opened}");

    let url = format!("{}/api/performance", system.url);
    let performance = wait_for("performance figures", || get_json(&url)).await;
    assert!(performance["efficiency"]["slots"].as_u64().is_some_and(|slots| slots > 0), "{performance}");
    assert!(performance["recommendations"].is_array());
    let url = format!("{}/api/fault-tolerance", system.url);
    let faults = wait_for("fault tolerance figures", || get_json(&url)).await;
    assert!(faults["failure_rate_by_hardware"].is_array() && faults["top_errors"].is_array(), "{faults}");
    let (_, metrics) = system.get("/api/metrics").await;
    assert_eq!(metrics["system"]["workers"]["total"], 20);
}

async fn next_json(
    socket: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    loop {
        let message =
            tokio::time::timeout(DEADLINE, socket.next()).await.expect("a message in time").expect("open").expect("ok");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("json");
        }
    }
}

#[tokio::test]
async fn websocket_topics_deliver_what_was_asked_beside_a_client_that_never_reads() {
    let system = start(10, &[]);
    system.wait_for_workers(10).await;
    let (_, workers) = system.get("/api/workers?limit=1").await;
    let worker_id = workers["items"][0]["worker_id"].as_str().expect("a worker").to_owned();
    let base = format!("ws://127.0.0.1:{}/ws/metrics", system.port);

    // A client that never reads, subscribed to everything.
    let (_stalled, _) =
        tokio_tungstenite::connect_async(format!("{base}?topics=system,tasks,alerts,workers")).await.expect("connect");

    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{base}?topics=worker:{worker_id}")).await.expect("connect");
    let subscribed = next_json(&mut socket).await;
    assert_eq!(subscribed, json!({ "type": "subscribed", "data": { "topics": [format!("worker:{worker_id}")] } }));
    let first = next_json(&mut socket).await;
    assert_eq!(
        (first["type"].as_str(), first["data"]["worker_id"].as_str()),
        (Some("worker"), Some(worker_id.as_str()))
    );
    // At least once a second, each newer; nothing of other topics.
    let started = Instant::now();
    let mut times = vec![first["data"]["time"].as_i64().expect("time")];
    while times.len() < 6 {
        let update = next_json(&mut socket).await;
        assert_eq!(update["type"], "worker", "only what was asked: {update}");
        times.push(update["data"]["time"].as_i64().expect("time"));
    }
    assert!(started.elapsed() < Duration::from_secs(5), "five updates at a 200 ms tick took {:?}", started.elapsed());
    assert!(times.windows(2).all(|pair| pair[1] > pair[0]), "{times:?}");

    socket.send(Message::text(r#"{"subscribe": ["workers"], "unsubscribe": ["worker:nobody"]}"#)).await.expect("send");
    let subscribed = next_json(&mut socket).await;
    assert_eq!(subscribed["type"], "subscribed");
    let snapshot = loop {
        let update = next_json(&mut socket).await;
        if update["type"] == "workers" {
            break update;
        }
    };
    assert_eq!(snapshot["data"]["workers"].as_array().expect("workers").len(), 10, "the whole picture first");
    let changed = loop {
        let update = next_json(&mut socket).await;
        if update["type"] == "workers_changed" {
            break update;
        }
    };
    assert!(changed["data"]["workers"].as_array().expect("workers").len() <= 10);
    socket.send(Message::text(r#"{"subscribe": ["weather"]}"#)).await.expect("send");
    let refused = loop {
        let update = next_json(&mut socket).await;
        if update["type"] == "error" {
            break update;
        }
    };
    assert!(refused["data"]["error"].as_str().is_some_and(|reason| reason.contains("weather")), "{refused}");
    match tokio_tungstenite::connect_async(format!("{base}?topics=nope")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        other => panic!("an unknown topic is refused before the upgrade: {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn the_guide_s_options_do_what_it_says() {
    let out = tempfile::tempdir().expect("temp dir");
    let opened = out.path().join("opened");
    let browser = out.path().join("browser.sh");
    std::fs::write(&browser, format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display())).expect("script");
    std::process::Command::new("chmod").arg("+x").arg(&browser).status().expect("chmod");
    let dashboard = out.path().join("dashboard");
    let nats = NatsServer::start();
    let port = free_port();
    let dashboard_arg = dashboard.to_str().expect("utf-8").to_owned();
    let port_arg = port.to_string();
    let args = ["--port", &port_arg, "--theme", "light", "--refresh", "7", "--output-dir", &dashboard_arg, "--browser"];
    let browser = browser.to_str().expect("utf-8").to_owned();
    let _gateway = ServiceProcess::start_with_env("gateway", &nats, &args, &[("BROWSER", &browser)]);
    let url = format!("http://127.0.0.1:{port}");
    let shell = wait_for("the dashboard", || async { reqwest::get(&url).await.ok()?.text().await.ok() }).await;
    assert!(shell.contains("data-theme=\"light\""), "the theme starts light: {shell}");
    assert!(shell.contains("&quot;auto_refresh&quot;:7"), "{shell}");
    let written = std::fs::read_to_string(dashboard.join("index.html")).expect("--output-dir wrote the dashboard");
    assert_eq!(written, shell);
    assert!(dashboard.join("assets/app.js").exists());
    let opened_url = wait_for("the browser to be opened", || async { std::fs::read_to_string(&opened).ok() }).await;
    assert_eq!(opened_url.trim(), url);

    let quiet_port = free_port().to_string();
    let off = [("FLEETWATCH_GATEWAY__REAL_TIME_ENABLED", "false")];
    let _quiet = ServiceProcess::start_with_env("gateway", &nats, &["--port", &quiet_port], &off);
    let ws = format!("http://127.0.0.1:{quiet_port}/ws/metrics");
    let status =
        wait_for("the gateway without real time", || async { Some(reqwest::get(&ws).await.ok()?.status().as_u16()) })
            .await;
    assert_eq!(status, 503, "real_time_enabled = false turns the WebSocket off");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
