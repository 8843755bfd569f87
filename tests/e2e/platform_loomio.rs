//! End-to-end tests of the `loomio` plugin: a real node drives the Loomio stand-in through
//! Agora's HTTP API. Polls are created in Loomio, followed (timer refreshes and webhooks) and
//! completed with the vote plugin's outcome shape; webhook secrets, platform-wide routing,
//! retries, the circuit breaker and health are checked from the outside.

use serde_json::{json, Value};

use crate::harness::{eventually, Node, NodeConfig, Sink, WAIT};
use crate::standins::loomio::{iso, now_ms, LoomioStandin};

const KEY: &str = "lmo-api-key-7";
const GROUP: i64 = 42;
const POLL: &str = "/api/internal/process/loomio.poll";
const GET_POLL: &str = "/api/internal/action/loomio.get-poll";

fn settings(standin: &LoomioStandin) -> Value {
    json!({"api_url": standin.url(), "api_key": KEY, "group_id": GROUP})
}

/// RFC 3339, `secs` from now.
fn in_secs(secs: i64) -> String {
    iso(now_ms() + secs * 1000)
}

async fn enable(node: &Node, slug: &str, settings: &Value) {
    node.create_community(slug).await;
    node.post_in(slug, "/api/internal/plugin/loomio", settings)
        .await
        .expect_status(201);
}

/// Starts a `loomio.poll`; answers its `Location`.
async fn start_poll(node: &Node, slug: &str, params: &Value) -> String {
    let resp = node.post_in(slug, POLL, params).await.expect_status(202);
    resp.header("location")
        .unwrap_or_else(|| panic!("{}: no Location", resp.what))
}

/// Polls the process until `pred` holds; answers it.
async fn wait_process<F>(node: &Node, location: &str, what: &str, pred: F) -> Value
where
    F: Fn(&Value) -> bool,
{
    eventually(WAIT, what, || {
        let location = location.to_string();
        let pred = &pred;
        async move {
            let process = node.get(&location).await.expect_status(200).json();
            if pred(&process) {
                Ok(process)
            } else {
                Err(process.to_string())
            }
        }
    })
    .await
}

fn poll_id(process: &Value) -> i64 {
    process["outcome"]["loomio"]["poll_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no loomio.poll_id in {process}"))
}

