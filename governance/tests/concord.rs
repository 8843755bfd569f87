//! The Concord seed's four worked examples, ported.
//!
//! Source: glizzan/concord, `concord/Permissions&Governance.md`, section "A Concrete
//! Example": a community of members that owns itself through a supermajority (2/3) vote and has
//! elected five unconditioned governors. 1) Anne adds a post to a forum whose permission lets
//! anyone post once a moderator approves; the specific permission decides, the governors are
//! never consulted. 2) Betty removes that condition; no permission is set on the permission, so
//! her change goes to the governors and waits until Governor Charles accepts it; Charles later
//! changes it back himself, unconditioned. 3) Diego adds a consensus condition to the governors:
//! a foundational change, so it waits on the members' vote, which passes. 4) The community
//! turns `foundational_override` on for the forum permission (through the vote), after which
//! changes to it go to the owners only.

mod support;

use agora_governance::{ConditionSpec, ObjectRef, PermissionId, Route, Status, VoteResult};
use serde_json::json;
use support::World;

const BOARD: [&str; 5] = ["charles", "diego", "elsa", "fran", "gus"];

/// The community of the example, with a forum, a moderator and the forum's permission.
fn community() -> (World, String, String) {
    let mut w = World::found(
        "charles",
        json!({"template": "members_and_board", "board": BOARD, "threshold": 66,
               "members": ["anne", "betty", "mo", "diego", "elsa", "fran", "gus"]}),
    );
    let forum = w.act(
        "charles",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "forum"}}),
    );
    assert_eq!(forum.status, Status::Implemented);
    assert_eq!(
        forum.route,
        Some(Route::Governing),
        "a governor, unconditioned"
    );
    let forum = w.item(&forum).to_string();
    let mods = w.act(
        "charles",
        "add_role",
        "community",
        json!({"name": "moderators", "actors": ["mo"]}),
    );
    assert_eq!(mods.status, Status::Implemented);
    let perm = w.act(
        "charles",
        "add_permission",
        &format!("item:{forum}"),
        json!({"ability": "create_item", "anyone": true,
               "condition": {"type": "approval", "approvers": {"roles": ["moderators"]}}}),
    );
    assert_eq!(perm.status, Status::Implemented);
    let perm = World::permission_id(&perm);
    (w, forum, perm)
}

#[test]
fn the_constitution_of_the_example() {
    let (w, _, _) = community();
    let c = w.c.constitution_json();
    assert_eq!(c["owners"]["roles"], json!(["members"]));
    assert_eq!(c["owners"]["conditions"][0]["type"], "vote");
    assert_eq!(c["owners"]["conditions"][0]["params"]["threshold"], 66);
    assert_eq!(c["governors"]["roles"], json!(["board"]));
    assert_eq!(c["governors"]["conditions"], json!([]));
    assert_eq!(c["roles"]["board"]["actors"].as_array().unwrap().len(), 5);
    assert_eq!(c["members"].as_array().unwrap().len(), 8);
}

#[test]
fn example_1_anne_posts_and_a_moderator_approves() {
    let (mut w, forum, _) = community();
    let post = w.act(
        "anne",
        "create_item",
        &format!("item:{forum}"),
        json!({"type": "document", "fields": {"name": "hello", "body": "first post"}}),
    );
    assert_eq!(post.status, Status::Waiting);
    assert_eq!(
        post.route,
        Some(Route::Specific),
        "the permission decides; governors are not consulted"
    );
    assert_eq!(post.conditions.len(), 1);
    let cond = post.conditions[0].id;
    // Betty is no moderator: her approval is recorded and rejected, the post still waits.
    let no = w.answer("betty", "approve", cond, json!({}));
    assert_eq!(no.status, Status::Rejected);
    assert_eq!(no.reason_code.as_deref(), Some("not_permitted"));
    assert_eq!(w.status(post.id), "waiting");
    // Neither is a governor a moderator.
    assert_eq!(
        w.answer("charles", "approve", cond, json!({})).status,
        Status::Rejected
    );
    let yes = w.answer("mo", "approve", cond, json!({}));
    assert_eq!(yes.status, Status::Implemented);
    let post = w.record(post.id).clone();
    assert_eq!(post.status, Status::Implemented);
    let item = w.item(&post);
    assert_eq!(w.fields[&item]["body"], "first post");
    assert_eq!(w.c.creator(w.c.item(item).unwrap()), "anne");
    // Answering again: the condition is resolved.
    let e = w.refused("mo", "approve", &format!("condition:{cond}"), json!({}));
    assert_eq!((e.code, e.status.http()), ("not_waiting", 409));
}

