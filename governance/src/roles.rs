//! Roles: named sets of agents. A role is assigned (`actors`, every one a member) or automated
//! (`rule`, evaluated at the moment of each decision). `members` is itself a role, held by
//! every member. Roles of items (`{"role": "moderators", "of": "<item id>"}`, section 6) are
//! assigned roles keyed by the item.
//!
//! Rules: `{"member_for_hours": h}` (a member for at least `h` hours, fractions allowed),
//! `{"linked_account": "<platform type>"}` (the agent has a linked account on that platform:
//! identity is the caller's, asked through [`LinkedAccounts`]),
//! `{"implemented_actions": {"count": n, "change": "<type>"}}` (at least `n` of the agent's
//! actions of that change type were implemented), and `{"all": [..]}`, `{"any": [..]}`,
//! `{"not": rule}`. Only members hold automated roles: a rule narrows the members, it never
//! reaches outside them (so `{"not": ..}` never makes a stranger a role holder).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::changes::ChangeKind;
use crate::error::GovError;
use crate::ids::{check_role_name, ItemId, RoleKey};
use crate::when::{hours_field, Millis};

/// Whether an agent has a linked account on a platform type: the identity directory is the
/// caller's (Metagov identity lives outside the core). A closure works:
/// `&|agent: &str, platform: &str| ...`.
pub trait LinkedAccounts {
    fn has_linked_account(&self, agent: &str, platform_type: &str) -> bool;
}

impl<F: Fn(&str, &str) -> bool> LinkedAccounts for F {
    fn has_linked_account(&self, agent: &str, platform_type: &str) -> bool {
        self(agent, platform_type)
    }
}

/// A directory that knows no linked accounts.
pub struct NoLinkedAccounts;

impl LinkedAccounts for NoLinkedAccounts {
    fn has_linked_account(&self, _agent: &str, _platform_type: &str) -> bool {
        false
    }
}

const MAX_RULE_NODES: usize = 64;
const MAX_RULE_DEPTH: usize = 8;

/// An automated role's rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Rule {
    MemberForMs(Millis),
    LinkedAccount(Box<str>),
    ImplementedActions { count: u32, change: ChangeKind },
    All(Vec<Rule>),
    Any(Vec<Rule>),
    Not(Box<Rule>),
}

/// What a rule needs to know about one agent at one moment.
pub(crate) struct RuleCx<'a> {
    pub agent: &'a str,
    /// When the agent joined, if a member.
    pub joined: Option<Millis>,
    pub now: Millis,
    pub accounts: &'a dyn LinkedAccounts,
    pub implemented: &'a dyn Fn(&str, ChangeKind) -> u32,
}

impl Rule {
    pub fn parse(v: &Value, path: &str) -> Result<Rule, GovError> {
        let mut nodes = 0;
        Self::parse_at(v, path, 0, &mut nodes)
    }

