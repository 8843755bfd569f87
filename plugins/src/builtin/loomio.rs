//! `loomio`: runs governance processes as polls in a Loomio group.
//!
//! The process `poll` creates a Loomio poll (proposal, poll, count, score, ranked_choice or
//! dot_vote) through Loomio's bot API and follows it until Loomio reports it closed, mapping
//! Loomio's per-option results onto the outcome shape of Agora's own `vote` plugin (`method`,
//! `winner`/`tied` or `passed`, `ballots`, `tally`, ...) plus a `loomio` block (poll id, key,
//! URL, status). The action `get-poll` reads any poll of the group the same way.
//!
//! Written against Loomio's documented integration API: `POST /api/b1/polls` and
//! `GET /api/b1/polls/:id_or_key?api_key=` with a group integration key (loomio.org
//! `/help/api`, and Metagov's own Loomio plugin, which calls exactly these), and its
//! replacement `POST /api/b2/polls` / `GET /api/b2/polls/:id_or_key` with a user key
//! (`/help/api2`; since Loomio 3.1.3 `Api::B2::AuthenticatesApiKey` reads the key from an
//! `Authorization: Bearer` header and `permitted_params` the nested `{"poll": {...}}` body,
//! per Loomio's source and a connector's notes verified against 3.8.1). Answers are
//! Loomio's records-style JSON (`{"polls": [...], "poll_options": [...], "stances": [...]}`);
//! per-option `total_score` is the result, as in Metagov's plugin. Setting `api_version`
//! picks the namespace (`b2` by default; `b1` for instances older than October 2023).
//!
//! Closing: no API a key can use closes a poll. b1 and b2 route only create and show
//! (b2 also update, but Loomio rounds `closing_at` down to the hour and refuses one in the
//! past), and `PATCH /api/v1/polls/:id/close` needs a browser session. So a driver close
//! reads the poll one last time and completes the process with that result; the outcome
//! says `loomio.closed_on_platform: false` when the Loomio poll itself stays open until its
//! `closing_at`.
//!
//! Following: the process refreshes every `refresh_seconds`, at `closing_at`, and whenever a
//! webhook reaches the instance (Loomio's group webhooks, "chatbots", post on
//! `stance_created`, `poll_closed_by_user`, `poll_expired`, ...). Webhook bodies are only a
//! trigger: the truth is always read back from the API, so an unsigned webhook cannot forge
//! an outcome. Loomio cannot sign webhooks, so when `webhook_secret` is set the webhook URL
//! must carry `?secret=<value>` (compared in constant time). Platform-wide webhooks
//! (`/api/hooks/loomio`) route by a `group_id` query parameter (Loomio's payloads name no
//! group), matched against `group:<group_id>`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::remote::{bad_signature, setting, BoxFuture, HttpRequest, Remote, RemoteOp};
use crate::vote::{Decision, Details, Outcome};
use crate::{
    ActionContext, ActionSpec, ErrorCode, EventSpec, Plugin, PluginError, PluginMeta,
    ProcessContext, ProcessSpec, ProcessStatus, WebhookRequest,
};

const DEFAULT_API_URL: &str = "https://www.loomio.com";
const REFRESH_TIMER: &str = "refresh";
const CLOSING_TIMER: &str = "closing";
const DEFAULT_REFRESH_SECONDS: u64 = 60;
/// The poll types the process maps onto a `vote` outcome (Loomio's `meeting` has none).
const POLL_TYPES: [&str; 6] = [
    "proposal",
    "poll",
    "count",
    "score",
    "ranked_choice",
    "dot_vote",
];
/// The options Loomio accepts for a proposal (help/api), also its defaults: the API itself
/// adds none, so a proposal posted without them would have nothing to vote on.
const PROPOSAL_OPTIONS: [&str; 4] = ["agree", "abstain", "disagree", "block"];
const COUNT_OPTIONS: [&str; 2] = ["accept", "decline"];
const MAX_OPTIONS: usize = 100;

pub struct Loomio {
    meta: PluginMeta,
}

impl Default for Loomio {
    fn default() -> Self {
        Self::new()
    }
}

fn poll_outcome_schema() -> Value {
    json!({
        "type": "object",
        "description": "The vote plugin's outcome shape (method, winner/tied or passed, quorum_met, ballots, tally, support/blocked, averages, target) plus `loomio`; when final also close_reason and closed_at. While Loomio hides results: {hidden: true, ballots}.",
        "properties": {
            "method": {"type": "string", "enum": ["proposal", "choice", "count", "score", "ranked", "dot"]},
            "winner": {"type": ["string", "null"]},
            "tied": {"type": "array", "items": {"type": "string"}},
            "passed": {"type": "boolean"},
            "quorum_met": {"type": "boolean"},
            "ballots": {"type": "integer"},
            "tally": {"type": "object", "additionalProperties": {"type": "number"}},
            "hidden": {"type": "boolean"},
            "close_reason": {"type": "string", "enum": ["closed", "deadline", "closed_on_loomio"]},
            "closed_at": {"type": "string"},
            "loomio": {
                "type": "object",
                "properties": {
                    "poll_id": {"type": "integer"},
                    "poll_key": {"type": "string"},
                    "poll_url": {"type": "string"},
                    "poll_type": {"type": "string"},
                    "status": {"type": "string", "enum": ["open", "closed"]},
                    "closing_at": {"type": ["string", "null"]},
                    "closed_at": {"type": ["string", "null"]},
                    "voters_count": {"type": ["integer", "null"]},
                    "undecided_voters_count": {"type": ["integer", "null"]},
                    "closed_on_platform": {"type": "boolean"}
                }
            }
        }
    })
}

impl Loomio {
    pub fn new() -> Self {
        Self {
            meta: PluginMeta {
                name: "loomio",
                verbose_name: "Loomio",
                version: "1.0.0",
                author: "The Agora developers",
                agora_min: "0.1.0",
                agora_max: None,
                depends_on: &[],
                load_by_default: true,
                description: "Decides in a Loomio group: runs polls (proposal, poll, count, score, ranked choice, dot vote) through Loomio's API and reports their results in the vote plugin's outcome shape.",
                auth_type: "api_key",
                uses_webhook: true,
                config_schema: json!({
                    "type": "object",
                    "properties": {
                        "api_url": {
                            "type": "string", "format": "uri", "default": DEFAULT_API_URL,
                            "description": "The Loomio instance, e.g. https://www.loomio.com or a self-hosted one."
                        },
                        "api_version": {
                            "type": "string", "enum": ["b2", "b1"], "default": "b2",
                            "description": "b2: a user's API key (Loomio since October 2023); b1: a group integration key (older instances)."
                        },
                        "api_key": {"type": "string", "x-secret": true},
                        "group_id": {
                            "type": "integer", "minimum": 1,
                            "description": "The Loomio group polls are created in (required with b2; b1 keys belong to one group)."
                        },
                        "webhook_secret": {
                            "type": "string", "x-secret": true,
                            "description": "When set, webhooks must carry ?secret=<this value> in their URL."
                        }
                    },
                    "additionalProperties": false
                }),
                actions: vec![ActionSpec {
                    name: "get-poll",
                    description: "Reads a Loomio poll by id or key: its state, per-option totals and the outcome they map to.",
                    parameters_schema: json!({
                        "type": "object",
                        "properties": {
                            "poll": {"type": ["integer", "string"], "description": "The poll's id or key."}
                        },
                        "required": ["poll"],
                        "additionalProperties": false
                    }),
                    response_schema: json!({
                        "type": "object",
                        "properties": {
                            "poll": {"type": "object"},
                            "options": {"type": "array", "items": {"type": "object"}},
                            "outcome": poll_outcome_schema()
                        },
                        "required": ["poll", "options", "outcome"]
                    }),
                    public: false,
                }],
                processes: vec![ProcessSpec {
                    name: "poll",
                    description: "Creates a Loomio poll and follows it until Loomio closes it (or the driver closes the process); the outcome is updated as stances arrive.",
                    parameters_schema: json!({
                        "type": "object",
                        "properties": {
                            "title": {"type": "string", "minLength": 1, "maxLength": 250},
                            "details": {"type": "string", "maxLength": 20000},
                            "poll_type": {"type": "string", "enum": POLL_TYPES, "default": "proposal"},
                            "options": {
                                "type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": MAX_OPTIONS,
                                "description": "Required except for proposal (agree/abstain/disagree/block) and count (accept/decline)."
                            },
                            "closing_at": {"type": "string", "format": "date-time", "description": "RFC 3339, in the future."},
                            "refresh_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": DEFAULT_REFRESH_SECONDS}
                        },
                        "required": ["title", "closing_at"],
                        "additionalProperties": false
                    }),
                    outcome_schema: poll_outcome_schema(),
                }],
                navigation: vec![],
                widgets: vec![],
                events: vec![
                    EventSpec {
                        event_type: "stance_created",
                        schema: json!({
                            "type": "object",
                            "description": "A followed poll's stances changed (observed through the API).",
                            "properties": {
                                "poll_id": {"type": "integer"},
                                "poll_key": {"type": "string"},
                                "poll_url": {"type": "string"},
                                "ballots": {"type": "integer"},
                                "previous_ballots": {"type": "integer"},
                                "tally": {"type": "object"}
                            }
                        }),
                    },
                    EventSpec {
                        event_type: "poll_closed",
                        schema: json!({
                            "type": "object",
                            "description": "A followed poll closed in Loomio or was closed by the driver.",
                            "properties": {
                                "poll_id": {"type": "integer"},
                                "poll_key": {"type": "string"},
                                "poll_url": {"type": "string"},
                                "close_reason": {"type": "string"},
                                "outcome": {"type": "object"}
                            }
                        }),
                    },
                ],
            },
        }
    }
}

