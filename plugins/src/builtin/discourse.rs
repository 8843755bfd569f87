//! `discourse`: a Discourse forum as a governance platform.
//!
//! Actions `create-topic` and `create-post` (both `POST /posts.json`); the process `poll`, a
//! Discourse poll in a new topic or a reply, followed until it closes; events for the forum's
//! topic and post webhooks. Requests authenticate with the `Api-Key` and `Api-Username` headers.
//!
//! Written against Discourse's documented API (docs.discourse.org: "Creates a new topic, a new
//! post, or a private message" at `POST /posts.json`, `GET /posts/{id}.json`,
//! `GET /session/current.json`) and, for what the API reference leaves out, the poll plugin's
//! own source (`plugins/poll`: routes `PUT /polls/vote` and `PUT /polls/toggle_status` answering
//! `{"poll": ...}`, the BBCode attributes `name type results public close` with a `# heading` as
//! the poll's title, and the serialized poll `{name, status, options: [{id, html, votes}],
//! voters, close, preloaded_voters}`), and the webhook emitter (`Jobs::EmitWebHookEvent`: body
//! `{"<event type>": payload}`, headers `X-Discourse-Instance`, `X-Discourse-Event-Type`,
//! `X-Discourse-Event` and `X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256 of the body>`).
//! Discourse refuses with `{"errors": [...], "error_type": ...}`; those messages become the
//! `platform_error` a driver sees.
//!
//! The poll process follows the platform rather than counting anything itself: it refreshes on a
//! timer (`refresh_seconds`), at its deadline and whenever a webhook about its topic arrives, and
//! completes when Discourse shows the poll closed, when its close time has passed, or when the
//! driver closes it (which closes the poll on Discourse first). Real Discourse sends no webhook
//! for a vote, which is why the timer exists.

use serde_json::{json, Map, Value};

use crate::remote::{bad_signature, setting, verify_hmac_sha256};
use crate::{
    ActionContext, ActionSpec, ErrorCode, Event, EventSpec, Http, HttpRequest, HttpResponse,
    Plugin, PluginError, PluginMeta, ProcessContext, ProcessSpec, ProcessStatus, Remote, RemoteOp,
    WebhookRequest,
};

const POLL_PROCESS: &str = "poll";
/// The `name` attribute of every poll Agora creates; each post holds one, so it is unique there.
const POLL_NAME: &str = "agora";
const REFRESH_TIMER: &str = "refresh";
const DEADLINE_TIMER: &str = "deadline";
/// How long after its close time the deadline refresh runs, so Discourse's own close job (which
/// runs at the close time) has usually closed the poll by then.
const DEADLINE_GRACE_MS: u64 = 1_000;
const DEFAULT_REFRESH_SECONDS: u64 = 60;
/// How often a poll past its close time retries reading its result, at most.
const DEADLINE_RETRY_MS: u64 = 30_000;
const MAX_OPTIONS: usize = 20;
const SIGNATURE_HEADER: &str = "X-Discourse-Event-Signature";
const INSTANCE_HEADER: &str = "X-Discourse-Instance";
const EVENT_HEADER: &str = "X-Discourse-Event";
const PROVIDER: &str = "discourse";

/// The webhook events forwarded to the driver; others (pings, users, likes) are accepted and
/// dropped.
const POST_EVENTS: [&str; 4] = [
    "post_created",
    "post_edited",
    "post_destroyed",
    "post_recovered",
];
const TOPIC_EVENTS: [&str; 4] = [
    "topic_created",
    "topic_edited",
    "topic_destroyed",
    "topic_recovered",
];

pub struct Discourse {
    meta: PluginMeta,
}

impl Default for Discourse {
    fn default() -> Self {
        Self::new()
    }
}

impl Discourse {
    pub fn new() -> Self {
        Self {
            meta: PluginMeta {
                name: "discourse",
                verbose_name: "Discourse",
                version: "1.0.0",
                author: "The Agora developers",
                agora_min: "0.1.0",
                agora_max: None,
                depends_on: &[],
                load_by_default: true,
                description: "A Discourse forum: create topics and posts, run Discourse polls \
                              as governance processes, and forward topic and post webhooks.",
                auth_type: "api_key",
                uses_webhook: true,
                config_schema: config_schema(),
                actions: vec![
                    ActionSpec {
                        name: "create-topic",
                        description:
                            "Creates a topic (its first post is `raw`), optionally in a category.",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {
                                "title": {"type": "string", "minLength": 1},
                                "raw": {"type": "string", "minLength": 1, "description": "The first post, in Markdown."},
                                "category": {"type": "integer", "description": "A category id."}
                            },
                            "required": ["title", "raw"],
                            "additionalProperties": false
                        }),
                        response_schema: json!({
                            "type": "object",
                            "properties": {
                                "post_id": {"type": "integer"},
                                "topic_id": {"type": "integer"},
                                "url": {"type": "string"}
                            },
                            "required": ["post_id", "topic_id", "url"]
                        }),
                        public: false,
                    },
                    ActionSpec {
                        name: "create-post",
                        description: "Replies in a topic.",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {
                                "topic_id": {"type": "integer", "minimum": 1},
                                "raw": {"type": "string", "minLength": 1, "description": "The post, in Markdown."}
                            },
                            "required": ["topic_id", "raw"],
                            "additionalProperties": false
                        }),
                        response_schema: json!({
                            "type": "object",
                            "properties": {
                                "post_id": {"type": "integer"},
                                "topic_id": {"type": "integer"},
                                "post_number": {"type": "integer"},
                                "url": {"type": "string"}
                            },
                            "required": ["post_id", "topic_id", "post_number", "url"]
                        }),
                        public: false,
                    },
                ],
                processes: vec![ProcessSpec {
                    name: POLL_PROCESS,
                    description: "A Discourse poll (one choice per voter) in a new topic, or in a \
                                  reply when `topic_id` is given. Completes when Discourse closes \
                                  it, at `closing_at` (or after `duration_minutes`), or when the \
                                  driver closes it, which closes the poll on Discourse.",
                    parameters_schema: poll_parameters_schema(),
                    outcome_schema: poll_outcome_schema(),
                }],
                navigation: vec![],
                widgets: vec![],
                events: event_specs(),
            },
        }
    }
}

fn config_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "api_url": {
                "type": "string",
                "format": "uri",
                "description": "The forum's base URL, e.g. https://forum.example.org (with its subfolder, if any)."
            },
            "api_key": {
                "type": "string",
                "x-secret": true,
                "description": "An API key (Admin > API), sent as the Api-Key header."
            },
            "api_username": {
                "type": "string",
                "minLength": 1,
                "default": "system",
                "description": "The user the API key acts as, sent as the Api-Username header."
            },
            "webhook_secret": {
                "type": "string",
                "x-secret": true,
                "description": "The secret of the forum's webhook (Admin > API > Webhooks)."
            }
        },
        "required": ["api_url"],
        "additionalProperties": false
    })
}

fn poll_parameters_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "description": "The topic title, and the poll's heading."},
            "details": {"type": "string", "description": "Markdown shown above the poll."},
            "options": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 2,
                "maxItems": MAX_OPTIONS,
                "uniqueItems": true
            },
            "topic_id": {"type": "integer", "minimum": 1, "description": "Post the poll as a reply in this topic instead of opening a new one."},
            "category": {"type": "integer", "description": "The category of the new topic."},
            "closing_at": {"type": "string", "format": "date-time", "description": "When Discourse closes the poll."},
            "duration_minutes": {"type": "number", "exclusiveMinimum": 0, "maximum": 5256000, "description": "Close the poll this long after it starts."},
            "public": {"type": "boolean", "default": false, "description": "Whether voters' names are visible."},
            "refresh_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": DEFAULT_REFRESH_SECONDS, "description": "How often the poll is read back from Discourse while it is open."}
        },
        "required": ["title", "options"],
        "allOf": [
            {"not": {"required": ["topic_id", "category"]}},
            {"not": {"required": ["closing_at", "duration_minutes"]}}
        ],
        "additionalProperties": false
    })
}

fn poll_outcome_schema() -> Value {
    json!({
        "type": "object",
        "description": "Shaped like the vote plugin's choice outcome. While pending it holds the \
                        current counts (and the current leader as `winner`); once completed, the \
                        final ones with `closed_at` and `close_reason`.",
        "properties": {
            "method": {"const": "choice"},
            "winner": {"type": ["string", "null"], "description": "The option with the most votes; null on a tie or when nobody voted."},
            "tied": {"type": "array", "items": {"type": "string"}, "description": "The options tied for first place, when they are."},
            "ballots": {"type": "integer", "description": "How many people voted."},
            "tally": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "Votes per option."},
            "voters": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}, "description": "Usernames per option, for public polls (as many as Discourse preloads: 25 per option)."},
            "poll": {
                "type": "object",
                "properties": {
                    "post_id": {"type": "integer"},
                    "topic_id": {"type": "integer"},
                    "name": {"type": "string"},
                    "url": {"type": "string"},
                    "status": {"enum": ["open", "closed", "deleted"]},
                    "close": {"type": "string", "format": "date-time"}
                }
            },
            "closed_at": {"type": "string", "description": "Epoch seconds, as Metagov writes timestamps."},
            "close_reason": {"enum": ["closed_on_discourse", "deadline", "closed_by_driver", "post_deleted", "poll_removed"], "description": "`post_deleted` and `poll_removed` keep the counts last seen."}
        },
        "required": ["method", "winner", "ballots", "tally", "poll"]
    })
}

