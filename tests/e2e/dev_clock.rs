//! The manual clock of `agora serve --dev --manual-clock <start ms>`: a vote's deadline passes
//! the moment a test moves the clock past it, with no real waiting; the clock route exists only
//! on such a node and only moves forward; and the flag is refused without `--dev`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{
    eventually, free_port, rfc3339, run_to_exit, Node, NodeConfig, Recorded, Sink, WAIT,
};

/// 2030-01-01T00:00:00Z: far from the real clock, so nothing here can pass by real time.
const START: u64 = 1_893_456_000_000;
const CLOCK: &str = "/api/internal/dev/clock";
const TOWN: &str = "town";

fn manual_node() -> NodeConfig {
    NodeConfig::dev()
        .arg("--manual-clock")
        .arg(&START.to_string())
}

async fn clock_now(node: &Node) -> u64 {
    let now = node.get(CLOCK).await.expect_status(200).json();
    now["now_ms"].as_u64().expect("now_ms")
}

async fn advance(node: &Node, ms: u64) -> u64 {
    let moved = node
        .post(CLOCK, &json!({ "advance_ms": ms }))
        .await
        .expect_status(200)
        .json();
    moved["now_ms"].as_u64().expect("now_ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_close_when_the_manual_clock_passes_their_deadline() {
    let sink = Sink::start().await;
    let node = Node::start("dev-clock-vote", manual_node().driver(sink.url("/events"))).await;
    node.create_community(TOWN).await;
    assert_eq!(clock_now(&node).await, START);

    // A vote closing an hour from now, by the node's clock.
    let closing = START + 3_600_000;
    let path = "/api/internal/process/vote.count";
    let params = json!({
        "closing_at": rfc3339(closing),
        "target": 2,
        "callback_url": sink.url("/cb"),
    });
    let location = node
        .post_in(TOWN, path, &params)
        .await
        .expect_status(202)
        .header("location")
        .expect("a Location header");
    for voter in ["alice", "bob"] {
        node.post(
            &format!("{location}/ballots"),
            &json!({"voter": voter, "choice": "accept"}),
        )
        .await
        .expect_status(200);
    }
    let status = |p: &Value| p["status"].as_str().unwrap_or_default().to_string();

    // A second before the deadline (by the clock) the vote is open, and takes ballots.
    assert_eq!(advance(&node, 3_599_000).await, closing - 1_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let open = node.get(&location).await.expect_status(200).json();
    assert_eq!(status(&open), "pending", "{open}");
    node.post(
        &format!("{location}/ballots"),
        &json!({"voter": "carol", "choice": "accept"}),
    )
    .await
    .expect_status(200);

    // Past it: the close runs at once, stamped with the clock's time, not the real one.
    let moved = Instant::now();
    let now = advance(&node, 1_100).await;
    let completed = eventually(WAIT, "the vote to close by its deadline", || {
        let location = location.clone();
        let node = &node;
        async move {
            let p = node.get(&location).await.expect_status(200).json();
            if p["status"] == "completed" {
                Ok(p)
            } else {
                Err(p.to_string())
            }
        }
    })
    .await;
    assert!(
        moved.elapsed() < Duration::from_secs(5),
        "closing took {:?} of real time",
        moved.elapsed()
    );
    let outcome = &completed["outcome"];
    assert_eq!(outcome["close_reason"], "deadline", "{completed}");
    assert_eq!(outcome["ballots"], 3, "{completed}");
    assert_eq!(outcome["passed"], true, "{completed}");
    let closed_at: f64 = match &outcome["closed_at"] {
        Value::String(s) => s.parse().expect("epoch seconds"),
        other => other.as_f64().expect("epoch seconds"),
    };
    assert!(
        (closed_at - now as f64 / 1000.0).abs() < 0.0015,
        "closed_at {closed_at} is not the manual clock's {now}"
    );
    // Closed means closed: a ballot now is refused, and the completion called back once.
    node.post(
        &format!("{location}/ballots"),
        &json!({"voter": "dave", "choice": "accept"}),
    )
    .await
    .expect_error(409, "vote_closed");
    let id = completed["id"].clone();
    sink.wait_for(WAIT, "the completion callback", |reqs: &[Recorded]| {
        reqs.iter().any(|r| r.is_callback(&id, "completed"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_clock_route_exists_only_with_a_manual_clock_and_never_goes_back() {
    let real = Node::start("dev-clock-real", NodeConfig::dev()).await;
    real.get(CLOCK).await.expect_error(404, "route_not_found");
    real.post(CLOCK, &json!({"advance_ms": 1}))
        .await
        .expect_error(404, "route_not_found");

    let node = Node::start("dev-clock-refusals", manual_node()).await;
    node.post(CLOCK, &json!({"set_ms": START - 1}))
        .await
        .expect_error(400, "clock_backwards");
    for bad in [
        json!({}),
        json!({"advance_ms": -5}),
        json!({"advance_ms": 1.5}),
        json!({"advance_ms": "10"}),
        json!({"advance_ms": 5, "set_ms": START + 5}),
        json!({"advance": 5}),
        json!([1]),
    ] {
        let resp = node.post(CLOCK, &bad).await;
        let error = resp.expect_client_error();
        assert_eq!(resp.status, 400, "{bad}: {}", resp.describe());
        assert_eq!(
            error["code"],
            "invalid_request",
            "{bad}: {}",
            resp.describe()
        );
    }
    node.post_raw(None, CLOCK, b"{not json".to_vec())
        .await
        .expect_error(400, "invalid_json");
    assert_eq!(
        clock_now(&node).await,
        START,
        "a refused move changed the clock"
    );
    let set = node
        .post(CLOCK, &json!({"set_ms": START + 10}))
        .await
        .expect_status(200)
        .json();
    assert_eq!(set["now_ms"], START + 10);
    assert_eq!(advance(&node, 0).await, START + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_clock_without_dev_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let exit = run_to_exit(
        &[
            "serve".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{}", free_port()),
            "--data-dir".to_string(),
            data.path().join("data").display().to_string(),
            "--manual-clock".to_string(),
            "1000".to_string(),
        ],
        &[("AGORA_DRIVER_TOKEN", "a-token")],
        Duration::from_secs(10),
    )
    .await;
    assert!(!exit.status.success(), "exited {}", exit.status);
    assert!(
        exit.stderr.contains("--manual-clock"),
        "the refusal must say why: {}",
        exit.stderr
    );
}
