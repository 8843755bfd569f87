//! The vote actor (key: the process id): one vote of the built-in `vote` plugin, addressed as
//! `vote.<method>` on the process routes.
//!
//! The main record holds the vote's settings and, once closed, its outcome; each ballot is an
//! auxiliary record keyed by voter (or by the voter's salted hash when anonymous), so a ballot
//! costs one small write however many came before. The deadline is a durable reminder set
//! `CLOSE_GRACE_MS` after `closing_at`: a ballot counts exactly when it arrived before
//! `closing_at`, and the grace lets one that arrived just in time reach the actor before the
//! vote closes. Closing commits the outcome, its commitment, the callback and the driver
//! event together, once.

use agora_governance::VoteResult;
use agora_plugins::vote::{commitment, Counter, VoteSpec, Weight};
use agora_plugins::ErrorCode;
use agora_runtime::{
    ActorId, ActorMessage, Delivery, Effects, Message, OutboxMessage, Reminder, Stored,
    VirtualActor,
};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::governance::{Governance, VoteOutcome};
use crate::{events, ActorError, ActorsEnv, Principal, ProcessView};

const RECORD: &str = "vote";
const VERSION: u16 = 1;
const BALLOT_RECORD: &str = "ballot";
const CLOSE: &str = "close";
/// The event type of a vote's new ballots on the node's event stream (see
/// [`BALLOT_EVENT_INTERVAL`]).
pub const BALLOTS_CHANGED: &str = "ballots_changed";
/// A vote announces new ballots on the node's event stream (`ballots_changed`) at most this
/// often: the first ballot of a quiet vote is announced at once, and ballots within this
/// interval of the last announcement are not. One in-memory publish per interval keeps the hot
/// ballot path free of the event's cost (and a cluster's Redis relay free of one message per
/// ballot); a listener re-reads the vote this long after an announcement to see the rest.
/// A rate, not a deadline, so it reads the monotonic clock rather than the runtime's `Clock`.
pub const BALLOT_EVENT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// How long after `closing_at` the vote closes, so ballots that arrived in time are counted.
pub const CLOSE_GRACE_MS: u64 = 50;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct State {
    id: u64,
    community: String,
    method: String,
    /// The parameters as given (JSON text); the counter is rebuilt from them on activation.
    params: String,
    status: String,
    opened_ms: u64,
    closing_at_ms: u64,
    callback_url: Option<String>,
    driver_url: Option<String>,
    /// Hex salt for voter hashes of an anonymous vote.
    salt: String,
    #[serde(default)]
    closed_ms: Option<u64>,
    #[serde(default)]
    close_reason: Option<String>,
    /// The final outcome (JSON text), once closed.
    #[serde(default)]
    outcome: Option<String>,
    /// A vote a governance condition opened: its community and condition, told the outcome.
    #[serde(default)]
    condition: Option<(String, u64)>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct BallotRecord {
    /// The canonical choice (JSON text).
    choice: String,
    weight_units: u64,
    cast_ms: u64,
}

/// A vote's summary (as a process) from its stored record.
pub fn summary(bytes: &[u8]) -> Option<crate::process::ProcessSummary> {
    let (_, s) = decode_record::<State>(RECORD, VERSION, bytes).ok()?;
    Some(crate::process::ProcessSummary {
        id: s.id,
        name: format!("vote.{}", s.method),
        community: s.community,
        status: if s.status == "completed" {
            "completed"
        } else {
            "pending"
        },
        created_ms: s.opened_ms,
        closing_at_ms: Some(s.closing_at_ms),
    })
}

/// Opens vote `id` (a fresh id). Its parameters were parsed and checked once, by the service:
/// `spec` and `counter` come from them, `params` is what is stored.
pub struct Open {
    pub id: u64,
    pub community: String,
    pub method: String,
    pub params: Value,
    pub spec: VoteSpec,
    pub counter: Box<dyn Counter>,
    pub closing_at_ms: u64,
    pub callback_url: Option<String>,
    pub driver_url: Option<String>,
    /// Hex salt for voter hashes, should the vote be anonymous.
    pub salt: String,
    pub by: Principal,
    /// Set when a governance condition opened it: its community and condition.
    pub condition: Option<(String, u64)>,
}

// Every other operation names the vote's method as the caller addressed it (`vote.<method>`):
// a wrong one is "not found", checked here so a request needs one message, not two.

/// Opens a vote for a governance condition (a durable message from the community's
/// governance actor, keyed by the process id it allocated): the vote tells the governance actor
/// its outcome when it closes, through a durable [`VoteOutcome`].
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct OpenForCondition {
    pub community: String,
    pub method: String,
    /// The vote's parameters (JSON text), `eligible` and `closing_at` among them.
    pub params: String,
    pub closing_at_ms: u64,
    pub driver_url: Option<String>,
    pub condition: u64,
}

impl ActorMessage for OpenForCondition {
    const KIND: &'static str = "vote_open_for_condition";
}

/// Closes a governance condition's vote early: its action was resolved by other conditions.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct CloseForCondition {
    pub condition: u64,
}

