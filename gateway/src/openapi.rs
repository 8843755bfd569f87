//! The OpenAPI 3 document: exactly the routes of the route table, each described by its
//! handler's annotation, with the error body whose `code` is one of every `ErrorCode`.

use std::sync::OnceLock;

use utoipa::openapi::path::Paths;
use utoipa::OpenApi;

use crate::routes::ROUTES;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora",
        description = "A governance runtime for online communities. Metagov-compatible: drivers written for Metagov work unchanged. Internal routes need `Authorization: Bearer <driver token>` unless the node runs with --dev. `X-Agora-Actor: <agent id>` names the person a request acts for (recorded in the audit log). Every error is `{\"error\": {\"code\", \"message\", \"field\"}}`."
    ),
    components(schemas(
        crate::error::ErrorBody, crate::error::ErrorDetail,
        crate::metagov::ProcessOut, crate::routes::processes::BallotIn,
        crate::routes::communities::CommunityOut, crate::routes::communities::CommunityIn,
        crate::routes::communities::CommunityCreateIn,
        crate::routes::communities::PluginIn, crate::routes::plugins::PluginOut,
    )),
    tags(
        (name = "communities"), (name = "plugins"), (name = "actions"),
        (name = "processes"), (name = "votes"), (name = "webhooks"), (name = "plugin registry"),
        (name = "events"), (name = "cluster"), (name = "operations")
    )
)]
struct ApiDoc;

/// The document, its paths taken from the route table.
pub(crate) fn build() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let mut paths = Paths::new();
    for r in ROUTES {
        let (path, methods, operation) = (r.doc)();
        paths.add_path_operation(&path, methods, operation);
    }
    doc.paths = paths;
    doc
}

/// The document as JSON, with what the route table says beyond the annotations
/// ([`crate::openapi_rules`]).
pub(crate) fn hardened(names: &Names) -> serde_json::Value {
    let mut doc = serde_json::to_value(build()).unwrap_or_default();
    for r in ROUTES {
        let method = r.method.as_str().to_ascii_lowercase();
        if let Some(op) = doc
            .get_mut("paths")
            .and_then(|p| p.get_mut(r.path))
            .and_then(|item| item.get_mut(&method))
        {
            crate::openapi_rules::harden(r, op);
            op["operationId"] = serde_json::json!(operation_id(&method, r.path));
        }
    }
    crate::openapi_rules::components(&mut doc);
    crate::openapi_bodies::apply(&mut doc);
    crate::openapi_bodies::name_enums(&mut doc, names);
    doc
}

/// The names a node's plugin registry knows, for the path parameters that take them: a node
/// answers every other name with a 4xx, so the document can list them (and a client or a
/// fuzzer need not guess).
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Loaded plugins.
    pub plugins: Vec<String>,
    /// Loaded and refused plugins (`GET /api/v1/plugins/{name}` describes both).
    pub listed: Vec<String>,
    /// Every action, `<plugin>.<action>`.
    pub actions: Vec<String>,
    /// Actions callable at `/api/action/{name}`.
    pub public_actions: Vec<String>,
    /// Every governance process type, `<plugin>.<process>`.
    pub processes: Vec<String>,
}

impl Names {
    pub(crate) fn of(registry: &agora_plugins::PluginRegistry) -> Names {
        let mut n = Names::default();
        for p in registry.all() {
            let meta = p.meta();
            n.plugins.push(meta.name.to_string());
            for a in &meta.actions {
                let id = format!("{}.{}", meta.name, a.name);
                if a.public {
                    n.public_actions.push(id.clone());
                }
                n.actions.push(id);
            }
            n.processes.extend(
                meta.processes
                    .iter()
                    .map(|s| format!("{}.{}", meta.name, s.name)),
            );
        }
        n.listed = n.plugins.clone();
        n.listed
            .extend(registry.refused().iter().map(|r| r.name.clone()));
        n
    }
}

/// An operation's id, from its method and path: unique, as OpenAPI requires and client
/// generators and schemathesis' links rely on. (utoipa names an operation after its handler,
/// and several handlers share a name, `get` or `create`, across modules.)
fn operation_id(method: &str, path: &str) -> String {
    let path = path.strip_prefix("/api").unwrap_or(path);
    let mut id = method.to_string();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(part.chars().filter(|c| !matches!(c, '{' | '}')).map(|c| {
            if c.is_ascii_alphanumeric() {
                c
            } else {
                '_'
            }
        }));
    }
    id
}

