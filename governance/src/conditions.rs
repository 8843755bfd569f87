//! Conditions (section 7 of the contract): what a grant of authority waits on, or filters by.
//!
//! *Waiting* conditions make an action wait: `approval` (one approver approves; one rejecter
//! rejects), `vote` (a real `vote.<method>` process; approved when it passes: `passed` for
//! proposal, consent and count, else its winner being the first of its `options`) and
//! `consensus` (responses `support`, `support_with_reservations`, `stand_aside`, `block`,
//! changeable until resolved; loose: approved iff no block and at least one support (with or
//! without reservations); strict: and no participant left without a response). *Filters* are
//! decided at once and never wait: `self_only` (the change's `agents` name only the actor),
//! `creator_only` (the actor created the target item), `field_matches` (a field of the target
//! item equals a value), `target_type` (the target item's type is one of `types`) and
//! `rate_limit` (the actor had fewer than `count` actions of this change implemented in the
//! last `per_hours`).
//!
//! Who may answer: the people a condition names for that answer (`approvers`, `rejecters`,
//! `participants`, `resolvers`); when it names nobody, the owners for the owners' conditions and
//! the governors otherwise. With `self_approval: false` (the default) the action's own actor is
//! never among them: not as approver, rejecter or resolver, and not as a consensus participant
//! (so the actor's own support cannot carry a loose consensus, nor their silence block a strict
//! one).
//!
//! Every waiting condition but a vote may carry `timeout_hours` and `on_timeout` (`reject`, the
//! default, or `approve`). A vote has `duration_hours` instead (default 168, Concord's voting
//! period, fractions allowed): it opens when the action starts waiting and closes that much
//! later; `closing_at`, `eligible` (the voters are frozen from `voters` when the vote opens)
//! and `timeout_hours` are refused on a vote condition. Answers are decided in
//! `community.rs`; this module holds the specs, their JSON forms and the filter rules.

use std::collections::BTreeMap;

use agora_plugins::vote::{Decision, Outcome, VoteSpec, METHODS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::changes::ChangeKind;
use crate::error::GovError;
use crate::ids::{check_agent_id, ActionId, ItemId, PermissionId, RoleKey};
use crate::item_types::{Field, Fields, ItemType};
use crate::roles::{hours_json, parse_role_refs, role_ref_json};
use crate::when::{hours_field, Millis, HOUR_MS};

/// Concord's default voting period, and the proposal timeout of the governing route.
pub const DEFAULT_WAIT_MS: Millis = 168 * HOUR_MS;
/// Concord's default minimum duration of a consensus.
pub const DEFAULT_CONSENSUS_MINIMUM_MS: Millis = 48 * HOUR_MS;
/// The most actions a `rate_limit` may count (the core keeps that many timestamps per agent and
/// change type).
pub const MAX_RATE_COUNT: u32 = 100;

/// People a condition names: agents and roles. Empty: the default answerers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    pub actors: Vec<Box<str>>,
    pub roles: Vec<RoleKey>,
}

impl Who {
    pub fn is_empty(&self) -> bool {
        self.actors.is_empty() && self.roles.is_empty()
    }

    pub(crate) fn parse(v: Option<&Value>, path: &str) -> Result<Who, GovError> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(Who::default());
        };
        let o = v
            .as_object()
            .ok_or_else(|| GovError::invalid(path, "{\"actors\": [..], \"roles\": [..]}"))?;
        if let Some(k) = o.keys().find(|k| *k != "actors" && *k != "roles") {
            return Err(GovError::invalid(
                &format!("{path}.{k}"),
                "only 'actors' and 'roles'",
            ));
        }
        Ok(Who {
            actors: parse_agents(o.get("actors"), &format!("{path}.actors"), 1000)?,
            roles: parse_role_refs(o.get("roles"), &format!("{path}.roles"))?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "actors": self.actors.iter().map(|a| &**a).collect::<Vec<_>>(),
            "roles": self.roles.iter().map(role_ref_json).collect::<Vec<_>>(),
        })
    }
}

