//! The network half of a plugin: calls to a platform's API, made outside the actor.
//!
//! Plugin code that talks to a platform is split in two. [`crate::Plugin::remote`] does the
//! network work (awaiting a guarded [`Http`] client) and returns an *observation*, plain JSON.
//! The actor then hands that observation to the plugin's synchronous code (`action`,
//! `start_process`, `observe`, `close_process`), which changes state and emits events in one
//! commit. So a slow platform never blocks an actor thread, and state still changes in one
//! place, one message at a time.
//!
//! The [`Http`] client a plugin is given enforces timeouts, retries (5xx and 429, honouring
//! `Retry-After`) and a circuit breaker per plugin instance; plugins only build requests and
//! read responses.

use std::future::Future;
use std::pin::Pin;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::{ErrorCode, PluginError};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One HTTP request to a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    pub fn new(method: &'static str, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A request carrying `body` as JSON.
    pub fn json(method: &'static str, url: impl Into<String>, body: &Value) -> Self {
        let mut r = Self::new(method, url);
        r.body = Some(body.to_string().into_bytes());
        r.header("content-type", "application/json")
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A GET or PUT is safe to repeat; a POST is retried only when the platform never saw it
    /// (connection refused) or refused it outright (429, 503 with `Retry-After`).
    pub fn idempotent(&self) -> bool {
        matches!(self.method, "GET" | "HEAD" | "PUT" | "DELETE")
    }
}

/// A platform's answer (any status: the plugin decides what a 404 or 422 means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or a `platform_error` naming what was expected.
    pub fn json(&self) -> Result<Value, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            PluginError::platform(format!(
                "the platform answered {} with a body that is not JSON: {e}",
                self.status
            ))
        })
    }

    /// The JSON body of a 2xx; any other status becomes a `platform_error` quoting the start of
    /// the body (platforms explain refusals there).
    pub fn success_json(&self, what: &str) -> Result<Value, PluginError> {
        if !self.is_success() {
            let text = String::from_utf8_lossy(&self.body);
            let excerpt: String = text.chars().take(300).collect();
            return Err(PluginError::platform(format!(
                "{what}: the platform answered {}: {excerpt}",
                self.status
            )));
        }
        self.json()
    }
}

/// Why a call produced no response the plugin can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("the platform did not answer within {0} ms")]
    Timeout(u64),
    #[error("the platform could not be reached: {0}")]
    Connect(String),
    /// Still failing (5xx or 429) after every retry.
    #[error("the platform kept failing: last status {status}")]
    Exhausted {
        status: u16,
        retry_after_ms: Option<u64>,
    },
    /// The instance's circuit breaker is open: no call was made.
    #[error("calls to this platform are paused for {retry_in_ms} ms after repeated failures")]
    CircuitOpen { retry_in_ms: u64 },
    #[error("bad request: {0}")]
    Invalid(String),
}

impl From<HttpError> for PluginError {
    fn from(e: HttpError) -> Self {
        let code = match e {
            HttpError::CircuitOpen { .. } => ErrorCode::CircuitOpen,
            HttpError::Invalid(_) => ErrorCode::PlatformRequestInvalid,
            _ => ErrorCode::PlatformUnavailable,
        };
        PluginError {
            code,
            message: e.to_string(),
            field: None,
        }
    }
}

/// The guarded HTTP client a plugin instance calls its platform through.
pub trait Http: Send + Sync {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>>;

    /// The node's time, epoch milliseconds: the runtime's clock, which tests may drive. The
    /// network half dates what it sends (a poll's close time) by it, never by the wall clock.
    fn now_ms(&self) -> u64;
}

/// What the network work is for.
#[derive(Debug, Clone, Copy)]
pub enum RemoteOp<'a> {
    /// Before `Plugin::action` runs: the observation reaches it as `ctx.remote`.
    Action { action: &'a str, params: &'a Value },
    /// Before `Plugin::start_process`: e.g. create the poll on the platform.
    StartProcess { process: &'a str, params: &'a Value },
    /// The process asked for a refresh (a tick or a webhook): read the platform's view. The
    /// observation reaches `Plugin::observe`.
    Refresh { process: &'a str, state: &'a Value },
    /// Before `Plugin::close_process`: e.g. close the poll and read its result.
    CloseProcess { process: &'a str, state: &'a Value },
    /// A health probe: is the platform reachable with these credentials? The observation is
    /// ignored; an error makes the instance `failing`. Whether a plugin answers this op at all
    /// must not hang on the instance's config: a plugin that answers `None` for one instance
    /// is not probed again by the node's prober.
    Probe,
}

/// Everything [`crate::Plugin::remote`] may use.
pub struct Remote<'a> {
    pub community: &'a str,
    /// The instance's effective settings (secrets included).
    pub config: &'a Value,
    pub http: &'a dyn Http,
    pub op: RemoteOp<'a>,
}

