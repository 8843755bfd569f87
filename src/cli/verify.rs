//! `agora verify vote`: recomputes a vote from what its node publishes (the ballot list and
//! the outcome) with the project's own code: every receipt, the canonical list, the
//! commitment, and the count itself. `agora verify log`: recomputes a community's governance
//! log chain with the engine's own code. Pure: the caller fetches, this compares.

use agora_plugins::vote::commitment::{self, Entry};
use agora_plugins::vote::{counter_for, Weight, TALLY_VERSION};
use serde_json::{json, Value};

/// Outcome fields that are not the count: compared on their own or not at all.
const NOT_COUNTED: &[&str] = &["commitment", "tally_version", "closed_at", "close_reason"];

/// What a verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub ballots: usize,
    pub commitment: String,
    /// Every difference, one line each; empty: verified.
    pub differences: Vec<String>,
    /// True when the vote is still open (no committed outcome: the live tally is compared).
    pub open: bool,
}

impl Report {
    pub fn verified(&self) -> bool {
        self.differences.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "verified": self.verified(),
            "open": self.open,
            "ballots": self.ballots,
            "commitment": self.commitment,
            "differences": self.differences,
        })
    }
}

/// Verifies `ballots` (the answer of `<Location>/ballots`) against `process` (the answer of
/// `<Location>`).
pub fn verify(ballots: &Value, process: &Value) -> Report {
    let mut r = Report::default();
    let method = ballots["method"].as_str().unwrap_or_default();
    let outcome = &process["outcome"];
    r.open = process["status"].as_str() != Some("completed");
    let published = ballots["ballots"].as_array().cloned().unwrap_or_default();
    r.ballots = published.len();

    if ballots["tally_version"] != json!(TALLY_VERSION) {
        r.differences.push(format!(
            "tally_version: published {}, this verifier counts with rules {TALLY_VERSION}",
            ballots["tally_version"]
        ));
    }
    let mut entries = Vec::with_capacity(published.len());
    for (i, b) in published.iter().enumerate() {
        let voter = b["voter"].as_str().unwrap_or_default().to_string();
        let weight = match b["weight"].as_f64().map(Weight::from_f64) {
            Some(Ok(w)) => w,
            _ => {
                r.differences.push(format!(
                    "ballot {i} ({voter}): weight {} is not a weight",
                    b["weight"]
                ));
                continue;
            }
        };
        let entry = Entry {
            voter: voter.clone(),
            weight,
            choice: b["choice"].clone(),
        };
        let receipt = commitment::receipt(&entry);
        if b["receipt"].as_str() != Some(receipt.as_str()) {
            r.differences.push(format!(
                "ballot of {voter}: receipt published {}, recomputed {receipt} (its voter, weight or choice was changed)",
                b["receipt"]
            ));
        }
        entries.push(entry);
    }
    if ballots["canonical"].as_str() != Some(commitment::canonical_list_json(&entries).as_str()) {
        r.differences
            .push("canonical: the published canonical list is not the listed ballots".into());
    }
    r.commitment = commitment::commitment(method, &entries);
    if ballots["commitment"].as_str() != Some(r.commitment.as_str()) {
        r.differences.push(format!(
            "commitment: the ballot list says {}, its ballots hash to {}",
            ballots["commitment"], r.commitment
        ));
    }
    if !r.open {
        if outcome["commitment"].as_str() != Some(r.commitment.as_str()) {
            r.differences.push(format!(
                "outcome.commitment: published {}, the ballots hash to {}",
                outcome["commitment"], r.commitment
            ));
        }
        if outcome["tally_version"] != ballots["tally_version"] {
            r.differences.push(format!(
                "outcome.tally_version: published {}, the ballot list says {}",
                outcome["tally_version"], ballots["tally_version"]
            ));
        }
    }

    // The count, again, with the project's own tally code.
    let mut counter = match counter_for(method, &ballots["method_config"]) {
        Ok(c) => c,
        Err(e) => {
            r.differences.push(format!(
                "method {method:?}: its configuration cannot be counted: {e}"
            ));
            return r;
        }
    };
    for e in &entries {
        if let Err(err) = counter.record(&e.voter, e.weight, &e.choice) {
            r.differences.push(format!(
                "ballot of {}: the choice is not valid: {err}",
                e.voter
            ));
        }
    }
    let recount = serde_json::to_value(counter.tally()).unwrap_or(Value::Null);
    compare("outcome", outcome, &recount, &mut r.differences);
    r
}

