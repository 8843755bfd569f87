//! A local stand-in for Open Collective's GraphQL API v2, for the `opencollective` plugin's
//! end-to-end tests.
//!
//! It serves `POST /graphql/v2` the way opencollective-api does for the three operations the
//! plugin sends, told apart by their root field rather than by a GraphQL parser: the
//! `expense(expense: ExpenseReferenceInput)` query, the `processExpense(expense, action, message)`
//! mutation (APPROVE allowed from PENDING, REJECTED or INCOMPLETE and REJECT from PENDING or
//! UNVERIFIED, as `canApprove` / `canReject` decide, otherwise a GraphQL error with HTTP 200), and
//! `account(slug)`. An unknown `Personal-Token` (or `Api-Key`) gets the 401 of OC's
//! `checkPersonalToken` middleware, which echoes the token; a mutation without a token gets
//! "You need to be logged in to manage expenses." It keeps collectives and expenses in memory,
//! records every request, can be told to answer 5xx/429 (with `Retry-After`) for a while, and
//! builds webhook bodies in the shape of `sanitizeActivityForWebhookPayload`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Value};

/// One request the stand-in received.
#[derive(Clone, Debug)]
pub struct OcRequest {
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    /// The root field the operation was recognised as (`expense`, `processExpense`, `account`),
    /// or `unknown`.
    pub operation: String,
    /// The status the stand-in answered.
    pub answered: u16,
}

impl OcRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn variables(&self) -> &Value {
        &self.body["variables"]
    }
}

#[derive(Clone, Debug)]
struct Account {
    legacy_id: i64,
    name: String,
    parent: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Expense {
    pub legacy_id: i64,
    pub account: String,
    pub status: String,
    pub description: String,
    pub amount: i64,
    pub currency: String,
    pub payee: String,
    /// Messages given with each processExpense, in order.
    pub messages: Vec<Option<String>>,
}

#[derive(Clone, Debug)]
struct Failure {
    /// Only requests for this root field fail (`None`: any request).
    operation: Option<String>,
    status: u16,
    retry_after_s: Option<u64>,
}

#[derive(Default)]
struct Shared {
    token: String,
    accounts: BTreeMap<String, Account>,
    expenses: BTreeMap<i64, Expense>,
    next_id: i64,
    next_activity: i64,
    requests: Vec<OcRequest>,
    failures: VecDeque<Failure>,
    fail_always: Option<Failure>,
}

/// The running stand-in.
pub struct OpenCollectiveStandin {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl OpenCollectiveStandin {
    /// Starts on a free port, accepting `token` as the one valid personal token.
    pub async fn start(token: &str) -> OpenCollectiveStandin {
        let shared = Arc::new(Mutex::new(Shared {
            token: token.to_string(),
            next_id: 1000,
            next_activity: 50_000,
            ..Shared::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Open Collective stand-in");
        let port = listener.local_addr().expect("local address").port();
        let app = axum::Router::new()
            .route("/graphql/v2", post(graphql))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the Open Collective stand-in serves");
        });
        OpenCollectiveStandin {
            port,
            shared,
            server,
        }
    }

    /// The `api_url` setting that points the plugin here.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("stand-in lock")
    }

    /// Adds a collective (or, with `parent`, a project of one).
    pub fn add_account(&self, slug: &str, parent: Option<&str>) {
        let mut s = self.lock();
        s.next_id += 1;
        let account = Account {
            legacy_id: s.next_id,
            name: format!("The {slug} account"),
            parent: parent.map(str::to_owned),
        };
        s.accounts.insert(slug.to_string(), account);
    }

    /// Submits a PENDING expense to `account`; answers its legacy id.
    pub fn add_expense(&self, account: &str, description: &str, amount: i64, payee: &str) -> i64 {
        let mut s = self.lock();
        assert!(
            s.accounts.contains_key(account),
            "add the account {account} first"
        );
        s.next_id += 1;
        let id = s.next_id;
        s.expenses.insert(
            id,
            Expense {
                legacy_id: id,
                account: account.to_string(),
                status: "PENDING".into(),
                description: description.to_string(),
                amount,
                currency: "USD".into(),
                payee: payee.to_string(),
                messages: Vec::new(),
            },
        );
        id
    }

    pub fn set_status(&self, expense: i64, status: &str) {
        self.lock()
            .expenses
            .get_mut(&expense)
            .expect("a known expense")
            .status = status.to_string();
    }

    pub fn expense(&self, id: i64) -> Option<Expense> {
        self.lock().expenses.get(&id).cloned()
    }

