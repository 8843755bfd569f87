//! The 9-level permission precedence of contract section 4, level by level, through HTTP: for
//! writes (whole-item and field abilities, decided on the specific route with the deciding
//! level in the answer) and for reads (an item's `GET`, list filtering and field visibility),
//! a grant or deny at each level 1..9 decides, and the level above it (the next lower number)
//! beats it; at one level a deny beats an allow. Then the covering abilities (`do_anything`,
//! `view_anything`, `edit_anything`) and `permission_enabled` memberships, with Deme's guard
//! deciding such a membership twice.

use serde_json::{json, Value};

use crate::governance_api::{verify_log, Gov};
use crate::harness::{Node, NodeConfig};

/// A community where Ben holds the role `mods`, and `doc` (name, description, body) was
/// created inside collection `shelf`, itself created inside collection `room`: permissions on
/// `room` reach `doc` indirectly, through containment alone.
struct World<'a> {
    gov: Gov<'a>,
    room: String,
    doc: String,
}

async fn world<'a>(node: &'a Node, slug: &str) -> World<'a> {
    let gov = Gov::community(node, slug).await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;
    let role = gov
        .act(
            "ana",
            "add_role",
            "community",
            json!({"name": "mods", "actors": ["ben"]}),
        )
        .await;
    assert_eq!(role["status"], "implemented", "{role}");
    let room = gov
        .create_item("ana", "community", "collection", json!({"name": "room"}))
        .await;
    let shelf = gov
        .create_item(
            "ana",
            &format!("item:{room}"),
            "collection",
            json!({"name": "shelf"}),
        )
        .await;
    let doc = gov
        .create_item(
            "ana",
            &format!("item:{shelf}"),
            "document",
            json!({"name": "doc", "description": "d0", "body": "b0"}),
        )
        .await;
    World { gov, room, doc }
}

/// Where a permission of level `level` (for Ben) is set, and whom it names: source one
/// (`actors`), some (`roles`), all (`anyone`) × to one (on `doc`, `applies_to: object`), some
/// (on `room`, `applies_to: members`), all (on `community`, `applies_to: members`).
fn rung(w: &World<'_>, level: u8, ability: &str, allow: bool) -> (String, Value) {
    let (source, to) = ((level - 1) / 3, (level - 1) % 3);
    let mut p = json!({"ability": ability, "allow": allow});
    match source {
        0 => p["actors"] = json!(["ben"]),
        1 => p["roles"] = json!(["mods"]),
        _ => p["anyone"] = json!(true),
    }
    let target = match to {
        0 => {
            p["applies_to"] = json!("object");
            format!("item:{}", w.doc)
        }
        1 => {
            p["applies_to"] = json!("members");
            format!("item:{}", w.room)
        }
        _ => {
            p["applies_to"] = json!("members");
            "community".to_string()
        }
    };
    (target, p)
}

/// What Ben's request is answered, as far as the ladder needs: granted or not, and the level
/// that decided (for writes; reads show none).
#[derive(Debug, PartialEq)]
struct Outcome {
    granted: bool,
    level: Option<u64>,
}

