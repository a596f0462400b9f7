//! Connecting to NATS, and the JetStream streams and buckets of the contract.

use crate::codec;
use crate::config::NatsConfig;
use crate::subjects::Subjects;
use anyhow::Context as _;
use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, header::NATS_MESSAGE_ID};
use bytes::Bytes;
use serde::Serialize;
use std::time::Duration;
use tracing::{info, warn};

/// Connects with a connection name, endless reconnects and logged connection events.
/// The first connection is retried until `connect_timeout_secs` runs out, so services may
/// start before the server.
pub async fn connect(config: &NatsConfig, service: &str) -> anyhow::Result<async_nats::Client> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.connect_timeout_secs);
    let mut delay = Duration::from_millis(100);
    loop {
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("fleetwatch-{service}"))
            // Replies and deliveries come to `_INBOX.<service>.…`, so the server can let
            // each user read only its own (deploy/nats/auth.conf).
            .custom_inbox_prefix(format!("_INBOX.{service}"))
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => info!("nats connected"),
                    async_nats::Event::Disconnected => warn!("nats disconnected, reconnecting"),
                    async_nats::Event::ServerError(err) => warn!(error = %err, "nats server error"),
                    async_nats::Event::SlowConsumer(sid) => warn!(sid, "nats slow consumer, messages dropped"),
                    async_nats::Event::Closed => info!("nats connection closed"),
                    other => info!(event = %other, "nats event"),
                }
            });
        options = authenticate(options, config).await?;
        // `nats://a:4222,nats://b:4222`: any of a cluster's servers will do to start with.
        let servers: Vec<&str> = config.url.split(',').map(str::trim).filter(|url| !url.is_empty()).collect();
        match options.connect(servers).await {
            Ok(client) => return Ok(client),
            Err(err) if tokio::time::Instant::now() + delay < deadline => {
                warn!(url = %config.url, error = %err, "nats not reachable yet, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(err) => return Err(err).with_context(|| format!("connecting to nats at {}", config.url)),
        }
    }
}

/// Adds the configured credentials and TLS settings; more than one way to sign in is a
/// configuration error, not a guess.
async fn authenticate(
    mut options: async_nats::ConnectOptions,
    config: &NatsConfig,
) -> anyhow::Result<async_nats::ConnectOptions> {
    let ways =
        [config.credentials.is_some(), config.user.is_some(), config.token.is_some(), config.nkey_seed.is_some()];
    anyhow::ensure!(
        ways.iter().filter(|given| **given).count() <= 1,
        "nats: give one of credentials, user/password, token or nkey_seed"
    );
    if let Some(path) = &config.credentials {
        options = options
            .credentials_file(path)
            .await
            .with_context(|| format!("reading the nats credentials file {}", path.display()))?;
    }
    if let Some(user) = &config.user {
        let password = config.password.as_ref().context("nats.user needs nats.password")?;
        options = options.user_and_password(user.clone(), password.0.clone());
    }
    if let Some(token) = &config.token {
        options = options.token(token.0.clone());
    }
    if let Some(seed) = &config.nkey_seed {
        options = options.nkey(seed.0.clone());
    }
    if config.tls_required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &config.tls_ca {
        anyhow::ensure!(ca.is_file(), "nats.tls_ca {} is not a file", ca.display());
        options = options.add_root_certificates(ca.clone());
    }
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => options = options.add_client_certificate(cert.clone(), key.clone()),
        (None, None) => {}
        _ => anyhow::bail!("nats.tls_cert and nats.tls_key go together"),
    }
    Ok(options)
}

/// Publishes `value` to JetStream with `id` as `Nats-Msg-Id`, so a resend is dropped as a
/// duplicate. Returns once the server has the message (its ack is awaited).
pub async fn publish_durable<T: Serialize>(
    jetstream: &jetstream::Context,
    subject: String,
    id: &str,
    value: &T,
) -> anyhow::Result<()> {
    let ack = publish_pipelined(jetstream, subject, id, value).await?;
    ack.await.context("jetstream did not store the message")?;
    Ok(())
}

/// Like [`publish_durable`], but hands back the ack to await later, so many publishes can
/// be in flight at once.
pub async fn publish_pipelined<T: Serialize>(
    jetstream: &jetstream::Context,
    subject: String,
    id: &str,
    value: &T,
) -> anyhow::Result<jetstream::context::PublishAckFuture> {
    let payload = codec::encode(value)?;
    publish_bytes(jetstream, subject, id, payload).await
}

