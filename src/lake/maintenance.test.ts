import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { maintainLake, type TableUpkeep } from './maintenance.js';
import { StreamingQuery } from '../engine/runner.js';
import { appendEvents, openTempLake, tableRows } from '../engine/test-support.js';
import { sleep } from '../util/sleep.js';

async function parquetFiles(dir: string): Promise<number> {
  return (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.parquet')).length;
}

test('maintainLake compacts small files, vacuums only past each table’s retention, and goes on after a broken table', async () => {
  const t = await openTempLake('talon-maintain-');
  try {
    // An event table with a file per append, read by a streaming query.
    for (let i = 0; i < 4; i++) await appendEvents(t.lake, 'Ev', [{ n: i, timestamp: Date.UTC(2026, 0, 1) }]);
    const copy = () =>
      new StreamingQuery(t.lake, {
        id: 'copy',
        sources: [{ table: 'Ev' }],
        sinks: [{ name: 'out', table: 'out', mode: 'append' }],
        async transform(batch) {
          const rel = batch.source('ev');
          return rel ? { out: `SELECT n FROM ${rel}` } : {};
        },
      });
    await copy().runAvailableNow();
    assert.equal((await tableRows(t.lake, 'out')).length, 4);

    // A state table rewritten by every batch, whose removed files may go at once.
    const state = await t.lake.createTable('state', {});
    await state.overwrite('SELECT 1 AS k');
    await state.setProperties({ 'delta.deletedFileRetentionDuration': 'interval 0 hours' });
    for (let k = 2; k <= 4; k++) await state.overwrite(`SELECT ${k} AS k`);

    // A folder that looks like a table but whose log is not JSON.
    const broken = path.join(t.dir, 'lake', 'broken', '_delta_log');
    await mkdir(broken, { recursive: true });
    await writeFile(path.join(broken, '00000000000000000000.json'), 'not json\n');

    const evDir = path.join(t.dir, 'lake', 'ev');
    const stateDir = path.join(t.dir, 'lake', 'state');
    assert.equal(await parquetFiles(evDir), 4);
    assert.equal(await parquetFiles(stateDir), 4);
    await sleep(20); // the state's removed files are now older than its 0 h retention

    const seen: TableUpkeep[] = [];
    const done = await maintainLake(t.lake, { onTable: (r) => seen.push(r) });
    assert.deepEqual(seen, done);
    const by = new Map(done.map((r) => [r.table, r]));
    assert.match(by.get('broken')?.error ?? '', /./, 'the broken table reports its error');
    assert.deepEqual(
      [
        by.get('ev')?.compactedFiles,
        by.get('ev')?.compactedInto,
        by.get('ev')?.vacuumedFiles,
        by.get('ev')?.error,
      ],
      [4, 1, 0, undefined],
      'compacted; the replaced files stay within the default 7-day retention',
    );
    assert.equal(by.get('state')?.vacuumedFiles, 3, 'the three rewritten-away state files are deleted');
    assert.equal(await parquetFiles(evDir), 5);
    assert.equal(await parquetFiles(stateDir), 1);

    const ev = (await t.lake.table('ev'))!;
    const snap = await ev.snapshot();
    assert.equal(snap.files.length, 1);
    assert.deepEqual(
      (await tableRows(t.lake, 'ev', 'n')).map((r) => Number(r.n)),
      [0, 1, 2, 3],
    );
    assert.deepEqual(
      (await tableRows(t.lake, 'state')).map((r) => Number(r.k)),
      [4],
    );
    // The compaction is not new data for change-feed readers.
    await copy().runAvailableNow();
    assert.equal((await tableRows(t.lake, 'out')).length, 4);

    // Nothing left to do: a second round changes nothing.
    const again = await maintainLake(t.lake, { vacuum: false });
    assert.equal(again.find((r) => r.table === 'ev')?.compactedFiles, 0);
  } finally {
    await t.cleanup();
  }
});
