//! The governance actor (key: the community's slug): one community's governance engine
//! (`../shared/governance-api.md`, sections 2–5, 7, 8), in the community's partition.
//!
//! It holds the pure core's [`Community`] in memory (the constitution, roles, the permission
//! index, item metadata, waiting actions with their conditions): every decision is one
//! synchronous call inside this actor. Its state record is the core's snapshot with the item
//! metadata. What grows without bound is kept in auxiliary records written in the same commit
//! and read on demand (`RESTORE_AUX = false`): action records (`a/<id>`), log entries
//! (`l/<seq>`), item versions (`v/<item><version>`) and notices (`n/<item><id>`), every number
//! big-endian so records list in order.
//!
//! What the core asks for beyond the state happens in the same commit: a condition's timeout is
//! a durable reminder (`timeout/<condition>`), and so is each phase boundary of a module
//! (`phase/<module>/<ms>`), which the core announces once as notices on the module and
//! `phase_started` / `phase_ended` driver events; a vote condition opens a real `vote.<method>`
//! process through a durable message to the vote actor, whose outcome comes back as a durable
//! message ([`VoteOutcome`]), handled exactly once; notices go to subscriptions through the
//! signed outbox, in order per subscription; each change of an action is an `action_updated`
//! driver event. Vote process ids are allocated by the service (the handler does no I/O) and
//! handed in with [`Submit`]: when an action would open more votes than it was handed, nothing
//! changes and the reply says how many it needs.

use std::collections::HashMap;

use agora_governance::{
    parse_numeric_id, ActionRecord, Community, ConditionId, Ctx, Effects as GovEffects, Fields,
    Fired, GovError, ItemId, ItemMeta, ItemType, ListQuery, NoLinkedAccounts, Notice, Refused,
    Snapshot, Subscription, VersionRecord, Viewer, VoteResult,
};
use agora_plugins::{ErrorCode, Event};
use agora_runtime::{
    ActorId, ActorMessage, Delivery, Effects, Message, OutboxMessage, Reminder, Stored,
    VirtualActor,
};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::vote::{CloseForCondition, OpenForCondition, Vote};
use crate::{events, ActorError, ActorsEnv};

const RECORD: &str = "governance";
const VERSION: u16 = 1;
const ACTION_RECORD: &str = "gov_action";
const LOG_RECORD: &str = "gov_log";
const VERSION_RECORD: &str = "gov_version";
const NOTICE_RECORD: &str = "gov_notice";
const TIMEOUT: &str = "timeout/";
/// A module's phase boundary: `phase/<module>/<ms>`.
const PHASE: &str = "phase/";

/// The most records one list page reads before it answers with what it found.
pub const MAX_SCAN: usize = 10_000;
/// The longest list page.
pub const MAX_PAGE: usize = 1000;

#[derive(Serialize, Deserialize)]
struct State {
    /// The community's driver URL as last seen by a command (reminders and messages have no
    /// service in their path to ask the community).
    driver_url: Option<String>,
    snapshot: Snapshot,
    items: Vec<ItemMeta>,
}

/// A log entry as stored. The body is JSON text, so it hashes the same when read back.
#[derive(Serialize, Deserialize)]
struct LogRecord {
    seq: u64,
    at: String,
    kind: String,
    action: String,
    body_hash: String,
    prev: String,
    hash: String,
    body: Option<String>,
}

/// Who reads: the driver (no `X-Agora-Actor`) or an agent.
#[derive(Debug, Clone)]
pub enum Reader {
    Driver,
    Agent(String),
}

impl Reader {
    fn viewer(&self) -> Viewer<'_> {
        match self {
            Reader::Driver => Viewer::Driver,
            Reader::Agent(a) => Viewer::Agent(a),
        }
    }
}

/// The reply to [`Submit`].
#[derive(Debug, Clone)]
pub enum Submitted {
    /// The action as recorded (201).
    Done(Value),
    /// The action would open this many votes; nothing changed: call again with as many ids.
    NeedVoteIds(usize),
}

// ---- Messages ----

/// `POST /governance`: founds the community's governance, once.
pub struct Found {
    pub actor: String,
    pub body: Value,
    pub driver_url: Option<String>,
}

/// `GET /governance`.
pub struct GetConstitution;

/// `POST /actions`: decides and records. `vote_ids` are fresh process ids for the votes the
/// action may open.
pub struct Submit {
    pub actor: String,
    /// The platforms the actor has linked accounts on (`linked_account` roles).
    pub platforms: Vec<String>,
    pub body: Value,
    pub driver_url: Option<String>,
    pub vote_ids: Vec<u64>,
}

/// `POST /actions?dry_run=true`.
pub struct DryRun {
    pub actor: String,
    pub platforms: Vec<String>,
    pub body: Value,
}

/// `GET /actions/{id}`.
pub struct GetAction {
    pub reader: Reader,
    pub id: String,
}

