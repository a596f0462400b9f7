//! Alert control: how the gateway writes. It sends alert control events (a custom alert
//! raised, an alert acknowledged or resolved by hand, a silence created or deleted) as
//! requests to `<prefix>.control.alerts`, JSON of one [`Event`]; the collector stamps them
//! with its own clock, stores them in FLEET_EVENTS and answers a [`ControlReply`]:
//! `stored` with the event's id once JetStream has it, or `refused` with the reason.
//!
//! Always on: public ingest refuses these events, so this is their only way in. Anything
//! that is not a valid alert control event is refused, dead-lettered with the reason and
//! counted (`collector_control_deadletters_total`). When the event cannot be stored the
//! answer is `{"error": "..."}`, as ingest's, so the gateway can tell "retry" from "wrong".

use crate::publisher::{Outgoing, Publisher};
use futures::StreamExt;
use shared::alert::ControlReply;
use shared::event::Event;
use shared::service::Context;
use shared::telemetry::Counter;
use shared::{Envelope, now_ms};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Several collectors share the control subject; one of them answers each request.
const QUEUE_GROUP: &str = "fleetwatch-collector";
/// The envelope source of every control event.
const SOURCE: &str = "gateway";

pub async fn subscribe(context: &Context) -> anyhow::Result<async_nats::Subscriber> {
    Ok(context.client.queue_subscribe(context.subjects.alert_control(), QUEUE_GROUP.into()).await?)
}

/// The event in a control request, or why it is refused.
pub fn parse(payload: &[u8]) -> Result<Event, String> {
    let event: Event = serde_json::from_slice(payload).map_err(|err| format!("not an event: {err}"))?;
    if !event.is_alert_control() {
        return Err(format!("{} is not an alert control event", event.kind()));
    }
    shared::ingest::validate(&event).map_err(|err| err.to_string())?;
    Ok(event)
}

struct Control {
    context: Context,
    publisher: Publisher,
    dead: Counter,
}

/// Handles requests one at a time, in order: an ack sent before a resolve is stored first.
pub async fn run(
    context: Context,
    mut subscriber: async_nats::Subscriber,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let received = context.counters.counter("collector_control_requests_total");
    let dead = context.counters.counter("collector_control_deadletters_total");
    let control = Control { context, publisher, dead };
    loop {
        let message = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            message = subscriber.next() => match message {
                Some(message) => message,
                None => return Ok(()),
            },
        };
        received.inc();
        let answer = control.handle(&message).await;
        let Some(reply) = message.reply else { continue };
        if let Err(err) = control.context.client.publish(reply, answer.into()).await {
            warn!(error = %err, "control reply not sent");
        }
    }
    let _ = subscriber.unsubscribe().await;
    Ok(())
}

impl Control {
    /// Stores or refuses one request; returns the JSON answer.
    async fn handle(&self, message: &async_nats::Message) -> Vec<u8> {
        let event = match parse(&message.payload) {
            Ok(event) => event,
            Err(reason) => return self.refuse(message, reason).await,
        };
        let envelope = Envelope::new(now_ms(), SOURCE, event);
        let id = envelope.id.clone();
        match self.publisher.publish(vec![Outgoing::fresh(envelope)]).await {
            Ok(()) => json(&ControlReply::Stored { id }),
            Err(err) => {
                warn!(error = format!("{err:#}"), "control event not stored; the gateway is told");
                serde_json::to_vec(&serde_json::json!({ "error": format!("not stored: {err:#}") })).unwrap_or_default()
            }
        }
    }

    async fn refuse(&self, message: &async_nats::Message, reason: String) -> Vec<u8> {
        self.dead.inc();
        debug!(reason = %reason, "control request refused");
        crate::ingest::dead_letter(&self.context, &reason, &message.subject, message.payload.clone()).await;
        json(&ControlReply::Refused { reason })
    }
}

fn json(reply: &ControlReply) -> Vec<u8> {
    // A reply of two strings always serializes.
    serde_json::to_vec(reply).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_alert_control_events_pass() {
        let ack = br#"{"type":"alert_acknowledged","alert_id":"worker_overloaded-w1-5","by":"ana"}"#;
        assert!(matches!(parse(ack), Ok(Event::AlertAcknowledged { .. })));
        let heartbeat = br#"{"type":"task_started","task_id":"t1","worker_id":"w1"}"#;
        assert!(parse(heartbeat).expect_err("not control").contains("task_started"));
        let nobody = br#"{"type":"alert_resolved","alert_id":"a","by":" "}"#;
        assert!(parse(nobody).expect_err("empty by").contains("by"));
        assert!(parse(b"{oops").expect_err("malformed").starts_with("not an event"));
    }
}
