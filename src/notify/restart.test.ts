/**
 * kill -9 and restart of `talon notify`: nothing already delivered is sent again, nothing is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTempLake } from '../engine/test-support.js';
import { HttpReceiver } from '../testing/http-receiver.js';
import { commitAlerts, makeAlert } from './test-support.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runCli(
  args: string[],
  env: Record<string, string> = {},
  onStart?: (kill: () => void) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, TALON_LOG: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
    onStart?.(() => child.kill('SIGKILL'));
  });
}

async function setup(record_every: number) {
  const tmp = await openTempLake('talon-notify-restart-');
  const rx = await HttpReceiver.start();
  const cfg = path.join(tmp.dir, 'talon.yaml');
  await writeFile(
    cfg,
    [
      'notify:',
      `  record_every: ${record_every}`,
      '  concurrency: 1',
      '  destinations:',
      `    - { name: hook, type: webhook, url: "${rx.url('/hook')}" }`,
    ].join('\n') + '\n',
  );
  await commitAlerts(
    tmp.lake,
    Array.from({ length: 20 }, (_, i) => makeAlert(i)),
  );
  await commitAlerts(
    tmp.lake,
    Array.from({ length: 20 }, (_, i) => makeAlert(100 + i)),
  );
  const args = ['notify', '--config', cfg, '--lake', path.join(tmp.dir, 'lake')];
  const ids = () => rx.json().map((b) => String(b.alert_id));
  return { ...tmp, rx, args, ids };
}

test('kill -9 right after a round of deliveries is recorded: the restart sends only the rest, once', async () => {
  const s = await setup(5);
  try {
    const first = await runCli(s.args, { TALON_NOTIFY_CRASH_AFTER_RECORDS: '3' });
    assert.equal(first.signal, 'SIGKILL', first.stderr);
    assert.equal(s.rx.requests.length, 15);
    const second = await runCli(s.args);
    assert.equal(second.code, 0, second.stderr);
    const ids = s.ids();
    assert.equal(ids.length, 40, 'every alert delivered');
    assert.equal(new Set(ids).size, 40, 'no alert delivered twice');
  } finally {
    await s.rx.close();
    await s.cleanup();
  }
});

test('kill -9 after every send but before the checkpoint commit: the replayed batch sends nothing again', async () => {
  const s = await setup(50);
  try {
    const first = await runCli(s.args, { TALON_CRASH_AT: 'after-transform:notify' });
    assert.equal(first.signal, 'SIGKILL', first.stderr);
    assert.equal(s.rx.requests.length, 40);
    const second = await runCli(s.args);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(s.rx.requests.length, 40);
  } finally {
    await s.rx.close();
    await s.cleanup();
  }
});

test('kill -9 at an arbitrary moment: no loss, and at most the round in flight is sent twice', async () => {
  const s = await setup(4);
  try {
    s.rx.defaultResponse = { status: 200, delayMs: 20 };
    const first = await runCli(s.args, {}, (kill) => {
      void s.rx.waitFor(10, 60_000).then(kill, kill);
    });
    assert.equal(first.signal, 'SIGKILL', first.stderr);
    s.rx.defaultResponse = { status: 200 };
    const second = await runCli(s.args);
    assert.equal(second.code, 0, second.stderr);
    const ids = s.ids();
    assert.equal(new Set(ids).size, 40, 'every alert delivered');
    assert.ok(ids.length - 40 <= 4, `${ids.length - 40} duplicate(s), at most one round of 4`);
  } finally {
    await s.rx.close();
    await s.cleanup();
  }
});
