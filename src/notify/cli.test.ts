/** `talon notify`, `notify test DEST`, `notify dead-letters` through the real CLI, with config from talon.yaml and ${ENV}. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTempLake } from '../engine/test-support.js';
import { HttpReceiver } from '../testing/http-receiver.js';
import { commitAlerts, makeAlert } from './test-support.js';
import { loadConfig } from '../config/load.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, TALON_LOG: 'warn', ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('notify CLI: test sends a sample alert; notify delivers; dead-letters lists what gave up', async () => {
  const { lake, dir, cleanup } = await openTempLake('talon-notify-cli-');
  const ok = await HttpReceiver.start();
  const down = await HttpReceiver.start();
  down.defaultResponse = { status: 503, body: 'maintenance' };
  try {
    const cfg = path.join(dir, 'talon.yaml');
    await writeFile(
      cfg,
      [
        `lake: ${JSON.stringify(path.join(dir, 'lake'))}`,
        'notify:',
        '  retry: { max_attempts: 2, initial_backoff: 10ms, max_backoff: 20ms }',
        '  destinations:',
        `    - { name: soc, type: slack, url: "${ok.url('/slack')}" }`,
        `    - { name: siem, type: webhook, url: "${down.url('/hook')}", secret: "\${HOOK_SECRET}" }`,
      ].join('\n') + '\n',
    );
    const env = { HOOK_SECRET: 'from-env' };
    const config = await loadConfig({ configPath: cfg, env: { ...process.env, ...env } });
    const siem = config.notify.destinations.find((d) => d.name === 'siem');
    assert.equal(siem?.type === 'webhook' && siem.secret, 'from-env', '${ENV} substituted');

    const t = await cli(['--config', cfg, 'notify', 'test', 'soc'], env);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^soc \(slack\): ok HTTP 200/);
    assert.equal(ok.requests.length, 1);
    assert.ok(!ok.requests[0].text.includes('<!channel>'), 'sample alert escaped');
    const bad = await cli(['--config', cfg, 'notify', 'test', 'siem'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /siem \(webhook\): failed \(retryable\) HTTP 503/);
    const unknown = await cli(['--config', cfg, 'notify', 'test', 'nope'], env);
    assert.equal(unknown.code, 2);

    await commitAlerts(lake, [makeAlert(1), makeAlert(2)]);
    const run = await cli(['--config', cfg, 'notify'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /4 message\(s\), 2 sent, 0 suppressed, 0 failed, 2 dead-lettered/);
    assert.equal(ok.requests.length, 3);
    const dl = await cli(['--config', cfg, 'notify', 'dead-letters', '--format', 'json'], env);
    assert.equal(dl.code, 0, dl.stderr);
    const rows = JSON.parse(dl.stdout) as { alert_id: string; destination: string; http_status: number }[];
    assert.deepEqual(rows.map((r) => [r.alert_id, r.destination, r.http_status]).sort(), [
      ['alert-00001', 'siem', 503],
      ['alert-00002', 'siem', 503],
    ]);
  } finally {
    await ok.close();
    await down.close();
    await cleanup();
  }
});
