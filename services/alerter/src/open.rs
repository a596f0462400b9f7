//! The open alerts and the silences in the state bucket, where the gateways read them.
//!
//! Not partitioned, the alerter writes `alerts.firing` and `alerts.silences`. A partition
//! writes its own open alerts under `alerts.firing.part.<i>`; the fleet tier watches those
//! and writes `alerts.firing` as the union of theirs and its own, and the silences (every
//! role holds the same silences: they all read the alert control events).

use crate::rules::RuleState;
use crate::scope::Scope;
use anyhow::Context as _;
use async_nats::jetstream::kv::{Entry, Operation, Store, Watch, WatcherError};
use futures::StreamExt;
use shared::alert::{Alert, AlertState, FiringAlerts, Silences};
use shared::nats::state_keys::{ALERTS_FIRING, ALERTS_FIRING_PART, ALERTS_SILENCES};
use shared::{codec, now_ms};
use std::collections::BTreeMap;
use tracing::warn;

/// The open alerts must fit one message (nats-server's default max payload is 1 MiB).
const MAX_STATE_BYTES: usize = 900 * 1024;

pub struct OpenAlerts {
    bucket: Store,
    scope: Scope,
    /// The fleet tier: the partitions' keys, and the latest open alerts under each.
    watch: Option<Watch>,
    partitions: BTreeMap<String, Vec<Alert>>,
    /// The fleet tier: a partition's open alerts changed since the last write.
    pub others_changed: bool,
}

impl OpenAlerts {
    pub async fn new(bucket: Store, scope: Scope) -> anyhow::Result<Self> {
        let watch = match scope {
            Scope::Tier { .. } => Some(
                bucket
                    .watch_with_history(format!("{ALERTS_FIRING_PART}.*"))
                    .await
                    .context("watching the partitions' open alerts")?,
            ),
            _ => None,
        };
        Ok(Self { bucket, scope, watch, partitions: BTreeMap::new(), others_changed: false })
    }

    /// The next change to a partition's open alerts; pending forever outside the tier.
    pub async fn next_partition(&mut self) -> Option<Result<Entry, WatcherError>> {
        match &mut self.watch {
            Some(watch) => watch.next().await,
            None => std::future::pending().await,
        }
    }

    pub fn partition_changed(&mut self, entry: Result<Entry, WatcherError>) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => return warn!(error = %err, "watching the partitions' open alerts"),
        };
        let Scope::Tier { partitions } = self.scope else { return };
        let index = entry.key.rsplit('.').next().and_then(|index| index.parse::<u32>().ok());
        if index.is_none_or(|index| index >= partitions) {
            // Left by a larger count (README, "Partitioned processing": remove them).
            return warn!(key = %entry.key, partitions, "open alerts of no partition of ours ignored");
        }
        self.others_changed = true;
        if entry.operation != Operation::Put {
            self.partitions.remove(&entry.key);
            return;
        }
        match codec::decode::<FiringAlerts>(&entry.value) {
            Ok(firing) => {
                self.partitions.insert(entry.key, firing.alerts);
            }
            Err(err) => warn!(key = %entry.key, error = %err, "a partition's open alerts do not decode"),
        }
    }

    pub async fn write(&mut self, state: &mut RuleState) -> anyhow::Result<()> {
        let time = now_ms();
        let mut alerts = state.book.open_alerts();
        alerts.extend(self.partitions.values().flatten().cloned());
        let key = match self.scope {
            Scope::Part(partition) => format!("{ALERTS_FIRING_PART}.{}", partition.index),
            _ => ALERTS_FIRING.to_owned(),
        };
        let encoded = encode_fitting(FiringAlerts { time, alerts })?;
        self.bucket.put(key.as_str(), encoded).await.with_context(|| format!("updating {key}"))?;
        self.others_changed = false;
        if let Scope::Part(_) = self.scope {
            return Ok(());
        }
        let silences = Silences { time, silences: state.book.silences(state.clock.watermark) };
        self.bucket.put(ALERTS_SILENCES, codec::encode(&silences)?).await.context("updating the silences")?;
        Ok(())
    }
}

/// The open alerts, or when too many to list (a whole rack overloaded) the firing ones,
/// most severe first, as many as fit; each is still on FLEET_ALERTS and in the archive.
fn encode_fitting(mut firing: FiringAlerts) -> anyhow::Result<bytes::Bytes> {
    let encoded = codec::encode(&firing)?;
    if encoded.len() <= MAX_STATE_BYTES {
        return Ok(encoded);
    }
    firing.alerts.retain(|alert| alert.state == AlertState::Firing);
    firing.alerts.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.value.total_cmp(&a.value)));
    let keep = firing.alerts.len() * MAX_STATE_BYTES / encoded.len().max(1);
    firing.alerts.truncate(keep.saturating_sub(keep / 10));
    warn!(listed = firing.alerts.len(), "too many open alerts for one state message; listing the worst");
    Ok(codec::encode(&firing)?)
}
