/**
 * FDR delivery over S3 + SQS, the way CrowdStrike ships it: every batch CrowdStrike lands in
 * its S3 bucket is announced by one SQS message whose body is the batch manifest (see
 * `manifest.ts`). `SqsSource` long-polls the queue and yields one `SourceBatch` per message;
 * the batch's files stream straight from S3 (`GetObject`), with the manifest's size and MD5
 * as expectations the pipeline verifies.
 *
 * Grouping: with `maxMessages` > 1, the messages of one ReceiveMessage are handed over one by
 * one with `moreReady`, each downloading while the pipeline reads the one before, and the
 * pipeline commits them together (up to its batch limit): fewer, larger commits on a busy
 * queue, while the local disk holds the group plus one message. Each is deleted after the
 * commit that holds all its files; a message whose download failed is left out and
 * redelivered later.
 *
 * SQS contract, as the pipeline drives it (acknowledge after commit):
 * - `ack()`  → `DeleteMessage`, called only after the batch is committed to the lake.
 * - `heartbeat()` → `ChangeMessageVisibility(visibilityTimeout)`; the source also runs its
 *   own timer every `heartbeatSeconds` (default visibilityTimeout/3) from receipt until
 *   ack/nack/close, so a big batch is never handed to another worker while in work.
 * - `nack()` → `ChangeMessageVisibility(0)`: the message is visible again at once.
 * - A worker that dies simply stops extending; SQS redelivers after the timeout and the
 *   pipeline's ingest log (keyed by `SourceFile.id` = `s3://bucket/key#<md5>`) makes the
 *   redelivery add nothing. Several workers on one queue share the load — that is SQS.
 *
 * Downloads: before a message becomes a batch, every file it announces is downloaded to a
 * local staging folder (`downloadDir`, default the OS temp dir; removed on ack/nack/close).
 * A failed GetObject or a connection cut mid-body is retried `downloadAttempts` times with
 * back-off, resuming a cut download with a `Range` GET pinned to the first response's ETag
 * (`If-Match`; a changed object starts over). A file that still cannot be had (S3 5xx,
 * throttling, network, access denied) never stops the worker: the error is logged with the
 * message id, receive count and object key, the message is left in flight — not deleted, not
 * handed to the pipeline — and the worker goes on with the next message. SQS makes it visible
 * again after the visibility timeout, so another attempt happens then, on any worker. How
 * often is bounded by the queue, not by Talon: a queue you own should have a redrive policy
 * (`maxReceiveCount` → dead-letter queue); CrowdStrike's FDR queue keeps a message until its
 * retention period ends. A missing object (`NoSuchKey` on every attempt) is different: FDR
 * deletes objects after 7 days, so retrying cannot help and would make the message a poison
 * pill. That file opens as zero bytes, the pipeline's size/MD5 check quarantines it
 * (`md5_mismatch`/`size_mismatch`, "got 0 bytes"), the rest of the batch is ingested and the
 * message is deleted after the commit; the source logs the missing key as an error.
 *
 * Message bodies accepted: the FDR manifest; the S3 event notification
 * (`Records[].s3.bucket.name / object.key / size / eTag`, for buckets you own that notify a
 * queue); either wrapped in an SNS envelope (`{"Type":"Notification","Message":"…"}`).
 * S3's `s3:TestEvent` and manifests listing no files are deleted (nothing to ingest).
 *
 * Malformed bodies (not JSON, no `files`, a bad file entry): never crash, never silently
 * drop. Default `malformed: 'quarantine'`: the message becomes a batch of one synthetic file
 * whose single NDJSON line is `{"malformed_fdr_message":{"queue","message_id","reason","body"}}`
 * — a JSON object without `event_simpleName`, so the pipeline's quarantine rule stores it
 * (raw body, reason, message id) in the `quarantine` table and then acks, deleting the
 * message. This is the right default for CrowdStrike's FDR queue, which lives in
 * CrowdStrike's account: customers cannot attach a dead-letter queue to it, so a message left
 * on it would loop until retention expires and then be lost. With `malformed: 'leave'` the
 * message is logged (message id, receive count, reason) and left in flight, to come back after
 * the visibility timeout and reach the queue's redrive policy / DLQ — for queues you own.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
  type SQSClientConfig,
} from '@aws-sdk/client-sqs';
import { GetObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { TalonConfig } from '../config/config.js';
import { sleep } from '../util/sleep.js';
import type { FdrSource, SourceBatch, SourceFile } from './source.js';
import { ManifestError, parseFdrManifest, defaultSourceLog, type SourceLog } from './manifest.js';

export interface SqsSourceOptions {
  /** The FDR queue URL, e.g. `https://sqs.us-west-1.amazonaws.com/123456789012/cs-prod-…`. */
  queueUrl: string;
  /** Default: the region in an AWS `queueUrl`, else the AWS chain (AWS_REGION, profile). */
  region?: string;
  /** SQS endpoint override (LocalStack, fauxqs); default AWS (or AWS_ENDPOINT_URL_SQS). */
  endpoint?: string;
  /** Default: the AWS default credential chain (env, profile, SSO, container/instance role). */
  credentials?: SQSClientConfig['credentials'];
  /** Seconds a received message stays invisible to other workers; extended while in work. */
  visibilityTimeout?: number;
  /** Long-poll wait per ReceiveMessage, 0–20 s. */
  waitTimeSeconds?: number;
  /**
   * Messages per ReceiveMessage, 1–10. Default 1: an FDR message is a whole batch (often
   * hundreds of MB), and messages held by one busy worker are messages other workers could
   * be ingesting.
   */
  maxMessages?: number;
  /** Seconds between automatic visibility extensions; default visibilityTimeout/3; 0 = off. */
  heartbeatSeconds?: number;
  /** Bucket for manifests that name none (FDR manifests always do). */
  bucket?: string;
  /** S3 client settings; endpoint/region/credentials default to the SQS ones. */
  s3?: {
    endpoint?: string;
    region?: string;
    /** Default: true when an endpoint is set (MinIO, LocalStack, fauxqs), else false. */
    forcePathStyle?: boolean;
  };
  /** Folder for the files of messages in work (default: the OS temp dir). */
  downloadDir?: string;
  /** GetObject attempts per file within one receipt of a message (default 4). */
  downloadAttempts?: number;
  /** First back-off between attempts, doubled each time up to 30 s (default 1000 ms). */
  downloadRetryMs?: number;
  /** Files of one message downloaded at once (default 4). */
  downloadConcurrency?: number;
  /** What to do with a body that is not a manifest; see the module comment. */
  malformed?: 'quarantine' | 'leave';
  /** Use these clients instead of building them (their settings win). */
  sqsClient?: SQSClient;
  s3Client?: S3Client;
  log?: SourceLog;
}

