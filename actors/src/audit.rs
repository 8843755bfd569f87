//! The plugin audit log: one append-only entry per install, enable, disable, settings change
//! and refused change, written in the same commit as the change it records (or, for a refused
//! change, on its own), and read back with filters and a cursor.

use agora_plugins::PluginRegistry;
use agora_storage::{decode_record, encode_record};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Principal;

const RECORD: &str = "audit";
const VERSION: u16 = 1;

/// What a secret setting reads as in the log and in every API answer.
pub const MASK: &str = "********";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// Who asked: the caller (`driver`, `dev` without auth, `public`, or a part of the node).
    pub who: String,
    /// The agent the caller acted for (`X-Agora-Actor`), if any.
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub community: Option<String>,
    pub plugin: String,
    /// `enable`, `disable`, `settings_change` or the operation that failed.
    pub action: String,
    /// `success` or `error`.
    pub outcome: String,
    pub message: String,
    /// Settings before and after (JSON text, secrets masked).
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
}

impl AuditEntry {
    /// A successful `action` on `plugin` by `by`, at `at_ms`; the caller fills in the rest.
    pub fn new(by: &Principal, at_ms: u64, plugin: &str, action: &str) -> AuditEntry {
        AuditEntry {
            at_ms,
            who: by.who().to_string(),
            agent: by.agent().map(str::to_owned),
            community: None,
            plugin: plugin.to_string(),
            action: action.to_string(),
            outcome: "success".into(),
            message: String::new(),
            before: None,
            after: None,
        }
    }

    /// The same entry, as a refusal saying `message`.
    pub fn refused(mut self, message: String) -> AuditEntry {
        self.outcome = "error".into();
        self.message = message;
        self
    }

    pub fn in_community(mut self, community: &str) -> AuditEntry {
        self.community = Some(community.to_string());
        self
    }

    pub fn encode(&self) -> Option<Vec<u8>> {
        encode_record(RECORD, VERSION, self).ok()
    }

    pub fn decode(bytes: &[u8]) -> Option<AuditEntry> {
        decode_record(RECORD, VERSION, bytes).ok().map(|(_, e)| e)
    }
}

/// Filters of `GET /api/v1/plugin-audit-log`; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub plugin: Option<String>,
    pub community: Option<String>,
    pub action: Option<String>,
    pub since_ms: Option<u64>,
}

impl AuditFilter {
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.plugin.as_ref().is_none_or(|p| *p == e.plugin)
            && self
                .community
                .as_ref()
                .is_none_or(|c| Some(c) == e.community.as_ref())
            && self.action.as_ref().is_none_or(|a| *a == e.action)
            && self.since_ms.is_none_or(|s| e.at_ms >= s)
    }
}

/// `config` with every property the plugin's schema marks `"x-secret": true` replaced by
/// [`MASK`] (recursively through nested objects).
pub fn mask_secrets(registry: &PluginRegistry, plugin: &str, config: &Value) -> Value {
    match registry.get(plugin) {
        Some(p) => mask(&p.meta().config_schema, config),
        None => config.clone(),
    }
}

fn mask(schema: &Value, value: &Value) -> Value {
    let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) else {
        return value.clone();
    };
    let mut out = obj.clone();
    for (k, v) in out.iter_mut() {
        if let Some(s) = props.get(k) {
            if s.get("x-secret").and_then(Value::as_bool) == Some(true) && !v.is_null() {
                *v = Value::String(MASK.into());
            } else {
                *v = mask(s, v);
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let schema = json!({"properties": {
            "token": {"type": "string", "x-secret": true},
            "nested": {"properties": {"key": {"x-secret": true}, "plain": {}}},
            "plain": {}
        }});
        let v = json!({"token": "t0k", "nested": {"key": "k", "plain": 1}, "plain": "p"});
        assert_eq!(
            mask(&schema, &v),
            json!({"token": MASK, "nested": {"key": MASK, "plain": 1}, "plain": "p"})
        );
    }

    #[test]
    fn entries_round_trip_and_filters_combine() {
        let by = crate::Principal::new(crate::Caller::Driver, crate::AgentId::parse(b"ana").ok());
        let e = AuditEntry {
            after: Some("{}".into()),
            ..AuditEntry::new(&by, 5, "randomness", "enable").in_community("c")
        };
        assert_eq!(
            (e.who.as_str(), e.agent.as_deref()),
            ("driver", Some("ana"))
        );
        assert_eq!(AuditEntry::decode(&e.encode().unwrap()), Some(e.clone()));
        let f = AuditFilter {
            plugin: Some("randomness".into()),
            since_ms: Some(5),
            ..AuditFilter::default()
        };
        assert!(f.matches(&e));
        assert!(!AuditFilter {
            community: Some("d".into()),
            ..AuditFilter::default()
        }
        .matches(&e));
    }
}