impl ActorMessage for CloseForCondition {
    const KIND: &'static str = "vote_close_for_condition";
}

/// A closed vote's decision as the governance core reads it (`VoteResult::from_json`).
fn decision_json(counter: &dyn Counter) -> Value {
    match VoteResult::from_outcome(&counter.tally()) {
        VoteResult::Passed(p) => json!({ "passed": p }),
        VoteResult::Winner(w) => json!({ "winner": w }),
        VoteResult::Winners(w) => json!({ "winners": w }),
    }
}

/// Reads the vote as a process: the live tally, or the outcome once closed.
pub struct Get {
    pub method: String,
}

/// Closes the vote now.
pub struct Close {
    pub method: String,
    pub by: Principal,
}

/// Casts a ballot that reached the node at `arrived_ms`; answers the receipt.
pub struct Cast {
    pub method: String,
    pub voter: String,
    pub choice: Value,
    pub arrived_ms: u64,
    pub by: Principal,
    /// For a vote attached to a governance item: the governance actor's answer on whether
    /// the item's module's active phase allowed `vote` at `arrived_ms` (`Err`: why not).
    /// `None`: not asked yet; such a vote then answers [`CastReply::NeedsPhase`].
    pub phase: Option<Result<(), String>>,
}

/// What a [`Cast`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum CastReply {
    /// The ballot was taken: its receipt.
    Receipt(Value),
    /// The vote is attached to governance item `item` of `community`: ask its phase, then
    /// cast again with [`Cast::phase`] set. Only such votes pay the extra round trip.
    NeedsPhase { community: String, item: String },
}

/// The canonical ballot list with its commitment.
pub struct Ballots {
    pub method: String,
}

pub struct Vote {
    key: String,
    state: Option<State>,
    spec: Option<VoteSpec>,
    counter: Option<Box<dyn Counter>>,
    /// The live tally, computed once per change rather than once per read.
    live: Option<Value>,
    /// When ballots were last announced ([`BALLOT_EVENT_INTERVAL`]); in memory only.
    announced_ballots: Option<std::time::Instant>,
}

fn refuse(code: ErrorCode, message: impl Into<String>, field: Option<&str>) -> ActorError {
    ActorError::Invalid {
        code,
        message: message.into(),
        field: field.map(str::to_owned),
    }
}

fn ballot_key(voter: &str) -> Vec<u8> {
    let mut k = b"b/".to_vec();
    k.extend_from_slice(voter.as_bytes());
    k
}

impl Vote {
    fn not_found(&self) -> ActorError {
        ActorError::ProcessNotFound(self.key.clone())
    }

    fn view(&mut self) -> Option<ProcessView> {
        let s = self.state.as_ref()?;
        let outcome = match (&s.outcome, &self.spec, &self.counter) {
            (Some(o), _, _) => serde_json::from_str(o).unwrap_or(Value::Null),
            (None, Some(spec), Some(c)) if spec.hide_results => {
                json!({"hidden": true, "ballots": c.len()})
            }
            (None, _, Some(c)) => self
                .live
                .get_or_insert_with(|| serde_json::to_value(c.tally()).unwrap_or(Value::Null))
                .clone(),
            _ => json!({}),
        };
        Some(ProcessView {
            id: s.id,
            name: format!("vote.{}", s.method),
            community: s.community.clone(),
            status: if s.status == "completed" {
                "completed"
            } else {
                "pending"
            },
            outcome,
            errors: json!({}),
            remote_input: None,
        })
    }