/// Reads an optional list of agent ids (at most `max`), without duplicates, in given order.
pub(crate) fn parse_agents(
    v: Option<&Value>,
    path: &str,
    max: usize,
) -> Result<Vec<Box<str>>, GovError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .ok_or_else(|| GovError::invalid(path, "a list of agent ids"))?;
    if items.len() > max {
        return Err(GovError::invalid(path, format!("at most {max} agents")));
    }
    let mut out: Vec<Box<str>> = Vec::with_capacity(items.len());
    for (i, a) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let s = a
            .as_str()
            .ok_or_else(|| GovError::invalid(&at, "an agent id (a string)"))?;
        check_agent_id(s, &at)?;
        if !out.iter().any(|x| &**x == s) {
            out.push(s.into());
        }
    }
    Ok(out)
}

/// What happens when a waiting condition's timeout fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnTimeout {
    Reject,
    Approve,
}

/// A waiting condition's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    pub after_ms: Millis,
    pub on_timeout: OnTimeout,
}

/// A condition as written in a grant (`add_permission`, `set_owner_condition`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConditionSpec {
    Approval {
        approvers: Who,
        rejecters: Who,
        self_approval: bool,
        timeout: Option<Timeout>,
    },
    Vote {
        method: String,
        params: Value,
        voters: Who,
        duration_ms: Millis,
    },
    Consensus {
        participants: Who,
        resolvers: Who,
        minimum_ms: Millis,
        strict: bool,
        self_approval: bool,
        timeout: Option<Timeout>,
    },
    SelfOnly,
    CreatorOnly,
    FieldMatches {
        field: Field,
        value: Value,
    },
    TargetType {
        types: Vec<ItemType>,
    },
    RateLimit {
        count: u32,
        per_ms: Millis,
    },
}

fn only_keys(o: &Map<String, Value>, keys: &[&str], path: &str) -> Result<(), GovError> {
    match o.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(GovError::invalid(
            &format!("{path}.{k}"),
            format!("'{k}' is not a parameter of this condition"),
        )),
        None => Ok(()),
    }
}

fn flag(o: &Map<String, Value>, key: &str, path: &str, default: bool) -> Result<bool, GovError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(GovError::invalid(
            &format!("{path}.{key}"),
            format!("'{key}' must be true or false"),
        )),
    }
}

fn timeout(o: &Map<String, Value>, path: &str) -> Result<Option<Timeout>, GovError> {
    let after = hours_field(o, "timeout_hours", &format!("{path}.timeout_hours"), false)?;
    let on_timeout = match o.get("on_timeout") {
        None | Some(Value::Null) => OnTimeout::Reject,
        Some(Value::String(s)) if s == "reject" => OnTimeout::Reject,
        Some(Value::String(s)) if s == "approve" => OnTimeout::Approve,
        Some(_) => {
            return Err(GovError::invalid(
                &format!("{path}.on_timeout"),
                "'on_timeout' is 'reject' or 'approve'",
            ))
        }
    };
    match after {
        Some(after_ms) => Ok(Some(Timeout {
            after_ms,
            on_timeout,
        })),
        None if o.get("on_timeout").is_some_and(|v| !v.is_null()) => Err(GovError::invalid(
            &format!("{path}.on_timeout"),
            "'on_timeout' needs 'timeout_hours'",
        )),
        None => Ok(None),
    }
}

