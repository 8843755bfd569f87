//! End-to-end tests of the `github` plugin: a real node reaching the local GitHub stand-in
//! through Agora's HTTP API (actions, refusals, retries, health), and GitHub webhooks signed like
//! GitHub signs them arriving at `/api/hooks/...` and leaving as driver events.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{eventually, Node, NodeConfig, Recorded, Resp, Sink, WAIT};
use crate::standins::github::{self as gh, GithubStandin, LOGIN};

const TOKEN: &str = "ghp_e2eTestToken0000000000000000000000";
const SECRET: &str = "webhook secret shared with GitHub";
const CREATE_ISSUE: &str = "/api/internal/action/github.create-issue";
const COMMENT: &str = "/api/internal/action/github.comment";

fn settings(standin: &GithubStandin, owner: &str, repo: &str) -> Value {
    json!({
        "api_url": standin.url(),
        "owner": owner,
        "repo": repo,
        "token": TOKEN,
        "webhook_secret": SECRET,
    })
}

/// Creates `slug` and enables `github` there with `settings`.
async fn community_with_github(node: &Node, slug: &str, settings: &Value) -> Value {
    node.create_community(slug).await;
    node.post_in(slug, "/api/internal/plugin/github", settings)
        .await
        .expect_status(201)
        .json()
}

/// Posts `payload` as GitHub would deliver event `event` to `path`, signed with `secret`
/// (unsigned when `None`).
async fn deliver(
    node: &Node,
    path: &str,
    event: &str,
    payload: &Value,
    secret: Option<&str>,
) -> Resp {
    let id = crate::harness::unique_id("gh-delivery");
    deliver_with_id(node, path, event, payload, secret, &id).await
}

/// [`deliver`] with this `X-GitHub-Delivery` (the same id again is a redelivery).
async fn deliver_with_id(
    node: &Node,
    path: &str,
    event: &str,
    payload: &Value,
    secret: Option<&str>,
    delivery: &str,
) -> Resp {
    let body = payload.to_string().into_bytes();
    let mut request = node
        .anonymous(reqwest::Method::POST, path)
        .header("Content-Type", "application/json")
        .header("User-Agent", "GitHub-Hookshot/044aadd")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("X-GitHub-Hook-ID", "109948940");
    if let Some(secret) = secret {
        request = request.header("X-Hub-Signature-256", gh::signature(secret, &body));
    }
    node.send(request.body(body)).await
}

fn github_events(requests: &[Recorded]) -> Vec<Value> {
    requests
        .iter()
        .filter_map(|r| r.json.clone())
        .filter(|j| j["source"] == "github")
        .collect()
}

