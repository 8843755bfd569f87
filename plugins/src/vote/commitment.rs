//! Commitments: a hash that pins down exactly which ballots a tally
//! counted, so anyone holding the published ballot list can check it, and
//! receipts that let a voter find their own ballot in that list.
//!
//! ## Canonical ballot list
//!
//! Every counted ballot becomes one entry
//! `{"choice":<choice>,"voter":<voter>,"weight":<weight>}`:
//!
//! * `voter` is the voter id as a JSON string, or, when the vote is
//!   anonymous, [`voter_hash`]`(salt, id)`: the lowercase hex SHA-256 of the
//!   salt bytes immediately followed by the UTF-8 bytes of the id.
//! * `weight` is the weight as a plain decimal number with at most five
//!   decimals, no exponent, no trailing zeros and no trailing point: `1`,
//!   `0`, `2.5`, `0.00001`.
//! * `choice` is the method's canonical choice: a string for `proposal`
//!   (`agree`, `abstain`, `disagree`, `block`), `consent` (`consent`,
//!   `object`, `stand_aside`) and `count` (`accept`, `decline`); for
//!   `choice` and `approval` the list of selected option names in the
//!   order of `options`; for `ranked` the list of option names in order of
//!   preference; for `score` an object option name → integer score of the
//!   options the voter scored; for `dot` and `quadratic` an object option
//!   name → positive integer, zero entries left out.
//!
//! Canonical JSON: no whitespace anywhere; object keys sorted by their
//! UTF-8 bytes; integers in plain decimal (`-3`, `0`, `12`); strings in
//! double quotes with `"` and `\` escaped as `\"` and `\\`, the control
//! characters U+0008, U+0009, U+000A, U+000C, U+000D as `\b`, `\t`, `\n`,
//! `\f`, `\r`, the other characters below U+0020 as `\u00xx` (lowercase
//! hex), and every other character, non-ASCII included, as its raw UTF-8.
//! (Choices never contain fractions; were one to appear it would be written
//! as Rust's shortest round-trip decimal, without exponent.)
//!
//! The list is ordered by the `voter` field's UTF-8 bytes (the hash when
//! anonymous, so the order reveals nothing about ids); entries with equal
//! voter fields, which a well-formed vote never has, are ordered by their
//! canonical JSON text. The list is written as `[` entries joined by `,`
//! `]`; an empty vote gives `[]`.
//!
//! ## Hashes
//!
//! * `commitment = sha256_hex(method + "\n" + tally_version + "\n" + list)`
//!   where `method` is the method name (`ranked`, …), `tally_version` is
//!   [`TALLY_VERSION`], and `list` the canonical list above. Hashing the
//!   method and the rules version means the same ballots counted under
//!   different rules never share a commitment.
//! * `receipt = sha256_hex(entry)`: the hash of one canonical entry. A voter
//!   who knows their id (and the salt, when anonymous), weight and choice
//!   can recompute it and look for it among the published entries.
//!
//! `sha256_hex` is the lowercase hexadecimal SHA-256 of the UTF-8 bytes.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::tally::{Ballot, Method, Weight, TALLY_VERSION};

/// One ballot in canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The voter id, or its salted hash when the vote is anonymous.
    pub voter: String,
    pub weight: Weight,
    /// The method's canonical choice.
    pub choice: Value,
}

impl Entry {
    /// The entry's canonical JSON text.
    pub fn to_canonical_json(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str("{\"choice\":");
        write_canonical(&mut out, &self.choice);
        out.push_str(",\"voter\":");
        write_string(&mut out, &self.voter);
        out.push_str(",\"weight\":");
        out.push_str(&self.weight.to_string());
        out.push('}');
        out
    }
}

/// The canonical, ordered list of counted ballots. With `salt`, voter ids
/// are replaced by [`voter_hash`]`(salt, id)`.
pub fn canonical_ballots<M: Method>(
    ballots: &[Ballot<M::Choice>],
    cfg: &M::Config,
    salt: Option<&[u8]>,
) -> Vec<Entry> {
    let mut entries: Vec<(Entry, String)> = ballots
        .iter()
        .map(|ballot| {
            let entry = Entry {
                voter: match salt {
                    Some(salt) => voter_hash(salt, &ballot.voter),
                    None => ballot.voter.clone(),
                },
                weight: ballot.weight,
                choice: M::canonical_choice(&ballot.choice, cfg),
            };
            let text = entry.to_canonical_json();
            (entry, text)
        })
        .collect();
    entries
        .sort_by(|(a, a_text), (b, b_text)| a.voter.cmp(&b.voter).then_with(|| a_text.cmp(b_text)));
    entries.into_iter().map(|(entry, _)| entry).collect()
}

