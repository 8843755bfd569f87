//! A local stand-in for the GitHub REST API, for the `github` plugin's end-to-end tests.
//!
//! It serves the endpoints the plugin uses with GitHub's documented shapes (docs.github.com/rest:
//! "Get a repository", "Create an issue", "Create an issue comment", "Get an issue"): 201 with
//! the created resource and a `Location`, 401 `Bad credentials` for a wrong token, 404 `Not
//! Found` for unknown repositories and issues, 422 `Validation Failed` with an `errors` list,
//! 403 without a `User-Agent` and 400 for an unsupported `X-GitHub-Api-Version`, like the real
//! API. State lives in memory; every request is recorded; failures (500/503, 429 with
//! `Retry-After`) can be injected for the next N requests or until healed. [`signature`] and
//! the `*_event` builders produce webhook deliveries shaped like GitHub's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub use super::Seen;

/// The login the stand-in's token belongs to.
pub const LOGIN: &str = "agora-bot";
/// The API versions the stand-in accepts in `X-GitHub-Api-Version`.
const API_VERSIONS: &[&str] = &["2022-11-28"];
const DOCS: &str = "https://docs.github.com/rest";

#[derive(Clone, Debug)]
struct Failure {
    status: u16,
    retry_after_secs: Option<u64>,
    /// `None`: until healed.
    remaining: Option<u32>,
}

struct Repo {
    id: u64,
    full_name: String,
    collaborators: Vec<String>,
    /// Issues by number (pull requests would share the sequence; the stand-in has none).
    issues: Vec<Value>,
    comments: Vec<Value>,
}

struct Inner {
    token: String,
    repos: HashMap<String, Repo>,
    requests: Vec<Seen>,
    failures: VecDeque<Failure>,
    next_id: u64,
    rate_remaining: u64,
}

/// A GitHub API on a free local port.
pub struct GithubStandin {
    port: u16,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl GithubStandin {
    /// Starts a stand-in that accepts `token` (as `Bearer` or `token`) and knows no repository.
    pub async fn start(token: &str) -> GithubStandin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the GitHub stand-in");
        let port = listener.local_addr().expect("local address").port();
        let inner = Arc::new(Mutex::new(Inner {
            token: token.to_string(),
            repos: HashMap::new(),
            requests: Vec::new(),
            failures: VecDeque::new(),
            next_id: 1_000_000,
            rate_remaining: 5000,
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the GitHub stand-in serves");
        });
        GithubStandin {
            port,
            inner,
            server,
        }
    }

    /// The API root to put in the plugin's `api_url` setting.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("stand-in lock")
    }

    /// Creates repository `owner/name`; the token's user may be assigned to its issues.
    pub fn add_repo(&self, owner: &str, name: &str) {
        let mut inner = self.lock();
        let id = inner.next();
        let full_name = format!("{owner}/{name}");
        inner.repos.insert(
            full_name.to_lowercase(),
            Repo {
                id,
                full_name,
                collaborators: vec![LOGIN.to_string()],
                issues: Vec::new(),
                comments: Vec::new(),
            },
        );
    }

    /// Lets `login` be assigned to issues of `full_name`.
    pub fn add_collaborator(&self, full_name: &str, login: &str) {
        let mut inner = self.lock();
        let repo = inner
            .repos
            .get_mut(&full_name.to_lowercase())
            .expect("a known repository");
        repo.collaborators.push(login.to_string());
    }

    /// Opens an issue as if someone had done it on github.com; answers the issue JSON.
    pub fn open_issue(&self, full_name: &str, title: &str, user: &str) -> Value {
        let mut inner = self.lock();
        inner
            .create_issue(
                &full_name.to_lowercase(),
                &json!({"title": title}),
                user,
                &self.url(),
            )
            .expect("a known repository and a valid issue")
    }

