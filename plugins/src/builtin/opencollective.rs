//! `opencollective`: approve and reject a collective's expenses on Open Collective, and turn its
//! expense webhooks into driver events.
//!
//! Written against Open Collective's GraphQL API v2 (`POST <api_url>/graphql/v2`, authenticated
//! by the `Personal-Token` header its `checkPersonalToken` middleware reads): the
//! `expense(expense: ExpenseReferenceInput)` query, the `processExpense(expense, action, message)`
//! mutation with `ExpenseProcessAction` `APPROVE` / `REJECT`, and `account(slug)` as the health
//! probe; refusals come back as `{"errors":[{"message"}]}` with HTTP 200, an unknown token as a
//! 401. Webhook bodies follow `sanitizeActivityForWebhookPayload` in opencollective-api
//! (`{createdAt, id, type, CollectiveId, data: {expense: {id, idV2, description, amount,
//! currency}, fromCollective, collective}}`), and Metagov's own Open Collective plugin maps
//! `collective.expense.<x>` to `expense_<x>` the same way.
//!
//! Open Collective does not sign its webhooks, so the URL registered with it carries a shared
//! secret (`.../api/hooks/<community>/opencollective?secret=<webhook_secret>`), compared in
//! constant time; without a configured secret every webhook is refused.

use serde_json::{json, Value};

use crate::remote::{bad_signature, setting, HttpRequest, HttpResponse};
use crate::{
    ActionContext, ActionSpec, BoxFuture, ErrorCode, Event, EventSpec, Http, Plugin, PluginError,
    PluginMeta, ProcessContext, Remote, RemoteOp, WebhookRequest,
};

const NAME: &str = "opencollective";
const DEFAULT_API_URL: &str = "https://api.opencollective.com";
/// GraphQL's `Int`, which `ExpenseReferenceInput.legacyId` is: larger ids cannot exist.
const MAX_LEGACY_ID: i64 = i32::MAX as i64;
/// Error excerpts quote the platform; keep them short enough for an error body.
const EXCERPT_CHARS: usize = 300;

/// Reads the expense's collective before acting on it, so an id from another collective is
/// refused without touching it. Projects and events name their parent collective.
const EXPENSE_QUERY: &str = "query AgoraExpense($expense: ExpenseReferenceInput!) {
  expense(expense: $expense) {
    id
    legacyId
    status
    account { slug ... on AccountWithParent { parent { slug } } }
  }
}";

const PROCESS_EXPENSE_MUTATION: &str = "mutation AgoraProcessExpense($expense: ExpenseReferenceInput!, $action: ExpenseProcessAction!, $message: String) {
  processExpense(expense: $expense, action: $action, message: $message) {
    id
    legacyId
    status
    account { slug }
  }
}";

const PROBE_QUERY: &str = "query AgoraProbe($slug: String) {
  account(slug: $slug) { id slug }
}";

/// The expense activities that become driver events, as `(activity suffix, status after it)`.
/// Updates and deletions do not imply a status.
const EXPENSE_EVENTS: &[(&str, Option<&str>)] = &[
    ("created", Some("PENDING")),
    ("updated", None),
    ("deleted", None),
    ("approved", Some("APPROVED")),
    ("unapproved", Some("PENDING")),
    ("rejected", Some("REJECTED")),
    ("paid", Some("PAID")),
];

pub struct OpenCollective {
    meta: PluginMeta,
}

