import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamingQuery } from './runner.js';
import { CheckpointLog } from './checkpoint.js';
import type { QueryDefinition } from './query.js';
import { appendEvents, openTempLake, tableRows } from './test-support.js';

function copyQuery(id = 'copy'): QueryDefinition {
  return {
    id,
    sources: [{ table: 'Ev' }],
    sinks: [{ name: 'out', table: 'out', mode: 'append' }],
    async transform(batch) {
      const rel = batch.source('ev');
      if (!rel) return {};
      return { out: `SELECT n, ${batch.id} AS batch_id FROM ${rel}` };
    },
  };
}

test('bounded batches, checkpoint per batch, nothing reprocessed', async () => {
  const t = await openTempLake();
  try {
    for (let i = 0; i < 3; i++)
      await appendEvents(t.lake, 'Ev', [{ n: i, timestamp: Date.UTC(2026, 0, 1, i) }]);
    const q = new StreamingQuery(t.lake, copyQuery(), { maxVersionsPerBatch: 2 });
    const reports = await q.runAvailableNow();
    // version 0 is the table's creation; commits 1..3 hold the rows: (−1,1], (1,3]
    assert.deepEqual(
      reports.map((r) => r.sources.ev),
      [
        { start: -1, end: 1 },
        { start: 1, end: 3 },
      ],
    );
    assert.deepEqual(
      (await tableRows(t.lake, 'out', 'n')).map((r) => [Number(r.n), Number(r.batch_id)]),
      [
        [0, 0],
        [1, 1],
        [2, 1],
      ],
    );
    assert.deepEqual(await q.runAvailableNow(), []);
    // A new process resumes from the checkpoint, not from the start.
    await appendEvents(t.lake, 'Ev', [{ n: 3, timestamp: Date.UTC(2026, 0, 1, 3) }]);
    const again = await new StreamingQuery(t.lake, copyQuery()).runAvailableNow();
    assert.equal(again.length, 1);
    assert.deepEqual(again[0].sources.ev, { start: 3, end: 4 });
    assert.equal((await tableRows(t.lake, 'out')).length, 4);
    assert.equal(await new StreamingQuery(t.lake, copyQuery()).hasNewData(), false);
    await appendEvents(t.lake, 'Ev', [{ n: 4, timestamp: Date.UTC(2026, 0, 1, 4) }]);
    assert.equal(await new StreamingQuery(t.lake, copyQuery()).hasNewData(), true);
  } finally {
    await t.cleanup();
  }
});

test('row bound splits a batch spanning several versions', async () => {
  const t = await openTempLake();
  try {
    for (let i = 0; i < 4; i++) {
      await appendEvents(t.lake, 'Ev', [
        { n: 2 * i, timestamp: Date.UTC(2026, 0, 1) },
        { n: 2 * i + 1, timestamp: Date.UTC(2026, 0, 1) },
      ]);
    }
    const reports = await new StreamingQuery(t.lake, copyQuery(), { maxRowsPerBatch: 4 }).runAvailableNow();
    assert.ok(reports.length >= 2, `split into ${reports.length} batches`);
    for (const r of reports) assert.ok((r.metrics['rows.ev'] ?? 0) <= 4);
    assert.equal((await tableRows(t.lake, 'out')).length, 8);
  } finally {
    await t.cleanup();
  }
});

test('an uncommitted batch is replayed with the same id and offsets; the sink txn skips it', async () => {
  const t = await openTempLake();
  try {
    await appendEvents(t.lake, 'Ev', [{ n: 1, timestamp: Date.UTC(2026, 0, 1) }]);
    const first = await new StreamingQuery(t.lake, copyQuery()).runAvailableNow();
    assert.equal(first.length, 1);
    // Crash between the sink write and the checkpoint commit: the commit marker is missing.
    const log = new CheckpointLog(t.lake.store, 'copy');
    await t.lake.store.delete([`${log.prefix}/commits/${'0'.padStart(20, '0')}.json`]);
    // More data lands meanwhile; the replay must still read exactly the planned range.
    await appendEvents(t.lake, 'Ev', [{ n: 2, timestamp: Date.UTC(2026, 0, 1) }]);
    const q = new StreamingQuery(t.lake, copyQuery());
    const replay = await q.runBatch();
    assert.ok(replay);
    assert.equal(replay.replayed, true);
    assert.equal(replay.batchId, 0);
    assert.deepEqual(replay.sources, first[0].sources);
    assert.equal(replay.metrics['sink.out.skipped'], 1);
    const next = await q.runBatch();
    assert.equal(next?.batchId, 1);
    assert.equal(next?.replayed, false);
    assert.deepEqual(
      (await tableRows(t.lake, 'out', 'n')).map((r) => [Number(r.n), Number(r.batch_id)]),
      [
        [1, 0],
        [2, 1],
      ],
    );
    const commits = await log.commits();
    assert.deepEqual(
      commits.map((c) => c.batchId),
      [0, 1],
    );
  } finally {
    await t.cleanup();
  }
});

