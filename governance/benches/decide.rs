//! One decision of the pure core in a large community (10,000 members, 100 roles, 10,000
//! permissions, 100,000 items in collections nested 5 deep): the 9-level walk alone, a full
//! `decide` (validation on the scratch overlay plus the pipeline) for a comment and for an
//! edit, a view check, and listing the first 100 items an agent may view.
//!
//! `cargo bench -p agora-governance --bench decide`; medians are in
//! `target/criterion/<name>/new/estimates.json`. Building the world takes a while and is not
//! measured.
//!
//! Issue 11's comparison (group `modules`): the same world plus 10 organisations of 10 projects
//! of 10 modules, each module with an active `ideas:collect` phase and 10 ideas 5 deep, and a
//! mirror of that structure made of plain collections with the same permissions and ideas;
//! `comment` by the same members on an idea inside a module (`decide_comment_in_module`) and
//! on its twin outside any module (`decide_comment_outside_module`).

#[path = "support/world.rs"]
mod world;

use agora_governance::{
    change_body, Ability, ChangeKind, Ctx, ListQuery, ObjectRef, Request, Viewer,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;

fn decisions(c: &mut Criterion) {
    let big = world::build(world::LARGE);
    let cx = Ctx::at(big.now).with_fields(&big.fields);
    let members = &big.members;
    let mut g = c.benchmark_group("large_community");

    // Agents cycle so the role lookups and reach differ from one iteration to the next.
    let mut i = 0usize;
    let mut next = || {
        i = i.wrapping_add(7919);
        (&members[i % members.len()], big.deep[i % big.deep.len()])
    };
    g.bench_function("walk_edit_item_deep", |b| {
        b.iter_batched(
            &mut next,
            |(agent, item)| {
                big.c.permission_decision(
                    agent,
                    Ability::Change(ChangeKind::EditItem),
                    &ObjectRef::Item(item),
                    &cx,
                )
            },
            BatchSize::SmallInput,
        )
    });
    let comments: Vec<Request> = big
        .deep
        .iter()
        .map(|d| {
            Request::parse(&change_body(
                "comment",
                &format!("item:{d}"),
                json!({"body": "hi"}),
            ))
            .unwrap()
        })
        .collect();
    let mut j = 0usize;
    g.bench_function("decide_comment_deep", |b| {
        b.iter_batched(
            || {
                j = j.wrapping_add(7919);
                (&members[j % members.len()], &comments[j % comments.len()])
            },
            |(agent, req)| big.c.decide(agent, req, &cx).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let edits: Vec<Request> = big
        .deep
        .iter()
        .map(|d| {
            Request::parse(&change_body(
                "edit_item",
                &format!("item:{d}"),
                json!({"fields": {"body": "new"}}),
            ))
            .unwrap()
        })
        .collect();
    let mut k = 0usize;
    g.bench_function("decide_edit_body_deep", |b| {
        b.iter_batched(
            || {
                k = k.wrapping_add(7919);
                (&members[k % members.len()], &edits[k % edits.len()])
            },
            |(agent, req)| big.c.decide(agent, req, &cx).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let mut v = 0usize;
    g.bench_function("can_view_deep", |b| {
        b.iter_batched(
            || {
                v = v.wrapping_add(7919);
                (&members[v % members.len()], big.deep[v % big.deep.len()])
            },
            |(agent, item)| big.c.can_view(Viewer::Agent(agent), item, &cx),
            BatchSize::SmallInput,
        )
    });
    let q = ListQuery {
        limit: 100,
        ..Default::default()
    };
    let mut l = 0usize;
    g.bench_function("list_first_100_member", |b| {
        b.iter_batched(
            || {
                l = l.wrapping_add(7919);
                &members[l % members.len()]
            },
            |agent| big.c.list_items(Viewer::Agent(agent), &q, &cx),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("list_first_100_outsider", |b| {
        b.iter(|| big.c.list_items(Viewer::Agent("outsider"), &q, &cx))
    });
    g.finish();

    // How often a first page stops at the 10,000-candidate scan limit in this world (printed,
    // for BENCHMARKS.md).
    let mut stopped = 0;
    let mut short = 0;
    let sample = 1000;
    let mut scanned = 0;
    for m in members.iter().step_by(members.len() / sample) {
        let page = big.c.list_items(Viewer::Agent(m), &q, &cx);
        stopped += usize::from(page.stopped_at_scan_limit);
        short += usize::from(page.items.len() < 100);
        scanned += page.scanned;
    }
    let outsider = big.c.list_items(Viewer::Agent("outsider"), &q, &cx);
    eprintln!(
        "first pages of {sample} members: {stopped} stopped at the scan limit, {short} short of 100, \
         {} candidates scanned on average; an outsider's page: {} items after {} candidates \
         (stopped at the limit: {})",
        scanned / sample,
        outsider.items.len(),
        outsider.scanned,
        outsider.stopped_at_scan_limit
    );
}

fn modules(c: &mut Criterion) {
    let mut big = world::build(world::LARGE);
    let m = world::add_modules(&mut big, 10, 1_000);
    let cx = Ctx::at(big.now);
    let members = &big.members;
    let comments = |items: &[agora_governance::ItemId]| -> Vec<Request> {
        items
            .iter()
            .map(|d| {
                Request::parse(&change_body(
                    "comment",
                    &format!("item:{d}"),
                    json!({"body": "hi"}),
                ))
                .unwrap()
            })
            .collect()
    };
    let inside = comments(&m.inside);
    let outside = comments(&m.outside);
    // What the two sides decide, over the agents and items the benchmark cycles through (for
    // BENCHMARKS.md: the routes differ by design, the work should not).
    for (label, reqs) in [("inside", &inside), ("outside", &outside)] {
        let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
        for k in 0..10_000usize {
            let i = k.wrapping_mul(7919);
            let d = big
                .c
                .decide(&members[i % members.len()], &reqs[i % reqs.len()], &cx)
                .unwrap();
            let key = format!(
                "{:?}/{}",
                d.status,
                d.route.map_or("none", agora_governance::Route::name)
            );
            *outcomes.entry(key).or_default() += 1;
        }
        eprintln!("{label} a module, 10,000 decisions: {outcomes:?}");
    }
    let mut g = c.benchmark_group("modules");
    for (name, reqs) in [
        ("decide_comment_in_module", &inside),
        ("decide_comment_outside_module", &outside),
    ] {
        let mut j = 0usize;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    j = j.wrapping_add(7919);
                    (&members[j % members.len()], &reqs[j % reqs.len()])
                },
                |(agent, req)| big.c.decide(agent, req, &cx).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, decisions, modules);
criterion_main!(benches);
