//! Logging set-up, and the counters each service reports on `<prefix>.health.<service>`.

use crate::config::{LogConfig, LogFormat};
use crate::health::{Gauge, HealthReport};
use crate::{codec, now_ms};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: human or JSON lines on stderr. `RUST_LOG` wins over
/// the configured level.
pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours);
    let result = match log.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests run several services in one process) keeps the first.
    drop(result);
}

/// A monotonic counter, cheap to clone and to bump from any task.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The counters and gauges of one service, by name (`collector_events_published_total`).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    counters: Arc<Mutex<BTreeMap<String, Counter>>>,
    gauges: Arc<Mutex<BTreeMap<GaugeKey, f64>>>,
}

/// A gauge's name and labels.
type GaugeKey = (String, BTreeMap<String, String>);

impl Registry {
    /// The counter of that name, created at zero on first use.
    pub fn counter(&self, name: &str) -> Counter {
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counters.entry(name.to_owned()).or_default().clone()
    }

    pub fn values(&self) -> BTreeMap<String, u64> {
        let counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counters.iter().map(|(name, counter)| (name.clone(), counter.get())).collect()
    }

    /// Sets the gauge `name` with these labels to `value`.
    pub fn set_gauge(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        let mut gauges = self.gauges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        gauges.insert((name.to_owned(), labels), value);
    }

    pub fn gauges(&self) -> Vec<Gauge> {
        let gauges = self.gauges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        gauges
            .iter()
            .map(|((name, labels), value)| Gauge { name: name.clone(), labels: labels.clone(), value: *value })
            .collect()
    }
}

/// How often each service reports its health.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Publishes a [`HealthReport`] every [`HEALTH_INTERVAL`] until shutdown.
pub fn spawn_health_reports(
    client: async_nats::Client,
    subject: String,
    service: &'static str,
    registry: Registry,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let instance = instance();
    let started_at = now_ms();
    let restarts = std::env::var("FLEETWATCH_RESTARTS").ok().and_then(|count| count.parse().ok());
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(HEALTH_INTERVAL);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let report = HealthReport {
                service: service.to_owned(),
                instance: instance.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                started_at,
                time: now_ms(),
                restarts,
                counters: registry.values(),
                gauges: registry.gauges(),
            };
            if let Ok(payload) = codec::encode(&report) {
                // Core NATS: a lost report is replaced by the next one.
                let _ = client.publish(subject.clone(), payload).await;
            }
        }
    })
}

/// This process among all instances of its service: host name and process id.
pub fn instance() -> String {
    format!("{}-{}", hostname(), std::process::id())
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|name| name.trim().to_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
