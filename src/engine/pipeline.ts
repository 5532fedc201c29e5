/**
 * Several queries run together under one trigger. Queries feed each other through tables
 * (new_logon_location's MERGE into logon_locations feeds its alert query through the
 * change feed), so a round runs them in definition order and repeats until none had work.
 */
import type { Lake } from '../lake/lake.js';
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
    opts: QueryOptions = {},
  ) {
    const ids = new Set<string>();
    for (const d of defs) {
      if (ids.has(d.id)) throw new Error(`duplicate query id ${d.id}`);
      ids.add(d.id);
    }
    this.queries = defs.map((d) => new StreamingQuery(lake, d, opts));
  }

  /** Every query until all are caught up with the data present now. */
  async runAvailableNow(opts: PipelineRunOptions = {}): Promise<BatchReport[]> {
    const out: BatchReport[] = [];
    for (;;) {
      let progressed = false;
      for (const q of this.queries) {
        if (opts.signal?.aborted) return out;
        for (;;) {
          const r = await q.runBatch();
          if (!r) break;
          progressed = true;
          out.push(r);
          opts.onBatch?.(r);
          if (opts.signal?.aborted) return out;
        }
      }
      if (!progressed) return out;
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
    const failedUntil = new Map<string, number>();
    while (!opts.signal?.aborted) {
      const started = Date.now();
      let progressed = false;
      for (const q of this.queries) {
        if (opts.signal?.aborted) break;
        if ((failedUntil.get(q.id) ?? 0) > Date.now()) continue;
        try {
          if (trigger.kind === 'continuous' && !(await q.hasNewData())) continue;
          const r = await q.runBatch();
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
    return all;
  }
}
