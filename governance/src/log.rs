//! The governance log (contract section 8): every recorded action, each resolution and each
//! condition answer, hash-chained.
//!
//! An entry is `{"seq", "at", "kind", "action", "body_hash", "prev", "hash", "body"}`:
//! - `seq` counts from 1; `at` is RFC 3339 (UTC, milliseconds); `kind` is `action`,
//!   `resolution` or `answer`; `action` is the action's id (a string);
//! - `body` is what was recorded (the action, the resolution or the answer), and
//!   `body_hash = sha256_hex(canonical JSON of body)`, kept for ever even once `body` is
//!   redacted (null) because its item was destroyed;
//! - `hash = sha256_hex(prev + "\n" + canonical JSON of the entry without "hash" and "body")`,
//!   that is of `{"action","at","body_hash","kind","prev","seq"}`;
//! - the first `prev` is 64 zeros, and each later `prev` is the hash before it.
//!
//! Canonical JSON is the vote commitment's (`agora_plugins::vote::commitment`): no whitespace,
//! keys sorted by their UTF-8 bytes, strings as raw UTF-8. So anyone can recompute the chain
//! without seeing a single body, and check any body they are shown against its hash:
//! [`verify_chain`] does both, and the operator CLI reuses it.

use agora_plugins::vote::commitment::{canonical_json, sha256_hex};
use serde_json::{json, Value};

use crate::ids::ActionId;
use crate::when::{rfc3339, Millis};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Action,
    Resolution,
    Answer,
}

impl LogKind {
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Action => "action",
            LogKind::Resolution => "resolution",
            LogKind::Answer => "answer",
        }
    }
}

/// One log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub seq: u64,
    pub at: String,
    pub kind: LogKind,
    pub action: String,
    pub body_hash: String,
    pub prev: String,
    pub hash: String,
    /// `None` once redacted.
    pub body: Option<Value>,
}

/// The hashed part of an entry, as canonical JSON.
fn header(seq: u64, at: &str, kind: &str, action: &str, body_hash: &str, prev: &str) -> String {
    canonical_json(&json!({
        "action": action,
        "at": at,
        "body_hash": body_hash,
        "kind": kind,
        "prev": prev,
        "seq": seq,
    }))
}

/// `sha256_hex(prev + "\n" + header)`.
pub fn entry_hash(
    seq: u64,
    at: &str,
    kind: &str,
    action: &str,
    body_hash: &str,
    prev: &str,
) -> String {
    sha256_hex(&format!(
        "{prev}\n{}",
        header(seq, at, kind, action, body_hash, prev)
    ))
}

/// `sha256_hex(canonical JSON of body)`.
pub fn body_hash(body: &Value) -> String {
    sha256_hex(&canonical_json(body))
}

impl LogEntry {
    /// The entry after `prev` (the head hash), numbered `seq`.
    pub fn next(
        seq: u64,
        prev: &str,
        kind: LogKind,
        action: ActionId,
        at: Millis,
        body: Value,
    ) -> LogEntry {
        let at = rfc3339(at);
        let action = action.to_string();
        let body_hash = body_hash(&body);
        let hash = entry_hash(seq, &at, kind.name(), &action, &body_hash, prev);
        LogEntry {
            seq,
            at,
            kind,
            action,
            body_hash,
            prev: prev.to_string(),
            hash,
            body: Some(body),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "at": self.at,
            "kind": self.kind.name(),
            "action": self.action,
            "body_hash": self.body_hash,
            "prev": self.prev,
            "hash": self.hash,
            "body": self.body,
        })
    }

    /// The entry with its body redacted (its hash, and the chain, unchanged).
    pub fn redacted(&self) -> LogEntry {
        LogEntry {
            body: None,
            ..self.clone()
        }
    }
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log entry {index}: {reason}")]
pub struct VerifyError {
    /// Position in the list given.
    pub index: usize,
    pub seq: Option<u64>,
    pub reason: String,
}

