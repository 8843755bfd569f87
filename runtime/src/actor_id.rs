//! Actor identity and its partition.
//!
//! The partition function is part of the on-disk and on-the-wire contract (ids embed it, the
//! cluster places by it), so it is a fixed FNV-1a hash, never std's seeded hasher.

use std::fmt;

/// Fixed number of partitions. Changing it changes where every actor lives.
pub const PARTITIONS: u32 = 256;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId {
    pub kind: &'static str,
    pub key: String,
    /// Where the actor's records live (see `VirtualActor::partition`).
    pub partition: u32,
}

impl ActorId {
    /// An id placed by hashing its key (what most actor kinds do).
    pub fn new(kind: &'static str, key: impl Into<String>) -> Self {
        let key = key.into();
        let partition = partition_of(&key);
        Self {
            kind,
            key,
            partition,
        }
    }

    pub fn in_partition(mut self, partition: u32) -> Self {
        self.partition = partition % PARTITIONS;
        self
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.key)
    }
}

/// FNV-1a, 64 bit: stable across builds, platforms and releases.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The partition of a placement key (a community slug groups a community's actors).
pub fn partition_of(placement_key: &str) -> u32 {
    (stable_hash(placement_key.as_bytes()) % u64::from(PARTITIONS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_function_never_changes() {
        // Pinned values: a change here moves every actor and breaks every stored id.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(partition_of("bench"), partition_of("bench"));
        assert!(partition_of("bench") < PARTITIONS);
    }
}
