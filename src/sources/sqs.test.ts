import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { startFauxqs, type Fauxqs } from '../testing/fauxqs.js';
import {
  SqsSource,
  parseFdrMessageBody,
  regionFromQueueUrl,
  sqsOptionsFromConfig,
  type SqsSourceOptions,
} from './sqs.js';
import type { SourceBatch } from './source.js';
import type { SourceLog } from './manifest.js';

let aws: Fauxqs;
let bucket: string;

before(async () => {
  aws = await startFauxqs();
  bucket = await aws.createBucket();
});
after(async () => {
  await aws.stop();
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(e.name);
  return out;
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** Uploads an FDR batch (gz parts of NDJSON events) and returns its manifest. */
async function uploadBatch(parts: number, eventsPerPart = 3) {
  const uuid = randomUUID();
  const pathPrefix = `data/${uuid}`;
  const files = [];
  for (let p = 0; p < parts; p++) {
    const lines = Array.from({ length: eventsPerPart }, (_, i) =>
      JSON.stringify({
        event_simpleName: 'DnsRequest',
        aid: 'a'.repeat(32),
        DomainName: `host${p}-${i}.example.com`,
        timestamp: String(1669000000000 + p * 1000 + i),
      }),
    );
    const gz = gzipSync(lines.join('\n') + '\n');
    const path = `${pathPrefix}/part-${String(p).padStart(5, '0')}.gz`;
    await aws.putObject(bucket, path, gz);
    files.push({ path, size: gz.length, checksum: md5(gz) });
  }
  return {
    cid: 'c'.repeat(32),
    timestamp: 1669000000000,
    fileCount: files.length,
    totalSize: files.reduce((s, f) => s + f.size, 0),
    bucket,
    pathPrefix,
    files,
  };
}

function source(queueUrl: string, extra: Partial<SqsSourceOptions> = {}): SqsSource {
  return new SqsSource({
    queueUrl,
    ...aws.clientConfig,
    waitTimeSeconds: 1,
    s3: { forcePathStyle: true },
    log: () => {},
    downloadRetryMs: 10,
    ...extra,
  });
}

/** Next batch from a source (the iterator is left open for more). */
async function nextBatch(it: AsyncIterator<SourceBatch>): Promise<SourceBatch> {
  const r = await it.next();
  assert.equal(r.done, false, 'source ended without a batch');
  return r.value as SourceBatch;
}

async function eventually(check: () => Promise<boolean>, what: string, withinMs = 30_000) {
  const end = Date.now() + withinMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`not within ${withinMs} ms: ${what}`);
}

const queueIsEmpty = (queueUrl: string) => async () => {
  const c = await aws.queueCounts(queueUrl);
  return c.visible === 0 && c.inFlight === 0 && c.delayed === 0;
};

describe('SqsSource', { timeout: 90_000 }, () => {
  test('yields one batch per FDR message with S3 streams and the manifest size/MD5; ack deletes', async () => {
    const queueUrl = await aws.createQueue();
    const manifest = await uploadBatch(2);
    const messageId = await aws.sendMessage(queueUrl, JSON.stringify(manifest));
    const src = source(queueUrl);
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const batch = await nextBatch(it);
    assert.equal(batch.id, messageId);
    assert.equal(batch.files.length, 2);
    for (const [i, f] of batch.files.entries()) {
      const m = manifest.files[i];
      assert.equal(f.id, `s3://${bucket}/${m.path}#${m.checksum}`);
      assert.equal(f.name, `s3://${bucket}/${m.path}`);
      assert.equal(f.expectedSize, m.size);
      assert.equal(f.expectedMd5, m.checksum);
      const bytes = await readAll(await f.open());
      assert.equal(bytes.length, m.size);
      assert.equal(md5(bytes), m.checksum);
      assert.match(gunzipSync(bytes).toString(), /"event_simpleName":"DnsRequest"/);
    }
    // Held, not deleted, until the pipeline acks.
    assert.deepEqual(await aws.queueCounts(queueUrl), { visible: 0, inFlight: 1, delayed: 0 });
    await batch.ack();
    await eventually(queueIsEmpty(queueUrl), 'queue empty after ack');
    ac.abort();
    assert.equal((await it.next()).done, true);
    await src.close();
  });

  test('a message not acked comes back after the visibility timeout (worker died)', async () => {
    const queueUrl = await aws.createQueue();
    const messageId = await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(1)));
    const crashed = source(queueUrl, { visibilityTimeout: 1 });
    const ac1 = new AbortController();
    const first = await nextBatch(crashed.batches(ac1.signal)[Symbol.asyncIterator]());
    assert.equal(first.id, messageId);
    // A crash: heartbeats stop, nothing is told to SQS.
    await crashed.close();
    ac1.abort();

    const survivor = source(queueUrl, { visibilityTimeout: 30 });
    const ac2 = new AbortController();
    const it = survivor.batches(ac2.signal)[Symbol.asyncIterator]();
    const again = await nextBatch(it);
    assert.equal(again.id, messageId);
    assert.deepEqual(
      again.files.map((f) => f.id),
      first.files.map((f) => f.id),
      'redelivery carries the same file ids (the exactly-once key)',
    );
    await again.ack();
    await eventually(queueIsEmpty(queueUrl), 'queue empty');
    ac2.abort();
    await it.return?.();
    await survivor.close();
  });

  test('nack makes the message visible again at once', async () => {
    const queueUrl = await aws.createQueue();
    const messageId = await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(1)));
    // A long timeout: only the nack can bring it back within the test.
    const src = source(queueUrl, { visibilityTimeout: 600 });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const b1 = await nextBatch(it);
    await b1.nack!(new Error('disk full'));
    const b2 = await nextBatch(it);
    assert.equal(b2.id, messageId);
    await b2.ack();
    await eventually(queueIsEmpty(queueUrl), 'queue empty');
    ac.abort();
    await it.return?.();
    await src.close();
  });

  test('heartbeat extends the visibility: explicitly and by the own timer', async () => {
    const name = `hb-${randomUUID().slice(0, 8)}`;
    const queueUrl = await aws.createQueue(name);
    await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(1)));
    const deadline = async () => {
      const q = await aws.inspectQueue(name);
      assert.equal(q?.messages.inflight.length, 1);
      return q!.messages.inflight[0].visibilityDeadline;
    };

    // Explicit heartbeat only (own timer off).
    const manual = source(queueUrl, { visibilityTimeout: 60, heartbeatSeconds: 0 });
    const ac = new AbortController();
    const it = manual.batches(ac.signal)[Symbol.asyncIterator]();
    const batch = await nextBatch(it);
    const d0 = await deadline();
    await new Promise((r) => setTimeout(r, 50));
    await batch.heartbeat!();
    const d1 = await deadline();
    assert.ok(d1 > d0, `deadline moved: ${d0} → ${d1}`);
    await batch.nack!(new Error('hand over'));
    ac.abort();
    await it.return?.();

    // The source's own timer keeps extending a held batch (2 s timeout, every ~0.7 s).
    const auto = source(queueUrl, { visibilityTimeout: 2 });
    const ac2 = new AbortController();
    const it2 = auto.batches(ac2.signal)[Symbol.asyncIterator]();
    const held = await nextBatch(it2);
    const start = await deadline();
    await eventually(
      async () => (await deadline()) > start + 2500,
      'deadline extended past the first timeout',
    );
    assert.equal((await aws.queueCounts(queueUrl)).inFlight, 1, 'still held, not redelivered');
    await held.ack();
    await eventually(queueIsEmpty(queueUrl), 'queue empty');
    ac2.abort();
    await it2.return?.();
    await auto.close();
    await manual.close();
  });

  test('two workers on one queue share the messages; each processed exactly once', async () => {
    const queueUrl = await aws.createQueue();
    const sent = new Set<string>();
    for (let i = 0; i < 8; i++)
      sent.add(await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(1, 1))));
    const ac = new AbortController();
    const seen: string[] = [];
    const perWorker = [0, 0];
    const worker = async (w: number) => {
      const src = source(queueUrl, { visibilityTimeout: 30 });
      try {
        for await (const batch of src.batches(ac.signal)) {
          for (const f of batch.files) await readAll(await f.open());
          await new Promise((r) => setTimeout(r, 100)); // "ingesting"
          seen.push(batch.id);
          perWorker[w]++;
          await batch.ack();
          if (seen.length === sent.size) ac.abort();
        }
      } finally {
        await src.close();
      }
    };
    await Promise.all([worker(0), worker(1)]);
    assert.equal(seen.length, sent.size, 'no message processed twice');
    assert.deepEqual(new Set(seen), sent);
    assert.ok(perWorker[0] > 0 && perWorker[1] > 0, `both workers got work: ${perWorker}`);
    await eventually(queueIsEmpty(queueUrl), 'queue empty');
  });

  test('malformed bodies become a quarantine batch (default) and are deleted on ack', async () => {
    const queueUrl = await aws.createQueue();
    const notJson = await aws.sendMessage(queueUrl, 'this is {not json');
    const noFiles = await aws.sendMessage(queueUrl, JSON.stringify({ cid: 'x', bucket }));
    const logged: Array<{ level: string; fields?: Record<string, unknown> }> = [];
    const log: SourceLog = (level, _msg, fields) => logged.push({ level, fields });
    const src = source(queueUrl, { log });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const got = new Map<string, SourceBatch>();
    for (let i = 0; i < 2; i++) {
      const b = await nextBatch(it);
      got.set(b.id, b);
    }
    for (const [id, body, reason] of [
      [notJson, 'this is {not json', /not JSON/],
      [noFiles, JSON.stringify({ cid: 'x', bucket }), /files: missing/],
    ] as const) {
      const b = got.get(id)!;
      assert.ok(b, `batch for ${id}`);
      assert.equal(b.files.length, 1);
      const f = b.files[0];
      assert.equal(f.expectedMd5, undefined);
      assert.ok(f.name.endsWith(id));
      const text = (await readAll(await f.open())).toString();
      assert.ok(text.endsWith('\n') && text.split('\n').length === 2, 'one NDJSON line');
      const line = JSON.parse(text);
      assert.equal(line.event_simpleName, undefined, 'no event_simpleName: the pipeline quarantines it');
      assert.equal(line.malformed_fdr_message.message_id, id);
      assert.equal(line.malformed_fdr_message.body, body);
      assert.match(line.malformed_fdr_message.reason, reason);
      assert.ok(logged.some((l) => l.level === 'error' && l.fields?.message_id === id));
      await b.ack();
    }
    await eventually(queueIsEmpty(queueUrl), 'queue empty');
    ac.abort();
    await it.return?.();
    await src.close();
  });

  test("malformed: 'leave' logs and leaves the message for the redrive policy", async () => {
    const queueUrl = await aws.createQueue();
    const bad = await aws.sendMessage(queueUrl, '[1,2,3]');
    const good = await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(1)));
    const logged: Array<Record<string, unknown> | undefined> = [];
    const src = source(queueUrl, {
      malformed: 'leave',
      visibilityTimeout: 600,
      maxMessages: 10,
      log: (level, _m, fields) => void (level === 'error' && logged.push(fields)),
    });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const b = await nextBatch(it);
    assert.equal(b.id, good, 'only the good message is yielded');
    await b.ack();
    await eventually(async () => logged.some((f) => f?.message_id === bad), 'malformed message logged');
    // Not deleted: still on the queue (in flight until its timeout, then redrive/DLQ).
    await eventually(async () => (await aws.queueCounts(queueUrl)).inFlight === 1, 'bad message still held');
    ac.abort();
    await it.return?.();
    await src.close();
  });

  test('an S3 event notification (also SNS-wrapped) yields its objects; a test event is deleted', async () => {
    const queueUrl = await aws.createQueue();
    const manifest = await uploadBatch(1);
    const f = manifest.files[0];
    const s3Event = {
      Records: [
        {
          eventSource: 'aws:s3',
          eventName: 'ObjectCreated:Put',
          s3: { bucket: { name: bucket }, object: { key: f.path, size: f.size, eTag: f.checksum } },
        },
      ],
    };
    await aws.sendMessage(queueUrl, JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent' }));
    const wrapped = await aws.sendMessage(
      queueUrl,
      JSON.stringify({ Type: 'Notification', Message: JSON.stringify(s3Event) }),
    );
    const src = source(queueUrl);
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const b = await nextBatch(it);
    assert.equal(b.id, wrapped);
    assert.equal(b.files[0].id, `s3://${bucket}/${f.path}#${f.checksum}`);
    assert.equal(b.files[0].expectedSize, f.size);
    assert.equal(md5(await readAll(await b.files[0].open())), f.checksum);
    await b.ack();
    await eventually(queueIsEmpty(queueUrl), 'test event deleted, notification acked');
    ac.abort();
    await it.return?.();
    await src.close();
  });

  test('an announced object that no longer exists opens as zero bytes (the MD5/size check quarantines it)', async () => {
    const queueUrl = await aws.createQueue();
    const manifest = await uploadBatch(1);
    manifest.files.push({
      path: `${manifest.pathPrefix}/part-99999.gz`,
      size: 123,
      checksum: 'f'.repeat(32),
    });
    await aws.sendMessage(queueUrl, JSON.stringify(manifest));
    const errors: Array<Record<string, unknown> | undefined> = [];
    const src = source(queueUrl, { log: (level, _m, f) => void (level === 'error' && errors.push(f)) });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const b = await nextBatch(it);
    assert.equal((await readAll(await b.files[0].open())).length, manifest.files[0].size);
    const gone = b.files[1];
    assert.equal(gone.expectedSize, 123);
    assert.equal((await readAll(await gone.open())).length, 0);
    assert.equal(errors[0]?.object, gone.name);
    assert.equal(errors.length, 1);
    await b.ack();
    await eventually(queueIsEmpty(queueUrl), 'deleted after ack');
    ac.abort();
    await it.return?.();
    await src.close();
  });

  test('a file that cannot be downloaded leaves its message for redelivery; the worker goes on', async () => {
    const queueUrl = await aws.createQueue();
    const failing = await uploadBatch(2);
    const good = await uploadBatch(1);
    const fault = aws.failObject(bucket, failing.files[1].path, { status: 503, code: 'SlowDown' });
    const failingId = await aws.sendMessage(queueUrl, JSON.stringify(failing));
    const noBucketId = await aws.sendMessage(
      queueUrl,
      JSON.stringify({ ...good, bucket: 'no-such-bucket-here' }),
    );
    const goodId = await aws.sendMessage(queueUrl, JSON.stringify(good));
    const errors: Array<{ msg: string; f?: Record<string, unknown> }> = [];
    const src = source(queueUrl, {
      visibilityTimeout: 2,
      heartbeatSeconds: 0,
      downloadAttempts: 2,
      log: (level, msg, f) => void (level === 'error' && errors.push({ msg, f })),
    });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    // The two messages whose files cannot be had are skipped over, not fatal.
    const b = await nextBatch(it);
    assert.equal(b.id, goodId);
    assert.ok(fault.served >= 2, 'the failing GET was retried');
    const byMessage = new Map(errors.map((e) => [e.f?.message_id, e]));
    assert.equal(byMessage.get(failingId)?.f?.object, `s3://${bucket}/${failing.files[1].path}`);
    assert.match(String(byMessage.get(failingId)?.f?.error), /SlowDown|503/);
    assert.match(String(byMessage.get(failingId)?.msg), /leaving the message for redelivery/);
    assert.match(String(byMessage.get(noBucketId)?.f?.error), /NoSuchBucket|bucket/i);
    await b.ack();
    // Not deleted: both are still on the queue (in flight, or visible again after the timeout).
    const view = await aws.inspectQueue(queueUrl.split('/').pop()!);
    const left = [
      ...(view?.messages.inflight.map((x) => x.message.messageId) ?? []),
      ...(view?.messages.ready.map((x) => x.messageId) ?? []),
    ];
    assert.deepEqual(left.sort(), [failingId, noBucketId].sort());
    fault.clear();
    const again = await nextBatch(it);
    assert.equal(again.id, failingId, 'redelivered after the visibility timeout');
    for (const [i, f] of again.files.entries()) {
      assert.equal(md5(await readAll(await f.open())), failing.files[i].checksum);
    }
    await again.ack();
    ac.abort();
    await it.return?.();
    await src.close();
  });

  test('a download cut mid-body resumes with a Range GET pinned to the ETag', async () => {
    const queueUrl = await aws.createQueue();
    const manifest = await uploadBatch(1, 400);
    const key = manifest.files[0].path;
    assert.ok(manifest.files[0].size > 1000);
    const fault = aws.failObject(bucket, key, { cutAfterBytes: 700, times: 1 });
    await aws.sendMessage(queueUrl, JSON.stringify(manifest));
    const warnings: Array<Record<string, unknown> | undefined> = [];
    const src = source(queueUrl, { log: (level, _m, f) => void (level === 'warn' && warnings.push(f)) });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const b = await nextBatch(it);
    const bytes = await readAll(await b.files[0].open());
    assert.equal(bytes.length, manifest.files[0].size);
    assert.equal(md5(bytes), manifest.files[0].checksum);
    assert.equal(fault.served, 1);
    assert.equal(warnings.length, 1, 'one retry');
    assert.deepEqual(
      fault.ranges,
      ['', 'bytes=700-'],
      `the second GET asked only for the rest ${JSON.stringify(warnings)}`,
    );
    await b.ack();
    ac.abort();
    await it.return?.();
    await src.close();
  });

  test('downloads are staged locally and removed on ack, nack and close', async () => {
    const queueUrl = await aws.createQueue();
    const downloadDir = await mkdtemp(path.join(os.tmpdir(), 'talon-sqs-dl-'));
    try {
      await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(2)));
      await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(1)));
      const src = source(queueUrl, { downloadDir });
      const ac = new AbortController();
      const it = src.batches(ac.signal)[Symbol.asyncIterator]();
      const staged = async () => (await listFiles(downloadDir)).length;
      const a = await nextBatch(it);
      assert.equal(await staged(), 2);
      await a.nack!(new Error('test'));
      assert.equal(await staged(), 0, 'nack removes the files');
      const b = await nextBatch(it);
      assert.ok((await staged()) > 0);
      await b.ack();
      assert.equal(await staged(), 0, 'ack removes the files');
      const c = await nextBatch(it);
      assert.ok((await staged()) > 0);
      await c.ack();
      ac.abort();
      await it.return?.();
      await src.close();
      assert.deepEqual(await readdir(downloadDir), [], 'close removes the source folder');
    } finally {
      await rm(downloadDir, { recursive: true, force: true });
    }
  });

  test('a receive of several messages is handed over one by one, the next downloading ahead: the disk holds two, not all', async () => {
    const queueUrl = await aws.createQueue();
    const downloadDir = await mkdtemp(path.join(os.tmpdir(), 'talon-sqs-dl-'));
    try {
      for (let i = 0; i < 5; i++) await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(1, 1)));
      const src = source(queueUrl, { downloadDir, maxMessages: 10, visibilityTimeout: 600 });
      const ac = new AbortController();
      const it = src.batches(ac.signal)[Symbol.asyncIterator]();
      const staged = async () => (await listFiles(downloadDir)).length;
      const a = await nextBatch(it);
      assert.equal((await aws.queueCounts(queueUrl)).inFlight, 5, 'one receive took all five');
      // While the pipeline reads `a`, exactly one more message is fetched.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await staged(), 2);
      const seen = [a];
      assert.equal(a.moreReady, true);
      await a.ack();
      for (let i = 1; i < 5; i++) {
        const b = await nextBatch(it);
        seen.push(b);
        assert.equal(b.moreReady, i < 4, `batch ${i}: moreReady while the receive has more`);
        assert.ok((await staged()) <= 2);
        await b.ack();
      }
      assert.equal(new Set(seen.map((b) => b.id)).size, 5);
      ac.abort();
      await it.return?.();
      await src.close();
      await eventually(queueIsEmpty(queueUrl), 'all five deleted');
    } finally {
      await rm(downloadDir, { recursive: true, force: true });
    }
  });

  test('a queue that does not exist fails the source instead of retrying forever', async () => {
    const src = source(`${aws.endpoint}/000000000000/no-such-queue-${randomUUID().slice(0, 8)}`);
    const ac = new AbortController();
    await assert.rejects(async () => {
      for await (const _ of src.batches(ac.signal)) assert.fail('no batch expected');
    }, /cannot receive from .*no-such-queue/);
    await src.close();
  });

  test('an unreachable endpoint is retried with back-off (logged) until abort', async () => {
    const warned: string[] = [];
    // Port 1 on loopback: connection refused, the way an SQS outage looks from here.
    const src = new SqsSource({
      queueUrl: 'http://127.0.0.1:1/000000000000/q',
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      credentials: aws.credentials,
      log: (level, msg) => void (level === 'warn' && warned.push(msg)),
    });
    const ac = new AbortController();
    const run = (async () => {
      for await (const _ of src.batches(ac.signal)) assert.fail('no batch expected');
    })();
    await eventually(async () => warned.length > 0, 'a retry was logged');
    ac.abort();
    await run; // ends cleanly, no throw
    assert.match(warned[0], /retrying/);
    await src.close();
  });

  test('abort stops a waiting poll and hands back messages not yet yielded', async () => {
    const queueUrl = await aws.createQueue();
    for (let i = 0; i < 3; i++) await aws.sendMessage(queueUrl, JSON.stringify(await uploadBatch(1, 1)));
    const src = source(queueUrl, { maxMessages: 10, visibilityTimeout: 600, waitTimeSeconds: 20 });
    const ac = new AbortController();
    const it = src.batches(ac.signal)[Symbol.asyncIterator]();
    const first = await nextBatch(it);
    await eventually(async () => (await aws.queueCounts(queueUrl)).inFlight === 3, 'all three received');
    ac.abort();
    assert.equal((await it.next()).done, true, 'iteration ends on abort');
    // The two never yielded are visible again at once (not after 600 s).
    await eventually(async () => (await aws.queueCounts(queueUrl)).visible === 2, 'unyielded released');
    await first.ack();

    // Abort while a 20 s long poll waits on an empty queue: ends without waiting it out.
    const empty = await aws.createQueue();
    const idle = source(empty, { waitTimeSeconds: 20 });
    const ac2 = new AbortController();
    const done = (async () => {
      let n = 0;
      for await (const _ of idle.batches(ac2.signal)) n++;
      return n;
    })();
    setTimeout(() => ac2.abort(), 200);
    assert.equal(await done, 0);
    await idle.close();
    await src.close();
  });
});

