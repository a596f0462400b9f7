//! NATS ingest: agents publish to `<prefix>.ingest.>` in the public format (JSON or
//! MessagePack, one event or an array). Invalid input is dead-lettered to
//! `<prefix>.deadletter.collector` with the reason and the original bytes, and counted.
//! A request (a message with a reply subject) is answered once its events are stored.

use crate::publisher::{Outgoing, Publisher};
use crate::worker_messages::{Probe, WorkerMessage};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shared::ingest::IngestMessage;
use shared::service::Context;
use shared::{codec, nats, now_ms};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// `[collector.ingest]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Listen on `<prefix>.ingest.>`. Default true.
    pub enabled: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Queue group: several collectors share the ingest load.
const QUEUE_GROUP: &str = "fleetwatch-collector";
/// Messages handled together, so their publishes are in flight at once.
const CHUNK: usize = 256;

pub async fn subscribe(context: &Context) -> anyhow::Result<async_nats::Subscriber> {
    Ok(context.client.queue_subscribe(context.subjects.ingest_all(), QUEUE_GROUP.into()).await?)
}

/// What became of one ingest message (which may carry a batch).
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Serialize)]
pub struct Rejection {
    /// Position in the batch; 0 for a single event.
    pub index: usize,
    pub reason: String,
}

/// Parses a payload (JSON or MessagePack; an object or an array of them) and checks each
/// event. Returns the valid events and the reasons for the rest. An item may be one of the
/// testing framework's worker messages ([`crate::worker_messages`]), which stand for several
/// events; its rejection names the item.
pub fn parse(payload: &[u8], source: &str) -> (Vec<Outgoing>, Vec<Rejection>) {
    let malformed = |reason: String| (Vec::new(), vec![Rejection { index: 0, reason }]);
    let now = now_ms();
    let first = payload.iter().find(|byte| !byte.is_ascii_whitespace());
    let items: Vec<Result<Vec<IngestMessage>, String>> = match first {
        // Each item is parsed once, straight into the message; the batch only to its bounds.
        Some(b'[') => match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(payload) {
            Ok(items) => items.into_iter().map(|item| from_json(item.get(), now)).collect(),
            Err(err) => return malformed(format!("malformed JSON: {err}")),
        },
        Some(b'{') => match std::str::from_utf8(payload) {
            Ok(text) => vec![from_json(text, now)],
            Err(err) => return malformed(format!("malformed JSON: {err}")),
        },
        _ => match codec::decode::<serde_json::Value>(payload) {
            Ok(serde_json::Value::Array(items)) => items.into_iter().map(|item| from_value(item, now)).collect(),
            Ok(single) => vec![from_value(single, now)],
            Err(err) => return malformed(err.to_string()),
        },
    };
    let mut accepted = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let checked = item.and_then(|messages| {
            let mut outgoing = Vec::with_capacity(messages.len());
            for message in messages {
                let given_id = message.id.is_some();
                let envelope = message.into_envelope(now, source).map_err(|err| err.to_string())?;
                outgoing.push(Outgoing { envelope, given_id });
            }
            Ok(outgoing)
        });
        match checked {
            Ok(outgoing) => accepted.extend(outgoing),
            Err(reason) => rejected.push(Rejection { index, reason }),
        }
    }
    (accepted, rejected)
}

fn from_json(text: &str, now: i64) -> Result<Vec<IngestMessage>, String> {
    let framework = serde_json::from_str::<Probe>(text).is_ok_and(|probe| probe.is_worker_message());
    let parsed = match framework {
        true => serde_json::from_str::<WorkerMessage>(text).map(|message| message.into_messages(now)),
        false => serde_json::from_str::<IngestMessage>(text).map(|message| vec![message]),
    };
    parsed.map_err(|err| match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!("malformed JSON: {err}"),
        _ => format!("not an ingest event: {err}"),
    })
}