/// How one ability is checked for Ben.
#[derive(Clone, Copy)]
enum Probe {
    /// `edit_item` on `doc` with `fields`: a dry run (for the level) and the real action.
    Write(&'static str),
    /// `GET /items/{doc}` and `GET /items` as Ben.
    View,
    /// Whether `GET /items/{doc}` as Ben shows the body.
    ViewBody,
}

async fn probe(w: &World<'_>, p: Probe, round: u8) -> Outcome {
    let gov = &w.gov;
    let t = format!("item:{}", w.doc);
    match p {
        Probe::Write(field) => {
            let params = json!({"fields": {field: format!("{field} by ben, round {round}")}});
            let body = json!({"change": "edit_item", "target": t, "params": params});
            let dry = gov.dry_run("ben", &body).await.expect_status(200).json();
            let real = gov
                .post_action("ben", &body)
                .await
                .expect_status(201)
                .json();
            assert_eq!(
                (&dry["status"], &dry["route"], &dry["reason_code"]),
                (&real["status"], &real["route"], &real["reason_code"]),
                "the dry run and the action agree: {dry} {real}"
            );
            // Permissions decide, on the specific route, at once: nothing waits or is proposed.
            assert_eq!(real["route"], "specific", "{real}");
            let granted = match real["status"].as_str() {
                Some("implemented") => true,
                Some("rejected") => false,
                _ => panic!("decided at once: {real}"),
            };
            Outcome {
                granted,
                level: real["level"].as_u64(),
            }
        }
        Probe::View => {
            let one = gov.get(Some("ben"), &format!("/items/{}", w.doc)).await;
            let listed = gov.get(Some("ben"), "/items?limit=1000").await.json();
            let in_list = listed["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|i| i["id"] == json!(w.doc));
            let viewable = match one.status {
                200 => true,
                404 => {
                    one.expect_error(404, "item_not_found");
                    false
                }
                _ => panic!("{}", one.describe()),
            };
            assert_eq!(viewable, in_list, "the list agrees with the item's read");
            let versions = gov
                .get(Some("ben"), &format!("/items/{}/versions", w.doc))
                .await;
            assert_eq!(
                versions.status,
                if viewable { 200 } else { 404 },
                "versions follow the item: {}",
                versions.describe()
            );
            Outcome {
                granted: viewable,
                level: None,
            }
        }
        Probe::ViewBody => {
            let item = gov
                .get(Some("ben"), &format!("/items/{}", w.doc))
                .await
                .expect_status(200)
                .json();
            assert!(
                item["fields"]["name"].is_string(),
                "other fields stay: {item}"
            );
            let granted = item["fields"].get("body").is_some();
            // Every version shows the body exactly when the item does.
            let versions = gov
                .get(Some("ben"), &format!("/items/{}/versions", w.doc))
                .await
                .expect_status(200)
                .json();
            for v in versions["versions"].as_array().expect("versions") {
                assert_eq!(v["fields"].get("body").is_some(), granted, "{v}");
                assert!(v["fields"]["name"].is_string(), "{v}");
            }
            Outcome {
                granted,
                level: None,
            }
        }
    }
}

async fn add_permission(gov: &Gov<'_>, target: &str, params: Value) {
    let a = gov.act("ana", "add_permission", target, params).await;
    assert_eq!(a["status"], "implemented", "{a}");
}

/// One ladder: a permission for `ability` naming only Ana on `doc` (so permissions decide and
/// Ben, unmatched, is refused), then permissions for Ben from level 9 up to level 1,
/// alternating allow and deny starting with `allow_at_9`; after each, the new level decides,
/// so it beats the level below it. Last, the opposite permission at level 1: a deny there wins.
async fn ladder(node: &Node, slug: &str, ability: &'static str, p: Probe, allow_at_9: bool) {
    let w = world(node, slug).await;
    let doc = format!("item:{}", w.doc);
    add_permission(&w.gov, &doc, json!({"ability": ability, "actors": ["ana"]})).await;
    let level_of = |l: u8| match p {
        Probe::Write(_) => Some(u64::from(l)),
        _ => None,
    };
    let none = probe(&w, p, 0).await;
    assert!(
        !none.granted,
        "{ability}: permissions apply, none matches ben"
    );
    if let Probe::Write(field) = p {
        let body = json!({"change": "edit_item", "target": doc,
                          "params": {"fields": {field: "by ben, unmatched"}}});
        let r = w.gov.post_action("ben", &body).await.json();
        assert_eq!(
            (&r["status"], &r["reason_code"]),
            (&json!("rejected"), &json!("not_permitted")),
            "{r}"
        );
    }
    for level in (1..=9u8).rev() {
        let allow = (level % 2 == 1) == allow_at_9;
        let (target, params) = rung(&w, level, ability, allow);
        add_permission(&w.gov, &target, params).await;
        let got = probe(&w, p, level).await;
        assert_eq!(
            got,
            Outcome {
                granted: allow,
                level: level_of(level)
            },
            "{ability}: the {} at level {level} decides over level {}",
            if allow { "allow" } else { "deny" },
            level + 1
        );
    }
    // At one level, a deny wins over an allow, whichever came first.
    let at_1 = allow_at_9; // level 1 is odd
    let (target, params) = rung(&w, 1, ability, !at_1);
    add_permission(&w.gov, &target, params).await;
    let got = probe(&w, p, 10).await;
    assert_eq!(
        got,
        Outcome {
            granted: false,
            level: level_of(1)
        },
        "{ability}: a deny at level 1 beside an allow there"
    );
    if let Probe::Write(_) = p {
        let r = w
            .gov
            .post_action(
                "ben",
                &json!({"change": "edit_item", "target": doc,
                        "params": {"fields": {"body": "denied"}}}),
            )
            .await
            .json();
        assert_eq!(r["reason_code"], "denied", "{r}");
    }
    verify_log(&w.gov).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_the_nine_levels_decides_writes_and_the_level_above_beats_it() {
    let node = Node::start("gov-levels-write", NodeConfig::dev()).await;
    for (slug, ability, probe) in [
        ("edit-a", "edit_item", Probe::Write("body")),
        ("field-a", "edit body", Probe::Write("body")),
    ] {
        ladder(&node, slug, ability, probe, true).await;
        ladder(&node, &format!("{slug}-d"), ability, probe, false).await;
    }
    // A field ability decides only the field it names: with `edit body` denied at every level
    // above, Ben's edit of the description is not decided by it (nothing applies: the
    // governors decide, and Ben's edit waits for one).
    let w = world(&node, "field-only").await;
    let (t, p) = rung(&w, 1, "edit body", false);
    add_permission(&w.gov, &t, p).await;
    let desc = w
        .gov
        .act(
            "ben",
            "edit_item",
            &format!("item:{}", w.doc),
            json!({"fields": {"description": "d1"}}),
        )
        .await;
    assert_eq!(
        (&desc["status"], &desc["route"]),
        (&json!("waiting"), &json!("governing")),
        "{desc}"
    );
    // An edit of two fields needs both: the body's deny refuses it as a whole.
    let both = w
        .gov
        .act(
            "ben",
            "edit_item",
            &format!("item:{}", w.doc),
            json!({"fields": {"description": "d2", "body": "b2"}}),
        )
        .await;
    assert_eq!(both["status"], "rejected", "{both}");
    assert_eq!(both["reason_code"], "denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_the_nine_levels_decides_reads_and_the_level_above_beats_it() {
    let node = Node::start("gov-levels-read", NodeConfig::dev()).await;
    for (slug, ability, probe) in [
        ("view-a", "view", Probe::View),
        ("vbody-a", "view body", Probe::ViewBody),
    ] {
        ladder(&node, slug, ability, probe, true).await;
        ladder(&node, &format!("{slug}-d"), ability, probe, false).await;
    }
}

/// `do_anything`, `view_anything` and `edit_anything`: each covers its abilities for the agents
/// it names and leaves everyone else to the governors (or to the default read rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn covering_abilities_decide_for_whom_they_name_and_no_one_else() {
    let node = Node::start("gov-covering", NodeConfig::dev()).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;
    let new_doc = |name: &'static str| {
        let gov = &gov;
        async move {
            gov.create_item(
                "ana",
                "community",
                "document",
                json!({"name": name, "body": "b0"}),
            )
            .await
        }
    };
    let visible = |agent: &'static str, id: String| {
        let gov = &gov;
        async move {
            let one = gov.get(Some(agent), &format!("/items/{id}")).await.status;
            let list = gov.get(Some(agent), "/items?limit=1000").await.json();
            let listed = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == json!(id));
            assert_eq!(
                one == 200,
                listed,
                "read and list agree for {agent} on {id}"
            );
            listed
        }
    };