async fn health(node: &Node, slug: &str) -> Value {
    node.get(&format!("/api/v1/communities/{slug}/plugins/github/health"))
        .await
        .expect_status(200)
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_issue_and_comment_reach_github_and_answer_its_identifiers() {
    let github = GithubStandin::start(TOKEN).await;
    github.add_repo("Octo-Org", "Hello-World");
    github.add_collaborator("Octo-Org/Hello-World", "monalisa");
    let node = Node::start("github-actions", NodeConfig::dev()).await;
    let instance = community_with_github(
        &node,
        "bench",
        &settings(&github, "Octo-Org", "Hello-World"),
    )
    .await;
    assert!(
        !instance.to_string().contains(TOKEN) && !instance.to_string().contains(SECRET),
        "secrets are masked: {instance}"
    );

    let issue = node
        .post_in(
            "bench",
            CREATE_ISSUE,
            &json!({"parameters": {
                "title": "Adopt the code of conduct",
                "body": "Proposed by the governance working group.",
                "labels": ["governance"],
                "assignees": [LOGIN, "monalisa"],
            }}),
        )
        .await
        .expect_status(200)
        .json();
    let stored = github.issues("Octo-Org/Hello-World");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        issue,
        json!({
            "id": stored[0]["id"],
            "number": 1,
            "url": "https://github.com/Octo-Org/Hello-World/issues/1",
            "state": "open",
        })
    );
    assert_eq!(stored[0]["title"], "Adopt the code of conduct");
    assert_eq!(stored[0]["labels"][0]["name"], "governance");
    assert_eq!(stored[0]["assignees"][0]["login"], LOGIN);
    assert_eq!(stored[0]["assignees"][1]["login"], "monalisa");

    let posts = github.requests_to("POST", "/repos/Octo-Org/Hello-World/issues");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let sent = &posts[0];
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(sent.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(sent.header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(sent.header("user-agent"), Some("agora"));
    assert_eq!(
        sent.json,
        Some(json!({
            "title": "Adopt the code of conduct",
            "body": "Proposed by the governance working group.",
            "labels": ["governance"],
            "assignees": [LOGIN, "monalisa"],
        }))
    );

    let comment = node
        .post_in(
            "bench",
            COMMENT,
            &json!({"parameters": {"issue_number": 1, "body": "The vote passed, 7 to 2."}}),
        )
        .await
        .expect_status(200)
        .json();
    let comments = github.comments("Octo-Org/Hello-World");
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comment["id"], comments[0]["id"]);
    assert_eq!(
        comment["url"],
        json!(format!(
            "https://github.com/Octo-Org/Hello-World/issues/1#issuecomment-{}",
            comments[0]["id"]
        ))
    );
    let posts = github.requests_to("POST", "/repos/Octo-Org/Hello-World/issues/1/comments");
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].json,
        Some(json!({"body": "The vote passed, 7 to 2."}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_refusals_answer_platform_error_with_githubs_message() {
    let github = GithubStandin::start(TOKEN).await;
    github.add_repo("octo", "repo");
    let node = Node::start("github-refusals", NodeConfig::dev()).await;
    community_with_github(&node, "good", &settings(&github, "octo", "repo")).await;
    let mut wrong_token = settings(&github, "octo", "repo");
    wrong_token["token"] = json!("ghp_revoked");
    community_with_github(&node, "revoked", &wrong_token).await;
    community_with_github(&node, "lost", &settings(&github, "octo", "no-such-repo")).await;

    let error = node
        .post_in(
            "revoked",
            CREATE_ISSUE,
            &json!({"parameters": {"title": "t"}}),
        )
        .await
        .expect_error(502, "platform_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Bad credentials"),
        "{error}"
    );

    let error = node
        .post_in("lost", CREATE_ISSUE, &json!({"parameters": {"title": "t"}}))
        .await
        .expect_error(502, "platform_error");
    assert!(
        error["message"].as_str().unwrap().contains("Not Found"),
        "{error}"
    );

    // A blank title passes Agora's schema but not GitHub's validation.
    let error = node
        .post_in(
            "good",
            CREATE_ISSUE,
            &json!({"parameters": {"title": "   "}}),
        )
        .await
        .expect_error(502, "platform_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Validation Failed") && message.contains("title: missing_field"),
        "{error}"
    );

    let error = node
        .post_in(
            "good",
            CREATE_ISSUE,
            &json!({"parameters": {"title": "t", "assignees": ["a-stranger"]}}),
        )
        .await
        .expect_error(502, "platform_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("assignees: invalid"),
        "{error}"
    );

    let error = node
        .post_in(
            "good",
            COMMENT,
            &json!({"parameters": {"issue_number": 404, "body": "anyone?"}}),
        )
        .await
        .expect_error(502, "platform_error");
    assert!(
        error["message"].as_str().unwrap().contains("Not Found"),
        "{error}"
    );
    assert!(github.issues("octo/repo").is_empty());

    // Agora refuses what its schema rules out without calling GitHub.
    let before = github.requests().len();
    node.post_in(
        "good",
        CREATE_ISSUE,
        &json!({"parameters": {"body": "no title"}}),
    )
    .await
    .expect_error(400, "schema_violation");
    node.post_in(
        "good",
        COMMENT,
        &json!({"parameters": {"issue_number": 0, "body": "x"}}),
    )
    .await
    .expect_error(400, "schema_violation");
    assert_eq!(github.requests().len(), before);

    // A wrong token makes the instance unhealthy; the right one keeps it healthy.
    eventually(WAIT, "the revoked instance to report failing", || async {
        let h = health(&node, "revoked").await;
        if h["status"] == "failing" || h["status"] == "degraded" {
            Ok(())
        } else {
            Err(h.to_string())
        }
    })
    .await;
    assert_eq!(health(&node, "good").await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_settings_answer_platform_not_configured() {
    let github = GithubStandin::start(TOKEN).await;
    github.add_repo("octo", "repo");
    let node = Node::start("github-unconfigured", NodeConfig::dev()).await;
    let mut partial = settings(&github, "octo", "repo");
    partial.as_object_mut().unwrap().remove("token");
    community_with_github(&node, "bench", &partial).await;

    let error = node
        .post_in(
            "bench",
            CREATE_ISSUE,
            &json!({"parameters": {"title": "t"}}),
        )
        .await
        .expect_error(400, "platform_not_configured");
    assert_eq!(error["field"], "settings.token", "{error}");
    assert!(github
        .requests_to("POST", "/repos/octo/repo/issues")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_become_driver_events_with_the_github_user() {
    let sink = Sink::start().await;
    let github = GithubStandin::start(TOKEN).await;
    github.add_repo("Octo-Org", "Hello-World");
    let node = Node::start(
        "github-webhooks",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    community_with_github(
        &node,
        "bench",
        &settings(&github, "Octo-Org", "Hello-World"),
    )
    .await;
    let issue = github.open_issue("Octo-Org/Hello-World", "Move to Discourse", "octocat");
    let hook = "/api/hooks/bench/github";

    // GitHub pings a new hook first: accepted, nothing for the driver.
    deliver(
        &node,
        hook,
        "ping",
        &gh::ping_event("Octo-Org/Hello-World"),
        Some(SECRET),
    )
    .await
    .expect_status(200);
    let opened = gh::issues_event("opened", &issue, "Octo-Org/Hello-World", "octocat");
    deliver_with_id(
        &node,
        hook,
        "issues",
        &opened,
        Some(SECRET),
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    )
    .await
    .expect_status(200);
    let merged = gh::pull_request_event(
        "closed",
        2,
        "Fix typo",
        true,
        "Octo-Org/Hello-World",
        "hubot",
    );
    deliver(&node, hook, "pull_request", &merged, Some(SECRET))
        .await
        .expect_status(200);
    let comment = gh::issue_comment_event(
        "created",
        &issue,
        555,
        "I agree",
        "Octo-Org/Hello-World",
        "monalisa",
    );
    deliver(&node, hook, "issue_comment", &comment, Some(SECRET))
        .await
        .expect_status(200);

    let received = sink
        .wait_for(WAIT, "three github events", |reqs| {
            github_events(reqs).len() >= 3
        })
        .await;
    let events = github_events(&received);
    let find = |t: &str| {
        events
            .iter()
            .find(|e| e["event_type"] == t)
            .unwrap_or_else(|| panic!("no {t} among {events:?}"))
            .clone()
    };

    let e = find("issues.opened");
    assert_eq!(e["community"], "bench");
    assert_eq!(
        e["initiator"],
        json!({"user_id": "octocat", "provider": "github"})
    );
    assert_eq!(
        e["data"],
        json!({
            "repository": "Octo-Org/Hello-World",
            "repository_id": 1296269,
            "number": 1,
            "title": "Move to Discourse",
            "url": "https://github.com/Octo-Org/Hello-World/issues/1",
            "state": "open",
            "labels": [],
            "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        })
    );

    let e = find("pull_request.closed");
    assert_eq!(e["initiator"]["user_id"], "hubot");
    assert_eq!(e["data"]["merged"], true);
    assert_eq!(e["data"]["number"], 2);
    assert_eq!(e["data"]["state"], "closed");
    assert_eq!(
        e["data"]["url"],
        "https://github.com/Octo-Org/Hello-World/pull/2"
    );

    let e = find("issue_comment.created");
    assert_eq!(e["initiator"]["user_id"], "monalisa");
    assert_eq!(e["data"]["body"], "I agree");
    assert_eq!(e["data"]["comment_id"], 555);
    assert_eq!(e["data"]["issue_number"], 1);
    assert_eq!(e["data"]["is_pull_request"], false);

    assert_eq!(events.len(), 3, "ping became no event: {events:?}");

    // The instance keeps them for its dashboard widget, newest first.
    let w = node
        .get("/api/v1/communities/bench/plugins/github/widgets/recent-events")
        .await
        .expect_status(200)
        .json();
    assert_eq!(w["kind"], "table", "{w}");
    let rows = w["data"]["rows"].as_array().unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r[1].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "issue_comment.created",
            "pull_request.closed",
            "issues.opened"
        ],
        "{w}"
    );
    assert_eq!(rows[2][2], 1, "{w}");
    assert_eq!(rows[2][3], "Move to Discourse", "{w}");
    assert_eq!(rows[2][4], "octocat", "{w}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_or_forged_webhooks_are_refused_with_401_and_forward_nothing() {
    let sink = Sink::start().await;
    let github = GithubStandin::start(TOKEN).await;
    let node = Node::start(
        "github-forged",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    community_with_github(&node, "bench", &settings(&github, "octo", "repo")).await;
    let mut no_secret = settings(&github, "octo", "other");
    no_secret.as_object_mut().unwrap().remove("webhook_secret");
    community_with_github(&node, "open", &no_secret).await;

    let issue = json!({"id": 1, "number": 1, "title": "Forged", "state": "open",
        "html_url": "https://github.com/octo/repo/issues/1", "labels": []});
    let forged = gh::issues_event("opened", &issue, "octo/repo", "mallory");
    for (path, secret) in [
        ("/api/hooks/bench/github", None),
        ("/api/hooks/bench/github", Some("a guessed secret")),
        // No webhook secret configured: nothing can be verified, so nothing is accepted.
        ("/api/hooks/open/github", Some(SECRET)),
        ("/api/hooks/open/github", Some("")),
    ] {
        let error = deliver(&node, path, "issues", &forged, secret)
            .await
            .expect_error(401, "invalid_signature");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("X-Hub-Signature-256"),
            "{error}"
        );
    }

    // A genuine delivery afterwards is the only event the driver ever sees.
    let mut genuine = forged.clone();
    genuine["issue"]["title"] = json!("Genuine");
    deliver(
        &node,
        "/api/hooks/bench/github",
        "issues",
        &genuine,
        Some(SECRET),
    )
    .await
    .expect_status(200);
    sink.wait_for_one(WAIT, "the genuine event", |r| {
        r.json.as_ref().is_some_and(|j| j["source"] == "github")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = github_events(&sink.requests());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["title"], "Genuine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_wide_webhooks_reach_the_community_of_their_repository() {
    let sink = Sink::start().await;
    let github = GithubStandin::start(TOKEN).await;
    let node = Node::start(
        "github-routing",
        NodeConfig::dev().driver(sink.url("/events")),
    )
    .await;
    // Platform-wide deliveries route by GitHub's repository id (issue 13 §7), which the
    // settings name next to owner/repo.
    let with_id = |repo: &str, id: u64| {
        let mut s = settings(&github, "Octo-Org", repo);
        s["repository_id"] = json!(id);
        s
    };
    community_with_github(&node, "alpha", &with_id("Alpha", 1001)).await;
    community_with_github(&node, "beta", &with_id("Beta", 1002)).await;

    // Beta was renamed on GitHub since: its id still routes it.
    let mut pr = gh::pull_request_event(
        "opened",
        7,
        "Add a charter",
        false,
        "Octo-Org/Beta-Renamed",
        "hubot",
    );
    pr["repository"]["id"] = json!(1002);

    // Verify first (issue 13 §7), with the App's secret: the node-wide settings. Without one
    // nothing on the platform route is authentic, whatever a community's secret is.
    deliver(
        &node,
        "/api/hooks/github",
        "pull_request",
        &pr,
        Some(SECRET),
    )
    .await
    .expect_error(401, "invalid_signature");
    node.put(
        "/api/v1/plugins/github/settings",
        &json!({"webhook_secret": SECRET}),
    )
    .await
    .expect_status(200);
    deliver(
        &node,
        "/api/hooks/github",
        "pull_request",
        &pr,
        Some(SECRET),
    )
    .await
    .expect_status(200);
    let event = sink
        .wait_for_one(WAIT, "the routed pull request event", |r| {
            r.json
                .as_ref()
                .is_some_and(|j| j["event_type"] == "pull_request.opened")
        })
        .await;
    let event = event.json.unwrap();
    assert_eq!(event["community"], "beta", "{event}");
    assert_eq!(event["data"]["number"], 7);
    assert_eq!(event["initiator"]["user_id"], "hubot");

    // A wrong signature is 401.
    deliver(
        &node,
        "/api/hooks/github",
        "pull_request",
        &pr,
        Some("wrong"),
    )
    .await
    .expect_error(401, "invalid_signature");

    // A repository no community follows has nowhere to go, even under a followed name: an
    // authentic delivery is 200 and does nothing (an organization or App ping must not show as
    // failed on GitHub) ...
    let mut stray = gh::pull_request_event("opened", 1, "x", false, "Octo-Org/Beta", "hubot");
    stray["repository"]["id"] = json!(9999);
    let resp = deliver(
        &node,
        "/api/hooks/github",
        "pull_request",
        &stray,
        Some(SECRET),
    )
    .await
    .expect_status(200)
    .json();
    assert_eq!(resp, json!({"delivered": 0}));
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1, "organization": {"login": "Octo-Org"}});
    let resp = deliver(&node, "/api/hooks/github", "ping", &ping, Some(SECRET))
        .await
        .expect_status(200)
        .json();
    assert_eq!(resp, json!({"delivered": 0}));
    // ... and an unauthentic one is 401 whether or not its repository is followed, so an
    // anonymous caller cannot tell which repositories the node follows.
    for payload in [&pr, &stray, &ping] {
        for secret in [None, Some("wrong")] {
            deliver(&node, "/api/hooks/github", "pull_request", payload, secret)
                .await
                .expect_error(401, "invalid_signature");
        }
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(github_events(&sink.requests()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_github_outage_is_retried_and_the_action_succeeds() {
    let github = GithubStandin::start(TOKEN).await;
    github.add_repo("octo", "repo");
    let node = Node::start("github-retry", NodeConfig::dev()).await;
    community_with_github(&node, "bench", &settings(&github, "octo", "repo")).await;

    // GitHub's 503 says when to come back; a create is then safe to send again.
    github.fail_next(1, 503, Some(1));
    let issue = node
        .post_in(
            "bench",
            CREATE_ISSUE,
            &json!({"parameters": {"title": "After the outage"}}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(issue["number"], 1, "{issue}");
    let posts = github.requests_to("POST", "/repos/octo/repo/issues");
    let statuses: Vec<u16> = posts.iter().map(|p| p.answered).collect();
    assert_eq!(statuses, vec![503, 201]);
    assert_eq!(github.issues("octo/repo").len(), 1, "created exactly once");

    // A secondary rate limit (429 with Retry-After) is waited out too.
    github.fail_next(1, 429, Some(1));
    node.post_in(
        "bench",
        COMMENT,
        &json!({"parameters": {"issue_number": 1, "body": "still here"}}),
    )
    .await
    .expect_status(200);
    assert_eq!(github.comments("octo/repo").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_github_turns_actions_away_and_health_failing_until_it_recovers() {
    let github = GithubStandin::start(TOKEN).await;
    github.add_repo("octo", "repo");
    let node = Node::start(
        "github-breaker",
        NodeConfig::dev()
            .arg("--breaker-cooldown-ms")
            .arg("500")
            .arg("--health-interval-ms")
            .arg("200"),
    )
    .await;
    community_with_github(&node, "bench", &settings(&github, "octo", "repo")).await;

    github.fail_always(503);
    for _ in 0..4 {
        let resp = node
            .post_in(
                "bench",
                CREATE_ISSUE,
                &json!({"parameters": {"title": "t"}}),
            )
            .await;
        assert_eq!(resp.status, 503, "{}", resp.describe());
        let code = resp.error_object()["code"].as_str().unwrap().to_string();
        assert!(
            code == "platform_unavailable" || code == "circuit_open",
            "{}",
            resp.describe()
        );
    }
    assert!(github.issues("octo/repo").is_empty());
    eventually(WAIT, "health to report the outage", || async {
        let h = health(&node, "bench").await;
        if (h["status"] == "failing" || h["status"] == "degraded")
            && h["breaker"]["state"] != "closed"
        {
            Ok(())
        } else {
            Err(h.to_string())
        }
    })
    .await;

    github.heal();
    eventually(WAIT, "health to recover", || async {
        let h = health(&node, "bench").await;
        if h["status"] == "ok" && h["breaker"]["state"] == "closed" {
            Ok(())
        } else {
            Err(h.to_string())
        }
    })
    .await;
    node.post_in(
        "bench",
        CREATE_ISSUE,
        &json!({"parameters": {"title": "Back"}}),
    )
    .await
    .expect_status(200);
    assert_eq!(github.issues("octo/repo").len(), 1);
}

/// Issue 13 §4: the same validly signed delivery (same `X-GitHub-Delivery`) posted three times
/// made three driver events. A replay is now 200 and does nothing, on both webhook routes,
/// across a restart, for the 72-hour window (the node's clock is moved past it here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_webhooks_are_taken_once_within_the_window_even_across_a_restart() {
    const START_MS: u64 = 1_800_000_000_000;
    const WINDOW_MS: u64 = 72 * 60 * 60 * 1000;
    let sink = Sink::start().await;
    let github = GithubStandin::start(TOKEN).await;
    github.add_repo("Octo-Org", "Hello-World");
    let mut node = Node::start(
        "github-replays",
        NodeConfig::dev()
            .driver(sink.url("/events"))
            .arg("--manual-clock")
            .arg(&START_MS.to_string()),
    )
    .await;
    let mut s = settings(&github, "Octo-Org", "Hello-World");
    s["repository_id"] = json!(1296269);
    community_with_github(&node, "bench", &s).await;
    node.put(
        "/api/v1/plugins/github/settings",
        &json!({"webhook_secret": SECRET}),
    )
    .await
    .expect_status(200);
    let issue = github.open_issue("Octo-Org/Hello-World", "Replays", "octocat");
    let opened = gh::issues_event("opened", &issue, "Octo-Org/Hello-World", "octocat");
    let events_now = || github_events(&sink.requests()).len();
    let settle = || tokio::time::sleep(Duration::from_millis(400));

    // The issue's request, three times, on the community's own hook.
    let community_hook = "/api/hooks/bench/github";
    for _ in 0..3 {
        deliver_with_id(
            &node,
            community_hook,
            "issues",
            &opened,
            Some(SECRET),
            "dup-1",
        )
        .await
        .expect_status(200);
    }
    sink.wait_for(WAIT, "the first event", |r| !github_events(r).is_empty())
        .await;
    settle().await;
    assert_eq!(events_now(), 1, "a redelivery made another event");

    // A forged request carrying a taken id is still refused: verification comes first.
    deliver_with_id(
        &node,
        community_hook,
        "issues",
        &opened,
        Some("wrong"),
        "dup-1",
    )
    .await
    .expect_error(401, "invalid_signature");

    // The platform-wide route dedupes the same way.
    let pr = gh::pull_request_event("opened", 9, "Once", false, "Octo-Org/Hello-World", "hubot");
    for expected in [1, 0, 0] {
        let answer = deliver_with_id(
            &node,
            "/api/hooks/github",
            "pull_request",
            &pr,
            Some(SECRET),
            "dup-2",
        )
        .await
        .expect_status(200)
        .json();
        assert_eq!(answer, json!({"delivered": expected}), "a replay was taken");
    }
    sink.wait_for(WAIT, "the routed event", |r| github_events(r).len() >= 2)
        .await;
    settle().await;
    assert_eq!(
        events_now(),
        2,
        "a platform-wide redelivery made another event"
    );

    // The ids are durable: after a restart the replays still do nothing.
    let status = node.term().await;
    assert!(status.success(), "{status}");
    node.restart().await;
    deliver_with_id(
        &node,
        community_hook,
        "issues",
        &opened,
        Some(SECRET),
        "dup-1",
    )
    .await
    .expect_status(200);
    deliver_with_id(
        &node,
        "/api/hooks/github",
        "pull_request",
        &pr,
        Some(SECRET),
        "dup-2",
    )
    .await
    .expect_status(200);
    settle().await;
    assert_eq!(events_now(), 2, "a replay after the restart made an event");

    // A new delivery id is a new delivery.
    deliver_with_id(
        &node,
        community_hook,
        "issues",
        &opened,
        Some(SECRET),
        "dup-3",
    )
    .await
    .expect_status(200);
    sink.wait_for(WAIT, "the third event", |r| github_events(r).len() >= 3)
        .await;

    // Past the window an id is forgotten (the node's clock restarted at START_MS, so this
    // moves it past every record's window).
    node.post(
        "/api/internal/dev/clock",
        &json!({"advance_ms": WINDOW_MS + 60_000}),
    )
    .await
    .expect_status(200);
    deliver_with_id(
        &node,
        community_hook,
        "issues",
        &opened,
        Some(SECRET),
        "dup-1",
    )
    .await
    .expect_status(200);
    sink.wait_for(WAIT, "the id taken again after its window", |r| {
        github_events(r).len() >= 4
    })
    .await;
    settle().await;
    assert_eq!(events_now(), 4);
}
