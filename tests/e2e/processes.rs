//! Governance processes: start (202 + Location), read, close, completion by deadline, the
//! callback to `callback_url` and the `process_updated` event to the driver.

use serde_json::{json, Value};

use crate::harness::{assert_fields, id_text, Node, NodeConfig, Recorded, Sink, VOTE, WAIT};

fn location_prefix() -> String {
    format!("/api/internal/process/{VOTE}/")
}

/// Asserts the winner is one of the vote's options.
#[track_caller]
fn assert_winner(process: &Value) {
    let winner = &process["outcome"]["winner"];
    assert!(
        winner == "yes" || winner == "no",
        "winner must be one of the options: {process}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_vote_is_pending_at_its_location() {
    let node = Node::start("processes-start", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;

    let resp = node
        .post_in(
            "bench",
            &format!("/api/internal/process/{VOTE}"),
            &json!({"options": ["yes", "no"], "delay": 10}),
        )
        .await
        .expect_status(202);
    assert!(
        resp.body.is_empty(),
        "202 must have an empty body: {}",
        resp.describe()
    );
    let location = resp.header("location").expect("a Location header");
    let id = location
        .strip_prefix(&location_prefix())
        .unwrap_or_else(|| panic!("Location {location:?} lacks {}", location_prefix()));
    assert!(!id.is_empty() && !id.contains('/'), "{location}");

    let process = node.get(&location).await.expect_status(200).json();
    assert_eq!(id_text(&process["id"]), id, "{process}");
    assert_fields(
        &process,
        &json!({
            "name": VOTE,
            "community": "bench",
            "status": "pending",
            "url": null,
            "errors": {},
            "outcome": {},
        }),
    );

    // A second vote gets its own id.
    let other = node.start_vote("bench", 10.0, None).await;
    assert_ne!(other, location);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_vote_completes_it_with_a_winner_and_calls_back() {
    let sink = Sink::start().await;
    let node = Node::start("processes-close", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, Some(&sink.url("/cb"))).await;

    let closed = node.close(&location).await;
    assert_fields(
        &closed,
        &json!({"name": VOTE, "community": "bench", "status": "completed"}),
    );
    assert_winner(&closed);
    assert_eq!(node.get(&location).await.expect_status(200).json(), closed);

    let id = closed["id"].clone();
    let callback = sink
        .wait_for_one(WAIT, "the completion callback", |r| {
            r.is_callback(&id, "completed")
        })
        .await;
    assert_eq!(callback.method, "POST");
    assert_eq!(callback.path, "/cb");
    assert_eq!(callback.json.as_ref(), Some(&closed), "callback body");
    assert_delivery_headers(&callback);

    // Closing twice is refused, and the outcome stands.
    node.delete(&location)
        .await
        .expect_error(400, "process_completed");
    assert_eq!(node.get(&location).await.json(), closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vote_with_a_fractional_delay_completes_by_itself_and_calls_back() {
    let sink = Sink::start().await;
    let node = Node::start("processes-deadline", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;
    // 0.02 minutes = 1.2 s.
    let location = node.start_vote("bench", 0.02, Some(&sink.url("/cb"))).await;

    let completed = crate::harness::eventually(WAIT, "the vote to complete by itself", || {
        let node = &node;
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
    .await;
    assert_winner(&completed);

    let id = completed["id"].clone();
    let callback = sink
        .wait_for_one(WAIT, "the completion callback", |r| {
            r.is_callback(&id, "completed")
        })
        .await;
    assert_eq!(callback.json.as_ref(), Some(&completed));
    assert_delivery_headers(&callback);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_changes_reach_the_driver_as_process_updated_events() {
    let driver = Sink::start().await;
    let node = Node::start(
        "processes-events",
        NodeConfig::dev().driver(driver.url("/events")),
    )
    .await;
    node.community_with_randomness("bench").await;
    let location = node.start_vote("bench", 10.0, None).await;
    let closed = node.close(&location).await;
    let id = closed["id"].clone();

    let event = driver
        .wait_for_one(WAIT, "the completed process_updated event", |r| {
            r.is_process_event(&id, "completed")
        })
        .await;
    assert_eq!(event.method, "POST");
    assert_eq!(event.path, "/events");
    assert_delivery_headers(&event);
    let body = event.json.as_ref().unwrap();
    assert_fields(
        body,
        &json!({
            "community": "bench",
            "source": "randomness",
            "event_type": "process_updated",
        }),
    );
    assert_eq!(
        event.event_data(),
        Some(&closed),
        "event data = process JSON"
    );
    let timestamp = body["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("timestamp must be a string: {body}"));
    let seconds: f64 = timestamp
        .parse()
        .unwrap_or_else(|_| panic!("timestamp is not epoch seconds: {timestamp:?}"));
    assert!(
        seconds > 1.6e9,
        "timestamp {timestamp} is not a recent epoch"
    );
    assert!(body.get("initiator").is_some(), "no initiator: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_process_is_404_process_not_found() {
    let node = Node::start("processes-unknown", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;
    let missing = format!("{}987654321", location_prefix());
    node.get(&missing)
        .await
        .expect_error(404, "process_not_found");
    node.delete(&missing)
        .await
        .expect_error(404, "process_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_process_starts_are_client_errors_and_start_nothing() {
    let driver = Sink::start().await;
    let node = Node::start(
        "processes-bad-start",
        NodeConfig::dev().driver(driver.url("/events")),
    )
    .await;
    node.community_with_randomness("bench").await;
    node.create_community("bare").await;
    let start = format!("/api/internal/process/{VOTE}");
    let body = json!({"options": ["yes", "no"], "delay": 10});

    // Missing required input: Metagov answers 500 here; Agora must answer 400.
    let resp = node.post_in("bench", &start, &json!({"delay": 10})).await;
    assert_eq!(resp.status, 400, "{}", resp.describe());
    resp.error_object();
    // `delay` is required, as in Metagov's schema (`"required": ["options", "delay"]`).
    let error = node
        .post_in("bench", &start, &json!({"options": ["yes", "no"]}))
        .await
        .expect_error(400, "schema_violation");
    assert_eq!(error["field"], json!("delay"), "{error}");
    // Wrong type for an input.
    node.post_in("bench", &start, &json!({"options": "yes", "delay": 10}))
        .await
        .expect_status(400)
        .error_object();
    node.post(&start, &body)
        .await
        .expect_error(400, "missing_header");
    node.post_in("bare", &start, &body)
        .await
        .expect_error(400, "plugin_not_enabled");
    node.post_in("nobody", &start, &body)
        .await
        .expect_error(400, "community_not_found");
    node.post_in(
        "bench",
        "/api/internal/process/randomness.no-such-process",
        &body,
    )
    .await
    .expect_client_error();

    // None of it started a process: by the time a good vote started afterwards has reached the
    // driver, no event about any other process has.
    let location = node.start_vote("bench", 10.0, None).await;
    let good = node.get(&location).await.expect_status(200).json();
    node.close(&location).await;
    let received = driver
        .wait_for(WAIT, "the good vote's completion event", |reqs| {
            reqs.iter()
                .any(|r| r.is_process_event(&good["id"], "completed"))
        })
        .await;
    let strangers: Vec<&Recorded> = received
        .iter()
        .filter(|r| r.event_data().is_some_and(|d| d["id"] != good["id"]))
        .collect();
    assert!(
        strangers.is_empty(),
        "refused starts produced processes: {strangers:?}"
    );
}

/// Every delivery is JSON with an idempotency key.
#[track_caller]
pub fn assert_delivery_headers(delivery: &Recorded) {
    let content_type = delivery.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?}"
    );
    assert!(
        delivery.idempotency_key().is_some_and(|k| !k.is_empty()),
        "no Idempotency-Key: {:?}",
        delivery.headers
    );
}
