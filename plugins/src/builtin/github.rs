//! `github`: connects a community to one GitHub repository.
//!
//! Actions `create-issue` and `comment` call GitHub's REST API; webhooks about the repository's
//! issues, pull requests and issue comments become driver events named `<event>.<action>`
//! (`issues.opened`, `pull_request.closed`, `issue_comment.created`), with the GitHub user who
//! acted as the initiator. The health probe reads the repository.
//!
//! Written against GitHub's documented REST API (docs.github.com/rest): "Create an issue"
//! (`POST /repos/{owner}/{repo}/issues`, 201 with the issue), "Create an issue comment"
//! (`POST /repos/{owner}/{repo}/issues/{issue_number}/comments`, 201 with the comment) and "Get a
//! repository" (`GET /repos/{owner}/{repo}`), sent with `Authorization: Bearer`, `Accept:
//! application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28` and a `User-Agent` (GitHub
//! refuses requests without one); refusals carry `{"message", "errors"?, "documentation_url"}`,
//! and secondary rate limits answer 403/429 with `Retry-After` or `x-ratelimit-remaining: 0`.
//! Webhooks follow "Webhook events and payloads" and "Validating webhook deliveries":
//! `X-GitHub-Event`, `X-GitHub-Delivery`, and `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
//! the raw body>`; a hook may also be configured to send `application/x-www-form-urlencoded`,
//! where the JSON sits in the `payload` field.

use serde_json::{json, Value};

use crate::remote::{bad_signature, setting, verify_hmac_sha256};
use crate::{
    ActionContext, ActionSpec, BoxFuture, ErrorCode, Event, EventSpec, Http, HttpRequest,
    HttpResponse, NavItem, Plugin, PluginError, PluginMeta, ProcessContext, Remote, RemoteOp,
    WebhookRequest, WidgetKind, WidgetSpec,
};

/// The public API; GitHub Enterprise Server serves the same API at `https://HOST/api/v3`.
const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version this plugin was written against.
const API_VERSION: &str = "2022-11-28";
const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
const EVENT_HEADER: &str = "X-GitHub-Event";
const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// Every event this plugin emits: every action GitHub documents for the three webhooks it
/// follows ("Webhook events and payloads"), and every action `@octokit/webhooks-examples` lists
/// for them (`pull_request.merged` is only there). Other webhooks (`ping` among them) are
/// accepted without an event, so drivers only ever see declared events.
const ISSUE_EVENTS: &[&str] = &[
    "issues.opened",
    "issues.edited",
    "issues.closed",
    "issues.reopened",
    "issues.deleted",
    "issues.transferred",
    "issues.labeled",
    "issues.unlabeled",
    "issues.assigned",
    "issues.unassigned",
    "issues.locked",
    "issues.unlocked",
    "issues.pinned",
    "issues.unpinned",
    "issues.milestoned",
    "issues.demilestoned",
    "issues.typed",
    "issues.untyped",
];
const PULL_REQUEST_EVENTS: &[&str] = &[
    "pull_request.opened",
    "pull_request.edited",
    "pull_request.closed",
    "pull_request.reopened",
    "pull_request.synchronize",
    "pull_request.ready_for_review",
    "pull_request.converted_to_draft",
    "pull_request.labeled",
    "pull_request.unlabeled",
    "pull_request.assigned",
    "pull_request.unassigned",
    "pull_request.review_requested",
    "pull_request.review_request_removed",
    "pull_request.locked",
    "pull_request.unlocked",
    "pull_request.auto_merge_enabled",
    "pull_request.auto_merge_disabled",
    "pull_request.milestoned",
    "pull_request.demilestoned",
    "pull_request.enqueued",
    "pull_request.dequeued",
    "pull_request.merged",
];
const COMMENT_EVENTS: &[&str] = &[
    "issue_comment.created",
    "issue_comment.edited",
    "issue_comment.deleted",
];

pub struct Github {
    meta: PluginMeta,
}

impl Default for Github {
    fn default() -> Self {
        Self::new()
    }
}