export const SQS_DEFAULTS = {
  visibilityTimeout: 300,
  waitTimeSeconds: 20,
  maxMessages: 1,
  malformed: 'quarantine',
  downloadAttempts: 4,
  downloadRetryMs: 1000,
  downloadConcurrency: 4,
} as const;

/**
 * SqsSource options from the `ingest.sqs` config section (file < TALON_INGEST__SQS__* env <
 * flags, resolved by the config loader); `overrides` carry flags and settings the config
 * schema does not have (yet): maxMessages, s3 endpoint / path style, malformed.
 */
export function sqsOptionsFromConfig(
  cfg: TalonConfig['ingest']['sqs'],
  overrides: Partial<SqsSourceOptions> = {},
): SqsSourceOptions {
  const queueUrl = overrides.queueUrl ?? cfg.queue_url;
  if (!queueUrl) throw new Error('ingest.sqs.queue_url (or --sqs-queue) is required for the SQS source');
  const opts: SqsSourceOptions = {
    queueUrl,
    visibilityTimeout: cfg.visibility_timeout,
    waitTimeSeconds: cfg.wait_time_seconds,
  };
  if (cfg.region) opts.region = cfg.region;
  if (cfg.endpoint) opts.endpoint = cfg.endpoint;
  if (cfg.max_messages) opts.maxMessages = cfg.max_messages;
  if (cfg.malformed) opts.malformed = cfg.malformed;
  if (cfg.download_dir) opts.downloadDir = cfg.download_dir;
  if (cfg.download_attempts) opts.downloadAttempts = cfg.download_attempts;
  if (cfg.download_concurrency) opts.downloadConcurrency = cfg.download_concurrency;
  if (cfg.s3_endpoint || cfg.force_path_style !== undefined) {
    opts.s3 = {
      ...(cfg.s3_endpoint ? { endpoint: cfg.s3_endpoint } : {}),
      ...(cfg.force_path_style !== undefined ? { forcePathStyle: cfg.force_path_style } : {}),
    };
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (opts as unknown as Record<string, unknown>)[k] = v;
  }
  return opts;
}

