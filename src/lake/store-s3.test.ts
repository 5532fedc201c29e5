import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFauxqs, type Fauxqs } from '../testing/fauxqs.js';
import { objectStoreContract } from './store-contract.js';
import { parseS3Url, S3Store, type S3StoreOptions } from './store-s3.js';

let emu: Fauxqs;
let plain: Fauxqs;
let bucketSeq = 0;
const tmpDirs: string[] = [];

before(async () => {
  emu = await startFauxqs();
  plain = await startFauxqs({ conditionalPut: false });
});
after(async () => {
  await emu.stop();
  await plain.stop();
  for (const d of tmpDirs) await fs.rm(d, { recursive: true, force: true });
});

async function openStore(
  on: () => Fauxqs,
  prefix: string,
  extra: S3StoreOptions = {},
): Promise<{ store: S3Store; bucket: string; cacheDir: string }> {
  const bucket = `talon-test-${++bucketSeq}`;
  await on().createBucket(bucket);
  const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'talon-s3-cache-'));
  tmpDirs.push(cacheDir);
  const store = await S3Store.open(`s3://${bucket}/${prefix}`, {
    endpoint: on().endpoint,
    region: on().region,
    credentials: on().credentials,
    cacheDir,
    ...extra,
  });
  return { store, bucket, cacheDir };
}

objectStoreContract('S3Store (fauxqs + S3 conditional writes)', async () => {
  const { store } = await openStore(() => emu, 'lakes/main');
  return { store, cleanup: async () => {} };
});

objectStoreContract('S3Store at the bucket root', async () => {
  const { store } = await openStore(() => emu, '');
  return { store, cleanup: async () => {} };
});