pub async fn publish_bytes(
    jetstream: &jetstream::Context,
    subject: String,
    id: &str,
    payload: Bytes,
) -> anyhow::Result<jetstream::context::PublishAckFuture> {
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, id);
    jetstream.publish_with_headers(subject, headers, payload).await.context("publishing to jetstream")
}

/// The streams of the contract. Each has one owner that applies its configuration
/// (`create_or_update`); every other service only makes sure it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `<prefix>.events.>`, the source of truth. Owner: collector.
    Events,
    /// `<prefix>.alerts.>`, alert history. Owner: alerter.
    Alerts,
    /// `<prefix>.metrics.>`, a short buffer for the archiver. Owner: processor.
    Metrics,
    /// `<prefix>.deadletter.>`, rejected input with the reason.
    DeadLetter,
}

const HOUR: Duration = Duration::from_secs(3600);
const MIB: i64 = 1024 * 1024;
/// The smallest cap `Stream::apply` falls back to when the disk is short.
const MIN_STREAM_BYTES: i64 = 64 * MIB;

fn lacks_storage(err: &jetstream::context::CreateStreamError) -> bool {
    use jetstream::ErrorCode;
    use jetstream::context::CreateStreamErrorKind;
    matches!(err.kind(), CreateStreamErrorKind::JetStream(e)
        if e.error_code() == ErrorCode::STORAGE_RESOURCES_EXCEEDED || e.error_code() == ErrorCode::INSUFFICIENT_RESOURCES)
}

impl Stream {
    pub fn config(self, subjects: &Subjects, nats: &NatsConfig) -> stream::Config {
        let (name, filter, max_age, max_bytes) = match self {
            Self::Events => (
                subjects.events_stream(),
                vec![subjects.events_all()],
                HOUR * nats.events_max_age_hours as u32,
                nats.events_max_mib * MIB,
            ),
            Self::Alerts => (subjects.alerts_stream(), vec![subjects.alerts_all()], HOUR * 24 * 30, 1 << 30),
            // Per-worker changes go out every tick on core NATS only; the stream keeps the
            // samples, which is what the archiver and a reader starting up need.
            Self::Metrics => (
                subjects.metrics_stream(),
                vec![
                    subjects.metrics_system(),
                    subjects.metrics_tasks(),
                    subjects.metrics_worker_samples(),
                    subjects.metrics_alert_inputs_all(),
                ],
                HOUR * nats.metrics_max_age_hours as u32,
                nats.metrics_max_mib * MIB,
            ),
            Self::DeadLetter => {
                (subjects.deadletter_stream(), vec![subjects.deadletter_all()], HOUR * 24 * 7, 256 * MIB)
            }
        };
        stream::Config {
            name,
            subjects: filter,
            max_age,
            max_bytes,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            duplicate_window: Duration::from_secs(120),
            // MessagePack with field names compresses several times over: the same disk holds
            // that much longer a history (docs/SCALING.md has the figures).
            compression: Some(stream::Compression::S2),
            num_replicas: nats.replicas,
            ..Default::default()
        }
    }

    /// Creates the stream or applies its configuration: for the stream's owner.
    pub async fn apply(
        self,
        js: &jetstream::Context,
        subjects: &Subjects,
        nats: &NatsConfig,
    ) -> anyhow::Result<stream::Stream> {
        let config = self.config(subjects, nats);
        let name = config.name.clone();
        fitted(js, config, |config| js.create_or_update_stream(config)).await?;
        js.get_stream(&name).await.with_context(|| format!("opening stream {name}"))
    }

    /// Opens the stream, creating it with the defaults if no owner has yet.
    pub async fn ensure(
        self,
        js: &jetstream::Context,
        subjects: &Subjects,
        nats: &NatsConfig,
    ) -> anyhow::Result<stream::Stream> {
        fitted(js, self.config(subjects, nats), |config| js.get_or_create_stream(config)).await
    }
}

