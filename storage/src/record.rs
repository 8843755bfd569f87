//! The on-disk record format: a versioned, named MessagePack envelope.
//!
//! `rmp_serde::to_vec` writes structs as positional arrays, so adding or reordering a field
//! would break old data. Records are written with named fields inside `{v, kind, body}`; new
//! fields must carry `#[serde(default)]`, and a reader refuses a record from a newer schema
//! instead of guessing.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record encoding failed: {0}")]
    Encode(String),
    #[error("record is not valid MessagePack for {kind}: {detail}")]
    Decode { kind: &'static str, detail: String },
    #[error("record holds a {found}, expected a {expected}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("record of {kind} has schema version {found}, newer than this build's {supported}")]
    TooNew {
        kind: &'static str,
        found: u16,
        supported: u16,
    },
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u16,
    kind: &'a str,
    body: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    v: u16,
    kind: String,
    body: T,
}

/// Encodes `body` as a record of `kind` at schema version `v`.
pub fn encode_record<T: Serialize>(kind: &str, v: u16, body: &T) -> Result<Vec<u8>, RecordError> {
    rmp_serde::to_vec_named(&EnvelopeOut { v, kind, body })
        .map_err(|e| RecordError::Encode(e.to_string()))
}

/// Decodes a record of `kind` written at any version up to `supported`; returns the version read.
pub fn decode_record<T: DeserializeOwned>(
    kind: &'static str,
    supported: u16,
    bytes: &[u8],
) -> Result<(u16, T), RecordError> {
    let env: EnvelopeIn<T> = rmp_serde::from_slice(bytes).map_err(|e| RecordError::Decode {
        kind,
        detail: e.to_string(),
    })?;
    if env.kind != kind {
        return Err(RecordError::WrongKind {
            expected: kind,
            found: env.kind,
        });
    }
    if env.v > supported {
        return Err(RecordError::TooNew {
            kind,
            found: env.v,
            supported,
        });
    }
    Ok((env.v, env.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V1 {
        name: String,
        count: u32,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V2 {
        count: u32,
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    /// A V1 record as an older build wrote it; kept as bytes so the format cannot drift.
    const V1_FIXTURE: &[u8] = &[
        0x83, 0xa1, b'v', 0x01, 0xa4, b'k', b'i', b'n', b'd', 0xa5, b't', b'h', b'i', b'n', b'g',
        0xa4, b'b', b'o', b'd', b'y', 0x82, 0xa4, b'n', b'a', b'm', b'e', 0xa1, b'a', 0xa5, b'c',
        b'o', b'u', b'n', b't', 0x07,
    ];

    #[test]
    fn fixture_matches_what_this_build_writes() {
        let bytes = encode_record(
            "thing",
            1,
            &V1 {
                name: "a".into(),
                count: 7,
            },
        )
        .unwrap();
        assert_eq!(bytes, V1_FIXTURE);
    }

    #[test]
    fn old_records_load_into_a_newer_schema_with_defaults() {
        let (v, body): (u16, V2) = decode_record("thing", 2, V1_FIXTURE).unwrap();
        assert_eq!(v, 1);
        assert_eq!(
            body,
            V2 {
                count: 7,
                name: "a".into(),
                tags: vec![]
            }
        );
    }

    #[test]
    fn newer_wrong_kind_and_garbage_records_are_refused() {
        let bytes = encode_record(
            "thing",
            3,
            &V1 {
                name: "a".into(),
                count: 1,
            },
        )
        .unwrap();
        assert!(matches!(
            decode_record::<V1>("thing", 2, &bytes),
            Err(RecordError::TooNew { found: 3, .. })
        ));
        assert!(matches!(
            decode_record::<V1>("other", 3, &bytes),
            Err(RecordError::WrongKind { .. })
        ));
        assert!(matches!(
            decode_record::<V1>("thing", 3, &[0xc1, 0x00, 0xff]),
            Err(RecordError::Decode { .. })
        ));
    }
}
