//! History queries, answered by the active archiver on `<prefix>.query.archive.<name>`
//! (request/reply, JSON both ways). Every query runs on the reader connection under a
//! deadline; lists are paged with a cursor and bounded, so no reply is near the server's
//! max payload; `export` streams any of them as CSV or Parquet in chunks. A bad request is
//! answered `{"error": reason, "status": 400}` (404 for an unknown id, 504 past the
//! deadline). The catalogue of queries is in `schemas/archive.md`.

use crate::history;
use crate::relation::{Cursor, Params, Relation, rollup_progress};
use crate::store::{DeadlineExceeded, Store};
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use shared::fleet::Limits;
use shared::service::Context;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Most points a series answered in one reply.
const MAX_POINTS: i64 = 5000;
/// Export chunks, well under the server's max payload.
const CHUNK_BYTES: usize = 256 * 1024;

/// A query that could not be answered, with the HTTP-like status the gateway passes on.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub reason: String,
}

pub(crate) fn bad(reason: impl Into<String>) -> Refused {
    Refused { status: 400, reason: reason.into() }
}

pub(crate) fn not_found(reason: impl Into<String>) -> Refused {
    Refused { status: 404, reason: reason.into() }
}

impl From<anyhow::Error> for Refused {
    fn from(err: anyhow::Error) -> Self {
        let status = if err.is::<DeadlineExceeded>() { 504 } else { 500 };
        Self { status, reason: format!("{err:#}") }
    }
}

#[derive(Clone)]
pub struct Queries {
    store: Store,
    limits: Limits,
    deadline: Duration,
}

impl Queries {
    pub fn new(store: Store, limits: Limits, deadline: Duration) -> Self {
        Self { store, limits, deadline }
    }

    /// Answers queries until `active` ends (the lease lost, or shutdown).
    pub async fn serve(self, context: Context, active: CancellationToken) -> anyhow::Result<()> {
        let prefix = context.subjects.query("archive.");
        let mut requests = context.client.subscribe(context.subjects.query("archive.>")).await?;
        let answered = context.counters.counter("archiver_queries_total");
        let refused = context.counters.counter("archiver_queries_refused_total");
        loop {
            let request = tokio::select! {
                biased;
                _ = active.cancelled() => break,
                request = requests.next() => match request {
                    Some(request) => request,
                    None => break,
                },
            };
            let Some(reply) = request.reply.clone() else { continue };
            let name = request.subject.as_str().strip_prefix(&prefix).unwrap_or_default().to_owned();
            let (queries, client) = (self.clone(), context.client.clone());
            let (answered, refused) = (answered.clone(), refused.clone());
            tokio::spawn(async move {
                if name == "export" {
                    queries.export(&client, reply, &request.payload).await;
                    answered.inc();
                    return;
                }
                let answer = match queries.answer(&name, &request.payload).await {
                    Ok(value) => value,
                    Err(refusal) => {
                        refused.inc();
                        json!({ "error": refusal.reason, "status": refusal.status })
                    }
                };
                answered.inc();
                let bytes = serde_json::to_vec(&answer).unwrap_or_default();
                if let Err(err) = client.publish(reply, bytes.into()).await {
                    warn!(error = %err, "query answer not sent");
                }
            });
        }
        let _ = requests.unsubscribe().await;
        Ok(())
    }

    /// One query's answer.
    pub async fn answer(&self, name: &str, body: &[u8]) -> Result<Value, Refused> {
        let params: Params = if body.iter().all(u8::is_ascii_whitespace) {
            Params::default()
        } else {
            serde_json::from_slice(body).map_err(|err| bad(format!("the request is not valid JSON: {err}")))?
        };
        match name {
            "fleet.at" => self.fleet_at(params).await,
            "tasks.distribution" => {
                let queries = crate::finished::distribution(&params, shared::now_ms())?;
                let buckets = self.rows(queries.buckets_sql).await?;
                let summary = self.rows(queries.summary_sql).await?.into_iter().next().unwrap_or_default();
                let mut answer = json!({
                    "buckets": buckets,
                    "bounds_ms": crate::finished::BUCKETS_MS,
                    "start_time": params.start_time,
                    "end_time": params.end_time,
                });
                for (key, value) in summary {
                    answer[key] = value;
                }
                Ok(answer)
            }
            "alerts.stats" => {
                let stats = crate::relation::alert_stats(&params, shared::now_ms())?;
                let mut answer =
                    json!({ "interval_ms": stats.interval_ms, "timeline": self.rows(stats.timeline_sql).await? });
                for (name, sql) in stats.counts_sql {
                    answer[format!("by_{name}")] = json!(self.rows(sql).await?);
                }
                Ok(answer)
            }
            "system.history" | "worker.history" => {
                let relation = self.relation(name, &params).await?;
                if relation.points > MAX_POINTS {
                    return Err(bad(format!(
                        "{} points is over {MAX_POINTS}: ask for a larger interval, or export the series",
                        relation.points
                    )));
                }
                let rows = self.rows(relation.sql).await?;
                Ok(series(rows, relation.resolution, relation.interval_ms, &params))
            }
            _ => {
                let relation = self.relation(name, &params).await?;
                let rows = self.rows(relation.sql.clone()).await?;
                let mut answer = page(name, rows, &params, &relation)?;
                if let Some(total_sql) = relation.total_sql {
                    let counted = self.rows(total_sql).await?;
                    let total = counted.first().and_then(|row| row.values().next()).cloned().unwrap_or(json!(0));
                    answer["total"] = total;
                }
                Ok(answer)
            }
        }
    }