impl Default for OpenCollective {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenCollective {
    pub fn new() -> Self {
        let expense_params = |with_message: &str| {
            json!({
                "type": "object",
                "properties": {
                    "expense_id": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LEGACY_ID,
                        "description": "The expense's legacy id, as in its URL (.../expenses/<id>)."
                    },
                    "message": {"type": "string", "description": with_message}
                },
                "required": ["expense_id"],
                "additionalProperties": false
            })
        };
        let expense_result = json!({
            "type": "object",
            "properties": {
                "expense_id": {"type": "integer"},
                "status": {"type": "string", "description": "Open Collective's ExpenseStatus after the action."}
            },
            "required": ["expense_id", "status"]
        });
        let event_schema = json!({
            "type": "object",
            "properties": {
                "expense_id": {"type": "integer", "description": "The expense's legacy id."},
                "expense_public_id": {"type": ["string", "null"]},
                "description": {"type": ["string", "null"]},
                "amount": {"type": ["integer", "null"], "description": "In cents of `currency`."},
                "currency": {"type": ["string", "null"]},
                "status": {"type": ["string", "null"], "description": "The status the activity implies, when it implies one."},
                "collective": {"type": ["string", "null"], "description": "Slug of the account the expense was submitted to."},
                "payee": {"type": ["string", "null"], "description": "Slug of the account to be paid."},
                "activity_id": {"type": ["integer", "null"]},
                "created_at": {"type": ["string", "null"]}
            },
            "required": ["expense_id"]
        });
        OpenCollective {
            meta: PluginMeta {
                name: NAME,
                verbose_name: "Open Collective",
                version: "1.0.0",
                author: "The Agora developers",
                agora_min: "0.1.0",
                agora_max: None,
                depends_on: &[],
                load_by_default: true,
                description: "Approves and rejects a collective's expenses on Open Collective and \
                              reports expense activity (created, approved, rejected, paid...) as events.",
                auth_type: "api_key",
                uses_webhook: true,
                config_schema: json!({
                    "type": "object",
                    "properties": {
                        "api_url": {
                            "type": "string",
                            "format": "uri",
                            "default": DEFAULT_API_URL,
                            "description": "Open Collective's API root; GraphQL v2 is at <api_url>/graphql/v2."
                        },
                        "token": {
                            "type": "string",
                            "x-secret": true,
                            "description": "A personal token of an admin of the collective (sent as Personal-Token)."
                        },
                        "collective_slug": {
                            "type": "string",
                            "description": "The collective's slug (required): only its expenses are acted on."
                        },
                        "webhook_secret": {
                            "type": "string",
                            "x-secret": true,
                            "description": "Shared secret in the webhook URL registered with Open Collective (?secret=...); without it webhooks are refused."
                        }
                    },
                    "additionalProperties": false
                }),
                actions: vec![
                    ActionSpec {
                        name: "approve-expense",
                        description: "Approves a pending expense of the collective (processExpense APPROVE).",
                        parameters_schema: expense_params("Optional note attached to the approval."),
                        response_schema: expense_result.clone(),
                        public: false,
                    },
                    ActionSpec {
                        name: "reject-expense",
                        description: "Rejects a pending expense of the collective (processExpense REJECT).",
                        parameters_schema: expense_params("Optional reason shown with the rejection."),
                        response_schema: expense_result,
                        public: false,
                    },
                ],
                processes: vec![],
                navigation: vec![],
                widgets: vec![],
                events: EXPENSE_EVENTS
                    .iter()
                    .map(|(suffix, _)| EventSpec {
                        event_type: event_type_name(suffix),
                        schema: event_schema.clone(),
                    })
                    .collect(),
            },
        }
    }
}

/// `expense_<suffix>` for the fixed list above (static names for [`EventSpec`]).
fn event_type_name(suffix: &str) -> &'static str {
    match suffix {
        "created" => "expense_created",
        "updated" => "expense_updated",
        "deleted" => "expense_deleted",
        "approved" => "expense_approved",
        "unapproved" => "expense_unapproved",
        "rejected" => "expense_rejected",
        _ => "expense_paid",
    }
}

fn graphql_url(config: &Value) -> String {
    let base = config
        .get("api_url")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_API_URL);
    format!("{}/graphql/v2", base.trim_end_matches('/'))
}

fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

/// The `data` of a GraphQL answer, or the platform's refusal as an error.
fn graphql_data(resp: &HttpResponse, what: &str) -> Result<Value, PluginError> {
    // Open Collective echoes an unknown token in its 401 body, so never quote it.
    if matches!(resp.status, 401 | 403) {
        return Err(PluginError::platform(format!(
            "{what}: Open Collective refused the personal token (HTTP {})",
            resp.status
        )));
    }
    if resp.status == 429 || resp.status >= 500 {
        return Err(PluginError {
            code: ErrorCode::PlatformUnavailable,
            message: format!("{what}: Open Collective answered {}", resp.status),
            field: None,
        });
    }
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    if let Some(errors) = body
        .as_ref()
        .and_then(|b| b.get("errors"))
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        let messages: Vec<&str> = errors
            .iter()
            .map(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unnamed error")
            })
            .collect();
        return Err(PluginError::platform(format!(
            "{what}: Open Collective refused: {}",
            excerpt(&messages.join("; "))
        )));
    }
    if !resp.is_success() {
        return Err(PluginError::platform(format!(
            "{what}: Open Collective answered {}: {}",
            resp.status,
            excerpt(&String::from_utf8_lossy(&resp.body))
        )));
    }
    match body.and_then(|mut b| b.get_mut("data").map(Value::take)) {
        Some(data) if data.is_object() => Ok(data),
        _ => Err(PluginError::platform(format!(
            "{what}: Open Collective answered {} without a GraphQL `data` object",
            resp.status
        ))),
    }
}

