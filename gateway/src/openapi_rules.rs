//! What the OpenAPI document says about every route beyond its handler's annotation, derived
//! from the route table so a fuzzer can trust it: the bearer scheme and 401 on token routes,
//! the statuses the layers every request passes through can answer (framing of the body,
//! admission, cluster routing, the connection cap), each route's own error codes per status,
//! request bodies that may be empty (read as `{}`), and the constraints on slugs and paging.

use agora_plugins::ErrorCode;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::routes::{Partition, Route};

/// The community slug rule (`ErrorCode::InvalidSlug`).
pub(crate) const SLUG_PATTERN: &str = "^[-A-Za-z0-9_]{1,36}$";

use ErrorCode as C;

/// Codes every routed request can get from the layers around its handler.
const ANY_ROUTE: &[ErrorCode] = &[C::InvalidHeader, C::TooManyConnections, C::NotReady];
/// Codes a request running on its partition's owner can get (cluster routing, mailboxes,
/// storage).
const PARTITIONED: &[ErrorCode] = &[
    C::Overloaded,
    C::Unavailable,
    C::StorageFailed,
    C::NotOwner,
    C::ClusterUnavailable,
    C::OutcomeUnknown,
];
/// Codes of reading a JSON body.
const JSON_BODY: &[ErrorCode] = &[
    C::InvalidJson,
    C::InvalidBody,
    C::DuplicateKey,
    C::RequestTimeout,
    C::PayloadTooLarge,
];
/// Codes of reading a raw (webhook) body.
const RAW_BODY: &[ErrorCode] = &[C::InvalidBody, C::RequestTimeout, C::PayloadTooLarge];
/// Codes of a plugin's network half.
const PLATFORM: &[ErrorCode] = &[
    C::PlatformError,
    C::PlatformUnavailable,
    C::CircuitOpen,
    C::PlatformNotConfigured,
    C::PlatformRequestInvalid,
];
/// Codes of the `X-Metagov-Community` header (an unknown community is 400, as in Metagov).
const COMMUNITY_HEADER: &[ErrorCode] = &[C::MissingHeader, C::InvalidSlug, C::CommunityNotFound];
/// Codes of a settings change.
const SETTINGS: &[ErrorCode] = &[
    C::InvalidRequest,
    C::SchemaViolation,
    C::InvalidSettings,
    C::UnknownPlugin,
    C::PluginDisabled,
    C::HookFailed,
];

