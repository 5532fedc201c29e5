/**
 * The `iocs` table: one row per (ioc_type, ioc), as the seed's `cyber.iocs`:
 * dataset, ioc, ioc_type, ioc_id, first_seen, last_seen, description, loaded_at, plus
 * allow_listed (true: the IoC matches the allow-list — kept, never alerts; NULL in rows
 * written before the column existed means false).
 *
 * Values are canonical so the IoC join is a plain equality: hashes, host and domain names
 * lower-case (trailing dot removed), everything trimmed. The same normalization is applied to
 * event values at match time (normalizedIocSql).
 *
 * Lifecycle on (ioc_type, ioc): first_seen keeps the earliest, last_seen (the end of the
 * matching window) the latest — NULL (never expires) wins; dataset, ioc_id, description and
 * allow_listed take the newest load. loaded_at is when the row last changed: a load that
 * brings nothing new for a row leaves it (and its file) alone.
 */
import type { Lake } from '../lake/lake.js';
import { literal } from '../sql/duckdb.js';
import type { AllowList } from './allowlist.js';
import { allowListChanges } from './allowlist.js';
import { createTempTable } from './columns.js';
import { timestampSql, upsertRows } from './upsert.js';
import type { UpsertResult, UpsertSpec } from './upsert.js';

export const IOCS_TABLE = 'iocs';

/** Types whose values compare case-insensitively. */
const CASE_INSENSITIVE = /^(FileHash-|hostname$|domain$|email$|IPv6$)/i;

/** SQL canonicalizing a value of an IoC type (the type known when the SQL is built). */
export function normalizedIocSql(iocType: string, valueSql: string): string {
  const trimmed = `nullif(trim(CAST(${valueSql} AS VARCHAR)), '')`;
  if (/^(hostname|domain)$/i.test(iocType)) return `rtrim(lower(${trimmed}), '.')`;
  if (CASE_INSENSITIVE.test(iocType)) return `lower(${trimmed})`;
  return trimmed;
}

/** The same, for a row whose type is a column (loading feeds with mixed types). */
export function normalizedIocByTypeSql(typeSql: string, valueSql: string): string {
  const trimmed = `nullif(trim(CAST(${valueSql} AS VARCHAR)), '')`;
  return `CASE
    WHEN lower(${typeSql}) IN ('hostname', 'domain') THEN rtrim(lower(${trimmed}), '.')
    WHEN regexp_matches(${typeSql}, ${literal(CASE_INSENSITIVE.source)}, 'i') THEN lower(${trimmed})
    ELSE ${trimmed} END`;
}

/** How `iocs` rows merge (see the module comment). */
export function iocsSpec(now: Date): UpsertSpec {
  const ts = timestampSql(now);
  return {
    table: IOCS_TABLE,
    keys: ['ioc_type', 'ioc'],
    // snappy: IoC files are rewritten by every changing load and read by every match; it
    // compresses and decompresses faster than the lake's default zstd.
    create: {
      properties: { 'delta.enableChangeDataFeed': 'true', 'delta.parquet.compression.codec': 'snappy' },
    },
    columns: [
      { name: 'dataset', type: 'VARCHAR' },
      { name: 'ioc', type: 'VARCHAR' },
      { name: 'ioc_type', type: 'VARCHAR' },
      { name: 'ioc_id', type: 'VARCHAR' },
      {
        name: 'first_seen',
        type: 'TIMESTAMP',
        inserted: `coalesce(n.first_seen, ${ts})`,
        merged: 'least(coalesce(n.first_seen, c.first_seen), coalesce(c.first_seen, n.first_seen))',
      },
      {
        name: 'last_seen',
        type: 'TIMESTAMP',
        merged:
          'CASE WHEN n.last_seen IS NULL OR c.last_seen IS NULL THEN NULL ELSE greatest(n.last_seen, c.last_seen) END',
      },
      { name: 'description', type: 'VARCHAR' },
      { name: 'loaded_at', type: 'TIMESTAMP', inserted: ts, merged: ts, compare: false },
      {
        // A load without flags (the iocs.csv loader) leaves existing flags as they are.
        name: 'allow_listed',
        type: 'BOOLEAN',
        inserted: 'coalesce(n.allow_listed, false)',
        merged: 'coalesce(n.allow_listed, c.allow_listed, false)',
      },
    ],
  };
}

