//! Schemas for the bodies that handlers read field by field (Metagov's identity routes, tokens,
//! governance actions) and for answers the annotations could only name as "an object".
//!
//! Each schema is built from the constants and lists the handler checks against. It never
//! refuses what the handler takes: schemathesis sends data that breaks the schema and fails
//! the run when the API takes it. It may let through what the handler then refuses (an
//! unknown community, a length counted in bytes), which no schema can say.

use agora_actors::identity::{LINK_TYPES, QUALITIES};
use agora_actors::services::{
    IDENTITY_TEXT_MAX, MAX_CREATE, TOKEN_COMMUNITIES_MAX, TOKEN_LABEL_MAX,
};
use agora_governance::{schema as gov, MAX_BATCH, NOTE_MAX};
use agora_plugins::vote::VOTER_ID_MAX;
use serde_json::{json, Value};

use crate::openapi::Names;
use crate::openapi_rules::SLUG_PATTERN;

/// Where a numeric id appears as a path parameter (1 to 20 digits without a leading zero).
pub(crate) const NUMERIC_ID_PATTERN: &str = gov::NUMERIC_ID;

/// An identity id where the identity routes read one: a JSON integer or its decimal text.
fn identity_id() -> Value {
    json!({"type": ["integer", "string"], "minimum": 0, "pattern": "^\\s*[0-9]+\\s*$"})
}

fn nullable_string() -> Value {
    json!({"type": ["string", "null"]})
}

/// A platform's name for an account or a community (`IDENTITY_TEXT_MAX`).
fn platform_text(nullable: bool) -> Value {
    let kind = if nullable {
        json!(["string", "null"])
    } else {
        json!("string")
    };
    json!({"type": kind, "minLength": 1, "maxLength": IDENTITY_TEXT_MAX})
}

/// One of `words`, or null (the handler's default).
fn nullable_enum(words: &[&str]) -> Value {
    let mut all: Vec<Value> = words.iter().map(|w| json!(w)).collect();
    all.push(Value::Null);
    json!({"enum": all})
}

/// The components the bodies below refer to: the governance core's (`Change`, one
/// alternative per change type, and the schemas those refer to), and the identity routes'.
fn components() -> serde_json::Map<String, Value> {
    let mut c = gov::components();
    c.insert("Change".into(), gov::change());
    c.insert(
        "LinkedAccount".into(),
        json!({
            "type": "object",
            "required": ["external_id", "community", "platform_type", "platform_identifier",
                         "custom_data", "link_type", "link_quality"],
            "properties": {
                "external_id": {"type": "integer"},
                "community": {"type": "string"},
                "community_platform_id": nullable_string(),
                "platform_type": {"type": "string"},
                "platform_identifier": {"type": "string"},
                "custom_data": {"type": "object"},
                "link_type": {"type": "string"},
                "link_quality": {"type": "string"}
            }
        }),
    );
    c.insert(
        "Identity".into(),
        json!({
            "type": "object",
            "required": ["source_ID", "primary_ID", "linked_accounts"],
            "properties": {
                "source_ID": {"type": "integer"},
                "primary_ID": {"type": "integer"},
                "linked_accounts": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/LinkedAccount"}
                }
            }
        }),
    );
    c
}