    async fn fleet_at(&self, params: Params) -> Result<Value, Refused> {
        let at = params.time.ok_or_else(|| bad("fleet.at needs `time` (ms)"))?;
        let limit = params.limit()?;
        let limits = self.limits.clone();
        let after = params.cursor.clone();
        let fleet = self
            .store
            .read(self.deadline, move |connection| history::fleet_at(connection, at, &limits, limit, after.as_deref()))
            .await?;
        match fleet {
            Some(fleet) => Ok(serde_json::to_value(fleet).map_err(anyhow::Error::from)?),
            None => Err(not_found(format!("the archive holds nothing at or before {at}"))),
        }
    }

    async fn rows(&self, sql: String) -> Result<Vec<Map<String, Value>>, Refused> {
        Ok(self.store.read(self.deadline, move |connection| rows_as_json(connection, &sql)).await?)
    }

    /// The SQL of a query (also what `export` writes out).
    async fn relation(&self, name: &str, params: &Params) -> Result<Relation, Refused> {
        let done = self.store.read(self.deadline, rollup_progress).await?;
        Relation::of(name, params, &done, shared::now_ms())
    }

    /// Streams a query's rows as CSV or Parquet to `reply`: chunks with a `Fleetwatch-Chunk`
    /// number, then an empty message with `Fleetwatch-End`; or one with `Fleetwatch-Error`.
    async fn export(&self, client: &async_nats::Client, reply: async_nats::Subject, body: &[u8]) {
        let outcome = async {
            let export: Export =
                serde_json::from_slice(body).map_err(|err| bad(format!("the request is not valid JSON: {err}")))?;
            let format = match export.format.as_str() {
                "csv" => "CSV, HEADER",
                "parquet" => "PARQUET",
                other => return Err(bad(format!("format {other:?}: use csv or parquet"))),
            };
            let relation = self.relation(&export.query, &export.params).await?;
            let file = tempfile::NamedTempFile::new().map_err(anyhow::Error::from)?;
            let path = file.path().to_string_lossy().replace('\'', "''");
            let rows = relation.export_sql.unwrap_or(relation.sql);
            let sql = format!("COPY ({rows}) TO '{path}' (FORMAT {format})");
            self.store.read(self.deadline, move |connection| Ok(connection.execute_batch(&sql)?)).await?;
            let bytes = tokio::fs::read(file.path()).await.map_err(anyhow::Error::from)?;
            Ok::<_, Refused>(bytes)
        }
        .await;
        let mut headers = async_nats::HeaderMap::new();
        match outcome {
            Ok(bytes) => {
                for (number, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Fleetwatch-Chunk", number.to_string().as_str());
                    let sent = client.publish_with_headers(reply.clone(), headers, Bytes::copy_from_slice(chunk)).await;
                    // Paced by the server, so a slow reader is not flooded.
                    if sent.is_err() || client.flush().await.is_err() {
                        return;
                    }
                }
                headers.insert("Fleetwatch-End", "true");
            }
            Err(refusal) => {
                headers.insert("Fleetwatch-Error", refusal.reason.replace(['\r', '\n'], " ").as_str());
                headers.insert("Fleetwatch-Status", refusal.status.to_string().as_str());
            }
        }
        let _ = client.publish_with_headers(reply, headers, Bytes::new()).await;
    }
}

#[derive(Debug, Deserialize)]
struct Export {
    query: String,
    #[serde(default)]
    params: Params,
    format: String,
}

/// Columns of the archive's answers that hold JSON: `events.detail`, `alerts.alert` and a
/// finished task's `depends_on`.
const JSON_COLUMNS: [&str; 3] = ["detail", "alert", "depends_on"];

