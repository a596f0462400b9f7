//! The public ingest format: what agents and coordinators send to `<prefix>.ingest.>`
//! (MessagePack or JSON) and to the collector's `POST /ingest` (JSON).
//!
//! An ingest message is a canonical [`Event`] with optional `id`, `time` and `source`
//! beside its fields. The collector fills what is missing, checks everything with
//! [`IngestMessage::validate`] and publishes the event in an [`Envelope`].

use crate::envelope::Envelope;
use crate::event::Event;
use crate::subjects::check_token;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How far into the future an event time may be (clock skew), ms.
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestMessage {
    /// Idempotency key; a resend with the same id is dropped. Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Event time, ms since the epoch; the collector's clock when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

/// Why an ingest message was refused. Each is dead-lettered with this text.
#[derive(Debug, Error, PartialEq)]
pub enum Invalid {
    #[error("{field} {value:?} is not a valid id: use 1-128 letters, digits, '-' or '_'")]
    BadId { field: &'static str, value: String },
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange { field: &'static str, value: f64, min: f64, max: f64 },
    #[error("time {time} is more than {MAX_FUTURE_SKEW_MS} ms ahead of the collector's clock {now}")]
    FromTheFuture { time: i64, now: i64 },
    #[error("time {0} is not a positive number of ms since the epoch")]
    BadTime(i64),
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{field} is {len} characters, over {max}")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error("{0} events are not taken on ingest: the collector makes them, or takes them from the gateway")]
    Internal(&'static str),
    #[error("{0}")]
    Bad(String),
}

impl IngestMessage {
    /// Checks the message and wraps its event in an envelope stamped at `now`.
    pub fn into_envelope(self, now: i64, default_source: &str) -> Result<Envelope<Event>, Invalid> {
        let time = self.time.unwrap_or(now);
        if time <= 0 {
            return Err(Invalid::BadTime(time));
        }
        if time > now + MAX_FUTURE_SKEW_MS {
            return Err(Invalid::FromTheFuture { time, now });
        }
        if self.event.is_internal() {
            return Err(Invalid::Internal(self.event.kind()));
        }
        validate(&self.event)?;
        if let Some(id) = &self.id {
            check_id("id", id)?;
        }
        let source = self.source.unwrap_or_else(|| default_source.to_owned());
        Ok(match self.id {
            Some(id) => Envelope::with_id(id, time, source, self.event),
            None => Envelope::new(time, source, self.event),
        })
    }
}

fn check_id(field: &'static str, value: &str) -> Result<(), Invalid> {
    check_token(field, value).map_err(|_| Invalid::BadId { field, value: value.to_owned() })
}

fn check_range(field: &'static str, value: f64, min: f64, max: f64) -> Result<(), Invalid> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::OutOfRange { field, value, min, max })
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    match value.chars().count() {
        len if len > max => Err(Invalid::TooLong { field, len, max }),
        _ => Ok(()),
    }
}

fn check_filled(field: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::Empty(field));
    }
    check_text(field, value, max)
}

fn check_pct(field: &'static str, value: f32) -> Result<(), Invalid> {
    check_range(field, f64::from(value), 0.0, 100.0)
}

/// Most tasks one task may wait for.
pub const MAX_DEPENDENCIES: usize = 32;

/// The rules every canonical event obeys, whatever its source.
pub fn validate(event: &Event) -> Result<(), Invalid> {
    for (field, value) in event.tokens() {
        check_id(field, value)?;
    }
    match event {
        Event::Heartbeat { cpu_pct, memory_pct, gpu_pct, gpu_memory_pct, network_pct, .. } => {
            let figures = [
                ("cpu_pct", cpu_pct),
                ("memory_pct", memory_pct),
                ("gpu_pct", gpu_pct),
                ("gpu_memory_pct", gpu_memory_pct),
                ("network_pct", network_pct),
            ];
            for (field, value) in figures {
                if let Some(value) = value {
                    check_pct(field, *value)?;
                }
            }
        }
        Event::WorkerRegistered { capabilities, .. } => {
            check_range("capabilities.slots", f64::from(capabilities.slots), 1.0, 4096.0)?;
            check_range("capabilities.memory_gb", f64::from(capabilities.memory_gb), 0.0, 1e6)?;
        }
        Event::TaskQueued { task_id, model, priority, depends_on, .. } => {
            if model.trim().is_empty() {
                return Err(Invalid::Empty("model"));
            }
            check_range("priority", f64::from(*priority), 0.0, 9.0)?;
            if depends_on.len() > MAX_DEPENDENCIES {
                return Err(Invalid::Bad(format!(
                    "depends_on has {} tasks, over {MAX_DEPENDENCIES}",
                    depends_on.len()
                )));
            }
            for dependency in depends_on {
                check_id("depends_on", dependency)?;
                if dependency == task_id {
                    return Err(Invalid::Bad(format!("task {task_id:?} cannot depend on itself")));
                }
            }
        }
        Event::AlertRaised { title, message, metrics, .. } => {
            check_filled("title", title, 200)?;
            check_text("message", message, 4000)?;
            if metrics.len() > 32 {
                return Err(Invalid::Bad(format!("metrics has {} entries, over 32", metrics.len())));
            }
            for (name, value) in metrics {
                check_filled("metrics name", name, 64)?;
                check_range("metrics value", *value, f64::MIN, f64::MAX)?;
            }
        }
        Event::AlertAcknowledged { alert_id, by, comment } | Event::AlertResolved { alert_id, by, comment } => {
            check_filled("alert_id", alert_id, 400)?;
            check_filled("by", by, 100)?;
            check_text("comment", comment, 1000)?;
        }
        Event::SilenceCreated { matchers, starts_at, ends_at, by, comment, .. } => {
            check_filled("by", by, 100)?;
            check_text("comment", comment, 1000)?;
            if ends_at <= starts_at {
                return Err(Invalid::Bad(format!("ends_at {ends_at} is not after starts_at {starts_at}")));
            }
            if matchers.is_empty() || matchers.len() > 16 {
                return Err(Invalid::Bad("a silence needs 1 to 16 matchers".into()));
            }
            for matcher in matchers {
                check_filled("matcher name", &matcher.name, 64)?;
                check_text("matcher value", &matcher.value, 400)?;
                crate::silence::compile(matcher).map_err(|err| Invalid::Bad(err.to_string()))?;
            }
        }
        Event::SilenceDeleted { by, .. } => check_filled("by", by, 100)?,
        Event::ServiceReport { instance, .. } => check_filled("instance", instance, 200)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(cpu_pct: f32) -> Event {
        Event::Heartbeat {
            worker_id: "cpu-001".into(),
            cpu_pct: Some(cpu_pct),
            memory_pct: Some(40.0),
            gpu_pct: None,
            gpu_memory_pct: None,
            network_pct: Some(3.0),
            running_tasks: Some(1),
            queued_tasks: Some(0),
        }
    }

    #[test]
    fn json_with_only_the_event_fields_is_accepted() {
        let json = r#"{"type":"heartbeat","worker_id":"cpu-001","cpu_pct":97.5,"memory_pct":40,
                       "network_pct":3,"running_tasks":1,"queued_tasks":0}"#;
        let message: IngestMessage = serde_json::from_str(json).expect("valid ingest json");
        let envelope = message.into_envelope(1_000, "test").expect("valid");
        assert_eq!(envelope.time, 1_000);
        assert_eq!(envelope.source, "test");
        assert_eq!(envelope.payload, heartbeat(97.5));
    }

    #[test]
    fn out_of_range_and_bad_ids_are_refused_with_the_field() {
        let message = IngestMessage { id: None, time: None, source: None, event: heartbeat(130.0) };
        let refused = message.into_envelope(1_000, "test").expect_err("cpu 130%");
        assert!(matches!(refused, Invalid::OutOfRange { field: "cpu_pct", .. }));
        let bad_id = Event::TaskStarted { task_id: "a.b".into(), worker_id: "w".into() };
        assert!(matches!(validate(&bad_id), Err(Invalid::BadId { field: "task_id", .. })));
        let future =
            IngestMessage { id: None, time: Some(10 * MAX_FUTURE_SKEW_MS), source: None, event: heartbeat(5.0) };
        assert!(matches!(future.into_envelope(1, "t"), Err(Invalid::FromTheFuture { .. })));
    }
}
