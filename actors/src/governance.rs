//! The governance actor (key: the community's slug): one community's governance engine
//! (`../shared/governance-api.md`, sections 2–5, 7, 8), in the community's partition.
//!
//! It holds the pure core's [`Community`] in memory (the constitution, roles, the permission
//! index, item metadata, waiting actions with their conditions): every decision is one
//! synchronous call inside this actor.
//!
//! Persistence is incremental, so an action writes O(1) records however large the community:
//! the state record holds only the core's small snapshot head (counters, log head, authority,
//! switches) and the driver URL; the rest of the in-memory state is one auxiliary record per
//! entry under `s/`, which restore loads ([`VirtualActor::RESTORE_AUX_PREFIXES`]), decoding
//! each as it is read ([`VirtualActor::restore_streamed`]): item metadata (`s/i/<item>`),
//! waiting actions (`s/w/<action>`), their conditions (`s/k/<condition>`), interned agent
//! names (`s/g/<index>`), tallies (one per agent and change type, `s/q/<position><agent>`, laid
//! over the whole lists `s/t/<agent>` an older layout wrote)
//! and subscriptions (`s/u/<item>`); members, roles and permissions are one record each (`s/m`,
//! `s/r`, `s/p`), rewritten only when the core says the constitution changed. A commit writes
//! the entries the core's `Effects::changed` and action records name. State records of format
//! 1 (the whole snapshot with every item in the state record) are still read, and the first
//! commit after such a restore writes the new layout in full.
//!
//! What grows without bound and is not needed for decisions is kept in auxiliary records
//! written in the same commit and read on demand: action records (`a/<id>`), log entries
//! (`l/<seq>`), item versions (`v/<item><version>`) and notices (`n/<item><id>`). Every number
//! in a key is big-endian so records list in order.
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
    parse_numeric_id, ActionId, ActionRecord, ChangeKind, Community, ConditionId, Ctx,
    Effects as GovEffects, Fields, Fired, GovError, ItemId, ItemMeta, ItemType, ListQuery,
    NoLinkedAccounts, Notice, Refused, Snapshot, SnapshotParts, Subscription, Tallies, Tally,
    VersionRecord, Viewer, VoteResult,
};
use agora_plugins::{ErrorCode, Event};
use agora_runtime::{
    ActorId, ActorMessage, Delivery, Effects, Message, OutboxMessage, Reminder, RestoreAux, Stored,
    VirtualActor,
};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::vote::{CloseForCondition, OpenForCondition, Vote};
use crate::{events, ActorError, ActorsEnv};

const RECORD: &str = "governance";
/// The state record's format: 1 held the whole snapshot and every item; 2 holds the snapshot
/// head, the rest being `s/` records. Other record kinds are still at 1.
const STATE_VERSION: u16 = 2;
const VERSION: u16 = 1;
/// The kind of every `s/` record (its body is the entry's own type).
const PART_RECORD: &str = "gov_part";
/// Where the records restore loads live.
const PARTS: &[u8] = b"s/";
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
    /// Format 2: the snapshot head ([`Community::snapshot_head`]). Format 1: the whole snapshot.
    snapshot: Snapshot,
    /// Format 1 only: every item's metadata in id order.
    #[serde(default)]
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
    /// The action as recorded (201). The record, not its JSON: the caller's thread builds the
    /// answer, so the community's one actor thread neither builds that tree nor frees it
    /// across threads.
    Done(Box<ActionRecord>),
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
    /// The target item's latest version, read by the caller ([`prefetch`]).
    pub prefetched: Option<Prefetched>,
}

/// `POST /actions?dry_run=true`.
pub struct DryRun {
    pub actor: String,
    pub platforms: Vec<String>,
    pub body: Value,
    pub prefetched: Option<Prefetched>,
}

/// An item's version record as the caller of [`Submit`] or [`DryRun`] read it from storage
/// before asking: a hint, used only when it is the version the actor holds as current.
pub struct Prefetched(VersionRecord);

