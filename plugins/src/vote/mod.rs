//! The built-in `vote` plugin: votes and polls run by Agora alone, one governance process per
//! vote, addressed as `vote.<method>`.
//!
//! This module is pure: [`VoteSpec`] reads and checks a vote's parameters, a [`Counter`] holds
//! the ballots of one vote with their typed choices and tallies them, and [`tally`] and
//! [`commitment`] hold the counting rules and the verifiable commitment. The process actor
//! around it (in `actors`) owns persistence, deadlines and deliveries.
//!
//! Each method lives in its own module under [`tally`] and offers the same four entry points
//! (also bundled as the [`tally::Method`] trait): `Config::from_json`, `validate_choice`,
//! `tally` and `canonical_choice`. The rules shared by all of them (exact fixed-point weights,
//! zero weights, quorum, ties, empty votes) are documented in [`tally`].

pub mod commitment;
pub mod tally;

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Map, Value};

pub use tally::{
    Ballot, BallotError, Common, ConfigError, Decision, Details, Method, Outcome, Percent, Quorum,
    TieBreak, Weight, TALLY_VERSION,
};

use crate::{
    ActionContext, ErrorCode, NavItem, Plugin, PluginError, PluginMeta, ProcessContext,
    ProcessSpec, WidgetKind, WidgetSpec,
};
use commitment::Entry;

/// The read action of the "open votes" widget, answered by the service from the vote actors.
pub const OPEN_VOTES: &str = "open-votes";
/// The longest voter id, in bytes.
pub const VOTER_ID_MAX: usize = 256;

/// The methods, in the order the metadata lists them.
pub const METHODS: [&str; 9] = [
    "proposal",
    "choice",
    "approval",
    "ranked",
    "score",
    "dot",
    "quadratic",
    "consent",
    "count",
];

/// Parameters handled by the vote itself rather than by the counting method.
const VOTE_KEYS: [&str; 8] = [
    "item",
    "title",
    "details",
    "closing_at",
    "allow_change",
    "early_close",
    "hide_results",
    "anonymous",
];

/// A vote's own settings, frozen when it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteSpec {
    pub method: &'static str,
    pub title: String,
    pub details: String,
    /// The raw `closing_at` (RFC 3339); the actor parses it, since time lives there.
    pub closing_at: String,
    /// `None`: anyone may vote.
    pub eligible: Option<BTreeSet<String>>,
    pub allow_change: bool,
    pub early_close: bool,
    pub hide_results: bool,
    pub anonymous: bool,
    /// The method's configuration (options, weights, quorum, ...), as given.
    pub method_config: Value,
    /// The governance item the vote is attached to (`"item": "<id>"`): ballots are taken only
    /// while the active phase of that item's module allows `vote` (contract section 6).
    pub item: Option<String>,
}

/// A refused parameter: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn spec_err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

fn flag(obj: &Map<String, Value>, key: &str, default: bool) -> Result<bool, SpecError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(spec_err(key, format!("'{key}' must be true or false"))),
    }
}

fn text(obj: &Map<String, Value>, key: &str, max: usize) -> Result<String, SpecError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(s.clone()),
        Some(Value::String(_)) => Err(spec_err(
            key,
            format!("'{key}' is longer than {max} characters"),
        )),
        Some(_) => Err(spec_err(key, format!("'{key}' must be a string"))),
    }
}

