//! Requests and changes: the JSON body of `POST /actions` (`{"change", "target", "params",
//! "note"}` or `{"batch": [..]}`) read into typed [`Change`]s, every change type of the
//! contract's table with its target kinds and parameters, and the abilities permissions name.
//!
//! Parsing here is about shape only (types, sizes, known names, ids well formed): it needs no
//! state. Whether targets exist and invariants hold is checked against the state in
//! `scratch.rs`. Every error carries a field path into the body (`params.agents[1]`,
//! `batch[2].target`) and a stable code: `invalid_body`, `unknown_change`, `invalid_target`,
//! `invalid_id`, `invalid_params`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::conditions::{parse_agents, ConditionSpec, Response};
use crate::error::GovError;
use crate::ids::{check_role_name, parse_numeric_id, ItemId, ObjectRef, RoleKey};
use crate::item_types::{check_fields, Field, Fields, ItemType};
use crate::permissions::{PermissionPatch, PermissionSpec};
use crate::roles::{parse_role_refs, Rule};
use crate::templates::TemplateSpec;

/// The most changes in one batch.
pub const MAX_BATCH: usize = 100;
/// The most agents one change names.
pub const MAX_AGENTS: usize = 1000;
/// A change's and a batch's `note`, in bytes.
pub const NOTE_MAX: usize = 2000;

macro_rules! change_kinds {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A change type; the ability a change needs has the same name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ChangeKind { $($variant),* }

        impl ChangeKind {
            pub const ALL: &'static [ChangeKind] = &[$(ChangeKind::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(ChangeKind::$variant => $name),* }
            }

            pub fn parse(name: &str) -> Option<ChangeKind> {
                match name { $($name => Some(ChangeKind::$variant),)* _ => None }
            }
        }
    };
}

change_kinds! {
    Rename => "rename",
    AddMembers => "add_members",
    RemoveMembers => "remove_members",
    AddRole => "add_role",
    RemoveRole => "remove_role",
    AddPeopleToRole => "add_people_to_role",
    RemovePeopleFromRole => "remove_people_from_role",
    ChangeOwners => "change_owners",
    ChangeGovernors => "change_governors",
    SetOwnerCondition => "set_owner_condition",
    SetGovernorCondition => "set_governor_condition",
    SetProposals => "set_proposals",
    EnableFoundationalOverride => "enable_foundational_override",
    DisableFoundationalOverride => "disable_foundational_override",
    EnableGoverning => "enable_governing",
    DisableGoverning => "disable_governing",
    AddPermission => "add_permission",
    EditPermission => "edit_permission",
    RemovePermission => "remove_permission",
    AddCondition => "add_condition",
    RemoveCondition => "remove_condition",
    Approve => "approve",
    Reject => "reject",
    Resolve => "resolve",
    Respond => "respond",
    ApplyTemplate => "apply_template",
    CreateItem => "create_item",
    EditItem => "edit_item",
    DeactivateItem => "deactivate_item",
    ReactivateItem => "reactivate_item",
    DestroyItem => "destroy_item",
    AddToCollection => "add_to_collection",
    RemoveFromCollection => "remove_from_collection",
    Comment => "comment",
    Rate => "rate",
}

impl ChangeKind {
    /// Answers to conditions are decided by the condition, not the pipeline.
    pub fn is_answer(self) -> bool {
        matches!(
            self,
            ChangeKind::Approve | ChangeKind::Reject | ChangeKind::Resolve | ChangeKind::Respond
        )
    }

    /// Changes that are foundational whatever their target (step 1 of the pipeline).
    pub fn is_foundational(self) -> bool {
        matches!(
            self,
            ChangeKind::ChangeOwners
                | ChangeKind::ChangeGovernors
                | ChangeKind::SetOwnerCondition
                | ChangeKind::SetGovernorCondition
                | ChangeKind::SetProposals
                | ChangeKind::EnableFoundationalOverride
                | ChangeKind::DisableFoundationalOverride
                | ChangeKind::EnableGoverning
                | ChangeKind::DisableGoverning
                | ChangeKind::ApplyTemplate
        )
    }

