//! Item metadata as the community keeps it in memory (contract section 5), and what is built
//! from it: the reach of a permission (which containers and collections an item is in), list
//! pages, version records.
//!
//! An item's *body* is not here: its fields and its versions are the caller's auxiliary
//! records. What a decision needs of them (`field_matches`, which fields an edit changes) the
//! caller hands in through a [`FieldSource`]; what a change produces (a new version, a notice)
//! comes back as effects. Here each item is about 60 bytes: type, flags (active, destroyed,
//! its two switches), version, creator (an index into the community's agent table), the
//! container it was created in, its creation time and its collection memberships.
//!
//! **Containment.** An item is in the container it was created in (the community, a
//! collection, or for a comment the item it is about) and in the collections it was added to;
//! cycles are allowed. For permissions, the container always reaches and a membership reaches
//! only with `permission_enabled` (Deme's guard); for subscriptions (`deep`) and the `in=` list
//! filter every membership counts. A destroyed item leaves the collections it was in, and
//! nothing reaches through it any more.
//!
//! **Lists** are the items that pass a single view check, in id order, scanning at most 10,000
//! candidates per page (SpiceDB's and OpenFGA's answer to lists over sparse permissions): a
//! page may then hold fewer than `limit` items, and `next_cursor` continues the scan.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::constitution::Switches;
use crate::ids::ItemId;
use crate::item_types::{Fields, ItemType};
use crate::participation::Structure;
use crate::when::{rfc3339, Millis};

/// The most candidates one list page scans.
pub const MAX_SCAN: usize = 10_000;
/// The largest page.
pub const MAX_LIMIT: usize = 1_000;

/// The current fields of items, as the caller holds them (the latest version record of each).
pub trait FieldSource {
    fn fields(&self, item: ItemId) -> Option<&Fields>;
}

impl FieldSource for HashMap<ItemId, Fields> {
    fn fields(&self, item: ItemId) -> Option<&Fields> {
        self.get(&item)
    }
}

impl FieldSource for BTreeMap<ItemId, Fields> {
    fn fields(&self, item: ItemId) -> Option<&Fields> {
        self.get(&item)
    }
}

/// A source that knows no fields (decisions that need none).
pub struct NoFields;

impl FieldSource for NoFields {
    fn fields(&self, _item: ItemId) -> Option<&Fields> {
        None
    }
}

/// Agent ids interned to 4-byte indexes, so 100,000 items do not hold 100,000 creator strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agents {
    names: Vec<Box<str>>,
    #[serde(skip)]
    index: HashMap<Box<str>, u32>,
}

impl Agents {
    pub fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn name(&self, ix: u32) -> &str {
        self.names.get(ix as usize).map(|s| &**s).unwrap_or("")
    }

    pub fn len(&self) -> u32 {
        self.names.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(ix) = self.index.get(name) {
            return *ix;
        }
        let ix = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), ix);
        ix
    }

    /// The names in index order.
    pub fn names(&self) -> &[Box<str>] {
        &self.names
    }

    /// Agents with these names at these indexes (the index is rebuilt on restore).
    pub fn from_names(names: Vec<Box<str>>) -> Agents {
        Agents {
            names,
            index: HashMap::new(),
        }
    }

    pub(crate) fn rebuild(&mut self) {
        self.index = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
    }
}

/// A membership of an item in a collection: the collection's id with `permission_enabled` in
/// the top bit (item ids are allocated from 1 upwards and never reach it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership(u64);

const ENABLED_BIT: u64 = 1 << 63;

impl Membership {
    pub fn new(collection: ItemId, permission_enabled: bool) -> Membership {
        Membership(collection.0 | if permission_enabled { ENABLED_BIT } else { 0 })
    }

    pub fn collection(self) -> ItemId {
        ItemId(self.0 & !ENABLED_BIT)
    }

    pub fn permission_enabled(self) -> bool {
        self.0 & ENABLED_BIT != 0
    }
}

