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