test('two runners cannot claim the same batch', async () => {
  const t = await openTempLake();
  try {
    await appendEvents(t.lake, 'Ev', [{ n: 1, timestamp: Date.UTC(2026, 0, 1) }]);
    const a = new StreamingQuery(t.lake, copyQuery());
    const b = new StreamingQuery(t.lake, copyQuery());
    await b.hasNewData(); // b loads the (empty) checkpoint before a plans
    await a.runBatch();
    await assert.rejects(b.runBatch(), /planned by another process/);
  } finally {
    await t.cleanup();
  }
});

test('a source table that appears later is read from its first version', async () => {
  const t = await openTempLake();
  try {
    const def: QueryDefinition = {
      id: 'late_source',
      sources: [{ table: 'A' }, { table: 'B' }],
      sinks: [{ name: 'out', table: 'out', mode: 'append' }],
      async transform(batch) {
        const parts = batch.presentSources().map(([k, rel]) => `SELECT '${k}' AS src, n FROM ${rel}`);
        return parts.length ? { out: parts.join(' UNION ALL ') } : {};
      },
    };
    await appendEvents(t.lake, 'A', [{ n: 1, timestamp: Date.UTC(2026, 0, 1) }]);
    const q = () => new StreamingQuery(t.lake, def);
    assert.equal((await q().runAvailableNow()).length, 1);
    // B is created and written twice before the query runs again: both commits are read.
    await appendEvents(t.lake, 'B', [{ n: 2, timestamp: Date.UTC(2026, 0, 1) }]);
    await appendEvents(t.lake, 'B', [{ n: 3, timestamp: Date.UTC(2026, 0, 1) }]);
    assert.equal(await q().hasNewData(), true);
    const reports = await q().runAvailableNow();
    assert.deepEqual(reports[0].sources.b, { start: -1, end: 2 });
    assert.deepEqual(
      (await tableRows(t.lake, 'out', 'src, n')).map((r) => `${r.src}${r.n}`),
      ['a1', 'b2', 'b3'],
    );
  } finally {
    await t.cleanup();
  }
});

test('required sources and snapshots: no batch until they exist, then every row is read', async () => {
  const t = await openTempLake();
  try {
    const def: QueryDefinition = {
      id: 'join_ab',
      sources: [
        { table: 'A', required: true },
        { table: 'B', required: true },
      ],
      snapshots: ['L'],
      requiredSnapshots: ['L'],
      sinks: [{ name: 'out', table: 'out', mode: 'append' }],
      async transform(batch) {
        const a = batch.source('A')!;
        const b = batch.source('B')!;
        const l = (await batch.snapshot('L'))!;
        return {
          out: `SELECT a.n, l.label FROM ${a} a JOIN ${b} b ON a.n = b.n JOIN ${l} l ON l.n = a.n`,
        };
      },
    };
    const q = () => new StreamingQuery(t.lake, def);
    await appendEvents(t.lake, 'A', [{ n: 1, timestamp: Date.UTC(2026, 0, 1) }]);
    assert.equal(await q().hasNewData(), false, 'B is missing: nothing to do yet');
    assert.equal(await q().runBatch(), undefined);
    await appendEvents(t.lake, 'B', [{ n: 1, timestamp: Date.UTC(2026, 0, 1) }]);
    assert.equal(await q().runBatch(), undefined, 'the lookup L is still missing');
    await appendEvents(t.lake, 'L', [{ n: 1, label: 'one', timestamp: Date.UTC(2026, 0, 1) }]);
    const r = await q().runBatch();
    assert.deepEqual(r?.sources, { a: { start: -1, end: 1 }, b: { start: -1, end: 1 } });
    assert.deepEqual(
      (await tableRows(t.lake, 'out', 'n')).map((x) => [Number(x.n), x.label]),
      [[1, 'one']],
    );
  } finally {
    await t.cleanup();
  }
});

test('retract: withdrawn rows are replaced by this batch’s row of the same key, else closed', async () => {
  const t = await openTempLake();
  try {
    const def: QueryDefinition = {
      id: 'withdraw',
      sources: [{ table: 'Ev' }],
      sinks: [
        {
          name: 'out',
          table: 'out',
          mode: 'merge',
          merge: { on: ['k'], whenMatched: 'ignore', whenNotMatched: 'insert' },
        },
      ],
      async transform(batch) {
        const rel = batch.source('ev')!;
        if (batch.id === 1) {
          batch.retract('out', `k IN ('a', 'b')`, { on: ['k'], set: { status: `'closed'` } });
        }
        return { out: `SELECT k, CAST(n AS BIGINT) AS n, 'open' AS status FROM ${rel}` };
      },
    };
    const q = () => new StreamingQuery(t.lake, def);
    await appendEvents(t.lake, 'Ev', [
      { k: 'a', n: 1, timestamp: Date.UTC(2026, 0, 1) },
      { k: 'b', n: 1, timestamp: Date.UTC(2026, 0, 1) },
    ]);
    await q().runBatch();
    await appendEvents(t.lake, 'Ev', [
      { k: 'a', n: 2, timestamp: Date.UTC(2026, 0, 1) },
      { k: 'c', n: 2, timestamp: Date.UTC(2026, 0, 1) },
    ]);
    const r = await q().runBatch();
    assert.equal(r?.metrics['retract.out.rows'], 2);
    assert.deepEqual(
      (await tableRows(t.lake, 'out', 'k')).map((x) => `${x.k}${x.n}:${x.status}`),
      ['a2:open', 'b1:closed', 'c2:open'],
    );
  } finally {
    await t.cleanup();
  }
});