/// Reads, on the caller's thread, the latest version of the item an `edit_item` targets,
/// whose fields the actor needs to merge the edit. The community's one thread then does not
/// read storage for it, nor wait there while the committer applies a group (sled's batch
/// apply holds a tree-wide lock): in the governance bench that read was about a fifth of the
/// actor's time per action and stalled it behind every commit. Anything else, an unreadable
/// or odd record, or a node not serving the community, is no hint: the actor reads as before.
pub fn prefetch(rt: &agora_runtime::Runtime, slug: &str, body: &Value) -> Option<Prefetched> {
    if body.get("change").and_then(Value::as_str) != Some("edit_item") {
        return None;
    }
    let item = body
        .get("target")
        .and_then(Value::as_str)?
        .strip_prefix("item:")
        .and_then(|n| parse_numeric_id(n, "target").ok())?;
    let item = ItemId(item);
    let (sub, bytes) = rt
        .peek_last_aux::<Governance>(slug, &versions_prefix(item))
        .ok()??;
    let (_, v) = decode_record::<VersionRecord>(VERSION_RECORD, VERSION, &bytes).ok()?;
    (v.item == item && sub == version_key(item, v.version)).then_some(Prefetched(v))
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

/// The answer to [`ListItems`]: typed rather than a `Value` tree, so the actor thread only
/// copies each row's few numbers and its creator's name, and the gateway's thread writes the
/// JSON (ids and times formatted as it goes). Fields are in alphabetical order, the order
/// `json!` objects serialise in, so the bytes are the same as before.
#[derive(Debug, Serialize)]
pub struct ItemsPage {
    pub items: Vec<ItemRow>,
    pub next_cursor: Option<String>,
    pub scanned: usize,
}

/// One listed item: `{"active","created_at","creator","destroyed","id","type","version"}`.
#[derive(Debug, Serialize)]
pub struct ItemRow {
    pub active: bool,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
    pub creator: Box<str>,
    pub destroyed: bool,
    #[serde(serialize_with = "decimal")]
    pub id: u64,
    #[serde(rename = "type")]
    pub typ: &'static str,
    pub version: u32,
}

fn rfc3339<S: serde::Serializer>(at: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&agora_governance::rfc3339(*at))
}

/// Item ids are strings in the API.
fn decimal<S: serde::Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
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

/// The parts of the state one commit changed (see [`Governance::save`]).
#[derive(Default)]
struct Changes {
    constitution: bool,
    items: Vec<ItemId>,
    /// Waiting actions added or updated (their records and conditions are rewritten).
    pending: Vec<ActionId>,
    /// Waiting actions resolved (their records and conditions go).
    resolved: Vec<ActionId>,
    conditions: Vec<ConditionId>,
    /// Tallies of implemented changes that grew: the agent and the tally's position.
    tallies: Vec<(String, usize)>,
    subscriptions: Vec<ItemId>,
}

impl Changes {
    /// What a call of the core changed, from its `changed` and the action records it returned
    /// (an action's conditions appear in its record, and so does who implemented it).
    fn of(g: &agora_governance::Changed, actions: &[ActionRecord]) -> Changes {
        let mut c = Changes {
            constitution: g.constitution,
            items: g.items.clone(),
            pending: g.pending.clone(),
            resolved: g.resolved.clone(),
            tallies: g.tallies.clone(),
            ..Changes::default()
        };
        for a in actions {
            if a.status == agora_governance::Status::Waiting && !c.pending.contains(&a.id) {
                c.pending.push(a.id);
            }
            c.conditions.extend(a.conditions.iter().map(|s| s.id));
        }
        c
    }
}

pub struct Governance {
    slug: String,
    core: Option<Community>,
    driver_url: Option<String>,
    /// How many interned agent names are stored (`s/g/<index>` below it).
    agents_saved: usize,
    /// The stored layout is older or absent: the next commit writes every part.
    save_all: bool,
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

fn part_key(kind: &[u8], id: &[u8]) -> Vec<u8> {
    let mut k = PARTS.to_vec();
    k.extend_from_slice(kind);
    k.extend_from_slice(id);
    k
}

const ITEM_PART: &[u8] = b"i/";
const PENDING_PART: &[u8] = b"w/";
const CONDITION_PART: &[u8] = b"k/";
const AGENT_PART: &[u8] = b"g/";
/// An agent's whole list of tallies, as format 2 first wrote it: still read, no longer written.
const TALLY_PART: &[u8] = b"t/";
/// One tally: `q/<position in the agent's list, u16 big-endian><agent>`. An action rewrites
/// only the tally it grew (up to `MAX_RATE_COUNT` timestamps), not the agent's every tally.
const TALLY_AT_PART: &[u8] = b"q/";
const SUBSCRIPTION_PART: &[u8] = b"u/";
const MEMBERS_PART: &[u8] = b"m";
const ROLES_PART: &[u8] = b"r";
const PERMISSIONS_PART: &[u8] = b"p";

fn put_part<T: Serialize>(fx: &mut Effects, key: Vec<u8>, value: &T) {
    match encode_record(PART_RECORD, VERSION, value) {
        Ok(b) => fx.put_aux(key, b),
        Err(e) => tracing::error!(error = %e, "a governance state part failed to encode"),
    }
}

/// The tally at position `at` of `agent`'s list, stored as a one-entry list so that it decodes
/// as a [`TALLY_PART`] record does.
fn put_tally(fx: &mut Effects, agent: &str, at: usize, t: &(ChangeKind, Tally)) {
    let Ok(at16) = u16::try_from(at) else {
        // There are far fewer change types than this.
        tracing::error!(at, "a tally position beyond u16");
        return;
    };
    let mut id = at16.to_be_bytes().to_vec();
    id.extend_from_slice(agent.as_bytes());
    put_part(
        fx,
        part_key(TALLY_AT_PART, &id),
        &(agent, std::slice::from_ref(t)),
    );
}

fn decode_part<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    decode_record::<T>(PART_RECORD, VERSION, bytes)
        .map(|(_, v)| v)
        .map_err(|e| e.to_string())
}

