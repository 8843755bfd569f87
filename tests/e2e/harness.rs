//! The process-level harness every end-to-end test stands on.
//!
//! A [`Node`] is a real `agora` process on a free port with its own data directory (kept in a
//! tempdir for the node's whole life, so [`Node::restart`] finds its data again) and its own log
//! file; when a test panics the log is printed to stderr. A [`Sink`] is a small axum server inside
//! the test process that plays the driver and callback receiver: it records every request and can
//! be told to answer 503, or be started late on a reserved port to play a driver that is down.
//! [`eventually`] and [`Sink::wait_for`] poll for a condition so tests never sleep blindly.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a node may take to answer 200 on `/readyz`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to exit after SIGTERM (it drains first).
pub const TERM_TIMEOUT: Duration = Duration::from_secs(20);
/// The default patience of a poll for something the node does in the background.
pub const WAIT: Duration = Duration::from_secs(15);

/// The example process every process test drives.
pub const VOTE: &str = "randomness.delayed-stochastic-vote";
/// The community header of the Metagov API.
pub const COMMUNITY_HEADER: &str = "X-Metagov-Community";

/// Proxy variables, removed from every child: deliveries go straight to the local sink.
const PROXY_ENV: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A command for the binary under test with a clean environment: no `AGORA_*` variable of the
/// test run and no proxy can leak into a node.
fn agora_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agora"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AGORA_") {
            cmd.env_remove(key);
        }
    }
    for var in PROXY_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// A port that was free a moment ago, below the kernel's ephemeral range. A port the OS picks
/// (`bind(:0)`) comes from that range, and until the node binds it (or binds it again after a
/// restart), any outgoing connection of the machine may take it as its source port: the
/// tests make thousands, and CI once lost two tests to that. Ports below the range are never
/// handed out that way. A counter keeps this process from handing one out twice; the start
/// depends on the process id, so test binaries running at once start apart.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
        .clamp(LOW + 1_000, 65_535);
    let span = high - LOW;
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let port = LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if let Ok(l) = StdTcpListener::bind(("127.0.0.1", port as u16)) {
            return l.local_addr().expect("local address").port();
        }
    }
    let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Polls `probe` every 50 ms until it answers `Ok`, or panics after `timeout` with the last
/// observation it reported.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(observation) => observation,
        };
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last observation: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An id no other call in this test run answers (`<prefix>-<n>`): platforms send a fresh
/// delivery id with every delivery, and Agora ignores a replayed one.
pub fn unique_id(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A plain HTTP client that never goes through a proxy.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("build the HTTP client")
}

/// How to start a node.
#[derive(Clone, Default)]
pub struct NodeConfig {
    dev: bool,
    token: Option<String>,
    signing_secret: Option<String>,
    driver_url: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Pass listen address, data dir, dev and driver URL through `AGORA_*` variables instead of
    /// flags.
    via_env: bool,
}

impl NodeConfig {
    /// Auth off (`--dev`), the way most tests run.
    pub fn dev() -> Self {
        NodeConfig {
            dev: true,
            ..NodeConfig::default()
        }
    }

    /// Auth on, with this driver token in `AGORA_DRIVER_TOKEN`.
    pub fn with_token(token: &str) -> Self {
        NodeConfig {
            token: Some(token.to_string()),
            ..NodeConfig::default()
        }
    }

    pub fn driver(mut self, url: String) -> Self {
        self.driver_url = Some(url);
        self
    }

    pub fn signing_secret(mut self, secret: &str) -> Self {
        self.signing_secret = Some(secret.to_string());
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// An extra environment variable for the node.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn configured_by_env(mut self) -> Self {
        self.via_env = true;
        self
    }
}

/// One `agora serve` process under test.
pub struct Node {
    name: String,
    config: NodeConfig,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    launches: u32,
    client: reqwest::Client,
}

impl Node {
    /// Starts a node on a free port and waits until it is ready.
    pub async fn start(name: &str, config: NodeConfig) -> Node {
        let mut node = Node::spawn(name, config);
        node.wait_ready().await;
        node
    }

    /// Starts a node without waiting for it to be ready.
    pub fn spawn(name: &str, config: NodeConfig) -> Node {
        let dir = tempfile::Builder::new()
            .prefix(&format!("agora-e2e-{name}-"))
            .tempdir()
            .expect("create the node's tempdir");
        let mut node = Node {
            name: name.to_string(),
            config,
            port: free_port(),
            dir,
            child: None,
            launches: 0,
            client: http_client(),
        };
        node.launch();
        node
    }

