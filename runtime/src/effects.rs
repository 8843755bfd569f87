//! What one message does to the world, collected while an actor handles it and committed as one
//! change record: new state, auxiliary records, reminders, outbox messages and index entries.
//!
//! Actors never write storage themselves. The runtime turns an [`Effects`] into one atomic
//! batch, so a reminder, a driver event or a message to another actor can never exist without
//! the state change that caused it, nor the other way round.
//!
//! Handlers also read their auxiliary records here ([`Effects::get_aux`],
//! [`Effects::scan_aux`]): the reads see the actor's own writes, including those still on
//! their way to storage.

use std::ops::ControlFlow;

use agora_storage::{Engine, Pairs, RecordError, StorageError};

use crate::aux::AuxReader;
use crate::messages::{ActorMessage, Outgoing, Receipt};
use crate::node::{actor_id, VirtualActor};

/// What an actor persisted, handed back to it on activation.
#[derive(Debug, Default, Clone)]
pub struct Stored {
    /// The main state record, if one was ever saved (and not deleted).
    pub state: Option<Vec<u8>>,
    /// Auxiliary records (for example one per ballot) by sub-key, in key order; empty for
    /// kinds that read them on demand (`VirtualActor::RESTORE_AUX = false`).
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The auxiliary records an activation restores (every one with `VirtualActor::RESTORE_AUX`,
/// else those under `VirtualActor::RESTORE_AUX_PREFIXES`), read from storage one at a time
/// as the actor takes them, by sub-key. A kind with many of them decodes each as it is read
/// ([`VirtualActor::restore_streamed`]), so their buffers are never all alive at once; the
/// others collect them into [`Stored::aux`].
pub struct RestoreAux<'a> {
    engine: &'a dyn Engine,
    /// The actor's auxiliary prefix, stripped from every key handed out.
    base: Vec<u8>,
    /// Sub-key prefixes read in this order; `None`: every record under `base`.
    subs: Option<&'static [&'static [u8]]>,
}

impl<'a> RestoreAux<'a> {
    pub(crate) fn new(
        engine: &'a dyn Engine,
        base: Vec<u8>,
        subs: Option<&'static [&'static [u8]]>,
    ) -> Self {
        Self { engine, base, subs }
    }

    /// Calls `take(sub_key, value)` for every record, in the order [`Stored::aux`] lists them,
    /// and stops at its first error, which it answers (as it answers a storage error).
    pub fn for_each(
        self,
        mut take: impl FnMut(&[u8], &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(subs) = self.subs else {
            return self.visit(&self.base, &mut take);
        };
        let mut prefix = self.base.clone();
        for sub in subs {
            prefix.truncate(self.base.len());
            prefix.extend_from_slice(sub);
            self.visit(&prefix, &mut take)?;
        }
        Ok(())
    }

    fn visit(
        &self,
        prefix: &[u8],
        take: &mut impl FnMut(&[u8], &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let base_len = self.base.len();
        let mut failed = None;
        self.engine
            .visit_prefix(prefix, &mut |k, v| match take(&k[base_len..], v) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            })
            .map_err(|e| e.to_string())?;
        failed.map_or(Ok(()), Err)
    }

    /// The greatest sub-key starting with `sub` (one seek, nothing read): lets a kind size
    /// what it builds before [`RestoreAux::for_each`] (a vector of one entry per numbered
    /// record, allocated once instead of grown by doubling). `sub` lies under the prefixes
    /// restore loads.
    pub fn last_sub_key(&self, sub: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let mut prefix = self.base.clone();
        prefix.extend_from_slice(sub);
        let last = self
            .engine
            .last_with_prefix(&prefix)
            .map_err(|e| e.to_string())?;
        Ok(last.map(|k| k[self.base.len()..].to_vec()))
    }

    /// Every record, by sub-key (what [`Stored::aux`] holds).
    pub fn collect(self) -> Result<Pairs, String> {
        let mut all = Vec::new();
        self.for_each(|k, v| {
            all.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(all)
    }
}

/// A durable reminder, as delivered to the actor when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub name: String,
    pub due_ms: u64,
    pub payload: Vec<u8>,
}

/// A message for the outside world (a driver, a callback URL), delivered at least once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub url: String,
    /// The JSON body, sent byte for byte (and signed as sent).
    pub body: String,
    /// Messages with the same ordering key are delivered one after another, in commit order.
    pub ordering_key: String,
}

