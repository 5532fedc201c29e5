/**
 * SQL over a set of a table's Parquet files: `read_parquet` of them, every column cast to the
 * table's type, columns a file lacks read as NULL. Partition values (which are not in the files)
 * come from the log's `partitionValues`, never from folder names alone, since other writers need
 * not use Hive-style folders. How they get into the rows decides the speed of every read:
 *
 * 1. All files share their partition (and constant) values: one `read_parquet` with the values
 *    as typed literals — as fast as plain Parquet, and DuckDB can count from metadata.
 * 2. Every file sits in Talon's Hive layout (`col=value/…`) and each folder name is exactly its
 *    `partitionValues` entry spelled so that DuckDB's Hive parsing can only read it back
 *    unchanged (no escapes, no null markers): one `read_parquet` with `hive_partitioning`, the
 *    folder values read as VARCHAR and cast like a partition literal. Per file, not per row.
 * 3. A few distinct partition value sets: `UNION ALL` of case 1 per set.
 * 4. Otherwise: one `read_parquet(filename = …)` joined to a VALUES list keyed by file name.
 *
 * Constant per-file columns (the change feed's `_commit_version`, …) are handled the same way:
 * files are first grouped by them.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { ident, literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import { HIVE_NULL, escapePartitionValue, partitionLiteral } from './partition.js';
import { duckType } from './schema.js';
import type { DeltaType, StructField, StructType } from './table.js';

export const FILE_COL = '__talon_file';

/**
 * Most `read_parquet` calls one expression unions before it joins instead. Each costs its own
 * bind and scan pipeline (~1 ms on a 2-core machine); the join costs per row. Measured on the
 * lake benchmark's files (one ~7k-row file per group, count + sum): union faster up to 4
 * groups (4.4 vs 6.8 ms), slower from 8 (10.9 vs 5.8 ms).
 */
export const UNION_MAX_GROUPS = 4;

export interface ScanFile {
  /** local path DuckDB reads */
  local: string;
  partitionValues: Record<string, string | null>;
  /** values (SQL expressions) of the constant columns, by name */
  consts?: Record<string, string>;
}

export interface ScanOptions {
  /** constant per-file columns (from ScanFile.consts), e.g. `_commit_version` */
  constCols?: { name: string; type: string }[];
  /** extra columns read from the files as they are, e.g. `_change_type` of cdc files */
  fileCols?: { name: string; type: string }[];
  /** expose the local file path as column `__talon_file` */
  withFile?: boolean;
  /** force a strategy (tests): `join` is the general fallback, `auto` the default choice */
  strategy?: 'auto' | 'join';
}

function pv(values: Record<string, string | null>, col: string): string | null | undefined {
  if (col in values) return values[col];
  const k = Object.keys(values).find((x) => x.toLowerCase() === col.toLowerCase());
  return k === undefined ? undefined : values[k];
}

/** Partition types whose literal is `CAST('<value>' AS <type>)` (see partitionLiteral). */
function hiveCastable(t: DeltaType): boolean {
  if (typeof t !== 'string') return false;
  return (
    ['string', 'long', 'integer', 'short', 'byte', 'float', 'double', 'boolean', 'date'].includes(t) ||
    /^decimal\(\d+,\s*\d+\)$/.test(t)
  );
}

/**
 * A folder key or value DuckDB's Hive parsing returns unchanged: it URL-decodes (`%`), reads
 * `NULL` and `__HIVE_DEFAULT_PARTITION__` as null, and splits on `/`, `\`, `=`, `?`. Empty
 * values are null in Delta but '' in DuckDB. Anything Talon would have escaped is out too.
 */
function hiveSafe(s: string): boolean {
  if (s === '' || s !== s.trim()) return false;
  if (s.toUpperCase() === 'NULL' || s === HIVE_NULL) return false;
  for (const ch of s) if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) return false;
  if (/[%/\\=?+]/.test(s)) return false;
  return escapePartitionValue(s) === s;
}

/**
 * The Hive keys of `file` (folder key by partition column, lower-cased) if its path is
 * `…/<col1>=<v1>/…/<colN>=<vN>/<name>` with exactly the log's partition values and no other
 * `=` anywhere in it (DuckDB would add any `k=v` folder as a column); undefined otherwise.
 */
function hiveKeys(file: ScanFile, partitionColumns: string[]): Map<string, string> | undefined {
  if (file.local.includes('\\') || file.local.includes('?')) return undefined;
  const segs = file.local.split('/');
  const name = segs.pop()!;
  if (name.includes('=') || segs.length < partitionColumns.length) return undefined;
  const tail = segs.splice(segs.length - partitionColumns.length);
  if (segs.some((s) => s.includes('='))) return undefined;
  const keys = new Map<string, string>();
  for (const [i, col] of partitionColumns.entries()) {
    const v = pv(file.partitionValues, col);
    if (typeof v !== 'string' || !hiveSafe(v)) return undefined;
    const seg = tail[i]!;
    const eq = seg.indexOf('=');
    const key = seg.slice(0, eq);
    if (key.toLowerCase() !== col.toLowerCase() || !hiveSafe(key) || seg.slice(eq + 1) !== v)
      return undefined;
    keys.set(col.toLowerCase(), key);
  }
  return keys;
}

