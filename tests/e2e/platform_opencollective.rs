//! End-to-end tests of the `opencollective` plugin against its local stand-in: approving and
//! rejecting expenses through Agora's action API (and the platform's refusals), expense webhooks
//! authenticated by the shared secret in their URL becoming driver events, platform-wide
//! webhooks routed by collective slug, a retried 503, and health and the breaker when the
//! platform keeps failing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{assert_fields, eventually, Node, NodeConfig, Resp, Sink, WAIT};
use crate::standins::opencollective::OpenCollectiveStandin;

const TOKEN: &str = "oc-personal-token-1";
const SECRET: &str = "hook secret/1";
const SECRET_IN_URL: &str = "hook%20secret%2F1";
const APPROVE: &str = "/api/internal/action/opencollective.approve-expense";
const REJECT: &str = "/api/internal/action/opencollective.reject-expense";

fn settings(oc: &OpenCollectiveStandin, collective: &str, secret: &str) -> Value {
    json!({
        "api_url": oc.url(),
        "token": TOKEN,
        "collective_slug": collective,
        "webhook_secret": secret
    })
}

fn node_config(driver: Option<&Sink>) -> NodeConfig {
    let config = NodeConfig::dev()
        .arg("--breaker-threshold")
        .arg("3")
        .arg("--breaker-cooldown-ms")
        .arg("500")
        .arg("--health-interval-ms")
        .arg("200");
    match driver {
        Some(sink) => config.driver(sink.url("/events")),
        None => config,
    }
}

async fn enable(node: &Node, community: &str, settings: &Value) {
    node.create_community(community).await;
    node.post_in(community, "/api/internal/plugin/opencollective", settings)
        .await
        .expect_status(201);
}

/// A node with community `bench` following collective `green-fund` on the stand-in.
async fn setup(name: &str, driver: Option<&Sink>) -> (Node, OpenCollectiveStandin) {
    let oc = OpenCollectiveStandin::start(TOKEN).await;
    oc.add_account("green-fund", None);
    let node = Node::start(name, node_config(driver)).await;
    enable(&node, "bench", &settings(&oc, "green-fund", SECRET)).await;
    (node, oc)
}

async fn hook(node: &Node, path: &str, payload: &Value) -> Resp {
    node.send(
        node.anonymous(reqwest::Method::POST, path)
            .header("Content-Type", "application/json")
            .body(payload.to_string()),
    )
    .await
}

