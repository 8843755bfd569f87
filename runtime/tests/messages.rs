//! Durable messages between actors: delivered at least once, handled exactly once, in commit
//! order per sender and receiver, across restarts and `SIGKILL`s, on one node and in a cluster.
//!
//! Crash tests run a node as a child process: this test binary re-executed with
//! `child_node --exact` and `AGORA_TEST_CHILD_DIR` set, driven over stdin/stdout (one command a
//! line, answers prefixed `@@`), with `AGORA_FAULT` arming the crash point where the child
//! kills itself with `SIGKILL`. Cluster tests start a real `redis-server` on a free port.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_runtime::{
    cluster::rendezvous, partition_of, ActorId, ActorMessage, AskError, ClusterConfig, Delivery,
    Effects, ManualClock, Message, MessageConfig, Reminder, Runtime, RuntimeConfig, Stored,
    SystemClock, VirtualActor, FAULT_ENV,
};
use agora_storage::{Engine, MemEngine, SledEngine};
use serde::{Deserialize, Serialize};

// ----- the actors -----

#[derive(Serialize, Deserialize)]
struct Note {
    n: u64,
}

impl ActorMessage for Note {
    const KIND: &'static str = "note";
}

/// Sends notes; remembers how many.
struct Sender {
    sent: u64,
}

enum SenderCmd {
    Send { to: String, n: u64 },
}

impl VirtualActor for Sender {
    const KIND: &'static str = "sender";
    type Env = ();

    fn restore(_: &ActorId, _: &(), stored: Stored) -> Result<Self, String> {
        let sent = match stored.state {
            Some(b) => serde_json::from_slice(&b).map_err(|e| e.to_string())?,
            None => 0,
        };
        Ok(Sender { sent })
    }

    fn on_reminder(&mut self, _: &(), _: Reminder, _: &mut Effects) {}
}

impl Message<Sender> for SenderCmd {
    type Reply = u64;
    fn handle(self, s: &mut Sender, _: &(), fx: &mut Effects) -> u64 {
        match self {
            SenderCmd::Send { to, n } => {
                s.sent += 1;
                fx.save_state(serde_json::to_vec(&s.sent).unwrap());
                fx.send_to::<Receiver, Note>(&to, &Note { n }).unwrap();
            }
        }
        s.sent
    }
}

/// Keeps every note it handled: (sender key, n), in the order handled.
struct Receiver {
    got: Vec<(String, u64)>,
}

impl VirtualActor for Receiver {
    const KIND: &'static str = "receiver";
    type Env = ();

