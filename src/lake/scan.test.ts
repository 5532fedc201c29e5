import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { Lake } from './lake.js';
import { type ScanFile, UNION_MAX_GROUPS, filesSql } from './scan.js';
import type { DeltaTable } from './table.js';

const tmpDirs: string[] = [];

async function tempDir(prefix = 'talon-scan-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}

after(async () => {
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});

/** Rows of `expr` as JSON text, sorted: an order-free comparison. */
async function sortedRows(lake: Lake, expr: string): Promise<string[]> {
  const rows = await lake.db.allJson(`SELECT * FROM ${expr} AS x`);
  return rows.map((r) => JSON.stringify(r)).sort();
}

/** Column types of an expression, by name. */
async function types(lake: Lake, expr: string): Promise<Record<string, string>> {
  return Object.fromEntries((await lake.db.columns(`SELECT * FROM ${expr}`)).map((c) => [c.name, c.type]));
}

/** The scan must equal the general join over the same files, row for row and type for type. */
async function assertSameAsJoin(lake: Lake, t: DeltaTable, filter?: string): Promise<string> {
  const snap = await t.snapshot();
  const fast = await snap.scan(filter);
  const files = await Promise.all(
    snap
      .prune(filter)
      .map(async (f) => ({ local: await t.localFile(f.path), partitionValues: f.partitionValues })),
  );
  let join = await filesSql(lake.db, snap.schema, snap.partitionColumns, files, { strategy: 'join' });
  if (filter) join = `(SELECT * FROM ${join} AS j WHERE ${filter})`;
  assert.deepEqual(await types(lake, fast), await types(lake, join));
  assert.deepEqual(await sortedRows(lake, fast), await sortedRows(lake, join));
  return fast;
}

describe('snapshot scans without a join', () => {
  test('unpartitioned: one read_parquet, evolved columns read as NULL of the schema type', async () => {
    const lake = await Lake.open(await tempDir());
    try {
      const t = await lake.createTable('plain', {});
      await t.append(`SELECT CAST(i AS INTEGER) AS n, 'a' || i AS s FROM range(3) r(i)`);
      await t.append(`SELECT CAST(i AS INTEGER) AS n, 'b' AS s, DATE '2024-01-02' AS d FROM range(2) r(i)`);
      const expr = await assertSameAsJoin(lake, t);
      assert.doesNotMatch(expr, /JOIN/);
      const ty = await types(lake, expr);
      assert.equal(ty.n, 'INTEGER');
      assert.equal(ty.d, 'DATE');
      const nulls = await lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${expr} WHERE d IS NULL`);
      assert.equal(nulls[0]!.n, 3n);
    } finally {
      lake.close();
    }
  });

  for (const [type, values] of [
    ['VARCHAR', `'x', 'a b', 'NULL', 'a/b', '50%', 'a+b', 'é', '', NULL, ' pad', 'x=y'`],
    ['INTEGER', '1, -7, 0, NULL'],
    ['BIGINT', '5000000000, NULL, 3'],
    ['DATE', `DATE '2024-03-01', DATE '1999-12-31', NULL`],
    ['DECIMAL(10,2)', '1.25, -3.50, NULL'],
    ['BOOLEAN', 'true, false, NULL'],
    ['DOUBLE', '1.5, -0.25, NULL'],
    ['TIMESTAMPTZ', `TIMESTAMPTZ '2024-03-01 10:11:12.5+00', NULL, TIMESTAMPTZ '2020-01-01 00:00:00+00'`],
  ] as const) {
    test(`partition values of type ${type} read exactly as the log says (with nulls)`, async () => {
      const lake = await Lake.open(await tempDir());
      try {
        const t = await lake.createTable('typed', { partitionColumns: ['p'] });
        await t.append(
          `SELECT CAST(v AS ${type}) AS p, CAST(i AS INTEGER) AS id, 'row' || i AS s
             FROM (SELECT unnest([${values}]) AS v) AS u, range(2) r(i)`,
        );
        // a second commit with an extra column: schema evolution across the partitions
        await t.append(`SELECT CAST(v AS ${type}) AS p, 9 AS id, 'late' AS s, 42 AS extra
             FROM (SELECT unnest([${values}]) AS v) AS u`);
        const expr = await assertSameAsJoin(lake, t);
        const n = await lake.db.all<{ n: bigint; p: bigint }>(
          `SELECT count(*) AS n, count(DISTINCT p) AS p FROM ${expr}`,
        );
        const src = await lake.db.all<{ n: bigint; p: bigint }>(
          `SELECT count(*) * 3 AS n, count(DISTINCT v) AS p FROM (SELECT unnest([${values}]) AS v)`,
        );
        // '' is null in Delta partition values (the protocol), so VARCHAR has one value fewer
        const emptyString = type === 'VARCHAR' ? 1n : 0n;
        assert.equal(n[0]!.n, src[0]!.n);
        assert.equal(n[0]!.p, src[0]!.p - emptyString);
        // every partition filtered on its own (file pruning, then a single-partition scan)
        const one = await lake.db.all<{ v: unknown }>(
          `SELECT DISTINCT CAST(p AS VARCHAR) AS v FROM ${expr} WHERE p IS NOT NULL`,
        );
        for (const { v } of one) {
          const filter = `p = CAST('${String(v).replace(/'/g, "''")}' AS ${type})`;
          await assertSameAsJoin(lake, t, filter);
        }
        await assertSameAsJoin(lake, t, 'p IS NULL');
        // without the null partition every folder name is its value: read from the Hive layout
        const notNull = await assertSameAsJoin(lake, t, 'p IS NOT NULL');
        if (type !== 'VARCHAR' && type !== 'TIMESTAMPTZ') assert.match(notNull, /hive_partitioning = true/);
        else assert.doesNotMatch(notNull, /hive_partitioning = true/);
      } finally {
        lake.close();
      }
    });
  }

  test('Talon Hive layout with safe values: one read_parquet with hive_partitioning, no join', async () => {
    const lake = await Lake.open(await tempDir());
    try {
      const t = await lake.createTable('hive', { partitionColumns: ['event_date', 'tag'] });
      for (let k = 0; k < 3; k++) {
        await t.append(
          `SELECT DATE '2024-03-01' + CAST(i % 7 AS INTEGER) AS event_date, 'tag-' || (i % 3) AS tag,
                  CAST(i AS BIGINT) AS id FROM range(${k * 50}, ${(k + 1) * 50}) r(i)`,
        );
      }
      const expr = await assertSameAsJoin(lake, t);
      assert.match(expr, /hive_partitioning = true/);
      assert.doesNotMatch(expr, /JOIN/);
      const r = await lake.db.all<{ n: bigint; s: bigint }>(
        `SELECT count(*) AS n, sum(id) AS s FROM ${expr}`,
      );
      assert.equal(r[0]!.n, 150n);
      assert.equal(r[0]!.s, 11175n);
      const f = await assertSameAsJoin(lake, t, `event_date = DATE '2024-03-03' AND tag = 'tag-1'`);
      assert.doesNotMatch(f, /JOIN|hive_partitioning = true/);
    } finally {
      lake.close();
    }
  });

  test('a lake folder with "=" in its path never reads partition values from folders', async () => {
    const lake = await Lake.open(path.join(await tempDir('talon-scan-x=1-'), 'tag=evil'));
    try {
      const t = await lake.createTable('eq', { partitionColumns: ['tag'] });
      await t.append(`SELECT 'v' || (i % 6) AS tag, CAST(i AS INTEGER) AS id FROM range(30) r(i)`);
      const expr = await assertSameAsJoin(lake, t);
      assert.doesNotMatch(expr, /hive_partitioning = true/);
      const r = await lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${expr} WHERE tag = 'evil'`);
      assert.equal(r[0]!.n, 0n);
    } finally {
      lake.close();
    }
  });

  test('files outside a Hive layout: a few groups are a UNION ALL, many fall back to the join', async () => {
    const dir = await tempDir();
    const lake = await Lake.open(dir);
    try {
      const groups = UNION_MAX_GROUPS * 3;
      const files: ScanFile[] = [];
      for (let g = 0; g < groups; g++) {
        for (let k = 0; k < 2; k++) {
          const local = path.join(dir, `f${g}-${k}.parquet`);
          // the file also holds a stale `p` column, which the log's value must override
          const extra = k === 1 ? `, CAST(${g} AS SMALLINT) AS late` : '';
          await lake.db.run(
            `COPY (SELECT CAST(i AS INTEGER) AS id, 'stale' AS p${extra} FROM range(${g * 10 + k * 5}, ${g * 10 + k * 5 + 5}) r(i))
               TO '${local}' (FORMAT parquet)`,
          );
          files.push({ local, partitionValues: { p: g % 5 === 4 ? null : `g${g}` } });
        }
      }
      const schema = {
        type: 'struct' as const,
        fields: [
          { name: 'id', type: 'long' as const, nullable: true, metadata: {} },
          { name: 'p', type: 'string' as const, nullable: true, metadata: {} },
          { name: 'late', type: 'integer' as const, nullable: true, metadata: {} },
        ],
      };
      const check = async (subset: ScanFile[], expectJoin: boolean) => {
        const fast = await filesSql(lake.db, schema, ['p'], subset, { withFile: true });
        const join = await filesSql(lake.db, schema, ['p'], subset, { withFile: true, strategy: 'join' });
        assert.equal(/ JOIN /.test(fast), expectJoin);
        assert.deepEqual(await types(lake, fast), await types(lake, join));
        assert.deepEqual(await sortedRows(lake, fast), await sortedRows(lake, join));
        const stale = await lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${fast} WHERE p = 'stale'`);
        assert.equal(stale[0]!.n, 0n);
        return fast;
      };
      const few = await check(files.slice(0, UNION_MAX_GROUPS * 2), false);
      assert.match(few, /UNION ALL/);
      await check(files.slice(0, 2), false);
      await check(files, true);
      // the change feed's constant columns: grouped the same way
      const withConsts = files.map((f, i) => ({
        ...f,
        consts: { _commit_version: `CAST(${i % 3} AS BIGINT)` },
      }));
      const constCols = [{ name: '_commit_version', type: 'BIGINT' }];
      for (const subset of [withConsts.slice(0, 6), withConsts]) {
        const fast = await filesSql(lake.db, schema, ['p'], subset, { constCols });
        const join = await filesSql(lake.db, schema, ['p'], subset, { constCols, strategy: 'join' });
        assert.deepEqual(await sortedRows(lake, fast), await sortedRows(lake, join));
      }
    } finally {
      lake.close();
    }
  });

  test('change feed over partitioned commits equals the rows written', async () => {
    const lake = await Lake.open(await tempDir());
    try {
      const t = await lake.createTable('cf', {
        partitionColumns: ['p'],
        properties: { 'delta.enableChangeDataFeed': 'true' },
      });
      const commits = UNION_MAX_GROUPS + 3;
      for (let v = 1; v <= commits; v++) {
        await t.append(
          `SELECT 'p' || (i % 3) AS p, CAST(i AS INTEGER) AS id, ${v} AS v FROM range(${v * 10}, ${v * 10 + 6}) r(i)`,
        );
      }
      await t.deleteWhere(`p = 'p1'`);
      const check = async (from: number, to?: number) => {
        const rows = await lake.db.all<{ ok: boolean; n: bigint }>(
          `SELECT bool_and(p = 'p' || (id % 3) AND (_change_type = 'delete' OR _commit_version = v)) AS ok, count(*) AS n
             FROM ${await t.changes(from, to)}`,
        );
        assert.equal(rows[0]!.ok, true);
        return Number(rows[0]!.n);
      };
      assert.equal(await check(0, 2), 12);
      assert.equal(await check(0, commits), commits * 6);
      const deleted = await lake.db.all<{ n: bigint }>(
        `SELECT count(*) AS n FROM ${await t.changes(commits)} WHERE _change_type = 'delete' AND p = 'p1'`,
      );
      assert.equal(Number(deleted[0]!.n), await check(commits));
    } finally {
      lake.close();
    }
  });
});
