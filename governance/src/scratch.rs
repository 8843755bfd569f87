//! Validation and application of changes, as one code path: a [`Scratch`] is an overlay on the
//! committed [`Community`] that applies changes in order, checking each against the state as
//! the earlier ones left it (targets exist, roles exist, invariants hold). Validation runs it
//! and throws it away; implementation runs it again on the state of that moment (so a waiting
//! action is validated anew and rejected `stale` if it no longer fits) and commits its
//! [`Delta`]. Nothing here touches the committed state, which is why a refused request changes
//! nothing.
//!
//! Besides the changed state, applying a change yields its `result` (new ids), the version
//! records and notices it writes, and the checks the pipeline must decide for it (one per
//! ability and target: an edit needs `edit <field>` per changed field; an `add_to_collection`
//! that sets `permission_enabled` also needs `do_anything` on the member item).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::changes::{Ability, Change, ChangeKind, Params};
use crate::community::{holds, Community, Ctx, View};
use crate::conditions::ConditionSpec;
use crate::constitution::{Authority, Switches};
use crate::error::GovError;
use crate::ids::{ItemId, NoticeId, ObjectRef, PermissionId, RoleKey};
use crate::item_types::{check_fields, Field, Fields, ItemType};
use crate::items::{merge_fields, ItemMeta, Membership, VersionRecord};
use crate::notices::{Notice, NoticeKind};
use crate::participation::Structure;
use crate::permissions::{AppliesTo, Permission, PermissionSpec};
use crate::roles::{Role, RoleDef};
use crate::when::Millis;

/// What the pipeline must decide for one change: an ability (or one of several that count as
/// it, all applying whoever they name) on a target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckSpec {
    /// The change (index in the request) this check is for.
    pub change: usize,
    pub target: ObjectRef,
    pub abilities: Vec<Ability>,
}

/// A rating (`rate`): one per agent and item, replaced by the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    pub item: ItemId,
    pub agent: String,
    pub value: i8,
}

/// Everything a sequence of changes does, kept apart from the committed state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    pub name: Option<String>,
    pub owners: Option<Authority>,
    pub governors: Option<Authority>,
    pub proposals: Option<bool>,
    pub community_switches: Option<Switches>,
    pub members: HashMap<Box<str>, Option<Millis>>,
    pub roles: BTreeMap<RoleKey, Option<Role>>,
    pub perms: BTreeMap<PermissionId, Option<Permission>>,
    pub next_permission: u64,
    pub items: BTreeMap<ItemId, ItemMeta>,
    pub next_item: u64,
    /// Agents interned by this delta (item creators), in order after the committed ones.
    pub new_agents: Vec<Box<str>>,
    /// Per change, its `result` (`{}` when it has none).
    pub results: Vec<Value>,
    /// Notices, with ids to be given at commit.
    pub notices: Vec<Notice>,
    pub versions: Vec<VersionRecord>,
    pub destroyed: Vec<ItemId>,
    pub ratings: Vec<Rating>,
    pub constitution_changed: bool,
}

/// The overlay: the committed community plus a [`Delta`].
pub(crate) struct Scratch<'a> {
    base: &'a Community,
    pub d: Delta,
    actor: &'a str,
    cx: Ctx<'a>,
}

impl View for Scratch<'_> {
    fn joined(&self, agent: &str) -> Option<Millis> {
        match self.d.members.get(agent) {
            Some(v) => *v,
            None => self.base.constitution.members.get(agent).copied(),
        }
    }

    fn role(&self, key: &RoleKey) -> Option<&Role> {
        match self.d.roles.get(key) {
            Some(r) => r.as_ref(),
            None => self.base.constitution.roles.get(key),
        }
    }

    fn implemented(&self, agent: &str, kind: ChangeKind) -> u32 {
        self.base.implemented(agent, kind)
    }
}

fn invalid_target(path: &str, message: impl Into<String>) -> GovError {
    GovError::not_found("unknown_target", Some(&target_path(path)), message)
}

fn target_path(path: &str) -> String {
    if path.is_empty() {
        "target".into()
    } else {
        format!("{path}.target")
    }
}

fn params_path(path: &str) -> String {
    if path.is_empty() {
        "params".into()
    } else {
        format!("{path}.params")
    }
}

