//! The collector's clock: a `clock` event every `interval_ms`, so event time moves on while
//! the fleet is quiet and rules that fire on absence (a worker lost, a task stalled) fire
//! within one interval of their deadline, from events a replay sees too.

use crate::publisher::{Outgoing, Publisher};
use serde::{Deserialize, Serialize};
use shared::Envelope;
use shared::event::Event;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `[collector.clock]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    /// Ms between ticks; 0 turns the clock off (event time then moves only with events and
    /// the 2 s service reports). Default 50.
    pub interval_ms: u64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self { interval_ms: 50 }
    }
}

pub async fn run(config: ClockConfig, publisher: Publisher, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(Duration::from_millis(config.interval_ms.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        let tick = Envelope::new(shared::now_ms(), "collector", Event::Clock {});
        if let Err(err) = publisher.publish(vec![Outgoing::fresh(tick)]).await {
            // The next tick says the same, later.
            tracing::debug!(error = format!("{err:#}"), "clock tick not stored");
        }
    }
}
