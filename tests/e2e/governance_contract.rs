//! The rules of the governance contract that the area tests left untested, walked through HTTP
//! (see `docs/governance-rule-coverage.md` for the whole map): automated role rules, the
//! constitution's change types (owners' and governors' conditions, conditions on permissions,
//! switches, templates), who answers a condition by default, approval rejecters and OR-ed grants
//! all rejected, where `applies_to` reaches on the community, the acting header's limits and
//! the driver token, the item types, immutable fields, notices and their read rules, what a
//! destroy removes, batches waiting on each change's conditions, `stale` by an invariant, and
//! the log's hashes recomputed independently of the engine's code.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::governance_api::{verify_log, Gov};
use crate::harness::{Node, NodeConfig};

fn ok(a: &Value) {
    assert_eq!(a["status"], "implemented", "{a}");
}

fn waiting(a: &Value) -> Value {
    assert_eq!(a["status"], "waiting", "{a}");
    a["conditions"][0]["id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_rules_and_constitution_changes_through_http() {
    let node = Node::start("gov-constitution", NodeConfig::dev()).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy", "dee"]}))
        .await;

    // Automated roles: implemented_actions, and all / any / not over rules, evaluated at each
    // decision; GET /governance shows each role's rule.
    let doers = json!({"implemented_actions": {"count": 1, "change": "rename"}});
    ok(&gov
        .act(
            "ana",
            "add_role",
            "community",
            json!({"name": "doers", "rule": doers}),
        )
        .await);
    let quiet = json!({"all": [{"member_for_hours": 0}, {"not": doers}]});
    ok(&gov
        .act(
            "ana",
            "add_role",
            "community",
            json!({"name": "quiet", "rule": quiet}),
        )
        .await);
    let either = json!({"any": [doers, {"linked_account": "randomness"}]});
    ok(&gov
        .act(
            "ana",
            "add_role",
            "community",
            json!({"name": "either", "rule": either}),
        )
        .await);
    let roles = gov.constitution().await["roles"].clone();
    assert_eq!(roles["doers"]["rule"], doers, "{roles}");
    assert_eq!(roles["quiet"]["rule"], quiet, "{roles}");
    for (role, ability) in [
        ("doers", "add_members"),
        ("quiet", "comment"),
        ("either", "remove_members"),
    ] {
        ok(&gov
            .act(
                "ana",
                "add_permission",
                "community",
                json!({"ability": ability, "roles": [role], "applies_to": if ability == "comment" { "members" } else { "object" }}),
            )
            .await);
    }
    ok(&gov
        .act(
            "ana",
            "add_permission",
            "community",
            json!({"ability": "rename", "actors": ["ben"]}),
        )
        .await);
    let doc = gov
        .create_item("ana", "community", "document", json!({"name": "doc"}))
        .await;
    let dt = format!("item:{doc}");
    let early = gov
        .act(
            "ben",
            "add_members",
            "community",
            json!({"agents": ["eve"]}),
        )
        .await;
    assert_eq!(early["reason_code"], "not_permitted", "{early}");
    ok(&gov
        .act("ben", "comment", &dt, json!({"body": "quiet"}))
        .await);
    ok(&gov
        .act("ben", "rename", "community", json!({"name": "Bentown"}))
        .await);
    // One rename implemented: Ben is a doer now, no longer quiet, and holds `either`.
    let later = gov
        .act(
            "ben",
            "add_members",
            "community",
            json!({"agents": ["eve"]}),
        )
        .await;
    assert_eq!(
        (&later["status"], &later["route"]),
        (&json!("implemented"), &json!("specific")),
        "{later}"
    );
    let loud = gov
        .act("ben", "comment", &dt, json!({"body": "loud"}))
        .await;
    assert_eq!(loud["reason_code"], "not_permitted", "{loud}");
    ok(&gov
        .act(
            "ben",
            "remove_members",
            "community",
            json!({"agents": ["eve"]}),
        )
        .await);
    // `members` is itself a role a permission can name.
    ok(&gov
        .act(
            "ana",
            "add_permission",
            "community",
            json!({"ability": "create_item", "roles": ["members"]}),
        )
        .await);
    ok(&gov
        .act(
            "cy",
            "create_item",
            "community",
            json!({"type": "document", "fields": {"name": "cy's"}}),
        )
        .await);
    let outsider = gov
        .act(
            "zed",
            "create_item",
            "community",
            json!({"type": "document", "fields": {"name": "zed's"}}),
        )
        .await;
    assert_eq!(outsider["reason_code"], "not_permitted", "{outsider}");

    // remove_people_from_role.
    ok(&gov
        .act(
            "ana",
            "add_role",
            "community",
            json!({"name": "board", "actors": ["ben", "cy"]}),
        )
        .await);
    ok(&gov
        .act(
            "ana",
            "remove_people_from_role",
            "role:board",
            json!({"agents": ["cy"]}),
        )
        .await);
    assert_eq!(
        gov.constitution().await["roles"]["board"]["actors"],
        json!(["ben"])
    );
    // Governors given through `board`: filling it is foundational, and it cannot be removed.
    let g = gov
        .act(
            "ana",
            "change_governors",
            "governors",
            json!({"actors": ["ana"], "roles": ["board"]}),
        )
        .await;
    ok(&g);
    assert_eq!(g["route"], "foundational");
    let fill = gov
        .act(
            "ana",
            "add_people_to_role",
            "role:board",
            json!({"agents": ["cy"]}),
        )
        .await;
    assert_eq!(
        (&fill["status"], &fill["route"]),
        (&json!("implemented"), &json!("foundational")),
        "{fill}"
    );
    let by_ben = gov
        .act(
            "ben",
            "add_people_to_role",
            "role:board",
            json!({"agents": ["dee"]}),
        )
        .await;
    assert_eq!(
        by_ben["reason_code"], "foundational_only",
        "a governor is no owner: {by_ben}"
    );
    let out = gov
        .act(
            "ana",
            "remove_people_from_role",
            "role:board",
            json!({"agents": ["cy"]}),
        )
        .await;
    assert_eq!(out["route"], "foundational", "{out}");
    ok(&out);
    ok(&gov
        .act(
            "ana",
            "add_people_to_role",
            "role:board",
            json!({"agents": ["cy"]}),
        )
        .await);
    gov.post_action(
        "ana",
        &json!({"change": "remove_role", "target": "role:board", "params": {}}),
    )
    .await
    .expect_error(400, "role_in_use");

    // The governors' conditions: set_governor_condition (foundational) makes a governor's
    // change wait on them; remove_condition takes one off.
    let set = gov
        .act(
            "ana",
            "set_governor_condition",
            "governors",
            json!({"conditions": [{"type": "approval", "approvers": {"actors": ["dee"]}}]}),
        )
        .await;
    ok(&set);
    assert_eq!(set["route"], "foundational");
    let r = gov
        .act("cy", "add_role", "community", json!({"name": "r1"}))
        .await;
    assert_eq!(r["route"], "governing", "{r}");
    let cid = waiting(&r);
    ok(&gov.answer("dee", "approve", &cid).await);
    assert_eq!(gov.action(&r["id"]).await["status"], "implemented");
    ok(&gov
        .act("ana", "remove_condition", "governors", json!({"index": 0}))
        .await);
    ok(&gov
        .act("cy", "add_role", "community", json!({"name": "r2"}))
        .await);
    assert_eq!(
        gov.constitution().await["governors"]["conditions"],
        json!([])
    );

    // Conditions on a permission: add_condition, then remove_condition.
    let p = gov
        .act(
            "ana",
            "add_permission",
            &dt,
            json!({"ability": "edit_item", "actors": ["cy"]}),
        )
        .await;
    ok(&p);
    let pt = format!("permission:{}", p["result"]["permission"].as_str().unwrap());
    ok(&gov
        .act(
            "ana",
            "add_condition",
            &pt,
            json!({"condition": {"type": "approval", "approvers": {"actors": ["dee"]}}}),
        )
        .await);
    let e = gov
        .act("cy", "edit_item", &dt, json!({"fields": {"body": "1"}}))
        .await;
    assert_eq!(e["route"], "specific");
    waiting(&e);
    ok(&gov
        .act("ana", "remove_condition", &pt, json!({"index": 0}))
        .await);
    ok(&gov
        .act("cy", "edit_item", &dt, json!({"fields": {"body": "2"}}))
        .await);

    // Switches: with governing off on an item, even a governor is refused there (nothing
    // decides it); on again, the governor decides it.
    ok(&gov.act("ana", "disable_governing", &dt, json!({})).await);
    let r = gov.act("ben", "deactivate_item", &dt, json!({})).await;
    assert_eq!(r["status"], "rejected", "{r}");
    ok(&gov.act("ana", "enable_governing", &dt, json!({})).await);
    let r = gov.act("ben", "deactivate_item", &dt, json!({})).await;
    assert_eq!(
        (&r["status"], &r["route"]),
        (&json!("implemented"), &json!("governing")),
        "{r}"
    );

    // The owners' conditions: an approval naming nobody is answered by the owners (not the
    // governors), and never by the action's own actor.
    ok(&gov
        .act(
            "ana",
            "change_owners",
            "owners",
            json!({"actors": ["ana", "dee"], "roles": []}),
        )
        .await);
    ok(&gov
        .act(
            "ana",
            "set_owner_condition",
            "owners",
            json!({"conditions": [{"type": "approval"}]}),
        )
        .await);
    let off = gov
        .act(
            "ana",
            "set_proposals",
            "community",
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(off["route"], "foundational");
    let cid = waiting(&off);
    for (who, code) in [("ben", "not_permitted"), ("ana", "not_permitted")] {
        let no = gov.answer(who, "approve", &cid).await;
        assert_eq!(
            (&no["status"], &no["reason_code"]),
            (&json!("rejected"), &json!(code)),
            "{who}: {no}"
        );
    }
    ok(&gov.answer("dee", "approve", &cid).await);
    assert_eq!(gov.constitution().await["proposals"], false);

    // apply_template is foundational, and applies the template.
    let t = gov
        .act(
            "ana",
            "apply_template",
            "community",
            json!({"template": "anyone_can_join"}),
        )
        .await;
    assert_eq!(t["route"], "foundational");
    let cid = waiting(&t);
    ok(&gov.answer("dee", "approve", &cid).await);
    ok(&gov
        .act(
            "zoe",
            "add_members",
            "community",
            json!({"agents": ["zoe"]}),
        )
        .await);

    // No change targets an action.
    gov.post_action(
        "ana",
        &json!({"change": "enable_governing", "target": "action:1", "params": {}}),
    )
    .await
    .expect_error(400, "invalid_target");
    verify_log(&gov).await;
}

/// Approval rejecters, OR-ed grants all rejected, `applies_to` on the community, the acting
/// header's limit, and the driver token on the governance routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejecters_reach_and_request_rules() {
    let node = Node::start("gov-rejecters", NodeConfig::with_token("s3cret")).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy", "dee"]}))
        .await;
    let approval = |a: &str, r: &str| json!({"type": "approval", "approvers": {"actors": [a]}, "rejecters": {"actors": [r]}});
    // One grant: its rejecter rejects, so the action is rejected.
    ok(&gov
        .act(
            "ana",
            "add_permission",
            "community",
            json!({"ability": "rename", "actors": ["cy"], "condition": approval("ana", "dee")}),
        )
        .await);
    let r = gov
        .act("cy", "rename", "community", json!({"name": "x"}))
        .await;
    let cid = waiting(&r);
    // An approver who is no rejecter may not reject.
    let no = gov.answer("ana", "reject", &cid).await;
    assert_eq!(no["reason_code"], "not_permitted", "{no}");
    ok(&gov.answer("dee", "reject", &cid).await);
    let done = gov.action(&r["id"]).await;
    assert_eq!(
        (&done["status"], &done["reason_code"]),
        (&json!("rejected"), &json!("condition_rejected")),
        "{done}"
    );
    // Two grants (OR): one rejected leaves the other waiting; both rejected rejects.
    for who in ["ben", "dee"] {
        ok(&gov
            .act(
                "ana",
                "add_permission",
                "community",
                json!({"ability": "add_role", "actors": ["cy"], "condition": approval(who, who)}),
            )
            .await);
    }
    let r = gov
        .act("cy", "add_role", "community", json!({"name": "r"}))
        .await;
    waiting(&r);
    let conds: Vec<Value> = r["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(conds.len(), 2, "{r}");
    // Which condition is whose is not promised: Ben tries the first.
    let first = gov.answer("ben", "reject", &conds[0]).await;
    if first["status"] != "implemented" {
        // conds[0] is Dee's.
        ok(&gov.answer("dee", "reject", &conds[0]).await);
        assert_eq!(gov.action(&r["id"]).await["status"], "waiting");
        ok(&gov.answer("ben", "reject", &conds[1]).await);
    } else {
        assert_eq!(gov.action(&r["id"]).await["status"], "waiting");
        ok(&gov.answer("dee", "reject", &conds[1]).await);
    }
    let done = gov.action(&r["id"]).await;
    assert_eq!(
        (&done["status"], &done["reason_code"]),
        (&json!("rejected"), &json!("condition_rejected")),
        "every grant rejected: {done}"
    );

    // applies_to members on the community reaches every item, not the community object;
    // applies_to object there reaches the community object, not its items.
    ok(&gov
        .act(
            "ana",
            "add_permission",
            "community",
            json!({"ability": "do_anything", "actors": ["ben"], "applies_to": "members"}),
        )
        .await);
    let doc = gov
        .create_item("ana", "community", "document", json!({"name": "doc"}))
        .await;
    let on_item = gov
        .act(
            "ben",
            "edit_item",
            &format!("item:{doc}"),
            json!({"fields": {"body": "ben"}}),
        )
        .await;
    assert_eq!(
        (&on_item["status"], &on_item["level"]),
        (&json!("implemented"), &json!(3)),
        "{on_item}"
    );
    let on_community = gov
        .act(
            "ben",
            "add_members",
            "community",
            json!({"agents": ["eve"]}),
        )
        .await;
    assert_eq!(
        (&on_community["status"], &on_community["route"]),
        (&json!("waiting"), &json!("governing")),
        "{on_community}"
    );
    ok(&gov
        .act(
            "ana",
            "add_permission",
            "community",
            json!({"ability": "edit_item", "actors": ["cy"]}),
        )
        .await);
    let cy = gov
        .act(
            "cy",
            "edit_item",
            &format!("item:{doc}"),
            json!({"fields": {"body": "cy"}}),
        )
        .await;
    assert_eq!(
        (&cy["status"], &cy["route"]),
        (&json!("waiting"), &json!("governing")),
        "{cy}"
    );

    // A grant's approval naming nobody is answered by the governors (Ana), not by members.
    ok(&gov
        .act(
            "ana",
            "add_permission",
            "community",
            json!({"ability": "create_item", "actors": ["dee"], "condition": {"type": "approval"}}),
        )
        .await);
    let r = gov
        .act(
            "dee",
            "create_item",
            "community",
            json!({"type": "document", "fields": {"name": "dee's"}}),
        )
        .await;
    assert_eq!(r["route"], "specific", "{r}");
    let cid = waiting(&r);
    let no = gov.answer("ben", "approve", &cid).await;
    assert_eq!(no["reason_code"], "not_permitted", "{no}");
    ok(&gov.answer("ana", "approve", &cid).await);
    assert_eq!(gov.action(&r["id"]).await["status"], "implemented");

    // The acting header: at most 200 bytes; a read without it is the driver's own.
    let long = "a".repeat(201);
    gov.send(
        Method::POST,
        Some(&long),
        "/actions",
        Some(&json!({"change": "rename", "target": "community", "params": {"name": "x"}})),
    )
    .await
    .expect_client_error();
    let max = "a".repeat(200);
    let r = gov
        .post_action(
            &max,
            &json!({"change": "rename", "target": "community", "params": {"name": "y"},
                    "note": "why not"}),
        )
        .await
        .expect_status(201)
        .json();
    assert_eq!(r["actor"], json!(max));
    // The action keeps its note and says why in a sentence beside the stable code.
    assert_eq!(r["note"], "why not", "{r}");
    assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    // The driver token: without it, or with another, every governance route is refused.
    for (method, rest) in [
        (Method::GET, "/governance"),
        (Method::GET, "/actions"),
        (Method::GET, "/items"),
        (Method::GET, "/governance/log"),
        (Method::POST, "/actions"),
    ] {
        let mut b = node
            .anonymous(method.clone(), &gov.path(rest))
            .header("X-Agora-Actor", "ana");
        if method == Method::POST {
            b = b
                .json(&json!({"change": "rename", "target": "community", "params": {"name": "z"}}));
        }
        let r = node.send(b).await;
        assert_eq!(r.status, 401, "{rest}: {}", r.describe());
        r.error_object();
    }
    assert_ne!(gov.constitution().await["name"], "z");
}

/// Item types, immutable fields, notices of every kind with their read rules, what destroying
/// removes, and the log's chain recomputed here from the contract's formula.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_types_notices_destroy_and_the_log_formula() {
    let node = Node::start("gov-items-rules", NodeConfig::dev()).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben"]})).await;
    let create = |typ: &'static str| {
        let gov = &gov;
        async move {
            let a = gov
                .act(
                    "ana",
                    "create_item",
                    "community",
                    json!({"type": typ, "fields": {"name": typ}}),
                )
                .await;
            ok(&a);
            Gov::created(&a)
        }
    };
    for typ in ["item", "collection", "document", "proposal", "idea"] {
        let id = create(typ).await;
        let item = gov.get(None, &format!("/items/{id}")).await.json();
        assert_eq!(item["type"], typ, "{item}");
    }
    let doc = create("document").await;
    let dt = format!("item:{doc}");
    let first = Gov::created(&gov.act("ana", "comment", &dt, json!({"body": "c"})).await);
    assert_eq!(
        gov.get(None, &format!("/items/{first}")).await.json()["fields"]["item_version"],
        1
    );
    // A comment is about the item at its current version.
    ok(&gov
        .act("ana", "edit_item", &dt, json!({"fields": {"body": "v2"}}))
        .await);
    let comment = Gov::created(&gov.act("ana", "comment", &dt, json!({"body": "c2"})).await);
    let c = gov.get(None, &format!("/items/{comment}")).await.json();
    assert_eq!(c["type"], "comment");
    assert_eq!(
        (&c["fields"]["item"], &c["fields"]["item_version"]),
        (&json!(doc), &json!(2)),
        "{c}"
    );
    // One subscription per agent and item: subscribing again replaces it.
    for edit in [true, false] {
        gov.send(
            Method::POST,
            Some("ben"),
            "/subscriptions",
            Some(&json!({"item": doc, "edit": edit, "deliver_to": "http://127.0.0.1:9/ben"})),
        )
        .await
        .expect_status(201);
    }
    let subs = gov.get(Some("ben"), "/subscriptions").await.json();
    let subs = subs["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0]["edit"], false, "{subs:?}");
    // Immutable fields are no fields to edit.
    for field in ["id", "type", "creator", "created_at"] {
        let r = gov
            .post_action(
                "ana",
                &json!({"change": "edit_item", "target": dt, "params": {"fields": {field: "x"}}}),
            )
            .await;
        r.expect_client_error();
    }
    // Every kind of notice on the item.
    let coll = create("collection").await;
    ok(&gov
        .act(
            "ana",
            "add_to_collection",
            &format!("item:{coll}"),
            json!({"item": doc}),
        )
        .await);
    ok(&gov
        .act("ana", "edit_item", &dt, json!({"fields": {"body": "2"}}))
        .await);
    ok(&gov.act("ana", "deactivate_item", &dt, json!({})).await);
    ok(&gov.act("ana", "reactivate_item", &dt, json!({})).await);
    let kinds = |agent: Option<&'static str>, id: String| {
        let gov = &gov;
        async move {
            let n = gov
                .get(agent, &format!("/items/{id}/notices"))
                .await
                .expect_status(200)
                .json();
            n["notices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["kind"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let k = kinds(None, doc.clone()).await;
    for kind in ["create", "edit", "deactivate", "reactivate", "relation"] {
        assert!(k.contains(&kind.to_string()), "{kind} in {k:?}");
    }
    // The membership is a pointer from the document: a relation notice on the collection.
    let on_coll = gov
        .get(None, &format!("/items/{coll}/notices"))
        .await
        .json();
    let rel = on_coll["notices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "relation")
        .unwrap_or_else(|| panic!("{on_coll}"))
        .clone();
    assert_eq!(
        (&rel["from_item"], &rel["field"]),
        (&json!(doc), &json!("collections"))
    );
    // Reading notices needs `view action_notices`; a relation notice also `view <field>` of
    // its from-item.
    assert!(kinds(Some("ben"), coll.clone())
        .await
        .contains(&"relation".to_string()));
    ok(&gov
        .act(
            "ana",
            "add_permission",
            &dt,
            json!({"ability": "view collections", "actors": ["ben"], "allow": false}),
        )
        .await);
    assert!(!kinds(Some("ben"), coll.clone())
        .await
        .contains(&"relation".to_string()));
    // The deny applies to `view collections` on the document whoever it names, so
    // permissions decide that field, and none names Ana: she no longer reads it either,
    // until an allow names her. The driver reads everything.
    assert!(!kinds(Some("ana"), coll.clone())
        .await
        .contains(&"relation".to_string()));
    ok(&gov
        .act(
            "ana",
            "add_permission",
            &dt,
            json!({"ability": "view collections", "actors": ["ana"]}),
        )
        .await);
    assert!(kinds(Some("ana"), coll.clone())
        .await
        .contains(&"relation".to_string()));
    assert!(kinds(None, coll.clone())
        .await
        .contains(&"relation".to_string()));
    ok(&gov
        .act(
            "ana",
            "add_permission",
            &dt,
            json!({"ability": "view action_notices", "actors": ["ana"]}),
        )
        .await);
    gov.get(Some("ben"), &format!("/items/{doc}/notices"))
        .await
        .expect_error(403, "not_permitted");
    gov.get(Some("ana"), &format!("/items/{doc}/notices"))
        .await
        .expect_status(200);
    // Destroying removes the item's permissions with its versions, writes a destroy notice,
    // and refuses every later change.
    let p = gov
        .act(
            "ana",
            "add_permission",
            &dt,
            json!({"ability": "edit_item", "actors": ["ben"]}),
        )
        .await;
    let pid = p["result"]["permission"].as_str().unwrap().to_string();
    ok(&gov.act("ana", "deactivate_item", &dt, json!({})).await);
    ok(&gov.act("ana", "destroy_item", &dt, json!({})).await);
    assert!(kinds(None, doc.clone())
        .await
        .contains(&"destroy".to_string()));
    gov.post_action(
        "ana",
        &json!({"change": "edit_permission", "target": format!("permission:{pid}"),
                "params": {"actors": ["ana"]}}),
    )
    .await
    .expect_error(404, "unknown_target");
    for change in ["edit_item", "comment", "deactivate_item"] {
        let params = match change {
            "edit_item" => json!({"fields": {"body": "3"}}),
            "comment" => json!({"body": "late"}),
            _ => json!({}),
        };
        let r = gov
            .post_action(
                "ana",
                &json!({"change": change, "target": dt, "params": params}),
            )
            .await;
        r.expect_client_error();
    }

    // The log, recomputed from the contract's formula alone: canonical JSON (keys sorted by
    // their bytes, no whitespace), hash = sha256(prev + "\n" + entry without hash and body),
    // body_hash = sha256(body), the first prev 64 zeros, log_head the last hash.
    let entries = gov.log(None).await;
    assert!(entries.len() > 10);
    let mut prev = "0".repeat(64);
    for e in &entries {
        assert_eq!(e["prev"], json!(prev), "{e}");
        let mut head = e.as_object().unwrap().clone();
        head.remove("hash");
        head.remove("body");
        for k in ["seq", "at", "kind", "action", "body_hash", "prev"] {
            assert!(head.contains_key(k), "{k} in {e}");
        }
        let hash = sha_hex(format!("{prev}\n{}", canonical(&Value::Object(head))).as_bytes());
        assert_eq!(e["hash"], json!(hash), "{e}");
        if !e["body"].is_null() {
            assert_eq!(
                e["body_hash"],
                json!(sha_hex(canonical(&e["body"]).as_bytes())),
                "{e}"
            );
        }
        prev = hash;
    }
    assert_eq!(gov.constitution().await["log_head"], json!(prev));
    // After the destroy, the bodies of the entries about the document are redacted; their
    // hashes stay.
    let about: Vec<&Value> = entries
        .iter()
        .filter(|e| e["body"].is_null() && e["body_hash"].as_str().is_some_and(|h| h.len() == 64))
        .collect();
    assert!(!about.is_empty(), "redacted entries keep their body_hash");
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Canonical JSON as the contract defines it, written out here rather than taken from the
/// engine: objects with keys sorted by their UTF-8 bytes, no whitespace, strings as raw UTF-8
/// (only `"`, `\` and control characters escaped, as JSON requires).
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", canonical(&json!(k)), canonical(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// A batch whose changes wait on different conditions waits on all of them: approving one
/// change's condition implements nothing; the last approval implements every change at once.
/// And a waiting action is validated again when it would be implemented: one that would break
/// an invariant by then is rejected `stale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_wait_on_each_changes_conditions_and_stale_revalidates() {
    let node = Node::start("gov-batch-wait", NodeConfig::dev()).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy", "dee"]}))
        .await;
    for (ability, approver) in [("rename", "cy"), ("add_members", "dee")] {
        ok(&gov
            .act(
                "ana",
                "add_permission",
                "community",
                json!({"ability": ability, "actors": ["ben"],
                       "condition": {"type": "approval", "approvers": {"actors": [approver]}}}),
            )
            .await);
    }
    let b = gov
        .post_action(
            "ben",
            &json!({"batch": [
                {"change": "rename", "target": "community", "params": {"name": "Both"}},
                {"change": "add_members", "target": "community", "params": {"agents": ["eve"]}},
            ]}),
        )
        .await
        .expect_status(201)
        .json();
    waiting(&b);
    let conds = b["conditions"].as_array().unwrap().clone();
    assert_eq!(conds.len(), 2, "{b}");
    // Cy answers the condition that names him (which one is not promised: try both).
    let mut cy_done = false;
    for c in &conds {
        if gov.answer("cy", "approve", &c["id"]).await["status"] == "implemented" {
            cy_done = true;
        }
    }
    assert!(cy_done);
    let now = gov.action(&b["id"]).await;
    assert_eq!(
        now["status"], "waiting",
        "one change's approval is not enough: {now}"
    );
    assert_ne!(gov.constitution().await["name"], "Both");
    let left: Vec<&Value> = now["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "waiting")
        .collect();
    assert_eq!(left.len(), 1, "{now}");
    ok(&gov.answer("dee", "approve", &left[0]["id"]).await);
    let done = gov.action(&b["id"]).await;
    assert_eq!(done["status"], "implemented", "{done}");
    let c = gov.constitution().await;
    assert_eq!(c["name"], "Both");
    assert!(c["members"].as_array().unwrap().contains(&json!("eve")));

    // Stale by an invariant: Ben proposes putting Cy in a role; Cy stops being a member
    // meanwhile; the approval comes too late.
    ok(&gov
        .act(
            "ana",
            "add_role",
            "community",
            json!({"name": "mods", "actors": ["dee"]}),
        )
        .await);
    let put = gov
        .act(
            "ben",
            "add_people_to_role",
            "role:mods",
            json!({"agents": ["cy"]}),
        )
        .await;
    let cid = waiting(&put);
    ok(&gov
        .act(
            "ana",
            "remove_members",
            "community",
            json!({"agents": ["cy"]}),
        )
        .await);
    ok(&gov.answer("ana", "approve", &cid).await);
    let stale = gov.action(&put["id"]).await;
    assert_eq!(
        (&stale["status"], &stale["reason_code"]),
        (&json!("rejected"), &json!("stale")),
        "{stale}"
    );
    assert_eq!(
        gov.constitution().await["roles"]["mods"]["actors"],
        json!(["dee"])
    );
    verify_log(&gov).await;
}

/// The owners invariant through every way of losing owners: at least one agent holds owner
/// authority, named or through a role, whatever removes them (400 `last_owner`, nothing
/// recorded). And `self_approval: true` lets the actor approve their own action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_authority_cannot_be_emptied_and_self_approval_lets_the_actor_answer() {
    let node = Node::start("gov-last-owner", NodeConfig::dev()).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben"]})).await;
    ok(&gov
        .act(
            "ana",
            "add_role",
            "community",
            json!({"name": "board", "actors": ["ben"]}),
        )
        .await);
    ok(&gov
        .act(
            "ana",
            "change_owners",
            "owners",
            json!({"actors": [], "roles": ["board"]}),
        )
        .await);
    let before = gov.log(None).await.len();
    for body in [
        json!({"change": "remove_people_from_role", "target": "role:board",
               "params": {"agents": ["ben"]}}),
        json!({"change": "remove_members", "target": "community", "params": {"agents": ["ben"]}}),
        json!({"change": "change_owners", "target": "owners",
               "params": {"actors": [], "roles": []}}),
    ] {
        let e = gov.post_action("ben", &body).await.expect_client_error();
        assert_eq!(e["code"], "last_owner", "{body}: {e}");
    }
    assert_eq!(gov.log(None).await.len(), before, "nothing recorded");
    assert_eq!(
        gov.constitution().await["roles"]["board"]["actors"],
        json!(["ben"])
    );

    // self_approval: true names the actor among the approvers of their own action.
    ok(&gov
        .act(
            "ana",
            "add_permission",
            "community",
            json!({"ability": "rename", "actors": ["ana"],
                   "condition": {"type": "approval", "approvers": {"actors": ["ana"]},
                                 "self_approval": true}}),
        )
        .await);
    let r = gov
        .act("ana", "rename", "community", json!({"name": "mine"}))
        .await;
    let cid = waiting(&r);
    ok(&gov.answer("ana", "approve", &cid).await);
    assert_eq!(gov.constitution().await["name"], "mine");
}
