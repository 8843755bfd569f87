#!/usr/bin/env bash
# Issue 9: old (03a1025) and new builds, alternately, in one sitting: workload + hot-vote ballots.
# Usage: side-by-side.sh OUTDIR ROUNDS
set -uo pipefail
out=$1 rounds=${2:-2}
mkdir -p "$out"
OLD=${OLD:?the old build's target/release} NEW=${NEW:?the new build's target/release}
run_one() { # label bindir round
  local label=$1 bin=$2 r=$3 dir port=18080
  dir=$(mktemp -d /tmp/agora-sbs.XXXX)
  "$bin/examples/sink" 127.0.0.1:19999 > /dev/null 2>&1 & local sink=$!
  "$bin/agora" serve --dev --listen 127.0.0.1:$port --data-dir "$dir" > "$out/$label-$r.node.log" 2>&1 & local node=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz > /dev/null && break; sleep 0.1; done
  cpu() { awk '{print $14+$15}' /proc/$node/stat; }
  local c0; c0=$(cpu)
  echo "== $label round $r load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$out/summary.txt"
  "$bin/examples/workload" --base http://127.0.0.1:$port -n 20000 -c 64 --sink http://127.0.0.1:19999/callback > "$out/$label-$r.workload.txt" 2>&1 \
    || "$bin/examples/workload" --base http://127.0.0.1:$port -n 20000 -c 64 > "$out/$label-$r.workload.txt" 2>&1
  cat "$out/$label-$r.workload.txt" >> "$out/summary.txt"
  local c1; c1=$(cpu)
  bash $(dirname "$0")/open_votes.sh http://127.0.0.1:$port 1 "$out/hot-$label-$r.txt"
  VOTES_FILE="$out/hot-$label-$r.txt" wrk -t2 -c64 -d10s --latency -s $(dirname "$0")/ballots.lua http://127.0.0.1:$port > "$out/$label-$r.wrk.txt" 2>&1
  grep -E 'Requests/sec|50%|99%' "$out/$label-$r.wrk.txt" | sed "s/^/ballots $label: /" >> "$out/summary.txt"
  local c2; c2=$(cpu)
  local nb; nb=$(awk '/requests in/ {print $1}' "$out/$label-$r.wrk.txt")
  echo "cpu $label workload_ticks $((c1-c0)) ballots_ticks $((c2-c1)) ballots $nb" >> "$out/summary.txt"
  kill $node $sink; wait $node $sink 2>/dev/null
  rm -rf "$dir"
}
for r in $(seq 1 "$rounds"); do
  run_one old $OLD $r
  run_one new $NEW $r
done