impl ConditionSpec {
    /// Reads a condition spec. `path` is the spec's field path, for errors.
    pub fn parse(v: &Value, path: &str) -> Result<ConditionSpec, GovError> {
        let o = v
            .as_object()
            .ok_or_else(|| GovError::invalid(path, "a condition is an object with a 'type'"))?;
        let typ = o.get("type").and_then(Value::as_str).ok_or_else(|| {
            GovError::invalid(&format!("{path}.type"), "a condition needs a 'type'")
        })?;
        let timeout_keys = ["type", "timeout_hours", "on_timeout"];
        Ok(match typ {
            "approval" => {
                only_keys(
                    o,
                    &[
                        &timeout_keys[..],
                        &["approvers", "rejecters", "self_approval"],
                    ]
                    .concat(),
                    path,
                )?;
                ConditionSpec::Approval {
                    approvers: Who::parse(o.get("approvers"), &format!("{path}.approvers"))?,
                    rejecters: Who::parse(o.get("rejecters"), &format!("{path}.rejecters"))?,
                    self_approval: flag(o, "self_approval", path, false)?,
                    timeout: timeout(o, path)?,
                }
            }
            "vote" => {
                for refused in ["timeout_hours", "on_timeout", "closing_at"] {
                    if o.contains_key(refused) {
                        return Err(GovError::invalid(
                            &format!("{path}.{refused}"),
                            "a vote condition closes 'duration_hours' after it opens; \
                             it takes no 'timeout_hours', 'on_timeout' or 'closing_at'",
                        ));
                    }
                }
                only_keys(
                    o,
                    &["type", "method", "params", "voters", "duration_hours"],
                    path,
                )?;
                let method = o
                    .get("method")
                    .and_then(Value::as_str)
                    .filter(|m| METHODS.contains(m))
                    .ok_or_else(|| {
                        GovError::invalid(
                            &format!("{path}.method"),
                            format!("'method' is one of {}", METHODS.join(", ")),
                        )
                    })?;
                let params = match o.get("params") {
                    None | Some(Value::Null) => Value::Object(Map::new()),
                    Some(Value::Object(p)) => Value::Object(p.clone()),
                    Some(_) => {
                        return Err(GovError::invalid(
                            &format!("{path}.params"),
                            "'params' is an object of vote parameters",
                        ))
                    }
                };
                for refused in ["closing_at", "eligible"] {
                    if params.get(refused).is_some() {
                        return Err(GovError::invalid(
                            &format!("{path}.params.{refused}"),
                            "a vote condition's vote closes 'duration_hours' after it opens and \
                             its voters come from 'voters'",
                        ));
                    }
                }
                // The vote core checks the method's own parameters; the closing time and the
                // voters are filled in when the vote opens, so stand-ins are given here.
                let mut probe = params.as_object().cloned().unwrap_or_default();
                probe.insert("closing_at".into(), json!("2000-01-01T00:00:00Z"));
                probe.insert("eligible".into(), json!(["voter"]));
                if let Err(e) = VoteSpec::parse(method, &Value::Object(probe)) {
                    let field = if e.field.is_empty() {
                        format!("{path}.params")
                    } else {
                        format!("{path}.params.{}", e.field)
                    };
                    return Err(GovError::invalid(&field, e.message));
                }
                ConditionSpec::Vote {
                    method: method.to_string(),
                    params,
                    voters: Who::parse(o.get("voters"), &format!("{path}.voters"))?,
                    duration_ms: hours_field(
                        o,
                        "duration_hours",
                        &format!("{path}.duration_hours"),
                        false,
                    )?
                    .unwrap_or(DEFAULT_WAIT_MS),
                }
            }
            "consensus" => {
                only_keys(
                    o,
                    &[
                        &timeout_keys[..],
                        &[
                            "participants",
                            "resolvers",
                            "minimum_hours",
                            "strict",
                            "self_approval",
                        ],
                    ]
                    .concat(),
                    path,
                )?;
                ConditionSpec::Consensus {
                    participants: Who::parse(
                        o.get("participants"),
                        &format!("{path}.participants"),
                    )?,
                    resolvers: Who::parse(o.get("resolvers"), &format!("{path}.resolvers"))?,
                    minimum_ms: hours_field(
                        o,
                        "minimum_hours",
                        &format!("{path}.minimum_hours"),
                        true,
                    )?
                    .unwrap_or(DEFAULT_CONSENSUS_MINIMUM_MS),
                    strict: flag(o, "strict", path, false)?,
                    self_approval: flag(o, "self_approval", path, false)?,
                    timeout: timeout(o, path)?,
                }
            }
            "self_only" => {
                only_keys(o, &["type"], path)?;
                ConditionSpec::SelfOnly
            }
            "creator_only" => {
                only_keys(o, &["type"], path)?;
                ConditionSpec::CreatorOnly
            }
            "field_matches" => {
                only_keys(o, &["type", "field", "value"], path)?;
                let field = o
                    .get("field")
                    .and_then(Value::as_str)
                    .and_then(Field::parse)
                    .ok_or_else(|| {
                        GovError::invalid(&format!("{path}.field"), "a field of an item type")
                    })?;
                let value = o.get("value").cloned().ok_or_else(|| {
                    GovError::invalid(&format!("{path}.value"), "the value to match")
                })?;
                if agora_plugins::vote::commitment::canonical_json(&value).len() > 1000 {
                    return Err(GovError::invalid(
                        &format!("{path}.value"),
                        "at most 1000 bytes of JSON",
                    ));
                }
                ConditionSpec::FieldMatches { field, value }
            }
            "target_type" => {
                only_keys(o, &["type", "types"], path)?;
                let at = format!("{path}.types");
                let list = o
                    .get("types")
                    .and_then(Value::as_array)
                    .filter(|a| !a.is_empty() && a.len() <= 16)
                    .ok_or_else(|| GovError::invalid(&at, "a non-empty list of item types"))?;
                let mut types = Vec::new();
                for (i, t) in list.iter().enumerate() {
                    let typ = t
                        .as_str()
                        .and_then(ItemType::parse)
                        .ok_or_else(|| GovError::invalid(&format!("{at}[{i}]"), "an item type"))?;
                    if !types.contains(&typ) {
                        types.push(typ);
                    }
                }
                ConditionSpec::TargetType { types }
            }
            "rate_limit" => {
                only_keys(o, &["type", "count", "per_hours"], path)?;
                let count = o
                    .get("count")
                    .and_then(Value::as_u64)
                    .filter(|c| (1..=u64::from(MAX_RATE_COUNT)).contains(c))
                    .ok_or_else(|| {
                        GovError::invalid(
                            &format!("{path}.count"),
                            format!("'count' is an integer from 1 to {MAX_RATE_COUNT}"),
                        )
                    })? as u32;
                let per_ms = hours_field(o, "per_hours", &format!("{path}.per_hours"), false)?
                    .ok_or_else(|| {
                        GovError::invalid(&format!("{path}.per_hours"), "a number of hours")
                    })?;
                ConditionSpec::RateLimit { count, per_ms }
            }
            other => {
                return Err(GovError::invalid(
                    &format!("{path}.type"),
                    format!(
                        "'{other}' is not a condition type (approval, vote, consensus, self_only, \
                         creator_only, field_matches, target_type, rate_limit)"
                    ),
                ))
            }
        })
    }

