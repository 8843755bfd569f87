//! Templates: ready-made constitutions, applied when a community is founded (`POST
//! /governance {"template"}`) or later through the foundational `apply_template` change.
//!
//! - *default* (no template; Concord's): the founder is the only member, owner and governor,
//!   unconditioned.
//! - `voting_members`: the members own and govern the community together: owners and
//!   governors are the `members` role, acting through a majority vote of the members
//!   (`vote.proposal`, `threshold` 50 unless given, open `duration_hours`, default 168).
//! - `members_and_board` (Concord's worked example): the members own the community through that
//!   vote; an elected `board` role (`board`: its first holders, default the founder or the
//!   actor) governs unconditioned. Changing the board is foundational, so the members vote on
//!   it.
//! - `invite_only`: strangers cannot propose anything (`proposals` off) and any member may add
//!   members (a permission on the community: `add_members` for the `members` role).
//! - `anyone_can_join`: anyone may add themselves as a member (`add_members` for anyone, with a
//!   `self_only` filter).
//!
//! The last two leave owners and governors as they are. A template adds the roles it needs when
//! they are missing and keeps existing permissions.

use serde_json::{json, Map, Value};

use crate::changes::{Ability, ChangeKind};
use crate::conditions::{parse_agents, ConditionSpec};
use crate::constitution::Authority;
use crate::error::GovError;
use crate::ids::{RoleKey, MEMBERS_ROLE};
use crate::permissions::{AppliesTo, PermissionSpec};

/// The built-in templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    VotingMembers,
    MembersAndBoard,
    InviteOnly,
    AnyoneCanJoin,
}

impl Template {
    pub const ALL: [Template; 4] = [
        Template::VotingMembers,
        Template::MembersAndBoard,
        Template::InviteOnly,
        Template::AnyoneCanJoin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Template::VotingMembers => "voting_members",
            Template::MembersAndBoard => "members_and_board",
            Template::InviteOnly => "invite_only",
            Template::AnyoneCanJoin => "anyone_can_join",
        }
    }

    pub fn parse(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A template with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    pub template: Template,
    /// `members_and_board`: the first board members (empty: the actor).
    pub board: Vec<Box<str>>,
    /// The vote's threshold, in percent of agreeing weight (`vote.proposal`), as given.
    pub threshold: Option<serde_json::Number>,
    pub duration_hours: Option<serde_json::Number>,
}

