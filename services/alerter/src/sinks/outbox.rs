//! A sink's outbox: its own durable consumer on FLEET_ALERTS. A message is acked only once
//! its notification is delivered or dead-lettered; until then JetStream keeps it, and
//! redelivers it after a crash.

use super::Retry;
use super::http::Failure;
use anyhow::Context as _;
use async_nats::jetstream::consumer::{self, PullConsumer};
use async_nats::jetstream::{AckKind, Message};
use futures::StreamExt;
use shared::alert::Alert;
use shared::nats::Stream;
use shared::service::Context;
use shared::telemetry::Counter;
use shared::{Envelope, codec};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How long one pull waits for a first message before asking again.
const POLL: Duration = Duration::from_secs(5);

/// Opens (or creates) the durable consumer `name`. Created, it starts at the next alert, so
/// adding a sink does not send people the stream's 30 days of history; reopened, it goes on
/// where it was. Settings that may change (`ack_wait`) are applied each time.
pub(crate) async fn open(
    context: &Context,
    name: &str,
    ack_wait: Duration,
    max_batch: usize,
) -> anyhow::Result<PullConsumer> {
    let stream = Stream::Alerts.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
    let config = consumer::pull::Config {
        durable_name: Some(name.into()),
        description: Some("fleetwatch alerter: an alert sink's outbox".into()),
        deliver_policy: consumer::DeliverPolicy::New,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        // The sink gives up itself (dead letter); the server never drops a message.
        max_deliver: -1,
        max_ack_pending: (max_batch * 2) as i64,
        ..Default::default()
    };
    stream.create_consumer(config).await.with_context(|| format!("opening the consumer {name} on FLEET_ALERTS"))
}

/// Waits for the next message, then takes what else arrives within `wait` of it, up to
/// `max`. Every pull ends by then, so no message waits unseen in a buffer. `None` on shutdown.
pub(crate) async fn next_batch(
    consumer: &PullConsumer,
    wait: Duration,
    max: usize,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Vec<Message>>> {
    let first = loop {
        let mut pull = consumer.batch().max_messages(1).expires(POLL).messages().await.context("pulling alerts")?;
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            next = pull.next() => match next {
                Some(message) => break message.map_err(|err| anyhow::anyhow!("pulling alerts: {err}"))?,
                None => continue,
            },
        }
    };
    let deadline = Instant::now() + wait;
    let mut messages = vec![first];
    while messages.len() < max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(5) {
            break;
        }
        let mut pull = consumer
            .batch()
            .max_messages(max - messages.len())
            .expires(left)
            .messages()
            .await
            .context("pulling alerts")?;
        while let Some(message) = pull.next().await {
            messages.push(message.map_err(|err| anyhow::anyhow!("pulling alerts: {err}"))?);
        }
    }
    Ok(Some(messages))
}

/// Runs `work` while telling JetStream, every third of `ack_wait`, that `messages` are still
/// in hand, so a long retry is not mistaken for a crash.
pub(crate) async fn keep_alive<T>(messages: &[Message], ack_wait: Duration, work: impl Future<Output = T>) -> T {
    let mut beat = tokio::time::interval_at(Instant::now() + ack_wait / 3, ack_wait / 3);
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = beat.tick() => {
                for message in messages {
                    // A lost one is repeated at the next beat.
                    let _ = message.ack_with(AckKind::Progress).await;
                }
            }
        }
    }
}

/// Acks messages whose notification is done with (delivered, dead-lettered or not wanted).
pub(crate) async fn ack_all(messages: &[&Message]) {
    for message in messages {
        if let Err(err) = message.ack().await {
            // It comes back after ack_wait and is delivered again: a duplicate, not a loss.
            warn!(error = %err, "acking an alert failed");
        }
    }
}

/// The alert in a message; one that does not decode is logged and `None`.
pub(crate) fn decode(message: &Message) -> Option<Envelope<Alert>> {
    match codec::decode_envelope::<Alert>(&message.payload) {
        Ok(envelope) => Some(envelope),
        Err(err) => {
            warn!(subject = %message.subject, error = %err, "an alert that does not decode is skipped");
            None
        }
    }
}

