import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lake } from '../lake/lake.js';
import { openTempLake } from '../engine/test-support.js';
import { upsertRows, type UpsertSpec } from './upsert.js';

const SPEC: UpsertSpec = {
  table: 'keyed',
  keys: ['k'],
  columns: [
    { name: 'k', type: 'VARCHAR' },
    { name: 'v', type: 'BIGINT' },
  ],
  create: {},
};

const range = (from: number, to: number) => `SELECT 'k' || i AS k, i AS v FROM range(${from}, ${to}) r(i)`;

async function keyCounts(lake: Lake): Promise<{ rows: number; keys: number }> {
  const t = await lake.table('keyed');
  const r = await lake.db.all<{ rows: bigint; keys: bigint }>(
    `SELECT count(*) AS rows, count(DISTINCT k) AS keys FROM ${await (await t!.snapshot()).scan()}`,
  );
  return { rows: Number(r[0].rows), keys: Number(r[0].keys) };
}

test('two overlapping upserts racing (the insert-only path) never store a key twice', async () => {
  const t = await openTempLake('talon-upsert-race-');
  // A second writer on the same lake folder: its own process state and DuckDB, as a
  // concurrent `talon intel load` would have.
  const other = await Lake.open(t.lake.location);
  try {
    await upsertRows(t.lake, SPEC, range(0, 10));
    let raced = 0;
    // A has found its new keys (10..99) and written its files; before it commits, B adds
    // 50..149. A's append must conflict and be redone against B's rows.
    const a = await upsertRows(t.lake, SPEC, range(10, 100), {
      async beforeCommit() {
        if (raced++ === 0) await upsertRows(other, SPEC, range(50, 150));
      },
    });
    assert.equal(raced, 2, 'the first attempt lost the race and the upsert was redone');
    assert.equal(a.inserted, 40, 'the retry inserts only the keys B did not add');
    assert.deepEqual(await keyCounts(t.lake), { rows: 150, keys: 150 });
  } finally {
    other.close();
    await t.cleanup();
  }
});

test('a new table created by two racing upserts holds each key once', async () => {
  const t = await openTempLake('talon-upsert-race-new-');
  const other = await Lake.open(t.lake.location);
  try {
    let raced = 0;
    await upsertRows(t.lake, SPEC, range(0, 60), {
      async beforeCommit() {
        if (raced++ === 0) await upsertRows(other, SPEC, range(30, 90));
      },
    });
    assert.equal(raced, 2);
    assert.deepEqual(await keyCounts(t.lake), { rows: 90, keys: 90 });
  } finally {
    other.close();
    await t.cleanup();
  }
});