impl Remote<'_> {
    /// A string setting, or a `platform_not_configured` error naming it.
    pub fn setting(&self, name: &str) -> Result<&str, PluginError> {
        setting(self.config, name)
    }
}

/// A string setting from a plugin config, or a `platform_not_configured` error naming it.
pub fn setting<'v>(config: &'v Value, name: &str) -> Result<&'v str, PluginError> {
    match config.get(name).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(PluginError {
            code: ErrorCode::PlatformNotConfigured,
            message: format!("setting '{name}' is required to reach the platform"),
            field: Some(format!("settings.{name}")),
        }),
    }
}

/// The one HMAC-SHA256 of this crate (on `hmac`/`sha2`): signing and verifying share it.
fn hmac_sha256(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long ones are hashed first), so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any size"));
    mac.update(body);
    mac
}

/// `hex(HMAC-SHA256(secret, body))`, as GitHub, Discourse and Open Collective sign webhooks.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, body).finalize().into_bytes())
}

/// Checks `provided` (e.g. `sha256=<hex>` with `prefix` = `sha256=`) against the body's HMAC in
/// constant time. A missing or malformed header is a mismatch.
pub fn verify_hmac_sha256(
    secret: &[u8],
    body: &[u8],
    provided: Option<&str>,
    prefix: &str,
) -> bool {
    let Some(hex_sig) = provided.and_then(|p| p.trim().strip_prefix(prefix)) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    hmac_sha256(secret, body).verify_slice(&sig).is_ok()
}

/// The error for a webhook whose signature does not check out (the gateway answers 401).
pub fn bad_signature(header: &str) -> PluginError {
    PluginError {
        code: ErrorCode::InvalidSignature,
        message: format!("the webhook's {header} signature is missing or does not match"),
        field: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_github_documented_example() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let sig = hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig,
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(verify_hmac_sha256(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            Some(&format!("sha256={sig}")),
            "sha256="
        ));
    }

    #[test]
    fn signature_mismatches_are_refused() {
        let body = b"{}";
        let good = format!("sha256={}", hmac_sha256_hex(b"s", body));
        assert!(verify_hmac_sha256(b"s", body, Some(&good), "sha256="));
        assert!(!verify_hmac_sha256(b"t", body, Some(&good), "sha256="));
        assert!(!verify_hmac_sha256(b"s", b"{ }", Some(&good), "sha256="));
        assert!(!verify_hmac_sha256(b"s", body, None, "sha256="));
        assert!(!verify_hmac_sha256(
            b"s",
            body,
            Some("sha256=zz"),
            "sha256="
        ));
        assert!(!verify_hmac_sha256(b"s", body, Some(&good[7..]), "sha256="));
    }

    #[test]
    fn missing_settings_name_the_field() {
        let cfg = serde_json::json!({"token": "", "owner": "o"});
        assert_eq!(setting(&cfg, "owner").unwrap(), "o");
        let e = setting(&cfg, "token").unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformNotConfigured);
        assert_eq!(e.field.as_deref(), Some("settings.token"));
    }
}

/// A scripted [`Http`] for plugin unit tests: answers queued responses in order and records
/// every request; plus a `block_on` for futures that never wait.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::VecDeque;
    use std::future::Future;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use super::*;

    #[derive(Default)]
    pub struct FakeHttp {
        answers: Mutex<VecDeque<Result<HttpResponse, HttpError>>>,
        pub requests: Mutex<Vec<HttpRequest>>,
    }

    impl FakeHttp {
        pub fn answering(answers: Vec<Result<HttpResponse, HttpError>>) -> Self {
            Self {
                answers: Mutex::new(answers.into()),
                requests: Mutex::new(Vec::new()),
            }
        }

        pub fn requests(&self) -> Vec<HttpRequest> {
            self.requests.lock().unwrap().clone()
        }
    }

    /// A response with a JSON body.
    pub fn json_response(status: u16, body: Value) -> Result<HttpResponse, HttpError> {
        Ok(HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        })
    }

    impl Http for FakeHttp {
        fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
            self.requests.lock().unwrap().push(req);
            let next = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Err(HttpError::Connect("no scripted answer left".into())));
            Box::pin(async move { next })
        }

        /// A fixed time (2026-05-28): dates the plugins compute are the same on every run.
        fn now_ms(&self) -> u64 {
            FAKE_NOW_MS
        }
    }

    /// What [`FakeHttp::now_ms`] answers.
    pub const FAKE_NOW_MS: u64 = 1_780_000_000_000;

    /// Runs a future that completes without waiting (everything FakeHttp returns does).
    pub fn block_on<F: Future>(fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("block_on: the future waited"),
        }
    }
}
