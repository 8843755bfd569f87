//! The Deme seed's precedence cases, ported.
//!
//! Sources: mikemintz/deme, `deme_django/docs/architecture.rst`, section "Permissions" (the
//! 9-level table, "the permissions at a level with a lower number take precedence", "the
//! negative permissions take precedence" at one level, `[X]ToSome` reaching direct and
//! indirect members, the global `do_anything` that overrides item abilities "at any level", the
//! `view_anything` / `edit_anything` expansions, and the `permission_enabled` loophole), and
//! `deme_django/cms/permissions.py` (`calculate_item_abilities_for_agent_and_item`: levels
//! walked from one-to-one down to all-to-all). Where this contract departs from Deme (here a
//! deny wins at its level, as the architecture document says, where one version of
//! `permissions.py` let "yes" win; permissions are governed objects; the container an item was
//! created in always reaches), the contract is followed and the test says so.

mod support;

use agora_governance::{Ability, Ctx, ItemId, ObjectRef, Route, Status, Viewer, WalkOutcome};
use serde_json::json;
use support::World;

/// ana founds and governs; ben and cy are members; ben holds `editors`. A collection `outer`
/// holds a collection `inner` (created in it), which holds document `doc`.
fn world() -> (World, ItemId, ItemId, ItemId) {
    let mut w = World::found("ana", json!({"members": ["ben", "cy"]}));
    w.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "editors", "actors": ["ben"]}),
    );
    let outer = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "outer"}}),
    );
    let outer = w.item(&outer);
    let inner = w.act(
        "ana",
        "create_item",
        &format!("item:{outer}"),
        json!({"type": "collection", "fields": {"name": "inner"}}),
    );
    let inner = w.item(&inner);
    let doc = w.act(
        "ana",
        "create_item",
        &format!("item:{inner}"),
        json!({"type": "document", "fields": {"name": "doc"}}),
    );
    let doc = w.item(&doc);
    (w, outer, inner, doc)
}

fn walk(w: &World, agent: &str, ability: &str, item: ItemId) -> WalkOutcome {
    w.c.permission_decision(
        agent,
        Ability::parse(ability).unwrap(),
        &ObjectRef::Item(item),
        &Ctx::at(w.now),
    )
}

fn level(o: &WalkOutcome) -> (bool, u8) {
    match o {
        WalkOutcome::Granted { level, .. } => (true, *level),
        WalkOutcome::Denied { level, .. } => (false, *level),
        other => panic!("no level decided: {other:?}"),
    }
}

#[test]
fn a_lower_level_takes_precedence() {
    // "When there are multiple permissions with the same ability, the permissions at a level
    // with a lower number ... take precedence."
    let (mut w, _, _, doc) = world();
    let t = format!("item:{doc}");
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "edit_item", "anyone": true}),
    );
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "edit_item", "actors": ["ben"], "allow": false}),
    );
    assert_eq!(
        level(&walk(&w, "ben", "edit_item", doc)),
        (false, 1),
        "OneToOne deny beats AllToOne allow"
    );
    assert_eq!(level(&walk(&w, "cy", "edit_item", doc)), (true, 7));
    // Through the pipeline: ben is denied, cy edits at once, the governors unconsulted.
    let e = w.act("ben", "edit_item", &t, json!({"fields": {"name": "x"}}));
    assert_eq!(
        (e.reason_code.as_deref(), e.route),
        (Some("denied"), Some(Route::Specific))
    );
    let e = w.act("cy", "edit_item", &t, json!({"fields": {"name": "x"}}));
    assert_eq!(
        (e.status, e.route),
        (Status::Implemented, Some(Route::Specific))
    );
}

#[test]
fn at_one_level_the_negative_permission_takes_precedence() {
    // "When there are multiple permissions at the same level, the negative (is_allowed=False)
    // permissions take precedence over the positive permissions." (architecture.rst; the
    // contract: "a deny there wins over any allow there").
    let (mut w, outer, _, doc) = world();
    let t = format!("item:{outer}");
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "edit_item", "roles": ["editors"], "applies_to": "members"}),
    );
    w.act("ana", "add_permission", &t, json!({"ability": "edit_anything", "roles": ["editors"], "applies_to": "members", "allow": false}));
    assert_eq!(level(&walk(&w, "ben", "edit_item", doc)), (false, 5));
}

#[test]
fn to_some_reaches_indirect_members_only_through_permission_enabled() {
    // "[X]ToSome ... we refer to both direct and indirect members", and they "only propagate to
    // members of the collection through memberships with permission_enabled=True". Here the
    // container an item was created in always reaches (a departure: Deme has no containers).
    let (mut w, outer, _, doc) = world();
    w.act(
        "ana",
        "add_permission",
        &format!("item:{outer}"),
        json!({"ability": "edit_item", "actors": ["cy"], "applies_to": "members"}),
    );
    assert_eq!(
        level(&walk(&w, "cy", "edit_item", doc)),
        (true, 2),
        "doc is in inner, created in outer"
    );
    // A document added to `other` (not enabled), and `other` added to outer (enabled).
    let other = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "other"}}),
    );
    let other = w.item(&other);
    let loose = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "document", "fields": {"name": "loose"}}),
    );
    let loose = w.item(&loose);
    w.act(
        "ana",
        "add_to_collection",
        &format!("item:{outer}"),
        json!({"item": other.to_string(), "permission_enabled": true}),
    );
    w.act(
        "ana",
        "add_to_collection",
        &format!("item:{other}"),
        json!({"item": loose.to_string()}),
    );
    assert_eq!(
        walk(&w, "cy", "edit_item", loose),
        WalkOutcome::NotApplicable,
        "a link without permission_enabled breaks the chain"
    );
    w.act(
        "ana",
        "add_to_collection",
        &format!("item:{other}"),
        json!({"item": loose.to_string(), "permission_enabled": true}),
    );
    assert_eq!(
        level(&walk(&w, "cy", "edit_item", loose)),
        (true, 2),
        "now every link is enabled"
    );
}

