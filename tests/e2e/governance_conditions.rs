//! Conditions through HTTP on a node with a manual clock (contract section 7), and notices
//! delivered to subscriptions (section 5): a vote condition opens a real `vote.proposal`
//! process, whose close implements or rejects the waiting action exactly once; timeouts are
//! durable reminders that fire when the clock passes them; a consensus cannot be resolved too
//! early; `action_updated` events reach the driver; notices reach subscribers through the
//! signed outbox, in order, and only what they may read.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::governance_api::Gov;
use crate::harness::{Node, NodeConfig, Recorded, Sink, WAIT};

/// 2030-01-01T00:00:00Z.
pub const START: u64 = 1_893_456_000_000;
pub const HOUR: u64 = 3_600_000;
const SECRET: &str = "governance-signing-secret";

pub fn manual_node(sink: &Sink) -> NodeConfig {
    NodeConfig::dev()
        .arg("--manual-clock")
        .arg(&START.to_string())
        .driver(sink.url("/events"))
        .signing_secret(SECRET)
}

pub async fn advance(node: &Node, ms: u64) {
    node.post("/api/internal/dev/clock", &json!({ "advance_ms": ms }))
        .await
        .expect_status(200);
}

/// The driver events `action_updated` about action `id`, in the order received.
pub fn action_events(reqs: &[Recorded], id: &Value) -> Vec<Value> {
    reqs.iter()
        .filter_map(|r| r.json.clone())
        .filter(|e| e["event_type"] == "action_updated" && e["data"]["id"] == *id)
        .map(|e| e["data"].clone())
        .collect()
}

/// Waits until action `id` reads `status`.
pub async fn wait_status(gov: &Gov<'_>, id: &Value, status: &str) -> Value {
    crate::harness::eventually(WAIT, &format!("action {id} to be {status}"), || async {
        let a = gov.action(id).await;
        if a["status"] == status {
            Ok(a)
        } else {
            Err(format!("{a}"))
        }
    })
    .await
}

/// A community of members who own and govern it through a majority vote.
pub async fn voting_members<'a>(node: &'a Node, slug: &str) -> Gov<'a> {
    let gov = Gov::community(node, slug).await;
    gov.found(
        "ana",
        json!({"template": "voting_members", "members": ["ben", "cy"], "duration_hours": 24}),
    )
    .await;
    gov
}