/** A file announced by a message: where it is and what the message says it is. */
interface AnnouncedObject {
  bucket: string;
  key: string;
  size?: number;
  md5?: string;
  /** Content identity for the id when there is no MD5 (S3 multipart ETag). */
  etag?: string;
}

type ParsedBody =
  | { kind: 'objects'; objects: AnnouncedObject[] }
  | { kind: 'nothing'; why: string }
  | { kind: 'malformed'; reason: string };

const MD5_HEX = /^[0-9a-f]{32}$/;

/** `https://sqs.us-west-1.amazonaws.com/…` and legacy `https://us-west-1.queue.amazonaws.com/…`. */
export function regionFromQueueUrl(queueUrl: string): string | undefined {
  try {
    const host = new URL(queueUrl).hostname;
    const m = /^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d+)\.(?:queue\.)?amazonaws\.com(?:\.cn)?$/.exec(host);
    return m?.[1];
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** S3 event notifications URL-encode keys with '+' for spaces. */
function decodeS3EventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** Reads an SQS body into the objects it announces. Exported for tests and other sources. */
export function parseFdrMessageBody(body: string, defaultBucket?: string): ParsedBody {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    return { kind: 'malformed', reason: `body is not JSON: ${(err as Error).message}` };
  }
  // SNS → SQS fan-out without raw delivery wraps the real body once.
  if (isRecord(doc) && doc.Type === 'Notification' && typeof doc.Message === 'string') {
    try {
      doc = JSON.parse(doc.Message);
    } catch (err) {
      return { kind: 'malformed', reason: `SNS Message is not JSON: ${(err as Error).message}` };
    }
  }
  if (isRecord(doc) && doc.Event === 's3:TestEvent') return { kind: 'nothing', why: 'S3 test event' };
  if (isRecord(doc) && Array.isArray(doc.Records)) return parseS3Event(doc.Records);
  try {
    const manifest = parseFdrManifest(doc);
    const bucket = manifest.bucket ?? defaultBucket;
    if (!bucket) return { kind: 'malformed', reason: 'bucket: missing (and no default bucket configured)' };
    if (manifest.files.length === 0) return { kind: 'nothing', why: 'manifest lists no files' };
    return {
      kind: 'objects',
      objects: manifest.files.map((f) => ({ bucket, key: f.path, size: f.size, md5: f.checksum })),
    };
  } catch (err) {
    if (err instanceof ManifestError)
      return { kind: 'malformed', reason: `not an FDR manifest: ${err.message}` };
    throw err;
  }
}