    pub fn requests(&self) -> Vec<OcRequest> {
        self.lock().requests.clone()
    }

    /// The operations received so far, in order.
    pub fn operations(&self) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .map(|r| r.operation.clone())
            .collect()
    }

    /// The next `n` requests for `operation` (e.g. `expense`; `None`: any, health probes
    /// included) are answered `status`, with `Retry-After` when given.
    pub fn fail_next(
        &self,
        operation: Option<&str>,
        n: usize,
        status: u16,
        retry_after_s: Option<u64>,
    ) {
        let mut s = self.lock();
        for _ in 0..n {
            s.failures.push_back(Failure {
                operation: operation.map(str::to_owned),
                status,
                retry_after_s,
            });
        }
    }

    /// Every request is answered `status` until [`Self::recover`].
    pub fn fail_always(&self, status: u16) {
        self.lock().fail_always = Some(Failure {
            operation: None,
            status,
            retry_after_s: None,
        });
    }

    pub fn recover(&self) {
        let mut s = self.lock();
        s.fail_always = None;
        s.failures.clear();
    }

    /// A webhook body for activity `collective.expense.<kind>` about `expense`, shaped as
    /// `sanitizeActivityForWebhookPayload` and `enrichActivityForWebhookPayload` shape it.
    pub fn expense_activity(&self, kind: &str, expense: i64) -> Value {
        let mut s = self.lock();
        s.next_activity += 1;
        let activity = s.next_activity;
        let e = s.expenses.get(&expense).expect("a known expense").clone();
        let collective = s.accounts.get(&e.account).expect("a known account").clone();
        let payee_id = 9_000 + e.payee.len() as i64;
        json!({
            "createdAt": "2024-05-01T10:00:00.000Z",
            "id": activity,
            "type": format!("collective.expense.{kind}"),
            "CollectiveId": collective.legacy_id,
            "data": {
                "expense": {
                    "idV2": public_id("expense", e.legacy_id),
                    "id": e.legacy_id,
                    "description": e.description,
                    "amount": e.amount,
                    "currency": e.currency,
                    "formattedAmount": format!("${:.2}", e.amount as f64 / 100.0),
                    "formattedAmountWithInterval": format!("${:.2}", e.amount as f64 / 100.0)
                },
                "fromCollective": {
                    "idV2": public_id("account", payee_id),
                    "id": payee_id,
                    "type": "USER",
                    "slug": e.payee,
                    "name": e.payee
                },
                "collective": {
                    "idV2": public_id("account", collective.legacy_id),
                    "id": collective.legacy_id,
                    "type": if collective.parent.is_some() { "PROJECT" } else { "COLLECTIVE" },
                    "slug": e.account,
                    "name": collective.name
                }
            }
        })
    }
}

impl Drop for OpenCollectiveStandin {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            eprintln!("===== Open Collective stand-in on port {} =====", self.port);
            for r in self.requests().iter().take(100) {
                eprintln!("  {} -> {} {}", r.operation, r.answered, r.body);
            }
        }
    }
}

/// OC's public ids are opaque strings; a readable stand-in for them.
fn public_id(kind: &str, id: i64) -> String {
    format!("{kind}-{id:08}")
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A GraphQL error as Apollo answers it: HTTP 200, `data` null.
fn graphql_error(message: &str, code: &str) -> Response {
    json_answer(
        StatusCode::OK,
        json!({"errors": [{"message": message, "extensions": {"code": code}}], "data": null}),
    )
}

fn expense_json(e: &Expense, accounts: &BTreeMap<String, Account>) -> Value {
    let mut account = json!({"slug": e.account});
    if let Some(parent) = accounts.get(&e.account).and_then(|a| a.parent.clone()) {
        account["parent"] = json!({"slug": parent});
    }
    json!({
        "id": public_id("expense", e.legacy_id),
        "legacyId": e.legacy_id,
        "status": e.status,
        "description": e.description,
        "amount": e.amount,
        "currency": e.currency,
        "account": account,
        "payee": {"slug": e.payee}
    })
}

fn expense_reference(variables: &Value) -> Option<i64> {
    let reference = &variables["expense"];
    reference["legacyId"].as_i64().or_else(|| {
        reference["id"]
            .as_str()
            .and_then(|id| id.strip_prefix("expense-"))
            .and_then(|n| n.parse().ok())
    })
}

fn operation_of(query: &str) -> &'static str {
    if query.contains("processExpense") {
        "processExpense"
    } else if query.contains("expense(") {
        "expense"
    } else if query.contains("account(") {
        "account"
    } else {
        "unknown"
    }
}

