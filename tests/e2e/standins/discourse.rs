//! A local stand-in for a Discourse forum's API, for the `discourse` plugin's end-to-end tests.
//!
//! It serves what the plugin uses with Discourse's shapes (docs.discourse.org and the poll
//! plugin's source): `POST /posts.json` creating a topic or a reply and answering the serialized
//! post, `GET /posts/{id}.json` with its `polls`, the poll routes `PUT /polls/vote` and
//! `PUT /polls/toggle_status` answering `{"poll": ...}`, and `GET /session/current.json`.
//! A post's `[poll ...]` BBCode becomes a poll (name, type, results, public, close, a `#` heading
//! as its title, one option per list item); a poll past its `close` time reads as closed, as
//! Discourse's close job makes it. Requests need `Api-Key` and a known `Api-Username` (otherwise
//! 403 `invalid_access`, as Discourse answers); refusals use Discourse's
//! `{"errors": [...], "error_type": ...}` and its default length rules for titles (15) and posts
//! (20). Option ids are digests of the option text, like Discourse's (which uses MD5 of the
//! JSON `[text]`; SHA-256 here, since the ids are opaque to clients).
//!
//! Every request is recorded; failures (any status, with an optional `Retry-After`) can be
//! injected for the next N requests. Tests cast votes through [`DiscourseStandin::vote`] (or the
//! real `PUT /polls/vote`), close polls as a moderator would with
//! [`DiscourseStandin::close_poll`], and sign webhook deliveries with [`signature`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub use super::Seen;

/// The users the forum knows; `system` is staff (it may close any poll).
pub const USERS: &[&str] = &[
    "system",
    "agora-bot",
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
];
const STAFF: &[&str] = &["system"];
const MIN_TITLE: usize = 15;
const MIN_POST: usize = 20;
const INVALID_ACCESS: &str = "You are not permitted to view the requested resource.";
const NOT_FOUND: &str = "The requested URL or resource could not be found.";

#[derive(Clone, Debug)]
struct Failure {
    status: u16,
    retry_after: Option<u64>,
}

#[derive(Clone, Debug)]
struct Topic {
    id: u64,
    title: String,
    slug: String,
    category_id: Option<i64>,
    user: String,
    posts: u64,
    created_at: String,
}

#[derive(Clone, Debug)]
struct PollOption {
    id: String,
    html: String,
}

#[derive(Clone, Debug)]
struct Poll {
    name: String,
    kind: String,
    status: String,
    results: String,
    public: bool,
    close_ms: Option<u64>,
    title: Option<String>,
    options: Vec<PollOption>,
    /// Username -> chosen option ids, in voting order.
    votes: Vec<(String, Vec<String>)>,
}

#[derive(Clone, Debug)]
struct Post {
    id: u64,
    topic_id: u64,
    post_number: u64,
    raw: String,
    username: String,
    created_at: String,
    polls: Vec<Poll>,
}

#[derive(Default)]
struct Forum {
    api_key: String,
    next_topic: u64,
    next_post: u64,
    topics: BTreeMap<u64, Topic>,
    posts: BTreeMap<u64, Post>,
    requests: Vec<Seen>,
    failures: VecDeque<Failure>,
}

