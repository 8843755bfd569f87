//! JSON Schemas (draft 2020-12, as OpenAPI 3.1 embeds them) of one change of `POST /actions`:
//! for each change type, the targets it takes and its parameters. They sit here, beside the
//! parsers they describe, and take their limits and name lists from the same constants, so the
//! published document cannot drift from what the core reads without a test noticing.
//!
//! A schema here may take a body the core then refuses (rules across fields, state, lengths
//! in bytes where JSON Schema counts characters, the vote method's own parameters), never the
//! other way round: a client that validates against the document must not reject a request
//! the service would take. `schema/tests.rs` checks that direction on every change type.

use serde_json::{json, Map, Value};

use crate::changes::{Ability, ChangeKind, TargetKind, MAX_AGENTS, NOTE_MAX};
use crate::conditions::{Response, MAX_RATE_COUNT};
use crate::ids::{MAX_AGENT_BYTES, MAX_ROLE_BYTES};
use crate::item_types::{Field, ItemType, MAX_WEIGHT};
use crate::participation::{Access, MAX_PHASES, PHASE_TYPES};
use crate::templates::Template;
use crate::when::MAX_HOURS;

/// Where the named schemas of [`components`] live in the document that embeds them.
const REF: &str = "#/components/schemas/";

/// The most conditions one grant carries (`ConditionSpec::parse_list`).
const MAX_GRANT_CONDITIONS: usize = 16;
/// The most roles one list names (`parse_role_refs`).
const MAX_ROLE_REFS: usize = 100;

fn named(name: &str) -> Value {
    json!({"$ref": format!("{REF}{name}")})
}

fn nullable(mut schema: Value) -> Value {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        schema["type"] = json!([t, "null"]);
    } else {
        schema = json!({"anyOf": [schema, {"type": "null"}]});
    }
    schema
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

fn flag() -> Value {
    json!({"type": ["boolean", "null"]})
}

/// `hours_field`: a finite number of hours, more than 0 (or at least 0), at most `MAX_HOURS`.
fn hours(zero_ok: bool, optional: bool) -> Value {
    let mut h = json!({"type": "number", "maximum": MAX_HOURS});
    if zero_ok {
        h["minimum"] = json!(0);
    } else {
        h["exclusiveMinimum"] = json!(0);
    }
    if optional {
        nullable(h)
    } else {
        h
    }
}

/// Not blank: one character that Rust's `trim` keeps (outside the `White_Space` property).
/// Spelled out, because ECMA-262's `\s`, which JSON Schema patterns use, also counts U+FEFF,
/// which `trim` keeps.
pub const NOT_BLANK: &str =
    "[^\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

fn text(max_bytes: usize, not_blank: bool) -> Value {
    // `maxLength` counts characters: the byte limit read as characters says less, never more.
    let mut s = json!({"type": "string", "maxLength": max_bytes});
    if not_blank {
        s["pattern"] = json!(NOT_BLANK);
    }
    s
}

fn numeric_id() -> Value {
    json!({"type": "string", "pattern": NUMERIC_ID})
}

/// `parse_numeric_id`: 1 to 20 digits, no leading zero (values past `u64::MAX` are the core's
/// to refuse).
pub const NUMERIC_ID: &str = "^[1-9][0-9]{0,19}$";
/// `check_role_name`.
fn role_name_pattern() -> String {
    format!("[-A-Za-z0-9_.]{{1,{MAX_ROLE_BYTES}}}")
}

fn agents(min_items: usize, optional: bool) -> Value {
    let list = json!({
        "type": "array",
        "minItems": min_items,
        "maxItems": MAX_AGENTS,
        "items": named("Agent"),
    });
    if optional {
        nullable(list)
    } else {
        list
    }
}

fn role_refs() -> Value {
    json!({"type": ["array", "null"], "maxItems": MAX_ROLE_REFS, "items": named("RoleRef")})
}

fn names<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
    Value::Array(items.into_iter().map(|s| Value::String(s.into())).collect())
}