async fn graphql(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = shared.lock().expect("stand-in lock");
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let operation = operation_of(parsed["query"].as_str().unwrap_or_default());
    let recorded_headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let response = answer(&mut s, &headers, &parsed, operation);
    s.requests.push(OcRequest {
        headers: recorded_headers,
        body: parsed,
        operation: operation.to_string(),
        answered: response.status().as_u16(),
    });
    response
}

fn answer(s: &mut Shared, headers: &HeaderMap, body: &Value, operation: &str) -> Response {
    let queued = s
        .failures
        .iter()
        .position(|f| f.operation.as_deref().is_none_or(|op| op == operation));
    let failure = queued
        .and_then(|i| s.failures.remove(i))
        .or_else(|| s.fail_always.clone());
    if let Some(f) = failure {
        let mut resp = json_answer(
            StatusCode::from_u16(f.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            json!({"error": {"code": f.status, "message": "injected failure"}}),
        );
        if let Some(secs) = f.retry_after_s {
            resp.headers_mut().insert(
                "retry-after",
                HeaderValue::from_str(&secs.to_string()).expect("a header value"),
            );
        }
        return resp;
    }

    let token = headers
        .get("personal-token")
        .or_else(|| headers.get("api-key"))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let Some(token) = &token {
        if *token != s.token {
            return json_answer(
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": 401, "type": "unauthorized",
                    "message": format!("Invalid Personal Token (Api Key): {token}")}}),
            );
        }
    }
    if !body["query"].is_string() {
        return json_answer(
            StatusCode::BAD_REQUEST,
            json!({"errors": [{"message": "POST body missing, invalid Content-Type, or JSON object has no keys."}]}),
        );
    }
    let variables = &body["variables"];

    match operation {
        "expense" => {
            let found = expense_reference(variables)
                .and_then(|id| s.expenses.get(&id))
                .map(|e| expense_json(e, &s.accounts));
            json_answer(
                StatusCode::OK,
                json!({"data": {"expense": found.unwrap_or(Value::Null)}}),
            )
        }
        "account" => {
            // Slugs are lower case on Open Collective, which lowercases the one asked for.
            let slug = variables["slug"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            match s.accounts.get(&slug) {
                Some(a) => json_answer(
                    StatusCode::OK,
                    json!({"data": {"account": {"id": public_id("account", a.legacy_id), "slug": slug}}}),
                ),
                None => json_answer(
                    StatusCode::OK,
                    json!({"errors": [{"message": "Account Not Found", "extensions": {"code": "NotFound"}}],
                        "data": {"account": null}}),
                ),
            }
        }
        "processExpense" => {
            if token.is_none() {
                return graphql_error("You need to be logged in to manage expenses.", "Unauthorized");
            }
            let action = variables["action"].as_str().unwrap_or_default();
            let (allowed, to): (&[&str], &str) = match action {
                "APPROVE" => (&["PENDING", "REJECTED", "INCOMPLETE"], "APPROVED"),
                "REJECT" => (&["PENDING", "UNVERIFIED"], "REJECTED"),
                "UNAPPROVE" => (&["APPROVED", "ERROR"], "PENDING"),
                other => {
                    return graphql_error(
                        &format!(
                            "Variable \"$action\" got invalid value \"{other}\"; Value \"{other}\" does not exist in \"ExpenseProcessAction\" enum."
                        ),
                        "BAD_USER_INPUT",
                    )
                }
            };
            let Some(id) = expense_reference(variables) else {
                return graphql_error("Not Found", "NotFound");
            };
            let accounts = s.accounts.clone();
            let Some(e) = s.expenses.get_mut(&id) else {
                return graphql_error("Not Found", "NotFound");
            };
            if !allowed.contains(&e.status.as_str()) {
                let verb = action.to_ascii_lowercase();
                return graphql_error(
                    &format!("Can not {verb} expense in current status"),
                    "Forbidden",
                );
            }
            e.status = to.to_string();
            e.messages
                .push(variables["message"].as_str().map(str::to_owned));
            let processed = expense_json(e, &accounts);
            json_answer(
                StatusCode::OK,
                json!({"data": {"processExpense": processed}}),
            )
        }
        _ => graphql_error(
            "Cannot query field on type \"Query\" (the stand-in knows expense, processExpense and account).",
            "GRAPHQL_VALIDATION_FAILED",
        ),
    }
}
