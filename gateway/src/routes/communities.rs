//! `/api/internal/community`: create, read, replace (PUT: the plugin list is the whole
//! truth) and delete communities.

use agora_actors::services::CommunityUpdate;
use agora_actors::CommunityView;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Acting;
use crate::error::ErrorBody;
use crate::extract::{object, opt_str, opt_url, JsonBody, PathParams};
use crate::routes::plugins::PluginOut;
use crate::{ApiError, AppState};

/// A community, as Metagov shows it (plus Agora's optional `driver_url`).
#[derive(Serialize, ToSchema)]
pub struct CommunityOut {
    slug: String,
    readable_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    driver_url: Option<String>,
    plugins: Vec<PluginOut>,
}

impl CommunityOut {
    /// The community as answered, secret settings masked.
    fn new(v: CommunityView, s: &AppState) -> Self {
        CommunityOut {
            slug: v.slug,
            readable_name: v.readable_name,
            driver_url: v.driver_url,
            plugins: v
                .plugins
                .into_iter()
                .map(|p| PluginOut::masked(p, s.agora.registry()))
                .collect(),
        }
    }
}

/// Body of POST. `{}` creates a community with a UUID slug. (Other members, such as a
/// `plugins` list, are ignored on create, as Metagov ignores them.)
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CommunityCreateIn {
    /// `[-A-Za-z0-9_]`, 1 to 36 characters.
    slug: Option<String>,
    readable_name: Option<String>,
    /// Overrides the node's driver URL for this community's events.
    driver_url: Option<String>,
}

/// Body of PUT: the whole truth about the community.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CommunityIn {
    /// The community's own slug, if given (it cannot change).
    slug: Option<String>,
    readable_name: Option<String>,
    /// Overrides the node's driver URL for this community's events.
    driver_url: Option<String>,
    /// Every plugin that should be enabled, with its config; left out, none.
    plugins: Option<Vec<PluginIn>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PluginIn {
    name: String,
    #[schema(value_type = Object)]
    config: Value,
}

#[utoipa::path(post, path = "/api/internal/community", tag = "communities",
    request_body = CommunityCreateIn,
    responses((status = 201, body = CommunityOut), (status = 400, body = ErrorBody)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    Acting(by): Acting,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    let obj = object(&body, "")?;
    let slug = opt_str(obj, "slug")?;
    let name = opt_str(obj, "readable_name")?.unwrap_or_default();
    let driver_url = opt_url(obj, "driver_url")?;
    let view = s
        .agora
        .communities
        .create(slug, name, driver_url, &by)
        .await?;
    Ok((StatusCode::CREATED, Json(CommunityOut::new(view, &s))))
}

#[utoipa::path(get, path = "/api/internal/community/{slug}", tag = "communities",
    params(("slug" = String, Path)),
    responses((status = 200, body = CommunityOut), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(s): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> Result<Json<CommunityOut>, ApiError> {
    let view = s.agora.communities.get(&slug).await?;
    Ok(Json(CommunityOut::new(view, &s)))
}

#[utoipa::path(put, path = "/api/internal/community/{slug}", tag = "communities",
    params(("slug" = String, Path)), request_body = CommunityIn,
    responses((status = 200, body = CommunityOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn update(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<CommunityOut>, ApiError> {
    let obj = object(&body, "")?;
    if let Some(other) = opt_str(obj, "slug")? {
        if other != slug {
            return Err(ApiError::invalid(
                "slug",
                "a community's slug cannot be changed",
            ));
        }
    }
    let name = opt_str(obj, "readable_name")?;
    let driver_url = match obj.get("driver_url") {
        Some(_) => Some(opt_url(obj, "driver_url")?),
        None => None,
    };
    // The list is the whole truth, as in Metagov: left out, the community keeps no plugins.
    let plugins = match obj.get("plugins") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("plugins[{i}]");
                let o = object(item, &at)?;
                let name = opt_str(o, "name")
                    .map_err(|e| e.with_field(format!("{at}.name")))?
                    .ok_or_else(|| {
                        ApiError::invalid(format!("{at}.name"), "a plugin needs a name")
                    })?;
                let config = o
                    .get("config")
                    .cloned()
                    .unwrap_or(Value::Object(Default::default()));
                out.push((name, config));
            }
            out
        }
        Some(_) => return Err(ApiError::invalid("plugins", "'plugins' must be a list")),
    };
    let update = CommunityUpdate {
        readable_name: name,
        driver_url,
        plugins,
    };
    let view = s.agora.communities.update(&slug, update, &by).await?;
    Ok(Json(CommunityOut::new(view, &s)))
}

#[utoipa::path(delete, path = "/api/internal/community/{slug}", tag = "communities",
    params(("slug" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(s): State<AppState>,
    Acting(by): Acting,
    PathParams(slug): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    s.agora.communities.delete(&slug, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}
