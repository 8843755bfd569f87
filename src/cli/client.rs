//! The CLI's HTTP client: one reqwest client with timeouts, the token as a bearer, and every
//! failure turned into one line and an exit code.

use std::time::Duration;

use serde_json::Value;

use super::{Conn, Exit};

/// Why a command failed: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    pub fn new(conn: &Conn) -> Result<Client, Failure> {
        let token = match &conn.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        Failure::new(
                            Exit::Failed,
                            format!("reading the token file {}: {e}", path.display()),
                        )
                    })?
                    .trim()
                    .to_string(),
            ),
            None => std::env::var("AGORA_DRIVER_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::new(Exit::Failed, format!("building the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: conn.url.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// A path on the node, or a full URL as given.
    fn url(&self, target: &str) -> String {
        if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else {
            format!("{}{}", self.base, target)
        }
    }

    async fn raw(
        &self,
        method: reqwest::Method,
        target: &str,
        body: Option<Value>,
    ) -> Result<reqwest::Response, Failure> {
        let url = self.url(target);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.map_err(|e| {
            let why = if e.is_connect() {
                "connection refused or no route".to_string()
            } else if e.is_timeout() {
                "timed out".to_string()
            } else {
                e.without_url().to_string()
            };
            Failure::new(Exit::Unreachable, format!("cannot reach {url}: {why}"))
        })
    }

    /// A GET whose 2xx body the caller reads itself (a download); any other status is the
    /// failure it would be for [`Client::send`].
    pub async fn download(&self, target: &str) -> Result<reqwest::Response, Failure> {
        let resp = self.raw(reqwest::Method::GET, target, None).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        Err(refusal(status, &bytes))
    }

    /// Sends a request; answers the JSON body of a 2xx, or the failure.
    pub async fn send(
        &self,
        method: reqwest::Method,
        target: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let resp = self.raw(method, target, body).await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| {
            Failure::new(
                Exit::Unreachable,
                format!("reading the answer: {}", e.without_url()),
            )
        })?;
        if (200..300).contains(&status) {
            return Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
        }
        Err(refusal(status, &bytes))
    }

    pub async fn get(&self, target: &str) -> Result<Value, Failure> {
        self.send(reqwest::Method::GET, target, None).await
    }

    /// A GET whose JSON is wanted whatever the status (`/readyz` answers 503 when not ready).
    pub async fn get_any(&self, target: &str) -> Result<Value, Failure> {
        let resp = self.raw(reqwest::Method::GET, target, None).await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn text(&self, target: &str) -> Result<String, Failure> {
        let resp = self.raw(reqwest::Method::GET, target, None).await?;
        resp.text().await.map_err(|e| {
            Failure::new(
                Exit::Unreachable,
                format!("reading the answer: {}", e.without_url()),
            )
        })
    }
}

/// The failure for a non-2xx answer: the code and message of the JSON error shape.
fn refusal(status: u16, bytes: &[u8]) -> Failure {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_str().unwrap_or("");
    let message = v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).chars().take(200).collect());
    let exit = if status == 401 || status == 403 {
        Exit::Refused
    } else {
        Exit::Failed
    };
    let hint = if status == 401 {
        " (set AGORA_DRIVER_TOKEN or --token-file)"
    } else {
        ""
    };
    Failure::new(
        exit,
        format!("the node answered {status} {code}: {message}{hint}"),
    )
}
