//! `ranked`: ranked-choice ballots, counted by instant runoff (IRV) for one
//! seat and by the single transferable vote (STV) for `seats` > 1
//! (default 1; 1 ≤ `seats` ≤ number of options).
//!
//! A choice is a list of distinct option names in order of preference.
//! Partial rankings are allowed: a ballot whose ranked options have all been
//! eliminated (or elected, under STV) is *exhausted* and takes no further
//! part. An empty list is exhausted from the start; it counts toward the
//! quorum and nothing else.
//!
//! `tally` holds the first-preference totals. `rounds` lists every round
//! (IRV) or stage (STV): `votes` of the candidates still standing (under STV
//! also those already elected), `exhausted` (the weight that no longer
//! counts for anyone, cumulative) and `exhausted_ballots` (how many ballots
//! that is), `elected` (who was elected in that round), `eliminated` (who
//! was eliminated at the end of it; their ballots move in the next round)
//! and, under STV, `surplus_of` (whose surplus was transferred to produce
//! that stage).
//!
//! ## Instant runoff (one seat)
//!
//! Each round every ballot counts, at its full weight, for its highest
//! ranked candidate still standing. A candidate with **more than half** of
//! the weight of the ballots still in play (not exhausted) wins. Otherwise
//! the candidate with the fewest votes is eliminated and the next round
//! begins.
//!
//! * Tie for elimination: among the candidates sharing the fewest votes,
//!   eliminate the one with the fewest votes in the previous round, going
//!   further back one round at a time while they stay tied (backwards
//!   tie-break); if they were tied in every round, eliminate the one that
//!   comes **last** in `options`. This needs no lot and is the same on every
//!   run.
//! * Tie for the win: when every candidate still standing has the same
//!   (non-zero) number of votes no elimination can separate them, so the
//!   count ends in a tie: `winner` is `null` and `tied` lists them, or with
//!   `tie_break: "first_option"` the one that comes first in `options` wins.
//! * When no ballot is in play (an empty vote, or only zero weights) there
//!   is no winner.
//!
//! ## Single transferable vote (`seats` > 1)
//!
//! The Scottish STV rules (Scottish Local Government Elections Order 2007,
//! rules 45–52), a weighted inclusive Gregory method:
//!
//! * Quota (Droop): `floor(V / (seats + 1)) + 1` whole votes, where `V` is
//!   the total weight of the ballots that rank at least one option. With
//!   fractional weights the quota is still counted in whole votes, as in
//!   the Order.
//! * Stage 1 credits every ballot to its first preference at its weight.
//!   After every stage each candidate standing with at least the quota is
//!   elected, the larger total first.
//! * If an elected candidate holds more than the quota, the largest such
//!   surplus is transferred (one surplus per stage). *All* of the
//!   candidate's ballots move (inclusive), each to its next preference among
//!   candidates still standing, at the new value `value × surplus / total`,
//!   **truncated to five decimal places**; the candidate keeps exactly the
//!   quota. Ballots with no further preference, and the fractions lost to
//!   truncation, become non-transferable (`exhausted`).
//! * With no surplus left to transfer, the candidate with the fewest votes
//!   is excluded and all of their ballots move at their current values.
//! * As soon as the candidates still standing are no more than the seats
//!   left, they are all elected (the larger total first) and the count ends.
//! * Ties: where the Order would finally draw lots, this count has to stay
//!   reproducible, so its own rule applies: two equal surpluses go to the one with more votes at the most
//!   recent earlier stage where they differed, then to the earlier in
//!   `options`; candidates tied for exclusion are separated exactly as in
//!   IRV above (backwards, then the last in `options` is excluded). Several
//!   candidates reaching the quota at one stage are elected larger first,
//!   then in `options` order. `tie_break` is not consulted: every seat is
//!   filled whenever there are votes.
//! * An empty vote (no weight in play) elects nobody.
//!
//! ## Arithmetic and performance
//!
//! Weights and ballot values are integers in units of 0.00001, sums are
//! `u128`: no floating point takes part in any decision, and the result
//! does not depend on ballot order. The preferences are copied once into a
//! flat array; each candidate holds a list of "papers" (cursor into that
//! array, end of the ballot's preferences, current value), so a round only
//! touches the papers of the candidate eliminated (or whose surplus moves)
//! in it, reading them sequentially. `examples/irv_bench.rs` counts a
//! million 20-option ballots this way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ballot_count, names_json, option_name, out_of_range, parse_config, parse_option_list,
    units_to_f64, validate_options, Ballot, BallotError, Common, ConfigError, Decision, Details,
    OptionIndex, Outcome, TieBreak, SCALE,
};

pub const NAME: &str = "ranked";

