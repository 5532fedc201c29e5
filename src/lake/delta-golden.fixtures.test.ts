/**
 * Reads the public Delta golden tables (../shared/fixtures/delta-golden; SOURCES.md states what
 * each must read as). The fixtures are not copied: a temp lake folder holds symlinks to them.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Lake } from './lake.js';
import { DeltaLog } from './log.js';
import type { DeltaTable, Snapshot } from './table.js';
import { fixturesRoot } from '../testing/fixtures.js';

const GOLDEN = path.join(fixturesRoot(), 'delta-golden');
let dir: string;
let lake: Lake;

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'talon-golden-'));
  for (const origin of ['delta', 'delta-rs']) {
    for (const name of await fs.readdir(path.join(GOLDEN, origin))) {
      if (!existsSync(path.join(GOLDEN, origin, name, '_delta_log'))) continue;
      await fs.symlink(path.join(GOLDEN, origin, name), path.join(dir, name.toLowerCase()));
    }
  }
  lake = await Lake.open(dir);
});

after(async () => {
  lake.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function table(name: string): Promise<DeltaTable> {
  const t = await lake.table(name);
  assert.ok(t, `golden table ${name}`);
  return t;
}

async function q(sql: string): Promise<Record<string, unknown>[]> {
  return lake.db.allJson(sql);
}

async function read(
  name: string,
  select: string,
  at?: { version?: number },
): Promise<Record<string, unknown>[]> {
  const snap = await (await table(name)).snapshot(at);
  return q(select.replace('$T', await snap.scan()));
}

async function ids(name: string, col: string, at?: { version?: number }): Promise<number[]> {
  return (await read(name, `SELECT ${col} AS v FROM $T ORDER BY 1`, at)).map((r) => Number(r.v));
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** The state replayed from the newest checkpoint with every older JSON commit hidden. */
async function fromCheckpointOnly(name: string): Promise<{ version: number; files: number }> {
  const log = new DeltaLog(lake.store, lake.db, name.toLowerCase());
  const listing = await log.list();
  const cp = listing.checkpoints[0];
  assert.ok(cp, `${name} has a checkpoint`);
  const commits = new Map([...listing.commits].filter(([v]) => v > cp.version));
  const s = await log.loadState(undefined, undefined, { ...listing, commits, latest: listing.latest });
  return { version: s.version, files: s.files.size };
}

