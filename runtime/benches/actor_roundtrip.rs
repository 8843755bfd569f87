//! Local actor request/response round trip: a tokio task asks an already active actor (on an
//! actix arbiter thread) and awaits the reply. A read-only message, so no commit is involved.

use std::sync::Arc;

use agora_runtime::{
    ActorId, Effects, Reminder, Runtime, RuntimeConfig, Stored, SystemClock, VirtualActor,
};
use agora_storage::{Engine, MemEngine};
use criterion::{criterion_group, criterion_main, Criterion};

struct Echo(u64);

impl VirtualActor for Echo {
    const KIND: &'static str = "echo";
    type Env = ();
    type Command = u64;
    type Reply = u64;

    fn restore(_id: &ActorId, _env: &(), _stored: Stored) -> Result<Self, String> {
        Ok(Echo(0))
    }

    fn handle(&mut self, _env: &(), cmd: u64, _fx: &mut Effects) -> u64 {
        self.0 = self.0.wrapping_add(cmd);
        self.0
    }

    fn on_reminder(&mut self, _env: &(), _r: Reminder, _fx: &mut Effects) {}
}

fn roundtrip(c: &mut Criterion) {
    let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
    let rt = Runtime::start(RuntimeConfig::default(), engine, Arc::new(SystemClock)).unwrap();
    rt.register::<Echo>(());
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async { rt.ask::<Echo>("bench", 1).await.unwrap() });
    c.bench_function("ask_local_actor_roundtrip", |b| {
        b.iter(|| tokio.block_on(async { rt.ask::<Echo>("bench", 1).await.unwrap() }))
    });
    rt.shutdown();
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
