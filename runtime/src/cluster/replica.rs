//! The partition replica in Redis: every commit is fenced and mirrored there before sled sees
//! it, and a node taking a partition over rebuilds its sled copy from it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_storage::{Replicator, WriteBatch};
use redis::aio::ConnectionManager;

use super::{data_key, lease_key, Cluster};
use crate::keys;
use crate::node::Shared;

/// Checks the token of every partition first (`KEYS[2i-1]` its lease), then applies the writes
/// to each partition's hash (`KEYS[2i]`) and appends journal entries (the audit log) to the
/// stream `KEYS[2n+1]`. `ARGV`: n, m, n tokens, then per partition a count and that many
/// (op, field, value) triples, op `P` (put) or `D` (delete), then m journal entries.
const COMMIT: &str = r"
local n = tonumber(ARGV[1])
local m = tonumber(ARGV[2])
for p = 1, n do
  if redis.call('GET', KEYS[2 * p - 1]) ~= ARGV[2 + p] then
    return redis.error_reply('FENCED ' .. KEYS[2 * p - 1])
  end
end
local i = n + 3
for p = 1, n do
  local count = tonumber(ARGV[i])
  i = i + 1
  for j = 1, count do
    if ARGV[i] == 'P' then
      redis.call('HSET', KEYS[2 * p], ARGV[i + 1], ARGV[i + 2])
    else
      redis.call('HDEL', KEYS[2 * p], ARGV[i + 1])
    end
    i = i + 3
  end
end
for j = 1, m do
  redis.call('XADD', KEYS[2 * n + 1], '*', 'e', ARGV[i])
  i = i + 1
end
return n";

/// The cluster's audit log: one stream, in commit order across nodes.
pub(crate) const JOURNAL_STREAM: &str = "agora:journal";

/// One partition's writes in a batch: key, and value (`None`: delete).
type Writes<'a> = Vec<(&'a [u8], Option<&'a [u8]>)>;
/// One HSCAN page: the next cursor and field/value pairs.
type ScanPage = (u64, Vec<(Vec<u8>, Vec<u8>)>);

/// Redis commands wait at most this long on the commit path.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct ClusterReplicator {
    cluster: Arc<Cluster>,
    con: Mutex<Option<redis::Connection>>,
    script: redis::Script,
}

impl ClusterReplicator {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            con: Mutex::new(None),
            script: redis::Script::new(COMMIT),
        }
    }
}

impl Replicator for ClusterReplicator {
    fn replicate(&self, batch: &WriteBatch) -> Result<(), String> {
        // Partition → its writes, in batch order (a later write to a key wins in Redis too).
        let mut parts: BTreeMap<u32, Writes<'_>> = BTreeMap::new();
        let mut journal: Vec<&[u8]> = Vec::new();
        for (k, v) in &batch.ops {
            if let Some(p) = keys::partition_of_key(k) {
                parts.entry(p).or_default().push((k, v.as_deref()));
            } else if let (true, Some(v)) = (keys::parse_journal(k).is_some(), v) {
                journal.push(v);
            }
        }
        if parts.is_empty() && journal.is_empty() {
            return Ok(());
        }
        let mut inv = self.script.prepare_invoke();
        let mut tokens = Vec::with_capacity(parts.len());
        for p in parts.keys() {
            let token = self
                .cluster
                .token(*p)
                .ok_or_else(|| format!("this node does not hold partition {p}"))?;
            inv.key(lease_key(*p)).key(data_key(*p));
            tokens.push(token);
        }
        inv.key(JOURNAL_STREAM);
        inv.arg(parts.len()).arg(journal.len());
        for t in &tokens {
            inv.arg(t.as_str());
        }
        for ops in parts.values() {
            inv.arg(ops.len());
            for (k, v) in ops {
                match v {
                    Some(v) => inv.arg("P").arg(*k).arg(*v),
                    None => inv.arg("D").arg(*k).arg(""),
                };
            }
        }
        for entry in &journal {
            inv.arg(*entry);
        }
        let mut guard = self.con.lock().unwrap_or_else(|e| e.into_inner());
        // A connection broken while Redis restarted fails once; a fresh one may not.
        for attempt in 0..2 {
            if guard.is_none() {
                let con = self
                    .cluster
                    .client
                    .get_connection_with_timeout(IO_TIMEOUT)
                    .map_err(|e| format!("Redis is unreachable: {e}"))?;
                con.set_read_timeout(Some(IO_TIMEOUT))
                    .and_then(|_| con.set_write_timeout(Some(IO_TIMEOUT)))
                    .map_err(|e| format!("Redis is unreachable: {e}"))?;
                *guard = Some(con);
            }
            let con = guard.as_mut().ok_or("no Redis connection")?;
            match inv.invoke::<i64>(con) {
                Ok(_) => return Ok(()),
                Err(e) if e.to_string().contains("FENCED") => {
                    return Err(format!("the replica refused the commit: {e}"))
                }
                Err(e) => {
                    *guard = None;
                    // Only a connection-level failure is worth a second try; the script only
                    // sets and deletes fields, so repeating one that did run is harmless.
                    if attempt == 1 || !(e.is_io_error() || e.is_connection_dropped()) {
                        return Err(format!("the replica refused the commit: {e}"));
                    }
                }
            }
        }
        Err("the replica could not be reached".into())
    }
}

/// Rebuilds partition `p` in sled from its replica, then schedules its reminders and queues
/// its outbox and its pending actor messages. Answers how many records it holds.
pub(crate) async fn take_over(
    shared: &Arc<Shared>,
    _cluster: &Arc<Cluster>,
    con: &mut ConnectionManager,
    p: u32,
) -> Result<usize, String> {
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, chunk): ScanPage = redis::cmd("HSCAN")
            .arg(data_key(p))
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await
            .map_err(|e| e.to_string())?;
        records.extend(chunk);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let engine = shared.engine().clone();
    let prefix = keys::partition(p);
    let mut batch = WriteBatch::new();
    // What this node kept from an earlier ownership may be stale: the replica is the truth.
    for (k, _) in engine.scan_prefix(&prefix).map_err(|e| e.to_string())? {
        batch.delete(k);
    }
    let n = records.len();
    for (k, v) in records {
        if k.starts_with(&prefix) {
            batch.put(k, v);
        }
    }
    let seq = shared
        .committer
        .submit_local(batch)
        .map_err(|e| e.to_string())?;
    shared
        .committer
        .wait_durable(seq)
        .await
        .map_err(|e| e.to_string())?;
    let kinds: Vec<&'static str> = shared
        .fire
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .copied()
        .collect();
    shared
        .scheduler
        .load_partition(&engine, p, &kinds)
        .map_err(|e| e.to_string())?;
    shared
        .outbox
        .load_partition(&engine, p, &shared.outbox_seq)
        .map_err(|e| e.to_string())?;
    shared
        .courier
        .load_partition(&engine, p, &shared.message_seq)
        .map_err(|e| e.to_string())?;
    Ok(n)
}
