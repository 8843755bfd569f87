//! The operator CLI: the subcommands beside `serve`, each talking to a running node over
//! HTTP (`--url`, the token from `AGORA_DRIVER_TOKEN` or `--token-file`), printing tables
//! for people or JSON (`--json`) for scripts. Errors are one line on stderr; the exit code
//! says what kind ([`Exit`]).

mod backup;
mod client;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use comfy_table::Table;
use serde_json::{json, Value};

use client::{Client, Failure};

/// Exit codes of the client subcommands (clap's own usage errors exit with 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The node answered an error, or the input could not be used.
    Failed = 1,
    /// `verify vote` or `verify log` found differences.
    NotVerified = 3,
    /// The node could not be reached.
    Unreachable = 4,
    /// The token is missing, unknown, revoked (401) or out of scope (403).
    Refused = 5,
}

/// How to reach the node.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// The node's base URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A file holding the token (otherwise `AGORA_DRIVER_TOKEN`).
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Ops {
    /// The node or the whole cluster: nodes, partitions, epochs, Redis, outbox, reminders,
    /// plugin health.
    Status,
    /// Communities.
    #[command(subcommand)]
    Communities(CommunitiesCmd),
    /// A community's processes and votes.
    #[command(subcommand)]
    Processes(ProcessesCmd),
    /// One process (votes with tally bars).
    #[command(subcommand)]
    Process(ProcessCmd),
    /// The plugin audit log.
    Audit {
        #[arg(long)]
        plugin: Option<String>,
        #[arg(long)]
        community: Option<String>,
        /// RFC 3339 or epoch seconds.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Scoped API tokens (admin).
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// Recompute and compare from outside.
    #[command(subcommand)]
    Verify(VerifyCmd),
    /// Downloads a consistent snapshot of a running node's storage (admin).
    Backup {
        /// Where to write it (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restores a backup into an empty data directory, with the node stopped.
    Restore {
        file: PathBuf,
        /// The new node's data directory (empty or absent).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CommunitiesCmd {
    /// Every community (of every node, in a cluster).
    List,
    /// One community and its plugins.
    Show { slug: String },
}

#[derive(Subcommand, Debug)]
pub enum ProcessesCmd {
    /// A community's processes, newest first.
    List {
        #[arg(long)]
        community: String,
        /// Only those still open.
        #[arg(long)]
        open: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProcessCmd {
    /// A process by its Location (`/api/internal/process/<name>/<id>`).
    Show { location: String },
}

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// Creates a token and prints its secret (shown once).
    Create {
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// Limits the token to a community (repeatable).
        #[arg(long = "community")]
        communities: Vec<String>,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Every token (without secrets).
    List,
    /// Revokes a token by id.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum VerifyCmd {
    /// Fetches a vote's ballots and outcome, recomputes every receipt and the commitment,
    /// counts again and compares field by field.
    Vote {
        /// The vote's Location, or its full URL.
        target: String,
    },
    /// Fetches a community's governance log, every page, and recomputes its hash chain:
    /// "verified", or which entry differs and how.
    Log {
        /// The community's slug.
        community: String,
        /// A head hash recorded earlier: the log must still contain it.
        #[arg(long)]
        head: Option<String>,
    },
}

/// Log pages are read this large (the route's maximum).
const LOG_PAGE: usize = 1000;

/// Every entry of `slug`'s governance log, page by page.
async fn fetch_log(c: &Client, slug: &str) -> Result<Vec<Value>, Failure> {
    let base = format!(
        "/api/v1/communities/{}/governance/log?limit={LOG_PAGE}",
        client::encode(slug)
    );
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let target = match &cursor {
            Some(at) => format!("{base}&cursor={}", client::encode(at)),
            None => base.clone(),
        };
        let page = c.get(&target).await?;
        let Some(list) = page["entries"].as_array() else {
            return Err(Failure::new(
                Exit::Failed,
                "the log page has no 'entries' list".to_string(),
            ));
        };
        entries.extend(list.iter().cloned());
        match page["next_cursor"].as_str() {
            // A node (or a stand-in) that pages in a circle would never end.
            Some(next) if !seen.insert(next.to_string()) => {
                return Err(Failure::new(
                    Exit::Failed,
                    format!("the log pages repeat (cursor {next} again)"),
                ))
            }
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok(entries),
        }
    }
}

/// Runs one client subcommand; answers the process exit code.
pub fn run(conn: Conn, op: Ops) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::Failed, &format!("starting the runtime: {e}")),
    };
    if let Ops::Restore { file, data_dir } = &op {
        // Offline: no node to talk to.
        return match backup::restore(file, data_dir) {
            Ok(count) => {
                out(&if conn.json {
                    json!({"restored": count, "data_dir": data_dir}).to_string()
                } else {
                    format!("restored {count} records into {}", data_dir.display())
                });
                ExitCode::SUCCESS
            }
            Err(f) => fail(f.exit, &f.message),
        };
    }
    let client = match Client::new(&conn) {
        Ok(c) => c,
        Err(f) => return fail(f.exit, &f.message),
    };
    match rt.block_on(dispatch(&client, &conn, op)) {
        Ok(Exit0::Ok) => ExitCode::SUCCESS,
        Ok(Exit0::NotVerified) => ExitCode::from(Exit::NotVerified as u8),
        Err(f) => fail(f.exit, &f.message),
    }
}

enum Exit0 {
    Ok,
    NotVerified,
}

fn fail(exit: Exit, message: &str) -> ExitCode {
    eprintln!("agora: {message}");
    ExitCode::from(exit as u8)
}

/// Writes to stdout (the binary's output, unlike library code).
#[allow(clippy::print_stdout)]
fn out(text: &str) {
    println!("{text}");
}

fn pretty(v: &Value) {
    out(&serde_json::to_string_pretty(v).unwrap_or_default());
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.set_header(header.iter().map(|h| h.to_string()));
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

async fn dispatch(c: &Client, conn: &Conn, op: Ops) -> Result<Exit0, Failure> {
    match op {
        Ops::Status => status(c, conn.json).await?,
        Ops::Communities(CommunitiesCmd::List) => {
            let all = list_communities(c).await?;
            if conn.json {
                pretty(&json!({"communities": all}));
            } else {
                let rows = all
                    .iter()
                    .map(|c| {
                        let plugins: Vec<String> = c["plugins"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(s)
                            .collect();
                        vec![
                            s(&c["slug"]),
                            s(&c["readable_name"]),
                            plugins.join(", "),
                            s(&c["created_at"]),
                        ]
                    })
                    .collect();
                out(&table(&["slug", "name", "plugins", "created"], rows));
                out(&format!("{} communities", all.len()));
            }
        }
        Ops::Processes(ProcessesCmd::List { community, open }) => {
            let status = if open { "open" } else { "all" };
            let v = c
                .get(&format!(
                    "/api/v1/communities/{}/processes?status={status}",
                    client::encode(&community)
                ))
                .await?;
            if conn.json {
                pretty(&v);
            } else {
                let rows = v["processes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        ["location", "status", "created_at", "closing_at"]
                            .iter()
                            .map(|k| s(&p[*k]))
                            .collect()
                    })
                    .collect();
                out(&table(&["location", "status", "created", "closes"], rows));
            }
        }
        Ops::Communities(CommunitiesCmd::Show { slug }) => {
            let community = c.get(&format!("/api/internal/community/{slug}")).await?;
            let plugins = c
                .get(&format!("/api/v1/communities/{slug}/plugins"))
                .await?;
            if conn.json {
                pretty(&json!({"community": community, "plugins": plugins["plugins"]}));
            } else {
                match community["readable_name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                {
                    Some(name) => out(&format!("{} ({name})", s(&community["slug"]))),
                    None => out(&s(&community["slug"])),
                }
                let rows = plugins["plugins"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        vec![
                            s(&p["name"]),
                            s(&p["enabled"]),
                            s(&p["active"]),
                            s(&p["instance_id"]),
                        ]
                    })
                    .collect();
                out(&table(&["plugin", "enabled", "active", "instance"], rows));
            }
        }
        Ops::Process(ProcessCmd::Show { location }) => {
            let p = c.get(&location).await?;
            if conn.json {
                pretty(&p);
            } else {
                out(&format!(
                    "{} {}  status: {}",
                    s(&p["name"]),
                    s(&p["id"]),
                    s(&p["status"])
                ));
                if let Some(tally) = p["outcome"]["tally"].as_object() {
                    out(&bars(tally));
                }
                for k in ["winner", "decision", "quorum_met", "commitment"] {
                    if let Some(v) = p["outcome"].get(k) {
                        out(&format!("{k}: {}", s(v)));
                    }
                }
            }
        }
        Ops::Audit {
            plugin,
            community,
            since,
            limit,
        } => {
            let mut q = vec![format!("limit={limit}")];
            for (k, v) in [
                ("plugin", plugin),
                ("community", community),
                ("since", since),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", client::encode(&v)));
                }
            }
            let log = c
                .get(&format!("/api/v1/plugin-audit-log?{}", q.join("&")))
                .await?;
            if conn.json {
                pretty(&log);
            } else {
                let rows = log["entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        [
                            "at",
                            "who",
                            "community",
                            "plugin",
                            "action",
                            "outcome",
                            "message",
                        ]
                        .iter()
                        .map(|k| s(&e[*k]))
                        .collect()
                    })
                    .collect();
                out(&table(
                    &[
                        "at",
                        "who",
                        "community",
                        "plugin",
                        "action",
                        "outcome",
                        "message",
                    ],
                    rows,
                ));
            }
        }
        Ops::Tokens(cmd) => tokens(c, conn.json, cmd).await?,
        Ops::Backup { out: file } => {
            let (count, bytes) = backup::backup(c, &file).await?;
            out(&if conn.json {
                json!({"records": count, "bytes": bytes, "file": file}).to_string()
            } else {
                format!(
                    "backed up {count} records ({bytes} bytes) to {}",
                    file.display()
                )
            });
        }
        Ops::Restore { .. } => {
            return Err(Failure {
                exit: Exit::Failed,
                message: "restore runs offline".into(),
            })
        }
        Ops::Verify(VerifyCmd::Vote { target }) => {
            let target = target.trim_end_matches('/').to_string();
            let ballots = c.get(&format!("{target}/ballots")).await?;
            let process = c.get(&target).await?;
            let report = verify::verify(&ballots, &process);
            if conn.json {
                pretty(&report.to_json());
            } else if report.verified() {
                out(&format!(
                    "verified: {} ballots, commitment {}{}",
                    report.ballots,
                    report.commitment,
                    if report.open {
                        " (the vote is open: its live tally was compared)"
                    } else {
                        ""
                    }
                ));
            } else {
                out(&format!(
                    "NOT verified: {} differences",
                    report.differences.len()
                ));
                for d in &report.differences {
                    out(&format!("  {d}"));
                }
            }
            if !report.verified() {
                return Ok(Exit0::NotVerified);
            }
        }
        Ops::Verify(VerifyCmd::Log { community, head }) => {
            // The head first: the log read after it must contain it.
            let constitution = c
                .get(&format!(
                    "/api/v1/communities/{}/governance",
                    client::encode(&community)
                ))
                .await?;
            let published = constitution["log_head"].as_str().unwrap_or_default();
            let entries = fetch_log(c, &community).await?;
            let report = verify::verify_log(&entries, published, head.as_deref());
            if conn.json {
                pretty(&report.to_json());
            } else if let Some(d) = &report.difference {
                out(&format!("NOT verified: {d}"));
            } else {
                out(&format!(
                    "verified: {} entries, head {}",
                    report.entries, report.head
                ));
            }
            if !report.verified() {
                return Ok(Exit0::NotVerified);
            }
        }
    }
    Ok(Exit0::Ok)
}

