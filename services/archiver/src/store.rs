//! The DuckDB file, owned by one thread: DuckDB calls block, and async code must not.
//! Each append writes its record batches and the stream sequence they reach in one
//! transaction, so after a crash the archive and its position agree.

use anyhow::Context as _;
use arrow::record_batch::RecordBatch;
use duckdb::Connection;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// Tables pruned by retention, with their time column.
const RETAINED: [(&str, &str); 5] = [
    ("events", "time"),
    ("alerts", "time"),
    ("system_metrics", "timestamp"),
    ("worker_metrics", "timestamp"),
    ("task_metrics", "timestamp"),
];

enum Command {
    Append {
        stream: String,
        last_seq: u64,
        batches: Vec<(&'static str, RecordBatch)>,
        done: oneshot::Sender<anyhow::Result<()>>,
    },
    Offset {
        stream: String,
        done: oneshot::Sender<anyhow::Result<u64>>,
    },
    Prune {
        before_ms: i64,
        done: oneshot::Sender<anyhow::Result<usize>>,
    },
    Close {
        done: oneshot::Sender<anyhow::Result<()>>,
    },
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    commands: mpsc::Sender<Command>,
}

impl Store {
    /// Opens (or creates) the file and starts its thread. Fails at once if the file is
    /// locked by another process or cannot be created.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut connection =
            Connection::open(path).with_context(|| format!("opening DuckDB file {}", path.display()))?;
        // One writer thread appending batches: DuckDB's worker threads would only contend on
        // a small machine. Memory is bounded so the archiver's footprint stays flat.
        connection.execute_batch("SET threads = 1; SET memory_limit = '128MB'").context("configuring DuckDB")?;
        crate::schema::migrate(&mut connection)?;
        let (commands, receiver) = mpsc::channel(16);
        let path: PathBuf = path.to_owned();
        std::thread::Builder::new()
            .name("duckdb-writer".into())
            .spawn(move || writer(connection, receiver, path))
            .context("starting the DuckDB thread")?;
        Ok(Self { commands })
    }

    /// Appends the batches and records `last_seq` for `stream`, in one transaction.
    pub async fn append(
        &self,
        stream: &str,
        last_seq: u64,
        batches: Vec<(&'static str, RecordBatch)>,
    ) -> anyhow::Result<()> {
        let (done, result) = oneshot::channel();
        self.send(Command::Append { stream: stream.to_owned(), last_seq, batches, done }).await?;
        result.await.context("the DuckDB thread stopped")?
    }

    /// The last sequence of `stream` in the archive (0 if none).
    pub async fn offset(&self, stream: &str) -> anyhow::Result<u64> {
        let (done, result) = oneshot::channel();
        self.send(Command::Offset { stream: stream.to_owned(), done }).await?;
        result.await.context("the DuckDB thread stopped")?
    }

    /// Deletes rows older than `before_ms`; returns how many.
    pub async fn prune(&self, before_ms: i64) -> anyhow::Result<usize> {
        let (done, result) = oneshot::channel();
        self.send(Command::Prune { before_ms, done }).await?;
        result.await.context("the DuckDB thread stopped")?
    }

    /// Checkpoints the file (folding its write-ahead log in) and stops the thread.
    pub async fn close(&self) -> anyhow::Result<()> {
        let (done, result) = oneshot::channel();
        self.send(Command::Close { done }).await?;
        result.await.context("the DuckDB thread stopped")?
    }

    async fn send(&self, command: Command) -> anyhow::Result<()> {
        self.commands.send(command).await.map_err(|_| anyhow::anyhow!("the DuckDB thread stopped"))
    }
}

fn writer(mut connection: Connection, mut commands: mpsc::Receiver<Command>, path: PathBuf) {
    while let Some(command) = commands.blocking_recv() {
        match command {
            Command::Append { stream, last_seq, batches, done } => {
                let _ = done.send(append(&mut connection, &stream, last_seq, batches));
            }
            Command::Offset { stream, done } => {
                let result = connection
                    .query_row("SELECT seq FROM stream_offsets WHERE stream = ?", [&stream], |row| row.get::<_, u64>(0))
                    .or_else(|err| match err {
                        duckdb::Error::QueryReturnedNoRows => Ok(0),
                        other => Err(other),
                    })
                    .context("reading the archived offset");
                let _ = done.send(result);
            }
            Command::Prune { before_ms, done } => {
                let _ = done.send(prune(&connection, before_ms));
            }
            Command::Close { done } => {
                let result =
                    connection.execute_batch("CHECKPOINT").with_context(|| format!("checkpointing {}", path.display()));
                let _ = done.send(result);
                return;
            }
        }
    }
}

fn append(
    connection: &mut Connection,
    stream: &str,
    last_seq: u64,
    batches: Vec<(&'static str, RecordBatch)>,
) -> anyhow::Result<()> {
    let transaction = connection.transaction()?;
    for (table, batch) in batches {
        let mut appender = transaction.appender(table).with_context(|| format!("appending to {table}"))?;
        appender.append_record_batch(batch).with_context(|| format!("appending to {table}"))?;
        appender.flush()?;
    }
    transaction.execute("INSERT OR REPLACE INTO stream_offsets VALUES (?, ?)", duckdb::params![stream, last_seq])?;
    transaction.commit().context("committing the batch")
}

fn prune(connection: &Connection, before_ms: i64) -> anyhow::Result<usize> {
    let mut deleted = 0;
    for (table, column) in RETAINED {
        let sql = format!("DELETE FROM {table} WHERE {column} < make_timestamp(?::BIGINT * 1000)");
        deleted += connection.execute(&sql, [before_ms])?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::system_metrics_batch;

    #[tokio::test]
    async fn a_batch_and_its_offset_commit_together() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("archive.duckdb");
        let store = Store::open(&path).expect("opens");
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
