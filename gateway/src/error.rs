//! The one error type of the API. Every failure becomes
//! `{"error": {"code": "<stable_snake_case>", "message": "...", "field": "<path>"}}`; the
//! status comes from the [`ErrorCode`] (a few Metagov routes keep Metagov's own status, and
//! say so where they do). Internal details are logged, never sent.

use agora_actors::ActorError;
use agora_plugins::ErrorCode;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
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
    #[schema(schema_with = code_schema)]
    code: ErrorCode,
    message: String,
    /// Where in the request the problem is (a JSON path, a header or a path segment).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

/// `code` in the OpenAPI document: a string, one of every [`ErrorCode`].
fn code_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .description(Some("Stable, machine-readable, snake_case."))
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
}

/// The status an error code is answered with.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: status_of(code),
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The same error with the status Metagov answers it with on this route.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The body field `field` has the wrong type or is missing.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message).with_field(field)
    }

    /// An operation's refusal for a community named by `X-Metagov-Community`: Metagov answers
    /// an unknown one 400, not 404 (the header is bad input, not a missing resource).
    pub fn for_header_community(e: ActorError) -> Self {
        let err = ApiError::from(e);
        if err.code == ErrorCode::CommunityNotFound {
            err.with_status(StatusCode::BAD_REQUEST)
        } else {
            err
        }
    }
}

impl From<ActorError> for ApiError {
    fn from(e: ActorError) -> Self {
        let code = e.code();
        let message = if code == ErrorCode::Internal {
            tracing::error!(error = %e, "internal error");
            "internal error; see the node's log".to_string()
        } else {
            e.to_string()
        };
        ApiError {
            status: status_of(code),
            code,
            message,
            field: e.field().map(str::to_owned),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Cluster routing retries a request elsewhere when this node turned out not to serve
        // its partition.
        let not_owner = self.code == ErrorCode::NotOwner;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
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