    pub(crate) fn targets(self) -> &'static [TargetKind] {
        use TargetKind::*;
        match self {
            ChangeKind::Rename
            | ChangeKind::AddMembers
            | ChangeKind::RemoveMembers
            | ChangeKind::AddRole
            | ChangeKind::SetProposals
            | ChangeKind::ApplyTemplate => &[Community],
            ChangeKind::RemoveRole
            | ChangeKind::AddPeopleToRole
            | ChangeKind::RemovePeopleFromRole => &[Role],
            ChangeKind::ChangeOwners | ChangeKind::SetOwnerCondition => &[Owners],
            ChangeKind::ChangeGovernors | ChangeKind::SetGovernorCondition => &[Governors],
            ChangeKind::EnableFoundationalOverride
            | ChangeKind::DisableFoundationalOverride
            | ChangeKind::EnableGoverning
            | ChangeKind::DisableGoverning
            | ChangeKind::AddPermission => &[Community, Role, Permission, Item],
            ChangeKind::EditPermission | ChangeKind::RemovePermission => &[Permission],
            ChangeKind::AddCondition | ChangeKind::RemoveCondition => {
                &[Permission, Owners, Governors]
            }
            ChangeKind::Approve
            | ChangeKind::Reject
            | ChangeKind::Resolve
            | ChangeKind::Respond => &[Condition],
            ChangeKind::CreateItem => &[Community, Item],
            ChangeKind::EditItem
            | ChangeKind::DeactivateItem
            | ChangeKind::ReactivateItem
            | ChangeKind::DestroyItem
            | ChangeKind::AddToCollection
            | ChangeKind::RemoveFromCollection
            | ChangeKind::Comment
            | ChangeKind::Rate => &[Item],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    Community,
    Owners,
    Governors,
    Role,
    Permission,
    Condition,
    Item,
}

impl TargetKind {
    fn of(t: &ObjectRef) -> Option<TargetKind> {
        Some(match t {
            ObjectRef::Community => TargetKind::Community,
            ObjectRef::Owners => TargetKind::Owners,
            ObjectRef::Governors => TargetKind::Governors,
            ObjectRef::Role(_) => TargetKind::Role,
            ObjectRef::Permission(_) => TargetKind::Permission,
            ObjectRef::Condition(_) => TargetKind::Condition,
            ObjectRef::Item(_) => TargetKind::Item,
            ObjectRef::Action(_) => return None,
        })
    }
}

/// An ability: what a permission grants or denies, and what a change or a read needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ability {
    /// The ability of the same name as a change type.
    Change(ChangeKind),
    /// Reading an item at all.
    View,
    ViewField(Field),
    EditField(Field),
    /// `view action_notices`: reading an item's notices.
    ViewNotices,
    DoAnything,
    ViewAnything,
    EditAnything,
}

impl Ability {
    pub fn parse(s: &str) -> Option<Ability> {
        Some(match s {
            "do_anything" => Ability::DoAnything,
            "view_anything" => Ability::ViewAnything,
            "edit_anything" => Ability::EditAnything,
            "view" => Ability::View,
            "view action_notices" => Ability::ViewNotices,
            _ => {
                if let Some(f) = s.strip_prefix("view ") {
                    Ability::ViewField(Field::parse(f)?)
                } else if let Some(f) = s.strip_prefix("edit ") {
                    Ability::EditField(Field::parse(f)?)
                } else {
                    let k = ChangeKind::parse(s)?;
                    if k.is_answer() {
                        return None;
                    }
                    Ability::Change(k)
                }
            }
        })
    }

    pub fn name(self) -> String {
        match self {
            Ability::Change(k) => k.name().to_string(),
            Ability::View => "view".into(),
            Ability::ViewField(f) => format!("view {}", f.name()),
            Ability::EditField(f) => format!("edit {}", f.name()),
            Ability::ViewNotices => "view action_notices".into(),
            Ability::DoAnything => "do_anything".into(),
            Ability::ViewAnything => "view_anything".into(),
            Ability::EditAnything => "edit_anything".into(),
        }
    }

    pub fn is_covering(self) -> bool {
        matches!(
            self,
            Ability::DoAnything | Ability::ViewAnything | Ability::EditAnything
        )
    }