fn event_specs() -> Vec<EventSpec> {
    let post = json!({
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "topic_id": {"type": "integer"},
            "post_number": {"type": "integer"},
            "raw": {"type": "string"},
            "username": {"type": "string"},
            "topic_title": {"type": "string"},
            "topic_slug": {"type": "string"},
            "category_id": {"type": ["integer", "null"]},
            "reply_to_post_number": {"type": ["integer", "null"]},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "url": {"type": "string"}
        },
        "required": ["id", "topic_id"]
    });
    let topic = json!({
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "slug": {"type": "string"},
            "category_id": {"type": ["integer", "null"]},
            "posts_count": {"type": "integer"},
            "archetype": {"type": "string"},
            "username": {"type": "string"},
            "closed": {"type": "boolean"},
            "archived": {"type": "boolean"},
            "created_at": {"type": "string"},
            "url": {"type": "string"}
        },
        "required": ["id"]
    });
    POST_EVENTS
        .iter()
        .map(|&event_type| EventSpec {
            event_type,
            schema: post.clone(),
        })
        .chain(TOPIC_EVENTS.iter().map(|&event_type| EventSpec {
            event_type,
            schema: topic.clone(),
        }))
        .collect()
}

// ----- talking to the forum -----

/// The connection settings every request needs.
struct Api<'a> {
    base: &'a str,
    key: &'a str,
    username: &'a str,
}

impl<'a> Api<'a> {
    fn from_config(config: &'a Value) -> Result<Self, PluginError> {
        Ok(Api {
            base: base_url(config)?,
            key: setting(config, "api_key")?,
            username: config
                .get("api_username")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("system"),
        })
    }

    fn request(&self, method: &'static str, path: &str, body: Option<&Value>) -> HttpRequest {
        let url = format!("{}{path}", self.base);
        let req = match body {
            Some(body) => HttpRequest::json(method, url, body),
            None => HttpRequest::new(method, url),
        };
        req.header("Api-Key", self.key)
            .header("Api-Username", self.username)
            .header("Accept", "application/json")
    }

    /// Sends `req` and answers the JSON body of a 2xx; anything else becomes the error a driver
    /// should see, quoting Discourse's own messages.
    async fn call(
        &self,
        http: &dyn Http,
        req: HttpRequest,
        what: &str,
    ) -> Result<Value, PluginError> {
        let resp = http.send(req).await?;
        if !resp.is_success() {
            return Err(discourse_error(what, &resp));
        }
        resp.json()
    }
}

/// `api_url` without its trailing slashes.
fn base_url(config: &Value) -> Result<&str, PluginError> {
    Ok(setting(config, "api_url")?.trim_end_matches('/'))
}

/// Discourse explains refusals as `{"errors": [...], "error_type": ...}`; a 5xx that outlived
/// the client's retries (a POST is not retried on a plain 500) means the forum is unavailable.
fn discourse_error(what: &str, resp: &HttpResponse) -> PluginError {
    let body = serde_json::from_slice::<Value>(&resp.body).ok();
    let messages: Vec<&str> = body
        .as_ref()
        .and_then(|b| b.get("errors"))
        .and_then(Value::as_array)
        .map(|errors| errors.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let detail = if messages.is_empty() {
        let text = String::from_utf8_lossy(&resp.body);
        let excerpt: String = text.chars().take(300).collect();
        if excerpt.trim().is_empty() {
            "no explanation given".to_string()
        } else {
            excerpt
        }
    } else {
        messages.join("; ")
    };
    let error_type = body
        .as_ref()
        .and_then(|b| b.get("error_type"))
        .and_then(Value::as_str)
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    let message = format!(
        "{what}: Discourse answered {}{error_type}: {detail}",
        resp.status
    );
    if resp.status >= 500 {
        PluginError {
            code: ErrorCode::PlatformUnavailable,
            message,
            field: None,
        }
    } else {
        PluginError::platform(message)
    }
}

fn topic_url(base: &str, slug: &str, topic_id: u64) -> String {
    format!("{base}/t/{slug}/{topic_id}")
}

fn post_url(base: &str, slug: &str, topic_id: u64, post_number: u64) -> String {
    format!("{base}/t/{slug}/{topic_id}/{post_number}")
}

fn uint(value: &Value, key: &str) -> Option<u64> {
    value.get(key).and_then(Value::as_u64)
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// A post's ids as Discourse serialized it, or a `platform_error` saying what was missing.
struct PostRef {
    id: u64,
    topic_id: u64,
    post_number: u64,
    slug: String,
}

impl PostRef {
    fn read(post: &Value) -> Result<Self, PluginError> {
        let missing = |field: &str| {
            PluginError::platform(format!(
                "Discourse answered a post without `{field}`: {}",
                excerpt(post)
            ))
        };
        Ok(PostRef {
            id: uint(post, "id").ok_or_else(|| missing("id"))?,
            topic_id: uint(post, "topic_id").ok_or_else(|| missing("topic_id"))?,
            post_number: uint(post, "post_number").unwrap_or(1),
            // Discourse answers "topic" for titles it cannot slug; the id alone routes anyway.
            slug: text(post, "topic_slug").unwrap_or("topic").to_string(),
        })
    }
}

fn excerpt(value: &Value) -> String {
    value.to_string().chars().take(200).collect()
}

// ----- actions -----

fn action_request(api: &Api<'_>, action: &str, params: &Value) -> Result<HttpRequest, PluginError> {
    let raw = params.get("raw").cloned().unwrap_or(Value::Null);
    let body = match action {
        "create-topic" => {
            let mut body = json!({"title": params.get("title"), "raw": raw});
            if let Some(category) = params.get("category") {
                body["category"] = category.clone();
            }
            body
        }
        "create-post" => json!({"topic_id": params.get("topic_id"), "raw": raw}),
        other => return Err(unknown_action(other)),
    };
    Ok(api.request("POST", "/posts.json", Some(&body)))
}

fn unknown_action(action: &str) -> PluginError {
    PluginError {
        code: ErrorCode::UnknownAction,
        message: format!("discourse has no action {action}"),
        field: None,
    }
}

fn action_result(action: &str, config: &Value, post: &Value) -> Result<Value, PluginError> {
    let base = base_url(config)?;
    let post = PostRef::read(post)?;
    match action {
        "create-topic" => Ok(json!({
            "post_id": post.id,
            "topic_id": post.topic_id,
            "url": topic_url(base, &post.slug, post.topic_id),
        })),
        "create-post" => Ok(json!({
            "post_id": post.id,
            "topic_id": post.topic_id,
            "post_number": post.post_number,
            "url": post_url(base, &post.slug, post.topic_id, post.post_number),
        })),
        other => Err(unknown_action(other)),
    }
}

// ----- the poll process: starting -----

/// What starting a poll posts, worked out from its parameters before any request is made.
#[derive(Debug)]
struct PollPlan {
    body: Value,
    close_at_ms: Option<u64>,
}

fn one_line(field: &str, value: &str) -> Result<(), PluginError> {
    if value.contains(['\n', '\r']) {
        return Err(PluginError::invalid(field, "must be a single line"));
    }
    // A poll tag inside the text would end or nest the poll's BBCode block.
    if value.to_ascii_lowercase().contains("[poll") || value.to_ascii_lowercase().contains("[/poll")
    {
        return Err(PluginError::invalid(field, "must not contain [poll] tags"));
    }
    Ok(())
}

/// The options, trimmed, as Discourse will show them; each must be a distinct single line.
fn poll_options(params: &Value) -> Result<Vec<String>, PluginError> {
    let list = params
        .get("options")
        .and_then(Value::as_array)
        .ok_or_else(|| PluginError::invalid("options", "a list of options is required"))?;
    let mut options: Vec<String> = Vec::with_capacity(list.len());
    for (i, option) in list.iter().enumerate() {
        let field = format!("options[{i}]");
        let option = option
            .as_str()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .ok_or_else(|| PluginError::invalid(&field, "an option must be non-blank text"))?;
        one_line(&field, option)?;
        if options.iter().any(|o| o == option) {
            return Err(PluginError::invalid(
                &field,
                format!("`{option}` appears more than once"),
            ));
        }
        options.push(option.to_string());
    }
    if !(2..=MAX_OPTIONS).contains(&options.len()) {
        return Err(PluginError::invalid(
            "options",
            format!("a poll needs between 2 and {MAX_OPTIONS} options"),
        ));
    }
    Ok(options)
}

/// Works out the post that opens the poll: `now_ms` dates `duration_minutes` and refuses a
/// `closing_at` already past.
fn plan_poll(params: &Value, now_ms: u64) -> Result<PollPlan, PluginError> {
    let title = text(params, "title")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| PluginError::invalid("title", "a title is required"))?;
    one_line("title", title)?;
    let options = poll_options(params)?;
    let topic_id = params.get("topic_id").filter(|v| !v.is_null());
    let category = params.get("category").filter(|v| !v.is_null());
    if topic_id.is_some() && category.is_some() {
        return Err(PluginError::invalid(
            "category",
            "give either topic_id (a reply) or category (a new topic), not both",
        ));
    }
    let closing_at = text(params, "closing_at");
    let duration = params.get("duration_minutes").and_then(Value::as_f64);
    let close_at_ms = match (closing_at, duration) {
        (Some(_), Some(_)) => {
            return Err(PluginError::invalid(
                "duration_minutes",
                "give either closing_at or duration_minutes, not both",
            ))
        }
        (Some(at), None) => {
            let ms = parse_rfc3339_ms(at).ok_or_else(|| {
                PluginError::invalid("closing_at", format!("`{at}` is not an RFC 3339 date-time"))
            })?;
            if ms <= now_ms {
                return Err(PluginError::invalid(
                    "closing_at",
                    "closing_at must be in the future",
                ));
            }
            Some(ms)
        }
        (None, Some(minutes)) if minutes.is_finite() && minutes > 0.0 => {
            Some(now_ms.saturating_add((minutes * 60_000.0).round() as u64))
        }
        (None, Some(_)) => {
            return Err(PluginError::invalid(
                "duration_minutes",
                "must be a positive number",
            ))
        }
        (None, None) => None,
    };
    let public = params
        .get("public")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let mut raw = String::new();
    if let Some(details) = text(params, "details")
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        raw.push_str(details);
        raw.push_str("\n\n");
    }
    raw.push_str(&format!(
        "[poll name={POLL_NAME} type=regular results=always public={public}"
    ));
    if let Some(ms) = close_at_ms {
        raw.push_str(&format!(" close={}", format_rfc3339_ms(ms)));
    }
    raw.push_str(&format!("]\n# {title}\n"));
    for option in &options {
        raw.push_str(&format!("* {option}\n"));
    }
    raw.push_str("[/poll]\n");

    let body = match (topic_id, category) {
        (Some(topic_id), _) => json!({"topic_id": topic_id, "raw": raw}),
        (None, Some(category)) => json!({"title": title, "raw": raw, "category": category}),
        (None, None) => json!({"title": title, "raw": raw}),
    };
    Ok(PollPlan { body, close_at_ms })
}

