# Shared by the wrk benchmarks (source it from the repo root): tools, binaries, the commit.
#
# bench_setup sets RESULTS (a fresh results directory under /tmp/sluice-bench-results/ named
# after $1 and the time), WORK (a scratch directory with bin/sluice and bin/bare: private
# copies, so a concurrent `cargo build` cannot swap a binary mid-run) and COMMIT (the short
# commit, "+dirty" when tracked files outside bench/ differ from it, so the figures are not
# its). It installs wrk and a boto3 venv ($PY) when missing, and builds the release binary
# unless SLUICE_BIN names one.

BOTO_VERSION=1.44.5
VENV=/tmp/sluice-bench-venv
PY="$VENV/bin/python"

bench_setup() {
  if ! command -v wrk >/dev/null; then
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
  fi
  if ! "$PY" -c "import boto3; assert boto3.__version__ == '$BOTO_VERSION'" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "boto3==$BOTO_VERSION" "botocore==$BOTO_VERSION"
  fi
  RESULTS="/tmp/sluice-bench-results/$1$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$RESULTS"
  WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX)
  mkdir "$WORK/bin"
  if [ -z "${SLUICE_BIN:-}" ]; then
    cargo build --release --quiet --bin sluice
    SLUICE_BIN="${CARGO_TARGET_DIR:-target}/release/sluice"
  fi
  cp "$SLUICE_BIN" "$WORK/bin/sluice"
  local bare_target="${BARE_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/bench-bare}"
  (cd bench/bare && CARGO_TARGET_DIR="$bare_target" cargo build --release --quiet)
  cp "$bare_target/release/sluice-bench-bare" "$WORK/bin/bare"
  COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git status --porcelain --untracked-files=no -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null)" ]; then
    COMMIT="$COMMIT+dirty"
  fi
}

# Milliseconds since the epoch.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Whether nothing listens on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Waits up to 30 s for process $2 to listen on port $1; exits the script if it dies first.
wait_for_port() {
  local port=$1 pid=$2 started; started=$(now_ms)
  until ! port_free "$port"; do
    kill -0 "$pid" 2>/dev/null || { echo "process $pid exited" >&2; exit 1; }
    [ $(( $(now_ms) - started )) -lt 30000 ] || { echo "port $port: nothing after 30 s" >&2; exit 1; }
    sleep 0.01
  done
}
