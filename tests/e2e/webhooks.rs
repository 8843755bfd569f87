//! Webhooks: the public `/api/hooks/<community>/<plugin>` route a platform posts to.

use serde_json::json;

use crate::harness::{Node, NodeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_to_an_enabled_plugin_is_accepted_with_an_empty_body() {
    let node = Node::start("webhooks-accept", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, None).await;

    let resp = node
        .post(
            "/api/hooks/bench/randomness",
            &json!({"event": "ping", "n": 1}),
        )
        .await
        .expect_status(200);
    assert!(resp.body.is_empty(), "{}", resp.describe());

    // A second delivery is fine too, and the pending vote is still readable afterwards.
    node.post(
        "/api/hooks/bench/randomness",
        &json!({"event": "ping", "n": 2}),
    )
    .await
    .expect_status(200);
    let process = node.get(&location).await.expect_status(200).json();
    assert!(
        process["status"] == "pending" || process["status"] == "completed",
        "{process}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_to_an_unknown_community_or_a_disabled_plugin_is_404() {
    let node = Node::start("webhooks-404", NodeConfig::dev()).await;
    node.create_community("bare").await;
    let instance = node.community_with_randomness("bench").await;

    for path in [
        "/api/hooks/nobody/randomness",
        "/api/hooks/bare/randomness",
        "/api/hooks/bench/no-such-plugin",
    ] {
        let resp = node.post(path, &json!({"event": "ping"})).await;
        assert_eq!(resp.status, 404, "{}", resp.describe());
        resp.error_object();
    }

    // Disabling the plugin closes its hook.
    node.delete(&format!(
        "/api/internal/plugin/randomness/{}",
        instance["id"]
    ))
    .await
    .expect_status(204);
    let resp = node
        .post("/api/hooks/bench/randomness", &json!({"event": "ping"}))
        .await;
    assert_eq!(resp.status, 404, "{}", resp.describe());
    resp.error_object();

    // Refused hooks created nothing.
    node.get("/api/internal/community/nobody")
        .await
        .expect_error(404, "community_not_found");
    assert_eq!(node.community("bare").await["plugins"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_bodies_that_are_not_json_never_cause_5xx() {
    let node = Node::start("webhooks-odd-bodies", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;

    for (content_type, body) in [
        ("application/x-www-form-urlencoded", b"a=1&b=2".to_vec()),
        ("application/json", b"{not json".to_vec()),
        ("text/plain", Vec::new()),
    ] {
        let resp = node
            .send(
                node.request(reqwest::Method::POST, "/api/hooks/bench/randomness")
                    .header("Content-Type", content_type)
                    .body(body),
            )
            .await;
        assert!(resp.status < 500, "{}", resp.describe());
        if resp.status >= 400 {
            resp.error_object();
        }
    }
    node.get("/healthz").await.expect_status(200);
}

/// Every pending process of an instance hears each of its webhooks (issue 14: the workload's
/// second run slowed down by one pending vote). A process whose plugin ignores the webhook
/// writes nothing: no commit, no change of `updated`, the process still pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_a_pending_process_ignores_writes_nothing() {
    let node = Node::start("webhooks-quiet", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 600.0, None).await;
    let before = node.get(&location).await.expect_status(200).json();
    assert_eq!(before["status"], "pending", "{before}");
    // Let the start's own follow-up writes (driver event deliveries) settle first.
    let mut writes = node.metric("agora_storage_writes_total").await;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = node.metric("agora_storage_writes_total").await;
        if now == writes {
            break;
        }
        writes = now;
    }
    for n in 0..20 {
        node.post(
            "/api/hooks/bench/randomness",
            &json!({"event": "ping", "n": n}),
        )
        .await
        .expect_status(200);
    }
    assert_eq!(
        node.metric("agora_storage_writes_total").await,
        writes,
        "ignored webhooks wrote to storage"
    );
    let after = node.get(&location).await.expect_status(200).json();
    assert_eq!(after, before, "the process changed");
}