/// Every community: every page, from every node of a cluster (each lists the partitions it
/// serves), merged by slug.
async fn list_communities(c: &Client) -> Result<Vec<Value>, Failure> {
    let cluster = c.get("/api/v1/cluster").await?;
    let bases: Vec<Option<String>> = if cluster["mode"] == "cluster" {
        cluster["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["advertise"].as_str())
            .map(|a| {
                Some(if a.starts_with("http") {
                    a.to_string()
                } else {
                    format!("http://{a}")
                })
            })
            .collect()
    } else {
        vec![None]
    };
    let mut all = std::collections::BTreeMap::new();
    for base in bases {
        let mut after: Option<String> = None;
        loop {
            let mut path = "/api/v1/communities?limit=1000".to_string();
            if let Some(a) = &after {
                path.push_str(&format!("&after={}", client::encode(a)));
            }
            let target = match &base {
                Some(b) => format!("{}{path}", b.trim_end_matches('/')),
                None => path,
            };
            let page = c.get(&target).await?;
            for community in page["communities"].as_array().into_iter().flatten() {
                all.insert(s(&community["slug"]), community.clone());
            }
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            }
        }
    }
    Ok(all.into_values().collect())
}

/// One bar per option, scaled to the largest total.
fn bars(tally: &serde_json::Map<String, Value>) -> String {
    const WIDTH: f64 = 30.0;
    let max = tally
        .values()
        .filter_map(Value::as_f64)
        .fold(0.0_f64, f64::max);
    let total: f64 = tally.values().filter_map(Value::as_f64).sum();
    let name_w = tally.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    tally
        .iter()
        .map(|(name, v)| {
            let n = v.as_f64().unwrap_or(0.0);
            let filled = if max > 0.0 {
                (n / max * WIDTH).round() as usize
            } else {
                0
            };
            let share = if total > 0.0 { n / total * 100.0 } else { 0.0 };
            format!(
                "{name:<name_w$}  {}{}  {n} ({share:.1}%)",
                "█".repeat(filled),
                "░".repeat(WIDTH as usize - filled.min(WIDTH as usize)),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn status(c: &Client, as_json: bool) -> Result<(), Failure> {
    let ready = c.get_any("/readyz").await?;
    let cluster = c.get("/api/v1/cluster").await?;
    let metrics = c.text("/metrics").await?;
    let plugins = c.get("/api/v1/plugins").await?;
    let metric = |name: &str| -> Value {
        metrics
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse::<f64>().ok())?
            })
            .map(|n| {
                // Gauges of counts: whole numbers read better without ".0".
                if n.fract() == 0.0 && n >= 0.0 && n < u64::MAX as f64 {
                    Value::from(n as u64)
                } else {
                    Value::from(n)
                }
            })
            .unwrap_or(Value::Null)
    };
    let mut health = Vec::new();
    for p in plugins["plugins"].as_array().into_iter().flatten() {
        let name = s(&p["name"]);
        if p["status"] != "loaded" {
            health.push(json!({"plugin": name, "status": p["status"], "reason": p["reason"]}));
            continue;
        }
        let reports = c.get(&format!("/api/v1/plugins/{name}/health")).await?;
        health.push(json!({"plugin": name, "enabled": p["enabled"], "health": reports}));
    }
    let v = json!({
        "ready": ready["status"],
        "tasks": ready["tasks"],
        "mode": cluster["mode"],
        "node_id": cluster["node_id"],
        "redis_ok": cluster["redis_ok"],
        "nodes": cluster["nodes"],
        "unowned": cluster["unowned"],
        "outbox_depth": metric("agora_outbox_depth"),
        "reminders_pending": metric("agora_reminders_pending"),
        "actor_messages_pending": metric("agora_actor_messages_pending"),
        "plugins": health,
    });
    if as_json {
        pretty(&v);
        return Ok(());
    }
    out(&format!(
        "node: {} ({}), redis: {}, outbox depth: {}, pending reminders: {}",
        s(&v["ready"]),
        s(&v["mode"]),
        if v["mode"] == "single" {
            "not used".into()
        } else {
            s(&v["redis_ok"])
        },
        s(&v["outbox_depth"]),
        s(&v["reminders_pending"]),
    ));
    let rows = v["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let parts = n["partitions"].as_array().map(Vec::len).unwrap_or(0);
            let epochs: Vec<u64> = n["epochs"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, e)| e.as_u64())
                .collect();
            let epochs = match (epochs.iter().min(), epochs.iter().max()) {
                (Some(a), Some(b)) if a == b => a.to_string(),
                (Some(a), Some(b)) => format!("{a}..{b}"),
                _ => "-".into(),
            };
            vec![
                n["id"].as_str().unwrap_or("this node").to_string(),
                s(&n["advertise"]),
                parts.to_string(),
                epochs,
            ]
        })
        .collect();
    out(&table(&["node", "address", "partitions", "epochs"], rows));
    let rows = health
        .iter()
        .map(|h| {
            // `GET /api/v1/plugins/{name}/health`: the worst status and counts per status of
            // the instances this node serves.
            let counts = &h["health"]["counts"];
            let instances: u64 = ["ok", "degraded", "failing"]
                .iter()
                .filter_map(|k| counts[*k].as_u64())
                .sum();
            vec![
                s(&h["plugin"]),
                s(h.get("enabled").unwrap_or(&h["status"])),
                instances.to_string(),
                s(&h["health"]["status"]),
            ]
        })
        .collect();
    out(&table(&["plugin", "enabled", "instances", "health"], rows));
    Ok(())
}

