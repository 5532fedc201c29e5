import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import duckdb from '@duckdb/node-api';
import { QueryRefusedError, explainTarget, lockDown, prepareReadOnly, runReadOnly } from './readonly.js';

// A real DuckDB instance with a "lake" folder holding a Parquet file, a view over it (as
// Lake.registerViews creates), and a CSV outside the lake that queries must not reach.
let root: string;
let lakeDir: string;
let outsideDir: string;
let instance: duckdb.DuckDBInstance;
let conn: duckdb.DuckDBConnection;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'talon-readonly-'));
  lakeDir = path.join(root, 'lake');
  // A sibling whose name starts with the lake's: a prefix match must not allow it.
  outsideDir = path.join(root, 'lake2');
  await mkdir(path.join(lakeDir, 'userlogon'), { recursive: true });
  await mkdir(outsideDir, { recursive: true });
  await writeFile(path.join(outsideDir, 'secret.csv'), 'user,password\nroot,hunter2\n');
  instance = await duckdb.DuckDBInstance.create(':memory:');
  conn = await instance.connect();
  const parquet = path.join(lakeDir, 'userlogon', 'part-0.parquet');
  await conn.run(
    `COPY (SELECT range AS id, 'user' || range AS UserName FROM range(5)) TO '${parquet}' (FORMAT parquet)`,
  );
  await conn.run(`CREATE VIEW "UserLogon" AS SELECT * FROM read_parquet(['${parquet}'])`);
  await lockDown(conn, { allowedDirectories: [lakeDir], tempDirectory: path.join(root, 'spill') });
});

after(async () => {
  conn?.closeSync();
  instance?.closeSync();
  await rm(root, { recursive: true, force: true });
});

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  const result = await runReadOnly(conn, sql);
  return (await result.getRowObjectsJson()) as Record<string, unknown>[];
}