    /// Whether covering ability `self` covers `other`: `do_anything` every ability,
    /// `view_anything` every `view ..`, `edit_anything` every `edit ..` (and `edit_item`).
    pub fn covers(self, other: Ability) -> bool {
        match self {
            Ability::DoAnything => true,
            Ability::ViewAnything => matches!(
                other,
                Ability::View
                    | Ability::ViewField(_)
                    | Ability::ViewNotices
                    | Ability::ViewAnything
            ),
            Ability::EditAnything => matches!(
                other,
                Ability::EditField(_)
                    | Ability::Change(ChangeKind::EditItem)
                    | Ability::EditAnything
            ),
            _ => false,
        }
    }

    /// The covering abilities that cover `self` (besides itself).
    pub fn coverers(self) -> &'static [Ability] {
        match self {
            Ability::DoAnything => &[],
            Ability::View
            | Ability::ViewField(_)
            | Ability::ViewNotices
            | Ability::ViewAnything => &[Ability::ViewAnything, Ability::DoAnything],
            Ability::EditField(_)
            | Ability::Change(ChangeKind::EditItem)
            | Ability::EditAnything => &[Ability::EditAnything, Ability::DoAnything],
            _ => &[Ability::DoAnything],
        }
    }

    /// Read abilities are decided without waiting: their grants take no waiting conditions.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Ability::View | Ability::ViewField(_) | Ability::ViewNotices | Ability::ViewAnything
        )
    }
}

/// A change's parameters, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    Empty,
    Rename {
        name: String,
    },
    /// `add_members`, `remove_members`, and `add_people_to_role` / `remove_people_from_role`
    /// (whose `of` is folded into the target's role key).
    Agents {
        agents: Vec<Box<str>>,
    },
    AddRole {
        name: Box<str>,
        actors: Vec<Box<str>>,
        rule: Option<Rule>,
    },
    Authority {
        actors: Vec<Box<str>>,
        roles: Vec<RoleKey>,
    },
    Conditions(Vec<ConditionSpec>),
    Enabled(bool),
    AddPermission(PermissionSpec),
    EditPermission(PermissionPatch),
    AddCondition(ConditionSpec),
    RemoveCondition(usize),
    Respond(Response),
    Template(TemplateSpec),
    CreateItem {
        typ: ItemType,
        fields: Fields,
    },
    EditItem {
        fields: Fields,
        summary: String,
    },
    Collection {
        item: ItemId,
        permission_enabled: Option<bool>,
    },
    Comment {
        body: String,
    },
    Rate {
        value: i8,
    },
}

/// One change: type, target, typed parameters, and the parameters as given (for the record).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub target: ObjectRef,
    pub params: Params,
    pub raw_params: Value,
    /// A batch element's own note (a single change's note is the request's).
    pub note: String,
}

/// A request: one change or a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub changes: Vec<Change>,
    pub batch: bool,
    pub note: String,
}

fn params_obj(v: Option<&Value>, path: &str) -> Result<Map<String, Value>, GovError> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(GovError::invalid(path, "'params' must be an object")),
    }
}

fn only(o: &Map<String, Value>, keys: &[&str], path: &str) -> Result<(), GovError> {
    match o.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(GovError::invalid(
            &format!("{path}.{k}"),
            format!("'{k}' is not a parameter of this change"),
        )),
        None => Ok(()),
    }
}

fn string(
    o: &Map<String, Value>,
    key: &str,
    path: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, GovError> {
    let at = format!("{path}.{key}");
    match o.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(GovError::invalid(&at, format!("'{key}' is required"))),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(GovError::invalid(
            &at,
            format!("'{key}' is longer than {max} bytes"),
        )),
        Some(_) => Err(GovError::invalid(&at, format!("'{key}' must be a string"))),
    }
}

fn agents_required(o: &Map<String, Value>, path: &str) -> Result<Vec<Box<str>>, GovError> {
    let at = format!("{path}.agents");
    if !o.contains_key("agents") {
        return Err(GovError::invalid(&at, "'agents' is required"));
    }
    let agents = parse_agents(o.get("agents"), &at, MAX_AGENTS)?;
    if agents.is_empty() {
        return Err(GovError::invalid(&at, "name at least one agent"));
    }
    Ok(agents)
}