async fn tokens(c: &Client, as_json: bool, cmd: TokensCmd) -> Result<(), Failure> {
    let row = |t: &Value| {
        vec![
            s(&t["id"]),
            s(&t["role"]),
            t["communities"]
                .as_array()
                .filter(|a| !a.is_empty())
                .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| "every community".into()),
            s(&t["label"]),
            s(&t["created_at"]),
            s(&t["revoked_at"]),
        ]
    };
    let header = ["id", "role", "communities", "label", "created", "revoked"];
    match cmd {
        TokensCmd::Create {
            role,
            communities,
            label,
        } => {
            let t = c
                .send(
                    reqwest::Method::POST,
                    "/api/v1/tokens",
                    Some(json!({"role": role, "communities": communities, "label": label})),
                )
                .await?;
            if as_json {
                pretty(&t);
            } else {
                out(&table(&header, vec![row(&t)]));
                out(&format!(
                    "secret (shown once; keep it safe): {}",
                    s(&t["secret"])
                ));
            }
        }
        TokensCmd::List => {
            let all = c.get("/api/v1/tokens").await?;
            if as_json {
                pretty(&all);
            } else {
                let rows = all["tokens"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(row)
                    .collect();
                out(&table(&header, rows));
            }
        }
        TokensCmd::Revoke { id } => {
            let t = c
                .send(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/tokens/{}", client::encode(&id)),
                    None,
                )
                .await?;
            if as_json {
                pretty(&t);
            } else {
                out(&format!("revoked {}", s(&t["id"])));
            }
        }
    }
    Ok(())
}
