//! Founding a community, and the persisted form of its state.
//!
//! [`Community::found`] reads the body of `POST /governance` (`{"template", "members",
//! ..template params}`). [`Snapshot`] is everything but the item metadata, and the items are
//! [`ItemMeta`] values of their own, so the actor can store the (small, rarely changed) core
//! apart from the (many) items and rewrite only what an [`crate::Effects::changed`] names.
//! Both are serde values with a format version; the actor chooses the encoding (MessagePack
//! with named fields, as the storage crate does). Indexes are not stored: [`Community::restore`]
//! rebuilds them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actions::PendingAction;
use crate::changes::{Change, ChangeKind, Params};
use crate::community::{Community, Ctx, Tallies};
use crate::conditions::{parse_agents, ConditionState};
use crate::constitution::{Authority, Constitution, Switches};
use crate::error::GovError;
use crate::ids::{check_agent_id, ConditionId, ObjectRef, PermissionId, RoleKey};
use crate::items::{Agents, ItemMeta, Items};
use crate::notices::Subscription;
use crate::permissions::{Permission, Permissions};
use crate::roles::Role;
use crate::scratch::Scratch;
use crate::templates::TemplateSpec;
use crate::when::Millis;

/// The parts of a [`Snapshot`] that grow with the community, which an actor stores apart from
/// the small rest ([`Community::snapshot_head`]) so one action rewrites O(1) records:
/// [`Community::snapshot`] = the head [`Snapshot::with_parts`] these.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotParts {
    pub members: Vec<(Box<str>, Millis)>,
    pub roles: Vec<(RoleKey, Role)>,
    pub permissions: Vec<(PermissionId, Permission)>,
    /// Interned agent names in index order (names are only ever appended).
    pub agents: Vec<Box<str>>,
    pub pending: Vec<PendingAction>,
    pub conditions: Vec<(ConditionId, ConditionState)>,
    pub tallies: Vec<(Box<str>, Tallies)>,
    pub subscriptions: Vec<Subscription>,
}

/// The version of [`Snapshot`]'s layout.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// A community's state without its item metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    name: String,
    owners: Authority,
    governors: Authority,
    proposals: bool,
    members: Vec<(Box<str>, Millis)>,
    roles: Vec<(RoleKey, Role)>,
    switches: Switches,
    permissions: Vec<(PermissionId, Permission)>,
    next_permission: u64,
    agents: Agents,
    pending: Vec<PendingAction>,
    conditions: Vec<(ConditionId, ConditionState)>,
    next_action: u64,
    next_condition: u64,
    next_notice: u64,
    tallies: Vec<(Box<str>, Tallies)>,
    subscriptions: Vec<Subscription>,
    log_seq: u64,
    log_head: String,
}

impl Snapshot {
    /// A head ([`Community::snapshot_head`]) with its growing parts put back.
    pub fn with_parts(mut self, parts: SnapshotParts) -> Snapshot {
        self.members = parts.members;
        self.roles = parts.roles;
        self.permissions = parts.permissions;
        self.agents = Agents::from_names(parts.agents);
        self.pending = parts.pending;
        self.conditions = parts.conditions;
        self.tallies = parts.tallies;
        self.subscriptions = parts.subscriptions;
        self
    }
}

impl Community {
    /// Founds a community (`POST /governance` by `founder`): Concord's default constitution,
    /// then the initial `members`, then the `template` if one is named (its parameters beside
    /// it: `board`, `threshold`, `duration_hours`).
    pub fn found(founder: &str, body: &Value, now: Millis) -> Result<Community, GovError> {
        check_agent_id(founder, "actor")?;
        // An empty HTTP body reaches here as `{}`; a literal `null` is a body of another type.
        let o = match body {
            Value::Object(o) => o,
            _ => {
                return Err(GovError::bad(
                    "invalid_body",
                    None,
                    "the body is a JSON object",
                ))
            }
        };
        let mut community = Community::new(founder, now);
        let members = parse_agents(o.get("members"), "members", 10_000)?;
        for m in members {
            community.constitution.members.entry(m).or_insert(now);
        }
        let mut template_params = o.clone();
        template_params.remove("members");
        if template_params.contains_key("template") {
            let spec = TemplateSpec::parse(&template_params, "").map_err(|e| GovError {
                field: e.field.map(|f| f.trim_start_matches('.').to_string()),
                ..e
            })?;
            let change = Change {
                kind: ChangeKind::ApplyTemplate,
                target: ObjectRef::Community,
                params: Params::Template(spec),
                raw_params: Value::Object(template_params),
                note: String::new(),
            };
            let cx = Ctx::at(now);
            let mut scratch = Scratch::new(&community, founder, cx);
            scratch.apply(0, &change, "")?;
            let delta = scratch.d;
            community.commit(delta);
        } else if let Some(k) = template_params.keys().next() {
            return Err(GovError::invalid(
                k,
                format!("'{k}' is not part of a founding (template, members)"),
            ));
        }
        Ok(community)
    }

