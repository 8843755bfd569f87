//! `approval`: approve any number of the listed `options`.
//!
//! A choice is a list of distinct option names, possibly empty (an empty
//! list approves nothing and counts toward the quorum only).
//!
//! The rule: every approved option receives the voter's full weight — a
//! voter approving three options adds their weight to each of the three,
//! not a third to each. The option with the highest total wins; a tie for
//! first place is resolved by `tie_break` (default: no winner, `tied` lists
//! them). An option nobody approved never wins, so an empty vote has no
//! winner.

use serde::Deserialize;
use serde_json::Value;

use super::{
    ballot_count, parse_config, parse_option_list, selection_json, selection_totals,
    totals_outcome, validate_options, Ballot, BallotError, Common, ConfigError, Details, Outcome,
    Selection,
};

pub const NAME: &str = "approval";

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub common: Common,
    pub options: Vec<String>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    options: Vec<String>,
}

impl Config {
    pub fn new(options: Vec<String>) -> Config {
        Config {
            common: Common::default(),
            options,
        }
    }

    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, params): (Common, Params) = parse_config(raw, &["options"])?;
        validate_options(&params.options)?;
        Ok(Config {
            common,
            options: params.options,
        })
    }
}

pub fn validate_choice(raw: &Value, cfg: &Config) -> Result<Selection, BallotError> {
    let mut picked = parse_option_list(raw, &cfg.options, "a list of option names")?;
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
pub struct Approval;

super::method_via_functions!(Approval, Selection);

#[cfg(test)]
mod tests {
    use super::super::test_util::{opts, unit_ballots, w};
    use super::*;
    use serde_json::json;

    fn abc() -> Config {
        Config::new(opts(&["a", "b", "c"]))
    }

    fn sel(cfg: &Config, raw: Value) -> Selection {
        validate_choice(&raw, cfg).unwrap()
    }

    #[test]
    fn validates() {
        let c = abc();
        assert_eq!(sel(&c, json!(["c", "a", "b"])), Selection(vec![0, 1, 2]));
        assert_eq!(sel(&c, json!([])), Selection(vec![]));
        assert_eq!(
            validate_choice(&json!(["a", "a"]), &c).unwrap_err().code(),
            "duplicate_option"
        );
        assert_eq!(
            validate_choice(&json!(["z"]), &c).unwrap_err().code(),
            "unknown_option"
        );
        assert_eq!(
            validate_choice(&json!({"a": 1}), &c).unwrap_err().code(),
            "malformed_choice"
        );
        assert_eq!(
            Config::from_json(&json!({"options": ["a"], "max": 1}))
                .unwrap_err()
                .code(),
            "unknown_parameter"
        );
    }

    #[test]
    fn full_weight_to_each_approved_option() {
        let c = abc();
        let ballots = vec![
            Ballot::new("x", w(2), sel(&c, json!(["a", "b"]))),
            Ballot::new("y", w(1), sel(&c, json!(["b", "c"]))),
        ];
        let out = tally(&ballots, &c);
        assert_eq!(out.tally["a"], 2.0);
        assert_eq!(out.tally["b"], 3.0);
        assert_eq!(out.tally["c"], 1.0);
        assert_eq!(out.winner(), Some("b"));
    }

    #[test]
    fn ties_and_tie_break() {
        let c = abc();
        let ballots = unit_ballots(&[sel(&c, json!(["a", "c"]))]);
        let out = tally(&ballots, &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.tied, vec!["a".to_owned(), "c".to_owned()]);
        let mut first = abc();
        first.common.tie_break = super::super::TieBreak::FirstOption;
        assert_eq!(tally(&ballots, &first).winner(), Some("a"));
    }

    #[test]
    fn empty_and_all_abstain() {
        let c = abc();
        assert_eq!(tally(&[], &c).winner(), None);
        let out = tally(&unit_ballots(&[sel(&c, json!([]))]), &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.ballots, 1);
    }
}
