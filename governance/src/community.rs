//! [`Community`]: one community's governance state, as its actor keeps it in memory, and the
//! reads decided on it (who holds a role, who may view an item or a field or a notice, list
//! pages, which subscriptions a notice goes to).
//!
//! **Reads** (section 5). A destroyed item denies everything. Otherwise `view` is decided by the
//! 9-level walk when a `view` permission (or a `view_anything` / `do_anything` that matches the
//! reader) applies to the item, and by the default when none does: members may view every item.
//! A field (`view <field>`) and the notices (`view action_notices`) need the item to be
//! viewable, then follow their own permissions when any apply, else the item's view. Reads never
//! wait: a grant with waiting conditions does not grant a read, and filters that need a change
//! or the item's fields (`self_only`, `rate_limit`, `field_matches`) never match a read. The
//! driver's own reads (no agent) see everything.
//!
//! The state changes only through [`Community::submit`] and the other methods in
//! `actions.rs`, which commit a validated scratch overlay (`scratch.rs`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::changes::{Ability, ChangeKind};
use crate::conditions::{ConditionSpec, ConditionState, FilterCx, Who, MAX_RATE_COUNT};
use crate::constitution::{Authority, Constitution, Switches};
use crate::ids::{ActionId, ConditionId, ItemId, ObjectRef, PermissionId, RoleKey};
use crate::item_types::{Field, Fields, ItemType};
use crate::items::{Agents, FieldSource, ItemMeta, Items, ListPage, ListQuery, NoFields};
use crate::log::GENESIS;
use crate::notices::{Notice, NoticeKind, Subscription};
use crate::participation::{placement, Access};
use crate::permissions::{FxBuild, Judge, Permissions, Reach, WalkOutcome};
use crate::roles::{LinkedAccounts, NoLinkedAccounts, Role, RoleDef, RuleCx};
use crate::when::Millis;
use crate::{actions::PendingAction, GovError};

/// What a decision or a read is made with besides the state: the time (the core reads no
/// clock), the identity directory for `linked_account` rules, and the current fields of the
/// items the request touches (see [`Community::fields_needed`]).
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub now: Millis,
    pub accounts: &'a dyn LinkedAccounts,
    pub fields: &'a dyn FieldSource,
}

impl<'a> Ctx<'a> {
    /// A context with no linked accounts and no item fields.
    pub fn at(now: Millis) -> Ctx<'static> {
        Ctx {
            now,
            accounts: &NoLinkedAccounts,
            fields: &NoFields,
        }
    }

    pub fn with_fields(self, fields: &'a dyn FieldSource) -> Ctx<'a> {
        Ctx { fields, ..self }
    }

    pub fn with_accounts(self, accounts: &'a dyn LinkedAccounts) -> Ctx<'a> {
        Ctx { accounts, ..self }
    }
}

/// Who reads: the driver itself (no `X-Agora-Actor`: sees everything) or an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer<'a> {
    Driver,
    Agent(&'a str),
}

/// Per agent and change type: implemented actions, and the latest timestamps (for
/// `rate_limit`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub count: u32,
    pub recent: Vec<Millis>,
}

/// An agent's tallies, one per change type they had implemented.
pub type Tallies = Vec<(ChangeKind, Tally)>;

/// One community's governance state.
#[derive(Debug, Clone)]
pub struct Community {
    pub(crate) constitution: Constitution,
    pub(crate) permissions: Permissions,
    pub(crate) next_permission: u64,
    pub(crate) items: Items,
    pub(crate) agents: Agents,
    pub(crate) pending: BTreeMap<ActionId, PendingAction>,
    pub(crate) conditions: BTreeMap<ConditionId, ConditionState>,
    pub(crate) next_action: u64,
    pub(crate) next_condition: u64,
    pub(crate) next_notice: u64,
    pub(crate) tallies: HashMap<Box<str>, Tallies>,
    pub(crate) subscriptions: HashMap<ItemId, Vec<Subscription>>,
    pub(crate) log_seq: u64,
    pub(crate) log_head: String,
}

/// A read-only view of the constitution that both the committed state and a scratch overlay
/// offer, so role holding and authority are decided by one function over either.
pub(crate) trait View {
    fn joined(&self, agent: &str) -> Option<Millis>;
    fn role(&self, key: &RoleKey) -> Option<&Role>;
    fn implemented(&self, agent: &str, kind: ChangeKind) -> u32;
}