    /// The next `n` API requests answer `status` (with `Retry-After: <secs>` when given).
    pub fn fail_next(&self, n: u32, status: u16, retry_after_secs: Option<u64>) {
        self.lock().failures.push_back(Failure {
            status,
            retry_after_secs,
            remaining: Some(n),
        });
    }

    /// Every API request answers `status` until [`GithubStandin::heal`].
    pub fn fail_always(&self, status: u16) {
        self.lock().failures.push_back(Failure {
            status,
            retry_after_secs: None,
            remaining: None,
        });
    }

    /// Drops every injected failure.
    pub fn heal(&self) {
        self.lock().failures.clear();
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.lock().requests.clone()
    }

    /// The requests with this method and path.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    pub fn issues(&self, full_name: &str) -> Vec<Value> {
        self.lock()
            .repos
            .get(&full_name.to_lowercase())
            .map(|r| r.issues.clone())
            .unwrap_or_default()
    }

    pub fn comments(&self, full_name: &str) -> Vec<Value> {
        self.lock()
            .repos
            .get(&full_name.to_lowercase())
            .map(|r| r.comments.clone())
            .unwrap_or_default()
    }
}

impl Drop for GithubStandin {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            let requests = self.requests();
            eprintln!(
                "===== GitHub stand-in on port {} received {} request(s) =====",
                self.port,
                requests.len()
            );
            for r in requests.iter().take(100) {
                eprintln!(
                    "  {} {} -> {} {}",
                    r.method,
                    r.path,
                    r.answered,
                    r.json.as_ref().map(Value::to_string).unwrap_or_default()
                );
            }
        }
    }
}

