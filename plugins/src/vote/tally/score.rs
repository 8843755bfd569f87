//! `score`: give each option a whole-number score between `min` and `max`
//! (default 0 to 5; `min` < `max`, both within ±1,000,000,000, and `min`
//! may be negative).
//!
//! A choice is an object option → integer. Integral floats such as `4.0`
//! are accepted; fractions are `not_an_integer`, scores outside the range
//! `score_out_of_range`.
//!
//! The rule: an option the ballot leaves out is scored `min` — a blank is
//! the lowest mark, as on a paper score ballot, so leaving an option out
//! can never help it. An option's total is the sum of weight × score over
//! all ballots; the highest total wins. Ties for first place follow
//! `tie_break`. An option no ballot scored above `min` never wins (its total
//! equals the floor `min` × total weight), so an empty vote has no winner.
//!
//! `tally` holds the totals; `averages` the weighted average score of each
//! option (total / total weight, blanks included as `min`), or `null` when
//! the total weight is zero.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{
    amounts_json, ballot_count, check_amount_bound, out_of_range, parse_amounts, parse_config,
    totals_outcome, validate_options, Ballot, BallotError, Common, ConfigError, Details,
    OptionIndex, Outcome,
};

pub const NAME: &str = "score";

/// Explicit scores, sorted by option index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scores(pub Vec<(OptionIndex, i64)>);

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub common: Common,
    pub options: Vec<String>,
    pub min: i64,
    pub max: i64,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    max: Option<i64>,
}

impl Config {
    pub fn new(options: Vec<String>) -> Config {
        Config {
            common: Common::default(),
            options,
            min: 0,
            max: 5,
        }
    }

    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, params): (Common, Params) = parse_config(raw, &["options", "min", "max"])?;
        validate_options(&params.options)?;
        let (min, max) = (params.min.unwrap_or(0), params.max.unwrap_or(5));
        check_amount_bound("min", min)?;
        check_amount_bound("max", max)?;
        if min >= max {
            return Err(out_of_range(
                "max",
                format!("must be greater than min ({min})"),
            ));
        }
        Ok(Config {
            common,
            options: params.options,
            min,
            max,
        })
    }
}

pub fn validate_choice(raw: &Value, cfg: &Config) -> Result<Scores, BallotError> {
    let scores = parse_amounts(raw, &cfg.options, "an object mapping options to scores")?;
    if let Some(&(index, score)) = scores
        .iter()
        .find(|&&(_, score)| score < cfg.min || score > cfg.max)
    {
        return Err(BallotError::ScoreOutOfRange {
            option: super::option_name(&cfg.options, usize::from(index)),
            score,
            min: cfg.min,
            max: cfg.max,
        });
    }
    Ok(Scores(scores))
}

pub fn canonical_choice(choice: &Scores, cfg: &Config) -> Value {
    amounts_json(&cfg.options, &choice.0)
}

pub fn tally(ballots: &[Ballot<Scores>], cfg: &Config) -> Outcome {
    let n = cfg.options.len();
    let min = i128::from(cfg.min);
    // Sum of weight × explicit score, and the weight that gave one, per
    // option; blanks are filled in with `min` once at the end.
    let mut explicit = vec![0i128; n];
    let mut scored_weight = vec![0i128; n];
    let mut total_weight = 0i128;
    for ballot in ballots {
        let weight = i128::from(ballot.weight.units());
        total_weight += weight;
        for &(index, score) in &ballot.choice.0 {
            let i = usize::from(index);
            if let (Some(sum), Some(scored)) = (explicit.get_mut(i), scored_weight.get_mut(i)) {
                *sum += weight * i128::from(score);
                *scored += weight;
            }
        }
    }
    let totals: Vec<i128> = explicit
        .iter()
        .zip(&scored_weight)
        .map(|(&sum, &scored)| sum + min * (total_weight - scored))
        .collect();
    let averages: BTreeMap<String, Option<f64>> = cfg
        .options
        .iter()
        .zip(&totals)
        .map(|(name, &total)| {
            let avg = (total_weight > 0).then(|| total as f64 / total_weight as f64);
            (name.clone(), avg)
        })
        .collect();
    totals_outcome(
        NAME,
        &cfg.options,
        &totals,
        min * total_weight,
        ballot_count(ballots),
        &cfg.common,
        Details::Score { averages },
    )
}

/// Marker type implementing [`super::Method`].
pub struct Score;

super::method_via_functions!(Score, Scores);

#[cfg(test)]
mod tests {
    use super::super::test_util::{opts, unit_ballots, w};
    use super::super::Weight;
    use super::*;
    use serde_json::json;