    fn save(&self, fx: &mut Effects) {
        if let Some(s) = &self.state {
            match encode_record(RECORD, VERSION, s) {
                Ok(b) => fx.save_state(b),
                Err(e) => tracing::error!(error = %e, "vote state failed to encode"),
            }
        }
    }

    /// Queues the callback and the driver event for the current view.
    fn announce(&mut self, env: &ActorsEnv, fx: &mut Effects) {
        let Some(view) = self.view() else {
            return;
        };
        let Some(s) = &self.state else {
            return;
        };
        let body = env.json.process(&view);
        if let Some(url) = &s.callback_url {
            fx.send(OutboxMessage {
                url: url.clone(),
                body: body.to_string(),
                ordering_key: format!("process/{}", s.id),
            });
        }
        let url = s.driver_url.clone().or_else(|| env.driver_url.clone());
        events::emit(
            fx,
            env.json.as_ref(),
            url.as_deref(),
            &s.community,
            "vote",
            &events::process_updated(body),
        );
    }

    /// `ballots_changed` on the node's event stream (not to the driver URL: a driver hears the
    /// vote's `process_updated`), coalesced to one per [`BALLOT_EVENT_INTERVAL`]. It names
    /// the vote and its ballot count, never a voter or a choice.
    fn announce_ballots(&mut self, env: &ActorsEnv, fx: &mut Effects) {
        let now = std::time::Instant::now();
        if self
            .announced_ballots
            .is_some_and(|at| now.duration_since(at) < BALLOT_EVENT_INTERVAL)
        {
            return;
        }
        let (Some(s), Some(counter)) = (&self.state, &self.counter) else {
            return;
        };
        self.announced_ballots = Some(now);
        let event = agora_plugins::Event {
            event_type: BALLOTS_CHANGED.into(),
            data: json!({"id": s.id, "name": format!("vote.{}", s.method), "ballots": counter.len()}),
            initiator: json!({}),
        };
        let body = env
            .json
            .event(&s.community, "vote", &event, fx.now_ms())
            .to_string();
        fx.publish(&s.community, BALLOTS_CHANGED, body);
    }

    /// Closes the vote: final tally, commitment, one commit with the callback and the event.
    fn close(&mut self, env: &ActorsEnv, reason: &str, fx: &mut Effects) {
        let (Some(counter), Some(s)) = (&self.counter, &mut self.state) else {
            return;
        };
        if s.status == "completed" {
            return;
        }
        let entries = counter.entries();
        let mut outcome = serde_json::to_value(counter.tally()).unwrap_or_else(|_| json!({}));
        if let Some(o) = outcome.as_object_mut() {
            o.insert(
                "commitment".into(),
                json!(commitment::commitment(counter.method(), &entries)),
            );
            o.insert(
                "tally_version".into(),
                json!(agora_plugins::vote::TALLY_VERSION),
            );
            o.insert("closed_at".into(), json!(events::timestamp(fx.now_ms())));
            o.insert("close_reason".into(), json!(reason));
        }
        s.status = "completed".into();
        s.closed_ms = Some(fx.now_ms());
        s.close_reason = Some(reason.to_string());
        s.outcome = Some(outcome.to_string());
        fx.cancel_reminder(CLOSE);
        if let Some((community, condition)) = &s.condition {
            let msg = VoteOutcome {
                condition: *condition,
                result: decision_json(counter.as_ref()).to_string(),
            };
            if let Err(e) = fx.send_to::<Governance, VoteOutcome>(community, &msg) {
                tracing::error!(error = %e, "a vote outcome failed to encode");
            }
        }
        self.save(fx);
        self.announce(env, fx);
    }

    fn open(
        &mut self,
        env: &ActorsEnv,
        open: Open,
        fx: &mut Effects,
    ) -> Result<ProcessView, ActorError> {
        if self.state.is_some() {
            return Err(ActorError::internal(format!(
                "vote {} already exists",
                open.id
            )));
        }
        tracing::debug!(vote = open.id, who = open.by.who(), agent = ?open.by.agent(), "vote opened");
        let s = State {
            id: open.id,
            community: open.community,
            method: open.method,
            params: open.params.to_string(),
            status: "pending".into(),
            opened_ms: fx.now_ms(),
            closing_at_ms: open.closing_at_ms,
            callback_url: open.callback_url,
            driver_url: open.driver_url,
            salt: open.salt,
            closed_ms: None,
            close_reason: None,
            outcome: None,
            condition: open.condition,
        };
        fx.set_reminder(CLOSE, open.closing_at_ms + CLOSE_GRACE_MS, Vec::new());
        self.state = Some(s);
        self.spec = Some(open.spec);
        self.counter = Some(open.counter);
        self.save(fx);
        self.announce(env, fx);
        self.view().ok_or_else(|| self.not_found())
    }

