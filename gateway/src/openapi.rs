//! The OpenAPI 3 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::OpenApi;

use crate::routes::{
    actions, audit, cluster_info, communities, events, health, hooks, plugin_registry, plugins,
    processes,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora",
        description = "A governance runtime for online communities. Metagov-compatible: drivers written for Metagov work unchanged. Internal routes need `Authorization: Bearer <driver token>` unless the node runs with --dev. Every error is `{\"error\": {\"code\", \"message\", \"field\"}}`."
    ),
    paths(
        communities::create, communities::get, communities::update, communities::delete,
        plugins::enable, plugins::disable, plugins::metadata, plugins::schemas,
        actions::internal, actions::public,
        processes::start, processes::get, processes::close,
        processes::cast_ballot, processes::list_ballots,
        hooks::community, hooks::platform,
        plugin_registry::list, plugin_registry::get, audit::log,
        plugin_registry::enable, plugin_registry::disable, plugin_registry::settings,
        plugin_registry::community_list, plugin_registry::community_get,
        plugin_registry::community_enable, plugin_registry::community_disable,
        plugin_registry::community_settings,
        health::plugin, health::community, events::stream, cluster_info::get,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    tags(
        (name = "communities"), (name = "plugins"), (name = "actions"),
        (name = "processes"), (name = "votes"), (name = "webhooks"), (name = "plugin registry"),
        (name = "events"), (name = "cluster")
    )
)]
struct ApiDoc;

/// The document as JSON text, built once.
pub(crate) fn document() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    })
    .clone()
}