/// What became of one delivery.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    Delivered,
    /// Given up on, with the reason: dead-letter it.
    GaveUp(String),
    /// Shutdown came first: leave the messages unacked for the next run.
    Stopped,
}

/// Tries `attempt` up to `retry.max_attempts` times, waiting `base`, `2 base`, ... (at most
/// `max`) between tries. Each failed try is counted in `failures`.
pub(crate) async fn deliver<F, Fut>(
    what: &str,
    retry: &Retry,
    failures: &Counter,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let mut delay = retry.base;
    for tried in 1..=retry.max_attempts {
        let reason = tokio::select! {
            _ = shutdown.cancelled() => return Outcome::Stopped,
            result = attempt() => match result {
                Ok(()) => return Outcome::Delivered,
                Err(Failure::Permanent(reason)) => {
                    failures.inc();
                    return Outcome::GaveUp(format!("{what}: refused, not retried: {reason}"));
                }
                Err(Failure::Transient(reason)) => reason,
            },
        };
        failures.inc();
        if tried == retry.max_attempts {
            return Outcome::GaveUp(format!("{what}: {tried} attempts failed, the last: {reason}"));
        }
        warn!(sink = what, attempt = tried, retry_in_ms = delay.as_millis() as u64, error = %reason, "delivery failed");
        tokio::select! {
            _ = shutdown.cancelled() => return Outcome::Stopped,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(retry.max);
    }
    Outcome::GaveUp(format!("{what}: no attempt allowed"))
}

/// Dead-letters what could not be delivered on `<prefix>.deadletter.alerter`, with the reason;
/// retried until stored. False if shutdown came first (the messages stay unacked).
pub(crate) async fn dead_letter(
    context: &Context,
    reason: &str,
    subject: &str,
    payload: bytes::Bytes,
    shutdown: &CancellationToken,
) -> bool {
    warn!(subject, reason, "alert notification dead-lettered");
    shared::service::retry_until_done("dead-lettering a notification", shutdown, || {
        shared::nats::dead_letter(&context.jetstream, &context.subjects, "alerter", reason, subject, payload.clone())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast(max_attempts: u32) -> Retry {
        Retry {
            max_attempts,
            base: Duration::from_millis(1),
            max: Duration::from_millis(4),
            timeout: Duration::from_secs(1),
            ack_wait: Duration::from_secs(30),
        }
    }

    async fn run(retry: Retry, fail_first: u32, failure: Failure) -> (Outcome, u32, u64) {
        let tries = Arc::new(AtomicU32::new(0));
        let failures = Counter::default();
        let outcome = deliver("test", &retry, &failures, &CancellationToken::new(), || {
            let (tries, failure) = (tries.clone(), failure.clone());
            async move { if tries.fetch_add(1, Ordering::Relaxed) < fail_first { Err(failure) } else { Ok(()) } }
        })
        .await;
        (outcome, tries.load(Ordering::Relaxed), failures.get())
    }

    #[tokio::test]
    async fn retries_until_delivered_or_out_of_attempts() {
        let transient = Failure::Transient("HTTP 500".into());
        assert_eq!(run(fast(5), 3, transient.clone()).await, (Outcome::Delivered, 4, 3));
        let (outcome, tries, failures) = run(fast(3), 10, transient).await;
        assert!(
            matches!(&outcome, Outcome::GaveUp(reason) if reason.contains("3 attempts") && reason.contains("HTTP 500"))
        );
        assert_eq!((tries, failures), (3, 3));
        let (outcome, tries, _) = run(fast(8), 10, Failure::Permanent("HTTP 401".into())).await;
        assert!(matches!(outcome, Outcome::GaveUp(_)));
        assert_eq!(tries, 1, "a refusal is not retried");
    }

    #[tokio::test]
    async fn shutdown_leaves_the_delivery_undone() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let outcome =
            deliver("test", &fast(8), &Counter::default(), &shutdown, std::future::pending::<Result<(), Failure>>)
                .await;
        assert_eq!(outcome, Outcome::Stopped);
    }
}