/// `GET /actions?status=&actor=&target=&cursor=&limit=`.
pub struct ListActions {
    pub reader: Reader,
    pub status: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// `GET /items/{id}[?version=n]`.
pub struct GetItem {
    pub reader: Reader,
    pub id: String,
    pub version: Option<u32>,
}

/// `GET /items?type=&in=&include_inactive=&cursor=&limit=`.
pub struct ListItems {
    pub reader: Reader,
    pub typ: Option<String>,
    pub within: Option<String>,
    pub include_inactive: bool,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// `GET /items/{id}/versions`.
pub struct ItemVersions {
    pub reader: Reader,
    pub id: String,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// `GET /items/{id}/notices`.
pub struct ItemNotices {
    pub reader: Reader,
    pub id: String,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// `POST /subscriptions` (the `deliver_to` URL was checked by the gateway).
pub struct Subscribe {
    pub actor: String,
    pub body: Value,
}

/// `GET /subscriptions`: the agent's own.
pub struct Subscriptions {
    pub actor: String,
}

/// `DELETE /subscriptions/{item}`.
pub struct Unsubscribe {
    pub actor: String,
    pub item: String,
}

/// `GET /governance/log?cursor=&limit=`.
pub struct Log {
    pub reader: Reader,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// A vote condition's vote closed: its outcome (`{"passed"}`, `{"winner"}` or `{"winners"}`,
/// JSON text), sent durably by the vote actor.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct VoteOutcome {
    pub condition: u64,
    pub result: String,
}

impl ActorMessage for VoteOutcome {
    const KIND: &'static str = "governance_vote_outcome";
}

// ---- The actor ----

pub struct Governance {
    slug: String,
    core: Option<Community>,
    driver_url: Option<String>,
}

/// A refusal of the core as the API answers it: its code is one of [`ErrorCode`]'s.
pub fn gov_error(e: GovError) -> ActorError {
    let code = ErrorCode::from_name(e.code).unwrap_or_else(|| {
        tracing::error!(code = e.code, "a governance code missing from ErrorCode");
        ErrorCode::InvalidRequest
    });
    ActorError::Invalid {
        code,
        message: e.message,
        field: e.field,
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>, field: Option<&str>) -> ActorError {
    ActorError::Invalid {
        code,
        message: message.into(),
        field: field.map(str::to_owned),
    }
}

fn internal(e: impl std::fmt::Display) -> ActorError {
    ActorError::internal(e.to_string())
}

fn action_key(id: u64) -> Vec<u8> {
    let mut k = b"a/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn log_key(seq: u64) -> Vec<u8> {
    let mut k = b"l/".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn versions_prefix(item: ItemId) -> Vec<u8> {
    let mut k = b"v/".to_vec();
    k.extend_from_slice(&item.0.to_be_bytes());
    k
}

fn version_key(item: ItemId, version: u32) -> Vec<u8> {
    let mut k = versions_prefix(item);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn notices_prefix(item: ItemId) -> Vec<u8> {
    let mut k = b"n/".to_vec();
    k.extend_from_slice(&item.0.to_be_bytes());
    k
}

fn notice_key(item: ItemId, id: u64) -> Vec<u8> {
    let mut k = notices_prefix(item);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The number after a fixed-length prefix of a sub-key (a record's own id), for cursors.
fn tail_u64(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// A cursor this API gave out: a decimal number.
fn cursor(c: &Option<String>) -> Result<Option<u64>, ActorError> {
    match c {
        None => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            refuse(
                ErrorCode::InvalidQuery,
                "'cursor' is not a cursor this API gave out",
                Some("cursor"),
            )
        }),
    }
}

fn item_id(text: &str, field: &str) -> Result<ItemId, ActorError> {
    parse_numeric_id(text, field).map(ItemId).map_err(gov_error)
}

/// The items an action is about: those it targets and those it created (whose fields its
/// params carry), so destroying an item redacts both.
fn items_of(rec: &ActionRecord) -> Vec<ItemId> {
    let mut out = rec.target_items();
    let mut created = |r: &Value| {
        if let Some(id) = r
            .get("item")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            out.push(ItemId(id));
        }
    };
    match rec.result.get("batch").and_then(Value::as_array) {
        Some(list) => list.iter().for_each(&mut created),
        None => created(&rec.result),
    }
    out
}

/// The linked accounts a decision knows: the acting agent's (the identity directory is
/// another actor's; a timeout or a vote decides with none).
fn linked<'a>(actor: &'a str, platforms: &'a [String]) -> impl Fn(&str, &str) -> bool + 'a {
    move |agent: &str, platform: &str| agent == actor && platforms.iter().any(|p| p == platform)
}

/// The vote process id at the end of `/api/internal/process/vote.<method>/<id>`.
fn process_id(path: &str) -> Option<u64> {
    path.rsplit('/').next()?.parse().ok()
}

impl Governance {
    fn core(&self) -> Result<&Community, ActorError> {
        self.core.as_ref().ok_or_else(|| {
            refuse(
                ErrorCode::GovernanceNotFound,
                format!("community '{}' has no governance yet", self.slug),
                None,
            )
        })
    }

    fn save(&self, fx: &mut Effects) {
        let Some(core) = &self.core else { return };
        let state = State {
            driver_url: self.driver_url.clone(),
            snapshot: core.snapshot(),
            items: core.item_metas().to_vec(),
        };
        match encode_record(RECORD, VERSION, &state) {
            Ok(b) => fx.save_state(b),
            Err(e) => tracing::error!(error = %e, "governance state failed to encode"),
        }
    }

    fn driver_url<'a>(&'a self, env: &'a ActorsEnv) -> Option<&'a str> {
        self.driver_url.as_deref().or(env.driver_url.as_deref())
    }

    /// The current fields of `items`, from their version records (an item's fields live only
    /// there).
    fn fields_of(
        &self,
        fx: &Effects,
        items: &[ItemId],
    ) -> Result<HashMap<ItemId, Fields>, ActorError> {
        let mut out = HashMap::new();
        let Some(core) = &self.core else {
            return Ok(out);
        };
        for id in items {
            let Some(meta) = core.item(*id) else { continue };
            if meta.destroyed() {
                continue;
            }
            if let Some(v) = self.version(fx, *id, meta.version())? {
                out.insert(*id, v.fields);
            }
        }
        Ok(out)
    }

    fn version(
        &self,
        fx: &Effects,
        item: ItemId,
        version: u32,
    ) -> Result<Option<VersionRecord>, ActorError> {
        match fx.get_aux(&version_key(item, version)).map_err(internal)? {
            Some(b) => decode_record::<VersionRecord>(VERSION_RECORD, VERSION, &b)
                .map(|(_, v)| Some(v))
                .map_err(internal),
            None => Ok(None),
        }
    }

    fn action(&self, fx: &Effects, id: u64) -> Result<Option<ActionRecord>, ActorError> {
        match fx.get_aux(&action_key(id)).map_err(internal)? {
            Some(b) => decode_record::<ActionRecord>(ACTION_RECORD, VERSION, &b)
                .map(|(_, a)| Some(a))
                .map_err(internal),
            None => Ok(None),
        }
    }

    /// The items whose fields an action's implementation reads: its targets, and for an
    /// answer, the targets of the action it answers (which it may implement).
    fn fields_for_body(&self, body: &Value) -> Vec<ItemId> {
        let Some(core) = &self.core else {
            return Vec::new();
        };
        let mut ids = core.fields_needed(body);
        let answered = body
            .get("target")
            .and_then(Value::as_str)
            .and_then(|t| t.strip_prefix("condition:"))
            .and_then(|c| c.parse::<u64>().ok())
            .and_then(|c| core.condition(ConditionId(c)))
            .map(|c| c.action);
        if let Some(aid) = answered {
            for id in core.fields_needed_for_action(aid) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Whether `reader` may see an action, and its JSON as they see it (params redacted once
    /// an item it targets is destroyed).
    fn action_json(&self, reader: &Reader, rec: &ActionRecord, cx: &Ctx<'_>) -> Option<Value> {
        let core = self.core.as_ref()?;
        if !rec
            .targets()
            .iter()
            .all(|t| core.can_view_target(reader.viewer(), t, cx))
        {
            return None;
        }
        let destroyed = items_of(rec)
            .iter()
            .any(|i| core.item(*i).is_none_or(ItemMeta::destroyed));
        Some(if destroyed {
            rec.redacted_json()
        } else {
            rec.to_json()
        })
    }

    /// Everything the core asked for, into this commit. Answers the action records changed, the
    /// last record of each action (in the order first seen).
    fn apply(
        &mut self,
        env: &ActorsEnv,
        mut g: GovEffects,
        vote_ids: &mut Vec<u64>,
        fx: &mut Effects,
    ) -> Vec<ActionRecord> {
        // Votes first: naming a vote's process changes its action's record.
        for open in std::mem::take(&mut g.open_votes) {
            let Some(id) = vote_ids.pop() else {
                tracing::error!(condition = %open.condition, "no vote id for a vote condition");
                continue;
            };
            let msg = OpenForCondition {
                community: self.slug.clone(),
                method: open.method.clone(),
                params: open.params.to_string(),
                closing_at_ms: u64::try_from(open.closes_at).unwrap_or(0),
                driver_url: self.driver_url.clone(),
                condition: open.condition.0,
            };
            if let Err(e) = fx.send_to::<Vote, OpenForCondition>(&id.to_string(), &msg) {
                tracing::error!(error = %e, "a vote opening failed to encode");
                continue;
            }
            let process = format!("/api/internal/process/vote.{}/{id}", open.method);
            if let Some(more) = self
                .core
                .as_mut()
                .and_then(|c| c.set_vote_process(open.condition, process))
            {
                g.actions.extend(more.actions);
            }
        }
        for (cid, process) in std::mem::take(&mut g.close_votes) {
            if let Some(id) = process.as_deref().and_then(process_id) {
                let msg = CloseForCondition { condition: cid.0 };
                if let Err(e) = fx.send_to::<Vote, CloseForCondition>(&id.to_string(), &msg) {
                    tracing::error!(error = %e, "a vote closing failed to encode");
                }
            }
        }
        for t in &g.timers {
            let due = u64::try_from(t.at).unwrap_or(0);
            fx.set_reminder(format!("{TIMEOUT}{}", t.condition), due, Vec::new());
        }
        for c in &g.cancel_timers {
            fx.cancel_reminder(format!("{TIMEOUT}{c}"));
        }
        // One reminder per (module, boundary): setting it again (an edit) replaces it.
        for t in &g.phase_timers {
            let due = u64::try_from(t.at).unwrap_or(0);
            fx.set_reminder(format!("{PHASE}{}/{}", t.module, t.at), due, Vec::new());
        }
        for v in &g.versions {
            match encode_record(VERSION_RECORD, VERSION, v) {
                Ok(b) => fx.put_aux(version_key(v.item, v.version), b),
                Err(e) => tracing::error!(error = %e, "an item version failed to encode"),
            }
        }
        for item in &g.destroyed {
            // Every version goes: a destroyed item keeps no fields anywhere.
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = match fx.scan_aux(&versions_prefix(*item), after.as_deref(), 256) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "reading versions to destroy failed");
                        break;
                    }
                };
                let done = page.len() < 256;
                after = page.last().map(|(k, _)| k.clone());
                for (k, _) in page {
                    fx.delete_aux(k);
                }
                if done {
                    break;
                }
            }
        }
        for n in &g.notices {
            match encode_record(NOTICE_RECORD, VERSION, n) {
                Ok(b) => fx.put_aux(notice_key(n.item, n.id.0), b),
                Err(e) => tracing::error!(error = %e, "a notice failed to encode"),
            }
        }
        for d in &g.deliveries {
            let Some(n) = g.notices.iter().find(|n| n.id == d.notice) else {
                continue;
            };
            let body = json!({
                "type": "notice",
                "community": self.slug,
                "subscription": {"agent": d.agent, "item": d.item.to_string()},
                "notice": n.to_json(),
            });
            fx.send(OutboxMessage {
                url: d.deliver_to.clone(),
                body: body.to_string(),
                ordering_key: format!("subscription/{}/{}/{}", self.slug, d.agent, d.item),
            });
        }
        for e in &g.log {
            let rec = LogRecord {
                seq: e.seq,
                at: e.at.clone(),
                kind: e.kind.name().to_string(),
                action: e.action.clone(),
                body_hash: e.body_hash.clone(),
                prev: e.prev.clone(),
                hash: e.hash.clone(),
                body: e.body.as_ref().map(Value::to_string),
            };
            match encode_record(LOG_RECORD, VERSION, &rec) {
                Ok(b) => fx.put_aux(log_key(e.seq), b),
                Err(e) => tracing::error!(error = %e, "a log entry failed to encode"),
            }
        }
        // One record (and one event) per action: the last one.
        let mut last: Vec<ActionRecord> = Vec::new();
        for a in g.actions {
            match last.iter_mut().find(|l| l.id == a.id) {
                Some(l) => *l = a,
                None => last.push(a),
            }
        }
        let url = self.driver_url(env).map(str::to_string);
        for a in &last {
            match encode_record(ACTION_RECORD, VERSION, a) {
                Ok(b) => fx.put_aux(action_key(a.id.0), b),
                Err(e) => tracing::error!(error = %e, "an action record failed to encode"),
            }
            let event = Event {
                event_type: "action_updated".into(),
                data: a.to_json(),
                initiator: json!({"agent": a.actor}),
            };
            events::emit(
                fx,
                env.json.as_ref(),
                url.as_deref(),
                &self.slug,
                "governance",
                &event,
            );
        }
        for p in &g.phase_events {
            let event = Event {
                event_type: p.kind.into(),
                data: p.data(),
                initiator: json!({"agent": "system"}),
            };
            events::emit(
                fx,
                env.json.as_ref(),
                url.as_deref(),
                &self.slug,
                "governance",
                &event,
            );
        }
        self.save(fx);
        last
    }

    /// A phase boundary's reminder fired: the core announces it once (a repeat is a no-op).
    fn phase_boundary(&mut self, env: &ActorsEnv, module: ItemId, at: i64, fx: &mut Effects) {
        let now = fx.now_ms() as i64;
        let Some(core) = self.core.as_mut() else {
            return;
        };
        let fields: HashMap<ItemId, Fields> = HashMap::new();
        let cx = Ctx {
            now,
            accounts: &NoLinkedAccounts,
            fields: &fields,
        };
        let g = core.phase_boundary(module, at, &cx);
        if g.phase_events.is_empty() {
            tracing::debug!(%module, at, "phase boundary already announced or gone");
            return;
        }
        self.apply(env, g, &mut Vec::new(), fx);
    }

    fn submit(
        &mut self,
        env: &ActorsEnv,
        m: Submit,
        fx: &mut Effects,
    ) -> Result<Submitted, ActorError> {
        let needed = self.fields_for_body(&m.body);
        let fields = self.fields_of(fx, &needed)?;
        let now = fx.now_ms() as i64;
        let core = self.core.as_mut().ok_or_else(|| {
            refuse(
                ErrorCode::GovernanceNotFound,
                "this community has no governance yet",
                None,
            )
        })?;
        let linked = linked(&m.actor, &m.platforms);
        let cx = Ctx {
            now,
            accounts: &linked,
            fields: &fields,
        };
        let mut vote_ids = m.vote_ids;
        let done = match core.submit_within(&m.actor, &m.body, &cx, vote_ids.len()) {
            Ok(s) => s,
            Err(Refused::Invalid(e)) => return Err(gov_error(e)),
            Err(Refused::NeedVotes(n)) => return Ok(Submitted::NeedVoteIds(n)),
        };
        if m.driver_url.is_some() {
            self.driver_url = m.driver_url;
        }
        let id = done.action.id;
        let records = self.apply(env, done.effects, &mut vote_ids, fx);
        let record = records
            .into_iter()
            .find(|r| r.id == id)
            .unwrap_or(done.action);
        Ok(Submitted::Done(record.to_json()))
    }

    /// A timeout fired or a vote closed: the core resolves the condition once.
    fn fired(
        &mut self,
        env: &ActorsEnv,
        cid: ConditionId,
        vote: Option<VoteResult>,
        fx: &mut Effects,
    ) {
        let Some(core) = &self.core else { return };
        let needed = core
            .condition(cid)
            .map(|c| core.fields_needed_for_action(c.action))
            .unwrap_or_default();
        let fields = match self.fields_of(fx, &needed) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "reading fields for a condition failed");
                HashMap::new()
            }
        };
        let now = fx.now_ms() as i64;
        let Some(core) = self.core.as_mut() else {
            return;
        };
        let cx = Ctx {
            now,
            accounts: &NoLinkedAccounts,
            fields: &fields,
        };
        let fired = match &vote {
            Some(result) => core.vote_closed(cid, result, &cx),
            None => core.timeout_fired(cid, &cx),
        };
        match fired {
            Fired::Resolved(g) => {
                self.apply(env, *g, &mut Vec::new(), fx);
            }
            Fired::AlreadyResolved => {
                tracing::debug!(condition = %cid, "condition already resolved")
            }
            Fired::Unknown => tracing::warn!(condition = %cid, "no such condition"),
        }
    }

