import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { literal } from '../sql/duckdb.js';
import { Lake } from './lake.js';
import { DeltaLog, emptyState, expireTxns } from './log.js';
import { PartialTxnError } from './table.js';
import type { DeltaTable } from './table.js';

const tmpDirs: string[] = [];
const DAY = 8.64e7;

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'talon-txn-'));
  tmpDirs.push(dir);
  return dir;
}

after(async () => {
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});

async function count(lake: Lake, t: DeltaTable): Promise<number> {
  const r = await lake.db.all<{ n: bigint }>(
    `SELECT count(*) AS n FROM ${await (await t.snapshot()).scan()}`,
  );
  return Number(r[0].n);
}

async function commitActions(
  dir: string,
  table: string,
  version: number,
): Promise<Record<string, unknown>[]> {
  const body = await fs.readFile(
    path.join(dir, table, '_delta_log', `${String(version).padStart(20, '0')}.json`),
    'utf8',
  );
  return body
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function parquetFiles(dir: string, table: string): Promise<string[]> {
  return (await fs.readdir(path.join(dir, table))).filter((f) => f.endsWith('.parquet'));
}

const files = (ids: string[], version = 1) => ids.map((appId) => ({ appId, version }));

describe('several txns per commit', () => {
  test('one commit records a txn per appId; a replay of all of them is skipped', async () => {
    const dir = await tempDir();
    const lake = await Lake.open(dir);
    try {
      const t = await lake.createTable('ing', {});
      const res = await t.append(`SELECT range AS id FROM range(3)`, {
        txn: { appId: 'group', version: 7 },
        txns: files(['f1', 'f2', 'f3']),
      });
      assert.equal(res.skipped, false);
      const txns = (await commitActions(dir, 'ing', res.version))
        .filter((a) => a.txn)
        .map((a) => a.txn as { appId: string; version: number; lastUpdated: number });
      assert.deepEqual(
        txns.map((x) => `${x.appId}@${x.version}`),
        ['group@7', 'f1@1', 'f2@1', 'f3@1'],
      );
      for (const x of txns) assert.equal(typeof x.lastUpdated, 'number');
      assert.deepEqual(
        await t.txnVersions(['f1', 'f2', 'f3', 'f4', 'group']),
        new Map([
          ['f1', 1],
          ['f2', 1],
          ['f3', 1],
          ['group', 7],
        ]),
      );
      assert.equal(await t.txnVersion('f2'), 1);
      const history = await t.history(1);
      assert.equal(history[0].txn?.length, 4);

      // the same files again (in another grouping order): nothing is added
      const again = await t.append(`SELECT range AS id FROM range(3)`, { txns: files(['f3', 'f1', 'f2']) });
      assert.equal(again.skipped, true);
      assert.equal(await t.latestVersion(), res.version);
      // a lower version of an appId counts as committed, as with a single txn
      assert.equal((await t.append(`SELECT 1 AS id`, { txns: files(['f1'], 0) })).skipped, true);
      assert.equal(await count(lake, t), 3);
    } finally {
      lake.close();
    }
  });

  test('a write whose txns are only partly committed is refused and writes nothing', async () => {
    const dir = await tempDir();
    const lake = await Lake.open(dir);
    try {
      const t = await lake.createTable('ing', {});
      await t.append(`SELECT 1 AS id`, { txns: files(['f1', 'f2']) });
      const before = await t.latestVersion();
      await assert.rejects(t.append(`SELECT 2 AS id`, { txns: files(['f2', 'f3']) }), (err: unknown) => {
        assert.ok(err instanceof PartialTxnError);
        assert.deepEqual(err.committed, [{ appId: 'f2', version: 1 }]);
        assert.deepEqual(err.pending, [{ appId: 'f3', version: 1 }]);
        assert.match(err.message, /1 of 2 txn\(s\).*f2@1/);
        return true;
      });
      assert.equal(await t.latestVersion(), before);
      assert.equal((await parquetFiles(dir, 'ing')).length, 1);
      // also through merge/delete/overwrite (all go through the same check)
      await assert.rejects(t.deleteWhere('id = 1', { txns: files(['f1', 'f9']) }), PartialTxnError);
      await assert.rejects(
        t.merge(
          `SELECT 1 AS id`,
          { on: ['id'], whenMatched: 'update', whenNotMatched: 'insert' },
          {
            txns: files(['f9', 'f1']),
          },
        ),
        PartialTxnError,
      );
      // what the caller does: filter the committed ones out and write the rest
      const done = await t.txnVersions(['f2', 'f3']);
      const rest = ['f2', 'f3'].filter((f) => !done.has(f));
      assert.deepEqual(rest, ['f3']);
      assert.equal((await t.append(`SELECT 3 AS id`, { txns: files(rest) })).skipped, false);
      assert.equal(await count(lake, t), 2);
    } finally {
      lake.close();
    }
  });

  test('an appId given twice in one write is refused', async () => {
    const dir = await tempDir();
    const lake = await Lake.open(dir);
    try {
      const t = await lake.createTable('ing', {});
      await assert.rejects(
        t.append(`SELECT 1 AS id`, { txn: { appId: 'a', version: 1 }, txns: files(['a']) }),
        /appId "a" given twice/,
      );
      await assert.rejects(t.append(`SELECT 1 AS id`, { txns: files(['b', 'b']) }), /given twice/);
      assert.equal(await t.latestVersion(), 0);
    } finally {
      lake.close();
    }
  });

  test('txns survive a checkpoint', async () => {
    const dir = await tempDir();
    const lake = await Lake.open(dir);
    try {
      const t = await lake.createTable('ing', {});
      await t.append(`SELECT 1 AS id`, { txns: files(['f1', 'f2']) });
      await t.append(`SELECT 2 AS id`, { txns: files(['f3']) });
      await t.checkpoint();
    } finally {
      lake.close();
    }
    // a fresh reader replays from the checkpoint only (the commits before it are deleted)
    for (const v of [0, 1]) {
      await fs.rm(path.join(dir, 'ing', '_delta_log', `${String(v).padStart(20, '0')}.json`));
    }
    const lake2 = await Lake.open(dir);
    try {
      const t = (await lake2.table('ing'))!;
      assert.deepEqual(
        await t.txnVersions(['f1', 'f2', 'f3']),
        new Map([
          ['f1', 1],
          ['f2', 1],
          ['f3', 1],
        ]),
      );
    } finally {
      lake2.close();
    }
  });
});

describe('concurrent writers with overlapping txns', () => {
  async function twoLakes(): Promise<{ dir: string; a: Lake; b: Lake; ta: DeltaTable; tb: DeltaTable }> {
    const dir = await tempDir();
    const a = await Lake.open(dir);
    const b = await Lake.open(dir);
    const ta = await a.createTable('ing', {});
    const tb = (await b.table('ing'))!;
    return { dir, a, b, ta, tb };
  }

  test('a winner that committed all of the loser\u2019s appIds makes the loser a skipped replay', async () => {
    const { dir, a, b, ta, tb } = await twoLakes();
    try {
      const res = await ta.append(`SELECT 1 AS id`, {
        txns: files(['f1', 'f2']),
        beforeCommit: async () =>
          void (await tb.append(`SELECT 1 AS id`, { txns: files(['f2', 'f1', 'f3']) })),
      });
      assert.equal(res.skipped, true);
      assert.equal(await count(a, ta), 1);
      assert.equal((await parquetFiles(dir, 'ing')).length, 1, 'the loser removed its uploaded file');
    } finally {
      a.close();
      b.close();
    }
  });

  test('a winner that committed some of the loser\u2019s appIds fails the loser cleanly', async () => {
    const { dir, a, b, ta, tb } = await twoLakes();
    try {
      await assert.rejects(
        ta.append(`SELECT 1 AS id`, {
          txns: files(['f1', 'f2']),
          beforeCommit: async () => void (await tb.append(`SELECT 2 AS id`, { txns: files(['f2', 'f3']) })),
        }),
        (err: unknown) => {
          assert.ok(err instanceof PartialTxnError);
          assert.deepEqual(err.committed, [{ appId: 'f2', version: 1 }]);
          assert.deepEqual(err.pending, [{ appId: 'f1', version: 1 }]);
          return true;
        },
      );
      assert.equal(await ta.latestVersion(), 1, 'only the winner committed');
      assert.equal((await parquetFiles(dir, 'ing')).length, 1);
      assert.deepEqual(
        await ta.txnVersions(['f1', 'f2', 'f3']),
        new Map([
          ['f2', 1],
          ['f3', 1],
        ]),
      );
    } finally {
      a.close();
      b.close();
    }
  });

  test('winners that together committed all appIds make a skip; disjoint appIds both commit', async () => {
    const { a, b, ta, tb } = await twoLakes();
    try {
      const res = await ta.append(`SELECT 1 AS id`, {
        txns: files(['f1', 'f2']),
        beforeCommit: async () => {
          await tb.append(`SELECT 1 AS id`, { txns: files(['f1']) });
          await tb.append(`SELECT 2 AS id`, { txns: files(['f2']) });
        },
      });
      assert.equal(res.skipped, true);
      assert.equal(await count(a, ta), 2);

      const res2 = await ta.append(`SELECT 3 AS id`, {
        txns: files(['f4', 'f5']),
        beforeCommit: async () => void (await tb.append(`SELECT 4 AS id`, { txns: files(['f6']) })),
      });
      assert.equal(res2.skipped, false);
      assert.equal(res2.version, 4, 'committed after the concurrent append');
      assert.equal(await count(a, ta), 4);
      assert.equal((await ta.txnVersions(['f4', 'f5', 'f6'])).size, 3);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('txn retention (delta.setTransactionRetentionDuration)', () => {
  test('txns older than the retention drop out of snapshots and checkpoints', async () => {
    const dir = await tempDir();
    const lake = await Lake.open(dir);
    try {
      const t = await lake.createTable('ing', {
        properties: { 'delta.setTransactionRetentionDuration': 'interval 30 days' },
      });
      await t.append(`SELECT 1 AS id`, { txns: files(['fresh']) });
      // A commit as an earlier writer left it, 31 and 29 days ago, plus one without lastUpdated.
      const log = new DeltaLog(lake.store, lake.db, 'ing');
      const now = Date.now();
      assert.ok(
        await log.tryCommit(2, [
          { commitInfo: { timestamp: now, operation: 'WRITE' } },
          { txn: { appId: 'old', version: 1, lastUpdated: now - 31 * DAY } },
          { txn: { appId: 'recent', version: 1, lastUpdated: now - 29 * DAY } },
          { txn: { appId: 'timeless', version: 1 } },
        ]),
      );
      const ids = ['fresh', 'old', 'recent', 'timeless'];
      assert.deepEqual([...(await t.txnVersions(ids)).keys()].sort(), ['fresh', 'recent', 'timeless']);
      // an expired appId is no longer recognised: its write goes in again (documented trade-off)
      assert.equal((await t.append(`SELECT 2 AS id`, { txns: files(['old']) })).skipped, false);
      await t.append(`SELECT 3 AS id`, { txns: files(['x']) });
      // the checkpoint keeps only live txns ('old' is live again, from the new commit)
      await t.checkpoint();
      const cp = path.join(dir, 'ing', '_delta_log', `${String(4).padStart(20, '0')}.checkpoint.parquet`);
      const r = await lake.db.all<{ id: string }>(
        `SELECT txn.appId AS id FROM read_parquet(${literal(cp)}) WHERE txn IS NOT NULL ORDER BY 1`,
      );
      assert.deepEqual(
        r.map((x) => x.id),
        ['fresh', 'old', 'recent', 'timeless', 'x'],
      );
    } finally {
      lake.close();
    }
  });

  test('setProperties turns retention on for an existing table (one commit; again: none)', async () => {
    const dir = await tempDir();
    const lake = await Lake.open(dir);
    try {
      const t = await lake.createTable('ing', { properties: { 'delta.appendOnly': 'false' } });
      await t.append(`SELECT 1 AS id`, { txns: files(['f1']) });
      const log = new DeltaLog(lake.store, lake.db, 'ing');
      assert.ok(
        await log.tryCommit(2, [
          { commitInfo: { timestamp: Date.now(), operation: 'WRITE' } },
          { txn: { appId: 'old', version: 1, lastUpdated: Date.now() - 40 * DAY } },
        ]),
      );
      assert.equal((await t.txnVersions(['old'])).size, 1, 'no retention set: kept');
      const res = await t.setProperties({ 'delta.setTransactionRetentionDuration': 'interval 30 days' });
      assert.equal(res.version, 3);
      const snap = await t.snapshot();
      assert.equal(snap.properties['delta.setTransactionRetentionDuration'], 'interval 30 days');
      assert.equal(snap.properties['delta.appendOnly'], 'false', 'other properties kept');
      assert.deepEqual([...(await t.txnVersions(['old', 'f1'])).keys()], ['f1']);
      assert.equal(
        (await t.setProperties({ 'delta.setTransactionRetentionDuration': 'interval 30 days' })).version,
        3,
      );
      assert.equal(await t.latestVersion(), 3);
      assert.equal((await t.history(1))[0].operation, 'SET TBLPROPERTIES');
    } finally {
      lake.close();
    }
  });

  test('expireTxns: by lastUpdated against the table property; unset or unparsable keeps all', () => {
    const now = 1_000 * DAY;
    const state = emptyState(3);
    state.txns.set('a', { appId: 'a', version: 1, lastUpdated: now - 2 * DAY });
    state.txns.set('b', { appId: 'b', version: 1, lastUpdated: now - DAY / 2 });
    state.txns.set('c', { appId: 'c', version: 1 });
    expireTxns(state, now);
    assert.equal(state.txns.size, 3, 'no property: nothing expires');
    state.metaData.configuration['delta.setTransactionRetentionDuration'] = 'not a duration';
    expireTxns(state, now);
    assert.equal(state.txns.size, 3);
    state.metaData.configuration['delta.setTransactionRetentionDuration'] = 'interval 1 days';
    expireTxns(state, now);
    assert.deepEqual([...state.txns.keys()], ['b', 'c']);
  });
});
