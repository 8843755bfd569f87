//! `choice`: pick between `min` and `max` of the listed `options`
//! (default exactly one), counted by plurality.
//!
//! A choice is a list of distinct option names. A ballot selecting fewer
//! than `min` or more than `max` options is rejected (`too_few_selections`,
//! `too_many_selections`); `min` may be 0, and then an empty list is an
//! abstention that counts toward the quorum only. Constraints:
//! 0 ≤ `min` ≤ `max`, 1 ≤ `max` ≤ number of options.
//!
//! The rule: every selected option receives the voter's full weight; the
//! option with the highest total wins. A tie for first place is resolved by
//! `tie_break` (default: no winner, the tied options are listed in `tied`).
//! An option nobody selected never wins, so an empty vote has no winner.

use serde::Deserialize;
use serde_json::Value;

use super::{
    ballot_count, out_of_range, parse_config, parse_option_list, selection_json, selection_totals,
    totals_outcome, validate_options, Ballot, BallotError, Common, ConfigError, Details, Outcome,
    Selection,
};

pub const NAME: &str = "choice";

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub common: Common,
    pub options: Vec<String>,
    pub min: usize,
    pub max: usize,
}

impl Config {
    /// A single-choice configuration over `options`.
    pub fn new(options: Vec<String>) -> Config {
        Config {
            common: Common::default(),
            options,
            min: 1,
            max: 1,
        }
    }

    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, params): (Common, Params) = parse_config(raw, &["options", "min", "max"])?;
        validate_options(&params.options)?;
        let (min, max) = (params.min.unwrap_or(1), params.max.unwrap_or(1));
        if max == 0 || max > params.options.len() {
            return Err(out_of_range(
                "max",
                format!(
                    "must be between 1 and the number of options ({})",
                    params.options.len()
                ),
            ));
        }
        if min > max {
            return Err(out_of_range("min", format!("must not exceed max ({max})")));
        }
        Ok(Config {
            common,
            options: params.options,
            min,
            max,
        })
    }
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    min: Option<usize>,
    #[serde(default)]
    max: Option<usize>,
}

pub fn validate_choice(raw: &Value, cfg: &Config) -> Result<Selection, BallotError> {
    let mut picked = parse_option_list(raw, &cfg.options, "a list of option names")?;
    if picked.len() > cfg.max {
        return Err(BallotError::TooManySelections {
            max: cfg.max,
            got: picked.len(),
        });
    }
    if picked.len() < cfg.min {
        return Err(BallotError::TooFewSelections {
            min: cfg.min,
            got: picked.len(),
        });
    }
    picked.sort_unstable();
    Ok(Selection(picked))
}

pub fn canonical_choice(choice: &Selection, cfg: &Config) -> Value {
    selection_json(&cfg.options, choice)
}

pub fn tally(ballots: &[Ballot<Selection>], cfg: &Config) -> Outcome {
    let totals = selection_totals(ballots, cfg.options.len());
    totals_outcome(
        NAME,
        &cfg.options,
        &totals,
        0,
        ballot_count(ballots),
        &cfg.common,
        Details::None,
    )
}

/// Marker type implementing [`super::Method`].
pub struct Choice;

super::method_via_functions!(Choice, Selection);

#[cfg(test)]
mod tests {
    use super::super::test_util::{opts, unit_ballots, w};
    use super::super::Weight;
    use super::*;
    use serde_json::json;

    fn abc() -> Config {
        Config::from_json(&json!({"options": ["a", "b", "c"]})).unwrap()
    }

    fn sel(cfg: &Config, raw: Value) -> Selection {
        validate_choice(&raw, cfg).unwrap()
    }

    #[test]
    fn config_defaults_and_limits() {
        let c = abc();
        assert_eq!((c.min, c.max), (1, 1));
        let bad = |raw: Value| Config::from_json(&raw).unwrap_err().code();
        assert_eq!(bad(json!({"options": []})), "no_options");
        assert_eq!(bad(json!({})), "no_options");
        assert_eq!(bad(json!({"options": ["a", "a"]})), "duplicate_option");
        assert_eq!(bad(json!({"options": ["a"], "max": 2})), "out_of_range");
        assert_eq!(
            bad(json!({"options": ["a", "b"], "min": 2, "max": 1})),
            "out_of_range"
        );
        assert_eq!(
            bad(json!({"options": ["a"], "min": -1})),
            "invalid_parameter"
        );
        assert_eq!(bad(json!({"options": "a"})), "invalid_parameter");
        assert_eq!(bad(json!({"options": [""]})), "empty_option_name");
        assert_eq!(Config::new(opts(&["x"])).max, 1);
    }

