//! Actions: deciding, recording, waiting and resolving (contract sections 3, 7 and 8).
//!
//! [`Community::decide`] is the pure decision (validation on a scratch overlay, then the
//! pipeline for every check); [`Community::dry_run`] shows it with its explain trace;
//! [`Community::submit`] decides and records. An implemented action is committed at once; a
//! rejected one is recorded; a waiting one gets its condition instances (one per distinct
//! condition of its grants: the same owners', governors' or permission's condition is shared by
//! every check of the action that waits on it), the timers to schedule, the votes to open.
//!
//! Condition answers (`approve`, `reject`, `respond`, `resolve` on `condition:<id>`) are
//! actions decided by the condition: implemented when the actor is among those it names for
//! that answer (or the default answerers), else rejected (`not_permitted`); `resolve` of a
//! consensus before its `minimum_hours` is refused with 409 `too_early`. A timeout firing
//! ([`Community::timeout_fired`]) and a vote closing ([`Community::vote_closed`]) resolve their
//! condition exactly once; a second call is a reported no-op.
//!
//! After each condition change the action is looked at again: when a check has every grant
//! rejected it is rejected (`condition_rejected`, or `timed_out` when a timeout did it); when
//! every check has an approved grant it is validated again on the current state and
//! implemented, or rejected `stale` when it no longer validates. It implements exactly once:
//! it leaves the waiting set in the same call.
//!
//! Every recorded action, resolution and answer is appended to the hash-chained log.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::changes::{ChangeKind, Params, Request};
use crate::community::{Community, Ctx};
use crate::conditions::{
    vote_item, CondStatus, ConditionSpec, ConditionState, OnTimeout, Origin, ResolvedBy, Response,
    VoteResult,
};
use crate::error::GovError;
use crate::ids::{check_agent_id, ActionId, ConditionId, ItemId, NoticeId, ObjectRef};
use crate::items::VersionRecord;
use crate::log::{LogEntry, LogKind};
use crate::notices::{Notice, NoticeKind};
use crate::pipeline::{combine, CheckOutcome, Decision, Route, Status};
use crate::scratch::{Delta, Rating, Scratch};
use crate::when::{rfc3339, Millis};

/// A condition as an action shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionSummary {
    pub id: ConditionId,
    pub typ: String,
    pub status: CondStatus,
    pub process: Option<String>,
}

/// How a waiting action was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub condition: Option<ConditionId>,
    pub by: Option<ResolvedBy>,
}

/// An action as recorded (an auxiliary record; waiting ones are also kept in memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: ActionId,
    pub actor: String,
    /// The request, normalised: `{"change","target","params","note"}` or `{"batch","note"}`.
    pub body: Value,
    pub status: Status,
    pub route: Option<Route>,
    pub reason: String,
    pub reason_code: Option<String>,
    pub level: Option<u8>,
    pub conditions: Vec<ConditionSummary>,
    pub result: Value,
    pub created_at: Millis,
    pub resolved_at: Option<Millis>,
    pub resolution: Option<Resolution>,
    targets: Vec<ObjectRef>,
}

impl ActionRecord {
    /// The objects the action targets (one per change).
    pub fn targets(&self) -> &[ObjectRef] {
        &self.targets
    }

    /// The items the action targets (an action on a destroyed item is redacted).
    pub fn target_items(&self) -> Vec<ItemId> {
        self.targets.iter().filter_map(ObjectRef::item).collect()
    }

    /// The action as the API shows it (section 3).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id.to_string(),
            "actor": self.actor,
            "status": self.status.name(),
            "route": self.route.map(Route::name),
            "reason": self.reason,
            "reason_code": self.reason_code,
            "level": self.level,
            "conditions": self.conditions.iter().map(|c| json!({
                "id": c.id.to_string(), "type": c.typ, "status": c.status.name(), "process": c.process,
            })).collect::<Vec<_>>(),
            "result": self.result,
            "created_at": rfc3339(self.created_at),
            "resolved_at": self.resolved_at.map(rfc3339),
        });
        let o = v.as_object_mut().expect("an object");
        if let Some(batch) = self.body.get("batch") {
            o.insert("change".into(), json!("batch"));
            o.insert("target".into(), Value::Null);
            o.insert("params".into(), Value::Null);
            o.insert("batch".into(), batch.clone());
        } else {
            for k in ["change", "target", "params"] {
                o.insert(k.into(), self.body.get(k).cloned().unwrap_or(Value::Null));
            }
        }
        o.insert(
            "note".into(),
            self.body.get("note").cloned().unwrap_or(json!("")),
        );
        if let Some(r) = &self.resolution {
            o.insert(
                "resolution".into(),
                json!({
                    "condition": r.condition.map(|c| c.to_string()),
                    "by": match &r.by {
                        Some(ResolvedBy::Agent(a)) => json!(&**a),
                        Some(ResolvedBy::Timeout) => json!("timeout"),
                        Some(ResolvedBy::Vote) => json!("vote"),
                        Some(ResolvedBy::Action) | None => Value::Null,
                    },
                }),
            );
        }
        v
    }

    /// The same action JSON with every change's params replaced by null (after its item was
    /// destroyed).
    pub fn redacted_json(&self) -> Value {
        let mut v = self.to_json();
        if let Some(o) = v.as_object_mut() {
            o.insert("params".into(), Value::Null);
            if let Some(Value::Array(b)) = o.get_mut("batch") {
                for c in b {
                    if let Some(c) = c.as_object_mut() {
                        c.insert("params".into(), Value::Null);
                    }
                }
            }
        }
        v
    }
}

