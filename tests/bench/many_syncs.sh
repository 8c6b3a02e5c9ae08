#!/usr/bin/env bash
# A couple who synced after every rating: N single-rating syncs make N events in the
# shared space. Prints the time of a `duet sync` that brings nothing new and of
# `duet status` on that store (median of five), which fold the space's membership from
# every stored event. Not part of the harness: building the store takes about 0.15 s per
# sync (2.5 minutes at N = 1000).
#
#   cargo build --release -p duet -p duet-relay
#   tests/bench/many_syncs.sh target/release 1000
set -euo pipefail
bin=$(cd "${1:?give the directory of the duet and duet-relay binaries}" && pwd)
n=${2:-1000}
dir=$(mktemp -d)
trap 'kill "$relay" 2>/dev/null; rm -rf "$dir"' EXIT
"$bin/duet-relay" --listen 127.0.0.1:0 --db "$dir/relay.db" --open-registration \
    >"$dir/relay.out" 2>/dev/null &
relay=$!
url=""
for _ in $(seq 200); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/relay.out" || true)
    [ -n "$url" ] && break
    sleep 0.05
done
duet() { "$bin/duet" --home "$dir/$1" "${@:2}"; }
duet a init --name Alex --relay "$url" >/dev/null 2>&1
code=$(duet a invite --json | sed -n 's/.*"code": "\([^"]*\)".*/\1/p')
duet b join "$code" --name Sam >/dev/null 2>&1
duet a goal add "Walk together" --area communication >/dev/null
for _ in $(seq "$n"); do
    duet a rate "Walk together" 1 >/dev/null 2>&1
    duet a checkin --close >/dev/null 2>&1 || true
    duet a sync >/dev/null 2>&1
done
duet b sync >/dev/null 2>&1
median() {
    local times=()
    for _ in 1 2 3 4 5; do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s%N)
        times+=("$(( (t1 - t0) / 1000 ))")
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n 3p | awk '{ printf "%.4f", $1 / 1e6 }'
}
echo "bench: many_syncs_${n}_sync_nothing_new $(median duet b sync) s"
echo "bench: many_syncs_${n}_status $(median duet b status) s"
