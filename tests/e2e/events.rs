//! `GET /api/internal/events`: the node's driver events as Server-Sent Events, filtered by
//! community, behind the driver token, and ended cleanly when the node drains.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{http_client, Node, NodeConfig};

/// One open event stream, parsed as it arrives.
struct Subscription {
    resp: reqwest::Response,
    buf: String,
}

impl Subscription {
    async fn open(node: &Node, query: &str) -> Subscription {
        let resp = node
            .request(
                reqwest::Method::GET,
                &format!("/api/internal/events{query}"),
            )
            .send()
            .await
            .expect("subscribe");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Subscription {
            resp,
            buf: String::new(),
        }
    }

    /// The next `(event, data)`, skipping keep-alive comments; `None` when the stream ends or
    /// nothing arrives within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((event, serde_json::from_str(&data).expect("JSON data")));
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_live_filtered_by_community() {
    // No driver URL at all: the stream still carries every event.
    let node = Node::start("events-stream", NodeConfig::dev()).await;
    node.community_with_randomness("alpha").await;
    node.community_with_randomness("beta").await;
    let mut all = Subscription::open(&node, "").await;
    let mut alpha = Subscription::open(&node, "?community=alpha").await;

    let a = node.start_vote("alpha", 10.0, None).await;
    let b = node.start_vote("beta", 10.0, None).await;
    node.close(&b).await;

    let mut seen = Vec::new();
    while let Some((event, data)) = all.next(Duration::from_secs(3)).await {
        assert_eq!(event, data["event_type"], "{data}");
        seen.push(data);
        if seen.len() == 3 {
            break;
        }
    }
    let communities: Vec<&str> = seen
        .iter()
        .map(|d| d["community"].as_str().unwrap())
        .collect();
    assert_eq!(communities, ["alpha", "beta", "beta"], "{seen:?}");
    assert!(seen.iter().all(|d| d["event_type"] == "process_updated"
        && d["source"] == "randomness"
        && d["timestamp"].is_string()));
    assert_eq!(seen[2]["data"]["status"], "completed", "{:?}", seen[2]);
    assert!(a.ends_with(&crate::harness::id_text(&seen[0]["data"]["id"])));

    let (_, only) = alpha
        .next(Duration::from_secs(3))
        .await
        .expect("alpha's event");
    assert_eq!(only["community"], "alpha");
    assert!(
        alpha.next(Duration::from_millis(500)).await.is_none(),
        "beta's events are filtered out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_need_the_token_and_a_valid_filter() {
    let node = Node::start("events-auth", NodeConfig::with_token("tok")).await;
    let anonymous = http_client()
        .get(node.url("/api/internal/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    node.get("/api/internal/events?community=..%2Fx")
        .await
        .expect_error(400, "invalid_slug");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_does_not_hold_up_shutdown() {
    let mut node = Node::start("events-term", NodeConfig::dev()).await;
    let mut sub = Subscription::open(&node, "").await;
    let status = node.term().await;
    assert!(status.success(), "{status:?}");
    assert!(sub.next(Duration::from_secs(2)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ballots_announce_themselves_on_the_stream_coalesced_per_vote() {
    let node = Node::start("events-ballots", NodeConfig::dev()).await;
    node.create_community("poll").await;
    let mut sub = Subscription::open(&node, "?community=poll").await;
    let body = serde_json::json!({"options": ["yes", "no"],
        "closing_at": crate::harness::rfc3339(crate::harness::now_ms() + 3_600_000)});
    let location = node
        .post_in("poll", "/api/internal/process/vote.choice", &body)
        .await
        .expect_status(202)
        .header("location")
        .unwrap();
    let id: u64 = location.rsplit('/').next().unwrap().parse().unwrap();
    let cast = |voter: String| {
        let location = location.clone();
        let node = &node;
        async move {
            node.post(
                &format!("{location}/ballots"),
                &serde_json::json!({"voter": voter, "choice": ["yes"]}),
            )
            .await
            .expect_status(200);
        }
    };

    // The first ballot of a quiet vote is announced at once: the vote and its count, no
    // voter, no choice.
    cast("ana".into()).await;
    let first = loop {
        let (event, data) = sub.next(Duration::from_secs(5)).await.expect("an event");
        if event == "ballots_changed" {
            break data;
        }
    };
    assert_eq!(first["source"], "vote", "{first}");
    assert_eq!(first["community"], "poll", "{first}");
    assert_eq!(first["data"]["id"], id, "{first}");
    assert_eq!(first["data"]["name"], "vote.choice", "{first}");
    assert_eq!(first["data"]["ballots"], 1, "{first}");
    assert!(!first.to_string().contains("ana"), "{first}");

    // A burst is coalesced: fewer announcements than ballots, and the last one's count is
    // no more than the ballots cast.
    for i in 0..40 {
        cast(format!("voter{i}")).await;
    }
    let mut announced = Vec::new();
    while let Some((event, data)) = sub.next(Duration::from_millis(800)).await {
        if event == "ballots_changed" {
            announced.push(data["data"]["ballots"].as_u64().unwrap());
        }
    }
    assert!(
        announced.len() < 40,
        "40 ballots, {} announcements",
        announced.len()
    );
    assert!(announced.windows(2).all(|w| w[0] < w[1]), "{announced:?}");
    // After a quiet interval, the next ballot is announced at once again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cast("late".into()).await;
    let (event, data) = sub.next(Duration::from_secs(5)).await.expect("an event");
    assert_eq!(event, "ballots_changed");
    assert_eq!(data["data"]["ballots"], 42, "{data}");
}
