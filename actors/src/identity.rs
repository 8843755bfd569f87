//! The identities actor (key: the community's slug, in its partition): Metagov's identity
//! directory for one community (contract section 1, shapes in `metagov-api.md`). An identity
//! is one person: a numeric `source_ID` (allocated by the service, embedding the community's
//! partition so an id alone finds its community through the index entry `identity/<id>`), the
//! `primary_ID` it was merged into (itself until merged), and the platform accounts linked to
//! it. One account (platform type, platform identifier, community platform id) links to one
//! identity; linking it again with a better quality moves or upgrades it.
//!
//! An agent id in `X-Agora-Actor` resolves here ([`Resolve`]): an identity's id, or an account
//! written `<platform_type>:<platform_identifier>`, names the identity's primary id, so one
//! person is one agent whichever platform they came from.

use std::collections::BTreeMap;

use agora_plugins::ErrorCode;
use agora_runtime::{ActorId, Effects, Message, Reminder, Stored, VirtualActor};
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{ActorError, ActorsEnv};

const RECORD: &str = "identities";
const VERSION: u16 = 1;

/// The index entry naming the community of identity `id`.
pub fn index_key(id: u64) -> String {
    format!("identity/{id}")
}

/// Link types and qualities, weakest quality first.
pub const LINK_TYPES: [&str; 4] = ["oauth", "manual admin", "email matching", "unknown"];
pub const QUALITIES: [&str; 4] = [
    "unknown",
    "unconfirmed",
    "confirmed (weak)",
    "confirmed (strong)",
];

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Account {
    pub external_id: u64,
    pub platform_type: String,
    pub platform_identifier: String,
    pub community_platform_id: Option<String>,
    /// JSON text.
    pub custom_data: String,
    pub link_type: String,
    pub link_quality: String,
}

impl Account {
    fn same(&self, platform_type: &str, identifier: &str, cpid: Option<&str>) -> bool {
        self.platform_type == platform_type
            && self.platform_identifier == identifier
            && self.community_platform_id.as_deref() == cpid
    }

    fn json(&self, slug: &str) -> Value {
        json!({
            "external_id": self.external_id,
            "community": slug,
            "community_platform_id": self.community_platform_id,
            "platform_type": self.platform_type,
            "platform_identifier": self.platform_identifier,
            "custom_data": serde_json::from_str::<Value>(&self.custom_data).unwrap_or(json!({})),
            "link_type": self.link_type,
            "link_quality": self.link_quality,
        })
    }
}