    fn list_actions(&self, m: ListActions, fx: &Effects) -> Result<Value, ActorError> {
        self.core()?;
        let after = cursor(&m.cursor)?;
        let limit = m.limit.clamp(1, MAX_PAGE);
        let cx = Ctx::at(fx.now_ms() as i64);
        let mut out = Vec::new();
        let mut scanned = 0usize;
        let mut last: Option<u64> = after;
        let mut exhausted = false;
        'pages: loop {
            let from = last.map(action_key);
            let page = fx.scan_aux(b"a/", from.as_deref(), 256).map_err(internal)?;
            if page.is_empty() {
                exhausted = true;
                break;
            }
            for (k, v) in page {
                scanned += 1;
                last = tail_u64(&k);
                let (_, rec) =
                    decode_record::<ActionRecord>(ACTION_RECORD, VERSION, &v).map_err(internal)?;
                if m.status.as_deref().is_some_and(|s| s != rec.status.name())
                    || m.actor.as_deref().is_some_and(|a| a != rec.actor)
                    || m.target
                        .as_deref()
                        .is_some_and(|t| !rec.targets().iter().any(|o| o.to_string() == t))
                {
                    if scanned >= MAX_SCAN {
                        break 'pages;
                    }
                    continue;
                }
                if let Some(j) = self.action_json(&m.reader, &rec, &cx) {
                    out.push(j);
                }
                if out.len() >= limit || scanned >= MAX_SCAN {
                    break 'pages;
                }
            }
        }
        let next = if exhausted {
            None
        } else {
            last.map(|l| l.to_string())
        };
        Ok(json!({"actions": out, "next_cursor": next}))
    }

