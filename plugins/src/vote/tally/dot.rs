//! `dot`: dot voting. Each voter has `dots` dots (default 8, at most
//! 1,000,000,000) to spread across the options.
//!
//! A choice is an object option → non-negative whole number of dots; the
//! dots on a ballot must add up to at most `dots` (`over_budget`
//! otherwise). Unspent dots are simply not used; a negative number is
//! `negative_amount`, a fraction `not_an_integer`. Zero entries are
//! dropped from the canonical form since they change nothing.
//!
//! The rule: an option's total is the sum of weight × dots placed on it;
//! the highest total wins. Ties for first place follow `tie_break`. An
//! option with no dots never wins, so an empty vote has no winner.

use serde::Deserialize;
use serde_json::Value;

use super::{
    allocation_totals, amounts_json, ballot_count, out_of_range, parse_allocation, parse_config,
    totals_outcome, validate_options, Allocation, Ballot, BallotError, Common, ConfigError,
    Details, Outcome,
};

pub const NAME: &str = "dot";

const MAX_DOTS: u64 = 1_000_000_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub common: Common,
    pub options: Vec<String>,
    pub dots: u64,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    dots: Option<u64>,
}

impl Config {
    pub fn new(options: Vec<String>) -> Config {
        Config {
            common: Common::default(),
            options,
            dots: 8,
        }
    }

    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, params): (Common, Params) = parse_config(raw, &["options", "dots"])?;
        validate_options(&params.options)?;
        let dots = params.dots.unwrap_or(8);
        if dots == 0 || dots > MAX_DOTS {
            return Err(out_of_range(
                "dots",
                format!("must be between 1 and {MAX_DOTS}"),
            ));
        }
        Ok(Config {
            common,
            options: params.options,
            dots,
        })
    }
}

pub fn validate_choice(raw: &Value, cfg: &Config) -> Result<Allocation, BallotError> {
    let allocation = parse_allocation(raw, &cfg.options, "an object mapping options to dots")?;
    let spent: u128 = allocation.0.iter().map(|&(_, dots)| u128::from(dots)).sum();
    if spent > u128::from(cfg.dots) {
        return Err(BallotError::OverBudget {
            spent,
            budget: cfg.dots,
        });
    }
    Ok(allocation)
}

pub fn canonical_choice(choice: &Allocation, cfg: &Config) -> Value {
    amounts_json(&cfg.options, &choice.0)
}

pub fn tally(ballots: &[Ballot<Allocation>], cfg: &Config) -> Outcome {
    let totals = allocation_totals(ballots, cfg.options.len());
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
pub struct Dot;

super::method_via_functions!(Dot, Allocation);

#[cfg(test)]
mod tests {
    use super::super::test_util::{opts, unit_ballots, w};
    use super::*;
    use serde_json::json;

    fn abc() -> Config {
        Config::new(opts(&["a", "b", "c"]))
    }

    fn dots(cfg: &Config, raw: Value) -> Allocation {
        validate_choice(&raw, cfg).unwrap()
    }

    #[test]
    fn config() {
        assert_eq!(
            Config::from_json(&json!({"options": ["a"]})).unwrap().dots,
            8
        );
        assert_eq!(
            Config::from_json(&json!({"options": ["a"], "dots": 0}))
                .unwrap_err()
                .code(),
            "out_of_range"
        );
        assert_eq!(
            Config::from_json(&json!({"options": ["a"], "dots": -3}))
                .unwrap_err()
                .code(),
            "invalid_parameter"
        );
    }

    #[test]
    fn validates_budget() {
        let c = abc();
        assert_eq!(
            dots(&c, json!({"b": 5, "a": 3, "c": 0})),
            Allocation(vec![(0, 3), (1, 5)])
        );
        assert_eq!(dots(&c, json!({})), Allocation(vec![]));
        let err = |raw: Value| validate_choice(&raw, &c).unwrap_err();
        assert_eq!(
            err(json!({"a": 5, "b": 4})),
            BallotError::OverBudget {
                spent: 9,
                budget: 8
            }
        );
        assert_eq!(err(json!({"a": 5, "b": 4})).code(), "over_budget");
        assert_eq!(err(json!({"a": -1})).code(), "negative_amount");
        assert_eq!(err(json!({"a": 0.5})).code(), "not_an_integer");
        assert_eq!(err(json!({"q": 1})).code(), "unknown_option");
        assert_eq!(
            err(json!({"a": 1_000_000_000_000_000i64})).code(),
            "not_an_integer"
        );
    }

    #[test]
    fn weighted_totals_and_winner() {
        let c = abc();
        let ballots = vec![
            Ballot::new("x", w(2), dots(&c, json!({"a": 4, "b": 4}))),
            Ballot::new("y", w(1), dots(&c, json!({"b": 1, "c": 7}))),
        ];
        let out = tally(&ballots, &c);
        assert_eq!(out.tally["a"], 8.0);
        assert_eq!(out.tally["b"], 9.0);
        assert_eq!(out.tally["c"], 7.0);
        assert_eq!(out.winner(), Some("b"));
    }

    #[test]
    fn tie_and_empty() {
        let c = abc();
        let out = tally(&unit_ballots(&[dots(&c, json!({"a": 4, "c": 4}))]), &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.tied.len(), 2);
        assert_eq!(tally(&[], &c).winner(), None);
        assert_eq!(
            tally(&unit_ballots(&[dots(&c, json!({}))]), &c).winner(),
            None
        );
    }
}
