//! Runtime contract tests with a small counter actor on real sled: activation, ordering,
//! durability across restart, passivation, reminders (including overdue ones after restart),
//! mailbox limits, and outbox delivery with signature and retries.
//!
//! Rules about time (a reminder fires at its due time and not before, backoff waits its
//! delay) run on a [`ManualClock`]: they take milliseconds and cannot flake on a slow machine.
//! One reminder test and one delivery test keep the real clock, for the real thing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_runtime::{
    ActorId, AskError, Client, Clock, DeliveryConfig, Effects, ManualClock, Message, OutboxMessage,
    Reminder, Runtime, RuntimeConfig, Stored, SystemClock, VirtualActor,
};
use agora_storage::{Engine, SledEngine, WriteBatch};

struct Counter {
    value: u64,
    fired: u64,
}

/// Adds to the counter.
struct Add(u64);
/// Reads `(value, reminders fired)`.
struct Get;
/// Sets the `tick` reminder this many ms from now.
struct RemindIn(u64);
/// Sends the value to this URL through the outbox.
struct Notify(String);

impl VirtualActor for Counter {
    const KIND: &'static str = "counter";
    type Env = ();

    fn restore(_id: &ActorId, _env: &(), stored: Stored) -> Result<Self, String> {
        let (value, fired) = match stored.state {
            Some(b) => {
                let arr: [u8; 16] = b.try_into().map_err(|_| "bad state".to_string())?;
                (
                    u64::from_be_bytes(arr[..8].try_into().unwrap()),
                    u64::from_be_bytes(arr[8..].try_into().unwrap()),
                )
            }
            None => (0, 0),
        };
        Ok(Counter { value, fired })
    }

    fn on_reminder(&mut self, _env: &(), r: Reminder, fx: &mut Effects) {
        assert_eq!(r.payload, b"p");
        self.fired += 1;
        fx.save_state(self.encode());
    }
}

impl Message<Counter> for Add {
    type Reply = (u64, u64);
    fn handle(self, c: &mut Counter, _env: &(), fx: &mut Effects) -> (u64, u64) {
        c.value += self.0;
        fx.save_state(c.encode());
        (c.value, c.fired)
    }
}

impl Message<Counter> for Get {
    type Reply = (u64, u64);
    fn handle(self, c: &mut Counter, _env: &(), _fx: &mut Effects) -> (u64, u64) {
        (c.value, c.fired)
    }
}

impl Message<Counter> for RemindIn {
    type Reply = ();
    fn handle(self, _c: &mut Counter, _env: &(), fx: &mut Effects) {
        fx.set_reminder("tick", fx.now_ms() + self.0, b"p".to_vec());
    }
}

impl Message<Counter> for Notify {
    type Reply = ();
    fn handle(self, c: &mut Counter, _env: &(), fx: &mut Effects) {
        fx.send(OutboxMessage {
            url: self.0,
            body: format!("{{\"value\":{}}}", c.value),
            ordering_key: "c".into(),
        });
    }
}

/// A kind that declares it sets no reminders (`REMINDERS = false`), and a message that
/// sets one anyway, with a state change beside it.
struct Quiet;
struct RemindAnyway;

impl VirtualActor for Quiet {
    const KIND: &'static str = "quiet";
    const REMINDERS: bool = false;
    type Env = ();

    fn restore(_id: &ActorId, _env: &(), _stored: Stored) -> Result<Self, String> {
        Ok(Quiet)
    }

    fn on_reminder(&mut self, _env: &(), _r: Reminder, _fx: &mut Effects) {}
}

impl Message<Quiet> for RemindAnyway {
    type Reply = ();
    fn handle(self, _q: &mut Quiet, _env: &(), fx: &mut Effects) {
        fx.save_state(b"changed".to_vec());
        fx.set_reminder("tick", fx.now_ms() + 1000, Vec::new());
    }
}

impl Counter {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.value.to_be_bytes().to_vec();
        v.extend_from_slice(&self.fired.to_be_bytes());
        v
    }
}

fn start(dir: &std::path::Path, config: RuntimeConfig) -> Runtime {
    start_with_clock(dir, config, Arc::new(SystemClock))
}

fn start_with_clock(
    dir: &std::path::Path,
    config: RuntimeConfig,
    clock: Arc<dyn Clock>,
) -> Runtime {
    start_on(Arc::new(SledEngine::open(dir).unwrap()), config, clock)
}

/// A running runtime with counters, over `engine`.
fn start_on(engine: Arc<dyn Engine>, config: RuntimeConfig, clock: Arc<dyn Clock>) -> Runtime {
    let rt = Runtime::start(config, engine, clock).unwrap();
    rt.register::<Counter>(());
    rt.run_background().unwrap();
    rt
}

