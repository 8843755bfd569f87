//! Participation (contract section 6): the structure types, module validation, the phase gate
//! at every phase boundary for every phase-bound ability, role, access rule and structure
//! state (generated cases against the README's rules table, written out here as the oracle),
//! private projects' visibility, ratings and the "why not" answer of a dry run.

mod support;

use agora_governance::{rfc3339, ItemId, ListQuery, PhaseAbility, Route, Status, Viewer, HOUR_MS};
use serde_json::{json, Value};
use support::World;

/// Who acts, relative to the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// A member with no project role.
    Member,
    Participant,
    Moderator,
    /// An initiator of the project's organisation.
    Initiator,
    /// Not a member of the community.
    Outsider,
    /// The founder: owner and governor, no project role (no exemption for that).
    Owner,
}

const WHO: [Who; 6] = [
    Who::Member,
    Who::Participant,
    Who::Moderator,
    Who::Initiator,
    Who::Outsider,
    Who::Owner,
];

impl Who {
    fn agent(self) -> &'static str {
        match self {
            Who::Member => "mem",
            Who::Participant => "par",
            Who::Moderator => "mo",
            Who::Initiator => "ini",
            Who::Outsider => "out",
            Who::Owner => "ana",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Draft,
    Live,
    Archived,
}

const ACCESS: [&str; 3] = ["public", "semipublic", "private"];
const SHAPES: [Shape; 3] = [Shape::Draft, Shape::Live, Shape::Archived];

/// The module's phases, back to back: (name, type, start hour, end hour) after the epoch of
/// the scenario.
const PHASES: [(&str, &str, i64, i64); 3] = [
    ("collect", "ideas:collect", 10, 20),
    ("rate", "ideas:rate", 20, 30),
    ("vote", "polls:vote", 30, 40),
];

/// The README's rules table: what each phase type allows on ideas.
fn table_allows(phase_type: &str, ability: PhaseAbility) -> bool {
    use PhaseAbility as P;
    match phase_type {
        "ideas:collect" => matches!(ability, P::Create | P::Comment | P::Rate),
        "ideas:rate" => matches!(ability, P::Rate | P::Comment),
        "polls:vote" => matches!(ability, P::Vote),
        _ => false,
    }
}

/// The oracle: the decision rule of section 6, as the README's table states it, for an
/// ability on an idea inside the module. `Ok(())` is allowed; `Err(code)` is the first
/// failing rule (grant, phase, draft, archived).
fn oracle(
    who: Who,
    access: &str,
    shape: Shape,
    ability: PhaseAbility,
    active: Option<&str>,
) -> Result<(), &'static str> {
    if matches!(who, Who::Moderator | Who::Initiator) {
        return Ok(());
    }
    let open = match access {
        "public" => who != Who::Outsider,
        _ => who == Who::Participant,
    };
    if !open {
        return Err("not_open");
    }
    if !active.is_some_and(|t| table_allows(t, ability)) {
        return Err("phase_closed");
    }
    match shape {
        Shape::Draft => Err("draft"),
        Shape::Archived => Err("archived"),
        Shape::Live => Ok(()),
    }
}

/// The active phase type at `t` (hours after the scenario's epoch, as milliseconds), by the
/// table of phases.
fn active_at(epoch: i64, t: i64) -> Option<&'static str> {
    PHASES
        .iter()
        .find(|(_, _, s, e)| epoch + s * HOUR_MS <= t && t < epoch + e * HOUR_MS)
        .map(|p| p.1)
}

struct Scenario {
    w: World,
    epoch: i64,
    org: ItemId,
    project: ItemId,
    module: ItemId,
    idea: ItemId,
}

fn phases_json(epoch: i64) -> Value {
    json!(PHASES
        .iter()
        .map(|(n, t, s, e)| json!({"name": n, "type": t,
            "start": rfc3339(epoch + s * HOUR_MS), "end": rfc3339(epoch + e * HOUR_MS)}))
        .collect::<Vec<_>>())
}