/// Option indexes in order of preference, most preferred first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ranking(pub Vec<OptionIndex>);

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub common: Common,
    pub options: Vec<String>,
    pub seats: usize,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    seats: Option<usize>,
}

impl Config {
    /// A single-seat (IRV) configuration over `options`.
    pub fn new(options: Vec<String>) -> Config {
        Config {
            common: Common::default(),
            options,
            seats: 1,
        }
    }

    pub fn from_json(raw: &Value) -> Result<Config, ConfigError> {
        let (common, params): (Common, Params) = parse_config(raw, &["options", "seats"])?;
        validate_options(&params.options)?;
        let seats = params.seats.unwrap_or(1);
        if seats == 0 || seats > params.options.len() {
            return Err(out_of_range(
                "seats",
                format!(
                    "must be between 1 and the number of options ({})",
                    params.options.len()
                ),
            ));
        }
        Ok(Config {
            common,
            options: params.options,
            seats,
        })
    }
}

/// One round (IRV) or stage (STV) of the count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Round {
    pub votes: BTreeMap<String, f64>,
    pub exhausted: f64,
    pub exhausted_ballots: u64,
    pub elected: Vec<String>,
    pub eliminated: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surplus_of: Option<String>,
}

pub fn validate_choice(raw: &Value, cfg: &Config) -> Result<Ranking, BallotError> {
    parse_option_list(
        raw,
        &cfg.options,
        "a list of option names in order of preference",
    )
    .map(Ranking)
}

pub fn canonical_choice(choice: &Ranking, cfg: &Config) -> Value {
    names_json(&cfg.options, &choice.0)
}

pub fn tally(ballots: &[Ballot<Ranking>], cfg: &Config) -> Outcome {
    let options = &cfg.options;
    let count = ballot_count(ballots);
    let quorum_met = cfg.common.quorum_met(count);
    let (decision, tied, first, details) = if cfg.seats <= 1 {
        let irv = irv(ballots, options, cfg.common.tie_break);
        let winner = irv.winner.filter(|_| quorum_met);
        let tied = if quorum_met { irv.tied } else { Vec::new() };
        (
            Decision::Winner(winner.map(|c| option_name(options, c))),
            tied,
            irv.first,
            Details::Irv { rounds: irv.rounds },
        )
    } else {
        let stv = stv(ballots, options, cfg.seats);
        let winners = if quorum_met { stv.elected } else { Vec::new() };
        (
            Decision::Winners(winners.iter().map(|&c| option_name(options, c)).collect()),
            Vec::new(),
            stv.first,
            Details::Stv {
                quota: units_to_f64(stv.quota as i128),
                rounds: stv.rounds,
            },
        )
    };
    Outcome {
        method: NAME,
        decision,
        tied: tied.into_iter().map(|c| option_name(options, c)).collect(),
        quorum_met,
        ballots: count,
        tally: options
            .iter()
            .zip(first)
            .map(|(name, votes)| (name.clone(), units_to_f64(votes as i128)))
            .collect(),
        details,
    }
}

/// One ballot as the count handles it. Everything a transfer needs travels
/// with the paper, so moving it reads the pile sequentially and touches only
/// the preference array at `pos` — one likely cache miss per move instead
/// of one per side table.
#[derive(Clone, Copy)]
struct Paper {
    /// Position in `Count::items` of the current preference.
    pos: usize,
    /// End of this ballot's preferences in `Count::items`.
    end: usize,
    /// Current value: the weight, until a surplus transfer lowers it.
    value: u64,
}

/// The state shared by IRV and STV: which candidate holds which papers.
struct Count {
    /// All preferences of all ballots, back to back, copied once so the
    /// count walks one array instead of one heap allocation per ballot.
    items: Vec<OptionIndex>,
    standing: Vec<bool>,
    /// Papers currently credited to each candidate.
    piles: Vec<Vec<Paper>>,
    votes: Vec<u128>,
    exhausted: u128,
    exhausted_ballots: u64,
}

impl Count {
    fn new(ballots: &[Ballot<Ranking>], candidates: usize) -> Count {
        let len = ballots.iter().map(|b| b.choice.0.len()).sum();
        let mut count = Count {
            items: Vec::with_capacity(len),
            standing: vec![true; candidates],
            piles: vec![Vec::new(); candidates],
            votes: vec![0; candidates],
            exhausted: 0,
            exhausted_ballots: 0,
        };
        for ballot in ballots {
            let start = count.items.len();
            let ranking = &ballot.choice.0;
            if ranking.iter().all(|&c| usize::from(c) < candidates) {
                count.items.extend_from_slice(ranking);
            } else {
                // validate_choice only yields known options; a hand-built
                // index out of range is dropped so the count can index freely.
                count
                    .items
                    .extend(ranking.iter().filter(|&&c| usize::from(c) < candidates));
            }
            let paper = Paper {
                pos: start,
                end: count.items.len(),
                value: ballot.weight.units(),
            };
            count.place(paper, start);
        }
        count
    }

