import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFdr } from '../generate/index.js';
import { Lake } from '../lake/lake.js';
import { listAlerts } from '../alerts/alerts.js';
import { configSchema } from '../config/config.js';
import { Logger } from '../log.js';
import { serviceParts } from './run.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

async function gzFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => String(e).endsWith('.gz')).length;
}

/** Files in ingest_log and alert ids in the alerts table, read as any other reader would. */
async function lakeState(lakeDir: string): Promise<{ files: number; alerts: string[] }> {
  const lake = await Lake.open(lakeDir);
  try {
    const log = await lake.table('ingest_log');
    let files = 0;
    if (log) {
      const snap = await log.snapshot();
      if (snap.schema.fields.length) {
        const [{ n }] = await lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${await snap.scan()}`);
        files = Number(n);
      }
    }
    return { files, alerts: (await listAlerts(lake)).map((a) => a.alert_id) };
  } finally {
    lake.close();
  }
}

async function sentAlertIds(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { alert_id?: string; alert?: { alert_id: string } })
    .map((m) => m.alert_id ?? m.alert?.alert_id ?? '');
}

/** Starts `talon run`, waits until `until()` holds (or the bound passes), then SIGTERMs it. */
async function runUntil(cwd: string, until: () => Promise<boolean>, boundMs: number) {
  const child = spawn(process.execPath, [cli, 'run', '--config', 'talon.yaml'], {
    cwd,
    env: { ...process.env, TALON_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + boundMs;
  let reached = false;
  // `talon run` logs its start after it has installed its SIGTERM handler; a SIGTERM before
  // that would kill a process that has done nothing yet (exit by signal, not code 0).
  const started = () => /"msg":"talon run"|INFO\s+talon run\b/.test(stderr);
  while (Date.now() < deadline) {
    if (started() && (await until())) {
      reached = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  child.kill('SIGTERM');
  const code = await exited;
  return { reached, code, stderr };
}

test('talon run: watch → ingest → detections → notifier in one process; SIGTERM exits cleanly; a restart redoes nothing', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-run-'));
  try {
    const data = path.join(dir, 'incoming');
    await generateFdr({ out: data, events: 3000, hosts: 12, days: 4, seed: 'run-test', progress: false });
    const truth = JSON.parse(await readFile(path.join(data, 'ground-truth.json'), 'utf8')) as {
      parameters: { known_servers: string[]; learning_period: { days: number } };
    };
    const sent = path.join(dir, 'sent.ndjson');
    await writeFile(
      path.join(dir, 'talon.yaml'),
      JSON.stringify({
        lake: path.join(dir, 'lake'),
        ingest: { watch: { paths: [data], stable_ms: 200 } },
        detect: {
          known_servers: truth.parameters.known_servers,
          learning_period: `${truth.parameters.learning_period.days}d`,
          disabled: ['ioc_retrohunt'],
          poll_ms: 200,
        },
        notify: { destinations: [{ name: 'out', type: 'file', path: sent }] },
      }),
    );
    const load = spawnSync(
      process.execPath,
      [cli, 'intel', 'load', path.join(data, 'iocs.csv'), '--config', 'talon.yaml'],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.equal(load.status, 0, load.stderr);

    // Files arrive one by one and the detections run continuously. What must hold: every file
    // ingested once, alerts raised, every alert delivered exactly once — also across a restart
    // (an alert withdrawn by late data is closed, and its closing is delivered, not a new alert).
    const lakeDir = path.join(dir, 'lake');
    const files = await gzFiles(data);
    let state = { files: 0, alerts: [] as string[] };
    let streak = 0;
    const quiescent = async () => {
      state = await lakeState(lakeDir).catch(() => state);
      const sentIds = await sentAlertIds(sent);
      const ok = state.files === files && state.alerts.length > 0 && sentIds.length === state.alerts.length;
      streak = ok ? streak + 1 : 0;
      return streak >= 3;
    };
    const first = await runUntil(dir, quiescent, 240_000);
    assert.ok(
      first.reached,
      `ingested ${state.files}/${files} files, ${state.alerts.length} alerts\n${first.stderr.slice(-3000)}`,
    );
    assert.equal(first.code, 0, `SIGTERM → clean exit\n${first.stderr.slice(-2000)}`);
    let ids = await sentAlertIds(sent);
    state = await lakeState(lakeDir);
    assert.equal(new Set(ids).size, ids.length, 'no alert delivered twice');
    assert.deepEqual([...ids].sort(), [...state.alerts].sort(), 'every alert delivered');

    streak = 0;
    const second = await runUntil(dir, quiescent, 60_000);
    assert.equal(second.code, 0, second.stderr.slice(-2000));
    ids = await sentAlertIds(sent);
    state = await lakeState(lakeDir);
    assert.equal(state.files, files, 'no file ingested twice');
    assert.equal(new Set(ids).size, ids.length, 'no alert delivered twice after the restart');
    assert.deepEqual([...ids].sort(), [...state.alerts].sort());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('talon run: the maintenance part compacts the tables after first_after, then every interval; "0" turns it off', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-run-maint-'));
  const lakeDir = path.join(dir, 'lake');
  try {
    const lake = await Lake.open(lakeDir);
    try {
      const t = await lake.createTable('events', {});
      for (let i = 0; i < 3; i++) await t.append(`SELECT ${i} AS n`);
    } finally {
      lake.close();
    }
    let lines = '';
    const log = new Logger({ level: 'info', format: 'json', stream: { write: (s: string) => (lines += s) } });
    const config = configSchema.parse({ maintenance: { interval: '24h', first_after: '0' } });
    const ac = new AbortController();
    const part = serviceParts({ lake: lakeDir, config, signal: ac.signal, log }).find(
      (p) => p.name === 'maintenance',
    );
    assert.ok(part, 'a maintenance part by default');
    const running = part.run(ac.signal);
    for (let i = 0; i < 200 && !lines.includes('"maintenance round"'); i++)
      await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await running;
    const round = lines
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'maintenance round');
    assert.ok(round, lines);
    assert.equal(round.compacted_files, 3);
    assert.equal(round.failed, 0);
    const after = await Lake.open(lakeDir);
    try {
      assert.equal((await (await after.table('events'))!.snapshot()).files.length, 1);
    } finally {
      after.close();
    }

    const off = configSchema.parse({ maintenance: { interval: '0' } });
    assert.ok(
      !serviceParts({ lake: lakeDir, config: off, signal: ac.signal, log }).some(
        (p) => p.name === 'maintenance',
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