function emptySql(schema: StructType, opts: ScanOptions): string {
  const cols = [
    ...schema.fields.map((f) => `CAST(NULL AS ${duckType(f.type)}) AS ${ident(f.name)}`),
    ...(opts.fileCols ?? []).map((c) => `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`),
    ...(opts.constCols ?? []).map((c) => `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`),
    ...(opts.withFile ? [`CAST(NULL AS VARCHAR) AS ${FILE_COL}`] : []),
  ];
  return `(SELECT ${cols.length ? cols.join(', ') : '1 AS __talon_empty'} WHERE false)`;
}

interface Layout {
  schema: StructType;
  partFields: StructField[];
  opts: ScanOptions;
}

function readerSql(files: ScanFile[], hive?: Map<string, string>): string {
  const hiveArgs = hive
    ? `hive_partitioning = true, hive_types = {${[...hive.values()].map((k) => `${literal(k)}: VARCHAR`).join(', ')}}, hive_types_autocast = false`
    : 'hive_partitioning = false';
  return (
    `read_parquet([${files.map((f) => literal(f.local)).join(', ')}], ` +
    `union_by_name = true, ${hiveArgs}, filename = '${FILE_COL}')`
  );
}

/** The data and file columns of a select over `read_parquet … AS d`. */
function dataColumns(layout: Layout, present: Set<string>, part: (f: StructField) => string): string[] {
  const partSet = new Set(layout.partFields.map((f) => f.name.toLowerCase()));
  const select: string[] = [];
  for (const f of layout.schema.fields) {
    const t = duckType(f.type);
    if (partSet.has(f.name.toLowerCase())) select.push(`${part(f)} AS ${ident(f.name)}`);
    else if (present.has(f.name.toLowerCase()))
      select.push(`CAST(d.${ident(f.name)} AS ${t}) AS ${ident(f.name)}`);
    else select.push(`CAST(NULL AS ${t}) AS ${ident(f.name)}`);
  }
  for (const c of layout.opts.fileCols ?? []) {
    select.push(
      present.has(c.name.toLowerCase())
        ? `CAST(d.${ident(c.name)} AS ${c.type}) AS ${ident(c.name)}`
        : `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`,
    );
  }
  return select;
}

/**
 * Column names (lower-cased) of the files behind `reader`, cached: a DESCRIBE reads every
 * footer and costs a round trip, as much as a small filtered scan itself. Delta data files
 * are never modified in place, and the key holds each file's size and mtime, so a file
 * replaced under the same name (outside the protocol) is described again.
 */
const presentCache = new Map<string, Set<string>>();
const PRESENT_CACHE_MAX = 512;

async function fileSignature(files: ScanFile[]): Promise<string | undefined> {
  try {
    const stats = await Promise.all(files.map((f) => fs.stat(f.local)));
    return stats.map((s) => `${s.size}:${s.mtimeMs}`).join(',');
  } catch {
    return undefined; // let DuckDB report the missing file
  }
}

async function presentColumns(
  db: Db,
  reader: string,
  files: ScanFile[],
  exclude: Iterable<string> = [],
): Promise<Set<string>> {
  const sig = await fileSignature(files);
  const key =
    sig === undefined
      ? undefined
      : createHash('sha256').update(reader).update('\0').update(sig).digest('hex');
  let present = key === undefined ? undefined : presentCache.get(key);
  if (!present) {
    present = new Set((await db.columns(`SELECT * FROM ${reader}`)).map((c) => c.name.toLowerCase()));
    if (key !== undefined) {
      if (presentCache.size >= PRESENT_CACHE_MAX) presentCache.delete(presentCache.keys().next().value!);
      presentCache.set(key, present);
    }
  }
  const out = new Set(present);
  for (const x of exclude) out.delete(x);
  return out;
}

/** Files that share every partition and constant value: those values as literals. */
async function constantSql(db: Db, layout: Layout, files: ScanFile[]): Promise<string> {
  const reader = readerSql(files);
  const present = await presentColumns(db, reader, files);
  const first = files[0]!;
  const select = dataColumns(layout, present, (f) =>
    partitionLiteral(f.type, pv(first.partitionValues, f.name)),
  );
  for (const c of layout.opts.constCols ?? [])
    select.push(`${first.consts?.[c.name] ?? `CAST(NULL AS ${c.type})`} AS ${ident(c.name)}`);
  if (layout.opts.withFile) select.push(`d.${FILE_COL} AS ${FILE_COL}`);
  return `(SELECT ${select.join(', ')} FROM ${reader} AS d)`;
}

