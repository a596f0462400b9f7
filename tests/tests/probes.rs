//! Every service's probes (`--probe-listen`), as Kubernetes and Compose ask them: `/healthz`
//! answers while the process runs, `/readyz` only while it is set up and connected to NATS,
//! through an outage of nats-server and back.

use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, wait_for};

async fn probe(port: u16, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test]
async fn every_service_is_ready_only_while_connected_to_nats() {
    let mut nats = NatsServer::start();
    let db = tempfile::tempdir().expect("temp dir");
    let db_path = db.path().join("archive.duckdb");
    let db_path = db_path.to_str().expect("utf-8 path");
    let gateway_port = free_port().to_string();
    let services: [(&'static str, Vec<&str>); 5] = [
        ("collector", vec!["--demo-workers", "0", "--http-port", "0"]),
        ("processor", vec![]),
        ("alerter", vec![]),
        ("archiver", vec!["--db-path", db_path]),
        ("gateway", vec!["--port", &gateway_port]),
    ];
    let mut running = Vec::new();
    for (name, args) in services {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = args.clone();
        args.extend(["--probe-listen", &listen]);
        running.push((name, port, ServiceProcess::start(name, &nats, &args)));
    }

    for (name, port, _) in &running {
        let (status, body) = wait_for(&format!("{name} ready"), || async {
            probe(*port, "/readyz").await.filter(|(status, _)| *status == 200)
        })
        .await;
        assert_eq!((status, body.as_str()), (200, "ready"), "{name}");
        assert_eq!(probe(*port, "/healthz").await, Some((200, "ok".to_owned())), "{name}");
        assert_eq!(probe(*port, "/metrics").await.map(|(status, _)| status), Some(404), "{name}");
    }

    // nats-server goes away: alive, not ready, and the reason says why.
    nats.kill();
    for (name, port, _) in &running {
        let (_, body) = wait_for(&format!("{name} not ready"), || async {
            probe(*port, "/readyz").await.filter(|(status, _)| *status == 503)
        })
        .await;
        assert_eq!(body, "the NATS connection is down; reconnecting", "{name}");
        assert_eq!(probe(*port, "/healthz").await, Some((200, "ok".to_owned())), "{name}");
    }

    nats.restart();
    for (name, port, service) in &mut running {
        wait_for(&format!("{name} ready again"), || async {
            probe(*port, "/readyz").await.filter(|(status, _)| *status == 200)
        })
        .await;
        assert!(service.is_running(), "{name} kept running through the outage:\n{}", service.log_text());
    }
}

#[tokio::test]
async fn check_config_says_what_is_wrong_without_connecting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("fleetwatch.toml");
    std::fs::write(
        &config,
        "[gateway]\nhost = \"0.0.0.0\"\n[processor]\ntick_ms = 10\n[archiver]\nduckdb_memory_mb = 16\n",
    )
    .expect("write");
    let run = |service: &str| {
        std::process::Command::new(fleetwatch_tests::bin_dir().join(format!("fleetwatch-{service}")))
            .args(["--check-config", "--config"])
            .arg(&config)
            // Nothing listens here: the check must not try.
            .args(["--nats-url", "nats://127.0.0.1:1"])
            .output()
            .expect("run")
    };
    let gateway = run("gateway");
    assert_eq!(gateway.status.code(), Some(2));
    let said = String::from_utf8_lossy(&gateway.stderr);
    assert!(said.contains("0.0.0.0") && said.contains("--insecure"), "{said}");
    let processor = run("processor");
    assert_eq!(processor.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&processor.stderr).contains("processor.tick_ms must be at least 100"));
    let archiver = run("archiver");
    assert_eq!(archiver.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&archiver.stderr).contains("archiver.duckdb_memory_mb must be at least 64"));
    let alerter = run("alerter");
    assert!(alerter.status.success(), "{}", String::from_utf8_lossy(&alerter.stderr));
    assert_eq!(String::from_utf8_lossy(&alerter.stdout).trim(), "fleetwatch-alerter: configuration ok");
}