impl<'a> Scratch<'a> {
    pub fn new(base: &'a Community, actor: &'a str, cx: Ctx<'a>) -> Scratch<'a> {
        Scratch {
            base,
            d: Delta {
                next_permission: base.next_permission,
                next_item: base.items.next_id().0,
                ..Delta::default()
            },
            actor,
            cx,
        }
    }

    // ---- The overlaid view ----

    fn owners(&self) -> &Authority {
        self.d
            .owners
            .as_ref()
            .unwrap_or(&self.base.constitution.owners)
    }

    fn governors(&self) -> &Authority {
        self.d
            .governors
            .as_ref()
            .unwrap_or(&self.base.constitution.governors)
    }

    fn permission(&self, id: PermissionId) -> Option<&Permission> {
        match self.d.perms.get(&id) {
            Some(p) => p.as_ref(),
            None => self.base.permissions.get(id),
        }
    }

    pub fn item(&self, id: ItemId) -> Option<&ItemMeta> {
        self.d.items.get(&id).or_else(|| self.base.items.get(id))
    }

    fn item_mut(&mut self, id: ItemId) -> &mut ItemMeta {
        if !self.d.items.contains_key(&id) {
            let meta = self
                .base
                .items
                .get(id)
                .cloned()
                .expect("item_mut is called on an item that exists");
            self.d.items.insert(id, meta);
        }
        self.d.items.get_mut(&id).expect("just inserted")
    }

    fn members(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .base
            .constitution
            .members
            .keys()
            .filter(|m| !self.d.members.contains_key(&**m))
            .map(|m| &**m)
            .collect();
        out.extend(
            self.d
                .members
                .iter()
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| &**k),
        );
        out
    }

    fn agent_ix(&mut self, name: &str) -> u32 {
        if let Some(ix) = self.base.agents.get(name) {
            return ix;
        }
        let base = self.base.agents.len();
        if let Some(p) = self.d.new_agents.iter().position(|a| &**a == name) {
            return base + p as u32;
        }
        self.d.new_agents.push(name.into());
        base + self.d.new_agents.len() as u32 - 1
    }

    fn holds(&self, agent: &str, role: &RoleKey) -> bool {
        holds(self, agent, role, self.cx.accounts, self.cx.now)
    }

    /// Whether `role` is named by a permission (or its conditions), by owners or governors, or
    /// by their conditions, in the overlaid state.
    fn role_in_use(&self, role: &RoleKey) -> bool {
        if self.owners().role_refs().any(|r| r == role)
            || self.governors().role_refs().any(|r| r == role)
        {
            return true;
        }
        let refs = |p: &Permission| {
            p.spec
                .roles
                .iter()
                .chain(p.spec.conditions.iter().flat_map(|c| c.roles()))
                .filter(|r| *r == role)
                .count() as i64
        };
        let mut uses = i64::from(self.base.permissions.role_uses(role));
        for (id, new) in &self.d.perms {
            if let Some(old) = self.base.permissions.get(*id) {
                uses -= refs(old);
            }
            if let Some(new) = new {
                uses += refs(new);
            }
        }
        uses > 0
    }

