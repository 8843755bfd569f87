//! Shared vocabulary of the tally methods: weights, percents, ballots,
//! the common parameters (`weights`, `quorum`, `eligible`, `tie_break`),
//! the [`Outcome`] every method returns, and the error types with their
//! stable snake_case codes.
//!
//! Rules that hold for every method:
//!
//! * **Exact arithmetic.** A [`Weight`] is a fixed-point number with five
//!   decimal places (units of 0.00001, stored as an integer); a weight given
//!   as a JSON number is rounded to the nearest unit. Totals are summed as
//!   integers (`i128`/`u128`) and only turned into `f64` for the output, so a
//!   tally gives the same answer on every platform and in every ballot order.
//!   A weight may be at most 1,000,000,000.
//! * **Weights.** `weights` maps a voter id to a non-negative number; a voter
//!   who is not listed weighs 1. The tally itself reads the weight carried by
//!   each [`Ballot`]; [`Common::weight_of`] is how a caller fills it in.
//! * **Zero weight.** A ballot of weight 0 is counted in `ballots` and toward
//!   the quorum but contributes 0 to every total. That includes vetoes: a
//!   zero-weight `block` or `object` does not stand, because a voter the
//!   group gave no say (an observer) must not be able to stop a decision.
//! * **Quorum.** `{"count": n}` is met when at least `n` ballots were counted;
//!   `{"percent": p}` is met when `ballots * 100 >= p * eligible`. Every
//!   counted ballot counts toward the quorum, abstentions and zero weights
//!   included, because the quorum measures participation, not support. A
//!   percent quorum needs `eligible` (a number of voters, or a list of voter
//!   ids whose distinct entries are counted); without it the configuration
//!   is rejected rather than silently unmeetable. When the quorum is not met
//!   there is no winner and nothing passes; the totals are still reported.
//! * **Ties.** `tie_break` is `"none"` (the default: a tie for first place
//!   gives `winner: null` and lists the tied options in `tied`) or
//!   `"first_option"` (the tied option that comes first in `options` wins;
//!   `tied` is still reported). Methods that pass or fail (proposal, consent,
//!   count) have no ties to break and ignore it; ranked methods use it only
//!   when every continuing candidate is tied (see `ranked`).
//! * **Empty vote.** An option that no ballot supported (its total is not
//!   above the floor: 0, or `min` times the total weight for `score`) never
//!   wins, not even through `tie_break`; so an empty vote has no winner.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::ErrorCode;

pub mod approval;
pub mod choice;
pub mod consent;
pub mod count;
pub mod dot;
pub mod proposal;
pub mod quadratic;
pub mod ranked;
pub mod score;

#[cfg(test)]
mod props;

/// Version of the counting rules; it is hashed into every commitment so a
/// change of rules can never be mistaken for a change of ballots.
pub const TALLY_VERSION: &str = "1";

/// Position of an option in the configured `options` list.
pub type OptionIndex = u16;

/// Upper bound on `options`; it keeps [`OptionIndex`] small, which matters
/// for the memory traffic of a large ranked count.
pub const MAX_OPTIONS: usize = 1000;

/// Bound on score ranges, dots and votes, chosen so that weight × amount
/// summed over billions of ballots still fits in an `i128`.
const MAX_AMOUNT: i64 = 1_000_000_000;

/// Units of 0.00001 per whole vote, shared by [`Weight`] and [`Percent`].
pub const SCALE: u64 = 100_000;

/// A voter's weight, fixed-point with five decimal places.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u64);

impl Weight {
    pub const ZERO: Weight = Weight(0);
    pub const ONE: Weight = Weight(SCALE);
    pub const MAX: Weight = Weight(1_000_000_000 * SCALE);

    /// A weight from a count of 0.00001 units; `None` above [`Weight::MAX`].
    pub fn from_units(units: u64) -> Option<Weight> {
        (units <= Self::MAX.0).then_some(Weight(units))
    }

    /// A whole-number weight; `None` above [`Weight::MAX`].
    pub fn from_whole(votes: u64) -> Option<Weight> {
        votes.checked_mul(SCALE).and_then(Self::from_units)
    }

