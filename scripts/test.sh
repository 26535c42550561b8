#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (real aws-sdk clients against a real
# server), then the boto3 / AWS CLI compatibility suite against the same binary.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${SLUICE_TEST_VENV:-.venv}"

echo "==> cargo fmt --check, clippy"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings

echo "==> Rust tests"
# The PostgreSQL store's tests run against $SLUICE_TEST_POSTGRES, or a throwaway server
# started here when PostgreSQL is installed; without one they are skipped (and say so).
if [ -z "${SLUICE_TEST_POSTGRES:-}" ]; then
  if SLUICE_TEST_POSTGRES="$(./scripts/test-postgres.sh start)"; then
    export SLUICE_TEST_POSTGRES
    trap './scripts/test-postgres.sh stop' EXIT
    echo "PostgreSQL for the store tests: $SLUICE_TEST_POSTGRES"
  elif [ "${SLUICE_REQUIRE_POSTGRES:-0}" = 1 ]; then
    echo "PostgreSQL is required (SLUICE_REQUIRE_POSTGRES=1) and could not be started" >&2
    exit 1
  else
    unset SLUICE_TEST_POSTGRES
    echo "PostgreSQL is not installed: the PostgreSQL store tests are skipped"
  fi
fi
# One fuzz seed for the whole run, printed here so that any CI log can be replayed with it.
SLUICE_FUZZ_SEED="${SLUICE_FUZZ_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
export SLUICE_FUZZ_SEED
echo "fuzz seed: $SLUICE_FUZZ_SEED (replay: SLUICE_FUZZ_SEED=$SLUICE_FUZZ_SEED ./scripts/test.sh)"
cargo test --quiet

echo "==> Python compatibility suite (boto3, AWS CLI)"
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s tests/compat/requirements.txt "$VENV/.requirements"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/compat/requirements.txt
  cp tests/compat/requirements.txt "$VENV/.requirements"
fi
SLUICE_BIN="$PWD/target/debug/sluice" PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/pytest" -q tests/compat
