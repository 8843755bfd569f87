//! The authority pipeline (seed: Concord; contract section 3), deciding one check (an ability
//! on a target) for agent A, against the committed state:
//!
//! 1. *Foundational*, when the change is foundational (owners, governors or their conditions,
//!    any `foundational_override` / `governing` switch, `set_proposals`, `apply_template`),
//!    when it adds or removes people from a role owners or governors are given through
//!    (`add_members` / `remove_members` when that role is `members`), or when the target has
//!    `foundational_override` on: only owners decide, subject to the owners' conditions;
//!    anyone else is rejected (`foundational_only`). Nothing else is consulted.
//! 2. *Specific*, when a permission applies (the 9-level walk in `permissions.rs`): the
//!    permissions decide, the governors are not consulted.
//! 3. *Governing*, when the target has `governing` on: a governor acts subject to the
//!    governors' conditions; anyone else's change is a proposal that waits on an approval by
//!    any governor plus the governors' conditions and times out after 168 hours
//!    (`timed_out`); with `proposals` off it is rejected (`not_permitted`).
//! 4. Otherwise rejected (`not_permitted`).
//!
//! Inside a project (section 6), the participation gate (`participation.rs`) stands between
//! steps 1 and 2 for phase-bound abilities on items inside a module: it decides instead of
//! steps 2–3 (`route: participation`, or `specific` when permissions granted), and a refusal
//! carries `would_allow`, the remedies that exist.
//!
//! Within a route, filters among the conditions are decided at once (a failing one rejects,
//! `condition_rejected`, or for permissions means no match); the waiting ones form a *grant*.
//! Grants are OR-ed, the conditions of one grant AND-ed. A request's checks combine like a
//! batch: implemented when every check is, rejected when any is, else waiting on every
//! condition of every waiting check.
//!
//! Each step records what it consulted into the explain trace as it decides: the trace is a
//! by-product of the one decision, for decisions and dry runs alike.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::changes::{Ability, ChangeKind, Params, Request};
use crate::community::{Community, Ctx, Judging, RoleMemo};
use crate::conditions::{
    ConditionSpec, FilterCx, OnTimeout, Origin, Timeout, Who, DEFAULT_WAIT_MS,
};
use crate::ids::{ObjectRef, PermissionId, RoleKey, MEMBERS_ROLE};
use crate::participation::Gate;
use crate::permissions::{Consulted, WalkOutcome};
use crate::scratch::CheckSpec;

/// The route that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    Foundational,
    Specific,
    Governing,
    Participation,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Foundational => "foundational",
            Route::Specific => "specific",
            Route::Governing => "governing",
            Route::Participation => "participation",
        }
    }
}

/// An action's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Implemented,
    Waiting,
    Rejected,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Implemented => "implemented",
            Status::Waiting => "waiting",
            Status::Rejected => "rejected",
        }
    }
}

/// One way to get a check approved: conditions that must all be approved.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub conditions: Vec<(Origin, ConditionSpec)>,
}

/// How one check came out.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckOutcome {
    Implemented,
    Rejected {
        code: &'static str,
        reason: String,
    },
    /// Waiting on any one of these grants.
    Waiting(Vec<Grant>),
}

/// One check's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDecision {
    pub change: usize,
    pub target: ObjectRef,
    pub abilities: Vec<Ability>,
    pub route: Option<Route>,
    pub outcome: CheckOutcome,
    /// The deciding permission level (specific route).
    pub level: Option<u8>,
    /// The permissions that decided (specific route).
    pub matched: Vec<PermissionId>,
    pub reason: String,
    /// What would make a refused check allowed (participation only): `{"kind": "phase",
    /// "phase", "from"}`, `{"kind": "role", "role", "of"}`, `{"kind": "publish", "item"}`.
    pub would_allow: Vec<Value>,
}

