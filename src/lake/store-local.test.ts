import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LocalStore, LOCAL_STAGING_DIR } from './store-local.js';
import { objectStoreContract } from './store-contract.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'talon-store-local-'));
}

objectStoreContract('LocalStore', async () => {
  const dir = await tempDir();
  const store = await LocalStore.open(path.join(dir, 'lake'));
  return { store, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
});

/**
 * A child process that tries to create every key with its own body and prints the keys it won.
 * Both children start at the same wall-clock instant so their attempts interleave.
 */
const RACER = `
import { LocalStore } from ${JSON.stringify(new URL('./store-local.js', import.meta.url).href)};
const [root, who, count, startAt] = process.argv.slice(1);
const store = await LocalStore.open(root);
while (Date.now() < Number(startAt)) {}
const won = [];
for (let v = 0; v < Number(count); v++) {
  const key = 'racetable/_delta_log/' + String(v).padStart(20, '0') + '.json';
  const body = JSON.stringify({ commitInfo: { writer: who, version: v, pad: who.repeat(50000) } }) + '\\n';
  if (await store.putIfAbsent(key, body)) won.push(v);
}
process.stdout.write(JSON.stringify(won));
`;

function runRacer(root: string, who: string, count: number, startAt: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', RACER, root, who, String(count), String(startAt)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`racer ${who} exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as number[]);
    });
  });
}

describe('LocalStore', () => {
  it('two processes racing putIfAbsent on the same keys: exactly one wins each, content intact', async (t) => {
    const dir = await tempDir();
    try {
      const root = path.join(dir, 'lake');
      const count = 300;
      const startAt = Date.now() + 1500;
      const [a, b] = await Promise.all([
        runRacer(root, 'A', count, startAt),
        runRacer(root, 'B', count, startAt),
      ]);
      const winsA = new Set(a);
      t.diagnostic(`writer A won ${a.length}, writer B won ${b.length} of ${count} versions`);
      for (const v of b) assert.ok(!winsA.has(v), `version ${v} won by both writers`);
      assert.equal(a.length + b.length, count, 'every version won by someone');
      const store = await LocalStore.open(root);
      for (let v = 0; v < count; v++) {
        const key = `racetable/_delta_log/${String(v).padStart(20, '0')}.json`;
        const who = winsA.has(v) ? 'A' : 'B';
        const expected =
          JSON.stringify({ commitInfo: { writer: who, version: v, pad: who.repeat(50000) } }) + '\n';
        assert.equal((await store.get(key))!.toString(), expected, `version ${v} intact and by its winner`);
      }
      // No temp files of the losers were left behind.
      assert.deepEqual(await fs.readdir(path.join(root, LOCAL_STAGING_DIR)), []);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('creates the folder, resolves it to an absolute path and names it by a file:// url', async () => {
    const dir = await tempDir();
    try {
      const root = path.join(dir, 'nested', 'lake');
      const store = await LocalStore.open(root);
      assert.equal(store.root, root);
      assert.equal(store.url, 'file://' + root);
      assert.ok((await fs.stat(root)).isDirectory());
      await store.put('t/_delta_log/00000000000000000000.json', '{}');
      assert.equal(
        await store.localPath('t/_delta_log/00000000000000000000.json'),
        path.join(root, 't', '_delta_log', '00000000000000000000.json'),
      );
      assert.equal(
        await fs.readFile(path.join(root, 't/_delta_log/00000000000000000000.json'), 'utf8'),
        '{}',
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('puts staging inside the lake root (same filesystem) and upload moves the file', async () => {
    const dir = await tempDir();
    try {
      const store = await LocalStore.open(dir);
      const staged = await store.stagingPath('part-0.parquet');
      assert.equal(path.dirname(staged), path.join(dir, LOCAL_STAGING_DIR));
      await fs.writeFile(staged, 'data');
      await store.upload(staged, 't/part-0.parquet');
      await assert.rejects(fs.stat(staged), /ENOENT/);
      assert.equal(await fs.readFile(path.join(dir, 't/part-0.parquet'), 'utf8'), 'data');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('uploads a file written outside the staging folder', async () => {
    const dir = await tempDir();
    const other = await tempDir();
    try {
      const store = await LocalStore.open(dir);
      const src = path.join(other, 'outside.parquet');
      await fs.writeFile(src, 'outside');
      await store.upload(src, 't/outside.parquet');
      assert.equal((await store.get('t/outside.parquet'))!.toString(), 'outside');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
      await fs.rm(other, { recursive: true, force: true });
    }
  });

  it('removes stale leftovers of crashed writers from staging on open, keeps fresh ones', async () => {
    const dir = await tempDir();
    try {
      await LocalStore.open(dir);
      const staging = path.join(dir, LOCAL_STAGING_DIR);
      await fs.writeFile(path.join(staging, 'old-tmp'), 'x');
      await fs.writeFile(path.join(staging, 'new-tmp'), 'y');
      const twoDaysAgo = new Date(Date.now() - 48 * 3600 * 1000);
      await fs.utimes(path.join(staging, 'old-tmp'), twoDaysAgo, twoDaysAgo);
      await LocalStore.open(dir);
      assert.deepEqual(await fs.readdir(staging), ['new-tmp']);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