fn scenario(access: &str, shape: Shape) -> Scenario {
    let mut w = World::found("ana", json!({"members": ["mem", "par", "mo", "ini"]}));
    let epoch = w.now;
    let org = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "organisation", "fields": {"name": "City"}}),
    );
    let org = w.item(&org);
    let project = w.act(
        "ana",
        "create_item",
        &format!("item:{org}"),
        json!({"type": "project", "fields": {"name": "Park", "access": access, "draft": false}}),
    );
    let project = w.item(&project);
    let module = w.act(
        "ana",
        "create_item",
        &format!("item:{project}"),
        json!({"type": "module", "fields": {"name": "Ideas", "draft": false,
            "phases": phases_json(epoch)}}),
    );
    let module = w.item(&module);
    for (role, of, who) in [
        ("initiators", org, "ini"),
        ("moderators", project, "mo"),
        ("participants", project, "par"),
    ] {
        let a = w.act(
            "ana",
            "add_people_to_role",
            &format!("role:{role}"),
            json!({"agents": [who], "of": of.to_string()}),
        );
        assert_eq!(a.status, Status::Implemented, "{role}: {}", a.reason);
    }
    // The moderator seeds an idea (moderators may always).
    let idea = w.act(
        "mo",
        "create_item",
        &format!("item:{module}"),
        json!({"type": "idea", "fields": {"name": "More trees"}}),
    );
    assert_eq!(idea.status, Status::Implemented, "{}", idea.reason);
    assert_eq!(idea.route, Some(Route::Participation));
    let idea = w.item(&idea);
    match shape {
        Shape::Live => {}
        Shape::Draft => {
            w.act(
                "ana",
                "edit_item",
                &format!("item:{module}"),
                json!({"fields": {"draft": true}}),
            );
        }
        Shape::Archived => {
            w.act(
                "ana",
                "edit_item",
                &format!("item:{project}"),
                json!({"fields": {"archived": true}}),
            );
        }
    }
    Scenario {
        w,
        epoch,
        org,
        project,
        module,
        idea,
    }
}

/// The body of a phase-bound change on the scenario's idea (or module, for create).
fn body(s: &Scenario, ability: PhaseAbility) -> Value {
    let (change, target, params) = match ability {
        PhaseAbility::Create => (
            "create_item",
            s.module,
            json!({"type": "idea", "fields": {"name": "A bench"}}),
        ),
        PhaseAbility::Edit => ("edit_item", s.idea, json!({"fields": {"name": "Trees!"}})),
        PhaseAbility::Comment => ("comment", s.idea, json!({"body": "yes"})),
        PhaseAbility::Rate => ("rate", s.idea, json!({"value": 1})),
        PhaseAbility::Deactivate => ("deactivate_item", s.idea, json!({})),
        PhaseAbility::Vote => unreachable!("votes are not changes"),
    };
    json!({"change": change, "target": format!("item:{target}"), "params": params})
}

#[test]
fn phase_boundaries_every_ability_role_access_and_shape_match_the_rules_table() {
    let mut cases = 0;
    let mut seen = std::collections::BTreeSet::new();
    for access in ACCESS {
        for shape in SHAPES {
            let mut s = scenario(access, shape);
            let mut times = Vec::new();
            for (_, _, start, end) in PHASES {
                let (start, end) = (s.epoch + start * HOUR_MS, s.epoch + end * HOUR_MS);
                times.extend([start - 1, start, end - 1, end]);
            }
            for t in times {
                s.w.now = t;
                let active = active_at(s.epoch, t);
                for ability in PhaseAbility::ALL {
                    for who in WHO {
                        let expected = oracle(who, access, shape, ability, active);
                        let got = if ability == PhaseAbility::Vote {
                            // A ballot's gate is the phase alone (eligibility is the vote's).
                            let phase_only = active.is_some_and(|a| table_allows(a, ability));
                            let code = s.w.c.phase_allows(s.idea, ability, t).err().map(|e| e.0);
                            assert_eq!(code.is_none(), phase_only, "vote at {t}: {code:?}");
                            continue;
                        } else {
                            let cx = s.w.cx();
                            let d = s.w.c.dry_run(who.agent(), &body(&s, ability), &cx).unwrap();
                            match d["status"].as_str() {
                                Some("implemented") => Ok(()),
                                Some("rejected") => {
                                    Err(d["reason_code"].as_str().unwrap().to_string())
                                }
                                other => panic!("unexpected status {other:?}: {d}"),
                            }
                        };
                        assert_eq!(
                            got,
                            expected.map_err(str::to_string),
                            "{who:?} {ability:?} in a {shape:?} {access} project at t={} h \
                             (active: {active:?})",
                            (t - s.epoch) as f64 / HOUR_MS as f64
                        );
                        seen.insert(expected);
                        cases += 1;
                    }
                }
            }
        }
    }
    // 3 access × 3 shapes × 12 instants × 5 change abilities × 6 agents.
    assert_eq!(cases, 3 * 3 * 12 * 5 * 6);
    // Every outcome of the table occurs among the generated cases.
    let all: std::collections::BTreeSet<_> = [
        Ok(()),
        Err("not_open"),
        Err("phase_closed"),
        Err("draft"),
        Err("archived"),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, all);
}