fn counters(rt: &Runtime) -> Client<Counter> {
    rt.client()
}

/// Gives background tasks a moment in which they could (wrongly) act: for "not yet" checks.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn eventually<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_one_actor_apply_in_order_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rt = start(dir.path(), RuntimeConfig::default());
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let rt = rt.clone();
            tasks.push(tokio::spawn(async move {
                counters(&rt).ask("a", Add(1)).await.unwrap()
            }));
        }
        let mut seen: Vec<u64> = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap().0);
        }
        seen.sort();
        assert_eq!(seen, (1..=50).collect::<Vec<_>>());
        rt.shutdown();
    }
    let rt = start(dir.path(), RuntimeConfig::default());
    assert_eq!(counters(&rt).ask("a", Get).await.unwrap().0, 50);
    assert_eq!(counters(&rt).ask("b", Get).await.unwrap().0, 0);
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_actors_passivate_and_reactivate_with_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        idle_timeout: Duration::from_millis(200),
        ..RuntimeConfig::default()
    };
    let rt = start(dir.path(), config);
    counters(&rt).ask("p", Add(7)).await.unwrap();
    assert_eq!(rt.stats().active_actors, 1);
    eventually("passivation", || rt.stats().active_actors == 0).await;
    assert_eq!(counters(&rt).ask("p", Get).await.unwrap().0, 7);
    assert_eq!(rt.stats().active_actors, 1);
    rt.shutdown();
}

/// Asks until `key` has fired `n` times (the reminder fires in the background).
async fn fired(rt: &Runtime, key: &str, n: u64) {
    for _ in 0..200 {
        if counters(rt).ask(key, Get).await.unwrap().1 >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counters(rt).ask(key, Get).await.unwrap().1, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_fire_once_and_overdue_ones_fire_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    {
        let rt = start_with_clock(dir.path(), RuntimeConfig::default(), clock.clone());
        counters(&rt).ask("r", RemindIn(100)).await.unwrap();
        // Due in 100 ms of the runtime's clock: not a millisecond early...
        clock.advance(99);
        settle().await;
        assert_eq!(counters(&rt).ask("r", Get).await.unwrap().1, 0);
        // ...and at once when the clock reaches it, however little real time passed.
        clock.advance(1);
        fired(&rt, "r", 1).await;
        eventually("no reminder pending", || rt.stats().reminders_pending == 0).await;
        // One that will come due while the node is down.
        counters(&rt).ask("s", RemindIn(300)).await.unwrap();
        eventually("one reminder pending", || rt.stats().reminders_pending == 1).await;
        rt.shutdown();
    }
    clock.advance(400);
    let rt = start_with_clock(dir.path(), RuntimeConfig::default(), clock.clone());
    fired(&rt, "s", 1).await;
    assert_eq!(counters(&rt).ask("r", Get).await.unwrap().1, 1);
    // Firing is once: time moving on does not fire either again.
    clock.advance(10_000);
    settle().await;
    assert_eq!(counters(&rt).ask("s", Get).await.unwrap().1, 1);
    assert_eq!(counters(&rt).ask("r", Get).await.unwrap().1, 1);
    rt.shutdown();
}

/// Earlier Agoras kept a second key per reminder, a due index under `q/`. A node deletes what is
/// left of it at start and schedules from each actor's own reminder records, so a reminder
/// moved to a later time is loaded once, at its new time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_reminder_fires_once_at_its_new_time_after_restart_and_a_leftover_due_index_is_deleted(
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let legacy_prefix = [b'P', 0, 7, b'q', b'/'];
    {
        let engine = SledEngine::open(dir.path()).unwrap();
        let mut key = legacy_prefix.to_vec();
        key.extend_from_slice(&5u64.to_be_bytes());
        key.extend_from_slice(b"counter\0old\0tick");
        let mut batch = WriteBatch::new();
        batch.put(key, Vec::new());
        engine.apply(batch).unwrap();
        engine.flush().unwrap();
    }
    {
        let rt = start_with_clock(dir.path(), RuntimeConfig::default(), clock.clone());
        counters(&rt).ask("m", RemindIn(100)).await.unwrap();
        counters(&rt).ask("m", RemindIn(500)).await.unwrap();
        eventually("the moved reminder alone pending", || {
            rt.stats().reminders_pending == 1
        })
        .await;
        clock.advance(200);
        settle().await;
        assert_eq!(counters(&rt).ask("m", Get).await.unwrap().1, 0);
        rt.shutdown();
    }
    let rt = start_with_clock(dir.path(), RuntimeConfig::default(), clock.clone());
    settle().await;
    assert_eq!(
        rt.stats().reminders_pending,
        1,
        "only the moved reminder is loaded"
    );
    clock.advance(299);
    settle().await;
    assert_eq!(counters(&rt).ask("m", Get).await.unwrap().1, 0);
    clock.advance(1);
    fired(&rt, "m", 1).await;
    clock.advance(10_000);
    settle().await;
    assert_eq!(counters(&rt).ask("m", Get).await.unwrap().1, 1);
    rt.shutdown();
    drop(rt);
    let engine = SledEngine::open(dir.path()).unwrap();
    assert!(engine.scan_prefix(&legacy_prefix).unwrap().is_empty());
}