/// What the annotations' component schemas leave out.
fn refine_components(schemas: &mut serde_json::Map<String, Value>) {
    if let Some(voter) = schemas
        .get_mut("BallotIn")
        .and_then(|b| b.pointer_mut("/properties/voter"))
    {
        voter["minLength"] = json!(1);
        voter["maxLength"] = json!(VOTER_ID_MAX);
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The request body's schema of a route, where the handler reads its fields by hand.
fn request(method: &str, path: &str) -> Option<Value> {
    Some(match (method, path) {
        ("post", "/api/internal/identity/create_id") => json!({
            "type": "object",
            "required": ["community_slug"],
            "properties": {
                "community_slug": {"type": "string"},
                "count": {"type": ["integer", "string", "null"], "minimum": 1, "maximum": MAX_CREATE, "pattern": "^\\s*[0-9]+\\s*$"}
            }
        }),
        ("post", "/api/internal/identity/merge_ids") => json!({
            "type": "object",
            "required": ["primary_instance_id", "secondary_instance_id"],
            "properties": {
                "primary_instance_id": identity_id(),
                "secondary_instance_id": identity_id()
            }
        }),
        ("post", "/api/internal/identity/link_account") => json!({
            "type": "object",
            "required": ["community_slug", "external_id", "platform_type", "platform_identifier"],
            "properties": {
                "community_slug": {"type": "string"},
                "external_id": identity_id(),
                "platform_type": platform_text(false),
                "platform_identifier": platform_text(false),
                "community_platform_id": platform_text(true),
                "custom_data": {"type": ["object", "null"]},
                "link_type": nullable_enum(&LINK_TYPES),
                "link_quality": nullable_enum(&QUALITIES)
            }
        }),
        ("post", "/api/internal/identity/unlink_account") => json!({
            "type": "object",
            "required": ["community_slug", "platform_type", "platform_identifier"],
            "properties": {
                "community_slug": {"type": "string"},
                "platform_type": {"type": "string"},
                "platform_identifier": {"type": "string"},
                "community_platform_id": nullable_string()
            }
        }),
        ("post", "/api/v1/tokens") => json!({
            "type": "object",
            "required": ["role"],
            "properties": {
                "role": {"type": "string", "enum": ["viewer", "operator", "admin"]},
                "communities": {
                    "type": ["array", "null"],
                    "maxItems": TOKEN_COMMUNITIES_MAX,
                    "items": {"type": "string", "pattern": SLUG_PATTERN},
                    "description": "none or empty: every community; not for admins"
                },
                "label": {"type": ["string", "null"], "maxLength": TOKEN_LABEL_MAX}
            }
        }),
        ("post", "/api/v1/communities/{slug}/subscriptions") => {
            // `Subscription::parse`: flags default to edit, delete and comments on.
            let flag = json!({"type": ["boolean", "null"]});
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["item", "deliver_to"],
                "properties": {
                    "item": {"type": "string", "pattern": NUMERIC_ID_PATTERN},
                    "deep": flag, "edit": flag, "delete": flag, "comments": flag,
                    "relations": flag, "members": flag,
                    "deliver_to": {
                        "type": "string", "minLength": 1, "maxLength": 2000,
                        "pattern": "^https?://([^/?#]*@)?[^/?#@:]",
                        "description": "https; http only on a loopback host, with --dev"
                    }
                }
            })
        }
        // The platform's payload, handed to the plugin as sent: a plugin decides what it takes
        // (GitHub checks its signature first; randomness takes anything).
        ("post", "/api/hooks/{community}/{plugin}" | "/api/hooks/{plugin}") => json!({
            "description": "the platform's payload, as the platform sends it"
        }),
        ("post", "/api/v1/communities/{slug}/actions") => json!({
            "oneOf": [
                schema_ref("Change"),
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["batch"],
                    "properties": {
                        "batch": {
                            "type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                            "items": schema_ref("Change")
                        },
                        "note": {"type": ["string", "null"], "maxLength": NOTE_MAX}
                    }
                }
            ]
        }),
        _ => return None,
    })
}

/// The schema of a route's 2xx answer, where the annotation could only say "an object".
fn answer(method: &str, path: &str) -> Option<(&'static str, Value)> {
    let identities = json!({"type": "array", "items": schema_ref("Identity")});
    Some(match (method, path) {
        ("post", "/api/internal/identity/create_id") => (
            "201",
            json!({"type": "array", "items": {"type": "integer"}}),
        ),
        ("get", "/api/internal/identity/get_users")
        | ("get", "/api/internal/identity/filter_users_by_account") => ("200", identities),
        ("get", "/api/internal/identity/get_user")
        | ("post", "/api/internal/identity/merge_ids") => ("200", schema_ref("Identity")),
        ("post", "/api/internal/identity/link_account") => ("200", schema_ref("LinkedAccount")),
        ("get", "/api/internal/identity/get_linked_account") => (
            "200",
            json!({"anyOf": [schema_ref("LinkedAccount"), {"type": "object", "maxProperties": 0}]}),
        ),
        _ => return None,
    })
}

