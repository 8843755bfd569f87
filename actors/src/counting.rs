//! A test engine over [`MemEngine`] that counts what reaches storage: the records and bytes
//! each commit writes, and the prefix scans, so a test can say how much work a path did.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use agora_storage::{Engine, MemEngine, Pairs, StorageError, WriteBatch};

#[derive(Default)]
pub(crate) struct Counting {
    inner: MemEngine,
    records: AtomicUsize,
    bytes: AtomicUsize,
    scans: Mutex<Vec<Vec<u8>>>,
}

impl Counting {
    /// Records and bytes written since the last call.
    pub(crate) fn take(&self) -> (usize, usize) {
        (
            self.records.swap(0, Ordering::SeqCst),
            self.bytes.swap(0, Ordering::SeqCst),
        )
    }

    /// Prefix scans whose prefix contains `needle` since the last call.
    pub(crate) fn take_scans(&self, needle: &[u8]) -> usize {
        let mut scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        let n = scans
            .iter()
            .filter(|p| p.windows(needle.len()).any(|w| w == needle))
            .count();
        scans.clear();
        n
    }
}

impl Engine for Counting {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StorageError> {
        self.scans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(prefix.to_vec());
        self.inner.scan_prefix(prefix)
    }
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.last_with_prefix(prefix)
    }
    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Pairs, StorageError> {
        self.inner.scan_from(prefix, from, limit)
    }
    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.records.fetch_add(batch.ops.len(), Ordering::SeqCst);
        let bytes: usize = batch
            .ops
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        self.bytes.fetch_add(bytes, Ordering::SeqCst);
        self.inner.apply(batch)
    }
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}
