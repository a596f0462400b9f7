//! The one shape every service has: config -> connect -> run until shutdown.
//!
//! A service's `main` parses its flags and calls [`main`]; tests call [`start`] or run the
//! binary. `connect` does all fallible set-up (streams, consumers, ports), `run` only loops.

use crate::config::{self, CommonArgs, CommonConfig, NatsConfig, Overrides};
use crate::probe::{self, Readiness};
use crate::subjects::Subjects;
use crate::telemetry::{self, Registry};
use anyhow::Context as _;
use async_nats::jetstream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// What every service is handed once connected.
#[derive(Clone)]
pub struct Context {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub subjects: Subjects,
    pub nats: NatsConfig,
    /// `[fleet]`: what makes a worker's status.
    pub fleet: crate::config::FleetConfig,
    /// This service's counters, reported on `<prefix>.health.<service>`.
    pub counters: Registry,
}

pub trait Service: Sized + Send + 'static {
    /// Its name: the config section, the NATS connection name, the health subject.
    const NAME: &'static str;
    type Config: Serialize + DeserializeOwned + Default + Send + 'static;

    /// What can be said of the configuration without connecting: run before `connect`, and
    /// alone by `--check-config`.
    fn check(_config: &Self::Config) -> anyhow::Result<()> {
        Ok(())
    }

    /// All fallible set-up; an error here stops the process with a message.
    fn connect(context: Context, config: Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// Runs until `shutdown` fires, then drains what is in flight and returns.
    fn run(self, shutdown: CancellationToken) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Loads the configuration, sets up logging and runs the service until ctrl-c or SIGTERM.
pub fn main<S: Service>(args: &CommonArgs, flags: Overrides) -> ExitCode {
    let (common, config) = match config::load::<S::Config>(S::NAME, args, flags) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("fleetwatch-{}: configuration error: {err}", S::NAME);
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        return match S::check(&config) {
            Ok(()) => {
                println!("fleetwatch-{}: configuration ok", S::NAME);
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("fleetwatch-{}: configuration error: {err:#}", S::NAME);
                ExitCode::from(2)
            }
        };
    }
    telemetry::init(&common.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("fleetwatch-{}: cannot start the async runtime: {err}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let shutdown = shutdown_on_signal();
        match start::<S>(common, config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                error!(service = S::NAME, error = format!("{err:#}"), "service failed");
                ExitCode::FAILURE
            }
        }
    });
    // Blocking work still running (a DuckDB call, a publish) does not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

/// How long a service may drain after ctrl-c or SIGTERM before it exits regardless: a
/// supervisor's stop (systemd waits 90 s, Kubernetes 30 s) must never need a SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Connects to NATS and runs the service until `shutdown`.
pub async fn start<S: Service>(
    common: CommonConfig,
    config: S::Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let subjects = Subjects::new(&common.nats.prefix).context("invalid nats.prefix")?;
    S::check(&config)?;
    let readiness = Readiness::default();
    let probes = match common.probe.listen.as_str() {
        "" => None,
        listen => Some(probe::serve(listen, readiness.clone(), shutdown.clone()).await?),
    };
    let client = tokio::select! {
        client = crate::nats::connect(&common.nats, S::NAME) => client?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    let context = Context {
        jetstream: jetstream::new(client.clone()),
        client: client.clone(),
        subjects: subjects.clone(),
        nats: common.nats.clone(),
        fleet: common.fleet.clone(),
        counters: Registry::default(),
    };
    let health = telemetry::spawn_health_reports(
        client.clone(),
        subjects.health(S::NAME),
        S::NAME,
        context.counters.clone(),
        shutdown.clone(),
    );
    let service = S::connect(context, config).await?;
    readiness.ready(client.clone());
    info!(service = S::NAME, version = env!("CARGO_PKG_VERSION"), prefix = subjects.prefix(), "started");
    let result = service.run(shutdown.clone()).await;
    shutdown.cancel();
    let _ = health.await;
    if let Some(probes) = probes {
        let _ = probes.await;
    }
    // Whatever was published reaches the server before the process goes.
    let _ = client.flush().await;
    info!(service = S::NAME, "stopped");
    result
}

/// A token cancelled on ctrl-c or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    trigger.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        info!("shutting down");
        trigger.cancel();
        // A watchdog outside the runtime: a drain stuck on an unreachable server (or a task
        // that blocks its thread) cannot keep the process alive past the grace period. What
        // needs the server (a final snapshot, the last acks) is then not saved; what was not
        // acknowledged is read again by the next start.
        std::thread::spawn(|| {
            std::thread::sleep(SHUTDOWN_GRACE);
            error!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "still draining after the grace period (is nats-server reachable?); exiting"
            );
            std::process::exit(1);
        });
    });
    token
}

/// Waits for every task; the first failure cancels `shutdown` (so the others drain) and is
/// what the service returns.
pub async fn join_all(
    mut tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut outcome = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(anyhow::Error::from).and_then(|result| result);
        if result.is_err() && outcome.is_ok() {
            shutdown.cancel();
            outcome = result;
        }
    }
    outcome
}

/// Runs `attempt` until it succeeds, backing off from 100 ms to 5 s and logging each
/// failure as `what`. Returns false if `shutdown` comes first.
pub async fn retry_until_done<F, Fut>(what: &str, shutdown: &CancellationToken, attempt: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    retry_until_ok(what, shutdown, attempt).await.is_some()
}

/// [`retry_until_done`] for an attempt that gives something: what the first success gave,
/// or `None` if `shutdown` comes first.
pub async fn retry_until_ok<T, F, Fut>(what: &str, shutdown: &CancellationToken, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(err) => tracing::warn!(error = format!("{err:#}"), "{what} failed, retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
}