impl Github {
    pub fn new() -> Self {
        // What GitHub's webhook schema guarantees (@octokit/webhooks): an issue always has its
        // number, title and html_url, but `state` is optional in most issue actions (the real
        // `issues.pinned` and `issues.unpinned` payloads have none), so it is emitted only when
        // GitHub sent it. `repository_id` is GitHub's id for the repository, which survives
        // renames and transfers; `repository` its `owner/repo` at delivery time.
        let repository = json!({"type": "string", "description": "owner/repo"});
        let repository_id = json!({"type": "integer", "description": "the repository's id"});
        let delivery = json!({"type": ["string", "null"], "description": "X-GitHub-Delivery"});
        let issue_schema = json!({
            "type": "object",
            "description": "An issue of the repository changed; `action` is the event type's suffix.",
            "properties": {
                "repository": repository,
                "repository_id": repository_id,
                "number": {"type": "integer"},
                "title": {"type": "string"},
                "url": {"type": "string", "description": "the issue's html_url"},
                "state": {"type": "string", "enum": ["open", "closed"], "description": "when GitHub sent it"},
                "labels": {"type": "array", "items": {"type": "string"}},
                "delivery_id": delivery
            },
            "required": ["repository", "repository_id", "number", "title", "url", "labels"],
            "additionalProperties": false
        });
        let pull_request_schema = json!({
            "type": "object",
            "description": "A pull request of the repository changed; `merged` tells a merge from a plain close.",
            "properties": {
                "repository": repository,
                "repository_id": repository_id,
                "number": {"type": "integer"},
                "title": {"type": "string"},
                "url": {"type": "string", "description": "the pull request's html_url"},
                "state": {"type": "string", "enum": ["open", "closed"]},
                "merged": {"type": "boolean"},
                "draft": {"type": "boolean"},
                "labels": {"type": "array", "items": {"type": "string"}},
                "delivery_id": delivery
            },
            "required": ["repository", "repository_id", "number", "title", "url", "state", "merged", "draft", "labels"],
            "additionalProperties": false
        });
        let comment_schema = json!({
            "type": "object",
            "description": "A comment on an issue or pull request of the repository changed.",
            "properties": {
                "repository": repository,
                "repository_id": repository_id,
                "comment_id": {"type": "integer"},
                "body": {"type": "string"},
                "url": {"type": "string", "description": "the comment's html_url"},
                "issue_number": {"type": "integer"},
                "issue_title": {"type": "string"},
                "is_pull_request": {"type": "boolean"},
                "delivery_id": delivery
            },
            "required": ["repository", "repository_id", "comment_id", "body", "url", "issue_number", "issue_title", "is_pull_request"],
            "additionalProperties": false
        });
        let events = ISSUE_EVENTS
            .iter()
            .map(|t| (t, &issue_schema))
            .chain(
                PULL_REQUEST_EVENTS
                    .iter()
                    .map(|t| (t, &pull_request_schema)),
            )
            .chain(COMMENT_EVENTS.iter().map(|t| (t, &comment_schema)))
            .map(|(event_type, schema)| EventSpec {
                event_type,
                schema: schema.clone(),
            })
            .collect();
        Self {
            meta: PluginMeta {
                name: "github",
                verbose_name: "GitHub",
                version: "1.0.0",
                author: "The Agora developers",
                agora_min: "0.1.0",
                agora_max: None,
                depends_on: &[],
                load_by_default: true,
                description: "One GitHub repository: open issues and comment on them, and \
                              receive the repository's issue, pull request and comment webhooks \
                              as events.",
                auth_type: "api_key",
                uses_webhook: true,
                config_schema: json!({
                    "type": "object",
                    "properties": {
                        "api_url": {
                            "type": "string",
                            "format": "uri",
                            "default": DEFAULT_API_URL,
                            "description": "GitHub's REST API root (https://HOST/api/v3 for GitHub Enterprise Server)."
                        },
                        "owner": {"type": "string", "minLength": 1, "description": "The user or organization owning the repository."},
                        "repo": {"type": "string", "minLength": 1, "description": "The repository's name."},
                        "repository_id": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "GitHub's id of the repository (`id` in GET /repos/{owner}/{repo}): platform-wide webhooks (/api/hooks/github) route by it, so a rename or transfer does not silence the community."
                        },
                        "token": {
                            "type": "string",
                            "x-secret": true,
                            "description": "A token allowed to write the repository's issues (a fine-grained personal access token or a GitHub App installation token)."
                        },
                        "webhook_secret": {
                            "type": "string",
                            "x-secret": true,
                            "description": "The secret of the repository's webhook; without it every webhook is refused."
                        }
                    },
                    "additionalProperties": false
                }),
                actions: vec![
                    ActionSpec {
                        name: "create-issue",
                        description: "Opens an issue in the repository.",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {
                                "title": {"type": "string", "minLength": 1},
                                "body": {"type": "string"},
                                "labels": {"type": "array", "items": {"type": "string", "minLength": 1}},
                                "assignees": {"type": "array", "items": {"type": "string", "minLength": 1}}
                            },
                            "required": ["title"],
                            "additionalProperties": false
                        }),
                        response_schema: json!({
                            "type": "object",
                            "properties": {
                                "id": {"type": "integer"},
                                "number": {"type": "integer"},
                                "url": {"type": "string", "description": "the issue's html_url"},
                                "state": {"type": "string"}
                            },
                            "required": ["id", "number", "url", "state"]
                        }),
                        public: false,
                    },
                    ActionSpec {
                        name: "comment",
                        description: "Comments on an issue or pull request of the repository.",
                        parameters_schema: json!({
                            "type": "object",
                            "properties": {
                                "issue_number": {"type": "integer", "minimum": 1},
                                "body": {"type": "string", "minLength": 1}
                            },
                            "required": ["issue_number", "body"],
                            "additionalProperties": false
                        }),
                        response_schema: json!({
                            "type": "object",
                            "properties": {
                                "id": {"type": "integer"},
                                "url": {"type": "string", "description": "the comment's html_url"}
                            },
                            "required": ["id", "url"]
                        }),
                        public: false,
                    },
                ],
                processes: vec![],
                events,
                navigation: vec![NavItem {
                    label: "GitHub",
                    icon: "code",
                    order: 50,
                }],
                widgets: vec![WidgetSpec {
                    name: "recent-events",
                    title: "Recent GitHub events",
                    order: 50,
                    kind: WidgetKind::Table,
                    action: "recent-events",
                }],
            },
        }
    }
}

/// How many events the instance keeps for its dashboard widget.
const RECENT_EVENTS: usize = 10;

/// Keeps a short line about the event in the instance's state (`recent_events`, newest
/// last), for the "recent events" widget: the webhook's commit stores it.
fn remember(ctx: &mut ActionContext<'_>, event_type: &str, data: &Value, initiator: &Value) {
    let line = json!({
        "at": ctx.now_ms,
        "event": event_type,
        "number": data.get("number").cloned().unwrap_or(Value::Null),
        "title": data.get("title").cloned().unwrap_or(Value::Null),
        "by": initiator.get("user_id").cloned().unwrap_or(Value::Null),
    });
    if !ctx.state.is_object() {
        *ctx.state = json!({});
    }
    let recent = &mut ctx.state["recent_events"];
    if !recent.is_array() {
        *recent = json!([]);
    }
    if let Some(list) = recent.as_array_mut() {
        list.push(line);
        let over = list.len().saturating_sub(RECENT_EVENTS);
        list.drain(..over);
    }
}

/// The "recent events" widget's table, newest first.
fn recent_events(state: &Value) -> Value {
    let rows: Vec<Value> = state
        .get("recent_events")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .rev()
                .map(|e| {
                    let at = e.get("at").and_then(Value::as_u64).unwrap_or(0);
                    json!([rfc3339(at), e["event"], e["number"], e["title"], e["by"]])
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"columns": ["When", "Event", "Number", "Title", "By"], "rows": rows})
}

fn rfc3339(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Where and as whom an instance reaches GitHub.
struct Api<'a> {
    base: &'a str,
    owner: &'a str,
    repo: &'a str,
    token: &'a str,
}

impl<'a> Api<'a> {
    fn from_config(config: &'a Value) -> Result<Self, PluginError> {
        let base = config
            .get("api_url")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/');
        Ok(Api {
            base,
            owner: setting(config, "owner")?,
            repo: setting(config, "repo")?,
            token: setting(config, "token")?,
        })
    }

    fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// `{api_url}/repos/{owner}/{repo}{tail}`, the names encoded so a setting cannot reach
    /// another path.
    fn repo_url(&self, tail: &str) -> String {
        format!(
            "{}/repos/{}/{}{tail}",
            self.base,
            path_segment(self.owner),
            path_segment(self.repo)
        )
    }

    fn authorize(&self, req: HttpRequest) -> HttpRequest {
        req.header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header("User-Agent", "agora")
    }

    fn get(&self, tail: &str) -> HttpRequest {
        self.authorize(HttpRequest::get(self.repo_url(tail)))
    }

    fn post(&self, tail: &str, body: &Value) -> HttpRequest {
        self.authorize(HttpRequest::json("POST", self.repo_url(tail), body))
    }
}

use crate::wire::{check_base_url, encode_component as path_segment};

/// The network half of one action: the request it makes, and GitHub's created resource.
fn action_request(api: &Api<'_>, action: &str, params: &Value) -> Result<HttpRequest, PluginError> {
    match action {
        "create-issue" => {
            let title = params
                .get("title")
                .and_then(Value::as_str)
                .ok_or_else(|| PluginError::invalid("title", "a title is required"))?;
            let mut body = json!({ "title": title });
            for key in ["body", "labels", "assignees"] {
                if let Some(v) = params.get(key).filter(|v| !v.is_null()) {
                    body[key] = v.clone();
                }
            }
            Ok(api.post("/issues", &body))
        }
        "comment" => {
            let number = params
                .get("issue_number")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    PluginError::invalid("issue_number", "issue_number must be a positive integer")
                })?;
            let text = params
                .get("body")
                .and_then(Value::as_str)
                .ok_or_else(|| PluginError::invalid("body", "a comment body is required"))?;
            Ok(api.post(
                &format!("/issues/{number}/comments"),
                &json!({ "body": text }),
            ))
        }
        other => Err(unknown_action(other)),
    }
}

