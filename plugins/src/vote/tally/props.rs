//! Property tests over all methods: the invariants no hand-picked example
//! can cover. Reordering the ballots never changes an outcome (nor the
//! commitment); an IRV candidate with a first-preference majority wins in
//! round one; an added abstention never changes a proposal's support; an
//! STV count never creates or loses weight (standing + elected +
//! exhausted = valid weight at every stage).

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::sample::{subsequence, Index};

use super::*;

const OPTIONS: [&str; 5] = ["a", "b", "c", "d", "e"];

fn options() -> Vec<String> {
    OPTIONS.iter().map(|s| (*s).to_owned()).collect()
}

/// Mostly weight 1, so ties are common, sometimes any weight up to 3
/// including zero.
fn weight() -> impl Strategy<Value = Weight> {
    prop_oneof![
        3 => Just(Weight::ONE),
        1 => (0u64..=300_000).prop_map(|u| Weight::from_units(u).unwrap_or(Weight::ONE)),
    ]
}

fn ballots_of<C: Clone + Debug>(
    choice: impl Strategy<Value = C>,
    max: usize,
) -> impl Strategy<Value = Vec<Ballot<C>>> {
    prop::collection::vec((weight(), choice), 0..max).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (w, c))| Ballot::new(format!("v{i:03}"), w, c))
            .collect()
    })
}

/// The ballots and a random permutation of them.
fn with_shuffle<C: Clone + Debug>(
    ballots: impl Strategy<Value = Vec<Ballot<C>>>,
) -> impl Strategy<Value = (Vec<Ballot<C>>, Vec<Ballot<C>>)> {
    ballots.prop_flat_map(|b| {
        let original = b.clone();
        Just(b)
            .prop_shuffle()
            .prop_map(move |s| (original.clone(), s))
    })
}

fn indexes() -> Vec<OptionIndex> {
    (0..OPTIONS.len() as OptionIndex).collect()
}

fn ranking() -> impl Strategy<Value = ranked::Ranking> {
    (Just(indexes()).prop_shuffle(), 0..=OPTIONS.len())
        .prop_map(|(order, len)| ranked::Ranking(order[..len].to_vec()))
}

fn selection(max: usize) -> impl Strategy<Value = Selection> {
    subsequence(indexes(), 0..=max).prop_map(Selection)
}

fn amounts(max: i64) -> impl Strategy<Value = Vec<(OptionIndex, i64)>> {
    prop::collection::btree_map(0..OPTIONS.len() as OptionIndex, 0..=max, 0..=3)
        .prop_map(|m| m.into_iter().collect())
}

fn allocation() -> impl Strategy<Value = Allocation> {
    prop::collection::btree_map(0..OPTIONS.len() as OptionIndex, 1u64..=2, 0..=3)
        .prop_map(|m| Allocation(m.into_iter().collect()))
}

fn proposal_choice() -> impl Strategy<Value = proposal::Choice> {
    use proposal::Choice::*;
    prop_oneof![Just(Agree), Just(Abstain), Just(Disagree), Just(Block)]
}

