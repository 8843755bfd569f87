//! Participation (seed: adhocracy4; contract section 6): organisations run projects, projects
//! hold modules, and a module moves through dated phases whose *type* (a registry in code,
//! like item types) declares which abilities it allows on which item types.
//!
//! This is not a second permission system. For a phase-bound ability (create, edit, comment,
//! rate, vote, deactivate) on an item inside a module, the pipeline (`pipeline.rs`) consults
//! [`Community::participation_gate`] after its foundational step and instead of the specific
//! and governing steps:
//! - the project's moderators, the organisation's initiators and holders of a community-wide
//!   `do_anything` pass (owners and governors get no exemption for being so);
//! - everyone else needs the grant (the specific permissions when any apply, else the
//!   project's access rule: public → members, semipublic and private → participants;
//!   `not_open`), the active phase allowing the ability on the item's type (`phase_closed`)
//!   and live structure (neither module nor project `draft`, nor the project `archived`).
//!
//! When several fail, the reason code is the first in that order (grant, phase, draft,
//! archived), and `would_allow` names every remedy that exists: the next phase that allows
//! the ability, the participants role, publishing the draft module or project.
//!
//! An item belongs to the module (and project, and organisation) it was created in, following
//! the container chain only: collections elsewhere do not move it. A project's structure
//! (`access`, `draft`, `archived`) and a module's (`draft`, `weight`, `phases`) live on the
//! item's metadata ([`Structure`]), kept in step with its fields on every create and edit, so
//! decisions never need the caller's field records.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::actions::{Delivery, Effects, PhaseEvent};
use crate::changes::{Ability, ChangeKind};
use crate::community::{Community, Ctx, Judging, RoleMemo};
use crate::conditions::FilterCx;
use crate::error::GovError;
use crate::ids::{ItemId, NoticeId, ObjectRef, RoleKey};
use crate::item_types::{Fields, ItemType, MAX_WEIGHT};
use crate::items::Items;
use crate::notices::{Notice, NoticeKind};
use crate::permissions::{Reach, WalkOutcome};
use crate::when::{rfc3339, Millis};

/// The most phases one module has.
pub const MAX_PHASES: usize = 50;

/// A project's access rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Access {
    /// Visible to every agent, open to members.
    #[default]
    Public,
    /// Visible to every agent, open to participants.
    Semipublic,
    /// Visible to and open to participants (and moderators, initiators) only.
    Private,
}

impl Access {
    pub const ALL: [Access; 3] = [Access::Public, Access::Semipublic, Access::Private];

    pub fn name(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Semipublic => "semipublic",
            Access::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Access> {
        Access::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// An ability a phase switches on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PhaseAbility {
    Create,
    Edit,
    Comment,
    Rate,
    Vote,
    Deactivate,
}

impl PhaseAbility {
    pub const ALL: [PhaseAbility; 6] = [
        PhaseAbility::Create,
        PhaseAbility::Edit,
        PhaseAbility::Comment,
        PhaseAbility::Rate,
        PhaseAbility::Vote,
        PhaseAbility::Deactivate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PhaseAbility::Create => "create",
            PhaseAbility::Edit => "edit",
            PhaseAbility::Comment => "comment",
            PhaseAbility::Rate => "rate",
            PhaseAbility::Vote => "vote",
            PhaseAbility::Deactivate => "deactivate",
        }
    }

    /// The phase-bound ability a check of `abilities` stands for, if any. An edit's checks
    /// name `edit <field>` and `edit_item`; both are the phase ability `edit`.
    pub fn of(abilities: &[Ability]) -> Option<PhaseAbility> {
        abilities.iter().find_map(|a| match a {
            Ability::Change(ChangeKind::CreateItem) => Some(PhaseAbility::Create),
            Ability::Change(ChangeKind::EditItem) | Ability::EditField(_) => {
                Some(PhaseAbility::Edit)
            }
            Ability::Change(ChangeKind::Comment) => Some(PhaseAbility::Comment),
            Ability::Change(ChangeKind::Rate) => Some(PhaseAbility::Rate),
            Ability::Change(ChangeKind::DeactivateItem) => Some(PhaseAbility::Deactivate),
            _ => None,
        })
    }
}

/// A phase type: what it allows, per item type (`None`: any item type in the module).
#[derive(Debug)]
pub struct PhaseType {
    pub name: &'static str,
    pub allows: &'static [(Option<ItemType>, &'static [PhaseAbility])],
}

