//! Durable messages between actors: what a sender writes, what a receiver gets, and how a
//! message travels between nodes.
//!
//! A handler sends with [`crate::Effects::send_to`]. The message becomes an entry under the
//! sender's partition (`P<p> a/<seq>`), in the same atomic batch as the sender's state change,
//! so it exists exactly when that change does and moves with it on failover. The deliverer
//! ([`crate::courier`]) hands it to the receiver's activation, which handles it
//! ([`crate::VirtualActor::on_message`]) and commits, in one batch, whatever the handler did
//! and a receipt (`P<q> r/...`) naming the message. A delivery that finds the receipt answers
//! "already handled" without calling the handler again. Only once the receiver's commit is
//! durable does the deliverer remove the sender's entry: at least once delivery, exactly once
//! handling.
//!
//! Payloads are the storage record format (`{v, kind, body}`, MessagePack with named fields),
//! so a message type can grow fields with defaults and old entries still decode.

use agora_storage::{decode_record, encode_record, RecordError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::actor_id::ActorId;
use crate::cluster::rpc::serde_bytes_compat;

/// A message type actors send each other durably.
///
/// ```ignore
/// #[derive(Serialize, Deserialize)]
/// struct VoteClosed { process: String, passed: bool }
/// impl ActorMessage for VoteClosed { const KIND: &'static str = "vote_closed"; }
/// ```
pub trait ActorMessage: Serialize + DeserializeOwned {
    /// Names the message type in its envelope. Stored with every pending message: never rename.
    const KIND: &'static str;
    /// The schema version written. Readers accept any version up to theirs; add fields only
    /// with `#[serde(default)]`.
    const VERSION: u16 = 1;
}

/// A durable message as its receiver gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Unique per message (128 random bits, hex), the same on every redelivery.
    pub id: String,
    /// The sending actor's kind and key.
    pub from_kind: String,
    pub from_key: String,
    /// The sender's clock when it committed the message.
    pub sent_ms: u64,
    /// [`ActorMessage::KIND`] of the payload.
    pub message_kind: String,
    pub(crate) payload: Vec<u8>,
}

impl Delivery {
    /// Whether the payload is an `M`.
    pub fn is<M: ActorMessage>(&self) -> bool {
        self.message_kind == M::KIND
    }

    /// Decodes the payload as an `M`; refuses another message type or a newer schema.
    pub fn decode<M: ActorMessage>(&self) -> Result<M, RecordError> {
        decode_record::<M>(M::KIND, M::VERSION, &self.payload).map(|(_, m)| m)
    }
}

/// What became of one delivery attempt that reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Handled now; the receiver's commit (with the receipt) is durable.
    Handled,
    /// Handled before (the receipt exists): nothing ran again.
    Duplicate,
    /// Older than the delivery window and never handled: refused, so the sender drops it.
    Expired,
}

/// A message as the sender's handler recorded it, before commit.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub to: ActorId,
    pub message_kind: &'static str,
    pub payload: Vec<u8>,
}

impl Outgoing {
    pub fn new<M: ActorMessage>(to: ActorId, msg: &M) -> Result<Self, RecordError> {
        Ok(Outgoing {
            to,
            message_kind: M::KIND,
            payload: encode_record(M::KIND, M::VERSION, msg)?,
        })
    }
}

/// A pending message as stored under the sender's partition, and as sent to the receiver's
/// node in a cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct MessageRecord {
    pub id: String,
    pub from_kind: String,
    pub from_key: String,
    pub to_kind: String,
    pub to_key: String,
    pub message_kind: String,
    pub sent_ms: u64,
    #[serde(with = "serde_bytes_compat")]
    pub payload: Vec<u8>,
}

const RECORD_KIND: &str = "actor_message";
const RECORD_VERSION: u16 = 1;

impl MessageRecord {
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        encode_record(RECORD_KIND, RECORD_VERSION, self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        decode_record(RECORD_KIND, RECORD_VERSION, bytes).map(|(_, r)| r)
    }

    pub fn delivery(&self) -> Delivery {
        Delivery {
            id: self.id.clone(),
            from_kind: self.from_kind.clone(),
            from_key: self.from_key.clone(),
            sent_ms: self.sent_ms,
            message_kind: self.message_kind.clone(),
            payload: self.payload.clone(),
        }
    }

    /// Messages from one sender to one receiver share this key and go out in commit order.
    pub fn ordering_key(&self) -> String {
        format!(
            "{}/{}\0{}/{}",
            self.from_kind, self.from_key, self.to_kind, self.to_key
        )
    }
}