describe('delta golden tables: log replay and checkpoints', () => {
  test('basic-with-inserts-deletes-checkpoint', async () => {
    const expected = [
      ...range(0, 5),
      ...range(10, 15),
      ...range(20, 25),
      ...range(30, 35),
      ...range(40, 45),
      ...range(50, 66),
    ];
    assert.deepEqual(await ids('basic-with-inserts-deletes-checkpoint', 'id'), expected);
    assert.equal((await (await table('basic-with-inserts-deletes-checkpoint')).snapshot()).version, 13);
    assert.deepEqual(await fromCheckpointOnly('basic-with-inserts-deletes-checkpoint'), {
      version: 13,
      files: 7,
    });
    assert.equal((await ids('basic-with-inserts-deletes-checkpoint', 'id', { version: 6 })).length, 40);
  });

  test('basic-with-inserts-overwrite-restore', async () => {
    assert.deepEqual(await ids('basic-with-inserts-overwrite-restore', 'id'), range(0, 200));
    assert.deepEqual(
      await ids('basic-with-inserts-overwrite-restore', 'id', { version: 2 }),
      range(500, 1000),
    );
  });

  test('checkpoint (log only): version 14, one active file', async () => {
    const snap = await (await table('checkpoint')).snapshot();
    assert.equal(snap.version, 14);
    assert.deepEqual(
      snap.files.map((f) => f.path),
      ['15'],
    );
    assert.deepEqual(await fromCheckpointOnly('checkpoint'), { version: 14, files: 1 });
  });

  test('corrupted-last-checkpoint-kernel: an empty _last_checkpoint is ignored', async () => {
    assert.deepEqual(await ids('corrupted-last-checkpoint-kernel', 'id'), range(0, 100));
  });

  test('multi-part-checkpoint', async () => {
    assert.deepEqual(await ids('multi-part-checkpoint', 'id'), [0, ...range(0, 30)]);
    const log = new DeltaLog(lake.store, lake.db, 'multi-part-checkpoint');
    assert.equal((await log.list()).checkpoints[0].kind, 'multipart');
    assert.deepEqual(await fromCheckpointOnly('multi-part-checkpoint'), { version: 1, files: 10 });
  });

  test('v2-checkpoint-parquet (UUID-named checkpoint with sidecars)', async () => {
    assert.deepEqual(await ids('v2-checkpoint-parquet', 'id'), range(0, 10));
    assert.deepEqual(await fromCheckpointOnly('v2-checkpoint-parquet'), { version: 2, files: 4 });
  });

  test('table_failed_last_checkpoint_update: a stale _last_checkpoint', async () => {
    const snap = await (await table('table_failed_last_checkpoint_update')).snapshot();
    assert.equal(snap.version, 3);
    const rows = await q(
      `SELECT id, count(*) AS n, min(price) AS p, bool_or(deleted) AS d FROM ${await snap.scan()} GROUP BY id ORDER BY id`,
    );
    assert.deepEqual(
      rows,
      ['1', '2', '3', '4', '5'].map((id) => ({ id, n: '4', p: String(Number(id) - 1), d: false })),
    );
    assert.deepEqual(await fromCheckpointOnly('table_failed_last_checkpoint_update'), {
      version: 3,
      files: 4,
    });
  });

  test('simple_table_with_checkpoint', async () => {
    assert.deepEqual(await ids('simple_table_with_checkpoint', 'version'), [0, 0, ...range(1, 10)]);
    assert.deepEqual(await fromCheckpointOnly('simple_table_with_checkpoint'), { version: 10, files: 11 });
    const h = await (await table('simple_table_with_checkpoint')).history(5);
    assert.equal(h.length, 5);
  });

  test('with_checkpoint_no_last_checkpoint (log only)', async () => {
    const snap = await (await table('with_checkpoint_no_last_checkpoint')).snapshot();
    assert.equal(snap.version, 3);
    assert.equal(snap.files.length, 1);
    assert.match(snap.files[0].path, /^part-00000-70b1dcdf/);
    assert.equal(snap.numRows, 5);
  });

  test('delta-1.2.1-only-struct-stats: stats only as stats_parsed in the checkpoint', async () => {
    assert.deepEqual(await ids('delta-1.2.1-only-struct-stats', 'integer'), range(0, 12));
    const snap = await (await table('delta-1.2.1-only-struct-stats')).snapshot();
    assert.equal(snap.numRows, 12);
    assert.ok(snap.schema.fields.some((f) => f.name === 'new_column'));
  });

  test('log-replay-latest-metadata-protocol', async () => {
    const snap = await (await table('log-replay-latest-metadata-protocol')).snapshot();
    assert.deepEqual(
      snap.schema.fields.map((f) => f.name),
      ['col1', 'col2'],
    );
    assert.equal(await q(`SELECT count(*) AS n FROM ${await snap.scan()}`).then((r) => r[0].n), '40');
  });

  test('deltalog-getChanges: txn versions', async () => {
    const t = await table('deltalog-getChanges');
    assert.equal(await t.txnVersion('fakeAppId'), 3);
    assert.equal(await t.txnVersion('nonExistentAppId'), undefined);
  });

  test('delta-rs delta-0.2.0 / 0.8.0 / 0.8-empty / simple_table: time travel and removes', async () => {
    assert.deepEqual(await ids('delta-0.2.0', 'value'), [1, 1, 2, 2, 3, 3]);
    assert.deepEqual(await ids('delta-0.2.0', 'value', { version: 2 }), [1, 2, 3]);
    const files = (await (await table('delta-0.2.0')).snapshot()).files
      .map((f) => f.path.slice(0, 19))
      .sort();
    assert.deepEqual(files, ['part-00000-7c2deba3', 'part-00000-cb6b150b', 'part-00001-c373a5bd']);
    assert.deepEqual(await ids('delta-0.8.0', 'value'), [0, 1, 2, 4]);
    assert.deepEqual(await ids('delta-0.8.0', 'value', { version: 0 }), [0, 1, 2, 3, 4]);
    assert.deepEqual(await ids('delta-0.8-empty', '"column"'), []);
    assert.deepEqual(await ids('simple_table', 'id'), [5, 7, 9]);
    assert.deepEqual(await ids('simple_table', 'id', { version: 0 }), [0, 1, 2, 3, 4]);
    assert.deepEqual(await ids('simple_table', 'id', { version: 3 }), [5, 7, 9, 106, 108]);
    assert.equal((await (await table('simple_table')).snapshot()).version, 4); // .tmp/…5.json is not a commit
  });

  test('time-travel-schema-changes-b', async () => {
    assert.deepEqual(await ids('time-travel-schema-changes-b', 'id', { version: 0 }), range(0, 10));
    const rows = await read('time-travel-schema-changes-b', 'SELECT id, part FROM $T ORDER BY id');
    assert.equal(rows.length, 20);
    assert.equal(rows[3].part, null);
    assert.equal(rows[15].part, '15');
  });
});

