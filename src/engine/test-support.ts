/**
 * Helpers for tests that need a real lake with FDR-shaped tables: a temp lake folder and
 * typed event rows appended as one Delta commit each call (timestamp → TIMESTAMP, event_date
 * partition, nested objects → STRUCT like the enrichment columns).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Lake } from '../lake/lake.js';
import type { CommitResult } from '../lake/table.js';
import { literal } from '../sql/duckdb.js';

export interface TempLake {
  lake: Lake;
  dir: string;
  cleanup(): Promise<void>;
}

export async function openTempLake(prefix = 'talon-engine-'): Promise<TempLake> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const lake = await Lake.open(path.join(dir, 'lake'));
  return {
    lake,
    dir,
    async cleanup() {
      lake.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let seq = 0;

/** Appends rows (one commit) to an event table, creating it partitioned by event_date. */
export async function appendEvents(
  lake: Lake,
  table: string,
  rows: Record<string, unknown>[],
  opts: { integers?: string[] } = {},
): Promise<CommitResult> {
  const file = path.join(os.tmpdir(), `talon-rows-${process.pid}-${seq++}.ndjson`);
  await writeFile(
    file,
    rows
      .map((r) => {
        const o: Record<string, unknown> = { event_simpleName: table, ...r };
        if (typeof o.timestamp === 'number') o.timestamp = new Date(o.timestamp).toISOString();
        return JSON.stringify(o);
      })
      .join('\n'),
  );
  try {
    const ints = ['LocalPort', 'RemotePort', ...(opts.integers ?? [])];
    const rel = `read_json(${literal(file)}, format = 'newline_delimited', sample_size = -1)`;
    const cols = await lake.db.columns(`SELECT * FROM ${rel}`);
    const select = cols.map((c) => {
      const q = `"${c.name}"`;
      if (c.name === 'timestamp') return `CAST(${q} AS TIMESTAMP) AS ${q}`;
      if (ints.includes(c.name)) return `CAST(${q} AS BIGINT) AS ${q}`;
      return q;
    });
    const sql = `SELECT ${select.join(', ')}, CAST(CAST("timestamp" AS TIMESTAMP) AS DATE) AS event_date FROM ${rel}`;
    const t =
      (await lake.table(table)) ?? (await lake.createTable(table, { partitionColumns: ['event_date'] }));
    // Materialize first: the file is removed before the lake reads lazily.
    await lake.db.run(`CREATE OR REPLACE TEMP TABLE __talon_test_rows AS ${sql}`);
    const res = await t.append('SELECT * FROM __talon_test_rows');
    await lake.db.run('DROP TABLE __talon_test_rows');
    return res;
  } finally {
    await rm(file, { force: true });
  }
}

/** All rows of a table at its latest version, JSON-safe. */
export async function tableRows(
  lake: Lake,
  table: string,
  orderBy = '1',
): Promise<Record<string, unknown>[]> {
  const t = await lake.table(table);
  if (!t) return [];
  const snap = await t.snapshot();
  return lake.db.allJson(`SELECT * FROM ${await snap.scan()} ORDER BY ${orderBy}`);
}