    /// The node's data directory (a restore test empties and refills it).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    fn launch(&mut self) {
        assert!(
            self.child.is_none(),
            "node {} is already running",
            self.name
        );
        self.launches += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the node's log");
        writeln!(
            log,
            "===== e2e harness: launch #{} of node {} on port {} =====",
            self.launches, self.name, self.port
        )
        .expect("write the node's log");

        let listen = format!("127.0.0.1:{}", self.port);
        let mut cmd = agora_command();
        cmd.arg("serve");
        if self.config.via_env {
            cmd.env("AGORA_LISTEN", &listen);
            cmd.env("AGORA_DATA_DIR", self.data_dir());
            if self.config.dev {
                cmd.env("AGORA_DEV", "true");
            }
            if let Some(url) = &self.config.driver_url {
                cmd.env("AGORA_DRIVER_URL", url);
            }
        } else {
            cmd.arg("--listen").arg(&listen);
            cmd.arg("--data-dir").arg(self.data_dir());
            if self.config.dev {
                cmd.arg("--dev");
            }
            if let Some(url) = &self.config.driver_url {
                cmd.arg("--driver-url").arg(url);
            }
        }
        cmd.args(&self.config.args);
        if let Some(token) = &self.config.token {
            cmd.env("AGORA_DRIVER_TOKEN", token);
        }
        if let Some(secret) = &self.config.signing_secret {
            cmd.env("AGORA_SIGNING_SECRET", secret);
        }
        cmd.envs(self.config.env.iter().map(|(k, v)| (k, v)));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let stderr = log.try_clone().expect("clone the log handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", env!("CARGO_BIN_EXE_agora")));
        self.child = Some(child);
    }

    /// Polls `/readyz` until it answers 200; panics if the process exits or 20 s pass.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!("node {} exited before it was ready: {status}", self.name);
                }
            }
            let probe = self
                .client
                .get(self.url("/readyz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(probe, Ok(ref r) if r.status().as_u16() == 200) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "node {} not ready after {READY_TIMEOUT:?} (last probe: {probe:?})",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .unwrap_or_else(|| panic!("node {} is not running", self.name))
            .id()
    }

    /// SIGKILL: the node gets no chance to flush or drain.
    pub async fn kill9(&mut self) {
        send_signal(self.pid(), libc::SIGKILL);
        let mut child = self.child.take().expect("running node");
        let status = wait_exit(&mut child, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("node {} survived SIGKILL", self.name));
        eprintln!("node {} killed with SIGKILL: {status}", self.name);
    }

    /// SIGTERM, then waits for the exit and answers its status.
    pub async fn term(&mut self) -> ExitStatus {
        send_signal(self.pid(), libc::SIGTERM);
        let mut child = self.child.take().expect("running node");
        match wait_exit(&mut child, TERM_TIMEOUT).await {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {} did not exit within {TERM_TIMEOUT:?} of SIGTERM",
                    self.name
                );
            }
        }
    }

    /// Sets (or with `None` removes) an environment variable for the node's next launches.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.config.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.config.env.push((key.to_string(), v.to_string()));
        }
    }

    /// Waits for the node to exit by itself (a crash point it was armed with); answers how.
    pub async fn wait_exited(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running node");
        match wait_exit(&mut child, timeout).await {
            Some(status) => status,
            None => {
                self.child = Some(child);
                panic!("node {} still running after {timeout:?}", self.name);
            }
        }
    }

    /// Starts the stopped node again on the same port with the same data dir, and waits until
    /// it is ready.
    pub async fn restart(&mut self) {
        self.launch();
        self.wait_ready().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node's log so far (every launch).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A request to the node, carrying the driver token when the node has one.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.anonymous(method, path);
        match &self.config.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// A request to the node without any credentials.
    pub fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends a request built from [`Node::request`] or [`Node::anonymous`].
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Resp {
        let request = builder.build().expect("a well-formed request");
        let what = format!("{} {}", request.method(), request.url().path());
        let response = self
            .client
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{what} on node {}: {e:?}", self.name));
        Resp::read(what, response).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(self.request(reqwest::Method::PUT, path).json(body))
            .await
    }

    /// A POST scoped to a community by the `X-Metagov-Community` header.
    pub async fn post_in(&self, community: &str, path: &str, body: &Value) -> Resp {
        self.send(
            self.request(reqwest::Method::POST, path)
                .header(COMMUNITY_HEADER, community)
                .json(body),
        )
        .await
    }

    /// A POST with a raw body sent as `application/json`.
    pub async fn post_raw(&self, community: Option<&str>, path: &str, body: Vec<u8>) -> Resp {
        self.send_raw(reqwest::Method::POST, community, path, body)
            .await
    }

    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        community: Option<&str>,
        path: &str,
        body: Vec<u8>,
    ) -> Resp {
        let mut builder = self
            .request(method, path)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(community) = community {
            builder = builder.header(COMMUNITY_HEADER, community);
        }
        self.send(builder).await
    }

    // ----- driver-level steps, each asserting the happy answer -----

    pub async fn create_community(&self, slug: &str) -> Value {
        self.post(
            "/api/internal/community",
            &json!({"slug": slug, "readable_name": format!("The {slug} community")}),
        )
        .await
        .expect_status(201)
        .json()
    }

    /// `randomness.random-int` without parameters in `community`: a draw from the configured
    /// `[default_low, default_high)`, which tests set one wide to read the config back.
    pub async fn drawn(&self, community: &str) -> i64 {
        let answer = self
            .post_in(
                community,
                "/api/internal/action/randomness.random-int",
                &json!({"parameters": {}}),
            )
            .await
            .expect_status(200)
            .json();
        answer["value"]
            .as_i64()
            .unwrap_or_else(|| panic!("{answer}"))
    }

    pub async fn community(&self, slug: &str) -> Value {
        self.get(&format!("/api/internal/community/{slug}"))
            .await
            .expect_status(200)
            .json()
    }

    /// Enables `randomness` with the default test config; answers the plugin instance.
    pub async fn enable_randomness(&self, slug: &str) -> Value {
        self.post_in(
            slug,
            "/api/internal/plugin/randomness",
            &randomness_config(),
        )
        .await
        .expect_status(201)
        .json()
    }

    /// A community with `randomness` enabled.
    pub async fn community_with_randomness(&self, slug: &str) -> Value {
        self.create_community(slug).await;
        self.enable_randomness(slug).await
    }

    /// Starts a delayed-stochastic-vote; answers its `Location`.
    pub async fn start_vote(&self, slug: &str, delay: f64, callback: Option<&str>) -> String {
        let mut body = json!({"options": ["yes", "no"], "delay": delay});
        if let Some(callback) = callback {
            body["callback_url"] = json!(callback);
        }
        let resp = self
            .post_in(slug, &format!("/api/internal/process/{VOTE}"), &body)
            .await
            .expect_status(202);
        resp.header("location")
            .unwrap_or_else(|| panic!("{}: no Location header", resp.what))
    }

    /// Closes a process; answers the completed process JSON.
    pub async fn close(&self, location: &str) -> Value {
        self.delete(location).await.expect_status(200).json()
    }

    /// Sums the values of one metric in `/metrics` (every label set), if it is there.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.get("/metrics").await.expect_status(200).text();
        metric_value(&text, name)
    }

    fn dump_log(&self) {
        const TAIL: u64 = 256 * 1024;
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log_path()) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len > TAIL {
                let _ = file.seek(SeekFrom::Start(len - TAIL));
                text.push_str("[... earlier log cut ...]\n");
            }
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        eprintln!(
            "\n===== log of node {} (port {}, {}) =====\n{text}\n===== end of log of node {} =====",
            self.name,
            self.port,
            self.log_path().display(),
            self.name
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            self.dump_log();
        }
    }
}

