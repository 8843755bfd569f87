//! The one error type of the API. Every failure becomes
//! `{"error": {"code": "<stable_snake_case>", "message": "...", "field": "<path>"}}` with one
//! status per code; internal details are logged, never sent.

use agora_actors::ActorError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// The error body, as documented in the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable, snake_case.
    code: &'static str,
    message: String,
    /// Where in the request the problem is (a JSON path, a header or a path segment).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The same error answered as 404 (an unknown name in the path).
    pub fn not_found(mut self) -> Self {
        self.status = StatusCode::NOT_FOUND;
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The body field `field` has the wrong type or is missing.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", message).with_field(field)
    }

    /// Maps an operation's error; `community_in_header` picks Metagov's status for an unknown
    /// community named by `X-Metagov-Community` (400) rather than by the path (404).
    pub fn from_actor(e: ActorError, community_in_header: bool) -> Self {
        let status = match &e {
            ActorError::CommunityNotFound(_) if community_in_header => StatusCode::BAD_REQUEST,
            ActorError::CommunityNotFound(_)
            | ActorError::ProcessNotFound(_)
            | ActorError::PluginInstanceNotFound(_)
            | ActorError::UnknownAction(_)
            | ActorError::ActionNotPublic(_)
            | ActorError::UnknownProcessType(_) => StatusCode::NOT_FOUND,
            ActorError::Invalid { code, .. }
                if matches!(*code, "ineligible_voter" | "results_hidden") =>
            {
                StatusCode::FORBIDDEN
            }
            ActorError::Invalid { code, .. }
                if matches!(
                    *code,
                    "vote_closed" | "ballot_after_deadline" | "already_voted" | "hook_failed"
                ) =>
            {
                StatusCode::CONFLICT
            }
            ActorError::Invalid { code, .. } if *code == "invalid_signature" => {
                StatusCode::UNAUTHORIZED
            }
            ActorError::Invalid { code, .. } if *code == "webhook_not_routable" => {
                StatusCode::NOT_FOUND
            }
            // The platform refused or answered nonsense: the driver's request was fine.
            ActorError::Invalid { code, .. } if *code == "platform_error" => {
                StatusCode::BAD_GATEWAY
            }
            ActorError::Invalid { code, .. }
                if matches!(*code, "platform_unavailable" | "circuit_open") =>
            {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ActorError::InvalidSlug(_)
            | ActorError::CommunityExists(_)
            | ActorError::UnknownPlugin(_)
            | ActorError::PluginNotEnabled { .. }
            | ActorError::PluginDisabled(_)
            | ActorError::ProcessCompleted(_)
            | ActorError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ActorError::Runtime(agora_runtime::AskError::Overloaded)
            | ActorError::Runtime(agora_runtime::AskError::NotOwner(_))
            | ActorError::Runtime(agora_runtime::AskError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ActorError::Runtime(agora_runtime::AskError::Internal(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "internal error");
            "internal error; see the node's log".to_string()
        } else {
            e.to_string()
        };
        let field = e.field().map(str::to_owned).or(match &e {
            ActorError::InvalidSlug(_) => Some("slug".to_string()),
            _ => None,
        });
        ApiError {
            status,
            code: e.code(),
            message,
            field,
        }
    }
}

impl From<ActorError> for ApiError {
    fn from(e: ActorError) -> Self {
        ApiError::from_actor(e, false)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let not_owner = self.code == "not_owner";
        let mut resp = (self.status, axum::Json(body)).into_response();
        if not_owner {
            resp.extensions_mut().insert(crate::cluster::NotOwner);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
