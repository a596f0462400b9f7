//! Moving each stream into the archive: pull, shape, commit with the stream position, ack.
//! And how far behind each stream the archive is.

use crate::decode::{Counts, Shaper};
use crate::rollup::Progress;
use crate::store::Store;
use async_nats::jetstream::consumer;
use futures::StreamExt;
use shared::nats::Stream;
use shared::now_ms;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// One stream the archiver moves into the file.
#[derive(Clone)]
pub struct Source {
    pub which: Stream,
    pub name: String,
    pub stream: async_nats::jetstream::stream::Stream,
}

/// The durable consumer on each stream: one archiver reads it at a time (the lease), since
/// with `AckPolicy::All` one reader's ack would cover another's uncommitted messages.
pub const CONSUMER: &str = "archiver";

/// Where an active archiver reads one stream from: the archive's committed offset, and the
/// durable consumer made anew just after it.
pub struct Reading {
    pub source: Source,
    pub consumer: consumer::PullConsumer,
    pub offset: u64,
}

/// Makes the consumer anew just after the archive's offset, each time an archiver becomes
/// active. Messages an earlier holder pulled but never committed are then delivered first,
/// not after `ack_wait` behind newer ones, where the ack of a newer chunk (`AckPolicy::All`)
/// would have covered them unarchived.
async fn try_reading(source: &Source, store: &Store) -> anyhow::Result<Reading> {
    let offset = store.offset(&source.name).await?;
    // Absent (a first start) is fine; anything else shows up in the create below.
    let _ = source.stream.delete_consumer(CONSUMER).await;
    let deliver_policy = match offset {
        0 => consumer::DeliverPolicy::All,
        offset => consumer::DeliverPolicy::ByStartSequence { start_sequence: offset + 1 },
    };
    // No subject filter, though heartbeats are mostly skipped: filtering on the server over
    // several subjects cost nats-server 6 µs a message (archive-bench), more than sending
    // them along.
    let config = consumer::pull::Config {
        durable_name: Some(CONSUMER.into()),
        ack_policy: consumer::AckPolicy::All,
        ack_wait: Duration::from_secs(60),
        max_ack_pending: 100_000,
        deliver_policy,
        ..Default::default()
    };
    let consumer = source.stream.create_consumer(config).await?;
    Ok(Reading { source: source.clone(), consumer, offset })
}

/// Moves one stream into the archive, batch by batch, until `active` ends, from where
/// [`reading`] placed it; reads again from the archive's offset when a delivery skips.
pub async fn archive(
    Reading { source, consumer, mut offset }: Reading,
    mut shaper: Shaper,
    store: Store,
    counters: shared::telemetry::Registry,
    progress: Progress,
    batch_max: usize,
    active: CancellationToken,
) -> anyhow::Result<()> {
    let archived = counters.counter("archiver_messages_archived_total");
    let commits = counters.counter("archiver_commits_total");
    let gaps = counters.counter("archiver_delivery_gaps_total");
    let counts = Counts {
        undecodable: counters.counter("archiver_messages_skipped_total"),
        late: counters.counter("archiver_late_rows_total"),
        heartbeats_seen: counters.counter("archiver_heartbeats_seen_total"),
        heartbeats_kept: counters.counter("archiver_heartbeats_kept_total"),
    };
    let stream_name = source.name.clone();
    let mut messages = pull(&consumer, batch_max).await?;
    // The stream sequence the next new message must have: none just after the consumer is
    // made, where the first may come later (what was before it aged out of the stream).
    let mut next: Option<u64> = None;
    // One commit in flight (it acks its chunk when done) while the next chunk is pulled and
    // shaped: commits and acks stay in stream order, and pulling and folding overlap DuckDB.
    let mut in_flight: Option<tokio::task::JoinHandle<bool>> = None;
    loop {
        let chunk = tokio::select! {
            biased;
            _ = active.cancelled() => break,
            chunk = next_chunk(&mut messages, batch_max, LINGER) => match chunk {
                Some(chunk) => chunk,
                None => break,
            },
        };
        let mut fresh = Vec::with_capacity(chunk.len());
        let mut last = None;
        let mut gap = None;
        for message in chunk {
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    // Missed heartbeats and reconnects: the consumer carries on by itself.
                    warn!(stream = %stream_name, error = %err, "pull consumer hiccup");
                    continue;
                }
            };
            let Ok(info) = message.info() else { continue };
            if info.stream_sequence > offset {
                // Messages the consumer counts as delivered never came (a server failed over
                // with them in flight): an ack past them (`AckPolicy::All`) would lose them.
                if let Some(expected) = next.filter(|&expected| expected != info.stream_sequence) {
                    gap = Some((expected, info.stream_sequence));
                    break;
                }
                next = Some(info.stream_sequence + 1);
                fresh.push((info.stream_sequence, message.subject.to_string(), message.payload.clone()));
            }
            last = Some(message);
        }
        if let Some(last) = last {
            let shaped = match fresh.last() {
                Some(&(seq, _, _)) => Some((seq, shaper.shape(&fresh, seq, &counts, &progress)?)),
                None => None,
            };
            if !settled(&mut in_flight).await {
                return Ok(());
            }
            match shaped {
                Some((seq, batches)) => {
                    let (store, active, name) = (store.clone(), active.clone(), stream_name.clone());
                    let (archived, commits, rows) = (archived.clone(), commits.clone(), fresh.len() as u64);
                    in_flight = Some(tokio::spawn(async move {
                        // While DuckDB refuses the batch (a full disk, say) nothing is acked, so nothing is lost.
                        let what = format!("archiving {name} up to {seq}");
                        let committed = shared::service::retry_until_done(&what, &active, || {
                            store.append(&name, seq, batches.clone())
                        })
                        .await;
                        if committed {
                            archived.add(rows);
                            commits.inc();
                            ack(&name, &last).await;
                        }
                        committed
                    }));
                    offset = seq;
                }
                // Only redeliveries: acked at once, in order, since nothing is in flight.
                None => ack(&stream_name, &last).await,
            }
        }
        if let Some((expected, got)) = gap {
            gaps.inc();
            warn!(stream = %stream_name, expected, got, "messages missing from the delivery; reading again from the archive's offset");
            // Committed first: the consumer is made again just after the committed offset.
            if !settled(&mut in_flight).await {
                return Ok(());
            }
            let Some(again) = reading(&source, &store, &active).await else { break };
            (messages, offset, next) = (pull(&again.consumer, batch_max).await?, again.offset, None);
        }
    }
    if !settled(&mut in_flight).await {
        return Ok(());
    }
    // Heartbeats held back at a clean stop are kept: one too many is always safe.
    if let Shaper::Events(keeper) = &mut shaper {
        let batches = keeper.drain()?;
        store.append(&stream_name, offset, batches).await?;
    }
    Ok(())
}

