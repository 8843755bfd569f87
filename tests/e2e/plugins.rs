//! Plugins: enabling (201 on a change, 200 when unchanged), disabling by instance id, and the
//! metadata and schemas a driver reads to build its forms.

use serde_json::{json, Value};

use crate::harness::{assert_fields, now_ms, randomness_config, rfc3339, Node, NodeConfig};

const ENABLE: &str = "/api/internal/plugin/randomness";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_answers_201_then_200_when_unchanged_then_201_on_a_config_change() {
    let node = Node::start("plugins-enable", NodeConfig::dev()).await;
    node.create_community("bench").await;

    let first = node
        .post_in("bench", ENABLE, &randomness_config())
        .await
        .expect_status(201)
        .json();
    assert!(first["id"].is_u64() || first["id"].is_i64(), "{first}");
    assert_fields(
        &first,
        &json!({
            "name": "randomness",
            "config": randomness_config(),
            "community": "bench",
            "auth_type": "none",
        }),
    );

    let unchanged = node
        .post_in("bench", ENABLE, &randomness_config())
        .await
        .expect_status(200)
        .json();
    assert_eq!(unchanged["id"], first["id"], "{unchanged}");
    assert_eq!(unchanged["config"], randomness_config());

    let new_config = json!({"default_low": 1, "default_high": 6});
    let changed = node
        .post_in("bench", ENABLE, &new_config)
        .await
        .expect_status(201)
        .json();
    assert_eq!(changed["config"], new_config, "{changed}");

    let community = node.community("bench").await;
    let plugins = community["plugins"].as_array().expect("plugins list");
    assert_eq!(plugins.len(), 1, "one instance per plugin: {community}");
    assert_fields(
        &plugins[0],
        &json!({"name": "randomness", "config": new_config, "community": "bench"}),
    );
    assert_eq!(plugins[0]["id"], changed["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_instance_deleted_by_id_is_disabled() {
    let node = Node::start("plugins-delete", NodeConfig::dev()).await;
    let instance = node.community_with_randomness("bench").await;
    let id = instance["id"].clone();

    let deleted = node
        .delete(&format!("/api/internal/plugin/randomness/{id}"))
        .await
        .expect_status(204);
    assert!(deleted.body.is_empty(), "{}", deleted.describe());

    assert_eq!(node.community("bench").await["plugins"], json!([]));
    node.post_in(
        "bench",
        "/api/internal/action/randomness.random-int",
        &json!({"parameters": {"low": 0, "high": 10}}),
    )
    .await
    .expect_error(400, "plugin_not_enabled");

    // Gone means gone: the same id again, and an id that never existed.
    node.delete(&format!("/api/internal/plugin/randomness/{id}"))
        .await
        .expect_error(404, "plugin_instance_not_found");
    node.delete("/api/internal/plugin/randomness/987654")
        .await
        .expect_error(404, "plugin_instance_not_found");

    // As in Metagov, the name segment is not checked: the id alone names the instance.
    let again = node
        .post_in("bench", ENABLE, &randomness_config())
        .await
        .expect_status(201)
        .json();
    node.delete(&format!("/api/internal/plugin/anything/{}", again["id"]))
        .await
        .expect_status(204);
    assert_eq!(node.community("bench").await["plugins"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomness_metadata_describes_its_actions_processes_and_events() {
    let node = Node::start("plugins-metadata", NodeConfig::dev()).await;

    let metadata = node
        .get("/api/internal/plugin/randomness/metadata")
        .await
        .expect_status(200)
        .json();
    assert_eq!(metadata["name"], json!("randomness"), "{metadata}");
    assert_eq!(metadata["auth_type"], json!("none"), "{metadata}");
    assert!(metadata["uses_webhook"].is_boolean(), "{metadata}");

    let schemas = &metadata["schemas"];
    assert!(schemas["config"].is_object(), "config schema: {metadata}");
    let config_text = schemas["config"].to_string();
    assert!(
        config_text.contains("default_low") && config_text.contains("default_high"),
        "config schema names its fields: {config_text}"
    );

    let actions = ids_of(&schemas["actions"]);
    assert!(
        actions.contains(&"randomness.random-int".to_string())
            && actions.contains(&"randomness.set-lucky-number".to_string()),
        "actions: {actions:?}"
    );
    for action in schemas["actions"].as_array().unwrap() {
        for key in ["description", "parameters_schema", "response_schema"] {
            assert!(action.get(key).is_some(), "action lacks {key}: {action}");
        }
    }
    let processes = ids_of(&schemas["processes"]);
    assert!(
        processes.contains(&"randomness.delayed-stochastic-vote".to_string()),
        "processes: {processes:?}"
    );
    let events = schemas["events"].as_array().expect("events list");
    for event in events {
        for key in ["event_type", "source", "schema"] {
            assert!(event.get(key).is_some(), "event lacks {key}: {event}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_schemas_maps_each_plugin_to_its_config_schema() {
    let node = Node::start("plugins-schemas", NodeConfig::dev()).await;
    let schemas = node
        .get("/api/internal/plugin-schemas")
        .await
        .expect_status(200)
        .json();
    let metadata = node
        .get("/api/internal/plugin/randomness/metadata")
        .await
        .expect_status(200)
        .json();
    assert!(schemas.is_object(), "{schemas}");
    assert_eq!(
        schemas["randomness"], metadata["schemas"]["config"],
        "plugin-schemas and metadata disagree"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_plugins_and_bad_enables_are_refused_without_side_effects() {
    let node = Node::start("plugins-errors", NodeConfig::dev()).await;
    node.create_community("bench").await;

    node.get("/api/internal/plugin/no-such-plugin/metadata")
        .await
        .expect_error(400, "unknown_plugin");
    node.post_in(
        "bench",
        "/api/internal/plugin/no-such-plugin",
        &randomness_config(),
    )
    .await
    .expect_error(400, "unknown_plugin");
    node.post(ENABLE, &randomness_config())
        .await
        .expect_error(400, "missing_header");
    node.post_in("nobody", ENABLE, &randomness_config())
        .await
        .expect_error(400, "community_not_found");
    node.post_in(
        "bench",
        ENABLE,
        &json!({"default_low": "two", "default_high": 200}),
    )
    .await
    .expect_error(400, "schema_violation");

    // Nothing was enabled by any of it, and the connection still serves.
    assert_eq!(node.community("bench").await["plugins"], json!([]));
    node.get("/api/internal/community/nobody")
        .await
        .expect_error(404, "community_not_found");
}

fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a list: {list}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_plugin_is_listed_with_its_reason_and_the_node_still_serves() {
    let node = Node::start(
        "plugins-refused",
        NodeConfig::dev().env("AGORA_PLUGINS", "randomness,no-such-plugin"),
    )
    .await;
    let list = node.get("/api/v1/plugins").await.expect_status(200).json();
    let plugins = list["plugins"].as_array().expect("plugins").clone();
    let find = |name: &str| plugins.iter().find(|p| p["name"] == name).cloned();
    assert_eq!(find("randomness").expect("randomness")["status"], "loaded");
    let refused = find("no-such-plugin").expect("the refused plugin is listed");
    assert_eq!(refused["status"], "refused");
    assert!(refused["reason"]
        .as_str()
        .unwrap_or("")
        .contains("not compiled"));
    assert!(find("vote").is_none(), "vote was not asked for: {list}");
    node.get("/api/v1/plugins/no-such-plugin")
        .await
        .expect_status(200);
    node.get("/api/v1/plugins/vote")
        .await
        .expect_error(404, "unknown_plugin");

    // The node works with what it loaded, and not with what it did not.
    node.community_with_randomness("ok").await;
    node.post_in(
        "ok",
        "/api/internal/action/randomness.random-int",
        &json!({"parameters": {"low": 0, "high": 3}}),
    )
    .await
    .expect_status(200);
    node.post_in(
        "ok",
        "/api/internal/process/vote.choice",
        &json!({"options": ["a"], "closing_at": "2030-01-01T00:00:00Z"}),
    )
    .await
    .expect_error(404, "unknown_process_type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_describes_each_loaded_plugin() {
    let node = Node::start("plugins-registry", NodeConfig::dev()).await;
    let r = node
        .get("/api/v1/plugins/randomness")
        .await
        .expect_status(200)
        .json();
    assert_eq!(r["status"], "loaded");
    assert_eq!(r["verbose_name"], "Randomness");
    assert!(r["config_schema"]["properties"]["default_low"].is_object());
    assert!(r["agora_versions"]["min"].is_string());
    let actions: Vec<&str> = r["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(actions, vec!["random-int", "set-lucky-number"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plugin_change_and_refusal_is_in_the_audit_log_with_filters_and_pages() {
    let mut node = Node::start("plugins-audit", NodeConfig::dev()).await;
    node.create_community("aud").await;
    node.create_community("other").await;
    let enabled = node.enable_randomness("aud").await;
    node.post_in("aud", ENABLE, &json!({"default_low": 5, "default_high": 9}))
        .await
        .expect_status(201);
    // Refused: the config fails the schema; nothing changes, but the refusal is recorded.
    node.post_in("aud", ENABLE, &json!({"default_low": "x"}))
        .await
        .expect_error(400, "schema_violation");
    node.enable_randomness("other").await;
    let id = enabled["id"].as_u64().expect("instance id");
    node.delete(&format!("/api/internal/plugin/randomness/{id}"))
        .await
        .expect_status(204);

    let all = node
        .get("/api/v1/plugin-audit-log?community=aud")
        .await
        .expect_status(200)
        .json();
    let entries = all["entries"].as_array().expect("entries").clone();
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("enable", "success"),
            ("settings_change", "success"),
            ("enable", "error"),
            ("disable", "success"),
        ],
        "{all}"
    );
    assert_eq!(entries[1]["before"]["default_low"], 2);
    assert_eq!(entries[1]["after"]["default_low"], 5);
    assert!(entries[2]["message"]
        .as_str()
        .unwrap_or("")
        .contains("schema_violation"));
    assert!(entries
        .iter()
        .all(|e| e["who"] == "dev" && e["plugin"] == "randomness"));

    // Filters combine; pages follow the cursor; the log survives a crash (append-only, durable).
    let disables = node
        .get("/api/v1/plugin-audit-log?action=disable")
        .await
        .expect_status(200)
        .json();
    assert_eq!(disables["entries"].as_array().map(Vec::len), Some(1));
    node.kill9().await;
    node.restart().await;
    let mut cursor: Option<String> = None;
    let mut paged = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/plugin-audit-log?plugin=randomness&limit=2&cursor={c}"),
            None => "/api/v1/plugin-audit-log?plugin=randomness&limit=2".to_string(),
        };
        let page = node.get(&path).await.expect_status(200).json();
        let got = page["entries"].as_array().expect("entries").clone();
        assert!(got.len() <= 2);
        paged.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged.len(), 5, "4 for 'aud' and 1 for 'other': {paged:?}");
    let ids: Vec<u64> = paged.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    let future = node
        .get("/api/v1/plugin-audit-log?since=2100-01-01T00:00:00Z")
        .await
        .expect_status(200)
        .json();
    assert_eq!(future["entries"].as_array().map(Vec::len), Some(0));
    for bad in ["since=yesterday", "cursor=abc", "limit=0", "limit=5000"] {
        node.get(&format!("/api/v1/plugin-audit-log?{bad}"))
            .await
            .expect_error(400, "invalid_query");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_layer_defaults_then_global_then_community_and_global_disable_stops_a_plugin() {
    let node = Node::start("plugins-layers", NodeConfig::dev()).await;
    node.community_with_randomness("own").await; // community settings {2, 200}
    node.create_community("bare").await;
    let random = |slug: &'static str| {
        let node = &node;
        async move {
            node.post_in(
                slug,
                "/api/internal/action/randomness.random-int",
                &json!({"parameters": {}}),
            )
            .await
        }
    };

    // Global settings sit between the plugin's defaults and each community's own settings.
    node.put(
        "/api/v1/plugins/randomness/settings",
        &json!({"default_low": 10, "default_high": 11}),
    )
    .await
    .expect_status(200);
    let bare = node
        .post(
            "/api/v1/communities/bare/plugins/randomness/enable",
            &json!({}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(bare["active"], true, "{bare}");
    assert_eq!(
        bare["effective_settings"],
        json!({"default_low": 10, "default_high": 11})
    );
    for _ in 0..5 {
        assert_eq!(random("bare").await.expect_status(200).json()["value"], 10);
    }
    let own = node
        .get("/api/v1/communities/own/plugins/randomness")
        .await
        .expect_status(200)
        .json();
    assert_eq!(own["effective_settings"]["default_low"], 2, "{own}");

    // An invalid global change names the field and changes nothing.
    node.put(
        "/api/v1/plugins/randomness/settings",
        &json!({"default_low": "ten"}),
    )
    .await
    .expect_error(400, "schema_violation");
    let global = node.get("/api/v1/plugins/randomness").await.json();
    assert_eq!(
        global["settings"],
        json!({"default_low": 10, "default_high": 11})
    );

    // Disabled on the node: refused everywhere, and shown as inactive; enabled again: back.
    node.post("/api/v1/plugins/randomness/disable", &json!({}))
        .await
        .expect_status(200);
    random("own").await.expect_error(400, "plugin_disabled");
    let listed = node
        .get("/api/v1/communities/own/plugins")
        .await
        .expect_status(200)
        .json();
    let entry = listed["plugins"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "randomness").cloned())
        .expect("randomness listed");
    assert_eq!(
        (entry["enabled"].clone(), entry["active"].clone()),
        (json!(true), json!(false))
    );
    node.post("/api/v1/plugins/randomness/enable", &json!({}))
        .await
        .expect_status(200);
    random("own").await.expect_status(200);

    // Disabled for one community only.
    let off = node
        .post(
            "/api/v1/communities/own/plugins/randomness/disable",
            &json!({}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(off["enabled"], false, "{off}");
    random("own").await.expect_error(400, "plugin_not_enabled");
    random("bare").await.expect_status(200);

    // The global changes are in the audit log, with no community.
    let log = node
        .get("/api/v1/plugin-audit-log?plugin=randomness")
        .await
        .json();
    let global_actions: Vec<(String, String)> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["community"].is_null())
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("settings_change", "success"),
        ("settings_change", "error"),
        ("disable", "success"),
        ("enable", "success"),
    ]
    .iter()
    .map(|(a, o)| (a.to_string(), o.to_string()))
    .collect();
    assert_eq!(global_actions, expect, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_plugin_state_survives_a_crash() {
    let mut node = Node::start("plugins-global-crash", NodeConfig::dev()).await;
    node.community_with_randomness("c").await;
    // Metagov's schema requires both settings, so a global layer names both (issue 9 §8).
    node.put(
        "/api/v1/plugins/randomness/settings",
        &json!({"default_low": 0, "default_high": 7}),
    )
    .await
    .expect_status(200);
    node.post("/api/v1/plugins/randomness/disable", &json!({}))
        .await
        .expect_status(200);
    node.kill9().await;
    node.restart().await;
    let global = node.get("/api/v1/plugins/randomness").await.json();
    assert_eq!(global["enabled"], false, "{global}");
    assert_eq!(
        global["settings"],
        json!({"default_low": 0, "default_high": 7})
    );
    node.post_in(
        "c",
        "/api/internal/action/randomness.random-int",
        &json!({"parameters": {}}),
    )
    .await
    .expect_error(400, "plugin_disabled");
}

fn with_testkit() -> NodeConfig {
    NodeConfig::dev().env("AGORA_PLUGINS", "randomness,vote,testkit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_lifecycle_hook_rolls_the_transition_back_and_is_audited() {
    let node = Node::start("plugins-hooks", with_testkit()).await;
    node.create_community("c").await;
    let kit = "/api/internal/plugin/testkit";

    // on_enable refuses: nothing is enabled, the failure is recorded.
    node.post_in("c", kit, &json!({"fail_on_enable": true}))
        .await
        .expect_error(409, "hook_failed");
    assert_eq!(node.community("c").await["plugins"], json!([]));

    // Secrets are masked everywhere the settings appear.
    let enabled = node
        .post_in("c", kit, &json!({"token": "s3cret", "label": "x"}))
        .await
        .expect_status(201)
        .json();
    assert_eq!(enabled["config"]["token"], "********", "{enabled}");
    let community = node.community("c").await;
    assert_eq!(community["plugins"][0]["config"]["token"], "********");
    let v1 = node
        .get("/api/v1/communities/c/plugins/testkit")
        .await
        .expect_status(200)
        .json();
    assert_eq!(v1["settings"]["token"], "********", "{v1}");
    assert!(!v1.to_string().contains("s3cret"), "{v1}");
    let log = node
        .get("/api/v1/plugin-audit-log?plugin=testkit")
        .await
        .text();
    assert!(!log.contains("s3cret"), "{log}");

    // on_disable refuses: the plugin stays enabled, and the community cannot be deleted.
    node.put(
        "/api/v1/communities/c/plugins/testkit/settings",
        &json!({"fail_on_disable": true}),
    )
    .await
    .expect_status(200);
    node.post("/api/v1/communities/c/plugins/testkit/disable", &json!({}))
        .await
        .expect_error(409, "hook_failed");
    node.delete("/api/internal/community/c")
        .await
        .expect_error(409, "hook_failed");
    assert_eq!(node.community("c").await["plugins"][0]["name"], "testkit");

    // A PUT enabling two plugins, one of which refuses, enables neither.
    node.create_community("d").await;
    node.put(
        "/api/internal/community/d",
        &json!({"plugins": [
            {"name": "randomness", "config": randomness_config()},
            {"name": "testkit", "config": {"fail_on_enable": true}}
        ]}),
    )
    .await
    .expect_error(409, "hook_failed");
    assert_eq!(node.community("d").await["plugins"], json!([]));

    let errors = node
        .get("/api/v1/plugin-audit-log?plugin=testkit")
        .await
        .json();
    let failed: Vec<(String, Option<String>)> = errors["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["outcome"] == "error")
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["community"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            ("enable".to_string(), Some("c".to_string())),
            ("disable".to_string(), Some("c".to_string())),
            ("disable".to_string(), Some("c".to_string())),
            ("enable".to_string(), Some("d".to_string())),
        ],
        "{errors}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_whose_on_load_fails_is_refused_and_audited() {
    let node = Node::start(
        "plugins-onload",
        with_testkit().env("AGORA_TESTKIT_FAIL_LOAD", "1"),
    )
    .await;
    let kit = node
        .get("/api/v1/plugins/testkit")
        .await
        .expect_status(200)
        .json();
    assert_eq!(kit["status"], "refused", "{kit}");
    assert!(
        kit["reason"]
            .as_str()
            .unwrap_or("")
            .contains("on_load failed"),
        "{kit}"
    );
    let log = node
        .get("/api/v1/plugin-audit-log?plugin=testkit&action=load")
        .await
        .json();
    assert_eq!(log["entries"].as_array().map(Vec::len), Some(1), "{log}");
    assert_eq!(log["entries"][0]["outcome"], "error");
    node.get("/api/v1/plugins/randomness")
        .await
        .expect_status(200);
}

/// Issue 13 §3: settings valid one by one but not together are refused at every layer, with
/// `invalid_settings`, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_do_not_fit_together_are_refused_and_nothing_is_stored() {
    let node = Node::start("plugins-cross-field", NodeConfig::dev()).await;
    node.community_with_randomness("c").await;
    let before = node
        .get("/api/v1/communities/c/plugins/randomness")
        .await
        .expect_status(200)
        .json();

    let error = node
        .put(
            "/api/v1/communities/c/plugins/randomness/settings",
            &json!({"default_low": 10, "default_high": 1}),
        )
        .await
        .expect_error(400, "invalid_settings");
    assert_eq!(error["field"], json!("default_high"), "{error}");
    let after = node
        .get("/api/v1/communities/c/plugins/randomness")
        .await
        .expect_status(200)
        .json();
    assert_eq!(after, before, "the refused settings were stored");
    node.post_in(
        "c",
        "/api/internal/action/randomness.random-int",
        &json!({"parameters": {}}),
    )
    .await
    .expect_status(200);

    // The same through Metagov's routes, and at the global layer.
    node.post_in("c", ENABLE, &json!({"default_low": 5, "default_high": 5}))
        .await
        .expect_error(400, "invalid_settings");
    node.put(
        "/api/v1/plugins/randomness/settings",
        &json!({"default_low": 3, "default_high": 2}),
    )
    .await
    .expect_error(400, "invalid_settings");
    let global = node.get("/api/v1/plugins/randomness").await.json();
    assert_eq!(global["settings"], json!({}), "{global}");
    assert_eq!(
        node.community("c").await["plugins"][0]["config"],
        randomness_config()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_declare_dashboard_widgets_and_supply_their_data() {
    let node = Node::start("plugins-widgets", NodeConfig::dev()).await;
    node.create_community("hall").await;

    // The registry lists what each plugin adds to the dashboard.
    let list = node.get("/api/v1/plugins").await.expect_status(200).json();
    let vote = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vote")
        .unwrap()
        .clone();
    assert_eq!(vote["widgets"][0]["name"], "open-votes", "{vote}");
    assert_eq!(vote["widgets"][0]["kind"], "table", "{vote}");
    assert_eq!(vote["navigation"][0]["label"], "Votes", "{vote}");
    let github = node
        .get("/api/v1/plugins/github")
        .await
        .expect_status(200)
        .json();
    assert_eq!(github["widgets"][0]["name"], "recent-events", "{github}");

    // The open-votes widget lists the community's open votes, and only open ones.
    let start = || async {
        let body = json!({"options": ["yes", "no"], "closing_at": rfc3339(now_ms() + 3_600_000)});
        node.post_in("hall", "/api/internal/process/vote.choice", &body)
            .await
            .expect_status(202)
            .header("location")
            .unwrap()
    };
    let open = start().await;
    let closed = start().await;
    node.close(&closed).await;
    let w = node
        .get("/api/v1/communities/hall/plugins/vote/widgets/open-votes")
        .await
        .expect_status(200)
        .json();
    assert_eq!(w["kind"], "table", "{w}");
    let ids: Vec<String> = w["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].to_string())
        .collect();
    let id = |loc: &str| loc.rsplit('/').next().unwrap().to_string();
    assert_eq!(ids, vec![id(&open)], "{w}");

    // Refusals: an undeclared widget, a plugin the community has not enabled, no community.
    node.get("/api/v1/communities/hall/plugins/vote/widgets/nope")
        .await
        .expect_error(404, "unknown_widget");
    node.get("/api/v1/communities/hall/plugins/github/widgets/recent-events")
        .await
        .expect_error(400, "plugin_not_enabled");
    node.get("/api/v1/communities/nowhere/plugins/vote/widgets/open-votes")
        .await
        .expect_error(404, "community_not_found");
    node.get("/api/v1/communities/hall/plugins/nope/widgets/open-votes")
        .await
        .expect_error(400, "unknown_plugin");
}