/// Counts the reads that reach storage.
struct CountingReads {
    inner: SledEngine,
    reads: AtomicUsize,
}

impl CountingReads {
    fn open(path: &std::path::Path) -> Arc<Self> {
        Arc::new(CountingReads {
            inner: SledEngine::open(path).unwrap(),
            reads: AtomicUsize::new(0),
        })
    }
}

impl Engine for CountingReads {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, agora_storage::StorageError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<agora_storage::Pairs, agora_storage::StorageError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.scan_prefix(prefix)
    }
    fn visit_prefix(
        &self,
        prefix: &[u8],
        visit: &mut agora_storage::Visit<'_>,
    ) -> Result<(), agora_storage::StorageError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.visit_prefix(prefix, visit)
    }
    fn last_with_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<Option<Vec<u8>>, agora_storage::StorageError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.last_with_prefix(prefix)
    }
    fn scan_from(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<agora_storage::Pairs, agora_storage::StorageError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.scan_from(prefix, from, limit)
    }
    fn apply(&self, batch: WriteBatch) -> Result<(), agora_storage::StorageError> {
        self.inner.apply(batch)
    }
    fn flush(&self) -> Result<(), agora_storage::StorageError> {
        self.inner.flush()
    }
    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}

/// `ask_new` is for a key allocated just now: its activation reads nothing from storage, what
/// it writes is stored as usual, and a later activation reads it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_asked_as_new_reads_nothing_to_activate_and_is_stored_as_usual() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = CountingReads::open(dir.path());
        let rt = start_on(
            engine.clone(),
            RuntimeConfig::default(),
            Arc::new(SystemClock),
        );
        let before = engine.reads.load(Ordering::SeqCst);
        counters(&rt).ask_new("n1", Add(5)).await.unwrap();
        counters(&rt)
            .ask_new("n1", RemindIn(3_600_000))
            .await
            .unwrap();
        assert_eq!(
            engine.reads.load(Ordering::SeqCst),
            before,
            "a new actor read storage"
        );
        // The control: activating an actor the usual way reads its state and reminders.
        counters(&rt).ask("n2", Add(1)).await.unwrap();
        assert!(engine.reads.load(Ordering::SeqCst) > before);
        rt.shutdown();
    }
    let rt = start(dir.path(), RuntimeConfig::default());
    assert_eq!(counters(&rt).ask("n1", Get).await.unwrap(), (5, 0));
    assert_eq!(rt.stats().reminders_pending, 1);
    rt.shutdown();
}

