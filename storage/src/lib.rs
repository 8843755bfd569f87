//! Durable storage for one Agora node.
//!
//! `storage` knows nothing of actors or governance: it offers an ordered key-value [`Engine`]
//! (sled on disk, or an in-memory map for tests), a [`Committer`] that turns many concurrent
//! writers into one flush (group commit), and the versioned record format every persisted value
//! uses, and the backup file (a consistent copy of every pair). The runtime decides what
//! the keys mean.

mod backup;
mod committer;
mod engine;
mod record;

pub use backup::{read_snapshot, write_snapshot, BackupError};
pub use committer::{CommitSeq, Committer, CommitterStats, OnDurable, Replicator};
pub use engine::{Engine, MemEngine, Pairs, SledEngine, Visit, WriteBatch};
pub use record::{decode_record, encode_record, RecordError};

/// Errors at the storage boundary.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O error: {0}")]
    Io(String),
    #[error("the committer has stopped")]
    Stopped,
    #[error("an earlier commit failed; the node refuses writes until restarted: {0}")]
    Failed(String),
    /// The replica refused the commit (lease lost, replica unreachable); nothing was written.
    #[error("the commit was not accepted: {0}")]
    Rejected(String),
}

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        StorageError::Io(e.to_string())
    }
}
