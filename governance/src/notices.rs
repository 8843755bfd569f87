//! Notices and subscriptions (seed: Deme's ActionNotices; contract section 5).
//!
//! Every create, edit, deactivate, reactivate and destroy writes a notice on the item. A change
//! of a pointer writes a `relation` notice on the item pointed at, naming the pointing item
//! (`from_item`, `from_version`) and its field: `collections` when an item is added to or
//! removed from a collection, `container` when an item is created inside another, `item` when a
//! comment is written about an item. Reading an item's notices needs `view action_notices` on
//! it; a relation notice also needs `view <field>` on its from-item.
//!
//! A subscription (one per agent and item) matches a notice on its own item, and with
//! `members` one on an item directly in it (created in it or added to it), and with `deep` one
//! on any item inside it, however deep (cycles are cut). Of those, kinds filter: create and
//! edit notices need `edit`; deactivate, reactivate and destroy need `delete`; relation notices
//! from comments (field `item`) need `comments`; other relation notices need `relations`. A
//! matching notice is delivered only when the subscriber may read it (the rule above), decided
//! at delivery time.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ids::{check_agent_id, ItemId, NoticeId};
use crate::item_types::Field;
use crate::when::{rfc3339, Millis};

/// What a notice records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    Create,
    Edit,
    Deactivate,
    Reactivate,
    Destroy,
    Relation,
    /// A module's phase started (section 6).
    PhaseStarted,
    /// A module's phase ended.
    PhaseEnded,
}

impl NoticeKind {
    pub fn name(self) -> &'static str {
        match self {
            NoticeKind::Create => "create",
            NoticeKind::Edit => "edit",
            NoticeKind::Deactivate => "deactivate",
            NoticeKind::Reactivate => "reactivate",
            NoticeKind::Destroy => "destroy",
            NoticeKind::Relation => "relation",
            NoticeKind::PhaseStarted => "phase_started",
            NoticeKind::PhaseEnded => "phase_ended",
        }
    }
}

/// A notice (an auxiliary record the caller stores and delivers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub id: NoticeId,
    pub kind: NoticeKind,
    pub item: ItemId,
    /// The item's version after the action.
    pub version: u32,
    pub agent: String,
    pub at: Millis,
    pub summary: String,
    /// Relation notices: the pointing item, its version, and its field that points here.
    pub from_item: Option<ItemId>,
    pub from_version: Option<u32>,
    pub field: Option<Field>,
}

impl Notice {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id.to_string(),
            "kind": self.kind.name(),
            "item": self.item.to_string(),
            "version": self.version,
            "agent": self.agent,
            "at": rfc3339(self.at),
            "summary": self.summary,
        });
        if let (Some(o), Some(from)) = (v.as_object_mut(), self.from_item) {
            o.insert("from_item".into(), json!(from.to_string()));
            o.insert("from_version".into(), json!(self.from_version));
            o.insert("field".into(), json!(self.field.map(Field::name)));
        }
        v
    }
}

/// A subscription of one agent to one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub agent: Box<str>,
    pub item: ItemId,
    pub deep: bool,
    pub edit: bool,
    pub delete: bool,
    pub comments: bool,
    pub relations: bool,
    pub members: bool,
    /// Where deliveries go; checked by the caller (https, or http on loopback in dev mode).
    pub deliver_to: String,
}

impl Subscription {
    /// Reads `{"item","deep","edit","delete","comments","relations","members","deliver_to"}`
    /// for `agent`. Flags default to `edit`, `delete` and `comments` on, the rest off.
    pub fn parse(agent: &str, v: &Value) -> Result<Subscription, crate::GovError> {
        use crate::GovError;
        check_agent_id(agent, "actor")?;
        let o = v
            .as_object()
            .ok_or_else(|| GovError::bad("invalid_body", None, "the body is a JSON object"))?;
        const KEYS: [&str; 8] = [
            "item",
            "deep",
            "edit",
            "delete",
            "comments",
            "relations",
            "members",
            "deliver_to",
        ];
        if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(GovError::invalid(
                k,
                format!("'{k}' is not part of a subscription"),
            ));
        }
        let item = match o.get("item") {
            Some(Value::String(s)) => ItemId(crate::ids::parse_numeric_id(s, "item")?),
            _ => return Err(GovError::invalid("item", "'item' is an item id (a string)")),
        };
        let flag = |k: &str, default: bool| -> Result<bool, GovError> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(GovError::invalid(k, format!("'{k}' is true or false"))),
            }
        };
        let deliver_to = match o.get("deliver_to") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 2000 => s.clone(),
            _ => {
                return Err(GovError::invalid(
                    "deliver_to",
                    "'deliver_to' is a URL of at most 2000 bytes",
                ))
            }
        };
        Ok(Subscription {
            agent: agent.into(),
            item,
            deep: flag("deep", false)?,
            edit: flag("edit", true)?,
            delete: flag("delete", true)?,
            comments: flag("comments", true)?,
            relations: flag("relations", false)?,
            members: flag("members", false)?,
            deliver_to,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "agent": &*self.agent,
            "item": self.item.to_string(),
            "deep": self.deep, "edit": self.edit, "delete": self.delete,
            "comments": self.comments, "relations": self.relations, "members": self.members,
            "deliver_to": self.deliver_to,
        })
    }

    /// Whether this subscription wants a notice of this kind (the kind filter only).
    pub fn wants_kind(&self, notice: &Notice) -> bool {
        match notice.kind {
            NoticeKind::Create | NoticeKind::Edit => self.edit,
            NoticeKind::Deactivate | NoticeKind::Reactivate | NoticeKind::Destroy => self.delete,
            NoticeKind::Relation if notice.field == Some(Field::Item) => self.comments,
            NoticeKind::Relation => self.relations,
            // A subscription to a module delivers its phase changes, whatever it filters.
            NoticeKind::PhaseStarted | NoticeKind::PhaseEnded => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind, field: Option<Field>) -> Notice {
        Notice {
            id: NoticeId(1),
            kind,
            item: ItemId(2),
            version: 1,
            agent: "ana".into(),
            at: 0,
            summary: String::new(),
            from_item: field.map(|_| ItemId(3)),
            from_version: field.map(|_| 1),
            field,
        }
    }

    #[test]
    fn kinds_filter_by_flag() {
        let s =
            Subscription::parse("ben", &json!({"item": "2", "deliver_to": "https://x"})).unwrap();
        assert!(s.wants_kind(&notice(NoticeKind::Edit, None)));
        assert!(s.wants_kind(&notice(NoticeKind::Destroy, None)));
        assert!(s.wants_kind(&notice(NoticeKind::Relation, Some(Field::Item))));
        assert!(!s.wants_kind(&notice(NoticeKind::Relation, Some(Field::Collections))));
        let n = notice(NoticeKind::Relation, Some(Field::Collections)).to_json();
        assert_eq!(n["field"], "collections");
        assert_eq!(n["from_item"], "3");
        assert!(Subscription::parse("ben", &json!({"item": "x", "deliver_to": "u"})).is_err());
        assert!(Subscription::parse("ben", &json!({"item": "2"})).is_err());
    }
}
