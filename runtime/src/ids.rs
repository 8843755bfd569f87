//! Unique numeric ids (process ids, plugin instance ids), handed out from durable blocks.
//!
//! A block of ids is reserved by writing its upper bound and waiting for the flush (in a
//! cluster: by `INCRBY` on one Redis counter, so ids are unique across nodes); ids inside the
//! block need no I/O. A crash skips the rest of a block, which is fine: ids are unique, not
//! dense.

use std::collections::HashMap;

use agora_storage::{Committer, StorageError, WriteBatch};
use tokio::sync::Mutex;

use crate::keys;

const BLOCK: u64 = 1024;

pub(crate) struct IdAllocator {
    committer: Committer,
    /// Cluster mode: blocks come from Redis.
    redis: Option<redis::Client>,
    ranges: Mutex<HashMap<String, (u64, u64)>>,
}

impl IdAllocator {
    pub fn new(committer: Committer, redis: Option<redis::Client>) -> Self {
        Self {
            committer,
            redis,
            ranges: Mutex::new(HashMap::new()),
        }
    }

    async fn redis_block(client: &redis::Client, namespace: &str) -> Result<u64, StorageError> {
        let unavailable =
            |e: String| StorageError::Rejected(format!("no id block from Redis: {e}"));
        let mut con = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| unavailable("timed out".into()))?
        .map_err(|e| unavailable(e.to_string()))?;
        let limit: u64 = redis::cmd("INCRBY")
            .arg(format!("agora:ids:{namespace}"))
            .arg(BLOCK)
            .query_async(&mut con)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(limit)
    }

    pub async fn next(&self, namespace: &str) -> Result<u64, StorageError> {
        let mut ranges = self.ranges.lock().await;
        if let Some((next, limit)) = ranges.get_mut(namespace) {
            if *next < *limit {
                *next += 1;
                return Ok(*next - 1);
            }
        }
        if let Some(client) = &self.redis {
            // Ids start at 1: the first block is [1, BLOCK].
            let limit = Self::redis_block(client, namespace).await? + 1;
            let start = limit - BLOCK;
            ranges.insert(namespace.to_string(), (start + 1, limit));
            return Ok(start);
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
            let ids = IdAllocator::new(c.clone(), None);
            for _ in 0..1500 {
                assert!(seen.insert(ids.next("p").await.unwrap()));
            }
            c.shutdown();
        }
    }
}