    fn list_items(&self, m: ListItems, fx: &Effects) -> Result<Value, ActorError> {
        let core = self.core()?;
        let typ = match &m.typ {
            Some(t) => Some(ItemType::parse(t).ok_or_else(|| {
                refuse(
                    ErrorCode::InvalidQuery,
                    format!("'{t}' is not an item type"),
                    Some("type"),
                )
            })?),
            None => None,
        };
        let within = match &m.within {
            Some(w) => Some(item_id(w, "in")?),
            None => None,
        };
        let cursor = cursor(&m.cursor)?.map(ItemId);
        let q = ListQuery {
            typ,
            within,
            include_inactive: m.include_inactive,
            include_destroyed: false,
            cursor,
            limit: m.limit.clamp(1, MAX_PAGE),
        };
        let cx = Ctx::at(fx.now_ms() as i64);
        let page = core.list_items(m.reader.viewer(), &q, &cx);
        let items: Vec<Value> = page
            .items
            .iter()
            .filter_map(|id| {
                let meta = core.item(*id)?;
                Some(json!({
                    "id": id.to_string(),
                    "type": meta.typ().name(),
                    "version": meta.version(),
                    "active": meta.active(),
                    "destroyed": meta.destroyed(),
                    "creator": core.creator(meta),
                    "created_at": agora_governance::rfc3339(meta.created_at()),
                }))
            })
            .collect();
        Ok(json!({
            "items": items,
            "next_cursor": page.next_cursor.map(|c| c.to_string()),
            "scanned": page.scanned,
        }))
    }

