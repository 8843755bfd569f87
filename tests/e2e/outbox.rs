//! The outbox: callbacks and driver events are delivered at least once, retried with backoff
//! under one idempotency key, kept across a crash while the driver is down, signed when a
//! secret is set, and sent to a community's own driver URL when it has one.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{eventually, randomness_config, Node, NodeConfig, Recorded, Sink, WAIT};

/// Retries back off up to 30 s; after a short outage the next try comes within a few seconds.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_with_backoff_under_one_idempotency_key() {
    let sink = Sink::start().await;
    sink.set_status(503);
    let node = Node::start(
        "outbox-retry",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, Some(&sink.url("/cb"))).await;
    let closed = node.close(&location).await;
    let id = closed["id"].clone();
    let is_event = |r: &Recorded| r.is_process_event(&id, "completed");
    let is_callback = |r: &Recorded| r.is_callback(&id, "completed");

    // The receiver refuses everything: the first delivery to each path is tried again and
    // again (later ones may queue behind it to keep their order).
    let received = sink
        .wait_for(
            DELIVERY_WAIT,
            "four attempts of a delivery per path",
            |reqs| {
                ["/events", "/cb"]
                    .iter()
                    .all(|path| most_attempts(reqs, path).len() >= 4)
            },
        )
        .await;
    let mut head_keys = Vec::new();
    for path in ["/events", "/cb"] {
        let tries = most_attempts(&received, path);
        let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].at - w[0].at).collect();
        for gap in &gaps {
            assert!(
                *gap >= Duration::from_millis(100),
                "{path}: retries hammer the receiver: {gaps:?}"
            );
        }
        assert!(
            gaps[2] >= gaps[0],
            "{path}: the backoff does not grow: {gaps:?}"
        );
        head_keys.push(tries[0].idempotency_key().unwrap_or_default().to_string());
    }
    assert_ne!(
        head_keys[0], head_keys[1],
        "two deliveries share one Idempotency-Key"
    );

    // The receiver recovers: everything lands, the completion included.
    sink.set_status(200);
    let received = sink
        .wait_for(DELIVERY_WAIT, "the completion event and callback", |reqs| {
            reqs.iter().any(|r| is_event(r) && r.answered == 200)
                && reqs.iter().any(|r| is_callback(r) && r.answered == 200)
        })
        .await;
    let accepted = received
        .iter()
        .find(|r| is_callback(r) && r.answered == 200)
        .unwrap();
    assert_eq!(accepted.json.as_ref(), Some(&closed));
    for key in &head_keys {
        assert!(
            received
                .iter()
                .any(|r| r.idempotency_key() == Some(key.as_str()) && r.answered == 200),
            "the retried delivery {key} never landed"
        );
    }
    assert_one_key_one_body(&received);

    // Once accepted, a delivery stops: the outbox drains and no attempt follows.
    wait_for_empty_outbox(&node).await;
    let settled = sink.requests().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after: Vec<Recorded> = sink.requests().split_off(settled);
    assert!(
        after.is_empty(),
        "deliveries went on after being accepted: {after:?}"
    );
}

/// The attempts of the delivery to `path` that was tried most often, in order.
fn most_attempts<'a>(requests: &'a [Recorded], path: &str) -> Vec<&'a Recorded> {
    let mut best: Vec<&Recorded> = Vec::new();
    for request in requests.iter().filter(|r| r.path == path) {
        let key = request.idempotency_key();
        let same: Vec<&Recorded> = requests
            .iter()
            .filter(|r| r.path == path && r.idempotency_key() == key)
            .collect();
        if same.len() > best.len() {
            best = same;
        }
    }
    best
}

