/**
 * The contracts of the streaming engine, in one place.
 *
 * A query reads what is new in its source tables since its checkpoint (the Delta change feed
 * between two versions), hands that micro-batch to its transformation, and writes the
 * transformation's outputs to its sinks. Every sink write carries the Delta txn
 * `{appId: "<query>:<sink>", version: <batch id>}`, so a replayed batch adds nothing twice.
 */
import type { Db } from '../sql/duckdb.js';
import type { ChangeType, MergeSpec, Relation, TableSpec } from '../lake/table.js';
import type { MicroBatch } from './batch.js';

/** A stream source: a Delta table read incrementally. */
export interface SourceSpec {
  /** Table name (any case). */
  table: string;
  /** Which change rows form the batch; default `['insert']` (append-only event tables). */
  changeTypes?: ChangeType[];
  /**
   * Columns the transformation reads (any case; `a.b` means column `a`); default all. Only
   * these are read from the Parquet files — event tables are wide, detections need few.
   */
  columns?: string[];
  /**
   * Copy the batch rows into a temp table once (default: a view, re-read by each reader).
   * Worth it when the transformation reads the source several times (ioc_match explodes a
   * table once per mapped column).
   */
  materialize?: boolean;
  /**
   * The transformation cannot run without this table (a rule's SQL joins every source): no
   * batch is planned while it does not exist, so the other sources' rows wait for it instead
   * of being consumed unmatched. Default false (a missing source is simply empty).
   */
  required?: boolean;
}

/**
 * A sink: a Delta table written once per batch, idempotently.
 * - `append`: the rows are added;
 * - `merge`: MERGE on key columns (e.g. alerts on alert_id with whenMatched 'ignore').
 */
export interface SinkSpec {
  /** Key of the transformation's output that feeds this sink. */
  name: string;
  table: string;
  mode: 'append' | 'merge';
  merge?: MergeSpec;
  /** How the table is created when it does not exist yet (partitioning, CDF, …). */
  create?: TableSpec;
  /**
   * For a merge sink: computes, from the staged rows, a predicate over the target that every
   * row they can match satisfies (MergeSpec.targetFilter), so the merge reads only the files
   * that may hold such rows instead of the whole (ever growing) table.
   */
  mergeTargetFilter?: (db: Db, staged: string) => Promise<string | undefined>;
}

/** Rows of a transformation's output, per sink name; undefined or empty = nothing to write. */
export type BatchOutputs = Record<string, Relation | undefined>;

export interface QueryDefinition {
  /** Unique id; names the checkpoint folder and the txn appIds. */
  id: string;
  /**
   * Queries of a named lane run concurrently with the others (the unnamed lane), on their own
   * DuckDB connection, so on a multi-core machine one detection's work overlaps another's. A
   * lane's queries must not feed queries of other lanes through tables (within a lane they
   * run in definition order, as always).
   */
  lane?: string;
  description?: string;
  /** The detection this query belongs to (for `pipeline show`). */
  detection?: string;
  sources: SourceSpec[];
  /**
   * Tables read whole, as of the version current when the batch was planned (stream-static
   * joins, state tables). The version is recorded in the offsets so a replay reads the same.
   */
  snapshots?: string[];
  /** Snapshot tables the transformation cannot run without (no batch until they exist). */
  requiredSnapshots?: string[];
  /**
   * How late (in event time, behind the watermark) a row may arrive and still be processed by
   * the stateful operators (deduplication); older rows are dropped and counted. Default
   * DEFAULT_ALLOWED_LATENESS_MS.
   */
  allowedLatenessMs?: number;
  /** Tables holding operator state (dedup keys, watermarks), for `pipeline show`. */
  stateTables?: string[];
  /** Operator labels in order (union, filter, dedup(24h) …), for `pipeline show`. */
  operators?: string[];
  sinks: SinkSpec[];
  /** Maps the micro-batch to sink rows. Runs on the lake's DuckDB connection. */
  transform(batch: MicroBatch): Promise<BatchOutputs>;
}

/** FDR batches routinely arrive hours or days late and out of order: a week by default. */
export const DEFAULT_ALLOWED_LATENESS_MS = 7 * 24 * 3600_000;

export interface QueryOptions {
  /** At most this many Delta versions of one source per batch; default 1000. */
  maxVersionsPerBatch?: number;
  /** A batch spanning several versions is split until it has at most this many rows; default 2,000,000. */
  maxRowsPerBatch?: number;
  /**
   * Checkpoint files kept: the offsets and commit markers of the last N batches (default
   * 100, Spark's minBatchesToRetain; at least 2). Older ones are deleted as batches commit.
   */
  retainBatches?: number;
  /**
   * Auto-compaction: a table the query writes (sink or state) that has gathered this many
   * small files is compacted after the batch commits (default 50, as Databricks'
   * autoCompact; 0 = never). A MERGE sink reads the files its rows may match, so without it
   * a long-running query's merges slow down with every batch.
   */
  autoCompactFiles?: number;
  log?: (msg: string) => void;
}

export interface BatchReport {
  queryId: string;
  batchId: number;
  replayed: boolean;
  sources: Record<string, { start: number; end: number }>;
  metrics: Record<string, number>;
  ms: number;
}