/// Every ability a permission may name (`Ability::parse`).
fn abilities() -> Vec<String> {
    let mut out: Vec<String> = ["do_anything", "view_anything", "edit_anything", "view"]
        .into_iter()
        .map(String::from)
        .collect();
    out.push(Ability::ViewNotices.name());
    for f in Field::ALL {
        out.push(Ability::ViewField(f).name());
        out.push(Ability::EditField(f).name());
    }
    for k in ChangeKind::ALL.iter().filter(|k| !k.is_answer()) {
        out.push(k.name().to_string());
    }
    out
}

/// The schema of one field's value in `create_item` and `edit_item` (`check_fields`).
fn field_value(f: Field) -> Value {
    match f {
        Field::Draft | Field::Archived => json!({"type": "boolean"}),
        Field::Weight => {
            json!({"type": "integer", "minimum": -(MAX_WEIGHT as i64), "maximum": MAX_WEIGHT})
        }
        Field::Access => json!({"type": "string", "enum": names(Access::ALL.map(Access::name))}),
        Field::Phases => json!({"type": "array", "maxItems": MAX_PHASES, "items": named("Phase")}),
        other => text(other.max_bytes(), other == Field::Name),
    }
}

fn fields_of(list: &[Field]) -> Value {
    let mut props = Map::new();
    for f in list {
        props.insert(f.name().to_string(), field_value(*f));
    }
    Value::Object(props)
}

/// The condition types of `ConditionSpec::parse`, each with exactly its keys.
fn condition() -> Value {
    let who = named("Who");
    let on_timeout = json!({"type": ["string", "null"], "enum": ["reject", "approve", null]});
    let kind = |t: &str| json!({"const": t});
    json!({"oneOf": [
        object(&["type"], json!({
            "type": kind("approval"), "approvers": who, "rejecters": who,
            "self_approval": flag(), "timeout_hours": hours(false, true), "on_timeout": on_timeout,
        })),
        object(&["type", "method"], json!({
            "type": kind("vote"),
            "method": {"type": "string", "enum": names(agora_plugins::vote::METHODS)},
            "params": {
                "type": ["object", "null"],
                "description": "the vote method's own parameters (the vote plugin's schema); \
                                the closing time and the voters come from the condition",
            },
            "voters": who, "duration_hours": hours(false, true),
        })),
        object(&["type"], json!({
            "type": kind("consensus"), "participants": who, "resolvers": who,
            "minimum_hours": hours(true, true), "strict": flag(), "self_approval": flag(),
            "timeout_hours": hours(false, true), "on_timeout": on_timeout,
        })),
        object(&["type"], json!({"type": kind("self_only")})),
        object(&["type"], json!({"type": kind("creator_only")})),
        object(&["type", "field", "value"], json!({
            "type": kind("field_matches"),
            "field": {"type": "string", "enum": names(Field::ALL.map(Field::name))},
            "value": {"description": "the value to match, at most 1000 bytes of JSON"},
        })),
        object(&["type", "types"], json!({
            "type": kind("target_type"),
            "types": {
                "type": "array", "minItems": 1, "maxItems": 16,
                "items": {"type": "string", "enum": names(ItemType::ALL.map(ItemType::name))},
            },
        })),
        object(&["type", "count", "per_hours"], json!({
            "type": kind("rate_limit"),
            "count": {"type": "integer", "minimum": 1, "maximum": MAX_RATE_COUNT},
            "per_hours": hours(false, false),
        })),
    ]})
}

/// `Rule::parse`. Nested rules are described one level deep only (an object of one key):
/// a recursive schema is more than most generators and validators handle well.
fn rule() -> Value {
    let nested = json!({"type": "object", "minProperties": 1, "maxProperties": 1});
    json!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": false,
        "properties": {
            "member_for_hours": hours(true, false),
            "linked_account": {"type": "string", "minLength": 1, "maxLength": 64},
            "implemented_actions": object(&["count", "change"], json!({
                "count": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                "change": {"type": "string", "enum": names(ChangeKind::ALL.iter().map(|k| k.name()))},
            })),
            "all": {"type": "array", "minItems": 1, "items": nested},
            "any": {"type": "array", "minItems": 1, "items": nested},
            "not": nested,
        },
    })
}