    // do_anything for Ben on an item: his writes there are his; Cy's still go to the governors.
    let d = new_doc("d").await;
    let t = format!("item:{d}");
    add_permission(
        &gov,
        &t,
        json!({"ability": "do_anything", "actors": ["ben"]}),
    )
    .await;
    let ben = gov.act("ben", "deactivate_item", &t, json!({})).await;
    assert_eq!(
        (&ben["status"], &ben["route"], &ben["level"]),
        (&json!("implemented"), &json!("specific"), &json!(1)),
        "{ben}"
    );
    gov.act("ben", "reactivate_item", &t, json!({})).await;
    let cy = gov
        .act("cy", "edit_item", &t, json!({"fields": {"body": "cy's"}}))
        .await;
    assert_eq!(
        (&cy["status"], &cy["route"]),
        (&json!("waiting"), &json!("governing")),
        "a covering grant does not take the decision from the governors for others: {cy}"
    );
    assert!(visible("cy", d.clone()).await, "nor the default read rule");
    // A do_anything deny for Cy: his writes and his reads of it are refused.
    add_permission(
        &gov,
        &t,
        json!({"ability": "do_anything", "actors": ["cy"], "allow": false}),
    )
    .await;
    let cy = gov
        .act(
            "cy",
            "edit_item",
            &t,
            json!({"fields": {"body": "cy's again"}}),
        )
        .await;
    assert_eq!(
        (&cy["status"], &cy["reason_code"]),
        (&json!("rejected"), &json!("denied")),
        "{cy}"
    );
    assert!(!visible("cy", d.clone()).await);
    assert!(visible("ben", d.clone()).await);

