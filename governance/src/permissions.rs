//! Permissions and their 9 levels (seed: Deme; contract section 4).
//!
//! A permission is set on an object (`community`, a role, a permission, an item) and names an
//! ability, `allow` or deny, who (`actors`, `roles`, `anyone`, or `inverse`: everyone it does
//! not name), `applies_to` (`object`: the object itself; `members`: what is inside it) and
//! conditions (filters and waiting conditions, AND-ed).
//!
//! **Levels.** Source: *one* (its `actors` name A), *some* (A holds one of its `roles`), *all*
//! (`anyone`, or `inverse` and A is not named). To: *one* (set on the target, `applies_to:
//! object`), *some* (set with `applies_to: members` on a container or collection the target is
//! in, directly or indirectly: the container an item was created in always reaches, a
//! collection membership reaches only with `permission_enabled`), *all* (set on `community` with
//! `applies_to: members`: every item, not the community object itself). Level =
//! 3·source + to + 1, so (one,one)=1 … (all,all)=9.
//!
//! **The walk.** A permission *applies* to (ability, target) when its to-level reaches the
//! target and either its ability is the ability asked for (whoever it names), or it is a
//! covering ability (`do_anything`, `view_anything`, `edit_anything`) covering it that *matches*
//! A. It *matches* A when its source includes A and its filters pass. No permission applies:
//! the specific route is not taken. Some apply, none matches: rejected (`not_permitted`).
//! Otherwise the lowest level holding a match decides: a deny there wins (`denied`), else its
//! allows grant, each with its waiting conditions (grants are OR-ed). A community-wide
//! `do_anything` allow that A holds (levels 3, 6, 9: the lowest of those levels with a matching
//! `do_anything` has an allow and no deny) overrides every item-level rule, denies included.
//!
//! The index keys permissions by (object, ability) and by `applies_to`, so one decision looks
//! at the few permissions on the target, on its ancestors and on the community for the ability
//! and its coverers, never at the whole list.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::changes::Ability;
use crate::conditions::{parse_agents, ConditionSpec};
use crate::constitution::Switches;
use crate::error::GovError;
use crate::ids::{ObjectRef, PermissionId, RoleKey};
use crate::roles::{parse_role_refs, role_ref_json};

/// Where a permission reaches from the object it is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppliesTo {
    Object,
    Members,
}

/// A permission as `add_permission` gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionSpec {
    pub ability: Ability,
    pub allow: bool,
    /// Sorted, without duplicates.
    pub actors: Vec<Box<str>>,
    pub roles: Vec<RoleKey>,
    pub anyone: bool,
    pub inverse: bool,
    pub applies_to: AppliesTo,
    pub conditions: Vec<ConditionSpec>,
}

const SPEC_KEYS: [&str; 9] = [
    "ability",
    "allow",
    "actors",
    "roles",
    "anyone",
    "inverse",
    "applies_to",
    "condition",
    "conditions",
];

fn flag(p: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>, GovError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(GovError::invalid(
            &format!("{path}.{key}"),
            format!("'{key}' is true or false"),
        )),
    }
}

fn ability(p: &Map<String, Value>, path: &str) -> Result<Option<Ability>, GovError> {
    match p.get("ability") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(Ability::parse)
            .map(Some)
            .ok_or_else(|| {
                GovError::invalid(
                &format!("{path}.ability"),
                "'ability' is a change type (not an answer), view, view <field>, edit <field>, \
                 view action_notices, do_anything, view_anything or edit_anything",
            )
            }),
    }
}

fn applies_to(p: &Map<String, Value>, path: &str) -> Result<Option<AppliesTo>, GovError> {
    match p.get("applies_to") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "object" => Ok(Some(AppliesTo::Object)),
        Some(Value::String(s)) if s == "members" => Ok(Some(AppliesTo::Members)),
        Some(_) => Err(GovError::invalid(
            &format!("{path}.applies_to"),
            "'applies_to' is 'object' or 'members'",
        )),
    }
}

