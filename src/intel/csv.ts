/**
 * Plain CSV IoC lists: a header with (at least) `ioc` and `ioc_type`, optionally dataset,
 * ioc_id, first_seen, last_seen, description — the layout `talon generate` writes to iocs.csv.
 * Times are ISO 8601 or epoch (seconds or milliseconds). Parsed by DuckDB's CSV reader.
 */
import { ident, literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import { normalizedIocByTypeSql } from './iocs.js';

function timeSql(col: string): string {
  const v = `nullif(trim(${col}), '')`;
  return `CASE
    WHEN ${v} IS NULL THEN NULL
    WHEN regexp_matches(${v}, '^\\d{12,}(\\.\\d+)?$') THEN make_timestamp(CAST(CAST(${v} AS DOUBLE) * 1000 AS BIGINT))
    WHEN regexp_matches(${v}, '^\\d{9,11}(\\.\\d+)?$') THEN make_timestamp(CAST(CAST(${v} AS DOUBLE) * 1000000 AS BIGINT))
    ELSE CAST(CAST(${v} AS TIMESTAMPTZ) AS TIMESTAMP) END`;
}

/**
 * A SQL relation over the CSV file with the iocs columns, values normalized. Throws naming
 * the missing column when the header lacks `ioc` or `ioc_type`.
 */
export async function csvIocsRelation(
  db: Db,
  file: string,
  defaults: { dataset?: string } = {},
): Promise<string> {
  const raw = `read_csv(${literal(file)}, header = true, all_varchar = true, auto_detect = true)`;
  const cols = new Map((await db.columns(`SELECT * FROM ${raw}`)).map((c) => [c.name.toLowerCase(), c.name]));
  for (const required of ['ioc', 'ioc_type']) {
    if (!cols.has(required)) {
      throw new Error(
        `${file}: CSV header has no '${required}' column (found: ${[...cols.values()].join(', ')})`,
      );
    }
  }
  const col = (name: string) => (cols.has(name) ? ident(cols.get(name)!) : 'NULL::VARCHAR');
  const parts = [
    `coalesce(nullif(trim(${col('dataset')}), ''), ${literal(defaults.dataset ?? 'csv')}) AS dataset`,
    `${normalizedIocByTypeSql(`trim(${col('ioc_type')})`, col('ioc'))} AS ioc`,
    `trim(${col('ioc_type')}) AS ioc_type`,
    `nullif(trim(${col('ioc_id')}), '') AS ioc_id`,
    `${timeSql(col('first_seen'))} AS first_seen`,
    `${timeSql(col('last_seen'))} AS last_seen`,
    `nullif(${col('description')}, '') AS description`,
  ];
  return `SELECT ${parts.join(', ')} FROM ${raw}`;
}
