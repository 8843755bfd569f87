//! The permission rules checked against a brute-force reference model, the way Cedar checks
//! its authorizer (differential random testing) and SpiceDB its lists (every list equals the
//! set of things that pass a single check).
//!
//! The model below is a literal reading of the contract's section 4 (and the read rule of
//! section 5): for each of the 9 levels in order, which permissions sit there for this agent and
//! item. It shares no code with the engine: its own reach (a fixpoint over containers and
//! `permission_enabled` memberships), its own source levels, its own covering rules. Random
//! worlds (agents, members, roles, nested collections with cycles, permissions with allows,
//! denies, `anyone`, `inverse`, `applies_to`, covering abilities and `creator_only` filters,
//! deactivated and destroyed items) are built through the engine's own API, and for every
//! (agent, ability, item) the engine's decision must equal the model's.

mod support;

use std::collections::BTreeSet;

use agora_governance::{
    change_body, Ability, ChangeKind, Community, Ctx, Field, ItemId, ListQuery, ObjectRef, Status,
    Viewer, WalkOutcome,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const AGENTS: [&str; 5] = ["root", "a1", "a2", "a3", "a4"];
const TESTED: [&str; 5] = ["a1", "a2", "a3", "a4", "stranger"];
const ROLES: [&str; 3] = ["r0", "r1", "members"];
/// Abilities permissions are written with.
const WRITTEN: [&str; 8] = [
    "view",
    "view name",
    "edit_item",
    "edit name",
    "comment",
    "do_anything",
    "view_anything",
    "edit_anything",
];
/// Abilities decisions are asked for.
const ASKED: [&str; 5] = ["view", "view name", "edit_item", "edit name", "comment"];

#[derive(Debug, Clone)]
struct ItemDesc {
    creator: usize,
    container: Option<usize>,
    collection: bool,
    /// 0 active, 1 deactivated, 2 destroyed.
    state: u8,
}

#[derive(Debug, Clone)]
struct PermDesc {
    on: Option<usize>,
    ability: &'static str,
    allow: bool,
    actors: Vec<usize>,
    roles: Vec<usize>,
    anyone: bool,
    inverse: bool,
    members: bool,
    creator_only: bool,
}

#[derive(Debug, Clone)]
struct Desc {
    member: [bool; 5],
    holders: [Vec<usize>; 2],
    items: Vec<ItemDesc>,
    memberships: Vec<(usize, usize, bool)>,
    perms: Vec<PermDesc>,
}

/// A tiny deterministic generator, so a failing seed replays exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

fn generate(seed: u64) -> Desc {
    let mut r = Rng(seed | 1);
    let mut member = [true; 5];
    for m in member.iter_mut().skip(1) {
        *m = r.chance(70);
    }
    let members: Vec<usize> = (0..5).filter(|i| member[*i]).collect();
    let holders = [0, 1].map(|_| {
        members
            .iter()
            .copied()
            .filter(|m| *m != 0 && r.chance(40))
            .collect::<Vec<_>>()
    });
    let n = 3 + r.below(8);
    let mut items: Vec<ItemDesc> = Vec::new();
    for i in 0..n {
        let collections: Vec<usize> = (0..i).filter(|j| items[*j].collection).collect();
        let container = if !collections.is_empty() && r.chance(60) {
            Some(collections[r.below(collections.len())])
        } else {
            None
        };
        items.push(ItemDesc {
            creator: r.below(5),
            container,
            collection: r.chance(45),
            state: match r.below(10) {
                0 => 1,
                1 => 2,
                _ => 0,
            },
        });
    }
    let collections: Vec<usize> = (0..n).filter(|j| items[*j].collection).collect();
    let mut memberships = Vec::new();
    if !collections.is_empty() {
        for _ in 0..r.below(2 * n) {
            let item = r.below(n);
            let coll = collections[r.below(collections.len())];
            if item != coll && !memberships.iter().any(|(i, c, _)| *i == item && *c == coll) {
                memberships.push((item, coll, r.chance(60)));
            }
        }
    }
    let mut perms = Vec::new();
    for _ in 0..r.below(14) {
        let on = if r.chance(25) { None } else { Some(r.below(n)) };
        let ability = WRITTEN[r.below(WRITTEN.len())];
        let allow = r.chance(60);
        let mut p = PermDesc {
            on,
            ability,
            allow,
            actors: Vec::new(),
            roles: Vec::new(),
            anyone: false,
            inverse: false,
            members: on.is_none() || r.chance(40),
            creator_only: r.chance(15),
        };
        match r.below(4) {
            0 => p.actors = (1..5).filter(|_| r.chance(40)).collect(),
            1 => p.roles = (0..3).filter(|_| r.chance(50)).collect(),
            2 => p.anyone = true,
            _ => {
                p.inverse = true;
                p.actors = (1..5).filter(|_| r.chance(30)).collect();
                p.roles = (0..3).filter(|_| r.chance(30)).collect();
            }
        }
        if !p.anyone && !p.inverse && p.actors.is_empty() && p.roles.is_empty() {
            p.anyone = true;
        }
        perms.push(p);
    }
    Desc {
        member,
        holders,
        items,
        memberships,
        perms,
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model: a few dozen lines walking the 9 levels literally.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    NotApplicable,
    NoMatch,
    Denied(u8),
    Granted(u8),
}

fn covers(written: &str, asked: &str) -> bool {
    match written {
        "do_anything" => true,
        "view_anything" => asked == "view" || asked.starts_with("view "),
        "edit_anything" => asked == "edit_item" || asked.starts_with("edit "),
        _ => false,
    }
}

fn holds(d: &Desc, agent: Option<usize>, role: usize) -> bool {
    match agent {
        None => false,
        Some(a) if ROLES[role] == "members" => d.member[a],
        Some(a) => d.holders[role].contains(&a),
    }
}

/// The source level (0 one, 1 some, 2 all) at which `p` names `agent`.
fn source(d: &Desc, p: &PermDesc, agent: Option<usize>) -> Option<u8> {
    let one = agent.is_some_and(|a| p.actors.contains(&a));
    let some = p.roles.iter().any(|r| holds(d, agent, *r));
    match (p.inverse, one, some) {
        (true, false, false) => Some(2),
        (true, _, _) => None,
        (false, true, _) => Some(0),
        (false, false, true) => Some(1),
        (false, false, false) => p.anyone.then_some(2),
    }
}

/// Everything `item` is in for permissions: containers always, memberships when enabled;
/// a destroyed item is in nothing and nothing is in it.
fn inside(d: &Desc, item: usize) -> BTreeSet<usize> {
    let mut set = BTreeSet::new();
    let live = |x: &usize| d.items[*x].state != 2;
    loop {
        let before = set.len();
        let from: Vec<usize> = std::iter::once(item).chain(set.iter().copied()).collect();
        for x in from {
            set.extend(d.items[x].container.filter(live));
            if live(&x) {
                set.extend(
                    d.memberships
                        .iter()
                        .filter(|m| m.0 == x && m.2)
                        .map(|m| m.1)
                        .filter(live),
                );
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// The to level (0 one, 1 some, 2 all) at which `p` reaches `item`.
fn to(d: &Desc, p: &PermDesc, item: usize) -> Option<u8> {
    match (p.on, p.members) {
        (Some(o), false) if o == item => Some(0),
        (Some(o), true) if inside(d, item).contains(&o) => Some(1),
        (None, true) => Some(2),
        _ => None,
    }
}

fn model_walk(d: &Desc, agent: &str, asked: &str, item: usize) -> Out {
    let a = AGENTS.iter().position(|x| *x == agent);
    let live: Vec<&PermDesc> = d
        .perms
        .iter()
        .filter(|p| p.on.is_none_or(|o| d.items[o].state != 2))
        .collect();
    let matches = |p: &PermDesc| {
        source(d, p, a).is_some() && (!p.creator_only || Some(d.items[item].creator) == a)
    };
    let level = |p: &PermDesc| 3 * source(d, p, a).unwrap() + to(d, p, item).unwrap() + 1;
    let applying: Vec<&PermDesc> = live
        .into_iter()
        .filter(|p| to(d, p, item).is_some())
        .filter(|p| p.ability == asked || (covers(p.ability, asked) && matches(p)))
        .collect();
    if applying.is_empty() {
        return Out::NotApplicable;
    }
    // A community-wide do_anything allow the agent holds overrides item-level rules.
    for lvl in [3u8, 6, 9] {
        let at: Vec<_> = applying
            .iter()
            .filter(|p| {
                p.ability == "do_anything" && p.on.is_none() && matches(p) && level(p) == lvl
            })
            .collect();
        if !at.is_empty() {
            if at.iter().all(|p| p.allow) {
                return Out::Granted(lvl);
            }
            break;
        }
    }
    for lvl in 1..=9u8 {
        let at: Vec<_> = applying
            .iter()
            .filter(|p| matches(p) && level(p) == lvl)
            .collect();
        if at.iter().any(|p| !p.allow) {
            return Out::Denied(lvl);
        }
        if !at.is_empty() {
            return Out::Granted(lvl);
        }
    }
    Out::NoMatch
}

fn model_can_read(d: &Desc, agent: &str, asked: &str, item: usize) -> bool {
    if d.items[item].state == 2 {
        return false;
    }
    let member = AGENTS
        .iter()
        .position(|x| *x == agent)
        .is_some_and(|a| d.member[a]);
    let view = match model_walk(d, agent, "view", item) {
        Out::NotApplicable => member,
        Out::Granted(_) => true,
        _ => false,
    };
    if asked == "view" || !view {
        return view;
    }
    matches!(
        model_walk(d, agent, asked, item),
        Out::NotApplicable | Out::Granted(_)
    )
}

// ---------------------------------------------------------------------------------------------
// The same world, built through the engine's API.
// ---------------------------------------------------------------------------------------------

fn must(c: &mut Community, actor: &str, body: Value, now: i64) {
    let out = c.submit(actor, &body, &Ctx::at(now)).expect("valid");
    assert_eq!(
        out.action.status,
        Status::Implemented,
        "{body}: {}",
        out.action.reason
    );
}

fn build(d: &Desc) -> Community {
    let now = 1_000;
    let members: Vec<&str> = (1..5).filter(|i| d.member[*i]).map(|i| AGENTS[i]).collect();
    let mut c = Community::found("root", &json!({"members": members}), now).unwrap();
    // root may do anything to items (a level-3 community-wide grant), and anyone may create.
    must(
        &mut c,
        "root",
        change_body(
            "add_permission",
            "community",
            json!({"ability": "do_anything", "actors": ["root"], "applies_to": "members"}),
        ),
        now,
    );
    must(
        &mut c,
        "root",
        change_body(
            "add_permission",
            "community",
            json!({"ability": "create_item", "anyone": true}),
        ),
        now,
    );
    must(
        &mut c,
        "root",
        change_body(
            "add_permission",
            "community",
            json!({"ability": "create_item", "anyone": true, "applies_to": "members"}),
        ),
        now,
    );
    for (k, h) in d.holders.iter().enumerate() {
        let actors: Vec<&str> = h.iter().map(|i| AGENTS[*i]).collect();
        must(
            &mut c,
            "root",
            change_body(
                "add_role",
                "community",
                json!({"name": ROLES[k], "actors": actors}),
            ),
            now,
        );
    }
    for (i, it) in d.items.iter().enumerate() {
        let target = it
            .container
            .map(|c| format!("item:{}", c + 1))
            .unwrap_or("community".into());
        let typ = if it.collection {
            "collection"
        } else {
            "document"
        };
        must(
            &mut c,
            AGENTS[it.creator],
            change_body(
                "create_item",
                &target,
                json!({"type": typ, "fields": {"name": format!("i{i}")}}),
            ),
            now,
        );
    }
    for (item, coll, enabled) in &d.memberships {
        must(
            &mut c,
            "root",
            change_body(
                "add_to_collection",
                &format!("item:{}", coll + 1),
                json!({"item": (item + 1).to_string(), "permission_enabled": enabled}),
            ),
            now,
        );
    }
    for p in &d.perms {
        let target =
            p.on.map(|o| format!("item:{}", o + 1))
                .unwrap_or("community".into());
        let mut params = json!({
            "ability": p.ability, "allow": p.allow,
            "actors": p.actors.iter().map(|a| AGENTS[*a]).collect::<Vec<_>>(),
            "roles": p.roles.iter().map(|r| ROLES[*r]).collect::<Vec<_>>(),
            "anyone": p.anyone, "inverse": p.inverse,
            "applies_to": if p.members { "members" } else { "object" },
        });
        if p.creator_only {
            params["condition"] = json!({"type": "creator_only"});
        }
        must(
            &mut c,
            "root",
            change_body("add_permission", &target, params),
            now,
        );
    }
    for (i, it) in d.items.iter().enumerate() {
        if it.state >= 1 {
            must(
                &mut c,
                "root",
                change_body("deactivate_item", &format!("item:{}", i + 1), json!({})),
                now,
            );
        }
        if it.state == 2 {
            must(
                &mut c,
                "root",
                change_body("destroy_item", &format!("item:{}", i + 1), json!({})),
                now,
            );
        }
    }
    c
}

fn engine_out(o: WalkOutcome) -> Out {
    match o {
        WalkOutcome::NotApplicable => Out::NotApplicable,
        WalkOutcome::NoMatch => Out::NoMatch,
        WalkOutcome::Denied { level, .. } => Out::Denied(level),
        WalkOutcome::Granted { level, .. } => Out::Granted(level),
    }
}

fn ability(s: &str) -> Ability {
    Ability::parse(s).unwrap()
}

/// Every (agent, ability, item): engine == model, for the walk and for reads; and every list is
/// exactly the items that pass a single check.
fn check_world(d: &Desc) -> Result<(), TestCaseError> {
    let c = build(d);
    let cx = Ctx::at(2_000);
    for agent in TESTED {
        for asked in ASKED {
            for item in 0..d.items.len() {
                let id = ItemId(item as u64 + 1);
                if d.items[item].state != 2 {
                    let engine = engine_out(c.permission_decision(
                        agent,
                        ability(asked),
                        &ObjectRef::Item(id),
                        &cx,
                    ));
                    let model = model_walk(d, agent, asked, item);
                    prop_assert_eq!(engine, model, "walk: {} {} item {}", agent, asked, item + 1);
                }
                if asked.starts_with("view") {
                    let engine = c.can_read(Viewer::Agent(agent), ability(asked), id, &cx);
                    let model = model_can_read(d, agent, asked, item);
                    prop_assert_eq!(engine, model, "read: {} {} item {}", agent, asked, item + 1);
                }
            }
        }
        // Lists: exactly the items a single check lets through.
        let all = c.list_items(
            Viewer::Agent(agent),
            &ListQuery {
                limit: 1000,
                ..Default::default()
            },
            &cx,
        );
        let expected: Vec<ItemId> = (1..=d.items.len() as u64)
            .map(ItemId)
            .filter(|id| {
                d.items[id.0 as usize - 1].state == 0 && c.can_view(Viewer::Agent(agent), *id, &cx)
            })
            .collect();
        prop_assert_eq!(&all.items, &expected, "list for {}", agent);
        let with_inactive = c.list_items(
            Viewer::Agent(agent),
            &ListQuery {
                limit: 1000,
                include_inactive: true,
                ..Default::default()
            },
            &cx,
        );
        let expected: Vec<ItemId> = (1..=d.items.len() as u64)
            .map(ItemId)
            .filter(|id| c.can_view(Viewer::Agent(agent), *id, &cx))
            .collect();
        prop_assert_eq!(
            &with_inactive.items,
            &expected,
            "list with inactive for {}",
            agent
        );
        for coll in (0..d.items.len()).filter(|i| d.items[*i].collection) {
            let page = c.list_items(
                Viewer::Agent(agent),
                &ListQuery {
                    limit: 1000,
                    within: Some(ItemId(coll as u64 + 1)),
                    ..Default::default()
                },
                &cx,
            );
            let expected: Vec<ItemId> = (0..d.items.len())
                .filter(|i| {
                    d.items[*i].container == Some(coll)
                        || d.memberships.iter().any(|m| m.0 == *i && m.1 == coll)
                })
                .filter(|i| d.items[*i].state == 0)
                .map(|i| ItemId(i as u64 + 1))
                .filter(|id| c.can_view(Viewer::Agent(agent), *id, &cx))
                .collect();
            prop_assert_eq!(&page.items, &expected, "list in {} for {}", coll + 1, agent);
            // Paging one by one gives the same items.
            let mut paged = Vec::new();
            let mut cursor = None;
            loop {
                let p = c.list_items(
                    Viewer::Agent(agent),
                    &ListQuery {
                        limit: 1,
                        cursor,
                        within: Some(ItemId(coll as u64 + 1)),
                        ..Default::default()
                    },
                    &cx,
                );
                paged.extend(p.items);
                match p.next_cursor {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            prop_assert_eq!(
                &paged,
                &expected,
                "paged list in {} for {}",
                coll + 1,
                agent
            );
        }
    }
    Ok(())
}

/// Seeds that once found a disagreement, kept so they are checked on every run.
#[test]
fn seeds_that_once_disagreed() {
    // Reach through a destroyed collection (item 1 holds item 2; item 1 was destroyed).
    let seeds: &[u64] = &[3193254174789242578];
    for seed in seeds {
        check_world(&generate(*seed)).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_decisions_equal_the_reference_model(seed in any::<u64>()) {
        check_world(&generate(seed))?;
    }
}

// ---------------------------------------------------------------------------------------------
// Named precedence properties, each checked on engine and model alike.
// ---------------------------------------------------------------------------------------------

fn perm(
    on: Option<usize>,
    ability: &'static str,
    allow: bool,
    who: &str,
    members: bool,
) -> PermDesc {
    let mut p = PermDesc {
        on,
        ability,
        allow,
        actors: Vec::new(),
        roles: Vec::new(),
        anyone: false,
        inverse: false,
        members,
        creator_only: false,
    };
    match who {
        "anyone" => p.anyone = true,
        "r0" => p.roles.push(0),
        a => p.actors.push(AGENTS.iter().position(|x| *x == a).unwrap()),
    }
    p
}

/// Collection 1 holds document 2 (created in it); a1 holds r0.
fn small(perms: Vec<PermDesc>) -> Desc {
    Desc {
        member: [true; 5],
        holders: [vec![1], vec![]],
        items: vec![
            ItemDesc {
                creator: 0,
                container: None,
                collection: true,
                state: 0,
            },
            ItemDesc {
                creator: 0,
                container: Some(0),
                collection: false,
                state: 0,
            },
        ],
        memberships: vec![],
        perms,
    }
}

fn both(d: &Desc, agent: &str, asked: &str, item: usize) -> Out {
    let c = build(d);
    let engine = engine_out(c.permission_decision(
        agent,
        ability(asked),
        &ObjectRef::Item(ItemId(item as u64 + 1)),
        &Ctx::at(2_000),
    ));
    let model = model_walk(d, agent, asked, item);
    assert_eq!(engine, model, "engine and model disagree");
    engine
}

#[test]
fn deny_at_level_5_beats_allow_at_level_5() {
    // Both on the collection's members, both for role r0 (source some, to some).
    let d = small(vec![
        perm(Some(0), "edit_item", true, "r0", true),
        perm(Some(0), "edit_item", false, "r0", true),
    ]);
    assert_eq!(both(&d, "a1", "edit_item", 1), Out::Denied(5));
}

#[test]
fn allow_at_level_4_beats_deny_at_level_7() {
    // r0 allowed on the item itself (some, one) = 4; anyone denied on it (all, one) = 7.
    let d = small(vec![
        perm(Some(1), "edit_item", false, "anyone", false),
        perm(Some(1), "edit_item", true, "r0", false),
    ]);
    assert_eq!(both(&d, "a1", "edit_item", 1), Out::Granted(4));
    assert_eq!(
        both(&d, "a2", "edit_item", 1),
        Out::Denied(7),
        "a2 holds no r0"
    );
}

#[test]
fn community_wide_do_anything_beats_an_item_deny() {
    // a1 is denied on the item at level 1, but holds a community-wide do_anything (level 3).
    let d = small(vec![
        perm(Some(1), "edit_item", false, "a1", false),
        perm(None, "do_anything", true, "a1", true),
    ]);
    assert_eq!(both(&d, "a1", "edit_item", 1), Out::Granted(3));
    let d = small(vec![
        perm(Some(1), "view", false, "a1", false),
        perm(None, "do_anything", true, "r0", true),
    ]);
    assert_eq!(both(&d, "a1", "view", 1), Out::Granted(6));
    assert!(build(&d).can_view(Viewer::Agent("a1"), ItemId(2), &Ctx::at(2_000)));
}

#[test]
fn a_destroyed_item_denies_everything() {
    let mut d = small(vec![
        perm(None, "do_anything", true, "anyone", true),
        perm(Some(1), "view", true, "a1", false),
    ]);
    d.items[1].state = 2;
    let c = build(&d);
    let cx = Ctx::at(2_000);
    for agent in TESTED {
        for asked in ["view", "view name", "view action_notices", "view body"] {
            assert!(
                !c.can_read(Viewer::Agent(agent), ability(asked), ItemId(2), &cx),
                "{agent} {asked}"
            );
            assert!(!model_can_read(&d, agent, "view", 1));
        }
    }
    // Writes are refused before any decision: the item takes no more changes.
    for (change, params) in [
        ("edit_item", json!({"fields": {"name": "x"}})),
        ("reactivate_item", json!({})),
        ("comment", json!({"body": "x"})),
    ] {
        let e = c
            .decide(
                "root",
                &agora_governance::Request::parse(&change_body(change, "item:2", params)).unwrap(),
                &cx,
            )
            .unwrap_err();
        assert_eq!(e.code, "destroyed", "{change}");
    }
    assert!(c
        .list_items(
            Viewer::Agent("a1"),
            &ListQuery {
                limit: 10,
                include_inactive: true,
                ..Default::default()
            },
            &cx
        )
        .items
        .iter()
        .all(|i| *i != ItemId(2)));
}

#[test]
fn covering_abilities_never_take_a_decision_from_agents_they_do_not_name() {
    // A do_anything deny for a1 must not push a2 out of the default (governing) path.
    let d = small(vec![perm(Some(1), "do_anything", false, "a1", false)]);
    assert_eq!(both(&d, "a1", "edit_item", 1), Out::Denied(1));
    assert_eq!(both(&d, "a2", "edit_item", 1), Out::NotApplicable);
    let _ = (ChangeKind::EditItem, Field::Name);
}

// ---------------------------------------------------------------------------------------------
// Participation (section 6): random organisations, projects and modules with random phases,
// roles and access, decided by the engine and by a literal reading of section 6. The model
// keeps its own containment (the structure it generated), its own active phase (every phase
// open at `now`, the lowest weight, the first listed on a tie) and its own phase table.
// ---------------------------------------------------------------------------------------------

mod participation_model {
    use super::support::World;
    use super::Rng;
    use agora_governance::{rfc3339, ItemId, ListQuery, PhaseAbility, Viewer, HOUR_MS};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// a0 is the founder: owner, governor, and an initiator (so it can seed content). The
    /// tested agents are the others and a non-member.
    const PEOPLE: [&str; 5] = ["a0", "a1", "a2", "a3", "a4"];
    const TESTED: [&str; 5] = ["a1", "a2", "a3", "a4", "stranger"];
    const TYPES: [&str; 4] = [
        "ideas:collect",
        "ideas:rate",
        "polls:vote",
        "documents:comment",
    ];
    const ACCESS: [&str; 3] = ["public", "semipublic", "private"];

    #[derive(Debug, Clone)]
    struct Module {
        draft: bool,
        /// (type, start hour, end hour, weight)
        phases: Vec<(usize, i64, i64, i64)>,
        /// Content: true for a document, false for an idea.
        docs: Vec<bool>,
    }

    #[derive(Debug, Clone)]
    struct Project {
        access: usize,
        draft: bool,
        archived: bool,
        moderators: Vec<usize>,
        participants: Vec<usize>,
        modules: Vec<Module>,
    }

    #[derive(Debug, Clone)]
    struct Desc {
        member: [bool; 5],
        initiators: Vec<usize>,
        projects: Vec<Project>,
        /// A community-wide do_anything allow for this agent.
        wide: Option<usize>,
        /// A specific allow: (global module index, ability, agent), applies to members.
        perm: Option<(usize, &'static str, usize)>,
        /// `now`, in milliseconds after the epoch.
        now: i64,
    }

    fn generate(seed: u64) -> Desc {
        let mut r = Rng(seed | 1);
        let mut member = [true; 5];
        for m in member.iter_mut().skip(1) {
            *m = r.chance(75);
        }
        let members: Vec<usize> = (1..5).filter(|i| member[*i]).collect();
        let pick = |r: &mut Rng, pct: u64| -> Vec<usize> {
            members.iter().copied().filter(|_| r.chance(pct)).collect()
        };
        let initiators = pick(&mut r, 15);
        let mut projects = Vec::new();
        let mut modules = 0;
        for _ in 0..1 + r.below(2) {
            let mut ms = Vec::new();
            for _ in 0..1 + r.below(2) {
                let phases = (0..r.below(4))
                    .map(|_| {
                        let start = r.below(8) as i64;
                        (
                            r.below(4),
                            start,
                            start + 1 + r.below(4) as i64,
                            r.below(3) as i64,
                        )
                    })
                    .collect();
                let docs = (0..1 + r.below(2)).map(|_| r.chance(30)).collect();
                ms.push(Module {
                    draft: r.chance(25),
                    phases,
                    docs,
                });
                modules += 1;
            }
            projects.push(Project {
                access: r.below(3),
                draft: r.chance(20),
                archived: r.chance(20),
                moderators: pick(&mut r, 20),
                participants: pick(&mut r, 40),
                modules: ms,
            });
        }
        let wide = if r.chance(20) && !members.is_empty() {
            Some(members[r.below(members.len())])
        } else {
            None
        };
        let perm = if r.chance(30) && !members.is_empty() {
            Some((
                r.below(modules),
                ["comment", "rate"][r.below(2)],
                members[r.below(members.len())],
            ))
        } else {
            None
        };
        // Whole hours, or a millisecond before one: the boundaries matter most.
        let now = r.below(12) as i64 * HOUR_MS - if r.chance(50) { 1 } else { 0 };
        Desc {
            member,
            initiators,
            projects,
            wide,
            perm,
            now,
        }
    }

    /// The engine's ids of what `build` created.
    struct Built {
        w: World,
        org: ItemId,
        projects: Vec<ItemId>,
        /// (project index, module id)
        modules: Vec<(usize, ItemId)>,
        /// (project index, global module index, item id, is a document)
        content: Vec<(usize, usize, ItemId, bool)>,
    }

    fn act(w: &mut World, actor: &str, change: &str, target: &str, params: Value) -> Value {
        let a = w.act(actor, change, target, params);
        assert_eq!(a.status.name(), "implemented", "{change}: {}", a.reason);
        a.result
    }

    fn id(v: &Value) -> ItemId {
        ItemId(v["item"].as_str().unwrap().parse().unwrap())
    }

    fn build(d: &Desc) -> Built {
        let members: Vec<&str> = (1..5).filter(|i| d.member[*i]).map(|i| PEOPLE[i]).collect();
        let mut w = World::found("a0", json!({"members": members}));
        let epoch = w.now;
        let org = id(&act(
            &mut w,
            "a0",
            "create_item",
            "community",
            json!({"type": "organisation", "fields": {"name": "O"}}),
        ));
        let mut initiators = vec![0];
        initiators.extend(&d.initiators);
        let names: Vec<&str> = initiators.iter().map(|i| PEOPLE[*i]).collect();
        act(
            &mut w,
            "a0",
            "add_people_to_role",
            "role:initiators",
            json!({"agents": names, "of": org.to_string()}),
        );
        let mut b = Built {
            w,
            org,
            projects: Vec::new(),
            modules: Vec::new(),
            content: Vec::new(),
        };
        for (pi, p) in d.projects.iter().enumerate() {
            let pid = id(&act(
                &mut b.w,
                "a0",
                "create_item",
                &format!("item:{org}"),
                json!({"type": "project", "fields": {"name": "P", "access": ACCESS[p.access],
                    "draft": p.draft, "archived": p.archived}}),
            ));
            b.projects.push(pid);
            for (role, holders) in [
                ("moderators", &p.moderators),
                ("participants", &p.participants),
            ] {
                if !holders.is_empty() {
                    let names: Vec<&str> = holders.iter().map(|i| PEOPLE[*i]).collect();
                    act(
                        &mut b.w,
                        "a0",
                        "add_people_to_role",
                        &format!("role:{role}"),
                        json!({"agents": names, "of": pid.to_string()}),
                    );
                }
            }
            for m in &p.modules {
                let phases: Vec<Value> = m
                    .phases
                    .iter()
                    .enumerate()
                    .map(|(i, (t, s, e, wt))| {
                        json!({"name": format!("p{i}"), "type": TYPES[*t],
                            "start": rfc3339(epoch + s * HOUR_MS),
                            "end": rfc3339(epoch + e * HOUR_MS), "weight": wt})
                    })
                    .collect();
                let mid = id(&act(
                    &mut b.w,
                    "a0",
                    "create_item",
                    &format!("item:{pid}"),
                    json!({"type": "module", "fields": {"name": "M", "draft": m.draft,
                        "phases": phases}}),
                ));
                let gm = b.modules.len();
                b.modules.push((pi, mid));
                for doc in &m.docs {
                    let typ = if *doc { "document" } else { "idea" };
                    let cid = id(&act(
                        &mut b.w,
                        "a0",
                        "create_item",
                        &format!("item:{mid}"),
                        json!({"type": typ, "fields": {"name": "C"}}),
                    ));
                    b.content.push((pi, gm, cid, *doc));
                }
            }
        }
        if let Some(a) = d.wide {
            act(
                &mut b.w,
                "a0",
                "add_permission",
                "community",
                json!({"ability": "do_anything", "actors": [PEOPLE[a]], "applies_to": "members"}),
            );
        }
        if let Some((m, ability, a)) = d.perm {
            let mid = b.modules[m].1;
            act(
                &mut b.w,
                "a0",
                "add_permission",
                &format!("item:{mid}"),
                json!({"ability": ability, "actors": [PEOPLE[a]], "applies_to": "members"}),
            );
        }
        b.w.now = epoch + d.now;
        b
    }

    fn person(agent: &str) -> Option<usize> {
        PEOPLE.iter().position(|p| *p == agent)
    }

    fn allows(typ: usize, ability: PhaseAbility, doc: bool) -> bool {
        use PhaseAbility as P;
        match (TYPES[typ], doc) {
            ("ideas:collect", false) => matches!(ability, P::Create | P::Comment | P::Rate),
            ("ideas:rate", false) => matches!(ability, P::Rate | P::Comment),
            ("polls:vote", _) => ability == P::Vote,
            ("documents:comment", true) => ability == P::Comment,
            _ => false,
        }
    }

    fn active(m: &Module, now_h: f64) -> Option<usize> {
        let mut open: Vec<(i64, usize, usize)> = m
            .phases
            .iter()
            .enumerate()
            .filter(|(_, p)| p.1 as f64 <= now_h && now_h < p.2 as f64)
            .map(|(i, p)| (p.3, i, p.0))
            .collect();
        open.sort();
        open.first().map(|o| o.2)
    }

    fn insider(d: &Desc, p: &Project, a: Option<usize>) -> bool {
        a.is_some_and(|a| {
            a == 0
                || d.initiators.contains(&a)
                || p.moderators.contains(&a)
                || p.participants.contains(&a)
                || d.wide == Some(a)
        })
    }

    /// Section 6's decision for `agent`'s phase-bound `ability` on content (or, for create, in
    /// module `gm`) of type document (`doc`) or idea.
    fn model_decide(
        d: &Desc,
        agent: &str,
        ability: PhaseAbility,
        pi: usize,
        gm: usize,
        local: usize,
        doc: bool,
    ) -> Result<(), &'static str> {
        let a = person(agent);
        let p = &d.projects[pi];
        let m = &p.modules[local];
        if a.is_some_and(|a| {
            a == 0 || d.initiators.contains(&a) || p.moderators.contains(&a) || d.wide == Some(a)
        }) {
            return Ok(());
        }
        let member = a.is_some_and(|a| d.member[a]);
        let perm = d.perm.filter(|(pm, ab, _)| {
            *pm == gm
                && matches!(
                    (*ab, ability),
                    ("comment", PhaseAbility::Comment) | ("rate", PhaseAbility::Rate)
                )
        });
        let granted = match perm {
            Some((_, _, who)) => {
                if a != Some(who) {
                    return Err("not_permitted");
                }
                true
            }
            None => match ACCESS[p.access] {
                "public" => member,
                _ => a.is_some_and(|a| p.participants.contains(&a)),
            },
        };
        if !granted {
            return Err("not_open");
        }
        let now_h = d.now as f64 / HOUR_MS as f64;
        if !active(m, now_h).is_some_and(|t| allows(t, ability, doc)) {
            return Err("phase_closed");
        }
        if m.draft || p.draft {
            return Err("draft");
        }
        if p.archived {
            return Err("archived");
        }
        Ok(())
    }

    fn body(ability: PhaseAbility, target: ItemId, doc: bool) -> Value {
        let (change, params) = match ability {
            PhaseAbility::Create => (
                "create_item",
                json!({"type": if doc { "document" } else { "idea" }, "fields": {"name": "N"}}),
            ),
            PhaseAbility::Edit => ("edit_item", json!({"fields": {"name": "Other"}})),
            PhaseAbility::Comment => ("comment", json!({"body": "b"})),
            PhaseAbility::Rate => ("rate", json!({"value": 1})),
            PhaseAbility::Deactivate => ("deactivate_item", json!({})),
            PhaseAbility::Vote => unreachable!("not a change"),
        };
        json!({"change": change, "target": format!("item:{target}"), "params": params})
    }

    pub(super) fn check(seed: u64) -> Result<(), TestCaseError> {
        let d = generate(seed);
        let b = build(&d);
        let cx = b.w.cx();
        let local_of = |gm: usize| {
            let pi = b.modules[gm].0;
            gm - b.modules.iter().position(|m| m.0 == pi).unwrap()
        };
        for agent in TESTED {
            // Decisions on content, and creates in each module.
            for &(pi, gm, item, doc) in &b.content {
                for ability in PhaseAbility::ALL {
                    let expected = model_decide(&d, agent, ability, pi, gm, local_of(gm), doc);
                    if ability == PhaseAbility::Vote {
                        let got = b.w.c.phase_allows(item, ability, b.w.now).is_ok();
                        let m = &d.projects[pi].modules[local_of(gm)];
                        let want = active(m, d.now as f64 / HOUR_MS as f64)
                            .is_some_and(|t| allows(t, ability, doc));
                        prop_assert_eq!(got, want, "seed {} vote on {}", seed, item);
                        continue;
                    }
                    let target = if ability == PhaseAbility::Create {
                        b.modules[gm].1
                    } else {
                        item
                    };
                    let out =
                        b.w.c
                            .dry_run(agent, &body(ability, target, doc), &cx)
                            .unwrap();
                    let got = match out["status"].as_str() {
                        Some("implemented") => Ok(()),
                        _ => Err(out["reason_code"].as_str().unwrap_or("?").to_string()),
                    };
                    prop_assert_eq!(
                        got,
                        expected.map_err(str::to_string),
                        "seed {}: {} {:?} on item {} ({:?})",
                        seed,
                        agent,
                        ability,
                        item,
                        d
                    );
                }
            }
            // Visibility, and the list agreeing with the single checks.
            let viewer = Viewer::Agent(agent);
            let a = person(agent);
            let member = a.is_some_and(|a| d.member[a]);
            let mut expected_visible = Vec::new();
            if member {
                expected_visible.push(b.org);
            }
            for (pi, p) in d.projects.iter().enumerate() {
                let visible = ACCESS[p.access] != "private" || insider(&d, p, a);
                let mut ids = vec![b.projects[pi]];
                ids.extend(b.modules.iter().filter(|m| m.0 == pi).map(|m| m.1));
                ids.extend(b.content.iter().filter(|c| c.0 == pi).map(|c| c.2));
                for i in ids {
                    prop_assert_eq!(
                        b.w.c.can_view(viewer, i, &cx),
                        visible,
                        "seed {}: {} viewing {}",
                        seed,
                        agent,
                        i
                    );
                    if visible {
                        expected_visible.push(i);
                    }
                }
            }
            expected_visible.sort();
            let query = ListQuery {
                limit: 1000,
                ..ListQuery::default()
            };
            let listed = b.w.c.list_items(viewer, &query, &cx).items;
            prop_assert_eq!(listed, expected_visible, "seed {}: {}'s list", seed, agent);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn participation_decisions_and_lists_equal_the_reference_model(seed in any::<u64>()) {
        participation_model::check(seed)?;
    }
}