/// An event for the node's event stream, published once its commit is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The community it belongs to (subscribers filter on it).
    pub community: String,
    pub event_type: String,
    /// The JSON envelope, as drivers receive it.
    pub body: String,
    /// Published by another node (and relayed here), not by this one.
    pub remote: bool,
}

/// The change record under construction for one message.
#[derive(Debug, Default)]
pub struct Effects {
    now_ms: u64,
    pub(crate) state: Option<Option<Vec<u8>>>,
    pub(crate) aux: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub(crate) set_reminders: Vec<Reminder>,
    pub(crate) cancel_reminders: Vec<String>,
    pub(crate) outbox: Vec<OutboxMessage>,
    pub(crate) index: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) journal: Vec<Vec<u8>>,
    pub(crate) published: Vec<Published>,
    pub(crate) messages: Vec<Outgoing>,
    /// Set by the runtime while a durable message is handled: its receipt joins the batch.
    pub(crate) receipt: Option<Receipt>,
    /// The activation's reader, lent for the duration of one handler call.
    pub(crate) reader: Option<Box<AuxReader>>,
    /// Set by the runtime when nothing subscribes to the node's event stream (no SSE client,
    /// no cluster relay): [`Effects::publish`] would then reach no one, and an actor may skip
    /// building the event. False by default, so an Effects made elsewhere publishes.
    pub(crate) unwatched: bool,
}

