//! Node-to-node messages over Redis pub/sub: forwarded requests and durable actor messages
//! with their replies (a correlation id, a deadline, the sender's reply channel; MessagePack
//! envelopes), membership notices, and the cluster-wide event stream.
//!
//! Pub/sub is fire-and-forget: a request whose reply never comes times out, and the caller
//! retries on whichever node serves the partition then. Nothing durable travels here: a durable
//! actor message stays in its sender's partition until the receiver's node answers that its
//! handling is durable.
//!
//! Deadlines (how long a caller waits, when a request is no longer worth running) are read
//! from the runtime's [`Clock`]. Publish timeouts are not deadlines but guards against a hung
//! Redis, so they stay on tokio's real timer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

use crate::clock::Clock;
use crate::effects::Published;

/// Runs a forwarded request on this node and answers the reply bytes.
pub type Handler = Arc<dyn Fn(Vec<u8>) -> BoxFuture<'static, Vec<u8>> + Send + Sync>;

const EVENTS: &str = "agora:events";
/// A publish that takes longer means Redis is in trouble; callers answer 503 rather than wait.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);
const MEMBERS: &str = "agora:members";

fn requests_of(node: &str) -> String {
    format!("agora:rpc:{node}")
}
fn replies_of(node: &str) -> String {
    format!("agora:reply:{node}")
}

/// What a request carries, and so which handler runs it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RpcKind {
    /// A forwarded HTTP request (the gateway's handler).
    #[default]
    Forward,
    /// A durable actor message for an actor this node serves (the runtime's own handler).
    Message,
}

#[derive(Serialize, Deserialize)]
struct Request {
    id: u64,
    from: String,
    /// Clock ms after which the caller has given up: not worth running.
    deadline_ms: u64,
    /// Absent in requests from builds before actor messages: those are forwards.
    #[serde(default)]
    kind: RpcKind,
    #[serde(with = "serde_bytes_compat")]
    payload: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    id: u64,
    #[serde(with = "serde_bytes_compat")]
    payload: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct EventEnvelope {
    origin: String,
    community: String,
    event_type: String,
    body: String,
}

/// Byte vectors as MessagePack binaries, not arrays of integers.
pub mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Why a forwarded request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("node {0} is not listening")]
    NotListening(String),
    #[error("node {0} did not answer in time")]
    Timeout(String),
    #[error("Redis is unreachable: {0}")]
    Redis(String),
}

/// A call awaiting its reply: the node asked, and where the reply goes.
type Pending = (String, oneshot::Sender<Vec<u8>>);

pub(crate) struct Rpc {
    node_id: String,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    handler: OnceLock<Handler>,
    message_handler: OnceLock<Handler>,
    clock: Arc<dyn Clock>,
    publisher: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    members: broadcast::Sender<()>,
    /// Application notices from any node (`notify`).
    pub notices: broadcast::Sender<String>,
}

impl Rpc {
    pub fn new(node_id: String, clock: Arc<dyn Clock>) -> Self {
        Self {
            node_id,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            handler: OnceLock::new(),
            message_handler: OnceLock::new(),
            clock,
            publisher: tokio::sync::Mutex::new(None),
            members: broadcast::channel(16).0,
            notices: broadcast::channel(64).0,
        }
    }

    pub fn set_handler(&self, h: Handler) {
        let _ = self.handler.set(h);
    }

    /// Installs what runs durable actor messages other nodes deliver here.
    pub fn set_message_handler(&self, h: Handler) {
        let _ = self.message_handler.set(h);
    }

    /// Wakes whenever a node joins, leaves or releases a partition.
    pub fn member_notices(&self) -> broadcast::Receiver<()> {
        self.members.subscribe()
    }

    async fn publish(
        &self,
        client: &redis::Client,
        channel: &str,
        payload: Vec<u8>,
    ) -> Result<i64, RpcError> {
        // The lock only guards the shared connection handle, never a network wait: callers
        // must not queue behind one another while Redis is slow or gone.
        let cached = self.publisher.lock().await.clone();
        let mut con = match cached {
            Some(c) => c,
            None => {
                let c = tokio::time::timeout(PUBLISH_TIMEOUT, client.get_connection_manager())
                    .await
                    .map_err(|_| RpcError::Redis("timed out".into()))?
                    .map_err(|e| RpcError::Redis(e.to_string()))?;
                *self.publisher.lock().await = Some(c.clone());
                c
            }
        };
        let result = tokio::time::timeout(
            PUBLISH_TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async(&mut con),
        )
        .await;
        match result {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(RpcError::Redis(e.to_string())),
            Err(_) => Err(RpcError::Redis("timed out".into())),
        }
    }