    fn log(&self, m: Log, fx: &Effects) -> Result<Value, ActorError> {
        let core = self.core()?;
        let after = cursor(&m.cursor)?;
        let limit = m.limit.clamp(1, MAX_PAGE);
        let cx = Ctx::at(fx.now_ms() as i64);
        let from = after.map(log_key);
        let page = fx
            .scan_aux(b"l/", from.as_deref(), limit)
            .map_err(internal)?;
        let full = page.len() == limit;
        let mut entries = Vec::new();
        let mut last = None;
        for (k, v) in page {
            last = tail_u64(&k);
            let (_, r) = decode_record::<LogRecord>(LOG_RECORD, VERSION, &v).map_err(internal)?;
            let rec = match r.action.parse::<u64>() {
                Ok(a) => self.action(fx, a)?,
                Err(_) => None,
            };
            // A body is shown to who may view its action's targets, and never once an item
            // it is about was destroyed.
            let shown = match &rec {
                Some(rec) => {
                    let destroyed = items_of(rec)
                        .iter()
                        .any(|i| core.item(*i).is_none_or(ItemMeta::destroyed));
                    !destroyed
                        && rec
                            .targets()
                            .iter()
                            .all(|t| core.can_view_target(m.reader.viewer(), t, &cx))
                }
                None => matches!(m.reader, Reader::Driver),
            };
            let body = match (&r.body, shown) {
                (Some(b), true) => serde_json::from_str::<Value>(b).unwrap_or(Value::Null),
                _ => Value::Null,
            };
            entries.push(json!({
                "seq": r.seq, "at": r.at, "kind": r.kind, "action": r.action,
                "body_hash": r.body_hash, "prev": r.prev, "hash": r.hash, "body": body,
            }));
        }
        Ok(json!({
            "entries": entries,
            "next_cursor": if full { last.map(|l| l.to_string()) } else { None },
        }))
    }

