//! Who is acting: `X-Agora-Actor` names the agent a driver acts for. A valid one reaches the
//! audit log beside the caller; one that is too long or not UTF-8 is refused before anything
//! changes.

use serde_json::json;

use crate::harness::{randomness_config, Node, NodeConfig};

/// The audit log's entries for `community`, oldest first.
async fn audit_of(node: &Node, community: &str) -> Vec<serde_json::Value> {
    let log = node
        .get(&format!("/api/v1/plugin-audit-log?community={community}"))
        .await
        .expect_status(200)
        .json();
    log["entries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_the_agent_a_driver_acts_for() {
    let node = Node::start("principal-audit", NodeConfig::with_token("t0ken")).await;
    node.create_community("town").await;
    node.send(
        node.request(reqwest::Method::POST, "/api/internal/plugin/randomness")
            .header("X-Metagov-Community", "town")
            .header("X-Agora-Actor", "ana@town")
            .json(&randomness_config()),
    )
    .await
    .expect_status(201);
    // Without the header the driver acts alone.
    node.post(
        "/api/v1/communities/town/plugins/randomness/disable",
        &json!({}),
    )
    .await
    .expect_status(200);

    let entries = audit_of(&node, "town").await;
    let seen: Vec<_> = entries
        .iter()
        .map(|e| (e["action"].clone(), e["who"].clone(), e["agent"].clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (json!("enable"), json!("driver"), json!("ana@town")),
            (json!("disable"), json!("driver"), json!(null)),
        ],
        "{entries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_id_over_200_bytes_or_not_utf8_is_400_invalid_header() {
    let node = Node::start("principal-bad", NodeConfig::dev()).await;
    node.create_community("town").await;
    let enable = |agent: reqwest::header::HeaderValue| {
        node.request(reqwest::Method::POST, "/api/internal/plugin/randomness")
            .header("X-Metagov-Community", "town")
            .header("X-Agora-Actor", agent)
            .json(&randomness_config())
    };
    let too_long = "é".repeat(100) + "x"; // 201 bytes
    for agent in [
        reqwest::header::HeaderValue::from_str(&too_long).expect("a header value"),
        reqwest::header::HeaderValue::from_bytes(b"an\xffa").expect("a header value"),
    ] {
        let err = node
            .send(enable(agent))
            .await
            .expect_error(400, "invalid_header");
        assert_eq!(err["field"], "X-Agora-Actor", "{err}");
    }
    // Nothing changed: the plugin is not enabled, and nothing was audited.
    assert_eq!(node.community("town").await["plugins"], json!([]));
    assert!(audit_of(&node, "town").await.is_empty());

    // 200 bytes of UTF-8 is an agent id.
    let longest = "é".repeat(100);
    node.send(enable(
        reqwest::header::HeaderValue::from_str(&longest).expect("a header value"),
    ))
    .await
    .expect_status(201);
    let entries = audit_of(&node, "town").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["agent"], json!(longest));
    assert_eq!(entries[0]["who"], "dev");
}