    /// A weight from a JSON-style number, rounded to five decimal places.
    pub fn from_f64(value: f64) -> Result<Weight, String> {
        if !value.is_finite() || value < 0.0 {
            return Err(format!(
                "a weight must be a non-negative number, got {value}"
            ));
        }
        let units = (value * SCALE as f64).round();
        if units > Self::MAX.0 as f64 {
            return Err(format!("a weight must be at most 1000000000, got {value}"));
        }
        // In range and integral after the checks above, so the cast is exact.
        Ok(Weight(units as u64))
    }

    pub fn units(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn to_f64(self) -> f64 {
        units_to_f64(i128::from(self.0))
    }
}

/// Plain decimal, no exponent, no trailing zeros: `1`, `0.5`, `0.00001`.
/// The commitment hashes this text, so it must never change.
impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / SCALE;
        let frac = self.0 % SCALE;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:05}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl Serialize for Weight {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.to_f64())
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Weight::from_f64(f64::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// A percentage between 0 and 100, fixed-point with five decimal places, so
/// that thresholds and quorums compare exactly against integer totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u64);

impl Percent {
    pub const HUNDRED: Percent = Percent(100 * SCALE);

    pub fn from_f64(value: f64) -> Result<Percent, String> {
        if !value.is_finite() || !(0.0..=100.0).contains(&value) {
            return Err(format!("a percent must be between 0 and 100, got {value}"));
        }
        Ok(Percent((value * SCALE as f64).round() as u64))
    }

    /// Whole percent, for configurations built in code.
    pub fn from_whole(percent: u8) -> Option<Percent> {
        (percent <= 100).then(|| Percent(u64::from(percent) * SCALE))
    }

    pub fn units(self) -> u64 {
        self.0
    }

    pub fn to_f64(self) -> f64 {
        units_to_f64(i128::from(self.0))
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.to_f64())
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Percent::from_f64(f64::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Turns an integer amount of 0.00001 units into the `f64` shown in output.
pub fn units_to_f64(units: i128) -> f64 {
    units as f64 / SCALE as f64
}

/// One counted ballot: who cast it, with what weight, and the choice already
/// checked by the method's `validate_choice`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ballot<C> {
    pub voter: String,
    pub weight: Weight,
    pub choice: C,
}

impl<C> Ballot<C> {
    pub fn new(voter: impl Into<String>, weight: Weight, choice: C) -> Self {
        Ballot {
            voter: voter.into(),
            weight,
            choice,
        }
    }
}

/// A set of selected options (choice, approval), as option indexes.
/// `validate_choice` returns it sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selection(pub Vec<OptionIndex>);

/// Per-option totals of selection ballots: every selected option receives
/// the voter's full weight.
pub(crate) fn selection_totals(ballots: &[Ballot<Selection>], options: usize) -> Vec<i128> {
    let mut totals = vec![0i128; options];
    for ballot in ballots {
        let weight = i128::from(ballot.weight.units());
        for &index in &ballot.choice.0 {
            // Indexes come from validate_choice; a hand-built stray is ignored
            // rather than allowed to panic the tally.
            if let Some(total) = totals.get_mut(usize::from(index)) {
                *total += weight;
            }
        }
    }
    totals
}

/// Canonical JSON of a selection: the option names in `options` order.
pub(crate) fn selection_json(options: &[String], selection: &Selection) -> Value {
    let mut sorted = selection.0.clone();
    sorted.sort_unstable();
    names_json(options, &sorted)
}

/// Non-negative whole amounts per option (dot, quadratic), sorted by
/// option index, zero entries dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Allocation(pub Vec<(OptionIndex, u64)>);

/// Reads an allocation; negative amounts are refused because neither dots
/// nor quadratic votes can be spent against an option.
pub(crate) fn parse_allocation(
    raw: &Value,
    options: &[String],
    expected: &'static str,
) -> Result<Allocation, BallotError> {
    let amounts = parse_amounts(raw, options, expected)?;
    let mut out = Vec::with_capacity(amounts.len());
    for (index, amount) in amounts {
        let Ok(amount) = u64::try_from(amount) else {
            return Err(BallotError::NegativeAmount {
                option: option_name(options, usize::from(index)),
                amount,
            });
        };
        if amount > 0 {
            out.push((index, amount));
        }
    }
    Ok(Allocation(out))
}

/// Per-option totals of weight × amount.
pub(crate) fn allocation_totals(ballots: &[Ballot<Allocation>], options: usize) -> Vec<i128> {
    let mut totals = vec![0i128; options];
    for ballot in ballots {
        let weight = i128::from(ballot.weight.units());
        for &(index, amount) in &ballot.choice.0 {
            if let Some(total) = totals.get_mut(usize::from(index)) {
                *total += weight * i128::from(amount);
            }
        }
    }
    totals
}

/// `{"count": n}` or `{"percent": p}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quorum {
    Count(u64),
    Percent(Percent),
}

/// What to do when options tie for first place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TieBreak {
    #[default]
    None,
    FirstOption,
}

