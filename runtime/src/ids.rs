//! Node-unique numeric ids (process ids, plugin instance ids), handed out from durable blocks.
//!
//! A block of ids is reserved by writing its upper bound and waiting for the flush; ids inside
//! the block need no I/O. A crash skips the rest of a block, which is fine: ids are unique,
//! not dense.

use std::collections::HashMap;

use agora_storage::{Committer, StorageError, WriteBatch};
use tokio::sync::Mutex;

use crate::keys;

const BLOCK: u64 = 1024;

pub(crate) struct IdAllocator {
    committer: Committer,
    ranges: Mutex<HashMap<String, (u64, u64)>>,
}

impl IdAllocator {
    pub fn new(committer: Committer) -> Self {
        Self {
            committer,
            ranges: Mutex::new(HashMap::new()),
        }
    }

    pub async fn next(&self, namespace: &str) -> Result<u64, StorageError> {
        let mut ranges = self.ranges.lock().await;
        if let Some((next, limit)) = ranges.get_mut(namespace) {
            if *next < *limit {
                *next += 1;
                return Ok(*next - 1);
            }
        }
        let key = keys::ids(namespace);
        let start = match ranges.get(namespace) {
            Some((_, limit)) => *limit,
            None => match self.committer.engine().get(&key)? {
                Some(v) => u64::from_be_bytes(v.as_slice().try_into().unwrap_or([0; 8])),
                None => 1,
            },
        };
        let limit = start + BLOCK;
        let mut batch = WriteBatch::new();
        batch.put(key, limit.to_be_bytes().to_vec());
        let seq = self.committer.submit(batch)?;
        self.committer.wait_durable(seq).await?;
        ranges.insert(namespace.to_string(), (start + 1, limit));
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_storage::{Engine, SledEngine};
    use std::sync::Arc;

    #[tokio::test]
    async fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            let engine: Arc<dyn Engine> = Arc::new(SledEngine::open(dir.path()).unwrap());
            let c = Committer::start(engine);
            let ids = IdAllocator::new(c.clone());
            for _ in 0..1500 {
                assert!(seen.insert(ids.next("p").await.unwrap()));
            }
            c.shutdown();
        }
    }
}
