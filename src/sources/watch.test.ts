import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { WatchSource, isWatchedDataFile, localFileId } from './watch.js';
import type { SourceBatch } from './source.js';
import type { SourceLog } from './manifest.js';
import { generateFdr } from '../generate/index.js';
import { ingest, type IngestSummary } from '../ingest/pipeline.js';
import { Lake } from '../lake/lake.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'talon-watch-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const quiet: SourceLog = () => {};

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

function ndjson(n: number, tag: string): string {
  return (
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({ event_simpleName: 'UserLogon', UserName: `${tag}-${i}`, timestamp: '1669000000000' }),
    ).join('\n') + '\n'
  );
}

/** The promise's value, failing (not hanging) when it does not settle within a generous bound. */
async function within<T>(p: Promise<T>, withinMs = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing within ${withinMs} ms`)), withinMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Next batch of a source whose iteration is left open. */
async function nextBatch(
  it: AsyncIterator<SourceBatch> | Promise<IteratorResult<SourceBatch>>,
  withinMs = 30_000,
): Promise<SourceBatch> {
  const r = await within(it instanceof Promise ? it : it.next(), withinMs);
  assert.equal(r.done, false, 'source ended');
  return r.value as SourceBatch;
}

async function dir(name: string): Promise<string> {
  const d = path.join(tmp, name);
  await mkdir(d, { recursive: true });
  return d;
}

describe('WatchSource', { timeout: 90_000 }, () => {
  test('takes files as they appear, recursively, once each; ignores temp and non-data names', async () => {
    const root = await dir('appear');
    const src = new WatchSource({ paths: [root], stableMs: 300, log: quiet });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const first = it.next(); // start watching before anything exists

    await writeFile(path.join(root, 'a.ndjson'), ndjson(3, 'a'));
    await mkdir(path.join(root, 'sub', 'deeper'), { recursive: true });
    await writeFile(path.join(root, 'sub', 'deeper', 'b.gz'), gzipSync(ndjson(2, 'b')));
    await writeFile(path.join(root, 'sub', 'c.json.tmp'), ndjson(1, 'c'));
    await writeFile(path.join(root, '.hidden.json'), ndjson(1, 'h'));
    await writeFile(path.join(root, 'notes.txt'), 'not data');

    const names = new Set<string>();
    const batches: SourceBatch[] = [];
    let b = await nextBatch(first);
    for (;;) {
      batches.push(b);
      for (const f of b.files) names.add(f.name);
      if (names.size >= 2) break;
      b = await nextBatch(it);
    }
    assert.deepEqual([...names].sort(), [
      path.join(root, 'a.ndjson'),
      path.join(root, 'sub', 'deeper', 'b.gz'),
    ]);
    for (const b of batches) {
      for (const f of b.files) {
        const st = await stat(f.name);
        assert.equal(f.id, `file:${f.name}#${st.size}-${Math.trunc(st.mtimeMs)}`);
        assert.equal(f.expectedMd5, undefined);
        assert.deepEqual(await readAll(await f.open()), await readFile(f.name));
      }
      await b.ack();
    }
    assert.equal(src.done.size, 2);

    // A later file is the next batch — the first two are never yielded again.
    await writeFile(path.join(root, 'sub', 'later.log'), ndjson(1, 'l'));
    const next = await nextBatch(it);
    assert.deepEqual(
      next.files.map((f) => f.name),
      [path.join(root, 'sub', 'later.log')],
    );
    // A temp file renamed into place is taken under its final name.
    await rename(path.join(root, 'sub', 'c.json.tmp'), path.join(root, 'sub', 'c.json'));
    const renamed = await nextBatch(it);
    assert.deepEqual(
      renamed.files.map((f) => f.name),
      [path.join(root, 'sub', 'c.json')],
    );
    ac.abort();
    assert.equal((await it.next()).done, true);
  });

  test('a file written slowly in pieces is not taken before it is complete', async () => {
    const root = await dir('slow');
    const src = new WatchSource({ paths: [root], stableMs: 3000, log: quiet });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const pending = it.next();
    const file = path.join(root, 'slow.ndjson');
    const full = ndjson(40, 'slow');
    const pieces = full.match(/[\s\S]{1,97}/g)!;
    let writerDone = false;
    const writer = (async () => {
      for (const p of pieces) {
        await appendFile(file, p);
        await sleep(25);
      }
      writerDone = true;
    })();
    const b = await nextBatch(pending, 60_000);
    assert.ok(writerDone, 'batch yielded only after the writer finished');
    await writer;
    assert.equal(b.files.length, 1);
    assert.equal(b.files[0].id, localFileId(file, await stat(file)));
    assert.equal((await readAll(await b.files[0].open())).toString(), full);
    ac.abort();
    await it.return?.();
  });

  test('an FDR manifest batch is taken whole as soon as every listed file has its size', async () => {
    const root = await dir('fdr');
    const uuid = randomUUID();
    const parts = [gzipSync(ndjson(5, 'p0')), gzipSync(ndjson(7, 'p1'))];
    const files = parts.map((gz, i) => ({
      path: `data/${uuid}/part-0000${i}.gz`,
      size: gz.length,
      checksum: md5(gz),
    }));
    const manifest = { cid: 'c', timestamp: 1669000000000, fileCount: 2, pathPrefix: `data/${uuid}`, files };
    await mkdir(path.join(root, 'manifests'), { recursive: true });
    await mkdir(path.join(root, 'data', uuid), { recursive: true });
    await writeFile(path.join(root, 'manifests', `${uuid}.json`), JSON.stringify(manifest));

    // A stability period far beyond the test: only the manifest rule can take these files.
    const src = new WatchSource({ paths: [root], stableMs: 10 * 60_000, log: quiet });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const pending = it.next();
    await writeFile(path.join(root, files[0].path), parts[0]);
    // The second part arrives in pieces; the batch must wait for its full listed size.
    let lastPieceWritten = false;
    const p1 = path.join(root, files[1].path);
    for (let off = 0; off < parts[1].length; off += 40) {
      await appendFile(p1, parts[1].subarray(off, off + 40));
      if (off + 40 >= parts[1].length) lastPieceWritten = true;
      await sleep(20);
    }
    const b = await nextBatch(pending);
    assert.ok(lastPieceWritten);
    assert.equal(b.id, `manifest:${path.join(root, 'manifests', `${uuid}.json`)}`);
    assert.equal(b.files.length, 2);
    for (const [i, f] of b.files.entries()) {
      assert.equal(f.name, path.join(root, files[i].path));
      assert.equal(f.expectedSize, files[i].size);
      assert.equal(f.expectedMd5, files[i].checksum);
      const bytes = await readAll(await f.open());
      assert.equal(md5(bytes), files[i].checksum);
    }
    await b.ack();

    // Data already complete when its manifest lands: taken at once, manifests not ingested.
    const uuid2 = randomUUID();
    const gz = gzipSync(ndjson(3, 'q'));
    const key = `data/${uuid2}/part-00000.gz`;
    await mkdir(path.join(root, 'data', uuid2), { recursive: true });
    await writeFile(path.join(root, key), gz);
    await writeFile(
      path.join(root, 'manifests', `${uuid2}.json.tmp`),
      JSON.stringify({
        pathPrefix: `data/${uuid2}`,
        files: [{ path: key, size: gz.length, checksum: md5(gz) }],
      }),
    );
    await rename(
      path.join(root, 'manifests', `${uuid2}.json.tmp`),
      path.join(root, 'manifests', `${uuid2}.json`),
    );
    const b2 = await nextBatch(it);
    assert.deepEqual(
      b2.files.map((f) => [f.name, f.expectedMd5]),
      [[path.join(root, key), md5(gz)]],
    );
    ac.abort();
    await it.return?.();
  });

  test("the generator's output folder is taken as its manifest batches, MD5s matching", async () => {
    const out = await dir('generated');
    const summary = await generateFdr({ out, events: 600, hosts: 8, days: 1, seed: 7, progress: false });
    // Stability far beyond the test: every part must come through its manifest.
    const src = new WatchSource({ paths: [out], stableMs: 10 * 60_000, log: quiet });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const taken = new Map<string, string | undefined>();
    let parts = 0;
    for (const m of summary.paths.manifests) {
      parts += (JSON.parse(await readFile(path.join(out, m), 'utf8')) as { files: unknown[] }).files.length;
    }
    while (taken.size < parts) {
      const b = await nextBatch(it);
      assert.match(b.id, /^manifest:/);
      for (const f of b.files) {
        assert.ok(!taken.has(f.name), `taken once: ${f.name}`);
        assert.equal(md5(await readAll(await f.open())), f.expectedMd5);
        taken.set(f.name, f.expectedMd5);
      }
      await b.ack();
    }
    assert.equal(taken.size, parts);
    assert.ok([...taken.keys()].every((n) => /\/(data|fdrv2)\//.test(n) && n.endsWith('.gz')));
    ac.abort();
    await it.return?.();
  });

  test('watch → ingest: files appearing are ingested; a restarted watch adds nothing', async () => {
    const root = await dir('watch-ingest');
    const lakeDir = path.join(tmp, 'watch-ingest-lake');
    /** Watches `root` with the pipeline until `files` files were committed or skipped. */
    const run = async (files: number): Promise<IngestSummary> => {
      const lake = await Lake.open(lakeDir);
      const src = new WatchSource({ paths: [root], stableMs: 300, log: quiet });
      const ac = new AbortController();
      let seen = 0;
      const origBatches = src.batches.bind(src);
      // Count what the pipeline pulled, to stop once everything was handed over and committed.
      src.batches = async function* (signal: AbortSignal) {
        for await (const b of origBatches(signal)) {
          yield b;
          seen += b.files.length;
          if (seen >= files) ac.abort();
        }
      };
      try {
        return await within(
          ingest(lake, src, { signal: ac.signal, enricher: null, progress: false }),
          60_000,
        );
      } finally {
        lake.close();
      }
    };
    const writing = (async () => {
      await sleep(200);
      await writeFile(path.join(root, 'one.ndjson'), ndjson(4, 'one'));
      await mkdir(path.join(root, 'sub'), { recursive: true });
      await writeFile(path.join(root, 'sub', 'two.gz'), gzipSync(ndjson(6, 'two')));
    })();
    const first = await run(2);
    await writing;
    assert.equal(first.files, 2);
    assert.equal(first.events, 10);
    assert.deepEqual(first.tables, { UserLogon: 10 });

    const again = await run(2);
    assert.equal(again.events, 0);
    assert.equal(again.skippedFiles, 2);
  });

  test('an FDR batch still incomplete after incompleteManifestMs is taken with the files present', async () => {
    const root = await dir('incomplete');
    const uuid = randomUUID();
    const gz = [gzipSync(ndjson(2, 'x0')), gzipSync(ndjson(2, 'x1'))];
    const files = gz.map((b, i) => ({
      path: `data/${uuid}/part-0000${i}.gz`,
      size: b.length,
      checksum: md5(b),
    }));
    await mkdir(path.join(root, 'manifests'), { recursive: true });
    await mkdir(path.join(root, 'data', uuid), { recursive: true });
    await writeFile(path.join(root, 'manifests', `${uuid}.json`), JSON.stringify({ files }));
    await writeFile(path.join(root, files[0].path), gz[0]);
    const warned: string[] = [];
    const src = new WatchSource({
      paths: [root],
      stableMs: 200,
      incompleteManifestMs: 500,
      log: (level, msg) => void (level === 'warn' && warned.push(msg)),
    });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const b1 = await nextBatch(it);
    assert.deepEqual(
      b1.files.map((f) => [f.name, f.expectedMd5]),
      [[path.join(root, files[0].path), files[0].checksum]],
    );
    assert.match(warned[0] ?? '', /incomplete/);
    // The late part comes on its own, still with the manifest's expectations.
    await writeFile(path.join(root, files[1].path), gz[1]);
    const b2 = await nextBatch(it);
    assert.deepEqual(
      b2.files.map((f) => [f.name, f.expectedSize, f.expectedMd5]),
      [[path.join(root, files[1].path), files[1].size, files[1].checksum]],
    );
    ac.abort();
    await it.return?.();
  });

  test('an invalid manifest is logged and ignored, not ingested as data', async () => {
    const root = await dir('badmanifest');
    await mkdir(path.join(root, 'manifests'), { recursive: true });
    await writeFile(path.join(root, 'manifests', 'x.json'), '{"files": "nope"}');
    await writeFile(path.join(root, 'ok.json'), ndjson(1, 'ok'));
    const errors: Array<Record<string, unknown> | undefined> = [];
    const src = new WatchSource({
      paths: [root],
      stableMs: 200,
      log: (level, _m, f) => void (level === 'error' && errors.push(f)),
    });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const b = await nextBatch(it);
    assert.deepEqual(
      b.files.map((f) => f.name),
      [path.join(root, 'ok.json')],
    );
    await within(
      (async () => {
        while (errors.length === 0) await sleep(50);
      })(),
    );
    assert.equal(errors[0]?.manifest, path.join(root, 'manifests', 'x.json'));
    ac.abort();
    await it.return?.();
  });

  test('watch → ingest: everything one scan finds ready is one commit (up to batch_events), each row once', async () => {
    const root = await dir('watch-group');
    const FILES = 6;
    const PER_FILE = 4;
    for (let i = 0; i < FILES; i++) {
      const sub = path.join(root, `d${i % 3}`);
      await mkdir(sub, { recursive: true });
      await writeFile(path.join(sub, `f${i}.ndjson`), ndjson(PER_FILE, `g${i}`));
    }
    /** One watch over `root` into a new lake until every file is committed; commit groups seen. */
    const run = async (lakeDir: string, batchEvents: number) => {
      const lake = await Lake.open(lakeDir);
      // Two files per source batch: a scan yields three batches, the pipeline groups them.
      const src = new WatchSource({ paths: [root], stableMs: 200, maxFilesPerBatch: 2, log: quiet });
      const ac = new AbortController();
      const groups: string[][] = [];
      try {
        const summary = await within(
          ingest(lake, src, {
            signal: ac.signal,
            enricher: null,
            progress: false,
            batchEvents,
            onCommit: (g) => {
              groups.push(g.files);
              if (groups.flat().length >= FILES) ac.abort();
            },
          }),
          60_000,
        );
        await lake.registerViews();
        const [rows] = await lake.db.allJson<{ n: number; d: number }>(
          `SELECT count(*)::INTEGER AS n, count(DISTINCT UserName)::INTEGER AS d FROM userlogon`,
        );
        const table = await lake.table('UserLogon');
        const version = (await table!.snapshot()).version;
        return { summary, groups, rows, version };
      } finally {
        lake.close();
      }
    };
    const one = await run(path.join(tmp, 'watch-group-lake'), 250_000);
    assert.equal(one.summary.files, FILES);
    assert.deepEqual(one.rows, { n: FILES * PER_FILE, d: FILES * PER_FILE });
    assert.equal(one.groups.length, 1, 'all files ready in one scan: one commit group');
    // version 0 creates the table; one data commit for all six files
    assert.equal(one.version, 1);

    // The batch limit still cuts groups (at file boundaries): 8 events → two files per commit.
    const cut = await run(path.join(tmp, 'watch-group-lake-cut'), 2 * PER_FILE);
    assert.deepEqual(
      cut.groups.map((g) => g.length),
      [2, 2, 2],
    );
    assert.deepEqual(cut.rows, { n: FILES * PER_FILE, d: FILES * PER_FILE });
    assert.equal(cut.version, 3);
  });

  test('watch → ingest: a file that vanishes, becomes a folder or fails to read does not stop the others; transient failures are retried, then quarantined', async () => {
    const root = await dir('watch-unreadable');
    const lakeDir = path.join(tmp, 'watch-unreadable-lake');
    const names = ['good1', 'good2', 'vanish', 'todir', 'flaky', 'broken'];
    for (const n of names) await writeFile(path.join(root, `${n}.ndjson`), ndjson(3, n));
    const abs = (n: string) => path.join(root, `${n}.ndjson`);
    const opens = new Map<string, number>();
    const eacces = (p: string) =>
      Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' });
    const src = new WatchSource({
      paths: [root],
      stableMs: 200,
      readAttempts: 3,
      readRetryMs: 50,
      log: quiet,
      // Faults between the scan that took a file and the read (real filesystem changes where
      // possible; root ignores permission bits, so EACCES/EIO are injected).
      openFile: async (p) => {
        const n = path.basename(p, '.ndjson');
        const times = (opens.get(n) ?? 0) + 1;
        opens.set(n, times);
        if (n === 'vanish') await rm(p);
        if (n === 'todir') {
          await rm(p);
          await mkdir(p);
        }
        if (n === 'flaky' && times < 3) throw eacces(p);
        if (n === 'broken') {
          // one good line, then the device fails
          const first = (await readFile(p, 'utf8')).split('\n')[0] + '\n';
          return Readable.from(
            (async function* () {
              yield Buffer.from(first);
              throw Object.assign(new Error(`EIO: i/o error, read`), { code: 'EIO' });
            })(),
          );
        }
        return createReadStream(p);
      },
    });
    const lake = await Lake.open(lakeDir);
    const ac = new AbortController();
    const groups: string[][] = [];
    const want = ['good1', 'good2', 'flaky', 'broken'].map((n) => abs(n));
    try {
      const summary = await within(
        ingest(lake, src, {
          signal: ac.signal,
          enricher: null,
          progress: false,
          onCommit: (g) => {
            groups.push(g.files.map((id) => id.slice('file:'.length, id.lastIndexOf('#'))));
            const done = new Set(groups.flat());
            if (want.every((w) => done.has(w))) ac.abort();
          },
        }),
        60_000,
      );
      // The first group holds the readable files; the failing ones are not in it.
      assert.deepEqual([...groups[0]].sort(), [abs('good1'), abs('good2')]);
      assert.equal(summary.files, 4);
      await lake.registerViews();
      const users = await lake.db.allJson<{ u: string; n: number }>(
        `SELECT split_part(UserName, '-', 1) AS u, count(*)::INTEGER AS n FROM userlogon GROUP BY 1 ORDER BY 1`,
      );
      // broken: its one good line, once — the lines read by the failed attempts are not kept
      assert.deepEqual(users, [
        { u: 'broken', n: 1 },
        { u: 'flaky', n: 3 },
        { u: 'good1', n: 3 },
        { u: 'good2', n: 3 },
      ]);
      const q = await lake.db.allJson(`SELECT source, reason FROM quarantine ORDER BY source`);
      assert.deepEqual(q, [{ source: abs('broken'), reason: 'read_error' }]);
      const logged = await lake.db.allJson<{ source: string }>(
        `SELECT source FROM ingest_log ORDER BY source`,
      );
      assert.deepEqual(
        logged.map((r) => r.source),
        [...want].sort(),
      );
      assert.equal(opens.get('vanish'), 1, 'a vanished file is not retried');
      assert.equal(opens.get('todir'), 1, 'a path that became a folder is not retried');
      assert.equal(opens.get('flaky'), 3);
      assert.equal(opens.get('broken'), 3, 'readAttempts bounds the retries');
    } finally {
      ac.abort();
      lake.close();
    }
  });

  test('nack hands the files back for another try', async () => {
    const root = await dir('nack');
    await writeFile(path.join(root, 'n.ndjson'), ndjson(2, 'n'));
    const src = new WatchSource({ paths: [root], stableMs: 200, log: quiet });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const b1 = await nextBatch(it);
    await b1.nack!(new Error('lake busy'));
    const b2 = await nextBatch(it);
    assert.deepEqual(
      b2.files.map((f) => f.id),
      b1.files.map((f) => f.id),
    );
    ac.abort();
    await it.return?.();
  });

  test('abort ends the iteration while it waits', async () => {
    const root = await dir('abort');
    const src = new WatchSource({ paths: [root, path.join(tmp, 'does-not-exist-yet')], log: quiet });
    const ac = new AbortController();
    const seen: SourceBatch[] = [];
    const run = (async () => {
      for await (const b of src.batches(ac.signal)) seen.push(b);
    })();
    await sleep(300);
    ac.abort();
    await run;
    assert.equal(seen.length, 0);
  });
});

test('isWatchedDataFile: FDR data, NDJSON, no temp/manifest/answer-key files', () => {
  for (const yes of [
    'a.gz',
    'x/y.json',
    'e.ndjson',
    'f.log',
    'data/u/part-00000',
    'fdrv2/aidmaster/u/part-1',
  ]) {
    assert.ok(isWatchedDataFile(yes), yes);
  }
  for (const no of [
    'a.gz.tmp',
    '.a.gz',
    'x/.partial.json',
    'manifests/u.json',
    'ground-truth.json',
    'iocs.csv',
    'README',
    'data/u/file.txt',
  ]) {
    assert.ok(!isWatchedDataFile(no), no);
  }
});
