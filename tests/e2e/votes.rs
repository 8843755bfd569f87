//! The built-in `vote` plugin, driven from outside: `vote.<method>` processes started with a
//! `closing_at`, ballots cast on `<Location>/ballots`, live and final tallies, early close,
//! hidden results, anonymous ballots, the verifiable commitment, the deadline (also across a
//! SIGKILL) and the refusals, each of which must leave the tally as it was.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::harness::{
    eventually, http_client, now_ms, rfc3339, Node, NodeConfig, Recorded, Resp, Sink, WAIT,
};

/// The community every vote here runs in (the vote plugin needs no enabling).
const TOWN: &str = "town";
/// A deadline far enough away that only a DELETE closes the vote.
const LONG: Duration = Duration::from_secs(120);

// ----- time -----

/// A `closing_at` this far in the future: (its epoch milliseconds, its RFC 3339 text).
fn closing_in(after: Duration) -> (u64, String) {
    let ms = now_ms() + u64::try_from(after.as_millis()).expect("a short duration");
    (ms, rfc3339(ms))
}

/// Sleeps until the wall clock has passed `ms` (epoch milliseconds) by `margin`.
async fn sleep_past(ms: u64, margin: Duration) {
    let target = ms + u64::try_from(margin.as_millis()).expect("a short duration");
    let now = now_ms();
    if target > now {
        tokio::time::sleep(Duration::from_millis(target - now)).await;
    }
}

/// `closed_at` / `cast_at` as the node writes them (epoch seconds, maybe fractional text).
fn epoch_seconds(value: &Value) -> f64 {
    match value {
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("not epoch seconds: {value}")),
        Value::Number(n) => n.as_f64().expect("a finite number"),
        other => panic!("not a timestamp: {other}"),
    }
}

// ----- hashes and canonical JSON, recomputed independently of the server -----

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn is_hex64(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 64
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// Canonical JSON: no whitespace, keys sorted by their bytes, integers in plain decimal.
fn canonical(value: &Value) -> String {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => value.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => n.to_string(),
        },
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&map[*k])))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
    }
}

