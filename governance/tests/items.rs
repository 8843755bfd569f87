//! Items (contract section 5): types, versions, deactivate / reactivate / destroy, collections,
//! comments, notices with relation notices, reads and field filtering, lists, subscriptions.

mod support;

use agora_governance::{
    Ability, Field, ItemId, ItemType, ListQuery, NoticeKind, Status, Subscription, Viewer,
};
use serde_json::json;
use support::World;

fn world() -> (World, ItemId, ItemId) {
    let mut w = World::found("ana", json!({"members": ["ben", "cy"]}));
    let coll = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "library"}}),
    );
    let coll = w.item(&coll);
    let doc = w.act(
        "ana",
        "create_item",
        &format!("item:{coll}"),
        json!({"type": "document", "fields": {"name": "charter", "body": "v1"}}),
    );
    let doc = w.item(&doc);
    (w, coll, doc)
}

#[test]
fn create_writes_version_one_and_notices() {
    let (w, coll, doc) = world();
    let meta = w.c.item(doc).unwrap();
    assert_eq!(
        (meta.typ(), meta.version(), meta.active()),
        (ItemType::Document, 1, true)
    );
    assert_eq!(meta.container(), Some(coll));
    assert_eq!(w.fields[&doc]["description"], "", "defaults filled in");
    let rec = w.records.values().last().unwrap();
    assert_eq!(rec.result, json!({"item": doc.to_string()}));
}

#[test]
fn edits_version_and_name_the_changed_fields() {
    let (mut w, _, doc) = world();
    let t = format!("item:{doc}");
    let s = w
        .submit(
            "ana",
            agora_governance::change_body(
                "edit_item",
                &t,
                json!({"fields": {"body": "v2", "name": "charter"}, "summary": "typo"}),
            ),
        )
        .unwrap();
    assert_eq!(s.action.status, Status::Implemented);
    let checks = &s.decision.as_ref().unwrap().checks;
    assert_eq!(checks.len(), 1, "only the body changed");
    assert_eq!(checks[0].abilities[0], Ability::EditField(Field::Body));
    assert_eq!(s.effects.versions[0].version, 2);
    assert_eq!(s.effects.versions[0].fields["name"], "charter");
    assert_eq!(s.effects.notices[0].kind, NoticeKind::Edit);
    assert_eq!(s.effects.notices[0].summary, "typo");
    assert_eq!(w.c.item(doc).unwrap().version(), 2);
    let e = w.refused("ana", "edit_item", &t, json!({"fields": {"body": "v2"}}));
    assert_eq!(e.code, "no_change");
    let e = w.refused("ana", "edit_item", &t, json!({"fields": {"item": "1"}}));
    assert_eq!(e.field.as_deref(), Some("params.fields.item"));
    // Without the current fields the core cannot build the next version: a clear refusal.
    let cx = agora_governance::Ctx::at(w.now);
    let e =
        w.c.submit(
            "ana",
            &agora_governance::change_body("edit_item", &t, json!({"fields": {"body": "v3"}})),
            &cx,
        )
        .unwrap_err();
    assert_eq!(e.code, "fields_unavailable");
}

