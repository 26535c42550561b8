#!/usr/bin/env bash
# S3 throughput: PutObject and GetObject MiB/s for 1 MiB and 64 MiB objects through boto3,
# against Sluice (release build) and moto's server in the same run, beside the ceiling: the
# same bytes written as plain files (write + fsync) and read back on the same disk. Then a
# 1 GiB boto3 upload_file (multipart) and download_file against Sluice, with Sluice's peak RSS.
#
#   bash bench/s3.sh          # from the repo root
#
# Env: SMALL_COUNT (64 objects of 1 MiB), LARGE_COUNT (4 objects of 64 MiB),
#      MULTIPART_MIB (1024), SLUICE_PORT (4630), MOTO_PORT (4631).
# Traffic goes to 127.0.0.1 only; every step is bounded by `timeout`. Needs about
# 3 x MULTIPART_MIB of free disk under /tmp. Server logs are kept in /tmp/sluice-bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL_COUNT="${SMALL_COUNT:-64}"
LARGE_COUNT="${LARGE_COUNT:-4}"
MULTIPART_MIB="${MULTIPART_MIB:-1024}"
SLUICE_PORT="${SLUICE_PORT:-4630}"
MOTO_PORT="${MOTO_PORT:-4631}"
MOTO_VERSION=5.2.5
BOTO_VERSION=1.44.5
VENV=/tmp/sluice-bench-venv
PY="$VENV/bin/python"
HELPER=bench/s3.py

# --- 1. tools -------------------------------------------------------------------------------
if ! "$PY" -c "import moto, boto3, botocore, werkzeug, flask;
assert moto.__version__ == '$MOTO_VERSION' and boto3.__version__ == '$BOTO_VERSION'" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION" "boto3==$BOTO_VERSION" "botocore==$BOTO_VERSION"
fi

# --- 2. build -------------------------------------------------------------------------------
cargo build --release --quiet
RESULTS="/tmp/sluice-bench-results/s3-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/sluice-bench-s3.XXXXXX)
# A private copy, so a concurrent `cargo build` cannot swap the binary mid-run.
mkdir "$WORK/bin" && cp "${CARGO_TARGET_DIR:-target}/release/sluice" "$WORK/bin/sluice"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null)" ]; then
  commit="$commit+dirty"
fi
SLUICE_VERSION="$("$WORK/bin/sluice" --version | awk '{print $2}') ($commit)"

