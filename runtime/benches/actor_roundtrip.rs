//! Local actor request/response round trip: a tokio task asks an already active actor (on an
//! actix arbiter thread) and awaits the reply. A read-only message, so no commit is involved.

use std::sync::Arc;

use agora_runtime::{
    ActorId, Effects, Message, Reminder, Runtime, RuntimeConfig, Stored, SystemClock, VirtualActor,
};
use agora_storage::{Engine, MemEngine};
use criterion::{criterion_group, criterion_main, Criterion};

struct Echo(u64);

/// Adds to the echo's sum and answers it.
struct Add(u64);

impl VirtualActor for Echo {
    const KIND: &'static str = "echo";
    type Env = ();

    fn restore(_id: &ActorId, _env: &(), _stored: Stored) -> Result<Self, String> {
        Ok(Echo(0))
    }

    fn on_reminder(&mut self, _env: &(), _r: Reminder, _fx: &mut Effects) {}
}

impl Message<Echo> for Add {
    type Reply = u64;

    fn handle(self, echo: &mut Echo, _env: &(), _fx: &mut Effects) -> u64 {
        echo.0 = echo.0.wrapping_add(self.0);
        echo.0
    }
}

fn roundtrip(c: &mut Criterion) {
    let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
    let rt = Runtime::start(RuntimeConfig::default(), engine, Arc::new(SystemClock)).unwrap();
    rt.register::<Echo>(());
    let echo = rt.client::<Echo>();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async { echo.ask("bench", Add(1)).await.unwrap() });
    c.bench_function("ask_local_actor_roundtrip", |b| {
        b.iter(|| tokio.block_on(async { echo.ask("bench", Add(1)).await.unwrap() }))
    });

    // One request in flight at a time, asked in a loop from one task on a multi-threaded
    // runtime (the way a gateway task asks): the caller's worker stays warm between asks.
    let warm = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    c.bench_function("ask_sequential_from_one_task", |b| {
        b.iter_custom(|iters| {
            let echo = echo.clone();
            warm.block_on(async move {
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        echo.ask("bench", Add(1)).await.unwrap();
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });

    // The same asks with 64 in flight at once from a multi-threaded runtime: the cost per
    // round trip when threads are busy rather than parked between messages.
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    const IN_FLIGHT: u64 = 64;
    const PER_TASK: u64 = 200;
    let mut g = c.benchmark_group("ask_pipelined");
    g.throughput(criterion::Throughput::Elements(IN_FLIGHT * PER_TASK));
    g.bench_function("64_in_flight", |b| {
        b.iter(|| {
            multi.block_on(async {
                let mut tasks = Vec::new();
                for t in 0..IN_FLIGHT {
                    let echo = echo.clone();
                    tasks.push(tokio::spawn(async move {
                        let key = format!("p{}", t % 8);
                        for _ in 0..PER_TASK {
                            echo.ask(&key, Add(1)).await.unwrap();
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.finish();
    rt.shutdown();
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