pub async fn ballot(node: &Node, process: &str, voter: &str, choice: &str) {
    node.post(
        &format!("{process}/ballots"),
        &json!({"voter": voter, "choice": choice}),
    )
    .await
    .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_condition_opens_a_real_vote_whose_close_implements_the_action_once() {
    let sink = Sink::start().await;
    let node = Node::start("gov-vote", manual_node(&sink)).await;
    let gov = voting_members(&node, "town").await;

    let add = gov
        .act(
            "ben",
            "add_members",
            "community",
            json!({"agents": ["dee"]}),
        )
        .await;
    assert_eq!(add["status"], "waiting", "{add}");
    let cond = &add["conditions"][0];
    assert_eq!(cond["type"], "vote");
    let process = cond["process"]
        .as_str()
        .expect("the vote's process")
        .to_string();
    assert!(
        process.starts_with("/api/internal/process/vote.proposal/"),
        "{process}"
    );
    // The vote is a real process: open, with the members frozen as its voters.
    let open = crate::harness::eventually(WAIT, "the vote to open", || async {
        let r = node.get(&process).await;
        if r.status == 200 {
            Ok(r.json())
        } else {
            Err(r.describe())
        }
    })
    .await;
    assert_eq!(open["status"], "pending", "{open}");
    ballot(&node, &process, "ana", "agree").await;
    ballot(&node, &process, "ben", "agree").await;
    // A stranger is no voter.
    node.post(
        &format!("{process}/ballots"),
        &json!({"voter": "dee", "choice": "agree"}),
    )
    .await
    .expect_error(403, "ineligible_voter");
    // Nothing happens before the vote closes.
    advance(&node, 23 * HOUR).await;
    assert_eq!(gov.action(&add["id"]).await["status"], "waiting");
    // The clock passes the vote's end: it closes, its outcome reaches the action.
    advance(&node, HOUR + 1000).await;
    let done = wait_status(&gov, &add["id"], "implemented").await;
    assert_eq!(
        done["route"], "foundational",
        "the members role gives ownership"
    );
    assert_eq!(done["resolution"]["by"], "vote", "{done}");
    assert!(gov.constitution().await["members"]
        .as_array()
        .unwrap()
        .contains(&json!("dee")));
    let closed = node.get(&process).await.expect_status(200).json();
    assert_eq!(closed["status"], "completed");

    // A vote that fails rejects its action with condition_rejected.
    let drop = gov
        .act(
            "cy",
            "remove_members",
            "community",
            json!({"agents": ["ben"]}),
        )
        .await;
    assert_eq!(drop["status"], "waiting", "{drop}");
    let p2 = drop["conditions"][0]["process"]
        .as_str()
        .unwrap()
        .to_string();
    crate::harness::eventually(WAIT, "the second vote to open", || async {
        let r = node.get(&p2).await;
        if r.status == 200 {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await;
    for v in ["ana", "ben", "dee"] {
        ballot(&node, &p2, v, "disagree").await;
    }
    advance(&node, 25 * HOUR).await;
    let rejected = wait_status(&gov, &drop["id"], "rejected").await;
    assert_eq!(rejected["reason_code"], "condition_rejected");

    // The driver heard each change of the first action, and its implementation once.
    let reqs = sink
        .wait_for(WAIT, "the action_updated events", |reqs| {
            action_events(reqs, &add["id"])
                .iter()
                .any(|a| a["status"] == "implemented")
        })
        .await;
    let events = action_events(&reqs, &add["id"]);
    assert_eq!(events.first().unwrap()["status"], "waiting");
    assert_eq!(
        events
            .iter()
            .filter(|a| a["status"] == "implemented")
            .count(),
        1,
        "{events:?}"
    );
    let entries = crate::governance_api::verify_log(&gov).await;
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["kind"] == "resolution" && e["action"] == add["id"])
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_fire_when_the_clock_passes_them_and_consensus_waits_its_minimum() {
    let sink = Sink::start().await;
    let node = Node::start("gov-timeouts", manual_node(&sink)).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;

    // A proposal times out after 168 hours.
    let rename = gov
        .act("ben", "rename", "community", json!({"name": "b"}))
        .await;
    assert_eq!(rename["status"], "waiting");
    advance(&node, 167 * HOUR).await;
    assert_eq!(gov.action(&rename["id"]).await["status"], "waiting");
    advance(&node, HOUR).await;
    let timed_out = wait_status(&gov, &rename["id"], "rejected").await;
    assert_eq!(timed_out["reason_code"], "timed_out", "{timed_out}");

    // An approval with its own timeout that approves when it passes.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "add_members", "actors": ["ben"],
               "condition": {"type": "approval", "approvers": {"actors": ["cy"]},
                             "timeout_hours": 2, "on_timeout": "approve"}}),
    )
    .await;
    let add = gov
        .act(
            "ben",
            "add_members",
            "community",
            json!({"agents": ["dee"]}),
        )
        .await;
    assert_eq!(add["status"], "waiting", "{add}");
    assert_eq!(add["route"], "specific");
    advance(&node, 2 * HOUR).await;
    wait_status(&gov, &add["id"], "implemented").await;

    // A consensus cannot be resolved before its minimum.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["cy"],
               "condition": {"type": "consensus", "participants": {"actors": ["ana", "ben"]},
                             "minimum_hours": 48, "resolvers": {"actors": ["ana"]}}}),
    )
    .await;
    let r = gov
        .act("cy", "rename", "community", json!({"name": "c"}))
        .await;
    assert_eq!(r["status"], "waiting", "{r}");
    let cid = r["conditions"][0]["id"].as_str().unwrap().to_string();
    let support = gov
        .act(
            "ben",
            "respond",
            &format!("condition:{cid}"),
            json!({"response": "support"}),
        )
        .await;
    assert_eq!(support["status"], "implemented", "{support}");
    gov.post_action(
        "ana",
        &json!({"change": "resolve", "target": format!("condition:{cid}"), "params": {}}),
    )
    .await
    .expect_error(409, "too_early");
    advance(&node, 48 * HOUR).await;
    let resolved = gov
        .act("ana", "resolve", &format!("condition:{cid}"), json!({}))
        .await;
    assert_eq!(resolved["status"], "implemented", "{resolved}");
    wait_status(&gov, &r["id"], "implemented").await;
    // A vote condition may not carry a timeout.
    gov.post_action(
        "ana",
        &json!({"change": "add_condition", "target": "governors",
                "params": {"condition": {"type": "vote", "method": "proposal", "timeout_hours": 3}}}),
    )
    .await
    .expect_error(400, "invalid_params");
    crate::governance_api::verify_log(&gov).await;
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_the_notices_they_may_read_signed_and_in_order() {
    let sink = Sink::start().await;
    let node = Node::start("gov-notices", manual_node(&sink)).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben"]})).await;
    let doc = gov
        .create_item(
            "ana",
            "community",
            "document",
            json!({"name": "n", "body": "0"}),
        )
        .await;
    // Only https URLs, or http on loopback on a --dev node.
    gov.send(
        reqwest::Method::POST,
        Some("ben"),
        "/subscriptions",
        Some(&json!({"item": doc, "deliver_to": "http://example.org/x"})),
    )
    .await
    .expect_error(400, "invalid_params");
    gov.send(
        reqwest::Method::POST,
        None,
        "/subscriptions",
        Some(&json!({"item": doc, "deliver_to": sink.url("/ben")})),
    )
    .await
    .expect_error(400, "missing_header");
    gov.send(
        reqwest::Method::POST,
        Some("stranger"),
        "/subscriptions",
        Some(&json!({"item": doc, "deliver_to": sink.url("/stranger")})),
    )
    .await
    .expect_error(404, "unknown_target");
    let sub = gov
        .send(
            reqwest::Method::POST,
            Some("ben"),
            "/subscriptions",
            Some(&json!({"item": doc, "deliver_to": sink.url("/ben")})),
        )
        .await
        .expect_status(201)
        .json();
    assert_eq!(sub["item"], json!(doc));
    let mine = gov
        .get(Some("ben"), "/subscriptions")
        .await
        .expect_status(200)
        .json();
    assert_eq!(mine["subscriptions"].as_array().unwrap().len(), 1);

    for n in 1..=5 {
        gov.act(
            "ana",
            "edit_item",
            &format!("item:{doc}"),
            json!({"fields": {"body": n.to_string()}}),
        )
        .await;
    }
    let reqs = sink
        .wait_for(WAIT, "five notices to Ben", |reqs| {
            reqs.iter().filter(|r| r.path == "/ben").count() >= 5
        })
        .await;
    let to_ben: Vec<&Recorded> = reqs.iter().filter(|r| r.path == "/ben").collect();
    let versions: Vec<u64> = to_ben
        .iter()
        .map(|r| {
            r.json.as_ref().unwrap()["notice"]["version"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(versions, vec![2, 3, 4, 5, 6], "in order, each once");
    for r in &to_ben {
        let sig = r.header("x-agora-signature").expect("signed");
        assert_eq!(sig, format!("sha256={}", hmac_hex(SECRET, &r.body)));
        assert_eq!(r.json.as_ref().unwrap()["notice"]["kind"], "edit");
    }

    // Once Ben may no longer read the item's notices, nothing more goes to him.
    gov.act(
        "ana",
        "add_permission",
        &format!("item:{doc}"),
        json!({"ability": "view action_notices", "actors": ["ana"]}),
    )
    .await;
    gov.get(Some("ben"), &format!("/items/{doc}/notices"))
        .await
        .expect_error(403, "not_permitted");
    gov.get(Some("ana"), &format!("/items/{doc}/notices"))
        .await
        .expect_status(200);
    gov.act(
        "ana",
        "edit_item",
        &format!("item:{doc}"),
        json!({"fields": {"body": "secret"}}),
    )
    .await;
    // The event for that edit is committed with its (absent) delivery: once the driver heard
    // of the action, any delivery would have been queued too.
    sink.wait_for(WAIT, "the last edit's event", |reqs| {
        reqs.iter().any(|r| {
            r.json.as_ref().is_some_and(|j| {
                j["event_type"] == "action_updated"
                    && j["data"]["params"]["fields"]["body"] == "secret"
            })
        })
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        sink.requests().iter().filter(|r| r.path == "/ben").count(),
        5
    );
    gov.send(
        reqwest::Method::DELETE,
        Some("ben"),
        &format!("/subscriptions/{doc}"),
        None,
    )
    .await
    .expect_status(204);
    gov.send(
        reqwest::Method::DELETE,
        Some("ben"),
        &format!("/subscriptions/{doc}"),
        None,
    )
    .await
    .expect_error(404, "subscription_not_found");
}

/// The README's worked example, step by step: Concord's members own their community through a
/// 66 % vote and elect its board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_members_elect_their_board_through_a_vote() {
    let sink = Sink::start().await;
    let node = Node::start("gov-readme", manual_node(&sink)).await;
    let gov = Gov::community(&node, "concord").await;
    let c = gov
        .found(
            "charles",
            json!({"template": "members_and_board", "board": ["charles", "diego", "elsa"],
                   "threshold": 66, "duration_hours": 72,
                   "members": ["anne", "betty", "diego", "elsa"]}),
        )
        .await;
    assert_eq!(c["governors"]["roles"], json!(["board"]));
    let forum = gov
        .act(
            "charles",
            "create_item",
            "community",
            json!({"type": "collection", "fields": {"name": "forum"}}),
        )
        .await;
    assert_eq!(
        (forum["route"].clone(), forum["status"].clone()),
        (json!("governing"), json!("implemented"))
    );
    let rename = gov
        .act("betty", "rename", "community", json!({"name": "Concordia"}))
        .await;
    assert_eq!(rename["status"], "waiting");
    assert_eq!(
        rename["conditions"][0]["id"], "1",
        "the README approves condition:1"
    );
    let yes = gov
        .act("charles", "approve", "condition:1", json!({}))
        .await;
    assert_eq!(yes["status"], "implemented");
    assert_eq!(gov.constitution().await["name"], "Concordia");

    let elect = gov
        .act(
            "diego",
            "add_people_to_role",
            "role:board",
            json!({"agents": ["anne"]}),
        )
        .await;
    assert_eq!(elect["status"], "waiting", "{elect}");
    assert_eq!(elect["route"], "foundational");
    let process = elect["conditions"][0]["process"]
        .as_str()
        .unwrap()
        .to_string();
    crate::harness::eventually(WAIT, "the election to open", || async {
        let r = node.get(&process).await;
        if r.status == 200 {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await;
    for voter in ["charles", "anne", "betty", "diego"] {
        ballot(&node, &process, voter, "agree").await;
    }
    ballot(&node, &process, "elsa", "disagree").await;
    advance(&node, 72 * HOUR + 1000).await;
    wait_status(&gov, &elect["id"], "implemented").await;
    let board = gov.constitution().await["roles"]["board"]["actors"].clone();
    assert!(
        board.as_array().unwrap().contains(&json!("anne")),
        "{board}"
    );
    // Anne now governs: her change is implemented at once.
    let by_anne = gov
        .act("anne", "rename", "community", json!({"name": "Concord"}))
        .await;
    assert_eq!(by_anne["status"], "implemented");
    crate::governance_api::verify_log(&gov).await;
}

/// Conditions stacked on one grant are AND-ed, grants are OR-ed, a batch waits on every
/// condition its changes wait on, an actor never approves their own action, and roles and
/// filters decided by time (`member_for_hours`, `rate_limit`) follow the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_or_conditions_and_and_time_decides_roles_and_rate_limits() {
    let sink = Sink::start().await;
    let node = Node::start("gov-grants", manual_node(&sink)).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;
    let approval = |who: &str| json!({"type": "approval", "approvers": {"actors": [who]}});
    // Roles first: once permissions name `add_role`, they alone decide it.
    gov.act("ana", "add_role", "community", json!({"name": "helpers"}))
        .await;
    // An automated role: veterans are members of 30 days.
    gov.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "veterans", "rule": {"member_for_hours": 720}}),
    )
    .await;
    gov.act(
        "ana",
        "add_permission",
        "role:helpers",
        json!({"ability": "add_people_to_role", "roles": ["veterans"]}),
    )
    .await;

    // AND: one grant with two conditions needs both.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["ben"],
               "conditions": [approval("ana"), approval("cy")]}),
    )
    .await;
    let r = gov
        .act("ben", "rename", "community", json!({"name": "and"}))
        .await;
    assert_eq!(r["conditions"].as_array().unwrap().len(), 2, "{r}");
    gov.answer("ana", "approve", &r["conditions"][0]["id"])
        .await;
    assert_eq!(gov.action(&r["id"]).await["status"], "waiting");
    gov.answer("cy", "approve", &r["conditions"][1]["id"]).await;
    assert_eq!(gov.action(&r["id"]).await["status"], "implemented");

    // OR: two grants at one level; the first approved implements, the other is closed.
    for who in ["ana", "cy"] {
        gov.act(
            "ana",
            "add_permission",
            "community",
            json!({"ability": "add_role", "actors": ["ben"], "condition": approval(who)}),
        )
        .await;
    }
    let r = gov
        .act("ben", "add_role", "community", json!({"name": "or"}))
        .await;
    assert_eq!(r["conditions"].as_array().unwrap().len(), 2, "{r}");
    let cy_cond = r["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] != r["conditions"][0]["id"])
        .unwrap()["id"]
        .clone();
    gov.answer("cy", "approve", &cy_cond).await;
    let done = gov.action(&r["id"]).await;
    assert_eq!(done["status"], "implemented", "{done}");
    assert!(done["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["status"] == "closed"));

    // A batch of two proposals waits on one governors' approval, implemented together.
    let batch = gov
        .post_action(
            "cy",
            &json!({"batch": [
                {"change": "add_members", "target": "community", "params": {"agents": ["dee"]}},
                {"change": "set_proposals", "target": "community", "params": {"enabled": true}},
            ]}),
        )
        .await
        .expect_status(201)
        .json();
    // set_proposals is foundational: cy is no owner, so the whole batch is rejected.
    assert_eq!(batch["status"], "rejected", "{batch}");
    let batch = gov
        .post_action(
            "cy",
            &json!({"batch": [
                {"change": "add_members", "target": "community", "params": {"agents": ["dee"]}},
                {"change": "add_members", "target": "community", "params": {"agents": ["eve"]}},
            ]}),
        )
        .await
        .expect_status(201)
        .json();
    assert_eq!(batch["status"], "waiting", "{batch}");
    assert_eq!(batch["conditions"].as_array().unwrap().len(), 1);
    gov.answer("ana", "approve", &batch["conditions"][0]["id"])
        .await;
    let members = gov.constitution().await["members"].clone();
    assert!(members.as_array().unwrap().contains(&json!("dee")));
    assert!(members.as_array().unwrap().contains(&json!("eve")));

    // Without self_approval, Ben may not approve his own action even when named.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "remove_members", "actors": ["ben"],
               "condition": {"type": "approval", "approvers": {"actors": ["ben", "ana"]}}}),
    )
    .await;
    let r = gov
        .act(
            "ben",
            "remove_members",
            "community",
            json!({"agents": ["eve"]}),
        )
        .await;
    let own = gov
        .answer("ben", "approve", &r["conditions"][0]["id"])
        .await;
    assert_eq!(own["status"], "rejected");
    assert_eq!(own["reason_code"], "not_permitted");
    gov.answer("ana", "approve", &r["conditions"][0]["id"])
        .await;
    assert_eq!(gov.action(&r["id"]).await["status"], "implemented");

    // The veterans' role, decided by time.
    let early = gov
        .act(
            "dee",
            "add_people_to_role",
            "role:helpers",
            json!({"agents": ["dee"]}),
        )
        .await;
    assert_eq!(early["status"], "rejected", "{early}");
    advance(&node, 720 * HOUR).await;
    let later = gov
        .act(
            "dee",
            "add_people_to_role",
            "role:helpers",
            json!({"agents": ["dee"]}),
        )
        .await;
    assert_eq!(later["status"], "implemented", "{later}");

    // A rate limit: one rename a day.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["cy"],
               "condition": {"type": "rate_limit", "count": 1, "per_hours": 24}}),
    )
    .await;
    let first = gov
        .act("cy", "rename", "community", json!({"name": "one"}))
        .await;
    assert_eq!(first["status"], "implemented", "{first}");
    let second = gov
        .act("cy", "rename", "community", json!({"name": "two"}))
        .await;
    assert_eq!(second["status"], "rejected", "{second}");
    advance(&node, 24 * HOUR).await;
    let third = gov
        .act("cy", "rename", "community", json!({"name": "three"}))
        .await;
    assert_eq!(third["status"], "implemented", "{third}");
    crate::governance_api::verify_log(&gov).await;
}

