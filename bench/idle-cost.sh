#!/usr/bin/env bash
# The CPU a node spends on background work while no request arrives: idle on a fresh node,
# then idle after one workload run (20,000 communities with a plugin instance each).
# Usage: BIN=<dir> [HEALTH_MS=1000] bench/idle-cost.sh   (release agora, examples/workload, sink)
# HEALTH_MS sets --health-interval-ms: 1000 runs a prober round every second, so the ticks per
# 10 s read as milliseconds per round.
set -uo pipefail
bin=${BIN:-target/release} port=${PORT:-18112}
dir=$(mktemp -d /tmp/agora-idle.XXXX)
"$bin/examples/sink" 127.0.0.1:19997 > /dev/null 2>&1 & sink=$!
"$bin/agora" serve --dev --listen 127.0.0.1:$port --data-dir "$dir" \
  --health-interval-ms "${HEALTH_MS:-1000}" > "$dir.log" 2>&1 & node=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz > /dev/null && break; sleep 0.1; done
ticks() { awk '{print $14+$15}' /proc/$node/stat; }
idle() { local c0; c0=$(ticks); sleep 10; echo "$1: $(( $(ticks) - c0 )) ticks of node CPU in 10 s (1 tick = 10 ms)"; }
idle "idle, fresh node"
"$bin/examples/workload" --base http://127.0.0.1:$port -n 20000 -c 64 \
  --sink http://127.0.0.1:19997/callback > /dev/null 2>&1
sleep 2
idle "idle, after one workload run"
kill $node $sink; wait $node $sink 2>/dev/null
rm -rf "$dir" "$dir.log"