/// A refusal in GitHub's shape.
#[derive(Debug)]
struct ApiError {
    status: u16,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

fn error(status: u16, message: &str) -> ApiError {
    ApiError {
        status,
        body: json!({"message": message, "documentation_url": DOCS, "status": status.to_string()}),
        headers: Vec::new(),
    }
}

fn validation_failed(errors: Value, docs: &str) -> ApiError {
    ApiError {
        status: 422,
        body: json!({
            "message": "Validation Failed",
            "errors": errors,
            "documentation_url": docs,
            "status": "422",
        }),
        headers: Vec::new(),
    }
}

impl Inner {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The injected failure for this request, if one is due.
    fn take_failure(&mut self) -> Option<ApiError> {
        let failure = self.failures.front_mut()?;
        let (status, retry_after) = (failure.status, failure.retry_after_secs);
        if let Some(remaining) = failure.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.failures.pop_front();
            }
        }
        let message = match status {
            429 => "API rate limit exceeded for installation.",
            500 => "Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Injected failure",
        };
        let mut err = error(status, message);
        if let Some(secs) = retry_after {
            err.headers.push(("retry-after", secs.to_string()));
        }
        if status == 429 {
            err.headers.push(("x-ratelimit-remaining", "0".into()));
        }
        Some(err)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if headers.get("user-agent").is_none() {
            return Err(error(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
            ));
        }
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth.is_empty() {
            return Err(error(401, "Requires authentication"));
        }
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("token "))
            .unwrap_or_default();
        if token != self.token {
            return Err(error(401, "Bad credentials"));
        }
        if let Some(version) = headers.get("x-github-api-version") {
            let version = version.to_str().unwrap_or_default();
            if !API_VERSIONS.contains(&version) {
                return Err(error(
                    400,
                    &format!("API version {version} is not supported."),
                ));
            }
        }
        Ok(())
    }

    fn repo_json(repo: &Repo, base: &str) -> Value {
        let (owner, name) = repo.full_name.split_once('/').unwrap_or(("", ""));
        json!({
            "id": repo.id,
            "node_id": format!("R_kgDO{}", repo.id),
            "name": name,
            "full_name": repo.full_name,
            "private": false,
            "owner": {"login": owner, "id": 1, "type": "Organization"},
            "html_url": format!("https://github.com/{}", repo.full_name),
            "url": format!("{base}/repos/{}", repo.full_name),
            "has_issues": true,
            "open_issues_count": repo.issues.iter().filter(|i| i["state"] == "open").count(),
            "default_branch": "main",
            "permissions": {"admin": false, "push": true, "pull": true},
        })
    }

    fn create_issue(
        &mut self,
        key: &str,
        body: &Value,
        user: &str,
        base: &str,
    ) -> Result<Value, ApiError> {
        const CREATE_DOCS: &str = "https://docs.github.com/rest/issues/issues#create-an-issue";
        let title = match body.get("title") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            // GitHub also takes a number as the title.
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(validation_failed(
                    json!([{"resource": "Issue", "code": "missing_field", "field": "title"}]),
                    CREATE_DOCS,
                ))
            }
        };
        let text = |v: &Value| v.as_str().map(str::to_string);
        let list = |key: &str| -> Result<Vec<String>, ApiError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        text(i).ok_or_else(|| {
                            validation_failed(
                                json!([{"resource": "Issue", "code": "invalid", "field": key}]),
                                CREATE_DOCS,
                            )
                        })
                    })
                    .collect(),
                Some(_) => Err(validation_failed(
                    json!([{"resource": "Issue", "code": "invalid", "field": key}]),
                    CREATE_DOCS,
                )),
            }
        };
        let labels = list("labels")?;
        let assignees = list("assignees")?;
        let id = self.next();
        let label_ids: Vec<u64> = labels.iter().map(|_| self.next()).collect();
        let repo = self
            .repos
            .get_mut(key)
            .ok_or_else(|| error(404, "Not Found"))?;
        if let Some(stranger) = assignees
            .iter()
            .find(|a| !repo.collaborators.iter().any(|c| c.eq_ignore_ascii_case(a)))
        {
            return Err(validation_failed(
                json!([{"value": stranger, "resource": "Issue", "field": "assignees", "code": "invalid"}]),
                CREATE_DOCS,
            ));
        }
        let number = repo.issues.len() as u64 + 1;
        let now = now_rfc3339();
        let full = &repo.full_name;
        let users: Vec<Value> = assignees.iter().map(|a| user_json(a)).collect();
        let issue = json!({
            "id": id,
            "node_id": format!("I_kwDO{id}"),
            "url": format!("{base}/repos/{full}/issues/{number}"),
            "repository_url": format!("{base}/repos/{full}"),
            "comments_url": format!("{base}/repos/{full}/issues/{number}/comments"),
            "html_url": format!("https://github.com/{full}/issues/{number}"),
            "number": number,
            "state": "open",
            "state_reason": null,
            "title": title,
            "body": body.get("body").cloned().unwrap_or(Value::Null),
            "user": user_json(user),
            "labels": labels.iter().zip(label_ids).map(|(name, lid)| json!({
                "id": lid,
                "node_id": format!("LA_kwDO{lid}"),
                "url": format!("{base}/repos/{full}/labels/{name}"),
                "name": name,
                "color": "ededed",
                "default": false,
                "description": null,
            })).collect::<Vec<_>>(),
            "assignee": users.first().cloned().unwrap_or(Value::Null),
            "assignees": users,
            "milestone": null,
            "locked": false,
            "comments": 0,
            "created_at": now,
            "updated_at": now,
            "closed_at": null,
            "author_association": "MEMBER",
        });
        repo.issues.push(issue.clone());
        Ok(issue)
    }

    fn create_comment(
        &mut self,
        key: &str,
        number: u64,
        body: &Value,
        base: &str,
    ) -> Result<Value, ApiError> {
        let id = self.next();
        let repo = self
            .repos
            .get_mut(key)
            .ok_or_else(|| error(404, "Not Found"))?;
        let full = repo.full_name.clone();
        let issue = repo
            .issues
            .iter_mut()
            .find(|i| i["number"] == json!(number))
            .ok_or_else(|| error(404, "Not Found"))?;
        let text = match body.get("body") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(validation_failed(
                    json!([{"resource": "IssueComment", "code": "missing_field", "field": "body"}]),
                    "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
                ))
            }
        };
        issue["comments"] = json!(issue["comments"].as_u64().unwrap_or(0) + 1);
        let now = now_rfc3339();
        let comment = json!({
            "id": id,
            "node_id": format!("IC_kwDO{id}"),
            "url": format!("{base}/repos/{full}/issues/comments/{id}"),
            "html_url": format!("https://github.com/{full}/issues/{number}#issuecomment-{id}"),
            "issue_url": format!("{base}/repos/{full}/issues/{number}"),
            "body": text,
            "user": user_json(LOGIN),
            "created_at": now,
            "updated_at": now,
            "author_association": "MEMBER",
        });
        repo.comments.push(comment.clone());
        Ok(comment)
    }

    /// Routes one authenticated request; answers status, body and `Location`.
    fn route(
        &mut self,
        method: &Method,
        path: &str,
        body: &[u8],
        base: &str,
    ) -> Result<(u16, Value, Option<String>), ApiError> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let parse_body = || -> Result<Value, ApiError> {
            let value: Value =
                serde_json::from_slice(body).map_err(|_| error(400, "Problems parsing JSON"))?;
            if value.is_object() {
                Ok(value)
            } else {
                Err(error(400, "Body should be a JSON object"))
            }
        };
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["repos", owner, name]) => {
                let repo = self
                    .repos
                    .get(&format!("{owner}/{name}").to_lowercase())
                    .ok_or_else(|| error(404, "Not Found"))?;
                Ok((200, Self::repo_json(repo, base), None))
            }
            ("POST", ["repos", owner, name, "issues"]) => {
                let key = format!("{owner}/{name}").to_lowercase();
                if !self.repos.contains_key(&key) {
                    return Err(error(404, "Not Found"));
                }
                let issue = self.create_issue(&key, &parse_body()?, LOGIN, base)?;
                let location = issue["url"].as_str().map(str::to_string);
                Ok((201, issue, location))
            }
            ("GET", ["repos", owner, name, "issues", number]) => {
                let repo = self
                    .repos
                    .get(&format!("{owner}/{name}").to_lowercase())
                    .ok_or_else(|| error(404, "Not Found"))?;
                let number: u64 = number.parse().map_err(|_| error(404, "Not Found"))?;
                let issue = repo
                    .issues
                    .iter()
                    .find(|i| i["number"] == json!(number))
                    .ok_or_else(|| error(404, "Not Found"))?;
                Ok((200, issue.clone(), None))
            }
            ("POST", ["repos", owner, name, "issues", number, "comments"]) => {
                let key = format!("{owner}/{name}").to_lowercase();
                let number: u64 = number.parse().map_err(|_| error(404, "Not Found"))?;
                if !self.repos.contains_key(&key) {
                    return Err(error(404, "Not Found"));
                }
                let comment = self.create_comment(&key, number, &parse_body()?, base)?;
                let location = comment["url"].as_str().map(str::to_string);
                Ok((201, comment, location))
            }
            _ => Err(error(404, "Not Found")),
        }
    }
}