/// A waiting action, as the community keeps it: its record and, per check, `None` when that
/// check needs nothing more, else its grants (each a list of condition ids, AND-ed; grants
/// OR-ed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAction {
    pub record: ActionRecord,
    pub checks: Vec<Option<Vec<Vec<ConditionId>>>>,
}

/// A timeout the caller schedules as a durable reminder; when it fires, call
/// [`Community::timeout_fired`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub condition: ConditionId,
    pub action: ActionId,
    pub at: Millis,
}

/// A vote the caller opens (`vote.<method>` with `params`, which already hold `eligible` and
/// `closing_at`); when it closes, call [`Community::vote_closed`], and once open
/// [`Community::set_vote_process`].
#[derive(Debug, Clone, PartialEq)]
pub struct VoteToOpen {
    pub condition: ConditionId,
    pub action: ActionId,
    pub method: String,
    pub params: Value,
    /// The voters, frozen now.
    pub eligible: Vec<String>,
    pub closes_at: Millis,
}

/// A notice to deliver to a subscription (through the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub notice: NoticeId,
    pub agent: String,
    /// The item subscribed to.
    pub item: ItemId,
    pub deliver_to: String,
}

/// Which parts of the state changed, so the caller persists only those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    pub constitution: bool,
    pub items: Vec<ItemId>,
    /// Waiting actions added or updated.
    pub pending: Vec<ActionId>,
    /// Waiting actions resolved (no longer in memory).
    pub resolved: Vec<ActionId>,
    /// Tallies that grew: the agent and the tally's position in their list (positions are
    /// stable: a tally is appended once and never removed).
    pub tallies: Vec<(String, usize)>,
}

impl Changed {
    fn tally(&mut self, agent: &str, at: usize) {
        if !self.tallies.iter().any(|(a, i)| a == agent && *i == at) {
            self.tallies.push((agent.to_string(), at));
        }
    }
}

/// What the caller must do after a call that changed state, all in one commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Action records, new or changed: store each (replacing the previous one) and send an
    /// `action_updated` driver event for each.
    pub actions: Vec<ActionRecord>,
    /// Log entries to append, in order.
    pub log: Vec<LogEntry>,
    pub notices: Vec<Notice>,
    pub deliveries: Vec<Delivery>,
    /// New item versions (create, edit, comment).
    pub versions: Vec<VersionRecord>,
    /// Destroyed items: drop their versions, null their fields, redact the params of actions on
    /// them and the bodies of their log entries.
    pub destroyed: Vec<ItemId>,
    pub ratings: Vec<Rating>,
    pub timers: Vec<Timer>,
    /// Timers of conditions that no longer wait.
    pub cancel_timers: Vec<ConditionId>,
    pub open_votes: Vec<VoteToOpen>,
    /// Votes of conditions that no longer wait (close or cancel them): condition and process.
    pub close_votes: Vec<(ConditionId, Option<String>)>,
    /// Phase boundaries to remind the core of ([`Community::phase_boundary`]): one durable
    /// reminder per (module, time); a repeated one is harmless.
    pub phase_timers: Vec<PhaseTimer>,
    /// Phase changes that happened: a `phase_started` / `phase_ended` driver event each.
    pub phase_events: Vec<PhaseEvent>,
    pub changed: Changed,
}

/// A module's phase boundary to be reminded of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseTimer {
    pub module: ItemId,
    pub at: Millis,
}

/// A phase that started or ended (the driver event's `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseEvent {
    /// `phase_started` or `phase_ended`.
    pub kind: &'static str,
    pub module: ItemId,
    pub phase: String,
    pub typ: String,
    pub at: Millis,
}

impl PhaseEvent {
    pub fn data(&self) -> Value {
        json!({"module": self.module.to_string(), "phase": self.phase, "type": self.typ,
            "at": rfc3339(self.at)})
    }
}

/// The result of [`Community::submit`].
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The action as it stands after the call.
    pub action: ActionRecord,
    /// The decision with its explain trace (for answers: `None`).
    pub decision: Option<Decision>,
    pub effects: Effects,
}

/// The result of a timeout or a vote outcome.
#[derive(Debug, Clone)]
pub enum Fired {
    /// The condition was resolved by this call.
    Resolved(Box<Effects>),
    /// Nothing to do: the condition was already resolved, or its action was (reported so the
    /// caller can drop the reminder or the message).
    AlreadyResolved,
    /// No such condition ever existed.
    Unknown,
}

