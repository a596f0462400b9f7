//! What the gateway knows now, fed from NATS: the state bucket (the latest system and task
//! metrics, the open alerts and the silences, for a start with data), the metrics each tick, every worker's
//! metrics (the last sample, then the changes), alert changes and service health reports.
//! Every change is also sent to WebSocket clients through one broadcast channel.

use futures::StreamExt;
use serde::Serialize;
use shared::alert::{Alert, FiringAlerts, Silences};
use shared::health::HealthReport;
use shared::metrics::{SystemMetrics, TaskMetrics, WorkerMetricsBatch, WorkerPicture};
use shared::nats::state_keys;
use shared::service::Context;
use shared::{Envelope, codec};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Alert changes kept for `/api/alerts`.
const RECENT_ALERTS: usize = 200;

#[derive(Debug, Default)]
pub struct Snapshot {
    pub system: Option<SystemMetrics>,
    pub tasks: Option<TaskMetrics>,
    pub workers: WorkerPicture,
    /// The open alerts, pending and firing (`alerts.firing`).
    pub firing: FiringAlerts,
    /// The silences not yet over (`alerts.silences`).
    pub silences: Silences,
    pub recent_alerts: VecDeque<Alert>,
    pub services: BTreeMap<String, HealthReport>,
}

/// One message to WebSocket clients: `{"type": "system" | "alert" | "alerts_firing", "data": ...}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Update<'a> {
    System(&'a SystemMetrics),
    Alert(&'a Alert),
    AlertsFiring(&'a FiringAlerts),
}

#[derive(Clone)]
pub struct Live {
    pub snapshot: Arc<RwLock<Snapshot>>,
    pub updates: broadcast::Sender<Arc<str>>,
    /// Cancelled at shutdown, so WebSocket sessions end and the server can stop.
    pub closing: CancellationToken,
    /// Where queries go (the archiver's history); `None` in tests without a server.
    pub nats: Option<Nats>,
}

/// A connection to ask other services on.
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub subjects: shared::Subjects,
}

impl Live {
    pub fn new(closing: CancellationToken, nats: Option<Nats>) -> Self {
        Self { snapshot: Arc::default(), updates: broadcast::channel(256).0, closing, nats }
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, update: Update<'_>) {
        if let Ok(json) = serde_json::to_string(&update) {
            // No receivers is fine: nobody is watching.
            let _ = self.updates.send(json.into());
        }
    }

    /// Follows the state bucket (current values first, then changes) until shutdown. A watch
    /// that ends (the server restarted) is opened again.
    pub async fn follow_state(self, context: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            if let Err(err) = self.watch_state(&context, &shutdown).await {
                warn!(error = format!("{err:#}"), "state bucket watch ended");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }

    async fn watch_state(&self, context: &Context, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let bucket = shared::nats::state_bucket(&context.jetstream, &context.subjects).await?;
        let keys = [state_keys::SYSTEM, state_keys::TASKS, state_keys::ALERTS_FIRING, state_keys::ALERTS_SILENCES];
        let mut entries = bucket.watch_many_with_history(keys).await?;
        loop {
            let entry = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                entry = entries.next() => match entry {
                    Some(entry) => entry?,
                    None => return Ok(()),
                },
            };
            match entry.key.as_str() {
                state_keys::SYSTEM => self.system(&entry.value),
                state_keys::TASKS => self.tasks(&entry.value),
                state_keys::ALERTS_FIRING => match codec::decode::<FiringAlerts>(&entry.value) {
                    Ok(firing) => {
                        self.send(Update::AlertsFiring(&firing));
                        self.write().firing = firing;
                    }
                    Err(err) => warn!(error = %err, "undecodable firing alerts"),
                },
                state_keys::ALERTS_SILENCES => match codec::decode::<Silences>(&entry.value) {
                    Ok(silences) => self.write().silences = silences,
                    Err(err) => warn!(error = %err, "undecodable silences"),
                },
                _ => {}
            }
        }
    }

    /// System metrics, from the bucket or the bus; an older tick than the one held is ignored.
    fn system(&self, bytes: &[u8]) {
        match codec::decode_envelope::<SystemMetrics>(bytes) {
            Ok(Envelope { payload: system, .. }) => {
                if self.read().system.as_ref().is_some_and(|held| held.time >= system.time) {
                    return;
                }
                self.send(Update::System(&system));
                self.write().system = Some(system);
            }
            Err(err) => warn!(error = %err, "undecodable system metrics"),
        }
    }

    fn tasks(&self, bytes: &[u8]) {
        match codec::decode_envelope::<TaskMetrics>(bytes) {
            Ok(Envelope { payload: tasks, .. }) => {
                let mut snapshot = self.write();
                if snapshot.tasks.as_ref().is_none_or(|held| held.time < tasks.time) {
                    snapshot.tasks = Some(tasks);
                }
            }
            Err(err) => warn!(error = %err, "undecodable task metrics"),
        }
    }

    fn workers(&self, bytes: &[u8]) {
        match codec::decode_envelope::<WorkerMetricsBatch>(bytes) {
            Ok(envelope) => self.write().workers.apply(envelope.payload),
            Err(err) => warn!(error = %err, "undecodable worker metrics"),
        }
    }

    /// Every worker's metrics as of the last sample in FLEET_METRICS (the last message of
    /// each part's subject).
    async fn load_worker_sample(&self, context: &Context) -> anyhow::Result<()> {
        use async_nats::jetstream::consumer;
        let stream = shared::nats::Stream::Metrics.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: context.subjects.metrics_worker_samples(),
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(());
        }
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            self.workers(&message.payload);
            if message.info().map_err(|err| anyhow::anyhow!("{err}"))?.pending == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Follows the metrics of every tick, alert changes and health reports (core NATS) until
    /// shutdown. The workers' picture starts from the last sample; the changes after it were
    /// subscribed to first, so none is missed in between.
    pub async fn follow_bus(self, context: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
        let subjects = &context.subjects;
        let mut alerts = context.client.subscribe(subjects.alerts_all()).await?;
        let mut health = context.client.subscribe(subjects.health_all()).await?;
        let mut system = context.client.subscribe(subjects.metrics_system()).await?;
        let mut tasks = context.client.subscribe(subjects.metrics_tasks()).await?;
        let mut workers = context.client.subscribe(subjects.metrics_workers_all()).await?;
        if let Err(err) = self.load_worker_sample(&context).await {
            warn!(error = format!("{err:#}"), "no worker sample to start from; the next one fills the picture");
        }
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                Some(message) = system.next() => self.system(&message.payload),
                Some(message) = workers.next() => self.workers(&message.payload),
                Some(message) = tasks.next() => self.tasks(&message.payload),
                Some(message) = alerts.next() => match codec::decode_envelope::<Alert>(&message.payload) {
                    Ok(Envelope { payload: alert, .. }) => {
                        self.send(Update::Alert(&alert));
                        let mut snapshot = self.write();
                        if snapshot.recent_alerts.len() == RECENT_ALERTS {
                            snapshot.recent_alerts.pop_back();
                        }
                        snapshot.recent_alerts.push_front(alert);
                    }
                    Err(err) => warn!(error = %err, "undecodable alert"),
                },
                Some(message) = health.next() => match codec::decode::<HealthReport>(&message.payload) {
                    Ok(report) => {
                        let key = format!("{}/{}", report.service, report.instance);
                        self.write().services.insert(key, report);
                    }
                    Err(err) => warn!(error = %err, "undecodable health report"),
                },
                else => return Ok(()),
            }
        }
    }
}