    /// Whether the caller's `vote.<method>` names this vote; "not found" otherwise.
    fn named(&self, method: &str) -> Result<(), ActorError> {
        match &self.state {
            Some(s) if s.method == method => Ok(()),
            _ => Err(ActorError::ProcessNotFound(format!(
                "vote.{method}/{}",
                self.key
            ))),
        }
    }

    fn cast(
        &mut self,
        env: &ActorsEnv,
        voter: String,
        choice: Value,
        arrived_ms: u64,
        fx: &mut Effects,
    ) -> Result<Value, ActorError> {
        let (Some(s), Some(spec), Some(counter)) = (&self.state, &self.spec, &mut self.counter)
        else {
            return Err(self.not_found());
        };
        if s.status == "completed" {
            return Err(refuse(
                ErrorCode::VoteClosed,
                format!("vote {} is already closed", s.id),
                None,
            ));
        }
        // The deadline is a property of the vote, not of the timer: arrival time decides.
        if arrived_ms >= s.closing_at_ms {
            return Err(refuse(
                ErrorCode::BallotAfterDeadline,
                format!("the ballot arrived after closing_at (vote {})", s.id),
                None,
            ));
        }
        if voter.is_empty() || voter.len() > agora_plugins::vote::VOTER_ID_MAX {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "a voter id is a non-empty string of at most 256 bytes",
                Some("voter"),
            ));
        }
        if !spec.is_eligible(&voter) {
            return Err(refuse(
                ErrorCode::IneligibleVoter,
                format!("voter '{voter}' is not eligible in this vote"),
                Some("voter"),
            ));
        }
        let key = if spec.anonymous {
            let salt = hex::decode(&s.salt).unwrap_or_default();
            commitment::voter_hash(&salt, &voter)
        } else {
            voter.clone()
        };
        let replaced = counter.has_voted(&key);
        if replaced && !spec.allow_change {
            return Err(refuse(
                ErrorCode::AlreadyVoted,
                format!("voter '{voter}' has already voted and this vote does not allow changes"),
                Some("voter"),
            ));
        }
        let weight = counter.weight_of(&voter);
        let canonical = counter
            .cast(&key, weight, &choice)
            .map_err(|e| refuse(e.error_code(), e.to_string(), Some("choice")))?;
        self.live = None;
        let rec = BallotRecord {
            choice: canonical.to_string(),
            weight_units: weight.units(),
            cast_ms: arrived_ms,
        };
        let bytes = encode_record(BALLOT_RECORD, VERSION, &rec)
            .map_err(|e| ActorError::internal(e.to_string()))?;
        fx.put_aux(ballot_key(&key), bytes);
        let entry = commitment::Entry {
            voter: key,
            weight,
            choice: canonical,
        };
        let receipt = json!({
            "vote": s.id,
            "receipt": commitment::receipt(&entry),
            "voter": entry.voter,
            "weight": weight.to_f64(),
            "choice": entry.choice,
            "replaced": replaced,
            "cast_at": events::timestamp(arrived_ms),
        });
        let early_close = spec.early_close;
        self.announce_ballots(env, fx);
        if early_close && self.decided() {
            self.close(env, "early", fx);
        }
        Ok(receipt)
    }

    /// Whether the outcome can no longer change (ballots are final): a veto (block, objection)
    /// stands, every eligible voter has voted, or the leader is out of reach of the eligible
    /// voters who have not voted yet (see `agora_plugins::vote::settled`). Costs one pass over
    /// the electorate and one tally per ballot, and only votes with `early_close` pay it.
    fn decided(&self) -> bool {
        let (Some(spec), Some(counter), Some(s)) = (&self.spec, &self.counter, &self.state) else {
            return false;
        };
        if spec.allow_change {
            return false;
        }
        if counter.vetoed() {
            return true;
        }
        let Some(all) = &spec.eligible else {
            // Anyone may still vote: no bound on what is yet to come.
            return false;
        };
        let salt = if spec.anonymous {
            hex::decode(&s.salt).unwrap_or_default()
        } else {
            Vec::new()
        };
        let (mut waiting, mut remaining) = (0usize, 0f64);
        for v in all {
            let voted = if spec.anonymous {
                counter.has_voted(&commitment::voter_hash(&salt, v))
            } else {
                counter.has_voted(v)
            };
            if !voted {
                waiting += 1;
                remaining += counter.weight_of(v).to_f64();
            }
        }
        waiting == 0
            || agora_plugins::vote::settled(
                counter.method(),
                &spec.method_config,
                &counter.tally(),
                remaining,
            )
    }

    fn ballots(&self) -> Result<Value, ActorError> {
        let (Some(s), Some(spec), Some(counter)) = (&self.state, &self.spec, &self.counter) else {
            return Err(self.not_found());
        };
        if spec.hide_results && s.status != "completed" {
            return Err(refuse(
                ErrorCode::ResultsHidden,
                "this vote hides its ballots until it closes",
                None,
            ));
        }
        let entries = counter.entries();
        // An anonymous vote's weights are keyed by voter id: published, they would name the
        // voters. Every ballot carries its weight, which is all a recount needs.
        let mut method_config = spec.method_config.clone();
        if spec.anonymous {
            if let Some(o) = method_config.as_object_mut() {
                o.remove("weights");
            }
        }
        let list: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "voter": e.voter,
                    "weight": e.weight.to_f64(),
                    "choice": e.choice,
                    "receipt": commitment::receipt(e),
                })
            })
            .collect();
        Ok(json!({
            "vote": s.id,
            "method": counter.method(),
            "tally_version": agora_plugins::vote::TALLY_VERSION,
            "status": s.status,
            "anonymous": spec.anonymous,
            "canonical": commitment::canonical_list_json(&entries),
            "commitment": commitment::commitment(counter.method(), &entries),
            // What an outside verifier needs to count the ballots again with the same rules.
            "method_config": method_config,
            "ballots": list,
        }))
    }
}

