#!/usr/bin/env node
// Runs node's built-in test runner over the compiled test files.
// `*.fixtures.test.js` read ../shared/fixtures (present in this repo's CI, not in a user's
// clone) and run only with --fixtures; every other `*.test.js` is self-contained.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const [root = 'dist', ...flags] = process.argv.slice(2);
const fixtures = flags.includes('--fixtures');
const only = flags.filter((f) => !f.startsWith('--'));

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = walk(root)
  .filter((f) => f.endsWith('.fixtures.test.js') === fixtures)
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-reporter=spec', '--test-concurrency=3', ...files],
  { stdio: 'inherit', env: { ...process.env, TALON_LOG: process.env.TALON_LOG ?? 'silent' } },
);
process.exit(res.status ?? 1);