// ---------------------------------------------------------------------------
// The API: which namespace, where the key goes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    B1,
    B2,
}

struct Api<'a> {
    base: String,
    version: Version,
    key: &'a str,
}

impl<'a> Api<'a> {
    fn from_config(config: &'a Value) -> Result<Api<'a>, PluginError> {
        let base = config
            .get("api_url")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/')
            .to_string();
        let version = match config.get("api_version").and_then(Value::as_str) {
            Some("b1") => Version::B1,
            _ => Version::B2,
        };
        Ok(Api {
            base,
            version,
            key: setting(config, "api_key")?,
        })
    }

    fn namespace(&self) -> &'static str {
        match self.version {
            Version::B1 => "b1",
            Version::B2 => "b2",
        }
    }

    /// b2 reads the key from a bearer header (and refuses it in a query string); b1 reads it
    /// from the parameters.
    fn get(&self, path: &str) -> HttpRequest {
        let url = format!("{}/api/{}/{path}", self.base, self.namespace());
        let req = match self.version {
            Version::B1 => {
                let sep = if path.contains('?') { '&' } else { '?' };
                HttpRequest::get(format!("{url}{sep}api_key={}", encode(self.key)))
            }
            Version::B2 => HttpRequest::get(url).header("authorization", self.bearer()),
        };
        req.header("accept", "application/json")
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.key)
    }

    fn create_poll(&self, fields: Map<String, Value>) -> HttpRequest {
        let url = format!("{}/api/{}/polls", self.base, self.namespace());
        match self.version {
            Version::B1 => {
                let mut body = fields;
                body.insert("api_key".into(), json!(self.key));
                HttpRequest::json("POST", url, &Value::Object(body))
            }
            // Since 3.1.3 b2 takes the resource hash nested; flat keys that are not columns
            // of Poll (options, group_id) would be dropped silently.
            Version::B2 => HttpRequest::json("POST", url, &json!({ "poll": fields }))
                .header("authorization", self.bearer()),
        }
        .header("accept", "application/json")
    }

    fn show_poll(&self, id_or_key: &str) -> HttpRequest {
        self.get(&format!("polls/{}", encode(id_or_key)))
    }

    /// The cheapest authenticated read each namespace offers.
    fn probe(&self, group_id: Option<i64>) -> HttpRequest {
        match (self.version, group_id) {
            (Version::B1, _) => self.get("memberships"),
            (Version::B2, Some(id)) => self.get(&format!("groups/{id}")),
            (Version::B2, None) => self.get("groups"),
        }
    }

    fn poll_url(&self, key: &str) -> String {
        format!("{}/p/{}", self.base, encode(key))
    }
}

use crate::wire::encode_component as encode;

fn group_id(config: &Value) -> Option<i64> {
    match config.get("group_id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Starting a poll: the request Loomio gets.

/// The fields of the poll to create, checked before anything is sent.
fn poll_fields(params: &Value, now_ms: i64) -> Result<Map<String, Value>, PluginError> {
    let title = params
        .get("title")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| PluginError::invalid("title", "'title' is required"))?;
    let poll_type = params
        .get("poll_type")
        .and_then(Value::as_str)
        .unwrap_or("proposal");
    if !POLL_TYPES.contains(&poll_type) {
        return Err(PluginError::invalid(
            "poll_type",
            format!("'{poll_type}' is not one of {}", POLL_TYPES.join(", ")),
        ));
    }
    let closing_at = params
        .get("closing_at")
        .and_then(Value::as_str)
        .ok_or_else(|| PluginError::invalid("closing_at", "'closing_at' is required"))?;
    let closing_ms = parse_rfc3339_ms(closing_at).ok_or_else(|| {
        PluginError::invalid("closing_at", "'closing_at' must be an RFC 3339 date-time")
    })?;
    if closing_ms <= now_ms {
        return Err(PluginError::invalid(
            "closing_at",
            "'closing_at' must be in the future",
        ));
    }
    let options = poll_options(params, poll_type)?;
    let mut fields = Map::new();
    fields.insert("title".into(), json!(title));
    fields.insert("poll_type".into(), json!(poll_type));
    if let Some(details) = params.get("details").and_then(Value::as_str) {
        fields.insert("details".into(), json!(details));
        fields.insert("details_format".into(), json!("md"));
    }
    fields.insert("options".into(), json!(options));
    fields.insert("closing_at".into(), json!(closing_at));
    Ok(fields)
}

fn poll_options(params: &Value, poll_type: &str) -> Result<Vec<String>, PluginError> {
    let given: Option<Vec<String>> = match params.get("options") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| match v.as_str().map(str::trim) {
                    Some(s) if !s.is_empty() => Ok(s.to_string()),
                    _ => Err(PluginError::invalid(
                        format!("options[{i}]"),
                        "an option is a non-empty string",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(PluginError::invalid(
                "options",
                "'options' must be a list of strings",
            ))
        }
    };
    let options = match (poll_type, given) {
        ("proposal", None) => PROPOSAL_OPTIONS.iter().map(|s| s.to_string()).collect(),
        ("count", None) => COUNT_OPTIONS.iter().map(|s| s.to_string()).collect(),
        (_, None) => {
            return Err(PluginError::invalid(
                "options",
                format!("a {poll_type} poll needs 'options'"),
            ))
        }
        (_, Some(list)) => list,
    };
    if options.is_empty() {
        return Err(PluginError::invalid(
            "options",
            "at least one option is required",
        ));
    }
    if options.len() > MAX_OPTIONS {
        return Err(PluginError::invalid(
            "options",
            format!("at most {MAX_OPTIONS} options"),
        ));
    }
    if poll_type == "ranked_choice" && options.len() < 2 {
        return Err(PluginError::invalid(
            "options",
            "a ranked_choice poll needs at least 2 options",
        ));
    }
    for (i, option) in options.iter().enumerate() {
        if poll_type == "proposal" && !PROPOSAL_OPTIONS.contains(&option.as_str()) {
            return Err(PluginError::invalid(
                format!("options[{i}]"),
                format!(
                    "a proposal's options are among {}",
                    PROPOSAL_OPTIONS.join(", ")
                ),
            ));
        }
        if options[..i].contains(option) {
            return Err(PluginError::invalid(
                format!("options[{i}]"),
                format!("'{option}' is listed twice"),
            ));
        }
    }
    Ok(options)
}

// ---------------------------------------------------------------------------
// Reading Loomio's answer: a snapshot of one poll.

/// A Loomio answer as a `platform_error` when it carries `errors` despite a 2xx (Loomio's
/// validation failures look like `{"errors": {"closing_at": ["..."]}}`).
fn check_errors(body: &Value, what: &str) -> Result<(), PluginError> {
    match body.get("errors") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(o)) if o.is_empty() => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(errors) => Err(PluginError::platform(format!(
            "{what}: Loomio refused it: {errors}"
        ))),
    }
}

