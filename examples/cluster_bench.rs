//! Cluster-mode benchmarks for BENCHMARKS.md. Builds nothing: it runs an already built `agora`
//! binary (`--agora`, default `target/release/agora`), starts its own `redis-server` on a free
//! port (`--appendonly yes --appendfsync always`, data in a temporary directory) and its own
//! nodes (`--dev`, free ports, temporary data directories), and kills everything when done.
//!
//! - `latency`: 3 nodes, 50 communities; sequential `GET /api/internal/community/<slug>` sent
//!   to the node serving the community's partition (owner) and to one that does not
//!   (non-owner, which forwards over Redis), `-n` of each after a warm-up, interleaved.
//!   Reports p50/p90/p99 of both and the extra latency of forwarding.
//! - `failover`: 3 nodes per lease length in `--leases` (ms, or `default`); `--rounds` times:
//!   SIGKILL the owner of a community's partition, start a GET of that community through
//!   another node every 20 ms until one answers 200 (kill → served again; also reported: when
//!   that node's `/api/v1/cluster` first shows the lease held by a live node), restart the
//!   killed node on its data directory and wait until every node sees 3 nodes and no unowned
//!   partition again.
//! - `kills`: 3 nodes (`--lease-ms`, default 1500), 20 open votes (`allow_change: false`) in 20
//!   communities; 16 writers cast ballots with unique voters through random nodes (a voter
//!   whose request failed, timed out or got 503 is retried as the same voter; a 409
//!   `already_voted` on a retry means an earlier attempt committed), while `--rounds` times a
//!   random node is SIGKILLed and restarted ~1 s later. Then checks that every acknowledged
//!   voter is in its vote's ballot list, read through every node.
//! - `throughput`: ballots from `-c` connections spread over `--votes` open votes, `-s` seconds
//!   measured after `--warmup` seconds, against one node alone (no Redis) and one node in
//!   cluster mode (every commit also goes through Redis); `--repeat` alternates the two.
//!
//! ```sh
//! cargo build --release --bin agora --examples
//! ./target/release/examples/cluster_bench latency -n 5000
//! ./target/release/examples/cluster_bench failover --rounds 5 --leases 1500,default
//! ./target/release/examples/cluster_bench kills --rounds 20 --lease-ms 1500
//! ./target/release/examples/cluster_bench throughput -c 64 -s 15 --warmup 3 --repeat 3
//! ```
//! `--redis-fsync everysec` (diagnostic only: not durable) changes Redis's `--appendfsync`.
//! `--keep` keeps the temporary directory (node logs, Redis data) and prints its path; it is
//! also kept when a run panics, and when `kills` sees a lost write, an unexpected answer or a
//! request that took 5 s or more.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agora_runtime::partition_of;
use serde_json::{json, Value};

const COMMUNITY_HEADER: &str = "X-Metagov-Community";
const CLOSING_AT: &str = "2099-01-01T00:00:00Z";
/// How long a node may take to answer `/readyz`, and a cluster to settle.
const SETTLE: Duration = Duration::from_secs(60);

struct Args {
    cmd: String,
    agora: PathBuf,
    n: usize,
    rounds: Option<usize>,
    leases: Vec<Option<u64>>,
    lease_ms: Option<u64>,
    c: usize,
    secs: u64,
    warmup: u64,
    votes: usize,
    repeat: usize,
    keep: bool,
    /// Redis's `--appendfsync` (`always` unless a diagnostic run asks otherwise).
    fsync: String,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        cmd: it
            .next()
            .expect("subcommand: latency | failover | kills | throughput"),
        agora: PathBuf::from("target/release/agora"),
        n: 5000,
        rounds: None,
        leases: vec![Some(1500), None],
        lease_ms: None,
        c: 64,
        secs: 15,
        warmup: 3,
        votes: 1000,
        repeat: 1,
        keep: false,
        fsync: "always".into(),
    };
    while let Some(k) = it.next() {
        if k == "--keep" {
            a.keep = true;
            continue;
        }
        let v = it.next().unwrap_or_default();
        let num = |v: &str| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{k} takes a number"))
        };
        match k.as_str() {
            "--agora" => a.agora = PathBuf::from(v),
            "-n" => a.n = num(&v) as usize,
            "--rounds" => a.rounds = Some(num(&v) as usize),
            "--leases" => {
                a.leases = v
                    .split(',')
                    .map(|l| (l != "default").then(|| num(l)))
                    .collect()
            }
            "--lease-ms" => a.lease_ms = Some(num(&v)),
            "-c" => a.c = num(&v) as usize,
            "-s" => a.secs = num(&v),
            "--warmup" => a.warmup = num(&v),
            "--votes" => a.votes = num(&v) as usize,
            "--repeat" => a.repeat = num(&v) as usize,
            "--redis-fsync" => a.fsync = v,
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.agora.exists(), "no agora binary at {}", a.agora.display());
    a
}