/// The parameters every method accepts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Common {
    pub weights: BTreeMap<String, Weight>,
    pub quorum: Option<Quorum>,
    /// Number of eligible voters, needed by a percent quorum.
    pub eligible: Option<u64>,
    pub tie_break: TieBreak,
}

impl Common {
    /// The weight of `voter`: its entry in `weights`, or 1.
    pub fn weight_of(&self, voter: &str) -> Weight {
        self.weights.get(voter).copied().unwrap_or(Weight::ONE)
    }

    /// Whether `ballots` counted ballots meet the quorum.
    pub fn quorum_met(&self, ballots: u64) -> bool {
        match self.quorum {
            None => true,
            Some(Quorum::Count(n)) => ballots >= n,
            // Unreachable through `from_json`, which rejects it; a config
            // built by hand without `eligible` cannot meet a percent quorum.
            Some(Quorum::Percent(p)) => self.eligible.is_some_and(|eligible| {
                u128::from(ballots) * 100 * u128::from(SCALE)
                    >= u128::from(p.units()) * u128::from(eligible)
            }),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if matches!(self.quorum, Some(Quorum::Percent(_))) && self.eligible.is_none() {
            return Err(ConfigError::QuorumNeedsEligible);
        }
        Ok(())
    }
}

const COMMON_KEYS: &[&str] = &["weights", "quorum", "eligible", "tie_break"];

#[derive(Deserialize)]
#[serde(untagged)]
enum EligibleSpec {
    Count(u64),
    Voters(Vec<String>),
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawCommon {
    weights: BTreeMap<String, Weight>,
    quorum: Option<Quorum>,
    eligible: Option<EligibleSpec>,
    tie_break: TieBreak,
}

/// Splits a JSON configuration into the common parameters and the method's
/// own `P`, rejecting keys that belong to neither so that a typo such as
/// `"treshold"` cannot silently fall back to a default.
pub(crate) fn parse_config<P: DeserializeOwned>(
    raw: &Value,
    method_keys: &[&str],
) -> Result<(Common, P), ConfigError> {
    let empty = Map::new();
    let obj = match raw {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => return Err(ConfigError::NotAnObject),
    };
    if let Some(key) = obj
        .keys()
        .find(|k| !COMMON_KEYS.contains(&k.as_str()) && !method_keys.contains(&k.as_str()))
    {
        return Err(ConfigError::UnknownParameter(key.clone()));
    }
    let raw_common: RawCommon = deserialize_subset(obj, COMMON_KEYS)?;
    let eligible = raw_common.eligible.map(|spec| match spec {
        EligibleSpec::Count(n) => n,
        EligibleSpec::Voters(list) => {
            let distinct: std::collections::BTreeSet<&String> = list.iter().collect();
            distinct.len() as u64
        }
    });
    let common = Common {
        weights: raw_common.weights,
        quorum: raw_common.quorum,
        eligible,
        tie_break: raw_common.tie_break,
    };
    common.validate()?;
    let params = deserialize_subset(obj, method_keys)?;
    Ok((common, params))
}

fn deserialize_subset<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    keys: &[&str],
) -> Result<T, ConfigError> {
    let subset: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(subset.clone())).map_err(|err| {
        // Every field has a default, so re-parsing one key at a time finds
        // the parameter to blame; serde's own message does not name it.
        let name = subset
            .iter()
            .find(|(k, v)| {
                let single = Map::from_iter([((*k).clone(), (*v).clone())]);
                serde_json::from_value::<T>(Value::Object(single)).is_err()
            })
            .map_or_else(|| "?".to_owned(), |(k, _)| k.clone());
        ConfigError::InvalidParameter {
            name,
            message: err.to_string(),
        }
    })
}

