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
import type { Lake } from './lake.js';

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
  /** Extra commitInfo fields (merged into the commit's commitInfo). */
  commitInfo?: Record<string, unknown>;
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
  /** For source rows without a match: insert them, or drop them. */
  whenNotMatched: 'insert' | 'ignore';
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

export class DeltaTable {
  constructor(
    readonly lake: Lake,
    /** lower-cased folder name under the lake root */
    readonly key: string,
  ) {}

  /** The display name (metaData.name, else the folder name). */
  async name(): Promise<string> {
    throw new Error('not implemented yet');
  }

  /** Latest version, a given version, or the last version committed at or before a timestamp (ms). */
  async snapshot(_at?: { version?: number; timestamp?: number }): Promise<Snapshot> {
    throw new Error('not implemented yet');
  }

  async latestVersion(): Promise<number> {
    throw new Error('not implemented yet');
  }

  async append(_data: Relation, _opts?: WriteOptions): Promise<CommitResult> {
    throw new Error('not implemented yet');
  }

  /** Replaces the whole table, or only the rows matching `where` (a SQL predicate). */
  async overwrite(_data: Relation, _opts?: WriteOptions & { where?: string }): Promise<CommitResult> {
    throw new Error('not implemented yet');
  }

  async deleteWhere(_predicate: string, _opts?: WriteOptions): Promise<CommitResult> {
    throw new Error('not implemented yet');
  }

  /** Copy-on-write MERGE of `source` into this table; writes cdc files when CDF is enabled. */
  async merge(_source: Relation, _spec: MergeSpec, _opts?: WriteOptions): Promise<CommitResult> {
    throw new Error('not implemented yet');
  }

  /** The last committed txn version of `appId`, or undefined. */
  async txnVersion(_appId: string): Promise<number | undefined> {
    throw new Error('not implemented yet');
  }

  /**
   * Rows changed in versions (fromVersion, toVersion] — exclusive start, inclusive end —
   * as a DuckDB table expression with the table's columns plus `_change_type`,
   * `_commit_version`, `_commit_timestamp`. Default toVersion: latest.
   */
  async changes(_fromVersion: number, _toVersion?: number): Promise<string> {
    throw new Error('not implemented yet');
  }

  async history(_limit?: number): Promise<HistoryEntry[]> {
    throw new Error('not implemented yet');
  }

  /** Writes a checkpoint at the latest version (done automatically every 10 commits). */
  async checkpoint(): Promise<void> {
    throw new Error('not implemented yet');
  }

  /** Compacts small files (per partition) into files of about `targetFileSize` bytes. */
  async optimize(_opts?: { targetFileSize?: number; where?: string }): Promise<CommitResult> {
    throw new Error('not implemented yet');
  }

  /** Deletes files no longer referenced and older than the retention period (default 168 h). */
  async vacuum(_opts?: { retentionHours?: number; dryRun?: boolean }): Promise<{ deleted: string[] }> {
    throw new Error('not implemented yet');
  }
}
