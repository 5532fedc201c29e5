/**
 * JS columns into a DuckDB temp table, a million rows at a time.
 *
 * Why not an appender or NDJSON: both cost per value (a native call per string, or a JSON
 * round trip). Here each varying column travels as ONE string — its values joined by U+001F —
 * and DuckDB splits it (`unnest(string_split(…))`, zipped across columns); a column whose
 * values are all equal travels as a single literal, and a column of few distinct values as
 * codes into a small dictionary. Values holding the separators are rare (control characters
 * in free text) and are detected by the row count and then sanitized (U+FFFD).
 */
import type { Db } from '../sql/duckdb.js';
import { ident, literal } from '../sql/duckdb.js';

export type ColumnType = 'VARCHAR' | 'TIMESTAMP' | 'DOUBLE' | 'BOOLEAN' | 'VARCHAR[]';

/** TIMESTAMP values are epoch milliseconds. */
export type ColumnValue = string | number | boolean | null | readonly string[];

export interface Column {
  name: string;
  type: ColumnType;
  /** The values, or the value of row i (no array of a million values for a constant column). */
  values: readonly ColumnValue[] | ((i: number) => ColumnValue);
  /** Set when every row is known to hold this value: `values` is then not read at all. */
  constant?: ColumnValue;
}

const SEP = '\x1f';
const ITEM_SEP = '\x1e';
/** A VARCHAR value that stands for NULL (a value equal to it is sent as U+FFFD). */
const NULL_MARK = '\x1e';
// eslint-disable-next-line no-control-regex -- the separators are control characters on purpose
const SEPARATORS = /[\x1e\x1f]/g;
const MAX_DICTIONARY = 64;

function sqlConstant(type: ColumnType, v: ColumnValue): string {
  if (v === null || v === undefined) return `CAST(NULL AS ${type})`;
  switch (type) {
    case 'VARCHAR':
      return `CAST(${literal(String(v))} AS VARCHAR)`;
    case 'TIMESTAMP':
      return `epoch_ms(CAST(${Number(v)} AS BIGINT))`;
    case 'DOUBLE':
      return `CAST(${Number(v)} AS DOUBLE)`;
    case 'BOOLEAN':
      return v ? 'true' : 'false';
    case 'VARCHAR[]':
      return `CAST([${(v as readonly string[]).map(literal).join(', ')}] AS VARCHAR[])`;
  }
}

type Values = { length: number; at: (i: number) => ColumnValue };

function valuesOf(c: Column, rows: number): Values {
  const v = c.values;
  if (typeof v === 'function') return { length: rows, at: v };
  if (v.length !== rows) throw new Error(`column ${c.name}: ${v.length} values, expected ${rows}`);
  return { length: rows, at: (i) => v[i] };
}

function constantOf(c: Column, vs: Values): { value: ColumnValue } | undefined {
  if (vs.length === 0) return { value: null };
  const first = vs.at(0);
  if (c.type === 'VARCHAR[]') {
    for (let i = 0; i < vs.length; i++) {
      const v = vs.at(i);
      if (v !== null && (v as readonly string[]).length > 0) return undefined;
    }
    return { value: first === null ? null : [] };
  }
  for (let i = 1; i < vs.length; i++) if (vs.at(i) !== first) return undefined;
  return { value: first };
}

function clean(s: string, sanitize: boolean): string {
  return sanitize ? s.replace(SEPARATORS, '\ufffd') : s;
}

