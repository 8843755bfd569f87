#!/usr/bin/env python3
"""Summarises bench/targets-sitting.sh output: per phase, the range of req/s and p99 over the
rounds' first runs, the ratio to Metagov's lower bound, node CPU per request, and the second
run's change against the first on the same node. Usage: bench/sitting-table.py OUTDIR/summary.txt"""
import re, sys, collections

METAGOV_LOW = {  # ../shared/metagov-baseline.md, lower of the two runs
    "community_create": 196, "community_put_enable": 65, "community_get": 296,
    "plugin_enable_same": 295, "action_random_int": 323, "action_set_lucky": 176,
    "process_start": 62, "process_get": 297, "process_close": 102, "webhook_noop": 328,
}
TARGET = {"community_get": 57000, "process_get": 57000, "community_create": 40000,
          "action_set_lucky": 40000, "plugin_enable_same": 40000, "webhook_noop": 40000,
          "process_start": 20000, "process_close": 20000}
runs = collections.defaultdict(lambda: collections.defaultdict(list))
wrk = []
current = None
for line in open(sys.argv[1]):
    m = re.match(r"== round (\d+) (first|second) run", line)
    if m:
        current = m.group(2)
        continue
    m = re.match(r"(\w+)\s+n=\s*\d+\s+([\d.]+) req/s\s+p50=\s*([\d.]+)ms\s+p99=\s*([\d.]+)ms.*errors=(\d+).*node=\s*([\d.]+)us client=\s*([\d.]+)us", line)
    if m and current and m.group(1) in METAGOV_LOW:
        runs[current][m.group(1)].append(tuple(float(x) for x in m.groups()[1:]))
    if line.startswith("wrk ") or line.startswith("host probe"):
        wrk.append(line.strip())
print("| phase | req/s (3 fresh runs) | × Metagov low | target | p99 ms | node / client CPU µs/req | second run vs first |")
print("|---|---|---|---|---|---|---|")
for ph in METAGOV_LOW:
    f = runs["first"][ph]
    s = runs["second"][ph]
    if not f:
        continue
    rps = [x[0] for x in f]
    lo, hi = min(rps), max(rps)
    ratio = f"{lo / METAGOV_LOW[ph]:.0f}–{hi / METAGOV_LOW[ph]:.0f}×"
    tgt = max(TARGET.get(ph, 0), 100 * METAGOV_LOW[ph])
    met = "met" if lo >= tgt else ("met in some" if hi >= tgt else "missed")
    p99 = "/".join(f"{x[2]:.1f}" for x in f)
    cpu = f"{sum(x[4] for x in f) / len(f):.1f} / {sum(x[5] for x in f) / len(f):.1f}"
    second = "/".join(f"{100 * (b[0] / a[0] - 1):+.0f} %" for a, b in zip(f, s)) if s else "-"
    print(f"| {ph} | {lo:,.0f}–{hi:,.0f} | {ratio} | {tgt:,} ({met}) | {p99} | {cpu} | {second} |")
print()
for w in wrk:
    print(f"- {w}")