#[test]
fn global_do_anything_overrides_item_abilities_at_any_level() {
    // "If an agent has the global do_anything ability from an EveryonePermission, then giving
    // him any item ability with is_allowed=False will have no effect." The contract keeps this
    // for community-wide do_anything allows the agent holds (levels 3, 6 and 9).
    let (mut w, _, _, doc) = world();
    let t = format!("item:{doc}");
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "view", "actors": ["cy"], "allow": false}),
    );
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "edit_item", "actors": ["cy"], "allow": false}),
    );
    assert!(!w.c.can_view(Viewer::Agent("cy"), doc, &w.cx()));
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "do_anything", "anyone": true, "applies_to": "members"}),
    );
    assert_eq!(level(&walk(&w, "cy", "edit_item", doc)), (true, 9));
    assert!(w.c.can_view(Viewer::Agent("cy"), doc, &w.cx()));
    assert!(
        w.c.can_view(Viewer::Agent("stranger"), doc, &w.cx()),
        "everyone, members or not"
    );
}

#[test]
fn view_anything_and_edit_anything_expand_only_to_their_family() {
    // "view_anything (Similar to do_anything, except it expands only to abilities that start
    // with 'view ')"; likewise edit_anything with 'edit '.
    let (mut w, _, _, doc) = world();
    let t = format!("item:{doc}");
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "view_anything", "actors": ["ben"], "allow": false}),
    );
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "edit_anything", "actors": ["cy"], "allow": false}),
    );
    let cx = w.cx();
    assert!(!w.c.can_read(
        Viewer::Agent("ben"),
        Ability::parse("view body").unwrap(),
        doc,
        &cx
    ));
    assert!(w.c.can_read(
        Viewer::Agent("cy"),
        Ability::parse("view body").unwrap(),
        doc,
        &cx
    ));
    assert_eq!(
        walk(&w, "ben", "edit name", doc),
        WalkOutcome::NotApplicable
    );
    assert_eq!(level(&walk(&w, "cy", "edit name", doc)), (false, 1));
    assert_eq!(
        walk(&w, "cy", "comment", doc),
        WalkOutcome::NotApplicable,
        "comment is no 'edit ..'"
    );
}

#[test]
fn an_ability_needs_an_allow_with_no_deny_at_that_level_or_below() {
    // "An agent has an ability if there exists a relevant permission with is_allowed=True at
    // some level without any relevant permissions with is_allowed=False at any levels with the
    // same or lower number."
    let (mut w, outer, inner, doc) = world();
    w.act(
        "ana",
        "add_permission",
        &format!("item:{doc}"),
        json!({"ability": "comment", "roles": ["editors"]}),
    );
    w.act(
        "ana",
        "add_permission",
        &format!("item:{inner}"),
        json!({"ability": "comment", "actors": ["ben"], "applies_to": "members", "allow": false}),
    );
    assert_eq!(
        level(&walk(&w, "ben", "comment", doc)),
        (false, 2),
        "the deny at 2 is below the allow at 4"
    );
    w.act(
        "ana",
        "add_permission",
        &format!("item:{outer}"),
        json!({"ability": "comment", "actors": ["ben"], "applies_to": "members"}),
    );
    assert_eq!(
        level(&walk(&w, "ben", "comment", doc)),
        (false, 2),
        "an allow at the same level loses to the deny"
    );
}

#[test]
fn the_permission_enabled_loophole_stays_closed() {
    // "A user could simply create a collection, add a private item to that collection ...
    // create a [X]ToSome permission for that collection ... and thus gain full access to the
    // private item. In order to resolve this, we use the permission_enabled field", which only
    // those with do_anything on the member item may set.
    let (mut w, _, _, doc) = world();
    // ben may create collections and do anything inside what he creates.
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "create_item", "actors": ["ben"]}),
    );
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "do_anything", "actors": ["ben"], "applies_to": "members",
        "condition": {"type": "creator_only"}}),
    );
    // doc is private: only ana may do anything to it.
    w.act(
        "ana",
        "add_permission",
        &format!("item:{doc}"),
        json!({"ability": "do_anything", "actors": ["ana"]}),
    );
    w.act(
        "ana",
        "add_permission",
        &format!("item:{doc}"),
        json!({"ability": "do_anything", "inverse": true, "actors": ["ana"], "allow": false}),
    );
    let mine = w.act(
        "ben",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "mine"}}),
    );
    assert_eq!(mine.status, Status::Implemented);
    let mine = w.item(&mine);
    // His collection, his grant on its members...
    let grant = w.act(
        "ben",
        "add_permission",
        &format!("item:{mine}"),
        json!({"ability": "do_anything", "actors": ["ben"], "applies_to": "members"}),
    );
    assert_eq!(grant.status, Status::Implemented);
    // ...but pulling the private item in with permission_enabled needs do_anything on it.
    let capture = w.act(
        "ben",
        "add_to_collection",
        &format!("item:{mine}"),
        json!({"item": doc.to_string(), "permission_enabled": true}),
    );
    assert_eq!(capture.status, Status::Rejected);
    assert_eq!(capture.reason_code.as_deref(), Some("denied"));
    assert!(w.c.item(doc).unwrap().membership(mine).is_none());
    assert_eq!(level(&walk(&w, "ben", "edit_item", doc)), (false, 7));
}
