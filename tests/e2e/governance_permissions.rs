//! Deme's precedence cases and the pipeline's finer rules through HTTP (contract sections 3–5
//! and 8): a community-wide `do_anything` allow beats item-level denies; the
//! `permission_enabled` guard keeps an item from being captured into someone's collection;
//! a waiting action whose target was destroyed is rejected `stale` when it would be
//! implemented; an agent sees only the actions, and the log bodies, of targets it may view.

use serde_json::{json, Value};

use crate::governance_api::{verify_log, Gov};
use crate::harness::{Node, NodeConfig};

async fn community(node: &Node) -> (Gov<'_>, String) {
    let gov = Gov::community(node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;
    let doc = gov
        .create_item(
            "ana",
            "community",
            "document",
            json!({"name": "doc", "body": "b"}),
        )
        .await;
    (gov, doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_community_wide_do_anything_beats_item_denies() {
    let node = Node::start("gov-do-anything", NodeConfig::dev()).await;
    let (gov, doc) = community(&node).await;
    let t = format!("item:{doc}");
    for ability in ["view", "edit_item"] {
        gov.act(
            "ana",
            "add_permission",
            &t,
            json!({"ability": ability, "actors": ["cy"], "allow": false}),
        )
        .await;
    }
    gov.get(Some("cy"), &format!("/items/{doc}"))
        .await
        .expect_error(404, "item_not_found");
    let denied = gov
        .act("cy", "edit_item", &t, json!({"fields": {"body": "x"}}))
        .await;
    assert_eq!(denied["status"], "rejected");
    assert_eq!(denied["reason_code"], "denied");
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "do_anything", "anyone": true, "applies_to": "members"}),
    )
    .await;
    gov.get(Some("cy"), &format!("/items/{doc}"))
        .await
        .expect_status(200);
    let d = gov
        .dry_run(
            "cy",
            &json!({"change": "edit_item", "target": t, "params": {"fields": {"body": "x"}}}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(d["status"], "implemented", "{d}");
    assert_eq!(d["level"], 9);
    // Everyone, members or not, now views it.
    gov.get(Some("stranger"), &format!("/items/{doc}"))
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_enabled_cannot_capture_a_private_item() {
    let node = Node::start("gov-capture", NodeConfig::dev()).await;
    let (gov, doc) = community(&node).await;
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "create_item", "actors": ["ben"]}),
    )
    .await;
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "do_anything", "actors": ["ben"], "applies_to": "members",
               "condition": {"type": "creator_only"}}),
    )
    .await;
    gov.act(
        "ana",
        "add_permission",
        &format!("item:{doc}"),
        json!({"ability": "do_anything", "actors": ["ana"]}),
    )
    .await;
    gov.act(
        "ana",
        "add_permission",
        &format!("item:{doc}"),
        json!({"ability": "do_anything", "inverse": true, "actors": ["ana"], "allow": false}),
    )
    .await;
    let mine = gov
        .act(
            "ben",
            "create_item",
            "community",
            json!({"type": "collection", "fields": {"name": "mine"}}),
        )
        .await;
    assert_eq!(mine["status"], "implemented", "{mine}");
    let mine = Gov::created(&mine);
    let grant = gov
        .act(
            "ben",
            "add_permission",
            &format!("item:{mine}"),
            json!({"ability": "do_anything", "actors": ["ben"], "applies_to": "members"}),
        )
        .await;
    assert_eq!(grant["status"], "implemented", "{grant}");
    let capture = gov
        .act(
            "ben",
            "add_to_collection",
            &format!("item:{mine}"),
            json!({"item": doc, "permission_enabled": true}),
        )
        .await;
    assert_eq!(capture["status"], "rejected", "{capture}");
    assert_eq!(capture["reason_code"], "denied");
    let item = gov.get(None, &format!("/items/{doc}")).await.json();
    assert_eq!(item["collections"], json!([]), "not captured: {item}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_action_on_a_destroyed_item_is_stale_and_agents_see_only_what_they_may() {
    let node = Node::start("gov-stale", NodeConfig::dev()).await;
    let (gov, doc) = community(&node).await;
    let t = format!("item:{doc}");
    // Ben's edit is a proposal; meanwhile Ana destroys the item; accepting it is too late.
    let edit = gov
        .act("ben", "edit_item", &t, json!({"fields": {"body": "ben's"}}))
        .await;
    assert_eq!(edit["status"], "waiting", "{edit}");
    let off = gov.act("ana", "deactivate_item", &t, json!({})).await;
    assert_eq!(off["status"], "implemented");
    let on = gov.act("ana", "reactivate_item", &t, json!({})).await;
    assert_eq!(on["status"], "implemented");
    assert_eq!(
        gov.get(None, &format!("/items/{doc}")).await.json()["active"],
        true
    );
    gov.act("ana", "deactivate_item", &t, json!({})).await;
    gov.act("ana", "destroy_item", &t, json!({})).await;
    let approve = gov
        .answer("ana", "approve", &edit["conditions"][0]["id"])
        .await;
    assert_eq!(
        approve["status"], "implemented",
        "the answer itself is taken"
    );
    let stale = gov.action(&edit["id"]).await;
    assert_eq!(stale["status"], "rejected", "{stale}");
    assert_eq!(stale["reason_code"], "stale");

    // A private item: Cy may not view it, nor the actions on it, nor their log bodies.
    let secret = gov
        .create_item("ana", "community", "document", json!({"name": "secret"}))
        .await;
    gov.act(
        "ana",
        "add_permission",
        &format!("item:{secret}"),
        json!({"ability": "view", "actors": ["ana"]}),
    )
    .await;
    let edit = gov
        .act(
            "ana",
            "edit_item",
            &format!("item:{secret}"),
            json!({"fields": {"name": "still secret"}}),
        )
        .await;
    assert_eq!(edit["status"], "implemented");
    gov.get(
        Some("cy"),
        &format!("/actions/{}", edit["id"].as_str().unwrap()),
    )
    .await
    .expect_error(404, "action_not_found");
    gov.get(
        Some("ana"),
        &format!("/actions/{}", edit["id"].as_str().unwrap()),
    )
    .await
    .expect_status(200);
    let listed = gov.get(Some("cy"), "/actions?limit=1000").await.json();
    assert!(!listed["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == edit["id"]));
    let log_cy = gov.log(Some("cy")).await;
    let entry = log_cy.iter().find(|e| e["action"] == edit["id"]).unwrap();
    assert_eq!(entry["body"], Value::Null, "hidden from cy");
    // Hidden or not, the chain verifies from what Cy was shown.
    agora_governance::verify_chain(&log_cy, None).expect("cy's view of the log verifies");
    let log_ana = gov.log(Some("ana")).await;
    let entry = log_ana.iter().find(|e| e["action"] == edit["id"]).unwrap();
    assert!(entry["body"].is_object(), "shown to ana");
    verify_log(&gov).await;
}

/// Switches and stacked permissions: `foundational_override` on a permission hands its
/// changes to the owners alone; `governing` off on an item leaves nobody but permissions to
/// decide it; a permission on a permission decides who may edit it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switches_and_permissions_on_permissions_move_decisions() {
    let node = Node::start("gov-switches", NodeConfig::dev()).await;
    let (gov, doc) = community(&node).await;
    // Ana makes Ben a governor through a role, so governors are not owners.
    gov.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "board", "actors": ["ben"]}),
    )
    .await;
    let g = gov
        .act(
            "ana",
            "change_governors",
            "governors",
            json!({"actors": [], "roles": ["board"]}),
        )
        .await;
    assert_eq!(g["status"], "implemented", "{g}");
    assert_eq!(g["route"], "foundational");
    let perm = gov
        .act(
            "ana",
            "add_permission",
            &format!("item:{doc}"),
            json!({"ability": "edit_item", "actors": ["cy"]}),
        )
        .await;
    assert_eq!(perm["status"], "waiting", "ana is no governor now: {perm}");
    gov.answer("ben", "approve", &perm["conditions"][0]["id"])
        .await;
    let pid = gov.action(&perm["id"]).await["result"]["permission"]
        .as_str()
        .unwrap()
        .to_string();
    let pt = format!("permission:{pid}");
    // A governor edits the permission: governing route.
    let e = gov
        .act(
            "ben",
            "edit_permission",
            &pt,
            json!({"actors": ["cy", "ben"]}),
        )
        .await;
    assert_eq!(
        (e["status"].clone(), e["route"].clone()),
        (json!("implemented"), json!("governing"))
    );
    // With foundational_override on, only the owners decide it.
    let on = gov
        .act("ana", "enable_foundational_override", &pt, json!({}))
        .await;
    assert_eq!(on["status"], "implemented", "{on}");
    assert_eq!(on["route"], "foundational");
    let e = gov
        .act("ben", "edit_permission", &pt, json!({"actors": ["ben"]}))
        .await;
    assert_eq!(e["status"], "rejected");
    assert_eq!(e["reason_code"], "foundational_only");
    gov.act("ana", "disable_foundational_override", &pt, json!({}))
        .await;
    // A permission on the permission (set by a governor): Cy alone may edit it now, the
    // governors are not asked.
    let stacked = gov
        .act(
            "ben",
            "add_permission",
            &pt,
            json!({"ability": "edit_permission", "actors": ["cy"]}),
        )
        .await;
    assert_eq!(stacked["status"], "implemented", "{stacked}");
    let by_cy = gov
        .act("cy", "edit_permission", &pt, json!({"actors": ["cy"]}))
        .await;
    assert_eq!(
        (by_cy["status"].clone(), by_cy["route"].clone()),
        (json!("implemented"), json!("specific"))
    );
    let by_ben = gov
        .act("ben", "edit_permission", &pt, json!({"actors": ["ben"]}))
        .await;
    assert_eq!(by_ben["status"], "rejected", "{by_ben}");
    // Governing off on an item: a non-governor's change there is rejected, not proposed.
    let other = gov
        .create_item("ben", "community", "document", json!({"name": "quiet"}))
        .await;
    let off = gov
        .act(
            "ana",
            "disable_governing",
            &format!("item:{other}"),
            json!({}),
        )
        .await;
    assert_eq!(off["status"], "implemented", "{off}");
    let r = gov
        .act(
            "cy",
            "edit_item",
            &format!("item:{other}"),
            json!({"fields": {"name": "loud"}}),
        )
        .await;
    assert_eq!(r["status"], "rejected", "{r}");
    verify_log(&gov).await;
}
