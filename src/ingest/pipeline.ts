/**
 * FDR ingest: source → decode → normalize → enrich → lake, exactly once per source file.
 *
 * Per `SourceBatch` (an SQS message, an FDR batch folder, a file):
 *  1. Files whose id is already in `ingest_log` are skipped (fast path for redelivery).
 *  2. The remaining files are decoded and staged, one staging file per table, in groups of
 *     about `batch_events` events (a group ends at a file boundary, never inside a file).
 *  3. Each group is committed: one Delta commit per table, then `quarantine`, then
 *     `ingest_log` — every commit carrying one Delta `txn` action per source file it writes
 *     rows of, `{appId: 'ingest:' + sha1(<file id>), version: 1}`. Before writing a table, the
 *     files whose txn it already holds are left out of the write (staged lines carry their
 *     file's index), so a replay after a crash between two table commits adds nothing twice —
 *     however the replay groups the files. `ingest_log` is written last and makes the next
 *     replay skip the files without reading them.
 *  4. `ack()` — only after every group holding a file of the batch is committed.
 *
 * Groups: the files not yet in `ingest_log`, in delivery order, cut after the file that
 * reaches `batch_events`. A group spans batches while the source says more are ready
 * (`SourceBatch.moreReady`: one SQS receive, one folder scan) — or always, for one-shot
 * sources — so a busy stream makes few, large commits. A file id already staged in an
 * uncommitted group (the same file announced twice) is not staged again.
 *
 * A file whose bytes cannot be had (`open()` or a read fails) is quarantined as `read_error`,
 * or, when its source answers 'skip' (`SourceFile.readFailed`), left out of the group entirely
 * — the other files are committed — for the source to deliver again or drop.
 *
 * A file whose MD5 or size differs from what the producer stated (FDR manifest) is not the
 * file that was sent: none of its events are written; one quarantine row
 * (`md5_mismatch` / `size_mismatch`) records it, and it counts as ingested (a redelivery of the
 * same file id is skipped) — re-ingest it under a new identity once a good copy exists.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Enricher } from '../enrich/index.js';
import type { Lake } from '../lake/lake.js';
import type { DeltaTable, WriteOptions } from '../lake/table.js';
import { log as rootLog, Progress, type Logger } from '../log.js';
import type { FdrSource, SourceBatch, SourceFile } from '../sources/source.js';
import { ident, literal } from '../sql/duckdb.js';
import { decodeStream } from '../decode/decoder.js';
import { EventStager, SchemaRegistry, type TableStage } from '../normalize/stager.js';
import { newerRowCondition, secondaryKey, tableRelation } from '../normalize/sql.js';

export interface IngestOptions {
  /** Lines longer than this go to quarantine; default 1 MiB (config ingest.max_line_bytes). */
  maxLineBytes?: number;
  /** Raw text kept per quarantine row; default 64 KiB (config ingest.quarantine_raw_bytes). */
  quarantineRawBytes?: number;
  /** Events per commit group; default 250,000 (config ingest.batch_events). */
  batchEvents?: number;
  /** Enrichment (GeoIP/ASN/PSL); null turns it off. Default: `Enricher.open()` (bundled DBs). */
  enricher?: Enricher | null;
  /**
   * Parquet codec of the tables ingest creates (Delta table property
   * `delta.parquet.compression.codec`, read by the lake writer); default 'snappy' (config
   * ingest.parquet_codec). Snappy is Spark's and DuckDB's default and costs about a third less
   * CPU to write than zstd, at files ~1.5× larger. Tables that exist keep their codec.
   */
  parquetCodec?: 'snappy' | 'zstd' | 'gzip' | 'lz4' | 'uncompressed';
  /** Where staging files go; default: the OS temp folder. */
  stagingDir?: string;
  /** Stops after the batch in work (watchers). */
  signal?: AbortSignal;
  logger?: Logger;
  /** Show progress (events) through src/log.ts Progress; default true. */
  progress?: boolean;
  /** Called after each committed group (tests, the CLI's --watch output). */
  onCommit?: (group: GroupSummary) => void;
}