fn item_ref(o: &Map<String, Value>, key: &str, path: &str) -> Result<ItemId, GovError> {
    let at = format!("{path}.{key}");
    match o.get(key) {
        Some(Value::String(s)) => Ok(ItemId(parse_numeric_id(s, &at)?)),
        _ => Err(GovError::invalid(
            &at,
            format!("'{key}' is an item id (a string)"),
        )),
    }
}

impl Change {
    /// Reads one change object (`{"change", "target", "params", "note"}`). `note_allowed`:
    /// whether a `note` key may appear (at the top of a single change or in a batch element).
    fn parse(v: &Value, path: &str) -> Result<Change, GovError> {
        let at = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        let o = v
            .as_object()
            .ok_or_else(|| GovError::bad("invalid_body", Some(path), "a change is an object"))?;
        if let Some(k) = o
            .keys()
            .find(|k| !["change", "target", "params", "note"].contains(&k.as_str()))
        {
            return Err(GovError::bad(
                "invalid_body",
                Some(&at(k)),
                format!("'{k}' is not part of a change (change, target, params, note)"),
            ));
        }
        let name = o.get("change").and_then(Value::as_str).ok_or_else(|| {
            GovError::bad(
                "invalid_body",
                Some(&at("change")),
                "'change' names a change type",
            )
        })?;
        let kind = ChangeKind::parse(name).ok_or_else(|| {
            GovError::bad(
                "unknown_change",
                Some(&at("change")),
                format!("'{}' is not a change type", truncate(name, 60)),
            )
        })?;
        let target_text = o.get("target").and_then(Value::as_str).ok_or_else(|| {
            GovError::bad(
                "invalid_target",
                Some(&at("target")),
                "'target' is a string",
            )
        })?;
        let mut target = ObjectRef::parse(target_text, &at("target"))?;
        let fits = TargetKind::of(&target).is_some_and(|t| kind.targets().contains(&t));
        if !fits {
            return Err(GovError::bad(
                "invalid_target",
                Some(&at("target")),
                format!("'{}' cannot target {target}", kind.name()),
            ));
        }
        let note = match o.get("note") {
            Some(Value::String(s)) if s.len() <= NOTE_MAX => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(_) => {
                return Err(GovError::invalid(
                    &at("note"),
                    format!("'note' is a string of at most {NOTE_MAX} bytes"),
                ))
            }
        };
        let ppath = at("params");
        let p = params_obj(o.get("params"), &ppath)?;
        let params = Self::parse_params(kind, &mut target, &p, &ppath)?;
        Ok(Change {
            kind,
            target,
            params,
            raw_params: Value::Object(p),
            note,
        })
    }

