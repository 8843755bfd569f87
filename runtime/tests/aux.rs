//! Auxiliary records for any actor kind: whether restore loads them, point reads and paged
//! prefix scans from handlers (which see the actor's own writes still in flight to storage),
//! and the read path from outside the actor (which shows only what is durable).
//!
//! A gated engine holds commits back, so "in flight" is a state the tests can stand in rather
//! than a race they hope to hit.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use agora_runtime::{
    ActorId, Effects, Message, Reminder, RestoreAux, Runtime, RuntimeConfig, Stored, SystemClock,
    VirtualActor,
};
use agora_storage::{Engine, MemEngine, Pairs, StorageError, Visit, WriteBatch};

/// What a handler saw, published as it ran (its answer only arrives once durable).
type Seen = Arc<Mutex<Vec<Reply>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Done,
    Value(Option<Vec<u8>>),
    Page(Vec<(Vec<u8>, Vec<u8>)>),
    Restored(usize),
}

enum Cmd {
    Put(&'static str, &'static str),
    Delete(&'static str),
    /// `count` records `item/<i>` from `from`, valued `v<i>`, in one commit.
    PutMany {
        from: u32,
        count: u32,
    },
    /// Deletes every `step`-th `item/<i>` below `below` and rewrites every `step+1`-th.
    Churn {
        below: u32,
        step: u32,
    },
    Get(&'static str),
    /// Pages through everything under `prefix`, `page` at a time, inside one handler.
    ScanAll {
        prefix: &'static str,
        page: usize,
    },
    /// How many records restore handed over.
    Restored,
}

fn item(i: u32) -> String {
    format!("item/{i:06}")
}

/// Handles `Cmd`, reading its records on demand.
fn handle(restored: usize, cmd: Cmd, fx: &mut Effects) -> Reply {
    match cmd {
        Cmd::Put(k, v) => {
            fx.put_aux(k.as_bytes(), v.as_bytes().to_vec());
            Reply::Done
        }
        Cmd::Delete(k) => {
            fx.delete_aux(k.as_bytes());
            Reply::Done
        }
        Cmd::PutMany { from, count } => {
            for i in from..from + count {
                fx.put_aux(item(i), format!("v{i}").into_bytes());
            }
            Reply::Done
        }
        Cmd::Churn { below, step } => {
            for i in (0..below).step_by(step as usize) {
                fx.delete_aux(item(i));
            }
            for i in (1..below).step_by(step as usize + 1) {
                fx.put_aux(item(i), format!("w{i}").into_bytes());
            }
            Reply::Done
        }
        Cmd::Get(k) => Reply::Value(fx.get_aux(k.as_bytes()).unwrap()),
        Cmd::ScanAll { prefix, page } => {
            let mut all: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            loop {
                let after = all.last().map(|(k, _)| k.clone());
                let got = fx
                    .scan_aux(prefix.as_bytes(), after.as_deref(), page)
                    .unwrap();
                assert!(got.len() <= page);
                let last = got.len() < page;
                all.extend(got);
                if last {
                    break;
                }
            }
            Reply::Page(all)
        }
        Cmd::Restored => Reply::Restored(restored),
    }
}

/// Many records, read on demand: restore loads none.
struct Ledger {
    restored: usize,
    seen: Seen,
}

impl VirtualActor for Ledger {
    const KIND: &'static str = "ledger";
    const RESTORE_AUX: bool = false;
    type Env = Seen;

    fn restore(_: &ActorId, env: &Seen, stored: Stored) -> Result<Self, String> {
        Ok(Ledger {
            restored: stored.aux.len(),
            seen: env.clone(),
        })
    }
    fn on_reminder(&mut self, _: &Seen, _: Reminder, _: &mut Effects) {}
}

impl Message<Ledger> for Cmd {
    type Reply = Reply;
    fn handle(self, l: &mut Ledger, _: &Seen, fx: &mut Effects) -> Reply {
        let reply = handle(l.restored, self, fx);
        l.seen.lock().unwrap().push(reply.clone());
        reply
    }
}

/// A few records kept in memory (the vote's way): restore loads them all.
struct Ballots {
    restored: usize,
}

impl VirtualActor for Ballots {
    const KIND: &'static str = "ballots";
    type Env = ();

    fn restore(_: &ActorId, _: &(), stored: Stored) -> Result<Self, String> {
        Ok(Ballots {
            restored: stored.aux.len(),
        })
    }
    fn on_reminder(&mut self, _: &(), _: Reminder, _: &mut Effects) {}
}

impl Message<Ballots> for Cmd {
    type Reply = Reply;
    fn handle(self, b: &mut Ballots, _: &(), fx: &mut Effects) -> Reply {
        handle(b.restored, self, fx)
    }
}

/// Many records read on demand, and a few (its state's entries) that restore loads by prefix.
struct Indexed {
    restored: Vec<(Vec<u8>, Vec<u8>)>,
}

impl VirtualActor for Indexed {
    const KIND: &'static str = "indexed";
    const RESTORE_AUX: bool = false;
    const RESTORE_AUX_PREFIXES: &'static [&'static [u8]] = &[b"s/", b"keep/"];
    type Env = ();

    fn restore(_: &ActorId, _: &(), stored: Stored) -> Result<Self, String> {
        Ok(Indexed {
            restored: stored.aux,
        })
    }
    fn on_reminder(&mut self, _: &(), _: Reminder, _: &mut Effects) {}
}

impl Message<Indexed> for Cmd {
    type Reply = Reply;
    fn handle(self, x: &mut Indexed, _: &(), fx: &mut Effects) -> Reply {
        match self {
            Cmd::Restored => Reply::Page(x.restored.clone()),
            cmd => handle(x.restored.len(), cmd, fx),
        }
    }
}

type Taken = Arc<Mutex<Vec<Vec<u8>>>>;

/// `Indexed`'s records, taken one at a time as restore reads them: a record `s/bad` makes the
/// restore fail, and nothing after it is taken.
struct Streamed {
    restored: Vec<(Vec<u8>, Vec<u8>)>,
}

impl VirtualActor for Streamed {
    const KIND: &'static str = "streamed";
    const RESTORE_AUX: bool = false;
    const RESTORE_AUX_PREFIXES: &'static [&'static [u8]] = &[b"s/", b"keep/"];
    type Env = Taken;