fn sorted(mut actors: Vec<Box<str>>) -> Vec<Box<str>> {
    actors.sort();
    actors.dedup();
    actors
}

impl PermissionSpec {
    pub(crate) fn parse(p: &Map<String, Value>, path: &str) -> Result<PermissionSpec, GovError> {
        if let Some(k) = p.keys().find(|k| !SPEC_KEYS.contains(&k.as_str())) {
            return Err(GovError::invalid(
                &format!("{path}.{k}"),
                format!("'{k}' is not a field of a permission"),
            ));
        }
        let spec = PermissionSpec {
            ability: ability(p, path)?.ok_or_else(|| {
                GovError::invalid(&format!("{path}.ability"), "'ability' is required")
            })?,
            allow: flag(p, "allow", path)?.unwrap_or(true),
            actors: sorted(parse_agents(
                p.get("actors"),
                &format!("{path}.actors"),
                1000,
            )?),
            roles: parse_role_refs(p.get("roles"), &format!("{path}.roles"))?,
            anyone: flag(p, "anyone", path)?.unwrap_or(false),
            inverse: flag(p, "inverse", path)?.unwrap_or(false),
            applies_to: applies_to(p, path)?.unwrap_or(AppliesTo::Object),
            conditions: ConditionSpec::parse_list(p, path)?,
        };
        spec.check(path)?;
        Ok(spec)
    }

    /// Checks that need no state: someone is named, `anyone` and `inverse` do not mix, reads
    /// take only read filters, denies take no waiting conditions.
    pub(crate) fn check(&self, path: &str) -> Result<(), GovError> {
        if self.anyone && self.inverse {
            return Err(GovError::invalid(
                &format!("{path}.inverse"),
                "'anyone' and 'inverse' do not mix",
            ));
        }
        if !self.anyone && !self.inverse && self.actors.is_empty() && self.roles.is_empty() {
            return Err(GovError::invalid(
                path,
                "a permission names 'actors', 'roles', 'anyone' or 'inverse'",
            ));
        }
        for (i, c) in self.conditions.iter().enumerate() {
            let at = format!("{path}.conditions[{i}]");
            if self.ability.is_read() && !c.is_read_filter() {
                return Err(GovError::invalid(
                    &at,
                    "reads are decided at once: a read ability takes only creator_only and \
                     target_type conditions",
                ));
            }
            if !self.allow && !c.is_filter() {
                return Err(GovError::invalid(
                    &at,
                    "a deny takes only filter conditions (nothing waits on a deny)",
                ));
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ability": self.ability.name(),
            "allow": self.allow,
            "actors": self.actors.iter().map(|a| &**a).collect::<Vec<_>>(),
            "roles": self.roles.iter().map(role_ref_json).collect::<Vec<_>>(),
            "anyone": self.anyone,
            "inverse": self.inverse,
            "applies_to": match self.applies_to { AppliesTo::Object => "object", AppliesTo::Members => "members" },
            "conditions": self.conditions.iter().map(ConditionSpec::to_json).collect::<Vec<_>>(),
        })
    }
}

/// `edit_permission`: the fields to replace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PermissionPatch {
    pub ability: Option<Ability>,
    pub allow: Option<bool>,
    pub actors: Option<Vec<Box<str>>>,
    pub roles: Option<Vec<RoleKey>>,
    pub anyone: Option<bool>,
    pub inverse: Option<bool>,
    pub applies_to: Option<AppliesTo>,
    pub conditions: Option<Vec<ConditionSpec>>,
}

