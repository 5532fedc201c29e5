/** The CLI faces of intel, rules and alerts, run as a user runs them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appendEvents, openTempLake, tableRows } from '../engine/test-support.js';
import { Pipeline } from '../engine/pipeline.js';
import { detectionQueries, loadDetections } from '../detections/registry.js';
import { parseSince } from './alerts.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'main.js');
const talon = (cwd: string, ...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], {
    cwd,
    env: { ...process.env, TALON_LOG: 'silent' },
    encoding: 'utf8',
  });

test('intel load (idempotent per file), alerts list --format json, rules test exit codes', async () => {
  const t = await openTempLake('talon-cli-');
  try {
    const hash = 'cd'.repeat(32);
    const csv = path.join(t.dir, 'iocs.csv');
    await writeFile(
      csv,
      `dataset,ioc,ioc_type,ioc_id,first_seen,last_seen,description\nfeed,${hash.toUpperCase()},FileHash-SHA256,7,2026-01-01T00:00:00Z,,"bad, very"\n`,
    );
    let r = talon(t.dir, 'intel', 'load', csv, '--format', 'csv', '--lake', t.lake.location);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1 IoC row\(s\) read/);
    r = talon(t.dir, 'intel', 'load', csv, '--lake', t.lake.location);
    assert.match(r.stdout, /already loaded/);
    const iocs = await tableRows(t.lake, 'iocs');
    assert.deepEqual(
      iocs.map((i) => [i.ioc, i.description]),
      [[hash, 'bad, very']],
    );
    const bad = path.join(t.dir, 'bad.csv');
    await writeFile(bad, 'value,type\nx,y\n');
    r = talon(t.dir, 'intel', 'load', bad, '--lake', t.lake.location);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no 'ioc' column/);

    await appendEvents(t.lake, 'ProcessRollup2', [
      {
        aid: 'h1',
        cid: 'c',
        aip: '203.0.113.1',
        id: 'p1',
        timestamp: '2026-02-01T00:00:00Z',
        SHA256HashData: hash,
      },
    ]);
    await new Pipeline(
      t.lake,
      detectionQueries(await loadDetections({}, { rulesDir: t.dir })),
    ).runAvailableNow();
    r = talon(t.dir, 'alerts', 'list', '--format', 'json', '--lake', t.lake.location);
    assert.equal(r.status, 0, r.stderr);
    const alerts = JSON.parse(r.stdout) as { detection: string; aid: string; evidence: { ioc: string } }[];
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].detection, 'ioc_match');
    assert.equal(alerts[0].evidence.ioc, hash);
    r = talon(
      t.dir,
      'alerts',
      'list',
      '--format',
      'json',
      '--severity',
      'critical',
      '--lake',
      t.lake.location,
    );
    assert.deepEqual(JSON.parse(r.stdout), []);
    r = talon(t.dir, 'alerts', 'list', '--severity', 'urgent', '--lake', t.lake.location);
    assert.equal(r.status, 2);

    const rule = path.join(t.dir, 'r.yaml');
    await writeFile(
      rule,
      `id: r1\ntitle: R\nseverity: low\nsources: [ev]\nsql: SELECT timestamp FROM ev\ntests:\n  - name: wrong\n    events: { ev: [{ timestamp: "2026-01-01T00:00:00Z" }] }\n    expect: { alerts: 2 }\n`,
    );
    r = talon(t.dir, 'rules', 'test', rule);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /FAIL r1 › wrong — expected 2 alert\(s\), got 1/);
    await writeFile(rule, `id: r1\ntitle: R\nseverity: loud\nsources: [ev]\nsql: SELECT 1\n`);
    r = talon(t.dir, 'rules', 'test', rule);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /severity: /);
  } finally {
    await t.cleanup();
  }
});

test('--since takes an ISO time or a duration back from now', () => {
  const now = Date.UTC(2026, 0, 2);
  assert.equal(parseSince('24h', now).toISOString(), '2026-01-01T00:00:00.000Z');
  assert.equal(parseSince('2026-01-01T12:00:00Z', now).toISOString(), '2026-01-01T12:00:00.000Z');
  assert.throws(() => parseSince('yesterday', now), /--since/);
});

test('intel load --format csv flags allow-listed IoCs from the config; intel list pages and filters', async () => {
  const t = await openTempLake('talon-cli-');
  try {
    const csv = path.join(t.dir, 'iocs.csv');
    await writeFile(
      csv,
      'dataset,ioc,ioc_type,ioc_id,first_seen,last_seen,description\n' +
        'feed,8.8.8.8,IPv4,1,2026-01-01T00:00:00Z,,resolver\n' +
        'feed,203.0.113.9,IPv4,2,2026-01-01T00:00:00Z,,c2\n' +
        'feed,198.51.100.7,IPv4,3,2026-01-01T00:00:00Z,,c2\n',
    );
    const config = path.join(t.dir, 'talon.yaml');
    await writeFile(config, 'intel:\n  allow_list: ["8.8.8.8"]\n');
    let r = talon(t.dir, '--config', config, 'intel', 'load', csv, '--lake', t.lake.location);
    assert.equal(r.status, 0, r.stderr);
    r = talon(t.dir, 'intel', 'list', '--allow-listed', '--format', 'json', '--lake', t.lake.location);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      (JSON.parse(r.stdout) as { ioc: string; allow_listed: boolean }[]).map((x) => [x.ioc, x.allow_listed]),
      [['8.8.8.8', true]],
    );
    r = talon(
      t.dir,
      'intel',
      'list',
      '--no-allow-listed',
      '--limit',
      '1',
      '--format',
      'json',
      '--lake',
      t.lake.location,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      (JSON.parse(r.stdout) as { ioc: string }[]).map((x) => x.ioc),
      ['198.51.100.7'],
    );
    assert.match(r.stderr, /rows 1-1 of 2; --offset 1 for more/);
    r = talon(
      t.dir,
      'intel',
      'list',
      '--offset',
      '1',
      '--search',
      '203.0',
      '--format',
      'json',
      '--lake',
      t.lake.location,
    );
    assert.deepEqual(JSON.parse(r.stdout), []);
    r = talon(t.dir, 'intel', 'list', '--limit', '-3', '--lake', t.lake.location);
    assert.notEqual(r.status, 0);
  } finally {
    await t.cleanup();
  }
});
