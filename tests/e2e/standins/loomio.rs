//! A local stand-in for Loomio's bot API, speaking the shapes the `loomio` plugin relies on.
//!
//! Endpoints: `POST /api/b2/polls` (nested `{"poll": {...}}` body, `Authorization: Bearer`
//! key; a flat body is read too, as older instances did), `GET /api/b2/polls/:id_or_key`,
//! `GET /api/b2/groups[/:id]`, and the legacy `POST /api/b1/polls`,
//! `GET /api/b1/polls/:id_or_key?api_key=`, `GET /api/b1/memberships?api_key=`. Answers are
//! Loomio's records-style JSON (`polls`, `poll_options`, `stances`, `users`, `groups`,
//! `meta`); errors are Loomio's too: a bad key is `403 {"error": "You are not authorized to
//! access this page."}` (Loomio answers 403, not 401), an unknown poll `404 {"error": 404}`,
//! a validation failure `422 {"errors": {"field": ["message"]}}`. b2 refuses a key in the
//! query string, as Loomio does since 3.1.3.
//!
//! Tests drive it through a small API: cast stances ([`LoomioStandin::vote`],
//! [`LoomioStandin::cast`]), close a poll as a user would ([`LoomioStandin::close_poll`]; a
//! poll also closes by itself once its `closing_at` passes), inject failures (N answers of a
//! status, optionally with `Retry-After`, or every answer until healed) and read back every
//! request it got.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::harness::eventually;

pub use super::Seen;

const POLL_TYPES: [&str; 7] = [
    "proposal",
    "poll",
    "count",
    "score",
    "ranked_choice",
    "meeting",
    "dot_vote",
];
const FORBIDDEN: &str = "You are not authorized to access this page.";

#[derive(Clone, Debug)]
struct Poll {
    id: i64,
    key: String,
    title: String,
    details: String,
    poll_type: String,
    group_id: i64,
    closing_at_ms: i64,
    closed_at_ms: Option<i64>,
    created_at_ms: i64,
    options: Vec<String>,
    /// Voter id → option → score, like Loomio's stance choices.
    stances: BTreeMap<i64, BTreeMap<String, f64>>,
}

#[derive(Clone, Copy)]
enum Failure {
    Status(u16),
    RetryAfter(u16, u64),
}

struct Inner {
    polls: Vec<Poll>,
    requests: Vec<Seen>,
    failures: VecDeque<Failure>,
    failing: Option<u16>,
    members: i64,
}

struct Shared {
    api_key: String,
    group_id: i64,
    inner: Mutex<Inner>,
}

/// A Loomio instance with one group, reachable with one API key.
pub struct LoomioStandin {
    port: u16,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl LoomioStandin {
    /// A stand-in whose group `group_id` has 5 members and whose API user holds `api_key`.
    pub async fn start(api_key: &str, group_id: i64) -> LoomioStandin {
        let shared = Arc::new(Shared {
            api_key: api_key.to_string(),
            group_id,
            inner: Mutex::new(Inner {
                polls: Vec::new(),
                requests: Vec::new(),
                failures: VecDeque::new(),
                failing: None,
                members: 5,
            }),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Loomio stand-in");
        let port = listener.local_addr().expect("local address").port();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the Loomio stand-in serves");
        });
        LoomioStandin {
            port,
            shared,
            server,
        }
    }

    /// The instance's base URL (the plugin's `api_url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("stand-in lock")
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.inner().requests.clone()
    }

    /// Requests with this method whose path starts with `prefix`.
    pub fn requests_to(&self, method: &str, prefix: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .collect()
    }

    /// Waits until at least `n` requests match `method` and `prefix`.
    pub async fn wait_for_requests(&self, method: &str, prefix: &str, n: usize) -> Vec<Seen> {
        let what = format!("{n} {method} {prefix}* request(s) at the Loomio stand-in");
        eventually(Duration::from_secs(15), &what, || {
            let seen = self.requests_to(method, prefix);
            async move {
                if seen.len() >= n {
                    Ok(seen)
                } else {
                    Err(format!("{} so far", seen.len()))
                }
            }
        })
        .await
    }

