/**
 * Exactly-once per source file under regrouping: a commit group fails after some of its
 * tables committed, and the replay puts the same files into different groups. Every table
 * must end up with what one clean run writes — nothing twice, nothing lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Lake } from '../lake/index.js';
import { FilesSource } from '../sources/files.js';
import { ingest } from './pipeline.js';

const TYPES = ['DnsRequest', 'NetworkConnectIP4', 'ProcessRollup2', 'UserLogon'];
const FILES = 4;
const ROWS = 300;

async function writeInput(dir: string): Promise<void> {
  let id = 0;
  const batch = path.join(dir, 'data', 'batch-0');
  await mkdir(batch, { recursive: true });
  for (let p = 0; p < FILES; p++) {
    const rows: string[] = [];
    for (let i = 0; i < ROWS; i++) {
      rows.push(
        JSON.stringify({
          aid: `aid${i % 7}`,
          event_simpleName: TYPES[(i + p) % TYPES.length],
          id: `ev-${id++}`,
          timestamp: String(1700000000000 + id * 1000),
          LocalPort: String(i),
        }),
      );
    }
    rows.push(`{broken json ${p}`);
    await writeFile(path.join(batch, `part-0000${p}.gz`), gzipSync(rows.join('\n') + '\n'));
  }
}

interface Contents {
  [table: string]: { rows: number; ids: number; sum: string };
}

async function contents(lakeDir: string): Promise<Contents> {
  const lake = await Lake.open(lakeDir);
  try {
    await lake.registerViews();
    const out: Contents = {};
    for (const t of [...TYPES, 'quarantine', 'ingest_log']) {
      const key = t === 'quarantine' ? "source || ':' || line" : t === 'ingest_log' ? 'file_id' : 'id';
      const [r] = await lake.db.allJson<{ rows: string; ids: string; sum: string }>(
        `SELECT count(*) AS rows, count(DISTINCT ${key}) AS ids, ` +
          `CAST(sum(hash(${key})) AS VARCHAR) AS sum FROM ${t.toLowerCase()}`,
      );
      out[t] = { rows: Number(r.rows), ids: Number(r.ids), sum: r.sum };
    }
    return out;
  } finally {
    lake.close();
  }
}

async function run(input: string, lakeDir: string, batchEvents: number): Promise<void> {
  const lake = await Lake.open(lakeDir);
  try {
    await ingest(lake, new FilesSource([input]), { batchEvents, enricher: null, progress: false });
  } finally {
    lake.close();
  }
}

for (const [first, replay] of [
  [1_000_000, 1], // one group of every file fails; the replay commits file by file
  [1, 1_000_000], // the first file's group fails; the replay commits all files at once
]) {
  test(`a group that failed after some tables committed, replayed in other groups (batch_events ${first} → ${replay}): no duplicates, no loss`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-regroup-'));
    try {
      const input = path.join(dir, 'fdr');
      await writeInput(input);
      const clean = path.join(dir, 'clean');
      await run(input, clean, 1_000_000);
      const expected = await contents(clean);
      assert.equal(expected.ProcessRollup2.rows, (FILES * ROWS) / TYPES.length);
      assert.equal(expected.quarantine.rows, FILES);
      assert.equal(expected.ingest_log.rows, FILES);

      // A plain file where the last table's folder would go: that table's commit fails after
      // the tables before it (commits go in table-name order) committed the group.
      const crashed = path.join(dir, 'crashed');
      await mkdir(crashed, { recursive: true });
      const blocker = path.join(crashed, 'userlogon');
      await writeFile(blocker, 'not a table');
      await assert.rejects(run(input, crashed, first));
      const partial = await Lake.open(crashed);
      try {
        const table = await partial.table('ProcessRollup2');
        assert.ok(table, 'tables before the failure committed');
        const props = (await table.snapshot()).properties;
        assert.equal(props['delta.parquet.compression.codec'], 'snappy');
        assert.equal(props['delta.setTransactionRetentionDuration'], 'interval 30 days');
        assert.equal(await partial.table('ingest_log'), undefined, 'the failed group is not logged');
      } finally {
        partial.close();
      }

      await rm(blocker);
      await run(input, crashed, replay);
      const after = await contents(crashed);
      assert.deepEqual(after, expected);
      for (const t of TYPES) assert.equal(after[t].rows, after[t].ids, `${t}: no duplicates`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
