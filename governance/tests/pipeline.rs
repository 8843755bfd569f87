//! The pipeline and the action lifecycle, rule by rule (contract sections 2, 3 and 7): routes,
//! proposals and their timeout, grants OR-ed and conditions AND-ed, batches, re-validation
//! (`stale`), answers decided by the condition, consensus, votes, filters, invariants,
//! templates and dry runs.

mod support;

use agora_governance::{
    change_body, Community, Ctx, ItemId, ObjectRef, Route, Status, VoteResult, DEFAULT_WAIT_MS,
};
use serde_json::json;
use support::World;

fn basic() -> World {
    // ana founds: sole owner and governor. ben, cy, dee are members.
    World::found("ana", json!({"members": ["ben", "cy", "dee"]}))
}

#[test]
fn founding_default_is_concords() {
    let w = World::found("ana", json!({}));
    let c = w.c.constitution_json();
    assert_eq!(c["owners"]["actors"], json!(["ana"]));
    assert_eq!(c["governors"]["actors"], json!(["ana"]));
    assert_eq!(c["owners"]["conditions"], json!([]));
    assert_eq!(c["members"], json!(["ana"]));
    assert_eq!(c["proposals"], true);
    assert_eq!(c["log_head"], agora_governance::GENESIS);
    assert!(Community::found("", &json!({}), 0).is_err());
    assert!(Community::found("a", &json!({"template": "nope"}), 0).is_err());
    assert!(Community::found("a", &json!({"x": 1}), 0).is_err());
    assert!(Community::found("a", &json!(null), 0).is_err());
    assert!(Community::found("a", &json!([]), 0).is_err());
}

#[test]
fn a_non_governors_change_is_a_proposal_that_times_out_after_168_hours() {
    let mut w = basic();
    let a = w.act("ben", "rename", "community", json!({"name": "New"}));
    assert_eq!(a.status, Status::Waiting);
    assert_eq!(a.route, Some(Route::Governing));
    let cond = a.conditions[0].id;
    let timer = w.timers[&cond].clone();
    assert_eq!(timer.at, w.now + DEFAULT_WAIT_MS);
    w.advance_hours(168.0);
    assert!(w.fire_timer(cond));
    let a = w.record(a.id).clone();
    assert_eq!(a.status, Status::Rejected);
    assert_eq!(a.reason_code.as_deref(), Some("timed_out"));
    assert!(!w.fire_timer(cond), "a second firing is a reported no-op");
    assert_eq!(w.c.constitution().name, "");
}

#[test]
fn with_proposals_off_a_non_governor_is_rejected() {
    let mut w = basic();
    let off = w.act(
        "ana",
        "set_proposals",
        "community",
        json!({"enabled": false}),
    );
    assert_eq!(
        (off.status, off.route),
        (Status::Implemented, Some(Route::Foundational))
    );
    let a = w.act("ben", "rename", "community", json!({"name": "X"}));
    assert_eq!(a.status, Status::Rejected);
    assert_eq!(a.reason_code.as_deref(), Some("not_permitted"));
    // A non-owner's foundational change is rejected whatever proposals say.
    let f = w.act(
        "ben",
        "set_proposals",
        "community",
        json!({"enabled": true}),
    );
    assert_eq!(f.reason_code.as_deref(), Some("foundational_only"));
    assert_eq!(f.route, Some(Route::Foundational));
}

