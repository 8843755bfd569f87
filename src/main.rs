//! The `agora` binary: the composition root. Configuration → storage → runtime → actors →
//! gateway, and the shutdown that undoes it in reverse order.

mod cli;
mod config;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agora_actors::{ActorsEnv, Agora, RefreshQueue, ResolveCache};
use agora_gateway::{AppInner, AppState, Auth, HttpMetrics, MetagovJson};
use agora_runtime::{
    Clock, DeliveryConfig, ManualClock, Runtime, RuntimeConfig, SystemClock, Tasks,
};
use agora_storage::{Engine, SledEngine};
use anyhow::Context;
use clap::Parser;

use config::{Cli, Command, LogFormat, NodeConfig};

/// How long shutdown waits for the background tasks (refreshes, settings sync, health probes)
/// to stop before aborting them.
const TASK_DEADLINE: Duration = Duration::from_secs(5);

// Request handling allocates many small, short-lived objects across threads; glibc's malloc
// spent about a fifth of the CPU of a small request (measured with perf), mimalloc far less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => NodeConfig::resolve(*args).and_then(serve),
        Command::Ops(op) => return cli::run(cli.conn, op),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Logging may not be set up yet (a bad config): say it plainly on stderr.
            eprintln!("agora: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

/// Turns transparent huge pages off for this process. mimalloc asks for them on its arenas
/// (`madvise(MADV_HUGEPAGE)`), so a node whose heap grows (every new actor) takes a fault that
/// zeroes 2 MiB at once, in whichever request touched the page first. Measured on the 2-vCPU
/// VM (BENCHMARKS, issue 14): wrk create p99 13.5-17.3 ms with them, 7.1-7.6 ms without, and
/// req/s 3-20 % higher; reads unchanged.
#[allow(unsafe_code)]
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) with PR_SET_THP_DISABLE takes plain integers and touches no memory of
    // ours; it only sets a flag on this process.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "transparent huge pages stay on");
    }
}

fn serve(cfg: NodeConfig) -> anyhow::Result<()> {
    init_logging(cfg.log_format);
    without_huge_pages();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.http_threads)
        .thread_name("agora-http")
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;

    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let engine: Arc<dyn Engine> = Arc::new(
        SledEngine::open_with_cache(&cfg.data_dir.join("db"), cfg.cache_bytes).with_context(
            || {
                format!(
                    "opening the database in {} (is another node using it?)",
                    cfg.data_dir.display()
                )
            },
        )?,
    );
    let clock: Arc<dyn Clock> = match cfg.manual_clock {
        Some(start_ms) => {
            tracing::warn!(
                start_ms,
                "manual clock: time moves only through POST /api/internal/dev/clock"
            );
            Arc::new(ManualClock::new(start_ms))
        }
        None => Arc::new(SystemClock),
    };
    let runtime = Runtime::start(
        RuntimeConfig {
            idle_timeout: cfg.idle_timeout,
            mailbox_capacity: cfg.mailbox_capacity,
            arbiters: cfg.actor_threads,
            delivery: DeliveryConfig {
                signing_secret: cfg.signing_secret.clone().map(String::into_bytes),
                max_backoff: cfg.delivery_max_backoff,
                ..DeliveryConfig::default()
            },
            cluster: cfg.cluster.clone(),
            ..RuntimeConfig::default()
        },
        engine,
        clock,
    )?;
    let registry = agora_plugins::PluginRegistry::select(
        agora_plugins::builtin::available(),
        cfg.plugins.as_deref(),
        agora_plugins::AGORA_VERSION,
    );
    let (refresh, refresh_queue) = RefreshQueue::channel();
    let agora = Agora::new(
        runtime.clone(),
        ActorsEnv {
            registry: Arc::new(registry),
            driver_url: cfg.driver_url.clone(),
            globals: Default::default(),
            refresh,
            json: Arc::new(MetagovJson),
            // A community's partition may move between nodes in cluster mode, changing it
            // where this node's actor cannot see: nothing is kept there.
            resolved: Arc::new(ResolveCache::new(cfg.cluster.is_none())),
        },
        cfg.outbound.clone(),
    );
    let ready = Arc::new(AtomicBool::new(false));
    let tasks = Tasks::new();
    let state = AppState::new(AppInner {
        agora: agora.clone(),
        auth: match &cfg.driver_token {
            Some(t) if !cfg.dev => Auth::Token(t.as_str().into()),
            _ => Auth::Open,
        },
        metrics: Arc::new(HttpMetrics::new()),
        ready: ready.clone(),
        tasks: tasks.clone(),
    });

    let served = tokio.block_on(async {
        runtime.run_background()?;
        agora
            .plugins
            .load_globals()
            .await
            .context("reading the plugins' global settings")?;
        agora.tokens.reload().await;
        agora
            .audit
            .record_load_refusals()
            .await
            .context("recording refused plugins in the audit log")?;
        let platform = agora.platform.clone();
        tasks.spawn("refreshes", |stop| {
            platform.run_refreshes(refresh_queue, stop)
        });
        let plugins = agora.plugins.clone();
        tasks.spawn("global-sync", |stop| plugins.run_global_sync(stop));
        let tokens = agora.tokens.clone();
        tasks.spawn("token-sync", |stop| tokens.run_sync(stop));
        let (health, interval) = (agora.health.clone(), cfg.health_interval);
        tasks.spawn("health", move |stop| health.run_prober(interval, stop));
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.listen))?;
        tracing::info!(
            listen = %cfg.listen,
            data_dir = %cfg.data_dir.display(),
            dev = cfg.dev,
            "agora node ready"
        );
        ready.store(true, Ordering::SeqCst);
        let app = agora_gateway::router(state);
        let drained = agora_gateway::serve(
            listener,
            app,
            cfg.serve.clone(),
            shutdown_signal(ready.clone()),
        )
        .await;
        tracing::info!(
            closed_at_deadline = drained.closed_at_deadline,
            "HTTP drained"
        );
        anyhow::Ok(())
    });
    // In-flight requests have drained (or were cut at the grace deadline); stop the background tasks (they ask actors), hand
    // partitions over, then stop timers and deliveries and flush storage.
    let late = tokio.block_on(tasks.shutdown(TASK_DEADLINE));
    if !late.is_empty() {
        tracing::warn!(tasks = ?late, "background tasks aborted at the shutdown deadline");
    }
    tokio.block_on(runtime.leave_cluster());
    tracing::info!("draining: stopping reminders and deliveries, flushing storage");
    agora.unload_plugins();
    runtime.shutdown();
    tokio.shutdown_timeout(Duration::from_secs(5));
    tracing::info!("stopped");
    served
}

async fn shutdown_signal(ready: Arc<AtomicBool>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ready.store(false, Ordering::SeqCst);
    tracing::info!("shutdown requested: draining in-flight requests");
}
