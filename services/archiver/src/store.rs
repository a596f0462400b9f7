//! The DuckDB file, owned by two threads: a writer (appends, roll-ups, retention) and a
//! reader (queries), each with its own connection. DuckDB calls block, and async code must
//! not, so both take jobs through a bounded channel. Each append writes its record batches
//! and the stream sequence they reach in one transaction, so after a crash the archive and
//! its position agree.

use anyhow::Context as _;
use arrow::record_batch::RecordBatch;
use duckdb::{Connection, InterruptHandle};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Work for a DuckDB thread: a closure over its connection.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One thread and its connection.
#[derive(Clone)]
struct DbThread {
    jobs: mpsc::Sender<Job>,
    interrupt: Arc<InterruptHandle>,
}

impl DbThread {
    fn start(name: &str, mut connection: Connection) -> anyhow::Result<Self> {
        let interrupt = connection.interrupt_handle();
        let (jobs, mut receiver) = mpsc::channel::<Job>(16);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Some(job) = receiver.blocking_recv() {
                    job(&mut connection);
                }
            })
            .context("starting a DuckDB thread")?;
        Ok(Self { jobs, interrupt })
    }

    async fn call<T: Send + 'static>(
        &self,
        broken: &CancellationToken,
        job: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let _ = done.send(job(connection));
        });
        self.jobs.send(job).await.map_err(|_| anyhow::anyhow!("the DuckDB thread stopped"))?;
        let outcome = result.await.context("the DuckDB thread stopped")?;
        if let Err(err) = &outcome
            && is_fatal(err)
        {
            broken.cancel();
        }
        outcome
    }
}

/// A handle to the file's threads; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: DbThread,
    reader: DbThread,
    /// Cancelled when DuckDB invalidates the database (after a fatal error every call fails
    /// until it is opened again): whoever owns the store reopens it.
    pub broken: CancellationToken,
}

/// Whether DuckDB gave up on the database instance (say, a checkpoint that could not get
/// memory): only opening the file again recovers, and the committed data is durable.
fn is_fatal(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let text = cause.to_string();
        text.starts_with("FATAL Error") || text.contains("database has been invalidated")
    })
}

impl Store {
    /// Opens (or creates) the file, brings its schema up to date and starts its threads.
    /// Fails at once if the file is locked by another process or cannot be created.
    /// `memory_mb` is DuckDB's memory_limit.
    pub fn open(path: &Path, memory_mb: u32) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut connection =
            Connection::open(path).with_context(|| format!("opening DuckDB file {}", path.display()))?;
        // One thread: appends come in batches from one writer, and DuckDB's worker threads
        // only contended on a small machine. Memory is bounded, and the allocator's background
        // threads hand pages freed by evictions back to the OS, so the RSS can level off once
        // the pool is full (the soak's 10,000-worker phase held 559 to 562 MiB over its last
        // 8 minutes with both).
        connection
            .execute_batch(&format!(
                "SET threads = 1; SET memory_limit = '{memory_mb}MB'; SET allocator_background_threads = true"
            ))
            .context("configuring DuckDB")?;
        crate::schema::migrate(&mut connection)?;
        let reader = connection.try_clone().context("opening a second connection for queries")?;
        Ok(Self {
            writer: DbThread::start("duckdb-writer", connection)?,
            reader: DbThread::start("duckdb-reader", reader)?,
            broken: CancellationToken::new(),
        })
    }

    /// Runs `job` on the writer's connection.
    pub async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.writer.call(&self.broken, job).await
    }

    /// Runs `job` on the reader's connection, interrupted if it runs past `deadline` (counted
    /// from the call: a job still queued then never runs, and only a running one is
    /// interrupted, so one query's deadline never stops another).
    pub async fn read<T: Send + 'static>(
        &self,
        deadline: Duration,
        job: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
        const QUEUED: u8 = 0;
        const RUNNING: u8 = 1;
        const OVER: u8 = 2;
        let state = Arc::new(AtomicU8::new(QUEUED));
        let job_state = state.clone();
        let call = self.reader.call(&self.broken, move |connection| {
            if job_state.compare_exchange(QUEUED, RUNNING, SeqCst, SeqCst).is_err() {
                return Err(anyhow::Error::new(DeadlineExceeded(deadline)));
            }
            let result = job(connection);
            job_state.store(OVER, SeqCst);
            result
        });
        tokio::pin!(call);
        tokio::select! {
            result = &mut call => result,
            _ = tokio::time::sleep(deadline) => match state.compare_exchange(QUEUED, OVER, SeqCst, SeqCst) {
                // Never started: it returns at once when its turn comes.
                Ok(_) => Err(anyhow::Error::new(DeadlineExceeded(deadline))),
                Err(RUNNING) => {
                    self.reader.interrupt.interrupt();
                    // The job returns its interrupted error; wait for it so the next job starts clean.
                    let _ = call.await;
                    Err(anyhow::Error::new(DeadlineExceeded(deadline)))
                }
                // Finished just now.
                Err(_) => call.await,
            },
        }
    }

    /// Appends the batches and records `last_seq` for `stream`, in one transaction.
    pub async fn append(
        &self,
        stream: &str,
        last_seq: u64,
        batches: Vec<(&'static str, RecordBatch)>,
    ) -> anyhow::Result<()> {
        let stream = stream.to_owned();
        self.write(move |connection| append(connection, &stream, last_seq, batches)).await
    }

    /// The last sequence of `stream` in the archive (0 if none).
    pub async fn offset(&self, stream: &str) -> anyhow::Result<u64> {
        let stream = stream.to_owned();
        self.write(move |connection| {
            connection
                .query_row("SELECT seq FROM stream_offsets WHERE stream = ?", [&stream], |row| row.get::<_, u64>(0))
                .or_else(|err| match err {
                    duckdb::Error::QueryReturnedNoRows => Ok(0),
                    other => Err(other),
                })
                .context("reading the archived offset")
        })
        .await
    }

    /// Checkpoints the file (folding its write-ahead log in). The threads end when the last
    /// handle is dropped.
    pub async fn close(&self) -> anyhow::Result<()> {
        self.write(|connection| connection.execute_batch("CHECKPOINT").context("checkpointing the archive")).await
    }
}

