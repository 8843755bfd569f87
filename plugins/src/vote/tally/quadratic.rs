//! `quadratic`: quadratic voting. Each voter has `credits` voice credits
//! (default 100, between 1 and 10^18) and buys votes on options; `v` votes
//! on one option cost `v²` credits.
//!
//! A choice is an object option → non-negative whole number of votes. The
//! ballot's cost is the sum of the squares of its votes and must not exceed
//! `credits`: an over-budget ballot is rejected (`over_budget`), never
//! trimmed, because only the voter can say which votes to give up. Votes
//! are non-negative — voting *against* an option is not offered, which keeps
//! the method a plain "how much do you want this" allocation (negative
//! amounts are `negative_amount`). Zero entries are dropped from the
//! canonical form.
//!
//! The rule: an option's total is the sum of weight × votes (votes, not
//! credits); the highest total wins. Ties for first place follow
//! `tie_break`. An option with no votes never wins, so an empty vote has no
//! winner.

use serde::Deserialize;
use serde_json::Value;

use super::{
    allocation_totals, amounts_json, ballot_count, out_of_range, parse_allocation, parse_config,
    totals_outcome, validate_options, Allocation, Ballot, BallotError, Common, ConfigError,
    Details, Outcome,
};

pub const NAME: &str = "quadratic";

const MAX_CREDITS: u64 = 1_000_000_000_000_000_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub common: Common,
    pub options: Vec<String>,
    pub credits: u64,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    credits: Option<u64>,
}

impl Config {
    pub fn new(options: Vec<String>) -> Config {
        Config {
            common: Common::default(),
            options,
            credits: 100,
        }
    }

    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, params): (Common, Params) = parse_config(raw, &["options", "credits"])?;
        validate_options(&params.options)?;
        let credits = params.credits.unwrap_or(100);
        if credits == 0 || credits > MAX_CREDITS {
            return Err(out_of_range(
                "credits",
                format!("must be between 1 and {MAX_CREDITS}"),
            ));
        }
        Ok(Config {
            common,
            options: params.options,
            credits,
        })
    }
}

/// Credits a ballot spends: the sum of the squares of its votes.
pub fn cost(choice: &Allocation) -> u128 {
    // Votes are bounded by the parser, so squares and their sum fit easily;
    // saturating keeps a hand-built allocation from panicking.
    choice.0.iter().fold(0u128, |acc, &(_, votes)| {
        acc.saturating_add(u128::from(votes).saturating_mul(u128::from(votes)))
    })
}

pub fn validate_choice(raw: &Value, cfg: &Config) -> Result<Allocation, BallotError> {
    let allocation = parse_allocation(raw, &cfg.options, "an object mapping options to votes")?;
    let spent = cost(&allocation);
    if spent > u128::from(cfg.credits) {
        return Err(BallotError::OverBudget {
            spent,
            budget: cfg.credits,
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
pub struct Quadratic;

super::method_via_functions!(Quadratic, Allocation);

#[cfg(test)]
mod tests {
    use super::super::test_util::{opts, unit_ballots, w};
    use super::*;
    use serde_json::json;

    fn abc() -> Config {
        Config::new(opts(&["a", "b", "c"]))
    }

    fn votes(cfg: &Config, raw: Value) -> Allocation {
        validate_choice(&raw, cfg).unwrap()
    }

    #[test]
    fn config() {
        assert_eq!(
            Config::from_json(&json!({"options": ["a"]}))
                .unwrap()
                .credits,
            100
        );
        assert_eq!(
            Config::from_json(&json!({"options": ["a"], "credits": 0}))
                .unwrap_err()
                .code(),
            "out_of_range"
        );
    }

    #[test]
    fn cost_is_sum_of_squares() {
        let c = abc();
        // 6² + 8² = 100: exactly the budget.
        let a = votes(&c, json!({"a": 6, "b": 8}));
        assert_eq!(cost(&a), 100);
        let err = validate_choice(&json!({"a": 6, "b": 8, "c": 1}), &c).unwrap_err();
        assert_eq!(
            err,
            BallotError::OverBudget {
                spent: 101,
                budget: 100
            }
        );
        assert_eq!(err.code(), "over_budget");
        assert_eq!(
            validate_choice(&json!({"a": 11}), &c).unwrap_err().code(),
            "over_budget"
        );
        assert_eq!(
            validate_choice(&json!({"a": -2}), &c).unwrap_err().code(),
            "negative_amount"
        );
        assert_eq!(
            validate_choice(&json!("a"), &c).unwrap_err().code(),
            "malformed_choice"
        );
    }

    #[test]
    fn totals_count_votes_not_credits() {
        let c = abc();
        let ballots = vec![
            Ballot::new("x", w(1), votes(&c, json!({"a": 10}))),
            Ballot::new("y", w(1), votes(&c, json!({"b": 7, "c": 7}))),
            Ballot::new("z", w(1), votes(&c, json!({"b": 5}))),
        ];
        let out = tally(&ballots, &c);
        assert_eq!(out.tally["a"], 10.0);
        assert_eq!(out.tally["b"], 12.0);
        assert_eq!(out.winner(), Some("b"));
    }

    #[test]
    fn tie_and_empty() {
        let c = abc();
        let out = tally(&unit_ballots(&[votes(&c, json!({"a": 5, "b": 5}))]), &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.tied, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(tally(&[], &c).winner(), None);
        assert_eq!(
            canonical_choice(&votes(&c, json!({"b": 0, "a": 3})), &c),
            json!({"a": 3})
        );
    }
}
