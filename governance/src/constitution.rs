//! The constitution: owners and governors (each `{actors, roles, conditions}`), whether
//! non-governors may make proposals, the members with their join times, the custom roles, and
//! the community object's own switches.
//!
//! **Invariants** (checked in `scratch.rs` whenever a change could break them, 400 and nothing
//! recorded): at least one agent holds owner authority, named in `actors` or holding one of its
//! `roles` at that moment (`last_owner`); a role named by a permission, by owners or governors
//! or by any of their conditions cannot be removed (`role_in_use`); an assigned role's holders
//! are members (`not_a_member`); role names are unique, `members` included (`duplicate_role`).
//! Removing a member takes them out of every assigned role too.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::conditions::ConditionSpec;
use crate::ids::RoleKey;
use crate::roles::{role_ref_json, Role};
use crate::when::Millis;

/// Per-object switches (Concord's): `foundational_override` sends every change of the object
/// to the owners; `governing` lets the governors decide what no permission covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switches {
    pub foundational_override: bool,
    pub governing: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            foundational_override: false,
            governing: true,
        }
    }
}

/// Owners or governors: who holds the authority, and the conditions it is exercised under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Authority {
    pub actors: Vec<Box<str>>,
    pub roles: Vec<RoleKey>,
    pub conditions: Vec<ConditionSpec>,
}

impl Authority {
    pub fn single(agent: &str) -> Authority {
        Authority {
            actors: vec![agent.into()],
            roles: Vec::new(),
            conditions: Vec::new(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "actors": self.actors.iter().map(|a| &**a).collect::<Vec<_>>(),
            "roles": self.roles.iter().map(role_ref_json).collect::<Vec<_>>(),
            "conditions": self.conditions.iter().map(ConditionSpec::to_json).collect::<Vec<_>>(),
        })
    }

    /// Every role this authority depends on: its roles and those its conditions name.
    pub(crate) fn role_refs(&self) -> impl Iterator<Item = &RoleKey> {
        self.roles
            .iter()
            .chain(self.conditions.iter().flat_map(|c| c.roles()))
    }
}

/// The constitution of one community.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constitution {
    pub name: String,
    pub owners: Authority,
    pub governors: Authority,
    pub proposals: bool,
    /// Member → when they joined.
    pub members: HashMap<Box<str>, Millis>,
    pub roles: BTreeMap<RoleKey, Role>,
    /// The community object's switches.
    pub switches: Switches,
}

impl Constitution {
    /// Concord's default: the founder is the only member, owner and governor, unconditioned.
    pub fn founded_by(founder: &str, now: Millis) -> Constitution {
        Constitution {
            name: String::new(),
            owners: Authority::single(founder),
            governors: Authority::single(founder),
            proposals: true,
            members: HashMap::from([(founder.into(), now)]),
            roles: BTreeMap::new(),
            switches: Switches::default(),
        }
    }

    /// Whether owners or governors hold their authority through `role`.
    pub fn authority_role(&self, role: &RoleKey) -> bool {
        self.owners.roles.contains(role) || self.governors.roles.contains(role)
    }
}