/// The document as JSON text, built once: a process serves one registry for its life.
pub(crate) fn document(registry: &agora_plugins::PluginRegistry) -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| hardened(&Names::of(registry)).to_string())
        .clone()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The document a node with the built-in plugins serves.
    fn built_in_document() -> String {
        let registry = agora_plugins::builtin::all().expect("the built-in plugins");
        hardened(&Names::of(&registry)).to_string()
    }

    #[test]
    fn the_document_lists_exactly_the_route_table() {
        let doc: serde_json::Value =
            serde_json::from_str(&built_in_document()).expect("test fixture");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("test fixture") {
            for method in item.as_object().expect("test fixture").keys() {
                documented.insert((path.clone(), method.to_uppercase()));
            }
        }
        let declared: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.path.to_string(), r.method.to_string()))
            .collect();
        assert_eq!(documented, declared);
    }

    /// Issue 13 §6: what a fuzzer relies on, checked route by route against the table.
    #[test]
    fn the_document_says_what_each_route_of_the_table_answers() {
        use crate::auth::Access;
        let doc: serde_json::Value =
            serde_json::from_str(&built_in_document()).expect("test fixture");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let names: BTreeSet<&str> = agora_plugins::ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        for r in ROUTES {
            let method = r.method.as_str().to_ascii_lowercase();
            let at = format!("{} {}", r.method, r.path);
            let op = &doc["paths"][r.path][&method];
            let responses = op["responses"].as_object().expect("test fixture");
            let codes_at = |status: &str| -> Vec<String> {
                responses
                    .get(status)
                    .and_then(|r| r["x-error-codes"].as_array())
                    .map(|a| {
                        a.iter()
                            .map(|c| c.as_str().expect("test fixture").to_string())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            // The token: a bearer scheme and its 401, exactly on the token routes.
            let secured = op.get("security").is_some();
            assert_eq!(secured, r.access != Access::Public, "{at}: security");
            if r.access != Access::Public {
                assert!(codes_at("401").contains(&"unauthorized".into()), "{at}");
            }
            // Every error status names its codes, each a real code.
            for (status, resp) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let codes = codes_at(status);
                    assert!(!codes.is_empty(), "{at}: {status} names no code");
                    for c in &codes {
                        assert!(names.contains(c.as_str()), "{at}: {c}");
                    }
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{at}: {status}"
                    );
                }
            }
            assert!(
                codes_at("503").contains(&"too_many_connections".into()),
                "{at}"
            );
            // Bodies: empty is `{}` (optional) for JSON bodies; framing errors documented.
            if let Some(body) = op.get("requestBody") {
                let hook = r.path.starts_with("/api/hooks/");
                assert_eq!(body["required"].as_bool().unwrap_or(false), hook, "{at}");
                assert!(
                    codes_at("413").contains(&"payload_too_large".into()),
                    "{at}"
                );
                assert!(codes_at("408").contains(&"request_timeout".into()), "{at}");
                if !hook {
                    assert!(codes_at("400").contains(&"duplicate_key".into()), "{at}");
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().expect("test fixture");
                let place = p["in"].as_str().expect("test fixture");
                if matches!(
                    (place, name),
                    ("path", "slug" | "community") | ("header", "X-Metagov-Community")
                ) {
                    assert_eq!(
                        p["schema"]["pattern"],
                        crate::openapi_rules::SLUG_PATTERN,
                        "{at}: {name}"
                    );
                }
                if name == "limit" {
                    assert_eq!(
                        (
                            p["schema"]["minimum"].as_u64(),
                            p["schema"]["maximum"].as_u64()
                        ),
                        (Some(1), Some(1000))
                    );
                }
                if name == "cursor" {
                    assert_eq!(p["schema"]["minLength"], 1, "{at}");
                }
            }
        }
        // The examples: the 409s and the 400s kept for Metagov.
        let codes = |path: &str, method: &str, status: &str| -> Vec<String> {
            doc["paths"][path][method]["responses"][status]["x-error-codes"]
                .as_array()
                .expect("test fixture")
                .iter()
                .map(|c| c.as_str().expect("test fixture").to_string())
                .collect()
        };
        let ballots = "/api/internal/process/{name}/{id}/ballots";
        assert!(codes(ballots, "post", "409").contains(&"already_voted".into()));
        assert!(
            codes("/api/internal/community", "post", "400").contains(&"community_exists".into())
        );
        assert!(codes("/api/internal/process/{name}/{id}", "delete", "400")
            .contains(&"process_completed".into()));
        let choice = &doc["components"]["schemas"]["BallotIn"]["properties"]["choice"];
        assert_eq!(
            choice["oneOf"].as_array().expect("test fixture").len(),
            3,
            "{choice}"
        );
    }

    #[test]
    fn every_operation_has_its_own_id() {
        let doc = hardened(&Names::default());
        let mut seen = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("operations") {
                let id = op["operationId"].as_str().expect("an operationId");
                assert!(seen.insert(id.to_string()), "{method} {path}: {id} again");
            }
        }
        assert_eq!(seen.len(), ROUTES.len());
        assert_eq!(
            operation_id("get", "/api/internal/process/{name}/{id}"),
            "get_internal_process_name_id"
        );
    }

    #[test]
    fn every_schema_the_document_refers_to_is_in_it() {
        let text = built_in_document();
        let doc: serde_json::Value = serde_json::from_str(&text).expect("test fixture");
        let schemas = doc["components"]["schemas"]
            .as_object()
            .expect("test fixture");
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().expect("test fixture");
            assert!(
                schemas.contains_key(name),
                "{name} is referred to, not defined"
            );
        }
        let codes = &schemas["ErrorDetail"]["properties"]["code"]["enum"];
        let listed: Vec<&str> = codes
            .as_array()
            .expect("test fixture")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        let all: Vec<&str> = agora_plugins::ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(listed, all);
    }
}