    fn check_roles_exist<'r>(
        &self,
        roles: impl IntoIterator<Item = &'r RoleKey>,
        path: &str,
    ) -> Result<(), GovError> {
        for r in roles {
            if r.is_members() {
                continue;
            }
            let ok = match r.of {
                None => self.role(r).is_some(),
                Some(of) => self
                    .item(of)
                    .is_some_and(|m| !m.destroyed() && m.typ().roles().contains(&&*r.name)),
            };
            if !ok {
                return Err(GovError::bad(
                    "unknown_role",
                    Some(path),
                    format!("there is no role '{r}'"),
                ));
            }
        }
        Ok(())
    }

    fn check_conditions(&self, conds: &[ConditionSpec], path: &str) -> Result<(), GovError> {
        for c in conds {
            self.check_roles_exist(c.roles(), path)?;
        }
        Ok(())
    }

    /// At least one agent holds owner authority.
    fn check_owner_invariant(&self, path: &str) -> Result<(), GovError> {
        let owners = self.owners();
        if !owners.actors.is_empty() {
            return Ok(());
        }
        let members = self.members();
        let held = owners.roles.iter().any(|r| match r {
            r if r.is_members() => !members.is_empty(),
            r => members.iter().any(|m| self.holds(m, r))
                || matches!(self.role(r).map(|x| &x.def), Some(RoleDef::Assigned(s)) if !s.is_empty()),
        });
        if held {
            Ok(())
        } else {
            Err(GovError::bad(
                "last_owner",
                Some(path),
                "this would leave nobody holding owner authority",
            ))
        }
    }

    fn live_item(&self, id: ItemId, path: &str, what: &str) -> Result<&ItemMeta, GovError> {
        let meta = self.item(id).ok_or_else(|| {
            GovError::not_found("unknown_target", Some(path), format!("no {what} {id}"))
        })?;
        if meta.destroyed() {
            return Err(GovError::conflict(
                "destroyed",
                Some(path),
                format!("item {id} was destroyed; it takes no more changes"),
            ));
        }
        Ok(meta)
    }

    /// Checks that `target` exists (and, for items, is not destroyed).
    fn object_exists(&self, target: &ObjectRef, path: &str) -> Result<(), GovError> {
        let tp = target_path(path);
        match target {
            ObjectRef::Community | ObjectRef::Owners | ObjectRef::Governors => Ok(()),
            ObjectRef::Role(k) if k.is_members() => Err(GovError::bad(
                "builtin_role",
                Some(&tp),
                "the built-in 'members' role is changed through the community \
                 (add_members, remove_members)",
            )),
            ObjectRef::Role(k) => {
                if self.role(k).is_some() {
                    Ok(())
                } else {
                    Err(invalid_target(path, format!("there is no role '{k}'")))
                }
            }
            ObjectRef::Permission(id) => {
                if self.permission(*id).is_some() {
                    Ok(())
                } else {
                    Err(invalid_target(path, format!("there is no permission {id}")))
                }
            }
            ObjectRef::Item(id) => self.live_item(*id, &tp, "item").map(|_| ()),
            ObjectRef::Condition(_) | ObjectRef::Action(_) => {
                Err(invalid_target(path, "this target takes no such change"))
            }
        }
    }

    fn notice(&mut self, kind: NoticeKind, item: ItemId, version: u32, summary: &str) {
        self.d.notices.push(Notice {
            id: NoticeId(0),
            kind,
            item,
            version,
            agent: self.actor.to_string(),
            at: self.cx.now,
            summary: summary.to_string(),
            from_item: None,
            from_version: None,
            field: None,
        });
    }

    fn relation(&mut self, to: ItemId, from: ItemId, field: Field) {
        let to_version = self.item(to).map(|m| m.version()).unwrap_or(0);
        let from_version = self.item(from).map(|m| m.version()).unwrap_or(0);
        self.d.notices.push(Notice {
            id: NoticeId(0),
            kind: NoticeKind::Relation,
            item: to,
            version: to_version,
            agent: self.actor.to_string(),
            at: self.cx.now,
            summary: String::new(),
            from_item: Some(from),
            from_version: Some(from_version),
            field: Some(field),
        });
    }

    fn set_switches(&mut self, target: &ObjectRef, f: impl FnOnce(&mut Switches)) {
        match target {
            ObjectRef::Community => {
                let mut s = self
                    .d
                    .community_switches
                    .unwrap_or(self.base.constitution.switches);
                f(&mut s);
                self.d.community_switches = Some(s);
            }
            ObjectRef::Role(k) => {
                if let Some(mut r) = self.role(k).cloned() {
                    f(&mut r.switches);
                    self.d.roles.insert(k.clone(), Some(r));
                }
            }
            ObjectRef::Permission(id) => {
                if let Some(mut p) = self.permission(*id).cloned() {
                    f(&mut p.switches);
                    self.d.perms.insert(*id, Some(p));
                }
            }
            ObjectRef::Item(id) => {
                let m = self.item_mut(*id);
                let mut s = m.switches();
                f(&mut s);
                m.set_switches(s);
            }
            _ => {}
        }
    }

    /// Removes a permission and every permission stacked on it.
    fn remove_permission(&mut self, id: PermissionId) {
        let mut queue = vec![id];
        while let Some(p) = queue.pop() {
            if self.permission(p).is_none() {
                continue;
            }
            self.d.perms.insert(p, None);
            let on = ObjectRef::Permission(p);
            let stacked: Vec<PermissionId> = self
                .base
                .permissions
                .on(&on)
                .iter()
                .copied()
                .chain(
                    self.d
                        .perms
                        .iter()
                        .filter(|(_, v)| v.as_ref().is_some_and(|x| x.on == on))
                        .map(|(k, _)| *k),
                )
                .collect();
            queue.extend(stacked);
        }
    }

    fn add_permission(&mut self, on: ObjectRef, spec: PermissionSpec) -> PermissionId {
        let id = PermissionId(self.d.next_permission);
        self.d.next_permission += 1;
        self.d.perms.insert(
            id,
            Some(Permission {
                on,
                spec,
                switches: Switches::default(),
            }),
        );
        id
    }

    /// Validates `change` (index `idx`, field path prefix `path`) against the overlaid state and
    /// applies it to the overlay; returns the checks the pipeline must decide for it.
    pub fn apply(
        &mut self,
        idx: usize,
        change: &Change,
        path: &str,
    ) -> Result<Vec<CheckSpec>, GovError> {
        use ChangeKind as K;
        let pp = params_path(path);
        let tp = target_path(path);
        let mut checks = vec![CheckSpec {
            change: idx,
            target: change.target.clone(),
            abilities: vec![Ability::Change(change.kind)],
        }];
        let mut result = json!({});
        match (&change.kind, &change.params) {
            (K::Rename, Params::Rename { name }) => {
                self.d.name = Some(name.clone());
                self.d.constitution_changed = true;
            }
            (K::AddMembers, Params::Agents { agents }) => {
                for (i, a) in agents.iter().enumerate() {
                    if self.joined(a).is_some() {
                        return Err(GovError::bad(
                            "already_member",
                            Some(&format!("{pp}.agents[{i}]")),
                            format!("{a} is already a member"),
                        ));
                    }
                    self.d.members.insert(a.clone(), Some(self.cx.now));
                }
                self.d.constitution_changed = true;
            }
            (K::RemoveMembers, Params::Agents { agents }) => {
                for (i, a) in agents.iter().enumerate() {
                    if self.joined(a).is_none() {
                        return Err(GovError::bad(
                            "not_a_member",
                            Some(&format!("{pp}.agents[{i}]")),
                            format!("{a} is not a member"),
                        ));
                    }
                    self.d.members.insert(a.clone(), None);
                    // A removed member leaves every assigned role.
                    let keys: Vec<RoleKey> = self
                        .base
                        .constitution
                        .roles
                        .keys()
                        .chain(self.d.roles.keys())
                        .cloned()
                        .collect();
                    for k in keys {
                        if let Some(Role {
                            def: RoleDef::Assigned(set),
                            switches,
                        }) = self.role(&k).cloned()
                        {
                            if set.contains(&**a) {
                                let mut set = set;
                                set.remove(&**a);
                                self.d.roles.insert(
                                    k,
                                    Some(Role {
                                        def: RoleDef::Assigned(set),
                                        switches,
                                    }),
                                );
                            }
                        }
                    }
                }
                self.check_owner_invariant(&pp)?;
                self.d.constitution_changed = true;
            }
            (K::AddRole, Params::AddRole { name, actors, rule }) => {
                let key = RoleKey::community(name);
                if key.is_members() || self.role(&key).is_some() {
                    return Err(GovError::bad(
                        "duplicate_role",
                        Some(&format!("{pp}.name")),
                        format!("there is already a role '{name}'"),
                    ));
                }
                for (i, a) in actors.iter().enumerate() {
                    if self.joined(a).is_none() {
                        return Err(GovError::bad(
                            "not_a_member",
                            Some(&format!("{pp}.actors[{i}]")),
                            format!("{a} is not a member; a role's holders are members"),
                        ));
                    }
                }
                let def = match rule {
                    Some(r) => RoleDef::Automated(r.clone()),
                    None => RoleDef::Assigned(actors.iter().cloned().collect()),
                };
                self.d.roles.insert(
                    key,
                    Some(Role {
                        def,
                        switches: Switches::default(),
                    }),
                );
                self.d.constitution_changed = true;
            }
            (K::RemoveRole, Params::Empty) => {
                let ObjectRef::Role(key) = &change.target else {
                    return Err(wrong_target());
                };
                if key.is_members() {
                    return Err(GovError::bad(
                        "builtin_role",
                        Some(&tp),
                        "'members' cannot be removed",
                    ));
                }
                self.object_exists(&change.target, path)?;
                if self.role_in_use(key) {
                    return Err(GovError::bad(
                        "role_in_use",
                        Some(&tp),
                        format!(
                            "role '{key}' is named by a permission, the owners or the governors"
                        ),
                    ));
                }
                self.d.roles.insert(key.clone(), None);
                self.d.constitution_changed = true;
            }
            (K::AddPeopleToRole | K::RemovePeopleFromRole, Params::Agents { agents }) => {
                let ObjectRef::Role(key) = &change.target else {
                    return Err(wrong_target());
                };
                if key.is_members() {
                    return Err(GovError::bad(
                        "builtin_role",
                        Some(&tp),
                        "members join and leave through add_members and remove_members",
                    ));
                }
                let current = match key.of {
                    None => match self.role(key).map(|r| &r.def) {
                        None => {
                            return Err(invalid_target(path, format!("there is no role '{key}'")))
                        }
                        Some(RoleDef::Automated(_)) => {
                            return Err(GovError::bad(
                                "automated_role",
                                Some(&tp),
                                format!("role '{key}' is filled by its rule"),
                            ))
                        }
                        Some(RoleDef::Assigned(s)) => s.clone(),
                    },
                    Some(of) => {
                        let ok = self.item(of).is_some_and(|m| {
                            !m.destroyed() && m.typ().roles().contains(&&*key.name)
                        });
                        if !ok {
                            return Err(GovError::not_found(
                                "unknown_target",
                                Some(&format!("{pp}.of")),
                                format!("item {of} has no role '{}'", key.name),
                            ));
                        }
                        match self.role(key).map(|r| &r.def) {
                            Some(RoleDef::Assigned(s)) => s.clone(),
                            _ => Default::default(),
                        }
                    }
                };
                let mut set = current;
                for (i, a) in agents.iter().enumerate() {
                    let at = format!("{pp}.agents[{i}]");
                    if change.kind == K::AddPeopleToRole {
                        if self.joined(a).is_none() {
                            return Err(GovError::bad(
                                "not_a_member",
                                Some(&at),
                                format!("{a} is not a member; a role's holders are members"),
                            ));
                        }
                        if !set.insert(a.clone()) {
                            return Err(GovError::bad(
                                "already_in_role",
                                Some(&at),
                                format!("{a} already holds '{key}'"),
                            ));
                        }
                    } else if !set.remove(&**a) {
                        return Err(GovError::bad(
                            "not_in_role",
                            Some(&at),
                            format!("{a} does not hold '{key}'"),
                        ));
                    }
                }
                let switches = self.role(key).map(|r| r.switches).unwrap_or_default();
                self.d.roles.insert(
                    key.clone(),
                    Some(Role {
                        def: RoleDef::Assigned(set),
                        switches,
                    }),
                );
                if change.kind == K::RemovePeopleFromRole {
                    self.check_owner_invariant(&pp)?;
                }
                self.d.constitution_changed = true;
            }
            (K::ChangeOwners | K::ChangeGovernors, Params::Authority { actors, roles }) => {
                self.check_roles_exist(roles, &format!("{pp}.roles"))?;
                let owners = change.kind == K::ChangeOwners;
                let old = if owners {
                    self.owners()
                } else {
                    self.governors()
                };
                let new = Authority {
                    actors: actors.clone(),
                    roles: roles.clone(),
                    conditions: old.conditions.clone(),
                };
                if owners {
                    self.d.owners = Some(new);
                    self.check_owner_invariant(&pp)?;
                } else {
                    self.d.governors = Some(new);
                }
                self.d.constitution_changed = true;
            }
            (K::SetOwnerCondition | K::SetGovernorCondition, Params::Conditions(list)) => {
                self.check_conditions(list, &pp)?;
                if change.kind == K::SetOwnerCondition {
                    let mut a = self.owners().clone();
                    a.conditions = list.clone();
                    self.d.owners = Some(a);
                } else {
                    let mut a = self.governors().clone();
                    a.conditions = list.clone();
                    self.d.governors = Some(a);
                }
                self.d.constitution_changed = true;
            }
            (K::SetProposals, Params::Enabled(b)) => {
                self.d.proposals = Some(*b);
                self.d.constitution_changed = true;
            }
            (
                K::EnableFoundationalOverride
                | K::DisableFoundationalOverride
                | K::EnableGoverning
                | K::DisableGoverning,
                Params::Empty,
            ) => {
                self.object_exists(&change.target, path)?;
                let kind = change.kind;
                self.set_switches(&change.target, |s| match kind {
                    K::EnableFoundationalOverride => s.foundational_override = true,
                    K::DisableFoundationalOverride => s.foundational_override = false,
                    K::EnableGoverning => s.governing = true,
                    _ => s.governing = false,
                });
                self.d.constitution_changed = true;
            }
            (K::AddPermission, Params::AddPermission(spec)) => {
                self.object_exists(&change.target, path)?;
                if spec.applies_to == AppliesTo::Members
                    && !matches!(change.target, ObjectRef::Community | ObjectRef::Item(_))
                {
                    return Err(GovError::invalid(
                        &format!("{pp}.applies_to"),
                        "only the community and items have members",
                    ));
                }
                self.check_roles_exist(&spec.roles, &format!("{pp}.roles"))?;
                self.check_conditions(&spec.conditions, &pp)?;
                let id = self.add_permission(change.target.clone(), spec.clone());
                result = json!({"permission": id.to_string()});
                self.d.constitution_changed = true;
            }
            (K::EditPermission, Params::EditPermission(patch)) => {
                let ObjectRef::Permission(id) = change.target else {
                    return Err(wrong_target());
                };
                self.object_exists(&change.target, path)?;
                let old = self.permission(id).cloned().expect("exists");
                let spec = patch.apply(&old.spec, &pp)?;
                if spec.applies_to == AppliesTo::Members
                    && !matches!(old.on, ObjectRef::Community | ObjectRef::Item(_))
                {
                    return Err(GovError::invalid(
                        &format!("{pp}.applies_to"),
                        "only the community and items have members",
                    ));
                }
                self.check_roles_exist(&spec.roles, &format!("{pp}.roles"))?;
                self.check_conditions(&spec.conditions, &pp)?;
                self.d.perms.insert(id, Some(Permission { spec, ..old }));
                self.d.constitution_changed = true;
            }
            (K::RemovePermission, Params::Empty) => {
                let ObjectRef::Permission(id) = change.target else {
                    return Err(wrong_target());
                };
                self.object_exists(&change.target, path)?;
                self.remove_permission(id);
                self.d.constitution_changed = true;
            }
            (K::AddCondition, Params::AddCondition(spec)) => {
                self.object_exists(&change.target, path)?;
                self.check_conditions(std::slice::from_ref(spec), &pp)?;
                self.edit_conditions(&change.target, &pp, |list| {
                    list.push(spec.clone());
                    Ok(())
                })?;
            }
            (K::RemoveCondition, Params::RemoveCondition(index)) => {
                self.object_exists(&change.target, path)?;
                let index = *index;
                self.edit_conditions(&change.target, &pp, |list| {
                    if index >= list.len() {
                        return Err(GovError::invalid(
                            &format!("{pp}.index"),
                            format!("there are {} conditions", list.len()),
                        ));
                    }
                    list.remove(index);
                    Ok(())
                })?;
            }
            (K::ApplyTemplate, Params::Template(t)) => {
                let plan = t.plan(self.actor);
                for (key, holders) in &plan.roles {
                    for (i, a) in holders.iter().enumerate() {
                        if self.joined(a).is_none() {
                            return Err(GovError::bad(
                                "not_a_member",
                                Some(&format!("{pp}.board[{i}]")),
                                format!("{a} is not a member"),
                            ));
                        }
                    }
                    if self.role(key).is_none() {
                        self.d.roles.insert(
                            key.clone(),
                            Some(Role {
                                def: RoleDef::Assigned(holders.iter().cloned().collect()),
                                switches: Switches::default(),
                            }),
                        );
                    }
                }
                if let Some(o) = plan.owners {
                    self.d.owners = Some(o);
                }
                if let Some(g) = plan.governors {
                    self.d.governors = Some(g);
                }
                if let Some(p) = plan.proposals {
                    self.d.proposals = Some(p);
                }
                for spec in plan.permissions {
                    self.add_permission(ObjectRef::Community, spec);
                }
                self.check_owner_invariant(&pp)?;
                self.d.constitution_changed = true;
            }
            (K::CreateItem, Params::CreateItem { typ, fields }) => {
                let container = match change.target {
                    ObjectRef::Item(c) => {
                        let m = self.live_item(c, &tp, "item")?;
                        if !m.typ().is_container() {
                            return Err(GovError::bad(
                                "not_a_container",
                                Some(&tp),
                                format!("items cannot be created in a {}", m.typ().name()),
                            ));
                        }
                        if !m.active() {
                            return Err(GovError::conflict(
                                "inactive",
                                Some(&tp),
                                format!("item {c} is deactivated"),
                            ));
                        }
                        Some(c)
                    }
                    _ => None,
                };
                let container_type = container.and_then(|c| self.item(c)).map(|m| m.typ());
                if !typ.may_be_created_in(container_type) {
                    return Err(GovError::bad(
                        "not_a_container",
                        Some(&tp),
                        format!(
                            "a {} cannot be created in {}",
                            typ.name(),
                            container_type.map_or("the community", |t| t.name())
                        ),
                    ));
                }
                let id = self.create(*typ, container, fields.clone());
                result = json!({"item": id.to_string()});
            }
            (K::Comment, Params::Comment { body }) => {
                let ObjectRef::Item(subject) = change.target else {
                    return Err(wrong_target());
                };
                let m = self.live_item(subject, &tp, "item")?;
                if !m.active() {
                    return Err(GovError::conflict(
                        "inactive",
                        Some(&tp),
                        format!("item {subject} is deactivated"),
                    ));
                }
                let mut fields = Fields::new();
                fields.insert("body".into(), json!(body));
                fields.insert("item".into(), json!(subject.to_string()));
                fields.insert("item_version".into(), json!(m.version()));
                let id = self.create(ItemType::Comment, Some(subject), fields);
                result = json!({"item": id.to_string()});
            }
            (K::EditItem, Params::EditItem { fields, summary }) => {
                let ObjectRef::Item(id) = change.target else {
                    return Err(wrong_target());
                };
                let m = self.live_item(id, &tp, "item")?;
                if !m.active() {
                    return Err(GovError::conflict(
                        "inactive",
                        Some(&tp),
                        format!("item {id} is deactivated"),
                    ));
                }
                let typ = m.typ();
                let fields = check_fields(typ, fields, false, &format!("{pp}.fields"))?;
                let (changed, merged) = {
                    let current = self.current_fields(id, &tp)?;
                    let changed: Vec<Field> = fields
                        .iter()
                        .filter(|(k, v)| current.get(*k) != Some(*v))
                        .filter_map(|(k, _)| Field::parse(k))
                        .collect();
                    (changed, merge_fields(current, &fields))
                };
                if changed.is_empty() {
                    return Err(GovError::bad(
                        "no_change",
                        Some(&format!("{pp}.fields")),
                        "these are the item's current values",
                    ));
                }
                checks = changed
                    .iter()
                    .map(|f| CheckSpec {
                        change: idx,
                        target: change.target.clone(),
                        abilities: vec![Ability::EditField(*f), Ability::Change(K::EditItem)],
                    })
                    .collect();
                // The boundaries already announced stay announced across edits.
                let announced = m.structure().and_then(|s| s.announced_through);
                let structure = Structure::from_fields(typ, &merged).map(|mut s| {
                    s.announced_through = announced;
                    s
                });
                let meta = self.item_mut(id);
                meta.set_structure(structure);
                let version = meta.bump_version();
                self.d.versions.push(VersionRecord {
                    item: id,
                    version,
                    fields: merged,
                    agent: self.actor.to_string(),
                    at: self.cx.now,
                    summary: summary.clone(),
                });
                self.notice(NoticeKind::Edit, id, version, summary);
            }
            (K::DeactivateItem | K::ReactivateItem, Params::Empty) => {
                let ObjectRef::Item(id) = change.target else {
                    return Err(wrong_target());
                };
                let m = self.live_item(id, &tp, "item")?;
                let activate = change.kind == K::ReactivateItem;
                if m.active() == activate {
                    return Err(GovError::conflict(
                        if activate {
                            "already_active"
                        } else {
                            "already_inactive"
                        },
                        Some(&tp),
                        format!(
                            "item {id} is already {}",
                            if activate { "active" } else { "deactivated" }
                        ),
                    ));
                }
                let meta = self.item_mut(id);
                meta.set_active(activate);
                let v = meta.version();
                self.notice(
                    if activate {
                        NoticeKind::Reactivate
                    } else {
                        NoticeKind::Deactivate
                    },
                    id,
                    v,
                    "",
                );
            }
            (K::DestroyItem, Params::Empty) => {
                let ObjectRef::Item(id) = change.target else {
                    return Err(wrong_target());
                };
                let m = self.live_item(id, &tp, "item")?;
                if m.active() {
                    return Err(GovError::conflict(
                        "still_active",
                        Some(&tp),
                        "an item is destroyed only after it was deactivated",
                    ));
                }
                let meta = self.item_mut(id);
                meta.destroy();
                let v = meta.version();
                let on = ObjectRef::Item(id);
                let perms: Vec<PermissionId> = self
                    .base
                    .permissions
                    .on(&on)
                    .iter()
                    .copied()
                    .chain(
                        self.d
                            .perms
                            .iter()
                            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.on == on))
                            .map(|(k, _)| *k),
                    )
                    .collect();
                for p in perms {
                    self.remove_permission(p);
                }
                self.d.destroyed.push(id);
                self.notice(NoticeKind::Destroy, id, v, "");
                self.d.constitution_changed = true;
            }
            (
                K::AddToCollection | K::RemoveFromCollection,
                Params::Collection {
                    item,
                    permission_enabled,
                },
            ) => {
                let ObjectRef::Item(coll) = change.target else {
                    return Err(wrong_target());
                };
                let cm = self.live_item(coll, &tp, "item")?;
                if !cm.typ().is_collection() {
                    return Err(GovError::bad(
                        "not_a_collection",
                        Some(&tp),
                        format!("item {coll} is a {}, not a collection", cm.typ().name()),
                    ));
                }
                let ip = format!("{pp}.item");
                let member = self.live_item(*item, &ip, "item")?;
                let existing = member.membership(coll);
                if change.kind == K::AddToCollection {
                    if *item == coll {
                        return Err(GovError::invalid(&ip, "an item is not added to itself"));
                    }
                    let was = existing.map(|m| m.permission_enabled());
                    let now_enabled = match (was, permission_enabled) {
                        (None, p) => p.unwrap_or(false),
                        (Some(w), Some(p)) if w != *p => *p,
                        (Some(_), _) => {
                            return Err(GovError::conflict(
                                "already_in_collection",
                                Some(&ip),
                                format!("item {item} is already in collection {coll}"),
                            ))
                        }
                    };
                    if now_enabled && was != Some(true) {
                        // Deme's guard: letting collection-level grants reach an item takes
                        // authority over the item itself.
                        checks.push(CheckSpec {
                            change: idx,
                            target: ObjectRef::Item(*item),
                            abilities: vec![Ability::DoAnything],
                        });
                    }
                    self.item_mut(*item)
                        .set_membership(Membership::new(coll, now_enabled));
                } else {
                    if existing.is_none() {
                        return Err(GovError::conflict(
                            "not_in_collection",
                            Some(&ip),
                            format!("item {item} is not in collection {coll}"),
                        ));
                    }
                    self.item_mut(*item).remove_membership(coll);
                }
                self.relation(coll, *item, Field::Collections);
            }
            (K::Rate, Params::Rate { value }) => {
                let ObjectRef::Item(id) = change.target else {
                    return Err(wrong_target());
                };
                let m = self.live_item(id, &tp, "item")?;
                if !m.active() {
                    return Err(GovError::conflict(
                        "inactive",
                        Some(&tp),
                        format!("item {id} is deactivated"),
                    ));
                }
                let agent = self.agent_ix(self.actor);
                self.item_mut(id).set_rating(agent, *value);
                self.d.ratings.push(Rating {
                    item: id,
                    agent: self.actor.to_string(),
                    value: *value,
                });
            }
            (k, _) if k.is_answer() => {
                return Err(GovError::bad(
                    "invalid_body",
                    Some(path),
                    "answers are decided by their condition, not applied as changes",
                ))
            }
            _ => return Err(wrong_target()),
        }
        self.d.results.push(result);
        Ok(checks)
    }

    fn current_fields(&self, id: ItemId, path: &str) -> Result<&Fields, GovError> {
        // A version written earlier in the same batch is the current one.
        if let Some(v) = self.d.versions.iter().rev().find(|v| v.item == id) {
            return Ok(&v.fields);
        }
        self.cx.fields.fields(id).ok_or_else(|| {
            GovError::conflict(
                "fields_unavailable",
                Some(path),
                format!("the current fields of item {id} were not supplied"),
            )
        })
    }

    fn create(&mut self, typ: ItemType, container: Option<ItemId>, fields: Fields) -> ItemId {
        let id = ItemId(self.d.next_item);
        self.d.next_item += 1;
        let creator = self.agent_ix(self.actor);
        let mut meta = ItemMeta::new(typ, creator, container, self.cx.now);
        meta.set_structure(Structure::from_fields(typ, &fields));
        self.d.items.insert(id, meta);
        self.d.versions.push(VersionRecord {
            item: id,
            version: 1,
            fields,
            agent: self.actor.to_string(),
            at: self.cx.now,
            summary: String::new(),
        });
        self.notice(NoticeKind::Create, id, 1, "");
        if let Some(c) = container {
            let field = if typ == ItemType::Comment {
                Field::Item
            } else {
                Field::Container
            };
            self.relation(c, id, field);
        }
        id
    }

    fn edit_conditions(
        &mut self,
        target: &ObjectRef,
        pp: &str,
        f: impl FnOnce(&mut Vec<ConditionSpec>) -> Result<(), GovError>,
    ) -> Result<(), GovError> {
        match target {
            ObjectRef::Owners => {
                let mut a = self.owners().clone();
                f(&mut a.conditions)?;
                self.d.owners = Some(a);
            }
            ObjectRef::Governors => {
                let mut a = self.governors().clone();
                f(&mut a.conditions)?;
                self.d.governors = Some(a);
            }
            ObjectRef::Permission(id) => {
                let mut p = self.permission(*id).cloned().expect("checked to exist");
                f(&mut p.spec.conditions)?;
                if p.spec.conditions.len() > 16 {
                    return Err(GovError::invalid(pp, "at most 16 conditions on one grant"));
                }
                p.spec.check(pp)?;
                self.d.perms.insert(*id, Some(p));
            }
            _ => {
                return Err(GovError::bad(
                    "invalid_target",
                    Some("target"),
                    "no conditions here",
                ))
            }
        }
        self.d.constitution_changed = true;
        Ok(())
    }
}

