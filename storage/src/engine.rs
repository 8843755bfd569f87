//! The ordered key-value engine behind a node: sled on disk, or a `BTreeMap` for tests.
//!
//! The trait is deliberately narrow (get, prefix scan or visit, atomic batch, flush) so that
//! replacing sled is a one-file change; the same test suite runs against both implementations.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::StorageError;

/// Writes applied atomically, in order; a later write to the same key wins.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }
}

/// Key-value pairs in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What [`Engine::visit_prefix`] calls with each pair (key, value); `Break` stops the visit.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

pub trait Engine: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StorageError>;
    /// Hands every pair whose key starts with `prefix` to `visit`, in key order, until it
    /// answers `Break`, without collecting them: for a scan too large to hold at once (an
    /// actor's restore reads its 100,000 records this way and keeps only what it decodes).
    /// `visit` must not use the engine (the in-memory engine holds its lock meanwhile).
    ///
    /// The default collects with [`Engine::scan_prefix`] (for wrappers in tests); both engines
    /// here stream.
    fn visit_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StorageError> {
        for (k, v) in self.scan_prefix(prefix)? {
            if visit(&k, &v).is_break() {
                break;
            }
        }
        Ok(())
    }
    /// The greatest key starting with `prefix`.
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// At most `limit` pairs whose key starts with `prefix` and is `>= from`, in key order.
    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Pairs, StorageError>;
    /// Applies every write of the batch atomically (all or none become visible).
    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError>;
    /// Applies a group of batches in order, each atomically; the group as a whole need not be
    /// (readers may see a prefix of it). The default merges them into one [`Engine::apply`].
    fn apply_group(&self, group: Vec<WriteBatch>) -> Result<(), StorageError> {
        let mut merged = WriteBatch::new();
        for b in group {
            merged.extend(b);
        }
        self.apply(merged)
    }
    /// Makes every applied write durable. Blocking: call it from the committer thread only.
    fn flush(&self) -> Result<(), StorageError>;
    /// Bytes on disk, when the engine knows.
    fn size_on_disk(&self) -> Option<u64>;
}

/// sled, one database per node. sled holds a file lock, so one process per data directory.
pub struct SledEngine {
    db: sled::Db,
}

