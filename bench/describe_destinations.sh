#!/usr/bin/env bash
# Load test: DescribeDestinations (first page, body {}) with 100 stored destinations, replayed
# by wrk as ONE pre-signed request, against Sluice and against moto's server in the same run.
# Also: cold start to the first answered signed request, idle RSS, RSS after the load.
#
#   bash bench/describe_destinations.sh          # from the repo root
#
# Env: DURATION (default 15s), WARMUP (3s), THREADS (2), CONNECTIONS (16),
#      SLUICE_PORT (4610), MOTO_PORT (4611).
# Traffic goes to 127.0.0.1 only. Once installed and built, a run takes about a minute and
# every step is bounded. Raw wrk outputs and server logs are kept in /tmp/sluice-bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-16}"
SLUICE_PORT="${SLUICE_PORT:-4610}"
MOTO_PORT="${MOTO_PORT:-4611}"
MOTO_VERSION=5.2.5
BOTO_VERSION=1.44.5
VENV=/tmp/sluice-bench-venv
PY="$VENV/bin/python"
HELPER=bench/describe_destinations.py

# --- 1. tools -------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
fi
if ! "$PY" -c "import moto, boto3, botocore, werkzeug, flask;
assert moto.__version__ == '$MOTO_VERSION' and boto3.__version__ == '$BOTO_VERSION'" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION" "boto3==$BOTO_VERSION" "botocore==$BOTO_VERSION"
fi

# --- 2. build -------------------------------------------------------------------------------
cargo build --release --quiet
RESULTS="/tmp/sluice-bench-results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX)
# A private copy, so a concurrent `cargo build` cannot swap the binary mid-run.
mkdir "$WORK/bin" && cp "${CARGO_TARGET_DIR:-target}/release/sluice" "$WORK/bin/sluice"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# "+dirty": tracked files outside bench/ differ from that commit, so the figures are not its.
if [ -n "$(git status --porcelain --untracked-files=no -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null)" ]; then
  commit="$commit+dirty"
fi
SLUICE_VERSION="$("$WORK/bin/sluice" --version | awk '{print $2}') ($commit)"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# "busy total" jiffies of all CPUs, from /proc/stat; a process's utime+stime in jiffies.
machine_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# wrk prints latencies as 850.00us, 3.12ms or 1.02s: normalise to ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0;
    else if (v ~ /s$/) printf "%.2f", v * 1000; else print "?" }'
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The replayed request itself, once, through curl: prints the HTTP status, body to $2.
signed_request() {
  curl -s --max-time 10 -o "$2" -w '%{http_code}' -H @"$1/headers" \
       --data-binary @"$1/body" "$3/" 2>/dev/null || true
}