fn describe_action(api: &Api<'_>, action: &str, params: &Value) -> String {
    match action {
        "comment" => format!(
            "GitHub refused the comment on {}#{}",
            api.full_name(),
            params.get("issue_number").unwrap_or(&Value::Null)
        ),
        _ => format!("GitHub refused to create the issue in {}", api.full_name()),
    }
}

async fn perform(
    config: &Value,
    http: &dyn Http,
    action: &str,
    params: &Value,
) -> Result<Value, PluginError> {
    let api = Api::from_config(config)?;
    let req = action_request(&api, action, params)?;
    let resp = http.send(req).await?;
    if resp.is_success() {
        return resp.json();
    }
    Err(refusal(&resp, &describe_action(&api, action, params)))
}

async fn probe(config: &Value, http: &dyn Http) -> Result<Value, PluginError> {
    let api = Api::from_config(config)?;
    let resp = http.send(api.get("")).await?;
    if !resp.is_success() {
        return Err(refusal(
            &resp,
            &format!("GitHub refused to read {}", api.full_name()),
        ));
    }
    let repo = resp.json()?;
    Ok(json!({
        "full_name": repo.get("full_name").cloned().unwrap_or(Value::Null),
        "has_issues": repo.get("has_issues").cloned().unwrap_or(Value::Null),
    }))
}

/// A GitHub answer that is not the resource asked for. Rate limits and server trouble that
/// outlived the client's retries are the platform being unavailable (503); anything else is
/// GitHub refusing this request (502), quoted with GitHub's own `message` and `errors`.
fn refusal(resp: &HttpResponse, what: &str) -> PluginError {
    let explanation = github_message(&resp.body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&resp.body);
        let excerpt: String = text.chars().take(200).collect();
        if excerpt.trim().is_empty() {
            "no explanation".into()
        } else {
            excerpt
        }
    });
    let rate_limited = matches!(resp.status, 403 | 429)
        && (resp.header("retry-after").is_some()
            || resp.header("x-ratelimit-remaining") == Some("0"));
    if rate_limited || resp.status == 429 || resp.status >= 500 {
        let why = if rate_limited || resp.status == 429 {
            "GitHub is rate limiting this token"
        } else {
            "GitHub is failing"
        };
        return PluginError {
            code: ErrorCode::PlatformUnavailable,
            message: format!("{what}: {why} ({} {explanation})", resp.status),
            field: None,
        };
    }
    PluginError::platform(format!("{what}: {} {explanation}", resp.status))
}

/// GitHub's `message`, followed by what its `errors` list says (`title: missing_field`).
fn github_message(body: &[u8]) -> Option<String> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let message = body.get("message")?.as_str()?.to_string();
    let details: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| match e {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(_) => {
                        let text = |k: &str| e.get(k).and_then(Value::as_str);
                        match (text("message"), text("field"), text("code")) {
                            (Some(m), _, _) => Some(m.to_string()),
                            (None, Some(f), Some(c)) => Some(format!("{f}: {c}")),
                            (None, None, Some(c)) => Some(c.to_string()),
                            _ => None,
                        }
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(if details.is_empty() {
        message
    } else {
        format!("{message} ({})", details.join("; "))
    })
}

fn unknown_action(action: &str) -> PluginError {
    PluginError {
        code: ErrorCode::UnknownAction,
        message: format!("github has no action {action}"),
        field: None,
    }
}

fn field<'v>(v: &'v Value, key: &str, what: &str) -> Result<&'v Value, PluginError> {
    v.get(key)
        .filter(|x| !x.is_null())
        .ok_or_else(|| PluginError::platform(format!("GitHub's {what} lacks '{key}'")))
}

fn u64_field(v: &Value, key: &str, what: &str) -> Result<u64, PluginError> {
    field(v, key, what)?
        .as_u64()
        .ok_or_else(|| PluginError::platform(format!("GitHub's {what} has a non-integer '{key}'")))
}

fn str_field<'v>(v: &'v Value, key: &str, what: &str) -> Result<&'v str, PluginError> {
    field(v, key, what)?
        .as_str()
        .ok_or_else(|| PluginError::platform(format!("GitHub's {what} has a non-string '{key}'")))
}

/// The webhook's JSON, whichever content type the hook was configured with.
fn payload(req: &WebhookRequest) -> Option<Value> {
    let form = req
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form {
        // The form body has the query string's syntax, so its decoder serves here too.
        let text = std::str::from_utf8(&req.body).ok()?;
        let as_query = WebhookRequest {
            headers: Vec::new(),
            query: Some(text.to_string()),
            body: Vec::new(),
        };
        return serde_json::from_str(&as_query.query_param("payload")?).ok();
    }
    req.json()
}

fn repository_name(payload: &Value) -> Option<&str> {
    payload
        .get("repository")
        .and_then(|r| r.get("full_name"))
        .and_then(Value::as_str)
}

fn repository_id(payload: &Value) -> Option<u64> {
    payload
        .get("repository")
        .and_then(|r| r.get("id"))
        .and_then(Value::as_u64)
}

fn label_names(item: &Value) -> Value {
    let names: Vec<Value> = item
        .get("labels")
        .and_then(Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|l| l.get("name").and_then(Value::as_str))
                .map(|n| Value::String(n.to_string()))
                .collect()
        })
        .unwrap_or_default();
    Value::Array(names)
}

/// The part of `payload[key]` a driver needs, or a `schema_violation` when GitHub's object is
/// not there (a signed body that is not the event it claims to be).
fn object<'v>(payload: &'v Value, key: &str, event: &str) -> Result<&'v Value, PluginError> {
    payload
        .get(key)
        .filter(|v| v.is_object())
        .ok_or_else(|| PluginError::invalid("body", format!("a {event} webhook without '{key}'")))
}

/// `item[key]`, which GitHub's webhook schema requires: its absence means a signed body that
/// is not the event it claims to be.
fn required<'v>(item: &'v Value, key: &str, what: &str) -> Result<&'v Value, PluginError> {
    item.get(key)
        .filter(|v| !v.is_null())
        .ok_or_else(|| PluginError::invalid("body", format!("a {what} without '{key}'")))
}

fn event_data(
    event: &str,
    payload: &Value,
    repository: (&str, u64),
    delivery: Option<&str>,
) -> Result<Value, PluginError> {
    let delivery = delivery.map_or(Value::Null, |d| Value::String(d.to_string()));
    let (name, id) = repository;
    match event {
        "issues" => {
            let issue = object(payload, "issue", event)?;
            let mut data = json!({
                "repository": name,
                "repository_id": id,
                "number": required(issue, "number", "issue")?,
                "title": required(issue, "title", "issue")?,
                "url": required(issue, "html_url", "issue")?,
                "labels": label_names(issue),
                "delivery_id": delivery,
            });
            if let Some(state) = issue.get("state").filter(|s| !s.is_null()) {
                data["state"] = state.clone();
            }
            Ok(data)
        }
        "pull_request" => {
            let pr = object(payload, "pull_request", event)?;
            Ok(json!({
                "repository": name,
                "repository_id": id,
                "number": required(pr, "number", "pull request")?,
                "title": required(pr, "title", "pull request")?,
                "url": required(pr, "html_url", "pull request")?,
                "state": required(pr, "state", "pull request")?,
                "merged": pr.get("merged").and_then(Value::as_bool).unwrap_or(false),
                "draft": pr.get("draft").and_then(Value::as_bool).unwrap_or(false),
                "labels": label_names(pr),
                "delivery_id": delivery,
            }))
        }
        _ => {
            let comment = object(payload, "comment", event)?;
            let issue = object(payload, "issue", event)?;
            Ok(json!({
                "repository": name,
                "repository_id": id,
                "comment_id": required(comment, "id", "comment")?,
                "body": comment.get("body").and_then(Value::as_str).unwrap_or_default(),
                "url": required(comment, "html_url", "comment")?,
                "issue_number": required(issue, "number", "issue")?,
                "issue_title": required(issue, "title", "issue")?,
                // GitHub delivers pull request conversation comments as issue comments.
                "is_pull_request": issue.get("pull_request").is_some_and(|p| !p.is_null()),
                "delivery_id": delivery,
            }))
        }
    }
}

