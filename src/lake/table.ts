/**
 * One Delta Lake table (protocol: ../shared/reference/delta-PROTOCOL.md).
 *
 * Data goes in and comes out as DuckDB SQL: a write takes a query (`Relation`) that runs on
 * the lake's DuckDB connection — callers stage their rows in temp tables/views there — and
 * a read gives back a SQL table expression over the snapshot's active files.
 * The Delta schema of a write is derived from the query's DuckDB column types
 * (VARCHAR→string, BIGINT→long, INTEGER→integer, DOUBLE→double, BOOLEAN→boolean,
 * TIMESTAMP/TIMESTAMPTZ→timestamp, DATE→date, STRUCT→struct, LIST→array, MAP→map, …).
 */
import { randomUUID } from 'node:crypto';
import { ident, literal } from '../sql/duckdb.js';
import type { ColumnInfo } from '../sql/duckdb.js';
import {
  type Action,
  type AddAction,
  type CdcAction,
  type CommitInfoAction,
  type MetaDataAction,
  type ProtocolAction,
  type RemoveAction,
  UnsupportedFeatureError,
  cdfEnabled,
  checkReadable,
  checkWritable,
  isAppendOnly,
} from './actions.js';
import { cleanupExpiredLogs, writeCheckpoint } from './checkpoint.js';
import { parseInterval } from './interval.js';
import { FileJudge, parsePredicate } from './filter.js';
import type { Lake } from './lake.js';
import { DeltaLog, LOG_DIR, type LogListing, type TableState } from './log.js';
import { fromLogPath } from './partition.js';
import { FILE_COL, type ScanFile, filesSql } from './scan.js';
import {
  deltaTypeOfDuck,
  duckType,
  emptySchema,
  field,
  findField,
  hasType,
  mergeSchema,
  parseSchemaString,
  sameSchema,
  schemaString,
} from './schema.js';
import { type WrittenFile, writeRelation } from './writer.js';

/** A SQL query (SELECT …) runnable on `lake.db`. */
export type Relation = string;

export type DeltaPrimitive =
  | 'string'
  | 'long'
  | 'integer'
  | 'short'
  | 'byte'
  | 'float'
  | 'double'
  | 'boolean'
  | 'binary'
  | 'date'
  | 'timestamp'
  | 'timestamp_ntz'
  | `decimal(${number},${number})`;

export type DeltaType =
  | DeltaPrimitive
  | { type: 'struct'; fields: StructField[] }
  | { type: 'array'; elementType: DeltaType; containsNull: boolean }
  | { type: 'map'; keyType: DeltaType; valueType: DeltaType; valueContainsNull: boolean };

export interface StructField {
  name: string;
  type: DeltaType;
  nullable: boolean;
  metadata: Record<string, unknown>;
}

export interface StructType {
  type: 'struct';
  fields: StructField[];
}

export interface TableSpec {
  /** Display name kept in metaData.name; default: the name given to createTable. */
  displayName?: string;
  /** Initial schema; may be omitted and come from the first write's query. */
  schema?: StructType;
  partitionColumns?: string[];
  /** Table properties, e.g. {'delta.enableChangeDataFeed': 'true'}. */
  properties?: Record<string, string>;
  description?: string;
}

export interface WriteOptions {
  /**
   * Idempotence: the Delta `txn` action. When `version` ≤ the last committed version for
   * `appId`, the write is skipped (returns `skipped: true`) — a replay adds nothing twice.
   */
  txn?: { appId: string; version: number };
  /**
   * Several `txn` actions in one commit (at most one per appId, as the protocol requires),
   * e.g. one per source file of an ingest commit group. May be combined with `txn`.
   * - every one already committed (a version ≥ each) → the write is skipped (`skipped: true`);
   * - only some committed → `PartialTxnError`, nothing is written: a commit is atomic, so
   *   it cannot add "the rest" — the caller must leave the committed ones (and their rows)
   *   out of the write (see `txnVersions`) and write again;
   * - none committed → written, with every txn.
   * The same rules apply to commits that win a race against this write.
   */
  txns?: { appId: string; version: number }[];
  /**
   * For `append`: the table version the appended rows were derived from (e.g. "rows whose key
   * the table does not hold yet" at that version). Data any other writer added after it is then
   * a conflict (ConcurrentModificationError, nothing committed) instead of a silent duplicate,
   * and the caller recomputes its rows. Without it an append is blind (appends never conflict).
   */
  readAt?: number;
  /** Extra commitInfo fields (merged into the commit's commitInfo). */
  commitInfo?: Record<string, unknown>;
  /**
   * Called once after the data files are written and before the first commit attempt —
   * for coordination in tests (e.g. letting a concurrent writer win the race).
   */
  beforeCommit?: () => Promise<void>;
}

export interface CommitResult {
  /** The table version this write created (or the current one when skipped / nothing to do). */
  version: number;
  skipped: boolean;
  /** numOutputRows, numFiles, numAddedFiles, numRemovedFiles, numUpdatedRows, numDeletedRows… */
  metrics: Record<string, number>;
}

export interface MergeSpec {
  /** Key columns: target.k = source.k for each (NULL keys never match). */
  on: string[];
  /** For matched rows: update all columns from the source, or leave the target as it is. */
  whenMatched: 'update' | 'ignore';
  /**
   * With `whenMatched: 'update'`: a SQL condition over the target row (alias `t`) and the
   * source row (alias `s`); a matched row is updated only where it is true (Delta's
   * `WHEN MATCHED AND <cond> THEN UPDATE`). Where it is false or NULL the target row stays as
   * it is and the source row is still matched — never inserted. E.g. `s.seen >= t.seen`.
   */
  whenMatchedIf?: string;
  /** For source rows without a match: insert them, or drop them. */
  whenNotMatched: 'insert' | 'ignore';
  /**
   * A SQL predicate over the target's columns that every target row some source row can match
   * satisfies (Delta's extra MERGE ON condition on the target, e.g. the partition or time range
   * of the source). Files whose partition values and stats rule it out are not read, so the cost
   * follows the rows that can match instead of the whole table; a concurrent commit conflicts
   * only when it adds data the predicate may match.
   */
  targetFilter?: string;
}

export interface AddFile {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string;
  tags?: Record<string, string>;
}

export interface Snapshot {
  version: number;
  /** commit timestamp (ms) of `version` */
  timestamp: number;
  schema: StructType;
  partitionColumns: string[];
  properties: Record<string, string>;
  /** metaData.name (display name) */
  name?: string;
  files: AddFile[];
  numRows: number | undefined;
  /**
   * A DuckDB table expression (usable after FROM) reading this snapshot's rows, partition
   * columns included. `filter` (SQL over partition and data columns) prunes files by
   * partition values and min/max stats before they are read, and filters rows.
   */
  scan(filter?: string): Promise<string>;
  /** The files `scan(filter)` reads: those partition values and stats do not rule out. */
  prune(filter?: string): AddFile[];
}

export type ChangeType = 'insert' | 'update_preimage' | 'update_postimage' | 'delete';

export interface HistoryEntry {
  version: number;
  timestamp: number;
  operation?: string;
  operationParameters?: Record<string, unknown>;
  operationMetrics?: Record<string, unknown>;
  txn?: { appId: string; version: number }[];
}

/** A commit lost to a concurrent one whose changes overlap it; the operation was not applied. */
export class ConcurrentModificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConcurrentModificationError';
  }
}

/**
 * A write whose txns (`WriteOptions.txn`/`txns`) are only partly committed already — by an
 * earlier commit, or by a concurrent one that won the race. Nothing of this write was
 * committed; `committed` lists the appIds (with their committed versions) to leave out.
 */
