#!/usr/bin/env bash
# AppFabric delivery throughput: events/s from Okta System Log pages (a local stand-in) to OCSF
# Parquet objects in Sluice's S3, beside the in-memory ceiling of the same work (parse, map to
# OCSF, encode Parquet), in one run of a release build.
#
#   bash bench/appfabric.sh                       # from the repo root
#   APPFABRIC_BENCH_EVENTS=200000 bash bench/appfabric.sh
#
# Traffic stays on 127.0.0.1; the data directory is a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
timeout 1800 cargo bench --quiet --bench appfabric
