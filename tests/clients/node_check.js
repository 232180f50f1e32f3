// node-postgres (pg 8) against a running bianzhi: simple and extended queries,
// result type OIDs, SQLSTATEs, a pool under concurrency, multi-statement queries.
//
// Usage: node node_check.js HOST PORT   (npm install in this directory first)
// Every check compares results, not only the absence of errors.
'use strict';
const pg = require('pg');

const [host, port] = process.argv.slice(2);
const config = { host, port: Number(port), user: 'analyst', database: 'bianzhi' };

function check(condition, message) {
  if (!condition) throw new Error(message);
  console.log(`ok   ${message}`);
}

async function main() {
  const client = new pg.Client(config);
  await client.connect();
  try {
    // Simple query protocol (no parameters): text results, bigint arrives as a string.
    const plain = await client.query('SELECT org_id, org_name FROM org WHERE org_id = 1');
    check(plain.rows.length === 1 && plain.rows[0].org_id === '1', `simple query ${JSON.stringify(plain.rows)}`);

    // Extended protocol: pg sends $1, $2 as untyped text parameters the server must infer.
    const params = await client.query('SELECT org_name, tier FROM org WHERE org_id = $1 AND tier = $2', [1, '市']);
    check(params.rows.length === 1 && params.rows[0].org_name === plain.rows[0].org_name,
      `parameters $1 int, $2 text: ${params.rows[0] && params.rows[0].org_name}`);

    // Field type OIDs drive pg's value parsers (and every ORM above it).
    const typed = await client.query(
      'SELECT count(*) AS n, min(item) AS item, max(amount) AS amount, min(period) AS period FROM external_roster');
    const oids = Object.fromEntries(typed.fields.map((f) => [f.name, f.dataTypeID]));
    check(oids.n === 20 && oids.item === 25 && oids.amount === 1700 && oids.period === 1082,
      `dataTypeID bigint/text/numeric/date ${JSON.stringify(oids)}`);
    const row = typed.rows[0];
    check(row.period instanceof Date && row.period.getFullYear() === 2020 && /^\d+\.\d{2}$/.test(row.amount),
      `parsed date ${row.period && row.period.toDateString()} and numeric ${row.amount}`);

    // Errors keep their SQLSTATE, and the connection stays usable.
    try {
      await client.query('SELECT * FROM no_such_table');
      check(false, 'missing table raises');
    } catch (err) {
      check(err.code === '42P01', `missing table code ${err.code}: ${err.message}`);
    }
    const after = await client.query("SELECT 'still here' AS s");
    check(after.rows[0].s === 'still here', 'connection usable after error');

    // Literals and now() take PostgreSQL's types: 1 is integer (a JS number),
    // 1.5 is numeric (a string, no float rounding), now() is timestamptz.
    const lit = await client.query('SELECT 1 AS i, 1.5 AS n, now() AS t');
    const litOids = lit.fields.map((f) => f.dataTypeID);
    check(JSON.stringify(litOids) === '[23,1700,1184]' && lit.rows[0].i === 1 && lit.rows[0].n === '1.5'
      && lit.rows[0].t instanceof Date && Math.abs(lit.rows[0].t - Date.now()) < 600000,
      `literal types int4/numeric/timestamptz ${JSON.stringify(litOids)} ${JSON.stringify(lit.rows[0])}`);

    // Several statements in one simple query: pg returns one result per statement.
    const multi = await client.query("SELECT 'one' AS a; SELECT 2::int AS b; SELECT count(*) AS n FROM dict_code");
    check(Array.isArray(multi) && multi.length === 3 && multi[0].rows[0].a === 'one' && multi[1].rows[0].b === 2
      && Number(multi[2].rows[0].n) > 0, `multi-statement query ${multi.length} results`);
  } finally {
    await client.end();
  }

  // A pool running queries concurrently over several connections.
  const pool = new pg.Pool({ ...config, max: 4 });
  try {
    const results = await Promise.all([...Array(8).keys()].map((n) =>
      pool.query('SELECT $1::bigint * 2 AS doubled, count(*) AS n FROM org WHERE org_id <= $1', [n + 1])));
    const doubled = results.map((r) => Number(r.rows[0].doubled));
    const counts = results.map((r) => Number(r.rows[0].n));
    check(doubled.every((d, n) => d === 2 * (n + 1)) && counts.every((c, n) => c === n + 1),
      `pool of 4 ran 8 concurrent queries ${JSON.stringify(doubled)}`);
    check(pool.totalCount > 1, `pool opened ${pool.totalCount} connections`);
  } finally {
    await pool.end();
  }
  console.log('node: all checks passed');
}

main().catch((err) => {
  console.error(`FAIL ${err.message}${err.code ? ` (SQLSTATE ${err.code})` : ''}`);
  process.exit(1);
});
