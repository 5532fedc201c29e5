/**
 * In-process S3 + SQS for tests (fauxqs 1.x), bound to 127.0.0.1 on a random port.
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
 * - `stop()` closes clients and server (open long polls are cut).
 *
 * fauxqs' `startFauxqs` listens on 0.0.0.0; tests must stay on loopback, so this builds the
 * fauxqs app and listens on 127.0.0.1 itself, creating resources through the SDK.
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

export interface Fauxqs {
  endpoint: string;
  region: string;
  credentials: FauxqsCredentials;
  clientConfig: FauxqsClientConfig;
  s3: S3Client;
  sqs: SQSClient;
  createQueue(
    name?: string,
    opts?: { visibilityTimeout?: number; attributes?: Record<string, string> },
  ): Promise<string>;
  createBucket(name?: string): Promise<string>;
  putObject(bucket: string, key: string, body: Uint8Array | string): Promise<void>;
  sendMessage(queueUrl: string, body: string): Promise<string>;
  queueCounts(queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }>;
  inspectQueue(name: string): Promise<FauxqsQueueView | undefined>;
  stop(): Promise<void>;
}

export async function startFauxqs(opts: { region?: string } = {}): Promise<Fauxqs> {
  const region = opts.region ?? 'us-east-1';
  const app = buildApp({ logger: false, defaultRegion: region });
  const endpoint = await app.listen({ port: 0, host: '127.0.0.1' });
  const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  const clientConfig = { endpoint, region, credentials };
  const sqs = new SQSClient(clientConfig);
  const s3 = new S3Client({ ...clientConfig, forcePathStyle: true });
  const shortId = () => randomUUID().slice(0, 8);

  return {
    endpoint,
    region,
    credentials,
    clientConfig,
    s3,
    sqs,
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
    async stop() {
      sqs.destroy();
      s3.destroy();
      await app.close();
    },
  };
}
