#!/usr/bin/env python3
"""Second run against first run, per workload phase, from bench/profile-workload.sh summaries
(each holding two runs on one node). Prints each round's req/s ratio, the median ratio and the
node's CPU per request, so one noisy pair does not decide the verdict.
Usage: bench/second-run.py round-1/summary.txt round-2/summary.txt ..."""
import re
import statistics
import sys

LINE = re.compile(r"(\w+)\s+n=\s*\d+\s+([\d.]+) req/s.*?node=\s*([\d.]+)us")


def runs(path):
    out, cur = [], None
    for line in open(path):
        if line.startswith("=="):
            cur = {"head": line.strip()}
            out.append(cur)
        elif cur is not None and (m := LINE.match(line)):
            cur[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return out


pairs = [runs(p)[:2] for p in sys.argv[1:]]
for i, (a, b) in enumerate(pairs, 1):
    print(f"round {i}: {a['head']} | {b['head']}")
phases = [p for p in pairs[0][0] if p not in ("head", "warmup")]
print()
print("| phase | second/first req/s per round | median | node CPU µs/req first → second (medians) |")
print("|---|---|---|---|")
for ph in phases:
    ratios = [b[ph][0] / a[ph][0] for a, b in pairs]
    cpu1 = statistics.median(a[ph][1] for a, _ in pairs)
    cpu2 = statistics.median(b[ph][1] for _, b in pairs)
    each = " ".join(f"{100 * (r - 1):+.0f} %" for r in ratios)
    med = 100 * (statistics.median(ratios) - 1)
    print(f"| {ph} | {each} | **{med:+.0f} %** | {cpu1:.1f} → {cpu2:.1f} |")