fn from_value(value: serde_json::Value, now: i64) -> Result<Vec<IngestMessage>, String> {
    let framework = Probe::deserialize(&value).is_ok_and(|probe| probe.is_worker_message());
    let parsed = match framework {
        true => serde_json::from_value::<WorkerMessage>(value).map(|message| message.into_messages(now)),
        false => serde_json::from_value::<IngestMessage>(value).map(|message| vec![message]),
    };
    parsed.map_err(|err| format!("not an ingest event: {err}"))
}

pub async fn run(
    context: Context,
    mut subscriber: async_nats::Subscriber,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let received = context.counters.counter("collector_ingest_messages_total");
    let dead = context.counters.counter("collector_deadletters_total");
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            message = subscriber.next() => match message {
                Some(message) => message,
                None => return Ok(()),
            },
        };
        // Take what else is already waiting, up to a chunk.
        let mut messages = vec![first];
        while messages.len() < CHUNK {
            match futures::FutureExt::now_or_never(subscriber.next()) {
                Some(Some(message)) => messages.push(message),
                _ => break,
            }
        }
        received.add(messages.len() as u64);
        let mut envelopes = Vec::new();
        let mut outcomes = Vec::with_capacity(messages.len());
        for message in &messages {
            let (accepted, rejected) = parse(&message.payload, "ingest");
            for rejection in &rejected {
                dead.inc();
                debug!(subject = %message.subject, reason = %rejection.reason, "ingest message dead-lettered");
                let reason = format!("event {}: {}", rejection.index, rejection.reason);
                dead_letter(&context, &reason, &message.subject, message.payload.clone()).await;
            }
            outcomes.push(Outcome { accepted: accepted.len(), rejected });
            envelopes.extend(accepted);
        }
        let stored = publisher.publish(envelopes).await;
        if let Err(err) = &stored {
            warn!(error = format!("{err:#}"), "ingest events not stored; requesters are told");
        }
        for (message, outcome) in messages.iter().zip(outcomes) {
            let Some(reply) = &message.reply else { continue };
            let answer = match &stored {
                Ok(()) => serde_json::to_vec(&outcome)?,
                Err(err) => serde_json::to_vec(&serde_json::json!({ "error": format!("not stored: {err:#}") }))?,
            };
            if let Err(err) = context.client.publish(reply.clone(), answer.into()).await {
                warn!(error = %err, "ingest reply not sent");
            }
        }
    }
    // Drain: stop taking new messages, handle none after shutdown; core NATS holds no
    // state for us, so agents that want certainty use requests and retry.
    let _ = subscriber.unsubscribe().await;
    Ok(())
}

/// Dead-letters `payload` as it came from `subject` (where it came from, for the header),
/// with `reason`. A dead letter that cannot be stored is logged: the refusal is still
/// counted, and a requester is still told the reason.
pub(crate) async fn dead_letter(context: &Context, reason: &str, subject: &str, payload: bytes::Bytes) {
    let stored = nats::dead_letter(&context.jetstream, &context.subjects, "collector", reason, subject, payload).await;
    if let Err(err) = stored {
        warn!(error = format!("{err:#}"), reason = %reason, "dead letter not stored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_the_valid_and_names_the_invalid() {
        let payload = br#"[{"type":"task_started","task_id":"t1","worker_id":"w1"},
                           {"type":"task_started","task_id":"bad id","worker_id":"w1"},
                           {"type":"no_such_event"}]"#;
        let (accepted, rejected) = parse(payload, "test");
        assert_eq!(accepted.len(), 1);
        assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), vec![1, 2]);
        assert!(rejected[0].reason.contains("task_id"));
    }

    #[test]
    fn messagepack_and_garbage() {
        let event = serde_json::json!({"type":"task_started","task_id":"t1","worker_id":"w1","time":5});
        let packed = codec::encode(&event).expect("encodes");
        let (accepted, rejected) = parse(&packed, "test");
        assert_eq!((accepted.len(), rejected.len()), (1, 0));
        assert_eq!(accepted[0].envelope.time, 5);
        let (accepted, rejected) = parse(b"{not json", "test");
        assert_eq!((accepted.len(), rejected.len()), (0, 1));
        assert!(rejected[0].reason.starts_with("malformed JSON"));
    }
}