/// Why [`Community::submit_within`] refused a request (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The request does not validate (or an answer is refused): answer the error.
    Invalid(GovError),
    /// The action would open this many votes, more than the caller can name: call again with
    /// at least this many.
    NeedVotes(usize),
}

impl From<GovError> for Refused {
    fn from(e: GovError) -> Self {
        Refused::Invalid(e)
    }
}

/// How many votes a waiting decision opens: one per distinct vote condition (the same
/// owners', governors' or permission's condition is shared by every check that waits on it).
pub fn votes_to_open(decision: &Decision) -> usize {
    let mut origins: Vec<Origin> = Vec::new();
    for c in &decision.checks {
        if let CheckOutcome::Waiting(grants) = &c.outcome {
            for g in grants {
                for (origin, spec) in &g.conditions {
                    if matches!(spec, ConditionSpec::Vote { .. }) && !origins.contains(origin) {
                        origins.push(*origin);
                    }
                }
            }
        }
    }
    origins.len()
}

/// Why an action is looked at again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Answer,
    Timeout(ConditionId),
    Vote,
}

fn normalise(req: &Request) -> Value {
    let change = |c: &crate::changes::Change| {
        let target = match &c.target {
            ObjectRef::Role(k) => format!("role:{}", k.name),
            t => t.to_string(),
        };
        let mut v = json!({"change": c.kind.name(), "target": target, "params": c.raw_params});
        if req.batch && !c.note.is_empty() {
            v["note"] = json!(c.note);
        }
        v
    };
    let mut v = if req.batch {
        json!({"batch": req.changes.iter().map(change).collect::<Vec<_>>()})
    } else {
        change(&req.changes[0])
    };
    if !req.note.is_empty() {
        v["note"] = json!(req.note);
    }
    v
}

impl Community {
    /// Validates `req` on a scratch overlay and decides it: the pure core of `POST /actions`
    /// and of its dry run. Answers to conditions are not decided here (see [`Community::submit`]).
    pub fn decide(&self, actor: &str, req: &Request, cx: &Ctx<'_>) -> Result<Decision, GovError> {
        self.prepare(actor, req, cx).map(|(d, _)| d)
    }

    fn prepare(
        &self,
        actor: &str,
        req: &Request,
        cx: &Ctx<'_>,
    ) -> Result<(Decision, Delta), GovError> {
        check_agent_id(actor, "actor")?;
        if req.is_answer() {
            return Err(GovError::bad(
                "invalid_body",
                Some("change"),
                "answers are decided by their condition",
            ));
        }
        let mut scratch = Scratch::new(self, actor, *cx);
        let mut checks = Vec::new();
        for (i, change) in req.changes.iter().enumerate() {
            let path = if req.batch {
                format!("batch[{i}]")
            } else {
                String::new()
            };
            checks.extend(scratch.apply(i, change, &path)?);
        }
        let mut trace = Vec::new();
        let decisions = checks
            .iter()
            .enumerate()
            .map(|(i, c)| self.decide_check(actor, req, i, c, cx, &mut trace))
            .collect();
        Ok((combine(decisions, trace), scratch.d))
    }

    /// What `POST /actions?dry_run=true` answers: what would happen, with the explain trace;
    /// nothing is stored.
    pub fn dry_run(&self, actor: &str, body: &Value, cx: &Ctx<'_>) -> Result<Value, GovError> {
        let req = Request::parse(body)?;
        if req.is_answer() {
            let (permitted, reason, _) = self.check_answer(actor, &req, cx)?;
            return Ok(json!({
                "status": if permitted { "implemented" } else { "rejected" },
                "route": null,
                "reason": reason,
                "reason_code": if permitted { Value::Null } else { json!("not_permitted") },
                "explain": [{"step": "answer", "permitted": permitted, "reason": reason}],
            }));
        }
        let d = self.decide(actor, &req, cx)?;
        let waits: Vec<Value> = d
            .checks
            .iter()
            .filter_map(|c| match &c.outcome {
                CheckOutcome::Waiting(grants) => Some(json!(grants
                    .iter()
                    .map(|g| g
                        .conditions
                        .iter()
                        .map(|(_, s)| s.to_json())
                        .collect::<Vec<_>>())
                    .collect::<Vec<_>>())),
                _ => None,
            })
            .collect();
        Ok(json!({
            "status": d.status.name(),
            "route": d.route.map(Route::name),
            "level": d.level,
            "reason": d.reason,
            "reason_code": d.reason_code,
            "matched": d.matched.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "would_wait_on": waits,
            "would_allow": d.would_allow,
            "explain": d.explain_json(),
        }))
    }

    fn new_action_id(&mut self) -> ActionId {
        let id = ActionId(self.next_action);
        self.next_action += 1;
        id
    }