/// One GraphQL operation against the instance's endpoint.
async fn graphql(
    http: &dyn Http,
    config: &Value,
    what: &str,
    query: &str,
    variables: Value,
) -> Result<Value, PluginError> {
    let token = setting(config, "token")?;
    let req = HttpRequest::json(
        "POST",
        graphql_url(config),
        &json!({"query": query, "variables": variables}),
    )
    .header("Personal-Token", token)
    .header("accept", "application/json");
    let resp = http.send(req).await?;
    graphql_data(&resp, what)
}

fn expense_id_param(params: &Value) -> Result<i64, PluginError> {
    params
        .get("expense_id")
        .and_then(Value::as_i64)
        .filter(|id| (1..=MAX_LEGACY_ID).contains(id))
        .ok_or_else(|| {
            PluginError::invalid(
                "expense_id",
                "expense_id must be an expense's legacy id (a positive integer)",
            )
        })
}

fn slug_matches(account: &Value, collective: &str) -> bool {
    account
        .get("slug")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case(collective))
}

fn not_in_collective(id: i64, collective: &str, found: &str) -> PluginError {
    PluginError {
        code: ErrorCode::ExpenseNotInCollective,
        message: format!(
            "expense {id} belongs to '{found}', not to the configured collective '{collective}'"
        ),
        field: Some("expense_id".into()),
    }
}

/// Looks the expense up, checks it is the configured collective's (or one of its projects' or
/// events'), then processes it; answers `{expense_id, status}`.
async fn process_expense(
    http: &dyn Http,
    config: &Value,
    action: &str,
    params: &Value,
) -> Result<Value, PluginError> {
    let gql_action = match action {
        "approve-expense" => "APPROVE",
        "reject-expense" => "REJECT",
        other => {
            return Err(PluginError {
                code: ErrorCode::UnknownAction,
                message: format!("opencollective has no action {other}"),
                field: None,
            })
        }
    };
    let id = expense_id_param(params)?;
    let collective = setting(config, "collective_slug")?;
    let reference = json!({"legacyId": id});

    let found = graphql(
        http,
        config,
        "reading the expense",
        EXPENSE_QUERY,
        json!({"expense": reference}),
    )
    .await?;
    let expense = found
        .get("expense")
        .filter(|e| e.is_object())
        .ok_or_else(|| PluginError::platform(format!("Open Collective has no expense {id}")))?;
    let account = expense.get("account").unwrap_or(&Value::Null);
    let parent = account.get("parent").unwrap_or(&Value::Null);
    if !slug_matches(account, collective) && !slug_matches(parent, collective) {
        let found = account
            .get("slug")
            .and_then(Value::as_str)
            .unwrap_or("an unknown account");
        return Err(not_in_collective(id, collective, found));
    }

    let message = params.get("message").cloned().unwrap_or(Value::Null);
    let done = graphql(
        http,
        config,
        "processing the expense",
        PROCESS_EXPENSE_MUTATION,
        json!({"expense": reference, "action": gql_action, "message": message}),
    )
    .await?;
    let processed = done.get("processExpense").unwrap_or(&Value::Null);
    let status = processed
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            PluginError::platform("processExpense answered without the expense's status")
        })?;
    Ok(json!({"expense_id": id, "status": status}))
}

async fn probe(http: &dyn Http, config: &Value) -> Result<Value, PluginError> {
    let collective = setting(config, "collective_slug")?;
    let data = graphql(
        http,
        config,
        "probing the collective",
        PROBE_QUERY,
        json!({"slug": collective}),
    )
    .await?;
    match data.get("account") {
        Some(account) if account.is_object() => Ok(json!({"account": account})),
        _ => Err(PluginError::platform(format!(
            "Open Collective has no account '{collective}'"
        ))),
    }
}

