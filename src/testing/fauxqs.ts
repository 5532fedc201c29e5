/**
 * In-process S3 + SQS for tests (fauxqs 1.x), bound to 127.0.0.1 on a random port — the one
 * AWS emulator of the test suite (lake S3 store, SQS source, CLI). Only tests import this
 * module (fauxqs is a dev dependency).
 *
 * ```ts
 * const aws = await startFauxqs();              // one per test file is plenty
 * const bucket = await aws.createBucket();      // random name unless given
 * const queueUrl = await aws.createQueue(undefined, { visibilityTimeout: 2 });
 * await aws.putObject(bucket, 'data/x/part-00000.gz', bytes);
 * await aws.sendMessage(queueUrl, JSON.stringify(manifest));
 * new SqsSource({ queueUrl, ...aws.clientConfig, s3: { forcePathStyle: true } });
 * await aws.queueCounts(queueUrl);              // { visible, inFlight, delayed }
 * await aws.stop();
 * ```
 *
 * API:
 * - `endpoint` (`http://127.0.0.1:<port>`), `region` (`us-east-1`), `credentials` (any value
 *   is accepted by fauxqs; fixed test ones here), `clientConfig` = {endpoint, region,
 *   credentials} for SDK clients and `SqsSource`.
 * - `s3` (path-style S3Client — fauxqs needs `forcePathStyle: true` on 127.0.0.1) and `sqs`
 *   (SQSClient), both pointed at the emulator.
 * - `createQueue(name?, {visibilityTimeout?, attributes?})` → queue URL;
 *   `createBucket(name?)` → bucket name; `putObject(bucket, key, body)`;
 *   `sendMessage(queueUrl, body)` → message id;
 * - `queueCounts(queueUrl)` → approximate visible / in-flight / delayed counts;
 *   `inspectQueue(name)` → fauxqs' full non-destructive view (ready, delayed, in-flight with
 *   `visibilityDeadline` epoch ms), via its `/_fauxqs/queues/:name` endpoint.
 * - `requests` — request counts by HTTP method (`GET`, `PUT`, `HEAD`, …), for asserting cache
 *   hits; `refused` — conditional PUTs refused (412 / 409).
 * - `failObject(bucket, key, fault)` — S3 faults on GET of one object, for source tests:
 *   `{status, code}` answers with an S3 error (e.g. 503 SlowDown, 403 AccessDenied);
 *   `{cutAfterBytes}` sends that many bytes of the body, then drops the connection (a network
 *   failure mid-download). `times` limits how many GETs fail (default: all). Returns a handle
 *   with the number of faults served, the Range headers of the object's GETs, and `clear()`.
 * - `stop()` closes clients and server (open long polls are cut).
 *
 * Conditional PUT: fauxqs 1.9 ignores `If-None-Match` on PutObject (it overwrites), so by
 * default this adds S3's documented conditional-write behaviour, to test the real S3 code path
 * of Delta commits: `If-None-Match: *` on a key that exists → 412 PreconditionFailed; a second
 * conditional PUT to a key while one is in flight → 409 ConditionalRequestConflict (the client
 * is expected to retry). `conditionalPut: false` gives plain fauxqs.
 *
 * fauxqs' `startFauxqs` listens on 0.0.0.0; tests must stay on loopback, so this builds the
 * fauxqs app and listens on 127.0.0.1 itself.
 */
import { randomUUID } from 'node:crypto';
import { buildApp } from 'fauxqs';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

export interface FauxqsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface FauxqsClientConfig {
  endpoint: string;
  region: string;
  credentials: FauxqsCredentials;
}

export interface FauxqsQueueView {
  name: string;
  url: string;
  arn: string;
  attributes: Record<string, string>;
  messages: {
    ready: Array<{ messageId: string; body: string }>;
    delayed: Array<{ messageId: string; body: string }>;
    inflight: Array<{ message: { messageId: string; body: string }; visibilityDeadline: number }>;
  };
}

export type S3Fault =
  | { status: number; code: string; message?: string; times?: number }
  | { cutAfterBytes: number; times?: number };

export interface S3FaultHandle {
  /** GETs answered with the fault so far. */
  readonly served: number;
  /** The `Range` header of every GET of the object since the fault was set ('' = none). */
  readonly ranges: string[];
  clear(): void;
}

export interface StartFauxqsOptions {
  region?: string;
  /** Emulate S3's `If-None-Match: *` (default true); see the module comment. */
  conditionalPut?: boolean;
  /** Hold each conditional PUT this long before storing it: makes concurrent ones meet (409). */
  conditionalPutDelayMs?: number;
  /** Buckets to create at start. */
  buckets?: string[];
}

export interface Fauxqs {
  endpoint: string;
  region: string;
  credentials: FauxqsCredentials;
  clientConfig: FauxqsClientConfig;
  s3: S3Client;
  sqs: SQSClient;
  /** Request counts by HTTP method. */
  requests: Record<string, number>;
  /** Conditional PUTs refused: 412 (key existed) and 409 (another conditional PUT in flight). */
  refused: { preconditionFailed: number; conflict: number };
  createQueue(
    name?: string,
    opts?: { visibilityTimeout?: number; attributes?: Record<string, string> },
  ): Promise<string>;
  createBucket(name?: string): Promise<string>;
  putObject(bucket: string, key: string, body: Uint8Array | string): Promise<void>;
  sendMessage(queueUrl: string, body: string): Promise<string>;
  queueCounts(queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }>;
  inspectQueue(name: string): Promise<FauxqsQueueView | undefined>;
  failObject(bucket: string, key: string, fault: S3Fault): S3FaultHandle;
  stop(): Promise<void>;
}

/** Marks the emulator's own requests to itself (fault injection reads the real object). */
const INTERNAL_HEADER = 'x-talon-fauxqs-internal';