/**
 * Writes IoC rows with unique (ioc_type, ioc) — columns dataset, ioc, ioc_type, ioc_id,
 * first_seen, last_seen, description, allow_listed (NULL: keep / false) — into `iocs`.
 */
export async function upsertIocs(
  lake: Lake,
  relation: string,
  opts: { appId?: string; now?: Date } = {},
): Promise<UpsertResult> {
  return upsertRows(lake, iocsSpec(opts.now ?? new Date()), relation, { appId: opts.appId });
}

/**
 * MERGEs normalized IoC rows (columns: dataset, ioc, ioc_type, ioc_id, first_seen, last_seen,
 * description, optionally allow_listed) into `iocs` on (ioc_type, ioc): several rows of one
 * key collapse to the earliest sighting; lifecycle as in the module comment. With `allowList`
 * the rows are flagged by it; without, new rows are not allow-listed and existing rows keep
 * their flag (the next feed load or pull reconciles them with the configured list).
 */
export async function mergeIocs(
  lake: Lake,
  relation: string,
  loadId?: string,
  opts: { allowList?: AllowList; now?: Date } = {},
): Promise<UpsertResult> {
  const db = lake.db;
  const hasFlag = (await db.columns(relation)).some((c) => c.name.toLowerCase() === 'allow_listed');
  const tmp = `__talon_ioc_load_${process.pid}`;
  await db.run(`CREATE OR REPLACE TEMP TABLE ${tmp} AS
    SELECT * FROM (
      SELECT CAST(dataset AS VARCHAR) AS dataset,
             CAST(ioc AS VARCHAR) AS ioc,
             CAST(ioc_type AS VARCHAR) AS ioc_type,
             CAST(ioc_id AS VARCHAR) AS ioc_id,
             CAST(first_seen AS TIMESTAMP) AS first_seen,
             CAST(last_seen AS TIMESTAMP) AS last_seen,
             CAST(description AS VARCHAR) AS description,
             ${hasFlag ? 'CAST(allow_listed AS BOOLEAN)' : 'CAST(NULL AS BOOLEAN)'} AS allow_listed
      FROM (${relation}))
    WHERE ioc IS NOT NULL AND ioc_type IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY ioc_type, ioc ORDER BY first_seen NULLS LAST, dataset, ioc_id) = 1`);
  try {
    if (opts.allowList && opts.allowList.size > 0) {
      const { set } = await allowListChanges(db, `SELECT * FROM ${tmp}`, opts.allowList);
      if (set.length > 0) await flagKeys(lake, tmp, set);
    }
    return await upsertIocs(lake, `SELECT * FROM ${tmp}`, {
      appId: loadId ? `intel:${loadId}` : undefined,
      now: opts.now,
    });
  } finally {
    await db.run(`DROP TABLE IF EXISTS ${tmp}`);
  }
}

/** Sets allow_listed = true on the given keys of a temp table. */
async function flagKeys(lake: Lake, tmp: string, keys: { ioc_type: string; ioc: string }[]): Promise<void> {
  const k = `${tmp}_keys`;
  await createTempTable(lake.db, k, keys.length, [
    { name: 'ioc_type', type: 'VARCHAR', values: keys.map((x) => x.ioc_type) },
    { name: 'ioc', type: 'VARCHAR', values: keys.map((x) => x.ioc) },
  ]);
  try {
    await lake.db.run(`UPDATE ${tmp} SET allow_listed = true
      WHERE EXISTS (SELECT 1 FROM ${k} k WHERE k.ioc_type = ${tmp}.ioc_type AND k.ioc = ${tmp}.ioc)`);
  } finally {
    await lake.db.run(`DROP TABLE IF EXISTS ${k}`);
  }
}