    /// Decides and records a request (`POST /actions`). A refused request (parse, validation,
    /// `too_early`) changes nothing; anything else is recorded and returned with its effects.
    pub fn submit(
        &mut self,
        actor: &str,
        body: &Value,
        cx: &Ctx<'_>,
    ) -> Result<Submitted, GovError> {
        match self.submit_within(actor, body, cx, usize::MAX) {
            Ok(s) => Ok(s),
            Err(Refused::Invalid(e)) => Err(e),
            // Unreachable with no bound; reported as a conflict rather than a panic.
            Err(Refused::NeedVotes(n)) => Err(GovError::conflict(
                "too_many_votes",
                None,
                format!("the action would open {n} votes"),
            )),
        }
    }

    /// [`Community::submit`], refusing (before changing anything) an action that would open
    /// more than `max_votes` votes: a caller that must name each vote before it exists (an
    /// actor that allocates vote process ids outside its handler) learns how many it needs.
    pub fn submit_within(
        &mut self,
        actor: &str,
        body: &Value,
        cx: &Ctx<'_>,
        max_votes: usize,
    ) -> Result<Submitted, Refused> {
        let req = Request::parse(body)?;
        if req.is_answer() {
            return Ok(self.answer(actor, &req, cx)?);
        }
        let (decision, delta) = self.prepare(actor, &req, cx)?;
        if decision.status == Status::Waiting {
            let needed = votes_to_open(&decision);
            if needed > max_votes {
                return Err(Refused::NeedVotes(needed));
            }
        }
        let id = self.new_action_id();
        let mut record = ActionRecord {
            id,
            actor: actor.to_string(),
            body: normalise(&req),
            status: decision.status,
            route: decision.route,
            reason: decision.reason.clone(),
            reason_code: decision.reason_code.map(str::to_string),
            level: decision.level,
            conditions: Vec::new(),
            result: json!({}),
            created_at: cx.now,
            resolved_at: None,
            resolution: None,
            targets: req.changes.iter().map(|c| c.target.clone()).collect(),
        };
        let mut fx = Effects::default();
        match decision.status {
            Status::Rejected => {
                record.resolved_at = Some(cx.now);
                self.append_log(LogKind::Action, id, cx.now, record.to_json(), &mut fx);
            }
            Status::Implemented => {
                record.resolved_at = Some(cx.now);
                self.implement_delta(&mut record, &req, delta, cx, &mut fx);
                self.append_log(LogKind::Action, id, cx.now, record.to_json(), &mut fx);
            }
            Status::Waiting => {
                self.start_waiting(&mut record, &decision, cx, &mut fx);
                self.append_log(LogKind::Action, id, cx.now, record.to_json(), &mut fx);
            }
        }
        fx.actions.push(record.clone());
        Ok(Submitted {
            action: record,
            decision: Some(decision),
            effects: fx,
        })
    }

    /// Commits a delta for `record` (implemented now), with its notices, tallies and result.
    fn implement_delta(
        &mut self,
        record: &mut ActionRecord,
        req: &Request,
        delta: Delta,
        cx: &Ctx<'_>,
        fx: &mut Effects,
    ) {
        // Notices about items being destroyed are delivered as the item was just before.
        let destroying: Vec<Notice> = delta
            .notices
            .iter()
            .filter(|n| n.kind == NoticeKind::Destroy)
            .cloned()
            .collect();
        let mut early = Vec::new();
        for n in &destroying {
            for s in self.deliveries(n, cx) {
                early.push((n.item, s.agent.to_string(), s.item, s.deliver_to.clone()));
            }
        }
        let committed = self.commit(delta);
        for c in &req.changes {
            let at = self.record_implemented(&record.actor, c.kind, cx.now);
            fx.changed.tally(&record.actor, at);
        }
        record.result = if req.batch {
            json!({"batch": committed.results})
        } else {
            committed.results.into_iter().next().unwrap_or(json!({}))
        };
        for n in &committed.notices {
            if n.kind == NoticeKind::Destroy {
                for (item, agent, sub_item, to) in early.iter().filter(|e| e.0 == n.item) {
                    let _ = item;
                    fx.deliveries.push(Delivery {
                        notice: n.id,
                        agent: agent.clone(),
                        item: *sub_item,
                        deliver_to: to.clone(),
                    });
                }
            } else {
                for s in self.deliveries(n, cx) {
                    fx.deliveries.push(Delivery {
                        notice: n.id,
                        agent: s.agent.to_string(),
                        item: s.item,
                        deliver_to: s.deliver_to.clone(),
                    });
                }
            }
        }
        fx.notices.extend(committed.notices);
        fx.versions.extend(committed.versions);
        fx.destroyed.extend(committed.destroyed);
        fx.ratings.extend(committed.ratings);
        fx.changed.constitution |= committed.constitution_changed;
        // A module's boundaries still ahead are reminders (again after an edit: a reminder
        // at a time no phase starts or ends any more is a no-op when it fires).
        for id in &committed.changed_items {
            if let Some(s) = self.items.get(*id).and_then(|m| m.structure()) {
                for p in &s.phases {
                    for at in [p.start, p.end] {
                        let timer = PhaseTimer { module: *id, at };
                        if at >= cx.now && !fx.phase_timers.contains(&timer) {
                            fx.phase_timers.push(timer);
                        }
                    }
                }
            }
        }
        fx.changed.items.extend(committed.changed_items);
        // Waiting actions that depended on destroyed items are rejected when they would be
        // implemented (re-validation), not here: their conditions may still be answered.
    }

