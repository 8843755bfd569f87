//! The route table: every route of the API, declared once in [`ROUTES`] with its method,
//! path, handler, who may call it, how its partition is found, and its OpenAPI description.
//! The axum router ([`crate::router`]), cluster routing ([`crate::cluster`]) and the OpenAPI
//! document ([`crate::openapi`]) are all built from it. Handlers live one module per resource.

pub(crate) mod actions;
pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod cluster_info;
pub(crate) mod communities;
pub(crate) mod dashboard;
pub(crate) mod dev_clock;
pub(crate) mod events;
pub(crate) mod governance;
pub(crate) mod health;
pub(crate) mod hooks;
pub(crate) mod identity;
pub(crate) mod inventory;
pub(crate) mod ops;
pub(crate) mod plugin_registry;
pub(crate) mod plugins;
pub(crate) mod processes;
pub(crate) mod tokens;

use agora_plugins::ErrorCode;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use utoipa::openapi::path::{HttpMethod, Operation};

use crate::auth::{Access, CommunityOf, Scope};
use crate::{ApiError, AppState};

/// How a request finds the partition it is about. In cluster mode a request runs on the node
/// serving that partition (any node accepts it and forwards it there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Partition {
    /// About the node, not one partition: runs where it lands.
    Node,
    /// A key in the path places the actor it is about by its hash: a community slug (the
    /// community, its plugin instances), or a plugin name (its node-wide settings).
    PathKey(&'static str),
    /// The community named by `X-Metagov-Community`.
    CommunityHeader,
    /// An id in the path that embeds its partition (a process or a plugin instance).
    PathId(&'static str),
    /// A new community: its slug in the body, or a UUID generated before routing.
    NewCommunity,
    /// About whichever communities follow a platform object: every live node runs it for the
    /// communities it serves.
    EveryNode,
    /// About the one actor with this key (node-wide state kept by one actor: API tokens).
    Fixed(&'static str),
    /// Metagov's identity routes: the community named in the query (`community`) or the body
    /// (`community_slug`), else an identity id (`external_id`, `primary_instance_id`), which
    /// embeds its community's partition.
    Identity,
}

/// One route.
pub(crate) struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub partition: Partition,
    /// The handler, as a method router for the method it is given (`method`).
    pub handler: fn(MethodFilter) -> MethodRouter<AppState>,
    /// The OpenAPI path, methods and operation of the handler's annotation.
    pub doc: fn() -> (String, Vec<HttpMethod>, Operation),
}

fn doc_of<P: utoipa::Path>() -> (String, Vec<HttpMethod>, Operation) {
    (P::path(), P::methods(), P::operation())
}

/// `route!(METHOD "path", handler, doc, access, partition)`: `doc` is the type
/// `#[utoipa::path]` generated for the handler; `access` what the caller needs ([`Access`]).
macro_rules! route {
    ($method:ident $path:literal, $handler:path, $doc:ty, $access:expr, $partition:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            access: $access,
            partition: $partition,
            handler: |method| axum::routing::on(method, $handler),
            doc: doc_of::<$doc>,
        }
    };
}

use Partition::{CommunityHeader, EveryNode, Fixed, Identity, NewCommunity, Node, PathId, PathKey};

use agora_actors::api_tokens::TOKENS_KEY;
use Access::{Admin, Change, Public, Read};
use CommunityOf::{Header, Instance, Process, Query};

/// A route about the community whose slug is path parameter `slug`.
const SLUG: Scope = Scope::Community(CommunityOf::Path("slug"));
/// A route about the community named by `X-Metagov-Community`.
const HEADER: Scope = Scope::Community(Header);
/// A route about the process at `{name}/{id}`.
const PROCESS: Scope = Scope::Community(Process);