test('the checkpoint keeps the last retainBatches batches; an older backlog is trimmed at start', async () => {
  const t = await openTempLake();
  try {
    const ids = async (kind: 'offsets' | 'commits') => {
      const out: number[] = [];
      for await (const o of t.lake.store.list(`_talon/checkpoints/copy/${kind}/`))
        out.push(Number(/(\d+)\.json$/.exec(o.key)![1]));
      return out.sort((a, b) => a - b);
    };
    // Batch 0 reads the table's creation and first rows, batches 1..6 one append each.
    for (let i = 0; i < 7; i++) {
      await appendEvents(t.lake, 'Ev', [{ n: i, timestamp: Date.UTC(2026, 0, 1, i) }]);
      assert.equal((await new StreamingQuery(t.lake, copyQuery()).runAvailableNow()).length, 1);
    }
    assert.deepEqual(await ids('commits'), [0, 1, 2, 3, 4, 5, 6], 'default retention keeps them all');

    // A shorter retention: the backlog goes at start, then one batch per commit.
    await appendEvents(t.lake, 'Ev', [{ n: 7, timestamp: Date.UTC(2026, 0, 1, 7) }]);
    const q = new StreamingQuery(t.lake, copyQuery(), { maxVersionsPerBatch: 1, retainBatches: 3 });
    assert.equal((await q.runAvailableNow()).length, 1);
    assert.deepEqual(await ids('offsets'), [5, 6, 7]);
    assert.deepEqual(await ids('commits'), [5, 6, 7]);
    assert.equal((await tableRows(t.lake, 'out')).length, 8, 'nothing reprocessed');

    // A crash after the sinks, before the commit marker: the replay still has its offsets and
    // the commit before them, and adds nothing twice.
    await appendEvents(t.lake, 'Ev', [{ n: 7, timestamp: Date.UTC(2026, 0, 1, 7) }]);
    await new StreamingQuery(t.lake, copyQuery(), {
      maxVersionsPerBatch: 1,
      retainBatches: 2,
    }).runAvailableNow();
    await t.lake.store.delete(['_talon/checkpoints/copy/commits/00000000000000000008.json']);
    const replay = await new StreamingQuery(t.lake, copyQuery(), {
      maxVersionsPerBatch: 1,
      retainBatches: 2,
    }).runAvailableNow();
    assert.deepEqual(
      replay.map((r) => [r.batchId, r.replayed]),
      [[8, true]],
    );
    assert.deepEqual(await ids('offsets'), [7, 8]);
    assert.deepEqual(await ids('commits'), [7, 8]);
    assert.equal((await tableRows(t.lake, 'out')).length, 9);
  } finally {
    await t.cleanup();
  }
});

test('auto-compaction: a sink table with autoCompactFiles small files is compacted after the batch, same rows', async () => {
  const t = await openTempLake();
  try {
    const logged: string[] = [];
    const files = async () => (await (await t.lake.table('out'))!.snapshot()).files.length;
    const run = (autoCompactFiles: number) =>
      new StreamingQuery(t.lake, copyQuery(), {
        autoCompactFiles,
        log: (m) => logged.push(m),
      }).runAvailableNow();
    for (let i = 0; i < 2; i++) {
      await appendEvents(t.lake, 'Ev', [{ n: i, timestamp: Date.UTC(2026, 0, 1, i) }]);
      await run(3);
    }
    assert.equal(await files(), 2, 'below the threshold nothing happens');
    await appendEvents(t.lake, 'Ev', [{ n: 2, timestamp: Date.UTC(2026, 0, 1, 2) }]);
    await run(3);
    assert.equal(await files(), 1, 'the third small file triggers the compaction');
    assert.ok(
      logged.some((m) => /compacted 3 files of out into 1/.test(m)),
      logged.join('\n'),
    );
    assert.deepEqual(
      (await tableRows(t.lake, 'out', 'n')).map((r) => Number(r.n)),
      [0, 1, 2],
    );
    const history = await (await t.lake.table('out'))!.history(1);
    assert.equal(history[0].operation, 'OPTIMIZE');
    // 0 turns it off.
    for (let i = 3; i < 6; i++) {
      await appendEvents(t.lake, 'Ev', [{ n: i, timestamp: Date.UTC(2026, 0, 1, i) }]);
      await run(0);
    }
    assert.equal(await files(), 4);
  } finally {
    await t.cleanup();
  }
});
