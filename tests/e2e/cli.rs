//! The operator CLI (`agora status`, `communities show`, `process show`, `audit`, `tokens`,
//! `verify vote`, `verify log`) run as a real process against a real node, and `verify vote`
//! and `verify log` against stand-ins that serve tampered ballots, outcomes and log entries.

use std::process::Output;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::harness::{now_ms, rfc3339, Node, NodeConfig};

const TOKEN: &str = "e2e-driver-token-cli";

/// Runs `agora args…` with `env`; answers its output.
async fn agora(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agora"));
    cmd.args(args).env_remove("AGORA_DRIVER_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run agora"))
        .await
        .expect("join")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn expect_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// An error is one line on stderr, never a panic or a backtrace.
#[track_caller]
fn one_line_error(o: &Output, contains: &str) {
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("agora: "), "{err}");
    assert!(err.contains(contains), "{err} lacks {contains:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

/// A closed weighted `vote.choice` in community `town`; answers its Location.
async fn closed_vote(node: &Node) -> String {
    node.create_community("town").await;
    let body = json!({
        "options": ["yes", "no"],
        "weights": {"ana": 3, "ben": 2.5},
        "closing_at": rfc3339(now_ms() + 600_000),
    });
    let resp = node
        .post_in("town", "/api/internal/process/vote.choice", &body)
        .await
        .expect_status(202);
    let location = resp.header("location").expect("a Location");
    for (voter, choice) in [
        ("ana", "yes"),
        ("ben", "no"),
        ("cleo", "no"),
        ("dan", "yes"),
    ] {
        node.post(
            &format!("{location}/ballots"),
            &json!({"voter": voter, "choice": [choice]}),
        )
        .await
        .expect_status(200);
    }
    location
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_works_against_a_real_node() {
    let node = Node::start("cli-node", NodeConfig::with_token(TOKEN)).await;
    let url = node.url("");
    let url = url.as_str();
    let driver = [("AGORA_DRIVER_TOKEN", TOKEN)];
    let location = closed_vote(&node).await;
    node.enable_randomness("town").await;

    // status: tables, and JSON with the fields scripts need.
    let o = agora(&["status", "--url", url], &driver).await;
    expect_exit(&o, 0);
    assert!(stdout(&o).contains("outbox depth"), "{}", stdout(&o));
    assert!(stdout(&o).contains("randomness"), "{}", stdout(&o));
    let o = agora(&["status", "--url", url, "--json"], &driver).await;
    expect_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).expect("status --json is JSON");
    assert_eq!(v["ready"], "ready");
    assert_eq!(v["mode"], "single");
    assert!(v["outbox_depth"].is_number(), "{v}");
    assert!(v["reminders_pending"].is_number(), "{v}");

    // communities show.
    let o = agora(&["communities", "show", "town", "--url", url], &driver).await;
    expect_exit(&o, 0);
    assert!(stdout(&o).contains("town") && stdout(&o).contains("randomness"));
    let o = agora(&["communities", "show", "nowhere", "--url", url], &driver).await;
    expect_exit(&o, 1);
    one_line_error(&o, "community_not_found");

    // process show: the live tally as bars (ana 3 + dan 1 for yes, ben 2.5 + cleo 1 for no).
    let o = agora(&["process", "show", &location, "--url", url], &driver).await;
    expect_exit(&o, 0);
    let text = stdout(&o);
    assert!(text.contains("status: pending"), "{text}");
    let yes = text
        .lines()
        .find(|l| l.starts_with("yes"))
        .expect("a yes bar");
    assert!(yes.contains('█') && yes.contains(" 4 "), "{text}");
    let no = text
        .lines()
        .find(|l| l.starts_with("no"))
        .expect("a no bar");
    assert!(no.contains("3.5"), "{text}");

    // communities list, processes list (open, then all).
    node.create_community("market").await;
    let o = agora(&["communities", "list", "--url", url], &driver).await;
    expect_exit(&o, 0);
    assert!(
        stdout(&o).contains("market") && stdout(&o).contains("2 communities"),
        "{}",
        stdout(&o)
    );
    let o = agora(&["communities", "list", "--url", url, "--json"], &driver).await;
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let slugs: Vec<&str> = v["communities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["market", "town"]);
    let page = node
        .get("/api/v1/communities?limit=1")
        .await
        .expect_status(200)
        .json();
    assert_eq!(
        (page["communities"][0]["slug"].clone(), page["next"].clone()),
        (json!("market"), json!("market"))
    );
    let page = node
        .get("/api/v1/communities?limit=1&after=market")
        .await
        .expect_status(200)
        .json();
    assert_eq!(
        (page["communities"][0]["slug"].clone(), page["next"].clone()),
        (json!("town"), Value::Null)
    );
    node.get("/api/v1/communities?limit=0")
        .await
        .expect_error(400, "invalid_query");
    let o = agora(
        &[
            "processes",
            "list",
            "--community",
            "town",
            "--open",
            "--url",
            url,
        ],
        &driver,
    )
    .await;
    expect_exit(&o, 0);
    assert!(stdout(&o).contains(&location), "{}", stdout(&o));
    let o = agora(
        &["processes", "list", "--community", "nowhere", "--url", url],
        &driver,
    )
    .await;
    expect_exit(&o, 1);
    one_line_error(&o, "community_not_found");

    // verify vote: an open vote's live tally, then the closed vote.
    let o = agora(&["verify", "vote", &location, "--url", url], &driver).await;
    expect_exit(&o, 0);
    assert!(
        stdout(&o).starts_with("verified: 4 ballots"),
        "{}",
        stdout(&o)
    );
    node.close(&location).await;
    let o = agora(
        &["verify", "vote", &location, "--url", url, "--json"],
        &driver,
    )
    .await;
    expect_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["verified"].clone(), v["open"].clone()),
        (json!(true), json!(false))
    );
    // A full URL works as well as a Location.
    let full = node.url(&location);
    let o = agora(&["verify", "vote", &full], &driver).await;
    expect_exit(&o, 0);
    // An anonymous vote publishes hashes and no weights table, and still verifies.
    let body = json!({"anonymous": true, "weights": {"ana": 2}, "quorum": {"count": 2},
        "closing_at": rfc3339(now_ms() + 600_000)});
    let anon = node
        .post_in("town", "/api/internal/process/vote.proposal", &body)
        .await
        .expect_status(202)
        .header("location")
        .unwrap();
    for (voter, choice) in [("ana", "agree"), ("ben", "disagree"), ("cleo", "agree")] {
        node.post(
            &format!("{anon}/ballots"),
            &json!({"voter": voter, "choice": choice}),
        )
        .await
        .expect_status(200);
    }
    node.close(&anon).await;
    let o = agora(&["verify", "vote", &anon, "--url", url], &driver).await;
    expect_exit(&o, 0);

    // audit.
    let o = agora(&["audit", "--plugin", "randomness", "--url", url], &driver).await;
    expect_exit(&o, 0);
    assert!(stdout(&o).contains("enable"), "{}", stdout(&o));
    let o = agora(&["audit", "--since", "yesterday", "--url", url], &driver).await;
    expect_exit(&o, 1);
    one_line_error(&o, "invalid_query");

    // tokens: create (with its secret), use it from a file, list, revoke.
    let o = agora(
        &[
            "tokens",
            "create",
            "--role",
            "viewer",
            "--community",
            "town",
            "--url",
            url,
            "--json",
        ],
        &driver,
    )
    .await;
    expect_exit(&o, 0);
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = t["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", t["secret"].as_str().unwrap())).unwrap();
    let file = file.to_str().unwrap();
    let o = agora(
        &[
            "communities",
            "show",
            "town",
            "--url",
            url,
            "--token-file",
            file,
        ],
        &[],
    )
    .await;
    expect_exit(&o, 0);
    let o = agora(&["tokens", "list", "--url", url, "--token-file", file], &[]).await;
    expect_exit(&o, 5);
    one_line_error(&o, "403 forbidden");
    let o = agora(&["tokens", "list", "--url", url], &driver).await;
    expect_exit(&o, 0);
    assert!(stdout(&o).contains(&id) && stdout(&o).contains("viewer"));
    let o = agora(&["tokens", "revoke", &id, "--url", url], &driver).await;
    expect_exit(&o, 0);
    let o = agora(
        &[
            "communities",
            "show",
            "town",
            "--url",
            url,
            "--token-file",
            file,
        ],
        &[],
    )
    .await;
    expect_exit(&o, 5);
    one_line_error(&o, "401 unauthorized");

    // No token, a node that is not there.
    let o = agora(&["tokens", "list", "--url", url], &[]).await;
    expect_exit(&o, 5);
    one_line_error(&o, "AGORA_DRIVER_TOKEN");
    let o = agora(&["status", "--url", "http://127.0.0.1:1"], &driver).await;
    expect_exit(&o, 4);
    one_line_error(&o, "cannot reach");
}