/// A query ran past its deadline and was stopped.
#[derive(Debug, thiserror::Error)]
#[error("the query ran past its deadline of {0:?} and was stopped")]
pub struct DeadlineExceeded(pub Duration);

fn append(
    connection: &mut Connection,
    stream: &str,
    last_seq: u64,
    batches: Vec<(&'static str, RecordBatch)>,
) -> anyhow::Result<()> {
    let transaction = connection.transaction()?;
    for (table, batch) in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let mut appender = transaction.appender(table).with_context(|| format!("appending to {table}"))?;
        appender.append_record_batch(batch).with_context(|| format!("appending to {table}"))?;
        appender.flush()?;
    }
    transaction.execute("INSERT OR REPLACE INTO stream_offsets VALUES (?, ?)", duckdb::params![stream, last_seq])?;
    transaction.commit().context("committing the batch")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::system_metrics_batch;

    fn default_memory_mb() -> u32 {
        crate::ArchiverConfig::default().duckdb_memory_mb
    }

    #[tokio::test]
    async fn a_queued_query_past_its_deadline_does_not_stop_the_one_running() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("archive.duckdb"), default_memory_mb()).expect("opens");
        let slow = store.read(Duration::from_secs(60), |connection| {
            Ok(connection
                .query_row("SELECT sum(range)::VARCHAR FROM range(400000000)", [], |row| row.get::<_, String>(0))?)
        });
        let queued = async {
            // Asked just after the slow one started, with a deadline that passes while it runs.
            tokio::time::sleep(Duration::from_millis(20)).await;
            store.read(Duration::from_millis(50), |_| Ok(())).await
        };
        let (slow, queued) = tokio::join!(slow, queued);
        assert!(queued.is_err_and(|err| err.is::<DeadlineExceeded>()), "the queued one is refused");
        assert!(slow.is_ok(), "the running one finishes: {slow:?}");
    }

    #[tokio::test]
    async fn a_batch_and_its_offset_commit_together() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("archive.duckdb");
        let store = Store::open(&path, default_memory_mb()).expect("opens");
        assert_eq!(store.offset("EVENTS").await.expect("offset"), 0);
        let batch =
            system_metrics_batch(&[(1_000, "workers_total", 3.0), (1_000, "tasks_queued", 5.0)]).expect("batch");
        store.append("METRICS", 42, vec![("system_metrics", batch)]).await.expect("appends");
        assert_eq!(store.offset("METRICS").await.expect("offset"), 42);
        // A batch that fails half-way leaves neither rows nor offset behind.
        let good = system_metrics_batch(&[(2_000, "workers_total", 4.0)]).expect("batch");
        let wrong_table = system_metrics_batch(&[(2_000, "x", 1.0)]).expect("batch");
        let failed = store.append("METRICS", 43, vec![("system_metrics", good), ("events", wrong_table)]).await;
        assert!(failed.is_err());
        assert_eq!(store.offset("METRICS").await.expect("offset"), 42);
        store.close().await.expect("closes");
        drop(store);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let connection = loop {
            match Connection::open(&path) {
                Ok(connection) => break connection,
                Err(_) if std::time::Instant::now() < deadline => std::thread::yield_now(),
                Err(err) => panic!("archive did not close: {err}"),
            }
        };
        let rows: i64 =
            connection.query_row("SELECT count(*) FROM system_metrics", [], |row| row.get(0)).expect("count");
        assert_eq!(rows, 2);
    }
}
