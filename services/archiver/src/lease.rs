//! One active archiver at a time: a lease under `lease.archiver` in the state bucket.
//!
//! The holder rewrites the key every `ttl / 4`, each write bumping its revision. A waiting
//! archiver takes the lease over when the revision has stood still for a whole `ttl` on its
//! own monotonic clock, by an update conditioned on that revision: of several waiters one
//! wins, and no wall clocks need agree. A holder whose conditional write fails on the
//! revision has lost the lease and stops at once. On one host the DuckDB file lock is the
//! last fence: a holder that stalled rather than died still holds the file, and its
//! successor cannot open it until the stalled one lets go.

use anyhow::Context as _;
use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub struct Lease {
    bucket: kv::Store,
    key: &'static str,
    holder: String,
    revision: u64,
    ttl: Duration,
}

impl Lease {
    /// Waits until `holder` holds the lease; `None` if `shutdown` comes first.
    pub async fn acquire(
        bucket: kv::Store,
        key: &'static str,
        holder: String,
        ttl: Duration,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Self>> {
        let mut watched: Option<(u64, Instant)> = None;
        let mut told = false;
        loop {
            let entry = bucket.entry(key).await.context("reading the archiver lease")?;
            let attempt = match &entry {
                None => bucket.create(key, holder.clone().into()).await.map_err(anyhow::Error::from),
                Some(entry) if entry.operation != Operation::Put => {
                    bucket.update(key, holder.clone().into(), entry.revision).await.map_err(anyhow::Error::from)
                }
                Some(entry) => {
                    let since = match watched {
                        Some((revision, since)) if revision == entry.revision => since,
                        _ => {
                            watched = Some((entry.revision, Instant::now()));
                            Instant::now()
                        }
                    };
                    if since.elapsed() < ttl {
                        if !told {
                            let current = String::from_utf8_lossy(&entry.value);
                            info!(holder = %current, "another archiver is active; waiting for its lease");
                            told = true;
                        }
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(None),
                            _ = tokio::time::sleep(ttl / 4) => {}
                        }
                        continue;
                    }
                    warn!(holder = %String::from_utf8_lossy(&entry.value), "the active archiver went silent; taking over");
                    bucket.update(key, holder.clone().into(), entry.revision).await.map_err(anyhow::Error::from)
                }
            };
            match attempt {
                Ok(revision) => {
                    info!(%holder, "archiver lease acquired");
                    return Ok(Some(Self { bucket, key, holder, revision, ttl }));
                }
                // Another waiter won the race: watch its lease from now on.
                Err(err) => {
                    info!(error = format!("{err:#}"), "archiver lease taken by another");
                    watched = None;
                }
            }
        }
    }

    /// Renews the lease until `lost` is cancelled by a failed renewal, or `stop` comes.
    pub async fn keep(&mut self, lost: &CancellationToken, stop: &CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.ttl / 4) => {}
            }
            match self.bucket.update(self.key, self.holder.clone().into(), self.revision).await {
                Ok(revision) => self.revision = revision,
                Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                    warn!("archiver lease lost to another archiver; stopping");
                    lost.cancel();
                    return;
                }
                // NATS unreachable: nothing can be archived meanwhile either; the next renewal
                // tells whether the lease is still ours.
                Err(err) => warn!(error = %err, "archiver lease not renewed, retrying"),
            }
        }
    }

    /// Gives the lease up at once, so a waiting archiver need not wait out the ttl.
    pub async fn release(self) {
        // Only if it is still ours: a lease taken over meanwhile is left alone.
        if let Err(err) = self.bucket.delete_expect_revision(self.key, Some(self.revision)).await {
            warn!(error = %err, "archiver lease not released; it expires by itself");
        }
    }
}
