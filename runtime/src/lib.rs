//! The Agora actor runtime: virtual actors on actix, persisted through one commit path.
//!
//! An actor is named by an [`ActorId`] (kind + key). [`Runtime::ask`] activates it on first use
//! (restoring it from storage), delivers one message at a time, and answers only once the
//! change record the message produced (state, reminders, outbox entries, index entries) is
//! flushed. Idle actors passivate; durable reminders reactivate them; the outbox delivers
//! events to drivers at least once; actors send each other durable messages
//! ([`Effects::send_to`], handled exactly once). Time comes from an injectable [`Clock`].
//! `runtime` knows nothing of governance.

mod activation;
mod actor_id;
mod aux;
mod clock;
pub mod cluster;
mod courier;
mod directory;
mod effects;
mod fault;
mod ids;
mod keys;
mod messages;
mod node;
mod outbox;
mod reminders;
mod tasks;
mod transport;

pub use actor_id::{
    id_in_partition, partition_of, partition_of_id, partition_of_id_key, ActorId, PARTITIONS,
};
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use cluster::rpc::serde_bytes_compat as msgpack_bytes;
pub use cluster::{ClusterConfig, ClusterView};
pub use courier::{MessageConfig, RECEIPT_MARGIN};
pub use effects::{Effects, OutboxMessage, Published, Reminder, RestoreAux, Stored};
pub use fault::FAULT_ENV;
pub use messages::{ActorMessage, Delivery, Outcome};
pub use node::{
    AskError, Client, JournalPage, Message, Runtime, RuntimeConfig, RuntimeStats, VirtualActor,
    EVENT_BUFFER, STALE_READS_OK,
};
pub use outbox::{
    exponential_backoff, hmac_sha256_hex, jittered, retry_after, signature, verify_hmac_sha256,
    DeliveryConfig,
};
pub use tasks::{Stop, TaskStatus, Tasks};
