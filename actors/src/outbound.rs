//! Calls from plugins to platforms: one guarded HTTP client per plugin instance, with a
//! timeout per attempt, retries with backoff on 5xx and 429 (honouring `Retry-After`), and a
//! circuit breaker, so one platform that is down costs its instance fast refusals instead of
//! tying up requests, and shows in that instance's health.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_plugins::{BoxFuture, Http, HttpError, HttpRequest, HttpResponse};
use agora_runtime::{exponential_backoff, jittered, Clock};
use serde_json::{json, Value};

/// The bodies plugins read are small JSON documents; a platform answering more is refused
/// rather than buffered.
const MAX_BODY: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    /// Per attempt, connect to last byte.
    pub timeout: Duration,
    /// Tries per call, the first included.
    pub attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this ends the call at once (the caller learns when to come
    /// back) rather than holding a driver request open.
    pub max_retry_after: Duration,
    /// Consecutive failed attempts that open the breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker refuses calls before letting one trial through.
    pub breaker_cooldown: Duration,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    Closed,
    /// Refuses calls until this time of the node's clock (epoch ms).
    Open {
        until_ms: u64,
    },
    /// The cooldown passed; one trial call is allowed through.
    HalfOpen {
        trial_in_flight: bool,
    },
}

#[derive(Debug)]
struct BreakerInner {
    state: BreakerState,
    consecutive_failures: u32,
    last_error: Option<String>,
    calls: u64,
    failures: u64,
}

/// One instance's circuit breaker.
pub struct Breaker {
    inner: Mutex<BreakerInner>,
    threshold: u32,
    cooldown: Duration,
    clock: Arc<dyn Clock>,
}

/// A breaker as the health API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerView {
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub retry_in_ms: Option<u64>,
    pub last_error: Option<String>,
    pub calls: u64,
    pub failures: u64,
}

impl BreakerView {
    pub fn to_json(&self) -> Value {
        json!({
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "retry_in_ms": self.retry_in_ms,
            "last_error": self.last_error,
            "calls": self.calls,
            "failures": self.failures,
        })
    }
}

impl Breaker {
    fn new(threshold: u32, cooldown: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::new(BreakerInner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                last_error: None,
                calls: 0,
                failures: 0,
            }),
            threshold: threshold.max(1),
            cooldown,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May an attempt go out now? Moves an expired open breaker to half-open and admits one
    /// trial.
    fn admit(&self) -> Result<(), HttpError> {
        let mut b = self.lock();
        let now = self.clock.now_ms();
        match b.state {
            BreakerState::Closed => {}
            BreakerState::Open { until_ms } if now < until_ms => {
                return Err(HttpError::CircuitOpen {
                    retry_in_ms: until_ms - now,
                });
            }
            BreakerState::Open { .. }
            | BreakerState::HalfOpen {
                trial_in_flight: false,
            } => {
                b.state = BreakerState::HalfOpen {
                    trial_in_flight: true,
                };
            }
            BreakerState::HalfOpen {
                trial_in_flight: true,
            } => {
                return Err(HttpError::CircuitOpen {
                    retry_in_ms: self.cooldown.as_millis() as u64,
                });
            }
        }
        b.calls += 1;
        Ok(())
    }

    fn success(&self) {
        let mut b = self.lock();
        b.state = BreakerState::Closed;
        b.consecutive_failures = 0;
    }

    /// A failed attempt; answers whether the breaker is now open.
    fn failure(&self, error: String) -> bool {
        let mut b = self.lock();
        b.failures += 1;
        b.consecutive_failures = b.consecutive_failures.saturating_add(1);
        b.last_error = Some(error);
        let open = matches!(b.state, BreakerState::HalfOpen { .. })
            || b.consecutive_failures >= self.threshold;
        if open {
            if !matches!(b.state, BreakerState::Open { .. }) {
                tracing::warn!(
                    failures = b.consecutive_failures,
                    error = b.last_error.as_deref().unwrap_or(""),
                    "circuit breaker opened"
                );
            }
            b.state = BreakerState::Open {
                until_ms: self.clock.now_ms().saturating_add(ms(self.cooldown)),
            };
        }
        open
    }

    /// A trial that ended in neither success nor failure (a 4xx the plugin reads) still proves
    /// the platform answers.
    fn answered(&self) {
        self.success();
    }