// ----- the poll process: reading results -----

/// The fields of the process state the network half needs.
struct PollRef {
    post_id: u64,
    name: String,
    close_at_ms: Option<u64>,
}

impl PollRef {
    fn read(state: &Value) -> Result<Self, PluginError> {
        Ok(PollRef {
            post_id: uint(state, "post_id").ok_or_else(|| {
                PluginError::platform("the poll's state has no post_id (it never started)")
            })?,
            name: text(state, "poll_name").unwrap_or(POLL_NAME).to_string(),
            close_at_ms: uint(state, "close_at_ms"),
        })
    }
}

/// The named poll of a serialized post, if the post still holds it.
fn find_poll<'p>(post: &'p Value, name: &str) -> Option<&'p Value> {
    post.get("polls")?
        .as_array()?
        .iter()
        .find(|p| text(p, "name") == Some(name))
}

/// What a read of our post found: the poll, or why there is none to read any more.
enum Read {
    Poll(Value),
    /// The observation for a post that was deleted or a poll edited out of its post.
    Gone(Value),
}

/// Reads the poll of our post as Discourse serializes it.
async fn read_poll(
    api: &Api<'_>,
    http: &dyn Http,
    poll_ref: &PollRef,
) -> Result<Read, PluginError> {
    let resp = http
        .send(api.request("GET", &format!("/posts/{}.json", poll_ref.post_id), None))
        .await?;
    if matches!(resp.status, 404 | 410) {
        return Ok(Read::Gone(json!({"gone": "post_deleted"})));
    }
    if !resp.is_success() {
        return Err(discourse_error("reading the poll", &resp));
    }
    let post = resp.json()?;
    Ok(match find_poll(&post, &poll_ref.name) {
        Some(poll) => Read::Poll(poll.clone()),
        None => Read::Gone(json!({"gone": "poll_removed"})),
    })
}

/// Reads the poll of our post; past its close time an open poll is closed on Discourse first,
/// so nobody votes after the result was taken.
async fn refresh_poll(api: &Api<'_>, http: &dyn Http, state: &Value) -> Result<Value, PluginError> {
    let poll_ref = PollRef::read(state)?;
    let poll = match read_poll(api, http, &poll_ref).await? {
        Read::Poll(poll) => poll,
        Read::Gone(observation) => return Ok(observation),
    };
    let due = poll_ref.close_at_ms.is_some_and(|at| http.now_ms() >= at);
    if due && text(&poll, "status") == Some("open") {
        return match toggle_closed(api, http, &poll_ref).await {
            Ok(closed) => Ok(json!({"poll": closed})),
            Err(e) => {
                tracing::warn!(post_id = poll_ref.post_id, error = %e, "could not close a Discourse poll past its close time");
                Ok(json!({"poll": poll}))
            }
        };
    }
    Ok(json!({"poll": poll}))
}

/// Closes the poll for the driver. A refusal because the post or the poll is gone still ends
/// the process (there is nothing left to close); any other refusal stands.
async fn close_poll(api: &Api<'_>, http: &dyn Http, state: &Value) -> Result<Value, PluginError> {
    let poll_ref = PollRef::read(state)?;
    match toggle_closed(api, http, &poll_ref).await {
        Ok(poll) => Ok(json!({"poll": poll})),
        Err(refused) if refused.code == ErrorCode::PlatformError => {
            match read_poll(api, http, &poll_ref).await {
                Ok(Read::Gone(observation)) => Ok(observation),
                _ => Err(refused),
            }
        }
        Err(e) => Err(e),
    }
}

async fn toggle_closed(
    api: &Api<'_>,
    http: &dyn Http,
    poll_ref: &PollRef,
) -> Result<Value, PluginError> {
    let body = json!({"post_id": poll_ref.post_id, "poll_name": poll_ref.name, "status": "closed"});
    let answer = api
        .call(
            http,
            api.request("PUT", "/polls/toggle_status", Some(&body)),
            "closing the poll",
        )
        .await?;
    answer.get("poll").cloned().ok_or_else(|| {
        PluginError::platform(format!(
            "Discourse closed the poll but answered no poll: {}",
            excerpt(&answer)
        ))
    })
}

/// Counts per option, in the process's option order, from a serialized poll.
struct Standing {
    status: String,
    ballots: u64,
    tally: Vec<(String, u64)>,
    voters: Option<Map<String, Value>>,
}

impl Standing {
    fn read(state: &Value, poll: &Value) -> Result<Self, PluginError> {
        let ours: Vec<&str> = state
            .get("options")
            .and_then(Value::as_array)
            .map(|o| o.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let theirs = poll
            .get("options")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                PluginError::platform(format!(
                    "Discourse answered a poll without options: {}",
                    excerpt(poll)
                ))
            })?;
        // Discourse keeps the options in the order they were posted, but shows them as cooked
        // HTML (`&amp;`, `<strong>`), so positions name them more reliably than their text.
        let by_position = theirs.len() == ours.len();
        let mut tally = Vec::with_capacity(theirs.len());
        let mut label_of = Map::new();
        for (i, option) in theirs.iter().enumerate() {
            let html = text(option, "html").unwrap_or_default();
            let label = if by_position { ours[i] } else { html }.to_string();
            // Votes are hidden only when results are not `always`, which Agora never asks for.
            tally.push((label.clone(), uint(option, "votes").unwrap_or(0)));
            if let Some(id) = text(option, "id") {
                label_of.insert(id.to_string(), Value::String(label));
            }
        }
        let voters = poll
            .get("preloaded_voters")
            .and_then(Value::as_object)
            .map(|by_id| {
                by_id
                    .iter()
                    .filter_map(|(id, users)| {
                        let label = label_of.get(id)?.as_str()?.to_string();
                        let names: Vec<Value> = users
                            .as_array()?
                            .iter()
                            .filter_map(|u| {
                                text(u, "username").map(|n| Value::String(n.to_string()))
                            })
                            .collect();
                        Some((label, Value::Array(names)))
                    })
                    .collect()
            });
        Ok(Standing {
            status: text(poll, "status").unwrap_or("open").to_string(),
            ballots: uint(poll, "voters").unwrap_or(0),
            tally,
            voters,
        })
    }

    /// The outcome as the vote plugin shapes a choice vote: the option with the most votes wins;
    /// a tie for first has no winner and lists the tied options; an option nobody chose never wins.
    fn outcome(&self, state: &Value, status: &str) -> Value {
        let top = self.tally.iter().map(|(_, v)| *v).max().unwrap_or(0);
        let leaders: Vec<&str> = if top == 0 {
            Vec::new()
        } else {
            self.tally
                .iter()
                .filter(|(_, v)| *v == top)
                .map(|(o, _)| o.as_str())
                .collect()
        };
        let mut outcome = json!({
            "method": "choice",
            "winner": if leaders.len() == 1 { json!(leaders[0]) } else { Value::Null },
            "ballots": self.ballots,
            "tally": self.tally.iter().map(|(o, v)| (o.clone(), json!(v))).collect::<Map<_, _>>(),
            "poll": poll_summary(state, status),
        });
        if leaders.len() > 1 {
            outcome["tied"] = json!(leaders);
        }
        if let Some(voters) = &self.voters {
            outcome["voters"] = Value::Object(voters.clone());
        }
        outcome
    }
}

