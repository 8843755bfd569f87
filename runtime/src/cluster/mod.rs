//! Cluster mode: many nodes behind one Redis.
//!
//! - **Membership.** Each node heartbeats into the sorted set `agora:nodes` (score: Redis's
//!   clock) and announces joins and departures on `agora:members`; a node missing heartbeats
//!   for `node_ttl` is gone.
//! - **Placement.** Partition `p` belongs to the live node with the highest rendezvous score
//!   `hash(p, node)`, so a join or departure moves only that node's share.
//! - **Leases and fencing.** A node serves `p` only while it holds `agora:lease:<p>`, whose value
//!   `<node>:<epoch>` carries a fencing token from `INCR agora:epoch:<p>`. It stops serving a
//!   partition `margin` before the lease could expire, by its own monotonic clock, even when
//!   Redis is unreachable. Every commit goes through one Lua script that checks the token of
//!   every partition it touches before writing anything (see [`replica`]), so a paused or cut-off
//!   node cannot write after its lease passed to another.
//! - **Replication.** That script also mirrors the commit into `agora:data:<p>`, a hash holding
//!   every record of the partition, before the commit reaches sled and before anyone hears
//!   about it. A node taking a partition over rebuilds its sled copy from the hash, then loads
//!   the partition's reminders, outbox and pending actor messages, so nothing acknowledged is
//!   lost with a node.
//! - **Routing** is the gateway's, through [`rpc`]: requests for a partition another node serves
//!   travel over Redis pub/sub.

pub mod replica;
pub mod rpc;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::actor_id::stable_hash;
use crate::clock::Clock;
use crate::node::Shared;
use crate::PARTITIONS;

/// Settings of cluster mode; `redis_url` turns it on.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis_url: String,
    /// Unique per node and stable across its restarts.
    pub node_id: String,
    /// How other nodes and operators reach this node's HTTP API (shown in `/api/v1/cluster`).
    pub advertise: String,
    /// How long a partition lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How often leases are renewed and membership refreshed.
    pub tick: Duration,
    /// A node without a heartbeat for this long is considered gone.
    pub node_ttl: Duration,
}

impl ClusterConfig {
    pub fn new(redis_url: String, node_id: String, advertise: String) -> Self {
        Self {
            redis_url,
            node_id,
            advertise,
            lease_ttl: Duration::from_millis(3000),
            tick: Duration::from_millis(500),
            node_ttl: Duration::from_millis(3000),
        }
    }

    /// Stop serving this long before the lease could expire in Redis: covers clock rate
    /// differences and the time a commit spends in flight.
    fn margin(&self) -> Duration {
        self.lease_ttl / 5
    }
}

/// One partition as this node sees it.
#[derive(Default)]
struct Slot {
    /// `<node>:<epoch>` while this node holds the lease.
    token: Mutex<Option<String>>,
    /// Nanoseconds since `Cluster::base` until which the lease is surely ours.
    valid_until: AtomicU64,
    /// Bumped on every acquisition: activations restored under an older one re-read storage.
    generation: AtomicU64,
    /// The partition's records are loaded and the node may serve it.
    serving: AtomicBool,
    /// This node served the partition until it lost touch with Redis: nobody can have taken
    /// it over through an unreachable Redis... unless only this node lost touch, so only
    /// reads are answered from it, and only until Redis answers again.
    stale_readable: AtomicBool,
}

/// What the cluster looks like from here, for routing and `/api/v1/cluster`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterView {
    pub node_id: String,
    /// Live nodes and how to reach them.
    pub nodes: BTreeMap<String, String>,
    /// Partition → (owner, epoch), from the leases as last read.
    pub owners: BTreeMap<u32, (String, u64)>,
    /// Whether Redis answered the last tick.
    pub redis_ok: bool,
}

pub(crate) struct Cluster {
    pub config: ClusterConfig,
    pub client: redis::Client,
    base: Instant,
    slots: Vec<Slot>,
    view: RwLock<ClusterView>,
    /// Set once SIGTERM handover starts: leases are released, none acquired.
    leaving: AtomicBool,
    /// This process has announced its join.
    announced: AtomicBool,
    pub rpc: Arc<rpc::Rpc>,
}

/// Where the node stands with one partition right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    Yes { generation: u64 },
    No,
}