    pub fn view(&self) -> BreakerView {
        let b = self.lock();
        let now = self.clock.now_ms();
        let (state, retry_in_ms) = match b.state {
            BreakerState::Closed => ("closed", None),
            BreakerState::Open { until_ms } if now < until_ms => ("open", Some(until_ms - now)),
            // The cooldown is over: the next call is the trial.
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => ("half_open", None),
        };
        BreakerView {
            state,
            consecutive_failures: b.consecutive_failures,
            retry_in_ms,
            last_error: b.last_error.clone(),
            calls: b.calls,
            failures: b.failures,
        }
    }
}

/// The node's outbound HTTP: one client (one connection pool) and a breaker per instance.
pub struct Outbound {
    client: reqwest::Client,
    policy: OutboundPolicy,
    breakers: Mutex<HashMap<String, Arc<Breaker>>>,
    /// The runtime's clock: breakers, backoff and plugins' notion of "now" follow it, so tests
    /// on a manual clock drive them too.
    clock: Arc<dyn Clock>,
}

impl Outbound {
    pub fn new(policy: OutboundPolicy, clock: Arc<dyn Clock>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("agora/", env!("CARGO_PKG_VERSION")))
            .build()
            // Only a broken TLS backend makes this fail, which no configuration can fix.
            .expect("the HTTP client builds");
        Self {
            client,
            policy,
            breakers: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn breaker(&self, instance: &str) -> Arc<Breaker> {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(instance.to_string())
            .or_insert_with(|| {
                Arc::new(Breaker::new(
                    self.policy.breaker_threshold,
                    self.policy.breaker_cooldown,
                    self.clock.clone(),
                ))
            })
            .clone()
    }

    /// The guarded client of plugin instance `instance` (`community/plugin`).
    pub fn for_instance(&self, instance: &str) -> InstanceHttp {
        InstanceHttp {
            client: self.client.clone(),
            policy: self.policy.clone(),
            breaker: self.breaker(instance),
            instance: instance.to_string(),
            clock: self.clock.clone(),
        }
    }

    /// The instance's breaker, if it ever made a call.
    pub fn breaker_view(&self, instance: &str) -> Option<BreakerView> {
        let map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        map.get(instance).map(|b| b.view())
    }

    /// Forgets an instance's breaker (the plugin was disabled for the community).
    pub fn forget(&self, instance: &str) {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(instance);
    }
}

/// What one attempt came to.
enum Attempt {
    Done(HttpResponse),
    /// Worth another try, after at least `wait` (a `Retry-After`), if any is left.
    Retry {
        error: HttpError,
        wait: Option<Duration>,
    },
    Fail(HttpError),
}

pub struct InstanceHttp {
    client: reqwest::Client,
    policy: OutboundPolicy,
    breaker: Arc<Breaker>,
    instance: String,
    clock: Arc<dyn Clock>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl InstanceHttp {
    async fn attempt(&self, req: &HttpRequest) -> Attempt {
        let method = match reqwest::Method::from_bytes(req.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Attempt::Fail(HttpError::Invalid(format!("method {}", req.method))),
        };
        let url = match reqwest::Url::parse(&req.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => return Attempt::Fail(HttpError::Invalid(format!("url '{}'", req.url))),
        };
        let mut builder = self.client.request(method, url);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let resp = match builder.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                let error = HttpError::Timeout(self.policy.timeout.as_millis() as u64);
                // A POST that timed out may have been applied; repeating it could act twice.
                return if req.idempotent() {
                    Attempt::Retry { error, wait: None }
                } else {
                    Attempt::Fail(error)
                };
            }
            Err(e) => {
                let connect = e.is_connect();
                let error = HttpError::Connect(e.without_url().to_string());
                return if connect || req.idempotent() {
                    Attempt::Retry { error, wait: None }
                } else {
                    Attempt::Fail(error)
                };
            }
        };
        let status = resp.status().as_u16();
        // Seconds or an HTTP-date (the runtime's one parser); uncapped here, because a wait
        // longer than `max_retry_after` ends the call rather than being shortened.
        let wait = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| agora_runtime::retry_after(v, self.clock.now_ms(), Duration::MAX));
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = match resp.bytes().await {
            Ok(b) if b.len() <= MAX_BODY => b.to_vec(),
            Ok(_) => {
                return Attempt::Fail(HttpError::Connect(format!(
                    "the response body exceeds {MAX_BODY} bytes"
                )))
            }
            Err(e) => {
                let error = if e.is_timeout() {
                    HttpError::Timeout(self.policy.timeout.as_millis() as u64)
                } else {
                    HttpError::Connect(e.without_url().to_string())
                };
                return if req.idempotent() {
                    Attempt::Retry { error, wait: None }
                } else {
                    Attempt::Fail(error)
                };
            }
        };
        // 429 and 503 mean the request was not processed, so even a POST may be repeated;
        // other 5xx only for idempotent requests.
        let retryable = status == 429 || status == 503 || (status >= 500 && req.idempotent());
        if retryable {
            return Attempt::Retry {
                error: HttpError::Exhausted {
                    status,
                    retry_after_ms: wait.map(|w| w.as_millis() as u64),
                },
                wait,
            };
        }
        if status >= 500 {
            return Attempt::Fail(HttpError::Exhausted {
                status,
                retry_after_ms: None,
            });
        }
        Attempt::Done(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        // Jitter keeps instances that failed together from retrying together.
        jittered(exponential_backoff(
            self.policy.base_backoff,
            self.policy.max_backoff,
            attempt,
        ))
    }

    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let started = self.clock.now_ms();
        let mut last = None;
        for attempt in 0..self.policy.attempts.max(1) {
            self.breaker.admit()?;
            match self.attempt(&req).await {
                Attempt::Done(resp) => {
                    self.breaker.answered();
                    tracing::debug!(instance = %self.instance, method = req.method,
                        status = resp.status, elapsed_ms = self.clock.now_ms().saturating_sub(started),
                        "platform call");
                    return Ok(resp);
                }
                Attempt::Fail(e) => {
                    if !matches!(e, HttpError::Invalid(_)) {
                        self.breaker.failure(e.to_string());
                    }
                    return Err(e);
                }
                Attempt::Retry { error, wait } => {
                    tracing::debug!(instance = %self.instance, attempt, error = %error,
                        "platform call failed");
                    if self.breaker.failure(error.to_string()) {
                        return Err(error);
                    }
                    let pause = match wait {
                        Some(w) if w > self.policy.max_retry_after => return Err(error),
                        Some(w) => w,
                        None => self.backoff(attempt),
                    };
                    last = Some(error);
                    if attempt + 1 < self.policy.attempts {
                        self.clock.sleep(pause).await;
                    }
                }
            }
        }
        Err(last.unwrap_or(HttpError::Connect("no attempt was made".into())))
    }
}