/// What each subscription flag reaches: `deep` everything inside, `members` only direct
/// members, `relations` the pointer notices on the item itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_flags_choose_which_notices_arrive() {
    let sink = Sink::start().await;
    let node = Node::start("gov-sub-flags", manual_node(&sink)).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;
    let shelf = gov
        .create_item("ana", "community", "collection", json!({"name": "shelf"}))
        .await;
    for (agent, flags) in [
        ("ben", json!({"deep": true})),
        ("cy", json!({"members": true})),
        (
            "ana",
            json!({"relations": true, "edit": false, "delete": false, "comments": false}),
        ),
    ] {
        let mut body = flags;
        body["item"] = json!(shelf);
        body["deliver_to"] = json!(sink.url(&format!("/{agent}")));
        gov.send(
            reqwest::Method::POST,
            Some(agent),
            "/subscriptions",
            Some(&body),
        )
        .await
        .expect_status(201);
    }
    let boxed = gov
        .create_item(
            "ana",
            &format!("item:{shelf}"),
            "collection",
            json!({"name": "box"}),
        )
        .await;
    let doc_action = gov
        .act(
            "ana",
            "create_item",
            &format!("item:{boxed}"),
            json!({"type": "document", "fields": {"name": "doc"}}),
        )
        .await;
    let doc = Gov::created(&doc_action);
    // The last creation's event is committed with its deliveries: once the driver has it,
    // every delivery is queued; give them a moment to arrive.
    sink.wait_for(WAIT, "the deliveries", |reqs| {
        let n = |p: &str| reqs.iter().filter(|r| r.path == p).count();
        n("/ben") >= 2 && n("/cy") >= 1 && n("/ana") >= 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let got = |path: &str| -> Vec<(String, String)> {
        sink.requests()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| {
                let n = &r.json.as_ref().unwrap()["notice"];
                (
                    n["kind"].as_str().unwrap().to_string(),
                    n["item"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        got("/ben"),
        vec![
            ("create".to_string(), boxed.clone()),
            ("create".to_string(), doc.clone())
        ],
        "deep: everything inside"
    );
    assert_eq!(
        got("/cy"),
        vec![("create".to_string(), boxed.clone())],
        "members: direct only"
    );
    let ana = sink
        .requests()
        .into_iter()
        .filter(|r| r.path == "/ana")
        .map(|r| r.json.unwrap()["notice"].clone())
        .collect::<Vec<_>>();
    assert_eq!(ana.len(), 1, "{ana:?}");
    assert_eq!(ana[0]["kind"], "relation");
    assert_eq!(ana[0]["item"], json!(shelf));
    assert_eq!(ana[0]["from_item"], json!(boxed));
    assert_eq!(ana[0]["field"], "container");
}

/// `respond` to consensus condition `cid` as `agent`; the answer action.
async fn respond(gov: &Gov<'_>, agent: &str, cid: &str, response: &str) -> Value {
    gov.act(
        agent,
        "respond",
        &format!("condition:{cid}"),
        json!({ "response": response }),
    )
    .await
}

/// Consensus, loose and strict, through HTTP (section 7): a block rejects, responses change
/// until resolved, only participants respond and only resolvers resolve, the actor is no
/// participant of their own action; strict also needs every participant's response; and a
/// consensus times out either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_loose_and_strict_blocks_and_timeouts() {
    let sink = Sink::start().await;
    let node = Node::start("gov-consensus", manual_node(&sink)).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy", "dee"]}))
        .await;
    let consensus = |strict: bool, extra: Value| {
        let mut c = json!({"type": "consensus", "participants": {"actors": ["ben", "cy", "dee"]},
                           "minimum_hours": 1, "strict": strict, "resolvers": {"actors": ["ana"]}});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // Loose, for Cy's renames.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["cy"], "condition": consensus(false, json!({}))}),
    )
    .await;
    let start = |name: &'static str| {
        let gov = &gov;
        async move {
            let r = gov
                .act("cy", "rename", "community", json!({ "name": name }))
                .await;
            assert_eq!(r["status"], "waiting", "{r}");
            assert_eq!(r["conditions"][0]["type"], "consensus");
            (
                r["id"].clone(),
                r["conditions"][0]["id"].as_str().unwrap().to_string(),
            )
        }
    };
    let (blocked, cid) = start("blocked").await;
    assert_eq!(
        respond(&gov, "ben", &cid, "support").await["status"],
        "implemented"
    );
    assert_eq!(
        respond(&gov, "dee", &cid, "block").await["status"],
        "implemented"
    );
    // The action's own actor is no participant (self_approval is false by default), nor is
    // anyone the condition does not name; a response that is not one of the four is bad input.
    let own = respond(&gov, "cy", &cid, "support").await;
    assert_eq!(
        (&own["status"], &own["reason_code"]),
        (&json!("rejected"), &json!("not_permitted"))
    );
    let outsider = respond(&gov, "ana", &cid, "support").await;
    assert_eq!(outsider["reason_code"], "not_permitted", "{outsider}");
    gov.post_action(
        "ben",
        &json!({"change": "respond", "target": format!("condition:{cid}"),
                "params": {"response": "maybe"}}),
    )
    .await
    .expect_error(400, "invalid_params");
    advance(&node, HOUR).await;
    // Only a resolver resolves.
    let by_ben = gov
        .act("ben", "resolve", &format!("condition:{cid}"), json!({}))
        .await;
    assert_eq!(by_ben["reason_code"], "not_permitted", "{by_ben}");
    let resolved = gov
        .act("ana", "resolve", &format!("condition:{cid}"), json!({}))
        .await;
    assert_eq!(resolved["status"], "implemented", "{resolved}");
    let a = gov.action(&blocked).await;
    assert_eq!(
        (&a["status"], &a["reason_code"]),
        (&json!("rejected"), &json!("condition_rejected")),
        "one block rejects a loose consensus: {a}"
    );
    // Responses change until resolved: Dee's block becomes a stand-aside; Ben supports with
    // reservations, which is support; Cy's silence does not count (loose).
    let (passed, cid) = start("passed").await;
    respond(&gov, "dee", &cid, "block").await;
    respond(&gov, "ben", &cid, "support_with_reservations").await;
    respond(&gov, "dee", &cid, "stand_aside").await;
    advance(&node, HOUR).await;
    gov.act("ana", "resolve", &format!("condition:{cid}"), json!({}))
        .await;
    let a = gov.action(&passed).await;
    assert_eq!(a["status"], "implemented", "{a}");
    assert_eq!(gov.constitution().await["name"], "passed");
    // Once resolved, responses are closed.
    gov.post_action(
        "dee",
        &json!({"change": "respond", "target": format!("condition:{cid}"),
                "params": {"response": "block"}}),
    )
    .await
    .expect_error(409, "not_waiting");
    // Loose without any support: everyone stood aside, so it is rejected.
    let (aside, cid) = start("aside").await;
    respond(&gov, "ben", &cid, "stand_aside").await;
    respond(&gov, "dee", &cid, "stand_aside").await;
    advance(&node, HOUR).await;
    gov.act("ana", "resolve", &format!("condition:{cid}"), json!({}))
        .await;
    assert_eq!(gov.action(&aside).await["status"], "rejected");

    // Strict, for Cy's member additions: every participant (but the actor) must respond.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "add_members", "actors": ["cy"], "condition": consensus(true, json!({}))}),
    )
    .await;
    let add = |who: &'static str| {
        let gov = &gov;
        async move {
            let r = gov
                .act("cy", "add_members", "community", json!({ "agents": [who] }))
                .await;
            assert_eq!(r["status"], "waiting", "{r}");
            (
                r["id"].clone(),
                r["conditions"][0]["id"].as_str().unwrap().to_string(),
            )
        }
    };
    let (silent, cid) = add("eve").await;
    respond(&gov, "ben", &cid, "support").await;
    advance(&node, HOUR).await;
    gov.act("ana", "resolve", &format!("condition:{cid}"), json!({}))
        .await;
    let a = gov.action(&silent).await;
    assert_eq!(
        (&a["status"], &a["reason_code"]),
        (&json!("rejected"), &json!("condition_rejected")),
        "Dee said nothing: {a}"
    );
    let (all, cid) = add("fay").await;
    respond(&gov, "ben", &cid, "support").await;
    respond(&gov, "dee", &cid, "stand_aside").await;
    advance(&node, HOUR).await;
    gov.act("ana", "resolve", &format!("condition:{cid}"), json!({}))
        .await;
    assert_eq!(gov.action(&all).await["status"], "implemented");
    let (strict_block, cid) = add("gus").await;
    respond(&gov, "ben", &cid, "support").await;
    respond(&gov, "dee", &cid, "block").await;
    advance(&node, HOUR).await;
    gov.act("ana", "resolve", &format!("condition:{cid}"), json!({}))
        .await;
    assert_eq!(gov.action(&strict_block).await["status"], "rejected");
    let members = gov.constitution().await["members"].clone();
    assert!(members.as_array().unwrap().contains(&json!("fay")));
    assert!(!members.as_array().unwrap().contains(&json!("eve")));
    assert!(!members.as_array().unwrap().contains(&json!("gus")));

    // Timeouts: a consensus nobody resolves is resolved by its timeout, rejecting by default
    // (timed_out) or approving with on_timeout approve; an approval nobody answers likewise.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "add_role", "actors": ["cy"],
               "condition": consensus(false, json!({"timeout_hours": 5}))}),
    )
    .await;
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "remove_members", "actors": ["cy"],
               "condition": consensus(true, json!({"timeout_hours": 5, "on_timeout": "approve"}))}),
    )
    .await;
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "add_members", "actors": ["ben"],
               "condition": {"type": "approval", "approvers": {"actors": ["ana"]},
                             "timeout_hours": 5}}),
    )
    .await;
    let role = gov
        .act("cy", "add_role", "community", json!({"name": "late"}))
        .await;
    let cid = role["conditions"][0]["id"].as_str().unwrap().to_string();
    respond(&gov, "ben", &cid, "support").await;
    let removal = gov
        .act(
            "cy",
            "remove_members",
            "community",
            json!({"agents": ["fay"]}),
        )
        .await;
    let approval = gov
        .act(
            "ben",
            "add_members",
            "community",
            json!({"agents": ["hal"]}),
        )
        .await;
    for a in [&role, &removal, &approval] {
        assert_eq!(a["status"], "waiting", "{a}");
    }
    advance(&node, 5 * HOUR - 1).await;
    for a in [&role, &removal, &approval] {
        assert_eq!(gov.action(&a["id"]).await["status"], "waiting");
    }
    advance(&node, 1).await;
    let r = wait_status(&gov, &role["id"], "rejected").await;
    assert_eq!(r["reason_code"], "timed_out", "even with a support: {r}");
    wait_status(&gov, &removal["id"], "implemented").await;
    let r = wait_status(&gov, &approval["id"], "rejected").await;
    assert_eq!(r["reason_code"], "timed_out", "{r}");
    assert!(!gov.constitution().await["members"]
        .as_array()
        .unwrap()
        .contains(&json!("fay")));
    crate::governance_api::verify_log(&gov).await;
}