const ACTIVE: u8 = 1;
const DESTROYED: u8 = 2;
const OVERRIDE: u8 = 4;
const NOT_GOVERNING: u8 = 8;

/// One item's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemMeta {
    typ: u8,
    flags: u8,
    version: u32,
    creator: u32,
    /// The container it was created in; 0: the community.
    container: u64,
    created_at: Millis,
    /// Sorted by collection id.
    collections: Box<[Membership]>,
    /// A project's or module's structure switches (section 6), kept in step with its fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    structure: Option<Box<Structure>>,
    /// Ratings (`rate`): (agent index, value), sorted by agent, one per agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ratings: Option<Box<[(u32, i8)]>>,
}

impl ItemMeta {
    pub(crate) fn new(
        typ: ItemType,
        creator: u32,
        container: Option<ItemId>,
        created_at: Millis,
    ) -> ItemMeta {
        ItemMeta {
            typ: typ as u8,
            flags: ACTIVE,
            version: 1,
            creator,
            container: container.map(|c| c.0).unwrap_or(0),
            created_at,
            collections: Box::new([]),
            structure: None,
            ratings: None,
        }
    }

    /// A project's or module's structure switches.
    pub fn structure(&self) -> Option<&Structure> {
        self.structure.as_deref()
    }

    pub(crate) fn set_structure(&mut self, s: Option<Structure>) {
        self.structure = s.map(Box::new);
    }

    /// The ratings: (agent index, −1 / 0 / +1), sorted by agent.
    pub fn ratings(&self) -> &[(u32, i8)] {
        self.ratings.as_deref().unwrap_or(&[])
    }

    /// Records `agent`'s rating, replacing theirs.
    pub(crate) fn set_rating(&mut self, agent: u32, value: i8) {
        let mut list: Vec<(u32, i8)> = self.ratings().to_vec();
        match list.binary_search_by_key(&agent, |r| r.0) {
            Ok(i) => list[i].1 = value,
            Err(i) => list.insert(i, (agent, value)),
        }
        self.ratings = Some(list.into_boxed_slice());
    }

    /// Counts of ratings: `{"up","down","neutral"}`.
    pub fn rating_counts(&self) -> Value {
        let count = |v: i8| self.ratings().iter().filter(|r| r.1 == v).count();
        json!({"up": count(1), "down": count(-1), "neutral": count(0)})
    }

    pub fn typ(&self) -> ItemType {
        ItemType::from_u8(self.typ).unwrap_or(ItemType::Item)
    }

    pub fn active(&self) -> bool {
        self.flags & ACTIVE != 0
    }