impl PhaseType {
    /// Whether this phase type allows `ability` on items of type `typ`.
    pub fn allows(&self, ability: PhaseAbility, typ: ItemType) -> bool {
        self.allows
            .iter()
            .any(|(t, abs)| t.is_none_or(|t| t == typ) && abs.contains(&ability))
    }
}

use PhaseAbility as P;

/// The phase-type registry (adhocracy4's phase contents, as the contract names them).
pub const PHASE_TYPES: &[PhaseType] = &[
    PhaseType {
        name: "ideas:collect",
        allows: &[(Some(ItemType::Idea), &[P::Create, P::Comment, P::Rate])],
    },
    PhaseType {
        name: "ideas:rate",
        allows: &[(Some(ItemType::Idea), &[P::Rate, P::Comment])],
    },
    PhaseType {
        name: "polls:vote",
        allows: &[(None, &[P::Vote])],
    },
    PhaseType {
        name: "documents:comment",
        allows: &[(Some(ItemType::Document), &[P::Comment])],
    },
];

/// The registered phase type of that name.
pub fn phase_type(name: &str) -> Option<&'static PhaseType> {
    PHASE_TYPES.iter().find(|t| t.name == name)
}

/// One phase of a module: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    /// A registered phase type's name.
    pub typ: String,
    pub start: Millis,
    pub end: Millis,
    pub weight: i64,
}

impl Phase {
    pub fn phase_type(&self) -> Option<&'static PhaseType> {
        phase_type(&self.typ)
    }

    pub fn is_active(&self, now: Millis) -> bool {
        self.start <= now && now < self.end
    }

    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.typ, "start": rfc3339(self.start),
            "end": rfc3339(self.end), "weight": self.weight})
    }
}

fn parse_time(v: Option<&Value>, path: &str) -> Result<Millis, GovError> {
    let s = v
        .and_then(Value::as_str)
        .ok_or_else(|| GovError::invalid(path, "an RFC 3339 time"))?;
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| GovError::invalid(path, format!("'{s}' is not an RFC 3339 time")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| GovError::invalid(path, "a time out of range"))
}

