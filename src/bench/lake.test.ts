import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { it } from 'node:test';
import { runLakeBench } from './lake.js';

// A tiny run keeps the benchmark from rotting: it must write both layouts, and Talon and plain
// Parquet must read the same rows (runLakeBench throws otherwise). No timing is asserted.
it('lake benchmark runs end to end on a small table and both sides read the same rows', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'talon-bench-test-'));
  try {
    const res = await runLakeBench({
      rows: 3000,
      commits: 3,
      days: 6,
      repeat: 1,
      dir,
      keep: false,
      threads: 1,
      format: 'json',
      quiet: true,
      codec: 'snappy',
    });
    assert.equal(res.rows, 3000);
    assert.equal(res.partitions, 6);
    assert.ok(res.filteredRows > 0 && res.filteredRows < 3000);
    // Rows arrive in time order: each of the 3 commits covers 2 days → 6 files on each side.
    assert.equal(res.plain.files, 6);
    assert.equal(res.talon.files, 6);
    for (const m of [res.talon.append, res.talon.fullScan, res.talon.filteredScan, res.plain.append]) {
      assert.ok(m.rowsPerSec > 0 && Number.isFinite(m.rowsPerSec));
    }
    assert.equal(res.appendTargetMet, res.ratio.append >= 0.8);
    const entries = await fs.readdir(path.join(dir, 'lake', 'networklistenip4'));
    assert.ok(entries.includes('_delta_log'));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