pub(crate) fn lease_key(p: u32) -> String {
    format!("agora:lease:{p}")
}
pub(crate) fn epoch_key(p: u32) -> String {
    format!("agora:epoch:{p}")
}
pub(crate) fn data_key(p: u32) -> String {
    format!("agora:data:{p}")
}
const NODES: &str = "agora:nodes";
const MEMBERS: &str = "agora:members";

/// `KEYS[1]` lease, `KEYS[2]` epoch counter; `ARGV[1]` node, `ARGV[2]` ttl ms. Answers the new
/// token, or nil when another node holds the lease.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local e = redis.call('INCR', KEYS[2])
local v = ARGV[1] .. ':' .. e
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return v";

/// Renews every lease whose token still matches: `KEYS` leases, `ARGV[1]` ttl, `ARGV[2..]`
/// tokens. Answers 1 or 0 per lease.
const RENEW: &str = r"
local out = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out";

/// Deletes the lease `KEYS[1]` if it still holds token `ARGV[1]`.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// Rendezvous (highest random weight) owner of partition `p` among `nodes`.
pub fn rendezvous<'a>(p: u32, nodes: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    nodes.max_by_key(|n| {
        let mut bytes = p.to_be_bytes().to_vec();
        bytes.extend_from_slice(n.as_bytes());
        (mix(stable_hash(&bytes)), n.as_str().to_owned())
    })
}

