//! The collector: the only writer of `<prefix>.events.>`.
//!
//! Sources (each can be switched on or off, several at once): the demo fleet, NATS ingest
//! on `<prefix>.ingest.>`, HTTP push on `POST /ingest`, a coordinator's REST API, and the
//! host agent that reports this machine as a worker. Two inputs are not sources of fleet
//! data and are always on: alert control from the gateway on `<prefix>.control.alerts`
//! ([`control`]), and every service's health report, forwarded as a `service_report` event
//! ([`reports`], `[collector.reports]`). It also ticks its own clock ([`clock`],
//! `[collector.clock]`), which moves event time on for the alerter. Every event passes [`shared::ingest::validate`] and
//! reaches FLEET_EVENTS through one [`Publisher`].

mod clock;
mod control;
mod coordinator;
pub mod demo;
mod host;
mod http;
mod ingest;
mod publisher;
mod reports;
mod worker_messages;

use publisher::{Outgoing, Publisher};
use serde::{Deserialize, Serialize};
use shared::nats::Stream;
use shared::service::{Context, Service};
use tokio_util::sync::CancellationToken;

/// `[collector]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    pub demo: demo::DemoConfig,
    pub ingest: ingest::IngestConfig,
    pub http: http::HttpConfig,
    pub coordinator: coordinator::CoordinatorConfig,
    pub host_agent: host::HostAgentConfig,
    pub clock: clock::ClockConfig,
    pub reports: reports::ReportsConfig,
}

pub struct Collector {
    context: Context,
    config: CollectorConfig,
    publisher: Publisher,
    ingest: Option<async_nats::Subscriber>,
    http: Option<tokio::net::TcpListener>,
    control: async_nats::Subscriber,
    reports: Option<async_nats::Subscriber>,
}

impl Service for Collector {
    const NAME: &'static str = "collector";
    type Config = CollectorConfig;

    fn check(config: &CollectorConfig) -> anyhow::Result<()> {
        match config.http.enabled {
            true => http::check(&config.http),
            false => Ok(()),
        }
    }

    async fn connect(context: Context, config: CollectorConfig) -> anyhow::Result<Self> {
        Stream::Events.apply(&context.jetstream, &context.subjects, &context.nats).await?;
        Stream::DeadLetter.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
        let publisher = Publisher::new(&context);
        let ingest = match config.ingest.enabled {
            true => Some(ingest::subscribe(&context).await?),
            false => None,
        };
        let http = match config.http.enabled {
            true => Some(http::bind(&config.http).await?),
            false => None,
        };
        let control = control::subscribe(&context).await?;
        let reports = match config.reports.enabled {
            true => Some(reports::subscribe(&context).await?),
            false => None,
        };
        Ok(Self { context, config, publisher, ingest, http, control, reports })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        if self.config.demo.enabled && self.config.demo.workers > 0 {
            tasks.spawn(demo_loop(self.config.demo.clone(), self.publisher.clone(), shutdown.clone()));
        }
        if let Some(subscriber) = self.ingest {
            tasks.spawn(ingest::run(self.context.clone(), subscriber, self.publisher.clone(), shutdown.clone()));
        }
        tasks.spawn(control::run(self.context.clone(), self.control, self.publisher.clone(), shutdown.clone()));
        if let Some(subscriber) = self.reports {
            tasks.spawn(reports::run(self.context.clone(), subscriber, self.publisher.clone(), shutdown.clone()));
        }
        if let Some(url) = self.config.coordinator.url.clone() {
            let config = self.config.coordinator.clone();
            tasks.spawn(coordinator::run(config, url, self.context.clone(), self.publisher.clone(), shutdown.clone()));
        }
        if self.config.clock.interval_ms > 0 {
            tasks.spawn(clock::run(self.config.clock.clone(), self.publisher.clone(), shutdown.clone()));
        }
        if self.config.host_agent.enabled {
            tasks.spawn(host::run(self.config.host_agent.clone(), self.publisher.clone(), shutdown.clone()));
        }
        if let Some(listener) = self.http {
            tasks.spawn(http::serve(
                listener,
                self.config.http.clone(),
                self.context.clone(),
                self.publisher.clone(),
                shutdown.clone(),
            ));
        }
        shared::service::join_all(tasks, &shutdown).await
    }
}

/// The demo fleet runs on its own thread, named [`DEMO_THREAD`], so that what simulating the
/// fleet costs can be measured apart from what the collector does with its events. It hands
/// each tick's envelopes to the publisher; a tick the publisher has no room for is dropped.
async fn demo_loop(config: demo::DemoConfig, publisher: Publisher, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (ticks, mut published) = tokio::sync::mpsc::channel::<Vec<Outgoing>>(2);
    let stop = shutdown.clone();
    let generator = std::thread::Builder::new().name(DEMO_THREAD.into()).spawn(move || {
        let source = format!("demo-{}", config.seed);
        let tick = std::time::Duration::from_millis(config.tick_ms.max(10));
        let mut fleet = demo::Fleet::new(config.clone(), shared::now_ms());
        tracing::info!(workers = config.workers, seed = config.seed, "demo fleet running");
        let mut next = std::time::Instant::now();
        while !stop.is_cancelled() {
            let envelopes: Vec<_> = fleet
                .step(shared::now_ms())
                .into_iter()
                .map(|(time, event)| Outgoing::fresh(shared::Envelope::new(time, source.as_str(), event)))
                .collect();
            match ticks.try_send(envelopes) {
                Ok(()) => {}
                // The simulated fleet moves on; a tick that could not be stored is not real data.
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("demo tick dropped: the publisher is behind")
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
            }
            next += tick;
            let now = std::time::Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now; // behind: skip the missed ticks rather than bunch them
            }
        }
    })?;
    loop {
        let envelopes = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            envelopes = published.recv() => match envelopes {
                Some(envelopes) => envelopes,
                None => break,
            },
        };
        if let Err(err) = publisher.publish(envelopes).await {
            tracing::warn!(error = format!("{err:#}"), "demo tick not published");
        }
    }
    drop(published);
    let _ = tokio::task::spawn_blocking(move || generator.join()).await;
    Ok(())
}

/// The name of the demo fleet's thread (`/proc/<pid>/task/*/comm`), for benchmarks.
pub const DEMO_THREAD: &str = "demo-fleet";