    // view_anything covers view and every `view <field>`, and no write.
    let v = new_doc("v").await;
    let vt = format!("item:{v}");
    add_permission(
        &gov,
        &vt,
        json!({"ability": "view_anything", "actors": ["ben"], "allow": false}),
    )
    .await;
    assert!(!visible("ben", v.clone()).await);
    assert!(visible("cy", v.clone()).await, "cy is not named");
    let w = gov
        .act("ben", "edit_item", &vt, json!({"fields": {"body": "b1"}}))
        .await;
    assert_eq!(
        (&w["status"], &w["route"]),
        (&json!("waiting"), &json!("governing")),
        "view_anything decides no write: {w}"
    );
    // An allow at level 1 beats a `view` deny and a `view body` deny for everyone (level 7).
    add_permission(
        &gov,
        &vt,
        json!({"ability": "view", "anyone": true, "allow": false}),
    )
    .await;
    add_permission(
        &gov,
        &vt,
        json!({"ability": "view body", "anyone": true, "allow": false}),
    )
    .await;
    add_permission(
        &gov,
        &vt,
        json!({"ability": "view_anything", "actors": ["cy"]}),
    )
    .await;
    assert!(visible("cy", v.clone()).await);
    let seen = gov.get(Some("cy"), &format!("/items/{v}")).await.json();
    assert_eq!(seen["fields"]["body"], "b0", "{seen}");
    assert!(!visible("ben", v.clone()).await);
    // It covers `view action_notices` too: with that ability given to Ana alone, Cy still
    // reads the notices through view_anything.
    add_permission(
        &gov,
        &vt,
        json!({"ability": "view action_notices", "actors": ["ana"]}),
    )
    .await;
    gov.get(Some("cy"), &format!("/items/{v}/notices"))
        .await
        .expect_status(200);
    let d2 = new_doc("d2").await;
    add_permission(
        &gov,
        &format!("item:{d2}"),
        json!({"ability": "view action_notices", "actors": ["ana"]}),
    )
    .await;
    gov.get(Some("cy"), &format!("/items/{d2}/notices"))
        .await
        .expect_error(403, "not_permitted");

    // edit_anything covers edit_item and every `edit <field>`, not other changes.
    let e = new_doc("e").await;
    let et = format!("item:{e}");
    add_permission(
        &gov,
        &et,
        json!({"ability": "edit_anything", "actors": ["cy"]}),
    )
    .await;
    let edit = gov
        .act(
            "cy",
            "edit_item",
            &et,
            json!({"fields": {"body": "b1", "name": "e1"}}),
        )
        .await;
    assert_eq!(
        (&edit["status"], &edit["route"]),
        (&json!("implemented"), &json!("specific")),
        "{edit}"
    );
    let off = gov.act("cy", "deactivate_item", &et, json!({})).await;
    assert_eq!(
        (&off["status"], &off["route"]),
        (&json!("waiting"), &json!("governing")),
        "edit_anything does not cover deactivate_item: {off}"
    );
    // An edit_anything deny for Ben at level 1 beats `edit body` for anyone at level 7.
    add_permission(&gov, &et, json!({"ability": "edit body", "anyone": true})).await;
    add_permission(
        &gov,
        &et,
        json!({"ability": "edit_anything", "actors": ["ben"], "allow": false}),
    )
    .await;
    let ben = gov
        .act("ben", "edit_item", &et, json!({"fields": {"body": "b2"}}))
        .await;
    assert_eq!(
        (&ben["status"], &ben["reason_code"], &ben["level"]),
        (&json!("rejected"), &json!("denied"), &json!(1)),
        "{ben}"
    );
    let anyone = gov
        .act("ana", "edit_item", &et, json!({"fields": {"body": "b3"}}))
        .await;
    assert_eq!(
        (&anyone["status"], &anyone["level"]),
        (&json!("implemented"), &json!(7)),
        "{anyone}"
    );
    verify_log(&gov).await;
}