fn poll_summary(state: &Value, status: &str) -> Value {
    let mut poll = json!({
        "post_id": state.get("post_id"),
        "topic_id": state.get("topic_id"),
        "name": state.get("poll_name"),
        "url": state.get("url"),
        "status": status,
    });
    if let Some(ms) = uint(state, "close_at_ms") {
        poll["close"] = json!(format_rfc3339_ms(ms));
    }
    poll
}

/// An outcome from no votes at all, for a poll just posted.
fn empty_outcome(state: &Value) -> Value {
    let tally: Map<String, Value> = state
        .get("options")
        .and_then(Value::as_array)
        .map(|o| {
            o.iter()
                .filter_map(Value::as_str)
                .map(|o| (o.to_string(), json!(0)))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "method": "choice",
        "winner": null,
        "ballots": 0,
        "tally": tally,
        "poll": poll_summary(state, "open"),
    })
}

/// Metagov's timestamp format, as the vote plugin writes `closed_at`.
fn metagov_timestamp(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn finish(ctx: &mut ProcessContext<'_>, mut outcome: Value, reason: &str) {
    outcome["closed_at"] = json!(metagov_timestamp(ctx.now_ms));
    outcome["close_reason"] = json!(reason);
    ctx.cancel_timer(REFRESH_TIMER);
    ctx.cancel_timer(DEADLINE_TIMER);
    ctx.complete(outcome);
}

/// Completes the process with the counts last seen when the observation says the post was
/// deleted or the poll edited out of it; answers whether it did.
fn finish_gone(ctx: &mut ProcessContext<'_>, observation: &Value) -> bool {
    let reason = match text(observation, "gone") {
        Some("post_deleted") => "post_deleted",
        Some("poll_removed") => "poll_removed",
        _ => return false,
    };
    let mut outcome = ctx.outcome.clone();
    if outcome.get("tally").is_none() {
        outcome = empty_outcome(ctx.state);
    }
    outcome["poll"] = poll_summary(ctx.state, "deleted");
    finish(ctx, outcome, reason);
    true
}

fn refresh_ms(state: &Value) -> u64 {
    uint(state, "refresh_ms").unwrap_or(DEFAULT_REFRESH_SECONDS * 1000)
}

// ----- webhooks -----

/// The forum a URL names, as `platform_id` and `webhook_route` compare it: no scheme, no
/// trailing slash, lowercased; a subfolder install keeps its path (`forum.example.org/community`),
/// as Discourse's `X-Discourse-Instance` (its base URL) does.
fn instance_id(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = rest.trim_end_matches('/');
    (!rest.is_empty()).then(|| rest.to_string())
}

fn signature_ok(config: &Value, req: &WebhookRequest) -> Result<bool, PluginError> {
    let secret = setting(config, "webhook_secret")?;
    Ok(verify_hmac_sha256(
        secret.as_bytes(),
        &req.body,
        req.header(SIGNATURE_HEADER),
        "sha256=",
    ))
}

fn copy_fields(from: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|&f| from.get(f).map(|v| (f.to_string(), v.clone())))
        .collect()
}

/// The driver event for a webhook, or `None` for events Agora does not forward.
fn webhook_event(base: &str, event: &str, body: &Value) -> Option<Event> {
    if POST_EVENTS.contains(&event) {
        let post = body.get("post")?;
        let mut data = copy_fields(
            post,
            &[
                "id",
                "topic_id",
                "post_number",
                "raw",
                "username",
                "topic_title",
                "topic_slug",
                "category_id",
                "reply_to_post_number",
                "created_at",
                "updated_at",
            ],
        );
        if let (Some(topic_id), Some(number)) = (uint(post, "topic_id"), uint(post, "post_number"))
        {
            let slug = text(post, "topic_slug").unwrap_or("topic");
            data.insert("url".into(), json!(post_url(base, slug, topic_id, number)));
        }
        return Some(Event {
            event_type: event.to_string(),
            data: Value::Object(data),
            initiator: initiator(text(post, "username")),
        });
    }
    if TOPIC_EVENTS.contains(&event) {
        let topic = body.get("topic")?;
        let mut data = copy_fields(
            topic,
            &[
                "id",
                "title",
                "slug",
                "category_id",
                "posts_count",
                "archetype",
                "closed",
                "archived",
                "created_at",
            ],
        );
        let author = topic.get("created_by").and_then(|u| text(u, "username"));
        if let Some(author) = author {
            data.insert("username".into(), json!(author));
        }
        if let Some(id) = uint(topic, "id") {
            let slug = text(topic, "slug").unwrap_or("topic");
            data.insert("url".into(), json!(topic_url(base, slug, id)));
        }
        return Some(Event {
            event_type: event.to_string(),
            data: Value::Object(data),
            initiator: initiator(author),
        });
    }
    None
}

fn initiator(username: Option<&str>) -> Value {
    match username {
        Some(user) => json!({"user_id": user, "provider": PROVIDER}),
        None => json!({}),
    }
}

/// The topic a post or topic webhook is about.
fn webhook_topic(body: &Value) -> Option<u64> {
    body.get("post")
        .and_then(|p| uint(p, "topic_id"))
        .or_else(|| body.get("topic").and_then(|t| uint(t, "id")))
}

/// Epoch milliseconds of an RFC 3339 date-time; `None` for anything else or a time before
/// 1970.
fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    u64::try_from(crate::wire::parse_rfc3339_ms(text)?).ok()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form Discourse's poll builder writes into `close=`.
fn format_rfc3339_ms(ms: u64) -> String {
    crate::wire::format_rfc3339_ms(i64::try_from(ms).unwrap_or(i64::MAX))
}

// ----- the plugin -----