    /// Reads `"condition": spec` and/or `"conditions": [spec, ..]` from a params object.
    pub(crate) fn parse_list(
        o: &Map<String, Value>,
        path: &str,
    ) -> Result<Vec<ConditionSpec>, GovError> {
        let mut out = Vec::new();
        if let Some(v) = o.get("condition").filter(|v| !v.is_null()) {
            out.push(Self::parse(v, &format!("{path}.condition"))?);
        }
        if let Some(v) = o.get("conditions").filter(|v| !v.is_null()) {
            let list = v.as_array().ok_or_else(|| {
                GovError::invalid(&format!("{path}.conditions"), "a list of conditions")
            })?;
            for (i, c) in list.iter().enumerate() {
                out.push(Self::parse(c, &format!("{path}.conditions[{i}]"))?);
            }
        }
        if out.len() > 16 {
            return Err(GovError::invalid(
                &format!("{path}.conditions"),
                "at most 16 conditions on one grant",
            ));
        }
        Ok(out)
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ConditionSpec::Approval { .. } => "approval",
            ConditionSpec::Vote { .. } => "vote",
            ConditionSpec::Consensus { .. } => "consensus",
            ConditionSpec::SelfOnly => "self_only",
            ConditionSpec::CreatorOnly => "creator_only",
            ConditionSpec::FieldMatches { .. } => "field_matches",
            ConditionSpec::TargetType { .. } => "target_type",
            ConditionSpec::RateLimit { .. } => "rate_limit",
        }
    }

    /// Filters are decided at once; the other conditions make an action wait.
    pub fn is_filter(&self) -> bool {
        !matches!(
            self,
            ConditionSpec::Approval { .. }
                | ConditionSpec::Vote { .. }
                | ConditionSpec::Consensus { .. }
        )
    }

    /// Filters a read can be decided by: they need neither a change nor the item's fields.
    pub fn is_read_filter(&self) -> bool {
        matches!(
            self,
            ConditionSpec::CreatorOnly | ConditionSpec::TargetType { .. }
        )
    }

    pub fn timeout(&self) -> Option<Timeout> {
        match self {
            ConditionSpec::Approval { timeout, .. } | ConditionSpec::Consensus { timeout, .. } => {
                *timeout
            }
            _ => None,
        }
    }

    fn put_timeout(out: &mut Value, t: &Option<Timeout>) {
        if let (Some(t), Some(o)) = (t, out.as_object_mut()) {
            o.insert("timeout_hours".into(), hours_json(t.after_ms));
            o.insert(
                "on_timeout".into(),
                json!(match t.on_timeout {
                    OnTimeout::Reject => "reject",
                    OnTimeout::Approve => "approve",
                }),
            );
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            ConditionSpec::Approval {
                approvers,
                rejecters,
                self_approval,
                timeout,
            } => {
                let mut v = json!({"type": "approval", "approvers": approvers.to_json(),
                    "rejecters": rejecters.to_json(), "self_approval": self_approval});
                Self::put_timeout(&mut v, timeout);
                v
            }
            ConditionSpec::Vote {
                method,
                params,
                voters,
                duration_ms,
            } => json!({"type": "vote", "method": method, "params": params,
                "voters": voters.to_json(), "duration_hours": hours_json(*duration_ms)}),
            ConditionSpec::Consensus {
                participants,
                resolvers,
                minimum_ms,
                strict,
                self_approval,
                timeout,
            } => {
                let mut v = json!({"type": "consensus", "participants": participants.to_json(),
                    "resolvers": resolvers.to_json(), "minimum_hours": hours_json(*minimum_ms),
                    "strict": strict, "self_approval": self_approval});
                Self::put_timeout(&mut v, timeout);
                v
            }
            ConditionSpec::SelfOnly => json!({"type": "self_only"}),
            ConditionSpec::CreatorOnly => json!({"type": "creator_only"}),
            ConditionSpec::FieldMatches { field, value } => {
                json!({"type": "field_matches", "field": field.name(), "value": value})
            }
            ConditionSpec::TargetType { types } => json!({"type": "target_type",
                "types": types.iter().map(|t| t.name()).collect::<Vec<_>>()}),
            ConditionSpec::RateLimit { count, per_ms } => {
                json!({"type": "rate_limit", "count": count, "per_hours": hours_json(*per_ms)})
            }
        }
    }

    /// Roles the spec names (for the "role in use" invariant).
    pub(crate) fn roles(&self) -> Vec<&RoleKey> {
        match self {
            ConditionSpec::Approval {
                approvers,
                rejecters,
                ..
            } => approvers.roles.iter().chain(&rejecters.roles).collect(),
            ConditionSpec::Vote { voters, .. } => voters.roles.iter().collect(),
            ConditionSpec::Consensus {
                participants,
                resolvers,
                ..
            } => participants.roles.iter().chain(&resolvers.roles).collect(),
            _ => Vec::new(),
        }
    }
}