/// A Discourse forum on a free local port.
pub struct DiscourseStandin {
    url: String,
    forum: Arc<Mutex<Forum>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for DiscourseStandin {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            let forum = self.lock();
            eprintln!(
                "===== discourse stand-in {} received {} request(s) =====",
                self.url,
                forum.requests.len()
            );
            for r in forum.requests.iter().take(200) {
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

impl DiscourseStandin {
    /// A forum accepting `api_key` for every user in [`USERS`].
    pub async fn start(api_key: &str) -> DiscourseStandin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the discourse stand-in");
        let port = listener.local_addr().expect("local address").port();
        let forum = Arc::new(Mutex::new(Forum {
            api_key: api_key.to_string(),
            next_topic: 100,
            next_post: 1000,
            ..Forum::default()
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(forum.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the discourse stand-in serves");
        });
        DiscourseStandin {
            url: format!("http://127.0.0.1:{port}"),
            forum,
            server,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Forum> {
        self.forum.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The forum's base URL (what `api_url` and `X-Discourse-Instance` hold).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.lock().requests.clone()
    }

    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// The next `n` requests answer `status` (with `Retry-After: <secs>` when given).
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let mut forum = self.lock();
        for _ in 0..n {
            forum.failures.push_back(Failure {
                status,
                retry_after,
            });
        }
    }

    /// Stops any injected failures still queued.
    pub fn heal(&self) {
        self.lock().failures.clear();
    }

    /// The post as `GET /posts/{id}.json` would show it to `system`.
    pub fn post(&self, id: u64) -> Option<Value> {
        let mut forum = self.lock();
        close_due_polls(&mut forum);
        let post = forum.posts.get(&id)?;
        Some(post_json(&forum, post))
    }

    /// The ids of every post in `topic_id`, oldest first.
    pub fn posts_in(&self, topic_id: u64) -> Vec<u64> {
        self.lock()
            .posts
            .values()
            .filter(|p| p.topic_id == topic_id)
            .map(|p| p.id)
            .collect()
    }

    /// The topic's id, title and category, as stored.
    pub fn topic(&self, id: u64) -> Option<Value> {
        let forum = self.lock();
        let t = forum.topics.get(&id)?;
        Some(
            json!({"id": t.id, "title": t.title, "slug": t.slug, "category_id": t.category_id, "posts_count": t.posts}),
        )
    }

    /// Casts (or replaces) `username`'s vote in a poll, naming options by their text.
    pub fn vote(&self, post_id: u64, poll: &str, username: &str, choices: &[&str]) {
        let mut forum = self.lock();
        close_due_polls(&mut forum);
        let poll = forum
            .posts
            .get_mut(&post_id)
            .and_then(|p| p.polls.iter_mut().find(|p| p.name == poll))
            .unwrap_or_else(|| panic!("no poll {poll} in post {post_id}"));
        assert_eq!(poll.status, "open", "the poll is closed");
        let ids: Vec<String> = choices
            .iter()
            .map(|c| {
                poll.options
                    .iter()
                    .find(|o| o.html == cook(c))
                    .unwrap_or_else(|| panic!("no option {c:?}"))
                    .id
                    .clone()
            })
            .collect();
        poll.votes.retain(|(u, _)| u != username);
        poll.votes.push((username.to_string(), ids));
    }

    /// Closes a poll as a moderator would on the forum.
    pub fn close_poll(&self, post_id: u64, poll: &str) {
        let mut forum = self.lock();
        let poll = forum
            .posts
            .get_mut(&post_id)
            .and_then(|p| p.polls.iter_mut().find(|p| p.name == poll))
            .unwrap_or_else(|| panic!("no poll {poll} in post {post_id}"));
        poll.status = "closed".into();
    }

    /// Deletes a post (its `GET` then answers 404).
    pub fn delete_post(&self, post_id: u64) {
        self.lock().posts.remove(&post_id);
    }

    /// A `post_*` webhook payload for a stored post, shaped like `WebHookPostSerializer`.
    pub fn post_payload(&self, post_id: u64) -> Value {
        let forum = self.lock();
        let post = forum.posts.get(&post_id).expect("a stored post");
        let topic = forum.topics.get(&post.topic_id).expect("its topic");
        json!({"post": {
            "id": post.id,
            "name": post.username,
            "username": post.username,
            "avatar_template": format!("/letter_avatar_proxy/v4/letter/{}/{{size}}.png", initial(&post.username)),
            "created_at": post.created_at,
            "cooked": cook_raw(&post.raw),
            "post_number": post.post_number,
            "post_type": 1,
            "updated_at": post.created_at,
            "reply_count": 0,
            "reply_to_post_number": null,
            "quote_count": 0,
            "incoming_link_count": 0,
            "reads": 1,
            "score": 0,
            "topic_id": topic.id,
            "topic_slug": topic.slug,
            "topic_title": topic.title,
            "category_id": topic.category_id,
            "display_username": post.username,
            "version": 1,
            "user_id": user_id(&post.username),
            "raw": post.raw,
            "topic_posts_count": topic.posts,
            "topic_filtered_posts_count": topic.posts,
            "topic_archetype": "regular",
        }})
    }

    /// A `topic_*` webhook payload for a stored topic, shaped like `WebHookTopicViewSerializer`.
    pub fn topic_payload(&self, topic_id: u64) -> Value {
        let forum = self.lock();
        let t = forum.topics.get(&topic_id).expect("a stored topic");
        let user = json!({"id": user_id(&t.user), "username": t.user, "name": t.user,
            "avatar_template": format!("/letter_avatar_proxy/v4/letter/{}/{{size}}.png", initial(&t.user))});
        json!({"topic": {
            "id": t.id,
            "title": t.title,
            "fancy_title": t.title,
            "posts_count": t.posts,
            "created_at": t.created_at,
            "views": 1,
            "reply_count": t.posts.saturating_sub(1),
            "like_count": 0,
            "last_posted_at": t.created_at,
            "visible": true,
            "closed": false,
            "archived": false,
            "archetype": "regular",
            "slug": t.slug,
            "category_id": t.category_id,
            "word_count": 20,
            "user_id": user_id(&t.user),
            "created_by": user,
            "last_poster": user,
        }})
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, the `X-Discourse-Event-Signature` Discourse sends.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn initial(name: &str) -> char {
    name.chars().next().unwrap_or('x')
}

fn user_id(name: &str) -> i64 {
    match USERS.iter().position(|u| *u == name) {
        // Discourse's system user is -1.
        Some(0) => -1,
        Some(i) => i as i64 + 1,
        None => 0,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn error(status: u16, errors: &[&str], error_type: Option<&str>) -> Response {
    let mut body = json!({"errors": errors});
    if let Some(t) = error_type {
        body["error_type"] = json!(t);
    }
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

async fn handle(
    State(forum): State<Arc<Mutex<Forum>>>,
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
    let json = parse_body(&headers, &body);
    let mut forum = forum.lock().unwrap_or_else(|p| p.into_inner());
    let response = answer(&mut forum, &method, uri.path(), &headers, json.as_ref());
    forum.requests.push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_owned),
        headers,
        json,
        answered: response.status().as_u16(),
        at: std::time::Instant::now(),
    });
    response
}

fn parse_body(headers: &HashMap<String, String>, body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    let form = headers
        .get("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return serde_json::from_slice(body).ok();
    }
    // Rails' form encoding: `key=value`, and `key[]=value` for lists.
    let mut out = Map::new();
    for pair in String::from_utf8_lossy(body).split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        if let Some(list) = k.strip_suffix("[]") {
            let entry = out.entry(list.to_string()).or_insert_with(|| json!([]));
            if let Some(a) = entry.as_array_mut() {
                a.push(json!(v));
            }
        } else {
            out.insert(k, json!(v));
        }
    }
    Some(Value::Object(out))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn answer(
    forum: &mut Forum,
    method: &Method,
    path: &str,
    headers: &HashMap<String, String>,
    body: Option<&Value>,
) -> Response {
    if let Some(failure) = forum.failures.pop_front() {
        let mut resp = error(failure.status, &["injected failure"], None);
        if let Some(secs) = failure.retry_after {
            resp.headers_mut().insert(
                "retry-after",
                HeaderValue::from_str(&secs.to_string()).expect("a number"),
            );
        }
        return resp;
    }
    let key_ok = headers.get("api-key") == Some(&forum.api_key);
    let user = headers
        .get("api-username")
        .map(String::as_str)
        .unwrap_or("");
    if !key_ok || !USERS.contains(&user) {
        return error(403, &[INVALID_ACCESS], Some("invalid_access"));
    }
    close_due_polls(forum);
    let empty = json!({});
    let body = body.unwrap_or(&empty);
    match (method.as_str(), path) {
        ("GET", "/session/current.json") => ok(json!({"current_user": {
            "id": user_id(user), "username": user, "name": user,
            "admin": STAFF.contains(&user), "moderator": STAFF.contains(&user), "staff": STAFF.contains(&user),
            "trust_level": 4
        }})),
        ("POST", "/posts.json" | "/posts") => create_post(forum, user, body),
        ("PUT", "/polls/vote") => vote(forum, user, body),
        ("PUT", "/polls/toggle_status") => toggle_status(forum, user, body),
        ("GET", _) => match path
            .strip_prefix("/posts/")
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(|id| id.parse::<u64>().ok())
        {
            Some(id) => match forum.posts.get(&id) {
                Some(post) => ok(post_json(forum, post)),
                None => error(404, &[NOT_FOUND], Some("not_found")),
            },
            None => error(404, &[NOT_FOUND], Some("not_found")),
        },
        _ => error(404, &[NOT_FOUND], Some("not_found")),
    }
}

/// A number Discourse reads from JSON or a form field.
fn id_param(body: &Value, key: &str) -> Option<u64> {
    match body.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn create_post(forum: &mut Forum, user: &str, body: &Value) -> Response {
    let raw = body
        .get("raw")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let now = format_time(now_ms());
    let topic_id = match id_param(body, "topic_id") {
        Some(topic_id) => {
            if !forum.topics.contains_key(&topic_id) {
                return error(404, &[NOT_FOUND], Some("not_found"));
            }
            if raw.trim().chars().count() < MIN_POST {
                return error(
                    422,
                    &[&format!(
                        "Body is too short (minimum is {MIN_POST} characters)"
                    )],
                    None,
                );
            }
            topic_id
        }
        None => {
            let title = body
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            let mut errors = Vec::new();
            if title.is_empty() {
                errors.push("Title can't be blank".to_string());
            } else if title.chars().count() < MIN_TITLE {
                errors.push(format!(
                    "Title is too short (minimum is {MIN_TITLE} characters)"
                ));
            }
            if raw.trim().chars().count() < MIN_POST {
                errors.push(format!(
                    "Body is too short (minimum is {MIN_POST} characters)"
                ));
            }
            if !errors.is_empty() {
                let refs: Vec<&str> = errors.iter().map(String::as_str).collect();
                // Discourse adds the action name to create_post refusals.
                let resp = json!({"action": "create_post", "errors": refs});
                return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(resp)).into_response();
            }
            forum.next_topic += 1;
            let id = forum.next_topic;
            forum.topics.insert(
                id,
                Topic {
                    id,
                    title: title.to_string(),
                    slug: slugify(title),
                    category_id: body.get("category").and_then(|c| match c {
                        Value::Number(n) => n.as_i64(),
                        Value::String(s) => s.parse().ok(),
                        _ => None,
                    }),
                    user: user.to_string(),
                    posts: 0,
                    created_at: now.clone(),
                },
            );
            id
        }
    };
    let polls = match parse_polls(&raw) {
        Ok(polls) => polls,
        Err(e) => return error(422, &[&e], None),
    };
    let topic = forum.topics.get_mut(&topic_id).expect("checked above");
    topic.posts += 1;
    let post_number = topic.posts;
    forum.next_post += 1;
    let post = Post {
        id: forum.next_post,
        topic_id,
        post_number,
        raw,
        username: user.to_string(),
        created_at: now,
        polls,
    };
    let answer = post_json(forum, &post);
    forum.posts.insert(post.id, post);
    ok(answer)
}

fn find_poll<'f>(
    forum: &'f mut Forum,
    body: &Value,
) -> Result<(&'f mut Post, usize), Box<Response>> {
    let post_id = id_param(body, "post_id").ok_or_else(|| {
        Box::new(error(
            400,
            &["param is missing or the value is empty: post_id"],
            Some("invalid_parameters"),
        ))
    })?;
    let name = body
        .get("poll_name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Box::new(error(
                400,
                &["param is missing or the value is empty: poll_name"],
                Some("invalid_parameters"),
            ))
        })?
        .to_string();
    let post = forum
        .posts
        .get_mut(&post_id)
        .ok_or_else(|| Box::new(error(422, &["This post was deleted."], None)))?;
    let at = post
        .polls
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| {
            Box::new(error(
                422,
                &[&format!("No poll named {name} associated with this post.")],
                None,
            ))
        })?;
    Ok((post, at))
}

fn vote(forum: &mut Forum, user: &str, body: &Value) -> Response {
    let (post, at) = match find_poll(forum, body) {
        Ok(found) => found,
        Err(resp) => return *resp,
    };
    let poll = &mut post.polls[at];
    if poll.status != "open" {
        return error(422, &["Poll must be open to vote."], None);
    }
    let chosen: Vec<String> = body
        .get("options")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let valid: Vec<String> = chosen
        .into_iter()
        .filter(|c| poll.options.iter().any(|o| &o.id == c))
        .collect();
    if valid.is_empty() {
        return error(422, &["You must select at least 1 valid option."], None);
    }
    if poll.kind == "regular" && valid.len() > 1 {
        return error(422, &["Only 1 vote is allowed for this poll."], None);
    }
    poll.votes.retain(|(u, _)| u != user);
    poll.votes.push((user.to_string(), valid.clone()));
    let poll = poll.clone();
    ok(json!({"poll": poll_json(&poll), "vote": valid}))
}

fn toggle_status(forum: &mut Forum, user: &str, body: &Value) -> Response {
    let status = body.get("status").and_then(Value::as_str).unwrap_or("");
    if !matches!(status, "open" | "closed") {
        return error(
            400,
            &["param is missing or the value is empty: status"],
            Some("invalid_parameters"),
        );
    }
    let status = status.to_string();
    let (post, at) = match find_poll(forum, body) {
        Ok(found) => found,
        Err(resp) => return *resp,
    };
    if post.username != user && !STAFF.contains(&user) {
        return error(
            422,
            &["Only staff members or the original poster can toggle a poll status."],
            None,
        );
    }
    post.polls[at].status = status;
    let poll = post.polls[at].clone();
    ok(json!({"poll": poll_json(&poll)}))
}

/// Polls past their close time close, as Discourse's scheduled `close_poll` job does.
fn close_due_polls(forum: &mut Forum) {
    let now = now_ms();
    for post in forum.posts.values_mut() {
        for poll in &mut post.polls {
            if poll.status == "open" && poll.close_ms.is_some_and(|at| at <= now) {
                poll.status = "closed".into();
            }
        }
    }
}

/// A post as `PostSerializer` shows it, with the poll plugin's `polls`.
fn post_json(forum: &Forum, post: &Post) -> Value {
    let topic = forum.topics.get(&post.topic_id);
    let mut v = json!({
        "id": post.id,
        "name": post.username,
        "username": post.username,
        "avatar_template": format!("/letter_avatar_proxy/v4/letter/{}/{{size}}.png", initial(&post.username)),
        "created_at": post.created_at,
        "cooked": cook_raw(&post.raw),
        "post_number": post.post_number,
        "post_type": 1,
        "updated_at": post.created_at,
        "reply_count": 0,
        "reply_to_post_number": null,
        "quote_count": 0,
        "incoming_link_count": 0,
        "reads": 1,
        "readers_count": 0,
        "score": 0,
        "yours": true,
        "topic_id": post.topic_id,
        "topic_slug": topic.map(|t| t.slug.clone()).unwrap_or_default(),
        "display_username": post.username,
        "version": 1,
        "user_id": user_id(&post.username),
        "raw": post.raw,
    });
    if !post.polls.is_empty() {
        v["polls"] = Value::Array(post.polls.iter().map(poll_json).collect());
    }
    v
}

/// A poll as `PollSerializer` shows it (results `always`, so votes are always included).
fn poll_json(poll: &Poll) -> Value {
    let votes_for = |id: &str| {
        poll.votes
            .iter()
            .filter(|(_, chosen)| chosen.iter().any(|c| c == id))
            .count()
    };
    let mut v = json!({
        "name": poll.name,
        "type": poll.kind,
        "status": poll.status,
        "results": poll.results,
        "options": poll.options.iter().map(|o| json!({"id": o.id, "html": o.html, "votes": votes_for(&o.id)})).collect::<Vec<_>>(),
        "voters": poll.votes.len(),
        "chart_type": "bar",
    });
    if poll.public {
        v["public"] = json!(true);
        let mut preloaded = Map::new();
        for o in &poll.options {
            let users: Vec<Value> = poll
                .votes
                .iter()
                .filter(|(_, chosen)| chosen.contains(&o.id))
                .map(|(u, _)| json!({"id": user_id(u), "username": u, "name": u, "avatar_template": ""}))
                .collect();
            if !users.is_empty() {
                preloaded.insert(o.id.clone(), Value::Array(users));
            }
        }
        v["preloaded_voters"] = Value::Object(preloaded);
    }
    if let Some(ms) = poll.close_ms {
        v["close"] = json!(format_time(ms));
    }
    if let Some(t) = &poll.title {
        v["title"] = json!(t);
    }
    v
}

/// The tiny part of Discourse's Markdown cooking that poll options need.
fn cook(text: &str) -> String {
    text.trim()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cook_raw(raw: &str) -> String {
    format!("<p>{}</p>", cook(raw).replace('\n', "<br>"))
}

fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "topic".into()
    } else {
        slug
    }
}

fn option_digest(text: &str) -> String {
    let digest = Sha256::digest(json!([text]).to_string().as_bytes());
    hex::encode(digest)[..32].to_string()
}

/// Every `[poll ...]...[/poll]` block of a post, as Discourse's poll extractor reads them.
fn parse_polls(raw: &str) -> Result<Vec<Poll>, String> {
    let mut polls = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find("[poll") {
        let after = &rest[start + 5..];
        let close_tag = after.find(']').ok_or("an unterminated [poll] tag")?;
        let attrs = parse_attrs(&after[..close_tag]);
        let inner_and_rest = &after[close_tag + 1..];
        let end = inner_and_rest
            .find("[/poll]")
            .ok_or("a [poll] without [/poll]")?;
        let inner = &inner_and_rest[..end];
        rest = &inner_and_rest[end + 7..];

        let mut title = None;
        let mut options = Vec::new();
        for line in inner.lines().map(str::trim) {
            if let Some(h) = line.strip_prefix("# ") {
                title = Some(cook(h));
            } else if let Some(item) = line.strip_prefix("* ").or_else(|| line.strip_prefix("- ")) {
                let html = cook(item);
                options.push(PollOption {
                    id: option_digest(item.trim()),
                    html,
                });
            }
        }
        let name = attrs.get("name").cloned().unwrap_or_else(|| "poll".into());
        if options.is_empty() {
            return Err(format!("Poll \"{name}\" must have at least 1 option."));
        }
        let mut seen = Vec::new();
        for o in &options {
            if seen.contains(&&o.html) {
                return Err(format!("Poll \"{name}\" has duplicated options."));
            }
            seen.push(&o.html);
        }
        if polls.iter().any(|p: &Poll| p.name == name) {
            return Err(format!("Poll name \"{name}\" is used more than once."));
        }
        let close_ms = attrs.get("close").and_then(|c| parse_time(c));
        polls.push(Poll {
            name,
            kind: attrs
                .get("type")
                .cloned()
                .unwrap_or_else(|| "regular".into()),
            status: attrs
                .get("status")
                .cloned()
                .unwrap_or_else(|| "open".into()),
            results: attrs
                .get("results")
                .cloned()
                .unwrap_or_else(|| "always".into()),
            public: attrs.get("public").map(String::as_str) == Some("true"),
            close_ms,
            title,
            options,
            votes: Vec::new(),
        });
    }
    Ok(polls)
}

/// `key=value key="quoted value"` pairs of a BBCode tag.
fn parse_attrs(text: &str) -> HashMap<String, String> {
    let mut attrs = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_ascii_lowercase();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        attrs.insert(key, value.to_string());
        rest = next.trim_start();
    }
    attrs
}

// ----- RFC 3339 for `close=` and `created_at` -----

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
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

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as Discourse serializes times.
pub fn format_time(ms: u64) -> String {
    let ms = ms as i64;
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    let day_ms = ms.rem_euclid(86_400_000);
    let s = day_ms / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        day_ms % 1000
    )
}

/// Epoch ms of a UTC `YYYY-MM-DDTHH:MM:SS[.fff]Z` (the form the plugin writes).
pub fn parse_time(text: &str) -> Option<u64> {
    let t = text.trim().strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    let millis: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    let secs = days_from_civil(y, mo, da) * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1000 + millis).ok()
}
