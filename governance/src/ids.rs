//! Identifiers: agent ids (opaque strings from the driver), the numeric ids the core allocates
//! (items, permissions, conditions, actions), role keys and the object references a change
//! targets (`community`, `owners`, `governors`, `role:<name>`, `permission:<id>`,
//! `condition:<id>`, `item:<id>`, `action:<id>`).
//!
//! Ids are checked strictly, because they end up in storage keys and URLs: an agent id is 1 to
//! 200 bytes of UTF-8 without control characters; a numeric id is 1 to 20 ASCII digits without
//! a leading zero that fits in a `u64` and is not 0. Anything else is 400 `invalid_id`, before
//! any lookup; a well-formed id that names nothing is 404 `unknown_target`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::GovError;

/// The longest agent id, in bytes (the contract's `X-Agora-Actor` limit).
pub const MAX_AGENT_BYTES: usize = 200;
/// The longest role name, in bytes.
pub const MAX_ROLE_BYTES: usize = 64;

/// Checks an agent id: 1 to 200 bytes, no control characters, not only whitespace.
pub fn check_agent_id(id: &str, field: &str) -> Result<(), GovError> {
    if id.is_empty() || id.len() > MAX_AGENT_BYTES {
        return Err(GovError::bad(
            "invalid_id",
            Some(field),
            format!("an agent id is 1 to {MAX_AGENT_BYTES} bytes"),
        ));
    }
    if id.chars().any(char::is_control) || id.trim().is_empty() {
        return Err(GovError::bad(
            "invalid_id",
            Some(field),
            "an agent id has no control characters and is not blank",
        ));
    }
    Ok(())
}

/// Checks a role name: 1 to 64 bytes of ASCII letters, digits, `_`, `-` and `.`.
pub fn check_role_name(name: &str, field: &str) -> Result<(), GovError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ROLE_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(GovError::bad(
            "invalid_id",
            Some(field),
            format!("a role name is 1 to {MAX_ROLE_BYTES} ASCII letters, digits, '_', '-' or '.'"),
        ))
    }
}

/// Parses a numeric id as the API writes it (a decimal string).
pub fn parse_numeric_id(text: &str, field: &str) -> Result<u64, GovError> {
    let bad = || {
        GovError::bad(
            "invalid_id",
            Some(field),
            "an id is a positive decimal number of at most 20 digits, without leading zeros",
        )
    };
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if text.starts_with('0') {
        return Err(bad());
    }
    text.parse::<u64>().map_err(|_| bad())
}

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

numeric_id!(
    /// An item's id, allocated by the core in creation order from 1.
    ItemId
);
numeric_id!(
    /// A permission's id.
    PermissionId
);
numeric_id!(
    /// A condition instance's id (one per condition of a waiting action).
    ConditionId
);
numeric_id!(
    /// An action's id.
    ActionId
);
numeric_id!(
    /// A notice's id.
    NoticeId
);

/// A role: a community role (`of: None`, `members` among them) or a role of an item (a
/// project's `moderators`, an organisation's `initiators`: section 6 of the contract).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoleKey {
    pub name: Box<str>,
    pub of: Option<ItemId>,
}

impl RoleKey {
    pub fn community(name: &str) -> Self {
        RoleKey {
            name: name.into(),
            of: None,
        }
    }

    pub fn is_members(&self) -> bool {
        self.of.is_none() && &*self.name == MEMBERS_ROLE
    }
}

impl fmt::Display for RoleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.of {
            None => f.write_str(&self.name),
            Some(of) => write!(f, "{} of item {of}", self.name),
        }
    }
}

/// The built-in role every member holds.
pub const MEMBERS_ROLE: &str = "members";

/// What a change targets, as the contract writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectRef {
    Community,
    Owners,
    Governors,
    Role(RoleKey),
    Permission(PermissionId),
    Condition(ConditionId),
    Item(ItemId),
    Action(ActionId),
}

impl ObjectRef {
    /// Parses a target string (`item:42`, `role:moderators`, `community`).
    pub fn parse(text: &str, field: &str) -> Result<ObjectRef, GovError> {
        if text.len() > 300 {
            return Err(GovError::bad(
                "invalid_id",
                Some(field),
                "a target is at most 300 bytes",
            ));
        }
        match text {
            "community" => return Ok(ObjectRef::Community),
            "owners" => return Ok(ObjectRef::Owners),
            "governors" => return Ok(ObjectRef::Governors),
            _ => {}
        }
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(GovError::bad(
                "invalid_target",
                Some(field),
                "a target is community, owners, governors, role:<name>, permission:<id>, \
                 condition:<id>, item:<id> or action:<id>",
            ));
        };
        Ok(match kind {
            "role" => {
                check_role_name(rest, field)?;
                ObjectRef::Role(RoleKey::community(rest))
            }
            "permission" => ObjectRef::Permission(PermissionId(parse_numeric_id(rest, field)?)),
            "condition" => ObjectRef::Condition(ConditionId(parse_numeric_id(rest, field)?)),
            "item" => ObjectRef::Item(ItemId(parse_numeric_id(rest, field)?)),
            "action" => ObjectRef::Action(ActionId(parse_numeric_id(rest, field)?)),
            _ => {
                return Err(GovError::bad(
                    "invalid_target",
                    Some(field),
                    format!("'{kind}' is not a kind of target"),
                ))
            }
        })
    }

    pub fn item(&self) -> Option<ItemId> {
        match self {
            ObjectRef::Item(id) => Some(*id),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::Community => f.write_str("community"),
            ObjectRef::Owners => f.write_str("owners"),
            ObjectRef::Governors => f.write_str("governors"),
            ObjectRef::Role(k) => write!(f, "role:{}", k.name),
            ObjectRef::Permission(id) => write!(f, "permission:{id}"),
            ObjectRef::Condition(id) => write!(f, "condition:{id}"),
            ObjectRef::Item(id) => write!(f, "item:{id}"),
            ObjectRef::Action(id) => write!(f, "action:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for t in [
            "community",
            "owners",
            "governors",
            "role:moderators",
            "permission:3",
            "condition:18446744073709551615",
            "item:42",
            "action:1",
        ] {
            assert_eq!(ObjectRef::parse(t, "target").unwrap().to_string(), t);
        }
    }

    #[test]
    fn odd_and_oversized_ids_are_refused() {
        for t in [
            "item:",
            "item:0",
            "item:007",
            "item:-1",
            "item:1.5",
            "item:18446744073709551616",
            "item:123456789012345678901",
            "item: 1",
            "role:",
            "role:a b",
            "nothing",
            "thing:1",
        ] {
            let e = ObjectRef::parse(t, "target").unwrap_err();
            assert!(
                e.code == "invalid_id" || e.code == "invalid_target",
                "{t}: {e:?}"
            );
            assert_eq!(e.status.http(), 400);
        }
        assert!(ObjectRef::parse(&format!("role:{}", "a".repeat(65)), "t").is_err());
        assert!(ObjectRef::parse(&"x".repeat(301), "t").is_err());
    }

    #[test]
    fn agent_ids_are_opaque_but_bounded() {
        check_agent_id("github:ana", "a").unwrap();
        check_agent_id("é", "a").unwrap();
        check_agent_id(&"a".repeat(200), "a").unwrap();
        assert!(check_agent_id(&"a".repeat(201), "a").is_err());
        assert!(check_agent_id("", "a").is_err());
        assert!(check_agent_id("a\nb", "a").is_err());
        assert!(check_agent_id("   ", "a").is_err());
    }
}