    fn abc() -> Config {
        Config::new(opts(&["a", "b", "c"]))
    }

    fn sc(cfg: &Config, raw: Value) -> Scores {
        validate_choice(&raw, cfg).unwrap()
    }

    fn averages(out: &Outcome) -> &BTreeMap<String, Option<f64>> {
        match &out.details {
            Details::Score { averages } => averages,
            _ => panic!("not a score outcome"),
        }
    }

    #[test]
    fn config() {
        let c = Config::from_json(&json!({"options": ["a"], "min": -2, "max": 2})).unwrap();
        assert_eq!((c.min, c.max), (-2, 2));
        let bad = |raw: Value| Config::from_json(&raw).unwrap_err().code();
        assert_eq!(
            bad(json!({"options": ["a"], "min": 3, "max": 3})),
            "out_of_range"
        );
        assert_eq!(
            bad(json!({"options": ["a"], "max": 10_000_000_000i64})),
            "out_of_range"
        );
        assert_eq!(
            bad(json!({"options": ["a"], "max": 2.5})),
            "invalid_parameter"
        );
    }

    #[test]
    fn validates_scores() {
        let c = abc();
        assert_eq!(
            sc(&c, json!({"c": 5, "a": 0.0})),
            Scores(vec![(0, 0), (2, 5)])
        );
        let err = |raw: Value| validate_choice(&raw, &c).unwrap_err();
        assert_eq!(err(json!({"a": 6})).code(), "score_out_of_range");
        assert_eq!(err(json!({"a": -1})).code(), "score_out_of_range");
        assert_eq!(err(json!({"a": 2.5})).code(), "not_an_integer");
        assert_eq!(err(json!({"z": 1})).code(), "unknown_option");
        assert_eq!(err(json!(["a"])).code(), "malformed_choice");
        assert_eq!(
            err(json!({"b": 9})).to_string(),
            "the score for `b` must be between 0 and 5, got 9"
        );
    }

    #[test]
    fn totals_averages_and_winner() {
        let c = abc();
        let ballots = vec![
            Ballot::new("x", w(1), sc(&c, json!({"a": 5, "b": 3}))),
            Ballot::new("y", w(3), sc(&c, json!({"a": 1, "b": 4, "c": 2}))),
        ];
        let out = tally(&ballots, &c);
        // a = 5 + 3·1 = 8, b = 3 + 3·4 = 15, c = 0 + 3·2 = 6; weight 4.
        assert_eq!(out.tally["a"], 8.0);
        assert_eq!(out.tally["b"], 15.0);
        assert_eq!(out.tally["c"], 6.0);
        assert_eq!(out.winner(), Some("b"));
        assert_eq!(averages(&out)["b"], Some(3.75));
        assert_eq!(averages(&out)["c"], Some(1.5));
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["averages"]["a"], 2.0);
    }

    #[test]
    fn blanks_score_min_with_negative_range() {
        let c =
            Config::from_json(&json!({"options": ["a", "b", "c"], "min": -2, "max": 2})).unwrap();
        // a: -1, b: -2, c: blank = -2. Least disliked wins.
        let out = tally(&unit_ballots(&[sc(&c, json!({"a": -1, "b": -2}))]), &c);
        assert_eq!(out.tally["c"], -2.0);
        assert_eq!(out.winner(), Some("a"));
        // Everything at min: nobody rose above the floor.
        let out = tally(&unit_ballots(&[sc(&c, json!({"a": -2}))]), &c);
        assert_eq!(out.winner(), None);
        assert!(out.tied.is_empty());
    }

    #[test]
    fn tie_and_empty() {
        let c = abc();
        let out = tally(&unit_ballots(&[sc(&c, json!({"a": 3, "b": 3}))]), &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.tied, vec!["a".to_owned(), "b".to_owned()]);
        let out = tally(&[], &c);
        assert_eq!(out.winner(), None);
        assert_eq!(averages(&out)["a"], None);
        assert_eq!(
            serde_json::to_value(&out).unwrap()["averages"]["a"],
            Value::Null
        );
    }

    #[test]
    fn zero_weight_scores_nothing() {
        let c = abc();
        let ballots = vec![
            Ballot::new("x", Weight::ZERO, sc(&c, json!({"a": 5}))),
            Ballot::new("y", w(1), sc(&c, json!({"b": 1}))),
        ];
        let out = tally(&ballots, &c);
        assert_eq!(out.winner(), Some("b"));
        assert_eq!(averages(&out)["b"], Some(1.0));
    }
}
