//! The one way into FLEET_EVENTS: envelopes published many in flight at once, returning
//! only when JetStream has stored every one. An id that came from the producer is also
//! sent as `Nats-Msg-Id`, so a resend is dropped.

use anyhow::Context as _;
use futures::future::try_join_all;
use shared::event::Event;
use shared::service::Context;
use shared::telemetry::Counter;
use shared::{Envelope, Subjects, codec, nats};

/// Publishes in flight at once before the acks are awaited.
const IN_FLIGHT: usize = 4096;

/// One event to store, and whether its id came from outside.
pub struct Outgoing {
    pub envelope: Envelope<Event>,
    /// The producer chose the id (an ingest `id`, a coordinator's derived one), so the same
    /// event may come again and JetStream must drop the resend. A fresh id needs no such
    /// check: the server would only hold it in memory for the whole duplicate window
    /// (millions of ids a minute at 10,000 workers).
    pub given_id: bool,
}

impl Outgoing {
    pub fn fresh(envelope: Envelope<Event>) -> Self {
        Self { envelope, given_id: false }
    }
    pub fn given(envelope: Envelope<Event>) -> Self {
        Self { envelope, given_id: true }
    }
}

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

    /// Publishes in order; returns once all are stored (a duplicate given id is stored once).
    pub async fn publish(&self, events: Vec<Outgoing>) -> anyhow::Result<()> {
        let mut acks = Vec::with_capacity(events.len().min(IN_FLIGHT));
        for Outgoing { envelope, given_id } in &events {
            let subject = envelope.payload.subject(&self.subjects);
            let payload = codec::encode(envelope)?;
            let ack = match given_id {
                true => nats::publish_bytes(&self.jetstream, subject, &envelope.id, payload).await?,
                false => self.jetstream.publish(subject, payload).await.context("publishing to jetstream")?,
            };
            acks.push(ack);
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