function parseS3Event(records: unknown[]): ParsedBody {
  const objects: AnnouncedObject[] = [];
  for (const [i, r] of records.entries()) {
    if (!isRecord(r) || !isRecord(r.s3)) return { kind: 'malformed', reason: `Records[${i}].s3: missing` };
    if (typeof r.eventName === 'string' && !r.eventName.startsWith('ObjectCreated')) continue;
    const bucket = isRecord(r.s3.bucket) ? r.s3.bucket.name : undefined;
    const obj = isRecord(r.s3.object) ? r.s3.object : undefined;
    if (typeof bucket !== 'string' || !obj || typeof obj.key !== 'string') {
      return { kind: 'malformed', reason: `Records[${i}].s3: bucket.name or object.key missing` };
    }
    const etag = typeof obj.eTag === 'string' ? obj.eTag.replace(/"/g, '').toLowerCase() : undefined;
    objects.push({
      bucket,
      key: decodeS3EventKey(obj.key),
      size: typeof obj.size === 'number' ? obj.size : undefined,
      // A multipart upload's ETag is not the MD5 of the object (it has a `-<parts>` suffix).
      md5: etag && MD5_HEX.test(etag) ? etag : undefined,
      etag,
    });
  }
  return objects.length ? { kind: 'objects', objects } : { kind: 'nothing', why: 'no ObjectCreated records' };
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** GetObject's body as a Node stream (a Readable in Node; a web stream elsewhere). */
function toReadable(body: unknown): Readable | undefined {
  if (body instanceof Readable) return body;
  if (body && typeof (body as ReadableStream).getReader === 'function') {
    return Readable.fromWeb(body as import('node:stream/web').ReadableStream);
  }
  return undefined;
}

function errorName(err: unknown): string {
  return isRecord(err) && typeof err.name === 'string' ? err.name : 'Error';
}

/**
 * A 4xx other than throttling (no such queue, access denied, bad signature), or no region /
 * credentials at all. Network errors, 5xx and throttling are transient (the SDK has already
 * retried them a few times; the source keeps retrying with back-off).
 */
function isConfigurationError(err: unknown): boolean {
  if (!isRecord(err)) return false;
  const name = errorName(err);
  if (name === 'CredentialsProviderError') return true;
  if (typeof err.message === 'string' && /region is missing/i.test(err.message)) return true;
  const meta = isRecord(err.$metadata) ? err.$metadata : undefined;
  const status = typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
  if (status === undefined || status < 400 || status >= 500) return false;
  return status !== 429 && !/throttl|RequestThrottled|OverLimit/i.test(name);
}

/** The receipt handle is gone: the message was deleted or redelivered to someone else. */
function isStaleReceipt(err: unknown): boolean {
  const name = errorName(err);
  return /ReceiptHandleIsInvalid|MessageNotInflight|InvalidParameterValue/i.test(name);
}

/** One received message while this worker holds it. */
class InFlightMessage {
  state: 'held' | 'acked' | 'released' | 'closed' = 'held';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: SqsSource,
    readonly message: Message,
    heartbeatMs: number,
  ) {
    if (heartbeatMs > 0) {
      this.timer = setInterval(() => void this.extend(), heartbeatMs);
      // A held message must not keep a finished process alive.
      this.timer.unref();
    }
  }

  get id(): string {
    return this.message.MessageId ?? '';
  }

  private stop(state: InFlightMessage['state']): void {
    this.state = state;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.source.forget(this);
  }

  async extend(): Promise<void> {
    if (this.state !== 'held') return;
    try {
      await this.source.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.source.queueUrl,
          ReceiptHandle: this.message.ReceiptHandle,
          VisibilityTimeout: this.source.visibilityTimeout,
        }),
      );
    } catch (err) {
      if (this.state !== 'held') return;
      this.source.log('warn', 'sqs: could not extend message visibility', {
        queue: this.source.queueUrl,
        message_id: this.id,
        error: String(err),
      });
      // Nothing left to extend; the redelivery is deduplicated by the ingest log.
      if (isStaleReceipt(err)) this.stop('released');
    }
  }

  async delete(): Promise<void> {
    if (this.state !== 'held') return;
    this.stop('acked');
    let lastErr: unknown;
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        await this.source.sqs.send(
          new DeleteMessageCommand({
            QueueUrl: this.source.queueUrl,
            ReceiptHandle: this.message.ReceiptHandle,
          }),
        );
        return;
      } catch (err) {
        lastErr = err;
        if (isStaleReceipt(err)) {
          // Already redelivered elsewhere; that worker's ingest adds nothing and deletes it.
          this.source.log('warn', 'sqs: delete after commit failed, message will be redelivered', {
            queue: this.source.queueUrl,
            message_id: this.id,
            error: String(err),
          });
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
    throw new Error(`sqs: DeleteMessage ${this.id} failed: ${String(lastErr)}`);
  }

  async release(reason?: Error): Promise<void> {
    if (this.state !== 'held') return;
    this.stop('released');
    try {
      await this.source.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.source.queueUrl,
          ReceiptHandle: this.message.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    } catch (err) {
      // Best effort: the visibility timeout gives it back anyway.
      this.source.log('warn', 'sqs: could not release message', {
        queue: this.source.queueUrl,
        message_id: this.id,
        reason: reason?.message,
        error: String(err),
      });
    }
  }

  /** Stops extending without telling SQS: the message comes back after its timeout. */
  abandon(): void {
    if (this.state === 'held') this.stop('closed');
  }
}