fn as_int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn nonempty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The poll `wanted` (an id or key; `None`: the first) out of a records-style answer, with
/// its options, as the plain snapshot the synchronous half works from:
/// `{"poll": {...}, "options": [{"name", "total_score", "voters"}], "url"}`.
fn snapshot(body: &Value, wanted: Option<&str>, api: &Api<'_>) -> Result<Value, PluginError> {
    check_errors(body, "reading the poll")?;
    let polls = body
        .get("polls")
        .and_then(Value::as_array)
        .ok_or_else(|| PluginError::platform("Loomio's answer has no 'polls' list"))?;
    let matches = |p: &&Value| match wanted {
        None => true,
        Some(w) => {
            as_int(p.get("id")).map(|id| id.to_string()).as_deref() == Some(w)
                || p.get("key").and_then(Value::as_str) == Some(w)
        }
    };
    let poll = polls
        .iter()
        .find(matches)
        .or_else(|| polls.first())
        .ok_or_else(|| PluginError::platform("Loomio's answer lists no poll"))?;
    let id = as_int(poll.get("id"))
        .ok_or_else(|| PluginError::platform("Loomio's poll has no numeric 'id'"))?;
    let key = nonempty_str(poll.get("key"))
        .map(str::to_owned)
        .unwrap_or_else(|| id.to_string());
    let poll_type = nonempty_str(poll.get("poll_type")).unwrap_or("proposal");

    let mut records: Vec<&Value> = body
        .get("poll_options")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|o| as_int(o.get("poll_id")).is_none_or(|p| p == id))
                .collect()
        })
        .unwrap_or_default();
    records.sort_by_key(|o| {
        (
            as_int(o.get("priority")).unwrap_or(i64::MAX),
            as_int(o.get("id")).unwrap_or(0),
        )
    });
    let mut options: Vec<Value> = records
        .iter()
        .filter_map(|o| {
            let name = nonempty_str(o.get("name"))?;
            let total = o.get("total_score").and_then(Value::as_f64);
            let voters: Vec<String> = o
                .get("voter_scores")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter(|(_, s)| s.as_f64().is_some_and(|s| s != 0.0))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            Some(json!({"name": name, "total_score": total, "voters": voters}))
        })
        .collect();
    if options.is_empty() {
        // Older answers carry the names and counts on the poll itself.
        if let Some(names) = poll.get("poll_option_names").and_then(Value::as_array) {
            let counts = poll.get("stance_counts").and_then(Value::as_array);
            options = names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let name = n.as_str()?;
                    let total = counts.and_then(|c| c.get(i)).and_then(Value::as_f64);
                    Some(json!({"name": name, "total_score": total, "voters": []}))
                })
                .collect();
        }
    }

    let voters_count = as_int(poll.get("voters_count"));
    let undecided = as_int(poll.get("undecided_voters_count"));
    let decided = as_int(poll.get("decided_voters_count"))
        .or_else(|| Some(voters_count? - undecided?))
        .unwrap_or_else(|| {
            let mut seen = std::collections::BTreeSet::new();
            for o in &options {
                for v in o["voters"].as_array().into_iter().flatten() {
                    seen.insert(v.to_string());
                }
            }
            seen.len() as i64
        })
        .max(0);
    let closed_at = nonempty_str(poll.get("closed_at"));
    Ok(json!({
        "poll": {
            "id": id,
            "key": key,
            "title": poll.get("title").cloned().unwrap_or(Value::Null),
            "poll_type": poll_type,
            "group_id": poll.get("group_id").cloned().unwrap_or(Value::Null),
            "closing_at": nonempty_str(poll.get("closing_at")),
            "closed_at": closed_at,
            "status": if closed_at.is_some() { "closed" } else { "open" },
            "voters_count": voters_count,
            "undecided_voters_count": undecided,
            "decided_voters_count": decided,
        },
        "options": options,
        "url": api.poll_url(&key),
    }))
}

// ---------------------------------------------------------------------------
// Mapping Loomio's result onto the vote plugin's outcome.

/// The `vote` method a Loomio poll type corresponds to.
fn method_of(poll_type: &str) -> &'static str {
    match poll_type {
        "poll" => "choice",
        "count" => "count",
        "score" => "score",
        "ranked_choice" => "ranked",
        "dot_vote" => "dot",
        _ => "proposal",
    }
}

/// The single option with the highest positive total; a tie for first lists the tied
/// options instead (the vote plugin's default `tie_break: none`).
fn pick_winner(totals: &[(String, f64)]) -> (Option<String>, Vec<String>) {
    let best = totals.iter().map(|(_, t)| *t).fold(0.0_f64, f64::max);
    if best <= 0.0 {
        return (None, Vec::new());
    }
    let top: Vec<String> = totals
        .iter()
        .filter(|(_, t)| (*t - best).abs() < 1e-9)
        .map(|(n, _)| n.clone())
        .collect();
    if top.len() == 1 {
        (top.into_iter().next(), Vec::new())
    } else {
        (None, top)
    }
}

fn loomio_block(snap: &Value) -> Value {
    let poll = &snap["poll"];
    json!({
        "poll_id": poll["id"],
        "poll_key": poll["key"],
        "poll_url": snap["url"],
        "poll_type": poll["poll_type"],
        "status": poll["status"],
        "closing_at": poll["closing_at"],
        "closed_at": poll["closed_at"],
        "voters_count": poll["voters_count"],
        "undecided_voters_count": poll["undecided_voters_count"],
    })
}

fn ballots_of(snap: &Value) -> u64 {
    snap["poll"]["decided_voters_count"]
        .as_i64()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

/// Per-option totals, or `None` while Loomio hides results (it then omits the scores).
fn totals_of(snap: &Value) -> Option<Vec<(String, f64)>> {
    snap["options"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| Some((o["name"].as_str()?.to_string(), o["total_score"].as_f64()?)))
        .collect()
}

/// The vote plugin's outcome for the poll as the snapshot shows it, plus `loomio`.
fn outcome(snap: &Value) -> Value {
    let poll_type = snap["poll"]["poll_type"].as_str().unwrap_or("proposal");
    let ballots = ballots_of(snap);
    let Some(totals) = totals_of(snap) else {
        return json!({"hidden": true, "ballots": ballots, "loomio": loomio_block(snap)});
    };
    let tally: BTreeMap<String, f64> = totals.iter().cloned().collect();
    let method = method_of(poll_type);
    let (decision, tied, details) = match method {
        "proposal" => {
            // Loomio re-labels common options in the instance's locale ("Agree").
            let weight = |name: &str| -> f64 {
                totals
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, t)| *t)
                    .sum()
            };
            let (agree, disagree, block) = (weight("agree"), weight("disagree"), weight("block"));
            let support = (agree + disagree > 0.0).then(|| agree * 100.0 / (agree + disagree));
            let blocked = block > 0.0;
            // The vote plugin's default rule: more than 50% support and no block.
            let passed = !blocked && support.is_some_and(|s| s > 50.0);
            (
                Decision::Passed(passed),
                Vec::new(),
                Details::Proposal { support, blocked },
            )
        }
        // Without a target a count passes once its quorum is met; Loomio has no quorum here.
        "count" => (
            Decision::Passed(true),
            Vec::new(),
            Details::Count { target: None },
        ),
        _ => {
            let (winner, tied) = pick_winner(&totals);
            let details = if method == "score" {
                Details::Score {
                    averages: totals
                        .iter()
                        .map(|(n, t)| (n.clone(), (ballots > 0).then(|| t / ballots as f64)))
                        .collect(),
                }
            } else {
                Details::None
            };
            (Decision::Winner(winner), tied, details)
        }
    };
    let mut out = serde_json::to_value(Outcome {
        method,
        decision,
        tied,
        quorum_met: true,
        ballots,
        tally,
        details,
    })
    .unwrap_or_else(|_| json!({}));
    if let Some(o) = out.as_object_mut() {
        o.insert("loomio".into(), loomio_block(snap));
    }
    out
}