fn tie_break() -> impl Strategy<Value = TieBreak> {
    prop_oneof![Just(TieBreak::None), Just(TieBreak::FirstOption)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn proposal_order_independent((a, b) in with_shuffle(ballots_of(proposal_choice(), 30))) {
        let cfg = proposal::Config::default();
        prop_assert_eq!(proposal::tally(&a, &cfg), proposal::tally(&b, &cfg));
    }

    #[test]
    fn consent_order_independent((a, b) in with_shuffle(ballots_of(
        prop_oneof![Just(consent::Choice::Consent), Just(consent::Choice::Object), Just(consent::Choice::StandAside)],
        30,
    ))) {
        let cfg = consent::Config::default();
        prop_assert_eq!(consent::tally(&a, &cfg), consent::tally(&b, &cfg));
    }

    #[test]
    fn count_order_independent((a, b) in with_shuffle(ballots_of(
        prop_oneof![Just(count::Choice::Accept), Just(count::Choice::Decline)],
        30,
    ))) {
        let cfg = count::Config { target: Weight::from_whole(5), ..count::Config::default() };
        prop_assert_eq!(count::tally(&a, &cfg), count::tally(&b, &cfg));
    }

    #[test]
    fn choice_order_independent((a, b) in with_shuffle(ballots_of(selection(2), 30)), tb in tie_break()) {
        let mut cfg = choice::Config::new(options());
        cfg.max = 2;
        cfg.min = 0;
        cfg.common.tie_break = tb;
        prop_assert_eq!(choice::tally(&a, &cfg), choice::tally(&b, &cfg));
    }

    #[test]
    fn approval_order_independent((a, b) in with_shuffle(ballots_of(selection(5), 30)), tb in tie_break()) {
        let mut cfg = approval::Config::new(options());
        cfg.common.tie_break = tb;
        prop_assert_eq!(approval::tally(&a, &cfg), approval::tally(&b, &cfg));
    }

    #[test]
    fn score_order_independent((a, b) in with_shuffle(ballots_of(amounts(5).prop_map(score::Scores), 30))) {
        let cfg = score::Config::new(options());
        prop_assert_eq!(score::tally(&a, &cfg), score::tally(&b, &cfg));
    }

    #[test]
    fn dot_order_independent((a, b) in with_shuffle(ballots_of(allocation(), 30))) {
        let cfg = dot::Config::new(options());
        prop_assert_eq!(dot::tally(&a, &cfg), dot::tally(&b, &cfg));
    }

    #[test]
    fn quadratic_order_independent((a, b) in with_shuffle(ballots_of(allocation(), 30))) {
        let cfg = quadratic::Config::new(options());
        prop_assert_eq!(quadratic::tally(&a, &cfg), quadratic::tally(&b, &cfg));
    }

    #[test]
    fn irv_order_independent((a, b) in with_shuffle(ballots_of(ranking(), 40)), tb in tie_break()) {
        let mut cfg = ranked::Config::new(options());
        cfg.common.tie_break = tb;
        prop_assert_eq!(ranked::tally(&a, &cfg), ranked::tally(&b, &cfg));
    }

    #[test]
    fn stv_order_independent((a, b) in with_shuffle(ballots_of(ranking(), 40)), seats in 2usize..=4) {
        let mut cfg = ranked::Config::new(options());
        cfg.seats = seats;
        prop_assert_eq!(ranked::tally(&a, &cfg), ranked::tally(&b, &cfg));
    }

    #[test]
    fn commitment_order_independent((a, b) in with_shuffle(ballots_of(ranking(), 30)), anonymous in any::<bool>()) {
        use super::super::commitment::{canonical_ballots, commitment};
        let cfg = ranked::Config::new(options());
        let salt: Option<&[u8]> = if anonymous { Some(b"pepper") } else { None };
        let ca = canonical_ballots::<ranked::Ranked>(&a, &cfg, salt);
        let cb = canonical_ballots::<ranked::Ranked>(&b, &cfg, salt);
        prop_assert_eq!(&ca, &cb);
        prop_assert_eq!(commitment(ranked::NAME, &ca), commitment(ranked::NAME, &cb));
    }

    #[test]
    fn irv_first_choice_majority_wins_in_round_one(
        others in ballots_of(ranking(), 30),
        top in 0..OPTIONS.len() as OptionIndex,
        tail in ranking(),
        extra in 1u64..100_000,
        at in any::<Index>(),
    ) {
        // More weight ranking `top` first than all other ballots together.
        let others_weight: u64 = others.iter().map(|b| b.weight.units()).sum();
        let mut prefs = vec![top];
        prefs.extend(tail.0.into_iter().filter(|&c| c != top));
        let strong = Ballot::new(
            "strong",
            Weight::from_units(others_weight + extra).unwrap_or(Weight::MAX),
            ranked::Ranking(prefs),
        );
        let mut ballots = others;
        let at = at.index(ballots.len() + 1);
        ballots.insert(at, strong);
        let cfg = ranked::Config::new(options());
        let out = ranked::tally(&ballots, &cfg);
        prop_assert_eq!(out.winner(), Some(OPTIONS[usize::from(top)]));
        prop_assert_eq!(out.rounds().len(), 1);
    }

    #[test]
    fn abstention_never_changes_support(
        ballots in ballots_of(proposal_choice(), 30),
        w in weight(),
        at in any::<Index>(),
        threshold in 0u8..100,
    ) {
        let cfg = proposal::Config {
            threshold: Percent::from_whole(threshold).unwrap_or_default(),
            ..proposal::Config::default()
        };
        let before = proposal::tally(&ballots, &cfg);
        let mut more = ballots;
        let at = at.index(more.len() + 1);
        more.insert(at, Ballot::new("abstainer", w, proposal::Choice::Abstain));
        let after = proposal::tally(&more, &cfg);
        prop_assert_eq!(&before.details, &after.details);
        prop_assert_eq!(before.passed(), after.passed());
    }

    #[test]
    fn stv_conserves_weight(ballots in ballots_of(ranking(), 40), seats in 2usize..=4) {
        let mut cfg = ranked::Config::new(options());
        cfg.seats = seats;
        let valid: u64 = ballots
            .iter()
            .filter(|b| !b.choice.0.is_empty())
            .map(|b| b.weight.units())
            .sum();
        let out = ranked::tally(&ballots, &cfg);
        for round in out.rounds() {
            let held: f64 = round.votes.values().sum();
            // Exhausted counts every ballot, empty rankings included.
            let empty: u64 = ballots.iter().filter(|b| b.choice.0.is_empty()).map(|b| b.weight.units()).sum();
            let total = held + round.exhausted - units_to_f64(i128::from(empty));
            prop_assert!((total - units_to_f64(i128::from(valid))).abs() < 1e-6);
        }
        if valid > 0 {
            prop_assert_eq!(out.winners().len(), seats);
        }
    }
}
