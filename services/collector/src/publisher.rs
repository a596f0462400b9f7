//! The one way into FLEET_EVENTS: envelopes published with their id as `Nats-Msg-Id`,
//! many in flight at once, returning only when JetStream has stored every one.

use futures::future::try_join_all;
use shared::event::Event;
use shared::service::Context;
use shared::telemetry::Counter;
use shared::{Envelope, Subjects, nats};

/// Publishes in flight at once before the acks are awaited.
const IN_FLIGHT: usize = 4096;

#[derive(Clone)]
pub struct Publisher {
    jetstream: async_nats::jetstream::Context,
    subjects: Subjects,
    published: Counter,
}

impl Publisher {
    pub fn new(context: &Context) -> Self {
        Self {
            jetstream: context.jetstream.clone(),
            subjects: context.subjects.clone(),
            published: context.counters.counter("collector_events_published_total"),
        }
    }

    /// Publishes in order; returns once all are stored (a duplicate id is stored once).
    pub async fn publish(&self, envelopes: Vec<Envelope<Event>>) -> anyhow::Result<()> {
        let mut acks = Vec::with_capacity(envelopes.len().min(IN_FLIGHT));
        for envelope in &envelopes {
            let subject = envelope.payload.subject(&self.subjects);
            acks.push(nats::publish_pipelined(&self.jetstream, subject, &envelope.id, envelope).await?);
            if acks.len() == IN_FLIGHT {
                self.await_acks(std::mem::take(&mut acks)).await?;
            }
        }
        self.await_acks(acks).await
    }

    async fn await_acks(&self, acks: Vec<async_nats::jetstream::context::PublishAckFuture>) -> anyhow::Result<()> {
        let count = acks.len() as u64;
        try_join_all(acks.into_iter().map(std::future::IntoFuture::into_future)).await?;
        self.published.add(count);
        Ok(())
    }
}
