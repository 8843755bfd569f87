//! Actions: the two `randomness` actions on the internal route, the public route that serves
//! only public actions, and the stable error answers for every way a call can be wrong.

use serde_json::json;

use crate::harness::{Node, NodeConfig};

const RANDOM_INT: &str = "/api/internal/action/randomness.random-int";
const LUCKY: &str = "/api/internal/action/randomness.set-lucky-number";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_int_answers_a_value_in_the_half_open_range() {
    let node = Node::start("actions-random-int", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;

    for _ in 0..30 {
        let answer = node
            .post_in(
                "bench",
                RANDOM_INT,
                &json!({"parameters": {"low": 0, "high": 10}}),
            )
            .await
            .expect_status(200)
            .json();
        let value = answer["value"]
            .as_i64()
            .unwrap_or_else(|| panic!("no integer value: {answer}"));
        assert!((0..10).contains(&value), "{value} not in [0, 10)");
    }

    // A range of one leaves no choice.
    for _ in 0..5 {
        let answer = node
            .post_in(
                "bench",
                RANDOM_INT,
                &json!({"parameters": {"low": 5, "high": 6}}),
            )
            .await
            .expect_status(200)
            .json();
        assert_eq!(answer["value"], json!(5), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_lucky_number_answers_the_number_it_stored() {
    let node = Node::start("actions-lucky", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;

    let answer = node
        .post_in("bench", LUCKY, &json!({"parameters": {"lucky_number": 7}}))
        .await
        .expect_status(200)
        .json();
    assert_eq!(answer, json!({"lucky_number": 7}));

    let again = node
        .post_in("bench", LUCKY, &json!({"parameters": {"lucky_number": 13}}))
        .await
        .expect_status(200)
        .json();
    assert_eq!(again, json!({"lucky_number": 13}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_route_serves_public_actions_only() {
    let node = Node::start(
        "actions-public",
        NodeConfig::dev().env("AGORA_PLUGINS", "randomness,vote,testkit"),
    )
    .await;
    node.community_with_randomness("bench").await;
    node.post_in("bench", "/api/internal/plugin/testkit", &json!({}))
        .await
        .expect_status(201);

    let answer = node
        .post_in(
            "bench",
            "/api/action/testkit.echo",
            &json!({"parameters": {"say": "hi"}}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(answer, json!({"say": "hi"}));

    // Neither randomness action is public in Metagov, so its public route answers 404 for
    // both (issue 9 §8); the driver's internal route still serves them.
    for (action, parameters) in [
        ("random-int", json!({"low": 0, "high": 10})),
        ("set-lucky-number", json!({"lucky_number": 7})),
    ] {
        node.post_in(
            "bench",
            &format!("/api/action/randomness.{action}"),
            &json!({ "parameters": parameters }),
        )
        .await
        .expect_error(404, "unknown_action");
    }

    // The refusals did not break the connection or the plugin.
    node.post_in("bench", LUCKY, &json!({"parameters": {"lucky_number": 7}}))
        .await
        .expect_status(200);
    node.post_in(
        "bench",
        RANDOM_INT,
        &json!({"parameters": {"low": 0, "high": 10}}),
    )
    .await
    .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_errors_answer_stable_codes() {
    let node = Node::start("actions-errors", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;
    node.create_community("bare").await;
    let good = json!({"parameters": {"low": 0, "high": 10}});

    // No community header.
    node.post(RANDOM_INT, &good)
        .await
        .expect_error(400, "missing_header");
    // A community without the plugin.
    node.post_in("bare", RANDOM_INT, &good)
        .await
        .expect_error(400, "plugin_not_enabled");
    // A community that does not exist.
    node.post_in("nobody", RANDOM_INT, &good)
        .await
        .expect_error(400, "community_not_found");
    // An action the plugin does not have.
    node.post_in(
        "bench",
        "/api/internal/action/randomness.no-such-action",
        &good,
    )
    .await
    .expect_error(404, "unknown_action");
    // Names that are not `<plugin>.<action>` at all, or name an unknown plugin.
    for path in [
        "/api/internal/action/nosuchplugin.random-int",
        "/api/internal/action/no-dot-at-all",
    ] {
        node.post_in("bench", path, &good)
            .await
            .expect_client_error();
    }

    // Each refusal left the community as it was, and the next call works.
    assert_eq!(
        node.community("bare").await["plugins"],
        json!([]),
        "a refused action enabled something"
    );
    node.post_in("bench", RANDOM_INT, &good)
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_of_the_wrong_type_is_a_schema_violation_naming_the_field() {
    let node = Node::start("actions-schema", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;

    let resp = node
        .post_in(
            "bench",
            RANDOM_INT,
            &json!({"parameters": {"low": "x", "high": 10}}),
        )
        .await;
    let error = resp.expect_error(400, "schema_violation");
    let field = error["field"].as_str().unwrap_or_default();
    assert!(
        field.contains("low"),
        "error.field should name `low`: {}",
        resp.describe()
    );

    let resp = node
        .post_in(
            "bench",
            LUCKY,
            &json!({"parameters": {"lucky_number": [7]}}),
        )
        .await;
    let error = resp.expect_error(400, "schema_violation");
    assert!(
        error["field"]
            .as_str()
            .unwrap_or_default()
            .contains("lucky_number"),
        "error.field should name `lucky_number`: {}",
        resp.describe()
    );

    node.post_in(
        "bench",
        RANDOM_INT,
        &json!({"parameters": {"low": 0, "high": 10}}),
    )
    .await
    .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_or_extreme_ranges_never_answer_5xx() {
    let node = Node::start("actions-ranges", NodeConfig::dev()).await;
    node.community_with_randomness("bench").await;

    // No integer n has low <= n < high: the only honest answer is a client error.
    for (low, high) in [(10, 0), (5, 5)] {
        node.post_in(
            "bench",
            RANDOM_INT,
            &json!({"parameters": {"low": low, "high": high}}),
        )
        .await
        .expect_client_error();
    }

    // Too large for any integer type: served within the range, or refused; not a crash.
    let huge = node
        .post_raw(
            Some("bench"),
            RANDOM_INT,
            br#"{"parameters":{"low":0,"high":1000000000000000000000000}}"#.to_vec(),
        )
        .await;
    if huge.status == 200 {
        let value = huge.json()["value"].as_f64().expect("a numeric value");
        assert!((0.0..1e24).contains(&value), "{}", huge.describe());
    } else {
        huge.expect_client_error();
    }

    // The widest i64 range is either served correctly or refused cleanly.
    let wide = node
        .post_in(
            "bench",
            RANDOM_INT,
            &json!({"parameters": {"low": i64::MIN, "high": i64::MAX}}),
        )
        .await;
    if wide.status == 200 {
        let value = wide.json()["value"].as_i64().expect("an integer value");
        assert!(value < i64::MAX, "{}", wide.describe());
    } else {
        wide.expect_client_error();
    }

    // The node is still fine.
    node.post_in(
        "bench",
        RANDOM_INT,
        &json!({"parameters": {"low": 0, "high": 10}}),
    )
    .await
    .expect_status(200);
}

/// An action reads its community's plugin settings from a cache the community actor keeps
/// current; every way of changing them must show in the very next action, and survive a kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_sees_each_change_of_its_plugin_at_once() {
    let mut node = Node::start("actions-resolve-cache", NodeConfig::dev()).await;
    let put = |low: Option<i64>| {
        let plugins = match low {
            Some(low) => json!([{"name": "randomness", "config": low_only(low)}]),
            None => json!([]),
        };
        json!({"slug": "c", "readable_name": "C", "plugins": plugins})
    };
    fn low_only(low: i64) -> serde_json::Value {
        json!({"default_low": low, "default_high": low + 1})
    }
    // Enables randomness on "c" with [low, low + 1), then checks the next action draws low.
    async fn enable_and_draw(node: &Node, low: i64) {
        node.post_in("c", "/api/internal/plugin/randomness", &low_only(low))
            .await
            .expect_status(201);
        assert_eq!(node.drawn("c").await, low);
    }
    async fn refused(node: &Node, code: &str) {
        node.post_in("c", RANDOM_INT, &json!({"parameters": {}}))
            .await
            .expect_error(400, code);
    }

    node.create_community("c").await;
    refused(&node, "plugin_not_enabled").await;
    enable_and_draw(&node, 5).await;
    assert_eq!(
        node.drawn("c").await,
        5,
        "the second answer comes from the cache"
    );

    // A new config through the plugin route, then through the community's PUT.
    enable_and_draw(&node, 7).await;
    node.put("/api/internal/community/c", &put(Some(9)))
        .await
        .expect_status(200);
    assert_eq!(node.drawn("c").await, 9);

    // Disabled by instance id, then enabled again.
    let id = node.community("c").await["plugins"][0]["id"].clone();
    node.delete(&format!("/api/internal/plugin/randomness/{id}"))
        .await
        .expect_status(204);
    refused(&node, "plugin_not_enabled").await;
    enable_and_draw(&node, 11).await;

    // Disabled by a PUT that no longer lists it.
    node.put("/api/internal/community/c", &put(None))
        .await
        .expect_status(200);
    refused(&node, "plugin_not_enabled").await;

    // The community deleted, then created again under the same slug.
    enable_and_draw(&node, 13).await;
    node.delete("/api/internal/community/c")
        .await
        .expect_status(204);
    refused(&node, "community_not_found").await;
    node.create_community("c").await;
    refused(&node, "plugin_not_enabled").await;
    enable_and_draw(&node, 15).await;

    // The last change was acknowledged, so it outlives the process (and its cache).
    node.kill9().await;
    node.restart().await;
    assert_eq!(node.drawn("c").await, 15);
}