impl VirtualActor for Vote {
    const KIND: &'static str = "vote";
    type Env = ActorsEnv;

    /// A vote lives with its community: its id embeds the community's partition.
    fn partition(key: &str) -> u32 {
        agora_runtime::partition_of_id_key(key)
    }

    fn restore(id: &ActorId, _env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        let Some(bytes) = stored.state else {
            return Ok(Vote {
                key: id.key.clone(),
                state: None,
                spec: None,
                counter: None,
                live: None,
                announced_ballots: None,
            });
        };
        let (_, state) =
            decode_record::<State>(RECORD, VERSION, &bytes).map_err(|e| e.to_string())?;
        let params: Value = serde_json::from_str(&state.params).map_err(|e| e.to_string())?;
        let (spec, mut counter) = VoteSpec::parse(&state.method, &params)
            .map_err(|e| format!("{}: {}", e.field, e.message))?;
        for (k, v) in stored.aux {
            let Some(voter) = k.strip_prefix(b"b/") else {
                continue;
            };
            let voter = String::from_utf8_lossy(voter).into_owned();
            let (_, rec) = decode_record::<BallotRecord>(BALLOT_RECORD, VERSION, &v)
                .map_err(|e| e.to_string())?;
            let choice: Value = serde_json::from_str(&rec.choice).map_err(|e| e.to_string())?;
            let weight = Weight::from_units(rec.weight_units).unwrap_or(Weight::ZERO);
            counter
                .record(&voter, weight, &choice)
                .map_err(|e| format!("stored ballot of {voter}: {e}"))?;
        }
        Ok(Vote {
            key: id.key.clone(),
            state: Some(state),
            spec: Some(spec),
            counter: Some(counter),
            live: None,
            announced_ballots: None,
        })
    }

    fn on_reminder(&mut self, env: &ActorsEnv, r: Reminder, fx: &mut Effects) {
        if r.name == CLOSE {
            self.close(env, "deadline", fx);
        }
    }