export class SqsSource implements FdrSource {
  readonly kind = 'sqs';
  readonly queueUrl: string;
  readonly visibilityTimeout: number;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  readonly log: SourceLog;
  private readonly waitTimeSeconds: number;
  private readonly maxMessages: number;
  private readonly heartbeatMs: number;
  private readonly malformed: 'quarantine' | 'leave';
  private readonly defaultBucket: string | undefined;
  private readonly ownsSqs: boolean;
  private readonly ownsS3: boolean;
  private readonly held = new Set<InFlightMessage>();
  private closed = false;
  private readonly downloadDir: string;
  private readonly downloadAttempts: number;
  private readonly downloadRetryMs: number;
  private readonly downloadConcurrency: number;
  /** this source's folder under downloadDir (created on first use, removed on close) */
  private downloadRoot: string | undefined;
  private downloadSeq = 0;

  constructor(opts: SqsSourceOptions) {
    if (!opts.queueUrl) throw new Error('sqs: queueUrl is required');
    this.queueUrl = opts.queueUrl;
    this.visibilityTimeout = opts.visibilityTimeout ?? SQS_DEFAULTS.visibilityTimeout;
    this.waitTimeSeconds = opts.waitTimeSeconds ?? SQS_DEFAULTS.waitTimeSeconds;
    this.maxMessages = opts.maxMessages ?? SQS_DEFAULTS.maxMessages;
    this.malformed = opts.malformed ?? SQS_DEFAULTS.malformed;
    this.defaultBucket = opts.bucket;
    this.log = opts.log ?? defaultSourceLog;
    if (
      !Number.isInteger(this.visibilityTimeout) ||
      this.visibilityTimeout < 1 ||
      this.visibilityTimeout > 43200
    ) {
      throw new Error('sqs: visibilityTimeout must be an integer 1–43200 (seconds)');
    }
    if (!Number.isInteger(this.waitTimeSeconds) || this.waitTimeSeconds < 0 || this.waitTimeSeconds > 20) {
      throw new Error('sqs: waitTimeSeconds must be an integer 0–20');
    }
    if (!Number.isInteger(this.maxMessages) || this.maxMessages < 1 || this.maxMessages > 10) {
      throw new Error('sqs: maxMessages must be an integer 1–10');
    }
    this.downloadDir = opts.downloadDir ?? os.tmpdir();
    this.downloadAttempts = opts.downloadAttempts ?? SQS_DEFAULTS.downloadAttempts;
    this.downloadRetryMs = opts.downloadRetryMs ?? SQS_DEFAULTS.downloadRetryMs;
    this.downloadConcurrency = opts.downloadConcurrency ?? SQS_DEFAULTS.downloadConcurrency;
    if (!Number.isInteger(this.downloadAttempts) || this.downloadAttempts < 1) {
      throw new Error('sqs: downloadAttempts must be an integer ≥ 1');
    }
    if (!Number.isInteger(this.downloadConcurrency) || this.downloadConcurrency < 1) {
      throw new Error('sqs: downloadConcurrency must be an integer ≥ 1');
    }
    this.heartbeatMs = Math.round((opts.heartbeatSeconds ?? this.visibilityTimeout / 3) * 1000);

    // An AWS queue URL names its region, and the queue lives there whatever the profile says;
    // otherwise (emulators, custom domains) the SDK's chain decides: AWS_REGION, profile.
    const region = opts.region ?? regionFromQueueUrl(opts.queueUrl);
    const sqsConfig: SQSClientConfig = {};
    if (region) sqsConfig.region = region;
    if (opts.endpoint) sqsConfig.endpoint = opts.endpoint;
    if (opts.credentials) sqsConfig.credentials = opts.credentials;
    const s3Config: S3ClientConfig = { followRegionRedirects: true };
    const s3Region = opts.s3?.region ?? region;
    if (s3Region) s3Config.region = s3Region;
    const s3Endpoint = opts.s3?.endpoint ?? opts.endpoint;
    if (s3Endpoint) s3Config.endpoint = s3Endpoint;
    s3Config.forcePathStyle = opts.s3?.forcePathStyle ?? Boolean(s3Endpoint);
    if (opts.credentials) s3Config.credentials = opts.credentials as S3ClientConfig['credentials'];
    this.ownsSqs = !opts.sqsClient;
    this.ownsS3 = !opts.s3Client;
    this.sqs = opts.sqsClient ?? new SQSClient(sqsConfig);
    this.s3 = opts.s3Client ?? new S3Client(s3Config);
  }