impl SledEngine {
    /// Opens (or creates) the database in `dir` with the default page cache (128 MiB).
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with_cache(dir, 128 * 1024 * 1024)
    }

    /// Opens the database with a page cache of `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StorageError> {
        Self::open_waiting(dir, cache_bytes, LOCK_WAIT)
    }

    /// Opens, waiting up to `wait` while the directory's lock is taken. sled 0.34 lets go of
    /// its lock only when its last internal reference goes, which can trail the drop of a
    /// database handle by a few milliseconds (its I/O pool, epoch-deferred buffers:
    /// spacejam/sled#1234), so opening again in the same process (a restart in a test, the
    /// CLI after a check) can find it still taken. Another process's lock is still an error,
    /// after the wait.
    fn open_waiting(dir: &Path, cache_bytes: u64, wait: Duration) -> Result<Self, StorageError> {
        let deadline = Instant::now() + wait;
        loop {
            let opened = sled::Config::new()
                .path(dir)
                // Our committer flushes explicitly; sled's own periodic flush only adds I/O.
                .flush_every_ms(None)
                .cache_capacity(cache_bytes)
                .open();
            match opened {
                Ok(db) => return Ok(Self { db }),
                Err(sled::Error::Io(e))
                    if e.to_string().starts_with(LOCK_TAKEN) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// How long opening waits for sled to release a directory's lock (see `open_waiting`).
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// How sled 0.34 words a lock it could not take (an `io::ErrorKind::Other`, so the text is
/// all there is to go by).
const LOCK_TAKEN: &str = "could not acquire lock";

impl Engine for SledEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StorageError> {
        self.db
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn visit_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StorageError> {
        // sled hands out its own buffers (shared, not copied), one pair at a time.
        for kv in self.db.scan_prefix(prefix) {
            let (k, v) = kv?;
            if visit(&k, &v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.db.scan_prefix(prefix).next_back() {
            Some(kv) => Ok(Some(kv?.0.to_vec())),
            None => Ok(None),
        }
    }

    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Pairs, StorageError> {
        let start = if from > prefix { from } else { prefix };
        self.db
            .range(start..)
            .take_while(|kv| {
                kv.as_ref()
                    .map(|(k, _)| k.starts_with(prefix))
                    .unwrap_or(true)
            })
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b)?;
        Ok(())
    }

    fn apply_group(&self, group: Vec<WriteBatch>) -> Result<(), StorageError> {
        // sled's `apply_batch` holds its global lock exclusively, so every reader (an actor
        // activating, a list) waits out the whole group. A batch of one key is atomic as a
        // plain insert, which takes the lock's shared side only. So the group's leading
        // one-key batches go in as inserts, and the rest, from its first batch of several
        // keys on, as one `apply_batch`: in order, and at most one exclusive hold per group.
        let mut rest = group.into_iter().peekable();
        while let Some(b) = rest.next_if(|b| b.len() == 1) {
            for (k, v) in b.ops {
                match v {
                    Some(v) => self.db.insert(k, v)?,
                    None => self.db.remove(k)?,
                };
            }
        }
        let mut merged = WriteBatch::new();
        for b in rest {
            merged.extend(b);
        }
        if merged.is_empty() {
            return Ok(());
        }
        self.apply(merged)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.db.size_on_disk().ok()
    }
}

/// An in-memory engine with the same semantics, for tests of the layers above.
#[derive(Default)]
pub struct MemEngine {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemEngine {
    pub fn new() -> Self {
        Self::default()
    }
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A panic while holding this lock can only come from a bug in this file; the map itself
        // is never left half-written, so recovering the guard is sound.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine for MemEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map().get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StorageError> {
        Ok(self
            .map()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn visit_prefix(&self, prefix: &[u8], visit: &mut Visit<'_>) -> Result<(), StorageError> {
        let map = self.map();
        for (k, v) in map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .map()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .last()
            .map(|(k, _)| k.clone()))
    }

    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Pairs, StorageError> {
        let start = if from > prefix { from } else { prefix };
        Ok(self
            .map()
            .range(start.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut map = self.map();
        for (k, v) in batch.ops {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engines() -> Vec<(Box<dyn Engine>, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let sled = SledEngine::open(dir.path()).unwrap();
        vec![
            (Box::new(MemEngine::new()), None),
            (Box::new(sled), Some(dir)),
        ]
    }

    #[test]
    fn batch_is_applied_in_order_and_last_write_wins() {
        for (e, _dir) in engines() {
            let mut b = WriteBatch::new();
            b.put(b"a/1".to_vec(), b"x".to_vec());
            b.put(b"a/2".to_vec(), b"y".to_vec());
            b.put(b"a/1".to_vec(), b"z".to_vec());
            b.put(b"b/1".to_vec(), b"w".to_vec());
            e.apply(b).unwrap();
            assert_eq!(e.get(b"a/1").unwrap(), Some(b"z".to_vec()));
            let scanned = e.scan_prefix(b"a/").unwrap();
            assert_eq!(scanned.len(), 2);
            assert_eq!(e.last_with_prefix(b"a/").unwrap(), Some(b"a/2".to_vec()));
            let mut d = WriteBatch::new();
            d.delete(b"a/2".to_vec());
            e.apply(d).unwrap();
            assert_eq!(e.get(b"a/2").unwrap(), None);
            assert_eq!(e.last_with_prefix(b"a/").unwrap(), Some(b"a/1".to_vec()));
            assert_eq!(e.last_with_prefix(b"c/").unwrap(), None);
            let from = e.scan_from(b"a/", b"a/1\0", 10).unwrap();
            assert!(from.is_empty(), "a/2 was deleted; nothing after a/1");
            let all = e.scan_from(b"", b"", 10).unwrap();
            assert_eq!(all.len(), 2);
            assert_eq!(e.scan_from(b"a/", b"", 1).unwrap()[0].0, b"a/1".to_vec());
            e.flush().unwrap();
        }
    }

    #[test]
    fn visiting_a_prefix_sees_what_a_scan_answers_and_stops_when_asked() {
        for (e, _dir) in engines() {
            let mut b = WriteBatch::new();
            for (k, v) in [
                ("a", "0"),
                ("b/1", "x"),
                ("b/2", "yy"),
                ("b/3", "zzz"),
                ("c", "1"),
            ] {
                b.put(k.as_bytes().to_vec(), v.as_bytes().to_vec());
            }
            e.apply(b).unwrap();
            let mut seen: Pairs = Vec::new();
            e.visit_prefix(b"b/", &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(seen, e.scan_prefix(b"b/").unwrap());
            assert_eq!(seen.len(), 3);
            let mut first_two = Vec::new();
            e.visit_prefix(b"b/", &mut |k, _| {
                first_two.push(k.to_vec());
                if first_two.len() == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
            assert_eq!(first_two, vec![b"b/1".to_vec(), b"b/2".to_vec()]);
            let mut none = 0;
            e.visit_prefix(b"d", &mut |_, _| {
                none += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(none, 0);
        }
    }

    /// One-key batches, batches of several keys, then one-key batches again, touching the same
    /// keys: each engine must end as if every batch were applied one after the other.
    fn mixed_group() -> Vec<WriteBatch> {
        let one = |k: &str, v: Option<&str>| {
            let mut b = WriteBatch::new();
            match v {
                Some(v) => b.put(k.as_bytes().to_vec(), v.as_bytes().to_vec()),
                None => b.delete(k.as_bytes().to_vec()),
            }
            b
        };
        let mut several = WriteBatch::new();
        several.put(b"g/a".to_vec(), b"2".to_vec());
        several.put(b"g/b".to_vec(), b"2".to_vec());
        several.delete(b"g/c".to_vec());
        vec![
            one("g/a", Some("1")),
            one("g/c", Some("1")),
            one("g/d", Some("1")),
            several,
            one("g/b", Some("3")),
            one("g/d", None),
            one("g/e", Some("1")),
        ]
    }

    fn expect_mixed_group(e: &dyn Engine) {
        let kv = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
        assert_eq!(
            e.scan_prefix(b"g/").unwrap(),
            vec![kv("g/a", "2"), kv("g/b", "3"), kv("g/e", "1")]
        );
    }

    #[test]
    fn a_group_ends_as_its_batches_applied_in_order() {
        for (e, _dir) in engines() {
            e.apply_group(mixed_group()).unwrap();
            expect_mixed_group(e.as_ref());
            e.apply_group(Vec::new()).unwrap();
            expect_mixed_group(e.as_ref());
        }
    }

    #[test]
    fn sled_keeps_a_flushed_group_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let e = SledEngine::open(dir.path()).unwrap();
            e.apply_group(mixed_group()).unwrap();
            e.flush().unwrap();
        }
        expect_mixed_group(&SledEngine::open(dir.path()).unwrap());
    }

    #[test]
    fn opening_waits_for_a_lock_that_is_let_go_and_not_for_one_that_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let held = SledEngine::open(dir.path()).unwrap();
        let t0 = Instant::now();
        let refused = SledEngine::open_waiting(dir.path(), 1 << 20, Duration::from_millis(200));
        let waited = t0.elapsed();
        match refused {
            Err(StorageError::Io(m)) => assert!(m.contains(LOCK_TAKEN), "{m}"),
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("opened a directory another handle holds"),
        }
        assert!(
            waited >= Duration::from_millis(200),
            "gave up after {waited:?}"
        );
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        let reopened = SledEngine::open_waiting(dir.path(), 1 << 20, Duration::from_secs(10));
        release.join().unwrap();
        assert!(reopened.is_ok(), "{:?}", reopened.err());
    }

    #[test]
    fn opening_does_not_wait_on_other_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a file");
        std::fs::write(&file, b"not a directory").unwrap();
        let t0 = Instant::now();
        assert!(SledEngine::open_waiting(&file, 1 << 20, Duration::from_secs(10)).is_err());
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn sled_keeps_flushed_writes_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let e = SledEngine::open(dir.path()).unwrap();
            let mut b = WriteBatch::new();
            b.put(b"k".to_vec(), b"v".to_vec());
            e.apply(b).unwrap();
            e.flush().unwrap();
        }
        let e = SledEngine::open(dir.path()).unwrap();
        assert_eq!(e.get(b"k").unwrap(), Some(b"v".to_vec()));
    }
}
