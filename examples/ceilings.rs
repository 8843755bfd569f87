//! The ceilings issue 14's targets are fractions of, re-measurable on whatever host the sitting
//! runs on:
//! - `GET /json`: axum answering a small JSON body with nothing behind it;
//! - `GET /actor`: the same answer fetched from an actix actor first (one actor hop);
//! - `GET /write`: the actor also writes one fresh key through our group committer on real
//!   sled, and the answer waits until it is flushed: the floor under a durable write over
//!   HTTP, with none of the node's parsing, validation, activation or encoding.
//!
//! The layout is the node's: a tokio multi-thread runtime with one worker per core for HTTP,
//! an actix `System` with one arbiter per core for actors, mimalloc as the allocator. The
//! committer's ceiling without HTTP is `cargo bench -p agora-storage --bench group_commit`.
//!
//! `cargo run --release --example ceilings -- 127.0.0.1:18070 $(mktemp -d)` (an empty directory:
//! keys restart at 0, so a reused one would be overwritten rather than grown), then
//! `wrk -t2 -c64 -d10s http://127.0.0.1:18070/json` (and `/actor`, `/write`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message};
use agora_storage::{CommitSeq, Committer, SledEngine, WriteBatch};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Serialize)]
struct Answer {
    slug: &'static str,
    readable_name: &'static str,
    plugins: [&'static str; 0],
    served: u64,
}

struct Holder {
    served: u64,
    committer: Committer,
    /// Keys this actor writes start with it, so every write is a fresh key, as a create's is.
    prefix: String,
}

impl Actor for Holder {
    type Context = Context<Self>;
}

struct Get;

impl Message for Get {
    type Result = Answer;
}

impl Handler<Get> for Holder {
    type Result = actix::MessageResult<Get>;

    fn handle(&mut self, _: Get, _: &mut Context<Self>) -> Self::Result {
        self.served += 1;
        actix::MessageResult(answer(self.served))
    }
}

struct Write;

impl Message for Write {
    type Result = Option<(Answer, CommitSeq)>;
}

impl Handler<Write> for Holder {
    type Result = actix::MessageResult<Write>;

    fn handle(&mut self, _: Write, _: &mut Context<Self>) -> Self::Result {
        self.served += 1;
        let mut batch = WriteBatch::new();
        batch.put(
            format!("{}{:012}", self.prefix, self.served),
            b"{\"slug\":\"bench\"}".to_vec(),
        );
        let seq = self.committer.submit(batch).ok();
        actix::MessageResult(seq.map(|seq| (answer(self.served), seq)))
    }
}

fn answer(served: u64) -> Answer {
    Answer {
        slug: "bench",
        readable_name: "Bench",
        plugins: [],
        served,
    }
}

/// One actor per arbiter; requests take turns, as the node spreads actors over its arbiters.
struct Actors {
    addrs: Vec<Addr<Holder>>,
    next: AtomicUsize,
    committer: Committer,
}

impl Actors {
    fn next(&self) -> &Addr<Holder> {
        &self.addrs[self.next.fetch_add(1, Ordering::Relaxed) % self.addrs.len()]
    }
}

async fn via_actor(State(actors): State<Arc<Actors>>) -> Json<Answer> {
    // The actor lives as long as its arbiter, which outlives the server.
    Json(actors.next().send(Get).await.unwrap_or_else(|_| answer(0)))
}

async fn durable_write(State(actors): State<Arc<Actors>>) -> Result<Json<Answer>, StatusCode> {
    let (answer, seq) = actors
        .next()
        .send(Write)
        .await
        .ok()
        .flatten()
        .ok_or(StatusCode::SERVICE_UNAVAILABLE)?;
    actors
        .committer
        .wait_durable(seq)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Json(answer))
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18070".into());
    let data_dir = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "/tmp/agora-ceilings-db".into());
    let engine =
        SledEngine::open(std::path::Path::new(&data_dir)).map_err(std::io::Error::other)?;
    let committer = Committer::start(Arc::new(engine));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let system = actix::System::new();
    let addrs = (0..cores)
        .map(|i| {
            let arbiter = actix::Arbiter::new();
            let committer = committer.clone();
            Holder::start_in_arbiter(&arbiter.handle(), move |_| Holder {
                served: 0,
                committer,
                prefix: format!("w/{i}/"),
            })
        })
        .collect();
    let actors = Arc::new(Actors {
        addrs,
        next: AtomicUsize::new(0),
        committer,
    });
    let http = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let app = Router::new()
        .route("/json", get(|| async { Json(answer(0)) }))
        .route("/actor", get(via_actor))
        .route("/write", get(durable_write))
        .with_state(actors);
    // Bound here, so a port in use fails the start instead of a thread nobody joins.
    let listener = std::net::TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        http.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app).await
        })
    });
    system.run()
}