/// Checks the `options` list shared by the option-based methods.
pub(crate) fn validate_options(options: &[String]) -> Result<(), ConfigError> {
    if options.is_empty() {
        return Err(ConfigError::NoOptions);
    }
    if options.len() > MAX_OPTIONS {
        return Err(ConfigError::TooManyOptions { max: MAX_OPTIONS });
    }
    let mut seen = std::collections::BTreeSet::new();
    for option in options {
        if option.is_empty() {
            return Err(ConfigError::EmptyOptionName);
        }
        if !seen.insert(option.as_str()) {
            return Err(ConfigError::DuplicateOption(option.clone()));
        }
    }
    Ok(())
}

pub(crate) fn out_of_range(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::OutOfRange {
        name,
        message: message.into(),
    }
}

pub(crate) fn check_amount_bound(name: &'static str, value: i64) -> Result<(), ConfigError> {
    if value.abs() > MAX_AMOUNT {
        return Err(out_of_range(
            name,
            format!("must be between -{MAX_AMOUNT} and {MAX_AMOUNT}"),
        ));
    }
    Ok(())
}

/// A configuration that cannot be used; `code()` is stable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration must be a JSON object")]
    NotAnObject,
    #[error("unknown parameter `{0}`")]
    UnknownParameter(String),
    #[error("parameter `{name}` is invalid: {message}")]
    InvalidParameter { name: String, message: String },
    #[error("at least one option is required")]
    NoOptions,
    #[error("option `{0}` is listed more than once")]
    DuplicateOption(String),
    #[error("too many options (at most {max})")]
    TooManyOptions { max: usize },
    #[error("an option name must not be empty")]
    EmptyOptionName,
    #[error("a percent quorum needs `eligible` (the number or list of eligible voters)")]
    QuorumNeedsEligible,
    #[error("parameter `{name}` is out of range: {message}")]
    OutOfRange { name: &'static str, message: String },
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::NotAnObject => "not_an_object",
            ConfigError::UnknownParameter(_) => "unknown_parameter",
            ConfigError::InvalidParameter { .. } => "invalid_parameter",
            ConfigError::NoOptions => "no_options",
            ConfigError::DuplicateOption(_) => "duplicate_option",
            ConfigError::TooManyOptions { .. } => "too_many_options",
            ConfigError::EmptyOptionName => "empty_option_name",
            ConfigError::QuorumNeedsEligible => "quorum_needs_eligible",
            ConfigError::OutOfRange { .. } => "out_of_range",
        }
    }
}

impl Serialize for ConfigError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        error_json(s, self.code(), &self.to_string())
    }
}

/// A ballot that cannot be counted; `code()` is stable and the message is
/// meant for the voter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BallotError {
    #[error("the choice must be {expected}")]
    MalformedChoice { expected: &'static str },
    #[error("`{option}` is not one of the options")]
    UnknownOption { option: String },
    #[error("`{option}` appears more than once")]
    DuplicateOption { option: String },
    #[error("at most {max} options may be selected, got {got}")]
    TooManySelections { max: usize, got: usize },
    #[error("at least {min} options must be selected, got {got}")]
    TooFewSelections { min: usize, got: usize },
    #[error("the score for `{option}` must be between {min} and {max}, got {score}")]
    ScoreOutOfRange {
        option: String,
        score: i64,
        min: i64,
        max: i64,
    },
    #[error("the amount for `{option}` must be a whole number")]
    NotAnInteger { option: String },
    #[error("the amount for `{option}` must not be negative, got {amount}")]
    NegativeAmount { option: String, amount: i64 },
    #[error("the ballot spends {spent} but only {budget} are available")]
    OverBudget { spent: u128, budget: u64 },
}

impl BallotError {
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The API's code for this refusal (every ballot error is one of [`ErrorCode`]'s).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            BallotError::MalformedChoice { .. } => ErrorCode::MalformedChoice,
            BallotError::UnknownOption { .. } => ErrorCode::UnknownOption,
            BallotError::DuplicateOption { .. } => ErrorCode::DuplicateOption,
            BallotError::TooManySelections { .. } => ErrorCode::TooManySelections,
            BallotError::TooFewSelections { .. } => ErrorCode::TooFewSelections,
            BallotError::ScoreOutOfRange { .. } => ErrorCode::ScoreOutOfRange,
            BallotError::NotAnInteger { .. } => ErrorCode::NotAnInteger,
            BallotError::NegativeAmount { .. } => ErrorCode::NegativeAmount,
            BallotError::OverBudget { .. } => ErrorCode::OverBudget,
        }
    }
}

