//! Durable writes per second through the group committer on real sled.
//!
//! Each iteration submits a batch of 256 single-key writes from 64 concurrent writers and waits
//! until all of them are on disk; criterion's throughput line gives durable writes per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_storage::{Committer, Engine, SledEngine, WriteBatch};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const WRITERS: u64 = 64;
const PER_WRITER: u64 = 64;

fn durable_writes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let engine: Arc<dyn Engine> = Arc::new(SledEngine::open(dir.path()).unwrap());
    let committer = Committer::start(engine);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("group_commit");
    g.throughput(Throughput::Elements(WRITERS * PER_WRITER));
    g.measurement_time(Duration::from_secs(10));
    g.sample_size(20);
    let mut round = 0u64;
    g.bench_function("durable_writes_64_writers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let start = Instant::now();
                rt.block_on(async {
                    let mut tasks = Vec::with_capacity(WRITERS as usize);
                    for w in 0..WRITERS {
                        let c = committer.clone();
                        let r = round;
                        tasks.push(tokio::spawn(async move {
                            for i in 0..PER_WRITER {
                                let mut batch = WriteBatch::new();
                                batch.put(
                                    format!("s/{w}/{i}").into_bytes(),
                                    format!("{r}-{w}-{i}-state-value-of-typical-size").into_bytes(),
                                );
                                let seq = c.submit(batch).unwrap();
                                c.wait_durable(seq).await.unwrap();
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    committer.shutdown();
}

criterion_group!(benches, durable_writes);
criterion_main!(benches);
