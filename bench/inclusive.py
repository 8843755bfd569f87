#!/usr/bin/env python3
"""Inclusive share of each function in `perf script` output (dwarf call graphs), so the cost of
one of our functions includes everything it calls. Usage:
    perf script -i perf.data | bench/inclusive.py [REGEX] [TOP]
REGEX filters the functions printed (default: our crates, sled, hyper, serde, the allocator)."""
import re, sys, collections

pat = re.compile(sys.argv[1] if len(sys.argv) > 1 else
                 r"agora_|sled::|hyper::proto|serde_json|rmp_serde|jsonschema|mi_malloc|mi_free|reqwest|tracing|actix::")
top = int(sys.argv[2]) if len(sys.argv) > 2 else 60
incl = collections.Counter()
total = 0
frames = set()
def flush():
    global total, frames
    if frames:
        total += 1
        for f in frames:
            incl[f] += 1
    frames = set()
for line in sys.stdin:
    if not line.strip():
        flush(); continue
    if line[0] not in " \t":
        flush(); continue
    parts = line.strip().split(None, 1)
    if len(parts) < 2: continue
    sym = parts[1]
    sym = re.sub(r"\+0x[0-9a-f]+ \(.*\)$", "", sym)
    sym = re.sub(r" \(.*\)$", "", sym)
    # Drop generic arguments so monomorphised copies add up.
    s2 = re.sub(r"<[^<>]*>", "", sym)
    s2 = re.sub(r"<[^<>]*>", "", s2)
    s2 = re.sub(r"<[^<>]*>", "", s2)
    frames.add(s2[:150])
flush()
print(f"{total} samples")
for f, c in incl.most_common():
    if pat.search(f):
        print(f"{100*c/total:6.2f}%  {f}")
        top -= 1
        if top == 0: break
