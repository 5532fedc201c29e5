/**
 * Several queries run together under one trigger. Queries feed each other through tables
 * (new_logon_location's MERGE into logon_locations feeds its alert query through the
 * change feed), so a round runs them in definition order and repeats until none had work.
 *
 * Lanes: queries that name a `lane` (ioc_match and the retro-hunt) run concurrently with the
 * rest, on a second DuckDB connection and their own Lake handle on the same location, so the
 * IoC matching overlaps the other detections on a second core. Lanes meet only in tables they
 * all write (alerts), through Delta's optimistic concurrency: a batch that loses a commit race
 * it cannot be rebased over is replayed (idempotently, from its offsets).
 */
import { Lake } from '../lake/lake.js';
import { ConcurrentModificationError } from '../lake/table.js';
import type { BatchReport, QueryDefinition, QueryOptions } from './query.js';
import { StreamingQuery } from './runner.js';
import type { Trigger } from './trigger.js';
import { sleep } from '../util/sleep.js';

export interface PipelineRunOptions {
  signal?: AbortSignal;
  onBatch?: (r: BatchReport) => void;
  /** A query whose batch fails is retried after this delay (continuous/interval); default 1000 ms. */
  retryDelayMs?: number;
  onError?: (queryId: string, err: unknown) => void;
}

export class Pipeline {
  readonly queries: StreamingQuery[];

  constructor(
    readonly lake: Lake,
    defs: QueryDefinition[],
    private readonly opts: QueryOptions = {},
  ) {
    const ids = new Set<string>();
    for (const d of defs) {
      if (ids.has(d.id)) throw new Error(`duplicate query id ${d.id}`);
      ids.add(d.id);
    }
    this.queries = defs.map((d) => new StreamingQuery(lake, d, opts));
  }

  private lanes?: Promise<StreamingQuery[][]>;

  /** The queries by lane, the unnamed lane first; other lanes on their own connection. */
  private laneQueries(): Promise<StreamingQuery[][]> {
    this.lanes ??= (async () => {
      const byLane = new Map<string, StreamingQuery[]>([['', []]]);
      for (const q of this.queries) {
        const lane = q.def.lane ?? '';
        if (!byLane.has(lane)) byLane.set(lane, []);
        byLane.get(lane)!.push(q);
      }
      const out: StreamingQuery[][] = [];
      // The first lane with queries (the unnamed one when it has any) keeps the pipeline's
      // own lake and connection; only further lanes get their own.
      for (const qs of byLane.values()) {
        if (qs.length === 0) continue;
        if (out.length === 0) {
          out.push(qs);
          continue;
        }
        const db = await this.lake.db.fork();
        const laneLake = await Lake.open(this.lake.location, { db, store: this.lake.store });
        out.push(qs.map((q) => new StreamingQuery(laneLake, q.def, this.opts)));
      }
      return out;
    })();
    return this.lanes;
  }

  /**
   * One batch of `q`. A commit race with another lane (or process) that cannot be rebased
   * leaves the batch planned but uncommitted: running it again replays it from its offsets.
   */
  private async batchOf(q: StreamingQuery): Promise<BatchReport | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await q.runBatch();
      } catch (err) {
        if (!(err instanceof ConcurrentModificationError) || attempt >= CONFLICT_ATTEMPTS) throw err;
      }
    }
  }

  /** Every query until all are caught up with the data present now. */
  async runAvailableNow(opts: PipelineRunOptions = {}): Promise<BatchReport[]> {
    const lanes = await this.laneQueries();
    const out: BatchReport[] = [];
    for (;;) {
      const progressed = await Promise.all(lanes.map((qs) => this.drain(qs, out, opts)));
      if (!progressed.some(Boolean) || opts.signal?.aborted) return out;
    }
  }

  /** One lane until it is caught up; true when any of its queries had work. */
  private async drain(qs: StreamingQuery[], out: BatchReport[], opts: PipelineRunOptions): Promise<boolean> {
    let any = false;
    for (;;) {
      let progressed = false;
      for (const q of qs) {
        if (opts.signal?.aborted) return any;
        for (;;) {
          const r = await this.batchOf(q);
          if (!r) break;
          progressed = any = true;
          out.push(r);
          opts.onBatch?.(r);
          if (opts.signal?.aborted) return any;
        }
      }
      if (!progressed) return any;
    }
  }

  async run(trigger: Trigger, opts: PipelineRunOptions = {}): Promise<BatchReport[]> {
    if (trigger.kind === 'available-now') return this.runAvailableNow(opts);
    const all: BatchReport[] = [];
    const keep = (r: BatchReport) => {
      // Long-running triggers would grow without bound; callers get each report via onBatch.
      if (all.length < 10_000) all.push(r);
      opts.onBatch?.(r);
    };
    const lanes = await this.laneQueries();
    await Promise.all(lanes.map((qs) => this.runLane(qs, trigger, opts, keep)));
    return all;
  }

  private async runLane(
    qs: StreamingQuery[],
    trigger: Exclude<Trigger, { kind: 'available-now' }>,
    opts: PipelineRunOptions,
    keep: (r: BatchReport) => void,
  ): Promise<void> {
    const failedUntil = new Map<string, number>();
    while (!opts.signal?.aborted) {
      const started = Date.now();
      let progressed = false;
      for (const q of qs) {
        if (opts.signal?.aborted) break;
        if ((failedUntil.get(q.id) ?? 0) > Date.now()) continue;
        try {
          if (trigger.kind === 'continuous' && !(await q.hasNewData())) continue;
          const r = await this.batchOf(q);
          if (r) {
            progressed = true;
            keep(r);
          }
        } catch (err) {
          // One failing query must not stop the others; it is retried after a pause.
          opts.onError?.(q.id, err);
          failedUntil.set(q.id, Date.now() + (opts.retryDelayMs ?? 1000));
        }
      }
      if (progressed && trigger.kind === 'continuous') continue;
      const wait =
        trigger.kind === 'continuous'
          ? trigger.pollMs
          : progressed
            ? 0
            : Math.max(0, trigger.everyMs - (Date.now() - started));
      if (wait > 0) await sleep(wait, opts.signal);
    }
  }
}

/** Replays of a batch that keeps losing commit races before the error is given up. */
const CONFLICT_ATTEMPTS = 5;