/// Filter conditions through HTTP (section 7): each decides at once, never waits, and a
/// failing filter is no match, so the walk goes on to the next level (here a deny for everyone
/// at level 9, or nothing: then the unmatched agent is refused on the specific route).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_decide_at_once_and_a_failing_filter_lets_the_walk_go_on() {
    let node = Node::start("gov-filters", NodeConfig::dev()).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;
    let create = |agent: &'static str, typ: &'static str, name: &'static str| {
        let gov = &gov;
        async move {
            let a = gov
                .act(
                    agent,
                    "create_item",
                    "community",
                    json!({"type": typ, "fields": {"name": name}}),
                )
                .await;
            assert_eq!(a["status"], "implemented", "{a}");
            Gov::created(&a)
        }
    };
    let perm = |target: &'static str, params: Value| {
        let gov = &gov;
        async move {
            let a = gov.act("ana", "add_permission", target, params).await;
            assert_eq!(a["status"], "implemented", "{a}");
        }
    };
    let decided = |a: &Value, status: &str, code: Value, level: Value| {
        assert_eq!(
            (&a["status"], &a["reason_code"], &a["level"]),
            (&json!(status), &code, &level),
            "{a}"
        );
        assert_eq!(a["conditions"], json!([]), "filters never wait: {a}");
    };
    let open = create("ana", "document", "open").await;
    let shut = create("ana", "document", "shut").await;
    let shelf = create("ana", "collection", "shelf").await;

    // field_matches: Ben edits the descriptions of items named "open" (level 3); a deny for
    // everyone at level 9 decides the others.
    perm(
        "community",
        json!({"ability": "edit description", "actors": ["ben"], "applies_to": "members",
               "condition": {"type": "field_matches", "field": "name", "value": "open"}}),
    )
    .await;
    perm(
        "community",
        json!({"ability": "edit description", "anyone": true, "applies_to": "members",
               "allow": false}),
    )
    .await;
    let edit = |id: &String| {
        json!({"change": "edit_item", "target": format!("item:{id}"),
               "params": {"fields": {"description": "by ben"}}})
    };
    let ok = gov.post_action("ben", &edit(&open)).await.json();
    decided(&ok, "implemented", Value::Null, json!(3));
    let no = gov.post_action("ben", &edit(&shut)).await.json();
    decided(&no, "rejected", json!("denied"), json!(9));

    // target_type: Ben comments on documents only; on a collection the permission does not
    // match, and nothing else applies to him, so he is refused (not_permitted).
    perm(
        "community",
        json!({"ability": "comment", "actors": ["ben"], "applies_to": "members",
               "condition": {"type": "target_type", "types": ["document"]}}),
    )
    .await;
    let on_doc = gov
        .act(
            "ben",
            "comment",
            &format!("item:{open}"),
            json!({"body": "hi"}),
        )
        .await;
    decided(&on_doc, "implemented", Value::Null, json!(3));
    let on_shelf = gov
        .act(
            "ben",
            "comment",
            &format!("item:{shelf}"),
            json!({"body": "hi"}),
        )
        .await;
    decided(&on_shelf, "rejected", json!("not_permitted"), Value::Null);

    // self_only: anyone may remove themselves, and only themselves.
    perm(
        "community",
        json!({"ability": "remove_members", "anyone": true, "condition": {"type": "self_only"}}),
    )
    .await;
    let other = gov
        .act(
            "ben",
            "remove_members",
            "community",
            json!({"agents": ["cy"]}),
        )
        .await;
    decided(&other, "rejected", json!("not_permitted"), Value::Null);
    let both = gov
        .act(
            "ben",
            "remove_members",
            "community",
            json!({"agents": ["ben", "cy"]}),
        )
        .await;
    assert_eq!(both["status"], "rejected", "{both}");

    // creator_only, for writes and for reads: Cy may create items, edit and view only his own.
    perm(
        "community",
        json!({"ability": "create_item", "actors": ["cy"]}),
    )
    .await;
    perm(
        "community",
        json!({"ability": "edit_item", "actors": ["cy"], "applies_to": "members",
               "condition": {"type": "creator_only"}}),
    )
    .await;
    perm(
        "community",
        json!({"ability": "view", "actors": ["cy"], "applies_to": "members",
               "condition": {"type": "creator_only"}}),
    )
    .await;
    let mine = create("cy", "document", "cy's").await;
    let own = gov
        .act(
            "cy",
            "edit_item",
            &format!("item:{mine}"),
            json!({"fields": {"body": "mine"}}),
        )
        .await;
    decided(&own, "implemented", Value::Null, json!(3));
    let not_own = gov
        .act(
            "cy",
            "edit_item",
            &format!("item:{open}"),
            json!({"fields": {"body": "cy's now"}}),
        )
        .await;
    decided(&not_own, "rejected", json!("not_permitted"), Value::Null);
    gov.get(Some("cy"), &format!("/items/{mine}"))
        .await
        .expect_status(200);
    gov.get(Some("cy"), &format!("/items/{open}"))
        .await
        .expect_error(404, "item_not_found");
    let listed = gov.get(Some("cy"), "/items?limit=1000").await.json();
    let ids: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["id"])
        .collect();
    // Ben, unnamed by the view permission, still reads by it: a view permission applies, so
    // permissions decide, and none matches him.
    gov.get(Some("ben"), &format!("/items/{open}"))
        .await
        .expect_error(404, "item_not_found");
    assert_eq!(ids, vec![&json!(mine)], "cy lists only his own");
    // For reads too a failing filter is no match and the walk goes on: an allow for everyone
    // at level 9 now decides Cy's read of Ana's item.
    perm(
        "community",
        json!({"ability": "view", "anyone": true, "applies_to": "members"}),
    )
    .await;
    gov.get(Some("cy"), &format!("/items/{open}"))
        .await
        .expect_status(200);
    gov.act(
        "ana",
        "add_permission",
        &format!("item:{shut}"),
        json!({"ability": "view", "anyone": true, "allow": false}),
    )
    .await;
    gov.get(Some("cy"), &format!("/items/{shut}"))
        .await
        .expect_error(404, "item_not_found");
    // Last, the only self-removal: Ben leaves.
    let leave = gov
        .act(
            "ben",
            "remove_members",
            "community",
            json!({"agents": ["ben"]}),
        )
        .await;
    decided(&leave, "implemented", Value::Null, json!(7));
    crate::governance_api::verify_log(&gov).await;
}