    /// Credits `paper` to its first standing preference at or after
    /// position `from`, or exhausts it.
    fn place(&mut self, mut paper: Paper, from: usize) {
        let next = self.items[from.min(paper.end)..paper.end]
            .iter()
            .position(|&c| self.standing[usize::from(c)]);
        match next {
            Some(offset) => {
                paper.pos = from + offset;
                let c = usize::from(self.items[paper.pos]);
                self.votes[c] += u128::from(paper.value);
                self.piles[c].push(paper);
            }
            None => {
                self.exhausted += u128::from(paper.value);
                self.exhausted_ballots += 1;
            }
        }
    }

    /// Moves every paper held by `from` (no longer standing) onward, first
    /// giving each the value `revalue(old value)`. Returns the total value
    /// moved, exhausted papers included.
    fn transfer(&mut self, from: usize, revalue: impl Fn(u64) -> u64) -> u128 {
        let pile = std::mem::take(&mut self.piles[from]);
        let mut moved = 0u128;
        for mut paper in pile {
            paper.value = revalue(paper.value);
            moved += u128::from(paper.value);
            self.place(paper, paper.pos + 1);
        }
        moved
    }

    fn round(&self, options: &[String], shown: impl Fn(usize) -> bool) -> Round {
        Round {
            votes: (0..options.len())
                .filter(|&c| shown(c))
                .map(|c| (option_name(options, c), units_to_f64(self.votes[c] as i128)))
                .collect(),
            exhausted: units_to_f64(self.exhausted as i128),
            exhausted_ballots: self.exhausted_ballots,
            elected: Vec::new(),
            eliminated: Vec::new(),
            surplus_of: None,
        }
    }

