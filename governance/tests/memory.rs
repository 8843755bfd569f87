//! Resident memory per item: the community keeps item metadata for 100,000 items in memory,
//! and the issue allows at most 300 bytes per item. Measured with a counting allocator over the
//! community alone (everything handed back as effects is dropped, as the actor would after
//! storing it).

// The one unsafe block in the workspace outside dependencies: a global allocator that counts,
// which only a GlobalAlloc impl can be.
#![allow(unsafe_code)]

#[path = "../benches/support/world.rs"]
mod world;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_large_community_stays_under_300_bytes_per_item() {
    // The benchmark's community (10,000 members, 100 roles, 10,000 permissions, 100,000
    // items); everything it holds is charged to its items, so this is an upper bound.
    let size = world::LARGE;
    let before = LIVE.load(Ordering::Relaxed);
    let big = world::build(size);
    let items = big.c.items().len();
    drop(big.fields);
    drop(big.deep);
    let after = LIVE.load(Ordering::Relaxed);
    let per_item = (after - before) as f64 / items as f64;
    // Shown with --nocapture; recorded in BENCHMARKS.md.
    eprintln!(
        "{items} items (with {} members, {} roles, {} permissions): {} bytes live, {per_item:.1} bytes per item",
        size.members,
        size.roles,
        size.permissions,
        after - before
    );
    assert_eq!(items, 100_000);
    assert!(per_item <= 300.0, "{per_item:.1} bytes per item");

    // What a node holds after restarting: the same community restored from its snapshot and
    // item metadata (as the governance actor hands them over, the metadata in a vector of
    // exactly its length), with everything restore consumed freed.
    let (snapshot, metas) = (big.c.snapshot(), big.c.item_metas().to_vec());
    drop(big.c);
    let restored = agora_governance::Community::restore(snapshot, metas).expect("restores");
    let live = LIVE.load(Ordering::Relaxed) - before;
    let restored_per_item = live as f64 / items as f64;
    eprintln!(
        "restored: {live} bytes live, {restored_per_item:.1} bytes per item (item metadata {} bytes each)",
        std::mem::size_of::<agora_governance::ItemMeta>()
    );
    assert_eq!(restored.items().len(), items);
    assert!(
        restored_per_item <= 300.0,
        "{restored_per_item:.1} bytes per item"
    );
}