/// Every attempt under one Idempotency-Key carries the same body, and every delivery has a key.
#[track_caller]
fn assert_one_key_one_body(requests: &[Recorded]) {
    for request in requests {
        let key = request
            .idempotency_key()
            .unwrap_or_else(|| panic!("a delivery without Idempotency-Key to {}", request.path));
        for other in requests.iter().filter(|r| r.idempotency_key() == Some(key)) {
            assert_eq!(
                other.body, request.body,
                "the body changed between attempts of {key}"
            );
            assert_eq!(other.path, request.path, "one key, two destinations");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_that_is_down_gets_pending_events_once_up_even_across_a_restart() {
    let mut driver = Sink::reserve();
    let mut node = Node::start(
        "outbox-down",
        NodeConfig::dev().driver(driver.url("/events")),
    )
    .await;
    node.community_with_randomness("bench").await;
    let location = node
        .start_vote("bench", 10.0, Some(&driver.url("/cb")))
        .await;
    let closed = node.close(&location).await;
    let id = closed["id"].clone();

    // The deliveries are stuck: nothing listens on the driver's port.
    eventually(WAIT, "deliveries to wait in the outbox", || {
        let node = &node;
        async move {
            match node.metric("agora_outbox_depth").await {
                Some(depth) if depth >= 2.0 => Ok(()),
                other => Err(format!("agora_outbox_depth = {other:?}")),
            }
        }
    })
    .await;

    // The node crashes with them pending, and comes back.
    node.kill9().await;
    node.restart().await;

    // A change made after the restart queues behind them.
    let second = node.start_vote("bench", 10.0, None).await;
    let second = node.close(&second).await;
    let second_id = second["id"].clone();

    // The driver comes up: everything arrives.
    driver.listen().await;
    let received = driver
        .wait_for(DELIVERY_WAIT, "the pending events and callback", |reqs| {
            reqs.iter().any(|r| r.is_process_event(&id, "completed"))
                && reqs.iter().any(|r| r.is_callback(&id, "completed"))
                && reqs
                    .iter()
                    .any(|r| r.is_process_event(&second_id, "completed"))
        })
        .await;
    let event = received
        .iter()
        .find(|r| r.is_process_event(&id, "completed"))
        .unwrap();
    assert_eq!(event.event_data(), Some(&closed));
    assert_eq!(event.path, "/events");

    wait_for_empty_outbox(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_delivery_keeps_its_idempotency_key_across_a_node_crash() {
    let sink = Sink::start().await;
    sink.set_status(503);
    let mut node = Node::start(
        "outbox-key-restart",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, None).await;
    let closed = node.close(&location).await;
    let id = closed["id"].clone();

    // A delivery is refused twice, then the node dies with it pending.
    let before = sink
        .wait_for(
            DELIVERY_WAIT,
            "two refused attempts of one delivery",
            |reqs| most_attempts(reqs, "/events").len() >= 2,
        )
        .await;
    let key = most_attempts(&before, "/events")[0]
        .idempotency_key()
        .unwrap_or_default()
        .to_string();
    node.kill9().await;
    sink.set_status(200);
    node.restart().await;

    // After the restart the same delivery lands under the same key, and so does the rest.
    let after = sink
        .wait_for(
            DELIVERY_WAIT,
            "the delivery to land after restart",
            |reqs| {
                reqs.iter()
                    .any(|r| r.idempotency_key() == Some(key.as_str()) && r.answered == 200)
                    && reqs
                        .iter()
                        .any(|r| r.is_process_event(&id, "completed") && r.answered == 200)
            },
        )
        .await;
    assert_one_key_one_body(&after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_with_deliveries_pending_and_they_resume_after_restart() {
    let mut driver = Sink::reserve();
    let mut node = Node::start(
        "outbox-term",
        NodeConfig::dev().driver(driver.url("/events")),
    )
    .await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, None).await;
    let id = node.close(&location).await["id"].clone();
    eventually(WAIT, "a delivery to wait in the outbox", || {
        let node = &node;
        async move {
            match node.metric("agora_outbox_depth").await {
                Some(depth) if depth >= 1.0 => Ok(()),
                other => Err(format!("agora_outbox_depth = {other:?}")),
            }
        }
    })
    .await;

    // A driver that is down must not hold the shutdown hostage.
    let status = node.term().await;
    assert!(status.success(), "SIGTERM must exit 0, got {status}");

    driver.listen().await;
    node.restart().await;
    driver
        .wait_for(DELIVERY_WAIT, "the pending event after restart", |reqs| {
            reqs.iter().any(|r| r.is_process_event(&id, "completed"))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_carry_a_verifiable_hmac_signature() {
    const SECRET: &str = "e2e-signing-secret";
    let sink = Sink::start().await;
    let node = Node::start(
        "outbox-signature",
        NodeConfig::dev()
            .driver(sink.url("/events"))
            .signing_secret(SECRET),
    )
    .await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, Some(&sink.url("/cb"))).await;
    let closed = node.close(&location).await;
    let id = closed["id"].clone();

    let received = sink
        .wait_for(WAIT, "the signed event and callback", |reqs| {
            reqs.iter().any(|r| r.is_process_event(&id, "completed"))
                && reqs.iter().any(|r| r.is_callback(&id, "completed"))
        })
        .await;
    assert!(!received.is_empty());
    for delivery in &received {
        let signature = delivery
            .header("x-agora-signature")
            .unwrap_or_else(|| panic!("unsigned delivery to {}", delivery.path));
        let expected = format!("sha256={}", hmac_hex(SECRET, &delivery.body));
        assert_eq!(
            signature.to_ascii_lowercase(),
            expected,
            "bad signature on {} {}",
            delivery.path,
            String::from_utf8_lossy(&delivery.body)
        );
        assert_ne!(
            format!("sha256={}", hmac_hex("another-secret", &delivery.body)),
            expected
        );
    }
}

/// Polls `/metrics` until `agora_outbox_depth` is 0.
async fn wait_for_empty_outbox(node: &Node) {
    eventually(WAIT, "the outbox to drain", || async move {
        match node.metric("agora_outbox_depth").await {
            Some(depth) if depth <= 0.0 => Ok(()),
            other => Err(format!("agora_outbox_depth = {other:?}")),
        }
    })
    .await;
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn community_driver_url_overrides_the_node_driver_for_its_events() {
    let node_driver = Sink::start().await;
    let own_driver = Sink::start().await;
    let node = Node::start(
        "outbox-override",
        NodeConfig::dev().driver(node_driver.url("/events")),
    )
    .await;

    node.post(
        "/api/internal/community",
        &json!({
            "slug": "routed",
            "readable_name": "Routed",
            "driver_url": own_driver.url("/own-events"),
        }),
    )
    .await
    .expect_status(201);
    node.enable_randomness("routed").await;
    node.community_with_randomness("plain").await;

    let routed = close_new_vote(&node, "routed").await;
    let plain = close_new_vote(&node, "plain").await;
    own_driver
        .wait_for(WAIT, "the routed community's event", |reqs| {
            reqs.iter()
                .any(|r| r.is_process_event(&routed, "completed"))
        })
        .await;
    node_driver
        .wait_for(WAIT, "the plain community's event", |reqs| {
            reqs.iter().any(|r| r.is_process_event(&plain, "completed"))
        })
        .await;
    assert_only_community(&own_driver, "routed");
    assert_only_community(&node_driver, "plain");
    assert!(own_driver
        .requests()
        .iter()
        .all(|r| r.path == "/own-events"));

    // PUT can set the override later; the plugin list stays the whole truth.
    node.put(
        "/api/internal/community/plain",
        &json!({
            "slug": "plain",
            "readable_name": "Plain",
            "plugins": [{"name": "randomness", "config": randomness_config()}],
            "driver_url": own_driver.url("/own-events"),
        }),
    )
    .await
    .expect_status(200);
    let moved = close_new_vote(&node, "plain").await;
    own_driver
        .wait_for(WAIT, "the re-routed community's event", |reqs| {
            reqs.iter().any(|r| r.is_process_event(&moved, "completed"))
        })
        .await;
    assert!(
        !node_driver
            .requests()
            .iter()
            .any(|r| r.is_process_event(&moved, "completed")),
        "the event also went to the node's driver"
    );
}

/// Starts and closes a vote in `slug`; answers its id.
async fn close_new_vote(node: &Node, slug: &str) -> Value {
    let location = node.start_vote(slug, 10.0, None).await;
    node.close(&location).await["id"].clone()
}

#[track_caller]
fn assert_only_community(sink: &Sink, slug: &str) {
    for request in sink.requests() {
        let community = request.json.as_ref().map(|j| j["community"].clone());
        assert_eq!(
            community,
            Some(json!(slug)),
            "an event reached the wrong driver: {}",
            String::from_utf8_lossy(&request.body)
        );
    }
}