impl Plugin for Discourse {
    fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    fn remote<'a>(
        &'a self,
        call: Remote<'a>,
    ) -> Option<crate::BoxFuture<'a, Result<Value, PluginError>>> {
        let Remote {
            config, http, op, ..
        } = call;
        match op {
            RemoteOp::Action { action, params } => {
                if !matches!(action, "create-topic" | "create-post") {
                    return None;
                }
                Some(Box::pin(async move {
                    let api = Api::from_config(config)?;
                    let req = action_request(&api, action, params)?;
                    api.call(http, req, action).await
                }))
            }
            RemoteOp::StartProcess { process, params } if process == POLL_PROCESS => {
                Some(Box::pin(async move {
                    let api = Api::from_config(config)?;
                    let plan = plan_poll(params, http.now_ms())?;
                    let req = api.request("POST", "/posts.json", Some(&plan.body));
                    let post = api.call(http, req, "posting the poll").await?;
                    Ok(
                        json!({"post": post, "poll_name": POLL_NAME, "close_at_ms": plan.close_at_ms}),
                    )
                }))
            }
            RemoteOp::Refresh { process, state } if process == POLL_PROCESS => {
                Some(Box::pin(async move {
                    let api = Api::from_config(config)?;
                    refresh_poll(&api, http, state).await
                }))
            }
            RemoteOp::CloseProcess { process, state } if process == POLL_PROCESS => {
                Some(Box::pin(async move {
                    let api = Api::from_config(config)?;
                    close_poll(&api, http, state).await
                }))
            }
            // `/session/current.json` needs a valid key and a known `Api-Username`, reads one
            // row, and is what Discourse's own clients call to ask "who am I".
            RemoteOp::Probe => Some(Box::pin(async move {
                let api = Api::from_config(config)?;
                let req = api.request("GET", "/session/current.json", None);
                let resp = http.send(req).await?;
                match resp.status {
                    200..=299 => Ok(json!({"ok": true})),
                    404 => Err(PluginError::platform(format!(
                        "Discourse knows no user `{}` (api_username) for this API key",
                        api.username
                    ))),
                    _ => Err(discourse_error("checking the API key", &resp)),
                }
            })),
            _ => None,
        }
    }

    fn action(
        &self,
        ctx: &mut ActionContext<'_>,
        action: &str,
        _params: &Value,
    ) -> Result<Value, PluginError> {
        if !matches!(action, "create-topic" | "create-post") {
            return Err(unknown_action(action));
        }
        action_result(action, ctx.config, ctx.observation()?)
    }

    fn webhook(
        &self,
        ctx: &mut ActionContext<'_>,
        req: &WebhookRequest,
    ) -> Result<(), PluginError> {
        if !signature_ok(ctx.config, req)? {
            return Err(bad_signature(SIGNATURE_HEADER));
        }
        let Some(event) = req.header(EVENT_HEADER) else {
            return Ok(());
        };
        let body = req
            .json()
            .ok_or_else(|| PluginError::invalid("body", "a Discourse webhook body is JSON"))?;
        let base = base_url(ctx.config)?;
        if let Some(event) = webhook_event(base, event, &body) {
            ctx.events.push(event);
        }
        Ok(())
    }

    /// The forum's URL is a base URL; the key acts as `api_username`, which the schema
    /// defaults, so nothing needs pairing here.
    fn check_settings(&self, settings: &Value) -> Result<(), PluginError> {
        crate::wire::check_base_url(settings, "api_url")
    }

    fn platform_id(&self, settings: &Value) -> Option<String> {
        instance_id(text(settings, "api_url")?)
    }

    fn webhook_route(&self, req: &WebhookRequest) -> Option<String> {
        instance_id(req.header(INSTANCE_HEADER)?)
    }

    /// `X-Discourse-Event-Id`: the id of the stored web hook event (`WebHookEvent#id` in
    /// Discourse's own specs), one per emitted event.
    fn delivery_id(&self, req: &WebhookRequest) -> Option<String> {
        req.header("X-Discourse-Event-Id").map(str::to_owned)
    }

    fn start_process(
        &self,
        ctx: &mut ProcessContext<'_>,
        params: &Value,
    ) -> Result<(), PluginError> {
        if ctx.process != POLL_PROCESS {
            return Err(PluginError::invalid(
                "process",
                format!("discourse has no process {}", ctx.process),
            ));
        }
        let observation = ctx.observation()?;
        let post_json = observation
            .get("post")
            .ok_or_else(|| PluginError::platform("Discourse answered no post for the poll"))?;
        let post = PostRef::read(post_json)?;
        let base = base_url(ctx.config)?;
        let options = poll_options(params)?;
        // The schema fills the default and bounds it (1..=86400); a value that is not such an
        // integer is refused, never replaced.
        let refresh_ms = params
            .get("refresh_seconds")
            .and_then(Value::as_u64)
            .filter(|s| (1..=86_400).contains(s))
            .ok_or_else(|| {
                PluginError::invalid("refresh_seconds", "refresh_seconds must be 1 to 86400")
            })?
            * 1000;
        let close_at_ms = uint(observation, "close_at_ms");
        *ctx.state = json!({
            "post_id": post.id,
            "topic_id": post.topic_id,
            "post_number": post.post_number,
            "topic_slug": post.slug,
            "poll_name": text(observation, "poll_name").unwrap_or(POLL_NAME),
            "url": post_url(base, &post.slug, post.topic_id, post.post_number),
            "options": options,
            "close_at_ms": close_at_ms,
            "refresh_ms": refresh_ms,
        });
        ctx.outcome = empty_outcome(ctx.state);
        ctx.status = ProcessStatus::Pending;
        ctx.set_timer(REFRESH_TIMER, ctx.now_ms + refresh_ms);
        if let Some(at) = close_at_ms {
            ctx.set_timer(DEADLINE_TIMER, at.saturating_add(DEADLINE_GRACE_MS));
        }
        Ok(())
    }

    fn process_webhook(
        &self,
        ctx: &mut ProcessContext<'_>,
        req: &WebhookRequest,
    ) -> Result<(), PluginError> {
        // The instance already refused unsigned webhooks; checking again keeps a process from
        // ever acting on one, whatever route delivered it.
        if !matches!(signature_ok(ctx.config, req), Ok(true)) {
            return Ok(());
        }
        let ours = uint(ctx.state, "topic_id");
        if ours.is_some() && req.json().as_ref().and_then(webhook_topic) == ours {
            ctx.request_refresh();
        }
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
        if finish_gone(ctx, observation) {
            return Ok(());
        }
        let poll = observation
            .get("poll")
            .ok_or_else(|| PluginError::platform("the refresh observed no poll"))?;
        let standing = Standing::read(ctx.state, poll)?;
        let due = uint(ctx.state, "close_at_ms").is_some_and(|at| ctx.now_ms >= at);
        if standing.status == "closed" || due {
            let reason = if due {
                "deadline"
            } else {
                "closed_on_discourse"
            };
            let outcome = standing.outcome(ctx.state, "closed");
            finish(ctx, outcome, reason);
        } else {
            // Only a change of counts changes the outcome (each change notifies the driver).
            let outcome = standing.outcome(ctx.state, &standing.status);
            if outcome != ctx.outcome {
                ctx.outcome = outcome;
            }
        }
        Ok(())
    }

    fn tick(&self, ctx: &mut ProcessContext<'_>, timer: &str) -> Result<(), PluginError> {
        if ctx.status == ProcessStatus::Completed {
            return Ok(());
        }
        match timer {
            REFRESH_TIMER => {
                ctx.request_refresh();
                let next = ctx.now_ms + refresh_ms(ctx.state);
                ctx.set_timer(REFRESH_TIMER, next);
            }
            DEADLINE_TIMER => {
                ctx.request_refresh();
                // Should that refresh fail (the forum is down), try again well before the next
                // regular refresh; completing cancels this timer.
                let retry = refresh_ms(ctx.state).min(DEADLINE_RETRY_MS);
                ctx.set_timer(DEADLINE_TIMER, ctx.now_ms + retry);
            }
            _ => {}
        }
        Ok(())
    }

    fn close_process(&self, ctx: &mut ProcessContext<'_>) -> Result<(), PluginError> {
        if ctx.status == ProcessStatus::Completed {
            return Ok(());
        }
        let observation = ctx.observation()?;
        if finish_gone(ctx, observation) {
            return Ok(());
        }
        let poll = observation
            .get("poll")
            .ok_or_else(|| PluginError::platform("closing the poll observed no poll"))?;
        let standing = Standing::read(ctx.state, poll)?;
        let outcome = standing.outcome(ctx.state, "closed");
        finish(ctx, outcome, "closed_by_driver");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::hmac_sha256_hex;
    use crate::remote::testing::{block_on, json_response, FakeHttp};
    use crate::HttpError;

    const BASE: &str = "https://forum.example.org";

    fn config() -> Value {
        json!({
            "api_url": format!("{BASE}/"),
            "api_key": "k3y",
            "api_username": "agora-bot",
            "webhook_secret": "s3cret"
        })
    }

    fn run(
        plugin: &Discourse,
        config: &Value,
        http: &FakeHttp,
        op: RemoteOp<'_>,
    ) -> Result<Value, PluginError> {
        let fut = plugin
            .remote(Remote {
                community: "c",
                config,
                http,
                op,
            })
            .expect("discourse does network work for this operation");
        block_on(fut)
    }

    fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(req: &HttpRequest) -> Value {
        serde_json::from_slice(req.body.as_deref().expect("a body")).expect("a JSON body")
    }

    fn post_json(id: u64, topic_id: u64, post_number: u64) -> Value {
        json!({
            "id": id, "topic_id": topic_id, "post_number": post_number,
            "topic_slug": "budget-vote", "username": "agora-bot", "raw": "...", "cooked": "<p>...</p>"
        })
    }

    fn poll_json(status: &str, votes: [u64; 3], voters: u64) -> Value {
        json!({
            "name": POLL_NAME, "type": "regular", "status": status, "results": "always",
            "options": [
                {"id": "d1", "html": "Red", "votes": votes[0]},
                {"id": "d2", "html": "Green &amp; Blue", "votes": votes[1]},
                {"id": "d3", "html": "Neither", "votes": votes[2]}
            ],
            "voters": voters
        })
    }

    fn started(
        plugin: &Discourse,
        cfg: &Value,
        state: &mut Value,
        params: Value,
        close_at_ms: Option<u64>,
    ) -> (ProcessStatus, Value, Vec<(String, u64)>) {
        let obs = json!({"post": post_json(70, 9, 3), "poll_name": POLL_NAME, "close_at_ms": close_at_ms});
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, cfg, state, 1_000);
        ctx.remote = Some(&obs);
        plugin.start_process(&mut ctx, &params).unwrap();
        (ctx.status, ctx.outcome.clone(), ctx.timers.clone())
    }

    fn poll_params() -> Value {
        json!({"title": "Which colour for the logo?", "options": ["Red", "Green & Blue", "Neither"], "refresh_seconds": 5})
    }

    #[test]
    fn poll_parameters_refuse_both_topic_and_category_or_both_close_times() {
        let schema = poll_parameters_schema();
        let ok = json!({"title": "t", "options": ["a", "b"], "topic_id": 3});
        assert!(crate::schema::validate(&schema, &ok).is_ok());
        for bad in [
            json!({"title": "t", "options": ["a", "b"], "topic_id": 3, "category": 4}),
            json!({"title": "t", "options": ["a", "b"], "closing_at": "2030-01-01T00:00:00Z", "duration_minutes": 5}),
            json!({"title": "t", "options": ["a"]}),
            json!({"title": "t", "options": ["a", "a"]}),
            json!({"title": "t", "options": ["a", "b"], "refresh_seconds": 0}),
        ] {
            assert!(crate::schema::validate(&schema, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_topic_posts_json_with_the_api_headers_and_answers_ids_and_url() {
        let p = Discourse::new();
        let cfg = config();
        let http = FakeHttp::answering(vec![json_response(200, post_json(11, 5, 1))]);
        let params = json!({"title": "Welcome to the budget", "raw": "Please read this first.", "category": 4});
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Action {
                action: "create-topic",
                params: &params,
            },
        )
        .unwrap();

        let reqs = http.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(reqs[0].url, format!("{BASE}/posts.json"));
        assert_eq!(header(&reqs[0], "Api-Key"), Some("k3y"));
        assert_eq!(header(&reqs[0], "Api-Username"), Some("agora-bot"));
        assert_eq!(header(&reqs[0], "content-type"), Some("application/json"));
        assert_eq!(
            body(&reqs[0]),
            json!({"title": "Welcome to the budget", "raw": "Please read this first.", "category": 4})
        );

        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        ctx.remote = Some(&obs);
        let result = p.action(&mut ctx, "create-topic", &params).unwrap();
        assert_eq!(
            result,
            json!({"post_id": 11, "topic_id": 5, "url": format!("{BASE}/t/budget-vote/5")})
        );
    }

    #[test]
    fn create_post_replies_in_the_topic_and_answers_the_post_url() {
        let p = Discourse::new();
        let cfg = json!({"api_url": BASE, "api_key": "k"});
        let http = FakeHttp::answering(vec![json_response(200, post_json(12, 5, 4))]);
        let params = json!({"topic_id": 5, "raw": "I agree with the proposal."});
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Action {
                action: "create-post",
                params: &params,
            },
        )
        .unwrap();
        let req = &http.requests()[0];
        assert_eq!(
            body(req),
            json!({"topic_id": 5, "raw": "I agree with the proposal."})
        );
        // The documented default user.
        assert_eq!(header(req, "Api-Username"), Some("system"));

        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        ctx.remote = Some(&obs);
        let result = p.action(&mut ctx, "create-post", &params).unwrap();
        assert_eq!(
            result,
            json!({"post_id": 12, "topic_id": 5, "post_number": 4, "url": format!("{BASE}/t/budget-vote/5/4")})
        );
    }

    #[test]
    fn discourse_refusals_become_platform_errors_quoting_its_messages() {
        let p = Discourse::new();
        let cfg = config();
        let params = json!({"title": "Short", "raw": "x"});
        let http = FakeHttp::answering(vec![json_response(
            422,
            json!({"action": "create_post", "errors": ["Title is too short (minimum is 15 characters)", "Body is too short"]}),
        )]);
        let e = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Action {
                action: "create-topic",
                params: &params,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformError);
        assert!(
            e.message.contains("422")
                && e.message
                    .contains("Title is too short (minimum is 15 characters); Body is too short"),
            "{e}"
        );

        let http = FakeHttp::answering(vec![json_response(
            403,
            json!({"errors": ["You are not permitted to view the requested resource."], "error_type": "invalid_access"}),
        )]);
        let e = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Action {
                action: "create-topic",
                params: &params,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformError);
        assert!(
            e.message.contains("invalid_access") && e.message.contains("not permitted"),
            "{e}"
        );

        let http = FakeHttp::answering(vec![Ok(HttpResponse {
            status: 500,
            headers: vec![],
            body: b"oops".to_vec(),
        })]);
        let e = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Action {
                action: "create-topic",
                params: &params,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformUnavailable);

        let http = FakeHttp::answering(vec![Err(HttpError::CircuitOpen { retry_in_ms: 100 })]);
        let e = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Action {
                action: "create-topic",
                params: &params,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::CircuitOpen);

        // A 2xx that is not a post is not a success either.
        let http = FakeHttp::answering(vec![json_response(200, json!({"success": "OK"}))]);
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Action {
                action: "create-topic",
                params: &params,
            },
        )
        .unwrap();
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        ctx.remote = Some(&obs);
        assert_eq!(
            p.action(&mut ctx, "create-topic", &params)
                .unwrap_err()
                .code,
            ErrorCode::PlatformError
        );
    }

    #[test]
    fn missing_settings_are_reported_before_any_request() {
        let p = Discourse::new();
        let params = json!({"topic_id": 1, "raw": "x"});
        for (cfg, field) in [
            (json!({"api_url": BASE}), "settings.api_key"),
            (json!({"api_key": "k"}), "settings.api_url"),
        ] {
            let http = FakeHttp::default();
            let e = run(
                &p,
                &cfg,
                &http,
                RemoteOp::Action {
                    action: "create-post",
                    params: &params,
                },
            )
            .unwrap_err();
            assert_eq!(e.code, ErrorCode::PlatformNotConfigured);
            assert_eq!(e.field.as_deref(), Some(field));
            assert!(http.requests().is_empty());
        }
        // Unknown actions do no network work and are refused.
        let cfg = config();
        assert!(p
            .remote(Remote {
                community: "c",
                config: &cfg,
                http: &FakeHttp::default(),
                op: RemoteOp::Action {
                    action: "nope",
                    params: &params
                }
            })
            .is_none());
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        assert_eq!(
            p.action(&mut ctx, "nope", &params).unwrap_err().code,
            ErrorCode::UnknownAction
        );
    }

    #[test]
    fn the_probe_asks_who_the_key_acts_as() {
        let p = Discourse::new();
        let cfg = config();
        let http = FakeHttp::answering(vec![json_response(
            200,
            json!({"current_user": {"id": 1, "username": "agora-bot"}}),
        )]);
        run(&p, &cfg, &http, RemoteOp::Probe).unwrap();
        let req = &http.requests()[0];
        assert_eq!(
            (req.method, req.url.as_str()),
            ("GET", format!("{BASE}/session/current.json").as_str())
        );
        assert_eq!(header(req, "Api-Key"), Some("k3y"));
        assert!(req.body.is_none());

        let http = FakeHttp::answering(vec![json_response(
            403,
            json!({"errors": ["You are not permitted to view the requested resource."], "error_type": "invalid_access"}),
        )]);
        assert_eq!(
            run(&p, &cfg, &http, RemoteOp::Probe).unwrap_err().code,
            ErrorCode::PlatformError
        );
        let http = FakeHttp::answering(vec![json_response(404, json!({"errors": ["not found"]}))]);
        assert!(run(&p, &cfg, &http, RemoteOp::Probe)
            .unwrap_err()
            .message
            .contains("agora-bot"));
    }

    #[test]
    fn starting_a_poll_posts_poll_bbcode_in_a_new_topic() {
        let p = Discourse::new();
        let cfg = config();
        let mut params = poll_params();
        params["closing_at"] = json!("2099-03-01T12:30:00+01:00");
        params["category"] = json!(7);
        params["details"] = json!("Vote by Friday.");
        params["public"] = json!(true);
        let http = FakeHttp::answering(vec![json_response(200, post_json(70, 9, 1))]);
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::StartProcess {
                process: POLL_PROCESS,
                params: &params,
            },
        )
        .unwrap();
        let sent = body(&http.requests()[0]);
        assert_eq!(sent["title"], "Which colour for the logo?");
        assert_eq!(sent["category"], 7);
        assert!(sent.get("topic_id").is_none());
        assert_eq!(
            sent["raw"],
            "Vote by Friday.\n\n[poll name=agora type=regular results=always public=true close=2099-03-01T11:30:00.000Z]\n\
             # Which colour for the logo?\n* Red\n* Green & Blue\n* Neither\n[/poll]\n"
        );
        assert_eq!(
            obs["close_at_ms"],
            json!(parse_rfc3339_ms("2099-03-01T11:30:00Z").unwrap())
        );
        assert_eq!(obs["post"]["id"], 70);
    }

    #[test]
    fn a_poll_in_an_existing_topic_is_a_reply_and_a_duration_dates_its_close() {
        let params = json!({"title": "Approve the minutes?", "options": ["Yes", "No"], "topic_id": 9, "duration_minutes": 1.5});
        let plan = plan_poll(&params, 1_700_000_000_000).unwrap();
        assert_eq!(plan.close_at_ms, Some(1_700_000_090_000));
        assert_eq!(plan.body["topic_id"], 9);
        assert!(plan.body.get("title").is_none());
        let raw = plan.body["raw"].as_str().unwrap();
        assert!(raw.starts_with("[poll name=agora type=regular results=always public=false close=2023-11-14T22:14:50.000Z]\n# Approve the minutes?\n"), "{raw}");

        let open = plan_poll(&json!({"title": "t", "options": ["a", "b"]}), 0).unwrap();
        assert_eq!(open.close_at_ms, None);
        assert!(!open.body["raw"].as_str().unwrap().contains("close="));
    }

    #[test]
    fn bad_poll_parameters_are_refused_before_anything_is_posted() {
        let p = Discourse::new();
        let cfg = config();
        for (params, field) in [
            (
                json!({"title": "t", "options": ["a", "b"], "closing_at": "2001-01-01T00:00:00Z"}),
                "closing_at",
            ),
            (
                json!({"title": "t", "options": ["a", "b\nc"]}),
                "options[1]",
            ),
            (json!({"title": "t", "options": ["a", " a "]}), "options[1]"),
            (
                json!({"title": "t", "options": ["a", "[/poll]"]}),
                "options[1]",
            ),
            (json!({"title": "t", "options": ["a", "   "]}), "options[1]"),
            (
                json!({"title": "t", "options": ["a", "b"], "topic_id": 1, "category": 2}),
                "category",
            ),
            (json!({"title": " ", "options": ["a", "b"]}), "title"),
        ] {
            let http = FakeHttp::default();
            let e = run(
                &p,
                &cfg,
                &http,
                RemoteOp::StartProcess {
                    process: POLL_PROCESS,
                    params: &params,
                },
            )
            .unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                (ErrorCode::SchemaViolation, Some(field)),
                "{params}"
            );
            assert!(http.requests().is_empty());
        }
    }

    #[test]
    fn a_started_poll_is_pending_with_zero_counts_and_timers() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        let (status, outcome, timers) = started(&p, &cfg, &mut state, poll_params(), Some(60_000));
        assert_eq!(status, ProcessStatus::Pending);
        assert_eq!(
            timers,
            vec![
                (REFRESH_TIMER.to_string(), 6_000),
                (DEADLINE_TIMER.to_string(), 61_000)
            ]
        );
        assert_eq!(state["post_id"], 70);
        assert_eq!(state["topic_id"], 9);
        assert_eq!(state["poll_name"], POLL_NAME);
        assert_eq!(
            outcome["tally"],
            json!({"Red": 0, "Green & Blue": 0, "Neither": 0})
        );
        assert_eq!(outcome["winner"], Value::Null);
        assert_eq!(outcome["poll"]["url"], format!("{BASE}/t/budget-vote/9/3"));
        assert_eq!(outcome["poll"]["status"], "open");
    }

    #[test]
    fn refreshes_follow_the_counts_and_complete_when_discourse_closes_the_poll() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        let (_, outcome, _) = started(&p, &cfg, &mut state, poll_params(), None);

        // The refresh reads the post.
        let http = FakeHttp::answering(vec![json_response(
            200,
            json!({"id": 70, "polls": [poll_json("open", [1, 2, 0], 3)]}),
        )]);
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Refresh {
                process: POLL_PROCESS,
                state: &state,
            },
        )
        .unwrap();
        assert_eq!(http.requests()[0].url, format!("{BASE}/posts/70.json"));
        assert_eq!(http.requests()[0].method, "GET");

        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 2_000);
        ctx.status = ProcessStatus::Pending;
        ctx.outcome = outcome;
        p.observe(&mut ctx, &obs).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Pending);
        assert_eq!(
            ctx.outcome["tally"],
            json!({"Red": 1, "Green & Blue": 2, "Neither": 0})
        );
        assert_eq!(ctx.outcome["ballots"], 3);
        assert_eq!(ctx.outcome["winner"], "Green & Blue");

        // The same counts change nothing.
        let before = ctx.outcome.clone();
        p.observe(&mut ctx, &obs).unwrap();
        assert_eq!(ctx.outcome, before);

        // Closed on Discourse: completed, tied.
        let closed = json!({"poll": poll_json("closed", [2, 2, 1], 5)});
        p.observe(&mut ctx, &closed).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["winner"], Value::Null);
        assert_eq!(ctx.outcome["tied"], json!(["Red", "Green & Blue"]));
        assert_eq!(ctx.outcome["close_reason"], "closed_on_discourse");
        assert_eq!(ctx.outcome["closed_at"], "2.000");
        assert_eq!(ctx.outcome["poll"]["status"], "closed");
        assert!(ctx.cancelled_timers.contains(&REFRESH_TIMER.to_string()));
    }

    #[test]
    fn past_its_close_time_the_refresh_closes_an_open_poll_and_the_process_completes() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        started(&p, &cfg, &mut state, poll_params(), Some(5_000));
        let http = FakeHttp::answering(vec![
            json_response(
                200,
                json!({"id": 70, "polls": [poll_json("open", [0, 0, 1], 1)]}),
            ),
            json_response(200, json!({"poll": poll_json("closed", [0, 0, 1], 1)})),
        ]);
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Refresh {
                process: POLL_PROCESS,
                state: &state,
            },
        )
        .unwrap();
        let reqs = http.requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            (reqs[1].method, reqs[1].url.as_str()),
            ("PUT", format!("{BASE}/polls/toggle_status").as_str())
        );
        assert_eq!(
            body(&reqs[1]),
            json!({"post_id": 70, "poll_name": POLL_NAME, "status": "closed"})
        );

        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 6_000);
        ctx.status = ProcessStatus::Pending;
        p.observe(&mut ctx, &obs).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["winner"], "Neither");
        assert_eq!(ctx.outcome["close_reason"], "deadline");

        // Even if Discourse still shows it open, the deadline completes the process.
        let mut state2 = Value::Null;
        started(&p, &cfg, &mut state2, poll_params(), Some(5_000));
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state2, 6_000);
        ctx.status = ProcessStatus::Pending;
        p.observe(&mut ctx, &json!({"poll": poll_json("open", [0, 0, 0], 0)}))
            .unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["winner"], Value::Null);
        assert!(ctx.outcome.get("tied").is_none());
    }

    #[test]
    fn a_deleted_post_completes_the_poll_with_what_was_last_seen() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        let (_, outcome, _) = started(&p, &cfg, &mut state, poll_params(), None);
        let http = FakeHttp::answering(vec![json_response(
            404,
            json!({"errors": ["not found"], "error_type": "not_found"}),
        )]);
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Refresh {
                process: POLL_PROCESS,
                state: &state,
            },
        )
        .unwrap();
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 9_000);
        ctx.status = ProcessStatus::Pending;
        ctx.outcome = outcome;
        p.observe(&mut ctx, &obs).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["close_reason"], "post_deleted");
        assert_eq!(ctx.outcome["poll"]["status"], "deleted");
    }

    #[test]
    fn the_driver_closing_the_process_closes_the_poll_on_discourse() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        let mut params = poll_params();
        params["public"] = json!(true);
        started(&p, &cfg, &mut state, params, None);
        let mut closed = poll_json("closed", [3, 1, 0], 4);
        closed["preloaded_voters"] = json!({"d1": [{"id": 2, "username": "ann"}, {"id": 3, "username": "bo"}, {"id": 4, "username": "cy"}], "d2": [{"id": 5, "username": "di"}]});
        let http = FakeHttp::answering(vec![json_response(200, json!({"poll": closed}))]);
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::CloseProcess {
                process: POLL_PROCESS,
                state: &state,
            },
        )
        .unwrap();
        let req = &http.requests()[0];
        assert_eq!(
            (req.method, req.url.as_str()),
            ("PUT", format!("{BASE}/polls/toggle_status").as_str())
        );
        assert_eq!(
            body(req),
            json!({"post_id": 70, "poll_name": POLL_NAME, "status": "closed"})
        );

        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 4_000);
        ctx.status = ProcessStatus::Pending;
        ctx.remote = Some(&obs);
        p.close_process(&mut ctx).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["winner"], "Red");
        assert_eq!(
            ctx.outcome["tally"],
            json!({"Red": 3, "Green & Blue": 1, "Neither": 0})
        );
        assert_eq!(
            ctx.outcome["voters"],
            json!({"Red": ["ann", "bo", "cy"], "Green & Blue": ["di"]})
        );
        assert_eq!(ctx.outcome["close_reason"], "closed_by_driver");

        // Discourse refusing to close a poll that is still there leaves the process as it was.
        let http = FakeHttp::answering(vec![
            json_response(
                422,
                json!({"errors": ["Only staff members or the original poster can toggle a poll status."]}),
            ),
            json_response(
                200,
                json!({"id": 70, "polls": [poll_json("open", [0, 0, 0], 0)]}),
            ),
        ]);
        let e = run(
            &p,
            &cfg,
            &http,
            RemoteOp::CloseProcess {
                process: POLL_PROCESS,
                state: &state,
            },
        )
        .unwrap_err();
        assert!(e.message.contains("Only staff"), "{e}");
        assert_eq!(http.requests()[1].url, format!("{BASE}/posts/70.json"));
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 4_000);
        ctx.status = ProcessStatus::Pending;
        assert_eq!(
            p.close_process(&mut ctx).unwrap_err().code,
            ErrorCode::PlatformError
        );
    }

    #[test]
    fn ticks_refresh_and_rearm_until_completed() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        started(&p, &cfg, &mut state, poll_params(), Some(60_000));
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 6_000);
        ctx.status = ProcessStatus::Pending;
        p.tick(&mut ctx, REFRESH_TIMER).unwrap();
        assert!(ctx.refresh_requested);
        assert_eq!(ctx.timers, vec![(REFRESH_TIMER.to_string(), 11_000)]);
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 61_000);
        ctx.status = ProcessStatus::Pending;
        p.tick(&mut ctx, DEADLINE_TIMER).unwrap();
        assert!(ctx.refresh_requested);
        // Retried until a refresh completes it, no later than the regular refresh.
        assert_eq!(ctx.timers, vec![(DEADLINE_TIMER.to_string(), 66_000)]);
    }

    #[test]
    fn a_poll_edited_out_of_its_post_or_a_deleted_post_still_lets_the_driver_close() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        let (_, outcome, _) = started(&p, &cfg, &mut state, poll_params(), None);

        // The refresh finds the post without the poll.
        let http = FakeHttp::answering(vec![json_response(200, json!({"id": 70, "polls": []}))]);
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::Refresh {
                process: POLL_PROCESS,
                state: &state,
            },
        )
        .unwrap();
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 3_000);
        ctx.status = ProcessStatus::Pending;
        ctx.outcome = outcome.clone();
        p.observe(&mut ctx, &obs).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["close_reason"], "poll_removed");
        assert_eq!(ctx.outcome["tally"], outcome["tally"]);

        // The driver closes after the post was deleted: the toggle is refused, the read finds
        // nothing, and the process completes with what it last saw.
        let http = FakeHttp::answering(vec![
            json_response(422, json!({"errors": ["This post was deleted."]})),
            json_response(
                404,
                json!({"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"}),
            ),
        ]);
        let obs = run(
            &p,
            &cfg,
            &http,
            RemoteOp::CloseProcess {
                process: POLL_PROCESS,
                state: &state,
            },
        )
        .unwrap();
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 3_000);
        ctx.status = ProcessStatus::Pending;
        ctx.remote = Some(&obs);
        p.close_process(&mut ctx).unwrap();
        assert_eq!(ctx.status, ProcessStatus::Completed);
        assert_eq!(ctx.outcome["close_reason"], "post_deleted");
        assert_eq!(
            ctx.outcome["tally"],
            json!({"Red": 0, "Green & Blue": 0, "Neither": 0})
        );

        // A forum that is down is not mistaken for a deleted post.
        let http = FakeHttp::answering(vec![Err(HttpError::Exhausted {
            status: 503,
            retry_after_ms: None,
        })]);
        let e = run(
            &p,
            &cfg,
            &http,
            RemoteOp::CloseProcess {
                process: POLL_PROCESS,
                state: &state,
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformUnavailable);
    }

    fn webhook(
        event_type: &str,
        event: &str,
        body: &Value,
        secret: Option<&str>,
    ) -> WebhookRequest {
        let body = body.to_string().into_bytes();
        let mut headers = vec![
            ("X-Discourse-Instance".to_string(), BASE.to_string()),
            ("X-Discourse-Event-Type".to_string(), event_type.to_string()),
            ("X-Discourse-Event".to_string(), event.to_string()),
        ];
        if let Some(secret) = secret {
            headers.push((
                SIGNATURE_HEADER.to_string(),
                format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body)),
            ));
        }
        WebhookRequest {
            headers,
            query: None,
            body,
        }
    }

    fn post_payload() -> Value {
        json!({"post": {
            "id": 81, "topic_id": 9, "post_number": 2, "username": "ann", "raw": "Count me in",
            "cooked": "<p>Count me in</p>", "topic_slug": "budget-vote", "topic_title": "Budget vote",
            "category_id": 4, "reply_to_post_number": null, "created_at": "2024-05-01T10:00:00.000Z",
            "avatar_template": "/x.png", "reads": 1
        }})
    }

    #[test]
    fn signed_webhooks_become_events_with_the_author_as_initiator() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        p.webhook(
            &mut ctx,
            &webhook("post", "post_created", &post_payload(), Some("s3cret")),
        )
        .unwrap();
        let topic = json!({"topic": {"id": 9, "title": "Budget vote", "slug": "budget-vote", "category_id": 4, "posts_count": 1, "archetype": "regular", "created_by": {"id": 2, "username": "bo"}, "last_poster": {"id": 2, "username": "bo"}}});
        p.webhook(
            &mut ctx,
            &webhook("topic", "topic_created", &topic, Some("s3cret")),
        )
        .unwrap();
        // Pings and events Agora does not forward are accepted quietly.
        p.webhook(
            &mut ctx,
            &webhook("ping", "ping", &json!({"ping": "OK"}), Some("s3cret")),
        )
        .unwrap();
        p.webhook(
            &mut ctx,
            &webhook(
                "user",
                "user_created",
                &json!({"user": {"id": 3}}),
                Some("s3cret"),
            ),
        )
        .unwrap();

        assert_eq!(ctx.events.len(), 2);
        let post = &ctx.events[0];
        assert_eq!(post.event_type, "post_created");
        assert_eq!(
            post.initiator,
            json!({"user_id": "ann", "provider": "discourse"})
        );
        assert_eq!(post.data["raw"], "Count me in");
        assert_eq!(post.data["url"], format!("{BASE}/t/budget-vote/9/2"));
        assert!(post.data.get("cooked").is_none() && post.data.get("reads").is_none());
        let topic = &ctx.events[1];
        assert_eq!(topic.event_type, "topic_created");
        assert_eq!(
            topic.initiator,
            json!({"user_id": "bo", "provider": "discourse"})
        );
        assert_eq!(topic.data["username"], "bo");
        assert_eq!(topic.data["url"], format!("{BASE}/t/budget-vote/9"));
    }

    #[test]
    fn unsigned_or_badly_signed_webhooks_are_refused_with_nothing_emitted() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        for secret in [None, Some("wrong")] {
            let e = p
                .webhook(
                    &mut ctx,
                    &webhook("post", "post_created", &post_payload(), secret),
                )
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidSignature);
        }
        let mut tampered = webhook("post", "post_created", &post_payload(), Some("s3cret"));
        tampered.body.push(b' ');
        assert_eq!(
            p.webhook(&mut ctx, &tampered).unwrap_err().code,
            ErrorCode::InvalidSignature
        );
        assert!(ctx.events.is_empty());

        let no_secret = json!({"api_url": BASE, "api_key": "k"});
        let mut ctx = ActionContext::new("c", &no_secret, &mut state, 0);
        let e = p
            .webhook(
                &mut ctx,
                &webhook("post", "post_created", &post_payload(), Some("s3cret")),
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformNotConfigured);
    }

    #[test]
    fn webhooks_about_the_polls_topic_refresh_it() {
        let p = Discourse::new();
        let cfg = config();
        let mut state = Value::Null;
        started(&p, &cfg, &mut state, poll_params(), None);
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 2_000);
        ctx.status = ProcessStatus::Pending;
        p.process_webhook(
            &mut ctx,
            &webhook("post", "post_edited", &post_payload(), Some("s3cret")),
        )
        .unwrap();
        assert!(ctx.refresh_requested);

        let mut other = post_payload();
        other["post"]["topic_id"] = json!(10);
        for req in [
            webhook("post", "post_created", &other, Some("s3cret")),
            webhook("post", "post_created", &post_payload(), Some("wrong")),
        ] {
            let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 2_000);
            ctx.status = ProcessStatus::Pending;
            p.process_webhook(&mut ctx, &req).unwrap();
            assert!(!ctx.refresh_requested);
        }
        let topic = json!({"topic": {"id": 9, "title": "x"}});
        let mut ctx = ProcessContext::new("c", POLL_PROCESS, &cfg, &mut state, 2_000);
        p.process_webhook(
            &mut ctx,
            &webhook("topic", "topic_edited", &topic, Some("s3cret")),
        )
        .unwrap();
        assert!(ctx.refresh_requested);
    }

    #[test]
    fn platform_wide_webhooks_route_by_the_forum_url() {
        let p = Discourse::new();
        assert_eq!(
            p.platform_id(&json!({"api_url": "HTTPS://Forum.Example.org/"}))
                .as_deref(),
            Some("forum.example.org")
        );
        assert_eq!(
            p.platform_id(&json!({"api_url": "http://127.0.0.1:4000/community/"}))
                .as_deref(),
            Some("127.0.0.1:4000/community")
        );
        assert_eq!(p.platform_id(&json!({})), None);
        let req = webhook("post", "post_created", &post_payload(), None);
        assert_eq!(p.webhook_route(&req).as_deref(), Some("forum.example.org"));
        let none = WebhookRequest {
            headers: vec![],
            query: None,
            body: vec![],
        };
        assert_eq!(p.webhook_route(&none), None);
    }

    #[test]
    fn rfc3339_times_parse_and_format() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:00:00.5Z"),
            Some(1_709_208_000_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T13:30:00.5+01:30"),
            Some(1_709_208_000_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T10:00:00.500-02:00"),
            Some(1_709_208_000_500)
        );
        for bad in [
            "2024-02-29",
            "2024-13-01T00:00:00Z",
            "2024-02-29T12:00:00",
            "1969-12-31T23:59:59Z",
            "x",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(
            format_rfc3339_ms(1_709_208_000_500),
            "2024-02-29T12:00:00.500Z"
        );
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        for ms in [1u64, 951_782_400_000, 4_102_444_799_999, 1_700_000_090_000] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
        }
    }

    #[test]
    fn the_base_url_takes_no_query_or_fragment() {
        let p = Discourse::new();
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
