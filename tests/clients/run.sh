#!/usr/bin/env bash
# Real clients against a real server: generates a small dataset, starts the
# `bianzhi` binary on a free port, runs psql, Python (psycopg, asyncpg,
# SQLAlchemy), JDBC and node-postgres checks against it, then stops it with
# SIGTERM and requires a clean exit.
#
# Usage: tests/clients/run.sh [BINARY]   (default: $CARGO_TARGET_DIR/debug/bianzhi)
# Needs: psql, a local PostgreSQL server with pg_trgm (for pg_trgm_check.sh),
# python3 with psycopg/asyncpg/sqlalchemy, java 17 with
# /usr/share/java/postgresql.jar, node 20 with npm (.ci/run installs them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/bianzhi}
JDBC_JAR=${JDBC_JAR:-/usr/share/java/postgresql.jar}
WORK=$(mktemp -d)
SERVER_PID=

cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL $*" >&2
    echo "--- server log (last 40 lines)" >&2
    tail -40 "$WORK/server.log" >&2 || true
    exit 1
}

[[ -x $BIN ]] || { echo "no bianzhi binary at $BIN (cargo build first)" >&2; exit 1; }

echo "== data"
"$BIN" generate --scale 0.02 --seed 7 --data-dir "$WORK/data" >/dev/null

echo "== server"
BIANZHI_LOG=${BIANZHI_LOG:-warn} "$BIN" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 \
    --auth trust --address-file "$WORK/address" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
    [[ -s $WORK/address ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited before listening"
    sleep 0.1
done
[[ -s $WORK/address ]] || fail "server did not listen within 60 s"
ADDRESS=$(cat "$WORK/address")
HOST=${ADDRESS%:*} PORT=${ADDRESS##*:}
echo "listening on $HOST:$PORT"

echo "== psql"
"$ROOT/tests/clients/psql_checks.sh" "$HOST" "$PORT" || fail "psql checks"

echo "== pg_trgm against a live PostgreSQL"
"$ROOT/tests/clients/pg_trgm_check.sh" "$HOST" "$PORT" || fail "pg_trgm check"

echo "== python"
python3 "$ROOT/tests/clients/python_clients.py" "$HOST" "$PORT" || fail "python checks"

echo "== jdbc"
java -cp "$JDBC_JAR" "$ROOT/tests/clients/JdbcCheck.java" "$HOST" "$PORT" || fail "jdbc checks"

echo "== node"
if [[ ! -d $ROOT/tests/clients/node_modules/pg ]]; then
    npm install --prefix "$ROOT/tests/clients" --no-audit --no-fund --silent
fi
node "$ROOT/tests/clients/node_check.js" "$HOST" "$PORT" || fail "node checks"

echo "== shutdown"
kill -TERM "$SERVER_PID"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=
[[ $status -eq 0 ]] || fail "server exited with status $status after SIGTERM"
echo "server stopped cleanly"
echo "== all client checks passed"