export interface IngestSummary {
  /** Source files ingested (skipped ones, already in ingest_log, not counted). */
  files: number;
  /** Rows written to event and secondary-data tables. */
  events: number;
  /** Rows written to `quarantine`. */
  quarantined: number;
  /** Bytes read from the sources, as delivered (compressed). */
  bytes: number;
  seconds: number;
  /** Rows written per table (display names). */
  tables: Record<string, number>;
  /** Files skipped because ingest_log already had them. */
  skippedFiles: number;
}

export interface GroupSummary {
  appId: string;
  files: string[];
  events: number;
  quarantined: number;
  tables: Record<string, number>;
  skippedTables: string[];
}

const HEARTBEAT_MS = 30_000;
/**
 * Every commit carries one txn per source file, so without expiry the txn set of a table
 * (and every checkpoint) grows by one entry per file forever. A txn only has to outlive the
 * window between a table's commit and the `ingest_log` commit of the same files (a crash
 * replay); after that ingest_log rows — which never expire — make replays skip the files.
 */
const TXN_RETENTION = { 'delta.setTransactionRetentionDuration': 'interval 30 days' };
const QUARANTINE_COLUMNS =
  "{'src': 'INTEGER', 'line': 'BIGINT', 'raw': 'VARCHAR', 'reason': 'VARCHAR', 'detail': 'VARCHAR'}";

