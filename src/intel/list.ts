/**
 * `talon intel list`: what is loaded, a page at a time. With a million IoCs the whole table
 * is never sent to the terminal: rows come ordered by (ioc_type, ioc) with a limit (default
 * 100) and an offset, DuckDB keeping only the top rows (no full sort), plus the total that
 * matches the filters so the caller can say "1–100 of 1,000,000".
 */
import type { Lake } from '../lake/lake.js';
import { literal } from '../sql/duckdb.js';
import { IOCS_TABLE } from './iocs.js';

export const LIST_COLUMNS = [
  'ioc_type',
  'ioc',
  'dataset',
  'ioc_id',
  'first_seen',
  'last_seen',
  'allow_listed',
  'description',
] as const;

export const DEFAULT_LIST_LIMIT = 100;

export interface ListOptions {
  /** Only this ioc_type. */
  type?: string;
  /** true: only allow-listed IoCs; false: only the others. */
  allowListed?: boolean;
  /** Only IoCs whose value contains this text (case-insensitive). */
  search?: string;
  /** Only IoCs still matching at `activeAt` (last_seen NULL or later). */
  activeAt?: Date;
  /** Rows per page (default 100; 0 = all). */
  limit?: number;
  offset?: number;
}

export interface IocPage {
  rows: Record<string, unknown>[];
  /** IoCs matching the filters (all pages). */
  total: number;
  offset: number;
}

export async function listIocs(lake: Lake, opts: ListOptions = {}): Promise<IocPage> {
  const offset = Math.max(0, Math.floor(opts.offset ?? 0));
  const limit = Math.max(0, Math.floor(opts.limit ?? DEFAULT_LIST_LIMIT));
  const table = await lake.table(IOCS_TABLE);
  const snap = table ? await table.snapshot() : undefined;
  if (!snap || snap.schema.fields.length === 0) return { rows: [], total: 0, offset };
  const has = new Set(snap.schema.fields.map((f) => f.name));
  // Tables written before the allow-list column existed: their rows are not allow-listed.
  const flag = has.has('allow_listed') ? 'coalesce(allow_listed, false)' : 'false';
  const where: string[] = [];
  if (opts.type) where.push(`ioc_type = ${literal(opts.type)}`);
  if (opts.allowListed !== undefined) where.push(opts.allowListed ? flag : `NOT ${flag}`);
  if (opts.search) where.push(`contains(lower(ioc), ${literal(opts.search.toLowerCase())})`);
  if (opts.activeAt)
    where.push(
      `(last_seen IS NULL OR last_seen >= TIMESTAMP ${literal(opts.activeAt.toISOString().replace('T', ' ').replace('Z', ''))})`,
    );
  const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
  // The type filter is an equality on a column with file stats: scan() prunes files by it.
  const scan = await snap.scan(opts.type ? `ioc_type = ${literal(opts.type)}` : undefined);
  const cols = LIST_COLUMNS.map((c) =>
    c === 'allow_listed' ? `${flag} AS allow_listed` : has.has(c) ? c : `NULL AS ${c}`,
  );
  const rows = await lake.db.allJson(
    `SELECT ${cols.join(', ')} FROM ${scan} ${filter} ORDER BY ioc_type, ioc
      ${limit > 0 ? `LIMIT ${limit}` : ''} OFFSET ${offset}`,
  );
  const n = await lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${scan} ${filter}`);
  return { rows, total: Number(n[0].n), offset };
}