/// The vote process of a waiting action's first condition, once it is open.
async fn opened(node: &Node, action: &Value) -> String {
    assert_eq!(action["status"], "waiting", "{action}");
    let process = action["conditions"][0]["process"]
        .as_str()
        .unwrap_or_else(|| panic!("a vote process: {action}"))
        .to_string();
    crate::harness::eventually(WAIT, "the vote to open", || async {
        let r = node.get(&process).await;
        if r.status == 200 {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await;
    process
}

/// Section 7, the winner-based methods one by one (approval, ranked, score, dot, quadratic):
/// each condition opens a real `vote.<method>` process with the condition's params, takes that
/// method's own ballot shape, and approves the action exactly when the first option wins; the
/// same ballots with the other option ahead reject it with `condition_rejected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vote_conditions_of_every_winner_method_approve_when_the_first_option_wins() {
    let sink = Sink::start().await;
    let node = Node::start("gov-vote-methods", manual_node(&sink)).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy", "m0", "m1"]}))
        .await;
    gov.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "voters", "actors": ["ana", "ben"]}),
    )
    .await;
    // (ability granted to Cy, method, extra params, Ana's and Ben's ballots when "a" wins;
    // the ballots that make "b" win are the same with "a" and "b" swapped).
    let methods: [(&str, &str, Value, Value, Value); 5] = [
        (
            "rename",
            "approval",
            json!({}),
            json!(["a"]),
            json!(["a", "b"]),
        ),
        (
            "add_members",
            "ranked",
            json!({}),
            json!(["a", "b"]),
            json!(["a"]),
        ),
        (
            "add_role",
            "score",
            json!({}),
            json!({"a": 5, "b": 1}),
            json!({"a": 4, "b": 2}),
        ),
        (
            "remove_members",
            "dot",
            json!({"dots": 8}),
            json!({"a": 6, "b": 2}),
            json!({"a": 5}),
        ),
        (
            "create_item",
            "quadratic",
            json!({"credits": 16}),
            json!({"a": 3}),
            json!({"a": 2, "b": 1}),
        ),
    ];
    let swap = |v: &Value| -> Value {
        let s = v.to_string().replace("\"a\"", "\"#\"");
        let s = s.replace("\"b\"", "\"a\"").replace("\"#\"", "\"b\"");
        serde_json::from_str(&s).unwrap()
    };
    for (ability, method, extra, _, _) in &methods {
        let mut params = json!({"options": ["a", "b"]});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        let a = gov
            .act(
                "ana",
                "add_permission",
                "community",
                json!({"ability": ability, "actors": ["cy"],
                       "condition": {"type": "vote", "method": method, "params": params,
                                     "voters": {"roles": ["voters"]}, "duration_hours": 1}}),
            )
            .await;
        assert_eq!(a["status"], "implemented", "{a}");
    }
    let body = |ability: &str, round: usize| -> (String, Value) {
        match ability {
            "rename" => ("community".into(), json!({"name": format!("town-{round}")})),
            "add_members" => (
                "community".into(),
                json!({"agents": [format!("new-{round}")]}),
            ),
            "add_role" => ("community".into(), json!({"name": format!("r-{round}")})),
            "remove_members" => ("community".into(), json!({"agents": [format!("m{round}")]})),
            _ => (
                "community".into(),
                json!({"type": "collection", "fields": {"name": format!("shelf-{round}")}}),
            ),
        }
    };
    let mut waiting = Vec::new();
    for (round, first_wins) in [(0, true), (1, false)] {
        for (ability, method, _, ana, ben) in &methods {
            let (target, params) = body(ability, round);
            let action = gov.act("cy", ability, &target, params).await;
            let p = opened(&node, &action).await;
            assert!(p.contains(&format!("/vote.{method}/")), "{p}");
            let opened_with = node.get(&p).await.json();
            assert_eq!(opened_with["outcome"]["method"], *method, "{opened_with}");
            for (voter, choice) in [("ana", ana), ("ben", ben)] {
                let choice = if first_wins {
                    choice.clone()
                } else {
                    swap(choice)
                };
                node.post(
                    &format!("{p}/ballots"),
                    &json!({"voter": voter, "choice": choice}),
                )
                .await
                .expect_status(200);
            }
            waiting.push((method.to_string(), action["id"].clone(), first_wins));
        }
    }
    for (method, id, _) in &waiting {
        assert_eq!(gov.action(id).await["status"], "waiting", "{method}");
    }
    advance(&node, HOUR + 1000).await;
    for (method, id, first_wins) in &waiting {
        if *first_wins {
            wait_status(&gov, id, "implemented").await;
        } else {
            let lost = wait_status(&gov, id, "rejected").await;
            assert_eq!(
                lost["reason_code"], "condition_rejected",
                "{method}: {lost}"
            );
        }
    }
    // What the implemented actions did, and what the rejected ones did not.
    let g = gov.constitution().await;
    assert_eq!(g["name"], "town-0", "{g}");
    let roles = g["roles"].as_object().unwrap();
    assert!(
        roles.contains_key("r-0") && !roles.contains_key("r-1"),
        "{g}"
    );
    let members: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        members.contains(&"new-0") && !members.contains(&"new-1"),
        "{g}"
    );
    assert!(!members.contains(&"m0") && members.contains(&"m1"), "{g}");
    crate::governance_api::verify_log(&gov).await;
}

