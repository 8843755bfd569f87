#!/usr/bin/env bash
# Issue 14's sitting: ROUNDS rounds, each on a fresh node and data directory: the workload
# (n = 20,000, c = 64, sink as driver) with node and client CPU per request, wrk on the two read
# phases' routes, then the workload again on the same node (does a second run slow down?).
# Each round first measures the host's HTTP ceilings (examples/ceilings).
# Usage: bench/targets-sitting.sh OUTDIR [ROUNDS]   (release build of agora, workload, sink
#        and ceilings: cargo build --release --bin agora --examples)
set -uo pipefail
out=$1 rounds=${2:-3}
bin=${BIN:-target/release}
port=18080 base=http://127.0.0.1:18080
requests=20000  # per workload phase; process_close's callbacks are as many
mkdir -p "$out"
# The host's own speed: SHA-256 over 256 MiB on one core, in ms. This machine is a VM whose
# speed drifts by 10-30 % within an hour; a run whose probe is slow says so about its figures.
probe() {
  local t0; t0=$(date +%s%N)
  head -c 268435456 /dev/zero | sha256sum > /dev/null
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
# The host's cost of a context switch: µs per round trip of perf's pipe ping-pong between two
# processes (two switches each), free to run on either core, then both on one core. Hosts of
# this kind differ here (kernel mitigations, VM exits) far more than in the SHA-256 probe, and
# a write crosses threads about three times, so it moves the write phases' figures. A large
# gap between the two means waking a thread on an idle core is what costs (the guest halts
# idle vCPUs and the host must wake them).
switch_probe() {
  echo "$(perf bench sched pipe -l 50000 2> /dev/null | awk '/usecs\/op/ {print $1}') us across cores," \
    "$(taskset -c 0 perf bench sched pipe -l 50000 2> /dev/null | awk '/usecs\/op/ {print $1}') us on one core"
}
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
command -v perf > /dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
# This host's ceilings, in this round (examples/ceilings), with the wrk the read phases are
# cross-checked with: axum alone, with one actor hop, and with one hop and one durable write.
ceilings() {
  local db; db=$(mktemp -d /tmp/agora-ceilings.XXXX)
  "$bin/examples/ceilings" 127.0.0.1:18070 "$db" > /dev/null 2>&1 & local c=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18070/json > /dev/null && break; sleep 0.1; done
  local line="ceilings round $1:"
  for path in json actor write; do
    # A refused write would count as a fast one: say so beside the figure.
    line="$line $path $(wrk -t2 -c64 -d10s http://127.0.0.1:18070/$path |
      awk '/Non-2xx/ {bad = " (" $NF " non-2xx)"} /Requests\/sec/ {rps = $2} END {printf "%s req/s%s", rps, bad}'),"
  done
  kill $c; wait $c 2> /dev/null
  rm -rf "$db"
  echo "${line%,}" | tee -a "$out/summary.txt"
}
for r in $(seq 1 "$rounds"); do
  ceilings "$r"
  dir=$(mktemp -d /tmp/agora-sit.XXXX)
  "$bin/examples/sink" 127.0.0.1:19999 > /dev/null 2>&1 & sink=$!
  "$bin/agora" serve --dev --listen 127.0.0.1:$port --data-dir "$dir" > "$out/node-$r.log" 2>&1 & node=$!
  for _ in $(seq 1 100); do curl -sf $base/healthz > /dev/null && break; sleep 0.1; done
  for pass in first second; do
    before=$(probe)
    echo "host probe round $r $pass run: context switch round trip $(switch_probe)" | tee -a "$out/summary.txt"
    echo "== round $r $pass run, load $(cut -d' ' -f1 /proc/loadavg), nproc $(nproc)" | tee -a "$out/summary.txt"
    k0=$(awk '{print $14+$15}' /proc/$sink/stat)
    "$bin/examples/workload" --base $base -n $requests -c 64 --sink http://127.0.0.1:19999/callback \
      --node-pid $node 2>/dev/null | tee -a "$out/summary.txt"
    # The sink shares the two cores; it takes process_close's callbacks, one per close.
    echo "sink CPU over the run: $(awk -v a="$k0" -v b="$(awk '{print $14+$15}' /proc/$sink/stat)" -v n=$requests \
      'BEGIN {printf "%.1f", (b-a)*1e4/n}') us per process_close callback" | tee -a "$out/summary.txt"
    echo "host probe round $r $pass run: $before ms before, $(probe) ms after" | tee -a "$out/summary.txt"
    if [ $pass = first ]; then
      loc=$(curl -si -X POST $base/api/internal/process/randomness.delayed-stochastic-vote \
        -H 'X-Metagov-Community: bench' -H 'content-type: application/json' \
        -d '{"options": ["yes", "no"], "delay": 3600}' | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
      for path in /api/internal/community/bench "$loc"; do
        c0=$(awk '{print $14+$15}' /proc/$node/stat)
        TIMEFORMAT='%U %S'; { time wrk -t2 -c64 -d10s --latency "$base$path" > "$out/wrk-$r.txt" 2>&1; } 2> "$out/wrk-cpu.txt"
        c1=$(awk '{print $14+$15}' /proc/$node/stat)
        n=$(awk '/requests in/ {print $1}' "$out/wrk-$r.txt")
        echo "wrk GET $path: $(awk '/Requests\/sec/ {print $2}' "$out/wrk-$r.txt") req/s, p50 $(awk '$1=="50%" {print $2}' "$out/wrk-$r.txt"), p99 $(awk '$1=="99%" {print $2}' "$out/wrk-$r.txt"), node CPU $(awk -v a=$c0 -v b=$c1 -v n=$n 'BEGIN{printf "%.1f", (b-a)*1e4/n}') us/req, wrk CPU $(awk -v n=$n '{printf "%.1f", ($1+$2)*1e6/n}' "$out/wrk-cpu.txt") us/req" | tee -a "$out/summary.txt"
      done
      # Close the pending process again: every pending process of the instance hears each
      # webhook, so leaving it would make the second run's webhook phase do more work.
      curl -s -o /dev/null -X DELETE "$base$loc"
      for ph in create set_lucky; do
        c0=$(awk '{print $14+$15}' /proc/$node/stat)
        TIMEFORMAT='%U %S'; { time PHASE=$ph RUN=$r wrk -t2 -c64 -d10s --latency -s bench/writes.lua $base > "$out/wrk-$r-$ph.txt" 2>&1; } 2> "$out/wrk-cpu.txt"
        c1=$(awk '{print $14+$15}' /proc/$node/stat)
        n=$(awk '/requests in/ {print $1}' "$out/wrk-$r-$ph.txt")
        echo "wrk $ph: $(awk '/Requests\/sec/ {print $2}' "$out/wrk-$r-$ph.txt") req/s, p50 $(awk '$1=="50%" {print $2}' "$out/wrk-$r-$ph.txt"), p99 $(awk '$1=="99%" {print $2}' "$out/wrk-$r-$ph.txt"), $(grep non-2xx "$out/wrk-$r-$ph.txt"), node CPU $(awk -v a=$c0 -v b=$c1 -v n=$n 'BEGIN{printf "%.1f", (b-a)*1e4/n}') us/req, wrk CPU $(awk -v n=$n '{printf "%.1f", ($1+$2)*1e6/n}' "$out/wrk-cpu.txt") us/req" | tee -a "$out/summary.txt"
      done
    fi
  done
  echo "db size after round $r: $(du -sh "$dir" | cut -f1)" | tee -a "$out/summary.txt"
  kill $node $sink; wait $node $sink 2>/dev/null
  rm -rf "$dir"
done
