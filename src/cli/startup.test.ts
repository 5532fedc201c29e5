/**
 * `talon` start-up: building the command tree (help, version, option parsing) must not load
 * the heavy libraries — they are imported inside each action. A module-resolution hook in the
 * child process makes importing any of them fail, so an eager import anywhere in the command
 * modules breaks these tests. The commands then still run: each action finds its lazy imports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SEVERITIES } from '../alerts/alerts.js';
import { FEED_FORMATS } from '../intel/feeds/index.js';
import { buildProgram } from './main.js';
import { LOAD_FORMATS } from './intel.js';
import { SEVERITY_NAMES } from './alerts.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.join(HERE, 'main.js');

/** Packages that cost start-up time; none may load before an action runs. */
const HEAVY = [
  '@duckdb/node-api',
  '@aws-sdk/',
  'kafkajs',
  'nodemailer',
  'zod',
  'yaml',
  'maxmind',
  'tldts',
  'csv-parse',
  '@ip-location-db/',
];

const HOOKS = `
const HEAVY = ${JSON.stringify(HEAVY)};
export async function resolve(specifier, context, next) {
  if (HEAVY.some((h) => specifier === h || specifier.startsWith(h.endsWith('/') ? h : h + '/')))
    throw new Error('start-up imported ' + specifier + ' (from ' + context.parentURL + ')');
  return next(specifier, context);
}
`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function node(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: opts.cwd,
      env: { ...process.env, TALON_CONFIG: '', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function withGuard<T>(fn: (guard: string[], dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-startup-'));
  try {
    await writeFile(path.join(dir, 'hooks.mjs'), HOOKS);
    await writeFile(
      path.join(dir, 'register.mjs'),
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});\n`,
    );
    return await fn(['--import', pathToFileURL(path.join(dir, 'register.mjs')).href], dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('startup: --help and --version load none of the heavy libraries', async () => {
  await withGuard(async (guard) => {
    const help = await node([...guard, MAIN, '--help']);
    assert.equal(help.code, 0, help.stderr);
    for (const c of ['tables', 'query', 'table', 'ingest', 'detect', 'notify', 'run', 'intel', 'rules'])
      assert.match(help.stdout, new RegExp(`^  ${c}\\b`, 'm'), `--help lists ${c}`);
    const version = await node([...guard, MAIN, '--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    // A usage error is reported without loading them either.
    const bad = await node([...guard, MAIN, 'tables', '--bogus']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown option '--bogus'/);
    assert.doesNotMatch(bad.stderr, /start-up imported/);
  });
});

test('startup: every command and its options are described without loading the heavy libraries', async () => {
  const paths: string[] = [];
  const walk = (cmd: ReturnType<typeof buildProgram>, prefix: string[]) => {
    for (const c of cmd.commands) {
      paths.push([...prefix, c.name()].join(' '));
      walk(c, [...prefix, c.name()]);
    }
  };
  walk(buildProgram(), []);
  assert.ok(paths.length >= 20, `found ${paths.length} commands`);

  await withGuard(async (guard, dir) => {
    // One process renders every command's help (a process per command would be slow).
    const script = path.join(dir, 'help-all.mjs');
    await writeFile(
      script,
      `const { buildProgram } = await import(${JSON.stringify(pathToFileURL(MAIN).href)});
const out = {};
const walk = (cmd, prefix) => {
  for (const c of cmd.commands) {
    const name = [...prefix, c.name()].join(' ');
    out[name] = c.helpInformation();
    walk(c, [...prefix, c.name()]);
  }
};
walk(buildProgram(), []);
process.stdout.write(JSON.stringify(out));
`,
    );
    const r = await node([...guard, script]);
    assert.equal(r.code, 0, r.stderr);
    const help = JSON.parse(r.stdout) as Record<string, string>;
    assert.deepEqual(Object.keys(help).sort(), [...paths].sort());
    assert.match(help['alerts list'], /--severity <level>/);
    assert.match(help['table vacuum'], /--retention-hours <h>/);
    assert.match(help['intel load'], /--format <format>/);
    assert.match(help['notify dead-letters'], /--failed/);
  });
});

test('startup: help texts spelled out in the CLI agree with the modules they stand in for', () => {
  assert.equal(SEVERITY_NAMES, SEVERITIES.join(', '));
  assert.deepEqual([...LOAD_FORMATS].sort(), [...FEED_FORMATS].sort());
  assert.equal(LOAD_FORMATS[0], 'csv');
});

test('startup: commands without a CLI test of their own find their lazily imported code', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-startup-run-'));
  try {
    const lake = path.join(dir, 'lake');
    const rules = path.join(dir, 'rules');
    await mkdir(rules);
    await writeFile(
      path.join(dir, 'talon.yaml'),
      `lake: ${JSON.stringify(lake)}\ndetect:\n  rules_dir: ${JSON.stringify(rules)}\n`,
    );
    const talon = (...args: string[]) => node([MAIN, ...args], { cwd: dir });

    const graph = await talon('pipeline', 'show', '--format', 'json');
    assert.equal(graph.code, 0, graph.stderr);
    assert.ok(Array.isArray((JSON.parse(graph.stdout) as { nodes?: unknown[] }).nodes));

    const list = await talon('rules', 'list', '--format', 'json');
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), []);

    const alerts = await talon('alerts', 'list', '--format', 'json', '--severity', 'high');
    assert.equal(alerts.code, 0, alerts.stderr);
    assert.deepEqual(JSON.parse(alerts.stdout), []);
    const badSeverity = await talon('alerts', 'list', '--severity', 'urgent');
    assert.equal(badSeverity.code, 2);
    assert.match(badSeverity.stderr, /--severity: expected one of info, low/);

    const dead = await talon('notify', 'dead-letters', '--format', 'json');
    assert.equal(dead.code, 0, dead.stderr);
    assert.deepEqual(JSON.parse(dead.stdout), []);

    // An invalid config is still a usage error (exit 2), recognised without importing zod early.
    const badConfig = await node([MAIN, 'tables'], {
      cwd: dir,
      env: { TALON_INGEST__MAX_LINE_BYTES: 'big' },
    });
    assert.equal(badConfig.code, 2, badConfig.stderr);
    assert.match(badConfig.stderr, /^talon: config: /m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
