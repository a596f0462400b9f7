//! The archiver: the only process that opens the DuckDB file. It appends events, alerts
//! and metrics as Arrow record batches, exactly once: each batch commits together with the
//! stream sequence it reaches, messages at or below that sequence are skipped on
//! redelivery, and JetStream is acked only after the commit.
//!
//! One archiver is active at a time (`lease`); others wait and take over when it dies. The
//! active one reports how far it is behind each stream (`archiver_lag_messages`,
//! `archiver_lag_seconds`) in its health report, rolls up and prunes (`rollup`), and answers
//! history queries on `<prefix>.query.archive.>` (`query`).

mod archive;
mod decode;
mod finished;
mod history;
mod keeper;
mod lease;
mod query;
mod relation;
mod rollup;
mod rows;
mod schema;
mod store;

use archive::Source;
use decode::Shaper;
use serde::{Deserialize, Serialize};
use shared::fleet::Limits;
use shared::nats::{Stream, state_keys};
use shared::service::{Context, Service};
use std::path::PathBuf;
use std::time::Duration;
pub use store::Store;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// `[archiver]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiverConfig {
    /// The DuckDB file. Default `var/fleetwatch.duckdb`.
    pub db_path: PathBuf,
    /// DuckDB's memory_limit, MB: its buffer pool keeps the blocks it wrote until this is
    /// full, so the archiver's memory grows to about this plus its own. Default 384 (at
    /// 10,000 workers 128 was too little for a checkpoint once, and DuckDB gave up the file).
    pub duckdb_memory_mb: u32,
    /// Most messages written in one transaction. Default 5000.
    pub batch_max: usize,
    /// Events, finished tasks and fleet snapshots are kept this long, days. Default 7.
    pub retention_days: u32,
    /// Raw metric samples (system metrics every tick, worker samples) are kept this long,
    /// hours. Default 24.
    pub raw_retention_hours: u32,
    /// One-minute roll-ups are kept this long, days (the guide's key). Default 30.
    pub metrics_retention_days: u32,
    /// One-hour roll-ups are kept this long, days. Default 365.
    pub hourly_retention_days: u32,
    /// Alert history is kept this long, days (the guide's key). Default 7.
    pub alert_retention_days: u32,
    /// A sample or task this late still lands in its roll-up; later ones are counted, s.
    /// Default 120.
    pub late_secs: u32,
    /// How often the fleet's state is snapshotted into the archive (time travel replays at
    /// most this much of events), s. Default 120.
    pub snapshot_every_secs: u64,
    /// How often roll-ups and retention run, s. Default 60.
    pub maintain_every_secs: u64,
    /// How long a history query may run before it is stopped, ms. Default 10000.
    pub query_deadline_ms: u64,
    /// How long the active archiver may stay silent before another takes over, s. Default 10.
    pub lease_ttl_secs: u64,
    /// Keep every task's own events (its life, event by event) for `retention_days`
    /// (the guide's key). When false, task events go once the fleet snapshot after them is
    /// archived: each finished task keeps its row in `tasks`, the roll-ups are whole, and the
    /// file holds a fraction of the events. Default true.
    pub enable_task_detail_tracking: bool,
}

/// A floor against a slip of the finger: 128 MB once failed a checkpoint at 10,000 workers.
const MIN_DUCKDB_MEMORY_MB: u32 = 64;

impl Default for ArchiverConfig {
    fn default() -> Self {
        Self {
            db_path: PathBuf::from("var/fleetwatch.duckdb"),
            duckdb_memory_mb: 384,
            batch_max: 5000,
            retention_days: 7,
            raw_retention_hours: 24,
            metrics_retention_days: 30,
            hourly_retention_days: 365,
            alert_retention_days: 7,
            late_secs: 120,
            snapshot_every_secs: 120,
            maintain_every_secs: 60,
            query_deadline_ms: 10_000,
            lease_ttl_secs: 10,
            enable_task_detail_tracking: true,
        }
    }
}

impl ArchiverConfig {
    fn retention(&self) -> rollup::Retention {
        rollup::Retention {
            raw_hours: self.raw_retention_hours,
            minute_days: self.metrics_retention_days,
            hour_days: self.hourly_retention_days,
            events_days: self.retention_days,
            alert_days: self.alert_retention_days,
            late_secs: self.late_secs,
            task_detail: self.enable_task_detail_tracking,
        }
    }
}

pub struct Archiver {
    context: Context,
    config: ArchiverConfig,
    bucket: async_nats::jetstream::kv::Store,
    sources: Vec<Source>,
}

impl Service for Archiver {
    const NAME: &'static str = "archiver";
    type Config = ArchiverConfig;

    fn check(config: &ArchiverConfig) -> anyhow::Result<()> {
        anyhow::ensure!(
            config.duckdb_memory_mb >= MIN_DUCKDB_MEMORY_MB,
            "archiver.duckdb_memory_mb must be at least {MIN_DUCKDB_MEMORY_MB} (DuckDB needs room to checkpoint the file), not {}",
            config.duckdb_memory_mb
        );
        Ok(())
    }