/// The config every test enables `randomness` with.
pub fn randomness_config() -> Value {
    json!({"default_low": 2, "default_high": 200})
}

/// Sums the samples of `name` in a Prometheus text exposition.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest
            .rsplit('}')
            .next()
            .unwrap_or(rest)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(value) = value {
            found = Some(found.unwrap_or(0.0) + value);
        }
    }
    found
}

#[allow(unsafe_code)]
fn send_signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the pid is our own
    // child, not yet reaped, so it cannot name another process.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

async fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait on the child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a run of the binary that was expected to exit did.
pub struct Exit {
    pub status: ExitStatus,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `agora` with these arguments and extra environment, expecting it to exit by itself
/// within `timeout`; panics (after killing it) if it is still running then.
pub async fn run_to_exit(args: &[String], env: &[(&str, &str)], timeout: Duration) -> Exit {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr_path = dir.path().join("stderr.log");
    let stderr = File::create(&stderr_path).expect("create the stderr file");
    let mut cmd = agora_command();
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn agora");
    let status = wait_exit(&mut child, timeout).await;
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    match status {
        Some(status) => Exit {
            status,
            stderr,
            elapsed: started.elapsed(),
        },
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`agora {args:?}` still running after {timeout:?}; stderr:\n{stderr}");
        }
    }
}

