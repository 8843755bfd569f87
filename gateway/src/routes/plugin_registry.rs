//! `/api/v1/plugins` and `/api/v1/communities/{slug}/plugins`: the plugin registry of this
//! node (what is loaded, what was refused and why, each plugin's metadata), enabling and
//! disabling plugins on the node and per community, and their settings at both levels.
//! Secret settings are masked in every answer.

use agora_actors::audit::mask_secrets;
use agora_actors::services::CommunityPlugin;
use agora_actors::Principal;
use agora_plugins::ErrorCode;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Acting;
use crate::error::ErrorBody;
use crate::extract::{JsonBody, PathParams};
use crate::{ApiError, AppState};

fn describe(meta: &agora_plugins::PluginMeta) -> Value {
    json!({
        "name": meta.name,
        "verbose_name": meta.verbose_name,
        "description": meta.description,
        "version": meta.version,
        "author": meta.author,
        "agora_versions": {"min": meta.agora_min, "max": meta.agora_max},
        "depends_on": meta.depends_on,
        "status": "loaded",
        "navigation": meta.navigation.iter()
            .map(|n| json!({"label": n.label, "icon": n.icon, "order": n.order}))
            .collect::<Vec<_>>(),
        "widgets": meta.widgets.iter()
            .map(|w| json!({"name": w.name, "title": w.title, "order": w.order,
                "kind": w.kind.as_str(), "action": w.action}))
            .collect::<Vec<_>>(),
    })
}

#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugin registry",
    responses((status = 200, body = Object, description = "{\"agora_version\", \"plugins\": [loaded and refused plugins]}")))]
pub(crate) async fn list(State(s): State<AppState>) -> Json<Value> {
    let registry = s.agora.registry();
    let mut plugins: Vec<Value> = registry
        .all()
        .map(|p| with_global(&s, describe(p.meta()), p.meta().name))
        .collect();
    for r in registry.refused() {
        plugins.push(json!({"name": r.name, "status": "refused", "reason": r.reason}));
    }
    Json(json!({
        "agora_version": agora_plugins::AGORA_VERSION,
        "plugins": plugins,
    }))
}

#[utoipa::path(get, path = "/api/v1/plugins/{name}", tag = "plugin registry",
    params(("name" = String, Path)),
    responses((status = 200, body = Object, description = "metadata, config schema, actions, processes, events"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(s): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let registry = s.agora.registry();
    if let Some(p) = registry.get(&name) {
        let m = p.meta();
        let mut v = with_global(&s, describe(m), m.name);
        if let Some(o) = v.as_object_mut() {
            o.insert("config_schema".into(), m.config_schema.clone());
            o.insert(
                "actions".into(),
                m.actions
                    .iter()
                    .map(|a| json!({"name": a.name, "description": a.description, "public": a.public,
                        "parameters_schema": a.parameters_schema, "response_schema": a.response_schema}))
                    .collect(),
            );
            o.insert(
                "processes".into(),
                m.processes
                    .iter()
                    .map(|p| json!({"name": p.name, "description": p.description,
                        "parameters_schema": p.parameters_schema, "outcome_schema": p.outcome_schema}))
                    .collect(),
            );
            o.insert(
                "events".into(),
                m.events
                    .iter()
                    .map(|e| json!({"event_type": e.event_type, "schema": e.schema}))
                    .collect(),
            );
        }
        return Ok(Json(v));
    }
    if let Some(r) = registry.refused().iter().find(|r| r.name == name) {
        return Ok(Json(
            json!({"name": r.name, "status": "refused", "reason": r.reason}),
        ));
    }
    Err(ApiError::new(
        ErrorCode::UnknownPlugin,
        format!("no plugin named '{name}' is installed or refused on this node"),
    )
    .with_status(StatusCode::NOT_FOUND))
}

/// Adds the node-wide state (enabled, masked global settings) to a plugin's description.
fn with_global(s: &AppState, mut v: Value, plugin: &str) -> Value {
    if let (Some(o), Ok(g)) = (v.as_object_mut(), s.agora.plugins.global(plugin)) {
        o.insert("enabled".into(), json!(g.enabled));
        o.insert(
            "settings".into(),
            mask_secrets(s.agora.registry(), plugin, &g.settings),
        );
    }
    v
}

fn global_view(s: &AppState, plugin: &str) -> Result<Json<Value>, ApiError> {
    let g = s.agora.plugins.global(plugin)?;
    Ok(Json(json!({
        "name": plugin,
        "enabled": g.enabled,
        "settings": mask_secrets(s.agora.registry(), plugin, &g.settings),
    })))
}

#[utoipa::path(post, path = "/api/v1/plugins/{name}/enable", tag = "plugin registry",
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn enable(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    s.agora.plugins.set_enabled(&name, true, &by).await?;
    global_view(&s, &name)
}

#[utoipa::path(post, path = "/api/v1/plugins/{name}/disable", tag = "plugin registry",
    params(("name" = String, Path)),
    responses((status = 200, body = Object, description = "disabled on the whole node: its actions and processes are refused everywhere"),
        (status = 400, body = ErrorBody)))]