/** One column as SQL: a constant, or an expression over `v` (the split text value). */
function encode(
  c: Column,
  vs: Values,
  sanitize: boolean,
): { constant: string } | { joined: string; expr: (v: string) => string } {
  const k = c.constant !== undefined ? { value: c.constant } : constantOf(c, vs);
  if (k) return { constant: sqlConstant(c.type, k.value) };
  const parts = new Array<string>(vs.length);
  switch (c.type) {
    case 'VARCHAR': {
      // Few distinct values (types, dataset names): codes into a dictionary.
      const dict = new Map<string, number>();
      let i = 0;
      for (; i < vs.length; i++) {
        const v = vs.at(i) as string | null;
        const key = v === null ? NULL_MARK : v;
        let code = dict.get(key);
        if (code === undefined) {
          if (dict.size >= MAX_DICTIONARY) break;
          code = dict.size;
          dict.set(key, code);
        }
        parts[i] = String(code);
      }
      if (i === vs.length) {
        const entries = [...dict.keys()].map((d) => (d === NULL_MARK ? 'NULL' : literal(d)));
        return {
          joined: parts.join(SEP),
          expr: (v) => `CAST([${entries.join(', ')}] AS VARCHAR[])[CAST(${v} AS INTEGER) + 1]`,
        };
      }
      for (let j = 0; j < vs.length; j++) {
        const v = vs.at(j) as string | null;
        parts[j] = v === null ? NULL_MARK : v === NULL_MARK ? '\ufffd' : clean(v, sanitize);
      }
      return { joined: parts.join(SEP), expr: (v) => `nullif(${v}, chr(30))` };
    }
    case 'TIMESTAMP':
      for (let j = 0; j < vs.length; j++) {
        const v = vs.at(j);
        parts[j] = v === null ? '' : String(v);
      }
      return { joined: parts.join(SEP), expr: (v) => `epoch_ms(CAST(nullif(${v}, '') AS BIGINT))` };
    case 'DOUBLE':
      for (let j = 0; j < vs.length; j++) {
        const v = vs.at(j);
        parts[j] = v === null ? '' : String(v);
      }
      return { joined: parts.join(SEP), expr: (v) => `CAST(nullif(${v}, '') AS DOUBLE)` };
    case 'BOOLEAN':
      for (let j = 0; j < vs.length; j++) {
        const v = vs.at(j);
        parts[j] = v === null ? '' : v ? '1' : '0';
      }
      return { joined: parts.join(SEP), expr: (v) => `CAST(nullif(${v}, '') AS BOOLEAN)` };
    case 'VARCHAR[]':
      for (let j = 0; j < vs.length; j++) {
        const v = vs.at(j) as readonly string[] | null;
        // Items are always sanitized: a separator inside a tag would split it silently.
        parts[j] = v === null ? NULL_MARK : v.map((x) => x.replace(SEPARATORS, '\ufffd')).join(ITEM_SEP);
      }
      return {
        joined: parts.join(SEP),
        expr: (v) =>
          `CASE WHEN ${v} = chr(30) THEN NULL WHEN ${v} = '' THEN CAST([] AS VARCHAR[]) ELSE string_split(${v}, chr(30)) END`,
      };
  }
}

async function build(
  db: Db,
  name: string,
  rows: number,
  columns: Column[],
  sanitize: boolean,
): Promise<void> {
  const params: string[] = [];
  const inner: string[] = [];
  const outer: string[] = [];
  for (const c of columns) {
    const e = encode(c, valuesOf(c, rows), sanitize);
    if ('constant' in e) {
      outer.push(`${e.constant} AS ${ident(c.name)}`);
    } else {
      params.push(e.joined);
      const v = `__c${params.length}`;
      inner.push(`unnest(string_split($${params.length}, chr(31))) AS ${v}`);
      outer.push(`${e.expr(v)} AS ${ident(c.name)}`);
    }
  }
  const from =
    rows === 0
      ? 'WHERE false'
      : inner.length > 0
        ? `FROM (SELECT ${inner.join(', ')})`
        : `FROM range(${rows})`;
  await db.run(`CREATE OR REPLACE TEMP TABLE ${ident(name)} AS SELECT ${outer.join(', ')} ${from}`, params);
}

/** Creates (or replaces) temp table `name` holding `rows` rows of `columns`. */
export async function createTempTable(db: Db, name: string, rows: number, columns: Column[]): Promise<void> {
  await build(db, name, rows, columns, false);
  const n = await db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${ident(name)}`);
  // A value holding U+001F splits into more rows than there are: build again, sanitized.
  if (Number(n[0].n) !== rows) await build(db, name, rows, columns, true);
}
