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
}

export interface FdrSource {
  readonly kind: string;
  /** Batches until the source is exhausted (one-shot sources) or `signal` aborts (watchers). */
  batches(signal: AbortSignal): AsyncIterable<SourceBatch>;
  close?(): Promise<void>;
}