/// Runs `create` with `config`; when JetStream cannot reserve `max_bytes`, halves it (down to
/// `MIN_STREAM_BYTES`) until it can, then takes half of that so the streams created after it
/// still fit. A disk smaller than the configured caps should cost history, not the service.
async fn fitted<T, F, Fut>(js: &jetstream::Context, mut config: stream::Config, mut create: F) -> anyhow::Result<T>
where
    F: FnMut(stream::Config) -> Fut,
    Fut: std::future::Future<Output = Result<T, jetstream::context::CreateStreamError>>,
{
    let wanted = config.max_bytes;
    // A cluster busy electing leaders, or several services creating streams at once, may not
    // answer in time: that is asked again, for as long as a first connection is tried.
    let patience = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match create(config.clone()).await {
            Ok(created) => {
                if config.max_bytes < wanted {
                    config.max_bytes = (config.max_bytes / 2).max(MIN_STREAM_BYTES);
                    let got_mib = config.max_bytes / MIB;
                    js.update_stream(&config)
                        .await
                        .with_context(|| format!("shrinking stream {} to {got_mib} MiB", config.name))?;
                    tracing::warn!(
                        stream = %config.name,
                        wanted_mib = wanted / MIB,
                        got_mib,
                        "JetStream could not reserve the configured stream size, so the stream holds less history (free disk, or set nats.events_max_mib / nats.metrics_max_mib)"
                    );
                }
                return Ok(created);
            }
            Err(err) if lacks_storage(&err) && config.max_bytes / 2 >= MIN_STREAM_BYTES => config.max_bytes /= 2,
            Err(err)
                if matches!(
                    err.kind(),
                    jetstream::context::CreateStreamErrorKind::TimedOut
                        | jetstream::context::CreateStreamErrorKind::JetStreamUnavailable
                ) && tokio::time::Instant::now() < patience =>
            {
                warn!(stream = %config.name, error = %err, "JetStream did not answer in time, asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => {
                let (name, mib) = (config.name, config.max_bytes / MIB);
                return Err(err).with_context(|| {
                    format!("creating stream {name} of up to {mib} MiB (if JetStream lacks the storage, free disk or lower nats.events_max_mib / nats.metrics_max_mib)")
                });
            }
        }
    }
}

/// The key-value bucket of current derived state: one key a thing, last value only.
pub async fn state_bucket(
    js: &jetstream::Context,
    subjects: &Subjects,
    nats: &NatsConfig,
) -> anyhow::Result<jetstream::kv::Store> {
    let bucket = subjects.state_bucket();
    if let Ok(store) = js.get_key_value(&bucket).await {
        return Ok(store);
    }
    js.create_key_value(jetstream::kv::Config {
        bucket: bucket.clone(),
        description: "fleetwatch: current fleet state, written by the processor and the alerter".into(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: nats.replicas,
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating key-value bucket {bucket}"))
}

/// Keys in the state bucket.
pub mod state_keys {
    /// The latest system metrics envelope (processor).
    pub const SYSTEM: &str = "system";
    /// The latest task metrics envelope (processor).
    pub const TASKS: &str = "tasks";
    /// The open alerts, pending and firing, with their marks (alerter).
    pub const ALERTS_FIRING: &str = "alerts.firing";
    /// A partition's open alerts (alerter partition `<i>`): `alerts.firing.part.<i>`; the
    /// fleet tier merges them into [`ALERTS_FIRING`].
    pub const ALERTS_FIRING_PART: &str = "alerts.firing.part";
    /// The silences not yet over (alerter).
    pub const ALERTS_SILENCES: &str = "alerts.silences";
    /// Who archives now: one archiver holds this lease at a time (archiver).
    pub const ARCHIVER_LEASE: &str = "lease.archiver";
    /// Before schema 2 the processor kept one key per worker under this prefix; it removes
    /// them at start (readers now take the last sample from FLEET_METRICS).
    pub const LEGACY_WORKER_PREFIX: &str = "worker.";
}

/// Publishes a dead letter: the original bytes, with the reason in headers.
pub async fn dead_letter(
    js: &jetstream::Context,
    subjects: &Subjects,
    service: &str,
    reason: &str,
    original_subject: &str,
    payload: Bytes,
) -> anyhow::Result<()> {
    let mut headers = HeaderMap::new();
    headers.insert("Fleetwatch-Reason", sanitize_header(reason).as_str());
    headers.insert("Fleetwatch-Subject", original_subject);
    js.publish_with_headers(subjects.deadletter(service), headers, payload)
        .await
        .context("publishing a dead letter")?
        .await
        .context("storing a dead letter")?;
    Ok(())
}

/// Header values are one line.
fn sanitize_header(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(1024).collect()
}

/// Reads a stream in order from `start_seq` (1 = the beginning) with an ordered consumer:
/// no server-side state, because the reader keeps its position in its own snapshot.
pub async fn read_in_order(
    stream: &stream::Stream,
    start_seq: u64,
) -> anyhow::Result<jetstream::consumer::pull::Ordered> {
    let deliver_policy = if start_seq <= 1 {
        jetstream::consumer::DeliverPolicy::All
    } else {
        jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: start_seq }
    };
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig { deliver_policy, ..Default::default() })
        .await
        .context("creating an ordered consumer")?;
    consumer.messages().await.context("reading the stream")
}
