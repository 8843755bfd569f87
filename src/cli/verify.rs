//! `agora verify vote`: recomputes a vote from what its node publishes (the ballot list and
//! the outcome) with the project's own code: every receipt, the canonical list, the
//! commitment, and the count itself. Pure: the caller fetches, this compares.

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
