#!/usr/bin/env bash
# The read path against its ceiling: five read operations, each replayed by wrk as ONE request
# that boto3 signed and sent, against Sluice and against a bare axum server (bench/bare) that
# answers with the very bytes Sluice answered, in the same run. Also: cold start (spawn to the
# first answered signed request, fresh data directory), idle RSS, RSS after the load.
#
#   bash bench/read_path.sh                        # from the repo root
#   SLUICE_BIN=/path/to/sluice bash bench/read_path.sh   # measure a given release binary
#
# Stored before the load, in one account and Region: 100 Logs destinations (each with its
# Kinesis stream), 100 log groups, 100 events in one log stream, one AppFabric ingestion with
# its 5 destinations (the quota), one CloudTrail channel. The five requests:
#   DescribeDestinations {}                      first page: 50 of 100, and a nextToken
#   DescribeLogGroups {}                         first page: 50 of 100, and a nextToken
#   GetLogEvents startFromHead, limit 50         50 of the 100 events
#   ListIngestionDestinations                    all 5
#   GetChannel                                   the channel
#
# Env: DURATION (default 10s), WARMUP (2s), THREADS (1), CONNECTIONS (16), COLD_RUNS (10),
#      SLUICE_PORT (4610), BARE_PORT (4611), SLUICE_BIN (default: build and use the release
#      binary), OPERATIONS (default: all five, space-separated), PERF (set: a `perf record`
#      profile of Sluice under each operation's load, in the results directory; the figures
#      of that run are then not comparable), PERF_CALL_GRAPH (fp; `dwarf` unwinds through
#      code built without frame pointers, such as libc's memcmp).
# Traffic goes to 127.0.0.1 only. Raw wrk outputs and logs are kept in
# /tmp/sluice-bench-results/<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
THREADS="${THREADS:-1}"
CONNECTIONS="${CONNECTIONS:-16}"
COLD_RUNS="${COLD_RUNS:-10}"
SLUICE_PORT="${SLUICE_PORT:-4610}"
BARE_PORT="${BARE_PORT:-4611}"
OPERATIONS="${OPERATIONS:-DescribeDestinations GetLogEvents DescribeLogGroups ListIngestionDestinations GetChannel}"
HELPER=bench/read_path.py
. bench/lib.sh
bench_setup ""
SLUICE_VERSION="$("$WORK/bin/sluice" --version | awk '{print $2}') ($COMMIT)"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

machine_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0;
    else if (v ~ /s$/) printf "%.2f", v * 1000; else print "?" }'
}
# The replayed request, once, through curl: prints the HTTP status; body to $2, head to $2.head.
replay() {
  local dir=$1 out=$2 endpoint=$3 method
  method=$(cat "$dir/method")
  local data=()
  [ -s "$dir/body" ] && data=(--data-binary @"$dir/body")
  curl -s --max-time 10 -X "$method" -o "$out" -D "$out.head" -w '%{http_code}' \
       -H @"$dir/headers" "${data[@]}" "$endpoint$(cat "$dir/path")" 2>/dev/null || true
}
# load NAME ENDPOINT REQUEST_DIR: warm-up, then the measured wrk run; prints req/s p50 p99 non2xx
load() {
  local name=$1 endpoint=$2 dir=$3 w="$RESULTS/$1.wrk"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" --timeout 5s -s "$dir/request.lua" "$endpoint/" >"$RESULTS/$name.warmup.wrk"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s --latency -s "$dir/request.lua" "$endpoint/" >"$w"
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' "$w")
  echo "$(awk '/^Requests\/sec/ {print $2}' "$w") $(to_ms "$(awk '$1 == "50%" {print $2}' "$w")") $(to_ms "$(awk '$1 == "99%" {print $2}' "$w")") ${non2xx:-0}"
}

for port in "$SLUICE_PORT" "$BARE_PORT"; do
  port_free "$port" || { echo "port $port is already in use" >&2; exit 1; }
done
SLUICE="http://127.0.0.1:$SLUICE_PORT"
BARE="http://127.0.0.1:$BARE_PORT"

# --- 3. cold start: spawn to the first 200 for a signed DescribeDestinations ------------------
timeout 60 "$PY" "$HELPER" cold "$SLUICE" "$WORK"
timeout 300 "$PY" "$HELPER" coldstart "$WORK/bin/sluice" "$SLUICE_PORT" "$WORK/cold" "$COLD_RUNS" "$WORK" >"$RESULTS/coldstart"
# cold_stats WAY: min median max of that way's runs, and the median run's RSS
cold_stats() {
  awk -v way="$1" '$1 == way {print $2, $3}' "$RESULTS/coldstart" | sort -n | awk '
    { ms[NR] = $1; rss[NR] = $2 } END { printf "%s %s %s %s", ms[1], ms[int((NR + 1) / 2)], ms[NR], rss[int((NR + 1) / 2)] }'
}
read -r COLD_MIN COLD_MEDIAN COLD_MAX FRESH_RSS <<<"$(cold_stats line)"
read -r POLL_MIN POLL_MEDIAN POLL_MAX _ <<<"$(cold_stats poll)"