/// Reads a module's `phases`: a list of `{"name","type","start","end","weight"?}` with a
/// registered type (`unknown_phase_type`) and `end` after `start` (`invalid_phase`), both
/// 400.
pub(crate) fn parse_phases(v: &Value, path: &str) -> Result<Vec<Phase>, GovError> {
    let list = v
        .as_array()
        .ok_or_else(|| GovError::invalid(path, "'phases' is a list of phases"))?;
    if list.len() > MAX_PHASES {
        return Err(GovError::invalid(
            path,
            format!("a module has at most {MAX_PHASES} phases"),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let o = p.as_object().ok_or_else(|| {
            GovError::invalid(
                &at,
                "a phase is {\"name\",\"type\",\"start\",\"end\",\"weight\"}",
            )
        })?;
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "name" | "type" | "start" | "end" | "weight"))
        {
            return Err(GovError::invalid(
                &format!("{at}.{k}"),
                format!("'{k}' is not a field of a phase"),
            ));
        }
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty() && s.len() <= 200)
            .ok_or_else(|| {
                GovError::invalid(
                    &format!("{at}.name"),
                    "a non-blank string of at most 200 bytes",
                )
            })?;
        let typ = o
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| GovError::invalid(&format!("{at}.type"), "a phase type's name"))?;
        if phase_type(typ).is_none() {
            return Err(GovError::bad(
                "unknown_phase_type",
                Some(&format!("{at}.type")),
                format!(
                    "'{typ}' is not a phase type (known: {})",
                    PHASE_TYPES
                        .iter()
                        .map(|t| t.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let start = parse_time(o.get("start"), &format!("{at}.start"))?;
        let end = parse_time(o.get("end"), &format!("{at}.end"))?;
        if end <= start {
            return Err(GovError::bad(
                "invalid_phase",
                Some(&format!("{at}.end")),
                "a phase's end must be after its start",
            ));
        }
        let weight = match o.get("weight") {
            None | Some(Value::Null) => 0,
            Some(w) => w
                .as_i64()
                .filter(|w| w.unsigned_abs() <= MAX_WEIGHT)
                .ok_or_else(|| {
                    GovError::invalid(
                        &format!("{at}.weight"),
                        format!("an integer within ±{MAX_WEIGHT}"),
                    )
                })?,
        };
        out.push(Phase {
            name: name.to_string(),
            typ: typ.to_string(),
            start,
            end,
            weight,
        });
    }
    Ok(out)
}

/// The stored (normalised) form of a phase list: times as RFC 3339 with milliseconds,
/// weights explicit.
pub(crate) fn phases_json(phases: &[Phase]) -> Value {
    Value::Array(phases.iter().map(Phase::to_json).collect())
}

/// The active phase: the lowest weight among those with start ≤ now < end (ties: the one
/// listed first).
pub fn active_phase(phases: &[Phase], now: Millis) -> Option<&Phase> {
    phases
        .iter()
        .filter(|p| p.is_active(now))
        .min_by_key(|p| p.weight)
}

/// The structure switches of a project or module, as its fields say.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Structure {
    #[serde(default)]
    pub access: Access,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub weight: i64,
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// The latest phase boundary already announced (`phase_boundary`): a boundary at or
    /// before it is never announced again, so each fires exactly once.
    #[serde(default)]
    pub announced_through: Option<Millis>,
}

impl Structure {
    /// Reads the structure of an item of type `typ` from its (checked) fields; `None` for
    /// types without structure switches.
    pub(crate) fn from_fields(typ: ItemType, fields: &Fields) -> Option<Structure> {
        if !matches!(typ, ItemType::Project | ItemType::Module) {
            return None;
        }
        let flag = |k: &str| fields.get(k).and_then(Value::as_bool).unwrap_or(false);
        Some(Structure {
            access: fields
                .get("access")
                .and_then(Value::as_str)
                .and_then(Access::parse)
                .unwrap_or_default(),
            draft: flag("draft"),
            archived: flag("archived"),
            weight: fields.get("weight").and_then(Value::as_i64).unwrap_or(0),
            phases: fields
                .get("phases")
                .and_then(|p| parse_phases(p, "phases").ok())
                .unwrap_or_default(),
            announced_through: None,
        })
    }
}

/// Where an item sits in the participation structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Placement {
    pub module: Option<ItemId>,
    pub project: Option<ItemId>,
    pub organisation: Option<ItemId>,
}

/// The module, project and organisation around `start` (inclusive), along the container chain.
pub(crate) fn placement(items: &Items, start: Option<ItemId>) -> Placement {
    let mut out = Placement::default();
    let mut cur = start;
    // Containers form a tree along creation (a container exists before what is created in
    // it), so the chain ends; the bound guards against a corrupted restore all the same.
    for _ in 0..10_000 {
        let Some(id) = cur else { break };
        let Some(meta) = items.get(id) else { break };
        match meta.typ() {
            ItemType::Module if out.module.is_none() && out.project.is_none() => {
                out.module = Some(id)
            }
            ItemType::Project if out.project.is_none() => out.project = Some(id),
            ItemType::Organisation => {
                out.organisation = Some(id);
                break;
            }
            _ => {}
        }
        cur = meta.container();
    }
    out
}

/// What the gate found for one check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Gate {
    /// Not a phase-bound ability on an item inside a module: the ordinary pipeline decides.
    NotApplicable,
    /// A moderator, initiator or community-wide `do_anything` holder.
    Bypass(String),
    /// Everyone else. The grant is decided by the caller (the permissions when any apply),
    /// falling back on `access`; `failures` and `would_allow` are the phase's and the
    /// structure's, in the order the reason code takes them.
    Gated {
        access: AccessRule,
        failures: Vec<(&'static str, String)>,
        would_allow: Vec<Value>,
    },
}

/// The project's access rule, as it applies to one agent. Its sentence and remedy are built
/// only when a refusal needs them, so an allowed decision inside a module allocates nothing
/// for them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccessRule {
    pub open: bool,
    access: Access,
    project: ItemId,
}