    #[test]
    fn validates_selections() {
        let c =
            Config::from_json(&json!({"options": ["a", "b", "c"], "min": 1, "max": 2})).unwrap();
        assert_eq!(sel(&c, json!(["c", "a"])), Selection(vec![0, 2]));
        let err = |raw: Value| validate_choice(&raw, &c).unwrap_err().code();
        assert_eq!(err(json!(["a", "b", "c"])), "too_many_selections");
        assert_eq!(err(json!([])), "too_few_selections");
        assert_eq!(err(json!(["a", "a"])), "duplicate_option");
        assert_eq!(err(json!(["d"])), "unknown_option");
        assert_eq!(err(json!("a")), "malformed_choice");
        assert_eq!(err(json!([1])), "malformed_choice");
    }

    #[test]
    fn plurality_winner() {
        let c = abc();
        let ballots = unit_ballots(&[
            sel(&c, json!(["b"])),
            sel(&c, json!(["b"])),
            sel(&c, json!(["a"])),
        ]);
        let out = tally(&ballots, &c);
        assert_eq!(out.winner(), Some("b"));
        assert_eq!(out.tally["b"], 2.0);
        assert_eq!(out.tally["c"], 0.0);
        assert!(out.tied.is_empty());
    }

    #[test]
    fn tie_gives_no_winner_by_default() {
        let c = abc();
        let ballots = unit_ballots(&[sel(&c, json!(["c"])), sel(&c, json!(["b"]))]);
        let out = tally(&ballots, &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.tied, vec!["b".to_owned(), "c".to_owned()]);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["winner"], Value::Null);
        assert_eq!(json["tied"], json!(["b", "c"]));
    }

    #[test]
    fn tie_break_first_option() {
        let c =
            Config::from_json(&json!({"options": ["a", "b", "c"], "tie_break": "first_option"}))
                .unwrap();
        let ballots = unit_ballots(&[sel(&c, json!(["c"])), sel(&c, json!(["b"]))]);
        assert_eq!(tally(&ballots, &c).winner(), Some("b"));
        let bad = Config::from_json(&json!({"options": ["a"], "tie_break": "random"})).unwrap_err();
        assert_eq!(bad.code(), "invalid_parameter");
    }

    #[test]
    fn empty_vote_has_no_winner() {
        let c = Config::from_json(&json!({"options": ["a", "b"], "tie_break": "first_option"}))
            .unwrap();
        let out = tally(&[], &c);
        assert_eq!(out.winner(), None);
        assert!(out.tied.is_empty());
        assert_eq!(out.ballots, 0);
    }

    #[test]
    fn all_abstain_with_min_zero() {
        let c =
            Config::from_json(&json!({"options": ["a", "b"], "min": 0, "quorum": {"count": 2}}))
                .unwrap();
        let ballots = unit_ballots(&[sel(&c, json!([])), sel(&c, json!([]))]);
        let out = tally(&ballots, &c);
        assert!(out.quorum_met);
        assert_eq!(out.winner(), None);
    }

    #[test]
    fn weights_and_zero_weight() {
        let c = abc();
        let ballots = vec![
            Ballot::new("x", w(3), sel(&c, json!(["a"]))),
            Ballot::new("y", w(1), sel(&c, json!(["b"]))),
            Ballot::new("z", w(1), sel(&c, json!(["b"]))),
            Ballot::new("o", Weight::ZERO, sel(&c, json!(["c"]))),
        ];
        let out = tally(&ballots, &c);
        assert_eq!(out.winner(), Some("a"));
        assert_eq!(out.ballots, 4);
        assert_eq!(out.tally["c"], 0.0);
    }

    #[test]
    fn only_zero_weight_ballots_elect_nobody() {
        let c = abc();
        let ballots = vec![Ballot::new("o", Weight::ZERO, sel(&c, json!(["c"])))];
        assert_eq!(tally(&ballots, &c).winner(), None);
    }

    #[test]
    fn quorum_missed_means_no_winner() {
        let c = Config::from_json(&json!({"options": ["a", "b"], "quorum": {"count": 2}})).unwrap();
        let out = tally(&unit_ballots(&[sel(&c, json!(["a"]))]), &c);
        assert!(!out.quorum_met);
        assert_eq!(out.winner(), None);
        assert_eq!(out.tally["a"], 1.0);
    }

    #[test]
    fn one_voter_multi_select() {
        let c = Config::from_json(&json!({"options": ["a", "b", "c"], "max": 3})).unwrap();
        let out = tally(&unit_ballots(&[sel(&c, json!(["a", "c"]))]), &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.tied, vec!["a".to_owned(), "c".to_owned()]);
        assert_eq!(
            canonical_choice(&sel(&c, json!(["c", "a"])), &c),
            json!(["a", "c"])
        );
    }
}