#[test]
fn destroy_only_after_deactivation_then_nothing_more() {
    let (mut w, coll, doc) = world();
    let t = format!("item:{doc}");
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "view", "roles": ["members"]}),
    );
    assert_eq!(
        w.c.permissions_on(&agora_governance::ObjectRef::Item(doc))
            .len(),
        1
    );
    let e = w.refused("ana", "destroy_item", &t, json!({}));
    assert_eq!((e.code, e.status.http()), ("still_active", 409));
    assert_eq!(
        w.act("ana", "deactivate_item", &t, json!({})).status,
        Status::Implemented
    );
    assert_eq!(
        w.refused("ana", "deactivate_item", &t, json!({})).code,
        "already_inactive"
    );
    assert_eq!(
        w.act("ana", "reactivate_item", &t, json!({})).status,
        Status::Implemented
    );
    w.act("ana", "deactivate_item", &t, json!({}));
    let d = w
        .submit(
            "ana",
            agora_governance::change_body("destroy_item", &t, json!({})),
        )
        .unwrap();
    assert_eq!(d.effects.destroyed, vec![doc]);
    assert!(w.c.item(doc).unwrap().destroyed());
    assert!(
        w.c.permissions_on(&agora_governance::ObjectRef::Item(doc))
            .is_empty(),
        "its permissions are removed"
    );
    for (change, params) in [
        ("edit_item", json!({"fields": {"body": "x"}})),
        ("reactivate_item", json!({})),
        ("comment", json!({"body": "x"})),
    ] {
        let e = w.refused("ana", change, &t, params);
        assert_eq!((e.code, e.status.http()), ("destroyed", 409), "{change}");
    }
    let e = w.refused(
        "ana",
        "add_to_collection",
        &format!("item:{coll}"),
        json!({"item": doc.to_string()}),
    );
    assert_eq!(e.code, "destroyed");
    // Reads: agents see nothing; the driver sees the tombstone with its fields nulled.
    let cx = w.cx();
    assert!(!w.c.can_view(Viewer::Agent("ana"), doc, &cx));
    let j = w.c.item_json(Viewer::Driver, doc, 2, None, &cx).unwrap();
    assert_eq!(j["fields"], serde_json::Value::Null);
    assert_eq!(j["destroyed"], true);
}

#[test]
fn comments_and_memberships_write_relation_notices() {
    let (mut w, coll, doc) = world();
    let c = w
        .submit(
            "ben",
            agora_governance::change_body(
                "comment",
                &format!("item:{doc}"),
                json!({"body": "nice"}),
            ),
        )
        .unwrap();
    // ben is no governor: the comment is a proposal; ana approves it.
    assert_eq!(c.action.status, Status::Waiting);
    let done = w.answer("ana", "approve", c.action.conditions[0].id, json!({}));
    assert_eq!(done.status, Status::Implemented);
    let rec = w.record(c.action.id).clone();
    let comment = w.item(&rec);
    assert_eq!(w.fields[&comment]["item"], doc.to_string());
    assert_eq!(w.fields[&comment]["item_version"], 1);
    assert_eq!(w.c.item(comment).unwrap().typ(), ItemType::Comment);
    let other = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "other"}}),
    );
    let other = w.item(&other);
    let add = w
        .submit(
            "ana",
            agora_governance::change_body(
                "add_to_collection",
                &format!("item:{other}"),
                json!({"item": doc.to_string()}),
            ),
        )
        .unwrap();
    let n = &add.effects.notices[0];
    assert_eq!(
        (n.kind, n.item, n.from_item, n.field),
        (
            NoticeKind::Relation,
            other,
            Some(doc),
            Some(Field::Collections)
        )
    );
    let e = w.refused(
        "ana",
        "add_to_collection",
        &format!("item:{other}"),
        json!({"item": doc.to_string()}),
    );
    assert_eq!(e.code, "already_in_collection");
    let e = w.refused(
        "ana",
        "add_to_collection",
        &format!("item:{doc}"),
        json!({"item": other.to_string()}),
    );
    assert_eq!(e.code, "not_a_collection");
    // Cycles are allowed.
    assert_eq!(
        w.act(
            "ana",
            "add_to_collection",
            &format!("item:{other}"),
            json!({"item": coll.to_string()})
        )
        .status,
        Status::Implemented
    );
    assert_eq!(
        w.act(
            "ana",
            "add_to_collection",
            &format!("item:{coll}"),
            json!({"item": other.to_string()})
        )
        .status,
        Status::Implemented
    );
    assert_eq!(
        w.act(
            "ana",
            "remove_from_collection",
            &format!("item:{other}"),
            json!({"item": doc.to_string()})
        )
        .status,
        Status::Implemented
    );
    assert_eq!(
        w.refused(
            "ana",
            "remove_from_collection",
            &format!("item:{other}"),
            json!({"item": doc.to_string()})
        )
        .code,
        "not_in_collection"
    );
}