/// What a filter is decided on: the acting agent, the change and its target.
pub(crate) struct FilterCx<'a> {
    pub actor: &'a str,
    /// `None` for reads.
    pub change: Option<ChangeKind>,
    /// The change's `agents` parameter, when it has one.
    pub agents: Option<&'a [Box<str>]>,
    /// The target item's creator and type, when the target is an item.
    pub item: Option<(&'a str, ItemType)>,
    /// The target item's current fields, when the caller supplied them.
    pub fields: Option<&'a Fields>,
    /// Timestamps of the actor's implemented actions of this change type, oldest first.
    pub history: &'a [Millis],
    pub now: Millis,
}

impl FilterCx<'_> {
    /// Whether filter `spec` passes; `None` when `spec` is not a filter.
    pub fn passes(&self, spec: &ConditionSpec) -> Option<bool> {
        Some(match spec {
            ConditionSpec::SelfOnly => self
                .agents
                .is_some_and(|a| !a.is_empty() && a.iter().all(|x| &**x == self.actor)),
            ConditionSpec::CreatorOnly => self.item.is_some_and(|(c, _)| c == self.actor),
            ConditionSpec::FieldMatches { field, value } => self
                .fields
                .and_then(|f| f.get(field.name()))
                .is_some_and(|v| v == value),
            ConditionSpec::TargetType { types } => {
                self.item.is_some_and(|(_, t)| types.contains(&t))
            }
            ConditionSpec::RateLimit { count, per_ms } => {
                self.change.is_some() && {
                    let since = self.now.saturating_sub(*per_ms);
                    let recent = self.history.iter().filter(|t| **t > since).count();
                    recent < *count as usize
                }
            }
            _ => return None,
        })
    }
}