    async fn connect(context: Context, config: ArchiverConfig) -> anyhow::Result<Self> {
        let mut sources = Vec::new();
        for which in [Stream::Events, Stream::Alerts, Stream::Metrics] {
            let stream = which.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
            let name = which.config(&context.subjects, &context.nats).name;
            sources.push(Source { which, name, stream });
        }
        let bucket = shared::nats::state_bucket(&context.jetstream, &context.subjects, &context.nats).await?;
        Ok(Self { context, config, bucket, sources })
    }

    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let ttl = Duration::from_secs(self.config.lease_ttl_secs.max(1));
        let holder = format!("{}:{}", shared::telemetry::instance(), self.config.db_path.display());
        self.context.counters.set_gauge("archiver_active", &[], 0.0);
        loop {
            let acquired =
                lease::Lease::acquire(self.bucket.clone(), state_keys::ARCHIVER_LEASE, holder.clone(), ttl, &shutdown)
                    .await;
            let Some(mut lease) = acquired else { return Ok(()) };
            let active = shutdown.child_token();
            let keeper = {
                let lost = active.clone();
                let stop = active.clone();
                async move {
                    lease.keep(&lost, &stop).await;
                    lease
                }
            };
            let (lease, outcome) = tokio::join!(keeper, async {
                let outcome = self.archive_while(&active).await;
                active.cancel();
                outcome
            });
            self.context.counters.set_gauge("archiver_active", &[], 0.0);
            // Released only if still ours: after a reopen it is taken again at once.
            lease.release().await;
            if shutdown.is_cancelled() || outcome.is_err() {
                return outcome;
            }
            info!("no longer the active archiver; waiting to take over again");
        }
    }
}

impl Archiver {
    /// Opens the file and archives every stream until `active` is cancelled (shutdown, or
    /// the lease lost); meanwhile rolls up, prunes and answers queries.
    async fn archive_while(&self, active: &CancellationToken) -> anyhow::Result<()> {
        // A predecessor that stalled rather than died may still hold the file's lock.
        let open = || std::future::ready(Store::open(&self.config.db_path, self.config.duckdb_memory_mb));
        let Some(store) = shared::service::retry_until_ok("opening the archive", active, open).await else {
            return Ok(());
        };
        let limits = Limits::new(&self.context.fleet, keeper::TASKS_LISTED);
        let keeper = self.restore_keeper(&store, &limits).await?;
        info!(path = %self.config.db_path.display(), "archive open; archiving");
        self.context.counters.set_gauge("archiver_active", &[], 1.0);
        let progress = rollup::Progress::default();
        let mut keeper = Some(keeper);
        let mut tasks = tokio::task::JoinSet::new();
        for source in &self.sources {
            let shaper = match source.which {
                Stream::Events => Shaper::Events(Box::new(keeper.take().expect("one events stream"))),
                Stream::Alerts => Shaper::Alerts,
                _ => Shaper::Metrics,
            };
            // Made here, before anything runs, so the lag is reported from the first moment.
            let Some(reading) = archive::reading(source, &store, active).await else { return Ok(()) };
            tasks.spawn(archive::archive(
                reading,
                shaper,
                store.clone(),
                self.context.counters.clone(),
                progress.clone(),
                self.config.batch_max,
                active.clone(),
            ));
        }
        let every = Duration::from_secs(self.config.maintain_every_secs.max(1));
        let counters = self.context.counters.clone();
        tasks.spawn(rollup::maintain(
            store.clone(),
            progress,
            self.config.retention(),
            every,
            counters,
            active.clone(),
        ));
        tasks.spawn(archive::report_lag(self.sources.clone(), self.context.counters.clone(), active.clone()));
        let queries = query::Queries::new(store.clone(), limits, Duration::from_millis(self.config.query_deadline_ms));
        tasks.spawn(queries.serve(self.context.clone(), active.clone()));
        // A database DuckDB invalidated is opened again: everything stops as if the lease
        // were lost, then takes it anew and carries on from the committed offsets.
        let (broken, stop) = (store.broken.clone(), active.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = broken.cancelled() => {
                    tracing::error!("DuckDB invalidated the database after a fatal error; opening it again");
                    stop.cancel();
                }
                _ = stop.cancelled() => {}
            }
            Ok(())
        });
        let outcome = shared::service::join_all(tasks, active).await;
        let closed = store.close().await;
        if store.broken.is_cancelled() {
            // Whatever failed on the way down failed for that reason: open the file again.
            if let Err(err) = outcome.and(closed) {
                warn!(error = format!("{err:#}"), "stopping on an invalidated archive");
            }
            return Ok(());
        }
        closed?;
        outcome
    }

    /// The fleet as the archive holds it at its events offset: where the events stream's
    /// shaper carries on from.
    async fn restore_keeper(&self, store: &Store, limits: &Limits) -> anyhow::Result<keeper::Keeper> {
        let events = Stream::Events.config(&self.context.subjects, &self.context.nats).name;
        let offset = store.offset(&events).await?;
        let rebuild_limits = limits.clone();
        let (fleet, folded) =
            store.write(move |connection| keeper::rebuild(connection, offset, &rebuild_limits)).await?;
        let every_ms = self.config.snapshot_every_secs.max(1) as i64 * 1000;
        Ok(keeper::Keeper::new(limits.clone(), every_ms, fleet, folded))
    }
}