/** Wall-clock now as DuckDB TIMESTAMP text (UTC, ms). */
function nowText(): string {
  return new Date().toISOString().replace('T', ' ').replace('Z', '');
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/**
 * The txn appId of one source file in the commits of every table its rows go to:
 * `'ingest:' + sha1(file id)`. Per file, not per commit group, so a replay that groups the
 * files differently (after a crash, redelivered in other batches) still finds what each table
 * already holds.
 */
export function fileAppId(fileId: string): string {
  return 'ingest:' + sha1(fileId);
}

/**
 * The group id in logs and `GroupSummary`: sha1 over the file ids (a one-file group's id
 * equals that file's appId). Talon before per-file txns used it as the txn appId of every
 * commit of the group; a table holding it has all the group's rows.
 */
export function groupAppId(fileIds: string[]): string {
  return 'ingest:' + sha1(fileIds.join('\n'));
}

interface GroupFile {
  file: SourceFile;
  index: number;
  bytes: number;
  batchId: string;
  excluded?: 'md5_mismatch' | 'size_mismatch';
  /** Unreadable and skipped at its source's word: nothing of it is written or logged. */
  dropped?: boolean;
}

interface OpenGroup {
  dir: string;
  stager: EventStager;
  files: GroupFile[];
  events: number;
}

interface AwaitingBatch {
  batch: SourceBatch;
  beat: NodeJS.Timeout | undefined;
}

/**
 * How files are grouped into commits, by source kind (exactly-once does not depend on it:
 * txns are per file):
 * - 'across-batches' (files, stdin — one-shot): groups span batches (few, large commits — the
 *   fast path), and the next group is decoded while the previous one commits.
 * - 'ready' (sqs, watch and other streaming sources): a group spans the batches the source has
 *   ready (`moreReady`) and is committed when no more are, so nothing waits for the next poll.
 */
export function groupingOf(kind: string): 'across-batches' | 'ready' {
  if (kind === 'files' || kind === 'stdin') return 'across-batches';
  return 'ready';
}

/** Ingests every batch of `source` into `lake`; resolves when the source is exhausted or aborted. */
export async function ingest(
  lake: Lake,
  source: FdrSource,
  opts: IngestOptions = {},
): Promise<IngestSummary> {
  const pipeline = await IngestPipeline.create(lake, opts);
  try {
    return await pipeline.run(source);
  } finally {
    await pipeline.close();
  }
}

export class IngestPipeline {
  private readonly summary: IngestSummary = {
    files: 0,
    events: 0,
    quarantined: 0,
    bytes: 0,
    seconds: 0,
    tables: {},
    skippedFiles: 0,
  };
  private readonly log: Logger;
  private progress: Progress | undefined;
  private stagingRoot = '';
  private seq = 0;

  private constructor(
    readonly lake: Lake,
    private readonly opts: IngestOptions,
    private readonly schemas: SchemaRegistry,
    private readonly enricher: Enricher | null,
    private readonly ownEnricher: boolean,
  ) {
    this.log = opts.logger ?? rootLog.child({ component: 'ingest' });
  }

  static async create(lake: Lake, opts: IngestOptions = {}): Promise<IngestPipeline> {
    const schemas = new SchemaRegistry();
    // Column names of existing tables, so a field keeps its column across runs (case collisions).
    for (const name of await lake.tableNames()) {
      const t = await lake.table(name);
      if (!t) continue;
      const snap = await t.snapshot();
      schemas.register(
        snap.name ?? name,
        snap.schema.fields.map((f) => f.name),
      );
    }
    let enricher = opts.enricher;
    let own = false;
    if (enricher === undefined) {
      const { Enricher } = await import('../enrich/index.js');
      enricher = await Enricher.open();
      own = true;
    }
    const p = new IngestPipeline(lake, opts, schemas, enricher, own);
    const base = opts.stagingDir ?? os.tmpdir();
    await mkdir(base, { recursive: true });
    p.stagingRoot = await mkdtemp(path.join(base, 'talon-ingest-'));
    return p;
  }

  async close(): Promise<void> {
    if (this.ownEnricher) this.enricher?.close();
    if (this.stagingRoot) await rm(this.stagingRoot, { recursive: true, force: true });
  }

  get maxLineBytes(): number {
    return this.opts.maxLineBytes ?? 1024 * 1024;
  }

  async run(source: FdrSource): Promise<IngestSummary> {
    const started = performance.now();
    const signal = this.opts.signal ?? new AbortController().signal;
    if (this.opts.progress !== false)
      this.progress = new Progress('ingest', { unit: 'events', logger: this.log });
    const mode = groupingOf(source.kind);
    const limit = this.opts.batchEvents ?? 250_000;
    /** batches whose files are all staged, acknowledged when the open group commits */
    let awaiting: AwaitingBatch[] = [];
    let group: OpenGroup | undefined;
    // One-shot sources: ingest_log is read once, and the next group is decoded while the
    // previous one commits (JS parses on the main thread, DuckDB writes on its own threads).
    // Other sources check ingest_log live per batch and commit before reading on.
    const overlap = mode === 'across-batches';
    const known = overlap ? await this.committedFiles(undefined) : undefined;
    /** file ids staged in groups not committed yet: a second announcement is not staged again */
    const staged = new Set<string>();
    /** the batch whose files are being staged; it joins `awaiting` once all are */
    let current: AwaitingBatch | undefined;
    let inflight: Promise<void> | undefined;
    let inflightBatches: AwaitingBatch[] = [];
    const commit = async (): Promise<void> => {
      const g = group;
      group = undefined;
      const acks = awaiting;
      awaiting = [];
      if (inflight) await inflight;
      inflightBatches = acks;
      inflight = (async () => {
        if (g) {
          try {
            await g.stager.close();
            await this.commitGroup(g);
          } finally {
            await rm(g.dir, { recursive: true, force: true });
          }
          for (const f of g.files) {
            staged.delete(f.file.id);
            if (known && !f.dropped) known.add(f.file.id);
          }
        }
        for (const a of acks) {
          clearInterval(a.beat);
          await a.batch.ack();
        }
        inflightBatches = [];
      })();
      // surfaced by the next await of `inflight`; keep Node from calling it unhandled meanwhile
      inflight.catch(() => {});
      if (!overlap) await inflight;
    };
    try {
      for await (const batch of source.batches(signal)) {
        current = { batch, beat: this.heartbeat(batch) };
        const ids = batch.files.map((f) => f.id);
        const done = known ? new Set(ids.filter((id) => known.has(id))) : await this.committedFiles(ids);
        const todo = batch.files.filter((f) => !done.has(f.id));
        const skipped = batch.files.length - todo.length;
        this.summary.skippedFiles += skipped;
        if (skipped > 0) this.log.info('already ingested, skipped', { batch: batch.id, files: skipped });
        for (const file of todo) {
          // Announced again while its first copy waits in a group (two SQS messages of one
          // receive listing the same file): that copy commits before this batch is acked.
          if (staged.has(file.id)) continue;
          staged.add(file.id);
          group ??= await this.openGroup();
          await this.decodeInto(group, file, batch.id);
          // Cut at a file boundary; this batch is not acknowledged by that commit (it joins
          // `awaiting` only once all its files are staged).
          if (group.events >= limit) await commit();
        }
        awaiting.push(current);
        current = undefined;
        if (!overlap && !batch.moreReady) await commit();
        if (signal.aborted) break;
      }
      await commit();
      await inflight;
    } catch (err) {
      await inflight?.catch(() => {});
      for (const a of [...inflightBatches, ...awaiting, ...(current ? [current] : [])]) {
        clearInterval(a.beat);
        if (a.batch.nack) {
          await a.batch
            .nack(err as Error)
            .catch((e: unknown) => this.log.warn('nack failed', { batch: a.batch.id, err: e }));
        }
      }
      if (group) await rm(group.dir, { recursive: true, force: true });
      throw err;
    } finally {
      this.summary.seconds = (performance.now() - started) / 1000;
    }
    this.progress?.finish({
      files: this.summary.files,
      quarantined: this.summary.quarantined,
      bytes: this.summary.bytes,
    });
    return { ...this.summary, tables: { ...this.summary.tables } };
  }

  private heartbeat(batch: SourceBatch): NodeJS.Timeout | undefined {
    if (!batch.heartbeat) return undefined;
    const t = setInterval(() => {
      batch.heartbeat!().catch((err: unknown) => this.log.warn('heartbeat failed', { batch: batch.id, err }));
    }, HEARTBEAT_MS);
    t.unref();
    return t;
  }

  private async openGroup(): Promise<OpenGroup> {
    const dir = path.join(this.stagingRoot, `g${this.seq++}`);
    await mkdir(dir, { recursive: true });
    const stager = new EventStager(dir, this.schemas, this.opts.quarantineRawBytes ?? 64 * 1024);
    return { dir, stager, files: [], events: 0 };
  }

  private async decodeInto(group: OpenGroup, file: SourceFile, batchId: string): Promise<void> {
    const stager = group.stager;
    const index = group.files.length;
    stager.beginFile(index, file.name);
    let readError: Error | undefined;
    let res = { bytes: 0, md5: '' };
    let input: Readable | undefined;
    try {
      input = await file.open();
    } catch (err) {
      readError = err instanceof Error ? err : new Error(String(err));
      stager.quarantineFileRecord(index, {
        line: null,
        raw: '',
        reason: 'read_error',
        detail: readError.message,
      });
    }
    if (input) {
      // The decoder turns a failing stream into a `read_error` record; the cause is wanted here.
      // (Other failures — staging, a full disk — still throw and fail the batch.)
      input.once('error', (err: Error) => (readError ??= err));
      res = await decodeStream(input, stager, {
        maxLineBytes: this.maxLineBytes,
        quarantineRawBytes: this.opts.quarantineRawBytes ?? 64 * 1024,
      });
    }
    const gf: GroupFile = { file, index, bytes: res.bytes, batchId };
    if (readError) {
      const verdict = file.readFailed ? await file.readFailed(readError) : 'quarantine';
      this.log.warn(
        verdict === 'skip' ? 'file unreadable, left out of the group' : 'file unreadable, quarantined',
        {
          file: file.name,
          err: readError.message,
        },
      );
      if (verdict === 'skip') {
        gf.dropped = true;
        group.files.push(gf);
        return;
      }
    }
    if (file.expectedMd5 && res.md5 !== file.expectedMd5.toLowerCase()) {
      gf.excluded = 'md5_mismatch';
      stager.quarantineFileRecord(index, {
        line: null,
        raw: '',
        reason: 'md5_mismatch',
        detail: `expected ${file.expectedMd5.toLowerCase()}, got ${res.md5} (${res.bytes} bytes); no event of the file ingested`,
      });
    } else if (file.expectedSize !== undefined && res.bytes !== file.expectedSize) {
      gf.excluded = 'size_mismatch';
      stager.quarantineFileRecord(index, {
        line: null,
        raw: '',
        reason: 'size_mismatch',
        detail: `expected ${file.expectedSize} bytes, got ${res.bytes}; no event of the file ingested`,
      });
    }
    group.files.push(gf);
    const n = stager.counts[index].events;
    group.events += n;
    this.progress?.tick(n);
  }

  private async commitGroup(g: OpenGroup): Promise<void> {
    const { stager, files } = g;
    const db = this.lake.db;
    const appId = groupAppId(files.filter((f) => !f.dropped).map((f) => f.file.id));
    const excluded = files.filter((f) => f.excluded).map((f) => f.index);
    const dropped = files.filter((f) => f.dropped).map((f) => f.index);
    const kept = files.filter((f) => !f.dropped);
    if (kept.length === 0) return;
    const tag = `${process.pid}_${this.seq}`;
    const ipTable = `__talon_ips_${tag}`;
    const domainTable = `__talon_domains_${tag}`;
    const group: GroupSummary = {
      appId,
      files: kept.map((f) => f.file.id),
      events: 0,
      quarantined: 0,
      tables: {},
      skippedTables: [],
    };
    const perFile = files.map(() => ({}) as Record<string, number>);
    try {
      const stages = [...stager.tables.values()]
        .filter((s) => s.rows > 0)
        .sort((a, b) => a.schema.key.localeCompare(b.schema.key));
      const useIps = this.enricher !== null && stager.ips.size > 0;
      const useDomains = this.enricher !== null && stager.domains.size > 0;
      if (useIps) await this.enricher!.ipTable(db, ipTable, stager.ips);
      if (useDomains) await this.enricher!.domainTable(db, domainTable, stager.domains);
      await this.withEventSideProbing(useIps || useDomains, async () => {
        for (const stage of stages) {
          const candidates = [...stage.rowsByFile.keys()].filter(
            (k) => !excluded.includes(k) && !dropped.includes(k),
          );
          if (candidates.length === 0) continue;
          const table = await this.lake.createTable(stage.schema.displayName, {
            partitionColumns: stage.schema.secondary ? [] : ['event_date'],
            properties: {
              ...TXN_RETENTION,
              'delta.parquet.compression.codec': this.opts.parquetCodec ?? 'snappy',
            },
          });
          const name = (await table.name()) ?? stage.schema.displayName;
          const plan = await this.filesToWrite(table, files, candidates, appId);
          for (const idx of plan.committed) perFile[idx][name] = stage.rowsByFile.get(idx) ?? 0;
          if (plan.write.length === 0) {
            group.skippedTables.push(name);
            continue;
          }
          const relation = tableRelation(stage, {
            ipTable: useIps ? ipTable : undefined,
            domainTable: useDomains ? domainTable : undefined,
            excludeFiles: [...excluded, ...dropped, ...plan.committed],
            maxObjectBytes: Math.max(16 * 1024 * 1024, this.maxLineBytes * 2 + 4096),
          });
          const rows = await this.writeTable(table, stage, relation, plan.opts);
          for (const idx of plan.write) perFile[idx][name] = stage.rowsByFile.get(idx) ?? 0;
          group.tables[name] = rows;
          group.events += rows;
        }
      });
      group.quarantined = await this.writeQuarantine(stager, files, excluded, appId);
      await this.writeIngestLog(stager, files, kept, perFile, appId);
    } finally {
      await db.run(`DROP TABLE IF EXISTS ${ident(ipTable)}; DROP TABLE IF EXISTS ${ident(domainTable)}`);
    }
    this.summary.files += kept.length;
    this.summary.bytes += kept.reduce((n, f) => n + f.bytes, 0);
    this.summary.events += group.events;
    this.summary.quarantined += group.quarantined;
    for (const [t, n] of Object.entries(group.tables))
      this.summary.tables[t] = (this.summary.tables[t] ?? 0) + n;
    this.log.debug('committed group', {
      appId,
      files: kept.length,
      events: group.events,
      quarantined: group.quarantined,
    });
    this.opts.onCommit?.(group);
  }

  /**
   * Which of the group's files (`candidates`: indexes with rows for this table) still need
   * their rows written to `table`: a file whose txn (`fileAppId`) the table already holds was
   * committed to it by an earlier attempt — whatever group that attempt put it in — and its
   * rows are left out. The commit carries one txn per written file. A table holding the txn
   * of this very group (`groupAppId`, written by Talon before per-file txns) has them all.
   */
  private async filesToWrite(
    table: DeltaTable,
    files: GroupFile[],
    candidates: number[],
    groupId: string,
  ): Promise<{ write: number[]; committed: number[]; opts: WriteOptions }> {
    const ids = candidates.map((k) => fileAppId(files[k].file.id));
    const done = await table.txnVersions([...ids, groupId]);
    if ((done.get(groupId) ?? 0) >= 1) return { write: [], committed: candidates, opts: {} };
    const write: number[] = [];
    const committed: number[] = [];
    candidates.forEach((k, i) => ((done.get(ids[i]) ?? 0) >= 1 ? committed : write).push(k));
    return {
      write,
      committed,
      opts: {
        txns: write.map((k) => ({ appId: fileAppId(files[k].file.id), version: 1 })),
        commitInfo: { talonIngest: { files: write.length } },
      },
    };
  }

  /**
   * DuckDB cannot estimate read_json's row count and may build the enrichment join's hash
   * table on the wide event side (a RIGHT join probed by the small lookup table), which costs
   * several times the whole parse. With the build/probe-side swap off, the small enrichment
   * table is always the build side. The previous setting is restored after the write.
   */
  private async withEventSideProbing<T>(on: boolean, fn: () => Promise<T>): Promise<T> {
    if (!on) return fn();
    const db = this.lake.db;
    const [{ v }] = await db.all<{ v: string }>(`SELECT current_setting('disabled_optimizers') AS v`);
    const list = v ? `${v},build_side_probe_side` : 'build_side_probe_side';
    await db.run(`SET disabled_optimizers = ${literal(list)}`);
    try {
      return await fn();
    } finally {
      await db.run(v ? `SET disabled_optimizers = ${literal(v)}` : 'RESET disabled_optimizers');
    }
  }

  /** Appends, or for aidmaster/userinfo MERGEs on the key so the newest row per host/user wins. */
  private async writeTable(
    table: DeltaTable,
    stage: TableStage,
    relation: string,
    txn: WriteOptions,
  ): Promise<number> {
    const key = secondaryKey(stage);
    if (key !== undefined) {
      // A replay or a late redelivery can bring an older export of a host/user after a newer
      // one: the stored row is replaced only by a row at least as new (by its row time).
      const stored = (await table.snapshot()).schema.fields.map((f) => f.name);
      const staged = [...stage.fields.values()].map((f) => f.column);
      const newer = newerRowCondition(stage.schema.secondary!, stored, staged);
      const r = await table.merge(
        relation,
        {
          on: [key],
          whenMatched: 'update',
          ...(newer ? { whenMatchedIf: newer } : {}),
          whenNotMatched: 'insert',
        },
        txn,
      );
      return (
        (r.metrics.numTargetRowsInserted ?? 0) + (r.metrics.numTargetRowsUpdated ?? 0) ||
        (r.metrics.numOutputRows ?? 0) ||
        stage.rows
      );
    }
    const r = await table.append(relation, txn);
    return r.metrics.numOutputRows ?? 0;
  }

  private fileValues(files: GroupFile[]): string {
    return files
      .map(
        (f) =>
          `(${f.index}, ${literal(f.file.name)}, ${literal(f.file.id)}, ${literal(f.batchId)}, ${f.bytes})`,
      )
      .join(', ');
  }

  private async writeQuarantine(
    stager: EventStager,
    files: GroupFile[],
    excluded: number[],
    groupId: string,
  ): Promise<number> {
    if (!stager.hasQuarantine) return 0;
    const candidates = files
      .filter((f) => !f.dropped && stager.counts[f.index].quarantined > 0)
      .map((f) => f.index);
    if (candidates.length === 0) return 0;
    const table = await this.lake.createTable('quarantine', { properties: { ...TXN_RETENTION } });
    const plan = await this.filesToWrite(table, files, candidates, groupId);
    if (plan.write.length === 0) return 0;
    const where = [`q.src IN (${plan.write.join(', ')})`];
    // An excluded file keeps only its checksum verdict: its lines are not what the producer sent.
    if (excluded.length)
      where.push(`(q.src NOT IN (${excluded.join(', ')}) OR q.reason IN ('md5_mismatch', 'size_mismatch'))`);
    const relation =
      `SELECT f.source, f.file_id, f.batch_id, q.line, q.raw, q.reason, q.detail, ` +
      `CAST(${literal(nowText())} AS TIMESTAMP) AS ingested_at ` +
      `FROM read_json(${literal(stager.quarantineFile)}, format = 'newline_delimited', ` +
      `maximum_object_size = ${Math.max(16 * 1024 * 1024, (this.opts.quarantineRawBytes ?? 65536) * 8)}, ` +
      `columns = ${QUARANTINE_COLUMNS}) AS q ` +
      `JOIN (VALUES ${this.fileValues(files)}) AS f(idx, source, file_id, batch_id, bytes) ON f.idx = q.src ` +
      `WHERE ${where.join(' AND ')}`;
    const r = await table.append(relation, plan.opts);
    return r.metrics.numOutputRows ?? 0;
  }

  private async writeIngestLog(
    stager: EventStager,
    files: GroupFile[],
    kept: GroupFile[],
    perFile: Record<string, number>[],
    groupId: string,
  ): Promise<void> {
    const table = await this.lake.createTable('ingest_log', { properties: { ...TXN_RETENTION } });
    const plan = await this.filesToWrite(
      table,
      files,
      kept.map((f) => f.index),
      groupId,
    );
    if (plan.write.length === 0) return;
    const rows = plan.write.map((idx) => {
      const f = files[idx];
      const c = stager.counts[f.index];
      const events = f.excluded ? 0 : Object.values(perFile[f.index]).reduce((a, b) => a + b, 0);
      const quarantined = f.excluded ? 1 : c.quarantined;
      return (
        `(${literal(f.file.id)}, ${literal(f.file.name)}, ${literal(f.batchId)}, ` +
        `${events}::BIGINT, ${quarantined}::BIGINT, ${f.bytes}::BIGINT, ${literal(JSON.stringify(perFile[f.index]))})`
      );
    });
    const relation =
      `SELECT file_id, source, batch_id, events, quarantined, bytes, tables, ` +
      `CAST(${literal(nowText())} AS TIMESTAMP) AS committed_at ` +
      `FROM (VALUES ${rows.join(', ')}) AS v(file_id, source, batch_id, events, quarantined, bytes, tables)`;
    await table.append(relation, plan.opts);
  }

  /** File ids among `ids` (all when undefined) that ingest_log records as committed. */
  async committedFiles(ids: string[] | undefined): Promise<Set<string>> {
    const out = new Set<string>();
    if (ids !== undefined && ids.length === 0) return out;
    const table = await this.lake.table('ingest_log');
    if (!table) return out;
    const snap = await table.snapshot();
    if (snap.files.length === 0) return out;
    const scan = await snap.scan();
    if (ids === undefined) {
      for (const r of await this.lake.db.all<{ file_id: string }>(`SELECT DISTINCT file_id FROM ${scan}`)) {
        out.add(r.file_id);
      }
      return out;
    }
    for (let i = 0; i < ids.length; i += 1000) {
      const list = ids
        .slice(i, i + 1000)
        .map(literal)
        .join(', ');
      const rows = await this.lake.db.all<{ file_id: string }>(
        `SELECT DISTINCT file_id FROM ${scan} WHERE file_id IN (${list})`,
      );
      for (const r of rows) out.add(r.file_id);
    }
    return out;
  }
}
