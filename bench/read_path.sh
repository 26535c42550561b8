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
# Env: DURATION (of each measured run; default 2s), ROUNDS (5: Sluice and the bare server take
#      turns, and req/s, the medians of p50 and p99, and the ratio are over all rounds), WARMUP (2s), THREADS (1), CONNECTIONS (16), COLD_RUNS (10),
#      SLUICE_PORT (4610), BARE_PORT (4611), SLUICE_BIN (default: build and use the release
#      binary), OPERATIONS (default: all five, space-separated), PERF (set: a `perf record`
#      profile of Sluice during each operation's warm-up, in the results directory; set
#      WARMUP longer for more samples), PERF_CALL_GRAPH (fp; `dwarf` unwinds through
#      code built without frame pointers, such as libc's memcmp).
# Traffic goes to 127.0.0.1 only. Raw wrk outputs and logs are kept in
# /tmp/sluice-bench-results/<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-2s}"
ROUNDS="${ROUNDS:-5}"
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
# warm NAME ENDPOINT REQUEST_DIR: the warm-up load
warm() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" --timeout 5s -s "$3/request.lua" "$2/" >"$RESULTS/$1.warmup.wrk"
}
# slice NAME ENDPOINT REQUEST_DIR ROUND: one measured wrk run; prints req/s p50 p99 non2xx
slice() {
  local w="$RESULTS/$1.$4.wrk"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 5s --latency -s "$3/request.lua" "$2/" >"$w"
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' "$w")
  echo "$(awk '/^Requests\/sec/ {print $2}' "$w") $(to_ms "$(awk '$1 == "50%" {print $2}' "$w")") $(to_ms "$(awk '$1 == "99%" {print $2}' "$w")") ${non2xx:-0}"
}
# summary FILE: the rounds' mean req/s, median p50, median p99, summed non-2xx
summary() {
  median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  echo "$(awk '{ s += $1 } END { printf "%.0f", s / NR }' "$1")" \
    "$(awk '{ print $2 }' "$1" | median)" "$(awk '{ print $3 }' "$1" | median)" \
    "$(awk '{ s += $4 } END { print s + 0 }' "$1")"
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
    perf record -F 999 --call-graph "${PERF_CALL_GRAPH:-fp}" -o "$RESULTS/$op.perf.data" -p "$SLUICE_PID" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  warm "sluice.$op" "$SLUICE" "$dir"
  if [ -n "$perf_pid" ]; then
    # The profile covers the warm-up against Sluice, which is as long as WARMUP says.
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    perf report -i "$RESULTS/$op.perf.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | grep '%' | head -60 >"$RESULTS/$op.perf.txt" || true
  fi
  warm "bare.$op" "$BARE" "$dir"
  # Sluice and the bare server take turns, so that a burst of load from the machine's
  # neighbours falls on both alike; each round's ratio is kept.
  : >"$RESULTS/sluice.$op.rounds"; : >"$RESULTS/bare.$op.rounds"; round_ratios=()
  for round in $(seq "$ROUNDS"); do
    s=$(slice "sluice.$op" "$SLUICE" "$dir" "$round"); echo "$s" >>"$RESULTS/sluice.$op.rounds"
    b=$(slice "bare.$op" "$BARE" "$dir" "$round"); echo "$b" >>"$RESULTS/bare.$op.rounds"
    round_ratios+=("$(awk -v s="${s%% *}" -v b="${b%% *}" 'BEGIN { printf "%.0f", 100 * s / b }')")
  done
  read -r s_rps s_p50 s_p99 s_non2xx <<<"$(summary "$RESULTS/sluice.$op.rounds")"
  read -r b_rps b_p50 b_p99 b_non2xx <<<"$(summary "$RESULTS/bare.$op.rounds")"
  m1=$(machine_ticks)
  kill "$bare_pid"; wait "$bare_pid" 2>/dev/null || true
  ratio=$(awk -v s="$s_rps" -v b="$b_rps" 'BEGIN { printf "%.1f", 100 * s / b }')
  ROWS+=("| $op | $items | $bytes | $s_rps | $s_p50 | $s_p99 | $b_rps | $b_p50 | $b_p99 | **$ratio %** | $(IFS=' '; echo "${round_ratios[*]}") |")
  CHECKS+=("$op: HTTP 200, $items items, next token: $token, $bytes bytes ($content_type); non-2xx under load: sluice $s_non2xx, bare $b_non2xx; machine busy $(awk -v a="$m0" -v b="$m1" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f%%", 100 * (y[1] - x[1]) / (y[2] - x[2]) }') of $(nproc) cores")
done
LOADED_RSS=$(rss_mib "$SLUICE_PID")
ERRLINES=$(grep -cE ' ERROR |panicked' "$RESULTS/sluice.log" || true)

echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, shared by wrk and the servers; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "sluice $SLUICE_VERSION; load: per operation, a $WARMUP warm-up of each, then $ROUNDS rounds of wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency against Sluice then the bare server"
printf '%s\n' "${CHECKS[@]}"
echo "sluice log: $ERRLINES ERROR or panic lines; raw outputs in $RESULTS"
echo
echo "| operation | items | bytes | Sluice req/s | p50 (ms) | p99 (ms) | bare axum req/s | p50 (ms) | p99 (ms) | Sluice / bare | each round (%) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "cold start, spawn to the first 200 for a signed DescribeDestinations, fresh data directory, $COLD_RUNS runs each:"
echo "  sent after the listening line: median $COLD_MEDIAN ms (min $COLD_MIN, max $COLD_MAX); RSS then $FRESH_RSS MiB"
echo "  sent every 0.2 ms from the spawn (the poller takes most of a core): median $POLL_MEDIAN ms (min $POLL_MIN, max $POLL_MAX)"
echo "RSS: idle after seeding $IDLE_RSS MiB; after the load $LOADED_RSS MiB"
