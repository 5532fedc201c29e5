import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamingQuery } from './runner.js';
import type { QueryDefinition } from './query.js';
import { applyExpectations, dedupWithWatermark, ExpectationFailed } from './operators.js';
import { appendEvents, openTempLake, tableRows } from './test-support.js';

const H = 3600_000;
const T0 = Date.UTC(2026, 4, 1);

function dedupQuery(allowedLatenessMs?: number): QueryDefinition {
  return {
    id: 'dedup',
    allowedLatenessMs,
    sources: [{ table: 'ev' }],
    snapshots: ['dedup_state'],
    sinks: [{ name: 'out', table: 'out', mode: 'append' }],
    async transform(batch) {
      const rel = batch.source('ev');
      if (!rel) return {};
      const kept = await dedupWithWatermark(batch, rel, {
        name: 'd',
        keys: ['k'],
        timeColumn: 'timestamp',
        windowMs: 24 * H,
        stateTable: 'dedup_state',
      });
      return { out: `SELECT k, timestamp, n FROM ${kept}` };
    },
  };
}

test('dedup with watermark, allowed lateness 0 (Spark semantics): window, state expiry, late rows, replay-safe state', async () => {
  const t = await openTempLake();
  try {
    const q = () => new StreamingQuery(t.lake, dedupQuery(0));
    const kept = async () => (await tableRows(t.lake, 'out', 'n')).map((r) => Number(r.n));
    // batch 0: k at T0, k again 23h59m later (duplicate), j at T0+1h
    await appendEvents(t.lake, 'ev', [
      { k: 'k', n: 1, timestamp: T0 },
      { k: 'k', n: 2, timestamp: T0 + 24 * H - 60_000 },
      { k: 'j', n: 3, timestamp: T0 + H },
    ]);
    let r = await q().runBatch();
    assert.deepEqual(await kept(), [1, 3]);
    assert.equal(r?.metrics['dedup.d.duplicates'], 1);
    // watermark = max event time (T0+24h−1m) − 24h = T0−1m: nothing expired yet
    assert.equal((await tableRows(t.lake, 'dedup_state')).length, 2);

    // batch 1: k exactly 24h after its kept row is a new occurrence; the watermark moves to T0+10h:
    // j (T0+1h) and the old k expire, the new k stays.
    await appendEvents(t.lake, 'ev', [
      { k: 'k', n: 4, timestamp: T0 + 24 * H },
      { k: 'x', n: 5, timestamp: T0 + 34 * H },
    ]);
    r = await q().runBatch();
    assert.deepEqual(await kept(), [1, 3, 4, 5]);
    assert.equal(r?.metrics['dedup.d.state'], 2, 'state holds k@24h and x@34h; j expired');
    const st = await tableRows(t.lake, 'dedup_state', 'k');
    assert.equal(st.length, 2);

    // batch 2: j again at T0+12h: its state expired, and it is after the watermark (T0+10h): kept;
    // k at T0+5h is older than the watermark: dropped as late (Spark semantics).
    await appendEvents(t.lake, 'ev', [
      { k: 'j', n: 6, timestamp: T0 + 12 * H },
      { k: 'k', n: 7, timestamp: T0 + 5 * H },
    ]);
    r = await q().runBatch();
    assert.deepEqual(await kept(), [1, 3, 4, 5, 6]);
    assert.equal(r?.metrics['dedup.d.late'], 1);

    // The state written by a batch is not seen by its own replay: re-running batch 2 from its
    // offsets (commit marker lost) gives the same output, and the sink txn skips it.
    const log = q().checkpoint;
    await t.lake.store.delete([`${log.prefix}/commits/${'2'.padStart(20, '0')}.json`]);
    r = await q().runBatch();
    assert.equal(r?.replayed, true);
    assert.equal(r?.metrics['dedup.d.kept'], 1);
    assert.equal(r?.metrics['sink.out.skipped'], 1);
    assert.deepEqual(await kept(), [1, 3, 4, 5, 6]);
  } finally {
    await t.cleanup();
  }
});