impl VoteSpec {
    /// Reads the parameters of `vote.<method>`, checking the method's own configuration too.
    pub fn parse(method: &str, params: &Value) -> Result<(VoteSpec, Box<dyn Counter>), SpecError> {
        let method = METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .ok_or_else(|| spec_err("", format!("'{method}' is not a voting method")))?;
        // Integers as JSON Schema counts them: `"dots": 1e3` is 1000, one beyond i64 is refused.
        let mut params = params.clone();
        crate::schema::integers_as_i64(&parameters_schema(method), &mut params)
            .map_err(|v| spec_err(&v.path, v.message))?;
        let obj = params
            .as_object()
            .ok_or_else(|| spec_err("", "the parameters must be a JSON object"))?;
        let closing_at = match obj.get("closing_at") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(spec_err(
                    "closing_at",
                    "'closing_at' must be an RFC 3339 date-time string",
                ))
            }
            None => {
                return Err(spec_err(
                    "closing_at",
                    "'closing_at' is a required property",
                ))
            }
        };
        let eligible = match obj.get("eligible") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut set = BTreeSet::new();
                for (i, v) in items.iter().enumerate() {
                    match v.as_str() {
                        Some(s) if !s.is_empty() && s.len() <= VOTER_ID_MAX => {
                            set.insert(s.to_string());
                        }
                        _ => {
                            return Err(spec_err(
                                &format!("eligible[{i}]"),
                                "a voter id is a non-empty string of at most 256 bytes",
                            ))
                        }
                    }
                }
                Some(set)
            }
            Some(_) => {
                return Err(spec_err(
                    "eligible",
                    "'eligible' must be a list of voter ids",
                ))
            }
        };
        let mut method_config: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| !VOTE_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if eligible.is_none() {
            method_config.remove("eligible");
        }
        let method_config = Value::Object(method_config);
        let counter = counter_for(method, &method_config).map_err(|e| {
            let field = match &e {
                ConfigError::UnknownParameter(p) => p.clone(),
                ConfigError::InvalidParameter { name, .. } => name.clone(),
                ConfigError::OutOfRange { name, .. } => name.to_string(),
                ConfigError::QuorumNeedsEligible => "quorum".into(),
                ConfigError::NotAnObject => String::new(),
                _ => "options".into(),
            };
            spec_err(&field, e.to_string())
        })?;
        let spec = VoteSpec {
            method,
            title: text(obj, "title", 500)?,
            details: text(obj, "details", 20_000)?,
            closing_at,
            eligible,
            allow_change: flag(obj, "allow_change", true)?,
            early_close: flag(obj, "early_close", false)?,
            hide_results: flag(obj, "hide_results", false)?,
            anonymous: flag(obj, "anonymous", false)?,
            method_config,
            item: match obj.get("item") {
                None | Some(Value::Null) => None,
                Some(Value::String(s))
                    if !s.is_empty()
                        && s.len() <= 20
                        && s.bytes().all(|b| b.is_ascii_digit())
                        && !s.starts_with('0') =>
                {
                    Some(s.clone())
                }
                Some(_) => {
                    return Err(spec_err(
                        "item",
                        "'item' is a governance item id (a string of 1 to 20 digits)",
                    ))
                }
            },
        };
        Ok((spec, counter))
    }

    /// Whether `voter` may vote.
    pub fn is_eligible(&self, voter: &str) -> bool {
        self.eligible
            .as_ref()
            .map(|e| e.contains(voter))
            .unwrap_or(true)
    }
}

/// The ballots of one vote, with their typed choices, and the method that counts them.
pub trait Counter: Send {
    fn method(&self) -> &'static str;
    /// Checks a raw choice; returns its canonical JSON form without recording anything.
    fn check(&self, raw: &Value) -> Result<Value, BallotError>;
    /// Checks and records (or replaces) the ballot of `voter` in one step; returns the
    /// canonical choice. Nothing is recorded when the choice is refused.
    fn cast(&mut self, voter: &str, weight: Weight, raw: &Value) -> Result<Value, BallotError>;
    /// Records (or replaces) the ballot of `voter` with `weight` (the weight is resolved by the
    /// caller from the voter id, since an anonymous vote records a hash instead of the id).
    fn record(&mut self, voter: &str, weight: Weight, raw: &Value) -> Result<(), BallotError>;
    fn has_voted(&self, voter: &str) -> bool;
    fn weight_of(&self, voter: &str) -> Weight;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn tally(&self) -> Outcome;
    /// The canonical, ordered ballot list (voters as recorded: ids, or hashes when anonymous).
    fn entries(&self) -> Vec<Entry>;
    /// The canonical entry of one voter's ballot.
    fn entry(&self, voter: &str) -> Option<Entry>;
    /// True when some recorded ballot settles the outcome whatever else is cast (a standing
    /// block or objection), assuming ballots cannot be changed.
    fn vetoed(&self) -> bool;
}