ROWS=()
CHECKS=()
# run NAME VERSION PORT COMMAND...
run() {
  local name=$1 version=$2 port=$3; shift 3
  local endpoint="http://127.0.0.1:$port" dir="$WORK/$name"
  mkdir -p "$dir"
  port_free "$port" || { echo "port $port is already in use" >&2; exit 1; }
  # Sign before spawning, so the cold start measures only the server.
  timeout 60 "$PY" "$HELPER" sign "$endpoint" "$dir"

  # Cold start: spawn to the first 200 for the signed DescribeDestinations (no destinations yet).
  local started pid status cold
  started=$(now_ms)
  "$@" >"$RESULTS/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  while :; do
    status=$(signed_request "$dir" "$dir/first-response" "$endpoint")
    [ "$status" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; log:" >&2; cat "$RESULTS/$name.log" >&2; exit 1; }
    [ $(( $(now_ms) - started )) -lt 30000 ] || { echo "$name: no 200 within 30 s" >&2; exit 1; }
    sleep 0.002
  done
  cold=$(( $(now_ms) - started ))

  # 100 destinations; boto3 then pages through all of them.
  local listed; listed=$(timeout 120 "$PY" "$HELPER" seed "$endpoint")
  [ "$listed" = 100 ] || { echo "$name: boto3 listed $listed destinations, not 100" >&2; exit 1; }

  # What the replayed request really gets.
  status=$(signed_request "$dir" "$RESULTS/$name.response.json" "$endpoint")
  [ "$status" = 200 ] || { echo "$name: replayed request got HTTP $status" >&2; cat "$RESULTS/$name.response.json" >&2; exit 1; }
  local got count token bytes
  got=$("$PY" "$HELPER" check "$RESULTS/$name.response.json")
  read -r count token bytes <<<"$got"

  sleep 1
  local idle; idle=$(rss_mib "$pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" --timeout 5s -s "$dir/request.lua" "$endpoint/" >"$RESULTS/$name.warmup.wrk"
  # CPU accounting over the measured run: the whole machine, the server, and wrk; what is left
  # is other processes (a concurrent cargo build would skew the figures: rerun when quiet).
  local m0 m1 s0 s1 wcpu
  m0=$(machine_ticks); s0=$(proc_ticks "$pid")
  wcpu=$( { TIMEFORMAT='%U %S'; time wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s --latency \
            -s "$dir/request.lua" "$endpoint/" >"$RESULTS/$name.wrk"; } 2>&1 | tail -n 1 )
  m1=$(machine_ticks); s1=$(proc_ticks "$pid")
  local loaded; loaded=$(rss_mib "$pid")
  local cpu_line
  cpu_line=$(awk -v m0="$m0" -v m1="$m1" -v s="$(( s1 - s0 ))" -v w="$wcpu" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" '
    BEGIN { split(m0, a); split(m1, b); split(w, c)
      busy = (b[1] - a[1]) / hz; wall = (b[2] - a[2]) / hz / n; srv = s / hz; wrk = c[1] + c[2]
      other = busy - srv - wrk; if (other < 0) other = 0
      printf "CPU over the run (%% of %d cores): server %.0f%%, wrk %.0f%%, other processes %.0f%%",
        n, 100 * srv / wall / n, 100 * wrk / wall / n, 100 * other / wall / n
      if (other / wall / n > 0.10) printf " -- WARNING: the machine was not quiet; rerun" }')

  local w="$RESULTS/$name.wrk" rps p50 p99 non2xx sockerr total errlines
  rps=$(awk '/^Requests\/sec/ {print $2}' "$w")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$w")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$w")")
  total=$(awk '/requests in/ {print $1}' "$w")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$w"); non2xx=${non2xx:-0}
  sockerr=$(awk -F'Socket errors: ' '/Socket errors/ {print $2}' "$w"); sockerr=${sockerr:-none}
  # Sluice: ERROR lines or panics. moto: tracebacks or access-log lines with a 4xx/5xx status.
  errlines=$(grep -cE ' ERROR |panicked|Traceback|" [45][0-9][0-9] ' "$RESULTS/$name.log" || true)
  ROWS+=("| $name | $version | $rps | $p50 | $p99 | $non2xx | $count | $cold | $idle | $loaded |")
  CHECKS+=("$name: replayed request -> HTTP 200, $count destinations, nextToken: $token, $bytes bytes; wrk: $total requests, non-2xx: $non2xx, socket errors: $sockerr; server log error lines: $errlines"
          "$name: $cpu_line")

  kill "$pid"; wait "$pid" 2>/dev/null || true
  PIDS=()
}

MOTO_REAL=$("$PY" -c 'import moto; print(moto.__version__)')
run sluice "$SLUICE_VERSION" "$SLUICE_PORT" \
  "$WORK/bin/sluice" serve --listen "127.0.0.1:$SLUICE_PORT" --data-dir "$WORK/sluice-data"
run moto "$MOTO_REAL" "$MOTO_PORT" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"

for f in sluice moto; do
  echo "=== raw wrk output: $f ($RESULTS/$f.wrk) ==="
  cat "$RESULTS/$f.wrk"
done
echo
echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, shared by wrk and the server; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency after a $WARMUP warm-up; one signed DescribeDestinations, body {} (first page, default limit 50)"
echo "cold start: spawn to the first HTTP 200 for that signed request (polled with curl every ~2 ms)"
printf '%s\n' "${CHECKS[@]}"
echo
echo "| server | version | req/s | p50 (ms) | p99 (ms) | non-2xx | destinations per response | cold start (ms) | idle RSS (MiB) | RSS after load (MiB) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