#[test]
fn with_governing_off_and_no_permission_nobody_may() {
    let mut w = basic();
    let item = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "document", "fields": {"name": "d"}}),
    );
    let item = w.item(&item);
    let t = format!("item:{item}");
    w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "edit name", "actors": ["ben"]}),
    );
    assert_eq!(
        w.act("ana", "disable_governing", &t, json!({})).status,
        Status::Implemented
    );
    let e = w.act(
        "ana",
        "edit_item",
        &t,
        json!({"fields": {"description": "e"}}),
    );
    assert_eq!(e.status, Status::Rejected);
    assert_eq!(e.route, None);
    assert_eq!(e.reason_code.as_deref(), Some("not_permitted"));
    // Nor may anyone add a permission there now; but the one set before still decides.
    let p = w.act(
        "ana",
        "add_permission",
        &t,
        json!({"ability": "edit description", "actors": ["ana"]}),
    );
    assert_eq!(p.reason_code.as_deref(), Some("not_permitted"));
    let e = w.act("ben", "edit_item", &t, json!({"fields": {"name": "e"}}));
    assert_eq!(
        (e.status, e.route),
        (Status::Implemented, Some(Route::Specific))
    );
    assert_eq!(w.fields[&item]["name"], "e");
}

#[test]
fn grants_are_ored_and_conditions_on_one_grant_anded() {
    let mut w = basic();
    // Two grants at the same level for ben: one needs cy's approval, one needs dee's AND cy's.
    w.act("ana", "add_permission", "community",
        json!({"ability": "rename", "actors": ["ben"], "condition": {"type": "approval", "approvers": {"actors": ["cy"]}}}));
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["ben"], "conditions": [
            {"type": "approval", "approvers": {"actors": ["dee"]}},
            {"type": "approval", "approvers": {"actors": ["cy"]}}]}),
    );
    let a = w.act("ben", "rename", "community", json!({"name": "R"}));
    assert_eq!(
        (a.status, a.route),
        (Status::Waiting, Some(Route::Specific))
    );
    assert_eq!(a.conditions.len(), 3);
    // dee approves: the second grant still waits on its other condition.
    let dee = a
        .conditions
        .iter()
        .find(|c| {
            w.c.condition(c.id)
                .map(|s| format!("{:?}", s.spec))
                .unwrap_or_default()
                .contains("dee")
        })
        .unwrap()
        .id;
    assert_eq!(
        w.answer("dee", "approve", dee, json!({})).status,
        Status::Implemented
    );
    assert_eq!(w.status(a.id), "waiting");
    // cy approves the first grant: implemented; the rest is closed.
    let cy = a.conditions[0].id;
    w.answer("cy", "approve", cy, json!({}));
    assert_eq!(w.status(a.id), "implemented");
    assert_eq!(w.c.constitution().name, "R");
    assert!(w.c.pending().next().is_none());
    let rec = w.record(a.id);
    assert!(rec.conditions.iter().any(|c| c.status.name() == "closed"));
}

#[test]
fn rejected_when_every_grant_is_rejected() {
    let mut w = basic();
    w.act("ana", "add_permission", "community",
        json!({"ability": "rename", "actors": ["ben"], "condition": {"type": "approval", "approvers": {"actors": ["cy"]}, "rejecters": {"actors": ["cy"]}}}));
    w.act("ana", "add_permission", "community",
        json!({"ability": "rename", "actors": ["ben"], "condition": {"type": "approval", "approvers": {"actors": ["dee"]}, "rejecters": {"actors": ["dee"]}}}));
    let a = w.act("ben", "rename", "community", json!({"name": "R"}));
    w.answer("cy", "reject", a.conditions[0].id, json!({}));
    assert_eq!(w.status(a.id), "waiting", "one grant left");
    w.answer("dee", "reject", a.conditions[1].id, json!({}));
    assert_eq!(
        w.record(a.id).reason_code.as_deref(),
        Some("condition_rejected")
    );
}