impl Http for InstanceHttp {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        Box::pin(self.call(req))
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use agora_runtime::ManualClock;

    use super::*;

    #[test]
    fn breaker_opens_after_threshold_and_admits_one_trial_after_cooldown() {
        let clock = Arc::new(ManualClock::new(1_000));
        let b = Breaker::new(3, Duration::from_millis(30), clock.clone());
        for _ in 0..2 {
            b.admit().unwrap();
            assert!(!b.failure("boom".into()));
        }
        b.admit().unwrap();
        assert!(b.failure("boom".into()));
        assert_eq!(b.view().state, "open");
        assert!(matches!(b.admit(), Err(HttpError::CircuitOpen { .. })));
        clock.advance(29);
        assert_eq!(b.view().state, "open");
        clock.advance(1);
        assert_eq!(b.view().state, "half_open");
        b.admit().unwrap();
        // Only one trial at a time.
        assert!(b.admit().is_err());
        // A failed trial reopens at once.
        assert!(b.failure("still down".into()));
        assert_eq!(b.view().state, "open");
        clock.advance(30);
        b.admit().unwrap();
        b.success();
        let v = b.view();
        assert_eq!((v.state, v.consecutive_failures), ("closed", 0));
        assert_eq!(v.last_error.as_deref(), Some("still down"));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = Breaker::new(2, Duration::from_secs(60), Arc::new(ManualClock::new(0)));
        b.admit().unwrap();
        b.failure("x".into());
        b.admit().unwrap();
        b.success();
        b.admit().unwrap();
        assert!(!b.failure("y".into()));
        assert_eq!(b.view().state, "closed");
    }
}