    fn get_item(&self, m: GetItem, fx: &Effects) -> Result<Value, ActorError> {
        let core = self.core()?;
        let id = item_id(&m.id, "id")?;
        let not_found = || {
            refuse(
                ErrorCode::ItemNotFound,
                format!("no item {} that you may view", m.id),
                None,
            )
        };
        let meta = core.item(id).ok_or_else(not_found)?;
        let version = m.version.unwrap_or(meta.version());
        if version == 0 || version > meta.version() {
            return Err(refuse(
                ErrorCode::VersionNotFound,
                format!("item {id} has no version {version}"),
                Some("version"),
            ));
        }
        let fields = if meta.destroyed() {
            None
        } else {
            self.version(fx, id, version)?.map(|v| v.fields)
        };
        let cx = Ctx::at(fx.now_ms() as i64);
        core.item_json(m.reader.viewer(), id, version, fields.as_ref(), &cx)
            .ok_or_else(not_found)
    }

    fn versions(&self, m: ItemVersions, fx: &Effects) -> Result<Value, ActorError> {
        let core = self.core()?;
        let id = item_id(&m.id, "id")?;
        let cx = Ctx::at(fx.now_ms() as i64);
        if !core.can_view(m.reader.viewer(), id, &cx) {
            return Err(refuse(
                ErrorCode::ItemNotFound,
                format!("no item {} that you may view", m.id),
                None,
            ));
        }
        let after = cursor(&m.cursor)?.map(|v| version_key(id, v as u32));
        let limit = m.limit.clamp(1, MAX_PAGE);
        let page = fx
            .scan_aux(&versions_prefix(id), after.as_deref(), limit)
            .map_err(internal)?;
        let full = page.len() == limit;
        let mut out = Vec::new();
        let mut last = None;
        for (_, v) in page {
            let (_, rec) =
                decode_record::<VersionRecord>(VERSION_RECORD, VERSION, &v).map_err(internal)?;
            last = Some(rec.version);
            let mut j = rec.to_json();
            // Only the fields the reader may view, as in `GET /items/{id}`.
            if let Some(shown) =
                core.item_json(m.reader.viewer(), id, rec.version, Some(&rec.fields), &cx)
            {
                j["fields"] = shown["fields"].clone();
            }
            out.push(j);
        }
        Ok(json!({
            "versions": out,
            "next_cursor": if full { last.map(|l| l.to_string()) } else { None },
        }))
    }