struct Typed<M: Method> {
    cfg: M::Config,
    common: Common,
    ballots: Vec<Ballot<M::Choice>>,
    index: HashMap<String, usize>,
}

impl<M: Method> Typed<M>
where
    M::Config: Send,
    M::Choice: Send,
{
    fn put(&mut self, voter: &str, ballot: Ballot<M::Choice>) {
        match self.index.get(voter) {
            Some(&i) => self.ballots[i] = ballot,
            None => {
                self.index.insert(voter.to_string(), self.ballots.len());
                self.ballots.push(ballot);
            }
        }
    }

    fn new(raw: &Value, common: Common) -> Result<Self, ConfigError> {
        Ok(Typed {
            cfg: M::parse_config(raw)?,
            common,
            ballots: Vec::new(),
            index: HashMap::new(),
        })
    }
}

impl<M: Method> Counter for Typed<M>
where
    M::Config: Send,
    M::Choice: Send,
{
    fn method(&self) -> &'static str {
        M::NAME
    }

    fn check(&self, raw: &Value) -> Result<Value, BallotError> {
        let c = M::validate_choice(raw, &self.cfg)?;
        Ok(M::canonical_choice(&c, &self.cfg))
    }

    fn cast(&mut self, voter: &str, weight: Weight, raw: &Value) -> Result<Value, BallotError> {
        let choice = M::validate_choice(raw, &self.cfg)?;
        let canonical = M::canonical_choice(&choice, &self.cfg);
        self.put(voter, Ballot::new(voter, weight, choice));
        Ok(canonical)
    }

    fn record(&mut self, voter: &str, weight: Weight, raw: &Value) -> Result<(), BallotError> {
        let choice = M::validate_choice(raw, &self.cfg)?;
        self.put(voter, Ballot::new(voter, weight, choice));
        Ok(())
    }

    fn has_voted(&self, voter: &str) -> bool {
        self.index.contains_key(voter)
    }

    fn weight_of(&self, voter: &str) -> Weight {
        self.common.weight_of(voter)
    }

    fn len(&self) -> usize {
        self.ballots.len()
    }

    fn tally(&self) -> Outcome {
        M::tally(&self.ballots, &self.cfg)
    }

    fn entries(&self) -> Vec<Entry> {
        commitment::canonical_ballots::<M>(&self.ballots, &self.cfg, None)
    }

    fn entry(&self, voter: &str) -> Option<Entry> {
        let b = &self.ballots[*self.index.get(voter)?];
        Some(Entry {
            voter: b.voter.clone(),
            weight: b.weight,
            choice: M::canonical_choice(&b.choice, &self.cfg),
        })
    }

    fn vetoed(&self) -> bool {
        let canon: Vec<Value> = self
            .ballots
            .iter()
            .filter(|b| !b.weight.is_zero())
            .map(|b| M::canonical_choice(&b.choice, &self.cfg))
            .collect();
        match M::NAME {
            "proposal" => canon.iter().any(|c| c == "block"),
            "consent" => canon.iter().any(|c| c == "object"),
            _ => false,
        }
    }
}

