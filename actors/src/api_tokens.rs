//! The API-token actor (one per node or cluster, key [`TOKENS_KEY`]): every scoped API token
//! ever created, by id, with its role, its communities and the SHA-256 of its secret (never
//! the secret). Its state is an ordinary actor record, so in cluster mode it is replicated
//! and every node can read it ([`decode_tokens`]). Creating and revoking a token are audited
//! in the same commit (plugin `api-tokens` in the audit log).

use agora_plugins::ErrorCode;
use agora_runtime::{ActorId, Effects, Message, Reminder, Stored, VirtualActor};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::{ActorError, ActorsEnv, Principal};

const RECORD: &str = "api-tokens";
const VERSION: u16 = 1;

/// The one key of the token actor.
pub const TOKENS_KEY: &str = "node";

/// What the audit log names token changes by (there is no plugin of that name).
pub const AUDIT_PLUGIN: &str = "api-tokens";

/// What a token may do. Ordered: each role can do what the ones before it can.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads, and changes within its communities (plugins and their settings included).
    Operator,
    /// Everything, node-wide routes included.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One token as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// `tok_` and 16 hex digits: what audit entries and the API name it by.
    pub id: String,
    pub role: Role,
    /// The communities it is limited to; empty: every community.
    pub communities: Vec<String>,
    pub label: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    pub created_ms: u64,
    /// Who created it, as the audit log names callers.
    pub created_by: String,
    pub revoked_ms: Option<u64>,
}

impl ApiToken {
    /// Whether the token covers `community`.
    pub fn covers(&self, community: &str) -> bool {
        self.communities.is_empty() || self.communities.iter().any(|c| c == community)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
struct State {
    tokens: Vec<ApiToken>,
}

/// Every token in a stored record of the token actor (a replica read in cluster mode).
pub fn decode_tokens(bytes: &[u8]) -> Option<Vec<ApiToken>> {
    decode_record::<State>(RECORD, VERSION, bytes)
        .ok()
        .map(|(_, s)| s.tokens)
}

/// Every token, revoked ones included.
pub struct List;

/// Stores a new token (the service drew its id and secret).
pub struct Create {
    pub token: ApiToken,
    pub by: Principal,
}

/// Revokes a token; revoking it again changes nothing.
pub struct Revoke {
    pub id: String,
    pub by: Principal,
}

pub struct ApiTokens {
    state: State,
}

impl ApiTokens {
    fn commit(&self, fx: &mut Effects, by: &Principal, action: &str, t: &ApiToken) {
        match encode_record(RECORD, VERSION, &self.state) {
            Ok(b) => fx.save_state(b),
            Err(e) => tracing::error!(error = %e, "api tokens failed to encode"),
        }
        let scope = if t.communities.is_empty() {
            "every community".to_string()
        } else {
            t.communities.join(", ")
        };
        let entry = AuditEntry {
            message: format!("{} ({}, {scope})", t.id, t.role.as_str()),
            ..AuditEntry::new(by, fx.now_ms(), AUDIT_PLUGIN, action)
        };
        if let Some(bytes) = entry.encode() {
            fx.journal(bytes);
        }
    }
}

impl VirtualActor for ApiTokens {
    const KIND: &'static str = "api-tokens";
    type Env = ActorsEnv;
    /// Reads its few auxiliary records on demand (or has none) and never sets reminders: a
    /// fresh activation probes only its state.
    const RESTORE_AUX: bool = false;
    const REMINDERS: bool = false;

    fn restore(_id: &ActorId, _env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        let state = match stored.state {
            Some(bytes) => {
                decode_record::<State>(RECORD, VERSION, &bytes)
                    .map_err(|e| e.to_string())?
                    .1
            }
            None => State::default(),
        };
        Ok(ApiTokens { state })
    }

    fn on_reminder(&mut self, _env: &ActorsEnv, _r: Reminder, _fx: &mut Effects) {}
}

impl Message<ApiTokens> for List {
    type Reply = Vec<ApiToken>;

    fn handle(self, a: &mut ApiTokens, _env: &ActorsEnv, _fx: &mut Effects) -> Vec<ApiToken> {
        a.state.tokens.clone()
    }
}

impl Message<ApiTokens> for Create {
    type Reply = Result<ApiToken, ActorError>;

    fn handle(self, a: &mut ApiTokens, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        if a.state.tokens.iter().any(|t| t.id == self.token.id) {
            return Err(ActorError::internal("a token id drawn twice"));
        }
        a.state.tokens.push(self.token.clone());
        a.commit(fx, &self.by, "token_create", &self.token);
        Ok(self.token)
    }
}

impl Message<ApiTokens> for Revoke {
    type Reply = Result<ApiToken, ActorError>;

    fn handle(self, a: &mut ApiTokens, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let now = fx.now_ms();
        let Some(i) = a.state.tokens.iter().position(|t| t.id == self.id) else {
            return Err(ActorError::refuse(
                ErrorCode::TokenNotFound,
                format!("no API token has id '{}'", self.id),
            ));
        };
        if a.state.tokens[i].revoked_ms.is_some() {
            return Ok(a.state.tokens[i].clone());
        }
        a.state.tokens[i].revoked_ms = Some(now);
        let t = a.state.tokens[i].clone();
        a.commit(fx, &self.by, "token_revoke", &t);
        Ok(t)
    }
}
