/**
 * Per-file statistics (protocol "Per-file Statistics"), taken from the Parquet footer DuckDB
 * just wrote (`parquet_metadata`), so computing them never re-reads the data.
 *
 * Min/max are kept for numbers, strings, dates and timestamps, nested inside structs; arrays
 * and maps get none (like Spark). Strings are cut to a 32-character prefix for the minimum; a
 * maximum that would need cutting is left out (a cut max would be smaller than the real one).
 * Timestamps are truncated to milliseconds as the protocol says; readers therefore widen a
 * timestamp max by 1 ms when skipping.
 */
import { literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import type { DeltaType, StructField } from './table.js';

export interface FileStats {
  numRecords: number;
  minValues?: Record<string, unknown>;
  maxValues?: Record<string, unknown>;
  nullCount?: Record<string, unknown>;
  tightBounds?: boolean;
}

const STRING_PREFIX = 32;

interface LeafStat {
  min?: unknown;
  max?: unknown;
  nulls: number;
  minOk: boolean;
  maxOk: boolean;
}

/** Stats for each local Parquet file, keyed by path. `fields` are the columns written to the files. */
export async function parquetStats(
  db: Db,
  files: string[],
  fields: StructField[],
): Promise<Map<string, FileStats>> {
  const out = new Map<string, FileStats>();
  if (files.length === 0) return out;
  const rows = await db.all<{
    file_name: string;
    row_group_id: bigint;
    row_group_num_rows: bigint;
    path_in_schema: string;
    stats_min_value: string | null;
    stats_max_value: string | null;
    stats_null_count: bigint | null;
    max_is_exact: boolean | null;
  }>(
    `SELECT file_name, row_group_id, row_group_num_rows, path_in_schema, stats_min_value, stats_max_value,
            stats_null_count, max_is_exact
       FROM parquet_metadata([${files.map(literal).join(', ')}])`,
  );
  const leaves = new Map<string, DeltaType>();
  collectLeaves(fields, [], leaves);
  const perFile = new Map<string, { groups: Map<string, number>; leaf: Map<string, LeafStat> }>();
  for (const r of rows) {
    let f = perFile.get(r.file_name);
    if (!f) perFile.set(r.file_name, (f = { groups: new Map(), leaf: new Map() }));
    f.groups.set(String(r.row_group_id), Number(r.row_group_num_rows));
    const type = leaves.get(r.path_in_schema);
    if (type === undefined) continue;
    const nulls = r.stats_null_count === null ? NaN : Number(r.stats_null_count);
    const min = r.stats_min_value === null ? undefined : statValue(type, r.stats_min_value, 'min', true);
    const max =
      r.stats_max_value === null
        ? undefined
        : statValue(type, r.stats_max_value, 'max', r.max_is_exact !== false);
    const prev = f.leaf.get(r.path_in_schema);
    if (!prev) {
      f.leaf.set(r.path_in_schema, { min, max, nulls, minOk: true, maxOk: true });
      continue;
    }
    prev.nulls += nulls;
    prev.min = pick(prev.min, min, -1);
    prev.max = pick(prev.max, max, 1);
  }
  for (const file of files) {
    const f = perFile.get(file);
    let numRecords = 0;
    f?.groups.forEach((n) => (numRecords += n));
    const stats: FileStats = { numRecords, minValues: {}, maxValues: {}, nullCount: {} };
    if (f) {
      for (const [p, s] of f.leaf) {
        const pathParts = p.split(', ');
        const allNull = s.nulls === numRecords;
        if (!Number.isNaN(s.nulls)) setPath(stats.nullCount!, pathParts, s.nulls);
        if (allNull) continue;
        if (s.min !== undefined) setPath(stats.minValues!, pathParts, s.min);
        if (s.max !== undefined) setPath(stats.maxValues!, pathParts, s.max);
      }
    }
    out.set(file, stats);
  }
  return out;
}

/** Parquet leaf paths (`a, b` for struct a's field b) of columns that carry stats. */
function collectLeaves(fields: StructField[], prefix: string[], out: Map<string, DeltaType>): void {
  for (const f of fields) {
    const t = f.type;
    if (typeof t === 'string') out.set([...prefix, f.name].join(', '), t);
    else if (t.type === 'struct') collectLeaves(t.fields, [...prefix, f.name], out);
  }
}

function pick(a: unknown, b: unknown, dir: 1 | -1): unknown {
  if (a === undefined || b === undefined || a === null || b === null) return undefined;
  const x = a as number | string;
  const y = b as number | string;
  return (dir === 1 ? y > x : y < x) ? y : x;
}

function setPath(obj: Record<string, unknown>, parts: string[], v: unknown): void {
  let o = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = (o[parts[i]] ??= {}) as Record<string, unknown>;
    o = next;
  }
  o[parts[parts.length - 1]] = v;
}

/** DuckDB's text form of a Parquet min/max → the JSON value Delta stats use, or undefined. */
function statValue(type: DeltaType, text: string, which: 'min' | 'max', exact: boolean): unknown {
  if (typeof type !== 'string') return undefined;
  switch (type) {
    case 'long':
    case 'integer':
    case 'short':
    case 'byte': {
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : undefined;
    }
    case 'float':
    case 'double': {
      const n = Number(text);
      return Number.isFinite(n) ? n : undefined;
    }
    case 'string': {
      const chars = Array.from(text);
      if (which === 'min')
        return chars.length > STRING_PREFIX ? chars.slice(0, STRING_PREFIX).join('') : text;
      return exact && chars.length <= STRING_PREFIX ? text : undefined;
    }
    case 'date':
      return /^\d{4}-\d\d-\d\d$/.test(text) ? text : undefined;
    case 'timestamp':
    case 'timestamp_ntz': {
      const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))?(\+00(?::00)?)?$/.exec(text);
      if (!m) return undefined;
      const ms = (m[3] ?? '').padEnd(3, '0').slice(0, 3);
      return `${m[1]}T${m[2]}.${ms}${type === 'timestamp' ? 'Z' : ''}`;
    }
    default:
      if (type.startsWith('decimal')) {
        // Only decimals a double holds exactly enough to compare (≤ 15 significant digits).
        const n = Number(text);
        const digits = text.replace(/^-/, '').replace('.', '').replace(/^0+/, '').length;
        return Number.isFinite(n) && digits <= 15 ? n : undefined;
      }
      return undefined;
  }
}