/// MurmurHash3's finalizer: FNV-1a alone leaves ids that differ in one last byte ("n1",
/// "n2") with correlated high bits, which skews rendezvous weights.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Cluster {
    /// `clock` is the runtime's: RPC deadlines read it. Lease validity does not (see `now_ns`).
    pub fn new(config: ClusterConfig, clock: Arc<dyn Clock>) -> Result<Cluster, String> {
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(|e| format!("invalid --redis-url: {e}"))?;
        let rpc = Arc::new(rpc::Rpc::new(config.node_id.clone(), clock));
        Ok(Cluster {
            slots: (0..PARTITIONS).map(|_| Slot::default()).collect(),
            view: RwLock::new(ClusterView {
                node_id: config.node_id.clone(),
                ..ClusterView::default()
            }),
            base: Instant::now(),
            leaving: AtomicBool::new(false),
            announced: AtomicBool::new(false),
            client,
            config,
            rpc,
        })
    }

    /// Lease time: the process's own monotonic clock, deliberately not the runtime's
    /// [`Clock`]. Safety rests on this node stopping before Redis can expire its lease, so the
    /// measure must be one that neither jumps (a wall-clock step, NTP) nor can be driven by a
    /// test or an operator (`--manual-clock`): a clock that stood still would keep a node
    /// serving a partition long after another took it over. The Redis-side TTL runs on
    /// Redis's own monotonic timer for the same reason.
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Whether this node serves `p` now: it holds the lease, the lease is surely still its
    /// own, and the partition's records are loaded.
    pub fn serving(&self, p: u32) -> Serving {
        let Some(slot) = self.slots.get(p as usize) else {
            return Serving::No;
        };
        if slot.serving.load(Ordering::Acquire)
            && self.now_ns() < slot.valid_until.load(Ordering::Acquire)
        {
            Serving::Yes {
                generation: slot.generation.load(Ordering::Acquire),
            }
        } else {
            Serving::No
        }
    }

    pub fn stale_readable(&self, p: u32) -> bool {
        self.slots
            .get(p as usize)
            .is_some_and(|s| s.stale_readable.load(Ordering::Acquire))
    }

    /// The lease token to fence a commit to `p` with, while the lease is surely ours.
    pub fn token(&self, p: u32) -> Option<String> {
        let slot = self.slots.get(p as usize)?;
        if self.now_ns() >= slot.valid_until.load(Ordering::Acquire) {
            return None;
        }
        slot.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether this node has `p`'s lease and has not given it up: true from the moment a
    /// takeover starts (before the partition is served: work found while loading it is this
    /// node's to do), false once it stopped serving `p` for good (lost, handed over, lapsed).
    /// A renewal merely late does not flip it, so background work is not dropped and left
    /// undone while the node goes on serving. Not a safety check: commits are fenced anyway.
    pub fn holds_lease(&self, p: u32) -> bool {
        self.slots
            .get(p as usize)
            .is_some_and(|s| s.token.lock().unwrap_or_else(|e| e.into_inner()).is_some())
    }

    /// Whether Redis answered the last round.
    pub fn redis_ok(&self) -> bool {
        self.view.read().unwrap_or_else(|e| e.into_inner()).redis_ok
    }

    pub fn view(&self) -> ClusterView {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The node serving `p` as last seen, and how to reach it.
    pub fn owner_of(&self, p: u32) -> Option<String> {
        let v = self.view.read().unwrap_or_else(|e| e.into_inner());
        v.owners.get(&p).map(|(n, _)| n.clone())
    }

    /// One field of a Redis hash (a replica read), within a short deadline.
    pub async fn hget(&self, key: &str, field: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let work = async {
            let mut con = self
                .client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("HGET")
                .arg(key)
                .arg(field)
                .query_async::<Option<Vec<u8>>>(&mut con)
                .await
                .map_err(|e| e.to_string())
        };
        tokio::time::timeout(Duration::from_secs(2), work)
            .await
            .map_err(|_| "Redis did not answer in time".to_string())?
    }

    /// The cluster's journal (see [`crate::Runtime::read_journal`]): entries are stream ids
    /// `ms-seq`, numbered `ms << 20 | seq` so cursors stay plain numbers.
    pub async fn read_journal(
        &self,
        after: Option<u64>,
        limit: usize,
        page: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<crate::node::JournalPage, String> {
        type Entry = (String, Vec<(String, Vec<u8>)>);
        let mut con = tokio::time::timeout(
            Duration::from_secs(2),
            self.client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "Redis did not answer in time".to_string())?
        .map_err(|e| e.to_string())?;
        let mut start = match after {
            Some(n) => format!("({}-{}", n >> 20, n & 0xF_FFFF),
            None => "-".to_string(),
        };
        let mut out = Vec::new();
        loop {
            let rows: Vec<Entry> = redis::cmd("XRANGE")
                .arg(replica::JOURNAL_STREAM)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(page)
                .query_async(&mut con)
                .await
                .map_err(|e| e.to_string())?;
            let full = rows.len() == page;
            for (id, fields) in rows {
                let Some((ms, seq)) = id.split_once('-') else {
                    continue;
                };
                let (Ok(ms), Ok(seq)) = (ms.parse::<u64>(), seq.parse::<u64>()) else {
                    continue;
                };
                start = format!("({id}");
                let n = (ms << 20) | seq.min(0xF_FFFF);
                let Some((_, v)) = fields.into_iter().find(|(f, _)| f == "e") else {
                    continue;
                };
                if keep(&v) {
                    out.push((n, v));
                    if out.len() == limit {
                        return Ok((out, Some(n)));
                    }
                }
            }
            if !full {
                return Ok((out, None));
            }
        }
    }

    fn stop_serving(&self, p: u32, why: &str) {
        let slot = &self.slots[p as usize];
        if slot.serving.swap(false, Ordering::AcqRel) {
            tracing::info!(partition = p, why, "stopped serving partition");
        }
        slot.valid_until.store(0, Ordering::Release);
        *slot.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Partitions this node holds a lease on.
    fn held(&self) -> Vec<(u32, String)> {
        (0..PARTITIONS)
            .filter_map(|p| {
                let t = self.slots[p as usize]
                    .token
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                t.map(|t| (p, t))
            })
            .collect()
    }
}

/// The cluster's background work: heartbeat, leases, takeovers. Runs until the node stops.
pub(crate) async fn run(shared: Weak<Shared>, cluster: Arc<Cluster>) {
    let mut con: Option<ConnectionManager> = None;
    let mut tick = tokio::time::interval(cluster.config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut wake = cluster.rpc.member_notices();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.recv() => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if con.is_none() {
            match tokio::time::timeout(
                Duration::from_secs(2),
                cluster.client.get_connection_manager(),
            )
            .await
            {
                Ok(Ok(c)) => con = Some(c),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot reach Redis"),
                Err(_) => tracing::warn!("cannot reach Redis: timed out"),
            }
        }
        let ok = match con.as_mut() {
            Some(c) => {
                match tokio::time::timeout(cluster.config.lease_ttl, round(&shared, &cluster, c))
                    .await
                {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cluster round failed");
                        false
                    }
                    Err(_) => {
                        tracing::warn!("cluster round timed out");
                        false
                    }
                }
            }
            None => false,
        };
        cluster
            .view
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .redis_ok = ok;
        // Without Redis, leases run out by our own clock: stop serving what may be gone.
        let now = cluster.now_ns();
        for p in 0..PARTITIONS {
            let slot = &cluster.slots[p as usize];
            if slot.serving.load(Ordering::Acquire)
                && now >= slot.valid_until.load(Ordering::Acquire)
            {
                cluster.stop_serving(p, "lease not renewed in time");
                if !ok {
                    slot.stale_readable.store(true, Ordering::Release);
                }
            }
            if ok {
                // Redis answers again: reads go to whoever serves the partition now.
                slot.stale_readable.store(false, Ordering::Release);
            }
        }
        if cluster.leaving.load(Ordering::Acquire) && cluster.held().is_empty() {
            return;
        }
    }
}

/// One round: heartbeat, read membership and leases, renew, release what belongs elsewhere,
/// acquire what belongs here.
async fn round(
    shared: &Arc<Shared>,
    cluster: &Arc<Cluster>,
    con: &mut ConnectionManager,
) -> redis::RedisResult<()> {
    let cfg = &cluster.config;
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(con).await?;
    let now_ms = secs * 1000 + micros / 1000;
    let leaving = cluster.leaving.load(Ordering::Acquire);
    if !leaving {
        let fresh: i64 = redis::cmd("ZADD")
            .arg(NODES)
            .arg(now_ms)
            .arg(&cfg.node_id)
            .query_async(con)
            .await?;
        let _: () = redis::cmd("SET")
            .arg(format!("agora:node:{}", cfg.node_id))
            .arg(&cfg.advertise)
            .arg("PX")
            .arg(cfg.node_ttl.as_millis() as u64)
            .query_async(con)
            .await?;
        // Announced by every new process, even one that restarted within the node TTL and so
        // never looked gone: calls others still await from its previous life must fail over.
        if fresh == 1 || !cluster.announced.swap(true, Ordering::AcqRel) {
            tracing::info!(node = %cfg.node_id, "joined the cluster");
            let _: i64 = redis::cmd("PUBLISH")
                .arg(MEMBERS)
                .arg(format!("join {}", cfg.node_id))
                .query_async(con)
                .await?;
        }
    }
    let cutoff = now_ms.saturating_sub(cfg.node_ttl.as_millis() as u64);
    let gone: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(NODES)
        .arg("-inf")
        .arg(format!("({cutoff}"))
        .query_async(con)
        .await?;
    if !gone.is_empty() {
        let _: i64 = redis::cmd("ZREM")
            .arg(NODES)
            .arg(&gone)
            .query_async(con)
            .await?;
        for g in &gone {
            tracing::info!(node = %g, "node left the cluster (no heartbeat)");
        }
    }
    let live: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(NODES)
        .arg(cutoff)
        .arg("+inf")
        .query_async(con)
        .await?;
    let mut nodes = BTreeMap::new();
    for n in &live {
        let addr: Option<String> = redis::cmd("GET")
            .arg(format!("agora:node:{n}"))
            .query_async(con)
            .await?;
        nodes.insert(n.clone(), addr.unwrap_or_default());
    }
    let candidates: Vec<String> = live
        .iter()
        .filter(|n| !(leaving && **n == cfg.node_id))
        .cloned()
        .collect();

    // Renew everything held, in one script call; measure validity from before the call.
    let held = cluster.held();
    let sent = cluster.now_ns();
    if !held.is_empty() {
        let script = redis::Script::new(RENEW);
        let mut inv = script.prepare_invoke();
        for (p, _) in &held {
            inv.key(lease_key(*p));
        }
        inv.arg(cfg.lease_ttl.as_millis() as u64);
        for (_, t) in &held {
            inv.arg(t);
        }
        let renewed: Vec<i64> = inv.invoke_async(con).await?;
        let valid = sent + (cfg.lease_ttl - cfg.margin()).as_nanos() as u64;
        for ((p, _), r) in held.iter().zip(renewed) {
            if r == 1 {
                cluster.slots[*p as usize]
                    .valid_until
                    .store(valid, Ordering::Release);
            } else {
                cluster.stop_serving(*p, "lease lost");
            }
        }
    }

    // Hand over what another live node should own (or everything, when leaving).
    for (p, token) in cluster.held() {
        let wanted = rendezvous(p, candidates.iter());
        if wanted.is_some_and(|w| *w != cfg.node_id) || (leaving && wanted.is_none()) {
            cluster.stop_serving(p, "handing over");
            // Let every commit in flight for the partition finish (or be fenced) first.
            shared
                .committer
                .wait_durable(shared.committer.last_submitted())
                .await
                .ok();
            let _: i64 = redis::Script::new(RELEASE)
                .key(lease_key(p))
                .arg(&token)
                .invoke_async(con)
                .await?;
            let _: i64 = redis::cmd("PUBLISH")
                .arg(MEMBERS)
                .arg(format!("released {p}"))
                .query_async(con)
                .await?;
        }
    }

    // Acquire what belongs here and is free.
    if !leaving {
        for p in 0..PARTITIONS {
            if rendezvous(p, candidates.iter()) != Some(&cfg.node_id)
                || cluster.slots[p as usize]
                    .token
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some()
            {
                continue;
            }
            let sent = cluster.now_ns();
            let token: Option<String> = redis::Script::new(ACQUIRE)
                .key(lease_key(p))
                .key(epoch_key(p))
                .arg(&cfg.node_id)
                .arg(cfg.lease_ttl.as_millis() as u64)
                .invoke_async(con)
                .await?;
            let Some(token) = token else {
                continue;
            };
            let slot = &cluster.slots[p as usize];
            slot.valid_until.store(
                sent + (cfg.lease_ttl - cfg.margin()).as_nanos() as u64,
                Ordering::Release,
            );
            *slot.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
            match replica::take_over(shared, cluster, con, p).await {
                Ok(records) => {
                    slot.generation.fetch_add(1, Ordering::AcqRel);
                    slot.serving.store(true, Ordering::Release);
                    tracing::info!(partition = p, token = %token, records, "serving partition");
                }
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "takeover failed; releasing");
                    cluster.stop_serving(p, "takeover failed");
                    let _: i64 = redis::Script::new(RELEASE)
                        .key(lease_key(p))
                        .arg(&token)
                        .invoke_async(con)
                        .await?;
                }
            }
        }
    }

    // Who holds what, for routing and the API.
    let mut pipe = redis::pipe();
    for p in 0..PARTITIONS {
        pipe.cmd("GET").arg(lease_key(p));
    }
    let leases: Vec<Option<String>> = pipe.query_async(con).await?;
    let owners = leases
        .into_iter()
        .enumerate()
        .filter_map(|(p, v)| {
            let v = v?;
            let (node, epoch) = v.rsplit_once(':')?;
            Some((p as u32, (node.to_string(), epoch.parse().ok()?)))
        })
        .collect();
    let mut view = cluster.view.write().unwrap_or_else(|e| e.into_inner());
    for gone in view.nodes.keys().filter(|n| !nodes.contains_key(*n)) {
        cluster.rpc.fail_pending_to(gone);
    }
    view.nodes = nodes;
    view.owners = owners;
    Ok(())
}

