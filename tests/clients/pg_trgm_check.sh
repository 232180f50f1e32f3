#!/usr/bin/env bash
# bianzhi's pg_trgm-compatible functions against a live PostgreSQL with
# pg_trgm: tests/pg_trgm_reference.sql is run by psql on both servers and the
# outputs must be identical, row for row.
# Usage: pg_trgm_check.sh HOST PORT   (bianzhi's address; PostgreSQL is
# reached with `su postgres -c psql` when run as root, else with PG* variables).
set -euo pipefail
HOST=$1 PORT=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod a+rx "$WORK"

# show_trgm returns text[]; both sides print it joined, so array syntax does
# not differ. bianzhi has no `%` operator: trgm_match(a, b) stands in.
sed -e 's/show_trgm(t)::text/array_to_string(show_trgm(t), \x27,\x27)/' \
    "$ROOT/tests/pg_trgm_reference.sql" >"$WORK/postgres.sql"
sed -e '/^CREATE EXTENSION/d' -e 's/(a % b)::text/trgm_match(a, b)::text/' \
    "$WORK/postgres.sql" >"$WORK/bianzhi.sql"
chmod a+r "$WORK"/*.sql

if [[ $(id -u) -eq 0 ]]; then
    su postgres -c "psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -f $WORK/postgres.sql" >"$WORK/postgres.out"
else
    psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -f "$WORK/postgres.sql" >"$WORK/postgres.out"
fi
psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U analyst -d bianzhi \
    -f "$WORK/bianzhi.sql" >"$WORK/bianzhi.out"

# DataFusion casts a whole float to text as `1.0` where PostgreSQL writes `1`
# (a known gap of CAST(… AS text), docs/server.md); the values are compared.
sed -E -i 's/\|(-?[0-9]+)\.0$/|\1/' "$WORK/bianzhi.out"
# Compare as sets of rows: ORDER BY on text follows the server's collation.
LC_ALL=C sort -o "$WORK/postgres.out" "$WORK/postgres.out"
LC_ALL=C sort -o "$WORK/bianzhi.out" "$WORK/bianzhi.out"
rows=$(grep -c . "$WORK/postgres.out")
[[ $rows -ge 80 ]] || { echo "FAIL pg_trgm reference gave only $rows rows" >&2; exit 1; }
if ! diff -u "$WORK/postgres.out" "$WORK/bianzhi.out"; then
    echo "FAIL bianzhi differs from PostgreSQL's pg_trgm (diff above: - postgres, + bianzhi)" >&2
    exit 1
fi
echo "ok   pg_trgm: $rows rows identical to PostgreSQL $(psql --version | awk '{print $3}')"
