import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Db } from '../sql/duckdb.js';
import { createTempTable } from './columns.js';

test('columns: varying, constant, dictionary, NULLs, lists, times; separators inside values survive', async () => {
  const db = await Db.open({ threads: 1 });
  try {
    // 5 rows with few distinct values (dictionary-coded), then 100 distinct ones (joined text).
    const n = 5;
    await createTempTable(db, 't', n, [
      { name: 'id', type: 'VARCHAR', values: ['a', 'b\x1fc', null, '', 'e\x1e'] },
      { name: 'same', type: 'VARCHAR', values: () => 'const' },
      { name: 'hinted', type: 'DOUBLE', values: () => 1, constant: 7.5 },
      { name: 'ts', type: 'TIMESTAMP', values: [0, null, 86_400_000, 1, 2] },
      { name: 'conf', type: 'DOUBLE', values: [1.5, null, 3, 4, 5] },
      { name: 'flag', type: 'BOOLEAN', values: [true, false, null, true, false] },
      { name: 'tags', type: 'VARCHAR[]', values: [['p', 'q'], [], ['r\x1fs'], null, ['t']] },
    ]);
    const rows = await db.allJson<Record<string, unknown>>('SELECT * FROM t');
    assert.equal(rows.length, n);
    assert.deepEqual(
      rows.map((r) => r.id),
      ['a', 'b\x1fc', null, '', 'e\x1e'],
    );
    assert.ok(rows.every((r) => r.same === 'const' && r.hinted === 7.5));
    assert.deepEqual(
      rows.map((r) => (r.ts === null ? null : String(r.ts).slice(0, 10))),
      ['1970-01-01', null, '1970-01-02', '1970-01-01', '1970-01-01'],
    );
    assert.deepEqual(
      rows.map((r) => r.conf),
      [1.5, null, 3, 4, 5],
    );
    assert.deepEqual(
      rows.map((r) => r.flag),
      [true, false, null, true, false],
    );
    assert.deepEqual(
      rows.map((r) => r.tags),
      [['p', 'q'], [], ['r\ufffds'], null, ['t']],
    );
    const many = Array.from({ length: 100 }, (_, i) => (i === 7 ? 'x\x1fy' : i === 8 ? null : `v${i}`));
    await createTempTable(db, 'm', 100, [
      { name: 'v', type: 'VARCHAR', values: many },
      { name: 'i', type: 'DOUBLE', values: (i) => i },
    ]);
    const got = await db.all<{ v: string | null; i: number }>('SELECT v, i FROM m');
    assert.equal(got.length, 100);
    assert.deepEqual(got[7], { v: 'x\ufffdy', i: 7 });
    assert.deepEqual(got[8], { v: null, i: 8 });
    assert.deepEqual(got[99], { v: 'v99', i: 99 });
    await createTempTable(db, 'e', 0, [{ name: 'x', type: 'VARCHAR', values: [] }]);
    assert.deepEqual(await db.all('SELECT * FROM e'), []);
  } finally {
    db.close();
  }
});
