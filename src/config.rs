//! The node's configuration: one typed struct, from a TOML file, then `AGORA_*` environment
//! variables, then flags (each overriding the one before), parsed once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use agora_actors::outbound::OutboundPolicy;
use agora_gateway::ServeLimits;
use agora_runtime::ClusterConfig;
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

#[derive(Parser, Debug)]
#[command(
    name = "agora",
    version,
    about = "Agora: a governance runtime for online communities"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub conn: crate::cli::Conn,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node: the HTTP API, the actors, storage, reminders and deliveries.
    Serve(Box<ServeArgs>),
    /// Talk to a running node (status, communities, processes, audit, tokens, verify).
    #[command(flatten)]
    Ops(crate::cli::Ops),
}

#[derive(Clone, Copy, Debug, Deserialize, ValueEnum, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment win over it).
    #[arg(long, env = "AGORA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address the HTTP API listens on [default: 127.0.0.1:8080].
    #[arg(long, env = "AGORA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the node's database [default: ./data].
    #[arg(long, env = "AGORA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where driver events are POSTed (a community may override it).
    #[arg(long, env = "AGORA_DRIVER_URL")]
    pub driver_url: Option<String>,
    /// Development mode: internal routes need no token. Allowed on loopback addresses only.
    #[arg(long, env = "AGORA_DEV")]
    pub dev: bool,
    /// Seconds an idle actor stays in memory [default: 300].
    #[arg(long, env = "AGORA_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Log format [default: human].
    #[arg(long, env = "AGORA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Messages queued per actor before the API answers 503 [default: 1024].
    #[arg(long, env = "AGORA_MAILBOX_CAPACITY")]
    pub mailbox_capacity: Option<usize>,
    /// Longest wait between two delivery attempts, in seconds [default: 30].
    #[arg(long, env = "AGORA_DELIVERY_MAX_BACKOFF")]
    pub delivery_max_backoff: Option<u64>,
    /// Storage page cache, in MiB [default: 128].
    #[arg(long, env = "AGORA_CACHE_MB")]
    pub cache_mb: Option<u64>,
    /// Actor threads (actix arbiters) [default: one per core].
    #[arg(long, env = "AGORA_ACTOR_THREADS")]
    pub actor_threads: Option<usize>,
    /// HTTP threads (tokio workers) [default: one per core].
    #[arg(long, env = "AGORA_HTTP_THREADS")]
    pub http_threads: Option<usize>,
    /// Plugins to load, comma-separated [default: every compiled-in plugin].
    #[arg(long, env = "AGORA_PLUGINS", value_delimiter = ',')]
    pub plugins: Option<Vec<String>>,
    /// Timeout of one call from a plugin to its platform, in milliseconds [default: 10000].
    #[arg(long, env = "AGORA_PLUGIN_TIMEOUT_MS")]
    pub plugin_timeout_ms: Option<u64>,
    /// Tries per platform call, the first included, on 5xx/429/timeouts [default: 3].
    #[arg(long, env = "AGORA_PLUGIN_ATTEMPTS")]
    pub plugin_attempts: Option<u32>,
    /// Consecutive failed platform calls that open an instance's circuit breaker [default: 5].
    #[arg(long, env = "AGORA_BREAKER_THRESHOLD")]
    pub breaker_threshold: Option<u32>,
    /// How long an open breaker refuses calls, in milliseconds [default: 30000].
    #[arg(long, env = "AGORA_BREAKER_COOLDOWN_MS")]
    pub breaker_cooldown_ms: Option<u64>,
    /// How often every plugin instance is probed for health, in milliseconds [default: 60000].
    #[arg(long, env = "AGORA_HEALTH_INTERVAL_MS")]
    pub health_interval_ms: Option<u64>,
    /// Cluster mode: the Redis every node shares (`redis://host:6379/0`). Without it the node
    /// runs alone on its embedded storage.
    #[arg(long, env = "AGORA_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Cluster mode: this node's id, unique and stable across restarts [default: the host
    /// name and port].
    #[arg(long, env = "AGORA_NODE_ID")]
    pub node_id: Option<String>,
    /// Cluster mode: where other nodes and operators reach this node [default: --listen].
    #[arg(long, env = "AGORA_ADVERTISE")]
    pub advertise: Option<String>,
    /// Cluster mode: partition lease length in milliseconds [default: 3000].
    #[arg(long, env = "AGORA_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// Time to receive a request's head, from the connection opening or the previous answer
    /// (so also the idle keep-alive timeout), in milliseconds [default: 10000].
    #[arg(long, env = "AGORA_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// Time to receive a request's whole body, from the end of its head, in milliseconds
    /// [default: 30000].
    #[arg(long, env = "AGORA_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// Connections served at once; more are answered 503 and closed [default: 1000].
    #[arg(long, env = "AGORA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds SIGTERM waits for open requests before closing their connections (fractions
    /// allowed) [default: 10].
    #[arg(long, env = "AGORA_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<f64>,
    /// Test aid, with --dev only: the node's clock starts at this time (epoch milliseconds)
    /// and moves only through `POST /api/internal/dev/clock`. Deadlines, reminders and
    /// delivery backoff follow it.
    #[arg(long, env = "AGORA_MANUAL_CLOCK", value_name = "START_MS")]
    pub manual_clock: Option<u64>,
}