#[test]
fn phase_bound_changes_are_recorded_with_the_participation_route_and_codes() {
    let mut s = scenario("semipublic", Shape::Live);
    s.w.now = s.epoch + 11 * HOUR_MS;
    let a = s.w.act(
        "par",
        "comment",
        &format!("item:{}", s.idea),
        json!({"body": "ok"}),
    );
    assert_eq!(a.status, Status::Implemented);
    assert_eq!(a.route, Some(Route::Participation));
    let a = s.w.act(
        "mem",
        "comment",
        &format!("item:{}", s.idea),
        json!({"body": "me"}),
    );
    assert_eq!(a.status, Status::Rejected);
    assert_eq!(a.reason_code.as_deref(), Some("not_open"));
    assert_eq!(a.route, Some(Route::Participation));
    s.w.now = s.epoch + 31 * HOUR_MS;
    let a = s.w.act(
        "par",
        "comment",
        &format!("item:{}", s.idea),
        json!({"body": "late"}),
    );
    assert_eq!(a.reason_code.as_deref(), Some("phase_closed"));
    // Governors get no exemption: ana is both owner and governor.
    let a = s.w.act(
        "ana",
        "rate",
        &format!("item:{}", s.idea),
        json!({"value": 1}),
    );
    assert_eq!(a.reason_code.as_deref(), Some("not_open"));
}

#[test]
fn specific_permissions_replace_the_access_rule_but_not_the_phase() {
    let mut s = scenario("private", Shape::Live);
    // A permission on the module lets the member (not a participant) comment on its items.
    let p = s.w.act(
        "ana",
        "add_permission",
        &format!("item:{}", s.module),
        json!({"ability": "comment", "actors": ["mem"], "applies_to": "members"}),
    );
    assert_eq!(p.status, Status::Implemented);
    s.w.now = s.epoch + 11 * HOUR_MS;
    let a = s.w.act(
        "mem",
        "comment",
        &format!("item:{}", s.idea),
        json!({"body": "hi"}),
    );
    assert_eq!(a.status, Status::Implemented, "{}", a.reason);
    assert_eq!(a.route, Some(Route::Specific));
    // The participant is not named by the permission that now decides: not_permitted.
    let a = s.w.act(
        "par",
        "comment",
        &format!("item:{}", s.idea),
        json!({"body": "hi"}),
    );
    assert_eq!(a.reason_code.as_deref(), Some("not_permitted"));
    s.w.now = s.epoch + 35 * HOUR_MS;
    let a = s.w.act(
        "mem",
        "comment",
        &format!("item:{}", s.idea),
        json!({"body": "hi"}),
    );
    assert_eq!(a.reason_code.as_deref(), Some("phase_closed"));
}

#[test]
fn community_wide_do_anything_holders_bypass_the_gate() {
    let mut s = scenario("private", Shape::Draft);
    s.w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "do_anything", "actors": ["mem"], "applies_to": "members"}),
    );
    let a = s.w.act(
        "mem",
        "rate",
        &format!("item:{}", s.idea),
        json!({"value": -1}),
    );
    assert_eq!(a.status, Status::Implemented, "{}", a.reason);
    let cx = s.w.cx();
    assert!(s.w.c.can_view(Viewer::Agent("mem"), s.idea, &cx));
}

#[test]
fn a_community_wide_do_anything_through_a_role_bypasses_the_gate_for_its_holders_only() {
    // The bypass check shares the decision's role memo: a holder passes, and the next
    // agent's decision does not inherit the holding.
    let mut s = scenario("private", Shape::Draft);
    s.w.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "board", "actors": ["mem"]}),
    );
    s.w.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "do_anything", "roles": ["board"], "applies_to": "members"}),
    );
    let a = s.w.act(
        "mem",
        "rate",
        &format!("item:{}", s.idea),
        json!({"value": 1}),
    );
    assert_eq!(a.status, Status::Implemented, "{}", a.reason);
    let a = s.w.act(
        "par",
        "rate",
        &format!("item:{}", s.idea),
        json!({"value": 1}),
    );
    assert_eq!(a.status, Status::Rejected, "{}", a.reason);
    assert_eq!(a.route, Some(Route::Participation));
}