describe('parseFdrMessageBody', () => {
  test('reads the FDR manifest, S3 events with URL-encoded keys, multipart ETags', () => {
    const fdr = parseFdrMessageBody(
      JSON.stringify({
        bucket: 'b',
        pathPrefix: 'data/u',
        files: [{ path: 'data/u/p.gz', size: 5, checksum: 'A'.repeat(32) }],
      }),
    );
    assert.deepEqual(fdr, {
      kind: 'objects',
      objects: [{ bucket: 'b', key: 'data/u/p.gz', size: 5, md5: 'a'.repeat(32) }],
    });
    const ev = parseFdrMessageBody(
      JSON.stringify({
        Records: [
          {
            eventName: 'ObjectCreated:CompleteMultipartUpload',
            s3: { bucket: { name: 'b' }, object: { key: 'a+b%2Fc.gz', size: 9, eTag: 'abc-2' } },
          },
          { eventName: 'ObjectRemoved:Delete', s3: { bucket: { name: 'b' }, object: { key: 'gone' } } },
        ],
      }),
    );
    assert.deepEqual(ev, {
      kind: 'objects',
      objects: [{ bucket: 'b', key: 'a b/c.gz', size: 9, md5: undefined, etag: 'abc-2' }],
    });
    assert.equal(parseFdrMessageBody('{"files":[]}', 'b').kind, 'nothing');
    assert.match((parseFdrMessageBody('{"files":[]}') as { reason: string }).reason, /bucket/);
    assert.match(
      (parseFdrMessageBody('{"bucket":"b","files":[{"path":"x","size":-1}]}') as { reason: string }).reason,
      /files\[0\]\.size/,
    );
  });

  test('finds the region in AWS queue URLs', () => {
    assert.equal(regionFromQueueUrl('https://sqs.us-west-1.amazonaws.com/123/cs-prod'), 'us-west-1');
    assert.equal(regionFromQueueUrl('https://eu-central-1.queue.amazonaws.com/123/q'), 'eu-central-1');
    assert.equal(regionFromQueueUrl('http://127.0.0.1:4566/000000000000/q'), undefined);
  });
});

test('sqsOptionsFromConfig maps ingest.sqs and lets flags win', () => {
  const cfg = {
    queue_url: 'https://sqs.us-west-1.amazonaws.com/1/q',
    region: 'us-west-1',
    visibility_timeout: 600,
    wait_time_seconds: 10,
  };
  assert.deepEqual(sqsOptionsFromConfig(cfg, { maxMessages: 2, endpoint: undefined }), {
    queueUrl: cfg.queue_url,
    region: 'us-west-1',
    visibilityTimeout: 600,
    waitTimeSeconds: 10,
    maxMessages: 2,
  });
  assert.equal(sqsOptionsFromConfig(cfg, { queueUrl: 'http://x/q2' }).queueUrl, 'http://x/q2');
  assert.throws(() => sqsOptionsFromConfig({ visibility_timeout: 300, wait_time_seconds: 20 }), /queue_url/);
  const dl = sqsOptionsFromConfig({
    ...cfg,
    download_dir: '/var/tmp/fdr',
    download_attempts: 7,
    download_concurrency: 2,
  });
  assert.equal(dl.downloadDir, '/var/tmp/fdr');
  assert.equal(dl.downloadAttempts, 7);
  assert.equal(dl.downloadConcurrency, 2);
});
