//! Failures a user lives through: the NATS server restarting under a running system, or
//! gone when the services are told to stop.

use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, get_json, wait_for};
use shared::now_ms;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_dashboard_comes_back_live_after_nats_restarts() {
    let mut nats = NatsServer::start();
    let port = free_port();
    let mut collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "6", "--demo-tick-ms", "200", "--http-port", "0"],
    );
    let mut processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "200"]);
    let mut gateway = ServiceProcess::start("gateway", &nats, &["--port", &port.to_string()]);
    let url = format!("http://127.0.0.1:{port}/api/status");
    wait_for("6 workers in the status", || async {
        let status = get_json(&url).await?;
        (status["workers"]["total"] == 6).then_some(())
    })
    .await;

    nats.restart();
    let restarted_at = now_ms();
    let status = wait_for("metrics newer than the restart", || async {
        let status = get_json(&url).await?;
        (status["updated_at"].as_i64()? > restarted_at + 1000 && status["workers"]["total"] == 6).then_some(status)
    })
    .await;
    assert_eq!(status["workers"]["disconnected"], 0, "heartbeats flow again: {status}");
    for service in [&mut collector, &mut processor, &mut gateway] {
        assert!(service.stop(), "{} stops cleanly after the restart:\n{}", service.name, service.log_text());
    }
}

#[tokio::test]
async fn every_service_exits_soon_after_sigterm_with_nats_down() {
    let mut nats = NatsServer::start();
    let db = nats.dir.path().join("fleetwatch.duckdb");
    let port = free_port().to_string();
    let mut services = [
        ServiceProcess::start(
            "collector",
            &nats,
            &["--demo-workers", "6", "--demo-tick-ms", "200", "--http-port", "0"],
        ),
        ServiceProcess::start("processor", &nats, &["--tick-ms", "200"]),
        ServiceProcess::start("alerter", &nats, &[]),
        ServiceProcess::start("archiver", &nats, &["--db-path", &db.display().to_string()]),
        ServiceProcess::start("gateway", &nats, &["--port", &port]),
    ];
    let url = format!("http://127.0.0.1:{port}/api/services");
    wait_for("all five services reporting", || async {
        let answer = get_json(&url).await?;
        let reporting: std::collections::BTreeSet<&str> =
            answer.as_array()?.iter().filter_map(|service| service["service"].as_str()).collect();
        (reporting.len() == 5).then_some(())
    })
    .await;

    nats.kill();
    let told = Instant::now();
    for service in &services {
        service.signal_term();
    }
    for service in &mut services {
        let exited = service.exit_within((told + Duration::from_secs(10)).saturating_duration_since(Instant::now()));
        assert!(
            exited.is_some(),
            "{} still ran {:?} after SIGTERM with nats-server down:\n{}",
            service.name,
            told.elapsed(),
            service.log_text()
        );
    }
}