    /// The ids of the polls created so far, oldest first.
    pub fn poll_ids(&self) -> Vec<i64> {
        self.inner().polls.iter().map(|p| p.id).collect()
    }

    /// `voter` casts a stance for one option (score 1), replacing any earlier stance.
    pub fn vote(&self, poll_id: i64, voter: i64, option: &str) {
        self.cast(poll_id, voter, &[(option, 1.0)]);
    }

    /// `voter` casts a stance with these per-option scores (score, dot and ranked polls).
    pub fn cast(&self, poll_id: i64, voter: i64, scores: &[(&str, f64)]) {
        let mut inner = self.inner();
        let poll = inner
            .polls
            .iter_mut()
            .find(|p| p.id == poll_id)
            .unwrap_or_else(|| panic!("no poll {poll_id} at the Loomio stand-in"));
        assert!(
            poll.closed_at_ms.is_none(),
            "poll {poll_id} is closed: Loomio takes no stances"
        );
        let mut choice = BTreeMap::new();
        for (option, score) in scores {
            assert!(
                poll.options.iter().any(|o| o == option),
                "{option} is not an option of poll {poll_id}"
            );
            choice.insert(option.to_string(), *score);
        }
        poll.stances.insert(voter, choice);
    }

    /// Closes a poll as a member would in Loomio's interface.
    pub fn close_poll(&self, poll_id: i64) {
        let mut inner = self.inner();
        if let Some(poll) = inner.polls.iter_mut().find(|p| p.id == poll_id) {
            poll.closed_at_ms.get_or_insert(now_ms());
        }
    }

    /// The next `n` requests answer `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut inner = self.inner();
        inner
            .failures
            .extend(std::iter::repeat_n(Failure::Status(status), n));
    }

    /// The next `n` requests answer `status` with `Retry-After: secs`.
    pub fn fail_next_with_retry_after(&self, n: usize, status: u16, secs: u64) {
        let mut inner = self.inner();
        inner
            .failures
            .extend(std::iter::repeat_n(Failure::RetryAfter(status, secs), n));
    }

    /// Every request answers `status` until [`LoomioStandin::heal`].
    pub fn fail_always(&self, status: u16) {
        self.inner().failing = Some(status);
    }

    pub fn heal(&self) {
        let mut inner = self.inner();
        inner.failing = None;
        inner.failures.clear();
    }
}

