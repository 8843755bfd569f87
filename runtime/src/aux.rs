//! Reading an actor's auxiliary records (`P<p> x/<kind>\0<key>\0<sub>`), from inside its
//! handlers and from outside.
//!
//! An activation pipelines its commits: it handles the next message while the committer still
//! writes the last one, so storage may lag what the actor already wrote. Handlers must read
//! their own writes, so reads inside an activation go through three layers, newest first: the
//! writes of the message being handled, the activation's writes still in flight to the
//! committer (the overlay, one entry per sub-key with the commit that wrote it), and storage.
//! An overlay entry may go once its commit is applied; until then it shadows storage.
//!
//! Reads from outside an activation see storage only, and only what is durable (see
//! [`crate::Runtime::read_aux`]).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use agora_storage::{CommitSeq, Engine, Pairs, StorageError};

/// Storage pages a scan reads at a time.
const PAGE: usize = 256;
/// Above this many overlay entries, entries already applied are dropped one by one instead of
/// waiting for a moment when nothing is in flight.
const OVERLAY_TRIM: usize = 1024;

/// One activation's view of its auxiliary records.
pub(crate) struct AuxReader {
    engine: Arc<dyn Engine>,
    /// `P<p> x/<kind>\0<key>\0`: every record of the actor starts with it.
    prefix: Vec<u8>,
    /// Sub-key → (value, `None` for a delete; the commit that wrote it).
    overlay: BTreeMap<Vec<u8>, (Option<Vec<u8>>, CommitSeq)>,
    /// The newest commit in the overlay.
    newest: CommitSeq,
}

impl std::fmt::Debug for AuxReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuxReader")
            .field("in_flight", &self.overlay.len())
            .finish()
    }
}

impl AuxReader {
    pub fn new(engine: Arc<dyn Engine>, prefix: Vec<u8>) -> Self {
        Self {
            engine,
            prefix,
            overlay: BTreeMap::new(),
            newest: 0,
        }
    }

    /// Records the writes of the batch committed as `seq` (in order: a later write wins).
    pub fn record(&mut self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>, seq: CommitSeq) {
        for (sub, v) in writes {
            self.overlay.insert(sub, (v, seq));
        }
        self.newest = self.newest.max(seq);
    }

    /// Whether any write of the actor may still be on its way to storage.
    pub fn in_flight(&self) -> bool {
        !self.overlay.is_empty()
    }

    /// Forgets overlay entries storage already holds (`durable`: the committer's watermark,
    /// which passes a batch only after it is applied).
    pub fn trim(&mut self, durable: CommitSeq) {
        if self.overlay.is_empty() {
            return;
        }
        if durable >= self.newest {
            self.overlay.clear();
        } else if self.overlay.len() > OVERLAY_TRIM {
            self.overlay.retain(|_, (_, seq)| *seq > durable);
        }
    }

    /// Forgets everything in flight (the activation reads storage again).
    pub fn reset(&mut self) {
        self.overlay.clear();
        self.newest = 0;
    }

    /// The record `sub`: this message's writes first, then the overlay, then storage.
    pub fn get(
        &self,
        pending: &[(Vec<u8>, Option<Vec<u8>>)],
        sub: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some((_, v)) = pending.iter().rev().find(|(k, _)| k == sub) {
            return Ok(v.clone());
        }
        if let Some((v, _)) = self.overlay.get(sub) {
            return Ok(v.clone());
        }
        let mut k = self.prefix.clone();
        k.extend_from_slice(sub);
        self.engine.get(&k)
    }