#[test]
fn overlapping_phases_the_lowest_weight_wins() {
    let mut s = scenario("public", Shape::Live);
    let e = s.epoch;
    let phases = json!([
        {"name": "collect", "type": "ideas:collect", "start": rfc3339(e), "end": rfc3339(e + 10 * HOUR_MS), "weight": 5},
        {"name": "vote", "type": "polls:vote", "start": rfc3339(e + 2 * HOUR_MS), "end": rfc3339(e + 4 * HOUR_MS), "weight": 1},
    ]);
    s.w.act(
        "ana",
        "edit_item",
        &format!("item:{}", s.module),
        json!({"fields": {"phases": phases}}),
    );
    let t = |h: i64| e + h * HOUR_MS;
    assert_eq!(s.w.c.active_phase(s.module, t(1)).unwrap().name, "collect");
    assert_eq!(s.w.c.active_phase(s.module, t(3)).unwrap().name, "vote");
    assert_eq!(s.w.c.active_phase(s.module, t(5)).unwrap().name, "collect");
    assert!(s.w.c.active_phase(s.module, t(10)).is_none());
    s.w.now = t(3);
    let a = s.w.act(
        "mem",
        "rate",
        &format!("item:{}", s.idea),
        json!({"value": 1}),
    );
    assert_eq!(a.reason_code.as_deref(), Some("phase_closed"));
    assert!(s.w.c.phase_allows(s.idea, PhaseAbility::Vote, t(3)).is_ok());
}

#[test]
fn modules_refuse_unknown_phase_types_and_empty_phases_with_400() {
    let mut s = scenario("public", Shape::Live);
    let e = s.epoch;
    let target = format!("item:{}", s.project);
    let bad = [
        (
            json!([{"name": "x", "type": "ideas:dance", "start": rfc3339(e), "end": rfc3339(e + 1)}]),
            "unknown_phase_type",
        ),
        (
            json!([{"name": "x", "type": "ideas:rate", "start": rfc3339(e), "end": rfc3339(e)}]),
            "invalid_phase",
        ),
        (
            json!([{"name": "x", "type": "ideas:rate", "start": rfc3339(e + 5), "end": rfc3339(e)}]),
            "invalid_phase",
        ),
        (
            json!([{"name": "x", "type": "ideas:rate", "start": "yesterday", "end": rfc3339(e)}]),
            "invalid_params",
        ),
        (json!({"name": "x"}), "invalid_params"),
    ];
    for (phases, code) in bad {
        let err = s.w.refused(
            "ana",
            "create_item",
            &target,
            json!({"type": "module", "fields": {"name": "M", "phases": phases}}),
        );
        assert_eq!(err.code, code, "{phases}: {err:?}");
        assert_eq!(err.status.http(), 400);
    }
    // The structure nests strictly.
    let err = s.w.refused(
        "ana",
        "create_item",
        "community",
        json!({"type": "module", "fields": {"name": "M"}}),
    );
    assert_eq!(err.code, "not_a_container");
    let err = s.w.refused(
        "ana",
        "create_item",
        &format!("item:{}", s.org),
        json!({"type": "idea", "fields": {"name": "I"}}),
    );
    assert_eq!(err.code, "not_a_container");
    let err = s.w.refused(
        "ana",
        "create_item",
        &target,
        json!({"type": "project", "fields": {"name": "P", "access": "secret"}}),
    );
    assert_eq!(err.code, "invalid_params");
    // Unknown project roles are refused.
    let err = s.w.refused(
        "ana",
        "add_people_to_role",
        "role:initiators",
        json!({"agents": ["mem"], "of": s.project.to_string()}),
    );
    assert_eq!(err.status.http(), 404);
}