#[test]
fn batches_share_one_status() {
    let mut w = basic();
    // All implemented, atomically.
    let b = w
        .submit(
            "ana",
            json!({"batch": [
        {"change": "add_role", "target": "community", "params": {"name": "mods"}},
        {"change": "add_people_to_role", "target": "role:mods", "params": {"agents": ["ben"]}}]}),
        )
        .unwrap();
    assert_eq!(b.action.status, Status::Implemented);
    assert!(w.c.holds_role(
        "ben",
        &agora_governance::RoleKey::community("mods"),
        &w.cx()
    ));
    // One rejected check rejects all: ben may rename (permission) but not change owners.
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["ben"]}),
    );
    let b = w
        .submit(
            "ben",
            json!({"batch": [
        {"change": "rename", "target": "community", "params": {"name": "Z"}},
        {"change": "change_owners", "target": "owners", "params": {"actors": ["ben"]}}]}),
        )
        .unwrap();
    assert_eq!(b.action.status, Status::Rejected);
    assert_eq!(b.action.reason_code.as_deref(), Some("foundational_only"));
    assert_eq!(
        w.c.constitution().name,
        "",
        "nothing of a rejected batch is applied"
    );
    // Implemented + waiting = waiting on the waiting part's conditions; all applied at once.
    let b = w
        .submit(
            "ben",
            json!({"batch": [
        {"change": "rename", "target": "community", "params": {"name": "Z"}},
        {"change": "add_role", "target": "community", "params": {"name": "x"}}]}),
        )
        .unwrap();
    assert_eq!(b.action.status, Status::Waiting);
    assert_eq!(w.c.constitution().name, "");
    w.answer("ana", "approve", b.action.conditions[0].id, json!({}));
    assert_eq!(w.c.constitution().name, "Z");
    assert!(w
        .c
        .constitution()
        .roles
        .contains_key(&agora_governance::RoleKey::community("x")));
    assert_eq!(w.record(b.action.id).result, json!({"batch": [{}, {}]}));
}

#[test]
fn a_waiting_action_that_no_longer_validates_is_stale() {
    let mut w = basic();
    w.act("ana", "add_role", "community", json!({"name": "mods"}));
    let a = w.act(
        "ben",
        "add_people_to_role",
        "role:mods",
        json!({"agents": ["cy"]}),
    );
    assert_eq!(a.status, Status::Waiting);
    assert_eq!(
        w.act("ana", "remove_role", "role:mods", json!({})).status,
        Status::Implemented
    );
    w.answer("ana", "approve", a.conditions[0].id, json!({}));
    let a = w.record(a.id);
    assert_eq!(a.status, Status::Rejected);
    assert_eq!(a.reason_code.as_deref(), Some("stale"));
}

#[test]
fn invariants_refuse_and_record_nothing() {
    let mut w = basic();
    let e = w.refused("ana", "change_owners", "owners", json!({"actors": []}));
    assert_eq!(e.code, "last_owner");
    w.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "mods", "actors": ["ben"]}),
    );
    let e = w.refused("ana", "add_role", "community", json!({"name": "mods"}));
    assert_eq!(
        (e.code, e.field.as_deref()),
        ("duplicate_role", Some("params.name"))
    );
    let e = w.refused("ana", "add_role", "community", json!({"name": "members"}));
    assert_eq!(e.code, "duplicate_role");
    let e = w.refused(
        "ana",
        "add_people_to_role",
        "role:mods",
        json!({"agents": ["cy", "stranger"]}),
    );
    assert_eq!(
        (e.code, e.field.as_deref()),
        ("not_a_member", Some("params.agents[1]"))
    );
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "roles": ["mods"]}),
    );
    let e = w.refused("ana", "remove_role", "role:mods", json!({}));
    assert_eq!(e.code, "role_in_use");
    let e = w.refused("ana", "remove_role", "role:nope", json!({}));
    assert_eq!((e.code, e.status.http()), ("unknown_target", 404));
    let e = w.refused(
        "ana",
        "edit_permission",
        "permission:99",
        json!({"allow": false}),
    );
    assert_eq!(e.code, "unknown_target");
    let e = w.refused(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "roles": ["ghosts"]}),
    );
    assert_eq!(e.code, "unknown_role");
    // Owners through a role: removing its last holder breaks the invariant.
    w.act("ana", "change_owners", "owners", json!({"roles": ["mods"]}));
    let e = w.refused(
        "ana",
        "remove_people_from_role",
        "role:mods",
        json!({"agents": ["ben"]}),
    );
    assert_eq!(e.code, "last_owner");
    let e = w.refused(
        "ana",
        "remove_members",
        "community",
        json!({"agents": ["ben"]}),
    );
    assert_eq!(e.code, "last_owner");
    let e = w.refused("ana", "remove_role", "role:mods", json!({}));
    assert_eq!(e.code, "role_in_use", "owners name it");
}