/// Vote conditions of other methods (section 7): `passed` decides consent and count, the
/// winner being the first option decides the others; voters are frozen when the action starts
/// waiting; `duration_hours` takes fractions and defaults to 168; `closing_at` in a vote
/// condition's params is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vote_conditions_of_each_outcome_kind_frozen_voters_and_durations() {
    let sink = Sink::start().await;
    let node = Node::start("gov-vote-kinds", manual_node(&sink)).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy", "dee"]}))
        .await;
    gov.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "voters", "actors": ["ana", "ben"]}),
    )
    .await;
    let grant = |ability: &'static str, vote: Value| {
        let gov = &gov;
        async move {
            let mut cond = json!({"type": "vote", "voters": {"roles": ["voters"]}});
            for (k, v) in vote.as_object().unwrap() {
                cond[k] = v.clone();
            }
            let a = gov
                .act(
                    "ana",
                    "add_permission",
                    "community",
                    json!({"ability": ability, "actors": ["cy"], "condition": cond}),
                )
                .await;
            assert_eq!(a["status"], "implemented", "{a}");
        }
    };
    grant(
        "rename",
        json!({"method": "consent", "duration_hours": 0.5}),
    )
    .await;
    grant(
        "add_members",
        json!({"method": "count", "params": {"target": 2}, "duration_hours": 1}),
    )
    .await;
    grant(
        "add_role",
        json!({"method": "choice", "params": {"options": ["yes", "no"]}, "duration_hours": 1}),
    )
    .await;
    grant("remove_members", json!({"method": "proposal"})).await;

    // consent, half an hour; Dee joins the voters' role after the vote opened: not a voter.
    let consent = gov
        .act("cy", "rename", "community", json!({"name": "consented"}))
        .await;
    let p = opened(&node, &consent).await;
    assert!(p.contains("/vote.consent/"), "{p}");
    gov.act(
        "ana",
        "add_people_to_role",
        "role:voters",
        json!({"agents": ["dee"]}),
    )
    .await;
    node.post(
        &format!("{p}/ballots"),
        &json!({"voter": "dee", "choice": "consent"}),
    )
    .await
    .expect_error(403, "ineligible_voter");
    ballot(&node, &p, "ana", "consent").await;
    ballot(&node, &p, "ben", "stand_aside").await;
    // count (target 2) and choice (first option wins / loses), an hour each.
    let count = gov
        .act("cy", "add_members", "community", json!({"agents": ["eve"]}))
        .await;
    let pc = opened(&node, &count).await;
    ballot(&node, &pc, "ana", "accept").await;
    ballot(&node, &pc, "dee", "accept").await;
    let yes = gov
        .act("cy", "add_role", "community", json!({"name": "yes"}))
        .await;
    let py = opened(&node, &yes).await;
    for v in ["ana", "ben"] {
        node.post(
            &format!("{py}/ballots"),
            &json!({"voter": v, "choice": ["yes"]}),
        )
        .await
        .expect_status(200);
    }
    let no = gov
        .act("cy", "add_role", "community", json!({"name": "no"}))
        .await;
    let pn = opened(&node, &no).await;
    for v in ["ana", "ben", "dee"] {
        node.post(
            &format!("{pn}/ballots"),
            &json!({"voter": v, "choice": ["no"]}),
        )
        .await
        .expect_status(200);
    }
    advance(&node, HOUR / 2 - 1000).await;
    assert_eq!(gov.action(&consent["id"]).await["status"], "waiting");
    advance(&node, 2000).await;
    wait_status(&gov, &consent["id"], "implemented").await;
    assert_eq!(gov.action(&count["id"]).await["status"], "waiting");
    advance(&node, HOUR / 2).await;
    wait_status(&gov, &count["id"], "implemented").await;
    wait_status(&gov, &yes["id"], "implemented").await;
    let lost = wait_status(&gov, &no["id"], "rejected").await;
    assert_eq!(lost["reason_code"], "condition_rejected", "{lost}");

    // proposal, with the default duration: open for 168 hours.
    let long = gov
        .act(
            "cy",
            "remove_members",
            "community",
            json!({"agents": ["eve"]}),
        )
        .await;
    let pl = opened(&node, &long).await;
    ballot(&node, &pl, "ana", "agree").await;
    advance(&node, 167 * HOUR).await;
    assert_eq!(node.get(&pl).await.json()["status"], "pending");
    assert_eq!(gov.action(&long["id"]).await["status"], "waiting");
    advance(&node, HOUR + 1000).await;
    wait_status(&gov, &long["id"], "implemented").await;

    // closing_at inside a vote condition's params is refused.
    gov.post_action(
        "ana",
        &json!({"change": "add_permission", "target": "community",
                "params": {"ability": "rename", "actors": ["ben"],
                           "condition": {"type": "vote", "method": "proposal",
                                         "params": {"closing_at": "2031-01-01T00:00:00Z"}}}}),
    )
    .await
    .expect_error(400, "invalid_params");
    crate::governance_api::verify_log(&gov).await;
}
