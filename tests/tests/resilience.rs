//! Failures a user lives through: the NATS server restarting under a running system.

use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, get_json, wait_for};
use shared::now_ms;

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
