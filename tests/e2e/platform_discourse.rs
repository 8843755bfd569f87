//! End-to-end tests of the `discourse` plugin: a real node reaching the local Discourse stand-in
//! through Agora's HTTP API (topics and posts, refusals, retries, the breaker and health), the
//! `poll` process following a Discourse poll to its end (closed by the driver, by its deadline,
//! or on the forum), and webhooks signed like Discourse signs them arriving at `/api/hooks/...`
//! and leaving as driver events.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{eventually, Node, NodeConfig, Recorded, Resp, Sink, WAIT};
use crate::standins::discourse::{signature, DiscourseStandin};

const KEY: &str = "d1scourse-e2e-api-key";
const SECRET: &str = "webhook secret shared with the forum";
const CREATE_TOPIC: &str = "/api/internal/action/discourse.create-topic";
const CREATE_POST: &str = "/api/internal/action/discourse.create-post";
const POLL: &str = "/api/internal/process/discourse.poll";

fn settings(forum: &DiscourseStandin) -> Value {
    json!({
        "api_url": forum.url(),
        "api_key": KEY,
        "api_username": "system",
        "webhook_secret": SECRET,
    })
}

/// Creates `slug` and enables `discourse` there with `settings`.
async fn community_with_discourse(node: &Node, slug: &str, settings: &Value) -> Value {
    node.create_community(slug).await;
    node.post_in(slug, "/api/internal/plugin/discourse", settings)
        .await
        .expect_status(201)
        .json()
}

/// A node whose breaker and health probes act within a test's patience.
fn fast_config() -> NodeConfig {
    NodeConfig::dev()
        .arg("--breaker-threshold")
        .arg("3")
        .arg("--breaker-cooldown-ms")
        .arg("800")
        .arg("--health-interval-ms")
        .arg("300")
}

/// Posts `payload` as Discourse delivers event `event` (of type `event_type`) from `instance`,
/// signed with `secret` (unsigned when `None`).
async fn deliver(
    node: &Node,
    path: &str,
    instance: &str,
    event: (&str, &str),
    payload: &Value,
    secret: Option<&str>,
) -> Resp {
    let id = crate::harness::unique_id("42");
    deliver_with_id(node, path, instance, event, payload, secret, &id).await
}

/// [`deliver`] with this `X-Discourse-Event-Id` (the same id again is a redelivery).
async fn deliver_with_id(
    node: &Node,
    path: &str,
    instance: &str,
    (event_type, event): (&str, &str),
    payload: &Value,
    secret: Option<&str>,
    event_id: &str,
) -> Resp {
    let body = payload.to_string().into_bytes();
    let mut request = node
        .anonymous(reqwest::Method::POST, path)
        .header("Content-Type", "application/json")
        .header("User-Agent", "Discourse/3.2.0")
        .header("X-Discourse-Instance", instance)
        .header("X-Discourse-Event-Id", event_id)
        .header("X-Discourse-Event-Type", event_type)
        .header("X-Discourse-Event", event);
    if let Some(secret) = secret {
        request = request.header("X-Discourse-Event-Signature", signature(secret, &body));
    }
    node.send(request.body(body)).await
}

fn discourse_events(requests: &[Recorded]) -> Vec<Value> {
    requests
        .iter()
        .filter_map(|r| r.json.clone())
        .filter(|j| j["source"] == "discourse")
        .collect()
}

async fn health(node: &Node, slug: &str) -> Value {
    node.get(&format!(
        "/api/v1/communities/{slug}/plugins/discourse/health"
    ))
    .await
    .expect_status(200)
    .json()
}

/// Starts a poll in `slug`; answers its Location.
async fn start_poll(node: &Node, slug: &str, params: &Value) -> String {
    let resp = node.post_in(slug, POLL, params).await.expect_status(202);
    resp.header("location")
        .unwrap_or_else(|| panic!("{}: no Location", resp.describe()))
}