/// Whether `outcome` can no longer change when at most `remaining` more voting weight arrives
/// and no recorded ballot can be changed. Conservative: `false` whenever in doubt.
///
/// A remaining voter of weight `w` can raise one challenger above the leader by at most a
/// method-specific swing: `w` (choice, approval), `dots·w` (dot), `⌊√credits⌋·w` (quadratic),
/// `(max − min)·w` (score). The winner is settled when it leads every other option by more than
/// the total swing, and the quorum is already met (further ballots could otherwise meet it and
/// change the result). A count that reached its target stays passed. Ranked votes are never
/// settled early: transfers make the bound much looser than these.
pub fn settled(method: &str, config: &Value, outcome: &Outcome, remaining: f64) -> bool {
    if !outcome.quorum_met {
        return false;
    }
    // An absent key is the method's default; a present one was parsed as an integer when the
    // vote opened. Anything else (never expected) means "not settled", not a guessed default.
    let int = |key: &str, default: i64| match config.get(key) {
        None => Some(default),
        Some(value) => value.as_i64(),
    };
    let per_voter = match method {
        "choice" | "approval" => Some(1.0),
        "dot" => int("dots", 8).map(|dots| dots as f64),
        "quadratic" => int("credits", 0).map(|c| (c.max(0) as f64).sqrt().floor()),
        "score" => int("max", 5)
            .zip(int("min", 0))
            .map(|(max, min)| max.saturating_sub(min) as f64),
        "count" => return outcome.passed() == Some(true),
        _ => return false,
    };
    let Some(per_voter) = per_voter else {
        return false;
    };
    let Some(winner) = outcome.winner() else {
        return false;
    };
    let Some(lead) = outcome.tally.get(winner) else {
        return false;
    };
    let swing = per_voter * remaining;
    outcome
        .tally
        .iter()
        .filter(|(name, _)| name.as_str() != winner)
        .all(|(_, total)| lead - total > swing + 1e-9)
}

/// The counter for `method`, configured by `config` (options, weights, quorum, ...).
pub fn counter_for(method: &str, config: &Value) -> Result<Box<dyn Counter>, ConfigError> {
    // The common parameters are read once more here so the counter can weigh ballots; the
    // method's own parse has already rejected anything malformed.
    let common = common_of(config)?;
    Ok(match method {
        "proposal" => Box::new(Typed::<tally::proposal::Proposal>::new(config, common)?),
        "choice" => Box::new(Typed::<tally::choice::Choice>::new(config, common)?),
        "approval" => Box::new(Typed::<tally::approval::Approval>::new(config, common)?),
        "ranked" => Box::new(Typed::<tally::ranked::Ranked>::new(config, common)?),
        "score" => Box::new(Typed::<tally::score::Score>::new(config, common)?),
        "dot" => Box::new(Typed::<tally::dot::Dot>::new(config, common)?),
        "quadratic" => Box::new(Typed::<tally::quadratic::Quadratic>::new(config, common)?),
        "consent" => Box::new(Typed::<tally::consent::Consent>::new(config, common)?),
        "count" => Box::new(Typed::<tally::count::Count>::new(config, common)?),
        other => return Err(ConfigError::UnknownParameter(format!("method {other}"))),
    })
}

fn common_of(config: &Value) -> Result<Common, ConfigError> {
    // Only the common keys: the method keys are the method's business.
    let mut only = Map::new();
    if let Some(obj) = config.as_object() {
        for k in ["weights", "quorum", "eligible", "tie_break"] {
            if let Some(v) = obj.get(k) {
                only.insert(k.to_string(), v.clone());
            }
        }
    }
    let (common, _): (Common, Map<String, Value>) = tally::parse_config(&Value::Object(only), &[])?;
    Ok(common)
}

/// The `vote` plugin's metadata. Its processes are run by the vote actor, not through the
/// generic process hooks.
pub struct VotePlugin {
    meta: PluginMeta,
}

impl Default for VotePlugin {
    fn default() -> Self {
        Self::new()
    }
}