/// Verifies entries in their JSON form, in order: each `hash` recomputed, each `prev` equal to
/// the hash before it (the first to `anchor`, or to 64 zeros when `anchor` is `None` and the
/// first `seq` is 1), `seq` counting up by one, and every non-null `body` matching its
/// `body_hash`. Returns the last hash (the head).
pub fn verify_chain(entries: &[Value], anchor: Option<&str>) -> Result<String, VerifyError> {
    let mut prev: Option<String> = anchor.map(str::to_string);
    let mut last_seq: Option<u64> = None;
    for (index, e) in entries.iter().enumerate() {
        let seq = e.get("seq").and_then(Value::as_u64);
        let fail = |reason: String| VerifyError { index, seq, reason };
        let text = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| fail(format!("'{k}' is missing or not a string")))
        };
        let seq_n = seq.ok_or_else(|| fail("'seq' is missing".into()))?;
        let (at, kind, action, bh, p, hash) = (
            text("at")?,
            text("kind")?,
            text("action")?,
            text("body_hash")?,
            text("prev")?,
            text("hash")?,
        );
        let expected_prev = match (&prev, last_seq) {
            (Some(h), _) => h.clone(),
            (None, None) if seq_n == 1 => GENESIS.to_string(),
            (None, _) => p.clone(),
        };
        if p != expected_prev {
            return Err(fail(format!(
                "prev {p} is not the hash before it ({expected_prev})"
            )));
        }
        if let Some(l) = last_seq {
            if seq_n != l + 1 {
                return Err(fail(format!("seq {seq_n} does not follow {l}")));
            }
        }
        let recomputed = entry_hash(seq_n, &at, &kind, &action, &bh, &p);
        if recomputed != hash {
            return Err(fail(format!(
                "hash {hash} does not match its entry ({recomputed})"
            )));
        }
        if let Some(body) = e.get("body").filter(|b| !b.is_null()) {
            let h = body_hash(body);
            if h != bh {
                return Err(fail(format!("body does not match body_hash ({h})")));
            }
        }
        prev = Some(hash);
        last_seq = Some(seq_n);
    }
    Ok(prev.unwrap_or_else(|| GENESIS.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain computed by hand: the canonical texts are written out literally here, and the
    /// hashes are those of the exact bytes shown, computed with `sha256sum`.
    #[test]
    fn a_hand_computed_chain() {
        let body1 = json!({"id": "1", "change": "rename", "status": "implemented"});
        // canonical: {"change":"rename","id":"1","status":"implemented"}
        assert_eq!(
            canonical_json(&body1),
            r#"{"change":"rename","id":"1","status":"implemented"}"#
        );
        let bh1 = body_hash(&body1);
        assert_eq!(
            bh1,
            sha256_hex(r#"{"change":"rename","id":"1","status":"implemented"}"#)
        );
        let e1 = LogEntry::next(1, GENESIS, LogKind::Action, ActionId(1), 0, body1.clone());
        let text1 = format!(
            "{GENESIS}\n{{\"action\":\"1\",\"at\":\"1970-01-01T00:00:00Z\",\"body_hash\":\"{bh1}\",\"kind\":\"action\",\"prev\":\"{GENESIS}\",\"seq\":1}}"
        );
        assert_eq!(e1.hash, sha256_hex(&text1));
        let body2 = json!({"action": "1", "status": "rejected", "reason": "é"});
        let e2 = LogEntry::next(2, &e1.hash, LogKind::Resolution, ActionId(1), 1500, body2);
        let text2 = format!(
            "{}\n{{\"action\":\"1\",\"at\":\"1970-01-01T00:00:01.5Z\",\"body_hash\":\"{}\",\"kind\":\"resolution\",\"prev\":\"{}\",\"seq\":2}}",
            e1.hash, e2.body_hash, e1.hash
        );
        assert_eq!(e2.at, "1970-01-01T00:00:01.5Z");
        assert_eq!(e2.hash, sha256_hex(&text2));
        // The same chain hashed outside Rust, with coreutils (`printf '%s\n%s' "$prev" "$header" |
        // sha256sum`), pinned so a change of the canonical form or of the entry layout is caught.
        assert_eq!(
            bh1,
            "87f4be5b370c852c583f55d04d8f30fb2637f263abe7f21296e43376836e7b2b"
        );
        assert_eq!(
            e1.hash,
            "18de5ad7b91d299bbe8ae2810001410e2ee41975b41b77b4aa9e74f6177fb6cb"
        );
        assert_eq!(
            e2.body_hash,
            "c80583af976dc379d1098985c162b3e5f73de1a7703eff40a497ba931d5a2cd5"
        );
        assert_eq!(
            e2.hash,
            "1eae82a673dc08e2c156b09b38a7b24e9419734e869a246223e354668e3006e3"
        );
        let chain = vec![e1.to_json(), e2.to_json()];
        assert_eq!(verify_chain(&chain, None).unwrap(), e2.hash);
        // Redacted bodies still verify; the chain does not need them.
        let redacted = vec![e1.redacted().to_json(), e2.redacted().to_json()];
        assert_eq!(verify_chain(&redacted, None).unwrap(), e2.hash);
        // A verifier may start in the middle, from a known hash.
        assert_eq!(verify_chain(&chain[1..], Some(&e1.hash)).unwrap(), e2.hash);
    }

    #[test]
    fn tampering_is_found() {
        let e1 = LogEntry::next(1, GENESIS, LogKind::Action, ActionId(1), 0, json!({"a": 1}));
        let e2 = LogEntry::next(
            2,
            &e1.hash,
            LogKind::Answer,
            ActionId(2),
            5,
            json!({"b": 2}),
        );
        let mut bad_body = vec![e1.to_json(), e2.to_json()];
        bad_body[1]["body"] = json!({"b": 3});
        assert_eq!(verify_chain(&bad_body, None).unwrap_err().index, 1);
        let mut bad_seq = vec![e1.to_json(), e2.to_json()];
        bad_seq[1]["seq"] = json!(3);
        assert!(verify_chain(&bad_seq, None).is_err());
        let mut bad_prev = vec![e1.to_json(), e2.to_json()];
        bad_prev[0]["prev"] = json!("1".repeat(64));
        assert_eq!(verify_chain(&bad_prev, None).unwrap_err().index, 0);
        let swapped = vec![e2.to_json(), e1.to_json()];
        assert!(verify_chain(&swapped, None).is_err());
        assert_eq!(verify_chain(&[], None).unwrap(), GENESIS);
    }
}