    fn start_waiting(
        &mut self,
        record: &mut ActionRecord,
        decision: &Decision,
        cx: &Ctx<'_>,
        fx: &mut Effects,
    ) {
        let mut by_origin: Vec<(Origin, ConditionId)> = Vec::new();
        let mut checks = Vec::new();
        for c in &decision.checks {
            match &c.outcome {
                CheckOutcome::Implemented => checks.push(None),
                CheckOutcome::Rejected { .. } => checks.push(None),
                CheckOutcome::Waiting(grants) => {
                    let mut gs = Vec::new();
                    for g in grants {
                        let mut ids = Vec::new();
                        for (origin, spec) in &g.conditions {
                            let id = match by_origin.iter().find(|(o, _)| o == origin) {
                                Some((_, id)) => *id,
                                None => {
                                    let id = self.open_condition(record, *origin, spec, cx, fx);
                                    by_origin.push((*origin, id));
                                    id
                                }
                            };
                            ids.push(id);
                        }
                        gs.push(ids);
                    }
                    checks.push(Some(gs));
                }
            }
        }
        record.conditions = by_origin.iter().map(|(_, id)| self.summary(*id)).collect();
        self.pending.insert(
            record.id,
            PendingAction {
                record: record.clone(),
                checks,
            },
        );
        fx.changed.pending.push(record.id);
    }

    fn open_condition(
        &mut self,
        record: &ActionRecord,
        origin: Origin,
        spec: &ConditionSpec,
        cx: &Ctx<'_>,
        fx: &mut Effects,
    ) -> ConditionId {
        let id = ConditionId(self.next_condition);
        self.next_condition += 1;
        let mut state = ConditionState {
            action: record.id,
            origin,
            spec: spec.clone(),
            status: CondStatus::Waiting,
            started_at: cx.now,
            responses: Default::default(),
            resolved_by: None,
            resolved_at: None,
            deadline: None,
            closes_at: None,
            process: None,
        };
        if let Some(t) = spec.timeout() {
            let at = cx.now.saturating_add(t.after_ms);
            state.deadline = Some(at);
            fx.timers.push(Timer {
                condition: id,
                action: record.id,
                at,
            });
        }
        if let ConditionSpec::Vote {
            method,
            params,
            voters,
            duration_ms,
        } = spec
        {
            let closes_at = cx.now.saturating_add(*duration_ms);
            let eligible = self.resolve_who(voters, matches!(origin, Origin::Owners(_)), cx);
            let mut p = params.as_object().cloned().unwrap_or_default();
            p.insert("eligible".into(), json!(eligible));
            p.insert("closing_at".into(), json!(rfc3339(closes_at)));
            p.entry("title").or_insert_with(|| {
                json!(format!(
                    "Action {}: {}",
                    record.id,
                    record_change_name(record)
                ))
            });
            state.closes_at = Some(closes_at);
            if let Some(item) = vote_item(params) {
                p.insert("item".into(), json!(item.to_string()));
            }
            fx.open_votes.push(VoteToOpen {
                condition: id,
                action: record.id,
                method: method.clone(),
                params: Value::Object(p),
                eligible,
                closes_at,
            });
        }
        self.conditions.insert(id, state);
        id
    }

    fn summary(&self, id: ConditionId) -> ConditionSummary {
        let c = &self.conditions[&id];
        ConditionSummary {
            id,
            typ: c.spec.type_name().to_string(),
            status: c.status,
            process: c.process.clone(),
        }
    }

    /// Records the vote process serving a vote condition (`/api/internal/process/vote.<m>/<id>`),
    /// once the caller has opened it. Returns whether the condition exists and waits.
    pub fn set_vote_process(&mut self, condition: ConditionId, process: String) -> Option<Effects> {
        let c = self.conditions.get_mut(&condition)?;
        if c.status != CondStatus::Waiting || !matches!(c.spec, ConditionSpec::Vote { .. }) {
            return None;
        }
        c.process = Some(process);
        let aid = c.action;
        let mut fx = Effects::default();
        self.refresh_record(aid, &mut fx);
        Some(fx)
    }

    fn refresh_record(&mut self, aid: ActionId, fx: &mut Effects) {
        let ids: Vec<ConditionId> = match self.pending.get(&aid) {
            Some(p) => p.record.conditions.iter().map(|c| c.id).collect(),
            None => return,
        };
        let summaries: Vec<ConditionSummary> = ids.iter().map(|i| self.summary(*i)).collect();
        if let Some(p) = self.pending.get_mut(&aid) {
            p.record.conditions = summaries;
            fx.actions.push(p.record.clone());
            fx.changed.pending.push(aid);
        }
    }

