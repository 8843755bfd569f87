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

/// The `n`th id of a namespace, placed in `partition`: ids that embed their partition let an
/// actor keyed by an id (a process, a plugin instance) live with the community it belongs to,
/// and let anyone holding only the id find that partition. Part of the on-disk and on-the-wire
/// contract, like [`partition_of`]: this is the one place that knows the encoding.
pub fn id_in_partition(n: u64, partition: u32) -> u64 {
    n * u64::from(PARTITIONS) + u64::from(partition % PARTITIONS)
}

/// The partition an id made by [`id_in_partition`] lives in.
pub fn partition_of_id(id: u64) -> u32 {
    (id % u64::from(PARTITIONS)) as u32
}

/// The partition of an actor keyed by such an id (its decimal text); a key that is not an id
/// is placed by its hash like any other.
pub fn partition_of_id_key(key: &str) -> u32 {
    key.parse::<u64>()
        .map(partition_of_id)
        .unwrap_or_else(|_| partition_of(key))
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

    #[test]
    fn ids_carry_their_partition() {
        // Pinned: stored ids and Location URLs depend on this encoding.
        assert_eq!(id_in_partition(77, 5), 77 * 256 + 5);
        for p in [0, 1, 255] {
            for n in [0, 1, 1 << 40] {
                assert_eq!(partition_of_id(id_in_partition(n, p)), p);
            }
        }
        assert_eq!(partition_of_id_key("19717"), partition_of_id(19717));
        assert_eq!(partition_of_id_key("acme"), partition_of("acme"));
    }
}