/// The node's idle sweep passivates only what nobody asks: an actor asked every 40 ms keeps
/// its activation (it never reads storage again) through four idle timeouts, while one asked
/// once beside it is passivated, and so is the busy one once it goes quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_sweep_passivates_quiet_actors_and_keeps_busy_ones() {
    let dir = tempfile::tempdir().unwrap();
    let engine = CountingReads::open(dir.path());
    let config = RuntimeConfig {
        idle_timeout: Duration::from_millis(200),
        ..RuntimeConfig::default()
    };
    let rt = start_on(engine.clone(), config, Arc::new(SystemClock));
    counters(&rt).ask("quiet", Add(1)).await.unwrap();
    counters(&rt).ask("busy", Add(1)).await.unwrap();
    let reads = engine.reads.load(Ordering::SeqCst);
    let began = std::time::Instant::now();
    let mut quiet_passivated = false;
    while began.elapsed() < Duration::from_millis(800) {
        tokio::time::sleep(Duration::from_millis(40)).await;
        counters(&rt).ask("busy", Add(1)).await.unwrap();
        quiet_passivated |= rt.stats().active_actors == 1;
    }
    assert_eq!(
        engine.reads.load(Ordering::SeqCst),
        reads,
        "the busy actor was passivated and restored"
    );
    assert!(quiet_passivated, "the quiet actor stayed active");
    eventually("passivation", || rt.stats().active_actors == 0).await;
    let busy = counters(&rt).ask("busy", Get).await.unwrap().0;
    assert!(busy > 10, "{busy}");
    assert!(engine.reads.load(Ordering::SeqCst) > reads);
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_fire_on_the_real_clock() {
    let dir = tempfile::tempdir().unwrap();
    let rt = start(dir.path(), RuntimeConfig::default());
    let asked = std::time::Instant::now();
    counters(&rt).ask("real", RemindIn(100)).await.unwrap();
    fired(&rt, "real", 1).await;
    assert!(asked.elapsed() >= Duration::from_millis(100), "fired early");
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_is_refused_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        mailbox_capacity: 4,
        ..RuntimeConfig::default()
    };
    let rt = start(dir.path(), config);
    let mut tasks = Vec::new();
    for _ in 0..400 {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            counters(&rt).ask("hot", Add(1)).await
        }));
    }
    let mut ok = 0u64;
    let mut overloaded = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(AskError::Overloaded) => overloaded += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok + overloaded, 400);
    assert_eq!(counters(&rt).ask("hot", Get).await.unwrap().0, ok);
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_delivers_signed_with_one_idempotency_key_across_retries() {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let failures = Arc::new(AtomicUsize::new(2));
    let app = {
        let seen = seen.clone();
        let failures = failures.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let seen = seen.clone();
                let failures = failures.clone();
                async move {
                    let key = headers["idempotency-key"].to_str().unwrap().to_string();
                    let sig = headers["x-agora-signature"].to_str().unwrap().to_string();
                    assert_eq!(sig, agora_runtime_signature(b"s3cret", body.as_bytes()));
                    seen.lock().unwrap().push((key, body));
                    if failures.load(Ordering::SeqCst) > 0 {
                        failures.fetch_sub(1, Ordering::SeqCst);
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        delivery: DeliveryConfig {
            signing_secret: Some(b"s3cret".to_vec()),
            first_backoff: Duration::from_millis(20),
            ..DeliveryConfig::default()
        },
        ..RuntimeConfig::default()
    };
    let rt = start(dir.path(), config);
    counters(&rt).ask("o", Add(3)).await.unwrap();
    counters(&rt)
        .ask("o", Notify(format!("http://127.0.0.1:{port}/hook")))
        .await
        .unwrap();
    eventually("delivery", || rt.stats().outbox_delivered == 1).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|(k, b)| *k == seen[0].0 && b == "{\"value\":3}"));
    assert_eq!(rt.stats().outbox_depth, 0);
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_backoff_and_retry_after_wait_on_the_runtime_clock() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let attempts = Arc::new(AtomicUsize::new(0));
    let app = {
        let attempts = attempts.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let attempts = attempts.clone();
                async move {
                    match attempts.fetch_add(1, Ordering::SeqCst) {
                        0 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                        1 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")])
                            .into_response(),
                        _ => StatusCode::OK.into_response(),
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let config = RuntimeConfig {
        delivery: DeliveryConfig {
            first_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
            ..DeliveryConfig::default()
        },
        ..RuntimeConfig::default()
    };
    let rt = start_with_clock(dir.path(), config, clock.clone());
    counters(&rt)
        .ask("o", Notify(format!("http://127.0.0.1:{port}/hook")))
        .await
        .unwrap();
    let tries = || attempts.load(Ordering::SeqCst);
    eventually("the first attempt", || tries() == 1).await;
    // A 503 without Retry-After: the first backoff, 30 s of the runtime's clock.
    clock.advance(29_000);
    settle().await;
    assert_eq!(tries(), 1, "retried before the backoff passed");
    clock.advance(1_000);
    eventually("the second attempt", || tries() == 2).await;
    // A 429 with `Retry-After: 120`: it wins over the doubled backoff (60 s).
    clock.advance(119_000);
    settle().await;
    assert_eq!(tries(), 2, "retried before Retry-After passed");
    clock.advance(1_000);
    eventually("delivery", || rt.stats().outbox_delivered == 1).await;
    assert_eq!(tries(), 3);
    assert_eq!(rt.stats().outbox_failed_attempts, 2);
    rt.shutdown();
}

fn agora_runtime_signature(secret: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_without_reminders_that_sets_one_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine: Arc<dyn Engine> = Arc::new(SledEngine::open(dir.path()).unwrap());
    let rt = Runtime::start(
        RuntimeConfig::default(),
        engine.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    rt.register::<Quiet>(());
    rt.run_background().unwrap();
    let quiet: Client<Quiet> = rt.client();
    match quiet.ask("q", RemindAnyway).await {
        Err(AskError::Internal(why)) => assert!(why.contains("declares no reminders"), "{why}"),
        other => panic!("expected an internal refusal, got {:?}", other.map(|_| ())),
    }
    settle().await;
    // Neither the state change nor the reminder reached storage.
    let written = engine.scan_prefix(b"").unwrap();
    assert!(
        !written
            .iter()
            .any(|(k, _)| k.windows(5).any(|w| w == b"quiet")),
        "nothing of the refused commit is stored: {written:?}"
    );
    assert_eq!(rt.stats().reminders_pending, 0);
}
