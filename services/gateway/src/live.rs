//! What the gateway knows now, fed from NATS: the state bucket (the latest system and task
//! metrics, the open alerts and the silences, for a start with data), the metrics each tick,
//! every worker's metrics (the last sample, then the changes), alert changes and service
//! health reports. Every change also goes to the WebSocket sessions through the [`Hub`]:
//! latest values in `watch` channels (a slow reader only ever sees the newest), changes in
//! `broadcast` channels (a reader that falls behind is sent the whole picture again).

use futures::StreamExt;
use serde::Serialize;
use shared::alert::{Alert, FiringAlerts, Silences};
use shared::health::HealthReport;
use shared::metrics::{SystemMetrics, TaskMetrics, WorkerMetrics, WorkerMetricsBatch, WorkerPicture};
use shared::nats::state_keys;
use shared::service::Context;
use shared::{Envelope, codec};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::warn;

#[derive(Debug, Default)]
pub struct Snapshot {
    pub system: Option<SystemMetrics>,
    pub tasks: Option<TaskMetrics>,
    pub workers: WorkerPicture,
    /// The fleet's counts by status, hardware and tag, made once a tick (after its last part
    /// of worker metrics) rather than by each request.
    pub summary: Arc<crate::workers::FleetSummary>,
    /// The open alerts, pending and firing (`alerts.firing`).
    pub firing: FiringAlerts,
    /// The silences not yet over (`alerts.silences`).
    pub silences: Silences,
    pub services: BTreeMap<String, HealthReport>,
}

impl Snapshot {
    /// Applies a part of a tick's worker metrics; after the tick's last part, counts the
    /// fleet again for the summary.
    pub fn apply_workers(&mut self, batch: WorkerMetricsBatch) {
        let last = batch.part + 1 >= batch.parts;
        self.workers.apply(batch);
        if last {
            self.summary = Arc::new(crate::workers::summary(self.workers.workers.values()));
        }
    }
}

/// One message to WebSocket clients: `{"type": ..., "data": ...}` (`ws.rs` lists them).
#[derive(Debug, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Update<'a> {
    System(&'a SystemMetrics),
    Tasks(&'a TaskView<'a>),
    Alert(&'a Alert),
    AlertsFiring(&'a FiringAlerts),
    WorkersChanged(&'a WorkersChanged),
    Workers(&'a WorkersView<'a>),
    Worker(&'a WorkerMetrics),
}

impl Update<'_> {
    pub fn frame(&self) -> Frame {
        Arc::from(serde_json::to_string(self).unwrap_or_default())
    }
}

/// A message as sent: JSON text, shared by every session that sends it.
pub type Frame = Arc<str>;

/// Task metrics as the `tasks` topic sends them: without the tick's finished tasks, which
/// the archive has.
#[derive(Debug, Serialize)]
pub struct TaskView<'a> {
    pub time: i64,
    pub by_family: &'a [shared::metrics::GroupStats],
    pub by_model: &'a [shared::metrics::GroupStats],
    pub by_hardware: &'a [shared::metrics::GroupStats],
    pub compatibility: &'a [shared::metrics::Compatibility],
    pub fault_tolerance: &'a shared::metrics::FaultTolerance,
    pub recent_failures: &'a shared::metrics::Truncated<shared::metrics::FinishedTask>,
}

impl<'a> From<&'a TaskMetrics> for TaskView<'a> {
    fn from(tasks: &'a TaskMetrics) -> Self {
        Self {
            time: tasks.time,
            by_family: &tasks.by_family,
            by_model: &tasks.by_model,
            by_hardware: &tasks.by_hardware,
            compatibility: &tasks.compatibility,
            fault_tolerance: &tasks.fault_tolerance,
            recent_failures: &tasks.recent_failures,
        }
    }
}

/// The `workers` topic's snapshot: every worker now.
#[derive(Debug, Serialize)]
pub struct WorkersView<'a> {
    pub time: i64,
    pub workers: Vec<&'a WorkerMetrics>,
}

/// One part of a tick's worker metrics, as the `workers` topic sends it: the workers whose
/// figures changed (a sample part lists only those that differ from what the gateway held)
/// and those that retired.
#[derive(Debug, Serialize)]
pub struct WorkersChanged {
    pub time: i64,
    pub part: u32,
    pub parts: u32,
    pub workers: Vec<WorkerMetrics>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
}

/// A part of a tick's worker metrics, applied to the picture: the workers it carried
/// (sorted), whether it was the tick's last part (the picture then holds the whole tick),
/// and its `workers_changed` frame, made only while a session follows `workers`.
#[derive(Debug, Clone)]
pub struct WorkerPart {
    pub time: i64,
    pub last: bool,
    pub carried: Arc<[String]>,
    pub frame: Option<Frame>,
}