#[test]
fn example_2_bettys_change_waits_until_governor_charles_accepts_it() {
    let (mut w, forum, perm) = community();
    let target = format!("permission:{perm}");
    let change = w.act("betty", "remove_condition", &target, json!({"index": 0}));
    assert_eq!(
        change.status,
        Status::Waiting,
        "no permission on the permission: a proposal"
    );
    assert_eq!(change.route, Some(Route::Governing));
    assert_eq!(change.conditions[0].typ, "approval");
    let cond = change.conditions[0].id;
    assert_eq!(
        w.answer("anne", "approve", cond, json!({})).status,
        Status::Rejected
    );
    assert_eq!(
        w.answer("charles", "approve", cond, json!({})).status,
        Status::Implemented
    );
    assert_eq!(w.status(change.id), "implemented");
    let pid = PermissionId(perm.parse().unwrap());
    assert!(w
        .c
        .permissions()
        .get(pid)
        .unwrap()
        .spec
        .conditions
        .is_empty());
    // Posting no longer waits.
    let post = w.act(
        "anne",
        "create_item",
        &format!("item:{forum}"),
        json!({"type": "document", "fields": {"name": "p"}}),
    );
    assert_eq!(post.status, Status::Implemented);
    // The governors disagree; Charles changes the rule back himself, unconditioned.
    let back = w.act(
        "charles",
        "add_condition",
        &target,
        json!({"condition": {"type": "approval", "approvers": {"roles": ["moderators"]}}}),
    );
    assert_eq!(back.status, Status::Implemented);
    assert_eq!(back.route, Some(Route::Governing));
    assert_eq!(w.c.permissions().get(pid).unwrap().spec.conditions.len(), 1);
    let post = w.act(
        "anne",
        "create_item",
        &format!("item:{forum}"),
        json!({"type": "document", "fields": {"name": "q"}}),
    );
    assert_eq!(post.status, Status::Waiting);
}

#[test]
fn example_3_diegos_consensus_rule_waits_on_the_members_vote() {
    let (mut w, _, _) = community();
    let change = w.act(
        "diego",
        "add_condition",
        "governors",
        json!({"condition": {"type": "consensus", "minimum_hours": 24}}),
    );
    assert_eq!(change.status, Status::Waiting);
    assert_eq!(change.route, Some(Route::Foundational));
    assert_eq!(change.conditions[0].typ, "vote");
    let cond = change.conditions[0].id;
    let vote = w.votes[&cond].clone();
    assert_eq!(vote.method, "proposal");
    assert_eq!(vote.eligible.len(), 8, "every member votes");
    assert_eq!(vote.params["threshold"], 66);
    assert_eq!(vote.params["eligible"].as_array().unwrap().len(), 8);
    assert!(vote.params["closing_at"].is_string());
    // Members who join now do not vote: the voters were frozen when the action started waiting.
    w.act(
        "charles",
        "add_members",
        "community",
        json!({"agents": ["late"]}),
    );
    assert_eq!(w.votes[&cond].eligible.len(), 8);
    assert!(w.close_vote(cond, VoteResult::Passed(true)));
    assert!(
        !w.close_vote(cond, VoteResult::Passed(true)),
        "a second outcome is a no-op"
    );
    assert_eq!(w.status(change.id), "implemented");
    let gov = &w.c.constitution().governors;
    assert!(matches!(gov.conditions[0], ConditionSpec::Consensus { .. }));
    // Now even a governor's change waits on the governors' consensus.
    let rename = w.act("elsa", "rename", "community", json!({"name": "Concordia"}));
    assert_eq!(rename.status, Status::Waiting);
    assert_eq!(rename.route, Some(Route::Governing));
    assert_eq!(rename.conditions[0].typ, "consensus");
}

#[test]
fn example_4_foundational_override_gives_the_permission_to_the_owners() {
    let (mut w, _, perm) = community();
    let target = format!("permission:{perm}");
    let toggle = w.act("diego", "enable_foundational_override", &target, json!({}));
    assert_eq!(toggle.route, Some(Route::Foundational));
    let cond = toggle.conditions[0].id;
    assert!(w.close_vote(cond, VoteResult::Passed(true)));
    assert_eq!(w.status(toggle.id), "implemented");
    let pid = PermissionId(perm.parse().unwrap());
    assert!(
        w.c.permissions()
            .get(pid)
            .unwrap()
            .switches
            .foundational_override
    );
    // Before, Charles changed this permission alone; now his change goes to the owners' vote.
    let change = w.act("charles", "remove_condition", &target, json!({"index": 0}));
    assert_eq!(change.status, Status::Waiting);
    assert_eq!(change.route, Some(Route::Foundational));
    assert_eq!(change.conditions[0].typ, "vote");
    // A stranger holds no owner authority at all.
    let stranger = w.act("zed", "remove_condition", &target, json!({"index": 0}));
    assert_eq!(stranger.status, Status::Rejected);
    assert_eq!(stranger.reason_code.as_deref(), Some("foundational_only"));
    // The vote fails: the change is rejected, the permission untouched.
    assert!(w.close_vote(change.conditions[0].id, VoteResult::Passed(false)));
    assert_eq!(
        w.record(change.id).reason_code.as_deref(),
        Some("condition_rejected")
    );
    assert_eq!(w.c.permissions().get(pid).unwrap().spec.conditions.len(), 1);
    let _ = ObjectRef::Permission(pid);
}