/// A step of the explain trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Check {
        index: usize,
        change: usize,
        abilities: Vec<Ability>,
        target: ObjectRef,
    },
    Foundational {
        why: Option<String>,
        owner: bool,
    },
    Specific {
        consulted: Vec<Consulted>,
        outcome: &'static str,
        level: Option<u8>,
    },
    Governing {
        governing: bool,
        governor: bool,
        proposals: bool,
    },
    Filter {
        of: String,
        condition: &'static str,
        passed: bool,
    },
    Participation {
        /// Why the agent passes regardless (moderator, initiator, community-wide
        /// `do_anything`).
        bypass: Option<String>,
        /// How the grant came out: `access_open`, `not_open`, `permissions` (they decide).
        grant: &'static str,
        /// The reason codes of what failed, in order.
        failed: Vec<&'static str>,
        would_allow: Vec<Value>,
    },
    Outcome {
        route: Option<Route>,
        status: Status,
        code: Option<&'static str>,
        reason: String,
    },
}

impl Step {
    pub fn to_json(&self) -> Value {
        match self {
            Step::Check {
                index,
                change,
                abilities,
                target,
            } => json!({"step": "check", "check": index, "change": change,
                "abilities": abilities.iter().map(|a| a.name()).collect::<Vec<_>>(),
                "target": target.to_string()}),
            Step::Foundational { why, owner } => json!({"step": "foundational",
                "applies": why.is_some(), "why": why, "owner": owner}),
            Step::Specific {
                consulted,
                outcome,
                level,
            } => json!({"step": "specific", "outcome": outcome, "level": level,
                "consulted": consulted.iter().map(Consulted::to_json).collect::<Vec<_>>()}),
            Step::Governing {
                governing,
                governor,
                proposals,
            } => json!({"step": "governing", "governing": governing, "governor": governor,
                "proposals": proposals}),
            Step::Filter {
                of,
                condition,
                passed,
            } => json!({"step": "filter", "of": of, "condition": condition, "passed": passed}),
            Step::Participation {
                bypass,
                grant,
                failed,
                would_allow,
            } => json!({"step": "participation", "bypass": bypass, "grant": grant,
                "failed": failed, "would_allow": would_allow}),
            Step::Outcome {
                route,
                status,
                code,
                reason,
            } => json!({"step": "outcome", "route": route.map(Route::name),
                "status": status.name(), "reason_code": code, "reason": reason}),
        }
    }
}

/// A request's decision: a value carrying its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: Status,
    pub route: Option<Route>,
    pub level: Option<u8>,
    pub reason_code: Option<&'static str>,
    pub reason: String,
    /// Every permission that decided a check.
    pub matched: Vec<PermissionId>,
    pub checks: Vec<CheckDecision>,
    pub explain: Vec<Step>,
    /// What would make a refused request allowed (its refused check's remedies).
    pub would_allow: Vec<Value>,
}

impl Decision {
    pub fn explain_json(&self) -> Value {
        json!(self.explain.iter().map(Step::to_json).collect::<Vec<_>>())
    }
}

/// The approval a proposal waits on: any governor, 168 hours, then rejected.
pub(crate) fn proposal_approval() -> ConditionSpec {
    ConditionSpec::Approval {
        approvers: Who::default(),
        rejecters: Who::default(),
        self_approval: false,
        timeout: Some(Timeout {
            after_ms: DEFAULT_WAIT_MS,
            on_timeout: OnTimeout::Reject,
        }),
    }
}