    fn parse_at(v: &Value, path: &str, depth: usize, nodes: &mut usize) -> Result<Rule, GovError> {
        *nodes += 1;
        if depth > MAX_RULE_DEPTH || *nodes > MAX_RULE_NODES {
            return Err(GovError::invalid(
                path,
                format!("a rule nests at most {MAX_RULE_DEPTH} deep and has at most {MAX_RULE_NODES} parts"),
            ));
        }
        let obj = v
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or_else(|| GovError::invalid(path, "a rule is an object with exactly one key"))?;
        let (key, val) = obj.iter().next().expect("one key");
        let at = format!("{path}.{key}");
        Ok(match key.as_str() {
            "member_for_hours" => Rule::MemberForMs(
                hours_field(obj, key, &at, true)?
                    .ok_or_else(|| GovError::invalid(&at, "a number of hours"))?,
            ),
            "linked_account" => {
                let p = val
                    .as_str()
                    .filter(|s| !s.is_empty() && s.len() <= 64)
                    .ok_or_else(|| {
                        GovError::invalid(&at, "a platform type (a string of 1 to 64 bytes)")
                    })?;
                Rule::LinkedAccount(p.into())
            }
            "implemented_actions" => {
                let o = val.as_object().ok_or_else(|| {
                    GovError::invalid(&at, "{\"count\": n, \"change\": \"<type>\"}")
                })?;
                let count = o
                    .get("count")
                    .and_then(Value::as_u64)
                    .filter(|n| *n <= u64::from(u32::MAX))
                    .ok_or_else(|| {
                        GovError::invalid(&format!("{at}.count"), "a non-negative integer")
                    })? as u32;
                let change = o
                    .get("change")
                    .and_then(Value::as_str)
                    .and_then(ChangeKind::parse)
                    .ok_or_else(|| GovError::invalid(&format!("{at}.change"), "a change type"))?;
                if o.len() != 2 {
                    return Err(GovError::invalid(&at, "only 'count' and 'change'"));
                }
                Rule::ImplementedActions { count, change }
            }
            "all" | "any" => {
                let items = val
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| GovError::invalid(&at, "a non-empty list of rules"))?;
                let mut rules = Vec::with_capacity(items.len());
                for (i, r) in items.iter().enumerate() {
                    rules.push(Self::parse_at(r, &format!("{at}[{i}]"), depth + 1, nodes)?);
                }
                if key == "all" {
                    Rule::All(rules)
                } else {
                    Rule::Any(rules)
                }
            }
            "not" => Rule::Not(Box::new(Self::parse_at(val, &at, depth + 1, nodes)?)),
            other => {
                return Err(GovError::invalid(
                    path,
                    format!(
                        "'{other}' is not a rule (member_for_hours, linked_account, \
                         implemented_actions, all, any, not)"
                    ),
                ))
            }
        })
    }

    /// Whether the agent in `cx` satisfies the rule. Non-members never do.
    pub(crate) fn holds(&self, cx: &RuleCx<'_>) -> bool {
        cx.joined.is_some() && self.eval(cx)
    }

    fn eval(&self, cx: &RuleCx<'_>) -> bool {
        match self {
            Rule::MemberForMs(ms) => cx.joined.is_some_and(|j| cx.now.saturating_sub(j) >= *ms),
            Rule::LinkedAccount(p) => cx.accounts.has_linked_account(cx.agent, p),
            Rule::ImplementedActions { count, change } => {
                (cx.implemented)(cx.agent, *change) >= *count
            }
            Rule::All(rs) => rs.iter().all(|r| r.eval(cx)),
            Rule::Any(rs) => rs.iter().any(|r| r.eval(cx)),
            Rule::Not(r) => !r.eval(cx),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Rule::MemberForMs(ms) => json!({"member_for_hours": hours_json(*ms)}),
            Rule::LinkedAccount(p) => json!({"linked_account": &**p}),
            Rule::ImplementedActions { count, change } => {
                json!({"implemented_actions": {"count": count, "change": change.name()}})
            }
            Rule::All(rs) => json!({"all": rs.iter().map(Rule::to_json).collect::<Vec<_>>()}),
            Rule::Any(rs) => json!({"any": rs.iter().map(Rule::to_json).collect::<Vec<_>>()}),
            Rule::Not(r) => json!({"not": r.to_json()}),
        }
    }
}

/// Hours as JSON: an integer when whole, else a fraction.
pub(crate) fn hours_json(ms: Millis) -> Value {
    if ms % crate::when::HOUR_MS == 0 {
        json!(ms / crate::when::HOUR_MS)
    } else {
        json!(ms as f64 / crate::when::HOUR_MS as f64)
    }
}

/// How a role is filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoleDef {
    /// Named agents, every one a member.
    Assigned(BTreeSet<Box<str>>),
    Automated(Rule),
}

/// A custom role (the built-in `members` role is not stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub def: RoleDef,
    pub switches: crate::constitution::Switches,
}

impl Role {
    pub fn to_json(&self) -> Value {
        match &self.def {
            RoleDef::Assigned(a) => json!({"actors": a.iter().map(|s| &**s).collect::<Vec<_>>()}),
            RoleDef::Automated(r) => json!({"rule": r.to_json()}),
        }
    }
}