/// A query parameter's schema where the handler takes a closed set of words.
fn parameter(method: &str, path: &str, name: &str) -> Option<Value> {
    match (method, path, name) {
        ("get", "/api/v1/communities/{slug}/processes", "status") => {
            Some(json!({"type": "string", "enum": ["open", "all"]}))
        }
        _ => None,
    }
}

/// Which of the registry's lists a path parameter takes, by route and name.
fn names_for<'a>(path: &str, param: &str, names: &'a Names) -> Option<&'a [String]> {
    let list = match param {
        // Metagov deletes the instance by id and does not check the name; neither do we.
        "name" if path == "/api/internal/plugin/{name}/{id}" => return None,
        "plugin" => &names.plugins,
        "name"
            if matches!(
                path,
                "/api/v1/plugins/{name}" | "/api/v1/plugins/{name}/health"
            ) =>
        {
            &names.listed
        }
        "name"
            if path.starts_with("/api/internal/plugin/")
                || path.starts_with("/api/v1/plugins/")
                || path.starts_with("/api/v1/communities/{slug}/plugins/") =>
        {
            &names.plugins
        }
        "name" if path.starts_with("/api/internal/action/") => &names.actions,
        "name" if path.starts_with("/api/action/") => &names.public_actions,
        "name" if path.starts_with("/api/internal/process/") => &names.processes,
        _ => return None,
    };
    Some(list)
}

/// Lists the registry's names on the path parameters that take them. A list left empty
/// (a registry without public actions, or the unit tests' empty one) adds nothing: an empty
/// `enum` would say no request is valid.
pub(crate) fn name_enums(doc: &mut Value, names: &Names) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            for p in op
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if p["in"] != "path" {
                    continue;
                }
                let name = p["name"].as_str().unwrap_or_default().to_string();
                match names_for(path, &name, names) {
                    Some(list) if !list.is_empty() => p["schema"]["enum"] = json!(list),
                    _ => {}
                }
            }
        }
    }
}

