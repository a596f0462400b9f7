//! The one envelope around every message on `events`, `metrics` and `alerts`.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The schema version this build writes. Readers accept this and every older version.
pub const SCHEMA_VERSION: u16 = 2;

/// Milliseconds since the Unix epoch: the time unit of every timestamp on the wire.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis() as i64).unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Unique id; sent as the `Nats-Msg-Id` header too when the producer chose it, so that
    /// JetStream drops a resend (a fresh id cannot come twice).
    pub id: String,
    /// When the thing happened (not when it was sent), ms since the Unix epoch.
    pub time: i64,
    /// Who produced it: a service (`collector`), an agent or a demo fleet.
    pub source: String,
    /// The schema version of `payload`.
    pub schema: u16,
    pub payload: T,
}

impl<T> Envelope<T> {
    /// A new envelope with a fresh time-ordered id (UUIDv7).
    pub fn new(time: i64, source: impl Into<String>, payload: T) -> Self {
        Self::with_id(uuid::Uuid::now_v7().to_string(), time, source, payload)
    }

    /// An envelope with a caller-chosen id: derived ids make a replayed publish a duplicate
    /// that JetStream drops.
    pub fn with_id(id: String, time: i64, source: impl Into<String>, payload: T) -> Self {
        Self { id, time, source: source.into(), schema: SCHEMA_VERSION, payload }
    }
}