/// GitHub's rules for names (as its forms enforce them): an owner is 1-39 ASCII letters,
/// digits and single inner hyphens; a repository 1-100 ASCII letters, digits, `.`, `-`, `_`,
/// and not `.` or `..`.
fn valid_owner(owner: &str) -> bool {
    (1..=39).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && !owner.contains("--")
}

fn valid_repo(repo: &str) -> bool {
    (1..=100).contains(&repo.len())
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && repo != "."
        && repo != ".."
}

impl Plugin for Github {
    /// Closing an issue-based process is Agora's business only (see `remote`).
    fn remote_on_close(&self) -> bool {
        false
    }

    fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    /// Values GitHub could never accept, refused when stored rather than on first use. Every
    /// layer is checked as a whole (defaults < global < community), so nothing here requires
    /// two settings together: a node may set `owner` globally and each community its `repo`.
    fn check_settings(&self, settings: &Value) -> Result<(), PluginError> {
        check_base_url(settings, "api_url")?;
        let owner = settings.get("owner").and_then(Value::as_str);
        let repo = settings.get("repo").and_then(Value::as_str);
        if let Some(owner) = owner.filter(|o| !valid_owner(o)) {
            return Err(PluginError::invalid_settings(
                "owner",
                format!("'{owner}' is not a GitHub user or organization name (1-39 letters, digits and inner hyphens)"),
            ));
        }
        if let Some(repo) = repo.filter(|r| !valid_repo(r)) {
            return Err(PluginError::invalid_settings(
                "repo",
                format!("'{repo}' is not a GitHub repository name (1-100 letters, digits, '.', '-', '_')"),
            ));
        }
        Ok(())
    }

    fn remote<'a>(&'a self, call: Remote<'a>) -> Option<BoxFuture<'a, Result<Value, PluginError>>> {
        let Remote { config, http, .. } = call;
        match call.op {
            RemoteOp::Action { action, params } => {
                Some(Box::pin(perform(config, http, action, params)))
            }
            RemoteOp::Probe => Some(Box::pin(probe(config, http))),
            RemoteOp::StartProcess { .. }
            | RemoteOp::Refresh { .. }
            | RemoteOp::CloseProcess { .. } => None,
        }
    }

    fn action(
        &self,
        ctx: &mut ActionContext<'_>,
        action: &str,
        _params: &Value,
    ) -> Result<Value, PluginError> {
        match action {
            "create-issue" => {
                let issue = ctx.observation()?;
                Ok(json!({
                    "id": u64_field(issue, "id", "issue")?,
                    "number": u64_field(issue, "number", "issue")?,
                    "url": str_field(issue, "html_url", "issue")?,
                    "state": str_field(issue, "state", "issue")?,
                }))
            }
            "comment" => {
                let comment = ctx.observation()?;
                Ok(json!({
                    "id": u64_field(comment, "id", "comment")?,
                    "url": str_field(comment, "html_url", "comment")?,
                }))
            }
            other => Err(unknown_action(other)),
        }
    }

    fn webhook(
        &self,
        ctx: &mut ActionContext<'_>,
        req: &WebhookRequest,
    ) -> Result<(), PluginError> {
        verify_signature(ctx.config, req)?;

        let event = req.header(EVENT_HEADER).unwrap_or_default();
        let declared: &[&str] = match event {
            "issues" => ISSUE_EVENTS,
            "pull_request" => PULL_REQUEST_EVENTS,
            "issue_comment" => COMMENT_EVENTS,
            // `ping` (sent when the hook is created) and events this plugin does not follow.
            _ => return Ok(()),
        };
        let payload = payload(req).ok_or_else(|| {
            PluginError::invalid("body", "the webhook body is not a GitHub JSON payload")
        })?;
        let (Some(name), Some(id)) = (repository_name(&payload), repository_id(&payload)) else {
            return Err(PluginError::invalid(
                "body",
                format!("a {event} webhook without its repository's full_name and id"),
            ));
        };
        // Organization and App hooks deliver for many repositories with one secret; this
        // instance speaks for one: by id when the settings give it (renames and transfers keep
        // it), else by name.
        let ours = match ctx.config.get("repository_id").and_then(Value::as_u64) {
            Some(own) => own == id,
            None => match (setting(ctx.config, "owner"), setting(ctx.config, "repo")) {
                (Ok(owner), Ok(repo)) => format!("{owner}/{repo}").eq_ignore_ascii_case(name),
                _ => true,
            },
        };
        if !ours {
            return Ok(());
        }
        let Some(action) = payload.get("action").and_then(Value::as_str) else {
            return Ok(());
        };
        let event_type = format!("{event}.{action}");
        if !declared.contains(&event_type.as_str()) {
            return Ok(());
        }
        let data = event_data(event, &payload, (name, id), req.header(DELIVERY_HEADER))?;
        let initiator = match payload
            .get("sender")
            .and_then(|s| s.get("login"))
            .and_then(Value::as_str)
        {
            Some(login) => json!({"user_id": login, "provider": "github"}),
            None => json!({}),
        };
        remember(ctx, &event_type, &data, &initiator);
        ctx.events.push(Event {
            event_type,
            data,
            initiator,
        });
        Ok(())
    }

    fn read(&self, state: &Value, _config: &Value, action: &str) -> Result<Value, PluginError> {
        match action {
            "recent-events" => Ok(recent_events(state)),
            other => Err(PluginError {
                code: ErrorCode::UnknownWidget,
                message: format!("plugin 'github' has no read action '{other}'"),
                field: None,
            }),
        }
    }

    /// The `repository_id` setting: the one name of a repository that survives renames and
    /// transfers. An instance without it is reached only through its own webhook URL
    /// (`/api/hooks/<community>/github`).
    fn platform_id(&self, settings: &Value) -> Option<String> {
        settings
            .get("repository_id")
            .and_then(Value::as_u64)
            .map(|id| id.to_string())
    }

    fn webhook_route(&self, req: &WebhookRequest) -> Option<String> {
        repository_id(&payload(req)?).map(|id| id.to_string())
    }

    /// `X-GitHub-Delivery`: a GUID per delivery, kept when a delivery is redelivered.
    fn delivery_id(&self, req: &WebhookRequest) -> Option<String> {
        req.header(DELIVERY_HEADER).map(str::to_owned)
    }