    fn notices(&self, m: ItemNotices, fx: &Effects) -> Result<Value, ActorError> {
        let core = self.core()?;
        let id = item_id(&m.id, "id")?;
        let cx = Ctx::at(fx.now_ms() as i64);
        if !core.can_view(m.reader.viewer(), id, &cx) {
            return Err(refuse(
                ErrorCode::ItemNotFound,
                format!("no item {} that you may view", m.id),
                None,
            ));
        }
        if !core.can_read(
            m.reader.viewer(),
            agora_governance::Ability::ViewNotices,
            id,
            &cx,
        ) {
            return Err(refuse(
                ErrorCode::NotPermitted,
                format!("reading the notices of item {id} needs 'view action_notices'"),
                None,
            ));
        }
        let after = cursor(&m.cursor)?.map(|n| notice_key(id, n));
        let limit = m.limit.clamp(1, MAX_PAGE);
        let page = fx
            .scan_aux(&notices_prefix(id), after.as_deref(), limit)
            .map_err(internal)?;
        let full = page.len() == limit;
        let mut out = Vec::new();
        let mut last = None;
        for (k, v) in page {
            last = tail_u64(&k);
            let (_, n) = decode_record::<Notice>(NOTICE_RECORD, VERSION, &v).map_err(internal)?;
            if core.can_read_notice(m.reader.viewer(), &n, &cx) {
                out.push(n.to_json());
            }
        }
        Ok(json!({
            "notices": out,
            "next_cursor": if full { last.map(|l| l.to_string()) } else { None },
        }))
    }
}

impl VirtualActor for Governance {
    const KIND: &'static str = "governance";
    type Env = ActorsEnv;
    const RESTORE_AUX: bool = false;

    /// The community's partition: its slug places it, as it places the community.
    fn partition(key: &str) -> u32 {
        agora_runtime::partition_of(key)
    }

    fn restore(id: &ActorId, _env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        let Some(bytes) = stored.state else {
            return Ok(Governance {
                slug: id.key.clone(),
                core: None,
                driver_url: None,
            });
        };
        let (_, s) = decode_record::<State>(RECORD, VERSION, &bytes).map_err(|e| e.to_string())?;
        let core = Community::restore(s.snapshot, s.items).map_err(|e| e.to_string())?;
        Ok(Governance {
            slug: id.key.clone(),
            core: Some(core),
            driver_url: s.driver_url,
        })
    }

    fn on_reminder(&mut self, env: &ActorsEnv, r: Reminder, fx: &mut Effects) {
        if let Some(rest) = r.name.strip_prefix(PHASE) {
            let parsed = rest.split_once('/').and_then(|(m, at)| {
                Some((ItemId(m.parse::<u64>().ok()?), at.parse::<i64>().ok()?))
            });
            match parsed {
                Some((module, at)) => self.phase_boundary(env, module, at, fx),
                None => tracing::warn!(name = %r.name, "a malformed phase reminder"),
            }
            return;
        }
        match r
            .name
            .strip_prefix(TIMEOUT)
            .and_then(|c| c.parse::<u64>().ok())
        {
            Some(c) => self.fired(env, ConditionId(c), None, fx),
            None => tracing::warn!(name = %r.name, "an unknown governance reminder"),
        }
    }

    fn on_message(&mut self, env: &ActorsEnv, msg: Delivery, fx: &mut Effects) {
        if !msg.is::<VoteOutcome>() {
            tracing::warn!(kind = %msg.message_kind, "an unknown message to a governance actor");
            return;
        }
        let m = match msg.decode::<VoteOutcome>() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "a vote outcome failed to decode");
                return;
            }
        };
        // An outcome that cannot be read (a vote that could not open) rejects the condition.
        let result = serde_json::from_str::<Value>(&m.result)
            .ok()
            .and_then(|v| VoteResult::from_json(&v))
            .unwrap_or(VoteResult::Passed(false));
        self.fired(env, ConditionId(m.condition), Some(result), fx);
    }
}

/// Whether the active phase of the module governance item `item` is in allows `vote` at
/// `at_ms` (a ballot's arrival): `Ok` also outside modules and for an unknown item (the vote
/// was attached to what the driver named; the phase is the only rule here), `Err` with the
/// sentence of `phase_closed` otherwise.
pub struct PhaseAllows {
    pub item: String,
    pub at_ms: i64,
}

impl Message<Governance> for PhaseAllows {
    type Reply = Result<(), String>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        let (Some(core), Ok(item)) = (g.core.as_ref(), self.item.parse::<u64>()) else {
            return Ok(());
        };
        core.phase_allows(
            ItemId(item),
            agora_governance::PhaseAbility::Vote,
            self.at_ms,
        )
        .map_err(|(_, why)| why)
    }
}

impl Message<Governance> for Found {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        if g.core.is_some() {
            return Err(refuse(
                ErrorCode::GovernanceExists,
                format!("community '{}' already has its governance", g.slug),
                None,
            ));
        }
        let core =
            Community::found(&self.actor, &self.body, fx.now_ms() as i64).map_err(gov_error)?;
        tracing::debug!(community = %g.slug, founder = %self.actor, "governance founded");
        let out = core.constitution_json();
        g.core = Some(core);
        g.driver_url = self.driver_url;
        g.save(fx);
        Ok(out)
    }
}

impl Message<Governance> for GetConstitution {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        Ok(g.core()?.constitution_json())
    }
}

