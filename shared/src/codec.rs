//! MessagePack with field names (rmp-serde) for everything on the bus.

use crate::envelope::{Envelope, SCHEMA_VERSION};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DecodeError {
    /// Not MessagePack, or not the shape of the expected type.
    #[error("malformed {expected}: {source}")]
    Malformed {
        expected: &'static str,
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// Written by a newer fleetwatch than this one.
    #[error("schema version {found} is newer than the {SCHEMA_VERSION} this build reads")]
    UnsupportedSchema { found: u16 },
}

#[derive(Debug, Error)]
#[error("could not encode {what}: {source}")]
pub struct EncodeError {
    what: &'static str,
    #[source]
    source: rmp_serde::encode::Error,
}

/// Encodes with field names, so readers tolerate added and reordered fields.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, EncodeError> {
    rmp_serde::to_vec_named(value)
        .map(Bytes::from)
        .map_err(|source| EncodeError { what: std::any::type_name::<T>(), source })
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    rmp_serde::from_slice(bytes)
        .map_err(|source| DecodeError::Malformed { expected: std::any::type_name::<T>(), source })
}

/// Decodes an envelope and refuses schema versions this build does not know.
pub fn decode_envelope<T: DeserializeOwned>(bytes: &[u8]) -> Result<Envelope<T>, DecodeError> {
    let envelope: Envelope<T> = decode(bytes)?;
    if envelope.schema > SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedSchema { found: envelope.schema });
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn round_trip_and_typed_errors() {
        let envelope =
            Envelope::new(42, "test", Event::TaskStarted { task_id: "t-1".into(), worker_id: "cpu-001".into() });
        let bytes = encode(&envelope).expect("encodes");
        let back: Envelope<Event> = decode_envelope(&bytes).expect("decodes");
        assert_eq!(back, envelope);

        assert!(matches!(decode_envelope::<Event>(b"\xc1garbage"), Err(DecodeError::Malformed { .. })));

        let mut newer = envelope.clone();
        newer.schema = SCHEMA_VERSION + 1;
        let bytes = encode(&newer).expect("encodes");
        assert!(matches!(
            decode_envelope::<Event>(&bytes),
            Err(DecodeError::UnsupportedSchema { found }) if found == SCHEMA_VERSION + 1
        ));
    }
}