/// A port that was free a moment ago and was not handed out before in this run (a node
/// binds its port only some milliseconds after it starts, so the OS may offer it again).
fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("an ephemeral port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// xorshift64*: enough randomness for picking nodes and votes, no dependency.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng((t ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A child process started with a clean environment (no `AGORA_*`, no proxy variables), its
/// output appended to `log`.
fn spawn(program: &Path, args: &[String], log: &Path) -> Child {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open a log file");
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("AGORA_") || k.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log handle"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start(dir: &Path, fsync: &str) -> Redis {
        let port = free_port();
        let data = dir.join("redis");
        std::fs::create_dir_all(&data).expect("redis dir");
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--appendonly",
            "yes",
            "--appendfsync",
            fsync,
            "--save",
            "",
            "--dir",
            data.to_str().expect("utf-8 path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let child = spawn(Path::new("redis-server"), &args, &dir.join("redis.log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(1)))?;
                s.write_all(b"PING\r\n")?;
                let mut buf = [0u8; 7];
                s.read_exact(&mut buf)?;
                Ok(buf == *b"+PONG\r\n")
            });
            if pong.unwrap_or(false) {
                break;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `agora serve` process that can be SIGKILLed and restarted on the same port and data.
struct Node {
    id: String,
    port: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    agora: PathBuf,
}

impl Node {
    fn new(agora: &Path, dir: &Path, id: &str, redis: Option<&str>, lease: Option<u64>) -> Node {
        let port = free_port();
        let data = dir.join(id);
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--dev".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            data.to_str().expect("utf-8 path").into(),
        ];
        if let Some(url) = redis {
            args.extend([
                "--redis-url".into(),
                url.into(),
                "--node-id".into(),
                id.into(),
            ]);
            if let Some(ms) = lease {
                args.extend(["--lease-ms".into(), ms.to_string()]);
            }
        }
        let mut n = Node {
            id: id.into(),
            port,
            args,
            log: dir.join(format!("{id}.log")),
            child: None,
            agora: agora.to_path_buf(),
        };
        n.start();
        n
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.id);
        self.child = Some(spawn(&self.agora, &self.args, &self.log));
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn client(pool: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// The last lines of a log file.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until the node answers `/readyz`, and is the node we started (its own process is
/// still running and, in cluster mode, it reports its own id).
async fn wait_ready(http: &reqwest::Client, node: &mut Node) {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(Ok(Some(status))) = node.child.as_mut().map(Child::try_wait) {
            panic!(
                "{} exited ({status}); end of {}:\n{}",
                node.id,
                node.log.display(),
                log_tail(&node.log, 20)
            );
        }
        if let Ok(r) = http.get(format!("{}/readyz", node.base())).send().await {
            if r.status().is_success() {
                let id = match view_node_id(http, &node.base()).await {
                    Some(id) => id,
                    None => return,
                };
                assert_eq!(id, node.id, "another node answers on port {}", node.port);
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} not ready; end of {}:\n{}",
            node.id,
            node.log.display(),
            log_tail(&node.log, 20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `node_id` a node reports on `/api/v1/cluster` (`None` on a single node).
async fn view_node_id(http: &reqwest::Client, base: &str) -> Option<String> {
    let v: Value = http
        .get(format!("{base}/api/v1/cluster"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["node_id"].as_str().map(str::to_owned)
}

/// `/api/v1/cluster` as one node sees it.
struct View {
    nodes: HashSet<String>,
    owners: BTreeMap<u32, String>,
    unowned: usize,
    redis_ok: bool,
}

async fn view(http: &reqwest::Client, base: &str) -> Result<View, String> {
    let v: Value = http
        .get(format!("{base}/api/v1/cluster"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let mut owners = BTreeMap::new();
    let mut nodes = HashSet::new();
    for n in v["nodes"].as_array().cloned().unwrap_or_default() {
        let id = n["id"].as_str().unwrap_or_default().to_string();
        for p in n["partitions"].as_array().cloned().unwrap_or_default() {
            owners.insert(p.as_u64().unwrap_or(u64::MAX) as u32, id.clone());
        }
        nodes.insert(id);
    }
    Ok(View {
        nodes,
        owners,
        unowned: v["unowned"].as_array().map_or(usize::MAX, Vec::len),
        redis_ok: v["redis_ok"].as_bool().unwrap_or(false),
    })
}

/// Waits until every node sees exactly `nodes`, no unowned partition, every node owning
/// some, and all agree on the owners. Answers the owners and how long it took.
async fn converge(
    http: &reqwest::Client,
    nodes: &[Node],
    timeout: Duration,
) -> Result<(BTreeMap<u32, String>, Duration), String> {
    let start = Instant::now();
    let want: HashSet<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let mut last = String::new();
    while start.elapsed() < timeout {
        let mut agreed: Option<BTreeMap<u32, String>> = None;
        let mut ok = true;
        for n in nodes {
            match view(http, &n.base()).await {
                Ok(v) => {
                    let owning: HashSet<&String> = v.owners.values().collect();
                    let fine = v.redis_ok
                        && v.nodes == want
                        && v.unowned == 0
                        && owning.len() == want.len()
                        && agreed.as_ref().is_none_or(|a| *a == v.owners);
                    if !fine {
                        last = format!(
                            "{} sees nodes {:?}, {} unowned, redis_ok {}",
                            n.id, v.nodes, v.unowned, v.redis_ok
                        );
                        ok = false;
                        break;
                    }
                    agreed = Some(v.owners);
                }
                Err(e) => {
                    last = format!("{}: {e}", n.id);
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Ok((agreed.unwrap_or_default(), start.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("no convergence in {timeout:?}: {last}"))
}

/// Starts Redis and `n` cluster nodes, waits until they are ready and agree.
async fn start_cluster(
    http: &reqwest::Client,
    a: &Args,
    dir: &Path,
    n: usize,
    lease: Option<u64>,
) -> (Redis, Vec<Node>, BTreeMap<u32, String>) {
    let redis = Redis::start(dir, &a.fsync);
    let nodes: Vec<Node> = (1..=n)
        .map(|i| Node::new(&a.agora, dir, &format!("n{i}"), Some(&redis.url), lease))
        .collect();
    let mut nodes = nodes;
    for node in &mut nodes {
        wait_ready(http, node).await;
    }
    let (owners, _) = converge(http, &nodes, SETTLE)
        .await
        .expect("cluster settles");
    (redis, nodes, owners)
}

async fn create_community(http: &reqwest::Client, base: &str, slug: &str) {
    let r = http
        .post(format!("{base}/api/internal/community"))
        .json(&json!({"slug": slug}))
        .send()
        .await
        .expect("create a community");
    assert_eq!(r.status().as_u16(), 201, "create community {slug}");
}

/// Opens a `vote.choice`; `allow_change: false` makes a second ballot of a voter a 409.
async fn open_vote(http: &reqwest::Client, base: &str, slug: &str, allow_change: bool) -> String {
    let r = http
        .post(format!("{base}/api/internal/process/vote.choice"))
        .header(COMMUNITY_HEADER, slug)
        .json(
            &json!({"options": ["a", "b"], "closing_at": CLOSING_AT, "allow_change": allow_change}),
        )
        .send()
        .await
        .expect("open a vote");
    assert_eq!(r.status().as_u16(), 202, "open a vote in {slug}");
    r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string()
}

/// The `q` quantile of sorted durations, in milliseconds.
fn pct(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// A temporary directory for Redis and the nodes. Not removed when the run panics, so the
/// logs of a failed run stay (its path is printed at the start); [`finish`] removes it.
fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("agora-cluster-bench-")
        .disable_cleanup(true)
        .tempdir()
        .expect("temporary directory");
    println!("  (logs and data in {})", dir.path().display());
    dir
}

fn finish(dir: tempfile::TempDir, keep: bool) {
    if keep {
        println!("kept {}", dir.keep().display());
    } else {
        let _ = std::fs::remove_dir_all(dir.path());
    }
}

async fn latency(a: &Args) {
    let http = client(4);
    let dir = temp_dir();
    let (_redis, nodes, owners) = start_cluster(&http, a, dir.path(), 3, a.lease_ms).await;
    let slugs: Vec<String> = (0..50).map(|i| format!("lat-{i}")).collect();
    for (i, s) in slugs.iter().enumerate() {
        create_community(&http, &nodes[i % 3].base(), s).await;
    }
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    // For request i: the community, its owner and a non-owner (alternating between the two).
    let plan: Vec<(String, String, String)> = (0..a.n)
        .map(|i| {
            let slug = &slugs[i % slugs.len()];
            let owner = index[owners[&partition_of(slug)].as_str()];
            let other = (owner + 1 + (i / slugs.len()) % 2) % 3;
            let url = |n: usize| format!("{}/api/internal/community/{slug}", nodes[n].base());
            (url(owner), url(other), slug.clone())
        })
        .collect();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let t0 = Instant::now();
            let r = http.get(&url).send().await.expect("GET a community");
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            assert_eq!(status, 200, "GET {url}");
            t0.elapsed()
        }
    };
    for (own, other, _) in plan.iter().take(500) {
        get(own.clone()).await;
        get(other.clone()).await;
    }
    let (mut own_lat, mut other_lat) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for (own, other, _) in &plan {
        own_lat.push(get(own.clone()).await);
        other_lat.push(get(other.clone()).await);
    }
    let wall = start.elapsed();
    let (after, _) = converge(&http, &nodes, SETTLE)
        .await
        .expect("still settled");
    let moved = slugs
        .iter()
        .filter(|s| owners[&partition_of(s)] != after[&partition_of(s)])
        .count();
    own_lat.sort();
    other_lat.sort();
    println!(
        "latency: 3 nodes, 50 communities, {} sequential GETs each way in {:.1} s ({} of the 50 communities changed owner during the run)",
        a.n,
        wall.as_secs_f64(),
        moved
    );
    println!(
        "{:10} {:>8} {:>8} {:>8} {:>8}",
        "", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for (name, l) in [("owner", &own_lat), ("non-owner", &other_lat)] {
        println!(
            "{name:10} {:8.3} {:8.3} {:8.3} {:8.3}",
            pct(l, 0.5),
            pct(l, 0.9),
            pct(l, 0.99),
            pct(l, 1.0)
        );
    }
    println!(
        "{:10} {:8.3} {:8.3} {:8.3}   (target: p50 extra < 1 ms)",
        "extra",
        pct(&other_lat, 0.5) - pct(&own_lat, 0.5),
        pct(&other_lat, 0.9) - pct(&own_lat, 0.9),
        pct(&other_lat, 0.99) - pct(&own_lat, 0.99)
    );
    finish(dir, a.keep);
}

async fn failover(a: &Args) {
    let rounds = a.rounds.unwrap_or(5);
    for lease in &a.leases {
        let http = client(4);
        let dir = temp_dir();
        let (_redis, mut nodes, _) = start_cluster(&http, a, dir.path(), 3, *lease).await;
        let slugs: Vec<String> = (0..60).map(|i| format!("fo-{i}")).collect();
        for (i, s) in slugs.iter().enumerate() {
            create_community(&http, &nodes[i % 3].base(), s).await;
        }
        let lease_name = lease.map_or("default (3000)".to_string(), |l| l.to_string());
        println!("failover: 3 nodes, --lease-ms {lease_name}, {rounds} rounds");
        let (mut served, mut moves) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let (owners, _) = converge(&http, &nodes, SETTLE).await.expect("settled");
            let victim = r % 3;
            let observer = (r + 1) % 3;
            let slug = slugs
                .iter()
                .find(|s| owners[&partition_of(s)] == nodes[victim].id)
                .expect("the victim serves one of the communities")
                .clone();
            let url = format!("{}/api/internal/community/{slug}", nodes[observer].base());
            let warm = http.get(&url).send().await.expect("GET before the kill");
            assert_eq!(warm.status().as_u16(), 200, "GET {url} before the kill");
            let killed = Instant::now();
            nodes[victim].kill();
            // When the partition's lease is seen held by a live node (the observer's view).
            let moved = {
                let (http, base, gone) = (
                    http.clone(),
                    nodes[observer].base(),
                    nodes[victim].id.clone(),
                );
                let p = partition_of(&slug);
                tokio::spawn(async move {
                    loop {
                        if let Ok(v) = view(&http, &base).await {
                            if v.owners.get(&p).is_some_and(|o| *o != gone) {
                                return killed.elapsed();
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            };
            // A GET every 20 ms, each on its own (a GET that meets no owner waits inside the
            // gateway for up to ~1.5 s before its 503); the first 200 ends the round.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let poller = {
                let (http, url) = (http.clone(), url.clone());
                tokio::spawn(async move {
                    let mut gets = tokio::task::JoinSet::new();
                    loop {
                        let (http, url, tx) = (http.clone(), url.clone(), tx.clone());
                        gets.spawn(async move {
                            let answer = match http.get(&url).send().await {
                                Ok(resp) => resp.status().as_u16().to_string(),
                                Err(e) if e.is_timeout() => "timeout".into(),
                                Err(_) => "error".into(),
                            };
                            let _ = tx.send((answer, killed.elapsed()));
                        });
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            };
            let mut failures: BTreeMap<String, u32> = BTreeMap::new();
            let took = loop {
                let (answer, at) = tokio::time::timeout(SETTLE, rx.recv())
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| panic!("{slug} never served again"));
                if answer == "200" {
                    break at;
                }
                *failures.entry(answer).or_default() += 1;
            };
            poller.abort();
            let moved = tokio::time::timeout(SETTLE, moved)
                .await
                .expect("the lease moves")
                .expect("view poller");
            nodes[victim].start();
            let restarted = Instant::now();
            wait_ready(&http, &mut nodes[victim]).await;
            let ready = restarted.elapsed();
            let (_, rejoin) = converge(&http, &nodes, SETTLE).await.expect("rejoin");
            println!(
                "  round {}: killed {} (partition {} of {slug}); lease held by a live node after {:.0} ms, served again through {} after {:.0} ms (answers before: {:?}); restarted: ready in {:.0} ms, then 3 nodes and 0 unowned after {:.0} ms",
                r + 1,
                nodes[victim].id,
                partition_of(&slug),
                moved.as_secs_f64() * 1e3,
                nodes[observer].id,
                took.as_secs_f64() * 1e3,
                failures,
                ready.as_secs_f64() * 1e3,
                rejoin.as_secs_f64() * 1e3,
            );
            moves.push(moved);
            served.push(took);
        }
        served.sort();
        moves.sort();
        println!(
            "  kill → lease held by a live node, --lease-ms {lease_name}: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            pct(&moves, 0.0),
            pct(&moves, 0.5),
            pct(&moves, 1.0)
        );
        println!(
            "  kill → served again, --lease-ms {lease_name}: min {:.0} ms, median {:.0} ms, max {:.0} ms (target < 5000 ms)",
            pct(&served, 0.0),
            pct(&served, 0.5),
            pct(&served, 1.0)
        );
        finish(dir, a.keep);
    }
}

#[derive(Default)]
struct WriterStats {
    /// (vote index, voter, seconds since start) answered 200.
    acked: Vec<(usize, String, f64)>,
    /// Same, for voters answered 409 `already_voted` on a retry: an earlier attempt committed.
    acked_earlier: Vec<(usize, String, f64)>,
    status_503: u64,
    timeouts: u64,
    /// Connection refused (the node was down).
    refused: u64,
    /// Connection broken with the request in flight (the node died under it).
    broken: u64,
    other: BTreeMap<u16, u64>,
    /// The unexpected answers: voter, attempt, times, status, body.
    samples: Vec<String>,
    /// Requests that took 5 s or more, and the slowest, in seconds.
    slow: u64,
    slowest: f64,
    /// Voters given up on after too many attempts (outcome unknown).
    unresolved: u64,
}

async fn writer(
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    votes: Arc<Vec<String>>,
    task: usize,
    stop: Arc<AtomicBool>,
    start: Instant,
) -> WriterStats {
    let mut rng = Rng::seeded(task as u64 + 1);
    let mut st = WriterStats::default();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let voter = format!("w{task}-{seq}");
        let v = rng.below(votes.len());
        let mut resolved = false;
        for attempt in 0..200 {
            let base = &bases[rng.below(bases.len())];
            let sent = start.elapsed().as_secs_f64();
            let resp = http
                .post(format!("{base}{}/ballots", votes[v]))
                .json(&json!({"voter": voter, "choice": ["a"]}))
                .send()
                .await;
            let t = start.elapsed().as_secs_f64();
            st.slowest = st.slowest.max(t - sent);
            if t - sent >= 5.0 {
                st.slow += 1;
            }
            match resp {
                Ok(r) if r.status().is_success() => {
                    st.acked.push((v, voter.clone(), t));
                    resolved = true;
                }
                Ok(r) if r.status().as_u16() == 503 => st.status_503 += 1,
                Ok(r) if r.status().as_u16() == 409 && attempt > 0 => {
                    let body = r.text().await.unwrap_or_default();
                    if body.contains("already_voted") {
                        st.acked_earlier.push((v, voter.clone(), t));
                        resolved = true;
                    } else {
                        *st.other.entry(409).or_default() += 1;
                        st.samples.push(format!(
                            "{voter} of vote {v}, attempt {attempt} sent at {sent:.2} s via {base}, answered at {t:.2} s: 409 {body}"
                        ));
                    }
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    *st.other.entry(status).or_default() += 1;
                    let body = r.text().await.unwrap_or_default();
                    st.samples.push(format!(
                        "{voter} of vote {v}, attempt {attempt} sent at {sent:.2} s via {base}, answered at {t:.2} s: {status} {body}"
                    ));
                }
                Err(e) if e.is_timeout() => st.timeouts += 1,
                Err(e) if e.is_connect() => st.refused += 1,
                Err(_) => st.broken += 1,
            }
            if resolved {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !resolved {
            st.unresolved += 1;
        }
    }
    st
}

/// The partition of a vote, from the id at the end of its Location.
fn vote_partition(location: &str) -> u64 {
    location
        .rsplit('/')
        .next()
        .and_then(|id| id.parse::<u64>().ok())
        .map_or(u64::MAX, |id| u64::from(agora_runtime::partition_of_id(id)))
}

async fn kills(a: &Args) {
    let rounds = a.rounds.unwrap_or(20);
    let lease = a.lease_ms.unwrap_or(1500);
    let http = client(64);
    let dir = temp_dir();
    let (_redis, mut nodes, _) = start_cluster(&http, a, dir.path(), 3, Some(lease)).await;
    let mut votes = Vec::new();
    for i in 0..20 {
        let slug = format!("k-{i}");
        create_community(&http, &nodes[i % 3].base(), &slug).await;
        votes.push(open_vote(&http, &nodes[i % 3].base(), &slug, false).await);
    }
    let partitions: HashSet<u64> = votes.iter().map(|l| vote_partition(l)).collect();
    println!(
        "kills: 3 nodes, --lease-ms {}, 20 votes in {} partitions, 16 writers, {rounds} kill rounds",
        lease,
        partitions.len()
    );
    println!(
        "  nodes: {}; votes: {}",
        nodes
            .iter()
            .map(|n| format!("{} {}", n.id, n.base()))
            .collect::<Vec<_>>()
            .join(", "),
        votes
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{i} {l}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let bases = Arc::new(nodes.iter().map(Node::base).collect::<Vec<_>>());
    let votes = Arc::new(votes);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let writers: Vec<_> = (0..16)
        .map(|t| {
            tokio::spawn(writer(
                http.clone(),
                bases.clone(),
                votes.clone(),
                t,
                stop.clone(),
                start,
            ))
        })
        .collect();
    let mut rng = Rng::seeded(99);
    let mut timeline = Vec::new();
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(1500 + rng.below(501) as u64)).await;
        let victim = rng.below(nodes.len());
        timeline.push((start.elapsed().as_secs_f64(), nodes[victim].id.clone()));
        nodes[victim].kill();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        nodes[victim].start();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let write_secs = start.elapsed().as_secs_f64();
    let mut all = WriterStats::default();
    for w in writers {
        let s = w.await.expect("writer");
        all.acked.extend(s.acked);
        all.acked_earlier.extend(s.acked_earlier);
        all.status_503 += s.status_503;
        all.timeouts += s.timeouts;
        all.refused += s.refused;
        all.broken += s.broken;
        all.unresolved += s.unresolved;
        for (k, v) in s.other {
            *all.other.entry(k).or_default() += v;
        }
        all.samples.extend(s.samples);
        all.slow += s.slow;
        all.slowest = all.slowest.max(s.slowest);
    }
    for n in &mut nodes {
        wait_ready(&http, n).await;
    }
    let (_, settle) = converge(&http, &nodes, SETTLE).await.expect("converges");
    // Every vote's ballots, read through every node (each forwards to the owner).
    let mut lost: HashSet<(usize, String)> = HashSet::new();
    let mut lines = Vec::new();
    let mut present_total = 0;
    let mut duplicates = 0;
    for node in &nodes {
        let mut present: Vec<HashSet<String>> = Vec::new();
        for loc in votes.iter() {
            let v: Value = http
                .get(format!("{}{loc}/ballots", node.base()))
                .send()
                .await
                .expect("list ballots")
                .json()
                .await
                .expect("ballots json");
            let list: Vec<String> = v["ballots"]
                .as_array()
                .expect("a ballot list")
                .iter()
                .filter_map(|b| b["voter"].as_str().map(str::to_owned))
                .collect();
            let set: HashSet<String> = list.iter().cloned().collect();
            duplicates += list.len() - set.len();
            present.push(set);
        }
        present_total = present.iter().map(HashSet::len).sum();
        for (v, voter, t) in all.acked.iter().chain(&all.acked_earlier) {
            if !present[*v].contains(voter) {
                lost.insert((*v, voter.clone()));
                lines.push(format!(
                    "read through {}: voter {voter} of {} (partition {}) acknowledged at {t:.2} s is missing",
                    node.id,
                    votes[*v],
                    vote_partition(&votes[*v])
                ));
            }
        }
    }
    let acked = all.acked.len() + all.acked_earlier.len();
    println!(
        "  kills (s since start, node): {}",
        timeline
            .iter()
            .map(|(t, n)| format!("{t:.1} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  writes for {write_secs:.1} s: {acked} acknowledged ({} answered 200, {} 409 already_voted on a retry) = {:.0}/s; {} ballots present; {} voters unresolved",
        all.acked.len(),
        all.acked_earlier.len(),
        acked as f64 / write_secs,
        present_total,
        all.unresolved
    );
    println!(
        "  failed attempts (each retried): 503 {}, connection refused {}, connection broken in flight {}, timeouts {}, other statuses {:?}",
        all.status_503, all.refused, all.broken, all.timeouts, all.other
    );
    println!(
        "  requests taking 5 s or more: {}, slowest {:.1} s",
        all.slow, all.slowest
    );
    for s in all.samples.iter().take(10) {
        println!("    unexpected: {s}");
    }
    println!(
        "  after the last restart: 3 nodes, 0 unowned after {:.1} s; duplicate voters in lists: {duplicates}",
        settle.as_secs_f64()
    );
    println!("  lost acknowledged writes: {} (target 0)", lost.len());
    for l in lines.iter().take(30) {
        println!("    {l}");
    }
    finish(
        dir,
        a.keep || !lost.is_empty() || !all.samples.is_empty() || all.slow > 0,
    );
}

/// CPU seconds a process has used (utime + stime from `/proc/<pid>/stat`; `None`: this one).
fn cpu_secs(pid: Option<u32>, tick: f64) -> f64 {
    let path = pid.map_or("/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let Ok(stat) = std::fs::read_to_string(path) else {
        return f64::NAN;
    };
    // Fields after the command name (which ends with the last ')'): utime and stime are the
    // 14th and 15th of the line, the 12th and 13th after it.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(f64::NAN)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    ticks / tick
}

/// CPU seconds the whole machine has spent busy (everything but idle and iowait).
fn machine_busy_secs(tick: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    if f.len() < 5 {
        return f64::NAN;
    }
    (f.iter().sum::<f64>() - f[3] - f[4]) / tick
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Counters read at the start and the end of the measured window.
#[derive(Clone, Copy)]
struct Sample {
    node: f64,
    redis: f64,
    me: f64,
    machine: f64,
    commits: f64,
    flushes: f64,
}

async fn sample(
    http: &reqwest::Client,
    base: &str,
    pids: (Option<u32>, Option<u32>),
    tick: f64,
) -> Sample {
    let text = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let metric = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    Sample {
        node: cpu_secs(pids.0, tick),
        redis: pids.1.map_or(0.0, |p| cpu_secs(Some(p), tick)),
        me: cpu_secs(None, tick),
        machine: machine_busy_secs(tick),
        commits: metric("agora_commits_total"),
        flushes: metric("agora_flushes_total"),
    }
}

struct Throughput {
    rps: f64,
    p50: f64,
    p99: f64,
    errors: u64,
    /// Cores used during the window by the node, Redis, this load generator, everything else.
    node_cpu: f64,
    redis_cpu: f64,
    client_cpu: f64,
    other_cpu: f64,
    /// Group commits per second, and change records per group.
    flushes: f64,
    per_flush: f64,
}

async fn throughput_once(a: &Args, cluster: bool) -> Throughput {
    let http = client(a.c);
    let dir = temp_dir();
    let redis = cluster.then(|| Redis::start(dir.path(), &a.fsync));
    let mut node = Node::new(
        &a.agora,
        dir.path(),
        "n1",
        redis.as_ref().map(|r| r.url.as_str()),
        None,
    );
    wait_ready(&http, &mut node).await;
    if cluster {
        converge(&http, std::slice::from_ref(&node), SETTLE)
            .await
            .expect("one-node cluster settles");
    }
    let base = node.base();
    let communities = 100.min(a.votes).max(1);
    for i in 0..communities {
        create_community(&http, &base, &format!("tp-{i}")).await;
    }
    let mut votes = Vec::with_capacity(a.votes);
    for i in 0..a.votes {
        votes.push(open_vote(&http, &base, &format!("tp-{}", i % communities), true).await);
    }
    let votes = Arc::new(votes);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let from = start + Duration::from_secs(a.warmup);
    let until = from + Duration::from_secs(a.secs);
    let tick = clock_ticks();
    let pids = (node.pid(), redis.as_ref().map(|r| r.child.id()));
    let sampler = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(from.into()).await;
            let before = sample(&http, &base, pids, tick).await;
            tokio::time::sleep_until(until.into()).await;
            (before, sample(&http, &base, pids, tick).await)
        })
    };
    let tasks: Vec<_> = (0..a.c)
        .map(|_| {
            let (http, base, votes, next) =
                (http.clone(), base.clone(), votes.clone(), next.clone());
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < until {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let loc = &votes[i as usize % votes.len()];
                    let t0 = Instant::now();
                    let ok = match http
                        .post(format!("{base}{loc}/ballots"))
                        .json(&json!({"voter": format!("v{i}"), "choice": ["a"]}))
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let ok = r.status().as_u16() == 200;
                            let _ = r.bytes().await;
                            ok
                        }
                        Err(_) => false,
                    };
                    let done = Instant::now();
                    if done >= from && done < until {
                        if ok {
                            lat.push(done - t0);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.expect("caster");
        lat.extend(l);
        errors += e;
    }
    let (b, e) = sampler.await.expect("sampler");
    lat.sort();
    drop(node);
    drop(redis);
    finish(dir, a.keep);
    let secs = a.secs as f64;
    let (node_cpu, redis_cpu, client_cpu) = (e.node - b.node, e.redis - b.redis, e.me - b.me);
    Throughput {
        rps: lat.len() as f64 / secs,
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        errors,
        node_cpu: node_cpu / secs,
        redis_cpu: redis_cpu / secs,
        client_cpu: client_cpu / secs,
        other_cpu: (e.machine - b.machine - node_cpu - redis_cpu - client_cpu) / secs,
        flushes: (e.flushes - b.flushes) / secs,
        per_flush: (e.commits - b.commits) / (e.flushes - b.flushes),
    }
}

async fn throughput(a: &Args) {
    println!(
        "throughput: ballots over {} open votes in {} communities, c={}, {} s measured after {} s warm-up, redis --appendfsync {}",
        a.votes,
        100.min(a.votes),
        a.c,
        a.secs,
        a.warmup,
        a.fsync
    );
    let mut ratios = Vec::new();
    for r in 0..a.repeat {
        let single = throughput_once(a, false).await;
        let cluster = throughput_once(a, true).await;
        for (name, t) in [("single", &single), ("cluster", &cluster)] {
            println!(
                "  run {} {name:8} {:8.0} ballots/s  p50={:6.2}ms p99={:6.2}ms errors={}  {:.0} group commits/s of {:.1} records  cores used: node {:.2}, redis {:.2}, load generator {:.2}, other processes {:.2}",
                r + 1,
                t.rps,
                t.p50,
                t.p99,
                t.errors,
                t.flushes,
                t.per_flush,
                t.node_cpu,
                t.redis_cpu,
                t.client_cpu,
                t.other_cpu
            );
        }
        let ratio = cluster.rps / single.rps;
        println!(
            "  run {} cluster/single = {ratio:.3} (target ≥ 0.80)",
            r + 1
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "  cluster/single over {} run(s): min {:.3}, median {:.3}, max {:.3}",
        ratios.len(),
        ratios[0],
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    );
}

/// The machine's load averages (1, 5, 15 min): other work on the same cores skews every figure.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn main() {
    let a = args();
    println!(
        "{} cores; load average before: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    match a.cmd.as_str() {
        "latency" => latency(&a).await,
        "failover" => failover(&a).await,
        "kills" => kills(&a).await,
        "throughput" => throughput(&a).await,
        other => panic!("unknown subcommand {other}: latency | failover | kills | throughput"),
    }
    println!("load average after: {}", load());
}
