//! One active archiver at a time: a lease under `lease.archiver` in the state bucket.
//!
//! The holder rewrites the key every `ttl / 4`, each write bumping its revision. A waiting
//! archiver takes the lease over when the revision has stood still for a whole `ttl` on its
//! own monotonic clock, by an update conditioned on that revision: of several waiters one
//! wins, and no wall clocks need agree. A holder whose conditional write fails on the
//! revision has lost the lease and stops at once. On one host the DuckDB file lock is the
//! last fence: a holder that stalled rather than died still holds the file, and its
//! successor cannot open it until the stalled one lets go.

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
    ) -> Option<Self> {
        let mut watched: Option<(u64, Instant)> = None;
        let mut told = false;
        loop {
            let entry = match bucket.entry(key).await {
                Ok(entry) => entry,
                // A bucket just made in a cluster answers once its replicas elect a leader.
                Err(err) => {
                    warn!(error = %err, "the archiver lease does not answer yet, retrying");
                    if !pause(shutdown, RETRY).await {
                        return None;
                    }
                    continue;
                }
            };
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
                        if !pause(shutdown, ttl / 4).await {
                            return None;
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
                    return Some(Self { bucket, key, holder, revision, ttl });
                }
                // Another waiter won the race (watch its lease from now on), or the bucket
                // does not answer yet: the next read tells which.
                Err(err) => {
                    info!(error = format!("{err:#}"), "archiver lease not taken");
                    watched = None;
                    if !pause(shutdown, RETRY).await {
                        return None;
                    }
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
            // A stop does not wait for a renewal the server may not answer (a bucket electing
            // its leader); the release then fails on the revision and the lease expires.
            let renewed = tokio::select! {
                _ = stop.cancelled() => return,
                renewed = self.bucket.update(self.key, self.holder.clone().into(), self.revision) => renewed,
            };
            match renewed {
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

    /// Gives the lease up at once, so a waiting archiver need not wait out the ttl; within
    /// [`RELEASE_WAIT`], so that a server slow to answer cannot hold up a stop.
    pub async fn release(self) {
        // Only if it is still ours: a lease taken over meanwhile is left alone.
        let released =
            tokio::time::timeout(RELEASE_WAIT, self.bucket.delete_expect_revision(self.key, Some(self.revision)));
        match released.await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => warn!(error = %err, "archiver lease not released; it expires by itself"),
            Err(_) => warn!("archiver lease release not answered in time; it expires by itself"),
        }
    }
}

/// A stop has [`shared::service::SHUTDOWN_GRACE`] in all; the release may take a quarter.
const RELEASE_WAIT: Duration = Duration::from_secs(shared::service::SHUTDOWN_GRACE.as_secs() / 4);

/// Between attempts on a bucket that does not answer.
const RETRY: Duration = Duration::from_secs(1);

/// Waits `wait`; false if `shutdown` comes first.
async fn pause(shutdown: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}