/// The settings a TOML file may hold (secrets only from the environment or `*_FILE` paths).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    driver_url: Option<String>,
    dev: Option<bool>,
    idle_timeout: Option<u64>,
    log_format: Option<LogFormat>,
    mailbox_capacity: Option<usize>,
    delivery_max_backoff: Option<u64>,
    cache_mb: Option<u64>,
    actor_threads: Option<usize>,
    http_threads: Option<usize>,
    plugins: Option<Vec<String>>,
    plugin_timeout_ms: Option<u64>,
    plugin_attempts: Option<u32>,
    breaker_threshold: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
    health_interval_ms: Option<u64>,
    redis_url: Option<String>,
    node_id: Option<String>,
    advertise: Option<String>,
    lease_ms: Option<u64>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    shutdown_grace: Option<f64>,
}

/// The resolved configuration of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub driver_url: Option<String>,
    pub dev: bool,
    pub idle_timeout: Duration,
    pub log_format: LogFormat,
    pub mailbox_capacity: usize,
    pub delivery_max_backoff: Duration,
    pub cache_bytes: u64,
    /// Plugins to load; `None`: all compiled in.
    pub plugins: Option<Vec<String>>,
    pub actor_threads: usize,
    pub http_threads: usize,
    pub outbound: OutboundPolicy,
    pub health_interval: Duration,
    /// Cluster mode, when a Redis URL is given.
    pub cluster: Option<ClusterConfig>,
    /// `AGORA_DRIVER_TOKEN` or the file named by `AGORA_DRIVER_TOKEN_FILE`.
    pub driver_token: Option<String>,
    /// `AGORA_SIGNING_SECRET` or the file named by `AGORA_SIGNING_SECRET_FILE`.
    pub signing_secret: Option<String>,
    /// The HTTP server's timeouts, connection cap and shutdown grace.
    pub serve: ServeLimits,
    /// `--manual-clock`: the start of a clock that moves only when told to (with `--dev`).
    pub manual_clock: Option<u64>,
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