/// A receipt's value: enough to say when it may be swept and what it was for.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct ReceiptRecord {
    pub from_kind: String,
    pub from_key: String,
    pub handled_ms: u64,
}

pub(crate) const RECEIPT_KIND: &str = "receipt";
pub(crate) const RECEIPT_VERSION: u16 = 1;

/// A receipt the receiver's commit will write.
#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    pub id: String,
    pub sent_ms: u64,
    pub record: ReceiptRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Ping {
        n: u32,
    }
    impl ActorMessage for Ping {
        const KIND: &'static str = "ping";
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct PingV2 {
        n: u32,
        #[serde(default)]
        note: String,
    }
    impl ActorMessage for PingV2 {
        const KIND: &'static str = "ping";
        const VERSION: u16 = 2;
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Pong {}
    impl ActorMessage for Pong {
        const KIND: &'static str = "pong";
    }

    /// A stored message as this build writes it: a `Ping { n: 7 }` from `a/1` to `b/2`. Kept
    /// as bytes so the stored format cannot drift unnoticed.
    const FIXTURE: &[u8] = &[
        0x83, 0xa1, 0x76, 0x01, 0xa4, 0x6b, 0x69, 0x6e, 0x64, 0xad, 0x61, 0x63, 0x74, 0x6f, 0x72,
        0x5f, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0x88, 0xa2,
        0x69, 0x64, 0xa2, 0x69, 0x64, 0xa9, 0x66, 0x72, 0x6f, 0x6d, 0x5f, 0x6b, 0x69, 0x6e, 0x64,
        0xa1, 0x61, 0xa8, 0x66, 0x72, 0x6f, 0x6d, 0x5f, 0x6b, 0x65, 0x79, 0xa1, 0x31, 0xa7, 0x74,
        0x6f, 0x5f, 0x6b, 0x69, 0x6e, 0x64, 0xa1, 0x62, 0xa6, 0x74, 0x6f, 0x5f, 0x6b, 0x65, 0x79,
        0xa1, 0x32, 0xac, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x5f, 0x6b, 0x69, 0x6e, 0x64,
        0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa7, 0x73, 0x65, 0x6e, 0x74, 0x5f, 0x6d, 0x73, 0x05, 0xa7,
        0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0xc4, 0x17, 0x83, 0xa1, 0x76, 0x01, 0xa4, 0x6b,
        0x69, 0x6e, 0x64, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0x81, 0xa1,
        0x6e, 0x07,
    ];

    fn record() -> MessageRecord {
        let out = Outgoing::new(ActorId::new("b", "2"), &Ping { n: 7 }).unwrap();
        MessageRecord {
            id: "id".into(),
            from_kind: "a".into(),
            from_key: "1".into(),
            to_kind: out.to.kind.into(),
            to_key: out.to.key.clone(),
            message_kind: out.message_kind.into(),
            sent_ms: 5,
            payload: out.payload,
        }
    }

    #[test]
    fn a_stored_message_keeps_its_format_and_decodes_into_a_newer_schema() {
        assert_eq!(record().encode().unwrap(), FIXTURE);
        let rec = MessageRecord::decode(FIXTURE).unwrap();
        assert_eq!(rec, record());
        let d = rec.delivery();
        assert!(d.is::<Ping>());
        assert!(!d.is::<Pong>());
        assert_eq!(d.decode::<Ping>().unwrap(), Ping { n: 7 });
        // A newer build reads the old payload with the new field defaulted.
        assert_eq!(
            d.decode::<PingV2>().unwrap(),
            PingV2 {
                n: 7,
                note: String::new()
            }
        );
        // The wrong type is refused, not guessed.
        assert!(matches!(
            d.decode::<Pong>(),
            Err(RecordError::WrongKind { .. })
        ));
    }

    #[test]
    fn a_payload_from_a_newer_schema_is_refused() {
        let out = Outgoing::new(
            ActorId::new("b", "2"),
            &PingV2 {
                n: 1,
                note: "x".into(),
            },
        )
        .unwrap();
        let d = Delivery {
            id: "i".into(),
            from_kind: "a".into(),
            from_key: "1".into(),
            sent_ms: 0,
            message_kind: out.message_kind.into(),
            payload: out.payload,
        };
        assert!(matches!(
            d.decode::<Ping>(),
            Err(RecordError::TooNew { found: 2, .. })
        ));
    }
}
