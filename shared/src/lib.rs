//! The fleetwatch wire contract and the plumbing every service shares.
//!
//! The contract (what travels on NATS) is [`subjects`], [`envelope`], [`event`],
//! [`ingest`], [`metrics`], [`alert`], [`health`] and [`codec`]; [`fleet`] is how events fold
//! into the fleet's state, shared by everyone who folds them. The plumbing (how a service
//! starts, connects and stops) is [`config`], [`nats`], [`snapshot`], [`telemetry`], [`probe`]
//! and [`service`]. Services never link each other; they share only this crate.

pub mod access;
pub mod alert;
pub mod codec;
pub mod config;
pub mod envelope;
pub mod event;
pub mod feed;
pub mod fleet;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod nats;
pub mod paging;
pub mod probe;
pub mod query;
pub mod service;
pub mod silence;
pub mod snapshot;
pub mod subjects;
pub mod telemetry;
pub mod time;

pub use envelope::{Envelope, SCHEMA_VERSION, now_ms};
pub use subjects::Subjects;