    /// An organization or App hook signs with the App's secret: the node-wide `webhook_secret`.
    fn verify_platform_webhook(
        &self,
        node_settings: &Value,
        req: &WebhookRequest,
    ) -> Option<Result<(), PluginError>> {
        Some(verify_signature(node_settings, req))
    }

    fn start_process(
        &self,
        _ctx: &mut ProcessContext<'_>,
        _params: &Value,
    ) -> Result<(), PluginError> {
        Err(PluginError::invalid("process", "github runs no processes"))
    }

    fn tick(&self, _ctx: &mut ProcessContext<'_>, _timer: &str) -> Result<(), PluginError> {
        Ok(())
    }

    fn close_process(&self, _ctx: &mut ProcessContext<'_>) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Checks `X-Hub-Signature-256` against `settings.webhook_secret`. Without a secret nothing
/// can be verified, and an unverified hook could forge any event; so no secret refuses all.
fn verify_signature(settings: &Value, req: &WebhookRequest) -> Result<(), PluginError> {
    let secret = settings
        .get("webhook_secret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_signature(SIGNATURE_HEADER))?;
    if verify_hmac_sha256(
        secret.as_bytes(),
        &req.body,
        req.header(SIGNATURE_HEADER),
        "sha256=",
    ) {
        Ok(())
    } else {
        Err(bad_signature(SIGNATURE_HEADER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::hmac_sha256_hex;
    use crate::remote::testing::{block_on, json_response, FakeHttp};
    use crate::HttpError;

    const TOKEN: &str = "ghp_test";
    const SECRET: &str = "It's a Secret to Everybody";

    fn config() -> Value {
        json!({
            "api_url": "http://gh.test/api/v3/",
            "owner": "Octo-Org",
            "repo": "Hello-World",
            "token": TOKEN,
            "webhook_secret": SECRET,
        })
    }

    fn issue_json(number: u64) -> Value {
        json!({
            "id": 1_000 + number,
            "node_id": "I_kwDO",
            "number": number,
            "title": "Adopt the charter",
            "state": "open",
            "url": format!("http://gh.test/api/v3/repos/Octo-Org/Hello-World/issues/{number}"),
            "html_url": format!("https://github.com/Octo-Org/Hello-World/issues/{number}"),
            "user": {"login": "agora-bot"},
            "labels": [],
        })
    }

    fn run(http: &FakeHttp, config: &Value, op: RemoteOp<'_>) -> Result<Value, PluginError> {
        let plugin = Github::new();
        let call = Remote {
            community: "c",
            config,
            http,
            op,
        };
        block_on(plugin.remote(call).expect("github does network work here"))
    }

    fn act(action: &str, params: &Value, http: &FakeHttp) -> Result<Value, PluginError> {
        let cfg = config();
        let observation = run(http, &cfg, RemoteOp::Action { action, params })?;
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        ctx.remote = Some(&observation);
        Github::new().action(&mut ctx, action, params)
    }

    fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body_of(req: &HttpRequest) -> Value {
        serde_json::from_slice(req.body.as_deref().expect("a body")).expect("a JSON body")
    }

    #[test]
    fn metadata_declares_settings_actions_and_events() {
        let p = Github::new();
        let m = p.meta();
        assert!(m.load_by_default);
        assert_eq!(m.version, "1.0.0");
        assert_eq!(m.auth_type, "api_key");
        assert!(m.uses_webhook);
        let props = &m.config_schema["properties"];
        assert_eq!(props["token"]["x-secret"], json!(true));
        assert_eq!(props["webhook_secret"]["x-secret"], json!(true));
        assert_eq!(props["api_url"]["default"], json!(DEFAULT_API_URL));
        assert!(m.action("create-issue").is_some() && m.action("comment").is_some());
        for t in [
            "issues.opened",
            "pull_request.closed",
            "issue_comment.created",
        ] {
            assert!(m.events.iter().any(|e| e.event_type == t), "{t}");
        }
        let mut registry = crate::PluginRegistry::new();
        registry
            .register(std::sync::Arc::new(Github::new()))
            .expect("every schema uses the supported subset");
    }

    #[test]
    fn create_issue_posts_the_documented_request_and_answers_the_issue() {
        let http = FakeHttp::answering(vec![json_response(201, issue_json(7))]);
        let params =
            json!({"title": "Adopt the charter", "body": "See #3", "labels": ["governance"]});
        let result = act("create-issue", &params, &http).unwrap();
        assert_eq!(
            result,
            json!({"id": 1007, "number": 7, "url": "https://github.com/Octo-Org/Hello-World/issues/7", "state": "open"})
        );

        let sent = http.requests();
        assert_eq!(sent.len(), 1);
        let req = &sent[0];
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.url,
            "http://gh.test/api/v3/repos/Octo-Org/Hello-World/issues"
        );
        assert_eq!(header(req, "authorization"), Some("Bearer ghp_test"));
        assert_eq!(header(req, "accept"), Some("application/vnd.github+json"));
        assert_eq!(header(req, "x-github-api-version"), Some("2022-11-28"));
        assert_eq!(header(req, "user-agent"), Some("agora"));
        assert_eq!(header(req, "content-type"), Some("application/json"));
        // Only what the caller gave: no null assignees that GitHub would reject.
        assert_eq!(
            body_of(req),
            json!({"title": "Adopt the charter", "body": "See #3", "labels": ["governance"]})
        );
    }

    #[test]
    fn comment_posts_to_the_issue_and_answers_the_comment() {
        let http = FakeHttp::answering(vec![json_response(
            201,
            json!({
                "id": 555,
                "node_id": "IC_kw",
                "body": "Decided: yes",
                "html_url": "https://github.com/Octo-Org/Hello-World/issues/7#issuecomment-555",
                "user": {"login": "agora-bot"},
            }),
        )]);
        let params = json!({"issue_number": 7, "body": "Decided: yes"});
        let result = act("comment", &params, &http).unwrap();
        assert_eq!(
            result,
            json!({"id": 555, "url": "https://github.com/Octo-Org/Hello-World/issues/7#issuecomment-555"})
        );
        let req = &http.requests()[0];
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.url,
            "http://gh.test/api/v3/repos/Octo-Org/Hello-World/issues/7/comments"
        );
        assert_eq!(body_of(req), json!({"body": "Decided: yes"}));
        assert_eq!(header(req, "authorization"), Some("Bearer ghp_test"));
    }

    #[test]
    fn repository_names_cannot_escape_their_path_segment() {
        let mut cfg = config();
        cfg["owner"] = json!("../admin");
        cfg["repo"] = json!("x y?z");
        cfg["api_url"] = json!("https://api.github.com");
        let http = FakeHttp::answering(vec![json_response(200, json!({}))]);
        run(&http, &cfg, RemoteOp::Probe).unwrap();
        assert_eq!(
            http.requests()[0].url,
            "https://api.github.com/repos/..%2Fadmin/x%20y%3Fz"
        );
    }

    #[test]
    fn github_refusals_become_platform_errors_quoting_github() {
        let cases = [
            (
                401,
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
                "401 Bad credentials",
            ),
            (
                403,
                json!({"message": "Resource not accessible by personal access token"}),
                "403 Resource not accessible",
            ),
            (404, json!({"message": "Not Found"}), "404 Not Found"),
            (
                410,
                json!({"message": "Issues are disabled for this repo"}),
                "410 Issues are disabled",
            ),
            (
                422,
                json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}]}),
                "422 Validation Failed (title: missing_field)",
            ),
        ];
        for (status, body, expected) in cases {
            let http = FakeHttp::answering(vec![json_response(status, body)]);
            let err = act("create-issue", &json!({"title": "t"}), &http).unwrap_err();
            assert_eq!(err.code, ErrorCode::PlatformError, "{status}");
            assert!(err.message.contains(expected), "{status}: {}", err.message);
            assert!(
                err.message.contains("Octo-Org/Hello-World"),
                "{}",
                err.message
            );
        }

        let http = FakeHttp::answering(vec![json_response(
            422,
            json!({"message": "Validation Failed", "errors": [{"code": "custom", "message": "body is too long"}]}),
        )]);
        let err = act("comment", &json!({"issue_number": 9, "body": "x"}), &http).unwrap_err();
        assert!(
            err.message.contains("Octo-Org/Hello-World#9"),
            "{}",
            err.message
        );
        assert!(err.message.contains("body is too long"), "{}", err.message);
    }

