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
cargo test --quiet

echo "==> Python compatibility suite (boto3, AWS CLI)"
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s tests/compat/requirements.txt "$VENV/.requirements"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/compat/requirements.txt
  cp tests/compat/requirements.txt "$VENV/.requirements"
fi
SLUICE_BIN="$PWD/target/debug/sluice" PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/pytest" -q tests/compat
