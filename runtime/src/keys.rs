//! The storage key layout. Every key the runtime writes is built here, nowhere else.
//!
//! Actor keys may contain `/` (a plugin instance is `community/plugin`), so parts are joined
//! with NUL, which slugs, ids and reminder names never contain (the gateway rejects it).

use crate::actor_id::ActorId;

pub(crate) const STATE: &[u8] = b"s/";
pub(crate) const AUX: &[u8] = b"x/";
pub(crate) const ACTOR_REMINDER: &[u8] = b"m/";
pub(crate) const DUE: &[u8] = b"q/";
pub(crate) const OUTBOX: &[u8] = b"o/";
pub(crate) const INDEX: &[u8] = b"i/";
pub(crate) const IDS: &[u8] = b"n/";
pub(crate) const JOURNAL: &[u8] = b"j/";

fn actor_part(out: &mut Vec<u8>, id: &ActorId) {
    out.extend_from_slice(id.kind.as_bytes());
    out.push(0);
    out.extend_from_slice(id.key.as_bytes());
}

pub(crate) fn state(id: &ActorId) -> Vec<u8> {
    let mut k = STATE.to_vec();
    actor_part(&mut k, id);
    k
}

pub(crate) fn aux_prefix(id: &ActorId) -> Vec<u8> {
    let mut k = AUX.to_vec();
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
    let mut k = ACTOR_REMINDER.to_vec();
    actor_part(&mut k, id);
    k.push(0);
    k
}

pub(crate) fn actor_reminder(id: &ActorId, name: &str) -> Vec<u8> {
    let mut k = actor_reminders_prefix(id);
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn due(due_ms: u64, id: &ActorId, name: &str) -> Vec<u8> {
    let mut k = DUE.to_vec();
    k.extend_from_slice(&due_ms.to_be_bytes());
    actor_part(&mut k, id);
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Splits a `q/` key back into (due, kind, key, name).
pub(crate) fn parse_due(k: &[u8]) -> Option<(u64, String, String, String)> {
    let rest = k.strip_prefix(DUE)?;
    if rest.len() < 8 {
        return None;
    }
    let due = u64::from_be_bytes(rest[..8].try_into().ok()?);
    let mut parts = rest[8..].split(|b| *b == 0);
    let kind = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let key = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let name = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((due, kind, key, name))
}

pub(crate) fn outbox(seq: u64) -> Vec<u8> {
    let mut k = OUTBOX.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn parse_outbox(k: &[u8]) -> Option<u64> {
    let rest = k.strip_prefix(OUTBOX)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
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

pub(crate) fn index(key: &str) -> Vec<u8> {
    let mut k = INDEX.to_vec();
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
    fn due_keys_sort_by_time_and_parse_back() {
        let id = ActorId::new("process", "42");
        let a = due(5, &id, "close");
        let b = due(300, &ActorId::new("community", "a/b"), "x");
        assert!(a < b);
        assert_eq!(
            parse_due(&b),
            Some((300, "community".into(), "a/b".into(), "x".into()))
        );
        assert_eq!(parse_outbox(&outbox(77)), Some(77));
    }
}
