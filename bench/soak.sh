#!/usr/bin/env bash
# Soak: 10 minutes of mixed load from 4 boto3 client processes against a release build, with
# the server's RSS and the completed calls sampled every 10 s (bench/soak.py does the load).
#
#   bash bench/soak.sh                      # from the repo root
#
# Env: SECONDS_TOTAL (600), CLIENTS (4), INTERVAL (10), SLUICE_PORT (4620).
# Traffic goes to 127.0.0.1 only; the load stops by itself. Server log and output are kept in
# /tmp/sluice-bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TOTAL="${SECONDS_TOTAL:-600}"
CLIENTS="${CLIENTS:-4}"
INTERVAL="${INTERVAL:-10}"
SLUICE_PORT="${SLUICE_PORT:-4620}"
VENV=/tmp/sluice-bench-venv
PY="$VENV/bin/python"

if ! "$PY" -c "import boto3" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/compat/requirements.txt
fi
cargo build --release --quiet
RESULTS="/tmp/sluice-bench-results/soak-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/sluice-soak.XXXXXX)
cp "${CARGO_TARGET_DIR:-target}/release/sluice" "$WORK/sluice"
"$WORK/sluice" serve --listen "127.0.0.1:$SLUICE_PORT" --data-dir "$WORK/data" >"$RESULTS/sluice.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$SLUICE_PORT/_sluice/health" >/dev/null && break
  sleep 0.1
done

echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
"$PY" bench/soak.py "http://127.0.0.1:$SLUICE_PORT" "$PID" --seconds "$SECONDS_TOTAL" \
  --clients "$CLIENTS" --interval "$INTERVAL" | tee "$RESULTS/soak.txt"
echo "data directory after the run: $(du -sh "$WORK/data" | cut -f1)"
echo "server log error lines: $(grep -cE ' ERROR |panicked' "$RESULTS/sluice.log" || true)"