    fn restore(_: &ActorId, _: &(), stored: Stored) -> Result<Self, String> {
        let got = match stored.state {
            Some(b) => serde_json::from_slice(&b).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        Ok(Receiver { got })
    }

    fn on_reminder(&mut self, _: &(), _: Reminder, _: &mut Effects) {}

    fn on_message(&mut self, _: &(), msg: Delivery, fx: &mut Effects) {
        assert!(msg.is::<Note>(), "only notes are sent here");
        let note = msg.decode::<Note>().expect("a note");
        self.got.push((msg.from_key.clone(), note.n));
        fx.save_state(serde_json::to_vec(&self.got).unwrap());
    }
}

/// Reads every note the receiver handled.
impl Message<Receiver> for () {
    type Reply = Vec<(String, u64)>;
    fn handle(self, r: &mut Receiver, _: &(), _: &mut Effects) -> Vec<(String, u64)> {
        r.got.clone()
    }
}

fn register(rt: &Runtime) {
    rt.register::<Sender>(());
    rt.register::<Receiver>(());
}

async fn got(rt: &Runtime, receiver: &str) -> Vec<u64> {
    rt.ask::<Receiver, _>(receiver, ())
        .await
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .collect()
}

async fn eventually<F: FnMut() -> Fut, Fut: std::future::Future<Output = bool>>(
    what: &str,
    mut f: F,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Lets background work run where a test checks that something did NOT happen.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

// ----- on one node, in process -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_handled_once_in_commit_order_per_pair_and_not_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let engine: Arc<dyn Engine> = Arc::new(SledEngine::open(dir.path()).unwrap());
        let rt = Runtime::start(RuntimeConfig::default(), engine, Arc::new(SystemClock)).unwrap();
        register(&rt);
        rt.run_background().unwrap();
        rt
    };
    let rt = start();
    // Three senders to one receiver, and one of them to a second receiver, all at once.
    let mut tasks = Vec::new();
    for s in ["s1", "s2", "s3"] {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            for n in 1..=60 {
                rt.ask::<Sender, _>(s, SenderCmd::Send { to: "r".into(), n })
                    .await
                    .unwrap();
                if s == "s1" {
                    rt.ask::<Sender, _>(s, SenderCmd::Send { to: "r2".into(), n })
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eventually("every message handled", || {
        let rt = rt.clone();
        async move { rt.stats().messages_pending == 0 && rt.stats().messages_delivered == 240 }
    })
    .await;
    let all = rt.ask::<Receiver, _>("r", ()).await.unwrap();
    assert_eq!(all.len(), 180);
    for s in ["s1", "s2", "s3"] {
        let from_s: Vec<u64> = all
            .iter()
            .filter(|(k, _)| k == s)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(
            from_s,
            (1..=60).collect::<Vec<_>>(),
            "from {s}, in order, once each"
        );
    }
    assert_eq!(got(&rt, "r2").await, (1..=60).collect::<Vec<_>>());
    assert_eq!(rt.stats().messages_duplicates, 0);
    rt.shutdown();
    drop(rt);

    // Delivered messages are gone from their senders: a restart delivers nothing again.
    let rt = start();
    settle().await;
    assert_eq!(rt.stats().messages_pending, 0);
    assert_eq!(rt.stats().messages_delivered, 0);
    assert_eq!(rt.ask::<Receiver, _>("r", ()).await.unwrap().len(), 180);
    rt.shutdown();
}

fn manual_runtime(clock: &Arc<ManualClock>, messages: MessageConfig) -> Runtime {
    let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
    let config = RuntimeConfig {
        messages,
        ..RuntimeConfig::default()
    };
    Runtime::start(config, engine, clock.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_retried_after_its_backoff_on_the_runtime_clock() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let rt = manual_runtime(
        &clock,
        MessageConfig {
            first_backoff: Duration::from_secs(10),
            ..MessageConfig::default()
        },
    );
    // The receiver's kind is not reachable yet: every attempt fails.
    rt.register::<Sender>(());
    rt.run_background().unwrap();
    rt.ask::<Sender, _>(
        "s",
        SenderCmd::Send {
            to: "r".into(),
            n: 1,
        },
    )
    .await
    .unwrap();
    eventually("a failed attempt", || {
        let rt = rt.clone();
        async move { rt.stats().messages_failed_attempts == 1 }
    })
    .await;
    rt.register::<Receiver>(());
    // No retry until 10 s of the runtime's clock have passed, however long we wait.
    clock.advance(9_999);
    settle().await;
    assert_eq!(rt.stats().messages_failed_attempts, 1);
    assert_eq!(rt.stats().messages_delivered, 0);
    clock.advance(1);
    eventually("the retry to deliver", || {
        let rt = rt.clone();
        async move { rt.stats().messages_delivered == 1 }
    })
    .await;
    assert_eq!(got(&rt, "r").await, vec![1]);
    assert_eq!(rt.stats().messages_pending, 0);
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_undeliverable_for_its_whole_window_is_dropped_and_never_handled() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let rt = manual_runtime(
        &clock,
        MessageConfig {
            max_age: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(60),
            ..MessageConfig::default()
        },
    );
    rt.register::<Sender>(());
    rt.run_background().unwrap();
    rt.ask::<Sender, _>(
        "s",
        SenderCmd::Send {
            to: "r".into(),
            n: 1,
        },
    )
    .await
    .unwrap();
    eventually("a failed attempt", || {
        let rt = rt.clone();
        async move { rt.stats().messages_failed_attempts >= 1 }
    })
    .await;
    clock.advance(3_600_001);
    eventually("the message to expire", || {
        let rt = rt.clone();
        async move { rt.stats().messages_expired == 1 && rt.stats().messages_pending == 0 }
    })
    .await;
    rt.register::<Receiver>(());
    clock.advance(3_600_000);
    settle().await;
    assert!(got(&rt, "r").await.is_empty());
    rt.shutdown();
}

// ----- a node in a child process -----

const CHILD_DIR: &str = "AGORA_TEST_CHILD_DIR";
const CHILD_REDIS: &str = "AGORA_TEST_CHILD_REDIS";
const CHILD_NODE: &str = "AGORA_TEST_CHILD_NODE";
/// How long one command to a child may take.
const CHILD_ANSWER: Duration = Duration::from_secs(30);

/// Cluster settings of child nodes: short leases, so takeovers fit a test.
fn cluster_config(redis: String, node: String) -> ClusterConfig {
    let mut c = ClusterConfig::new(redis, node, "-".into());
    c.lease_ttl = Duration::from_millis(1500);
    c.tick = Duration::from_millis(250);
    c.node_ttl = Duration::from_millis(1500);
    c
}

fn child_messages() -> MessageConfig {
    MessageConfig {
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
        ..MessageConfig::default()
    }
}

/// The child's side: a node on the data directory in `AGORA_TEST_CHILD_DIR`, answering one
/// command per stdin line. A no-op in an ordinary test run.
#[test]
fn child_node() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = std::env::var(CHILD_REDIS)
        .ok()
        .map(|url| cluster_config(url, std::env::var(CHILD_NODE).unwrap()));
    let config = RuntimeConfig {
        cluster,
        messages: child_messages(),
        ..RuntimeConfig::default()
    };
    let engine: Arc<dyn Engine> = Arc::new(SledEngine::open(Path::new(&dir)).unwrap());
    let rt = Runtime::start(config, engine, Arc::new(SystemClock)).unwrap();
    register(&rt);
    tokio.block_on(async { rt.run_background() }).unwrap();
    let out = std::io::stdout();
    let answer = |text: String| {
        let mut out = out.lock();
        writeln!(out, "@@{text}").unwrap();
        out.flush().unwrap();
    };
    answer("ready".into());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = tokio.block_on(async {
            match words.as_slice() {
                ["send", from, to, n] => {
                    let n: u64 = n.parse().unwrap();
                    let cmd = SenderCmd::Send {
                        to: to.to_string(),
                        n,
                    };
                    match rt.ask::<Sender, _>(from, cmd).await {
                        Ok(_) => format!("sent {n}"),
                        Err(e) => format!("err {e}"),
                    }
                }
                ["got", key] => match rt.ask::<Receiver, _>(key, ()).await {
                    Ok(all) => {
                        let ns: Vec<String> = all.iter().map(|(_, n)| n.to_string()).collect();
                        format!("got {}", ns.join(","))
                    }
                    Err(e) => format!("err {e}"),
                },
                ["stats"] => {
                    let s = rt.stats();
                    format!(
                        "stats {} {} {} {}",
                        s.messages_pending,
                        s.messages_delivered,
                        s.messages_duplicates,
                        s.messages_expired
                    )
                }
                ["route", key] => match rt.route(partition_of(key)) {
                    Ok(None) => "route here".into(),
                    Ok(Some(node)) => format!("route {node}"),
                    Err(_) => "route none".into(),
                },
                _ => format!("err unknown command {line:?}"),
            }
        });
        answer(reply);
    }
    rt.shutdown();
    std::process::exit(0);
}

/// The test's side of a child node.
struct ChildNode {
    name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    answers: mpsc::Receiver<String>,
    log: PathBuf,
}

/// What a child node's stats line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stats {
    pending: i64,
    delivered: u64,
    duplicates: u64,
    expired: u64,
}

impl ChildNode {
    /// Starts a node on `dir`; `cluster`: (Redis URL, node id); `fault`: an `AGORA_FAULT`.
    fn spawn(name: &str, dir: &Path, cluster: Option<(&str, &str)>, fault: Option<&str>) -> Self {
        let log = dir.with_extension("log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "child_node",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ]);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AGORA_") {
                cmd.env_remove(key);
            }
        }
        cmd.env(CHILD_DIR, dir);
        if let Some((redis, node)) = cluster {
            cmd.env(CHILD_REDIS, redis).env(CHILD_NODE, node);
        }
        if let Some(f) = fault {
            cmd.env(FAULT_ENV, f);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("re-run this test binary as a child node");
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print its "test child_node ... " before the first answer.
                if let Some(at) = line.find("@@") {
                    if tx.send(line[at + 2..].to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        let mut node = ChildNode {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child: Some(child),
            answers,
            log,
        };
        assert_eq!(
            node.next_answer().as_deref(),
            Some("ready"),
            "{name} did not start"
        );
        node
    }

    /// The next answer; `None` once the child is gone.
    fn next_answer(&mut self) -> Option<String> {
        match self.answers.recv_timeout(CHILD_ANSWER) {
            Ok(a) => Some(a),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{} did not answer within {CHILD_ANSWER:?}", self.name)
            }
        }
    }

    /// Sends one command; `None` when the child died before answering.
    fn cmd(&mut self, line: &str) -> Option<String> {
        let stdin = self.stdin.as_mut()?;
        if writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .is_err()
        {
            return None;
        }
        self.next_answer()
    }

    fn got(&mut self, receiver: &str) -> Option<Vec<u64>> {
        let a = self.cmd(&format!("got {receiver}"))?;
        let list = a.strip_prefix("got ")?;
        Some(
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect(),
        )
    }

    fn stats(&mut self) -> Stats {
        let a = self.cmd("stats").expect("stats from a live node");
        let f: Vec<&str> = a.split_whitespace().collect();
        Stats {
            pending: f[1].parse().unwrap(),
            delivered: f[2].parse().unwrap(),
            duplicates: f[3].parse().unwrap(),
            expired: f[4].parse().unwrap(),
        }
    }

    fn route(&mut self, key: &str) -> String {
        let a = self.cmd(&format!("route {key}")).expect("a live node");
        a.strip_prefix("route ").unwrap_or(&a).to_string()
    }

    /// Waits for the child to die and checks it was by `SIGKILL` (its crash point).
    fn wait_killed(&mut self) {
        let mut child = self.child.take().expect("a running child");
        let deadline = Instant::now() + CHILD_ANSWER;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert_eq!(
                    status.signal(),
                    Some(libc::SIGKILL),
                    "{} exited with {status}, not by its crash point",
                    self.name
                );
                self.stdin = None;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never reached its crash point",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn quit(mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let status = child.wait().unwrap();
            assert!(status.success(), "{} exited with {status}", self.name);
        }
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("===== {} stderr =====\n{log}", self.name);
        }
    }
}