/// Parsing guarantees each change's params and target kind; this is the refusal for a
/// combination it never produces, kept as an error rather than a panic.
fn wrong_target() -> GovError {
    GovError::bad(
        "invalid_target",
        Some("target"),
        "this change does not take this target",
    )
}

impl Community {
    /// Commits a delta built on this very state (by a [`Scratch`] over `self`); gives the
    /// notices their ids and returns them.
    pub(crate) fn commit(&mut self, d: Delta) -> Committed {
        let c = &mut self.constitution;
        if let Some(n) = d.name {
            c.name = n;
        }
        if let Some(o) = d.owners {
            c.owners = o;
        }
        if let Some(g) = d.governors {
            c.governors = g;
        }
        if let Some(p) = d.proposals {
            c.proposals = p;
        }
        if let Some(s) = d.community_switches {
            c.switches = s;
        }
        for (m, v) in d.members {
            match v {
                Some(at) => {
                    c.members.insert(m, at);
                }
                None => {
                    c.members.remove(&m);
                }
            }
        }
        for (k, r) in d.roles {
            match r {
                Some(r) => {
                    c.roles.insert(k, r);
                }
                None => {
                    c.roles.remove(&k);
                }
            }
        }
        for (id, p) in d.perms {
            match p {
                Some(p) => self.permissions.insert(id, p),
                None => {
                    self.permissions.remove(id);
                }
            }
        }
        self.next_permission = d.next_permission;
        for a in &d.new_agents {
            self.agents.intern(a);
        }
        let changed_items: Vec<ItemId> = d.items.keys().copied().collect();
        for (id, meta) in d.items {
            self.items.put(id, meta);
        }
        let mut notices = d.notices;
        for n in &mut notices {
            n.id = NoticeId(self.next_notice);
            self.next_notice += 1;
        }
        Committed {
            results: d.results,
            notices,
            versions: d.versions,
            destroyed: d.destroyed,
            ratings: d.ratings,
            changed_items,
            constitution_changed: d.constitution_changed,
        }
    }
}

/// What a commit produced.
pub(crate) struct Committed {
    pub results: Vec<Value>,
    pub notices: Vec<Notice>,
    pub versions: Vec<VersionRecord>,
    pub destroyed: Vec<ItemId>,
    pub ratings: Vec<Rating>,
    pub changed_items: Vec<ItemId>,
    pub constitution_changed: bool,
}
