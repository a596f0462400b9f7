//! Envelopes into Arrow record batches, one builder per archive table.

use crate::schema::WORKER_METRICS;
use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Float64Array, StringArray, TimestampMicrosecondArray, UInt8Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use shared::Envelope;
use shared::alert::Alert;
use shared::event::Event;
use shared::metrics::{FinishedTask, WorkerMetrics};
use std::sync::Arc;

fn micros(ms: i64) -> i64 {
    ms.saturating_mul(1000)
}

fn timestamp(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), false)
}

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// Rows of `events`: one per event; the fields beside its type and ids go into `detail`.
pub fn events_batch(rows: &[(u64, Envelope<Event>)]) -> Result<RecordBatch, ArrowError> {
    let schema = Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        text("id", false),
        timestamp("time"),
        text("source", false),
        text("type", false),
        text("worker_id", true),
        text("task_id", true),
        text("detail", true),
    ]);
    let details: Vec<Option<String>> = rows.iter().map(|(_, envelope)| detail(&envelope.payload)).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|(seq, _)| *seq))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.id.as_str()))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|(_, envelope)| micros(envelope.time)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.source.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.kind()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|(_, envelope)| envelope.payload.worker_id()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|(_, envelope)| envelope.payload.task_id()))),
        Arc::new(StringArray::from_iter(details.iter().map(Option::as_deref))),
    ];
    RecordBatch::try_new(Arc::new(schema), columns)
}

/// An event's fields other than `type`, `worker_id` and `task_id`, as a JSON object; `None`
/// when it has none (a task starting or completing is all ids).
pub fn detail(event: &Event) -> Option<String> {
    if matches!(event, Event::TaskStarted { .. } | Event::TaskCompleted { .. }) {
        return None;
    }
    let serde_json::Value::Object(mut fields) = serde_json::to_value(event).ok()? else { return None };
    for key in ["type", "worker_id", "task_id"] {
        fields.remove(key);
    }
    (!fields.is_empty()).then(|| serde_json::Value::Object(fields).to_string())
}

/// Rows of `alerts`: one per alert state change, the whole alert also as JSON.
pub fn alerts_batch(rows: &[(u64, Envelope<Alert>)]) -> Result<RecordBatch, ArrowError> {
    let schema = Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        text("id", false),
        timestamp("time"),
        text("alert_id", false),
        text("rule", false),
        text("severity", false),
        text("state", false),
        text("target", false),
        text("summary", false),
        Field::new("value", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        text("alert", true),
    ]);
    let whole: Vec<String> =
        rows.iter().map(|(_, envelope)| serde_json::to_string(&envelope.payload).unwrap_or_default()).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|(seq, _)| *seq))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.id.as_str()))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|(_, envelope)| micros(envelope.time)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.alert_id.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.rule.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.severity.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.state.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.target.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.summary.as_str()))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.value))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, envelope)| envelope.payload.threshold))),
        Arc::new(StringArray::from_iter_values(whole.iter().map(String::as_str))),
    ];
    RecordBatch::try_new(Arc::new(schema), columns)
}

/// Rows of `system_metrics`: (time ms, metric name, value).
pub fn system_metrics_batch(rows: &[(i64, &str, f64)]) -> Result<RecordBatch, ArrowError> {
    let schema = Schema::new(vec![
        timestamp("timestamp"),
        text("metric_name", false),
        Field::new("metric_value", DataType::Float64, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|(time, _, _)| micros(*time)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, name, _)| *name))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, _, value)| *value))),
    ];
    RecordBatch::try_new(Arc::new(schema), columns)
}