/// Where a condition instance comes from: which grant it belongs to. The default answerers
/// follow from it (owners for `Owners`, governors otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Origin {
    /// The owners' condition at this index.
    Owners(u16),
    /// The governors' condition at this index.
    Governors(u16),
    /// A proposal's approval by any governor (the governing route for a non-governor).
    Proposal,
    /// A permission's condition at this index.
    Permission(PermissionId, u16),
}

/// A condition instance's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CondStatus {
    Waiting,
    Approved,
    Rejected,
    /// Its action was resolved by other conditions first.
    Closed,
}

impl CondStatus {
    pub fn name(self) -> &'static str {
        match self {
            CondStatus::Waiting => "waiting",
            CondStatus::Approved => "approved",
            CondStatus::Rejected => "rejected",
            CondStatus::Closed => "closed",
        }
    }
}

/// A consensus response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Support,
    SupportWithReservations,
    StandAside,
    Block,
}

impl Response {
    pub const ALL: [Response; 4] = [
        Response::Support,
        Response::SupportWithReservations,
        Response::StandAside,
        Response::Block,
    ];

    pub fn parse(s: &str) -> Option<Response> {
        Some(match s {
            "support" => Response::Support,
            "support_with_reservations" => Response::SupportWithReservations,
            "stand_aside" => Response::StandAside,
            "block" => Response::Block,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Response::Support => "support",
            Response::SupportWithReservations => "support_with_reservations",
            Response::StandAside => "stand_aside",
            Response::Block => "block",
        }
    }
}

/// Who or what resolved a condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResolvedBy {
    Agent(Box<str>),
    Timeout,
    Vote,
    /// Its action was resolved through another condition.
    Action,
}

/// One condition of a waiting action, with its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionState {
    pub action: ActionId,
    pub origin: Origin,
    pub spec: ConditionSpec,
    pub status: CondStatus,
    pub started_at: Millis,
    /// Consensus responses, by agent.
    pub responses: BTreeMap<Box<str>, Response>,
    pub resolved_by: Option<ResolvedBy>,
    pub resolved_at: Option<Millis>,
    /// When its timeout fires (approval, consensus, a proposal).
    pub deadline: Option<Millis>,
    /// When its vote closes (vote conditions).
    pub closes_at: Option<Millis>,
    /// The vote process serving it, once the caller has opened it.
    pub process: Option<String>,
}