impl Serialize for BallotError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        error_json(s, self.code(), &self.to_string())
    }
}

fn error_json<S: Serializer>(s: S, code: &str, message: &str) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(2))?;
    map.serialize_entry("code", code)?;
    map.serialize_entry("message", message)?;
    map.end()
}

/// Implements [`Method`] for a method module's marker type by delegating to the module's
/// free functions (`Config::from_json`, `validate_choice`, `tally`, `canonical_choice`), which
/// every module offers with the same shapes.
macro_rules! method_via_functions {
    ($marker:ident, $choice:ty) => {
        impl super::Method for $marker {
            const NAME: &'static str = NAME;
            type Config = Config;
            type Choice = $choice;

            fn parse_config(raw: &Value) -> Result<Config, ConfigError> {
                Config::from_json(raw)
            }

            fn validate_choice(raw: &Value, cfg: &Config) -> Result<$choice, BallotError> {
                validate_choice(raw, cfg)
            }

            fn tally(ballots: &[Ballot<$choice>], cfg: &Config) -> Outcome {
                tally(ballots, cfg)
            }

            fn canonical_choice(choice: &$choice, cfg: &Config) -> Value {
                canonical_choice(choice, cfg)
            }
        }
    };
}
pub(crate) use method_via_functions;

/// The interface every method module implements, for callers that dispatch
/// on the method name (the plugin) and for [`super::commitment`].
pub trait Method {
    /// The `method` name used in configurations, outcomes and commitments.
    const NAME: &'static str;
    type Config;
    type Choice;
    fn parse_config(raw: &Value) -> Result<Self::Config, ConfigError>;
    fn validate_choice(raw: &Value, cfg: &Self::Config) -> Result<Self::Choice, BallotError>;
    fn tally(ballots: &[Ballot<Self::Choice>], cfg: &Self::Config) -> Outcome;
    /// The choice as it is hashed into the commitment (see `commitment`).
    fn canonical_choice(choice: &Self::Choice, cfg: &Self::Config) -> Value;
}

/// What was decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Single-winner methods; `None` for a tie, an empty vote or a missed quorum.
    Winner(Option<String>),
    /// Multi-seat ranked votes, in order of election.
    Winners(Vec<String>),
    /// Proposal, consent and count.
    Passed(bool),
}

/// Method-specific parts of an [`Outcome`].
#[derive(Clone, Debug, PartialEq)]
pub enum Details {
    None,
    /// `support` is agree / (agree + disagree) in percent, `None` when no
    /// ballot agreed or disagreed.
    Proposal {
        support: Option<f64>,
        blocked: bool,
    },
    /// Weighted average score per option, `None` when all weight is zero.
    Score {
        averages: BTreeMap<String, Option<f64>>,
    },
    Irv {
        rounds: Vec<ranked::Round>,
    },
    Stv {
        quota: f64,
        rounds: Vec<ranked::Round>,
    },
    Count {
        target: Option<f64>,
    },
}

/// The result of a tally. Serialises to the JSON object described in the
/// crate docs: `method`, then `winner` / `winners` / `passed`, `tied` (only
/// when not empty), `quorum_met`, `ballots`, `tally`, then the details
/// (`support` and `blocked`, `averages`, `quota` and `rounds`, `target`).
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub method: &'static str,
    pub decision: Decision,
    pub tied: Vec<String>,
    pub quorum_met: bool,
    pub ballots: u64,
    pub tally: BTreeMap<String, f64>,
    pub details: Details,
}

impl Outcome {
    pub fn winner(&self) -> Option<&str> {
        match &self.decision {
            Decision::Winner(w) => w.as_deref(),
            _ => None,
        }
    }

    pub fn winners(&self) -> &[String] {
        match &self.decision {
            Decision::Winners(w) => w,
            _ => &[],
        }
    }

    pub fn passed(&self) -> Option<bool> {
        match self.decision {
            Decision::Passed(p) => Some(p),
            _ => None,
        }
    }