/// One HTTP answer, read whole.
pub struct Resp {
    /// `METHOD /path`, for failure messages.
    pub what: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    async fn read(what: String, response: reqwest::Response) -> Resp {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e:?}"))
            .to_vec();
        Resp {
            what,
            status,
            headers,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn describe(&self) -> String {
        format!("{} -> {} {}", self.what, self.status, self.text())
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e})", self.describe()))
    }

    #[track_caller]
    pub fn expect_status(self, status: u16) -> Resp {
        assert_eq!(
            self.status,
            status,
            "unexpected status: {}",
            self.describe()
        );
        self
    }

    /// Asserts the status and the stable error code; answers the `error` object.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status: {}",
            self.describe()
        );
        let error = self.error_object();
        assert_eq!(
            error["code"],
            json!(code),
            "unexpected error code: {}",
            self.describe()
        );
        error
    }

    /// Asserts a 4xx answer in the JSON error shape; answers the `error` object.
    #[track_caller]
    pub fn expect_client_error(&self) -> Value {
        assert!(
            (400..500).contains(&self.status),
            "expected a 4xx: {}",
            self.describe()
        );
        self.error_object()
    }

    /// Asserts `{"error":{"code":<snake_case>,"message":<non-empty>,"field":<optional string>}}`.
    #[track_caller]
    pub fn error_object(&self) -> Value {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "error answer is not served as JSON (content-type {content_type:?}): {}",
            self.describe()
        );
        let body = self.json();
        let error = body
            .get("error")
            .filter(|e| e.is_object())
            .unwrap_or_else(|| panic!("no \"error\" object: {}", self.describe()))
            .clone();
        let code = error["code"].as_str().unwrap_or_default();
        assert!(
            is_snake_case(code),
            "error.code is not non-empty snake_case: {}",
            self.describe()
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            !message.trim().is_empty(),
            "error.message is empty or missing: {}",
            self.describe()
        );
        assert!(
            matches!(
                error.get("field"),
                None | Some(Value::Null | Value::String(_))
            ),
            "error.field must be absent, null or a string: {}",
            self.describe()
        );
        error
    }
}

pub fn is_snake_case(code: &str) -> bool {
    code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Asserts that every key of `expected` is in `actual` with an equal value.
#[track_caller]
pub fn assert_fields(actual: &Value, expected: &Value) {
    let expected = expected.as_object().expect("expected fields as an object");
    for (key, value) in expected {
        assert_eq!(
            actual.get(key),
            Some(value),
            "field {key:?} differs in {actual}"
        );
    }
}

/// The process id as the tail of its `Location` would spell it.
pub fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ----- the sink -----

/// One request the sink received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub json: Option<Value>,
    pub at: Instant,
    /// The status the sink answered.
    pub answered: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn idempotency_key(&self) -> Option<&str> {
        self.header("idempotency-key")
    }

    /// For a driver event: `data`, the process JSON.
    pub fn event_data(&self) -> Option<&Value> {
        self.json.as_ref().and_then(|j| j.get("data"))
    }

    /// A `process_updated` event about process `id` in status `status`.
    pub fn is_process_event(&self, id: &Value, status: &str) -> bool {
        let Some(event) = &self.json else {
            return false;
        };
        event["event_type"] == "process_updated"
            && event["data"]["id"] == *id
            && event["data"]["status"] == status
    }

    /// A callback (the bare process JSON) about process `id` in status `status`.
    pub fn is_callback(&self, id: &Value, status: &str) -> bool {
        let Some(body) = &self.json else {
            return false;
        };
        body["id"] == *id && body["status"] == status && body.get("event_type").is_none()
    }

    fn summary(&self) -> String {
        format!(
            "{} {} -> {} key={:?} body={}",
            self.method,
            self.path,
            self.answered,
            self.idempotency_key(),
            String::from_utf8_lossy(&self.body)
        )
    }
}

struct SinkShared {
    requests: Mutex<Vec<Recorded>>,
    status: AtomicU16,
}