    /// Fails every call waiting on `node` (it left the cluster): its callers retry elsewhere
    /// at once instead of waiting out their deadline.
    pub fn fail_pending_to(&self, node: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (n, _)| n != node);
    }

    /// Sends `payload` to `node`'s forwarded-request handler and waits up to `timeout` (on
    /// the runtime's clock) for its reply.
    pub async fn call(
        &self,
        client: &redis::Client,
        node: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        self.call_kind(client, node, RpcKind::Forward, payload, timeout)
            .await
    }

    /// Sends `payload` to `node`'s handler for `kind` and waits up to `timeout` (on the
    /// runtime's clock) for its reply.
    pub async fn call_kind(
        &self,
        client: &redis::Client,
        node: &str,
        kind: RpcKind,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (node.to_string(), tx));
        let req = Request {
            id,
            from: self.node_id.clone(),
            deadline_ms: self
                .clock
                .now_ms()
                .saturating_add(timeout.as_millis() as u64),
            kind,
            payload,
        };
        let bytes = rmp_serde::to_vec_named(&req).map_err(|e| RpcError::Redis(e.to_string()))?;
        let forget = || {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        };
        match self.publish(client, &requests_of(node), bytes).await {
            Ok(0) => {
                forget();
                return Err(RpcError::NotListening(node.to_string()));
            }
            Ok(_) => {}
            Err(e) => {
                forget();
                return Err(e);
            }
        }
        let deadline = self.clock.sleep(timeout);
        tokio::select! {
            reply = rx => match reply {
                Ok(reply) => Ok(reply),
                // The call was failed over (its node left or restarted).
                Err(_) => {
                    forget();
                    Err(RpcError::Timeout(node.to_string()))
                }
            },
            _ = deadline => {
                forget();
                Err(RpcError::Timeout(node.to_string()))
            }
        }
    }

    /// Sends `notice` to every node, this one included.
    pub async fn notify(&self, client: &redis::Client, notice: &str) {
        let msg = format!("notice {notice}");
        if let Err(e) = self.publish(client, MEMBERS, msg.into_bytes()).await {
            tracing::warn!(error = %e, notice, "cluster notice not sent");
        }
    }

    /// Publishes a durable local event to every node's event stream.
    pub async fn publish_event(&self, client: &redis::Client, p: &Published) {
        let env = EventEnvelope {
            origin: self.node_id.clone(),
            community: p.community.clone(),
            event_type: p.event_type.clone(),
            body: p.body.clone(),
        };
        if let Ok(bytes) = rmp_serde::to_vec_named(&env) {
            if let Err(e) = self.publish(client, EVENTS, bytes).await {
                tracing::warn!(error = %e, "event not fanned out to other nodes");
            }
        }
    }

    /// Listens on this node's channels until `stop` fires, reconnecting as needed.
    pub async fn listen(
        self: Arc<Self>,
        client: redis::Client,
        events: broadcast::Sender<Arc<Published>>,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.listen_once(&client, &events).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "cluster subscription lost; reconnecting");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn listen_once(
        self: &Arc<Self>,
        client: &redis::Client,
        events: &broadcast::Sender<Arc<Published>>,
    ) -> redis::RedisResult<()> {
        let mut pubsub = client.get_async_pubsub().await?;
        let requests = requests_of(&self.node_id);
        let replies = replies_of(&self.node_id);
        pubsub.subscribe(&requests).await?;
        pubsub.subscribe(&replies).await?;
        pubsub.subscribe(MEMBERS).await?;
        pubsub.subscribe(EVENTS).await?;
        // Whatever happened while we were not listening: look again.
        let _ = self.members.send(());
        let mut stream = pubsub.on_message();
        while let Some(msg) = stream.next().await {
            let channel = msg.get_channel_name().to_string();
            let payload: Vec<u8> = msg.get_payload_bytes().to_vec();
            if channel == replies {
                if let Ok(reply) = rmp_serde::from_slice::<Reply>(&payload) {
                    let waiter = self
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&reply.id);
                    if let Some((_, w)) = waiter {
                        let _ = w.send(reply.payload);
                    }
                }
            } else if channel == requests {
                let Ok(req) = rmp_serde::from_slice::<Request>(&payload) else {
                    continue;
                };
                if req.deadline_ms < self.clock.now_ms() {
                    continue;
                }
                let handler = match req.kind {
                    RpcKind::Forward => self.handler.get(),
                    RpcKind::Message => self.message_handler.get(),
                };
                let Some(handler) = handler.cloned() else {
                    continue;
                };
                let this = self.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let payload = handler(req.payload).await;
                    let reply = Reply {
                        id: req.id,
                        payload,
                    };
                    if let Ok(bytes) = rmp_serde::to_vec_named(&reply) {
                        if let Err(e) = this.publish(&client, &replies_of(&req.from), bytes).await {
                            tracing::warn!(error = %e, "reply to a forwarded request lost");
                        }
                    }
                });
            } else if channel == MEMBERS {
                let text = std::str::from_utf8(&payload).unwrap_or_default();
                if let Some(notice) = text.strip_prefix("notice ") {
                    let _ = self.notices.send(notice.to_string());
                } else {
                    // A (re)started node answers nothing it was asked before it started.
                    if let Some(node) = text.strip_prefix("join ") {
                        if node != self.node_id {
                            self.fail_pending_to(node);
                        }
                    }
                    let _ = self.members.send(());
                }
            } else if channel == EVENTS {
                if let Ok(env) = rmp_serde::from_slice::<EventEnvelope>(&payload) {
                    if env.origin != self.node_id {
                        let _ = events.send(Arc::new(Published {
                            community: env.community,
                            event_type: env.event_type,
                            body: env.body,
                            remote: true,
                        }));
                    }
                }
            }
        }
        Ok(())
    }
}
