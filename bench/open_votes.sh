#!/usr/bin/env bash
# Opens N choice votes (closing in 2030) in community "wrk" on BASE and writes their
# Locations, one per line, to OUT. Usage: bench/open_votes.sh BASE N OUT
set -euo pipefail
base=$1 n=$2 out=$3
curl -s -XPOST "$base/api/internal/community" -d '{"slug":"wrk"}' > /dev/null || true
: > "$out"
for _ in $(seq 1 "$n"); do
  curl -s -i -XPOST -H 'X-Metagov-Community: wrk' "$base/api/internal/process/vote.choice" \
    -d '{"options":["a","b"],"closing_at":"2030-01-01T00:00:00Z"}' \
    | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }' >> "$out"
done
