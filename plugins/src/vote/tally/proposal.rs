//! `proposal`: a yes/no decision on one proposal.
//!
//! A choice is one of the strings `"agree"`, `"abstain"`, `"disagree"` or
//! `"block"`. The rule:
//!
//! * support = agree / (agree + disagree), by weight; abstentions and blocks
//!   are left out of it, so an abstention never moves support.
//! * The proposal passes when the quorum is met, no block stands, and
//!   support is **strictly greater** than `threshold` percent (default 50,
//!   allowed 0 ≤ threshold < 100: a threshold of 100 could never be passed;
//!   use `consent` for unanimity). At exactly the threshold it fails.
//! * One block of non-zero weight defeats the proposal whatever the support.
//!   A zero-weight block does not stand (see the crate's rule on zero
//!   weights).
//! * With no agree and no disagree weight, support is undefined (`null`) and
//!   the proposal fails: an empty vote or one where everyone abstained
//!   decides nothing.
//!
//! The comparison is exact: `agree · 100 > threshold · (agree + disagree)`
//! on integer weights. `tally` reports the weight behind each of the four
//! choices, `support` in percent and `blocked`. `tie_break` does not apply.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{
    ballot_count, parse_config, parse_keyword, units_to_f64, Ballot, BallotError, Common,
    ConfigError, Decision, Details, Outcome, Percent, SCALE,
};

pub const NAME: &str = "proposal";

const DEFAULT_THRESHOLD: Percent = Percent(50 * SCALE);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Choice {
    Agree,
    Abstain,
    Disagree,
    Block,
}

const KEYWORDS: &[(&str, Choice)] = &[
    ("agree", Choice::Agree),
    ("abstain", Choice::Abstain),
    ("disagree", Choice::Disagree),
    ("block", Choice::Block),
];

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Agree => "agree",
            Choice::Abstain => "abstain",
            Choice::Disagree => "disagree",
            Choice::Block => "block",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub common: Common,
    pub threshold: Percent,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            common: Common::default(),
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    threshold: Option<Percent>,
}

impl Config {
    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, params): (Common, Params) = parse_config(raw, &["threshold"])?;
        let threshold = params.threshold.unwrap_or(DEFAULT_THRESHOLD);
        if threshold >= Percent::HUNDRED {
            return Err(super::out_of_range(
                "threshold",
                "must be below 100 (support must be strictly greater than it)",
            ));
        }
        Ok(Config { common, threshold })
    }
}

pub fn validate_choice(raw: &Value, _cfg: &Config) -> Result<Choice, BallotError> {
    parse_keyword(
        raw,
        KEYWORDS,
        "one of \"agree\", \"abstain\", \"disagree\", \"block\"",
    )
}

pub fn canonical_choice(choice: &Choice, _cfg: &Config) -> Value {
    Value::String(choice.as_str().to_owned())
}

pub fn tally(ballots: &[Ballot<Choice>], cfg: &Config) -> Outcome {
    // Indexed like KEYWORDS.
    let mut totals = [0u128; 4];
    for ballot in ballots {
        let slot = match ballot.choice {
            Choice::Agree => 0,
            Choice::Abstain => 1,
            Choice::Disagree => 2,
            Choice::Block => 3,
        };
        totals[slot] += u128::from(ballot.weight.units());
    }
    let [agree, _, disagree, block] = totals;
    let decided = agree + disagree;
    let support = (decided > 0).then(|| agree as f64 * 100.0 / decided as f64);
    let count = ballot_count(ballots);
    let quorum_met = cfg.common.quorum_met(count);
    let blocked = block > 0;
    let above = decided > 0
        && agree * 100 * u128::from(SCALE) > u128::from(cfg.threshold.units()) * decided;
    let tally: BTreeMap<String, f64> = KEYWORDS
        .iter()
        .zip(totals)
        .map(|((name, _), total)| ((*name).to_owned(), units_to_f64(total as i128)))
        .collect();
    Outcome {
        method: NAME,
        decision: Decision::Passed(quorum_met && !blocked && above),
        tied: Vec::new(),
        quorum_met,
        ballots: count,
        tally,
        details: Details::Proposal { support, blocked },
    }
}

/// Marker type implementing [`super::Method`].
pub struct Proposal;

super::method_via_functions!(Proposal, Choice);

#[cfg(test)]
mod tests {
    use super::super::test_util::{unit_ballots, w};
    use super::super::{Quorum, Weight};
    use super::*;
    use serde_json::json;
    use Choice::*;

    fn cfg(raw: Value) -> Config {
        Config::from_json(&raw).unwrap()
    }

    fn support(outcome: &Outcome) -> Option<f64> {
        match outcome.details {
            Details::Proposal { support, .. } => support,
            _ => panic!("not a proposal outcome"),
        }
    }

    #[test]
    fn validates_choices() {
        let c = Config::default();
        assert_eq!(validate_choice(&json!("agree"), &c), Ok(Agree));
        assert_eq!(validate_choice(&json!("block"), &c), Ok(Block));
        assert_eq!(
            validate_choice(&json!("yes"), &c).unwrap_err().code(),
            "unknown_option"
        );
        assert_eq!(
            validate_choice(&json!(["agree"]), &c).unwrap_err().code(),
            "malformed_choice"
        );
    }

    #[test]
    fn simple_majority_passes() {
        let out = tally(&unit_ballots(&[Agree, Agree, Disagree]), &Config::default());
        assert_eq!(out.passed(), Some(true));
        assert!((support(&out).unwrap() - 66.666_666).abs() < 1e-3);
    }