/// SIGTERM: stop acquiring, hand every partition over, leave the member set.
pub(crate) async fn leave(shared: &Arc<Shared>, cluster: &Arc<Cluster>) {
    cluster.leaving.store(true, Ordering::Release);
    let Ok(Ok(mut con)) = tokio::time::timeout(
        Duration::from_secs(2),
        cluster.client.get_connection_manager(),
    )
    .await
    else {
        tracing::warn!("cannot reach Redis to hand partitions over; leases will expire");
        return;
    };
    let _: redis::RedisResult<i64> = redis::cmd("ZREM")
        .arg(NODES)
        .arg(&cluster.config.node_id)
        .query_async(&mut con)
        .await;
    if let Err(e) = round(shared, cluster, &mut con).await {
        tracing::warn!(error = %e, "handover incomplete; leases will expire");
    }
    let _: redis::RedisResult<i64> = redis::cmd("PUBLISH")
        .arg(MEMBERS)
        .arg(format!("leave {}", cluster.config.node_id))
        .query_async(&mut con)
        .await;
    tracing::info!("left the cluster");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_spreads_partitions_and_moves_only_a_leavers_share() {
        let three: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
        let two: Vec<String> = ["n1", "n2"].iter().map(|s| s.to_string()).collect();
        let mut counts = BTreeMap::new();
        let mut moved = 0;
        for p in 0..PARTITIONS {
            let o3 = rendezvous(p, three.iter()).unwrap().clone();
            let o2 = rendezvous(p, two.iter()).unwrap().clone();
            *counts.entry(o3.clone()).or_insert(0) += 1;
            if o3 != "n3" {
                assert_eq!(o3, o2, "partition {p} moved without its owner leaving");
            } else {
                moved += 1;
            }
        }
        for (n, c) in &counts {
            assert!((50..=120).contains(c), "{n} owns {c} of 256");
        }
        assert_eq!(moved, counts["n3"]);
    }
}
