//! The item type registry (item types are code, as in Deme): each type's fields, which of them
//! an edit may change, which are required, whether items may be created inside it, and which
//! roles an item of that type carries (section 6: organisations carry `initiators`, projects
//! `moderators` and `participants`).
//!
//! Fields are a closed set too, so abilities such as `view body` or `edit description` are
//! checked when a permission is added, and a typo is a 400 rather than a permission that never
//! applies. Besides content fields there are pointer fields, which relation notices name:
//! `item` and `item_version` (a comment's subject), `collections` (memberships) and `container`
//! (where an item was created). The participation types have typed structure fields
//! (`access`, `draft`, `archived`, `weight`, `phases`), checked here and read into an
//! item's [`crate::participation::Structure`] when it is created or edited.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::GovError;
use crate::participation::{parse_phases, phases_json, Access};

/// A field of an item, as abilities (`view <field>`, `edit <field>`) and notices name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Field {
    Name,
    Description,
    Body,
    /// A comment's subject (an item id).
    Item,
    /// The version of its subject a comment was written about.
    ItemVersion,
    /// The collections an item was added to (a pointer field: relation notices name it).
    Collections,
    /// The container an item was created in (a pointer field).
    Container,
    /// A project's access rule: `public`, `semipublic` or `private`.
    Access,
    /// A project's or module's draft switch (a boolean).
    Draft,
    /// A project's archived switch (a boolean).
    Archived,
    /// A module's weight (an integer; the lowest weight among active phases wins).
    Weight,
    /// A module's phases (a list of `{"name","type","start","end","weight"}`).
    Phases,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::Name,
        Field::Description,
        Field::Body,
        Field::Item,
        Field::ItemVersion,
        Field::Collections,
        Field::Container,
        Field::Access,
        Field::Draft,
        Field::Archived,
        Field::Weight,
        Field::Phases,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Description => "description",
            Field::Body => "body",
            Field::Item => "item",
            Field::ItemVersion => "item_version",
            Field::Collections => "collections",
            Field::Container => "container",
            Field::Access => "access",
            Field::Draft => "draft",
            Field::Archived => "archived",
            Field::Weight => "weight",
            Field::Phases => "phases",
        }
    }

    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The longest value of a content field, in bytes.
    pub(crate) fn max_bytes(self) -> usize {
        match self {
            Field::Name => 500,
            Field::Description => 20_000,
            Field::Body => 1_000_000,
            _ => 64,
        }
    }
}

/// An item type, the participation types of section 6 (`organisation`, `project`, `module`)
/// among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum ItemType {
    Item,
    Collection,
    Document,
    Comment,
    Proposal,
    Idea,
    Organisation,
    Project,
    Module,
}

impl ItemType {
    pub const ALL: [ItemType; 9] = [
        ItemType::Item,
        ItemType::Collection,
        ItemType::Document,
        ItemType::Comment,
        ItemType::Proposal,
        ItemType::Idea,
        ItemType::Organisation,
        ItemType::Project,
        ItemType::Module,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ItemType::Item => "item",
            ItemType::Collection => "collection",
            ItemType::Document => "document",
            ItemType::Comment => "comment",
            ItemType::Proposal => "proposal",
            ItemType::Idea => "idea",
            ItemType::Organisation => "organisation",
            ItemType::Project => "project",
            ItemType::Module => "module",
        }
    }

    pub fn parse(name: &str) -> Option<ItemType> {
        ItemType::ALL.into_iter().find(|t| t.name() == name)
    }

    pub(crate) fn from_u8(v: u8) -> Option<ItemType> {
        ItemType::ALL.get(usize::from(v)).copied()
    }

    /// Whether `create_item` may target an item of this type (items are then created in it).
    pub fn is_container(self) -> bool {
        matches!(
            self,
            ItemType::Collection | ItemType::Organisation | ItemType::Project | ItemType::Module
        )
    }

    /// Whether an item of this type may be created in `container` (`None`: the community).
    /// The participation structure nests strictly: organisations in the community, projects
    /// in the community or an organisation, modules in a project; an organisation holds only
    /// projects, a project only modules, and a module holds the content.
    pub fn may_be_created_in(self, container: Option<ItemType>) -> bool {
        match (self, container) {
            (ItemType::Organisation, c) => c.is_none(),
            (ItemType::Project, c) => matches!(c, None | Some(ItemType::Organisation)),
            (ItemType::Module, c) => c == Some(ItemType::Project),
            (_, Some(ItemType::Organisation | ItemType::Project)) => false,
            _ => true,
        }
    }

    /// Whether this type is part of the participation structure (organisation, project,
    /// module).
    pub fn is_structure(self) -> bool {
        matches!(
            self,
            ItemType::Organisation | ItemType::Project | ItemType::Module
        )
    }

    /// Whether `add_to_collection` may target an item of this type.
    pub fn is_collection(self) -> bool {
        matches!(self, ItemType::Collection)
    }

    /// Whether `create_item` may create this type (comments come from the `comment` change).
    pub fn creatable(self) -> bool {
        !matches!(self, ItemType::Comment)
    }

    /// The content fields an item of this type has; all of them are strings.
    pub fn fields(self) -> &'static [Field] {
        match self {
            ItemType::Item | ItemType::Collection | ItemType::Idea | ItemType::Organisation => {
                &[Field::Name, Field::Description]
            }
            ItemType::Project => &[
                Field::Name,
                Field::Description,
                Field::Access,
                Field::Draft,
                Field::Archived,
            ],
            ItemType::Module => &[
                Field::Name,
                Field::Description,
                Field::Draft,
                Field::Weight,
                Field::Phases,
            ],
            ItemType::Document | ItemType::Proposal => {
                &[Field::Name, Field::Description, Field::Body]
            }
            ItemType::Comment => &[Field::Body, Field::Item, Field::ItemVersion],
        }
    }

    /// The fields an edit may change.
    pub fn editable(self) -> &'static [Field] {
        match self {
            ItemType::Comment => &[Field::Body],
            other => other.fields(),
        }
    }

    /// The fields `create_item` (or `comment`) must give.
    pub fn required(self) -> &'static [Field] {
        match self {
            ItemType::Comment => &[Field::Body],
            _ => &[Field::Name],
        }
    }

    /// The roles an item of this type carries (`{"role": .., "of": "<item id>"}`).
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            ItemType::Organisation => &["initiators"],
            ItemType::Project => &["moderators", "participants"],
            _ => &[],
        }
    }
}