pub(crate) async fn disable(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    s.agora.plugins.set_enabled(&name, false, &by).await?;
    global_view(&s, &name)
}

#[utoipa::path(put, path = "/api/v1/plugins/{name}/settings", tag = "plugin registry",
    params(("name" = String, Path)),
    request_body(content = Object, description = "the global settings (replaces them)"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody, description = "a setting fails the plugin's schema; nothing changed")))]
pub(crate) async fn settings(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    s.agora.plugins.set_settings(&name, body, &by).await?;
    global_view(&s, &name)
}

fn community_view(s: &AppState, p: &CommunityPlugin) -> Value {
    let mask = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| mask_secrets(s.agora.registry(), &p.name, v))
    };
    json!({
        "name": p.name,
        "community": p.community,
        "enabled": p.enabled,
        "active": p.active,
        "instance_id": p.instance_id,
        "settings": mask(&p.settings),
        "effective_settings": mask(&p.effective_settings),
    })
}

async fn one_for(s: &AppState, slug: &str, name: &str) -> Result<Json<Value>, ApiError> {
    let all = s.agora.plugins.for_community(slug).await?;
    let p = all.iter().find(|p| p.name == name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownPlugin,
            format!("plugin '{name}' is not installed"),
        )
    })?;
    Ok(Json(community_view(s, p)))
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/plugins", tag = "plugin registry",
    params(("slug" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(crate) async fn community_list(
    State(s): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let all = s.agora.plugins.for_community(&slug).await?;
    Ok(Json(json!({
        "community": slug,
        "plugins": all.iter().map(|p| community_view(&s, p)).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/plugins/{name}", tag = "plugin registry",
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn community_get(
    State(s): State<AppState>,
    PathParams((slug, name)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    one_for(&s, &slug, &name).await
}

#[utoipa::path(get, path = "/api/v1/communities/{slug}/plugins/{name}/widgets/{widget}", tag = "plugin registry",
    params(("slug" = String, Path), ("name" = String, Path), ("widget" = String, Path)),
    responses((status = 200, body = Object, description = "{\"plugin\", \"widget\", \"kind\", \"title\", \"data\"}: the data the widget's read action supplies, drawn by the dashboard by its kind"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn widget(
    State(s): State<AppState>,
    PathParams((slug, name, widget)): PathParams<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let data = s.agora.widgets.data(&slug, &name, &widget).await?;
    // `data` found the widget, so the registry has both.
    let spec = s
        .agora
        .registry()
        .get(&name)
        .and_then(|p| p.meta().widget(&widget).cloned());
    Ok(Json(json!({
        "community": slug,
        "plugin": name,
        "widget": widget,
        "kind": spec.as_ref().map(|w| w.kind.as_str()),
        "title": spec.as_ref().map(|w| w.title),
        "data": data,
    })))
}

#[utoipa::path(post, path = "/api/v1/communities/{slug}/plugins/{name}/enable", tag = "plugin registry",
    params(("slug" = String, Path), ("name" = String, Path)),
    request_body(content = Object, description = "optional community settings (default {})"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn community_enable(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((slug, name)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    community_put(&s, &by, &slug, &name, body).await
}

#[utoipa::path(put, path = "/api/v1/communities/{slug}/plugins/{name}/settings", tag = "plugin registry",
    params(("slug" = String, Path), ("name" = String, Path)),
    request_body(content = Object, description = "the community's settings (replaces them; enables the plugin for the community)"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody, description = "the merged settings fail the plugin's schema; nothing changed"), (status = 404, body = ErrorBody)))]
pub(crate) async fn community_settings(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((slug, name)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    community_put(&s, &by, &slug, &name, body).await
}

async fn community_put(
    s: &AppState,
    by: &Principal,
    slug: &str,
    name: &str,
    settings: Value,
) -> Result<Json<Value>, ApiError> {
    s.agora.communities.get(slug).await?;
    s.agora.plugins.enable(slug, name, settings, by).await?;
    one_for(s, slug, name).await
}

#[utoipa::path(post, path = "/api/v1/communities/{slug}/plugins/{name}/disable", tag = "plugin registry",
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn community_disable(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams((slug, name)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    s.agora.plugins.disable_for(&slug, &name, &by).await?;
    one_for(&s, &slug, &name).await
}
