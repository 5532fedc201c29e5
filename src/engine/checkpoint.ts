/**
 * A query's checkpoint, Spark Structured Streaming style, kept in the lake's object store so
 * it lives wherever the tables live (local folder or S3):
 *
 *   _talon/checkpoints/<query>/offsets/<batch id>.json   written BEFORE the batch runs
 *   _talon/checkpoints/<query>/commits/<batch id>.json   written AFTER every sink is done
 *
 * Both are put-if-absent: a batch's plan is decided exactly once, and two processes running
 * the same query cannot both claim a batch id. A batch with offsets but no commit crashed
 * mid-way; on restart it is replayed with the same id and the same offsets, and its sinks
 * (Delta txn keyed by query and batch id) skip whatever already committed.
 *
 * Only the last batches are kept (StreamingQuery's `retainBatches`, default 100, as Spark's
 * minBatchesToRetain): a long-running query commits a batch every few seconds, and two files
 * per batch forever would grow the folder (and the listing at start) without bound. Nothing
 * reads further back than the latest offsets and the commit before them.
 */
import type { ObjectStore } from '../lake/store.js';

/** Versions of one source table a batch reads: changes in (start, end]; -1 = before version 0. */
export interface SourceRange {
  start: number;
  end: number;
}

export interface BatchOffsets {
  queryId: string;
  batchId: number;
  /** epoch ms when the batch was planned; replays use it as "now" for determinism. */
  plannedAt: number;
  /** stream sources by table key (lower-case name) */
  sources: Record<string, SourceRange>;
  /** rows of each source's range, counted when planning (bounding the batch) */
  rows?: Record<string, number>;
  /** tables read as a snapshot (stream-static joins, state): the version read, -1 = absent */
  snapshots: Record<string, number>;
}

export interface BatchCommit {
  queryId: string;
  batchId: number;
  committedAt: number;
  /** per-batch counters: rows read per source, rows per sink, expectation failures … */
  metrics: Record<string, number>;
  /** operator state carried to the next batch (e.g. the event-time watermark) */
  state: Record<string, unknown>;
}

const PAD = 20;

function batchKey(prefix: string, kind: 'offsets' | 'commits', batchId: number): string {
  return `${prefix}/${kind}/${String(batchId).padStart(PAD, '0')}.json`;
}

export function checkpointPrefix(queryId: string): string {
  if (!/^[A-Za-z0-9_.:-]+$/.test(queryId)) throw new Error(`invalid query id ${JSON.stringify(queryId)}`);
  return `_talon/checkpoints/${queryId.replace(/:/g, '.')}`;
}

export class CheckpointLog {
  readonly prefix: string;

  constructor(
    readonly store: ObjectStore,
    readonly queryId: string,
  ) {
    this.prefix = checkpointPrefix(queryId);
  }

  private async latestId(kind: 'offsets' | 'commits'): Promise<number | undefined> {
    let max: number | undefined;
    for await (const o of this.store.list(`${this.prefix}/${kind}/`)) {
      const m = /\/(\d+)\.json$/.exec(o.key);
      if (m) {
        const id = Number(m[1]);
        if (max === undefined || id > max) max = id;
      }
    }
    return max;
  }

  async offsets(batchId: number): Promise<BatchOffsets | undefined> {
    const body = await this.store.get(batchKey(this.prefix, 'offsets', batchId));
    return body ? (JSON.parse(body.toString('utf8')) as BatchOffsets) : undefined;
  }

  async commit(batchId: number): Promise<BatchCommit | undefined> {
    const body = await this.store.get(batchKey(this.prefix, 'commits', batchId));
    return body ? (JSON.parse(body.toString('utf8')) as BatchCommit) : undefined;
  }

  /** The latest planned batch and the latest committed one. */
  async latest(): Promise<{ offsets?: BatchOffsets; commit?: BatchCommit }> {
    const [o, c] = await Promise.all([this.latestId('offsets'), this.latestId('commits')]);
    return {
      offsets: o === undefined ? undefined : await this.offsets(o),
      commit: c === undefined ? undefined : await this.commit(c),
    };
  }

  /** Records the plan of a batch; false when that batch id was already planned (by anyone). */
  async writeOffsets(o: BatchOffsets): Promise<boolean> {
    return this.store.putIfAbsent(batchKey(this.prefix, 'offsets', o.batchId), JSON.stringify(o, null, 1));
  }

  async writeCommit(c: BatchCommit): Promise<boolean> {
    return this.store.putIfAbsent(batchKey(this.prefix, 'commits', c.batchId), JSON.stringify(c, null, 1));
  }

  /** Every commit, oldest first (for metrics and `pipeline show`). */
  async commits(limit = Infinity): Promise<BatchCommit[]> {
    const keys: string[] = [];
    for await (const o of this.store.list(`${this.prefix}/commits/`)) keys.push(o.key);
    const out: BatchCommit[] = [];
    for (const k of keys.slice(Math.max(0, keys.length - limit))) {
      const body = await this.store.get(k);
      if (body) out.push(JSON.parse(body.toString('utf8')) as BatchCommit);
    }
    return out;
  }

  /** Deletes the offsets and commit marker of one batch (missing files are fine). */
  async forget(batchId: number): Promise<void> {
    if (batchId < 0) return;
    await this.store.delete([
      batchKey(this.prefix, 'offsets', batchId),
      batchKey(this.prefix, 'commits', batchId),
    ]);
  }

  /** Deletes the offsets and commit markers of every batch before `batchId`; returns how many files. */
  async purgeBefore(batchId: number): Promise<number> {
    const keys: string[] = [];
    for (const kind of ['offsets', 'commits'] as const) {
      for await (const o of this.store.list(`${this.prefix}/${kind}/`)) {
        const m = /\/(\d+)\.json$/.exec(o.key);
        if (m && Number(m[1]) < batchId) keys.push(o.key);
      }
    }
    if (keys.length) await this.store.delete(keys);
    return keys.length;
  }

  /** Forgets the query's progress (it reprocesses everything next time). */
  async reset(): Promise<void> {
    const keys: string[] = [];
    for await (const o of this.store.list(`${this.prefix}/`)) keys.push(o.key);
    if (keys.length) await this.store.delete(keys);
  }
}