/// A weight as plain decimal: `1`, `2.5`, `0`.
fn weight_text(weight: f64) -> String {
    let fixed = format!("{weight:.5}");
    fixed
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// The canonical JSON of one entry of the ballot list.
fn entry_text(entry: &Value) -> String {
    format!(
        "{{\"choice\":{},\"voter\":{},\"weight\":{}}}",
        canonical(&entry["choice"]),
        entry["voter"],
        weight_text(num(&entry["weight"]))
    )
}

/// Checks a `GET <Location>/ballots` answer from outside: the entries are ordered by voter, the
/// `canonical` text is exactly their canonical JSON, the commitment hashes method, rules
/// version and that text, and every receipt hashes its entry. Answers the commitment.
#[track_caller]
fn verify_commitment(list: &Value) -> String {
    let method = list["method"].as_str().expect("method");
    let version = list["tally_version"].as_str().expect("tally_version");
    assert_eq!(version, "1", "{list}");
    let entries = list["ballots"].as_array().expect("ballots list");
    let voters: Vec<&str> = entries
        .iter()
        .map(|e| e["voter"].as_str().expect("voter"))
        .collect();
    assert!(
        voters.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
        "entries not ordered by voter: {list}"
    );
    let texts: Vec<String> = entries.iter().map(entry_text).collect();
    let expected_canonical = format!("[{}]", texts.join(","));
    assert_eq!(
        list["canonical"].as_str(),
        Some(expected_canonical.as_str()),
        "canonical text"
    );
    for (entry, text) in entries.iter().zip(&texts) {
        assert_eq!(
            entry["receipt"].as_str(),
            Some(sha256_hex(text).as_str()),
            "receipt of {entry} (entry text {text})"
        );
    }
    let expected = sha256_hex(&format!("{method}\n{version}\n{expected_canonical}"));
    assert_eq!(
        list["commitment"].as_str(),
        Some(expected.as_str()),
        "commitment of {list}"
    );
    expected
}

// ----- JSON numbers -----

#[track_caller]
fn num(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

#[track_caller]
fn assert_num(value: &Value, expected: f64, what: &str) {
    let got = num(value);
    assert!(
        (got - expected).abs() < 1e-6,
        "{what}: expected {expected}, got {got}"
    );
}

/// Asserts `outcome.tally` holds exactly these totals.
#[track_caller]
fn assert_tally(outcome: &Value, expected: &[(&str, f64)]) {
    let tally = outcome["tally"]
        .as_object()
        .unwrap_or_else(|| panic!("no tally object: {outcome}"));
    let keys: BTreeSet<&str> = tally.keys().map(String::as_str).collect();
    let wanted: BTreeSet<&str> = expected.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, wanted, "tally keys of {outcome}");
    for (option, total) in expected {
        assert_num(
            &tally[*option],
            *total,
            &format!("tally.{option} in {outcome}"),
        );
    }
}

/// Asserts the fields a completed vote's outcome always carries.
#[track_caller]
fn assert_final(process: &Value, method: &str, reason: &str) {
    assert_eq!(process["status"], "completed", "{process}");
    assert_eq!(
        process["name"],
        json!(format!("vote.{method}")),
        "{process}"
    );
    let outcome = &process["outcome"];
    assert_eq!(outcome["method"], method, "{process}");
    assert!(is_hex64(&outcome["commitment"]), "commitment: {process}");
    assert_eq!(outcome["tally_version"], "1", "{process}");
    assert_eq!(outcome["close_reason"], reason, "{process}");
    assert!(!outcome["closed_at"].is_null(), "closed_at: {process}");
}

// ----- one vote, driven over HTTP -----

/// A started vote: its `Location` (the node is passed to each step, so a test can restart it).
struct Vote {
    location: String,
    method: String,
}

impl Vote {
    /// Starts `vote.<method>` in [`TOWN`]; asserts 202, an empty body and the Location shape.
    async fn open(node: &Node, method: &str, params: Value) -> Vote {
        let path = format!("/api/internal/process/vote.{method}");
        let resp = node.post_in(TOWN, &path, &params).await.expect_status(202);
        assert!(resp.body.is_empty(), "202 with a body: {}", resp.describe());
        let location = resp.header("location").expect("a Location header");
        let id = location
            .strip_prefix(&format!("{path}/"))
            .unwrap_or_else(|| panic!("Location {location:?} is not under {path}/"));
        assert!(!id.is_empty() && !id.contains('/'), "{location}");
        Vote {
            location,
            method: method.to_string(),
        }
    }

    fn ballots_path(&self) -> String {
        format!("{}/ballots", self.location)
    }

    async fn try_cast(&self, node: &Node, body: &Value) -> Resp {
        node.post(&self.ballots_path(), body).await
    }

    /// Casts a ballot that must be accepted; answers the receipt.
    async fn cast(&self, node: &Node, voter: &str, choice: Value) -> Value {
        let receipt = self
            .try_cast(node, &json!({"voter": voter, "choice": choice}))
            .await
            .expect_status(200)
            .json();
        assert!(is_hex64(&receipt["receipt"]), "receipt: {receipt}");
        assert!(receipt["replaced"].is_boolean(), "replaced: {receipt}");
        assert!(!receipt["cast_at"].is_null(), "cast_at: {receipt}");
        receipt
    }

    async fn process(&self, node: &Node) -> Value {
        let process = node.get(&self.location).await.expect_status(200).json();
        assert_eq!(process["name"], json!(format!("vote.{}", self.method)));
        assert_eq!(process["community"], TOWN, "{process}");
        assert_eq!(process["url"], Value::Null, "{process}");
        assert_eq!(process["errors"], json!({}), "{process}");
        process
    }

    async fn outcome(&self, node: &Node) -> Value {
        self.process(node).await["outcome"].clone()
    }

    /// Closes the vote early by DELETE; answers the completed process.
    async fn close(&self, node: &Node) -> Value {
        let closed = node.delete(&self.location).await.expect_status(200).json();
        assert_final(&closed, &self.method, "closed");
        assert_eq!(self.process(node).await, closed, "GET after DELETE");
        closed
    }

    async fn try_ballots(&self, node: &Node) -> Resp {
        node.get(&self.ballots_path()).await
    }

    /// The ballot list; its commitment verified.
    async fn ballots(&self, node: &Node) -> Value {
        let list = self.try_ballots(node).await.expect_status(200).json();
        assert_eq!(list["method"], json!(self.method), "{list}");
        verify_commitment(&list);
        list
    }

    async fn wait_completed(&self, node: &Node, timeout: Duration) -> Value {
        let location = self.location.clone();
        eventually(timeout, "the vote to complete", || {
            let location = location.clone();
            async move {
                let process = node.get(&location).await.expect_status(200).json();
                if process["status"] == "completed" {
                    Ok(process)
                } else {
                    Err(process.to_string())
                }
            }
        })
        .await
    }
}

/// A node with the [`TOWN`] community.
async fn town(name: &str, config: NodeConfig) -> Node {
    let node = Node::start(name, config).await;
    node.create_community(TOWN).await;
    node
}

/// Parameters with a far `closing_at` plus these fields.
fn params(extra: Value) -> Value {
    let mut body = json!({"closing_at": closing_in(LONG).1});
    for (k, v) in extra.as_object().expect("an object of parameters") {
        body[k] = v.clone();
    }
    body
}

fn completed_callbacks(requests: &[Recorded], id: &Value) -> usize {
    requests
        .iter()
        .filter(|r| r.is_callback(id, "completed"))
        .count()
}

// ----- one end-to-end test per method -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposal_passes_on_majority_and_fails_at_the_threshold_on_abstention_or_a_block() {
    let node = town("votes-proposal", NodeConfig::dev()).await;

    // A plain majority passes.
    let vote = Vote::open(
        &node,
        "proposal",
        params(json!({"title": "Adopt the charter", "details": "Version 3"})),
    )
    .await;
    let pending = vote.process(&node).await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let receipt = vote.cast(&node, "alice", json!("agree")).await;
    assert_eq!(receipt["vote"], pending["id"], "{receipt}");
    assert_eq!(receipt["voter"], "alice", "{receipt}");
    assert_num(&receipt["weight"], 1.0, "weight");
    assert_eq!(receipt["choice"], "agree", "{receipt}");
    assert_eq!(receipt["replaced"], false, "{receipt}");
    vote.cast(&node, "bob", json!("agree")).await;
    vote.cast(&node, "carol", json!("disagree")).await;
    vote.cast(&node, "dave", json!("abstain")).await;
    let live = vote.outcome(&node).await;
    assert_eq!(live["passed"], true, "live tally: {live}");
    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["passed"], true, "{closed}");
    assert_eq!(outcome["blocked"], false, "{closed}");
    assert_eq!(outcome["quorum_met"], true, "{closed}");
    assert_eq!(outcome["ballots"], 4, "{closed}");
    assert_num(&outcome["support"], 200.0 / 3.0, "support");
    assert_tally(
        outcome,
        &[
            ("agree", 2.0),
            ("abstain", 1.0),
            ("disagree", 1.0),
            ("block", 0.0),
        ],
    );
    let list = vote.ballots(&node).await;
    assert_eq!(list["commitment"], outcome["commitment"], "{list}");

    // One block defeats full support.
    let vote = Vote::open(&node, "proposal", params(json!({}))).await;
    for voter in ["alice", "bob", "carol"] {
        vote.cast(&node, voter, json!("agree")).await;
    }
    vote.cast(&node, "dave", json!("block")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["passed"], false, "{outcome}");
    assert_eq!(outcome["blocked"], true, "{outcome}");
    assert_num(&outcome["support"], 100.0, "support");
    assert_num(&outcome["tally"]["block"], 1.0, "block");

    // Exactly the default threshold (50) is not enough.
    let vote = Vote::open(&node, "proposal", params(json!({}))).await;
    vote.cast(&node, "alice", json!("agree")).await;
    vote.cast(&node, "bob", json!("disagree")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_num(&outcome["support"], 50.0, "support");
    assert_eq!(outcome["passed"], false, "support == 50: {outcome}");

    // Nor exactly a custom threshold (3 of 5 = 60)...
    let vote = Vote::open(&node, "proposal", params(json!({"threshold": 60}))).await;
    for voter in ["a", "b", "c"] {
        vote.cast(&node, voter, json!("agree")).await;
    }
    for voter in ["d", "e"] {
        vote.cast(&node, voter, json!("disagree")).await;
    }
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_num(&outcome["support"], 60.0, "support");
    assert_eq!(outcome["passed"], false, "support == threshold: {outcome}");

    // ...while just above it passes (2 of 3 = 66.67 > 66).
    let vote = Vote::open(&node, "proposal", params(json!({"threshold": 66}))).await;
    vote.cast(&node, "a", json!("agree")).await;
    vote.cast(&node, "b", json!("agree")).await;
    vote.cast(&node, "c", json!("disagree")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["passed"], true, "66.67 > 66: {outcome}");

    // Everyone abstaining decides nothing.
    let vote = Vote::open(&node, "proposal", params(json!({}))).await;
    vote.cast(&node, "a", json!("abstain")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["passed"], false, "{outcome}");
    assert_eq!(outcome["support"], Value::Null, "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choice_is_plurality_a_tie_has_no_winner_unless_first_option_breaks_it() {
    let node = town("votes-choice", NodeConfig::dev()).await;
    let options = json!(["pizza", "sushi", "tacos"]);

    let vote = Vote::open(
        &node,
        "choice",
        params(json!({"options": options, "title": "Lunch"})),
    )
    .await;
    vote.cast(&node, "a", json!(["pizza"])).await;
    vote.cast(&node, "b", json!(["pizza"])).await;
    vote.cast(&node, "c", json!(["sushi"])).await;
    vote.cast(&node, "d", json!(["tacos"])).await;
    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winner"], "pizza", "{closed}");
    assert_eq!(outcome["ballots"], 4, "{closed}");
    assert_eq!(outcome["quorum_met"], true, "{closed}");
    assert_tally(outcome, &[("pizza", 2.0), ("sushi", 1.0), ("tacos", 1.0)]);

    // A tie for first place: no winner.
    let vote = Vote::open(&node, "choice", params(json!({"options": options}))).await;
    vote.cast(&node, "a", json!(["sushi"])).await;
    vote.cast(&node, "b", json!(["pizza"])).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["winner"], Value::Null, "tie: {outcome}");
    assert_tally(&outcome, &[("pizza", 1.0), ("sushi", 1.0), ("tacos", 0.0)]);
    if let Some(tied) = outcome.get("tied") {
        assert_eq!(tied, &json!(["pizza", "sushi"]), "{outcome}");
    }

    // The same tie with tie_break first_option: the tied option listed first wins, whatever
    // the order of the ballots.
    let vote = Vote::open(
        &node,
        "choice",
        params(json!({"options": ["tacos", "sushi", "pizza"], "tie_break": "first_option"})),
    )
    .await;
    vote.cast(&node, "a", json!(["pizza"])).await;
    vote.cast(&node, "b", json!(["sushi"])).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["winner"], "sushi", "first_option: {outcome}");

    // max 2: each selected option gets the voter's full weight.
    let vote = Vote::open(
        &node,
        "choice",
        params(json!({"options": options, "min": 1, "max": 2})),
    )
    .await;
    let receipt = vote.cast(&node, "a", json!(["tacos", "pizza"])).await;
    assert_eq!(receipt["choice"], json!(["pizza", "tacos"]), "canonical");
    vote.cast(&node, "b", json!(["tacos"])).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["winner"], "tacos", "{outcome}");
    assert_tally(&outcome, &[("pizza", 1.0), ("sushi", 0.0), ("tacos", 2.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_gives_every_approved_option_the_full_weight() {
    let node = town("votes-approval", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "approval",
        params(json!({"options": ["red", "green", "blue"]})),
    )
    .await;
    vote.cast(&node, "a", json!(["red", "green"])).await;
    vote.cast(&node, "b", json!(["green"])).await;
    let receipt = vote.cast(&node, "c", json!(["blue", "green", "red"])).await;
    assert_eq!(
        receipt["choice"],
        json!(["red", "green", "blue"]),
        "canonical order is the options order"
    );
    vote.cast(&node, "d", json!([])).await;
    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winner"], "green", "{closed}");
    assert_eq!(outcome["ballots"], 4, "{closed}");
    assert_tally(outcome, &[("red", 2.0), ("green", 3.0), ("blue", 1.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranked_instant_runoff_transfers_eliminated_ballots_and_reports_exhausted_ones() {
    let node = town("votes-irv", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "ranked",
        params(json!({"options": ["alice", "bob", "carol", "dave"]})),
    )
    .await;
    // First preferences: alice 4, bob 3, carol 2, dave 1. Dave's lone ballot exhausts when he is
    // eliminated; carol's two then move to bob, who overtakes alice 5 to 4.
    let ballots = [
        ("v1", json!(["alice"])),
        ("v2", json!(["alice", "bob"])),
        ("v3", json!(["alice"])),
        ("v4", json!(["alice", "carol"])),
        ("v5", json!(["bob", "alice"])),
        ("v6", json!(["bob"])),
        ("v7", json!(["bob", "carol"])),
        ("v8", json!(["carol", "bob"])),
        ("v9", json!(["carol", "bob", "alice"])),
        ("v10", json!(["dave"])),
    ];
    for (voter, choice) in &ballots {
        let receipt = vote.cast(&node, voter, choice.clone()).await;
        assert_eq!(&receipt["choice"], choice, "a ranking keeps its order");
    }
    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winner"], "bob", "{closed}");
    assert_eq!(outcome["ballots"], 10, "{closed}");
    assert_tally(
        outcome,
        &[("alice", 4.0), ("bob", 3.0), ("carol", 2.0), ("dave", 1.0)],
    );
    let rounds = outcome["rounds"]
        .as_array()
        .unwrap_or_else(|| panic!("no rounds: {closed}"));
    assert_eq!(rounds.len(), 3, "three rounds: {closed}");
    assert_eq!(rounds[0]["eliminated"], json!(["dave"]), "{closed}");
    assert_eq!(rounds[1]["eliminated"], json!(["carol"]), "{closed}");
    assert_num(&rounds[0]["exhausted"], 0.0, "round 1 exhausted");
    let last = &rounds[2];
    assert_num(&last["votes"]["bob"], 5.0, "final bob");
    assert_num(&last["votes"]["alice"], 4.0, "final alice");
    assert_num(&last["exhausted"], 1.0, "final exhausted weight");
    assert_eq!(last["exhausted_ballots"], 1, "{closed}");
    assert_eq!(last["elected"], json!(["bob"]), "{closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranked_with_two_seats_is_stv_with_a_droop_quota() {
    let node = town("votes-stv", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "ranked",
        params(json!({"options": ["alice", "bob", "carol"], "seats": 2})),
    )
    .await;
    // 9 ballots, 2 seats: quota floor(9/3)+1 = 4. Alice (5) is elected and her surplus of 1
    // lifts carol to 3 over bob's 2, so carol takes the second seat.
    for i in 0..5 {
        vote.cast(&node, &format!("a{i}"), json!(["alice", "carol"]))
            .await;
    }
    for i in 0..2 {
        vote.cast(&node, &format!("b{i}"), json!(["bob"])).await;
        vote.cast(&node, &format!("c{i}"), json!(["carol"])).await;
    }
    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winners"], json!(["alice", "carol"]), "{closed}");
    assert_num(&outcome["quota"], 4.0, "Droop quota");
    assert_eq!(outcome["ballots"], 9, "{closed}");
    assert_tally(outcome, &[("alice", 5.0), ("bob", 2.0), ("carol", 2.0)]);
    assert!(
        outcome["rounds"].as_array().is_some_and(|r| r.len() >= 2),
        "stages: {closed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_reports_totals_and_averages_and_the_highest_total_wins() {
    let node = town("votes-score", NodeConfig::dev()).await;
    let vote = Vote::open(&node, "score", params(json!({"options": ["x", "y", "z"]}))).await;
    let receipt = vote.cast(&node, "a", json!({"y": 3, "x": 5})).await;
    assert_eq!(receipt["choice"], json!({"x": 5, "y": 3}), "{receipt}");
    vote.cast(&node, "b", json!({"x": 1, "y": 4, "z": 2})).await;
    vote.cast(&node, "c", json!({"y": 5})).await;
    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winner"], "y", "{closed}");
    assert_tally(outcome, &[("x", 6.0), ("y", 12.0), ("z", 2.0)]);
    assert_num(&outcome["averages"]["x"], 2.0, "average x");
    assert_num(&outcome["averages"]["y"], 4.0, "average y");
    assert_num(&outcome["averages"]["z"], 2.0 / 3.0, "average z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_votes_add_up_per_option_within_each_voters_dots() {
    let node = town("votes-dot", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "dot",
        params(json!({"options": ["a", "b", "c"], "dots": 5})),
    )
    .await;
    vote.cast(&node, "v1", json!({"a": 3, "b": 2})).await;
    vote.cast(&node, "v2", json!({"c": 5})).await;
    let receipt = vote.cast(&node, "v3", json!({"a": 1, "c": 0})).await;
    assert_eq!(receipt["choice"], json!({"a": 1}), "zero entries dropped");
    let before = vote.outcome(&node).await;
    vote.try_cast(&node, &json!({"voter": "v4", "choice": {"a": 4, "b": 2}}))
        .await
        .expect_error(400, "over_budget");
    assert_eq!(vote.outcome(&node).await, before, "refused ballot counted");
    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winner"], "c", "{closed}");
    assert_eq!(outcome["ballots"], 3, "{closed}");
    assert_tally(outcome, &[("a", 4.0), ("b", 2.0), ("c", 5.0)]);

    // The default budget is 8 dots.
    let vote = Vote::open(&node, "dot", params(json!({"options": ["a", "b"]}))).await;
    vote.cast(&node, "v1", json!({"a": 8})).await;
    vote.try_cast(&node, &json!({"voter": "v2", "choice": {"a": 5, "b": 4}}))
        .await
        .expect_error(400, "over_budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quadratic_ballot_costing_more_than_its_credits_is_rejected_at_cast() {
    let node = town("votes-quadratic", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "quadratic",
        params(json!({"options": ["park", "library"], "credits": 10})),
    )
    .await;
    vote.cast(&node, "v1", json!({"park": 3, "library": 1}))
        .await; // 9 + 1 = 10: exactly the budget
    vote.cast(&node, "v2", json!({"library": 2})).await;
    let before = vote.outcome(&node).await;
    // 9 + 4 = 13 > 10.
    vote.try_cast(
        &node,
        &json!({"voter": "v3", "choice": {"park": 3, "library": 2}}),
    )
    .await
    .expect_error(400, "over_budget");
    let after = vote.outcome(&node).await;
    assert_eq!(after, before, "an over-budget ballot changed the tally");
    assert_eq!(after["ballots"], 2, "{after}");
    vote.cast(&node, "v3", json!({"library": 3})).await;
    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winner"], "library", "{closed}");
    assert_tally(outcome, &[("park", 3.0), ("library", 6.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_passes_without_objection_and_fails_with_one() {
    let node = town("votes-consent", NodeConfig::dev()).await;
    let vote = Vote::open(&node, "consent", params(json!({}))).await;
    vote.cast(&node, "a", json!("consent")).await;
    vote.cast(&node, "b", json!("stand_aside")).await;
    vote.cast(&node, "c", json!("consent")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["passed"], true, "{outcome}");
    assert_tally(
        &outcome,
        &[("consent", 2.0), ("object", 0.0), ("stand_aside", 1.0)],
    );

    let vote = Vote::open(&node, "consent", params(json!({}))).await;
    vote.cast(&node, "a", json!("consent")).await;
    vote.cast(&node, "b", json!("object")).await;
    vote.cast(&node, "c", json!("consent")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["passed"], false, "an objection stands: {outcome}");
    assert_tally(
        &outcome,
        &[("consent", 2.0), ("object", 1.0), ("stand_aside", 0.0)],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_passes_when_accepted_weight_reaches_the_target() {
    let node = town("votes-count", NodeConfig::dev()).await;
    let vote = Vote::open(&node, "count", params(json!({"target": 3}))).await;
    for voter in ["a", "b", "d"] {
        vote.cast(&node, voter, json!("accept")).await;
    }
    vote.cast(&node, "c", json!("decline")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["passed"], true, "target reached exactly: {outcome}");
    assert_tally(&outcome, &[("accept", 3.0), ("decline", 1.0)]);
    assert_num(&outcome["target"], 3.0, "target");

    let vote = Vote::open(&node, "count", params(json!({"target": 3}))).await;
    vote.cast(&node, "a", json!("accept")).await;
    vote.cast(&node, "b", json!("accept")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["passed"], false, "short of the target: {outcome}");
    assert_tally(&outcome, &[("accept", 2.0), ("decline", 0.0)]);
}

// ----- weights and quorum -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_scale_ballots_and_appear_in_receipts_and_the_ballot_list() {
    let node = town("votes-weights", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "choice",
        params(json!({
            "options": ["a", "b"],
            "weights": {"alice": 3, "bob": 2.5, "observer": 0},
        })),
    )
    .await;
    let alice = vote.cast(&node, "alice", json!(["a"])).await;
    assert_num(&alice["weight"], 3.0, "alice's weight");
    let bob = vote.cast(&node, "bob", json!(["b"])).await;
    assert_num(&bob["weight"], 2.5, "bob's weight");
    let carol = vote.cast(&node, "carol", json!(["b"])).await;
    assert_num(&carol["weight"], 1.0, "an unlisted voter weighs 1");
    let observer = vote.cast(&node, "observer", json!(["a"])).await;
    assert_num(&observer["weight"], 0.0, "observer's weight");

    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    // a: 3 + 0, b: 2.5 + 1.
    assert_eq!(outcome["winner"], "b", "{closed}");
    assert_eq!(
        outcome["ballots"], 4,
        "a zero weight still counts as a ballot"
    );
    assert_tally(outcome, &[("a", 3.0), ("b", 3.5)]);

    let list = vote.ballots(&node).await;
    assert_eq!(list["commitment"], outcome["commitment"], "{list}");
    let weights: Vec<(String, f64)> = list["ballots"]
        .as_array()
        .expect("ballots")
        .iter()
        .map(|e| (e["voter"].as_str().unwrap().to_string(), num(&e["weight"])))
        .collect();
    assert_eq!(
        weights,
        vec![
            ("alice".to_string(), 3.0),
            ("bob".to_string(), 2.5),
            ("carol".to_string(), 1.0),
            ("observer".to_string(), 0.0),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_quorum_not_met_gives_no_winner() {
    let node = town("votes-quorum-count", NodeConfig::dev()).await;
    let quorum = json!({"options": ["a", "b"], "quorum": {"count": 3}});

    // Live: no winner until the third ballot.
    let vote = Vote::open(&node, "choice", params(quorum.clone())).await;
    vote.cast(&node, "v1", json!(["a"])).await;
    vote.cast(&node, "v2", json!(["a"])).await;
    let live = vote.outcome(&node).await;
    assert_eq!(live["quorum_met"], false, "{live}");
    assert_eq!(live["winner"], Value::Null, "{live}");
    assert_eq!(live["ballots"], 2, "{live}");
    assert_tally(&live, &[("a", 2.0), ("b", 0.0)]);
    vote.cast(&node, "v3", json!(["b"])).await;
    let live = vote.outcome(&node).await;
    assert_eq!(live["quorum_met"], true, "{live}");
    assert_eq!(live["winner"], "a", "{live}");

    // Closed short of the quorum: the totals stand, the winner does not.
    let vote = Vote::open(&node, "choice", params(quorum)).await;
    vote.cast(&node, "v1", json!(["a"])).await;
    vote.cast(&node, "v2", json!(["a"])).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["quorum_met"], false, "{outcome}");
    assert_eq!(outcome["winner"], Value::Null, "{outcome}");
    assert_tally(&outcome, &[("a", 2.0), ("b", 0.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_quorum_counts_ballots_against_the_eligible_list() {
    let node = town("votes-quorum-percent", NodeConfig::dev()).await;
    let quorum = json!({
        "eligible": ["a", "b", "c", "d", "e"],
        "quorum": {"percent": 60},
    });

    // 2 of 5 = 40 % < 60 %: not passed although everyone agrees; the third ballot (an
    // abstention) meets it.
    let vote = Vote::open(&node, "proposal", params(quorum.clone())).await;
    vote.cast(&node, "a", json!("agree")).await;
    vote.cast(&node, "b", json!("agree")).await;
    let live = vote.outcome(&node).await;
    assert_eq!(live["quorum_met"], false, "{live}");
    assert_eq!(live["passed"], false, "{live}");
    vote.cast(&node, "c", json!("abstain")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["quorum_met"], true, "{outcome}");
    assert_eq!(outcome["passed"], true, "{outcome}");

    let vote = Vote::open(&node, "proposal", params(quorum)).await;
    vote.cast(&node, "a", json!("agree")).await;
    vote.cast(&node, "b", json!("agree")).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["quorum_met"], false, "{outcome}");
    assert_eq!(outcome["passed"], false, "{outcome}");
    assert_num(&outcome["support"], 100.0, "support is still reported");

    // A percent quorum without an electorate is refused.
    let error = node
        .post_in(
            TOWN,
            "/api/internal/process/vote.proposal",
            &params(json!({"quorum": {"percent": 60}})),
        )
        .await
        .expect_error(400, "schema_violation");
    assert_eq!(error["field"], "quorum", "{error}");
}

// ----- changing a ballot -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_ballot_replaces_the_earlier_one_when_changes_are_allowed() {
    let node = town("votes-change", NodeConfig::dev()).await;
    let vote = Vote::open(&node, "choice", params(json!({"options": ["a", "b"]}))).await;
    let first = vote.cast(&node, "alice", json!(["a"])).await;
    assert_eq!(first["replaced"], false, "{first}");
    vote.cast(&node, "bob", json!(["a"])).await;
    let second = vote.cast(&node, "alice", json!(["b"])).await;
    assert_eq!(second["replaced"], true, "{second}");
    assert_ne!(
        first["receipt"], second["receipt"],
        "a new choice, a new receipt"
    );

    let live = vote.outcome(&node).await;
    assert_eq!(live["ballots"], 2, "alice counted once: {live}");
    assert_tally(&live, &[("a", 1.0), ("b", 1.0)]);
    let list = vote.ballots(&node).await;
    let entries = list["ballots"].as_array().expect("ballots");
    assert_eq!(entries.len(), 2, "{list}");
    assert_eq!(entries[0]["voter"], "alice", "{list}");
    assert_eq!(entries[0]["choice"], json!(["b"]), "{list}");
    assert_eq!(entries[0]["receipt"], second["receipt"], "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ballot_is_refused_with_409_when_changes_are_not_allowed() {
    let node = town("votes-no-change", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "choice",
        params(json!({"options": ["a", "b"], "allow_change": false})),
    )
    .await;
    let first = vote.cast(&node, "alice", json!(["a"])).await;
    let before = vote.ballots(&node).await;
    vote.try_cast(&node, &json!({"voter": "alice", "choice": ["b"]}))
        .await
        .expect_error(409, "already_voted");
    // Even the same choice again is a second ballot.
    vote.try_cast(&node, &json!({"voter": "alice", "choice": ["a"]}))
        .await
        .expect_error(409, "already_voted");
    assert_eq!(vote.ballots(&node).await, before, "the ballot list changed");
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["winner"], "a", "{outcome}");
    assert_eq!(outcome["ballots"], 1, "{outcome}");
    let list = vote.ballots(&node).await;
    assert_eq!(list["ballots"][0]["receipt"], first["receipt"], "{list}");
}

// ----- early close -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_eligible_ballot_closes_an_early_close_vote_at_once() {
    let sink = Sink::start().await;
    let node = town("votes-early", NodeConfig::dev()).await;
    let settings = json!({
        "options": ["a", "b"],
        "eligible": ["alice", "bob", "carol"],
        "allow_change": false,
        "early_close": true,
        "callback_url": sink.url("/cb"),
    });
    let vote = Vote::open(&node, "choice", params(settings.clone())).await;
    vote.cast(&node, "alice", json!(["a"])).await;
    vote.cast(&node, "bob", json!(["b"])).await;
    assert_eq!(vote.process(&node).await["status"], "pending");
    vote.cast(&node, "carol", json!(["a"])).await;
    // No waiting: the ballot that decided it closed it.
    let closed = vote.process(&node).await;
    assert_final(&closed, "choice", "early");
    assert_eq!(closed["outcome"]["winner"], "a", "{closed}");
    assert_eq!(closed["outcome"]["ballots"], 3, "{closed}");
    vote.try_cast(&node, &json!({"voter": "alice", "choice": ["b"]}))
        .await
        .expect_error(409, "vote_closed");
    node.delete(&vote.location)
        .await
        .expect_error(400, "process_completed");

    let id = closed["id"].clone();
    sink.wait_for(WAIT, "the completion callback", |reqs| {
        completed_callbacks(reqs, &id) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = sink.requests();
    assert_eq!(completed_callbacks(&requests, &id), 1, "exactly one");
    let callback = requests
        .iter()
        .find(|r| r.is_callback(&id, "completed"))
        .unwrap();
    assert_eq!(callback.json.as_ref(), Some(&closed), "callback body");

    // With changes allowed every ballot may still move, so the same electorate does not close
    // it early.
    let mut open_settings = settings;
    open_settings["allow_change"] = json!(true);
    let vote = Vote::open(&node, "choice", params(open_settings)).await;
    for voter in ["alice", "bob", "carol"] {
        vote.cast(&node, voter, json!(["a"])).await;
    }
    assert_eq!(vote.process(&node).await["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_block_closes_an_early_close_proposal_at_once() {
    let node = town("votes-early-block", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "proposal",
        params(json!({"allow_change": false, "early_close": true})),
    )
    .await;
    vote.cast(&node, "alice", json!("agree")).await;
    vote.cast(&node, "bob", json!("agree")).await;
    assert_eq!(vote.process(&node).await["status"], "pending");
    vote.cast(&node, "carol", json!("block")).await;
    let closed = vote.process(&node).await;
    assert_final(&closed, "proposal", "early");
    assert_eq!(closed["outcome"]["passed"], false, "{closed}");
    assert_eq!(closed["outcome"]["blocked"], true, "{closed}");
    vote.try_cast(&node, &json!({"voter": "dave", "choice": "agree"}))
        .await
        .expect_error(409, "vote_closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_the_remaining_voters_cannot_overturn_closes_an_early_close_vote() {
    let node = town("votes-early-margin", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "choice",
        params(json!({
            "options": ["a", "b"],
            "eligible": ["v1", "v2", "v3", "v4", "v5"],
            "allow_change": false,
            "early_close": true,
        })),
    )
    .await;
    vote.cast(&node, "v1", json!(["a"])).await;
    vote.cast(&node, "v2", json!(["a"])).await;
    // 2 to 0 with three voters left: b could still win.
    assert_eq!(vote.process(&node).await["status"], "pending");
    vote.cast(&node, "v3", json!(["a"])).await;
    // 3 to 0 with two voters left: nothing they do changes the winner.
    let closed = vote.process(&node).await;
    assert_final(&closed, "choice", "early");
    assert_eq!(closed["outcome"]["winner"], "a", "{closed}");
    assert_eq!(closed["outcome"]["ballots"], 3, "{closed}");
}

// ----- hidden results -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_results_stay_hidden_until_the_vote_closes() {
    let node = town("votes-hidden", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "choice",
        params(json!({"options": ["a", "b"], "hide_results": true})),
    )
    .await;
    assert_eq!(
        vote.outcome(&node).await,
        json!({"hidden": true, "ballots": 0})
    );
    vote.cast(&node, "alice", json!(["a"])).await;
    vote.cast(&node, "bob", json!(["a"])).await;
    let process = vote.process(&node).await;
    assert_eq!(process["status"], "pending");
    assert_eq!(process["outcome"], json!({"hidden": true, "ballots": 2}));
    vote.try_ballots(&node)
        .await
        .expect_error(403, "results_hidden");

    let closed = vote.close(&node).await;
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winner"], "a", "{closed}");
    assert!(outcome.get("hidden").is_none(), "{closed}");
    assert_tally(outcome, &[("a", 2.0), ("b", 0.0)]);
    let list = vote.ballots(&node).await;
    assert_eq!(list["ballots"].as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list["commitment"], outcome["commitment"], "{list}");
}

// ----- anonymous ballots -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_ballot_list_shows_salted_hashes_never_voter_ids() {
    let node = town("votes-anonymous", NodeConfig::dev()).await;
    let vote = Vote::open(
        &node,
        "proposal",
        params(json!({"anonymous": true, "weights": {"alice": 2}})),
    )
    .await;
    let alice = vote.cast(&node, "alice", json!("agree")).await;
    let bob = vote.cast(&node, "bob", json!("disagree")).await;
    let carol = vote.cast(&node, "carol", json!("agree")).await;
    for receipt in [&alice, &bob, &carol] {
        assert!(is_hex64(&receipt["voter"]), "receipt voter: {receipt}");
    }
    assert_num(&alice["weight"], 2.0, "weights still apply by id");
    assert_ne!(alice["voter"], bob["voter"]);
    // The same voter maps to the same hash: a change replaces.
    let alice_again = vote.cast(&node, "alice", json!("abstain")).await;
    assert_eq!(alice_again["voter"], alice["voter"]);
    assert_eq!(alice_again["replaced"], true, "{alice_again}");

    let list_resp = vote.try_ballots(&node).await.expect_status(200);
    let text = list_resp.text();
    for id in ["alice", "bob", "carol"] {
        assert!(!text.contains(id), "the ballot list names {id}: {text}");
    }
    let list = list_resp.json();
    verify_commitment(&list);
    assert_eq!(list["anonymous"], true, "{list}");
    let entries = list["ballots"].as_array().expect("ballots");
    assert_eq!(entries.len(), 3, "{list}");
    assert!(entries.iter().all(|e| is_hex64(&e["voter"])), "{list}");
    let receipts: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["receipt"].as_str().unwrap())
        .collect();
    for receipt in [&alice_again, &bob, &carol] {
        assert!(
            receipts.contains(receipt["receipt"].as_str().unwrap()),
            "receipt {receipt} not in {list}"
        );
    }
    assert!(
        !receipts.contains(alice["receipt"].as_str().unwrap()),
        "a replaced ballot's receipt is still listed: {list}"
    );

    let closed = vote.close(&node).await;
    let closed_text = closed.to_string();
    for id in ["alice", "bob", "carol"] {
        assert!(!closed_text.contains(id), "outcome names {id}: {closed}");
    }
    // alice abstains now: agree 1 (carol), disagree 1 (bob).
    assert_tally(
        &closed["outcome"],
        &[
            ("agree", 1.0),
            ("abstain", 2.0),
            ("disagree", 1.0),
            ("block", 0.0),
        ],
    );
    let list = vote.ballots(&node).await;
    assert!(
        list["ballots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| is_hex64(&e["voter"])),
        "{list}"
    );
    assert_eq!(list["commitment"], closed["outcome"]["commitment"]);
}

// ----- the commitment -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commitment_and_receipts_recompute_from_the_published_ballot_list() {
    let node = town("votes-commitment", NodeConfig::dev()).await;
    // Option names that need escaping or are not ASCII, fractional weights, voters cast out of
    // order: the canonical form must still be reproducible from outside.
    let options = json!(["café", "say \"hi\"", "back\\slash", "tab\there"]);
    let vote = Vote::open(
        &node,
        "score",
        params(json!({
            "options": options,
            "weights": {"zoë": 2.5, "bob": 0.125},
            "min": -2,
            "max": 3,
        })),
    )
    .await;
    let mut receipts = Vec::new();
    receipts.push(
        vote.cast(&node, "zoë", json!({"say \"hi\"": 3, "café": -2}))
            .await,
    );
    receipts.push(
        vote.cast(&node, "bob", json!({"tab\there": 1, "back\\slash": 0}))
            .await,
    );
    receipts.push(vote.cast(&node, "alice", json!({"café": 2})).await);
    receipts.push(vote.cast(&node, "Émile", json!({})).await);

    // While open the list is already verifiable.
    let open_list = vote.ballots(&node).await;
    assert_eq!(open_list["status"], "pending", "{open_list}");
    assert_eq!(open_list["anonymous"], false, "{open_list}");
    let closed = vote.close(&node).await;
    let list = vote.ballots(&node).await;
    assert_eq!(list["status"], "completed", "{list}");
    assert_eq!(
        list["commitment"], open_list["commitment"],
        "no ballot since"
    );
    assert_eq!(
        list["commitment"], closed["outcome"]["commitment"],
        "{list}"
    );
    assert_eq!(list["vote"], closed["id"], "{list}");

    // Every cast receipt is the hash of the voter's listed entry, recomputed here from the
    // receipt's own voter, weight and canonical choice.
    let entries = list["ballots"].as_array().expect("ballots");
    assert_eq!(entries.len(), 4, "{list}");
    for receipt in &receipts {
        let mine = json!({
            "voter": receipt["voter"],
            "weight": receipt["weight"],
            "choice": receipt["choice"],
        });
        assert_eq!(
            receipt["receipt"].as_str(),
            Some(sha256_hex(&entry_text(&mine)).as_str()),
            "receipt {receipt}"
        );
        let listed = entries
            .iter()
            .find(|e| e["voter"] == receipt["voter"])
            .unwrap_or_else(|| panic!("{} not listed: {list}", receipt["voter"]));
        assert_eq!(listed["receipt"], receipt["receipt"], "{list}");
        assert_eq!(listed["choice"], receipt["choice"], "{list}");
    }
    // Weights are written as plain decimals in the canonical text.
    let canonical_text = list["canonical"].as_str().unwrap();
    assert!(
        canonical_text.contains("\"weight\":2.5}"),
        "{canonical_text}"
    );
    assert!(
        canonical_text.contains("\"weight\":0.125}"),
        "{canonical_text}"
    );
    assert!(canonical_text.contains("\"weight\":1}"), "{canonical_text}");
    assert!(
        canonical_text.contains("café"),
        "raw UTF-8: {canonical_text}"
    );
}

// ----- the deadline -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_closes_by_itself_at_its_deadline_and_calls_back_once() {
    let sink = Sink::start().await;
    let node = town(
        "votes-deadline",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    let (closing_ms, closing_at) = closing_in(Duration::from_millis(2000));
    let vote = Vote::open(
        &node,
        "count",
        json!({
            "closing_at": closing_at,
            "target": 2,
            "callback_url": sink.url("/cb"),
        }),
    )
    .await;
    vote.cast(&node, "alice", json!("accept")).await;
    vote.cast(&node, "bob", json!("accept")).await;
    let opened = vote.process(&node).await;
    assert_eq!(opened["status"], "pending", "{opened}");
    let id = opened["id"].clone();

    // A ballot arriving after closing_at is refused, whether or not the close has run yet.
    sleep_past(closing_ms, Duration::from_millis(5)).await;
    let late = vote
        .try_cast(&node, &json!({"voter": "carol", "choice": "accept"}))
        .await;
    let error = late.expect_client_error();
    assert_eq!(late.status, 409, "{}", late.describe());
    assert!(
        error["code"] == "ballot_after_deadline" || error["code"] == "vote_closed",
        "{}",
        late.describe()
    );

    let completed = vote
        .wait_completed(&node, Duration::from_millis(3000))
        .await;
    let seen = now_ms();
    assert_final(&completed, "count", "deadline");
    let closed_at = epoch_seconds(&completed["outcome"]["closed_at"]);
    let closing = closing_ms as f64 / 1000.0;
    assert!(
        closed_at >= closing && closed_at <= closing + 1.0,
        "closed_at {closed_at} not within 1 s after closing_at {closing}"
    );
    assert!(
        seen <= closing_ms + 2500,
        "completion seen {} ms after closing_at",
        seen - closing_ms
    );
    assert_eq!(completed["outcome"]["passed"], true, "{completed}");
    assert_eq!(
        completed["outcome"]["ballots"], 2,
        "the late ballot counted"
    );

    vote.try_cast(&node, &json!({"voter": "dave", "choice": "accept"}))
        .await
        .expect_error(409, "vote_closed");
    node.delete(&vote.location)
        .await
        .expect_error(400, "process_completed");
    assert_eq!(vote.process(&node).await, completed, "the outcome stands");

    // The callback: the pending process when it opened, the completed one exactly once.
    sink.wait_for(WAIT, "the completion callback", |reqs| {
        completed_callbacks(reqs, &id) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let requests = sink.requests();
    let callbacks: Vec<&Recorded> = requests.iter().filter(|r| r.path == "/cb").collect();
    assert!(
        callbacks.iter().any(|r| r.is_callback(&id, "pending")),
        "no pending callback when the vote opened"
    );
    assert_eq!(
        completed_callbacks(&requests, &id),
        1,
        "exactly one completed callback"
    );
    let callback = callbacks
        .iter()
        .find(|r| r.is_callback(&id, "completed"))
        .unwrap();
    assert_eq!(callback.method, "POST");
    assert_eq!(callback.json.as_ref(), Some(&completed), "callback body");

    // And the driver heard about it as a process_updated event from `vote`.
    let event = sink
        .wait_for_one(WAIT, "the completed process_updated event", |r| {
            r.is_process_event(&id, "completed")
        })
        .await;
    assert_eq!(event.path, "/events");
    let body = event.json.as_ref().unwrap();
    assert_eq!(body["source"], "vote", "{body}");
    assert_eq!(body["community"], TOWN, "{body}");
    assert_eq!(event.event_data(), Some(&completed), "event data");
    assert!(
        sink.requests()
            .iter()
            .any(|r| r.is_process_event(&id, "pending")),
        "no pending process_updated event"
    );
}

// ----- durability -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_ballots_survive_sigkill() {
    const VOTERS: usize = 50;
    let mut node = town("votes-sigkill", NodeConfig::dev()).await;
    let vote = Vote::open(&node, "choice", params(json!({"options": ["a", "b"]}))).await;

    let limit = Arc::new(Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..VOTERS {
        let limit = limit.clone();
        let client = http_client();
        let url = node.url(&vote.ballots_path());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let choice = if i < 30 { "a" } else { "b" };
            let resp = client
                .post(url)
                .json(&json!({"voter": format!("voter-{i:02}"), "choice": [choice]}))
                .send()
                .await
                .expect("cast");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.expect("a JSON receipt");
            assert_eq!(status, 200, "ballot {i}: {body}");
            body
        });
    }
    let mut receipts = Vec::new();
    while let Some(result) = tasks.join_next().await {
        receipts.push(result.expect("a ballot task failed"));
    }

    // Right after the last acknowledgement.
    node.kill9().await;
    node.restart().await;

    let live = vote.process(&node).await;
    assert_eq!(live["status"], "pending", "{live}");
    assert_eq!(live["outcome"]["ballots"], VOTERS, "ballots lost: {live}");
    assert_tally(&live["outcome"], &[("a", 30.0), ("b", 20.0)]);
    let list = vote.ballots(&node).await;
    let listed: BTreeSet<&str> = list["ballots"]
        .as_array()
        .expect("ballots")
        .iter()
        .map(|e| e["receipt"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), VOTERS, "{list}");
    for receipt in &receipts {
        assert!(
            listed.contains(receipt["receipt"].as_str().unwrap()),
            "acknowledged ballot missing after restart: {receipt}"
        );
    }
    // Still a working vote.
    vote.cast(&node, "late-voter", json!(["b"])).await;
    let outcome = vote.close(&node).await["outcome"].clone();
    assert_eq!(outcome["ballots"], VOTERS + 1, "{outcome}");
    assert_eq!(outcome["winner"], "a", "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_passing_while_the_node_is_down_closes_the_vote_once_after_restart() {
    let sink = Sink::start().await;
    let mut node = town("votes-deadline-down", NodeConfig::dev()).await;
    let (closing_ms, closing_at) = closing_in(Duration::from_millis(2000));
    let vote = Vote::open(
        &node,
        "approval",
        json!({
            "closing_at": closing_at,
            "options": ["x", "y"],
            "callback_url": sink.url("/cb"),
        }),
    )
    .await;
    vote.cast(&node, "alice", json!(["x", "y"])).await;
    vote.cast(&node, "bob", json!(["y"])).await;
    vote.cast(&node, "carol", json!(["x"])).await;
    let before = vote.process(&node).await;
    assert_eq!(
        before["status"], "pending",
        "closed before the kill: {before}"
    );
    let id = before["id"].clone();

    node.kill9().await;
    sleep_past(closing_ms, Duration::from_millis(700)).await;
    assert!(
        completed_callbacks(&sink.requests(), &id) == 0,
        "a completed callback before the deadline"
    );
    node.restart().await;
    let restarted = Instant::now();

    let completed = vote.wait_completed(&node, Duration::from_secs(5)).await;
    let took = restarted.elapsed();
    assert!(
        took <= Duration::from_secs(3),
        "closed {took:?} after the restart"
    );
    assert_final(&completed, "approval", "deadline");
    let outcome = &completed["outcome"];
    assert_eq!(outcome["ballots"], 3, "{completed}");
    assert_eq!(outcome["winner"], Value::Null, "x and y tie: {completed}");
    assert_tally(outcome, &[("x", 2.0), ("y", 2.0)]);
    let closed_at = epoch_seconds(&outcome["closed_at"]);
    assert!(
        closed_at >= closing_ms as f64 / 1000.0,
        "closed_at {closed_at} before closing_at"
    );
    vote.try_cast(&node, &json!({"voter": "dave", "choice": ["x"]}))
        .await
        .expect_error(409, "vote_closed");
    let list = vote.ballots(&node).await;
    assert_eq!(list["commitment"], outcome["commitment"], "{list}");

    sink.wait_for(WAIT, "the completion callback", |reqs| {
        completed_callbacks(reqs, &id) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let requests = sink.requests();
    assert_eq!(
        completed_callbacks(&requests, &id),
        1,
        "exactly one completed callback"
    );
    let callback = requests
        .iter()
        .find(|r| r.is_callback(&id, "completed"))
        .unwrap();
    assert_eq!(callback.json.as_ref(), Some(&completed), "callback body");
}

// ----- refusals -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_ballots_answer_their_error_code_and_leave_the_tally_unchanged() {
    let node = town("votes-refusals", NodeConfig::dev()).await;
    let choice = Vote::open(
        &node,
        "choice",
        params(json!({
            "options": ["a", "b", "c"],
            "min": 1,
            "max": 2,
            "eligible": ["alice", "bob", "carol"],
        })),
    )
    .await;
    choice.cast(&node, "alice", json!(["a"])).await;
    let score = Vote::open(&node, "score", params(json!({"options": ["a", "b"]}))).await;
    score.cast(&node, "alice", json!({"a": 3})).await;
    let dot = Vote::open(
        &node,
        "dot",
        params(json!({"options": ["a", "b"], "dots": 3})),
    )
    .await;
    dot.cast(&node, "alice", json!({"a": 2})).await;
    let quadratic = Vote::open(
        &node,
        "quadratic",
        params(json!({"options": ["a", "b"], "credits": 4})),
    )
    .await;
    quadratic.cast(&node, "alice", json!({"a": 2})).await;
    let frozen = Vote::open(
        &node,
        "choice",
        params(json!({"options": ["a", "b"], "allow_change": false})),
    )
    .await;
    frozen.cast(&node, "alice", json!(["a"])).await;
    let proposal = Vote::open(&node, "proposal", params(json!({}))).await;
    proposal.cast(&node, "alice", json!("agree")).await;
    let closed = Vote::open(&node, "choice", params(json!({"options": ["a", "b"]}))).await;
    closed.cast(&node, "alice", json!(["a"])).await;
    closed.close(&node).await;

    let table: Vec<(&Vote, Value, u16, &str)> = vec![
        (
            &choice,
            json!({"voter": "mallory", "choice": ["a"]}),
            403,
            "ineligible_voter",
        ),
        (
            &choice,
            json!({"voter": "bob", "choice": ["zzz"]}),
            400,
            "unknown_option",
        ),
        // A refused change must not wipe the ballot it would have replaced.
        (
            &choice,
            json!({"voter": "alice", "choice": ["zzz"]}),
            400,
            "unknown_option",
        ),
        (
            &choice,
            json!({"voter": "bob", "choice": 42}),
            400,
            "malformed_choice",
        ),
        (
            &choice,
            json!({"voter": "bob", "choice": {"a": 1}}),
            400,
            "malformed_choice",
        ),
        (
            &choice,
            json!({"voter": "bob", "choice": ["a", "b", "c"]}),
            400,
            "too_many_selections",
        ),
        (
            &choice,
            json!({"voter": "bob", "choice": []}),
            400,
            "too_few_selections",
        ),
        (&choice, json!({"choice": ["a"]}), 400, "invalid_request"),
        (&choice, json!({"voter": "bob"}), 400, "invalid_request"),
        (
            &score,
            json!({"voter": "bob", "choice": {"a": 6}}),
            400,
            "score_out_of_range",
        ),
        (
            &score,
            json!({"voter": "bob", "choice": {"a": -1}}),
            400,
            "score_out_of_range",
        ),
        (
            &score,
            json!({"voter": "bob", "choice": {"zzz": 1}}),
            400,
            "unknown_option",
        ),
        (
            &score,
            json!({"voter": "bob", "choice": ["a"]}),
            400,
            "malformed_choice",
        ),
        (
            &dot,
            json!({"voter": "bob", "choice": {"a": 2, "b": 2}}),
            400,
            "over_budget",
        ),
        (
            &quadratic,
            json!({"voter": "bob", "choice": {"a": 2, "b": 1}}),
            400,
            "over_budget",
        ),
        (
            &proposal,
            json!({"voter": "bob", "choice": "maybe"}),
            400,
            "unknown_option",
        ),
        (
            &proposal,
            json!({"voter": "bob", "choice": ["agree"]}),
            400,
            "malformed_choice",
        ),
        (
            &frozen,
            json!({"voter": "alice", "choice": ["b"]}),
            409,
            "already_voted",
        ),
        (
            &closed,
            json!({"voter": "bob", "choice": ["a"]}),
            409,
            "vote_closed",
        ),
    ];
    for (vote, body, status, code) in table {
        let before = vote.process(&node).await;
        let before_list = vote.ballots(&node).await;
        let resp = vote.try_cast(&node, &body).await;
        assert!(
            resp.status == status && resp.json().pointer("/error/code") == Some(&json!(code)),
            "{} {body} should be {status} {code}: {}",
            vote.method,
            resp.describe()
        );
        resp.expect_error(status, code);
        assert_eq!(vote.process(&node).await, before, "{code} changed the vote");
        assert_eq!(
            vote.ballots(&node).await,
            before_list,
            "{code} changed the ballot list"
        );
    }
    let outcome = choice.outcome(&node).await;
    assert_eq!(outcome["ballots"], 1, "{outcome}");
    assert_tally(&outcome, &[("a", 1.0), ("b", 0.0), ("c", 0.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_vote_parameters_are_schema_violations_naming_the_parameter() {
    let node = town("votes-bad-params", NodeConfig::dev()).await;
    let past = rfc3339(now_ms() - 60_000);
    let future = closing_in(LONG).1;
    let cases = [
        ("choice", json!({"options": ["a", "b"]}), "closing_at"),
        (
            "choice",
            json!({"options": ["a", "b"], "closing_at": past}),
            "closing_at",
        ),
        (
            "choice",
            json!({"options": ["a", "b"], "closing_at": "next tuesday"}),
            "closing_at",
        ),
        (
            "choice",
            json!({"options": ["a", "b"], "closing_at": future, "seats": 2}),
            "seats",
        ),
        (
            "proposal",
            json!({"closing_at": future, "threshold": 150}),
            "threshold",
        ),
        (
            "proposal",
            json!({"closing_at": future, "options": ["a", "b"]}),
            "options",
        ),
        (
            "consent",
            json!({"closing_at": future, "options": ["a", "b"]}),
            "options",
        ),
        (
            "count",
            json!({"closing_at": future, "options": ["a", "b"]}),
            "options",
        ),
        ("choice", json!({"closing_at": future}), "options"),
        ("ranked", json!({"closing_at": future}), "options"),
        (
            "choice",
            json!({"options": ["a", "b"], "closing_at": future, "quorum": {"percent": 50}}),
            "quorum",
        ),
    ];
    for (method, body, field) in cases {
        let resp = node
            .post_in(TOWN, &format!("/api/internal/process/vote.{method}"), &body)
            .await;
        let error = resp.expect_error(400, "schema_violation");
        assert_eq!(
            error["field"],
            json!(field),
            "vote.{method} {body}: {}",
            resp.describe()
        );
    }

    // The community must exist; the method must be one of the nine.
    let good = params(json!({"options": ["a", "b"]}));
    node.post_in("nowhere", "/api/internal/process/vote.choice", &good)
        .await
        .expect_client_error();
    node.post_in(TOWN, "/api/internal/process/vote.plurality", &good)
        .await
        .expect_client_error();
    // And the same parameters, well-formed, start a vote.
    let vote = Vote::open(&node, "choice", good).await;

    // A vote is found only under its own method's name.
    let id = vote.location.rsplit('/').next().unwrap().to_string();
    for path in [
        format!("/api/internal/process/vote.choice/987654321{id}"),
        format!("/api/internal/process/vote.approval/{id}"),
    ] {
        node.get(&path).await.expect_error(404, "process_not_found");
        node.get(&format!("{path}/ballots"))
            .await
            .expect_error(404, "process_not_found");
        node.post(
            &format!("{path}/ballots"),
            &json!({"voter": "alice", "choice": ["a"]}),
        )
        .await
        .expect_error(404, "process_not_found");
        node.delete(&path)
            .await
            .expect_error(404, "process_not_found");
    }
    let outcome = vote.outcome(&node).await;
    assert_eq!(outcome["ballots"], 0, "{outcome}");
    assert_eq!(vote.process(&node).await["status"], "pending");
}