impl Effects {
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms,
            ..Self::default()
        }
    }

    /// The time this message is handled at, from the runtime's clock. Handlers read time only
    /// here, so a message has one "now" from start to finish.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Replaces the actor's main state record.
    pub fn save_state(&mut self, bytes: Vec<u8>) {
        self.state = Some(Some(bytes));
    }

    /// Deletes the actor's main state record (its auxiliary records stay until deleted).
    pub fn delete_state(&mut self) {
        self.state = Some(None);
    }

    pub fn put_aux(&mut self, sub_key: impl Into<Vec<u8>>, value: Vec<u8>) {
        self.aux.push((sub_key.into(), Some(value)));
    }

    pub fn delete_aux(&mut self, sub_key: impl Into<Vec<u8>>) {
        self.aux.push((sub_key.into(), None));
    }

    /// The auxiliary writes recorded so far in this change (sub-key, value or `None` for a
    /// deletion), in order: what a kind's tests count to bound what one change writes.
    pub fn aux_writes(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.aux.iter().map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    /// The auxiliary record `sub_key` as this actor sees it: its writes in this message, then
    /// its writes still in flight to storage, then storage. Synchronous: at most one storage
    /// read. Outside an activation (a handler called from a unit test) only this message's
    /// writes are visible.
    pub fn get_aux(&self, sub_key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match &self.reader {
            Some(r) => r.get(&self.aux, sub_key),
            None => Ok(self
                .aux
                .iter()
                .rev()
                .find(|(k, _)| k == sub_key)
                .and_then(|(_, v)| v.clone())),
        }
    }

    /// Up to `limit` auxiliary records whose sub-key starts with `prefix` and sorts after
    /// `after` (every one from the start of `prefix` when `None`), in sub-key order, seen as in
    /// [`Effects::get_aux`]. Page by passing the last sub-key returned as the next `after`; a
    /// page shorter than `limit` is the last.
    pub fn scan_aux(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StorageError> {
        match &self.reader {
            Some(r) => r.scan(&self.aux, prefix, after, limit),
            None => {
                let mut latest = std::collections::BTreeMap::new();
                for (k, v) in &self.aux {
                    if k.starts_with(prefix) && after.is_none_or(|a| k.as_slice() > a) {
                        latest.insert(k.clone(), v.clone());
                    }
                }
                Ok(latest
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .take(limit)
                    .collect())
            }
        }
    }

    /// Sends `msg` to the actor `B` keyed `key`, durably: it is written with this change and
    /// delivered at least once after it is durable, and `B` handles it exactly once
    /// ([`VirtualActor::on_message`]). Messages from this actor to one receiver are handled in
    /// the order they were sent.
    pub fn send_to<B: VirtualActor, M: ActorMessage>(
        &mut self,
        key: &str,
        msg: &M,
    ) -> Result<(), RecordError> {
        self.messages.push(Outgoing::new(actor_id::<B>(key), msg)?);
        Ok(())
    }

    /// Sets (or moves) the reminder `name` to fire at `due_ms`.
    pub fn set_reminder(&mut self, name: impl Into<String>, due_ms: u64, payload: Vec<u8>) {
        let name = name.into();
        self.cancel_reminders.retain(|n| *n != name);
        self.set_reminders.retain(|r| r.name != name);
        self.set_reminders.push(Reminder {
            name,
            due_ms,
            payload,
        });
    }

    pub fn cancel_reminder(&mut self, name: impl Into<String>) {
        let name = name.into();
        self.set_reminders.retain(|r| r.name != name);
        self.cancel_reminders.push(name);
    }

    pub fn send(&mut self, message: OutboxMessage) {
        self.outbox.push(message);
    }

    /// A node-wide secondary index entry (for example plugin instance id → community).
    pub fn put_index(&mut self, key: impl Into<String>, value: Vec<u8>) {
        self.index.push((key.into(), Some(value)));
    }

    pub fn delete_index(&mut self, key: impl Into<String>) {
        self.index.push((key.into(), None));
    }

    /// Appends an entry to the node's append-only journal (the audit log), in the same commit
    /// as the change it records.
    pub fn journal(&mut self, entry: Vec<u8>) {
        self.journal.push(entry);
    }

    /// Whether anything subscribes to the node's event stream (the stream is live-only, so an
    /// event published while nothing subscribes reaches no one).
    pub fn event_stream_watched(&self) -> bool {
        !self.unwatched
    }

    /// Publishes an event to subscribers of the node's event stream after this change is
    /// durable (never before: a subscriber must not see what a crash could undo).
    pub fn publish(&mut self, community: &str, event_type: &str, body: String) {
        self.published.push(Published {
            community: community.to_string(),
            event_type: event_type.to_string(),
            body,
            remote: false,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.journal.is_empty()
            && self.published.is_empty()
            && self.state.is_none()
            && self.aux.is_empty()
            && self.set_reminders.is_empty()
            && self.cancel_reminders.is_empty()
            && self.outbox.is_empty()
            && self.index.is_empty()
            && self.messages.is_empty()
            && self.receipt.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_reminder_operation_on_a_name_wins() {
        let mut fx = Effects::new(0);
        fx.set_reminder("close", 10, vec![]);
        fx.cancel_reminder("close");
        assert!(fx.set_reminders.is_empty());
        fx.set_reminder("close", 20, vec![1]);
        assert!(fx.cancel_reminders.is_empty());
        assert_eq!(fx.set_reminders.len(), 1);
        assert_eq!(fx.set_reminders[0].due_ms, 20);
        assert!(!fx.is_empty());
    }

    #[test]
    fn restore_records_come_by_sub_key_in_prefix_order_and_the_last_key_is_one_seek() {
        use agora_storage::{MemEngine, WriteBatch};
        let engine = MemEngine::new();
        let mut b = WriteBatch::new();
        for k in [
            "a/x/s/1",
            "a/x/s/2",
            "a/x/k/9",
            "a/x/other",
            "a/y/s/3",
            "a/x/s",
        ] {
            b.put(k.as_bytes().to_vec(), k.as_bytes().to_vec());
        }
        engine.apply(b).unwrap();
        let base = b"a/x/".to_vec();
        let subs: &'static [&'static [u8]] = &[b"s/", b"k/"];
        let taken = |aux: RestoreAux<'_>| {
            let mut keys = Vec::new();
            aux.for_each(|k, v| {
                assert!(v.ends_with(k), "the value stored under the sub-key");
                keys.push(String::from_utf8(k.to_vec()).unwrap());
                Ok(())
            })
            .map(|()| keys)
        };
        let some = RestoreAux::new(&engine, base.clone(), Some(subs));
        assert_eq!(some.last_sub_key(b"s/").unwrap(), Some(b"s/2".to_vec()));
        assert_eq!(some.last_sub_key(b"w/").unwrap(), None);
        assert_eq!(taken(some).unwrap(), ["s/1", "s/2", "k/9"]);
        let every = RestoreAux::new(&engine, base.clone(), None);
        assert_eq!(taken(every).unwrap(), ["k/9", "other", "s", "s/1", "s/2"]);
        // The first error stops the reading and is the answer.
        let mut seen = 0;
        let failed = RestoreAux::new(&engine, base, Some(subs)).for_each(|_, _| {
            seen += 1;
            Err("unreadable".into())
        });
        assert_eq!(failed, Err("unreadable".to_string()));
        assert_eq!(seen, 1);
    }
}