/** Files in Talon's Hive layout that share their constant values: partition values from folders. */
async function hiveSql(
  db: Db,
  layout: Layout,
  files: ScanFile[],
  keys: Map<string, string>,
): Promise<string> {
  const reader = readerSql(files, keys);
  const present = await presentColumns(db, reader, files, keys.keys());
  const first = files[0]!;
  const select = dataColumns(layout, present, (f) => {
    const key = keys.get(f.name.toLowerCase());
    // a partition field not among the table's partition columns cannot happen; be exact anyway
    return key === undefined
      ? partitionLiteral(f.type, undefined)
      : `CAST(d.${ident(key)} AS ${duckType(f.type)})`;
  });
  for (const c of layout.opts.constCols ?? [])
    select.push(`${first.consts?.[c.name] ?? `CAST(NULL AS ${c.type})`} AS ${ident(c.name)}`);
  if (layout.opts.withFile) select.push(`d.${FILE_COL} AS ${FILE_COL}`);
  return `(SELECT ${select.join(', ')} FROM ${reader} AS d)`;
}

/** The general case: partition and constant values joined in by file name. */
async function joinSql(db: Db, layout: Layout, files: ScanFile[]): Promise<string> {
  const constCols = layout.opts.constCols ?? [];
  const reader = readerSql(files);
  const present = await presentColumns(db, reader, files);
  const select = dataColumns(layout, present, (f) => `p.${ident(f.name)}`);
  for (const c of constCols) select.push(`p.${ident(c.name)} AS ${ident(c.name)}`);
  if (layout.opts.withFile) select.push(`d.${FILE_COL} AS ${FILE_COL}`);
  if (layout.partFields.length === 0 && constCols.length === 0)
    return `(SELECT ${select.join(', ')} FROM ${reader} AS d)`;
  const valueCols = [FILE_COL, ...layout.partFields.map((f) => f.name), ...constCols.map((c) => c.name)];
  const rows = files.map((file) => {
    const vals = [
      literal(file.local),
      ...layout.partFields.map((f) => partitionLiteral(f.type, pv(file.partitionValues, f.name))),
      ...constCols.map((c) => file.consts?.[c.name] ?? `CAST(NULL AS ${c.type})`),
    ];
    return `(${vals.join(', ')})`;
  });
  const values = `(VALUES ${rows.join(', ')}) AS p(${valueCols.map(ident).join(', ')})`;
  return `(SELECT ${select.join(', ')} FROM ${reader} AS d JOIN ${values} ON d.${FILE_COL} = p.${FILE_COL})`;
}

function groupBy(files: ScanFile[], key: (f: ScanFile) => string): ScanFile[][] {
  const groups = new Map<string, ScanFile[]>();
  for (const f of files) {
    const k = key(f);
    const g = groups.get(k);
    if (g) g.push(f);
    else groups.set(k, [f]);
  }
  return [...groups.values()];
}

/** One DESCRIBE at a time: they share the connection. */
async function sequential<T>(items: T[], fn: (item: T) => Promise<string>): Promise<string[]> {
  const out: string[] = [];
  for (const item of items) out.push(await fn(item));
  return out;
}

function unionAll(exprs: string[]): string {
  return exprs.length === 1 ? exprs[0]! : `(${exprs.map((e) => `SELECT * FROM ${e}`).join(' UNION ALL ')})`;
}

/** Files sharing their constant values. */
async function constGroupSql(
  db: Db,
  layout: Layout,
  partitionColumns: string[],
  files: ScanFile[],
): Promise<string> {
  const partKey = (f: ScanFile) =>
    JSON.stringify(layout.partFields.map((p) => partitionLiteral(p.type, pv(f.partitionValues, p.name))));
  const groups = groupBy(files, partKey);
  if (groups.length === 1) return constantSql(db, layout, files);
  if (layout.partFields.every((f) => hiveCastable(f.type))) {
    let keys: Map<string, string> | undefined;
    for (const f of files) {
      const k = hiveKeys(f, partitionColumns);
      if (!k || (keys && [...k].some(([c, key]) => keys!.get(c) !== key))) {
        keys = undefined;
        break;
      }
      keys ??= k;
    }
    if (keys) return hiveSql(db, layout, files, keys);
  }
  if (groups.length <= UNION_MAX_GROUPS)
    return unionAll(await sequential(groups, (g) => constantSql(db, layout, g)));
  return joinSql(db, layout, files);
}

export async function filesSql(
  db: Db,
  schema: StructType,
  partitionColumns: string[],
  files: ScanFile[],
  opts: ScanOptions = {},
): Promise<string> {
  if (files.length === 0) return emptySql(schema, opts);
  const partSet = new Set(partitionColumns.map((c) => c.toLowerCase()));
  const layout: Layout = {
    schema,
    partFields: schema.fields.filter((f) => partSet.has(f.name.toLowerCase())),
    opts,
  };
  if (opts.strategy === 'join') return joinSql(db, layout, files);
  const constCols = opts.constCols ?? [];
  const groups = groupBy(files, (f) => JSON.stringify(constCols.map((c) => f.consts?.[c.name] ?? null)));
  if (groups.length > UNION_MAX_GROUPS) return joinSql(db, layout, files);
  return unionAll(await sequential(groups, (g) => constGroupSql(db, layout, partitionColumns, g)));
}
