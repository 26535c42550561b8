#!/usr/bin/env bash
# CloudTrail Lake: query latency and ingestion rate on 1,000,000 events, in one run.
#
#   bash bench/lake.sh          # from the repo root
#
# 1. PutAuditEvents end to end: EVENTS events through one channel by CLIENTS boto3 processes,
#    100 events per call, into a release build with a data directory (SQLite, fsync per
#    batch); then the same load (CEILING_EVENTS events) into a server with
#    `--data-dir :memory:`: the same HTTP, validation and encoding without the disk.
# 2. Once the compactor has written its segments (the whole store columnar): StartQuery-to-FINISHED (best of 3, polling
#    DescribeQuery every 1 ms) for a GROUP BY over all events (which Sluice answers from its
#    segments' value counts), the same GROUP BY with a WHERE the counts cannot answer, and a
#    selective one-hour time range, beside DuckDB over the same events in one Parquet file
#    (best of 3, in process).
# 3. ListChannels round trips idle and while three heavy GROUP BYs run: the ceiling of a
#    request beside a query is the same request with none.
#
# Env: EVENTS (1000000), CLIENTS (4), CEILING_EVENTS (200000), SLUICE_PORT (4640),
#      CEILING_PORT (4641), SLUICE_BIN (a release binary to use instead of building one). Traffic goes to 127.0.0.1 only. Results and server logs are kept in
#      /tmp/sluice-bench-results/lake-*.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-1000000}"
CLIENTS="${CLIENTS:-4}"
CEILING_EVENTS="${CEILING_EVENTS:-200000}"
SLUICE_PORT="${SLUICE_PORT:-4640}"
CEILING_PORT="${CEILING_PORT:-4641}"
BOTO_VERSION=1.44.5
DUCKDB_VERSION=2.0.1
VENV=/tmp/sluice-bench-lake-venv
PY="$VENV/bin/python"
HELPER=bench/lake.py

if ! "$PY" -c "import boto3, duckdb; assert boto3.__version__ == '$BOTO_VERSION' and duckdb.__version__ == '$DUCKDB_VERSION'" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "boto3==$BOTO_VERSION" "botocore==$BOTO_VERSION" "duckdb==$DUCKDB_VERSION"
fi

if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release --quiet
  SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
fi
RESULTS="/tmp/sluice-bench-results/lake-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/sluice-bench-lake.XXXXXX)
mkdir "$WORK/bin" && cp "$SLUICE_BIN" "$WORK/bin/sluice"
export LAKE_BENCH_NOW="$(date +%s)"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

start() { # port data-dir log
  SLUICE_LOG=warn "$WORK/bin/sluice" serve --listen "127.0.0.1:$1" --data-dir "$2" >"$3" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$1/_sluice/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2; exit 1
}

ACCOUNT=111122223333
echo "== PutAuditEvents into a data directory ($EVENTS events, $CLIENTS clients)"
start "$SLUICE_PORT" "$WORK/data" "$RESULTS/sluice.log"
timeout 3600 "$PY" "$HELPER" ingest "http://127.0.0.1:$SLUICE_PORT" "$ACCOUNT" "$EVENTS" "$CLIENTS" \
  | tee "$RESULTS/ingest.json"
echo "Sluice RSS after the puts: $(awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {printf "%d MB (peak %d MB)", r/1024, h/1024}' "/proc/${PIDS[0]}/status")"
STORE=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['store'])" "$RESULTS/ingest.json")

echo "== PutAuditEvents into :memory: ($CEILING_EVENTS events, $CLIENTS clients)"
start "$CEILING_PORT" ":memory:" "$RESULTS/ceiling.log"
timeout 3600 "$PY" "$HELPER" ingest "http://127.0.0.1:$CEILING_PORT" "$ACCOUNT" "$CEILING_EVENTS" "$CLIENTS" \
  | tee "$RESULTS/ceiling.json"

# The compactor leaves a tail of fewer than 20,000 events as rows until its oldest has waited
# 60 s: wait until no new segment has come for 70 s, so the queries read segments only.
echo "== waiting for the compactor (no new segment for 70 s)"
last=-1; stable=0
for _ in $(seq 1 600); do
  n=$(find "$WORK/data/lake" -name '*.parquet' 2>/dev/null | wc -l)
  if [ "$n" = "$last" ]; then stable=$((stable + 1)); else stable=0; last=$n; fi
  [ "$stable" -ge 70 ] && break
  sleep 1
done
echo "segments: $last ($(du -sh "$WORK/data/lake" | cut -f1)); sluice.db: $(du -sh "$WORK/data/sluice.db" | cut -f1)"

echo "== queries: Sluice"
timeout 600 "$PY" "$HELPER" query "http://127.0.0.1:$SLUICE_PORT" "$ACCOUNT" "$STORE" | tee "$RESULTS/sluice-queries.json"
echo "== ListChannels beside heavy queries (a request must not wait for a query's CPU work)"
timeout 600 "$PY" "$HELPER" busy "http://127.0.0.1:$SLUICE_PORT" "$ACCOUNT" "$STORE" | tee "$RESULTS/busy.json"
echo "== queries: DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)') over one Parquet file"
timeout 600 "$PY" "$HELPER" duckdb "$EVENTS" "$WORK/events.parquet" | tee "$RESULTS/duckdb-queries.json"
echo "== queries: DuckDB over Sluice's segment files (the layout apart from the engine)"
timeout 600 "$PY" "$HELPER" duckdb-segments "$WORK/data/lake" | tee "$RESULTS/duckdb-segments.json"
echo "Sluice RSS after the queries: $(awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {printf "%d MB (peak %d MB)", r/1024, h/1024}' "/proc/${PIDS[0]}/status")"
echo "results in $RESULTS"