export async function startFauxqs(opts: StartFauxqsOptions = {}): Promise<Fauxqs> {
  const region = opts.region ?? 'us-east-1';
  const app = buildApp({ logger: false, defaultRegion: region });
  const requests: Record<string, number> = {};
  const refused = { preconditionFailed: 0, conflict: 0 };
  app.addHook('onRequest', async (req) => {
    if (req.headers[INTERNAL_HEADER]) return;
    requests[req.method] = (requests[req.method] ?? 0) + 1;
  });

  if (opts.conditionalPut ?? true) {
    // object path → the request holding the conditional write on it
    const inFlight = new Map<string, unknown>();
    app.addHook('preHandler', async (req, reply) => {
      if (req.method !== 'PUT' || req.headers['if-none-match'] !== '*') return;
      const objectPath = req.url.split('?')[0]!;
      if (inFlight.has(objectPath)) {
        refused.conflict++;
        return reply
          .status(409)
          .header('content-type', 'application/xml')
          .send(
            s3ErrorXml('ConditionalRequestConflict', 'A conflicting conditional operation is in progress'),
          );
      }
      inFlight.set(objectPath, req);
      if (opts.conditionalPutDelayMs) await new Promise((r) => setTimeout(r, opts.conditionalPutDelayMs));
      const head = await app.inject({
        method: 'HEAD',
        url: objectPath,
        headers: { [INTERNAL_HEADER]: '1' },
      });
      if (head.statusCode === 200) {
        refused.preconditionFailed++;
        return reply
          .status(412)
          .header('content-type', 'application/xml')
          .send(
            s3ErrorXml('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'),
          );
      }
    });
    const release = async (req: { url: string }) => {
      const objectPath = req.url.split('?')[0]!;
      if (inFlight.get(objectPath) === req) inFlight.delete(objectPath);
    };
    app.addHook('onResponse', release);
    app.addHook('onRequestAbort', release);
  }

  // path-style object path (`/bucket/key`, key segments URL-encoded) → its fault
  const faults = new Map<string, { fault: S3Fault; served: number; ranges: string[] }>();
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' || req.headers[INTERNAL_HEADER] || faults.size === 0) return;
    const objectPath = decodeURIComponent(req.url.split('?')[0]!);
    const entry = faults.get(objectPath);
    if (!entry) return;
    entry.ranges.push(String(req.headers.range ?? ''));
    if (entry.fault.times !== undefined && entry.served >= entry.fault.times) return;
    entry.served++;
    const f = entry.fault;
    if ('status' in f) {
      return reply
        .status(f.status)
        .header('content-type', 'application/xml')
        .send(s3ErrorXml(f.code, f.message ?? `injected ${f.code}`));
    }
    const res = await app.inject({ method: 'GET', url: req.url, headers: { [INTERNAL_HEADER]: '1' } });
    const body = res.rawPayload;
    reply.hijack();
    const socket = reply.raw.socket;
    const head =
      `HTTP/1.1 ${res.statusCode} OK\r\ncontent-type: application/octet-stream\r\n` +
      `content-length: ${body.length}\r\netag: ${String(res.headers.etag ?? '')}\r\n\r\n`;
    socket?.write(head);
    // FIN after the partial body (not RST, which may discard bytes the client has not read yet)
    socket?.write(body.subarray(0, Math.min(f.cutAfterBytes, body.length)), () => socket.end());
  });

  const endpoint = await app.listen({ port: 0, host: '127.0.0.1' });
  const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  const clientConfig = { endpoint, region, credentials };
  const sqs = new SQSClient(clientConfig);
  const s3 = new S3Client({ ...clientConfig, forcePathStyle: true });
  const shortId = () => randomUUID().slice(0, 8);

  const aws: Fauxqs = {
    endpoint,
    region,
    credentials,
    clientConfig,
    s3,
    sqs,
    requests,
    refused,
    async createQueue(name, q = {}) {
      const attributes: Record<string, string> = { ...q.attributes };
      if (q.visibilityTimeout !== undefined) attributes.VisibilityTimeout = String(q.visibilityTimeout);
      const res = await sqs.send(
        new CreateQueueCommand({ QueueName: name ?? `q-${shortId()}`, Attributes: attributes }),
      );
      if (!res.QueueUrl) throw new Error('fauxqs: CreateQueue returned no QueueUrl');
      return res.QueueUrl;
    },
    async createBucket(name) {
      const bucket = name ?? `b-${shortId()}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    async putObject(bucket, key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async sendMessage(queueUrl, body) {
      const res = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
      return res.MessageId ?? '';
    },
    async queueCounts(queueUrl) {
      const res = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesNotVisible',
            'ApproximateNumberOfMessagesDelayed',
          ],
        }),
      );
      const a = res.Attributes ?? {};
      return {
        visible: Number(a.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
        delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
      };
    },
    async inspectQueue(name) {
      const res = await fetch(`${endpoint}/_fauxqs/queues/${encodeURIComponent(name)}`);
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Error(`fauxqs: inspect ${name}: HTTP ${res.status}`);
      return (await res.json()) as FauxqsQueueView;
    },
    failObject(bucket, key, fault) {
      const objectPath = `/${bucket}/${key}`;
      const entry = { fault, served: 0, ranges: [] as string[] };
      faults.set(objectPath, entry);
      return {
        get served() {
          return entry.served;
        },
        ranges: entry.ranges,
        clear() {
          if (faults.get(objectPath) === entry) faults.delete(objectPath);
        },
      };
    },
    async stop() {
      sqs.destroy();
      s3.destroy();
      await app.close();
    },
  };
  for (const b of opts.buckets ?? []) await aws.createBucket(b);
  return aws;
}

function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}