/// A collection's `applies_to: members` permissions reach the items added to it only through
/// memberships with `permission_enabled` (false by default), for writes, reads and lists; and
/// setting the flag, by adding or by changing a membership, is decided twice: the change on the
/// collection, and `do_anything` on the member item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_enabled_memberships_carry_collection_grants_and_are_decided_twice() {
    let node = Node::start("gov-enabled", NodeConfig::dev()).await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;
    let mk = |typ: &'static str, name: &'static str| {
        let gov = &gov;
        async move {
            Gov::created(
                &gov.act(
                    "ana",
                    "create_item",
                    "community",
                    json!({"type": typ, "fields": {"name": name}}),
                )
                .await,
            )
        }
    };
    let club = mk("collection", "club").await;
    let ct = format!("item:{club}");
    let doc = mk("document", "doc").await;
    add_permission(
        &gov,
        &ct,
        json!({"ability": "edit_item", "actors": ["cy"], "applies_to": "members"}),
    )
    .await;
    add_permission(
        &gov,
        &ct,
        json!({"ability": "view", "actors": ["ben"], "applies_to": "members", "allow": false}),
    )
    .await;
    let listed_for_ben = |id: String| {
        let gov = &gov;
        async move {
            let list = gov.get(Some("ben"), "/items?limit=1000").await.json();
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == json!(id))
        }
    };
    // A plain membership: the club's permissions do not reach the document.
    let plain = gov
        .act("ana", "add_to_collection", &ct, json!({"item": doc}))
        .await;
    assert_eq!(plain["status"], "implemented", "{plain}");
    let dt = format!("item:{doc}");
    let cy = gov
        .act("cy", "edit_item", &dt, json!({"fields": {"name": "cy1"}}))
        .await;
    assert_eq!(
        (&cy["status"], &cy["route"]),
        (&json!("waiting"), &json!("governing")),
        "{cy}"
    );
    gov.get(Some("ben"), &format!("/items/{doc}"))
        .await
        .expect_status(200);
    assert!(listed_for_ben(doc.clone()).await);
    // The membership changed to permission_enabled (by a governor, who passes both
    // decisions): now they reach it, at level 2.
    let on = gov
        .act(
            "ana",
            "add_to_collection",
            &ct,
            json!({"item": doc, "permission_enabled": true}),
        )
        .await;
    assert_eq!(on["status"], "implemented", "{on}");
    let item = gov.get(None, &format!("/items/{doc}")).await.json();
    assert_eq!(
        item["collections"],
        json!([{"collection": club, "permission_enabled": true}])
    );
    let cy = gov
        .act("cy", "edit_item", &dt, json!({"fields": {"name": "cy2"}}))
        .await;
    assert_eq!(
        (&cy["status"], &cy["route"], &cy["level"]),
        (&json!("implemented"), &json!("specific"), &json!(2)),
        "{cy}"
    );
    gov.get(Some("ben"), &format!("/items/{doc}"))
        .await
        .expect_error(404, "item_not_found");
    assert!(!listed_for_ben(doc.clone()).await);
    // Removed from the club, the document is out of their reach again.
    gov.act("ana", "remove_from_collection", &ct, json!({"item": doc}))
        .await;
    gov.get(Some("ben"), &format!("/items/{doc}"))
        .await
        .expect_status(200);

    // Ben may add to the club, but holds nothing on the items: a plain membership is his to
    // add; a permission-enabled one also needs do_anything on the item, which Ben does not
    // hold, so it goes to the governors and waits for one (both decisions must approve).
    add_permission(
        &gov,
        &ct,
        json!({"ability": "add_to_collection", "actors": ["ben"]}),
    )
    .await;
    let a = mk("document", "a").await;
    let b = mk("document", "b").await;
    let plain = gov
        .act("ben", "add_to_collection", &ct, json!({"item": a}))
        .await;
    assert_eq!(
        (&plain["status"], &plain["route"]),
        (&json!("implemented"), &json!("specific")),
        "{plain}"
    );
    let guarded = gov
        .act(
            "ben",
            "add_to_collection",
            &ct,
            json!({"item": b, "permission_enabled": true}),
        )
        .await;
    assert_eq!(guarded["status"], "waiting", "{guarded}");
    let before = gov.get(None, &format!("/items/{b}")).await.json();
    assert_eq!(before["collections"], json!([]), "nothing yet: {before}");
    let yes = gov
        .answer("ana", "approve", &guarded["conditions"][0]["id"])
        .await;
    assert_eq!(yes["status"], "implemented", "{yes}");
    assert_eq!(gov.action(&guarded["id"]).await["status"], "implemented");
    let after = gov.get(None, &format!("/items/{b}")).await.json();
    assert_eq!(
        after["collections"],
        json!([{"collection": club, "permission_enabled": true}])
    );
    // Turning the flag on for an existing plain membership is guarded the same way; a
    // do_anything deny on the item for Ben refuses it outright.
    add_permission(
        &gov,
        &format!("item:{a}"),
        json!({"ability": "do_anything", "actors": ["ben"], "allow": false}),
    )
    .await;
    let flip = gov
        .act(
            "ben",
            "add_to_collection",
            &ct,
            json!({"item": a, "permission_enabled": true}),
        )
        .await;
    assert_eq!(
        (&flip["status"], &flip["reason_code"]),
        (&json!("rejected"), &json!("denied")),
        "{flip}"
    );
    let still = gov.get(None, &format!("/items/{a}")).await.json();
    assert_eq!(
        still["collections"],
        json!([{"collection": club, "permission_enabled": false}])
    );
    verify_log(&gov).await;
}