impl AccessRule {
    /// Why not (`not_open`), when not.
    pub fn reason(&self, actor: &str) -> String {
        format!(
            "project {} is {} and open to {}; {actor} is not one",
            self.project,
            self.access.name(),
            if self.access == Access::Public {
                "members"
            } else {
                "its participants"
            }
        )
    }

    /// What would open it (`{"kind": "role", "role": "participants", "of"}`).
    pub fn remedy(&self) -> Value {
        if self.access == Access::Public {
            json!({"kind": "role", "role": "members", "of": null})
        } else {
            json!({"kind": "role", "role": "participants", "of": self.project.to_string()})
        }
    }
}

impl Community {
    /// The structure switches of a project or module.
    pub fn structure(&self, id: ItemId) -> Option<&Structure> {
        self.items.get(id).and_then(|m| m.structure())
    }

    /// Where `id` sits: the module, project and organisation it was created in.
    pub fn placement(&self, id: ItemId) -> Placement {
        placement(&self.items, Some(id))
    }

    /// The active phase of module `module` at `now`.
    pub fn active_phase(&self, module: ItemId, now: Millis) -> Option<&Phase> {
        self.structure(module)
            .and_then(|s| active_phase(&s.phases, now))
    }

    fn holds_item_role(&self, agent: &str, name: &str, of: Option<ItemId>, cx: &Ctx<'_>) -> bool {
        of.is_some_and(|of| {
            self.holds_role(
                agent,
                &RoleKey {
                    name: name.into(),
                    of: Some(of),
                },
                cx,
            )
        })
    }

    /// Whether `agent` holds a community-wide `do_anything` allow (levels 3, 6, 9), as the
    /// permission walk decides it (conditions on the grant do not matter here).
    pub fn holds_community_do_anything(&self, agent: &str, cx: &Ctx<'_>) -> bool {
        self.holds_community_do_anything_memo(agent, cx, &RoleMemo::default())
    }

    /// The same, remembering role holdings in `memo` (the decision's own walk has usually
    /// looked up the same roles for the same agent already).
    fn holds_community_do_anything_memo(&self, agent: &str, cx: &Ctx<'_>, memo: &RoleMemo) -> bool {
        let judge = Judging {
            community: self,
            agent,
            accounts: cx.accounts,
            now: cx.now,
            filters: FilterCx {
                actor: agent,
                change: None,
                agents: None,
                item: None,
                fields: None,
                history: &[],
                now: cx.now,
            },
            memo,
        };
        matches!(
            self.permissions.walk(
                agent,
                &[Ability::DoAnything],
                &[(ObjectRef::Community, Reach::All)],
                &judge,
                None,
            ),
            WalkOutcome::Granted {
                community_wide: true,
                ..
            }
        )
    }

    /// Whether `agent` is inside project `project`: a participant, a moderator, an initiator
    /// of its organisation, or a community-wide `do_anything` holder.
    pub fn inside_project(&self, agent: &str, project: ItemId, cx: &Ctx<'_>) -> bool {
        let org = placement(&self.items, Some(project)).organisation;
        self.holds_item_role(agent, "participants", Some(project), cx)
            || self.holds_item_role(agent, "moderators", Some(project), cx)
            || self.holds_item_role(agent, "initiators", org, cx)
            || self.holds_community_do_anything(agent, cx)
    }

    /// The project `id` is in (or is), when that project is private and `agent` is outside
    /// it: then `id` is invisible to `agent`.
    pub(crate) fn hidden_by_private_project(&self, agent: &str, id: ItemId, cx: &Ctx<'_>) -> bool {
        let place = placement(&self.items, Some(id));
        let Some(project) = place.project else {
            return false;
        };
        self.structure(project)
            .is_some_and(|s| s.access == Access::Private)
            && !self.inside_project(agent, project, cx)
    }

    /// Whether `id` is in (or is) a public or semipublic project: visible to every agent.
    pub(crate) fn in_open_project(&self, id: ItemId) -> bool {
        placement(&self.items, Some(id))
            .project
            .and_then(|p| self.structure(p))
            .is_some_and(|s| s.access != Access::Private)
    }