    #[test]
    fn rate_limits_and_server_failures_are_the_platform_being_unavailable() {
        let limited = Ok(HttpResponse {
            status: 403,
            headers: vec![("x-ratelimit-remaining".into(), "0".into())],
            body: br#"{"message":"API rate limit exceeded"}"#.to_vec(),
        });
        let http = FakeHttp::answering(vec![limited]);
        let err = act("create-issue", &json!({"title": "t"}), &http).unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformUnavailable);
        assert!(err.message.contains("rate limit"), "{}", err.message);

        let http = FakeHttp::answering(vec![Ok(HttpResponse {
            status: 502,
            headers: vec![],
            body: b"<html>bad gateway</html>".to_vec(),
        })]);
        let err = act("create-issue", &json!({"title": "t"}), &http).unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformUnavailable);
        assert!(err.message.contains("bad gateway"), "{}", err.message);
    }

    #[test]
    fn transport_failures_keep_their_codes() {
        let http = FakeHttp::answering(vec![Err(HttpError::CircuitOpen { retry_in_ms: 500 })]);
        let err = act("create-issue", &json!({"title": "t"}), &http).unwrap_err();
        assert_eq!(err.code, ErrorCode::CircuitOpen);
        let http = FakeHttp::answering(vec![Err(HttpError::Timeout(100))]);
        let err = act("comment", &json!({"issue_number": 1, "body": "b"}), &http).unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformUnavailable);
    }

    #[test]
    fn missing_settings_are_refused_before_any_request() {
        for missing in ["owner", "repo", "token"] {
            let mut cfg = config();
            cfg.as_object_mut().unwrap().remove(missing);
            let http = FakeHttp::default();
            let params = json!({"title": "t"});
            let err = run(
                &http,
                &cfg,
                RemoteOp::Action {
                    action: "create-issue",
                    params: &params,
                },
            )
            .unwrap_err();
            assert_eq!(err.code, ErrorCode::PlatformNotConfigured);
            assert_eq!(err.field, Some(format!("settings.{missing}")));
            assert!(http.requests().is_empty());
        }
    }

    #[test]
    fn the_default_api_url_is_the_public_api() {
        let mut cfg = config();
        cfg.as_object_mut().unwrap().remove("api_url");
        let http = FakeHttp::answering(vec![json_response(
            200,
            json!({"full_name": "Octo-Org/Hello-World"}),
        )]);
        run(&http, &cfg, RemoteOp::Probe).unwrap();
        assert_eq!(
            http.requests()[0].url,
            "https://api.github.com/repos/Octo-Org/Hello-World"
        );
    }

    #[test]
    fn the_probe_reads_the_repository_and_fails_on_bad_credentials() {
        let http = FakeHttp::answering(vec![
            json_response(
                200,
                json!({"id": 1, "full_name": "Octo-Org/Hello-World", "has_issues": true}),
            ),
            json_response(401, json!({"message": "Bad credentials"})),
        ]);
        let ok = run(&http, &config(), RemoteOp::Probe).unwrap();
        assert_eq!(ok["full_name"], json!("Octo-Org/Hello-World"));
        let err = run(&http, &config(), RemoteOp::Probe).unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformError);
        assert!(err.message.contains("Bad credentials"), "{}", err.message);
        let req = &http.requests()[0];
        assert_eq!(req.method, "GET");
        assert_eq!(req.url, "http://gh.test/api/v3/repos/Octo-Org/Hello-World");
        assert_eq!(header(req, "authorization"), Some("Bearer ghp_test"));
        assert_eq!(header(req, "x-github-api-version"), Some("2022-11-28"));
    }

    #[test]
    fn processes_have_no_network_half() {
        let http = FakeHttp::default();
        let cfg = config();
        let p = Github::new();
        let params = json!({});
        let call = Remote {
            community: "c",
            config: &cfg,
            http: &http,
            op: RemoteOp::StartProcess {
                process: "x",
                params: &params,
            },
        };
        assert!(p.remote(call).is_none());
    }

    #[test]
    fn actions_need_a_well_formed_observation() {
        let p = Github::new();
        let cfg = config();
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        let err = p.action(&mut ctx, "create-issue", &json!({})).unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformError);

        let odd = json!({"id": "x", "number": 1, "html_url": "u", "state": "open"});
        ctx.remote = Some(&odd);
        let err = p.action(&mut ctx, "create-issue", &json!({})).unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformError);
        assert!(err.message.contains("'id'"), "{}", err.message);

        let partial = json!({"id": 1});
        ctx.remote = Some(&partial);
        let err = p.action(&mut ctx, "comment", &json!({})).unwrap_err();
        assert!(err.message.contains("html_url"), "{}", err.message);

        let err = p.action(&mut ctx, "merge", &json!({})).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownAction);
    }

    // ----- webhooks -----

    fn signed(event: &str, body: &Value, secret: &str) -> WebhookRequest {
        let raw = body.to_string().into_bytes();
        WebhookRequest {
            headers: vec![
                ("x-github-event".into(), event.into()),
                (
                    "x-github-delivery".into(),
                    "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
                ),
                (
                    "x-hub-signature-256".into(),
                    format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &raw)),
                ),
                ("content-type".into(), "application/json".into()),
            ],
            query: None,
            body: raw,
        }
    }

    fn deliver(cfg: &Value, req: &WebhookRequest) -> Result<Vec<Event>, PluginError> {
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", cfg, &mut state, 0);
        Github::new().webhook(&mut ctx, req)?;
        Ok(ctx.events)
    }

    #[test]
    fn the_recent_events_widget_lists_the_last_webhooks_newest_first() {
        let gh = Github::new();
        let cfg = config();
        let mut state = Value::Null;
        for (i, action) in ["opened", "closed"].iter().enumerate() {
            let mut ctx = ActionContext::new("c", &cfg, &mut state, 1_000 * (i as u64 + 1));
            gh.webhook(&mut ctx, &signed("issues", &issues_payload(action), SECRET))
                .unwrap();
        }
        let data = gh.read(&state, &config(), "recent-events").unwrap();
        let rows = data["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{data}");
        assert_eq!(rows[0][1], "issues.closed");
        assert_eq!(rows[0][2], 7);
        assert_eq!(rows[0][3], "Adopt the charter");
        assert_eq!(rows[1][0], "1970-01-01T00:00:01Z");
        assert_eq!(
            gh.read(&state, &config(), "nope").unwrap_err().code,
            ErrorCode::UnknownWidget
        );
        // Only the last few are kept.
        for _ in 0..RECENT_EVENTS + 5 {
            let mut ctx = ActionContext::new("c", &cfg, &mut state, 5_000);
            gh.webhook(
                &mut ctx,
                &signed("issues", &issues_payload("opened"), SECRET),
            )
            .unwrap();
        }
        let data = gh.read(&state, &config(), "recent-events").unwrap();
        assert_eq!(data["rows"].as_array().unwrap().len(), RECENT_EVENTS);
    }

    fn repository() -> Value {
        json!({"id": 1296269, "name": "Hello-World", "full_name": "Octo-Org/Hello-World", "owner": {"login": "Octo-Org"}})
    }

    fn issues_payload(action: &str) -> Value {
        json!({
            "action": action,
            "issue": {
                "id": 1007, "number": 7, "title": "Adopt the charter", "state": "open",
                "html_url": "https://github.com/Octo-Org/Hello-World/issues/7",
                "body": "long text", "labels": [{"id": 1, "name": "governance"}],
                "user": {"login": "octocat"},
            },
            "repository": repository(),
            "sender": {"login": "octocat", "id": 1},
        })
    }

    #[test]
    fn a_signed_issue_webhook_becomes_an_event_with_its_sender() {
        let events = deliver(
            &config(),
            &signed("issues", &issues_payload("opened"), SECRET),
        )
        .unwrap();
        assert_eq!(
            events,
            vec![Event {
                event_type: "issues.opened".into(),
                data: json!({
                    "repository": "Octo-Org/Hello-World",
                    "repository_id": 1296269,
                    "number": 7,
                    "title": "Adopt the charter",
                    "url": "https://github.com/Octo-Org/Hello-World/issues/7",
                    "state": "open",
                    "labels": ["governance"],
                    "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                }),
                initiator: json!({"user_id": "octocat", "provider": "github"}),
            }]
        );
    }

    #[test]
    fn pull_request_and_comment_webhooks_carry_their_subsets() {
        let pr = json!({
            "action": "closed",
            "number": 12,
            "pull_request": {
                "id": 9, "number": 12, "title": "Fix typo", "state": "closed", "merged": true,
                "draft": false, "html_url": "https://github.com/Octo-Org/Hello-World/pull/12",
                "labels": [],
            },
            "repository": repository(),
            "sender": {"login": "hubot"},
        });
        let events = deliver(&config(), &signed("pull_request", &pr, SECRET)).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "pull_request.closed");
        assert_eq!(events[0].data["merged"], json!(true));
        assert_eq!(events[0].data["number"], json!(12));
        assert_eq!(events[0].data["state"], json!("closed"));
        assert_eq!(events[0].initiator["user_id"], json!("hubot"));

        let comment = json!({
            "action": "created",
            "issue": {"number": 12, "title": "Fix typo", "pull_request": {"url": "..."}},
            "comment": {
                "id": 555, "body": "+1",
                "html_url": "https://github.com/Octo-Org/Hello-World/pull/12#issuecomment-555",
                "user": {"login": "monalisa"},
            },
            "repository": repository(),
            "sender": {"login": "monalisa"},
        });
        let events = deliver(&config(), &signed("issue_comment", &comment, SECRET)).unwrap();
        assert_eq!(events[0].event_type, "issue_comment.created");
        assert_eq!(
            events[0].data,
            json!({
                "repository": "Octo-Org/Hello-World",
                "repository_id": 1296269,
                "comment_id": 555,
                "body": "+1",
                "url": "https://github.com/Octo-Org/Hello-World/pull/12#issuecomment-555",
                "issue_number": 12,
                "issue_title": "Fix typo",
                "is_pull_request": true,
                "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            })
        );
    }

    #[test]
    fn unsigned_or_wrongly_signed_webhooks_are_refused() {
        let payload = issues_payload("opened");
        let wrong = signed("issues", &payload, "another secret");
        let err = deliver(&config(), &wrong).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidSignature);
        assert!(err.message.contains("X-Hub-Signature-256"));

        let mut missing = signed("issues", &payload, SECRET);
        missing.headers.retain(|(k, _)| k != "x-hub-signature-256");
        assert_eq!(
            deliver(&config(), &missing).unwrap_err().code,
            ErrorCode::InvalidSignature
        );

        let mut tampered = signed("issues", &payload, SECRET);
        tampered.body = issues_payload("closed").to_string().into_bytes();
        assert_eq!(
            deliver(&config(), &tampered).unwrap_err().code,
            ErrorCode::InvalidSignature
        );

        // The legacy SHA-1 header alone is not enough.
        let mut sha1_only = signed("issues", &payload, SECRET);
        for (k, v) in sha1_only.headers.iter_mut() {
            if k == "x-hub-signature-256" {
                *k = "x-hub-signature".into();
                *v = v.replace("sha256=", "sha1=");
            }
        }
        assert_eq!(
            deliver(&config(), &sha1_only).unwrap_err().code,
            ErrorCode::InvalidSignature
        );
    }

    #[test]
    fn without_a_webhook_secret_every_webhook_is_refused() {
        for secret in [None, Some("")] {
            let mut cfg = config();
            match secret {
                None => {
                    cfg.as_object_mut().unwrap().remove("webhook_secret");
                }
                Some(s) => cfg["webhook_secret"] = json!(s),
            }
            let req = signed("ping", &json!({"zen": "Keep it logically awesome."}), "");
            assert_eq!(
                deliver(&cfg, &req).unwrap_err().code,
                ErrorCode::InvalidSignature
            );
        }
    }

    #[test]
    fn ping_and_other_events_are_accepted_without_an_event() {
        let ping = json!({"zen": "Design for failure.", "hook_id": 1, "repository": repository()});
        assert!(deliver(&config(), &signed("ping", &ping, SECRET))
            .unwrap()
            .is_empty());
        let push = json!({"ref": "refs/heads/main", "repository": repository()});
        assert!(deliver(&config(), &signed("push", &push, SECRET))
            .unwrap()
            .is_empty());
        // An action this plugin does not declare.
        let odd = issues_payload("frobnicated");
        assert!(deliver(&config(), &signed("issues", &odd, SECRET))
            .unwrap()
            .is_empty());
        // No action at all.
        let mut bare = issues_payload("opened");
        bare.as_object_mut().unwrap().remove("action");
        assert!(deliver(&config(), &signed("issues", &bare, SECRET))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn webhooks_about_another_repository_are_ignored() {
        let mut payload = issues_payload("opened");
        payload["repository"]["full_name"] = json!("Octo-Org/Other");
        assert!(deliver(&config(), &signed("issues", &payload, SECRET))
            .unwrap()
            .is_empty());
        // The same repository in other letter case is this one: GitHub names are case-insensitive.
        payload["repository"]["full_name"] = json!("octo-org/hello-world");
        assert_eq!(
            deliver(&config(), &signed("issues", &payload, SECRET))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn signed_bodies_that_are_not_the_event_they_claim_are_bad_input() {
        let mut req = signed("issues", &json!({}), SECRET);
        req.body = b"{not json".to_vec();
        req.headers.retain(|(k, _)| k != "x-hub-signature-256");
        req.headers.push((
            "x-hub-signature-256".into(),
            format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), &req.body)),
        ));
        assert_eq!(
            deliver(&config(), &req).unwrap_err().code,
            ErrorCode::SchemaViolation
        );

        let no_issue =
            json!({"action": "opened", "repository": repository(), "sender": {"login": "x"}});
        let err = deliver(&config(), &signed("issues", &no_issue, SECRET)).unwrap_err();
        assert_eq!(err.code, ErrorCode::SchemaViolation);
        assert!(err.message.contains("issue"), "{}", err.message);
    }

    #[test]
    fn form_encoded_deliveries_are_read_from_their_payload_field() {
        let payload = issues_payload("closed").to_string();
        let mut encoded = String::from("payload=");
        for b in payload.bytes() {
            if b.is_ascii_alphanumeric() {
                encoded.push(char::from(b));
            } else if b == b' ' {
                encoded.push('+');
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        let raw = encoded.into_bytes();
        let req = WebhookRequest {
            headers: vec![
                ("X-GitHub-Event".into(), "issues".into()),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                (
                    "X-Hub-Signature-256".into(),
                    format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), &raw)),
                ),
            ],
            query: None,
            body: raw,
        };
        let events = deliver(&config(), &req).unwrap();
        assert_eq!(events[0].event_type, "issues.closed");
        assert_eq!(events[0].data["title"], json!("Adopt the charter"));
        assert_eq!(events[0].data["delivery_id"], Value::Null);
        assert_eq!(
            Github::new().webhook_route(&req).as_deref(),
            Some("1296269")
        );
    }

    #[test]
    fn platform_wide_webhooks_route_by_the_repository_id() {
        let p = Github::new();
        // owner/repo alone still configures the API, but routes nothing platform-wide.
        assert_eq!(p.platform_id(&config()), None);
        let mut with_id = config();
        with_id["repository_id"] = json!(1296269);
        assert_eq!(p.platform_id(&with_id).as_deref(), Some("1296269"));
        let req = signed("issues", &issues_payload("opened"), SECRET);
        assert_eq!(p.webhook_route(&req).as_deref(), Some("1296269"));
        let unroutable = signed("issues", &json!({"action": "opened"}), SECRET);
        assert_eq!(p.webhook_route(&unroutable), None);

        // Renamed (and transferred): the id still matches, the old name does not matter.
        let mut renamed = issues_payload("opened");
        renamed["repository"]["full_name"] = json!("New-Owner/Charter");
        let req = signed("issues", &renamed, SECRET);
        assert_eq!(p.webhook_route(&req).as_deref(), Some("1296269"));
        let events = deliver(&with_id, &req).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data["repository"], json!("New-Owner/Charter"));
        // Another repository with our old name is not ours when we know our id.
        let mut impostor = issues_payload("opened");
        impostor["repository"]["id"] = json!(7);
        assert!(deliver(&with_id, &signed("issues", &impostor, SECRET))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn settings_name_a_repository_github_can_have() {
        let p = Github::new();
        assert!(p.check_settings(&config()).is_ok());
        assert!(p.check_settings(&json!({"repository_id": 5})).is_ok());
        // A layer may name half the repository (the global owner, a community's repo).
        assert!(p.check_settings(&json!({"owner": "octo-org"})).is_ok());
        let cases = [
            (json!({"owner": "-octo", "repo": "x"}), "owner"),
            (json!({"owner": "octo--org", "repo": "x"}), "owner"),
            (json!({"owner": "a".repeat(40), "repo": "x"}), "owner"),
            (json!({"owner": "octo", "repo": ".."}), "repo"),
            (json!({"owner": "octo", "repo": "has space"}), "repo"),
            (
                json!({"api_url": "https://ghe.example/api/v3?x=1"}),
                "api_url",
            ),
        ];
        for (settings, field) in cases {
            let err = p.check_settings(&settings).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidSettings, "{settings}");
            assert_eq!(err.field.as_deref(), Some(field), "{settings}");
        }
    }

    /// Replays every payload of `@octokit/webhooks-examples` 7.6.1 (real deliveries, kept in
    /// ../shared/fixtures/github-webhooks/, see its README): each `issues`, `pull_request` and
    /// `issue_comment` payload becomes exactly one declared event whose data satisfies the
    /// schema the plugin publishes for it; every other payload is accepted without an event.
    #[test]
    fn every_real_github_payload_is_handled_and_its_event_matches_its_schema() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/github-webhooks/api.github.com.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!("{path}: {e} (the shared fixtures sit beside the repository)")
        });
        let fixtures: Value = serde_json::from_str(&text).unwrap();
        let mut registry = crate::PluginRegistry::new();
        registry
            .register(std::sync::Arc::new(Github::new()))
            .unwrap();
        let followed = ["issues", "pull_request", "issue_comment"];
        let (mut handled, mut ignored, mut routed) = (0, 0, 0);
        for entry in fixtures.as_array().unwrap() {
            let name = entry["name"].as_str().unwrap();
            if followed.contains(&name) {
                // Every action GitHub lists for a followed webhook is declared.
                for action in entry["actions"].as_array().unwrap() {
                    let event_type = format!("{name}.{}", action.as_str().unwrap());
                    assert!(
                        registry.event_schema("github", &event_type).is_some(),
                        "{event_type} is not declared"
                    );
                }
            }
            for (i, example) in entry["examples"].as_array().unwrap().iter().enumerate() {
                let req = signed(name, example, SECRET);
                if example.get("repository").is_some() {
                    assert_eq!(
                        p_route(&req),
                        example["repository"]["id"]
                            .as_u64()
                            .map(|id| id.to_string()),
                        "{name}[{i}]"
                    );
                    routed += 1;
                }
                let events = deliver(&json!({"webhook_secret": SECRET}), &req)
                    .unwrap_or_else(|e| panic!("{name}[{i}] refused: {e}"));
                if !followed.contains(&name) {
                    assert!(events.is_empty(), "{name}[{i}] made an event");
                    ignored += 1;
                    continue;
                }
                assert_eq!(events.len(), 1, "{name}[{i}]");
                let event = &events[0];
                assert_eq!(
                    event.event_type,
                    format!("{name}.{}", example["action"].as_str().unwrap())
                );
                let schema = registry.event_schema("github", &event.event_type).unwrap();
                if let Err(violations) = schema.validate(&event.data) {
                    panic!(
                        "{name}[{i}] {}: {violations:?}\n{}",
                        event.event_type, event.data
                    );
                }
                handled += 1;
            }
        }
        // 67 payloads of followed webhooks, 262 of others, 280 naming their repository.
        assert_eq!((handled, ignored, routed), (67, 262, 280));
    }

    fn p_route(req: &WebhookRequest) -> Option<String> {
        Github::new().webhook_route(req)
    }
}