    fn standing_list(&self) -> Vec<usize> {
        (0..self.standing.len())
            .filter(|&c| self.standing[c])
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Pick {
    Fewest,
    Most,
}

/// Separates `tied` candidates (tied in the last row of `history`) by
/// looking back one earlier row at a time, keeping those with the fewest
/// (or most) votes there; what is still tied at the start goes by options
/// order: the last for `Fewest` (the one to eliminate), the first for
/// `Most`.
fn break_tie(tied: &[usize], history: &[Vec<u128>], pick: Pick) -> usize {
    let mut left = tied.to_vec();
    for row in history.iter().rev().skip(1) {
        if left.len() <= 1 {
            break;
        }
        let votes = |c: &usize| row.get(*c).copied().unwrap_or(0);
        let target = match pick {
            Pick::Fewest => left.iter().map(votes).min(),
            Pick::Most => left.iter().map(votes).max(),
        };
        left.retain(|c| Some(votes(c)) == target);
    }
    let chosen = match pick {
        Pick::Fewest => left.iter().max(),
        Pick::Most => left.iter().min(),
    };
    chosen.or(tied.first()).copied().unwrap_or(0)
}

struct IrvResult {
    winner: Option<usize>,
    tied: Vec<usize>,
    first: Vec<u128>,
    rounds: Vec<Round>,
}

fn irv(ballots: &[Ballot<Ranking>], options: &[String], tie_break: TieBreak) -> IrvResult {
    let mut count = Count::new(ballots, options.len());
    let first = count.votes.clone();
    let mut history: Vec<Vec<u128>> = Vec::new();
    let mut rounds = Vec::new();
    let (winner, tied) = loop {
        history.push(count.votes.clone());
        let mut round = count.round(options, |c| count.standing[c]);
        let standing = count.standing_list();
        let in_play: u128 = standing.iter().map(|&c| count.votes[c]).sum();
        if let Some(&w) = standing.iter().find(|&&c| count.votes[c] * 2 > in_play) {
            round.elected.push(option_name(options, w));
            rounds.push(round);
            break (Some(w), Vec::new());
        }
        let fewest = standing.iter().map(|&c| count.votes[c]).min();
        let most = standing.iter().map(|&c| count.votes[c]).max();
        let (Some(fewest), Some(most)) = (fewest, most) else {
            rounds.push(round);
            break (None, Vec::new());
        };
        if in_play == 0 {
            // Nothing left in play: no support to decide anything.
            rounds.push(round);
            break (None, Vec::new());
        }
        if fewest == most {
            let winner = match tie_break {
                TieBreak::None => None,
                TieBreak::FirstOption => standing.first().copied(),
            };
            if let Some(w) = winner {
                round.elected.push(option_name(options, w));
            }
            rounds.push(round);
            break (winner, standing);
        }
        let lowest: Vec<usize> = standing
            .iter()
            .copied()
            .filter(|&c| count.votes[c] == fewest)
            .collect();
        let out = break_tie(&lowest, &history, Pick::Fewest);
        round.eliminated.push(option_name(options, out));
        rounds.push(round);
        count.standing[out] = false;
        count.transfer(out, |value| value);
        count.votes[out] = 0;
    };
    IrvResult {
        winner,
        tied,
        first,
        rounds,
    }
}

struct StvResult {
    elected: Vec<usize>,
    quota: u128,
    first: Vec<u128>,
    rounds: Vec<Round>,
}

fn stv(ballots: &[Ballot<Ranking>], options: &[String], seats: usize) -> StvResult {
    let n = options.len();
    let mut count = Count::new(ballots, n);
    let first = count.votes.clone();
    let valid: u128 = first.iter().sum();
    let unit = u128::from(SCALE);
    let quota = (valid / (unit * (seats as u128 + 1)) + 1) * unit;
    let mut elected: Vec<usize> = Vec::new();
    let mut is_elected = vec![false; n];
    // Elected candidates whose surplus has not been transferred yet.
    let mut pending: Vec<usize> = Vec::new();
    let mut history: Vec<Vec<u128>> = Vec::new();
    let mut rounds: Vec<Round> = Vec::new();
    let mut surplus_of: Option<usize> = None;

    loop {
        history.push(count.votes.clone());
        let mut round = count.round(options, |c| count.standing[c] || is_elected[c]);
        round.surplus_of = surplus_of.map(|c| option_name(options, c));
        if valid == 0 {
            rounds.push(round);
            break;
        }

        let mut reached: Vec<usize> = count
            .standing_list()
            .into_iter()
            .filter(|&c| count.votes[c] >= quota)
            .collect();
        reached.sort_by(|&a, &b| count.votes[b].cmp(&count.votes[a]).then(a.cmp(&b)));
        // A Droop quota cannot be reached by more candidates than there are
        // seats; the bound only guards the invariant.
        for c in reached
            .into_iter()
            .take(seats.saturating_sub(elected.len()))
        {
            count.standing[c] = false;
            is_elected[c] = true;
            elected.push(c);
            pending.push(c);
            round.elected.push(option_name(options, c));
        }
        if elected.len() >= seats {
            rounds.push(round);
            break;
        }

        let mut standing = count.standing_list();
        if standing.len() <= seats - elected.len() {
            standing.sort_by(|&a, &b| count.votes[b].cmp(&count.votes[a]).then(a.cmp(&b)));
            for c in standing {
                count.standing[c] = false;
                is_elected[c] = true;
                elected.push(c);
                round.elected.push(option_name(options, c));
            }
            rounds.push(round);
            break;
        }

        pending.retain(|&c| count.votes[c] > quota);
        let largest = pending.iter().map(|&c| count.votes[c]).max();
        if let Some(largest) = largest {
            let tied: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|&c| count.votes[c] == largest)
                .collect();
            let from = break_tie(&tied, &history, Pick::Most);
            pending.retain(|&c| c != from);
            rounds.push(round);
            let total = count.votes[from];
            let surplus = total - quota;
            // Scottish rule 48(3): value × surplus / total, remainder beyond
            // five decimals ignored — integer division on 0.00001 units.
            // The quotient is below `value` (surplus < total), so it fits.
            let moved = count.transfer(from, |value| (u128::from(value) * surplus / total) as u64);
            count.exhausted += surplus.saturating_sub(moved);
            count.votes[from] = quota;
            surplus_of = Some(from);
        } else {
            let fewest = standing.iter().map(|&c| count.votes[c]).min();
            let lowest: Vec<usize> = standing
                .iter()
                .copied()
                .filter(|&c| Some(count.votes[c]) == fewest)
                .collect();
            let out = break_tie(&lowest, &history, Pick::Fewest);
            round.eliminated.push(option_name(options, out));
            rounds.push(round);
            count.standing[out] = false;
            count.transfer(out, |value| value);
            count.votes[out] = 0;
            surplus_of = None;
        }
    }
    StvResult {
        elected,
        quota,
        first,
        rounds,
    }
}

/// Marker type implementing [`super::Method`].
pub struct Ranked;

super::method_via_functions!(Ranked, Ranking);

#[cfg(test)]
mod tests {
    use super::super::test_util::{opts, w};
    use super::super::Weight;
    use super::*;
    use serde_json::json;