fn rank(quality: &str) -> usize {
    QUALITIES.iter().position(|q| *q == quality).unwrap_or(0)
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
struct State {
    /// source id → primary id.
    identities: BTreeMap<u64, u64>,
    accounts: Vec<Account>,
}

pub struct Identities {
    slug: String,
    state: State,
}

fn refuse(code: ErrorCode, message: impl Into<String>, field: Option<&str>) -> ActorError {
    ActorError::Invalid {
        code,
        message: message.into(),
        field: field.map(str::to_owned),
    }
}

fn unknown(id: u64) -> ActorError {
    refuse(
        ErrorCode::IdentityNotFound,
        format!("no identity {id}"),
        Some("external_id"),
    )
}

impl Identities {
    fn save(&self, fx: &mut Effects) {
        match encode_record(RECORD, VERSION, &self.state) {
            Ok(b) => fx.save_state(b),
            Err(e) => tracing::error!(error = %e, "identities failed to encode"),
        }
    }

    fn primary(&self, id: u64) -> Option<u64> {
        self.state.identities.get(&id).copied()
    }

    /// Metagov's identity: `{"source_ID","primary_ID","linked_accounts"}`; the accounts of
    /// every identity merged into the same primary, since they are one person.
    fn identity(&self, id: u64) -> Option<Value> {
        let primary = self.primary(id)?;
        let accounts: Vec<Value> = self
            .state
            .accounts
            .iter()
            .filter(|a| self.primary(a.external_id) == Some(primary))
            .map(|a| a.json(&self.slug))
            .collect();
        Some(json!({"source_ID": id, "primary_ID": primary, "linked_accounts": accounts}))
    }
}

/// `create_id`: registers fresh ids (allocated by the service).
pub struct CreateIds {
    pub ids: Vec<u64>,
}

/// `link_account` (the platform type was checked against the community's plugins).
pub struct Link {
    pub account: Account,
}

/// `unlink_account`.
pub struct Unlink {
    pub platform_type: String,
    pub platform_identifier: String,
    pub community_platform_id: Option<String>,
}

/// `get_user`.
pub struct GetUser {
    pub external_id: u64,
}

/// `get_users`: every filter optional; unfiltered, primary identities only.
#[derive(Default)]
pub struct GetUsers {
    pub platform_type: Option<String>,
    pub community_platform_id: Option<String>,
    pub link_type: Option<String>,
    pub link_quality: Option<String>,
    pub platform_identifier: Option<String>,
}

/// `filter_users_by_account`.
pub struct FilterUsers {
    pub external_ids: Vec<u64>,
}

/// `get_linked_account`.
pub struct GetLinkedAccount {
    pub external_id: u64,
    pub platform_type: String,
    pub community_platform_id: Option<String>,
}

/// `merge_ids`: `secondary` (and whatever was merged into it) joins `primary`'s person.
pub struct Merge {
    pub primary: u64,
    pub secondary: u64,
}

/// The agent an `X-Agora-Actor` names: an identity's primary id for an identity id or a linked
/// account (`<platform_type>:<platform_identifier>`), else the text as given.
pub struct Resolve {
    pub agent: String,
}

impl VirtualActor for Identities {
    const KIND: &'static str = "identities";
    type Env = ActorsEnv;
    /// Reads its few auxiliary records on demand (or has none) and never sets reminders: a
    /// fresh activation probes only its state.
    const RESTORE_AUX: bool = false;
    const REMINDERS: bool = false;

    /// The community's partition.
    fn partition(key: &str) -> u32 {
        agora_runtime::partition_of(key)
    }

    fn restore(id: &ActorId, _env: &ActorsEnv, stored: Stored) -> Result<Self, String> {
        let state = match stored.state {
            Some(b) => {
                decode_record::<State>(RECORD, VERSION, &b)
                    .map_err(|e| e.to_string())?
                    .1
            }
            None => State::default(),
        };
        Ok(Identities {
            slug: id.key.clone(),
            state,
        })
    }

    fn on_reminder(&mut self, _env: &ActorsEnv, _r: Reminder, _fx: &mut Effects) {}
}

impl Message<Identities> for CreateIds {
    type Reply = Result<Vec<u64>, ActorError>;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        for id in &self.ids {
            a.state.identities.insert(*id, *id);
            fx.put_index(index_key(*id), a.slug.clone().into_bytes());
        }
        a.save(fx);
        Ok(self.ids)
    }
}

impl Message<Identities> for Link {
    type Reply = Result<Value, ActorError>;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let new = self.account;
        if a.primary(new.external_id).is_none() {
            return Err(unknown(new.external_id));
        }
        let existing = a.state.accounts.iter().position(|x| {
            x.same(
                &new.platform_type,
                &new.platform_identifier,
                new.community_platform_id.as_deref(),
            )
        });
        match existing {
            Some(i) => {
                let old = &a.state.accounts[i];
                if rank(&new.link_quality) > rank(&old.link_quality) {
                    a.state.accounts[i] = new.clone();
                } else if old.external_id != new.external_id {
                    return Err(refuse(
                        ErrorCode::AccountLinked,
                        format!(
                            "{}:{} is linked to identity {} with a quality at least as good",
                            new.platform_type, new.platform_identifier, old.external_id
                        ),
                        Some("platform_identifier"),
                    ));
                } else {
                    return Ok(old.json(&a.slug));
                }
            }
            None => a.state.accounts.push(new.clone()),
        }
        a.save(fx);
        Ok(new.json(&a.slug))
    }
}

impl Message<Identities> for Unlink {
    type Reply = Result<Value, ActorError>;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let before = a.state.accounts.len();
        a.state.accounts.retain(|x| {
            !x.same(
                &self.platform_type,
                &self.platform_identifier,
                self.community_platform_id.as_deref(),
            )
        });
        if a.state.accounts.len() == before {
            return Err(refuse(
                ErrorCode::AccountNotFound,
                format!(
                    "no linked account {}:{}",
                    self.platform_type, self.platform_identifier
                ),
                Some("platform_identifier"),
            ));
        }
        a.save(fx);
        Ok(json!({}))
    }
}