#[test]
fn people_of_an_authority_role_are_changed_by_the_owners() {
    let mut w = basic();
    w.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "board", "actors": ["ben"]}),
    );
    w.act(
        "ana",
        "change_governors",
        "governors",
        json!({"roles": ["board"]}),
    );
    // ben governs; adding to the board is foundational, so ben (no owner) is refused.
    let a = w.act(
        "ben",
        "add_people_to_role",
        "role:board",
        json!({"agents": ["cy"]}),
    );
    assert_eq!(a.reason_code.as_deref(), Some("foundational_only"));
    let a = w.act(
        "ana",
        "add_people_to_role",
        "role:board",
        json!({"agents": ["cy"]}),
    );
    assert_eq!(
        (a.status, a.route),
        (Status::Implemented, Some(Route::Foundational))
    );
    // A removed member leaves their roles: removing a board member is foundational too.
    let r = w.act(
        "ben",
        "remove_members",
        "community",
        json!({"agents": ["cy"]}),
    );
    assert_eq!(r.reason_code.as_deref(), Some("foundational_only"));
    let r = w.act(
        "ana",
        "remove_members",
        "community",
        json!({"agents": ["cy"]}),
    );
    assert_eq!(
        (r.status, r.route),
        (Status::Implemented, Some(Route::Foundational))
    );
    assert!(!w.c.holds_role(
        "cy",
        &agora_governance::RoleKey::community("board"),
        &w.cx()
    ));
}

#[test]
fn answers_are_decided_by_the_condition() {
    let mut w = basic();
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["ben", "cy"],
        "condition": {"type": "approval", "approvers": {"actors": ["ben", "cy"]}}}),
    );
    // ben may not approve his own action (self_approval false by default).
    let a = w.act("ben", "rename", "community", json!({"name": "B"}));
    let cond = a.conditions[0].id;
    let own = w.answer("ben", "approve", cond, json!({}));
    assert_eq!(own.reason_code.as_deref(), Some("not_permitted"));
    assert_eq!(own.route, None);
    // Nobody named as rejecters: the governors reject.
    let no = w.answer("cy", "reject", cond, json!({}));
    assert_eq!(
        no.status,
        Status::Rejected,
        "cy approves but does not reject"
    );
    w.answer("ana", "reject", cond, json!({}));
    assert_eq!(
        w.record(a.id).reason_code.as_deref(),
        Some("condition_rejected")
    );
    // An answer a condition does not take, and one to no condition.
    let a = w.act("cy", "rename", "community", json!({"name": "C"}));
    let e = w.refused(
        "ana",
        "respond",
        &format!("condition:{}", a.conditions[0].id),
        json!({"response": "support"}),
    );
    assert_eq!(e.code, "answer_not_supported");
    let e = w.refused("ana", "approve", "condition:999", json!({}));
    assert_eq!((e.code, e.status.http()), ("unknown_target", 404));
}

