#!/usr/bin/env bash
# psql against a running bianzhi: the meta-commands analysts use, \copy and
# SQLSTATEs. Usage: psql_checks.sh HOST PORT. Every check greps psql's real
# output for what PostgreSQL would show.
set -euo pipefail
HOST=$1 PORT=$2
export PGCONNECT_TIMEOUT=10
PSQL=(psql -X -h "$HOST" -p "$PORT" -U analyst -d bianzhi -v ON_ERROR_STOP=1)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# expect NAME PATTERN PSQL-ARGS...: run psql, require PATTERN (grep -E) in its output.
expect() {
    local name=$1 pattern=$2
    shift 2
    local out
    if ! out=$("${PSQL[@]}" "$@" 2>&1); then
        printf 'FAIL %s: psql failed:\n%s\n' "$name" "$out" >&2
        exit 1
    fi
    if ! grep -Eq -- "$pattern" <<<"$out"; then
        printf 'FAIL %s: no /%s/ in:\n%s\n' "$name" "$pattern" "$out" >&2
        exit 1
    fi
    echo "ok   $name"
}

expect 'version() is PostgreSQL 16' '^ *PostgreSQL 16\.' -At -c 'SELECT version()'
expect '\dt lists the tables' 'public +\| org +\| table' -c '\dt'
expect '\dt+ shows table comments' 'org +\| table .*\| 机构 *$' -c '\dt+ org'
expect '\d org shows columns and types' 'org_name +\| text +\| +\| not null' -c '\d org'
expect '\d+ org shows column comments' 'org_name .*\| 机构名称' -c '\d+ org'
expect '\l lists the database' 'bianzhi +\|' -c '\l'
expect '\dn lists the schemas' 'generator' -c '\dn'
expect '\dn+ shows schema comments' 'public .*\|' -c '\dn+'
expect '\df runs' 'List of functions' -c '\df'
expect '\df lists bianzhi functions' 'public +\| gini +\| double precision +\| x \[, weight\] +\| agg' -c '\df gini'
expect '\df+ shows their documentation' 'per_10k .*count per 10,000 people' -c '\df+ per_10k'
expect '\dv lists the built-in views' 'region_allocation +\| view' -c '\dv'
expect 'several statements in one query' '^2$' -At -c 'SELECT 1; SELECT 2'
expect 'comment-only query' '^$' -At -c '-- ping'
expect 'SET/SHOW TimeZone' '^Asia/Shanghai$' -At -c "SET TimeZone = 'Asia/Shanghai'; SHOW TimeZone"

# \copy (query) to a file: the exported rows, header included.
"${PSQL[@]}" -c "\\copy (SELECT org_id, org_name FROM org ORDER BY org_id LIMIT 25) to '$WORK/orgs.csv' with (format csv, header)" >/dev/null
lines=$(wc -l <"$WORK/orgs.csv")
[[ $lines -eq 26 ]] || { echo "FAIL \\copy wrote $lines lines, expected 26" >&2; exit 1; }
head -1 "$WORK/orgs.csv" | grep -q '^org_id,org_name$' || { echo "FAIL \\copy header" >&2; exit 1; }
echo "ok   \\copy (query) to file: 25 rows and a header"

# \copy table from a CSV file: the rows are committed at once and readable.
before=$("${PSQL[@]}" -At -c 'SELECT count(*) FROM external_roster')
printf 'source,period,id_hash,person_name,org_id,item,amount\n社会保险,2024-01-01,psql-copy-1,张三,1,养老保险缴费,100.50\n社会保险,2024/2/1,psql-copy-2,李四,,养老保险缴费,\n' >"$WORK/roster.csv"
out=$("${PSQL[@]}" -c "\\copy external_roster (source, period, id_hash, person_name, org_id, item, amount) from '$WORK/roster.csv' with (format csv, header)")
grep -q '^COPY 2$' <<<"$out" || { printf 'FAIL \\copy from: %s\n' "$out" >&2; exit 1; }
after=$("${PSQL[@]}" -At -c 'SELECT count(*) FROM external_roster')
[[ $after -eq $((before + 2)) ]] || { echo "FAIL \\copy from: $before rows before, $after after" >&2; exit 1; }
expect '\copy from: values as sent' '^psql-copy-2\|2024-02-01\|$' -At -c "SELECT id_hash, period, amount FROM external_roster WHERE id_hash = 'psql-copy-2'"
echo "ok   \\copy table from file: 2 rows committed"

# A bad value rejects the whole \copy with its line and column; nothing lands.
printf 'source,period,id_hash,item\n社会保险,2024-01-01,psql-copy-3,养老保险缴费\n社会保险,2024-02-30,psql-copy-4,养老保险缴费\n' >"$WORK/bad.csv"
if out=$("${PSQL[@]}" -v VERBOSITY=verbose -c "\\copy external_roster (source, period, id_hash, item) from '$WORK/bad.csv' with (format csv, header)" 2>&1); then
    echo "FAIL \\copy of a bad date succeeded" >&2; exit 1
fi
grep -q '22P02' <<<"$out" && grep -q 'line 3, column period' <<<"$out" || { printf 'FAIL bad \\copy:\n%s\n' "$out" >&2; exit 1; }
still=$("${PSQL[@]}" -At -c 'SELECT count(*) FROM external_roster')
[[ $still -eq $after ]] || { echo "FAIL rejected \\copy changed the table: $after -> $still" >&2; exit 1; }
echo "ok   rejected \\copy names line 3, column period (22P02) and commits nothing"

# Errors carry their SQLSTATE (psql shows it with VERBOSITY verbose).
if out=$("${PSQL[@]}" -v VERBOSITY=verbose -c 'SELECT * FROM no_such_table' 2>&1); then
    echo "FAIL missing table did not fail" >&2; exit 1
fi
grep -q '42P01' <<<"$out" || { printf 'FAIL no 42P01 in:\n%s\n' "$out" >&2; exit 1; }
echo "ok   missing table gives 42P01"

# A script stops at its first error with ON_ERROR_STOP, as psql -f users expect.
printf 'SELECT 1;\nSELECT 1/0;\nSELECT 3;\n' >"$WORK/script.sql"
if out=$("${PSQL[@]}" -At -f "$WORK/script.sql" 2>&1); then
    echo "FAIL script with a division by zero succeeded" >&2; exit 1
fi
grep -q 'division by zero' <<<"$out" && ! grep -q '^3$' <<<"$out" || { printf 'FAIL script:\n%s\n' "$out" >&2; exit 1; }
echo "ok   psql -f stops at the first error"
echo "psql: all checks passed"