fn parameters_schema(method: &str) -> Value {
    let mut props = json!({
        "title": {"type": "string", "maxLength": 500},
        "item": {"type": "string", "pattern": "^[1-9][0-9]{0,19}$", "description": "a governance item: ballots only while its module's active phase allows `vote`"},
        "details": {"type": "string", "maxLength": 20000},
        "closing_at": {"type": "string", "format": "date-time", "description": "RFC 3339, in the future"},
        "eligible": {"type": "array", "items": {"type": "string"}, "description": "voter ids; absent: anyone"},
        "weights": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
        "quorum": {"type": "object", "description": "{\"count\": n} or {\"percent\": p} of eligible"},
        "allow_change": {"type": "boolean", "default": true},
        "early_close": {"type": "boolean", "default": false},
        "hide_results": {"type": "boolean", "default": false},
        "anonymous": {"type": "boolean", "default": false},
        "tie_break": {"type": "string", "enum": ["none", "first_option"], "default": "none"}
    });
    let extra = match method {
        "proposal" => {
            json!({"threshold": {"type": "number", "minimum": 0, "exclusiveMaximum": 100, "default": 50}})
        }
        "choice" => {
            json!({"options": {"type": "array", "items": {"type": "string"}}, "min": {"type": "integer", "minimum": 0, "default": 1}, "max": {"type": "integer", "minimum": 1, "default": 1}})
        }
        "approval" => json!({"options": {"type": "array", "items": {"type": "string"}}}),
        "ranked" => {
            json!({"options": {"type": "array", "items": {"type": "string"}}, "seats": {"type": "integer", "minimum": 1, "default": 1}})
        }
        "score" => {
            json!({"options": {"type": "array", "items": {"type": "string"}}, "min": {"type": "integer", "default": 0}, "max": {"type": "integer", "default": 5}})
        }
        "dot" => {
            json!({"options": {"type": "array", "items": {"type": "string"}}, "dots": {"type": "integer", "minimum": 1, "default": 8}})
        }
        "quadratic" => {
            json!({"options": {"type": "array", "items": {"type": "string"}}, "credits": {"type": "integer", "minimum": 1}})
        }
        "count" => json!({"target": {"type": "number", "minimum": 0}}),
        _ => json!({}),
    };
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    let mut required = vec!["closing_at"];
    if !matches!(method, "proposal" | "consent" | "count") {
        required.push("options");
    }
    json!({"type": "object", "properties": props, "required": required})
}

impl VotePlugin {
    pub fn new() -> Self {
        let description = |m: &str| -> &'static str {
            match m {
                "proposal" => "agree / abstain / disagree / block; one block defeats it; passes when support exceeds the threshold",
                "choice" => "pick between min and max options; plurality",
                "approval" => "approve any number of options; each gets the voter's full weight",
                "ranked" => "ranked ballots: instant runoff for one seat, Scottish STV (Droop quota) for several",
                "score" => "score each option min..max; highest total wins",
                "dot" => "spread `dots` per voter across options",
                "quadratic" => "spend `credits`; a ballot costs the sum of the squares of its votes",
                "consent" => "passes at the deadline unless an objection stands",
                _ => "opt-in sign-ups (accept / decline) with an optional target",
            }
        };
        let processes = METHODS
            .iter()
            .map(|m| ProcessSpec {
                name: m,
                description: description(m),
                parameters_schema: parameters_schema(m),
                outcome_schema: json!({"type": "object"}),
            })
            .collect();
        VotePlugin {
            meta: PluginMeta {
                name: "vote",
                verbose_name: "Votes and polls",
                version: "1.0.0",
                author: "The Agora developers",
                agora_min: "0.1.0",
                agora_max: None,
                depends_on: &[],
                load_by_default: true,
                description: "Votes and polls run by Agora itself, with exact, verifiable tallies.",
                auth_type: "none",
                uses_webhook: false,
                config_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
                actions: vec![],
                processes,
                events: vec![],
                navigation: vec![NavItem {
                    label: "Votes",
                    icon: "ballot",
                    order: 10,
                }],
                // Its read action is native, like its processes: the service answers it
                // from the community's vote actors.
                widgets: vec![WidgetSpec {
                    name: "open-votes",
                    title: "Open votes",
                    order: 10,
                    kind: WidgetKind::Table,
                    action: OPEN_VOTES,
                }],
            },
        }
    }
}

fn native() -> PluginError {
    PluginError {
        code: ErrorCode::Unsupported,
        message: "vote processes are run by the vote actor".into(),
        field: None,
    }
}

