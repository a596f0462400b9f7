//! Envelopes into Arrow record batches, one builder per archive table.

use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use shared::Envelope;
use shared::alert::Alert;
use shared::event::Event;
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
pub fn events_batch(rows: &[(u64, String, Envelope<Event>)]) -> Result<RecordBatch, ArrowError> {
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
    let details: Vec<Option<String>> = rows.iter().map(|(_, _, envelope)| detail(&envelope.payload)).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|(seq, _, _)| *seq))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, _, envelope)| envelope.id.as_str()))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            rows.iter().map(|(_, _, envelope)| micros(envelope.time)),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, _, envelope)| envelope.source.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, _, envelope)| envelope.payload.kind()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|(_, _, envelope)| envelope.payload.worker_id()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|(_, _, envelope)| envelope.payload.task_id()))),
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

/// Rows of `alerts`: one per alert state change.
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
    ]);
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

/// Rows of `worker_metrics` or `task_metrics`: (time ms, id, metric name, value), the id
/// column named `id_column`.
pub fn keyed_metrics_batch(id_column: &str, rows: &[(i64, &str, &str, f64)]) -> Result<RecordBatch, ArrowError> {
    let schema = Schema::new(vec![
        timestamp("timestamp"),
        text(id_column, false),
        text("metric_name", false),
        Field::new("metric_value", DataType::Float64, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|(time, _, _, _)| micros(*time)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, id, _, _)| *id))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, _, name, _)| *name))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, _, _, value)| *value))),
    ];
    RecordBatch::try_new(Arc::new(schema), columns)
}