async function refused(sql: string, pattern: RegExp): Promise<void> {
  await assert.rejects(
    () => rows(sql),
    (err: unknown) => {
      assert.ok(err instanceof QueryRefusedError, `expected QueryRefusedError, got ${String(err)}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

const NOT_READ_ONLY = /^query refused: only read-only SELECT statements are allowed \(got /;
const OUTSIDE = /^query refused: file access outside the lake is not allowed/;

test('a SELECT over a view of lake files still reads after the lock-down, names case-insensitive', async () => {
  assert.deepEqual(await rows('SELECT count(*)::INTEGER AS n, max(username) AS last FROM userlogon'), [
    { n: 5, last: 'user4' },
  ]);
  assert.equal((await rows('WITH u AS (SELECT * FROM USERLOGON) SELECT id FROM u WHERE id = 3')).length, 1);
  assert.equal((await rows('FROM UserLogon')).length, 5);
});

test('DESCRIBE, SHOW, SUMMARIZE and EXPLAIN of a SELECT are allowed', async () => {
  const describe = await rows('DESCRIBE userlogon');
  assert.deepEqual(
    describe.map((r) => r.column_name),
    ['id', 'UserName'],
  );
  assert.ok((await rows('SHOW TABLES')).some((r) => r.name === 'UserLogon'));
  assert.equal((await rows('SUMMARIZE userlogon')).length, 2);
  assert.ok((await rows('EXPLAIN SELECT * FROM userlogon')).length > 0);
  assert.ok((await rows('EXPLAIN ANALYZE SELECT count(*) FROM userlogon')).length > 0);
});

test('COPY is refused, also into the lake folder itself', async () => {
  await refused(`COPY (SELECT 1) TO '${path.join(root, 'out.csv')}'`, /\(got COPY\)$/);
  await refused(`COPY userlogon TO '${path.join(lakeDir, 'userlogon', 'evil.parquet')}'`, /\(got COPY\)$/);
  assert.deepEqual(await readdir(path.join(lakeDir, 'userlogon')), ['part-0.parquet']);
});

test('EXPLAIN ANALYZE of a COPY is refused (it would run the COPY)', async () => {
  const target = path.join(lakeDir, 'explained.csv');
  await refused(`EXPLAIN ANALYZE COPY (SELECT 1) TO '${target}'`, /\(got EXPLAIN COPY\)$/);
  await refused(`/* c */ EXPLAIN (ANALYZE) COPY (SELECT 1) TO '${target}'`, /\(got EXPLAIN COPY\)$/);
  assert.equal(existsSync(target), false);
});

test('ATTACH, INSTALL, LOAD, SET, CREATE, INSERT, EXPORT, CALL, PRAGMA are refused', async () => {
  await refused(`ATTACH '${path.join(root, 'x.duckdb')}' AS x`, /\(got ATTACH\)$/);
  await refused('INSTALL httpfs', /\(got INSTALL\)$/);
  await refused('LOAD parquet', /\(got LOAD\)$/);
  await refused('SET enable_external_access = true', /\(got SET\)$/);
  await refused('RESET allowed_directories', /\(got RESET\)$/);
  await refused("INSERT INTO userlogon VALUES (9, 'x')", /\(got INSERT\)$/);
  await refused(
    'WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a',
    /\(got a statement that is not a SELECT\)$/,
  );
  await refused('CREATE TABLE t AS SELECT 1 AS a', /\(got CREATE\)$/);
  await refused('CREATE VIEW v AS SELECT 1 AS a', /\(got CREATE\)$/);
  await refused('DROP VIEW userlogon', /\(got DROP\)$/);
  await refused(`EXPORT DATABASE '${path.join(root, 'export')}'`, /\(got EXPORT\)$/);
  // Binding EXPORT would already create its folder: it is refused before binding.
  await refused(`EXPORT DATABASE '${path.join(lakeDir, 'export')}'`, /\(got EXPORT\)$/);
  await refused(`ATTACH '${path.join(lakeDir, 'x.duckdb')}' AS x`, /\(got ATTACH\)$/);
  assert.deepEqual(await readdir(lakeDir), ['userlogon']);
  await refused('CALL pragma_version()', /\(got CALL\)$/);
  await refused('PRAGMA enable_profiling', /\(got PRAGMA\)$/);
  await refused("PRAGMA table_info('userlogon')", /\(got PRAGMA\)$/);
  for (const sql of ['INSTALL httpfs', 'SET threads = 1']) {
    await refused(sql, NOT_READ_ONLY);
  }
  // The view is still there and the settings unchanged.
  assert.equal((await rows('SELECT * FROM userlogon')).length, 5);
  assert.deepEqual(await rows(`SELECT current_setting('enable_external_access') AS v`), [{ v: false }]);
});

test('more than one statement is refused, even when each is a SELECT', async () => {
  await refused('SELECT 1; SELECT 2', /^query refused: exactly one statement is allowed \(got 2\)$/);
  await refused(
    `SELECT 1; COPY (SELECT 1) TO '${path.join(lakeDir, 'x.csv')}'`,
    /^query refused: exactly one statement is allowed/,
  );
  assert.equal(existsSync(path.join(lakeDir, 'x.csv')), false);
  // A trailing semicolon is still one statement.
  assert.equal((await rows('SELECT 42 AS a;')).length, 1);
});

test("read_csv('/etc/passwd'), read_text, read_blob, glob outside the lake fail", async () => {
  await refused(`SELECT * FROM read_csv('/etc/passwd')`, OUTSIDE);
  await refused(`SELECT * FROM read_text('/etc/passwd')`, OUTSIDE);
  await refused(`SELECT * FROM read_blob('/etc/hostname')`, OUTSIDE);
  await refused(`SELECT * FROM glob('/etc/*')`, OUTSIDE);
  await refused(`SELECT * FROM read_parquet('/etc/x.parquet')`, OUTSIDE);
  // A sibling folder sharing the lake's name as a prefix, and a path escaping with '..'.
  await refused(`SELECT * FROM read_csv('${path.join(outsideDir, 'secret.csv')}')`, OUTSIDE);
  await refused(`SELECT * FROM read_csv('${lakeDir}/../lake2/secret.csv')`, OUTSIDE);
  // The blocked path is named in the message.
  await refused(`SELECT * FROM read_csv('/etc/passwd')`, /\(\/etc\/passwd\)$/);
});

test('empty input and parameters are refused with a clear message; syntax errors pass through', async () => {
  await refused('  ;  ', /^query refused: the query is empty$/);
  await refused('SELECT * FROM userlogon WHERE id = $1', /parameters/);
  await assert.rejects(() => rows('SELEC 1'), /syntax error/);
});

test('prepareReadOnly returns the statement unexecuted; the guard works on a fresh instance too', async () => {
  const other = await duckdb.DuckDBInstance.create(':memory:');
  const c = await other.connect();
  try {
    const p = await prepareReadOnly(c, 'SELECT 7 AS seven');
    assert.equal(p.columnName(0), 'seven');
    await assert.rejects(() => prepareReadOnly(c, 'CREATE TABLE t(a INT)'), /\(got CREATE\)$/);
    const tables = await c.runAndReadAll('SELECT count(*)::INTEGER AS n FROM duckdb_tables()');
    assert.deepEqual(tables.getRowObjectsJson(), [{ n: 0 }]);
  } finally {
    c.closeSync();
    other.closeSync();
  }
});

test('explainTarget strips only an EXPLAIN prefix', () => {
  assert.equal(explainTarget('EXPLAIN SELECT 1')?.trim(), 'SELECT 1');
  assert.equal(explainTarget('-- x\nexplain analyze COPY t TO x')?.trim(), 'COPY t TO x');
  assert.equal(explainTarget('EXPLAIN (FORMAT json) SELECT 1')?.trim(), 'SELECT 1');
  assert.equal(explainTarget("EXPLAIN (FORMAT 'json') SELECT 1"), undefined);
  assert.equal(explainTarget('SELECT 1'), undefined);
});
