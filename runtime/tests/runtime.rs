//! Runtime contract tests with a small counter actor on real sled: activation, ordering,
//! durability across restart, passivation, reminders (including overdue ones after restart),
//! mailbox limits, and outbox delivery with signature and retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_runtime::{
    ActorId, AskError, Client, DeliveryConfig, Effects, Message, OutboxMessage, Reminder, Runtime,
    RuntimeConfig, Stored, SystemClock, VirtualActor,
};
use agora_storage::{Engine, SledEngine};

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

impl Counter {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.value.to_be_bytes().to_vec();
        v.extend_from_slice(&self.fired.to_be_bytes());
        v
    }
}

fn start(dir: &std::path::Path, config: RuntimeConfig) -> Runtime {
    let engine: Arc<dyn Engine> = Arc::new(SledEngine::open(dir).unwrap());
    let rt = Runtime::start(config, engine, Arc::new(SystemClock)).unwrap();
    rt.register::<Counter>(());
    rt.run_background().unwrap();
    rt
}

fn counters(rt: &Runtime) -> Client<Counter> {
    rt.client()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_fire_once_and_overdue_ones_fire_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rt = start(dir.path(), RuntimeConfig::default());
        counters(&rt).ask("r", RemindIn(100)).await.unwrap();
        let rt2 = rt.clone();
        let fired = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let (_, f) = counters(&rt2).ask("r", Get).await.unwrap();
            fired.store(f as usize, Ordering::SeqCst);
            if f > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        eventually("no reminder pending", || rt.stats().reminders_pending == 0).await;
        // One that will come due while the node is down.
        counters(&rt).ask("s", RemindIn(300)).await.unwrap();
        eventually("one reminder pending", || rt.stats().reminders_pending == 1).await;
        rt.shutdown();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rt = start(dir.path(), RuntimeConfig::default());
    for _ in 0..100 {
        if counters(&rt).ask("s", Get).await.unwrap().1 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counters(&rt).ask("s", Get).await.unwrap().1, 1);
    assert_eq!(counters(&rt).ask("r", Get).await.unwrap().1, 1);
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

fn agora_runtime_signature(secret: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