    /// Decides whether `actor` may give this answer; `Err` for refusals (unknown or resolved
    /// condition, an answer the condition does not take, `too_early`).
    fn check_answer(
        &self,
        actor: &str,
        req: &Request,
        cx: &Ctx<'_>,
    ) -> Result<(bool, String, ConditionId), GovError> {
        check_agent_id(actor, "actor")?;
        let change = &req.changes[0];
        let ObjectRef::Condition(cid) = change.target else {
            return Err(GovError::bad(
                "invalid_target",
                Some("target"),
                "answers target condition:<id>",
            ));
        };
        let Some(cond) = self
            .conditions
            .get(&cid)
            .filter(|c| self.pending.contains_key(&c.action))
        else {
            if cid.0 > 0 && cid.0 < self.next_condition {
                return Err(GovError::conflict(
                    "not_waiting",
                    Some("target"),
                    format!("condition {cid} is resolved"),
                ));
            }
            return Err(GovError::not_found(
                "unknown_target",
                Some("target"),
                format!("there is no condition {cid}"),
            ));
        };
        if cond.status != CondStatus::Waiting {
            return Err(GovError::conflict(
                "not_waiting",
                Some("target"),
                format!("condition {cid} is resolved"),
            ));
        }
        let action_actor = &self.pending[&cond.action].record.actor;
        let owners_default = matches!(cond.origin, Origin::Owners(_));
        let (who, self_ok) = match (change.kind, &cond.spec) {
            (
                ChangeKind::Approve,
                ConditionSpec::Approval {
                    approvers,
                    self_approval,
                    ..
                },
            ) => (approvers, *self_approval),
            (
                ChangeKind::Reject,
                ConditionSpec::Approval {
                    rejecters,
                    self_approval,
                    ..
                },
            ) => (rejecters, *self_approval),
            (
                ChangeKind::Respond,
                ConditionSpec::Consensus {
                    participants,
                    self_approval,
                    ..
                },
            ) => (participants, *self_approval),
            (
                ChangeKind::Resolve,
                ConditionSpec::Consensus {
                    resolvers,
                    self_approval,
                    ..
                },
            ) => (resolvers, *self_approval),
            (k, spec) => {
                return Err(GovError::bad(
                    "answer_not_supported",
                    Some("change"),
                    format!(
                        "a {} condition takes no '{}'{}",
                        spec.type_name(),
                        k.name(),
                        if matches!(spec, ConditionSpec::Vote { .. }) {
                            "; it is decided by its vote"
                        } else {
                            ""
                        }
                    ),
                ))
            }
        };
        let own = actor == action_actor;
        let permitted = (self_ok || !own) && self.who_includes(who, owners_default, actor, cx);
        let reason = if permitted {
            format!("{actor} may {} condition {cid}", change.kind.name())
        } else if own && !self_ok {
            format!("{actor} took the action and this condition does not allow self-approval")
        } else {
            format!(
                "{actor} is not among those condition {cid} names for '{}'",
                change.kind.name()
            )
        };
        if permitted && change.kind == ChangeKind::Resolve {
            if let ConditionSpec::Consensus { minimum_ms, .. } = cond.spec {
                let earliest = cond.started_at.saturating_add(minimum_ms);
                if cx.now < earliest {
                    return Err(GovError::conflict(
                        "too_early",
                        Some("target"),
                        format!("this consensus may be resolved from {}", rfc3339(earliest)),
                    ));
                }
            }
        }
        Ok((permitted, reason, cid))
    }

    fn answer(&mut self, actor: &str, req: &Request, cx: &Ctx<'_>) -> Result<Submitted, GovError> {
        let (permitted, reason, cid) = self.check_answer(actor, req, cx)?;
        let change = &req.changes[0];
        let id = self.new_action_id();
        let mut record = ActionRecord {
            id,
            actor: actor.to_string(),
            body: normalise(req),
            status: if permitted {
                Status::Implemented
            } else {
                Status::Rejected
            },
            route: None,
            reason,
            reason_code: (!permitted).then(|| "not_permitted".to_string()),
            level: None,
            conditions: Vec::new(),
            result: json!({}),
            created_at: cx.now,
            resolved_at: Some(cx.now),
            resolution: None,
            targets: vec![change.target.clone()],
        };
        let mut fx = Effects::default();
        if !permitted {
            self.append_log(LogKind::Answer, id, cx.now, record.to_json(), &mut fx);
            fx.actions.push(record.clone());
            return Ok(Submitted {
                action: record,
                decision: None,
                effects: fx,
            });
        }
        let at = self.record_implemented(actor, change.kind, cx.now);
        fx.changed.tally(actor, at);
        let cond = self.conditions.get(&cid).expect("checked").clone();
        let new_status = match (&change.params, change.kind, &cond.spec) {
            (_, ChangeKind::Approve, _) => Some(CondStatus::Approved),
            (_, ChangeKind::Reject, _) => Some(CondStatus::Rejected),
            (Params::Respond(r), ChangeKind::Respond, _) => {
                if let Some(c) = self.conditions.get_mut(&cid) {
                    c.responses.insert(actor.into(), *r);
                }
                None
            }
            (
                _,
                ChangeKind::Resolve,
                ConditionSpec::Consensus {
                    participants,
                    strict,
                    self_approval,
                    ..
                },
            ) => {
                let owners_default = matches!(cond.origin, Origin::Owners(_));
                let action_actor = self.pending[&cond.action].record.actor.clone();
                let mut people = self.resolve_who(participants, owners_default, cx);
                if !*self_approval {
                    people.retain(|p| *p != action_actor);
                }
                let counted: Vec<Response> = cond
                    .responses
                    .iter()
                    .filter(|(a, _)| people.iter().any(|p| *p == ***a))
                    .map(|(_, r)| *r)
                    .collect();
                let blocked = counted.contains(&Response::Block);
                let support = counted
                    .iter()
                    .any(|r| matches!(r, Response::Support | Response::SupportWithReservations));
                let everyone = people
                    .iter()
                    .all(|p| cond.responses.contains_key(p.as_str()));
                Some(if !blocked && support && (!strict || everyone) {
                    CondStatus::Approved
                } else {
                    CondStatus::Rejected
                })
            }
            _ => None,
        };
        record.result = json!({"condition": cid.to_string(), "condition_status":
            new_status.map(CondStatus::name).unwrap_or("waiting")});
        self.append_log(LogKind::Answer, id, cx.now, record.to_json(), &mut fx);
        fx.actions.push(record.clone());
        match new_status {
            Some(s) => {
                self.resolve_condition(cid, s, ResolvedBy::Agent(actor.into()), cx, &mut fx);
                self.evaluate(cond.action, Cause::Answer, cid, cx, &mut fx);
            }
            None => self.refresh_record(cond.action, &mut fx),
        }
        Ok(Submitted {
            action: record,
            decision: None,
            effects: fx,
        })
    }

