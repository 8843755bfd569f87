//! `/api/v1/plugins`: the plugin registry of this node: what is loaded, what was refused and
//! why, and each plugin's metadata.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ErrorBody;
use crate::extract::PathParams;
use crate::{ApiError, AppState};

fn describe(meta: &agora_actors::plugins::PluginMeta) -> Value {
    json!({
        "name": meta.name,
        "verbose_name": meta.verbose_name,
        "description": meta.description,
        "version": meta.version,
        "author": meta.author,
        "agora_versions": {"min": meta.agora_min, "max": meta.agora_max},
        "depends_on": meta.depends_on,
        "status": "loaded",
    })
}

#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugin registry",
    responses((status = 200, body = Object, description = "{\"agora_version\", \"plugins\": [loaded and refused plugins]}")))]
pub(crate) async fn list(State(s): State<AppState>) -> Json<Value> {
    let registry = s.agora.registry();
    let mut plugins: Vec<Value> = registry.all().map(|p| describe(p.meta())).collect();
    for r in registry.refused() {
        plugins.push(json!({"name": r.name, "status": "refused", "reason": r.reason}));
    }
    Json(json!({
        "agora_version": agora_actors::plugins::AGORA_VERSION,
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
        let mut v = describe(m);
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
        StatusCode::NOT_FOUND,
        "unknown_plugin",
        format!("no plugin named '{name}' is installed or refused on this node"),
    ))
}
