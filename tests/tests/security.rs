//! Who may do what, as an attacker and an operator would find it: every service on its own
//! NATS user with only the permissions of deploy/nats/auth.conf, the gateway's users, tokens,
//! sessions and CSRF protection, the collector's ingest token, and ports that refuse to
//! open up by accident.

use fleetwatch_tests::{NatsServer, ServiceProcess, bin_dir, free_port, get_json, wait_for};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use shared::access::sha256_hex;
use shared::event::Event;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

fn heartbeats(count: usize) -> Value {
    json!(
        (0..count)
            .map(|n| json!({"type": "heartbeat", "worker_id": format!("cpu-{n:03}"), "cpu_pct": 20, "memory_pct": 30,
                        "network_pct": 1, "running_tasks": 0, "queued_tasks": 0}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn every_service_works_with_only_its_own_nats_permissions() {
    let nats = NatsServer::start_with_users();
    let db = nats.dir.path().join("archive.duckdb");
    let port = free_port();
    let _services = [
        ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]),
        ServiceProcess::start_with_env(
            "processor",
            &nats,
            &["--tick-ms", "200"],
            &[("FLEETWATCH_PROCESSOR__SNAPSHOT_EVERY_SECS", "1")],
        ),
        ServiceProcess::start_with_env("alerter", &nats, &[], &[("FLEETWATCH_ALERTER__SNAPSHOT_EVERY_SECS", "1")]),
        ServiceProcess::start("archiver", &nats, &["--db-path", db.to_str().expect("utf-8")]),
        ServiceProcess::start("gateway", &nats, &["--port", &port.to_string()]),
    ];
    let base = format!("http://127.0.0.1:{port}");

    // An agent reports three workers; they reach the dashboard through every service.
    let agent = nats.client_as("agent").await;
    let answer = fleetwatch_tests::ingest(&agent, &heartbeats(3)).await;
    assert_eq!(answer["accepted"], 3, "{answer}");
    wait_for("the three workers on /api/status", || async {
        let status = get_json(&format!("{base}/api/status")).await?;
        (status["workers"]["total"] == 3).then_some(())
    })
    .await;
    // A custom alert: the gateway asks the collector, the alerter fires it, the gateway shows it.
    let http = reqwest::Client::new();
    let raised = json!({"level": "warning", "title": "permissions", "source": "security_test"});
    let stored = http.post(format!("{base}/api/alerts")).json(&raised).send().await.expect("answer");
    assert_eq!(stored.status(), 202, "{:?}", stored.text().await);
    wait_for("the custom alert on /api/alerts", || async {
        let alerts = reqwest::get(format!("{base}/api/alerts")).await.ok()?.text().await.ok()?;
        alerts.contains("security_test").then_some(())
    })
    .await;
    let admin = nats.client().await;
    fleetwatch_tests::wait_for_archived(&admin, "FLEET_EVENTS").await;
    // History comes back from the archiver over its query subject.
    let history =
        wait_for("the archive's answer", || async { get_json(&format!("{base}/api/metrics/system/history")).await })
            .await;
    assert!(history.is_object() || history.is_array(), "{history}");

    // Snapshots are saved over and over (each save purges the last one's chunks).
    let store =
        async_nats::jetstream::new(admin.clone()).get_object_store("FLEET_SNAPSHOTS").await.expect("snapshot store");
    for service in ["processor", "alerter"] {
        let first = wait_for("a first snapshot", || async { store.info(service).await.ok() }).await;
        wait_for(&format!("{service}'s next snapshot"), || async {
            store.info(service).await.ok().filter(|info| info.nuid != first.nuid)
        })
        .await;
    }

    // The agent may not write the event stream, nor read it, nor read another's inbox
    // (where the processor's replay of the stream is delivered).
    agent.publish("fleet.events.worker.00.forged", "{}".into()).await.expect("publish");
    let _peek = agent.subscribe("fleet.events.>").await.expect("subscribe is sent");
    let _inboxes = agent.subscribe("_INBOX.>").await.expect("subscribe is sent");
    agent.flush().await.expect("flush");
    let log = wait_for("the server to refuse the agent three times", || async {
        let log = nats.log_text();
        let refused = [
            "Publish Violation - Subject \"fleet.events.worker.00.forged\"",
            "Subscription Violation - Subject \"fleet.events.>\"",
            "Subscription Violation - Subject \"_INBOX.>\"",
        ];
        refused.iter().all(|line| log.contains(line)).then_some(log)
    })
    .await;
    let violations: Vec<&str> = log.lines().filter(|line| line.contains("Violation")).collect();
    assert!(
        violations.iter().all(|line| line.contains("user:agent")),
        "only the agent's attempts are refused; every service has what it needs:\n{}",
        violations.join("\n")
    );
    let js = async_nats::jetstream::new(admin.clone());
    let stream = js.get_stream("FLEET_EVENTS").await.expect("stream");
    assert!(
        stream.get_last_raw_message_by_subject("fleet.events.worker.00.forged").await.is_err(),
        "nothing forged is stored"
    );
}

/// `fleetwatch-gateway --hash-password` on `password`.
fn hash_password(password: &str) -> String {
    let mut child = Command::new(bin_dir().join("fleetwatch-gateway"))
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("fleetwatch-gateway");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write");
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).expect("utf-8").trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}

struct Gateway {
    base: String,
    http: reqwest::Client,
}

impl Gateway {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("an answer")
    }

    async fn login(&self, name: &str, password: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.send(reqwest::Method::POST, "/api/login", headers, Some(json!({"name": name, "password": password}))).await
    }
}

