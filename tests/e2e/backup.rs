//! `agora backup` and `agora restore`: a node with many communities, a vote with many ballots
//! and deliveries still pending is backed up while it runs, restored offline into an empty
//! data directory, and then answers the same reads byte for byte and delivers what was
//! pending. At the size (100,000 ballots, 1,000 communities) unless
//! `AGORA_E2E_BACKUP_BALLOTS` or `AGORA_E2E_BACKUP_COMMUNITIES` say otherwise.

use std::process::Output;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::harness::{now_ms, rfc3339, Node, NodeConfig, Sink};

const TOKEN: &str = "e2e-driver-token-backup";

fn sized(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn agora(args: Vec<String>) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agora"));
    cmd.args(args).env("AGORA_DRIVER_TOKEN", TOKEN);
    tokio::task::spawn_blocking(move || cmd.output().expect("run agora"))
        .await
        .expect("join")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The reads a restored node must answer exactly as the original did.
async fn reads(node: &Node, slugs: &[String], vote: &str, closed: &str) -> Vec<(String, Vec<u8>)> {
    let mut paths = vec![
        "/api/v1/communities?limit=1000".to_string(),
        "/api/v1/tokens".to_string(),
        "/api/v1/plugin-audit-log?limit=1000".to_string(),
        vote.to_string(),
        format!("{vote}/ballots"),
        closed.to_string(),
        format!("{closed}/ballots"),
        "/api/v1/communities/c0000/processes".to_string(),
    ];
    for slug in slugs.iter().step_by((slugs.len() / 50).max(1)) {
        paths.push(format!("/api/internal/community/{slug}"));
        paths.push(format!("/api/v1/communities/{slug}/plugins"));
    }
    let mut out = Vec::new();
    for p in paths {
        let r = node.get(&p).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        out.push((p, r.body));
    }
    out
}

/// Opens a `vote.choice` in `c0000`; answers its Location.
async fn open_vote(node: &Node, options: Value) -> String {
    let body = json!({"options": options, "closing_at": rfc3339(now_ms() + 3_600_000)});
    node.post_in("c0000", "/api/internal/process/vote.choice", &body)
        .await
        .expect_status(202)
        .header("location")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_node_answers_the_same_reads_and_delivers_what_was_pending() {
    let communities = sized("AGORA_E2E_BACKUP_COMMUNITIES", 1000);
    let ballots = sized("AGORA_E2E_BACKUP_BALLOTS", 100_000);
    // The driver is down while the node runs: its deliveries stay in the outbox.
    let mut sink = Sink::reserve();
    let mut node = Node::start(
        "backup",
        NodeConfig::with_token(TOKEN).driver(sink.url("/events")),
    )
    .await;
    let slugs: Vec<String> = (0..communities).map(|i| format!("c{i:04}")).collect();
    for chunk in slugs.chunks(32) {
        join_all(chunk.iter().map(|s| node.create_community(s))).await;
    }
    node.enable_randomness("c0000").await;
    node.post("/api/v1/tokens", &json!({"role": "viewer"}))
        .await
        .expect_status(201);

    let vote = open_vote(&node, json!(["a", "b", "c"])).await;
    let voters: Vec<usize> = (0..ballots).collect();
    for chunk in voters.chunks(64) {
        let node = &node;
        join_all(chunk.iter().map(|i| {
            let option = ["a", "b", "c"][i % 3];
            let body = json!({"voter": format!("v{i}"), "choice": [option]});
            let path = format!("{vote}/ballots");
            async move { node.post(&path, &body).await.expect_status(200) }
        }))
        .await;
    }
    // A vote closed with a callback the driver never took: pending deliveries.
    let closed = open_vote(&node, json!(["yes", "no"])).await;
    node.post(
        &format!("{closed}/ballots"),
        &json!({"voter": "ana", "choice": ["yes"]}),
    )
    .await
    .expect_status(200);
    let closed_process = node.close(&closed).await;
    let depth = node.metric("agora_outbox_depth").await.unwrap_or(0.0);
    assert!(depth >= 1.0, "nothing pending in the outbox: {depth}");

    let before = reads(&node, &slugs, &vote, &closed).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.backup");
    let url = node.url("");
    let o = agora(vec![
        "backup".into(),
        "--out".into(),
        file.display().to_string(),
        "--url".into(),
        url.clone(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(said.starts_with("backed up "), "{said}");
    let records: u64 = said.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(records as usize > communities + ballots, "{said}");

    // A second backup to the same file is refused; so is one without a token.
    let o = agora(vec![
        "backup".into(),
        "--out".into(),
        file.display().to_string(),
        "--url".into(),
        url.clone(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agora"));
    cmd.args([
        "backup",
        "--out",
        &dir.path().join("x").display().to_string(),
        "--url",
        &url,
    ])
    .env_remove("AGORA_DRIVER_TOKEN");
    let o = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));

    // Restore refuses a directory in use, then fills the emptied one.
    node.kill9().await;
    let data = node.data_dir();
    let restore = |to: &std::path::Path| {
        vec![
            "restore".to_string(),
            file.display().to_string(),
            "--data-dir".into(),
            to.display().to_string(),
        ]
    };
    let o = agora(restore(&data)).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not empty"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&data).unwrap();
    let o = agora(restore(&data)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("restored {records} records into {}", data.display())
    );

    // The restored node, its driver back: the same answers, and the pending deliveries.
    sink.listen().await;
    node.restart().await;
    let after = reads(&node, &slugs, &vote, &closed).await;
    for ((path, a), (_, b)) in before.iter().zip(&after) {
        assert!(
            a == b,
            "{path} differs after restore:\n{}\n{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
    let id = closed_process["id"].clone();
    sink.wait_for(
        Duration::from_secs(30),
        "the pending process event",
        |reqs| reqs.iter().any(|r| r.is_process_event(&id, "completed")),
    )
    .await;
}