    fn resolve_condition(
        &mut self,
        cid: ConditionId,
        status: CondStatus,
        by: ResolvedBy,
        cx: &Ctx<'_>,
        fx: &mut Effects,
    ) {
        if let Some(c) = self.conditions.get_mut(&cid) {
            c.status = status;
            c.resolved_by = Some(by);
            c.resolved_at = Some(cx.now);
            if c.deadline.is_some() {
                fx.cancel_timers.push(cid);
            }
        }
    }

    /// A condition's timeout fired (a durable reminder the caller scheduled from
    /// [`Effects::timers`]). Resolves it by its `on_timeout` exactly once.
    pub fn timeout_fired(&mut self, cid: ConditionId, cx: &Ctx<'_>) -> Fired {
        let Some(c) = self.conditions.get(&cid) else {
            return if cid.0 > 0 && cid.0 < self.next_condition {
                Fired::AlreadyResolved
            } else {
                Fired::Unknown
            };
        };
        if c.status != CondStatus::Waiting || !self.pending.contains_key(&c.action) {
            return Fired::AlreadyResolved;
        }
        let Some(t) = c.spec.timeout() else {
            return Fired::AlreadyResolved;
        };
        let aid = c.action;
        let status = match t.on_timeout {
            OnTimeout::Approve => CondStatus::Approved,
            OnTimeout::Reject => CondStatus::Rejected,
        };
        let mut fx = Effects::default();
        if let Some(c) = self.conditions.get_mut(&cid) {
            c.status = status;
            c.resolved_by = Some(ResolvedBy::Timeout);
            c.resolved_at = Some(cx.now);
        }
        self.evaluate(aid, Cause::Timeout(cid), cid, cx, &mut fx);
        Fired::Resolved(Box::new(fx))
    }

    /// A vote condition's vote closed with `result`. Resolves the condition exactly once.
    pub fn vote_closed(&mut self, cid: ConditionId, result: &VoteResult, cx: &Ctx<'_>) -> Fired {
        let Some(c) = self.conditions.get(&cid) else {
            return if cid.0 > 0 && cid.0 < self.next_condition {
                Fired::AlreadyResolved
            } else {
                Fired::Unknown
            };
        };
        if c.status != CondStatus::Waiting || !self.pending.contains_key(&c.action) {
            return Fired::AlreadyResolved;
        }
        let ConditionSpec::Vote { params, .. } = &c.spec else {
            return Fired::Unknown;
        };
        let status = if result.approves(params) {
            CondStatus::Approved
        } else {
            CondStatus::Rejected
        };
        let aid = c.action;
        let mut fx = Effects::default();
        self.resolve_condition(cid, status, ResolvedBy::Vote, cx, &mut fx);
        self.evaluate(aid, Cause::Vote, cid, cx, &mut fx);
        Fired::Resolved(Box::new(fx))
    }

