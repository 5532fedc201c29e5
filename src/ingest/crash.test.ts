/**
 * kill -9 in the middle of `talon ingest`, then run it again: the tables must hold exactly
 * what one clean run writes — no event lost, none twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Lake } from '../lake/index.js';

function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
}

const MAIN = path.join(repoRoot(), 'dist', 'cli', 'main.js');
const TYPES = ['ProcessRollup2', 'DnsRequest', 'NetworkConnectIP4', 'UserLogon'];

async function writeInput(dir: string): Promise<void> {
  let id = 0;
  for (let b = 0; b < 4; b++) {
    const batch = path.join(dir, 'data', `batch-${b}`);
    await mkdir(batch, { recursive: true });
    for (let p = 0; p < 3; p++) {
      const rows: string[] = [];
      for (let i = 0; i < 1500; i++) {
        const t = TYPES[(i + p) % TYPES.length];
        rows.push(
          JSON.stringify({
            aid: `aid${i % 7}`,
            aip: '10.0.0.1',
            event_simpleName: t,
            id: `ev-${id++}`,
            timestamp: String(1700000000000 + id * 1000),
            ContextTimeStamp: (1700000000 + id).toFixed(3),
            LocalPort: String(i % 65535),
            CommandLine: `cmd ${id} ${'x'.repeat(i % 40)}`,
          }),
        );
      }
      if (b === 2 && p === 1) rows.push('{broken json');
      await writeFile(path.join(batch, `part-0000${p}.gz`), gzipSync(rows.join('\n') + '\n'));
    }
  }
}

function runIngest(
  input: string,
  lake: string,
  onSpawn?: (kill: () => void) => void,
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [MAIN, 'ingest', input, '--lake', lake, '--format', 'json', '--no-enrich', '--batch-events', '1000'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TALON_LOG: 'silent' } },
    );
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(signal ? null : code));
    onSpawn?.(() => child.kill('SIGKILL'));
  });
}

/** True once some event table has a data commit (version ≥ 1). */
function someTableCommitted(lake: string): boolean {
  if (!existsSync(lake)) return false;
  for (const t of readdirSync(lake)) {
    if (!TYPES.map((x) => x.toLowerCase()).includes(t)) continue;
    if (existsSync(path.join(lake, t, '_delta_log', '00000000000000000001.json'))) return true;
  }
  return false;
}

async function contents(
  lakeDir: string,
): Promise<Record<string, { rows: number; ids: number; sum: string }>> {
  const lake = await Lake.open(lakeDir);
  try {
    await lake.registerViews();
    const out: Record<string, { rows: number; ids: number; sum: string }> = {};
    for (const t of [...TYPES, 'quarantine']) {
      const key = t === 'quarantine' ? 'line' : 'id';
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

test('kill -9 mid-ingest, restart: same table contents as one clean run', { timeout: 600_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-crash-'));
  try {
    const input = path.join(dir, 'fdr');
    await writeInput(input);
    const clean = path.join(dir, 'clean');
    assert.equal(await runIngest(input, clean), 0);
    const expected = await contents(clean);
    assert.equal(expected.ProcessRollup2.rows, (4 * 3 * 1500) / 4);
    assert.equal(expected.quarantine.rows, 1);

    const crashed = path.join(dir, 'crashed');
    let killedMidway = false;
    const code = await runIngest(input, crashed, (kill) => {
      const poll = setInterval(() => {
        if (someTableCommitted(crashed)) {
          clearInterval(poll);
          killedMidway = true;
          kill();
        }
      }, 5);
    });
    assert.ok(killedMidway, 'the first run was killed after a table commit');
    assert.equal(code, null, 'killed by the signal');
    const partial = await contents(crashed).catch(() => undefined);
    if (partial)
      assert.ok(
        partial.ProcessRollup2.rows < expected.ProcessRollup2.rows ||
          partial.DnsRequest.rows < expected.DnsRequest.rows,
      );

    assert.equal(await runIngest(input, crashed), 0);
    const after = await contents(crashed);
    assert.deepEqual(after, expected);
    for (const t of TYPES) assert.equal(after[t].rows, after[t].ids, `${t}: no duplicates`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