/// Waits for the commit in flight, if any: false if it ended without committing (`active`
/// ended first).
async fn settled(in_flight: &mut Option<tokio::task::JoinHandle<bool>>) -> bool {
    match in_flight.take() {
        Some(previous) => previous.await.unwrap_or(false),
        None => true,
    }
}

/// Pulls as many as a transaction takes, so a lagging archiver commits big batches.
async fn pull(consumer: &consumer::PullConsumer, batch_max: usize) -> anyhow::Result<consumer::pull::Stream> {
    Ok(consumer.stream().max_messages_per_batch(batch_max).heartbeat(Duration::from_secs(5)).messages().await?)
}

/// [`try_reading`] until it succeeds: a cluster electing a leader may not answer in time.
/// `None` once `active` ends.
pub async fn reading(source: &Source, store: &Store, active: &CancellationToken) -> Option<Reading> {
    let what = format!("making the archive's consumer on {}", source.name);
    shared::service::retry_until_ok(&what, active, || try_reading(source, store)).await
}

/// AckPolicy::All: the last message's ack covers its chunk, and is sent only after the
/// commit. A lost ack means a redelivery, which the offset check skips.
async fn ack(stream: &str, last: &async_nats::jetstream::Message) {
    if let Err(err) = last.ack().await {
        warn!(%stream, error = %err, "ack not sent; the chunk will be redelivered and skipped");
    }
}

/// How long a batch waits for more messages before it is committed: each commit has a
/// fixed cost, so a steady trickle is written a few times a second rather than per message.
const LINGER: Duration = Duration::from_millis(250);

/// The next batch: the first message, then what else comes within `linger`, up to `max`.
async fn next_chunk<S: futures::Stream + Unpin>(
    messages: &mut S,
    max: usize,
    linger: Duration,
) -> Option<Vec<S::Item>> {
    let mut chunk = vec![messages.next().await?];
    let deadline = tokio::time::sleep(linger);
    tokio::pin!(deadline);
    while chunk.len() < max {
        tokio::select! {
            biased;
            item = messages.next() => match item {
                Some(item) => chunk.push(item),
                None => break,
            },
            _ = &mut deadline => break,
        }
    }
    Some(chunk)
}

/// Every health interval: how many messages each stream holds that are not archived yet,
/// and how old the oldest of them is (0 when caught up).
pub async fn report_lag(
    sources: Vec<Source>,
    counters: shared::telemetry::Registry,
    active: CancellationToken,
) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(shared::telemetry::HEALTH_INTERVAL);
    loop {
        tokio::select! {
            biased;
            _ = active.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        for source in &sources {
            // A stream electing its leader answers nobody, and a request waits out the
            // connection's 10 s: longer than a stop may take, so a stop ends the wait.
            let measured = tokio::select! {
                biased;
                _ = active.cancelled() => return Ok(()),
                measured = lag(source) => measured,
            };
            match measured {
                Ok((messages, seconds)) => {
                    let labels = [("stream", source.name.as_str())];
                    counters.set_gauge("archiver_lag_messages", &labels, messages as f64);
                    counters.set_gauge("archiver_lag_seconds", &labels, seconds);
                }
                Err(err) => warn!(stream = %source.name, error = format!("{err:#}"), "archive lag not measured"),
            }
        }
    }
}

async fn lag(source: &Source) -> anyhow::Result<(u64, f64)> {
    let info = source.stream.consumer_info(CONSUMER).await?;
    let messages = info.num_pending + info.num_ack_pending as u64;
    if messages == 0 {
        return Ok((0, 0.0));
    }
    // The oldest message not yet acknowledged; with a filter it may be one the archiver
    // skips, which is older still, so the figure errs on the side of more lag.
    let oldest = source.stream.get_raw_message(info.ack_floor.stream_sequence + 1).await;
    let seconds = match oldest {
        Ok(message) => {
            let time = message.time.unix_timestamp_nanos() / 1_000_000;
            ((now_ms() as i128 - time).max(0) as f64) / 1000.0
        }
        // Gone already (aged out of the stream): nothing older is waiting.
        Err(_) => 0.0,
    };
    Ok((messages, seconds))
}