impl PermissionPatch {
    pub(crate) fn parse(p: &Map<String, Value>, path: &str) -> Result<PermissionPatch, GovError> {
        if let Some(k) = p.keys().find(|k| !SPEC_KEYS.contains(&k.as_str())) {
            return Err(GovError::invalid(
                &format!("{path}.{k}"),
                format!("'{k}' is not a field of a permission"),
            ));
        }
        if p.is_empty() {
            return Err(GovError::invalid(
                path,
                "name at least one field to replace",
            ));
        }
        let has = |k: &str| p.contains_key(k);
        Ok(PermissionPatch {
            ability: ability(p, path)?,
            allow: flag(p, "allow", path)?,
            actors: if has("actors") {
                Some(sorted(parse_agents(
                    p.get("actors"),
                    &format!("{path}.actors"),
                    1000,
                )?))
            } else {
                None
            },
            roles: if has("roles") {
                Some(parse_role_refs(p.get("roles"), &format!("{path}.roles"))?)
            } else {
                None
            },
            anyone: flag(p, "anyone", path)?,
            inverse: flag(p, "inverse", path)?,
            applies_to: applies_to(p, path)?,
            conditions: if has("condition") || has("conditions") {
                Some(ConditionSpec::parse_list(p, path)?)
            } else {
                None
            },
        })
    }

    /// The permission with this patch applied (checked again as a whole).
    pub(crate) fn apply(
        &self,
        old: &PermissionSpec,
        path: &str,
    ) -> Result<PermissionSpec, GovError> {
        let new = PermissionSpec {
            ability: self.ability.unwrap_or(old.ability),
            allow: self.allow.unwrap_or(old.allow),
            actors: self.actors.clone().unwrap_or_else(|| old.actors.clone()),
            roles: self.roles.clone().unwrap_or_else(|| old.roles.clone()),
            anyone: self.anyone.unwrap_or(old.anyone),
            inverse: self.inverse.unwrap_or(old.inverse),
            applies_to: self.applies_to.unwrap_or(old.applies_to),
            conditions: self
                .conditions
                .clone()
                .unwrap_or_else(|| old.conditions.clone()),
        };
        new.check(path)?;
        Ok(new)
    }
}

/// A stored permission: its spec, the object it is set on and its switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    pub on: ObjectRef,
    pub spec: PermissionSpec,
    pub switches: Switches,
}

impl Permission {
    pub fn to_json(&self, id: PermissionId) -> Value {
        let mut v = self.spec.to_json();
        if let Some(o) = v.as_object_mut() {
            o.insert("id".into(), json!(id.to_string()));
            o.insert("on".into(), json!(self.on.to_string()));
            o.insert(
                "foundational_override".into(),
                json!(self.switches.foundational_override),
            );
            o.insert("governing".into(), json!(self.switches.governing));
        }
        v
    }
}

/// A level's source part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    One = 0,
    Some = 1,
    All = 2,
}

/// The level number of (source, to): (one,one)=1 … (all,all)=9.
pub fn level(source: Reach, to: Reach) -> u8 {
    3 * source as u8 + to as u8 + 1
}

/// The multiply-rotate hash of rustc (FxHash) for the permission index: its keys are object
/// references and abilities, which the core itself shapes (numeric ids, role names checked to
/// 64 bytes), and one decision does a dozen lookups, where SipHash showed in profiles.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

/// A `BuildHasher` for [`FxHasher`].
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Index = HashMap<(ObjectRef, Ability), Vec<PermissionId>, FxBuild>;

/// The store of permissions with its indexes.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    by_id: BTreeMap<PermissionId, Permission>,
    at_object: Index,
    at_members: Index,
    on_object: HashMap<ObjectRef, Vec<PermissionId>>,
    role_refs: HashMap<RoleKey, u32>,
    /// How many permissions bear on reads (a read ability or `do_anything`): with none, reads
    /// follow the default rule without a walk.
    read_bearing: usize,
}