/// `PermissionSpec` and `PermissionPatch` share their fields.
fn permission_fields() -> Value {
    json!({
        "ability": {"type": "string", "enum": names(abilities())},
        "allow": flag(),
        "actors": agents(0, true),
        "roles": role_refs(),
        "anyone": flag(),
        "inverse": flag(),
        "applies_to": {"type": ["string", "null"], "enum": ["object", "members", null]},
        "condition": nullable(named("Condition")),
        "conditions": {"type": ["array", "null"], "maxItems": MAX_GRANT_CONDITIONS, "items": named("Condition")},
    })
}

/// The named schemas the change schemas refer to, for the document's `components/schemas`.
pub fn components() -> Map<String, Value> {
    let control_free = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";
    let mut c = Map::new();
    c.insert(
        "Agent".into(),
        json!({
            "type": "string", "minLength": 1, "maxLength": MAX_AGENT_BYTES,
            "allOf": [{"pattern": NOT_BLANK}, {"pattern": control_free}],
            "description": "an agent id: no control characters, not blank",
        }),
    );
    c.insert(
        "RoleRef".into(),
        json!({"oneOf": [
            {"type": "string", "pattern": format!("^{}$", role_name_pattern())},
            object(&["role"], json!({
                "role": {"type": "string", "pattern": format!("^{}$", role_name_pattern())},
                "of": nullable(numeric_id()),
            })),
        ]}),
    );
    c.insert(
        "Who".into(),
        nullable(object(
            &[],
            json!({"actors": agents(0, true), "roles": role_refs()}),
        )),
    );
    c.insert("Condition".into(), condition());
    c.insert("Rule".into(), rule());
    c.insert(
        "Phase".into(),
        object(
            &["name", "type", "start", "end"],
            json!({
                "name": text(200, true),
                "type": {"type": "string", "enum": names(PHASE_TYPES.iter().map(|t| t.name))},
                // No `format`: the time parser and a validator's idea of RFC 3339 may
                // differ at the edges, and the schema must not refuse what the core takes.
                "start": {"type": "string", "description": "an RFC 3339 time"},
                "end": {"type": "string", "description": "an RFC 3339 time after start"},
                "weight": {"type": ["integer", "null"], "minimum": -(MAX_WEIGHT as i64), "maximum": MAX_WEIGHT},
            }),
        ),
    );
    c
}

/// The target pattern of a change type: the kinds of object it may act on.
fn target_pattern(kind: ChangeKind) -> String {
    let alternatives: Vec<String> = kind
        .targets()
        .iter()
        .map(|t| match t {
            TargetKind::Community => "community".to_string(),
            TargetKind::Owners => "owners".to_string(),
            TargetKind::Governors => "governors".to_string(),
            TargetKind::Role => format!("role:{}", role_name_pattern()),
            TargetKind::Permission => "permission:[1-9][0-9]{0,19}".to_string(),
            TargetKind::Condition => "condition:[1-9][0-9]{0,19}".to_string(),
            TargetKind::Item => "item:[1-9][0-9]{0,19}".to_string(),
        })
        .collect();
    format!("^({})$", alternatives.join("|"))
}