fn user_json(login: &str) -> Value {
    json!({
        "login": login,
        "id": login.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 100_000_000,
        "type": "User",
        "html_url": format!("https://github.com/{login}"),
    })
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base = format!("http://{host}");
    let mut inner = inner.lock().expect("stand-in lock");
    let outcome = match inner.take_failure() {
        Some(failure) => Err(failure),
        None => inner
            .authenticate(&headers)
            .and_then(|()| inner.route(&method, uri.path(), &body, &base)),
    };
    let (status, json_body, mut extra) = match outcome {
        Ok((status, value, location)) => {
            let extra: Vec<(&'static str, String)> =
                location.into_iter().map(|l| ("location", l)).collect();
            (status, value, extra)
        }
        Err(e) => (e.status, e.body, e.headers),
    };
    if status != 429 {
        inner.rate_remaining = inner.rate_remaining.saturating_sub(1);
        extra.push(("x-ratelimit-remaining", inner.rate_remaining.to_string()));
    }
    let id = inner.next();
    inner.requests.push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        json: serde_json::from_slice(&body).ok(),
        answered: status,
        at: std::time::Instant::now(),
    });
    drop(inner);

    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json; charset=utf-8")
        .header("x-github-api-version-selected", API_VERSIONS[0])
        .header("x-github-request-id", format!("STANDIN:{id:X}"))
        .header("x-ratelimit-limit", "5000");
    for (name, value) in extra {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::from(json_body.to_string()))
        .expect("a well-formed response")
}