/// Where the WebSocket sessions take their updates from.
pub struct Hub {
    pub system: watch::Sender<Option<Frame>>,
    pub tasks: watch::Sender<Option<Frame>>,
    pub alerts_firing: watch::Sender<Option<Frame>>,
    pub alert: broadcast::Sender<Frame>,
    pub workers: broadcast::Sender<WorkerPart>,
    /// Sessions that follow the `workers` topic: without any, no frame of changes is made.
    pub workers_followers: std::sync::atomic::AtomicUsize,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            system: watch::channel(None).0,
            tasks: watch::channel(None).0,
            alerts_firing: watch::channel(None).0,
            alert: broadcast::channel(256).0,
            // A tick is up to about 20 parts at 10,000 workers: ten ticks of slack.
            workers: broadcast::channel(256).0,
            workers_followers: Default::default(),
        }
    }
}

#[derive(Clone)]
pub struct Live {
    pub snapshot: Arc<RwLock<Snapshot>>,
    pub hub: Arc<Hub>,
    /// Cancelled at shutdown, so WebSocket sessions end and the server can stop.
    pub closing: CancellationToken,
    /// Where queries go (the archiver's history); `None` in tests without a server.
    pub nats: Option<Nats>,
    /// What the configuration says of the dashboard.
    pub settings: Arc<crate::Settings>,
}

/// A connection to ask other services on.
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub subjects: shared::Subjects,
}

impl Live {
    pub fn new(closing: CancellationToken, nats: Option<Nats>, settings: crate::Settings) -> Self {
        Self { snapshot: Arc::default(), hub: Arc::default(), closing, nats, settings: Arc::new(settings) }
    }

    /// Without NATS or settings, for tests of the handlers.
    pub fn offline() -> Self {
        Self::new(CancellationToken::new(), None, crate::Settings::default())
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let bucket = shared::nats::state_bucket(&context.jetstream, &context.subjects, &context.nats).await?;
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
                        self.hub.alerts_firing.send_replace(Some(Update::AlertsFiring(&firing).frame()));
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
                let frame = Update::System(&system).frame();
                self.write().system = Some(system);
                self.hub.system.send_replace(Some(frame));
            }
            Err(err) => warn!(error = %err, "undecodable system metrics"),
        }
    }

    fn tasks(&self, bytes: &[u8]) {
        match codec::decode_envelope::<TaskMetrics>(bytes) {
            Ok(Envelope { payload: tasks, .. }) => {
                if self.read().tasks.as_ref().is_some_and(|held| held.time >= tasks.time) {
                    return;
                }
                let frame = Update::Tasks(&TaskView::from(&tasks)).frame();
                self.write().tasks = Some(tasks);
                self.hub.tasks.send_replace(Some(frame));
            }
            Err(err) => warn!(error = %err, "undecodable task metrics"),
        }
    }

    fn workers(&self, bytes: &[u8]) {
        let batch = match codec::decode_envelope::<WorkerMetricsBatch>(bytes) {
            Ok(envelope) => envelope.payload,
            Err(err) => {
                warn!(error = %err, "undecodable worker metrics");
                return;
            }
        };
        let (time, part, parts) = (batch.time, batch.part, batch.parts);
        let mut snapshot = self.write();
        if time < snapshot.workers.time {
            return;
        }
        let mut carried: Vec<String> = batch.workers.iter().map(|worker| worker.worker_id.clone()).collect();
        carried.sort();
        let followed = self.hub.workers_followers.load(std::sync::atomic::Ordering::Relaxed) > 0;
        let frame = followed.then(|| {
            // A sample part carries every worker: only those that differ are news.
            let changed: Vec<WorkerMetrics> = batch
                .workers
                .iter()
                .filter(|worker| {
                    !batch.complete
                        || snapshot.workers.workers.get(&worker.worker_id).is_none_or(|held| held.differs_from(worker))
                })
                .cloned()
                .collect();
            let retired = batch.retired.clone();
            Update::WorkersChanged(&WorkersChanged { time, part, parts, workers: changed, retired }).frame()
        });
        snapshot.apply_workers(batch);
        let last = part + 1 >= parts;
        drop(snapshot);
        // No sessions is fine: nobody is watching.
        let _ = self.hub.workers.send(WorkerPart { time, last, carried: carried.into(), frame });
    }

    /// The `workers` topic's snapshot: every worker as the picture holds it now.
    pub fn workers_frame(&self) -> Frame {
        let snapshot = self.read();
        let view = WorkersView { time: snapshot.workers.time, workers: snapshot.workers.workers.values().collect() };
        Update::Workers(&view).frame()
    }

    /// One worker's frame as of the picture's latest tick, or `None` for an unknown worker.
    pub fn worker_frame(&self, worker_id: &str) -> Option<Frame> {
        let snapshot = self.read();
        let worker = snapshot.workers.workers.get(worker_id)?;
        let current = WorkerMetrics { time: snapshot.workers.time.max(worker.time), ..worker.clone() };
        Some(Update::Worker(&current).frame())
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
                        let _ = self.hub.alert.send(Update::Alert(&alert).frame());
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
