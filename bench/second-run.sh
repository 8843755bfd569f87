#!/usr/bin/env bash
# Issue 14's second-run rule: ROUNDS fresh nodes, each running the workload twice back to back
# (bench/profile-workload.sh OUT N 2), then one table of second-run/first-run per phase.
# Usage: bench/second-run.sh OUTDIR [ROUNDS] [N]   (release build of agora, workload and sink)
set -uo pipefail
out=$1 rounds=${2:-5} n=${3:-20000}
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  rm -rf "$out/round-$r"
  "$(dirname "$0")/profile-workload.sh" "$out/round-$r" "$n" 2 > /dev/null 2>&1
done
python3 "$(dirname "$0")/second-run.py" "$out"/round-*/summary.txt | tee "$out/table.txt"
