#!/usr/bin/env bash
# DescribeDestinations (first page of 50, 100 stored destinations) under wrk, against Sluice and
# against moto's server in the same run. Prints a markdown table. Loopback only; ~1 minute.
# Usage: bash bench/describe_destinations.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
VENV=/tmp/sluice-bench-venv
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ ! -x "$VENV/bin/moto_server" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'moto[server]==5.2.5' boto3==1.44.5 botocore==1.44.5
fi
PY="$VENV/bin/python"
cargo build --release --quiet

WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# run NAME PORT HEALTH_PATH COMMAND...: cold start, seed, idle RSS, load, RSS after.
run() {
  local name=$1 port=$2 health=$3; shift 3
  local endpoint="http://127.0.0.1:$port"
  local started; started=$(date +%s%N)
  "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  until curl -sf -o /dev/null "$endpoint$health"; do sleep 0.001; done
  local cold=$(( ($(date +%s%N) - started) / 1000000 ))
  local returned; returned=$("$PY" bench/describe_destinations.py seed "$endpoint")
  "$PY" bench/describe_destinations.py request "$endpoint" "$WORK/$name.lua"
  local idle; idle=$(rss_mib "$pid")
  wrk -t2 -c16 -d3s -s "$WORK/$name.lua" "$endpoint/" >/dev/null
  wrk -t2 -c16 -d"$DURATION" --latency -s "$WORK/$name.lua" "$endpoint/" >"$WORK/$name.wrk"
  local loaded; loaded=$(rss_mib "$pid")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/$name.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/$name.wrk")
  echo "| $name | $returned | $rps | $p50 | $p99 | ${non2xx:-0} | $cold | $idle | $loaded |"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "| server | destinations per response | req/s | p50 | p99 | non-2xx | cold start to first answer (ms) | idle RSS (MiB) | RSS after load (MiB) |"
echo "|---|---|---|---|---|---|---|---|---|"
run sluice 4610 /_sluice/health target/release/sluice serve --listen 127.0.0.1:4610 --data-dir "$WORK/sluice-data"
run moto 4611 /moto-api/ "$VENV/bin/moto_server" -H 127.0.0.1 -p 4611
