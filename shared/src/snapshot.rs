//! Snapshots of a stateful service (its state and the stream sequence it reflects), kept
//! in a JetStream object store so that a restart replays only the tail of the stream.
//!
//! Each snapshot carries its state's [`Layout`]. A service reads only a snapshot of its own
//! layout: one written by another version, older or newer, is set aside and the state
//! rebuilt by replaying the stream, never misread.

use crate::codec;
use crate::subjects::Subjects;
use anyhow::Context as _;
use async_nats::jetstream::{self, object_store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt;
use tracing::warn;

/// A state that is snapshotted. Bump `LAYOUT` with any change to what the state's encoding
/// holds or means; a change a reader of the old snapshot would get wrong is such a change.
pub trait Layout {
    const LAYOUT: u32;
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Snapshot<T> {
    /// The last stream sequence folded into `state`; replay resumes after it.
    pub seq: u64,
    /// Wall-clock time it was taken, ms since the epoch.
    pub time: i64,
    /// The state's [`Layout::LAYOUT`]; 0 for a snapshot from before layouts were kept, read
    /// as layout 1, which it is.
    #[serde(default)]
    pub layout: u32,
    pub state: T,
}

/// What a snapshot says of itself, read before its state.
#[derive(serde::Deserialize)]
struct Header {
    seq: u64,
    #[serde(default)]
    layout: u32,
}

pub struct Snapshots {
    store: object_store::ObjectStore,
    name: String,
}

impl Snapshots {
    /// Opens (or creates) the snapshot bucket; `name` is the object, one per service.
    pub async fn open(
        js: &jetstream::Context,
        subjects: &Subjects,
        replicas: usize,
        name: &str,
    ) -> anyhow::Result<Self> {
        let bucket = subjects.snapshot_bucket();
        let store = match js.get_object_store(&bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some("fleetwatch: service snapshots".into()),
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .with_context(|| format!("creating object store {bucket}"))?,
        };
        Ok(Self { store, name: name.to_owned() })
    }

    /// The last snapshot, or `None` when there is none or it no longer decodes (the
    /// service then rebuilds from the whole stream, which is slower but right).
    pub async fn load<T: DeserializeOwned + Layout>(&self) -> anyhow::Result<Option<Snapshot<T>>> {
        // On a cluster the bucket answers only once its replicas have formed (just after it is
        // created, or while a new leader is elected): until then a read finds no responders.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut delay = std::time::Duration::from_millis(50);
        let mut object = loop {
            match self.store.get(&self.name).await {
                Ok(object) => break object,
                Err(err) if err.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
                Err(err) if std::time::Instant::now() + delay < deadline => {
                    warn!(error = %err, snapshot = %self.name, "the snapshot bucket does not answer yet, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(1));
                }
                Err(err) => return Err(err).context("reading the snapshot"),
            }
        };
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.context("reading the snapshot")?;
        match codec::decode::<Header>(&bytes) {
            // Before layouts were kept the states were what layout 1 is.
            Ok(header) if header.layout != T::LAYOUT && !(header.layout == 0 && T::LAYOUT == 1) => {
                warn!(
                    snapshot = %self.name,
                    seq = header.seq,
                    found = header.layout,
                    expected = T::LAYOUT,
                    "the snapshot is another version's layout, rebuilding from the stream"
                );
                return Ok(None);
            }
            _ => {}
        }
        match codec::decode(&bytes) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(err) => {
                warn!(error = %err, snapshot = %self.name, "snapshot does not decode, rebuilding from the stream");
                Ok(None)
            }
        }
    }

    pub async fn save<T: Serialize>(&self, snapshot: &Snapshot<T>) -> anyhow::Result<()> {
        let bytes = codec::encode(snapshot)?;
        self.store.put(self.name.as_str(), &mut bytes.as_ref()).await.context("writing the snapshot")?;
        Ok(())
    }
}