/// Polls `probe` (blocking) until it holds, or panics after `within`.
fn wait_until(what: &str, within: Duration, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !probe() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a receiver holds after a crash is right: each note at most once, in order, every
/// acknowledged one present (and `must` too: committed before the crash point).
fn check_once_in_order(got: &[u64], acked: &[u64], must: u64) {
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "twice or out of order: {got:?}"
    );
    let got_set: BTreeSet<u64> = got.iter().copied().collect();
    for n in acked.iter().chain([&must]) {
        assert!(
            got_set.contains(n),
            "note {n} lost: {got:?} (acknowledged {acked:?})"
        );
    }
    assert!(
        got.iter().all(|n| (1..=5).contains(n)),
        "never sent: {got:?}"
    );
}

/// One node: sends notes 1..=5 until the child kills itself at `fault`, then recovers the
/// same data in this process and checks nothing was lost or handled twice.
fn crash_one_node(fault: &str, must: u64, redelivered: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut node = ChildNode::spawn("node", &data, None, Some(fault));
    let mut acked = Vec::new();
    for n in 1..=5u64 {
        match node.cmd(&format!("send s r {n}")) {
            Some(a) if a == format!("sent {n}") => acked.push(n),
            Some(a) => panic!("send {n}: {a}"),
            None => break,
        }
    }
    node.wait_killed();
    drop(node);

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let engine: Arc<dyn Engine> = Arc::new(SledEngine::open(&data).unwrap());
        let rt = Runtime::start(RuntimeConfig::default(), engine, Arc::new(SystemClock)).unwrap();
        register(&rt);
        rt.run_background().unwrap();
        eventually("the pending notes to be handled", || {
            let rt = rt.clone();
            async move { rt.stats().messages_pending == 0 }
        })
        .await;
        let notes = got(&rt, "r").await;
        check_once_in_order(&notes, &acked, must);
        let s = rt.stats();
        if redelivered {
            assert!(
                s.messages_duplicates >= 1,
                "the handled note was not redelivered (so the test proved nothing): {notes:?}"
            );
        } else {
            // (A note delivered before the crash may come again as a duplicate, when the
            // removal of its entry was still on its way to disk.)
            assert!(
                s.messages_delivered >= 1,
                "nothing was left to deliver: {notes:?}"
            );
        }
        rt.shutdown();
    });
}