impl Permissions {
    pub fn get(&self, id: PermissionId) -> Option<&Permission> {
        self.by_id.get(&id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (PermissionId, &Permission)> {
        self.by_id.iter().map(|(k, v)| (*k, v))
    }

    /// The permissions set on `object`.
    pub fn on(&self, object: &ObjectRef) -> &[PermissionId] {
        self.on_object.get(object).map(Vec::as_slice).unwrap_or(&[])
    }

    /// How many permissions (or the owners' and governors' specs, counted elsewhere) name
    /// `role`.
    pub fn role_uses(&self, role: &RoleKey) -> u32 {
        self.role_refs.get(role).copied().unwrap_or(0)
    }

    pub fn any_read_bearing(&self) -> bool {
        self.read_bearing > 0
    }

    fn bears_on_reads(p: &Permission) -> bool {
        p.spec.ability.is_read() || p.spec.ability == Ability::DoAnything
    }

    fn roles_of(p: &Permission) -> impl Iterator<Item = &RoleKey> {
        p.spec
            .roles
            .iter()
            .chain(p.spec.conditions.iter().flat_map(|c| c.roles()))
    }

    pub(crate) fn insert(&mut self, id: PermissionId, p: Permission) {
        self.remove(id);
        let key = (p.on.clone(), p.spec.ability);
        match p.spec.applies_to {
            AppliesTo::Object => self.at_object.entry(key).or_default().push(id),
            AppliesTo::Members => self.at_members.entry(key).or_default().push(id),
        }
        self.on_object.entry(p.on.clone()).or_default().push(id);
        for r in Self::roles_of(&p) {
            *self.role_refs.entry(r.clone()).or_default() += 1;
        }
        if Self::bears_on_reads(&p) {
            self.read_bearing += 1;
        }
        self.by_id.insert(id, p);
    }

    pub(crate) fn remove(&mut self, id: PermissionId) -> Option<Permission> {
        let p = self.by_id.remove(&id)?;
        let key = (p.on.clone(), p.spec.ability);
        let map = match p.spec.applies_to {
            AppliesTo::Object => &mut self.at_object,
            AppliesTo::Members => &mut self.at_members,
        };
        if let Some(v) = map.get_mut(&key) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                map.remove(&key);
            }
        }
        if let Some(v) = self.on_object.get_mut(&p.on) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                self.on_object.remove(&p.on);
            }
        }
        for r in Self::roles_of(&p) {
            if let Some(n) = self.role_refs.get_mut(r) {
                *n -= 1;
                if *n == 0 {
                    self.role_refs.remove(r);
                }
            }
        }
        if Self::bears_on_reads(&p) {
            self.read_bearing -= 1;
        }
        Some(p)
    }

    fn lookup(&self, applies: AppliesTo, object: &ObjectRef, ability: Ability) -> &[PermissionId] {
        let map = match applies {
            AppliesTo::Object => &self.at_object,
            AppliesTo::Members => &self.at_members,
        };
        // The key is built without cloning for the common targets (community, items).
        map.get(&(object.clone(), ability))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Walks the 9 levels for agent `agent` asking for one of `exact` (or anything covering
    /// them) on a target whose reach is `reach`, recording what it consults into `trace` when
    /// given one (decisions do; reads, which show no trace, do not): the target itself (to-level one, permissions
    /// `applies_to: object` on it), its ancestors (to-level some, `applies_to: members` on
    /// them) and, for items, the community (to-level all, `applies_to: members`).
    pub(crate) fn walk(
        &self,
        agent: &str,
        exact: &[Ability],
        reach: &[(ObjectRef, Reach)],
        judge: &dyn Judge,
        mut trace: Option<&mut Vec<Consulted>>,
    ) -> WalkOutcome {
        let mut coverers: Vec<Ability> = Vec::with_capacity(3);
        for a in exact {
            for c in a.coverers() {
                if !exact.contains(c) && !coverers.contains(c) {
                    coverers.push(*c);
                }
            }
        }
        let mut any_applies = false;
        // (level, id, allow, community-wide do_anything)
        let mut matched: Vec<(u8, PermissionId, bool, bool)> = Vec::new();
        for (object, to) in reach {
            let applies = if *to == Reach::One {
                AppliesTo::Object
            } else {
                AppliesTo::Members
            };
            for (is_exact, ab) in exact
                .iter()
                .map(|a| (true, *a))
                .chain(coverers.iter().map(|a| (false, *a)))
            {
                for id in self.lookup(applies, object, ab) {
                    let Some(p) = self.by_id.get(id) else {
                        continue;
                    };
                    let source = source_reach(&p.spec, agent, judge);
                    let matches = source.is_some() && judge.filters_pass(&p.spec.conditions);
                    let applied = is_exact || matches;
                    let lvl = source.map(|s| level(s, *to));
                    if let Some(trace) = trace.as_deref_mut() {
                        trace.push(Consulted {
                            permission: *id,
                            ability: ab,
                            allow: p.spec.allow,
                            level: lvl.unwrap_or(0),
                            to: *to,
                            applies: applied,
                            matches,
                        });
                    }
                    if !applied {
                        continue;
                    }
                    any_applies = true;
                    if matches {
                        let community_wide = *to == Reach::All && ab == Ability::DoAnything;
                        matched.push((
                            lvl.expect("a match has a source"),
                            *id,
                            p.spec.allow,
                            community_wide,
                        ));
                    }
                }
            }
        }
        if !any_applies {
            return WalkOutcome::NotApplicable;
        }
        // A community-wide do_anything allow the agent holds overrides every item-level rule.
        if let Some(lowest) = matched.iter().filter(|m| m.3).map(|m| m.0).min() {
            let at: Vec<_> = matched.iter().filter(|m| m.3 && m.0 == lowest).collect();
            if at.iter().all(|m| m.2) {
                return WalkOutcome::Granted {
                    level: lowest,
                    by: at.iter().map(|m| m.1).collect(),
                    community_wide: true,
                };
            }
        }
        let Some(lowest) = matched.iter().map(|m| m.0).min() else {
            return WalkOutcome::NoMatch;
        };
        let at: Vec<_> = matched.iter().filter(|m| m.0 == lowest).collect();
        let denies: Vec<PermissionId> = at.iter().filter(|m| !m.2).map(|m| m.1).collect();
        if !denies.is_empty() {
            return WalkOutcome::Denied {
                level: lowest,
                by: denies,
            };
        }
        let mut by: Vec<PermissionId> = at.iter().map(|m| m.1).collect();
        by.sort();
        by.dedup();
        WalkOutcome::Granted {
            level: lowest,
            by,
            community_wide: false,
        }
    }
}

/// What the walk asks of the world: role holding and filters, for the agent and action at hand.
pub(crate) trait Judge {
    fn holds(&self, role: &RoleKey) -> bool;
    fn filters_pass(&self, conditions: &[ConditionSpec]) -> bool;
}

/// The source level at which a permission names `agent`, if it does.
pub(crate) fn source_reach(spec: &PermissionSpec, agent: &str, judge: &dyn Judge) -> Option<Reach> {
    let one = spec.actors.binary_search_by(|a| (**a).cmp(agent)).is_ok();
    let some = !one && spec.roles.iter().any(|r| judge.holds(r));
    if spec.inverse {
        return if one || some { None } else { Some(Reach::All) };
    }
    if one {
        Some(Reach::One)
    } else if some {
        Some(Reach::Some)
    } else if spec.anyone {
        Some(Reach::All)
    } else {
        None
    }
}

/// One permission the walk looked at, for the explain trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consulted {
    pub permission: PermissionId,
    pub ability: Ability,
    pub allow: bool,
    /// The level it would decide at for this agent (0: its source does not include the agent).
    pub level: u8,
    pub to: Reach,
    pub applies: bool,
    pub matches: bool,
}

