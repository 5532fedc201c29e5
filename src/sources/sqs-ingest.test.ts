/**
 * End to end, the way CrowdStrike delivers FDR: generated batches in an S3 bucket, one SQS
 * message per batch (the manifest), `SqsSource` → `ingest` → lake tables. Exactly once: every
 * event lands once, a redelivered message adds nothing, a wrong MD5 is quarantined.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { generateFdr, type GenerateSummary } from '../generate/index.js';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { ingest, type GroupSummary, type IngestOptions, type IngestSummary } from '../ingest/pipeline.js';
import { Lake } from '../lake/lake.js';
import { startFauxqs, type Fauxqs } from '../testing/fauxqs.js';
import type { FdrSource, SourceBatch } from './source.js';
import { SqsSource, type SqsSourceOptions } from './sqs.js';

const BUCKET = 'cs-prod-cannon-talon-test';

let tmp: string;
let aws: Fauxqs;
let gen: GenerateSummary;
let manifests: string[];
let parts: string[];

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'talon-sqs-ingest-'));
  const out = path.join(tmp, 'fdr');
  gen = await generateFdr({
    out,
    events: 1500,
    hosts: 8,
    days: 1,
    seed: 'sqs-e2e',
    bucket: BUCKET,
    progress: false,
  });
  aws = await startFauxqs();
  await aws.createBucket(BUCKET);
  // The bucket holds what CrowdStrike puts there: data/ and fdrv2/ (not the manifests).
  parts = [];
  for (const top of ['data', 'fdrv2']) {
    for (const rel of await walk(path.join(out, top))) {
      const key = `${top}/${rel}`;
      await aws.putObject(BUCKET, key, await readFile(path.join(out, key)));
      parts.push(key);
    }
  }
  manifests = await Promise.all(gen.paths.manifests.map((m) => readFile(path.join(out, m), 'utf8')));
});

after(async () => {
  await aws?.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function walk(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(path.join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out;
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

interface DrainOptions {
  sqs?: Partial<SqsSourceOptions>;
  ingest?: IngestOptions;
  /** Wraps the source the pipeline reads (to watch acks, slow reads down). */
  wrap?: (source: SqsSource) => FdrSource;
}