    #[test]
    fn threshold_is_strictly_greater() {
        // Exactly 50%: fails.
        let out = tally(&unit_ballots(&[Agree, Disagree]), &Config::default());
        assert_eq!(out.passed(), Some(false));
        assert_eq!(support(&out), Some(50.0));
        // Exactly 2/3 against a 66.66667 threshold: 66.666…% is below it.
        let two_thirds = cfg(json!({"threshold": 66.66667}));
        let out = tally(&unit_ballots(&[Agree, Agree, Disagree]), &two_thirds);
        assert_eq!(out.passed(), Some(false));
        let below = cfg(json!({"threshold": 66.66666}));
        assert_eq!(
            tally(&unit_ballots(&[Agree, Agree, Disagree]), &below).passed(),
            Some(true)
        );
    }

    #[test]
    fn threshold_zero_needs_some_agreement() {
        let zero = cfg(json!({"threshold": 0}));
        assert_eq!(
            tally(&unit_ballots(&[Agree, Disagree, Disagree]), &zero).passed(),
            Some(true)
        );
        assert_eq!(
            tally(&unit_ballots(&[Disagree]), &zero).passed(),
            Some(false)
        );
    }

    #[test]
    fn threshold_of_100_is_rejected() {
        let err = Config::from_json(&json!({"threshold": 100})).unwrap_err();
        assert_eq!(err.code(), "out_of_range");
        let err = Config::from_json(&json!({"threshold": 101})).unwrap_err();
        assert_eq!(err.code(), "invalid_parameter");
    }

    #[test]
    fn one_block_defeats() {
        let ballots = unit_ballots(&[Agree, Agree, Agree, Agree, Block]);
        let out = tally(&ballots, &Config::default());
        assert_eq!(out.passed(), Some(false));
        assert_eq!(support(&out), Some(100.0));
        assert_eq!(
            out.details,
            Details::Proposal {
                support: Some(100.0),
                blocked: true
            }
        );
    }

    #[test]
    fn zero_weight_block_does_not_stand_but_counts_for_quorum() {
        let mut ballots = unit_ballots(&[Agree, Block]);
        ballots[1].weight = Weight::ZERO;
        let c = cfg(json!({"quorum": {"count": 2}}));
        let out = tally(&ballots, &c);
        assert_eq!(out.ballots, 2);
        assert!(out.quorum_met);
        assert_eq!(out.passed(), Some(true));
        assert_eq!(out.tally["block"], 0.0);
    }

    #[test]
    fn empty_vote_fails() {
        let out = tally(&[], &Config::default());
        assert_eq!(out.passed(), Some(false));
        assert_eq!(out.ballots, 0);
        assert_eq!(support(&out), None);
    }

    #[test]
    fn all_abstain_fails_with_undefined_support() {
        let out = tally(&unit_ballots(&[Abstain, Abstain]), &Config::default());
        assert_eq!(out.passed(), Some(false));
        assert_eq!(support(&out), None);
        assert_eq!(out.tally["abstain"], 2.0);
    }

    #[test]
    fn one_voter() {
        assert_eq!(
            tally(&unit_ballots(&[Agree]), &Config::default()).passed(),
            Some(true)
        );
        assert_eq!(
            tally(&unit_ballots(&[Disagree]), &Config::default()).passed(),
            Some(false)
        );
    }

    #[test]
    fn weights_decide() {
        let ballots = vec![
            Ballot::new("a", w(3), Agree),
            Ballot::new("b", w(1), Disagree),
            Ballot::new("c", w(1), Disagree),
        ];
        let out = tally(&ballots, &Config::default());
        assert_eq!(out.passed(), Some(true));
        assert_eq!(out.tally["agree"], 3.0);
        assert_eq!(out.tally["disagree"], 2.0);
    }

    #[test]
    fn abstentions_count_toward_quorum() {
        let c = cfg(json!({"quorum": {"count": 3}}));
        assert_eq!(
            tally(&unit_ballots(&[Agree, Abstain]), &c).passed(),
            Some(false)
        );
        let out = tally(&unit_ballots(&[Agree, Abstain, Abstain]), &c);
        assert!(out.quorum_met);
        assert_eq!(out.passed(), Some(true));
    }

    #[test]
    fn percent_quorum() {
        let c = cfg(json!({"quorum": {"percent": 50}, "eligible": 6}));
        assert_eq!(
            c.common.quorum,
            Some(Quorum::Percent(Percent::from_whole(50).unwrap()))
        );
        let out = tally(&unit_ballots(&[Agree, Agree]), &c);
        assert!(!out.quorum_met);
        assert_eq!(out.passed(), Some(false));
        assert_eq!(
            tally(&unit_ballots(&[Agree, Agree, Abstain]), &c).passed(),
            Some(true)
        );
    }

    #[test]
    fn outcome_json_shape() {
        let out = tally(&unit_ballots(&[Agree, Disagree, Agree]), &Config::default());
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["method"], "proposal");
        assert_eq!(json["passed"], true);
        assert_eq!(json["quorum_met"], true);
        assert_eq!(json["ballots"], 3);
        assert_eq!(
            json["tally"],
            json!({"agree": 2.0, "abstain": 0.0, "disagree": 1.0, "block": 0.0})
        );
        assert_eq!(json["blocked"], false);
        assert!(json.get("winner").is_none());
        assert!(json.get("tied").is_none());
    }
}