fn secret(var: &str) -> anyhow::Result<Option<String>> {
    if let Ok(v) = std::env::var(var) {
        if !v.is_empty() {
            return Ok(Some(v));
        }
    }
    let file_var = format!("{var}_FILE");
    if let Ok(path) = std::env::var(&file_var) {
        let v =
            std::fs::read_to_string(&path).with_context(|| format!("reading {file_var}={path}"))?;
        let v = v.trim().to_string();
        if !v.is_empty() {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// `--shutdown-grace`: seconds, fractions allowed, at most a day.
fn grace(seconds: Option<f64>) -> anyhow::Result<Duration> {
    let s = seconds.unwrap_or(10.0);
    if !(0.0..=86_400.0).contains(&s) {
        bail!("--shutdown-grace must be 0 to 86400 seconds, not {s}");
    }
    Ok(Duration::from_secs_f64(s))
}

impl NodeConfig {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<NodeConfig> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let cfg = NodeConfig {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            driver_url: args
                .driver_url
                .or(file.driver_url)
                .filter(|u| !u.is_empty()),
            dev: args.dev || file.dev.unwrap_or(false),
            idle_timeout: Duration::from_secs(
                args.idle_timeout.or(file.idle_timeout).unwrap_or(300),
            ),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Human),
            mailbox_capacity: args
                .mailbox_capacity
                .or(file.mailbox_capacity)
                .unwrap_or(1024)
                .max(1),
            delivery_max_backoff: Duration::from_secs(
                args.delivery_max_backoff
                    .or(file.delivery_max_backoff)
                    .unwrap_or(30)
                    .max(1),
            ),
            cache_bytes: args.cache_mb.or(file.cache_mb).unwrap_or(128).max(8) * 1024 * 1024,
            actor_threads: args
                .actor_threads
                .or(file.actor_threads)
                .unwrap_or_else(cores)
                .max(1),
            http_threads: args
                .http_threads
                .or(file.http_threads)
                .unwrap_or_else(cores)
                .max(1),
            plugins: args.plugins.or(file.plugins).map(|l| {
                l.into_iter()
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            }),
            outbound: OutboundPolicy {
                timeout: Duration::from_millis(
                    args.plugin_timeout_ms
                        .or(file.plugin_timeout_ms)
                        .unwrap_or(10_000)
                        .max(1),
                ),
                attempts: args
                    .plugin_attempts
                    .or(file.plugin_attempts)
                    .unwrap_or(3)
                    .clamp(1, 10),
                breaker_threshold: args
                    .breaker_threshold
                    .or(file.breaker_threshold)
                    .unwrap_or(5)
                    .max(1),
                breaker_cooldown: Duration::from_millis(
                    args.breaker_cooldown_ms
                        .or(file.breaker_cooldown_ms)
                        .unwrap_or(30_000),
                ),
                ..OutboundPolicy::default()
            },
            health_interval: Duration::from_millis(
                args.health_interval_ms
                    .or(file.health_interval_ms)
                    .unwrap_or(60_000)
                    .max(100),
            ),
            cluster: None,
            serve: ServeLimits {
                header_timeout: Duration::from_millis(
                    args.header_timeout_ms
                        .or(file.header_timeout_ms)
                        .unwrap_or(10_000)
                        .max(1),
                ),
                body_timeout: Duration::from_millis(
                    args.body_timeout_ms
                        .or(file.body_timeout_ms)
                        .unwrap_or(30_000)
                        .max(1),
                ),
                max_connections: args
                    .max_connections
                    .or(file.max_connections)
                    .unwrap_or(1000)
                    .max(1),
                shutdown_grace: grace(args.shutdown_grace.or(file.shutdown_grace))?,
            },
            driver_token: secret("AGORA_DRIVER_TOKEN")?,
            signing_secret: secret("AGORA_SIGNING_SECRET")?,
            manual_clock: args.manual_clock,
        };
        let mut cfg = cfg;
        if let Some(url) = args.redis_url.or(file.redis_url).filter(|u| !u.is_empty()) {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                bail!("--redis-url must be a redis:// or rediss:// URL, not {url:?}");
            }
            let node_id = args.node_id.or(file.node_id).unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "agora".into());
                format!("{host}-{}", cfg.listen.port())
            });
            if node_id.is_empty() || node_id.contains(char::is_whitespace) || node_id.contains(':')
            {
                bail!("--node-id must be non-empty, without spaces or ':', not {node_id:?}");
            }
            let advertise = args
                .advertise
                .or(file.advertise)
                .unwrap_or_else(|| cfg.listen.to_string());
            let mut c = ClusterConfig::new(url, node_id, advertise);
            if let Some(ms) = args.lease_ms.or(file.lease_ms) {
                c.lease_ttl = Duration::from_millis(ms.clamp(500, 60_000));
                c.tick = c.lease_ttl / 6;
                c.node_ttl = c.lease_ttl;
            }
            cfg.cluster = Some(c);
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// Refuses configurations that would expose the internal API without a token.
    fn check(&self) -> anyhow::Result<()> {
        if self.dev && !self.listen.ip().is_loopback() {
            bail!(
                "--dev turns authentication off and is allowed only on a loopback address, not {}",
                self.listen
            );
        }
        if self.manual_clock.is_some() && !self.dev {
            bail!(
                "--manual-clock stops the node's clock (deadlines never pass by themselves) and is a test aid allowed only with --dev"
            );
        }
        if !self.dev && self.driver_token.is_none() {
            bail!(
                "no driver token: set AGORA_DRIVER_TOKEN (or AGORA_DRIVER_TOKEN_FILE), or pass --dev on a loopback address"
            );
        }
        if let Some(u) = &self.driver_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!("--driver-url must be an http:// or https:// URL, not {u:?}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_mode_is_refused_off_loopback_and_auth_is_required_otherwise() {
        let base = NodeConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            data_dir: PathBuf::from("d"),
            driver_url: None,
            dev: true,
            idle_timeout: Duration::from_secs(1),
            log_format: LogFormat::Human,
            mailbox_capacity: 1,
            delivery_max_backoff: Duration::from_secs(1),
            cache_bytes: 8 << 20,
            plugins: None,
            actor_threads: 1,
            http_threads: 1,
            outbound: OutboundPolicy::default(),
            health_interval: Duration::from_secs(60),
            cluster: None,
            serve: ServeLimits::default(),
            driver_token: None,
            signing_secret: None,
            manual_clock: None,
        };
        assert!(base.check().is_err());
        let loopback = NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ..base.clone()
        };
        assert!(loopback.check().is_ok());
        let no_token = NodeConfig {
            dev: false,
            ..base.clone()
        };
        assert!(no_token.check().is_err());
        let token = NodeConfig {
            dev: false,
            driver_token: Some("t".into()),
            ..base.clone()
        };
        assert!(token.check().is_ok());
        // A manual clock is a test aid: refused without --dev, even with a token.
        let manual_in_production = NodeConfig {
            manual_clock: Some(1_000),
            ..token
        };
        assert!(manual_in_production.check().is_err());
        let manual_dev = NodeConfig {
            manual_clock: Some(1_000),
            ..loopback
        };
        assert!(manual_dev.check().is_ok());
    }

    #[test]
    fn file_settings_parse_and_unknown_keys_are_refused() {
        let f: FileConfig =
            toml::from_str("listen = \"127.0.0.1:9\"\nidle_timeout = 5\nlog_format = \"json\"")
                .unwrap();
        assert_eq!(f.idle_timeout, Some(5));
        assert_eq!(f.log_format, Some(LogFormat::Json));
        assert!(toml::from_str::<FileConfig>("nope = 1").is_err());
    }
}