impl Message<Identities> for GetUser {
    type Reply = Result<Value, ActorError>;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        a.identity(self.external_id)
            .ok_or_else(|| unknown(self.external_id))
    }
}

impl Message<Identities> for GetUsers {
    type Reply = Result<Value, ActorError>;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        let filtered = self.platform_type.is_some()
            || self.community_platform_id.is_some()
            || self.link_type.is_some()
            || self.link_quality.is_some()
            || self.platform_identifier.is_some();
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let mut ids: Vec<u64> = if filtered {
            a.state
                .accounts
                .iter()
                .filter(|x| {
                    eq(&self.platform_type, &x.platform_type)
                        && eq(
                            &self.community_platform_id,
                            x.community_platform_id.as_deref().unwrap_or(""),
                        )
                        && eq(&self.link_type, &x.link_type)
                        && eq(&self.link_quality, &x.link_quality)
                        && eq(&self.platform_identifier, &x.platform_identifier)
                })
                .filter_map(|x| a.primary(x.external_id))
                .collect()
        } else {
            a.state
                .identities
                .iter()
                .filter(|(s, p)| s == p)
                .map(|(s, _)| *s)
                .collect()
        };
        ids.sort_unstable();
        ids.dedup();
        Ok(Value::Array(
            ids.into_iter().filter_map(|i| a.identity(i)).collect(),
        ))
    }
}

impl Message<Identities> for FilterUsers {
    type Reply = Result<Value, ActorError>;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        Ok(Value::Array(
            self.external_ids
                .iter()
                .filter_map(|i| a.identity(*i))
                .collect(),
        ))
    }
}

impl Message<Identities> for GetLinkedAccount {
    type Reply = Result<Value, ActorError>;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        let primary = a
            .primary(self.external_id)
            .ok_or_else(|| unknown(self.external_id))?;
        Ok(a.state
            .accounts
            .iter()
            .find(|x| {
                a.primary(x.external_id) == Some(primary)
                    && x.platform_type == self.platform_type
                    && (self.community_platform_id.is_none()
                        || x.community_platform_id == self.community_platform_id)
            })
            .map(|x| x.json(&a.slug))
            .unwrap_or_else(|| json!({})))
    }
}

impl Message<Identities> for Merge {
    type Reply = Result<Value, ActorError>;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, fx: &mut Effects) -> Self::Reply {
        let p = a
            .primary(self.primary)
            .ok_or_else(|| unknown(self.primary))?;
        let s = a
            .primary(self.secondary)
            .ok_or_else(|| unknown(self.secondary))?;
        for primary in a.state.identities.values_mut() {
            if *primary == s {
                *primary = p;
            }
        }
        a.save(fx);
        Ok(a.identity(self.secondary).unwrap_or(Value::Null))
    }
}

impl Identities {
    /// The platform types of the accounts linked to person `primary`.
    fn platforms(&self, primary: u64) -> Vec<String> {
        let mut out: Vec<String> = self
            .state
            .accounts
            .iter()
            .filter(|a| self.primary(a.external_id) == Some(primary))
            .map(|a| a.platform_type.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// An agent as the governance engine sees it: its id, and the platforms it has linked
/// accounts on (for `linked_account` roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub platforms: Vec<String>,
}

impl Message<Identities> for Resolve {
    type Reply = Agent;

    fn handle(self, a: &mut Identities, _env: &ActorsEnv, _fx: &mut Effects) -> Self::Reply {
        let by_id = self.agent.parse::<u64>().ok().and_then(|i| a.primary(i));
        let by_account = || {
            let (typ, ident) = self.agent.split_once(':')?;
            a.state
                .accounts
                .iter()
                .find(|x| x.platform_type == typ && x.platform_identifier == ident)
                .and_then(|x| a.primary(x.external_id))
        };
        match by_id.or_else(by_account) {
            Some(p) => Agent {
                id: p.to_string(),
                platforms: a.platforms(p),
            },
            None => Agent {
                id: self.agent,
                platforms: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualities_rank_weakest_first() {
        assert!(rank("confirmed (strong)") > rank("confirmed (weak)"));
        assert!(rank("confirmed (weak)") > rank("unconfirmed"));
        assert!(rank("unconfirmed") > rank("unknown"));
    }
}