impl Message<Governance> for Submit {
    type Reply = Result<Submitted, ActorError>;

    fn handle(self, g: &mut Governance, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        g.submit(env, self, fx)
    }
}

impl Message<Governance> for DryRun {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let needed = g.fields_for_body(&self.body);
        let fields = g.fields_of(fx, &needed)?;
        let linked = linked(&self.actor, &self.platforms);
        let cx = Ctx {
            now: fx.now_ms() as i64,
            accounts: &linked,
            fields: &fields,
        };
        g.core()?
            .dry_run(&self.actor, &self.body, &cx)
            .map_err(gov_error)
    }
}

impl Message<Governance> for GetAction {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        g.core()?;
        let id = parse_numeric_id(&self.id, "id").map_err(gov_error)?;
        let not_found = || {
            refuse(
                ErrorCode::ActionNotFound,
                format!("no action {id} that you may view"),
                None,
            )
        };
        let rec = g.action(fx, id)?.ok_or_else(not_found)?;
        let cx = Ctx::at(fx.now_ms() as i64);
        g.action_json(&self.reader, &rec, &cx).ok_or_else(not_found)
    }
}

impl Message<Governance> for ListActions {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        g.list_actions(self, fx)
    }
}

impl Message<Governance> for GetItem {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        g.get_item(self, fx)
    }
}

impl Message<Governance> for ListItems {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        g.list_items(self, fx)
    }
}

impl Message<Governance> for ItemVersions {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        g.versions(self, fx)
    }
}

impl Message<Governance> for ItemNotices {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        g.notices(self, fx)
    }
}

impl Message<Governance> for Subscribe {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let sub = Subscription::parse(&self.actor, &self.body).map_err(gov_error)?;
        let cx = Ctx::at(fx.now_ms() as i64);
        let core = g.core.as_mut().ok_or_else(|| {
            refuse(
                ErrorCode::GovernanceNotFound,
                "this community has no governance yet",
                None,
            )
        })?;
        let out = sub.to_json();
        core.subscribe(sub, &cx).map_err(gov_error)?;
        g.save(fx);
        Ok(out)
    }
}

impl Message<Governance> for Subscriptions {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        let list: Vec<Value> = g
            .core()?
            .subscriptions_of(&self.actor)
            .into_iter()
            .map(Subscription::to_json)
            .collect();
        Ok(json!({"subscriptions": list, "next_cursor": null}))
    }
}

impl Message<Governance> for Unsubscribe {
    type Reply = Result<(), ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let item = item_id(&self.item, "item")?;
        let core = g.core.as_mut().ok_or_else(|| {
            refuse(
                ErrorCode::GovernanceNotFound,
                "this community has no governance yet",
                None,
            )
        })?;
        if !core.unsubscribe(&self.actor, item) {
            return Err(refuse(
                ErrorCode::SubscriptionNotFound,
                format!("'{}' has no subscription to item {item}", self.actor),
                None,
            ));
        }
        g.save(fx);
        Ok(())
    }
}

impl Message<Governance> for Log {
    type Reply = Result<Value, ActorError>;

    fn handle(self, g: &mut Governance, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        g.log(self, fx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_the_core_refuses_with_is_an_error_code_with_its_status() {
        // The codes `agora-governance` constructs (grep `GovError::` there), with the status
        // class it gives each.
        let codes: &[(&str, u16)] = &[
            ("invalid_params", 400),
            ("invalid_body", 400),
            ("invalid_id", 400),
            ("invalid_target", 400),
            ("unknown_change", 400),
            ("unknown_role", 400),
            ("builtin_role", 400),
            ("automated_role", 400),
            ("duplicate_role", 400),
            ("already_in_role", 400),
            ("already_member", 400),
            ("answer_not_supported", 400),
            ("last_owner", 400),
            ("no_change", 400),
            ("not_a_collection", 400),
            ("not_a_container", 400),
            ("unknown_phase_type", 400),
            ("invalid_phase", 400),
            ("not_a_member", 400),
            ("not_in_role", 400),
            ("role_in_use", 400),
            ("already_in_collection", 409),
            ("destroyed", 409),
            ("fields_unavailable", 409),
            ("inactive", 409),
            ("not_in_collection", 409),
            ("not_waiting", 409),
            ("still_active", 409),
            ("too_early", 409),
            ("too_many_votes", 409),
            ("unknown_target", 404),
        ];
        for (name, status) in codes {
            let code = ErrorCode::from_name(name).unwrap_or_else(|| panic!("{name} is no code"));
            assert_eq!(code.status(), *status, "{name}");
        }
    }

    #[test]
    fn record_keys_sort_by_their_numbers() {
        assert!(action_key(2) < action_key(10));
        assert!(version_key(ItemId(1), 9) < version_key(ItemId(1), 10));
        assert!(version_key(ItemId(1), u32::MAX) < version_key(ItemId(2), 1));
        assert_eq!(tail_u64(&log_key(77)), Some(77));
        assert_eq!(
            process_id("/api/internal/process/vote.proposal/4099"),
            Some(4099)
        );
    }
}
