//! The large community of the benchmarks (and of the memory test): members, roles, permissions
//! and items in collections nested 5 deep, built through the engine's own API, deterministic
//! for a given size.

#![allow(dead_code)]

use std::collections::HashMap;

use agora_governance::{change_body, rfc3339, Community, Ctx, Fields, ItemId, Status};
use serde_json::{json, Value};

/// The sizes of a world.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub members: usize,
    pub roles: usize,
    pub permissions: usize,
    pub items: usize,
}

/// The benchmark community.
pub const LARGE: Size = Size {
    members: 10_000,
    roles: 100,
    permissions: 10_000,
    items: 100_000,
};

pub struct Big {
    pub c: Community,
    pub now: i64,
    /// Documents 5 deep (a document in a collection in a collection ... 4 collections up).
    pub deep: Vec<ItemId>,
    /// Current fields of the items in `deep` (what an edit needs).
    pub fields: HashMap<ItemId, Fields>,
    pub members: Vec<String>,
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn must(c: &mut Community, now: i64, body: Value) -> Value {
    let out = c.submit("root", &body, &Ctx::at(now)).expect("valid");
    assert_eq!(
        out.action.status,
        Status::Implemented,
        "{}",
        out.action.reason
    );
    out.action.result
}

fn created(v: &Value) -> ItemId {
    ItemId(v["item"].as_str().unwrap().parse().unwrap())
}

/// Builds a world: `members` members, `roles` roles of about 100 members each, collections
/// nested 4 deep in tens (10, 100, 1,000, 10,000 as far as `items` allows) holding the
/// documents, a tenth of the documents also added to a third-level collection, and
/// `permissions` permissions: on collections' members and on documents, for roles, named
/// members or anyone, allows and denies, a few community-wide.
pub fn build(size: Size) -> Big {
    let now = 1_700_000_000_000;
    let mut r = Rng(0x5eed_1234_abcd_ef01);
    let members: Vec<String> = (0..size.members).map(|i| format!("m{i:05}")).collect();
    let mut c = Community::found("root", &json!({}), now).unwrap();
    must(
        &mut c,
        now,
        change_body(
            "add_permission",
            "community",
            json!({"ability": "do_anything", "actors": ["root"], "applies_to": "members"}),
        ),
    );
    for chunk in members.chunks(1000) {
        must(
            &mut c,
            now,
            change_body("add_members", "community", json!({"agents": chunk})),
        );
    }
    for k in 0..size.roles {
        let holders: Vec<&String> = (0..100.min(size.members))
            .map(|_| &members[r.below(members.len())])
            .collect();
        let mut holders: Vec<&String> = holders;
        holders.sort();
        holders.dedup();
        must(
            &mut c,
            now,
            change_body(
                "add_role",
                "community",
                json!({"name": format!("role{k:03}"), "actors": holders}),
            ),
        );
    }
    // Collections: levels of 10, 100, 1,000, 10,000 (scaled down for small worlds).
    let mut levels: Vec<Vec<ItemId>> = Vec::new();
    let mut budget = size.items / 9;
    let mut parents: Vec<Option<ItemId>> = vec![None];
    for _ in 0..4 {
        let mut level = Vec::new();
        for p in &parents {
            for _ in 0..10 {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let target = p.map(|p| format!("item:{p}")).unwrap_or("community".into());
                let res = must(
                    &mut c,
                    now,
                    change_body(
                        "create_item",
                        &target,
                        json!({"type": "collection", "fields": {"name": "c"}}),
                    ),
                );
                level.push(created(&res));
            }
        }
        parents = level.iter().copied().map(Some).collect();
        levels.push(level);
    }
    let leaves = levels
        .iter()
        .rev()
        .find(|l| !l.is_empty())
        .cloned()
        .unwrap_or_default();
    let mut deep = Vec::new();
    let mut fields = HashMap::new();
    let third = levels.get(2).cloned().unwrap_or_default();
    while c.items().len() < size.items {
        let leaf = leaves[r.below(leaves.len())];
        let res = must(
            &mut c,
            now,
            change_body(
                "create_item",
                &format!("item:{leaf}"),
                json!({"type": "document", "fields": {"name": "doc", "body": "text"}}),
            ),
        );
        let id = created(&res);
        if deep.len() < 1000 {
            deep.push(id);
            fields.insert(
                id,
                json!({"name": "doc", "description": "", "body": "text"})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
        }
        if !third.is_empty() && r.below(10) == 0 {
            let coll = third[r.below(third.len())];
            must(
                &mut c,
                now,
                change_body(
                    "add_to_collection",
                    &format!("item:{coll}"),
                    json!({"item": id.to_string(), "permission_enabled": r.below(2) == 0}),
                ),
            );
        }
    }
    let abilities = [
        "edit_item",
        "comment",
        "view",
        "do_anything",
        "edit body",
        "view body",
    ];
    let collections: Vec<ItemId> = levels.iter().flatten().copied().collect();
    let total = c.items().len();
    for i in 0..size.permissions {
        let ability = abilities[r.below(abilities.len())];
        let mut p = json!({"ability": ability, "allow": r.below(5) != 0});
        match r.below(10) {
            0..=6 => p["roles"] = json!([format!("role{:03}", r.below(size.roles.max(1)))]),
            7 | 8 => p["actors"] = json!([members[r.below(members.len())]]),
            _ => p["anyone"] = json!(true),
        }
        let target = if i < 20 {
            // Community-wide grants go to roles, so outsiders are not let in everywhere.
            p["applies_to"] = json!("members");
            p.as_object_mut().unwrap().remove("actors");
            p.as_object_mut().unwrap().remove("anyone");
            p["roles"] = json!([format!("role{:03}", r.below(size.roles.max(1)))]);
            "community".to_string()
        } else if r.below(100) < 60 && !collections.is_empty() {
            p["applies_to"] = json!("members");
            format!("item:{}", collections[r.below(collections.len())])
        } else {
            format!("item:{}", 1 + r.below(total))
        };
        must(&mut c, now, change_body("add_permission", &target, p));
    }
    Big {
        c,
        now,
        deep,
        fields,
        members,
    }
}

/// The participation structure added to a world (issue 11's bench), and its twin outside
/// any module.
pub struct Modules {
    /// Ideas 5 deep inside modules (organisation → project → module → collection → idea),
    /// each module's active phase (`ideas:collect`) allowing `comment` on ideas.
    pub inside: Vec<ItemId>,
    /// The same number of ideas, 5 deep in plain collections that mirror the structure one
    /// for one and carry the same permissions (so only the module differs).
    pub outside: Vec<ItemId>,
}

/// Adds `orgs` organisations of 10 public, published projects of 10 published modules, each
/// module with three phases (`ideas:collect` active at `big.now`, then `ideas:rate` and
/// `polls:vote`) and one collection of 10 ideas; initiators for each organisation and
/// moderators for each project (3 random members each); and `permissions` permissions on
/// the structure (`comment`, `edit_item` or `view` on members of a project or module, for a
/// role, a member or anyone, one in five a deny). Beside it, a mirror made of collections
/// with the same shape, ideas and permissions.
pub fn add_modules(big: &mut Big, orgs: usize, permissions: usize) -> Modules {
    let now = big.now;
    let c = &mut big.c;
    let members = &big.members;
    let mut r = Rng(0x0dd5_eed5_1234_5678);
    let hour = 3_600_000;
    let phases = json!([
        {"name": "collect", "type": "ideas:collect",
         "start": rfc3339(now - hour), "end": rfc3339(now + hour)},
        {"name": "rate", "type": "ideas:rate",
         "start": rfc3339(now + hour), "end": rfc3339(now + 2 * hour)},
        {"name": "vote", "type": "polls:vote",
         "start": rfc3339(now + 2 * hour), "end": rfc3339(now + 3 * hour)},
    ]);
    // Structure nodes paired with their mirror collections.
    let mut pairs: Vec<(ItemId, ItemId)> = Vec::new();
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    let create = |c: &mut Community, target: Option<ItemId>, body: Value| {
        let t = target.map_or("community".to_string(), |t| format!("item:{t}"));
        created(&must(c, now, change_body("create_item", &t, body)))
    };
    let collection = json!({"type": "collection", "fields": {"name": "c"}});
    for o in 0..orgs {
        let org = create(
            c,
            None,
            json!({"type": "organisation", "fields": {"name": format!("org{o}")}}),
        );
        let org_twin = create(c, None, collection.clone());
        let initiators: Vec<&String> = (0..3).map(|_| &members[r.below(members.len())]).collect();
        must(
            c,
            now,
            change_body(
                "add_people_to_role",
                "role:initiators",
                json!({"agents": initiators, "of": org.to_string()}),
            ),
        );
        for p in 0..10 {
            let project = create(
                c,
                Some(org),
                json!({"type": "project", "fields": {"name": format!("p{p}"),
                       "access": "public", "draft": false}}),
            );
            let project_twin = create(c, Some(org_twin), collection.clone());
            pairs.push((project, project_twin));
            let moderators: Vec<&String> =
                (0..3).map(|_| &members[r.below(members.len())]).collect();
            must(
                c,
                now,
                change_body(
                    "add_people_to_role",
                    "role:moderators",
                    json!({"agents": moderators, "of": project.to_string()}),
                ),
            );
            for m in 0..10 {
                let module = create(
                    c,
                    Some(project),
                    json!({"type": "module", "fields": {"name": format!("m{m}"),
                           "draft": false, "phases": phases}}),
                );
                let module_twin = create(c, Some(project_twin), collection.clone());
                pairs.push((module, module_twin));
                let coll = create(c, Some(module), collection.clone());
                let coll_twin = create(c, Some(module_twin), collection.clone());
                pairs.push((coll, coll_twin));
                for _ in 0..10 {
                    let idea = json!({"type": "idea", "fields": {"name": "idea"}});
                    inside.push(create(c, Some(coll), idea.clone()));
                    outside.push(create(c, Some(coll_twin), idea));
                }
            }
        }
    }
    let abilities = ["comment", "edit_item", "view"];
    for _ in 0..permissions {
        let ability = abilities[r.below(abilities.len())];
        let mut p = json!({"ability": ability, "allow": r.below(5) != 0,
                           "applies_to": "members"});
        match r.below(10) {
            0..=6 => p["roles"] = json!([format!("role{:03}", r.below(100))]),
            7 | 8 => p["actors"] = json!([members[r.below(members.len())]]),
            _ => p["anyone"] = json!(true),
        }
        let (node, twin) = pairs[r.below(pairs.len())];
        for target in [node, twin] {
            must(
                c,
                now,
                change_body("add_permission", &format!("item:{target}"), p.clone()),
            );
        }
    }
    Modules { inside, outside }
}