/// Whether `agent` holds `role` at `now`.
pub(crate) fn holds(
    view: &dyn View,
    agent: &str,
    role: &RoleKey,
    accounts: &dyn LinkedAccounts,
    now: Millis,
) -> bool {
    if role.is_members() {
        return view.joined(agent).is_some();
    }
    match view.role(role).map(|r| &r.def) {
        Some(RoleDef::Assigned(set)) => set.contains(agent),
        Some(RoleDef::Automated(rule)) => rule.holds(&RuleCx {
            agent,
            joined: view.joined(agent),
            now,
            accounts,
            implemented: &|a, k| view.implemented(a, k),
        }),
        None => false,
    }
}

/// Whether `agent` holds an authority (owners, governors): named, or holding one of its roles.
pub(crate) fn holds_authority(
    view: &dyn View,
    auth: &Authority,
    agent: &str,
    accounts: &dyn LinkedAccounts,
    now: Millis,
) -> bool {
    auth.actors.iter().any(|a| &**a == agent)
        || auth
            .roles
            .iter()
            .any(|r| holds(view, agent, r, accounts, now))
}

impl View for Community {
    fn joined(&self, agent: &str) -> Option<Millis> {
        self.constitution.members.get(agent).copied()
    }

    fn role(&self, key: &RoleKey) -> Option<&Role> {
        self.constitution.roles.get(key)
    }

    fn implemented(&self, agent: &str, kind: ChangeKind) -> u32 {
        self.tally(agent, kind).map(|t| t.count).unwrap_or(0)
    }
}

/// Which roles one agent holds, remembered while the state is borrowed: keyed by the address of
/// the role reference inside a permission, which cannot move or change during the borrow. A
/// list checks thousands of items against the same few ancestor and community permissions, so
/// most role questions are answered here instead of by two B-tree searches.
pub(crate) type RoleMemo = RefCell<HashMap<usize, bool, FxBuild>>;

/// One list page's answers about its viewer, the same for every candidate.
struct PageView {
    member: bool,
    read_bearing: bool,
    /// Container id (0: none) → what its project means for the viewer.
    places: RefCell<HashMap<u64, PlaceView, FxBuild>>,
}

/// Whether the project an item sits in hides it from the viewer (private, and they are not
/// inside it) or shows it to every agent (public or semipublic).
#[derive(Clone, Copy)]
struct PlaceView {
    hidden: bool,
    open: bool,
}

/// The walk's questions answered for one agent and one action (or read).
pub(crate) struct Judging<'a> {
    pub community: &'a Community,
    pub agent: &'a str,
    pub accounts: &'a dyn LinkedAccounts,
    pub now: Millis,
    pub filters: FilterCx<'a>,
    pub memo: &'a RoleMemo,
}

impl Judge for Judging<'_> {
    fn holds(&self, role: &RoleKey) -> bool {
        let key = role as *const RoleKey as usize;
        if let Some(held) = self.memo.borrow().get(&key) {
            return *held;
        }
        let held = holds(self.community, self.agent, role, self.accounts, self.now);
        self.memo.borrow_mut().insert(key, held);
        held
    }

    fn filters_pass(&self, conditions: &[ConditionSpec]) -> bool {
        conditions
            .iter()
            .all(|c| self.filters.passes(c).unwrap_or(true))
    }
}

impl Community {
    /// A community founded by `founder` at `now` with Concord's default constitution (the
    /// founder is the only member, owner and governor, unconditioned). Templates and initial
    /// members: see [`Community::found`].
    pub fn new(founder: &str, now: Millis) -> Community {
        Community {
            constitution: Constitution::founded_by(founder, now),
            permissions: Permissions::default(),
            next_permission: 1,
            items: Items::default(),
            agents: Agents::default(),
            pending: BTreeMap::new(),
            conditions: BTreeMap::new(),
            next_action: 1,
            next_condition: 1,
            next_notice: 1,
            tallies: HashMap::new(),
            subscriptions: HashMap::new(),
            log_seq: 0,
            log_head: GENESIS.to_string(),
        }
    }

    // ---- Plain reads of the state ----

    pub fn constitution(&self) -> &Constitution {
        &self.constitution
    }

    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    pub fn items(&self) -> &Items {
        &self.items
    }