export class PartialTxnError extends Error {
  constructor(
    readonly table: string,
    readonly committed: { appId: string; version: number }[],
    readonly pending: { appId: string; version: number }[],
  ) {
    super(
      `${table}: ${committed.length} of ${committed.length + pending.length} txn(s) of this write are already committed ` +
        `(${committed
          .slice(0, 5)
          .map((t) => `${t.appId}@${t.version}`)
          .join(
            ', ',
          )}${committed.length > 5 ? ', …' : ''}); nothing was committed — write only the pending ones`,
    );
    this.name = 'PartialTxnError';
  }
}

/** The txns of a write: `txn` and `txns` together, one per appId. */
function writeTxns(table: string, opts: WriteOptions): { appId: string; version: number }[] {
  const all = [...(opts.txn ? [opts.txn] : []), ...(opts.txns ?? [])];
  const seen = new Set<string>();
  for (const t of all) {
    // Protocol "Delta Log Entries": no more than one SetTransaction with the same appId.
    if (seen.has(t.appId))
      throw new Error(`${table}: txn appId ${JSON.stringify(t.appId)} given twice in one write`);
    if (!Number.isSafeInteger(t.version))
      throw new Error(`${table}: txn ${t.appId} has a non-integer version`);
    seen.add(t.appId);
  }
  return all;
}

/** A vacuum retention below the table's safe minimum, without `force`. */
export class VacuumRetentionError extends Error {
  constructor(
    readonly table: string,
    readonly retentionHours: number,
    readonly minimumHours: number,
  ) {
    super(
      `${table}: refusing to vacuum with a retention of ${retentionHours} h, below the table's ` +
        `${minimumHours} h (delta.deletedFileRetentionDuration): files still needed by a concurrent ` +
        `writer, a running reader or time travel could be deleted. Use force (CLI: --force) if no ` +
        `other process uses the table and older versions are not needed.`,
    );
    this.name = 'VacuumRetentionError';
  }
}

/** What a write commits and what it read, so a lost race can be judged and retried. */
interface CommitPlan {
  operation: string;
  operationParameters: Record<string, unknown>;
  metrics: Record<string, number>;
  readVersion: number;
  /** remove/add/cdc actions (and metaData/protocol when changed) */
  actions: Action[];
  /** paths of files this operation read; a concurrent remove of any of them is a conflict */
  readFiles?: Set<string>;
  /** concurrent data-changing adds matching this are a conflict ('all' = any) */
  readPredicate?: FileJudge | 'all';
  /** a blind append's incoming schema: a concurrent metaData change is rebased on, not fatal */
  appendSchema?: StructType;
  isBlindAppend: boolean;
  /** data files already uploaded (removed when the write is skipped after all) */
  newFiles: string[];
  opts: WriteOptions;
}

const MAX_COMMIT_ATTEMPTS = 100;
const DEFAULT_CHECKPOINT_INTERVAL = 10;
const MS_PER_HOUR = 3600 * 1000;
/** Delta's default `delta.deletedFileRetentionDuration` (one week). */
const DEFAULT_VACUUM_RETENTION_HOURS = 168;

/** Test hook: set to make a writer stop dead between uploading its files and committing. */
const CRASH_ENV = 'TALON_TEST_CRASH_BEFORE_COMMIT';

class DeltaSnapshot implements Snapshot {
  readonly files: AddFile[];
  readonly schema: StructType;
  readonly partitionColumns: string[];
  readonly properties: Record<string, string>;
  readonly name?: string;
  readonly numRows: number | undefined;

  constructor(
    private readonly table: DeltaTable,
    readonly state: TableState,
    readonly timestamp: number,
  ) {
    this.files = [...state.files.values()];
    this.schema = tableSchema(state.metaData);
    this.partitionColumns = state.metaData.partitionColumns ?? [];
    this.properties = { ...state.metaData.configuration };
    this.name = state.metaData.name ?? undefined;
    let rows = 0;
    for (const f of this.files) {
      const n = numRecords(f);
      if (n === undefined) {
        rows = NaN;
        break;
      }
      rows += n;
    }
    this.numRows = Number.isNaN(rows) ? undefined : rows;
  }

  get version(): number {
    return this.state.version;
  }

  /** Files that may hold rows matching `filter` (all files without one). */
  prune(filter?: string): AddFile[] {
    if (!filter || filter.trim() === '') return this.files;
    const judge = new FileJudge(this.schema, this.partitionColumns, parsePredicate(filter));
    return this.files.filter((f) => judge.mayMatch(f));
  }

  async scan(filter?: string): Promise<string> {
    const files = this.prune(filter);
    const expr = await this.table.filesExpr(this.state, files);
    if (!filter || filter.trim() === '') return expr;
    return `(SELECT * FROM ${expr} AS __talon_t WHERE ${filter})`;
  }
}

function numRecords(f: AddFile): number | undefined {
  if (!f.stats) return undefined;
  try {
    const n = (JSON.parse(f.stats) as { numRecords?: unknown }).numRecords;
    return typeof n === 'number' ? n : undefined;
  } catch {
    return undefined;
  }
}

function tableSchema(md: MetaDataAction): StructType {
  return md.schemaString ? parseSchemaString(md.schemaString) : emptySchema();
}

function sqlList(values: string[]): string {
  return values.map(literal).join(', ');
}

export class DeltaTable {
  private readonly log: DeltaLog;
  /** last state read; later snapshots replay only the commits after it */
  private cached?: TableState;

  constructor(
    readonly lake: Lake,
    /** lower-cased folder name under the lake root */
    readonly key: string,
  ) {
    this.log = new DeltaLog(lake.store, lake.db, key);
  }

  /** The display name (metaData.name, else the folder name). */
  async name(): Promise<string> {
    const s = await this.state();
    return s.metaData.name || this.key;
  }

  /** Current table state (latest or at a version), using the cache when it helps. */
  async state(version?: number, listing?: LogListing): Promise<TableState> {
    const base =
      this.cached && (version === undefined || this.cached.version <= version) ? this.cached : undefined;
    const s = await this.log.loadState(version, base, listing);
    if (version === undefined || !this.cached || s.version >= this.cached.version) this.cached = s;
    return s;
  }

  /** Latest version, a given version, or the last version committed at or before a timestamp (ms). */
  async snapshot(at?: { version?: number; timestamp?: number }): Promise<Snapshot> {
    const listing = await this.log.list();
    let version = at?.version;
    if (at?.timestamp !== undefined && version === undefined) {
      const ts = await this.log.commitTimestamps(listing);
      let found: number | undefined;
      for (const [v, t] of [...ts.entries()].sort((a, b) => a[0] - b[0])) if (t <= at.timestamp) found = v;
      if (found === undefined) {
        const first = [...ts.values()][0];
        throw new Error(
          `${this.key}: no version at or before ${new Date(at.timestamp).toISOString()}` +
            (first !== undefined ? ` (the earliest commit is at ${new Date(first).toISOString()})` : ''),
        );
      }
      version = found;
    }
    const state = await this.state(version, listing);
    checkReadable(this.key, state.protocol, state.metaData);
    for (const f of state.files.values()) {
      if (f.deletionVector) {
        throw new UnsupportedFeatureError(
          'deletionVectors',
          `table ${this.key} has deletion vectors, which Talon does not support`,
        );
      }
    }
    const timestamp = await this.log.commitTimestamp(state.version, listing.commits.get(state.version));
    return new DeltaSnapshot(this, state, timestamp);
  }

  async latestVersion(): Promise<number> {
    const l = await this.log.list();
    if (l.latest < 0) throw new Error(`${this.key}: not a Delta table`);
    return l.latest;
  }

  /** The last committed txn version of `appId`, or undefined. */
  async txnVersion(appId: string): Promise<number | undefined> {
    const s = await this.state();
    return s.txns.get(appId)?.version;
  }