    fn parse_params(
        kind: ChangeKind,
        target: &mut ObjectRef,
        p: &Map<String, Value>,
        path: &str,
    ) -> Result<Params, GovError> {
        use ChangeKind as K;
        Ok(match kind {
            K::Rename => {
                only(p, &["name"], path)?;
                let name = string(p, "name", path, 200, true)?.unwrap_or_default();
                if name.trim().is_empty() {
                    return Err(GovError::invalid(&format!("{path}.name"), "a name"));
                }
                Params::Rename { name }
            }
            K::AddMembers | K::RemoveMembers => {
                only(p, &["agents"], path)?;
                Params::Agents {
                    agents: agents_required(p, path)?,
                }
            }
            K::AddPeopleToRole | K::RemovePeopleFromRole => {
                only(p, &["agents", "of"], path)?;
                if let (ObjectRef::Role(key), Some(of)) = (&mut *target, p.get("of")) {
                    if !of.is_null() {
                        let s = of.as_str().ok_or_else(|| {
                            GovError::invalid(&format!("{path}.of"), "an item id (a string)")
                        })?;
                        key.of = Some(ItemId(parse_numeric_id(s, &format!("{path}.of"))?));
                    }
                }
                Params::Agents {
                    agents: agents_required(p, path)?,
                }
            }
            K::AddRole => {
                only(p, &["name", "actors", "rule"], path)?;
                let name = string(p, "name", path, 64, true)?.unwrap_or_default();
                check_role_name(&name, &format!("{path}.name"))?;
                let has_actors = p.get("actors").is_some_and(|v| !v.is_null());
                let rule = match p.get("rule") {
                    None | Some(Value::Null) => None,
                    Some(r) => Some(Rule::parse(r, &format!("{path}.rule"))?),
                };
                if has_actors && rule.is_some() {
                    return Err(GovError::invalid(
                        path,
                        "a role is assigned ('actors') or automated ('rule'), not both",
                    ));
                }
                Params::AddRole {
                    name: name.into(),
                    actors: parse_agents(p.get("actors"), &format!("{path}.actors"), MAX_AGENTS)?,
                    rule,
                }
            }
            K::ChangeOwners | K::ChangeGovernors => {
                only(p, &["actors", "roles"], path)?;
                Params::Authority {
                    actors: parse_agents(p.get("actors"), &format!("{path}.actors"), MAX_AGENTS)?,
                    roles: parse_role_refs(p.get("roles"), &format!("{path}.roles"))?,
                }
            }
            K::SetOwnerCondition | K::SetGovernorCondition => {
                only(p, &["conditions"], path)?;
                if !p.contains_key("conditions") {
                    return Err(GovError::invalid(
                        &format!("{path}.conditions"),
                        "'conditions' (the new list) is required",
                    ));
                }
                let list = ConditionSpec::parse_list(p, path)?;
                Params::Conditions(list)
            }
            K::SetProposals => {
                only(p, &["enabled"], path)?;
                match p.get("enabled") {
                    Some(Value::Bool(b)) => Params::Enabled(*b),
                    _ => {
                        return Err(GovError::invalid(
                            &format!("{path}.enabled"),
                            "'enabled' is true or false",
                        ))
                    }
                }
            }
            K::AddPermission => Params::AddPermission(PermissionSpec::parse(p, path)?),
            K::EditPermission => Params::EditPermission(PermissionPatch::parse(p, path)?),
            K::AddCondition => {
                only(p, &["condition"], path)?;
                let c = p.get("condition").ok_or_else(|| {
                    GovError::invalid(&format!("{path}.condition"), "'condition' is required")
                })?;
                Params::AddCondition(ConditionSpec::parse(c, &format!("{path}.condition"))?)
            }
            K::RemoveCondition => {
                only(p, &["index"], path)?;
                let i = p
                    .get("index")
                    .and_then(Value::as_u64)
                    .filter(|i| *i < 1000)
                    .ok_or_else(|| {
                        GovError::invalid(&format!("{path}.index"), "'index' is a list index")
                    })?;
                Params::RemoveCondition(i as usize)
            }
            K::Respond => {
                only(p, &["response"], path)?;
                let r = p
                    .get("response")
                    .and_then(Value::as_str)
                    .and_then(Response::parse)
                    .ok_or_else(|| {
                        GovError::invalid(
                            &format!("{path}.response"),
                            "'response' is support, support_with_reservations, stand_aside or block",
                        )
                    })?;
                Params::Respond(r)
            }
            K::ApplyTemplate => Params::Template(TemplateSpec::parse(p, path)?),
            K::CreateItem => {
                only(p, &["type", "fields"], path)?;
                let typ = p
                    .get("type")
                    .and_then(Value::as_str)
                    .and_then(ItemType::parse)
                    .filter(|t| t.creatable())
                    .ok_or_else(|| {
                        GovError::invalid(
                            &format!("{path}.type"),
                            "'type' is an item type that create_item makes (comments come from \
                             the comment change)",
                        )
                    })?;
                let fields = match p.get("fields") {
                    None | Some(Value::Null) => Fields::new(),
                    Some(Value::Object(f)) => f.clone(),
                    Some(_) => {
                        return Err(GovError::invalid(
                            &format!("{path}.fields"),
                            "'fields' is an object",
                        ))
                    }
                };
                Params::CreateItem {
                    typ,
                    fields: check_fields(typ, &fields, true, &format!("{path}.fields"))?,
                }
            }
            K::EditItem => {
                only(p, &["fields", "summary"], path)?;
                let fields = match p.get("fields") {
                    Some(Value::Object(f)) if !f.is_empty() => f.clone(),
                    _ => {
                        return Err(GovError::invalid(
                            &format!("{path}.fields"),
                            "'fields' is a non-empty object of the fields to change",
                        ))
                    }
                };
                Params::EditItem {
                    fields,
                    summary: string(p, "summary", path, 500, false)?.unwrap_or_default(),
                }
            }
            K::AddToCollection => {
                only(p, &["item", "permission_enabled"], path)?;
                let permission_enabled = match p.get("permission_enabled") {
                    None | Some(Value::Null) => None,
                    Some(Value::Bool(b)) => Some(*b),
                    Some(_) => {
                        return Err(GovError::invalid(
                            &format!("{path}.permission_enabled"),
                            "true or false",
                        ))
                    }
                };
                Params::Collection {
                    item: item_ref(p, "item", path)?,
                    permission_enabled,
                }
            }
            K::RemoveFromCollection => {
                only(p, &["item"], path)?;
                Params::Collection {
                    item: item_ref(p, "item", path)?,
                    permission_enabled: None,
                }
            }
            K::Comment => {
                only(p, &["body"], path)?;
                let body = string(p, "body", path, 1_000_000, true)?.unwrap_or_default();
                if body.trim().is_empty() {
                    return Err(GovError::invalid(
                        &format!("{path}.body"),
                        "a comment says something",
                    ));
                }
                Params::Comment { body }
            }
            K::Rate => {
                only(p, &["value"], path)?;
                let value = p
                    .get("value")
                    .and_then(Value::as_i64)
                    .filter(|v| (-1..=1).contains(v))
                    .ok_or_else(|| {
                        GovError::invalid(&format!("{path}.value"), "'value' is -1, 0 or 1")
                    })?;
                Params::Rate { value: value as i8 }
            }
            K::RemoveRole
            | K::EnableFoundationalOverride
            | K::DisableFoundationalOverride
            | K::EnableGoverning
            | K::DisableGoverning
            | K::RemovePermission
            | K::Approve
            | K::Reject
            | K::Resolve
            | K::DeactivateItem
            | K::ReactivateItem
            | K::DestroyItem => {
                only(p, &[], path)?;
                Params::Empty
            }
        })
    }