#[test]
fn private_projects_are_invisible_to_outsiders_and_lists_agree() {
    for access in ACCESS {
        let s = scenario(access, Shape::Live);
        let cx = s.w.cx();
        for who in WHO {
            let insider = matches!(who, Who::Participant | Who::Moderator | Who::Initiator);
            // Public and semipublic: every agent, members or not.
            let expected = access != "private" || insider;
            let viewer = Viewer::Agent(who.agent());
            for id in [s.project, s.module, s.idea] {
                assert_eq!(
                    s.w.c.can_view(viewer, id, &cx),
                    expected,
                    "{who:?} viewing item {id} of a {access} project"
                );
            }
            assert!(s.w.c.can_view(viewer, s.org, &cx) || who == Who::Outsider);
            let query = ListQuery {
                limit: 100,
                ..ListQuery::default()
            };
            let page = s.w.c.list_items(viewer, &query, &cx);
            let listed: Vec<ItemId> = page.items.clone();
            let all: Vec<ItemId> = [s.org, s.project, s.module, s.idea]
                .into_iter()
                .filter(|i| s.w.c.can_view(viewer, *i, &cx))
                .collect();
            assert_eq!(listed, all, "{who:?} lists what they may view ({access})");
            let json =
                s.w.c
                    .item_json(viewer, s.idea, 1, s.w.fields.get(&s.idea), &cx);
            assert_eq!(json.is_some(), expected);
        }
    }
}

#[test]
fn ratings_are_one_per_agent_changeable_and_counted() {
    let mut s = scenario("public", Shape::Live);
    s.w.now = s.epoch + 21 * HOUR_MS;
    let idea = format!("item:{}", s.idea);
    for (who, v) in [("mem", 1), ("par", 1), ("mo", -1), ("mem", 0)] {
        let a = s.w.act(who, "rate", &idea, json!({"value": v}));
        assert_eq!(a.status, Status::Implemented, "{who}: {}", a.reason);
    }
    let cx = s.w.cx();
    let j =
        s.w.c
            .item_json(
                Viewer::Agent("mem"),
                s.idea,
                1,
                s.w.fields.get(&s.idea),
                &cx,
            )
            .unwrap();
    assert_eq!(j["ratings"], json!({"up": 1, "down": 1, "neutral": 1}));
    // Outside the phases that allow rating, the rating cannot change.
    s.w.now = s.epoch + 35 * HOUR_MS;
    let a = s.w.act("mem", "rate", &idea, json!({"value": 1}));
    assert_eq!(a.reason_code.as_deref(), Some("phase_closed"));
    let err = s.w.refused("mem", "rate", &idea, json!({"value": 2}));
    assert_eq!(err.status.http(), 400);
    // Ratings survive a snapshot and restore.
    let restored =
        agora_governance::Community::restore(s.w.c.snapshot(), s.w.c.item_metas().to_vec())
            .unwrap();
    assert_eq!(
        restored.item(s.idea).unwrap().rating_counts(),
        json!({"up": 1, "down": 1, "neutral": 1})
    );
    assert_eq!(
        restored.structure(s.module).unwrap().phases.len(),
        PHASES.len()
    );
}

#[test]
fn a_refused_dry_run_says_what_would_allow_it() {
    let mut s = scenario("semipublic", Shape::Draft);
    s.w.now = s.epoch + 5 * HOUR_MS;
    let cx = s.w.cx();
    let d =
        s.w.c
            .dry_run("mem", &body(&s, PhaseAbility::Rate), &cx)
            .unwrap();
    assert_eq!(d["status"], "rejected");
    assert_eq!(d["reason_code"], "not_open");
    assert_eq!(
        d["would_allow"],
        json!([
            {"kind": "role", "role": "participants", "of": s.project.to_string()},
            {"kind": "phase", "phase": "collect", "from": rfc3339(s.epoch + 10 * HOUR_MS)},
            {"kind": "publish", "item": s.module.to_string()},
        ])
    );
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "project {} is semipublic and open to its participants; mem is not one",
            s.project
        )),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("as a participant of project {}", s.project)),
        "{reason}"
    );
    assert!(reason.contains("in phase `collect` from"), "{reason}");
    assert!(
        reason.contains(&format!("once item {} is published", s.module)),
        "{reason}"
    );
    let step = d["explain"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "participation")
        .expect("a participation step");
    assert_eq!(step["failed"], json!(["not_open", "phase_closed", "draft"]));
    // Allowed: nothing to name.
    s.w.now = s.epoch + 11 * HOUR_MS;
    let cx = s.w.cx();
    let d =
        s.w.c
            .dry_run("mo", &body(&s, PhaseAbility::Rate), &cx)
            .unwrap();
    assert_eq!(d["status"], "implemented");
    assert_eq!(d["would_allow"], json!([]));
}

