import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

function demo(cwd: string) {
  const r = spawnSync(
    process.execPath,
    [cli, 'demo', '--events', '3000', '--hosts', '12', '--days', '4', '--format', 'json'],
    { cwd, encoding: 'utf8', env: { ...process.env, TALON_LOG: 'error' } },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as {
    ingested: { events: number; files: number; quarantined: number };
    alerts: { alert_id: string; detection: string }[];
    check: Record<string, { expected: number; raised: number }>;
    notified: { destinations: string[]; sent: number };
  };
}

test('talon demo: generate → ingest → detect raises exactly the ground-truth alerts; a rerun adds nothing', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-demo-'));
  try {
    // As in a clone of the repository: the example rule file in ./rules runs too, and its alerts
    // are reported beside the ground-truth check without failing it (exit status 0 below).
    await cp(path.resolve(path.dirname(cli), '../../rules'), path.join(dir, 'rules'), { recursive: true });
    const first = demo(dir);
    assert.ok(first.ingested.events >= 3000, `ingested ${first.ingested.events}`);
    assert.equal(first.ingested.quarantined, 0);
    for (const d of ['vulnerable_services', 'new_logon_location', 'ioc_match']) {
      assert.ok(first.check[d], `ground truth has ${d}`);
      assert.ok(first.check[d].expected > 0, `${d} has planted alerts`);
      assert.deepEqual(first.check[d].raised, first.check[d].expected, d);
    }
    // Without configured destinations the notifier delivers every alert to an NDJSON file.
    assert.equal(first.notified.sent, first.alerts.length);
    const delivered = (await readFile(path.join(dir, 'talon-demo-data', 'alerts.ndjson'), 'utf8'))
      .split('\n')
      .filter(Boolean);
    assert.equal(delivered.length, first.alerts.length);
    const second = demo(dir);
    assert.equal(second.notified.sent, 0, 'nothing delivered twice');
    assert.equal(second.ingested.events, 0, 'nothing ingested twice');
    assert.deepEqual(second.alerts.map((a) => a.alert_id).sort(), first.alerts.map((a) => a.alert_id).sort());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
