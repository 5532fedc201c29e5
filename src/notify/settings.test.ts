import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import { createDestination } from './destinations/index.js';
import { Notifier } from './notifier.js';
import { Lake } from '../lake/lake.js';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/notify/README.md');

test('the README configuration example loads, builds every destination and its routes', async () => {
  const md = await readFile(README, 'utf8');
  const yaml = /```yaml\n(notify:[^]*?)```/
    .exec(md)![1]
    .replace(/ca_file: \/etc\/ssl\/ca\.pem/, 'reject_unauthorized: true');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-notify-cfg-'));
  try {
    const cfg = path.join(dir, 'talon.yaml');
    await writeFile(cfg, yaml);
    const env = Object.fromEntries(
      [
        'HOOK_SECRET',
        'SLACK_WEBHOOK_URL',
        'TEAMS_WORKFLOW_URL',
        'PD_ROUTING_KEY',
        'SMTP_PASSWORD',
        'HEC_TOKEN',
        'EVENTHUB_CONNECTION_STRING',
      ].map((k) => [
        k,
        k === 'SLACK_WEBHOOK_URL' || k === 'TEAMS_WORKFLOW_URL' ? 'https://hooks.example/x' : `value-of-${k}`,
      ]),
    );
    const config = await loadConfig({ configPath: cfg, env });
    const types = config.notify.destinations.map((d) => d.type).sort();
    assert.deepEqual(types, [
      'email',
      'file',
      'kafka',
      'pagerduty',
      'slack',
      'splunk',
      'syslog',
      'teams',
      'webhook',
    ]);
    const kafka = config.notify.destinations.find((d) => d.type === 'kafka');
    assert.equal(kafka?.type === 'kafka' && kafka.sasl?.username, '$ConnectionString');
    for (const d of config.notify.destinations) assert.equal(createDestination(d).name, d.name);
    const lake = await Lake.open(path.join(dir, 'lake'));
    try {
      const n = new Notifier(lake, config.notify);
      assert.equal(n.destinations.length, 9);
      await n.close();
    } finally {
      lake.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a route to an unknown destination is a configuration error naming it', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-notify-cfg-'));
  const lake = await Lake.open(path.join(dir, 'lake'));
  try {
    const config = await loadConfig({ env: {}, cwd: dir, overrides: {} });
    assert.throws(
      () =>
        new Notifier(lake, { ...config.notify, destinations: [], routes: [{ match: {}, to: ['ghost'] }] }),
      /notify\.routes\[0\]\.to: no destination named "ghost"/,
    );
  } finally {
    lake.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('notify.deliveries_retention: default 30d, 0 keeps forever, a malformed value names the key', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-notify-cfg-'));
  try {
    const defaults = await loadConfig({ env: {}, cwd: dir, overrides: {} });
    assert.equal(defaults.notify.deliveries_retention, '30d');
    const viaEnv = await loadConfig({
      env: { TALON_NOTIFY__DELIVERIES_RETENTION: '0' },
      cwd: dir,
      overrides: {},
    });
    assert.equal(Number(viaEnv.notify.deliveries_retention), 0);
    await writeFile(path.join(dir, 'talon.yaml'), 'notify:\n  deliveries_retention: a month\n');
    await assert.rejects(
      loadConfig({ env: {}, cwd: dir, overrides: {} }),
      (err: Error) => err.name === 'ConfigError' && /notify\.deliveries_retention/.test(err.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
