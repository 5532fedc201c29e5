/**
 * Runs a query's micro-batches: plan (offsets log) → read → transform → sinks → commit log.
 *
 * Exactly-once in tables: the offsets of batch N are written before anything else, so a
 * crash leaves "offsets N without commit N" and the restart replays N with exactly those
 * version ranges and the same snapshot versions; every sink write carries the Delta txn
 * (`<query>:<sink>`, N), which the lake skips when N already committed.
 */
import type { Lake } from '../lake/lake.js';
import type { DeltaTable } from '../lake/table.js';
import { ident } from '../sql/duckdb.js';
import { MicroBatch, readChanges, tableKey, writeTable } from './batch.js';
import type { BatchCommit, BatchOffsets, SourceRange } from './checkpoint.js';
import { CheckpointLog } from './checkpoint.js';
import { crashPoint } from './crash.js';
import type { BatchReport, QueryDefinition, QueryOptions } from './query.js';

const LOG_PAD = 20;

/** Batches whose checkpoint files are kept by default (QueryOptions.retainBatches). */
export const DEFAULT_RETAIN_BATCHES = 100;
/** Small files of a written table that trigger its compaction (QueryOptions.autoCompactFiles). */
export const DEFAULT_AUTO_COMPACT_FILES = 50;
/** "Small" for auto-compaction, and the size of the files it writes (DeltaTable.optimize's default). */
const AUTO_COMPACT_SMALL_BYTES = 128 * 1024 * 1024;

export class StreamingQuery {
  readonly checkpoint: CheckpointLog;
  private lastOffsets: BatchOffsets | undefined;
  private lastCommit: BatchCommit | undefined;
  private loaded = false;
  private readonly maxVersions: number;
  private readonly maxRows: number;
  private readonly retain: number;
  private readonly autoCompactFiles: number;

  constructor(
    readonly lake: Lake,
    readonly def: QueryDefinition,
    readonly opts: QueryOptions = {},
  ) {
    this.checkpoint = new CheckpointLog(lake.store, def.id);
    this.maxVersions = opts.maxVersionsPerBatch ?? 1000;
    this.maxRows = opts.maxRowsPerBatch ?? 2_000_000;
    this.retain = Math.max(2, opts.retainBatches ?? DEFAULT_RETAIN_BATCHES);
    this.autoCompactFiles = opts.autoCompactFiles ?? DEFAULT_AUTO_COMPACT_FILES;
  }

  get id(): string {
    return this.def.id;
  }

  private async loadCheckpoint(): Promise<void> {
    if (this.loaded) return;
    const { offsets, commit } = await this.checkpoint.latest();
    this.lastOffsets = offsets;
    this.lastCommit = commit;
    this.loaded = true;
    // A checkpoint written before retention (or with a longer one) is trimmed once here; from
    // then on each commit drops the one batch that falls out of the window.
    if (commit)
      await this.trimCheckpoint(() => this.checkpoint.purgeBefore(commit.batchId - this.retain + 1));
  }

  /**
   * Compacts the tables among `tables` that hold `autoCompactFiles` files smaller than
   * OPTIMIZE's target, after the batch committed (the compaction is dataChange=false: no
   * reader sees new rows). It never fails the batch: a compaction that loses a commit race
   * with another writer is tried again after a later batch.
   */
  private async autoCompact(tables: string[]): Promise<void> {
    if (!(this.autoCompactFiles > 0)) return;
    for (const key of new Set(tables.map((t) => tableKey(t)))) {
      try {
        const table = await this.lake.table(key);
        if (!table) continue;
        const snap = await table.snapshot();
        if (snap.files.filter((f) => f.size < AUTO_COMPACT_SMALL_BYTES).length < this.autoCompactFiles)
          continue;
        const res = await table.optimize({ targetFileSize: AUTO_COMPACT_SMALL_BYTES });
        this.opts.log?.(
          `${this.id}: compacted ${res.metrics.numRemovedFiles ?? 0} files of ${key} into ${res.metrics.numAddedFiles ?? 0}`,
        );
      } catch (err) {
        this.opts.log?.(
          `${this.id}: could not compact ${key}, left for a later batch: ${(err as Error).message}`,
        );
      }
    }
  }