    /// `groups`: (how many ballots, ranking as option names), weight 1 each.
    fn ballots(cfg: &Config, groups: &[(usize, &[&str])]) -> Vec<Ballot<Ranking>> {
        let mut out = Vec::new();
        for (g, (copies, names)) in groups.iter().enumerate() {
            let ranking = validate_choice(&json!(names), cfg).unwrap();
            for i in 0..*copies {
                out.push(Ballot::new(
                    format!("g{g}v{i}"),
                    Weight::ONE,
                    ranking.clone(),
                ));
            }
        }
        out
    }

    fn irv_cfg(names: &[&str]) -> Config {
        Config::new(opts(names))
    }

    fn stv_cfg(names: &[&str], seats: usize) -> Config {
        Config::from_json(&json!({"options": names, "seats": seats})).unwrap()
    }

    fn votes(round: &Round, name: &str) -> f64 {
        round.votes.get(name).copied().unwrap_or(f64::NAN)
    }

    #[test]
    fn config_and_validation() {
        let c = irv_cfg(&["a", "b", "c"]);
        assert_eq!(
            validate_choice(&json!(["c", "a"]), &c),
            Ok(Ranking(vec![2, 0]))
        );
        assert_eq!(validate_choice(&json!([]), &c), Ok(Ranking(vec![])));
        assert_eq!(
            validate_choice(&json!(["a", "a"]), &c).unwrap_err().code(),
            "duplicate_option"
        );
        assert_eq!(
            validate_choice(&json!(["x"]), &c).unwrap_err().code(),
            "unknown_option"
        );
        assert_eq!(
            validate_choice(&json!({"a": 1}), &c).unwrap_err().code(),
            "malformed_choice"
        );
        assert_eq!(
            canonical_choice(&Ranking(vec![2, 0]), &c),
            json!(["c", "a"])
        );
        let bad = |raw: Value| Config::from_json(&raw).unwrap_err().code();
        assert_eq!(
            bad(json!({"options": ["a", "b"], "seats": 3})),
            "out_of_range"
        );
        assert_eq!(
            bad(json!({"options": ["a", "b"], "seats": 0})),
            "out_of_range"
        );
    }

    #[test]
    fn irv_first_round_majority() {
        let c = irv_cfg(&["a", "b", "c"]);
        let out = tally(&ballots(&c, &[(3, &["a"]), (1, &["b"]), (1, &["c"])]), &c);
        assert_eq!(out.winner(), Some("a"));
        assert_eq!(out.rounds().len(), 1);
        assert_eq!(out.rounds()[0].elected, vec!["a".to_owned()]);
    }

    #[test]
    fn irv_transfers_and_exhausted_ballots() {
        // a 4, b 3, c 2 (c>b 1, c alone 1). Round 1: no majority of 9;
        // c eliminated; one ballot moves to b, one exhausts.
        // Round 2: a 4, b 4, exhausted 1: tied for the win.
        let c = irv_cfg(&["a", "b", "c"]);
        let bs = ballots(
            &c,
            &[(4, &["a"]), (3, &["b", "a"]), (1, &["c", "b"]), (1, &["c"])],
        );
        let out = tally(&bs, &c);
        let rounds = out.rounds();
        assert_eq!(rounds.len(), 2);
        assert_eq!(rounds[0].eliminated, vec!["c".to_owned()]);
        assert_eq!(rounds[0].exhausted_ballots, 0);
        assert_eq!(votes(&rounds[1], "b"), 4.0);
        assert_eq!(rounds[1].exhausted, 1.0);
        assert_eq!(rounds[1].exhausted_ballots, 1);
        assert_eq!(out.winner(), None);
        assert_eq!(out.tied, vec!["a".to_owned(), "b".to_owned()]);
        // Majority is of ballots in play: one more a>… ballot wins it.
        let mut more = bs.clone();
        more.extend(ballots(&c, &[(1, &["c", "a"])]));
        let out = tally(&more, &c);
        assert_eq!(out.winner(), Some("a"));
        // a 5 of 9 in play (one exhausted): majority in round 2.
        assert_eq!(out.rounds().len(), 2);
    }

    #[test]
    fn irv_majority_of_continuing_not_of_all() {
        // Round 1: a 3, b 2, c 2 (c exhausts). b and c tie for fewest with
        // no earlier round: c comes last in options, so c goes.
        // Round 2: a 3, b 2, exhausted 2: 3 > 5/2 — a wins with 3 of 7.
        let c = irv_cfg(&["a", "b", "c"]);
        let out = tally(&ballots(&c, &[(3, &["a"]), (2, &["b"]), (2, &["c"])]), &c);
        assert_eq!(out.rounds()[0].eliminated, vec!["c".to_owned()]);
        assert_eq!(out.winner(), Some("a"));
        assert_eq!(out.rounds()[1].exhausted, 2.0);
    }