fn foundational_why(
    c: &Community,
    kind: ChangeKind,
    target: &ObjectRef,
    agents: Option<&[Box<str>]>,
    cx: &Ctx<'_>,
) -> Option<String> {
    if kind.is_foundational() {
        return Some(format!("{} is a foundational change", kind.name()));
    }
    if matches!(kind, ChangeKind::AddCondition | ChangeKind::RemoveCondition)
        && matches!(target, ObjectRef::Owners | ObjectRef::Governors)
    {
        return Some(format!("it changes the conditions of the {target}"));
    }
    let role = match (kind, target) {
        (ChangeKind::AddPeopleToRole | ChangeKind::RemovePeopleFromRole, ObjectRef::Role(k)) => {
            Some(k.clone())
        }
        (ChangeKind::AddMembers | ChangeKind::RemoveMembers, _) => {
            Some(RoleKey::community(MEMBERS_ROLE))
        }
        _ => None,
    };
    if let Some(r) = role.filter(|r| c.constitution.authority_role(r)) {
        return Some(format!(
            "owners or governors hold their authority through role '{r}'"
        ));
    }
    // Removing a member takes them out of their roles, those of the owners and governors too.
    if kind == ChangeKind::RemoveMembers {
        let k = &c.constitution;
        for a in agents.unwrap_or(&[]) {
            if let Some(r) = k
                .owners
                .roles
                .iter()
                .chain(&k.governors.roles)
                .find(|r| c.holds_role(a, r, cx))
            {
                return Some(format!(
                    "{a} holds role '{r}', through which owners or governors hold their authority"
                ));
            }
        }
    }
    if c.switches_of(target).foundational_override {
        return Some(format!("{target} has foundational_override on"));
    }
    None
}

/// Splits an authority's conditions: filters decided now, waiting ones into one grant.
fn authority_grant(
    route: Route,
    conditions: &[ConditionSpec],
    origin: impl Fn(u16) -> Origin,
    whose: &str,
    filters: &FilterCx<'_>,
    mut head: Vec<(Origin, ConditionSpec)>,
    trace: &mut Vec<Step>,
) -> (CheckOutcome, String) {
    for (i, spec) in conditions.iter().enumerate() {
        match filters.passes(spec) {
            Some(passed) => {
                trace.push(Step::Filter {
                    of: format!("{whose} condition {i}"),
                    condition: spec.type_name(),
                    passed,
                });
                if !passed {
                    let reason =
                        format!("the {whose} {} condition does not pass", spec.type_name());
                    return (
                        CheckOutcome::Rejected {
                            code: "condition_rejected",
                            reason: reason.clone(),
                        },
                        reason,
                    );
                }
            }
            None => head.push((origin(i as u16), spec.clone())),
        }
    }
    if head.is_empty() {
        (
            CheckOutcome::Implemented,
            format!("through the {} route, unconditioned", route.name()),
        )
    } else {
        let n = head.len();
        (
            CheckOutcome::Waiting(vec![Grant { conditions: head }]),
            format!(
                "through the {} route, waiting on {n} condition(s)",
                route.name()
            ),
        )
    }
}

/// A remedy of `would_allow` as a phrase of the reason sentence.
fn remedy_text(r: &Value) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    match s("kind") {
        "phase" => format!("in phase `{}` from {}", s("phase"), s("from")),
        "role" if s("role") == "participants" => {
            format!("as a participant of project {}", s("of"))
        }
        "role" if s("role") == "members" => "as a member of the community".to_string(),
        "role" => format!("as one of the {}", s("role")),
        "publish" => format!("once item {} is published", s("item")),
        other => other.to_string(),
    }
}