impl TemplateSpec {
    pub(crate) fn parse(p: &Map<String, Value>, path: &str) -> Result<TemplateSpec, GovError> {
        if let Some(k) = p
            .keys()
            .find(|k| !["template", "board", "threshold", "duration_hours"].contains(&k.as_str()))
        {
            return Err(GovError::invalid(
                &format!("{path}.{k}"),
                format!("'{k}' is not a template parameter"),
            ));
        }
        let template = p
            .get("template")
            .and_then(Value::as_str)
            .and_then(Template::parse)
            .ok_or_else(|| {
                GovError::invalid(
                    &format!("{path}.template"),
                    "'template' is voting_members, members_and_board, invite_only or anyone_can_join",
                )
            })?;
        let number = |k: &str| -> Result<Option<serde_json::Number>, GovError> {
            match p.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(Some(n.clone())),
                Some(_) => Err(GovError::invalid(
                    &format!("{path}.{k}"),
                    format!("'{k}' is a number"),
                )),
            }
        };
        let spec = TemplateSpec {
            template,
            board: parse_agents(p.get("board"), &format!("{path}.board"), 1000)?,
            threshold: number("threshold")?,
            duration_hours: number("duration_hours")?,
        };
        // The vote is checked once here, so a bad threshold is a 400 on this field.
        spec.vote().map_err(|e| {
            let field = e
                .field
                .as_deref()
                .and_then(|f| f.rsplit('.').next())
                .map(|f| {
                    if f == "duration_hours" {
                        f
                    } else {
                        "threshold"
                    }
                })
                .unwrap_or("threshold");
            GovError::invalid(&format!("{path}.{field}"), e.message)
        })?;
        Ok(spec)
    }

    pub fn plain(template: Template) -> TemplateSpec {
        TemplateSpec {
            template,
            board: Vec::new(),
            threshold: None,
            duration_hours: None,
        }
    }

    fn vote(&self) -> Result<ConditionSpec, GovError> {
        let mut spec = json!({
            "type": "vote",
            "method": "proposal",
            "params": {"threshold": self.threshold.clone().unwrap_or_else(|| 50.into())},
            "voters": {"roles": [MEMBERS_ROLE]},
        });
        if let Some(h) = &self.duration_hours {
            spec["duration_hours"] = json!(h);
        }
        ConditionSpec::parse(&spec, "vote")
    }

    /// What the template sets, for `actor` applying it.
    pub(crate) fn plan(&self, actor: &str) -> Plan {
        let members = RoleKey::community(MEMBERS_ROLE);
        let vote = self
            .vote()
            .expect("the vote was checked when the template was parsed");
        let voting = Authority {
            actors: Vec::new(),
            roles: vec![members.clone()],
            conditions: vec![vote],
        };
        match self.template {
            Template::VotingMembers => Plan {
                owners: Some(voting.clone()),
                governors: Some(voting),
                ..Plan::default()
            },
            Template::MembersAndBoard => {
                let board_role = RoleKey::community("board");
                let board = if self.board.is_empty() {
                    vec![Box::from(actor)]
                } else {
                    self.board.clone()
                };
                Plan {
                    owners: Some(voting),
                    governors: Some(Authority {
                        actors: Vec::new(),
                        roles: vec![board_role.clone()],
                        conditions: Vec::new(),
                    }),
                    roles: vec![(board_role, board)],
                    ..Plan::default()
                }
            }
            Template::InviteOnly => Plan {
                proposals: Some(false),
                permissions: vec![PermissionSpec {
                    ability: Ability::Change(ChangeKind::AddMembers),
                    allow: true,
                    actors: Vec::new(),
                    roles: vec![members],
                    anyone: false,
                    inverse: false,
                    applies_to: AppliesTo::Object,
                    conditions: Vec::new(),
                }],
                ..Plan::default()
            },
            Template::AnyoneCanJoin => Plan {
                permissions: vec![PermissionSpec {
                    ability: Ability::Change(ChangeKind::AddMembers),
                    allow: true,
                    actors: Vec::new(),
                    roles: Vec::new(),
                    anyone: true,
                    inverse: false,
                    applies_to: AppliesTo::Object,
                    conditions: vec![ConditionSpec::SelfOnly],
                }],
                ..Plan::default()
            },
        }
    }
}

/// What applying a template changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub owners: Option<Authority>,
    pub governors: Option<Authority>,
    pub proposals: Option<bool>,
    /// Assigned roles to create when missing, with their first holders.
    pub roles: Vec<(RoleKey, Vec<Box<str>>)>,
    /// Permissions to add on the community.
    pub permissions: Vec<PermissionSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_plan() {
        let p = |v: Value| TemplateSpec::parse(v.as_object().unwrap(), "params");
        let t = p(json!({"template": "members_and_board", "board": ["ana", "ben"]})).unwrap();
        let plan = t.plan("cy");
        assert_eq!(plan.roles[0].1.len(), 2);
        assert_eq!(plan.governors.unwrap().roles[0].name.as_ref(), "board");
        assert_eq!(plan.owners.unwrap().conditions[0].type_name(), "vote");
        let e = p(json!({"template": "voting_members", "threshold": 150})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("params.threshold"));
        assert!(p(json!({"template": "anarchy"})).is_err());
        assert!(p(json!({"template": "invite_only", "x": 1})).is_err());
        let plan = p(json!({"template": "anyone_can_join"})).unwrap().plan("a");
        assert_eq!(
            plan.permissions[0].conditions,
            vec![ConditionSpec::SelfOnly]
        );
    }
}
