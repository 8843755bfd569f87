#!/usr/bin/env python3
"""Self time of a perf profile grouped by component, so a phase's cost reads as a short table.
Usage: perf report -i perf.data --no-children --sort dso,symbol --stdio -g none | bench/components.py"""
import re, sys, collections

RULES = [
    ("kernel: network (tcp, epoll, syscalls)", r"\[k\] .*(tcp|sock|skb|epoll|ip_|net_|__sys_|syscall|recv|send|inet|loopback|napi|nf_|__x64)"),
    ("kernel: scheduling, futex, wakeups", r"\[k\] .*(sched|task_switch|futex|wake|spin_unlock|switch_|hrtimer|idle|rcu|irq|update_|enqueue|dequeue|pick_)"),
    ("kernel: file writes, fsync", r"\[k\] .*(ext4|jbd2|blk|bio|folio|page|mpage|iomap|vfs|file|fsync|write|dirty)"),
    ("kernel: other", r"\[k\]"),
    ("sled (tree, pagecache, log)", r"sled::|crossbeam_epoch|crossbeam_utils|parking_lot"),
    ("allocator (mimalloc) and memcpy", r"mi_|_mi_|memmove|memcpy|memset|memcmp|alloc::raw_vec|alloc::alloc|realloc|malloc|free|__rust_"),
    ("hyper / http / axum / tower", r"hyper|http::|axum|tower|httparse|h2::|bytes::"),
    ("reqwest (outbound HTTP)", r"reqwest|hyper_util::client|url::"),
    ("serde_json, rmp_serde, JSON schema", r"serde|rmp|jsonschema|ryu|itoa|agora_plugins::schema"),
    ("tokio / actix runtime", r"tokio|actix|futures|mio::"),
    ("tracing", r"tracing"),
    ("agora code", r"agora"),
    ("std / core / other", r"."),
]
comp = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s*([0-9.]+)%\s+(.*)$", line)
    if not m:
        continue
    pct, rest = float(m.group(1)), m.group(2)
    # Classify by the symbol alone (the dso column says "agora" for all of our binary), and
    # by the first crate path in it: `<F as axum::Handler>::call` is axum's,
    # `drop_in_place<tower::MapFuture<..>>` tower's, whatever generic arguments follow.
    kernel = "[k]" in rest
    sym = re.split(r"\[[.k]\] ", rest, maxsplit=1)[-1]
    sym = re.sub(r"^(core::ptr::)?drop_in_place<", "", sym)
    first = re.search(r"[A-Za-z_][A-Za-z0-9_]*::[A-Za-z_]", sym)
    rest = ("[k] " if kernel else "") + (sym[first.start():] if first and not kernel else sym)
    for name, rx in RULES:
        if re.search(rx, rest):
            comp[name] += pct
            break
for name, _ in RULES:
    if comp[name] >= 0.05:
        print(f"{comp[name]:6.1f}%  {name}")