/// Byte equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authenticate(config: &Value, req: &WebhookRequest) -> Result<(), PluginError> {
    let Ok(secret) = setting(config, "webhook_secret") else {
        return Err(PluginError {
            code: ErrorCode::InvalidSignature,
            message: "no webhook_secret is configured for this community, so Open Collective \
                      webhooks cannot be authenticated"
                .into(),
            field: None,
        });
    };
    match req.query_param("secret") {
        Some(given) if constant_time_eq(given.as_bytes(), secret.as_bytes()) => Ok(()),
        _ => Err(bad_signature("secret")),
    }
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The driver event for an expense activity, if it is one we report.
fn expense_event(payload: &Value) -> Option<Event> {
    let suffix = str_at(payload, "/type")?.strip_prefix("collective.expense.")?;
    let (suffix, status) = EXPENSE_EVENTS.iter().find(|(s, _)| *s == suffix)?;
    let expense = payload.pointer("/data/expense")?;
    let expense_id = expense.get("id").and_then(Value::as_i64)?;
    let payee = str_at(payload, "/data/fromCollective/slug");
    let data = json!({
        "expense_id": expense_id,
        "expense_public_id": expense.get("idV2").and_then(Value::as_str),
        "description": expense.get("description").and_then(Value::as_str),
        "amount": expense.get("amount").and_then(Value::as_i64),
        "currency": expense.get("currency").and_then(Value::as_str),
        "status": status,
        "collective": str_at(payload, "/data/collective/slug"),
        "payee": payee,
        "activity_id": payload.get("id").and_then(Value::as_i64),
        "created_at": str_at(payload, "/createdAt"),
    });
    // The payload names no acting user; the payee is who submits and edits an expense, but
    // approvals and payments are done by admins the payload does not name.
    let initiator = match (*suffix, payee) {
        ("created" | "updated", Some(slug)) => json!({"user_id": slug, "provider": NAME}),
        _ => json!({}),
    };
    Some(Event {
        event_type: event_type_name(suffix).to_string(),
        data,
        initiator,
    })
}

impl Plugin for OpenCollective {
    fn meta(&self) -> &PluginMeta {
        &self.meta
    }

    fn remote<'a>(&'a self, call: Remote<'a>) -> Option<BoxFuture<'a, Result<Value, PluginError>>> {
        let Remote {
            config, http, op, ..
        } = call;
        match op {
            RemoteOp::Action { action, params } => {
                Some(Box::pin(process_expense(http, config, action, params)))
            }
            RemoteOp::Probe => Some(Box::pin(probe(http, config))),
            _ => None,
        }
    }

    fn action(
        &self,
        ctx: &mut ActionContext<'_>,
        action: &str,
        _params: &Value,
    ) -> Result<Value, PluginError> {
        if !matches!(action, "approve-expense" | "reject-expense") {
            return Err(PluginError {
                code: ErrorCode::UnknownAction,
                message: format!("opencollective has no action {action}"),
                field: None,
            });
        }
        let obs = ctx.observation()?;
        match (
            obs.get("expense_id").and_then(Value::as_i64),
            obs.get("status").and_then(Value::as_str),
        ) {
            (Some(id), Some(status)) => Ok(json!({"expense_id": id, "status": status})),
            _ => Err(PluginError::platform(format!(
                "unexpected observation for {action}: {}",
                excerpt(&obs.to_string())
            ))),
        }
    }

    fn webhook(
        &self,
        ctx: &mut ActionContext<'_>,
        req: &WebhookRequest,
    ) -> Result<(), PluginError> {
        authenticate(ctx.config, req)?;
        // Authenticated but not an expense activity we report (or not JSON): accepted quietly,
        // as Open Collective only retries on failures.
        if let Some(event) = req.json().as_ref().and_then(expense_event) {
            ctx.events.push(event);
        }
        Ok(())
    }

    /// `api_url` is an http(s) base URL (its schema says `uri`); a collective's slug is one
    /// URL path segment on Open Collective (`opencollective.com/<slug>`), so it has no `/`,
    /// `?`, `#` or whitespace.
    fn check_settings(&self, settings: &Value) -> Result<(), PluginError> {
        crate::wire::check_base_url(settings, "api_url")?;
        match settings.get("collective_slug").and_then(Value::as_str) {
            Some(slug)
                if slug.is_empty()
                    || slug
                        .chars()
                        .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#')) =>
            {
                Err(PluginError::invalid_settings(
                    "collective_slug",
                    format!("'{slug}' is not a collective slug (one path segment of its URL)"),
                ))
            }
            _ => Ok(()),
        }
    }

