import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline } from './pipeline.js';
import type { BatchReport, QueryDefinition } from './query.js';
import { appendEvents, openTempLake, tableRows } from './test-support.js';

const T0 = Date.UTC(2026, 4, 1);

const copy = (id: string, from: string, to: string): QueryDefinition => ({
  id,
  sources: [{ table: from }],
  sinks: [{ name: 'out', table: to, mode: 'append' }],
  async transform(batch) {
    const rel = batch.source(from);
    return rel ? { out: `SELECT n, timestamp FROM ${rel}` } : {};
  },
});

function waitFor(pred: () => boolean, what: string, ms = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

test('available-now runs chained queries until all are caught up', async () => {
  const t = await openTempLake();
  try {
    await appendEvents(t.lake, 'a', [{ n: 1, timestamp: T0 }]);
    // b is fed by the first query; the second query reads b in the next round.
    const p = new Pipeline(t.lake, [copy('b_from_c', 'b', 'c'), copy('a_to_b', 'a', 'b')]);
    const reports = await p.runAvailableNow();
    assert.deepEqual(
      reports.map((r) => r.queryId),
      ['a_to_b', 'b_from_c'],
    );
    assert.equal((await tableRows(t.lake, 'c')).length, 1);
    assert.throws(
      () => new Pipeline(t.lake, [copy('x', 'a', 'b'), copy('x', 'a', 'c')]),
      /duplicate query id/,
    );
  } finally {
    await t.cleanup();
  }
});

for (const trigger of [
  { kind: 'continuous', pollMs: 20 } as const,
  { kind: 'interval', everyMs: 200 } as const,
]) {
  test(`${trigger.kind} trigger picks up each new commit, then stops on abort`, async () => {
    const t = await openTempLake();
    try {
      await appendEvents(t.lake, 'a', [{ n: 1, timestamp: T0 }]);
      const p = new Pipeline(t.lake, [copy('a_to_b', 'a', 'b')]);
      const ac = new AbortController();
      const seen: BatchReport[] = [];
      const running = p.run(trigger, { signal: ac.signal, onBatch: (r) => seen.push(r) });
      await waitFor(() => seen.length === 1, 'the first batch');
      await appendEvents(t.lake, 'a', [{ n: 2, timestamp: T0 }]);
      await waitFor(() => seen.length === 2, 'a batch for the second commit');
      await appendEvents(t.lake, 'a', [{ n: 3, timestamp: T0 }]);
      await waitFor(() => seen.length === 3, 'a batch for the third commit');
      ac.abort();
      await running;
      assert.deepEqual(
        seen.map((r) => r.sources.a.end),
        [1, 2, 3],
      );
      assert.deepEqual(
        (await tableRows(t.lake, 'b', 'n')).map((r) => Number(r.n)),
        [1, 2, 3],
      );
    } finally {
      await t.cleanup();
    }
  });
}

test('a failing query does not stop the others under a long-running trigger', async () => {
  const t = await openTempLake();
  try {
    await appendEvents(t.lake, 'a', [{ n: 1, timestamp: T0 }]);
    const broken: QueryDefinition = {
      ...copy('broken', 'a', 'x'),
      async transform() {
        throw new Error('boom');
      },
    };
    const p = new Pipeline(t.lake, [broken, copy('a_to_b', 'a', 'b')]);
    const ac = new AbortController();
    const errors: string[] = [];
    const seen: BatchReport[] = [];
    const running = p.run(
      { kind: 'continuous', pollMs: 20 },
      { signal: ac.signal, onBatch: (r) => seen.push(r), onError: (q) => errors.push(q), retryDelayMs: 50 },
    );
    await waitFor(() => seen.length === 1 && errors.length >= 2, 'a batch of the healthy query and retries');
    ac.abort();
    await running;
    assert.equal(errors[0], 'broken');
    assert.equal((await tableRows(t.lake, 'b')).length, 1);
  } finally {
    await t.cleanup();
  }
});

test('a query of another lane runs on its own connection, concurrently, and both lanes commit into one table', async () => {
  const t = await openTempLake();
  try {
    await appendEvents(t.lake, 'a', [{ n: 1, timestamp: T0 }]);
    await appendEvents(t.lake, 'a', [{ n: 2, timestamp: T0 }]);
    const dbs = new Map<string, unknown>();
    let inFlight = 0;
    let overlapped = false;
    // Each batch holds its lane for a moment: with two lanes the two queries' batches overlap.
    const slowMerge = (id: string, lane?: string): QueryDefinition => ({
      id,
      lane,
      sources: [{ table: 'a' }],
      sinks: [
        {
          name: 'out',
          table: 'merged',
          mode: 'merge',
          merge: { on: ['k'], whenMatched: 'ignore', whenNotMatched: 'insert' },
        },
      ],
      async transform(batch) {
        dbs.set(id, batch.db);
        inFlight++;
        if (inFlight > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, 300));
        inFlight--;
        const rel = batch.source('a')!;
        return { out: `SELECT '${id}:' || n AS k, n FROM ${rel}` };
      },
    });
    const p = new Pipeline(t.lake, [slowMerge('main_q'), slowMerge('lane_q', 'other')]);
    const reports = await p.runAvailableNow();
    assert.deepEqual(reports.map((r) => r.queryId).sort(), ['lane_q', 'main_q']);
    assert.ok(overlapped, 'the lanes ran at the same time');
    assert.equal(dbs.get('main_q'), t.lake.db);
    assert.notEqual(dbs.get('lane_q'), t.lake.db, 'the other lane has its own connection');
    const keys = (await tableRows(t.lake, 'merged')).map((r) => String(r.k)).sort();
    assert.deepEqual(keys, ['lane_q:1', 'lane_q:2', 'main_q:1', 'main_q:2']);
  } finally {
    await t.cleanup();
  }
});