    #[test]
    fn irv_backwards_tie_break() {
        // Round 1: a 6, b 3, c 4, d 2, e 1 (16 in play) → e out, e>b: b 4.
        // Round 2: a 6, b 4, c 4, d 2 → d out, one ballot each to b and c.
        // Round 3: a 6, b 5, c 5: b and c tie for fewest; round 2 had them
        //   tied too (4, 4); round 1 had b 3, c 4 → b has fewer: b out.
        // Round 4: b's 5 ballots exhaust; a 6 of 11 in play wins.
        let c = irv_cfg(&["a", "b", "c", "d", "e"]);
        let bs = ballots(
            &c,
            &[
                (6, &["a"]),
                (3, &["b"]),
                (4, &["c"]),
                (1, &["d", "b"]),
                (1, &["d", "c"]),
                (1, &["e", "b"]),
            ],
        );
        let out = tally(&bs, &c);
        let r = out.rounds();
        assert_eq!(r[0].eliminated, vec!["e".to_owned()]);
        assert_eq!(r[1].eliminated, vec!["d".to_owned()]);
        assert_eq!((votes(&r[2], "b"), votes(&r[2], "c")), (5.0, 5.0));
        assert_eq!(r[2].eliminated, vec!["b".to_owned()]);
        assert_eq!(out.winner(), Some("a"));
        assert_eq!(r[3].exhausted_ballots, 5);
    }