  /**
   * The last committed txn version of each given appId that has one (others are absent).
   * Expired txns (`delta.setTransactionRetentionDuration`) are absent too.
   */
  async txnVersions(appIds: string[]): Promise<Map<string, number>> {
    const s = await this.state();
    const out = new Map<string, number>();
    for (const id of appIds) {
      const t = s.txns.get(id);
      if (t) out.set(id, t.version);
    }
    return out;
  }

  // ------------------------------------------------------------------ reading helpers

  localFile(path: string): Promise<string> {
    if (/^[a-z][a-z0-9+.-]*:/i.test(path)) {
      if (path.startsWith('file:')) return Promise.resolve(decodeURIComponent(new URL(path).pathname));
      throw new Error(`${this.key}: absolute data file path ${path} is not supported`);
    }
    return this.lake.store.localPath(`${this.key}/${fromLogPath(path)}`);
  }

  /** SQL table expression over some files of a state. */
  async filesExpr(state: TableState, files: AddFile[], withFile = false): Promise<string> {
    const scanFiles: ScanFile[] = await Promise.all(
      files.map(async (f) => ({ local: await this.localFile(f.path), partitionValues: f.partitionValues })),
    );
    return filesSql(
      this.lake.db,
      tableSchema(state.metaData),
      state.metaData.partitionColumns ?? [],
      scanFiles,
      { withFile },
    );
  }

  // ------------------------------------------------------------------ writes

  async append(data: Relation, opts: WriteOptions = {}): Promise<CommitResult> {
    const state = await this.writableState();
    const skipped = this.txnSkip(state, opts);
    if (skipped) return skipped;
    const incoming = await this.lake.db.columns(data);
    const { schema, metaData } = this.evolve(state, incoming);
    const files = await this.write(state, schema, data, incoming);
    const rows = files.reduce((n, f) => n + f.numRecords, 0);
    return this.commit({
      operation: 'WRITE',
      operationParameters: {
        mode: 'Append',
        partitionBy: JSON.stringify(state.metaData.partitionColumns ?? []),
      },
      metrics: {
        numFiles: files.length,
        numOutputRows: rows,
        numOutputBytes: files.reduce((n, f) => n + f.size, 0),
      },
      readVersion: opts.readAt ?? state.version,
      actions: [...(metaData ? [{ metaData }] : []), ...files.map((f) => ({ add: cleanAdd(f) }))],
      appendSchema: columnsSchema(incoming),
      ...(opts.readAt !== undefined ? { readPredicate: 'all' as const } : {}),
      isBlindAppend: opts.readAt === undefined,
      newFiles: files.map((f) => f.path),
      opts,
    });
  }

  /** Replaces the whole table, or only the rows matching `where` (a SQL predicate). */
  async overwrite(data: Relation, opts: WriteOptions & { where?: string } = {}): Promise<CommitResult> {
    const state = await this.writableState();
    if (isAppendOnly(state.metaData))
      throw new Error(`${this.key} is append-only (delta.appendOnly=true): overwrite refused`);
    const skipped = this.txnSkip(state, opts);
    if (skipped) return skipped;
    const where = opts.where?.trim() || undefined;
    const incoming = await this.lake.db.columns(data);
    const { schema, metaData } = this.evolve(state, incoming);
    if (where) {
      const bad = await this.lake.db.all<{ n: bigint }>(
        `SELECT count(*) AS n FROM (${data}) AS __talon_d WHERE NOT coalesce((${where}), false)`,
      );
      if (Number(bad[0].n) > 0) {
        throw new Error(
          `${this.key}: overwrite data has ${bad[0].n} row(s) that do not match the predicate ${where}`,
        );
      }
    }
    const removal = await this.planDelete(state, where);
    const added = await this.write(state, schema, data, incoming);
    const rewritten = removal.keepRelation
      ? await this.write(state, schema, removal.keepRelation, removal.keepColumns!)
      : [];
    const cdc: CdcAction[] = [];
    if (cdfEnabled(state.metaData) && removal.keepRelation) {
      const cols = schema.fields.map((f) => ident(f.name));
      const del = `SELECT ${schemaSelect(tableSchema(state.metaData), schema)}, 'delete' AS _change_type FROM ${removal.deletedRelation}`;
      const ins = `SELECT ${cols.join(', ')}, 'insert' AS _change_type FROM (SELECT ${cols.map((c) => c).join(', ')} FROM (${dataAsSchema(data, incoming, schema)}))`;
      cdc.push(...(await this.writeCdc(state, schema, `${del} UNION ALL ${ins}`)));
    }
    const now = Date.now();
    return this.commit({
      operation: 'WRITE',
      operationParameters: {
        mode: 'Overwrite',
        partitionBy: JSON.stringify(state.metaData.partitionColumns ?? []),
        ...(where ? { predicate: where } : {}),
      },
      metrics: {
        numFiles: added.length + rewritten.length,
        numOutputRows: added.reduce((n, f) => n + f.numRecords, 0),
        numAddedFiles: added.length + rewritten.length,
        numRemovedFiles: removal.removed.length,
        numDeletedRows: removal.deletedRows,
        numCopiedRows: removal.copiedRows,
      },
      readVersion: state.version,
      actions: [
        ...(metaData ? [{ metaData }] : []),
        ...removal.removed.map((f) => ({ remove: removeOf(f, now) })),
        ...[...added, ...rewritten].map((f) => ({ add: cleanAdd(f) })),
        ...cdc.map((c) => ({ cdc: c })),
      ],
      readFiles: new Set(removal.candidates.map((f) => f.path)),
      readPredicate: where
        ? new FileJudge(tableSchema(state.metaData), state.metaData.partitionColumns, parsePredicate(where))
        : 'all',
      isBlindAppend: false,
      newFiles: [...added, ...rewritten, ...cdc].map((f) => f.path),
      opts,
    });
  }

  async deleteWhere(predicate: string, opts: WriteOptions = {}): Promise<CommitResult> {
    const state = await this.writableState();
    if (isAppendOnly(state.metaData))
      throw new Error(`${this.key} is append-only (delta.appendOnly=true): delete refused`);
    const skipped = this.txnSkip(state, opts);
    if (skipped) return skipped;
    const schema = tableSchema(state.metaData);
    const removal = await this.planDelete(state, predicate);
    if (removal.removed.length === 0 && writeTxns(this.key, opts).length === 0) {
      return {
        version: state.version,
        skipped: false,
        metrics: { numDeletedRows: 0, numRemovedFiles: 0, numAddedFiles: 0 },
      };
    }
    const rewritten = removal.keepRelation
      ? await this.write(state, schema, removal.keepRelation, removal.keepColumns!)
      : [];
    const cdc: CdcAction[] = [];
    if (cdfEnabled(state.metaData) && removal.keepRelation) {
      cdc.push(
        ...(await this.writeCdc(
          state,
          schema,
          `SELECT *, 'delete' AS _change_type FROM ${removal.deletedRelation}`,
        )),
      );
    }
    const now = Date.now();
    return this.commit({
      operation: 'DELETE',
      operationParameters: { predicate: JSON.stringify([predicate]) },
      metrics: {
        numDeletedRows: removal.deletedRows,
        numRemovedFiles: removal.removed.length,
        numAddedFiles: rewritten.length,
        numCopiedRows: removal.copiedRows,
        numAddedChangeFiles: cdc.length,
      },
      readVersion: state.version,
      actions: [
        ...removal.removed.map((f) => ({ remove: removeOf(f, now) })),
        ...rewritten.map((f) => ({ add: cleanAdd(f) })),
        ...cdc.map((c) => ({ cdc: c })),
      ],
      readFiles: new Set(removal.candidates.map((f) => f.path)),
      readPredicate: new FileJudge(schema, state.metaData.partitionColumns, parsePredicate(predicate)),
      isBlindAppend: false,
      newFiles: [...rewritten, ...cdc].map((f) => f.path),
      opts,
    });
  }