/// Waits until the process at `location` satisfies `pred`; answers it.
async fn wait_process(
    node: &Node,
    location: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    eventually(WAIT, what, || async {
        let p = node.get(location).await.expect_status(200).json();
        if pred(&p) {
            Ok(p)
        } else {
            Err(p.to_string())
        }
    })
    .await
}

fn post_id_of(process: &Value) -> u64 {
    process["outcome"]["poll"]["post_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no poll post_id in {process}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topic_and_create_post_reach_discourse_and_answer_ids_and_urls() {
    let forum = DiscourseStandin::start(KEY).await;
    let node = Node::start("discourse-actions", NodeConfig::dev()).await;
    let instance = community_with_discourse(&node, "forum", &settings(&forum)).await;
    assert!(
        !instance.to_string().contains(KEY) && !instance.to_string().contains(SECRET),
        "secrets are masked: {instance}"
    );

    let topic = node
        .post_in(
            "forum",
            CREATE_TOPIC,
            &json!({"parameters": {
                "title": "Adopting the code of conduct",
                "raw": "The working group proposes adopting the code of conduct.",
                "category": 5,
            }}),
        )
        .await
        .expect_status(200)
        .json();
    let topic_id = topic["topic_id"].as_u64().expect("a topic id");
    let first_post = forum.posts_in(topic_id);
    assert_eq!(first_post.len(), 1);
    assert_eq!(
        topic,
        json!({
            "post_id": first_post[0],
            "topic_id": topic_id,
            "url": format!("{}/t/adopting-the-code-of-conduct/{topic_id}", forum.url()),
        })
    );
    assert_eq!(forum.topic(topic_id).unwrap()["category_id"], 5);

    let sent = forum.requests_to("POST", "/posts.json");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].header("api-key"), Some(KEY));
    assert_eq!(sent[0].header("api-username"), Some("system"));
    assert!(sent[0]
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json")));
    assert_eq!(
        sent[0].json,
        Some(json!({
            "title": "Adopting the code of conduct",
            "raw": "The working group proposes adopting the code of conduct.",
            "category": 5,
        }))
    );

    let reply = node
        .post_in(
            "forum",
            CREATE_POST,
            &json!({"parameters": {"topic_id": topic_id, "raw": "I second this proposal, wholeheartedly."}}),
        )
        .await
        .expect_status(200)
        .json();
    let posts = forum.posts_in(topic_id);
    assert_eq!(
        reply,
        json!({
            "post_id": posts[1],
            "topic_id": topic_id,
            "post_number": 2,
            "url": format!("{}/t/adopting-the-code-of-conduct/{topic_id}/2", forum.url()),
        })
    );
    assert_eq!(
        forum.requests_to("POST", "/posts.json")[1].json,
        Some(json!({"topic_id": topic_id, "raw": "I second this proposal, wholeheartedly."}))
    );

    // The metadata describes what the plugin offers.
    let meta = node
        .get("/api/internal/plugin/discourse/metadata")
        .await
        .expect_status(200)
        .json();
    assert_eq!(meta["auth_type"], "api_key", "{meta}");
    assert_eq!(meta["uses_webhook"], true, "{meta}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discourse_refusals_bad_keys_and_missing_settings_are_answered_as_such() {
    let forum = DiscourseStandin::start(KEY).await;
    let node = Node::start("discourse-refusals", fast_config()).await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;

    // Discourse's own validation, quoted.
    let refused = node
        .post_in(
            "forum",
            CREATE_TOPIC,
            &json!({"parameters": {"title": "Too short", "raw": "A body that is long enough to pass."}}),
        )
        .await;
    let e = refused.expect_error(502, "platform_error");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Title is too short (minimum is 15 characters)"),
        "{e}"
    );
    let missing = node
        .post_in(
            "forum",
            CREATE_POST,
            &json!({"parameters": {"topic_id": 987654, "raw": "A reply to a topic that is not there."}}),
        )
        .await;
    missing.expect_error(502, "platform_error");

    // A wrong key: Discourse answers 403 invalid_access, and the instance's health says so.
    let mut wrong = settings(&forum);
    wrong["api_key"] = json!("not-the-key");
    community_with_discourse(&node, "wrongkey", &wrong).await;
    let e = node
        .post_in(
            "wrongkey",
            CREATE_TOPIC,
            &json!({"parameters": {"title": "Adopting the code of conduct", "raw": "A body that is long enough to pass."}}),
        )
        .await
        .expect_error(502, "platform_error");
    assert!(
        e["message"].as_str().unwrap().contains("not permitted"),
        "{e}"
    );
    eventually(WAIT, "the wrong key's health to fail", || async {
        let h = health(&node, "wrongkey").await;
        (h["status"] == "failing")
            .then_some(())
            .ok_or(h.to_string())
    })
    .await;
    assert_eq!(health(&node, "forum").await["status"], "ok");

    // No key at all: nothing to call the forum with.
    community_with_discourse(&node, "nokey", &json!({"api_url": forum.url()})).await;
    node.post_in(
        "nokey",
        CREATE_POST,
        &json!({"parameters": {"topic_id": 1, "raw": "A reply that cannot be sent anywhere."}}),
    )
    .await
    .expect_error(400, "platform_not_configured");

    // The forum's URL is required to enable the plugin at all.
    node.create_community("nourl").await;
    node.post_in(
        "nourl",
        "/api/internal/plugin/discourse",
        &json!({"api_key": KEY}),
    )
    .await
    .expect_error(400, "schema_violation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_follows_the_votes_and_the_driver_closing_it_closes_it_on_discourse() {
    let forum = DiscourseStandin::start(KEY).await;
    let sink = Sink::start().await;
    let node = Node::start(
        "discourse-poll-close",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;

    let location = start_poll(
        &node,
        "forum",
        &json!({
            "title": "Which logo should we adopt?",
            "details": "The design group shortlisted three.",
            "options": ["Round", "Square", "Both & neither"],
            "category": 3,
            "public": true,
            "refresh_seconds": 1,
            "callback_url": sink.url("/callback"),
        }),
    )
    .await;
    let process = node.get(&location).await.expect_status(200).json();
    assert_eq!(process["status"], "pending", "{process}");
    assert_eq!(
        process["outcome"]["tally"],
        json!({"Round": 0, "Square": 0, "Both & neither": 0}),
        "{process}"
    );
    let post_id = post_id_of(&process);

    // The poll went out as Discourse poll BBCode in a new topic.
    let sent = forum.requests_to("POST", "/posts.json");
    assert_eq!(sent.len(), 1);
    let body = sent[0].json.clone().expect("a JSON body");
    assert_eq!(body["title"], "Which logo should we adopt?");
    assert_eq!(body["category"], 3);
    assert_eq!(
        body["raw"],
        "The design group shortlisted three.\n\n\
         [poll name=agora type=regular results=always public=true]\n\
         # Which logo should we adopt?\n* Round\n* Square\n* Both & neither\n[/poll]\n"
    );
    let post = forum.post(post_id).expect("the poll's post");
    assert_eq!(post["polls"][0]["name"], "agora");
    assert_eq!(post["polls"][0]["status"], "open");
    assert_eq!(
        process["outcome"]["poll"]["url"],
        format!(
            "{}/t/which-logo-should-we-adopt/{}/1",
            forum.url(),
            post["topic_id"]
        )
    );

    // Votes on the forum show up in the outcome while the poll is pending.
    forum.vote(post_id, "agora", "alice", &["Round"]);
    forum.vote(post_id, "agora", "bob", &["Round"]);
    forum.vote(post_id, "agora", "carol", &["Both & neither"]);
    let counted = wait_process(&node, &location, "the votes in the outcome", |p| {
        p["outcome"]["ballots"] == 3
    })
    .await;
    assert_eq!(counted["status"], "pending");
    assert_eq!(
        counted["outcome"]["tally"],
        json!({"Round": 2, "Square": 0, "Both & neither": 1})
    );
    sink.wait_for_one(WAIT, "a process_updated event with the counts", |r| {
        r.json.as_ref().is_some_and(|j| {
            j["event_type"] == "process_updated"
                && j["data"]["status"] == "pending"
                && j["data"]["outcome"]["ballots"] == 3
        })
    })
    .await;

    // The driver closes it: the poll closes on Discourse, and the result is Discourse's.
    let closed = node.close(&location).await;
    assert_eq!(closed["status"], "completed", "{closed}");
    let outcome = &closed["outcome"];
    assert_eq!(outcome["winner"], "Round", "{closed}");
    assert_eq!(outcome["method"], "choice");
    assert_eq!(outcome["close_reason"], "closed_by_driver");
    assert_eq!(outcome["poll"]["status"], "closed");
    assert_eq!(
        outcome["voters"],
        json!({"Round": ["alice", "bob"], "Both & neither": ["carol"]})
    );
    let toggles = forum.requests_to("PUT", "/polls/toggle_status");
    assert_eq!(toggles.len(), 1, "{toggles:?}");
    assert_eq!(
        toggles[0].json,
        Some(json!({"post_id": post_id, "poll_name": "agora", "status": "closed"}))
    );
    assert_eq!(forum.post(post_id).unwrap()["polls"][0]["status"], "closed");
    sink.wait_for_one(WAIT, "the completion callback", |r| {
        r.path == "/callback" && r.json.as_ref().is_some_and(|j| j["status"] == "completed")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_replying_in_a_topic_completes_at_its_deadline() {
    let forum = DiscourseStandin::start(KEY).await;
    let node = Node::start("discourse-poll-deadline", NodeConfig::dev()).await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;
    let topic = node
        .post_in(
            "forum",
            CREATE_TOPIC,
            &json!({"parameters": {"title": "Minutes of the March meeting", "raw": "The minutes are attached below."}}),
        )
        .await
        .expect_status(200)
        .json();
    let topic_id = topic["topic_id"].as_u64().unwrap();

    // 1.8 s long; the refresh timer is far away, so the deadline alone ends it.
    let location = start_poll(
        &node,
        "forum",
        &json!({
            "title": "Approve the minutes?",
            "options": ["Yes", "No"],
            "topic_id": topic_id,
            "duration_minutes": 0.03,
            "refresh_seconds": 3600,
        }),
    )
    .await;
    let process = node.get(&location).await.expect_status(200).json();
    let post_id = post_id_of(&process);
    let posts = forum.posts_in(topic_id);
    assert_eq!(
        posts,
        vec![topic["post_id"].as_u64().unwrap(), post_id],
        "a reply"
    );
    let sent = forum.requests_to("POST", "/posts.json");
    let body = sent.last().and_then(|s| s.json.clone()).unwrap();
    assert_eq!(body["topic_id"], topic_id);
    assert!(body.get("title").is_none(), "{body}");
    let raw = body["raw"].as_str().unwrap();
    assert!(
        raw.contains(" close=") && raw.contains("# Approve the minutes?"),
        "{raw}"
    );
    let close = process["outcome"]["poll"]["close"]
        .as_str()
        .expect("a close time");
    assert_eq!(forum.post(post_id).unwrap()["polls"][0]["close"], close);

    forum.vote(post_id, "agora", "bob", &["No"]);
    let done = wait_process(&node, &location, "the deadline", |p| {
        p["status"] == "completed"
    })
    .await;
    let outcome = &done["outcome"];
    assert_eq!(outcome["close_reason"], "deadline", "{done}");
    assert_eq!(outcome["winner"], "No", "{done}");
    assert_eq!(outcome["tally"], json!({"Yes": 0, "No": 1}));
    assert_eq!(outcome["ballots"], 1);
    assert!(outcome.get("voters").is_none(), "a secret poll: {done}");
    // Closing a completed process is refused; nothing more is sent to the forum.
    let again = node.delete(&location).await;
    assert!(again.status >= 400, "{}", again.describe());
    assert!(forum.requests_to("PUT", "/polls/toggle_status").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_closed_on_the_forum_completes_when_a_webhook_about_its_topic_arrives() {
    let forum = DiscourseStandin::start(KEY).await;
    let sink = Sink::start().await;
    let node = Node::start(
        "discourse-poll-webhook",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;
    let location = start_poll(
        &node,
        "forum",
        &json!({"title": "Move the meetup to Thursdays?", "options": ["Yes", "No", "Abstain"], "refresh_seconds": 3600}),
    )
    .await;
    let process = node.get(&location).await.expect_status(200).json();
    let post_id = post_id_of(&process);
    forum.vote(post_id, "agora", "alice", &["Yes"]);
    forum.vote(post_id, "agora", "dave", &["No"]);
    forum.vote(post_id, "agora", "erin", &["Yes"]);
    forum.close_poll(post_id, "agora");

    // Closing a poll edits nothing Discourse sends a webhook for, but a post in its topic does.
    deliver(
        &node,
        "/api/hooks/forum/discourse",
        &forum.url(),
        ("post", "post_edited"),
        &forum.post_payload(post_id),
        Some(SECRET),
    )
    .await
    .expect_status(200);
    let done = wait_process(&node, &location, "completion after the webhook", |p| {
        p["status"] == "completed"
    })
    .await;
    assert_eq!(
        done["outcome"]["close_reason"], "closed_on_discourse",
        "{done}"
    );
    assert_eq!(done["outcome"]["winner"], "Yes");
    assert_eq!(
        done["outcome"]["tally"],
        json!({"Yes": 2, "No": 1, "Abstain": 0})
    );
    assert!(forum.requests_to("PUT", "/polls/toggle_status").is_empty());
    // The webhook also reached the driver.
    sink.wait_for_one(WAIT, "the post_edited event", |r| {
        r.json
            .as_ref()
            .is_some_and(|j| j["event_type"] == "post_edited")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_parameters_are_checked_before_anything_is_posted() {
    let forum = DiscourseStandin::start(KEY).await;
    let node = Node::start("discourse-poll-params", NodeConfig::dev()).await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;
    for params in [
        json!({"title": "A poll with one option", "options": ["Only"]}),
        json!({"title": "A poll with repeated options", "options": ["A", "A"]}),
        json!({"title": "A poll in two places at once", "options": ["A", "B"], "topic_id": 1, "category": 2}),
        json!({"title": "A poll with two ends", "options": ["A", "B"], "closing_at": "2099-01-01T00:00:00Z", "duration_minutes": 5}),
        json!({"title": "A poll that closed already", "options": ["A", "B"], "closing_at": "2001-01-01T00:00:00Z"}),
        json!({"title": "A poll with a multi-line option", "options": ["A", "B\nC"]}),
        json!({"title": "A poll with a typo", "options": ["A", "B"], "closes_at": "2099-01-01T00:00:00Z"}),
    ] {
        node.post_in("forum", POLL, &params)
            .await
            .expect_error(400, "schema_violation");
    }
    assert!(forum.requests_to("POST", "/posts.json").is_empty());

    // Discourse's own refusal of the post: no process is created.
    node.post_in(
        "forum",
        POLL,
        &json!({"title": "Short?", "options": ["A", "B"]}),
    )
    .await
    .expect_error(502, "platform_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_reach_the_driver_and_unsigned_ones_are_refused() {
    let forum = DiscourseStandin::start(KEY).await;
    let sink = Sink::start().await;
    let node = Node::start(
        "discourse-webhooks",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;
    let topic = node
        .post_in(
            "forum",
            CREATE_TOPIC,
            &json!({"parameters": {"title": "Welcome to the new forum", "raw": "Introduce yourselves here, please."}}),
        )
        .await
        .expect_status(200)
        .json();
    let topic_id = topic["topic_id"].as_u64().unwrap();
    let post_id = topic["post_id"].as_u64().unwrap();
    let hook = "/api/hooks/forum/discourse";

    deliver(
        &node,
        hook,
        &forum.url(),
        ("topic", "topic_created"),
        &forum.topic_payload(topic_id),
        Some(SECRET),
    )
    .await
    .expect_status(200);
    let event = sink
        .wait_for_one(WAIT, "the topic_created event", |r| {
            r.json
                .as_ref()
                .is_some_and(|j| j["event_type"] == "topic_created")
        })
        .await
        .json
        .unwrap();
    assert_eq!(event["community"], "forum", "{event}");
    assert_eq!(event["source"], "discourse");
    assert_eq!(
        event["initiator"],
        json!({"user_id": "system", "provider": "discourse"})
    );
    assert_eq!(event["data"]["id"], topic_id);
    assert_eq!(event["data"]["title"], "Welcome to the new forum");
    assert_eq!(
        event["data"]["url"],
        format!("{}/t/welcome-to-the-new-forum/{topic_id}", forum.url())
    );

    // Refused: no signature, a wrong secret, a tampered body. Nothing is forwarded.
    let payload = forum.post_payload(post_id);
    for secret in [None, Some("not the secret")] {
        deliver(
            &node,
            hook,
            &forum.url(),
            ("post", "post_created"),
            &payload,
            secret,
        )
        .await
        .expect_error(401, "invalid_signature");
    }
    let good = payload.to_string().into_bytes();
    let tampered = node
        .send(
            node.anonymous(reqwest::Method::POST, hook)
                .header("Content-Type", "application/json")
                .header("X-Discourse-Instance", forum.url())
                .header("X-Discourse-Event-Type", "post")
                .header("X-Discourse-Event", "post_created")
                .header("X-Discourse-Event-Signature", signature(SECRET, &good))
                .body(payload.to_string().replace("system", "mallory")),
        )
        .await;
    tampered.expect_error(401, "invalid_signature");
    // A ping is accepted and forwards nothing.
    deliver(
        &node,
        hook,
        &forum.url(),
        ("ping", "ping"),
        &json!({"ping": "OK"}),
        Some(SECRET),
    )
    .await
    .expect_status(200);

    // A good delivery after the refused ones: events arrive in order, so once it is there,
    // anything the refused ones had produced would be too.
    deliver(
        &node,
        hook,
        &forum.url(),
        ("post", "post_created"),
        &payload,
        Some(SECRET),
    )
    .await
    .expect_status(200);
    let requests = sink
        .wait_for(WAIT, "the post_created event", |reqs| {
            discourse_events(reqs)
                .iter()
                .any(|e| e["event_type"] == "post_created")
        })
        .await;
    let events = discourse_events(&requests);
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(types, vec!["topic_created", "post_created"], "{events:?}");
    let post = &events[1];
    assert_eq!(
        post["initiator"],
        json!({"user_id": "system", "provider": "discourse"})
    );
    assert_eq!(post["data"]["raw"], "Introduce yourselves here, please.");
    assert_eq!(post["data"]["topic_id"], topic_id);
    assert_eq!(
        post["data"]["url"],
        format!("{}/t/welcome-to-the-new-forum/{topic_id}/1", forum.url())
    );
    assert!(
        post["data"].get("cooked").is_none(),
        "a compact subset: {post}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_wide_webhooks_reach_the_community_that_follows_the_forum() {
    let alpha_forum = DiscourseStandin::start(KEY).await;
    let beta_forum = DiscourseStandin::start(KEY).await;
    let sink = Sink::start().await;
    let node = Node::start(
        "discourse-platform-hooks",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    community_with_discourse(&node, "alpha", &settings(&alpha_forum)).await;
    let mut beta = settings(&beta_forum);
    beta["webhook_secret"] = json!("beta's own secret");
    community_with_discourse(&node, "beta", &beta).await;
    let topic = node
        .post_in(
            "beta",
            CREATE_TOPIC,
            &json!({"parameters": {"title": "Budget for the next quarter", "raw": "Here is the proposed budget."}}),
        )
        .await
        .expect_status(200)
        .json();
    let payload = beta_forum.topic_payload(topic["topic_id"].as_u64().unwrap());

    // Discourse names itself by its base URL; case and a trailing slash do not matter.
    let instance = format!("{}/", beta_forum.url().to_uppercase());
    let answer = deliver(
        &node,
        "/api/hooks/discourse",
        &instance,
        ("topic", "topic_created"),
        &payload,
        Some("beta's own secret"),
    )
    .await
    .expect_status(200)
    .json();
    assert_eq!(answer, json!({"delivered": 1}));
    let event = sink
        .wait_for_one(WAIT, "the routed event", |r| {
            r.json
                .as_ref()
                .is_some_and(|j| j["event_type"] == "topic_created")
        })
        .await
        .json
        .unwrap();
    assert_eq!(event["community"], "beta", "{event}");

    // Signed with the other community's secret: refused.
    deliver(
        &node,
        "/api/hooks/discourse",
        &beta_forum.url(),
        ("topic", "topic_created"),
        &payload,
        Some(SECRET),
    )
    .await
    .expect_error(401, "invalid_signature");
    // A forum nobody follows, or no instance header at all: not routable.
    deliver(
        &node,
        "/api/hooks/discourse",
        "https://elsewhere.example.org",
        ("topic", "topic_created"),
        &payload,
        Some(SECRET),
    )
    .await
    .expect_error(404, "webhook_not_routable");
    let body = payload.to_string().into_bytes();
    node.send(
        node.anonymous(reqwest::Method::POST, "/api/hooks/discourse")
            .header("Content-Type", "application/json")
            .header("X-Discourse-Event-Signature", signature(SECRET, &body))
            .body(body),
    )
    .await
    .expect_error(404, "webhook_not_routable");
    let routed: Vec<Value> = discourse_events(&sink.requests());
    assert_eq!(routed.len(), 1, "{routed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_retry_after_is_retried_and_the_action_succeeds() {
    let forum = DiscourseStandin::start(KEY).await;
    let node = Node::start("discourse-retry", NodeConfig::dev()).await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;
    forum.fail_next(1, 503, Some(1));
    let topic = node
        .post_in(
            "forum",
            CREATE_TOPIC,
            &json!({"parameters": {"title": "Retried until it worked", "raw": "The forum was busy for a second."}}),
        )
        .await
        .expect_status(200)
        .json();
    let sent = forum.requests_to("POST", "/posts.json");
    let statuses: Vec<u16> = sent.iter().map(|s| s.answered).collect();
    assert_eq!(statuses, vec![503, 200], "one refusal, one retry");
    assert_eq!(
        forum.posts_in(topic["topic_id"].as_u64().unwrap()).len(),
        1,
        "one topic, not two"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_forum_opens_the_breaker_and_health_reports_it_until_it_recovers() {
    let forum = DiscourseStandin::start(KEY).await;
    let node = Node::start("discourse-breaker", fast_config()).await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;
    eventually(WAIT, "a first healthy report", || async {
        let h = health(&node, "forum").await;
        (h["status"] == "ok").then_some(()).ok_or(h.to_string())
    })
    .await;

    forum.fail_next(1000, 500, None);
    let params = json!({"parameters": {"title": "Posted while the forum is down", "raw": "This should not get through."}});
    // A POST that got a 500 is answered at once (it may have been applied), never repeated;
    // the background probes fail meanwhile too, so the breaker may open before it goes out.
    let calls = std::sync::atomic::AtomicUsize::new(1);
    let first = node.post_in("forum", CREATE_TOPIC, &params).await;
    let code = first.error_object()["code"].clone();
    assert_eq!(first.status, 503, "{}", first.describe());
    assert!(
        code == "platform_unavailable" || code == "circuit_open",
        "{}",
        first.describe()
    );
    let refused = eventually(WAIT, "the breaker to open", || async {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let r = node.post_in("forum", CREATE_TOPIC, &params).await;
        if r.status == 503 && r.error_object()["code"] == "circuit_open" {
            Ok(r)
        } else {
            Err(r.describe())
        }
    })
    .await;
    assert!(refused.header("retry-after").is_some());
    let posts = forum.requests_to("POST", "/posts.json");
    assert!(
        posts.len() <= calls.load(std::sync::atomic::Ordering::SeqCst),
        "no POST was sent twice: {} sent for {calls:?} calls",
        posts.len()
    );
    assert!(posts.iter().all(|p| p.answered == 500));
    let h = eventually(WAIT, "health to report the open breaker", || async {
        let h = health(&node, "forum").await;
        (h["breaker"]["state"] == "open" && h["status"] != "ok")
            .then_some(h.clone())
            .ok_or(h.to_string())
    })
    .await;
    assert!(h["status"] == "failing" || h["status"] == "degraded", "{h}");

    // The forum recovers: after the cooldown the breaker closes and health is ok again.
    forum.heal();
    eventually(Duration::from_secs(10), "health back to ok", || async {
        let h = health(&node, "forum").await;
        (h["status"] == "ok" && h["breaker"]["state"] == "closed")
            .then_some(())
            .ok_or(h.to_string())
    })
    .await;
    node.post_in(
        "forum",
        CREATE_TOPIC,
        &json!({"parameters": {"title": "Posted once the forum is back", "raw": "This one gets through fine."}}),
    )
    .await
    .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_whose_post_is_deleted_completes_with_what_was_last_counted() {
    let forum = DiscourseStandin::start(KEY).await;
    let node = Node::start("discourse-poll-deleted", NodeConfig::dev()).await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;
    let location = start_poll(
        &node,
        "forum",
        &json!({"title": "Rename the project to Agora?", "options": ["Yes", "No"], "refresh_seconds": 1}),
    )
    .await;
    let post_id = post_id_of(&node.get(&location).await.expect_status(200).json());
    forum.vote(post_id, "agora", "carol", &["Yes"]);
    wait_process(&node, &location, "the vote counted", |p| {
        p["outcome"]["ballots"] == 1
    })
    .await;
    forum.delete_post(post_id);
    let done = wait_process(&node, &location, "completion", |p| {
        p["status"] == "completed"
    })
    .await;
    assert_eq!(done["outcome"]["close_reason"], "post_deleted", "{done}");
    assert_eq!(done["outcome"]["poll"]["status"], "deleted");
    assert_eq!(done["outcome"]["tally"], json!({"Yes": 1, "No": 0}));
}

/// Issue 13 §4: a redelivered event (same `X-Discourse-Event-Id`, as Discourse's "redeliver"
/// sends it) is 200 and makes no second driver event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_is_taken_once() {
    let forum = DiscourseStandin::start(KEY).await;
    let sink = Sink::start().await;
    let node = Node::start(
        "discourse-replays",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    community_with_discourse(&node, "forum", &settings(&forum)).await;
    let topic = node
        .post_in(
            "forum",
            CREATE_TOPIC,
            &json!({"parameters": {"title": "Once and only once", "raw": "Redeliveries are ignored."}}),
        )
        .await
        .expect_status(200)
        .json();
    let payload = forum.topic_payload(topic["topic_id"].as_u64().unwrap());
    for _ in 0..3 {
        deliver_with_id(
            &node,
            "/api/hooks/forum/discourse",
            &forum.url(),
            ("topic", "topic_created"),
            &payload,
            Some(SECRET),
            "7001",
        )
        .await
        .expect_status(200);
    }
    sink.wait_for(WAIT, "the event", |r| !discourse_events(r).is_empty())
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(discourse_events(&sink.requests()).len(), 1);
}