    /// Whether the active phase of the module `item` is in allows `ability` on its type, for
    /// the caller's own phase-bound abilities (a vote's ballots): `Ok` outside modules,
    /// `Err((code, sentence))` otherwise.
    pub fn phase_allows(
        &self,
        item: ItemId,
        ability: PhaseAbility,
        now: Millis,
    ) -> Result<(), (&'static str, String)> {
        let Some(meta) = self.items.get(item) else {
            return Ok(());
        };
        let place = placement(&self.items, meta.container());
        let Some(module) = place.module else {
            return Ok(());
        };
        if self.phase_open(module, ability, meta.typ(), now) {
            Ok(())
        } else {
            let mut reason = format!(
                "the active phase of module {module} does not allow {} on a {}",
                ability.name(),
                meta.typ().name()
            );
            if let Some(p) = self.next_phase(module, ability, meta.typ(), now) {
                reason.push_str(&format!(
                    "; it would be allowed in phase `{}` from {}",
                    p.name,
                    rfc3339(p.start)
                ));
            }
            Err(("phase_closed", reason))
        }
    }

    fn phase_open(
        &self,
        module: ItemId,
        ability: PhaseAbility,
        typ: ItemType,
        now: Millis,
    ) -> bool {
        self.active_phase(module, now)
            .and_then(Phase::phase_type)
            .is_some_and(|t| t.allows(ability, typ))
    }

    /// The earliest phase starting after `now` that allows `ability` on `typ`.
    fn next_phase(
        &self,
        module: ItemId,
        ability: PhaseAbility,
        typ: ItemType,
        now: Millis,
    ) -> Option<&Phase> {
        self.structure(module)?
            .phases
            .iter()
            .filter(|p| p.start > now)
            .filter(|p| p.phase_type().is_some_and(|t| t.allows(ability, typ)))
            .min_by_key(|p| (p.start, p.weight))
    }

    /// A phase boundary of `module` at `at` came (the caller's durable reminder fired): each
    /// phase of the module that ends at `at`, then each that starts at `at`, is a notice on
    /// the module (agent `system`) and a driver event. Nothing when the module is gone, when
    /// no phase starts or ends at `at` any more (its phases were edited), or when this
    /// boundary was already announced: a reminder delivered twice announces once.
    ///
    /// Boundaries of the module between the last one announced and `at` that are still
    /// unannounced come first, each at its own time, in time order. Reminders that fell due
    /// together (after a restart, or a takeover in a cluster) are fired concurrently and may
    /// arrive in any order; announced through `at`, an earlier one would otherwise be skipped
    /// for good. Boundaries before the module was created were never reminded of and stay
    /// unannounced; one that an edit put in the past, after the last announced one, comes
    /// with the module's next boundary.
    pub fn phase_boundary(&mut self, module: ItemId, at: Millis, cx: &Ctx<'_>) -> Effects {
        let mut fx = Effects::default();
        let Some(meta) = self.items.get(module).filter(|m| !m.destroyed()) else {
            return fx;
        };
        let version = meta.version();
        let created = meta.created_at();
        let Some(s) = meta.structure() else {
            return fx;
        };
        if s.announced_through.is_some_and(|t| t >= at) {
            return fx;
        }
        let from = s.announced_through.unwrap_or(Millis::MIN).max(created - 1);
        let mut boundaries: Vec<Millis> = s
            .phases
            .iter()
            .flat_map(|p| [p.start, p.end])
            .filter(|b| *b > from && *b < at)
            .collect();
        if s.phases.iter().any(|p| p.start == at || p.end == at) {
            boundaries.push(at);
        }
        boundaries.sort_unstable();
        boundaries.dedup();
        let mut changes: Vec<(NoticeKind, Phase, Millis)> = Vec::new();
        for b in boundaries {
            changes.extend(
                s.phases
                    .iter()
                    .filter(|p| p.end == b)
                    .map(|p| (NoticeKind::PhaseEnded, p.clone(), b)),
            );
            changes.extend(
                s.phases
                    .iter()
                    .filter(|p| p.start == b)
                    .map(|p| (NoticeKind::PhaseStarted, p.clone(), b)),
            );
        }
        if changes.is_empty() {
            return fx;
        }
        let mut structure = s.clone();
        structure.announced_through = Some(at);
        let mut meta = meta.clone();
        meta.set_structure(Some(structure));
        self.items.put(module, meta);
        fx.changed.items.push(module);
        for (kind, p, at) in changes {
            let notice = Notice {
                id: NoticeId(self.next_notice),
                kind,
                item: module,
                version,
                agent: "system".into(),
                at,
                summary: format!("phase `{}` ({})", p.name, p.typ),
                from_item: None,
                from_version: None,
                field: None,
            };
            self.next_notice += 1;
            for sub in self.deliveries(&notice, cx) {
                fx.deliveries.push(Delivery {
                    notice: notice.id,
                    agent: sub.agent.to_string(),
                    item: sub.item,
                    deliver_to: sub.deliver_to.clone(),
                });
            }
            fx.phase_events.push(PhaseEvent {
                kind: kind.name(),
                module,
                phase: p.name.clone(),
                typ: p.typ.clone(),
                at,
            });
            fx.notices.push(notice);
        }
        // The notice counter lives in the snapshot.
        fx.changed.constitution = true;
        fx
    }