/// An HTTP server in the test process that records every request it gets.
pub struct Sink {
    port: u16,
    shared: Arc<SinkShared>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Sink {
    /// A sink listening on a free port, answering 200.
    pub async fn start() -> Sink {
        let mut sink = Sink::reserve();
        sink.listen().await;
        sink
    }

    /// A sink with a port chosen but nothing listening yet: a driver that is down.
    pub fn reserve() -> Sink {
        Sink {
            port: free_port(),
            shared: Arc::new(SinkShared {
                requests: Mutex::new(Vec::new()),
                status: AtomicU16::new(200),
            }),
            server: None,
        }
    }

    /// Starts listening on the reserved port.
    pub async fn listen(&mut self) {
        assert!(self.server.is_none(), "sink already listening");
        let addr = format!("127.0.0.1:{}", self.port);
        let listener = eventually(Duration::from_secs(5), "the sink's port to bind", || {
            let addr = addr.clone();
            async move {
                tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| format!("bind {addr}: {e}"))
            }
        })
        .await;
        let app = axum::Router::new()
            .fallback(record)
            .with_state(self.shared.clone());
        self.server = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the sink serves");
        }));
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The status answered to every request from now on.
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("sink lock").clone()
    }

    /// Waits until `pred` holds over everything received so far; answers that list.
    pub async fn wait_for<F>(&self, timeout: Duration, what: &str, pred: F) -> Vec<Recorded>
    where
        F: Fn(&[Recorded]) -> bool,
    {
        eventually(timeout, what, || {
            let requests = self.requests();
            let outcome = if pred(&requests) {
                Ok(requests)
            } else {
                Err(format!("{} request(s) so far", requests.len()))
            };
            async move { outcome }
        })
        .await
    }

    /// Waits for the first request matching `pred` and returns it.
    pub async fn wait_for_one<F>(&self, timeout: Duration, what: &str, pred: F) -> Recorded
    where
        F: Fn(&Recorded) -> bool,
    {
        let requests = self
            .wait_for(timeout, what, |reqs| reqs.iter().any(&pred))
            .await;
        requests
            .into_iter()
            .find(|r| pred(r))
            .expect("wait_for returned once a request matched")
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if std::thread::panicking() {
            let requests = self.requests();
            eprintln!(
                "===== sink on port {} received {} request(s) =====",
                self.port,
                requests.len()
            );
            for request in requests.iter().take(200) {
                eprintln!("  {}", request.summary());
            }
        }
    }
}

async fn record(
    State(shared): State<Arc<SinkShared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let answered = shared.status.load(Ordering::SeqCst);
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        json: serde_json::from_slice(&body).ok(),
        body: body.to_vec(),
        at: Instant::now(),
        answered,
    };
    shared.requests.lock().expect("sink lock").push(recorded);
    StatusCode::from_u16(answered).unwrap_or(StatusCode::OK)
}

// ----- a raw HTTP/1.1 connection, to prove a connection survives a bad request -----

/// One keep-alive HTTP/1.1 connection driven by hand.
pub struct RawConn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// An answer read from a [`RawConn`].
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "raw answer {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl RawConn {
    pub async fn connect(port: u16) -> RawConn {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the node");
        RawConn {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Sends one request and reads its answer; panics if the server closed the connection.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.stream
            .write_all(&bytes)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: the connection was dropped: {e}"));
        tokio::time::timeout(Duration::from_secs(10), self.read_response(method, path))
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s"))
    }

    async fn fill(&mut self, what: &str) {
        let mut chunk = [0u8; 8192];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .unwrap_or_else(|e| panic!("{what}: the connection failed: {e}"));
        assert!(n > 0, "{what}: the server closed the connection");
        self.buffer.extend_from_slice(&chunk[..n]);
    }

    async fn read_response(&mut self, method: &str, path: &str) -> RawResponse {
        let what = format!("{method} {path}");
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            self.fill(&what).await;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what}: bad status line in {head:?}"));
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse::<usize>().ok();
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(at) = find(&self.buffer, b"\r\n") {
                        break at;
                    }
                    self.fill(&what).await;
                };
                let size_text = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                    .unwrap_or_else(|_| panic!("{what}: bad chunk size {size_text:?}"));
                self.buffer.drain(..line_end + 2);
                while self.buffer.len() < size + 2 {
                    self.fill(&what).await;
                }
                body.extend_from_slice(&self.buffer[..size]);
                self.buffer.drain(..size + 2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            let length = length.unwrap_or(0);
            while self.buffer.len() < length {
                self.fill(&what).await;
            }
            self.buffer.drain(..length).collect()
        };
        RawResponse { status, body }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ----- time -----

/// Milliseconds since the Unix epoch, by the wall clock.
pub fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since.as_millis()).expect("epoch milliseconds fit u64")
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = i64::try_from(secs / 86_400).expect("days fit i64");
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}
