//! What the gateway knows now, fed from NATS: the state bucket (system metrics, firing
//! alerts), alert changes and service health reports. Every change is also sent to
//! WebSocket clients through one broadcast channel.

use futures::StreamExt;
use serde::Serialize;
use shared::alert::{Alert, FiringAlerts};
use shared::health::HealthReport;
use shared::metrics::SystemMetrics;
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
    pub firing: FiringAlerts,
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
    /// The state bucket, read on request for per-worker and per-task-type metrics.
    pub bucket: Option<async_nats::jetstream::kv::Store>,
}

impl Live {
    pub fn new(closing: CancellationToken, bucket: Option<async_nats::jetstream::kv::Store>) -> Self {
        Self { snapshot: Arc::default(), updates: broadcast::channel(256).0, closing, bucket }
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
        let mut entries = bucket.watch_many_with_history([state_keys::SYSTEM, state_keys::ALERTS_FIRING]).await?;
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
                state_keys::SYSTEM => match codec::decode_envelope::<SystemMetrics>(&entry.value) {
                    Ok(envelope) => {
                        self.send(Update::System(&envelope.payload));
                        self.write().system = Some(envelope.payload);
                    }
                    Err(err) => warn!(error = %err, "undecodable system metrics"),
                },
                state_keys::ALERTS_FIRING => match codec::decode::<FiringAlerts>(&entry.value) {
                    Ok(firing) => {
                        self.send(Update::AlertsFiring(&firing));
                        self.write().firing = firing;
                    }
                    Err(err) => warn!(error = %err, "undecodable firing alerts"),
                },
                _ => {}
            }
        }
    }

    /// Follows alert changes and health reports (core NATS) until shutdown.
    pub async fn follow_bus(self, context: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut alerts = context.client.subscribe(context.subjects.alerts_all()).await?;
        let mut health = context.client.subscribe(context.subjects.health_all()).await?;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
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