    pub fn item(&self, id: ItemId) -> Option<&ItemMeta> {
        self.items.get(id)
    }

    /// An item's creator, as an agent id.
    pub fn creator(&self, meta: &ItemMeta) -> &str {
        self.agents.name(meta.creator_ix())
    }

    pub fn is_member(&self, agent: &str) -> bool {
        self.constitution.members.contains_key(agent)
    }

    /// The latest log hash (`log_head` in `GET /governance`).
    pub fn log_head(&self) -> &str {
        &self.log_head
    }

    pub fn log_seq(&self) -> u64 {
        self.log_seq
    }

    pub fn pending(&self) -> impl Iterator<Item = &PendingAction> {
        self.pending.values()
    }

    pub fn pending_action(&self, id: ActionId) -> Option<&PendingAction> {
        self.pending.get(&id)
    }

    pub fn condition(&self, id: ConditionId) -> Option<&ConditionState> {
        self.conditions.get(&id)
    }

    pub(crate) fn tally(&self, agent: &str, kind: ChangeKind) -> Option<&Tally> {
        self.tallies
            .get(agent)?
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, t)| t)
    }

    /// Counts an implemented change; answers the tally's position in the agent's list.
    pub(crate) fn record_implemented(
        &mut self,
        agent: &str,
        kind: ChangeKind,
        at: Millis,
    ) -> usize {
        let list = self.tallies.entry(agent.into()).or_default();
        let pos = match list.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                list.push((kind, Tally::default()));
                list.len() - 1
            }
        };
        let tally = &mut list[pos].1;
        tally.count = tally.count.saturating_add(1);
        tally.recent.push(at);
        if tally.recent.len() > MAX_RATE_COUNT as usize {
            tally.recent.remove(0);
        }
        pos
    }

    /// Whether `agent` holds `role` now.
    pub fn holds_role(&self, agent: &str, role: &RoleKey, cx: &Ctx<'_>) -> bool {
        holds(self, agent, role, cx.accounts, cx.now)
    }

    pub fn is_owner(&self, agent: &str, cx: &Ctx<'_>) -> bool {
        holds_authority(self, &self.constitution.owners, agent, cx.accounts, cx.now)
    }

    pub fn is_governor(&self, agent: &str, cx: &Ctx<'_>) -> bool {
        holds_authority(
            self,
            &self.constitution.governors,
            agent,
            cx.accounts,
            cx.now,
        )
    }

    /// Every agent that holds `role` now (members only, by the invariants and the rule
    /// semantics), sorted.
    pub fn role_holders(&self, role: &RoleKey, cx: &Ctx<'_>) -> Vec<String> {
        let mut out: Vec<String> = self
            .constitution
            .members
            .keys()
            .filter(|m| holds(self, m, role, cx.accounts, cx.now))
            .map(|m| m.to_string())
            .collect();
        if let Some(RoleDef::Assigned(set)) = self.constitution.roles.get(role).map(|r| &r.def) {
            // Item roles (section 6) are assigned; their holders are members too, but keep any
            // that are not so the list is what the role says.
            for a in set {
                if !out.iter().any(|x| **x == **a) {
                    out.push(a.to_string());
                }
            }
        }
        out.sort();
        out
    }

    /// The agents a condition names (`who`), or the default answerers when it names nobody:
    /// the owners for an owners' condition, the governors otherwise. Resolved now, sorted.
    pub(crate) fn resolve_who(&self, who: &Who, owners_default: bool, cx: &Ctx<'_>) -> Vec<String> {
        let (actors, roles): (&[Box<str>], &[RoleKey]) = if who.is_empty() {
            let a = if owners_default {
                &self.constitution.owners
            } else {
                &self.constitution.governors
            };
            (&a.actors, &a.roles)
        } else {
            (&who.actors, &who.roles)
        };
        let mut out: Vec<String> = actors.iter().map(|a| a.to_string()).collect();
        for r in roles {
            for h in self.role_holders(r, cx) {
                if !out.contains(&h) {
                    out.push(h);
                }
            }
        }
        out.sort();
        out
    }

    /// Whether `agent` is among those `who` names (or the default answerers).
    pub(crate) fn who_includes(
        &self,
        who: &Who,
        owners_default: bool,
        agent: &str,
        cx: &Ctx<'_>,
    ) -> bool {
        if who.is_empty() {
            let a = if owners_default {
                &self.constitution.owners
            } else {
                &self.constitution.governors
            };
            return holds_authority(self, a, agent, cx.accounts, cx.now);
        }
        who.actors.iter().any(|a| &**a == agent)
            || who
                .roles
                .iter()
                .any(|r| holds(self, agent, r, cx.accounts, cx.now))
    }

    /// The switches of an object (defaults for anything that has none or does not exist).
    pub(crate) fn switches_of(&self, target: &ObjectRef) -> Switches {
        match target {
            ObjectRef::Community => self.constitution.switches,
            ObjectRef::Role(k) => self
                .constitution
                .roles
                .get(k)
                .map(|r| r.switches)
                .unwrap_or_default(),
            ObjectRef::Permission(id) => self
                .permissions
                .get(*id)
                .map(|p| p.switches)
                .unwrap_or_default(),
            ObjectRef::Item(id) => self
                .items
                .get(*id)
                .map(|m| m.switches())
                .unwrap_or_default(),
            _ => Switches::default(),
        }
    }

    /// What permissions reach `target` through, with the to-level of each.
    pub(crate) fn reach(&self, target: &ObjectRef) -> Vec<(ObjectRef, Reach)> {
        let mut out = vec![(target.clone(), Reach::One)];
        if let ObjectRef::Item(id) = target {
            if self.items.get(*id).is_some() {
                let mut anc = Vec::new();
                self.items.permission_ancestors(*id, &mut anc);
                out.extend(anc.into_iter().map(|a| (ObjectRef::Item(a), Reach::Some)));
                out.push((ObjectRef::Community, Reach::All));
            }
        }
        out
    }

    /// The filter context of a read of `item` by `agent`.
    fn read_filters<'a>(&'a self, agent: &'a str, meta: &'a ItemMeta, now: Millis) -> FilterCx<'a> {
        FilterCx {
            actor: agent,
            change: None,
            agents: None,
            item: Some((self.creator(meta), meta.typ())),
            fields: None,
            history: &[],
            now,
        }
    }

    /// The 9-level walk alone, for one agent, ability and target, as the specific route sees
    /// it (filters decided on a read of the target). The differential tests compare this with
    /// a literal model of section 4; writes go through [`Community::decide`].
    pub fn permission_decision(
        &self,
        agent: &str,
        ability: Ability,
        target: &ObjectRef,
        cx: &Ctx<'_>,
    ) -> WalkOutcome {
        let meta = target.item().and_then(|i| self.items.get(i));
        let filters = match meta {
            Some(m) => self.read_filters(agent, m, cx.now),
            None => FilterCx {
                actor: agent,
                change: None,
                agents: None,
                item: None,
                fields: None,
                history: &[],
                now: cx.now,
            },
        };
        let memo = RoleMemo::default();
        let judge = Judging {
            community: self,
            agent,
            accounts: cx.accounts,
            now: cx.now,
            filters,
            memo: &memo,
        };
        self.permissions
            .walk(agent, &[ability], &self.reach(target), &judge, None)
    }

    /// Whether `viewer` may read `ability` (`view`, `view <field>`, `view action_notices`) on
    /// item `id`, by the rules in the module docs.
    pub fn can_read(&self, viewer: Viewer<'_>, ability: Ability, id: ItemId, cx: &Ctx<'_>) -> bool {
        self.can_read_with(viewer, ability, id, cx, &RoleMemo::default())
    }

    /// [`Community::can_read`] with a role memo shared by several reads of one agent.
    fn can_read_with(
        &self,
        viewer: Viewer<'_>,
        ability: Ability,
        id: ItemId,
        cx: &Ctx<'_>,
        memo: &RoleMemo,
    ) -> bool {
        let Some(meta) = self.items.get(id) else {
            return false;
        };
        let agent = match viewer {
            Viewer::Driver => return true,
            Viewer::Agent(a) => a,
        };
        if meta.destroyed() {
            return false;
        }
        // A private project, with everything in it, is invisible to outsiders whatever the
        // permissions say (section 6).
        if self.hidden_by_private_project(agent, id, cx) {
            return false;
        }
        let item_view = self.read_one(agent, Ability::View, id, meta, cx, true, memo);
        if ability == Ability::View || !item_view {
            return item_view;
        }
        self.read_one(agent, ability, id, meta, cx, item_view, memo)
    }

    /// Whether `viewer` may view item `id` at all.
    pub fn can_view(&self, viewer: Viewer<'_>, id: ItemId, cx: &Ctx<'_>) -> bool {
        self.can_read(viewer, Ability::View, id, cx)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_one(
        &self,
        agent: &str,
        ability: Ability,
        id: ItemId,
        meta: &ItemMeta,
        cx: &Ctx<'_>,
        default_when_unregulated: bool,
        memo: &RoleMemo,
    ) -> bool {
        let default = if ability == Ability::View {
            // Public and semipublic projects are visible to every agent, members or not.
            self.is_member(agent) || self.in_open_project(id)
        } else {
            default_when_unregulated
        };
        if !self.permissions.any_read_bearing() {
            return default;
        }
        self.read_walk(agent, ability, id, meta, cx, default, memo)
    }

    /// The permission walk of a read, `default` when no permission applies.
    #[allow(clippy::too_many_arguments)]
    fn read_walk(
        &self,
        agent: &str,
        ability: Ability,
        id: ItemId,
        meta: &ItemMeta,
        cx: &Ctx<'_>,
        default: bool,
        memo: &RoleMemo,
    ) -> bool {
        let judge = Judging {
            community: self,
            agent,
            accounts: cx.accounts,
            now: cx.now,
            filters: self.read_filters(agent, meta, cx.now),
            memo,
        };
        match self.permissions.walk(
            agent,
            &[ability],
            &self.reach(&ObjectRef::Item(id)),
            &judge,
            None,
        ) {
            WalkOutcome::NotApplicable => default,
            WalkOutcome::NoMatch | WalkOutcome::Denied { .. } => false,
            WalkOutcome::Granted { by, .. } => by.iter().any(|p| {
                self.permissions
                    .get(*p)
                    .is_some_and(|p| p.spec.conditions.iter().all(ConditionSpec::is_filter))
            }),
        }
    }

    /// Whether `viewer` may see the target of an action: items by the view rule, permissions
    /// by the object they are set on, conditions by their action's targets; the constitution's
    /// objects are visible to all.
    pub fn can_view_target(&self, viewer: Viewer<'_>, target: &ObjectRef, cx: &Ctx<'_>) -> bool {
        match target {
            ObjectRef::Item(id) => self.can_view(viewer, *id, cx),
            ObjectRef::Permission(p) => match self.permissions.get(*p) {
                Some(p) => self.can_view_target(viewer, &p.on.clone(), cx),
                None => true,
            },
            ObjectRef::Condition(c) => match self.conditions.get(c) {
                Some(c) => self
                    .pending
                    .get(&c.action)
                    .map(|a| {
                        a.record
                            .targets()
                            .iter()
                            .all(|t| self.can_view_target(viewer, t, cx))
                    })
                    .unwrap_or(true),
                None => true,
            },
            _ => true,
        }
    }

    /// One page of the items `viewer` may view. Every listed item passes [`Community::can_view`]
    /// and every item that passes it is listed (the list/check agreement is property-tested).
    ///
    /// A page asks the same questions of its viewer for every candidate (are they a member,
    /// which project is this container in and are they inside it), so these are answered once
    /// per page ([`PageView`]); only the permission walk, when some permission bears on reads,
    /// is still asked per item. An outsider's page of 10,000 refusals costs a hash lookup each.
    pub fn list_items(&self, viewer: Viewer<'_>, query: &ListQuery, cx: &Ctx<'_>) -> ListPage {
        let mut q = query.clone();
        q.include_destroyed = q.include_destroyed && viewer == Viewer::Driver;
        let agent = match viewer {
            Viewer::Driver => return self.items.list(&q, &mut |_, _| true),
            Viewer::Agent(a) => a,
        };
        let memo = RoleMemo::default();
        let page = PageView {
            member: self.is_member(agent),
            read_bearing: self.permissions.any_read_bearing(),
            places: RefCell::default(),
        };
        self.items.list(&q, &mut |id, meta| {
            if meta.destroyed() {
                return false;
            }
            let place = self.place_view(agent, id, meta, &page, cx);
            // The same order of questions as `can_read_with`, each answered as it would be.
            if place.hidden {
                return false;
            }
            let default = page.member || place.open;
            if !page.read_bearing {
                return default;
            }
            self.read_walk(agent, Ability::View, id, meta, cx, default, &memo)
        })
    }

    /// What the project around item `id` means for `agent`'s view of it, as
    /// `hidden_by_private_project` and `in_open_project` answer it, remembered per container:
    /// an item that is not itself a module, project or organisation sits where its container
    /// sits (the placement walk passes it by).
    fn place_view(
        &self,
        agent: &str,
        id: ItemId,
        meta: &ItemMeta,
        page: &PageView,
        cx: &Ctx<'_>,
    ) -> PlaceView {
        let structural = matches!(
            meta.typ(),
            ItemType::Module | ItemType::Project | ItemType::Organisation
        );
        if structural {
            return self.place_view_of(agent, placement(&self.items, Some(id)).project, cx);
        }
        let key = meta.container().map_or(0, |c| c.0);
        if let Some(v) = page.places.borrow().get(&key) {
            return *v;
        }
        let project = placement(&self.items, meta.container()).project;
        let v = self.place_view_of(agent, project, cx);
        page.places.borrow_mut().insert(key, v);
        v
    }

    fn place_view_of(&self, agent: &str, project: Option<ItemId>, cx: &Ctx<'_>) -> PlaceView {
        let access = project.and_then(|p| self.structure(p)).map(|s| s.access);
        PlaceView {
            hidden: access == Some(Access::Private)
                && project.is_some_and(|p| !self.inside_project(agent, p, cx)),
            open: access.is_some_and(|a| a != Access::Private),
        }
    }

    /// An item as `GET /items/{id}` shows it to `viewer`, with only the fields they may view
    /// (`fields`: the version's fields, from the caller's records; `None` once destroyed), or
    /// `None` (404) when they may not view it.
    pub fn item_json(
        &self,
        viewer: Viewer<'_>,
        id: ItemId,
        version: u32,
        fields: Option<&Fields>,
        cx: &Ctx<'_>,
    ) -> Option<Value> {
        let meta = self.items.get(id)?;
        if !self.can_view(viewer, id, cx) {
            return None;
        }
        let mut shown = serde_json::Map::new();
        if let Some(fields) = fields.filter(|_| !meta.destroyed()) {
            for (k, v) in fields {
                let ok = match Field::parse(k) {
                    Some(f) => self.can_read(viewer, Ability::ViewField(f), id, cx),
                    None => false,
                };
                if ok {
                    shown.insert(k.clone(), v.clone());
                }
            }
        }
        let collections = if self.can_read(viewer, Ability::ViewField(Field::Collections), id, cx) {
            json!(meta
                .collections()
                .iter()
                .map(|m| json!({"collection": m.collection().to_string(), "permission_enabled": m.permission_enabled()}))
                .collect::<Vec<_>>())
        } else {
            Value::Null
        };
        let mut out = json!({
            "id": id.to_string(),
            "type": meta.typ().name(),
            "version": version,
            "fields": if meta.destroyed() { Value::Null } else { Value::Object(shown) },
            "creator": self.creator(meta),
            "created_at": crate::when::rfc3339(meta.created_at()),
            "active": meta.active(),
            "destroyed": meta.destroyed(),
            "container": meta.container().map(|c| c.to_string()),
            "collections": collections,
        });
        if !meta.ratings().is_empty() || meta.typ() == ItemType::Idea {
            out["ratings"] = meta.rating_counts();
        }
        Some(out)
    }

    /// Whether `viewer` may read `notice`: `view action_notices` on its item, and for a
    /// relation notice also `view <field>` on its from-item.
    pub fn can_read_notice(&self, viewer: Viewer<'_>, notice: &Notice, cx: &Ctx<'_>) -> bool {
        if !self.can_read(viewer, Ability::ViewNotices, notice.item, cx) {
            return false;
        }
        match (notice.kind, notice.from_item, notice.field) {
            (NoticeKind::Relation, Some(from), Some(field)) => {
                self.can_read(viewer, Ability::ViewField(field), from, cx)
            }
            _ => true,
        }
    }

    // ---- Subscriptions ----

    /// Adds (or replaces) `agent`'s subscription to an item they may view.
    pub fn subscribe(&mut self, sub: Subscription, cx: &Ctx<'_>) -> Result<(), GovError> {
        if !self.can_view(Viewer::Agent(&sub.agent), sub.item, cx) {
            return Err(GovError::not_found(
                "unknown_target",
                Some("item"),
                format!("no item {} that you may view", sub.item),
            ));
        }
        let list = self.subscriptions.entry(sub.item).or_default();
        list.retain(|s| s.agent != sub.agent);
        list.push(sub);
        Ok(())
    }

    /// Removes `agent`'s subscription to `item`; whether there was one.
    pub fn unsubscribe(&mut self, agent: &str, item: ItemId) -> bool {
        let Some(list) = self.subscriptions.get_mut(&item) else {
            return false;
        };
        let before = list.len();
        list.retain(|s| &*s.agent != agent);
        let removed = list.len() != before;
        if list.is_empty() {
            self.subscriptions.remove(&item);
        }
        removed
    }

    pub fn subscriptions_of(&self, agent: &str) -> Vec<&Subscription> {
        let mut out: Vec<&Subscription> = self
            .subscriptions
            .values()
            .flatten()
            .filter(|s| &*s.agent == agent)
            .collect();
        out.sort_by_key(|s| s.item);
        out
    }

    /// The subscriptions `notice` goes to, by the rules in `notices.rs`, each one's reader
    /// allowed to read it now.
    pub fn deliveries(&self, notice: &Notice, cx: &Ctx<'_>) -> Vec<&Subscription> {
        let mut out = Vec::new();
        let mut consider = |item: ItemId, direct: bool, own: bool| {
            for s in self.subscriptions.get(&item).into_iter().flatten() {
                let reach = own || s.deep || (direct && s.members);
                if reach
                    && s.wants_kind(notice)
                    && self.can_read_notice(Viewer::Agent(&s.agent), notice, cx)
                    && !out.iter().any(|o: &&Subscription| std::ptr::eq(*o, s))
                {
                    out.push(s);
                }
            }
        };
        consider(notice.item, false, true);
        if let Some(meta) = self.items.get(notice.item) {
            let direct: Vec<ItemId> = meta
                .container()
                .into_iter()
                .chain(meta.collections().iter().map(|m| m.collection()))
                .collect();
            let mut all = Vec::new();
            self.items.all_ancestors(notice.item, &mut all);
            for a in all {
                consider(a, direct.contains(&a), false);
            }
        }
        out
    }

    // ---- Items and fields a request needs ----

    /// The items whose current fields a decision about `body` may read (edits, `field_matches`
    /// filters on targets): the caller loads them into the [`FieldSource`] it passes in.
    pub fn fields_needed(&self, body: &Value) -> Vec<ItemId> {
        let mut out = Vec::new();
        let mut add = |t: Option<&Value>| {
            if let Some(id) = t
                .and_then(Value::as_str)
                .and_then(|s| s.strip_prefix("item:"))
                .and_then(|s| s.parse().ok())
                .map(ItemId)
            {
                if self.items.get(id).is_some() && !out.contains(&id) {
                    out.push(id);
                }
            }
        };
        match body.get("batch").and_then(Value::as_array) {
            Some(list) => list.iter().for_each(|c| add(c.get("target"))),
            None => add(body.get("target")),
        }
        out
    }

    /// The items whose fields implementing waiting action `id` needs.
    pub fn fields_needed_for_action(&self, id: ActionId) -> Vec<ItemId> {
        self.pending
            .get(&id)
            .map(|a| self.fields_needed(&a.record.body))
            .unwrap_or_default()
    }

    /// The permission ids set on an object.
    pub fn permissions_on(&self, target: &ObjectRef) -> Vec<PermissionId> {
        self.permissions.on(target).to_vec()
    }

    /// `GET /governance` (without `log_head`'s formatting choices: the hex hash as is).
    pub fn constitution_json(&self) -> Value {
        let c = &self.constitution;
        let mut members: Vec<&str> = c.members.keys().map(|m| &**m).collect();
        members.sort();
        let roles: serde_json::Map<String, Value> = c
            .roles
            .iter()
            .filter(|(k, _)| k.of.is_none())
            .map(|(k, r)| (k.name.to_string(), r.to_json()))
            .collect();
        json!({
            "name": c.name,
            "owners": c.owners.to_json(),
            "governors": c.governors.to_json(),
            "proposals": c.proposals,
            "members": members,
            "roles": roles,
            "foundational_override": c.switches.foundational_override,
            "governing": c.switches.governing,
            "log_head": self.log_head,
        })
    }
}
