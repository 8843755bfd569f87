//! Scoped API tokens: creating, listing and revoking them (through the token actor), and
//! recognising a presented secret (through a cache every request consults, refreshed from
//! what was committed when a secret is not in it, and on every node when a token changes).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use agora_plugins::ErrorCode;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Core, Result};
use crate::api_tokens::{self, ApiToken, ApiTokens, Role, TOKENS_KEY};
use crate::{validate_slug, ActorError, Principal};

/// The cluster notice that the token set changed.
const TOKENS_NOTICE: &str = "api-tokens";
/// Labels are for people; long enough for a sentence.
pub const TOKEN_LABEL_MAX: usize = 200;
/// A token names at most this many communities.
pub const TOKEN_COMMUNITIES_MAX: usize = 1000;

/// What `create` needs.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub role: Role,
    pub communities: Vec<String>,
    pub label: String,
}

/// The SHA-256 of a secret, hex: how tokens are stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[derive(Clone)]
pub struct Tokens {
    core: Arc<Core>,
    /// Active tokens by the hash of their secret.
    active: Arc<RwLock<HashMap<String, ApiToken>>>,
}

impl Tokens {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Tokens {
            core,
            active: Arc::default(),
        }
    }

    /// Draws an id and a secret, stores the token and answers it with its secret (shown once;
    /// only its hash is kept).
    pub async fn create(&self, req: TokenRequest, by: &Principal) -> Result<(ApiToken, String)> {
        if req.label.len() > TOKEN_LABEL_MAX {
            return Err(invalid(
                "label",
                format!("a label has at most {TOKEN_LABEL_MAX} bytes"),
            ));
        }
        if req.communities.len() > TOKEN_COMMUNITIES_MAX {
            return Err(invalid(
                "communities",
                format!("a token names at most {TOKEN_COMMUNITIES_MAX} communities"),
            ));
        }
        if req.role == Role::Admin && !req.communities.is_empty() {
            // An admin reaches node-wide routes, which no community list can bound.
            return Err(invalid(
                "communities",
                "an admin token covers the whole node; give a community list to viewers and operators"
                    .into(),
            ));
        }
        let mut communities = Vec::with_capacity(req.communities.len());
        for (i, slug) in req.communities.iter().enumerate() {
            validate_slug(slug)
                .map_err(|e| invalid(&format!("communities[{i}]"), e.to_string()))?;
            if !communities.contains(slug) {
                communities.push(slug.clone());
            }
        }
        let (mut id, mut secret) = ([0u8; 8], [0u8; 32]);
        rand::thread_rng().fill_bytes(&mut id);
        rand::thread_rng().fill_bytes(&mut secret);
        let secret = format!("agora_{}", hex::encode(secret));
        let token = ApiToken {
            id: format!("tok_{}", hex::encode(id)),
            role: req.role,
            communities,
            label: req.label,
            hash: hash_secret(&secret),
            created_ms: self.core.now_ms(),
            created_by: by.who().to_string(),
            revoked_ms: None,
        };
        let cmd = api_tokens::Create {
            token,
            by: by.clone(),
        };
        let token = self.core.tokens.ask(TOKENS_KEY, cmd).await??;
        self.changed().await;
        Ok((token, secret))
    }

    /// Every token, revoked ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<ApiToken>> {
        Ok(self.core.tokens.ask(TOKENS_KEY, api_tokens::List).await?)
    }

    /// Revokes token `id`: from now on its secret gets 401 (on other nodes of a cluster, once
    /// they hear of it, normally within milliseconds).
    pub async fn revoke(&self, id: &str, by: &Principal) -> Result<ApiToken> {
        let cmd = api_tokens::Revoke {
            id: id.to_string(),
            by: by.clone(),
        };
        let token = self.core.tokens.ask(TOKENS_KEY, cmd).await??;
        self.changed().await;
        Ok(token)
    }

    /// The active token whose secret is `secret`. A secret not in the cache may belong to a
    /// token made a moment ago on another node: the committed set is read once more.
    pub async fn authenticate(&self, secret: &str) -> Option<ApiToken> {
        let hash = hash_secret(secret);
        if let Some(t) = self.cached(&hash) {
            return Some(t);
        }
        self.reload().await;
        self.cached(&hash)
    }

    fn cached(&self, hash: &str) -> Option<ApiToken> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }

    /// Reads the committed token set into the cache (in cluster mode, wherever the token
    /// actor lives). A failure keeps the cache as it was.
    pub async fn reload(&self) {
        match self.core.rt.committed_state::<ApiTokens>(TOKENS_KEY).await {
            Ok(Some(bytes)) => match api_tokens::decode_tokens(&bytes) {
                Some(all) => self.fill(all),
                None => tracing::warn!("unreadable API token record"),
            },
            Ok(None) => self.fill(Vec::new()),
            Err(e) => tracing::warn!(error = %e, "API tokens not refreshed"),
        }
    }

    fn fill(&self, all: Vec<ApiToken>) {
        let active = all
            .into_iter()
            .filter(|t| t.revoked_ms.is_none())
            .map(|t| (t.hash.clone(), t))
            .collect();
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = active;
    }

    /// After a durable change: this node's cache, then every other node's.
    async fn changed(&self) {
        self.reload().await;
        self.core.rt.notify_cluster(TOKENS_NOTICE).await;
    }

    /// Keeps this node's cache in step with token changes made through any node, until
    /// `stop`.
    pub async fn run_sync(self, mut stop: agora_runtime::Stop) {
        let mut notices = self.core.rt.subscribe_notices();
        loop {
            let notice = tokio::select! {
                n = notices.recv() => n,
                _ = stop.stopped() => return,
            };
            match notice {
                Ok(n) if n == TOKENS_NOTICE => self.reload().await,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.reload().await,
                Err(_) => return,
            }
        }
    }
}

fn invalid(field: &str, message: String) -> ActorError {
    ActorError::refuse(ErrorCode::InvalidRequest, message).at(field)
}