#[test]
fn consensus_waits_its_minimum_and_counts_responses() {
    let mut w = basic();
    w.act("ana", "set_governor_condition", "governors", json!({"conditions": [
        {"type": "consensus", "participants": {"actors": ["ben", "cy", "dee"]}, "resolvers": {"actors": ["ben"]},
         "minimum_hours": 2, "strict": true}]}));
    let a = w.act("ana", "rename", "community", json!({"name": "K"}));
    assert_eq!(a.status, Status::Waiting);
    let cond = a.conditions[0].id;
    let t = format!("condition:{cond}");
    w.answer("cy", "respond", cond, json!({"response": "block"}));
    w.answer(
        "cy",
        "respond",
        cond,
        json!({"response": "support_with_reservations"}),
    );
    w.answer("ben", "respond", cond, json!({"response": "support"}));
    let e = w.refused("ben", "resolve", &t, json!({}));
    assert_eq!((e.code, e.status.http()), ("too_early", 409));
    assert_eq!(
        w.answer("dee", "resolve", cond, json!({})).status,
        Status::Rejected,
        "dee is no resolver"
    );
    w.advance_hours(2.0);
    // Strict: dee has not answered, so resolving now rejects.
    w.answer("ben", "resolve", cond, json!({}));
    assert_eq!(w.record(a.id).status, Status::Rejected);
    // Loose: one support and no block suffices.
    w.act("ana", "set_governor_condition", "governors", json!({"conditions": [
        {"type": "consensus", "participants": {"actors": ["ben", "cy", "dee"]}, "resolvers": {"actors": ["ben"]},
         "minimum_hours": 0}]}));
    let a = w.act("ana", "rename", "community", json!({"name": "L"}));
    w.answer(
        "cy",
        "respond",
        a.conditions[0].id,
        json!({"response": "support"}),
    );
    w.answer("ben", "resolve", a.conditions[0].id, json!({}));
    assert_eq!(w.record(a.id).status, Status::Implemented);
    assert_eq!(w.c.constitution().name, "L");
}

#[test]
fn vote_conditions_pass_by_passed_or_by_the_first_option() {
    let mut w = basic();
    w.act("ana", "set_governor_condition", "governors", json!({"conditions": [
        {"type": "vote", "method": "choice", "params": {"options": ["yes", "no"]}, "voters": {"roles": ["members"]}, "duration_hours": 1.5}]}));
    let a = w.act("ana", "rename", "community", json!({"name": "V"}));
    let cond = a.conditions[0].id;
    let v = w.votes[&cond].clone();
    assert_eq!(v.closes_at, w.now + 5_400_000);
    assert_eq!(v.eligible, vec!["ana", "ben", "cy", "dee"]);
    assert_eq!(
        w.timers.get(&cond),
        None,
        "a vote has no timeout; it closes"
    );
    let e = w.refused("ana", "approve", &format!("condition:{cond}"), json!({}));
    assert_eq!(e.code, "answer_not_supported");
    assert!(w
        .c
        .set_vote_process(cond, "/api/internal/process/vote.choice/7".into())
        .is_some());
    assert!(w.close_vote(cond, VoteResult::Winner(Some("no".into()))));
    assert_eq!(w.record(a.id).status, Status::Rejected);
    assert_eq!(
        w.record(a.id).conditions[0].process.as_deref(),
        Some("/api/internal/process/vote.choice/7")
    );
    let a = w.act("ana", "rename", "community", json!({"name": "V"}));
    assert!(w.close_vote(a.conditions[0].id, VoteResult::Winner(Some("yes".into()))));
    assert_eq!(w.record(a.id).status, Status::Implemented);
}