describe('delta golden tables: data types', () => {
  test('data-reader-primitives', async () => {
    const rows = await read('data-reader-primitives', 'SELECT * FROM $T ORDER BY as_int NULLS FIRST');
    assert.equal(rows.length, 11);
    assert.ok(Object.values(rows[0]).every((v) => v === null));
    for (let i = 0; i < 10; i++) {
      const hex = `\\x${i.toString(16).padStart(2, '0').toUpperCase()}`;
      assert.deepEqual(rows[i + 1], {
        as_int: i,
        as_long: String(i),
        as_byte: i,
        as_short: i,
        as_boolean: i % 2 === 0,
        as_float: i,
        as_double: i,
        as_string: String(i),
        as_binary: hex + hex,
        as_big_decimal: String(i),
      });
    }
  });

  test('data-reader-array-primitives', async () => {
    const rows = await read('data-reader-array-primitives', 'SELECT * FROM $T ORDER BY as_array_int[1]');
    assert.equal(rows.length, 10);
    assert.deepEqual(rows[7], {
      as_array_int: [7],
      as_array_long: ['7'],
      as_array_byte: [7],
      as_array_short: [7],
      as_array_boolean: [false],
      as_array_float: [7],
      as_array_double: [7],
      as_array_string: ['7'],
      as_array_binary: ['\\x07\\x07'],
      as_array_big_decimal: ['7'],
    });
  });

  test('data-reader-array-complex-objects', async () => {
    const rows = await read('data-reader-array-complex-objects', 'SELECT * FROM $T ORDER BY i');
    assert.equal(rows.length, 10);
    const i = 4;
    const l3 = [
      [
        [i, i, i],
        [i, i, i],
      ],
      [
        [i, i, i],
        [i, i, i],
      ],
    ];
    assert.deepEqual(rows[i]['3d_int_list'], l3);
    assert.deepEqual(rows[i]['4d_int_list'], [l3, l3]);
    assert.deepEqual(rows[i].list_of_maps, [
      [{ key: String(i), value: String(i) }],
      [{ key: String(i), value: String(i) }],
    ]);
    assert.deepEqual(rows[i].list_of_records, [{ val: i }, { val: i }, { val: i }]);
  });

  test('data-reader-map', async () => {
    const rows = await read('data-reader-map', 'SELECT * FROM $T ORDER BY i');
    assert.equal(rows.length, 10);
    assert.deepEqual(rows[3], {
      i: 3,
      a: [{ key: 3, value: 3 }],
      b: [{ key: '3', value: 3 }],
      c: [{ key: 3, value: false }],
      d: [{ key: 3, value: 3 }],
      e: [{ key: '3', value: '3' }],
      f: [{ key: 3, value: [{ val: 3 }, { val: 3 }, { val: 3 }] }],
    });
  });

  test('data-reader-nested-struct', async () => {
    const rows = await read('data-reader-nested-struct', 'SELECT * FROM $T ORDER BY b');
    assert.deepEqual(
      rows,
      range(0, 10).map((i) => ({
        a: { aa: String(i), ab: String(i), ac: { aca: i, acb: String(i) } },
        b: i,
      })),
    );
  });

  test('data-reader-partition-values: 12 partition column types, null partitions', async () => {
    const t = await table('data-reader-partition-values');
    const snap = await t.snapshot();
    const rows = await q(
      `SELECT * EXCLUDE (as_timestamp), epoch_ms(as_timestamp) AS ts FROM ${await snap.scan()} ORDER BY as_int NULLS LAST`,
    );
    assert.equal(rows.length, 3);
    for (const i of [0, 1]) {
      assert.deepEqual(rows[i], {
        as_int: i,
        as_long: String(i),
        as_byte: i,
        as_short: i,
        as_boolean: i % 2 === 0,
        as_float: i,
        as_double: i,
        as_string: String(i),
        as_string_lit_null: 'null',
        as_date: '2021-09-08',
        as_big_decimal: String(i),
        as_list_of_records: [{ val: i }, { val: i }, { val: i }],
        as_nested_struct: { aa: String(i), ab: String(i), ac: { aca: i, acb: String(i) } },
        value: String(i),
        ts: '1631099471000',
      });
    }
    const nullRow = rows[2];
    for (const c of [
      'as_int',
      'as_long',
      'as_boolean',
      'as_string',
      'as_string_lit_null',
      'as_date',
      'ts',
      'as_big_decimal',
    ]) {
      assert.equal(nullRow[c], null, c);
    }
    assert.equal(nullRow.value, '2');
    // partition pruning on every kind of partition column
    const one = (s: Snapshot, f: string) => s.prune(f).length;
    assert.equal(one(snap, 'as_int = 1'), 1);
    assert.equal(one(snap, 'as_long = 1'), 1);
    assert.equal(one(snap, 'as_boolean = false'), 1);
    assert.equal(one(snap, "as_string = '1'"), 1);
    assert.equal(one(snap, 'as_double = 1'), 1);
    assert.equal(one(snap, "as_date = DATE '2021-09-08'"), 2);
    assert.equal(one(snap, "as_timestamp = TIMESTAMP '2021-09-08 11:11:11'"), 2);
    assert.equal(one(snap, 'as_int = NULL'), 0);
    assert.equal(one(snap, 'as_int IS NULL'), 1);
    const hit = await q(`SELECT value FROM ${await snap.scan("as_string = '1'")}`);
    assert.deepEqual(hit, [{ value: '1' }]);
  });

  test('data-reader-timestamp_ntz (reader feature timestampNtz)', async () => {
    const t = await table('data-reader-timestamp_ntz');
    const snap = await t.snapshot();
    const a = '1637202600123456';
    const b = '1373043660123456';
    const rows = await q(
      `SELECT id, epoch_us(tsNtz)::VARCHAR AS x, epoch_us(tsNtzPartition)::VARCHAR AS p FROM ${await snap.scan()} ORDER BY id`,
    );
    assert.deepEqual(
      rows.map((r) => [r.id, r.x, r.p]),
      [
        [0, a, a],
        [1, b, a],
        [2, null, a],
        [3, a, b],
        [4, b, b],
        [5, null, b],
        [6, a, null],
        [7, b, null],
        [8, null, null],
      ],
    );
    assert.equal(
      await q(
        `SELECT count(*) AS n FROM ${await snap.scan("tsNtzPartition = TIMESTAMP '2021-11-18 02:30:00.123456'")}`,
      ).then((r) => r[0].n),
      '3',
    );
    assert.equal(
      await q(
        `SELECT count(*) AS n FROM ${await snap.scan("tsNtzPartition >= '2013-07-05 17:01:00.123456'")}`,
      ).then((r) => r[0].n),
      '6',
    );
    assert.equal(
      await q(`SELECT count(*) AS n FROM ${await snap.scan('tsNtzPartition IS NULL')}`).then((r) => r[0].n),
      '3',
    );
  });

  for (const kind of ['INT96', 'TIMESTAMP_MICROS']) {
    test(`kernel-timestamp-${kind}`, async () => {
      const rows = await read(
        `kernel-timestamp-${kind}`,
        'SELECT id, epoch_us(part)::VARCHAR AS p, epoch_us(time)::VARCHAR AS t FROM $T ORDER BY id',
      );
      assert.deepEqual(
        rows.map((r) => [r.id, r.p, r.t]),
        [
          [0, '1577866150001000', '1580544550000000'],
          [1, '1633075760000000', '915181200000000'],
          [2, '1633075760000000', '946717200000000'],
          [3, '-31536000000000', '-31536000000000'],
          [4, null, null],
        ],
      );
    });
  }

  test('table_with_edge_timestamps (INT96 in year 9999)', async () => {
    const rows = await read(
      'table_with_edge_timestamps',
      'SELECT BIG_DATE::VARCHAR AS b, NORMAL_DATE::VARCHAR AS n, SOME_VALUE AS v FROM $T ORDER BY v',
    );
    assert.deepEqual(rows, [
      { b: '9999-12-31 00:00:00+00', n: '2022-01-01 00:00:00+00', v: 1 },
      { b: '9999-12-30 00:00:00+00', n: '2022-02-01 00:00:00+00', v: 2 },
    ]);
  });
});