/// A closed vote's result, as the vote core reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteResult {
    /// Proposal, consent and count.
    Passed(bool),
    /// Single-winner methods (`None`: a tie, an empty vote, a missed quorum).
    Winner(Option<String>),
    /// Multi-seat ranked votes, in order of election.
    Winners(Vec<String>),
}

impl VoteResult {
    pub fn from_outcome(o: &Outcome) -> VoteResult {
        match &o.decision {
            Decision::Passed(p) => VoteResult::Passed(*p),
            Decision::Winner(w) => VoteResult::Winner(w.clone()),
            Decision::Winners(w) => VoteResult::Winners(w.clone()),
        }
    }

    /// Reads an outcome in its JSON form (`{"passed": ..}`, `{"winner": ..}` or
    /// `{"winners": [..]}`), as the vote process reports it.
    pub fn from_json(v: &Value) -> Option<VoteResult> {
        if let Some(p) = v.get("passed") {
            return p.as_bool().map(VoteResult::Passed);
        }
        if let Some(w) = v.get("winner") {
            return match w {
                Value::Null => Some(VoteResult::Winner(None)),
                Value::String(s) => Some(VoteResult::Winner(Some(s.clone()))),
                _ => None,
            };
        }
        let ws = v.get("winners")?.as_array()?;
        ws.iter()
            .map(|w| w.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(VoteResult::Winners)
    }

    /// Whether this result approves a vote condition with these vote `params`: `passed` for
    /// proposal, consent and count; otherwise the (first) winner is the first of `options`.
    pub fn approves(&self, params: &Value) -> bool {
        let first = params
            .get("options")
            .and_then(Value::as_array)
            .and_then(|o| o.first())
            .and_then(Value::as_str);
        match self {
            VoteResult::Passed(p) => *p,
            VoteResult::Winner(w) => w.is_some() && w.as_deref() == first,
            VoteResult::Winners(ws) => !ws.is_empty() && ws.first().map(String::as_str) == first,
        }
    }
}

/// The item a condition's vote is about, if its params name one (section 6).
pub(crate) fn vote_item(params: &Value) -> Option<ItemId> {
    params
        .get("item")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .map(ItemId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_and_prints_back() {
        for spec in [
            json!({"type": "approval", "approvers": {"actors": ["a"], "roles": ["mods"]},
                   "rejecters": {"actors": [], "roles": []}, "self_approval": true,
                   "timeout_hours": 2.5, "on_timeout": "approve"}),
            json!({"type": "vote", "method": "proposal", "params": {"threshold": 60},
                   "voters": {"actors": [], "roles": ["members"]}, "duration_hours": 0.5}),
            json!({"type": "consensus", "participants": {"actors": ["a", "b"], "roles": []},
                   "resolvers": {"actors": ["a"], "roles": []}, "minimum_hours": 48,
                   "strict": true, "self_approval": false, "timeout_hours": 100,
                   "on_timeout": "reject"}),
            json!({"type": "self_only"}),
            json!({"type": "creator_only"}),
            json!({"type": "field_matches", "field": "name", "value": "x"}),
            json!({"type": "target_type", "types": ["document", "idea"]}),
            json!({"type": "rate_limit", "count": 3, "per_hours": 24}),
        ] {
            let parsed = ConditionSpec::parse(&spec, "c").unwrap();
            assert_eq!(parsed.to_json(), spec);
            assert_eq!(
                ConditionSpec::parse(&parsed.to_json(), "c").unwrap(),
                parsed
            );
        }
    }

    #[test]
    fn vote_conditions_refuse_their_own_deadline() {
        for (spec, field) in [
            (
                json!({"type": "vote", "method": "proposal", "timeout_hours": 3}),
                "c.timeout_hours",
            ),
            (
                json!({"type": "vote", "method": "proposal", "params": {"closing_at": "2030-01-01T00:00:00Z"}}),
                "c.params.closing_at",
            ),
            (
                json!({"type": "vote", "method": "choice", "params": {"options": ["a"], "seats": 2}}),
                "c.params.seats",
            ),
            (json!({"type": "vote", "method": "fly"}), "c.method"),
            (
                json!({"type": "vote", "method": "choice"}),
                "c.params.options",
            ),
        ] {
            let e = ConditionSpec::parse(&spec, "c").unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{spec}: {e:?}");
            assert_eq!(e.status.http(), 400);
        }
        let v = ConditionSpec::parse(&json!({"type": "vote", "method": "consent"}), "c").unwrap();
        assert!(
            matches!(v, ConditionSpec::Vote { duration_ms, .. } if duration_ms == DEFAULT_WAIT_MS)
        );
    }

    #[test]
    fn filters_decide_at_once() {
        let ana: Vec<Box<str>> = vec!["ana".into()];
        let both: Vec<Box<str>> = vec!["ana".into(), "ben".into()];
        let fields = json!({"name": "x"}).as_object().unwrap().clone();
        let history = [10, 20, 30];
        let cx = |agents: Option<&'static [Box<str>]>| FilterCx {
            actor: "ana",
            change: Some(ChangeKind::AddMembers),
            agents,
            item: Some(("ana", ItemType::Document)),
            fields: None,
            history: &[],
            now: 0,
        };
        let leaked_ana: &'static [Box<str>] = Box::leak(ana.into_boxed_slice());
        let leaked_both: &'static [Box<str>] = Box::leak(both.into_boxed_slice());
        assert_eq!(
            cx(Some(leaked_ana)).passes(&ConditionSpec::SelfOnly),
            Some(true)
        );
        assert_eq!(
            cx(Some(leaked_both)).passes(&ConditionSpec::SelfOnly),
            Some(false)
        );
        assert_eq!(cx(None).passes(&ConditionSpec::SelfOnly), Some(false));
        assert_eq!(cx(None).passes(&ConditionSpec::CreatorOnly), Some(true));
        let mut c = cx(None);
        c.fields = Some(&fields);
        let fm = |v: Value| ConditionSpec::FieldMatches {
            field: Field::Name,
            value: v,
        };
        assert_eq!(c.passes(&fm(json!("x"))), Some(true));
        assert_eq!(c.passes(&fm(json!("y"))), Some(false));
        c.history = &history;
        c.now = 35;
        let rl = |count| ConditionSpec::RateLimit { count, per_ms: 20 };
        assert_eq!(
            c.passes(&rl(2)),
            Some(false),
            "20 and 30 are within 20 ms of 35"
        );
        assert_eq!(c.passes(&rl(3)), Some(true));
        assert_eq!(
            c.passes(&ConditionSpec::TargetType {
                types: vec![ItemType::Idea]
            }),
            Some(false)
        );
        assert_eq!(
            c.passes(&ConditionSpec::parse(&json!({"type": "approval"}), "c").unwrap()),
            None
        );
    }

    #[test]
    fn vote_results_approve_by_method() {
        let opts = json!({"options": ["yes", "no"]});
        assert!(VoteResult::Passed(true).approves(&json!({})));
        assert!(!VoteResult::Passed(false).approves(&json!({})));
        assert!(VoteResult::Winner(Some("yes".into())).approves(&opts));
        assert!(!VoteResult::Winner(Some("no".into())).approves(&opts));
        assert!(!VoteResult::Winner(None).approves(&opts));
        assert!(VoteResult::Winners(vec!["yes".into(), "no".into()]).approves(&opts));
        assert_eq!(
            VoteResult::from_json(&json!({"method": "choice", "winner": "yes"})),
            Some(VoteResult::Winner(Some("yes".into())))
        );
        assert_eq!(
            VoteResult::from_json(&json!({"passed": false})),
            Some(VoteResult::Passed(false))
        );
        assert_eq!(VoteResult::from_json(&json!({"x": 1})), None);
    }
}