#[test]
fn one_node_killed_between_the_senders_commit_and_the_receivers_handling_loses_nothing() {
    crash_one_node("after_send_commit@3", 3, false);
}

#[test]
fn one_node_killed_after_the_receivers_commit_handles_nothing_twice() {
    crash_one_node("after_receive_commit@2", 2, true);
}

#[test]
fn one_node_killed_before_the_senders_removal_handles_nothing_twice() {
    crash_one_node("before_sender_removal@2", 2, true);
}

// ----- a cluster: a real redis-server and two child nodes -----

/// A throwaway `redis-server` on a free port.
struct Redis {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(
                std::env::var("AGORA_E2E_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()),
            )
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the cluster tests");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile: choose another
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Redis {
                        port,
                        child,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key of the default placement whose partition `node` owns among `n1` and `n2`.
fn key_owned_by(prefix: &str, node: &str) -> String {
    let nodes = ["n1".to_string(), "n2".to_string()];
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| rendezvous(partition_of(k), nodes.iter()).map(String::as_str) == Some(node))
        .unwrap()
}

/// Two nodes: the sender's partition on `n1`, the receiver's on `n2`. The node `victim` runs
/// with `fault` and dies there; the survivor must end up with the note handled exactly once,
/// and so must the cluster once the victim is back.
fn crash_in_cluster(victim: &str, fault: &str, redelivered: bool) {
    let redis = Redis::start();
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = (key_owned_by("s", "n1"), key_owned_by("r", "n2"));
    let start = |node: &str, fault: Option<&str>| {
        ChildNode::spawn(node, &dir.path().join(node), Some((&url, node)), fault)
    };
    let mut n1 = start("n1", (victim == "n1").then_some(fault));
    let mut n2 = start("n2", (victim == "n2").then_some(fault));
    wait_until("the cluster to form", Duration::from_secs(20), || {
        n1.route(&s) == "here" && n1.route(&r) == "n2" && n2.route(&r) == "here"
    });

    let sent = n1.cmd(&format!("send {s} {r} 1"));
    assert!(
        sent.is_none() || sent.as_deref() == Some("sent 1"),
        "send: {sent:?}"
    );
    let (mut victim_node, mut survivor) = if victim == "n1" { (n1, n2) } else { (n2, n1) };
    victim_node.wait_killed();
    drop(victim_node);

    // The survivor takes the victim's partitions over and finishes the job.
    wait_until(
        "the note handled on the survivor",
        Duration::from_secs(30),
        || {
            survivor.route(&r) == "here"
                && survivor.route(&s) == "here"
                && survivor.got(&r) == Some(vec![1])
                && survivor.stats().pending == 0
        },
    );
    let stats = survivor.stats();
    if redelivered {
        assert!(
            stats.duplicates >= 1,
            "no redelivery was deduplicated: {stats:?}"
        );
    } else {
        assert!(
            stats.delivered >= 1,
            "the survivor delivered nothing: {stats:?}"
        );
    }
    assert_eq!(stats.expired, 0);

    // The victim comes back (same id, same disk): partitions move back, nothing runs again.
    let mut back = start(victim, None);
    wait_until("the cluster to re-form", Duration::from_secs(20), || {
        let (n1, n2) = if victim == "n1" {
            (&mut back, &mut survivor)
        } else {
            (&mut survivor, &mut back)
        };
        n1.route(&s) == "here" && n2.route(&r) == "here" && n1.route(&r) == "n2"
    });
    std::thread::sleep(Duration::from_millis(500));
    let n2 = if victim == "n2" {
        &mut back
    } else {
        &mut survivor
    };
    assert_eq!(
        n2.got(&r),
        Some(vec![1]),
        "handled again after the victim came back"
    );
    assert_eq!(back.stats().pending, 0);
    assert_eq!(survivor.stats().pending, 0);
    back.quit();
    survivor.quit();
}

#[test]
fn cluster_sender_node_killed_after_its_commit_loses_nothing() {
    crash_in_cluster("n1", "after_send_commit", false);
}

#[test]
fn cluster_sender_node_killed_before_its_removal_handles_nothing_twice() {
    crash_in_cluster("n1", "before_sender_removal", true);
}

#[test]
fn cluster_receiver_node_killed_after_its_commit_handles_nothing_twice() {
    crash_in_cluster("n2", "after_receive_commit", true);
}

/// RPC deadlines are read from the runtime's clock: a call to a node that never answers ends
/// when the manual clock passes its deadline, not before, however much real time passes.
#[test]
fn cluster_rpc_deadlines_run_on_the_runtime_clock() {
    let redis = Redis::start();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let node = |id: &str| {
            let config = RuntimeConfig {
                cluster: Some(cluster_config(redis.url(), id.into())),
                ..RuntimeConfig::default()
            };
            let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
            let rt = Runtime::start(config, engine, clock.clone()).unwrap();
            rt.run_background().unwrap();
            rt
        };
        let (a, b) = (node("a"), node("b"));
        // `b` takes every forwarded request and never answers.
        b.serve_forwarded(Arc::new(|_| Box::pin(std::future::pending())));
        // Both have joined (a join fails the calls already waiting on the joining node).
        eventually("both nodes to see each other", || {
            let (a, b) = (a.clone(), b.clone());
            async move {
                let seen = |rt: &Runtime, other: &str| {
                    rt.cluster_view()
                        .is_some_and(|v| v.nodes.contains_key(other))
                };
                seen(&a, "b") && seen(&b, "a")
            }
        })
        .await;
        let call = loop {
            let a = a.clone();
            let call = tokio::spawn(async move {
                a.forward("b", b"hello".to_vec(), Duration::from_secs(30))
                    .await
            });
            settle().await;
            if !call.is_finished() {
                break call;
            }
            // `b` was not subscribed yet: nobody received it.
            assert_eq!(call.await.unwrap(), Err(AskError::NotOwner(u32::MAX)));
        };
        settle().await;
        assert!(!call.is_finished(), "gave up before its deadline");
        clock.advance(29_999);
        settle().await;
        assert!(!call.is_finished(), "gave up before its deadline");
        clock.advance(1);
        let result = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("the call ends once the clock passes its deadline")
            .unwrap();
        match result {
            Err(AskError::Unavailable(why)) => assert!(why.contains("in time"), "{why}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        a.shutdown();
        b.shutdown();
    });
}
