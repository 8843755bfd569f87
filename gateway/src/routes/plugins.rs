//! `/api/internal/plugin...`: enable a plugin for a community, disable an instance by id,
//! and read plugin metadata and schemas.

use agora_actors::PluginView;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use agora_plugins::ErrorCode;

use crate::auth::Acting;
use crate::error::ErrorBody;
use crate::extract::{CommunityHeader, JsonBody, PathParams};
use crate::{ApiError, AppState};

/// One enabled plugin of a community.
#[derive(Serialize, ToSchema)]
pub struct PluginOut {
    id: u64,
    name: String,
    #[schema(value_type = Object)]
    config: Value,
    community: String,
    auth_type: &'static str,
}

impl PluginOut {
    /// The plugin instance as answered: secret settings masked, the plugin's auth type.
    pub(crate) fn masked(v: PluginView, registry: &agora_plugins::PluginRegistry) -> Self {
        let plugin = registry.get(&v.name);
        PluginOut {
            config: agora_actors::audit::mask_secrets(registry, &v.name, &v.config),
            auth_type: plugin.map(|p| p.meta().auth_type).unwrap_or("none"),
            id: v.id,
            name: v.name,
            community: v.community,
        }
    }
}

#[utoipa::path(post, path = "/api/internal/plugin/{name}", tag = "plugins",
    params(("name" = String, Path), ("X-Metagov-Community" = String, Header)),
    request_body(content = Object, description = "the plugin's config"),
    responses((status = 201, body = PluginOut, description = "enabled or reconfigured"),
        (status = 200, body = PluginOut, description = "unchanged"), (status = 400, body = ErrorBody)))]
pub(crate) async fn enable(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(name): PathParams<String>,
    CommunityHeader(community): CommunityHeader,
    JsonBody(config): JsonBody,
) -> Result<(StatusCode, Json<PluginOut>), ApiError> {
    let (view, changed) = s
        .agora
        .plugins
        .enable(&community, &name, config, &by)
        .await
        .map_err(ApiError::for_header_community)?;
    let out = PluginOut::masked(view, s.agora.registry());
    let status = if changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)))
}

#[utoipa::path(delete, path = "/api/internal/plugin/{name}/{id}", tag = "plugins",
    params(("name" = String, Path, description = "not checked, as in Metagov: the id finds the instance"), ("id" = u64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn disable(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((_name, id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: u64 = id.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::PluginInstanceNotFound,
            format!("no plugin instance has id {id:?}"),
        )
    })?;
    s.agora.plugins.disable_instance(id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/internal/plugin/{name}/metadata", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn metadata(
    State(s): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let p = s.agora.registry().get(&name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownPlugin,
            format!("plugin '{name}' is not installed"),
        )
    })?;
    let m = p.meta();
    let actions: Vec<Value> = m
        .actions
        .iter()
        .map(|a| {
            json!({
                "id": format!("{}.{}", m.name, a.name),
                "description": a.description,
                "parameters_schema": a.parameters_schema,
                "response_schema": a.response_schema,
                "is_public": a.public,
            })
        })
        .collect();
    let processes: Vec<Value> = m
        .processes
        .iter()
        .map(|p| {
            json!({
                "id": format!("{}.{}", m.name, p.name),
                "description": p.description,
                "parameters_schema": p.parameters_schema,
                "response_schema": p.outcome_schema,
            })
        })
        .collect();
    let events: Vec<Value> = m
        .events
        .iter()
        .map(|e| json!({"event_type": e.event_type, "source": m.name, "schema": e.schema}))
        .collect();
    Ok(Json(json!({
        "name": m.name,
        "version": m.version,
        "description": m.description,
        "auth_type": m.auth_type,
        "uses_webhook": m.uses_webhook,
        "schemas": {
            "config": m.config_schema,
            "actions": actions,
            "processes": processes,
            "events": events,
        }
    })))
}

#[utoipa::path(get, path = "/api/internal/plugin-schemas", tag = "plugins",
    responses((status = 200, body = Object, description = "plugin name → config schema")))]
pub(crate) async fn schemas(State(s): State<AppState>) -> Json<Value> {
    let mut out = Map::new();
    for p in s.agora.registry().all() {
        out.insert(p.meta().name.to_string(), p.meta().config_schema.clone());
    }
    Json(Value::Object(out))
}
