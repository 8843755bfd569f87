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