test('dedup with allowed lateness: out-of-order rows give the one-pass result; too-late rows dropped and counted', async () => {
  const t = await openTempLake();
  try {
    const q = () => new StreamingQuery(t.lake, dedupQuery(3 * 24 * H));
    const kept = async () => (await tableRows(t.lake, 'out', 'n')).map((r) => Number(r.n));
    // batch 0: the newest data first; watermark = T0+100h − 24h = T0+76h
    await appendEvents(t.lake, 'ev', [
      { k: 'k', n: 1, timestamp: T0 + 30 * H },
      { k: 'z', n: 2, timestamp: T0 + 100 * H },
    ]);
    let r = await q().runBatch();
    assert.deepEqual(await kept(), [1, 2]);
    // batch 1: rows far behind the watermark but within the lateness (76h − 72h = T0+4h):
    // k at T0+10h precedes the kept k at T0+30h by 20h → it is the first occurrence and
    // supersedes it; k at T0+20h is its duplicate; j is new.
    await appendEvents(t.lake, 'ev', [
      { k: 'k', n: 3, timestamp: T0 + 10 * H },
      { k: 'k', n: 4, timestamp: T0 + 20 * H },
      { k: 'j', n: 5, timestamp: T0 + 5 * H },
    ]);
    r = await q().runBatch();
    assert.deepEqual(await kept(), [1, 2, 3, 5]);
    assert.equal(r?.metrics['dedup.d.late'], 0);
    assert.equal(r?.metrics['dedup.d.late_accepted'], 3);
    assert.equal(r?.metrics['dedup.d.superseded'], 1);
    assert.equal(r?.metrics['dedup.d.duplicates'], 1);
    // k@10h, k@20h (dup of 10h, not of the superseded 30h), so k@34h is ≥ 24h after k@10h: kept.
    await appendEvents(t.lake, 'ev', [{ k: 'k', n: 6, timestamp: T0 + 34 * H }]);
    r = await q().runBatch();
    assert.deepEqual(await kept(), [1, 2, 3, 5, 6]);
    // batch 3: older than watermark − lateness (T0+4h) → dropped and counted, not deduplicated.
    await appendEvents(t.lake, 'ev', [
      { k: 'q', n: 7, timestamp: T0 + 3 * H },
      { k: 'q', n: 8, timestamp: T0 + 5 * H },
    ]);
    r = await q().runBatch();
    assert.deepEqual(await kept(), [1, 2, 3, 5, 6, 8]);
    assert.equal(r?.metrics['dedup.d.late'], 1);
    // The state still expires: a row far ahead moves the watermark to T0+200h, and everything
    // older than T0+200h − 72h leaves the state.
    await appendEvents(t.lake, 'ev', [{ k: 'y', n: 9, timestamp: T0 + 224 * H }]);
    r = await q().runBatch();
    assert.equal(r?.metrics['dedup.d.state'], 1, 'only y@224h remains');
    assert.deepEqual(
      (await tableRows(t.lake, 'dedup_state', 'k')).map((x) => x.k),
      ['["y"]'],
    );
  } finally {
    await t.cleanup();
  }
});

test('expectations: expect counts, expect_or_drop drops, expect_or_fail stops the batch uncommitted', async () => {
  const t = await openTempLake();
  try {
    let mode: 'drop' | 'fail' = 'drop';
    const def: QueryDefinition = {
      id: 'expect',
      sources: [{ table: 'ev' }],
      sinks: [{ name: 'out', table: 'out', mode: 'append' }],
      async transform(batch) {
        const rel = batch.source('ev')!;
        const valid = await applyExpectations(batch, rel, [
          { name: 'has_user', condition: `u IS NOT NULL AND u <> ''`, action: mode },
          { name: 'small', condition: `n < 3`, action: 'warn' },
        ]);
        return { out: `SELECT u, n FROM ${valid}` };
      },
    };
    await appendEvents(t.lake, 'ev', [
      { u: 'a', n: 1, timestamp: T0 },
      { u: '', n: 2, timestamp: T0 },
      { u: 'b', n: 3, timestamp: T0 },
    ]);
    const r = await new StreamingQuery(t.lake, def).runBatch();
    assert.equal(r?.metrics['expect.has_user.failed'], 1);
    assert.equal(r?.metrics['expect.has_user.passed'], 2);
    assert.equal(r?.metrics['expect.small.failed'], 1);
    assert.deepEqual(
      (await tableRows(t.lake, 'out', 'n')).map((x) => x.u),
      ['a', 'b'],
    );
    const commits = await new StreamingQuery(t.lake, def).checkpoint.commits();
    assert.equal(commits[0].metrics['expect.has_user.failed'], 1, 'counts are in the commit log');

    mode = 'fail';
    await appendEvents(t.lake, 'ev', [{ u: null, n: 1, timestamp: T0 }]);
    const q = new StreamingQuery(t.lake, def);
    await assert.rejects(q.runBatch(), ExpectationFailed);
    assert.equal((await q.checkpoint.commits()).length, 1, 'the failed batch is not committed');
  } finally {
    await t.cleanup();
  }
});
