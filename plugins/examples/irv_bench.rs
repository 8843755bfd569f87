//! IRV speed check: tallies 1,000,000 random ranked ballots over 20 options
//! and prints how long the tally took. The ballots come from a fixed-seed
//! xorshift generator, so every run counts the same election; only the
//! tally is timed, not building the ballots.
//!
//! Run with `cargo run --release --example irv_bench`.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use agora_plugins::vote::tally::ranked::{self, Ranking};
use agora_plugins::vote::tally::OptionIndex;
use agora_plugins::vote::{Ballot, Weight};

const BALLOTS: usize = 1_000_000;
const OPTIONS: usize = 20;

/// xorshift64* (Vigna): tiny, fast and good enough for test data, which is
/// all it is used for here.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` for a benchmark (the modulo bias is
    /// negligible for small `n`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn main() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let options: Vec<String> = (0..OPTIONS).map(|i| format!("option-{i:02}")).collect();
    let mut ballots = Vec::with_capacity(BALLOTS);
    let mut order: Vec<OptionIndex> = (0..OPTIONS as OptionIndex).collect();
    for i in 0..BALLOTS {
        // Skew first preferences a little so the count is not a 20-way
        // dead heat, then rank a random-length prefix of a shuffled list.
        for k in (1..OPTIONS).rev() {
            order.swap(k, rng.below(k + 1));
        }
        if rng.below(4) == 0 {
            let favourite = order
                .iter()
                .position(|&o| usize::from(o) == i % 3)
                .unwrap_or(0);
            order.swap(0, favourite);
        }
        let len = 1 + rng.below(OPTIONS);
        ballots.push(Ballot::new(
            format!("voter-{i}"),
            Weight::ONE,
            Ranking(order[..len].to_vec()),
        ));
    }
    let cfg = ranked::Config::new(options);

    let start = Instant::now();
    let outcome = ranked::tally(&ballots, &cfg);
    let elapsed = start.elapsed();

    let last = outcome.rounds().last();
    println!(
        "IRV: {BALLOTS} ballots, {OPTIONS} options: tallied in {:.1} ms ({} rounds, winner {}, {} ballots exhausted)",
        elapsed.as_secs_f64() * 1000.0,
        outcome.rounds().len(),
        outcome.winner().unwrap_or("none (tie)"),
        last.map_or(0, |r| r.exhausted_ballots),
    );
}