#[test]
fn reads_default_to_members_until_a_view_permission_applies() {
    let (mut w, coll, doc) = world();
    let cx = w.cx();
    assert!(w.c.can_view(Viewer::Agent("ben"), doc, &cx));
    assert!(!w.c.can_view(Viewer::Agent("stranger"), doc, &cx));
    assert!(w.c.can_view(Viewer::Driver, doc, &cx));
    // A view permission on the collection's members: only cy may view what is in it.
    w.act(
        "ana",
        "add_permission",
        &format!("item:{coll}"),
        json!({"ability": "view", "actors": ["cy"], "applies_to": "members"}),
    );
    let cx = w.cx();
    assert!(w.c.can_view(Viewer::Agent("cy"), doc, &cx));
    assert!(!w.c.can_view(Viewer::Agent("ben"), doc, &cx));
    assert!(
        w.c.can_view(Viewer::Agent("ben"), coll, &cx),
        "the collection itself is not its member"
    );
    // Fields: everything the item shows, unless a field permission applies.
    w.act(
        "ana",
        "add_permission",
        &format!("item:{doc}"),
        json!({"ability": "view body", "actors": ["ana"]}),
    );
    let cx = w.cx();
    let j =
        w.c.item_json(Viewer::Agent("cy"), doc, 1, w.fields.get(&doc), &cx)
            .unwrap();
    assert_eq!(j["fields"]["name"], "charter");
    assert!(
        j["fields"].get("body").is_none(),
        "view body names only ana"
    );
    assert!(
        w.c.item_json(Viewer::Agent("ben"), doc, 1, w.fields.get(&doc), &cx)
            .is_none(),
        "404 for ben"
    );
    // Notices need view action_notices, when permissions name it.
    let n = agora_governance::Notice {
        id: agora_governance::NoticeId(1),
        kind: NoticeKind::Edit,
        item: doc,
        version: 1,
        agent: "ana".into(),
        at: 0,
        summary: String::new(),
        from_item: None,
        from_version: None,
        field: None,
    };
    assert!(w.c.can_read_notice(Viewer::Agent("cy"), &n, &cx));
    w.act(
        "ana",
        "add_permission",
        &format!("item:{doc}"),
        json!({"ability": "view action_notices", "actors": ["cy"], "allow": false}),
    );
    assert!(!w.c.can_read_notice(Viewer::Agent("cy"), &n, &w.cx()));
}

#[test]
fn lists_filter_by_type_container_and_activity() {
    let (mut w, coll, doc) = world();
    let idea = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "idea", "fields": {"name": "i"}}),
    );
    let idea = w.item(&idea);
    let cx = w.cx();
    let q = |typ, within, inactive| ListQuery {
        typ,
        within,
        include_inactive: inactive,
        limit: 100,
        ..Default::default()
    };
    let all =
        w.c.list_items(Viewer::Agent("ben"), &q(None, None, false), &cx);
    assert_eq!(all.items, vec![coll, doc, idea]);
    assert_eq!(all.next_cursor, None);
    assert_eq!(
        w.c.list_items(
            Viewer::Agent("ben"),
            &q(Some(ItemType::Idea), None, false),
            &cx
        )
        .items,
        vec![idea]
    );
    assert_eq!(
        w.c.list_items(Viewer::Agent("ben"), &q(None, Some(coll), false), &cx)
            .items,
        vec![doc]
    );
    assert!(w
        .c
        .list_items(Viewer::Agent("stranger"), &q(None, None, false), &cx)
        .items
        .is_empty());
    w.act("ana", "deactivate_item", &format!("item:{idea}"), json!({}));
    let cx = w.cx();
    assert_eq!(
        w.c.list_items(Viewer::Agent("ben"), &q(None, None, false), &cx)
            .items,
        vec![coll, doc]
    );
    assert_eq!(
        w.c.list_items(Viewer::Agent("ben"), &q(None, None, true), &cx)
            .items,
        vec![coll, doc, idea]
    );
    let page = w.c.list_items(
        Viewer::Agent("ben"),
        &ListQuery {
            limit: 1,
            ..Default::default()
        },
        &cx,
    );
    assert_eq!(
        (page.items.clone(), page.next_cursor),
        (vec![coll], Some(coll))
    );
    let next = w.c.list_items(
        Viewer::Agent("ben"),
        &ListQuery {
            limit: 1,
            cursor: page.next_cursor,
            ..Default::default()
        },
        &cx,
    );
    assert_eq!(next.items, vec![doc]);
}