    /// Looks at a waiting action again after condition `trigger` changed.
    fn evaluate(
        &mut self,
        aid: ActionId,
        cause: Cause,
        trigger: ConditionId,
        cx: &Ctx<'_>,
        fx: &mut Effects,
    ) {
        let Some(p) = self.pending.get(&aid) else {
            return;
        };
        let st = |id: &ConditionId| {
            self.conditions
                .get(id)
                .map(|c| c.status)
                .unwrap_or(CondStatus::Rejected)
        };
        let mut failed = false;
        let mut all_ok = true;
        for check in &p.checks {
            let Some(grants) = check else { continue };
            let ok = grants
                .iter()
                .any(|g| g.iter().all(|c| st(c) == CondStatus::Approved));
            let dead = grants
                .iter()
                .all(|g| g.iter().any(|c| st(c) == CondStatus::Rejected));
            failed |= dead;
            all_ok &= ok;
        }
        if failed {
            let code = match cause {
                Cause::Timeout(_) => "timed_out",
                _ => "condition_rejected",
            };
            let reason = match cause {
                Cause::Timeout(c) => format!("condition {c} timed out"),
                _ => format!("condition {trigger} was rejected"),
            };
            self.finish(
                aid,
                Status::Rejected,
                Some(code),
                reason,
                trigger,
                None,
                cx,
                fx,
            );
        } else if all_ok {
            // Validated again on the state of this moment.
            let record = self.pending[&aid].record.clone();
            let outcome = Request::parse(&record.body).and_then(|req| {
                let mut s = Scratch::new(self, &record.actor, *cx);
                for (i, change) in req.changes.iter().enumerate() {
                    let path = if req.batch {
                        format!("batch[{i}]")
                    } else {
                        String::new()
                    };
                    s.apply(i, change, &path)?;
                }
                Ok((req, s.d))
            });
            match outcome {
                Ok((req, delta)) => self.finish(
                    aid,
                    Status::Implemented,
                    None,
                    String::new(),
                    trigger,
                    Some((req, delta)),
                    cx,
                    fx,
                ),
                Err(e) => self.finish(
                    aid,
                    Status::Rejected,
                    Some("stale"),
                    format!("no longer valid: {e}"),
                    trigger,
                    None,
                    cx,
                    fx,
                ),
            }
        } else {
            self.refresh_record(aid, fx);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        aid: ActionId,
        status: Status,
        code: Option<&str>,
        reason: String,
        trigger: ConditionId,
        implement: Option<(Request, Delta)>,
        cx: &Ctx<'_>,
        fx: &mut Effects,
    ) {
        let Some(p) = self.pending.remove(&aid) else {
            return;
        };
        let mut record = p.record;
        // Who or what resolved the deciding condition: an answering agent, a timeout, a vote.
        let by = self
            .conditions
            .get(&trigger)
            .and_then(|c| c.resolved_by.clone());
        // Every condition still waiting is closed: its timer and vote are no longer needed.
        for s in &record.conditions {
            if let Some(c) = self.conditions.get_mut(&s.id) {
                if c.status == CondStatus::Waiting {
                    c.status = CondStatus::Closed;
                    c.resolved_by = Some(ResolvedBy::Action);
                    c.resolved_at = Some(cx.now);
                    if c.deadline.is_some() {
                        fx.cancel_timers.push(s.id);
                    }
                    if matches!(c.spec, ConditionSpec::Vote { .. }) {
                        fx.close_votes.push((s.id, c.process.clone()));
                    }
                }
            }
        }
        record.conditions = record
            .conditions
            .iter()
            .map(|s| self.summary(s.id))
            .collect();
        for s in &record.conditions {
            self.conditions.remove(&s.id);
        }
        record.status = status;
        record.resolved_at = Some(cx.now);
        record.reason_code = code.map(str::to_string);
        record.resolution = Some(Resolution {
            condition: Some(trigger),
            by,
        });
        if let Some((req, delta)) = implement {
            record.reason = format!(
                "implemented: condition {trigger} completed its grant ({})",
                record.reason
            );
            self.implement_delta(&mut record, &req, delta, cx, fx);
        } else {
            record.reason = reason;
        }
        let body = json!({
            "action": aid.to_string(),
            "status": record.status.name(),
            "route": record.route.map(Route::name),
            "reason_code": record.reason_code,
            "reason": record.reason,
            "condition": trigger.to_string(),
            "result": record.result,
            "resolved_at": rfc3339(cx.now),
        });
        self.append_log(LogKind::Resolution, aid, cx.now, body, fx);
        fx.changed.resolved.push(aid);
        fx.actions.push(record);
    }

    fn append_log(
        &mut self,
        kind: LogKind,
        action: ActionId,
        at: Millis,
        body: Value,
        fx: &mut Effects,
    ) {
        let entry = LogEntry::next(self.log_seq + 1, &self.log_head, kind, action, at, body);
        self.log_seq = entry.seq;
        self.log_head = entry.hash.clone();
        fx.log.push(entry);
    }
}

fn record_change_name(record: &ActionRecord) -> String {
    match record.body.get("change").and_then(Value::as_str) {
        Some(c) => format!(
            "{c} on {}",
            record
                .body
                .get("target")
                .and_then(Value::as_str)
                .unwrap_or("")
        ),
        None => "a batch of changes".into(),
    }
}

/// Builds a change body (a convenience for callers and tests).
pub fn change_body(change: &str, target: &str, params: Value) -> Value {
    let mut m = Map::new();
    m.insert("change".into(), json!(change));
    m.insert("target".into(), json!(target));
    m.insert("params".into(), params);
    Value::Object(m)
}
