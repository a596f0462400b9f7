//! The event feed of a stateful service: its last snapshot, then FLEET_EVENTS in order from
//! the sequence after it. The service folds each event into its state and saves snapshots
//! now and then, so a restart replays only the tail.

use crate::codec;
use crate::envelope::Envelope;
use crate::event::Event;
use crate::nats::{self, Stream};
use crate::service::Context;
use crate::snapshot::{Layout, Snapshot, Snapshots};
use crate::telemetry::Counter;
use anyhow::Context as _;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{error, info, warn};

pub struct EventFeed {
    context: Context,
    service: String,
    messages: async_nats::jetstream::consumer::pull::Ordered,
    snapshots: Snapshots,
    /// The last sequence handed out: what a snapshot taken now reflects.
    pub last_seq: u64,
    undecodable: Counter,
    /// Which events, by subject, the service folds (all unless told).
    keep: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

impl EventFeed {
    /// Restores the service's state from its snapshot (or the default) and opens the feed
    /// right after it.
    pub async fn open<T: DeserializeOwned + Default + Layout>(
        context: &Context,
        service: &'static str,
    ) -> anyhow::Result<(Self, T)> {
        Self::open_part(context, service, Box::new(|_: &str| true)).await
    }

    /// [`Self::open`] under its own snapshot name, handing out only the events whose
    /// subject `keep` accepts (a fleet partition's); the others are skipped undecoded, but
    /// `last_seq` moves past them.
    pub async fn open_part<T: DeserializeOwned + Default + Layout>(
        context: &Context,
        service: &str,
        keep: Box<dyn Fn(&str) -> bool + Send + Sync>,
    ) -> anyhow::Result<(Self, T)> {
        let stream = Stream::Events.ensure(&context.jetstream, &context.subjects, &context.nats).await?;
        let snapshots = Snapshots::open(&context.jetstream, &context.subjects, context.nats.replicas, service).await?;
        let (last_seq, state) = match snapshots.load::<T>().await? {
            Some(snapshot) => (snapshot.seq, snapshot.state),
            None => (0, T::default()),
        };
        info!(service, from_seq = last_seq + 1, "replaying events after the snapshot");
        let first = stream.cached_info().state.first_sequence;
        if first > last_seq + 1 && stream.cached_info().state.messages > 0 {
            warn!(
                service,
                missing_from = last_seq + 1,
                missing_to = first - 1,
                "FLEET_EVENTS no longer holds these events (aged out): the state misses what they said"
            );
        }
        let messages = nats::read_in_order(&stream, last_seq + 1).await?;
        let feed = Self {
            context: context.clone(),
            service: service.to_owned(),
            messages,
            snapshots,
            last_seq,
            undecodable: context
                .counters
                .counter(&format!("{}_events_undecodable_total", service.split('-').next().unwrap_or(service))),
            keep,
        };
        Ok((feed, state))
    }

    /// The next event and its stream sequence. An event that does not decode is
    /// dead-lettered, counted and skipped. A read error (the server restarting, say) is
    /// logged and the read goes on after a moment: the ordered consumer re-creates itself.
    /// `None` when the feed ends.
    pub async fn next(&mut self) -> Option<(u64, Envelope<Event>)> {
        loop {
            let message = match self.messages.next().await? {
                Ok(message) => message,
                Err(err) => {
                    warn!(service = self.service, error = %err, "reading the events stream");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let seq = match message.info() {
                Ok(info) => info.stream_sequence,
                Err(err) => {
                    warn!(service = self.service, error = %err, "event without stream info skipped");
                    continue;
                }
            };
            self.last_seq = seq;
            if !(self.keep)(&message.subject) {
                continue;
            }
            match codec::decode_envelope::<Event>(&message.payload) {
                Ok(envelope) => return Some((seq, envelope)),
                Err(err) => {
                    self.undecodable.inc();
                    error!(seq, subject = %message.subject, error = %err, "undecodable event skipped");
                    let reason = format!("seq {seq}: {err}");
                    let dead_letter = nats::dead_letter(
                        &self.context.jetstream,
                        &self.context.subjects,
                        &self.service,
                        &reason,
                        &message.subject,
                        message.payload.clone(),
                    );
                    if let Err(err) = dead_letter.await {
                        // The bytes stay in the events stream itself; nothing is lost.
                        warn!(seq, error = format!("{err:#}"), "dead letter not stored");
                    }
                }
            }
        }
    }

    /// The periodic snapshot: a failure is logged and the previous snapshot stands (a
    /// restart then replays a longer tail).
    pub async fn checkpoint<T: Serialize + Layout>(&mut self, state: &T) {
        if let Err(err) = self.save(state).await {
            warn!(error = format!("{err:#}"), "snapshot not saved");
        }
    }

    /// The snapshot at a clean stop, tried for a few seconds (a NATS cluster electing a new
    /// leader refuses writes meanwhile), then given up with a warning: the last periodic
    /// snapshot stands and the next start replays the rest, so nothing is lost either way.
    pub async fn save_final<T: Serialize + Layout>(&mut self, state: &T) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut delay = std::time::Duration::from_millis(100);
        loop {
            match self.save(state).await {
                Ok(()) => return,
                Err(err) if std::time::Instant::now() + delay < deadline => {
                    warn!(error = format!("{err:#}"), "final snapshot not saved yet, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(1));
                }
                Err(err) => {
                    warn!(
                        error = format!("{err:#}"),
                        "final snapshot not saved; the next start replays from the last one"
                    );
                    return;
                }
            }
        }
    }

    /// Saves `state` as reflecting everything up to [`Self::last_seq`]. (`&mut`: the feed
    /// is not `Sync`, and a shared borrow held across the await would make the future `!Send`.)
    pub async fn save<T: Serialize + Layout>(&mut self, state: &T) -> anyhow::Result<()> {
        let snapshot = Snapshot { seq: self.last_seq, time: crate::now_ms(), layout: T::LAYOUT, state };
        self.snapshots.save(&snapshot).await.with_context(|| format!("saving the {} snapshot", self.service))
    }
}