#[test]
fn filters_decide_at_once() {
    let mut w = World::found("ana", json!({"template": "anyone_can_join"}));
    // Anyone may add themselves, nobody else.
    let me = w.act(
        "zoe",
        "add_members",
        "community",
        json!({"agents": ["zoe"]}),
    );
    assert_eq!(
        (me.status, me.route),
        (Status::Implemented, Some(Route::Specific))
    );
    let other = w.act(
        "yan",
        "add_members",
        "community",
        json!({"agents": ["xia"]}),
    );
    assert_eq!(other.reason_code.as_deref(), Some("not_permitted"));
    // rate_limit: two creations per hour.
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "create_item", "roles": ["members"],
        "condition": {"type": "rate_limit", "count": 2, "per_hours": 1}}),
    );
    for i in 0..2 {
        let a = w.act(
            "zoe",
            "create_item",
            "community",
            json!({"type": "idea", "fields": {"name": format!("i{i}")}}),
        );
        assert_eq!(a.status, Status::Implemented);
    }
    let third = w.act(
        "zoe",
        "create_item",
        "community",
        json!({"type": "idea", "fields": {"name": "i3"}}),
    );
    assert_eq!(third.reason_code.as_deref(), Some("not_permitted"));
    w.advance_hours(1.01);
    let later = w.act(
        "zoe",
        "create_item",
        "community",
        json!({"type": "idea", "fields": {"name": "i4"}}),
    );
    assert_eq!(later.status, Status::Implemented);
    // creator_only and field_matches on edits.
    let doc = w.act(
        "zoe",
        "create_item",
        "community",
        json!({"type": "document", "fields": {"name": "open"}}),
    );
    let doc = w.item(&doc);
    w.act("ana", "add_permission", "community", json!({"ability": "edit_item", "anyone": true, "applies_to": "members",
        "conditions": [{"type": "creator_only"}, {"type": "field_matches", "field": "name", "value": "open"}]}));
    let t = format!("item:{doc}");
    let mine = w.act("zoe", "edit_item", &t, json!({"fields": {"body": "b"}}));
    assert_eq!(mine.status, Status::Implemented);
    let notmine = w.act("ana", "edit_item", &t, json!({"fields": {"body": "c"}}));
    assert_eq!(
        notmine.route,
        Some(Route::Specific),
        "ana is no creator: the permission applies but does not match"
    );
    assert_eq!(notmine.reason_code.as_deref(), Some("not_permitted"));
    w.act(
        "zoe",
        "edit_item",
        &t,
        json!({"fields": {"name": "closed"}}),
    );
    let closed = w.act("zoe", "edit_item", &t, json!({"fields": {"body": "d"}}));
    assert_eq!(
        closed.reason_code.as_deref(),
        Some("not_permitted"),
        "field_matches fails now"
    );
}

#[test]
fn templates_shape_who_decides() {
    let mut w = World::found(
        "ana",
        json!({"template": "voting_members", "members": ["ben"]}),
    );
    let a = w.act("ben", "add_members", "community", json!({"agents": ["cy"]}));
    assert_eq!(
        (a.status, a.route),
        (Status::Waiting, Some(Route::Foundational)),
        "owners are given through members"
    );
    assert_eq!(a.conditions[0].typ, "vote");
    let a = w.act(
        "zed",
        "add_members",
        "community",
        json!({"agents": ["zed"]}),
    );
    assert_eq!(a.reason_code.as_deref(), Some("foundational_only"));
    let mut w = World::found(
        "ana",
        json!({"template": "invite_only", "members": ["ben"]}),
    );
    assert_eq!(
        w.act("ben", "add_members", "community", json!({"agents": ["cy"]}))
            .status,
        Status::Implemented
    );
    assert_eq!(
        w.act("zed", "rename", "community", json!({"name": "z"}))
            .reason_code
            .as_deref(),
        Some("not_permitted")
    );
    // apply_template later is foundational.
    let mut w = basic();
    assert_eq!(
        w.act(
            "ben",
            "apply_template",
            "community",
            json!({"template": "voting_members"})
        )
        .reason_code
        .as_deref(),
        Some("foundational_only")
    );
    let t = w.act(
        "ana",
        "apply_template",
        "community",
        json!({"template": "members_and_board", "board": ["ben"]}),
    );
    assert_eq!(t.status, Status::Implemented);
    assert!(w.c.is_governor("ben", &w.cx()));
    assert!(!w.c.is_governor("ana", &w.cx()));
    let e = w.refused(
        "ana",
        "apply_template",
        "community",
        json!({"template": "members_and_board", "board": ["stranger"]}),
    );
    assert_eq!(e.code, "not_a_member");
}