/// Reads a role reference: `"name"` (a community role) or `{"role": "name", "of": "<id>"}`.
pub(crate) fn parse_role_ref(v: &Value, path: &str) -> Result<RoleKey, GovError> {
    match v {
        Value::String(name) => {
            check_role_name(name, path)?;
            Ok(RoleKey::community(name))
        }
        Value::Object(o) => {
            let name = o
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| GovError::invalid(&format!("{path}.role"), "a role name"))?;
            check_role_name(name, &format!("{path}.role"))?;
            let of = match o.get("of") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(ItemId(crate::ids::parse_numeric_id(
                    s,
                    &format!("{path}.of"),
                )?)),
                Some(_) => {
                    return Err(GovError::invalid(
                        &format!("{path}.of"),
                        "an item id (a string)",
                    ))
                }
            };
            if o.keys().any(|k| k != "role" && k != "of") {
                return Err(GovError::invalid(
                    path,
                    "a role reference has only 'role' and 'of'",
                ));
            }
            Ok(RoleKey {
                name: name.into(),
                of,
            })
        }
        _ => Err(GovError::invalid(
            path,
            "a role is \"name\" or {\"role\": \"name\", \"of\": \"<item id>\"}",
        )),
    }
}

/// Reads a list of role references (at most 100), without duplicates.
pub(crate) fn parse_role_refs(v: Option<&Value>, path: &str) -> Result<Vec<RoleKey>, GovError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .ok_or_else(|| GovError::invalid(path, "a list of roles"))?;
    if items.len() > 100 {
        return Err(GovError::invalid(path, "at most 100 roles"));
    }
    let mut out: Vec<RoleKey> = Vec::with_capacity(items.len());
    for (i, r) in items.iter().enumerate() {
        let k = parse_role_ref(r, &format!("{path}[{i}]"))?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

pub(crate) fn role_ref_json(k: &RoleKey) -> Value {
    match k.of {
        None => json!(&*k.name),
        Some(of) => json!({"role": &*k.name, "of": of.to_string()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(
        joined: Option<Millis>,
        accounts: &'a dyn LinkedAccounts,
        implemented: &'a dyn Fn(&str, ChangeKind) -> u32,
    ) -> RuleCx<'a> {
        RuleCx {
            agent: "ana",
            joined,
            now: 1000 * crate::when::HOUR_MS,
            accounts,
            implemented,
        }
    }

    #[test]
    fn rules_parse_evaluate_and_print_back() {
        let gh = |a: &str, p: &str| a == "ana" && p == "github";
        let two = |_: &str, c: ChangeKind| if c == ChangeKind::CreateItem { 2 } else { 0 };
        let r = Rule::parse(
            &json!({"all": [{"member_for_hours": 720}, {"any": [{"linked_account": "github"},
                     {"not": {"implemented_actions": {"count": 3, "change": "create_item"}}}]}]}),
            "rule",
        )
        .unwrap();
        assert!(r.holds(&cx(Some(0), &gh, &two)));
        assert!(
            !r.holds(&cx(Some(500 * crate::when::HOUR_MS), &gh, &two)),
            "too recent"
        );
        assert!(!r.holds(&cx(None, &gh, &two)), "not a member");
        let back = Rule::parse(&r.to_json(), "rule").unwrap();
        assert_eq!(back, r);
        let r = Rule::parse(&json!({"member_for_hours": 1.5}), "r").unwrap();
        assert_eq!(r.to_json(), json!({"member_for_hours": 1.5}));
    }

    #[test]
    fn bad_rules_name_their_field() {
        let e = Rule::parse(&json!({"all": [{"member_for_hours": -1}]}), "rule").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rule.all[0].member_for_hours"));
        assert!(Rule::parse(&json!({"a": 1, "b": 2}), "r").is_err());
        assert!(Rule::parse(
            &json!({"implemented_actions": {"count": 1, "change": "fly"}}),
            "r"
        )
        .is_err());
        let mut deep = json!({"member_for_hours": 1});
        for _ in 0..10 {
            deep = json!({"not": deep});
        }
        assert!(Rule::parse(&deep, "r").is_err());
    }

    #[test]
    fn role_refs_take_both_forms() {
        assert_eq!(
            parse_role_ref(&json!("mods"), "r").unwrap(),
            RoleKey::community("mods")
        );
        let k = parse_role_ref(&json!({"role": "moderators", "of": "12"}), "r").unwrap();
        assert_eq!(k.of, Some(ItemId(12)));
        assert_eq!(role_ref_json(&k), json!({"role": "moderators", "of": "12"}));
        assert!(parse_role_ref(&json!({"role": "m", "of": 12}), "r").is_err());
        assert!(parse_role_ref(&json!(3), "r").is_err());
    }
}