    fn on_message(&mut self, env: &ActorsEnv, msg: Delivery, fx: &mut Effects) {
        if msg.is::<OpenForCondition>() {
            match msg.decode::<OpenForCondition>() {
                Ok(m) => self.open_for_condition(env, m, fx),
                Err(e) => tracing::error!(error = %e, "a vote opening failed to decode"),
            }
        } else if msg.is::<CloseForCondition>() {
            if self.state.as_ref().is_some_and(|s| s.status != "completed") {
                self.close(env, "cancelled", fx);
            }
        } else {
            tracing::warn!(kind = %msg.message_kind, "an unknown message to a vote");
        }
    }
}

impl Vote {
    fn open_for_condition(&mut self, env: &ActorsEnv, m: OpenForCondition, fx: &mut Effects) {
        if self.state.is_some() {
            return;
        }
        let parsed = serde_json::from_str::<Value>(&m.params)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                VoteSpec::parse(&m.method, &p)
                    .map(|(spec, counter)| (p, spec, counter))
                    .map_err(|e| format!("{}: {}", e.field, e.message))
            });
        let (params, spec, counter) = match parsed {
            Ok(x) => x,
            Err(why) => {
                // The condition was checked when it was set; a vote that still cannot open
                // rejects its condition rather than leaving the action waiting for ever.
                tracing::warn!(condition = m.condition, error = %why, "a condition's vote could not open");
                let msg = VoteOutcome {
                    condition: m.condition,
                    result: json!({"passed": false, "error": why}).to_string(),
                };
                if let Err(e) = fx.send_to::<Governance, VoteOutcome>(&m.community, &msg) {
                    tracing::error!(error = %e, "a vote outcome failed to encode");
                }
                return;
            }
        };
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
        let id = self.key.parse::<u64>().unwrap_or(0);
        let open = Open {
            id,
            community: m.community.clone(),
            method: m.method,
            params,
            spec,
            counter,
            closing_at_ms: m.closing_at_ms,
            callback_url: None,
            driver_url: m.driver_url,
            salt: hex::encode(salt),
            by: Principal::node("governance"),
            condition: Some((m.community, m.condition)),
        };
        if let Err(e) = self.open(env, open, fx) {
            tracing::error!(error = %e, "a condition's vote failed to open");
        }
    }
}

impl Message<Vote> for Open {
    type Reply = Result<ProcessView, ActorError>;

    fn handle(self, v: &mut Vote, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        v.open(env, self, fx)
    }
}

impl Message<Vote> for Get {
    type Reply = Result<ProcessView, ActorError>;

    fn handle(self, v: &mut Vote, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        v.named(&self.method)?;
        v.view().ok_or_else(|| v.not_found())
    }
}

impl Message<Vote> for Close {
    type Reply = Result<ProcessView, ActorError>;

    fn handle(self, v: &mut Vote, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        v.named(&self.method)?;
        let Some(s) = &v.state else {
            return Err(v.not_found());
        };
        if s.status == "completed" {
            return Err(ActorError::ProcessCompleted(s.id));
        }
        tracing::debug!(vote = s.id, who = self.by.who(), agent = ?self.by.agent(), "vote closed");
        v.close(env, "closed", fx);
        v.view().ok_or_else(|| v.not_found())
    }
}

impl Message<Vote> for Cast {
    type Reply = Result<CastReply, ActorError>;

    fn handle(self, v: &mut Vote, env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        v.named(&self.method)?;
        tracing::debug!(who = self.by.who(), agent = ?self.by.agent(), "ballot");
        let attached = v.spec.as_ref().and_then(|s| s.item.clone());
        if let (Some(item), Some(s)) = (attached, &v.state) {
            // A closed vote answers as closed, whatever the phase.
            if s.status != "completed" {
                match self.phase {
                    None => {
                        return Ok(CastReply::NeedsPhase {
                            community: s.community.clone(),
                            item,
                        })
                    }
                    Some(Err(why)) => {
                        return Err(refuse(ErrorCode::PhaseClosed, why, None));
                    }
                    Some(Ok(())) => {}
                }
            }
        }
        v.cast(env, self.voter, self.choice, self.arrived_ms, fx)
            .map(CastReply::Receipt)
    }
}

impl Message<Vote> for Ballots {
    type Reply = Result<Value, ActorError>;

    fn handle(self, v: &mut Vote, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        v.named(&self.method)?;
        v.ballots()
    }
}