/// A route's own codes, beyond the layers' (by status, from the code unless the route keeps
/// Metagov's status: see [`status_on`]).
fn own_codes(method: &str, path: &str) -> Vec<ErrorCode> {
    let mut v: Vec<ErrorCode> = Vec::new();
    match (method, path) {
        ("POST", "/api/internal/community") => {
            v.extend([C::CommunityExists, C::InvalidSlug]);
            v.extend(SETTINGS);
        }
        ("PUT", "/api/internal/community/{slug}") => {
            v.extend([C::CommunityNotFound, C::InvalidSlug]);
            v.extend(SETTINGS);
        }
        ("GET" | "DELETE", "/api/internal/community/{slug}") => {
            v.extend([C::CommunityNotFound, C::InvalidSlug]);
        }
        ("POST", "/api/internal/plugin/{name}") => {
            v.extend(COMMUNITY_HEADER);
            v.extend(SETTINGS);
        }
        ("DELETE", "/api/internal/plugin/{name}/{id}") => {
            v.extend([C::PluginInstanceNotFound, C::UnknownPlugin, C::HookFailed]);
        }
        ("GET", "/api/internal/plugin/{name}/metadata") => v.push(C::UnknownPlugin),
        ("POST", "/api/internal/action/{name}" | "/api/action/{name}") => {
            v.extend(COMMUNITY_HEADER);
            v.extend([
                C::InvalidRequest,
                C::UnknownPlugin,
                C::UnknownAction,
                C::PluginNotEnabled,
                C::PluginDisabled,
                C::SchemaViolation,
                C::InvalidSettings,
                C::Unsupported,
                C::ExpenseNotInCollective,
            ]);
            v.extend(PLATFORM);
        }
        ("POST", "/api/internal/process/{name}") => {
            v.extend(COMMUNITY_HEADER);
            v.extend([
                C::InvalidRequest,
                C::UnknownPlugin,
                C::UnknownProcessType,
                C::PluginNotEnabled,
                C::PluginDisabled,
                C::SchemaViolation,
                C::InvalidSettings,
                C::Unsupported,
            ]);
            v.extend(PLATFORM);
        }
        ("GET", "/api/internal/process/{name}/{id}") => v.push(C::ProcessNotFound),
        ("DELETE", "/api/internal/process/{name}/{id}") => {
            v.extend([C::ProcessNotFound, C::ProcessCompleted]);
            v.extend(PLATFORM);
        }
        ("POST", "/api/internal/process/{name}/{id}/ballots") => v.extend([
            C::InvalidRequest,
            C::ProcessNotFound,
            C::Unsupported,
            C::IneligibleVoter,
            C::VoteClosed,
            C::BallotAfterDeadline,
            C::AlreadyVoted,
            C::MalformedChoice,
            C::UnknownOption,
            C::DuplicateOption,
            C::TooManySelections,
            C::TooFewSelections,
            C::ScoreOutOfRange,
            C::NotAnInteger,
            C::NegativeAmount,
            C::OverBudget,
        ]),
        ("GET", "/api/internal/process/{name}/{id}/ballots") => {
            v.extend([C::ProcessNotFound, C::Unsupported, C::ResultsHidden]);
        }
        ("POST", "/api/hooks/{community}/{plugin}") => v.extend([
            C::InvalidSignature,
            C::InvalidRequest,
            C::CommunityNotFound,
            C::PluginNotEnabled,
            C::UnknownPlugin,
            C::PluginDisabled,
            C::InvalidSettings,
        ]),
        ("POST", "/api/hooks/{plugin}") => v.extend([
            C::InvalidSignature,
            C::InvalidRequest,
            C::UnknownPlugin,
            C::WebhookNotRoutable,
            C::PluginNotEnabled,
            C::PluginDisabled,
            C::InvalidSettings,
        ]),
        ("GET", "/api/v1/plugins/{name}" | "/api/v1/plugins/{name}/health") => {
            v.push(C::UnknownPlugin);
        }
        ("POST", "/api/v1/plugins/{name}/enable" | "/api/v1/plugins/{name}/disable")
        | ("PUT", "/api/v1/plugins/{name}/settings") => v.extend(SETTINGS),
        ("GET", "/api/v1/communities/{slug}/plugins/{name}/widgets/{widget}") => {
            v.extend([
                C::CommunityNotFound,
                C::InvalidSlug,
                C::UnknownPlugin,
                C::UnknownWidget,
                C::PluginNotEnabled,
                C::PluginDisabled,
            ]);
        }
        ("GET", p) if p.starts_with("/api/v1/communities/{slug}/plugins") => {
            v.extend([C::CommunityNotFound, C::InvalidSlug, C::UnknownPlugin]);
        }
        ("POST" | "PUT", p) if p.starts_with("/api/v1/communities/{slug}/plugins") => {
            v.extend([C::CommunityNotFound, C::InvalidSlug]);
            v.extend(SETTINGS);
        }
        ("GET", "/api/v1/plugin-audit-log") => v.push(C::InvalidQuery),
        ("GET", "/api/internal/events") => v.extend([C::InvalidQuery, C::InvalidSlug]),
        // 404 on a node without a manual clock.
        ("POST", "/api/internal/dev/clock") => {
            v.extend([C::InvalidRequest, C::ClockBackwards, C::RouteNotFound]);
        }
        ("GET", "/api/internal/dev/clock") => v.push(C::RouteNotFound),
        ("GET", "/readyz") => v.extend([C::NotReady, C::TaskStopped, C::StorageFailed]),
        (_, p) if is_governance(p) => {
            v.extend([
                C::MissingHeader,
                C::InvalidRequest,
                C::InvalidQuery,
                C::InvalidSlug,
                C::CommunityNotFound,
            ]);
            v.extend(governance_codes());
        }
        (_, p) if p.starts_with("/api/internal/identity/") => v.extend([
            C::InvalidRequest,
            C::InvalidQuery,
            C::InvalidSlug,
            C::CommunityNotFound,
            C::IdentityNotFound,
            C::AccountLinked,
            C::AccountNotFound,
        ]),
        (_, p) if p.starts_with("/api/v1/tokens") => {
            v.extend([C::InvalidRequest, C::TokenNotFound]);
        }
        ("GET", "/api/v1/communities") => v.push(C::InvalidQuery),
        ("GET", "/api/v1/communities/{slug}/processes") => {
            v.extend([C::InvalidQuery, C::InvalidSlug, C::CommunityNotFound]);
        }
        _ => {}
    }
    v
}

/// The governance engine's routes (sections 2-5, 7, 8 of the contract).
fn is_governance(path: &str) -> bool {
    const UNDER: &[&str] = &["/governance", "/actions", "/items", "/subscriptions"];
    path.strip_prefix("/api/v1/communities/{slug}")
        .is_some_and(|rest| UNDER.iter().any(|u| rest.starts_with(u)))
}

/// Every code the governance engine refuses with: the enum's governance block.
fn governance_codes() -> impl Iterator<Item = ErrorCode> {
    let all = ErrorCode::ALL;
    let first = all.iter().position(|c| *c == C::GovernanceExists);
    let last = all.iter().position(|c| *c == C::TooManyVotes);
    match (first, last) {
        (Some(f), Some(l)) if f <= l => all[f..=l].iter().copied(),
        _ => all[..0].iter().copied(),
    }
}

/// The statuses `code` is answered with on this route: its own, except where the route keeps
/// Metagov's (see the README's "Where Agora differs"); both where either may apply.
fn statuses_on(route: &Route, code: ErrorCode) -> Vec<u16> {
    let path = route.path;
    match code {
        C::CommunityNotFound if path.starts_with("/api/hooks/") => vec![404],
        C::CommunityNotFound if route.partition == Partition::CommunityHeader => vec![400],
        C::PluginNotEnabled | C::UnknownPlugin | C::InvalidSlug
            if path == "/api/hooks/{community}/{plugin}" =>
        {
            vec![404]
        }
        // The plugin is the resource in the path: 404 there, 400 where it is named otherwise.
        C::UnknownPlugin if path.contains("{name}") || path == "/api/hooks/{plugin}" => {
            vec![400, 404]
        }
        _ => vec![code.status()],
    }
}