fn oc_events(sink: &Sink) -> Vec<Value> {
    sink.requests()
        .into_iter()
        .filter_map(|r| r.json)
        .filter(|j| j["source"] == "opencollective")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_an_expense_reads_it_then_processes_it_with_the_personal_token() {
    let (node, oc) = setup("oc-approve", None).await;
    let id = oc.add_expense("green-fund", "Seeds for the garden", 1250, "alice");

    let answer = node
        .post_in("bench", APPROVE, &json!({"parameters": {"expense_id": id}}))
        .await
        .expect_status(200)
        .json();
    assert_eq!(answer, json!({"expense_id": id, "status": "APPROVED"}));
    assert_eq!(oc.expense(id).unwrap().status, "APPROVED");

    let requests = oc.requests();
    let ops: Vec<&str> = requests.iter().map(|r| r.operation.as_str()).collect();
    let first_call = ops
        .iter()
        .position(|op| *op == "expense")
        .expect("a lookup");
    assert_eq!(ops[first_call..], ["expense", "processExpense"], "{ops:?}");
    for r in &requests[first_call..] {
        assert_eq!(r.header("personal-token"), Some(TOKEN));
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
    }
    let mutation = &requests[first_call + 1];
    assert_eq!(
        mutation.variables(),
        &json!({"expense": {"legacyId": id}, "action": "APPROVE", "message": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejecting_passes_the_message_and_the_platforms_refusal_is_a_platform_error() {
    let (node, oc) = setup("oc-reject", None).await;
    let id = oc.add_expense("green-fund", "Team dinner", 9900, "bob");

    let answer = node
        .post_in(
            "bench",
            REJECT,
            &json!({"parameters": {"expense_id": id, "message": "Not in the budget"}}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(answer, json!({"expense_id": id, "status": "REJECTED"}));
    let expense = oc.expense(id).unwrap();
    assert_eq!(expense.status, "REJECTED");
    assert_eq!(
        expense.messages,
        vec![Some("Not in the budget".to_string())]
    );

    // Open Collective refuses a second rejection with a GraphQL error (HTTP 200).
    let refused = node
        .post_in("bench", REJECT, &json!({"parameters": {"expense_id": id}}))
        .await;
    let err = refused.expect_error(502, "platform_error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("Can not reject expense in current status"),
        "{err}"
    );

    // A paid expense cannot be approved either.
    let paid = oc.add_expense("green-fund", "Old invoice", 100, "carol");
    oc.set_status(paid, "PAID");
    node.post_in(
        "bench",
        APPROVE,
        &json!({"parameters": {"expense_id": paid}}),
    )
    .await
    .expect_error(502, "platform_error");
    assert_eq!(oc.expense(paid).unwrap().status, "PAID");

    // An unknown expense.
    let err = node
        .post_in(
            "bench",
            APPROVE,
            &json!({"parameters": {"expense_id": 999_999}}),
        )
        .await
        .expect_error(502, "platform_error");
    assert!(err["message"].as_str().unwrap().contains("999999"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expense_of_another_collective_is_refused_and_left_alone() {
    let (node, oc) = setup("oc-other-collective", None).await;
    oc.add_account("other-fund", None);
    oc.add_account("green-fund-garden", Some("green-fund"));
    let foreign = oc.add_expense("other-fund", "Not ours", 500, "mallory");

    let err = node
        .post_in(
            "bench",
            APPROVE,
            &json!({"parameters": {"expense_id": foreign}}),
        )
        .await
        .expect_error(400, "expense_not_in_collective");
    assert!(
        err["message"].as_str().unwrap().contains("other-fund"),
        "{err}"
    );
    assert_eq!(oc.expense(foreign).unwrap().status, "PENDING");
    assert!(
        !oc.operations().iter().any(|op| op == "processExpense"),
        "{:?}",
        oc.operations()
    );

    // The collective's own projects are its expenses too.
    let project = oc.add_expense("green-fund-garden", "Compost", 700, "dana");
    node.post_in(
        "bench",
        APPROVE,
        &json!({"parameters": {"expense_id": project}}),
    )
    .await
    .expect_status(200);
    assert_eq!(oc.expense(project).unwrap().status, "APPROVED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_platform_error_that_does_not_leak_the_token() {
    let oc = OpenCollectiveStandin::start("the-real-token").await;
    oc.add_account("green-fund", None);
    let id = oc.add_expense("green-fund", "Seeds", 100, "alice");
    let node = Node::start("oc-bad-token", node_config(None)).await;
    enable(&node, "bench", &settings(&oc, "green-fund", SECRET)).await;

    let resp = node
        .post_in("bench", APPROVE, &json!({"parameters": {"expense_id": id}}))
        .await;
    let err = resp.expect_error(502, "platform_error");
    assert!(err["message"].as_str().unwrap().contains("401"), "{err}");
    assert!(
        !resp.text().contains(TOKEN),
        "the token leaked: {}",
        resp.text()
    );
    assert_eq!(oc.expense(id).unwrap().status, "PENDING");

    // The probe fails the same way, so health says so.
    let health = "/api/v1/communities/bench/plugins/opencollective/health";
    eventually(Duration::from_secs(5), "health failing", || async {
        let h = node.get(health).await.expect_status(200).json();
        (h["status"] == "failing")
            .then_some(())
            .ok_or(h.to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expense_webhooks_with_the_secret_become_driver_events() {
    let sink = Sink::start().await;
    let (node, oc) = setup("oc-webhooks", Some(&sink)).await;
    let id = oc.add_expense("green-fund", "Seeds for the garden", 1250, "alice");
    let path = format!("/api/hooks/bench/opencollective?secret={SECRET_IN_URL}");

    hook(&node, &path, &oc.expense_activity("created", id))
        .await
        .expect_status(200);
    let created = sink
        .wait_for_one(WAIT, "the expense_created event", |r| {
            r.json
                .as_ref()
                .is_some_and(|j| j["event_type"] == "expense_created")
        })
        .await;
    let event = created.json.unwrap();
    assert_fields(
        &event,
        &json!({"community": "bench", "source": "opencollective",
            "initiator": {"user_id": "alice", "provider": "opencollective"}}),
    );
    assert_fields(
        &event["data"],
        &json!({"expense_id": id, "description": "Seeds for the garden", "amount": 1250,
            "currency": "USD", "status": "PENDING", "collective": "green-fund", "payee": "alice"}),
    );

    for (kind, status) in [("approved", "APPROVED"), ("paid", "PAID")] {
        hook(&node, &path, &oc.expense_activity(kind, id))
            .await
            .expect_status(200);
        let event_type = format!("expense_{kind}");
        let got = sink
            .wait_for_one(WAIT, &event_type, |r| {
                r.json
                    .as_ref()
                    .is_some_and(|j| j["event_type"] == event_type)
            })
            .await;
        let data = &got.json.unwrap()["data"];
        assert_eq!(data["status"], status, "{data}");
        assert_eq!(data["expense_id"], id, "{data}");
    }

    // Other activities are accepted without an event.
    hook(
        &node,
        &path,
        &json!({"type": "collective.member.created", "id": 1, "CollectiveId": 1, "data": {}}),
    )
    .await
    .expect_status(200);
    hook(&node, &path, &oc.expense_activity("rejected", id))
        .await
        .expect_status(200);
    sink.wait_for_one(WAIT, "expense_rejected", |r| {
        r.json
            .as_ref()
            .is_some_and(|j| j["event_type"] == "expense_rejected")
    })
    .await;
    let types: Vec<Value> = oc_events(&sink)
        .iter()
        .map(|e| e["event_type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![
            json!("expense_created"),
            json!("expense_approved"),
            json!("expense_paid"),
            json!("expense_rejected")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_without_the_right_secret_are_401_and_forward_nothing() {
    let sink = Sink::start().await;
    let (node, oc) = setup("oc-webhook-secret", Some(&sink)).await;
    let id = oc.add_expense("green-fund", "Seeds", 100, "alice");
    let payload = oc.expense_activity("created", id);

    for path in [
        "/api/hooks/bench/opencollective".to_string(),
        "/api/hooks/bench/opencollective?secret=wrong".to_string(),
        format!("/api/hooks/bench/opencollective?secret={SECRET_IN_URL}x"),
        "/api/hooks/opencollective?secret=wrong".to_string(),
    ] {
        hook(&node, &path, &payload)
            .await
            .expect_error(401, "invalid_signature");
    }

    // A community without a webhook secret refuses every webhook.
    let mut no_secret = settings(&oc, "green-fund", SECRET);
    no_secret.as_object_mut().unwrap().remove("webhook_secret");
    enable(&node, "nosecret", &no_secret).await;
    hook(
        &node,
        "/api/hooks/nosecret/opencollective?secret=",
        &payload,
    )
    .await
    .expect_error(401, "invalid_signature");

    // Then a good one: it is the only event the driver ever sees.
    hook(
        &node,
        &format!("/api/hooks/bench/opencollective?secret={SECRET_IN_URL}"),
        &oc.expense_activity("approved", id),
    )
    .await
    .expect_status(200);
    sink.wait_for_one(WAIT, "the good webhook's event", |r| {
        r.json
            .as_ref()
            .is_some_and(|j| j["event_type"] == "expense_approved")
    })
    .await;
    let events = oc_events(&sink);
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_wide_webhooks_are_routed_by_collective_slug() {
    let sink = Sink::start().await;
    let (node, oc) = setup("oc-routing", Some(&sink)).await;
    oc.add_account("blue-fund", None);
    // As typed by an admin: routing and checks ignore case.
    enable(&node, "blue", &settings(&oc, "Blue-Fund", "blue secret")).await;
    let blue_expense = oc.add_expense("blue-fund", "Paint", 300, "erin");

    let delivered = hook(
        &node,
        "/api/hooks/opencollective?secret=blue%20secret",
        &oc.expense_activity("created", blue_expense),
    )
    .await
    .expect_status(200)
    .json();
    assert_eq!(delivered, json!({"delivered": 1}));
    let event = sink
        .wait_for_one(WAIT, "the routed event", |r| {
            r.json
                .as_ref()
                .is_some_and(|j| j["event_type"] == "expense_created")
        })
        .await
        .json
        .unwrap();
    assert_eq!(event["community"], "blue", "{event}");
    assert_eq!(event["data"]["expense_id"], blue_expense, "{event}");

    // Bench's secret does not open blue's route.
    hook(
        &node,
        &format!("/api/hooks/opencollective?secret={SECRET_IN_URL}"),
        &oc.expense_activity("approved", blue_expense),
    )
    .await
    .expect_error(401, "invalid_signature");

    // A collective nobody follows, and a payload without one, cannot be routed.
    oc.add_account("nobodys-fund", None);
    let stray = oc.add_expense("nobodys-fund", "Stray", 1, "x");
    hook(
        &node,
        "/api/hooks/opencollective?secret=blue%20secret",
        &oc.expense_activity("created", stray),
    )
    .await
    .expect_error(404, "webhook_not_routable");
    hook(
        &node,
        "/api/hooks/opencollective?secret=blue%20secret",
        &json!({"type": "collective.member.created", "data": {}}),
    )
    .await
    .expect_error(404, "webhook_not_routable");
    assert_eq!(oc_events(&sink).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_retry_after_is_retried_and_the_action_succeeds() {
    let (node, oc) = setup("oc-retry", None).await;
    let id = oc.add_expense("green-fund", "Seeds", 100, "alice");
    oc.fail_next(Some("expense"), 1, 503, Some(1));

    let started = Instant::now();
    let answer = node
        .post_in("bench", APPROVE, &json!({"parameters": {"expense_id": id}}))
        .await
        .expect_status(200)
        .json();
    assert_eq!(answer["status"], "APPROVED");
    assert!(started.elapsed() < Duration::from_secs(5));
    let answered: Vec<u16> = oc
        .requests()
        .iter()
        .filter(|r| r.operation != "account")
        .map(|r| r.answered)
        .collect();
    assert_eq!(
        answered,
        vec![503, 200, 200],
        "refused, retried, then the mutation"
    );
    assert_eq!(oc.expense(id).unwrap().status, "APPROVED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_platform_fails_actions_opens_the_breaker_and_shows_in_health() {
    let (node, oc) = setup("oc-failing", None).await;
    let id = oc.add_expense("green-fund", "Seeds", 100, "alice");
    let health = "/api/v1/communities/bench/plugins/opencollective/health";
    eventually(Duration::from_secs(5), "a healthy first report", || async {
        let h = node.get(health).await.expect_status(200).json();
        (h["status"] == "ok").then_some(()).ok_or(h.to_string())
    })
    .await;

    oc.fail_always(500);
    let first = node
        .post_in("bench", APPROVE, &json!({"parameters": {"expense_id": id}}))
        .await;
    assert_eq!(first.status, 503, "{}", first.describe());
    let code = first.error_object()["code"].clone();
    assert!(
        code == "platform_unavailable" || code == "circuit_open",
        "{}",
        first.describe()
    );
    // Keep calling until the breaker refuses without calling.
    eventually(Duration::from_secs(5), "the breaker to open", || async {
        let r = node
            .post_in("bench", APPROVE, &json!({"parameters": {"expense_id": id}}))
            .await;
        let code = r.error_object()["code"].clone();
        (code == "circuit_open").then_some(()).ok_or(r.describe())
    })
    .await;
    let h = eventually(Duration::from_secs(5), "health failing", || async {
        let h = node.get(health).await.expect_status(200).json();
        (h["status"] == "failing" || h["status"] == "degraded")
            .then_some(h.clone())
            .ok_or(h.to_string())
    })
    .await;
    // Failures keep it from closing: open, or half open while a trial call is out.
    assert!(
        ["open", "half_open"].contains(&h["breaker"]["state"].as_str().unwrap_or("")),
        "{h}"
    );
    assert_eq!(oc.expense(id).unwrap().status, "PENDING");

    // Recovery: health returns to ok and the action goes through.
    oc.recover();
    eventually(Duration::from_secs(10), "health back to ok", || async {
        let h = node.get(health).await.expect_status(200).json();
        (h["status"] == "ok" && h["breaker"]["state"] == "closed")
            .then_some(())
            .ok_or(h.to_string())
    })
    .await;
    node.post_in("bench", APPROVE, &json!({"parameters": {"expense_id": id}}))
        .await
        .expect_status(200);
}

/// Issue 13 §4: Open Collective sends no delivery header; the activity's `id` names the
/// delivery, so the same activity posted again is 200 and makes no second driver event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_activity_is_taken_once() {
    let sink = Sink::start().await;
    let (node, oc) = setup("oc-replays", Some(&sink)).await;
    let id = oc.add_expense("green-fund", "Seeds", 1250, "alice");
    let path = format!("/api/hooks/bench/opencollective?secret={SECRET_IN_URL}");
    let activity = oc.expense_activity("created", id);
    for _ in 0..3 {
        hook(&node, &path, &activity).await.expect_status(200);
    }
    sink.wait_for(WAIT, "the event", |_| !oc_events(&sink).is_empty())
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(oc_events(&sink).len(), 1);
    // The next activity about the same expense is a new delivery.
    hook(&node, &path, &oc.expense_activity("approved", id))
        .await
        .expect_status(200);
    sink.wait_for(WAIT, "the second event", |_| oc_events(&sink).len() >= 2)
        .await;
}