describe('delta golden tables: partitions and skipping', () => {
  test('delta-0.8.0-partitioned', async () => {
    const t = await table('delta-0.8.0-partitioned');
    const snap = await t.snapshot();
    const rows = await q(`SELECT year, month, day, value FROM ${await snap.scan()} ORDER BY value`);
    assert.deepEqual(
      rows.map((r) => `${r.year}/${r.month}/${r.day}:${r.value}`),
      ['2020/1/1:1', '2020/2/3:2', '2020/2/5:3', '2021/4/5:4', '2021/12/4:5', '2021/12/20:6', '2021/12/20:7'],
    );
    assert.deepEqual(
      (await q(`SELECT value FROM ${await snap.scan("year = '2021'")} ORDER BY value`)).map((r) => r.value),
      ['4', '5', '6', '7'],
    );
    assert.equal(snap.prune("year = '2021' AND month = '12'").length, 2);
    assert.equal(snap.prune("month IN ('1', '4')").length, 2);
    assert.equal(snap.prune("month != '12'").length, 4);
  });

  test('delta-0.8.0-special-partition: / and space in partition values', async () => {
    const snap = await (await table('delta-0.8.0-special-partition')).snapshot();
    assert.deepEqual(await q(`SELECT x, y FROM ${await snap.scan()} ORDER BY y`), [
      { x: 'A/A', y: '1' },
      { x: 'B B', y: '2' },
    ]);
    const aa = snap.prune("x = 'A/A'");
    assert.equal(aa.length, 1);
    assert.match(aa[0].path, /^x=A%252FA\/part-00007-b350e235/);
    assert.equal(snap.prune("x = 'B B'").length, 1);
    assert.equal(snap.prune("x = 'c'").length, 0);
  });

  test('delta-0.8.0-null-partition and numeric partitions', async () => {
    const snap = await (await table('delta-0.8.0-null-partition')).snapshot();
    assert.deepEqual(await q(`SELECT k, v FROM ${await snap.scan()} ORDER BY v`), [
      { k: 'A', v: '1' },
      { k: null, v: '2' },
    ]);
    assert.match(snap.prune("k = 'A'")[0].path, /^k=A\//);
    assert.match(snap.prune('k IS NULL')[0].path, /^k=__HIVE_DEFAULT_PARTITION__\//);
    const num = await (await table('delta-0.8.0-numeric-partition')).snapshot();
    assert.deepEqual(await q(`SELECT x, y, z FROM ${await num.scan()} ORDER BY x`), [
      { x: '9', y: 9.9, z: 'a' },
      { x: '10', y: 10, z: 'b' },
    ]);
    assert.equal(num.prune("x <= '9'").length, 1);
    assert.equal(num.prune('y < 10.0').length, 1);
  });

  test('delta-2.2.0-partitioned-types', async () => {
    const snap = await (await table('delta-2.2.0-partitioned-types')).snapshot();
    assert.deepEqual(await q(`SELECT c1, c2, c3 FROM ${await snap.scan()} ORDER BY c1`), [
      { c1: 4, c2: 'c', c3: 5 },
      { c1: 5, c2: 'b', c3: 6 },
      { c1: 6, c2: 'a', c3: 4 },
    ]);
    assert.equal(snap.prune('c3 = 100').length, 0);
    assert.equal(snap.prune('c3 = 5').length, 1);
  });

  test('data-skipping-basic-stats-all-types', async () => {
    const snap = await (await table('data-skipping-basic-stats-all-types')).snapshot();
    const cases: [string, string, string, string][] = [
      ['as_int', '0', '-1', '1'],
      ['as_long', '0', '-1', '1'],
      ['as_byte', '0', '-1', '1'],
      ['as_short', '0', '-1', '1'],
      ['as_float', '0', '-1', '1'],
      ['as_double', '0', '-1', '1'],
      ['as_string', "'0'", "'!'", "'1'"],
      ['as_date', "DATE '2000-01-01'", "DATE '1999-01-01'", "DATE '2000-01-02'"],
      ['as_big_decimal', '0', '-1', '1'],
    ];
    for (const [c, v, lo, hi] of cases) {
      for (const hit of [`${c} = ${v}`, `${c} > ${lo}`, `${c} >= ${v}`, `${c} < ${hi}`, `${c} <= ${v}`]) {
        assert.equal(snap.prune(hit).length, 1, hit);
      }
      // Float bounds keep a rounding margin, so a float equal to the bound is not ruled out.
      const strict = c === 'as_float' ? [] : [`${c} > ${v}`, `${c} < ${v}`];
      for (const miss of [`${c} = ${lo}`, `${c} >= ${hi}`, `${c} <= ${lo}`, ...strict]) {
        assert.equal(snap.prune(miss).length, 0, miss);
      }
    }
    assert.equal(snap.prune('foo = 1').length, 1);
  });
});

describe('delta golden tables: change data feed', () => {
  test('cdf-table: 23 change rows from version 0', async () => {
    const t = await table('cdf-table');
    const rows = await q(
      `SELECT id, name, birthday::VARCHAR AS b, _change_type AS c, _commit_version AS v, _commit_timestamp::VARCHAR AS ts
         FROM ${await t.changes(-1)} ORDER BY v, c, id`,
    );
    assert.equal(rows.length, 23);
    const at = (v: string) => rows.filter((r) => r.v === v);
    assert.deepEqual(new Set(at('0').map((r) => r.ts)), new Set(['2023-12-22 17:10:18.828+00']));
    assert.deepEqual(new Set(at('3').map((r) => r.ts)), new Set(['2024-01-06 16:44:59.57+00']));
    assert.equal(at('0').filter((r) => r.c === 'insert').length, 10);
    assert.deepEqual(
      at('1').map((r) => [r.id, r.c, r.b]),
      [
        [2, 'update_postimage', '2023-12-22'],
        [3, 'update_postimage', '2023-12-22'],
        [4, 'update_postimage', '2023-12-22'],
        [2, 'update_preimage', '2023-12-23'],
        [3, 'update_preimage', '2023-12-23'],
        [4, 'update_preimage', '2023-12-23'],
      ],
    );
    assert.deepEqual(
      at('3').map((r) => [r.id, r.name, r.c, r.b]),
      [[7, 'Dennis', 'delete', '2023-12-29']],
    );
    assert.equal(await q(`SELECT count(*) AS n FROM ${await t.changes(-1, 1)}`).then((r) => r[0].n), '16');
    const latest = await read('cdf-table', 'SELECT id FROM $T ORDER BY id');
    assert.deepEqual(
      latest.map((r) => r.id),
      [1, 2, 3, 4, 5, 6, 8, 9, 10],
    );
  });

  test('simple_table_with_cdc: a version with cdc files is read from them only', async () => {
    const t = await table('simple_table_with_cdc');
    assert.deepEqual(await read('simple_table_with_cdc', 'SELECT id, name FROM $T'), [
      { id: 0, name: 'Mino' },
    ]);
    const rows = await q(
      `SELECT id, name, _change_type AS c, _commit_version AS v FROM ${await t.changes(0)} ORDER BY v, c DESC`,
    );
    assert.deepEqual(rows, [
      { id: 0, name: 'Mario', c: 'insert', v: '1' },
      { id: 0, name: 'Mario', c: 'update_preimage', v: '2' },
      { id: 0, name: 'Mino', c: 'update_postimage', v: '2' },
    ]);
  });
});

describe('delta golden tables: unsupported features fail by name', () => {
  for (const name of ['dv-partitioned-with-checkpoint', 'table-with-dv-small', 'table_with_deletion_logs']) {
    test(`${name} → deletionVectors`, async () => {
      await assert.rejects((await table(name)).snapshot(), /deletionVectors/);
      await assert.rejects(async () => (await table(name)).changes(-1), /deletionVectors/);
    });
  }
  for (const name of ['table-with-columnmapping-mode-name', 'table_with_column_mapping']) {
    test(`${name} → columnMapping`, async () => {
      await assert.rejects((await table(name)).snapshot(), /columnMapping/);
    });
  }
});
