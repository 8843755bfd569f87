#!/usr/bin/env bash
# Where a phase's thread crossings happen: context switches (voluntary / involuntary) and CPU
# per request for each of the node's threads, and sled flushes per request, over an 8 s wrk run
# of one write phase of bench/writes.lua against a fresh node: create, set_lucky, or a process
# start or close (examples/sink takes their callbacks; close first starts 6 s of processes,
# then closes them; the sink's own CPU per request is printed too).
# Usage: BIN=<dir> [NODE_ARGS=...] bench/switches.sh [create|set_lucky|start|close]
#        (release agora; start and close also need the release examples)
set -uo pipefail
phase=${1:-create}
bin=${BIN:-target/release} port=${PORT:-18090} base=http://127.0.0.1:${PORT:-18090}
lua=$(dirname "$0")/writes.lua
dir=$(mktemp -d /tmp/agora-switches.XXXX)
sink=
if [ "$phase" = start ] || [ "$phase" = close ]; then
  export SINK=http://127.0.0.1:19997/callback LOCS=$dir/locs
  "$bin/examples/sink" 127.0.0.1:19997 > /dev/null 2>&1 & sink=$!
fi
"$bin/agora" serve --dev --listen 127.0.0.1:$port --data-dir "$dir" ${NODE_ARGS:-} > "$dir.log" 2>&1 & node=$!
for _ in $(seq 1 100); do curl -sf $base/healthz > /dev/null && break; sleep 0.1; done
curl -s -o /dev/null -X POST $base/api/internal/community -H 'content-type: application/json' \
  -d '{"slug":"bench","readable_name":"Bench"}'
# set_lucky acts through the randomness plugin, enabled as examples/workload enables it.
curl -s -o /dev/null -X PUT $base/api/internal/community/bench -H 'content-type: application/json' \
  -d '{"slug":"bench","readable_name":"Bench","plugins":[{"name":"randomness","config":{"default_low":2,"default_high":200}}]}'
# Warm up, so sled's I/O pool and the node's threads exist before the first snapshot; close
# needs processes to close, which its warm-up starts.
if [ "$phase" = close ]; then
  PHASE=start wrk -t2 -c64 -d6s -s "$lua" $base > /dev/null
else
  PHASE=$phase RUN=warm wrk -t2 -c64 -d2s -s "$lua" $base > /dev/null
fi
snap() {
  for t in /proc/$node/task/*; do
    echo "$(tr ' ' _ < "$t/comm") $(awk '/^voluntary/ {v=$2} /^nonvoluntary/ {n=$2} END {print v, n}' "$t/status") $(awk '{print $14+$15}' "$t/stat")"
  done | sort
}
flushes() { curl -s $base/metrics | awk '/^agora_flushes_total/ {print $2}'; }
# The sink (the driver's stand-in) shares the two cores: its CPU is part of what a callback costs.
sink_cpu() { if [ -n "$sink" ]; then awk '{print $14+$15}' /proc/$sink/stat; else echo 0; fi; }
snap > "$dir.s0"; f0=$(flushes); k0=$(sink_cpu)
# Closes run 4 s: fewer than the 6 s of starts before them at any rate seen so far.
duration=8s; [ "$phase" = close ] && duration=4s
PHASE=$phase RUN=main wrk -t2 -c64 -d$duration -s "$lua" $base > "$dir.wrk"
snap > "$dir.s1"; f1=$(flushes); k1=$(sink_cpu)
n=$(awk '/requests in/ {print $1}' "$dir.wrk")
echo "$phase: $(awk '/Requests\/sec/ {print $2}' "$dir.wrk") req/s, $(grep non-2xx "$dir.wrk"), $(awk -v a="$f0" -v b="$f1" -v n="$n" 'BEGIN {printf "%.3f", (b-a)/n}') flushes/req"
# Thread names repeat (one sled-io-N each, actix workers share one): sum per name.
paste "$dir.s0" "$dir.s1" | awk -v n="$n" '
  { v[$1] += $6 - $2; i[$1] += $7 - $3; c[$1] += $8 - $4 }
  END {
    for (k in v) if (v[k] + i[k] + c[k] > 0) {
      printf "%-20s switches/req %.3f voluntary + %.3f involuntary, CPU %.1f us/req\n", k, v[k]/n, i[k]/n, c[k]*1e4/n
      tv += v[k]; ti += i[k]; tc += c[k]
    }
    printf "%-20s switches/req %.3f voluntary + %.3f involuntary, CPU %.1f us/req\n", "all threads", tv/n, ti/n, tc*1e4/n
  }' | sort
[ -n "$sink" ] && echo "sink CPU $(awk -v a="$k0" -v b="$k1" -v n="$n" 'BEGIN {printf "%.1f", (b-a)*1e4/n}') us/req"
kill $node $sink; wait $node $sink 2>/dev/null
rm -rf "$dir" "$dir".*