    pub fn rounds(&self) -> &[ranked::Round] {
        match &self.details {
            Details::Irv { rounds } | Details::Stv { rounds, .. } => rounds,
            _ => &[],
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("method", self.method)?;
        match &self.decision {
            Decision::Winner(w) => map.serialize_entry("winner", w)?,
            Decision::Winners(w) => map.serialize_entry("winners", w)?,
            Decision::Passed(p) => map.serialize_entry("passed", p)?,
        }
        if !self.tied.is_empty() {
            map.serialize_entry("tied", &self.tied)?;
        }
        map.serialize_entry("quorum_met", &self.quorum_met)?;
        map.serialize_entry("ballots", &self.ballots)?;
        map.serialize_entry("tally", &self.tally)?;
        match &self.details {
            Details::None => {}
            Details::Proposal { support, blocked } => {
                map.serialize_entry("support", support)?;
                map.serialize_entry("blocked", blocked)?;
            }
            Details::Score { averages } => map.serialize_entry("averages", averages)?,
            Details::Irv { rounds } => map.serialize_entry("rounds", rounds)?,
            Details::Stv { quota, rounds } => {
                map.serialize_entry("quota", quota)?;
                map.serialize_entry("rounds", rounds)?;
            }
            Details::Count { target } => map.serialize_entry("target", target)?,
        }
        map.end()
    }
}

/// The number of ballots, as reported in `ballots` and checked by the quorum.
pub(crate) fn ballot_count<C>(ballots: &[Ballot<C>]) -> u64 {
    ballots.len() as u64
}

pub(crate) fn index_of(options: &[String], name: &str) -> Option<OptionIndex> {
    // Option lists are short (at most MAX_OPTIONS) and validated once per
    // ballot, so a scan beats building a map for every call.
    options
        .iter()
        .position(|o| o == name)
        .and_then(|i| OptionIndex::try_from(i).ok())
}

pub(crate) fn option_name(options: &[String], index: usize) -> String {
    options.get(index).cloned().unwrap_or_default()
}

/// Reads a choice that is a single keyword among `allowed`.
pub(crate) fn parse_keyword<T: Copy>(
    raw: &Value,
    allowed: &[(&str, T)],
    expected: &'static str,
) -> Result<T, BallotError> {
    let text = raw
        .as_str()
        .ok_or(BallotError::MalformedChoice { expected })?;
    allowed
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| BallotError::UnknownOption {
            option: text.to_owned(),
        })
}

/// Reads a list of distinct, known option names, keeping the voter's order.
pub(crate) fn parse_option_list(
    raw: &Value,
    options: &[String],
    expected: &'static str,
) -> Result<Vec<OptionIndex>, BallotError> {
    let items = raw
        .as_array()
        .ok_or(BallotError::MalformedChoice { expected })?;
    let mut seen = vec![false; options.len()];
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let name = item
            .as_str()
            .ok_or(BallotError::MalformedChoice { expected })?;
        let index = index_of(options, name).ok_or_else(|| BallotError::UnknownOption {
            option: name.to_owned(),
        })?;
        let slot = &mut seen[usize::from(index)];
        if *slot {
            return Err(BallotError::DuplicateOption {
                option: name.to_owned(),
            });
        }
        *slot = true;
        out.push(index);
    }
    Ok(out)
}

/// Reads an object option → whole number, sorted by option index. Integral
/// floats such as `3.0` are accepted because JSON does not tell them apart.
pub(crate) fn parse_amounts(
    raw: &Value,
    options: &[String],
    expected: &'static str,
) -> Result<Vec<(OptionIndex, i64)>, BallotError> {
    let obj = raw
        .as_object()
        .ok_or(BallotError::MalformedChoice { expected })?;
    let mut out = Vec::with_capacity(obj.len());
    for (name, value) in obj {
        let index = index_of(options, name).ok_or_else(|| BallotError::UnknownOption {
            option: name.clone(),
        })?;
        let amount = json_integer(value).ok_or_else(|| match value {
            Value::Number(_) => BallotError::NotAnInteger {
                option: name.clone(),
            },
            _ => BallotError::MalformedChoice { expected },
        })?;
        out.push((index, amount));
    }
    out.sort_unstable_by_key(|&(index, _)| index);
    Ok(out)
}

/// Whole numbers beyond ±MAX_AMOUNT·1000 are refused as non-integers: no
/// valid ballot needs them and it keeps every later product in range.
fn json_integer(value: &Value) -> Option<i64> {
    const LIMIT: i64 = MAX_AMOUNT * 1000;
    let n = value.as_number()?;
    let int = if let Some(i) = n.as_i64() {
        i
    } else {
        let f = n.as_f64()?;
        if f.fract() != 0.0 || f.abs() > LIMIT as f64 {
            return None;
        }
        f as i64
    };
    (int.abs() <= LIMIT).then_some(int)
}