impl Drop for LoomioStandin {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            let requests = self.requests();
            eprintln!(
                "===== Loomio stand-in on port {} received {} request(s) =====",
                self.port,
                requests.len()
            );
            for r in requests.iter().take(200) {
                eprintln!(
                    "  {} {}{} -> {} {}",
                    r.method,
                    r.path,
                    r.query
                        .as_deref()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default(),
                    r.answered,
                    r.json.as_ref().map(Value::to_string).unwrap_or_default()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Serving.

fn answer(status: u16, body: Value) -> (u16, Vec<(String, String)>, Value) {
    (status, Vec::new(), body)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let query = uri.query().map(str::to_owned);
    let mut inner = shared.inner.lock().expect("stand-in lock");
    let (status, extra_headers, body) = route(
        &shared,
        &mut inner,
        method.as_str(),
        uri.path(),
        query.as_deref(),
        &headers,
        json.as_ref(),
    );
    inner.requests.push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query,
        headers,
        json,
        answered: status,
        at: Instant::now(),
    });
    drop(inner);
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response();
    for (k, v) in extra_headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                Some(Ok(v)) => {
                    out.push(v);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(
    shared: &Shared,
    inner: &mut Inner,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HashMap<String, String>,
    body: Option<&Value>,
) -> (u16, Vec<(String, String)>, Value) {
    if let Some(status) = inner.failing {
        return answer(status, json!({"error": status}));
    }
    if let Some(failure) = inner.failures.pop_front() {
        return match failure {
            Failure::Status(status) => answer(status, json!({"error": status})),
            Failure::RetryAfter(status, secs) => (
                status,
                vec![("retry-after".into(), secs.to_string())],
                json!({"error": status}),
            ),
        };
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (version, rest) = match segments.as_slice() {
        ["api", v @ ("b1" | "b2"), rest @ ..] => (*v, rest),
        _ => return answer(404, json!({"error": 404})),
    };
    // b2 (Loomio >= 3.1.3): a bearer header, or for POSTs the body; never the query string.
    // b1: the parameters, from the query string or the body.
    let given = match version {
        "b2" => headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::to_owned)
            .or_else(|| {
                (method == "POST")
                    .then(|| body?.get("api_key")?.as_str().map(str::to_owned))
                    .flatten()
            }),
        _ => query_param(query, "api_key")
            .or_else(|| body?.get("api_key")?.as_str().map(str::to_owned)),
    };
    if given.as_deref() != Some(shared.api_key.as_str()) {
        return answer(403, json!({"error": FORBIDDEN}));
    }
    close_lapsed(inner);
    match (method, rest) {
        ("POST", ["polls"]) => create_poll(shared, inner, version, body),
        ("GET", ["polls", id_or_key]) => {
            let id_or_key = decode(id_or_key);
            match inner
                .polls
                .iter()
                .find(|p| p.key == id_or_key || p.id.to_string() == id_or_key)
            {
                Some(poll) => answer(200, records(shared, inner.members, poll)),
                None => answer(404, json!({"error": 404})),
            }
        }
        ("GET", ["groups"]) if version == "b2" => answer(
            200,
            json!({"groups": [group_json(shared)], "memberships": [], "users": [],
                   "meta": {"root": "groups", "total": 1}}),
        ),
        ("GET", ["groups", id]) if version == "b2" => {
            if *id == shared.group_id.to_string() {
                answer(
                    200,
                    json!({"groups": [group_json(shared)], "memberships": [], "users": [],
                           "meta": {"root": "groups"}}),
                )
            } else {
                answer(404, json!({"error": 404}))
            }
        }
        ("GET", ["memberships"]) if version == "b1" => answer(
            200,
            json!({"memberships": [], "users": [], "groups": [group_json(shared)],
                   "meta": {"root": "memberships", "total": 0}}),
        ),
        _ => answer(404, json!({"error": 404})),
    }
}

/// Loomio closes a poll by itself once its closing time has passed.
fn close_lapsed(inner: &mut Inner) {
    let now = now_ms();
    for poll in &mut inner.polls {
        if poll.closed_at_ms.is_none() && poll.closing_at_ms <= now {
            poll.closed_at_ms = Some(poll.closing_at_ms);
        }
    }
}

fn unprocessable(field: &str, message: &str) -> (u16, Vec<(String, String)>, Value) {
    answer(422, json!({"errors": {field: [message]}}))
}

fn create_poll(
    shared: &Shared,
    inner: &mut Inner,
    version: &str,
    body: Option<&Value>,
) -> (u16, Vec<(String, String)>, Value) {
    let Some(body) = body.and_then(Value::as_object) else {
        return answer(400, json!({"error": 400}));
    };
    let fields = match (version, body.get("poll").and_then(Value::as_object)) {
        ("b2", Some(nested)) => nested,
        _ => body,
    };
    let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("").trim();
    let title = text("title");
    if title.is_empty() {
        return unprocessable("title", "can't be blank");
    }
    let poll_type = text("poll_type");
    if !POLL_TYPES.contains(&poll_type) {
        return unprocessable("poll_type", "is not included in the list");
    }
    let Some(closing_at_ms) = parse_rfc3339_ms(text("closing_at")) else {
        return unprocessable("closing_at", "is invalid");
    };
    if closing_at_ms <= now_ms() {
        return unprocessable("closing_at", "must be in the future");
    }
    let group_id = match version {
        "b2" => match fields.get("group_id").and_then(Value::as_i64) {
            Some(id) if id == shared.group_id => id,
            // A poll outside any group: only invitees could ever see it.
            None => 0,
            Some(_) => return answer(403, json!({"error": "Not authorized to create Poll."})),
        },
        _ => shared.group_id,
    };
    // Like Loomio, options are whatever was sent, possibly none.
    let options: Vec<String> = fields
        .get("options")
        .or_else(|| fields.get("poll_option_names"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let id = 1000 + inner.polls.len() as i64;
    let poll = Poll {
        id,
        key: format!("pK{id}x"),
        title: title.to_string(),
        details: text("details").to_string(),
        poll_type: poll_type.to_string(),
        group_id,
        closing_at_ms,
        closed_at_ms: None,
        created_at_ms: now_ms(),
        options,
        stances: BTreeMap::new(),
    };
    let out = records(shared, inner.members, &poll);
    inner.polls.push(poll);
    answer(200, out)
}

fn group_json(shared: &Shared) -> Value {
    json!({"id": shared.group_id, "key": "gRoUpKey", "handle": "standin-group",
           "name": "Stand-in group", "full_name": "Stand-in group"})
}

/// A poll as Loomio's show answers it: the poll record and its side-loaded records.
fn records(shared: &Shared, members: i64, poll: &Poll) -> Value {
    let decided = poll.stances.len() as i64;
    let voters = members.max(decided);
    let option_ids: Vec<i64> = (0..poll.options.len() as i64)
        .map(|i| poll.id * 100 + i)
        .collect();
    let options: Vec<Value> = poll
        .options
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let scores: BTreeMap<String, f64> = poll
                .stances
                .iter()
                .filter_map(|(voter, choice)| Some((voter.to_string(), *choice.get(name)?)))
                .collect();
            let total: f64 = scores.values().sum();
            json!({
                "id": option_ids[i], "name": name, "poll_id": poll.id, "priority": i,
                "voter_scores": scores, "total_score": total,
                "voter_count": scores.len(), "color": "#00D177"
            })
        })
        .collect();
    let stance_counts: Vec<Value> = options.iter().map(|o| o["total_score"].clone()).collect();
    json!({
        "polls": [{
            "id": poll.id,
            "key": poll.key,
            "title": poll.title,
            "details": poll.details,
            "details_format": "md",
            "poll_type": poll.poll_type,
            "group_id": if poll.group_id == 0 { Value::Null } else { json!(poll.group_id) },
            "author_id": 1,
            "anonymous": false,
            "hide_results": "off",
            "specified_voters_only": false,
            "closing_at": iso(poll.closing_at_ms),
            "closed_at": poll.closed_at_ms.map(iso),
            "created_at": iso(poll.created_at_ms),
            "voters_count": voters,
            "decided_voters_count": decided,
            "undecided_voters_count": voters - decided,
            "cast_stances_pct": if voters > 0 { decided * 100 / voters } else { 0 },
            "poll_option_names": poll.options,
            "poll_option_ids": option_ids,
            "stance_counts": stance_counts,
        }],
        "poll_options": options,
        "stances": [],
        "outcomes": [],
        "users": [{"id": 1, "name": "Agora bot", "bot": true}],
        "groups": [group_json(shared)],
        "meta": {"root": "polls", "total": null}
    })
}

// ---------------------------------------------------------------------------
// Time.

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Loomio's timestamp format: `2021-09-28T18:50:14.603Z`.
pub fn iso(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1000
    )
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` as epoch milliseconds.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |at: usize, len: usize| -> Option<i64> {
        b.get(at..at + len)?.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let secs = days_from_civil(num(0, 4)?, num(5, 2)?, num(8, 2)?) * 86_400
        + num(11, 2)? * 3600
        + num(14, 2)? * 60
        + num(17, 2)?;
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        for _ in (i - start).min(3)..3 {
            millis *= 10;
        }
    }
    let offset = match &b[i..] {
        b"Z" | b"z" => 0,
        [s @ (b'+' | b'-'), ..] if b.len() == i + 6 => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *s == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    Some((secs - offset * 60) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for ms in [0, 1_632_855_014_603, 4_070_908_800_000] {
            assert_eq!(parse_rfc3339_ms(&iso(ms)), Some(ms), "{}", iso(ms));
        }
        assert_eq!(iso(1_632_855_014_603), "2021-09-28T18:50:14.603Z");
        assert_eq!(decode("k3y%2F%2B+x"), "k3y/+ x");
    }
}