    fn restore(_: &ActorId, _: &Self::Env, _: Stored) -> Result<Self, String> {
        Err("activation restores this kind through restore_streamed".into())
    }
    fn restore_streamed(
        _: &ActorId,
        taken: &Self::Env,
        _: Option<Vec<u8>>,
        aux: RestoreAux<'_>,
    ) -> Result<Self, String> {
        let mut restored = Vec::new();
        aux.for_each(|k, v| {
            taken.lock().unwrap().push(k.to_vec());
            if k == b"s/bad" {
                return Err("a record restore cannot read".into());
            }
            restored.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(Streamed { restored })
    }
    fn on_reminder(&mut self, _: &Self::Env, _: Reminder, _: &mut Effects) {}
}

impl Message<Streamed> for Cmd {
    type Reply = Reply;
    fn handle(self, x: &mut Streamed, _: &Taken, fx: &mut Effects) -> Reply {
        match self {
            Cmd::Restored => Reply::Page(x.restored.clone()),
            cmd => handle(x.restored.len(), cmd, fx),
        }
    }
}

/// An engine whose commits can be held back (the committer thread waits in `apply`).
#[derive(Default)]
struct Gated {
    inner: MemEngine,
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gated {
    fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }
    fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }
}

impl Engine for Gated {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StorageError> {
        self.inner.scan_prefix(prefix)
    }
    fn visit_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StorageError> {
        self.inner.visit_prefix(prefix, visit)
    }
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.last_with_prefix(prefix)
    }
    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Pairs, StorageError> {
        self.inner.scan_from(prefix, from, limit)
    }
    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
        drop(closed);
        self.inner.apply(batch)
    }
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}

