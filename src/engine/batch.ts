/**
 * One micro-batch of a query, as the transformation sees it: the new rows of each source
 * materialized as a DuckDB temp table, the snapshot tables at their planned versions, the
 * operator state of the previous batch, and counters that end up in the commit log.
 */
import { ident, literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import type { Lake } from '../lake/lake.js';
import type { CommitResult, DeltaTable, MergeSpec, Relation, TableSpec } from '../lake/table.js';
import type { BatchOffsets } from './checkpoint.js';
import type { QueryDefinition } from './query.js';
import { DEFAULT_ALLOWED_LATENESS_MS } from './query.js';
import { deltaSchemaOf } from './schema.js';

export function tableKey(name: string): string {
  return name.toLowerCase();
}

/**
 * Rows changed in versions (start, end] of a table. `start` -1 means from the table's very
 * first version.
 */
export async function readChanges(table: DeltaTable, start: number, end: number): Promise<string> {
  try {
    return await table.changes(start, end);
  } catch (err) {
    // A query started on a table whose early commits were cleaned up (log retention) cannot
    // replay its history; like Spark's Delta source it then starts from the snapshot at `end`.
    if (start >= 0) throw err;
    const snap = await table.snapshot({ version: end });
    return `(SELECT *, 'insert' AS _change_type, CAST(${end} AS BIGINT) AS _commit_version,
      CAST(epoch_ms(CAST(${snap.timestamp} AS BIGINT)) AS TIMESTAMP WITH TIME ZONE) AS _commit_timestamp
      FROM ${await snap.scan()})`;
  }
}

/** How withdrawn rows are found and marked (see `MicroBatch.retract`). */
export interface RetractSpec {
  /** Key columns identifying a row (a replacement from this batch has the same key). */
  on: string[];
  /** Column → SQL expression for withdrawn rows that are not replaced. */
  set: Record<string, string>;
}

/** Alerts: keyed by alert_id; a withdrawn alert is closed. */
export const RETRACT_ALERT: RetractSpec = { on: ['alert_id'], set: { status: "'closed'" } };

export class MicroBatch {
  readonly metrics: Record<string, number> = {};
  /** State to carry to the next batch; starts as the previous commit's state. */
  readonly state: Record<string, unknown>;
  private readonly sources = new Map<string, string>();
  private readonly temps: string[] = [];
  private readonly views: string[] = [];
  private readonly columnCache = new Map<string, Map<string, string>>();
  private readonly retractions = new Map<string, { predicates: string[]; how: RetractSpec }>();
  private seq = 0;

  constructor(
    readonly lake: Lake,
    readonly def: QueryDefinition,
    readonly offsets: BatchOffsets,
    readonly prevState: Record<string, unknown>,
    readonly replayed: boolean,
  ) {
    this.state = { ...prevState };
  }

  get db(): Db {
    return this.lake.db;
  }

  get id(): number {
    return this.offsets.batchId;
  }

  /** The batch's "now" (its planning time): a replay sees the same value. */
  get now(): Date {
    return new Date(this.offsets.plannedAt);
  }

  /** How far behind the watermark a row may arrive and still be processed (event time, ms). */
  get allowedLatenessMs(): number {
    return this.def.allowedLatenessMs ?? DEFAULT_ALLOWED_LATENESS_MS;
  }

  /**
   * Withdraws the rows of `table` matching `predicate` (SQL over the table's columns) in this
   * batch, before the sinks are written: a row whose key (`on`) this batch writes again to that
   * table is replaced by the new row; the others keep their place with the `set` columns
   * changed (e.g. an alert a late, earlier occurrence superseded becomes `status = 'closed'`,
   * so a notifier that sent it can send its resolution). Rows are never deleted: what was
   * delivered stays traceable. The write carries the txn `<query>:retract:<table>` = batch id.
   */
  retract(table: string, predicate: string, how: RetractSpec): void {
    const key = tableKey(table);
    let r = this.retractions.get(key);
    if (!r) this.retractions.set(key, (r = { predicates: [], how }));
    r.predicates.push(`(${predicate})`);
  }

  /** Retractions requested so far, by table key. */
  pendingRetractions(): [string, { predicates: string[]; how: RetractSpec }][] {
    return [...this.retractions.entries()];
  }

  /** SQL literal of `now` as a TIMESTAMP. */
  get nowSql(): string {
    return `TIMESTAMP ${literal(this.now.toISOString().replace('T', ' ').replace('Z', ''))}`;
  }

  private tempName(label: string): string {
    const q = this.def.id.replace(/[^A-Za-z0-9_]/g, '_');
    return `__talon_${q}_${this.id}_${this.seq++}_${label.replace(/[^A-Za-z0-9_]/g, '_')}`;
  }

  /** Materializes the batch rows of every source that exists. */
  async load(): Promise<void> {
    for (const src of this.def.sources) {
      const key = tableKey(src.table);
      const range = this.offsets.sources[key];
      if (!range || range.end < 0) continue;
      const table = await this.lake.table(key);
      if (!table) continue;
      const types = src.changeTypes ?? ['insert'];
      let expr: string;
      let known: string[] | undefined;
      if (range.end > range.start) {
        const changes = await readChanges(table, range.start, range.end);
        // The change feed's columns are the table's (at `end`) plus the three change columns:
        // known from the log, so no DESCRIBE round trip is needed to project or look them up.
        const fields = (await table.snapshot({ version: range.end })).schema.fields.map((f) => f.name);
        const cdfCols = ['_change_type', '_commit_version', '_commit_timestamp'];
        let have = [...fields, ...cdfCols];
        let select = '*';
        if (src.columns) {
          const wanted = new Set([...src.columns.map((c) => c.split('.')[0].toLowerCase()), ...cdfCols]);
          have = have.filter((c) => wanted.has(c.toLowerCase()));
          select = have.map((c) => ident(c)).join(', ');
        }
        known = have;
        expr = `SELECT ${select} FROM ${changes} WHERE _change_type IN (${types.map(literal).join(', ')})`;
      } else {
        const snap = await table.snapshot({ version: range.end });
        expr =
          `SELECT *, NULL::VARCHAR AS _change_type, NULL::BIGINT AS _commit_version, ` +
          `NULL::TIMESTAMP AS _commit_timestamp FROM ${await snap.scan()} LIMIT 0`;
      }
      // A view, not a copy: DuckDB fuses the read into whatever the transformation does with
      // it (explode, filter, join), reading only the columns it needs.
      const name = src.materialize ? await this.temp(key, expr) : await this.view(key, expr);
      this.sources.set(key, name);
      if (known) this.columnCache.set(name, new Map(known.map((c) => [c.toLowerCase(), c])));
      const planned = this.offsets.rows?.[key];
      this.metrics[`rows.${key}`] = planned ?? (await this.count(name));
    }
  }

  /** The relation (temp table) holding this batch's new rows of `table`; undefined when absent. */
  source(table: string): string | undefined {
    return this.sources.get(tableKey(table));
  }

  /** Sources that exist, by key, with their relations. */
  presentSources(): [string, string][] {
    return [...this.sources.entries()];
  }

  /** Columns of a relation: lower-cased name → actual name. */
  async columns(relation: string): Promise<Map<string, string>> {
    let m = this.columnCache.get(relation);
    if (!m) {
      const cols = await this.db.columns(`SELECT * FROM ${relation}`);
      m = new Map(cols.map((c) => [c.name.toLowerCase(), c.name]));
      this.columnCache.set(relation, m);
    }
    return m;
  }

  /** Creates a temp table for the rest of the batch; returns its (quoted) name. */
  async temp(label: string, sql: Relation): Promise<string> {
    const name = ident(this.tempName(label));
    await this.db.run(`CREATE OR REPLACE TEMP TABLE ${name} AS ${sql}`);
    this.temps.push(name);
    return name;
  }

  /** A temp table for the rest of the batch filled with rows computed in JS (see Db.tempTableFromRows). */
  async tempFromRows(
    label: string,
    columns: { name: string; type: 'VARCHAR' | 'BIGINT' }[],
    rows: (string | bigint | number | null)[][],
  ): Promise<string> {
    const raw = this.tempName(label);
    await this.db.tempTableFromRows(raw, columns, rows);
    const name = ident(raw);
    this.temps.push(name);
    return name;
  }

  /** Creates a temp view for the rest of the batch (re-evaluated by each reader); returns its name. */
  async view(label: string, sql: Relation): Promise<string> {
    const name = ident(this.tempName(label));
    await this.db.run(`CREATE OR REPLACE TEMP VIEW ${name} AS ${sql}`);
    this.views.push(name);
    return name;
  }

  async count(relation: string): Promise<number> {
    const rows = await this.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${relation}`);
    return Number(rows[0].n);
  }

  /** The planned version of a snapshot table (-1 when it did not exist). */
  snapshotVersion(table: string): number {
    const v = this.offsets.snapshots[tableKey(table)];
    return v === undefined ? -1 : v;
  }

  /** FROM-expression of a snapshot table at its planned version; undefined when it did not exist. */
  async snapshot(table: string, filter?: string): Promise<string | undefined> {
    const v = this.snapshotVersion(table);
    if (v < 0) return undefined;
    const t = await this.lake.table(tableKey(table));
    if (!t) return undefined;
    const snap = await t.snapshot({ version: v });
    if (snap.schema.fields.length === 0) return undefined;
    return `(${await snap.scan(filter)})`;
  }

  /**
   * Writes operator state (dedup keys …) for this batch, idempotently: txn appId
   * `<query>:state:<table>`, version = batch id. Readers of the state use the version planned
   * in the offsets, so a replay reads the state as it was before this batch.
   */
  async writeState(
    table: string,
    relation: Relation,
    how: { mode: 'overwrite' } | { mode: 'merge'; merge: MergeSpec } | { mode: 'append' },
    create: TableSpec = {},
  ): Promise<CommitResult> {
    const txn = { appId: `${this.def.id}:state:${tableKey(table)}`, version: this.id };
    return writeTable(this.lake, table, relation, how, create, txn);
  }

  async cleanup(): Promise<void> {
    for (const v of this.views.splice(0).reverse()) await this.db.run(`DROP VIEW IF EXISTS ${v}`);
    for (const t of this.temps.splice(0)) await this.db.run(`DROP TABLE IF EXISTS ${t}`);
  }
}

/**
 * Writes rows to a table with a txn, creating the table with the relation's schema when it
 * does not exist. A merge into a table without rows yet is an append (same result, and it
 * works before the table has a schema).
 */
export async function writeTable(
  lake: Lake,
  name: string,
  relation: Relation,
  how: { mode: 'overwrite' } | { mode: 'merge'; merge: MergeSpec } | { mode: 'append' },
  create: TableSpec,
  txn: { appId: string; version: number },
): Promise<CommitResult> {
  let table = await lake.table(name);
  if (!table) {
    const schema = create.schema ?? (await deltaSchemaOf(lake.db, relation));
    table = await lake.createTable(name, { ...create, schema });
  }
  const commitInfo = { talonQuery: txn.appId, talonBatch: txn.version };
  if (how.mode === 'overwrite') return table.overwrite(relation, { txn, commitInfo });
  if (how.mode === 'merge') {
    const snap = await table.snapshot();
    if (snap.schema.fields.length > 0) return table.merge(relation, how.merge, { txn, commitInfo });
    if (how.merge.whenNotMatched === 'ignore') return { version: snap.version, skipped: false, metrics: {} };
  }
  return table.append(relation, { txn, commitInfo });
}