#[test]
fn automated_roles_are_evaluated_at_each_decision() {
    let mut w = basic();
    w.act("ana", "add_role", "community", json!({"name": "veterans", "rule": {"all": [
        {"member_for_hours": 720}, {"implemented_actions": {"count": 1, "change": "create_item"}}]}}));
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "roles": ["veterans"]}),
    );
    w.act(
        "ben",
        "create_item",
        "community",
        json!({"type": "idea", "fields": {"name": "i"}}),
    );
    let early = w.act("ben", "rename", "community", json!({"name": "x"}));
    assert_eq!(
        early.reason_code.as_deref(),
        Some("not_permitted"),
        "too new"
    );
    w.advance_hours(720.0);
    // ben's idea was a proposal; it waits still, so ben has no implemented create_item yet.
    let pending: Vec<_> = w.c.pending().map(|p| p.record.conditions[0].id).collect();
    let still = w.act("ben", "rename", "community", json!({"name": "x"}));
    assert_eq!(still.reason_code.as_deref(), Some("not_permitted"));
    w.answer("ana", "approve", pending[0], json!({}));
    let now = w.act("ben", "rename", "community", json!({"name": "x"}));
    assert_eq!(now.status, Status::Implemented);
    // linked_account: the identity directory is the caller's.
    w.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "gh", "rule": {"linked_account": "github"}}),
    );
    let gh = |a: &str, p: &str| a == "cy" && p == "github";
    let cx = Ctx::at(w.now).with_accounts(&gh);
    assert!(w
        .c
        .holds_role("cy", &agora_governance::RoleKey::community("gh"), &cx));
    assert!(!w
        .c
        .holds_role("dee", &agora_governance::RoleKey::community("gh"), &cx));
    assert!(!w
        .c
        .holds_role("cy", &agora_governance::RoleKey::community("gh"), &w.cx()));
}

#[test]
fn permission_enabled_is_decided_twice() {
    let mut w = basic();
    // ben's own collection, with a permission letting him do anything to its members.
    let coll = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "bens"}}),
    );
    let coll = w.item(&coll);
    let private = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "document", "fields": {"name": "secret"}}),
    );
    let private = w.item(&private);
    w.act(
        "ana",
        "add_permission",
        &format!("item:{coll}"),
        json!({"ability": "add_to_collection", "actors": ["ben"]}),
    );
    w.act(
        "ana",
        "add_permission",
        &format!("item:{coll}"),
        json!({"ability": "do_anything", "actors": ["ben"], "applies_to": "members"}),
    );
    // Without permission_enabled the collection's grants do not reach the item: the add is
    // his to make, the edit is not.
    let add = w.act(
        "ben",
        "add_to_collection",
        &format!("item:{coll}"),
        json!({"item": private.to_string()}),
    );
    assert_eq!(add.status, Status::Implemented);
    let edit = w.act(
        "ben",
        "edit_item",
        &format!("item:{private}"),
        json!({"fields": {"name": "mine"}}),
    );
    assert_eq!(
        edit.route,
        Some(Route::Governing),
        "no permission reaches it: a proposal"
    );
    // Setting permission_enabled also needs do_anything on the item itself: ben has none, so
    // the change goes to the governors (a proposal), not through.
    let enable = w.act(
        "ben",
        "add_to_collection",
        &format!("item:{coll}"),
        json!({"item": private.to_string(), "permission_enabled": true}),
    );
    assert_eq!(enable.status, Status::Waiting);
    assert!(!w
        .c
        .item(private)
        .unwrap()
        .membership(coll)
        .unwrap()
        .permission_enabled());
    // The governor approves: now the collection's grants reach the item.
    w.answer("ana", "approve", enable.conditions[0].id, json!({}));
    assert!(w
        .c
        .item(private)
        .unwrap()
        .membership(coll)
        .unwrap()
        .permission_enabled());
    let edit = w.act(
        "ben",
        "edit_item",
        &format!("item:{private}"),
        json!({"fields": {"name": "mine"}}),
    );
    assert_eq!(
        (edit.status, edit.route),
        (Status::Implemented, Some(Route::Specific))
    );
}