/// Rows of `worker_samples`: one per worker per sample.
pub fn worker_samples_batch(rows: &[(i64, &WorkerMetrics)]) -> Result<RecordBatch, ArrowError> {
    let mut fields = vec![timestamp("timestamp"), text("worker_id", false), text("status", true)];
    fields.extend(WORKER_METRICS.iter().map(|name| Field::new(*name, DataType::Float64, true)));
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|(time, _)| micros(*time)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, metrics)| metrics.worker_id.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, metrics)| metrics.status.as_str()))),
    ];
    let flattened: Vec<Vec<(&str, f64)>> = rows.iter().map(|(_, metrics)| metrics.flatten()).collect();
    for name in WORKER_METRICS {
        let values =
            flattened.iter().map(|metrics| metrics.iter().find(|(metric, _)| *metric == name).map(|(_, value)| *value));
        columns.push(Arc::new(Float64Array::from_iter(values)));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// Rows of `tasks`: one per finished task.
pub fn tasks_batch(rows: &[FinishedTask]) -> Result<RecordBatch, ArrowError> {
    let schema = Schema::new(vec![
        timestamp("finished_at"),
        text("task_id", false),
        text("model", false),
        text("family", true),
        text("hardware", true),
        text("worker_id", true),
        Field::new("priority", DataType::UInt8, true),
        Field::new("succeeded", DataType::Boolean, false),
        Field::new("queue_ms", DataType::Float64, true),
        Field::new("processing_ms", DataType::Float64, true),
        Field::new("total_ms", DataType::Float64, true),
        text("error", true),
        text("depends_on", true),
        Field::new("attempts", DataType::UInt8, true),
    ]);
    let depends_on = |task: &FinishedTask| (!task.depends_on.is_empty()).then(|| task.depends_on.join(","));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|task| micros(task.finished_at)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|task| task.task_id.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|task| task.model.as_str()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|task| task.family.map(|family| family.as_str())))),
        Arc::new(StringArray::from_iter(rows.iter().map(|task| task.hardware.map(|hardware| hardware.as_str())))),
        Arc::new(StringArray::from_iter(rows.iter().map(|task| task.worker_id.as_deref()))),
        Arc::new(UInt8Array::from_iter_values(rows.iter().map(|task| task.priority))),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|task| Some(task.succeeded)))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|task| task.queue_ms))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|task| task.processing_ms))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|task| task.total_ms))),
        Arc::new(StringArray::from_iter(rows.iter().map(|task| task.error.as_deref()))),
        Arc::new(StringArray::from_iter(rows.iter().map(depends_on))),
        Arc::new(UInt8Array::from_iter_values(rows.iter().map(|task| task.attempts.min(255) as u8))),
    ];
    RecordBatch::try_new(Arc::new(schema), columns)
}

/// A row of `fleet_snapshots`: the fleet's state as folded up to `seq` (MessagePack).
pub fn snapshot_batch(time: i64, seq: u64, state: &[u8]) -> Result<RecordBatch, ArrowError> {
    let schema = Schema::new(vec![
        timestamp("time"),
        Field::new("seq", DataType::UInt64, false),
        Field::new("state", DataType::Binary, false),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from_iter_values([micros(time)])),
        Arc::new(UInt64Array::from_iter_values([seq])),
        Arc::new(BinaryArray::from_iter_values([state])),
    ];
    RecordBatch::try_new(Arc::new(schema), columns)
}

/// An archived event back from its row: `detail` with the type and ids put back.
pub fn event_of(
    kind: &str,
    worker_id: Option<String>,
    task_id: Option<String>,
    detail: Option<&str>,
) -> anyhow::Result<Event> {
    let mut fields = match detail {
        Some(detail) => match serde_json::from_str(detail)? {
            serde_json::Value::Object(fields) => fields,
            other => anyhow::bail!("event detail is not an object: {other}"),
        },
        None => serde_json::Map::new(),
    };
    fields.insert("type".into(), kind.into());
    if let Some(worker_id) = worker_id {
        fields.insert("worker_id".into(), worker_id.into());
    }
    if let Some(task_id) = task_id {
        fields.insert("task_id".into(), task_id.into());
    }
    Ok(serde_json::from_value(serde_json::Value::Object(fields))?)
}

