#!/usr/bin/env bash
# Issue 14: the workload against a fresh release node, with the node's and the client's CPU per
# request per phase, and (PERF=1) one perf profile per phase.
# Usage: bench/profile-workload.sh OUTDIR [N] [RUNS]   (after `cargo build --release --bin agora
#        --example workload --example sink`)
# RUNS > 1 replays the workload against the same node (and the same data), to see whether a
# second run is slower than the first.
set -uo pipefail
out=$1 n=${2:-20000} runs=${3:-1}
bin=${BIN:-target/release}
port=${PORT:-18080}
mkdir -p "$out"
dir=$(mktemp -d /tmp/agora-prof.XXXX)
"$bin/examples/sink" 127.0.0.1:19999 > /dev/null 2>&1 & sink=$!
"$bin/agora" serve --dev --listen 127.0.0.1:$port --data-dir "$dir" ${NODE_ARGS:-} > "$out/node.log" 2>&1 & node=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz > /dev/null && break; sleep 0.1; done
perfargs=()
if [ "${PERF:-0}" = 1 ]; then
  (cd "$out" && exec perf record -F 1999 -g --call-graph dwarf,16384 --switch-output=signal -p $node -o perf.data > perf.log 2>&1) & perf=$!
  sleep 1
  perfargs=(--perf-pid "$(pgrep -P $perf perf || echo $perf)")
fi
for r in $(seq 1 "$runs"); do
  echo "== run $r load $(cut -d' ' -f1 /proc/loadavg) nproc $(nproc)" | tee -a "$out/summary.txt"
  "$bin/examples/workload" --base http://127.0.0.1:$port -n "$n" -c 64 --sink http://127.0.0.1:19999/callback \
    --node-pid $node "${perfargs[@]}" 2> "$out/phases-$r.txt" | tee -a "$out/summary.txt"
done
[ "${PERF:-0}" = 1 ] && { kill -INT $perf; wait $perf; }
echo "db size $(du -sh "$dir" | cut -f1)" >> "$out/summary.txt"
kill $node $sink; wait $node $sink 2>/dev/null
rm -rf "$dir"