  /** Checkpoint clean-up never fails a batch: what is left is deleted by a later one. */
  private async trimCheckpoint(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.opts.log?.(`${this.id}: could not delete old checkpoint files: ${(err as Error).message}`);
    }
  }

  /** Where each source stands: the end version of the last planned batch (-1 = nothing read). */
  private committedEnd(key: string): number {
    return this.lastOffsets?.sources[key]?.end ?? -1;
  }

  /**
   * Cheap check for new data: is there a log file for the version after the last one read,
   * in any source? One HEAD (local stat or S3 HEAD) per source, no log replay.
   */
  async hasNewData(): Promise<boolean> {
    await this.loadCheckpoint();
    if (this.pendingReplay()) return true;
    if (await this.waitingForTable()) return false;
    for (const src of this.def.sources) {
      const key = tableKey(src.table);
      const next = this.committedEnd(key) + 1;
      const logKey = `${key}/_delta_log/${String(next).padStart(LOG_PAD, '0')}.json`;
      if (await this.lake.store.head(logKey)) return true;
    }
    return false;
  }

  private pendingReplay(): boolean {
    return !!this.lastOffsets && (this.lastCommit?.batchId ?? -1) < this.lastOffsets.batchId;
  }

  private async latestVersion(key: string): Promise<{ table?: DeltaTable; version: number }> {
    const table = await this.lake.table(key);
    if (!table) return { version: -1 };
    return { table, version: await table.latestVersion() };
  }

  /**
   * The first required table (source or snapshot) that does not exist yet, if any. While one
   * is missing no batch is planned: the present sources' rows stay unread and are read, from
   * their first version, together with the missing table's once it appears.
   */
  private async waitingForTable(): Promise<string | undefined> {
    const required = [
      ...this.def.sources.filter((s) => s.required).map((s) => s.table),
      ...(this.def.requiredSnapshots ?? []),
    ];
    for (const name of required) {
      if (!(await this.lake.table(tableKey(name)))) return name;
    }
    return undefined;
  }

  /** Plans the next batch; undefined when no source has new versions. */
  private async plan(): Promise<BatchOffsets | undefined> {
    if (await this.waitingForTable()) return undefined;
    const sources: Record<string, SourceRange> = {};
    const tables = new Map<string, DeltaTable>();
    let any = false;
    for (const src of this.def.sources) {
      const key = tableKey(src.table);
      const start = this.committedEnd(key);
      const { table, version } = await this.latestVersion(key);
      const end = Math.max(start, Math.min(version, start + this.maxVersions));
      sources[key] = { start, end };
      if (table) tables.set(key, table);
      if (end > start) any = true;
    }
    if (!any) return undefined;
    const rows = await this.boundRows(sources, tables);
    const snapshots: Record<string, number> = {};
    for (const name of this.def.snapshots ?? []) {
      snapshots[tableKey(name)] = (await this.latestVersion(tableKey(name))).version;
    }
    return {
      queryId: this.def.id,
      batchId: (this.lastOffsets?.batchId ?? -1) + 1,
      plannedAt: Date.now(),
      sources,
      rows,
      snapshots,
    };
  }

  /**
   * Halves the widest source range until the batch holds at most maxRows rows (≥ 1 version
   * each). Returns the rows per source of the final ranges.
   */
  private async boundRows(
    sources: Record<string, SourceRange>,
    tables: Map<string, DeltaTable>,
  ): Promise<Record<string, number>> {
    for (;;) {
      let total = 0;
      let widest: string | undefined;
      const rows: Record<string, number> = {};
      for (const [key, r] of Object.entries(sources)) {
        const t = tables.get(key);
        if (r.end <= r.start || !t) {
          rows[key] = 0;
          continue;
        }
        rows[key] = await this.countRows(t, r.start, r.end);
        total += rows[key];
        if (
          r.end - r.start > 1 &&
          (!widest || r.end - r.start > sources[widest].end - sources[widest].start)
        ) {
          widest = key;
        }
      }
      if (total <= this.maxRows || !widest) return rows;
      const r = sources[widest];
      r.end = r.start + Math.max(1, Math.floor((r.end - r.start) / 2));
    }
  }

  /**
   * Rows of versions (start, end] of a table, from the `add` actions' statistics in the log's
   * commit files (small JSON reads, no data file opened); falls back to counting the change
   * feed when a commit has removes, change files or adds without statistics.
   */
  private async countRows(table: DeltaTable, start: number, end: number): Promise<number> {
    let total = 0;
    const counted = await (async () => {
      for (let v = start + 1; v <= end; v++) {
        const body = await this.lake.store.get(
          `${table.key}/_delta_log/${String(v).padStart(LOG_PAD, '0')}.json`,
        );
        if (!body) return false;
        for (const line of body.toString('utf8').split('\n')) {
          if (!line) continue;
          const a = JSON.parse(line) as {
            add?: { dataChange?: boolean; stats?: string };
            remove?: { dataChange?: boolean };
            cdc?: unknown;
          };
          if (a.cdc || a.remove?.dataChange) return false;
          if (a.add?.dataChange) {
            const n = a.add.stats
              ? (JSON.parse(a.add.stats) as { numRecords?: number }).numRecords
              : undefined;
            if (typeof n !== 'number') return false;
            total += n;
          }
        }
      }
      return true;
    })();
    if (counted) return total;
    const n = await this.lake.db.all<{ n: bigint }>(
      `SELECT count(*) AS n FROM ${await readChanges(table, start, end)}`,
    );
    return Number(n[0].n);
  }

  /**
   * Runs one batch: the uncommitted one when a previous run crashed, else the next one.
   * Returns undefined when there was nothing new.
   */
  async runBatch(): Promise<BatchReport | undefined> {
    await this.loadCheckpoint();
    const t0 = Date.now();
    let offsets: BatchOffsets;
    let replayed = false;
    if (this.pendingReplay()) {
      offsets = this.lastOffsets!;
      replayed = true;
      this.opts.log?.(`${this.id}: replaying uncommitted batch ${offsets.batchId}`);
    } else {
      const planned = await this.plan();
      if (!planned) return undefined;
      if (!(await this.checkpoint.writeOffsets(planned))) {
        throw new Error(
          `${this.id}: batch ${planned.batchId} was planned by another process (is the query running twice?)`,
        );
      }
      offsets = planned;
      this.lastOffsets = planned;
    }
    crashPoint('after-offsets', this.id, offsets.batchId);

    const prevState = (await this.previousCommit(offsets.batchId))?.state ?? {};
    const batch = new MicroBatch(this.lake, this.def, offsets, prevState, replayed);
    // Where a batch's time goes (profiling; in the commit log with the other counters).
    let mark = Date.now();
    const phase = (name: string) => {
      const now = Date.now();
      batch.metrics[`ms.${name}`] = now - mark;
      mark = now;
    };
    batch.metrics['ms.plan'] = mark - t0;
    try {
      await batch.load();
      phase('load');
      const outputs = await this.def.transform(batch);
      phase('transform');
      crashPoint('after-transform', this.id, offsets.batchId);
      const staged = new Map<string, string>();
      for (const sink of this.def.sinks) {
        const rel = outputs[sink.name];
        if (!rel) continue;
        const name = await batch.temp(`sink_${sink.name}`, rel);
        const n = await batch.count(name);
        batch.metrics[`sink.${sink.name}.rows`] = n;
        if (n > 0) staged.set(sink.name, name);
      }
      // Withdrawals first: a superseded row and its replacement may share a key, and a merge
      // sink that ignores matches would keep the old row.
      for (const [table, { predicates, how }] of batch.pendingRetractions()) {
        const target = await this.lake.table(table);
        if (!target) continue;
        const snap = await target.snapshot();
        if (snap.schema.fields.length === 0) continue;
        const sameTable = this.def.sinks
          .filter((sk) => tableKey(sk.table) === table && staged.has(sk.name))
          .map((sk) => `SELECT * FROM ${staged.get(sk.name)}`);
        const fresh = sameTable.length ? sameTable.join(' UNION ALL BY NAME ') : undefined;
        const on = how.on.map((c) => ident(c));
        const keyMatch = (a: string, b: string) => on.map((c) => `${a}.${c} = ${b}.${c}`).join(' AND ');
        const withdrawn = await batch.temp(
          `withdrawn_${table}`,
          `SELECT * FROM ${await snap.scan()} AS w WHERE ${predicates.join(' OR ')}`,
        );
        const setCols = Object.entries(how.set)
          .map(([c, e]) => `${e} AS ${ident(c)}`)
          .join(', ');
        const rows = fresh
          ? `SELECT n.* FROM (${fresh}) n WHERE EXISTS (SELECT 1 FROM ${withdrawn} w WHERE ${keyMatch('w', 'n')})
             UNION ALL BY NAME
             SELECT w.* REPLACE (${setCols}) FROM ${withdrawn} w
             WHERE NOT EXISTS (SELECT 1 FROM (${fresh}) n WHERE ${keyMatch('w', 'n')})`
          : `SELECT w.* REPLACE (${setCols}) FROM ${withdrawn} w`;
        const n = await batch.count(withdrawn);
        batch.metrics[`retract.${table}.rows`] = n;
        if (n === 0) continue;
        await target.merge(
          rows,
          { on: how.on, whenMatched: 'update', whenNotMatched: 'ignore' },
          {
            txn: { appId: `${this.id}:retract:${table}`, version: offsets.batchId },
            commitInfo: { talonQuery: this.id, talonBatch: offsets.batchId },
          },
        );
      }
      let written = 0;
      for (const sink of this.def.sinks) {
        const stagedRel = staged.get(sink.name);
        if (!stagedRel) continue;
        const txn = { appId: `${this.id}:${sink.name}`, version: offsets.batchId };
        const targetFilter =
          sink.mode === 'merge' && sink.mergeTargetFilter
            ? await sink.mergeTargetFilter(batch.db, stagedRel)
            : undefined;
        const how =
          sink.mode === 'merge' && sink.merge
            ? { mode: 'merge' as const, merge: targetFilter ? { ...sink.merge, targetFilter } : sink.merge }
            : { mode: 'append' as const };
        const res = await writeTable(
          this.lake,
          sink.table,
          `SELECT * FROM ${stagedRel}`,
          how,
          sink.create ?? {},
          txn,
        );
        if (res.skipped) batch.metrics[`sink.${sink.name}.skipped`] = 1;
        written++;
        if (written === 1) crashPoint('mid-sinks', this.id, offsets.batchId);
      }
      phase('sinks');
      crashPoint('after-sink', this.id, offsets.batchId);
      const commit: BatchCommit = {
        queryId: this.id,
        batchId: offsets.batchId,
        committedAt: Date.now(),
        metrics: batch.metrics,
        state: batch.state,
      };
      if (!(await this.checkpoint.writeCommit(commit))) {
        throw new Error(`${this.id}: batch ${offsets.batchId} was committed by another process`);
      }
      this.lastCommit = commit;
      await this.trimCheckpoint(() => this.checkpoint.forget(offsets.batchId - this.retain));
      await this.autoCompact([
        ...this.def.sinks.filter((sk) => staged.has(sk.name)).map((sk) => sk.table),
        ...(this.def.stateTables ?? []),
      ]);
      return {
        queryId: this.id,
        batchId: offsets.batchId,
        replayed,
        sources: offsets.sources,
        metrics: batch.metrics,
        ms: Date.now() - t0,
      };
    } finally {
      await batch.cleanup();
    }
  }

  private async previousCommit(batchId: number): Promise<BatchCommit | undefined> {
    if (this.lastCommit && this.lastCommit.batchId === batchId - 1) return this.lastCommit;
    if (batchId === 0) return undefined;
    return this.checkpoint.commit(batchId - 1);
  }

  /** Batches until every source is caught up with its latest version as of now. */
  async runAvailableNow(): Promise<BatchReport[]> {
    const out: BatchReport[] = [];
    for (;;) {
      const r = await this.runBatch();
      if (!r) return out;
      out.push(r);
    }
  }
}