/// Archived events with sequence in `(after, up_to]`, in stream order.
pub fn events_between(
    connection: &duckdb::Connection,
    after: u64,
    up_to: u64,
) -> anyhow::Result<Vec<(u64, i64, Event)>> {
    let mut statement = connection.prepare(
        "SELECT seq, epoch_ms(time), type, worker_id, task_id, detail::VARCHAR FROM events
         WHERE seq > ? AND seq <= ? ORDER BY seq",
    )?;
    let rows = statement.query_map([after, up_to], |row| {
        Ok((
            row.get::<_, u64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
            row.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut events = Vec::new();
    for row in rows {
        let (seq, time, kind, worker_id, task_id, detail) = row?;
        events.push((seq, time, event_of(&kind, worker_id, task_id, detail.as_deref())?));
    }
    Ok(events)
}

/// A fleet snapshot as `fleet_snapshots.state` holds it: MessagePack with field names,
/// deflated (zlib, fast level). At 10,000 workers a snapshot was 39 MB plain, every 2 minutes.
pub fn encode_snapshot(fleet: &shared::fleet::FleetState) -> anyhow::Result<Vec<u8>> {
    use std::io::Write as _;
    let plain = shared::codec::encode(fleet)?;
    let mut deflated = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    deflated.write_all(&plain)?;
    Ok(deflated.finish()?)
}

/// The fleet from a snapshot; also reads the plain MessagePack of archives before deflating
/// (a MessagePack map never starts with 0x78, a zlib stream always does here).
pub fn decode_snapshot(state: &[u8]) -> anyhow::Result<shared::fleet::FleetState> {
    use std::io::Read as _;
    if state.first() != Some(&0x78) {
        return Ok(shared::codec::decode(state)?);
    }
    let mut plain = Vec::new();
    flate2::read::ZlibDecoder::new(state).read_to_end(&mut plain)?;
    Ok(shared::codec::decode(&plain)?)
}

/// The newest fleet snapshot at or below sequence `at_most`: its sequence and state.
pub fn snapshot_at_most(connection: &duckdb::Connection, at_most: u64) -> anyhow::Result<Option<(u64, Vec<u8>)>> {
    let mut statement =
        connection.prepare("SELECT seq, state FROM fleet_snapshots WHERE seq <= ? ORDER BY seq DESC LIMIT 1")?;
    let mut rows = statement.query([at_most])?;
    Ok(match rows.next()? {
        Some(row) => Some((row.get(0)?, row.get(1)?)),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_comes_back_deflated_or_plain() {
        let mut fleet = shared::fleet::FleetState::new(10);
        fleet.apply(1_000, &Event::TaskStarted { task_id: "t1".into(), worker_id: "w1".into() });
        let deflated = encode_snapshot(&fleet).expect("encodes");
        let plain = shared::codec::encode(&fleet).expect("plain");
        assert!(deflated.len() < plain.len(), "{} deflated against {} plain", deflated.len(), plain.len());
        for bytes in [&deflated[..], &plain[..]] {
            let back = decode_snapshot(bytes).expect("decodes");
            assert_eq!(shared::codec::encode(&back).expect("again"), plain);
        }
    }

    #[test]
    fn an_event_comes_back_from_its_row() {
        let events = [
            Event::TaskStarted { task_id: "t1".into(), worker_id: "w1".into() },
            Event::TaskFailed { task_id: "t1".into(), worker_id: Some("w1".into()), error: "<oom>".into() },
            Event::Heartbeat {
                worker_id: "w1".into(),
                cpu_pct: Some(91.5),
                memory_pct: Some(3.0),
                gpu_pct: None,
                gpu_memory_pct: Some(4.0),
                network_pct: Some(0.5),
                running_tasks: Some(2),
                queued_tasks: Some(1),
            },
        ];
        for event in events {
            let back = event_of(
                event.kind(),
                event.worker_id().map(str::to_owned),
                event.task_id().map(str::to_owned),
                detail(&event).as_deref(),
            )
            .expect("decodes");
            assert_eq!(back, event);
        }
    }
}