/// Rebuilds the core from a format-2 head and its `s/` records (sub-keys, in key order).
#[cfg(test)]
fn restore_parts(head: Snapshot, aux: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Community, String> {
    let mut parts = RestoredParts::default();
    for (k, v) in aux {
        parts.take(&k, &v)?;
    }
    parts.finish(head)
}

/// The `s/` records of a format-2 state, decoded one at a time as restore reads them (the
/// records themselves are never all held: a large community has one per item).
#[derive(Default)]
struct RestoredParts {
    parts: SnapshotParts,
    items: Vec<ItemMeta>,
    /// Single tallies, merged over the whole lists once every record is read.
    single: Vec<(u16, Box<str>, Tallies)>,
}

impl RestoredParts {
    /// Decodes the record at sub-key `k`; records must come in key order.
    fn take(&mut self, k: &[u8], v: &[u8]) -> Result<(), String> {
        let (parts, items, single) = (&mut self.parts, &mut self.items, &mut self.single);
        let Some(k) = k.strip_prefix(PARTS) else {
            return Ok(());
        };
        let numbered = |rest: &[u8]| -> Result<u64, String> {
            let b: [u8; 8] = rest
                .try_into()
                .map_err(|_| format!("a governance record key of {} bytes", rest.len()))?;
            Ok(u64::from_be_bytes(b))
        };
        if let Some(rest) = k.strip_prefix(ITEM_PART) {
            let id = numbered(rest)?;
            if id != items.len() as u64 + 1 {
                return Err(format!(
                    "item {id} is stored after {} items: the item records are not contiguous",
                    items.len()
                ));
            }
            items.push(decode_part::<ItemMeta>(v)?);
        } else if k.starts_with(PENDING_PART) {
            parts.pending.push(decode_part(v)?);
        } else if let Some(rest) = k.strip_prefix(CONDITION_PART) {
            parts
                .conditions
                .push((ConditionId(numbered(rest)?), decode_part(v)?));
        } else if let Some(rest) = k.strip_prefix(AGENT_PART) {
            let ix = numbered(rest)?;
            if ix != parts.agents.len() as u64 {
                return Err(format!("agent name {ix} is missing its predecessors"));
            }
            parts.agents.push(decode_part(v)?);
        } else if k.starts_with(TALLY_PART) {
            parts.tallies.push(decode_part(v)?);
        } else if let Some(rest) = k.strip_prefix(TALLY_AT_PART) {
            let at = rest
                .get(..2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or("a tally record key without its position")?;
            let (agent, one): (Box<str>, Tallies) = decode_part(v)?;
            single.push((at, agent, one));
        } else if k.starts_with(SUBSCRIPTION_PART) {
            parts
                .subscriptions
                .extend(decode_part::<Vec<Subscription>>(v)?);
        } else if k == MEMBERS_PART {
            parts.members = decode_part(v)?;
        } else if k == ROLES_PART {
            parts.roles = decode_part(v)?;
        } else if k == PERMISSIONS_PART {
            parts.permissions = decode_part(v)?;
        } else {
            return Err(format!(
                "an unknown governance state record '{}'",
                String::from_utf8_lossy(k)
            ));
        }
        Ok(())
    }

    /// The core, from the head and every record taken.
    fn finish(mut self, head: Snapshot) -> Result<Community, String> {
        merge_tallies(&mut self.parts.tallies, self.single)?;
        Community::restore(head.with_parts(self.parts), self.items).map_err(|e| e.to_string())
    }
}

/// Lays single tallies over the whole lists: each replaces the tally at its position or, at
/// the end of its agent's list, appends one (a tally is appended once and never removed, so
/// taken in position order they leave no gap).
fn merge_tallies(
    lists: &mut Vec<(Box<str>, Tallies)>,
    mut single: Vec<(u16, Box<str>, Tallies)>,
) -> Result<(), String> {
    single.sort_by_key(|(at, _, _)| *at);
    let mut index: HashMap<Box<str>, usize> = lists
        .iter()
        .enumerate()
        .map(|(i, (a, _))| (a.clone(), i))
        .collect();
    for (at, agent, one) in single {
        let Some(t) = one.into_iter().next() else {
            continue;
        };
        let i = *index.entry(agent.clone()).or_insert_with(|| {
            lists.push((agent.clone(), Tallies::new()));
            lists.len() - 1
        });
        let list = &mut lists[i].1;
        let at = usize::from(at);
        let len = list.len();
        match list.get_mut(at) {
            Some(slot) if slot.0 == t.0 => *slot = t,
            Some(_) => {
                return Err(format!(
                    "agent {agent}'s tally {at} changed its change type"
                ))
            }
            None if at == len => list.push(t),
            None => {
                return Err(format!(
                    "agent {agent}'s tally {at} is missing its predecessors"
                ))
            }
        }
    }
    Ok(())
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
    /// Rebuilds the actor from its state record; `feed` hands the `s/` records (in key order)
    /// to the parts being restored, and is not called for a state without them.
    fn rebuild(
        id: &ActorId,
        state: Option<Vec<u8>>,
        feed: impl FnOnce(&mut RestoredParts) -> Result<(), String>,
    ) -> Result<Self, String> {
        let Some(bytes) = state else {
            return Ok(Governance {
                slug: id.key.clone(),
                core: None,
                driver_url: None,
                agents_saved: 0,
                save_all: false,
            });
        };
        let (version, s) =
            decode_record::<State>(RECORD, STATE_VERSION, &bytes).map_err(|e| e.to_string())?;
        drop(bytes);
        // Format 1 kept everything in the state record; its first commit rewrites it all.
        let (core, save_all) = if version < 2 {
            let core = Community::restore(s.snapshot, s.items).map_err(|e| e.to_string())?;
            (core, true)
        } else {
            let mut parts = RestoredParts::default();
            feed(&mut parts)?;
            (parts.finish(s.snapshot)?, false)
        };
        Ok(Governance {
            slug: id.key.clone(),
            agents_saved: core.agent_names().len(),
            core: Some(core),
            driver_url: s.driver_url,
            save_all,
        })
    }

    fn core(&self) -> Result<&Community, ActorError> {
        self.core.as_ref().ok_or_else(|| {
            refuse(
                ErrorCode::GovernanceNotFound,
                format!("community '{}' has no governance yet", self.slug),
                None,
            )
        })
    }

    /// Writes the state record (the small head) and the parts `changed` and `actions` name,
    /// or every part when the stored layout needs it.
    fn save(&mut self, fx: &mut Effects, changed: &Changes) {
        let Some(core) = &self.core else { return };
        let state = State {
            driver_url: self.driver_url.clone(),
            snapshot: core.snapshot_head(),
            items: Vec::new(),
        };
        match encode_record(RECORD, STATE_VERSION, &state) {
            Ok(b) => fx.save_state(b),
            Err(e) => tracing::error!(error = %e, "governance state failed to encode"),
        }
        if std::mem::take(&mut self.save_all) {
            Self::save_everything(core, fx);
            self.agents_saved = core.agent_names().len();
            return;
        }
        if changed.constitution {
            let (members, roles, permissions) = core.constitution_parts();
            put_part(fx, part_key(MEMBERS_PART, b""), &members);
            put_part(fx, part_key(ROLES_PART, b""), &roles);
            put_part(fx, part_key(PERMISSIONS_PART, b""), &permissions);
        }
        let names = core.agent_names();
        for (ix, name) in names.iter().enumerate().skip(self.agents_saved) {
            put_part(fx, part_key(AGENT_PART, &(ix as u64).to_be_bytes()), name);
        }
        self.agents_saved = names.len();
        for id in &changed.items {
            if let Some(meta) = core.item(*id) {
                put_part(fx, part_key(ITEM_PART, &id.0.to_be_bytes()), meta);
            }
        }
        for aid in &changed.pending {
            if let Some(p) = core.pending_action(*aid) {
                put_part(fx, part_key(PENDING_PART, &aid.0.to_be_bytes()), p);
            }
        }
        for aid in &changed.resolved {
            if core.pending_action(*aid).is_none() {
                fx.delete_aux(part_key(PENDING_PART, &aid.0.to_be_bytes()));
            }
        }
        // A resolved action's conditions leave memory with it; a new action implemented at
        // once never had a stored condition, so it needs no deletion.
        for cid in &changed.conditions {
            let key = part_key(CONDITION_PART, &cid.0.to_be_bytes());
            match core.condition(*cid) {
                Some(c) => put_part(fx, key, c),
                None => fx.delete_aux(key),
            }
        }
        for (agent, at) in &changed.tallies {
            if let Some(t) = core.tallies_of(agent).and_then(|t| t.get(*at)) {
                put_tally(fx, agent, *at, t);
            }
        }
        for item in &changed.subscriptions {
            let key = part_key(SUBSCRIPTION_PART, &item.0.to_be_bytes());
            match core.subscriptions_on(*item) {
                [] => fx.delete_aux(key),
                list => put_part(fx, key, &list),
            }
        }
    }

    /// Every part, for a new community or one stored in the old layout (whose `s/` records do
    /// not exist yet, so nothing stale can remain).
    fn save_everything(core: &Community, fx: &mut Effects) {
        let parts = core.snapshot_parts();
        put_part(fx, part_key(MEMBERS_PART, b""), &parts.members);
        put_part(fx, part_key(ROLES_PART, b""), &parts.roles);
        put_part(fx, part_key(PERMISSIONS_PART, b""), &parts.permissions);
        for (ix, name) in parts.agents.iter().enumerate() {
            put_part(fx, part_key(AGENT_PART, &(ix as u64).to_be_bytes()), name);
        }
        for (i, meta) in core.item_metas().iter().enumerate() {
            put_part(fx, part_key(ITEM_PART, &(i as u64 + 1).to_be_bytes()), meta);
        }
        for p in &parts.pending {
            put_part(fx, part_key(PENDING_PART, &p.record.id.0.to_be_bytes()), p);
        }
        for (cid, c) in &parts.conditions {
            put_part(fx, part_key(CONDITION_PART, &cid.0.to_be_bytes()), c);
        }
        for (agent, list) in &parts.tallies {
            for (at, t) in list.iter().enumerate() {
                put_tally(fx, agent, at, t);
            }
        }
        let mut by_item: std::collections::BTreeMap<ItemId, Vec<&Subscription>> =
            std::collections::BTreeMap::new();
        for sub in &parts.subscriptions {
            by_item.entry(sub.item).or_default().push(sub);
        }
        for (item, list) in by_item {
            put_part(
                fx,
                part_key(SUBSCRIPTION_PART, &item.0.to_be_bytes()),
                &list,
            );
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
        mut hint: Option<Prefetched>,
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
            // A version record is written once and never changed (destroy deletes them all,
            // checked above), so the hint is right whenever it is the version held as current.
            let current =
                |Prefetched(v): &mut Prefetched| v.item == *id && v.version == meta.version();
            if let Some(Prefetched(v)) = hint.take_if(current) {
                out.insert(*id, v.fields);
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
        let changes = Changes::of(&g.changed, &g.actions);
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
            // The action's JSON is built only for a listener: with none, each action would
            // build and drop it on the community's one thread for nothing.
            if !events::heard(fx, url.as_deref()) {
                continue;
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
        self.save(fx, &changes);
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
        let fields = self.fields_of(fx, &needed, m.prefetched)?;
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
        Ok(Submitted::Done(Box::new(record)))
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
        let fields = match self.fields_of(fx, &needed, None) {
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

    fn list_items(&self, m: ListItems, fx: &Effects) -> Result<ItemsPage, ActorError> {
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
        let items = page
            .items
            .iter()
            .filter_map(|id| {
                let meta = core.item(*id)?;
                Some(ItemRow {
                    active: meta.active(),
                    created_at: meta.created_at(),
                    creator: core.creator(meta).into(),
                    destroyed: meta.destroyed(),
                    id: id.0,
                    typ: meta.typ().name(),
                    version: meta.version(),
                })
            })
            .collect();
        Ok(ItemsPage {
            items,
            next_cursor: page.next_cursor.map(|c| c.to_string()),
            scanned: page.scanned,
        })
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
    const RESTORE_AUX_PREFIXES: &'static [&'static [u8]] = &[PARTS];

    /// The community's partition: its slug places it, as it places the community.
    fn partition(key: &str) -> u32 {
        agora_runtime::partition_of(key)
    }

    fn restore(id: &ActorId, _env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        let aux = stored.aux;
        Self::rebuild(id, stored.state, |parts| {
            for (k, v) in &aux {
                parts.take(k, v)?;
            }
            Ok(())
        })
    }

    /// Activation's way in: each `s/` record is decoded as it is read, so a community of
    /// 100,000 items never holds their 100,000 stored buffers at once.
    fn restore_streamed(
        id: &ActorId,
        _env: &ActorsEnv,
        state: Option<Vec<u8>>,
        aux: RestoreAux<'_>,
    ) -> Result<Self, String> {
        Self::rebuild(id, state, |parts| {
            // Item ids are dense from 1, so the last item record's id is their number: the
            // vector is allocated once, not grown by doubling. The records still decide what
            // is restored (a gap is refused as before); a corrupt key at worst fails to reserve.
            let items = part_key(ITEM_PART, b"");
            let last = aux.last_sub_key(&items)?;
            let count = last
                .as_deref()
                .and_then(|k| <[u8; 8]>::try_from(k.strip_prefix(items.as_slice())?).ok())
                .map(u64::from_be_bytes)
                .and_then(|n| usize::try_from(n).ok());
            if let Some(n) = count {
                let _ = parts.items.try_reserve_exact(n);
            }
            aux.for_each(|k, v| parts.take(k, v))
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
        g.save_all = true;
        g.save(fx, &Changes::default());
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
        let fields = g.fields_of(fx, &needed, self.prefetched)?;
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
    type Reply = Result<ItemsPage, ActorError>;

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
        let item = sub.item;
        core.subscribe(sub, &cx).map_err(gov_error)?;
        let changes = Changes {
            subscriptions: vec![item],
            ..Changes::default()
        };
        g.save(fx, &changes);
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
        let changes = Changes {
            subscriptions: vec![item],
            ..Changes::default()
        };
        g.save(fx, &changes);
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
    fn a_typed_items_page_writes_the_bytes_the_json_tree_wrote() {
        let page = ItemsPage {
            items: vec![ItemRow {
                active: false,
                created_at: 1_700_000_000_123,
                creator: "m\"0".into(),
                destroyed: true,
                id: 42,
                typ: ItemType::Document.name(),
                version: 7,
            }],
            next_cursor: Some("42".into()),
            scanned: 3,
        };
        let tree = json!({
            "items": [{
                "id": "42",
                "type": "document",
                "version": 7,
                "active": false,
                "destroyed": true,
                "creator": "m\"0",
                "created_at": agora_governance::rfc3339(1_700_000_000_123),
            }],
            "next_cursor": "42",
            "scanned": 3,
        });
        assert_eq!(
            serde_json::to_string(&page).unwrap(),
            serde_json::to_string(&tree).unwrap()
        );
        let empty = ItemsPage {
            items: Vec::new(),
            next_cursor: None,
            scanned: 0,
        };
        assert_eq!(
            serde_json::to_string(&empty).unwrap(),
            r#"{"items":[],"next_cursor":null,"scanned":0}"#
        );
    }

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

    use std::sync::Arc;

    use agora_runtime::{Message, Runtime, RuntimeConfig, SystemClock};

    use crate::counting::Counting;

    /// The whole in-memory state, to compare before and after a restart.
    struct Peek;

    impl Message<Governance> for Peek {
        type Reply = Option<(Snapshot, Vec<ItemMeta>)>;
        fn handle(self, g: &mut Governance, _: &ActorsEnv, _: &mut Effects) -> Self::Reply {
            g.core
                .as_ref()
                .map(|c| (c.snapshot(), c.item_metas().to_vec()))
        }
    }

    fn start(engine: Arc<Counting>) -> Runtime {
        let rt = Runtime::start(RuntimeConfig::default(), engine, Arc::new(SystemClock)).unwrap();
        rt.register::<Governance>(crate::env::tests::env());
        rt
    }

    fn submit(actor: &str, body: Value) -> Submit {
        Submit {
            actor: actor.into(),
            platforms: Vec::new(),
            body,
            driver_url: None,
            vote_ids: Vec::new(),
            prefetched: None,
        }
    }

    fn create(n: usize) -> Value {
        json!({"change": "create_item", "target": "community",
               "params": {"type": "document", "fields": {"name": format!("doc {n}"), "body": "b"}}})
    }

    async fn act(rt: &Runtime, actor: &str, body: Value) -> Value {
        match rt.ask::<Governance, _>("town", submit(actor, body)).await {
            Ok(Ok(Submitted::Done(v))) => v.to_json(),
            other => panic!("the action failed: {:?}", other.map(|r| r.map(|_| ()))),
        }
    }

    /// A version read before asking ([`prefetch`]) is used only when it is the item's current
    /// version: a stale one, or another item's, is ignored and the edit merges over what the
    /// actor holds; a current one is taken as it is, without a storage read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_edit_takes_a_prefetched_version_only_when_it_is_the_current_one() {
        let rt = start(Arc::new(Counting::default()));
        let found = Found {
            actor: "ana".into(),
            body: json!({"members": ["ben"]}),
            driver_url: None,
        };
        rt.ask::<Governance, _>("town", found)
            .await
            .unwrap()
            .unwrap();
        let item = |made: &Value| made["result"]["item"].as_str().unwrap().to_string();
        let a = item(&act(&rt, "ana", create(1)).await);
        let b = item(&act(&rt, "ana", create(2)).await);
        let edit = |id: &str, fields: Value| {
            json!({"change": "edit_item", "target": format!("item:{id}"),
                   "params": {"fields": fields}})
        };
        let latest = |id: &str| prefetch(&rt, "town", &edit(id, json!({}))).expect("a version");
        let edit_with = |id: &str, fields: Value, hint: Prefetched| {
            let mut m = submit("ana", edit(id, fields));
            m.prefetched = Some(hint);
            let rt = rt.clone();
            async move {
                match rt.ask::<Governance, _>("town", m).await {
                    Ok(Ok(Submitted::Done(r))) => assert_eq!(r.to_json()["status"], "implemented"),
                    other => panic!("the edit failed: {:?}", other.map(|r| r.map(|_| ()))),
                }
            }
        };
        assert!(prefetch(
            &rt,
            "town",
            &json!({"change": "rename", "target": "community"})
        )
        .is_none());
        let v1 = latest(&a);
        assert_eq!((v1.0.version, v1.0.fields["body"].clone()), (1, json!("b")));
        act(&rt, "ana", edit(&a, json!({"body": "second"}))).await;
        let v2 = latest(&a);
        assert_eq!(
            (v2.0.version, v2.0.fields["body"].clone()),
            (2, json!("second"))
        );

        // Stale (item a's version 1), then another item's: both ignored.
        edit_with(&a, json!({"name": "renamed"}), v1).await;
        edit_with(&a, json!({"name": "again"}), latest(&b)).await;
        let v4 = latest(&a);
        assert_eq!(v4.0.version, 4);
        assert_eq!(v4.0.fields["body"], "second", "{:?}", v4.0.fields);
        assert_eq!(v4.0.fields["name"], "again");

        // The current version is taken as given: a changed copy shows it was not re-read.
        let mut forged = latest(&a);
        forged
            .0
            .fields
            .insert("body".into(), json!("from the prefetch"));
        edit_with(&a, json!({"name": "third"}), forged).await;
        let v5 = latest(&a);
        assert_eq!(v5.0.version, 5);
        assert_eq!(v5.0.fields["body"], "from the prefetch");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_action_writes_the_same_few_records_however_many_items_and_restore_is_whole() {
        let engine = Arc::new(Counting::default());
        let rt = start(engine.clone());
        let found = Found {
            actor: "ana".into(),
            body: json!({"members": ["ben", "cy"]}),
            driver_url: None,
        };
        rt.ask::<Governance, _>("town", found)
            .await
            .unwrap()
            .unwrap();
        // A waiting action (a non-governor's proposal) whose record and conditions are parts.
        let waiting = act(&rt, "ben", create(0)).await;
        assert_eq!(waiting["status"], "waiting", "{waiting}");
        // What creating an item and editing one write, with few items and with many.
        let measure = |label: &'static str| {
            let rt = rt.clone();
            let engine = engine.clone();
            async move {
                engine.take();
                let made = act(&rt, "ana", create(1)).await;
                assert_eq!(made["status"], "implemented", "{made}");
                let created = engine.take();
                let id = made["result"]["item"].as_str().unwrap().to_string();
                let edit = json!({"change": "edit_item", "target": format!("item:{id}"),
                                  "params": {"fields": {"body": label}}});
                let edited = act(&rt, "ana", edit).await;
                assert_eq!(edited["status"], "implemented", "{edited}");
                (created, engine.take())
            }
        };
        let few = measure("few").await;
        for n in 0..1500 {
            act(&rt, "ana", create(n)).await;
        }
        let many = measure("many").await;
        for (label, few, many) in [("create", few.0, many.0), ("edit", few.1, many.1)] {
            // State, action, log entry, notice, version, the item's metadata, the tally (and
            // the first time, the creator's interned name).
            assert!(many.0 <= few.0, "{label}: records written grew with items");
            assert!(many.0 <= 7, "{label}: {} records", many.0);
            // Ids and counters grow by a few bytes and the tally keeps up to MAX_RATE_COUNT
            // timestamps (9 bytes each); a snapshot of the items would be ~50 KB.
            let bound = few.1 + 9 * agora_governance::MAX_RATE_COUNT as usize + 64;
            assert!(
                many.1 <= bound,
                "{label}: {} bytes with 1,500 more items, {} before",
                many.1,
                few.1
            );
        }
        let before = rt
            .ask::<Governance, _>("town", Peek)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(before.1.len(), 1502);
        rt.shutdown();

        let rt = start(engine.clone());
        let after = rt
            .ask::<Governance, _>("town", Peek)
            .await
            .unwrap()
            .unwrap();
        assert!(after == before, "restore rebuilt a different state");
        // And it decides as before: the waiting proposal is still there to answer.
        let cond = waiting["conditions"][0]["id"].as_str().unwrap();
        let answer = json!({"change": "approve", "target": format!("condition:{cond}")});
        let answered = act(&rt, "ana", answer).await;
        assert_eq!(answered["status"], "implemented", "{answered}");
        let get = GetItem {
            reader: Reader::Agent("cy".into()),
            id: "1502".into(),
            version: None,
        };
        let item = rt.ask::<Governance, _>("town", get).await.unwrap().unwrap();
        assert_eq!(item["fields"]["body"], "many", "{item}");
        rt.shutdown();
    }

    #[test]
    fn a_format_1_state_is_read_and_its_first_commit_writes_the_new_layout() {
        let env = crate::env::tests::env();
        let id = ActorId::new("governance", "town");
        let core = Community::found("ana", &json!({"members": ["ben"]}), 1).unwrap();
        let old = State {
            driver_url: Some("http://d".into()),
            snapshot: core.snapshot(),
            items: core.item_metas().to_vec(),
        };
        let bytes = encode_record(RECORD, 1, &old).unwrap();
        let mut g = Governance::restore(
            &id,
            &env,
            Stored {
                state: Some(bytes),
                aux: vec![],
            },
        )
        .unwrap();
        assert!(g.save_all);
        let mut fx = Effects::new(2);
        g.save(&mut fx, &Changes::default());
        assert!(!g.save_all);
        let aux: Vec<(Vec<u8>, Vec<u8>)> = fx
            .aux_writes()
            .filter_map(|(k, v)| Some((k.to_vec(), v?.to_vec())))
            .collect();
        assert!(aux.iter().any(|(k, _)| k == b"s/m"));
        let head = g.core.as_ref().unwrap().snapshot_head();
        let back = restore_parts(head, aux).unwrap();
        assert!(back.snapshot() == core.snapshot());
        assert_eq!(g.driver_url.as_deref(), Some("http://d"));
    }

    #[test]
    fn single_tallies_lay_over_the_whole_lists_an_older_layout_wrote() {
        let kind = |n: &str| ChangeKind::parse(n).unwrap();
        let tally = |count: u32| Tally {
            count,
            recent: vec![i64::from(count); count as usize],
        };
        // An older layout's whole list for ana, then single tallies: ana's second grew and
        // she gained a third; ben has only single ones.
        let mut lists: Vec<(Box<str>, Tallies)> = vec![(
            "ana".into(),
            vec![
                (kind("create_item"), tally(1)),
                (kind("edit_item"), tally(2)),
            ],
        )];
        let single = vec![
            (2, "ana".into(), vec![(kind("add_role"), tally(1))]),
            (1, "ana".into(), vec![(kind("edit_item"), tally(3))]),
            (0, "ben".into(), vec![(kind("edit_item"), tally(1))]),
        ];
        merge_tallies(&mut lists, single).unwrap();
        assert_eq!(
            lists,
            vec![
                (
                    "ana".into(),
                    vec![
                        (kind("create_item"), tally(1)),
                        (kind("edit_item"), tally(3)),
                        (kind("add_role"), tally(1)),
                    ]
                ),
                ("ben".into(), vec![(kind("edit_item"), tally(1))]),
            ]
        );
        // A gap or a changed type is a damaged store, not a guess.
        let gap = vec![(1, "cy".into(), vec![(kind("edit_item"), tally(1))])];
        assert!(merge_tallies(&mut lists.clone(), gap).is_err());
        let other = vec![(0, "ben".into(), vec![(kind("add_role"), tally(1))])];
        assert!(merge_tallies(&mut lists, other).is_err());
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