/// `YYYY-MM-DDTHH:MM:SSZ` for now, as GitHub writes timestamps.
fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

// ----- webhook deliveries -----

/// `X-Hub-Signature-256` for `body` signed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `repository` object of a delivery.
pub fn repository(full_name: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, ""));
    json!({
        "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": name,
        "full_name": full_name,
        "private": false,
        "owner": {"login": owner, "id": 1, "type": "Organization"},
        "html_url": format!("https://github.com/{full_name}"),
    })
}

/// An `issues` delivery about `issue` (as the API answers it).
pub fn issues_event(action: &str, issue: &Value, full_name: &str, sender: &str) -> Value {
    json!({
        "action": action,
        "issue": issue,
        "repository": repository(full_name),
        "sender": user_json(sender),
    })
}

/// A `pull_request` delivery.
pub fn pull_request_event(
    action: &str,
    number: u64,
    title: &str,
    merged: bool,
    full_name: &str,
    sender: &str,
) -> Value {
    let state = if action == "closed" { "closed" } else { "open" };
    json!({
        "action": action,
        "number": number,
        "pull_request": {
            "id": 9_000_000 + number,
            "node_id": "PR_kwDO",
            "number": number,
            "title": title,
            "state": state,
            "locked": false,
            "draft": false,
            "merged": merged,
            "merged_at": if merged { json!("2024-05-01T12:00:00Z") } else { Value::Null },
            "html_url": format!("https://github.com/{full_name}/pull/{number}"),
            "url": format!("https://api.github.com/repos/{full_name}/pulls/{number}"),
            "user": user_json(sender),
            "labels": [],
            "head": {"ref": "feature", "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
            "base": {"ref": "main", "sha": "e5bd3914e2e596debea16f433f57875b5b90bcd6"},
        },
        "repository": repository(full_name),
        "sender": user_json(sender),
    })
}

/// An `issue_comment` delivery: `sender` commented `body` on `issue`.
pub fn issue_comment_event(
    action: &str,
    issue: &Value,
    comment_id: u64,
    body: &str,
    full_name: &str,
    sender: &str,
) -> Value {
    let number = issue["number"].as_u64().unwrap_or(0);
    json!({
        "action": action,
        "issue": issue,
        "comment": {
            "id": comment_id,
            "node_id": "IC_kwDO",
            "html_url": format!("https://github.com/{full_name}/issues/{number}#issuecomment-{comment_id}"),
            "body": body,
            "user": user_json(sender),
            "created_at": "2024-05-01T12:00:00Z",
        },
        "repository": repository(full_name),
        "sender": user_json(sender),
    })
}

/// A `ping` delivery, sent when a hook is created.
pub fn ping_event(full_name: &str) -> Value {
    json!({
        "zen": "Non-blocking is better than blocking.",
        "hook_id": 109948940,
        "hook": {"type": "Repository", "id": 109948940, "active": true, "events": ["issues", "pull_request", "issue_comment"]},
        "repository": repository(full_name),
        "sender": user_json("octocat"),
    })
}
