//! The storage key layout. Every key the runtime writes is built here, nowhere else.
//!
//! Actor keys may contain `/` (a plugin instance is `community/plugin`), so parts are joined
//! with NUL, which slugs, ids and reminder names never contain (the gateway rejects it).
//!
//! Everything an actor writes (state, auxiliary records, reminders, outbox entries, index
//! entries) lives under its partition's prefix `P<partition u16 BE>`, so a partition can be
//! listed, copied or dropped as one key range (the cluster moves partitions between nodes).
//! Node-wide records (id blocks, the journal) have no partition.

use crate::actor_id::ActorId;

pub(crate) const STATE: &[u8] = b"s/";
pub(crate) const AUX: &[u8] = b"x/";
pub(crate) const ACTOR_REMINDER: &[u8] = b"m/";
/// The due index earlier Agoras wrote (`q/<due ms BE><kind>\0<key>\0<name>`), a second key per
/// reminder. The scheduler loads every reminder of a partition into memory anyway, so the
/// order it gave was never read; a node deletes what is left of it at start.
pub(crate) const LEGACY_DUE: &[u8] = b"q/";
pub(crate) const OUTBOX: &[u8] = b"o/";
pub(crate) const INDEX: &[u8] = b"i/";
pub(crate) const IDS: &[u8] = b"n/";
pub(crate) const JOURNAL: &[u8] = b"j/";
/// Durable messages an actor of the partition sent and that are not yet confirmed handled.
pub(crate) const MESSAGE: &[u8] = b"a/";
/// Receipts: ids of durable messages actors of the partition handled (the dedupe record).
pub(crate) const RECEIPT: &[u8] = b"r/";
const PARTITION: u8 = b'P';

/// `P<p>`: the start of every key of partition `p`.
pub fn partition(p: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.push(PARTITION);
    k.extend_from_slice(&(p as u16).to_be_bytes());
    k
}

/// `P<p><section>`, e.g. every due reminder of partition `p`.
pub(crate) fn section(p: u32, section: &[u8]) -> Vec<u8> {
    let mut k = partition(p);
    k.extend_from_slice(section);
    k
}

/// The partition a key belongs to, if it is partitioned.
pub fn partition_of_key(k: &[u8]) -> Option<u32> {
    match k {
        [PARTITION, hi, lo, ..] => Some(u32::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

/// The key without its partition prefix.
fn unpartitioned(k: &[u8]) -> Option<&[u8]> {
    partition_of_key(k).map(|_| &k[3..])
}

fn actor_part(out: &mut Vec<u8>, id: &ActorId) {
    out.extend_from_slice(id.kind.as_bytes());
    out.push(0);
    out.extend_from_slice(id.key.as_bytes());
}

pub(crate) fn state(id: &ActorId) -> Vec<u8> {
    let mut k = section(id.partition, STATE);
    actor_part(&mut k, id);
    k
}

/// Every state record of actors of `kind` in partition `p`.
pub(crate) fn states_prefix(p: u32, kind: &str) -> Vec<u8> {
    let mut k = section(p, STATE);
    k.extend_from_slice(kind.as_bytes());
    k.push(0);
    k
}

pub(crate) fn aux_prefix(id: &ActorId) -> Vec<u8> {
    let mut k = section(id.partition, AUX);
    actor_part(&mut k, id);
    k.push(0);
    k
}

pub(crate) fn aux(id: &ActorId, sub: &[u8]) -> Vec<u8> {
    let mut k = aux_prefix(id);
    k.extend_from_slice(sub);
    k
}

pub(crate) fn actor_reminders_prefix(id: &ActorId) -> Vec<u8> {
    let mut k = section(id.partition, ACTOR_REMINDER);
    actor_part(&mut k, id);
    k.push(0);
    k
}

pub(crate) fn actor_reminder(id: &ActorId, name: &str) -> Vec<u8> {
    let mut k = actor_reminders_prefix(id);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Splits an `m/` key back into (kind, key, name).
pub(crate) fn parse_actor_reminder(k: &[u8]) -> Option<(String, String, String)> {
    let rest = unpartitioned(k)?.strip_prefix(ACTOR_REMINDER)?;
    let mut parts = rest.splitn(3, |b| *b == 0);
    let kind = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let key = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let name = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((kind, key, name))
}

pub(crate) fn outbox(p: u32, seq: u64) -> Vec<u8> {
    let mut k = section(p, OUTBOX);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn parse_outbox(k: &[u8]) -> Option<u64> {
    let rest = unpartitioned(k)?.strip_prefix(OUTBOX)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// `P<p> a/<seq BE>`: a durable message sent by an actor of partition `p` (the sender's
/// partition, so the message moves with its sender's state on failover).
pub(crate) fn message(p: u32, seq: u64) -> Vec<u8> {
    let mut k = section(p, MESSAGE);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn parse_message(k: &[u8]) -> Option<u64> {
    let rest = unpartitioned(k)?.strip_prefix(MESSAGE)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// `P<p> r/<sent ms BE><message id>\0<kind>\0<key>`: receiver `id` handled message `msg_id`,
/// sent at `sent_ms`. Receipts sort by send time, so expired ones are a prefix of the section.
pub(crate) fn receipt(id: &ActorId, sent_ms: u64, msg_id: &str) -> Vec<u8> {
    let mut k = section(id.partition, RECEIPT);
    k.extend_from_slice(&sent_ms.to_be_bytes());
    k.extend_from_slice(msg_id.as_bytes());
    k.push(0);
    actor_part(&mut k, id);
    k
}

/// The send time of a receipt key.
pub(crate) fn parse_receipt(k: &[u8]) -> Option<u64> {
    let rest = unpartitioned(k)?.strip_prefix(RECEIPT)?;
    Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?))
}

pub(crate) fn journal(seq: u64) -> Vec<u8> {
    let mut k = JOURNAL.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn parse_journal(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(
        k.strip_prefix(JOURNAL)?.try_into().ok()?,
    ))
}

pub(crate) fn index(p: u32, key: &str) -> Vec<u8> {
    let mut k = section(p, INDEX);
    k.extend_from_slice(key.as_bytes());
    k
}

pub(crate) fn ids(namespace: &str) -> Vec<u8> {
    let mut k = IDS.to_vec();
    k.extend_from_slice(namespace.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back() {
        let id = ActorId::new("process", "42").in_partition(9);
        let b = actor_reminder(&ActorId::new("community", "a/b").in_partition(9), "x");
        assert_eq!(
            parse_actor_reminder(&b),
            Some(("community".into(), "a/b".into(), "x".into()))
        );
        assert_eq!(parse_actor_reminder(&state(&id)), None);
        assert_eq!(parse_outbox(&outbox(3, 77)), Some(77));
        assert_eq!(partition_of_key(&outbox(3, 77)), Some(3));
        assert_eq!(partition_of_key(&b), Some(9));
        assert_eq!(partition_of_key(&journal(1)), None);
        assert_eq!(parse_message(&message(4, 12)), Some(12));
        assert_eq!(partition_of_key(&message(4, 12)), Some(4));
        let r = receipt(&id, 1_000, "ab12");
        assert_eq!(parse_receipt(&r), Some(1_000));
        assert!(r < receipt(&id, 1_001, "00"), "receipts sort by send time");
        assert_eq!(partition_of_key(&r), Some(9));
        // Every key of a partition shares its prefix, and partitions do not interleave.
        assert!(state(&id).starts_with(&partition(9)));
        assert!(index(9, "zz") < partition(10));
    }
}
