//! Extractors that cannot 500: JSON bodies, path segments and the community header, each
//! turning every rejection into an [`ApiError`] with a stable code.

use agora_plugins::ErrorCode;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::json::BodyJsonError;

/// A JSON body of any shape (handlers read fields with the helpers below, so errors can name
/// the field). An empty body reads as `{}`, as Metagov treats it. An object with a key twice,
/// at any depth, is refused (400 `duplicate_key`).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Object(Map::new())));
        }
        crate::json::parse(&bytes)
            .map(JsonBody)
            .map_err(|e| match e {
                BodyJsonError::Syntax(e) => ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("the body is not valid JSON: {e}"),
                ),
                BodyJsonError::DuplicateKey(path) => ApiError::new(
                    ErrorCode::DuplicateKey,
                    format!("the key '{path}' appears twice; each key may appear once"),
                )
                .with_field(path),
            })
    }
}

/// The raw body, for webhooks whose signature covers the exact bytes.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_rejection)
    }
}

/// The error for a body that could not be read: too large, too slow, or broken off.
fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds {} bytes", crate::MAX_BODY),
        )
    } else if crate::serve::is_body_timeout(&r) {
        body_timeout()
    } else {
        ApiError::new(ErrorCode::InvalidBody, r.body_text())
    }
}

/// A body that did not arrive within the body timeout (the connection is closed after the
/// answer, since the rest of the body is still unread).
pub(crate) fn body_timeout() -> ApiError {
    ApiError::new(
        ErrorCode::RequestTimeout,
        "the request body was not received in time",
    )
}

/// Path parameters; a segment that is not valid UTF-8 or the wrong type is a 400.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathParams(t))
            .map_err(|r| ApiError::new(ErrorCode::InvalidPath, r.body_text()))
    }
}

/// `X-Metagov-Community`, required on community-scoped calls.
pub struct CommunityHeader(pub String);

pub const COMMUNITY_HEADER: &str = "x-metagov-community";

impl<S: Send + Sync> FromRequestParts<S> for CommunityHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let v = parts.headers.get(COMMUNITY_HEADER).ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingHeader,
                "Missing required header 'X-Metagov-Community'",
            )
            .with_field("X-Metagov-Community")
        })?;
        let s = v.to_str().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidSlug,
                "the community header is not valid text",
            )
            .with_field("X-Metagov-Community")
        })?;
        Ok(CommunityHeader(s.to_string()))
    }
}

/// Reads `body` as an object (400 `invalid_request` otherwise).
pub fn object<'a>(body: &'a Value, at: &str) -> Result<&'a Map<String, Value>, ApiError> {
    body.as_object().ok_or_else(|| {
        let at = if at.is_empty() { "body" } else { at };
        ApiError::invalid(at, format!("{at} must be a JSON object"))
    })
}

/// An optional string field.
pub fn opt_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(key, format!("'{key}' must be a string"))),
    }
}

/// An optional http(s) URL field.
pub fn opt_url(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    let v = opt_str(obj, key)?;
    if let Some(u) = &v {
        let rest = u
            .strip_prefix("http://")
            .or_else(|| u.strip_prefix("https://"));
        if rest
            .map(|r| r.is_empty() || r.starts_with('/'))
            .unwrap_or(true)
            || u.len() > 2048
        {
            return Err(ApiError::invalid(
                key,
                format!("'{key}' must be an http:// or https:// URL"),
            ));
        }
    }
    Ok(v)
}