#[tokio::test]
async fn the_gateway_asks_who_you_are_and_lets_only_operators_change_things() {
    let nats = NatsServer::start();
    let port = free_port();
    let users = format!(
        "[{{name=\"ada\", role=\"operator\", password_hash=\"{}\"}}, {{name=\"vic\", role=\"viewer\", password_hash=\"{}\"}}]",
        hash_password("lovelace"),
        hash_password("viewing")
    );
    let tokens = format!(
        "[{{name=\"grafana\", role=\"viewer\", sha256=\"{}\"}}, {{name=\"bot\", role=\"operator\", sha256=\"{}\"}}]",
        sha256_hex("view-token"),
        sha256_hex("bot-token")
    );
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _gateway = ServiceProcess::start_with_env(
        "gateway",
        &nats,
        &["--port", &port.to_string()],
        &[
            ("FLEETWATCH_GATEWAY__AUTH__USERS", &users),
            ("FLEETWATCH_GATEWAY__AUTH__TOKENS", &tokens),
            ("FLEETWATCH_GATEWAY__AUTH__METRICS_TOKEN_SHA256", &sha256_hex("scrape")),
            ("FLEETWATCH_GATEWAY__AUTH__LOGIN_RATE_PER_MIN", "6"),
            ("FLEETWATCH_GATEWAY__AUTH__WRITE_RATE_PER_MIN", "40"),
        ],
    );
    let gateway = Gateway {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
    };
    use reqwest::Method;
    wait_for("the gateway", || async { reqwest::get(format!("{}/healthz", gateway.base)).await.ok() }).await;

    // Nobody signed in: pages go to /login, the API says why, /healthz and /api/session answer.
    let page = gateway.send(Method::GET, "/alerts?state=firing", &[], None).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], "/login?next=%2Falerts%3Fstate%3Dfiring");
    assert_eq!(gateway.send(Method::GET, "/login", &[], None).await.status(), 200, "the sign-in page is open");
    let refused = gateway.send(Method::GET, "/api/status", &[], None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let reason: Value = refused.json().await.expect("json");
    assert!(reason["error"].as_str().is_some_and(|text| text.contains("/login")), "{reason}");
    let session: Value = gateway.send(Method::GET, "/api/session", &[], None).await.json().await.expect("json");
    assert_eq!((session["auth_required"].clone(), session["user"].clone()), (json!(true), Value::Null));
    let ws = gateway.send(Method::GET, "/ws/metrics", &[], None).await;
    assert_eq!(ws.status(), 401, "the WebSocket wants a viewer too");

    // /metrics has its own token.
    assert_eq!(gateway.send(Method::GET, "/metrics", &[], None).await.status(), 401);
    let scraped = gateway.send(Method::GET, "/metrics", &[("authorization", "Bearer scrape")], None).await;
    assert_eq!(scraped.status(), 200);

    // Tokens: a viewer reads, only an operator writes.
    let raise = json!({"level": "info", "title": "token", "source": "security_test"});
    let viewer = [("authorization", "Bearer view-token")];
    assert_eq!(gateway.send(Method::GET, "/api/status", &viewer, None).await.status(), 200);
    let denied = gateway.send(Method::POST, "/api/alerts", &viewer, Some(raise.clone())).await;
    assert_eq!(denied.status(), 403);
    assert!(denied.text().await.expect("text").contains("grafana is a viewer"));
    assert_eq!(gateway.send(Method::GET, "/api/status", &[("authorization", "Bearer nope")], None).await.status(), 401);
    let bot = [("authorization", "Bearer bot-token")];
    let stored = wait_for("the bot's alert stored", || async {
        let answer = gateway.send(Method::POST, "/api/alerts", &bot, Some(raise.clone())).await;
        (answer.status() == 202).then_some(())
    });
    stored.await;

    // Sign-in: a wrong password is refused; the right one sets a strict, HttpOnly cookie.
    assert_eq!(gateway.login("ada", "babbage", &[]).await.status(), 401);
    assert_eq!(gateway.login("nobody", "lovelace", &[]).await.status(), 401);
    let signed_in = gateway.login("ada", "lovelace", &[]).await;
    assert_eq!(signed_in.status(), 200);
    let set_cookie = signed_in.headers()[SET_COOKIE].to_str().expect("ascii").to_owned();
    for part in ["fleetwatch_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP on loopback: {set_cookie}");
    let info: Value = signed_in.json().await.expect("json");
    assert_eq!((info["user"].as_str(), info["role"].as_str()), (Some("ada"), Some("operator")));
    let csrf = info["csrf_token"].as_str().expect("a CSRF token").to_owned();
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();

    // With the cookie: reads work; a write needs the CSRF token and this site.
    let with_cookie = [(COOKIE.as_str(), cookie.as_str())];
    assert_eq!(gateway.send(Method::GET, "/api/status", &with_cookie, None).await.status(), 200);
    assert_eq!(gateway.send(Method::GET, "/alerts", &with_cookie, None).await.status(), 200);
    let silence =
        json!({"matchers": [{"name": "rule", "value": "worker_overloaded"}], "duration_secs": 60, "by": "mallory"});
    let no_token = gateway.send(Method::POST, "/api/silences", &with_cookie, Some(silence.clone())).await;
    assert_eq!(no_token.status(), 403);
    assert!(no_token.text().await.expect("text").contains("X-CSRF-Token"));
    let full = [(COOKIE.as_str(), cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let cross = [full[0], full[1], ("sec-fetch-site", "cross-site")];
    assert_eq!(gateway.send(Method::POST, "/api/silences", &cross, Some(silence.clone())).await.status(), 403);
    let cross_socket = [full[0], ("sec-fetch-site", "cross-site")];
    assert_eq!(
        gateway.send(Method::GET, "/ws/metrics", &cross_socket, None).await.status(),
        403,
        "no cross-site WebSocket"
    );
    let evil_origin = [full[0], full[1], ("origin", "http://evil.example")];
    assert_eq!(gateway.send(Method::POST, "/api/silences", &evil_origin, Some(silence.clone())).await.status(), 403);
    let made = gateway.send(Method::POST, "/api/silences", &full, Some(silence)).await;
    assert_eq!(made.status(), 201, "{:?}", made.text().await);
    // Recorded as who signed in, not who the body claims.
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("FLEET_EVENTS").await.expect("stream");
    let last = stream.get_last_raw_message_by_subject("fleet.events.control.alerts").await.expect("stored");
    let envelope = shared::codec::decode_envelope::<Event>(&last.payload).expect("event");
    assert!(matches!(envelope.payload, Event::SilenceCreated { ref by, .. } if by == "ada"), "{:?}", envelope.payload);

    // A viewer's session reads but does not write.
    let vic = gateway.login("vic", "viewing", &[]).await;
    let vic_cookie = vic.headers()[SET_COOKIE].to_str().expect("ascii").split(';').next().expect("cookie").to_owned();
    let vic_csrf = vic.json::<Value>().await.expect("json")["csrf_token"].as_str().expect("token").to_owned();
    let vic_headers = [(COOKIE.as_str(), vic_cookie.as_str()), ("x-csrf-token", vic_csrf.as_str())];
    assert_eq!(gateway.send(Method::GET, "/api/alerts", &vic_headers, None).await.status(), 200);
    assert_eq!(gateway.send(Method::POST, "/api/alerts", &vic_headers, Some(raise)).await.status(), 403);

    // Behind an HTTPS proxy the cookie is Secure; signing out clears it.
    let proxied = gateway.login("ada", "lovelace", &[("x-forwarded-proto", "https")]).await;
    assert!(proxied.headers()[SET_COOKIE].to_str().expect("ascii").contains("; Secure"));
    let out = gateway.send(Method::POST, "/api/logout", &with_cookie, None).await;
    assert_eq!(out.status(), 204);
    assert!(out.headers()[SET_COOKIE].to_str().expect("ascii").contains("Max-Age=0"));

    // Guessing passwords is slowed: six sign-ins a minute here, then 429 with a wait.
    let mut limited = None;
    for _ in 0..20 {
        let answer = gateway.login("ada", "guess", &[]).await;
        if answer.status() != 401 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a refusal within 20 sign-ins");
    assert_eq!(limited.status(), 429);
    assert!(limited.headers()["retry-after"].to_str().expect("ascii").parse::<u64>().expect("seconds") >= 1);

    // A write's body is small; writes are limited per address (40 a minute here).
    let big = json!({"level": "info", "title": "x".repeat(70 * 1024), "source": "security_test"});
    assert_eq!(gateway.send(Method::POST, "/api/alerts", &bot, Some(big)).await.status(), 413);
    let again = json!({"level": "info", "title": "again", "source": "security_test"});
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let status = gateway.send(Method::POST, "/api/alerts", &bot, Some(again.clone())).await.status();
        statuses.push(status.as_u16());
        if status == 429 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
async fn open_ports_beyond_loopback_need_credentials_or_insecure() {
    let nats = NatsServer::start();
    // Open on loopback, as just up has it: only for requests addressed to a loopback name.
    let loopback = free_port();
    let _local = ServiceProcess::start("gateway", &nats, &["--port", &loopback.to_string()]);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{loopback}/api/session");
    wait_for("the open gateway", || async { http.get(&url).send().await.ok() }).await;
    let rebound = http.get(&url).header("host", "evil.example:8082").send().await.expect("answer");
    assert_eq!(rebound.status(), 403, "a rebound DNS name is refused");
    assert_eq!(http.get(&url).header("host", "localhost:8082").send().await.expect("answer").status(), 200);

    let mut refused = ServiceProcess::start("gateway", &nats, &["--host", "0.0.0.0", "--port", "0"]);
    let status = refused.exit_within(Duration::from_secs(30)).expect("it exits");
    assert!(!status.success());
    assert!(refused.log_text().contains("--insecure"), "{}", refused.log_text());

    let port = free_port();
    let _open =
        ServiceProcess::start("gateway", &nats, &["--host", "0.0.0.0", "--port", &port.to_string(), "--insecure"]);
    wait_for("the gateway served open on purpose", || async {
        get_json(&format!("http://127.0.0.1:{port}/api/session")).await
    })
    .await;
    let named =
        http.get(format!("http://127.0.0.1:{port}/api/session")).header("host", "fleet.example:8082").send().await;
    assert_eq!(named.expect("answer").status(), 200, "--insecure serves any name");

    let mut collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "0", "--http-host", "0.0.0.0", "--http-port", "0"],
    );
    let status = collector.exit_within(Duration::from_secs(30)).expect("it exits");
    assert!(!status.success());
    assert!(collector.log_text().contains("--insecure"), "{}", collector.log_text());
}

#[tokio::test]
async fn the_collector_takes_pushes_only_with_its_token_and_within_its_rate() {
    let nats = NatsServer::start();
    let port = free_port();
    let digests = format!("[\"{}\", \"{}\"]", sha256_hex("old-token"), sha256_hex("new-token"));
    let _collector = ServiceProcess::start_with_env(
        "collector",
        &nats,
        &["--demo-workers", "0", "--http-port", &port.to_string()],
        &[("FLEETWATCH_COLLECTOR__HTTP__TOKEN_SHA256", &digests), ("FLEETWATCH_COLLECTOR__HTTP__RATE_PER_MIN", "6")],
    );
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/ingest");
    let push = |token: Option<&'static str>| {
        let mut request = http.post(&url).json(&heartbeats(1));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let unsigned = wait_for("the http ingest", || async { push(None).await.ok() }).await;
    assert_eq!(unsigned.status(), 401);
    assert_eq!(push(Some("wrong")).await.expect("answer").status(), 401);
    // Both tokens of a rotation work.
    assert_eq!(push(Some("old-token")).await.expect("answer").status(), 202);
    assert_eq!(push(Some("new-token")).await.expect("answer").status(), 202);
    let mut limited = None;
    for _ in 0..10 {
        let answer = push(Some("new-token")).await.expect("answer");
        if answer.status() != 202 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a refusal within 10 pushes");
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.expect("answer").status(), 200);
}

#[tokio::test]
async fn services_speak_tls_to_nats_and_refuse_a_server_they_cannot_verify() {
    let nats = NatsServer::start_with_tls();
    let port = free_port();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let _processor = ServiceProcess::start("processor", &nats, &["--tick-ms", "200"]);
    let _gateway = ServiceProcess::start("gateway", &nats, &["--port", &port.to_string()]);
    let client = nats.client().await;
    assert_eq!(fleetwatch_tests::ingest(&client, &heartbeats(2)).await["accepted"], 2);
    wait_for("the two workers on /api/status, over TLS all the way", || async {
        let status = get_json(&format!("http://127.0.0.1:{port}/api/status")).await?;
        (status["workers"]["total"] == 2).then_some(())
    })
    .await;

    // Trusting the wrong certificate, a service cannot verify the server and does not start.
    let wrong = nats.dir.path().join("server.pem");
    let mut blind = ServiceProcess::start_with_env(
        "alerter",
        &nats,
        &[],
        &[("FLEETWATCH_NATS__TLS_CA", wrong.to_str().expect("utf-8")), ("FLEETWATCH_NATS__CONNECT_TIMEOUT_SECS", "2")],
    );
    let status = blind.exit_within(Duration::from_secs(30)).expect("it gives up");
    assert!(!status.success());
    assert!(blind.log_text().contains("connecting to nats"), "{}", blind.log_text());
}
