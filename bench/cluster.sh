#!/usr/bin/env bash
# One node on SQLite, one node on PostgreSQL, two nodes on one PostgreSQL, side by side in one
# run: PutLogEvents (a signed batch of 100 events, replayed by wrk) in events/s, and
# DescribeDestinations (100 stored, first page of 50) in requests/s. With two nodes, one wrk
# drives each node at once and the rates are summed. Ceiling, in the same run: the bare axum
# server (bench/bare) answering DescribeDestinations' bytes.
#
#   bash bench/cluster.sh                        # from the repo root
#   SLUICE_BIN=/path/to/sluice bash bench/cluster.sh
#
# Env: DURATION (10s), WARMUP (2s), CONNECTIONS (16 per node), SLUICE_BIN (default: build the
#      release binary). PostgreSQL: the suite's throwaway server (scripts/test-postgres.sh),
#      fsync on, as SQLite's synchronous = FULL. Everything, wrk included, shares this
#      machine's cores: with two nodes, the two servers, PostgreSQL and two wrk compete for
#      them, so the two-node figures measure contention, not what a second machine adds.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-16}"
PORTS=(4620 4621)
BARE_PORT=4622

. bench/lib.sh
bench_setup cluster-
PG_BASE="$(./scripts/test-postgres.sh start)"

PIDS=()
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
fresh_database() {
  local name="sluice_bench_$(date +%s%N)"
  psql -q "$PG_BASE" -c "CREATE DATABASE $name" >/dev/null
  echo "${PG_BASE%/*}/$name"
}
# wrk against each given endpoint at once; prints the summed requests/s and non-2xx count.
load() {
  local name=$1 dir=$2; shift 2
  local i=0 pids=() endpoint
  for endpoint in "$@"; do
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" --timeout 5s -s "$dir/request.lua" "$endpoint/" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"; pids=()
  for endpoint in "$@"; do
    wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 5s -s "$dir/request.lua" "$endpoint/" >"$RESULTS/$name.$i.wrk" &
    pids+=($!); i=$((i + 1))
  done
  wait "${pids[@]}"
  cat "$RESULTS/$name".*.wrk | awk '/^Requests\/sec/ {r += $2} /Non-2xx/ {n += $NF} END {printf "%.0f %d", r, n}'
}

# setup NAME NODES STORE_ARG...: starts the nodes (one data directory), seeds through the
# first; sets ENDPOINTS.
setup() {
  local name=$1 nodes=$2; shift 2
  local data="$WORK/$name-data" i pid
  ENDPOINTS=()
  for ((i = 0; i < nodes; i++)); do
    "$WORK/bin/sluice" serve --listen "127.0.0.1:${PORTS[$i]}" --data-dir "$data" "$@" >"$RESULTS/$name.node$i.log" 2>&1 &
    pid=$!; PIDS+=("$pid")
    wait_for_port "${PORTS[$i]}" "$pid"
    ENDPOINTS+=("http://127.0.0.1:${PORTS[$i]}")
  done
  timeout 300 "$PY" bench/cluster.py seed "${ENDPOINTS[0]}" "$WORK/$name-requests"
}

ROWS=()
run() {
  local name=$1 label=$2 nodes=$3; shift 3
  setup "$name" "$nodes" "$@"
  local dir="$WORK/$name-requests"
  read -r put_rps put_bad <<<"$(load "$name.put" "$dir/PutLogEvents" "${ENDPOINTS[@]}")"
  read -r dd_rps dd_bad <<<"$(load "$name.describe" "$dir/DescribeDestinations" "${ENDPOINTS[@]}")"
  stop_all
  ROWS+=("| $label | $((put_rps * 100)) | $put_bad | $dd_rps | $dd_bad |")
  DD["$name"]=$dd_rps
}
declare -A DD
for port in "${PORTS[@]}" "$BARE_PORT"; do port_free "$port" || { echo "port $port is in use" >&2; exit 1; }; done
run sqlite "SQLite, 1 node" 1
run pg1 "PostgreSQL, 1 node" 1 --store "$(fresh_database)"
run pg2 "PostgreSQL, 2 nodes" 2 --store "$(fresh_database)"

# The ceiling: DescribeDestinations' bytes from a bare server.
"$WORK/bin/sluice" serve --listen "127.0.0.1:${PORTS[0]}" --data-dir "$WORK/sqlite-data" >/dev/null 2>&1 &
pid=$!; PIDS+=("$pid"); wait_for_port "${PORTS[0]}" "$pid"
curl -s -X POST -H @"$WORK/sqlite-requests/DescribeDestinations/headers" \
  --data-binary @"$WORK/sqlite-requests/DescribeDestinations/body" -o "$WORK/dd.json" "http://127.0.0.1:${PORTS[0]}/"
stop_all
"$WORK/bin/bare" "127.0.0.1:$BARE_PORT" "$WORK/dd.json" "application/x-amz-json-1.1" >/dev/null 2>&1 &
pid=$!; PIDS+=("$pid"); wait_for_port "$BARE_PORT" "$pid"
read -r bare_rps _ <<<"$(load bare.describe "$WORK/sqlite-requests/DescribeDestinations" "http://127.0.0.1:$BARE_PORT")"
stop_all

echo "machine: $(nproc) cores, shared by wrk, the nodes and PostgreSQL; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "sluice $("$WORK/bin/sluice" --version | awk '{print $2}') ($COMMIT); wrk -t1 -c$CONNECTIONS -d$DURATION per node after a $WARMUP warm-up; raw outputs in $RESULTS"
echo
echo "| store | PutLogEvents events/s | non-2xx | DescribeDestinations req/s | non-2xx |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "bare axum server with DescribeDestinations' bytes: $bare_rps req/s; SQLite 1 node $(awk -v s="${DD[sqlite]}" -v b="$bare_rps" 'BEGIN {printf "%.1f", 100*s/b}') %, PostgreSQL 1 node $(awk -v s="${DD[pg1]}" -v b="$bare_rps" 'BEGIN {printf "%.1f", 100*s/b}') %, 2 nodes $(awk -v s="${DD[pg2]}" -v b="$bare_rps" 'BEGIN {printf "%.1f", 100*s/b}') % of it"