    pub fn destroyed(&self) -> bool {
        self.flags & DESTROYED != 0
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn creator_ix(&self) -> u32 {
        self.creator
    }

    pub fn container(&self) -> Option<ItemId> {
        (self.container != 0).then_some(ItemId(self.container))
    }

    pub fn created_at(&self) -> Millis {
        self.created_at
    }

    pub fn collections(&self) -> &[Membership] {
        &self.collections
    }

    pub fn membership(&self, collection: ItemId) -> Option<Membership> {
        self.collections
            .iter()
            .find(|m| m.collection() == collection)
            .copied()
    }

    pub fn switches(&self) -> Switches {
        Switches {
            foundational_override: self.flags & OVERRIDE != 0,
            governing: self.flags & NOT_GOVERNING == 0,
        }
    }

    pub(crate) fn set_switches(&mut self, s: Switches) {
        self.flags &= !(OVERRIDE | NOT_GOVERNING);
        if s.foundational_override {
            self.flags |= OVERRIDE;
        }
        if !s.governing {
            self.flags |= NOT_GOVERNING;
        }
    }

    pub(crate) fn set_active(&mut self, active: bool) {
        if active {
            self.flags |= ACTIVE;
        } else {
            self.flags &= !ACTIVE;
        }
    }

    pub(crate) fn destroy(&mut self) {
        self.flags = (self.flags & !ACTIVE) | DESTROYED;
        self.collections = Box::new([]);
    }

    pub(crate) fn bump_version(&mut self) -> u32 {
        self.version += 1;
        self.version
    }

    pub(crate) fn set_membership(&mut self, m: Membership) {
        let mut v: Vec<Membership> = self
            .collections
            .iter()
            .filter(|x| x.collection() != m.collection())
            .copied()
            .collect();
        v.push(m);
        v.sort_by_key(|x| x.collection());
        self.collections = v.into_boxed_slice();
    }

    pub(crate) fn remove_membership(&mut self, collection: ItemId) {
        self.collections = self
            .collections
            .iter()
            .filter(|x| x.collection() != collection)
            .copied()
            .collect();
    }
}

/// All items of a community, by id, with the reverse indexes lists and subscriptions need.
#[derive(Debug, Clone, Default)]
pub struct Items {
    /// Item `n` is at index `n - 1`: ids are allocated densely.
    metas: Vec<ItemMeta>,
    /// Container id (0: the community) → the items created in it, in id order.
    children: HashMap<u64, Vec<ItemId>>,
    /// Collection → its members, in id order.
    members: HashMap<u64, Vec<ItemId>>,
}

impl Items {
    pub fn get(&self, id: ItemId) -> Option<&ItemMeta> {
        let i = usize::try_from(id.0).ok()?.checked_sub(1)?;
        self.metas.get(i)
    }

    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    pub fn next_id(&self) -> ItemId {
        ItemId(self.metas.len() as u64 + 1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (ItemId, &ItemMeta)> {
        self.metas
            .iter()
            .enumerate()
            .map(|(i, m)| (ItemId(i as u64 + 1), m))
    }

    /// The items created in `container` (`None`: at the top level).
    pub fn children(&self, container: Option<ItemId>) -> &[ItemId] {
        self.children
            .get(&container.map(|c| c.0).unwrap_or(0))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The items added to `collection`.
    pub fn members(&self, collection: ItemId) -> &[ItemId] {
        self.members
            .get(&collection.0)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Sets item `id` (a new one must be `next_id()`), keeping the reverse indexes true.
    pub(crate) fn put(&mut self, id: ItemId, meta: ItemMeta) {
        let idx = (id.0 - 1) as usize;
        let old = self.metas.get(idx).cloned();
        if let Some(old) = &old {
            for m in old.collections.iter() {
                if meta.membership(m.collection()).is_none() {
                    if let Some(v) = self.members.get_mut(&m.collection().0) {
                        v.retain(|x| *x != id);
                        if v.is_empty() {
                            self.members.remove(&m.collection().0);
                        }
                    }
                }
            }
        }
        for m in meta.collections.iter() {
            let had = old
                .as_ref()
                .is_some_and(|o| o.membership(m.collection()).is_some());
            if !had {
                let v = self.members.entry(m.collection().0).or_default();
                let at = v.partition_point(|x| *x < id);
                v.insert(at, id);
            }
        }
        if old.is_none() {
            debug_assert_eq!(idx, self.metas.len(), "items are created in id order");
            self.children.entry(meta.container).or_default().push(id);
            self.metas.push(meta);
        } else {
            self.metas[idx] = meta;
        }
    }

    /// The ancestors through which permissions reach `id` (to-level *some*): its container
    /// chain and its `permission_enabled` memberships, transitively, cycles cut (`id` itself
    /// only when a cycle leads back to it).
    pub fn permission_ancestors(&self, id: ItemId, out: &mut Vec<ItemId>) {
        self.ancestors(id, true, out)
    }

    /// Every container and collection `id` is in, directly or indirectly (for `deep`).
    pub fn all_ancestors(&self, id: ItemId, out: &mut Vec<ItemId>) {
        self.ancestors(id, false, out)
    }

    fn ancestors(&self, id: ItemId, enabled_only: bool, out: &mut Vec<ItemId>) {
        out.clear();
        let mut queue: VecDeque<ItemId> = VecDeque::new();
        queue.push_back(id);
        while let Some(cur) = queue.pop_front() {
            let Some(meta) = self.get(cur) else { continue };
            // An item in a cycle is inside itself, so it is its own ancestor then. Nothing
            // reaches through a destroyed item.
            let visit = |next: ItemId, out: &mut Vec<ItemId>, queue: &mut VecDeque<ItemId>| {
                let live = self.get(next).is_some_and(|m| !m.destroyed());
                if live && !out.contains(&next) {
                    out.push(next);
                    queue.push_back(next);
                }
            };
            if let Some(c) = meta.container() {
                visit(c, out, &mut queue);
            }
            for m in meta.collections.iter() {
                if !enabled_only || m.permission_enabled() {
                    visit(m.collection(), out, &mut queue);
                }
            }
        }
    }

    /// One page of a list: the items that pass `visible`, in id order after `query.cursor`.
    pub fn list(
        &self,
        query: &ListQuery,
        visible: &mut dyn FnMut(ItemId, &ItemMeta) -> bool,
    ) -> ListPage {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let after = query.cursor.map(|c| c.0).unwrap_or(0);
        let mut page = ListPage {
            items: Vec::new(),
            next_cursor: None,
            scanned: 0,
            stopped_at_scan_limit: false,
        };
        let mut consider = |id: ItemId, page: &mut ListPage| -> bool {
            // Returns false to stop.
            if page.items.len() >= limit {
                return false;
            }
            if page.scanned >= MAX_SCAN {
                page.stopped_at_scan_limit = true;
                return false;
            }
            page.scanned += 1;
            page.next_cursor = Some(id);
            let Some(meta) = self.get(id) else {
                return true;
            };
            if meta.destroyed() && !query.include_destroyed {
                return true;
            }
            if !meta.active() && !query.include_inactive {
                return true;
            }
            if query.typ.is_some_and(|t| t != meta.typ()) {
                return true;
            }
            if visible(id, meta) {
                page.items.push(id);
            }
            true
        };
        let mut exhausted = true;
        match query.within {
            None => {
                let start = usize::try_from(after)
                    .unwrap_or(usize::MAX)
                    .min(self.metas.len());
                for i in start..self.metas.len() {
                    if !consider(ItemId(i as u64 + 1), &mut page) {
                        exhausted = false;
                        break;
                    }
                }
            }
            Some(c) => {
                let a = self.children(Some(c));
                let b = self.members(c);
                let (mut i, mut j) = (
                    a.partition_point(|x| x.0 <= after),
                    b.partition_point(|x| x.0 <= after),
                );
                loop {
                    let next = match (a.get(i), b.get(j)) {
                        (None, None) => break,
                        (Some(x), None) => {
                            i += 1;
                            *x
                        }
                        (None, Some(y)) => {
                            j += 1;
                            *y
                        }
                        (Some(x), Some(y)) => {
                            if x <= y {
                                i += 1;
                                if x == y {
                                    j += 1;
                                }
                                *x
                            } else {
                                j += 1;
                                *y
                            }
                        }
                    };
                    if !consider(next, &mut page) {
                        // Not consumed: the cursor stays before it.
                        exhausted = false;
                        break;
                    }
                }
            }
        }
        if exhausted {
            page.next_cursor = None;
        }
        page
    }

    /// The items of a restored community (item `n` at index `n - 1`). Keeps `metas` as it is
    /// (100,000 of them are 7.2 MB: copying them one by one into a vector grown by doubling
    /// left about as much again in freed blocks the allocator kept), and sizes each container's
    /// list of children once.
    pub(crate) fn from_metas(metas: Vec<ItemMeta>) -> Items {
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for m in &metas {
            *counts.entry(m.container).or_default() += 1;
        }
        let mut children: HashMap<u64, Vec<ItemId>> = counts
            .into_iter()
            .map(|(c, n)| (c, Vec::with_capacity(n)))
            .collect();
        let mut members: HashMap<u64, Vec<ItemId>> = HashMap::new();
        // In id order, so every list is in id order as `put` keeps it.
        for (i, m) in metas.iter().enumerate() {
            let id = ItemId(i as u64 + 1);
            children.entry(m.container).or_default().push(id);
            for c in m.collections.iter() {
                members.entry(c.collection().0).or_default().push(id);
            }
        }
        Items {
            metas,
            children,
            members,
        }
    }

    pub(crate) fn metas(&self) -> &[ItemMeta] {
        &self.metas
    }
}

/// A list request (`GET /items?type=&in=&include_inactive=&cursor=&limit=`).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub typ: Option<ItemType>,
    /// Only the items in this collection or container (created in it or added to it).
    pub within: Option<ItemId>,
    pub include_inactive: bool,
    /// Destroyed items are left out unless asked for (the driver's own reads only).
    pub include_destroyed: bool,
    /// Continue after this id (a previous page's `next_cursor`).
    pub cursor: Option<ItemId>,
    pub limit: usize,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub items: Vec<ItemId>,
    /// Where the next page starts (`None`: nothing left to scan).
    pub next_cursor: Option<ItemId>,
    /// How many candidates this page looked at.
    pub scanned: usize,
    /// The page stopped after [`MAX_SCAN`] candidates, maybe with fewer than `limit` items.
    pub stopped_at_scan_limit: bool,
}

/// One version of an item (an auxiliary record): its full fields at that version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub item: ItemId,
    pub version: u32,
    pub fields: Fields,
    pub agent: String,
    pub at: Millis,
    pub summary: String,
}

impl VersionRecord {
    pub fn to_json(&self) -> Value {
        json!({
            "item": self.item.to_string(),
            "version": self.version,
            "fields": self.fields,
            "agent": self.agent,
            "at": rfc3339(self.at),
            "summary": self.summary,
        })
    }
}

/// The fields of a new version: `old` with `edit` laid over it.
pub fn merge_fields(old: &Fields, edit: &Fields) -> Fields {
    let mut out = old.clone();
    for (k, v) in edit {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The next version record of an item: `prev` (its current version) with `edit` applied.
pub fn next_version(
    prev: &VersionRecord,
    edit: &Fields,
    agent: &str,
    at: Millis,
    summary: &str,
) -> VersionRecord {
    VersionRecord {
        item: prev.item,
        version: prev.version + 1,
        fields: merge_fields(&prev.fields, edit),
        agent: agent.to_string(),
        at,
        summary: summary.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> Items {
        // 1: collection (top); 2: collection in 1; 3: item in 2; 4: item (top) added to 2
        // without permission_enabled and to 1 with it; 5: collection added to itself's child.
        let mut items = Items::default();
        items.put(ItemId(1), ItemMeta::new(ItemType::Collection, 0, None, 0));
        items.put(
            ItemId(2),
            ItemMeta::new(ItemType::Collection, 0, Some(ItemId(1)), 0),
        );
        items.put(
            ItemId(3),
            ItemMeta::new(ItemType::Item, 0, Some(ItemId(2)), 0),
        );
        let mut m = ItemMeta::new(ItemType::Item, 0, None, 0);
        m.set_membership(Membership::new(ItemId(2), false));
        m.set_membership(Membership::new(ItemId(1), true));
        items.put(ItemId(4), m);
        // A cycle: 1 is added to 2 (its own child), permission-enabled.
        let mut one = items.get(ItemId(1)).unwrap().clone();
        one.set_membership(Membership::new(ItemId(2), true));
        items.put(ItemId(1), one);
        items
    }

    #[test]
    fn items_rebuilt_from_their_metas_have_the_indexes_the_changes_built() {
        let built = world();
        let restored = Items::from_metas(built.metas.clone());
        assert_eq!(restored.children, built.children);
        assert_eq!(restored.members, built.members);
        assert_eq!(restored.members[&2], vec![ItemId(1), ItemId(4)]);
        assert_eq!(restored.len(), 4);
    }

    #[test]
    fn ancestors_follow_containment_and_enabled_memberships_through_cycles() {
        let items = world();
        let mut out = Vec::new();
        items.permission_ancestors(ItemId(3), &mut out);
        out.sort();
        assert_eq!(out, vec![ItemId(1), ItemId(2)]);
        items.permission_ancestors(ItemId(4), &mut out);
        out.sort();
        assert_eq!(out, vec![ItemId(1), ItemId(2)], "through 1, which is in 2");
        items.permission_ancestors(ItemId(1), &mut out);
        out.sort();
        assert_eq!(out, vec![ItemId(1), ItemId(2)], "1 is in 2, which is in 1");
        items.permission_ancestors(ItemId(2), &mut out);
        out.sort();
        assert_eq!(out, vec![ItemId(1), ItemId(2)]);
        items.all_ancestors(ItemId(4), &mut out);
        out.sort();
        assert_eq!(out, vec![ItemId(1), ItemId(2)]);
    }

    #[test]
    fn reverse_indexes_follow_membership_changes() {
        let mut items = world();
        assert_eq!(items.members(ItemId(2)), &[ItemId(1), ItemId(4)]);
        let mut m = items.get(ItemId(4)).unwrap().clone();
        m.remove_membership(ItemId(2));
        items.put(ItemId(4), m);
        assert_eq!(items.members(ItemId(2)), &[ItemId(1)]);
        assert_eq!(items.children(None), &[ItemId(1), ItemId(4)]);
        let mem = Membership::new(ItemId(77), true);
        assert_eq!(
            (mem.collection(), mem.permission_enabled()),
            (ItemId(77), true)
        );
    }

    #[test]
    fn lists_page_in_id_order_and_stop_at_the_scan_limit() {
        let mut items = Items::default();
        for i in 1..=25_000u64 {
            items.put(ItemId(i), ItemMeta::new(ItemType::Item, 0, None, 0));
        }
        let q = ListQuery {
            limit: 11,
            ..Default::default()
        };
        let page = items.list(&q, &mut |id, _| id.0 % 1000 == 0);
        assert_eq!(page.items.len(), 10, "the scan stops before an eleventh");
        assert_eq!(page.items[0], ItemId(1000));
        assert!(page.stopped_at_scan_limit);
        assert_eq!(page.scanned, MAX_SCAN);
        assert_eq!(page.next_cursor, Some(ItemId(10_000)));
        let q2 = ListQuery {
            cursor: page.next_cursor,
            ..q.clone()
        };
        let page2 = items.list(&q2, &mut |id, _| id.0 % 1000 == 0);
        assert_eq!(page2.items.first(), Some(&ItemId(11_000)));
        let q3 = ListQuery {
            limit: 3,
            within: Some(ItemId(1)),
            ..Default::default()
        };
        let w = world();
        let page = w.list(&q3, &mut |_, _| true);
        assert_eq!(page.items, vec![ItemId(2), ItemId(4)]);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn versions_merge_edits() {
        let v1 = VersionRecord {
            item: ItemId(1),
            version: 1,
            fields: serde_json::json!({"name": "a", "description": "d"})
                .as_object()
                .unwrap()
                .clone(),
            agent: "ana".into(),
            at: 0,
            summary: String::new(),
        };
        let edit = serde_json::json!({"name": "b"})
            .as_object()
            .unwrap()
            .clone();
        let v2 = next_version(&v1, &edit, "ben", 5, "renamed");
        assert_eq!(v2.version, 2);
        assert_eq!(v2.fields["name"], "b");
        assert_eq!(v2.fields["description"], "d");
        assert_eq!(v2.to_json()["item"], "1");
    }
}
