/**
 * The `iocs` table: one row per (ioc_type, ioc), as the seed's `cyber.iocs`:
 * dataset, ioc, ioc_type, ioc_id, first_seen, last_seen, description, loaded_at.
 *
 * Values are canonical so the IoC join is a plain equality: hashes, host and domain names
 * lower-case (trailing dot removed), everything trimmed. The same normalization is applied to
 * event values at match time (normalizedIocSql).
 */
import type { Lake } from '../lake/lake.js';
import type { CommitResult } from '../lake/table.js';
import { literal } from '../sql/duckdb.js';

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

/**
 * MERGEs normalized IoC rows (columns: dataset, ioc, ioc_type, ioc_id, first_seen, last_seen,
 * description) into `iocs` on (ioc_type, ioc): first_seen keeps the earliest, last_seen the
 * latest (NULL = still active wins), the other fields take the newest load.
 */
export async function mergeIocs(lake: Lake, relation: string, loadId?: string): Promise<CommitResult> {
  const db = lake.db;
  await db.run(`CREATE OR REPLACE TEMP TABLE __talon_ioc_load AS
    SELECT * FROM (
      SELECT CAST(dataset AS VARCHAR) AS dataset,
             CAST(ioc AS VARCHAR) AS ioc,
             CAST(ioc_type AS VARCHAR) AS ioc_type,
             CAST(ioc_id AS VARCHAR) AS ioc_id,
             CAST(first_seen AS TIMESTAMP) AS first_seen,
             CAST(last_seen AS TIMESTAMP) AS last_seen,
             CAST(description AS VARCHAR) AS description
      FROM (${relation}))
    WHERE ioc IS NOT NULL AND ioc_type IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY ioc_type, ioc ORDER BY first_seen NULLS LAST, dataset, ioc_id) = 1`);
  try {
    const table = await lake.table(IOCS_TABLE);
    const snap = table ? await table.snapshot() : undefined;
    const current =
      snap && snap.schema.fields.length > 0
        ? `(${await snap.scan()})`
        : `(SELECT * FROM __talon_ioc_load WHERE false)`;
    const source = `SELECT n.dataset, n.ioc, n.ioc_type, n.ioc_id,
        CASE WHEN c.ioc IS NULL THEN coalesce(n.first_seen, now()::TIMESTAMP)
             ELSE least(coalesce(n.first_seen, c.first_seen), coalesce(c.first_seen, n.first_seen)) END AS first_seen,
        CASE WHEN c.ioc IS NULL THEN n.last_seen
             WHEN n.last_seen IS NULL OR c.last_seen IS NULL THEN NULL
             ELSE greatest(n.last_seen, c.last_seen) END AS last_seen,
        n.description,
        now()::TIMESTAMP AS loaded_at
      FROM __talon_ioc_load n LEFT JOIN ${current} c ON c.ioc_type = n.ioc_type AND c.ioc = n.ioc`;
    const opts = loadId ? { txn: { appId: `intel:${loadId}`, version: 0 } } : {};
    if (!table || !snap || snap.schema.fields.length === 0) {
      const t =
        table ??
        (await lake.createTable(IOCS_TABLE, { properties: { 'delta.enableChangeDataFeed': 'true' } }));
      return await t.append(source, opts);
    }
    return await table.merge(
      source,
      { on: ['ioc_type', 'ioc'], whenMatched: 'update', whenNotMatched: 'insert' },
      opts,
    );
  } finally {
    await db.run('DROP TABLE IF EXISTS __talon_ioc_load');
  }
}