/// Rows of a query as JSON objects (the SQL casts times to ms and JSON to text).
pub(crate) fn rows_as_json(connection: &mut duckdb::Connection, sql: &str) -> anyhow::Result<Vec<Map<String, Value>>> {
    use duckdb::types::ValueRef;
    let mut statement = connection.prepare(sql)?;
    let mut rows = statement.query([])?;
    let names: Vec<String> = rows.as_ref().map(|statement| statement.column_names()).unwrap_or_default();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut object = Map::new();
        for (index, name) in names.iter().enumerate() {
            let value = match row.get_ref(index)? {
                ValueRef::Null => Value::Null,
                ValueRef::Boolean(value) => json!(value),
                ValueRef::TinyInt(value) => json!(value),
                ValueRef::SmallInt(value) => json!(value),
                ValueRef::Int(value) => json!(value),
                ValueRef::BigInt(value) => json!(value),
                ValueRef::HugeInt(value) => json!(value as f64),
                ValueRef::UTinyInt(value) => json!(value),
                ValueRef::USmallInt(value) => json!(value),
                ValueRef::UInt(value) => json!(value),
                ValueRef::UBigInt(value) => json!(value),
                ValueRef::Float(value) => json!(value),
                ValueRef::Double(value) => json!(value),
                // JSON columns (the SQL casts them to text) go out as JSON, not as strings.
                ValueRef::Text(text) if JSON_COLUMNS.contains(&name.as_str()) => {
                    serde_json::from_slice(text).unwrap_or_else(|_| json!(String::from_utf8_lossy(text)))
                }
                ValueRef::Text(text) => json!(String::from_utf8_lossy(text)),
                other => json!(format!("{other:?}")),
            };
            object.insert(name.clone(), value);
        }
        out.push(object);
    }
    Ok(out)
}

/// Long rows (`time`, `metric_name`, `min`, `mean`, `max`, `last`) as columns a chart takes.
fn series(rows: Vec<Map<String, Value>>, resolution: &str, interval_ms: i64, params: &Params) -> Value {
    let mut times: Vec<i64> = rows.iter().filter_map(|row| row.get("time").and_then(Value::as_i64)).collect();
    times.dedup();
    let index: std::collections::HashMap<i64, usize> = times.iter().enumerate().map(|(at, time)| (*time, at)).collect();
    let mut metrics: std::collections::BTreeMap<String, Map<String, Value>> = Default::default();
    for row in &rows {
        let (Some(time), Some(name)) =
            (row.get("time").and_then(Value::as_i64), row.get("metric_name").and_then(Value::as_str))
        else {
            continue;
        };
        let series = metrics.entry(name.to_owned()).or_insert_with(|| {
            ["min", "mean", "max", "last"]
                .iter()
                .map(|key| ((*key).to_owned(), json!(vec![Value::Null; times.len()])))
                .collect()
        });
        for key in ["min", "mean", "max", "last"] {
            if let Some(Value::Array(values)) = series.get_mut(key) {
                values[index[&time]] = row.get(key).cloned().unwrap_or(Value::Null);
            }
        }
    }
    json!({
        "resolution": resolution,
        "interval_ms": interval_ms,
        "start_time": params.start_time,
        "end_time": params.end_time,
        "time": times,
        "metrics": metrics,
    })
}

/// A page of rows: `items`, whether there are more, and the cursor that continues.
pub(crate) fn page(
    name: &str,
    mut rows: Vec<Map<String, Value>>,
    params: &Params,
    relation: &Relation,
) -> Result<Value, Refused> {
    if name == "task" {
        if rows.is_empty() {
            return Err(not_found(format!(
                "no events of task {:?} in the archive",
                params.task_id.as_deref().unwrap_or_default()
            )));
        }
        return Ok(json!({ "task_id": params.task_id, "events": rows }));
    }
    let Some(cursor) = relation.cursor else {
        return Ok(json!({ "items": rows }));
    };
    let limit = params.limit()?;
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    let last = rows.last().filter(|_| truncated);
    let next_cursor = match cursor {
        Cursor::Seq => last.and_then(|row| row.get("seq")).map(Value::to_string),
        Cursor::Keyset(column) => last.map(|row| json!([row.get(column), row.get("task_id")]).to_string()),
    };
    if let Cursor::Keyset(column) = cursor {
        for row in &mut rows {
            row.remove(column);
        }
    }
    Ok(json!({ "items": rows, "truncated": truncated, "next_cursor": next_cursor }))
}