/// Adds one line per field where `published` and `recounted` differ (fields of the outcome
/// that are not the count are skipped at the top level).
fn compare(at: &str, published: &Value, recounted: &Value, out: &mut Vec<String>) {
    match (published, recounted) {
        (Value::Object(p), Value::Object(c)) => {
            let top = at == "outcome";
            let mut keys: Vec<&String> = p.keys().chain(c.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                if top && NOT_COUNTED.contains(&k.as_str()) {
                    continue;
                }
                let (pv, cv) = (p.get(k), c.get(k));
                match (pv, cv) {
                    (Some(pv), Some(cv)) => compare(&format!("{at}.{k}"), pv, cv, out),
                    (Some(pv), None) => out.push(format!(
                        "{at}.{k}: published {pv}, the recount has no such field"
                    )),
                    (None, Some(cv)) => out.push(format!("{at}.{k}: missing, recounted {cv}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(p), Value::Array(c)) if p.len() == c.len() => {
            for (i, (pv, cv)) in p.iter().zip(c).enumerate() {
                compare(&format!("{at}[{i}]"), pv, cv, out);
            }
        }
        (Value::Number(p), Value::Number(c)) => {
            let (p, c) = (
                p.as_f64().unwrap_or(f64::NAN),
                c.as_f64().unwrap_or(f64::NAN),
            );
            if (p - c).abs() > 1e-9 || p.is_nan() != c.is_nan() {
                out.push(format!("{at}: published {p}, recounted {c}"));
            }
        }
        (p, c) if p != c => out.push(format!("{at}: published {p}, recounted {c}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_and_differences_name_the_field() {
        let mut out = Vec::new();
        compare(
            "outcome",
            &json!({"tally": {"yes": 2.0, "no": 1}, "closed_at": "x", "winner": "yes"}),
            &json!({"tally": {"yes": 2, "no": 1.0}, "winner": "no"}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![r#"outcome.winner: published "yes", recounted "no""#]
        );
    }
}

/// What `verify log` found.
#[derive(Debug, Default)]
pub struct LogReport {
    pub entries: usize,
    /// The recomputed head (the last entry's hash; 64 zeros for an empty log).
    pub head: String,
    /// The first difference; `None`: verified.
    pub difference: Option<String>,
}

impl LogReport {
    pub fn verified(&self) -> bool {
        self.difference.is_none()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "verified": self.verified(),
            "entries": self.entries,
            "head": self.head,
            "difference": self.difference,
        })
    }
}

/// Verifies a governance log (every entry of `GET .../governance/log`, in order) with the
/// engine's own `verify_chain`: each hash recomputed, each `prev` the hash before it, `seq`
/// counting up from 1, every shown body against its `body_hash`. `published_head` (the
/// constitution's `log_head`, read before the log) must be the hash of one of the entries: the
/// log may have grown since, never lost or rewritten what it had. `expected_head`, a head
/// recorded earlier, likewise.
pub fn verify_log(
    entries: &[Value],
    published_head: &str,
    expected_head: Option<&str>,
) -> LogReport {
    let mut r = LogReport {
        entries: entries.len(),
        ..LogReport::default()
    };
    match agora_governance::verify_chain(entries, None) {
        Ok(head) => r.head = head,
        Err(e) => {
            let seq = e.seq.map_or_else(|| "?".to_string(), |s| s.to_string());
            r.difference = Some(format!(
                "entry {} (seq {seq}) differs: {}",
                e.index + 1,
                e.reason
            ));
            return r;
        }
    }
    if entries.is_empty() {
        r.head = agora_governance::GENESIS.to_string();
    }
    let contains =
        |h: &str| h == agora_governance::GENESIS || entries.iter().any(|e| e["hash"] == h);
    if !contains(published_head) {
        r.difference = Some(format!(
            "the constitution's log_head {published_head} is no entry's hash: the log served \
             is not the one the community's head names"
        ));
    } else if let Some(h) = expected_head.filter(|h| !contains(h)) {
        r.difference = Some(format!(
            "the expected head {h} is no entry's hash: the log was rewritten since"
        ));
    }
    r
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use agora_governance::GENESIS;
    use agora_plugins::vote::commitment::{canonical_json, sha256_hex};

    /// A chain of `n` entries built the way the engine builds it.
    fn chain(n: u64) -> Vec<Value> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let body = json!({"change": "add_members", "n": seq});
                let body_hash = sha256_hex(&canonical_json(&body));
                let at = format!("2030-01-01T00:00:0{seq}.000Z");
                let hash = agora_governance::entry_hash(
                    seq,
                    &at,
                    "action",
                    &seq.to_string(),
                    &body_hash,
                    &prev,
                );
                let e = json!({"seq": seq, "at": at, "kind": "action", "action": seq.to_string(),
                    "body_hash": body_hash, "prev": prev, "hash": hash, "body": body});
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn a_log_verifies_and_a_changed_entry_is_named() {
        let log = chain(3);
        let head = log[2]["hash"].as_str().unwrap().to_string();
        let r = verify_log(&log, &head, None);
        assert!(r.verified(), "{:?}", r.difference);
        assert_eq!(r.head, head);
        // The constitution was read before a later entry: still fine.
        assert!(verify_log(&log, log[1]["hash"].as_str().unwrap(), None).verified());

        let mut bad = log.clone();
        bad[1]["body"]["n"] = json!(99);
        let r = verify_log(&bad, &head, None);
        assert!(r.difference.unwrap().starts_with("entry 2 (seq 2) differs"));

        let mut bad = log.clone();
        bad[2]["at"] = json!("2031-01-01T00:00:00.000Z");
        let r = verify_log(&bad, &head, None);
        assert!(r.difference.unwrap().starts_with("entry 3 (seq 3) differs"));

        // A dropped entry breaks the chain where it was.
        let mut bad = log.clone();
        bad.remove(1);
        assert!(verify_log(&bad, &head, None)
            .difference
            .unwrap()
            .starts_with("entry 2 (seq 3) differs"));

        // A consistent but different chain: the heads catch it.
        let other = chain(2);
        assert!(!verify_log(&other, &head, None).verified());
        assert!(!verify_log(&log, &head, Some(&"f".repeat(64))).verified());
        assert!(verify_log(&[], GENESIS, None).verified());
    }
}
