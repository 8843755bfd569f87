//! `consent`: a proposal that goes ahead unless someone objects.
//!
//! A choice is one of the strings `"consent"`, `"object"` or
//! `"stand_aside"` (the voter has reservations but will not stop the group).
//! The rule: at the deadline the proposal passes when the quorum is met and
//! no objection of non-zero weight stands. There is no threshold (consent
//! is not a majority method) and `tie_break` does not apply.
//!
//! Silence is consent: a round with no ballots, or only stand-asides,
//! passes, provided the quorum is met. Configure a `quorum` when the group
//! wants a minimum of participation before silence counts.
//!
//! `tally` reports the weight behind each of the three choices.

use serde::Deserialize;
use serde_json::Value;

use super::{
    ballot_count, parse_config, parse_keyword, units_to_f64, Ballot, BallotError, Common,
    ConfigError, Decision, Details, Outcome,
};

pub const NAME: &str = "consent";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Choice {
    Consent,
    Object,
    StandAside,
}

const KEYWORDS: &[(&str, Choice)] = &[
    ("consent", Choice::Consent),
    ("object", Choice::Object),
    ("stand_aside", Choice::StandAside),
];

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Consent => "consent",
            Choice::Object => "object",
            Choice::StandAside => "stand_aside",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub common: Common,
}

#[derive(Deserialize)]
struct Params {}

impl Config {
    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, Params {}) = parse_config(raw, &[])?;
        Ok(Config { common })
    }
}

pub fn validate_choice(raw: &Value, _cfg: &Config) -> Result<Choice, BallotError> {
    parse_keyword(
        raw,
        KEYWORDS,
        "one of \"consent\", \"object\", \"stand_aside\"",
    )
}

pub fn canonical_choice(choice: &Choice, _cfg: &Config) -> Value {
    Value::String(choice.as_str().to_owned())
}

pub fn tally(ballots: &[Ballot<Choice>], cfg: &Config) -> Outcome {
    let mut totals = [0u128; 3];
    for ballot in ballots {
        let slot = match ballot.choice {
            Choice::Consent => 0,
            Choice::Object => 1,
            Choice::StandAside => 2,
        };
        totals[slot] += u128::from(ballot.weight.units());
    }
    let count = ballot_count(ballots);
    let quorum_met = cfg.common.quorum_met(count);
    let objection_stands = totals[1] > 0;
    Outcome {
        method: NAME,
        decision: Decision::Passed(quorum_met && !objection_stands),
        tied: Vec::new(),
        quorum_met,
        ballots: count,
        tally: KEYWORDS
            .iter()
            .zip(totals)
            .map(|((name, _), total)| ((*name).to_owned(), units_to_f64(total as i128)))
            .collect(),
        details: Details::None,
    }
}

/// Marker type implementing [`super::Method`].
pub struct Consent;

super::method_via_functions!(Consent, Choice);

#[cfg(test)]
mod tests {
    use super::super::test_util::unit_ballots;
    use super::super::Weight;
    use super::*;
    use serde_json::json;
    use Choice::{Consent, Object, StandAside};

    #[test]
    fn validates_choices() {
        let c = Config::default();
        assert_eq!(validate_choice(&json!("stand_aside"), &c), Ok(StandAside));
        assert_eq!(
            validate_choice(&json!("agree"), &c).unwrap_err().code(),
            "unknown_option"
        );
        assert_eq!(
            validate_choice(&json!(1), &c).unwrap_err().code(),
            "malformed_choice"
        );
        assert_eq!(
            Config::from_json(&json!({"threshold": 50}))
                .unwrap_err()
                .code(),
            "unknown_parameter"
        );
    }

    #[test]
    fn passes_without_objection() {
        let out = tally(
            &unit_ballots(&[Consent, StandAside, Consent]),
            &Config::default(),
        );
        assert_eq!(out.passed(), Some(true));
        assert_eq!(out.tally["stand_aside"], 1.0);
    }

    #[test]
    fn one_objection_defeats() {
        let out = tally(
            &unit_ballots(&[Consent, Consent, Consent, Object]),
            &Config::default(),
        );
        assert_eq!(out.passed(), Some(false));
    }

    #[test]
    fn zero_weight_objection_does_not_stand() {
        let mut ballots = unit_ballots(&[Consent, Object]);
        ballots[1].weight = Weight::ZERO;
        assert_eq!(tally(&ballots, &Config::default()).passed(), Some(true));
    }

    #[test]
    fn empty_round_passes_unless_quorum_missed() {
        assert_eq!(tally(&[], &Config::default()).passed(), Some(true));
        let c = Config::from_json(&json!({"quorum": {"count": 1}})).unwrap();
        let out = tally(&[], &c);
        assert!(!out.quorum_met);
        assert_eq!(out.passed(), Some(false));
    }

    #[test]
    fn all_stand_aside_passes() {
        assert_eq!(
            tally(&unit_ballots(&[StandAside, StandAside]), &Config::default()).passed(),
            Some(true)
        );
    }

    #[test]
    fn percent_quorum_counts_stand_asides() {
        let c = Config::from_json(&json!({"quorum": {"percent": 60}, "eligible": 5})).unwrap();
        assert_eq!(
            tally(&unit_ballots(&[Consent, StandAside]), &c).passed(),
            Some(false)
        );
        assert_eq!(
            tally(&unit_ballots(&[Consent, StandAside, StandAside]), &c).passed(),
            Some(true)
        );
    }
}