    /// Up to `limit` records whose sub-key starts with `prefix` and sorts after `after`, in
    /// sub-key order, as this actor sees them (its own writes included).
    pub fn scan(
        &self,
        pending: &[(Vec<u8>, Option<Vec<u8>>)],
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StorageError> {
        let in_range = |sub: &[u8]| sub.starts_with(prefix) && after.is_none_or(|a| sub > a);
        // The newer layers, merged: this message's writes over the overlay.
        let mut upper: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        for (sub, (v, _)) in self
            .overlay
            .range::<[u8], _>((start, Bound::Unbounded))
            .take_while(|(sub, _)| sub.starts_with(prefix))
        {
            upper.insert(sub, v.as_deref());
        }
        for (sub, v) in pending {
            if in_range(sub) {
                upper.insert(sub, v.as_deref());
            }
        }
        scan_merged(&*self.engine, &self.prefix, upper, prefix, after, limit)
    }
}

/// Durable-storage scan of one actor's records, with no newer layer.
pub(crate) fn scan_stored(
    engine: &dyn Engine,
    actor_prefix: &[u8],
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Pairs, StorageError> {
    scan_merged(engine, actor_prefix, BTreeMap::new(), prefix, after, limit)
}

/// Walks storage page by page from the first key in range, merging `upper` (which wins on an
/// equal sub-key, and whose `None`s hide storage records) until `limit` records are found.
fn scan_merged(
    engine: &dyn Engine,
    actor_prefix: &[u8],
    upper: BTreeMap<&[u8], Option<&[u8]>>,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Pairs, StorageError> {
    let mut out: Pairs = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut full_prefix = actor_prefix.to_vec();
    full_prefix.extend_from_slice(prefix);
    // The first storage key in range: just past `after`, or the prefix itself.
    let mut from = match after {
        Some(a) => {
            let mut k = actor_prefix.to_vec();
            k.extend_from_slice(a);
            k.push(0);
            k.max(full_prefix.clone())
        }
        None => full_prefix.clone(),
    };
    let mut upper = upper.into_iter().peekable();
    loop {
        let page = engine.scan_from(&full_prefix, &from, PAGE)?;
        let n = page.len();
        let Some(last) = page.last().map(|(k, _)| k.clone()) else {
            break;
        };
        for (k, v) in page {
            let sub = &k[actor_prefix.len()..];
            // Newer records that sort before this one come first.
            while let Some((usub, uv)) = upper.next_if(|(usub, _)| *usub < sub) {
                if let Some(uv) = uv {
                    out.push((usub.to_vec(), uv.to_vec()));
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            match upper.next_if(|(usub, _)| *usub == sub) {
                Some((_, Some(uv))) => out.push((sub.to_vec(), uv.to_vec())),
                Some((_, None)) => {}
                None => out.push((sub.to_vec(), v)),
            }
            if out.len() == limit {
                return Ok(out);
            }
        }
        if n < PAGE {
            break;
        }
        from = last;
        from.push(0);
    }
    for (usub, uv) in upper {
        if let Some(uv) = uv {
            out.push((usub.to_vec(), uv.to_vec()));
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_storage::{MemEngine, WriteBatch};

    const P: &[u8] = b"Px/a\0k\0";

    fn engine_with(n: u32) -> Arc<dyn Engine> {
        let e = MemEngine::new();
        let mut b = WriteBatch::new();
        for i in 0..n {
            let mut k = P.to_vec();
            k.extend_from_slice(format!("item/{i:05}").as_bytes());
            b.put(k, i.to_be_bytes().to_vec());
        }
        // Another actor's records and another prefix must never show.
        b.put(b"Px/a\0k2\0item/00001".to_vec(), b"other".to_vec());
        let mut k = P.to_vec();
        k.extend_from_slice(b"note/1");
        b.put(k, b"n".to_vec());
        e.apply(b).unwrap();
        Arc::new(e)
    }

    fn sub(i: u32) -> Vec<u8> {
        format!("item/{i:05}").into_bytes()
    }

    #[test]
    fn layers_shadow_storage_newest_first() {
        let mut r = AuxReader::new(engine_with(3), P.to_vec());
        assert_eq!(
            r.get(&[], &sub(1)).unwrap(),
            Some(1u32.to_be_bytes().to_vec())
        );
        r.record(vec![(sub(1), None), (sub(2), Some(b"two".to_vec()))], 7);
        assert_eq!(
            r.get(&[], &sub(1)).unwrap(),
            None,
            "an in-flight delete hides storage"
        );
        assert_eq!(r.get(&[], &sub(2)).unwrap(), Some(b"two".to_vec()));
        let pending = vec![(sub(1), Some(b"one".to_vec()))];
        assert_eq!(r.get(&pending, &sub(1)).unwrap(), Some(b"one".to_vec()));
        // Not applied yet: kept. Applied: dropped (storage now answers).
        r.trim(6);
        assert_eq!(r.get(&[], &sub(2)).unwrap(), Some(b"two".to_vec()));
        r.trim(7);
        assert_eq!(
            r.get(&[], &sub(2)).unwrap(),
            Some(2u32.to_be_bytes().to_vec())
        );
    }

    #[test]
    fn a_paged_scan_merges_every_layer_in_order() {
        let mut r = AuxReader::new(engine_with(1000), P.to_vec());
        // In flight: delete every 10th, replace every 7th, add odd-numbered new ones past 1000.
        let mut writes = Vec::new();
        for i in 0..1000 {
            if i % 10 == 0 {
                writes.push((sub(i), None));
            } else if i % 7 == 0 {
                writes.push((sub(i), Some(b"new".to_vec())));
            }
        }
        for i in (1001..1100).step_by(2) {
            writes.push((sub(i), Some(b"added".to_vec())));
        }
        r.record(writes, 3);
        // This message deletes 1001 and re-adds 10.
        let pending = vec![(sub(1001), None), (sub(10), Some(b"back".to_vec()))];
        let mut expected = Vec::new();
        for i in 0..1100u32 {
            let v = if i == 10 {
                Some(b"back".to_vec())
            } else if i < 1000 && i % 10 == 0 {
                None
            } else if i < 1000 && i % 7 == 0 {
                Some(b"new".to_vec())
            } else if i < 1000 {
                Some(i.to_be_bytes().to_vec())
            } else if i % 2 == 1 && i != 1001 {
                Some(b"added".to_vec())
            } else {
                None
            };
            if let Some(v) = v {
                expected.push((sub(i), v));
            }
        }
        for limit in [1, 37, 256, 300, 5000] {
            let mut seen = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = r.scan(&pending, b"item/", after.as_deref(), limit).unwrap();
                assert!(page.len() <= limit);
                let done = page.len() < limit;
                after = page.last().map(|(k, _)| k.clone());
                seen.extend(page);
                if done {
                    break;
                }
            }
            assert_eq!(seen.len(), expected.len(), "limit {limit}");
            assert!(seen == expected, "limit {limit}");
        }
        // Storage alone, as an outside reader sees it.
        let stored = scan_stored(&*r.engine, P, b"item/", Some(&sub(997)), 10).unwrap();
        assert_eq!(
            stored.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            vec![sub(998), sub(999)]
        );
        assert!(r.scan(&[], b"item/", None, 0).unwrap().is_empty());
        assert_eq!(r.scan(&[], b"note/", None, 10).unwrap().len(), 1);
    }
}