/// Writes the schemas into the document's operations and components.
pub(crate) fn apply(doc: &mut Value) {
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in components() {
            // A name taken twice would silently replace an annotation's schema.
            let clash = schemas.insert(name.clone(), schema);
            debug_assert!(clash.is_none(), "component {name} is also an annotation's");
        }
        refine_components(schemas);
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if let Some(schema) = request(method, path) {
                if let Some(media) = op.pointer_mut("/requestBody/content/application~1json") {
                    media["schema"] = schema;
                }
            }
            for p in op
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let name = p["name"].as_str().unwrap_or_default().to_string();
                if let Some(schema) = parameter(method, path, &name) {
                    p["schema"] = schema;
                }
            }
            if let Some((status, schema)) = answer(method, path) {
                if let Some(media) =
                    op.pointer_mut(&format!("/responses/{status}/content/application~1json"))
                {
                    media["schema"] = schema;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route named here is in the document, with a JSON body or answer to replace: a
    /// renamed route would otherwise lose its schema without a sound.
    #[test]
    fn every_schema_lands_on_a_route_of_the_document() {
        let doc = crate::openapi::hardened(&crate::openapi::Names::default());
        let routes = [
            ("post", "/api/internal/identity/create_id"),
            ("post", "/api/internal/identity/merge_ids"),
            ("post", "/api/internal/identity/link_account"),
            ("post", "/api/internal/identity/unlink_account"),
            ("post", "/api/v1/tokens"),
            ("post", "/api/v1/communities/{slug}/actions"),
            ("post", "/api/hooks/{community}/{plugin}"),
            ("post", "/api/hooks/{plugin}"),
            ("post", "/api/v1/communities/{slug}/subscriptions"),
            ("get", "/api/internal/identity/get_users"),
            ("get", "/api/internal/identity/filter_users_by_account"),
            ("get", "/api/internal/identity/get_user"),
            ("get", "/api/internal/identity/get_linked_account"),
        ];
        for (method, path) in routes {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} is not in the document");
            if let Some(schema) = request(method, path) {
                assert_eq!(
                    op["requestBody"]["content"]["application/json"]["schema"], schema,
                    "{method} {path}"
                );
            }
            if let Some((status, schema)) = answer(method, path) {
                assert_eq!(
                    op["responses"][status]["content"]["application/json"]["schema"], schema,
                    "{method} {path}"
                );
            }
        }
        let kinds = doc["components"]["schemas"]["Change"]["oneOf"]
            .as_array()
            .map(Vec::len);
        assert_eq!(kinds, Some(agora_governance::ChangeKind::ALL.len()));
        for name in gov::components().keys() {
            assert_eq!(
                doc["components"]["schemas"][name],
                gov::components()[name],
                "{name}"
            );
        }
        assert_eq!(
            doc["components"]["schemas"]["BallotIn"]["properties"]["voter"]["maxLength"],
            json!(VOTER_ID_MAX)
        );
    }

    fn valid(schema: &Value, instance: &Value) -> bool {
        jsonschema::validator_for(schema)
            .expect("a valid schema")
            .is_valid(instance)
    }

    /// The action schema and the core's reading of a body agree on the request's shape:
    /// a single change or a batch, notes, the batch's limits. (Each change type's targets
    /// and parameters: the core's own tests, `governance/src/schema/tests.rs`.)
    #[test]
    fn the_action_schema_and_the_core_agree_on_bodies() {
        let mut doc = json!({"components": {"schemas": components()}});
        doc["oneOf"] = request("post", "/api/v1/communities/{slug}/actions").expect("a schema")
            ["oneOf"]
            .clone();
        let rename = json!({"name": "x"});
        // (body, whether the schema takes it, whether the core takes it)
        let cases = [
            (
                json!({"change": "rename", "target": "community", "params": rename}),
                true,
                true,
            ),
            (
                json!({"change": "rename", "target": "community", "params": rename, "note": null}),
                true,
                true,
            ),
            (
                json!({"change": "add_members", "target": "community", "params": {"agents": ["a"]}, "note": "n"}),
                true,
                true,
            ),
            (
                json!({"batch": [{"change": "rename", "target": "community", "params": rename, "note": "n"}], "note": "b"}),
                true,
                true,
            ),
            // Wrong only in its parameters.
            (
                json!({"change": "rename", "target": "community"}),
                false,
                false,
            ),
            (
                json!({"change": "rename", "target": "community", "params": null}),
                false,
                false,
            ),
            (
                json!({"batch": [{"change": "rename", "target": "community", "params": {"name": 1}}]}),
                false,
                false,
            ),
            (
                json!({"batch": [{"change": "enable_governing", "target": "item:4"}, {"change": "comment", "target": "item:4", "params": {"body": "b"}, "note": null}]}),
                true,
                true,
            ),
            (
                json!({"batch": vec![json!({"change": "approve", "target": "condition:1"}); MAX_BATCH + 1]}),
                false,
                false,
            ),
            (
                json!({"change": "nope", "target": "community", "params": rename}),
                false,
                false,
            ),
            (
                json!({"change": "rename", "target": "item:0", "params": rename}),
                false,
                false,
            ),
            (
                json!({"change": "rename", "target": "community", "params": rename, "extra": 1}),
                false,
                false,
            ),
            (
                json!({"change": "rename", "target": "community", "params": rename, "note": 5}),
                false,
                false,
            ),
            (
                json!({"change": "rename", "target": "community", "params": rename, "note": "x".repeat(NOTE_MAX + 1)}),
                false,
                false,
            ),
            (
                json!({"change": "rename", "target": "community", "params": []}),
                false,
                false,
            ),
            (json!({"batch": []}), false, false),
            (
                json!({"batch": [{"change": "rename", "target": "community", "params": rename}], "change": "rename"}),
                false,
                false,
            ),
            (
                json!({"target": "community", "params": rename}),
                false,
                false,
            ),
            (json!([]), false, false),
        ];
        for (body, schema, core) in cases {
            assert_eq!(valid(&doc, &body), schema, "schema on {body}");
            assert_eq!(
                agora_governance::Request::parse(&body).is_ok(),
                core,
                "core on {body}"
            );
        }
    }

    /// The subscription schema and what the handler and the core take agree, except where
    /// only the node's mode decides (http on a loopback host, with --dev).
    #[test]
    fn the_subscription_schema_and_the_handler_agree_on_bodies() {
        let schema = request("post", "/api/v1/communities/{slug}/subscriptions").expect("a schema");
        let url = "https://example.org/hook";
        // (body, whether the schema takes it, whether a --dev node takes it)
        let cases = [
            (json!({"item": "1", "deliver_to": url}), true, true),
            (
                json!({"item": "1", "deliver_to": url, "deep": true, "edit": null, "members": false}),
                true,
                true,
            ),
            (
                json!({"item": "1", "deliver_to": "http://127.0.0.1:9/x"}),
                true,
                true,
            ),
            // http elsewhere: the pattern cannot know the host rule.
            (
                json!({"item": "1", "deliver_to": "http://example.org/x"}),
                true,
                false,
            ),
            (
                json!({"item": "1", "deliver_to": "ftp://example.org/x"}),
                false,
                false,
            ),
            (
                json!({"item": "1", "deliver_to": "HTTPS://example.org/x"}),
                false,
                false,
            ),
            (json!({"item": "1", "deliver_to": ""}), false, false),
            (
                json!({"item": "1", "deliver_to": "https:///x"}),
                false,
                false,
            ),
            (json!({"item": "1", "deliver_to": "https://"}), false, false),
            (
                json!({"item": "1", "deliver_to": "https://ana@example.org"}),
                true,
                true,
            ),
            (
                json!({"item": "1", "deliver_to": format!("https://{}", "a".repeat(2000))}),
                false,
                false,
            ),
            (json!({"item": "0", "deliver_to": url}), false, false),
            (json!({"item": 1, "deliver_to": url}), false, false),
            (json!({"item": "1"}), false, false),
            (json!({"deliver_to": url}), false, false),
            (
                json!({"item": "1", "deliver_to": url, "deep": "yes"}),
                false,
                false,
            ),
            (
                json!({"item": "1", "deliver_to": url, "other": 1}),
                false,
                false,
            ),
        ];
        for (body, in_schema, taken) in cases {
            assert_eq!(valid(&schema, &body), in_schema, "schema on {body}");
            let handler = body["deliver_to"]
                .as_str()
                .is_none_or(|u| crate::routes::governance::deliverable(u, true));
            let core = agora_governance::Subscription::parse("ana", &body).is_ok();
            assert_eq!(handler && core, taken, "handler and core on {body}");
        }
    }

    /// With a real registry, every path parameter that names a plugin, an action or a process
    /// lists exactly the registry's names; the routes that describe refused plugins list
    /// those too.
    #[test]
    fn name_parameters_list_the_registry() {
        let registry = agora_plugins::builtin::all().expect("the built-in plugins");
        let names = Names::of(&registry);
        assert!(names.processes.contains(&"vote.proposal".to_string()));
        assert!(names.actions.contains(&"randomness.random-int".to_string()));
        let doc = crate::openapi::hardened(&names);
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for op in item.as_object().expect("operations").values() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let param = p["name"].as_str().unwrap_or_default();
                    if p["in"] != "path" || !matches!(param, "name" | "plugin") {
                        continue;
                    }
                    let listed = &p["schema"]["enum"];
                    let Some(want) = names_for(path, param, &names) else {
                        assert_eq!(path, "/api/internal/plugin/{name}/{id}");
                        assert!(listed.is_null(), "{path}");
                        continue;
                    };
                    if want.is_empty() {
                        assert!(listed.is_null(), "{path}: an empty enum");
                    } else {
                        assert_eq!(listed, &json!(want), "{path} {{{param}}}");
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen >= 20, "only {seen} name parameters listed");
        // A node that asked for a plugin this build lacks: it is listed, not loaded.
        let registry = agora_plugins::PluginRegistry::select(
            agora_plugins::builtin::available(),
            Some(&["vote".to_string(), "nowhere".to_string()]),
            agora_plugins::AGORA_VERSION,
        );
        let names = Names::of(&registry);
        assert_eq!(names.plugins, ["vote"]);
        assert_eq!(names.listed, ["vote", "nowhere"]);
        let doc = crate::openapi::hardened(&names);
        let enum_of = |path: &str, method: &str| {
            doc["paths"][path][method]["parameters"][0]["schema"]["enum"].clone()
        };
        assert_eq!(
            enum_of("/api/v1/plugins/{name}", "get"),
            json!(["vote", "nowhere"])
        );
        assert_eq!(
            enum_of("/api/v1/plugins/{name}/enable", "post"),
            json!(["vote"])
        );
    }
}
