/**
 * Exactly-once after kill -9: `talon detect` is killed (SIGKILL, via the TALON_CRASH_AT hook)
 * at several points of a batch — after planning, between two sinks, between the sink writes
 * and the checkpoint commit — and restarted; the tables end up exactly as after one clean run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appendEvents, openTempLake, tableRows } from '../engine/test-support.js';
import type { Lake } from '../lake/lake.js';
import { csvIocsRelation } from '../intel/csv.js';
import { mergeIocs } from '../intel/iocs.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'main.js');
const T0 = Date.UTC(2026, 2, 1);
const H = 3600_000;
const HASH = 'ab'.repeat(32);

async function seed(lake: Lake, dir: string) {
  const as = (org: string) => ({ as_number: 1, as_org: org, as_network: '198.51.100.0/24' });
  await appendEvents(lake, 'NetworkListenIP4', [
    { aid: 'h1', aip: '203.0.113.1', LocalPort: 3389, timestamp: T0 },
    { aid: 'h2', aip: '203.0.113.2', LocalPort: 445, timestamp: T0 + H },
  ]);
  await appendEvents(lake, 'UserLogon', [
    { UserName: 'u1', aid: 'h1', aip: '198.51.100.1', timestamp: T0, aip_as: as('Home') },
    { UserName: 'u1', aid: 'h1', aip: '198.51.100.2', timestamp: T0 + 48 * H, aip_as: as('Elsewhere') },
  ]);
  await appendEvents(lake, 'ProcessRollup2', [
    { aid: 'h1', cid: 'c', aip: '203.0.113.1', id: 'p1', timestamp: T0 + H, SHA256HashData: HASH },
    { aid: 'h2', cid: 'c', aip: '203.0.113.2', id: 'p2', timestamp: T0 + 2 * H, SHA256HashData: HASH },
  ]);
  const csv = path.join(dir, 'iocs.csv');
  await writeFile(
    csv,
    `dataset,ioc,ioc_type,ioc_id,first_seen,last_seen,description\nt,${HASH},FileHash-SHA256,1,2026-01-01T00:00:00Z,,x\n`,
  );
  await mergeIocs(lake, await csvIocsRelation(lake.db, csv));
}

function detect(lakeDir: string, cwd: string, crashAt?: string) {
  return spawnSync(process.execPath, [cli, 'detect', '--lake', lakeDir], {
    cwd,
    env: { ...process.env, TALON_LOG: 'silent', TALON_CRASH_AT: crashAt ?? '' },
    encoding: 'utf8',
  });
}

async function state(lake: Lake) {
  const alerts = await tableRows(lake, 'alerts', 'alert_id');
  return {
    alerts: alerts.map((a) => `${a.alert_id} ${a.detection} ${a.dedup_key}`),
    vulnerable: (await tableRows(lake, 'vulnerable_services', 'aid')).length,
    matched: (await tableRows(lake, 'matched_iocs', 'aid')).length,
    locations: (await tableRows(lake, 'logon_locations', 'UserName, network')).map((r) => r.network),
  };
}

test('kill -9 at any point of a batch, restart: same alerts and rows, no duplicates', async () => {
  const clean = await openTempLake('talon-clean-');
  const crashy = await openTempLake('talon-crash-');
  try {
    await seed(clean.lake, clean.dir);
    await seed(crashy.lake, crashy.dir);
    const ok = detect(clean.lake.location, clean.dir);
    assert.equal(ok.status, 0, ok.stderr);
    const expected = await state(clean.lake);
    assert.equal(expected.alerts.length, 5, JSON.stringify(expected));

    for (const point of [
      // in the order the queries run, so each restart replays the last crash and reaches the next
      'after-sink:vulnerable_services',
      'after-offsets:new_logon_location.merge',
      'after-sink:new_logon_location.merge',
      'after-transform:new_logon_location.alerts',
      'after-sink:new_logon_location.alerts',
      'mid-sinks:ioc_match',
      'after-sink:ioc_match',
    ]) {
      const r = detect(crashy.lake.location, crashy.dir, point);
      assert.equal(
        r.signal,
        'SIGKILL',
        `${point}: expected the crash hook to fire (status ${r.status}) ${r.stderr}`,
      );
    }
    const done = detect(crashy.lake.location, crashy.dir);
    assert.equal(done.status, 0, done.stderr);
    assert.deepEqual(await state(crashy.lake), expected);
    // And once more: nothing new.
    const again = detect(crashy.lake.location, crashy.dir);
    assert.match(again.stdout, /no new data/);
    assert.deepEqual(await state(crashy.lake), expected);
  } finally {
    await clean.cleanup();
    await crashy.cleanup();
  }
});