  /** Name of the queue (last URL segment), for names and logs. */
  get queueName(): string {
    return this.queueUrl.replace(/\/+$/, '').split('/').pop() ?? this.queueUrl;
  }

  /** @internal */
  forget(m: InFlightMessage): void {
    this.held.delete(m);
  }

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    const received: InFlightMessage[] = [];
    /** the message being downloaded (one ahead of the pipeline), as its batch */
    let pending: Promise<SourceBatch | undefined> | undefined;
    const downloadNext = () => {
      if (received.length === 0 || signal.aborted || this.closed) return undefined;
      const p = this.toBatch(received.shift()!, signal);
      // Awaited later (after the pipeline took the batch before it); a failure meanwhile is
      // not an unhandled rejection.
      p.catch(() => undefined);
      return p;
    };
    let backoffMs = 1000;
    try {
      while (!signal.aborted && !this.closed) {
        if (pending) {
          const next = await pending;
          // The next message downloads while the pipeline reads this one: the disk holds the
          // group being committed plus one message, not a whole receive of up to 10 batches.
          pending = downloadNext();
          if (!next) continue;
          // The pipeline commits the messages of one receive in one group (up to its batch
          // limit) and deletes them after that commit; `moreReady` tells it another is on its
          // way. (If that one then cannot be had, the group is committed with the next
          // receive's batches, or when the long poll returns empty.)
          next.moreReady = pending !== undefined;
          yield next;
          continue;
        }
        if (received.length === 0) {
          let messages: Message[];
          try {
            const res = await this.sqs.send(
              new ReceiveMessageCommand({
                QueueUrl: this.queueUrl,
                MaxNumberOfMessages: this.maxMessages,
                WaitTimeSeconds: this.waitTimeSeconds,
                VisibilityTimeout: this.visibilityTimeout,
                MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
              }),
              { abortSignal: signal },
            );
            messages = res.Messages ?? [];
            backoffMs = 1000;
          } catch (err) {
            if (signal.aborted || this.closed) break;
            // Wrong queue URL, region, credentials or permissions: retrying will not help, and
            // a worker that quietly retries forever looks healthy while ingesting nothing.
            if (isConfigurationError(err)) {
              throw new Error(
                `sqs: cannot receive from ${this.queueUrl}: ${errorName(err)}: ${String((err as Error).message ?? err)}`,
                { cause: err },
              );
            }
            this.log('warn', 'sqs: ReceiveMessage failed, retrying', {
              queue: this.queueUrl,
              error: String(err),
              retry_in_ms: backoffMs,
            });
            await sleep(backoffMs, signal);
            backoffMs = Math.min(backoffMs * 2, 30_000);
            continue;
          }
          if (signal.aborted || this.closed) {
            // Received just as we were told to stop: hand them straight back.
            await Promise.all(messages.map((m) => this.hold(m).release()));
            break;
          }
          for (const m of messages) received.push(this.hold(m));
          continue;
        }
        pending = downloadNext();
      }
    } finally {
      // Received but never handed to the pipeline: let another worker have them now.
      const stopped = new Error('source stopped');
      const downloaded = await pending?.catch(() => undefined);
      await Promise.all([...received.map((m) => m.release(stopped)), downloaded?.nack?.(stopped)]);
    }
  }

  private hold(message: Message): InFlightMessage {
    const m = new InFlightMessage(this, message, this.heartbeatMs);
    this.held.add(m);
    return m;
  }

  private async toBatch(m: InFlightMessage, signal: AbortSignal): Promise<SourceBatch | undefined> {
    const body = m.message.Body ?? '';
    const parsed = parseFdrMessageBody(body, this.defaultBucket);
    if (parsed.kind === 'nothing') {
      this.log('info', `sqs: deleting message with nothing to ingest (${parsed.why})`, {
        queue: this.queueUrl,
        message_id: m.id,
      });
      // Not worth failing the ingest over: if the delete fails it simply comes back.
      await m
        .delete()
        .catch((err: unknown) =>
          this.log('warn', 'sqs: could not delete message', { message_id: m.id, error: String(err) }),
        );
      return undefined;
    }
    if (parsed.kind === 'malformed') {
      const fields = {
        queue: this.queueUrl,
        message_id: m.id,
        receive_count: Number(m.message.Attributes?.ApproximateReceiveCount ?? 0) || undefined,
        reason: parsed.reason,
      };
      if (this.malformed === 'leave') {
        this.log('error', 'sqs: malformed message left on the queue for its redrive policy', fields);
        m.abandon();
        return undefined;
      }
      this.log('error', 'sqs: malformed message, sending it to quarantine', fields);
      return this.batchOf(m, [this.malformedFile(m, parsed.reason, body)]);
    }
    const staged = await this.prefetch(m, parsed.objects, signal);
    if (!staged) return undefined;
    return this.batchOf(m, staged.files, staged.dir);
  }

  private batchOf(m: InFlightMessage, files: SourceFile[], dir?: string): SourceBatch {
    const cleanup = async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    };
    return {
      id: m.id,
      files,
      ack: async () => {
        try {
          await m.delete();
        } finally {
          await cleanup();
        }
      },
      nack: async (reason: Error) => {
        try {
          await m.release(reason);
        } finally {
          await cleanup();
        }
      },
      heartbeat: () => m.extend(),
    };
  }

  /** The file as the pipeline sees it: its local copy (or zero bytes when the object is gone). */
  private s3File(o: AnnouncedObject, local: string | undefined): SourceFile {
    const url = `s3://${o.bucket}/${o.key}`;
    const file: SourceFile = {
      // The MD5 pins the content: the same key rewritten with other bytes is another file.
      id: `${url}#${o.md5 ?? o.etag ?? o.size ?? ''}`,
      name: url,
      open: async () => (local ? createReadStream(local, { highWaterMark: 256 * 1024 }) : Readable.from([])),
    };
    if (o.size !== undefined) file.expectedSize = o.size;
    if (o.md5 !== undefined) file.expectedMd5 = o.md5;
    return file;
  }

  /**
   * Downloads every object of a message into its own folder. Undefined when one could not be
   * had: the message is then left for redelivery (see the module comment).
   */
  private async prefetch(
    m: InFlightMessage,
    objects: AnnouncedObject[],
    signal: AbortSignal,
  ): Promise<{ dir: string; files: SourceFile[] } | undefined> {
    this.downloadRoot ??= await mkdtemp(path.join(this.downloadDir, 'talon-sqs-'));
    const dir = path.join(this.downloadRoot, `m${++this.downloadSeq}`);
    await mkdir(dir, { recursive: true });
    const locals: (string | undefined)[] = new Array(objects.length);
    let failure: { object: AnnouncedObject; error: unknown } | undefined;
    let next = 0;
    const worker = async () => {
      while (!failure && !signal.aborted && next < objects.length) {
        const i = next++;
        const o = objects[i];
        const dest = path.join(dir, `${i}`);
        try {
          locals[i] = (await this.download(o, dest, signal)) === 'missing' ? undefined : dest;
          if (!locals[i]) {
            this.log('error', 's3: object announced by the message does not exist; it will be quarantined', {
              queue: this.queueUrl,
              message_id: m.id,
              object: `s3://${o.bucket}/${o.key}`,
              expected_size: o.size,
            });
          }
        } catch (error) {
          failure ??= { object: o, error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.downloadConcurrency, objects.length) }, worker));
    if (signal.aborted) {
      // Stopping: let another worker have the message now.
      await rm(dir, { recursive: true, force: true });
      await m.release(new Error('source stopped'));
      return undefined;
    }
    if (failure) {
      await rm(dir, { recursive: true, force: true });
      this.log(
        'error',
        'sqs: a file of the message could not be downloaded; leaving the message for redelivery',
        {
          queue: this.queueUrl,
          message_id: m.id,
          receive_count: Number(m.message.Attributes?.ApproximateReceiveCount ?? 0) || undefined,
          object: `s3://${failure.object.bucket}/${failure.object.key}`,
          error: `${errorName(failure.error)}: ${String((failure.error as Error)?.message ?? failure.error)}`,
          redelivery_in_s: this.visibilityTimeout,
        },
      );
      // Not deleted, not released at once: it comes back after the visibility timeout, which
      // spaces the retries; the queue's redrive policy bounds them.
      m.abandon();
      return undefined;
    }
    return { dir, files: objects.map((o, i) => this.s3File(o, locals[i])) };
  }

  /**
   * One object into `dest`, resuming a cut transfer with a Range GET pinned to the ETag.
   * 'missing' when S3 says NoSuchKey on every attempt; throws when attempts run out.
   */
  private async download(o: AnnouncedObject, dest: string, signal: AbortSignal): Promise<'ok' | 'missing'> {
    let etag: string | undefined;
    let total: number | undefined;
    let lastErr: unknown;
    let missing = 0;
    let delay = this.downloadRetryMs;
    for (let attempt = 1; attempt <= this.downloadAttempts; attempt++) {
      const have = etag ? await sizeOf(dest) : 0;
      if (etag && total !== undefined && have >= total) return 'ok';
      // Opened before the request, so the body is read as soon as it arrives: a cut
      // connection destroys the response stream, and bytes still buffered in it are lost.
      const fh = await open(dest, etag && have > 0 ? 'a' : 'w');
      try {
        try {
          const res = await this.s3.send(
            new GetObjectCommand({
              Bucket: o.bucket,
              Key: o.key,
              ...(etag && have > 0 ? { Range: `bytes=${have}-`, IfMatch: etag } : {}),
            }),
            { abortSignal: signal },
          );
          if (!etag || have === 0) {
            etag = res.ETag;
            total = res.ContentLength;
          }
          const body = toReadable(res.Body);
          if (!body) throw new Error(`GetObject returned no body stream`);
          // Chunk by chunk, each written before the next is read: what arrived before a cut
          // is on disk, and the next attempt asks only for the rest.
          for await (const chunk of body) await fh.write(chunk as Uint8Array);
        } finally {
          await fh.close();
        }
        const got = await sizeOf(dest);
        if (total !== undefined && got < total) throw new Error(`body ended after ${got} of ${total} bytes`);
        return 'ok';
      } catch (err) {
        if (signal.aborted) throw err;
        lastErr = err;
        const name = errorName(err);
        if (name === 'NoSuchKey') missing++;
        // The object changed between attempts: the bytes so far belong to the old one.
        if (name === 'PreconditionFailed' || name === 'InvalidRange') etag = undefined;
        if (attempt < this.downloadAttempts) {
          this.log('warn', 's3: GetObject failed, retrying', {
            queue: this.queueUrl,
            object: `s3://${o.bucket}/${o.key}`,
            attempt,
            error: `${name}: ${String((err as Error)?.message ?? err)}`,
            retry_in_ms: delay,
          });
          await sleep(delay, signal);
          delay = Math.min(delay * 2, 30_000);
        }
      }
    }
    if (missing === this.downloadAttempts) return 'missing';
    throw lastErr;
  }

  /** One JSON line without `event_simpleName`: the pipeline quarantines it, body and all. */
  private malformedFile(m: InFlightMessage, reason: string, body: string): SourceFile {
    const line =
      JSON.stringify({
        malformed_fdr_message: { queue: this.queueUrl, message_id: m.id, reason, body },
      }) + '\n';
    return {
      id: `sqs-message:${this.queueName}/${m.id}`,
      name: `sqs://${this.queueName}/${m.id}`,
      open: async () => Readable.from([Buffer.from(line)]),
    };
  }

  /**
   * Stops polling and heartbeats. Messages still held are not released: like a crashed
   * worker's, they return after their visibility timeout (call `nack` first to hurry them).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const m of [...this.held]) m.abandon();
    if (this.ownsSqs) this.sqs.destroy();
    if (this.ownsS3) this.s3.destroy();
    if (this.downloadRoot) await rm(this.downloadRoot, { recursive: true, force: true });
    this.downloadRoot = undefined;
  }
}
