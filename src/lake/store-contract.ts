/**
 * The ObjectStore contract as a test suite: every store (local folder, S3) runs the same
 * tests, so the Delta layer above can rely on identical behaviour on both.
 * Used by store-local.test.ts and store-s3.test.ts (node:test).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it, after, before } from 'node:test';
import type { ObjectInfo, ObjectStore } from './store.js';

export interface StoreFixture {
  store: ObjectStore;
  /** Removes whatever the fixture created. */
  cleanup(): Promise<void>;
}

async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
}

/** Registers the contract tests for a store made fresh (empty) by `open`. */
export function objectStoreContract(name: string, open: () => Promise<StoreFixture>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: ObjectStore;
    before(async () => {
      fx = await open();
      store = fx.store;
    });
    after(async () => {
      await fx.cleanup();
    });

    it('returns undefined from get and head for a missing key', async () => {
      assert.equal(await store.get('missing/none.json'), undefined);
      assert.equal(await store.head('missing/none.json'), undefined);
    });

    it('stores bytes and strings exactly (binary, UTF-8)', async () => {
      const bin = randomBytes(300_000);
      await store.put('rt/bin.parquet', bin);
      assert.deepEqual(await store.get('rt/bin.parquet'), bin);
      const text = '{"commitInfo":{"user":"Zoë 🦅"}}\n';
      await store.put('rt/text.json', text);
      assert.equal((await store.get('rt/text.json'))!.toString('utf8'), text);
      const info = await store.head('rt/text.json');
      assert.equal(info?.key, 'rt/text.json');
      assert.equal(info?.size, Buffer.byteLength(text));
      assert.ok(info!.lastModified > Date.now() - 3600_000 && info!.lastModified < Date.now() + 3600_000);
    });

    it('put replaces an existing object', async () => {
      await store.put('rt/_last_checkpoint', '{"version":10}');
      await store.put('rt/_last_checkpoint', '{"version":20,"size":3}');
      assert.equal((await store.get('rt/_last_checkpoint'))!.toString(), '{"version":20,"size":3}');
    });

    it('putIfAbsent creates once and never overwrites', async () => {
      const key = 'pia/_delta_log/00000000000000000000.json';
      assert.equal(await store.putIfAbsent(key, 'first'), true);
      assert.equal(await store.putIfAbsent(key, 'second'), false);
      assert.equal((await store.get(key))!.toString(), 'first');
    });

    it('putIfAbsent racing in one process: exactly one writer wins, its bytes are stored', async () => {
      for (let v = 1; v <= 5; v++) {
        const key = `race/_delta_log/${String(v).padStart(20, '0')}.json`;
        const bodies = Array.from({ length: 8 }, (_, i) => `writer-${i}:` + 'x'.repeat(20_000 + i));
        const results = await Promise.all(bodies.map((b) => store.putIfAbsent(key, b)));
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1, `version ${v}: winners ${JSON.stringify(winners)}`);
        assert.equal((await store.get(key))!.toString(), bodies[winners[0]!]);
      }
    });

    it('lists recursively in key order with relative keys and sizes, by string prefix', async () => {
      const keys = [
        'lst/b/_delta_log/00000000000000000001.json',
        'lst/b/_delta_log/00000000000000000000.json',
        'lst/b/event_date=2024-01-02/part-1.parquet',
        'lst/b/event_date=2024-01-01/part-0.parquet',
        'lst/a-b/x.json',
        'lst/a/y.json',
        'lst/b.txt',
      ];
      for (const k of keys) await store.put(k, k);
      const all = await collect(store.list('lst/'));
      assert.deepEqual(
        all.map((o) => o.key),
        [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
      );
      for (const o of all) assert.equal(o.size, Buffer.byteLength(o.key));
      assert.deepEqual(
        (await collect(store.list('lst/b/_delta_log/'))).map((o) => o.key),
        ['lst/b/_delta_log/00000000000000000000.json', 'lst/b/_delta_log/00000000000000000001.json'],
      );
      // a prefix is a string prefix, as on S3: 'lst/b' also matches 'lst/b.txt'
      assert.deepEqual(
        (await collect(store.list('lst/b/_delta_log/0000000000000000000'))).length,
        2,
        'partial file-name prefix',
      );
      assert.ok((await collect(store.list('lst/b'))).some((o) => o.key === 'lst/b.txt'));
      assert.deepEqual(await collect(store.list('nothing-here/')), []);
    });

    it('lists the folders directly under a prefix without descending', async () => {
      assert.ok(store.listFolders, 'both stores implement listFolders');
      await store.put('fold/userlogon/_delta_log/00000000000000000000.json', '{}');
      await store.put('fold/dnsrequest/event_date=2024-01-01/part-0.parquet', 'p');
      await store.put('fold/networklistenip4/_delta_log/00000000000000000000.json', '{}');
      await store.put('fold/readme.txt', 'not a folder');
      await store.stagingPath('x.parquet');
      assert.deepEqual(await store.listFolders('fold/'), ['dnsrequest', 'networklistenip4', 'userlogon']);
      assert.deepEqual(await store.listFolders('fold/dnsrequest/'), ['event_date=2024-01-01']);
      assert.deepEqual(await store.listFolders('nothing-here/'), []);
      const top = await store.listFolders('');
      assert.ok(top.includes('fold'));
      assert.ok(!top.some((n) => n.startsWith('.talon')), `store-internal folder listed: ${top.join(',')}`);
      await assert.rejects(store.listFolders('fold'), /prefix/);
    });

    it('does not list staged or in-flight files', async () => {
      const staged = await store.stagingPath('part-0.parquet');
      await fs.writeFile(staged, 'staged bytes');
      const everything = await collect(store.list(''));
      assert.ok(everything.length > 0);
      for (const o of everything) {
        assert.ok(!o.key.includes(path.basename(staged)), `staged file listed: ${o.key}`);
        assert.ok(!o.key.startsWith('.talon'), `store-internal file listed: ${o.key}`);
      }
      await fs.rm(staged, { force: true });
    });

    it('keeps keys with partition values, spaces and escapes as given', async () => {
      const key = 'odd/event_date=2024-01-01/aip=10.0.0.1/part a%3Ab+c.parquet';
      await store.put(key, 'odd');
      assert.equal((await store.get(key))!.toString(), 'odd');
      assert.deepEqual(
        (await collect(store.list('odd/'))).map((o) => o.key),
        [key],
      );
    });

    it('deletes keys and ignores missing ones', async () => {
      await store.put('del/a.json', 'a');
      await store.put('del/b.json', 'b');
      await store.delete(['del/a.json', 'del/never-existed.json']);
      assert.equal(await store.get('del/a.json'), undefined);
      assert.deepEqual(
        (await collect(store.list('del/'))).map((o) => o.key),
        ['del/b.json'],
      );
      await store.delete([]);
    });

    it('gives a readable local path, fresh after a replace', async () => {
      await store.put('lp/_last_checkpoint', 'v1');
      assert.equal(await fs.readFile(await store.localPath('lp/_last_checkpoint'), 'utf8'), 'v1');
      await store.put('lp/_last_checkpoint', 'v2 longer');
      assert.equal(await fs.readFile(await store.localPath('lp/_last_checkpoint'), 'utf8'), 'v2 longer');
    });

    it('uploads a staged file as a new object', async () => {
      const staged = await store.stagingPath('part-00000.snappy.parquet');
      assert.ok(staged.endsWith('part-00000.snappy.parquet'));
      const bytes = randomBytes(2_000_000);
      await fs.writeFile(staged, bytes);
      const key = 'up/event_date=2024-01-01/part-00000-abc.snappy.parquet';
      await store.upload(staged, key);
      assert.deepEqual(await store.get(key), bytes);
      assert.equal((await store.head(key))?.size, bytes.length);
      assert.deepEqual(await fs.readFile(await store.localPath(key)), bytes);
      const two = await store.stagingPath('x.parquet');
      assert.notEqual(two, staged, 'staging paths are unique');
    });

    it('refuses keys that could escape the root', async () => {
      for (const bad of ['../evil.json', 'a/../../evil.json', '/abs.json', 'a//b.json', './a.json', '']) {
        await assert.rejects(store.put(bad, 'x'), /key/, `put ${JSON.stringify(bad)}`);
        await assert.rejects(store.putIfAbsent(bad, 'x'), /key/, `putIfAbsent ${JSON.stringify(bad)}`);
        await assert.rejects(store.get(bad), /key/, `get ${JSON.stringify(bad)}`);
      }
      await assert.rejects(store.stagingPath('../x'), /suffix/);
    });

    it('has a url naming where it lives', () => {
      assert.match(store.url, /^(file:\/\/\/|s3:\/\/)/);
    });
  });
}