/// The canonical JSON text of a list of entries, in canonical order
/// whatever order they are given in.
pub fn canonical_list_json(entries: &[Entry]) -> String {
    let mut texts: Vec<(&str, String)> = entries
        .iter()
        .map(|e| (e.voter.as_str(), e.to_canonical_json()))
        .collect();
    texts.sort();
    let mut out = String::with_capacity(2 + texts.iter().map(|(_, t)| t.len() + 1).sum::<usize>());
    out.push('[');
    for (i, (_, text)) in texts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(text);
    }
    out.push(']');
    out
}

/// `sha256_hex(method + "\n" + TALLY_VERSION + "\n" + canonical list)`.
pub fn commitment(method: &str, entries: &[Entry]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(TALLY_VERSION.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_list_json(entries).as_bytes());
    hex::encode(hasher.finalize())
}

/// Lowercase hex SHA-256 of `salt` followed by the UTF-8 bytes of `voter`.
pub fn voter_hash(salt: &[u8], voter: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(voter.as_bytes());
    hex::encode(hasher.finalize())
}

/// Lowercase hex SHA-256 of the entry's canonical JSON.
pub fn receipt(entry: &Entry) -> String {
    sha256_hex(&entry.to_canonical_json())
}

/// Canonical JSON of any value, by the rules in the module docs.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(&mut out, value);
    out
}