/// The option(s) with the highest total above `floor`. Returns the winner
/// under `tie_break` and, when several share the top, all of them.
pub(crate) fn pick_winner(
    totals: &[i128],
    floor: i128,
    tie_break: TieBreak,
) -> (Option<usize>, Vec<usize>) {
    let Some(&best) = totals.iter().max() else {
        return (None, Vec::new());
    };
    if best <= floor {
        return (None, Vec::new());
    }
    let top: Vec<usize> = (0..totals.len()).filter(|&i| totals[i] == best).collect();
    match (top.as_slice(), tie_break) {
        ([only], _) => (Some(*only), Vec::new()),
        (_, TieBreak::None) => (None, top),
        (_, TieBreak::FirstOption) => (top.first().copied(), top),
    }
}

/// Builds the outcome of a method that sums per-option totals and elects
/// the highest (choice, approval, score, dot, quadratic).
pub(crate) fn totals_outcome(
    method: &'static str,
    options: &[String],
    totals: &[i128],
    floor: i128,
    ballots: u64,
    common: &Common,
    details: Details,
) -> Outcome {
    let quorum_met = common.quorum_met(ballots);
    let (winner, tied) = if quorum_met {
        pick_winner(totals, floor, common.tie_break)
    } else {
        (None, Vec::new())
    };
    Outcome {
        method,
        decision: Decision::Winner(winner.map(|i| option_name(options, i))),
        tied: tied.into_iter().map(|i| option_name(options, i)).collect(),
        quorum_met,
        ballots,
        tally: options
            .iter()
            .zip(totals)
            .map(|(name, &total)| (name.clone(), units_to_f64(total)))
            .collect(),
        details,
    }
}

/// Canonical JSON for a list of option indexes: their names, in the order given.
pub(crate) fn names_json(options: &[String], indexes: &[OptionIndex]) -> Value {
    Value::Array(
        indexes
            .iter()
            .map(|&i| Value::String(option_name(options, usize::from(i))))
            .collect(),
    )
}