    fn platform_id(&self, settings: &Value) -> Option<String> {
        settings
            .get("collective_slug")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase)
    }

    /// The activity's `id` in the body: Open Collective sends no delivery header, and each
    /// webhook body is one activity, whose id names it.
    fn delivery_id(&self, req: &WebhookRequest) -> Option<String> {
        req.json()?
            .get("id")?
            .as_u64()
            .map(|id| format!("activity-{id}"))
    }

    fn webhook_route(&self, req: &WebhookRequest) -> Option<String> {
        req.json()
            .as_ref()
            .and_then(|p| str_at(p, "/data/collective/slug"))
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase)
    }

    fn start_process(&self, _: &mut ProcessContext<'_>, _: &Value) -> Result<(), PluginError> {
        Err(PluginError {
            code: ErrorCode::Unsupported,
            message: "opencollective has no processes".into(),
            field: None,
        })
    }

    fn tick(&self, _: &mut ProcessContext<'_>, _: &str) -> Result<(), PluginError> {
        Ok(())
    }

    fn close_process(&self, _: &mut ProcessContext<'_>) -> Result<(), PluginError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::testing::{block_on, json_response, FakeHttp};
    use crate::HttpError;

    fn config() -> Value {
        json!({
            "api_url": "https://oc.test/",
            "token": "tok-123",
            "collective_slug": "Green-Fund",
            "webhook_secret": "s3cret"
        })
    }

    fn run(
        p: &OpenCollective,
        http: &FakeHttp,
        config: &Value,
        op: RemoteOp<'_>,
    ) -> Result<Value, PluginError> {
        let call = Remote {
            community: "c",
            config,
            http,
            op,
        };
        block_on(
            p.remote(call)
                .expect("the plugin has a network half for this op"),
        )
    }

    fn act(
        http: &FakeHttp,
        config: &Value,
        action: &str,
        params: Value,
    ) -> Result<Value, PluginError> {
        let p = OpenCollective::new();
        let obs = run(
            &p,
            http,
            config,
            RemoteOp::Action {
                action,
                params: &params,
            },
        )?;
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", config, &mut state, 0);
        ctx.remote = Some(&obs);
        p.action(&mut ctx, action, &params)
    }

    fn expense_answer(id: i64, slug: &str, status: &str) -> Result<HttpResponse, HttpError> {
        json_response(
            200,
            json!({"data": {"expense": {"id": "pub-1", "legacyId": id, "status": status,
                "account": {"slug": slug}}}}),
        )
    }

    fn processed(id: i64, status: &str) -> Result<HttpResponse, HttpError> {
        json_response(
            200,
            json!({"data": {"processExpense": {"id": "pub-1", "legacyId": id, "status": status,
                "account": {"slug": "green-fund"}}}}),
        )
    }

    fn body(req: &HttpRequest) -> Value {
        serde_json::from_slice(req.body.as_deref().expect("a body")).expect("a JSON body")
    }

    fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn approving_reads_the_expense_then_processes_it_with_the_personal_token() {
        let http = FakeHttp::answering(vec![
            expense_answer(42, "green-fund", "PENDING"),
            processed(42, "APPROVED"),
        ]);
        let out = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 42}),
        )
        .unwrap();
        assert_eq!(out, json!({"expense_id": 42, "status": "APPROVED"}));

        let reqs = http.requests();
        assert_eq!(reqs.len(), 2);
        for r in &reqs {
            assert_eq!(r.method, "POST");
            assert_eq!(r.url, "https://oc.test/graphql/v2");
            assert_eq!(header(r, "Personal-Token"), Some("tok-123"));
            assert_eq!(header(r, "content-type"), Some("application/json"));
        }
        let lookup = body(&reqs[0]);
        assert!(lookup["query"]
            .as_str()
            .unwrap()
            .contains("expense(expense: $expense)"));
        assert_eq!(lookup["variables"], json!({"expense": {"legacyId": 42}}));
        let mutation = body(&reqs[1]);
        assert!(mutation["query"]
            .as_str()
            .unwrap()
            .contains("processExpense("));
        assert_eq!(
            mutation["variables"],
            json!({"expense": {"legacyId": 42}, "action": "APPROVE", "message": null})
        );
    }

    #[test]
    fn rejecting_sends_reject_with_the_message() {
        let http = FakeHttp::answering(vec![
            expense_answer(7, "green-fund", "PENDING"),
            processed(7, "REJECTED"),
        ]);
        let out = act(
            &http,
            &config(),
            "reject-expense",
            json!({"expense_id": 7, "message": "no receipt"}),
        )
        .unwrap();
        assert_eq!(out, json!({"expense_id": 7, "status": "REJECTED"}));
        let mutation = body(&http.requests()[1]);
        assert_eq!(mutation["variables"]["action"], "REJECT");
        assert_eq!(mutation["variables"]["message"], "no receipt");
    }

    #[test]
    fn the_default_api_url_is_open_collectives() {
        let mut cfg = config();
        cfg.as_object_mut().unwrap().remove("api_url");
        let http = FakeHttp::answering(vec![json_response(
            200,
            json!({"data": {"account": {"id": "a", "slug": "green-fund"}}}),
        )]);
        run(&OpenCollective::new(), &http, &cfg, RemoteOp::Probe).unwrap();
        assert_eq!(
            http.requests()[0].url,
            "https://api.opencollective.com/graphql/v2"
        );
    }

    #[test]
    fn an_expense_of_another_collective_is_refused_before_any_mutation() {
        let http = FakeHttp::answering(vec![expense_answer(9, "other-fund", "PENDING")]);
        let err = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 9}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::ExpenseNotInCollective);
        assert!(err.message.contains("other-fund"), "{}", err.message);
        assert_eq!(http.requests().len(), 1, "no processExpense was sent");
    }

    #[test]
    fn an_expense_of_one_of_the_collectives_projects_is_accepted() {
        let http = FakeHttp::answering(vec![
            json_response(
                200,
                json!({"data": {"expense": {"legacyId": 5, "status": "PENDING",
                    "account": {"slug": "green-fund-garden", "parent": {"slug": "green-fund"}}}}}),
            ),
            processed(5, "APPROVED"),
        ]);
        let out = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 5}),
        )
        .unwrap();
        assert_eq!(out["status"], "APPROVED");
    }

    #[test]
    fn a_missing_expense_is_a_platform_error() {
        let http =
            FakeHttp::answering(vec![json_response(200, json!({"data": {"expense": null}}))]);
        let err = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 404}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformError);
        assert!(err.message.contains("404"), "{}", err.message);
    }

    #[test]
    fn graphql_errors_with_status_200_become_platform_errors_quoting_the_message() {
        let http = FakeHttp::answering(vec![
            expense_answer(3, "green-fund", "APPROVED"),
            json_response(
                200,
                json!({"errors": [{"message": "Can not approve expense in current status",
                    "extensions": {"code": "Forbidden"}}], "data": null}),
            ),
        ]);
        let err = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 3}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformError);
        assert!(
            err.message
                .contains("Can not approve expense in current status"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_refused_token_is_reported_without_echoing_the_body() {
        let http = FakeHttp::answering(vec![json_response(
            401,
            json!({"error": {"code": 401, "type": "unauthorized",
                "message": "Invalid Personal Token (Api Key): tok-123"}}),
        )]);
        let err = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 1}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformError);
        assert!(err.message.contains("401"), "{}", err.message);
        assert!(
            !err.message.contains("tok-123"),
            "token leaked: {}",
            err.message
        );
    }

    #[test]
    fn server_failures_that_reach_the_plugin_are_platform_unavailable() {
        let http = FakeHttp::answering(vec![json_response(500, json!({"message": "boom"}))]);
        let err = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 1}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformUnavailable);

        let http = FakeHttp::answering(vec![Err(HttpError::CircuitOpen { retry_in_ms: 10 })]);
        let err = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 1}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::CircuitOpen);
    }

    #[test]
    fn answers_that_are_not_graphql_are_platform_errors() {
        for answer in [
            json_response(200, json!({"unexpected": true})),
            Ok(HttpResponse {
                status: 200,
                headers: vec![],
                body: b"<html>".to_vec(),
            }),
            json_response(404, json!({"message": "no such route"})),
        ] {
            let http = FakeHttp::answering(vec![answer]);
            let err = act(
                &http,
                &config(),
                "approve-expense",
                json!({"expense_id": 1}),
            )
            .unwrap_err();
            assert_eq!(err.code, ErrorCode::PlatformError, "{err:?}");
        }
        let http = FakeHttp::answering(vec![
            expense_answer(1, "green-fund", "PENDING"),
            json_response(200, json!({"data": {"processExpense": {"legacyId": 1}}})),
        ]);
        let err = act(
            &http,
            &config(),
            "approve-expense",
            json!({"expense_id": 1}),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformError);
    }

    #[test]
    fn missing_settings_are_named_and_nothing_is_sent() {
        for missing in ["token", "collective_slug"] {
            let mut cfg = config();
            cfg.as_object_mut().unwrap().remove(missing);
            let http = FakeHttp::default();
            let err = act(&http, &cfg, "approve-expense", json!({"expense_id": 1})).unwrap_err();
            assert_eq!(err.code, ErrorCode::PlatformNotConfigured);
            assert_eq!(
                err.field.as_deref(),
                Some(format!("settings.{missing}").as_str())
            );
            assert!(http.requests().is_empty());
        }
    }

    #[test]
    fn bad_expense_ids_are_refused_without_a_call() {
        for params in [
            json!({}),
            json!({"expense_id": 0}),
            json!({"expense_id": "12"}),
            json!({"expense_id": 3_000_000_000_i64}),
        ] {
            let http = FakeHttp::default();
            let err = act(&http, &config(), "approve-expense", params).unwrap_err();
            assert_eq!(err.code, ErrorCode::SchemaViolation);
            assert_eq!(err.field.as_deref(), Some("expense_id"));
            assert!(http.requests().is_empty());
        }
    }

    #[test]
    fn the_action_without_an_observation_is_an_error() {
        let p = OpenCollective::new();
        let cfg = config();
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", &cfg, &mut state, 0);
        let err = p
            .action(&mut ctx, "approve-expense", &json!({"expense_id": 1}))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PlatformError);
    }

    #[test]
    fn the_probe_reads_the_collective_account() {
        let p = OpenCollective::new();
        let http = FakeHttp::answering(vec![json_response(
            200,
            json!({"data": {"account": {"id": "a1", "slug": "green-fund"}}}),
        )]);
        run(&p, &http, &config(), RemoteOp::Probe).unwrap();
        let req = &http.requests()[0];
        assert_eq!(header(req, "Personal-Token"), Some("tok-123"));
        let sent = body(req);
        assert!(sent["query"]
            .as_str()
            .unwrap()
            .contains("account(slug: $slug)"));
        assert_eq!(sent["variables"], json!({"slug": "Green-Fund"}));

        let http = FakeHttp::answering(vec![json_response(
            200,
            json!({"errors": [{"message": "Account Not Found"}], "data": {"account": null}}),
        )]);
        let err = run(&p, &http, &config(), RemoteOp::Probe).unwrap_err();
        assert!(err.message.contains("Account Not Found"), "{}", err.message);

        let http =
            FakeHttp::answering(vec![json_response(200, json!({"data": {"account": null}}))]);
        assert!(run(&p, &http, &config(), RemoteOp::Probe).is_err());
    }

    #[test]
    fn processes_and_refreshes_have_no_network_half() {
        let p = OpenCollective::new();
        let http = FakeHttp::default();
        let cfg = config();
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

    fn hook(query: Option<&str>, payload: &Value) -> WebhookRequest {
        WebhookRequest {
            headers: vec![("content-type".into(), "application/json".into())],
            query: query.map(str::to_owned),
            body: payload.to_string().into_bytes(),
        }
    }

    fn expense_payload(kind: &str) -> Value {
        json!({
            "createdAt": "2024-05-01T10:00:00.000Z",
            "id": 991,
            "type": format!("collective.expense.{kind}"),
            "CollectiveId": 77,
            "data": {
                "expense": {"idV2": "pub-42", "id": 42, "description": "Seeds", "amount": 1250,
                    "currency": "USD", "formattedAmount": "$12.50"},
                "fromCollective": {"id": 5, "type": "USER", "slug": "alice", "name": "Alice"},
                "collective": {"id": 77, "type": "COLLECTIVE", "slug": "Green-Fund", "name": "Green Fund"}
            }
        })
    }

    fn deliver(config: &Value, req: &WebhookRequest) -> Result<Vec<Event>, PluginError> {
        let p = OpenCollective::new();
        let mut state = Value::Null;
        let mut ctx = ActionContext::new("c", config, &mut state, 0);
        p.webhook(&mut ctx, req)?;
        Ok(ctx.events)
    }

    #[test]
    fn an_expense_created_webhook_with_the_secret_becomes_an_event() {
        let events = deliver(
            &config(),
            &hook(Some("secret=s3cret"), &expense_payload("created")),
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.event_type, "expense_created");
        assert_eq!(
            e.data,
            json!({
                "expense_id": 42, "expense_public_id": "pub-42", "description": "Seeds",
                "amount": 1250, "currency": "USD", "status": "PENDING", "collective": "Green-Fund",
                "payee": "alice", "activity_id": 991, "created_at": "2024-05-01T10:00:00.000Z"
            })
        );
        assert_eq!(
            e.initiator,
            json!({"user_id": "alice", "provider": "opencollective"})
        );
    }

    #[test]
    fn approved_rejected_and_paid_carry_their_status_and_no_payee_initiator() {
        for (kind, status) in [
            ("approved", "APPROVED"),
            ("rejected", "REJECTED"),
            ("paid", "PAID"),
        ] {
            let events = deliver(
                &config(),
                &hook(Some("secret=s3cret"), &expense_payload(kind)),
            )
            .unwrap();
            assert_eq!(events[0].event_type, format!("expense_{kind}"));
            assert_eq!(events[0].data["status"], status);
            assert_eq!(events[0].initiator, json!({}));
        }
        let events = deliver(
            &config(),
            &hook(Some("secret=s3cret"), &expense_payload("updated")),
        )
        .unwrap();
        assert_eq!(events[0].data["status"], Value::Null);
    }

    #[test]
    fn other_activities_are_accepted_without_events() {
        let member = json!({"type": "collective.member.created", "id": 1, "data": {"member": {"role": "BACKER"}}});
        for payload in [
            member,
            expense_payload("processing"),
            json!({"type": "collective.expense.created"}),
        ] {
            let events = deliver(&config(), &hook(Some("secret=s3cret"), &payload)).unwrap();
            assert!(events.is_empty(), "{payload}");
        }
        let not_json = WebhookRequest {
            headers: vec![],
            query: Some("secret=s3cret".into()),
            body: b"ping".to_vec(),
        };
        assert!(deliver(&config(), &not_json).unwrap().is_empty());
    }

    #[test]
    fn a_missing_or_wrong_secret_is_refused() {
        for query in [
            None,
            Some("secret=nope"),
            Some("secret="),
            Some("other=s3cret"),
            Some("secret=s3cret2"),
        ] {
            let err = deliver(&config(), &hook(query, &expense_payload("created"))).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidSignature, "{query:?}");
        }
        let mut cfg = config();
        cfg.as_object_mut().unwrap().remove("webhook_secret");
        let err = deliver(&cfg, &hook(Some("secret="), &expense_payload("created"))).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidSignature);
        assert!(err.message.contains("webhook_secret"), "{}", err.message);
    }

    #[test]
    fn a_percent_encoded_secret_matches() {
        let mut cfg = config();
        cfg["webhook_secret"] = json!("a b&c");
        let events = deliver(
            &cfg,
            &hook(Some("secret=a%20b%26c"), &expense_payload("created")),
        )
        .unwrap();
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn routing_uses_the_collective_slug_lowercased() {
        let p = OpenCollective::new();
        assert_eq!(p.platform_id(&config()).as_deref(), Some("green-fund"));
        assert_eq!(p.platform_id(&json!({"collective_slug": ""})), None);
        assert_eq!(p.platform_id(&json!({})), None);
        assert_eq!(
            p.webhook_route(&hook(None, &expense_payload("created")))
                .as_deref(),
            Some("green-fund")
        );
        assert_eq!(
            p.webhook_route(&hook(None, &json!({"type": "x", "data": {}}))),
            None
        );
        let not_json = WebhookRequest {
            headers: vec![],
            query: None,
            body: b"{".to_vec(),
        };
        assert_eq!(p.webhook_route(&not_json), None);
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn the_metadata_declares_actions_events_and_secret_settings() {
        let p = OpenCollective::new();
        let m = p.meta();
        assert!(m.load_by_default);
        assert!(m.action("approve-expense").is_some() && m.action("reject-expense").is_some());
        let events: Vec<_> = m.events.iter().map(|e| e.event_type).collect();
        for e in [
            "expense_created",
            "expense_approved",
            "expense_rejected",
            "expense_paid",
            "expense_updated",
        ] {
            assert!(events.contains(&e), "{e}");
        }
        assert_eq!(m.config_schema["properties"]["token"]["x-secret"], true);
        assert_eq!(
            m.config_schema["properties"]["webhook_secret"]["x-secret"],
            true
        );
    }

    #[test]
    fn settings_need_an_http_base_url_and_a_slug_that_is_one_segment() {
        let p = OpenCollective::new();
        assert!(p
            .check_settings(&json!({"collective_slug": "Green-Fund"}))
            .is_ok());
        for (settings, field) in [
            (json!({"collective_slug": "green/fund"}), "collective_slug"),
            (json!({"collective_slug": "green fund"}), "collective_slug"),
            (json!({"collective_slug": ""}), "collective_slug"),
            (
                json!({"api_url": "https://api.example/?debug=1"}),
                "api_url",
            ),
        ] {
            let err = p.check_settings(&settings).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidSettings, "{settings}");
            assert_eq!(err.field.as_deref(), Some(field), "{settings}");
        }
        let registry = crate::builtin::all().unwrap();
        let config = registry.config_schema("opencollective").unwrap();
        assert!(config
            .check(&json!({"api_url": "ftp://example.com"}), "")
            .is_err());
    }
}