impl Plugin for VotePlugin {
    fn meta(&self) -> &PluginMeta {
        &self.meta
    }
    fn action(&self, _: &mut ActionContext<'_>, _: &str, _: &Value) -> Result<Value, PluginError> {
        Err(native())
    }
    fn start_process(&self, _: &mut ProcessContext<'_>, _: &Value) -> Result<(), PluginError> {
        Err(native())
    }
    fn tick(&self, _: &mut ProcessContext<'_>, _: &str) -> Result<(), PluginError> {
        Err(native())
    }
    fn close_process(&self, _: &mut ProcessContext<'_>) -> Result<(), PluginError> {
        Err(native())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_splits_vote_settings_from_the_method_config() {
        let (spec, mut counter) = VoteSpec::parse(
            "choice",
            &json!({"title": "Lunch", "closing_at": "2030-01-01T00:00:00Z", "options": ["a", "b"],
                    "eligible": ["x", "y"], "hide_results": true}),
        )
        .unwrap();
        assert_eq!(spec.title, "Lunch");
        assert!(spec.hide_results && spec.allow_change && !spec.anonymous);
        assert!(spec.is_eligible("x") && !spec.is_eligible("z"));
        counter.record("x", Weight::ONE, &json!(["a"])).unwrap();
        counter.record("x", Weight::ONE, &json!(["b"])).unwrap();
        assert_eq!(counter.len(), 1);
        assert_eq!(counter.tally().winner(), Some("b"));
        assert_eq!(
            counter.check(&json!(["c"])).unwrap_err().code(),
            "unknown_option"
        );
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let e = VoteSpec::parse("choice", &json!({"options": ["a"]}))
            .err()
            .expect("refused");
        assert_eq!(e.field, "closing_at");
        let e = VoteSpec::parse(
            "choice",
            &json!({"closing_at": "x", "options": ["a"], "seats": 2}),
        )
        .err()
        .expect("refused");
        assert_eq!(e.field, "seats");
        let e = VoteSpec::parse("proposal", &json!({"closing_at": "x", "threshold": 150}))
            .err()
            .expect("refused");
        assert_eq!(e.field, "threshold");
        assert!(VoteSpec::parse("nope", &json!({})).is_err());
    }

    #[test]
    fn a_lead_larger_than_what_remaining_voters_can_swing_is_settled() {
        let cfg = json!({"closing_at": "x", "options": ["a", "b", "c"]});
        let (_, mut c) = VoteSpec::parse("choice", &cfg).unwrap();
        for (v, ch) in [("1", "a"), ("2", "a"), ("3", "a"), ("4", "b")] {
            c.record(v, Weight::ONE, &json!([ch])).unwrap();
        }
        let out = c.tally();
        assert!(
            settled("choice", &cfg, &out, 1.0),
            "a leads by 2, one vote left"
        );
        assert!(
            !settled("choice", &cfg, &out, 2.0),
            "two votes left could tie"
        );
        let dot = json!({"closing_at": "x", "options": ["a", "b"], "dots": 3});
        let (_, mut d) = VoteSpec::parse("dot", &dot).unwrap();
        d.record("1", Weight::ONE, &json!({"a": 3})).unwrap();
        assert!(
            !settled("dot", &dot, &d.tally(), 1.0),
            "one voter can put 3 dots on b"
        );
        let quorum = json!({"closing_at": "x", "options": ["a", "b"], "quorum": {"count": 5}});
        let (_, mut q) = VoteSpec::parse("choice", &quorum).unwrap();
        q.record("1", Weight::ONE, &json!(["a"])).unwrap();
        assert!(
            !settled("choice", &quorum, &q.tally(), 0.0),
            "quorum not met yet"
        );
        let ranked = json!({"closing_at": "x", "options": ["a", "b"]});
        let (_, mut r) = VoteSpec::parse("ranked", &ranked).unwrap();
        r.record("1", Weight::ONE, &json!(["a"])).unwrap();
        assert!(!settled("ranked", &ranked, &r.tally(), 0.0));
    }

    #[test]
    fn every_method_has_an_enforceable_schema() {
        for m in METHODS {
            crate::schema::check_supported(&parameters_schema(m)).unwrap();
        }
    }
}
