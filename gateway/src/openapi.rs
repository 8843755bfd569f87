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

/// The document as JSON text, built once.
pub(crate) fn document() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        build()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_lists_exactly_the_route_table() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((path.clone(), method.to_uppercase()));
            }
        }
        let declared: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.path.to_string(), r.method.to_string()))
            .collect();
        assert_eq!(documented, declared);
    }

    #[test]
    fn every_schema_the_document_refers_to_is_in_it() {
        let text = document();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referred to, not defined"
            );
        }
        let codes = &schemas["ErrorDetail"]["properties"]["code"]["enum"];
        let listed: Vec<&str> = codes
            .as_array()
            .unwrap()
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