/// Every error code the route can answer, by status (the layers' and its own).
pub(crate) fn codes_by_status(route: &Route, op: &Value) -> Vec<(u16, Vec<ErrorCode>)> {
    let mut codes: Vec<ErrorCode> = ANY_ROUTE.to_vec();
    if route.access != Access::Public {
        codes.push(C::Unauthorized);
        codes.push(C::Forbidden);
    }
    if route.partition != Partition::Node {
        codes.extend(PARTITIONED);
    }
    if route.path.contains('{') {
        codes.push(C::InvalidPath);
    }
    if op.get("requestBody").is_some() {
        codes.extend(if route.path.starts_with("/api/hooks/") {
            RAW_BODY
        } else {
            JSON_BODY
        });
    }
    codes.extend(own_codes(route.method.as_str(), route.path));
    let mut by: std::collections::BTreeMap<u16, Vec<ErrorCode>> = Default::default();
    for c in codes {
        for status in statuses_on(route, c) {
            let list = by.entry(status).or_default();
            if !list.contains(&c) {
                list.push(c);
            }
        }
    }
    by.into_iter().collect()
}

/// Applies the rules to one operation of the document.
pub(crate) fn harden(route: &Route, op: &mut Value) {
    let by_status = codes_by_status(route, op);
    let Some(obj) = op.as_object_mut() else {
        return;
    };
    if route.access != Access::Public {
        obj.insert("security".into(), json!([{"bearer": []}]));
    }
    // An empty body is read as `{}` by the JSON extractor.
    if let Some(body) = obj.get_mut("requestBody").and_then(Value::as_object_mut) {
        if !route.path.starts_with("/api/hooks/") {
            body.insert("required".into(), json!(false));
        }
    }
    let responses = obj
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(responses) = responses {
        for (status, codes) in by_status {
            add_codes(responses, status, &codes);
        }
    }
    if let Some(params) = obj.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params {
            constrain(p);
        }
    }
}

/// Documents `codes` under `status`, keeping what the annotation said.
fn add_codes(responses: &mut Map<String, Value>, status: u16, codes: &[ErrorCode]) {
    let listed: Vec<String> = codes.iter().map(|c| format!("`{}`", c.as_str())).collect();
    let codes_line = format!("codes: {}", listed.join(", "));
    let entry = responses
        .entry(status.to_string())
        .or_insert_with(|| json!({"description": ""}));
    let Some(entry) = entry.as_object_mut() else {
        return;
    };
    let before = entry
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let description = if before.is_empty() {
        codes_line
    } else {
        format!("{before}; {codes_line}")
    };
    entry.insert("description".into(), json!(description));
    entry.insert(
        "content".into(),
        json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}),
    );
    entry.insert(
        "x-error-codes".into(),
        json!(codes.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
    );
}

/// The constraints of a parameter the API checks.
fn constrain(param: &mut Value) {
    let name = param["name"].as_str().unwrap_or_default().to_string();
    let place = param["in"].as_str().unwrap_or_default().to_string();
    let schema = &mut param["schema"];
    if !schema.is_object() {
        return;
    }
    match (place.as_str(), name.as_str()) {
        ("path", "slug" | "community") | ("header", "X-Metagov-Community") => {
            schema["pattern"] = json!(SLUG_PATTERN);
        }
        ("query", "limit") => {
            schema["minimum"] = json!(1);
            schema["maximum"] = json!(1000);
        }
        ("query", "cursor") => schema["minLength"] = json!(1),
        // `AgentId::parse`: 1 to 200 bytes, not blank. JSON Schema counts characters, so a
        // value of 200 non-ASCII characters fits the schema and is still refused: the schema
        // may take more than the API, never less.
        ("header", "X-Agora-Actor") => {
            schema["minLength"] = json!(1);
            schema["maxLength"] = json!(agora_actors::AGENT_ID_MAX);
            schema["pattern"] = json!("\\S");
        }
        ("path", "item" | "action") => {
            schema["pattern"] = json!(crate::openapi_bodies::NUMERIC_ID_PATTERN);
        }
        _ => {}
    }
}

/// The bearer scheme, and `choice` typed by vote method.
pub(crate) fn components(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The driver token (AGORA_DRIVER_TOKEN); a --dev node asks for none."
        }
    });
    doc["components"]["schemas"]["BallotIn"]["properties"]["choice"] = json!({
        "description": "Typed by the vote's method.",
        "oneOf": [
            {"title": "proposal, consent, count", "type": "string"},
            {"title": "choice, approval, ranked (in order of preference)", "type": "array", "items": {"type": "string"}},
            {"title": "score, dot, quadratic: option → amount", "type": "object", "additionalProperties": {"type": "number"}}
        ]
    });
}