#[test]
fn a_dry_run_explains_and_stores_nothing() {
    let mut w = basic();
    w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["ben"], "allow": false}),
    );
    let before = w.c.snapshot();
    let cx = Ctx::at(w.now);
    let d =
        w.c.dry_run(
            "ben",
            &change_body("rename", "community", json!({"name": "n"})),
            &cx,
        )
        .unwrap();
    assert_eq!(d["status"], "rejected");
    assert_eq!(d["reason_code"], "denied");
    assert_eq!(d["level"], 1);
    let steps: Vec<&str> = d["explain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, vec!["check", "foundational", "specific", "outcome"]);
    assert_eq!(d["explain"][2]["consulted"][0]["permission"], "1");
    let d =
        w.c.dry_run(
            "cy",
            &change_body("rename", "community", json!({"name": "n"})),
            &cx,
        )
        .unwrap();
    assert_eq!(
        d["status"], "rejected",
        "the deny applies to rename whoever it names: cy is not matched"
    );
    assert_eq!(d["reason_code"], "not_permitted");
    assert_eq!(w.c.snapshot(), before);
    // The explain of a decision is the same as its dry run's.
    let req =
        agora_governance::Request::parse(&change_body("rename", "community", json!({"name": "n"})))
            .unwrap();
    let dec = w.c.decide("ben", &req, &cx).unwrap();
    assert_eq!(
        dec.explain_json(),
        w.c.dry_run(
            "ben",
            &change_body("rename", "community", json!({"name": "n"})),
            &cx
        )
        .unwrap()["explain"]
    );
}

#[test]
fn the_log_records_actions_resolutions_and_answers() {
    let mut w = basic();
    let a = w.act("ben", "rename", "community", json!({"name": "N"}));
    w.answer("ana", "approve", a.conditions[0].id, json!({}));
    let kinds: Vec<&str> = w.log.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, vec!["action", "answer", "resolution"]);
    assert_eq!(w.log[0].body.as_ref().unwrap()["status"], "waiting");
    assert_eq!(w.log[2].body.as_ref().unwrap()["status"], "implemented");
    let done = w.record(a.id).to_json();
    assert_eq!(
        done["resolution"]["by"], "ana",
        "who resolved it is recorded"
    );
    assert_eq!(
        done["resolution"]["condition"],
        a.conditions[0].id.to_string()
    );
    assert_eq!(done["route"], "governing");
    assert_eq!(w.c.log_seq(), 3);
}

#[test]
fn a_snapshot_restores_the_same_community() {
    let mut w = basic();
    let coll = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "c"}}),
    );
    let coll = w.item(&coll);
    w.act(
        "ana",
        "add_permission",
        &format!("item:{coll}"),
        json!({"ability": "view", "roles": ["members"], "applies_to": "members"}),
    );
    let waiting = w.act("ben", "rename", "community", json!({"name": "x"}));
    let snap = w.c.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    let back: agora_governance::Snapshot = serde_json::from_str(&json).unwrap();
    let restored = Community::restore(back, w.c.item_metas().to_vec()).unwrap();
    assert_eq!(restored.snapshot(), snap);
    assert_eq!(restored.item(coll), w.c.item(coll));
    // The restored community carries on: the waiting action is approved there.
    let mut r = restored;
    let cx = Ctx::at(w.now);
    let out = r
        .submit(
            "ana",
            &change_body(
                "approve",
                &format!("condition:{}", waiting.conditions[0].id),
                json!({}),
            ),
            &cx,
        )
        .unwrap();
    assert_eq!(
        out.effects.actions.last().unwrap().status,
        Status::Implemented
    );
    assert_eq!(r.constitution().name, "x");
    let _ = (ItemId(1), ObjectRef::Community);
}