# --- 4. one server, seeded through boto3 --------------------------------------------------------
"$WORK/bin/sluice" serve --listen "127.0.0.1:$SLUICE_PORT" --data-dir "$WORK/sluice-data" >"$RESULTS/sluice.log" 2>&1 &
SLUICE_PID=$!
PIDS+=("$SLUICE_PID")
wait_for_port "$SLUICE_PORT" "$SLUICE_PID"
timeout 300 "$PY" "$HELPER" seed "$SLUICE" "$WORK/requests" >/dev/null
sleep 1
IDLE_RSS=$(rss_mib "$SLUICE_PID")

# --- 5. each operation: Sluice, then the bare server with Sluice's bytes ------------------------
ROWS=()
CHECKS=()
for op in $OPERATIONS; do
  dir="$WORK/requests/$op"
  status=$(replay "$dir" "$RESULTS/$op.response" "$SLUICE")
  [ "$status" = 200 ] || { echo "$op: replayed request got HTTP $status" >&2; cat "$RESULTS/$op.response" >&2; exit 1; }
  read -r items token bytes <<<"$("$PY" "$HELPER" check "$op" "$RESULTS/$op.response")"
  content_type=$(awk -F': ' 'tolower($1) == "content-type" {print $2}' "$RESULTS/$op.response.head" | tr -d '\r')
  "$WORK/bin/bare" "127.0.0.1:$BARE_PORT" "$RESULTS/$op.response" "$content_type" >"$RESULTS/bare.$op.log" 2>&1 &
  bare_pid=$!
  PIDS+=("$bare_pid")
  wait_for_port "$BARE_PORT" "$bare_pid"
  [ "$(replay "$dir" "$RESULTS/$op.bare-response" "$BARE")" = 200 ] && cmp -s "$RESULTS/$op.response" "$RESULTS/$op.bare-response" \
    || { echo "$op: the bare server does not answer Sluice's bytes" >&2; exit 1; }

  m0=$(machine_ticks)
  perf_pid=
  if [ -n "${PERF:-}" ]; then
    # The profile covers the warm-up and the measured run against Sluice.
    perf record -F 999 --call-graph "${PERF_CALL_GRAPH:-fp}" -o "$RESULTS/$op.perf.data" -p "$SLUICE_PID" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  read -r s_rps s_p50 s_p99 s_non2xx <<<"$(load "sluice.$op" "$SLUICE" "$dir")"
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    perf report -i "$RESULTS/$op.perf.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | grep '%' | head -60 >"$RESULTS/$op.perf.txt" || true
  fi
  read -r b_rps b_p50 b_p99 b_non2xx <<<"$(load "bare.$op" "$BARE" "$dir")"
  m1=$(machine_ticks)
  kill "$bare_pid"; wait "$bare_pid" 2>/dev/null || true
  ratio=$(awk -v s="$s_rps" -v b="$b_rps" 'BEGIN { printf "%.1f", 100 * s / b }')
  ROWS+=("| $op | $items | $bytes | $s_rps | $s_p50 | $s_p99 | $b_rps | $b_p50 | $b_p99 | **$ratio %** |")
  CHECKS+=("$op: HTTP 200, $items items, next token: $token, $bytes bytes ($content_type); non-2xx under load: sluice $s_non2xx, bare $b_non2xx; machine busy $(awk -v a="$m0" -v b="$m1" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f%%", 100 * (y[1] - x[1]) / (y[2] - x[2]) }') of $(nproc) cores")
done
LOADED_RSS=$(rss_mib "$SLUICE_PID")
ERRLINES=$(grep -cE ' ERROR |panicked' "$RESULTS/sluice.log" || true)

echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, shared by wrk and the servers; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "sluice $SLUICE_VERSION; load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency after a $WARMUP warm-up, Sluice then the bare server, per operation"
printf '%s\n' "${CHECKS[@]}"
echo "sluice log: $ERRLINES ERROR or panic lines; raw outputs in $RESULTS"
echo
echo "| operation | items | bytes | Sluice req/s | p50 (ms) | p99 (ms) | bare axum req/s | p50 (ms) | p99 (ms) | Sluice / bare |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "cold start, spawn to the first 200 for a signed DescribeDestinations, fresh data directory, $COLD_RUNS runs each:"
echo "  sent after the listening line: median $COLD_MEDIAN ms (min $COLD_MIN, max $COLD_MAX); RSS then $FRESH_RSS MiB"
echo "  sent every 0.2 ms from the spawn (the poller takes most of a core): median $POLL_MEDIAN ms (min $POLL_MIN, max $POLL_MAX)"
echo "RSS: idle after seeding $IDLE_RSS MiB; after the load $LOADED_RSS MiB"