    #[test]
    fn irv_tie_with_no_history_eliminates_last_option() {
        let c = irv_cfg(&["a", "b", "c"]);
        // a 2, b 1, c 1 in round 1, no earlier round: c (last) goes; its
        // ballot moves to b: a 2, b 2 — a tie for the win.
        let bs = ballots(&c, &[(2, &["a"]), (1, &["b"]), (1, &["c", "b"])]);
        let out = tally(&bs, &c);
        assert_eq!(out.rounds()[0].eliminated, vec!["c".to_owned()]);
        assert_eq!(out.winner(), None);
        let mut first = c.clone();
        first.common.tie_break = TieBreak::FirstOption;
        let out = tally(&bs, &first);
        assert_eq!(out.winner(), Some("a"));
        assert_eq!(out.tied, vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn irv_empty_and_zero_weight() {
        let c = irv_cfg(&["a", "b"]);
        let out = tally(&[], &c);
        assert_eq!(out.winner(), None);
        assert!(out.tied.is_empty());
        assert_eq!(out.rounds().len(), 1);
        let zero = vec![Ballot::new("z", Weight::ZERO, Ranking(vec![0]))];
        let out = tally(&zero, &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.ballots, 1);
        // All empty rankings: exhausted from the start.
        let out = tally(&ballots(&c, &[(2, &[])]), &c);
        assert_eq!(out.winner(), None);
        assert_eq!(out.rounds()[0].exhausted_ballots, 2);
    }

    #[test]
    fn irv_one_voter_and_weights() {
        let c = irv_cfg(&["a", "b", "c"]);
        let out = tally(&ballots(&c, &[(1, &["b", "a"])]), &c);
        assert_eq!(out.winner(), Some("b"));
        let bs = vec![
            Ballot::new("x", w(3), Ranking(vec![2])),
            Ballot::new("y", w(1), Ranking(vec![0])),
            Ballot::new("z", w(1), Ranking(vec![1])),
        ];
        assert_eq!(tally(&bs, &c).winner(), Some("c"));
    }

    #[test]
    fn irv_quorum() {
        let c = Config::from_json(&json!({"options": ["a", "b"], "quorum": {"count": 3}})).unwrap();
        let out = tally(&ballots(&c, &[(2, &["a"])]), &c);
        assert!(!out.quorum_met);
        assert_eq!(out.winner(), None);
        assert_eq!(out.rounds().len(), 1);
    }

    #[test]
    fn irv_json_shape() {
        let c = irv_cfg(&["a", "b", "c"]);
        let out = tally(
            &ballots(&c, &[(2, &["a"]), (2, &["b"]), (1, &["c", "a"])]),
            &c,
        );
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["winner"], "a");
        assert_eq!(json["tally"], json!({"a": 2.0, "b": 2.0, "c": 1.0}));
        assert_eq!(
            json["rounds"][0],
            json!({"votes": {"a": 2.0, "b": 2.0, "c": 1.0}, "exhausted": 0.0,
                   "exhausted_ballots": 0, "elected": [], "eliminated": ["c"]})
        );
        assert_eq!(json["rounds"][1]["elected"], json!(["a"]));
    }

    /// The food election of the Wikipedia article "Single transferable
    /// vote", counted by hand under these rules. 20 ballots, 3 seats:
    /// quota = floor(20 / 4) + 1 = 6.
    ///
    /// Stage 1: orange 4, pear 2, chocolate 12, strawberry 1, hamburger 1.
    ///   chocolate ≥ 6: elected, surplus 6.
    /// Stage 2 (chocolate's surplus): all 12 ballots move at
    ///   1 × 6 / 12 = 0.5: 8 → strawberry (+4), 4 → hamburger (+2).
    ///   orange 4, pear 2, chocolate 6, strawberry 5, hamburger 3.
    ///   Nobody reaches 6; no surplus left: pear (2) excluded.
    /// Stage 3: pear's 2 ballots → orange: orange 6 — elected, no surplus.
    ///   Two standing (strawberry 5, hamburger 3) for one seat:
    ///   hamburger excluded.
    /// Stage 4: hamburger's ballots have nothing further: 4 × 0.5 + 1 = 3
    ///   exhausted. strawberry alone for the last seat: elected.
    /// Totals: 6 + 6 + 5 + 3 exhausted = 20.
    #[test]
    fn stv_wikipedia_food_election() {
        let c = stv_cfg(
            &["orange", "pear", "chocolate", "strawberry", "hamburger"],
            3,
        );
        let bs = ballots(
            &c,
            &[
                (4, &["orange"]),
                (2, &["pear", "orange"]),
                (8, &["chocolate", "strawberry"]),
                (4, &["chocolate", "hamburger"]),
                (1, &["strawberry"]),
                (1, &["hamburger"]),
            ],
        );
        let out = tally(&bs, &c);
        assert_eq!(out.winners(), ["chocolate", "orange", "strawberry"]);
        let Details::Stv { quota, ref rounds } = out.details else {
            panic!("not an STV outcome");
        };
        assert_eq!(quota, 6.0);
        assert_eq!(rounds.len(), 4);
        assert_eq!(rounds[0].elected, vec!["chocolate".to_owned()]);
        assert_eq!(votes(&rounds[0], "chocolate"), 12.0);
        assert_eq!(rounds[1].surplus_of.as_deref(), Some("chocolate"));
        assert_eq!(votes(&rounds[1], "strawberry"), 5.0);
        assert_eq!(votes(&rounds[1], "hamburger"), 3.0);
        assert_eq!(votes(&rounds[1], "chocolate"), 6.0);
        assert_eq!(rounds[1].eliminated, vec!["pear".to_owned()]);
        assert_eq!(votes(&rounds[2], "orange"), 6.0);
        assert_eq!(rounds[2].elected, vec!["orange".to_owned()]);
        assert_eq!(rounds[2].eliminated, vec!["hamburger".to_owned()]);
        assert_eq!(rounds[3].elected, vec!["strawberry".to_owned()]);
        assert_eq!(rounds[3].exhausted, 3.0);
        assert_eq!(rounds[3].exhausted_ballots, 5);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(
            json["winners"],
            json!(["chocolate", "orange", "strawberry"])
        );
        assert_eq!(json["quota"], 6.0);
        assert!(json.get("winner").is_none());
    }

    /// Truncation to five decimals decides this one, verified by hand.
    /// 13 ballots, 2 seats: quota = floor(13 / 3) + 1 = 5.
    ///
    /// Stage 1: a 7, b 2, c 3, d 1. a elected, surplus 2.
    /// Stage 2: a's 7 ballots (a>b) move at 2/7 = 0.285714… → 0.28571:
    ///   b = 2 + 7 × 0.28571 = 3.99997; 0.00003 lost to truncation.
    ///   No quota; d (1) excluded.
    /// Stage 3: d>c: c = 4. b 3.99997 < c 4: b excluded (exact 2/7 would
    ///   have tied them at 4 and b, ahead at stage 2, would have stayed).
    /// Stage 4: b's ballots have nothing further: 2 + 1.99997 + 0.00003
    ///   = 4 exhausted. c alone for the last seat: elected.
    #[test]
    fn stv_truncates_transfer_values() {
        let c = stv_cfg(&["a", "b", "c", "d"], 2);
        let bs = ballots(
            &c,
            &[(7, &["a", "b"]), (2, &["b"]), (3, &["c"]), (1, &["d", "c"])],
        );
        let out = tally(&bs, &c);
        assert_eq!(out.winners(), ["a", "c"]);
        let rounds = out.rounds();
        assert_eq!(votes(&rounds[1], "b"), 3.99997);
        assert_eq!(rounds[1].exhausted, 0.00003);
        assert_eq!(rounds[1].eliminated, vec!["d".to_owned()]);
        assert_eq!(votes(&rounds[2], "c"), 4.0);
        assert_eq!(rounds[2].eliminated, vec!["b".to_owned()]);
        assert_eq!(rounds[3].exhausted, 4.0);
        assert_eq!(rounds[3].elected, vec!["c".to_owned()]);
    }

    #[test]
    fn stv_weighted_ballots_keep_their_value() {
        // quota = floor(10 / 3) + 1 = 4. a gets 6 (one ballot of weight 6),
        // surplus 2 at 6 × 2 / 6 = 2 → b. b 2 + 1 = 3 < 4, c 3.
        // b and c tie at 3; stage 1 had b 1, c 3: b excluded (fewer),
        // its ballots (a>b value 2, b alone) exhaust; c elected last.
        let c = stv_cfg(&["a", "b", "c"], 2);
        let bs = vec![
            Ballot::new("x", w(6), Ranking(vec![0, 1])),
            Ballot::new("y", w(1), Ranking(vec![1])),
            Ballot::new("z", w(3), Ranking(vec![2])),
        ];
        let out = tally(&bs, &c);
        assert_eq!(out.winners(), ["a", "c"]);
        let rounds = out.rounds();
        assert_eq!(votes(&rounds[1], "b"), 3.0);
        assert_eq!(rounds[1].eliminated, vec!["b".to_owned()]);
    }

    #[test]
    fn stv_several_reach_quota_and_equal_surpluses() {
        // 2 seats of 4 candidates, 9 ballots: quota = 4.
        // a 4 + b 4 both elected at stage 1, larger first then options order.
        let c = stv_cfg(&["a", "b", "c", "d"], 2);
        let bs = ballots(&c, &[(4, &["a", "c"]), (4, &["b", "d"]), (1, &["c"])]);
        let out = tally(&bs, &c);
        assert_eq!(out.winners(), ["a", "b"]);
        assert_eq!(out.rounds().len(), 1);
        // 3 seats, 12 ballots: quota = floor(12 / 4) + 1 = 4. a 5 and b 5
        // are elected at stage 1 with equal surpluses of 1 and no earlier
        // stage to separate them: a's (first in options) goes first.
        let c3 = stv_cfg(&["a", "b", "c", "d"], 3);
        let bs = ballots(
            &c3,
            &[(5, &["a", "c"]), (5, &["b", "d"]), (1, &["c"]), (1, &["d"])],
        );
        let out = tally(&bs, &c3);
        let rounds = out.rounds();
        assert_eq!(rounds[0].elected, vec!["a".to_owned(), "b".to_owned()]);
        // Stage 2: a's 5 ballots move at 1 × 1 / 5 = 0.2: c 1 + 1 = 2.
        assert_eq!(rounds[1].surplus_of.as_deref(), Some("a"));
        assert_eq!(votes(&rounds[1], "c"), 2.0);
        assert_eq!(votes(&rounds[1], "a"), 4.0);
        // Stage 3: b's surplus likewise: d 2. c and d tie for exclusion;
        // at stage 2 d had 1 to c's 2: d is excluded, c takes the seat.
        assert_eq!(rounds[2].surplus_of.as_deref(), Some("b"));
        assert_eq!(rounds[2].eliminated, vec!["d".to_owned()]);
        assert_eq!(out.winners(), ["a", "b", "c"]);
    }

    #[test]
    fn stv_all_seats_for_all_candidates_and_empty() {
        let c = stv_cfg(&["a", "b"], 2);
        let out = tally(&ballots(&c, &[(1, &["b"])]), &c);
        // quota = floor(1/3)+1 = 1: b elected at stage 1, a fills the last seat.
        assert_eq!(out.winners(), ["b", "a"]);
        let out = tally(&[], &c);
        assert!(out.winners().is_empty());
        assert_eq!(out.rounds().len(), 1);
        let quorum =
            Config::from_json(&json!({"options": ["a", "b"], "seats": 2, "quorum": {"count": 2}}))
                .unwrap();
        assert!(tally(&ballots(&quorum, &[(1, &["b"])]), &quorum)
            .winners()
            .is_empty());
    }

    #[test]
    fn break_tie_looks_back() {
        let history = vec![vec![1, 3, 2], vec![4, 4, 4]];
        assert_eq!(break_tie(&[0, 1, 2], &history, Pick::Fewest), 0);
        assert_eq!(break_tie(&[0, 1, 2], &history, Pick::Most), 1);
        let flat = vec![vec![2, 2, 2], vec![4, 4, 4]];
        assert_eq!(break_tie(&[0, 1, 2], &flat, Pick::Fewest), 2);
        assert_eq!(break_tie(&[0, 1, 2], &flat, Pick::Most), 0);
        assert_eq!(break_tie(&[1], &flat, Pick::Fewest), 1);
    }
}