impl Consulted {
    pub fn to_json(&self) -> Value {
        json!({
            "permission": self.permission.to_string(),
            "ability": self.ability.name(),
            "allow": self.allow,
            "level": if self.level == 0 { Value::Null } else { json!(self.level) },
            "to": match self.to { Reach::One => "one", Reach::Some => "some", Reach::All => "all" },
            "applies": self.applies,
            "matches": self.matches,
        })
    }
}

/// The result of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkOutcome {
    /// No permission applies: the specific route is not taken.
    NotApplicable,
    /// Permissions apply, none matches the agent.
    NoMatch,
    /// A deny decided at `level`.
    Denied { level: u8, by: Vec<PermissionId> },
    /// Allows at `level` grant (each with its own conditions; OR-ed).
    Granted {
        level: u8,
        by: Vec<PermissionId>,
        /// Granted by a community-wide `do_anything` that overrides item-level rules.
        community_wide: bool,
    },
}

impl WalkOutcome {
    pub fn level(&self) -> Option<u8> {
        match self {
            WalkOutcome::Denied { level, .. } | WalkOutcome::Granted { level, .. } => Some(*level),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::ChangeKind;
    use crate::ids::ItemId;

    /// ana holds `mods`; nobody else holds anything.
    struct World(&'static str);
    impl Judge for World {
        fn holds(&self, role: &RoleKey) -> bool {
            self.0 == "ana" && &*role.name == "mods"
        }
        fn filters_pass(&self, conditions: &[ConditionSpec]) -> bool {
            !conditions.contains(&ConditionSpec::SelfOnly)
        }
    }

    fn perm(
        on: ObjectRef,
        ability: Ability,
        allow: bool,
        who: &str,
        applies: AppliesTo,
    ) -> Permission {
        let mut spec = PermissionSpec {
            ability,
            allow,
            actors: vec![],
            roles: vec![],
            anyone: false,
            inverse: false,
            applies_to: applies,
            conditions: vec![],
        };
        match who {
            "anyone" => spec.anyone = true,
            "mods" => spec.roles.push(RoleKey::community("mods")),
            "not-ana" => {
                spec.inverse = true;
                spec.actors.push("ana".into());
            }
            a => spec.actors.push(a.into()),
        }
        Permission {
            on,
            spec,
            switches: Switches::default(),
        }
    }

    fn reach(item: u64, parents: &[u64]) -> Vec<(ObjectRef, Reach)> {
        let mut r = vec![(ObjectRef::Item(ItemId(item)), Reach::One)];
        r.extend(
            parents
                .iter()
                .map(|p| (ObjectRef::Item(ItemId(*p)), Reach::Some)),
        );
        r.push((ObjectRef::Community, Reach::All));
        r
    }

    const EDIT: Ability = Ability::Change(ChangeKind::EditItem);

    #[test]
    fn levels_number_one_to_nine() {
        assert_eq!(level(Reach::One, Reach::One), 1);
        assert_eq!(level(Reach::Some, Reach::Some), 5);
        assert_eq!(level(Reach::All, Reach::All), 9);
        assert_eq!(level(Reach::One, Reach::All), 3);
        assert_eq!(level(Reach::Some, Reach::One), 4);
    }

    #[test]
    fn the_walk_follows_the_rules() {
        let mut ps = Permissions::default();
        let item = ObjectRef::Item(ItemId(1));
        let coll = ObjectRef::Item(ItemId(2));
        ps.insert(
            PermissionId(1),
            perm(coll.clone(), EDIT, true, "mods", AppliesTo::Members),
        );
        ps.insert(
            PermissionId(2),
            perm(coll.clone(), EDIT, false, "mods", AppliesTo::Members),
        );
        ps.insert(
            PermissionId(3),
            perm(item.clone(), EDIT, true, "ben", AppliesTo::Object),
        );
        ps.insert(
            PermissionId(4),
            perm(
                ObjectRef::Community,
                EDIT,
                false,
                "anyone",
                AppliesTo::Members,
            ),
        );
        let mut t = Vec::new();
        let r = reach(1, &[2]);
        // ana holds mods: level 5 has an allow and a deny; the deny wins.
        assert_eq!(
            ps.walk("ana", &[EDIT], &r, &World("ana"), Some(&mut t)),
            WalkOutcome::Denied {
                level: 5,
                by: vec![PermissionId(2)]
            }
        );
        // ben is named on the item: level 1.
        assert!(matches!(
            ps.walk("ben", &[EDIT], &r, &World("ben"), Some(&mut t)),
            WalkOutcome::Granted { level: 1, .. }
        ));
        // cy matches only the community-wide deny at level 9.
        assert!(matches!(
            ps.walk("cy", &[EDIT], &r, &World("cy"), Some(&mut t)),
            WalkOutcome::Denied { level: 9, .. }
        ));
        // Another ability: nothing applies.
        assert_eq!(
            ps.walk("cy", &[Ability::View], &r, &World("cy"), Some(&mut t)),
            WalkOutcome::NotApplicable
        );
        assert_eq!(
            ps.remove(PermissionId(4)).map(|p| p.spec.allow),
            Some(false)
        );
        assert_eq!(
            ps.walk("cy", &[EDIT], &r, &World("cy"), Some(&mut t)),
            WalkOutcome::NoMatch
        );
        assert_eq!(ps.role_uses(&RoleKey::community("mods")), 2);
    }

    #[test]
    fn covering_abilities_apply_only_to_those_they_match() {
        let mut ps = Permissions::default();
        let item = ObjectRef::Item(ItemId(1));
        ps.insert(
            PermissionId(1),
            perm(
                item.clone(),
                Ability::DoAnything,
                false,
                "ben",
                AppliesTo::Object,
            ),
        );
        let mut t = Vec::new();
        let r = reach(1, &[]);
        assert_eq!(
            ps.walk("ana", &[EDIT], &r, &World("ana"), Some(&mut t)),
            WalkOutcome::NotApplicable
        );
        assert!(matches!(
            ps.walk("ben", &[EDIT], &r, &World("ben"), Some(&mut t)),
            WalkOutcome::Denied { level: 1, .. }
        ));
        // Inverse: everyone but ana, at level 7.
        ps.insert(
            PermissionId(2),
            perm(item, EDIT, true, "not-ana", AppliesTo::Object),
        );
        assert!(matches!(
            ps.walk("cy", &[EDIT], &r, &World("cy"), Some(&mut t)),
            WalkOutcome::Granted { level: 7, .. }
        ));
        assert_eq!(
            ps.walk("ana", &[EDIT], &r, &World("ana"), Some(&mut t)),
            WalkOutcome::NoMatch
        );
    }

    #[test]
    fn community_wide_do_anything_overrides_item_denies() {
        let mut ps = Permissions::default();
        let item = ObjectRef::Item(ItemId(1));
        ps.insert(
            PermissionId(1),
            perm(item, EDIT, false, "ana", AppliesTo::Object),
        );
        ps.insert(
            PermissionId(2),
            perm(
                ObjectRef::Community,
                Ability::DoAnything,
                true,
                "mods",
                AppliesTo::Members,
            ),
        );
        let mut t = Vec::new();
        let r = reach(1, &[]);
        assert_eq!(
            ps.walk("ana", &[EDIT], &r, &World("ana"), Some(&mut t)),
            WalkOutcome::Granted {
                level: 6,
                by: vec![PermissionId(2)],
                community_wide: true
            }
        );
        assert!(!t.is_empty(), "the trace lists what was consulted");
    }

    #[test]
    fn specs_refuse_what_cannot_be_decided() {
        let p = |v: Value| PermissionSpec::parse(v.as_object().unwrap(), "params");
        assert!(
            p(json!({"ability": "view", "anyone": true, "condition": {"type": "approval"}}))
                .is_err()
        );
        assert!(p(
            json!({"ability": "view", "anyone": true, "condition": {"type": "creator_only"}})
        )
        .is_ok());
        assert!(p(json!({"ability": "rename", "allow": false, "anyone": true, "condition": {"type": "approval"}})).is_err());
        assert!(p(json!({"ability": "rename"})).is_err(), "names nobody");
        assert!(p(json!({"ability": "rename", "anyone": true, "inverse": true})).is_err());
        assert!(p(json!({"ability": "approve", "anyone": true})).is_err());
        let s =
            p(json!({"ability": "edit body", "actors": ["b", "a", "b"], "applies_to": "members"}))
                .unwrap();
        assert_eq!(s.actors, vec![Box::from("a"), Box::from("b")]);
        let back = PermissionSpec::parse(s.to_json().as_object().unwrap(), "p").unwrap();
        assert_eq!(back, s);
    }
}