    /// Everything but the item metadata, for storage.
    pub fn snapshot(&self) -> Snapshot {
        let c = &self.constitution;
        let mut tallies: Vec<(Box<str>, Tallies)> = self
            .tallies
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tallies.sort_by(|a, b| a.0.cmp(&b.0));
        let mut members: Vec<(Box<str>, Millis)> =
            c.members.iter().map(|(k, v)| (k.clone(), *v)).collect();
        members.sort();
        let mut subscriptions: Vec<Subscription> =
            self.subscriptions.values().flatten().cloned().collect();
        subscriptions.sort_by(|a, b| (a.item, &a.agent).cmp(&(b.item, &b.agent)));
        Snapshot {
            format: SNAPSHOT_FORMAT,
            name: c.name.clone(),
            owners: c.owners.clone(),
            governors: c.governors.clone(),
            proposals: c.proposals,
            members,
            roles: c
                .roles
                .iter()
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect(),
            switches: c.switches,
            permissions: self
                .permissions
                .iter()
                .map(|(id, p)| (id, p.clone()))
                .collect(),
            next_permission: self.next_permission,
            agents: self.agents.clone(),
            pending: self.pending.values().cloned().collect(),
            conditions: self
                .conditions
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            next_action: self.next_action,
            next_condition: self.next_condition,
            next_notice: self.next_notice,
            tallies,
            subscriptions,
            log_seq: self.log_seq,
            log_head: self.log_head.clone(),
        }
    }

    /// The snapshot without its [`SnapshotParts`]: what changes with every action and stays
    /// small however large the community grows.
    pub fn snapshot_head(&self) -> Snapshot {
        let c = &self.constitution;
        Snapshot {
            format: SNAPSHOT_FORMAT,
            name: c.name.clone(),
            owners: c.owners.clone(),
            governors: c.governors.clone(),
            proposals: c.proposals,
            members: Vec::new(),
            roles: Vec::new(),
            switches: c.switches,
            permissions: Vec::new(),
            next_permission: self.next_permission,
            agents: Agents::default(),
            pending: Vec::new(),
            conditions: Vec::new(),
            next_action: self.next_action,
            next_condition: self.next_condition,
            next_notice: self.next_notice,
            tallies: Vec::new(),
            subscriptions: Vec::new(),
            log_seq: self.log_seq,
            log_head: self.log_head.clone(),
        }
    }

    /// The members, roles and permissions as stored (they change only when
    /// [`crate::Changed::constitution`] says so).
    #[allow(clippy::type_complexity)]
    pub fn constitution_parts(
        &self,
    ) -> (
        Vec<(Box<str>, Millis)>,
        Vec<(RoleKey, Role)>,
        Vec<(PermissionId, Permission)>,
    ) {
        let c = &self.constitution;
        let mut members: Vec<(Box<str>, Millis)> =
            c.members.iter().map(|(k, v)| (k.clone(), *v)).collect();
        members.sort();
        let roles = c
            .roles
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let permissions = self
            .permissions
            .iter()
            .map(|(id, p)| (id, p.clone()))
            .collect();
        (members, roles, permissions)
    }

    /// Every growing part, as [`Community::snapshot`] holds them.
    pub fn snapshot_parts(&self) -> SnapshotParts {
        let (members, roles, permissions) = self.constitution_parts();
        let mut tallies: Vec<(Box<str>, Tallies)> = self
            .tallies
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tallies.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subscriptions: Vec<Subscription> =
            self.subscriptions.values().flatten().cloned().collect();
        subscriptions.sort_by(|a, b| (a.item, &a.agent).cmp(&(b.item, &b.agent)));
        SnapshotParts {
            members,
            roles,
            permissions,
            agents: self.agents.names().to_vec(),
            pending: self.pending.values().cloned().collect(),
            conditions: self
                .conditions
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            tallies,
            subscriptions,
        }
    }

    /// The interned agent names in index order (only ever appended to).
    pub fn agent_names(&self) -> &[Box<str>] {
        self.agents.names()
    }

    /// An agent's tallies of implemented changes, as stored.
    pub fn tallies_of(&self, agent: &str) -> Option<&Tallies> {
        self.tallies.get(agent)
    }

    /// The subscriptions to one item, as stored.
    pub fn subscriptions_on(&self, item: crate::ids::ItemId) -> &[Subscription] {
        self.subscriptions
            .get(&item)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The item metadata in id order (item `n` at index `n - 1`), for storage.
    pub fn item_metas(&self) -> &[ItemMeta] {
        self.items.metas()
    }

    /// Rebuilds a community from a snapshot and its items (in id order).
    pub fn restore(s: Snapshot, items: Vec<ItemMeta>) -> Result<Community, GovError> {
        if s.format != SNAPSHOT_FORMAT {
            return Err(GovError::bad(
                "unsupported_format",
                None,
                format!("snapshot format {} is not {SNAPSHOT_FORMAT}", s.format),
            ));
        }
        let mut permissions = Permissions::default();
        for (id, p) in s.permissions {
            permissions.insert(id, p);
        }
        let mut agents = s.agents;
        agents.rebuild();
        let mut community = Community::new("restoring", 0);
        community.constitution = Constitution {
            name: s.name,
            owners: s.owners,
            governors: s.governors,
            proposals: s.proposals,
            members: s.members.into_iter().collect(),
            roles: s.roles.into_iter().collect(),
            switches: s.switches,
        };
        community.permissions = permissions;
        community.next_permission = s.next_permission;
        community.items = Items::from_metas(items);
        community.agents = agents;
        community.pending = s.pending.into_iter().map(|p| (p.record.id, p)).collect();
        community.conditions = s.conditions.into_iter().collect();
        community.next_action = s.next_action;
        community.next_condition = s.next_condition;
        community.next_notice = s.next_notice;
        community.tallies = s.tallies.into_iter().collect();
        for sub in s.subscriptions {
            community
                .subscriptions
                .entry(sub.item)
                .or_default()
                .push(sub);
        }
        community.log_seq = s.log_seq;
        community.log_head = s.log_head;
        Ok(community)
    }
}
