//! The Agora actor runtime: virtual actors on actix, persisted through one commit path.
//!
//! An actor is named by an [`ActorId`] (kind + key). [`Runtime::ask`] activates it on first use
//! (restoring it from storage), delivers one message at a time, and answers only once the
//! change record the message produced (state, reminders, outbox entries, index entries) is
//! flushed. Idle actors passivate; durable reminders reactivate them; the outbox delivers
//! events to drivers at least once. `runtime` knows nothing of governance.

mod activation;
mod actor_id;
mod clock;
pub mod cluster;
mod directory;
mod effects;
mod ids;
mod keys;
mod node;
mod outbox;
mod reminders;
mod tasks;

pub use actor_id::{
    id_in_partition, partition_of, partition_of_id, partition_of_id_key, ActorId, PARTITIONS,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cluster::rpc::serde_bytes_compat as msgpack_bytes;
pub use cluster::{ClusterConfig, ClusterView};
pub use effects::{Effects, OutboxMessage, Published, Reminder, Stored};
pub use node::{
    AskError, Client, JournalPage, Message, Runtime, RuntimeConfig, RuntimeStats, VirtualActor,
    EVENT_BUFFER, STALE_READS_OK,
};
pub use outbox::DeliveryConfig;
pub use tasks::{Stop, TaskStatus, Tasks};