/// Lowercase hex SHA-256 of the UTF-8 bytes of `text`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(f) = n.as_f64() {
                // Display, unlike serde_json, never switches to exponent form.
                out.push_str(&f.to_string());
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here rather than trusting the map: serde_json's
            // `preserve_order` feature, if any crate in the build enables
            // it, would keep insertion order instead.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                if let Some(item) = map.get(key) {
                    write_canonical(out, item);
                }
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::tally::{proposal, ranked, score, Weight};
    use super::*;
    use serde_json::json;

    fn proposal_ballots() -> Vec<Ballot<proposal::Choice>> {
        vec![
            Ballot::new("carol", Weight::ONE, proposal::Choice::Disagree),
            Ballot::new(
                "alice",
                Weight::from_units(250_000).unwrap(),
                proposal::Choice::Agree,
            ),
            Ballot::new("bob", Weight::ZERO, proposal::Choice::Block),
        ]
    }

    #[test]
    fn canonical_list_is_sorted_and_compact() {
        let cfg = proposal::Config::default();
        let entries = canonical_ballots::<proposal::Proposal>(&proposal_ballots(), &cfg, None);
        assert_eq!(
            canonical_list_json(&entries),
            r#"[{"choice":"agree","voter":"alice","weight":2.5},{"choice":"block","voter":"bob","weight":0},{"choice":"disagree","voter":"carol","weight":1}]"#
        );
    }

    #[test]
    fn commitment_matches_its_definition() {
        let cfg = proposal::Config::default();
        let entries = canonical_ballots::<proposal::Proposal>(&proposal_ballots(), &cfg, None);
        let text = format!(
            "proposal\n{TALLY_VERSION}\n{}",
            canonical_list_json(&entries)
        );
        assert_eq!(commitment("proposal", &entries), sha256_hex(&text));
        // Pinned so an accidental change of the canonical form is caught.
        assert_eq!(
            sha256_hex("proposal\n1\n[]"),
            hex::encode(Sha256::digest(b"proposal\n1\n[]"))
        );
        assert_ne!(
            commitment("consent", &entries),
            commitment("proposal", &entries)
        );
    }

    #[test]
    fn commitment_ignores_input_order() {
        let cfg = proposal::Config::default();
        let mut ballots = proposal_ballots();
        let a = commitment(
            "proposal",
            &canonical_ballots::<proposal::Proposal>(&ballots, &cfg, None),
        );
        ballots.reverse();
        let entries = canonical_ballots::<proposal::Proposal>(&ballots, &cfg, None);
        assert_eq!(commitment("proposal", &entries), a);
        let mut shuffled = entries.clone();
        shuffled.swap(0, 2);
        assert_eq!(commitment("proposal", &shuffled), a);
    }

    #[test]
    fn commitment_changes_with_any_ballot() {
        let cfg = proposal::Config::default();
        let mut ballots = proposal_ballots();
        let a = commitment(
            "proposal",
            &canonical_ballots::<proposal::Proposal>(&ballots, &cfg, None),
        );
        ballots[0].choice = proposal::Choice::Agree;
        let b = commitment(
            "proposal",
            &canonical_ballots::<proposal::Proposal>(&ballots, &cfg, None),
        );
        assert_ne!(a, b);
        ballots[0].weight = Weight::from_units(100_001).unwrap();
        let c = commitment(
            "proposal",
            &canonical_ballots::<proposal::Proposal>(&ballots, &cfg, None),
        );
        assert_ne!(b, c);
    }

    #[test]
    fn anonymous_entries_use_salted_hash() {
        let cfg = proposal::Config::default();
        let entries =
            canonical_ballots::<proposal::Proposal>(&proposal_ballots(), &cfg, Some(b"salt"));
        let alice = voter_hash(b"salt", "alice");
        assert_eq!(alice, hex::encode(Sha256::digest(b"saltalice")));
        assert_eq!(alice.len(), 64);
        assert!(entries.iter().any(|e| e.voter == alice));
        assert!(entries.windows(2).all(|w| w[0].voter <= w[1].voter));
        assert!(entries.iter().all(|e| e.voter != "alice"));
        assert_ne!(voter_hash(b"other", "alice"), alice);
    }

    #[test]
    fn receipt_finds_the_ballot() {
        let cfg = proposal::Config::default();
        let entries = canonical_ballots::<proposal::Proposal>(&proposal_ballots(), &cfg, None);
        let mine = Entry {
            voter: "alice".into(),
            weight: Weight::from_units(250_000).unwrap(),
            choice: json!("agree"),
        };
        let r = receipt(&mine);
        assert_eq!(
            r,
            sha256_hex(r#"{"choice":"agree","voter":"alice","weight":2.5}"#)
        );
        assert_eq!(entries.iter().filter(|e| receipt(e) == r).count(), 1);
    }

    #[test]
    fn method_choices_are_canonical() {
        let rcfg = ranked::Config::from_json(&json!({"options": ["x", "y", "z"]})).unwrap();
        let ranking = ranked::validate_choice(&json!(["z", "x"]), &rcfg).unwrap();
        let entries = canonical_ballots::<ranked::Ranked>(
            &[Ballot::new("v", Weight::ONE, ranking)],
            &rcfg,
            None,
        );
        assert_eq!(
            entries[0].to_canonical_json(),
            r#"{"choice":["z","x"],"voter":"v","weight":1}"#
        );
        let scfg = score::Config::from_json(&json!({"options": ["b", "a"]})).unwrap();
        let scores = score::validate_choice(&json!({"b": 2, "a": 5.0}), &scfg).unwrap();
        let entries = canonical_ballots::<score::Score>(
            &[Ballot::new("v", Weight::ONE, scores)],
            &scfg,
            None,
        );
        assert_eq!(
            entries[0].to_canonical_json(),
            r#"{"choice":{"a":5,"b":2},"voter":"v","weight":1}"#
        );
    }

    #[test]
    fn canonical_json_rules() {
        assert_eq!(
            canonical_json(&json!({"b": [1, -2, true, null], "a": {"d": "x", "c": 0}})),
            r#"{"a":{"c":0,"d":"x"},"b":[1,-2,true,null]}"#
        );
        assert_eq!(
            canonical_json(&json!("q\"b\\n\n\t\u{1}é")),
            "\"q\\\"b\\\\n\\n\\t\\u0001é\""
        );
        assert_eq!(canonical_json(&json!(0.00001)), "0.00001");
        assert_eq!(canonical_json(&json!([])), "[]");
        assert_eq!(canonical_list_json(&[]), "[]");
    }
}