#[test]
fn phase_boundaries_are_reminded_and_announced_exactly_once() {
    let mut s = scenario("public", Shape::Live);
    // The scenario's module was created at the epoch: every boundary is ahead of it.
    let e = s.epoch;
    let edit =
        s.w.submit(
            "ana",
            json!({"change": "edit_item", "target": format!("item:{}", s.module),
                "params": {"fields": {"name": "Ideas for the park"}}}),
        )
        .unwrap();
    let mut timers: Vec<i64> = edit
        .effects
        .phase_timers
        .iter()
        .map(|t| {
            assert_eq!(t.module, s.module);
            t.at - e
        })
        .collect();
    timers.sort();
    // collect [10, 20), rate [20, 30), vote [30, 40): 20 and 30 are shared boundaries.
    assert_eq!(
        timers,
        [10, 20, 30, 40].map(|h| h * HOUR_MS).to_vec(),
        "one reminder per boundary"
    );
    let cx_now = e + 20 * HOUR_MS;
    let fields = s.w.fields.clone();
    let cx = agora_governance::Ctx::at(cx_now).with_fields(&fields);
    // A subscription to the module gets its phase notices, whichever kinds it chose.
    let sub = agora_governance::Subscription {
        agent: "par".into(),
        item: s.module,
        deep: false,
        edit: false,
        delete: false,
        comments: false,
        relations: false,
        members: false,
        deliver_to: "http://127.0.0.1:9/par".into(),
    };
    s.w.c.subscribe(sub, &cx).unwrap();
    // The reminder at 20 comes before the one at 10 (reminders due together fire in any
    // order): the boundary at 10 is announced first, at its own time, and not lost.
    let fx = s.w.c.phase_boundary(s.module, cx_now, &cx);
    assert_eq!(fx.deliveries.len(), 3, "{:?}", fx.deliveries);
    assert!(fx
        .deliveries
        .iter()
        .all(|d| d.agent == "par" && d.item == s.module));
    let events: Vec<(&str, &str)> = fx
        .phase_events
        .iter()
        .map(|p| (p.kind, p.phase.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("phase_started", "collect"),
            ("phase_ended", "collect"),
            ("phase_started", "rate")
        ]
    );
    assert_eq!(fx.notices.len(), 3);
    assert_eq!(fx.notices[0].kind.name(), "phase_started");
    assert_eq!(fx.notices[0].at, e + 10 * HOUR_MS);
    assert_eq!(fx.notices[1].kind.name(), "phase_ended");
    assert_eq!(fx.notices[2].item, s.module);
    assert_eq!(
        fx.phase_events[0].data()["at"],
        json!(rfc3339(e + 10 * HOUR_MS))
    );
    assert_eq!(
        fx.phase_events[2].data(),
        json!({"module": s.module.to_string(), "phase": "rate", "type": "ideas:rate",
            "at": rfc3339(cx_now)})
    );
    // A second delivery of the same reminder, or an older one, announces nothing, also after
    // an edit of the module.
    s.w.now = cx_now;
    s.w.act(
        "ana",
        "edit_item",
        &format!("item:{}", s.module),
        json!({"fields": {"name": "Renamed"}}),
    );
    let fields = s.w.fields.clone();
    let cx = agora_governance::Ctx::at(cx_now).with_fields(&fields);
    assert!(s
        .w
        .c
        .phase_boundary(s.module, cx_now, &cx)
        .phase_events
        .is_empty());
    assert!(s
        .w
        .c
        .phase_boundary(s.module, e + 10 * HOUR_MS, &cx)
        .phase_events
        .is_empty());
    // A time at which no phase starts or ends (an edited-away boundary) is a no-op.
    assert!(s
        .w
        .c
        .phase_boundary(s.module, e + 25 * HOUR_MS, &cx)
        .phase_events
        .is_empty());
    // The marker survives a restore: after a restart the reminder stays announced once.
    let mut restored =
        agora_governance::Community::restore(s.w.c.snapshot(), s.w.c.item_metas().to_vec())
            .unwrap();
    assert!(restored
        .phase_boundary(s.module, cx_now, &cx)
        .phase_events
        .is_empty());
    let fx = restored.phase_boundary(s.module, e + 30 * HOUR_MS, &cx);
    assert_eq!(fx.phase_events.len(), 2);
}