#[test]
fn subscriptions_match_by_depth_and_kind_and_readability() {
    let (mut w, coll, doc) = world();
    let cx = agora_governance::Ctx::at(w.now);
    let sub = |agent: &str, item: ItemId, extra: serde_json::Value| {
        let mut body = json!({"item": item.to_string(), "deliver_to": format!("https://{agent}.example/hook")});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        Subscription::parse(agent, &body).unwrap()
    };
    w.c.subscribe(sub("ben", coll, json!({"deep": true})), &cx)
        .unwrap();
    w.c.subscribe(
        sub("cy", coll, json!({"members": true, "edit": false})),
        &cx,
    )
    .unwrap();
    w.c.subscribe(sub("ana", doc, json!({})), &cx).unwrap();
    assert_eq!(
        w.c.subscribe(sub("stranger", doc, json!({})), &cx)
            .unwrap_err()
            .code,
        "unknown_target",
        "nobody subscribes to what they cannot view"
    );
    let s = w
        .submit(
            "ana",
            agora_governance::change_body(
                "edit_item",
                &format!("item:{doc}"),
                json!({"fields": {"body": "v2"}}),
            ),
        )
        .unwrap();
    let mut who: Vec<&str> = s
        .effects
        .deliveries
        .iter()
        .map(|d| d.agent.as_str())
        .collect();
    who.sort();
    assert_eq!(who, vec!["ana", "ben"], "cy takes no edits");
    assert_eq!(s.effects.deliveries[0].notice, s.effects.notices[0].id);
    w.act("ana", "deactivate_item", &format!("item:{doc}"), json!({}));
    let d = w
        .submit(
            "ana",
            agora_governance::change_body("destroy_item", &format!("item:{doc}"), json!({})),
        )
        .unwrap();
    let mut who: Vec<&str> = d
        .effects
        .deliveries
        .iter()
        .map(|d| d.agent.as_str())
        .collect();
    who.sort();
    assert_eq!(
        who,
        vec!["ana", "ben", "cy"],
        "destroy notices go out as the item was"
    );
    // Readability is decided per subscriber.
    let other = w.act(
        "ana",
        "create_item",
        &format!("item:{coll}"),
        json!({"type": "idea", "fields": {"name": "x"}}),
    );
    let other = w.item(&other);
    w.act(
        "ana",
        "add_permission",
        &format!("item:{other}"),
        json!({"ability": "view", "actors": ["ana"]}),
    );
    let e = w
        .submit(
            "ana",
            agora_governance::change_body(
                "edit_item",
                &format!("item:{other}"),
                json!({"fields": {"name": "y"}}),
            ),
        )
        .unwrap();
    assert!(
        e.effects.deliveries.is_empty(),
        "ben may no longer view that item"
    );
    assert!(w.c.unsubscribe("ben", coll));
    assert!(!w.c.unsubscribe("ben", coll));
}

#[test]
fn a_waiting_change_to_a_destroyed_item_is_stale() {
    let (mut w, _, doc) = world();
    let t = format!("item:{doc}");
    let e = w.act(
        "ben",
        "edit_item",
        &t,
        json!({"fields": {"body": "proposal"}}),
    );
    assert_eq!(e.status, Status::Waiting);
    w.act("ana", "deactivate_item", &t, json!({}));
    w.act("ana", "destroy_item", &t, json!({}));
    w.answer("ana", "approve", e.conditions[0].id, json!({}));
    assert_eq!(w.record(e.id).reason_code.as_deref(), Some("stale"));
    let red = w.record(e.id).redacted_json();
    assert_eq!(red["params"], serde_json::Value::Null);
}
