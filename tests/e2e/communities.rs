//! Communities: create, read, replace (`PUT` is the whole truth about a community's plugins),
//! delete, and the Metagov answers a driver relies on for each.

use serde_json::json;

use crate::harness::{assert_fields, randomness_config, Node, NodeConfig};

const COMMUNITY: &str = "/api/internal/community";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_community_is_readable_with_an_empty_plugin_list() {
    let node = Node::start("communities-create", NodeConfig::dev()).await;

    let created = node
        .post(
            COMMUNITY,
            &json!({"slug": "bench", "readable_name": "Bench community"}),
        )
        .await
        .expect_status(201)
        .json();
    assert_fields(
        &created,
        &json!({"slug": "bench", "readable_name": "Bench community", "plugins": []}),
    );

    let read = node.community("bench").await;
    assert_fields(
        &read,
        &json!({"slug": "bench", "readable_name": "Bench community", "plugins": []}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn community_created_without_a_slug_gets_a_uuid_slug() {
    let node = Node::start("communities-uuid", NodeConfig::dev()).await;

    let created = node
        .post(COMMUNITY, &json!({}))
        .await
        .expect_status(201)
        .json();
    let slug = created["slug"].as_str().expect("a slug").to_string();
    assert!(is_uuid(&slug), "slug {slug:?} is not a UUID");
    assert_eq!(created["readable_name"], json!(""), "{created}");
    assert_eq!(created["plugins"], json!([]), "{created}");

    let read = node.community(&slug).await;
    assert_eq!(read["slug"], json!(slug));

    let second = node
        .post(COMMUNITY, &json!({}))
        .await
        .expect_status(201)
        .json();
    assert_ne!(second["slug"], created["slug"], "two UUID slugs collided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_slug_is_refused_and_the_original_is_kept() {
    let node = Node::start("communities-duplicate", NodeConfig::dev()).await;
    node.post(
        COMMUNITY,
        &json!({"slug": "bench", "readable_name": "Original"}),
    )
    .await
    .expect_status(201);

    node.post(
        COMMUNITY,
        &json!({"slug": "bench", "readable_name": "Impostor"}),
    )
    .await
    .expect_error(400, "community_exists");

    let read = node.community("bench").await;
    assert_eq!(read["readable_name"], json!("Original"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_community_is_404_community_not_found() {
    let node = Node::start("communities-unknown", NodeConfig::dev()).await;
    node.get("/api/internal/community/nobody-here")
        .await
        .expect_error(404, "community_not_found");
    node.delete("/api/internal/community/nobody-here")
        .await
        .expect_error(404, "community_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_replaces_the_name_and_the_plugin_list_as_the_whole_truth() {
    let node = Node::start("communities-put", NodeConfig::dev()).await;
    node.create_community("town").await;

    let with_plugin = json!({
        "slug": "town",
        "readable_name": "Town hall",
        "plugins": [{"name": "randomness", "config": randomness_config()}],
    });
    let answer = node
        .put("/api/internal/community/town", &with_plugin)
        .await
        .expect_status(200)
        .json();
    assert_fields(
        &answer,
        &json!({"slug": "town", "readable_name": "Town hall"}),
    );
    let plugins = answer["plugins"].as_array().expect("plugins list");
    assert_eq!(plugins.len(), 1, "{answer}");
    let plugin = &plugins[0];
    assert!(plugin["id"].is_i64() || plugin["id"].is_u64(), "{plugin}");
    assert_fields(
        plugin,
        &json!({
            "name": "randomness",
            "config": randomness_config(),
            "community": "town",
            "auth_type": "none",
        }),
    );
    assert_eq!(
        node.community("town").await,
        answer,
        "GET disagrees with PUT"
    );

    // The same list again changes nothing: same instance, same id.
    let again = node
        .put("/api/internal/community/town", &with_plugin)
        .await
        .expect_status(200)
        .json();
    assert_eq!(again["plugins"][0]["id"], plugin["id"], "{again}");
    assert_eq!(again["plugins"].as_array().map(Vec::len), Some(1));

    // The plugin works now.
    node.post_in(
        "town",
        "/api/internal/action/randomness.random-int",
        &json!({"parameters": {"low": 0, "high": 10}}),
    )
    .await
    .expect_status(200);

    // A new config is applied.
    let reconfigured = node
        .put(
            "/api/internal/community/town",
            &json!({
                "slug": "town",
                "readable_name": "Town hall",
                "plugins": [{"name": "randomness", "config": {"default_low": 1, "default_high": 6}}],
            }),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(
        reconfigured["plugins"][0]["config"],
        json!({"default_low": 1, "default_high": 6}),
        "{reconfigured}"
    );

    // Leaving the plugin out disables it.
    let without = node
        .put(
            "/api/internal/community/town",
            &json!({"slug": "town", "readable_name": "Town hall", "plugins": []}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(without["plugins"], json!([]), "{without}");
    assert_eq!(node.community("town").await["plugins"], json!([]));
    node.post_in(
        "town",
        "/api/internal/action/randomness.random-int",
        &json!({"parameters": {"low": 0, "high": 10}}),
    )
    .await
    .expect_error(400, "plugin_not_enabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_without_plugins_disables_them_as_in_metagov() {
    // Metagov's PUT is the whole truth: a body without `plugins` names none, so the community
    // keeps none (Agora used to keep them).
    let node = Node::start("communities-put-no-plugins", NodeConfig::dev()).await;
    node.community_with_randomness("town").await;
    let answer = node
        .put(
            "/api/internal/community/town",
            &json!({"slug": "town", "readable_name": "Town hall"}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(answer["plugins"], json!([]), "{answer}");
    assert_eq!(answer["readable_name"], "Town hall");
    assert_eq!(node.community("town").await["plugins"], json!([]));
    node.post_in(
        "town",
        "/api/internal/action/randomness.random-int",
        &json!({"parameters": {"low": 0, "high": 10}}),
    )
    .await
    .expect_error(400, "plugin_not_enabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_on_an_unknown_community_is_404_and_creates_nothing() {
    let node = Node::start("communities-put-unknown", NodeConfig::dev()).await;
    node.put(
        "/api/internal/community/ghost",
        &json!({"slug": "ghost", "readable_name": "Ghost", "plugins": []}),
    )
    .await
    .expect_error(404, "community_not_found");
    node.get("/api/internal/community/ghost")
        .await
        .expect_error(404, "community_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_community_is_gone_for_reads_and_actions() {
    let node = Node::start("communities-delete", NodeConfig::dev()).await;
    node.community_with_randomness("doomed").await;
    node.create_community("survivor").await;

    let deleted = node
        .delete("/api/internal/community/doomed")
        .await
        .expect_status(204);
    assert!(deleted.body.is_empty(), "{}", deleted.describe());

    node.get("/api/internal/community/doomed")
        .await
        .expect_error(404, "community_not_found");
    node.post_in(
        "doomed",
        "/api/internal/action/randomness.random-int",
        &json!({"parameters": {"low": 0, "high": 10}}),
    )
    .await
    .expect_error(400, "community_not_found");
    node.delete("/api/internal/community/doomed")
        .await
        .expect_error(404, "community_not_found");

    // Its neighbour is untouched.
    assert_eq!(node.community("survivor").await["slug"], json!("survivor"));
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}