    /// The participation gate for one check (see the module docs). `created` is the type a
    /// `create_item` creates; the target of a create is its container, which is then the
    /// start of the placement walk (a create in a module is inside it). `memo` is the role
    /// memo of the decision's permission walk for the same agent.
    pub(crate) fn participation_gate(
        &self,
        actor: &str,
        target: &ObjectRef,
        abilities: &[Ability],
        created: Option<ItemType>,
        cx: &Ctx<'_>,
        memo: &RoleMemo,
    ) -> Gate {
        let Some(ability) = PhaseAbility::of(abilities) else {
            return Gate::NotApplicable;
        };
        let Some(id) = target.item() else {
            return Gate::NotApplicable;
        };
        let Some(meta) = self.items.get(id) else {
            return Gate::NotApplicable;
        };
        let (start, typ) = match (ability, created) {
            (PhaseAbility::Create, Some(t)) => (Some(id), t),
            _ => (meta.container(), meta.typ()),
        };
        let place = placement(&self.items, start);
        let (Some(module), Some(project)) = (place.module, place.project) else {
            return Gate::NotApplicable;
        };
        if self.holds_item_role(actor, "moderators", Some(project), cx) {
            return Gate::Bypass(format!("{actor} moderates project {project}"));
        }
        if self.holds_item_role(actor, "initiators", place.organisation, cx) {
            let org = place
                .organisation
                .map(|o| o.to_string())
                .unwrap_or_default();
            return Gate::Bypass(format!("{actor} is an initiator of organisation {org}"));
        }
        if self.holds_community_do_anything_memo(actor, cx, memo) {
            return Gate::Bypass(format!("{actor} holds a community-wide do_anything"));
        }
        // Borrowed, not cloned: a module's phases are strings.
        let none = Structure::default();
        let ps = self.structure(project).unwrap_or(&none);
        let ms = self.structure(module).unwrap_or(&none);
        let mut failures = Vec::new();
        let mut would_allow = Vec::new();
        // The grant: the caller walks the permissions; when none apply, the access rule.
        let open = match ps.access {
            Access::Public => self.is_member(actor),
            Access::Semipublic | Access::Private => {
                self.holds_item_role(actor, "participants", Some(project), cx)
            }
        };
        let access = AccessRule {
            open,
            access: ps.access,
            project,
        };
        if !self.phase_open(module, ability, typ, cx.now) {
            let active = self
                .active_phase(module, cx.now)
                .map(|p| format!("phase `{}` ({})", p.name, p.typ))
                .unwrap_or_else(|| "no phase".into());
            failures.push((
                "phase_closed",
                format!(
                    "module {module} is in {active}, which does not allow {} on a {}",
                    ability.name(),
                    typ.name()
                ),
            ));
            if let Some(p) = self.next_phase(module, ability, typ, cx.now) {
                would_allow.push(json!({"kind": "phase", "phase": p.name,
                    "from": rfc3339(p.start)}));
            }
        }
        for (what, item, s) in [("module", module, ms), ("project", project, ps)] {
            if s.draft {
                failures.push(("draft", format!("{what} {item} is a draft")));
                would_allow.push(json!({"kind": "publish", "item": item.to_string()}));
            }
        }
        if ps.archived {
            failures.push(("archived", format!("project {project} is archived")));
        }
        Gate::Gated {
            access,
            failures,
            would_allow,
        }
    }
}
