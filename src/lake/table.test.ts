import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { literal } from '../sql/duckdb.js';
import { Lake } from './lake.js';
import { DeltaLog } from './log.js';
import { type DeltaTable, VacuumRetentionError } from './table.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmpDirs: string[] = [];

async function tempLake(): Promise<{ dir: string; lake: Lake }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'talon-lake-'));
  tmpDirs.push(dir);
  return { dir, lake: await Lake.open(dir) };
}

after(async () => {
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});

async function rows(lake: Lake, sql: string): Promise<Record<string, unknown>[]> {
  return lake.db.allJson(sql);
}

async function count(lake: Lake, expr: string, where = 'true'): Promise<number> {
  const r = await lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${expr} AS x WHERE ${where}`);
  return Number(r[0].n);
}

async function logFiles(dir: string, table: string): Promise<string[]> {
  return (await fs.readdir(path.join(dir, table, '_delta_log'))).sort();
}

async function readActions(dir: string, table: string, version: number): Promise<Record<string, unknown>[]> {
  const body = await fs.readFile(
    path.join(dir, table, '_delta_log', `${String(version).padStart(20, '0')}.json`),
    'utf8',
  );
  return body
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Rows of the active files read directly with read_parquet: the independent second read path. */
async function directRead(lake: Lake, dir: string, t: DeltaTable): Promise<string> {
  const snap = await t.snapshot();
  const files = snap.files.map((f) => path.join(dir, t.key, decodeURIComponent(f.path)));
  return `read_parquet([${files.map(literal).join(', ')}], union_by_name = true, hive_partitioning = false)`;
}

const ALL_TYPES = `
  SELECT CAST(i AS BIGINT) AS l,
         CAST(i AS INTEGER) AS n,
         'str-' || i AS s,
         i / 4.0 AS d,
         i % 2 = 0 AS b,
         TIMESTAMP '2024-03-01 10:00:00.123456' + to_seconds(i) AS ts,
         TIMESTAMPTZ '2024-03-01 10:00:00+00' + to_hours(i) AS tstz,
         CAST(DATE '2024-03-01' + CAST(i AS INTEGER) AS DATE) AS dt,
         {'ip': '10.0.0.' || i, 'port': CAST(i AS INTEGER), 'geo': {'lat': i * 1.5, 'cc': 'DE'}} AS st,
         ['a' || i, NULL, 'b'] AS arr,
         MAP {'k' || i: CAST(i AS BIGINT)} AS m
    FROM range(5) t(i)
  UNION ALL
  SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`;

describe('Delta table basics', () => {
  test('create + append + read round trip for every type, checked by a second read path', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('AllTypes', {});
      const res = await t.append(ALL_TYPES);
      assert.equal(res.version, 1);
      assert.equal(res.metrics.numOutputRows, 6);
      const snap = await t.snapshot();
      assert.equal(snap.name, 'AllTypes');
      assert.equal(snap.numRows, 6);
      const types = Object.fromEntries(snap.schema.fields.map((f) => [f.name, f.type]));
      assert.deepEqual(
        {
          l: types.l,
          n: types.n,
          s: types.s,
          d: types.d,
          b: types.b,
          ts: types.ts,
          tstz: types.tstz,
          dt: types.dt,
        },
        {
          l: 'long',
          n: 'integer',
          s: 'string',
          d: 'double',
          b: 'boolean',
          ts: 'timestamp',
          tstz: 'timestamp',
          dt: 'date',
        },
      );
      assert.deepEqual(types.arr, { type: 'array', elementType: 'string', containsNull: true });
      assert.deepEqual(types.m, {
        type: 'map',
        keyType: 'string',
        valueType: 'long',
        valueContainsNull: true,
      });
      assert.equal((types.st as { type: string }).type, 'struct');
      // Delta timestamps are instants: the Parquet column must be isAdjustedToUTC.
      const file = path.join(dir, 'alltypes', decodeURIComponent(snap.files[0].path));
      const pq = await rows(
        lake,
        `SELECT name, logical_type FROM parquet_schema(${literal(file)}) WHERE name IN ('ts', 'tstz')`,
      );
      for (const r of pq) assert.match(String(r.logical_type), /isAdjustedToUTC=1/);
      const viaTable = await rows(lake, `SELECT * FROM ${await snap.scan()} ORDER BY l NULLS LAST`);
      const direct = await rows(
        lake,
        `SELECT * FROM ${await directRead(lake, dir, t)} ORDER BY l NULLS LAST`,
      );
      assert.deepEqual(viaTable, direct);
      const expected = await rows(
        lake,
        `SELECT * REPLACE (CAST(ts AS TIMESTAMPTZ) AS ts) FROM (${ALL_TYPES}) ORDER BY l NULLS LAST`,
      );
      assert.deepEqual(viaTable, expected);
      assert.equal(viaTable.length, 6);
      // stats: min/max/nullCount, nested for structs
      const stats = JSON.parse(snap.files[0].stats!);
      assert.equal(stats.numRecords, 6);
      assert.equal(stats.minValues.l, 0);
      assert.equal(stats.maxValues.l, 4);
      assert.equal(stats.nullCount.l, 1);
      assert.equal(stats.minValues.st.port, 0);
      assert.equal(stats.maxValues.st.geo.cc, 'DE');
      assert.equal(stats.minValues.ts, '2024-03-01T10:00:00.123Z');
      assert.equal(stats.minValues.dt, '2024-03-01');
    } finally {
      lake.close();
    }
  });

  test('protocol, metaData, schemaString and commitInfo follow the protocol', async () => {
    const { dir, lake } = await tempLake();
    try {
      await lake.createTable('Cdf', {
        partitionColumns: ['p'],
        properties: { 'delta.enableChangeDataFeed': 'true' },
        schema: {
          type: 'struct',
          fields: [
            { name: 'p', type: 'string', nullable: true, metadata: {} },
            { name: 'v', type: 'long', nullable: true, metadata: {} },
          ],
        },
      });
      const v0 = await readActions(dir, 'cdf', 0);
      const protocol = v0.find((a) => a.protocol)!.protocol as Record<string, number>;
      assert.deepEqual(protocol, { minReaderVersion: 1, minWriterVersion: 4 });
      const md = v0.find((a) => a.metaData)!.metaData as Record<string, unknown>;
      assert.equal(md.name, 'Cdf');
      assert.deepEqual(md.partitionColumns, ['p']);
      assert.deepEqual(JSON.parse(md.schemaString as string).fields[1], {
        name: 'v',
        type: 'long',
        nullable: true,
        metadata: {},
      });
      assert.deepEqual(md.format, { provider: 'parquet', options: {} });
      const t = (await lake.table('CDF'))!;
      await t.append(`SELECT 'a' AS p, 1 AS v`);
      const v1 = await readActions(dir, 'cdf', 1);
      const ci = v1.find((a) => a.commitInfo)!.commitInfo as Record<string, unknown>;
      assert.equal(ci.operation, 'WRITE');
      assert.equal((ci.operationMetrics as Record<string, string>).numOutputRows, '1');
      const add = v1.find((a) => a.add)!.add as Record<string, unknown>;
      for (const k of ['path', 'partitionValues', 'size', 'modificationTime', 'dataChange', 'stats'])
        assert.ok(k in add, k);
      // partition columns live in the log and folder names, not in the file
      const file = path.join(dir, 'cdf', decodeURIComponent(add.path as string));
      assert.match(add.path as string, /^p=a\/part-.*\.parquet$/);
      const cols = await rows(lake, `SELECT name FROM parquet_schema(${literal(file)})`);
      assert.ok(!cols.some((c) => c.name === 'p'));
    } finally {
      lake.close();
    }
  });

  test('table names are case-insensitive; lake summary and views', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('NetworkListenIP4', {});
      assert.equal(t.key, 'networklistenip4');
      assert.equal(await lake.createTable('networklistenip4', {}), t);
      await t.append(`SELECT range AS id FROM range(7)`);
      assert.deepEqual(await lake.tableNames(), ['NetworkListenIP4']);
      assert.ok(await lake.table('NETWORKLISTENIP4'));
      assert.equal(await lake.table('nope'), undefined);
      assert.deepEqual(await lake.summary(), [
        {
          name: 'NetworkListenIP4',
          version: 1,
          rows: 7,
          files: 1,
          bytes: (await t.snapshot()).files[0].size,
        },
      ]);
      assert.deepEqual(await lake.registerViews(), ['NetworkListenIP4']);
      assert.equal(await count(lake, 'networklistenip4'), 7);
    } finally {
      lake.close();
    }
  });

  test('txn: a replayed batch is skipped', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('ing', {});
      assert.equal(await t.txnVersion('fdr'), undefined);
      const a = await t.append(`SELECT 1 AS x`, { txn: { appId: 'fdr', version: 5 } });
      assert.equal(a.skipped, false);
      assert.equal(await t.txnVersion('fdr'), 5);
      const b = await t.append(`SELECT 1 AS x`, { txn: { appId: 'fdr', version: 5 } });
      assert.equal(b.skipped, true);
      const c = await t.append(`SELECT 1 AS x`, { txn: { appId: 'fdr', version: 3 } });
      assert.equal(c.skipped, true);
      await t.append(`SELECT 2 AS x`, { txn: { appId: 'fdr', version: 6 } });
      assert.equal(await count(lake, await (await t.snapshot()).scan()), 2);
      assert.equal(await t.latestVersion(), 2);
    } finally {
      lake.close();
    }
  });
});

describe('partitions and pruning', () => {
  test('partition values with special characters and nulls round-trip; filters skip files', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('Parts', { partitionColumns: ['event_date', 'tag'] });
      await t.append(`
        SELECT CAST(DATE '2024-01-01' + CAST(i % 3 AS INTEGER) AS DATE) AS event_date,
               CASE i % 4 WHEN 0 THEN 'a/b' WHEN 1 THEN 'x y' WHEN 2 THEN '50%=' ELSE NULL END AS tag,
               i AS v
          FROM range(24) t(i)`);
      const snap = await t.snapshot();
      assert.equal(snap.files.length, 12);
      const paths = snap.files.map((f) => decodeURIComponent(f.path));
      assert.ok(paths.some((p) => p.includes('tag=a%2Fb/')));
      assert.ok(paths.some((p) => p.includes('tag=50%25%3D/')));
      assert.ok(paths.some((p) => p.includes('tag=__HIVE_DEFAULT_PARTITION__/')));
      for (const p of paths) await fs.access(path.join(dir, 'parts', p));
      const nullFile = snap.files.find((f) => f.partitionValues.tag === null);
      assert.ok(nullFile);
      const back = await rows(
        lake,
        `SELECT tag, count(*) AS n FROM ${await snap.scan()} GROUP BY tag ORDER BY tag NULLS LAST`,
      );
      assert.deepEqual(back, [
        { tag: '50%=', n: '6' },
        { tag: 'a/b', n: '6' },
        { tag: 'x y', n: '6' },
        { tag: null, n: '6' },
      ]);
      // pruning by partition value
      assert.equal(snap.prune(`event_date = DATE '2024-01-02'`).length, 4);
      assert.equal(snap.prune(`event_date = '2024-01-02' AND tag = 'a/b'`).length, 1);
      assert.equal(snap.prune(`tag IN ('x y', 'nope')`).length, 3);
      assert.equal(snap.prune(`tag IS NULL`).length, 3);
      assert.equal(snap.prune(`tag = 'a/b' OR v > 1000`).length, 3);
      assert.equal(snap.prune(`lower(tag) = 'a/b'`).length, 12); // not understood: nothing skipped
      // stats pruning on a data column
      assert.equal(snap.prune(`v > 1000`).length, 0);
      assert.equal(snap.prune(`v BETWEEN 0 AND 0`).length, 1);
      assert.equal(await count(lake, await snap.scan(`event_date = DATE '2024-01-02' AND v >= 10`)), 5);
      assert.equal(await count(lake, await snap.scan(`tag IS NULL AND v < 8`)), 2);
      assert.equal(await count(lake, await snap.scan(`v > 1000`)), 0);
    } finally {
      lake.close();
    }
  });

  test('timestamp stats skip files and never drop rows', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('ts', {});
      await t.append(`SELECT TIMESTAMP '2024-01-01 00:00:00.000900' AS ts`);
      await t.append(`SELECT TIMESTAMP '2024-02-01 00:00:00' AS ts`);
      const snap = await t.snapshot();
      // max is stored cut to ms (…00.000Z); a filter just above it must still find the row
      assert.equal(await count(lake, await snap.scan(`ts > TIMESTAMP '2024-01-01 00:00:00.0005'`)), 2);
      assert.equal(snap.prune(`ts >= TIMESTAMP '2024-01-15 00:00:00'`).length, 1);
      assert.equal(snap.prune(`ts < '2023-12-31'`).length, 0);
    } finally {
      lake.close();
    }
  });
});

describe('time travel', () => {
  test('by version and by timestamp', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('tt', {});
      const times: number[] = [];
      for (let i = 1; i <= 3; i++) {
        await t.append(`SELECT ${i} AS v`);
        times.push((await t.snapshot()).timestamp);
        await new Promise((r) => setTimeout(r, 15));
      }
      assert.equal(await count(lake, await (await t.snapshot({ version: 1 })).scan()), 1);
      assert.equal(await count(lake, await (await t.snapshot({ version: 2 })).scan()), 2);
      const atT2 = await t.snapshot({ timestamp: times[1] });
      assert.equal(atT2.version, 2);
      assert.equal((await t.snapshot({ timestamp: times[1] + 5 })).version, 2);
      assert.equal((await t.snapshot({ timestamp: times[2] + 100000 })).version, 3);
      await assert.rejects(t.snapshot({ timestamp: 1000 }), /no version at or before/);
      await assert.rejects(t.snapshot({ version: 9 }), /version 9 does not exist/);
    } finally {
      lake.close();
    }
  });
});

describe('overwrite, delete, merge and the change feed', () => {
  test('delete rewrites touched files and writes cdc; changes() reports inserts and deletes', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('del', {
        partitionColumns: ['p'],
        properties: { 'delta.enableChangeDataFeed': 'true' },
      });
      await t.append(`SELECT i AS id, CAST(i % 2 AS INTEGER) AS p FROM range(10) t(i)`); // v1
      const filesBefore = (await t.snapshot()).files.length;
      const d = await t.deleteWhere(`id IN (3, 4)`); // v2: both partitions rewritten
      assert.equal(d.metrics.numDeletedRows, 2);
      assert.equal(d.metrics.numRemovedFiles, 2);
      const snap = await t.snapshot();
      assert.equal(snap.files.length, filesBefore);
      assert.deepEqual(
        (await rows(lake, `SELECT id FROM ${await snap.scan()} ORDER BY id`)).map((r) => r.id),
        ['0', '1', '2', '5', '6', '7', '8', '9'],
      );
      const d2 = await t.deleteWhere(`p = 1`); // v3: whole partition, no rewrite → no cdc needed
      assert.equal(d2.metrics.numDeletedRows, 4);
      assert.equal(d2.metrics.numAddedFiles, 0);
      const ch = await rows(
        lake,
        `SELECT id, p, _change_type AS c, _commit_version AS v FROM ${await t.changes(0)} ORDER BY v, c, id`,
      );
      const by = (v: string, c: string) => ch.filter((r) => r.v === v && r.c === c).map((r) => r.id);
      assert.equal(by('1', 'insert').length, 10);
      assert.deepEqual(by('2', 'delete'), ['3', '4']);
      assert.equal(ch.filter((r) => r.v === '2').length, 2); // version 2 is read from its cdc files only
      assert.deepEqual(by('3', 'delete'), ['1', '5', '7', '9']);
      const none = await t.deleteWhere(`id > 100`);
      assert.equal(none.version, 3);
      // changes between versions: exclusive start, inclusive end
      assert.equal(await count(lake, await t.changes(1, 2)), 2);
      assert.equal(await count(lake, await t.changes(3)), 0);
      const ts = await rows(lake, `SELECT DISTINCT _commit_timestamp AS ts FROM ${await t.changes(1, 2)}`);
      assert.equal(ts.length, 1);
    } finally {
      lake.close();
    }
  });

  test('overwrite whole table and matching partitions', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('ow', { partitionColumns: ['day'] });
      await t.append(`SELECT i AS id, CAST(i % 3 AS INTEGER) AS day FROM range(9) t(i)`);
      await t.overwrite(`SELECT 100 + i AS id, 1 AS day FROM range(2) t(i)`, { where: 'day = 1' });
      let r = await rows(lake, `SELECT id, day FROM ${await (await t.snapshot()).scan()} ORDER BY id`);
      assert.deepEqual(
        r.map((x) => x.id),
        ['0', '2', '3', '5', '6', '8', '100', '101'],
      );
      await assert.rejects(
        t.overwrite(`SELECT 7 AS id, 2 AS day`, { where: 'day = 1' }),
        /do not match the predicate/,
      );
      // row-level predicate: the untouched rows of a file are copied
      await t.overwrite(`SELECT 30 AS id, 0 AS day`, { where: 'id = 3 OR id = 30' });
      r = await rows(lake, `SELECT id FROM ${await (await t.snapshot()).scan()} ORDER BY id`);
      assert.deepEqual(
        r.map((x) => x.id),
        ['0', '2', '5', '6', '8', '30', '100', '101'],
      );
      const res = await t.overwrite(`SELECT 42 AS id, 2 AS day`);
      assert.equal(res.metrics.numRemovedFiles > 0, true);
      r = await rows(lake, `SELECT * FROM ${await (await t.snapshot()).scan()}`);
      assert.deepEqual(r, [{ id: '42', day: 2 }]);
    } finally {
      lake.close();
    }
  });

  test('merge: copy-on-write update + insert with cdc rows', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('state', { properties: { 'delta.enableChangeDataFeed': 'true' } });
      await t.append(`SELECT 'u' || i AS user_name, 'net' || i AS network, i AS seen FROM range(4) t(i)`); // v1
      await t.append(`SELECT 'other' AS user_name, 'x' AS network, 9 AS seen`); // v2: its own file
      await lake.db.run(
        `CREATE TEMP TABLE src AS SELECT * FROM (VALUES ('u1', 'netB', 11), ('u9', 'netC', 19)) v(user_name, network, seen)`,
      );
      const res = await t.merge(`SELECT * FROM src`, {
        on: ['user_name'],
        whenMatched: 'update',
        whenNotMatched: 'insert',
      });
      assert.equal(res.metrics.numTargetRowsUpdated, 1);
      assert.equal(res.metrics.numTargetRowsInserted, 1);
      assert.equal(res.metrics.numTargetRowsCopied, 3);
      assert.equal(res.metrics.numTargetFilesRemoved, 1); // the other file is untouched
      const v3 = await readActions(dir, 'state', 3);
      assert.equal(v3.filter((a) => a.remove).length, 1);
      assert.ok(v3.some((a) => a.cdc));
      const r = await rows(
        lake,
        `SELECT user_name, network, seen FROM ${await (await t.snapshot()).scan()} ORDER BY user_name`,
      );
      assert.deepEqual(r, [
        { user_name: 'other', network: 'x', seen: '9' },
        { user_name: 'u0', network: 'net0', seen: '0' },
        { user_name: 'u1', network: 'netB', seen: '11' },
        { user_name: 'u2', network: 'net2', seen: '2' },
        { user_name: 'u3', network: 'net3', seen: '3' },
        { user_name: 'u9', network: 'netC', seen: '19' },
      ]);
      const ch = await rows(
        lake,
        `SELECT user_name, network, _change_type AS c FROM ${await t.changes(2)} ORDER BY c, user_name`,
      );
      assert.deepEqual(ch, [
        { user_name: 'u9', network: 'netC', c: 'insert' },
        { user_name: 'u1', network: 'netB', c: 'update_postimage' },
        { user_name: 'u1', network: 'net1', c: 'update_preimage' },
      ]);
      // ignore matched, insert new only: a blind insert, nothing rewritten
      const res2 = await t.merge(
        `SELECT * FROM (VALUES ('u1', 'zzz', 0), ('u7', 'n7', 7)) v(user_name, network, seen)`,
        {
          on: ['user_name'],
          whenMatched: 'ignore',
          whenNotMatched: 'insert',
        },
      );
      assert.equal(res2.metrics.numTargetFilesRemoved, 0);
      assert.equal(res2.metrics.numTargetRowsInserted, 1);
      await assert.rejects(
        t.merge(`SELECT * FROM (VALUES ('u1', 'a', 1), ('u1', 'b', 2)) v(user_name, network, seen)`, {
          on: ['user_name'],
          whenMatched: 'update',
          whenNotMatched: 'insert',
        }),
        /several source rows match/,
      );
    } finally {
      lake.close();
    }
  });

  test('merge whenMatchedIf: only matched rows passing the condition are updated; failing ones are neither updated nor inserted', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('hosts', { properties: { 'delta.enableChangeDataFeed': 'true' } });
      await t.append(
        `SELECT * FROM (VALUES ('a1', 'old-a1', 5), ('a2', 'old-a2', 5), ('a3', 'old-a3', NULL)) v(aid, name, seen)`,
      ); // v1
      const spec = {
        on: ['aid'],
        whenMatched: 'update' as const,
        whenMatchedIf: 't.seen IS NULL OR s.seen >= t.seen',
        whenNotMatched: 'insert' as const,
      };
      const res = await t.merge(
        `SELECT * FROM (VALUES ('a1', 'stale-a1', 3), ('a2', 'new-a2', 7), ('a3', 'new-a3', 1), ('a4', 'new-a4', 2)) v(aid, name, seen)`,
        spec,
      ); // v2
      assert.equal(res.metrics.numTargetRowsUpdated, 2);
      assert.equal(res.metrics.numTargetRowsInserted, 1, 'a1 matched (not inserted) though not updated');
      assert.equal(res.metrics.numTargetRowsCopied, 1);
      const v2 = await readActions(dir, 'hosts', 2);
      const info = v2.find((a) => a.commitInfo)?.commitInfo as {
        operationParameters: Record<string, string>;
      };
      assert.equal(info.operationParameters.whenMatchedIf, spec.whenMatchedIf);
      const scan = async () =>
        rows(lake, `SELECT aid, name, seen FROM ${await (await t.snapshot()).scan()} ORDER BY aid`);
      const expected = [
        { aid: 'a1', name: 'old-a1', seen: 5 },
        { aid: 'a2', name: 'new-a2', seen: 7 },
        { aid: 'a3', name: 'new-a3', seen: 1 },
        { aid: 'a4', name: 'new-a4', seen: 2 },
      ];
      assert.deepEqual(await scan(), expected);
      const ch = await rows(
        lake,
        `SELECT aid, name, _change_type AS c FROM ${await t.changes(1)} ORDER BY c, aid, name`,
      );
      assert.deepEqual(ch, [
        { aid: 'a4', name: 'new-a4', c: 'insert' },
        { aid: 'a2', name: 'new-a2', c: 'update_postimage' },
        { aid: 'a3', name: 'new-a3', c: 'update_postimage' },
        { aid: 'a2', name: 'old-a2', c: 'update_preimage' },
        { aid: 'a3', name: 'old-a3', c: 'update_preimage' },
      ]);
      // Every matched row fails the condition: no file is rewritten, nothing changes.
      const res3 = await t.merge(
        `SELECT * FROM (VALUES ('a1', 'older', 1), ('a2', 'older', 6), ('a3', 'null', NULL)) v(aid, name, seen)`,
        spec,
      );
      assert.equal(res3.metrics.numTargetRowsUpdated, 0);
      assert.equal(res3.metrics.numTargetFilesRemoved, 0);
      assert.equal(res3.metrics.numTargetRowsInserted, 0);
      assert.deepEqual(await scan(), expected);
    } finally {
      lake.close();
    }
  });
});

describe('schema evolution', () => {
  test('new columns are added; an incompatible type change is refused', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('evo', {});
      await t.append(`SELECT 1 AS a, 'x' AS b`);
      await t.append(`SELECT 2 AS a, 'y' AS b, CAST(3.5 AS DOUBLE) AS c, {'k': 1} AS s`);
      await t.append(`SELECT CAST(4 AS SMALLINT) AS a, {'k': 2, 'j': 'new'} AS s`); // narrower int is cast, struct grows
      const snap = await t.snapshot();
      assert.deepEqual(
        snap.schema.fields.map((f) => f.name),
        ['a', 'b', 'c', 's'],
      );
      const r = await rows(lake, `SELECT a, b, c, s FROM ${await snap.scan()} ORDER BY a`);
      assert.deepEqual(r, [
        { a: 1, b: 'x', c: null, s: null },
        { a: 2, b: 'y', c: 3.5, s: { k: 1, j: null } },
        { a: 4, b: null, c: null, s: { k: 2, j: 'new' } },
      ]);
      await assert.rejects(t.append(`SELECT 'text' AS a`), (err: Error) => {
        assert.match(err.message, /column "a"/);
        assert.match(err.message, /integer/);
        assert.match(err.message, /string/);
        return true;
      });
      await assert.rejects(
        t.append(`SELECT CAST(1 AS BIGINT) AS a`),
        /table has type integer but the data has type long/,
      );
      assert.equal(await t.latestVersion(), 3);
    } finally {
      lake.close();
    }
  });
});

describe('maintenance', () => {
  test('a checkpoint every 10 commits; reading from it equals JSON replay', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('ck', { partitionColumns: ['p'] });
      for (let i = 0; i < 11; i++) {
        await t.append(`SELECT ${i} AS v, 'p${i % 2}' AS p`, { txn: { appId: 'app', version: i } });
        if (i === 5) await t.deleteWhere('v = 2');
      }
      const files = await logFiles(dir, 'ck');
      assert.ok(files.includes('00000000000000000010.checkpoint.parquet'), files.join(' '));
      const last = JSON.parse(
        await fs.readFile(path.join(dir, 'ck', '_delta_log', '_last_checkpoint'), 'utf8'),
      );
      assert.equal(last.version, 10);
      // Spark-readable layout: struct columns named as the protocol's checkpoint schema
      const ckFile = path.join(dir, 'ck', '_delta_log', '00000000000000000010.checkpoint.parquet');
      const desc = await rows(lake, `DESCRIBE SELECT * FROM read_parquet(${literal(ckFile)})`);
      const colTypes = Object.fromEntries(desc.map((d) => [d.column_name, d.column_type]));
      assert.match(String(colTypes.add), /stats VARCHAR/);
      assert.match(String(colTypes.add), /partitionValues MAP\(VARCHAR, VARCHAR\)/);
      for (const c of ['txn', 'remove', 'metaData', 'protocol']) assert.ok(colTypes[c], c);
      // a fresh reader replays from the checkpoint; compare with a replay of the JSON commits only
      const log = new DeltaLog(lake.store, lake.db, 'ck');
      const listing = await log.list();
      assert.equal(listing.checkpoints[0].version, 10);
      const fromCheckpoint = await log.loadState(undefined, undefined, listing);
      const jsonOnly = await log.loadState(undefined, undefined, { ...listing, checkpoints: [] });
      assert.deepEqual([...fromCheckpoint.files.keys()].sort(), [...jsonOnly.files.keys()].sort());
      assert.deepEqual(fromCheckpoint.txns.get('app')?.version, 10);
      assert.deepEqual(fromCheckpoint.metaData.schemaString, jsonOnly.metaData.schemaString);
      assert.deepEqual(fromCheckpoint.protocol, jsonOnly.protocol);
      for (const [k, a] of jsonOnly.files) {
        const b = fromCheckpoint.files.get(k)!;
        assert.deepEqual(b.partitionValues, a.partitionValues);
        assert.equal(b.stats, a.stats);
        assert.equal(b.size, a.size);
      }
      // reading with only the checkpoint (older JSON commits gone) still works
      for (let v = 0; v < 10; v++)
        await fs.rm(path.join(dir, 'ck', '_delta_log', `${String(v).padStart(20, '0')}.json`));
      const lake2 = await Lake.open(dir);
      try {
        const t2 = (await lake2.table('ck'))!;
        assert.equal(await count(lake2, await (await t2.snapshot()).scan()), 10);
        assert.equal(await t2.txnVersion('app'), 10);
      } finally {
        lake2.close();
      }
    } finally {
      lake.close();
    }
  });

  test('a stale or missing _last_checkpoint does not matter', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('stale', { properties: { 'delta.checkpointInterval': '2' } });
      for (let i = 0; i < 5; i++) await t.append(`SELECT ${i} AS v`);
      await fs.writeFile(path.join(dir, 'stale', '_delta_log', '_last_checkpoint'), '{"version":2,"size":3}');
      const lake2 = await Lake.open(dir);
      const t2 = (await lake2.table('stale'))!;
      assert.equal(await count(lake2, await (await t2.snapshot()).scan()), 5);
      await fs.writeFile(path.join(dir, 'stale', '_delta_log', '_last_checkpoint'), '');
      assert.equal(await count(lake2, await (await (await lake2.table('stale'))!.snapshot()).scan()), 5);
      lake2.close();
    } finally {
      lake.close();
    }
  });

  test('expired log entries before a checkpoint are cleaned up; the table still reads', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('cleanup', {
        properties: { 'delta.checkpointInterval': '5', 'delta.logRetentionDuration': 'interval 0 seconds' },
      });
      for (let i = 0; i < 7; i++) await t.append(`SELECT ${i} AS v`);
      const files = await logFiles(dir, 'cleanup');
      assert.deepEqual(
        files.filter((f) => f.endsWith('.json')),
        ['00000000000000000005.json', '00000000000000000006.json', '00000000000000000007.json'],
      );
      assert.ok(files.includes('00000000000000000005.checkpoint.parquet'));
      const lake2 = await Lake.open(dir);
      try {
        const t2 = (await lake2.table('cleanup'))!;
        assert.equal(await count(lake2, await (await t2.snapshot()).scan()), 7);
        assert.equal(await count(lake2, await (await t2.snapshot({ version: 5 })).scan()), 5);
        await assert.rejects(t2.snapshot({ version: 3 }), /cannot reconstruct version 3/);
      } finally {
        lake2.close();
      }
    } finally {
      lake.close();
    }
  });

  test('history lists commitInfo per version, newest first', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('hist', {});
      await t.append(`SELECT 1 AS v`, { txn: { appId: 'a', version: 1 }, commitInfo: { batch: 'b1' } });
      await t.deleteWhere('v = 1');
      const h = await t.history();
      assert.deepEqual(
        h.map((e) => [e.version, e.operation]),
        [
          [2, 'DELETE'],
          [1, 'WRITE'],
          [0, 'CREATE TABLE'],
        ],
      );
      assert.deepEqual(h[1].txn, [{ appId: 'a', version: 1 }]);
      assert.equal(h[1].operationMetrics?.numOutputRows, '1');
      assert.equal((await t.history(1)).length, 1);
    } finally {
      lake.close();
    }
  });

  test('optimize compacts small files per partition and keeps every row', async () => {
    const { lake } = await tempLake();
    try {
      const t = await lake.createTable('opt', {
        partitionColumns: ['p'],
        properties: { 'delta.enableChangeDataFeed': 'true' },
      });
      for (let i = 0; i < 6; i++) await t.append(`SELECT ${i} AS v, ${i % 2} AS p`);
      const before = await rows(lake, `SELECT v, p FROM ${await (await t.snapshot()).scan()} ORDER BY v`);
      assert.equal((await t.snapshot()).files.length, 6);
      const v = await t.latestVersion();
      const res = await t.optimize();
      assert.equal(res.metrics.numRemovedFiles, 6);
      assert.equal(res.metrics.numAddedFiles, 2);
      const snap = await t.snapshot();
      assert.equal(snap.files.length, 2);
      assert.ok(snap.files.every((f) => f.dataChange === false));
      assert.deepEqual(await rows(lake, `SELECT v, p FROM ${await snap.scan()} ORDER BY v`), before);
      assert.equal((await t.history(1))[0].operation, 'OPTIMIZE');
      // no data changed: the change feed of the optimize commit is empty
      assert.equal(await count(lake, await t.changes(v)), 0);
      assert.equal((await t.optimize()).metrics.numAddedFiles, 0);
    } finally {
      lake.close();
    }
  });

  test('vacuum deletes only unreferenced files past retention, never the log', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('vac', {});
      await t.append(`SELECT 1 AS v`);
      await t.append(`SELECT 2 AS v`);
      const old = (await t.snapshot()).files.map((f) => f.path);
      await t.overwrite(`SELECT 3 AS v`);
      const live = (await t.snapshot()).files.map((f) => f.path);
      await fs.writeFile(path.join(dir, 'vac', 'stray.parquet'), 'x');
      // just-removed files are protected by their tombstones under the default retention
      assert.deepEqual((await t.vacuum()).deleted, []);
      const dry = await t.vacuum({ retentionHours: 0, dryRun: true, force: true });
      assert.deepEqual(dry.deleted.sort(), [...old, 'stray.parquet'].sort());
      for (const p of old) await fs.access(path.join(dir, 'vac', p));
      const res = await t.vacuum({ retentionHours: 0, force: true });
      assert.deepEqual(res.deleted.sort(), [...old, 'stray.parquet'].sort());
      for (const p of old) await assert.rejects(fs.access(path.join(dir, 'vac', p)));
      for (const p of live) await fs.access(path.join(dir, 'vac', p));
      assert.equal((await logFiles(dir, 'vac')).length, 4);
      assert.equal(await count(lake, await (await t.snapshot()).scan()), 1);
    } finally {
      lake.close();
    }
  });

  test('vacuum refuses a retention below the table minimum unless forced', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('vacmin', {});
      await t.append(`SELECT 1 AS v`);
      await t.overwrite(`SELECT 2 AS v`);
      await assert.rejects(t.vacuum({ retentionHours: 0 }), (err: unknown) => {
        assert.ok(err instanceof VacuumRetentionError);
        assert.equal(err.minimumHours, 168);
        assert.match(err.message, /retention of 0 h, below the table's 168 h.*force/);
        return true;
      });
      await assert.rejects(t.vacuum({ retentionHours: 167.5, dryRun: true }), VacuumRetentionError);
      await assert.rejects(t.vacuum({ retentionHours: -1, force: true }), /non-negative/);
      assert.deepEqual((await t.vacuum({ retentionHours: 168 })).deleted, []);
      assert.equal((await t.vacuum({ retentionHours: 0, dryRun: true, force: true })).deleted.length, 1);
      // the minimum (and the default) follow delta.deletedFileRetentionDuration
      const short = await lake.createTable('vacshort', {
        properties: { 'delta.deletedFileRetentionDuration': 'interval 1 hours' },
      });
      await short.append(`SELECT 1 AS v`);
      await short.overwrite(`SELECT 2 AS v`);
      await assert.rejects(short.vacuum({ retentionHours: 0.5 }), /below the table's 1 h/);
      assert.deepEqual((await short.vacuum({ retentionHours: 1 })).deleted, []);
      assert.equal((await logFiles(dir, 'vacshort')).length, 3);
    } finally {
      lake.close();
    }
  });
});

function runChild(
  args: string[],
  env: Record<string, string> = {},
): {
  done: Promise<{ code: number | null; out: string; err: string }>;
  child: ReturnType<typeof spawn>;
  output: () => string;
} {
  const child = spawn(process.execPath, [path.join(here, 'test-writer-child.js'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, out, err })),
  );
  return { done, child, output: () => out };
}

describe('concurrency and crashes', () => {
  test('two writer processes append to one table at once', async () => {
    const { dir, lake } = await tempLake();
    try {
      await lake.createTable('Conc', { partitionColumns: ['part'] });
      const a = runChild([dir, 'Conc', 'writer-a', '0', '8', '50']);
      const b = runChild([dir, 'Conc', 'writer-b', '100', '8', '50']);
      const [ra, rb] = await Promise.all([a.done, b.done]);
      assert.equal(ra.code, 0, ra.err);
      assert.equal(rb.code, 0, rb.err);
      const t = (await lake.table('conc'))!;
      const snap = await t.snapshot();
      assert.equal(snap.version, 16);
      const commits = (await logFiles(dir, 'conc')).filter((f) => f.endsWith('.json'));
      assert.deepEqual(
        commits,
        Array.from({ length: 17 }, (_, i) => `${String(i).padStart(20, '0')}.json`),
      );
      for (let v = 0; v <= 16; v++) assert.ok((await readActions(dir, 'conc', v)).some((x) => x.commitInfo)); // every commit parses
      const r = await rows(
        lake,
        `SELECT writer, count(*) AS n, count(DISTINCT id) AS d FROM ${await snap.scan()} GROUP BY writer ORDER BY writer`,
      );
      assert.deepEqual(r, [
        { writer: 'writer-a', n: '400', d: '400' },
        { writer: 'writer-b', n: '400', d: '400' },
      ]);
      assert.equal(await t.txnVersion('writer-a'), 7);
      assert.equal(await t.txnVersion('writer-b'), 107);
    } finally {
      lake.close();
    }
  });

  test('conflicting deletes: the loser fails cleanly and commits nothing', async () => {
    const { dir, lake } = await tempLake();
    const lake2 = await Lake.open(dir);
    try {
      const t = await lake.createTable('dd', {});
      await t.append(`SELECT range AS id FROM range(10)`);
      const t2 = (await lake2.table('dd'))!;
      await t2.snapshot();
      let winner: Promise<unknown> | undefined;
      await assert.rejects(
        t.deleteWhere('id < 5', {
          // a second writer deletes from the same file after this delete read it
          beforeCommit: async () => {
            winner = t2.deleteWhere('id = 9');
            await winner;
          },
        }),
        (err: Error) => {
          assert.equal(err.name, 'ConcurrentModificationError');
          assert.match(
            err.message,
            /DELETE read version 1, but concurrent commit 2 \(DELETE\) removed the file/,
          );
          return true;
        },
      );
      assert.equal(await t.latestVersion(), 2);
      assert.deepEqual(
        (await rows(lake, `SELECT id FROM ${await (await t.snapshot()).scan()} ORDER BY id`)).map((r) =>
          Number(r.id),
        ),
        [0, 1, 2, 3, 4, 5, 6, 7, 8],
      );
      // an append racing an append is no conflict
      const res = await t.append(`SELECT 100 AS id`, {
        beforeCommit: async () => void (await t2.append(`SELECT 200 AS id`)),
      });
      assert.equal(res.version, 4);
    } finally {
      lake.close();
      lake2.close();
    }
  });

  test('kill -9 between the Parquet write and the commit leaves a readable table', async () => {
    const { dir, lake } = await tempLake();
    try {
      const t = await lake.createTable('Crash', { partitionColumns: ['part'] });
      await t.append(
        `SELECT CAST(range AS BIGINT) AS id, 'seed' AS writer, CAST(range % 2 AS INTEGER) AS part FROM range(4)`,
      );
      const c = runChild([dir, 'Crash', 'crasher', '1', '1', '20'], { TALON_TEST_CRASH_BEFORE_COMMIT: '1' });
      for (let i = 0; i < 600 && !c.output().includes('ready to commit'); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(c.output(), /ready to commit crash v2/);
      c.child.kill('SIGKILL');
      const res = await c.done;
      assert.equal(res.code, null);
      // the orphaned data files are on disk, but not in the table
      const t2 = (await lake.table('crash'))!;
      const snap = await t2.snapshot();
      assert.equal(snap.version, 1);
      assert.equal(await count(lake, await snap.scan()), 4);
      const onDisk = async () =>
        (await fs.readdir(path.join(dir, 'crash'), { recursive: true })).filter((f) =>
          String(f).endsWith('.parquet'),
        ).length;
      assert.equal(await onDisk(), 2 + 2);
      // the retry (same txn) commits once; a second replay is skipped
      const again = runChild([dir, 'Crash', 'crasher', '1', '1', '20']);
      assert.equal((await again.done).code, 0);
      const replay = runChild([dir, 'Crash', 'crasher', '1', '1', '20']);
      const rr = await replay.done;
      assert.match(rr.out, /skipped/);
      const after = await t2.snapshot();
      assert.equal(after.version, 2);
      assert.equal(await count(lake, await after.scan()), 24);
      // vacuum removes the orphans, keeps the live files
      const vac = await t2.vacuum({ retentionHours: 0, force: true });
      assert.equal(vac.deleted.length, 2);
      assert.equal(await onDisk(), after.files.length);
      assert.equal(await count(lake, await (await t2.snapshot()).scan()), 24);
    } finally {
      lake.close();
    }
  });
});

describe('foreign tables', () => {
  let dir: string;
  let lake: Lake;
  before(async () => {
    ({ dir, lake } = await tempLake());
  });
  after(() => lake.close());

  async function foreign(
    name: string,
    protocol: object,
    configuration: Record<string, string> = {},
  ): Promise<void> {
    const log = path.join(dir, name, '_delta_log');
    await fs.mkdir(log, { recursive: true });
    const md = {
      id: 'x',
      format: { provider: 'parquet', options: {} },
      schemaString: JSON.stringify({
        type: 'struct',
        fields: [{ name: 'a', type: 'long', nullable: true, metadata: {} }],
      }),
      partitionColumns: [],
      configuration,
    };
    await fs.writeFile(
      path.join(log, '00000000000000000000.json'),
      `${JSON.stringify({ protocol })}\n${JSON.stringify({ metaData: md })}\n`,
    );
  }

  test('unsupported reader features are refused by name', async () => {
    await foreign('dv', {
      minReaderVersion: 3,
      minWriterVersion: 7,
      readerFeatures: ['deletionVectors'],
      writerFeatures: ['deletionVectors'],
    });
    await foreign('cm', { minReaderVersion: 2, minWriterVersion: 5 }, { 'delta.columnMapping.mode': 'name' });
    await foreign('future', { minReaderVersion: 4, minWriterVersion: 8 });
    await foreign('ntz', {
      minReaderVersion: 3,
      minWriterVersion: 7,
      readerFeatures: ['timestampNtz'],
      writerFeatures: ['timestampNtz'],
    });
    await assert.rejects((await lake.table('dv'))!.snapshot(), /deletionVectors/);
    await assert.rejects((await lake.table('cm'))!.snapshot(), /columnMapping/);
    await assert.rejects((await lake.table('future'))!.snapshot(), /reader version 4/);
    await assert.rejects((await lake.table('dv'))!.append('SELECT 1 AS a'), /deletionVectors/);
    assert.equal((await (await lake.table('ntz'))!.snapshot()).version, 0);
    const views = await lake.registerViews();
    assert.ok(views.includes('ntz') && !views.includes('dv'));
    assert.match(lake.viewErrors.get('dv')!, /deletionVectors/);
    const summary = await lake.summary();
    assert.match(summary.find((x) => x.name === 'dv')!.error!, /deletionVectors/);
    assert.equal(summary.find((x) => x.name === 'ntz')!.error, undefined);
  });
});

describe('optimistic concurrency: conflict rules', () => {
  test('appends that both add columns are rebased onto each other', async () => {
    const { dir, lake } = await tempLake();
    const lake2 = await Lake.open(dir);
    try {
      const t = await lake.createTable('evo2', {});
      await t.append(`SELECT 1 AS id`);
      const t2 = (await lake2.table('evo2'))!;
      const res = await t.append(`SELECT 2 AS id, 'a' AS col_a`, {
        beforeCommit: async () => void (await t2.append(`SELECT 3 AS id, 7 AS col_b`)),
      });
      assert.equal(res.version, 3);
      const snap = await t.snapshot();
      assert.deepEqual(
        snap.schema.fields.map((f) => f.name),
        ['id', 'col_b', 'col_a'],
      );
      assert.deepEqual(await rows(lake, `SELECT * FROM ${await snap.scan()} ORDER BY id`), [
        { id: 1, col_b: null, col_a: null },
        { id: 2, col_b: null, col_a: 'a' },
        { id: 3, col_b: 7, col_a: null },
      ]);
      // incompatible concurrent schema: the append fails cleanly
      await assert.rejects(
        t.append(`SELECT 4 AS id, 'x' AS col_c`, {
          beforeCommit: async () => void (await t2.append(`SELECT 5 AS id, 1 AS col_c`)),
        }),
        /concurrent commit 4 \(WRITE\) changed the schema incompatibly/,
      );
    } finally {
      lake.close();
      lake2.close();
    }
  });

  test('a delete conflicts with a concurrent append it could have matched, not with others', async () => {
    const { dir, lake } = await tempLake();
    const lake2 = await Lake.open(dir);
    try {
      const t = await lake.createTable('dp', { partitionColumns: ['day'] });
      await t.append(`SELECT i AS id, CAST(i % 2 AS INTEGER) AS day FROM range(6) t(i)`);
      const t2 = (await lake2.table('dp'))!;
      const ok = await t.deleteWhere('day = 0', {
        beforeCommit: async () => void (await t2.append(`SELECT 100 AS id, 1 AS day`)),
      });
      assert.equal(ok.version, 3);
      await assert.rejects(
        t.deleteWhere('day = 1', {
          beforeCommit: async () => void (await t2.append(`SELECT 101 AS id, 1 AS day`)),
        }),
        /added data .* that this operation should have seen/,
      );
      assert.deepEqual(
        (await rows(lake, `SELECT id FROM ${await (await t.snapshot()).scan()} ORDER BY id`)).map((r) =>
          Number(r.id),
        ),
        [1, 3, 5, 100, 101],
      );
      // optimize loses to a delete that removed the files it compacted
      for (let i = 0; i < 3; i++) await t.append(`SELECT ${200 + i} AS id, 0 AS day`);
      await assert.rejects(
        t.optimize({ beforeCommit: async () => void (await t2.deleteWhere('id = 200')) }),
        /ConcurrentModificationError|removed the file/,
      );
    } finally {
      lake.close();
      lake2.close();
    }
  });

  test('the same txn committed concurrently lands once', async () => {
    const { dir, lake } = await tempLake();
    const lake2 = await Lake.open(dir);
    try {
      const t = await lake.createTable('tx', {});
      const t2 = (await lake2.table('tx'))!;
      const res = await t.append(`SELECT 1 AS id`, {
        txn: { appId: 'q', version: 1 },
        beforeCommit: async () =>
          void (await t2.append(`SELECT 1 AS id`, { txn: { appId: 'q', version: 1 } })),
      });
      assert.equal(res.skipped, true);
      assert.equal(await count(lake, await (await t.snapshot()).scan()), 1);
      // the loser's uploaded file was removed again
      const parquet = (await fs.readdir(path.join(dir, 'tx'))).filter((f) => f.endsWith('.parquet'));
      assert.equal(parquet.length, 1);
    } finally {
      lake.close();
      lake2.close();
    }
  });
});

test('merge targetFilter: files its stats rule out are not read; rewritten files keep their rows outside it', async () => {
  const { dir, lake } = await tempLake();
  try {
    const t = await lake.createTable('mt', {});
    for (const g of [1, 2, 3])
      await t.append(
        `SELECT * FROM (VALUES ('k${g}a', ${g * 10}, 'v'), ('k${g}b', ${g * 10 + 5}, 'v')) v(k, g, val)`,
      );
    // The file holding g = 20 / 25 becomes unreadable: a merge that reads it fails.
    const snap = await t.snapshot();
    const second = snap.files.find(
      (f) => (JSON.parse(f.stats!) as { minValues: { g: number } }).minValues.g === 20,
    )!;
    await fs.rm(path.join(dir, 'mt', second.path));
    const src = `SELECT * FROM (VALUES ('k3a', 30, 'new'), ('k9', 30, 'new')) v(k, g, val)`;
    await assert.rejects(t.merge(src, { on: ['k'], whenMatched: 'ignore', whenNotMatched: 'insert' }));
    const ignore = await t.merge(src, {
      on: ['k'],
      whenMatched: 'ignore',
      whenNotMatched: 'insert',
      targetFilter: 'g >= 30',
    });
    assert.equal(ignore.metrics.numTargetRowsInserted, 1, 'k3a matched in the file of g 30..35, k9 inserted');
    // An update rewrites the file of g = 30 / 35 whole: k3b (g 35) is outside the filter and kept.
    const upd = await t.merge(`SELECT * FROM (VALUES ('k3a', 30, 'upd')) v(k, g, val)`, {
      on: ['k'],
      whenMatched: 'update',
      whenNotMatched: 'insert',
      targetFilter: 'g >= 30 AND g < 33',
    });
    assert.equal(upd.metrics.numTargetRowsUpdated, 1);
    const files = (await t.snapshot()).files
      .filter((f) => f.path !== second.path)
      .map((f) => literal(path.join(dir, 'mt', f.path)));
    assert.deepEqual(
      await rows(lake, `SELECT k, g, val FROM read_parquet([${files.join(', ')}]) ORDER BY k`),
      [
        { k: 'k1a', g: 10, val: 'v' },
        { k: 'k1b', g: 15, val: 'v' },
        { k: 'k3a', g: 30, val: 'upd' },
        { k: 'k3b', g: 35, val: 'v' },
        { k: 'k9', g: 30, val: 'new' },
      ],
    );
  } finally {
    lake.close();
  }
});