PIDS=()
SAMPLER=""
cleanup() {
  local pid
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

machine_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cpu_share M0 M1 SERVER_TICKS CLIENT_SECONDS: the line that says who used the CPU.
cpu_share() {
  awk -v m0="$1" -v m1="$2" -v s="$3" -v c="$4" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" '
    BEGIN { split(m0, a); split(m1, b)
      busy = (b[1] - a[1]) / hz; wall = (b[2] - a[2]) / hz / n; srv = s / hz
      other = busy - srv - c; if (other < 0) other = 0
      printf "CPU (%% of %d cores): server %.0f%%, boto3 client %.0f%%, other processes %.0f%%",
        n, 100 * srv / wall / n, 100 * c / wall / n, 100 * other / wall / n
      if (other / wall / n > 0.10) printf " -- WARNING: the machine was not quiet; rerun" }'
}

# timed_helper OUTFILE ARGS...: runs the helper, its answer in OUTFILE, prints its CPU seconds.
timed_helper() {
  local out=$1; shift
  { TIMEFORMAT='%U %S'; time timeout 900 "$PY" "$HELPER" "$@" >"$out"; } 2>&1 | tail -n 1 |
    awk '{print $1 + $2}'
}

SRC="$WORK/src.bin"
head -c "$((MULTIPART_MIB * 1048576))" /dev/urandom >"$SRC"
[ "$MULTIPART_MIB" -ge 64 ] || { echo "MULTIPART_MIB must be at least 64 (the large objects come from it)" >&2; exit 1; }

ROWS=()
CHECKS=()
# putget NAME: both sizes against the server at $ENDPOINT (pid $PID); appends table rows.
putget() {
  local name=$1 version=$2 m0 m1 s0 s1 c1 c2 small large
  m0=$(machine_ticks); s0=$(proc_ticks "$PID")
  c1=$(timed_helper "$WORK/small" putget "$ENDPOINT" 1 "$SMALL_COUNT" "$SRC")
  c2=$(timed_helper "$WORK/large" putget "$ENDPOINT" 64 "$LARGE_COUNT" "$SRC")
  m1=$(machine_ticks); s1=$(proc_ticks "$PID")
  read -r sp sg <"$WORK/small"; read -r lp lg <"$WORK/large"
  ROWS+=("| $name | $version | $sp | $sg | $lp | $lg |")
  CHECKS+=("$name: every ETag and every download's MD5 checked, listing counted; $(cpu_share "$m0" "$m1" "$(( s1 - s0 ))" "$(awk -v a="$c1" -v b="$c2" 'BEGIN {print a + b}')")")
}

# start NAME PORT HEALTH_PATH COMMAND...: starts a server, waits until it answers.
start() {
  local name=$1 port=$2 health=$3; shift 3
  port_free "$port" || { echo "port $port is already in use" >&2; exit 1; }
  "$@" >"$RESULTS/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 300); do
    curl -s -o /dev/null --max-time 2 "$ENDPOINT$health" && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start; log:" >&2; cat "$RESULTS/$name.log" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PIDS=(); }

# --- 3. the ceiling: plain files on the same disk -------------------------------------------
m0=$(machine_ticks)
c1=$(timed_helper "$WORK/small" ceiling "$WORK/ceiling" 1 "$SMALL_COUNT" "$SRC")
c2=$(timed_helper "$WORK/large" ceiling "$WORK/ceiling" 64 "$LARGE_COUNT" "$SRC")
m1=$(machine_ticks)
read -r sp sg <"$WORK/small"; read -r lp lg <"$WORK/large"
ROWS+=("| plain files (write + fsync, read back) | python $("$PY" -c 'import platform; print(platform.python_version())') | $sp | $sg | $lp | $lg |")
CHECKS+=("plain files: every read-back MD5 checked; $(cpu_share "$m0" "$m1" 0 "$(awk -v a="$c1" -v b="$c2" 'BEGIN {print a + b}')") (the client here is the writer itself)")

# --- 4. Sluice: put/get, then the multipart upload and download with RSS sampled -------------
start sluice "$SLUICE_PORT" /_sluice/health \
  "$WORK/bin/sluice" serve --listen "127.0.0.1:$SLUICE_PORT" --data-dir "$WORK/sluice-data"
putget sluice "$SLUICE_VERSION"
idle=$(rss_kib "$PID"); putget_hwm=$(hwm_kib "$PID")
# Reset the peak-RSS mark (VmHWM) so the multipart figure is that phase's own; also sample
# VmRSS every 20 ms in case the kernel refuses the reset.
echo 5 >"/proc/$PID/clear_refs" 2>/dev/null || true
( peak=0; while kill -0 "$PID" 2>/dev/null; do
    r=$(rss_kib "$PID" 2>/dev/null || echo 0); [ "${r:-0}" -gt "$peak" ] && { peak=$r; echo "$peak" >"$WORK/peak"; }
    sleep 0.02
  done ) &
SAMPLER=$!
m0=$(machine_ticks); s0=$(proc_ticks "$PID")
c=$(timed_helper "$WORK/multipart" multipart "$ENDPOINT" "$SRC" "$WORK/download.bin")
m1=$(machine_ticks); s1=$(proc_ticks "$PID")
kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
mp_hwm=$(hwm_kib "$PID"); sampled=$(cat "$WORK/peak" 2>/dev/null || echo 0)
read -r up down parts <"$WORK/multipart"
MULTIPART="| sluice | $SLUICE_VERSION | $MULTIPART_MIB MiB, $parts parts | $up | $down | $(mib "$mp_hwm") | $(mib "$sampled") | $(mib "$idle") |"
CHECKS+=("sluice multipart: size, part count in the ETag and the download's SHA-256 checked; $(cpu_share "$m0" "$m1" "$(( s1 - s0 ))" "$c")"
         "sluice: peak RSS over the put/get phase $(mib "$putget_hwm") MiB")
errlines=$(grep -cE ' ERROR |panicked' "$RESULTS/sluice.log" || true)
CHECKS+=("sluice: server log error lines: $errlines")
stop

# --- 5. moto ---------------------------------------------------------------------------------
MOTO_REAL=$("$PY" -c 'import moto; print(moto.__version__)')
start moto "$MOTO_PORT" /moto-api/ "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
putget moto "moto $MOTO_REAL (objects in memory)"
errlines=$(grep -cE 'Traceback|" 5[0-9][0-9] ' "$RESULTS/moto.log" || true)
CHECKS+=("moto: server log error lines: $errlines")
stop

echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, disk: $(df -P "$WORK" | awk 'NR == 2 {print $1}'); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load: one boto3 client, sequential calls; $SMALL_COUNT objects of 1 MiB, $LARGE_COUNT of 64 MiB (random bytes); put all, then get all"
printf '%s\n' "${CHECKS[@]}"
echo
echo "| target | version | PutObject 1 MiB (MiB/s) | GetObject 1 MiB (MiB/s) | PutObject 64 MiB (MiB/s) | GetObject 64 MiB (MiB/s) |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "| server | version | object | upload_file (MiB/s) | download_file (MiB/s) | peak RSS, VmHWM (MiB) | peak RSS, sampled every 20 ms (MiB) | RSS before (MiB) |"
echo "|---|---|---|---|---|---|---|---|"
echo "$MULTIPART"
