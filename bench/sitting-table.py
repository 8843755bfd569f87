#!/usr/bin/env python3
"""Summarises bench/targets-sitting.sh output: per phase, the range of req/s and p99 over the
rounds' first runs, the ratio to Metagov's lower bound, node CPU per request, and the second
run's change against the first on the same node; then, when the sitting measured the host's HTTP
ceilings (examples/ceilings), each phase as a share of its round's axum + actor-hop ceiling beside
the share the issue's target was of the ceiling it was set against (115,000/s), and each write
phase as a share of the round's floor for one durable write over HTTP.
Usage: bench/sitting-table.py OUTDIR/summary.txt"""
import re, sys, collections

METAGOV_LOW = {  # ../shared/metagov-baseline.md, lower of the two runs
    "community_create": 196, "community_put_enable": 65, "community_get": 296,
    "plugin_enable_same": 295, "action_random_int": 323, "action_set_lucky": 176,
    "process_start": 62, "process_get": 297, "process_close": 102, "webhook_noop": 328,
}
TARGET = {"community_get": 57000, "process_get": 57000, "community_create": 40000,
          "action_set_lucky": 40000, "plugin_enable_same": 40000, "webhook_noop": 40000,
          "process_start": 20000, "process_close": 20000}
# The issue's targets were set against an axum + one-actor-hop ceiling of 115,000 req/s
# (../shared/runtime-notes.md, the machine of the time).
ISSUE_HOP_CEILING = 115000
DURABLE_WRITES = {"community_create", "action_set_lucky", "process_start", "process_close"}
runs = collections.defaultdict(lambda: collections.defaultdict(list))
hop_ceiling = []  # per round, in round order
write_floor = []
wrk = []
current = None
for line in open(sys.argv[1]):
    m = re.match(r"ceilings round \d+: json ([\d.]+) req/s, actor ([\d.]+) req/s, write ([\d.]+) req/s", line)
    if m:
        hop_ceiling.append(float(m.group(2)))
        write_floor.append(float(m.group(3)))
        wrk.append(line.strip())
        continue
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
if hop_ceiling:
    print()
    print("| phase | share of the round's hop ceiling (first runs) | issue's target as a share of 115,000 | at that share | share of the round's durable-write floor |")
    print("|---|---|---|---|---|")
    for ph in METAGOV_LOW:
        f = runs["first"][ph]
        if not f or ph not in TARGET or len(f) != len(hop_ceiling):
            continue
        shares = [x[0] / c for x, c in zip(f, hop_ceiling)]
        want = TARGET[ph] / ISSUE_HOP_CEILING
        met = "met" if min(shares) >= want else ("met in some" if max(shares) >= want else "missed")
        writes = "/".join(f"{100 * x[0] / w:.0f} %" for x, w in zip(f, write_floor)) \
            if ph in DURABLE_WRITES else "-"
        print(f"| {ph} | {'/'.join(f'{100 * x:.0f} %' for x in shares)} | {100 * want:.0f} % | {met} | {writes} |")
