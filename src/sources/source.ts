/**
 * The contract every ingest source satisfies (files and folders, folder watch, stdin,
 * FDR S3+SQS, later Kafka/HTTP).
 *
 * A source yields `SourceBatch`es — a unit the pipeline ingests and then acknowledges.
 * Acknowledge after commit: `ack()` is called only once every event of the batch is
 * durably committed to the lake (and quarantine), so an SQS message is deleted, a Kafka
 * offset committed, a watched file marked done only then. A crash before `ack()` means
 * the batch is delivered again; the pipeline's exactly-once bookkeeping (keyed by
 * `SourceFile.id`) makes that redelivery add nothing twice.
 */
import type { Readable } from 'node:stream';

export interface SourceFile {
  /**
   * Stable identity of the file's content across deliveries and restarts — the key of
   * exactly-once bookkeeping. E.g. `s3://bucket/key#<md5>` or `file:<abs path>#<size>-<mtimeMs>`.
   */
  id: string;
  /** Where it came from, for quarantine rows and messages (path or s3:// URL). */
  name: string;
  /** Bytes as delivered (gzip or plain NDJSON; the decoder sniffs the gzip magic). */
  open(): Promise<Readable>;
  /** Expected size in bytes and MD5 hex, when the delivery states them (FDR SQS manifests). */
  expectedSize?: number;
  expectedMd5?: string;
  /**
   * Called when `open()` or reading the stream failed (the bytes could not be had, as opposed
   * to bad bytes). The answer decides the file's fate in this batch:
   * - 'quarantine' (also the default without this hook): one `read_error` quarantine row
   *   (good lines before the error are kept); the file counts as ingested.
   * - 'skip': nothing of the file is written or logged; the rest of the batch is committed and
   *   acknowledged as usual. The source owns what happens next — deliver the file again later
   *   (a transient error) or drop it (it no longer exists).
   */
  readFailed?(err: Error): Promise<'quarantine' | 'skip'>;
}

export interface SourceBatch {
  /** Identity of the delivery (SQS message id, manifest name, path). */
  id: string;
  files: SourceFile[];
  /** Called after the batch is committed: delete the message / remember the file. */
  ack(): Promise<void>;
  /** Called when the batch failed and should be redelivered later (optional). */
  nack?(reason: Error): Promise<void>;
  /** Called periodically while the batch is in work (extend SQS visibility). */
  heartbeat?(): Promise<void>;
  /**
   * True when the source already holds the next batch and yields it at once (the rest of one
   * SQS receive, the other files one folder scan found ready). The pipeline then keeps its
   * commit group open for it — everything ready goes into one commit, up to the ingest batch
   * limit — and commits when a batch comes without it. Absent: commit after this batch.
   */
  moreReady?: boolean;
}

export interface FdrSource {
  readonly kind: string;
  /** Batches until the source is exhausted (one-shot sources) or `signal` aborts (watchers). */
  batches(signal: AbortSignal): AsyncIterable<SourceBatch>;
  close?(): Promise<void>;
}