fn ids_text(ids: &[PermissionId]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Community {
    /// The outcome of a specific grant: implemented when one of the matching allows is
    /// unconditioned, else waiting on any of them (each with its conditions, AND-ed).
    fn granted(
        &self,
        actor: &str,
        level: u8,
        by: &[PermissionId],
        community_wide: bool,
        abilities: &[Ability],
    ) -> (CheckOutcome, String) {
        let abilities = abilities
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(" / ");
        let mut grants = Vec::new();
        let mut free = false;
        for id in by {
            let Some(p) = self.permissions.get(*id) else {
                continue;
            };
            let conds: Vec<(Origin, ConditionSpec)> = p
                .spec
                .conditions
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.is_filter())
                .map(|(i, c)| (Origin::Permission(*id, i as u16), c.clone()))
                .collect();
            free |= conds.is_empty();
            grants.push(Grant { conditions: conds });
        }
        let ids = ids_text(by);
        let how = if community_wide {
            format!("community-wide do_anything (permission {ids}) at level {level}")
        } else {
            format!("permission {ids} at level {level}")
        };
        if free {
            (
                CheckOutcome::Implemented,
                format!("{how} grants {abilities} to {actor}"),
            )
        } else {
            let n = grants.len();
            (
                CheckOutcome::Waiting(grants),
                format!("{how} grants {abilities} to {actor} once its conditions are approved ({n} grant(s))"),
            )
        }
    }

    /// Decides one check for `actor` (see the module docs).
    pub(crate) fn decide_check(
        &self,
        actor: &str,
        req: &Request,
        index: usize,
        check: &CheckSpec,
        cx: &Ctx<'_>,
        trace: &mut Vec<Step>,
    ) -> CheckDecision {
        let change = &req.changes[check.change];
        let kind = change.kind;
        trace.push(Step::Check {
            index,
            change: check.change,
            abilities: check.abilities.clone(),
            target: check.target.clone(),
        });
        let meta = check.target.item().and_then(|i| self.items.get(i));
        let history = self
            .tally(actor, kind)
            .map(|t| t.recent.as_slice())
            .unwrap_or(&[]);
        let filters = FilterCx {
            actor,
            change: Some(kind),
            agents: change.agents(),
            item: meta.map(|m| (self.creator(m), m.typ())),
            fields: check.target.item().and_then(|i| cx.fields.fields(i)),
            history,
            now: cx.now,
        };
        let mut decision = CheckDecision {
            change: check.change,
            target: check.target.clone(),
            abilities: check.abilities.clone(),
            route: None,
            outcome: CheckOutcome::Implemented,
            level: None,
            matched: Vec::new(),
            reason: String::new(),
            would_allow: Vec::new(),
        };
        let finish = |mut d: CheckDecision,
                      route: Option<Route>,
                      (outcome, reason): (CheckOutcome, String),
                      trace: &mut Vec<Step>| {
            d.route = route;
            let (status, code) = match &outcome {
                CheckOutcome::Implemented => (Status::Implemented, None),
                CheckOutcome::Waiting(_) => (Status::Waiting, None),
                CheckOutcome::Rejected { code, .. } => (Status::Rejected, Some(*code)),
            };
            trace.push(Step::Outcome {
                route,
                status,
                code,
                reason: reason.clone(),
            });
            d.outcome = outcome;
            d.reason = reason;
            d
        };
        let reject = |code: &'static str, reason: String| {
            (
                CheckOutcome::Rejected {
                    code,
                    reason: reason.clone(),
                },
                reason,
            )
        };

        // 1. Foundational.
        let why = foundational_why(self, kind, &check.target, change.agents(), cx);
        let owner = why.is_some() && self.is_owner(actor, cx);
        trace.push(Step::Foundational {
            why: why.clone(),
            owner,
        });
        if let Some(why) = why {
            let out = if owner {
                authority_grant(
                    Route::Foundational,
                    &self.constitution.owners.conditions,
                    Origin::Owners,
                    "owners'",
                    &filters,
                    Vec::new(),
                    trace,
                )
            } else {
                reject(
                    "foundational_only",
                    format!("only owners decide this ({why}), and {actor} is not an owner"),
                )
            };
            return finish(decision, Some(Route::Foundational), out, trace);
        }

        // 2. Specific.
        let memo = RoleMemo::default();
        let judge = Judging {
            community: self,
            agent: actor,
            accounts: cx.accounts,
            now: cx.now,
            filters,
            memo: &memo,
        };
        let mut consulted = Vec::new();
        let walk = self.permissions.walk(
            actor,
            &check.abilities,
            &self.reach(&check.target),
            &judge,
            Some(&mut consulted),
        );
        let filters = judge.filters;
        let (name, level) = match &walk {
            WalkOutcome::NotApplicable => ("not_applicable", None),
            WalkOutcome::NoMatch => ("no_match", None),
            WalkOutcome::Denied { level, .. } => ("denied", Some(*level)),
            WalkOutcome::Granted { level, .. } => ("granted", Some(*level)),
        };
        trace.push(Step::Specific {
            consulted,
            outcome: name,
            level,
        });
        decision.level = level;

        // Between 1 and 2: the participation gate (phase-bound abilities inside a module).
        let created = match &change.params {
            Params::CreateItem { typ, .. } => Some(*typ),
            _ => None,
        };
        match self.participation_gate(actor, &check.target, &check.abilities, created, cx, &memo) {
            Gate::NotApplicable => {}
            Gate::Bypass(why) => {
                trace.push(Step::Participation {
                    bypass: Some(why.clone()),
                    grant: "bypass",
                    failed: Vec::new(),
                    would_allow: Vec::new(),
                });
                // A community-wide do_anything grant keeps its conditions: the specific
                // route below decides it. Moderators and initiators pass unconditioned.
                if !matches!(
                    walk,
                    WalkOutcome::Granted {
                        community_wide: true,
                        ..
                    }
                ) {
                    let out = (
                        CheckOutcome::Implemented,
                        format!("{why}: participation allows it"),
                    );
                    return finish(decision, Some(Route::Participation), out, trace);
                }
            }
            Gate::Gated {
                access,
                failures,
                would_allow,
            } => {
                let mut failed: Vec<(&'static str, String)> = Vec::new();
                let mut remedies = Vec::new();
                let (grant, granted) = match &walk {
                    WalkOutcome::NotApplicable if access.open => ("access_open", None),
                    WalkOutcome::NotApplicable => {
                        failed.push(("not_open", access.reason(actor)));
                        remedies.push(access.remedy());
                        ("not_open", None)
                    }
                    WalkOutcome::NoMatch => {
                        failed.push((
                            "not_permitted",
                            format!(
                                "permissions decide this on {}, and none matches {actor}",
                                check.target
                            ),
                        ));
                        ("permissions", None)
                    }
                    WalkOutcome::Denied { level, by } => {
                        decision.matched = by.clone();
                        failed.push((
                            "denied",
                            format!(
                                "permission(s) {} deny this to {actor} at level {level}",
                                ids_text(by)
                            ),
                        ));
                        ("permissions", None)
                    }
                    WalkOutcome::Granted {
                        level,
                        by,
                        community_wide,
                    } => {
                        decision.matched = by.clone();
                        (
                            "permissions",
                            Some(self.granted(
                                actor,
                                *level,
                                by,
                                *community_wide,
                                &check.abilities,
                            )),
                        )
                    }
                };
                failed.extend(failures);
                remedies.extend(would_allow);
                trace.push(Step::Participation {
                    bypass: None,
                    grant,
                    failed: failed.iter().map(|f| f.0).collect(),
                    would_allow: remedies.clone(),
                });
                if let Some((code, _)) = failed.first() {
                    let mut reason = failed
                        .iter()
                        .map(|f| f.1.as_str())
                        .collect::<Vec<_>>()
                        .join("; ");
                    let ways: Vec<String> = remedies.iter().map(remedy_text).collect();
                    if !ways.is_empty() {
                        reason.push_str(&format!("; it would be allowed {}", ways.join(", ")));
                    }
                    decision.would_allow = remedies;
                    let out = reject(code, reason);
                    return finish(decision, Some(Route::Participation), out, trace);
                }
                let (route, out) = match granted {
                    Some(out) => (Route::Specific, out),
                    None => (
                        Route::Participation,
                        (
                            CheckOutcome::Implemented,
                            "the project is open to them, the phase allows it, and the structure is live".to_string(),
                        ),
                    ),
                };
                return finish(decision, Some(route), out, trace);
            }
        }

        // Only the sentences of the specific route name the abilities.
        let abilities = || {
            check
                .abilities
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        match walk {
            WalkOutcome::NotApplicable => {}
            WalkOutcome::NoMatch => {
                let abilities = abilities();
                let out = reject(
                    "not_permitted",
                    format!(
                        "permissions decide {abilities} on {}, and none matches {actor}",
                        check.target
                    ),
                );
                return finish(decision, Some(Route::Specific), out, trace);
            }
            WalkOutcome::Denied { level, by } => {
                let ids = by
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                decision.matched = by;
                let out = reject(
                    "denied",
                    format!(
                        "permission {ids} denies {} to {actor} at level {level}",
                        abilities()
                    ),
                );
                return finish(decision, Some(Route::Specific), out, trace);
            }
            WalkOutcome::Granted {
                level,
                by,
                community_wide,
            } => {
                decision.matched = by.clone();
                let out = self.granted(actor, level, &by, community_wide, &check.abilities);
                return finish(decision, Some(Route::Specific), out, trace);
            }
        }

        // 3. Governing.
        let switches = self.switches_of(&check.target);
        let governor = switches.governing && self.is_governor(actor, cx);
        let proposals = self.constitution.proposals;
        trace.push(Step::Governing {
            governing: switches.governing,
            governor,
            proposals,
        });
        if switches.governing {
            let gov = &self.constitution.governors.conditions;
            let out = if governor {
                authority_grant(
                    Route::Governing,
                    gov,
                    Origin::Governors,
                    "governors'",
                    &filters,
                    Vec::new(),
                    trace,
                )
            } else if proposals {
                let (outcome, _) = authority_grant(
                    Route::Governing,
                    gov,
                    Origin::Governors,
                    "governors'",
                    &filters,
                    vec![(Origin::Proposal, proposal_approval())],
                    trace,
                );
                let reason = match &outcome {
                    CheckOutcome::Rejected { reason, .. } => reason.clone(),
                    _ => format!(
                        "{actor} is not a governor: a proposal, waiting on a governor's approval"
                    ),
                };
                (outcome, reason)
            } else {
                reject(
                    "not_permitted",
                    format!("{actor} is not a governor, no permission covers this, and proposals are off"),
                )
            };
            return finish(decision, Some(Route::Governing), out, trace);
        }

        // 4. Nobody may.
        let abilities = abilities();
        let out = reject(
            "not_permitted",
            format!(
                "no permission covers {abilities} on {}, and governing is off there",
                check.target
            ),
        );
        finish(decision, None, out, trace)
    }
}

/// Combines the checks of one request into the request's decision.
pub(crate) fn combine(checks: Vec<CheckDecision>, explain: Vec<Step>) -> Decision {
    let matched: Vec<PermissionId> = {
        let mut m: Vec<PermissionId> = checks
            .iter()
            .flat_map(|c| c.matched.iter().copied())
            .collect();
        m.sort();
        m.dedup();
        m
    };
    if let Some(r) = checks
        .iter()
        .find(|c| matches!(c.outcome, CheckOutcome::Rejected { .. }))
    {
        let CheckOutcome::Rejected { code, reason } = &r.outcome else {
            unreachable!("found as rejected")
        };
        return Decision {
            would_allow: r.would_allow.clone(),
            status: Status::Rejected,
            route: r.route,
            level: r.level,
            reason_code: Some(code),
            reason: reason.clone(),
            matched,
            explain,
            checks,
        };
    }
    let route = [
        Route::Foundational,
        Route::Specific,
        Route::Participation,
        Route::Governing,
    ]
    .into_iter()
    .find(|r| checks.iter().any(|c| c.route == Some(*r)));
    let level = checks.iter().filter_map(|c| c.level).min();
    let waiting = checks
        .iter()
        .any(|c| matches!(c.outcome, CheckOutcome::Waiting(_)));
    let reason = if checks.len() == 1 {
        checks[0].reason.clone()
    } else {
        checks
            .iter()
            .map(|c| c.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    Decision {
        would_allow: Vec::new(),
        status: if waiting {
            Status::Waiting
        } else {
            Status::Implemented
        },
        route,
        level,
        reason_code: None,
        reason,
        matched,
        explain,
        checks,
    }
}