/// Canonical JSON for amounts: option name → integer.
pub(crate) fn amounts_json<A: Copy + Into<Value>>(
    options: &[String],
    amounts: &[(OptionIndex, A)],
) -> Value {
    Value::Object(
        amounts
            .iter()
            .map(|&(i, a)| (option_name(options, usize::from(i)), a.into()))
            .collect(),
    )
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    pub fn w(votes: u64) -> Weight {
        Weight::from_whole(votes).expect("small weight")
    }

    pub fn opts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Ballots of weight 1 for voters v0, v1, ….
    pub fn unit_ballots<C: Clone>(choices: &[C]) -> Vec<Ballot<C>> {
        choices
            .iter()
            .enumerate()
            .map(|(i, c)| Ballot::new(format!("v{i}"), Weight::ONE, c.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn weight_parsing_rounds_to_five_places() {
        assert_eq!(Weight::from_f64(1.0).unwrap(), Weight::ONE);
        assert_eq!(Weight::from_f64(0.1).unwrap().units(), 10_000);
        assert_eq!(Weight::from_f64(0.123456).unwrap().units(), 12_346);
        assert!(Weight::from_f64(-1.0).is_err());
        assert!(Weight::from_f64(f64::NAN).is_err());
        assert!(Weight::from_f64(2e9).is_err());
    }

    #[test]
    fn weight_display_is_plain_decimal() {
        assert_eq!(Weight::ONE.to_string(), "1");
        assert_eq!(Weight::ZERO.to_string(), "0");
        assert_eq!(Weight::from_units(1).unwrap().to_string(), "0.00001");
        assert_eq!(Weight::from_units(250_000).unwrap().to_string(), "2.5");
        assert_eq!(Weight::from_units(123_450).unwrap().to_string(), "1.2345");
    }

    #[test]
    fn count_quorum() {
        let common = Common {
            quorum: Some(Quorum::Count(3)),
            ..Common::default()
        };
        assert!(!common.quorum_met(2));
        assert!(common.quorum_met(3));
    }

    #[test]
    fn percent_quorum_is_inclusive_and_exact() {
        let common = Common {
            quorum: Some(Quorum::Percent(Percent::from_f64(33.33333).unwrap())),
            eligible: Some(3),
            ..Common::default()
        };
        // 1 of 3 is 33.333…%, which is at least 33.33333%.
        assert!(common.quorum_met(1));
        assert!(!common.quorum_met(0));
        let half = Common {
            quorum: Some(Quorum::Percent(Percent::from_whole(50).unwrap())),
            eligible: Some(10),
            ..Common::default()
        };
        assert!(!half.quorum_met(4));
        assert!(half.quorum_met(5));
    }

    #[test]
    fn percent_quorum_without_eligible_is_rejected() {
        let err = parse_config::<serde_json::Map<String, Value>>(
            &json!({"quorum": {"percent": 50}}),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.code(), "quorum_needs_eligible");
        // A hand-built config without it never meets the quorum.
        let common = Common {
            quorum: Some(Quorum::Percent(Percent::from_whole(10).unwrap())),
            ..Common::default()
        };
        assert!(!common.quorum_met(100));
    }

    #[test]
    fn eligible_list_counts_distinct_voters() {
        let (common, _): (Common, serde_json::Map<String, Value>) = parse_config(
            &json!({"eligible": ["a", "b", "a"], "quorum": {"percent": 100}}),
            &[],
        )
        .unwrap();
        assert_eq!(common.eligible, Some(2));
        assert!(common.quorum_met(2));
        assert!(!common.quorum_met(1));
    }

    #[test]
    fn unknown_and_invalid_parameters_are_named() {
        let err = parse_config::<serde_json::Map<String, Value>>(&json!({"treshold": 5}), &[])
            .unwrap_err();
        assert_eq!(err, ConfigError::UnknownParameter("treshold".into()));
        let err =
            parse_config::<serde_json::Map<String, Value>>(&json!({"weights": {"a": -1}}), &[])
                .unwrap_err();
        assert_eq!(err.code(), "invalid_parameter");
        assert!(matches!(err, ConfigError::InvalidParameter { ref name, .. } if name == "weights"));
        let err = parse_config::<serde_json::Map<String, Value>>(&json!([1]), &[]).unwrap_err();
        assert_eq!(err.code(), "not_an_object");
    }

    #[test]
    fn weights_default_to_one() {
        let (common, _): (Common, serde_json::Map<String, Value>) =
            parse_config(&json!({"weights": {"ann": 2.5, "bob": 0}}), &[]).unwrap();
        assert_eq!(common.weight_of("ann").units(), 250_000);
        assert_eq!(common.weight_of("bob"), Weight::ZERO);
        assert_eq!(common.weight_of("cy"), Weight::ONE);
    }

    #[test]
    fn pick_winner_ties_and_floor() {
        assert_eq!(
            pick_winner(&[3, 5, 1], 0, TieBreak::None),
            (Some(1), vec![])
        );
        assert_eq!(
            pick_winner(&[5, 5, 1], 0, TieBreak::None),
            (None, vec![0, 1])
        );
        assert_eq!(
            pick_winner(&[1, 5, 5], 0, TieBreak::FirstOption),
            (Some(1), vec![1, 2])
        );
        // Nobody supported anything: no winner even with a tie break.
        assert_eq!(
            pick_winner(&[0, 0], 0, TieBreak::FirstOption),
            (None, vec![])
        );
        assert_eq!(pick_winner(&[], 0, TieBreak::None), (None, vec![]));
    }

    #[test]
    fn errors_serialise_with_code_and_message() {
        let err = BallotError::OverBudget {
            spent: 10,
            budget: 8,
        };
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"code": "over_budget", "message": "the ballot spends 10 but only 8 are available"})
        );
    }

    #[test]
    fn amounts_accept_integral_floats_only() {
        let options = test_util::opts(&["a", "b"]);
        let parsed = parse_amounts(&json!({"b": 2.0, "a": 1}), &options, "x").unwrap();
        assert_eq!(parsed, vec![(0, 1), (1, 2)]);
        let err = parse_amounts(&json!({"a": 1.5}), &options, "x").unwrap_err();
        assert_eq!(err.code(), "not_an_integer");
        let err = parse_amounts(&json!({"a": "1"}), &options, "x").unwrap_err();
        assert_eq!(err.code(), "malformed_choice");
        let err = parse_amounts(&json!({"c": 1}), &options, "x").unwrap_err();
        assert_eq!(err.code(), "unknown_option");
    }
}