/// Every route of the API.
#[rustfmt::skip]
pub(crate) static ROUTES: &[Route] = &[
    // Metagov: communities. Creating one is node-wide (a new tenant): admins only.
    route!(POST "/api/internal/community", communities::create, communities::__path_create, Admin, NewCommunity),
    route!(GET "/api/internal/community/{slug}", communities::get, communities::__path_get, Read(SLUG), PathKey("slug")),
    route!(PUT "/api/internal/community/{slug}", communities::update, communities::__path_update, Change(SLUG), PathKey("slug")),
    route!(DELETE "/api/internal/community/{slug}", communities::delete, communities::__path_delete, Change(SLUG), PathKey("slug")),
    // Metagov: plugins.
    route!(POST "/api/internal/plugin/{name}", plugins::enable, plugins::__path_enable, Change(HEADER), CommunityHeader),
    route!(DELETE "/api/internal/plugin/{name}/{id}", plugins::disable, plugins::__path_disable, Change(Scope::Community(Instance)), PathId("id")),
    route!(GET "/api/internal/plugin/{name}/metadata", plugins::metadata, plugins::__path_metadata, Read(Scope::Node), Node),
    route!(GET "/api/internal/plugin-schemas", plugins::schemas, plugins::__path_schemas, Read(Scope::Node), Node),
    // Metagov: actions.
    route!(POST "/api/internal/action/{name}", actions::internal, actions::__path_internal, Change(HEADER), CommunityHeader),
    route!(POST "/api/action/{name}", actions::public, actions::__path_public, Public, CommunityHeader),
    // Metagov: processes; votes are processes too, with ballots of their own.
    route!(POST "/api/internal/process/{name}", processes::start, processes::__path_start, Change(HEADER), CommunityHeader),
    route!(GET "/api/internal/process/{name}/{id}", processes::get, processes::__path_get, Read(PROCESS), PathId("id")),
    route!(DELETE "/api/internal/process/{name}/{id}", processes::close, processes::__path_close, Change(PROCESS), PathId("id")),
    route!(POST "/api/internal/process/{name}/{id}/ballots", processes::cast_ballot, processes::__path_cast_ballot, Change(PROCESS), PathId("id")),
    route!(GET "/api/internal/process/{name}/{id}/ballots", processes::list_ballots, processes::__path_list_ballots, Read(PROCESS), PathId("id")),
    // Metagov: webhooks.
    route!(POST "/api/hooks/{community}/{plugin}", hooks::community, hooks::__path_community, Public, PathKey("community")),
    route!(POST "/api/hooks/{plugin}", hooks::platform, hooks::__path_platform, Public, EveryNode),
    // Metagov: identities (the community is in the body or the query, or found from an id, so
    // tokens limited to communities do not reach them).
    route!(POST "/api/internal/identity/create_id", identity::create_id, identity::__path_create_id, Change(Scope::Every), Identity),
    route!(POST "/api/internal/identity/merge_ids", identity::merge_ids, identity::__path_merge_ids, Change(Scope::Every), Identity),
    route!(POST "/api/internal/identity/link_account", identity::link_account, identity::__path_link_account, Change(Scope::Every), Identity),
    route!(POST "/api/internal/identity/unlink_account", identity::unlink_account, identity::__path_unlink_account, Change(Scope::Every), Identity),
    route!(GET "/api/internal/identity/get_user", identity::get_user, identity::__path_get_user, Read(Scope::Every), Identity),
    route!(GET "/api/internal/identity/get_users", identity::get_users, identity::__path_get_users, Read(Scope::Every), Identity),
    route!(GET "/api/internal/identity/filter_users_by_account", identity::filter_users_by_account, identity::__path_filter_users_by_account, Read(Scope::Every), Identity),
    route!(GET "/api/internal/identity/get_linked_account", identity::get_linked_account, identity::__path_get_linked_account, Read(Scope::Every), Identity),
    // Agora: the plugin registry, node-wide and per community.
    route!(GET "/api/v1/plugins", plugin_registry::list, plugin_registry::__path_list, Read(Scope::Node), Node),
    route!(GET "/api/v1/plugins/{name}", plugin_registry::get, plugin_registry::__path_get, Read(Scope::Node), Node),
    route!(POST "/api/v1/plugins/{name}/enable", plugin_registry::enable, plugin_registry::__path_enable, Admin, PathKey("name")),
    route!(POST "/api/v1/plugins/{name}/disable", plugin_registry::disable, plugin_registry::__path_disable, Admin, PathKey("name")),
    route!(PUT "/api/v1/plugins/{name}/settings", plugin_registry::settings, plugin_registry::__path_settings, Admin, PathKey("name")),
    route!(GET "/api/v1/plugins/{name}/health", health::plugin, health::__path_plugin, Read(Scope::Every), Node),
    route!(GET "/api/v1/communities/{slug}/plugins", plugin_registry::community_list, plugin_registry::__path_community_list, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/plugins/{name}", plugin_registry::community_get, plugin_registry::__path_community_get, Read(SLUG), PathKey("slug")),
    route!(POST "/api/v1/communities/{slug}/plugins/{name}/enable", plugin_registry::community_enable, plugin_registry::__path_community_enable, Change(SLUG), PathKey("slug")),
    route!(POST "/api/v1/communities/{slug}/plugins/{name}/disable", plugin_registry::community_disable, plugin_registry::__path_community_disable, Change(SLUG), PathKey("slug")),
    route!(PUT "/api/v1/communities/{slug}/plugins/{name}/settings", plugin_registry::community_settings, plugin_registry::__path_community_settings, Change(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/plugins/{name}/health", health::community, health::__path_community, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/plugins/{name}/widgets/{widget}", plugin_registry::widget, plugin_registry::__path_widget, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities", inventory::communities, inventory::__path_communities, Read(Scope::Listed), Node),
    route!(GET "/api/v1/communities/{slug}/processes", inventory::processes, inventory::__path_processes, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/plugin-audit-log", audit::log, audit::__path_log, Read(Scope::Community(Query("community"))), Node),
    // Agora: scoped API tokens.
    route!(POST "/api/v1/tokens", tokens::create, tokens::__path_create, Admin, Fixed(TOKENS_KEY)),
    route!(GET "/api/v1/tokens", tokens::list, tokens::__path_list, Admin, Fixed(TOKENS_KEY)),
    route!(DELETE "/api/v1/tokens/{token}", tokens::revoke, tokens::__path_revoke, Admin, Fixed(TOKENS_KEY)),
    // Agora: the governance engine of a community.
    route!(POST "/api/v1/communities/{slug}/governance", governance::found, governance::__path_found, Change(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/governance", governance::constitution, governance::__path_constitution, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/governance/log", governance::log, governance::__path_log, Read(SLUG), PathKey("slug")),
    route!(POST "/api/v1/communities/{slug}/actions", governance::act, governance::__path_act, Change(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/actions", governance::actions, governance::__path_actions, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/actions/{action}", governance::action, governance::__path_action, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/items", governance::items, governance::__path_items, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/items/{item}", governance::item, governance::__path_item, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/items/{item}/versions", governance::versions, governance::__path_versions, Read(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/items/{item}/notices", governance::notices, governance::__path_notices, Read(SLUG), PathKey("slug")),
    route!(POST "/api/v1/communities/{slug}/subscriptions", governance::subscribe, governance::__path_subscribe, Change(SLUG), PathKey("slug")),
    route!(GET "/api/v1/communities/{slug}/subscriptions", governance::subscriptions, governance::__path_subscriptions, Read(SLUG), PathKey("slug")),
    route!(DELETE "/api/v1/communities/{slug}/subscriptions/{item}", governance::unsubscribe, governance::__path_unsubscribe, Change(SLUG), PathKey("slug")),
    // Agora: events and the cluster.
    route!(GET "/api/internal/events", events::stream, events::__path_stream, Read(Scope::Every), Node),
    route!(GET "/api/v1/cluster", cluster_info::get, cluster_info::__path_get, Read(Scope::Node), Node),
    // Operators: a consistent snapshot of this node's storage.
    route!(GET "/api/v1/backup", backup::get, backup::__path_get, Admin, Node),
    // Test aid: 404 unless the node runs with --dev --manual-clock.
    route!(GET "/api/internal/dev/clock", dev_clock::get, dev_clock::__path_get, Read(Scope::Node), Node),
    route!(POST "/api/internal/dev/clock", dev_clock::set, dev_clock::__path_set, Admin, Node),
    // Operations.
    route!(GET "/healthz", ops::healthz, ops::__path_healthz, Public, Node),
    route!(GET "/readyz", ops::readyz, ops::__path_readyz, Public, Node),
    route!(GET "/metrics", ops::metrics, ops::__path_metrics, Public, Node),
    route!(GET "/api/openapi.json", ops::openapi, ops::__path_openapi, Public, Node),
    route!(GET "/api/docs", ops::docs, ops::__path_docs, Public, Node),
    // The dashboard: static assets (the page reads the API with the caller's token).
    route!(GET "/dashboard", dashboard::page, dashboard::__path_page, Public, Node),
    route!(GET "/dashboard/app.js", dashboard::script, dashboard::__path_script, Public, Node),
    route!(GET "/dashboard/app.css", dashboard::style, dashboard::__path_style, Public, Node),
];

/// One route as other crates see it: what it is and what its caller needs (the end-to-end
/// suite walks these to check every route against every role).
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// Every route of the API with what its caller needs.
pub fn route_table() -> Vec<RouteInfo> {
    ROUTES
        .iter()
        .map(|r| RouteInfo {
            method: r.method.clone(),
            path: r.path,
            access: r.access,
        })
        .collect()
}

impl Route {
    /// The route's method router: its handler, for its method.
    pub fn method_router(&self) -> Option<MethodRouter<AppState>> {
        let method = MethodFilter::try_from(self.method.clone()).ok()?;
        Some((self.handler)(method))
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no such route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of a path's parameters (`{slug}` → `slug`).
    fn params(path: &str) -> Vec<&str> {
        path.split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect()
    }

    #[test]
    fn every_route_declares_how_its_partition_is_found() {
        for r in ROUTES {
            let names = params(r.path);
            match r.partition {
                PathKey(p) | PathId(p) => assert!(
                    names.contains(&p),
                    "{} {}: its partition reads {{{p}}}, which the path lacks",
                    r.method,
                    r.path
                ),
                Node | CommunityHeader | NewCommunity | EveryNode | Fixed(_) | Identity => {}
            }
            // A route about a community or a process must say where it runs: a community or
            // a process id in its path is its partition key.
            for about in ["slug", "community", "id"] {
                if names.contains(&about) {
                    assert!(
                        matches!(r.partition, PathKey(p) | PathId(p) if p == about),
                        "{} {} is about {{{about}}} but declares {:?}",
                        r.method,
                        r.path,
                        r.partition
                    );
                }
            }
            // A handler that reads the community header runs where that community lives.
            let (_, _, op) = (r.doc)();
            let header = op
                .parameters
                .iter()
                .flatten()
                .any(|p| p.name.eq_ignore_ascii_case("X-Metagov-Community"));
            assert_eq!(
                header,
                r.partition == CommunityHeader,
                "{} {}: reads X-Metagov-Community but declares {:?}",
                r.method,
                r.path,
                r.partition
            );
        }
    }

    #[test]
    fn each_method_and_path_is_declared_once() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(r.method_router().is_some(), "{} {}", r.method, r.path);
            assert!(
                seen.insert((r.path, r.method.as_str())),
                "{} {} twice",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn only_the_table_adds_routes() {
        // Routes reach the router only from `ROUTES` (the loop in `lib.rs` passes a path from
        // the table, never a literal). Needles are built, so this test does not find itself.
        let needles: Vec<String> = [
            "route(\"",
            "route_service(",
            "nest(",
            "nest_service(",
            "merge(",
        ]
        .iter()
        .map(|n| format!(".{n}"))
        .collect();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("test fixture").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let text = std::fs::read_to_string(&p).expect("test fixture");
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    for n in &needles {
                        assert!(
                            !code.contains(n.as_str()),
                            "{}:{} adds routes outside the route table",
                            p.display(),
                            i + 1
                        );
                    }
                }
            }
        }
    }
}