/// A change type's `params`, and whether the body must carry them (`params` absent reads as
/// `{}`, which these types refuse).
fn params(kind: ChangeKind) -> (Value, bool) {
    use ChangeKind as K;
    let empty = json!({"type": ["object", "null"], "maxProperties": 0});
    let p = |required: &[&str], properties: Value| object(required, properties);
    match kind {
        K::Rename => (p(&["name"], json!({"name": text(200, true)})), true),
        K::AddMembers | K::RemoveMembers => {
            (p(&["agents"], json!({"agents": agents(1, false)})), true)
        }
        K::AddPeopleToRole | K::RemovePeopleFromRole => (
            p(
                &["agents"],
                json!({"agents": agents(1, false), "of": nullable(numeric_id())}),
            ),
            true,
        ),
        K::AddRole => (
            p(
                &["name"],
                json!({
                    "name": {"type": "string", "pattern": format!("^{}$", role_name_pattern())},
                    "actors": agents(0, true),
                    "rule": nullable(named("Rule")),
                }),
            ),
            true,
        ),
        K::ChangeOwners | K::ChangeGovernors => (
            nullable(p(
                &[],
                json!({"actors": agents(0, true), "roles": role_refs()}),
            )),
            false,
        ),
        K::SetOwnerCondition | K::SetGovernorCondition => (
            p(
                &["conditions"],
                json!({"conditions": {
                    "type": ["array", "null"], "maxItems": MAX_GRANT_CONDITIONS,
                    "items": named("Condition"),
                }}),
            ),
            true,
        ),
        K::SetProposals => (
            p(&["enabled"], json!({"enabled": {"type": "boolean"}})),
            true,
        ),
        K::AddPermission => (p(&["ability"], permission_fields()), true),
        K::EditPermission => {
            let mut patch = p(&[], permission_fields());
            patch["minProperties"] = json!(1);
            (patch, true)
        }
        K::AddCondition => (
            p(&["condition"], json!({"condition": named("Condition")})),
            true,
        ),
        K::RemoveCondition => (
            p(
                &["index"],
                json!({"index": {"type": "integer", "minimum": 0, "maximum": 999}}),
            ),
            true,
        ),
        K::Respond => (
            p(
                &["response"],
                json!({"response": {"type": "string", "enum": names(Response::ALL.map(Response::name))}}),
            ),
            true,
        ),
        K::ApplyTemplate => (
            p(
                &["template"],
                json!({
                    "template": {"type": "string", "enum": names(Template::ALL.map(Template::name))},
                    "board": agents(0, true),
                    "threshold": {"type": ["number", "null"]},
                    "duration_hours": {"type": ["number", "null"]},
                }),
            ),
            true,
        ),
        K::CreateItem => {
            let per_type: Vec<Value> = ItemType::ALL
                .into_iter()
                .filter(|t| t.creatable())
                .map(|t| {
                    let required: Vec<&str> = t.required().iter().map(|f| f.name()).collect();
                    p(
                        &["type", "fields"],
                        json!({
                            "type": {"const": t.name()},
                            "fields": object(&required, fields_of(t.editable())),
                        }),
                    )
                })
                .collect();
            (json!({"oneOf": per_type}), true)
        }
        K::EditItem => {
            // The target's type decides which fields it has; any type's may be named here.
            let mut all: Vec<Field> = Vec::new();
            for t in ItemType::ALL {
                for f in t.editable() {
                    if !all.contains(f) {
                        all.push(*f);
                    }
                }
            }
            let mut fields = object(&[], fields_of(&all));
            fields["minProperties"] = json!(1);
            (
                p(
                    &["fields"],
                    json!({"fields": fields, "summary": nullable(text(500, false))}),
                ),
                true,
            )
        }
        K::AddToCollection => (
            p(
                &["item"],
                json!({"item": numeric_id(), "permission_enabled": flag()}),
            ),
            true,
        ),
        K::RemoveFromCollection => (p(&["item"], json!({"item": numeric_id()})), true),
        K::Comment => (p(&["body"], json!({"body": text(1_000_000, true)})), true),
        K::Rate => (
            p(
                &["value"],
                json!({"value": {"type": "integer", "minimum": -1, "maximum": 1}}),
            ),
            true,
        ),
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
        | K::DestroyItem => (empty, false),
    }
}

/// One change of `POST /actions`: one alternative per change type, each with the targets and
/// parameters that type takes. `note` may sit beside the change (at the top of a single
/// change, and in each element of a batch).
pub fn change() -> Value {
    let alternatives: Vec<Value> = ChangeKind::ALL
        .iter()
        .map(|&kind| {
            let (params, params_required) = params(kind);
            let mut required = vec!["change", "target"];
            if params_required {
                required.push("params");
            }
            object(
                &required,
                json!({
                    "change": {"const": kind.name()},
                    "target": {"type": "string", "pattern": target_pattern(kind)},
                    "params": params,
                    "note": {"type": ["string", "null"], "maxLength": NOTE_MAX},
                }),
            )
        })
        .collect();
    json!({"oneOf": alternatives})
}

#[cfg(test)]
mod tests;
