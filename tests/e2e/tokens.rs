//! Scoped API tokens: created, listed and revoked by admins; a viewer reads, an operator
//! changes within its communities, an admin does everything. Every route of the route table
//! is tried with every kind of token, through HTTP, against what its declared access allows.

use std::time::Duration;

use agora_gateway::{route_table, Access, Scope};
use serde_json::{json, Value};

use crate::harness::{http_client, Node, NodeConfig, COMMUNITY_HEADER, VOTE};

const DRIVER: &str = "e2e-driver-token-tokens";

/// Creates a token as the driver; answers (id, secret).
async fn token(node: &Node, role: &str, communities: &[&str]) -> (String, String) {
    let v = node
        .post(
            "/api/v1/tokens",
            &json!({"role": role, "communities": communities, "label": format!("{role} test")}),
        )
        .await
        .expect_status(201)
        .json();
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

/// One request with `secret` (or none); answers the status and the error code, if any. The
/// body is read for a moment only: the event stream never ends.
async fn probe(
    node: &Node,
    method: &reqwest::Method,
    path: &str,
    community: &str,
    secret: Option<&str>,
) -> (u16, String) {
    let mut req = http_client()
        .request(method.clone(), node.url(path))
        .header(COMMUNITY_HEADER, community)
        .timeout(Duration::from_secs(10));
    if let Some(s) = secret {
        req = req.bearer_auth(s);
    }
    if *method == reqwest::Method::POST || *method == reqwest::Method::PUT {
        req = req.json(&json!({}));
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(2), resp.bytes()).await;
    let code = match body {
        Ok(Ok(b)) => serde_json::from_slice::<Value>(&b)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        _ => String::new(),
    };
    (status, code)
}

/// What a token of `role` (limited to communities, and covering the request's community or
/// not) may do on a route with `access`: the policy, stated independently of the gateway.
fn allowed(access: Access, role: &str, limited: bool, covers: bool) -> bool {
    let changes = role == "operator" || role == "admin";
    let in_scope = !limited || covers;
    match access {
        Access::Public | Access::Read(Scope::Node) => true,
        Access::Read(Scope::Every) => !limited,
        // Any token; a limited one sees only its communities (checked below).
        Access::Read(Scope::Listed) => true,
        Access::Read(Scope::Community(_)) => in_scope,
        Access::Change(Scope::Node | Scope::Every | Scope::Listed) => changes && !limited,
        Access::Change(Scope::Community(_)) => changes && in_scope,
        Access::Admin => role == "admin",
    }
}

#[test]
fn the_table_declares_what_matters() {
    let access = |m: &str, p: &str| {
        route_table()
            .into_iter()
            .find(|r| r.method.as_str() == m && r.path == p)
            .unwrap_or_else(|| panic!("{m} {p} is not in the table"))
            .access
    };
    assert_eq!(access("POST", "/api/v1/tokens"), Access::Admin);
    assert_eq!(access("GET", "/api/v1/tokens"), Access::Admin);
    assert_eq!(access("POST", "/api/internal/community"), Access::Admin);
    assert_eq!(
        access("PUT", "/api/v1/plugins/{name}/settings"),
        Access::Admin
    );
    assert_eq!(
        access("GET", "/api/internal/events"),
        Access::Read(Scope::Every)
    );
    assert!(matches!(
        access("DELETE", "/api/internal/community/{slug}"),
        Access::Change(Scope::Community(_))
    ));
    assert!(matches!(
        access("PUT", "/api/v1/communities/{slug}/plugins/{name}/settings"),
        Access::Change(Scope::Community(_))
    ));
    // Only operations, public actions and webhooks are open.
    for r in route_table() {
        if r.access == Access::Public {
            assert!(
                r.path.starts_with("/api/hooks/")
                    || r.path.starts_with("/api/action/")
                    || !r.path.starts_with("/api/")
                    || r.path == "/api/openapi.json"
                    || r.path == "/api/docs"
                    || r.path.starts_with("/dashboard"),
                "{} {} is public",
                r.method,
                r.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_every_role() {
    let node = Node::start("tokens-walk", NodeConfig::with_token(DRIVER)).await;
    let (_, viewer) = token(&node, "viewer", &[]).await;
    let (_, operator) = token(&node, "operator", &[]).await;
    let (_, admin) = token(&node, "admin", &[]).await;
    let (revoked_id, revoked) = token(&node, "admin", &[]).await;
    node.delete(&format!("/api/v1/tokens/{revoked_id}"))
        .await
        .expect_status(200);

    for (n, route) in route_table().into_iter().enumerate() {
        // A fresh community per route, with a plugin instance and a process, so a route that
        // changes or deletes things cannot disturb the next one.
        let c = format!("walk{n}");
        let instance = node.community_with_randomness(&c).await["id"].clone();
        let location = node.start_vote(&c, 3600.0, None).await;
        let process_id = location.rsplit('/').next().unwrap().to_string();
        let (_, viewer_c) = token(&node, "viewer", &[&c]).await;
        let (_, operator_c) = token(&node, "operator", &[&c]).await;
        let (_, viewer_else) = token(&node, "viewer", &["elsewhere"]).await;
        let (_, operator_else) = token(&node, "operator", &["elsewhere"]).await;
        let (spare, _) = token(&node, "viewer", &[]).await;

        let is_process = route.path.starts_with("/api/internal/process/");
        let node_wide_plugin = route.path.starts_with("/api/v1/plugins/");
        let mut path = route
            .path
            .replace("{slug}", &c)
            .replace("{community}", &c)
            .replace("{plugin}", "randomness")
            .replace("{token}", &spare)
            // Changing a plugin node-wide must not disturb the next fixtures' `randomness`.
            .replace(
                "{name}",
                if is_process {
                    VOTE
                } else if node_wide_plugin {
                    "github"
                } else {
                    "randomness"
                },
            )
            .replace(
                "{id}",
                &if is_process {
                    process_id.clone()
                } else {
                    instance.to_string()
                },
            );
        if route.path == "/api/v1/plugin-audit-log" {
            path.push_str(&format!("?community={c}"));
        }
        let what = format!("{} {}", route.method, route.path);

        if route.access != Access::Public {
            for (who, secret) in [
                ("no token", None),
                ("an unknown token", Some("agora_0000")),
                ("a revoked token", Some(revoked.as_str())),
            ] {
                let (status, code) = probe(&node, &route.method, &path, &c, secret).await;
                assert_eq!(
                    (status, code.as_str()),
                    (401, "unauthorized"),
                    "{what} with {who}"
                );
            }
        }
        // Refusals first, while the fixtures are intact; then the tokens that may.
        let mut cases = [
            ("viewer elsewhere", "viewer", true, false, &viewer_else),
            (
                "operator elsewhere",
                "operator",
                true,
                false,
                &operator_else,
            ),
            ("viewer here", "viewer", true, true, &viewer_c),
            ("viewer", "viewer", false, false, &viewer),
            ("operator here", "operator", true, true, &operator_c),
            ("operator", "operator", false, false, &operator),
            ("admin", "admin", false, false, &admin),
            ("driver", "admin", false, false, &DRIVER.to_string()),
        ];
        cases.sort_by_key(|(_, role, limited, covers, _)| {
            allowed(route.access, role, *limited, *covers)
        });
        for (who, role, limited, covers, secret) in cases {
            let (status, code) = probe(&node, &route.method, &path, &c, Some(secret)).await;
            if allowed(route.access, role, limited, covers) {
                assert!(
                    status != 401 && status != 403 && code != "forbidden",
                    "{what}: {who} is refused ({status} {code})"
                );
            } else {
                assert_eq!(
                    (status, code.as_str()),
                    (403, "forbidden"),
                    "{what}: {who} is let through"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_without_secrets_and_changes_name_the_token() {
    let node = Node::start("tokens-audit", NodeConfig::with_token(DRIVER)).await;
    node.create_community("ops").await;
    let (id, secret) = token(&node, "operator", &["ops"]).await;

    // The operator enables a plugin in its community; the audit log names the token by id.
    let resp = node
        .send(
            node.anonymous(
                reqwest::Method::POST,
                "/api/v1/communities/ops/plugins/randomness/enable",
            )
            .bearer_auth(&secret)
            .json(&crate::harness::randomness_config()),
        )
        .await;
    assert!(resp.status < 300, "{}", resp.describe());
    let log = node
        .get("/api/v1/plugin-audit-log?community=ops")
        .await
        .expect_status(200);
    assert!(
        !log.text().contains(&secret),
        "the secret is in the audit log"
    );
    let entries = log.json()["entries"].clone();
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "enable")
        .unwrap_or_else(|| panic!("no enable entry: {entries}"));
    assert_eq!(entry["who"], json!(id));

    // Listing shows the token without its secret or hash; the creation is audited.
    let list = node.get("/api/v1/tokens").await.expect_status(200);
    assert!(!list.text().contains(&secret));
    assert!(!list.text().contains("hash"));
    let listed = list.json()["tokens"].clone();
    assert_eq!(listed[0]["id"], json!(id));
    assert_eq!(listed[0]["role"], json!("operator"));
    assert_eq!(listed[0]["communities"], json!(["ops"]));
    assert_eq!(listed[0]["revoked_at"], Value::Null);
    let audit = node
        .get("/api/v1/plugin-audit-log?plugin=api-tokens")
        .await
        .expect_status(200)
        .json();
    assert_eq!(audit["entries"][0]["action"], json!("token_create"));

    // Out of scope: 403 with the reason; after revocation: 401.
    let other = node
        .send(
            node.anonymous(reqwest::Method::GET, "/api/internal/community/elsewhere")
                .bearer_auth(&secret),
        )
        .await;
    let err = other.expect_error(403, "forbidden");
    assert!(
        err["message"].as_str().unwrap().contains("limited to ops"),
        "{err}"
    );
    node.delete(&format!("/api/v1/tokens/{id}"))
        .await
        .expect_status(200);
    node.send(
        node.anonymous(reqwest::Method::GET, "/api/internal/community/ops")
            .bearer_auth(&secret),
    )
    .await
    .expect_error(401, "unauthorized");
    node.delete("/api/v1/tokens/tok_nope")
        .await
        .expect_error(404, "token_not_found");

    // Bad requests change nothing.
    for body in [
        json!({}),
        json!({"role": "root"}),
        json!({"role": "admin", "communities": ["ops"]}),
        json!({"role": "viewer", "communities": ["no spaces"]}),
        json!({"role": "viewer", "communities": "ops"}),
    ] {
        node.post("/api/v1/tokens", &body)
            .await
            .expect_error(400, "invalid_request");
    }
    let after = node.get("/api/v1/tokens").await.expect_status(200).json();
    assert_eq!(after["tokens"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_a_restart() {
    let mut node = Node::start("tokens-restart", NodeConfig::with_token(DRIVER)).await;
    let (_, secret) = token(&node, "viewer", &[]).await;
    node.kill9().await;
    node.restart().await;
    let resp = node
        .send(
            node.anonymous(reqwest::Method::GET, "/api/v1/plugins")
                .bearer_auth(&secret),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.describe());
}

/// The community list (`Read(Listed)`) answers every token; one limited to communities sees
/// only those, paged like the full list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_token_lists_only_its_communities() {
    let node = Node::start("tokens-list", NodeConfig::with_token(DRIVER)).await;
    for slug in ["c-a", "c-b", "c-c", "c-d"] {
        node.create_community(slug).await;
    }
    let (_, mine) = token(&node, "viewer", &["c-b", "c-d", "c-gone"]).await;
    let list = |secret: String, query: &'static str| {
        let node = &node;
        async move {
            let resp = reqwest::Client::new()
                .get(node.url(&format!("/api/v1/communities{query}")))
                .bearer_auth(secret)
                .send()
                .await
                .expect("the list answers");
            assert_eq!(resp.status().as_u16(), 200);
            let v: Value = resp.json().await.expect("JSON");
            let slugs: Vec<String> = v["communities"]
                .as_array()
                .expect("a list")
                .iter()
                .map(|c| c["slug"].as_str().unwrap_or_default().to_string())
                .collect();
            (slugs, v["next"].clone())
        }
    };
    assert_eq!(
        list(mine.clone(), "").await,
        (vec!["c-b".to_string(), "c-d".to_string()], Value::Null)
    );
    let (first, next) = list(mine.clone(), "?limit=1").await;
    assert_eq!(
        (first, next.clone()),
        (vec!["c-b".to_string()], json!("c-b"))
    );
    assert_eq!(
        list(mine, "?limit=1&after=c-b").await,
        (vec!["c-d".to_string()], Value::Null)
    );
    let (_, all) = token(&node, "viewer", &[]).await;
    assert_eq!(list(all, "").await.0.len(), 4);
}