    /// The `agents` parameter, for `self_only`.
    pub fn agents(&self) -> Option<&[Box<str>]> {
        match &self.params {
            Params::Agents { agents } => Some(agents),
            _ => None,
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl Request {
    /// Reads a request body: one change, or `{"batch": [..], "note"?}`.
    pub fn parse(body: &Value) -> Result<Request, GovError> {
        let o = body
            .as_object()
            .ok_or_else(|| GovError::bad("invalid_body", None, "the body is a JSON object"))?;
        if let Some(batch) = o.get("batch") {
            if let Some(k) = o.keys().find(|k| *k != "batch" && *k != "note") {
                return Err(GovError::bad(
                    "invalid_body",
                    Some(k),
                    "a batch body has only 'batch' and 'note'",
                ));
            }
            let list = batch.as_array().ok_or_else(|| {
                GovError::bad(
                    "invalid_body",
                    Some("batch"),
                    "'batch' is a list of changes",
                )
            })?;
            if list.is_empty() || list.len() > MAX_BATCH {
                return Err(GovError::bad(
                    "invalid_body",
                    Some("batch"),
                    format!("a batch holds 1 to {MAX_BATCH} changes"),
                ));
            }
            let mut changes = Vec::with_capacity(list.len());
            for (i, c) in list.iter().enumerate() {
                let path = format!("batch[{i}]");
                let change = Change::parse(c, &path)?;
                if change.kind.is_answer() {
                    return Err(GovError::bad(
                        "invalid_body",
                        Some(&format!("{path}.change")),
                        "answers to conditions are not batched",
                    ));
                }
                changes.push(change);
            }
            return Ok(Request {
                changes,
                batch: true,
                note: note(o)?,
            });
        }
        let change = Change::parse(body, "")?;
        Ok(Request {
            changes: vec![change],
            batch: false,
            note: note(o)?,
        })
    }

    pub fn is_answer(&self) -> bool {
        !self.batch && self.changes.first().is_some_and(|c| c.kind.is_answer())
    }
}

fn note(o: &Map<String, Value>) -> Result<String, GovError> {
    match o.get("note") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) if s.len() <= NOTE_MAX => Ok(s.clone()),
        Some(_) => Err(GovError::invalid(
            "note",
            format!("'note' is a string of at most {NOTE_MAX} bytes"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_change_type_has_a_name_and_an_ability() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(k.name()), Some(*k));
            let a = Ability::parse(k.name());
            assert_eq!(a.is_none(), k.is_answer(), "{k:?}");
            if let Some(a) = a {
                assert_eq!(Ability::parse(&a.name()), Some(a));
            }
        }
        for s in [
            "view",
            "view body",
            "edit description",
            "view action_notices",
            "do_anything",
        ] {
            assert_eq!(Ability::parse(s).unwrap().name(), s);
        }
        assert_eq!(Ability::parse("edit bogus"), None);
        assert_eq!(Ability::parse("approve"), None);
    }

    #[test]
    fn covering_abilities_cover_their_family() {
        let body = Ability::ViewField(Field::Body);
        assert!(Ability::ViewAnything.covers(body));
        assert!(!Ability::ViewAnything.covers(Ability::EditField(Field::Body)));
        assert!(Ability::EditAnything.covers(Ability::EditField(Field::Name)));
        assert!(Ability::DoAnything.covers(Ability::Change(ChangeKind::Rename)));
        for a in [
            body,
            Ability::Change(ChangeKind::Rename),
            Ability::EditField(Field::Name),
        ] {
            for c in a.coverers() {
                assert!(c.covers(a));
            }
        }
    }

    #[test]
    fn single_changes_and_batches_parse() {
        let r = Request::parse(&json!({"change": "add_members", "target": "community",
            "params": {"agents": ["cy", "cy", "dee"]}, "note": "welcome"}))
        .unwrap();
        assert_eq!(r.changes[0].agents().unwrap().len(), 2);
        assert_eq!(r.note, "welcome");
        let r = Request::parse(&json!({"batch": [
            {"change": "add_role", "target": "community", "params": {"name": "mods"}},
            {"change": "add_people_to_role", "target": "role:mods",
             "params": {"agents": ["ana"], "of": "12"}}]}))
        .unwrap();
        assert!(r.batch);
        assert_eq!(
            r.changes[1].target,
            ObjectRef::Role(RoleKey {
                name: "mods".into(),
                of: Some(ItemId(12))
            })
        );
    }

    #[test]
    fn bad_bodies_name_code_and_field() {
        for (body, code, field) in [
            (json!([]), "invalid_body", None),
            (
                json!({"change": "fly", "target": "community"}),
                "unknown_change",
                Some("change"),
            ),
            (
                json!({"change": "rename", "target": "item:1", "params": {"name": "x"}}),
                "invalid_target",
                Some("target"),
            ),
            (
                json!({"change": "rename", "target": "community", "params": {"name": 3}}),
                "invalid_params",
                Some("params.name"),
            ),
            (
                json!({"change": "rename", "target": "community", "params": {"name": "x", "y": 1}}),
                "invalid_params",
                Some("params.y"),
            ),
            (
                json!({"change": "add_members", "target": "community", "params": {"agents": ["ok", ""]}}),
                "invalid_id",
                Some("params.agents[1]"),
            ),
            (
                json!({"change": "edit_item", "target": "item:01", "params": {}}),
                "invalid_id",
                Some("target"),
            ),
            (json!({"batch": []}), "invalid_body", Some("batch")),
            (
                json!({"batch": [{"change": "approve", "target": "condition:1"}]}),
                "invalid_body",
                Some("batch[0].change"),
            ),
            (
                json!({"batch": [{"change": "rename", "target": "community", "params": {}}]}),
                "invalid_params",
                Some("batch[0].params.name"),
            ),
            (
                json!({"change": "rate", "target": "item:1", "params": {"value": 2}}),
                "invalid_params",
                Some("params.value"),
            ),
            (
                json!({"change": "create_item", "target": "community", "params": {"type": "comment"}}),
                "invalid_params",
                Some("params.type"),
            ),
        ] {
            let e = Request::parse(&body).unwrap_err();
            assert_eq!(e.code, code, "{body}: {e:?}");
            assert_eq!(e.field.as_deref(), field, "{body}");
            assert_eq!(e.status.http(), 400);
        }
    }
}
