//! Every operation of the gateway's OpenAPI document, tried by schemathesis (PyPI, installed
//! by `just tools`) with generated input, valid and not, as an operator: no answer is a 5xx,
//! and every service is still running afterwards. `FLEETWATCH_FUZZ_EXAMPLES` (default 25)
//! and `FLEETWATCH_FUZZ_SEED` run it longer or otherwise.

use fleetwatch_tests::{NatsServer, ServiceProcess, free_port, wait_for};
use shared::access::sha256_hex;
use std::process::Command;

const TOKEN: &str = "fuzz-operator-token";

#[tokio::test]
async fn generated_requests_to_every_operation_get_no_server_error() {
    let nats = NatsServer::start();
    let db = nats.dir.path().join("archive.duckdb");
    let port = free_port();
    let tokens = format!("[{{name=\"fuzz\", role=\"operator\", sha256=\"{}\"}}]", sha256_hex(TOKEN));
    let mut services = [
        ServiceProcess::start(
            "collector",
            &nats,
            &["--demo-workers", "12", "--demo-tick-ms", "500", "--http-port", "0"],
        ),
        ServiceProcess::start("processor", &nats, &["--tick-ms", "500"]),
        ServiceProcess::start("alerter", &nats, &[]),
        ServiceProcess::start("archiver", &nats, &["--db-path", db.to_str().expect("utf-8")]),
        ServiceProcess::start_with_env(
            "gateway",
            &nats,
            &["--port", &port.to_string()],
            &[
                ("FLEETWATCH_GATEWAY__AUTH__TOKENS", &tokens),
                // The limits would answer most generated requests with a 429.
                ("FLEETWATCH_GATEWAY__AUTH__WRITE_RATE_PER_MIN", "0"),
                ("FLEETWATCH_GATEWAY__AUTH__LOGIN_RATE_PER_MIN", "1000000"),
            ],
        ),
    ];
    let base = format!("http://127.0.0.1:{port}");
    wait_for("the gateway to see the demo fleet", || async {
        let client = reqwest::Client::new();
        let status: serde_json::Value =
            client.get(format!("{base}/api/status")).bearer_auth(TOKEN).send().await.ok()?.json().await.ok()?;
        (status["workers"]["total"] == 12).then_some(())
    })
    .await;

    let examples = std::env::var("FLEETWATCH_FUZZ_EXAMPLES").unwrap_or_else(|_| "25".into());
    let seed = std::env::var("FLEETWATCH_FUZZ_SEED").unwrap_or_else(|_| "20261202".into());
    let report = nats.dir.path().join("schemathesis.xml");
    let output = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run", &format!("{base}/api/openapi.json")])
        .args(["--checks", "not_a_server_error", "--max-examples", &examples, "--seed", &seed])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--request-timeout", "20", "--no-color"])
        .arg("--report-junit-path")
        .arg(&report)
        .current_dir(nats.dir.path())
        .output()
        .expect("python3 runs");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        !printed.contains("No module named"),
        "schemathesis is not installed: run `just tools` (it installs it into ~/.cache/fleetwatch/pylib)\n{printed}"
    );
    assert!(output.status.success(), "schemathesis found a server error:\n{printed}");
    let documented: serde_json::Value =
        reqwest::get(format!("{base}/api/openapi.json")).await.expect("the document").json().await.expect("JSON");
    let operations: usize = documented["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|path| path.as_object().map_or(0, |methods| methods.len()))
        .sum();
    assert!(printed.contains(&format!("Tested: {operations}")), "all {operations} operations are tried:\n{printed}");

    for service in &mut services {
        assert!(service.is_running(), "{} crashed:\n{}", service.name, service.log_text());
    }
    let health = reqwest::get(format!("{base}/healthz")).await.expect("the gateway answers");
    assert_eq!(health.status(), 200);
}