// ---------------------------------------------------------------------------
// Time: RFC 3339 in (`crate::wire`), epoch milliseconds out.

use crate::wire::parse_rfc3339_ms;

/// Metagov's timestamp format (epoch seconds with millis), as the vote plugin's `closed_at`.
fn metagov_timestamp(ms: i64) -> String {
    let ms = ms.max(0);
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

// ---------------------------------------------------------------------------
// Webhooks.

/// Equal-length digests keep the comparison's time independent of where the texts differ
/// and of their lengths.
fn secrets_match(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn verify_webhook(config: &Value, req: &WebhookRequest) -> Result<(), PluginError> {
    let Some(secret) = config
        .get("webhook_secret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Ok(());
    };
    match req.query_param("secret") {
        Some(given) if secrets_match(&given, secret) => Ok(()),
        _ => Err(bad_signature("secret")),
    }
}

fn group_key(raw: &str) -> Option<String> {
    let id: u64 = raw.trim().parse().ok()?;
    Some(format!("group:{id}"))
}

// ---------------------------------------------------------------------------
// The synchronous half.

fn state_poll_id(state: &Value) -> Result<String, PluginError> {
    as_int(state.get("poll_id"))
        .map(|id| id.to_string())
        .ok_or_else(|| PluginError::platform("the process has no Loomio poll id"))
}

fn snapshot_of(obs: &Value) -> Result<&Value, PluginError> {
    obs.get("snapshot")
        .filter(|s| s.get("poll").is_some())
        .ok_or_else(|| PluginError::platform("the Loomio observation has no poll"))
}

impl Loomio {
    /// Brings the process up to date with what Loomio reports: the live outcome, a
    /// `stance_created` event when the stances changed, and completion once Loomio closed the
    /// poll (or the driver closes the process).
    fn apply(ctx: &mut ProcessContext<'_>, snap: &Value, driver_close: bool) {
        let mut out = outcome(snap);
        let ballots = ballots_of(snap);
        let tally = out.get("tally").cloned().unwrap_or(Value::Null);
        let previous = ctx
            .state
            .get("ballots")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let previous_tally = ctx.state.get("tally").cloned().unwrap_or(Value::Null);
        let ids = json!({
            "poll_id": snap["poll"]["id"],
            "poll_key": snap["poll"]["key"],
            "poll_url": snap["url"],
        });
        if ballots != previous || (tally != previous_tally && !tally.is_null()) {
            let mut data = ids.clone();
            data["ballots"] = json!(ballots);
            data["previous_ballots"] = json!(previous);
            data["tally"] = tally.clone();
            ctx.emit("stance_created", data);
        }
        if let Some(state) = ctx.state.as_object_mut() {
            state.insert("ballots".into(), json!(ballots));
            state.insert("tally".into(), tally);
        }
        let closed_at = snap["poll"]["closed_at"].as_str();
        if closed_at.is_none() && !driver_close {
            ctx.outcome = out;
            return;
        }
        let closed_ms = closed_at.and_then(parse_rfc3339_ms);
        let closing_ms = snap["poll"]["closing_at"]
            .as_str()
            .and_then(parse_rfc3339_ms);
        let reason = match (closed_ms, closing_ms) {
            (None, _) => "closed",
            (Some(closed), Some(closing)) if closed >= closing => "deadline",
            _ => "closed_on_loomio",
        };
        let now = i64::try_from(ctx.now_ms).unwrap_or(i64::MAX);
        if let Some(o) = out.as_object_mut() {
            o.insert("close_reason".into(), json!(reason));
            o.insert(
                "closed_at".into(),
                json!(metagov_timestamp(closed_ms.unwrap_or(now))),
            );
            if let Some(l) = o.get_mut("loomio").and_then(Value::as_object_mut) {
                l.insert("closed_on_platform".into(), json!(closed_at.is_some()));
            }
        }
        let mut data = ids;
        data["close_reason"] = json!(reason);
        data["outcome"] = out.clone();
        ctx.emit("poll_closed", data);
        ctx.cancel_timer(REFRESH_TIMER);
        ctx.cancel_timer(CLOSING_TIMER);
        ctx.complete(out);
    }
}

impl Plugin for Loomio {
    fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    fn remote<'a>(&'a self, call: Remote<'a>) -> Option<BoxFuture<'a, Result<Value, PluginError>>> {
        let Remote {
            config, http, op, ..
        } = call;
        Some(Box::pin(async move {
            let api = Api::from_config(config)?;
            match op {
                RemoteOp::StartProcess { params, .. } => {
                    let mut fields =
                        poll_fields(params, i64::try_from(http.now_ms()).unwrap_or(i64::MAX))?;
                    let group = group_id(config);
                    if api.version == Version::B2 {
                        let group = group.ok_or_else(|| PluginError {
                            code: ErrorCode::PlatformNotConfigured,
                            message:
                                "setting 'group_id' is required to create polls with api_version b2"
                                    .into(),
                            field: Some("settings.group_id".into()),
                        })?;
                        fields.insert("group_id".into(), json!(group));
                    }
                    let sent_options = fields["options"].as_array().map_or(0, Vec::len);
                    let resp = http.send(api.create_poll(fields)).await?;
                    let body = resp.success_json("creating the Loomio poll")?;
                    check_errors(&body, "creating the Loomio poll")?;
                    let snap = snapshot(&body, None, &api)?;
                    let key = snap["poll"]["key"].as_str().unwrap_or_default().to_string();
                    // Loomio answers 200 even when it dropped fields it did not recognise;
                    // a poll without its options or in another group is unusable.
                    if sent_options > 0 && snap["options"].as_array().is_none_or(Vec::is_empty) {
                        return Err(PluginError::platform(format!(
                            "Loomio created poll {key} without its options (is the instance older than the chosen api_version?)"
                        )));
                    }
                    if let (Some(want), Some(got)) = (group, as_int(snap["poll"].get("group_id"))) {
                        if want != got && api.version == Version::B2 {
                            return Err(PluginError::platform(format!(
                                "Loomio created poll {key} in group {got}, not {want}"
                            )));
                        }
                    }
                    Ok(json!({ "snapshot": snap }))
                }
                RemoteOp::Refresh { state, .. } | RemoteOp::CloseProcess { state, .. } => {
                    let id = state_poll_id(state)?;
                    let resp = http.send(api.show_poll(&id)).await?;
                    let body = resp.success_json("reading the Loomio poll")?;
                    Ok(json!({ "snapshot": snapshot(&body, Some(&id), &api)? }))
                }
                RemoteOp::Action { action, params } => {
                    if action != "get-poll" {
                        return Err(PluginError {
                            code: ErrorCode::UnknownAction,
                            message: format!("loomio has no action {action}"),
                            field: None,
                        });
                    }
                    let poll = match params.get("poll") {
                        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => {
                            return Err(PluginError::invalid("poll", "'poll' is a poll id or key"))
                        }
                    };
                    let resp = http.send(api.show_poll(&poll)).await?;
                    let body = resp.success_json("reading the Loomio poll")?;
                    Ok(json!({ "snapshot": snapshot(&body, Some(&poll), &api)? }))
                }
                RemoteOp::Probe => {
                    let resp = http.send(api.probe(group_id(config))).await?;
                    resp.success_json("checking the Loomio API key")?;
                    Ok(json!({}))
                }
            }
        }))
    }

    fn action(
        &self,
        ctx: &mut ActionContext<'_>,
        action: &str,
        _params: &Value,
    ) -> Result<Value, PluginError> {
        if action != "get-poll" {
            return Err(PluginError {
                code: ErrorCode::UnknownAction,
                message: format!("loomio has no action {action}"),
                field: None,
            });
        }
        let snap = snapshot_of(ctx.observation()?)?;
        Ok(json!({
            "poll": snap["poll"],
            "options": snap["options"],
            "outcome": outcome(snap),
        }))
    }

    fn webhook(
        &self,
        ctx: &mut ActionContext<'_>,
        req: &WebhookRequest,
    ) -> Result<(), PluginError> {
        verify_webhook(ctx.config, req)
    }

    fn process_webhook(
        &self,
        ctx: &mut ProcessContext<'_>,
        req: &WebhookRequest,
    ) -> Result<(), PluginError> {
        // Checked again so a process never refreshes on a webhook the instance would refuse.
        verify_webhook(ctx.config, req)?;
        if ctx.status != ProcessStatus::Completed {
            ctx.request_refresh();
        }
        Ok(())
    }

    fn start_process(
        &self,
        ctx: &mut ProcessContext<'_>,
        params: &Value,
    ) -> Result<(), PluginError> {
        let snap = snapshot_of(ctx.observation()?)?;
        // The schema fills the default and bounds it (1..=86400); a value that is not such an
        // integer is refused, never replaced.
        let refresh_s = params
            .get("refresh_seconds")
            .and_then(Value::as_u64)
            .filter(|s| (1..=86_400).contains(s))
            .ok_or_else(|| {
                PluginError::invalid("refresh_seconds", "refresh_seconds must be 1 to 86400")
            })?;
        let refresh_ms = refresh_s * 1000;
        let closing_ms = snap["poll"]["closing_at"]
            .as_str()
            .and_then(parse_rfc3339_ms)
            .and_then(|ms| u64::try_from(ms).ok());
        *ctx.state = json!({
            "poll_id": snap["poll"]["id"],
            "poll_key": snap["poll"]["key"],
            "poll_url": snap["url"],
            "poll_type": snap["poll"]["poll_type"],
            "refresh_ms": refresh_ms,
            // What the poll showed when created, so only later changes are announced.
            "ballots": ballots_of(snap),
            "tally": outcome(snap).get("tally").cloned().unwrap_or(Value::Null),
        });
        ctx.status = ProcessStatus::Pending;
        ctx.set_timer(REFRESH_TIMER, ctx.now_ms.saturating_add(refresh_ms));
        if let Some(closing) = closing_ms {
            // A second after closing_at: Loomio closes lapsed polls by itself.
            ctx.set_timer(CLOSING_TIMER, closing.saturating_add(1000));
        }
        Self::apply(ctx, snap, false);
        Ok(())
    }

    fn observe(
        &self,
        ctx: &mut ProcessContext<'_>,
        observation: &Value,
    ) -> Result<(), PluginError> {
        if ctx.status == ProcessStatus::Completed {
            return Ok(());
        }
        let snap = snapshot_of(observation)?;
        Self::apply(ctx, snap, false);
        Ok(())
    }

    /// The instance's URL is a base URL. (A b2 key needs `group_id`, but a node may hold the
    /// key globally and each community its group, so that pair is checked when used.)
    fn check_settings(&self, settings: &Value) -> Result<(), PluginError> {
        crate::wire::check_base_url(settings, "api_url")
    }

    fn platform_id(&self, settings: &Value) -> Option<String> {
        group_id(settings).and_then(|id| group_key(&id.to_string()))
    }

    fn webhook_route(&self, req: &WebhookRequest) -> Option<String> {
        if let Some(id) = req.query_param("group_id") {
            return group_key(&id);
        }
        let body = req.json()?;
        match body.get("group_id")? {
            Value::Number(n) => group_key(&n.to_string()),
            Value::String(s) => group_key(s),
            _ => None,
        }
    }

    fn tick(&self, ctx: &mut ProcessContext<'_>, timer: &str) -> Result<(), PluginError> {
        if ctx.status == ProcessStatus::Completed {
            return Ok(());
        }
        match timer {
            REFRESH_TIMER => {
                ctx.request_refresh();
                let every = ctx
                    .state
                    .get("refresh_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(DEFAULT_REFRESH_SECONDS * 1000)
                    .max(1000);
                ctx.set_timer(REFRESH_TIMER, ctx.now_ms.saturating_add(every));
            }
            CLOSING_TIMER => ctx.request_refresh(),
            _ => {}
        }
        Ok(())
    }

    fn close_process(&self, ctx: &mut ProcessContext<'_>) -> Result<(), PluginError> {
        if ctx.status == ProcessStatus::Completed {
            return Ok(());
        }
        let snap = snapshot_of(ctx.observation()?)?;
        Self::apply(ctx, snap, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::testing::{block_on, json_response, FakeHttp};
    use crate::remote::HttpError;

    const FUTURE: &str = "2099-01-01T00:00:00Z";

    fn b2_config() -> Value {
        json!({"api_url": "https://loomio.test/", "api_key": "k3y/+", "group_id": 42})
    }

    fn b1_config() -> Value {
        json!({"api_url": "https://loomio.test", "api_version": "b1", "api_key": "k3y/+"})
    }

    /// A records-style show answer, shaped like Loomio's (and Metagov's mock of it).
    fn poll_body(closed_at: Value, scores: &[(&str, f64)], decided: i64) -> Value {
        let options: Vec<Value> = scores
            .iter()
            .enumerate()
            .map(|(i, (name, total))| {
                json!({"id": 900 + i, "name": name, "poll_id": 7, "priority": i,
                       "voter_scores": {}, "total_score": total})
            })
            .collect();
        json!({
            "polls": [{
                "id": 7, "key": "m20ZprvH", "title": "Lunch?", "poll_type": "proposal",
                "group_id": 42, "closing_at": "2099-01-01T00:00:00.000Z", "closed_at": closed_at,
                "voters_count": 5, "undecided_voters_count": 5 - decided,
                "decided_voters_count": decided
            }],
            "poll_options": options,
            "stances": [],
            "users": [],
            "meta": {"root": "polls", "total": null}
        })
    }

    fn run(
        p: &Loomio,
        config: &Value,
        http: &FakeHttp,
        op: RemoteOp<'_>,
    ) -> Result<Value, PluginError> {
        let fut = p
            .remote(Remote {
                community: "c",
                config,
                http,
                op,
            })
            .expect("loomio has a network half");
        block_on(fut)
    }

    fn start(
        p: &Loomio,
        config: &Value,
        http: &FakeHttp,
        params: &Value,
    ) -> Result<Value, PluginError> {
        run(
            p,
            config,
            http,
            RemoteOp::StartProcess {
                process: "poll",
                params,
            },
        )
    }

    fn body_of(req: &HttpRequest) -> Value {
        serde_json::from_slice(req.body.as_deref().expect("a body")).expect("a JSON body")
    }

    fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn b2_creates_the_poll_with_a_bearer_key_and_a_nested_body_in_the_group() {
        let p = Loomio::new();
        let http = FakeHttp::answering(vec![json_response(
            200,
            poll_body(
                Value::Null,
                &[
                    ("agree", 0.0),
                    ("abstain", 0.0),
                    ("disagree", 0.0),
                    ("block", 0.0),
                ],
                0,
            ),
        )]);
        let obs = start(
            &p,
            &b2_config(),
            &http,
            &json!({"title": " Lunch? ", "details": "Pizza", "closing_at": FUTURE}),
        )
        .unwrap();
        let reqs = http.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(reqs[0].url, "https://loomio.test/api/b2/polls");
        assert_eq!(header(&reqs[0], "authorization"), Some("Bearer k3y/+"));
        assert_eq!(
            body_of(&reqs[0]),
            json!({"poll": {
                "title": "Lunch?", "poll_type": "proposal", "details": "Pizza", "details_format": "md",
                "options": ["agree", "abstain", "disagree", "block"], "closing_at": FUTURE, "group_id": 42
            }})
        );
        let snap = &obs["snapshot"];
        assert_eq!(snap["poll"]["id"], 7);
        assert_eq!(snap["poll"]["key"], "m20ZprvH");
        assert_eq!(snap["poll"]["status"], "open");
        assert_eq!(snap["url"], "https://loomio.test/p/m20ZprvH");
        assert_eq!(snap["options"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn b1_puts_the_key_in_the_body_and_the_query_string() {
        let p = Loomio::new();
        let http = FakeHttp::answering(vec![
            json_response(200, poll_body(Value::Null, &[("a", 0.0), ("b", 0.0)], 0)),
            json_response(200, poll_body(Value::Null, &[("a", 1.0), ("b", 0.0)], 1)),
        ]);
        let config = b1_config();
        start(
            &p,
            &config,
            &http,
            &json!({"title": "T", "poll_type": "poll", "options": ["a", "b"], "closing_at": FUTURE}),
        )
        .unwrap();
        let state = json!({"poll_id": 7});
        let obs = run(
            &p,
            &config,
            &http,
            RemoteOp::Refresh {
                process: "poll",
                state: &state,
            },
        )
        .unwrap();
        let reqs = http.requests();
        assert_eq!(reqs[0].url, "https://loomio.test/api/b1/polls");
        assert_eq!(header(&reqs[0], "authorization"), None);
        let body = body_of(&reqs[0]);
        assert_eq!(body["api_key"], "k3y/+");
        assert_eq!(body["options"], json!(["a", "b"]));
        assert!(
            body.get("group_id").is_none() && body.get("poll").is_none(),
            "{body}"
        );
        assert_eq!(reqs[1].method, "GET");
        assert_eq!(
            reqs[1].url,
            "https://loomio.test/api/b1/polls/7?api_key=k3y%2F%2B"
        );
        assert_eq!(obs["snapshot"]["poll"]["decided_voters_count"], 1);
    }

    #[test]
    fn missing_settings_are_reported_before_any_call() {
        let p = Loomio::new();
        let http = FakeHttp::default();
        let params = json!({"title": "T", "closing_at": FUTURE});
        let e = start(&p, &json!({"group_id": 1}), &http, &params).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::PlatformNotConfigured, Some("settings.api_key"))
        );
        let e = start(&p, &json!({"api_key": "k"}), &http, &params).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::PlatformNotConfigured, Some("settings.group_id"))
        );
        let e = run(&p, &json!({}), &http, RemoteOp::Probe).unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformNotConfigured);
        assert!(http.requests().is_empty());
    }

    #[test]
    fn bad_poll_parameters_are_refused_before_any_call() {
        let p = Loomio::new();
        let http = FakeHttp::default();
        let cases = [
            (
                json!({"title": "T", "closing_at": "2001-01-01T00:00:00Z"}),
                "closing_at",
            ),
            (
                json!({"title": "T", "closing_at": "tomorrow"}),
                "closing_at",
            ),
            (json!({"title": "  ", "closing_at": FUTURE}), "title"),
            (
                json!({"title": "T", "poll_type": "poll", "closing_at": FUTURE}),
                "options",
            ),
            (
                json!({"title": "T", "poll_type": "meeting", "options": ["a"], "closing_at": FUTURE}),
                "poll_type",
            ),
            (
                json!({"title": "T", "options": ["agree", "yes"], "closing_at": FUTURE}),
                "options[1]",
            ),
            (
                json!({"title": "T", "poll_type": "poll", "options": ["a", "a"], "closing_at": FUTURE}),
                "options[1]",
            ),
            (
                json!({"title": "T", "poll_type": "poll", "options": ["a", ""], "closing_at": FUTURE}),
                "options[1]",
            ),
            (
                json!({"title": "T", "poll_type": "ranked_choice", "options": ["a"], "closing_at": FUTURE}),
                "options",
            ),
            (
                json!({"title": "T", "poll_type": "poll", "options": "a", "closing_at": FUTURE}),
                "options",
            ),
        ];
        for (params, field) in cases {
            let e = start(&p, &b2_config(), &http, &params).unwrap_err();
            assert_eq!(e.code, ErrorCode::SchemaViolation, "{params}");
            assert_eq!(e.field.as_deref(), Some(field), "{params}: {}", e.message);
        }
        assert!(http.requests().is_empty());
        // A count poll gets Loomio's accept / decline when no options are given.
        let fields = poll_fields(
            &json!({"title": "T", "poll_type": "count", "closing_at": FUTURE}),
            0,
        )
        .unwrap();
        assert_eq!(fields["options"], json!(["accept", "decline"]));
    }

    #[test]
    fn loomio_refusals_and_outages_become_platform_errors() {
        let p = Loomio::new();
        let params = json!({"title": "T", "closing_at": FUTURE});
        let http = FakeHttp::answering(vec![
            json_response(
                422,
                json!({"errors": {"closing_at": ["must be in the future"]}}),
            ),
            json_response(
                403,
                json!({"error": "You are not authorized to access this page."}),
            ),
            json_response(200, json!({"errors": {"title": ["can't be blank"]}})),
            json_response(200, json!({"discussions": []})),
            Err(HttpError::Exhausted {
                status: 503,
                retry_after_ms: None,
            }),
            Err(HttpError::CircuitOpen { retry_in_ms: 10 }),
        ]);
        for expected in [
            ErrorCode::PlatformError,
            ErrorCode::PlatformError,
            ErrorCode::PlatformError,
            ErrorCode::PlatformError,
            ErrorCode::PlatformUnavailable,
            ErrorCode::CircuitOpen,
        ] {
            let e = start(&p, &b2_config(), &http, &params).unwrap_err();
            assert_eq!(e.code, expected, "{}", e.message);
        }
    }

    #[test]
    fn a_poll_created_without_its_options_or_elsewhere_is_an_error_naming_it() {
        let p = Loomio::new();
        let params = json!({"title": "T", "closing_at": FUTURE});
        let mut no_options = poll_body(Value::Null, &[], 0);
        no_options["polls"][0]["poll_option_names"] = json!([]);
        let mut other_group = poll_body(Value::Null, &[("agree", 0.0)], 0);
        other_group["polls"][0]["group_id"] = json!(99);
        let http = FakeHttp::answering(vec![
            json_response(200, no_options),
            json_response(200, other_group),
        ]);
        let e = start(&p, &b2_config(), &http, &params).unwrap_err();
        assert!(
            e.code == ErrorCode::PlatformError
                && e.message.contains("m20ZprvH")
                && e.message.contains("options"),
            "{e:?}"
        );
        let e = start(&p, &b2_config(), &http, &params).unwrap_err();
        assert!(e.message.contains("group 99"), "{e:?}");
    }

    #[test]
    fn proposals_map_to_the_vote_plugins_proposal_outcome() {
        let config = b2_config();
        let api = Api::from_config(&config).unwrap();
        let passed = snapshot(
            &poll_body(
                Value::Null,
                &[
                    ("Agree", 3.0),
                    ("abstain", 1.0),
                    ("disagree", 1.0),
                    ("block", 0.0),
                ],
                5,
            ),
            Some("7"),
            &api,
        )
        .unwrap();
        let out = outcome(&passed);
        assert_eq!(out["method"], "proposal");
        assert_eq!(out["passed"], true);
        assert_eq!(out["support"], 75.0);
        assert_eq!(out["blocked"], false);
        assert_eq!(out["ballots"], 5);
        assert_eq!(out["quorum_met"], true);
        assert_eq!(
            out["tally"],
            json!({"Agree": 3.0, "abstain": 1.0, "block": 0.0, "disagree": 1.0})
        );
        assert_eq!(out["loomio"]["poll_key"], "m20ZprvH");
        assert_eq!(out["loomio"]["status"], "open");

        let blocked = snapshot(
            &poll_body(Value::Null, &[("agree", 3.0), ("block", 1.0)], 4),
            None,
            &api,
        )
        .unwrap();
        let out = outcome(&blocked);
        assert_eq!(
            (out["passed"].clone(), out["blocked"].clone()),
            (json!(false), json!(true))
        );
        let empty = snapshot(
            &poll_body(Value::Null, &[("agree", 0.0), ("disagree", 0.0)], 0),
            None,
            &api,
        )
        .unwrap();
        let out = outcome(&empty);
        assert_eq!(
            (out["passed"].clone(), out["support"].clone()),
            (json!(false), Value::Null)
        );
        let half = snapshot(
            &poll_body(Value::Null, &[("agree", 1.0), ("disagree", 1.0)], 2),
            None,
            &api,
        )
        .unwrap();
        assert_eq!(outcome(&half)["passed"], false, "exactly 50% does not pass");
    }

    #[test]
    fn option_polls_map_to_winners_ties_and_averages() {
        let config = b2_config();
        let api = Api::from_config(&config).unwrap();
        let with_type = |t: &str, scores: &[(&str, f64)], decided: i64| {
            let mut body = poll_body(Value::Null, scores, decided);
            body["polls"][0]["poll_type"] = json!(t);
            snapshot(&body, None, &api).unwrap()
        };
        let out = outcome(&with_type("poll", &[("a", 2.0), ("b", 1.0)], 3));
        assert_eq!(
            (out["method"].clone(), out["winner"].clone()),
            (json!("choice"), json!("a"))
        );
        assert!(out.get("tied").is_none());
        let out = outcome(&with_type(
            "dot_vote",
            &[("a", 4.0), ("b", 4.0), ("c", 1.0)],
            2,
        ));
        assert_eq!(out["method"], "dot");
        assert_eq!(out["winner"], Value::Null);
        assert_eq!(out["tied"], json!(["a", "b"]));
        let out = outcome(&with_type("poll", &[("a", 0.0), ("b", 0.0)], 0));
        assert_eq!(
            (out["winner"].clone(), out.get("tied")),
            (Value::Null, None),
            "an empty poll has no winner"
        );
        let out = outcome(&with_type("score", &[("a", 8.0), ("b", 6.0)], 2));
        assert_eq!(out["method"], "score");
        assert_eq!(out["winner"], "a");
        assert_eq!(out["averages"], json!({"a": 4.0, "b": 3.0}));
        let out = outcome(&with_type("ranked_choice", &[("a", 3.0), ("b", 5.0)], 2));
        assert_eq!(
            (out["method"].clone(), out["winner"].clone()),
            (json!("ranked"), json!("b"))
        );
        let out = outcome(&with_type("count", &[("accept", 3.0), ("decline", 1.0)], 4));
        assert_eq!(
            (
                out["method"].clone(),
                out["passed"].clone(),
                out["target"].clone()
            ),
            (json!("count"), json!(true), Value::Null)
        );
    }

    #[test]
    fn hidden_results_and_older_answers_are_read_too() {
        let config = b2_config();
        let api = Api::from_config(&config).unwrap();
        let mut hidden = poll_body(Value::Null, &[("agree", 0.0)], 2);
        hidden["poll_options"][0]
            .as_object_mut()
            .unwrap()
            .remove("total_score");
        let out = outcome(&snapshot(&hidden, None, &api).unwrap());
        assert_eq!(out["hidden"], true);
        assert_eq!(out["ballots"], 2);
        assert!(out.get("tally").is_none());

        // No poll_options records and no decided count: names and counts from the poll.
        let old = json!({"polls": [{"id": "8", "key": "k", "poll_type": "poll", "closed_at": null,
            "poll_option_names": ["x", "y"], "stance_counts": [1, 2],
            "voters_count": 4, "undecided_voters_count": 1}]});
        let snap = snapshot(&old, Some("8"), &api).unwrap();
        assert_eq!(snap["poll"]["decided_voters_count"], 3);
        assert_eq!(outcome(&snap)["winner"], "y");
    }

    fn observation(closed_at: Value, scores: &[(&str, f64)], decided: i64) -> Value {
        let config = b2_config();
        let api = Api::from_config(&config).unwrap();
        json!({"snapshot": snapshot(&poll_body(closed_at, scores, decided), None, &api).unwrap()})
    }

    #[test]
    fn the_process_follows_the_poll_until_loomio_closes_it() {
        let p = Loomio::new();
        let config = b2_config();
        let mut state = Value::Null;
        let created = observation(Value::Null, &[("agree", 0.0), ("disagree", 0.0)], 0);
        let mut ctx = ProcessContext::new("c", "poll", &config, &mut state, 1_000);
        ctx.remote = Some(&created);
        p.start_process(
            &mut ctx,
            &json!({"title": "T", "closing_at": FUTURE, "refresh_seconds": 5}),
        )
        .unwrap();
        assert_eq!(ctx.status, ProcessStatus::Pending);
        assert!(
            ctx.events.is_empty(),
            "nothing changed yet: {:?}",
            ctx.events
        );
        assert_eq!(ctx.outcome["passed"], false);
        assert_eq!(
            ctx.outcome["loomio"]["poll_url"],
            "https://loomio.test/p/m20ZprvH"
        );
        let closing = u64::try_from(parse_rfc3339_ms(FUTURE).unwrap()).unwrap() + 1000;
        assert_eq!(
            ctx.timers,
            vec![
                (REFRESH_TIMER.to_string(), 6_000),
                (CLOSING_TIMER.to_string(), closing)
            ]
        );
        drop(ctx);
        assert_eq!(state["poll_id"], 7);
        assert_eq!(state["poll_key"], "m20ZprvH");

        // A tick asks for a refresh and re-arms itself.
        let mut ctx = ProcessContext::new("c", "poll", &config, &mut state, 6_000);
        ctx.status = ProcessStatus::Pending;
        p.tick(&mut ctx, REFRESH_TIMER).unwrap();
        assert!(ctx.refresh_requested);
        assert_eq!(ctx.timers, vec![(REFRESH_TIMER.to_string(), 11_000)]);

        // A stance arrives: the outcome follows and the driver hears of it.
        let voted = observation(Value::Null, &[("agree", 1.0), ("disagree", 0.0)], 1);
        p.observe(&mut ctx, &voted).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Pending);
        assert_eq!(ctx.outcome["passed"], true);
        assert_eq!(ctx.events.len(), 1);
        assert_eq!(ctx.events[0].event_type, "stance_created");
        assert_eq!(ctx.events[0].data["ballots"], 1);
        assert_eq!(ctx.events[0].data["previous_ballots"], 0);
        assert_eq!(ctx.events[0].data["poll_key"], "m20ZprvH");
        // The same view again is not news.
        p.observe(&mut ctx, &voted).unwrap();
        assert_eq!(ctx.events.len(), 1);

        // Loomio closed it at its deadline.
        let closed = observation(
            json!("2099-01-01T00:00:05.000Z"),
            &[("agree", 1.0), ("disagree", 0.0)],
            1,
        );
        p.observe(&mut ctx, &closed).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["close_reason"], "deadline");
        assert_eq!(
            ctx.outcome["closed_at"],
            json!(metagov_timestamp(
                parse_rfc3339_ms("2099-01-01T00:00:05Z").unwrap()
            ))
        );
        assert_eq!(ctx.outcome["loomio"]["closed_on_platform"], true);
        assert_eq!(ctx.outcome["loomio"]["status"], "closed");
        assert_eq!(ctx.events.last().unwrap().event_type, "poll_closed");
        assert_eq!(ctx.events.last().unwrap().data["outcome"], ctx.outcome);
        assert!(ctx.cancelled_timers.contains(&REFRESH_TIMER.to_string()));
        // Nothing moves a completed process.
        let events = ctx.events.len();
        p.observe(&mut ctx, &voted).unwrap();
        p.tick(&mut ctx, REFRESH_TIMER).unwrap();
        assert_eq!(
            (ctx.events.len(), ctx.status),
            (events, ProcessStatus::Completed)
        );
    }

    #[test]
    fn a_poll_closed_early_in_loomio_says_so() {
        let p = Loomio::new();
        let config = b2_config();
        let mut state = json!({"poll_id": 7, "ballots": 1});
        let mut ctx = ProcessContext::new("c", "poll", &config, &mut state, 1_000);
        ctx.status = ProcessStatus::Pending;
        let closed = observation(
            json!("2030-01-01T00:00:00Z"),
            &[("agree", 0.0), ("disagree", 1.0)],
            1,
        );
        p.observe(&mut ctx, &closed).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["close_reason"], "closed_on_loomio");
        assert_eq!(ctx.outcome["passed"], false);
    }

    #[test]
    fn a_driver_close_completes_with_the_last_result_while_loomio_stays_open() {
        let p = Loomio::new();
        let config = b2_config();
        let http = FakeHttp::answering(vec![json_response(
            200,
            poll_body(Value::Null, &[("agree", 2.0), ("disagree", 1.0)], 3),
        )]);
        let mut state = json!({"poll_id": 7, "ballots": 3, "refresh_ms": 60000});
        let obs = run(
            &p,
            &config,
            &http,
            RemoteOp::CloseProcess {
                process: "poll",
                state: &state,
            },
        )
        .unwrap();
        assert_eq!(http.requests()[0].url, "https://loomio.test/api/b2/polls/7");
        assert_eq!(
            header(&http.requests()[0], "authorization"),
            Some("Bearer k3y/+")
        );
        let mut ctx = ProcessContext::new("c", "poll", &config, &mut state, 1_700_000_000_123);
        ctx.status = ProcessStatus::Pending;
        ctx.remote = Some(&obs);
        p.close_process(&mut ctx).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["passed"], true);
        assert_eq!(ctx.outcome["close_reason"], "closed");
        assert_eq!(ctx.outcome["closed_at"], "1700000000.123");
        assert_eq!(ctx.outcome["loomio"]["closed_on_platform"], false);
        assert_eq!(ctx.events.last().unwrap().event_type, "poll_closed");
        // Without an observation (the platform was not reached) nothing is made up.
        let mut state = json!({"poll_id": 7});
        let mut ctx = ProcessContext::new("c", "poll", &config, &mut state, 0);
        ctx.status = ProcessStatus::Pending;
        assert_eq!(
            p.close_process(&mut ctx).unwrap_err().code,
            ErrorCode::PlatformError
        );
        assert_eq!(ctx.status, ProcessStatus::Pending);
    }

    #[test]
    fn get_poll_reads_by_key_and_answers_the_mapped_outcome() {
        let p = Loomio::new();
        let config = b2_config();
        let http = FakeHttp::answering(vec![json_response(
            200,
            poll_body(Value::Null, &[("agree", 1.0)], 1),
        )]);
        let params = json!({"poll": "m20Z/prvH"});
        let obs = run(
            &p,
            &config,
            &http,
            RemoteOp::Action {
                action: "get-poll",
                params: &params,
            },
        )
        .unwrap();
        assert_eq!(
            http.requests()[0].url,
            "https://loomio.test/api/b2/polls/m20Z%2FprvH"
        );
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &config, &mut state, 0);
        ctx.remote = Some(&obs);
        let out = p.action(&mut ctx, "get-poll", &params).unwrap();
        assert_eq!(out["poll"]["key"], "m20ZprvH");
        assert_eq!(out["outcome"]["passed"], true);
        assert_eq!(out["options"][0]["name"], "agree");
        let mut ctx = ActionContext::new("c", &config, &mut state, 0);
        assert_eq!(
            p.action(&mut ctx, "get-poll", &params).unwrap_err().code,
            ErrorCode::PlatformError
        );
        let e = run(
            &p,
            &config,
            &http,
            RemoteOp::Action {
                action: "get-poll",
                params: &json!({"poll": ""}),
            },
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("poll"));
    }

    #[test]
    fn probes_are_cheap_authenticated_reads() {
        let p = Loomio::new();
        let http = FakeHttp::answering(vec![
            json_response(200, json!({"groups": []})),
            json_response(200, json!({"groups": []})),
            json_response(200, json!({"memberships": []})),
            json_response(
                403,
                json!({"error": "You are not authorized to access this page."}),
            ),
        ]);
        run(&p, &b2_config(), &http, RemoteOp::Probe).unwrap();
        run(&p, &json!({"api_key": "k"}), &http, RemoteOp::Probe).unwrap();
        run(&p, &b1_config(), &http, RemoteOp::Probe).unwrap();
        let e = run(&p, &b2_config(), &http, RemoteOp::Probe).unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformError);
        assert!(e.message.contains("403"), "{}", e.message);
        let urls: Vec<String> = http.requests().into_iter().map(|r| r.url).collect();
        assert_eq!(
            urls,
            [
                "https://loomio.test/api/b2/groups/42",
                "https://www.loomio.com/api/b2/groups",
                "https://loomio.test/api/b1/memberships?api_key=k3y%2F%2B",
                "https://loomio.test/api/b2/groups/42",
            ]
        );
    }

    fn hook(query: Option<&str>, body: Value) -> WebhookRequest {
        WebhookRequest {
            headers: vec![("content-type".into(), "application/json".into())],
            query: query.map(str::to_owned),
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn webhooks_need_the_secret_when_one_is_set_and_only_trigger_a_refresh() {
        let p = Loomio::new();
        let body = json!({"kind": "stance_created", "url": "https://loomio.test/p/m20ZprvH"});
        let mut config = b2_config();
        config["webhook_secret"] = json!("s3 cret");
        let mut state = Value::Null;
        for (query, ok) in [
            (Some("secret=s3%20cret"), true),
            (Some("group_id=42&secret=s3+cret"), true),
            (Some("secret=s3"), false),
            (Some("secret="), false),
            (Some("other=s3%20cret"), false),
            (None, false),
        ] {
            let mut ctx = ActionContext::new("c", &config, &mut state, 0);
            let got = p.webhook(&mut ctx, &hook(query, body.clone()));
            match (ok, got) {
                (true, Ok(())) => {}
                (false, Err(e)) => assert_eq!(e.code, ErrorCode::InvalidSignature, "{query:?}"),
                (want, got) => panic!("{query:?}: wanted ok={want}, got {got:?}"),
            }
            assert!(ctx.events.is_empty());
        }
        // A forged body is no outcome: a process only asks Loomio again.
        let mut pstate = json!({"poll_id": 7, "ballots": 0});
        let mut ctx = ProcessContext::new("c", "poll", &config, &mut pstate, 0);
        ctx.status = ProcessStatus::Pending;
        p.process_webhook(
            &mut ctx,
            &hook(
                Some("secret=s3%20cret"),
                json!({"kind": "poll_closed_by_user"}),
            ),
        )
        .unwrap();
        assert!(ctx.refresh_requested);
        assert_eq!(ctx.status, ProcessStatus::Pending);
        assert!(ctx.events.is_empty());
        let mut ctx = ProcessContext::new("c", "poll", &config, &mut pstate, 0);
        ctx.status = ProcessStatus::Pending;
        assert!(p.process_webhook(&mut ctx, &hook(None, json!({}))).is_err());
        assert!(!ctx.refresh_requested);
        // Without a secret every webhook is a trigger.
        let open = b2_config();
        let mut ctx = ActionContext::new("c", &open, &mut state, 0);
        p.webhook(&mut ctx, &hook(None, json!("not even an object")))
            .unwrap();
    }

    #[test]
    fn platform_wide_webhooks_route_by_group() {
        let p = Loomio::new();
        assert_eq!(p.platform_id(&b2_config()).as_deref(), Some("group:42"));
        assert_eq!(
            p.platform_id(&json!({"group_id": "42"})).as_deref(),
            Some("group:42")
        );
        assert_eq!(p.platform_id(&json!({"api_key": "k"})), None);
        assert_eq!(
            p.webhook_route(&hook(Some("group_id=42&secret=x"), json!({})))
                .as_deref(),
            Some("group:42")
        );
        assert_eq!(
            p.webhook_route(&hook(None, json!({"group_id": 42})))
                .as_deref(),
            Some("group:42")
        );
        assert_eq!(
            p.webhook_route(&hook(None, json!({"kind": "stance_created"}))),
            None
        );
        assert_eq!(
            p.webhook_route(&hook(Some("group_id=../x"), json!({}))),
            None
        );
    }

    #[test]
    fn rfc3339_times_parse_to_epoch_millis() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2021-09-28T18:50:14.603Z"),
            Some(1_632_855_014_603)
        );
        assert_eq!(
            parse_rfc3339_ms("2021-09-28T20:50:14.6+02:00"),
            Some(1_632_855_014_600)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00-00:30"),
            Some(951_784_200_000)
        );
        for bad in [
            "",
            "2021-09-28",
            "2021-13-01T00:00:00Z",
            "2021-09-28T18:50:14",
            "2021-09-28T18:50:14.Z",
            "2021-09-28T18:50:14+0200",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(metagov_timestamp(1_632_855_014_603), "1632855014.603");
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn the_base_url_takes_no_query_or_fragment() {
        let p = Loomio::new();
        assert!(p
            .check_settings(&json!({"api_url": "https://forum.example.org/sub"}))
            .is_ok());
        for url in ["https://x.example/?a=1", "https://x.example/#top"] {
            let err = p.check_settings(&json!({"api_url": url})).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidSettings);
            assert_eq!(err.field.as_deref(), Some("api_url"));
        }
    }
}
