#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, on 127.0.0.1:$SLUICE_PG_PORT (54329) with
# trust authentication, its files under $SLUICE_PG_DIR (/tmp/sluice-test-pg).
#   scripts/test-postgres.sh start   starts it (if needed) and prints its URL
#   scripts/test-postgres.sh stop    stops it
# Exits 1 without PostgreSQL's server binaries (Debian: apt-get install postgresql).
set -euo pipefail

DIR="${SLUICE_PG_DIR:-/tmp/sluice-test-pg}"
PORT="${SLUICE_PG_PORT:-54329}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -n "$BIN" ] && [ -x "$BIN/initdb" ] || { echo "PostgreSQL server binaries not found" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      rm -rf "$DIR"
      mkdir -p "$DIR"
      if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; fi
      as_owner "$BIN/initdb" -D "$DIR/data" --auth=trust -U postgres >"$DIR/initdb.log" 2>&1
    fi
    if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    fi
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
