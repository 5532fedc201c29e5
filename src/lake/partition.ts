/**
 * Partition values and data file paths, as the Delta protocol and Hive conventions spell them.
 *
 * - `partitionValues` hold strings (protocol "Partition Value Serialization"); null is JSON null
 *   (an empty string also reads as null).
 * - Folders are `col=value` with Hive's escaping (`/` → `%2F`, …), null → `__HIVE_DEFAULT_PARTITION__`.
 * - `add.path` is a relative URI: the folder names are percent-encoded once more (`%2F` → `%252F`).
 */
import { literal } from '../sql/duckdb.js';
import { duckType } from './schema.js';
import type { DeltaType } from './table.js';

export const HIVE_NULL = '__HIVE_DEFAULT_PARTITION__';

/** Characters Hive/Spark escape in partition folder names (`ExternalCatalogUtils.escapePathName`). */
function needsEscape(code: number): boolean {
  if (code < 0x20 || code === 0x7f) return true;
  return '"#%\'*/:=?\\{[]^'.includes(String.fromCharCode(code));
}

export function escapePartitionValue(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    out += code < 0x80 && needsEscape(code) ? '%' + code.toString(16).toUpperCase().padStart(2, '0') : ch;
  }
  return out;
}

/** `a=1/b=x%2Fy` for the given partition columns (folder names on disk, not yet a URI). */
export function partitionFolder(columns: string[], values: Record<string, string | null>): string {
  return columns
    .map((c) => {
      const v = values[c];
      return `${escapePartitionValue(c)}=${v === null || v === undefined || v === '' ? HIVE_NULL : escapePartitionValue(v)}`;
    })
    .join('/');
}

/** Relative file name on disk → the URI form kept in `add.path`. */
export function toLogPath(relative: string): string {
  return relative
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/%3D/g, '=').replace(/%3A/g, ':').replace(/%40/g, '@'))
    .join('/');
}

/** `add.path` (a relative URI, or absolute `file:` URI) → the relative file name on disk. */
export function fromLogPath(p: string): string {
  return decodeURIComponent(p);
}

/** Serializes a partition value read from DuckDB as text (DuckDB's VARCHAR cast) into Delta's form. */
export function serializePartitionValue(type: DeltaType, duckText: string | null): string | null {
  if (duckText === null) return null;
  if (type === 'timestamp') {
    // DuckDB prints TIMESTAMPTZ as `2024-01-02 03:04:05.123456+00`; Delta recommends ISO-8601 UTC.
    const m = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:\+00(?::00)?)?$/.exec(duckText);
    if (m) return `${m[1]}T${m[2]}Z`;
  }
  return duckText;
}

/** The DuckDB SQL expression (a typed literal) for a serialized partition value. */
export function partitionLiteral(type: DeltaType, value: string | null | undefined): string {
  const t = duckType(type);
  if (value === null || value === undefined || value === '') return `CAST(NULL AS ${t})`;
  if (type === 'timestamp') {
    // Without a zone the value is in the writer's zone; Talon assumes UTC (Spark writes that way
    // when its session zone is UTC, and ISO values with `Z` are unambiguous).
    const v = value.replace('T', ' ').replace(/Z$/, '');
    return `CAST(CAST(${literal(v)} AS TIMESTAMP) AS ${t})`;
  }
  if (type === 'binary') return `CAST(${literal(value)} AS BLOB)`;
  return `CAST(${literal(value)} AS ${t})`;
}