/** Runs `workers` SqsSource+ingest pairs on one queue until it is empty; their summaries. */
async function drain(
  lakeDir: string,
  queueUrl: string,
  workers = 1,
  opts: DrainOptions = {},
): Promise<IngestSummary[]> {
  const ac = new AbortController();
  const runs = Array.from({ length: workers }, async () => {
    const lake = await Lake.open(lakeDir);
    const source = new SqsSource({
      queueUrl,
      ...aws.clientConfig,
      waitTimeSeconds: 1,
      visibilityTimeout: 60,
      s3: { forcePathStyle: true },
      log: () => {},
      downloadRetryMs: 50,
      ...opts.sqs,
    });
    try {
      return await ingest(lake, opts.wrap ? opts.wrap(source) : source, {
        enricher: null,
        progress: false,
        ...opts.ingest,
        signal: ac.signal,
      });
    } finally {
      await source.close();
      lake.close();
    }
  });
  const failed = Promise.race(runs.map((r) => r.then(() => new Promise<never>(() => {}))));
  const empty = (async () => {
    const end = Date.now() + 120_000;
    while (Date.now() < end) {
      const c = await aws.queueCounts(queueUrl);
      if (c.visible === 0 && c.inFlight === 0 && c.delayed === 0) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('queue not drained within 120 s');
  })();
  // An ingest that throws (or ends early) fails the test instead of waiting for the queue.
  await Promise.race([empty, failed]);
  ac.abort();
  return Promise.all(runs);
}

/** Runs each query (returning one `n`) against the lake's current tables. */
async function counts(lakeDir: string, queries: Record<string, string>): Promise<Record<string, number>> {
  const lake = await Lake.open(lakeDir);
  try {
    await lake.registerViews();
    const out: Record<string, number> = {};
    for (const [k, sql] of Object.entries(queries)) {
      const rows = await lake.db.all<{ n: bigint | number }>(sql);
      out[k] = Number(rows[0]?.n ?? 0);
    }
    return out;
  } finally {
    lake.close();
  }
}

const count = async (lakeDir: string, sql: string) => (await counts(lakeDir, { n: sql })).n;

/** Rows per event table, for the types the generator wrote. */
const tableCounts = (lakeDir: string) =>
  counts(
    lakeDir,
    Object.fromEntries(Object.keys(gen.eventsByType).map((t) => [t, `SELECT count(*) AS n FROM "${t}"`])),
  );

test(
  'FDR via S3+SQS: every event once across two workers; redelivery adds nothing; wrong MD5, missing objects and malformed messages quarantined',
  { timeout: 300_000 },
  async () => {
    const lakeDir = path.join(tmp, 'lake');
    const queueUrl = await aws.createQueue();
    for (const m of manifests) await aws.sendMessage(queueUrl, m);

    // Two workers share the queue, committing to the same lake.
    const first = await drain(lakeDir, queueUrl, 2);
    const files = first.reduce((n, s) => n + s.files, 0);
    assert.equal(files, parts.length, 'every part ingested once');
    assert.deepEqual(await tableCounts(lakeDir), gen.eventsByType, 'every generated event exactly once');
    assert.equal(await count(lakeDir, 'SELECT count(*) AS n FROM ingest_log'), parts.length);
    assert.equal(await count(lakeDir, 'SELECT count(DISTINCT file_id) AS n FROM ingest_log'), parts.length);
    assert.equal(
      await count(
        lakeDir,
        `SELECT count(*) AS n FROM ingest_log WHERE file_id NOT LIKE 's3://${BUCKET}/%#%'`,
      ),
      0,
    );

    // CrowdStrike (or SQS) delivers every message again: nothing is added, the queue empties.
    for (const m of manifests) await aws.sendMessage(queueUrl, m);
    const [again] = await drain(lakeDir, queueUrl);
    assert.equal(again.events, 0);
    assert.equal(again.files, 0);
    assert.equal(again.skippedFiles, parts.length);
    assert.deepEqual(await tableCounts(lakeDir), gen.eventsByType);

    // A batch whose message states a wrong MD5: none of its events, one md5_mismatch row.
    const uuid = randomUUID();
    const gz = gzipSync(
      JSON.stringify({
        event_simpleName: 'DnsRequest',
        DomainName: 'tampered.example',
        timestamp: '1772409600000',
      }) + '\n',
    );
    const key = `data/${uuid}/part-00000.gz`;
    await aws.putObject(BUCKET, key, gz);
    const wrong = md5(Buffer.from('not these bytes'));
    assert.notEqual(wrong, md5(gz));
    await aws.sendMessage(
      queueUrl,
      JSON.stringify({
        cid: 'c',
        timestamp: 1772409600000,
        fileCount: 1,
        totalSize: gz.length,
        bucket: BUCKET,
        pathPrefix: `data/${uuid}`,
        files: [{ path: key, size: gz.length, checksum: wrong }],
      }),
    );
    // A message naming an object that is gone (FDR retention expired).
    const goneKey = `data/${randomUUID()}/part-00000.gz`;
    await aws.sendMessage(
      queueUrl,
      JSON.stringify({ bucket: BUCKET, files: [{ path: goneKey, size: 4096, checksum: wrong }] }),
    );
    // And a message that is not a manifest at all.
    const malformedId = await aws.sendMessage(queueUrl, 'definitely {not an FDR manifest');
    const [third] = await drain(lakeDir, queueUrl);
    assert.equal(third.events, 0);
    assert.deepEqual(await tableCounts(lakeDir), gen.eventsByType, 'tampered file added no event');
    assert.equal(
      await count(
        lakeDir,
        `SELECT count(*) AS n FROM quarantine WHERE reason = 'md5_mismatch' AND source = 's3://${BUCKET}/${key}'`,
      ),
      1,
    );
    assert.equal(
      await count(
        lakeDir,
        `SELECT count(*) AS n FROM quarantine WHERE reason IN ('md5_mismatch', 'size_mismatch') ` +
          `AND source = 's3://${BUCKET}/${goneKey}' AND detail LIKE '%0 bytes%'`,
      ),
      1,
      'a missing object is recorded, not a poison message',
    );
    assert.equal(
      await count(
        lakeDir,
        `SELECT count(*) AS n FROM quarantine WHERE source LIKE '%/${malformedId}' AND raw LIKE '%definitely {not an FDR manifest%'`,
      ),
      1,
      'the malformed body is kept in quarantine',
    );
  },
);

for (const maxMessages of [1, 10]) {
  test(
    `a file that cannot be downloaded does not stop the worker; its message is ingested on redelivery (maxMessages ${maxMessages})`,
    { timeout: 120_000 },
    async () => {
      const lakeDir = path.join(tmp, `lake-faults-${maxMessages}`);
      const queueUrl = await aws.createQueue();
      /** One batch of `n` DnsRequest events for `marker`, in S3; its manifest. */
      const batch = async (marker: string, n: number) => {
        const uuid = randomUUID();
        const key = `data/${uuid}/part-00000.gz`;
        const lines = Array.from({ length: n }, (_, i) =>
          JSON.stringify({
            event_simpleName: 'DnsRequest',
            aid: 'a'.repeat(32),
            DomainName: `${marker}-${i}.example`,
            timestamp: String(1772409600000 + i),
          }),
        );
        const gz = gzipSync(lines.join('\n') + '\n');
        await aws.putObject(BUCKET, key, gz);
        return {
          key,
          manifest: { bucket: BUCKET, files: [{ path: key, size: gz.length, checksum: md5(gz) }] },
        };
      };
      const flaky = await batch('flaky', 5);
      const fine = await batch('fine', 7);
      const fault = aws.failObject(BUCKET, flaky.key, { status: 500, code: 'InternalError' });
      const flakyId = await aws.sendMessage(queueUrl, JSON.stringify(flaky.manifest));
      await aws.sendMessage(queueUrl, JSON.stringify(fine.manifest));

      const errors: Array<Record<string, unknown> | undefined> = [];
      const lake = await Lake.open(lakeDir);
      const source = new SqsSource({
        queueUrl,
        ...aws.clientConfig,
        waitTimeSeconds: 1,
        visibilityTimeout: 3,
        maxMessages,
        s3: { forcePathStyle: true },
        downloadAttempts: 2,
        downloadRetryMs: 10,
        log: (level, _m, f) => void (level === 'error' && errors.push(f)),
      });
      const ac = new AbortController();
      let finished = false;
      const run = ingest(lake, source, { signal: ac.signal, enricher: null, progress: false }).finally(
        () => (finished = true),
      );
      try {
        const domains = (marker: string) =>
          count(lakeDir, `SELECT count(*) AS n FROM "DnsRequest" WHERE DomainName LIKE '${marker}-%'`);
        const until = async (check: () => Promise<boolean>, what: string) => {
          const end = Date.now() + 60_000;
          while (Date.now() < end) {
            if (finished) await run; // surfaces the error of an ingest that stopped
            if (await check().catch(() => false)) return;
            await new Promise((r) => setTimeout(r, 200));
          }
          assert.fail(`not within 60 s: ${what}`);
        };
        await until(async () => (await domains('fine')) === 7, 'the good message is ingested');
        assert.ok(
          errors.some((e) => e?.message_id === flakyId && e.object === `s3://${BUCKET}/${flaky.key}`),
        );
        assert.equal(finished, false, 'the worker is still running');
        assert.equal(await domains('flaky'), 0);
        const view = await aws.inspectQueue(queueUrl.split('/').pop()!);
        const onQueue = [
          ...(view?.messages.inflight.map((x) => x.message.messageId) ?? []),
          ...(view?.messages.ready.map((x) => x.messageId) ?? []),
        ];
        assert.ok(onQueue.includes(flakyId), 'the failed message was not deleted');
        // S3 recovers: the redelivered message is ingested, once.
        fault.clear();
        await until(async () => (await domains('flaky')) === 5, 'the redelivered message is ingested');
        await until(async () => {
          const q = await aws.queueCounts(queueUrl);
          return q.visible + q.inFlight + q.delayed === 0;
        }, 'the queue is empty');
        assert.equal(await domains('fine'), 7);
      } finally {
        ac.abort();
        await run.catch(() => {});
        await source.close();
        lake.close();
      }
    },
  );
}

/** Latest Delta version of each table of the lake. */
async function versions(lakeDir: string): Promise<Record<string, number>> {
  const lake = await Lake.open(lakeDir);
  try {
    const out: Record<string, number> = {};
    for (const name of await lake.tableNames())
      out[name] = (await (await lake.table(name))!.snapshot()).version;
    return out;
  } finally {
    lake.close();
  }
}

test(
  'the messages of one receive are committed together, each deleted only after the commit holding all its files; a redelivered one adds nothing',
  { timeout: 300_000 },
  async () => {
    assert.ok(manifests.length >= 3, `the generator wrote ${manifests.length} batches`);
    const lakeDir = path.join(tmp, 'lake-grouped');
    const queueUrl = await aws.createQueue();
    for (const m of manifests) await aws.sendMessage(queueUrl, m);
    // The same batch announced twice: its files are staged once even within one group.
    await aws.sendMessage(queueUrl, manifests[0]);
    const groups: GroupSummary[] = [];
    const [first] = await drain(lakeDir, queueUrl, 1, {
      sqs: { maxMessages: 10 },
      ingest: { onCommit: (g) => groups.push(g) },
    });
    assert.equal(first.files, parts.length);
    assert.deepEqual(await tableCounts(lakeDir), gen.eventsByType, 'every generated event exactly once');
    assert.ok(groups.length < manifests.length, `${groups.length} commits for ${manifests.length} messages`);
    const before = await versions(lakeDir);
    // ingest_log: version 0 creates it, then one commit per group
    assert.equal(before.ingest_log, groups.length);
    for (const t of Object.keys(gen.eventsByType))
      assert.ok(before[t] <= groups.length, `${t}: ${before[t]}`);

    // One message of the committed group delivered again: skipped, no commit anywhere.
    const again = manifests[1];
    await aws.sendMessage(queueUrl, again);
    const [redelivered] = await drain(lakeDir, queueUrl, 1, { sqs: { maxMessages: 10 } });
    assert.equal(redelivered.events, 0);
    assert.equal(redelivered.files, 0);
    assert.equal(redelivered.skippedFiles, (JSON.parse(again) as { files: unknown[] }).files.length);
    assert.deepEqual(await versions(lakeDir), before);
    assert.deepEqual(await tableCounts(lakeDir), gen.eventsByType);
  },
);

test(
  'commits cut inside a message (batch_events) delete it only after its last file commits; heartbeats keep every held message invisible',
  { timeout: 300_000 },
  async () => {
    const lakeDir = path.join(tmp, 'lake-cut');
    const queueUrl = await aws.createQueue();
    for (const m of manifests) await aws.sendMessage(queueUrl, m);
    const committed = new Set<string>();
    const early: string[] = [];
    let spied: number | undefined;
    let firstOpen = true;
    const wrap = (source: SqsSource): FdrSource => ({
      kind: source.kind,
      async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
        for await (const b of source.batches(signal)) {
          const ack = b.ack.bind(b);
          b.ack = async () => {
            const missing = b.files.filter((f) => !committed.has(f.id));
            if (missing.length)
              early.push(`${b.id}: ${missing.length} of ${b.files.length} files uncommitted`);
            await ack();
          };
          for (const f of b.files) {
            const open = f.open.bind(f);
            f.open = async () => {
              if (firstOpen) {
                firstOpen = false;
                // Longer than two visibility timeouts, with every message of the receive held:
                // another consumer must still see none of them.
                await new Promise((r) => setTimeout(r, 2500));
                const res = await aws.sqs.send(
                  new ReceiveMessageCommand({
                    QueueUrl: queueUrl,
                    MaxNumberOfMessages: 10,
                    WaitTimeSeconds: 0,
                  }),
                );
                spied = res.Messages?.length ?? 0;
              }
              return open();
            };
          }
          yield b;
        }
      },
    });
    const [s] = await drain(lakeDir, queueUrl, 1, {
      sqs: { maxMessages: 10, visibilityTimeout: 1 },
      // about one file per commit: every message with several files is cut
      ingest: { batchEvents: 1, onCommit: (g) => g.files.forEach((id) => committed.add(id)) },
      wrap,
    });
    assert.deepEqual(early, [], 'no message deleted before all its files were committed');
    assert.equal(spied, 0, 'held messages stayed invisible');
    assert.equal(s.files, parts.length);
    assert.deepEqual(await tableCounts(lakeDir), gen.eventsByType);
  },
);
