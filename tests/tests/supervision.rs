//! `just up`'s supervisor (deploy/supervise.sh): each service in turn dies by SIGKILL while
//! events keep coming; each is started again, says so in its health report, the dashboard
//! keeps answering, and the archive ends with every acknowledged event exactly once.

use fleetwatch_tests::{
    NatsServer, ServiceProcess, free_port, get_json, health_reports, ingest, kill_pid, task_starts, wait_for,
};

#[tokio::test]
async fn each_service_killed_in_turn_comes_back_and_nothing_is_lost_or_doubled() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let db = nats.dir.path().join("archive.duckdb");
    let port = free_port();
    let gateway_port = port.to_string();
    let db_path = db.to_str().expect("utf-8 path");
    let services = [
        ServiceProcess::start_supervised("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]),
        ServiceProcess::start_supervised("processor", &nats, &[]),
        ServiceProcess::start_supervised("alerter", &nats, &[]),
        ServiceProcess::start_supervised("archiver", &nats, &["--db-path", db_path, "--lease-ttl-secs", "2"]),
        ServiceProcess::start_supervised("gateway", &nats, &["--port", &gateway_port]),
    ];
    let status = format!("http://127.0.0.1:{port}/api/status");
    let batch = 200;
    let mut sent = 0;
    for service in &services {
        assert_eq!(ingest(&client, &task_starts(sent, sent + batch)).await["accepted"], batch);
        sent += batch;
        let before = wait_for("the service to run", || async { service.service_pid() }).await;
        kill_pid(before);
        // Events sent while it is down: the ingest request is answered once they are stored.
        assert_eq!(ingest(&client, &task_starts(sent, sent + batch)).await["accepted"], batch);
        sent += batch;
        let after = wait_for("the supervisor to start it again", || async {
            service.service_pid().filter(|pid| *pid != before)
        })
        .await;
        let reports = health_reports(&client, service.name, 1).await;
        let restarted = wait_for("its report of the restart", || async {
            let reports = health_reports(&client, service.name, 1).await;
            reports.values().find(|report| report.instance.ends_with(&format!("-{after}"))).cloned()
        })
        .await;
        assert_eq!(restarted.restarts, Some(1), "{} reports its restart: {reports:?}", service.name);
        wait_for("the dashboard to answer", || async { get_json(&status).await }).await;
        assert!(
            service.log_text().contains(&format!("supervise: {} exited", service.name)),
            "the restart is logged:\n{}",
            service.log_text()
        );
    }

    // /api/services shows each restart, as /system does.
    let shown = wait_for("every restart on /api/services", || async {
        let services = get_json(&format!("http://127.0.0.1:{port}/api/services")).await?;
        let restarted: Vec<&str> = services
            .as_array()?
            .iter()
            .filter(|service| service["up"] == true && service["restarts"] == 1)
            .filter_map(|service| service["service"].as_str())
            .collect();
        (restarted.len() == 5).then(|| restarted.into_iter().map(str::to_owned).collect::<Vec<_>>())
    })
    .await;
    assert_eq!(shown.len(), 5, "{shown:?}");

    fleetwatch_tests::wait_for_archived(&client, "FLEET_EVENTS").await;
    let mut services = services;
    for service in &mut services {
        assert!(service.stop(), "{} stops cleanly under its supervisor:\n{}", service.name, service.log_text());
    }
    let (rows, ids) = fleetwatch_tests::archived_task_starts(&db);
    assert_eq!((rows, ids), (sent as i64, sent as i64), "every acknowledged event once");
}