  /** Copy-on-write MERGE of `source` into this table; writes cdc files when CDF is enabled. */
  async merge(source: Relation, spec: MergeSpec, opts: WriteOptions = {}): Promise<CommitResult> {
    const state = await this.writableState();
    const skipped = this.txnSkip(state, opts);
    if (skipped) return skipped;
    if (spec.on.length === 0) throw new Error('merge: at least one key column is needed');
    if (spec.whenMatched === 'update' && isAppendOnly(state.metaData)) {
      throw new Error(`${this.key} is append-only (delta.appendOnly=true): merge updates refused`);
    }
    const db = this.lake.db;
    const src = `__talon_merge_src_${randomUUID().replace(/-/g, '')}`;
    await db.run(`CREATE TEMP TABLE ${src} AS ${source}`);
    try {
      const incoming = await db.columns(`SELECT * FROM ${src}`);
      const oldSchema = tableSchema(state.metaData);
      const { schema, metaData } = this.evolve(state, incoming);
      for (const k of spec.on) {
        if (!findField(oldSchema, k) && oldSchema.fields.length > 0)
          throw new Error(`merge: key column ${k} is not in table ${this.key}`);
        if (!incoming.some((c) => c.name.toLowerCase() === k.toLowerCase()))
          throw new Error(`merge: key column ${k} is not in the source`);
      }
      const judge = spec.targetFilter
        ? new FileJudge(
            tableSchema(state.metaData),
            state.metaData.partitionColumns,
            parsePredicate(spec.targetFilter),
          )
        : undefined;
      // With a target filter only the files that may hold a matching row are read (and
      // rewritten: whole, with their rows outside the filter copied as they are).
      const allFiles = [...state.files.values()].filter((f) => !judge || judge.mayMatch(f));
      const targetFiles = await this.filesExpr(state, allFiles, true);
      const target = spec.targetFilter
        ? `(SELECT * FROM ${targetFiles} AS __talon_t WHERE (${spec.targetFilter}))`
        : targetFiles;
      const on = spec.on.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(' AND ');
      // Rows the update applies to; `on` alone still decides matched vs inserted.
      const onUpdate = spec.whenMatchedIf ? `${on} AND (${spec.whenMatchedIf})` : on;
      const srcRows = Number((await db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${src}`))[0].n);

      let matchedFiles: string[] = [];
      let updatedRows = 0;
      if (spec.whenMatched === 'update' && allFiles.length > 0) {
        const dup = await db.all(
          `SELECT 1 FROM ${src} s WHERE EXISTS (SELECT 1 FROM ${target} t WHERE ${onUpdate})
            GROUP BY ${spec.on.map((k) => `s.${ident(k)}`).join(', ')} HAVING count(*) > 1 LIMIT 1`,
        );
        if (dup.length > 0) {
          throw new Error(
            `merge into ${this.key}: several source rows match the same target row (keys ${spec.on.join(', ')}); deduplicate the source`,
          );
        }
        const rows = await db.all<{ f: string; n: bigint }>(
          `SELECT t.${FILE_COL} AS f, count(*) AS n FROM ${target} t JOIN ${src} s ON ${onUpdate} GROUP BY 1`,
        );
        matchedFiles = rows.map((r) => r.f);
        updatedRows = rows.reduce((n, r) => n + Number(r.n), 0);
      }
      const localToFile = new Map<string, AddFile>();
      for (const f of allFiles) localToFile.set(await this.localFile(f.path), f);
      const removedFiles = matchedFiles.map((l) => localToFile.get(l)!);

      // Rows of the rewritten files: matched rows take the source's values, others are copied.
      const srcCols = new Set(incoming.map((c) => c.name.toLowerCase()));
      const postCols = schema.fields.map((f) => {
        const t = duckType(f.type);
        const inOld = !!findField(oldSchema, f.name);
        const fromSrc = srcCols.has(f.name.toLowerCase())
          ? `CAST(s.${ident(f.name)} AS ${t})`
          : inOld
            ? `CAST(t.${ident(f.name)} AS ${t})`
            : `CAST(NULL AS ${t})`;
        const fromT = inOld ? `CAST(t.${ident(f.name)} AS ${t})` : `CAST(NULL AS ${t})`;
        return { name: f.name, matched: fromSrc, copied: fromT };
      });
      const inFiles = `t.${FILE_COL} IN (${sqlList(matchedFiles)})`;
      const keyMarker = `s.__talon_matched`;
      const srcMarked = `(SELECT *, true AS __talon_matched FROM ${src})`;
      let rewritten: WrittenFile[] = [];
      let copiedRows = 0;
      if (matchedFiles.length > 0) {
        const rel =
          `SELECT ${postCols.map((c) => `CASE WHEN ${keyMarker} THEN ${c.matched} ELSE ${c.copied} END AS ${ident(c.name)}`).join(', ')} ` +
          `FROM ${targetFiles} t LEFT JOIN ${srcMarked} s ON ${onUpdate} WHERE ${inFiles}`;
        const cols = await db.columns(rel);
        rewritten = await this.write(state, schema, rel, cols);
        copiedRows = rewritten.reduce((n, f) => n + f.numRecords, 0) - updatedRows;
      }
      let inserted: WrittenFile[] = [];
      let insertedRows = 0;
      const insertRel =
        allFiles.length > 0
          ? `SELECT s.* FROM ${src} s WHERE NOT EXISTS (SELECT 1 FROM ${target} t WHERE ${on})`
          : `SELECT * FROM ${src}`;
      if (spec.whenNotMatched === 'insert') {
        inserted = await this.write(state, schema, insertRel, incoming);
        insertedRows = inserted.reduce((n, f) => n + f.numRecords, 0);
      }
      const cdc: CdcAction[] = [];
      if (cdfEnabled(state.metaData) && matchedFiles.length > 0) {
        const pre = `SELECT ${postCols.map((c) => `${c.copied} AS ${ident(c.name)}`).join(', ')}, 'update_preimage' AS _change_type FROM ${target} t JOIN ${src} s ON ${onUpdate}`;
        const post = `SELECT ${postCols.map((c) => `${c.matched} AS ${ident(c.name)}`).join(', ')}, 'update_postimage' AS _change_type FROM ${target} t JOIN ${src} s ON ${onUpdate}`;
        const parts = [pre, post];
        if (spec.whenNotMatched === 'insert') {
          parts.push(
            `SELECT ${schema.fields.map((f) => (srcCols.has(f.name.toLowerCase()) ? `CAST(s.${ident(f.name)} AS ${duckType(f.type)})` : `CAST(NULL AS ${duckType(f.type)})`) + ' AS ' + ident(f.name)).join(', ')}, 'insert' AS _change_type FROM (${insertRel}) s`,
          );
        }
        cdc.push(...(await this.writeCdc(state, schema, parts.join(' UNION ALL '))));
      }
      const now = Date.now();
      return await this.commit({
        operation: 'MERGE',
        operationParameters: {
          predicate: JSON.stringify([
            ...spec.on.map((k) => `t.${k} = s.${k}`),
            ...(spec.targetFilter ? [spec.targetFilter] : []),
          ]),
          whenMatched: spec.whenMatched,
          ...(spec.whenMatchedIf ? { whenMatchedIf: spec.whenMatchedIf } : {}),
          whenNotMatched: spec.whenNotMatched,
        },
        metrics: {
          numSourceRows: srcRows,
          numTargetRowsUpdated: updatedRows,
          numTargetRowsInserted: insertedRows,
          numTargetRowsCopied: Math.max(0, copiedRows),
          numTargetFilesRemoved: removedFiles.length,
          numTargetFilesAdded: rewritten.length + inserted.length,
          numTargetChangeFilesAdded: cdc.length,
          numOutputRows: insertedRows + updatedRows + Math.max(0, copiedRows),
        },
        readVersion: state.version,
        actions: [
          ...(metaData ? [{ metaData }] : []),
          ...removedFiles.map((f) => ({ remove: removeOf(f, now) })),
          ...[...rewritten, ...inserted].map((f) => ({ add: cleanAdd(f) })),
          ...cdc.map((c) => ({ cdc: c })),
        ],
        readFiles: new Set(allFiles.map((f) => f.path)),
        readPredicate: judge ?? 'all',
        isBlindAppend: false,
        newFiles: [...rewritten, ...inserted, ...cdc].map((f) => f.path),
        opts,
      });
    } finally {
      await db.run(`DROP TABLE IF EXISTS ${src}`);
    }
  }

  /**
   * Rows changed in versions (fromVersion, toVersion] — exclusive start, inclusive end —
   * as a DuckDB table expression with the table's columns plus `_change_type`,
   * `_commit_version`, `_commit_timestamp`. Default toVersion: latest.
   *
   * A version with `cdc` actions is read from its change data files only; otherwise its
   * data-changing adds are inserts and its data-changing removes are deletes (every row of
   * the removed file). Tables without delta.enableChangeDataFeed are read the same way, so
   * a row rewritten by Talon's copy-on-write there shows up as a delete and an insert.
   */
  async changes(fromVersion: number, toVersion?: number): Promise<string> {
    const listing = await this.log.list();
    const to = toVersion ?? listing.latest;
    if (fromVersion < -1) throw new Error(`changes: fromVersion must be >= -1 (got ${fromVersion})`);
    if (to > listing.latest)
      throw new Error(`changes: version ${to} does not exist (latest is ${listing.latest})`);
    const state = await this.state(to, listing);
    checkReadable(this.key, state.protocol, state.metaData);
    const schema = tableSchema(state.metaData);
    const parts = state.metaData.partitionColumns ?? [];
    const constCols = [
      { name: '_change_type', type: 'VARCHAR' },
      { name: '_commit_version', type: 'BIGINT' },
      { name: '_commit_timestamp', type: 'TIMESTAMP WITH TIME ZONE' },
    ];
    const groups: { cdc: boolean; files: ScanFile[]; paths: Set<string> }[] = [];
    const put = (cdc: boolean, file: ScanFile) => {
      let g = groups.find((x) => x.cdc === cdc && !x.paths.has(file.local));
      if (!g) groups.push((g = { cdc, files: [], paths: new Set() }));
      g.files.push(file);
      g.paths.add(file.local);
    };
    let baseFiles: Map<string, AddAction> | undefined;
    const known = new Map<string, AddAction>();
    for (let v = Math.max(0, fromVersion + 1); v <= to; v++) {
      const actions = await this.log.readCommit(v);
      if (!actions) throw new Error(`changes: commit ${v} of ${this.key} is missing from the log`);
      for (const a of actions)
        if (a.protocol) checkReadable(this.key, a.protocol, a.metaData ?? state.metaData);
      const ts = await this.log.commitTimestamp(v, listing.commits.get(v));
      const consts = (type: string) => ({
        _change_type: literal(type),
        _commit_version: `CAST(${v} AS BIGINT)`,
        _commit_timestamp: `CAST(epoch_ms(CAST(${ts} AS BIGINT)) AS TIMESTAMP WITH TIME ZONE)`,
      });
      const cdcs = actions.filter((a) => a.cdc).map((a) => a.cdc!);
      if (cdcs.length > 0) {
        for (const c of cdcs)
          put(true, {
            local: await this.localFile(c.path),
            partitionValues: c.partitionValues ?? {},
            consts: consts(''),
          });
      } else {
        for (const a of actions) {
          if (a.add?.dataChange) {
            known.set(a.add.path, a.add);
            put(false, {
              local: await this.localFile(a.add.path),
              partitionValues: a.add.partitionValues ?? {},
              consts: consts('insert'),
            });
          } else if (a.remove?.dataChange) {
            let pv = a.remove.partitionValues ?? undefined;
            if (!pv && parts.length > 0) {
              pv = known.get(a.remove.path)?.partitionValues;
              if (!pv) {
                baseFiles ??= fromVersion >= 0 ? (await this.log.loadState(fromVersion)).files : new Map();
                pv = [...baseFiles.values()].find((f) => f.path === a.remove!.path)?.partitionValues;
              }
            }
            put(false, {
              local: await this.localFile(a.remove.path),
              partitionValues: pv ?? {},
              consts: consts('delete'),
            });
          }
        }
      }
      for (const a of actions) if (a.add) known.set(a.add.path, a.add);
    }
    const exprs: string[] = [];
    for (const g of groups) {
      const sql = g.cdc
        ? await filesSql(this.lake.db, schema, parts, g.files, {
            fileCols: [constCols[0]],
            constCols: constCols.slice(1),
          })
        : await filesSql(this.lake.db, schema, parts, g.files, { constCols });
      exprs.push(`SELECT * FROM ${sql}`);
    }
    if (exprs.length === 0)
      exprs.push(`SELECT * FROM ${await filesSql(this.lake.db, schema, parts, [], { constCols })}`);
    return `(${exprs.join(' UNION ALL ')})`;
  }

  async history(limit?: number): Promise<HistoryEntry[]> {
    const listing = await this.log.list();
    const versions = [...listing.commits.keys()].sort((a, b) => b - a).slice(0, limit ?? Infinity);
    const out: HistoryEntry[] = [];
    for (const v of versions) {
      const actions = (await this.log.readCommit(v)) ?? [];
      const ci = actions.find((a) => a.commitInfo)?.commitInfo;
      const txns = actions
        .filter((a) => a.txn)
        .map((a) => ({ appId: a.txn!.appId, version: a.txn!.version }));
      out.push({
        version: v,
        timestamp: await this.log.commitTimestamp(v, listing.commits.get(v)),
        operation: ci?.operation,
        operationParameters: ci?.operationParameters,
        operationMetrics: ci?.operationMetrics,
        ...(txns.length ? { txn: txns } : {}),
      });
    }
    return out;
  }

  /**
   * Sets table properties (Delta `SET TBLPROPERTIES`: a commit with the new metaData), e.g.
   * `{'delta.setTransactionRetentionDuration': 'interval 30 days'}` on a table created without
   * it. Values already set leave the table unchanged (no commit). Retried when a concurrent
   * commit changed the metadata first.
   */
  async setProperties(properties: Record<string, string>): Promise<CommitResult> {
    for (let attempt = 0; ; attempt++) {
      const state = await this.writableState();
      const current = state.metaData.configuration ?? {};
      if (Object.entries(properties).every(([k, v]) => current[k] === v)) {
        return { version: state.version, skipped: false, metrics: {} };
      }
      const metaData: MetaDataAction = { ...state.metaData, configuration: { ...current, ...properties } };
      try {
        return await this.commit({
          operation: 'SET TBLPROPERTIES',
          operationParameters: { properties: JSON.stringify(properties) },
          metrics: {},
          readVersion: state.version,
          actions: [{ metaData }],
          isBlindAppend: false,
          newFiles: [],
          opts: {},
        });
      } catch (err) {
        if (!(err instanceof ConcurrentModificationError) || attempt >= 5) throw err;
      }
    }
  }

  /** Writes a checkpoint at the latest version (done automatically every 10 commits). */
  async checkpoint(): Promise<void> {
    const state = await this.state();
    checkReadable(this.key, state.protocol, state.metaData);
    await writeCheckpoint(this.lake.store, this.lake.db, `${this.key}/${LOG_DIR}`, state);
  }

  /** Compacts small files (per partition) into files of about `targetFileSize` bytes. */
  async optimize(
    opts: { targetFileSize?: number; where?: string; beforeCommit?: WriteOptions['beforeCommit'] } = {},
  ): Promise<CommitResult> {
    const state = await this.writableState();
    const target = opts.targetFileSize ?? 128 * 1024 * 1024;
    const snap = new DeltaSnapshot(this, state, 0);
    const candidates = snap.prune(opts.where).filter((f) => f.size < target);
    const byPartition = new Map<string, AddFile[]>();
    for (const f of candidates) {
      const k = JSON.stringify(Object.entries(f.partitionValues).sort());
      byPartition.set(k, [...(byPartition.get(k) ?? []), f]);
    }
    const bins: AddFile[][] = [];
    for (const files of byPartition.values()) {
      if (files.length < 2) continue;
      files.sort((a, b) => a.size - b.size);
      let bin: AddFile[] = [];
      let size = 0;
      for (const f of files) {
        if (bin.length > 0 && size + f.size > target) {
          bins.push(bin);
          bin = [];
          size = 0;
        }
        bin.push(f);
        size += f.size;
      }
      bins.push(bin);
    }
    const compact = bins.filter((b) => b.length > 1);
    if (compact.length === 0) {
      return { version: state.version, skipped: false, metrics: { numAddedFiles: 0, numRemovedFiles: 0 } };
    }
    const schema = tableSchema(state.metaData);
    const added: WrittenFile[] = [];
    const removed: AddFile[] = [];
    for (const bin of compact) {
      const rel = `SELECT * FROM ${await this.filesExpr(state, bin)}`;
      const cols = await this.lake.db.columns(rel);
      added.push(
        ...(await this.write(state, schema, rel, cols, { dataChange: false, fileSizeBytes: target * 4 })),
      );
      removed.push(...bin);
    }
    const now = Date.now();
    return this.commit({
      operation: 'OPTIMIZE',
      operationParameters: {
        predicate: JSON.stringify(opts.where ? [opts.where] : []),
        targetFileSize: String(target),
      },
      metrics: {
        numAddedFiles: added.length,
        numRemovedFiles: removed.length,
        numAddedBytes: added.reduce((n, f) => n + f.size, 0),
        numRemovedBytes: removed.reduce((n, f) => n + f.size, 0),
      },
      readVersion: state.version,
      actions: [
        ...removed.map((f) => ({ remove: removeOf(f, now, false) })),
        ...added.map((f) => ({ add: cleanAdd(f) })),
      ],
      readFiles: new Set(removed.map((f) => f.path)),
      isBlindAppend: false,
      newFiles: added.map((f) => f.path),
      opts: { beforeCommit: opts.beforeCommit },
    });
  }

  /**
   * Deletes files under the table that the latest snapshot does not use, and that are older
   * than the retention period (default: the table's `delta.deletedFileRetentionDuration`, else
   * 168 h) — data files of removed versions, change data files, leftovers of writers that
   * crashed before committing. A file removed by a commit within the retention period is kept
   * (time travel and running readers may still need it), and `_delta_log/` is never touched.
   *
   * A retention shorter than that default is refused unless `force` is set — Delta's
   * `retentionDurationCheck`: a short retention can delete files that a concurrent writer has
   * uploaded but not yet committed, or that a running reader's older snapshot still reads,
   * and break time travel to versions inside the window.
   */
  async vacuum(
    opts: { retentionHours?: number; dryRun?: boolean; force?: boolean } = {},
  ): Promise<{ deleted: string[] }> {
    const state = await this.writableState();
    const minimumMs = parseInterval(
      state.metaData.configuration?.['delta.deletedFileRetentionDuration'],
      DEFAULT_VACUUM_RETENTION_HOURS * MS_PER_HOUR,
    );
    const retentionMs = opts.retentionHours === undefined ? minimumMs : opts.retentionHours * MS_PER_HOUR;
    if (!Number.isFinite(retentionMs) || retentionMs < 0) {
      throw new Error(`${this.key}: vacuum retention must be a non-negative number of hours`);
    }
    if (retentionMs < minimumMs && !opts.force) {
      throw new VacuumRetentionError(this.key, retentionMs / MS_PER_HOUR, minimumMs / MS_PER_HOUR);
    }
    const cutoff = Date.now() - retentionMs;
    const keep = new Set<string>();
    for (const f of state.files.values()) keep.add(fromLogPath(f.path));
    for (const r of state.tombstones.values()) {
      if ((r.deletionTimestamp ?? 0) > cutoff) keep.add(fromLogPath(r.path));
    }
    const prefix = `${this.key}/`;
    const doomed: string[] = [];
    for await (const o of this.lake.store.list(prefix)) {
      const rel = o.key.slice(prefix.length);
      const first = rel.split('/')[0];
      if (first === LOG_DIR) continue;
      if ((first.startsWith('_') || first.startsWith('.')) && first !== '_change_data') continue;
      if (rel.split('/').some((seg) => seg.startsWith('.'))) continue;
      if (keep.has(rel)) continue;
      if (o.lastModified >= cutoff) continue;
      doomed.push(rel);
    }
    if (!opts.dryRun && doomed.length > 0) await this.lake.store.delete(doomed.map((r) => prefix + r));
    return { deleted: doomed };
  }

  // ------------------------------------------------------------------ internals

  private async writableState(): Promise<TableState> {
    const state = await this.state();
    checkWritable(this.key, state.protocol, state.metaData);
    return state;
  }

  /** Skip when every txn of the write is committed; refuse when only some are. */
  private txnSkip(state: TableState, opts: WriteOptions): CommitResult | undefined {
    const txns = writeTxns(this.key, opts);
    if (txns.length === 0) return undefined;
    const committed: { appId: string; version: number }[] = [];
    const pending: { appId: string; version: number }[] = [];
    for (const t of txns) {
      const done = state.txns.get(t.appId);
      if (done && done.version >= t.version) committed.push({ appId: t.appId, version: done.version });
      else pending.push(t);
    }
    if (pending.length === 0) return { version: state.version, skipped: true, metrics: {} };
    if (committed.length > 0) throw new PartialTxnError(this.key, committed, pending);
    return undefined;
  }

  /** The schema after writing `incoming` columns, and the new metaData when it changed. */
  private evolve(
    state: TableState,
    incoming: ColumnInfo[],
  ): { schema: StructType; metaData?: MetaDataAction } {
    const old = tableSchema(state.metaData);
    const schema = mergeSchema(old, columnsSchema(incoming));
    if (sameSchema(old, schema)) return { schema: old };
    return { schema, metaData: { ...state.metaData, schemaString: schemaString(schema) } };
  }

  private async write(
    state: TableState,
    schema: StructType,
    relation: string,
    incoming: ColumnInfo[],
    o: { dataChange?: boolean; fileSizeBytes?: number } = {},
  ): Promise<WrittenFile[]> {
    return writeRelation(
      {
        store: this.lake.store,
        db: this.lake.db,
        tableKey: this.key,
        schema,
        partitionColumns: state.metaData.partitionColumns ?? [],
        dataChange: o.dataChange ?? true,
        codec: state.metaData.configuration?.['delta.parquet.compression.codec'],
        fileSizeBytes: o.fileSizeBytes,
      },
      relation,
      incoming,
    );
  }

  private async writeCdc(state: TableState, schema: StructType, relation: string): Promise<CdcAction[]> {
    const cols = await this.lake.db.columns(relation);
    const files = await writeRelation(
      {
        store: this.lake.store,
        db: this.lake.db,
        tableKey: this.key,
        schema,
        partitionColumns: state.metaData.partitionColumns ?? [],
        dir: '_change_data',
        passThrough: ['_change_type'],
        dataChange: false,
        codec: state.metaData.configuration?.['delta.parquet.compression.codec'],
      },
      relation,
      cols,
    );
    return files.map((f) => ({
      path: f.path,
      partitionValues: f.partitionValues,
      size: f.size,
      dataChange: false,
    }));
  }

  /**
   * Rows of the files `predicate` touches: which files go, the query for the rows that stay
   * (copy-on-write), and the query for the rows that are deleted.
   */
  private async planDelete(
    state: TableState,
    predicate: string | undefined,
  ): Promise<{
    candidates: AddFile[];
    removed: AddFile[];
    keepRelation?: string;
    keepColumns?: ColumnInfo[];
    deletedRelation?: string;
    deletedRows: number;
    copiedRows: number;
  }> {
    const snap = new DeltaSnapshot(this, state, 0);
    const candidates = snap.prune(predicate);
    if (!predicate) {
      return { candidates, removed: candidates, deletedRows: snap.numRows ?? 0, copiedRows: 0 };
    }
    if (candidates.length === 0) return { candidates, removed: [], deletedRows: 0, copiedRows: 0 };
    const expr = await this.filesExpr(state, candidates, true);
    const hit = `coalesce((${predicate}), false)`;
    const counts = await this.lake.db.all<{ f: string; total: bigint; hit: bigint }>(
      `SELECT ${FILE_COL} AS f, count(*) AS total, count(*) FILTER (WHERE ${hit}) AS hit FROM ${expr} AS __talon_t GROUP BY 1`,
    );
    const localToFile = new Map<string, AddFile>();
    for (const f of candidates) localToFile.set(await this.localFile(f.path), f);
    const touched = counts.filter((c) => Number(c.hit) > 0);
    const partial = touched.filter((c) => Number(c.hit) < Number(c.total));
    const removed = touched.map((c) => localToFile.get(c.f)!);
    const deletedRows = touched.reduce((n, c) => n + Number(c.hit), 0);
    const copiedRows = partial.reduce((n, c) => n + Number(c.total) - Number(c.hit), 0);
    const schema = tableSchema(state.metaData);
    const cols = schema.fields.map((f) => ident(f.name)).join(', ');
    let keepRelation: string | undefined;
    let keepColumns: ColumnInfo[] | undefined;
    if (partial.length > 0) {
      keepRelation = `SELECT ${cols} FROM ${expr} AS __talon_t WHERE ${FILE_COL} IN (${sqlList(partial.map((p) => p.f))}) AND NOT ${hit}`;
      keepColumns = await this.lake.db.columns(keepRelation);
    }
    const deletedRelation = `(SELECT ${cols} FROM ${expr} AS __talon_t WHERE ${FILE_COL} IN (${sqlList(touched.map((p) => p.f))}) AND ${hit})`;
    return { candidates, removed, keepRelation, keepColumns, deletedRelation, deletedRows, copiedRows };
  }

  /** Commits a plan as the next version, retrying after concurrent commits that do not conflict. */
  private async commit(plan: CommitPlan): Promise<CommitResult> {
    let version = plan.readVersion + 1;
    let metaAction = plan.actions.find((a) => a.metaData)?.metaData;
    let current = await this.state(plan.readVersion);
    const txns = writeTxns(this.key, plan.opts);
    /** appIds of this write that concurrent winners committed (at a version ≥ ours) */
    const committedByWinners = new Map<string, number>();
    if (plan.opts.beforeCommit) await plan.opts.beforeCommit();
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const commitInfo: CommitInfoAction = {
        timestamp: Date.now(),
        operation: plan.operation,
        operationParameters: plan.operationParameters,
        readVersion: plan.readVersion,
        isolationLevel: 'Serializable',
        isBlindAppend: plan.isBlindAppend,
        operationMetrics: Object.fromEntries(Object.entries(plan.metrics).map(([k, v]) => [k, String(v)])),
        engineInfo: 'Talon',
        txnId: randomUUID(),
        ...(plan.opts.commitInfo ?? {}),
      };
      const protocol = metaAction ? this.protocolFor(current.protocol, metaAction) : undefined;
      const actions: Action[] = [
        { commitInfo },
        ...(protocol ? [{ protocol }] : []),
        ...(metaAction ? [{ metaData: metaAction }] : []),
        ...txns.map((t) => ({
          txn: { appId: t.appId, version: t.version, lastUpdated: commitInfo.timestamp },
        })),
        ...plan.actions.filter((a) => !a.metaData),
      ];
      if (process.env[CRASH_ENV]) {
        // Test hook: announce and wait to be killed (SIGKILL) with the data files uploaded.
        process.stdout.write(`talon-test: ready to commit ${this.key} v${version}\n`);
        await new Promise(() => setInterval(() => undefined, 1000));
      }
      if (await this.log.tryCommit(version, actions)) {
        await this.afterCommit(version, current);
        return { version, skipped: false, metrics: plan.metrics };
      }
      // Lost the race: judge every commit that got in first, then try the next version.
      const listing = await this.log.list();
      for (let w = version; w <= listing.latest; w++) {
        const winner = await this.log.readCommit(w);
        if (!winner) {
          // Cleaned up by log retention before this writer could judge it: assume the worst.
          throw new ConcurrentModificationError(
            `${this.key}: concurrent commit ${w} is no longer in the log; nothing was committed — retry the ${plan.operation}`,
          );
        }
        // Idempotence first: a winner that committed this write's txns makes it a replay.
        for (const a of winner) {
          const mine = a.txn && txns.find((t) => t.appId === a.txn!.appId);
          if (mine && a.txn!.version >= mine.version) committedByWinners.set(mine.appId, a.txn!.version);
        }
        if (txns.length > 0 && committedByWinners.size === txns.length) {
          await this.lake.store.delete(plan.newFiles.map((p) => `${this.key}/${fromLogPath(p)}`));
          return { version: listing.latest, skipped: true, metrics: {} };
        }
        const outcome = this.judgeWinner(plan, winner, w, metaAction);
        if (outcome && typeof outcome === 'object') metaAction = outcome.metaData;
        else if (outcome === 'dropMeta') metaAction = undefined;
      }
      if (committedByWinners.size > 0) {
        await this.lake.store.delete(plan.newFiles.map((p) => `${this.key}/${fromLogPath(p)}`));
        throw new PartialTxnError(
          this.key,
          [...committedByWinners].map(([appId, version]) => ({ appId, version })),
          txns.filter((t) => !committedByWinners.has(t.appId)),
        );
      }
      current = await this.state(listing.latest, listing);
      checkWritable(this.key, current.protocol, current.metaData);
      version = listing.latest + 1;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * Math.min(200, 5 * (attempt + 1)))));
    }
    throw new ConcurrentModificationError(
      `${this.key}: gave up committing ${plan.operation} after ${MAX_COMMIT_ATTEMPTS} attempts`,
    );
  }

  /**
   * Whether a concurrent winning commit invalidates this plan. Appends never conflict with
   * appends. A plan that read files conflicts with a winner that removed any of them, or that
   * added data its predicate could match. Metadata changes conflict, except under a blind
   * append whose columns still fit (then the append is rebased onto the new schema).
   */
  private judgeWinner(
    plan: CommitPlan,
    winner: Action[],
    w: number,
    metaAction: MetaDataAction | undefined,
  ): 'dropMeta' | { metaData: MetaDataAction } | undefined {
    const op =
      (winner.find((a) => a.commitInfo)?.commitInfo?.operation as string | undefined) ?? 'unknown operation';
    const why = (what: string) =>
      new ConcurrentModificationError(
        `${this.key}: ${plan.operation} read version ${plan.readVersion}, but concurrent commit ${w} (${op}) ${what}; nothing was committed — retry the ${plan.operation}`,
      );
    let result: 'dropMeta' | { metaData: MetaDataAction } | undefined;
    const wm = winner.find((a) => a.metaData)?.metaData;
    if (wm) {
      if (!plan.isBlindAppend || !plan.appendSchema) throw why('changed the table metadata');
      const winnerSchema = tableSchema(wm);
      let merged: StructType;
      try {
        merged = mergeSchema(winnerSchema, plan.appendSchema);
      } catch (err) {
        throw why(`changed the schema incompatibly with this write (${(err as Error).message})`);
      }
      if (
        JSON.stringify(wm.partitionColumns ?? []) !==
        JSON.stringify(metaAction?.partitionColumns ?? wm.partitionColumns ?? [])
      ) {
        throw why('changed the partition columns');
      }
      result = sameSchema(merged, winnerSchema)
        ? 'dropMeta'
        : { metaData: { ...wm, schemaString: schemaString(merged) } };
    }
    if (plan.readFiles && plan.readFiles.size > 0) {
      for (const a of winner) {
        if (a.remove && plan.readFiles.has(a.remove.path))
          throw why(`removed the file ${a.remove.path} it read`);
      }
    }
    if (plan.readPredicate) {
      for (const a of winner) {
        if (a.add?.dataChange && (plan.readPredicate === 'all' || plan.readPredicate.mayMatch(a.add))) {
          throw why(`added data (${a.add.path}) that this operation should have seen`);
        }
      }
    }
    return result;
  }

  /** The protocol a metaData change needs (CDF → writer 4; timestamp_ntz → 3/7 features), if higher. */
  private protocolFor(current: ProtocolAction, md: MetaDataAction): ProtocolAction | undefined {
    const schema = tableSchema(md);
    const ntz = schema.fields.some((f) => hasType(f.type, 'timestamp_ntz'));
    const cdf = cdfEnabled(md);
    if (current.minWriterVersion === 7) {
      const wf = new Set(current.writerFeatures ?? []);
      const rf = new Set(current.readerFeatures ?? []);
      let changed = false;
      if (cdf && !wf.has('changeDataFeed')) {
        wf.add('changeDataFeed');
        changed = true;
      }
      if (ntz && !wf.has('timestampNtz')) {
        wf.add('timestampNtz');
        rf.add('timestampNtz');
        changed = true;
      }
      if (!changed) return undefined;
      return {
        minReaderVersion: rf.size ? 3 : current.minReaderVersion,
        minWriterVersion: 7,
        ...(rf.size ? { readerFeatures: [...rf] } : {}),
        writerFeatures: [...wf],
      };
    }
    if (ntz) {
      const wf = [
        'timestampNtz',
        ...(cdf || current.minWriterVersion >= 4 ? ['changeDataFeed'] : []),
        ...(current.minWriterVersion >= 2 ? ['appendOnly', 'invariants'] : []),
      ];
      return {
        minReaderVersion: 3,
        minWriterVersion: 7,
        readerFeatures: ['timestampNtz'],
        writerFeatures: wf,
      };
    }
    if (cdf && current.minWriterVersion < 4)
      return { minReaderVersion: current.minReaderVersion, minWriterVersion: 4 };
    return undefined;
  }

  private async afterCommit(version: number, readState: TableState): Promise<void> {
    const interval = Number(
      readState.metaData.configuration?.['delta.checkpointInterval'] ?? DEFAULT_CHECKPOINT_INTERVAL,
    );
    if (version > 0 && Number.isFinite(interval) && interval > 0 && version % interval === 0) {
      try {
        const state = await this.state(version);
        await writeCheckpoint(this.lake.store, this.lake.db, `${this.key}/${LOG_DIR}`, state);
        await cleanupExpiredLogs(this.log, state);
      } catch (err) {
        // A checkpoint only speeds up reads; the commit stands without it.
        process.emitWarning(
          `checkpoint of ${this.key} at version ${version} failed: ${(err as Error).message}`,
        );
      }
    }
  }

  /** Commits version 0 (protocol + metaData). False when the table already exists. */
  async create(displayName: string, spec: TableSpec): Promise<boolean> {
    const schema = spec.schema ?? emptySchema();
    const partitionColumns = spec.partitionColumns ?? [];
    for (const p of partitionColumns) {
      if (spec.schema && !findField(schema, p))
        throw new Error(`partition column ${JSON.stringify(p)} is not in the schema of ${displayName}`);
    }
    const partitionFields = partitionColumns.filter((p) => !findField(schema, p));
    if (partitionFields.length > 0 && spec.schema)
      throw new Error(`partition columns missing from schema: ${partitionFields.join(', ')}`);
    const metaData: MetaDataAction = {
      id: randomUUID(),
      name: spec.displayName ?? displayName,
      ...(spec.description ? { description: spec.description } : {}),
      format: { provider: 'parquet', options: {} },
      schemaString: schemaString(schema),
      partitionColumns,
      configuration: { ...(spec.properties ?? {}) },
      createdTime: Date.now(),
    };
    const protocol = this.protocolFor({ minReaderVersion: 1, minWriterVersion: 2 }, metaData) ?? {
      minReaderVersion: 1,
      minWriterVersion: 2,
    };
    const actions: Action[] = [
      {
        commitInfo: {
          timestamp: Date.now(),
          operation: 'CREATE TABLE',
          operationParameters: {
            partitionBy: JSON.stringify(partitionColumns),
            properties: JSON.stringify(metaData.configuration),
          },
          isBlindAppend: true,
          engineInfo: 'Talon',
          txnId: randomUUID(),
        },
      },
      { protocol },
      { metaData },
    ];
    return this.log.tryCommit(0, actions);
  }
}

function columnsSchema(cols: ColumnInfo[]): StructType {
  return { type: 'struct', fields: cols.map((c) => field(c.name, deltaTypeOfDuck(c.type, c.name))) };
}

/** An add action without Talon's bookkeeping fields. */
function cleanAdd(f: WrittenFile): AddAction {
  return {
    path: f.path,
    partitionValues: f.partitionValues,
    size: f.size,
    modificationTime: f.modificationTime,
    dataChange: f.dataChange,
    ...(f.stats ? { stats: f.stats } : {}),
  };
}

function removeOf(f: AddFile, now: number, dataChange = true): RemoveAction {
  return {
    path: f.path,
    deletionTimestamp: now,
    dataChange,
    extendedFileMetadata: true,
    partitionValues: f.partitionValues,
    size: f.size,
    ...(f.stats ? { stats: f.stats } : {}),
  };
}

/** Columns of the old schema selected as the (evolved) new schema's columns. */
function schemaSelect(old: StructType, schema: StructType): string {
  return schema.fields
    .map((f) =>
      findField(old, f.name)
        ? `CAST(${ident(f.name)} AS ${duckType(f.type)}) AS ${ident(f.name)}`
        : `CAST(NULL AS ${duckType(f.type)}) AS ${ident(f.name)}`,
    )
    .join(', ');
}

/** The rows of `data` with exactly the schema's columns (missing ones NULL). */
function dataAsSchema(data: string, incoming: ColumnInfo[], schema: StructType): string {
  const have = new Set(incoming.map((c) => c.name.toLowerCase()));
  const cols = schema.fields.map((f) =>
    have.has(f.name.toLowerCase())
      ? `CAST(${ident(f.name)} AS ${duckType(f.type)}) AS ${ident(f.name)}`
      : `CAST(NULL AS ${duckType(f.type)}) AS ${ident(f.name)}`,
  );
  return `SELECT ${cols.join(', ')} FROM (${data}) AS __talon_d`;
}
