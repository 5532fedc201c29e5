/**
 * Writing keyed intel rows (iocs, ioc_sources) so that the cost follows what changed.
 *
 * The incoming rows (unique keys) are joined once with the table's current rows; each gets
 * its merged values (lifecycle rules given per column) and a `changed` mark. Then:
 * - a new or empty table: one append (no join at all);
 * - only new keys: one append — no MERGE, whose copy-on-write reads the whole table;
 * - some keys changed: one MERGE of the new and changed rows only;
 * - nothing new or changed (a feed delivering what is already stored): no commit.
 * The appends are not blind: they conflict with rows another writer added since the version
 * read, and the upsert is then redone (two overlapping loads never store a key twice).
 */
import type { Lake } from '../lake/lake.js';
import { ConcurrentModificationError, type CommitResult, type TableSpec } from '../lake/table.js';
import { ident, literal } from '../sql/duckdb.js';

export interface UpsertColumn {
  name: string;
  /** DuckDB type the column is written as. */
  type: string;
  /**
   * SQL for the row written when the key exists: over `n.` (incoming) and `c.` (current,
   * NULL when the column is not in the table yet). Default: the incoming value.
   */
  merged?: string;
  /** SQL for a new key (over `n.`). Default: the incoming value. */
  inserted?: string;
  /** Whether a difference in this column alone makes the row worth rewriting. Default true. */
  compare?: boolean;
}

export interface UpsertSpec {
  table: string;
  keys: string[];
  columns: UpsertColumn[];
  create: TableSpec;
}

export interface UpsertResult extends CommitResult {
  inserted: number;
  updated: number;
}

/** A TIMESTAMP literal (UTC) for SQL. */
export function timestampSql(d: Date): string {
  return `TIMESTAMP ${literal(d.toISOString().replace('T', ' ').replace('Z', ''))}`;
}

let seq = 0;

/** Attempts of an upsert whose insert raced another writer's (see `upsertOnce`). */
const UPSERT_ATTEMPTS = 5;

export async function upsertRows(
  lake: Lake,
  spec: UpsertSpec,
  relation: string,
  opts: UpsertOptions = {},
): Promise<UpsertResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await upsertOnce(lake, spec, relation, opts);
    } catch (err) {
      if (!(err instanceof ConcurrentModificationError) || attempt >= UPSERT_ATTEMPTS) throw err;
    }
  }
}

export interface UpsertOptions {
  /** Delta txn appId (version 0): a replay of the same load adds nothing. */
  appId?: string;
  /** Test hook: runs after the data files are written, before the commit. */
  beforeCommit?: () => Promise<void>;
}

/**
 * One attempt. New keys are found against the table at the version read and appended with
 * `readAt` that version: when another writer (a concurrent `intel load` of an overlapping feed)
 * added rows meanwhile, the append conflicts and the upsert starts again from the new version,
 * so a key is never stored twice.
 */
async function upsertOnce(
  lake: Lake,
  spec: UpsertSpec,
  relation: string,
  opts: UpsertOptions,
): Promise<UpsertResult> {
  const db = lake.db;
  const txn = {
    ...(opts.appId ? { txn: { appId: opts.appId, version: 0 } } : {}),
    ...(opts.beforeCommit ? { beforeCommit: opts.beforeCommit } : {}),
  };
  const table = await lake.table(spec.table);
  const snap = table ? await table.snapshot() : undefined;
  const cast = (sql: string, c: UpsertColumn) => `CAST(${sql} AS ${c.type}) AS ${ident(c.name)}`;
  if (!table || !snap || snap.schema.fields.length === 0) {
    const t = table ?? (await lake.createTable(spec.table, spec.create));
    const empty = snap?.version ?? (await t.snapshot()).version;
    const sel = spec.columns.map((c) => cast(c.inserted ?? `n.${ident(c.name)}`, c)).join(', ');
    const res = await t.append(`SELECT ${sel} FROM (${relation}) n`, { ...txn, readAt: empty });
    return { ...res, inserted: res.skipped ? 0 : (res.metrics.numOutputRows ?? 0), updated: 0 };
  }
  const present = new Set(snap.schema.fields.map((f) => f.name.toLowerCase()));
  const curCols = spec.columns.map((c) =>
    present.has(c.name.toLowerCase()) ? ident(c.name) : `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`,
  );
  const current = `(SELECT ${curCols.join(', ')} FROM ${await snap.scan()})`;
  const k0 = ident(spec.keys[0]);
  const on = spec.keys.map((k) => `c.${ident(k)} = n.${ident(k)}`).join(' AND ');
  const tmp = `__talon_upsert_${process.pid}_${++seq}`;
  const values = spec.columns.map((c) =>
    cast(
      `CASE WHEN c.${k0} IS NULL THEN ${c.inserted ?? `n.${ident(c.name)}`} ELSE ${c.merged ?? `n.${ident(c.name)}`} END`,
      c,
    ),
  );
  const diff = spec.columns
    .filter((c) => c.compare !== false)
    .map((c) => `m.${ident(c.name)} IS DISTINCT FROM m.${ident('__c_' + c.name)}`);
  await db.run(`CREATE OR REPLACE TEMP TABLE ${tmp} AS
    SELECT m.* EXCLUDE (${spec.columns.map((c) => ident('__c_' + c.name)).join(', ')}),
      m.__matched AND (${diff.join(' OR ') || 'false'}) AS __changed
    FROM (SELECT ${values.join(', ')},
        ${spec.columns.map((c) => `c.${ident(c.name)} AS ${ident('__c_' + c.name)}`).join(', ')},
        c.${k0} IS NOT NULL AS __matched
      FROM (${relation}) n LEFT JOIN ${current} c ON ${on}) m`);
  try {
    const counts = await db.all<{ ins: bigint; upd: bigint }>(
      `SELECT count(*) FILTER (WHERE NOT __matched) AS ins, count(*) FILTER (WHERE __changed) AS upd FROM ${tmp}`,
    );
    const inserted = Number(counts[0].ins);
    const updated = Number(counts[0].upd);
    const cols = spec.columns.map((c) => ident(c.name)).join(', ');
    if (inserted === 0 && updated === 0) {
      const done = opts.appId ? (await table.txnVersion(opts.appId)) !== undefined : false;
      return { version: snap.version, skipped: done, metrics: {}, inserted: 0, updated: 0 };
    }
    if (updated === 0) {
      const res = await table.append(`SELECT ${cols} FROM ${tmp} WHERE NOT __matched`, {
        ...txn,
        readAt: snap.version,
      });
      return { ...res, inserted: res.skipped ? 0 : inserted, updated: 0 };
    }
    const res = await table.merge(
      `SELECT ${cols} FROM ${tmp} WHERE NOT __matched OR __changed`,
      { on: spec.keys, whenMatched: 'update', whenNotMatched: 'insert' },
      txn,
    );
    return { ...res, inserted: res.skipped ? 0 : inserted, updated: res.skipped ? 0 : updated };
  } finally {
    await db.run(`DROP TABLE IF EXISTS ${tmp}`);
  }
}