/// Serves `process` at `/v/1` and `ballots` at `/v/1/ballots`; answers the vote's URL.
async fn stand_in(process: Value, ballots: Value) -> String {
    let app = Router::new()
        .route("/v/1", get(move || async move { Json(process) }))
        .route("/v/1/ballots", get(move || async move { Json(ballots) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v/1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_vote_catches_a_changed_ballot_weight_or_outcome() {
    let node = Node::start("cli-verify", NodeConfig::with_token(TOKEN)).await;
    let location = closed_vote(&node).await;
    node.close(&location).await;
    let process = node.get(&location).await.expect_status(200).json();
    let ballots = node
        .get(&format!("{location}/ballots"))
        .await
        .expect_status(200)
        .json();

    // Served as published: verified.
    let url = stand_in(process.clone(), ballots.clone()).await;
    let o = agora(&["verify", "vote", &url], &[]).await;
    expect_exit(&o, 0);
    assert!(stdout(&o).starts_with("verified"), "{}", stdout(&o));

    let index = |b: &Value, voter: &str| {
        b["ballots"]
            .as_array()
            .unwrap()
            .iter()
            .position(|e| e["voter"] == voter)
            .unwrap()
    };

    // A changed ballot: its receipt no longer matches, nor does the count.
    let mut changed = ballots.clone();
    let i = index(&changed, "ben");
    changed["ballots"][i]["choice"] = json!(["yes"]);
    let url = stand_in(process.clone(), changed).await;
    let o = agora(&["verify", "vote", &url], &[]).await;
    expect_exit(&o, 3);
    let text = stdout(&o);
    assert!(text.starts_with("NOT verified"), "{text}");
    assert!(text.contains("ballot of ben: receipt published"), "{text}");
    assert!(text.contains("outcome.tally.yes"), "{text}");

    // A changed weight, with the receipt recomputed to match: the commitment catches it.
    let mut changed = ballots.clone();
    let i = index(&changed, "ana");
    changed["ballots"][i]["weight"] = json!(1);
    let entry = r#"{"choice":["yes"],"voter":"ana","weight":1}"#;
    changed["ballots"][i]["receipt"] = json!(agora_plugins::vote::commitment::sha256_hex(entry));
    let url = stand_in(process.clone(), changed).await;
    let o = agora(&["verify", "vote", &url, "--json"], &[]).await;
    expect_exit(&o, 3);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let diffs = v["differences"].to_string();
    assert!(!diffs.contains("receipt published"), "{diffs}");
    assert!(diffs.contains("canonical"), "{diffs}");
    assert!(diffs.contains("commitment"), "{diffs}");
    assert!(diffs.contains("outcome.tally.yes"), "{diffs}");

    // A changed outcome: the recount names the field.
    let mut changed = process.clone();
    changed["outcome"]["winner"] = json!("no");
    let url = stand_in(changed, ballots.clone()).await;
    let o = agora(&["verify", "vote", &url], &[]).await;
    expect_exit(&o, 3);
    let text = stdout(&o);
    assert!(
        text.contains(r#"outcome.winner: published "no", recounted "yes""#),
        "{text}"
    );
}

/// Serves a community `gov`'s constitution and its log `entries`, two per page, the way a
/// node pages them (`next_cursor`); answers the base URL.
async fn log_stand_in(constitution: Value, entries: Vec<Value>) -> String {
    use axum::extract::Query;
    use std::collections::HashMap;
    let app = Router::new()
        .route(
            "/api/v1/communities/gov/governance",
            get(move || async move { Json(constitution) }),
        )
        .route(
            "/api/v1/communities/gov/governance/log",
            get(move |Query(q): Query<HashMap<String, String>>| async move {
                let from: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
                let to = (from + 2).min(entries.len());
                let next = (to < entries.len()).then(|| to.to_string());
                Json(json!({"entries": entries[from..to], "next_cursor": next}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_log_recomputes_the_chain_and_names_a_tampered_entry() {
    let node = Node::start("cli-verify-log", NodeConfig::with_token(TOKEN)).await;
    let url = node.url("");
    let url = url.trim_end_matches('/');
    let driver = [("AGORA_DRIVER_TOKEN", TOKEN)];
    node.create_community("gov").await;
    let as_ana = |method: reqwest::Method, path: &str| {
        node.request(method, &format!("/api/v1/communities/gov{path}"))
            .header("X-Agora-Actor", "ana")
    };
    let r = node
        .send(as_ana(reqwest::Method::POST, "/governance").json(&json!({})))
        .await;
    assert_eq!(r.status, 201, "{}", r.describe());
    for agents in [["ben"], ["cleo"], ["dan"]] {
        let body =
            json!({"change": "add_members", "target": "community", "params": {"agents": agents}});
        let r = node
            .send(as_ana(reqwest::Method::POST, "/actions").json(&body))
            .await;
        assert_eq!(r.status, 201, "{}", r.describe());
    }

    // Against the node itself.
    let o = agora(&["verify", "log", "gov", "--url", url], &driver).await;
    expect_exit(&o, 0);
    let text = stdout(&o);
    assert!(text.starts_with("verified: "), "{text}");
    let o = agora(&["verify", "log", "gov", "--url", url, "--json"], &driver).await;
    expect_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let constitution = node
        .get("/api/v1/communities/gov/governance")
        .await
        .expect_status(200)
        .json();
    assert_eq!(report["head"], constitution["log_head"], "{report}");
    let count = report["entries"].as_u64().unwrap() as usize;
    assert!(count >= 3, "{report}");

    // Every entry, as the node serves them.
    let entries = node
        .get("/api/v1/communities/gov/governance/log?limit=1000")
        .await
        .expect_status(200)
        .json()["entries"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entries.len(), count);

    // Through a stand-in serving the same log in pages of two: verified.
    let base = log_stand_in(constitution.clone(), entries.clone()).await;
    let o = agora(&["verify", "log", "gov", "--url", &base], &driver).await;
    expect_exit(&o, 0);

    // One entry's body changed: that entry is named.
    let mut tampered = entries.clone();
    let i = tampered.iter().position(|e| !e["body"].is_null()).unwrap();
    tampered[i]["body"]["tampered"] = json!(true);
    let base = log_stand_in(constitution.clone(), tampered).await;
    let o = agora(&["verify", "log", "gov", "--url", &base], &driver).await;
    expect_exit(&o, 3);
    let text = stdout(&o);
    let seq = entries[i]["seq"].as_u64().unwrap();
    assert!(
        text.starts_with(&format!(
            "NOT verified: entry {} (seq {seq}) differs",
            i + 1
        )),
        "{text}"
    );
    assert!(text.contains("body"), "{text}");

    // An entry's time changed: its hash no longer matches.
    let mut tampered = entries.clone();
    let last = tampered.len() - 1;
    tampered[last]["at"] = json!("2000-01-01T00:00:00.000Z");
    let base = log_stand_in(constitution.clone(), tampered).await;
    let o = agora(&["verify", "log", "gov", "--url", &base], &driver).await;
    expect_exit(&o, 3);
    assert!(
        stdout(&o).contains(&format!("entry {} (seq", last + 1)),
        "{}",
        stdout(&o)
    );

    // The last entry dropped: the chain holds, but the community's head is missing.
    let base = log_stand_in(constitution.clone(), entries[..last].to_vec()).await;
    let o = agora(&["verify", "log", "gov", "--url", &base], &driver).await;
    expect_exit(&o, 3);
    assert!(stdout(&o).contains("log_head"), "{}", stdout(&o));

    // A community without governance: a one-line error.
    node.create_community("plain").await;
    let o = agora(&["verify", "log", "plain", "--url", url], &driver).await;
    expect_exit(&o, 1);
    one_line_error(&o, "governance_not_found");
}
