//! `count`: opt-in sign-ups ("who is in?").
//!
//! A choice is the string `"accept"` or `"decline"`. The rule: with a
//! `target` (a non-negative number, compared with the accepted *weight*) the
//! count passes when the quorum is met and accepted weight ≥ target — reaching
//! the target exactly is enough, unlike a proposal's threshold, because a
//! target is a head count to reach, not a majority to exceed. Without a
//! target there is no bar to clear: the count passes whenever its quorum is
//! met, and the useful result is the accepted total itself.
//!
//! `tally` reports the `accept` and `decline` weights and `target` is echoed
//! (or `null`). `tie_break` does not apply.

use serde::Deserialize;
use serde_json::Value;

use super::{
    ballot_count, parse_config, parse_keyword, units_to_f64, Ballot, BallotError, Common,
    ConfigError, Decision, Details, Outcome, Weight,
};

pub const NAME: &str = "count";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Choice {
    Accept,
    Decline,
}

const KEYWORDS: &[(&str, Choice)] = &[("accept", Choice::Accept), ("decline", Choice::Decline)];

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Accept => "accept",
            Choice::Decline => "decline",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub common: Common,
    pub target: Option<Weight>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    target: Option<Weight>,
}

impl Config {
    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, params): (Common, Params) = parse_config(raw, &["target"])?;
        Ok(Config {
            common,
            target: params.target,
        })
    }
}

pub fn validate_choice(raw: &Value, _cfg: &Config) -> Result<Choice, BallotError> {
    parse_keyword(raw, KEYWORDS, "one of \"accept\", \"decline\"")
}

pub fn canonical_choice(choice: &Choice, _cfg: &Config) -> Value {
    Value::String(choice.as_str().to_owned())
}

pub fn tally(ballots: &[Ballot<Choice>], cfg: &Config) -> Outcome {
    let mut accepted = 0u128;
    let mut declined = 0u128;
    for ballot in ballots {
        let weight = u128::from(ballot.weight.units());
        match ballot.choice {
            Choice::Accept => accepted += weight,
            Choice::Decline => declined += weight,
        }
    }
    let count = ballot_count(ballots);
    let quorum_met = cfg.common.quorum_met(count);
    let reached = cfg
        .target
        .is_none_or(|target| accepted >= u128::from(target.units()));
    Outcome {
        method: NAME,
        decision: Decision::Passed(quorum_met && reached),
        tied: Vec::new(),
        quorum_met,
        ballots: count,
        tally: [
            ("accept".to_owned(), units_to_f64(accepted as i128)),
            ("decline".to_owned(), units_to_f64(declined as i128)),
        ]
        .into_iter()
        .collect(),
        details: Details::Count {
            target: cfg.target.map(Weight::to_f64),
        },
    }
}

/// Marker type implementing [`super::Method`].
pub struct Count;

super::method_via_functions!(Count, Choice);

#[cfg(test)]
mod tests {
    use super::super::test_util::{unit_ballots, w};
    use super::*;
    use serde_json::json;
    use Choice::*;

    fn with_target(target: f64) -> Config {
        Config::from_json(&json!({ "target": target })).unwrap()
    }

    #[test]
    fn validates_choices() {
        let c = Config::default();
        assert_eq!(validate_choice(&json!("accept"), &c), Ok(Accept));
        assert_eq!(
            validate_choice(&json!("maybe"), &c).unwrap_err().code(),
            "unknown_option"
        );
        assert_eq!(
            Config::from_json(&json!({"target": -1}))
                .unwrap_err()
                .code(),
            "invalid_parameter"
        );
    }

    #[test]
    fn target_reached_exactly_passes() {
        let out = tally(&unit_ballots(&[Accept, Accept, Decline]), &with_target(2.0));
        assert_eq!(out.passed(), Some(true));
        assert_eq!(out.tally["accept"], 2.0);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["target"], 2.0);
    }

    #[test]
    fn target_missed_fails() {
        assert_eq!(
            tally(&unit_ballots(&[Accept, Decline]), &with_target(2.0)).passed(),
            Some(false)
        );
    }

    #[test]
    fn no_target_passes_when_quorum_met() {
        let out = tally(&unit_ballots(&[Decline]), &Config::default());
        assert_eq!(out.passed(), Some(true));
        assert_eq!(serde_json::to_value(&out).unwrap()["target"], Value::Null);
        let c = Config::from_json(&json!({"quorum": {"count": 2}})).unwrap();
        assert_eq!(tally(&unit_ballots(&[Accept]), &c).passed(), Some(false));
    }

    #[test]
    fn empty_count_with_target_fails() {
        assert_eq!(tally(&[], &with_target(1.0)).passed(), Some(false));
        // A zero target is met by nobody signing up.
        assert_eq!(tally(&[], &with_target(0.0)).passed(), Some(true));
    }

    #[test]
    fn weights_count_toward_target() {
        let ballots = vec![
            Ballot::new("a", w(3), Accept),
            Ballot::new("b", Weight::ZERO, Accept),
        ];
        let out = tally(&ballots, &with_target(3.0));
        assert_eq!(out.passed(), Some(true));
        assert_eq!(out.ballots, 2);
    }
}
