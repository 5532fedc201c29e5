/**
 * Routine upkeep of every table of a lake: compact small files, then delete the files no
 * version within the retention period uses — what Databricks runs as OPTIMIZE and VACUUM.
 *
 * A long-running Talon writes small files all the time: ingest one per partition and batch,
 * each detection batch one per sink, state tables a rewrite per batch. Without upkeep reads
 * slow down (thousands of tiny Parquet files per day) and removed files stay on disk forever.
 * `talon run` does this on a timer (config `maintenance`), `talon maintain` once (cron).
 *
 * Both steps are safe beside running writers and readers: OPTIMIZE commits with
 * dataChange = false (change-feed readers such as the detections skip it) and conflicts, like
 * any Delta commit, with a concurrent commit that removed the same files — that table is then
 * left for the next round; VACUUM keeps every file a version within the table's
 * `delta.deletedFileRetentionDuration` (default 7 days) still uses, and never forces a
 * shorter retention.
 */
import type { Lake } from './lake.js';

export interface MaintenanceOptions {
  /** Compact small files (default true). */
  optimize?: boolean;
  /** Delete unreferenced files older than each table's retention (default true). */
  vacuum?: boolean;
  /** Target size of a compacted file, bytes (default: DeltaTable.optimize's, 128 MiB). */
  targetFileSize?: number;
  /** Called after each table. */
  onTable?: (r: TableUpkeep) => void;
}

export interface TableUpkeep {
  table: string;
  /** small files replaced by `compactedInto` larger ones */
  compactedFiles: number;
  compactedInto: number;
  /** files deleted by vacuum */
  vacuumedFiles: number;
  /** what went wrong with this table (the others are still done) */
  error?: string;
}

/** Optimizes then vacuums every table of the lake; one table's failure does not stop the rest. */
export async function maintainLake(lake: Lake, opts: MaintenanceOptions = {}): Promise<TableUpkeep[]> {
  const out: TableUpkeep[] = [];
  for (const key of await lake.tableKeys()) {
    const r: TableUpkeep = { table: key, compactedFiles: 0, compactedInto: 0, vacuumedFiles: 0 };
    try {
      const table = await lake.table(key);
      if (!table) continue;
      if (opts.optimize ?? true) {
        const res = await table.optimize(
          opts.targetFileSize !== undefined ? { targetFileSize: opts.targetFileSize } : {},
        );
        r.compactedFiles = res.metrics.numRemovedFiles ?? 0;
        r.compactedInto = res.metrics.numAddedFiles ?? 0;
      }
      if (opts.vacuum ?? true) r.vacuumedFiles = (await table.vacuum()).deleted.length;
    } catch (err) {
      r.error = (err as Error).message;
    }
    out.push(r);
    opts.onTable?.(r);
  }
  return out;
}
