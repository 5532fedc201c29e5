/** Test helper: an `iocs` table written directly, as the intel loader leaves it. */
import type { Lake } from '../lake/lake.js';
import { literal } from '../sql/duckdb.js';

const DEFAULT_FIRST_SEEN = Date.UTC(2025, 0, 1);

export interface IocRow {
  ioc: string;
  ioc_type: string;
  first_seen?: number;
  last_seen?: number | null;
  allow_listed?: boolean | null;
}

const ts = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? 'NULL::TIMESTAMP' : `make_timestamp(${ms * 1000})`;

/**
 * Writes rows into `iocs` directly (as the intel loader would after normalization), MERGEd on
 * (ioc_type, ioc) so a second call updates: the table has the change data feed on and an
 * `allow_listed` column unless `withAllowColumn` is false.
 */
export async function writeIocs(lake: Lake, rows: IocRow[], withAllowColumn = true): Promise<void> {
  const values = rows.map(
    (r, k) =>
      `('test', ${literal(r.ioc)}, ${literal(r.ioc_type)}, 'i${k}', ${ts(r.first_seen ?? DEFAULT_FIRST_SEEN)}, ` +
      `${ts(r.last_seen)}, 'test ioc'${withAllowColumn ? `, ${r.allow_listed === null || r.allow_listed === undefined ? 'NULL::BOOLEAN' : r.allow_listed}` : ''})`,
  );
  const cols = `dataset, ioc, ioc_type, ioc_id, first_seen, last_seen, description${withAllowColumn ? ', allow_listed' : ''}`;
  const rel = `SELECT * FROM (VALUES ${values.join(', ')}) v(${cols})`;
  const t = await lake.table('iocs');
  if (!t) {
    const created = await lake.createTable('iocs', { properties: { 'delta.enableChangeDataFeed': 'true' } });
    await created.append(rel);
  } else {
    await t.merge(rel, { on: ['ioc_type', 'ioc'], whenMatched: 'update', whenNotMatched: 'insert' });
  }
}