describe('S3Store', () => {
  it('parses s3:// urls into bucket and key prefix', () => {
    assert.deepEqual(parseS3Url('s3://b'), { bucket: 'b', prefix: '' });
    assert.deepEqual(parseS3Url('s3://b/'), { bucket: 'b', prefix: '' });
    assert.deepEqual(parseS3Url('s3://b/x/y/'), { bucket: 'b', prefix: 'x/y/' });
    assert.throws(() => parseS3Url('/local/dir'), /S3 URL/);
    assert.throws(() => parseS3Url('s3://b/../x'), /key/);
  });

  it('keeps objects under its prefix and names itself by url', async () => {
    const { store, bucket } = await openStore(() => emu, 'team/lake/');
    assert.equal(store.url, `s3://${bucket}/team/lake`);
    await store.put('t/a.json', 'a');
    const other = await S3Store.open(`s3://${bucket}`, {
      endpoint: emu.endpoint,
      credentials: emu.credentials,
      cacheDir: store.cacheDir,
    });
    assert.equal((await other.get('team/lake/t/a.json'))?.toString(), 'a');
    const listed: string[] = [];
    for await (const o of store.list('')) listed.push(o.key);
    assert.deepEqual(listed, ['t/a.json']);
  });

  it('lists across pages (more than 1000 objects)', async () => {
    const { store } = await openStore(() => emu, 'many');
    const keys = Array.from({ length: 1050 }, (_, i) => `t/_delta_log/${String(i).padStart(20, '0')}.json`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, '{}')));
    }
    const listed: string[] = [];
    for await (const o of store.list('t/_delta_log/')) listed.push(o.key);
    assert.deepEqual(listed, keys);
    await store.delete(keys);
    for await (const o of store.list('t/')) assert.fail(`left after delete: ${o.key}`);
  });

  it('serves immutable files from the cache: upload primes it, a second reader downloads once', async () => {
    const { store, bucket } = await openStore(() => emu, 'cache');
    const staged = await store.stagingPath('part-0.parquet');
    await fs.writeFile(staged, 'parquet bytes');
    const key = 't/event_date=2024-01-01/part-0.parquet';
    await store.upload(staged, key);
    const gets0 = emu.requests.GET ?? 0;
    const heads0 = emu.requests.HEAD ?? 0;
    assert.equal(await fs.readFile(await store.localPath(key), 'utf8'), 'parquet bytes');
    assert.equal(emu.requests.GET ?? 0, gets0, 'the writer reads its own upload without a download');
    assert.equal(emu.requests.HEAD ?? 0, heads0, 'immutable keys need no HEAD');

    const otherCache = await fs.mkdtemp(path.join(os.tmpdir(), 'talon-s3-cache-'));
    tmpDirs.push(otherCache);
    const reader = await S3Store.open(`s3://${bucket}/cache`, {
      endpoint: emu.endpoint,
      credentials: emu.credentials,
      cacheDir: otherCache,
    });
    const p1 = await reader.localPath(key);
    const p2 = await reader.localPath(key);
    assert.equal(p1, p2);
    assert.ok(p1.startsWith(otherCache));
    assert.equal(await fs.readFile(p1, 'utf8'), 'parquet bytes');
    assert.equal((emu.requests.GET ?? 0) - gets0, 1, 'one download for two reads');
  });

  it('re-fetches a mutable object (_last_checkpoint) after another writer replaced it', async () => {
    const { store, bucket, cacheDir } = await openStore(() => emu, 'mut');
    const writer = await S3Store.open(`s3://${bucket}/mut`, {
      endpoint: emu.endpoint,
      credentials: emu.credentials,
      cacheDir: await fs.mkdtemp(path.join(os.tmpdir(), 'talon-s3-cache-')),
    });
    tmpDirs.push(writer.cacheDir);
    await writer.put('t/_delta_log/_last_checkpoint', '{"version":10}');
    assert.equal(
      await fs.readFile(await store.localPath('t/_delta_log/_last_checkpoint'), 'utf8'),
      '{"version":10}',
    );
    await writer.put('t/_delta_log/_last_checkpoint', '{"version":20}');
    const p = await store.localPath('t/_delta_log/_last_checkpoint');
    assert.ok(p.startsWith(cacheDir));
    assert.equal(await fs.readFile(p, 'utf8'), '{"version":20}');
  });

  it('re-fetches a log file re-created under the same name (table dropped and created again)', async () => {
    const { store, bucket } = await openStore(() => emu, 'recreate');
    const writer = await S3Store.open(`s3://${bucket}/recreate`, {
      endpoint: emu.endpoint,
      credentials: emu.credentials,
      cacheDir: store.cacheDir,
    });
    const key = 't/_delta_log/00000000000000000010.checkpoint.parquet';
    await writer.put(key, 'old table');
    assert.equal(await fs.readFile(await store.localPath(key), 'utf8'), 'old table');
    await writer.delete([key]);
    await writer.put(key, 'new table');
    assert.equal(await fs.readFile(await store.localPath(key), 'utf8'), 'new table');
  });

  it('uploads large files in parts (multipart) and reads them back', async () => {
    const { store, bucket } = await openStore(() => emu, 'big');
    const bytes = randomBytes(20 * 1024 * 1024 + 3); // 3 parts of 8 MiB; fauxqs takes ≤ 11 MiB per request
    const staged = await store.stagingPath('big.parquet');
    await fs.writeFile(staged, bytes);
    const posts0 = emu.requests.POST ?? 0;
    await store.upload(staged, 't/big.parquet');
    assert.ok((emu.requests.POST ?? 0) - posts0 >= 2, 'CreateMultipartUpload + CompleteMultipartUpload');
    assert.equal((await store.head('t/big.parquet'))?.size, bytes.length);
    const other = await S3Store.open(`s3://${bucket}/big`, {
      endpoint: emu.endpoint,
      credentials: emu.credentials,
      cacheDir: await fs.mkdtemp(path.join(os.tmpdir(), 'talon-s3-cache-')),
    });
    tmpDirs.push(other.cacheDir);
    assert.ok((await fs.readFile(await other.localPath('t/big.parquet'))).equals(bytes));
    assert.ok((await fs.readFile(await store.localPath('t/big.parquet'))).equals(bytes));
  });

  it('fails clearly on a missing object and on a missing bucket', async () => {
    const { store } = await openStore(() => emu, 'missing');
    await assert.rejects(store.localPath('t/_delta_log/_last_checkpoint'), /no such object/);
    const nobucket = await S3Store.open('s3://no-such-bucket/x', {
      endpoint: emu.endpoint,
      credentials: emu.credentials,
      cacheDir: store.cacheDir,
    });
    await assert.rejects(nobucket.put('a.json', 'x'), /bucket/i);
  });

  it('a losing commit writer ends on 412; a 409 conflict while another PUT is in flight is retried', async (t) => {
    // S3 answers 409 when conditional writes to one key overlap; holding each PUT makes them overlap.
    const slow = await startFauxqs({ conditionalPutDelayMs: 100 });
    t.after(() => slow.stop());
    const { store } = await openStore(() => slow, 'conflicts');
    const writers = 6;
    const atStart = { ...slow.refused };
    const body = (i: number) => `writer ${i} ` + 'y'.repeat(2_000_000);
    const won = await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        store.putIfAbsent('t/_delta_log/00000000000000000007.json', body(i)),
      ),
    );
    assert.equal(won.filter(Boolean).length, 1);
    const conflicts = slow.refused.conflict - atStart.conflict;
    t.diagnostic(`409 conflicts retried: ${conflicts}`);
    assert.ok(conflicts > 0, 'writers met while a conditional PUT was in flight');
    assert.equal(
      slow.refused.preconditionFailed - atStart.preconditionFailed,
      writers - 1,
      'every loser saw 412',
    );
    assert.equal(
      (await store.get('t/_delta_log/00000000000000000007.json'))?.toString(),
      body(won.indexOf(true)),
    );
  });

  it('against an S3 without conditional writes, the default stays conditional and the unsafe mode is opt-in', async () => {
    // Plain fauxqs 1.x ignores If-None-Match: a conditional PUT overwrites. This documents why
    // the emulator above adds S3's behaviour, and what `unsafeNoConditionalPut` does instead.
    const { store: conditional } = await openStore(() => plain, 'p');
    assert.equal(await conditional.putIfAbsent('k.json', 'one'), true);
    const secondWins = await conditional.putIfAbsent('k.json', 'two');
    const fauxqsHonours = !secondWins;
    assert.equal((await conditional.get('k.json'))?.toString(), fauxqsHonours ? 'one' : 'two');

    const { store: unsafe } = await openStore(() => plain, 'u', { unsafeNoConditionalPut: true });
    assert.equal(await unsafe.putIfAbsent('k.json', 'one'), true);
    assert.equal(await unsafe.putIfAbsent('k.json', 'two'), false);
    assert.equal((await unsafe.get('k.json'))?.toString(), 'one');
  });

  it('bounds the local cache: least recently used copies go first, recent ones never', async () => {
    const { store, bucket, cacheDir } = await openStore(() => emu, 'lru', {
      cacheMaxBytes: 3500,
      cacheGraceMs: 0,
    });
    const keys = ['a', 'b', 'c', 'd'].map((n) => `t/part-${n}.parquet`);
    // written by another store, so this one has to download them
    const writer = await S3Store.open(`s3://${bucket}/lru`, {
      endpoint: emu.endpoint,
      credentials: emu.credentials,
      cacheDir: await fs.mkdtemp(path.join(os.tmpdir(), 'talon-s3-cache-')),
      cacheMaxBytes: 0,
    });
    tmpDirs.push(writer.cacheDir);
    for (const [i, k] of keys.entries()) await writer.put(k, Buffer.alloc(1000, 97 + i));
    const [a, b, c] = [
      await store.localPath(keys[0]),
      await store.localPath(keys[1]),
      await store.localPath(keys[2]),
    ];
    const ago = (s: number) => new Date(Date.now() - s * 1000);
    await fs.utimes(a, ago(40), ago(40));
    await fs.utimes(b, ago(30), ago(30));
    await fs.utimes(c, ago(20), ago(20));
    assert.equal(await store.localPath(keys[0]), a, 'a cache hit…');
    assert.ok((await fs.stat(a)).mtimeMs > Date.now() - 10_000, '…marks the copy as used');
    // 4000 bytes > 3500: the sweep after this download evicts b, then c (down to ≤ 2800)
    const d = await store.localPath(keys[3]);
    const there = async (f: string) =>
      fs.access(f).then(
        () => true,
        () => false,
      );
    assert.deepEqual(
      [await there(a), await there(b), await there(c), await there(d)],
      [true, false, false, true],
    );
    const gets0 = emu.requests.GET ?? 0;
    const again = await store.localPath(keys[1]);
    assert.deepEqual(await fs.readFile(again), Buffer.alloc(1000, 98), 'an evicted copy is downloaded again');
    assert.equal((emu.requests.GET ?? 0) - gets0, 1);
    assert.ok(again.startsWith(cacheDir));
  });

  it('never evicts copies used within the grace period, and clears stale partial and staged files', async () => {
    const { store, bucket, cacheDir } = await openStore(() => emu, 'grace', {
      cacheMaxBytes: 1000,
      cacheGraceMs: 3_600_000,
    });
    for (const n of ['x', 'y']) await store.put(`t/part-${n}.parquet`, Buffer.alloc(800, 1));
    const reader = await S3Store.open(`s3://${bucket}/grace`, {
      endpoint: emu.endpoint,
      credentials: emu.credentials,
      cacheDir,
      cacheMaxBytes: 1000,
      cacheGraceMs: 3_600_000,
    });
    const x = await reader.localPath('t/part-x.parquet');
    const y = await reader.localPath('t/part-y.parquet');
    const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    const tmp = path.join(path.dirname(x), '.tmp-crashed');
    await fs.writeFile(tmp, 'partial');
    await fs.utimes(tmp, old, old);
    const staleStaged = await reader.stagingPath('part-z.parquet');
    await fs.writeFile(staleStaged, 'never uploaded');
    await fs.utimes(staleStaged, old, old);
    const freshStaged = await reader.stagingPath('part-w.parquet');
    await fs.writeFile(freshStaged, 'being written');
    const sweep = await reader.sweepCache();
    assert.equal(sweep.bytesBefore, 1600);
    assert.equal(sweep.bytesAfter, 1600, 'over the limit, but both copies are in use (soft limit)');
    assert.equal(sweep.deleted, 2);
    await fs.access(x);
    await fs.access(y);
    await fs.access(freshStaged);
    await assert.rejects(fs.access(tmp));
    await assert.rejects(fs.access(staleStaged));
  });
});