fn start(engine: Arc<Gated>, seen: &Seen) -> Runtime {
    start_taking(engine, seen, Arc::default())
}

/// [`start`], with `taken` collecting the sub-keys `Streamed` restores take.
fn start_taking(engine: Arc<Gated>, seen: &Seen, taken: Taken) -> Runtime {
    let rt = Runtime::start(RuntimeConfig::default(), engine, Arc::new(SystemClock)).unwrap();
    rt.register::<Ledger>(seen.clone());
    rt.register::<Ballots>(());
    rt.register::<Indexed>(());
    rt.register::<Streamed>(taken);
    rt
}

/// Sends `cmd` without waiting for its (durable) answer, but after its handler has run: the
/// commands of one test reach the actor in the order the test sends them (spawned tasks alone
/// would race to the mailbox).
async fn ask_later(rt: &Runtime, seen: &Seen, cmd: Cmd) -> tokio::task::JoinHandle<Reply> {
    let handled = seen.lock().unwrap().len();
    let rt = rt.clone();
    let ask = tokio::spawn(async move { rt.ask::<Ledger, _>("l", cmd).await.unwrap() });
    seen_after(seen, handled + 1).await;
    ask
}

/// Waits until the handler has run `n` commands in all, and answers what the last one saw.
async fn seen_after(seen: &Seen, n: usize) -> Reply {
    for _ in 0..400 {
        if let Some(r) = seen.lock().unwrap().get(n - 1) {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the handler never ran command {n}");
}

fn value(s: &str) -> Reply {
    Reply::Value(Some(s.as_bytes().to_vec()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_loads_every_record_or_none_as_the_kind_says() {
    let engine = Arc::new(Gated::default());
    let seen = Seen::default();
    let rt = start(engine.clone(), &seen);
    rt.ask::<Ledger, _>(
        "l",
        Cmd::PutMany {
            from: 0,
            count: 300,
        },
    )
    .await
    .unwrap();
    rt.ask::<Ballots, _>(
        "b",
        Cmd::PutMany {
            from: 0,
            count: 300,
        },
    )
    .await
    .unwrap();
    rt.shutdown();

    let rt = start(engine, &seen);
    assert_eq!(
        rt.ask::<Ledger, _>("l", Cmd::Restored).await.unwrap(),
        Reply::Restored(0)
    );
    assert_eq!(
        rt.ask::<Ballots, _>("b", Cmd::Restored).await.unwrap(),
        Reply::Restored(300)
    );
    // Not loaded is not lost: the records are there to read.
    assert_eq!(
        rt.ask::<Ledger, _>("l", Cmd::Get("item/000299"))
            .await
            .unwrap(),
        value("v299")
    );
    assert_eq!(
        rt.ask::<Ballots, _>("b", Cmd::Get("item/000007"))
            .await
            .unwrap(),
        value("v7")
    );
    rt.shutdown();
}

/// Records under the restore prefixes `s/` and `keep/`, written out of order, and two whose keys
/// only look like them.
const UNDER_AND_BESIDE: [(&str, &str); 5] = [
    ("s/b", "2"),
    ("keep/z", "3"),
    ("s/a", "1"),
    ("s", "not under s/"),
    ("kee", "not under keep/"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_loads_the_records_under_the_prefixes_the_kind_names_and_only_those() {
    let engine = Arc::new(Gated::default());
    let seen = Seen::default();
    let rt = start(engine.clone(), &seen);
    let ask = |cmd| rt.ask::<Indexed, _>("x", cmd);
    ask(Cmd::PutMany {
        from: 0,
        count: 300,
    })
    .await
    .unwrap();
    for (k, v) in UNDER_AND_BESIDE.into_iter().chain([("s/gone", "x")]) {
        ask(Cmd::Put(k, v)).await.unwrap();
    }
    ask(Cmd::Delete("s/gone")).await.unwrap();
    // Another actor of the kind: its records are its own.
    rt.ask::<Indexed, _>("y", Cmd::Put("s/other", "o"))
        .await
        .unwrap();
    rt.shutdown();

    let rt = start(engine, &seen);
    let pair = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
    assert_eq!(
        rt.ask::<Indexed, _>("x", Cmd::Restored).await.unwrap(),
        Reply::Page(vec![
            pair("s/a", "1"),
            pair("s/b", "2"),
            pair("keep/z", "3")
        ])
    );
    // The rest is read on demand.
    assert_eq!(
        rt.ask::<Indexed, _>("x", Cmd::Get("item/000042"))
            .await
            .unwrap(),
        value("v42")
    );
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_that_streams_its_restore_takes_the_same_records_one_at_a_time() {
    let engine = Arc::new(Gated::default());
    let seen = Seen::default();
    let rt = start(engine.clone(), &seen);
    for key in ["x", "bad"] {
        let ask = |cmd| rt.ask::<Streamed, _>(key, cmd);
        ask(Cmd::PutMany {
            from: 0,
            count: 300,
        })
        .await
        .unwrap();
        for (k, v) in UNDER_AND_BESIDE {
            ask(Cmd::Put(k, v)).await.unwrap();
        }
    }
    rt.ask::<Streamed, _>("bad", Cmd::Put("s/bad", "?"))
        .await
        .unwrap();
    rt.shutdown();

    let taken = Arc::new(Mutex::new(Vec::new()));
    let rt = start_taking(engine, &seen, taken.clone());
    let pair = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
    assert_eq!(
        rt.ask::<Streamed, _>("x", Cmd::Restored).await.unwrap(),
        Reply::Page(vec![
            pair("s/a", "1"),
            pair("s/b", "2"),
            pair("keep/z", "3")
        ])
    );
    assert_eq!(
        taken.lock().unwrap().len(),
        3,
        "only the records under the prefixes"
    );
    // A record the kind cannot take fails the restore: the actor answers an error, not a
    // state missing what followed, and nothing after that record is read.
    taken.lock().unwrap().clear();
    assert!(rt.ask::<Streamed, _>("bad", Cmd::Restored).await.is_err());
    assert_eq!(
        *taken.lock().unwrap(),
        vec![b"s/a".to_vec(), b"s/b".to_vec(), b"s/bad".to_vec()]
    );
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_read_their_own_writes_in_flight_and_outside_readers_only_durable_ones() {
    let engine = Arc::new(Gated::default());
    let seen = Seen::default();
    let rt = start(engine.clone(), &seen);
    rt.ask::<Ledger, _>("l", Cmd::Put("a", "1")).await.unwrap();
    rt.ask::<Ledger, _>("l", Cmd::Put("gone", "x"))
        .await
        .unwrap();

    engine.close();
    let writes = vec![
        ask_later(&rt, &seen, Cmd::Put("a", "2")).await,
        ask_later(&rt, &seen, Cmd::Delete("gone")).await,
        ask_later(&rt, &seen, Cmd::Put("new", "3")).await,
    ];
    // Every write has been handled (and so submitted) before the outside read starts.
    seen_after(&seen, 5).await;
    // Outside, mid-flight: what storage held durably before (the read waits for the writes
    // in flight, but answers what it read).
    let outside_get = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.read_aux::<Ledger>("l", b"a").await.unwrap() })
    };
    let outside_scan = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.scan_aux::<Ledger>("l", b"", None, 10).await.unwrap() })
    };
    let reads = [
        ask_later(&rt, &seen, Cmd::Get("a")).await,
        ask_later(&rt, &seen, Cmd::Get("gone")).await,
        ask_later(&rt, &seen, Cmd::Get("new")).await,
        ask_later(
            &rt,
            &seen,
            Cmd::ScanAll {
                prefix: "",
                page: 2,
            },
        )
        .await,
    ];
    // The handlers ran while storage still had none of it.
    assert_eq!(seen_after(&seen, 6).await, value("2"));
    assert_eq!(seen_after(&seen, 7).await, Reply::Value(None));
    assert_eq!(seen_after(&seen, 8).await, value("3"));
    assert_eq!(
        seen_after(&seen, 9).await,
        Reply::Page(vec![
            (b"a".to_vec(), b"2".to_vec()),
            (b"new".to_vec(), b"3".to_vec()),
        ])
    );
    assert_eq!(engine.inner.get(b"no such key").unwrap(), None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !outside_get.is_finished() && !outside_scan.is_finished(),
        "an outside read waits for what is in flight"
    );
    assert!(
        writes.iter().chain(&reads).all(|t| !t.is_finished()),
        "nothing is acknowledged before it is durable"
    );

    engine.open();
    for t in writes.into_iter().chain(reads) {
        t.await.unwrap();
    }
    assert_eq!(outside_get.await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        outside_scan.await.unwrap(),
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"gone".to_vec(), b"x".to_vec())
        ]
    );
    // Durable now: outside readers see it too.
    assert_eq!(
        rt.read_aux::<Ledger>("l", b"a").await.unwrap(),
        Some(b"2".to_vec())
    );
    assert_eq!(rt.read_aux::<Ledger>("l", b"gone").await.unwrap(), None);
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_scan_covers_many_records_with_some_still_in_flight() {
    const N: u32 = 5000;
    let engine = Arc::new(Gated::default());
    let seen = Seen::default();
    let rt = start(engine.clone(), &seen);
    // Durable: 0..4000, in commits of 500, plus a record under another prefix.
    for from in (0..4000).step_by(500) {
        rt.ask::<Ledger, _>("l", Cmd::PutMany { from, count: 500 })
            .await
            .unwrap();
    }
    rt.ask::<Ledger, _>("l", Cmd::Put("other/1", "o"))
        .await
        .unwrap();
    let before = seen.lock().unwrap().len();
    // In flight: 4000..5000, and deletes and rewrites across the durable ones.
    engine.close();
    let writes = [
        ask_later(
            &rt,
            &seen,
            Cmd::PutMany {
                from: 4000,
                count: N - 4000,
            },
        )
        .await,
        ask_later(&rt, &seen, Cmd::Churn { below: N, step: 7 }).await,
    ];
    let scan = ask_later(
        &rt,
        &seen,
        Cmd::ScanAll {
            prefix: "item/",
            page: 97,
        },
    )
    .await;
    let mut expected = Vec::new();
    for i in 0..N {
        // Churn deletes first and rewrites after: a rewrite wins over a delete of the same.
        let v = if i % 8 == 1 {
            format!("w{i}")
        } else if i % 7 == 0 {
            continue;
        } else {
            format!("v{i}")
        };
        expected.push((item(i).into_bytes(), v.into_bytes()));
    }
    let Reply::Page(inside) = seen_after(&seen, before + 3).await else {
        panic!("not a page");
    };
    assert_eq!(inside.len(), expected.len());
    assert!(
        inside == expected,
        "the handler's scan differs from the writes it made"
    );
    engine.open();
    for t in writes {
        t.await.unwrap();
    }
    scan.await.unwrap();

    // Outside, once durable, page by page: the same records.
    let mut outside = Vec::new();
    loop {
        let after = outside.last().map(|(k, _): &(Vec<u8>, Vec<u8>)| k.clone());
        let page = rt
            .scan_aux::<Ledger>("l", b"item/", after.as_deref(), 250)
            .await
            .unwrap();
        let last = page.len() < 250;
        outside.extend(page);
        if last {
            break;
        }
    }
    assert!(outside == expected, "the durable scan differs");
    // The other prefix is not part of it, and reads from one prefix never leak another.
    assert_eq!(
        rt.scan_aux::<Ledger>("l", b"other/", None, 10)
            .await
            .unwrap(),
        vec![(b"other/1".to_vec(), b"o".to_vec())]
    );
    rt.shutdown();
}