/// Item field values: a JSON object of field name → value.
pub type Fields = serde_json::Map<String, Value>;

/// The largest module weight, either sign.
pub const MAX_WEIGHT: u64 = 1_000_000;

/// A field's value when a create does not give it. Projects and modules start as drafts (as
/// in adhocracy4, publishing is a deliberate edit) and projects start public.
fn default_value(f: Field) -> Value {
    match f {
        Field::Draft => Value::Bool(true),
        Field::Archived => Value::Bool(false),
        Field::Access => Value::String("public".into()),
        Field::Weight => Value::from(0),
        Field::Phases => Value::Array(Vec::new()),
        _ => Value::String(String::new()),
    }
}

/// Checks the `fields` of a create or edit for `typ`: known, editable (or settable at
/// creation), strings within their size. `creating` also fills in the defaults (`""` for
/// `description`) and requires the required fields.
pub(crate) fn check_fields(
    typ: ItemType,
    fields: &Fields,
    creating: bool,
    path: &str,
) -> Result<Fields, GovError> {
    let mut out = Fields::new();
    for (key, value) in fields {
        let at = format!("{path}.{key}");
        let field = Field::parse(key)
            .filter(|f| typ.editable().contains(f))
            .ok_or_else(|| {
                GovError::invalid(
                    &at,
                    format!("a {} has no field '{key}' that can be set", typ.name()),
                )
            })?;
        match field {
            Field::Draft | Field::Archived => {
                if !value.is_boolean() {
                    return Err(GovError::invalid(&at, format!("'{key}' must be a boolean")));
                }
            }
            Field::Weight => {
                if value.as_i64().is_none_or(|w| w.unsigned_abs() > MAX_WEIGHT) {
                    return Err(GovError::invalid(
                        &at,
                        format!("'weight' must be an integer within ±{MAX_WEIGHT}"),
                    ));
                }
            }
            Field::Access => {
                if value.as_str().and_then(Access::parse).is_none() {
                    return Err(GovError::invalid(
                        &at,
                        "'access' is \"public\", \"semipublic\" or \"private\"",
                    ));
                }
            }
            Field::Phases => {
                // Shape, types, the registry and start < end; the normalised list is kept.
                let phases = parse_phases(value, &at)?;
                out.insert(key.clone(), phases_json(&phases));
                continue;
            }
            _ => {
                let Value::String(s) = value else {
                    return Err(GovError::invalid(&at, format!("'{key}' must be a string")));
                };
                if s.len() > field.max_bytes() {
                    return Err(GovError::invalid(
                        &at,
                        format!("'{key}' is longer than {} bytes", field.max_bytes()),
                    ));
                }
                if field == Field::Name && s.trim().is_empty() {
                    return Err(GovError::invalid(&at, "'name' must not be blank"));
                }
            }
        }
        out.insert(key.clone(), value.clone());
    }
    if creating {
        for f in typ.required() {
            if !out.contains_key(f.name()) {
                return Err(GovError::invalid(
                    &format!("{path}.{}", f.name()),
                    format!("a {} needs '{}'", typ.name(), f.name()),
                ));
            }
        }
        for f in typ.editable() {
            out.entry(f.name()).or_insert_with(|| default_value(*f));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Fields {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn registry_round_trips_names() {
        for t in ItemType::ALL {
            assert_eq!(ItemType::parse(t.name()), Some(t));
            assert_eq!(ItemType::from_u8(t as u8), Some(t));
        }
        for f in Field::ALL {
            assert_eq!(Field::parse(f.name()), Some(f));
        }
    }

    #[test]
    fn fields_are_checked_and_defaulted() {
        let f = check_fields(ItemType::Document, &obj(json!({"name": "n"})), true, "f").unwrap();
        assert_eq!(f["description"], "");
        assert_eq!(f["body"], "");
        let e = check_fields(ItemType::Item, &obj(json!({"body": "x"})), true, "f").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("f.body"));
        let e = check_fields(ItemType::Item, &obj(json!({})), true, "f").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("f.name"));
        assert!(check_fields(ItemType::Item, &obj(json!({"name": 3})), true, "f").is_err());
        assert!(
            check_fields(ItemType::Comment, &obj(json!({"item": "3"})), false, "f").is_err(),
            "a comment's subject is immutable"
        );
        let long = "x".repeat(501);
        assert!(check_fields(ItemType::Item, &obj(json!({"name": long})), false, "f").is_err());
    }
}