fn is_event(r: &crate::harness::Recorded, event_type: &str) -> bool {
    r.json
        .as_ref()
        .is_some_and(|j| j["event_type"] == event_type && j["source"] == "loomio")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_is_created_in_loomio_followed_and_completed_when_loomio_closes_it() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let driver = Sink::start().await;
    let node = Node::start(
        "loomio-follow",
        NodeConfig::dev().driver(driver.url("/events")),
    )
    .await;
    enable(&node, "co", &settings(&standin)).await;
    let closing_at = in_secs(3600);
    let location = start_poll(
        &node,
        "co",
        &json!({"title": "Tea or coffee?", "details": "For the office", "poll_type": "poll",
                "options": ["tea", "coffee"], "closing_at": closing_at, "refresh_seconds": 1}),
    )
    .await;

    let created = standin.requests_to("POST", "/api/b2/polls");
    assert_eq!(created.len(), 1, "one poll created");
    assert_eq!(
        created[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        created[0].json,
        Some(json!({"poll": {
            "title": "Tea or coffee?", "details": "For the office", "details_format": "md",
            "poll_type": "poll", "options": ["tea", "coffee"], "closing_at": closing_at,
            "group_id": GROUP
        }}))
    );
    let process = node.get(&location).await.expect_status(200).json();
    assert_eq!(process["status"], "pending", "{process}");
    assert_eq!(process["outcome"]["method"], "choice", "{process}");
    assert_eq!(process["outcome"]["ballots"], 0, "{process}");
    let id = poll_id(&process);
    assert_eq!(standin.poll_ids(), vec![id]);
    let key = process["outcome"]["loomio"]["poll_key"].as_str().unwrap();
    assert_eq!(
        process["outcome"]["loomio"]["poll_url"],
        json!(format!("{}/p/{key}", standin.url()))
    );

    // Stances cast in Loomio show up in the outcome and reach the driver.
    standin.vote(id, 1, "coffee");
    standin.vote(id, 2, "coffee");
    standin.vote(id, 3, "tea");
    let pending = wait_process(&node, &location, "the stances to be counted", |p| {
        p["outcome"]["ballots"] == 3
    })
    .await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(
        pending["outcome"]["tally"],
        json!({"coffee": 2.0, "tea": 1.0})
    );
    assert_eq!(pending["outcome"]["winner"], "coffee");
    let event = driver
        .wait_for_one(WAIT, "a stance_created event", |r| {
            is_event(r, "stance_created")
        })
        .await;
    let body = event.json.unwrap();
    assert_eq!(body["community"], "co");
    assert_eq!(body["data"]["poll_id"], id);
    assert!(body["data"]["ballots"].as_u64().unwrap() >= 1, "{body}");

    // A member closes the poll in Loomio: the process completes with Loomio's result.
    standin.close_poll(id);
    let done = wait_process(&node, &location, "the process to complete", |p| {
        p["status"] == "completed"
    })
    .await;
    let outcome = &done["outcome"];
    assert_eq!(outcome["winner"], "coffee", "{done}");
    assert_eq!(outcome["close_reason"], "closed_on_loomio", "{done}");
    assert_eq!(outcome["loomio"]["status"], "closed", "{done}");
    assert_eq!(outcome["loomio"]["closed_on_platform"], true, "{done}");
    let closed = driver
        .wait_for_one(WAIT, "a poll_closed event", |r| is_event(r, "poll_closed"))
        .await;
    assert_eq!(closed.json.unwrap()["data"]["outcome"]["winner"], "coffee");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_reaching_its_closing_time_completes_with_loomios_result() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let node = Node::start("loomio-deadline", NodeConfig::dev()).await;
    enable(&node, "co", &settings(&standin)).await;
    let location = start_poll(
        &node,
        "co",
        &json!({"title": "Adopt the charter?", "closing_at": in_secs(3), "refresh_seconds": 1}),
    )
    .await;
    let created = standin.requests_to("POST", "/api/b2/polls");
    assert_eq!(
        created[0].json.as_ref().unwrap()["poll"]["options"],
        json!(["agree", "abstain", "disagree", "block"]),
        "a proposal gets Loomio's proposal options"
    );
    let id = standin.poll_ids()[0];
    standin.vote(id, 1, "agree");
    standin.vote(id, 2, "agree");
    standin.vote(id, 3, "disagree");

    let done = wait_process(&node, &location, "the proposal to complete", |p| {
        p["status"] == "completed"
    })
    .await;
    let outcome = &done["outcome"];
    assert_eq!(outcome["method"], "proposal", "{done}");
    assert_eq!(outcome["passed"], true, "{done}");
    assert_eq!(outcome["blocked"], false, "{done}");
    assert_eq!(outcome["ballots"], 3, "{done}");
    assert_eq!(outcome["close_reason"], "deadline", "{done}");
    let support = outcome["support"].as_f64().unwrap();
    assert!((support - 66.666).abs() < 0.01, "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_process_reads_the_final_result_from_loomio() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let node = Node::start("loomio-close", NodeConfig::dev()).await;
    enable(&node, "co", &settings(&standin)).await;
    let location = start_poll(
        &node,
        "co",
        &json!({"title": "Budget", "poll_type": "score", "options": ["a", "b"],
                "closing_at": in_secs(3600)}),
    )
    .await;
    let id = standin.poll_ids()[0];
    standin.cast(id, 1, &[("a", 5.0), ("b", 1.0)]);
    standin.cast(id, 2, &[("a", 3.0), ("b", 4.0)]);

    let closed = node.close(&location).await;
    assert_eq!(closed["status"], "completed", "{closed}");
    let outcome = &closed["outcome"];
    assert_eq!(outcome["method"], "score", "{closed}");
    assert_eq!(outcome["winner"], "a", "{closed}");
    assert_eq!(outcome["tally"], json!({"a": 8.0, "b": 5.0}), "{closed}");
    assert_eq!(outcome["averages"], json!({"a": 4.0, "b": 2.5}), "{closed}");
    assert_eq!(outcome["close_reason"], "closed", "{closed}");
    // No API key can close a Loomio poll: the result is final here, the poll stays open there.
    assert_eq!(outcome["loomio"]["closed_on_platform"], false, "{closed}");
    let reads = standin.requests_to("GET", &format!("/api/b2/polls/{id}"));
    assert!(!reads.is_empty(), "the close read the poll");
    assert_eq!(
        reads.last().unwrap().header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(node.get(&location).await.json(), closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_with_the_secret_refresh_the_poll_and_others_are_refused() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let driver = Sink::start().await;
    let node = Node::start(
        "loomio-webhooks",
        NodeConfig::dev().driver(driver.url("/events")),
    )
    .await;
    let mut s = settings(&standin);
    s["webhook_secret"] = json!("hook s3cret");
    enable(&node, "co", &s).await;
    // Refreshes are hourly here, so only webhooks can bring news.
    let location = start_poll(
        &node,
        "co",
        &json!({"title": "Picnic?", "closing_at": in_secs(7200), "refresh_seconds": 3600}),
    )
    .await;
    let id = standin.poll_ids()[0];
    standin.vote(id, 1, "agree");
    let payload = json!({"kind": "stance_created", "url": format!("{}/p/x", standin.url()),
                         "text": "Someone voted", "username": "Loomio"});

    for path in [
        "/api/hooks/co/loomio",
        "/api/hooks/co/loomio?secret=wrong",
        "/api/hooks/co/loomio?secret=hook%20s3cre",
    ] {
        node.post(path, &payload)
            .await
            .expect_error(401, "invalid_signature");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        standin
            .requests_to("GET", &format!("/api/b2/polls/{id}"))
            .is_empty(),
        "a refused webhook triggers nothing"
    );
    assert!(
        !driver
            .requests()
            .iter()
            .any(|r| is_event(r, "stance_created")),
        "a refused webhook reaches no driver"
    );

    node.post("/api/hooks/co/loomio?secret=hook%20s3cret", &payload)
        .await
        .expect_status(200);
    let process = wait_process(&node, &location, "the webhook's refresh", |p| {
        p["outcome"]["ballots"] == 1
    })
    .await;
    assert_eq!(process["outcome"]["passed"], true, "{process}");
    driver
        .wait_for_one(WAIT, "a stance_created event", |r| {
            is_event(r, "stance_created")
        })
        .await;

    // A webhook cannot forge a result: Loomio is asked, and it says the poll is open.
    node.post(
        "/api/hooks/co/loomio?secret=hook%20s3cret",
        &json!({"kind": "poll_closed_by_user", "closed_at": "2020-01-01T00:00:00Z"}),
    )
    .await
    .expect_status(200);
    standin
        .wait_for_requests("GET", &format!("/api/b2/polls/{id}"), 2)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let process = node.get(&location).await.json();
    assert_eq!(process["status"], "pending", "{process}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_wide_webhooks_reach_the_community_following_the_group() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let node = Node::start("loomio-route", NodeConfig::dev()).await;
    let mut s = settings(&standin);
    s["webhook_secret"] = json!("r0ute");
    enable(&node, "co", &s).await;
    let location = start_poll(
        &node,
        "co",
        &json!({"title": "Route?", "closing_at": in_secs(7200), "refresh_seconds": 3600}),
    )
    .await;
    let id = standin.poll_ids()[0];
    standin.vote(id, 9, "block");
    let payload = json!({"kind": "stance_created"});

    let resp = node
        .post(
            &format!("/api/hooks/loomio?group_id={GROUP}&secret=r0ute"),
            &payload,
        )
        .await
        .expect_status(200)
        .json();
    assert!(
        resp["delivered"] == 1 || resp["delivered"] == json!(["co"]),
        "{resp}"
    );
    let process = wait_process(&node, &location, "the routed webhook's refresh", |p| {
        p["outcome"]["ballots"] == 1
    })
    .await;
    assert_eq!(process["outcome"]["blocked"], true, "{process}");

    node.post(
        &format!("/api/hooks/loomio?group_id={GROUP}&secret=nope"),
        &payload,
    )
    .await
    .expect_error(401, "invalid_signature");
    let unknown = node
        .post("/api/hooks/loomio?group_id=7&secret=r0ute", &payload)
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.describe());
    let unrouted = node.post("/api/hooks/loomio", &payload).await;
    assert!(
        (400..500).contains(&unrouted.status),
        "{}",
        unrouted.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_poll_reads_a_poll_and_survives_one_503() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let node = Node::start("loomio-get-poll", NodeConfig::dev()).await;
    enable(&node, "co", &settings(&standin)).await;
    let location = start_poll(
        &node,
        "co",
        &json!({"title": "Dots", "poll_type": "dot_vote", "options": ["x", "y", "z"],
                "closing_at": in_secs(3600)}),
    )
    .await;
    let process = node.get(&location).await.json();
    let key = process["outcome"]["loomio"]["poll_key"]
        .as_str()
        .unwrap()
        .to_string();
    let id = poll_id(&process);
    standin.cast(id, 1, &[("x", 3.0), ("y", 5.0)]);
    standin.cast(id, 2, &[("y", 2.0), ("z", 6.0)]);

    standin.fail_next(1, 503);
    let answer = node
        .post_in("co", GET_POLL, &json!({"parameters": {"poll": key}}))
        .await
        .expect_status(200)
        .json();
    assert_eq!(answer["poll"]["id"], id, "{answer}");
    assert_eq!(answer["outcome"]["method"], "dot", "{answer}");
    assert_eq!(answer["outcome"]["winner"], "y", "{answer}");
    assert_eq!(
        answer["outcome"]["tally"],
        json!({"x": 3.0, "y": 7.0, "z": 6.0})
    );
    let reads = standin.requests_to("GET", &format!("/api/b2/polls/{key}"));
    assert_eq!(
        reads.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![503, 200],
        "retried once after the 503"
    );

    // Loomio's throttle (429 with Retry-After) is waited out too.
    standin.fail_next_with_retry_after(1, 429, 1);
    let again = node
        .post_in("co", GET_POLL, &json!({"parameters": {"poll": id}}))
        .await
        .expect_status(200)
        .json();
    assert_eq!(again["outcome"], answer["outcome"]);
    let reads = standin.requests_to("GET", &format!("/api/b2/polls/{id}"));
    assert_eq!(
        reads.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![429, 200],
        "retried once after the 429"
    );
    assert!(
        reads[1].at.duration_since(reads[0].at) >= std::time::Duration::from_millis(900),
        "the retry waited for Retry-After"
    );

    // An unknown poll is Loomio's 404, reported as a platform error.
    node.post_in("co", GET_POLL, &json!({"parameters": {"poll": "nope"}}))
        .await
        .expect_error(502, "platform_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loomio_that_keeps_failing_fails_calls_and_health() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let node = Node::start(
        "loomio-breaker",
        NodeConfig::dev()
            .arg("--breaker-cooldown-ms")
            .arg("500")
            .arg("--health-interval-ms")
            .arg("200"),
    )
    .await;
    enable(&node, "co", &settings(&standin)).await;
    standin.fail_always(500);

    let resp = node
        .post_in("co", GET_POLL, &json!({"parameters": {"poll": 1}}))
        .await;
    assert_eq!(resp.status, 503, "{}", resp.describe());
    let code = resp.error_object()["code"].clone();
    assert!(
        code == "platform_unavailable" || code == "circuit_open",
        "{}",
        resp.describe()
    );
    let health = eventually(WAIT, "the instance to be unhealthy", || {
        let node = &node;
        async move {
            let h = node
                .get("/api/v1/communities/co/plugins/loomio/health")
                .await
                .expect_status(200)
                .json();
            if h["status"] == "failing" || h["status"] == "degraded" {
                Ok(h)
            } else {
                Err(h.to_string())
            }
        }
    })
    .await;
    assert!(health["breaker"]["state"].is_string(), "{health}");

    // Once Loomio answers again, so does the plugin (after the breaker's cooldown).
    standin.heal();
    eventually(WAIT, "calls to succeed again", || {
        let node = &node;
        async move {
            let resp = node
                .post_in("co", GET_POLL, &json!({"parameters": {"poll": 1}}))
                .await;
            // Poll 1 does not exist: Loomio's 404 proves the call went through.
            if resp.status == 502 {
                Ok(())
            } else {
                Err(resp.describe())
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_by_loomio_and_bad_input_are_reported_and_create_nothing() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let node = Node::start("loomio-refusals", NodeConfig::dev()).await;
    let mut wrong_key = settings(&standin);
    wrong_key["api_key"] = json!("not-the-key");
    enable(&node, "wrong", &wrong_key).await;
    enable(&node, "co", &settings(&standin)).await;
    enable(
        &node,
        "nokey",
        &json!({"api_url": standin.url(), "group_id": GROUP}),
    )
    .await;

    // Loomio answers 403 to a key it does not know.
    let error = node
        .post_in(
            "wrong",
            POLL,
            &json!({"title": "T", "closing_at": in_secs(3600)}),
        )
        .await
        .expect_error(502, "platform_error");
    assert!(
        error["message"].as_str().unwrap().contains("403"),
        "{error}"
    );
    assert_eq!(
        standin.requests_to("POST", "/api/b2/polls")[0].answered,
        403
    );

    // Bad parameters never reach Loomio.
    let before = standin.requests().len();
    for (params, field) in [
        (
            json!({"title": "T", "closing_at": iso(now_ms() - 60_000)}),
            "closing_at",
        ),
        (
            json!({"title": "T", "poll_type": "poll", "closing_at": in_secs(60)}),
            "options",
        ),
        (
            json!({"title": "T", "options": ["yes"], "closing_at": in_secs(60)}),
            "options[0]",
        ),
    ] {
        let error = node
            .post_in("co", POLL, &params)
            .await
            .expect_error(400, "schema_violation");
        assert!(
            error["field"].as_str().unwrap_or_default().ends_with(field),
            "{params}: {error}"
        );
    }
    node.post_in(
        "co",
        POLL,
        &json!({"title": "T", "poll_type": "meeting", "closing_at": in_secs(60)}),
    )
    .await
    .expect_error(400, "schema_violation");
    node.post_in(
        "nokey",
        POLL,
        &json!({"title": "T", "closing_at": in_secs(60)}),
    )
    .await
    .expect_error(400, "platform_not_configured");
    assert_eq!(standin.requests().len(), before, "nothing reached Loomio");
    assert!(standin.poll_ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_b1_api_carries_the_key_in_its_parameters() {
    let standin = LoomioStandin::start(KEY, GROUP).await;
    let node = Node::start("loomio-b1", NodeConfig::dev()).await;
    enable(
        &node,
        "co",
        &json!({"api_url": standin.url(), "api_version": "b1", "api_key": KEY}),
    )
    .await;
    let location = start_poll(
        &node,
        "co",
        &json!({"title": "Legacy", "poll_type": "count", "closing_at": in_secs(3600)}),
    )
    .await;
    let created = standin.requests_to("POST", "/api/b1/polls");
    let body = created[0].json.clone().unwrap();
    assert_eq!(body["api_key"], KEY);
    assert_eq!(body["options"], json!(["accept", "decline"]));
    assert!(created[0].header("authorization").is_none());
    let id = standin.poll_ids()[0];
    standin.vote(id, 1, "accept");

    let closed = node.close(&location).await;
    assert_eq!(closed["outcome"]["method"], "count", "{closed}");
    assert_eq!(closed["outcome"]["tally"]["accept"], 1.0, "{closed}");
    let read = standin.requests_to("GET", &format!("/api/b1/polls/{id}"));
    assert_eq!(
        read.last().unwrap().query.as_deref(),
        Some(format!("api_key={KEY}").as_str())
    );
}
